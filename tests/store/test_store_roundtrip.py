"""Store round trips on a real SQLite file: tokens, PINs, objects, schema, transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.schema import CreateIndex, CreateTable
from store_helpers import SQLITE_ONLY, make_token, query, sample_object

from cryptoki_shim import spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.store import (
    CKU_SO,
    CKU_USER,
    ObjectRecord,
    Store,
    TokenRecord,
    make_pin_record,
    open_pin_record,
)
from cryptoki_shim.store import schema, versions


def db_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


# -- schema --------------------------------------------------------------------------------


def test_new_store_records_schema_version(db_url: str, backend: str) -> None:
    from sqlalchemy import create_engine, inspect

    Store(db_url).close()
    assert query(db_url, "SELECT version FROM schema_version") == [(schema.CURRENT_VERSION,)]
    if backend != "pg":
        with sqlite3.connect(db_path(db_url)) as raw:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine = create_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"schema_version", "generation", "tokens", "pins", "objects", "attributes"} <= tables


def test_reopening_keeps_data(db_url: str, token_key: bytes) -> None:
    with Store(db_url) as s:
        s.init_token(make_token(3, token_key))
        oid = s.add_object(3, sample_object("u1"))
    with Store(db_url, create=False) as s:
        assert s.token(3) is not None and s.token(3).serial == "0123456789abcdef"
        assert [o.oid for o in s.objects(3)] == [oid]


def test_create_false_refuses_missing_store(tmp_path) -> None:
    with pytest.raises(CryptokiError) as exc:
        Store(f"sqlite:///{tmp_path / 'absent.db'}", create=False)
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR
    assert not (tmp_path / "absent.db").exists()


def test_upgrade_steps_run_once(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A vN store opened by a release with schema vN+1 runs the N->N+1 step, once."""
    Store(db_url).close()
    ran: list[int] = []
    current = schema.CURRENT_VERSION

    def next_step(conn) -> None:
        ran.append(current)
        conn.exec_driver_sql("ALTER TABLE tokens ADD COLUMN backend VARCHAR(32)")

    monkeypatch.setattr(versions, "CURRENT_VERSION", current + 1)  # its home (schema re-exports it)
    monkeypatch.setitem(schema.UPGRADES, current, next_step)
    Store(db_url).close()
    Store(db_url).close()
    assert ran == [current]
    assert query(db_url, "SELECT version FROM schema_version") == [(current + 1,)]
    query(db_url, "UPDATE tokens SET backend = 'x'")  # the new column exists


def test_newer_schema_is_refused(db_url: str) -> None:
    Store(db_url).close()
    assert query(db_url, "UPDATE schema_version SET version = 99") == 1
    with pytest.raises(CryptokiError) as exc:
        Store(db_url)
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR


def test_schema_compiles_for_postgresql() -> None:
    """Nothing SQLite-only: every table and index has PostgreSQL DDL."""
    dialect = postgresql.dialect()
    for table in schema.metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect))
        assert "BYTEA" in ddl or "LargeBinary" not in repr(table.columns)
        for index in table.indexes:
            str(CreateIndex(index).compile(dialect=dialect))
    objects_ddl = str(CreateTable(schema.objects).compile(dialect=dialect))
    assert "BIGSERIAL" in objects_ddl


def test_attributes_indexed_by_type_and_value(store: Store, db_url: str, backend: str) -> None:
    store.add_object(1, sample_object("u1"))
    if backend == "pg":  # a tiny table is scanned unless told otherwise
        plan = query(db_url, "SET LOCAL enable_seqscan = off", "EXPLAIN SELECT object_id FROM attributes "
                             "WHERE type = 3 AND value = '\\x00'::bytea")
    else:
        with sqlite3.connect(db_path(db_url)) as raw:
            plan = raw.execute("EXPLAIN QUERY PLAN SELECT object_id FROM attributes "
                               "WHERE type = 3 AND value = x'00'").fetchall()
    assert "ix_attributes_type_value" in str(plan)


