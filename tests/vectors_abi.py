"""Helpers for driving mechanisms through the built library (tests/p11.py): parameter
structs built with cffi from native/cdef.h, multi-part loops, key generation/import
templates, and the pyca keys to cross-check against. Tests stay declarative."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cryptoki_shim import spec as S
from p11 import P11, Template, ffi

TRUE = True


class Params:
    """C parameter structs. The byte buffers a struct points to stay alive for the whole
    test process (``_alive``), so ``Params().gcm(...)`` inline is safe (cffi frees a buffer
    when its owner goes, and a freed IV would be read as garbage by the library)."""

    _alive: list[Any] = []

    def __init__(self) -> None:
        self.keep = Params._alive

    def buf(self, data: bytes | None) -> Any:
        if not data:
            return ffi.NULL
        b = ffi.new("unsigned char[]", data)
        self.keep.append(b)
        return b

    def oaep(self, hash_alg: int, mgf: int, label: bytes = b"") -> Any:
        p = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *")
        p.hashAlg, p.mgf = hash_alg, mgf
        p.source = S.CKZ_DATA_SPECIFIED if label else 0
        p.pSourceData, p.ulSourceDataLen = self.buf(label), len(label)
        return p

    def pss(self, hash_alg: int, mgf: int, slen: int) -> Any:
        p = ffi.new("CK_RSA_PKCS_PSS_PARAMS *")
        p.hashAlg, p.mgf, p.sLen = hash_alg, mgf, slen
        return p

    def gcm(self, iv: bytes, aad: bytes = b"", tag_bits: int = 128) -> Any:
        p = ffi.new("CK_GCM_PARAMS *")
        p.pIv, p.ulIvLen, p.ulIvBits = self.buf(iv), len(iv), len(iv) * 8
        p.pAAD, p.ulAADLen, p.ulTagBits = self.buf(aad), len(aad), tag_bits
        return p

    def ctr(self, counter_bits: int, cb: bytes) -> Any:
        p = ffi.new("CK_AES_CTR_PARAMS *")
        p.ulCounterBits = counter_bits
        p.cb = list(cb)
        return p

    def ecdh(self, public: bytes, kdf: int = S.CKD_NULL, shared: bytes = b"") -> Any:
        p = ffi.new("CK_ECDH1_DERIVE_PARAMS *")
        p.kdf = kdf
        p.pSharedData, p.ulSharedDataLen = self.buf(shared), len(shared)
        p.pPublicData, p.ulPublicDataLen = self.buf(public), len(public)
        return p

    def hkdf(self, extract: bool, expand: bool, hash_alg: int, salt: bytes = b"", info: bytes = b"") -> Any:
        p = ffi.new("CK_HKDF_PARAMS *")
        p.bExtract, p.bExpand, p.prfHashMechanism = extract, expand, hash_alg
        p.ulSaltType = S.CKF_HKDF_SALT_DATA if salt else S.CKF_HKDF_SALT_NULL
        p.pSalt, p.ulSaltLen = self.buf(salt), len(salt)
        p.hSaltKey = 0
        p.pInfo, p.ulInfoLen = self.buf(info), len(info)
        return p

    def pbkd2(self, password: bytes, salt: bytes, iterations: int, prf: int) -> Any:
        p = ffi.new("CK_PKCS5_PBKD2_PARAMS2 *")
        p.saltSource = S.CKZ_SALT_SPECIFIED
        p.pSaltSourceData, p.ulSaltSourceDataLen = self.buf(salt), len(salt)
        p.iterations, p.prf = iterations, prf
        p.pPrfData, p.ulPrfDataLen = ffi.NULL, 0
        p.pPassword, p.ulPasswordLen = self.buf(password), len(password)
        return p

    def sp800_108_counter(self, prf: int, label: bytes, context: bytes, dkm_bits: int) -> Any:
        """Counter (32-bit BE) || label || 0x00 || context || L (32-bit BE): the NIST layout."""
        cnt = ffi.new("CK_SP800_108_COUNTER_FORMAT *", {"bLittleEndian": 0, "ulWidthInBits": 32})
        dkm = ffi.new("CK_SP800_108_DKM_LENGTH_FORMAT *",
                      {"dkmLengthMethod": S.CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, "bLittleEndian": 0,
                       "ulWidthInBits": 32})
        self.keep += [cnt, dkm]
        data = ffi.new("CK_PRF_DATA_PARAM[]", 5)
        items = [(S.CK_SP800_108_ITERATION_VARIABLE, cnt, ffi.sizeof("CK_SP800_108_COUNTER_FORMAT")),
                 (S.CK_SP800_108_BYTE_ARRAY, self.buf(label), len(label)),
                 (S.CK_SP800_108_BYTE_ARRAY, self.buf(b"\x00"), 1),
                 (S.CK_SP800_108_BYTE_ARRAY, self.buf(context), len(context)),
                 (S.CK_SP800_108_DKM_LENGTH, dkm, ffi.sizeof("CK_SP800_108_DKM_LENGTH_FORMAT"))]
        for i, (t, v, n) in enumerate(items):
            data[i].type, data[i].pValue, data[i].ulValueLen = t, v, n
        self.keep.append(data)
        p = ffi.new("CK_SP800_108_KDF_PARAMS *")
        p.prfType, p.ulNumberOfDataParams, p.pDataParams = prf, 5, data
        p.ulAdditionalDerivedKeys, p.pAdditionalDerivedKeys = 0, ffi.NULL
        return p


def mech_list(p: P11, slot: int = 0) -> list[int]:
    n = ffi.new("CK_ULONG *")
    p.check("C_GetMechanismList", slot, ffi.NULL, n)
    arr = ffi.new("CK_MECHANISM_TYPE[]", max(1, n[0]))
    p.check("C_GetMechanismList", slot, arr, n)
    return [arr[i] for i in range(n[0])]


def mech_info(p: P11, mech: int, slot: int = 0) -> Any:
    info = ffi.new("CK_MECHANISM_INFO *")
    p.check("C_GetMechanismInfo", slot, mech, info)
    return info


def multipart(p: P11, s: int, kind: str, mech: int, key: int, data: bytes, param: Any = None,
              chunk: int = 7) -> bytes:
    """C_{kind}Init, C_{kind}Update in chunks, C_{kind}Final (Sign: Update then Final)."""
    m, _keep = p.mechanism(mech, param)
    if kind == "Digest":
        p.check("C_DigestInit", s, m)
    else:
        p.check(f"C_{kind}Init", s, m, key)
    out = b""
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        if kind in ("Sign", "Digest"):
            p.check(f"C_{kind}Update", s, piece, len(piece))
        else:
            out += p._two_pass(f"C_{kind}Update", s, piece, len(piece))
    return out + p._two_pass(f"C_{kind}Final", s)


def verify_multipart(p: P11, s: int, mech: int, key: int, data: bytes, sig: bytes, param: Any = None) -> None:
    m, _keep = p.mechanism(mech, param)
    p.check("C_VerifyInit", s, m, key)
    for i in range(0, len(data), 5):
        p.check("C_VerifyUpdate", s, data[i:i + 5], len(data[i:i + 5]))
    p.check("C_VerifyFinal", s, sig, len(sig))


def derive(p: P11, s: int, mech: int, base: int, template: dict[int, Any], param: Any = None) -> int:
    m, _keep = p.mechanism(mech, param)
    t = Template(template)
    h = ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_DeriveKey", s, m, base, t.array, t.count, h)
    return h[0]


def wrap(p: P11, s: int, mech: int, wrapping: int, key: int, param: Any = None) -> bytes:
    m, _keep = p.mechanism(mech, param)
    return p._two_pass("C_WrapKey", s, m, wrapping, key)


def unwrap(p: P11, s: int, mech: int, unwrapping: int, blob: bytes, template: dict[int, Any],
           param: Any = None) -> int:
    m, _keep = p.mechanism(mech, param)
    t = Template(template)
    h = ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_UnwrapKey", s, m, unwrapping, blob, len(blob), t.array, t.count, h)
    return h[0]


# ---------------------------------------------------------------------------- templates

def secret(key_type: int, value: bytes, **flags: bool) -> dict[int, Any]:
    base = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: key_type, S.CKA_VALUE: value, S.CKA_TOKEN: False}
    for name, v in flags.items():
        base[getattr(S, f"CKA_{name.upper()}")] = v
    return base


def usage(*names: str, **extra: Any) -> dict[int, Any]:
    t: dict[int, Any] = {getattr(S, f"CKA_{n.upper()}"): True for n in names}
    t[S.CKA_TOKEN] = False
    for k, v in extra.items():
        t[getattr(S, f"CKA_{k.upper()}")] = v
    return t


def rsa_import(p: P11, s: int, key: rsa.RSAPrivateKey) -> tuple[int, int]:
    n = key.private_numbers()
    pub = n.public_numbers

    def b(i: int) -> bytes:
        return i.to_bytes((i.bit_length() + 7) // 8, "big")

    hpub = p.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_RSA, S.CKA_TOKEN: False,
                        S.CKA_MODULUS: b(pub.n), S.CKA_PUBLIC_EXPONENT: b(pub.e), S.CKA_VERIFY: True,
                        S.CKA_ENCRYPT: True})
    hpriv = p.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_RSA, S.CKA_TOKEN: False,
                         S.CKA_MODULUS: b(pub.n), S.CKA_PUBLIC_EXPONENT: b(pub.e),
                         S.CKA_PRIVATE_EXPONENT: b(n.d), S.CKA_PRIME_1: b(n.p), S.CKA_PRIME_2: b(n.q),
                         S.CKA_EXPONENT_1: b(n.dmp1), S.CKA_EXPONENT_2: b(n.dmq1), S.CKA_COEFFICIENT: b(n.iqmp),
                         S.CKA_SIGN: True, S.CKA_DECRYPT: True})
    return hpub, hpriv


def ec_public_import(p: P11, s: int, params_der: bytes, point: bytes) -> int:
    der_point = bytes([0x04, len(point)]) + point if len(point) < 128 else bytes([0x04, 0x81, len(point)]) + point
    return p.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_EC, S.CKA_TOKEN: False,
                        S.CKA_EC_PARAMS: params_der, S.CKA_EC_POINT: der_point, S.CKA_VERIFY: True})


def der_octet(data: bytes) -> bytes:
    """DER OCTET STRING of ``data`` (length forms up to 65535)."""
    n = len(data)
    if n < 128:
        return bytes([0x04, n]) + data
    if n < 256:
        return bytes([0x04, 0x81, n]) + data
    return bytes([0x04, 0x82, n >> 8, n & 0xFF]) + data


def strip_octet(der: bytes) -> bytes:
    if der[1] < 128:
        return der[2:]
    return der[2 + (der[1] & 0x7F):]


CURVE_OIDS = {  # DER OBJECT IDENTIFIER of each curve's CKA_EC_PARAMS
    "P-256": (bytes.fromhex("06082a8648ce3d030107"), ec.SECP256R1()),
    "P-384": (bytes.fromhex("06052b81040022"), ec.SECP384R1()),
    "P-521": (bytes.fromhex("06052b81040023"), ec.SECP521R1()),
    "secp256k1": (bytes.fromhex("06052b8104000a"), ec.SECP256K1()),
}


def printable(name: str) -> bytes:
    """CKA_EC_PARAMS as a curve name PrintableString (3.0 §2.3.3 allows it for Edwards/Montgomery)."""
    raw = name.encode()
    return bytes([0x13, len(raw)]) + raw
