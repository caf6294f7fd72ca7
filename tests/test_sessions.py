"""Session management through the built library (PKCS#11 3.0 §5.6): open/close, the five
session states, login rules shared by all sessions of a token, and concurrent use."""

from __future__ import annotations

import sys
import threading

import pytest

from cryptoki_shim import spec
from p11 import P11, ffi, raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them

CKU_SO, CKU_USER = int(spec.CKU_SO), int(spec.CKU_USER)
SERIAL, RW = int(spec.CKF_SERIAL_SESSION), int(spec.CKF_RW_SESSION)


def state(p11: P11, s: int) -> int:
    return int(p11.session_info(s).state)


def open_raw(p11: P11, slot: int, flags: int) -> int:
    h = ffi.new("CK_SESSION_HANDLE *")
    rv = p11.call("C_OpenSession", slot, flags, ffi.NULL, ffi.NULL, h)
    return rv if rv else -int(h[0])


# ----------------------------------------------------------------------------- opening


def test_open_without_serial_flag(token):
    assert open_raw(token, 0, RW) == spec.CKR_SESSION_PARALLEL_NOT_SUPPORTED
    assert open_raw(token, 0, 0) == spec.CKR_SESSION_PARALLEL_NOT_SUPPORTED


def test_open_bad_arguments(token):
    assert token.call("C_OpenSession", 0, SERIAL, ffi.NULL, ffi.NULL, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    assert open_raw(token, 9, SERIAL) == spec.CKR_SLOT_ID_INVALID


def test_ro_and_rw_session_info(token):
    ro, rw = token.open(0, rw=False), token.open(0)
    info = token.session_info(ro)
    assert (info.slotID, info.state, info.flags, info.ulDeviceError) == (0, spec.CKS_RO_PUBLIC_SESSION, SERIAL, 0)
    info = token.session_info(rw)
    assert (info.state, info.flags) == (spec.CKS_RW_PUBLIC_SESSION, SERIAL | RW)


def test_session_info_all_five_states(token):
    ro, rw = token.open(0, rw=False), token.open(0)
    assert (state(token, ro), state(token, rw)) == (spec.CKS_RO_PUBLIC_SESSION, spec.CKS_RW_PUBLIC_SESSION)
    token.login(ro, USER_PIN)
    assert (state(token, ro), state(token, rw)) == (spec.CKS_RO_USER_FUNCTIONS, spec.CKS_RW_USER_FUNCTIONS)
    token.logout(rw)
    token.close(ro)
    token.login(rw, SO_PIN, user=CKU_SO)
    assert state(token, rw) == spec.CKS_RW_SO_FUNCTIONS


def test_session_info_null_pointer(token):
    s = token.open(0)
    assert token.call("C_GetSessionInfo", s, ffi.NULL) == spec.CKR_ARGUMENTS_BAD


def test_ro_session_while_so_logged_in(token):
    s = token.open(0)
    token.login(s, SO_PIN, user=CKU_SO)
    assert open_raw(token, 0, SERIAL) == spec.CKR_SESSION_READ_WRITE_SO_EXISTS
    other = token.open(0)  # a RW one is fine, and is in the SO state too
    assert state(token, other) == spec.CKS_RW_SO_FUNCTIONS


def test_so_login_while_ro_session_exists(token):
    ro = token.open(0, rw=False)
    rw = token.open(0)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY_EXISTS):
        token.login(rw, SO_PIN, user=CKU_SO)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY_EXISTS):
        token.login(ro, SO_PIN, user=CKU_SO)
    token.close(ro)
    token.login(rw, SO_PIN, user=CKU_SO)


# ----------------------------------------------------------------------------- login


def test_login_errors(token):
    s = token.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, b"0000")
    with raises_ckr(spec.CKR_USER_TYPE_INVALID):
        token.login(s, USER_PIN, user=7)
    token.login(s, USER_PIN)
    with raises_ckr(spec.CKR_USER_ALREADY_LOGGED_IN):
        token.login(s, USER_PIN)
    with raises_ckr(spec.CKR_USER_ANOTHER_ALREADY_LOGGED_IN):
        token.login(s, SO_PIN, user=CKU_SO)
    token.logout(s)
    token.login(s, SO_PIN, user=CKU_SO)
    with raises_ckr(spec.CKR_USER_ALREADY_LOGGED_IN):
        token.login(s, SO_PIN, user=CKU_SO)
    with raises_ckr(spec.CKR_USER_ANOTHER_ALREADY_LOGGED_IN):
        token.login(s, USER_PIN)


def test_login_user_pin_not_initialized(p11):
    p11.init_token(0, SO_PIN)
    s = p11.open(0)
    with raises_ckr(spec.CKR_USER_PIN_NOT_INITIALIZED):
        p11.login(s, USER_PIN)


def test_login_null_pin_with_length(token):
    s = token.open(0)
    assert token.call("C_Login", s, CKU_USER, ffi.NULL, 4) == spec.CKR_ARGUMENTS_BAD


def test_context_specific_without_operation(token, user_session):
    with raises_ckr(spec.CKR_OPERATION_NOT_INITIALIZED):
        token.login(user_session, USER_PIN, user=spec.CKU_CONTEXT_SPECIFIC)


def test_logout_when_nobody_is_logged_in(token):
    s = token.open(0)
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.logout(s)
    token.login(s, USER_PIN)
    token.logout(s)
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.logout(s)


