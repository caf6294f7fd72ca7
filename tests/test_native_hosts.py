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
CKR_FUNCTION_FAILED = int(spec.CKR_FUNCTION_FAILED)

#: Variables of the developer's shell that would change what the library does.
_SCRUBBED = ("CRYPTOKI_SHIM_LOG", "CRYPTOKI_SHIM_LOG_LEVEL", "CRYPTOKI_SHIM_PYTHONHOME",
             "CRYPTOKI_SHIM_USE_PYTHON_ENV", "CRYPTOKI_SHIM_CONF", "PYTHONPATH", "PYTHONHOME")


# ---------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory, lib_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the C host programs (apt-get install gcc)")
    return tmp_path_factory.mktemp("hosts")


def compile_host(build_dir: Path, name: str, *flags: str) -> Path:
    """gcc tests/native/<name>.c -> <build_dir>/<name> (once per session); ``flags`` are
    extra gcc flags (``-rdynamic``: the host's own symbols interpose on libc's)."""
    out = build_dir / name
    if not out.exists():
        cmd = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", *flags,
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


def test_exports_are_exactly_the_104_functions() -> None:
    res = subprocess.run(["nm", "-D", "--defined-only", str(LIB)], capture_output=True, text=True, check=True)
    names = [line.split()[-1] for line in res.stdout.splitlines() if line.strip()]
    assert not [n for n in names if not n.startswith("C_")], "only C_* may be exported"
    assert sorted(names) == sorted(FUNCTIONS)
    assert len(FUNCTIONS) == 104


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
    assert {"version 2.40 2.40", "version 3.0 3.0", "version 3.2 3.2"} <= set(lines)
    tables = [line.split() for line in lines if line.startswith("table ")]
    assert len([t for t in tables if t[1] == "2.40"]) == 68
    assert len([t for t in tables if t[1] == "3.0"]) == 92
    assert len([t for t in tables if t[1] == "3.2"]) == 104
    assert all(t[3] == "1" for t in tables), [t for t in tables if t[3] != "1"]
    # the older lists hold the same functions as the 3.2 one except C_GetInfo (index 2),
    # which reports their own version
    for prefix in ("same240 ", "same30 "):
        differing = [int(line.split()[1]) for line in lines if line.startswith(prefix) and line.endswith(" 0")]
        assert differing == [FUNCTIONS.index("C_GetInfo")], prefix


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
                "C_SessionCancel", "C_SignRecoverInit", "C_VerifyRecoverInit", "C_MessageEncryptInit",
                "C_MessageDecryptInit", "C_MessageSignInit", "C_MessageVerifyInit",
                "C_VerifySignatureInit"},
}


@pytest.mark.parametrize("phase", ["after", "session"])
def test_every_function_with_null_arguments(build_dir: Path, conf: Path, phase: str) -> None:
    """Every 3.2 function with zeros / NULLs after C_Initialize (and with a real session):
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


# ---------------------------------------------------------------------- (i) a guest in the host (issue 25)


def _key_values(stdout: str) -> dict[str, int]:
    """host_reenter's "key 0x<rv>" / "levels <n>" lines."""
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(" ")
        if value:
            out[key] = int(value, 0)
    return out


