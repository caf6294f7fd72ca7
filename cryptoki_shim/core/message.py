"""The message-based functions of PKCS#11 3.0 (§5.9 encrypt, §5.11 decrypt, §5.14 sign,
§5.15 verify) on a session: one *message process* per kind (C_Message*Init ... C_Message*Final),
within it one message at a time (C_EncryptMessage, or C_EncryptMessageBegin + Next...).

How it runs: a process is an ``Operation`` of its own kind in the session's ``ops`` (so it
coexists with the classic operations, ends at C_Logout, is cancelled by C_SessionCancel with
CKF_MESSAGE_*, and C_GetOperationState calls it unsaveable), whose context is a
``MessageProcess``. Each message makes a context of the *single-part* mechanism through the
key's backend (the same maker C_EncryptInit/C_SignInit use): an AEAD message is the
single-part AEAD with that message's IV and AAD, its tag split off into the caller's ``pTag``
(encrypt) or appended from it (decrypt); a signature message is one C_Sign's worth. So every
backend that runs the single-part mechanism runs its messages, and no mechanism code is new.

Rules decided here (docs/conformance.md "Message-based functions"):
* An error ends the *message* (§5.9 "terminates the current message encryption operation"),
  never the process; CKR_BUFFER_TOO_SMALL and length queries end nothing. A length query
  does no work: no IV is generated, no counter moves.
* A message in progress refuses C_*Message and C_*MessageBegin with CKR_OPERATION_ACTIVE (the
  message stays); C_Message*Final ends the process, an unfinished message with it.
* IVs (§2.13 / §2.12.4 generators): CKG_NO_GENERATE takes the caller's IV; CKG_GENERATE and
  CKG_GENERATE_RANDOM fill the non-fixed bits from the OS CSPRNG (at least 64 of them; with fewer,
  CKG_GENERATE counts instead), CKG_GENERATE_COUNTER counts from zero (§2.13: "the initial IV
  counter is zero": across processes with one key, varying the fixed part is the caller's
  duty). The full IV is written back to the caller's ``pIv``/``pNonce``. Within one encrypt
  process an IV is never used twice: a caller-supplied IV already used (by the caller or the
  generator) is CKR_MECHANISM_PARAM_INVALID, and so is an exhausted counter.
* A CKA_ALWAYS_AUTHENTICATE key (sign, decrypt) needs C_Login(CKU_CONTEXT_SPECIFIC) before
  each message, not once per process: each message is a use of the key.
"""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

from .. import audit
from ..errors import BufferTooSmall, CryptokiError
from ..mechanisms.params import CcmParams, ChachaPolyParams, GcmParams
from ..mechanisms.registry import Mechanism, MechanismEntry, check_offered
from ..spec_ints import (
    CKA_ALWAYS_AUTHENTICATE,
    CKA_DECRYPT,
    CKA_ENCRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT,
    CKF_MESSAGE_SIGN,
    CKF_MESSAGE_VERIFY,
    CKF_SIGN,
    CKF_VERIFY,
    CKG_GENERATE,
    CKG_GENERATE_COUNTER,
    CKG_GENERATE_RANDOM,
    CKG_NO_GENERATE,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_USER_NOT_LOGGED_IN,
)
from . import key_management
from .crypto_functions import CryptoFunctions, check_key
from .operations import Operation

ENCRYPT, DECRYPT, SIGN, VERIFY = "message_encrypt", "message_decrypt", "message_sign", "message_verify"

