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
CLIENTS = ("pkcs11_tool", "openssl_engine", "p11kit", "gnutls", "nss", "java", "openssh",
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