# -- tokens and PINs -------------------------------------------------------------------------


def test_token_round_trip(store: Store, token_key: bytes) -> None:
    tok = store.token(1)
    assert tok is not None
    assert (tok.slot_id, tok.label, tok.serial) == (1, b"test token".ljust(32), "0123456789abcdef")
    assert open_pin_record(b"1234", tok.user_pin) == token_key
    assert open_pin_record(b"so-pin", tok.so_pin) == token_key
    assert tok.pin(CKU_SO) is tok.so_pin and tok.pin(CKU_USER) is tok.user_pin
    assert store.token(2) is None


def test_token_without_user_pin(store: Store, token_key: bytes) -> None:
    rec = make_token(2, token_key)
    rec.user_pin = None
    rec.meta = {"backend": "software"}
    store.init_token(rec)
    tok = store.token(2)
    assert tok.user_pin is None and tok.so_pin is not None and tok.meta == {"backend": "software"}
    assert tok.created_at == rec.created_at


def test_update_token_fields(store: Store, token_key: bytes) -> None:
    new_pin = make_pin_record(b"5678", token_key, cost="test")
    store.update_token(1, label=b"renamed".ljust(32), user_pin=new_pin, meta={"a": 1})
    tok = store.token(1)
    assert tok.label == b"renamed".ljust(32) and tok.meta == {"a": 1}
    assert open_pin_record(b"5678", tok.user_pin) == token_key
    store.update_token(1, user_pin=None)
    assert store.token(1).user_pin is None and store.token(1).so_pin is not None
    with pytest.raises(KeyError):
        store.update_token(9, label=b"x".ljust(32))
    with pytest.raises(TypeError):
        store.update_token(1, colour="blue")


def test_login_failure_counter(store: Store) -> None:
    assert [store.reserve_login(1, CKU_USER) for _ in range(3)] == [1, 2, 3]
    assert store.token(1).user_pin.failures == 3
    assert store.token(1).so_pin.failures == 0
    store.login_succeeded(1, CKU_USER)
    assert store.token(1).user_pin.failures == 0
    with pytest.raises(KeyError):
        store.reserve_login(7, CKU_USER)


def test_login_reservation_limit_and_settling(store: Store) -> None:
    """reserve_login counts before the PIN is tried and refuses at the limit; a right PIN
    gives back what was counted up to its own reservation, not the attempts after it."""
    rec = store.token(1).user_pin
    assert store.reserve_login(1, CKU_USER, limit=3, wrapped_key=rec.wrapped_key) == 1
    mine = store.reserve_login(1, CKU_USER, limit=3, wrapped_key=rec.wrapped_key)
    assert mine == 2
    assert store.reserve_login(1, CKU_USER, limit=3) == 3  # a later attempt, still in flight
    assert store.reserve_login(1, CKU_USER, limit=3) is None  # locked: nothing more is tried
    assert store.token(1).user_pin.failures == 3
    store.login_succeeded(1, CKU_USER, mine, rec.wrapped_key)
    assert store.token(1).user_pin.failures == 1  # the attempt that began after it stays counted
    with pytest.raises(KeyError):  # another record than the one about to be tried
        store.reserve_login(1, CKU_USER, limit=3, wrapped_key=b"not the stored record")
    store.login_succeeded(1, CKU_USER, 5, b"not the stored record")  # a replaced record: untouched
    assert store.token(1).user_pin.failures == 1


def test_init_token_wipes_objects_and_pins_atomically(store: Store, token_key: bytes,
                                                       db_url: str) -> None:
    other = make_token(2, token_key)
    store.init_token(other)
    for i in range(5):
        store.add_object(1, sample_object(f"u{i}", i))
    kept = store.add_object(2, sample_object("other"))
    store.reserve_login(1, CKU_SO)
    store.init_token(TokenRecord(1, b"fresh".ljust(32), "fedcba9876543210",
                                 so_pin=make_pin_record(b"new-so", token_key, cost="test")))
    assert store.objects(1) == []
    assert [o.oid for o in store.objects(2)] == [kept]
    tok = store.token(1)
    assert tok.serial == "fedcba9876543210" and tok.user_pin is None and tok.so_pin.failures == 0
    assert query(db_url, "SELECT count(*) FROM attributes WHERE object_id NOT IN "  # no orphan rows
                         "(SELECT id FROM objects)") == [(0,)]


