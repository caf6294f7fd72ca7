"""Real clients sign through an upstream-backed key (issue 6): OpenSC's pkcs11-tool and
OpenSSL's libp11 engine load our library in a subprocess; the key is generated in, and
signs in, SoftHSM2; OpenSSL verifies with the public key read through us."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from upstream_hsm import SO_PIN, USER_PIN, UP_PIN, SoftHsm, upstream_slot, write_config
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed"),
              pytest.mark.skipif(shutil.which("pkcs11-tool") is None, reason="pkcs11-tool (opensc) not installed")]
ENGINE = Path("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so")
PIN = USER_PIN.decode()


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture
def client_env(lib_path: Path, tmp_path: Path, hsm: SoftHsm) -> dict[str, str]:
    conf = write_config(tmp_path, slots=upstream_slot(hsm))
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), SOFTHSM2_CONF=str(hsm.conf), SHIM_UPSTREAM_PIN=UP_PIN)
    tool = ["pkcs11-tool", "--module", str(lib_path), "--slot", "0"]
    run([*tool, "--init-token", "--label", "shim", "--so-pin", SO_PIN.decode()], env, tmp_path)
    run([*tool, "--init-pin", "--login", "--login-type", "so", "--so-pin", SO_PIN.decode(), "--pin", PIN], env, tmp_path)
    out = run([*tool, "--login", "--pin", PIN, "--keypairgen", "--key-type", "rsa:2048", "--id", "01",
               "--label", "up-rsa"], env, tmp_path)
    assert "Key pair generated" in out
    run([*tool, "--read-object", "--type", "pubkey", "--id", "01", "-o", "pub.der"], env, tmp_path)
    run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"], env, tmp_path)
    (tmp_path / "msg").write_bytes(b"signed in the upstream HSM\n")
    return env


def test_pkcs11_tool_signs_with_an_upstream_key(lib_path, client_env, tmp_path, hsm):
    assert "up-rsa" not in hsm.objects() and "Private Key Object; RSA" in hsm.objects()  # labelled by us upstream
    run(["pkcs11-tool", "--module", str(lib_path), "--slot", "0", "--login", "--pin", PIN, "--sign",
         "--id", "01", "-m", "SHA256-RSA-PKCS", "-i", "msg", "-o", "sig"], client_env, tmp_path)
    out = run(["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig", "msg"], client_env, tmp_path)
    assert "Verified OK" in out


@pytest.mark.skipif(not ENGINE.exists(), reason="libengine-pkcs11-openssl not installed")
def test_openssl_libp11_engine_signs_with_an_upstream_key(lib_path, client_env, tmp_path):
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text(f"""openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = {ENGINE}
MODULE_PATH = {lib_path}
init = 0
""")
    env = dict(client_env, OPENSSL_CONF=str(cnf))
    uri = f"pkcs11:token=shim;id=%01;type=private;pin-value={PIN}"
    run(["openssl", "dgst", "-engine", "pkcs11", "-keyform", "engine", "-sign", uri, "-sha256", "-out", "sig2", "msg"],
        env, tmp_path)
    out = run(["openssl", "dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig2", "msg"], client_env, tmp_path)
    assert "Verified OK" in out
