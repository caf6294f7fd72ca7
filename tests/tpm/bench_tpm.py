"""Latency of the TPM backend on a fresh swtpm: `.venv/bin/python tests/tpm/bench_tpm.py`.

Prints median milliseconds of: seal (one locked unit: connect, SRK, seal a 32-byte data
key), unseal, resident ECDSA P-256 / RSA-2048 sign, sealed Ed25519 sign with the unseal
cache cold (0 s) and warm. Numbers go into docs/tpm.md "Performance".
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from swtpm_helper import Swtpm  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends import tpm_conn, tpm_keys  # noqa: E402
from cryptoki_shim.backends.tpm import TpmBackend  # noqa: E402
from cryptoki_shim.config import SlotConfig  # noqa: E402
from cryptoki_shim.mechanisms.registry import lookup  # noqa: E402

PCRS = "sha256:16"


def median_ms(fn, n: int = 30) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


class Key:
    def __init__(self, attrs):
        self.attrs, self.cache, self.unique_id = attrs, {}, "bench"


def main() -> None:
    tpm = Swtpm()
    tpm.start()
    try:
        out = {}
        with tpm_conn.open_tpm(tpm.tcti, "bench") as conn:
            blob = tpm_keys.seal(conn, b"k" * 32, b"a" * 32, PCRS)

        def seal():
            with tpm_conn.open_tpm(tpm.tcti, "seal") as conn:
                tpm_keys.seal(conn, b"k" * 32, b"a" * 32, PCRS)

        def unseal():
            with tpm_conn.open_tpm(tpm.tcti, "unseal") as conn:
                tpm_keys.unseal(conn, blob, b"a" * 32, PCRS)

        out["seal (32-byte data key)"] = median_ms(seal)
        out["unseal"] = median_ms(unseal)
        for cache in (0, 300):
            backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": tpm.tcti, "pcrs": PCRS, "unseal_cache_seconds": cache}))
            gen = lookup(S.CKM_EC_EDWARDS_KEY_PAIR_GEN)
            _, priv = backend.generate_key_pair(gen, None, {S.CKA_EC_PARAMS: bytes.fromhex("06032b6570")}, {})
            key = Key(priv)
            eddsa = lookup(S.CKM_EDDSA)
            out[f"sealed Ed25519 sign, unseal cache {cache} s"] = median_ms(
                lambda: backend.operation_init("sign", eddsa, None, key).oneshot(b"m"))
        backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": tpm.tcti, "pcrs": PCRS}))
        t = time.perf_counter()
        _, ecpriv = backend.generate_key_pair(lookup(S.CKM_EC_KEY_PAIR_GEN), None,
                                              {S.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107")}, {})
        out["resident P-256 key creation (once)"] = 1000 * (time.perf_counter() - t)
        ecdsa = lookup(S.CKM_ECDSA)
        digest = hashlib.sha256(b"m").digest()
        n = 50
        ms = median_ms(lambda: backend.operation_init("sign", ecdsa, None, Key(ecpriv)).oneshot(digest), n)
        out["resident ECDSA P-256 sign"] = ms
        out["resident ECDSA P-256 sign ops/s"] = 1000 / ms
        t = time.perf_counter()
        _, rsapriv = backend.generate_key_pair(lookup(S.CKM_RSA_PKCS_KEY_PAIR_GEN), None, {S.CKA_MODULUS_BITS: 2048}, {})
        out["resident RSA-2048 key creation (once)"] = 1000 * (time.perf_counter() - t)
        rsa = lookup(S.CKM_SHA256_RSA_PKCS)
        out["resident RSA-2048 PKCS#1 v1.5 sign"] = median_ms(
            lambda: backend.operation_init("sign", rsa, None, Key(rsapriv)).oneshot(b"m"))
        for name, value in out.items():
            print(f"{name:45s} {value:8.1f}")
    finally:
        tpm.remove()


if __name__ == "__main__":
    main()