def test_init_token_failure_leaves_old_token(store: Store, token_key: bytes) -> None:
    """Atomic: when the new record cannot be written, objects and token are untouched."""
    oid = store.add_object(1, sample_object("u1"))
    bad = make_token(1, token_key)
    bad.meta = {"not json": object()}
    with pytest.raises((StatementError, TypeError)):  # meta is not JSON: fails after the deletes
        store.init_token(bad)
    assert [o.oid for o in store.objects(1)] == [oid]
    assert store.token(1).serial == "0123456789abcdef"


# -- objects ---------------------------------------------------------------------------------


def test_object_round_trip(store: Store) -> None:
    rec = ObjectRecord(None, "uid-1", {0: b"\x03" + bytes(7), 0x102: b"id"}, {0x11: b"ct"})
    oid = store.add_object(1, rec)
    assert rec.oid == oid
    (got,) = store.objects(1)
    assert got == ObjectRecord(oid, "uid-1", {0: b"\x03" + bytes(7), 0x102: b"id"},
                               {0x11: b"ct"})


def test_object_without_attributes(store: Store) -> None:
    oid = store.add_object(1, ObjectRecord(None, "bare"))
    assert store.objects(1) == [ObjectRecord(oid, "bare", {}, {})]


def test_objects_keep_creation_order_and_slot(store: Store, token_key: bytes) -> None:
    store.init_token(make_token(2, token_key))
    a = store.add_object(1, sample_object("a"))
    store.add_object(2, sample_object("b"))
    c = store.add_object(1, sample_object("c"))
    assert [o.oid for o in store.objects(1)] == [a, c]


def test_update_object_replaces_all_attributes(store: Store) -> None:
    oid = store.add_object(1, sample_object("u1"))
    assert store.update_object(1, oid, {3: b"new label"}, {0x11: b"new ct", 0x120: b"x"})
    assert store.objects(1) == [ObjectRecord(oid, "u1", {3: b"new label"},
                                             {0x11: b"new ct", 0x120: b"x"})]
    assert not store.update_object(2, oid, {}, {})  # wrong slot: not its object
    assert not store.update_object(1, oid + 100, {}, {})


def test_delete_object(store: Store) -> None:
    a = store.add_object(1, sample_object("a"))
    b = store.add_object(1, sample_object("b"))
    assert not store.delete_object(2, a)
    assert store.delete_object(1, a)
    assert not store.delete_object(1, a)
    assert [o.oid for o in store.objects(1)] == [b]


def test_oids_are_never_reused(store: Store) -> None:
    a = store.add_object(1, sample_object("a"))
    store.delete_object(1, a)
    assert store.add_object(1, sample_object("b")) > a


def test_clear_and_sealed_must_not_overlap(store: Store) -> None:
    with pytest.raises(ValueError):
        store.add_object(1, ObjectRecord(None, "x", {1: b"a"}, {1: b"b"}))


def test_unique_id_is_unique_per_token(store: Store, token_key: bytes) -> None:
    store.init_token(make_token(2, token_key))
    store.add_object(1, sample_object("same"))
    store.add_object(2, sample_object("same"))
    with pytest.raises(IntegrityError):  # a core bug, not a device condition: propagates
        store.add_object(1, sample_object("same"))
    assert len(store.objects(1)) == 1


# -- transactions and change detection ---------------------------------------------------------


