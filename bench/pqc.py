"""ML-DSA-65 sign/verify and ML-KEM-768 encapsulate/decapsulate: ops/s through the .so next to
pyca/cryptography alone (the floor), issue 17's "Numbers" (docs/performance.md, "PQC").

    .venv/bin/python bench/pqc.py [--seconds S] [--rounds N] [--alone] [--only-kem]

The library is driven through its 3.2 function list by a cffi ABI-mode client (tests/p11.py,
as a C client calls it; the client's own per-call cost, ~1 µs, is counted against us). One
operation is what an application does: C_SignInit + C_Sign (output buffer already sized),
C_VerifyInit + C_Verify, C_EncapsulateKey + C_DestroyObject of the new session key,
C_DecapsulateKey + C_DestroyObject. The floor is the same operation on pyca keys in this
process: ``sign``, ``verify``, ``encapsulate``, ``decapsulate``. Rounds alternate library and
pyca so both see the same machine; the median of the rounds is reported. Numbers are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402

MSG = os.urandom(64)
#: ``--alone``: a second, separately labelled measurement of the KEM calls without the
#: C_DestroyObject of the benchmark's operation (the new keys are destroyed after each timed
#: window, outside it); the floor is the same pyca call.
ALONE = False
ALONE_ENC, ALONE_DEC = "encaps call alone", "decaps call alone"
CLEANUP: dict[str, Callable[[], None]] = {}


def rate(fn: Callable[[], Any], seconds: float) -> float:
    n, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(20):
            fn()
        n += 20
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def library_ops() -> dict[str, Callable[[], Any]]:
    os.environ["CRYPTOKI_SHIM_CONF"] = str(_config())
    from p11 import SO_PIN, USER_PIN, P11, Template, ffi

    p = P11()
    p.initialize()
    p.init_token(0, SO_PIN, "bench")
    s = p.open(0)
    p.login(s, SO_PIN, user=0)
    p.init_pin(s, USER_PIN)
    p.close(s)
    s = p.open(0)
    p.login(s, USER_PIN)
    hpub, hpriv = p.generate_key_pair(s, S.CKM_ML_DSA_KEY_PAIR_GEN, {S.CKA_PARAMETER_SET: S.CKP_ML_DSA_65},
                                      {S.CKA_SIGN: True})
    kpub, kpriv = p.generate_key_pair(s, S.CKM_ML_KEM_KEY_PAIR_GEN, {S.CKA_PARAMETER_SET: S.CKP_ML_KEM_768}, {})
    fl = p.fl
    m_dsa, _k1 = p.mechanism(S.CKM_ML_DSA)
    m_kem, _k2 = p.mechanism(S.CKM_ML_KEM)
    sig_buf, sig_len = ffi.new("unsigned char[]", 3309), ffi.new("CK_ULONG *")
    ct_buf, ct_len = ffi.new("unsigned char[]", 1088), ffi.new("CK_ULONG *")
    handle = ffi.new("CK_OBJECT_HANDLE *")
    tmpl = Template({S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_TOKEN: False})
    signature = p.sign(s, S.CKM_ML_DSA, hpriv, MSG)
    ct_len[0] = 1088
    p.check("C_EncapsulateKey", s, m_kem, kpub, tmpl.array, tmpl.count, ct_buf, ct_len, handle)
    ciphertext = ffi.buffer(ct_buf, 1088)[:]

    def sign() -> None:
        fl.C_SignInit(s, m_dsa, hpriv)
        sig_len[0] = 3309
        assert fl.C_Sign(s, MSG, len(MSG), sig_buf, sig_len) == 0

    def verify() -> None:
        fl.C_VerifyInit(s, m_dsa, hpub)
        assert fl.C_Verify(s, MSG, len(MSG), signature, len(signature)) == 0

    def encapsulate() -> None:
        ct_len[0] = 1088
        assert fl.C_EncapsulateKey(s, m_kem, kpub, tmpl.array, tmpl.count, ct_buf, ct_len, handle) == 0
        fl.C_DestroyObject(s, handle[0])

    def decapsulate() -> None:
        assert fl.C_DecapsulateKey(s, m_kem, kpriv, tmpl.array, tmpl.count, ciphertext, 1088, handle) == 0
        fl.C_DestroyObject(s, handle[0])

    made: list[int] = []

    def encapsulate_alone() -> None:
        ct_len[0] = 1088
        assert fl.C_EncapsulateKey(s, m_kem, kpub, tmpl.array, tmpl.count, ct_buf, ct_len, handle) == 0
        made.append(handle[0])

    def decapsulate_alone() -> None:
        assert fl.C_DecapsulateKey(s, m_kem, kpriv, tmpl.array, tmpl.count, ciphertext, 1088, handle) == 0
        made.append(handle[0])

    def destroy_made() -> None:
        for h in made:
            fl.C_DestroyObject(s, h)
        made.clear()

    ops = {"ML-DSA-65 sign": sign, "ML-DSA-65 verify": verify, "ML-KEM-768 encaps": encapsulate,
           "ML-KEM-768 decaps": decapsulate}
    if ALONE:
        CLEANUP[ALONE_ENC] = CLEANUP[ALONE_DEC] = destroy_made
        ops.update({ALONE_ENC: encapsulate_alone, ALONE_DEC: decapsulate_alone})
    return ops


def _config() -> Path:
    from p11 import write_config

    return write_config(Path(tempfile.mkdtemp(prefix="pqcbench")))


def pyca_ops() -> dict[str, Callable[[], Any]]:
    key = mldsa.MLDSA65PrivateKey.generate()
    pub = key.public_key()
    signature = key.sign(MSG)
    kem = mlkem.MLKEM768PrivateKey.generate()
    kem_pub = kem.public_key()
    _, ciphertext = kem_pub.encapsulate()
    ops = {"ML-DSA-65 sign": lambda: key.sign(MSG), "ML-DSA-65 verify": lambda: pub.verify(signature, MSG),
           "ML-KEM-768 encaps": kem_pub.encapsulate, "ML-KEM-768 decaps": lambda: kem.decapsulate(ciphertext)}
    ops.update({ALONE_ENC: ops["ML-KEM-768 encaps"], ALONE_DEC: ops["ML-KEM-768 decaps"]})
    return ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--alone", action="store_true",
                    help="also time C_EncapsulateKey / C_DecapsulateKey alone (keys destroyed outside the window)")
    ap.add_argument("--only-kem", action="store_true", help="the ML-KEM rows only")
    args = ap.parse_args()
    global ALONE
    ALONE = args.alone
    ours, floor = library_ops(), pyca_ops()
    if args.only_kem:
        ours = {name: fn for name, fn in ours.items() if "ML-DSA" not in name}
    results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in ours}
    for _ in range(args.rounds):
        for name in ours:
            results[name][0].append(rate(ours[name], args.seconds))
            if name in CLEANUP:
                CLEANUP[name]()
            results[name][1].append(rate(floor[name], args.seconds))
    print(f"{'operation':<20} {'library ops/s':>14} {'pyca ops/s':>12} {'ratio':>7}")
    for name, (lib, ref) in results.items():
        a, b = statistics.median(lib), statistics.median(ref)
        print(f"{name:<20} {a:>14.0f} {b:>12.0f} {100 * a / b:>6.0f}%")


if __name__ == "__main__":
    main()
