"""Message-based entries of PKCS#11 3.0 (§5.9, §5.11, §5.14, §5.15): thin readers around the
``Session`` methods of ``core/message.py``.

What this layer adds: the per-message AEAD parameter structs, read by the mechanism of the
active process (CK_GCM_MESSAGE_PARAMS, CK_CCM_MESSAGE_PARAMS,
CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS), and the write-back of what the core returns into the
caller's struct: the generated IV into ``pIv``/``pNonce``, the tag into ``pTag``/``pMAC``.
The mechanism given to C_MessageEncryptInit/C_MessageDecryptInit is read for its type only:
its parameter, if any, is the per-message struct of the spec's example and is not used
(each message brings its own). The signature mechanisms take their parameter at Init (PSS,
EdDSA ...); their messages take none (ulParameterLen must be 0).

An error of a C_*MessageNext ends the message, whichever layer raised it (§5.9 "terminates
the current message encryption operation"), except CKR_BUFFER_TOO_SMALL.
"""

from __future__ import annotations

from typing import Any, Callable

from .. import runtime
from ..core import message as M
from ..core.message import AeadMessageParams
from ..core.module import MODULE
from ..errors import BufferTooSmall, CryptokiError
from ..mechanisms import registry
from ..mechanisms.chacha import TAG_BYTES, nonce_bytes
from ..mechanisms.params import CcmParams, ChachaPolyParams, GcmParams
from ..mechanisms.registry import Mechanism, MechanismEntry
from ..spec_ints import (
    CKF_END_OF_MESSAGE,
    CKF_SIGN,
    CKF_VERIFY,
    CKR_ARGUMENTS_BAD,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
)
from . import limits
from .crypto import read_mechanism
from .entry import entry
from .marshal import deliver, read_buffer
from .params import _struct

#: Where a message's IV and tag go back to: (pointer, length) or None.
Out = tuple[Any, int] | None


def _invalid(why: str) -> CryptokiError:
    return CryptokiError(CKR_MECHANISM_PARAM_INVALID, why)


def _bytes(p: Any, n: int, what: str) -> bytes:
    return read_buffer(p, n, limits.PARAMETER, what, runtime.ffi)


def _out(p: Any, n: int, what: str) -> Out:
    if n and p == runtime.NULL:
        raise _invalid(f"{what} is NULL")
    return (p, n) if n else None


def _gcm(s: Any, encrypt: bool) -> tuple[AeadMessageParams, Out, Out]:
    tag_bits = int(s.ulTagBits)
    tag_len = tag_bits // 8
    p = AeadMessageParams(_bytes(s.pIv, s.ulIvLen, "pIv"), int(s.ulIvFixedBits), int(s.ivGenerator), tag_bits,
                          b"" if encrypt else _bytes(s.pTag, tag_len, "pTag"))
    return p, _out(s.pIv, int(s.ulIvLen), "pIv"), _out(s.pTag, tag_len, "pTag")


def _ccm(s: Any, encrypt: bool) -> tuple[AeadMessageParams, Out, Out]:
    mac_len = int(s.ulMACLen)
    p = AeadMessageParams(_bytes(s.pNonce, s.ulNonceLen, "pNonce"), int(s.ulNonceFixedBits), int(s.nonceGenerator),
                          mac_len * 8, b"" if encrypt else _bytes(s.pMAC, mac_len, "pMAC"), int(s.ulDataLen))
    return p, _out(s.pNonce, int(s.ulNonceLen), "pNonce"), _out(s.pMAC, mac_len, "pMAC")


def _chacha(s: Any, encrypt: bool) -> tuple[AeadMessageParams, Out, Out]:
    n = nonce_bytes(int(s.ulNonceLen))
    p = AeadMessageParams(_bytes(s.pNonce, n, "pNonce"), tag_bits=TAG_BYTES * 8,
                          tag=b"" if encrypt else _bytes(s.pTag, TAG_BYTES, "pTag"))
    return p, None, _out(s.pTag, TAG_BYTES, "pTag")


#: single-part parameter type of the process's mechanism -> (message struct, its reader)
_READERS: dict[Any, tuple[str, Callable[[Any, bool], tuple[AeadMessageParams, Out, Out]]]] = {
    GcmParams: ("CK_GCM_MESSAGE_PARAMS", _gcm),
    CcmParams: ("CK_CCM_MESSAGE_PARAMS", _ccm),
    ChachaPolyParams: ("CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS", _chacha),
}


