"""End-to-end smoke: the library loads in this (Python) host and serves a token."""

from cryptoki_shim import spec
from p11 import raises_ckr


def test_slot_list_and_token_info(p11):
    assert p11.slots() == [0]
    info = p11.token_info(0)
    assert not info.flags & spec.CKF_TOKEN_INITIALIZED


def test_token_user_login_and_data_object(token, user_session):
    h = token.create(user_session, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True,
                                    spec.CKA_LABEL: b"note", spec.CKA_VALUE: b"hello"})
    assert token.get(user_session, h, spec.CKA_VALUE) == b"hello"
    assert token.find(user_session, {spec.CKA_LABEL: b"note"}) == [h]
    token.destroy(user_session, h)
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(user_session, h, spec.CKA_VALUE)
