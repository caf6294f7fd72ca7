"""Return-code semantics of the crypto functions through the .so (PKCS#11 3.0 §5.2, §5.8–5.14):
key checks, parameter checks, the output-buffer protocol, operation state, context login,
derived key flags, wrap policy."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import ec

from cryptoki_shim import spec as S
from p11 import P11, Template, ffi, raises_ckr
from test_mech_abi import aes_key, ec_pair
from vectors_abi import CURVE_OIDS, Params, secret, usage, wrap

MSG = b"semantics" * 10


def _init(p: P11, s: int, fn: str, mech: int, key: int, param=None) -> list:
    m, keep = p.mechanism(mech, param)
    p.check(fn, s, m, key)
    return keep


def test_usage_flag_type_and_allowed_mechanisms(token: P11, user_session: int) -> None:
    s = user_session
    no_sign = token.create(s, secret(S.CKK_GENERIC_SECRET, b"k" * 32, sign=False, verify=True))
    m, _k = token.mechanism(S.CKM_SHA256_HMAC)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        token.check("C_SignInit", s, m, no_sign)
    aes = token.create(s, secret(S.CKK_AES, os.urandom(16), sign=True, encrypt=True))
    m2, _k2 = token.mechanism(S.CKM_SHA256_RSA_PKCS)
    with raises_ckr(S.CKR_KEY_TYPE_INCONSISTENT):
        token.check("C_SignInit", s, m2, aes)
    limited = token.create(s, {**secret(S.CKK_AES, os.urandom(16), encrypt=True),
                               S.CKA_ALLOWED_MECHANISMS: (S.CKM_AES_GCM,)})
    m3, _k3 = token.mechanism(S.CKM_AES_ECB)
    with raises_ckr(S.CKR_MECHANISM_INVALID):
        token.check("C_EncryptInit", s, m3, limited)


def test_bad_parameters(token: P11, user_session: int) -> None:
    s = user_session
    key = aes_key(token, s, 16)
    m, _k = token.mechanism(S.CKM_AES_CBC, b"short iv")
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        token.check("C_EncryptInit", s, m, key)
    gcm = Params().gcm(os.urandom(12), b"aad")
    m, _k = token.mechanism(S.CKM_AES_GCM, gcm)
    m.ulParameterLen = 7  # wrong struct length
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        token.check("C_EncryptInit", s, m, key)
    gcm.pIv = ffi.NULL  # NULL pointer inside the struct with a non-zero length
    m, _k = token.mechanism(S.CKM_AES_GCM, gcm)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        token.check("C_EncryptInit", s, m, key)


def test_data_and_encrypted_data_ranges(token: P11, user_session: int) -> None:
    s = user_session
    key = aes_key(token, s, 16)
    with raises_ckr(S.CKR_DATA_LEN_RANGE):
        token.encrypt(s, S.CKM_AES_ECB, key, b"not a block")
    with raises_ckr(S.CKR_ENCRYPTED_DATA_LEN_RANGE):
        token.decrypt(s, S.CKM_AES_CBC_PAD, key, b"x" * 17, b"\0" * 16)
    ct = token.encrypt(s, S.CKM_AES_GCM, key, b"data", Params().gcm(b"\1" * 12))
    with raises_ckr(S.CKR_ENCRYPTED_DATA_INVALID):
        token.decrypt(s, S.CKM_AES_GCM, key, ct[:-1] + bytes([ct[-1] ^ 1]), Params().gcm(b"\1" * 12))


def test_signature_invalid_and_len_range(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, _ = ec_pair(token, s, CURVE_OIDS["P-256"][0], ec.SECP256R1())
    sig = token.sign(s, S.CKM_ECDSA_SHA256, hpriv, MSG)
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG + b"!", sig)
    with raises_ckr(S.CKR_SIGNATURE_LEN_RANGE):
        token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG, sig[:-1])


def test_buffer_protocol_ecdsa_retry_returns_the_kept_signature(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, _ = ec_pair(token, s, CURVE_OIDS["P-256"][0], ec.SECP256R1())
    _init(token, s, "C_SignInit", S.CKM_ECDSA_SHA256, hpriv)
    n = ffi.new("CK_ULONG *")
    token.check("C_Sign", s, MSG, len(MSG), ffi.NULL, n)           # length; op stays
    assert n[0] == 64
    n[0] = 10
    small = ffi.new("unsigned char[]", 10)
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_Sign", s, MSG, len(MSG), small, n)
    assert n[0] == 64
    buf = ffi.new("unsigned char[]", 64)
    token.check("C_Sign", s, MSG, len(MSG), buf, n)
    first = ffi.buffer(buf, 64)[:]
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # delivered: the operation ended
        token.check("C_Sign", s, MSG, len(MSG), buf, n)
    # too small, then retry: the same (randomised) signature as the too-small call computed
    _init(token, s, "C_SignInit", S.CKM_ECDSA_SHA256, hpriv)
    n[0] = 10
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_Sign", s, MSG, len(MSG), small, n)
    token.check("C_Sign", s, MSG, len(MSG), buf, n)
    a = ffi.buffer(buf, 64)[:]
    _init(token, s, "C_SignInit", S.CKM_ECDSA_SHA256, hpriv)
    token.check("C_Sign", s, MSG, len(MSG), ffi.NULL, n)
    token.check("C_Sign", s, MSG, len(MSG), buf, n)
    b = ffi.buffer(buf, 64)[:]
    assert a != first and b != a  # randomised, yet each retry delivered one kept signature
    token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG, a)
    token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG, b)


def test_error_ends_the_operation_and_modes_do_not_mix(token: P11, user_session: int) -> None:
    s = user_session
    key = aes_key(token, s, 16)
    _init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    with raises_ckr(S.CKR_OPERATION_ACTIVE):
        _init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    out = ffi.new("unsigned char[]", 64)
    n = ffi.new("CK_ULONG *", 64)
    with raises_ckr(S.CKR_DATA_LEN_RANGE):
        token.check("C_Encrypt", s, b"odd", 3, out, n)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_Encrypt", s, b"x" * 16, 16, out, n)
    _init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    n[0] = 64
    token.check("C_EncryptUpdate", s, b"x" * 16, 16, out, n)
    n[0] = 64
    with raises_ckr(S.CKR_OPERATION_ACTIVE):  # one-shot after update is refused ...
        token.check("C_Encrypt", s, b"x" * 16, 16, out, n)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # ... and, being an error, ended it
        token.check("C_EncryptFinal", s, out, n)
    # NULL mechanism cancels (3.0 §5.2)
    _init(token, s, "C_DecryptInit", S.CKM_AES_ECB, key)
    token.check("C_DecryptInit", s, ffi.NULL, key)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_Decrypt", s, b"x" * 16, 16, out, n)


def test_always_authenticate_needs_context_login(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = token.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=CURVE_OIDS["P-256"][0]),
                                          usage("sign", always_authenticate=True))
    _init(token, s, "C_SignInit", S.CKM_ECDSA_SHA256, hpriv)
    buf = ffi.new("unsigned char[]", 64)
    n = ffi.new("CK_ULONG *", 64)
    with raises_ckr(S.CKR_USER_NOT_LOGGED_IN):
        token.check("C_Sign", s, MSG, len(MSG), buf, n)
    token.login(s, b"1234", user=S.CKU_CONTEXT_SPECIFIC)
    token.check("C_Sign", s, MSG, len(MSG), buf, n)
    token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG, ffi.buffer(buf, n[0])[:])
    _init(token, s, "C_SignInit", S.CKM_ECDSA_SHA256, hpriv)  # next operation: again
    with raises_ckr(S.CKR_USER_NOT_LOGGED_IN):
        token.check("C_Sign", s, MSG, len(MSG), buf, n)


def test_derived_flags_after_generate_unwrap_derive_copy(token: P11, user_session: int) -> None:
    s = user_session
    g = aes_key(token, s, 32, sensitive=True, extractable=False)
    assert [token.get(s, g, a) for a in (S.CKA_LOCAL, S.CKA_ALWAYS_SENSITIVE, S.CKA_NEVER_EXTRACTABLE)] == [True] * 3
    c = token.copy(s, g, {})
    assert [token.get(s, c, a) for a in (S.CKA_LOCAL, S.CKA_ALWAYS_SENSITIVE, S.CKA_NEVER_EXTRACTABLE)] == [True] * 3
    created = token.create(s, secret(S.CKK_AES, os.urandom(16), sensitive=True))
    assert token.get(s, created, S.CKA_LOCAL) is False and token.get(s, created, S.CKA_ALWAYS_SENSITIVE) is False
    attr = ffi.new("CK_ATTRIBUTE *")
    attr.type = S.CKA_VALUE
    with raises_ckr(S.CKR_ATTRIBUTE_SENSITIVE):
        token.check("C_GetAttributeValue", s, g, attr, 1)
    assert attr.ulValueLen == S.CK_UNAVAILABLE_INFORMATION


def test_wrap_policy(token: P11, user_session: int) -> None:
    s = user_session
    kek = token.create(s, secret(S.CKK_AES, os.urandom(32), wrap=True, unwrap=True))
    unextractable = aes_key(token, s, 16, extractable=False)
    with raises_ckr(S.CKR_KEY_UNEXTRACTABLE):
        wrap(token, s, S.CKM_AES_KEY_WRAP, kek, unextractable)
    trusted_only = aes_key(token, s, 16, extractable=True, wrap_with_trusted=True)
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(token, s, S.CKM_AES_KEY_WRAP, kek, trusted_only)
    templated = _create_with_wrap_template(token, s, secret(S.CKK_AES, os.urandom(32), wrap=True),
                                           {S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET})
    aes = aes_key(token, s, 16, extractable=True)
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(token, s, S.CKM_AES_KEY_WRAP, templated, aes)


def _create_with_wrap_template(p: P11, s: int, attrs: dict, wrap_template: dict) -> int:
    """C_CreateObject with a nested CK_ATTRIBUTE array as a C client builds it (pointers)."""
    outer, inner = Template(attrs), Template(wrap_template)
    arr = ffi.new("CK_ATTRIBUTE[]", outer.count + 1)
    for i in range(outer.count):
        arr[i] = outer.array[i]
    arr[outer.count].type = S.CKA_WRAP_TEMPLATE
    arr[outer.count].pValue = inner.array
    arr[outer.count].ulValueLen = ffi.sizeof("CK_ATTRIBUTE") * inner.count
    h = ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_CreateObject", s, arr, outer.count + 1, h)
    return h[0]
