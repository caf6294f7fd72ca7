"""Key material attributes as generation stores them: our shortcuts give pyca's exact bytes.

``keys`` builds an EC SubjectPublicKeyInfo from a per-curve prefix and the point instead of
asking OpenSSL for a second serialization, and ``key_pair_material`` computes the shared
values of a key pair once; both must be byte-for-byte what the plain serialization gives.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x448

from cryptoki_shim import der, spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys

WEIERSTRASS = [c for c in keys.CURVES if c.key_type == spec.CKK_EC]


def _spki(key) -> bytes:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("curve", WEIERSTRASS, ids=lambda c: c.names[0])
def test_ec_material_matches_pyca(curve: keys.Curve) -> None:
    key = ec.generate_private_key(curve.pyca())
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    public, private = keys.key_pair_material(key)
    assert public == keys.public_material(key) == keys.public_material(key.public_key())
    assert private == keys.private_material(key)
    assert public[spec.CKA_PUBLIC_KEY_INFO] == private[spec.CKA_PUBLIC_KEY_INFO] == _spki(key)
    assert public[spec.CKA_EC_POINT] == der.tlv(0x04, point)
    assert public[spec.CKA_EC_PARAMS] == private[spec.CKA_EC_PARAMS] == keys.ec_params_der(curve)
    assert private[spec.CKA_VALUE] == key.private_numbers().private_value.to_bytes(curve.size, "big")
    # and the attributes load back into the same key
    assert keys.parse_public(public).public_numbers() == key.public_key().public_numbers()
    assert keys.parse_private(private).private_numbers() == key.private_numbers()


@pytest.mark.parametrize("make", [lambda: rsa.generate_private_key(65537, 2048),
                                  ed25519.Ed25519PrivateKey.generate, x448.X448PrivateKey.generate],
                         ids=["rsa", "ed25519", "x448"])
def test_other_key_pairs_same_as_separate_calls(make) -> None:
    key = make()
    public, private = keys.key_pair_material(key)
    assert public == keys.public_material(key)
    assert private == keys.private_material(key)
    assert public[spec.CKA_PUBLIC_KEY_INFO] == _spki(key)


def test_curve_params_memo_keeps_errors_and_spellings() -> None:
    p256 = keys.encode_oid("1.2.840.10045.3.1.7")
    assert keys.curve_from_params(p256) is keys.curve_from_params(bytearray(p256))
    assert keys.curve_from_params(der.tlv(0x13, b"prime256v1")).oid == "1.2.840.10045.3.1.7"
    for bad, ckr in ((keys.encode_oid("1.2.3.4"), spec.CKR_CURVE_NOT_SUPPORTED),
                     (b"\x06\x08\x2a", spec.CKR_DOMAIN_PARAMS_INVALID)):
        for _ in range(2):  # the second time too: failures are never remembered as a curve
            with pytest.raises(CryptokiError) as exc:
                keys.curve_from_params(bad)
            assert exc.value.ckr == ckr
