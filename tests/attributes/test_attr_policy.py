"""Attribute policy: one test per footnote, per 4.1.1 error code, defaults, derived flags,
copy/set rules, readable(), sealed_types(), X.509 certificate filling."""

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cryptoki_shim import spec
from cryptoki_shim.attributes import (Origin, build_object, build_profile, check_set,
                                      has_attribute, readable, sealed_types)
from cryptoki_shim.attributes.tables import F, schema_for
from cryptoki_shim.errors import CryptokiError

C = spec  # short alias in templates

AES = {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_AES}
RSA_PUB = {C.CKA_CLASS: C.CKO_PUBLIC_KEY, C.CKA_KEY_TYPE: C.CKK_RSA}
RSA_PRIV = {C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_KEY_TYPE: C.CKK_RSA}
EC_PUB = {C.CKA_CLASS: C.CKO_PUBLIC_KEY, C.CKA_KEY_TYPE: C.CKK_EC}
EC_PRIV = {C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_KEY_TYPE: C.CKK_EC}
P256 = bytes.fromhex("06082a8648ce3d030107")
MODULUS = (1 << 2047 | 12345).to_bytes(256, "big")
RSA_PRIV_MATERIAL = {C.CKA_MODULUS: MODULUS, C.CKA_PUBLIC_EXPONENT: b"\x01\x00\x01",
                     C.CKA_PRIVATE_EXPONENT: b"\x42" * 256}


def ckr_of(fn, *args, **kw):
    with pytest.raises(CryptokiError) as e:
        fn(*args, **kw)
    return e.value.ckr, str(e.value)


def aes_key(extra=None):
    return build_object({**AES, C.CKA_VALUE: bytes(range(16)), **(extra or {})}, Origin.CREATE)


def rsa_private(extra=None):
    return build_object({**RSA_PRIV, **RSA_PRIV_MATERIAL, **(extra or {})}, Origin.CREATE)


# ------------------------------------------------------------------ footnotes, one test each

def test_footnote_1_required_on_create():
    ckr, msg = ckr_of(build_object, {**RSA_PRIV, C.CKA_MODULUS: MODULUS,
                                     C.CKA_PUBLIC_EXPONENT: b"\x03"}, Origin.CREATE)
    assert ckr == C.CKR_TEMPLATE_INCOMPLETE and "footnote 1" in msg and "PRIVATE_EXPONENT" in msg


def test_footnote_2_forbidden_on_create():
    ckr, msg = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16), C.CKA_VALUE_LEN: 16},
                      Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 2" in msg
    ckr, msg = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16), C.CKA_LOCAL: True},
                      Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 2" in msg


