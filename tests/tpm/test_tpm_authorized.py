"""Firmware updates do not brick keys (issue 20 item 2, docs/tpm.md "Firmware updates").

A slot with ``policy_authority`` makes keys whose policy is PolicyAuthorize(administrator's
key) + PolicyAuthValue. On swtpm (PCR 16 stands for the firmware PCRs): nothing authorised ->
refused; ``cryptoki-shim tpm authorize-pcrs`` -> both kinds sign; PCR extended ("firmware
update") -> refused with the PCR-mismatch code; a forged authorisation or a wrong signing
key does not help; the administrator authorises the new values -> they sign again. And
``cryptoki-shim tpm reseal`` moves sealed keys made before the authority existed under it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from p11 import USER_PIN, raises_ckr, write_config
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, P256, PCRS, clean_pcr, extend_pcr16, gen_ec, public_key, rs_to_der, \
    slot_config, user_token  # noqa: F401  (clean_pcr: fixture)
from test_tpm_lockout_cli import cli

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_authority, tpm_conn, tpm_keys


def pem_pair(directory: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public = directory / f"{name}.pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, private, public


def authority_slot(tcti: str, public: Path, auths: Path) -> str:
    return slot_config(tcti) + f'policy_authority = "{public}"\npcr_authorizations = "{auths}"\n'


def signs(client, s, pub: int, priv: int, eddsa: bool) -> None:
    if eddsa:
        public_key(client, s, pub).verify(client.sign(s, S.CKM_EDDSA, priv, b"m"), b"m")
    else:
        sig = client.sign(s, S.CKM_ECDSA_SHA256, priv, b"m")
        public_key(client, s, pub).verify(rs_to_der(sig), b"m", ec.ECDSA(hashes.SHA256()))


def refused(client, s, priv: int, eddsa: bool) -> None:
    with raises_ckr(S.CKR_FUNCTION_REJECTED):
        client.sign(s, S.CKM_EDDSA if eddsa else S.CKM_ECDSA_SHA256, priv, b"m")


def current_values(tcti: str) -> list[bytes]:
    with tpm_conn.open_tpm(tcti, "test read", with_srk=False) as conn:
        return tpm_keys.read_pcrs(conn, PCRS)


def test_extend_fail_authorize_succeed(swtpm, lib_path, tmp_path):
    _, admin, authority = pem_pair(tmp_path, "admin")
    other, other_pem, _ = pem_pair(tmp_path, "other")
    auths = tmp_path / "authorizations.json"
    conf = write_config(tmp_path, slots=authority_slot(swtpm.tcti, authority, auths))
    with user_token(lib_path, conf, "authorized") as (client, s):
        keys = [(*gen_ec(client, s, P256, label=b"r", key_id=b"\x01"), False),
                (*gen_ec(client, s, ED25519, label=b"e", key_id=b"\x02"), True)]
        for _, priv, eddsa in keys:  # made under the authority: nothing authorised yet
            refused(client, s, priv, eddsa)
        out = cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin))
        assert out["values"] == [v.hex() for v in current_values(swtpm.tcti)] and out["authorizations"] == 1
        for pub, priv, eddsa in keys:
            signs(client, s, pub, priv, eddsa)

        extend_pcr16(swtpm.tcti)  # the firmware update
        for _, priv, eddsa in keys:
            refused(client, s, priv, eddsa)
        # an authorisation of the new values signed by someone else is ignored
        forged = tpm_authority.sign_authorization(other, PCRS, current_values(swtpm.tcti))
        tpm_authority.add_authorization(str(auths), forged)
        for _, priv, eddsa in keys:
            refused(client, s, priv, eddsa)
        cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(other_pem), rc=2)  # not the authority
        cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin), "--pcr-values", "00", rc=2)  # bad value

        cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin))  # the administrator signs the new values
        for pub, priv, eddsa in keys:
            signs(client, s, pub, priv, eddsa)
        # values authorised in advance (--pcr-values) work the same after the next update
        values = current_values(swtpm.tcti)
        import hashlib
        expected = hashlib.sha256(values[0] + hashlib.sha256(b"next firmware").digest()).digest()
        cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin), "--pcr-values", expected.hex())
        from tpm2_pytss.constants import ESYS_TR
        with tpm_conn.open_tpm(swtpm.tcti, "test extend", with_srk=False) as conn:
            conn.ectx.pcr_extend(ESYS_TR.PCR16, _sha256_digests(hashlib.sha256(b"next firmware").digest()))
        assert current_values(swtpm.tcti) == [expected]
        for pub, priv, eddsa in keys:
            signs(client, s, pub, priv, eddsa)


def _sha256_digests(digest: bytes):
    from tpm2_pytss.types import TPML_DIGEST_VALUES, TPMT_HA
    from tpm2_pytss.constants import TPM2_ALG
    ha = TPMT_HA(hashAlg=TPM2_ALG.SHA256)
    ha.digest.sha256 = digest
    return TPML_DIGEST_VALUES([ha])


def test_reseal_moves_sealed_keys_under_the_authority(swtpm, lib_path, tmp_path):
    _, admin, authority = pem_pair(tmp_path, "admin")
    auths = tmp_path / "authorizations.json"
    plain = write_config(tmp_path, slots=slot_config(swtpm.tcti))
    with user_token(lib_path, plain, "reseal") as (client, s):
        gen_ec(client, s, ED25519, label=b"old", key_id=b"\x03")
    conf = write_config(tmp_path, slots=authority_slot(swtpm.tcti, authority, auths))
    env = {"PIN": USER_PIN.decode()}
    assert cli(conf, "tpm", "reseal", "--pin-env", "PIN", env=env)["resealed"] == 1
    cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin))
    extend_pcr16(swtpm.tcti)
    cli(conf, "tpm", "authorize-pcrs", "--signing-key", str(admin))
    from p11 import P11
    import os
    os.environ["CRYPTOKI_SHIM_CONF"] = str(conf)
    client = P11(lib_path)
    client.initialize()
    try:
        s = client.open(0)
        client.login(s, USER_PIN)
        [priv] = client.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_LABEL: b"old"})
        [pub] = client.find(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_LABEL: b"old"})
        signs(client, s, pub, priv, True)  # bound to the old PCR value it would be refused now
    finally:
        client.finalize()
        os.environ.pop("CRYPTOKI_SHIM_CONF", None)
    assert cli(conf, "tpm", "reseal", "--pin-env", "PIN", env={"PIN": "9999"}, rc=1)
