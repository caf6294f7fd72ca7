"""The AES key-wrap mechanisms (RFC 3394 / RFC 5649): CKM_AES_KEY_WRAP, _KWP, _PAD.

They encrypt and decrypt (single-part) and wrap by encryption like every cipher
(``wrapping.py``: what is wrapped, and how an encryption mechanism wraps).
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.hazmat.primitives import keywrap

from ..errors import CryptokiError
from ..spec import (
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_UNWRAP,
    CKF_WRAP,
    CKK_AES,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_WRAP_PAD,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
)
from . import aes
from .registry import KeyView, MechanismEntry, register
from .wrapping import SEMIBLOCK, EncryptionWrap

_log = logging.getLogger(__name__)

# Default integrity check values: RFC 3394 §2.2.3.1 and RFC 5649 §3 (the AIV prefix).
KW_DEFAULT_IV = bytes.fromhex("A6A6A6A6A6A6A6A6")
KWP_DEFAULT_IV = bytes.fromhex("A65959A6")

# --- AES key wrap (RFC 3394) and with padding (RFC 5649) -------------------------------


def _check_iv(entry: MechanismEntry, param: Any) -> None:
    """The optional parameter is the initial value; pyca implements only the default ones,
    so another value is CKR_MECHANISM_PARAM_INVALID."""
    if param is None or param == b"":
        return
    default = KW_DEFAULT_IV if entry.mechanism == CKM_AES_KEY_WRAP else KWP_DEFAULT_IV
    if bytes(param) != default:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "only the default key-wrap IV is supported")


def _kw_encrypt(kek: bytes, data: bytes) -> bytes:
    if len(data) < 2 * SEMIBLOCK or len(data) % SEMIBLOCK:
        raise CryptokiError(CKR_DATA_LEN_RANGE, "RFC 3394 input must be n*8 bytes, n >= 2")
    return keywrap.aes_key_wrap(kek, data)


def _kw_decrypt(kek: bytes, data: bytes) -> bytes:
    if len(data) < 3 * SEMIBLOCK or len(data) % SEMIBLOCK:
        raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "RFC 3394 input must be n*8 bytes, n >= 3")
    try:
        return keywrap.aes_key_unwrap(kek, data)
    except keywrap.InvalidUnwrap:
        raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "key unwrap integrity check failed") from None


def _kwp_encrypt(kek: bytes, data: bytes) -> bytes:
    if not data:
        raise CryptokiError(CKR_DATA_LEN_RANGE, "RFC 5649 input must not be empty")
    return keywrap.aes_key_wrap_with_padding(kek, data)


def _kwp_decrypt(kek: bytes, data: bytes) -> bytes:
    if len(data) < 2 * SEMIBLOCK or len(data) % SEMIBLOCK:
        raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "RFC 5649 input must be n*8 bytes, n >= 2")
    try:
        return keywrap.aes_key_unwrap_with_padding(kek, data)
    except keywrap.InvalidUnwrap:
        raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "key unwrap integrity check failed") from None


def _kw_hint(n: int) -> int:
    return n + SEMIBLOCK


def _kwp_hint(n: int) -> int:
    return -(-n // SEMIBLOCK) * SEMIBLOCK + SEMIBLOCK


def _unwrap_hint(n: int) -> int:
    return max(n - SEMIBLOCK, 0)


# mechanism -> (encrypt, decrypt)
_KEY_WRAP = {
    CKM_AES_KEY_WRAP: (_kw_encrypt, _kw_decrypt),
    CKM_AES_KEY_WRAP_KWP: (_kwp_encrypt, _kwp_decrypt),
    # Deprecated in 3.0 and never given exact semantics; like SoftHSM2 we treat it as RFC 5649.
    CKM_AES_KEY_WRAP_PAD: (_kwp_encrypt, _kwp_decrypt),
}


class AesKeyWrapFamily(EncryptionWrap):
    """CKM_AES_KEY_WRAP / _KWP / _PAD: encrypt/decrypt (single-part) and wrap/unwrap."""

    __slots__ = ()

    def encrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> aes.BufferedContext:
        _check_iv(entry, param)
        kek = aes.aes_key(key)
        run = _KEY_WRAP[entry.mechanism][0]
        hint = _kw_hint if entry.mechanism == CKM_AES_KEY_WRAP else _kwp_hint
        return aes.BufferedContext(lambda data: run(kek, data), hint)

    def decrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> aes.BufferedContext:
        _check_iv(entry, param)
        kek = aes.aes_key(key)
        run = _KEY_WRAP[entry.mechanism][1]
        return aes.BufferedContext(lambda data: run(kek, data), _unwrap_hint)

AES_KEY_WRAP = AesKeyWrapFamily()

for _mech in _KEY_WRAP:
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
            min_key_size=aes.AES_MIN,
            max_key_size=aes.AES_MAX,
            family=AES_KEY_WRAP,
            key_types=frozenset({CKK_AES}),
            param=bytes,
            param_optional=True,
        )
    )
