"""backup -> wipe -> restore: the same objects come back and their keys still sign; a damaged
or foreign backup writes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

LIB = Path(__file__).resolve().parents[2] / "build" / "libcryptoki_shim.so"


@pytest.fixture
def populated(ready):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = ready.work / "k.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ready.run("import", str(pem), "--pin-env", "UP", "--id", "01", "--label", "backed-up")
    subprocess.run(["pkcs11-tool", "--module", str(LIB), "--login", "--pin", ready.USER_PIN, "--keypairgen",
                    "--key-type", "rsa:2048", "--id", "02", "--label", "generated"],
                   env=ready.env, check=True, capture_output=True)
    ident = pyrage.x25519.Identity.generate()
    (ready.work / "id.txt").write_text(str(ident) + "\n")
    return ready, key, str(ident.to_public())


def _ids(objs):
    return sorted((o["unique_id"], o["class"], o["label"], o["id"]) for o in objs)


def _sign_ec(cli, key):
    msg = cli.work / "msg"
    msg.write_bytes(b"after restore")
    out = cli.work / "sig"
    subprocess.run(["pkcs11-tool", "--module", str(LIB), "--login", "--pin", cli.USER_PIN, "--sign", "-m",
                    "ECDSA-SHA256", "--id", "01", "-i", str(msg), "-o", str(out), "--signature-format", "openssl"],
                   env=cli.env, check=True, capture_output=True)
    key.public_key().verify(out.read_bytes(), b"after restore", ec.ECDSA(hashes.SHA256()))


def test_backup_wipe_restore(populated):
    cli, key, recipient = populated
    before = cli.objects()
    assert len(before) == 4
    rsa_pub = cli.run("export-public", "--id", "02").stdout
    info = cli.json("backup", "-o", "t.age", "-r", recipient)
    assert info["objects"] == 4
    assert (cli.work / "t.age").read_bytes().startswith(b"age-encryption.org/v1")
    cli.run("init-token", "--label", "wiped", "--so-pin-env", "SO")  # wipe
    assert cli.json("list")["slots"][0]["token"]["label"] == "wiped"
    restored = cli.json("restore", "t.age", "-i", "id.txt")
    assert restored["objects"] == 4
    assert _ids(cli.objects()) == _ids(before)
    assert cli.json("list")["slots"][0]["token"]["label"] == "cli-test"
    _sign_ec(cli, key)
    assert cli.run("export-public", "--id", "02").stdout == rsa_pub


def test_restore_into_another_store(populated, new_cli):
    cli, key, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient)
    other = new_cli()
    other.run("restore", str(cli.work / "t.age"), "-i", str(cli.work / "id.txt"))
    assert _ids(other.objects()) == _ids(cli.objects())
    _sign_ec(other, key)


def test_damaged_backup_writes_nothing(populated):
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient)
    blob = bytearray((cli.work / "t.age").read_bytes())
    blob[-20] ^= 1
    (cli.work / "bad.age").write_bytes(bytes(blob))
    cli.run("init-token", "--label", "kept", "--so-pin-env", "SO")
    proc = cli.run("restore", "bad.age", "-i", "id.txt", rc=4)
    assert "nothing written" in proc.stderr
    assert cli.json("list")["slots"][0]["token"]["label"] == "kept"


def test_wrong_identity_is_rejected(populated):
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient)
    (cli.work / "other.txt").write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    cli.run("restore", "t.age", "-i", "other.txt", rc=4)


def test_content_digest_is_checked(populated):
    """A validly encrypted file whose JSON was altered (not what backup wrote) is refused."""
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient)
    ident = pyrage.x25519.Identity.from_str((cli.work / "id.txt").read_text().strip())
    original = pyrage.decrypt((cli.work / "t.age").read_bytes(), [ident])
    forged = original.replace(b'"created":', b'"created":1', 1)  # still valid JSON, another value
    assert forged != original
    (cli.work / "forged.age").write_bytes(pyrage.encrypt(forged, [pyrage.x25519.Recipient.from_str(recipient)]))
    assert "SHA-256" in cli.run("restore", "forged.age", "-i", "id.txt", rc=4).stderr


@pytest.mark.slow
def test_passphrase_backup(populated):
    cli, _, _ = populated
    cli.run("backup", "-o", "p.age", "--passphrase-env", "PP", PP="correct horse battery")
    cli.run("init-token", "--label", "wiped", "--so-pin-env", "SO")
    cli.run("restore", "p.age", "--passphrase-env", "PP", PP="correct horse battery")
    assert len(cli.objects()) == 4
