"""The store key file ([store] key_file, issue 15 item 5) through the CLI: backup and restore
of a token whose PIN records are sealed under it."""

from __future__ import annotations

import sqlite3

import pyrage


def test_backup_and_restore_with_a_store_key_file(new_cli):
    probe = new_cli()
    key = probe.work / "store.key"
    probe.run("store-key-create", str(key))
    cli = new_cli(extra=f'key_file = "{key}"')
    cli.run("init-token", "--label", "keyed", "--so-pin-env", "SO", "--pin-env", "UP")
    ident = pyrage.x25519.Identity.generate()
    (cli.work / "id.txt").write_text(str(ident) + "\n")
    cli.run("backup", "-o", "t.age", "-r", str(ident.to_public()), "--pin-env", "UP")
    cli.run("init-token", "--label", "wiped", "--so-pin-env", "SO")
    cli.run("restore", "t.age", "-i", "id.txt", "--pin-env", "UP")
    assert cli.json("list")["slots"][0]["token"]["label"] == "keyed"
    with sqlite3.connect(cli.work / "store.db") as raw:
        params = [p for (p,) in raw.execute("SELECT params FROM pins")]
    assert params and all('"key_file"' in p for p in params)  # sealed again under the file
    cli.run("list", "--pin-env", "UP")  # the user PIN opens the restored token
