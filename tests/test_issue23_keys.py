"""Issue 23, items 4, 6 and 7, through the built library: raw ECDSA on every advertised
curve, big integers in their unsigned big-endian normal form, and the order of argument
checks before mechanism checks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from cryptoki_shim import der
from cryptoki_shim.attributes import codec
from cryptoki_shim.mechanisms import keys
from cryptoki_shim.spec import (
    CKA_DECRYPT,
    CKA_DERIVE,
    CKA_ENCRYPT,
    CKA_EXTRACTABLE,
    CKA_UNWRAP,
    CKA_VALUE_LEN,
    CKA_WRAP,
    CKG_MGF1_SHA256,
    CKK_AES,
    CKM_AES_CBC,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA256_RSA_PKCS_PSS,
    CKO_SECRET_KEY,
    CKR_ARGUMENTS_BAD,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKZ_DATA_SPECIFIED,
    CKA_BASE,
    CKA_COEFFICIENT,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PRIME,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_PRIVATE_EXPONENT,
    CKA_PUBLIC_EXPONENT,
    CKA_SUBPRIME,
    CKA_VALUE,
    CKA_CLASS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_KEY_TYPE,
    CKA_SIGN,
    CKA_TOKEN,
    CKA_VERIFY,
    CKK_EC,
    CKK_RSA,
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_SHA256_RSA_PKCS,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
)
from p11 import Template, ffi, raises_ckr

EC_CURVES = [c for c in keys.CURVES if c.key_type == CKK_EC]
DIGESTS = (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
HASHING = {CKM_ECDSA_SHA1: hashes.SHA1, CKM_ECDSA_SHA224: hashes.SHA224, CKM_ECDSA_SHA256: hashes.SHA256,
           CKM_ECDSA_SHA384: hashes.SHA384, CKM_ECDSA_SHA512: hashes.SHA512}


def _digest(algorithm: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    h = hashes.Hash(algorithm())
    h.update(data)
    return h.finalize()


def _ec_pair(token, session, curve):
    pub, priv = token.generate_key_pair(
        session, CKM_EC_KEY_PAIR_GEN,
        {CKA_TOKEN: False, CKA_VERIFY: True, CKA_EC_PARAMS: keys.encode_oid(curve.oid)},
        {CKA_TOKEN: False, CKA_SIGN: True},
    )
    parsed = der.read_one(token.get(session, pub, CKA_EC_POINT))
    assert parsed is not None and parsed[0] == 0x04
    return pub, priv, ec.EllipticCurvePublicKey.from_encoded_point(curve.pyca(), parsed[1])


def _der_sig(sig: bytes) -> bytes:
    half = len(sig) // 2
    return utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))


def _raw_sig(sig: bytes, n: int) -> bytes:
    r, s = utils.decode_dss_signature(sig)
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


# ------------------------------------------------------------------ item 4: ECDSA on every curve


@pytest.mark.parametrize("curve", EC_CURVES, ids=lambda c: c.names[0])
def test_raw_ecdsa_every_advertised_curve(token, user_session, curve):
    """CKM_ECDSA signs a digest of any length on P-192 ... P-521 and secp256k1: pyca verifies
    what the token signs (truncation to the order's bits as OpenSSL applies it), the token
    verifies what pyca signs."""
    pub, priv, pyca_pub = _ec_pair(token, user_session, curve)
    for algorithm in DIGESTS:
        digest = _digest(algorithm, b"issue 23 item 4 " + curve.names[0].encode())
        sig = token.sign(user_session, CKM_ECDSA, priv, digest)
        assert len(sig) == 2 * curve.size
        pyca_pub.verify(_der_sig(sig), digest, ec.ECDSA(utils.Prehashed(algorithm())))
        token.verify(user_session, CKM_ECDSA, pub, digest, sig)
        # the other way: a pyca signature verifies under its public key created in the token
        other = ec.generate_private_key(curve.pyca())
        point = other.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        handle = token.create(user_session, {CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC, CKA_TOKEN: False,
                                             CKA_VERIFY: True, CKA_EC_PARAMS: keys.encode_oid(curve.oid),
                                             CKA_EC_POINT: der.tlv(0x04, point)})
        theirs = _raw_sig(other.sign(digest, ec.ECDSA(utils.Prehashed(algorithm()))), curve.size)
        token.verify(user_session, CKM_ECDSA, handle, digest, theirs)
        token.destroy(user_session, handle)


@pytest.mark.parametrize("curve", EC_CURVES, ids=lambda c: c.names[0])
@pytest.mark.parametrize("ckm", sorted(HASHING))
def test_hashing_ecdsa_every_advertised_curve(token, user_session, curve, ckm):
    pub, priv, pyca_pub = _ec_pair(token, user_session, curve)
    data = b"issue 23 item 4, hashing " + curve.names[0].encode()
    sig = token.sign(user_session, ckm, priv, data)
    assert len(sig) == 2 * curve.size
    pyca_pub.verify(_der_sig(sig), data, ec.ECDSA(HASHING[ckm]()))
    token.verify(user_session, ckm, pub, data, sig)


# ------------------------------------------------------------------ item 6: big integers


def _rsa_private_template(key, pad: bytes) -> dict:
    n = key.private_numbers()
    pub = n.public_numbers
    return {CKA_CLASS: CKO_PRIVATE_KEY, CKA_KEY_TYPE: CKK_RSA, CKA_TOKEN: False, CKA_SIGN: True,
            CKA_MODULUS: pad + keys.int_bytes(pub.n), CKA_PUBLIC_EXPONENT: pad + keys.int_bytes(pub.e),
            CKA_PRIVATE_EXPONENT: pad + keys.int_bytes(n.d), CKA_PRIME_1: pad + keys.int_bytes(n.p),
            CKA_PRIME_2: pad + keys.int_bytes(n.q), CKA_EXPONENT_1: pad + keys.int_bytes(n.dmp1),
            CKA_EXPONENT_2: pad + keys.int_bytes(n.dmq1), CKA_COEFFICIENT: pad + keys.int_bytes(n.iqmp)}


def test_generate_with_padded_public_exponent(token, user_session):
    """CKA_PUBLIC_EXPONENT = 00 01 00 01 is 65537: generation succeeds, reads back 01 00 01."""
    pub, priv = token.generate_key_pair(
        user_session, CKM_RSA_PKCS_KEY_PAIR_GEN,
        {CKA_TOKEN: False, CKA_VERIFY: True, CKA_MODULUS_BITS: 2048, CKA_PUBLIC_EXPONENT: b"\x00\x01\x00\x01"},
        {CKA_TOKEN: False, CKA_SIGN: True},
    )
    assert token.get(user_session, pub, CKA_PUBLIC_EXPONENT) == b"\x01\x00\x01"
    assert token.get(user_session, priv, CKA_PUBLIC_EXPONENT) == b"\x01\x00\x01"
    assert token.get(user_session, pub, CKA_MODULUS)[0] != 0
    # a bad exponent padded is still the bad exponent, refused as it is unpadded
    for form in (b"\x02", b"\x00\x00\x02"):
        with raises_ckr(CKR_ATTRIBUTE_VALUE_INVALID):
            token.generate_key_pair(
                user_session, CKM_RSA_PKCS_KEY_PAIR_GEN,
                {CKA_TOKEN: False, CKA_MODULUS_BITS: 2048, CKA_PUBLIC_EXPONENT: form}, {CKA_TOKEN: False},
            )


@pytest.mark.parametrize("pad", [b"\x00", b"\x00\x00\x00"])
def test_created_big_integers_read_back_normal_and_match_both_forms(token, user_session, pad):
    key = rsa.generate_private_key(65537, 2048)
    template = _rsa_private_template(key, pad)
    priv = token.create(user_session, template)
    for cka in (CKA_MODULUS, CKA_PUBLIC_EXPONENT):
        assert token.get(user_session, priv, cka) == template[cka][len(pad):]
    pub_n = key.public_key().public_numbers()
    pub = token.create(user_session, {CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_RSA, CKA_TOKEN: False,
                                      CKA_VERIFY: True, CKA_MODULUS: pad + keys.int_bytes(pub_n.n),
                                      CKA_PUBLIC_EXPONENT: pad + b"\x01\x00\x01"})
    assert token.get(user_session, pub, CKA_MODULUS) == keys.int_bytes(pub_n.n)
    assert token.get(user_session, pub, CKA_PUBLIC_EXPONENT) == b"\x01\x00\x01"
    # the key works: the token signs, pyca verifies, the token verifies
    sig = token.sign(user_session, CKM_SHA256_RSA_PKCS, priv, b"item 6")
    key.public_key().verify(sig, b"item 6", padding.PKCS1v15(), hashes.SHA256())
    token.verify(user_session, CKM_SHA256_RSA_PKCS, pub, b"item 6", sig)
    # C_FindObjects matches the normal form and any padded form
    for form in (keys.int_bytes(pub_n.n), b"\x00" + keys.int_bytes(pub_n.n), b"\x00\x00" + keys.int_bytes(pub_n.n)):
        assert sorted(token.find(user_session, {CKA_MODULUS: form})) == sorted([priv, pub])
    assert token.find(user_session, {CKA_MODULUS: form, CKA_PUBLIC_EXPONENT: b"\x00\x00\x01\x00\x01",
                                     CKA_CLASS: CKO_PUBLIC_KEY}) == [pub]


def test_big_integer_all_zero_keeps_one_byte():
    """The codec's normal form: leading zeros stripped, at least one byte kept."""
    assert codec.decode(CKA_PRIME, b"\x00\x00") == b"\x00"
    assert codec.decode(CKA_BASE, b"\x00\x02") == b"\x02"
    assert codec.check_value(CKA_SUBPRIME, bytearray(b"\x00\x07")) == b"\x07"
    assert codec.encode(CKA_MODULUS, b"\x00\x80") == b"\x80"
    assert codec.decode(CKA_VALUE, b"\x00\x01") == b"\x00\x01"  # an octet string for secret keys


# ------------------------------------------------------------------ item 7: argument checks first

NOT_A_MECHANISM = 0x7FFF_FF00  # in no registry
GARBAGE_PARAM = b"\x01\x02\x03"  # no parameter struct of any mechanism is 3 bytes


@pytest.mark.parametrize("ckm", [CKM_AES_KEY_GEN, CKM_RSA_PKCS, NOT_A_MECHANISM])
def test_generate_key_null_arguments_before_mechanism(token, user_session, ckm):
    m, _keep = token.mechanism(ckm)
    h = ffi.new("CK_OBJECT_HANDLE *")
    t = Template({CKA_VALUE_LEN: 16, CKA_TOKEN: False})
    for template, count, ph in ((ffi.NULL, 1, h), (t.array, t.count, ffi.NULL), (ffi.NULL, 0, ffi.NULL)):
        assert token.call("C_GenerateKey", user_session, m, template, count, ph) == CKR_ARGUMENTS_BAD
    if ckm != CKM_AES_KEY_GEN:  # valid arguments: now the mechanism answers
        assert token.call("C_GenerateKey", user_session, m, t.array, t.count, h) == CKR_MECHANISM_INVALID


@pytest.mark.parametrize("ckm", [CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_AES_KEY_GEN, NOT_A_MECHANISM])
def test_generate_key_pair_null_arguments_before_mechanism(token, user_session, ckm):
    m, _keep = token.mechanism(ckm)
    hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
    t = Template({CKA_TOKEN: False})
    for args in ((ffi.NULL, 1, t.array, t.count, hp, hq), (t.array, t.count, ffi.NULL, 2, hp, hq),
                 (t.array, t.count, t.array, t.count, ffi.NULL, hq), (t.array, t.count, t.array, t.count, hp, ffi.NULL)):
        assert token.call("C_GenerateKeyPair", user_session, m, *args) == CKR_ARGUMENTS_BAD


def test_derive_and_unwrap_null_arguments_before_mechanism(token, user_session):
    m, _keep = token.mechanism(NOT_A_MECHANISM)
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_DeriveKey", user_session, m, 0, ffi.NULL, 1, h) == CKR_ARGUMENTS_BAD
    assert token.call("C_DeriveKey", user_session, m, 0, ffi.NULL, 0, ffi.NULL) == CKR_ARGUMENTS_BAD
    assert token.call("C_UnwrapKey", user_session, m, 0, b"x", 1, ffi.NULL, 1, h) == CKR_ARGUMENTS_BAD
    assert token.call("C_UnwrapKey", user_session, m, 0, b"x", 1, ffi.NULL, 0, ffi.NULL) == CKR_ARGUMENTS_BAD
    assert token.call("C_WrapKey", user_session, m, 0, 0, ffi.NULL, ffi.NULL) == CKR_ARGUMENTS_BAD


def _oaep_param():
    return ffi.new("CK_RSA_PKCS_OAEP_PARAMS *", {"hashAlg": CKM_SHA256, "mgf": CKG_MGF1_SHA256,
                                                 "source": CKZ_DATA_SPECIFIED})


@pytest.fixture
def keys_of_each(token, user_session):
    pub, priv = token.generate_key_pair(
        user_session, CKM_RSA_PKCS_KEY_PAIR_GEN,
        {CKA_TOKEN: False, CKA_VERIFY: True, CKA_ENCRYPT: True, CKA_WRAP: True, CKA_MODULUS_BITS: 2048},
        {CKA_TOKEN: False, CKA_SIGN: True, CKA_DECRYPT: True, CKA_UNWRAP: True, CKA_DERIVE: True},
    )
    aes = token.generate_key(user_session, CKM_AES_KEY_GEN, {CKA_TOKEN: False, CKA_VALUE_LEN: 16, CKA_ENCRYPT: True,
                                                              CKA_DECRYPT: True, CKA_SIGN: True, CKA_VERIFY: True,
                                                              CKA_DERIVE: True, CKA_WRAP: True, CKA_UNWRAP: True,
                                                              CKA_EXTRACTABLE: True})
    return {"pub": pub, "priv": priv, "aes": aes}


# (function, mechanism it cannot do, key): each with a parameter no reader would accept
CANNOT = [
    ("C_SignInit", CKM_RSA_PKCS_OAEP, "priv"),
    ("C_VerifyInit", CKM_RSA_PKCS_OAEP, "pub"),
    ("C_SignInit", CKM_AES_GCM, "aes"),
    ("C_VerifyInit", CKM_AES_CBC, "aes"),
    ("C_EncryptInit", CKM_SHA256_RSA_PKCS_PSS, "pub"),
    ("C_DecryptInit", CKM_RSA_PKCS_PSS, "priv"),
    ("C_EncryptInit", CKM_SHA256_HMAC_GENERAL, "aes"),
]


@pytest.mark.parametrize("fn,ckm,key", CANNOT, ids=lambda v: v if isinstance(v, str) else hex(v))
def test_init_capability_before_parameter(token, user_session, keys_of_each, fn, ckm, key):
    """A mechanism that cannot do the function is CKR_MECHANISM_INVALID whatever its
    parameter: garbage, valid, or a valid one the module has already seen (its reader cached)."""
    for param in (GARBAGE_PARAM, None):
        m, _keep = token.mechanism(ckm, param)
        assert token.call(fn, user_session, m, keys_of_each[key]) == CKR_MECHANISM_INVALID
    if ckm == CKM_RSA_PKCS_OAEP:  # a real OAEP use first caches its parameter reader
        ct = token.encrypt(user_session, CKM_RSA_PKCS_OAEP, keys_of_each["pub"], b"x", _oaep_param())
        assert token.decrypt(user_session, CKM_RSA_PKCS_OAEP, keys_of_each["priv"], ct, _oaep_param()) == b"x"
        m, _keep = token.mechanism(ckm, _oaep_param())
        assert token.call(fn, user_session, m, keys_of_each[key]) == CKR_MECHANISM_INVALID
        assert token.call("C_DigestInit", user_session, m) == CKR_MECHANISM_INVALID


def test_other_functions_capability_before_parameter(token, user_session, keys_of_each):
    h = ffi.new("CK_OBJECT_HANDLE *")
    n = ffi.new("CK_ULONG *")
    t = Template({CKA_TOKEN: False, CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 16})
    m, _keep = token.mechanism(CKM_AES_GCM, GARBAGE_PARAM)
    assert token.call("C_DigestInit", user_session, m) == CKR_MECHANISM_INVALID
    assert token.call("C_GenerateKey", user_session, m, t.array, t.count, h) == CKR_MECHANISM_INVALID
    assert token.call("C_DeriveKey", user_session, m, keys_of_each["aes"], t.array, t.count, h) == CKR_MECHANISM_INVALID
    m, _keep = token.mechanism(CKM_SHA256_RSA_PKCS_PSS, GARBAGE_PARAM)
    assert token.call("C_WrapKey", user_session, m, keys_of_each["pub"], keys_of_each["aes"], ffi.NULL, n) \
        == CKR_MECHANISM_INVALID
    assert token.call("C_UnwrapKey", user_session, m, keys_of_each["priv"], b"x" * 256, 256, t.array, t.count, h) \
        == CKR_MECHANISM_INVALID
    hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_GenerateKeyPair", user_session, m, t.array, t.count, t.array, t.count, hp, hq) \
        == CKR_MECHANISM_INVALID
    # a mechanism that can do it still parses its parameter: garbage is PARAM_INVALID
    m, _keep = token.mechanism(CKM_RSA_PKCS_OAEP, GARBAGE_PARAM)
    assert token.call("C_EncryptInit", user_session, m, keys_of_each["pub"]) == CKR_MECHANISM_PARAM_INVALID
