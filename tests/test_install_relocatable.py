"""The library finds its Python environment from where it lies (issue 18 item 1).

No path of the build is in the ``.so`` (native/pyenv.c finds the environment at run time): a
tree copied elsewhere, with the original removed, still works; CRYPTOKI_SHIM_VENV and the
``[python] venv`` key point a library elsewhere; a wrong or missing environment answers
CKR_GENERAL_ERROR silently, with the reason in the log.

The installed layout is the Debian package's (docs/install.md): ``<prefix>/lib/<multiarch>/
pkcs11/libcryptoki_shim.so`` next to ``<prefix>/lib/cryptoki-shim/python``, a site directory
holding the cryptoki_shim package. Here that directory holds a copy of this tree's package and
links to the venv's dependencies (the package build, tests/test_install_deb.py, puts real
copies there).
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sysconfig
from pathlib import Path

import pytest

from p11 import LIB, ROOT
from test_native_hosts import (  # noqa: F401  (build_dir is a fixture)
    CKR_GENERAL_ERROR,
    assert_ok,
    build_dir,
    compile_host,
    conf,
    host_env,
    read_results,
    run,
)

MULTIARCH = sysconfig.get_config_var("MULTIARCH")
RELOCATED = "cryptoki-shim relocated copy"


def test_library_holds_no_build_path() -> None:
    data = LIB.read_bytes()
    assert str(ROOT).encode() not in data, f"{LIB} names the tree it was built in ({ROOT})"
    # nor of any other place a build happens (system directories, /usr/include in the debug
    # information, and the interpreter /usr/bin/python3.X are no build paths)
    found = {m.decode() for m in re.findall(rb"(?<![\w.])/(?:opt|home|tmp|work|root|srv|var)/[\w./+-]+", data)}
    assert not found, found


def make_prefix(prefix: Path) -> Path:
    """An installed tree under ``prefix``; returns the library's path in it."""
    libdir = prefix / "lib" / MULTIARCH / "pkcs11"
    libdir.mkdir(parents=True)
    shutil.copy2(LIB, libdir / LIB.name)
    python = prefix / "lib" / "cryptoki-shim" / "python"
    shutil.copytree(ROOT / "cryptoki_shim", python / "cryptoki_shim",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # the dependencies: links to the venv's (what the system Python would import first,
    # e.g. Debian's _cffi_backend, must come from here too)
    for venv_site in filter(os.path.isdir, site.getsitepackages()):
        for entry in Path(venv_site).iterdir():
            if not entry.name.startswith(("cryptoki_shim", "__editable__")) and entry.suffix != ".pth":
                (python / entry.name).symlink_to(entry)
    # what C_GetInfo reports, so the test sees which copy of the package answered
    general = python / "cryptoki_shim" / "abi" / "general.py"
    text = general.read_text()
    assert 'LIBRARY_DESCRIPTION = "cryptoki-shim PKCS#11 provider"' in text
    general.write_text(text.replace('LIBRARY_DESCRIPTION = "cryptoki-shim PKCS#11 provider"',
                                    f'LIBRARY_DESCRIPTION = "{RELOCATED}"'))
    return libdir / LIB.name


def library_description(lib: Path, env: dict[str, str]) -> str:
    res = subprocess.run(["pkcs11-tool", "--module", str(lib), "-I"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return next(line for line in res.stdout.splitlines() if line.startswith("Library"))


def test_copied_tree_works_with_the_original_gone(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    make_prefix(first)
    moved = tmp_path / "elsewhere" / "opt"
    shutil.copytree(first, moved, symlinks=True)
    shutil.rmtree(first)
    lib = moved / "lib" / MULTIARCH / "pkcs11" / LIB.name
    env = host_env(conf)
    assert_ok(run([str(compile_host(build_dir, "host_basic")), str(lib)], env))
    assert RELOCATED in library_description(lib, env)


def test_symlinked_library_finds_the_environment_of_its_target(conf: Path, tmp_path: Path) -> None:
    """A symbolic link to the library (e.g. in a host's own plugin directory) resolves to the
    installed tree."""
    lib = make_prefix(tmp_path / "prefix")
    link = tmp_path / "plugins" / "pkcs11.so"
    link.parent.mkdir()
    link.symlink_to(lib)
    assert RELOCATED in library_description(link, host_env(conf))


@pytest.fixture
def lone_library(tmp_path: Path) -> Path:
    """The library alone in a directory: nothing to find near it."""
    lone = tmp_path / "lone" / LIB.name
    lone.parent.mkdir()
    shutil.copy2(LIB, lone)
    return lone


def test_override_variable(conf: Path, tmp_path: Path, lone_library: Path) -> None:
    env_dir = make_prefix(tmp_path / "prefix").parents[2] / "cryptoki-shim" / "python"
    assert env_dir.is_dir()
    assert RELOCATED in library_description(lone_library, host_env(conf, CRYPTOKI_SHIM_VENV=str(env_dir)))


def test_override_config_key(tmp_path: Path, lone_library: Path) -> None:
    from p11 import write_config

    env_dir = make_prefix(tmp_path / "prefix").parents[2] / "cryptoki-shim" / "python"
    conf = write_config(tmp_path, extra=f'[python]\nvenv = "{env_dir}"   # a comment\n')
    assert RELOCATED in library_description(lone_library, host_env(conf))


def test_override_names_a_venv(conf: Path, lone_library: Path) -> None:
    """A venv (pyvenv.cfg) is an environment too: this tree's own .venv."""
    venv = ROOT / ".venv"
    assert (venv / "pyvenv.cfg").is_file()
    assert "cryptoki-shim" in library_description(lone_library, host_env(conf, CRYPTOKI_SHIM_VENV=str(venv)))


def _calls(build_dir: Path, tmp_path: Path, lib: Path, env: dict[str, str]) -> list[tuple[str, int]]:
    results = tmp_path / "results.txt"
    res = run([str(compile_host(build_dir, "host_calls")), str(lib), str(results)], env)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == "", (res.returncode, res.stdout, res.stderr)
    return read_results(results)


def _general_error_everywhere(results: list[tuple[str, int]]) -> None:
    assert results[0] == ("C_GetFunctionList", 0)
    assert results[-1] == ("alive", -1)
    assert {rv for _, rv in results[1:-1]} == {CKR_GENERAL_ERROR}, results


def test_no_environment_near_the_library(build_dir: Path, conf: Path, tmp_path: Path, lone_library: Path) -> None:
    log = tmp_path / "shim.log"
    _general_error_everywhere(_calls(build_dir, tmp_path, lone_library, host_env(conf, CRYPTOKI_SHIM_LOG=str(log))))
    assert f"no Python environment found near {lone_library.parent}" in log.read_text()


@pytest.mark.parametrize("how", ["variable", "config"])
def test_wrong_override_is_an_error_not_a_fallback(build_dir: Path, tmp_path: Path, how: str) -> None:
    """The clone's library would find .venv by itself; an override naming a directory that is
    no environment must not fall back to it."""
    from p11 import write_config

    wrong = tmp_path / "not-an-env"
    wrong.mkdir()
    log = tmp_path / "shim.log"
    extra = f'[python]\nvenv = "{wrong}"\n' if how == "config" else ""
    conf = write_config(tmp_path, extra=extra)
    env = host_env(conf, CRYPTOKI_SHIM_LOG=str(log))
    if how == "variable":
        env["CRYPTOKI_SHIM_VENV"] = str(wrong)
    _general_error_everywhere(_calls(build_dir, tmp_path, LIB, env))
    assert f"{wrong}: not a venv nor a directory holding the cryptoki_shim package" in log.read_text()


@pytest.mark.parametrize("table", ['venv = "${HOME}/env"', 'venv = "C:\\\\env"', 'venv_file = "/run/secrets/env"'])
def test_config_refuses_what_the_library_would_read_differently(table: str) -> None:
    """The library reads [python] venv itself, before Python: no ${NAME}, escapes or venv_file
    (config-check then says so, instead of the two sides reading two different paths)."""
    from cryptoki_shim import config

    with pytest.raises(config.ConfigError, match=r"\[python\] venv is read by the library before Python starts"):
        config.parse(f"[python]\n{table}\n", "f.toml")
    assert config.parse('[python]\nvenv = "/opt/cs/python"\n', "f.toml")
