"""Sessions opened and closed in C (native/sessions.c, issue 22 goal 3) keep every rule of
the Python sessions (core/module.py): the session counts of CK_TOKEN_INFO, the SO login
refused while a R/O session exists, C_InitToken refused while any exists, the logout by the
application's last session, session objects dropped on close, C_CloseAllSessions,
C_Finalize and fork. C answers only after Python opened a session on the slot itself; its
sessions have even handles (Python's are odd), which is how these tests know that the path
under test is the C one (``_c_session``)."""

from __future__ import annotations

import os
import threading

import pytest

from p11 import SO_PIN, USER_PIN, P11, ffi, raises_ckr
from cryptoki_shim import spec

SERIAL, RW = spec.CKF_SERIAL_SESSION, spec.CKF_RW_SESSION
_DATA = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: False, spec.CKA_VALUE: b"session object"}


def _c_session(p11: P11, rw: bool = True) -> int:
    """A session C_OpenSession answered in C (an even handle), Python having opened one first."""
    h = p11.open(0, rw)
    assert h % 2 == 0, f"session {h} was opened by Python, not by native/sessions.c"
    return h


@pytest.fixture
def py_session(token: P11) -> int:
    """A public R/W session that Python opened (the one that lets C open on slot 0)."""
    s = token.open(0)
    assert s % 2 == 1
    return s


def _counts(p11: P11) -> tuple[int, int]:
    info = p11.token_info(0)
    return info.ulSessionCount, info.ulRwSessionCount


def test_c_sessions_are_counted_in_the_token_info(token: P11, py_session: int) -> None:
    rw = [_c_session(token) for _ in range(3)]
    ro = [_c_session(token, rw=False) for _ in range(2)]
    assert _counts(token) == (6, 4)
    token.close(rw[0])
    token.close(ro[0])
    assert _counts(token) == (4, 3)
    more = _c_session(token, rw=False)  # opened in C again after the counts were taken
    assert _counts(token) == (5, 3)
    for h in (rw[1], rw[2], ro[1], more):
        token.close(h)
    assert _counts(token) == (1, 1)


def test_a_c_session_answers_every_session_call(token: P11, py_session: int) -> None:
    ro = _c_session(token, rw=False)
    info = token.session_info(ro)
    assert (info.slotID, info.state, info.flags) == (0, spec.CKS_RO_PUBLIC_SESSION, SERIAL)
    rw = _c_session(token)
    assert token.session_info(rw).state == spec.CKS_RW_PUBLIC_SESSION
    token.login(rw, USER_PIN)  # a login through a session C opened
    assert token.session_info(ro).state == spec.CKS_RO_USER_FUNCTIONS
    token.close(ro)
    token.close(rw)
    with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
        token.session_info(rw)


def test_so_login_refused_while_a_c_session_is_read_only(token: P11, py_session: int) -> None:
    ro = _c_session(token, rw=False)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY_EXISTS):
        token.login(py_session, SO_PIN, user=spec.CKU_SO)
    token.close(ro)
    assert token.open(0) % 2 == 1  # the SO login attempt stopped C opening until Python opens again
    rw = _c_session(token)
    token.login(rw, SO_PIN, user=spec.CKU_SO)
    # The SO is logged in: no R/O session may be opened, by C or by Python.
    h = ffi.new("CK_SESSION_HANDLE *")
    assert token.call("C_OpenSession", 0, SERIAL, ffi.NULL, ffi.NULL, h) == spec.CKR_SESSION_READ_WRITE_SO_EXISTS
    so_rw = token.open(0)
    assert token.session_info(so_rw).state == spec.CKS_RW_SO_FUNCTIONS
    token.logout(rw)
    ro_after = token.open(0, rw=False)  # Python's (C stopped opening at the SO login) ...
    assert token.session_info(ro_after).state == spec.CKS_RO_PUBLIC_SESSION
    assert token.session_info(_c_session(token, rw=False)).state == spec.CKS_RO_PUBLIC_SESSION  # ... then C again


