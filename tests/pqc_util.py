"""Helpers of the PQC tests (tests/test_pqc_*.py): parameter structs, C_EncapsulateKey /
C_DecapsulateKey through the function list, the KAT files of cryptography-vectors, and an
independent HashML-DSA message representative (hashlib, FIPS 204 §5.4) to check ours."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import cryptography_vectors

from cryptoki_shim import spec as S
from p11 import P11, Template, ffi

VECTORS = Path(cryptography_vectors.__file__).resolve().parent / "asymmetric"

_alive: list[Any] = []


def _buf(data: bytes) -> Any:
    if not data:
        return ffi.NULL
    b = ffi.new("unsigned char[]", data)
    _alive.append(b)
    return b


def sign_context(context: bytes = b"", hedge: int = S.CKH_HEDGE_PREFERRED) -> Any:
    p = ffi.new("CK_SIGN_ADDITIONAL_CONTEXT *")
    p.hedgeVariant, p.pContext, p.ulContextLen = hedge, _buf(context), len(context)
    _alive.append(p)
    return p


def hash_sign_context(hash_mech: int, context: bytes = b"", hedge: int = S.CKH_HEDGE_PREFERRED) -> Any:
    p = ffi.new("CK_HASH_SIGN_ADDITIONAL_CONTEXT *")
    p.hedgeVariant, p.pContext, p.ulContextLen, p.hash = hedge, _buf(context), len(context), hash_mech
    _alive.append(p)
    return p


def secret_template(**extra: Any) -> dict[int, Any]:
    t: dict[int, Any] = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_TOKEN: False,
                         S.CKA_EXTRACTABLE: True}
    for k, v in extra.items():
        t[getattr(S, f"CKA_{k.upper()}")] = v
    return t


def encapsulate(p: P11, s: int, public: int, template: dict[int, Any] | None = None,
                mech: int = S.CKM_ML_KEM) -> tuple[bytes, int]:
    """C_EncapsulateKey by the two-call protocol: (ciphertext, new key handle)."""
    m, _keep = p.mechanism(mech)
    t = Template(template if template is not None else secret_template())
    n, h = ffi.new("CK_ULONG *"), ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_EncapsulateKey", s, m, public, t.array, t.count, ffi.NULL, n, h)
    buf = ffi.new("unsigned char[]", n[0])
    p.check("C_EncapsulateKey", s, m, public, t.array, t.count, buf, n, h)
    return ffi.buffer(buf, n[0])[:], h[0]


def decapsulate(p: P11, s: int, private: int, ciphertext: bytes, template: dict[int, Any] | None = None,
                mech: int = S.CKM_ML_KEM) -> int:
    m, _keep = p.mechanism(mech)
    t = Template(template if template is not None else secret_template())
    h = ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_DecapsulateKey", s, m, private, t.array, t.count, ciphertext, len(ciphertext), h)
    return h[0]


def kat_records(path: Path, limit: int | None = None) -> Iterator[dict[str, str]]:
    """The records of a KAT .rsp file (``count = n`` starts each)."""
    current: dict[str, str] = {}
    seen = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("count") and current:
                yield current
                seen += 1
                if limit is not None and seen >= limit:
                    return
                current = {}
            if " = " in line:
                k, v = line.split(" = ", 1)
                current[k] = v
    if current:
        yield current


#: FIPS 204 §5.4: the DER OIDs of the pre-hash functions (2.16.840.1.101.3.4.2.x).
PREHASH = {
    S.CKM_HASH_ML_DSA_SHA224: ("sha224", 4), S.CKM_HASH_ML_DSA_SHA256: ("sha256", 1),
    S.CKM_HASH_ML_DSA_SHA384: ("sha384", 2), S.CKM_HASH_ML_DSA_SHA512: ("sha512", 3),
    S.CKM_HASH_ML_DSA_SHA3_224: ("sha3_224", 7), S.CKM_HASH_ML_DSA_SHA3_256: ("sha3_256", 8),
    S.CKM_HASH_ML_DSA_SHA3_384: ("sha3_384", 9), S.CKM_HASH_ML_DSA_SHA3_512: ("sha3_512", 10),
    S.CKM_HASH_ML_DSA_SHAKE128: ("shake_128", 11), S.CKM_HASH_ML_DSA_SHAKE256: ("shake_256", 12),
}


def prehash(mech: int, message: bytes) -> bytes:
    name, _ = PREHASH[mech]
    h = hashlib.new(name, message)
    if name == "shake_128":
        return h.digest(32)  # type: ignore[call-arg]
    if name == "shake_256":
        return h.digest(64)  # type: ignore[call-arg]
    return h.digest()


def hash_ml_dsa_mu(public: bytes, mech: int, digest: bytes, context: bytes = b"") -> bytes:
    """μ of HashML-DSA (FIPS 204 Algorithms 4/7), written from the standard with hashlib."""
    oid = bytes.fromhex("06096086480165030402") + bytes([PREHASH[mech][1]])
    tr = hashlib.shake_256(public).digest(64)
    return hashlib.shake_256(tr + bytes([1, len(context)]) + context + oid + digest).digest(64)
