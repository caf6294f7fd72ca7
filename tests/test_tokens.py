"""Token management through the built library (PKCS#11 3.0 §5.5): C_InitToken, C_InitPIN,
C_SetPIN, the persisted failed-login counter and the truthful CK_TOKEN_INFO flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptoki_shim import spec
from p11 import P11, ffi, raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them

CKU_SO, CKU_USER = int(spec.CKU_SO), int(spec.CKU_USER)
DATA_CLASS = {spec.CKA_CLASS: spec.CKO_DATA}
DATA = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"d", spec.CKA_VALUE: b"x"}

USER_PIN_FLAGS = spec.CKF_USER_PIN_COUNT_LOW | spec.CKF_USER_PIN_FINAL_TRY | spec.CKF_USER_PIN_LOCKED
SO_PIN_FLAGS = spec.CKF_SO_PIN_COUNT_LOW | spec.CKF_SO_PIN_FINAL_TRY | spec.CKF_SO_PIN_LOCKED


def flags(p11: P11) -> int:
    return int(p11.token_info(0).flags)


def text(field) -> bytes:
    return bytes(ffi.buffer(field))


def reconfigure(p11: P11, conf: Path, slot_keys: str) -> None:
    """Add keys to the slot table of the test's config (the last table of the file written by
    conftest.write_config; same store) and re-initialize the library with it."""
    conf.write_text(conf.read_text() + f"\n{slot_keys}\n")
    p11.finalize()
    p11.initialize()


@pytest.fixture
def limited(token: P11, shim_conf: Path) -> P11:
    """The ready token, with max_pin_failures = 3."""
    reconfigure(token, shim_conf, "max_pin_failures = 3")
    return token


# ----------------------------------------------------------------------------- C_InitToken


def test_new_token_is_initialized_with_label(p11):
    assert not flags(p11) & spec.CKF_TOKEN_INITIALIZED
    label = "my token ünïcode"
    p11.init_token(0, SO_PIN, label)
    info = p11.token_info(0)
    assert info.flags & spec.CKF_TOKEN_INITIALIZED
    assert not info.flags & spec.CKF_USER_PIN_INITIALIZED
    assert text(info.label) == label.encode().ljust(32, b" ")
    assert text(info.serialNumber).strip()


def test_label_blank_padded_round_trip_full_32(p11):
    label = b"L" * 32
    p11.check("C_InitToken", 0, SO_PIN, len(SO_PIN), label)
    assert text(p11.token_info(0).label) == label


def test_reinit_with_right_so_pin_wipes_objects_keeps_slot(token):
    s = token.open(0)
    token.login(s, USER_PIN)
    token.create(s, DATA)
    token.close(s)
    serial = text(token.token_info(0).serialNumber)
    token.init_token(0, SO_PIN, "again")
    assert token.slots() == [0]
    info = token.token_info(0)
    assert text(info.label).rstrip() == b"again"
    assert info.flags & spec.CKF_TOKEN_INITIALIZED
    assert not info.flags & spec.CKF_USER_PIN_INITIALIZED  # user access disabled until C_InitPIN
    s = token.open(0)
    assert token.find(s, DATA_CLASS) == []
    with raises_ckr(spec.CKR_USER_PIN_NOT_INITIALIZED):
        token.login(s, USER_PIN)
    token.login(s, SO_PIN, user=CKU_SO)
    assert token.find(s, DATA_CLASS) == []
    assert text(token.token_info(0).serialNumber) != b"" and serial


def test_reinit_with_wrong_so_pin(token):
    s = token.open(0)
    token.login(s, USER_PIN)
    token.create(s, DATA)
    token.close(s)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.init_token(0, b"87654321", "x")
    s = token.open(0)
    token.login(s, USER_PIN)
    assert len(token.find(s, DATA_CLASS)) == 1  # a new handle: private handles die with C_Logout
    assert text(token.token_info(0).label).rstrip() == b"test"


def test_init_token_with_session_open(token):
    s = token.open(0, rw=False)
    with raises_ckr(spec.CKR_SESSION_EXISTS):
        token.init_token(0, SO_PIN, "x")
    token.close(s)
    token.init_token(0, SO_PIN, "x")


def test_init_token_null_label_and_bad_slot(p11):
    with raises_ckr(spec.CKR_ARGUMENTS_BAD):
        p11.check("C_InitToken", 0, SO_PIN, len(SO_PIN), ffi.NULL)
    with raises_ckr(spec.CKR_SLOT_ID_INVALID):
        p11.init_token(77, SO_PIN)
    with raises_ckr(spec.CKR_ARGUMENTS_BAD):
        p11.check("C_InitToken", 0, ffi.NULL, 8, b" " * 32)


def test_pin_length_bounds_reported_and_enforced(p11, shim_conf):
    reconfigure(p11, shim_conf, "min_pin_len = 6\nmax_pin_len = 10")
    info = p11.token_info(0)
    assert (info.ulMinPinLen, info.ulMaxPinLen) == (6, 10)
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.init_token(0, b"12345")
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.init_token(0, b"12345678901")
    p11.init_token(0, b"123456")
    s = p11.open(0)
    p11.login(s, b"123456", user=CKU_SO)
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.init_pin(s, b"1234")
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.init_pin(s, b"x" * 11)
    p11.init_pin(s, b"abcdef")
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.set_pin(s, b"123456", b"12")
    p11.logout(s)
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        p11.set_pin(s, b"abcdef", b"y" * 11)
    p11.set_pin(s, b"abcdef", b"abcdefg")
    p11.login(s, b"abcdefg")


def test_default_pin_length_bounds(p11):
    info = p11.token_info(0)
    assert 1 <= info.ulMinPinLen <= len(USER_PIN) and info.ulMaxPinLen >= len(SO_PIN)


# ----------------------------------------------------------------------------- C_InitPIN


def test_init_pin_needs_so(token):
    s = token.open(0)
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.init_pin(s, b"5678")
    token.login(s, USER_PIN)
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.init_pin(s, b"5678")
    token.logout(s)
    token.login(s, SO_PIN, user=CKU_SO)
    token.init_pin(s, b"5678")
    token.logout(s)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, USER_PIN)
    token.login(s, b"5678")


def test_init_pin_sets_user_pin_initialized(p11):
    p11.init_token(0, SO_PIN)
    assert not flags(p11) & spec.CKF_USER_PIN_INITIALIZED
    s = p11.open(0)
    p11.login(s, SO_PIN, user=CKU_SO)
    p11.init_pin(s, USER_PIN)
    assert flags(p11) & spec.CKF_USER_PIN_INITIALIZED


def test_init_pin_keeps_objects_readable(token, user_session):
    """The new user PIN unlocks the same token key: sealed values still decrypt."""
    h = token.create(user_session, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                                    spec.CKA_TOKEN: True, spec.CKA_SENSITIVE: False, spec.CKA_EXTRACTABLE: True,
                                    spec.CKA_VALUE: bytes(range(16))})
    token.close(user_session)
    s = token.open(0)
    token.login(s, SO_PIN, user=CKU_SO)
    token.init_pin(s, b"9999")
    token.logout(s)
    token.login(s, b"9999")
    (h,) = token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY})
    assert token.get(s, h, spec.CKA_VALUE) == bytes(range(16))


# ----------------------------------------------------------------------------- C_SetPIN


def test_set_pin_user_logged_in(token, user_session):
    token.set_pin(user_session, USER_PIN, b"4321")
    token.logout(user_session)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(user_session, USER_PIN)
    token.login(user_session, b"4321")


def test_set_pin_so_logged_in_changes_so_pin(token):
    s = token.open(0)
    token.login(s, SO_PIN, user=CKU_SO)
    token.set_pin(s, SO_PIN, b"abcdefgh")
    token.logout(s)
    token.login(s, USER_PIN)  # the user PIN is untouched
    token.logout(s)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, SO_PIN, user=CKU_SO)
    token.login(s, b"abcdefgh", user=CKU_SO)


def test_set_pin_public_rw_session_changes_user_pin(token):
    s = token.open(0)
    token.set_pin(s, USER_PIN, b"7777")
    token.login(s, b"7777")


def test_set_pin_read_only_session(token):
    s = token.open(0, rw=False)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.set_pin(s, USER_PIN, b"7777")
    token.login(s, USER_PIN)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.set_pin(s, USER_PIN, b"7777")


def test_set_pin_wrong_old_pin(token, user_session):
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.set_pin(user_session, b"0000", b"7777")
    token.logout(user_session)
    token.login(user_session, USER_PIN)


def test_set_pin_data_survives(token, user_session):
    h = token.create(user_session, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                                    spec.CKA_TOKEN: True, spec.CKA_SENSITIVE: False, spec.CKA_EXTRACTABLE: True,
                                    spec.CKA_VALUE: b"k" * 32})
    token_unique_id = token.get(user_session, h, spec.CKA_UNIQUE_ID)
    token.set_pin(user_session, USER_PIN, b"2468")
    token.finalize()
    token.initialize()
    s = token.open(0)
    token.login(s, b"2468")
    (found,) = token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY})
    assert token.get(s, found, spec.CKA_VALUE) == b"k" * 32
    assert token.get(s, found, spec.CKA_UNIQUE_ID) == token_unique_id


# ----------------------------------------------------------------------------- failed logins


def test_default_limit_is_ten(token):
    s = token.open(0)
    for _ in range(9):
        with raises_ckr(spec.CKR_PIN_INCORRECT):
            token.login(s, b"0000")
    assert flags(token) & spec.CKF_USER_PIN_FINAL_TRY
    assert not flags(token) & spec.CKF_USER_PIN_LOCKED
    with raises_ckr(spec.CKR_PIN_LOCKED):
        token.login(s, b"0000")
    assert flags(token) & spec.CKF_USER_PIN_LOCKED


def test_user_pin_flags_through_to_lock(limited):
    t = limited
    s = t.open(0)
    assert flags(t) & USER_PIN_FLAGS == 0
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"0000")
    assert flags(t) & USER_PIN_FLAGS == spec.CKF_USER_PIN_COUNT_LOW
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"0000")
    assert flags(t) & USER_PIN_FLAGS == spec.CKF_USER_PIN_COUNT_LOW | spec.CKF_USER_PIN_FINAL_TRY
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, b"0000")
    assert flags(t) & USER_PIN_FLAGS == spec.CKF_USER_PIN_LOCKED
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, USER_PIN)  # even the right PIN
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.set_pin(s, USER_PIN, b"5555")
    assert flags(t) & SO_PIN_FLAGS == 0  # the SO is not affected


def test_counter_persists_across_finalize(limited, shim_conf):
    t = limited
    s = t.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"0000")
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"0000")
    t.finalize()
    t.initialize()
    assert flags(t) & spec.CKF_USER_PIN_FINAL_TRY
    s = t.open(0)
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, b"0000")
    t.finalize()
    t.initialize()
    assert flags(t) & spec.CKF_USER_PIN_LOCKED
    s = t.open(0)
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, USER_PIN)


def test_success_resets_counter(limited):
    t = limited
    s = t.open(0)
    for _ in range(2):
        with raises_ckr(spec.CKR_PIN_INCORRECT):
            t.login(s, b"0000")
    t.login(s, USER_PIN)
    assert flags(t) & USER_PIN_FLAGS == 0
    t.logout(s)
    for _ in range(2):  # a full fresh budget again
        with raises_ckr(spec.CKR_PIN_INCORRECT):
            t.login(s, b"0000")
    t.login(s, USER_PIN)


def test_so_init_pin_unlocks_user(limited):
    t = limited
    s = t.open(0)
    for _ in range(2):
        with raises_ckr(spec.CKR_PIN_INCORRECT):
            t.login(s, b"0000")
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, b"0000")
    t.login(s, SO_PIN, user=CKU_SO)
    t.init_pin(s, b"1111")
    assert flags(t) & USER_PIN_FLAGS == 0
    t.logout(s)
    t.login(s, b"1111")


def test_so_pin_flags_and_lock(limited):
    t = limited
    s = t.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"00000000", user=CKU_SO)
    assert flags(t) & SO_PIN_FLAGS == spec.CKF_SO_PIN_COUNT_LOW
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.login(s, b"00000000", user=CKU_SO)
    assert flags(t) & SO_PIN_FLAGS == spec.CKF_SO_PIN_COUNT_LOW | spec.CKF_SO_PIN_FINAL_TRY
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, b"00000000", user=CKU_SO)
    assert flags(t) & SO_PIN_FLAGS == spec.CKF_SO_PIN_LOCKED
    with raises_ckr(spec.CKR_PIN_LOCKED):
        t.login(s, SO_PIN, user=CKU_SO)
    assert flags(t) & USER_PIN_FLAGS == 0
    t.login(s, USER_PIN)  # the user still can


def test_wrong_so_pin_in_init_token_counts(limited):
    t = limited
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        t.init_token(0, b"00000000")
    assert flags(t) & spec.CKF_SO_PIN_COUNT_LOW


# ----------------------------------------------------------------------------- flags


def test_token_flags_truthful(p11):
    f = flags(p11)
    assert f & spec.CKF_RNG
    assert not f & (spec.CKF_TOKEN_INITIALIZED | spec.CKF_USER_PIN_INITIALIZED)
    p11.init_token(0, SO_PIN)
    f = flags(p11)
    assert f & spec.CKF_TOKEN_INITIALIZED and f & spec.CKF_LOGIN_REQUIRED and f & spec.CKF_RNG
    assert not f & spec.CKF_USER_PIN_INITIALIZED
    assert not f & (USER_PIN_FLAGS | SO_PIN_FLAGS | spec.CKF_WRITE_PROTECTED)


def test_rng_flag_backed_by_generate_random(token):
    s = token.open(0)
    buf = ffi.new("unsigned char[]", 32)
    token.check("C_GenerateRandom", s, buf, 32)
    assert bytes(buf) != bytes(32)


def test_session_counts_in_token_info(token):
    a = token.open(0)
    b = token.open(0, rw=False)
    info = token.token_info(0)
    assert (info.ulSessionCount, info.ulRwSessionCount) == (2, 1)
    token.close(a)
    token.close(b)
    info = token.token_info(0)
    assert (info.ulSessionCount, info.ulRwSessionCount) == (0, 0)


def test_uninitialized_token_refuses_sessions(p11):
    h = ffi.new("CK_SESSION_HANDLE *")
    rv = p11.call("C_OpenSession", 0, spec.CKF_SERIAL_SESSION, ffi.NULL, ffi.NULL, h)
    assert rv == spec.CKR_TOKEN_NOT_RECOGNIZED
