"""The store's one write API on both statement sets (issue 16 item 4).

Every fixture here runs twice (``fast_path`` in conftest.py): with SQLite's fixed SQL
(``sqlite_ops``) and with SQLAlchemy Core (``core_ops``, the statements PostgreSQL runs),
both against real SQLite files. A spy proves which set ran: the other one raises.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy.exc import IntegrityError
from store_helpers import make_token, sample_object

from cryptoki_shim import spec
from cryptoki_shim.store import CKU_SO, CKU_USER, ObjectRecord, Store, key_file, make_pin_record, open_pin_record
from cryptoki_shim.store import core_ops, sqlite_ops
from p11 import USER_PIN

HOT = ("add_object", "replace_attributes", "delete_object", "read_generation")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, fast_path: bool) -> collections.Counter[str]:
    """Calls of each hot statement function of the set in use; the other set's raise."""
    used, other = (sqlite_ops, core_ops) if fast_path else (core_ops, sqlite_ops)
    calls: collections.Counter[str] = collections.Counter()

    def counted(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            calls[name] += 1
            return real(*args)
        return call

    def forbidden(name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            raise AssertionError(f"{other.__name__}.{name} ran on a store with fast_path={fast_path}")
        return call

    for name in HOT:
        monkeypatch.setattr(used, name, counted(name, getattr(used, name)))
        monkeypatch.setattr(other, name, forbidden(name))
    return calls


def test_object_writes_run_on_one_statement_set(store: Store, spy: collections.Counter[str], backend: str) -> None:
    before = store.generation()
    oid = store.add_object(1, sample_object("a"))
    assert store.update_object(1, oid, {3: b"new"}, {0x11: b"s"}) is True
    [rec] = store.objects(1)
    assert (rec.attrs, rec.sealed) == ({3: b"new"}, {0x11: b"s"})
    assert store.delete_object(1, oid) is True
    assert store.delete_object(1, oid) is False
    assert store.update_object(1, oid, {}, {}) is False
    assert store.objects(1) == []
    assert store.generation() == before + 5
    # PostgreSQL reads the generation on its change listener's connection (store/pg.py)
    reads = {} if backend == "pg" else {"read_generation": 2}
    assert spy == {"add_object": 1, "replace_attributes": 2, "delete_object": 2, **reads}


def test_object_with_no_attribute_rows(store: Store, spy: collections.Counter[str]) -> None:
    oid = store.add_object(1, ObjectRecord(None, "bare"))
    assert store.update_object(1, oid, {}, {}) is True
    assert [(o.oid, o.attrs, o.sealed) for o in store.objects(1)] == [(oid, {}, {})]


def test_replace_token_swaps_token_pins_and_objects_at_once(store: Store, token_key: bytes) -> None:
    """`cryptoki-shim restore`'s write: the old objects go, the new ones arrive with new
    oids, PIN records keep their failure counts."""
    old = store.add_object(1, sample_object("old"))
    rec = make_token(1, token_key, serial="fedcba9876543210")
    rec.user_pin.failures = 2
    objs = [sample_object("n1", 1), sample_object("n2", 2), ObjectRecord(None, "n3")]
    store.replace_token(rec, objs)
    assert all(o.oid is not None and o.oid > old for o in objs)
    got = store.objects(1)
    assert [(o.oid, o.unique_id, o.attrs, o.sealed) for o in got] == \
        [(o.oid, o.unique_id, o.attrs, o.sealed) for o in objs]
    back = store.token(1)
    assert back.serial == "fedcba9876543210" and back.user_pin.failures == 2
    assert open_pin_record(USER_PIN, back.user_pin) == token_key


def test_replace_token_failure_writes_nothing(store: Store, token_key: bytes) -> None:
    store.add_object(1, sample_object("kept"))
    serial = store.token(1).serial
    with pytest.raises(IntegrityError):
        store.replace_token(make_token(1, token_key, serial="0000000000000000"),
                            [sample_object("twin"), sample_object("twin")])
    assert store.token(1).serial == serial
    assert [o.unique_id for o in store.objects(1)] == ["kept"]


def test_replace_pin_only_while_the_record_is_unchanged(store: Store, token_key: bytes) -> None:
    """Issue 15 (TPM pin_binding): a new outer layer replaces the record just opened, never
    one a C_SetPIN wrote meanwhile; the failure count stays."""
    stored = store.token(1).user_pin
    store.reserve_login(1, CKU_USER)
    new = make_pin_record(USER_PIN, token_key, cost="test")
    assert store.replace_pin(1, CKU_USER, b"not the stored record", new) is False
    assert store.replace_pin(1, CKU_USER, stored.wrapped_key, new) is True
    after = store.token(1).user_pin
    assert after.wrapped_key == new.wrapped_key and after.failures == 1
    assert store.replace_pin(1, CKU_USER, stored.wrapped_key, new) is False


def test_login_reservation_against_a_replaced_record(store: Store) -> None:
    """reserve_login with the record the caller is about to try: KeyError once the stored
    record is another (C_SetPIN elsewhere); login_succeeded then settles nothing."""
    stored = store.token(1).so_pin
    assert store.reserve_login(1, CKU_SO, limit=3, wrapped_key=stored.wrapped_key) == 1
    store.login_succeeded(1, CKU_SO, 1, b"another record")
    assert store.token(1).so_pin.failures == 1
    store.login_succeeded(1, CKU_SO, 1, stored.wrapped_key)
    assert store.token(1).so_pin.failures == 0
    with pytest.raises(KeyError):
        store.reserve_login(1, CKU_SO, limit=3, wrapped_key=b"another record")


def test_key_file_seals_pin_records_written_by_every_write(db_url: str, tmp_path: Path, token_key: bytes,
                                                           fast_path: bool) -> None:
    path = str(tmp_path / "store.key")
    key_file.create(path)
    with Store(db_url, key_file=path, fast_path=fast_path) as s:
        s.init_token(make_token(1, token_key))
        s.update_token(1, user_pin=make_pin_record(b"5678", token_key, cost="test"))
        s.replace_token(make_token(2, token_key), [sample_object("r")])
        for slot, user, pin in ((1, CKU_SO, b"so-pin"), (1, CKU_USER, b"5678"), (2, CKU_USER, USER_PIN)):
            rec = s.token(slot).pin(user)
            assert key_file.PARAM in rec.params
            with pytest.raises(Exception):
                open_pin_record(pin, rec)
            assert open_pin_record(pin, s.unbind_pin(rec)) == token_key


def test_library_runs_on_the_configured_statement_set(token: Any, user_session: int,
                                                      spy: collections.Counter[str]) -> None:
    """Through the built library: ``[store] sqlite_fast_path = false`` sends every object
    write of C_CreateObject, C_GenerateKeyPair, C_SetAttributeValue, C_DestroyObject and
    C_InitToken through Core; the default through ``sqlite_ops``."""
    s = user_session
    h = token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"note",
                         spec.CKA_VALUE: b"hello", spec.CKA_PRIVATE: True})
    token.set(s, h, {spec.CKA_LABEL: b"renamed"})
    pub, priv = token.generate_key_pair(
        s, spec.CKM_EC_KEY_PAIR_GEN,
        {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), spec.CKA_VERIFY: True},
        {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True})
    sig = token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"message")
    token.verify(s, spec.CKM_ECDSA_SHA256, pub, b"message", sig)
    assert token.find(s, {spec.CKA_LABEL: b"renamed"}) == [h]
    assert token.get(s, h, spec.CKA_VALUE) == b"hello"
    token.destroy(s, h)
    assert token.find(s, {spec.CKA_LABEL: b"renamed"}) == []
    assert spy["add_object"] == 3 and spy["replace_attributes"] >= 1 and spy["delete_object"] == 1
    token.close(s)
    token.init_token(0, b"12345678", "again")  # every object goes in one write
    s = token.open(0)
    assert token.find(s, {}) == [] or all(token.get(s, o, spec.CKA_CLASS) == spec.CKO_PROFILE
                                          for o in token.find(s, {}))


