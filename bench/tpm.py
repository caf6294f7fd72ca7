"""`make bench-tpm`: the TPM backend against tpm2-pkcs11 on the same swtpm (issue 5).

One fresh swtpm (started like the test fixture, tests/tpm/swtpm_helper.py), two PKCS#11
modules loaded in this process through their C ABI:

* **tpm2-pkcs11** (Debian ``libtpm2-pkcs11-1``): ``TPM2_PKCS11_TCTI`` = the swtpm,
  ``TPM2_PKCS11_STORE`` = a fresh directory; token, PIN and a P-256 key pair made through
  the module itself (C_InitToken, C_InitPIN, C_GenerateKeyPair: ``tpm2_ptool`` needs a
  resource manager, which a bare swtpm is not).
* **cryptoki-shim** (``build/libcryptoki_shim.so``): a TPM slot with a resident P-256 key
  (signs in the TPM) and a sealed P-256 key (unsealed once, then cached: software signing).

Throughput is C_SignInit + C_Sign with CKM_ECDSA over a 32-byte digest, ``--count`` signatures
per module per round, the modules interleaved round by round (the machine is noisy: compare
ratios of one run). tpm2-pkcs11 holds its TPM connection from C_Initialize to C_Finalize and
swtpm serves one connection at a time, so it is initialised only for its own turn (login and
key lookup are outside the timed loop). Every module's first signature is verified with pyca.
Then latencies (median ms, each a complete locked unit of ours): seal, unseal, sealed Ed25519
sign with the unseal cache cold (0 s) and warm.

Numbers are reported, never asserted. ``--json`` prints one JSON object (used by
tests/tpm/test_bench_tpm.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "tpm"))

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from p11 import LIB, P11, P11Error, ffi, write_config
from swtpm_helper import Swtpm

from cryptoki_shim import spec as S

TPM2_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so")
PCRS = "sha256:16"
#: tpm2-pkcs11 persists its own primary at 0x81000001 (the tpm2-tools shape, not ours): our
#: SRK goes next to it, as on any TPM shared with tpm2-pkcs11 (docs/tpm.md "Performance")
SRK_HANDLE = "0x81000002"
SO_PIN, PIN = b"12345678", b"1234"
P256 = bytes.fromhex("06082a8648ce3d030107")
DIGEST = hashlib.sha256(b"cryptoki-shim bench-tpm").digest()


class Module(P11):
    """P11 for any module: tpm2-pkcs11 1.9 is a 2.40 module (no C_GetInterface), and the
    2.40 function list is the prefix of the 3.0 one, so only 2.40 functions are called."""

    def __init__(self, path: Path | str) -> None:
        from p11 import load
        self.lib = load(path)
        try:
            super().__init__(path)
        except (AttributeError, AssertionError):
            pp = ffi.new("CK_FUNCTION_LIST_PTR *")
            rv = self.lib.C_GetFunctionList(pp)
            if rv != 0:
                raise P11Error(rv, "C_GetFunctionList") from None
            self.fl = ffi.cast("CK_FUNCTION_LIST_3_0 *", pp[0])

    def sign_ecdsa(self, session: int, key: int) -> bytes:
        return self.sign(session, S.CKM_ECDSA, key, DIGEST)


def verified(module: Module, session: int, pub: int, signature: bytes) -> bool:
    """The r‖s signature verifies under the public key's CKA_EC_POINT (DER OCTET STRING)."""
    point = bytes(module.get(session, pub, S.CKA_EC_POINT))
    if len(point) == 67 and point[:2] == b"\x04\x41":
        point = point[2:]
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, DIGEST, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def ops_per_s(fn: Callable[[], Any], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return count / (time.perf_counter() - started)


# --------------------------------------------------------------------------- the two modules

class Theirs:
    """tpm2-pkcs11 on the swtpm: token 'bench', one P-256 key pair made by the module."""

    name = "tpm2-pkcs11 (P-256 in the TPM)"

    def __init__(self, tcti: str, store: Path) -> None:
        store.mkdir(parents=True, exist_ok=True)
        os.environ["TPM2_PKCS11_TCTI"] = tcti
        os.environ["TPM2_PKCS11_STORE"] = str(store)
        os.environ.setdefault("TPM2_PKCS11_LOG_LEVEL", "0")
        self.module = Module(TPM2_PKCS11)
        self.module.initialize()
        try:
            slot = self.module.slots()[0]
            self.module.init_token(slot, SO_PIN, "bench")
            slot = self._slot()
            s = self.module.open(slot)
            self.module.login(s, SO_PIN, user=S.CKU_SO)
            self.module.init_pin(s, PIN)
            self.module.logout(s)
            self.module.login(s, PIN)
            self.module.generate_key_pair(
                s, S.CKM_EC_KEY_PAIR_GEN, {S.CKA_EC_PARAMS: P256, S.CKA_VERIFY: True, S.CKA_LABEL: b"bench"},
                {S.CKA_SIGN: True, S.CKA_TOKEN: True, S.CKA_PRIVATE: True, S.CKA_LABEL: b"bench"})
        finally:
            self.module.finalize()

    def _slot(self) -> int:
        for slot in self.module.slots():
            if bytes(ffi.buffer(self.module.token_info(slot).label, 32)).rstrip() == b"bench":
                return slot
        raise RuntimeError("tpm2-pkcs11: token 'bench' not found after C_InitToken")

    def run(self, count: int, check: bool) -> tuple[float, bool | None]:
        self.module.initialize()
        try:
            s = self.module.open(self._slot())
            self.module.login(s, PIN)
            [priv] = self.module.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_LABEL: b"bench"})
            ok = None
            if check:
                [pub] = self.module.find(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_LABEL: b"bench"})
                ok = verified(self.module, s, pub, self.module.sign_ecdsa(s, priv))
            rate = ops_per_s(lambda: self.module.sign_ecdsa(s, priv), count)
            return rate, ok
        finally:
            self.module.finalize()