def test_init_token_refused_while_a_c_session_exists(token: P11, py_session: int) -> None:
    c = _c_session(token, rw=False)
    token.close(py_session)  # only the C session is left
    with raises_ckr(spec.CKR_SESSION_EXISTS):
        token.init_token(0, SO_PIN)
    token.close(c)
    token.init_token(0, SO_PIN)


@pytest.mark.parametrize("python_first", [True, False])
def test_the_last_session_logs_out_whichever_closes_last(token: P11, py_session: int, python_first: bool) -> None:
    token.login(py_session, USER_PIN)
    c = _c_session(token)
    assert token.session_info(c).state == spec.CKS_RW_USER_FUNCTIONS
    first, last = (py_session, c) if python_first else (c, py_session)
    token.close(first)
    probe = _c_session(token, rw=False) if python_first else None
    if probe is not None:  # still logged in: another session is open
        assert token.session_info(probe).state == spec.CKS_RO_USER_FUNCTIONS
        token.close(probe)
    else:
        assert token.session_info(last).state == spec.CKS_RW_USER_FUNCTIONS
    token.close(last)
    assert _counts(token) == (0, 0)
    s = token.open(0)
    assert token.session_info(s).state == spec.CKS_RW_PUBLIC_SESSION  # the last close logged out


def test_the_last_c_session_closed_in_c_logs_out(token: P11, py_session: int) -> None:
    """Only C sessions left, the user logged in: the last one's close goes to Python."""
    token.login(py_session, USER_PIN)
    a, b = _c_session(token), _c_session(token, rw=False)
    token.close(py_session)
    token.close(a)
    assert token.session_info(b).state == spec.CKS_RO_USER_FUNCTIONS
    token.close(b)
    s = token.open(0)
    assert token.session_info(s).state == spec.CKS_RW_PUBLIC_SESSION


def test_session_objects_go_with_their_c_session(token: P11, py_session: int) -> None:
    c = _c_session(token)
    obj = token.create(c, _DATA)
    assert token.get(py_session, obj, spec.CKA_VALUE) == b"session object"
    token.close(c)
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(py_session, obj, spec.CKA_VALUE)


def test_close_all_sessions_ends_the_c_sessions(token: P11, py_session: int) -> None:
    token.login(py_session, USER_PIN)
    cs = [_c_session(token, rw=bool(i % 2)) for i in range(5)]
    token.check("C_CloseAllSessions", 0)
    assert _counts(token) == (0, 0)
    for h in cs + [py_session]:
        with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
            token.session_info(h)
        assert token.call("C_CloseSession", h) == spec.CKR_SESSION_HANDLE_INVALID
    s = token.open(0)
    assert token.session_info(s).state == spec.CKS_RW_PUBLIC_SESSION


def test_finalize_ends_the_c_sessions(token: P11, py_session: int) -> None:
    c = _c_session(token)
    token.finalize()
    assert token.call("C_CloseSession", c) == spec.CKR_CRYPTOKI_NOT_INITIALIZED
    h = ffi.new("CK_SESSION_HANDLE *")
    assert token.call("C_OpenSession", 0, SERIAL | RW, ffi.NULL, ffi.NULL, h) == spec.CKR_CRYPTOKI_NOT_INITIALIZED
    token.initialize()
    assert token.call("C_CloseSession", c) == spec.CKR_SESSION_HANDLE_INVALID
    assert _counts(token) == (0, 0)
    first = token.open(0)
    assert first % 2 == 1 and first != py_session  # Python opens first again; no handle is reused
    assert _c_session(token) > c


