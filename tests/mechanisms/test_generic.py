"""Secret key generation: generic secrets, the SHA-x/SHA3-x HMAC key gens, HKDF keys."""

from __future__ import annotations

import pytest

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import generic, registry
from cryptoki_shim.spec import (
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKF_GENERATE,
    CKK_AES,
    CKK_GENERIC_SECRET,
    CKK_HKDF,
    CKK_SHA256_HMAC,
    CKK_SHA3_512_HMAC,
    CKK_SHA512_256_HMAC,
    CKK_SHA_1_HMAC,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_HKDF_KEY_GEN,
    CKM_SHA256_KEY_GEN,
    CKM_SHA3_512_KEY_GEN,
    CKM_SHA512_256_KEY_GEN,
    CKM_SHA_1_KEY_GEN,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
)

KEY_GENS = {
    CKM_GENERIC_SECRET_KEY_GEN: CKK_GENERIC_SECRET,
    CKM_SHA_1_KEY_GEN: CKK_SHA_1_HMAC,
    CKM_SHA256_KEY_GEN: CKK_SHA256_HMAC,
    CKM_SHA512_256_KEY_GEN: CKK_SHA512_256_HMAC,
    CKM_SHA3_512_KEY_GEN: CKK_SHA3_512_HMAC,
    CKM_HKDF_KEY_GEN: CKK_HKDF,
}


def generate(mech: int, template: dict) -> dict:
    entry = registry.lookup(mech)
    return entry.family.generate_key(entry, None, template)


def test_pkcs11_3_0_values():
    # pkcs11t.h (3.0): the HMAC key gens live at 0x4003.., CKM_HKDF_KEY_GEN at 0x402C
    assert (int(CKM_SHA_1_KEY_GEN), int(CKM_SHA256_KEY_GEN), int(CKM_HKDF_KEY_GEN)) == (0x4003, 0x4005, 0x402C)


@pytest.mark.parametrize("mech,key_type", list(KEY_GENS.items()))
@pytest.mark.parametrize("length", [1, 20, 64, 200])
def test_key_gen_produces_the_type_and_length(mech, key_type, length):
    entry = registry.lookup(mech)
    assert entry.flags == CKF_GENERATE and entry.min_key_size == 1
    material = generate(mech, {CKA_VALUE_LEN: length})
    assert material[CKA_KEY_TYPE] == key_type
    assert len(material[CKA_VALUE]) == material[CKA_VALUE_LEN] == length
    if length >= 16:
        assert material[CKA_VALUE] != generate(mech, {CKA_VALUE_LEN: length})[CKA_VALUE]


@pytest.mark.parametrize("mech", list(KEY_GENS))
def test_value_len_is_required(mech):
    with pytest.raises(CryptokiError) as err:
        generate(mech, {})
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE


def test_length_errors():
    with pytest.raises(CryptokiError) as err:
        generate(CKM_GENERIC_SECRET_KEY_GEN, {CKA_VALUE_LEN: 0})
    assert err.value.ckr == CKR_ATTRIBUTE_VALUE_INVALID
    with pytest.raises(CryptokiError) as err:
        generate(CKM_GENERIC_SECRET_KEY_GEN, {CKA_VALUE_LEN: generic.GENERIC_MAX_BYTES + 1})
    assert err.value.ckr == CKR_KEY_SIZE_RANGE


def test_key_type_must_match_the_mechanism():
    with pytest.raises(CryptokiError) as err:
        generate(CKM_SHA256_KEY_GEN, {CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 32})
    assert err.value.ckr == CKR_TEMPLATE_INCONSISTENT
    assert generate(CKM_SHA256_KEY_GEN, {CKA_KEY_TYPE: CKK_SHA256_HMAC, CKA_VALUE_LEN: 32})[CKA_KEY_TYPE] == CKK_SHA256_HMAC


def test_derived_length_rules():
    assert generic.derived_length({CKA_VALUE_LEN: 5}, 32) == 5
    assert generic.derived_length({}, 32) == 32
    with pytest.raises(CryptokiError) as err:
        generic.derived_length({}, None)
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
    with pytest.raises(CryptokiError) as err:
        generic.derived_length({CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 20}, 32)
    assert err.value.ckr == CKR_TEMPLATE_INCONSISTENT
    with pytest.raises(CryptokiError) as err:  # natural 48 bytes (P-384) is no AES length
        generic.derived_length({CKA_KEY_TYPE: CKK_AES}, 48)
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
