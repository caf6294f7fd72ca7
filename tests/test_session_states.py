"""The session, login and operation rules of ``core/states.py``, through the built library:
every entry of the tables (each state x each event, from the ABI) and one test per rule of
the spec, named after it (PKCS#11 3.0 §5.6 session states and events, C_Login and
C_Logout, §5.2 / DESIGN §3 operations). test_states.py checks the tables themselves."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cryptoki_shim import spec
from cryptoki_shim.core import states as S
from cryptoki_shim.core.states import Refused
from p11 import P11, ffi, raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them
CKU_SO, CKU_USER, CKU_CONTEXT = int(spec.CKU_SO), int(spec.CKU_USER), int(spec.CKU_CONTEXT_SPECIFIC)
MSG = b"state tables" * 4


def state(p11: P11, s: int) -> int:
    return int(p11.session_info(s).state)


def enter(p11: P11, target: int) -> int:
    """A session of the application in session state ``target``."""
    rw = target in (S.RW_PUBLIC, S.RW_USER, S.RW_SO)
    s = p11.open(0, rw=rw)
    user = S.USER_OF[target]
    if user is not None:
        p11.login(s, SO_PIN if user == CKU_SO else USER_PIN, user=user)
    assert state(p11, s) == target
    return s


def mechanism(mech: int) -> Any:
    m = ffi.new("CK_MECHANISM *")
    m.mechanism, m.pParameter, m.ulParameterLen = mech, ffi.NULL, 0
    return m


def always_authenticate_sign(p11: P11, s: int) -> None:
    """A signature waiting for its context login (CKA_ALWAYS_AUTHENTICATE)."""
    ec_params = bytes.fromhex("06082a8648ce3d030107")  # P-256
    pub = {spec.CKA_TOKEN: False, spec.CKA_VERIFY: True, spec.CKA_EC_PARAMS: ec_params}
    priv = {spec.CKA_TOKEN: False, spec.CKA_SIGN: True, spec.CKA_ALWAYS_AUTHENTICATE: True}
    _hpub, hpriv = p11.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, pub, priv)
    p11.check("C_SignInit", s, mechanism(spec.CKM_ECDSA), hpriv)


def fire(p11: P11, s: int, event: str) -> int:
    if event == S.LOGIN_USER:
        return p11.call("C_Login", s, CKU_USER, USER_PIN, len(USER_PIN))
    if event == S.LOGIN_SO:
        return p11.call("C_Login", s, CKU_SO, SO_PIN, len(SO_PIN))
    if event == S.LOGOUT:
        return p11.call("C_Logout", s)
    # Only the normal user can start an operation on a private key, so in the other states no
    # operation can wait for a context login, and C_Login answers that first.
    if S.USER_OF[state(p11, s)] == CKU_USER:
        always_authenticate_sign(p11, s)
    return p11.call("C_Login", s, CKU_CONTEXT, USER_PIN, len(USER_PIN))


# ---------------------------------------------------------------------- the tables, entry by entry


@pytest.mark.parametrize("event", S.SESSION_EVENTS)
@pytest.mark.parametrize("start", S.SESSION_STATES, ids=lambda s: spec.CKS(s).name if hasattr(spec, "CKS") else str(s))
def test_session_table_entry(token: P11, start: int, event: str) -> None:
    s = enter(token, start)
    after = S.SESSION[start][event]
    rv = fire(token, s, event)
    if event == S.LOGIN_CONTEXT and S.USER_OF[start] != CKU_USER:
        assert after.__class__ is Refused and rv == spec.CKR_OPERATION_NOT_INITIALIZED  # see fire()
        assert state(token, s) == start
    elif after.__class__ is Refused:
        assert rv == after.ckr
        assert state(token, s) == start
    else:
        assert rv == spec.CKR_OK
        assert state(token, s) == after


@pytest.mark.parametrize("opened", list(S.OPENED), ids=lambda k: f"user{k[0]}-{'rw' if k[1] else 'ro'}")
def test_opened_table_entry(token: P11, opened: tuple) -> None:
    user, rw = opened
    first = token.open(0)
    if user is not None:
        token.login(first, SO_PIN if user == CKU_SO else USER_PIN, user=user)
    h = ffi.new("CK_SESSION_HANDLE *")
    flags = int(spec.CKF_SERIAL_SESSION) | (int(spec.CKF_RW_SESSION) if rw else 0)
    rv = token.call("C_OpenSession", 0, flags, ffi.NULL, ffi.NULL, h)
    after = S.OPENED[opened]
    if after.__class__ is Refused:
        assert rv == after.ckr
    else:
        assert rv == spec.CKR_OK and state(token, h[0]) == after


def aes_key(p11: P11, s: int) -> int:
    """A public session key: it outlives a logout, so every operation state can be probed."""
    return p11.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                          spec.CKA_VALUE: os.urandom(16), spec.CKA_TOKEN: False, spec.CKA_PRIVATE: False,
                          spec.CKA_ENCRYPT: True})


def encrypt_call(p11: P11, s: int, fn: str, data: bytes = b"x" * 16, room: int = 64) -> int:
    out = ffi.new("unsigned char[]", 64)
    n = ffi.new("CK_ULONG *", room)
    if fn == "C_EncryptFinal":
        return p11.call(fn, s, out, n)
    return p11.call(fn, s, data, len(data), out, n)


def enter_operation(p11: P11, s: int, key: int, target: str) -> None:
    if target != S.IDLE:
        p11.check("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
    if target == S.MULTIPART:
        assert encrypt_call(p11, s, "C_EncryptUpdate") == spec.CKR_OK


def fire_operation(p11: P11, s: int, key: int, event: str, start: str = "") -> int:
    """``event`` on the session's encryption (AES-ECB), from the ABI."""
    if event == S.INIT:
        return p11.call("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
    if event in (S.ONESHOT, S.UPDATE, S.FINAL):
        return encrypt_call(p11, s, {S.ONESHOT: "C_Encrypt", S.UPDATE: "C_EncryptUpdate", S.FINAL: "C_EncryptFinal"}[event])
    if event == S.TOO_SMALL:  # the step the operation would take next, into a 1-byte buffer: in READY
        # the probe's one-shot (the probe is its retry: any other step is refused, issue 23 item 8)
        rv = encrypt_call(p11, s, "C_Encrypt" if start == S.READY else "C_EncryptUpdate", room=1)
        return rv if rv != spec.CKR_BUFFER_TOO_SMALL else spec.CKR_OK
    if event == S.FAILED:  # ECB ending on 3 bytes: the update keeps them, the final fails
        rv = encrypt_call(p11, s, "C_EncryptUpdate", data=b"odd")
        if rv == spec.CKR_OK:
            rv = encrypt_call(p11, s, "C_EncryptFinal")
        return spec.CKR_OK if rv == spec.CKR_DATA_LEN_RANGE else rv
    if event == S.CANCEL:
        return p11.call("C_SessionCancel", s, spec.CKF_ENCRYPT)
    assert event == S.LOGOUT
    return p11.call("C_Logout", s)


def probe_operation(p11: P11, s: int) -> str:
    """The operation's state, read with a one-shot call: done in READY, refused (ACTIVE) in
    MULTIPART, refused (NOT_INITIALIZED) in IDLE."""
    rv = encrypt_call(p11, s, "C_Encrypt")
    return {spec.CKR_OK: S.READY, spec.CKR_OPERATION_ACTIVE: S.MULTIPART,
            spec.CKR_OPERATION_NOT_INITIALIZED: S.IDLE}[rv]


@pytest.mark.parametrize("event", S.OPERATION_EVENTS)
@pytest.mark.parametrize("start", S.OPERATION_STATES)
def test_operation_table_entry(token: P11, user_session: int, start: str, event: str) -> None:
    s = user_session
    key = aes_key(token, s)
    enter_operation(token, s, key, start)
    after = S.OPERATION[start][event]
    rv = fire_operation(token, s, key, event, start)
    if event in (S.TOO_SMALL, S.FAILED) and start == S.IDLE:
        assert rv == spec.CKR_OPERATION_NOT_INITIALIZED  # nothing to fail or to keep
    elif after.__class__ is Refused:
        assert rv == after.ckr
        after = after.then
    else:
        assert rv == spec.CKR_OK
    assert probe_operation(token, s) == after


# ---------------------------------------------------------------------- the rules, by name


def test_so_login_refused_with_ro_session_open(token: P11) -> None:
    ro, rw = token.open(0, rw=False), token.open(0)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY_EXISTS):
        token.login(rw, SO_PIN, user=CKU_SO)
    token.close(ro)
    token.login(rw, SO_PIN, user=CKU_SO)