def test_reentry_is_refused_and_a_nested_finalize_keeps_the_module(build_dir: Path, conf: Path,
                                                                   tmp_path: Path) -> None:
    """A call that comes back into the module on the thread that is inside C_GetTokenInfo
    (the host's getpid(), called by our os.getpid(), plays pkcs11-provider): C_GetInfo,
    C_Finalize and C_Initialize are refused with CKR_FUNCTION_FAILED and one log line each;
    the outer call succeeds and the module is still initialized after it. Before the guard
    the nested C_Finalize answered CKR_OK and reset the module under the outer call."""
    host = compile_host(build_dir, "host_reenter", "-rdynamic")
    log = tmp_path / "shim.log"
    res = run([str(host), str(LIB), "nested"], host_env(conf, CRYPTOKI_SHIM_LOG=str(log)))
    assert_ok(res)
    got = _key_values(res.stdout)
    assert got["levels"] == 1, "the host's hook never ran inside the call: the test proves nothing"
    assert {k: spec.ckr_name(got[k]) for k in ("nested_info", "nested_finalize", "nested_initialize")} == {
        "nested_info": "CKR_FUNCTION_FAILED", "nested_finalize": "CKR_FUNCTION_FAILED",
        "nested_initialize": "CKR_FUNCTION_FAILED"}
    assert (got["outer"], got["after_info"], got["after_token_info"], got["finalize"]) == (CKR_OK,) * 4
    refused = re.findall(r" (C_\w+) refused \(CKR_FUNCTION_FAILED\)", log.read_text())
    assert refused == ["C_GetInfo", "C_Finalize", "C_Initialize"]


