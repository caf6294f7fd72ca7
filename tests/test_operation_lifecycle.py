"""Issue 23 items 1, 2, 3 and 8, through the built library.

1. C_GetFunctionStatus / C_CancelFunction are legacy: CKR_FUNCTION_NOT_PARALLEL after the
   initialized and session-handle checks.
2. An error other than CKR_BUFFER_TOO_SMALL ends the active operation, whichever layer
   raises it (an argument check before the core, or the mechanism): every C_* step that can
   end an operation.
3. The length-query / too-small / retry protocol of every multi-part final of every
   mechanism of C_GetMechanismList (sign, verify, encrypt, decrypt, digest) gives the one-shot
   result.
8. A single-part length query mixed with multi-part calls never gives a wrong result.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from cryptoki_shim import spec
from p11 import P11, ffi

A = spec
DATA = bytes(range(256)) * 3  # 768 bytes: a multiple of the AES block
IV = bytes(16)


# ---------------------------------------------------------------------- helpers


def _aes(p11: P11, s: int) -> int:
    return p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: b"a" * 32,
                          A.CKA_ENCRYPT: True, A.CKA_DECRYPT: True, A.CKA_SIGN: True, A.CKA_VERIFY: True,
                          A.CKA_TOKEN: False})


def _hmac(p11: P11, s: int) -> int:
    return p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET,
                          A.CKA_VALUE: b"k" * 32, A.CKA_SIGN: True, A.CKA_VERIFY: True, A.CKA_TOKEN: False})


def _rsa(p11: P11, s: int) -> tuple[int, int]:
    return p11.generate_key_pair(s, A.CKM_RSA_PKCS_KEY_PAIR_GEN,
                                 {A.CKA_MODULUS_BITS: 2048, A.CKA_VERIFY: True, A.CKA_ENCRYPT: True,
                                  A.CKA_TOKEN: False},
                                 {A.CKA_SIGN: True, A.CKA_DECRYPT: True, A.CKA_TOKEN: False})


def _ec(p11: P11, s: int) -> tuple[int, int]:
    p256 = bytes.fromhex("06082a8648ce3d030107")
    return p11.generate_key_pair(s, A.CKM_EC_KEY_PAIR_GEN, {A.CKA_EC_PARAMS: p256, A.CKA_VERIFY: True,
                                                            A.CKA_TOKEN: False},
                                 {A.CKA_SIGN: True, A.CKA_TOKEN: False})


def _dsa(p11: P11, s: int) -> tuple[int, int]:
    """A DSA key pair in domain parameters the token makes (1024 bits: the fastest)."""
    h = p11.generate_key(s, A.CKM_DSA_PARAMETER_GEN, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_TOKEN: False,
                                                        A.CKA_PRIME_BITS: 1024})
    params = {t: p11.get(s, h, t) for t in (A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE)}
    return p11.generate_key_pair(s, A.CKM_DSA_KEY_PAIR_GEN, {**params, A.CKA_VERIFY: True, A.CKA_TOKEN: False},
                                 {A.CKA_SIGN: True, A.CKA_TOKEN: False})


def _init(p11: P11, fn: str, s: int, mech: int, *key: int, param: Any = None) -> None:
    m, _keep = p11.mechanism(mech, param)
    p11.check(fn, s, m, *key)


def _out(p11: P11, fn: str, s: int, *args: Any) -> bytes:
    """A call with an output buffer, with a buffer of 4096 bytes."""
    n = ffi.new("CK_ULONG *", 4096)
    buf = ffi.new("unsigned char[]", 4096)
    p11.check(fn, s, *args, buf, n)
    return ffi.buffer(buf, n[0])[:]


# ---------------------------------------------------------------------- item 1


def test_legacy_parallel_functions(p11: P11, token: P11, user_session: int) -> None:
    for fn in ("C_GetFunctionStatus", "C_CancelFunction"):
        assert p11.call(fn, user_session) == A.CKR_FUNCTION_NOT_PARALLEL
        assert p11.call(fn, user_session + 1000) == A.CKR_SESSION_HANDLE_INVALID


def test_legacy_parallel_functions_not_initialized(p11: P11) -> None:
    p11.finalize()
    try:
        for fn in ("C_GetFunctionStatus", "C_CancelFunction"):
            assert p11.call(fn, 1) == A.CKR_CRYPTOKI_NOT_INITIALIZED
    finally:
        p11.initialize()


# ---------------------------------------------------------------------- item 2

NULL = ffi.NULL


def _steps(p11: P11, s: int) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """kind -> (init, re-init). Each init must succeed only if the last operation ended."""
    aes, mac = _aes(p11, s), _hmac(p11, s)
    return {
        "encrypt": (lambda: _init(p11, "C_EncryptInit", s, A.CKM_AES_CBC_PAD, aes, param=IV), lambda: None),
        "decrypt": (lambda: _init(p11, "C_DecryptInit", s, A.CKM_AES_CBC_PAD, aes, param=IV), lambda: None),
        "digest": (lambda: _init(p11, "C_DigestInit", s, A.CKM_SHA256), lambda: None),
        "sign": (lambda: _init(p11, "C_SignInit", s, A.CKM_SHA256_HMAC, mac), lambda: None),
        "verify": (lambda: _init(p11, "C_VerifyInit", s, A.CKM_SHA256_HMAC, mac), lambda: None),
    }


def _n(v: int) -> Any:
    return ffi.new("CK_ULONG *", v)


#: (kind, C_* name, arguments after the session, expected CKR, needs an update first).
#: Each fails with an error other than CKR_BUFFER_TOO_SMALL.
FAILURES: list[tuple[str, str, Callable[[], tuple[Any, ...]], int, bool]] = [
    # argument errors, raised by the abi layer before the core sees the call
    ("digest", "C_Digest", lambda: (DATA, len(DATA), ffi.new("unsigned char[]", 64), NULL), A.CKR_ARGUMENTS_BAD, False),
    ("digest", "C_Digest", lambda: (NULL, 5, ffi.new("unsigned char[]", 64), _n(64)), A.CKR_ARGUMENTS_BAD, False),
    ("digest", "C_DigestUpdate", lambda: (NULL, 5), A.CKR_ARGUMENTS_BAD, False),
    ("digest", "C_DigestFinal", lambda: (ffi.new("unsigned char[]", 64), NULL), A.CKR_ARGUMENTS_BAD, True),
    ("encrypt", "C_Encrypt", lambda: (DATA, len(DATA), NULL, NULL), A.CKR_ARGUMENTS_BAD, False),
    ("encrypt", "C_Encrypt", lambda: (NULL, 16, NULL, _n(0)), A.CKR_ARGUMENTS_BAD, False),
    ("encrypt", "C_EncryptUpdate", lambda: (DATA, len(DATA), NULL, NULL), A.CKR_ARGUMENTS_BAD, False),
    ("encrypt", "C_EncryptUpdate", lambda: (NULL, 16, NULL, _n(0)), A.CKR_ARGUMENTS_BAD, False),
    ("encrypt", "C_EncryptFinal", lambda: (NULL, NULL), A.CKR_ARGUMENTS_BAD, True),
    ("decrypt", "C_Decrypt", lambda: (DATA, 32, NULL, NULL), A.CKR_ARGUMENTS_BAD, False),
    ("decrypt", "C_DecryptUpdate", lambda: (NULL, 16, NULL, _n(0)), A.CKR_ARGUMENTS_BAD, False),
    ("decrypt", "C_DecryptFinal", lambda: (NULL, NULL), A.CKR_ARGUMENTS_BAD, True),
    ("sign", "C_Sign", lambda: (DATA, len(DATA), NULL, NULL), A.CKR_ARGUMENTS_BAD, False),
    ("sign", "C_Sign", lambda: (NULL, 3, NULL, _n(0)), A.CKR_ARGUMENTS_BAD, False),
    ("sign", "C_SignUpdate", lambda: (NULL, 3), A.CKR_ARGUMENTS_BAD, False),
    ("sign", "C_SignFinal", lambda: (NULL, NULL), A.CKR_ARGUMENTS_BAD, True),
    ("verify", "C_Verify", lambda: (NULL, 3, b"x" * 32, 32), A.CKR_ARGUMENTS_BAD, False),
    ("verify", "C_Verify", lambda: (DATA, len(DATA), NULL, 32), A.CKR_ARGUMENTS_BAD, False),
    ("verify", "C_VerifyUpdate", lambda: (NULL, 3), A.CKR_ARGUMENTS_BAD, False),
    ("verify", "C_VerifyFinal", lambda: (NULL, 32), A.CKR_ARGUMENTS_BAD, True),
    # errors of the mechanism, raised in the core
    ("decrypt", "C_Decrypt", lambda: (DATA, 17, ffi.new("unsigned char[]", 64), _n(64)),
     A.CKR_ENCRYPTED_DATA_LEN_RANGE, False),
    ("decrypt", "C_DecryptFinal", lambda: (ffi.new("unsigned char[]", 64), _n(64)),
     A.CKR_ENCRYPTED_DATA_LEN_RANGE, True),
    ("verify", "C_Verify", lambda: (DATA, len(DATA), b"x" * 32, 32), A.CKR_SIGNATURE_INVALID, False),
    ("verify", "C_VerifyFinal", lambda: (b"x" * 32, 32), A.CKR_SIGNATURE_INVALID, True),
    ("verify", "C_VerifyFinal", lambda: (b"x" * 3, 3), A.CKR_SIGNATURE_LEN_RANGE, True),
]

_UPDATE = {"encrypt": "C_EncryptUpdate", "decrypt": "C_DecryptUpdate", "digest": "C_DigestUpdate",
           "sign": "C_SignUpdate", "verify": "C_VerifyUpdate"}
_ONESHOT = {"encrypt": "C_Encrypt", "decrypt": "C_Decrypt", "digest": "C_Digest", "sign": "C_Sign"}


def _update(p11: P11, s: int, kind: str, data: bytes) -> None:
    if kind in ("encrypt", "decrypt"):
        _out(p11, _UPDATE[kind], s, data, len(data))
    else:
        p11.check(_UPDATE[kind], s, data, len(data))


@pytest.mark.parametrize("kind,fn,args,ckr,after_update", FAILURES,
                         ids=[f"{f[1]}-{spec.ckr_name(f[3])}-{i}" for i, f in enumerate(FAILURES)])
def test_error_ends_operation(p11: P11, token: P11, user_session: int, kind: str, fn: str,
                              args: Callable[[], tuple[Any, ...]], ckr: int, after_update: bool) -> None:
    s = user_session
    init = _steps(p11, s)[kind][0]
    init()
    if after_update:
        _update(p11, s, kind, DATA[:17] if kind == "decrypt" else DATA[:32])
    call_args = args()
    assert p11.call(fn, s, *call_args) == ckr
    # the operation ended: the next step is not initialized, a new init succeeds
    if kind in _ONESHOT:
        out = ffi.new("unsigned char[]", 4096)
        assert p11.call(_ONESHOT[kind], s, DATA, 32, out, _n(4096)) == A.CKR_OPERATION_NOT_INITIALIZED
    else:
        assert p11.call("C_VerifyUpdate", s, DATA, 32) == A.CKR_OPERATION_NOT_INITIALIZED
    init()


def test_digest_null_length_then_digest(p11: P11, token: P11, user_session: int) -> None:
    """The issue's trace."""
    s = user_session
    _init(p11, "C_DigestInit", s, A.CKM_SHA256)
    out = ffi.new("unsigned char[]", 64)
    assert p11.call("C_Digest", s, b"abc", 3, out, NULL) == A.CKR_ARGUMENTS_BAD
    assert p11.call("C_Digest", s, b"abc", 3, out, _n(64)) == A.CKR_OPERATION_NOT_INITIALIZED