def test_every_core_statement_compiles_for_postgresql(db_url: str, token_key: bytes, tmp_path: Path) -> None:
    """Every statement the Core set executes while each write of the API runs (what a
    PostgreSQL store will send) compiles for PostgreSQL's dialect, RETURNING included."""
    from sqlalchemy import event
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.sql import ClauseElement

    path = str(tmp_path / "store.key")
    key_file.create(path)
    seen: list[ClauseElement] = []
    with Store(db_url, fast_path=False, key_file=path) as s:
        event.listen(s.engine, "before_execute", lambda conn, stmt, *a: seen.append(stmt))
        s.init_token(make_token(1, token_key))
        oid = s.add_object(1, sample_object("a"))
        s.update_object(1, oid, {3: b"x"}, {})
        s.delete_object(1, oid)
        s.update_token(1, label=b"new".ljust(32), user_pin=make_pin_record(b"5678", token_key, cost="test"))
        stored = s.token(1).user_pin
        count = s.reserve_login(1, CKU_USER, limit=3, wrapped_key=stored.wrapped_key)
        s.login_succeeded(1, CKU_USER, count, stored.wrapped_key)
        s.replace_pin(1, CKU_USER, stored.wrapped_key, make_pin_record(b"5678", token_key, cost="test"))
        s.replace_token(make_token(1, token_key), [sample_object("r")])
        s.objects(1)
        s.generation()
    compiled = [str(stmt.compile(dialect=postgresql.dialect())) for stmt in seen if isinstance(stmt, ClauseElement)]
    verbs = {sql.split()[0] for sql in compiled}
    assert verbs == {"SELECT", "INSERT", "UPDATE", "DELETE"}, verbs
    assert any("RETURNING pins.failures" in sql for sql in compiled)  # reserve_login's one UPDATE


