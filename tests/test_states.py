"""The state tables of ``cryptoki_shim.core.states`` are complete and say what the code
assumes of them (pure Python, no library: the rules themselves are tested through the
``.so`` in test_session_states.py)."""

from __future__ import annotations

import pytest

from cryptoki_shim import spec
from cryptoki_shim.core import states as S
from cryptoki_shim.core.states import IllegalMove, Refused

CKR_NAMES = {int(m) for m in spec.CKR}


@pytest.mark.parametrize(("table", "rows", "events"), [
    (S.SESSION, S.SESSION_STATES, S.SESSION_EVENTS),
    (S.OPERATION, S.OPERATION_STATES, S.OPERATION_EVENTS),
], ids=["session", "operation"])
def test_every_state_has_an_entry_for_every_event(table, rows, events) -> None:
    assert set(table) == set(rows)
    for state in rows:
        assert set(table[state]) == set(events), state
        for event, after in table[state].items():
            if after.__class__ is Refused:
                assert after.ckr in CKR_NAMES and after.then in rows, (state, event, after)
            else:
                assert after in rows, (state, event, after)


def test_every_session_kind_and_login_user_opens_or_is_refused() -> None:
    assert set(S.OPENED) == {(user, rw) for user in (None, S.CKU_USER, S.CKU_SO) for rw in (False, True)}
    opened = {after for after in S.OPENED.values() if after.__class__ is not Refused}
    assert opened == set(S.SESSION_STATES)  # every state is reachable by opening a session
    for (user, rw), after in S.OPENED.items():
        if after.__class__ is not Refused:
            assert S.USER_OF[after] == user and S.state_of(user, rw) == after


def test_session_moves_keep_read_only_or_read_write_and_follow_the_login_user() -> None:
    rw_states = {S.RW_PUBLIC, S.RW_USER, S.RW_SO}
    after_user = {S.LOGIN_USER: S.CKU_USER, S.LOGIN_SO: S.CKU_SO, S.LOGOUT: None}
    for state, row in S.SESSION.items():
        for event, after in row.items():
            if after.__class__ is Refused:
                assert after.then == state  # a refused login or logout changes nothing
                continue
            assert (after in rw_states) == (state in rw_states)
            expected_user = after_user.get(event, S.USER_OF[state])  # a context login changes no one
            assert S.USER_OF[after] == expected_user, (state, event)


def test_an_operation_in_ready_state_takes_every_step() -> None:
    """``SessionState.produce`` skips the table for a READY operation (the hot path): that is
    only right while READY allows every step."""
    for step in (S.ONESHOT, S.UPDATE, S.FINAL):
        assert S.OPERATION[S.READY][step].__class__ is not Refused


def test_init_refused_in_every_active_state() -> None:
    """The C_*Init methods ask the table (``SessionState.busy``) only when an operation of the
    kind is active: that is only right while every active state refuses INIT and keeps it."""
    for state in (S.READY, S.MULTIPART):
        assert S.OPERATION[state][S.INIT] == Refused(int(spec.CKR_OPERATION_ACTIVE), state)
    assert S.OPERATION[S.IDLE][S.INIT] == S.READY


def test_no_step_continues_an_idle_operation() -> None:
    for step in (S.ONESHOT, S.UPDATE, S.FINAL):
        assert S.OPERATION[S.IDLE][step] == Refused(int(spec.CKR_OPERATION_NOT_INITIALIZED), S.IDLE)


def test_only_buffer_too_small_keeps_an_operation_after_a_failure() -> None:
    for state in S.OPERATION_STATES:
        assert S.OPERATION[state][S.TOO_SMALL] == state
        assert S.OPERATION[state][S.FAILED] == S.IDLE


def test_every_kind_cancellable_by_a_distinct_flag() -> None:
    """One flag per kind, except 3.2's verification with the signature first: C_SessionCancel
    names it by CKF_VERIFY, with the C_VerifyInit operation (3.2 has no flag of its own)."""
    flags = [flag for kind, (flag, _steps) in S.KINDS.items() if kind != "verify_signature"]
    assert len(set(flags)) == len(flags)
    assert S.KINDS["verify_signature"] == (S.KINDS["verify"][0], (S.ONESHOT, S.UPDATE, S.FINAL))
    assert all(step in (S.ONESHOT, S.UPDATE, S.FINAL) for _flag, steps in S.KINDS.values() for step in steps)
    assert S.KINDS["find"][1] == (S.UPDATE, S.FINAL)  # a search has no one-shot


def test_an_illegal_move_raises_the_one_error_with_the_tables_ckr() -> None:
    with pytest.raises(IllegalMove) as info:
        S.move(S.SESSION, S.RO_PUBLIC, S.LOGIN_SO)
    assert info.value.ckr == spec.CKR_SESSION_READ_ONLY_EXISTS
    assert (info.value.state, info.value.event) == (S.RO_PUBLIC, S.LOGIN_SO)
    assert S.move(S.SESSION, S.RW_PUBLIC, S.LOGIN_SO) == S.RW_SO
