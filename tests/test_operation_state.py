"""C_GetOperationState / C_SetOperationState (PKCS#11 3.0 §5.6.11-12; issue 25 item 5).

pkcs11-provider duplicates a DigestSign context by saving the state and restoring it in a
new session (OpenSSL 3.2+ fails the duplication on a refusal). Through the built library:
digests, HMAC and hash-then-sign continue in another session exactly where they stopped; a
state is sealed and bound to its key, token and session owner; unsaveable operations say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cryptoki_shim import spec
from p11 import P11, SO_PIN, USER_PIN, ffi, write_config

A = spec
MSG = bytes(range(256)) * 5


def get_state(p11: P11, s: int) -> bytes:
    n = ffi.new("CK_ULONG *")
    p11.check("C_GetOperationState", s, ffi.NULL, n)
    buf = ffi.new("unsigned char[]", n[0])
    p11.check("C_GetOperationState", s, buf, n)
    return ffi.buffer(buf, n[0])[:]


def set_state(p11: P11, s: int, state: bytes, enc: int = 0, auth: int = 0) -> int:
    return p11.call("C_SetOperationState", s, state, len(state), enc, auth)


def _init(p11: P11, fn: str, s: int, ckm: int, *key: int) -> None:
    m, _keep = p11.mechanism(ckm)
    p11.check(fn, s, m, *key)


def _update(p11: P11, fn: str, s: int, data: bytes) -> None:
    p11.check(fn, s, data, len(data))


def _hmac_key(p11: P11, s: int, value: bytes = b"k" * 32) -> int:
    return p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_VALUE: value,
                          A.CKA_SIGN: True, A.CKA_VERIFY: True, A.CKA_TOKEN: False})


def _rsa_pair(p11: P11, s: int) -> tuple[int, int]:
    return p11.generate_key_pair(s, A.CKM_RSA_PKCS_KEY_PAIR_GEN,
                                 {A.CKA_MODULUS_BITS: 2048, A.CKA_VERIFY: True, A.CKA_TOKEN: False},
                                 {A.CKA_SIGN: True, A.CKA_TOKEN: False})


def _public_rsa(p11: P11, s: int, pub: int) -> Any:
    n = int.from_bytes(p11.get(s, pub, A.CKA_MODULUS), "big")
    e = int.from_bytes(p11.get(s, pub, A.CKA_PUBLIC_EXPONENT), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


@pytest.mark.parametrize("ckm", [A.CKM_SHA_1, A.CKM_SHA256, A.CKM_SHA384, A.CKM_SHA512_224, A.CKM_SHA512_256,
                                 A.CKM_SHA3_224, A.CKM_SHA3_512],
                         ids=A.ckm_name)
def test_digest_saved_mid_stream_continues_in_another_session(token: P11, user_session: int, ckm: int) -> None:
    want = token.digest(user_session, ckm, MSG)
    _init(token, "C_DigestInit", user_session, ckm)
    _update(token, "C_DigestUpdate", user_session, MSG[:333])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state) == A.CKR_OK
    _update(token, "C_DigestUpdate", other, MSG[333:])
    assert token._two_pass("C_DigestFinal", other) == want
    # the original goes on independently
    _update(token, "C_DigestUpdate", user_session, MSG[333:])
    assert token._two_pass("C_DigestFinal", user_session) == want


def test_buffer_protocol(token: P11, user_session: int) -> None:
    """NULL buffer -> length; a short buffer -> CKR_BUFFER_TOO_SMALL with the length."""
    _init(token, "C_DigestInit", user_session, A.CKM_SHA256)
    n = ffi.new("CK_ULONG *")
    token.check("C_GetOperationState", user_session, ffi.NULL, n)
    need = n[0]
    small = ffi.new("unsigned char[]", 8)
    n[0] = 8
    assert token.call("C_GetOperationState", user_session, small, n) == A.CKR_BUFFER_TOO_SMALL
    assert n[0] == need


def test_hmac_state_continues_with_its_key(token: P11, user_session: int) -> None:
    key = _hmac_key(token, user_session)
    want = token.sign(user_session, A.CKM_SHA256_HMAC, key, MSG)
    _init(token, "C_SignInit", user_session, A.CKM_SHA256_HMAC, key)
    _update(token, "C_SignUpdate", user_session, MSG[:100])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state, auth=key) == A.CKR_OK
    _update(token, "C_SignUpdate", other, MSG[100:])
    assert token._two_pass("C_SignFinal", other) == want
    # verify too
    _init(token, "C_VerifyInit", user_session, A.CKM_SHA256_HMAC, key)
    _update(token, "C_VerifyUpdate", user_session, MSG[:7])
    state = get_state(token, user_session)
    assert set_state(token, other, state, auth=key) == A.CKR_OK
    _update(token, "C_VerifyUpdate", other, MSG[7:])
    token.check("C_VerifyFinal", other, want, len(want))


def test_sha256_rsa_pkcs_sign_state(token: P11, user_session: int) -> None:
    """The DigestSign duplication of pkcs11-provider (``p11prov_sig_dup``): CKM_SHA256_RSA_PKCS
    mid-stream, restored in a new session with the key handle as both hEncryptionKey and
    hAuthenticationKey, as the provider passes it (before: CKR_FUNCTION_NOT_SUPPORTED)."""
    pub, priv = _rsa_pair(token, user_session)
    want = token.sign(user_session, A.CKM_SHA256_RSA_PKCS, priv, MSG)  # PKCS#1 v1.5 is deterministic
    _init(token, "C_SignInit", user_session, A.CKM_SHA256_RSA_PKCS, priv)
    _update(token, "C_SignUpdate", user_session, MSG[:500])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state, enc=priv, auth=priv) == A.CKR_OK
    _update(token, "C_SignUpdate", other, MSG[500:])
    sig = token._two_pass("C_SignFinal", other)
    assert sig == want
    _public_rsa(token, user_session, pub).verify(sig, MSG, padding.PKCS1v15(), hashes.SHA256())


def test_ecdsa_sha256_and_pss_with_parameters(token: P11, user_session: int) -> None:
    """A state carries the mechanism parameter (PSS) and works for ECDSA-SHA256."""
    pub, priv = token.generate_key_pair(
        user_session, A.CKM_EC_KEY_PAIR_GEN,
        {A.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), A.CKA_VERIFY: True, A.CKA_TOKEN: False},
        {A.CKA_SIGN: True, A.CKA_TOKEN: False})
    _init(token, "C_SignInit", user_session, A.CKM_ECDSA_SHA256, priv)
    _update(token, "C_SignUpdate", user_session, MSG[:10])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state, auth=priv) == A.CKR_OK
    _update(token, "C_SignUpdate", other, MSG[10:])
    sig = token._two_pass("C_SignFinal", other)
    token.verify(user_session, A.CKM_ECDSA_SHA256, pub, MSG, sig)

    token.call("C_SignInit", user_session, ffi.NULL, 0)  # 3.0: ends the saved original
    rpub, rpriv = _rsa_pair(token, user_session)
    pss = ffi.new("CK_RSA_PKCS_PSS_PARAMS *", {"hashAlg": A.CKM_SHA256, "mgf": A.CKG_MGF1_SHA256, "sLen": 32})
    m, _keep = token.mechanism(A.CKM_SHA256_RSA_PKCS_PSS, pss)
    token.check("C_SignInit", user_session, m, rpriv)
    _update(token, "C_SignUpdate", user_session, MSG[:3])
    state = get_state(token, user_session)
    assert set_state(token, other, state, auth=rpriv) == A.CKR_OK
    _update(token, "C_SignUpdate", other, MSG[3:])
    sig = token._two_pass("C_SignFinal", other)
    _public_rsa(token, user_session, rpub).verify(
        sig, MSG, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_tampered_state_is_invalid(token: P11, user_session: int) -> None:
    _init(token, "C_DigestInit", user_session, A.CKM_SHA256)
    _update(token, "C_DigestUpdate", user_session, b"abc")
    state = get_state(token, user_session)
    for i in (0, 10, len(state) // 2, len(state) - 1):
        bad = bytearray(state)
        bad[i] ^= 1
        assert set_state(token, user_session, bytes(bad)) == A.CKR_SAVED_STATE_INVALID
    assert set_state(token, user_session, state[:-1]) == A.CKR_SAVED_STATE_INVALID
    assert set_state(token, user_session, b"x" * 40) == A.CKR_SAVED_STATE_INVALID
    # the session's own operation survived the refusals
    _update(token, "C_DigestUpdate", user_session, b"def")
    assert token._two_pass("C_DigestFinal", user_session) == token.digest(user_session, A.CKM_SHA256, b"abcdef")


def test_state_is_bound_to_its_key(token: P11, user_session: int) -> None:
    key = _hmac_key(token, user_session)
    other_key = _hmac_key(token, user_session, b"k" * 32)  # same value, another object
    _init(token, "C_SignInit", user_session, A.CKM_SHA256_HMAC, key)
    _update(token, "C_SignUpdate", user_session, b"abc")
    state = get_state(token, user_session)
    s2 = token.open(0)
    assert set_state(token, s2, state, auth=other_key) == A.CKR_KEY_CHANGED
    assert set_state(token, s2, state) == A.CKR_KEY_NEEDED
    assert set_state(token, s2, state, enc=other_key, auth=key) == A.CKR_KEY_NOT_NEEDED
    # a digest state names no key: giving one is refused
    _init(token, "C_DigestInit", user_session, A.CKM_SHA256)
    only_digest = token.open(0)
    _init(token, "C_DigestInit", only_digest, A.CKM_SHA256)
    dstate = get_state(token, only_digest)
    assert set_state(token, s2, dstate, auth=key) == A.CKR_KEY_NOT_NEEDED


def test_state_is_bound_to_the_session_owner(token: P11, user_session: int) -> None:
    """A state saved by the logged-in user is refused after a logout (public session) and
    after the next login (a new login epoch), and in the SO's session."""
    _init(token, "C_DigestInit", user_session, A.CKM_SHA256)
    state = get_state(token, user_session)
    token.logout(user_session)
    assert set_state(token, user_session, state) == A.CKR_SAVED_STATE_INVALID
    token.login(user_session, USER_PIN)
    assert set_state(token, user_session, state) == A.CKR_SAVED_STATE_INVALID
    fresh = get_state_of_new_digest(token, user_session)
    token.logout(user_session)
    token.login(user_session, SO_PIN, user=A.CKU_SO)
    assert set_state(token, user_session, fresh) == A.CKR_SAVED_STATE_INVALID


