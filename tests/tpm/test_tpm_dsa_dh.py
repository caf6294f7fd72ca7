"""DSA and PKCS#3 DH on a TPM slot (issue 23 item 11), through the built library on a real
swtpm: domain parameters are public values made in software whatever the token's backend;
DSA and DH private keys are sealed like every other software key; a sealed DH key feeds
CKM_DH_PKCS_DERIVE only under ``[slots.tpm] software_derive`` (the rule of every
derivation from sealed material)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from p11 import raises_ckr, write_config  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_tpm_backend import user_token  # noqa: E402
from test_tpm_derive_policy import tpm_slot  # noqa: E402
from vectors_abi import derive  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import dh, dsa, utils  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED  # noqa: E402

import pytest  # noqa: E402

#: pyca deprecates finite-field DH (the module silences it; pytest resets filters per test)
pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")

MSG = b"a DSA signature with a sealed key"
SECRET = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_VALUE_LEN: 32,
          S.CKA_TOKEN: False, S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True}


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _domain(client, s, mech: int, bits: int) -> dict[int, bytes]:
    h = client.generate_key(s, mech, {S.CKA_CLASS: S.CKO_DOMAIN_PARAMETERS, S.CKA_TOKEN: True, S.CKA_PRIME_BITS: bits})
    assert client.get(s, h, S.CKA_PRIME_BITS) == bits
    types = (S.CKA_PRIME, S.CKA_SUBPRIME, S.CKA_BASE) if mech == S.CKM_DSA_PARAMETER_GEN else (S.CKA_PRIME, S.CKA_BASE)
    return {t: client.get(s, h, t) for t in types}


def test_dsa_on_a_tpm_slot(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-dsa") as (client, s):
        params = _domain(client, s, S.CKM_DSA_PARAMETER_GEN, 1024)
        pub, priv = client.generate_key_pair(s, S.CKM_DSA_KEY_PAIR_GEN, {S.CKA_TOKEN: True, S.CKA_VERIFY: True, **params},
                                             {S.CKA_TOKEN: True, S.CKA_SIGN: True})
        assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
        sig = client.sign(s, S.CKM_DSA_SHA256, priv, MSG)
        numbers = dsa.DSAParameterNumbers(*(_int(params[t]) for t in (S.CKA_PRIME, S.CKA_SUBPRIME, S.CKA_BASE)))
        public = dsa.DSAPublicNumbers(_int(client.get(s, pub, S.CKA_VALUE)), numbers).public_key()
        public.verify(utils.encode_dss_signature(_int(sig[:20]), _int(sig[20:])), MSG, hashes.SHA256())


def test_dh_sealed_key_derives_only_under_software_derive(swtpm, lib_path, tmp_path):
    for allowed in (False, True):
        conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=allowed))
        with user_token(lib_path, conf, f"tpm-dh-{allowed}") as (client, s):
            params = _domain(client, s, S.CKM_DH_PKCS_PARAMETER_GEN, 512)
            pub, priv = client.generate_key_pair(s, S.CKM_DH_PKCS_KEY_PAIR_GEN, {S.CKA_TOKEN: True, **params},
                                                 {S.CKA_TOKEN: True, S.CKA_DERIVE: True})
            assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
            with warnings.catch_warnings():  # pyca deprecates finite-field DH
                warnings.simplefilter("ignore")
                group = dh.DHParameterNumbers(_int(params[S.CKA_PRIME]), _int(params[S.CKA_BASE]))
                peer = group.parameters().generate_private_key()
                ours = dh.DHPublicNumbers(_int(client.get(s, pub, S.CKA_VALUE)), group).public_key()
                z = peer.exchange(ours).rjust(64, b"\0")
            peer_y = peer.public_key().public_numbers().y.to_bytes(64, "big")
            if not allowed:
                with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
                    derive(client, s, S.CKM_DH_PKCS_DERIVE, priv, SECRET, peer_y)
                continue
            h = derive(client, s, S.CKM_DH_PKCS_DERIVE, priv, SECRET, peer_y)
            assert client.get(s, h, S.CKA_VALUE) == z[-32:]
