"""Generic secret keys: key generation for secret-key types and the helpers every
symmetric family shares (reading a key's value, the CKA_VALUE_LEN rules of C_GenerateKey
and C_DeriveKey).

Spec: PKCS#11 3.0 §2.43 (generic secret key generation), §2.20-2.31 (the SHA-x/SHA3-x
``*_KEY_GEN`` mechanisms that produce CKK_SHA*_HMAC keys), §2.62 (CKM_HKDF_KEY_GEN).
Key sizes in the entries are in bytes (CKA_VALUE_LEN unit), as for AES.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from ..errors import CryptokiError
from ..spec import (
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKF_GENERATE,
    CKK_AES,
    CKK_CHACHA20,
    CKK_DES,
    CKK_DES2,
    CKK_DES3,
    CKK_GENERIC_SECRET,
    CKK_HKDF,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA3_224_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
    CKK_SHA512_224_HMAC,
    CKK_SHA512_256_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA_1_HMAC,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_HKDF_KEY_GEN,
    CKM_SHA224_KEY_GEN,
    CKM_SHA256_KEY_GEN,
    CKM_SHA384_KEY_GEN,
    CKM_SHA3_224_KEY_GEN,
    CKM_SHA3_256_KEY_GEN,
    CKM_SHA3_384_KEY_GEN,
    CKM_SHA3_512_KEY_GEN,
    CKM_SHA512_224_KEY_GEN,
    CKM_SHA512_256_KEY_GEN,
    CKM_SHA512_KEY_GEN,
    CKM_SHA_1_KEY_GEN,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
)
from .registry import Family, KeyGenData, KeyView, MechanismEntry, register

_log = logging.getLogger(__name__)

# Generic secrets: one byte up to 64 KiB is plenty for HMAC keys and KDF inputs; larger
# values are refused with CKR_KEY_SIZE_RANGE rather than allocated.
GENERIC_MIN_BYTES = 1
GENERIC_MAX_BYTES = 65536

AES_KEY_SIZES = (16, 24, 32)
#: DES, two-key and three-key triple DES (§2.x "DES secret key objects"): the length is the
#: key type's; these objects have CKA_VALUE and no CKA_VALUE_LEN (as SoftHSM2's).
DES_KEY_SIZES: dict[int, int] = {CKK_DES: 8, CKK_DES2: 16, CKK_DES3: 24}

# Key types whose value must have one of a few lengths (checked on generate/derive/unwrap).
FIXED_SIZES: dict[int, tuple[int, ...]] = {CKK_AES: AES_KEY_SIZES, CKK_CHACHA20: (32,)}
FIXED_SIZES.update({_type: (_size,) for _type, _size in DES_KEY_SIZES.items()})


def secret_value(key: KeyView) -> bytes:
    """The CKA_VALUE of a secret key; a key without one cannot be used by a cipher."""
    value = key.attrs.get(CKA_VALUE)
    if not isinstance(value, (bytes, bytearray)) or not value:
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "key has no CKA_VALUE")
    return bytes(value)


def template_value_len(template: Mapping[int, Any]) -> int | None:
    """CKA_VALUE_LEN from a template, or None when absent."""
    value = template.get(CKA_VALUE_LEN)
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE_LEN must be a CK_ULONG")
    return value


def check_length_for_type(key_type: int, length: int, *, ckr: int = CKR_ATTRIBUTE_VALUE_INVALID) -> None:
    """Refuse a value length the key type cannot hold (AES: 16/24/32 bytes)."""
    allowed = FIXED_SIZES.get(key_type)
    if allowed is not None and length not in allowed:
        raise CryptokiError(ckr, f"length {length} invalid for key type {key_type:#x}")
    if length < 1:
        raise CryptokiError(ckr, "a secret key needs at least one byte")


def secret_material(value: bytes, *, with_value_len: bool = True, key_type: int | None = None) -> dict[int, Any]:
    """The material attributes a family hands back for a new secret key (a DES key type has
    no CKA_VALUE_LEN)."""
    material: dict[int, Any] = {CKA_VALUE: value}
    if with_value_len and key_type not in DES_KEY_SIZES:
        material[CKA_VALUE_LEN] = len(value)
    return material


def derived_length(template: Mapping[int, Any], natural: int | None, *, default_type: int = CKK_GENERIC_SECRET) -> int:
    """Length of a derived/unwrapped secret: CKA_VALUE_LEN if the template has one, else
    ``natural`` (the length the mechanism produces by itself), else CKR_TEMPLATE_INCOMPLETE.

    §5.18 C_DeriveKey/C_UnwrapKey: the template's key type and CKA_VALUE_LEN decide; a
    value that the key type cannot hold is CKR_TEMPLATE_INCONSISTENT.
    """
    key_type = template.get(CKA_KEY_TYPE, default_type)
    length = template_value_len(template)
    single = FIXED_SIZES.get(key_type, ())
    if length is None and len(single) == 1 and (natural is None or natural >= single[0]):
        length = single[0]  # a key type of one length (DES3): that length, cut from the output
    elif length is None:
        if natural is None:
            raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required")
        length = natural
        check_length_for_type(key_type, length, ckr=CKR_TEMPLATE_INCOMPLETE)
    else:
        check_length_for_type(key_type, length, ckr=CKR_TEMPLATE_INCONSISTENT)
    return length


class SecretKeyGen(Family):
    """C_GenerateKey for secret keys of one type: random CKA_VALUE of CKA_VALUE_LEN bytes.

    ``entry.data`` (``KeyGenData``) names the CKK_* produced. CKA_VALUE_LEN is required (the spec
    for every *_KEY_GEN here says so): missing -> CKR_TEMPLATE_INCOMPLETE; a length the
    type cannot hold -> CKR_ATTRIBUTE_VALUE_INVALID; outside the advertised range ->
    CKR_KEY_SIZE_RANGE.
    """

    def generate_key(self, entry: MechanismEntry[KeyGenData], param: Any,
                     template: Mapping[int, Any]) -> dict[int, Any]:
        key_type = entry.data.key_type
        requested = template.get(CKA_KEY_TYPE)
        if requested is not None and requested != key_type:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_KEY_TYPE does not match the mechanism")
        length = template_value_len(template)
        if length is None:
            raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE_LEN is required")
        check_length_for_type(key_type, length)
        if not entry.min_key_size <= length <= entry.max_key_size:
            raise CryptokiError(CKR_KEY_SIZE_RANGE, f"key length {length} out of range")
        material = secret_material(os.urandom(length))
        material[CKA_KEY_TYPE] = key_type
        return material


SECRET_KEY_GEN = SecretKeyGen()

# mechanism -> key type it generates (PKCS#11 3.0 pkcs11t.h names)
_GENERIC_KEY_GENS: dict[int, int] = {
    CKM_GENERIC_SECRET_KEY_GEN: CKK_GENERIC_SECRET,
    CKM_SHA_1_KEY_GEN: CKK_SHA_1_HMAC,
    CKM_SHA224_KEY_GEN: CKK_SHA224_HMAC,
    CKM_SHA256_KEY_GEN: CKK_SHA256_HMAC,
    CKM_SHA384_KEY_GEN: CKK_SHA384_HMAC,
    CKM_SHA512_KEY_GEN: CKK_SHA512_HMAC,
    CKM_SHA512_224_KEY_GEN: CKK_SHA512_224_HMAC,
    CKM_SHA512_256_KEY_GEN: CKK_SHA512_256_HMAC,
    CKM_SHA3_224_KEY_GEN: CKK_SHA3_224_HMAC,
    CKM_SHA3_256_KEY_GEN: CKK_SHA3_256_HMAC,
    CKM_SHA3_384_KEY_GEN: CKK_SHA3_384_HMAC,
    CKM_SHA3_512_KEY_GEN: CKK_SHA3_512_HMAC,
    CKM_HKDF_KEY_GEN: CKK_HKDF,
}

for _mech, _ktype in _GENERIC_KEY_GENS.items():
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_GENERATE,
            min_key_size=GENERIC_MIN_BYTES,
            max_key_size=GENERIC_MAX_BYTES,
            family=SECRET_KEY_GEN,
            data=KeyGenData(_ktype),
        )
    )
