"""Issue 23, items 4, 6 and 7, through the built library: raw ECDSA on every advertised
curve, big integers in their unsigned big-endian normal form, and the order of argument
checks before mechanism checks."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cryptoki_shim import der
from cryptoki_shim.mechanisms import keys
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_KEY_TYPE,
    CKA_SIGN,
    CKA_TOKEN,
    CKA_VERIFY,
    CKK_EC,
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKO_PUBLIC_KEY,
)

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