def test_buffer_too_small_keeps_operation(p11: P11, token: P11, user_session: int) -> None:
    s = user_session
    _init(p11, "C_DigestInit", s, A.CKM_SHA256)
    out = ffi.new("unsigned char[]", 64)
    n = _n(4)
    assert p11.call("C_Digest", s, b"abc", 3, out, n) == A.CKR_BUFFER_TOO_SMALL
    assert n[0] == 32
    p11.check("C_Digest", s, b"abc", 3, out, n)
    assert ffi.buffer(out, 32)[:] == __import__("hashlib").sha256(b"abc").digest()


def test_unknown_key_at_init_leaves_no_operation(p11: P11, token: P11, user_session: int) -> None:
    s = user_session
    m, _keep = p11.mechanism(A.CKM_AES_ECB)
    assert p11.call("C_EncryptInit", s, m, 0xDEAD) == A.CKR_KEY_HANDLE_INVALID
    aes = _aes(p11, s)
    p11.check("C_EncryptInit", s, m, aes)


# ---------------------------------------------------------------------- item 3

_HASH_OF = {"SHA1": A.CKM_SHA_1, "SHA_1": A.CKM_SHA_1, "SHA224": A.CKM_SHA224, "SHA256": A.CKM_SHA256,
            "SHA384": A.CKM_SHA384, "SHA512": A.CKM_SHA512, "SHA3_224": A.CKM_SHA3_224,
            "SHA3_256": A.CKM_SHA3_256, "SHA3_384": A.CKM_SHA3_384, "SHA3_512": A.CKM_SHA3_512}