def _read_aead(ent: MechanismEntry, p_param: Any, length: int, encrypt: bool) -> tuple[AeadMessageParams, Out, Out]:
    ctype, reader = _READERS[ent.param]
    return reader(_struct(runtime.ffi, p_param, length, ctype), encrypt)


def _no_param(length: int) -> None:
    if length:
        raise _invalid("signature messages take no parameter")


def _write(where: Out, value: bytes | None) -> None:
    if where is not None and value is not None:
        runtime.ffi.memmove(where[0], value, min(where[1], len(value)))


class _Producer:
    """``deliver``'s producer for one call: ``run(capacity)`` does the work (or answers the length)."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[int | None], bytes | int]) -> None:
        self.run = run

    def produce(self, capacity: int | None, kind: str = "", step: str = "", data: bytes = b"") -> bytes | int:
        return self.run(capacity)


def _end_message(session: Any, kind: str, exc: BaseException) -> None:
    """Any error but CKR_BUFFER_TOO_SMALL ends the message in progress (not the process)."""
    if exc.__class__ is not BufferTooSmall:
        process = session.ops.get(kind)
        if process is not None:
            process.ctx.current = None


# ---------------------------------------------------------------------- init / final


def _aead_mechanism(p_mechanism: Any, need: int) -> Mechanism | None:
    """The mechanism of C_MessageEncryptInit/C_MessageDecryptInit: its type only (module doc)."""
    if p_mechanism == runtime.NULL:
        return None
    ent = registry.lookup(int(p_mechanism.mechanism))
    if not ent.flags & need or ent.param not in _READERS:
        raise CryptokiError(CKR_MECHANISM_INVALID, f"mechanism {ent.mechanism:#x} has no message-based function here")
    return Mechanism(ent, None)


def _init(kind: str) -> Callable[[int, Any, int], None]:
    need = M.KINDS[kind][0]

    def init(h_session: int, p_mechanism: Any, h_key: int) -> None:
        session = MODULE.sessions[h_session]
        if kind in M.AEAD_KINDS:
            mech = _aead_mechanism(p_mechanism, need)
        else:
            mech = read_mechanism(p_mechanism, CKF_SIGN if kind == M.SIGN else CKF_VERIFY)
        with session.lock:
            session.message_init(kind, mech, h_key)

    return init


def _final(kind: str) -> Callable[[int], None]:
    def final(h_session: int) -> None:
        session = MODULE.sessions[h_session]
        with session.lock:
            session.message_final(kind)

    return final


for _kind, (_init_name, _final_name) in {
    M.ENCRYPT: ("C_MessageEncryptInit", "C_MessageEncryptFinal"),
    M.DECRYPT: ("C_MessageDecryptInit", "C_MessageDecryptFinal"),
    M.SIGN: ("C_MessageSignInit", "C_MessageSignFinal"),
    M.VERIFY: ("C_MessageVerifyInit", "C_MessageVerifyFinal"),
}.items():
    entry(_init_name)(_init(_kind))
    entry(_final_name)(_final(_kind))


# ---------------------------------------------------------------------- encrypt / decrypt


def _crypt_message(kind: str) -> Callable[..., None]:
    limit = limits.DATA if kind == M.ENCRYPT else limits.ENCRYPTED_DATA

    def crypt(h_session: int, p_param: Any, param_len: int, p_aad: Any, aad_len: int, p_in: Any, in_len: int,
              p_out: Any, p_out_len: Any) -> None:
        session = MODULE.sessions[h_session]
        with session.lock:
            process = session.message_process(kind)
            params, iv_at, tag_at = _read_aead(process.entry, p_param, param_len, kind == M.ENCRYPT)
            aad = read_buffer(p_aad, aad_len, limits.AAD)
            data = read_buffer(p_in, in_len, limit)
            back: list[bytes | None] = [None, None]

            def run(capacity: int | None) -> bytes | int:
                out, back[0], back[1] = session.crypt_message(kind, params, aad, data, capacity)
                return out

            deliver(p_out, p_out_len, _Producer(run))
            _write(iv_at, back[0])
            _write(tag_at, back[1])

    return crypt


def _crypt_begin(kind: str) -> Callable[..., None]:
    def begin(h_session: int, p_param: Any, param_len: int, p_aad: Any, aad_len: int) -> None:
        session = MODULE.sessions[h_session]
        with session.lock:
            process = session.message_process(kind)
            params, iv_at, _tag_at = _read_aead(process.entry, p_param, param_len, kind == M.ENCRYPT)
            aad = read_buffer(p_aad, aad_len, limits.AAD)
            _write(iv_at, session.crypt_message_begin(kind, params, aad))

    return begin


def _crypt_next(kind: str) -> Callable[..., None]:
    limit = limits.DATA if kind == M.ENCRYPT else limits.ENCRYPTED_DATA

    def next_(h_session: int, p_param: Any, param_len: int, p_in: Any, in_len: int, p_out: Any, p_out_len: Any,
              flags: int) -> None:
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                process = session.message_process(kind)
                if flags & ~CKF_END_OF_MESSAGE:
                    raise CryptokiError(CKR_ARGUMENTS_BAD, f"flags {flags:#x}")
                last = bool(flags & CKF_END_OF_MESSAGE)
                encrypt = kind == M.ENCRYPT
                # a decryption's tag is read at its last part only (read "as encrypt": no tag)
                params, _iv_at, tag_at = _read_aead(process.entry, p_param, param_len, encrypt or not last)
                data = read_buffer(p_in, in_len, limit)
                back: list[bytes | None] = [None]

                def run(capacity: int | None) -> bytes | int:
                    out, back[0] = session.crypt_message_next(kind, params, data, last, capacity)
                    return out

                deliver(p_out, p_out_len, _Producer(run))
                _write(tag_at, back[0])
            except BaseException as exc:
                _end_message(session, kind, exc)
                raise

    return next_


entry("C_EncryptMessage")(_crypt_message(M.ENCRYPT))
entry("C_EncryptMessageBegin")(_crypt_begin(M.ENCRYPT))
entry("C_EncryptMessageNext")(_crypt_next(M.ENCRYPT))
entry("C_DecryptMessage")(_crypt_message(M.DECRYPT))
entry("C_DecryptMessageBegin")(_crypt_begin(M.DECRYPT))
entry("C_DecryptMessageNext")(_crypt_next(M.DECRYPT))


# ---------------------------------------------------------------------- sign / verify


@entry("C_SignMessage")
def C_SignMessage(h_session: int, p_param: Any, param_len: int, p_data: Any, data_len: int, p_sig: Any,
                  p_sig_len: Any) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.message_process(M.SIGN)
        _no_param(param_len)
        data = read_buffer(p_data, data_len, limits.DATA)
        deliver(p_sig, p_sig_len, _Producer(lambda capacity: session.sign_message(data, capacity)))


@entry("C_SignMessageBegin")
def C_SignMessageBegin(h_session: int, p_param: Any, param_len: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.message_process(M.SIGN)
        _no_param(param_len)
        session.sign_message_begin()


@entry("C_SignMessageNext")
def C_SignMessageNext(h_session: int, p_param: Any, param_len: int, p_data: Any, data_len: int, p_sig: Any,
                      p_sig_len: Any) -> None:
    """§5.14: a NULL pulSignatureLen means more parts follow; otherwise this is the last part
    and the signature comes back by the buffer protocol."""
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            session.message_process(M.SIGN)
            _no_param(param_len)
            data = read_buffer(p_data, data_len, limits.DATA)
            if p_sig_len == runtime.NULL:
                session.sign_message_next(data, False, None)
                return
            deliver(p_sig, p_sig_len, _Producer(lambda capacity: session.sign_message_next(data, True, capacity)))
        except BaseException as exc:
            _end_message(session, M.SIGN, exc)
            raise


@entry("C_VerifyMessage")
def C_VerifyMessage(h_session: int, p_param: Any, param_len: int, p_data: Any, data_len: int, p_sig: Any,
                    sig_len: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.message_process(M.VERIFY)
        _no_param(param_len)
        session.verify_message(read_buffer(p_data, data_len, limits.DATA),
                               read_buffer(p_sig, sig_len, limits.SIGNATURE))


@entry("C_VerifyMessageBegin")
def C_VerifyMessageBegin(h_session: int, p_param: Any, param_len: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.message_process(M.VERIFY)
        _no_param(param_len)
        session.verify_message_begin()


@entry("C_VerifyMessageNext")
def C_VerifyMessageNext(h_session: int, p_param: Any, param_len: int, p_data: Any, data_len: int, p_sig: Any,
                        sig_len: int) -> None:
    """§5.15: a NULL pSignature means more parts follow; otherwise the last part and the check."""
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            session.message_process(M.VERIFY)
            _no_param(param_len)
            data = read_buffer(p_data, data_len, limits.DATA)
            signature = None if p_sig == runtime.NULL else read_buffer(p_sig, sig_len, limits.SIGNATURE)
            session.verify_message_next(data, signature)
        except BaseException as exc:
            _end_message(session, M.VERIFY, exc)
            raise
