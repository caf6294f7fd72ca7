"""Wrapping by encryption: the one path by which an encryption mechanism (AES-ECB/CBC/
CBC_PAD/GCM, RSA PKCS#1 v1.5 and OAEP, the AES key-wrap mechanisms) wraps and unwraps a key.

What is wrapped (PKCS#11 3.0 §2.10 AES-ECB/CBC "wrap", §2.7 "Wrapping/unwrapping private
keys"): a secret key's CKA_VALUE, a private key's PKCS#8 PrivateKeyInfo DER. Unwrapping
returns the material attributes of the new key: CKA_VALUE (+CKA_VALUE_LEN) for a secret,
``keys.private_material`` for a private key. Whether the key may be wrapped at all
(CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED) is the core's check, not ours.

A family that wraps by encrypting subclasses :class:`EncryptionWrap`: its ``wrap``/``unwrap``
(``registry.Family``, what backends call) run its own encrypt/decrypt contexts. This module
imports no family, so every cipher family can build on it.
"""

from __future__ import annotations

from typing import Any, Mapping

from .. import der
from ..errors import CryptokiError
from ..spec import (
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKM_AES_CBC,
    CKM_AES_ECB,
    CKM_AES_KEY_WRAP,
    CKM_DES3_CBC,
    CKM_DES3_ECB,
    CKM_DES_CBC,
    CKM_DES_ECB,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_KEY_SIZE_RANGE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
)
from . import generic
from .registry import Family, KeyView, MechanismEntry

BLOCK = 16      # the AES block
SEMIBLOCK = 8   # RFC 3394's unit

# Mechanisms that cannot carry the length: the key is zero padded to their block size and
# the unwrapper truncates by CKA_VALUE_LEN (§2.10 ECB/CBC wrap, §2.16 CKM_AES_KEY_WRAP).
_ZERO_PAD_BLOCK = {CKM_AES_ECB: BLOCK, CKM_AES_CBC: BLOCK, CKM_AES_KEY_WRAP: SEMIBLOCK,
                   CKM_DES3_ECB: SEMIBLOCK, CKM_DES3_CBC: SEMIBLOCK, CKM_DES_ECB: SEMIBLOCK, CKM_DES_CBC: SEMIBLOCK}


# --- what is wrapped -------------------------------------------------------------------


def encode_key(key_attrs: Mapping[int, Any]) -> bytes:
    """The bytes that stand for a key when wrapped: CKA_VALUE or PKCS#8 DER."""
    cls = key_attrs.get(CKA_CLASS)
    if cls == CKO_SECRET_KEY:
        value = key_attrs.get(CKA_VALUE)
        if not value:
            raise CryptokiError(CKR_KEY_NOT_WRAPPABLE, "secret key without CKA_VALUE")
        return bytes(value)
    if cls == CKO_PRIVATE_KEY:
        from . import keys

        return keys.to_pkcs8(key_attrs)
    raise CryptokiError(CKR_KEY_NOT_WRAPPABLE, "only secret and private keys can be wrapped")


def _der_total_length(data: bytes) -> int | None:
    """Length of the DER SEQUENCE at the start of ``data`` (to drop zero padding after a
    PKCS#8 blob), or None if the header does not parse (a long length form that could be
    shorter is let through: the PKCS#8 parser judges the blob)."""
    head = der.header(data, strict=False)
    if head is None or head[0] != der.SEQUENCE:
        return None
    return head[1] + head[2]


def decode_key(plain: bytes, key_class: int, key_type: int | None, value_len: int | None = None) -> dict[int, Any]:
    """Material attributes of an unwrapped key.

    Secret: truncated to ``value_len`` (the template's CKA_VALUE_LEN) when given; a value
    shorter than asked, or one the key type cannot hold, is CKR_WRAPPED_KEY_INVALID / the
    template is inconsistent. Private: PKCS#8 DER, trailing zero padding ignored (§2.16).
    """
    if key_class == CKO_SECRET_KEY:
        fixed = generic.DES_KEY_SIZES.get(key_type) if key_type is not None else None
        if value_len is None and fixed is not None and len(plain) > fixed:
            value_len = fixed  # a DES key type has no CKA_VALUE_LEN: its length cuts the padding
        if value_len is not None:
            if value_len > len(plain):
                raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the wrapped key")
            plain = plain[:value_len]
        if key_type is not None:
            generic.check_length_for_type(key_type, len(plain), ckr=CKR_WRAPPED_KEY_INVALID)
        return generic.secret_material(plain, key_type=key_type)
    if key_class == CKO_PRIVATE_KEY:
        from . import keys

        total = _der_total_length(plain)
        if total is None or total > len(plain) or any(plain[total:]):
            raise CryptokiError(CKR_WRAPPED_KEY_INVALID, "unwrapped data is not one DER element")
        material = keys.from_pkcs8(plain[:total])
        if key_type is not None and material.get(CKA_KEY_TYPE) != key_type:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "wrapped key is of another key type")
        return material
    raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "only secret and private keys can be unwrapped")


# --- wrapping through an encryption mechanism ------------------------------------------

# Encryption errors seen while unwrapping are reported as wrapped-key errors (§5.18).
_UNWRAP_ERRORS = {
    CKR_ENCRYPTED_DATA_INVALID: CKR_WRAPPED_KEY_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE: CKR_WRAPPED_KEY_LEN_RANGE,
}


def wrap_by_encryption(entry: MechanismEntry, param: Any, wrapping_key: KeyView, key_attrs: Mapping[int, Any]) -> bytes:
    """Wrap = encrypt the key's bytes with the entry's encrypt context (zero padded first
    for the mechanisms that need whole blocks)."""
    data = encode_key(key_attrs)
    block = _ZERO_PAD_BLOCK.get(entry.mechanism)
    if block and len(data) % block:
        data += bytes(block - len(data) % block)
    try:
        return entry.family.encrypt_init(entry, param, wrapping_key).oneshot(data)
    except CryptokiError as exc:
        if exc.ckr == CKR_DATA_LEN_RANGE:  # e.g. a PKCS#8 key too long for an RSA block
            raise CryptokiError(CKR_KEY_SIZE_RANGE, "key too long for this wrapping mechanism") from None
        raise


def unwrap_by_decryption(
    entry: MechanismEntry,
    param: Any,
    unwrapping_key: KeyView,
    wrapped: bytes,
    key_class: int,
    key_type: int | None,
    value_len: int | None = None,
) -> dict[int, Any]:
    """Unwrap = decrypt with the entry's decrypt context, then :func:`decode_key`."""
    try:
        plain = entry.family.decrypt_init(entry, param, unwrapping_key).oneshot(bytes(wrapped))
    except CryptokiError as exc:
        mapped = _UNWRAP_ERRORS.get(exc.ckr)
        if mapped is None:
            raise
        raise CryptokiError(mapped, str(exc)) from None
    return decode_key(plain, key_class, key_type, value_len)


class EncryptionWrap(Family):
    """C_WrapKey / C_UnwrapKey of a cipher family: encrypt the key's bytes with the
    entry's encrypt context, decrypt with its decrypt context (AES, RSA, AES key wrap)."""

    __slots__ = ()

    def wrap(self, entry: MechanismEntry, param: Any, wrapping_key: KeyView, key_attrs: Mapping[int, Any]) -> bytes:
        return wrap_by_encryption(entry, param, wrapping_key, key_attrs)

    def unwrap(self, entry: MechanismEntry, param: Any, unwrapping_key: KeyView, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None = None) -> dict[int, Any]:
        return unwrap_by_decryption(entry, param, unwrapping_key, wrapped, key_class, key_type, value_len)
