"""The Debian package (issue 18 item 3): built, installed with dpkg, used, purged.

This test installs into the real system (it needs root, as ./run test and CI have): it builds
the package with scripts/build_deb.py (``make deb``), checks lintian found no error or
warning, installs it with ``dpkg -i``, uses the token through p11-kit-proxy.so, GnuTLS's
p11tool and ``pkcs11-tool --module /usr/lib/<multiarch>/pkcs11/libcryptoki_shim.so``, runs
the installed ``cryptoki-shim`` (module-path, doctor), then purges the package and checks that
nothing of it is left but the store directory /var/lib/cryptoki-shim (kept, Debian policy).
Every client runs with its own configuration and store (CRYPTOKI_SHIM_CONF in a temporary
directory), so no user's or system store is touched; the package is purged whatever happens.
A cryptoki-shim package installed before the test (an administrator's) is left alone: skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from p11 import ROOT, write_config

pytestmark = pytest.mark.slow

MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True,
                           text=True).stdout.strip() if shutil.which("dpkg-architecture") else ""
MODULE = Path(f"/usr/lib/{MULTIARCH}/pkcs11/libcryptoki_shim.so")
PROXY = Path(f"/usr/lib/{MULTIARCH}/p11-kit-proxy.so")
STORE_DIR = Path("/var/lib/cryptoki-shim")


def installed() -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "cryptoki-shim"], capture_output=True, text=True)
    return "install ok installed" in res.stdout or "config-files" in res.stdout


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("installs a package: needs root (./run test runs as root)")
    if not shutil.which("dpkg-deb") or not MULTIARCH:
        pytest.skip("not a Debian system")
    if installed():
        pytest.skip("a cryptoki-shim package is already installed here; the test leaves it alone")
    out = tmp_path_factory.mktemp("deb")
    path = Path(run([sys.executable, str(ROOT / "scripts" / "build_deb.py"), "--out", str(out)]).strip())
    assert path.name.startswith("cryptoki-shim_") and path.name.endswith(".deb") and path.is_file()
    return path


def test_lintian_finds_no_error_or_warning(deb: Path) -> None:
    report = deb.parent / "lintian.txt"
    if not report.exists():
        pytest.skip("lintian is not installed")
    tags = [line for line in report.read_text().splitlines() if line[:2] in ("E:", "W:")]
    assert not tags, "lintian (explain in docs/install.md or fix scripts/build_deb.py):\n" + "\n".join(tags)


def test_layout(deb: Path) -> None:
    listing = run(["dpkg-deb", "-c", str(deb)])
    for path in (MODULE, Path("/usr/bin/cryptoki-shim"), Path("/usr/share/p11-kit/modules/cryptoki-shim.module"),
                 Path("/etc/cryptoki-shim/config.toml"), Path("/usr/lib/cryptoki-shim/python/cryptoki_shim/__init__.py"),
                 Path("/usr/lib/systemd/user/cryptoki-shim.service")):
        assert f".{path}\n" in listing, f"{path} is not in the package"
    assert run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    assert "/etc/cryptoki-shim/config.toml" in run(["dpkg-deb", "-I", str(deb), "conffiles"])


def test_install_use_purge(deb: Path, tmp_path: Path) -> None:
    files = [line.split(None, 5)[5].lstrip(".") for line in run(["dpkg-deb", "-c", str(deb)]).splitlines()]
    store_existed = STORE_DIR.exists()
    conf = write_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM", "PYTHON"))}
    env.update(CRYPTOKI_SHIM_CONF=str(conf), CRYPTOKI_SHIM_LOG=str(tmp_path / "shim.log"))
    try:
        run(["dpkg", "-i", str(deb)])
        st = STORE_DIR.stat()
        assert oct(st.st_mode & 0o777) == "0o700", "the system store directory must be 0700"
        import grp
        import pwd

        assert pwd.getpwuid(st.st_uid).pw_name == "cryptoki-shim" and grp.getgrgid(st.st_gid).gr_name == "cryptoki-shim"

        assert run(["cryptoki-shim", "module-path"], env).strip() == str(MODULE)
        tool = ["pkcs11-tool", "--module", str(MODULE)]
        run([*tool, "--init-token", "--label", "debian", "--so-pin", "12345678"], env)
        run([*tool, "--init-pin", "--so-pin", "12345678", "--pin", "1234"], env)

        # p11-kit sees it with no client configuration (the module file in /usr/share/p11-kit/modules)
        modules = run(["p11-kit", "list-modules"], env)
        # the module's header: "NAME: FILE" (p11-kit 0.24, Debian 12) or "module: NAME" (0.25, Debian 13)
        header = r"^(cryptoki-shim: libcryptoki_shim\.so|module: cryptoki-shim)$"
        assert re.search(header, modules, re.M) and "token: debian" in modules, modules
        assert "debian" in run(["p11tool", "--list-tokens"], env)  # GnuTLS, through p11-kit
        proxy = ["pkcs11-tool", "--module", str(PROXY), "--token-label", "debian", "-l", "--pin", "1234"]
        run([*proxy, "--keypairgen", "--key-type", "EC:prime256v1", "--id", "07"], env)
        (tmp_path / "msg").write_bytes(b"signed through p11-kit-proxy")
        run([*proxy, "--sign", "-m", "ECDSA-SHA256", "--id", "07", "-i", str(tmp_path / "msg"),
             "-o", str(tmp_path / "sig")], env)
        assert len((tmp_path / "sig").read_bytes()) == 64
        # the same key, straight through the module's path
        run([*tool, "-l", "--pin", "1234", "--verify", "-m", "ECDSA-SHA256", "--id", "07",
             "-i", str(tmp_path / "msg"), "--signature-file", str(tmp_path / "sig")], env)

        doctor = run(["cryptoki-shim", "doctor"], env)
        assert "all good" in doctor and "p11-kit" in doctor, doctor
    finally:
        subprocess.run(["dpkg", "--purge", "cryptoki-shim"], capture_output=True, timeout=300)
    assert not installed()
    left = [f for f in files if f != "/" and os.path.lexists(f) and not Path(f).is_dir()]
    assert not left, f"left behind after purge: {left[:10]}"
    own_dirs = ["/usr/lib/cryptoki-shim", "/etc/cryptoki-shim", "/usr/share/doc/cryptoki-shim"]
    assert not [d for d in own_dirs if os.path.lexists(d)], "a directory of the package is left"
    assert STORE_DIR.is_dir(), "purge must keep the store directory"
    if not store_existed:
        assert not any(STORE_DIR.iterdir())
