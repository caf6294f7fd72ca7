"""python-pkcs11's own test suite, run against our module as a real client would.

The suite of the installed python-pkcs11 version is fetched once from PyPI as the sdist
(``pip download --no-binary``) into ``build/pypkcs11/`` and only its ``tests/`` directory is
run (the sdist's ``pkcs11/`` package would shadow the installed, compiled one). Its one
extra dependency, ``parameterized``, is installed next to it with ``pip --target``.

Configuration of the run, not weakened checks (tests/__init__.py of the suite):
  * PKCS11_MODULE is a symlink named ``libsofthsm2.so`` to our library, so the suite's
    ``Only.softhsm2`` tests (SO login, C_InitPIN/C_SetPIN, two slots, copy) run too: they
    are marked SoftHSM-only because the authors only have credentials there, and we do.
  * two slots (0 initialized "tests", 1 left uninitialized), as softhsm2-util --free gives
    (test_get_slots / test_get_tokens count two slots and two tokens with CKF_RNG);
  * PKCS11_TOKEN_PIN / _SO_PIN are our fixtures' PINs.

Asserted: no failure or error, and the skipped tests are exactly ``EXPECTED_SKIPS`` (each is
about a mechanism we do not claim). ``DESELECTED`` are tests whose assumption contradicts a
deliberate choice of ours, each with the reason; the report lists them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from p11 import SO_PIN, USER_PIN, write_config
from p11 import P11, ffi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "pypkcs11"
PY = sys.executable

#: mechanism numbers in the suite's "Requires ..." skip messages, and why we do not claim them
#: (none since DSA, PKCS#3 DH, ML-DSA and ML-KEM are served: issues 17 and 23)
UNCLAIMED: dict[int, str] = {}

#: test id (module.Class.test) | the suite's skip message; every "Requires N" names only
#: mechanisms of UNCLAIMED (checked against our C_GetMechanismList below)
_SKIP_TABLE = """
    test_multilib.MultilibTests.test_double_initialise_different_libs | Requires an additional PKCS#11 module
