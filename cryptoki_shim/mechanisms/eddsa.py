"""EdDSA (CKM_EDDSA) on Ed25519 and Ed448 keys (PKCS#11 3.0 §2.3.14).

Without a parameter the scheme is the curve's pure one (Ed25519, Ed448: RFC 8032/8410).
With CK_EDDSA_PARAMS the spec maps phFlag/context to Ed25519ctx, Ed25519ph, Ed448 with a
context, Ed448ph. pyca/cryptography implements only the pure schemes, so we accept the
parameter only where it denotes one: phFlag FALSE and an empty context. For Ed448 that is
pure Ed448 by definition; for Ed25519 it would literally name Ed25519ctx with an empty
context, which RFC 8032 §5.1 does not define (its context must be non-empty), and the
clients that send it (PyKCS11's suite; SoftHSM2 ignores the parameter) mean pure Ed25519,
so that is what it signs. Every other combination (a context, or prehash) is refused with
CKR_MECHANISM_PARAM_INVALID (and the reason logged) rather than signing under a different
scheme than the caller asked for.

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
from . import keys
from .params import EddsaParams
from .registry import MechanismEntry, register
from .signing import Buffer, SignContext, VerifyContext

_log = logging.getLogger(__name__)

_KEY_CLASSES = (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ed448.Ed448PrivateKey, ed448.Ed448PublicKey)


class _EddsaSigner:
    def __init__(self, key: Any) -> None:
        self._key = key
        self.size = 2 * keys.curve_of_key(key).size  # 64 / 114

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "EdDSA signature length is 2*bLen")
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "EdDSA signature does not verify") from None


def _check_scheme(param: Any, key: Any) -> None:
    """Refuse the RFC 8032 variants pyca does not implement (see the module docstring)."""
    if param is None:
        return
    if not isinstance(param, EddsaParams):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_EDDSA_PARAMS expected")
    if len(param.context) > 255:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "EdDSA context longer than 255 bytes")
    is_448 = isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey))
    if not param.phflag and not param.context:
        return  # pure Ed448 / Ed25519 (see the module docstring)
    scheme = ("Ed448" if is_448 else "Ed25519") + ("ph" if param.phflag else ("" if is_448 else "ctx"))
    _log.info("CKM_EDDSA: scheme %s%s not supported by the software backend", scheme,
              " with a context" if param.context else "")
    raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, f"EdDSA scheme {scheme} not supported")


def _key(view: Any, private: bool) -> Any:
    key = keys.load_private(view) if private else keys.load_public(view)
    if not isinstance(key, _KEY_CLASSES):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_EC_EDWARDS key")
    return key


class EddsaFamily:
    def sign_init(self, entry: MechanismEntry, param: Any, key: Any) -> SignContext:
        pyca_key = _key(key, True)
        _check_scheme(param, pyca_key)
        return SignContext(_EddsaSigner(pyca_key), Buffer())

    def verify_init(self, entry: MechanismEntry, param: Any, key: Any) -> VerifyContext:
        pyca_key = _key(key, False)
        _check_scheme(param, pyca_key)
        return VerifyContext(_EddsaSigner(pyca_key), Buffer())


FAMILY = EddsaFamily()

register(MechanismEntry(CKM_EDDSA, CKF_SIGN | CKF_VERIFY | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS,
                        255, 448, FAMILY, frozenset({CKK_EC_EDWARDS}), param=EddsaParams, param_optional=True,
                        extra={"single_part": False}))