class Ours:
    """cryptoki-shim's TPM slot: a resident and a sealed P-256 key (unseal cache 300 s)."""

    def __init__(self, tcti: str, work: Path) -> None:
        from cryptoki_shim.backends.tpm_attrs import (
            CKA_SHIM_TPM_KIND,
            TPM_KIND_RESIDENT,
            TPM_KIND_SEALED,
        )
        work.mkdir(parents=True, exist_ok=True)
        slots = (f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "tpm"\n[slots.tpm]\ntcti = "{tcti}"\n'
                 f'pcrs = "{PCRS}"\nunseal_cache_seconds = 300\nsrk_handle = "{SRK_HANDLE}"\n')
        os.environ["CRYPTOKI_SHIM_CONF"] = str(write_config(work, slots=slots))
        self.module = Module(LIB)
        self.module.initialize()
        m = self.module
        m.init_token(0, SO_PIN, "bench")
        self.s = m.open(0)
        m.login(self.s, SO_PIN, user=S.CKU_SO)
        m.init_pin(self.s, PIN)
        m.logout(self.s)
        m.login(self.s, PIN)
        self.keys = {}
        for kind, label in ((TPM_KIND_RESIDENT, b"resident"), (TPM_KIND_SEALED, b"sealed")):
            self.keys[label] = m.generate_key_pair(
                self.s, S.CKM_EC_KEY_PAIR_GEN, {S.CKA_EC_PARAMS: P256, S.CKA_LABEL: label},
                {S.CKA_SIGN: True, S.CKA_TOKEN: True, S.CKA_LABEL: label, CKA_SHIM_TPM_KIND: kind})

    def runner(self, label: bytes) -> Callable[[int, bool], tuple[float, bool | None]]:
        pub, priv = self.keys[label]

        def run(count: int, check: bool) -> tuple[float, bool | None]:
            ok = verified(self.module, self.s, pub, self.module.sign_ecdsa(self.s, priv)) if check else None
            return ops_per_s(lambda: self.module.sign_ecdsa(self.s, priv), count), ok
        return run

    def close(self) -> None:
        self.module.call("C_Finalize", ffi.NULL)


# --------------------------------------------------------------------------- latencies of ours