_MGF_OF = {A.CKM_SHA_1: A.CKG_MGF1_SHA1, A.CKM_SHA224: A.CKG_MGF1_SHA224, A.CKM_SHA256: A.CKG_MGF1_SHA256,
           A.CKM_SHA384: A.CKG_MGF1_SHA384, A.CKM_SHA512: A.CKG_MGF1_SHA512,
           A.CKM_SHA3_224: A.CKG_MGF1_SHA3_224, A.CKM_SHA3_256: A.CKG_MGF1_SHA3_256,
           A.CKM_SHA3_384: A.CKG_MGF1_SHA3_384, A.CKM_SHA3_512: A.CKG_MGF1_SHA3_512}


def _param(name: str) -> Any:
    """A parameter for the mechanism, or None (none needed); "skip" for what is not covered here."""
    if name.endswith("_GENERAL"):
        return bytes(ffi.buffer(ffi.new("CK_ULONG *", 6 if "DES3" in name else 10)))  # DES3 MACs: 1..8
    if name in ("CKM_AES_CBC", "CKM_AES_CBC_PAD"):
        return IV
    if name in ("CKM_DES3_CBC", "CKM_DES3_CBC_PAD"):
        return IV[:8]
    if name == "CKM_AES_CTR":
        p = ffi.new("CK_AES_CTR_PARAMS *")
        p.ulCounterBits = 128
        return p
    if name.endswith("_RSA_PKCS_PSS"):
        hash_name = name[len("CKM_"):-len("_RSA_PKCS_PSS")]
        p = ffi.new("CK_RSA_PKCS_PSS_PARAMS *")
        p.hashAlg = _HASH_OF.get(hash_name, A.CKM_SHA256)
        p.mgf = _MGF_OF[p.hashAlg]
        p.sLen = 20
        return p
    return None


