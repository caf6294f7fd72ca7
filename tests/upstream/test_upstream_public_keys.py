"""Issue 23 item 5 on an upstream-backed slot (SoftHSM2 as the HSM), through our library: a
token key with CKA_PRIVATE FALSE is made and used without our login. The upstream object is
private on the upstream token (its material never leaves it); the pool's upstream login
serves it (docs/security.md, "Non-private keys")."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cryptoki_shim import spec as A
from cryptoki_shim.backends.upstream_attrs import CKA_SHIM_UPSTREAM_REF
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)
from p11 import raises_ckr

P256 = bytes.fromhex("06082a8648ce3d030107")

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")


def test_public_upstream_keys_without_our_login(p11, up_session):
    p11.logout(up_session)
    s = up_session
    pub, priv = p11.generate_key_pair(
        s, A.CKM_EC_KEY_PAIR_GEN, {A.CKA_EC_PARAMS: P256, A.CKA_TOKEN: True, A.CKA_PRIVATE: False, A.CKA_VERIFY: True},
        {A.CKA_TOKEN: True, A.CKA_PRIVATE: False, A.CKA_SIGN: True, A.CKA_LABEL: b"up"})
    assert p11.get(s, priv, CKA_SHIM_UPSTREAM_REF)  # the key lives upstream
    der = p11.get(s, pub, A.CKA_EC_POINT)
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), der[2:])
    digest = bytes(range(32))  # SoftHSM2 2.6 signs raw CKM_ECDSA only
    sig = p11.sign(s, A.CKM_ECDSA, priv, digest)
    point.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                 digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    with raises_ckr(A.CKR_USER_NOT_LOGGED_IN):
        p11.generate_key(s, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 32, A.CKA_TOKEN: True})
    p11.finalize()
    p11.initialize()
    s = p11.open(0, rw=False)
    [priv] = p11.find(s, {A.CKA_LABEL: b"up", A.CKA_CLASS: A.CKO_PRIVATE_KEY})
    assert len(p11.sign(s, A.CKM_ECDSA, priv, digest)) == 64
