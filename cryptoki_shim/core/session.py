"""Sessions: their state, their active operations, and the one output-delivery rule.

Session state (§5.6, "Session states") is derived, not stored: RO/RW from the open flags,
public/user/SO from the token's login state. Each session has at most one active operation
per kind; ``Operation`` keeps the mechanism context, whether the caller went one-shot or
multi-part (they do not mix), and an output computed for a caller whose buffer was too
small (so the retry gets the same bytes and nothing is computed twice).
"""

from __future__ import annotations

import threading
from typing import Callable

from .. import audit, spec
from ..errors import BufferTooSmall, CryptokiError
from .crypto_functions import CryptoFunctions
from .object_functions import ObjectFunctions
from .operations import ONESHOT, UPDATE, Operation
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

class Session(ObjectFunctions, CryptoFunctions):
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

    # ------------------------------------------------------------------ operations

    def start(self, op: Operation) -> None:
        if op.kind in self.ops:
            raise CryptokiError(spec.CKR_OPERATION_ACTIVE, f"{op.kind} already active")
        self.ops[op.kind] = op

    def cancel(self, kind: str) -> None:
        self.ops.pop(kind, None)

    def active(self, kind: str) -> Operation:
        op = self.ops.get(kind)
        if op is None:
            raise CryptokiError(spec.CKR_OPERATION_NOT_INITIALIZED, f"no {kind} operation")
        if op.needs_context_login:
            raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "key needs C_Login(CKU_CONTEXT_SPECIFIC)")
        return op

    def _enter(self, op: Operation, step: str) -> None:
        """One-shot and multi-part calls do not mix within one operation (§5.2)."""
        if step == ONESHOT and op.mode == UPDATE:
            self.ops.pop(op.kind, None)
            raise CryptokiError(spec.CKR_OPERATION_ACTIVE, "one-shot call after a multi-part update")

    def produce(self, kind: str, step: str, data: bytes, capacity: int | None,
                compute: Callable[[Operation], bytes]) -> bytes | int:
        """Deliver an operation's output by the buffer protocol of §5.2.

        ``capacity`` None: a length query — answered from the context's ``length_hint``
        without doing the work when it can, else the output is computed and kept. Too small:
        the output is kept and ``BufferTooSmall`` carries its length; the operation stays.
        Any other error ends the operation. A final or one-shot step that delivered ends it.
        """
        op = self.active(kind)
        self._enter(op, step)
        pending = op.pending
        if pending is not None and pending[0] == step and pending[1] == data:
            out = pending[2]
        else:
            if capacity is None:
                hint = op.ctx.length_hint(step, len(data))
                if hint is not None:
                    return hint
            try:
                out = compute(op)
            except BaseException as exc:
                self.ops.pop(kind, None)
                audit.key_use(self, op, exc)
                raise
        if capacity is None or len(out) > capacity:
            op.pending = (step, data, out)
            if capacity is None:
                return len(out)
            raise BufferTooSmall(len(out))
        op.pending = None
        if step == UPDATE:
            op.mode = UPDATE
        else:
            self.ops.pop(kind, None)
            audit.key_use(self, op)
        return out

    def consume(self, kind: str, step: str, run: Callable[[Operation], None]) -> None:
        """A step with no output (SignUpdate, Verify, VerifyFinal, DigestUpdate ...)."""
        op = self.active(kind)
        self._enter(op, step)
        try:
            run(op)
        except BaseException as exc:
            self.ops.pop(kind, None)
            audit.key_use(self, op, exc)
            raise
        if step == UPDATE:
            op.mode = UPDATE
        else:
            self.ops.pop(kind, None)
            audit.key_use(self, op)
