"""OpenSC's pkcs11-tool against the built library: token set-up, PINs and objects, each step
checked by the tool's own output and by a listing (or our own client) afterwards."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cryptoki_shim import spec
from p11 import LIB, raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them

TOOL = shutil.which("pkcs11-tool")
pytestmark = pytest.mark.skipif(TOOL is None, reason="pkcs11-tool (opensc) is not installed")


def tool(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([TOOL, "--module", str(LIB), *args], capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def store(shim_conf: Path) -> Path:
    """A fresh store for the tool (the env var CRYPTOKI_SHIM_CONF is inherited)."""
    return shim_conf


@pytest.fixture
def tool_token(store: Path) -> Path:
    tool("--init-token", "--label", "tooltok", "--so-pin", SO_PIN.decode())
    tool("--init-pin", "--login", "--so-pin", SO_PIN.decode(), "--pin", USER_PIN.decode())
    return store


def listing(*login: str) -> str:
    return tool(*login, "--list-objects").stdout


def test_init_token_and_pin(store):
    out = tool("--init-token", "--label", "tooltok", "--so-pin", SO_PIN.decode()).stdout
    assert "Token successfully initialized" in out
    slots = tool("--list-slots").stdout
    assert "tooltok" in slots and "token initialized" in slots and "PIN initialized" not in slots
    out = tool("--init-pin", "--login", "--so-pin", SO_PIN.decode(), "--pin", USER_PIN.decode()).stdout
    assert "User PIN successfully initialized" in out
    slots = tool("--list-slots").stdout
    assert "PIN initialized" in slots and "login required" in slots
    assert "Profile object" in listing("--login", "--pin", USER_PIN.decode())


def test_reinit_token_wrong_so_pin(tool_token):
    proc = tool("--init-token", "--label", "other", "--so-pin", "00000000", check=False)
    assert proc.returncode != 0 and "CKR_PIN_INCORRECT" in proc.stdout + proc.stderr
    assert "tooltok" in tool("--list-slots").stdout


def test_change_pin(tool_token):
    out = tool("--change-pin", "--pin", USER_PIN.decode(), "--new-pin", "4321").stdout
    assert "PIN successfully changed" in out
    proc = tool("--login", "--pin", USER_PIN.decode(), "--list-objects", check=False)
    assert proc.returncode != 0 and "CKR_PIN_INCORRECT" in proc.stdout + proc.stderr
    tool("--login", "--pin", "4321", "--list-objects")
    out = tool("--login", "--login-type", "so", "--so-pin", SO_PIN.decode(), "--change-pin",
               "--new-pin", "87654321").stdout
    assert "PIN successfully changed" in out
    tool("--init-pin", "--login", "--so-pin", "87654321", "--pin", "2222")
    tool("--login", "--pin", "2222", "--list-objects")


def test_data_object_write_read_delete(tool_token, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(b"tool data \x00\x01\x02")
    out = tool("--login", "--pin", USER_PIN.decode(), "--write-object", str(src), "--type", "data",
               "--label", "tooldata", "--private").stdout
    assert "Created Data Object" in out and "tooldata" in out and "private" in out
    assert "tooldata" not in listing()  # private: invisible without login
    assert "tooldata" in listing("--login", "--pin", USER_PIN.decode())
    dst = tmp_path / "out.bin"
    tool("--login", "--pin", USER_PIN.decode(), "--read-object", "--type", "data", "--label", "tooldata",
         "-o", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    tool("--login", "--pin", USER_PIN.decode(), "--delete-object", "--type", "data", "--label", "tooldata")
    assert "tooldata" not in listing("--login", "--pin", USER_PIN.decode())


def test_data_object_visible_to_our_client(tool_token, tmp_path, p11):
    src = tmp_path / "pub.bin"
    src.write_bytes(b"public data")
    tool("--login", "--pin", USER_PIN.decode(), "--write-object", str(src), "--type", "data", "--label", "pub")
    s = p11.open(0)
    (h,) = p11.find(s, {spec.CKA_LABEL: b"pub"})
    assert p11.get(s, h, spec.CKA_VALUE) == b"public data"
    assert p11.get(s, h, spec.CKA_TOKEN) is True


@pytest.fixture
def cert_der() -> tuple[bytes, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tool cert"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shim")])
    now = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0xC0FFEE).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), cert


def test_certificate_write_read_delete(tool_token, tmp_path, cert_der, p11):
    der, cert = cert_der
    src = tmp_path / "cert.der"
    src.write_bytes(der)
    out = tool("--login", "--pin", USER_PIN.decode(), "--write-object", str(src), "--type", "cert",
               "--id", "0a0b", "--label", "toolcert").stdout
    assert "Created certificate" in out and "X.509 cert" in out
    assert "CN=tool cert" in out
    public = listing()  # certificates are public
    assert "toolcert" in public and "0a0b" in public and "C0FFEE" in public.upper()
    dst = tmp_path / "back.der"
    tool("--read-object", "--type", "cert", "--id", "0a0b", "-o", str(dst))
    assert dst.read_bytes() == der
    s = p11.open(0, rw=False)
    (h,) = p11.find(s, {spec.CKA_CLASS: spec.CKO_CERTIFICATE})
    assert p11.get(s, h, spec.CKA_SUBJECT) == cert.subject.public_bytes()
    assert p11.get(s, h, spec.CKA_ID) == b"\x0a\x0b"
    p11.close(s)
    tool("--login", "--pin", USER_PIN.decode(), "--delete-object", "--type", "cert", "--id", "0a0b")
    assert "toolcert" not in listing()


def test_wrong_user_pin_listing_fails(tool_token):
    proc = tool("--login", "--pin", "9999", "--list-objects", check=False)
    assert proc.returncode != 0 and "CKR_PIN_INCORRECT" in proc.stdout + proc.stderr


def test_tool_sees_our_objects(tool_token, p11):
    s = p11.open(0)
    p11.login(s, USER_PIN)
    p11.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
                   spec.CKA_LABEL: b"from-client", spec.CKA_VALUE: b"v"})
    assert "from-client" in listing()
    with raises_ckr(spec.CKR_SESSION_EXISTS):  # our session is open in this process only;
        p11.init_token(0, SO_PIN, "x")       # the tool in another process may still re-init