def test_footnote_3_required_on_generate():
    ckr, msg = ckr_of(build_object, dict(AES), Origin.GENERATE, material={C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_TEMPLATE_INCOMPLETE and "footnote 3" in msg and "VALUE_LEN" in msg
    ckr, msg = ckr_of(build_object, dict(EC_PUB), Origin.GENERATE,
                      material={C.CKA_EC_POINT: b"\x04" + bytes(64)})
    assert ckr == C.CKR_TEMPLATE_INCOMPLETE and "EC_PARAMS" in msg


def test_footnote_4_forbidden_on_generate():
    ckr, msg = ckr_of(build_object, {**AES, C.CKA_VALUE_LEN: 16, C.CKA_VALUE: bytes(16)},
                      Origin.GENERATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 4" in msg
    ckr, msg = ckr_of(build_object, {**EC_PRIV, C.CKA_EC_PARAMS: P256}, Origin.GENERATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 4" in msg


def test_footnote_4_also_applies_to_derive():
    ckr, msg = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16)}, Origin.DERIVE,
                      material={C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 4" in msg


def test_footnote_5_required_on_unwrap():
    ckr, msg = ckr_of(build_object, {C.CKA_CLASS: C.CKO_SECRET_KEY}, Origin.UNWRAP,
                      material={C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_TEMPLATE_INCOMPLETE and "KEY_TYPE" in msg


def test_footnote_6_forbidden_on_unwrap():
    ckr, msg = ckr_of(build_object, {**EC_PRIV, C.CKA_EC_PARAMS: P256}, Origin.UNWRAP,
                      material={C.CKA_VALUE: b"\x01" * 32})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 6" in msg


def test_footnote_7_not_revealed_if_sensitive_or_unextractable():
    key = aes_key({C.CKA_EXTRACTABLE: True})
    assert readable(key, C.CKA_VALUE)
    assert not readable(aes_key({C.CKA_EXTRACTABLE: True, C.CKA_SENSITIVE: True}), C.CKA_VALUE)
    assert not readable(aes_key({C.CKA_EXTRACTABLE: False}), C.CKA_VALUE)
    # Non-footnote-7 attributes stay readable; public key material is never hidden.
    assert readable(aes_key({C.CKA_SENSITIVE: True}), C.CKA_VALUE_LEN)
    priv = rsa_private({C.CKA_SENSITIVE: True})
    assert not readable(priv, C.CKA_PRIVATE_EXPONENT)
    assert readable(priv, C.CKA_MODULUS) and readable(priv, C.CKA_PUBLIC_EXPONENT)


def test_footnote_8_modifiable_by_set():
    key = aes_key()
    assert check_set(key, {C.CKA_ENCRYPT: False, C.CKA_LABEL: b"x"})[C.CKA_ENCRYPT] is False
    ckr, msg = ckr_of(check_set, key, {C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 8" in msg
    ckr, _ = ckr_of(check_set, key, {C.CKA_KEY_TYPE: C.CKK_AES})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY


def test_footnote_9_token_defaults_follow_softhsm2():
    key = aes_key()
    for t in (C.CKA_ENCRYPT, C.CKA_DECRYPT, C.CKA_SIGN, C.CKA_VERIFY, C.CKA_WRAP, C.CKA_UNWRAP):
        assert key[t] is True
    assert key[C.CKA_SENSITIVE] is False and key[C.CKA_EXTRACTABLE] is False
    assert key[C.CKA_PRIVATE] is True
    priv = rsa_private()
    assert priv[C.CKA_PRIVATE] is True and priv[C.CKA_SIGN] is True
    pub = build_object({**RSA_PUB, C.CKA_MODULUS: MODULUS, C.CKA_PUBLIC_EXPONENT: b"\x03"},
                       Origin.CREATE)
    assert pub[C.CKA_PRIVATE] is False and pub[C.CKA_VERIFY] is True
    data = build_object({C.CKA_CLASS: C.CKO_DATA}, Origin.CREATE)
    assert data[C.CKA_PRIVATE] is True  # SoftHSM2: data objects default to private
    assert schema_for(C.CKO_SECRET_KEY, C.CKK_AES).attrs[C.CKA_ENCRYPT].flags & F.TOKEN_DEFAULT


def test_footnote_10_trusted_only_by_so():
    ckr, msg = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16), C.CKA_TRUSTED: True},
                      Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 10" in msg
    assert build_object({**AES, C.CKA_VALUE: bytes(16), C.CKA_TRUSTED: True}, Origin.CREATE,
                        is_so=True)[C.CKA_TRUSTED] is True
    key = aes_key()
    ckr, msg = ckr_of(check_set, key, {C.CKA_TRUSTED: True})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 10" in msg
    assert check_set(key, {C.CKA_TRUSTED: True}, is_so=True)[C.CKA_TRUSTED] is True


def test_footnote_11_sensitive_only_false_to_true():
    key = aes_key()
    key = check_set(key, {C.CKA_SENSITIVE: True})
    assert key[C.CKA_SENSITIVE] is True
    assert key[C.CKA_ALWAYS_SENSITIVE] is False  # it was not always sensitive
    for value in (False, True):
        ckr, msg = ckr_of(check_set, key, {C.CKA_SENSITIVE: value})
        assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 11" in msg


def test_footnote_11_wrap_with_trusted_only_to_true():
    key = check_set(aes_key(), {C.CKA_WRAP_WITH_TRUSTED: True})
    ckr, msg = ckr_of(check_set, key, {C.CKA_WRAP_WITH_TRUSTED: False})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 11" in msg


def test_footnote_12_extractable_only_true_to_false():
    key = aes_key({C.CKA_EXTRACTABLE: True})
    key = check_set(key, {C.CKA_EXTRACTABLE: False})
    assert key[C.CKA_NEVER_EXTRACTABLE] is False
    ckr, msg = ckr_of(check_set, key, {C.CKA_EXTRACTABLE: True})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 12" in msg


def test_footnote_12_copyable_cannot_return_to_true():
    key = check_set(aes_key(), {C.CKA_COPYABLE: False})
    ckr, _ = ckr_of(check_set, key, {C.CKA_COPYABLE: True})
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY


# ------------------------------------------------------------------ 4.1.1 error codes

def test_type_invalid_for_unknown_attribute():
    ckr, _ = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16), 0x7FFF_FFF1: b""},
                    Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_TYPE_INVALID


@pytest.mark.parametrize("template", [
    {**AES, C.CKA_VALUE: bytes(15)},                         # AES key of 15 bytes
    {**AES, C.CKA_VALUE: b"x" * 16, C.CKA_TOKEN: 1},         # not a CK_BBOOL
    {C.CKA_CLASS: 0x1234},                                   # no such class
    {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: 0x7777}, # no such key type
    {C.CKA_CLASS: C.CKO_PROFILE, C.CKA_PROFILE_ID: 1},       # made by the token only
    {C.CKA_CLASS: C.CKO_CERTIFICATE, C.CKA_CERTIFICATE_TYPE: C.CKC_WTLS, C.CKA_VALUE: b"x"},
    {**AES, C.CKA_VALUE: bytes(16), C.CKA_START_DATE: b"2024"},
])
def test_value_invalid(template):
    ckr, _ = ckr_of(build_object, template, Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID


def test_generic_secret_any_length_but_not_empty():
    gen = {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_GENERIC_SECRET}
    assert build_object({**gen, C.CKA_VALUE: b"k" * 7}, Origin.CREATE)[C.CKA_VALUE_LEN] == 7
    assert ckr_of(build_object, {**gen, C.CKA_VALUE: b""}, Origin.CREATE)[0] == \
        C.CKR_ATTRIBUTE_VALUE_INVALID


def test_read_only_unique_id_in_any_template():
    for origin in (Origin.CREATE, Origin.GENERATE, Origin.UNWRAP, Origin.DERIVE):
        ckr, _ = ckr_of(build_object, {**AES, C.CKA_UNIQUE_ID: b"1"}, origin)
        assert ckr == C.CKR_ATTRIBUTE_READ_ONLY
    ckr, _ = ckr_of(build_object, {C.CKA_UNIQUE_ID: b"1"}, Origin.COPY, base=aes_key())
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY


def test_template_incomplete_without_class_or_key_type():
    assert ckr_of(build_object, {C.CKA_LABEL: b"x"}, Origin.CREATE)[0] == C.CKR_TEMPLATE_INCOMPLETE
    assert ckr_of(build_object, {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_VALUE: bytes(16)},
                  Origin.CREATE)[0] == C.CKR_TEMPLATE_INCOMPLETE


def test_template_inconsistent_attribute_of_another_class():
    # The spec's own example: a secret key with a public/private-key attribute.
    ckr, _ = ckr_of(build_object, {**AES, C.CKA_VALUE: bytes(16), C.CKA_MODULUS: MODULUS},
                    Origin.CREATE)
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT


def test_template_inconsistent_key_type_for_class():
    ckr, _ = ckr_of(build_object, {C.CKA_CLASS: C.CKO_PUBLIC_KEY, C.CKA_KEY_TYPE: C.CKK_AES},
                    Origin.CREATE)
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT


def test_template_inconsistent_with_mechanism_contribution():
    ckr, _ = ckr_of(build_object, {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_AES,
                                   C.CKA_VALUE_LEN: 16}, Origin.GENERATE,
                    material={C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_GENERIC_SECRET,
                              C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT


def test_template_inconsistent_value_len_vs_value():
    ckr, _ = ckr_of(build_object, {**AES, C.CKA_VALUE_LEN: 32}, Origin.GENERATE,
                    material={C.CKA_VALUE: bytes(16)})
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT


def test_template_inconsistent_always_authenticate_needs_private():
    ckr, _ = ckr_of(rsa_private, {C.CKA_ALWAYS_AUTHENTICATE: True, C.CKA_PRIVATE: False})
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT
    assert rsa_private({C.CKA_ALWAYS_AUTHENTICATE: True})[C.CKA_ALWAYS_AUTHENTICATE] is True


# ------------------------------------------------------------------ defaults & derived values

def test_storage_and_key_defaults():
    key = aes_key()
    assert key[C.CKA_TOKEN] is False and key[C.CKA_MODIFIABLE] is True
    assert key[C.CKA_COPYABLE] is True and key[C.CKA_DESTROYABLE] is True
    assert key[C.CKA_LABEL] == b"" and key[C.CKA_ID] == b"" and key[C.CKA_DERIVE] is False
    assert key[C.CKA_START_DATE] == b"" and key[C.CKA_ALLOWED_MECHANISMS] == ()
    assert C.CKA_UNIQUE_ID not in key  # the core assigns it


def test_secret_value_len_and_check_value():
    key = aes_key()
    assert key[C.CKA_VALUE_LEN] == 16
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    enc = Cipher(algorithms.AES(bytes(range(16))), modes.ECB()).encryptor()
    assert key[C.CKA_CHECK_VALUE] == (enc.update(bytes(16)) + enc.finalize())[:3]
    hmac = build_object({C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_SHA256_HMAC,
                         C.CKA_VALUE: b"k" * 32}, Origin.CREATE)
    assert hmac[C.CKA_CHECK_VALUE] == hashlib.sha1(b"k" * 32).digest()[:3]


def test_secret_check_value_template_must_match_or_be_empty():
    assert aes_key({C.CKA_CHECK_VALUE: b""})[C.CKA_CHECK_VALUE] == b""
    good = aes_key()[C.CKA_CHECK_VALUE]
    assert aes_key({C.CKA_CHECK_VALUE: good})[C.CKA_CHECK_VALUE] == good
    ckr, _ = ckr_of(aes_key, {C.CKA_CHECK_VALUE: b"\x00\x00\x00"})
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID


def test_rsa_public_modulus_bits_computed_on_create():
    pub = build_object({**RSA_PUB, C.CKA_MODULUS: MODULUS, C.CKA_PUBLIC_EXPONENT: b"\x03"},
                       Origin.CREATE)
    assert pub[C.CKA_MODULUS_BITS] == 2048


def test_derived_flags_create():
    key = aes_key({C.CKA_SENSITIVE: True})
    assert key[C.CKA_LOCAL] is False
    assert key[C.CKA_KEY_GEN_MECHANISM] == C.CK_UNAVAILABLE_INFORMATION
    assert key[C.CKA_ALWAYS_SENSITIVE] is False and key[C.CKA_NEVER_EXTRACTABLE] is False


def test_derived_flags_generate():
    key = build_object({**AES, C.CKA_VALUE_LEN: 32, C.CKA_SENSITIVE: True}, Origin.GENERATE,
                       material={C.CKA_VALUE: bytes(32)}, key_gen_mechanism=C.CKM_AES_KEY_GEN)
    assert key[C.CKA_LOCAL] is True and key[C.CKA_KEY_GEN_MECHANISM] == C.CKM_AES_KEY_GEN
    assert key[C.CKA_ALWAYS_SENSITIVE] is True and key[C.CKA_NEVER_EXTRACTABLE] is True
    pub = build_object({**RSA_PUB, C.CKA_MODULUS_BITS: 2048}, Origin.GENERATE,
                       material={C.CKA_MODULUS: MODULUS, C.CKA_PUBLIC_EXPONENT: b"\x01\x00\x01"},
                       key_gen_mechanism=C.CKM_RSA_PKCS_KEY_PAIR_GEN)
    assert pub[C.CKA_LOCAL] is True and pub[C.CKA_MODULUS_BITS] == 2048
    priv = build_object(dict(RSA_PRIV), Origin.GENERATE, material=RSA_PRIV_MATERIAL,
                        key_gen_mechanism=C.CKM_RSA_PKCS_KEY_PAIR_GEN)
    assert priv[C.CKA_LOCAL] is True and priv[C.CKA_NEVER_EXTRACTABLE] is True
    assert priv[C.CKA_ALWAYS_SENSITIVE] is False  # SoftHSM2 default: not sensitive


def test_derived_flags_unwrap():
    key = build_object({**AES, C.CKA_SENSITIVE: True}, Origin.UNWRAP,
                       material={C.CKA_VALUE: bytes(24)},
                       base=aes_key({C.CKA_SENSITIVE: True}))
    assert key[C.CKA_LOCAL] is False and key[C.CKA_VALUE_LEN] == 24
    assert key[C.CKA_ALWAYS_SENSITIVE] is False and key[C.CKA_NEVER_EXTRACTABLE] is False


def test_derived_flags_derive_inherit_from_base():
    strong = build_object({**AES, C.CKA_VALUE_LEN: 16, C.CKA_SENSITIVE: True}, Origin.GENERATE,
                          material={C.CKA_VALUE: bytes(16)})
    weak = aes_key({C.CKA_SENSITIVE: True})
    tmpl = {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_GENERIC_SECRET,
            C.CKA_SENSITIVE: True, C.CKA_VALUE_LEN: 20}
    d1 = build_object(tmpl, Origin.DERIVE, material={C.CKA_VALUE: bytes(20)}, base=strong)
    assert d1[C.CKA_ALWAYS_SENSITIVE] is True and d1[C.CKA_NEVER_EXTRACTABLE] is True
    assert d1[C.CKA_LOCAL] is False
    d2 = build_object(tmpl, Origin.DERIVE, material={C.CKA_VALUE: bytes(20)}, base=weak)
    assert d2[C.CKA_ALWAYS_SENSITIVE] is False and d2[C.CKA_NEVER_EXTRACTABLE] is False


def test_generate_ec_pair_material_not_subject_to_forbidden_footnotes():
    pub = build_object({**EC_PUB, C.CKA_EC_PARAMS: P256}, Origin.GENERATE,
                       material={C.CKA_EC_POINT: b"\x04\x41" + bytes(65)})
    priv = build_object(dict(EC_PRIV), Origin.GENERATE,
                        material={C.CKA_EC_PARAMS: P256, C.CKA_VALUE: b"\x01" * 32})
    assert pub[C.CKA_EC_PARAMS] == priv[C.CKA_EC_PARAMS] == P256
    for kt in (C.CKK_EC_EDWARDS, C.CKK_EC_MONTGOMERY):
        build_object({C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_KEY_TYPE: kt,
                      C.CKA_EC_PARAMS: b"\x13\x0cedwards25519", C.CKA_VALUE: b"\x01" * 32},
                     Origin.CREATE)


# ------------------------------------------------------------------ copy

def test_copy_keeps_derived_flags_and_allows_4_1_3_attributes():
    orig = build_object({**AES, C.CKA_VALUE_LEN: 16, C.CKA_SENSITIVE: False,
                         C.CKA_EXTRACTABLE: True}, Origin.GENERATE,
                        material={C.CKA_VALUE: bytes(16)}, key_gen_mechanism=C.CKM_AES_KEY_GEN)
    orig[C.CKA_UNIQUE_ID] = b"7"
    copy = build_object({C.CKA_TOKEN: True, C.CKA_PRIVATE: False, C.CKA_MODIFIABLE: False,
                         C.CKA_DESTROYABLE: False, C.CKA_SENSITIVE: True,
                         C.CKA_EXTRACTABLE: False, C.CKA_LABEL: b"copy"},
                        Origin.COPY, base=orig)
    assert copy[C.CKA_TOKEN] is True and copy[C.CKA_SENSITIVE] is True
    assert copy[C.CKA_LOCAL] is True and copy[C.CKA_KEY_GEN_MECHANISM] == C.CKM_AES_KEY_GEN
    assert copy[C.CKA_ALWAYS_SENSITIVE] is False   # "same value as the original key"
    assert copy[C.CKA_NEVER_EXTRACTABLE] is False
    assert C.CKA_UNIQUE_ID not in copy


def test_copy_rejects_non_modifiable_and_one_way_attributes():
    orig = aes_key({C.CKA_SENSITIVE: True})
    assert ckr_of(build_object, {C.CKA_VALUE: bytes(16)}, Origin.COPY, base=orig)[0] == \
        C.CKR_ATTRIBUTE_READ_ONLY
    assert ckr_of(build_object, {C.CKA_SENSITIVE: False}, Origin.COPY, base=orig)[0] == \
        C.CKR_ATTRIBUTE_READ_ONLY
    assert ckr_of(build_object, {C.CKA_EXTRACTABLE: True}, Origin.COPY, base=orig)[0] == \
        C.CKR_ATTRIBUTE_READ_ONLY
    # Restating the original's value is not a change.
    assert build_object({C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_SENSITIVE: True}, Origin.COPY,
                        base=orig)[C.CKA_SENSITIVE] is True


def test_copy_of_uncopyable_object_is_action_prohibited():
    orig = aes_key({C.CKA_COPYABLE: False})
    assert ckr_of(build_object, {}, Origin.COPY, base=orig)[0] == C.CKR_ACTION_PROHIBITED


def test_set_modifiable_false_is_action_prohibited():
    key = aes_key({C.CKA_MODIFIABLE: False})
    assert ckr_of(check_set, key, {C.CKA_LABEL: b"x"})[0] == C.CKR_ACTION_PROHIBITED


def test_set_attribute_not_of_this_class_is_type_invalid():
    assert ckr_of(check_set, aes_key(), {C.CKA_MODULUS: MODULUS})[0] == \
        C.CKR_ATTRIBUTE_TYPE_INVALID


def test_set_storage_attributes_except_label_are_read_only():
    key = aes_key()
    for t in (C.CKA_TOKEN, C.CKA_PRIVATE, C.CKA_MODIFIABLE, C.CKA_DESTROYABLE, C.CKA_LOCAL,
              C.CKA_CLASS, C.CKA_UNIQUE_ID):
        value = C.CKO_SECRET_KEY if t == C.CKA_CLASS else (b"1" if t == C.CKA_UNIQUE_ID else True)
        assert ckr_of(check_set, key, {t: value})[0] == C.CKR_ATTRIBUTE_READ_ONLY, t


def test_set_returns_new_dict_and_leaves_original():
    key = aes_key()
    new = check_set(key, {C.CKA_LABEL: b"renamed"})
    assert new[C.CKA_LABEL] == b"renamed" and key[C.CKA_LABEL] == b""


# ------------------------------------------------------------------ get / storage helpers

def test_has_attribute():
    key = aes_key()
    assert has_attribute(key, C.CKA_VALUE) and has_attribute(key, C.CKA_VALUE_LEN)
    assert not has_attribute(key, C.CKA_MODULUS)
    priv = rsa_private()  # created without CRT values: it does not possess CKA_PRIME_1
    assert not has_attribute(priv, C.CKA_PRIME_1) and has_attribute(priv, C.CKA_MODULUS)


def test_sealed_types_are_footnote_7_of_private_and_secret_keys():
    assert sealed_types(aes_key()) == {C.CKA_VALUE}
    assert sealed_types(rsa_private()) == {C.CKA_PRIVATE_EXPONENT, C.CKA_PRIME_1, C.CKA_PRIME_2,
                                           C.CKA_EXPONENT_1, C.CKA_EXPONENT_2, C.CKA_COEFFICIENT}
    ec_priv = build_object({**EC_PRIV, C.CKA_EC_PARAMS: P256, C.CKA_VALUE: b"\x01" * 32},
                           Origin.CREATE)
    assert sealed_types(ec_priv) == {C.CKA_VALUE}
    pub = build_object({**RSA_PUB, C.CKA_MODULUS: MODULUS, C.CKA_PUBLIC_EXPONENT: b"\x03"},
                       Origin.CREATE)
    assert sealed_types(pub) == frozenset()
    # A data object is private by default, and a private value is sealed (issue 15 item 5);
    # a public one is not.
    assert sealed_types(build_object({C.CKA_CLASS: C.CKO_DATA, C.CKA_VALUE: b"x"},
                                     Origin.CREATE)) == {C.CKA_VALUE}
    assert sealed_types(build_object({C.CKA_CLASS: C.CKO_DATA, C.CKA_VALUE: b"x", C.CKA_PRIVATE: False},
                                     Origin.CREATE)) == frozenset()


def test_profile_objects_are_read_only_and_uncopyable():
    prof = build_profile(C.CKP_BASELINE_PROVIDER if hasattr(C, "CKP_BASELINE_PROVIDER") else 1)
    assert has_attribute(prof, C.CKA_PROFILE_ID)
    assert ckr_of(check_set, prof, {C.CKA_LABEL: b"x"})[0] == C.CKR_ACTION_PROHIBITED
    assert ckr_of(build_object, {}, Origin.COPY, base=prof)[0] == C.CKR_ACTION_PROHIBITED


# ------------------------------------------------------------------ X.509 certificates

@pytest.fixture(scope="module")
def cert_der():
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(0x00FF_0102)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), cert


CERT = {C.CKA_CLASS: C.CKO_CERTIFICATE, C.CKA_CERTIFICATE_TYPE: C.CKC_X_509}


def test_certificate_fields_filled_from_value(cert_der):
    der, cert = cert_der
    obj = build_object({**CERT, C.CKA_VALUE: der}, Origin.CREATE)
    assert obj[C.CKA_SUBJECT] == cert.subject.public_bytes()
    assert obj[C.CKA_ISSUER] == cert.issuer.public_bytes()
    assert obj[C.CKA_SERIAL_NUMBER] == bytes.fromhex("020400ff0102")  # DER INTEGER, sign byte
    assert obj[C.CKA_CHECK_VALUE] == hashlib.sha1(der).digest()[:3]
    assert obj[C.CKA_PUBLIC_KEY_INFO] == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert obj[C.CKA_PRIVATE] is False and obj[C.CKA_TRUSTED] is False
    assert obj[C.CKA_CERTIFICATE_CATEGORY] == 0 and obj[C.CKA_NAME_HASH_ALGORITHM] == C.CKM_SHA_1


def test_certificate_template_fields_win(cert_der):
    der, _ = cert_der
    obj = build_object({**CERT, C.CKA_VALUE: der, C.CKA_SUBJECT: b"given"}, Origin.CREATE)
    assert obj[C.CKA_SUBJECT] == b"given"


def test_certificate_invalid_der_without_subject_is_value_invalid():
    ckr, _ = ckr_of(build_object, {**CERT, C.CKA_VALUE: b"\x30\x03junk"}, Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID
    # With the required fields given, the value is kept as is (BER is allowed by the spec).
    obj = build_object({**CERT, C.CKA_VALUE: b"\x30\x03junk", C.CKA_SUBJECT: b"s"}, Origin.CREATE)
    assert obj[C.CKA_ISSUER] == b""


def test_certificate_needs_value_or_url():
    ckr, _ = ckr_of(build_object, {**CERT, C.CKA_SUBJECT: b"s", C.CKA_VALUE: b""}, Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID
    ckr, _ = ckr_of(build_object, {**CERT, C.CKA_SUBJECT: b"s"}, Origin.CREATE)
    assert ckr == C.CKR_TEMPLATE_INCOMPLETE


def test_certificate_check_value_mismatch_is_value_invalid(cert_der):
    der, _ = cert_der
    ckr, _ = ckr_of(build_object, {**CERT, C.CKA_VALUE: der, C.CKA_CHECK_VALUE: b"abc"},
                    Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID


def test_certificate_modifiable_only_id_issuer_serial(cert_der):
    der, _ = cert_der
    obj = build_object({**CERT, C.CKA_VALUE: der}, Origin.CREATE)
    assert check_set(obj, {C.CKA_ID: b"\x01", C.CKA_ISSUER: b"i",
                           C.CKA_SERIAL_NUMBER: b"s"})[C.CKA_ID] == b"\x01"
    for t, v in ((C.CKA_VALUE, b"x"), (C.CKA_SUBJECT, b"x"), (C.CKA_CERTIFICATE_CATEGORY, 1)):
        assert ckr_of(check_set, obj, {t: v})[0] == C.CKR_ATTRIBUTE_READ_ONLY


def test_trusted_certificate_only_by_so(cert_der):
    der, _ = cert_der
    ckr, _ = ckr_of(build_object, {**CERT, C.CKA_VALUE: der, C.CKA_TRUSTED: True}, Origin.CREATE)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY
    trusted = build_object({**CERT, C.CKA_VALUE: der, C.CKA_TRUSTED: True}, Origin.CREATE,
                           is_so=True)
    assert ckr_of(check_set, trusted, {C.CKA_ID: b"x"})[0] == C.CKR_ACTION_PROHIBITED
    assert check_set(trusted, {C.CKA_ID: b"x"}, is_so=True)[C.CKA_ID] == b"x"
