"""backup -> wipe -> restore: the same objects come back and their keys still sign; a damaged,
forged or foreign backup writes nothing (exit 4)."""

from __future__ import annotations

import json
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
    info = cli.json("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP")
    assert info["objects"] == 4
    assert (cli.work / "t.age").read_bytes().startswith(b"age-encryption.org/v1")
    cli.run("init-token", "--label", "wiped", "--so-pin-env", "SO")  # wipe
    assert cli.json("list")["slots"][0]["token"]["label"] == "wiped"
    restored = cli.json("restore", "t.age", "-i", "id.txt", "--pin-env", "UP")
    assert restored["objects"] == 4
    assert _ids(cli.objects()) == _ids(before)
    assert cli.json("list")["slots"][0]["token"]["label"] == "cli-test"
    _sign_ec(cli, key)
    assert cli.run("export-public", "--id", "02").stdout == rsa_pub


def test_restore_into_another_store(populated, new_cli):
    cli, key, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP")
    other = new_cli()
    other.run("restore", str(cli.work / "t.age"), "-i", str(cli.work / "id.txt"), "--so-pin-env", "SO")
    assert _ids(other.objects()) == _ids(cli.objects())
    _sign_ec(other, key)


def test_damaged_backup_writes_nothing(populated):
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP")
    blob = bytearray((cli.work / "t.age").read_bytes())
    blob[-20] ^= 1
    (cli.work / "bad.age").write_bytes(bytes(blob))
    cli.run("init-token", "--label", "kept", "--so-pin-env", "SO")
    proc = cli.run("restore", "bad.age", "-i", "id.txt", "--pin-env", "UP", rc=4)
    assert "nothing written" in proc.stderr
    assert cli.json("list")["slots"][0]["token"]["label"] == "kept"


def test_wrong_identity_is_rejected(populated):
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP")
    (cli.work / "other.txt").write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    cli.run("restore", "t.age", "-i", "other.txt", "--pin-env", "UP", rc=4)


def _decrypt(cli, recipient):
    ident = pyrage.x25519.Identity.from_str((cli.work / "id.txt").read_text().strip())
    return pyrage.decrypt((cli.work / "t.age").read_bytes(), [ident])


def _encrypt(cli, name, doc, recipient):
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    (cli.work / name).write_bytes(pyrage.encrypt(data, [pyrage.x25519.Recipient.from_str(recipient)]))


def test_modified_backup_is_refused(populated):
    """A validly encrypted file whose JSON was altered (not what backup wrote) is refused."""
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP")
    original = _decrypt(cli, recipient)
    forged = original.replace(b'"created":', b'"created":1', 1)  # still valid JSON, another value
    assert forged != original
    _encrypt(cli, "forged.age", forged, recipient)
    cli.run("init-token", "--label", "kept", "--so-pin-env", "SO", "--pin-env", "UP")
    assert "MAC does not match" in cli.run("restore", "forged.age", "-i", "id.txt", "--pin-env", "UP", rc=4).stderr
    # An attacker's object added to a genuine backup (e.g. a certificate of theirs): refused too.
    doc = json.loads(original)
    doc["payload"]["objects"].append(dict(doc["payload"]["objects"][0], unique_id="f" * 32))
    _encrypt(cli, "added.age", doc, recipient)
    assert "MAC does not match" in cli.run("restore", "added.age", "-i", "id.txt", "--pin-env", "UP", rc=4).stderr
    assert cli.json("list")["slots"][0]["token"]["label"] == "kept"


def test_forged_backup_from_the_public_recipient_is_refused(populated, new_cli):
    """Issue 15 item 9: whoever knows the public age recipient makes a whole backup of a token
    of their own (their PINs, their MAC under their token key). Restoring it with the real
    token's PIN fails: that PIN does not open the forger's PIN records. Before: restored."""
    cli, _, recipient = populated
    forger = new_cli()
    forger.run("init-token", "--label", "forged", "--so-pin-env", "SO", "--pin-env", "UP",
               SO="forger-so-1", UP="forger-user-1")
    ident = pyrage.x25519.Identity.generate()
    (forger.work / "id.txt").write_text(str(ident) + "\n")
    forger.run("backup", "-o", "f.age", "-r", recipient, "--pin-env", "UP", UP="forger-user-1")
    proc = cli.run("restore", str(forger.work / "f.age"), "-i", "id.txt", "--pin-env", "UP", rc=4)
    assert "does not open the backup's PIN record" in proc.stderr and "nothing written" in proc.stderr
    cli.run("restore", str(forger.work / "f.age"), "-i", "id.txt", "--so-pin-env", "SO", rc=4)
    assert cli.json("list")["slots"][0]["token"]["label"] == "cli-test"
    # The old format (version 1: a SHA-256 anyone can compute) is refused as unauthenticated.
    doc = json.loads(pyrage.decrypt((forger.work / "f.age").read_bytes(), [pyrage.x25519.Identity.from_str(
        (cli.work / "id.txt").read_text().strip())]))
    payload = dict(doc["payload"], version=1)
    _encrypt(cli, "v1.age", {"payload": payload, "sha256": "0" * 64}, recipient)
    assert "unauthenticated" in cli.run("restore", "v1.age", "-i", "id.txt", "--pin-env", "UP", rc=4).stderr


def test_wrong_pin_and_no_pin(populated):
    cli, _, recipient = populated
    cli.run("backup", "-o", "t.age", "-r", recipient, rc=2)  # no PIN source, no terminal
    cli.run("backup", "-o", "t.age", "-r", recipient, "--pin-env", "UP", UP="wrong-pin-0", rc=1)
    cli.run("backup", "-o", "t.age", "-r", recipient, "--so-pin-env", "SO")
    cli.run("restore", "t.age", "-i", "id.txt", "--pin-env", "UP", UP="wrong-pin-0", rc=4)
    cli.run("restore", "t.age", "-i", "id.txt", rc=2)


@pytest.mark.slow
def test_passphrase_backup(populated):
    cli, _, _ = populated
    cli.run("backup", "-o", "p.age", "--passphrase-env", "PP", "--pin-env", "UP", PP="correct horse battery")
    cli.run("init-token", "--label", "wiped", "--so-pin-env", "SO")
    cli.run("restore", "p.age", "--passphrase-env", "PP", "--pin-env", "UP", PP="correct horse battery")
    assert len(cli.objects()) == 4