def get_state_of_new_digest(p11: P11, s: int) -> bytes:
    p11.call("C_DigestInit", s, ffi.NULL)  # 3.0: a NULL mechanism ends an active digest
    _init(p11, "C_DigestInit", s, A.CKM_SHA256)
    return get_state(p11, s)


@pytest.fixture
def two_tokens(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    conf = write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "test"\n\n[[slots]]\nid = 1\nkdf_cost = "test"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p11 = P11(lib_path)
    p11.initialize()
    sessions = []
    for slot in (0, 1):
        p11.init_token(slot, SO_PIN, f"t{slot}")
        s = p11.open(slot)
        p11.login(s, SO_PIN, user=A.CKU_SO)
        p11.init_pin(s, USER_PIN)
        p11.logout(s)
        p11.login(s, USER_PIN)
        sessions.append(s)
    yield p11, sessions
    p11.call("C_Finalize", ffi.NULL)


def test_state_is_bound_to_its_token(two_tokens) -> None:
    p11, (s0, s1) = two_tokens
    _init(p11, "C_DigestInit", s0, A.CKM_SHA256)
    state = get_state(p11, s0)
    assert set_state(p11, s1, state) == A.CKR_SAVED_STATE_INVALID


def test_unsaveable_operations(token: P11, user_session: int) -> None:
    assert token.call("C_GetOperationState", user_session, ffi.NULL, ffi.new("CK_ULONG *")) == \
        A.CKR_OPERATION_NOT_INITIALIZED
    aes = token.generate_key(user_session, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 16, A.CKA_ENCRYPT: True,
                                                               A.CKA_TOKEN: False})
    _init(token, "C_EncryptInit", user_session, A.CKM_AES_ECB, aes)
    assert token.call("C_GetOperationState", user_session, ffi.NULL, ffi.new("CK_ULONG *")) == A.CKR_STATE_UNSAVEABLE
    token.call("C_EncryptInit", user_session, ffi.NULL, 0)
    _init(token, "C_DigestInit", user_session, A.CKM_SHA3_256)
    token.check("C_FindObjectsInit", user_session, ffi.NULL, 0)  # a search cannot be saved with it
    assert token.call("C_GetOperationState", user_session, ffi.NULL, ffi.new("CK_ULONG *")) == A.CKR_STATE_UNSAVEABLE


