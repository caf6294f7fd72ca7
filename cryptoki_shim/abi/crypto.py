"""Cryptographic entries (§5.8–§5.15): thin readers around ``Session`` methods.

Every multi-part family has the same four shapes, so the entries are made from one table
(``_KINDS``) instead of being written out eight times.
"""

from __future__ import annotations

from typing import Any

from .. import spec
from ..spec_ints import (
    CKF_DECRYPT,
    CKF_DERIVE,
    CKF_DIGEST,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_SIGN_RECOVER,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_VERIFY_RECOVER,
    CKF_WRAP,
    CKR_ARGUMENTS_BAD,
    CKR_MECHANISM_INVALID,
    CKR_SAVED_STATE_INVALID,
)
from ..core.crypto_functions import DUAL
from ..core.module import MODULE
from ..core.states import FINAL, ONESHOT, UPDATE
from ..errors import CryptokiError
from ..mechanisms import registry
from ..mechanisms.registry import Mechanism, MechanismEntry
from .. import runtime
from . import limits
from .entry import entry
from .marshal import Fixed, deliver, read_buffer, read_template, require, require_template
from .params import Reader, param_reader, read_param


_PLAIN: dict[int, Mechanism] = {}
_WITH_PARAM: dict[int, tuple[MechanismEntry, Reader]] = {}
CKR_OK = 0

#: The limit of each operation kind's input (decrypt reads ciphertext: its own CKR).
_INPUT = {"sign": limits.DATA, "verify": limits.DATA, "encrypt": limits.DATA, "digest": limits.DATA,
          "decrypt": limits.ENCRYPTED_DATA, "sign_recover": limits.DATA, "verify_recover": limits.SIGNATURE}
#: The capability flag each operation kind needs of its mechanism.
_NEEDS = {"sign": CKF_SIGN, "verify": CKF_VERIFY, "encrypt": CKF_ENCRYPT, "decrypt": CKF_DECRYPT,
          "sign_recover": CKF_SIGN_RECOVER, "verify_recover": CKF_VERIFY_RECOVER}


def _capable(entry: MechanismEntry, need: int) -> None:
    if not entry.flags & need:
        raise CryptokiError(CKR_MECHANISM_INVALID, f"{spec.ckm_name(entry.mechanism)} cannot do this function")


def read_mechanism(p_mechanism: Any, need: int) -> Mechanism | None:
    """A CK_MECHANISM as (registry entry, parsed parameter); NULL -> None (3.0 cancel).

    ``need`` is the CKF_* capability the calling function needs: a mechanism without it is
    CKR_MECHANISM_INVALID before its parameter is read (issue 23 item 7: C_SignInit with
    CKM_RSA_PKCS_OAEP is "cannot sign", whatever its parameter).

    This runs on every C_*Init, so the mechanisms seen before skip the registry: one
    without a parameter is one shared immutable value, one with a parameter goes straight
    to its struct reader (the same one ``read_param`` chose the first time).
    """
    if p_mechanism == runtime.NULL:
        return None
    mech = p_mechanism.mechanism
    length = p_mechanism.ulParameterLen
    if length:
        known = _WITH_PARAM.get(mech)
        if known is not None:
            if not known[0].flags & need:
                _capable(known[0], need)
            return tuple.__new__(Mechanism, (known[0], known[1](runtime.ffi, p_mechanism.pParameter, length)))
    else:
        plain = _PLAIN.get(mech)
        if plain is not None:
            if not plain.entry.flags & need:
                _capable(plain.entry, need)
            return plain
    ent = registry.lookup(mech)
    _capable(ent, need)
    param = read_param(runtime.ffi, ent, p_mechanism.pParameter, length)
    if param is None and not length and ent.param is None:
        _PLAIN[mech] = plain = Mechanism(ent, None)
        return plain
    if length:
        reader = param_reader(ent)
        if reader is not None:
            _WITH_PARAM[mech] = (ent, reader)
    return tuple.__new__(Mechanism, (ent, param))


def _mechanism(p_mechanism: Any, need: int) -> Mechanism:
    mech = read_mechanism(p_mechanism, need)
    if mech is None:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL mechanism")
    return mech


# ---------------------------------------------------------------------- sign/verify/encrypt/decrypt
# The operation entries are the hot path of every client: they are attached ``direct`` (no
# wrapper frame; an exception reaches cffi's onerror, which maps it the same way), so each
# returns CKR_OK itself. ``MODULE.sessions[h]`` is the one session lookup of every entry
# (``core.module.Sessions``): a known handle costs one dict lookup; anything else (unknown
# handle, not initialized: the dict is empty) gets its CKR_* from ``Sessions.__missing__``.


def _init(kind: str):
    need = _NEEDS[kind]

    def init(h_session: int, p_mechanism: Any, h_key: int) -> int:
        session = MODULE.sessions[h_session]
        mech = read_mechanism(p_mechanism, need)
        with session.lock:
            session.operation_init(kind, mech, h_key)
        return CKR_OK

    return init