def _mechanisms(p11: P11) -> list[tuple[int, str, int]]:
    n = ffi.new("CK_ULONG *")
    p11.check("C_GetMechanismList", 0, NULL, n)
    arr = ffi.new("CK_ULONG[]", n[0])
    p11.check("C_GetMechanismList", 0, arr, n)
    info = ffi.new("CK_MECHANISM_INFO *")
    out = []
    for m in arr:
        p11.check("C_GetMechanismInfo", 0, m, info)
        out.append((int(m), spec.ckm_name(int(m)), int(info.flags)))
    return out


def _protocol(p11: P11, fn: str, s: int, *args: Any) -> bytes:
    """The length query (a bound, §5.2), a too-small buffer (the exact length), again too
    small by one, the retry: all must agree, and the output is delivered once."""
    n = _n(0)
    p11.check(fn, s, *args, NULL, n)
    bound = n[0]
    buf = ffi.new("unsigned char[]", bound + 1)
    n[0] = 0
    rv = p11.call(fn, s, *args, buf, n)
    if rv == A.CKR_OK:
        assert n[0] == 0, fn
        return b""
    assert rv == A.CKR_BUFFER_TOO_SMALL, (fn, spec.ckr_name(rv))
    exact = n[0]
    assert 0 < exact <= bound, fn
    n[0] = exact - 1
    assert p11.call(fn, s, *args, buf, n) == A.CKR_BUFFER_TOO_SMALL, fn
    assert n[0] == exact, fn
    n[0] = bound + 1
    p11.check(fn, s, *args, buf, n)
    assert n[0] == exact, fn
    return ffi.buffer(buf, n[0])[:]


def _final_protocol(p11: P11, fn: str, s: int) -> bytes:
    return _protocol(p11, fn, s)


def _final_too_small_first(p11: P11, fn: str, s: int) -> bytes:
    """No query: a too-small buffer first (pkcs11-tool --test-ec), then the retry."""
    buf = ffi.new("unsigned char[]", 4096)
    n = _n(1)
    rv = p11.call(fn, s, buf, n)
    if rv == A.CKR_OK:
        return ffi.buffer(buf, n[0])[:]
    assert rv == A.CKR_BUFFER_TOO_SMALL, (fn, spec.ckr_name(rv))
    p11.check(fn, s, buf, n)
    return ffi.buffer(buf, n[0])[:]


