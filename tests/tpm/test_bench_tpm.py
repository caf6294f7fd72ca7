"""``python -m bench.tpm`` runs end to end (issue 5): both PKCS#11 modules — tpm2-pkcs11 and
ours — made a P-256 key on the same swtpm, produced a signature that verifies under the
key's public point, and got a sign rate; the latency table is filled. A tiny count: this
checks the benchmark works, not how fast anything is (no timing assert)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TPM2_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so")


@pytest.mark.skipif(shutil.which("swtpm") is None, reason="swtpm not installed")
def test_benchmark_compares_tpm2_pkcs11_and_ours(lib_path):
    if not TPM2_PKCS11.exists():
        pytest.fail(f"{TPM2_PKCS11} missing: apt-get install libtpm2-pkcs11-1 (./run installs it)")
    proc = subprocess.run([sys.executable, "-m", "bench.tpm", "--count", "2", "--rounds", "1", "--latency-n", "1",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    sign = result["sign"]
    assert set(sign) == {"tpm2-pkcs11 (P-256 in the TPM)", "cryptoki-shim resident P-256 (in the TPM)",
                         "cryptoki-shim sealed P-256 (unsealed, cached)"}
    for name, row in sign.items():
        assert row["verified"] is True, name
        assert row["ops_per_s"] > 0, name
    assert set(result["latency_ms"]) == {"seal (32-byte data key)", "unseal",
                                         "sealed Ed25519 sign, cache 0 s (unseal + sign)",
                                         "sealed Ed25519 sign after unseal (cache warm)"}
    assert all(ms > 0 for ms in result["latency_ms"].values())
