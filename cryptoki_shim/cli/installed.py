"""Where the library of this installation is: ``module-path`` (issue 18 item 2).

One answer for every layout (docs/install.md), in this order:
  * ``$CRYPTOKI_SHIM_LIB`` (tests, unusual layouts);
  * next to the package: a pip install (setup.py builds ``cryptoki_shim/libcryptoki_shim.so``);
  * the Debian package's: the package in ``<prefix>/lib/cryptoki-shim/python``, the library in
    ``<prefix>/lib/<multiarch>/pkcs11/`` (or ``<prefix>/lib/pkcs11/``);
  * a clone's ``build/libcryptoki_shim.so`` (``make build``).
The library finds its Python environment by the same layouts from its side (native/pyenv.c).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from .common import CliError, EXIT_USAGE, emit

LIBRARY_NAME = "libcryptoki_shim.so"
PACKAGE = Path(__file__).resolve().parents[1]


def candidates() -> list[Path]:
    """Every place of the order above, first match wins."""
    found = [PACKAGE / LIBRARY_NAME]
    if PACKAGE.parent.name == "python" and PACKAGE.parent.parent.name == "cryptoki-shim":
        lib = PACKAGE.parents[2]
        multiarch = sysconfig.get_config_var("MULTIARCH")
        if multiarch:
            found.append(lib / multiarch / "pkcs11" / LIBRARY_NAME)
        found.append(lib / "pkcs11" / LIBRARY_NAME)
    found.append(PACKAGE.parent / "build" / LIBRARY_NAME)
    return found


def default_library() -> Path:
    """The library of this installation (the first existing candidate; else the clone's)."""
    env = os.environ.get("CRYPTOKI_SHIM_LIB")
    if env:
        return Path(env)
    places = candidates()
    return next((p for p in places if p.is_file()), places[-1])


#: Where p11-kit reads module files (system, administrator, user) and resolves relative names
#: (p11-kit's p11_system_config_modules, p11_module_configs and p11_module_path).
P11KIT_MODULE_DIRS = (Path("/usr/share/p11-kit/modules"), Path("/etc/pkcs11/modules"))
SYSTEM_STORE = Path("/var/lib/cryptoki-shim")
STORE_USER = "cryptoki-shim"


def p11kit_registration(lib: Path) -> Path | None:
    """The p11-kit module file that loads ``lib``, or None."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    module_path = Path("/usr/lib") / multiarch / "pkcs11"
    user_dir = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "pkcs11" / "modules"
    target = lib.resolve()
    for directory in (*P11KIT_MODULE_DIRS, user_dir):
        for f in sorted(directory.glob("*.module")) if directory.is_dir() else ():
            for line in f.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "module" and (module_path / value.strip()).resolve() == target:
                    return f
    return None


def check_installation(steps: Any, lib: Path) -> None:
    """doctor's checks of an installed system (issue 18 item 6): p11-kit registration, the
    system store directory's permissions, and the library started by a C host, which is where
    its Python environment is found (native/pyenv.c; a Python host would lend its own)."""
    found = p11kit_registration(lib)
    # unregistered is a finding for a library in p11-kit's own module directory (the Debian
    # package's), a choice elsewhere (a clone, a venv)
    in_module_dir = lib.resolve().parent == (Path("/usr/lib") / (sysconfig.get_config_var("MULTIARCH") or "") / "pkcs11")
    steps.add("p11-kit module", "ok" if found else "warn" if in_module_dir else "info",
              f"{found} loads {lib}" if found else
              f"no p11-kit module file loads {lib}: applications using p11-kit do not see it "
              "(cryptoki-shim p11-kit-module)")
    if SYSTEM_STORE.is_dir():
        st = SYSTEM_STORE.stat()
        mode = st.st_mode & 0o777
        try:
            import pwd

            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = str(st.st_uid)
        good = mode == 0o700 and owner == STORE_USER
        steps.add("system store directory", "ok" if good else "FAIL" if mode & 0o077 else "warn",
                  f"{SYSTEM_STORE} mode {mode:o}, owner {owner}" + ("" if good else
                  f" (expected 700, owner {STORE_USER}: docs/install.md)"))
    _check_c_host(steps, lib)


def _check_c_host(steps: Any, lib: Path) -> None:
    tool = shutil.which("pkcs11-tool")
    if tool is None or not lib.is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "shim.log"
        env = dict(os.environ, CRYPTOKI_SHIM_LOG=str(log))
        try:
            res = subprocess.run([tool, "--module", str(lib), "--show-info"], capture_output=True, text=True,
                                 env=env, timeout=60)
        except subprocess.TimeoutExpired:
            steps.add("python environment (C host)", "FAIL", f"pkcs11-tool --module {lib}: no answer within 60 s")
            return
        if res.returncode == 0:
            steps.add("python environment (C host)", "ok", f"pkcs11-tool --module {lib} --show-info answers")
            return
        reason = [line for line in (log.read_text(errors="replace") if log.exists() else "").splitlines()
                  if "native:" in line or "Error" in line]
        steps.add("python environment (C host)", "FAIL",
                  "; ".join(reason[-2:]) or (res.stdout + res.stderr).strip()[-300:])


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("module-path", parents=[parent],
                       help="print the path of the PKCS#11 library of this installation")
    p.set_defaults(func=module_path)


def module_path(args: argparse.Namespace) -> int:
    lib = default_library()
    if not lib.is_file():
        raise CliError(f"no library found (looked at {', '.join(map(str, candidates()))}); "
                       "in a clone: make build", EXIT_USAGE)
    emit(args, {"ok": True, "module": str(lib.resolve())}, str(lib.resolve()))
    sys.stdout.flush()
    return 0