"""
EXPECTED_SKIPS: dict[str, str] = dict(
    (f"tests.{k.strip()}", v.strip()) for k, v in (ln.split("|") for ln in _SKIP_TABLE.strip().splitlines()))


#: tests not run, each with the choice of ours it contradicts
DESELECTED = {
    "tests/test_ecc.py::ECCTests::test_import_key_params":
        "explicit (specifiedCurve) EC parameters: we take named curves only (CKR_DOMAIN_PARAMS_INVALID)",
}


def _suite_dir() -> Path:
    """build/pypkcs11/run/tests of the installed version, fetched once."""
    version = metadata.version("python-pkcs11")
    run = CACHE / f"run-{version}"
    if (run / "tests" / "__init__.py").exists() and (CACHE / "site" / "parameterized").exists():
        return run
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist = CACHE / f"python_pkcs11-{version}.tar.gz"
    if not sdist.exists():
        subprocess.run([PY, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"python-pkcs11=={version}", "-d", str(CACHE)], check=True)
    prefix = f"python_pkcs11-{version}/tests/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for m in members:
            m.name = "tests/" + m.name[len(prefix):]
        tar.extractall(run, members=members)  # names checked above: all under tests/
    if not (CACHE / "site" / "parameterized").exists():
        subprocess.run([PY, "-m", "pip", "install", "-q", "--no-deps", "--target", str(CACHE / "site"),
                        "parameterized"], check=True)
    return run


@pytest.fixture(scope="module")
def suite_result(lib_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    try:
        run = _suite_dir()
    except (subprocess.CalledProcessError, OSError) as exc:  # no network on first run
        pytest.fail(f"cannot fetch python-pkcs11's test suite: {exc}")
    work = tmp_path_factory.mktemp("pypkcs11")
    # profile_objects = false: the suite counts "all objects" (configuration of the run, see
    # conformance/clients/python_suites.py), not a weaker check.
    slot = 'kdf_cost = "test"\nprofile_objects = false\n'
    conf = write_config(work, slots=f'[[slots]]\nid = 0\n{slot}\n[[slots]]\nid = 1\n{slot}')
    module = work / "libsofthsm2.so"
    module.symlink_to(lib_path.resolve())
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), PKCS11_MODULE=str(module), PKCS11_TOKEN_LABEL="tests",
               PKCS11_TOKEN_PIN=USER_PIN.decode(), PKCS11_TOKEN_SO_PIN=SO_PIN.decode(),
               PYTHONPATH=str(CACHE / "site"))
    # the token, made through our own client in a child so this process keeps no state
    init = ("import sys; sys.path.insert(0, %r); from p11 import P11; c = P11(%r); c.initialize();"
            "c.init_token(0, %r, 'tests'); s = c.open(0); c.login(s, %r, user=0); c.init_pin(s, %r);"
            "c.close(s); c.finalize()") % (str(ROOT / "tests"), str(module), SO_PIN, SO_PIN, USER_PIN)
    subprocess.run([PY, "-c", init], env=env, check=True, timeout=60)
    xml = Path(os.environ.get("PYPKCS11_JUNIT", work / "junit.xml"))
    (run / "pytest.ini").write_text("[pytest]\n")  # its own rootdir, not our pyproject's
    argv = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", f"--junitxml={xml}"]
    argv += [f"--deselect={d}" for d in DESELECTED]
    proc = subprocess.run(argv, cwd=run, env=env, capture_output=True, text=True, timeout=900)
    if not xml.exists():
        pytest.fail(f"suite did not run (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(xml).iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        state, text = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                state, text = child.tag, (child.get("message") or "")
        outcomes[name] = (state, text)
    outcomes["<exit>"] = (str(proc.returncode), proc.stdout[-2000:])
    return outcomes


def test_python_pkcs11_suite_has_no_failures(suite_result: dict[str, tuple[str, str]]) -> None:
    bad = {k: v for k, v in suite_result.items() if v[0] in ("failure", "error")}
    assert not bad, "\n".join(f"{k}: {v[0]}: {v[1][:300]}" for k, v in bad.items())
    # pytest exit 0 (all passed/skipped); a crash at exit (signal) would be negative
    assert suite_result["<exit>"][0] == "0", suite_result["<exit>"][1]
    passed = sum(1 for v in suite_result.values() if v[0] == "passed")
    assert passed >= 110, f"only {passed} tests passed"


def test_python_pkcs11_suite_skips_only_unclaimed_mechanisms(suite_result: dict[str, tuple[str, str]]) -> None:
    skipped = {k: v[1] for k, v in suite_result.items() if v[0] == "skipped"}
    assert set(skipped) == set(EXPECTED_SKIPS), (
        f"unexpected skips: {sorted(set(skipped) - set(EXPECTED_SKIPS))}; "
        f"now running: {sorted(set(EXPECTED_SKIPS) - set(skipped))}")
    for name, reason in EXPECTED_SKIPS.items():
        assert skipped[name] == reason, (name, skipped[name])
        if reason.startswith("Requires ") and "module" not in reason:
            assert {int(n) for n in reason[len("Requires "):].split(",")} <= set(UNCLAIMED), name


def _required_mechanisms() -> set[int]:
    """Every mechanism the suite's ``@requires(Mechanism.X, ...)`` decorators name."""
    import pkcs11

    names = set()
    for source in (_suite_dir() / "tests").glob("*.py"):
        for args in re.findall(r"@requires\(([^)]*)\)", source.read_text()):
            names |= set(re.findall(r"Mechanism\.(\w+)", args))
    return {int(pkcs11.Mechanism[name]) for name in names}


def test_required_mechanisms_are_listed_unless_unclaimed(lib_path: Path, shim_conf: Path) -> None:
    """The skip list stays honest both ways: every mechanism the suite's tests require is in our
    C_GetMechanismList (so those tests run), and those of UNCLAIMED are really absent."""
    required = _required_mechanisms()
    assert len(required) > 20, sorted(required)  # the decorators were found
    client = P11(lib_path)
    client.initialize()
    try:
        n = ffi.new("CK_ULONG *")
        client.check("C_GetMechanismList", 0, ffi.NULL, n)
        arr = ffi.new("CK_MECHANISM_TYPE[]", n[0])
        client.check("C_GetMechanismList", 0, arr, n)
        listed = {arr[i] for i in range(n[0])}
    finally:
        client.finalize()
    assert not listed & set(UNCLAIMED), sorted(listed & set(UNCLAIMED))
    assert required - set(UNCLAIMED) <= listed, sorted(required - set(UNCLAIMED) - listed)
