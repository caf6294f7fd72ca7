"""The loadable module in real C (and foreign Python) host processes (issue 2).

Each C program of ``tests/native`` is compiled here with gcc against ``native/pkcs11.h``
into a pytest temporary directory and run as a subprocess with its own configuration and
store (``CRYPTOKI_SHIM_CONF``) and a timeout: a hang fails the test, it never blocks the
suite. The programs print ``FAIL ...`` lines that end up in the assertion messages.

What only a separate process can show: dlopen with RTLD_LOCAL (libpython's symbols must
reach extension modules), fork() while another thread is inside the module, dlclose and
dlopen again, a Python start-up that fails, a Python host of another minor version, what
the library exports, and that it never writes to the host's stdout or stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cryptoki_shim import spec
from p11 import LIB, ROOT, write_config

NATIVE = ROOT / "native"
HOSTS = Path(__file__).resolve().parent / "native"
FUNCTIONS = re.findall(r"^CK_FN\((\w+),", (NATIVE / "functions.h").read_text(), re.M)
TABLE_FUNCTIONS = ("C_GetFunctionList", "C_GetInterfaceList", "C_GetInterface")
CKR_OK = 0
CKR_GENERAL_ERROR = int(spec.CKR_GENERAL_ERROR)

#: Variables of the developer's shell that would change what the library does.
_SCRUBBED = ("CRYPTOKI_SHIM_LOG", "CRYPTOKI_SHIM_LOG_LEVEL", "CRYPTOKI_SHIM_PYTHONHOME",
             "CRYPTOKI_SHIM_USE_PYTHON_ENV", "CRYPTOKI_SHIM_CONF", "PYTHONPATH", "PYTHONHOME")


# ---------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory, lib_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the C host programs (apt-get install gcc)")
    return tmp_path_factory.mktemp("hosts")


def compile_host(build_dir: Path, name: str) -> Path:
    """gcc tests/native/<name>.c -> <build_dir>/<name> (once per session)."""
    out = build_dir / name
    if not out.exists():
        cmd = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-g",
               f"-I{NATIVE}", f"-I{HOSTS}", "-o", str(out), str(HOSTS / f"{name}.c"),
               "-ldl", "-lpthread"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"compiling {name}.c failed:\n{res.stderr}"
    return out


def host_env(conf: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["CRYPTOKI_SHIM_CONF"] = str(conf)
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{Path(cmd[0]).name} hung (no exit within {timeout}s); stdout so far: {exc.stdout!r}")


def assert_ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0 and res.stdout.splitlines()[-1:] and res.stdout.splitlines()[-1].startswith("OK"), (
        f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}")
    assert res.stderr == "", f"the library wrote to the host's stderr:\n{res.stderr}"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def read_results(path: Path) -> list[tuple[str, int]]:
    """host_calls' "name 0x<rv>" lines (and a final "alive")."""
    out = []
    for line in path.read_text().splitlines():
        name, _, rv = line.partition(" ")
        out.append((name, int(rv, 16) if rv else -1))
    return out


# ---------------------------------------------------------------------- (a) RTLD_LOCAL host


def test_c_host_rtld_local_token_object_and_extension_modules(build_dir: Path, conf: Path) -> None:
    """dlopen RTLD_NOW|RTLD_LOCAL, versions of both tables, a token, a data object read back,
    the mechanism list (cryptography's Rust extension is then mapped), C_Finalize."""
    host = compile_host(build_dir, "host_basic")
    assert_ok(run([str(host), str(LIB)], host_env(conf)))


# ---------------------------------------------------------------------- (b) fork


def test_fork_while_another_thread_is_inside(build_dir: Path, conf: Path) -> None:
    """Children forked while a worker thread loops calls: none hangs, each answers
    NOT_INITIALIZED then works after C_Initialize; the parent and its worker carry on."""
    host = compile_host(build_dir, "host_fork")
    res = run([str(host), str(LIB), "12"], host_env(conf), timeout=180)
    assert_ok(res)
    assert "forks=12" in res.stdout


# ---------------------------------------------------------------------- (c) dlclose / dlopen


def test_finalize_dlclose_dlopen_initialize_again(build_dir: Path, conf: Path) -> None:
    host = compile_host(build_dir, "host_reload")
    assert_ok(run([str(host), str(LIB), "3"], host_env(conf)))


