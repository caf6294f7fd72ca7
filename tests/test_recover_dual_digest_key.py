"""C_SignRecover/C_VerifyRecover (RSA_PKCS, RSA_X_509), C_DigestKey's rules (issue 23 item 12,
docs/security.md) and the four dual-function updates, through the built .so."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as S
from p11 import P11, ffi, raises_ckr


def rsa_pair(p11: P11, s: int, **pub_flags: bool) -> tuple[int, int, rsa.RSAPublicKey]:
    pub_t = {S.CKA_MODULUS_BITS: 2048, S.CKA_TOKEN: False, S.CKA_VERIFY_RECOVER: True, S.CKA_VERIFY: True}
    pub_t.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in pub_flags.items()})
    pub, priv = p11.generate_key_pair(s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, pub_t,
                                      {S.CKA_TOKEN: False, S.CKA_SIGN: True, S.CKA_SIGN_RECOVER: True})
    n = int.from_bytes(p11.get(s, pub, S.CKA_MODULUS), "big")
    e = int.from_bytes(p11.get(s, pub, S.CKA_PUBLIC_EXPONENT), "big")
    return pub, priv, rsa.RSAPublicNumbers(e, n).public_key()


def two_pass(p11: P11, s: int, fn: str, data: bytes) -> bytes:
    n = ffi.new("CK_ULONG *")
    p11.check(fn, s, data, len(data), ffi.NULL, n)
    buf = ffi.new("unsigned char[]", max(1, n[0]))
    p11.check(fn, s, data, len(data), buf, n)
    return ffi.buffer(buf, n[0])[:]


def init(p11: P11, s: int, fn: str, mech: int, key: int) -> None:
    m, _keep = p11.mechanism(mech)
    p11.check(fn, s, m, key)


# ---------------------------------------------------------------------- sign/verify with recovery


def test_rsa_pkcs_sign_recover_and_verify_recover(token: P11, user_session: int) -> None:
    s = user_session
    pub, priv, public = rsa_pair(token, s)
    data = b"recover me"
    init(token, s, "C_SignRecoverInit", S.CKM_RSA_PKCS, priv)
    sig = two_pass(token, s, "C_SignRecover", data)
    assert public.recover_data_from_signature(sig, padding.PKCS1v15(), None) == data
    assert sig == token.sign(s, S.CKM_RSA_PKCS, priv, data)  # the same signature C_Sign makes
    init(token, s, "C_VerifyRecoverInit", S.CKM_RSA_PKCS, pub)
    assert two_pass(token, s, "C_VerifyRecover", sig) == data
    init(token, s, "C_VerifyRecoverInit", S.CKM_RSA_PKCS, pub)
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        two_pass(token, s, "C_VerifyRecover", bytes([sig[0] ^ 1]) + sig[1:])
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # the error ended the operation
        two_pass(token, s, "C_VerifyRecover", sig)
    init(token, s, "C_VerifyRecoverInit", S.CKM_RSA_PKCS, pub)
    with raises_ckr(S.CKR_SIGNATURE_LEN_RANGE):
        two_pass(token, s, "C_VerifyRecover", sig[1:])


def test_rsa_x509_recover_and_buffer_protocol(token: P11, user_session: int) -> None:
    s = user_session
    pub, priv, public = rsa_pair(token, s)
    block = b"\x00\x01" + b"\x42" * 254
    init(token, s, "C_SignRecoverInit", S.CKM_RSA_X_509, priv)
    n = ffi.new("CK_ULONG *", 10)
    small = ffi.new("unsigned char[]", 10)
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_SignRecover", s, block, len(block), small, n)
    assert n[0] == 256
    sig = two_pass(token, s, "C_SignRecover", block)
    numbers = public.public_numbers()
    assert pow(int.from_bytes(sig, "big"), numbers.e, numbers.n).to_bytes(256, "big") == block
    init(token, s, "C_VerifyRecoverInit", S.CKM_RSA_X_509, pub)
    assert two_pass(token, s, "C_VerifyRecover", sig) == block
    init(token, s, "C_SignRecoverInit", S.CKM_RSA_X_509, priv)
    with raises_ckr(S.CKR_ARGUMENTS_BAD):  # NULL length pointer
        token.check("C_SignRecover", s, block, len(block), ffi.NULL, ffi.NULL)


def test_recover_needs_its_flags_and_mechanisms(token: P11, user_session: int) -> None:
    s = user_session
    pub, priv, _public = rsa_pair(token, s, verify_recover=False)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        init(token, s, "C_VerifyRecoverInit", S.CKM_RSA_PKCS, pub)
    no_recover = token.generate_key_pair(s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, {S.CKA_MODULUS_BITS: 2048, S.CKA_TOKEN: False},
                                         {S.CKA_TOKEN: False, S.CKA_SIGN_RECOVER: False})[1]
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        init(token, s, "C_SignRecoverInit", S.CKM_RSA_PKCS, no_recover)
    for mech in (S.CKM_SHA256_RSA_PKCS, S.CKM_RSA_PKCS_PSS, S.CKM_ECDSA):
        with raises_ckr(S.CKR_MECHANISM_INVALID):
            init(token, s, "C_SignRecoverInit", mech, priv)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        two_pass(token, s, "C_SignRecover", b"x")
    init(token, s, "C_SignRecoverInit", S.CKM_RSA_PKCS, priv)
    with raises_ckr(S.CKR_OPERATION_ACTIVE):
        init(token, s, "C_SignRecoverInit", S.CKM_RSA_PKCS, priv)
    init(token, s, "C_SignInit", S.CKM_RSA_PKCS, priv)  # another kind of operation coexists
    info = ffi.new("CK_MECHANISM_INFO *")
    for mech in (S.CKM_RSA_PKCS, S.CKM_RSA_X_509):
        token.check("C_GetMechanismInfo", 0, mech, info)
        assert info.flags & (S.CKF_SIGN_RECOVER | S.CKF_VERIFY_RECOVER) == S.CKF_SIGN_RECOVER | S.CKF_VERIFY_RECOVER
    token.check("C_GetMechanismInfo", 0, S.CKM_SHA256_RSA_PKCS, info)
    assert not info.flags & S.CKF_SIGN_RECOVER


# ---------------------------------------------------------------------- C_DigestKey


def _secret(p11: P11, s: int, length: int, *, sensitive: bool, extractable: bool = True) -> int:
    return p11.generate_key(s, S.CKM_GENERIC_SECRET_KEY_GEN,
                            {S.CKA_VALUE_LEN: length, S.CKA_TOKEN: False, S.CKA_SENSITIVE: sensitive,
                             S.CKA_EXTRACTABLE: extractable})


def digest_key(p11: P11, s: int, mech: int, key: int, before: bytes = b"") -> bytes:
    m, _keep = p11.mechanism(mech)
    p11.check("C_DigestInit", s, m)
    if before:
        p11.check("C_DigestUpdate", s, before, len(before))
    p11.check("C_DigestKey", s, key)
    n = ffi.new("CK_ULONG *", 64)
    buf = ffi.new("unsigned char[]", 64)
    p11.check("C_DigestFinal", s, buf, n)
    return ffi.buffer(buf, n[0])[:]


def test_digest_key_of_a_readable_key(token: P11, user_session: int) -> None:
    s = user_session
    key = _secret(token, s, 5, sensitive=False)
    value = token.get(s, key, S.CKA_VALUE)
    assert digest_key(token, s, S.CKM_SHA256, key, b"prefix") == hashlib.sha256(b"prefix" + value).digest()


def test_digest_key_of_a_protected_key_follows_the_rule(token: P11, user_session: int) -> None:
    """docs/security.md: a sensitive or non-extractable key is digested by SHA-1/2/3 only, and
    only when it has at least 128 bits (a shorter one would fall to a search of its digest)."""
    s = user_session
    strong = _secret(token, s, 32, sensitive=True)
    assert len(digest_key(token, s, S.CKM_SHA256, strong)) == 32
    assert len(digest_key(token, s, S.CKM_SHA3_256, _secret(token, s, 16, sensitive=False, extractable=False))) == 32
    short = _secret(token, s, 8, sensitive=True)
    m, _keep = token.mechanism(S.CKM_SHA256)
    token.check("C_DigestInit", s, m)
    with raises_ckr(S.CKR_KEY_INDIGESTIBLE):
        token.check("C_DigestKey", s, short)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # the error ended the digest
        token.check("C_DigestUpdate", s, b"x", 1)


def test_digest_key_errors_end_the_digest(token: P11, user_session: int) -> None:
    s = user_session
    m, _keep = token.mechanism(S.CKM_SHA256)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_DigestKey", s, _secret(token, s, 16, sensitive=False))
    token.check("C_DigestInit", s, m)
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):
        token.check("C_DigestKey", s, 0xBAD)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_DigestUpdate", s, b"x", 1)
    pub, _priv, _public = rsa_pair(token, s)
    token.check("C_DigestInit", s, m)
    with raises_ckr(S.CKR_KEY_INDIGESTIBLE):  # only secret keys
        token.check("C_DigestKey", s, pub)
    token.check("C_DigestInit", s, m)  # a new digest can start: the old one ended


# ---------------------------------------------------------------------- dual-function updates


def _aes(p11: P11, s: int) -> tuple[int, bytes]:
    h = p11.generate_key(s, S.CKM_AES_KEY_GEN, {S.CKA_VALUE_LEN: 16, S.CKA_TOKEN: False, S.CKA_SENSITIVE: False,
                                                 S.CKA_EXTRACTABLE: True, S.CKA_ENCRYPT: True, S.CKA_DECRYPT: True})
    return h, p11.get(s, h, S.CKA_VALUE)


def _final(p11: P11, s: int, fn: str) -> bytes:
    n = ffi.new("CK_ULONG *", 256)
    buf = ffi.new("unsigned char[]", 256)
    p11.check(fn, s, buf, n)
    return ffi.buffer(buf, n[0])[:]


def dual(p11: P11, s: int, fn: str, data: bytes) -> bytes:
    return two_pass(p11, s, fn, data)


def test_digest_encrypt_and_decrypt_digest(token: P11, user_session: int) -> None:
    s = user_session
    key, value = _aes(token, s)
    pt = bytes(range(48))
    init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    m, _keep = token.mechanism(S.CKM_SHA256)
    token.check("C_DigestInit", s, m)
    ct = dual(token, s, "C_DigestEncryptUpdate", pt[:32]) + dual(token, s, "C_DigestEncryptUpdate", pt[32:])
    ct += _final(token, s, "C_EncryptFinal")
    assert _final(token, s, "C_DigestFinal") == hashlib.sha256(pt).digest()  # the length query fed nothing twice
    enc = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
    assert ct == enc.update(pt) + enc.finalize()

    init(token, s, "C_DecryptInit", S.CKM_AES_ECB, key)
    token.check("C_DigestInit", s, m)
    out = dual(token, s, "C_DecryptDigestUpdate", ct)
    out += _final(token, s, "C_DecryptFinal")
    assert out == pt
    assert _final(token, s, "C_DigestFinal") == hashlib.sha256(pt).digest()


def test_sign_encrypt_and_decrypt_verify(token: P11, user_session: int) -> None:
    s = user_session
    key, _value = _aes(token, s)
    mac_key = token.generate_key(s, S.CKM_GENERIC_SECRET_KEY_GEN, {S.CKA_VALUE_LEN: 32, S.CKA_TOKEN: False,
                                                                   S.CKA_SIGN: True, S.CKA_VERIFY: True})
    pt = b"0123456789abcdef" * 4
    init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    init(token, s, "C_SignInit", S.CKM_SHA256_HMAC, mac_key)
    ct = dual(token, s, "C_SignEncryptUpdate", pt)
    ct += _final(token, s, "C_EncryptFinal")
    mac = _final(token, s, "C_SignFinal")

    init(token, s, "C_DecryptInit", S.CKM_AES_ECB, key)
    init(token, s, "C_VerifyInit", S.CKM_SHA256_HMAC, mac_key)
    assert dual(token, s, "C_DecryptVerifyUpdate", ct) == pt
    _final(token, s, "C_DecryptFinal")
    token.check("C_VerifyFinal", s, mac, len(mac))


def test_dual_functions_need_both_operations(token: P11, user_session: int) -> None:
    s = user_session
    key, _value = _aes(token, s)
    init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # no digest: both end
        dual(token, s, "C_DigestEncryptUpdate", bytes(16))
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_EncryptUpdate", s, bytes(16), 16, ffi.new("unsigned char[]", 16), ffi.new("CK_ULONG *", 16))
    m, _keep = token.mechanism(S.CKM_SHA256)
    token.check("C_DigestInit", s, m)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # no encryption
        dual(token, s, "C_DigestEncryptUpdate", bytes(16))
    # CKR_BUFFER_TOO_SMALL keeps both
    init(token, s, "C_EncryptInit", S.CKM_AES_ECB, key)
    token.check("C_DigestInit", s, m)
    n = ffi.new("CK_ULONG *", 4)
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_DigestEncryptUpdate", s, bytes(32), 32, ffi.new("unsigned char[]", 4), n)
    assert n[0] == 32
    dual(token, s, "C_DigestEncryptUpdate", bytes(32))
    assert _final(token, s, "C_DigestFinal") == hashlib.sha256(bytes(32)).digest()
    token.check("C_DigestInit", s, m)
    with raises_ckr(S.CKR_ARGUMENTS_BAD):  # NULL length pointer: an error, both end
        token.check("C_DigestEncryptUpdate", s, bytes(16), 16, ffi.NULL, ffi.NULL)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_DigestUpdate", s, b"x", 1)
