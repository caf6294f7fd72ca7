"""``make deb``: build/deb/cryptoki-shim_<version>_<arch>.deb with Debian's own tools (issue 18 item 3).

No debhelper source package: the tree is staged here and packed by ``dpkg-deb``, its
dependencies computed by ``dpkg-shlibdeps``, and ``lintian`` run on the result (its report in
build/deb/lintian.txt; each tag it emits is fixed or explained in docs/install.md, which
tests/test_install_deb.py checks). What the package holds (docs/install.md, "Debian package"):

  /usr/lib/<multiarch>/pkcs11/libcryptoki_shim.so   the module (one path that never moves)
  /usr/lib/cryptoki-shim/python/                     the package and its dependencies: the
                                                     same distributions, files and versions as
                                                     this tree's tested .venv (copied by their
                                                     RECORD, no download), compiled at install
  /usr/bin/cryptoki-shim                             the admin command
  /usr/share/p11-kit/modules/cryptoki-shim.module    p11-kit, GnuTLS and p11-kit-proxy see it
  /etc/cryptoki-shim/config.toml                     conffile (comments: per-user stores by default)
  /usr/lib/systemd/user/cryptoki-shim.service        `cryptoki-shim serve` for one user's session
  /var/lib/cryptoki-shim/                            the system store directory, made by postinst
                                                     (0700, system user and group cryptoki-shim),
                                                     kept on purge

The library finds /usr/lib/cryptoki-shim/python from its own location (native/pyenv.c).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import build_ffi  # noqa: E402

PACKAGE = "cryptoki-shim"
PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
MAINTAINER = "cryptoki-shim maintainers <cryptoki-shim@example.org>"
ENV_DIR = Path("usr/lib/cryptoki-shim/python")
#: Files of the dependencies never shipped: scripts and caches (a dist's RECORD lists them).
SKIPPED = re.compile(r"(^|/)__pycache__/|^\.\./|\.pyc$")

#: /usr/bin/cryptoki-shim: the interpreter the environment was made for, isolated (no user
#: site, no PYTHON* variables), on the launcher next to the environment.
BIN_SCRIPT = f"""#!/bin/sh
exec /usr/bin/{PYTHON} -I /usr/lib/cryptoki-shim/cli.py "$@"
"""
LAUNCHER = f"""# cryptoki-shim's admin command (Debian package): its Python environment comes first.
import sys

sys.path.insert(0, "/{ENV_DIR}")
from cryptoki_shim.cli import main

sys.exit(main())
"""

P11KIT_MODULE = """# cryptoki-shim: the PKCS#11 provider of the cryptoki-shim package.
# p11-kit resolves the name in its module directory (/usr/lib/<multiarch>/pkcs11/).
module: libcryptoki_shim.so
# Not critical: a process whose Python the module cannot run in (another version already
# embedded), or a user without a store, goes on with the other modules.
critical: no
trust-policy: no
"""

CONFIG = """# cryptoki-shim configuration (docs/configuration.md in the source, `cryptoki-shim
# config-reference` prints it). Search order: $CRYPTOKI_SHIM_CONF, then
# ~/.config/cryptoki-shim/config.toml, then this file.
#
# As shipped, nothing is set: every user gets a private software token in
# ~/.local/share/cryptoki-shim/store.db, and any PKCS#11 application sees it through p11-kit.
#
# A system-wide token for services instead (docs/install.md, "A token for a service"): the
# store in /var/lib/cryptoki-shim (0700, user cryptoki-shim), used by services running as
# user cryptoki-shim or through `cryptoki-shim serve --system`.
#
# [store]
# url = "sqlite:////var/lib/cryptoki-shim/store.db"
#
# [log]
# file = "/var/log/cryptoki-shim.log"
# level = "info"
#
# [[slots]]
# id = 0
# max_pin_failures = 10
"""

USER_UNIT = """[Unit]
Description=cryptoki-shim PKCS#11 token shared over p11-kit's RPC (cryptoki-shim serve)
Documentation=file:///usr/share/doc/cryptoki-shim/install.md

[Service]
Type=simple
ExecStart=/usr/bin/cryptoki-shim serve --foreground --socket %t/cryptoki-shim/pkcs11

