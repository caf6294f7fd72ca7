"""The audit log through the real library: one record per event type, no secret in the log,
sequence numbers and the MAC chain. The tampering cases of issue 15 item 4 are in
tests/test_audit_tamper.py."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from p11 import P11, P11Error, ffi

from cryptoki_shim import audit, spec
from cryptoki_shim.errors import CryptokiError

A = spec
SO_PIN = b"so-SECRET-pin-771"
USER_PIN = b"user-SECRET-pin-553"
AES_VALUE = bytes(range(0xA0, 0xB0))            # a secret key's value
PLAINTEXT = b"PLAINTEXT-never-logged-0123456789"


@pytest.fixture
def audited(lib_path, tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
                    f'[audit]\nfile = "{log}"\n'
                    '[[slots]]\nid = 0\nkdf_cost = "test"\nmax_pin_failures = 3\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11(lib_path)
    p.initialize()
    yield p, log
    p.call("C_Finalize", ffi.NULL)
    audit.configure(None)


def records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def events(log: Path, name: str) -> list[dict]:
    return [r for r in records(log) if r["event"] == name]


def setup_token(p: P11) -> int:
    p.init_token(0, SO_PIN, "audited")
    s = p.open(0)
    p.login(s, SO_PIN, user=A.CKU_SO)
    p.init_pin(s, USER_PIN)
    p.logout(s)
    p.login(s, USER_PIN)
    return s


def test_every_event_type_and_no_secret(audited):
    p, log = audited
    s = setup_token(p)
    aes = p.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_TOKEN: True,
                       A.CKA_VALUE: AES_VALUE, A.CKA_ENCRYPT: True, A.CKA_DECRYPT: True, A.CKA_LABEL: b"aes-key"})
    ct = p.encrypt(s, A.CKM_AES_CBC_PAD, aes, PLAINTEXT, bytes(16))
    assert p.decrypt(s, A.CKM_AES_CBC_PAD, aes, ct, bytes(16)) == PLAINTEXT
    pub, priv = p.generate_key_pair(s, A.CKM_EC_KEY_PAIR_GEN,
                                    {A.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), A.CKA_VERIFY: True,
                                     A.CKA_TOKEN: True},
                                    {A.CKA_SIGN: True, A.CKA_TOKEN: True, A.CKA_PRIVATE: True, A.CKA_LABEL: b"ec"})
    sig = p.sign(s, A.CKM_ECDSA_SHA256, priv, PLAINTEXT)
    with pytest.raises(P11Error):
        p.verify(s, A.CKM_ECDSA_SHA256, pub, PLAINTEXT + b"x", sig)
    p.set(s, aes, {A.CKA_LABEL: b"renamed"})
    p.destroy(s, aes)
    p.logout(s)
    with pytest.raises(P11Error):
        p.login(s, b"wrong-pin-0000")

    by = {name: events(log, name) for name in ("login.ok", "login.failed", "logout", "token.init", "pin.set",
                                                "object.create", "object.modify", "object.destroy", "key.use")}
    for name, recs in by.items():
        assert recs, f"no {name} record"
    assert {r["user"] for r in by["login.ok"]} == {"so", "user"}
    assert by["login.failed"][-1]["outcome"] == "CKR_PIN_INCORRECT" and by["login.failed"][-1]["failures"] == 1
    created = {r["label"]: r for r in by["object.create"]}
    assert created["aes-key"]["object_class"] == "CKO_SECRET_KEY" and created["aes-key"]["handle"] == aes
    assert by["object.modify"][0]["label"] == "renamed"
    assert by["object.destroy"][0]["unique_id"] == created["aes-key"]["unique_id"]
    uses = {(r["operation"], r["mechanism"], r["outcome"]) for r in by["key.use"]}
    assert ("encrypt", "CKM_AES_CBC_PAD", "ok") in uses
    assert ("decrypt", "CKM_AES_CBC_PAD", "ok") in uses
    assert ("sign", "CKM_ECDSA_SHA256", "ok") in uses
    assert ("verify", "CKM_ECDSA_SHA256", "CKR_SIGNATURE_INVALID") in uses
    sign_rec = next(r for r in by["key.use"] if r["operation"] == "sign")
    assert sign_rec["session"] == s and sign_rec["key_label"] == "ec" and sign_rec["backend"] == "software"

    text = log.read_text()
    ct_sig = [ct, sig]
    for secret in (SO_PIN, USER_PIN, AES_VALUE, PLAINTEXT, *ct_sig):
        for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
            assert form.decode(errors="replace") not in text, f"secret {secret!r} found in the audit log"
    assert b"wrong-pin-0000".decode() not in text


def test_refused_key_use_is_audited(audited):
    """A C_SignInit refused by the key's usage flags leaves a key.use record with its code."""
    p, log = audited
    s = setup_token(p)
    aes = p.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: AES_VALUE,
                       A.CKA_SIGN: False, A.CKA_LABEL: b"no-sign"})
    with pytest.raises(P11Error):
        p.sign(s, A.CKM_AES_CMAC, aes, PLAINTEXT)
    rec = [r for r in events(log, "key.use") if r["key_label"] == "no-sign"]
    assert [(r["operation"], r["mechanism"], r["outcome"]) for r in rec] == [
        ("sign", "CKM_AES_CMAC", "CKR_KEY_FUNCTION_NOT_PERMITTED")]