@SQLITE_ONLY
def test_writes_begin_immediate_reads_deferred(store: Store) -> None:
    """Seen at the driver (SQLite's trace hook), so it holds for the Core statements and for
    the fixed SQL of `sqlite_ops` alike."""
    seen: list[str] = []

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_conn, _record) -> None:
        dbapi_conn.set_trace_callback(lambda stmt: seen.append(" ".join(stmt.split()[:2])))

    store.engine.dispose()  # new connections get the trace hook
    oid = store.add_object(1, sample_object("u1"))
    assert seen[0] == "BEGIN IMMEDIATE" and seen[1].startswith("INSERT")
    assert "COMMIT" in seen
    seen.clear()
    store.delete_object(1, oid)
    assert seen[0] == "BEGIN IMMEDIATE" and any(s.startswith("DELETE") for s in seen)
    seen.clear()
    store.objects(1)
    assert seen[0] == "BEGIN DEFERRED" and seen[1].startswith("SELECT")


def test_object_writes_bump_the_generation_once(store: Store) -> None:
    before = store.generation()
    oid = store.add_object(1, sample_object("g"))
    assert store.generation() == before + 1 == store.write_generation()
    assert store.update_object(1, oid, {3: b"new"}, {}) is True
    assert store.delete_object(1, oid) is True
    assert store.generation() == before + 3 == store.write_generation()
    assert store.delete_object(1, oid) is False  # already gone: still one transaction
    assert store.update_object(1, oid, {3: b"x"}, {}) is False
    assert store.generation() == before + 5


def test_object_of_another_slot_is_not_touched(store: Store, token_key: bytes) -> None:
    store.init_token(make_token(2, token_key))
    oid = store.add_object(1, sample_object("mine"))
    assert store.delete_object(2, oid) is False
    assert store.update_object(2, oid, {3: b"x"}, {}) is False
    [rec] = store.objects(1)
    assert rec.oid == oid and rec.attrs == sample_object("mine").attrs


@SQLITE_ONLY
def test_write_waits_for_another_writer(store: Store, db_url: str) -> None:
    """A held write lock is waited out (busy timeout), never 'database is locked'."""
    raw = sqlite3.connect(db_path(db_url), isolation_level=None, check_same_thread=False)
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("INSERT INTO objects (slot_id, unique_id) VALUES (1, 'raw')")
    threading.Timer(1.0, lambda: raw.execute("COMMIT")).start()
    t0 = time.monotonic()
    assert [o.unique_id for o in store.objects(1)] == []  # reads are not blocked
    assert time.monotonic() - t0 < 0.5
    store.add_object(1, sample_object("mine"))
    assert time.monotonic() - t0 >= 0.9
    assert [o.unique_id for o in store.objects(1)] == ["raw", "mine"]
    raw.close()


