"""``cryptoki-shim adopt`` (issue 6): a key made directly in SoftHSM2 with pkcs11-tool is
adopted through the admin CLI, then signs through our library (pkcs11-tool against our
module) and pyca verifies the signature with the upstream's own public key."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from upstream_hsm import HAVE_SOFTHSM, SO_PIN, UP_PIN, USER_PIN, SoftHsm, upstream_slot, write_config
from upstream_hsm import hsm  # noqa: F401  (fixture)

pytestmark = [pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed"),
              pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) not installed")]
PIN = USER_PIN.decode()


def run(argv: list[str], env: dict[str, str], cwd: Path, rc: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == rc, f"{' '.join(argv)} -> {proc.returncode}, wanted {rc}\n{proc.stdout}{proc.stderr}"
    return proc


def cli(env: dict[str, str], cwd: Path, *args: str, rc: int = 0) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "cryptoki_shim.cli", *args], env, cwd, rc)


@pytest.fixture
def setup(lib_path: Path, tmp_path: Path, hsm: SoftHsm):
    """(env, tool argv on our module): our token in slot 0 routes to ``hsm``; nothing adopted yet."""
    conf = write_config(tmp_path, slots=upstream_slot(hsm))
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), SOFTHSM2_CONF=str(hsm.conf), SHIM_UPSTREAM_PIN=UP_PIN,
               SO=SO_PIN.decode(), UP=PIN)
    cli(env, tmp_path, "init-token", "--label", "shim", "--so-pin-env", "SO", "--pin-env", "UP")
    return env, ["pkcs11-tool", "--module", str(lib_path), "--slot", "0", "--login", "--pin", PIN]


def upstream_public(hsm: SoftHsm, key_id: str, cwd: Path):
    """The public key as SoftHSM2 itself reports it (not through us)."""
    hsm.tool("--read-object", "--type", "pubkey", "--id", key_id, "-o", str(cwd / f"up-{key_id}.der"))
    return serialization.load_der_public_key((cwd / f"up-{key_id}.der").read_bytes())


def test_adopted_rsa_key_signs_through_our_module(setup, hsm, tmp_path):
    env, tool = setup
    hsm.tool("--keypairgen", "--key-type", "rsa:2048", "--id", "4242", "--label", "legacy-rsa")
    # before adoption our token does not show the key: pkcs11-tool finds nothing to sign with
    (tmp_path / "msg").write_bytes(b"signed by a key that was in the HSM before us\n")
    sign = [*tool, "--sign", "--id", "4242", "-m", "SHA256-RSA-PKCS", "-i", "msg", "-o", "sig"]
    assert run(sign, env, tmp_path, rc=1).returncode == 1

    out = json.loads(cli(env, tmp_path, "adopt", "--id", "4242", "--json").stdout)
    assert out["ok"] is True
    rows = {o["class"]: o for o in out["objects"]}
    assert set(rows) == {"PRIVATE_KEY", "PUBLIC_KEY"}
    assert all(o["backend"] == "upstream" and o["id"] == "4242" and o["label"] == "legacy-rsa" for o in rows.values())
    assert rows["PRIVATE_KEY"]["extractable"] is False

    run(sign, env, tmp_path)
    upstream_public(hsm, "4242", tmp_path).verify((tmp_path / "sig").read_bytes(), (tmp_path / "msg").read_bytes(),
                                                  padding.PKCS1v15(), hashes.SHA256())
    # the CLI lists it like any other key; the upstream object is unchanged (still labelled by its owner)
    listed = json.loads(cli(env, tmp_path, "list", "--pin-env", "UP", "--json").stdout)["slots"][0]["objects"]
    assert {(o["class"], o["label"]) for o in listed if o["backend"] == "upstream"} == {
        ("PRIVATE_KEY", "legacy-rsa"), ("PUBLIC_KEY", "legacy-rsa")}
    assert "legacy-rsa" in hsm.objects()


def test_adopted_ec_key_by_label_signs(setup, hsm, tmp_path):
    env, tool = setup
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "77", "--label", "legacy-ec")
    out = cli(env, tmp_path, "adopt", "--label", "legacy-ec").stdout
    assert "adopted into slot 0" in out and "legacy-ec" in out
    data = b"ecdsa through an adopted key"
    # SoftHSM2 has no CKM_ECDSA_SHA256 (docs/upstream.md): CKM_ECDSA on a SHA-256 digest
    (tmp_path / "digest").write_bytes(hashlib.sha256(data).digest())
    run([*tool, "--sign", "--label", "legacy-ec", "-m", "ECDSA", "--signature-format", "openssl",
         "-i", "digest", "-o", "sig"], env, tmp_path)
    key = upstream_public(hsm, "77", tmp_path)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify((tmp_path / "sig").read_bytes(), data, ec.ECDSA(hashes.SHA256()))


def test_adopt_failures(setup, hsm, tmp_path):
    env, _ = setup
    cli(env, tmp_path, "adopt", rc=2)                                    # no selector
    proc = cli(env, tmp_path, "adopt", "--label", "nothing-here", rc=1)
    assert "CKR_ARGUMENTS_BAD" in proc.stderr and "no upstream key matches" in proc.stderr
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "01", "--label", "twin")
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "02", "--label", "twin")
    proc = cli(env, tmp_path, "adopt", "--label", "twin", rc=1)         # a reference names exactly one key
    assert "2 upstream" in proc.stderr
    out = json.loads(cli(env, tmp_path, "adopt", "--label", "twin", "--id", "02", "--json").stdout)
    assert {o["id"] for o in out["objects"]} == {"02"}
    # a slot without [slots.upstream]
    proc = cli(env, tmp_path, "adopt", "--slot", "1", "--id", "02", rc=1)
    assert "no [slots.upstream]" in proc.stderr