def test_login_state_shared_by_all_sessions(token):
    a, b = token.open(0), token.open(0, rw=False)
    token.login(a, USER_PIN)
    assert state(token, b) == spec.CKS_RO_USER_FUNCTIONS
    c = token.open(0)  # a session opened later is logged in too
    assert state(token, c) == spec.CKS_RW_USER_FUNCTIONS
    with raises_ckr(spec.CKR_USER_ALREADY_LOGGED_IN):
        token.login(b, USER_PIN)
    token.logout(c)
    assert {state(token, x) for x in (a, b)} == {spec.CKS_RW_PUBLIC_SESSION, spec.CKS_RO_PUBLIC_SESSION}


def test_closing_last_session_logs_out(token):
    a, b = token.open(0), token.open(0)
    token.login(a, USER_PIN)
    token.close(a)
    assert state(token, b) == spec.CKS_RW_USER_FUNCTIONS  # still one session open
    token.close(b)
    c = token.open(0)
    assert state(token, c) == spec.CKS_RW_PUBLIC_SESSION
    token.login(c, USER_PIN)


def test_close_all_sessions(token):
    a, b = token.open(0), token.open(0, rw=False)
    token.login(a, USER_PIN)
    token.check("C_CloseAllSessions", 0)
    for s in (a, b):
        with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
            token.session_info(s)
    assert token.token_info(0).ulSessionCount == 0
    c = token.open(0)
    assert state(token, c) == spec.CKS_RW_PUBLIC_SESSION
    assert token.call("C_CloseAllSessions", 5) == spec.CKR_SLOT_ID_INVALID


def test_invalid_session_handles(token):
    for h in (0, 12345, 2**63):
        assert token.call("C_GetSessionInfo", h, ffi.new("CK_SESSION_INFO *")) == spec.CKR_SESSION_HANDLE_INVALID
        assert token.call("C_CloseSession", h) == spec.CKR_SESSION_HANDLE_INVALID
        assert token.call("C_Login", h, CKU_USER, USER_PIN, 4) == spec.CKR_SESSION_HANDLE_INVALID
        assert token.call("C_Logout", h) == spec.CKR_SESSION_HANDLE_INVALID
    s = token.open(0)
    token.close(s)
    with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
        token.close(s)
    with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
        token.find(s)


def test_session_handles_never_reused(token):
    seen = set()
    for _ in range(50):
        s = token.open(0)
        assert s != 0 and s not in seen
        seen.add(s)
        token.close(s)
    token.check("C_CloseAllSessions", 0)
    s = token.open(0)
    assert s not in seen


def test_session_calls_before_initialize(token):
    s = token.open(0)
    token.finalize()
    assert token.call("C_GetSessionInfo", s, ffi.new("CK_SESSION_INFO *")) == spec.CKR_CRYPTOKI_NOT_INITIALIZED
    token.initialize()
    assert token.call("C_GetSessionInfo", s, ffi.new("CK_SESSION_INFO *")) == spec.CKR_SESSION_HANDLE_INVALID


# ----------------------------------------------------------------------------- threads


def test_threads_create_find_destroy(token):
    """4 threads, each with its own sessions, create/find/destroy objects concurrently."""
    s0 = token.open(0)
    token.login(s0, USER_PIN)
    errors: list[BaseException] = []
    rounds = 15

    def work(n: int) -> None:
        try:
            s = token.open(0)
            for i in range(rounds):
                label = f"t{n}-{i}".encode()
                h_tok = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True,
                                         spec.CKA_PRIVATE: True, spec.CKA_LABEL: label, spec.CKA_VALUE: label})
                h_ses = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_LABEL: label + b"s"})
                assert token.find(s, {spec.CKA_LABEL: label}) == [h_tok]
                assert token.find(s, {spec.CKA_LABEL: label + b"s"}) == [h_ses]
                assert token.get(s, h_tok, spec.CKA_VALUE) == label
                if i % 2:
                    token.destroy(s, h_tok)
                    assert token.find(s, {spec.CKA_LABEL: label}) == []
                token.destroy(s, h_ses)
            token.close(s)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "threads did not finish in time"
    assert not errors, errors
    found = token.find(s0, {spec.CKA_CLASS: spec.CKO_DATA})
    assert len(found) == len(set(found)) == 4 * (rounds // 2 + rounds % 2)
    labels = sorted(token.get(s0, h, spec.CKA_LABEL) for h in found)
    assert labels == sorted(f"t{n}-{i}".encode() for n in range(4) for i in range(0, rounds, 2))


@pytest.fixture
def fast_switching():
    """Make the interpreter (ours and the library's: one process) switch threads very often."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def test_threads_search_while_others_create(token, fast_switching):
    """A search must not fail while other threads add and remove objects (a search used to
    iterate the live dicts: CKR_GENERAL_ERROR "dictionary changed size during iteration")."""
    s0 = token.open(0)
    token.login(s0, USER_PIN)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            s = token.open(0)
            for i in range(150):
                h = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_LABEL: b"x%d" % n})
                token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})
                if i % 3 == 0:
                    token.destroy(s, h)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "threads did not finish in time"
    assert not errors, errors
    assert len(token.find(s0, {spec.CKA_CLASS: spec.CKO_DATA}, batch=1024)) == 4 * 100