def test_fast_path_schema_is_what_create_all_emits(tmp_path: Path) -> None:
    """A new store's schema on the fast path (`sqlite_ops.CREATE_SCHEMA`) is exactly what
    `schema.metadata.create_all` emits on SQLite, and both stores end up alike."""
    import sqlite3

    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.schema import CreateIndex, CreateTable

    from cryptoki_shim.store import schema

    dialect = sqlite_dialect.dialect()
    expected = tuple(
        (t.name, (str(CreateTable(t).compile(dialect=dialect)).strip(),
                  *(str(CreateIndex(i).compile(dialect=dialect)).strip()
                    for i in sorted(t.indexes, key=lambda i: str(i.name)))))
        for t in schema.metadata.sorted_tables)
    assert sqlite_ops.CREATE_SCHEMA == expected
    dumps = []
    for fast in (True, False):
        path = tmp_path / f"{fast}.db"
        Store(f"sqlite:///{path}", fast_path=fast).close()
        with sqlite3.connect(path) as raw:
            dumps.append((raw.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall(),
                          raw.execute("SELECT * FROM schema_version").fetchall(),
                          raw.execute("SELECT * FROM generation").fetchall()))
    assert dumps[0] == dumps[1]


def test_fast_path_store_never_imports_sqlalchemy(tmp_path: Path, token_key: bytes) -> None:
    """Creating a store, its token, PIN changes, the login counter, objects and reads on the
    fast path: no SQLAlchemy in a fresh interpreter (issue 25 item 7)."""
    import json
    import subprocess
    import sys

    code = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from store_helpers import make_token, sample_object
from cryptoki_shim.store import CKU_USER, Store, new_token_key
s = Store({f"sqlite:///{tmp_path / 'new.db'}"!r})
s.init_token(make_token(1, new_token_key()))
s.update_token(1, label=b"x".ljust(32))
oid = s.add_object(1, sample_object("a"))
s.update_object(1, oid, {{3: b"y"}}, {{}})
pin = s.token(1).user_pin
n = s.reserve_login(1, CKU_USER, limit=3, wrapped_key=pin.wrapped_key)
s.login_succeeded(1, CKU_USER, n, pin.wrapped_key)
s.objects(1); s.data_version(); s.generation(); s.scrub()
s.delete_object(1, oid)
s.close()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == []
