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
from p11 import raises_ckr

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
