"""Configuration: search order, ${ENV} and *_file secrets, every validation message, the
generated reference, and C_Initialize refusing an invalid file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryptoki_shim import config, config_reference

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- search order


def test_env_file_wins(tmp_path, monkeypatch):
    a = tmp_path / "a.toml"
    a.write_text("")
    (tmp_path / "xdg" / "cryptoki-shim").mkdir(parents=True)
    (tmp_path / "xdg" / "cryptoki-shim" / "config.toml").write_text("")
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(a))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.find_config_file() == a


def test_user_config_dir_next(tmp_path, monkeypatch):
    user = tmp_path / "xdg" / "cryptoki-shim" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[log]\nlevel = "debug"\n')
    monkeypatch.delenv("CRYPTOKI_SHIM_CONF", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config.find_config_file() == user
    assert config.load().log_level == "debug"


def test_then_etc_then_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("CRYPTOKI_SHIM_CONF", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    etc = Path("/etc/cryptoki-shim/config.toml")
    assert config.find_config_file() == (etc if etc.is_file() else None)
    if not etc.is_file():
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        cfg = config.load()
        assert cfg.source == "<defaults>"
        assert [s.id for s in cfg.slots] == [0]
        assert cfg.store_url == f"sqlite:///{tmp_path}/data/cryptoki-shim/store.db"
        assert not cfg.audit["file"] and not cfg.audit["syslog"]


def test_env_naming_a_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(tmp_path / "nope.toml"))
    with pytest.raises(config.ConfigError, match="nope.toml: no such file"):
        config.find_config_file()


# --------------------------------------------------------------------------- secrets


def test_env_expansion(monkeypatch):
    monkeypatch.setenv("SHIM_DB", "/srv/db")
    cfg = config.parse('[store]\nurl = "sqlite:///${SHIM_DB}/s.db"\n')
    assert cfg.store_url == "sqlite:////srv/db/s.db"


def test_dollar_dollar_is_literal(monkeypatch):
    assert config.parse('[log]\nfile = "/tmp/a$$b"\n').log_file == "/tmp/a$b"


def test_file_key_reads_secret(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("sqlite:////run/s.db\n")
    assert config.parse(f'[store]\nurl_file = "{secret}"\n').store_url == "sqlite:////run/s.db"


def test_file_key_path_expands_env(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x.log")
    monkeypatch.setenv("SECRETS", str(tmp_path))
    assert config.parse('[log]\nfile_file = "${SECRETS}/f"\n').log_file == "x.log"


def test_file_key_works_in_slot_tables(tmp_path):
    (tmp_path / "d").write_text("from a file\n")
    cfg = config.parse(f'[[slots]]\nid = 0\ndescription_file = "{tmp_path / "d"}"\n')
    assert cfg.slots[0].description == "from a file"


# --------------------------------------------------------------------------- every message

ERRORS = [
    ("a = [", "f.toml: not valid TOML: "),
    ("[bogus]\n", "f.toml: unknown section 'bogus'; allowed: store, log, audit, python, metrics, module, slots"),
    ("store = 3\n", "f.toml: [store] must be a table, got 3"),
    ("[store]\nuri = 'x'\n", "f.toml: [store] unknown key 'uri'; allowed: connect_timeout, key_file, password, sqlite_fast_path, sslcert, sslkey, sslmode, sslrootcert, url (and <key>_file for string keys)"),
    ("[store]\nurl = 3\n", "f.toml: [store] url must be a string, got 3"),
    ("[store]\nurl = '${SHIM_TEST_UNSET_VAR}'\n",
     "f.toml: [store] url: environment variable SHIM_TEST_UNSET_VAR is not set (referenced as "
     "${SHIM_TEST_UNSET_VAR}; write $$ for a literal $)"),
    ("[store]\nurl = 'a'\nurl_file = 'b'\n", "f.toml: [store] url and url_file are both set; give one"),
    ("[store]\nurl_file = 7\n", "f.toml: [store] url_file must be a string (a file path), got 7"),
    ("[store]\nurl_file = '/nonexistent/secret'\n",
     "f.toml: [store] url_file: cannot read /nonexistent/secret: No such file or directory"),
    ("[log]\nlevel = 'loud'\n", "f.toml: [log] level = 'loud' is not allowed; allowed: debug, info, warning, error"),
    ("[audit]\nhash_chain = 'yes'\n", "f.toml: [audit] hash_chain must be true or false, got 'yes'"),
    ("[audit]\nsyslog = 1\n", "f.toml: [audit] syslog must be true or false, got 1"),
    ("[audit]\nsyslog_facility = 'kern'\n", "f.toml: [audit] syslog_facility = 'kern' is not allowed; allowed: auth, "
                                             "authpriv, daemon, user, local0, local1, local2, local3, local4, local5, "
                                             "local6, local7"),
    ("slots = 3\n", "f.toml: [[slots]] must be a non-empty array of tables"),
    ("slots = []\n", "f.toml: [[slots]] must be a non-empty array of tables"),
    ("slots = [3]\n", "f.toml: [[slots]] entry 0 must be a table"),
    ("[[slots]]\nbackend = 'software'\n", "f.toml: [slots[0]] id is required; allowed: an integer from 0 to 4294967295"),
    ("[[slots]]\nid = -1\n", "f.toml: [slots[0]] id = -1 is out of range; allowed: an integer from 0 to 4294967295"),
    ("[[slots]]\nid = 18446744073709551616\n",
     "f.toml: [slots[0]] id = 18446744073709551616 is out of range; allowed: an integer from 0 to 4294967295"),
    ("[[slots]]\nid = true\n", "f.toml: [slots[0]] id must be an integer, got True"),
    ("[[slots]]\nid = 0\nbackend = 'hsm'\n",
     "f.toml: [slots[0]] backend = 'hsm' is not allowed; allowed: software, tpm, upstream"),
    ("[[slots]]\nid = 0\nkdf_cost = 'low'\n", "f.toml: [slots[0]] kdf_cost = 'low' is not allowed; allowed: default, "
                                               "high, test"),
    ("[[slots]]\nid = 0\ncolour = 1\n", "f.toml: [slots[0]] unknown key 'colour'; allowed: "),
    ("[[slots]]\nid = 0\nmin_pin_len = 8\nmax_pin_len = 4\n",
     "f.toml: [slots[0]] min_pin_len = 8, max_pin_len = 4; allowed: 1 <= min_pin_len <= max_pin_len <= 255"),
    ("[[slots]]\nid = 0\nmax_pin_failures = 0\n",
     "f.toml: [slots[0]] max_pin_failures = 0; allowed: an integer >= 1"),
    ("[[slots]]\nid = 0\ndescription = '" + "d" * 65 + "'\n",
     "f.toml: [slots[0]] description is 65 bytes; allowed: at most 64 (CK_SLOT_INFO.slotDescription)"),
    ("[[slots]]\nid = 1\n[[slots]]\nid = 1\n", "f.toml: [[slots]] id values must be unique, got [1, 1]"),
    ("[[slots]]\nid = 0\ntpm = 3\n", "f.toml: [slots[0].tpm] must be a table, got 3"),
]


@pytest.mark.parametrize("text,message", ERRORS, ids=[m.split("] ")[-1][:40] for _, m in ERRORS])
def test_validation_message(text, message, monkeypatch):
    monkeypatch.delenv("SHIM_TEST_UNSET_VAR", raising=False)
    with pytest.raises(config.ConfigError) as info:
        config.parse(text, "f.toml")
    assert str(info.value).startswith(message), str(info.value)


def test_unreadable_file(tmp_path, monkeypatch):
    d = tmp_path / "dir.toml"
    d.mkdir()
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(d))
    with pytest.raises(config.ConfigError, match="no such file"):
        config.load()


# --------------------------------------------------------------------------- C_Initialize

INIT_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from p11 import P11, ffi
print(P11().call("C_Initialize", ffi.NULL))
"""


