"""Sessions and their state.

Session state (§5.6, "Session states") is derived, not stored: RO/RW from the open flags,
public/user/SO from the token's login state. Each session has at most one active operation
per kind; running them (and the one output-delivery rule) is ``operations.OperationSteps``.
"""

from __future__ import annotations

import threading

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


class Session(ObjectFunctions, CryptoFunctions, OperationSteps):
    def __init__(self, handle: int, token: Token, flags: int) -> None:
        self.handle = handle
        self.token = token
        self.flags = flags
        self.rw = bool(flags & CKF_RW_SESSION)
        self.lock = threading.RLock()
        self.ops: dict[str, Operation] = {}

    @property
    def state(self) -> int:
        return STATES.get((self.token.login_user, self.rw), STATES[(None, self.rw)])
