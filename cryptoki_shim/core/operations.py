"""A session's state and its operations: the one owner of both (``SessionState``).

A session's CKS_* state is derived (``states.state_of``: the token's login user and the
session's R/W flag). Its active operations, at most one per kind, are ``Operation``s in
``ops``, and every change to them is a move of ``states.OPERATION`` made here: starting one
(``start``), a step (``produce``/``consume``), a refusal, an error, a cancel, a logout
(``end_operations``), a restored state (``replace_operations``). Only this class and the
ones built on it (``Session``'s chain) edit ``ops``.

``Operation`` keeps the mechanism context, its state (READY, or MULTIPART once an update
was delivered: one-shot and multi-part calls do not mix), and an output computed for a
caller whose buffer was too small (the retry gets the same bytes, nothing is computed
twice). Every C_Sign/C_Encrypt/C_Digest... goes through ``produce`` or ``consume``, so these
two are written for the hot path: no closures, no helper frames on the common case (an
operation in state READY, where ``states.OPERATION`` allows every step).
"""

from __future__ import annotations

import _thread
from typing import TYPE_CHECKING, Any

from time import monotonic as _monotonic

from .. import audit, metrics
from ..spec_ints import CKF_RW_SESSION, CKR_OPERATION_ACTIVE, CKR_USER_NOT_LOGGED_IN
from ..errors import BufferTooSmall, CryptokiError
from . import lane, states
from .lane import KIND_BITS
from .objects import Object
from .states import IDLE, INIT, MIXED, ONESHOT, OPERATION, READY, STATE_OF, UPDATE, IllegalMove, Refused

if TYPE_CHECKING:
    from .token import Token

#: C_DigestKey feeds the digest like an update (``consume(kind, DIGEST_KEY, value)``).
DIGEST_KEY = "digest_key"


class Operation:
    """One active operation. A plain class with slots: one is made per C_*Init."""

    __slots__ = ("kind", "ctx", "mechanism", "key", "mode", "pending", "needs_context_login", "param", "started")

    def __init__(self, kind: str, ctx: Any, mechanism: int = 0, key: Object | None = None,
                 needs_context_login: bool = False, param: Any = None) -> None:
        self.kind = kind                    # "sign", "verify", "encrypt", "decrypt", "digest", "find"
        self.ctx = ctx                      # the mechanism context (or the find cursor)
        self.mechanism = mechanism
        self.key = key
        self.mode = READY                   # states.READY, then MULTIPART once an update was delivered
        # (step, input, output) kept for a retry; output None: a one-shot length query answered
        # without the work (the operation is committed to that one-shot step)
        self.pending: tuple[str, bytes, bytes | None] | None = None
        self.needs_context_login = needs_context_login  # CKA_ALWAYS_AUTHENTICATE: context login first
        self.param = param                  # the mechanism parameter (C_GetOperationState saves it)
        self.started = _monotonic() if metrics.ON else 0.0  # metrics: the operation's duration


class OpTable(dict[str, "Operation"]):
    """A session's active operations by kind (``SessionState.ops``), mirrored to the native lane.

    The lane (core/lane.py) starts an operation in C only for a kind the session has no
    Python operation of, so every change of the lane's kinds here is told to it (``py_ops``:
    one C call, only when the set of kinds changes). A session's table becomes one at the
    lane's first arm there (``SessionState.lane_table``); before, the lane holds nothing for
    the session and the arm tells it the kinds. A kind that has a lane operation is
    refused (CKR_OPERATION_ACTIVE: that C_*Init came first); the C wrappers hand a session's
    lane operations to Python (``adopt``) before any other Python call on the session, so
    that refusal is only seen by two threads racing on one session. ``mask`` is the lane
    kinds present (always kept, told only when the lane is on).
    """

    __slots__ = ("handle", "mask", "lane_keys")

    def __init__(self, handle: int) -> None:
        super().__init__()
        self.handle = handle
        self.mask = 0
        #: (kind, mechanism, key handle) -> (key, context maker) of each keyed verdict armed
        #: on this session (``crypto_functions._arm_keyed``), for an adopted lane operation
        self.lane_keys: dict[tuple[str, int, int], tuple[Any, Any]] = {}

    # (each written out: these run on every Python operation, and a helper call per step
    # would double their cost)
    def __setitem__(self, kind: str, op: "Operation") -> None:
        bit = KIND_BITS.get(kind, 0)
        if bit & ~self.mask:
            if lane.ON and not lane.IMPL.py_ops(self.handle, self.mask | bit):
                raise CryptokiError(CKR_OPERATION_ACTIVE, f"a {kind} operation is active")
            self.mask |= bit
        dict.__setitem__(self, kind, op)

    def __delitem__(self, kind: str) -> None:
        dict.__delitem__(self, kind)
        bit = KIND_BITS.get(kind, 0)
        if bit & self.mask:
            self.mask ^= bit
            if lane.ON:
                lane.IMPL.py_ops(self.handle, self.mask)

    def pop(self, kind: str, *default: Any) -> Any:
        op = dict.pop(self, kind, *default)
        bit = KIND_BITS.get(kind, 0)
        if bit & self.mask:
            self.mask ^= bit
            if lane.ON:
                lane.IMPL.py_ops(self.handle, self.mask)
        return op

    def clear(self) -> None:
        dict.clear(self)
        if self.mask:
            self.mask = 0
            if lane.ON:
                lane.IMPL.py_ops(self.handle, 0)

    def clear_mirror(self) -> None:
        """This table stops being the session's (``replace_operations``): the lane is told
        there are no Python operations; the kinds stay here for a restore."""
        if self.mask and lane.ON:
            lane.IMPL.py_ops(self.handle, 0)
        self.mask = 0

    def adopt(self, kind: str, op: "Operation") -> None:
        """A lane operation handed over (``lane.adopt``): the lane already counts it as ours."""
        dict.__setitem__(self, kind, op)
        self.mask |= KIND_BITS[kind]


