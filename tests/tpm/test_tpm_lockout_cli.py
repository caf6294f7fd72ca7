"""``cryptoki-shim tpm-reset-lockout`` on a real swtpm (issue 5).

Someone guesses auth values against a sealed blob until the TPM enters dictionary-attack
lockout; our keys then answer ``CKR_PIN_LOCKED`` through the built library (a sealed key at
C_SignInit, a resident key at C_Sign). The admin CLI, in its own process, resets the lockout
with the lockout auth from the slot's ``lockout_auth_file`` (first round) or from
``--lockout-auth-env`` (second round), and both keys sign again. A wrong lockout auth is
refused with ``CKR_PIN_INCORRECT`` (exit 1) and leaves the TPM locked.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p11 import raises_ckr, write_config
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, P256, PCRS, gen_ec, slot_config, user_token

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_conn, tpm_keys

LOCKOUT_AUTH = bytes.fromhex("6c6f636b6f75742d61757468")  # set on the swtpm by the fixture


def cli(conf: Path, *args: str, env: dict[str, str] | None = None, rc: int = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *args, "--json"],
                          env=dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), **(env or {})),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == rc, f"{args} -> {proc.returncode}, wanted {rc}\n{proc.stdout}{proc.stderr}"
    return json.loads(proc.stdout)


def set_lockout_auth(tcti: str, old: bytes, new: bytes) -> None:
    from tpm2_pytss.constants import ESYS_TR
    with tpm_conn.open_tpm(tcti, "test lockout auth") as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, old)
        conn.ectx.hierarchy_change_auth(ESYS_TR.LOCKOUT, new, session1=conn.secret_session(tpm_conn.SECRET_IN))


@pytest.fixture(scope="module")
def token(swtpm, lib_path, tmp_path_factory):
    """(client, session, conf, sealed key, resident key) on a TPM slot whose TPM has a
    lockout auth, named in the slot's ``lockout_auth_file`` (as hex)."""
    set_lockout_auth(swtpm.tcti, b"", LOCKOUT_AUTH)
    work = tmp_path_factory.mktemp("lockout")
    auth_file = work / "lockout.auth"
    auth_file.write_text(f"hex:{LOCKOUT_AUTH.hex()}\n")
    auth_file.chmod(0o600)
    slots = slot_config(swtpm.tcti) + f'lockout_auth_file = "{auth_file}"\n'
    conf = write_config(work, slots=slots)
    with user_token(lib_path, conf, "lockout") as (client, s):
        _, sealed = gen_ec(client, s, ED25519, label=b"sealed")
        _, resident = gen_ec(client, s, P256, label=b"resident", key_id=b"\x02")
        yield client, s, conf, sealed, resident


def drive_into_lockout(tcti: str) -> None:
    """Guess wrong auth values against a sealed blob until the TPM locks out."""
    with tpm_conn.open_tpm(tcti, "test seal") as conn:
        victim = tpm_keys.seal(conn, b"x", b"right", PCRS)
    codes = []
    for _ in range(12):
        try:
            with tpm_conn.open_tpm(tcti, "guess") as conn:
                tpm_keys.unseal(conn, victim, b"wrong", PCRS)
        except Exception as exc:  # noqa: BLE001 - collecting CryptokiError codes
            codes.append(exc.ckr)
        if codes[-1] == S.CKR_PIN_LOCKED:
            break
    assert codes[0] == S.CKR_PIN_INCORRECT and codes[-1] == S.CKR_PIN_LOCKED, [S.ckr_name(c) for c in codes]


def assert_locked(client, s, sealed, resident) -> None:
    m, _keep = client.mechanism(S.CKM_EDDSA)
    assert client.call("C_SignInit", s, m, sealed) == S.CKR_PIN_LOCKED
    with raises_ckr(S.CKR_PIN_LOCKED):
        client.sign(s, S.CKM_ECDSA, resident, hashlib.sha256(b"m").digest())


def assert_signing(client, s, sealed, resident) -> None:
    assert len(client.sign(s, S.CKM_EDDSA, sealed, b"back")) == 64
    assert len(client.sign(s, S.CKM_ECDSA, resident, hashlib.sha256(b"back").digest())) == 64


def test_reset_lockout_with_the_configured_auth_file(token, swtpm):
    client, s, conf, sealed, resident = token
    assert_signing(client, s, sealed, resident)
    drive_into_lockout(swtpm.tcti)
    assert_locked(client, s, sealed, resident)
    out = cli(conf, "tpm-reset-lockout", "--slot", "0")
    assert out == {"ok": True, "slot": 0, "tcti": swtpm.tcti, "auth_from": "lockout_auth_file"}
    assert_signing(client, s, sealed, resident)


def test_reset_lockout_with_the_auth_from_the_environment(token, swtpm):
    client, s, conf, sealed, resident = token
    drive_into_lockout(swtpm.tcti)
    assert_locked(client, s, sealed, resident)
    out = cli(conf, "tpm-reset-lockout", "--lockout-auth-env", "LA", env={"LA": f"hex:{LOCKOUT_AUTH.hex()}"})
    assert out["auth_from"] == "--lockout-auth"
    assert_signing(client, s, sealed, resident)


def test_wrong_lockout_auth_is_pin_incorrect_and_the_tpm_stays_locked(token, swtpm):
    """Last in the module: a wrong lockout auth locks the lockout hierarchy itself."""
    client, s, conf, sealed, resident = token
    drive_into_lockout(swtpm.tcti)
    out = cli(conf, "tpm-reset-lockout", "--lockout-auth-env", "LA", env={"LA": "not the auth"}, rc=1)
    assert out["ckr"] == "CKR_PIN_INCORRECT"
    assert_locked(client, s, sealed, resident)
