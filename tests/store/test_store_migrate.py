"""`cryptoki-shim store migrate` (issue 19 item 5): a SQLite store made through the library
copied to PostgreSQL, used there through the library, and copied back to a new SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_helpers import query

import pg
from cryptoki_shim import spec
from cryptoki_shim.cli import main
from cryptoki_shim.store import Store
from cryptoki_shim.store import migrate as migrate_mod
from p11 import SO_PIN, USER_PIN, raises_ckr


@pytest.fixture(params=["sqlite_ops"])
def backend(request: pytest.FixtureRequest) -> str:
    """The library starts on SQLite; the test moves it."""
    return request.param


def _migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["store", "migrate", "--json", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 else {})


def _point_at(conf: Path, url: str) -> None:
    text = conf.read_text()
    start = text.index('url = "') + len('url = "')
    conf.write_text(text[:start] + url + text[text.index('"', start):])


def test_sqlite_to_postgresql_and_back(token, user_session, shim_conf: Path, pg_cluster: pg.Cluster,
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = user_session
    secret = b"migrated-private-value"
    h = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: True,
                         spec.CKA_LABEL: b"note", spec.CKA_VALUE: secret})
    pub, priv = token.generate_key_pair(
        s, spec.CKM_EC_KEY_PAIR_GEN,
        {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), spec.CKA_VERIFY: True,
         spec.CKA_LABEL: b"ec"},
        {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True, spec.CKA_LABEL: b"ec"})
    token.logout(s)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, b"0000")  # a failure counted: the counter must travel too
    token.finalize()

    pg_url = pg_cluster.url(pg_cluster.new_database())
    code, report = _migrate(capsys, "--to", pg_url)
    assert code == 0
    assert report["slots"] == [0] and report["rows"]["objects"] >= 3 and report["rows"]["pins"] == 2
    assert secret not in str(query(pg_url, "SELECT value FROM attributes")).encode()  # still sealed

    _point_at(shim_conf, pg_url)  # the library now runs on PostgreSQL
    token.initialize()
    assert token.token_info(0).flags & spec.CKF_USER_PIN_COUNT_LOW
    s = token.open(0)
    token.login(s, USER_PIN)
    [h] = token.find(s, {spec.CKA_LABEL: b"note"})
    assert token.get(s, h, spec.CKA_VALUE) == secret
    [priv] = token.find(s, {spec.CKA_LABEL: b"ec", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY})
    [pub] = token.find(s, {spec.CKA_LABEL: b"ec", spec.CKA_CLASS: spec.CKO_PUBLIC_KEY})
    token.verify(s, spec.CKM_ECDSA_SHA256, pub, b"m", token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"m"))
    token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"made on pg"})
    token.finalize()

    back = f"sqlite:///{tmp_path / 'back' / 'store.db'}"
    code, report = _migrate(capsys, "--to", back)
    assert code == 0 and report["rows"]["objects"] >= 4
    _point_at(shim_conf, back)
    token.initialize()
    s = token.open(0)
    token.login(s, USER_PIN)
    assert len(token.find(s, {spec.CKA_LABEL: b"made on pg"})) == 1
    [h] = token.find(s, {spec.CKA_LABEL: b"note"})
    assert token.get(s, h, spec.CKA_VALUE) == secret
    newest = max(r[0] for r in query(back, "SELECT id FROM objects"))
    token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"after"})
    assert max(r[0] for r in query(back, "SELECT id FROM objects")) > newest  # no id reused
    token.logout(s)
    token.login(s, SO_PIN, user=spec.CKU_SO)


def test_non_empty_destination_is_refused(token, user_session, shim_conf: Path, pg_cluster: pg.Cluster,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    token.finalize()
    pg_url = pg_cluster.url(pg_cluster.new_database())
    assert _migrate(capsys, "--to", pg_url)[0] == 0
    before = query(pg_url, "SELECT count(*) FROM objects")
    code = main(["store", "migrate", "--to", pg_url])
    assert code == 4  # EXIT_CHECK: nothing written
    assert "empty database" in capsys.readouterr().err
    assert query(pg_url, "SELECT count(*) FROM objects") == before
    token.initialize()


def test_verify_finds_a_changed_row(tmp_path: Path, pg_cluster: pg.Cluster, token_key: bytes) -> None:
    from store_helpers import make_token, sample_object

    src_url = f"sqlite:///{tmp_path / 'src.db'}"
    dst_url = pg_cluster.url(pg_cluster.new_database())
    with Store(src_url) as src, Store(dst_url) as dst:
        src.init_token(make_token(1, token_key))
        src.add_object(1, sample_object("a"))
        migrate_mod.copy(src, dst)
        query(dst_url, "UPDATE attributes SET value = '\\x00'::bytea WHERE type = 3")
        with pytest.raises(migrate_mod.MigrationError, match="attributes"):
            migrate_mod.verify(src, dst)