def _oneshot(kind: str):
    limit = _INPUT[kind]

    def oneshot(h_session: int, p_in: Any, in_len: int, p_out: Any, p_out_len: Any) -> int:
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                deliver(p_out, p_out_len, session, kind, ONESHOT, read_buffer(p_in, in_len, limit))
            except BaseException as exc:
                session.failed(kind, exc)  # an argument error ends the operation too
                raise
        return CKR_OK

    return oneshot


def _update_out(kind: str):
    limit = _INPUT[kind]

    def update(h_session: int, p_in: Any, in_len: int, p_out: Any, p_out_len: Any) -> int:
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                deliver(p_out, p_out_len, session, kind, UPDATE, read_buffer(p_in, in_len, limit))
            except BaseException as exc:
                session.failed(kind, exc)
                raise
        return CKR_OK

    return update


def _update(kind: str):
    limit = _INPUT[kind]

    def update(h_session: int, p_in: Any, in_len: int) -> int:
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                session.consume(kind, UPDATE, read_buffer(p_in, in_len, limit))
            except BaseException as exc:
                session.failed(kind, exc)
                raise
        return CKR_OK

    return update


def _final(kind: str):
    def final(h_session: int, p_out: Any, p_out_len: Any) -> int:
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                deliver(p_out, p_out_len, session, kind, FINAL, b"")
            except BaseException as exc:
                session.failed(kind, exc)
                raise
        return CKR_OK

    return final


for _kind, _names in {
    "sign": ("C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal"),
    "encrypt": ("C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal"),
    "decrypt": ("C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal"),
}.items():
    entry(_names[0], direct=True)(_init(_kind))
    entry(_names[1], direct=True)(_oneshot(_kind))
    entry(_names[2], direct=True)((_update if _kind == "sign" else _update_out)(_kind))
    entry(_names[3], direct=True)(_final(_kind))

entry("C_VerifyInit", direct=True)(_init("verify"))
# §5.13.7 / §5.15.6: single-part only; C_VerifyRecover's input is the signature, its output the data
entry("C_SignRecoverInit", direct=True)(_init("sign_recover"))
entry("C_SignRecover", direct=True)(_oneshot("sign_recover"))
entry("C_VerifyRecoverInit", direct=True)(_init("verify_recover"))
entry("C_VerifyRecover", direct=True)(_oneshot("verify_recover"))
entry("C_VerifyUpdate", direct=True)(_update("verify"))


@entry("C_Verify", direct=True)
def C_Verify(h_session: int, p_data: Any, data_len: int, p_sig: Any, sig_len: int) -> int:
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            session.verify(read_buffer(p_data, data_len, limits.DATA), read_buffer(p_sig, sig_len, limits.SIGNATURE))
        except BaseException as exc:
            session.failed("verify", exc)
            raise
    return CKR_OK


@entry("C_VerifyFinal", direct=True)
def C_VerifyFinal(h_session: int, p_sig: Any, sig_len: int) -> int:
    session = MODULE.sessions[h_session]
    with session.lock:
        try:
            session.verify_final(read_buffer(p_sig, sig_len, limits.SIGNATURE))
        except BaseException as exc:
            session.failed("verify", exc)
            raise
    return CKR_OK


# ---------------------------------------------------------------------- digest


@entry("C_DigestInit", direct=True)
def C_DigestInit(h_session: int, p_mechanism: Any) -> int:
    session = MODULE.sessions[h_session]
    mech = read_mechanism(p_mechanism, CKF_DIGEST)
    with session.lock:
        session.digest_init(mech)
    return CKR_OK


entry("C_Digest", direct=True)(_oneshot("digest"))
entry("C_DigestUpdate", direct=True)(_update("digest"))
entry("C_DigestFinal", direct=True)(_final("digest"))


@entry("C_DigestKey")
def C_DigestKey(h_session: int, h_key: int) -> None:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.digest_key(h_key)


# ---------------------------------------------------------------------- dual-function updates


class _Dual:
    """``deliver``'s producer for a dual-function update (``Session.dual_update``)."""

    __slots__ = ("session", "name")

    def __init__(self, session: Any, name: str) -> None:
        self.session, self.name = session, name

    def produce(self, capacity: int | None, kind: str, step: str, data: bytes) -> bytes | int:
        return self.session.dual_update(self.name, capacity, data)


def _dual(name: str):
    producer, consumer, _takes_input = DUAL[name]
    limit = _INPUT[producer]

    def dual(h_session: int, p_in: Any, in_len: int, p_out: Any, p_out_len: Any) -> None:
        """Any error but CKR_BUFFER_TOO_SMALL ends both operations (§5.2, each one's step)."""
        session = MODULE.sessions[h_session]
        with session.lock:
            try:
                deliver(p_out, p_out_len, _Dual(session, name), "", UPDATE, read_buffer(p_in, in_len, limit))
            except BaseException as exc:
                session.failed(producer, exc)
                session.failed(consumer, exc)
                raise

    return dual


for _name in DUAL:
    entry(_name)(_dual(_name))


# ---------------------------------------------------------------------- keys


