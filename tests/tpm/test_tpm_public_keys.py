"""Issue 23 item 5 on a TPM slot, through the built library on a real swtpm: a token key with
CKA_PRIVATE FALSE is made and used without a login. Its material stays sealed to the TPM (and
its PCR policy); what the public-object key seals in the store is the key's TPM auth value,
with no PIN in its policy (docs/security.md, "Non-private keys")."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from p11 import raises_ckr, write_config  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_tpm_backend import user_token  # noqa: E402
from test_tpm_derive_policy import tpm_slot  # noqa: E402

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

from cryptoki_shim import der  # noqa: E402
from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND  # noqa: E402

P256 = bytes.fromhex("06082a8648ce3d030107")


def _verify(point_attr: bytes, data: bytes, sig: bytes) -> None:
    found = der.read_one(point_attr)
    assert found is not None
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), found[1])
    pub.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
               data, ec.ECDSA(hashes.SHA256()))


def test_public_tpm_keys_without_login(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-public") as (client, s):
        client.logout(s)
        pub, priv = client.generate_key_pair(
            s, S.CKM_EC_KEY_PAIR_GEN,
            {S.CKA_TOKEN: True, S.CKA_EC_PARAMS: P256, S.CKA_VERIFY: True, S.CKA_PRIVATE: False, S.CKA_LABEL: b"p"},
            {S.CKA_TOKEN: True, S.CKA_SIGN: True, S.CKA_PRIVATE: False, S.CKA_LABEL: b"p"})
        aes = client.generate_key(s, S.CKM_AES_KEY_GEN, {S.CKA_TOKEN: True, S.CKA_VALUE_LEN: 32, S.CKA_ENCRYPT: True,
                                                          S.CKA_DECRYPT: True, S.CKA_PRIVATE: False, S.CKA_LABEL: b"a"})
        assert client.get(s, priv, CKA_SHIM_TPM_KIND) is not None  # a TPM key, resident or sealed
        point = client.get(s, pub, S.CKA_EC_POINT)
        _verify(point, b"tpm", client.sign(s, S.CKM_ECDSA_SHA256, priv, b"tpm"))
        ct = client.encrypt(s, S.CKM_AES_CBC_PAD, aes, b"public tpm key", bytes(16))
        with raises_ckr(S.CKR_USER_NOT_LOGGED_IN):  # a private one still needs the user
            client.generate_key(s, S.CKM_AES_KEY_GEN, {S.CKA_TOKEN: True, S.CKA_VALUE_LEN: 32, S.CKA_ENCRYPT: True})
        client.finalize()
        client.initialize()
        s = client.open(0, rw=False)
        [priv] = client.find(s, {S.CKA_LABEL: b"p", S.CKA_CLASS: S.CKO_PRIVATE_KEY})
        [aes] = client.find(s, {S.CKA_LABEL: b"a"})
        _verify(point, b"again", client.sign(s, S.CKM_ECDSA_SHA256, priv, b"again"))
        assert client.decrypt(s, S.CKM_AES_CBC_PAD, aes, ct, bytes(16)) == b"public tpm key"