def _update_protocol(p11: P11, fn: str, s: int, data: bytes) -> bytes:
    return _protocol(p11, fn, s, data, len(data))


def _verify_ok(p11: P11, s: int, mech: int, key: int, param: Any, data: bytes, sig: bytes) -> None:
    _init(p11, "C_VerifyInit", s, mech, key, param=param)
    p11.check("C_Verify", s, data, len(data), sig, len(sig))
    _init(p11, "C_VerifyInit", s, mech, key, param=param)
    p11.check("C_VerifyUpdate", s, data[:100], 100)
    p11.check("C_VerifyUpdate", s, data[100:], len(data) - 100)
    p11.check("C_VerifyFinal", s, sig, len(sig))


def test_final_length_protocol_every_mechanism(p11: P11, token: P11, user_session: int) -> None:
    s = user_session
    aes, mac = _aes(p11, s), _hmac(p11, s)
    rsa_pub, rsa_priv = _rsa(p11, s)
    ec_pub, ec_priv = _ec(p11, s)
    dsa_pub, dsa_priv = _dsa(p11, s)
    des3 = p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_DES3, A.CKA_VALUE: b"d" * 24,
                          A.CKA_ENCRYPT: True, A.CKA_DECRYPT: True, A.CKA_SIGN: True, A.CKA_VERIFY: True,
                          A.CKA_TOKEN: False})
    covered: set[str] = set()
    single_part: set[str] = set()
    for mech, name, flags in _mechanisms(p11):
        if not flags & (A.CKF_SIGN | A.CKF_ENCRYPT | A.CKF_DIGEST):
            continue
        param = _param(name)
        if "HMAC" in name:
            keys = (mac, mac)
        elif "AES" in name:
            keys = (aes, aes)
        elif "DES3" in name:
            keys = (des3, des3)
        elif "RSA" in name:
            keys = (rsa_priv, rsa_pub)
        elif "ECDSA" in name:
            keys = (ec_priv, ec_pub)
        elif name.startswith("CKM_DSA"):
            keys = (dsa_priv, dsa_pub)
        else:
            keys = (0, 0)
        if flags & A.CKF_DIGEST:
            one = p11.digest(s, mech, DATA)
            for final in (_final_protocol, _final_too_small_first):
                _init(p11, "C_DigestInit", s, mech)
                p11.check("C_DigestUpdate", s, DATA[:100], 100)
                p11.check("C_DigestUpdate", s, DATA[100:], len(DATA) - 100)
                assert final(p11, "C_DigestFinal", s) == one, name
            covered.add(name)
        if flags & A.CKF_SIGN and keys[0]:
            _init(p11, "C_SignInit", s, mech, keys[0], param=param)
            rv = p11.call("C_SignUpdate", s, DATA[:100], 100)
            if rv == A.CKR_FUNCTION_NOT_SUPPORTED:  # a single-part mechanism (CKM_ECDSA, CKM_RSA_PKCS ...)
                single_part.add(name)
                continue
            assert rv == A.CKR_OK, (name, spec.ckr_name(rv))
            p11.check("C_SignUpdate", s, DATA[100:], len(DATA) - 100)
            sig = _final_protocol(p11, "C_SignFinal", s)
            _verify_ok(p11, s, mech, keys[1], param, DATA, sig)
            _init(p11, "C_SignInit", s, mech, keys[0], param=param)
            p11.check("C_SignUpdate", s, DATA, len(DATA))
            sig2 = _final_too_small_first(p11, "C_SignFinal", s)
            _verify_ok(p11, s, mech, keys[1], param, DATA, sig2)
            if "DSA" not in name and "PSS" not in name:  # deterministic: equal to the one-shot
                assert sig == sig2 == p11.sign(s, mech, keys[0], DATA, param), name
            covered.add(name)
        if flags & A.CKF_ENCRYPT and keys[0]:
            if name in ("CKM_AES_KEY_WRAP", "CKM_AES_KEY_WRAP_PAD", "CKM_AES_KEY_WRAP_KWP") or param == "skip" \
                    or name in ("CKM_AES_GCM", "CKM_AES_CCM") or "RSA" in name:
                continue
            data = DATA[:-5] if name in ("CKM_AES_CBC_PAD", "CKM_AES_CTR", "CKM_DES3_CBC_PAD") else DATA
            enc_key, dec_key = (keys[1], keys[0]) if "RSA" in name else keys
            one = p11.encrypt(s, mech, enc_key, data, param)
            _init(p11, "C_EncryptInit", s, mech, enc_key, param=param)
            rv = p11.call("C_EncryptUpdate", s, data[:20], 20, NULL, _n(0))
            if rv == A.CKR_FUNCTION_NOT_SUPPORTED:
                single_part.add(name)
                continue
            assert rv == A.CKR_OK, (name, spec.ckr_name(rv))
            parts = _update_protocol(p11, "C_EncryptUpdate", s, data[:20])
            parts += _update_protocol(p11, "C_EncryptUpdate", s, data[20:])
            parts += _final_protocol(p11, "C_EncryptFinal", s)
            assert parts == one, name
            assert p11.decrypt(s, mech, dec_key, one, param) == data, name
            _init(p11, "C_DecryptInit", s, mech, dec_key, param=param)
            plain = _update_protocol(p11, "C_DecryptUpdate", s, one[:33])
            plain += _update_protocol(p11, "C_DecryptUpdate", s, one[33:])
            plain += _final_protocol(p11, "C_DecryptFinal", s)
            assert plain == data, name
            covered.add(name)
    # the mechanisms of the issue are covered, every family
    for name in ("CKM_ECDSA_SHA256", "CKM_SHA256_RSA_PKCS", "CKM_SHA256_HMAC", "CKM_SHA256_RSA_PKCS_PSS",
                 "CKM_AES_CMAC", "CKM_AES_CBC_PAD", "CKM_AES_ECB", "CKM_AES_CTR", "CKM_SHA256",
                 "CKM_SHA3_512_HMAC_GENERAL", "CKM_ECDSA_SHA3_256", "CKM_DSA_SHA256", "CKM_DSA_SHA3_512",
                 "CKM_DES3_ECB", "CKM_DES3_CBC", "CKM_DES3_CBC_PAD", "CKM_DES3_MAC", "CKM_DES3_MAC_GENERAL",
                 "CKM_DES3_CMAC", "CKM_DES3_CMAC_GENERAL"):
        assert name in covered, name


