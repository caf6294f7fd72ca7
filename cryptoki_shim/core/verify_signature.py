"""Verification with the signature given first (PKCS#11 3.2: C_VerifySignatureInit,
C_VerifySignature, C_VerifySignatureUpdate, C_VerifySignatureFinal).

3.2 lets an application hand the signature to the module before the data, so that a
streaming verification (Update ... Final) needs no signature at the end. It is its own
operation, ``KIND`` in the session's ``ops`` (one per session, by the same rules of
``states.OPERATION`` as every other kind): a C_VerifyInit operation and a
C_VerifySignatureInit operation may be active at the same time, and C_SessionCancel with
CKF_VERIFY ends both (``states.KINDS``).

Nothing here verifies: the operation is a C_VerifyInit context (the same mechanism and key
checks, the same backend, the same audit) whose ``oneshot(data, signature)`` and
``final(signature)`` receive the signature kept at init. These are functions of a session,
not methods of ``Session``: the verify machinery they reuse is all public there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .states import FINAL, ONESHOT, UPDATE

if TYPE_CHECKING:
    from ..mechanisms.registry import Mechanism
    from .session import Session

#: The operation kind in ``Session.ops`` (and ``states.KINDS``).
KIND = "verify_signature"
#: The kind whose context does the work.
VERIFY = "verify"


class PresuppliedSignature:
    """A verify context with its signature: the steps of C_VerifySignature* take none."""

    __slots__ = ("ctx", "signature")

    def __init__(self, ctx: Any, signature: bytes) -> None:
        self.ctx = ctx
        self.signature = signature

    def oneshot(self, data: bytes) -> None:
        self.ctx.oneshot(data, self.signature)

    def update(self, data: bytes) -> None:
        self.ctx.update(data)

    def final(self) -> None:
        self.ctx.final(self.signature)


def init(session: Session, mech: Mechanism | None, key_handle: int, signature: bytes) -> None:
    """C_VerifySignatureInit. A NULL mechanism cancels the operation (as C_VerifyInit does).

    The verify operation is started by ``operation_init("verify", ...)`` with the session's
    own C_VerifyInit operation (if any) put aside and back, whatever happens: the two are
    independent, and every check of C_VerifyInit applies in its order."""
    if mech is None:
        session.cancel(KIND)
        return
    if KIND in session.ops:
        session.busy(KIND)  # CKR_OPERATION_ACTIVE, the operation stays
    ops = session.ops
    own_verify = ops.pop(VERIFY, None)
    try:
        session.operation_init(VERIFY, mech, key_handle)
        op = ops.pop(VERIFY)
    finally:
        if own_verify is not None:
            ops[VERIFY] = own_verify
    op.kind = KIND
    op.ctx = PresuppliedSignature(op.ctx, signature)
    ops[KIND] = op


def verify(session: Session, data: bytes) -> None:
    """C_VerifySignature: single-part; CKR_SIGNATURE_INVALID / _LEN_RANGE end it."""
    session.consume(KIND, ONESHOT, data)


def update(session: Session, part: bytes) -> None:
    """C_VerifySignatureUpdate."""
    session.consume(KIND, UPDATE, part)


def final(session: Session) -> None:
    """C_VerifySignatureFinal: the verdict on the parts against the signature of init."""
    session.consume(KIND, FINAL)
