"""Known-answer tests of ML-DSA and ML-KEM through the built library.

Source: the ``cryptography-vectors`` package (50.0.2, a test dependency), which ships the NIST
submission-format KAT files of FIPS 203/204 (generated from the standards' reference code):
``asymmetric/MLDSA/kat_MLDSA_{44,65,87}_det_pure.rsp`` (ξ, pk, sk, msg, ctx, sm = sig ‖ msg;
deterministic pure ML-DSA with a context) and ``asymmetric/MLKEM/kat_MLKEM_{512,768,1024}.rsp``
(d, z, pk, sk, ct, ss, and ct_n/ss_n: an invalid ciphertext and its implicit-rejection
secret). They carry the same values ACVP's keyGen/sigVer/encapDecap tests check; see
docs/pqc.md for what each test proves and what cannot be (deterministic signing and
encapsulation with a given randomness m are not reachable through PKCS#11 or pyca).

* keyGen: the private key is made by C_CreateObject from the seed (ξ; d ‖ z) **with** the KAT's
  expanded sk as CKA_VALUE, which the token accepts only if its own expansion is that sk; the
  public key the token derives (CKA_PUBLIC_KEY_INFO) ends with the KAT's pk.
* sigVer: the KAT signature verifies through C_Verify with the context; a changed one does not.
* sigGen: the token's signature of the KAT message and context verifies under the KAT pk by
  pyca (signing is hedged, so the KAT's deterministic signature is not reproduced).
* decap: C_DecapsulateKey of ct gives ss; of ct_n gives ss_n (implicit rejection).
* encap: C_EncapsulateKey to the KAT pk; pyca's decapsulation with the KAT key gives the secret.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem
from pqcrypto.kem import ml_kem_512

from cryptoki_shim import spec as S
from p11 import P11, raises_ckr
from pqc_util import VECTORS, decapsulate, encapsulate, kat_records, sign_context

DSA_SETS = {"44": (S.CKP_ML_DSA_44, mldsa.MLDSA44PublicKey), "65": (S.CKP_ML_DSA_65, mldsa.MLDSA65PublicKey),
            "87": (S.CKP_ML_DSA_87, mldsa.MLDSA87PublicKey)}
def _pyca_decaps(cls):
    return lambda seed, sk, ct: cls.from_seed_bytes(seed).decapsulate(ct)


#: the second implementation that decapsulates our encapsulations: pyca, and for ML-KEM-512
#: (not in pyca) the pqcrypto package's own decapsulation with the KAT's dk
KEM_SETS = {"512": (S.CKP_ML_KEM_512, lambda seed, sk, ct: ml_kem_512.decaps(sk, ct)),
            "768": (S.CKP_ML_KEM_768, _pyca_decaps(mlkem.MLKEM768PrivateKey)),
            "1024": (S.CKP_ML_KEM_1024, _pyca_decaps(mlkem.MLKEM1024PrivateKey))}
DSA_RECORDS = 100  # every record: three objects and four operations each
KEM_RECORDS = 100  # of 1000 per parameter set


@pytest.mark.parametrize("name", list(DSA_SETS))
def test_ml_dsa_keygen_sigver_siggen(token: P11, user_session: int, name: str) -> None:
    s = user_session
    ckp, pub_cls = DSA_SETS[name]
    records = list(kat_records(VECTORS / "MLDSA" / f"kat_MLDSA_{name}_det_pure.rsp", DSA_RECORDS))
    assert len(records) == DSA_RECORDS
    for r in records:
        xi, pk, sk, msg, ctx = (bytes.fromhex(r[k]) for k in ("xi", "pk", "sk", "msg", "ctx"))
        sig = bytes.fromhex(r["sm"])[: -len(msg)] if msg else bytes.fromhex(r["sm"])
        hpriv = token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                                 S.CKA_SIGN: True, S.CKA_PARAMETER_SET: ckp, S.CKA_SEED: xi, S.CKA_VALUE: sk})
        assert token.get(s, hpriv, S.CKA_PUBLIC_KEY_INFO).endswith(pk)
        hpub = token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                                S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: ckp, S.CKA_VALUE: pk})
        token.verify(s, S.CKM_ML_DSA, hpub, msg, sig, sign_context(ctx))
        with raises_ckr(S.CKR_SIGNATURE_INVALID):
            token.verify(s, S.CKM_ML_DSA, hpub, msg + b"\x00", sig, sign_context(ctx))
        ours = token.sign(s, S.CKM_ML_DSA, hpriv, msg, sign_context(ctx))
        pub_cls.from_public_bytes(pk).verify(ours, msg, ctx)
        for h in (hpriv, hpub):
            token.destroy(s, h)


@pytest.mark.parametrize("name", list(DSA_SETS))
def test_ml_dsa_expanded_key_is_checked_against_the_seed(token: P11, user_session: int, name: str) -> None:
    s = user_session
    ckp, _ = DSA_SETS[name]
    r, other = list(kat_records(VECTORS / "MLDSA" / f"kat_MLDSA_{name}_det_pure.rsp", 2))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # another record's sk under this seed
        token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                         S.CKA_PARAMETER_SET: ckp, S.CKA_SEED: bytes.fromhex(r["xi"]),
                         S.CKA_VALUE: bytes.fromhex(other["sk"])})


@pytest.mark.parametrize("name", list(KEM_SETS))
def test_ml_kem_keygen_decap_encap(token: P11, user_session: int, name: str) -> None:
    s = user_session
    ckp, second_decaps = KEM_SETS[name]
    records = list(kat_records(VECTORS / "MLKEM" / f"kat_MLKEM_{name}.rsp", KEM_RECORDS))
    assert len(records) == KEM_RECORDS
    for r in records:
        seed = bytes.fromhex(r["d"] + r["z"])
        pk, sk, ct, ss, ct_n, ss_n = (bytes.fromhex(r[k]) for k in ("pk", "sk", "ct", "ss", "ct_n", "ss_n"))
        hpriv = token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                                 S.CKA_PARAMETER_SET: ckp, S.CKA_SEED: seed, S.CKA_VALUE: sk})
        assert token.get(s, hpriv, S.CKA_PUBLIC_KEY_INFO).endswith(pk)
        hss = decapsulate(token, s, hpriv, ct)
        assert token.get(s, hss, S.CKA_VALUE) == ss
        hss_n = decapsulate(token, s, hpriv, ct_n)
        assert token.get(s, hss_n, S.CKA_VALUE) == ss_n
        hpub = token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                                S.CKA_PARAMETER_SET: ckp, S.CKA_VALUE: pk})
        ct2, h2 = encapsulate(token, s, hpub)
        assert second_decaps(seed, sk, ct2) == token.get(s, h2, S.CKA_VALUE)
        for h in (hpriv, hss, hss_n, hpub, h2):
            token.destroy(s, h)
