"""Secrets are salted to the verified EK (issue 20 item 3, docs/tpm.md "EK trust").

An swtpm manufactured by ``swtpm_setup --create-ek-cert`` with a local CA (its own
``swtpm-localca`` state in a temporary directory): with ``ek_ca_bundle`` = that CA, sealed
keys are made and used through the built library and, on the wire, every salted
TPM2_StartAuthSession names the EK (0x81010016, the key of the certificate) as its tpmKey.
With a bundle of another CA, or on a TPM without an EK certificate (what an active
interposer answering as the TPM would be), no secret goes out: CKR_DEVICE_ERROR.
"""

from __future__ import annotations

import datetime
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bus_recorder import BusRecorder
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from p11 import raises_ckr, write_config
from swtpm_helper import Swtpm, swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, P256, gen_ec, public_key, slot_config, user_token
from test_tpm_bus import Key

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_ek
from cryptoki_shim.backends.tpm import TpmBackend
from cryptoki_shim.config import SlotConfig
from cryptoki_shim.mechanisms.registry import lookup

EK_HANDLE = 0x81010016  # swtpm 0.7's ECC (P-384) EK


@pytest.fixture(scope="module")
def ek_tpm():
    """(swtpm with EK certificates, CA bundle path)."""
    if shutil.which("swtpm_setup") is None:
        pytest.fail("swtpm_setup missing: apt-get install swtpm-tools (./run installs it)")
    work = Path(tempfile.mkdtemp(prefix="ek", dir="/tmp"))
    ca = work / "ca"
    ca.mkdir()
    (work / "localca.conf").write_text(f"statedir = {ca}\nsigningkey = {ca}/signkey.pem\n"
                                       f"issuercert = {ca}/issuercert.pem\ncertserial = {ca}/certserial\n")
    (work / "setup.conf").write_text(f"create_certs_tool = /usr/bin/swtpm_localca\n"
                                     f"create_certs_tool_config = {work}/localca.conf\n"
                                     "create_certs_tool_options = /etc/swtpm-localca.options\n"
                                     "active_pcr_banks = sha256\n")
    tpm = Swtpm()
    subprocess.run(["swtpm_setup", "--tpm2", "--tpmstate", tpm.dir, "--create-ek-cert", "--ecc", "--config",
                    str(work / "setup.conf"), "--overwrite", "--pcr-banks", "sha256"],
                   check=True, capture_output=True, timeout=120)
    bundle = work / "ca-bundle.pem"
    bundle.write_bytes((ca / "swtpm-localca-rootca-cert.pem").read_bytes() + (ca / "issuercert.pem").read_bytes())
    tpm.start()
    yield tpm, bundle
    tpm.remove()
    shutil.rmtree(work, ignore_errors=True)


def other_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the TPM vendor")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def ek_slot(tcti: str, bundle: Path) -> str:
    return slot_config(tcti) + f'ek_ca_bundle = "{bundle}"\n'


def salt_keys(stream: bytes) -> list[int]:
    """tpmKey of every TPM2_StartAuthSession in a recorded command/response stream."""
    keys, pos, is_command = [], 0, True
    while pos + 10 <= len(stream):
        _, size, code = struct.unpack_from(">HII", stream, pos)
        if is_command and code == 0x176:
            keys.append(struct.unpack_from(">I", stream, pos + 10)[0])
        pos += size
        is_command = not is_command
    return keys


def test_sealed_keys_with_the_verified_ek(ek_tpm, lib_path, tmp_path):
    tpm, bundle = ek_tpm
    conf = write_config(tmp_path, slots=ek_slot(tpm.tcti, bundle))
    with user_token(lib_path, conf, "ek") as (client, s):
        pub, priv = gen_ec(client, s, ED25519, label=b"sealed")
        public_key(client, s, pub).verify(client.sign(s, S.CKM_EDDSA, priv, b"m"), b"m")
    # on the wire: seal and unseal salt their sessions to the EK, never to the SRK
    bus = BusRecorder(tpm.dir + "/s")
    try:
        backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": bus.tcti, "pcrs": "sha256:16", "unseal_cache_seconds": 0,
                                                   "ek_ca_bundle": str(bundle)}))
        _, attrs = backend.generate_key_pair(lookup(S.CKM_EC_EDWARDS_KEY_PAIR_GEN), None,
                                             {S.CKA_EC_PARAMS: ED25519}, {})
        eddsa = lookup(S.CKM_EDDSA)
        backend.context_maker("sign", eddsa)(eddsa, None, Key(attrs, "ek")).oneshot(b"m")
        keys = salt_keys(bus.tpm_stream())
    finally:
        bus.close()
    assert keys and set(keys) == {EK_HANDLE}, [hex(k) for k in keys]
    probe = TpmBackend(SlotConfig(id=0, tpm={"tcti": tpm.tcti, "pcrs": "sha256:16",
                                             "ek_ca_bundle": str(bundle)})).probe()
    assert "EK certificate trusted (issued by " in probe, probe