def test_ro_session_refused_while_so_logged_in(token: P11) -> None:
    s = token.open(0)
    token.login(s, SO_PIN, user=CKU_SO)
    with raises_ckr(spec.CKR_SESSION_READ_WRITE_SO_EXISTS):
        token.open(0, rw=False)


def test_login_moves_every_session_of_the_application(token: P11) -> None:
    ro, rw = token.open(0, rw=False), token.open(0)
    token.login(ro, USER_PIN)
    assert (state(token, ro), state(token, rw)) == (S.RO_USER, S.RW_USER)
    token.logout(rw)
    assert (state(token, ro), state(token, rw)) == (S.RO_PUBLIC, S.RW_PUBLIC)


def test_closing_last_session_logs_out(token: P11) -> None:
    a, b = token.open(0), token.open(0)
    token.login(a, SO_PIN, user=CKU_SO)
    token.close(a)
    assert state(token, b) == S.RW_SO
    token.close(b)
    assert state(token, token.open(0, rw=False)) == S.RO_PUBLIC  # an R/O session may open again


def test_closing_all_sessions_logs_out(token: P11) -> None:
    s = token.open(0)
    token.login(s, USER_PIN)
    token.check("C_CloseAllSessions", 0)
    assert state(token, token.open(0)) == S.RW_PUBLIC


