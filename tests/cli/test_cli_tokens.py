"""init-token, set-pin, unlock-pin, list: end to end on a real store, exit codes, --json."""

from __future__ import annotations

import json


def test_init_token_then_list_json(ready):
    data = ready.json("list")
    slot = data["slots"][0]
    assert slot["slot"] == 0 and slot["backend"] == "software"
    assert slot["token"]["label"] == "cli-test"
    assert slot["token"]["user_pin_set"] is True
    assert slot["objects"] == []


def test_list_before_init_says_not_initialized(cli):
    out = cli.run("list").stdout
    assert "not initialized" in out
    assert cli.json("list")["slots"][0]["token"] is None


def test_list_human_table_has_columns(ready):
    ready.run("import", str(_key_pem(ready)), "--pin-env", "UP", "--id", "aa", "--label", "k")
    out = ready.run("list", "--pin-env", "UP").stdout
    for column in ("handle", "class", "label", "id", "key_type", "backend"):
        assert column in out
    assert "PRIVATE_KEY" in out and "software" in out


def test_label_too_long_is_usage_error(cli):
    proc = cli.run("init-token", "--label", "x" * 33, "--so-pin-env", "SO", rc=2)
    assert "at most 32" in proc.stderr


def test_missing_pin_source_without_terminal_is_usage_error(cli):
    proc = cli.run("init-token", "--label", "t", rc=2)
    assert "--so-pin-env" in proc.stderr


def test_set_user_pin(ready):
    ready.run("set-pin", "--old-pin-env", "UP", "--new-pin-env", "NEW", NEW="fresh-PIN-77")
    assert ready.run("list", "--pin-env", "NEW", NEW="fresh-PIN-77").returncode == 0
    proc = ready.run("list", "--pin-env", "UP", "--json", rc=1)
    assert json.loads(proc.stdout)["ckr"] == "CKR_PIN_INCORRECT"


def test_set_so_pin(ready):
    ready.run("set-pin", "--user", "so", "--old-pin-env", "SO", "--new-pin-env", "NEW", NEW="new-SO-pin-1")
    ready.run("unlock-pin", "--so-pin-env", "NEW", "--new-pin-env", "UP", NEW="new-SO-pin-1")
    ready.run("unlock-pin", "--so-pin-env", "SO", "--new-pin-env", "UP", rc=1)


def test_lockout_and_unlock(new_cli):
    cli = new_cli(max_failures=2)
    cli.run("init-token", "--label", "lock", "--so-pin-env", "SO", "--pin-env", "UP")
    first = cli.json("list", "--pin-env", "BAD", rc=1, BAD="wrong-pin-1")
    second = cli.json("list", "--pin-env", "BAD", rc=1, BAD="wrong-pin-1")
    assert (first["ckr"], second["ckr"]) == ("CKR_PIN_INCORRECT", "CKR_PIN_LOCKED")
    assert cli.json("list", "--pin-env", "UP", rc=1)["ckr"] == "CKR_PIN_LOCKED"  # even the right PIN
    token = cli.json("list")["slots"][0]["token"]
    assert token["user_pin_locked"] is True
    cli.run("unlock-pin", "--so-pin-env", "SO", "--new-pin-env", "UP")
    assert cli.json("list")["slots"][0]["token"]["user_pin_locked"] is False
    cli.run("list", "--pin-env", "UP")


def test_pin_from_file(ready, tmp_path):
    f = tmp_path / "pin"
    f.write_text(ready.USER_PIN + "\n")
    ready.run("list", "--pin-file", str(f))


def test_unknown_slot(ready):
    assert ready.json("list", "--slot", "7", rc=2)["ok"] is False


def _key_pem(cli):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = cli.work / "k.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path