#: kind -> (mechanism flag it needs, key usage attribute, single-part context kind, context login?)
KINDS: dict[str, tuple[int, int, str, bool]] = {
    ENCRYPT: (CKF_MESSAGE_ENCRYPT, CKA_ENCRYPT, "encrypt", False),
    DECRYPT: (CKF_MESSAGE_DECRYPT, CKA_DECRYPT, "decrypt", True),
    SIGN: (CKF_SIGN, CKA_SIGN, "sign", True),
    VERIFY: (CKF_VERIFY, CKA_VERIFY, "verify", False),
}
#: The kinds whose messages carry an AEAD parameter (the others take none).
AEAD_KINDS = (ENCRYPT, DECRYPT)
#: Fewest generated bits a random IV may have (else CKG_GENERATE counts, CKG_GENERATE_RANDOM is refused).
MIN_RANDOM_BITS = 64
#: IVs remembered per encrypt process; past it, caller-supplied IVs are refused (generated
#: ones never repeat: a counter, or >= 64 random bits).
MAX_REMEMBERED_IVS = 1 << 16


def message_flags(flags: int) -> int:
    """C_GetMechanismInfo: every signature mechanism also signs and verifies messages (a
    message is one C_Sign's worth); the AEAD entries declare CKF_MESSAGE_ENCRYPT/DECRYPT."""
    if flags & CKF_SIGN:
        flags |= CKF_MESSAGE_SIGN
    if flags & CKF_VERIFY:
        flags |= CKF_MESSAGE_VERIFY
    return flags


class AeadMessageParams(NamedTuple):
    """One message's AEAD parameter (CK_GCM_MESSAGE_PARAMS, CK_CCM_MESSAGE_PARAMS,
    CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS) as Python values: the caller's IV/nonce bytes,
    the generator fields (encrypt only), the tag length in bits, the tag (decrypt only) and
    CCM's ulDataLen."""

    iv: bytes
    fixed_bits: int = 0
    generator: int = CKG_NO_GENERATE
    tag_bits: int = 128
    tag: bytes = b""
    data_len: int = 0