# ---------------------------------------------------------------------- item 8


def _mix_cases(p11: P11, s: int) -> list[tuple[str, int, int, Any]]:
    aes, mac = _aes(p11, s), _hmac(p11, s)
    _rsa_pub, rsa_priv = _rsa(p11, s)
    _ec_pub, ec_priv = _ec(p11, s)
    return [("sign", A.CKM_SHA256_HMAC, mac, None), ("sign", A.CKM_SHA256_RSA_PKCS, rsa_priv, None),
            ("sign", A.CKM_ECDSA_SHA256, ec_priv, None), ("sign", A.CKM_AES_CMAC, aes, None),
            ("digest", A.CKM_SHA256, 0, None), ("encrypt", A.CKM_AES_CBC_PAD, aes, IV)]


def _start(p11: P11, s: int, kind: str, mech: int, key: int, param: Any) -> None:
    fn = {"sign": "C_SignInit", "digest": "C_DigestInit", "encrypt": "C_EncryptInit"}[kind]
    if kind == "digest":
        _init(p11, fn, s, mech)
    else:
        _init(p11, fn, s, mech, key, param=param)


def _reference(p11: P11, s: int, kind: str, mech: int, key: int, param: Any, data: bytes) -> bytes | None:
    """The multi-part result of ``data`` alone (None for a randomised signature)."""
    if mech == A.CKM_ECDSA_SHA256:
        return None
    _start(p11, s, kind, mech, key, param)
    if kind == "encrypt":
        out = _out(p11, "C_EncryptUpdate", s, data, len(data))
        return out + _out(p11, "C_EncryptFinal", s)
    p11.check(_UPDATE[kind], s, data, len(data))
    return _out(p11, {"sign": "C_SignFinal", "digest": "C_DigestFinal"}[kind], s)