def test_lockout_record(audited):
    p, log = audited
    s = setup_token(p)
    p.logout(s)
    for _ in range(3):
        with pytest.raises(P11Error):
            p.login(s, b"bad-pin-99")
    locked = events(log, "login.locked")
    assert len(locked) == 1 and locked[0]["user"] == "user"
    with pytest.raises(P11Error):
        p.login(s, USER_PIN)
    assert events(log, "login.failed")[-1]["outcome"] == "CKR_PIN_LOCKED"


def test_pid_sequence_and_mac(audited):
    p, log = audited
    setup_token(p)
    recs = records(log)
    assert {r["pid"] for r in recs} == {os.getpid()}
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert recs[0]["event"] == audit.START
    assert all(len(r["mac"]) == 64 and "hash" not in r for r in recs)
    key = audit.load_key(str(log.parent / "audit.key"), create=False)
    report = audit.verify(log.read_text().splitlines(), key)
    assert report.ok, report.problems


def _direct(tmp_path: Path, n: int = 6, **settings) -> tuple[Path, bytes]:
    """A log written by the audit module itself (no .so): n records of one run."""
    log = tmp_path / "a.jsonl"
    key_file = tmp_path / "keys" / "audit.key"
    audit.configure({"file": str(log), "key_file": str(key_file), **settings})
    try:
        for i in range(n):
            audit.event("test.event", n=i)
    finally:
        audit.configure(None)
    return log, audit.load_key(str(key_file), create=False)


def test_verify_interleaved_runs(tmp_path):
    a, key = _direct(tmp_path, 3)
    a_lines = a.read_text().splitlines()
    a.unlink()
    b_lines = _direct(tmp_path, 3)[0].read_text().splitlines()
    mixed = [x for pair in zip(a_lines, b_lines) for x in pair]
    report = audit.verify(mixed, key)
    assert report.ok, report.problems
    assert len(report.runs) == 2 and report.records == len(a_lines) + len(b_lines)


def test_key_file_is_private_and_refused_when_readable(tmp_path):
    _, key = _direct(tmp_path, 1)
    key_file = tmp_path / "keys" / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key_file.chmod(0o644)
    with pytest.raises(audit.AuditKeyError, match="mode 0644"):
        audit.load_key(str(key_file), create=False)


def test_write_error_never_fails_the_call(tmp_path):
    """A broken sink (here: its file descriptor closed under it) loses records, not calls."""
    log = tmp_path / "w.jsonl"
    audit.configure({"file": str(log), "key_file": str(tmp_path / "audit.key")})
    try:
        audit.event("test.event", n=1)
        os.close(audit._sink.fd)
        audit._sink.fd = os.open(os.devnull, os.O_RDONLY)  # writes now fail with EBADF
        audit.event("test.event", n=2)  # must not raise
    finally:
        audit.configure(None)