class SessionState:
    """One session: its handle, token, flags and lock, its CKS_* state and its operations.

    The base of ``Session``: the object and cryptographic functions are built on it
    (``object_functions.ObjectFunctions``, ``crypto_functions.CryptoFunctions``)."""

    def __init__(self, handle: int, token: Token, flags: int) -> None:
        self.handle = handle
        self.token = token
        self.flags = flags
        self.rw = bool(flags & CKF_RW_SESSION)
        self.lock = _thread.RLock()  # threading.RLock() is a Python-level factory of the same type
        #: C_GetSessionInfo's answer for one login state, kept by the ABI layer (abi.sessions):
        #: (login user, packed CK_SESSION_INFO); the state is the only part that changes.
        self.info: Any = None
        #: A plain dict until the native lane is first armed on this session (``lane_table``):
        #: a session the lane never serves pays nothing for the mirror.
        self.ops: dict[str, Operation] = {}

    @property
    def state(self) -> int:
        """CKS_* (C_GetSessionInfo), derived from the application's login state (§5.6):
        ``states.state_of``, inline (C_GetSessionInfo is the per-call floor)."""
        by_user = STATE_OF[self.rw]
        state = by_user.get(self.token.login_user)
        return state if state is not None else by_user[None]

    # ------------------------------------------------------------------ starting and ending

    def busy(self, kind: str) -> None:
        """C_*Init while an operation of ``kind`` is active: ``states.OPERATION`` refuses INIT in
        every active state (CKR_OPERATION_ACTIVE; the operation stays). The C_*Init methods
        call it when ``kind in self.ops``, before the mechanism and key checks (whose errors
        come after), then store their ``Operation`` in ``ops``."""
        op = self.ops[kind]
        states.move(OPERATION, op.mode, INIT)

    def cancel(self, kind: str) -> None:
        """C_*Init with a NULL mechanism, C_SessionCancel: CANCEL ends it (if any)."""
        self.ops.pop(kind, None)

    def failed(self, kind: str, exc: BaseException) -> None:
        """A step of ``kind`` failed, whichever layer raised (an argument check of the abi
        layer before the core saw the call, the mechanism, a refusal): FAILED ends the
        operation (§5.2: every error but CKR_BUFFER_TOO_SMALL ends it), TOO_SMALL keeps it,
        and so does a key still waiting for its context login (CKR_USER_NOT_LOGGED_IN)."""
        if exc.__class__ is BufferTooSmall:
            return
        op = self.ops.get(kind)
        if op is not None and not op.needs_context_login:
            del self.ops[kind]

    def end_operations(self) -> None:
        """C_Logout ends every operation of the application's sessions (LOGOUT), the native
        lane's included."""
        self.ops.clear()
        lane.cancel(self.handle)

    def replace_operations(self, ops: dict[str, Operation]) -> dict[str, Operation]:
        """C_SetOperationState: the session's operations become ``ops`` (its own end); the old
        ones are returned, so a failed restore can put them back. (The new table is told to
        the native lane: ``OpTable``.)"""
        before = self.ops
        if before.__class__ is not OpTable:
            self.ops = dict(ops)
            return before
        before.clear_mirror()
        table = self.ops = OpTable(self.handle)
        table.lane_keys = before.lane_keys
        for kind, op in ops.items():
            table[kind] = op
        return before

    def lane_table(self) -> OpTable:
        """The session's operations as an ``OpTable`` (mirrored to the native lane from now
        on), made from the plain dict at the first arm (core/crypto_functions): its kinds are
        told with the arm."""
        ops = self.ops
        if ops.__class__ is OpTable:
            return ops
        table = OpTable(self.handle)
        for kind, op in ops.items():
            dict.__setitem__(table, kind, op)
            table.mask |= KIND_BITS.get(kind, 0)
        self.ops = table
        return table

    def waiting_for_context_login(self) -> list[Operation]:
        """The operations whose key needs C_Login(CKU_CONTEXT_SPECIFIC) before their step."""
        return [op for op in self.ops.values() if op.needs_context_login]

    def context_logged_in(self, ops: list[Operation]) -> None:
        """C_Login(CKU_CONTEXT_SPECIFIC) succeeded: those operations may take their step."""
        for op in ops:
            op.needs_context_login = False

    # ------------------------------------------------------------------ steps

    def _active(self, kind: str, step: str) -> Operation:
        """The operation a step continues, by ``states.OPERATION``: none is
        CKR_OPERATION_NOT_INITIALIZED; a one-shot call after a multi-part update ends it with
        CKR_OPERATION_ACTIVE (§5.2). A key waiting for its context login answers
        CKR_USER_NOT_LOGGED_IN (and the operation stays)."""
        op = self.ops.get(kind)
        if op is None:
            raise IllegalMove(OPERATION[IDLE][step], IDLE, step)  # every step is refused in IDLE
        if op.needs_context_login:
            raise CryptokiError(CKR_USER_NOT_LOGGED_IN, "key needs C_Login(CKU_CONTEXT_SPECIFIC)")
        if op.pending is not None and op.pending[0] is not step:
            del self.ops[kind]
            raise IllegalMove(MIXED, op.mode, step)
        after = OPERATION[op.mode][step]
        if after.__class__ is Refused:
            if after.then is IDLE:
                del self.ops[kind]
            raise IllegalMove(after, op.mode, step)
        return op

    def produce(self, capacity: int | None, kind: str, step: str, data: bytes) -> bytes | int:
        """Deliver an operation's output by the buffer protocol of §5.2.

        ``step`` names the context method: ONESHOT ``ctx.oneshot(data)``, UPDATE
        ``ctx.update(data)``, FINAL ``ctx.final()``. ``capacity`` None: a length query —
        answered from the context's ``length_hint`` without doing the work when it can, else
        the output is computed and kept. Too small: the output is kept and ``BufferTooSmall``
        carries its length; the operation stays (TOO_SMALL). Any other error ends it
        (FAILED). A delivered step makes the move ``states.OPERATION`` names.
        """
        op = self.ops.get(kind)
        if op is None or op.needs_context_login or op.mode is not READY:
            op = self._active(kind, step)  # the error, or a multi-part operation's checks
        pending = op.pending
        if pending is not None and pending[0] is step and pending[1] == data and pending[2] is not None:
            out = pending[2]
        else:
            if pending is not None and (pending[0] is not step or pending[2] is not None):
                # a step other than the retry of the one answered (another step, or other data
                # after the work was done): refused, never a result of the wrong input
                del self.ops[kind]
                raise IllegalMove(MIXED, op.mode, step)
            ctx = op.ctx
            if capacity is None:
                hint = ctx.length_hint(step, len(data))
                if hint is not None:
                    if step is ONESHOT:
                        op.pending = (step, data, None)  # committed to the one-shot (no work done yet)
                    return hint
            try:
                if step is ONESHOT:
                    out = ctx.oneshot(data)
                elif step is UPDATE:
                    out = ctx.update(data)
                else:
                    out = ctx.final()
            except BaseException as exc:
                self.ops.pop(kind, None)  # FAILED -> IDLE
                audit.key_use(self, op, exc)
                if metrics.ON:
                    metrics.operation_ended(self.token.slot_id, op.mechanism, kind, op.started, exc)
                raise
        if capacity is None or len(out) > capacity:
            op.pending = (step, data, out)  # TOO_SMALL: the state stays
            if capacity is None:
                return len(out)
            raise BufferTooSmall(len(out))
        if pending is not None:
            op.pending = None
        after = OPERATION[op.mode][step]
        if after is IDLE:
            del self.ops[kind]
            if audit.KEY_USE and op.key is not None:
                audit.key_use(self, op)
            if metrics.ON:
                metrics.operation_ended(self.token.slot_id, op.mechanism, kind, op.started)
        else:
            op.mode = after
        return out

    def consume(self, kind: str, step: str, *args: Any) -> None:
        """A step with no output: ONESHOT ``ctx.oneshot(*args)`` (C_Verify), UPDATE
        ``ctx.update(*args)`` (SignUpdate, DigestUpdate ...), FINAL ``ctx.final(*args)``
        (C_VerifyFinal). ``consume(kind, DIGEST_KEY, value)`` feeds C_DigestKey (an update)."""
        move = UPDATE if step == DIGEST_KEY else step
        op = self._active(kind, move)
        try:
            getattr(op.ctx, step)(*args)
        except BaseException as exc:
            self.ops.pop(kind, None)  # FAILED -> IDLE
            audit.key_use(self, op, exc)
            if metrics.ON:
                metrics.operation_ended(self.token.slot_id, op.mechanism, kind, op.started, exc)
            raise
        if self.advance(op, move) is IDLE:
            if audit.KEY_USE:
                audit.key_use(self, op)
            if metrics.ON:
                metrics.operation_ended(self.token.slot_id, op.mechanism, kind, op.started)

    def advance(self, op: Operation, step: str) -> str:
        """The move of a delivered step (``_active`` allowed it): IDLE ends the operation."""
        after = OPERATION[op.mode][step]
        if after is IDLE:
            del self.ops[op.kind]
        else:
            op.mode = after
        return after