# ---------------------------------------------------------------------- (d, e) failed start-up


def _run_calls(build_dir: Path, tmp_path: Path, env: dict[str, str]) -> list[tuple[str, int]]:
    host = compile_host(build_dir, "host_calls")
    results = tmp_path / "results.txt"
    res = run([str(host), str(LIB), str(results)], env)
    assert res.returncode == 0, f"the host died: exit {res.returncode}, results {results.read_text() if results.exists() else ''}"
    assert res.stdout == "", f"the library wrote to stdout:\n{res.stdout}"
    assert res.stderr == "", f"the library wrote to stderr:\n{res.stderr}"
    return read_results(results)


def _assert_every_call_general_error(results: list[tuple[str, int]]) -> None:
    assert results[0] == ("C_GetFunctionList", CKR_OK)  # needs no Python
    assert results[-1] == ("alive", -1)
    calls = results[1:-1]
    assert [n for n, _ in calls] == ["C_Initialize", "C_GetInfo", "C_GetSlotList", "C_GetTokenInfo",
                                     "C_Initialize", "C_Finalize"]
    bad = [(n, spec.ckr_name(rv)) for n, rv in calls if rv != CKR_GENERAL_ERROR]
    assert not bad, f"expected CKR_GENERAL_ERROR from every call, got {bad}"


