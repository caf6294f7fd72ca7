"""Keys into and between TPMs from the CLI (issue 20 item 4, docs/tpm.md "Backup and migration"):

* ``cryptoki-shim import`` into a TPM slot seals the imported private key (``--extractable``
  there is refused);
* ``cryptoki-shim tpm migrate`` turns a token's software keys (made by C_CreateObject) into
  TPM-sealed ones;
* ``cryptoki-shim tpm restore-escrow`` re-seals sealed keys from their escrow copies: after
  the PCRs changed for good on this TPM, and on another TPM (the store copied there).
Each key then signs through the built library and pyca verifies with the original public key.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from p11 import P11, USER_PIN, raises_ckr, write_config
from swtpm_helper import Swtpm, swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, clean_pcr, extend_pcr16, gen_ec, public_key, slot_config, \
    user_token  # noqa: F401  (clean_pcr: fixture)
from test_tpm_lockout_cli import cli

from cryptoki_shim import spec as S
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED

ENV = {"PIN": USER_PIN.decode()}


def opened(lib_path, conf: Path):
    os.environ["CRYPTOKI_SHIM_CONF"] = str(conf)
    client = P11(lib_path)
    client.initialize()
    s = client.open(0)
    client.login(s, USER_PIN)
    return client, s


def closed(client) -> None:
    client.finalize()
    os.environ.pop("CRYPTOKI_SHIM_CONF", None)


def private_by_label(client, s, label: bytes) -> int:
    [priv] = client.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_LABEL: label})
    return priv


def assert_sealed(client, s, priv: int) -> None:
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
    assert client.get(s, priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_TPM
    assert client.get(s, priv, S.CKA_EXTRACTABLE) is False
    with raises_ckr(S.CKR_ATTRIBUTE_TYPE_INVALID):  # the material is in the sealed envelope only
        client.get(s, priv, S.CKA_VALUE)


def test_import_into_a_tpm_slot_seals_the_key(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti))
    with user_token(lib_path, conf, "import"):
        pass
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "web.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    cli(conf, "import", str(pem), "--label", "web", "--pin-env", "PIN", "--extractable", env=ENV, rc=2)
    cli(conf, "import", str(pem), "--label", "web", "--pin-env", "PIN", env=ENV)
    client, s = opened(lib_path, conf)
    try:
        priv = private_by_label(client, s, b"web")
        assert_sealed(client, s, priv)
        sig = client.sign(s, S.CKM_ECDSA_SHA256, priv, b"m")
        der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.public_key().verify(der, b"m", ec.ECDSA(hashes.SHA256()))
    finally:
        closed(client)


def test_migrate_seals_software_keys(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti))
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    with user_token(lib_path, conf, "migrate") as (client, s):
        priv = client.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_EC_EDWARDS,
                                 S.CKA_EC_PARAMS: ED25519, S.CKA_VALUE: raw, S.CKA_TOKEN: True, S.CKA_SIGN: True,
                                 S.CKA_LABEL: b"soft"})
        assert client.get(s, priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_SOFTWARE
    assert cli(conf, "tpm", "migrate", "--pin-env", "PIN", env=ENV)["sealed"] == 1
    assert cli(conf, "tpm", "migrate", "--pin-env", "PIN", env=ENV)["sealed"] == 0  # nothing left to do
    client, s = opened(lib_path, conf)
    try:
        priv = private_by_label(client, s, b"soft")
        assert_sealed(client, s, priv)
        key.public_key().verify(client.sign(s, S.CKM_EDDSA, priv, b"m"), b"m")
    finally:
        closed(client)


def test_restore_escrow_after_pcr_change_and_on_another_tpm(swtpm, lib_path, tmp_path):
    import pyrage
    identity = pyrage.x25519.Identity.generate()
    id_file = tmp_path / "escrow.key"
    id_file.write_text(str(identity) + "\n")
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti, escrow=str(identity.to_public())))
    with user_token(lib_path, conf, "escrow") as (client, s):
        pub, _ = gen_ec(client, s, ED25519, label=b"esc")
        spki = client.get(s, pub, S.CKA_PUBLIC_KEY_INFO)
    extend_pcr16(swtpm.tcti)  # the PCRs changed for good
    client, s = opened(lib_path, conf)
    try:
        with raises_ckr(S.CKR_FUNCTION_REJECTED):
            client.sign(s, S.CKM_EDDSA, private_by_label(client, s, b"esc"), b"m")
    finally:
        closed(client)
    wrong = pyrage.x25519.Identity.generate()
    cli(conf, "tpm", "restore-escrow", "--identity-env", "ID", "--pin-env", "PIN",
        env={**ENV, "ID": str(wrong)}, rc=1)
    out = cli(conf, "tpm", "restore-escrow", "--identity-file", str(id_file), "--pin-env", "PIN", env=ENV)
    assert out["restored"] == 1

    def signs_here(conf: Path) -> None:
        client, s = opened(lib_path, conf)
        try:
            priv = private_by_label(client, s, b"esc")
            assert_sealed(client, s, priv)
            public = serialization.load_der_public_key(spki)
            public.verify(client.sign(s, S.CKM_EDDSA, priv, b"m"), b"m")
        finally:
            closed(client)

    signs_here(conf)
    # TPM to TPM: the store copied next to another TPM; its blobs do not load there until restored
    other = Swtpm()
    other.start()
    try:
        moved = tmp_path / "moved"
        moved.mkdir()
        shutil.copy(tmp_path / "store.db", moved / "store.db")
        conf2 = write_config(moved, slots=slot_config(other.tcti, escrow=str(identity.to_public())))
        client, s = opened(lib_path, conf2)
        try:
            with raises_ckr(S.CKR_DEVICE_ERROR):  # a foreign blob: not made under this TPM's SRK
                client.sign(s, S.CKM_EDDSA, private_by_label(client, s, b"esc"), b"m")
        finally:
            closed(client)
        cli(conf2, "tpm", "restore-escrow", "--identity-file", str(id_file), "--pin-env", "PIN", env=ENV)
        signs_here(conf2)
    finally:
        other.remove()