@entry("C_GenerateKey", direct=True)
def C_GenerateKey(h_session: int, p_mechanism: Any, p_template: Any, count: int, ph_key: Any) -> int:
    session = MODULE.sessions[h_session]
    require(ph_key, "key handle pointer")  # argument checks before the mechanism's (item 7)
    require_template(p_template, count)
    mech = _mechanism(p_mechanism, CKF_GENERATE)
    template = read_template(p_template, count)
    with session.lock:
        ph_key[0] = session.generate_key(mech, template)
    return CKR_OK


@entry("C_GenerateKeyPair", direct=True)
def C_GenerateKeyPair(h_session: int, p_mechanism: Any, p_pub: Any, pub_count: int, p_priv: Any,
                      priv_count: int, ph_pub: Any, ph_priv: Any) -> int:
    session = MODULE.sessions[h_session]
    require(ph_pub, "public key handle pointer")
    require(ph_priv, "private key handle pointer")
    require_template(p_pub, pub_count)
    require_template(p_priv, priv_count)
    mech = _mechanism(p_mechanism, CKF_GENERATE_KEY_PAIR)
    pub, priv = read_template(p_pub, pub_count), read_template(p_priv, priv_count)
    with session.lock:
        ph_pub[0], ph_priv[0] = session.generate_key_pair(mech, pub, priv)
    return CKR_OK


@entry("C_WrapKey")
def C_WrapKey(h_session: int, p_mechanism: Any, h_wrapping: int, h_key: int, p_out: Any, p_out_len: Any) -> None:
    session = MODULE.sessions[h_session]
    require(p_out_len, "length pointer")
    mech = _mechanism(p_mechanism, CKF_WRAP)
    with session.lock:
        wrapped = session.wrap_key(mech, h_wrapping, h_key)
    deliver(p_out, p_out_len, Fixed(wrapped))


@entry("C_UnwrapKey")
def C_UnwrapKey(h_session: int, p_mechanism: Any, h_unwrapping: int, p_wrapped: Any, wrapped_len: int,
                p_template: Any, count: int, ph_key: Any) -> None:
    session = MODULE.sessions[h_session]
    require(ph_key, "key handle pointer")
    wrapped = read_buffer(p_wrapped, wrapped_len, limits.WRAPPED_KEY)
    require_template(p_template, count)
    mech = _mechanism(p_mechanism, CKF_UNWRAP)
    template = read_template(p_template, count)
    with session.lock:
        ph_key[0] = session.unwrap_key(mech, h_unwrapping, wrapped, template)


@entry("C_DeriveKey")
def C_DeriveKey(h_session: int, p_mechanism: Any, h_base: int, p_template: Any, count: int, ph_key: Any) -> None:
    session = MODULE.sessions[h_session]
    require(ph_key, "key handle pointer")
    require_template(p_template, count)
    mech = _mechanism(p_mechanism, CKF_DERIVE)
    template = read_template(p_template, count)
    with session.lock:
        ph_key[0] = session.derive_key(mech, h_base, template)


# ---------------------------------------------------------------------- random


@entry("C_SeedRandom")
def C_SeedRandom(h_session: int, p_seed: Any, seed_len: int) -> None:
    """Mixes the seed into the OS pool (``Session.seed_random``)."""
    session = MODULE.sessions[h_session]
    session.seed_random(read_buffer(p_seed, seed_len, limits.SEED))


@entry("C_GenerateRandom")
def C_GenerateRandom(h_session: int, p_out: Any, n: int) -> None:
    session = MODULE.sessions[h_session]
    if n and p_out == runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL output buffer")
    data = session.generate_random(n)
    if n:
        runtime.ffi.memmove(p_out, data, n)


# ---------------------------------------------------------------------- operation state


#: A saved state holds at most a buffered EdDSA message (hex) and a few digest structs.
_SAVED_STATE = limits.Limit(2 * limits.DATA.size + 64 * 1024, CKR_SAVED_STATE_INVALID,
                            CKR_ARGUMENTS_BAD, "saved operation state")


@entry("C_GetOperationState")
def C_GetOperationState(h_session: int, p_state: Any, p_state_len: Any) -> None:
    """§5.6.11: the session's active digest/HMAC/sign/verify operations, sealed and bound to
    this token, process and session owner (``core/opstate.py``); NULL buffer -> length."""
    from ..core import opstate

    session = MODULE.sessions[h_session]
    require(p_state_len, "state length pointer")
    with session.lock:
        state = opstate.get_operation_state(session)
    deliver(p_state, p_state_len, Fixed(state))


@entry("C_SetOperationState")
def C_SetOperationState(h_session: int, p_state: Any, state_len: int, h_encryption_key: int,
                        h_authentication_key: int) -> None:
    """§5.6.12: continue saved operations in this session (``core/opstate.py``)."""
    from ..core import opstate

    session = MODULE.sessions[h_session]
    state = read_buffer(p_state, state_len, _SAVED_STATE)
    with session.lock:
        opstate.set_operation_state(session, state, h_encryption_key, h_authentication_key)
