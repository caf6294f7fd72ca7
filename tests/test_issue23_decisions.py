"""Issue 23, "decide and document", through the built library: an explicitly empty
CKA_ALLOWED_MECHANISMS (docs/security.md: every mechanism, SoftHSM2's reading, kept with its
reason) and the CKO_PROFILE objects of an unfiltered C_FindObjects (docs/clients.md). The RSA
implicit-rejection option is tests/test_rsa_rejection.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptoki_shim import spec
from p11 import P11, SO_PIN, ffi, raises_ckr, write_config


def aes(p11: P11, s: int, allowed: tuple[int, ...] | None) -> int:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_VALUE: bytes(16),
             spec.CKA_ENCRYPT: True}
    if allowed is not None:
        attrs[spec.CKA_ALLOWED_MECHANISMS] = allowed
    return p11.create(s, attrs)


def encrypt_init(p11: P11, s: int, mech: int, key: int, param: bytes | None = None) -> int:
    m, _keep = p11.mechanism(mech, param)
    rv = p11.call("C_EncryptInit", s, m, key)
    if rv == spec.CKR_OK:
        n = ffi.new("CK_ULONG *")
        p11.call("C_Encrypt", s, bytes(16), 16, ffi.NULL, n)  # a length query
        out = ffi.new("CK_BYTE[]", n[0])
        assert p11.call("C_Encrypt", s, bytes(16), 16, out, n) == spec.CKR_OK
    return rv


@pytest.mark.parametrize("allowed", [(), None], ids=["explicitly-empty", "absent"])
def test_empty_allowed_mechanisms_means_every_mechanism(token, user_session, allowed):
    """One rule (core/crypto_functions.check_key): an empty list, given or by default, does
    not restrict; both read back as the same empty array, so a client copying a key's
    attributes into a new template keeps a usable key."""
    s = user_session
    h = aes(token, s, allowed)
    assert token.get(s, h, spec.CKA_ALLOWED_MECHANISMS) == ()
    for mech, param in ((spec.CKM_AES_ECB, None), (spec.CKM_AES_CBC, bytes(16))):
        assert encrypt_init(token, s, mech, h, param) == spec.CKR_OK


def test_a_non_empty_list_restricts(token, user_session):
    s = user_session
    h = aes(token, s, (spec.CKM_AES_CBC,))
    assert encrypt_init(token, s, spec.CKM_AES_ECB, h) == spec.CKR_MECHANISM_INVALID
    assert encrypt_init(token, s, spec.CKM_AES_CBC, h, bytes(16)) == spec.CKR_OK


@pytest.mark.parametrize("enabled", [True, False], ids=["default", "profile_objects-false"])
def test_profile_objects_in_an_unfiltered_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib_path, enabled):
    """On by default: an unfiltered C_FindObjects on an empty token returns the three
    CKO_PROFILE objects (public, no login needed); ``profile_objects = false`` removes them."""
    option = "" if enabled else "profile_objects = false\n"
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, slots=f'[[slots]]\nid = 0\nkdf_cost = "test"\n{option}')))
    p11 = P11(lib_path)
    p11.initialize()
    try:
        p11.init_token(0, SO_PIN, "test")
        s = p11.open(0, rw=False)
        found = p11.find(s)
        classes = [p11.get(s, h, spec.CKA_CLASS) for h in found]
        assert classes == ([spec.CKO_PROFILE] * 3 if enabled else [])
        ids = sorted(p11.get(s, h, spec.CKA_PROFILE_ID) for h in found)
        assert ids == (sorted([spec.CKP_BASELINE_PROVIDER, spec.CKP_EXTENDED_PROVIDER, spec.CKP_AUTHENTICATION_TOKEN])
                       if enabled else [])
        assert p11.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []
        rw = p11.open(0)
        for h in found:  # neither destroyed nor changed, by anyone
            assert p11.call("C_DestroyObject", rw, h) == spec.CKR_ACTION_PROHIBITED
            with raises_ckr(spec.CKR_ACTION_PROHIBITED):  # CKA_MODIFIABLE FALSE (§4.4)
                p11.set(rw, h, {spec.CKA_LABEL: b"x"})
    finally:
        p11.finalize()
