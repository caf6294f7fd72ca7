"""``pip install .`` builds the library into the package (issue 18 item 2).

An sdist made from this tree, installed into a fresh venv made from the system Python (shared
libpython), pip run with this tree's pip (``--python``), no index: the build dependencies (setuptools, wheel, cffi) and the runtime
ones come from this tree's venv through a ``.pth`` line, so the test needs no network and
takes seconds. What is checked: the installed package holds the library, ``cryptoki-shim
module-path`` prints it, it names no build path, a C client (pkcs11-tool) makes a token and
signs with it, and ``doctor`` passes.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from p11 import ROOT, write_config

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"
#: the venv's site-packages directory name: the release's Python (python3.11 on Debian 12, 3.13 on 13)
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f"{cmd} exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv pip installed this tree into."""
    tmp = tmp_path_factory.mktemp("pip")
    src = tmp / "src"
    files = run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"]).split()
    for name in files:
        if name.split("/")[0] in ("tests", "docs", "bench", "conformance") or not (ROOT / name).is_file():
            continue
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    venv = tmp / "venv"
    run([SYSTEM_PYTHON, "-m", "venv", "--without-pip", str(venv)])
    (venv / "lib" / PYTHON_DIR / "site-packages" / "dependencies.pth").write_text(
        "".join(f"{d}\n" for d in site.getsitepackages() if os.path.isdir(d)))
    # the sdist made from the tree (MANIFEST.in must bring build_ffi.py, setup.py and native/)
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "setup.py", "-q", "sdist", "-d", str(tmp / "dist")], cwd=src, check=True,
                   capture_output=True, timeout=120)
    (sdist,) = (tmp / "dist").glob("cryptoki[-_]shim-*.tar.gz")
    shutil.rmtree(src)  # neither the build nor the installed package may need the tree
    pip = [python, "-m", "pip", "--python", str(venv / "bin" / "python")]
    run([*pip, "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(sdist)])
    return venv


def test_module_path_is_the_library_in_the_installed_package(installed: Path) -> None:
    path = Path(run([str(installed / "bin" / "cryptoki-shim"), "module-path"]).strip())
    assert path == installed / "lib" / PYTHON_DIR / "site-packages" / "cryptoki_shim" / "libcryptoki_shim.so"
    assert path.is_file()
    data = path.read_bytes()
    assert str(ROOT).encode() not in data and str(installed.parent).encode() not in data


def test_installed_library_signs_for_a_c_client(installed: Path, tmp_path: Path) -> None:
    conf = write_config(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM", "PYTHON"))}
    env.update(CRYPTOKI_SHIM_CONF=str(conf), CRYPTOKI_SHIM_LOG=str(tmp_path / "log"))
    lib = run([str(installed / "bin" / "cryptoki-shim"), "module-path"], env).strip()
    tool = ["pkcs11-tool", "--module", lib]
    run([*tool, "--init-token", "--label", "pip", "--so-pin", "12345678"], env)
    run([*tool, "--init-pin", "--so-pin", "12345678", "--pin", "1234"], env)
    run([*tool, "-l", "--pin", "1234", "--keypairgen", "--key-type", "EC:prime256v1", "--id", "01"], env)
    (tmp_path / "msg").write_bytes(b"signed by the pip-installed module")
    run([*tool, "-l", "--pin", "1234", "--sign", "-m", "ECDSA-SHA256", "--id", "01",
         "-i", str(tmp_path / "msg"), "-o", str(tmp_path / "sig")], env)
    assert len((tmp_path / "sig").read_bytes()) == 64
    out = run([str(installed / "bin" / "cryptoki-shim"), "doctor"], env)
    assert "library: C_Initialize" in out and "all good" in out, out