def test_logout_ends_every_operation_of_the_application(token: P11) -> None:
    a, b = token.open(0), token.open(0)
    token.login(a, USER_PIN)
    key = aes_key(token, a)
    for s in (a, b):
        token.check("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
        token.check("C_DigestInit", s, mechanism(spec.CKM_SHA256))
    token.logout(b)
    for s in (a, b):
        assert encrypt_call(token, s, "C_Encrypt") == spec.CKR_OPERATION_NOT_INITIALIZED
        assert token.call("C_DigestUpdate", s, MSG, len(MSG)) == spec.CKR_OPERATION_NOT_INITIALIZED


def test_operation_ended_by_error_but_not_by_buffer_too_small(token: P11, user_session: int) -> None:
    s = user_session
    key = aes_key(token, s)
    token.check("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
    assert encrypt_call(token, s, "C_Encrypt", room=1) == spec.CKR_BUFFER_TOO_SMALL
    assert encrypt_call(token, s, "C_Encrypt") == spec.CKR_OK  # kept, and now delivered
    token.check("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
    assert encrypt_call(token, s, "C_Encrypt", data=b"odd") == spec.CKR_DATA_LEN_RANGE
    assert encrypt_call(token, s, "C_Encrypt") == spec.CKR_OPERATION_NOT_INITIALIZED  # ended


def test_one_shot_after_multi_part_refused_and_ends_the_operation(token: P11, user_session: int) -> None:
    s = user_session
    token.check("C_DigestInit", s, mechanism(spec.CKM_SHA256))
    token.check("C_DigestUpdate", s, MSG, len(MSG))
    out, n = ffi.new("unsigned char[]", 32), ffi.new("CK_ULONG *", 32)
    assert token.call("C_Digest", s, MSG, len(MSG), out, n) == spec.CKR_OPERATION_ACTIVE
    assert token.call("C_DigestFinal", s, out, n) == spec.CKR_OPERATION_NOT_INITIALIZED


def test_init_while_active_refused_and_keeps_the_operation(token: P11, user_session: int) -> None:
    s = user_session
    token.check("C_DigestInit", s, mechanism(spec.CKM_SHA256))
    assert token.call("C_DigestInit", s, mechanism(spec.CKM_SHA256)) == spec.CKR_OPERATION_ACTIVE
    token.check("C_FindObjectsInit", s, ffi.NULL, 0)
    assert token.call("C_FindObjectsInit", s, ffi.NULL, 0) == spec.CKR_OPERATION_ACTIVE
    out, n = ffi.new("unsigned char[]", 32), ffi.new("CK_ULONG *", 32)
    token.check("C_Digest", s, MSG, len(MSG), out, n)
    token.check("C_FindObjectsFinal", s)


@pytest.mark.parametrize("kind", ["sign", "verify", "encrypt", "decrypt", "digest", "find"])
def test_step_without_init_is_operation_not_initialized(token: P11, user_session: int, kind: str) -> None:
    s = user_session
    buf, n, count = ffi.new("unsigned char[]", 64), ffi.new("CK_ULONG *", 64), ffi.new("CK_ULONG *")
    handles = ffi.new("CK_OBJECT_HANDLE[]", 4)
    calls = {
        "sign": [("C_Sign", s, MSG, len(MSG), buf, n), ("C_SignUpdate", s, MSG, len(MSG)), ("C_SignFinal", s, buf, n)],
        "verify": [("C_Verify", s, MSG, len(MSG), MSG, len(MSG)), ("C_VerifyUpdate", s, MSG, len(MSG)),
                   ("C_VerifyFinal", s, MSG, len(MSG))],
        "encrypt": [("C_Encrypt", s, MSG, len(MSG), buf, n), ("C_EncryptUpdate", s, MSG, len(MSG), buf, n),
                    ("C_EncryptFinal", s, buf, n)],
        "decrypt": [("C_Decrypt", s, MSG, len(MSG), buf, n), ("C_DecryptUpdate", s, MSG, len(MSG), buf, n),
                    ("C_DecryptFinal", s, buf, n)],
        "digest": [("C_Digest", s, MSG, len(MSG), buf, n), ("C_DigestUpdate", s, MSG, len(MSG)),
                   ("C_DigestFinal", s, buf, n)],
        "find": [("C_FindObjects", s, handles, 4, count), ("C_FindObjectsFinal", s)],
    }[kind]
    assert len(calls) == len(S.KINDS[kind][1])  # one call per step the kind takes
    for fn, *args in calls:
        n[0] = 64
        assert token.call(fn, *args) == spec.CKR_OPERATION_NOT_INITIALIZED, fn


def test_search_ended_by_find_objects_final(token: P11, user_session: int) -> None:
    s = user_session
    token.check("C_FindObjectsInit", s, ffi.NULL, 0)
    handles, count = ffi.new("CK_OBJECT_HANDLE[]", 4), ffi.new("CK_ULONG *")
    token.check("C_FindObjects", s, handles, 4, count)
    token.check("C_FindObjects", s, handles, 4, count)  # a search continues until its final
    token.check("C_FindObjectsFinal", s)
    assert token.call("C_FindObjects", s, handles, 4, count) == spec.CKR_OPERATION_NOT_INITIALIZED


def test_cancel_ends_only_the_named_operations(token: P11, user_session: int) -> None:
    s = user_session
    key = aes_key(token, s)
    token.check("C_EncryptInit", s, mechanism(spec.CKM_AES_ECB), key)
    token.check("C_DigestInit", s, mechanism(spec.CKM_SHA256))
    token.check("C_FindObjectsInit", s, ffi.NULL, 0)
    token.check("C_SessionCancel", s, spec.CKF_ENCRYPT | spec.CKF_FIND_OBJECTS)
    assert encrypt_call(token, s, "C_Encrypt") == spec.CKR_OPERATION_NOT_INITIALIZED
    assert token.call("C_FindObjectsFinal", s) == spec.CKR_OPERATION_NOT_INITIALIZED
    token.check("C_DigestUpdate", s, MSG, len(MSG))  # not named: still active
    token.check("C_DigestInit", s, ffi.NULL)  # a NULL mechanism cancels too (3.0)
    assert token.call("C_DigestUpdate", s, MSG, len(MSG)) == spec.CKR_OPERATION_NOT_INITIALIZED


def test_private_objects_invisible_after_logout(token: P11, user_session: int) -> None:
    """§4.4.1: one rule for searches and for handle lookups (``Token.visible``)."""
    s = user_session
    private = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: True,
                               spec.CKA_LABEL: b"g2-private", spec.CKA_VALUE: b"v"})
    public = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
                              spec.CKA_LABEL: b"g2-public", spec.CKA_VALUE: b"v"})
    assert set(token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})) >= {private, public}
    token.logout(s)
    found = token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})
    assert public in found and private not in found
    assert not [h for h in found if token.get(s, h, spec.CKA_LABEL) == b"g2-private"]
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(s, private, spec.CKA_LABEL)
    token.login(s, USER_PIN)
    assert [h for h in token.find(s, {spec.CKA_LABEL: b"g2-private"})]
