"""CKA_PRIVATE of session objects the caller already holds (issue 25 item 4).

pkcs11-provider imports a PEM file's private key, or an HKDF input secret, as a session
object in a public session without naming CKA_PRIVATE. The rule (``Session.held_by_caller``):
FALSE only for session objects whose value the caller supplied (C_CreateObject, and keys
derived only from such objects) while no user is logged in; never for token objects, nor for
generated, unwrapped or token-derived keys; an explicit CKA_PRIVATE=TRUE still needs a login;
the slot option ``strict_private_default = true`` restores TRUE. Each case through the .so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cryptoki_shim import spec
from p11 import P11, SO_PIN, USER_PIN, P11Error, ffi, write_config

A = spec
IKM = b"\x0b" * 22
P256_OID = bytes.fromhex("06082a8648ce3d030107")


@pytest.fixture
def public_session(token: P11) -> int:
    """A RW session with nobody logged in (what pkcs11-provider opens for a file key)."""
    return token.open(0)


def _secret(value: bytes, extra: dict[int, object] | None = None) -> dict[int, object]:
    return {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_VALUE: value,
            A.CKA_DERIVE: True, A.CKA_SIGN: True, **(extra or {})}


def _hkdf(p11: P11, s: int, base: int, ckm: int, template: dict[int, object]) -> int:
    params = ffi.new("CK_HKDF_PARAMS *", {"bExtract": 1, "bExpand": 1, "prfHashMechanism": A.CKM_SHA256,
                                          "ulSaltType": A.CKF_HKDF_SALT_NULL})
    info = ffi.new("unsigned char[]", b"info")
    params.pInfo, params.ulInfoLen = info, 4
    m, _keep = p11.mechanism(ckm, params)
    from p11 import Template

    t = Template(template)
    h = ffi.new("CK_OBJECT_HANDLE *")
    rv = p11.call("C_DeriveKey", s, m, base, t.array, t.count, h)
    if rv:
        raise P11Error(rv, "C_DeriveKey")
    return h[0]


def _ckr(fn, *args) -> int:
    try:
        fn(*args)
    except P11Error as exc:
        return exc.rv
    return A.CKR_OK


def test_created_session_secret_defaults_public_and_signs(token: P11, public_session: int) -> None:
    """Before: CKR_USER_NOT_LOGGED_IN (CKA_PRIVATE defaulted to TRUE)."""
    h = token.create(public_session, _secret(b"Jefe"))
    assert token.get(public_session, h, A.CKA_PRIVATE) is False
    mac = token.sign(public_session, A.CKM_SHA256_HMAC, h, b"what do ya want for nothing?")
    assert mac.hex().startswith("5bdcc146")


def test_pem_private_key_imported_in_a_public_session_signs(token: P11, public_session: int) -> None:
    """The provider's file-key import: an EC private key as a session object."""
    key = ec.generate_private_key(ec.SECP256R1())
    d = key.private_numbers().private_value.to_bytes(32, "big")
    h = token.create(public_session, {A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_KEY_TYPE: A.CKK_EC,
                                      A.CKA_EC_PARAMS: P256_OID, A.CKA_VALUE: d, A.CKA_SIGN: True})
    assert token.get(public_session, h, A.CKA_PRIVATE) is False
    digest = b"\x11" * 32
    sig = token.sign(public_session, A.CKM_ECDSA, h, digest)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    key.public_key().verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_hkdf_from_a_supplied_secret_is_public(token: P11, public_session: int) -> None:
    """CKM_HKDF_DERIVE and CKM_HKDF_DATA from a created secret: derived only from what the
    caller holds, so public too; the derived value is RFC 5869's."""
    base = token.create(public_session, _secret(IKM, {A.CKA_EXTRACTABLE: True, A.CKA_SENSITIVE: False}))
    key = _hkdf(token, public_session, base, A.CKM_HKDF_DERIVE,
                {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_VALUE_LEN: 32,
                 A.CKA_EXTRACTABLE: True, A.CKA_SENSITIVE: False})
    assert token.get(public_session, key, A.CKA_PRIVATE) is False
    want = HKDF(hashes.SHA256(), 32, None, b"info").derive(IKM)
    assert token.get(public_session, key, A.CKA_VALUE) == want
    data = _hkdf(token, public_session, base, A.CKM_HKDF_DATA, {A.CKA_CLASS: A.CKO_DATA, A.CKA_VALUE_LEN: 32})
    assert token.get(public_session, data, A.CKA_PRIVATE) is False


def test_explicit_private_true_still_needs_a_login(token: P11, public_session: int) -> None:
    assert _ckr(token.create, public_session, _secret(b"k" * 16, {A.CKA_PRIVATE: True})) == \
        A.CKR_USER_NOT_LOGGED_IN


def test_token_objects_keep_the_private_default(token: P11, public_session: int) -> None:
    assert _ckr(token.create, public_session, _secret(b"k" * 16, {A.CKA_TOKEN: True})) == A.CKR_USER_NOT_LOGGED_IN


def test_generated_keys_keep_the_private_default(token: P11, public_session: int) -> None:
    assert _ckr(token.generate_key, public_session, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 16}) == \
        A.CKR_USER_NOT_LOGGED_IN


def test_unwrapped_keys_keep_the_private_default(token: P11, public_session: int) -> None:
    kek = b"K" * 16
    unwrapping = token.create(public_session, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES,
                                               A.CKA_VALUE: kek, A.CKA_UNWRAP: True})
    wrapped = aes_key_wrap(kek, b"v" * 16)
    m, _keep = token.mechanism(A.CKM_AES_KEY_WRAP)
    from p11 import Template

    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET})
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_UnwrapKey", public_session, m, unwrapping, wrapped, len(wrapped), t.array, t.count, h) == \
        A.CKR_USER_NOT_LOGGED_IN


def test_keys_derived_from_token_or_generated_keys_keep_the_private_default(token: P11, public_session: int) -> None:
    """A public token key, and a session key generated public on purpose: what is derived
    from them is not the caller's own value, so it stays private by default."""
    user = token.open(0)
    token.login(user, USER_PIN)
    token_base = token.create(user, _secret(IKM, {A.CKA_TOKEN: True, A.CKA_PRIVATE: False}))
    token.logout(user)
    template = {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_VALUE_LEN: 32}
    assert _ckr(_hkdf, token, public_session, token_base, A.CKM_HKDF_DERIVE, template) == A.CKR_USER_NOT_LOGGED_IN
    generated = token.generate_key(public_session, A.CKM_GENERIC_SECRET_KEY_GEN,
                                   {A.CKA_VALUE_LEN: 32, A.CKA_DERIVE: True, A.CKA_PRIVATE: False})
    assert _ckr(_hkdf, token, public_session, generated, A.CKM_HKDF_DERIVE, template) == A.CKR_USER_NOT_LOGGED_IN


def test_logged_in_user_keeps_the_private_default(token: P11, user_session: int) -> None:
    h = token.create(user_session, _secret(b"k" * 16))
    assert token.get(user_session, h, A.CKA_PRIVATE) is True


def test_strict_private_default_restores_true(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "test"\nstrict_private_default = true\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p11 = P11(lib_path)
    p11.initialize()
    try:
        p11.init_token(0, SO_PIN, "strict")
        s = p11.open(0)
        assert _ckr(p11.create, s, _secret(b"k" * 16)) == A.CKR_USER_NOT_LOGGED_IN
    finally:
        p11.call("C_Finalize", ffi.NULL)