def test_failed_python_startup_answers_general_error_quietly(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-python-here"
    empty.mkdir()
    results = _run_calls(build_dir, tmp_path, host_env(conf, CRYPTOKI_SHIM_PYTHONHOME=str(empty)))
    _assert_every_call_general_error(results)


def test_failed_python_startup_is_logged_when_asked(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-python-here"
    empty.mkdir()
    log = tmp_path / "shim.log"
    results = _run_calls(build_dir, tmp_path, host_env(conf, CRYPTOKI_SHIM_PYTHONHOME=str(empty),
                                                        CRYPTOKI_SHIM_LOG=str(log)))
    _assert_every_call_general_error(results)
    assert str(empty) in log.read_text() and "standard library" in log.read_text()


@pytest.fixture
def broken_package(tmp_path: Path) -> Path:
    """A PYTHONPATH entry whose cryptoki_shim package raises on import."""
    pkg = tmp_path / "pythonpath" / "cryptoki_shim"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('raise ImportError("broken on purpose by the test")\n')
    return pkg.parent


def test_python_side_that_cannot_import_answers_general_error(build_dir: Path, conf: Path, tmp_path: Path,
                                                              broken_package: Path) -> None:
    """CRYPTOKI_SHIM_USE_PYTHON_ENV=1 lets PYTHONPATH in; it shadows our package with one that
    raises, so the embedding init cannot attach the entries: CKR_GENERAL_ERROR, never CKR_OK."""
    log = tmp_path / "shim.log"
    env = host_env(conf, CRYPTOKI_SHIM_USE_PYTHON_ENV="1", PYTHONPATH=str(broken_package),
                   CRYPTOKI_SHIM_LOG=str(log))
    _assert_every_call_general_error(_run_calls(build_dir, tmp_path, env))
    text = log.read_text()
    assert "broken on purpose by the test" in text and "did not attach" in text


def test_host_pythonpath_is_ignored_without_the_opt_in(build_dir: Path, conf: Path, tmp_path: Path,
                                                       broken_package: Path) -> None:
    """The control of the test above: the same PYTHONPATH without the opt-in changes nothing."""
    results = _run_calls(build_dir, tmp_path, host_env(conf, PYTHONPATH=str(broken_package)))
    assert results[1:3] == [("C_Initialize", CKR_OK), ("C_GetInfo", CKR_OK)]


# ---------------------------------------------------------------------- (f) Python versions

_OTHER_PYTHONS = {
    "3.12": "/root/.pyenv/versions/3.12.1/bin/python3.12",
    "3.10": "/root/.pyenv/versions/3.10.13/bin/python3.10",
    "3.13": "/root/.pyenv/versions/3.13.0/bin/python3.13",
}

_CTYPES_HOST = r'''
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
pp = ctypes.c_void_p()
print("C_GetFunctionList", lib.C_GetFunctionList(ctypes.byref(pp)), flush=True)
# CK_FUNCTION_LIST: a CK_VERSION padded to 8 bytes, then the pointers, C_Initialize first
init = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)(ctypes.c_void_p.from_address(pp.value + 8).value)
print("C_Initialize", init(None), flush=True)
lib.C_GetInfo.argtypes = [ctypes.c_void_p]
print("C_GetInfo", lib.C_GetInfo(ctypes.create_string_buffer(256)), flush=True)
print("alive", "%d.%d" % sys.version_info[:2], flush=True)
'''


@pytest.mark.parametrize("minor", sorted(_OTHER_PYTHONS))
def test_python_host_of_another_minor_version_is_refused(minor: str, conf: Path, tmp_path: Path, lib_path: Path) -> None:
    python = _OTHER_PYTHONS[minor]
    if not Path(python).exists():
        pytest.skip(f"{python} is not installed (pyenv)")
    assert minor != f"{sys.version_info.major}.{sys.version_info.minor}"
    script = tmp_path / "ctypes_host.py"
    script.write_text(_CTYPES_HOST)
    res = run([python, str(script), str(LIB)], host_env(conf), timeout=30)
    assert res.returncode == 0, f"the host crashed: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.stdout.splitlines() == [
        "C_GetFunctionList 0",
        f"C_Initialize {CKR_GENERAL_ERROR}",
        f"C_GetInfo {CKR_GENERAL_ERROR}",
        f"alive {minor}",
    ]
    assert res.stderr == ""


def test_python_version_check_unit(build_dir: Path) -> None:
    """shim_python_version_ok: same MAJOR.MINOR accepted; 3.12 vs 3.11 and 3.1 vs 3.11 refused."""
    res = run([str(compile_host(build_dir, "pyversion_test"))], dict(os.environ))
    assert res.returncode == 0 and res.stdout.startswith("OK"), res.stdout


# ---------------------------------------------------------------------- (g) exports and tables


def test_exports_are_exactly_the_92_functions() -> None:
    res = subprocess.run(["nm", "-D", "--defined-only", str(LIB)], capture_output=True, text=True, check=True)
    names = [line.split()[-1] for line in res.stdout.splitlines() if line.strip()]
    assert not [n for n in names if not n.startswith("C_")], "only C_* may be exported"
    assert sorted(names) == sorted(FUNCTIONS)
    assert len(FUNCTIONS) == 92


def _sweep(build_dir: Path, conf: Path, phase: str) -> tuple[list[str], dict[str, int]]:
    res = run([str(compile_host(build_dir, "host_sweep")), str(LIB), phase], host_env(conf))
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == "alive", (
        f"the host did not survive the {phase} sweep: exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr}")
    assert res.stderr == ""
    lines = res.stdout.splitlines()
    calls = {}
    for line in lines:
        words = line.split()
        if words[0] == phase:
            calls[words[1]] = int(words[2], 16)
    return lines, calls


def _not_implemented() -> set[str]:
    from cryptoki_shim.abi import entry

    for module in entry.ENTRY_MODULES:
        __import__(f"cryptoki_shim.abi.{module}")
    return {n for n in FUNCTIONS if n not in entry.IMPLEMENTATIONS and n not in TABLE_FUNCTIONS}


def test_function_tables_have_no_null_pointer(build_dir: Path, conf: Path) -> None:
    lines, _ = _sweep(build_dir, conf, "before")
    assert "version 2.40 2.40" in lines and "version 3.0 3.0" in lines
    tables = [line.split() for line in lines if line.startswith("table ")]
    assert len([t for t in tables if t[1] == "2.40"]) == 68
    assert len([t for t in tables if t[1] == "3.0"]) == 92
    assert all(t[3] == "1" for t in tables), [t for t in tables if t[3] != "1"]
    # the 2.40 list holds the same functions except C_GetInfo (index 2), which reports 2.40
    differing = [int(line.split()[1]) for line in lines if line.startswith("same ") and line.endswith(" 0")]
    assert differing == [FUNCTIONS.index("C_GetInfo")]


def test_every_function_before_initialize_is_not_initialized(build_dir: Path, conf: Path) -> None:
    _, calls = _sweep(build_dir, conf, "before")
    assert set(calls) == set(FUNCTIONS) - {"C_Initialize", "C_Finalize"}
    for name, rv in calls.items():
        expected = spec.CKR_ARGUMENTS_BAD if name in TABLE_FUNCTIONS else spec.CKR_CRYPTOKI_NOT_INITIALIZED
        assert rv == expected, f"{name} -> {spec.ckr_name(rv)}"


#: Calls that may succeed with these arguments. After C_Initialize with session 0: closing
#: the sessions of slot 0 (there are none). With a real session: starting a find with an
#: empty template and ending it, a NULL mechanism to the *Init functions (3.0: cancels the
#: operation), seeding with / generating 0 bytes, C_SessionCancel with no flags.
_MAY_SUCCEED = {
    "after": {"C_CloseAllSessions"},
    "session": {"C_FindObjectsInit", "C_FindObjectsFinal", "C_EncryptInit", "C_DecryptInit",
                "C_DigestInit", "C_SignInit", "C_VerifyInit", "C_SeedRandom", "C_GenerateRandom",
                "C_SessionCancel"},
}


@pytest.mark.parametrize("phase", ["after", "session"])
def test_every_function_with_null_arguments(build_dir: Path, conf: Path, phase: str) -> None:
    """Every 3.0 function with zeros / NULLs after C_Initialize (and with a real session):
    the host survives, every answer is a spec CKR, none is CKR_GENERAL_ERROR (an exception
    escaped: a bug), none is CKR_OK unless listed, unimplemented ones say NOT_SUPPORTED."""
    _, calls = _sweep(build_dir, conf, phase)
    skipped = {"C_Initialize", "C_Finalize"} | ({"C_CloseSession", "C_CloseAllSessions"} if phase == "session" else set())
    assert set(calls) == set(FUNCTIONS) - skipped
    unnamed = {n: hex(rv) for n, rv in calls.items() if spec.ckr_name(rv).startswith("0x")}
    assert not unnamed, f"return values the spec does not name: {unnamed}"
    general = [n for n, rv in calls.items() if rv == CKR_GENERAL_ERROR]
    assert not general, f"CKR_GENERAL_ERROR (an unexpected exception) from {general}"
    ok = {n for n, rv in calls.items() if rv == CKR_OK}
    assert ok <= _MAY_SUCCEED[phase], f"CKR_OK with NULL output pointers from {sorted(ok - _MAY_SUCCEED[phase])}"
    for name in _not_implemented():
        assert calls[name] == spec.CKR_FUNCTION_NOT_SUPPORTED, f"{name} -> {spec.ckr_name(calls[name])}"
    for name in TABLE_FUNCTIONS:
        assert calls[name] == spec.CKR_ARGUMENTS_BAD


# ---------------------------------------------------------------------- (h) silence


def test_normal_run_writes_nothing_to_stdout_or_stderr(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    results = _run_calls(build_dir, tmp_path, host_env(conf, CRYPTOKI_SHIM_LOG_LEVEL="debug"))
    assert [(n, spec.ckr_name(rv)) for n, rv in results] == [
        ("C_GetFunctionList", "CKR_OK"), ("C_Initialize", "CKR_OK"), ("C_GetInfo", "CKR_OK"),
        ("C_GetSlotList", "CKR_OK"), ("C_GetTokenInfo", "CKR_OK"),
        ("C_Initialize", "CKR_CRYPTOKI_ALREADY_INITIALIZED"), ("C_Finalize", "CKR_OK"), ("alive", spec.ckr_name(-1))]


def test_pkcs11_tool_output_is_the_same_with_and_without_our_log(conf: Path, tmp_path: Path) -> None:
    """pkcs11-tool -L: what the user sees is pkcs11-tool's alone; our debug log goes to its file."""
    tool = shutil.which("pkcs11-tool")
    if tool is None:
        pytest.fail("pkcs11-tool is not installed (apt-get install opensc)")
    cmd = [tool, "--module", str(LIB), "-L"]
    quiet = run(cmd, host_env(conf))
    log = tmp_path / "shim.log"
    logged = run(cmd, host_env(conf, CRYPTOKI_SHIM_LOG=str(log), CRYPTOKI_SHIM_LOG_LEVEL="debug"))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "cryptoki-shim" in quiet.stdout
    assert (logged.returncode, logged.stdout, logged.stderr) == (quiet.returncode, quiet.stdout, quiet.stderr)
    assert quiet.stderr == ""
    assert log.stat().st_size > 0, "the log file stayed empty: the comparison proves nothing"
