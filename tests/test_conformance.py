"""The conformance runner against OUR module: every client, zero failures.

Runs ``python -m conformance --module build/libcryptoki_shim.so`` in a subprocess (each
client gets a fresh token) and reads the JSON report, so a failure names the client, the
check and its reason. SoftHSM2's side of the table is ``make conformance``'s job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "build" / "libcryptoki_shim.so"
CLIENTS = ("pkcs11_tool", "openssl_engine", "openssl_provider", "p11kit", "gnutls", "nss", "java", "openssh",
           "python_suites", "spec_clauses")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not LIB.exists():
        pytest.fail(f"{LIB} is not built: run `make build`")
    out = tmp_path_factory.mktemp("conformance")
    proc = subprocess.run([sys.executable, "-m", "conformance", "--module", str(LIB), "--json-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    path = out / "conformance-cryptoki-shim.json"
    assert path.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(path.read_text())


def test_every_client_is_reported(report: dict) -> None:
    from conformance.clients import CLIENTS as registered
    assert tuple(registered) == CLIENTS
    assert len(report["clients"]) == len(CLIENTS)
    for client in report["clients"]:
        assert client["passed"] + client["failed"] + client["skipped"] > 0, client["client"]


@pytest.mark.parametrize("index", range(len(CLIENTS)), ids=CLIENTS)
def test_client_has_no_failure(report: dict, index: int) -> None:
    client = report["clients"][index]
    failed = [f"{c['name']}: {c['reason'][:800]}" for c in client["checks"] if c["status"] == "failed"]
    assert not failed, "\n".join(failed)
    assert not client["skipped_reason"], f"{client['client']} could not run: {client['skipped_reason']}"
    assert client["passed"] > 0, client


def test_a_skipped_client_is_never_counted_as_passed(tmp_path: Path) -> None:
    """The runner's rule (issue 7): a client that cannot run is skipped with its reason."""
    from conformance.runner import SKIP, run_client
    from conformance.target import Target
    import conformance.clients.java as java

    original = java.requires
    java.requires = lambda target: "no java here"
    try:
        rep = run_client(Target(LIB), "java")
    finally:
        java.requires = original
    assert rep.skipped_reason == "no java here"
    assert rep.count("passed") == 0 and rep.count("failed") == 0
    assert rep.outcomes and all(o.status == SKIP for o in rep.outcomes)


def _provider_section() -> str:
    text = (ROOT / "docs" / "clients.md").read_text()
    start = text.index("## OpenSSL 3 (pkcs11-provider)")
    return text[start:text.index("\n## ", start + 1)]


def test_openssl_provider_cnf_is_the_documented_one() -> None:
    """docs/clients.md shows the openssl.cnf the openssl-provider checks run with (early load
    in full, and every line of the forced / rand / PEM-URI variants)."""
    from conformance.clients.openssl_provider import MODES, openssl_cnf

    section = _provider_section()
    provider = "/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so"
    assert openssl_cnf(provider, "LIB", "PINFILE", early=True) in section
    for mode, flags in MODES.items():
        for line in openssl_cnf(provider, "LIB", "PINFILE", **flags).splitlines():
            assert line in section.splitlines(), f"{mode}: {line!r} is not in docs/clients.md"


def test_openssl_provider_stderr_rule_tells_module_lines_from_openssl_ones(tmp_path: Path) -> None:
    """The check "stderr: nothing from the module": OpenSSL's error stack and application
    messages pass; our log format, cffi's and Python's reports never do, whatever the exit."""
    from conformance.clients.openssl_provider import Run, foreign_lines

    def lines(err: str, rc: int) -> list[str]:
        return foreign_lines(Run(["openssl", "dgst"], rc, "", err, tmp_path / "none.log"))

    openssl_own = ("80EBF5F5E27F0000:error:16000069:STORE routines:ossl_store_get0_loader_int:"
                   "unregistered scheme:../crypto/store/store_register.c:237:scheme=file\n"
                   "Using default temp DH parameters\nACCEPT\n")
    assert lines(openssl_own, 0) == []
    assert lines("Could not read key from pkcs11:token=x\n" + openssl_own, 1) == []
    module = ["2026-12-03 15:13:34,596 cryptoki-shim[18266] INFO cryptoki_shim.core.module: initialized",
              "Exception ignored from cffi callback <function C_DigestUpdate at 0x7f>:",
              "Traceback (most recent call last):",
              '  File "/work/main/cryptoki_shim/abi/entry.py", line 10, in wrapper',
              "RecursionError: maximum recursion depth exceeded"]
    for rc in (0, 1):
        assert lines("\n".join(module) + "\n", rc) == module
    assert lines("something unexpected\n", 0) == ["something unexpected"]
