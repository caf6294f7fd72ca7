"""ML-DSA, ML-KEM and SLH-DSA keys on a TPM slot (issue 17 item 6), through the built library on a real
swtpm. The TPM has no PQC algorithm; its sealed path takes any algorithm: the private key's
secret attributes (CKA_SEED, the expanded CKA_VALUE; SLH-DSA's CKA_VALUE) are encrypted under a data key sealed by
the TPM to its PCR policy and the user's auth value, and unsealed for each use (the unseal
cache is off here, so every operation goes through the TPM). docs/pqc.md "Hybrid tokens"."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from p11 import raises_ckr, write_config  # noqa: E402
from pqc_util import decapsulate, encapsulate  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_tpm_backend import user_token  # noqa: E402
from test_tpm_derive_policy import tpm_slot  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem  # noqa: E402
from pqcrypto.sign import slh_dsa_sha2_128f  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED  # noqa: E402

MSG = b"an ML-DSA signature with a TPM-sealed key"


def test_ml_dsa_key_sealed_by_the_tpm(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-mldsa") as (client, s):
        pub, priv = client.generate_key_pair(s, S.CKM_ML_DSA_KEY_PAIR_GEN,
                                             {S.CKA_TOKEN: True, S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: S.CKP_ML_DSA_87},
                                             {S.CKA_TOKEN: True, S.CKA_SIGN: True, S.CKA_ID: b"hybrid-1"})
        assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
        assert client.get(s, priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_TPM
        # sealed keys are sensitive and never extractable: the seed does not come out (the
        # sealed attributes are not on the object at all, as for every sealed key: TYPE_INVALID)
        assert client.get(s, priv, S.CKA_SENSITIVE) is True and client.get(s, priv, S.CKA_EXTRACTABLE) is False
        for cka in (S.CKA_SEED, S.CKA_VALUE):
            with raises_ckr(S.CKR_ATTRIBUTE_TYPE_INVALID):
                client.get(s, priv, cka)
        public = mldsa.MLDSA87PublicKey.from_public_bytes(client.get(s, pub, S.CKA_VALUE))
        for _ in range(2):
            sig = client.sign(s, S.CKM_ML_DSA, priv, MSG)
            public.verify(sig, MSG)
            client.verify(s, S.CKM_ML_DSA, pub, MSG, sig)
        digest_sig = client.sign(s, S.CKM_HASH_ML_DSA_SHA512, priv, MSG)
        client.verify(s, S.CKM_HASH_ML_DSA_SHA512, pub, MSG, digest_sig)
    # the store holds the material only sealed: no clear seed or expanded key row
    db = sqlite3.connect(tmp_path / "store.db")
    clear = {t for (t,) in db.execute("select distinct type from attributes where not is_sealed")}
    assert S.CKA_SEED not in clear
    seed_rows = db.execute("select count(*) from attributes where type = ?", (S.CKA_SEED,)).fetchone()[0]
    assert seed_rows == 0  # inside the TPM-sealed envelope (CKA_SHIM_TPM_SEALED), not a row of its own


def test_ml_kem_key_sealed_by_the_tpm_decapsulates(swtpm, lib_path, tmp_path):
    """A sealed ML-KEM key decapsulates on its unsealed seed (a KEM is no derivation from the
    key: ``software_derive`` does not gate it; docs/pqc.md)."""
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-mlkem") as (client, s):
        pub, priv = client.generate_key_pair(s, S.CKM_ML_KEM_KEY_PAIR_GEN,
                                             {S.CKA_TOKEN: True, S.CKA_PARAMETER_SET: S.CKP_ML_KEM_1024},
                                             {S.CKA_TOKEN: True})
        assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
        secret, ct = mlkem.MLKEM1024PublicKey.from_public_bytes(client.get(s, pub, S.CKA_VALUE)).encapsulate()
        h = decapsulate(client, s, priv, ct)
        assert client.get(s, h, S.CKA_VALUE) == secret
        ct2, h2 = encapsulate(client, s, pub)
        assert client.get(s, decapsulate(client, s, priv, ct2), S.CKA_VALUE) == client.get(s, h2, S.CKA_VALUE)


def test_slh_dsa_key_sealed_by_the_tpm(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-slhdsa") as (client, s):
        pub, priv = client.generate_key_pair(s, S.CKM_SLH_DSA_KEY_PAIR_GEN,
                                             {S.CKA_TOKEN: True, S.CKA_PARAMETER_SET: S.CKP_SLH_DSA_SHA2_128F},
                                             {S.CKA_TOKEN: True, S.CKA_SIGN: True})
        assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
        sig = client.sign(s, S.CKM_SLH_DSA, priv, MSG)
        slh_dsa_sha2_128f.verify(client.get(s, pub, S.CKA_VALUE), MSG, sig)