def test_eddsa_buffered_message_state(token: P11, user_session: int) -> None:
    """EdDSA buffers the message (pure EdDSA hashes it twice): the state carries it; Ed25519
    is deterministic, so the restored signature equals the one-shot one."""
    pub, priv = token.generate_key_pair(
        user_session, A.CKM_EC_EDWARDS_KEY_PAIR_GEN,
        {A.CKA_EC_PARAMS: bytes.fromhex("06032b6570"), A.CKA_VERIFY: True, A.CKA_TOKEN: False},
        {A.CKA_SIGN: True, A.CKA_TOKEN: False})
    want = token.sign(user_session, A.CKM_EDDSA, priv, MSG)
    _init(token, "C_SignInit", user_session, A.CKM_EDDSA, priv)
    _update(token, "C_SignUpdate", user_session, MSG[:99])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state, auth=priv) == A.CKR_OK
    _update(token, "C_SignUpdate", other, MSG[99:])
    assert token._two_pass("C_SignFinal", other) == want


def test_restore_repeats_the_key_checks(token: P11, user_session: int) -> None:
    """A state does not outlive the key's permission: CKA_SIGN turned off after the save makes
    the restore fail as C_SignInit would (the state is no capability of its own)."""
    key = _hmac_key(token, user_session)
    _init(token, "C_SignInit", user_session, A.CKM_SHA256_HMAC, key)
    _update(token, "C_SignUpdate", user_session, b"abc")
    state = get_state(token, user_session)
    token.set(user_session, key, {A.CKA_SIGN: False})
    other = token.open(0)
    assert set_state(token, other, state, auth=key) == A.CKR_KEY_FUNCTION_NOT_PERMITTED
    assert token.call("C_SignUpdate", other, b"x", 1) == A.CKR_OPERATION_NOT_INITIALIZED