def test_another_ca_or_no_ek_certificate_gets_no_secret(ek_tpm, swtpm, lib_path, tmp_path):
    tpm, _ = ek_tpm
    wrong = other_ca(tmp_path / "other-ca.pem")
    for name, tcti, bundle in (("wrong-ca", tpm.tcti, wrong), ("no-ek-cert", swtpm.tcti, ek_tpm[1])):
        directory = tmp_path / name
        directory.mkdir()
        conf = write_config(directory, slots=ek_slot(tcti, bundle))
        with user_token(lib_path, conf, name) as (client, s):
            for params in (ED25519, P256):  # sealing and creating a resident key both carry secrets
                with raises_ckr(S.CKR_DEVICE_ERROR):
                    gen_ec(client, s, params, label=b"refused")


def test_chain_check(ek_tpm, tmp_path):
    _, bundle = ek_tpm
    certs = tpm_ek.load_bundle(str(bundle))
    root = next(c for c in certs if c.subject == c.issuer)
    intermediate = next(c for c in certs if c.subject != c.issuer)
    assert tpm_ek.verify_chain(intermediate, certs)[-1] == root
    with pytest.raises(tpm_ek.UntrustedEK):
        tpm_ek.verify_chain(intermediate, [root], now=intermediate.not_valid_before_utc - datetime.timedelta(days=1))
    with pytest.raises(tpm_ek.UntrustedEK):
        tpm_ek.verify_chain(intermediate, tpm_ek.load_bundle(str(other_ca(tmp_path / "x.pem"))))


def test_ak_certified_by_the_ek_then_pinned_for_verify_attestation(ek_tpm, swtpm, lib_path, tmp_path):
    """Enrolment by credential activation (issue 20 item 3): request (attester) -> challenge
    (verifier: EK chain, secret encrypted to the EK for the AK's name) -> activate (only this
    TPM answers) -> verify (answer == secret: the AK is certified) -> attest a key, and
    verify-attestation with that AK pinned."""
    from test_tpm_lockout_cli import cli
    tpm, bundle = ek_tpm
    conf = write_config(tmp_path, slots=slot_config(tpm.tcti))
    with user_token(lib_path, conf, "enrol") as (client, s):
        gen_ec(client, s, P256, label=b"web")
    req, ch, secret, ak = (tmp_path / n for n in ("req.json", "ch.json", "secret", "ak.hex"))
    cli(conf, "tpm", "ak-request", "-o", str(req))
    cli(conf, "tpm", "ak-challenge", str(req), "--ca-bundle", str(other_ca(tmp_path / "o.pem")), "-o", str(ch),
        "--secret-out", str(secret), rc=4)  # an EK the verifier's CAs did not issue
    cli(conf, "tpm", "ak-challenge", str(req), "--ca-bundle", str(bundle), "-o", str(ch), "--secret-out", str(secret))
    answer = cli(conf, "tpm", "ak-activate", str(ch))["answer"]
    cli(conf, "tpm", "ak-verify", str(req), "--secret-file", str(secret), "--answer", "00" * 32, "-o", str(ak), rc=4)
    cli(conf, "tpm", "ak-verify", str(req), "--secret-file", str(secret), "--answer", answer, "-o", str(ak))
    # another TPM cannot answer the challenge (no such EK there)
    (tmp_path / "o").mkdir()
    other = write_config(tmp_path / "o", slots=slot_config(swtpm.tcti))
    cli(other, "tpm", "ak-activate", str(ch), rc=1)
    nonce = "11" * 16
    att = tmp_path / "web.att.json"
    cli(conf, "attest", "--label", "web", "--nonce", nonce, "-o", str(att), "--pin-env", "PIN",
        env={"PIN": "1234"})
    cli(conf, "verify-attestation", str(att), "--nonce", nonce, "--ak-public-file", str(ak))
