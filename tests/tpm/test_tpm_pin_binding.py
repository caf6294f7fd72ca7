"""``[slots.tpm] pin_binding`` (issue 15 item 5): a PIN record a copy of the store cannot open
without this TPM, and PIN guesses that cost TPM dictionary-attack failures.

Through the built library on a real swtpm; the attacker's offline check uses the store file
and ``store/crypto.py`` directly, as a copy of the disk allows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import slot_config, user_token

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_conn, tpm_pin
from cryptoki_shim.store import Store
from cryptoki_shim.store import crypto as at_rest
from p11 import SO_PIN, USER_PIN, raises_ckr, write_config

MAX_TRIES = 3


@pytest.fixture
def bound(swtpm, lib_path, tmp_path):
    """(client, session, config) on a TPM slot with pin_binding; the module's own retry
    limit far above the TPM's, so what stops guessing below is the TPM."""
    tpm_conn.reset_lockout(swtpm.tcti)
    tpm_conn.set_lockout_parameters(swtpm.tcti, MAX_TRIES, 1000, 1000)
    slots = slot_config(swtpm.tcti) + f'pin_binding = true\nlock_file = "{tmp_path / "tpm.lock"}"\n'
    slots = slots.replace('kdf_cost = "test"\n', 'kdf_cost = "test"\nmax_pin_failures = 100\n')
    conf = write_config(tmp_path, slots=slots)
    with user_token(lib_path, conf, "pinbound") as (client, s):
        yield client, s, conf
    tpm_conn.reset_lockout(swtpm.tcti)


def _records(conf: Path):
    with Store(f"sqlite:///{conf.parent / 'store.db'}") as store:
        rec = store.token(0)
    return {S.CKU_SO: rec.so_pin, S.CKU_USER: rec.user_pin}


def test_a_copy_of_the_store_without_the_tpm_cannot_test_a_pin(bound):
    client, s, conf = bound
    assert (conf.parent / "tpm.lock").stat().st_mode & 0o777 == 0o600  # the module's files: 0600
    for user, pin in ((S.CKU_USER, USER_PIN), (S.CKU_SO, SO_PIN)):
        rec = _records(conf)[user]
        assert tpm_pin.PARAM in rec.params
        with pytest.raises(Exception):  # the right PIN, offline: the outer layer needs the TPM
            at_rest.open_pin_record(pin, rec)
    client.logout(s)
    client.login(s, USER_PIN)  # with the TPM, the PIN works


def test_each_wrong_pin_is_a_tpm_dictionary_attack_failure(bound, swtpm):
    """Guessing through the module stops at the TPM's lockout, whatever the store's own
    counter says (an attacker who can write the file could reset that counter)."""
    client, s, conf = bound
    client.logout(s)
    for _ in range(MAX_TRIES):
        with raises_ckr(S.CKR_PIN_INCORRECT):
            client.login(s, b"0000")
    with sqlite3.connect(conf.parent / "store.db") as raw:  # the attacker resets our counter
        raw.execute("UPDATE pins SET failures = 0")
    with raises_ckr(S.CKR_PIN_LOCKED):
        client.login(s, USER_PIN)  # the right PIN: the TPM is in lockout
    tpm_conn.reset_lockout(swtpm.tcti)
    client.login(s, USER_PIN)


def test_set_pin_keeps_the_binding(bound):
    client, s, conf = bound
    client.set_pin(s, USER_PIN, b"new-pin-4455")
    assert tpm_pin.PARAM in _records(conf)[S.CKU_USER].params
    client.logout(s)
    client.login(s, b"new-pin-4455")
    client.set_pin(s, b"new-pin-4455", USER_PIN)


def test_existing_token_is_bound_at_its_next_login(swtpm, lib_path, tmp_path):
    """A TPM token made before pin_binding was switched on: its PIN records gain the TPM
    layer at the next successful login of each PIN (the PIN is needed to make it)."""
    tpm_conn.reset_lockout(swtpm.tcti)
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti))
    with user_token(lib_path, conf, "later") as (client, s):
        assert tpm_pin.PARAM not in _records(conf)[S.CKU_USER].params
        client.finalize()
        conf.write_text(conf.read_text() + "pin_binding = true\n")  # the [slots.tpm] table is last
        client.initialize()
        s = client.open(0)
        client.login(s, USER_PIN)
        records = _records(conf)
        assert tpm_pin.PARAM in records[S.CKU_USER].params
        assert tpm_pin.PARAM not in records[S.CKU_SO].params  # the SO has not logged in yet
        with pytest.raises(Exception):
            at_rest.open_pin_record(USER_PIN, records[S.CKU_USER])
        client.logout(s)
        client.login(s, USER_PIN)
        client.logout(s)
        client.login(s, SO_PIN, user=S.CKU_SO)
        assert tpm_pin.PARAM in _records(conf)[S.CKU_SO].params
