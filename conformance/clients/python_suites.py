"""python-pkcs11's and PyKCS11's own test suites, from their PyPI sdists, against the module.

The sdists are fetched once with ``pip download --no-deps --no-binary :all:`` into
``build/conformance-cache`` (python-pkcs11 at the version installed in the venv, so the suite
matches the library it tests; PyKCS11 installed with ``pip install --target`` into the same
cache). Each suite runs under pytest in a subprocess with the environment its README names
(module path, token label, PINs); every test case becomes one check of the report, so a
skipped test stays visible with the suite's own reason.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.runner import FAIL, PASS, SKIP, Check, Outcome, Skip
from conformance.target import CACHE, Context, Target

NAME = "python-suites"
#: Configuration of the run (not a weaker check): both suites count "all objects" and expect
#: an empty token once their own objects are gone; our CKO_PROFILE objects would be extra.
#: A second slot with an uninitialized token, as SoftHSM2 always shows (its free slot):
#: python-pkcs11's slot and token listing tests count two (``UNGATED`` below).
SLOT_OPTIONS = "profile_objects = false\n\n[[slots]]\nid = 1\nkdf_cost = \"test\"\nprofile_objects = false\n"
DESCRIPTION = "python-pkcs11 and PyKCS11 test suites from their PyPI sdists"


def requires(target: Target) -> str | None:
    return None


def _sdist(ctx: Context, project: str, version: str | None) -> Path:
    """The extracted sdist directory (downloaded once)."""
    dest = CACHE / project
    dest.mkdir(parents=True, exist_ok=True)
    spec = f"{project}=={version}" if version else project
    found = sorted(p for p in dest.glob("*.tar.gz") if version is None or version in p.name)
    if not found:
        # --no-binary for the project only: its build requirements (swig for PyKCS11) may be
        # wheels, pip needs them to read the sdist's metadata.
        p = ctx.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", project,
                     "-d", str(dest), spec], timeout=300)
        found = sorted(dest.glob("*.tar.gz"))
        if p.rc != 0 or not found:
            raise Skip(f"cannot download the {spec} sdist (offline?): {p.err.strip()[-300:]}")
    archive = found[-1]
    root = dest / archive.name.removesuffix(".tar.gz")
    if not root.exists():
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if (m.isfile() or m.isdir())
                       and not m.name.startswith("/") and ".." not in Path(m.name).parts]
            tar.extractall(dest, members=members)
    return root


def _junit(path: Path, prefix: str) -> list[Outcome]:
    outcomes = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{prefix}:{case.get('classname', '').split('.')[-1]}.{case.get('name')}"
        status, reason = PASS, ""
        for tag, st in (("failure", FAIL), ("error", FAIL), ("skipped", SKIP)):
            el = case.find(tag)
            if el is not None:
                status, reason = st, (el.get("message") or "") + "\n" + (el.text or "")[-1500:]
                break
        outcomes.append(Outcome(name, status, reason.strip(), float(case.get("time", 0)), prefix))
    return outcomes


def _site(ctx: Context, name: str, *packages: str) -> Path:
    """A --target directory with the suite's test-only requirements (not the venv's)."""
    site = CACHE / name
    if not site.exists():
        p = ctx.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(site), *packages], timeout=600)
        if p.rc != 0:
            shutil.rmtree(site, ignore_errors=True)
            raise Skip(f"cannot install {' '.join(packages)}: {p.err.strip()[-300:]}")
    return site


# Tests that assert a property of SoftHSM itself rather than of PKCS#11 (no configuration of
# the run can satisfy them on another module): reported as skipped, with this reason.
SOFTHSM_ONLY = {
    "test/test_LowLevel.py::TestUtil::test_LowLevel": "asserts CK_INFO.manufacturerID == 'SoftHSM'",
    "test/test_info.py::TestUtil::test_getInfo": "asserts manufacturerID 'SoftHSM' and its library description",
    "test/test_info.py::TestUtil::test_getSlotInfo": "asserts the slot manufacturerID is SoftHSM's",
    "test/test_info.py::TestUtil::test_getTokenInfo": "asserts the token manufacturerID is SoftHSM's",
    "test/test_gc.py::TestUtil::test_gc": "calls C_Logout with nobody logged in and expects CKR_OK (SoftHSM); "
    "PKCS#11 3.0 §5.6.8 lists CKR_USER_NOT_LOGGED_IN for it, which we return",
}


def _pytest(ctx: Context, cwd: Path, tests: str, prefix: str, env: dict[str, str], timeout: float = 900) -> list[Outcome]:
    report = ctx.path(f"{prefix}.xml")
    deselect = {} if ctx.kind == "softhsm2" else {k: v for k, v in SOFTHSM_ONLY.items() if k.startswith(tests + "/")}
    args = [a for node in deselect for a in ("--deselect", node)]
    p = ctx.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(report), *args, tests],
                env=env, cwd=cwd, timeout=timeout)
    if not report.exists():
        raise AssertionError(f"{prefix}: pytest produced no report:\n{p.text()}")
    outcomes = _junit(report, prefix) + [Outcome(f"{prefix}:{node.split('::', 1)[1]}", SKIP,
                                                 f"SoftHSM-specific: {why}", 0.0, prefix) for node, why in deselect.items()]
    if not outcomes:
        raise AssertionError(f"{prefix}: no test ran:\n{p.text()}")
    return outcomes


def python_pkcs11(ctx: Context) -> list[Outcome]:
    try:
        version = importlib.metadata.version("python-pkcs11")
    except importlib.metadata.PackageNotFoundError:
        raise Skip("python-pkcs11 is not installed in this Python") from None
    root = _sdist(ctx, "python-pkcs11", version)
    work = ctx.path("python-pkcs11")
    shutil.copytree(root / "tests", work / "tests")   # run the tests against the installed package
    deps = _site(ctx, "python-pkcs11-test-deps", "parameterized>=0.9.0")
    env = dict(ctx.env, PKCS11_MODULE=ctx.module, PKCS11_TOKEN_LABEL=ctx.label, PKCS11_TOKEN_PIN=ctx.pin,
               PKCS11_TOKEN_SO_PIN=ctx.so_pin, PYTHONPATH=str(deps))
    if ctx.kind != "softhsm2":
        _ungate_python_pkcs11(work / "tests")
        env.update(_second_module(ctx))
    return _pytest(ctx, work, "tests", "python-pkcs11", env)


#: python-pkcs11 tests marked ``@Only.softhsm2`` that test PKCS#11 itself, not SoftHSM: on
#: another module the runner removes the mark, so they run (more checks, never fewer). The
#: README of python-pkcs11 says why the marks exist: its CI has the SO PIN of SoftHSM only.
UNGATED = {
    "test_open_session_and_login_so": "C_Login as SO (the run knows the SO PIN)",
    "test_copy_object": "C_CopyObject, then counts all objects (profile objects are off)",
    "test_set_pin": "C_SetPIN back and forth",
    "test_init_pin": "C_InitPIN by the SO (the run knows the SO PIN)",
    "test_get_token": "the first slot's token: label and flags",
    "test_get_slots": "two slots, the first with a token (the run configures a second, free slot)",
    "test_get_tokens": "two tokens with CKF_RNG (the run configures a second, free slot)",
}
#: Still SoftHSM-only on other modules: the mark is replaced by a skip with this reason, so the
#: report says why (docs/conformance.md lists them).
STILL_GATED = {
    "test_import_key_params": "an EC public key with explicit curve parameters (specifiedCurve, the test's own "
                              "words: 'bad practice'): refused by design, only named curves are served "
                              "(CKR_DOMAIN_PARAMS_INVALID)",
}
_ONLY_SOFTHSM = re.compile(r"@Only\.softhsm2[^\n]*\n(\s*)def (test_\w+)")


def _ungate_python_pkcs11(test_dir: Path) -> None:
    def ungate(m: re.Match[str]) -> str:
        indent, name = m.group(1), m.group(2)
        if name in STILL_GATED:
            return f"@__import__('unittest').skip({STILL_GATED[name]!r})\n{indent}def {name}"
        if name not in UNGATED:
            return m.group(0)
        return f"# conformance runner: SoftHSMv2-only gate off\n{indent}def {name}"

    for path in test_dir.glob("*.py"):
        text = path.read_text()
        new = _ONLY_SOFTHSM.sub(ungate, text)
        if new != text:
            path.write_text(new)


def _second_module(ctx: Context) -> dict[str, str]:
    """``PKCS11_MODULE2`` for python-pkcs11's MultilibTests (two different libraries loaded in
    one process): SoftHSM2 with an empty private token directory, when it is installed."""
    softhsm = Path("/usr/lib/softhsm/libsofthsm2.so")
    if not softhsm.exists():
        return {}
    tokens = ctx.path("softhsm-tokens")
    tokens.mkdir(exist_ok=True)
    conf = ctx.path("softhsm2.conf")
    conf.write_text(f"directories.tokendir = {tokens}/\nobjectstore.backend = file\nlog.level = ERROR\n")
    return {"PKCS11_MODULE2": str(softhsm), "SOFTHSM2_CONF": str(conf)}


def pykcs11(ctx: Context) -> list[Outcome]:
    root = _sdist(ctx, "PyKCS11", None)
    version = root.name.rsplit("-", 1)[1]
    site = _site(ctx, f"PyKCS11-{version}-site", f"PyKCS11=={version}")
    work = ctx.path("pykcs11")
    shutil.copytree(root / "test", work / "test")
    if ctx.kind != "softhsm2":
        _ungate_softhsm_versions(work / "test")
    # PyKCS11's tests take the module from PYKCS11LIB and hard-code user PIN "1234" (ours) and
    # SO PIN "123456" (its CI's softhsm2-util line): give this token that SO PIN (C_SetPIN as SO).
    ctx.tool("--change-pin", "--login", "--login-type", "so", "--so-pin", ctx.so_pin, "--new-pin", "123456")
    ctx.so_pin = "123456"
    env = dict(ctx.env, PYKCS11LIB=ctx.module, PYTHONPATH=str(site))
    return _pytest(ctx, work, "test", "PyKCS11", env)


_VERSION_GATE = re.compile(r"(self\.SoftHSMversion = )(.*libraryVersion\[0\])")
#: the same gate where the test keeps the whole CK_VERSION tuple (``< (2, 0)``, ``<= (2, 6)``:
#: SoftHSM releases before a mechanism was added)
_TUPLE_GATE = re.compile(r"(self\.SoftHSMversion = )(.*libraryVersion)$", re.M)


def _ungate_softhsm_versions(test_dir: Path) -> None:
    """PyKCS11 skips RSA X.509/OAEP/PSS, ECDSA, generateKey... when CK_INFO.libraryVersion's
    major is below 2, a gate meant for SoftHSM 1.x. On another module that gate says nothing
    about the module (ours is version 0.x), so those tests run: more checks, never fewer. The
    tests that keep the whole version tuple also gate mechanisms on SoftHSM releases
    (``<= (2, 6)``: CKM_CONCATENATE_*); they run too, and fail if we lack the mechanism."""
    for path in test_dir.glob("*.py"):
        text = path.read_text()
        new = _VERSION_GATE.sub(r"\g<1>2  # conformance runner: SoftHSM 1.x gate off (was \2)", text)
        new = _TUPLE_GATE.sub(r"\g<1>(99, 0)  # conformance runner: SoftHSM version gates off (was \2)", new)
        if new != text:
            path.write_text(new)


CHECKS = [Check("python-pkcs11 suite", python_pkcs11, "python-pkcs11 tests/"),
          Check("PyKCS11 suite", pykcs11, "PyKCS11 test/")]


def checks(target: Target) -> list[Check]:
    return CHECKS