def median_ms(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


class _Key:
    def __init__(self, attrs: dict) -> None:
        self.attrs, self.cache, self.unique_id = attrs, {}, "bench"


def latencies(tcti: str, n: int) -> dict[str, float]:
    """Seal / unseal / sealed-key signing, each one locked unit through the backend."""
    from cryptoki_shim.backends import tpm_conn, tpm_keys
    from cryptoki_shim.backends.tpm import TpmBackend
    from cryptoki_shim.config import SlotConfig
    from cryptoki_shim.mechanisms.registry import lookup

    out: dict[str, float] = {}
    with tpm_conn.open_tpm(tcti, "bench") as conn:
        blob = tpm_keys.seal(conn, b"k" * 32, b"a" * 32, PCRS)

    def seal() -> None:
        with tpm_conn.open_tpm(tcti, "seal") as conn:
            tpm_keys.seal(conn, b"k" * 32, b"a" * 32, PCRS)

    def unseal() -> None:
        with tpm_conn.open_tpm(tcti, "unseal") as conn:
            tpm_keys.unseal(conn, blob, b"a" * 32, PCRS)

    out["seal (32-byte data key)"] = median_ms(seal, n)
    out["unseal"] = median_ms(unseal, n)
    for cache in (0, 300):
        backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": tcti, "pcrs": PCRS, "unseal_cache_seconds": cache}))
        _, priv = backend.generate_key_pair(lookup(S.CKM_EC_EDWARDS_KEY_PAIR_GEN), None,
                                            {S.CKA_EC_PARAMS: bytes.fromhex("06032b6570")}, {})
        key, eddsa = _Key(priv), lookup(S.CKM_EDDSA)
        label = "sealed Ed25519 sign, cache 0 s (unseal + sign)" if cache == 0 else \
            "sealed Ed25519 sign after unseal (cache warm)"
        out[label] = median_ms(lambda b=backend, m=eddsa, k=key: b.context_maker("sign", m)(m, None, k).oneshot(b"m"), n)
    return out


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tpm", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100, help="signatures per module per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--latency-n", type=int, default=20, help="repetitions per latency (default 20)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if not TPM2_PKCS11.exists():
        raise SystemExit(f"{TPM2_PKCS11} not found: apt-get install libtpm2-pkcs11-1")
    if not LIB.exists():
        raise SystemExit(f"{LIB} not built: make build")
    os.environ.setdefault("TSS2_LOG", "all+NONE")
    tpm = Swtpm()
    tpm.start()
    work = Path(tempfile.mkdtemp(prefix="bench-tpm-"))
    ours = None
    try:
        theirs = Theirs(tpm.tcti, work / "tpm2-pkcs11")
        ours = Ours(tpm.tcti, work / "shim")
        runners = {theirs.name: theirs.run,
                   "cryptoki-shim resident P-256 (in the TPM)": ours.runner(b"resident"),
                   "cryptoki-shim sealed P-256 (unsealed, cached)": ours.runner(b"sealed")}
        rates: dict[str, list[float]] = {name: [] for name in runners}
        checks: dict[str, bool] = {}
        for r in range(args.rounds):
            for name, run in runners.items():
                rate, ok = run(args.count, r == 0)
                rates[name].append(rate)
                if ok is not None:
                    checks[name] = ok
        lat = latencies(tpm.tcti, args.latency_n)
    finally:
        if ours is not None:
            ours.close()
        tpm.remove()
    base = statistics.median(rates[theirs.name])
    result = {
        "machine": {"cpus": os.cpu_count(), "swtpm": tpm.tcti.split(":")[0]},
        "count": args.count, "rounds": args.rounds,
        "sign": {name: {"ops_per_s": statistics.median(v), "rounds": v, "verified": checks.get(name, False),
                        "ratio_to_tpm2_pkcs11": statistics.median(v) / base} for name, v in rates.items()},
        "latency_ms": lat,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"ECDSA P-256 sign (C_SignInit + C_Sign, CKM_ECDSA, 32-byte digest), {args.count} x {args.rounds} "
          "interleaved rounds, median ops/s")
    print(f"{'module / key':50s} {'ops/s':>9s} {'ratio':>7s}  verified  rounds")
    for name, row in result["sign"].items():
        rounds = " ".join(f"{v:.0f}" for v in row["rounds"])
        print(f"{name:50s} {row['ops_per_s']:9.1f} {row['ratio_to_tpm2_pkcs11']:7.2f}  {row['verified']!s:8s}  {rounds}")
    print("\nlatency of ours (median ms, one locked unit each)")
    for name, ms in lat.items():
        print(f"{name:50s} {ms:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
