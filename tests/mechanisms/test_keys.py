"""keys.py: attribute <-> pyca conversion, import checks, PKCS#8, sizes, caching."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from cryptoki_shim import der
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_COEFFICIENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_EXPONENT_1,
    CKA_KEY_TYPE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_PRIVATE_EXPONENT,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKK_GENERIC_SECRET,
    CKK_RSA,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_WRAPPED_KEY_INVALID,
)
from vectors_util import KeyView

P256 = keys.encode_oid("1.2.840.10045.3.1.7")


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(65537, 2048)


def _spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _raises(ckr, fn, *args):
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr == ckr, exc.value


ALL_KEYS = [
    lambda: rsa.generate_private_key(65537, 1024),
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP521R1()),
    lambda: ec.generate_private_key(ec.SECP256K1()),
    ed25519.Ed25519PrivateKey.generate,
    ed448.Ed448PrivateKey.generate,
    x25519.X25519PrivateKey.generate,
    x448.X448PrivateKey.generate,
]


@pytest.mark.parametrize("make", ALL_KEYS)
def test_material_round_trip_pkcs8_and_spki(make):
    key = make()
    priv = keys.private_material(key)
    pub = keys.public_material(key)
    assert priv[CKA_PUBLIC_KEY_INFO] == pub[CKA_PUBLIC_KEY_INFO] == _spki(key)
    loaded = keys.parse_private(priv)
    assert keys.public_material(loaded) == pub
    assert keys.parse_public(pub) == key.public_key()
    der = keys.to_pkcs8(priv)
    assert keys.from_pkcs8(der) == priv
    assert keys.check_import({**pub, CKA_CLASS: CKO_PUBLIC_KEY})[CKA_PUBLIC_KEY_INFO] == _spki(key)
    assert keys.check_import({**priv, CKA_CLASS: CKO_PRIVATE_KEY})[CKA_PUBLIC_KEY_INFO] == _spki(key)


@pytest.mark.parametrize("params", [
    P256, b"\x13\x09secp256r1", b"\x13\x0aprime256v1", b"\x13\x05P-256", b"\x13\x05p-256", b"\x13\x08nistp256",
])
def test_curve_names(params):
    curve = keys.curve_from_params(params)
    assert curve.oid == "1.2.840.10045.3.1.7" and curve.bits == 256


@pytest.mark.parametrize("params, ckr", [
    (keys.encode_oid("1.3.36.3.3.2.8.1.1.7"), CKR_CURVE_NOT_SUPPORTED),  # brainpoolP256r1
    (b"\x13\x07brainpo", CKR_CURVE_NOT_SUPPORTED),
    (b"\x30\x00", CKR_DOMAIN_PARAMS_INVALID),
    (b"\x06\x08\x2a\x86", CKR_DOMAIN_PARAMS_INVALID),
    (b"", CKR_DOMAIN_PARAMS_INVALID),
])
def test_curve_errors(params, ckr):
    _raises(ckr, keys.curve_from_params, params)


def test_oid_round_trip():
    assert keys.encode_oid("1.2.840.10045.3.1.7").hex() == "06082a8648ce3d030107"
    assert keys.encode_oid("1.3.101.112").hex() == "06032b6570"


def test_ec_point_raw_or_der_stored_as_der():
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    point = der.tlv(0x04, raw)
    for given in (raw, point):
        extra = keys.check_import({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: P256, CKA_EC_POINT: given})
        assert extra[CKA_EC_POINT] == point
    compressed = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    extra = keys.check_import({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: P256, CKA_EC_POINT: compressed})
    assert extra[CKA_EC_POINT] == point


def test_ec_point_off_curve_and_bad_length():
    off = b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big")
    attrs = {CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: P256}
    _raises(CKR_ATTRIBUTE_VALUE_INVALID, keys.check_import, {**attrs, CKA_EC_POINT: off})
    _raises(CKR_ATTRIBUTE_VALUE_INVALID, keys.check_import, {**attrs, CKA_EC_POINT: off[:-1]})
    _raises(CKR_TEMPLATE_INCOMPLETE, keys.check_import, attrs)


def test_ec_private_scalar_out_of_range():
    attrs = {CKA_CLASS: CKO_PRIVATE_KEY, CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: P256}
    _raises(CKR_ATTRIBUTE_VALUE_INVALID, keys.check_import, {**attrs, CKA_VALUE: b"\xff" * 32})
    _raises(CKR_ATTRIBUTE_VALUE_INVALID, keys.check_import, {**attrs, CKA_VALUE: b"\x00"})


def test_edwards_curve_under_ec_key_type_refused():
    key = ed25519.Ed25519PrivateKey.generate()
    pub = keys.public_material(key)
    _raises(CKR_CURVE_NOT_SUPPORTED, keys.check_import, {**pub, CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC})


def test_edwards_point_raw_accepted():
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    extra = keys.check_import({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC_EDWARDS,
                               CKA_EC_PARAMS: b"\x13\x0cedwards25519", CKA_EC_POINT: raw})
    assert extra[CKA_EC_POINT] == b"\x04\x20" + raw


def test_rsa_private_from_n_e_d_gets_crt(rsa_key):
    full = keys.private_material(rsa_key)
    minimal = {CKA_CLASS: CKO_PRIVATE_KEY, CKA_KEY_TYPE: CKK_RSA}
    minimal.update({k: full[k] for k in (CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT)})
    extra = keys.check_import(minimal)
    assert {extra[CKA_PRIME_1], extra[CKA_PRIME_2]} == {full[CKA_PRIME_1], full[CKA_PRIME_2]}
    assert CKA_EXPONENT_1 in extra and CKA_COEFFICIENT in extra
    loaded = keys.parse_private({**minimal, **extra})
    assert loaded.private_numbers().d == rsa_key.private_numbers().d
    assert loaded.public_key().public_numbers() == rsa_key.public_key().public_numbers()


def test_rsa_inconsistent_and_incomplete(rsa_key):
    full = {**keys.private_material(rsa_key), CKA_CLASS: CKO_PRIVATE_KEY}
    broken = dict(full)
    broken[CKA_PRIME_1] = (int.from_bytes(full[CKA_PRIME_1], "big") + 2).to_bytes(128, "big")
    _raises(CKR_ATTRIBUTE_VALUE_INVALID, keys.check_import, broken)
    _raises(CKR_TEMPLATE_INCOMPLETE, keys.check_import, {CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_RSA,
                                                         CKA_MODULUS: full[CKA_MODULUS]})
    pub = keys.check_import({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_RSA, CKA_MODULUS: full[CKA_MODULUS],
                             CKA_PUBLIC_EXPONENT: b"\x01\x00\x01"})
    assert pub[CKA_MODULUS_BITS] == 2048


def test_check_import_ignores_secret_keys():
    assert keys.check_import({CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: CKK_GENERIC_SECRET, CKA_VALUE: b"x"}) == {}


def test_from_pkcs8_garbage():
    _raises(CKR_WRAPPED_KEY_INVALID, keys.from_pkcs8, b"\x30\x03\x02\x01\x00")
    _raises(CKR_WRAPPED_KEY_INVALID, keys.from_pkcs8, b"\x30\x00")


def test_from_pkcs8_unsupported_curve():
    """Unwrapping an EC key of an unsupported curve: CKR_CURVE_NOT_SUPPORTED (spec §2.3)."""
    der = ec.generate_private_key(ec.BrainpoolP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _raises(CKR_CURVE_NOT_SUPPORTED, keys.from_pkcs8, der)


def test_load_caches_and_derives_public_from_private(rsa_key):
    view = KeyView({**keys.private_material(rsa_key), CKA_CLASS: CKO_PRIVATE_KEY})
    first = keys.load_private(view)
    assert keys.load_private(view) is first
    assert keys.load_public(view).public_numbers() == rsa_key.public_key().public_numbers()


@pytest.mark.parametrize("make, size", [
    (lambda: rsa.generate_private_key(65537, 1024), 1024),
    (lambda: ec.generate_private_key(ec.SECP521R1()), 521),
    (ed25519.Ed25519PrivateKey.generate, 255),
    (ed448.Ed448PrivateKey.generate, 448),
    (x25519.X25519PrivateKey.generate, 255),
    (x448.X448PrivateKey.generate, 448),
])
def test_key_size(make, size):
    key = make()
    assert keys.key_size(KeyView(keys.public_material(key))) == size
    assert keys.key_size(KeyView(keys.private_material(key))) == size


def test_key_size_secret_in_bytes():
    assert keys.key_size(KeyView({CKA_KEY_TYPE: CKK_GENERIC_SECRET, CKA_VALUE: b"x" * 24})) == 24


def test_montgomery_key_types():
    key = x25519.X25519PrivateKey.generate()
    assert keys.private_material(key)[CKA_KEY_TYPE] == CKK_EC_MONTGOMERY
    assert keys.private_material(key)[CKA_EC_PARAMS] == keys.encode_oid("1.3.101.110")
