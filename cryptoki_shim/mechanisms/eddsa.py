"""EdDSA (CKM_EDDSA) on Ed25519 and Ed448 keys (PKCS#11 3.0 §2.3.14).

Without a parameter the scheme is the curve's pure one (Ed25519, Ed448: RFC 8032/8410).
With CK_EDDSA_PARAMS the spec maps phFlag/context to Ed25519ctx, Ed25519ph, Ed448 with a
context, Ed448ph (RFC 8032 §5). pyca implements only the pure schemes, which it keeps doing;
the other variants run in ``eddsa_rfc8032`` (pure Python, from the RFC's definitions).
phFlag FALSE with an empty context is the pure scheme: for Ed448 by definition; for Ed25519 it
would literally name Ed25519ctx with an empty context, which RFC 8032 §5.1 does not define,
and the clients that send it (PyKCS11; SoftHSM2 ignores the parameter) mean pure Ed25519.

Multi-part: pure EdDSA hashes the message twice, so the message is buffered until final.
Signatures are R||S, 64 bytes for Ed25519 and 114 for Ed448.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

from ..errors import CryptokiError
from ..spec import (
    CKF_EC_CURVENAME,
    CKF_EC_F_P,
    CKF_EC_OID,
    CKF_EC_UNCOMPRESS,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_EC_EDWARDS,
    CKM_EDDSA,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from . import eddsa_rfc8032 as rfc8032
from . import keys, native
from .params import EddsaParams
from .registry import Family, MechanismEntry, register
from .signing import Buffer, SignContext, VerifyContext

_log = logging.getLogger(__name__)

_KEY_CLASSES = (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ed448.Ed448PrivateKey, ed448.Ed448PublicKey)


class _EddsaSigner:
    def __init__(self, key: Any) -> None:
        self._key = key
        self.size = 2 * keys.curve_of_key(key).size  # 64 / 114
        # Ed25519 through the C helper where it takes the key (issue 22: no GIL parking)
        self._native_sign, self._native_verify = native.ed25519_pair(key)

    def sign(self, message: bytes) -> bytes:
        if self._native_sign is not None:
            return self._native_sign(message)
        native.lend_gate()  # pyca signs with the GIL released
        return self._key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "EdDSA signature length is 2*bLen")
        if self._native_verify is not None:
            if not self._native_verify(message, signature):
                raise CryptokiError(CKR_SIGNATURE_INVALID, "EdDSA signature does not verify")
            return
        native.lend_gate()  # pyca verifies with the GIL released
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "EdDSA signature does not verify") from None


class _Rfc8032Signer:
    """Ed25519ctx, Ed25519ph, Ed448 with a context, Ed448ph: the RFC 8032 variants pyca does
    not implement, in pure Python (eddsa_rfc8032.py; milliseconds per signature, which is
    acceptable for these rarely used schemes). ``message`` is the whole message: the
    prehash variants hash it here (PH = SHA-512 / SHAKE256-64)."""

    def __init__(self, key: Any, private: bool, phflag: bool, context: bytes) -> None:
        is_448 = isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey))
        self._scheme = rfc8032.ED448 if is_448 else rfc8032.ED25519
        self.size = 2 * keys.curve_of_key(key).size
        self._phflag, self._context = phflag, context
        self._seed = key.private_bytes_raw() if private else None
        self._public = (key.public_key() if private else key).public_bytes_raw()

    def _phm(self, message: bytes) -> bytes:
        return self._scheme.prehash(message) if self._phflag else message

    def sign(self, message: bytes) -> bytes:
        return self._scheme.sign(self._seed, self._phm(message), phflag=self._phflag, context=self._context)

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "EdDSA signature length is 2*bLen")
        try:
            self._scheme.verify(self._public, self._phm(message), signature, phflag=self._phflag,
                                context=self._context)
        except rfc8032.InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "EdDSA signature does not verify") from None


def _signer(param: Any, key: Any, private: bool) -> Any:
    """The scheme CK_EDDSA_PARAMS names (module docstring): pure ones by pyca, the others by
    the RFC 8032 implementation; a context over 255 bytes is CKR_MECHANISM_PARAM_INVALID."""
    if param is None:
        return _EddsaSigner(key)
    if not isinstance(param, EddsaParams):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_EDDSA_PARAMS expected")
    if len(param.context) > 255:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "EdDSA context longer than 255 bytes")
    if not param.phflag and not param.context:
        return _EddsaSigner(key)  # pure Ed448 / Ed25519 (see the module docstring)
    return _Rfc8032Signer(key, private, param.phflag, param.context)


def _key(view: Any, private: bool) -> Any:
    key = keys.load_private(view) if private else keys.load_public(view)
    if not isinstance(key, _KEY_CLASSES):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_EC_EDWARDS key")
    return key


class EddsaFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry, param: Any, key: Any) -> SignContext:
        return SignContext(_signer(param, _key(key, True), True), Buffer())

    def verify_init(self, entry: MechanismEntry, param: Any, key: Any) -> VerifyContext:
        return VerifyContext(_signer(param, _key(key, False), False), Buffer())


FAMILY = EddsaFamily()

register(MechanismEntry(CKM_EDDSA, CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS,
                        255, 448, FAMILY, frozenset({CKK_EC_EDWARDS}), param=EddsaParams, param_optional=True))
