"""The CLI and the configuration fail with named errors and the documented exit codes
(issue 15, item 12; docs/cli.md "Exit codes"), never a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cryptoki_shim import spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from p11 import P11, SO_PIN, ffi, write_config  # noqa: E402

EXIT_USAGE, EXIT_CONFIG, EXIT_BROKEN_PIPE = 2, 3, 141


def _no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def _recipient() -> str:
    import pyrage

    return str(pyrage.x25519.Identity.generate().to_public())


# ---------------------------------------------------------------------------- backup -o


def test_backup_refuses_to_write_through_a_symlink(ready) -> None:
    victim = ready.work / "victim.txt"
    victim.write_text("precious\n")
    link = ready.work / "out.age"
    link.symlink_to(victim)
    proc = ready.run("backup", "-o", str(link), "-r", _recipient(), "--pin-env", "UP", rc=EXIT_USAGE)
    _no_traceback(proc)
    assert "symbolic link" in proc.stderr
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()


def test_backup_output_is_0600_whatever_the_umask_and_replaces_not_rewrites(ready) -> None:
    out = ready.work / "t.age"
    out.write_text("old\n")
    other = ready.work / "hardlink"
    os.link(out, other)  # a hard link to the name must not receive the backup
    old_umask = os.umask(0)
    try:
        ready.run("backup", "-o", str(out), "-r", _recipient(), "--pin-env", "UP")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"age-encryption.org/v1")
    assert other.read_text() == "old\n"
    assert not [p for p in ready.work.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------- config


@pytest.mark.parametrize("slot_id, rc", [(2**64, EXIT_CONFIG), (2**64 - 1, EXIT_CONFIG), (2**32, EXIT_CONFIG),
                                         (-1, EXIT_CONFIG), (2**32 - 1, 0)])
def test_slot_id_is_checked_against_its_range(cli, slot_id: int, rc: int) -> None:
    cli.conf.write_text(cli.conf.read_text().replace("id = 0", f"id = {slot_id}"))
    proc = cli.run("config-check", rc=rc)
    _no_traceback(proc)
    if rc:
        assert f"id = {slot_id}" in proc.stderr and "4294967295" in proc.stderr


def test_non_utf8_config_is_a_config_error_not_a_traceback(cli) -> None:
    cli.conf.write_bytes(cli.conf.read_bytes() + b'\n# caf\xe9 (latin-1)\n')
    for command in (("config-check",), ("list",)):
        proc = cli.run(*command, rc=EXIT_CONFIG)
        _no_traceback(proc)
        assert "not UTF-8" in proc.stderr


def test_audit_file_in_a_missing_directory_fails_config_check_by_name(cli) -> None:
    missing = cli.work / "no" / "such" / "dir" / "audit.log"
    cli.conf.write_text(cli.conf.read_text() + f'\n[audit]\nfile = "{missing}"\n')
    proc = cli.run("config-check", rc=EXIT_CONFIG)
    _no_traceback(proc)
    assert "[audit] file" in proc.stderr and "does not exist" in proc.stderr
    data = cli.json("config-check", rc=EXIT_CONFIG)
    assert data["ok"] is False and data["exit"] == EXIT_CONFIG


def test_audit_key_the_module_would_refuse_fails_config_check(cli) -> None:
    """docs/security.md: config-check reports beforehand what would leave the module without
    audit records (the module itself only logs it)."""
    key = cli.work / "audit-test.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o640)
    conf = cli.conf.read_text()
    cli.conf.write_text(conf + f'\n[audit]\nfile = "{cli.work / "audit.log"}"\nkey_file = "{key}"\n')
    proc = cli.run("config-check", rc=EXIT_CONFIG)
    _no_traceback(proc)
    assert "[audit] key" in proc.stderr and "0640" in proc.stderr
    key.chmod(0o600)
    cli.run("config-check")
    in_memory = conf.replace(f'url = "sqlite:///{cli.work / "store.db"}"', 'url = "sqlite://"')
    assert in_memory != conf
    cli.conf.write_text(in_memory + f'\n[audit]\nfile = "{cli.work / "audit.log"}"\n')
    proc = cli.run("config-check", rc=EXIT_CONFIG)
    assert "[audit] key_file: not set" in proc.stderr


def test_log_file_in_a_missing_directory_fails_config_check_by_name(cli) -> None:
    cli.conf.write_text(f'[log]\nfile = "{cli.work / "gone" / "shim.log"}"\n' + cli.conf.read_text())
    proc = cli.run("config-check", rc=EXIT_CONFIG)
    assert "[log] file" in proc.stderr


def test_an_unopenable_audit_file_never_fails_the_module(tmp_path: Path, lib_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the .so: C_Initialize, C_InitToken, C_Login all succeed (logging never fails
    a call); before the fix every client got CKR_GENERAL_ERROR from C_Initialize."""
    missing = tmp_path / "no" / "dir" / "audit.log"
    conf = write_config(tmp_path, extra=f'[audit]\nfile = "{missing}"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p11 = P11(lib_path)
    assert spec.ckr_name(p11.call("C_Initialize", ffi.NULL)) == "CKR_OK"
    try:
        p11.init_token(0, SO_PIN)
        s = p11.open(0)
        p11.login(s, SO_PIN, user=spec.CKU_SO)
        p11.logout(s)
    finally:
        p11.call("C_Finalize", ffi.NULL)
    assert not missing.parent.exists()


# ---------------------------------------------------------------------------- stdout closed


def test_list_into_a_closed_pipe_ends_quietly(ready) -> None:
    """``cryptoki-shim list | head``: the reader is gone before we write."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", "list"], cwd=ready.work, env=ready.env,
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.stderr == ""
    assert proc.returncode == EXIT_BROKEN_PIPE

