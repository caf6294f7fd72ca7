"""Active operations of a session (one per kind) and the one output-delivery rule.

Each session has at most one active operation per kind; ``Operation`` keeps the mechanism
context, whether the caller went one-shot or multi-part (they do not mix), and an output
computed for a caller whose buffer was too small (so the retry gets the same bytes and
nothing is computed twice). ``OperationSteps`` is the part of ``Session`` that runs the
steps; every C_Sign/C_Encrypt/C_Digest... goes through ``produce`` or ``consume``, so these
two are written for the hot path: no closures, no helper frames on the common case.
"""

from __future__ import annotations

from typing import Any

from .. import audit, spec
from ..errors import BufferTooSmall, CryptokiError
from .objects import Object

ONESHOT, UPDATE, FINAL = "oneshot", "update", "final"

CKR_OPERATION_NOT_INITIALIZED = int(spec.CKR_OPERATION_NOT_INITIALIZED)
CKR_OPERATION_ACTIVE = int(spec.CKR_OPERATION_ACTIVE)
CKR_USER_NOT_LOGGED_IN = int(spec.CKR_USER_NOT_LOGGED_IN)


class Operation:
    """One active operation. A plain class with slots: one is made per C_*Init."""

    __slots__ = ("kind", "ctx", "mechanism", "key", "mode", "pending", "needs_context_login", "param")

    def __init__(self, kind: str, ctx: Any, mechanism: int = 0, key: Object | None = None,
                 needs_context_login: bool = False, param: Any = None) -> None:
        self.kind = kind                    # "sign", "verify", "encrypt", "decrypt", "digest", "find"
        self.ctx = ctx                      # the mechanism context (or the find cursor)
        self.mechanism = mechanism
        self.key = key
        self.mode: str | None = None        # UPDATE once the caller went multi-part
        self.pending: tuple[str, bytes, bytes] | None = None  # (step, input, output) kept for a retry
        self.needs_context_login = needs_context_login  # CKA_ALWAYS_AUTHENTICATE: context login first
        self.param = param                  # the mechanism parameter (C_GetOperationState saves it)


class OperationSteps:
    """Starting, running and ending a session's operations (mixed into ``Session``)."""

    ops: dict[str, Operation]

    def start(self, op: Operation) -> None:
        if op.kind in self.ops:
            raise CryptokiError(CKR_OPERATION_ACTIVE, f"{op.kind} already active")
        self.ops[op.kind] = op

    def cancel(self, kind: str) -> None:
        self.ops.pop(kind, None)

    def _active(self, kind: str, step: str) -> Operation:
        """The operation a step continues. A one-shot call after a multi-part update ends
        it with CKR_OPERATION_ACTIVE (one-shot and multi-part calls do not mix, §5.2)."""
        op = self.ops.get(kind)
        if op is None:
            raise CryptokiError(CKR_OPERATION_NOT_INITIALIZED, f"no {kind} operation")
        if op.needs_context_login:
            raise CryptokiError(CKR_USER_NOT_LOGGED_IN, "key needs C_Login(CKU_CONTEXT_SPECIFIC)")
        if step is ONESHOT and op.mode is UPDATE:
            del self.ops[kind]
            raise CryptokiError(CKR_OPERATION_ACTIVE, "one-shot call after a multi-part update")
        return op

    def produce(self, capacity: int | None, kind: str, step: str, data: bytes) -> bytes | int:
        """Deliver an operation's output by the buffer protocol of §5.2.

        ``step`` names the context method: ONESHOT ``ctx.oneshot(data)``, UPDATE
        ``ctx.update(data)``, FINAL ``ctx.final()``. ``capacity`` None: a length query —
        answered from the context's ``length_hint`` without doing the work when it can, else
        the output is computed and kept. Too small: the output is kept and ``BufferTooSmall``
        carries its length; the operation stays. Any other error ends the operation. A final
        or one-shot step that delivered ends it.
        """
        op = self.ops.get(kind)
        if op is None or op.needs_context_login or op.mode is not None:
            op = self._active(kind, step)  # the error, or a multi-part operation's checks
        pending = op.pending
        if pending is not None and pending[0] is step and pending[1] == data:
            out = pending[2]
        else:
            ctx = op.ctx
            if capacity is None:
                hint = ctx.length_hint(step, len(data))
                if hint is not None:
                    return hint
            try:
                if step is ONESHOT:
                    out = ctx.oneshot(data)
                elif step is UPDATE:
                    out = ctx.update(data)
                else:
                    out = ctx.final()
            except BaseException as exc:
                self.ops.pop(kind, None)
                audit.key_use(self, op, exc)
                raise
        if capacity is None or len(out) > capacity:
            op.pending = (step, data, out)
            if capacity is None:
                return len(out)
            raise BufferTooSmall(len(out))
        if pending is not None:
            op.pending = None
        if step is UPDATE:
            op.mode = UPDATE
        else:
            del self.ops[kind]
            if audit.KEY_USE and op.key is not None:
                audit.key_use(self, op)
        return out

    def consume(self, kind: str, step: str, *args: Any) -> None:
        """A step with no output: ONESHOT ``ctx.oneshot(*args)`` (C_Verify), UPDATE
        ``ctx.update(*args)`` (SignUpdate, DigestUpdate ...), FINAL ``ctx.final(*args)``
        (C_VerifyFinal). ``consume(kind, "digest_key", value)`` feeds C_DigestKey."""
        op = self._active(kind, step)
        try:
            getattr(op.ctx, step)(*args)
        except BaseException as exc:
            self.ops.pop(kind, None)
            audit.key_use(self, op, exc)
            raise
        if step is UPDATE or step == "digest_key":
            op.mode = UPDATE
        else:
            del self.ops[kind]
            if audit.KEY_USE:
                audit.key_use(self, op)
