"""The store on a real PostgreSQL server (issue 19 items 1, 3, 4): configuration, faults,
locks. The session's throwaway cluster (`pg_cluster`, tests/pg.py) is stopped and restarted
here; every test leaves it running.

The PostgreSQL counterparts of SQLite-only tests elsewhere in this directory: lock waits
(`test_write_waits_for_a_row_lock`, `test_row_lock_never_released_is_device_error`),
read-only media (`test_read_only_database`), files (`test_store_media.py::
test_sealed_secret_never_on_disk[pg]` reads the cluster's heap and WAL files).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from store_helpers import make_token, sample_object

import pg
from cryptoki_shim import config as config_mod
from cryptoki_shim import spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.store import Store
from cryptoki_shim.store import pg as store_pg
from cryptoki_shim.store import store as store_module
from p11 import raises_ckr

PASSWORD = "pw-of-the-tests"


def _device_error(fn, *args, **kwargs) -> CryptokiError:
    with pytest.raises(CryptokiError) as exc:
        fn(*args, **kwargs)
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR, hex(exc.value.ckr)
    return exc.value


@pytest.fixture
def running(pg_cluster: pg.Cluster) -> Iterator[pg.Cluster]:
    """The cluster, started again after the test if the test stopped it."""
    yield pg_cluster
    if pg_cluster.sql_fails():
        pg_cluster.start()


def _parse(text: str) -> config_mod.Config:
    return config_mod.parse(text + '\n[[slots]]\nid = 0\n', "test.toml")


# -- configuration ---------------------------------------------------------------------------


def test_password_from_a_file_and_from_the_environment(pg_cluster: pg.Cluster, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, token_key: bytes) -> None:
    """The password never has to be in the URL: `password_file` or `${ENV}` (scram-sha-256
    over TCP, the role of tests/pg.py that must give one)."""
    db = pg_cluster.new_database()
    url = pg_cluster.url(db, user=pg.PASSWORD_ROLE, tcp=True)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    monkeypatch.setenv("SHIM_TEST_PGPW", PASSWORD)
    for store_conf in (f'password_file = "{tmp_path / "pw"}"', 'password = "${SHIM_TEST_PGPW}"'):
        cfg = _parse(f'[store]\nurl = "{url}"\n{store_conf}\nconnect_timeout = 3')
        assert cfg.store_connect == {"password": PASSWORD} and cfg.store_connect_timeout == 3
        with Store(cfg.store_url, connect=cfg.store_connect, connect_timeout=cfg.store_connect_timeout) as s:
            s.init_token(make_token(1, token_key))
            assert s.token(1) is not None


def test_wrong_password_is_device_error_with_the_reason_logged(pg_cluster: pg.Cluster,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    url = pg_cluster.url(pg_cluster.new_database(), user=pg.PASSWORD_ROLE, tcp=True)
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.store"):
        _device_error(Store, url, connect={"password": "not-it"})
    assert "password authentication failed" in caplog.text
    assert "not-it" not in caplog.text


def test_sslmode_is_passed_through(pg_cluster: pg.Cluster, caplog: pytest.LogCaptureFixture) -> None:
    """The test server has no TLS: `require` must fail (with libpq's reason), `disable` work."""
    url = pg_cluster.url(pg_cluster.new_database(), tcp=True)
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.store"):
        _device_error(Store, url, connect={"sslmode": "require"})
    assert "SSL" in caplog.text
    Store(url, connect={"sslmode": "disable"}).close()
    with pytest.raises(config_mod.ConfigError):
        _parse('[store]\nsslmode = "sometimes"')


def test_unreachable_server_is_device_error_at_first_use(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.store"):
        _device_error(Store, f"postgresql+psycopg://shim@127.0.0.1:{port}/none")
    assert "refused" in caplog.text.lower()


def test_silent_server_fails_within_the_connect_timeout() -> None:
    """A server that accepts TCP but never answers (a hung host): CKR_DEVICE_ERROR after
    `connect_timeout`, not a hang."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        _device_error(Store, f"postgresql+psycopg://shim@127.0.0.1:{port}/none", connect_timeout=2)
        assert 1.5 < time.monotonic() - t0 < 8


def test_doctor_probes_the_server(pg_cluster: pg.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from cryptoki_shim.cli import main

    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "{pg_cluster.url(pg_cluster.new_database())}"\n[[slots]]\nid = 0\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    try:
        main(["doctor"])
    except SystemExit:
        pass  # other steps (TPM, permissions of this machine) may fail: the store rows matter
    out = capsys.readouterr().out
    [row] = [line for line in out.splitlines() if "store server" in line]
    assert "ok" in row and "PostgreSQL" in row and "no TLS" in row, row


# -- locks -----------------------------------------------------------------------------------


def _hold_generation_lock(url_db: str, cluster: pg.Cluster) -> psycopg.Connection:
    """Another client in the middle of a write transaction: the generation row locked."""
    conn = psycopg.connect(cluster.dsn(url_db))
    conn.execute("UPDATE generation SET value = value")
    return conn


def test_write_waits_for_a_row_lock(store: Store, db_url: str, pg_cluster: pg.Cluster,
                                    backend: str) -> None:
    if backend != "pg":
        return
    raw = _hold_generation_lock(pg.database_of(db_url), pg_cluster)
    threading.Timer(1.0, raw.commit).start()
    t0 = time.monotonic()
    assert store.objects(1) == []  # reads are not blocked
    store.add_object(1, sample_object("mine"))
    assert time.monotonic() - t0 >= 0.9
    raw.close()


@pytest.mark.parametrize("backend", ["pg"], indirect=True)
def test_row_lock_never_released_is_device_error(db_url: str, pg_cluster: pg.Cluster, token_key: bytes,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_pg, "LOCK_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store_module, "RETRY_FOR_S", 0.5)
    with Store(db_url) as s:
        s.init_token(make_token(1, token_key))
        raw = _hold_generation_lock(pg.database_of(db_url), pg_cluster)
        try:
            t0 = time.monotonic()
            err = _device_error(s.add_object, 1, sample_object("never"))
            assert "locked" in str(err) and time.monotonic() - t0 < 5
            assert s.objects(1) == []
        finally:
            raw.rollback()
            raw.close()
        s.add_object(1, sample_object("after"))


def test_read_only_database(pg_cluster: pg.Cluster, token_key: bytes) -> None:
    """A database that takes no writes (a standby, default_transaction_read_only): every
    write is CKR_DEVICE_ERROR, reads keep working."""
    name = pg_cluster.new_database()
    db_url = pg_cluster.url(name)
    with Store(db_url) as s:
        s.init_token(make_token(1, token_key))
        oid = s.add_object(1, sample_object("u1"))
    pg_cluster.sql(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
    with Store(db_url) as s:  # new sessions get the setting
        _device_error(s.add_object, 1, sample_object("u2"))
        _device_error(s.reserve_login, 1, 2)
        _device_error(s.delete_object, 1, oid)
        _device_error(s.init_token, make_token(1, token_key))
        assert [o.oid for o in s.objects(1)] == [oid]


# -- faults ----------------------------------------------------------------------------------


def _writer(s: Store, stop: threading.Event, acked: list[int], errors: list[int]) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        try:
            acked.append(s.add_object(1, sample_object(f"w{threading.get_ident()}-{i}", i)))
        except CryptokiError as exc:
            errors.append(exc.ckr)
            time.sleep(0.01)


@pytest.mark.parametrize("backend", ["pg"], indirect=True)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restarted_in_a_stream_of_writes(store: Store, running: pg.Cluster, mode: str) -> None:
    """Two threads writing while the server restarts (`fast`: sessions cut; `immediate`: a
    crash, recovered from the WAL): calls in flight fail with CKR_DEVICE_ERROR, nothing
    acknowledged is lost, and the store reconnects by itself (pool_pre_ping, the listener)."""
    stop = threading.Event()
    acked: list[int] = []
    errors: list[int] = []
    threads = [threading.Thread(target=_writer, args=(store, stop, acked, errors)) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    running.stop(mode)
    time.sleep(0.3)
    running.start()
    before = len(acked)
    deadline = time.monotonic() + 20
    while len(acked) < before + 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) >= before + 50, f"no recovery: {len(acked) - before} writes after the restart"
    assert errors and set(errors) == {spec.CKR_DEVICE_ERROR}, errors
    stored = {o.oid for o in store.objects(1)}
    assert set(acked) <= stored  # every acknowledged create survived
    assert len(stored - set(acked)) <= 2  # at most the in-flight commits whose answer was lost
    store.data_version(exact=False)  # the listener is back too


@pytest.mark.parametrize("backend", ["pg"], indirect=True)
def test_server_stopped_clean_errors_then_recovery(store: Store, running: pg.Cluster) -> None:
    """While the server is down every call is CKR_DEVICE_ERROR at once (no hang), the
    cached-key check included; once it is back the same store works without reopening."""
    oid = store.add_object(1, sample_object("kept"))
    store.data_version(exact=False)
    running.stop("fast")
    t0 = time.monotonic()
    _device_error(store.add_object, 1, sample_object("lost"))
    _device_error(store.objects, 1)
    _device_error(store.data_version, exact=False)
    _device_error(store.token, 1)
    assert time.monotonic() - t0 < 5
    running.start()
    assert [o.oid for o in store.objects(1)] == [oid]
    store.add_object(1, sample_object("again"))
    store.data_version(exact=False)


@pytest.mark.parametrize("backend", ["pg"], indirect=True)
def test_library_recovers_from_a_restart_without_reinitializing(token, user_session: int,
                                                                running: pg.Cluster) -> None:
    """Through the library: a restart between calls is invisible to the next call (a fresh
    pooled connection, a new listener); while the server is down a cached key is not used
    (CKR_DEVICE_ERROR at once, fail closed), and after it is back the same session signs."""
    s = user_session
    pub, priv = token.generate_key_pair(
        s, spec.CKM_EC_KEY_PAIR_GEN,
        {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), spec.CKA_VERIFY: True},
        {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True, spec.CKA_LABEL: b"k"})
    token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"before")
    running.stop("fast")
    running.start()
    token.verify(s, spec.CKM_ECDSA_SHA256, pub, b"after", token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"after"))
    assert token.find(s, {spec.CKA_LABEL: b"k"}) == [priv]
    running.stop("fast")
    t0 = time.monotonic()
    with raises_ckr(spec.CKR_DEVICE_ERROR):
        token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"down")
    with raises_ckr(spec.CKR_DEVICE_ERROR):
        token.find(s, {spec.CKA_LABEL: b"k"})
    assert time.monotonic() - t0 < 5
    running.start()
    token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"back")
    h = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"after the outage"})
    assert token.find(s, {spec.CKA_LABEL: b"after the outage"}) == [h]


def test_library_answers_device_error_and_logs_why_when_the_server_is_down(lib_path: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the library: C_Initialize succeeds (the store opens at first use), the first
    call that needs the token answers CKR_DEVICE_ERROR, and the log says why (a warning)."""
    from p11 import P11

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "shim.log"
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "postgresql+psycopg://shim@127.0.0.1:{port}/tokens"\npassword = "secret-pw"\n'
                    f'[log]\nfile = "{log}"\nlevel = "warning"\n[[slots]]\nid = 0\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    monkeypatch.delenv("CRYPTOKI_SHIM_LOG", raising=False)
    p = P11(lib_path)
    p.initialize()
    try:
        with raises_ckr(spec.CKR_DEVICE_ERROR):
            p.token_info(0)
    finally:
        p.finalize()
    text = log.read_text()
    assert "WARNING" in text and "refused" in text.lower(), text
    assert "secret-pw" not in text
