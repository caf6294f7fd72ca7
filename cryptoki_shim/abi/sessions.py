"""Session management (§5.6): open/close, session info, login/logout, cancel; the legacy
parallel functions (§5.16), 3.2's validation flags and asynchronous functions."""

from __future__ import annotations

from typing import Any

from .. import runtime, spec
from ..core import lane as core_lane
from ..core.module import MODULE
from ..core.states import KINDS
from ..errors import CryptokiError
from .entry import CKR_OK, entry
from . import limits
from ..spec_ints import CKS_LAST_VALIDATION_OK
from .marshal import read_optional_buffer, require


def _native_sessions() -> Any:
    """native/sessions.c's builtins (C_OpenSession/C_CloseSession of the sessions Python never
    saw answered in C), or None: in-process, or a library built without them."""
    publish = getattr(runtime.lib, "shim_sess_publish", None)
    if publish is None or not publish():
        return None
    import _cryptoki_shim_sessions  # type: ignore[import-not-found]  # made by the call above

    return _cryptoki_shim_sessions


MODULE.native = _native_sessions()


# The three entries below are the per-call floor p11bench measures (open-close-session,
# get-session-info): registered direct (no wrapper frame, see entry()), so they answer
# CKR_OK themselves, and the checks are inlined in their spec order.


@entry("C_OpenSession", direct=True)
def C_OpenSession(slot_id: int, flags: int, p_application: Any, notify: Any, ph_session: Any) -> int:
    slot = MODULE.slot(slot_id)
    if not ph_session:  # a NULL cdata pointer is false
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL session handle pointer")
    ph_session[0] = MODULE.open_session_on(slot, flags)
    return CKR_OK


@entry("C_CloseSession", direct=True)
def C_CloseSession(h_session: int) -> int:
    MODULE.close_session(h_session)
    return CKR_OK


@entry("C_CloseAllSessions")
def C_CloseAllSessions(slot_id: int) -> None:
    MODULE.close_all_sessions(slot_id)


@entry("C_GetSessionInfo", direct=True)
def C_GetSessionInfo(h_session: int, p_info: Any) -> int:
    session = MODULE.sessions[h_session]  # the one session lookup (core.module.Sessions)
    if not p_info:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL CK_SESSION_INFO pointer")
    # The answer is packed once per login state and copied as one struct (a memcpy in cffi):
    # converting a tuple field by field was a sixth of the call (issue #22, perf).
    user = session.token.login_user
    cached = session.info
    if cached is None or cached[0] != user:
        owner = runtime.ffi.new("CK_SESSION_INFO *", (session.token.slot_id, session.state, session.flags, 0))
        cached = session.info = (user, owner[0], owner)
    p_info[0] = cached[1]
    if core_lane.ON:  # the answer, for the native lane to repeat while its epoch holds
        core_lane.IMPL.arm_info(h_session, runtime.ffi.buffer(cached[2]))
    return CKR_OK


@entry("C_Login")
def C_Login(h_session: int, user_type: int, p_pin: Any, pin_len: int) -> None:
    session = MODULE.sessions[h_session]
    MODULE.login(session, user_type, read_optional_buffer(p_pin, pin_len, limits.pin(session.token.cfg.max_pin_len)))


@entry("C_LoginUser")
def C_LoginUser(h_session: int, user_type: int, p_pin: Any, pin_len: int, p_username: Any, username_len: int) -> None:
    """3.0: a token without user names ignores the name (§5.6.9), unread."""
    session = MODULE.sessions[h_session]
    MODULE.login(session, user_type, read_optional_buffer(p_pin, pin_len, limits.pin(session.token.cfg.max_pin_len)))


@entry("C_Logout")
def C_Logout(h_session: int) -> None:
    MODULE.logout(MODULE.sessions[h_session])


@entry("C_SessionCancel")
def C_SessionCancel(h_session: int, flags: int) -> None:
    """3.0 §5.6.10: end the operations named by flags (CKF_SIGN ...), or fail cleanly."""
    session = MODULE.sessions[h_session]
    for kind, (flag, _steps) in KINDS.items():
        if flags & flag:
            session.cancel(kind)


@entry("C_GetFunctionStatus")
def C_GetFunctionStatus(h_session: int) -> None:
    """Legacy (§5.16): no function runs in parallel; after the initialized and session-handle
    checks, the spec's answer is CKR_FUNCTION_NOT_PARALLEL."""
    MODULE.sessions[h_session]  # CKR_CRYPTOKI_NOT_INITIALIZED, CKR_SESSION_HANDLE_INVALID ...
    raise CryptokiError(spec.CKR_FUNCTION_NOT_PARALLEL, "legacy function: nothing runs in parallel")


@entry("C_CancelFunction")
def C_CancelFunction(h_session: int) -> None:
    """Legacy (§5.16): as C_GetFunctionStatus."""
    MODULE.sessions[h_session]
    raise CryptokiError(spec.CKR_FUNCTION_NOT_PARALLEL, "legacy function: nothing runs in parallel")


@entry("C_GetSessionValidationFlags")
def C_GetSessionValidationFlags(h_session: int, flags_type: int, p_flags: Any) -> None:
    """3.2 session management: the validation flags (the CKA_VALIDATION_FLAG bits of
    CKO_VALIDATION objects) that the session's last operation met. This token holds no
    validation object (no FIPS 140 / Common Criteria certificate to name), so no operation
    meets one: 0 for every valid session. CKS_LAST_VALIDATION_OK is the one type 3.2
    defines; another is CKR_ARGUMENTS_BAD."""
    MODULE.sessions[h_session]  # CKR_CRYPTOKI_NOT_INITIALIZED, CKR_SESSION_HANDLE_INVALID ...
    require(p_flags, "CK_FLAGS pointer")
    if flags_type != CKS_LAST_VALIDATION_OK:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"unknown validation flags type {flags_type}")
    p_flags[0] = 0


def _no_async(h_session: int) -> None:
    """3.2 asynchronous function management: the functions continue operations of a
    session opened with CKF_ASYNC_SESSION. This token opens none (CKF_ASYNC_SESSION_SUPPORTED
    is not in its CK_TOKEN_INFO flags; C_OpenSession answers CKR_SESSION_ASYNC_NOT_SUPPORTED),
    so no call can be pending: after the initialized and session-handle checks, the
    functions are not supported (docs/conformance.md)."""
    MODULE.sessions[h_session]
    raise CryptokiError(spec.CKR_FUNCTION_NOT_SUPPORTED, "no asynchronous sessions on this token")


@entry("C_AsyncComplete")
def C_AsyncComplete(h_session: int, *_pFunctionName_pResult: Any) -> None:
    _no_async(h_session)


@entry("C_AsyncGetID")
def C_AsyncGetID(h_session: int, *_pFunctionName_pulID: Any) -> None:
    _no_async(h_session)


@entry("C_AsyncJoin")
def C_AsyncJoin(h_session: int, *_pFunctionName_ulID_pData_ulData: Any) -> None:
    _no_async(h_session)