def test_bad_arguments_are_answered_by_python(token: P11, py_session: int) -> None:
    _c_session(token)  # C opens on slot 0 now
    h = ffi.new("CK_SESSION_HANDLE *")
    assert token.call("C_OpenSession", 0, SERIAL | RW, ffi.NULL, ffi.NULL, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_OpenSession", 0, RW, ffi.NULL, ffi.NULL, h) == spec.CKR_SESSION_PARALLEL_NOT_SUPPORTED
    assert token.call("C_OpenSession", 0, SERIAL | spec.CKF_ASYNC_SESSION, ffi.NULL, ffi.NULL, h) \
        == spec.CKR_SESSION_ASYNC_NOT_SUPPORTED
    assert token.call("C_OpenSession", 7, SERIAL | RW, ffi.NULL, ffi.NULL, h) == spec.CKR_SLOT_ID_INVALID
    c = _c_session(token)
    token.close(c)
    for bad in (c, c + 2_000_000, 0, c + 1_000_001):  # closed, never issued (even and odd), zero
        assert token.call("C_CloseSession", bad) == spec.CKR_SESSION_HANDLE_INVALID
        assert token.call("C_GetSessionInfo", bad, ffi.new("CK_SESSION_INFO *")) == spec.CKR_SESSION_HANDLE_INVALID


def _run(threads: list[threading.Thread], timeout: float = 120.0) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread hung"


def test_handles_stay_unique_and_close_from_other_threads(token: P11, py_session: int) -> None:
    n_threads, per = 4, 1500
    opened: list[list[int]] = [[] for _ in range(n_threads)]
    errors: list[str] = []

    def opener(i: int) -> None:
        h = ffi.new("CK_SESSION_HANDLE *")
        for k in range(per):
            rv = token.call("C_OpenSession", 0, SERIAL | (RW if k % 3 else 0), ffi.NULL, ffi.NULL, h)
            if rv != 0:
                errors.append(f"open {spec.ckr_name(rv)}")
                return
            opened[i].append(h[0])

    _run([threading.Thread(target=opener, args=(i,)) for i in range(n_threads)])
    assert not errors, errors
    every = [h for hs in opened for h in hs]
    assert len(set(every)) == len(every) == n_threads * per
    assert py_session not in every
    rw = sum(1 for hs in opened for k, _ in enumerate(hs) if k % 3)
    assert _counts(token) == (len(every) + 1, rw + 1)

    def closer(i: int) -> None:  # each thread closes the sessions another one opened
        for h in opened[(i + 1) % n_threads]:
            rv = token.call("C_CloseSession", h)
            if rv != 0:
                errors.append(f"close {h}: {spec.ckr_name(rv)}")

    _run([threading.Thread(target=closer, args=(i,)) for i in range(n_threads)])
    assert not errors, errors
    assert _counts(token) == (1, 1)


def test_close_all_sessions_during_open_close_churn(token: P11, py_session: int) -> None:
    """Three threads open and close, one closes all sessions again and again, the user logged
    in: every call answers OK or (a session ended by C_CloseAllSessions) SESSION_HANDLE_INVALID,
    no thread hangs, no handle repeats, and afterwards no session and no login is left."""
    token.login(py_session, USER_PIN)
    stop = threading.Event()
    errors: list[str] = []
    handles: list[list[int]] = [[] for _ in range(3)]
    ended = [0]

    def churn(i: int) -> None:
        h = ffi.new("CK_SESSION_HANDLE *")
        info = ffi.new("CK_SESSION_INFO *")
        while not stop.is_set():
            rv = token.call("C_OpenSession", 0, SERIAL | RW, ffi.NULL, ffi.NULL, h)
            if rv != 0:
                errors.append(f"open {spec.ckr_name(rv)}")
                return
            handles[i].append(h[0])
            if len(handles[i]) % 7 == 0:  # a Python call on some of them (claimed from C)
                rv = token.call("C_GetSessionInfo", h[0], info)
                if rv not in (0, spec.CKR_SESSION_HANDLE_INVALID):
                    errors.append(f"info {spec.ckr_name(rv)}")
            rv = token.call("C_CloseSession", h[0])
            if rv == spec.CKR_SESSION_HANDLE_INVALID:
                ended[0] += 1
            elif rv != 0:
                errors.append(f"close {spec.ckr_name(rv)}")

    def closer() -> None:
        for _ in range(60):
            rv = token.call("C_CloseAllSessions", 0)
            if rv != 0:
                errors.append(f"close all {spec.ckr_name(rv)}")
        stop.set()

    _run([threading.Thread(target=churn, args=(i,)) for i in range(3)] + [threading.Thread(target=closer)])
    assert not errors, errors
    every = [h for hs in handles for h in hs]
    assert len(set(every)) == len(every) > 0
    token.check("C_CloseAllSessions", 0)
    assert _counts(token) == (0, 0)
    s = token.open(0)
    assert token.session_info(s).state == spec.CKS_RW_PUBLIC_SESSION  # the close-all logged out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_has_no_c_session(token: P11, py_session: int) -> None:
    c = _c_session(token)
    pid = os.fork()
    if pid == 0:  # the child: not initialized, then a module of its own, without the parent's sessions
        code = 10
        try:
            code = 11 if token.call("C_CloseSession", c) != spec.CKR_CRYPTOKI_NOT_INITIALIZED else 12
            if code == 12:
                token.initialize()
                code = 13 if token.call("C_CloseSession", c) != spec.CKR_SESSION_HANDLE_INVALID else 14
            if code == 14:
                code = 15 if _counts(token) != (0, 0) else 0
            if code == 0:
                s = token.open(0)
                code = 16 if s % 2 != 1 or _counts(token) != (1, 1) else 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert token.session_info(c).state == spec.CKS_RW_PUBLIC_SESSION  # the parent's session is intact
    assert _counts(token) == (2, 2)


def _scenario(p11: P11) -> tuple[list[object], list[int]]:
    """A run of session calls; returns what every call answered (no handle values) and the
    handles opened."""
    seen: list[object] = []
    opened: list[int] = []
    h = ffi.new("CK_SESSION_HANDLE *")

    def open_(flags: int) -> int:
        rv = p11.call("C_OpenSession", 0, flags, ffi.NULL, ffi.NULL, h)
        seen.append(("open", flags, rv))
        if rv == 0:
            opened.append(h[0])
        return h[0] if rv == 0 else 0

    def state(s: int) -> None:
        info = ffi.new("CK_SESSION_INFO *")
        rv = p11.call("C_GetSessionInfo", s, info)
        seen.append(("state", rv, info.state if rv == 0 else None))

    p11.init_token(0, SO_PIN)
    first = open_(SERIAL | RW)
    p11.login(first, SO_PIN, user=spec.CKU_SO)
    p11.init_pin(first, USER_PIN)
    p11.close(first)
    a, b, ro = open_(SERIAL | RW), open_(SERIAL | RW), open_(SERIAL)
    seen.append(("counts", _counts(p11)))
    seen.append(("so login", p11.call("C_Login", a, spec.CKU_SO, SO_PIN, len(SO_PIN))))
    p11.login(b, USER_PIN)
    state(ro)
    for s in (a, b):
        seen.append(("close", p11.call("C_CloseSession", s)))
    state(ro)
    seen.append(("close last", p11.call("C_CloseSession", ro)))
    c = open_(SERIAL)
    state(c)  # the last close logged out
    seen.append(("bad flags", open_(RW), open_(SERIAL | spec.CKF_ASYNC_SESSION)))
    seen.append(("init token", p11.call("C_InitToken", 0, SO_PIN, len(SO_PIN), b"test".ljust(32))))
    for _ in range(3):
        open_(SERIAL | RW)
    seen.append(("counts", _counts(p11)))
    seen.append(("close all", p11.call("C_CloseAllSessions", 0)))
    seen.append(("counts", _counts(p11)))
    seen.append(("closed", p11.call("C_CloseSession", c)))
    return seen, opened


def test_native_sessions_false_answers_the_same(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[module] native_sessions = false: Python answers every call (odd handles only), and
    every answer of the same run is the same as with the C path."""
    from p11 import write_config

    runs = {}
    for on in (True, False):
        d = tmp_path / str(on)
        d.mkdir()
        extra = "" if on else "[module]\nnative_sessions = false\n"
        monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(d, extra=extra)))
        p11 = P11()
        p11.initialize()
        try:
            runs[on] = _scenario(p11)
        finally:
            p11.finalize()
    (seen_on, opened_on), (seen_off, opened_off) = runs[True], runs[False]
    assert seen_on == seen_off
    assert all(h % 2 == 1 for h in opened_off)
    assert sum(1 for h in opened_on if h % 2 == 0) >= 4  # C opened most of them when on