@SQLITE_ONLY
def test_lock_held_past_busy_timeout_is_retried(store: Store, db_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoki_shim.store import sqlite as store_sqlite

    monkeypatch.setattr(store_sqlite, "BUSY_TIMEOUT_S", 0.05)
    store.engine.dispose()  # new connections with the short busy timeout
    raw = sqlite3.connect(db_path(db_url), isolation_level=None, check_same_thread=False)
    raw.execute("BEGIN IMMEDIATE")
    threading.Timer(1.0, lambda: raw.execute("COMMIT")).start()
    t0 = time.monotonic()
    store.add_object(1, sample_object("after the wait"))
    assert time.monotonic() - t0 >= 0.9
    assert len(store.objects(1)) == 1
    raw.close()


@SQLITE_ONLY
def test_lock_never_released_is_device_error(store: Store, db_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoki_shim.store import sqlite as store_sqlite
    from cryptoki_shim.store import store as store_module

    monkeypatch.setattr(store_sqlite, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store_module, "RETRY_FOR_S", 0.3)
    store.engine.dispose()
    raw = sqlite3.connect(db_path(db_url), isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.monotonic()
        with pytest.raises(CryptokiError) as exc:
            store.add_object(1, sample_object("never"))
        assert time.monotonic() - t0 < 3  # the short busy timeout applied: retries did the wait
        assert exc.value.ckr == spec.CKR_DEVICE_ERROR
        assert "database is locked" not in str(exc.value)
        assert exc.value.__cause__ is None and exc.value.__suppress_context__
    finally:
        raw.execute("ROLLBACK")
        raw.close()
    assert store.objects(1) == []


def test_threads_share_one_store(store: Store) -> None:
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                store.add_object(1, sample_object(f"{t}-{i}", i))
                store.data_version()
                store.objects(1) if i % 10 == 0 else None
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.objects(1)) == 200


def test_data_version_stable_without_changes(store: Store) -> None:
    v = store.data_version()
    store.objects(1)
    store.token(1)
    assert store.data_version() == v == store.data_version()


def test_data_version_changes_after_own_commit(store: Store) -> None:
    v = store.data_version()
    store.add_object(1, sample_object("u1"))
    v2 = store.data_version()
    assert v2 != v
    store.reserve_login(1, CKU_USER)
    assert store.data_version() not in (v, v2)


def test_data_version_changes_after_other_connection_commit(store: Store, db_url: str) -> None:
    """On PostgreSQL the other store's commit arrives as a notification (store/pg.py), sent
    by the server right after the commit: seen within a second (in practice well under a
    millisecond), never missed."""
    v = store.data_version()
    with Store(db_url) as other:
        other.add_object(1, sample_object("elsewhere"))
    deadline = time.monotonic() + (1.0 if db_url.startswith("postgresql") else 0.0)
    while store.data_version() == v and time.monotonic() < deadline:
        time.sleep(0.001)
    assert store.data_version() != v


def test_generation_counts_write_transactions(store: Store) -> None:
    """The change signal used for databases without PRAGMA data_version."""
    g = store._generation()
    store.add_object(1, sample_object("u1"))
    store.reserve_login(1, CKU_USER)
    assert store._generation() == g + 2


def test_memory_store(token_key: bytes) -> None:
    with Store("sqlite://") as s:
        s.init_token(make_token(1, token_key))
        v = s.data_version()
        oid = s.add_object(1, sample_object("m"))
        assert s.data_version() != v
        assert [o.oid for o in s.objects(1)] == [oid]


# -- fork ------------------------------------------------------------------------------------


@pytest.mark.parametrize("explicit", [True, False], ids=["after_fork", "pid-check"])
def test_forked_child_gets_its_own_connections(store: Store, explicit: bool) -> None:
    """The child drops inherited connections (unclosed); the parent's keep working.

    Without an explicit after_fork() the store notices the new pid itself.
    """
    store.add_object(1, sample_object("before"))
    v = store.data_version()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            if explicit:
                store.after_fork()
            store.add_object(1, sample_object("child"))
            code = 0 if len(store.objects(1)) == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert store.data_version() != v
    assert [o.unique_id for o in store.objects(1)] == ["before", "child"]
    store.add_object(1, sample_object("parent"))
    assert len(store.objects(1)) == 3


def test_timings(store: Store, backend: str) -> None:
    """Rough costs (printed with -s); bounds are ~10x what this machine measures.

    data_version() runs before object lookups on the operation path, so it must stay in
    the microseconds; add_object is one short write transaction.
    """
    n = 5000
    t0 = time.perf_counter()
    exact = backend != "pg"  # on PostgreSQL the operation path's check (LISTEN, no SQL)
    for _ in range(n):
        store.data_version(exact)
    dv_us = (time.perf_counter() - t0) / n * 1e6
    m = 200
    t0 = time.perf_counter()
    for i in range(m):
        store.add_object(1, sample_object(f"t{i}", i))
    add_ms = (time.perf_counter() - t0) / m * 1e3
    t0 = time.perf_counter()
    assert len(store.objects(1)) == m
    list_ms = (time.perf_counter() - t0) * 1e3
    print(f"\ndata_version {dv_us:.1f} us; add_object {add_ms:.2f} ms; "
          f"objects() of {m}: {list_ms:.1f} ms")
    assert dv_us < 50
    assert add_ms < 10