def test_reentry_never_recurses(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    """The hook calls C_GetTokenInfo, whose getpid() would call the hook again (the issue saw
    ~250 levels to a RecursionError): the first nested call is refused, nothing recurses,
    nothing reaches stderr (with our log on and off)."""
    host = compile_host(build_dir, "host_reenter", "-rdynamic")
    for extra in ({}, {"CRYPTOKI_SHIM_LOG": str(tmp_path / "shim.log"), "CRYPTOKI_SHIM_LOG_LEVEL": "debug"}):
        res = run([str(host), str(LIB), "recurse"], host_env(conf, **extra))
        assert_ok(res)
        got = _key_values(res.stdout)
        assert got["nested_token_info"] == CKR_FUNCTION_FAILED
        # each getpid() of the outer call (and of our log line) runs the hook once; recursion
        # went ~140 levels deep before the guard
        assert 1 <= got["levels"] <= 10, f"{got['levels']} nested levels"
        assert got["outer"] == CKR_OK and got["after_token_info"] == CKR_OK


#: Host OpenSSL configurations that break every fetch of a library context that reads them.
_FORCED_PROPERTIES = """openssl_conf = openssl_init
[openssl_init]
alg_section = evp_properties
[evp_properties]
default_properties = provider=nonexistent
"""
_PKCS11_PROVIDER = Path("/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so")
_PKCS11_EARLY = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = {provider}
pkcs11-module-path = {lib}
pkcs11-module-load-behavior = early
activate = 1
"""


@pytest.mark.parametrize("openssl_conf", ["forced-properties", "pkcs11-provider-early"])
def test_host_openssl_configuration_does_not_reach_our_crypto(build_dir: Path, conf: Path, tmp_path: Path,
                                                              openssl_conf: str) -> None:
    """OPENSSL_CONF in a C host that never uses OpenSSL (containers and service units set it):
    token, login (Argon2id in the wheel's OpenSSL), EC key pair, ECDSA through the native
    signer (fastsign.c, private library context), verify, random: all work, nothing on
    stderr. Before: C_InitToken answered CKR_GENERAL_ERROR (forced properties) or
    CKR_CRYPTOKI_NOT_INITIALIZED (pkcs11-provider started inside our import and its nested
    C_Finalize reset the module), and the native signer refused every key."""
    if openssl_conf == "pkcs11-provider-early":
        if not _PKCS11_PROVIDER.exists():
            pytest.skip("pkcs11-provider is not installed (./run installs it)")
        text = _PKCS11_EARLY.format(provider=_PKCS11_PROVIDER, lib=LIB)
    else:
        text = _FORCED_PROPERTIES
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text(text)
    log = tmp_path / "shim.log"
    host = compile_host(build_dir, "host_hermetic")
    res = run([str(host), str(LIB)], host_env(conf, OPENSSL_CONF=str(cnf), CRYPTOKI_SHIM_LOG=str(log),
                                              CRYPTOKI_SHIM_LOG_LEVEL="debug"))
    assert_ok(res)
    text = log.read_text()
    assert "native ECDSA signer ready" in text, "fastsign.c refused the key: it used the host's library context"
    assert "unexpected error" not in text


def test_unwritable_log_fails_nothing_and_prints_nothing(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    """Issue 15 item 6: CRYPTOKI_SHIM_LOG names a file in a missing directory. Before: the
    failing handler's exception escaped every logging call (C_Initialize answered
    CKR_GENERAL_ERROR) and cffi printed "Exception ignored from cffi callback" and a
    traceback on the host's stderr. Now the records are dropped and every call is answered
    as without a log (``_run_calls`` requires empty stdout and stderr)."""
    results = _run_calls(build_dir, tmp_path, host_env(conf, CRYPTOKI_SHIM_LOG=str(tmp_path / "missing" / "x.log"),
                                                        CRYPTOKI_SHIM_LOG_LEVEL="debug"))
    assert [(n, spec.ckr_name(rv)) for n, rv in results][:5] == [
        ("C_GetFunctionList", "CKR_OK"), ("C_Initialize", "CKR_OK"), ("C_GetInfo", "CKR_OK"),
        ("C_GetSlotList", "CKR_OK"), ("C_GetTokenInfo", "CKR_OK")]


def test_unwritable_log_from_the_config_file(build_dir: Path, tmp_path: Path) -> None:
    """The same through ``[log] file`` of the configuration (configured by C_Initialize)."""
    conf = write_config(tmp_path, extra=f'[log]\nfile = "{tmp_path / "missing" / "x.log"}"\nlevel = "debug"\n')
    results = _run_calls(build_dir, tmp_path, host_env(conf))
    assert [spec.ckr_name(rv) for _, rv in results][1:5] == ["CKR_OK"] * 4


_DEBIAN_PYTHON = Path("/usr/bin/python3")

#: A Python host (Debian's python3, the same minor version as our venv) with a package
#: directory ahead of everything on sys.path that holds an old `cryptography` without
#: Argon2id (what Debian's python3-cryptography 38 is to us).
_PY_HOST = r'''
import ctypes, os, sys
stub, lib_path, mode = sys.argv[1:4]
sys.path.insert(0, stub)
if mode.startswith("preimported"):  # preimported[:<package>], cryptography by default
    __import__(mode.partition(":")[2] or "cryptography")
lib = ctypes.CDLL(lib_path)
u = ctypes.c_ulong
def call(name, *args):
    rv = getattr(lib, name)(*args)
    print(name, rv, flush=True)
    return rv
pin_so, pin = b"12345678", b"1234"
label = b"py-host".ljust(32)
h = u()
call("C_Initialize", None)
call("C_InitToken", u(0), pin_so, u(len(pin_so)), label)
call("C_OpenSession", u(0), u(6), None, None, ctypes.byref(h))
call("C_Login", h, u(0), pin_so, u(len(pin_so)))
call("C_InitPIN", h, pin, u(len(pin)))
call("C_Logout", h)
call("C_Login", h, u(1), pin, u(len(pin)))
mod = sys.modules.get("cryptography")
print("cryptography", getattr(mod, "__file__", None))
'''


@pytest.fixture
def old_cryptography(tmp_path: Path) -> Path:
    pkg = tmp_path / "host-packages" / "cryptography"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "38.0.4"  # a stand-in without Argon2id\n')
    return pkg.parent


def _python_host(mode: str, conf: Path, tmp_path: Path, stub: Path, log: Path | None = None,
                 **extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    if not _DEBIAN_PYTHON.exists():
        pytest.skip("/usr/bin/python3 is not installed")
    script = tmp_path / "py_host.py"
    script.write_text(_PY_HOST)
    log = log or tmp_path / "shim.log"
    res = run([str(_DEBIAN_PYTHON), str(script), str(stub), str(LIB), mode],
              host_env(conf, CRYPTOKI_SHIM_LOG=str(log), **extra), timeout=60)
    return res, log


@pytest.mark.parametrize("openssl_conf", ["unset", "forced-properties"])
def test_python_host_packages_do_not_shadow_ours(conf: Path, tmp_path: Path, old_cryptography: Path,
                                                 lib_path: Path, openssl_conf: str) -> None:
    """Issue 15 item 11: a Python host whose sys.path offers an old cryptography first. Our
    venv's site-packages go ahead of it, so C_Login (Argon2id) works. Before: they were
    appended, the old copy won, and C_InitToken/C_Login answered CKR_GENERAL_ERROR. The
    same with the host's OPENSSL_CONF forcing properties no provider has (issue 25)."""
    extra = {}
    if openssl_conf == "forced-properties":
        (tmp_path / "openssl.cnf").write_text(_FORCED_PROPERTIES)
        extra["OPENSSL_CONF"] = str(tmp_path / "openssl.cnf")
    res, _ = _python_host("path", conf, tmp_path, old_cryptography, **extra)
    assert res.returncode == 0 and res.stderr == "", f"{res.stdout}\n{res.stderr}"
    lines = res.stdout.splitlines()
    assert lines[:7] == [f"{n} 0" for n in ("C_Initialize", "C_InitToken", "C_OpenSession", "C_Login",
                                           "C_InitPIN", "C_Logout", "C_Login")], res.stdout
    assert str(old_cryptography) not in lines[7]


@pytest.mark.parametrize("package, version", [("cryptography", "38.0.4"), ("pqcrypto", "0.3.4")])
def test_python_host_that_imported_another_version_is_refused_clearly(conf: Path, tmp_path: Path,
                                                                      old_cryptography: Path,
                                                                      lib_path: Path, package: str,
                                                                      version: str) -> None:
    """The host imported its old cryptography (or pqcrypto, an optional dependency our venv
    has) before loading us: we cannot have ours, so every call answers CKR_GENERAL_ERROR from
    the start (not a failing C_Login later), and the log says which package, which version,
    from where, and what to do."""
    if package != "cryptography":
        (old_cryptography / package).mkdir()
        (old_cryptography / package / "__init__.py").write_text(f'__version__ = "{version}"\n')
    res, log = _python_host(f"preimported:{package}", conf, tmp_path, old_cryptography)
    assert res.returncode == 0 and res.stderr == "", f"{res.stdout}\n{res.stderr}"
    assert res.stdout.splitlines()[0] == f"C_Initialize {CKR_GENERAL_ERROR}"
    text = log.read_text()
    assert f"already imported {package} {version}" in text and str(old_cryptography / package) in text


def test_python_host_with_unwritable_log_prints_nothing(conf: Path, tmp_path: Path, old_cryptography: Path,
                                                        lib_path: Path) -> None:
    """Issue 15 item 6 in a Python host, whose sys.stderr is the host's own: an unwritable log
    changes no answer and prints nothing (before: "Exception ignored from cffi callback"
    and a traceback per failing call, and C_Initialize answered CKR_GENERAL_ERROR)."""
    res, _ = _python_host("path", conf, tmp_path, old_cryptography, log=tmp_path / "missing" / "x.log")
    assert res.returncode == 0 and res.stderr == "", f"{res.stdout}\n{res.stderr}"
    assert res.stdout.splitlines()[:7] == [f"{n} 0" for n in ("C_Initialize", "C_InitToken", "C_OpenSession",
                                                              "C_Login", "C_InitPIN", "C_Logout", "C_Login")]


# ---------------------------------------------------------------------- (m) message-based functions


def test_c_host_message_based_functions(build_dir: Path, conf: Path) -> None:
    """Issue 17 item 5, a 3.0 C client: C_EncryptMessage gives GCM test case 2 with the tag in
    pTag, CKG_GENERATE_COUNTER writes the IV back, a multi-part message decrypts, IV reuse is
    refused, C_SignMessage/C_VerifyMessage give and accept RFC 4231 case 2
    (tests/native/host_message.c)."""
    host = compile_host(build_dir, "host_message")
    assert_ok(run([str(host), str(LIB)], host_env(conf)))