[Install]
WantedBy=default.target
"""

POSTINST = f"""#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent group cryptoki-shim >/dev/null; then
        addgroup --system --quiet cryptoki-shim
    fi
    if ! getent passwd cryptoki-shim >/dev/null; then
        adduser --system --quiet --ingroup cryptoki-shim --home /var/lib/cryptoki-shim \\
            --no-create-home --disabled-login --gecos "cryptoki-shim system token" cryptoki-shim
    fi
    if [ ! -d /var/lib/cryptoki-shim ]; then
        install -d -m 0700 -o cryptoki-shim -g cryptoki-shim /var/lib/cryptoki-shim
    fi
    # byte-compiled once here: a module that compiles on every start costs ~300 ms per process
    {PYTHON} -m compileall -q -j 0 /{ENV_DIR} >/dev/null || true
fi
exit 0
"""

PRERM = f"""#!/bin/sh
set -e
# the byte code postinst made is no file of the package: removed here, so nothing is left
find /{ENV_DIR} -name __pycache__ -type d -prune -exec rm -rf {{}} + 2>/dev/null || true
exit 0
"""


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cryptoki-shim
Comment: The Python environment in /usr/lib/cryptoki-shim/python holds these distributions,
 each under its own license (their dist-info directories hold the texts): {deps}.

Files: *
Copyright: 2024-2026 the cryptoki-shim authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify, merge,
 publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
 to whom the Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""

MANPAGE = """.TH CRYPTOKI-SHIM 1 "" "cryptoki-shim {version}" "User Commands"
.SH NAME
cryptoki-shim \\- administer the cryptoki-shim PKCS#11 provider
.SH SYNOPSIS
.B cryptoki-shim
.I command
.RI [ options ]
.SH DESCRIPTION
Initializes tokens, sets PINs, lists, imports and exports objects, backs up and restores
the store, checks the installation
.RB ( doctor ),
prints the module's path
.RB ( module-path )
and shares the token with other processes over p11-kit's RPC
.RB ( serve ).
.B cryptoki-shim --help
lists every command; /usr/share/doc/cryptoki-shim/install.md describes the installation.
"""


def run(cmd: list[str], **kw: object) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout  # type: ignore[call-overload]


def closure() -> list[metadata.Distribution]:
    """The installed distributions cryptoki-shim needs at run time (its requirements,
    recursively, without extras), from this interpreter's environment."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = [r for r in metadata.requires(PACKAGE) or []]
    while todo:
        req = Requirement(todo.pop())
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        dist = metadata.distribution(req.name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key not in seen:
            seen[key] = dist
            todo += dist.requires or []
    return [seen[k] for k in sorted(seen)]


def copy_dist(dist: metadata.Distribution, dest: Path) -> None:
    base = Path(str(dist.locate_file("")))
    for f in dist.files or []:
        name = str(f)
        if SKIPPED.search(name):
            continue
        src = base / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            os.chmod(target, 0o644)  # shared objects too (Debian policy 8.1)


def copy_package(dest: Path) -> None:
    for src in sorted((ROOT / "cryptoki_shim").rglob("*")):
        rel = src.relative_to(ROOT)
        if src.is_file() and "__pycache__" not in rel.parts and src.suffix not in (".so", ".pyc"):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


def write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, mode)


