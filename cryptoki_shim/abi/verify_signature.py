"""PKCS#11 3.2 verification with the signature first: C_VerifySignatureInit,
C_VerifySignature, C_VerifySignatureUpdate, C_VerifySignatureFinal.

Readers around ``core.verify_signature`` (the operation, its own kind in the session). As
in every C_Verify* entry: a mechanism without CKF_VERIFY is CKR_MECHANISM_INVALID before its
parameter is read, a NULL mechanism cancels, and an argument error of a step ends the
operation (§5.2: every error but CKR_BUFFER_TOO_SMALL does; there is no output here).
"""

from __future__ import annotations

from typing import Any

from ..core import verify_signature as operation
from ..core.module import MODULE
from ..spec_ints import CKF_VERIFY
from . import limits
from .crypto import read_mechanism
from .entry import entry
from .marshal import read_buffer


@entry("C_VerifySignatureInit")
def C_VerifySignatureInit(h_session: int, p_mechanism: Any, h_key: int, p_signature: Any, sig_len: int) -> None:
    session = MODULE.sessions[h_session]
    mech = read_mechanism(p_mechanism, CKF_VERIFY)
    signature = read_buffer(p_signature, sig_len, limits.SIGNATURE) if mech is not None else b""
    with session.lock:
        operation.init(session, mech, h_key, signature)


@entry("C_VerifySignature")
def C_VerifySignature(h_session: int, p_data: Any, data_len: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            operation.verify(session, read_buffer(p_data, data_len, limits.DATA))
        except BaseException as exc:
            session.failed(operation.KIND, exc)
            raise


@entry("C_VerifySignatureUpdate")
def C_VerifySignatureUpdate(h_session: int, p_part: Any, part_len: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            operation.update(session, read_buffer(p_part, part_len, limits.DATA))
        except BaseException as exc:
            session.failed(operation.KIND, exc)
            raise


@entry("C_VerifySignatureFinal")
def C_VerifySignatureFinal(h_session: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            operation.final(session)
        except BaseException as exc:
            session.failed(operation.KIND, exc)
            raise
