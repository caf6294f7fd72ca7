"""Sessions and their state.

Session state (§5.6, "Session states") is derived, not stored: RO/RW from the open flags,
public/user/SO from the token's login state. Each session has at most one active operation
per kind; running them (and the one output-delivery rule) is ``operations.OperationSteps``.
"""

from __future__ import annotations

import _thread

from .. import spec
from .crypto_functions import CryptoFunctions
from .object_functions import ObjectFunctions
from .operations import Operation, OperationSteps
from .token import CKU_SO, CKU_USER, Token

CKF_RW_SESSION = int(spec.CKF_RW_SESSION)

#: (logged-in user, read-write?) -> CKS_* (§5.6 tables 8 and 9).
STATES = {
    (None, False): int(spec.CKS_RO_PUBLIC_SESSION),
    (None, True): int(spec.CKS_RW_PUBLIC_SESSION),
    (CKU_USER, False): int(spec.CKS_RO_USER_FUNCTIONS),
    (CKU_USER, True): int(spec.CKS_RW_USER_FUNCTIONS),
    (CKU_SO, True): int(spec.CKS_RW_SO_FUNCTIONS),
}
#: STATES by read-write? then by user (one lookup per C_GetSessionInfo); a user with no
#: state for the session kind (none today: an SO login needs RW sessions) reads as public.
_STATE_OF: dict[bool, dict[int | None, int]] = {
    rw: {user: state for (user, rw_), state in STATES.items() if rw_ == rw} for rw in (False, True)
}


class Session(ObjectFunctions, CryptoFunctions, OperationSteps):
    def __init__(self, handle: int, token: Token, flags: int) -> None:
        self.handle = handle
        self.token = token
        self.flags = flags
        self.rw = bool(flags & CKF_RW_SESSION)
        self.lock = _thread.RLock()  # threading.RLock() is a Python-level factory of the same type
        self.ops: dict[str, Operation] = {}

    @property
    def state(self) -> int:
        by_user = _STATE_OF[self.rw]
        state = by_user.get(self.token.login_user)
        return state if state is not None else by_user[None]