def test_rsa_verify_and_digest_saved_together(token: P11, user_session: int) -> None:
    """Issue 17 item 5: a multi-part asymmetric verify and a digest in one state (pkcs11-provider
    duplicates DigestVerify contexts too), restored in another session; a recovery operation
    is unsaveable."""
    pub, priv = _rsa_pair(token, user_session)
    sig = token.sign(user_session, A.CKM_SHA256_RSA_PKCS, priv, MSG)
    _init(token, "C_VerifyInit", user_session, A.CKM_SHA256_RSA_PKCS, pub)
    _update(token, "C_VerifyUpdate", user_session, MSG[:123])
    _init(token, "C_DigestInit", user_session, A.CKM_SHA384)
    _update(token, "C_DigestUpdate", user_session, MSG[:5])
    state = get_state(token, user_session)
    other = token.open(0)
    assert set_state(token, other, state, auth=pub) == A.CKR_OK
    _update(token, "C_VerifyUpdate", other, MSG[123:])
    token.check("C_VerifyFinal", other, sig, len(sig))
    _update(token, "C_DigestUpdate", other, MSG[5:])
    assert token._two_pass("C_DigestFinal", other) == __import__("hashlib").sha384(MSG).digest()
    # a wrong signature after a restore is still refused
    assert set_state(token, other, state, auth=pub) == A.CKR_OK
    _update(token, "C_VerifyUpdate", other, MSG[123:] + b"x")
    assert token.call("C_VerifyFinal", other, sig, len(sig)) == A.CKR_SIGNATURE_INVALID
    token.call("C_VerifyInit", user_session, ffi.NULL, 0)
    token.call("C_DigestInit", user_session, ffi.NULL)
    _init(token, "C_SignRecoverInit", user_session, A.CKM_RSA_PKCS, priv)
    assert token.call("C_GetOperationState", user_session, ffi.NULL, ffi.new("CK_ULONG *")) == A.CKR_STATE_UNSAVEABLE
