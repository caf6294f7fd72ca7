"""import (PKCS#12, PEM, DER), export-public, delete — and signing with an imported key
through pkcs11-tool, verified with pyca."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

LIB = Path(__file__).resolve().parents[2] / "build" / "libcryptoki_shim.so"


def self_signed(key, cn: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))


def pkcs11_sign(cli, key_id: str, mech: str, data: Path, out: Path, *extra: str) -> bytes:
    subprocess.run(["pkcs11-tool", "--module", str(LIB), "--login", "--pin", cli.USER_PIN, "--sign", "-m", mech,
                    "--id", key_id, "-i", str(data), "-o", str(out), *extra],
                   env=cli.env, check=True, capture_output=True)
    return out.read_bytes()


def test_import_pkcs12_and_sign_with_pkcs11_tool(ready):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "p12-import")
    p12 = ready.work / "k.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"alias", key, cert, None, serialization.BestAvailableEncryption(b"p12-pass")))
    created = ready.json("import", str(p12), "--pin-env", "UP", "--password-env", "PW", "--id", "c1",
                         PW="p12-pass")["objects"]
    assert sorted(o["class"] for o in created) == ["CERTIFICATE", "PRIVATE_KEY", "PUBLIC_KEY"]
    assert all(o["id"] == "c1" and o["label"] == "p12-import" for o in created)
    private = next(o for o in created if o["class"] == "PRIVATE_KEY")
    assert private["extractable"] is False  # the default
    msg = ready.work / "msg"
    msg.write_bytes(b"signed by an imported key")
    sig = pkcs11_sign(ready, "c1", "ECDSA-SHA256", msg, ready.work / "sig", "--signature-format", "openssl")
    key.public_key().verify(sig, msg.read_bytes(), ec.ECDSA(hashes.SHA256()))


def test_import_pkcs12_wrong_password(ready):
    key = ec.generate_private_key(ec.SECP256R1())
    p12 = ready.work / "k.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"a", key, self_signed(key, "x"), None, serialization.BestAvailableEncryption(b"right")))
    proc = ready.run("import", str(p12), "--pin-env", "UP", "--password-env", "PW", rc=2, PW="wrong")
    assert "PKCS#12" in proc.stderr or "password" in proc.stderr.lower()
    assert ready.objects() == []


def test_import_pem_rsa_key_and_der_certificate(ready):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = ready.work / "rsa.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    ready.run("import", str(pem), "--pin-env", "UP", "--id", "b1", "--label", "rsa-key", "--extractable")
    der = ready.work / "rsa.der"
    der.write_bytes(self_signed(key, "rsa-cert").public_bytes(serialization.Encoding.DER))
    ready.run("import", str(der), "--id", "b1", "--label", "rsa-key")
    objs = ready.objects()
    assert sorted(o["class"] for o in objs) == ["CERTIFICATE", "PRIVATE_KEY", "PUBLIC_KEY"]
    assert next(o for o in objs if o["class"] == "PRIVATE_KEY")["extractable"] is True
    msg = ready.work / "m"
    msg.write_bytes(b"rsa message")
    sig = pkcs11_sign(ready, "b1", "SHA256-RSA-PKCS", msg, ready.work / "s")
    key.public_key().verify(sig, b"rsa message", padding.PKCS1v15(), hashes.SHA256())


def test_import_garbage_is_usage_error(ready):
    bad = ready.work / "bad.bin"
    bad.write_bytes(b"\x00not a key")
    assert "not a PEM, DER or PKCS#12" in ready.run("import", str(bad), "--pin-env", "UP", rc=2).stderr


@pytest.fixture
def ec_imported(ready):
    key = ec.generate_private_key(ec.SECP384R1())
    pem = ready.work / "ec.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ready.run("import", str(pem), "--pin-env", "UP", "--id", "e1", "--label", "ec-key")
    return ready, key


def test_export_public_pem_and_openssh(ec_imported):
    cli, key = ec_imported
    pem = cli.run("export-public", "--id", "e1").stdout.encode()
    assert serialization.load_pem_public_key(pem).public_numbers() == key.public_key().public_numbers()
    ssh = cli.run("export-public", "--label", "ec-key", "--format", "openssh").stdout.strip()
    want = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert ssh == want + " ec-key"
    out = cli.work / "pub.pem"
    cli.run("export-public", "--id", "e1", "-o", str(out))
    assert out.read_bytes() == pem


def test_export_public_nothing_matches(ready):
    assert ready.json("export-public", "--id", "ff", rc=1)["ok"] is False


def test_delete_needs_yes_for_several(ec_imported):
    cli, _ = ec_imported
    proc = cli.run("delete", "--id", "e1", "--pin-env", "UP", rc=2)
    assert "add --yes" in proc.stderr
    assert len(cli.objects()) == 2
    cli.run("delete", "--id", "e1", "--class", "public", "--pin-env", "UP")
    assert [o["class"] for o in cli.objects()] == ["PRIVATE_KEY"]
    deleted = cli.json("delete", "--id", "e1", "--pin-env", "UP", "--yes")["deleted"]
    assert [d["class"] for d in deleted] == ["PRIVATE_KEY"]
    assert cli.objects() == []


def test_list_without_pin_hides_private_keys(ec_imported):
    cli, _ = ec_imported
    assert [o["class"] for o in cli.objects(pin=False)] == ["PUBLIC_KEY"]


def test_id_must_be_hex(ready):
    assert "is not hex" in ready.run("import", "x.pem", "--id", "zz", rc=2).stderr


def test_openssh_export_matches_ssh_keygen_reading_the_module(ec_imported):
    """docs/clients.md ssh recipe: ssh-keygen -D lists the same key export-public prints."""
    cli, _ = ec_imported
    listed = subprocess.run(["ssh-keygen", "-D", str(LIB)], env=cli.env, capture_output=True, text=True,
                            timeout=60).stdout.split()
    exported = cli.run("export-public", "--id", "e1", "--format", "openssh").stdout.split()
    assert exported[:2] == listed[:2]