#: the single-part parameter type of an AEAD mechanism -> the single-part parameter of one message
_SINGLE_PART: dict[Any, Callable[[AeadMessageParams, bytes, bytes], Any]] = {
    GcmParams: lambda p, iv, aad: GcmParams(iv, aad, p.tag_bits, len(iv) * 8),
    CcmParams: lambda p, iv, aad: CcmParams(p.data_len, iv, aad, p.tag_bits // 8),
    ChachaPolyParams: lambda p, iv, aad: ChachaPolyParams(iv, aad),
}


def _invalid(why: str) -> CryptokiError:
    return CryptokiError(CKR_MECHANISM_PARAM_INVALID, why)


class Message:
    """A message in multiple parts (C_*MessageBegin ... Next): its context, the tag length,
    the bytes in and out so far, and the output of a last part kept for the retry."""

    __slots__ = ("ctx", "tag_len", "total_in", "total_out", "pending")

    def __init__(self, ctx: Any, tag_len: int = 0) -> None:
        self.ctx = ctx
        self.tag_len = tag_len
        self.total_in = 0
        self.total_out = 0
        self.pending: tuple[bytes, bytes] | None = None


class MessageProcess:
    """The context of a message process (``Operation.ctx``): how to make each message's
    context, the IVs used (encrypt), the generator's counter, the message in progress."""

    __slots__ = ("kind", "entry", "key", "maker", "param", "used", "counter", "current", "prepared", "pending",
                 "always_authenticate")

    def __init__(self, kind: str, entry: MechanismEntry, key: Any, maker: Any, param: Any) -> None:
        self.kind = kind
        self.entry = entry
        self.key = key
        self.maker = maker
        self.param = param                      # the mechanism parameter of a signature process
        self.used: set[bytes] = set()           # IVs used by this encrypt process
        self.counter = 0                        # CKG_GENERATE_COUNTER's next value
        self.current: Message | None = None
        self.prepared: Any = None               # a signature context made by Init, for the first message
        self.pending: tuple[bytes, bytes] | None = None  # a single-part signature kept for the retry
        self.always_authenticate = False        # each message needs C_Login(CKU_CONTEXT_SPECIFIC)

    # ------------------------------------------------------------------ contexts

    def signature_context(self) -> Any:
        ctx, self.prepared = self.prepared, None
        return ctx if ctx is not None else self.maker(self.entry, self.param, self.key)

    def aead_context(self, p: AeadMessageParams, iv: bytes, aad: bytes) -> Any:
        return self.maker(self.entry, _SINGLE_PART[self.entry.param](p, iv, aad), self.key)

    # ------------------------------------------------------------------ IVs

    def iv_for(self, p: AeadMessageParams) -> bytes:
        """The IV of the next encrypted message (module doc: generators, no reuse). Records it."""
        length = len(p.iv)
        bits = length * 8
        if not 0 <= p.fixed_bits <= bits:
            raise _invalid(f"ulIvFixedBits {p.fixed_bits} outside the {bits}-bit IV")
        free = bits - p.fixed_bits
        generator = p.generator
        if generator == CKG_NO_GENERATE:
            if len(self.used) >= MAX_REMEMBERED_IVS:
                raise _invalid("too many caller-supplied IVs in one process: use an IV generator or a new process")
            iv = p.iv
        elif generator not in (CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM):
            raise _invalid(f"IV generator {generator} not supported")
        else:
            if not free:
                raise _invalid("no IV bits left to generate (ulIvFixedBits covers the IV)")
            fixed = int.from_bytes(p.iv, "big") >> free << free
            random_bits = generator != CKG_GENERATE_COUNTER and free >= MIN_RANDOM_BITS
            if generator == CKG_GENERATE_RANDOM and not random_bits:
                raise _invalid(f"CKG_GENERATE_RANDOM needs >= {MIN_RANDOM_BITS} generated bits, has {free}")
            if random_bits:
                variable = int.from_bytes(os.urandom((free + 7) // 8), "big") & ((1 << free) - 1)
            else:
                if self.counter >> free:
                    raise _invalid("the IV counter is exhausted: start a new process with another fixed part")
                variable = self.counter
                self.counter += 1
            iv = (fixed | variable).to_bytes(length, "big")
        if iv in self.used:
            raise _invalid("IV already used in this message process (an IV is never reused under one key)")
        if len(self.used) < MAX_REMEMBERED_IVS:
            self.used.add(iv)
        return iv


class MessageFunctions(CryptoFunctions):
    """The message-based functions of ``Session`` (module doc)."""

    # ------------------------------------------------------------------ process

    def message_init(self, kind: str, mech: Mechanism | None, key_handle: int) -> None:
        """C_MessageEncryptInit, C_MessageDecryptInit, C_MessageSignInit, C_MessageVerifyInit:
        a NULL mechanism ends the process (and any message in it)."""
        if mech is None:
            self.cancel(kind)
            return
        if kind in self.ops:
            self.busy(kind)  # CKR_OPERATION_ACTIVE
        entry = mech.entry
        flag, usage, ctx_kind, context_login = KINDS[kind]
        if not entry.flags & flag:
            raise CryptokiError(CKR_MECHANISM_INVALID, f"mechanism {entry.mechanism:#x} has no message-based {ctx_kind}")
        if entry.legacy:  # CKM_MD5_HMAC, CKM_MD5_RSA_PKCS: only where the slot offers them
            check_offered(entry, self.token.cfg.legacy_mechanisms)
        key = self.key(key_handle)
        try:
            check_key(entry, key, usage)
            if kind == DECRYPT:
                key_management.check_decrypt(key.attrs)
            maker = self.token.backend_for(key).context_maker(ctx_kind, entry)
            process = MessageProcess(kind, entry, key, maker, mech.param)
            if kind not in AEAD_KINDS:  # the key and parameter are checked now, not at the first message
                process.prepared = maker(entry, mech.param, key)
        except CryptokiError as exc:
            audit.key_use(self, Operation(kind, None, entry.mechanism, key), exc)
            raise
        needs_login = context_login and key.attrs.get(CKA_ALWAYS_AUTHENTICATE) is True
        process.always_authenticate = needs_login
        self.ops[kind] = Operation(kind, process, entry.mechanism, key, needs_login, mech.param)

    def _message_done(self, kind: str) -> None:
        """A message was signed or decrypted: with a CKA_ALWAYS_AUTHENTICATE key the next one
        waits for its own context login (§4.9: "the user must supply the PIN for each use";
        a message is a use, the process is not)."""
        op = self.ops.get(kind)
        if op is not None and op.ctx.always_authenticate:
            op.needs_context_login = True

    def message_process(self, kind: str) -> MessageProcess:
        """The active process of ``kind``: none is CKR_OPERATION_NOT_INITIALIZED; a key
        waiting for its context login answers CKR_USER_NOT_LOGGED_IN."""
        op = self.ops.get(kind)
        if op is None:
            raise CryptokiError(CKR_OPERATION_NOT_INITIALIZED, f"no {kind.replace('_', ' ')} process")
        if op.needs_context_login:
            raise CryptokiError(CKR_USER_NOT_LOGGED_IN, "key needs C_Login(CKU_CONTEXT_SPECIFIC)")
        return op.ctx

    def message_final(self, kind: str) -> None:
        """C_MessageEncryptFinal ...: the process ends (an unfinished message with it; a key
        still waiting for its context login does not keep it)."""
        if self.ops.pop(kind, None) is None:
            raise CryptokiError(CKR_OPERATION_NOT_INITIALIZED, f"no {kind.replace('_', ' ')} process")

    def _idle(self, process: MessageProcess) -> None:
        if process.current is not None:
            raise CryptokiError(CKR_OPERATION_ACTIVE, "a multi-part message is in progress")

    def _current(self, process: MessageProcess) -> Message:
        if process.current is None:
            raise CryptokiError(CKR_OPERATION_NOT_INITIALIZED, "no message begun (C_*MessageBegin)")
        return process.current

    # ------------------------------------------------------------------ AEAD messages

    def crypt_message(self, kind: str, p: AeadMessageParams, aad: bytes, data: bytes,
                      capacity: int | None) -> tuple[bytes | int, bytes | None, bytes | None]:
        """C_EncryptMessage / C_DecryptMessage: (output or its length, the IV to write back
        (encrypt), the tag to write back (encrypt)). The output is as long as the input (the
        tag travels in the parameter), so a length query or a short buffer does no work."""
        process = self.message_process(kind)
        self._idle(process)
        if capacity is None:
            return len(data), None, None
        if capacity < len(data):
            raise BufferTooSmall(len(data))
        if kind == ENCRYPT:
            iv = process.iv_for(p)
            out = process.aead_context(p, iv, aad).oneshot(data)
            return out[:len(data)], iv, out[len(data):]
        out = process.aead_context(p, p.iv, aad).oneshot(data + p.tag)
        self._message_done(kind)
        return out, None, None

    def crypt_message_begin(self, kind: str, p: AeadMessageParams, aad: bytes) -> bytes | None:
        """C_EncryptMessageBegin / C_DecryptMessageBegin: the IV to write back (encrypt)."""
        process = self.message_process(kind)
        self._idle(process)
        iv = process.iv_for(p) if kind == ENCRYPT else p.iv
        process.current = Message(process.aead_context(p, iv, aad), p.tag_bits // 8)
        return iv if kind == ENCRYPT else None

    def crypt_message_next(self, kind: str, p: AeadMessageParams, data: bytes, last: bool,
                           capacity: int | None) -> tuple[bytes | int, bytes | None]:
        """C_EncryptMessageNext / C_DecryptMessageNext: (output or its length, the tag to write
        back at the last part of an encryption). The length is known before the work: the
        ciphertext is as long as the plaintext, and an update answers its context's bound."""
        process = self.message_process(kind)
        message = self._current(process)
        if last and p.tag_bits != message.tag_len * 8:
            process.current = None
            raise _invalid("the last part's tag length is not the one the message began with")
        ctx = message.ctx
        needed = (message.total_in + len(data) - message.total_out) if last else ctx.length_hint("update", len(data))
        if capacity is None:
            return needed, None
        if capacity < needed:
            raise BufferTooSmall(needed)
        try:
            tag = None
            if not last:
                out = ctx.update(data)
            elif kind == ENCRYPT:
                out = ctx.update(data) + ctx.final()
                cut = len(out) - message.tag_len
                out, tag = out[:cut], out[cut:]
            else:
                ctx.update(data + p.tag)
                out = ctx.final()
        except BaseException:
            process.current = None  # the message ends; the process stays
            raise
        message.total_in += len(data)
        message.total_out += len(out)
        if last:
            process.current = None
            self._message_done(kind)
        return out, tag

    # ------------------------------------------------------------------ signature messages

    def sign_message(self, data: bytes, capacity: int | None) -> bytes | int:
        """C_SignMessage: one C_Sign's worth, by the buffer protocol (a computed signature is
        kept for the retry with the same data)."""
        process = self.message_process(SIGN)
        self._idle(process)
        pending = process.pending
        if pending is not None and pending[0] == data:
            out = pending[1]
        else:
            process.pending = None
            if capacity is None and process.prepared is not None:
                hint = process.prepared.length_hint("oneshot", len(data))
                if hint is not None:
                    return hint
            out = process.signature_context().oneshot(data)
        result = self._deliver_signature(process, data, out, capacity)
        if result.__class__ is not int:
            self._message_done(SIGN)
        return result

    def _deliver_signature(self, holder: Any, data: bytes, out: bytes, capacity: int | None) -> bytes | int:
        if capacity is None or capacity < len(out):
            holder.pending = (data, out)
            if capacity is None:
                return len(out)
            raise BufferTooSmall(len(out))
        holder.pending = None
        return out

    def sign_message_begin(self) -> None:
        process = self.message_process(SIGN)
        self._idle(process)
        process.pending = None
        process.current = Message(process.signature_context())

    def sign_message_next(self, data: bytes, last: bool, capacity: int | None) -> bytes | int | None:
        """C_SignMessageNext: an update, or (``last``: pulSignatureLen not NULL) the last part
        and the signature by the buffer protocol; a retry after a length answer must bring
        the same last part (another is refused and ends the message, CKR_OPERATION_ACTIVE)."""
        process = self.message_process(SIGN)
        message = self._current(process)
        try:
            if not last:
                message.ctx.update(data)
                return None
            pending = message.pending
            if pending is not None:
                if pending[0] != data:
                    raise CryptokiError(CKR_OPERATION_ACTIVE, "another last part after the signature's length")
                out = pending[1]
            else:
                if capacity is None:
                    hint = message.ctx.length_hint("final", 0)
                    if hint is not None:
                        return hint
                if data:
                    message.ctx.update(data)
                out = message.ctx.final()
            result = self._deliver_signature(message, data, out, capacity)
        except BufferTooSmall:
            raise
        except BaseException:
            process.current = None
            raise
        if result.__class__ is not int:
            process.current = None
            self._message_done(SIGN)
        return result

    def verify_message(self, data: bytes, signature: bytes) -> None:
        """C_VerifyMessage: one C_Verify's worth."""
        process = self.message_process(VERIFY)
        self._idle(process)
        process.signature_context().oneshot(data, signature)

    def verify_message_begin(self) -> None:
        process = self.message_process(VERIFY)
        self._idle(process)
        process.current = Message(process.signature_context())

    def verify_message_next(self, data: bytes, signature: bytes | None) -> None:
        """C_VerifyMessageNext: an update, or (a signature given) the last part and the check."""
        process = self.message_process(VERIFY)
        message = self._current(process)
        try:
            if data or signature is None:
                message.ctx.update(data)
            if signature is not None:
                process.current = None
                message.ctx.final(signature)
        except BaseException:
            process.current = None
            raise
