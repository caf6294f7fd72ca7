"""Session, login and operation state as data: every state, every event, the move each makes.

In the style of h11 (its client/server state tables): the rules of PKCS#11 3.0 §5.6
("Session states", "Session events", C_OpenSession, C_Login, C_Logout) and the operation
rules of §5.2 / DESIGN §3 are tables, not ``if``s scattered over the module, the session and the
token; code asks a table and an illegal move raises the one error type, ``IllegalMove``,
with the CKR the table names. ``tests/test_states.py`` checks that every table has an entry
for every state and every event; the tests through the ``.so`` are named after the rules.

Who holds the state: the login state is per application and token (``Token.login_user``:
all sessions of an application share it, §5.6), so a session's state (``SESSION``'s rows) is
derived from it and the session's read-write flag, never stored; a session's operations (one
per kind, ``OPERATION``'s rows) are held by the session (``operations.SessionState``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import spec
from ..spec_ints import (
    CKF_DECRYPT,
    CKF_DIGEST,
    CKF_ENCRYPT,
    CKF_FIND_OBJECTS,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT,
    CKF_MESSAGE_SIGN,
    CKF_MESSAGE_VERIFY,
    CKF_SIGN,
    CKF_SIGN_RECOVER,
    CKF_VERIFY,
    CKF_VERIFY_RECOVER,
    CKR_OPERATION_ACTIVE as _ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_SESSION_READ_ONLY_EXISTS as _RO_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_USER_ALREADY_LOGGED_IN as _ALREADY,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN as _ANOTHER,
    CKR_USER_NOT_LOGGED_IN as _NOT_LOGGED_IN,
    CKS_RO_PUBLIC_SESSION as RO_PUBLIC,
    CKS_RO_USER_FUNCTIONS as RO_USER,
    CKS_RW_PUBLIC_SESSION as RW_PUBLIC,
    CKS_RW_SO_FUNCTIONS as RW_SO,
    CKS_RW_USER_FUNCTIONS as RW_USER,
    CKU_SO,
    CKU_USER,
)
from ..errors import CryptokiError


class Refused(NamedTuple):
    """A table entry that refuses the event: the CKR it answers, and the state after (the
    same state, except where the refusal itself ends an operation)."""

    ckr: int
    then: Any


class IllegalMove(CryptokiError):
    """An event its state does not allow (the one error type of the tables)."""

    __slots__ = ("state", "event")

    def __init__(self, refused: Refused, state: Any, event: str) -> None:
        super().__init__(refused.ckr, f"{event} refused in state {state!r}: {spec.ckr_name(refused.ckr)}")
        self.state = state
        self.event = event


def move(table: dict[Any, dict[str, Any]], state: Any, event: str) -> Any:
    """The state after ``event`` in ``state``; ``IllegalMove`` if the table refuses it."""
    after = table[state][event]
    if after.__class__ is Refused:
        raise IllegalMove(after, state, event)
    return after


# ---------------------------------------------------------------------- sessions and login

SESSION_STATES = (RO_PUBLIC, RO_USER, RW_PUBLIC, RW_USER, RW_SO)

#: Events on the application's login state, applied to every session it has on the token:
#: a login or logout moves all of them, and is refused if any one refuses (§5.6).
LOGIN_USER, LOGIN_SO, LOGIN_CONTEXT, LOGOUT = "login_user", "login_so", "login_context", "logout"
SESSION_EVENTS = (LOGIN_USER, LOGIN_SO, LOGIN_CONTEXT, LOGOUT)


#: session state -> event -> state after, or Refused (§5.6 session state diagrams; C_Login:
#: an SO login needs every session R/W, CKR_SESSION_READ_ONLY_EXISTS; a context-specific login
#: (CKA_ALWAYS_AUTHENTICATE) needs the normal user logged in and changes no state). A refusal
#: leaves the state as it was.
SESSION: dict[int, dict[str, Any]] = {
    RO_PUBLIC: {LOGIN_USER: RO_USER, LOGIN_SO: Refused(_RO_EXISTS, RO_PUBLIC),
                LOGIN_CONTEXT: Refused(_NOT_LOGGED_IN, RO_PUBLIC), LOGOUT: Refused(_NOT_LOGGED_IN, RO_PUBLIC)},
    RW_PUBLIC: {LOGIN_USER: RW_USER, LOGIN_SO: RW_SO,
                LOGIN_CONTEXT: Refused(_NOT_LOGGED_IN, RW_PUBLIC), LOGOUT: Refused(_NOT_LOGGED_IN, RW_PUBLIC)},
    RO_USER: {LOGIN_USER: Refused(_ALREADY, RO_USER), LOGIN_SO: Refused(_ANOTHER, RO_USER),
              LOGIN_CONTEXT: RO_USER, LOGOUT: RO_PUBLIC},
    RW_USER: {LOGIN_USER: Refused(_ALREADY, RW_USER), LOGIN_SO: Refused(_ANOTHER, RW_USER),
              LOGIN_CONTEXT: RW_USER, LOGOUT: RW_PUBLIC},
    RW_SO: {LOGIN_USER: Refused(_ANOTHER, RW_SO), LOGIN_SO: Refused(_ALREADY, RW_SO),
            LOGIN_CONTEXT: Refused(_NOT_LOGGED_IN, RW_SO), LOGOUT: RW_PUBLIC},
}

#: (application's login user, read-write?) -> the state a new session starts in (C_OpenSession,
#: §5.6: no R/O session while the SO is logged in). Also how C_GetSessionInfo derives a
#: session's state (``state_of``).
OPENED: dict[tuple[int | None, bool], Any] = {
    (None, False): RO_PUBLIC,
    (None, True): RW_PUBLIC,
    (CKU_USER, False): RO_USER,
    (CKU_USER, True): RW_USER,
    (CKU_SO, False): Refused(CKR_SESSION_READ_WRITE_SO_EXISTS, None),  # no session opened
    (CKU_SO, True): RW_SO,
}
LOGIN_EVENT = {CKU_USER: LOGIN_USER, CKU_SO: LOGIN_SO}  # C_Login's user type -> event
#: The login user a session state means (the other way round from OPENED).
USER_OF = {RO_PUBLIC: None, RW_PUBLIC: None, RO_USER: CKU_USER, RW_USER: CKU_USER, RW_SO: CKU_SO}
#: Closing the application's last session on a token logs it out (C_CloseSession,
#: C_CloseAllSessions, §5.6): core/module.py applies LOGOUT then (Token.logout).

#: OPENED by read-write? then by login user, the refusals left out: one lookup per
#: C_GetSessionInfo (``state_of``; ``SessionState.state`` inlines it).
STATE_OF: dict[bool, dict[int | None, int]] = {
    rw: {user: s for (user, rw_), s in OPENED.items() if rw_ == rw and s.__class__ is not Refused}
    for rw in (False, True)
}


def state_of(login_user: int | None, rw: bool) -> int:
    """A session's CKS_* state (C_GetSessionInfo). A login user with no state for this kind of
    session (an SO with a R/O session: OPENED and SESSION never let one exist) reads public."""
    by_user = STATE_OF[rw]
    state = by_user.get(login_user)
    return state if state is not None else by_user[None]


# ---------------------------------------------------------------------- operations

#: An operation's states: none active of its kind, initialized (C_*Init done, no step yet),
#: multi-part (an update was delivered). ``Operation.mode`` holds READY or MULTIPART; IDLE is
#: "no entry in the session's ``ops``".
IDLE, READY, MULTIPART = "idle", "ready", "multipart"
OPERATION_STATES = (IDLE, READY, MULTIPART)
#: Events: C_*Init; the three steps (their names are the context methods they call); a step
#: that answered CKR_BUFFER_TOO_SMALL (or a length query); a step that failed with any other
#: error; C_*Init with a NULL mechanism or C_SessionCancel; C_Logout (ends every operation of
#: the application's sessions).
INIT, ONESHOT, UPDATE, FINAL = "init", "oneshot", "update", "final"
TOO_SMALL, FAILED, CANCEL = "too_small", "failed", "cancel"
OPERATION_EVENTS = (INIT, ONESHOT, UPDATE, FINAL, TOO_SMALL, FAILED, CANCEL, LOGOUT)

_NOT_INITIALIZED = Refused(CKR_OPERATION_NOT_INITIALIZED, IDLE)

#: operation state -> event -> state after, or Refused (DESIGN §3, §5.2):
#: * one-shot and multi-part calls do not mix: a one-shot call after an update is refused with
#:   CKR_OPERATION_ACTIVE and ends the operation;
#: * CKR_BUFFER_TOO_SMALL keeps the operation (the retry gets the kept output), any other error
#:   ends it;
#: * a delivered one-shot or final step ends it; an update makes it multi-part.
OPERATION: dict[str, dict[str, Any]] = {
    IDLE: {INIT: READY, ONESHOT: _NOT_INITIALIZED, UPDATE: _NOT_INITIALIZED, FINAL: _NOT_INITIALIZED,
           TOO_SMALL: IDLE, FAILED: IDLE, CANCEL: IDLE, LOGOUT: IDLE},
    READY: {INIT: Refused(_ACTIVE, READY), ONESHOT: IDLE, UPDATE: MULTIPART, FINAL: IDLE,
            TOO_SMALL: READY, FAILED: IDLE, CANCEL: IDLE, LOGOUT: IDLE},
    MULTIPART: {INIT: Refused(_ACTIVE, MULTIPART), ONESHOT: Refused(_ACTIVE, IDLE), UPDATE: MULTIPART,
                FINAL: IDLE, TOO_SMALL: MULTIPART, FAILED: IDLE, CANCEL: IDLE, LOGOUT: IDLE},
}

#: A step other than the retry of the one answered with a length or CKR_BUFFER_TOO_SMALL
#: (``Operation.pending``: C_Sign(NULL) then C_SignUpdate/C_SignFinal; C_EncryptUpdate too
#: small then C_EncryptFinal; the same step on other data once the work was done): refused,
#: and it ends the operation, as a one-shot call after an update does (issue 23 item 8).
MIXED = Refused(_ACTIVE, IDLE)

#: The operation kinds: the CKF_* flag C_SessionCancel names them by (3.0 §5.6), and the
#: steps their calls take. Find has no one-shot: C_FindObjects is its update, C_FindObjectsFinal
#: its final. C_DigestKey is a digest update. Sign/verify with recovery are single-part
#: (C_SignRecover, C_VerifyRecover: the RSA raw mechanisms).
KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "encrypt": (CKF_ENCRYPT, (ONESHOT, UPDATE, FINAL)),
    "decrypt": (CKF_DECRYPT, (ONESHOT, UPDATE, FINAL)),
    "digest": (CKF_DIGEST, (ONESHOT, UPDATE, FINAL)),
    "sign": (CKF_SIGN, (ONESHOT, UPDATE, FINAL)),
    "sign_recover": (CKF_SIGN_RECOVER, (ONESHOT,)),
    "verify": (CKF_VERIFY, (ONESHOT, UPDATE, FINAL)),
    "verify_recover": (CKF_VERIFY_RECOVER, (ONESHOT,)),
    # 3.2 C_VerifySignature*: the signature given at init (core/verify_signature.py); its own
    # operation, which C_SessionCancel(CKF_VERIFY) ends with the C_VerifyInit one
    "verify_signature": (CKF_VERIFY, (ONESHOT, UPDATE, FINAL)),
    "find": (CKF_FIND_OBJECTS, (UPDATE, FINAL)),
    # the message-based processes (core/message.py keeps their own steps)
    "message_encrypt": (CKF_MESSAGE_ENCRYPT, ()),
    "message_decrypt": (CKF_MESSAGE_DECRYPT, ()),
    "message_sign": (CKF_MESSAGE_SIGN, ()),
    "message_verify": (CKF_MESSAGE_VERIFY, ()),
}