def test_syslog_datagrams(tmp_path):
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        audit.configure({"syslog": True, "syslog_address": path, "syslog_facility": "authpriv",
                         "key_file": str(tmp_path / "audit.key")})
        audit.event("test.event", n=1)
        server.recv(4096)  # audit.start
        msg = server.recv(4096).decode()
    finally:
        audit.configure(None)
        server.close()
    assert msg.startswith(f"<86>cryptoki-shim[{os.getpid()}]: {{")  # authpriv(10)*8 + info(6)
    assert json.loads(msg.split(": ", 1)[1])["event"] == "test.event"


def test_bytes_fields_are_refused(tmp_path):
    audit.configure({"file": str(tmp_path / "x"), "key_file": str(tmp_path / "audit.key")})
    try:
        with pytest.raises(TypeError):
            audit.event("oops", value=b"secret")
    finally:
        audit.configure(None)


def test_backend_error_record(tmp_path):
    """A TPM/upstream failure during a key use (CKR_DEVICE_ERROR): key.use plus backend.error.
    The backends themselves are other issues; this drives the hook with the shapes the core
    passes (session, operation, key)."""
    log = tmp_path / "b.jsonl"
    audit.configure({"file": str(log), "key_file": str(tmp_path / "audit.key")})
    try:
        key = SimpleNamespace(unique_id="u1", attrs={int(A.CKA_SHIM_BACKEND): int(A.SHIM_BACKEND_TPM)})
        op = SimpleNamespace(kind="sign", mechanism=int(A.CKM_ECDSA), key=key)
        session = SimpleNamespace(handle=9, token=SimpleNamespace(slot_id=0))
        audit.key_use(session, op, CryptokiError(A.CKR_DEVICE_ERROR, "TPM_RC_LOCKOUT"))
    finally:
        audit.configure(None)
    recs = [r for r in records(log) if not r["event"].startswith("audit.")]
    assert [r["event"] for r in recs] == ["key.use", "backend.error"]
    assert recs[1]["backend"] == "tpm" and recs[1]["outcome"] == "CKR_DEVICE_ERROR"


def test_store_failure_is_a_backend_error(lib_path, tmp_path, monkeypatch):
    log = tmp_path / "s.jsonl"
    bad = tmp_path / "a-directory"
    bad.mkdir()
    conf = tmp_path / "c.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{bad}"\n[audit]\nfile = "{log}"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11(lib_path)
    # The store opens on the first token use, which fails; C_Initialize itself succeeds.
    assert p.call("C_Initialize", ffi.NULL) == A.CKR_OK
    try:
        assert p.call("C_GetTokenInfo", 0, ffi.new("CK_TOKEN_INFO *")) == A.CKR_DEVICE_ERROR
    finally:
        p.call("C_Finalize", ffi.NULL)
    audit.configure(None)
    recs = [r for r in records(log) if not r["event"].startswith("audit.")]
    assert recs[-1]["event"] == "backend.error" and recs[-1]["backend"] == "store"


def test_audit_off_writes_nothing(p11, tmp_path):
    assert not audit.enabled()


def test_full_disk_never_fails_a_call(lib_path, tmp_path, monkeypatch):
    """Audit records that cannot be written (ENOSPC: /dev/full) are lost, the calls are not,
    and nothing reaches the host's stderr (issue 15 item 4: logging never fails a call)."""
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n[audit]\nfile = "/dev/full"\n'
                    '[[slots]]\nid = 0\nkdf_cost = "test"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    child = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
             "from p11 import P11, ffi\nfrom cryptoki_shim import spec as A\n"
             "p = P11(); p.initialize(); p.init_token(0, b'so-pin-1234', 'full')\n"
             "s = p.open(0); p.login(s, b'so-pin-1234', user=A.CKU_SO); p.init_pin(s, b'user-1234')\n"
             "p.logout(s); p.login(s, b'user-1234')\n"
             "k = p.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: bytes(16),"
             " A.CKA_SIGN: True})\n"
             "assert len(p.sign(s, A.CKM_AES_CMAC, k, b'm')) == 16\n"
             "assert p.call('C_Finalize', ffi.NULL) == 0\nprint('done')\n")
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stdout + proc.stderr
    assert proc.stderr == ""
