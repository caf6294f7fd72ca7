"""A hybrid token (issue 17 item 6, docs/pqc.md "Hybrid tokens"): one slot whose classical key
lives in the upstream HSM (SoftHSM2) and whose ML-DSA key is sealed by the TPM (swtpm), both
under one CKA_ID, so an application finds the pair by its id and signs with both (a composite
signature is the two signatures over the same message). Per-object routing: the slot's
default backend is the upstream one; the PQC key names its backend with CKA_SHIM_BACKEND."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tpm"))
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, utils  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from p11 import P11  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_tpm_derive_policy import PCRS  # noqa: E402
from upstream_hsm import HAVE_SOFTHSM, hsm, ready_token, upstream_slot, write_config  # noqa: E402,F401

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")

P256 = bytes.fromhex("06082a8648ce3d030107")
MSG = b"a composite signature: ECDSA P-256 in the HSM and ML-DSA-65 sealed by the TPM"
KEY_ID = b"\x17composite-1"


def test_classical_in_the_hsm_pqc_in_the_tpm_under_one_id(hsm, swtpm, lib_path, tmp_path, monkeypatch):
    tpm = f'[slots.tpm]\ntcti = "{swtpm.tcti}"\npcrs = "{PCRS}"\nunseal_cache_seconds = 0\n'
    conf = write_config(tmp_path, slots=upstream_slot(hsm, extra=tpm))
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11(lib_path)
    p.initialize()
    try:
        s = ready_token(p)
        ec_pub, ec_priv = p.generate_key_pair(
            s, S.CKM_EC_KEY_PAIR_GEN, {S.CKA_TOKEN: True, S.CKA_EC_PARAMS: P256, S.CKA_ID: KEY_ID, S.CKA_VERIFY: True},
            {S.CKA_TOKEN: True, S.CKA_ID: KEY_ID, S.CKA_SIGN: True})
        pq_pub, pq_priv = p.generate_key_pair(
            s, S.CKM_ML_DSA_KEY_PAIR_GEN,
            {S.CKA_TOKEN: True, S.CKA_PARAMETER_SET: S.CKP_ML_DSA_65, S.CKA_ID: KEY_ID, S.CKA_VERIFY: True},
            {S.CKA_TOKEN: True, S.CKA_ID: KEY_ID, S.CKA_SIGN: True, S.CKA_SHIM_BACKEND: S.SHIM_BACKEND_TPM})
        assert p.get(s, ec_priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_UPSTREAM
        assert p.get(s, pq_priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_TPM
        # the application's view: the private keys of one CKA_ID, told apart by CKA_KEY_TYPE
        found = p.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_ID: KEY_ID})
        assert sorted(found) == sorted([ec_priv, pq_priv])
        by_type = {p.get(s, h, S.CKA_KEY_TYPE): h for h in found}
        digest = hashes.Hash(hashes.SHA256())
        digest.update(MSG)
        ecdsa_sig = p.sign(s, S.CKM_ECDSA, by_type[S.CKK_EC], digest.finalize())  # SoftHSM2: raw ECDSA
        mldsa_sig = p.sign(s, S.CKM_ML_DSA, by_type[S.CKK_ML_DSA], MSG)
        # a verifier checks both halves (here: pyca, outside the token)
        point = p.get(s, ec_pub, S.CKA_EC_POINT)[2:]
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point).verify(
            utils.encode_dss_signature(int.from_bytes(ecdsa_sig[:32], "big"), int.from_bytes(ecdsa_sig[32:], "big")),
            MSG, ec.ECDSA(hashes.SHA256()))
        mldsa.MLDSA65PublicKey.from_public_bytes(p.get(s, pq_pub, S.CKA_VALUE)).verify(mldsa_sig, MSG)
        # the HSM holds the classical key only; the PQC key is not in it
        listing = hsm.objects()
        assert "Private Key Object; EC" in listing and "ML-DSA" not in listing.upper().replace("_", "-")
    finally:
        p.finalize()