def test_invalid_config_fails_c_initialize_with_logged_reason(tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text('[[slots]]\nid = 0\nbackend = "hsm"\n')
    log = tmp_path / "shim.log"
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), CRYPTOKI_SHIM_LOG=str(log))
    proc = subprocess.run([sys.executable, "-c", INIT_SCRIPT.format(tests=str(ROOT / "tests"))], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "5", proc.stderr  # CKR_GENERAL_ERROR
    assert f"{conf}: [slots[0]] backend = 'hsm' is not allowed; allowed: software, tpm, upstream" in log.read_text()


# --------------------------------------------------------------------------- reference


def test_reference_doc_is_current():
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == config_reference.render(), (
        "docs/configuration.md is out of date: run "
        "`.venv/bin/cryptoki-shim config-reference -o docs/configuration.md`")


def test_reference_lists_every_key():
    text = config_reference.render()
    for section, keys in [*config.SECTIONS.items(), ("slots", config.SLOT_KEYS), *config.SUBTABLES.items()]:
        for name in keys:
            assert f"| `{name}` |" in text, (section, name)


def test_slot_config_follows_slot_keys():
    """SlotConfig has a field per SLOT_KEYS key (defaults taken from there) and per sub-table:
    a key added to SLOT_KEYS without its field fails here, not in SlotConfig(**values)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(config.SlotConfig)}
    assert list(fields) == [*config.SLOT_KEYS, *config.SUBTABLES]
    for name, key in config.SLOT_KEYS.items():
        if name != "id":  # required: no default
            assert fields[name].default == key.default, name
    assert config.parse("", "<defaults>").slots == (config.SlotConfig(id=0),)
