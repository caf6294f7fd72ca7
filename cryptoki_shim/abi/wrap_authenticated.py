"""PKCS#11 3.2 authenticated key wrapping: C_WrapKeyAuthenticated, C_UnwrapKeyAuthenticated.

They are C_WrapKey / C_UnwrapKey with associated data bound to the wrapped key: an AEAD
mechanism authenticates it, and unwrapping with other associated data fails. So they are
made of C_WrapKey's and C_UnwrapKey's core functions (``Session.wrap_key`` /
``unwrap_key``: every key check, CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE, the audit record),
called with a mechanism whose AAD is the call's associated data. Nothing is new but how the
associated data reaches the mechanism, which ``AUTHENTICATED`` says per mechanism.

The rules this token decided (docs/conformance.md):
* only the AEAD wrapping mechanisms in ``AUTHENTICATED`` are accepted (CKM_AES_GCM, with a
  CK_GCM_PARAMS); any other mechanism is CKR_MECHANISM_INVALID, even one C_WrapKey takes;
* the associated data is pAssociatedData alone: a CK_GCM_PARAMS with its own pAAD is
  CKR_MECHANISM_PARAM_INVALID (two AADs, one of which the application might not expect to
  be bound, would be ambiguous);
* what is wrapped is what C_WrapKey with that AAD wraps: the key's value, encrypted and
  tagged (an unwrap of a failed tag is CKR_WRAPPED_KEY_INVALID, as C_UnwrapKey answers).
"""

from __future__ import annotations

from typing import Any, Callable

from ..core.module import MODULE
from ..errors import CryptokiError
from ..mechanisms.params import GcmParams
from ..mechanisms.registry import Mechanism
from ..spec_ints import (
    CKF_UNWRAP,
    CKF_WRAP,
    CKM_AES_GCM,
    CKR_ARGUMENTS_BAD,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
)
from .. import spec
from . import limits
from .crypto import read_mechanism
from .entry import entry
from .marshal import Fixed, deliver, read_buffer, read_template, require, require_template


def _gcm(param: GcmParams, associated_data: bytes) -> GcmParams:
    if param.aad:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID,
                            "authenticated wrapping takes the AAD from pAssociatedData, not CK_GCM_PARAMS.pAAD")
    return param._replace(aad=associated_data)


#: mechanism -> the parameter with the call's associated data as its AAD.
AUTHENTICATED: dict[int, Callable[[Any, bytes], Any]] = {
    CKM_AES_GCM: _gcm,
}


def _authenticated(p_mechanism: Any, need: int, associated_data: bytes) -> Mechanism:
    mech = read_mechanism(p_mechanism, need)
    if mech is None:
        raise CryptokiError(CKR_ARGUMENTS_BAD, "NULL mechanism")
    bind = AUTHENTICATED.get(mech.entry.mechanism)
    if bind is None:
        raise CryptokiError(CKR_MECHANISM_INVALID,
                            f"{spec.ckm_name(mech.entry.mechanism)} is no authenticated wrapping mechanism")
    return Mechanism(mech.entry, bind(mech.param, associated_data))


@entry("C_WrapKeyAuthenticated")
def C_WrapKeyAuthenticated(h_session: int, p_mechanism: Any, h_wrapping: int, h_key: int, p_aad: Any,
                           aad_len: int, p_out: Any, p_out_len: Any) -> None:
    session = MODULE.sessions[h_session]
    require(p_out_len, "length pointer")
    associated_data = read_buffer(p_aad, aad_len, limits.DATA)
    mech = _authenticated(p_mechanism, CKF_WRAP, associated_data)
    with session.lock:
        wrapped = session.wrap_key(mech, h_wrapping, h_key)
    deliver(p_out, p_out_len, Fixed(wrapped))


@entry("C_UnwrapKeyAuthenticated")
def C_UnwrapKeyAuthenticated(h_session: int, p_mechanism: Any, h_unwrapping: int, p_wrapped: Any,
                             wrapped_len: int, p_template: Any, count: int, p_aad: Any, aad_len: int,
                             ph_key: Any) -> None:
    session = MODULE.sessions[h_session]
    require(ph_key, "key handle pointer")
    wrapped = read_buffer(p_wrapped, wrapped_len, limits.WRAPPED_KEY)
    require_template(p_template, count)
    associated_data = read_buffer(p_aad, aad_len, limits.DATA)
    mech = _authenticated(p_mechanism, CKF_UNWRAP, associated_data)
    template = read_template(p_template, count)
    with session.lock:
        ph_key[0] = session.unwrap_key(mech, h_unwrapping, wrapped, template)