def gzip_n(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def shlibs_depends(stage: Path, elves: list[Path]) -> str:
    """dpkg-shlibdeps over every ELF file: the Depends on the system libraries they link."""
    work = stage.parent / "shlibdeps"
    shutil.rmtree(work, ignore_errors=True)
    write(work / "debian" / "control", f"Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n")
    out = run(["dpkg-shlibdeps", "-O", "--ignore-missing-info", "--warnings=0", *map(str, elves)], cwd=work)
    m = re.search(r"shlibs:Depends=(.*)", out)
    return m.group(1).strip() if m else ""


def build(out: Path, lintian: bool) -> Path:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    arch = run(["dpkg", "--print-architecture"]).strip()
    multiarch = run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()
    stage = out / "root"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    os.chmod(stage, 0o755)

    lib = stage / "usr" / "lib" / multiarch / "pkcs11" / "libcryptoki_shim.so"
    lib.parent.mkdir(parents=True)
    build_ffi.build(lib, out / "work")
    run(["strip", "--strip-unneeded", "--remove-section=.comment", "--remove-section=.note", str(lib)])
    os.chmod(lib, 0o644)

    env = stage / ENV_DIR
    copy_package(env)
    deps = closure()
    for dist in deps:
        copy_dist(dist, env)

    write(stage / "usr" / "bin" / PACKAGE, BIN_SCRIPT, 0o755)
    write(stage / "usr" / "lib" / "cryptoki-shim" / "cli.py", LAUNCHER)
    write(stage / "usr" / "share" / "p11-kit" / "modules" / f"{PACKAGE}.module", P11KIT_MODULE)
    write(stage / "etc" / PACKAGE / "config.toml", CONFIG)
    write(stage / "usr" / "lib" / "systemd" / "user" / f"{PACKAGE}.service", USER_UNIT)
    doc = stage / "usr" / "share" / "doc" / PACKAGE
    names = ", ".join(f"{d.metadata['Name']} {d.version}" for d in deps)
    write(doc / "copyright", COPYRIGHT.format(deps=names))
    write(doc / "install.md", (ROOT / "docs" / "install.md").read_text())
    write(doc / "changelog.gz", gzip_n(
        f"{PACKAGE} ({version}) unstable; urgency=medium\n\n  * Built from the source tree by make deb.\n\n"
        f" -- {MAINTAINER}  Thu, 01 Jan 2026 00:00:00 +0000\n".encode()))
    write(stage / "usr" / "share" / "man" / "man1" / f"{PACKAGE}.1.gz", gzip_n(MANPAGE.format(version=version).encode()))
    for d in [p for p in stage.rglob("*") if p.is_dir()]:
        os.chmod(d, 0o755)

    elves = [p for p in stage.rglob("*.so") if p.read_bytes()[:4] == b"\x7fELF"]
    # the wheels' extension modules too (Debian policy 10.1: shared objects stripped)
    run(["strip", "--strip-unneeded", "--remove-section=.comment", "--remove-section=.note", *map(str, elves)])
    depends = ", ".join(x for x in (shlibs_depends(stage, elves), f"{PYTHON}", "adduser") if x)
    size = sum(p.stat().st_size for p in stage.rglob("*") if p.is_file()) // 1024
    control = stage / "DEBIAN"
    write(control / "control", (
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {MAINTAINER}\n"
        f"Installed-Size: {size}\nDepends: {depends}\nRecommends: p11-kit\nSection: libs\nPriority: optional\n"
        "Homepage: https://example.invalid/cryptoki-shim\n"
        "Description: PKCS#11 provider written in Python\n"
        " A PKCS#11 (Cryptoki) module that keeps software, TPM and upstream-HSM\n"
        " keys behind one C ABI, registered with p11-kit so that every PKCS#11\n"
        " application sees its token.\n"))
    write(control / "conffiles", f"/etc/{PACKAGE}/config.toml\n")
    # no postrm: purge keeps /var/lib/cryptoki-shim (the tokens) and the system user, as
    # Debian policy asks (docs/install.md says how to remove them); dpkg removes the conffile
    for name, text in (("postinst", POSTINST), ("prerm", PRERM)):
        write(control / name, text, 0o755)
    sums = []
    for p in sorted(stage.rglob("*")):
        rel = p.relative_to(stage)
        if p.is_file() and rel.parts[0] not in ("DEBIAN", "etc"):
            sums.append(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {rel}\n")
    write(control / "md5sums", "".join(sums))

    deb = out / f"{PACKAGE}_{version}_{arch}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(stage), str(deb)])
    if lintian and shutil.which("lintian"):
        res = subprocess.run(["lintian", "--no-tag-display-limit", "--info", str(deb)], capture_output=True, text=True)
        (out / "lintian.txt").write_text(res.stdout + res.stderr)
    return deb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "deb")
    parser.add_argument("--no-lintian", action="store_true")
    args = parser.parse_args()
    deb = build(args.out.resolve(), not args.no_lintian)
    print(deb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