def test_oneshot_query_then_multipart(p11: P11, token: P11, user_session: int) -> None:
    """C_Sign(NULL) then C_SignUpdate/C_SignFinal: the result covers exactly the updates, or
    the mix is refused (CKR_OPERATION_ACTIVE); never the first data lost."""
    s = user_session
    first, later = b"first part " * 9, b"later part " * 7
    for kind, mech, key, param in _mix_cases(p11, s):
        ref = _reference(p11, s, kind, mech, key, param, later)
        _start(p11, s, kind, mech, key, param)
        p11.check(_ONESHOT[kind], s, first, len(first), NULL, _n(0))  # the one-shot length query
        if kind == "encrypt":
            rv = p11.call("C_EncryptUpdate", s, later, len(later), ffi.new("unsigned char[]", 4096), _n(4096))
        else:
            rv = p11.call(_UPDATE[kind], s, later, len(later))
        assert rv == A.CKR_OPERATION_ACTIVE, spec.ckr_name(rv)  # refused, and the operation ended
        args: tuple[Any, ...] = (ffi.new("unsigned char[]", 4096), _n(4096)) if kind == "encrypt" else ()
        assert p11.call(_UPDATE[kind], s, later, len(later), *args) == A.CKR_OPERATION_NOT_INITIALIZED
        # a new operation is unaffected
        assert _reference(p11, s, kind, mech, key, param, later) == ref


def test_oneshot_query_then_final(p11: P11, token: P11, user_session: int) -> None:
    s = user_session
    first = b"first part " * 9
    for kind, mech, key, param in _mix_cases(p11, s):
        empty = _reference(p11, s, kind, mech, key, param, b"")
        _start(p11, s, kind, mech, key, param)
        p11.check(_ONESHOT[kind], s, first, len(first), NULL, _n(0))
        fn = {"sign": "C_SignFinal", "digest": "C_DigestFinal", "encrypt": "C_EncryptFinal"}[kind]
        buf, n = ffi.new("unsigned char[]", 4096), _n(4096)
        rv = p11.call(fn, s, buf, n)  # the trace: HMAC(key, "") silently
        assert rv == A.CKR_OPERATION_ACTIVE, spec.ckr_name(rv)
        assert p11.call(fn, s, buf, _n(4096)) == A.CKR_OPERATION_NOT_INITIALIZED
        assert _reference(p11, s, kind, mech, key, param, b"") == empty


def test_oneshot_query_then_other_data(p11: P11, token: P11, user_session: int) -> None:
    """C_Sign(NULL, a) then C_Sign(buf, b): the query did no work, so the result of b; once
    the work was done (a too-small buffer), other data is refused."""
    s = user_session
    first, later = b"first part " * 9, b"later part " * 7
    for kind, mech, key, param in _mix_cases(p11, s):
        ref = _reference(p11, s, kind, mech, key, param, later)
        _start(p11, s, kind, mech, key, param)
        p11.check(_ONESHOT[kind], s, first, len(first), NULL, _n(0))
        buf, n = ffi.new("unsigned char[]", 4096), _n(4096)
        rv = p11.call(_ONESHOT[kind], s, later, len(later), buf, n)
        if rv == A.CKR_OPERATION_ACTIVE:  # a mechanism that did the work to answer the query
            continue
        assert rv == A.CKR_OK, spec.ckr_name(rv)
        if ref is not None:
            assert ffi.buffer(buf, n[0])[:] == ref
        # too small: the work is done, so other data is refused
        _start(p11, s, kind, mech, key, param)
        assert p11.call(_ONESHOT[kind], s, first, len(first), buf, _n(1)) == A.CKR_BUFFER_TOO_SMALL
        assert p11.call(_ONESHOT[kind], s, later, len(later), buf, _n(4096)) == A.CKR_OPERATION_ACTIVE
        assert p11.call(_ONESHOT[kind], s, first, len(first), buf, _n(4096)) == A.CKR_OPERATION_NOT_INITIALIZED


def test_update_too_small_then_final(p11: P11, token: P11, user_session: int) -> None:
    """C_EncryptUpdate too small, then C_EncryptFinal: the kept output is not lost silently."""
    s = user_session
    aes = _aes(p11, s)
    _init(p11, "C_EncryptInit", s, A.CKM_AES_CBC, aes, param=IV)
    buf = ffi.new("unsigned char[]", 4096)
    assert p11.call("C_EncryptUpdate", s, DATA[:64], 64, buf, _n(1)) == A.CKR_BUFFER_TOO_SMALL
    rv = p11.call("C_EncryptFinal", s, buf, _n(4096))
    assert rv == A.CKR_OPERATION_ACTIVE
    assert p11.call("C_EncryptFinal", s, buf, _n(4096)) == A.CKR_OPERATION_NOT_INITIALIZED
