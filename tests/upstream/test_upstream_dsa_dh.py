"""DSA and PKCS#3 DH keys on an upstream-backed token (issue 23 item 11), on a real SoftHSM2:
the key pair is made upstream, its public values (p, q, g, y) are read back into our store so
pyca checks what the upstream signs and agrees; domain parameters are made in software."""

from __future__ import annotations

import warnings

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dh, dsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as A
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)
from vectors_abi import derive

UPSTREAM = A.SHIM_BACKEND_UPSTREAM
MSG = b"signed by the upstream's DSA key"

pytestmark = [pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed"),
              pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")]


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _domain(p11, s: int, mech: int, bits: int, types: tuple[int, ...]) -> dict[int, bytes]:
    h = p11.generate_key(s, mech, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_TOKEN: False, A.CKA_PRIME_BITS: bits})
    return {t: p11.get(s, h, t) for t in types}


def test_dsa_key_pair_upstream_signs_pyca_verifies(p11, up_session):
    s = up_session
    params = _domain(p11, s, A.CKM_DSA_PARAMETER_GEN, 1024, (A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE))
    pub, priv = p11.generate_key_pair(s, A.CKM_DSA_KEY_PAIR_GEN, {A.CKA_TOKEN: True, A.CKA_VERIFY: True, **params},
                                      {A.CKA_TOKEN: True, A.CKA_SIGN: True})
    assert p11.get(s, priv, A.CKA_SHIM_BACKEND) == UPSTREAM
    assert p11.get(s, priv, A.CKA_PRIME) == params[A.CKA_PRIME]
    numbers = dsa.DSAParameterNumbers(*(_int(params[t]) for t in (A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE)))
    public = dsa.DSAPublicNumbers(_int(p11.get(s, pub, A.CKA_VALUE)), numbers).public_key()
    sig = p11.sign(s, A.CKM_DSA_SHA1, priv, MSG)
    assert len(sig) == 40
    public.verify(utils.encode_dss_signature(_int(sig[:20]), _int(sig[20:])), MSG, hashes.SHA1())
    p11.verify(s, A.CKM_DSA_SHA1, pub, MSG, sig)


def test_dh_key_pair_upstream_agrees_with_pyca(p11, up_session):
    s = up_session
    params = _domain(p11, s, A.CKM_DH_PKCS_PARAMETER_GEN, 512, (A.CKA_PRIME, A.CKA_BASE))
    pub, priv = p11.generate_key_pair(s, A.CKM_DH_PKCS_KEY_PAIR_GEN, {A.CKA_TOKEN: True, **params},
                                      {A.CKA_TOKEN: True, A.CKA_DERIVE: True})
    assert p11.get(s, priv, A.CKA_SHIM_BACKEND) == UPSTREAM
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        group = dh.DHParameterNumbers(_int(params[A.CKA_PRIME]), _int(params[A.CKA_BASE]))
        peer = group.parameters().generate_private_key()
        z = peer.exchange(dh.DHPublicNumbers(_int(p11.get(s, pub, A.CKA_VALUE)), group).public_key()).rjust(64, b"\0")
    h = derive(p11, s, A.CKM_DH_PKCS_DERIVE, priv,
               {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 32, A.CKA_TOKEN: False,
                A.CKA_ENCRYPT: True}, peer.public_key().public_numbers().y.to_bytes(64, "big"))
    assert p11.get(s, h, A.CKA_SHIM_BACKEND) == UPSTREAM  # the secret stays upstream: check what it computes
    enc = Cipher(algorithms.AES(z[-32:]), modes.ECB()).encryptor()
    assert p11.encrypt(s, A.CKM_AES_ECB, h, b"\x44" * 16) == enc.update(b"\x44" * 16) + enc.finalize()
