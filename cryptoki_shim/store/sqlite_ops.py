"""The store's hot statements on SQLite, as fixed SQL run on the driver connection.

Creating or destroying a token object is one short write transaction; through SQLAlchemy
Core each statement costs ~100 µs of compilation-cache lookup, parameter processing and
event dispatch, about five times what SQLite itself needs (measured: `add_object` +
`delete_object` 1.65 ms through Core, 0.31 ms here). So `Store` runs exactly these
statements as constant SQL strings (the driver keeps them prepared in its statement cache).
`core_ops` has the same four functions in SQLAlchemy Core (what every other database runs,
and a SQLite store opened with `fast_path=False`); `Store` picks one set when it opens.

The rest of what a fast-path store does is here too, so that such a store never imports
SQLAlchemy (issue 25 item 7: its import was ~130 ms of a ~345 ms process): the schema
version and a new store's schema, the token and its PIN records, the objects, the login
counter (`reserve_login`, `login_succeeded`), `replace_pin`, the token writes and the key
file's sealing of PIN records; `core_ops` has their Core twins, run on every other
database. Only upgrades of an older schema stay on Core. The connections come from
`sqlite.Pool` (same `connect`, same pragmas) until the store makes an engine (an upgrade, or
the `engine` property of tools and tests), then from the engine's pool, so its `connect`
events, `dispose()` and fork handling apply. JSON columns are written as SQLAlchemy's JSON
type writes them on SQLite (`json.dumps`).

The transaction discipline is the one of `Store._run`: writes `BEGIN IMMEDIATE` and bump
the generation row in the same transaction; driver errors roll back and propagate as the
driver raised them; `Store` classifies them (`failures.classify_sqlite`: retry, CKR_*, or
re-raised as SQLAlchemy's `DBAPIError` family, as on the Core path).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any, Callable, Iterable, TypeVar

from . import sqlite, versions
from .records import PinRecord, TokenRecord

T = TypeVar("T")

_schema_log = logging.getLogger(__package__ + ".schema")  # the log line schema.upgrade writes

BUMP_GENERATION = "UPDATE generation SET value = value + 1 RETURNING value"
READ_GENERATION = "SELECT value FROM generation"
INSERT_OBJECT = "INSERT INTO objects (slot_id, unique_id) VALUES (?, ?)"
INSERT_ATTRIBUTE = "INSERT INTO attributes (object_id, type, value, is_sealed) VALUES (?, ?, ?, ?)"
OWNED = "SELECT 1 FROM objects WHERE id = ? AND slot_id = ?"
DELETE_ATTRIBUTES = "DELETE FROM attributes WHERE object_id = ?"
DELETE_OWNED_ATTRIBUTES = ("DELETE FROM attributes WHERE object_id = "
                           "(SELECT id FROM objects WHERE id = ? AND slot_id = ?)")
DELETE_OWNED_OBJECT = "DELETE FROM objects WHERE id = ? AND slot_id = ?"


#: A driver connection checked out, and the function that returns it.
Checkout = Callable[[], "tuple[sqlite3.Connection, Callable[[], None]]"]


def transaction(checkout: Checkout, fn: Callable[[sqlite3.Connection], T], write: bool,
                snapshot: bool = False) -> tuple[T, int | None]:
    """Run ``fn(driver_connection)`` in one transaction; (its result, generation written).

    A read is a single statement in autocommit (its own snapshot), or with `snapshot` a
    ``BEGIN DEFERRED`` .. ``COMMIT`` (several statements, one snapshot); a write is
    ``BEGIN IMMEDIATE`` .. generation bump .. ``COMMIT``. Any error rolls back and
    propagates.
    """
    with sqlite.FORK_GUARD:
        conn, checkin = checkout()
        try:
            try:
                if not write:
                    if not snapshot:
                        return fn(conn), None
                    conn.execute("BEGIN DEFERRED")
                    result = fn(conn)
                    conn.execute("COMMIT")
                    return result, None
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                written = conn.execute(BUMP_GENERATION).fetchone()[0]
                conn.execute("COMMIT")
                return result, int(written)
            except BaseException:
                _rollback(conn)
                raise
        finally:
            checkin()


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the pool's reset on return rolls back again; nothing more to do here


def read_generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute(READ_GENERATION).fetchone()[0])


def add_object(conn: sqlite3.Connection, slot_id: int, unique_id: str,
               rows: Iterable[tuple[int, bytes, int]]) -> int:
    """INSERT the object row and all its attribute rows (one executemany); its oid."""
    oid = conn.execute(INSERT_OBJECT, (slot_id, unique_id)).lastrowid
    conn.executemany(INSERT_ATTRIBUTE, [(oid, t, v, s) for t, v, s in rows])
    return int(oid)  # type: ignore[arg-type]


def replace_attributes(conn: sqlite3.Connection, slot_id: int, oid: int,
                       rows: Iterable[tuple[int, bytes, int]]) -> bool:
    if conn.execute(OWNED, (oid, slot_id)).fetchone() is None:
        return False
    conn.execute(DELETE_ATTRIBUTES, (oid,))
    conn.executemany(INSERT_ATTRIBUTE, [(oid, t, v, s) for t, v, s in rows])
    return True


def delete_object(conn: sqlite3.Connection, slot_id: int, oid: int) -> bool:
    """Attribute rows first, then the object (explicitly: no reliance on ON DELETE); both
    only if the object is the slot's, so no separate ownership query."""
    conn.execute(DELETE_OWNED_ATTRIBUTES, (oid, slot_id))
    return conn.execute(DELETE_OWNED_OBJECT, (oid, slot_id)).rowcount == 1



# -- the way to the first signature (`core_ops` has the twins) ---------------------

HAS_SCHEMA_VERSION = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
READ_SCHEMA_VERSION = "SELECT version FROM schema_version"
READ_TOKEN = "SELECT slot_id, label, serial, created_at, meta FROM tokens WHERE slot_id = ?"
READ_PINS = "SELECT user_type, kdf, params, wrapped_key, failures FROM pins WHERE slot_id = ?"
READ_OBJECTS = ("SELECT objects.id, objects.unique_id, attributes.type, attributes.value, attributes.is_sealed "
                "FROM objects LEFT OUTER JOIN attributes ON attributes.object_id = objects.id "
                "WHERE objects.slot_id = ? ORDER BY objects.id")
READ_ALL_PINS = "SELECT slot_id, user_type, params, wrapped_key FROM pins"
SEAL_PIN = "UPDATE pins SET params = ?, wrapped_key = ? WHERE slot_id = ? AND user_type = ?"
REPLACE_PIN = ("UPDATE pins SET kdf = ?, params = ?, wrapped_key = ? "
               "WHERE slot_id = ? AND user_type = ? AND wrapped_key = ?")
_PIN = "slot_id = ? AND user_type = ?"


def _json(value: Any) -> str:
    """What SQLAlchemy's JSON type binds on SQLite; a value that is not JSON fails as it
    does there (a caller bug: SQLAlchemy's `StatementError`, imported only then)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        from sqlalchemy.exc import StatementError

        raise StatementError(f"({type(exc).__module__}.{type(exc).__name__}) {exc}", None, None, exc) from exc


def stored_version(conn: sqlite3.Connection) -> int:
    """`schema.stored_version`: the recorded version, 0 for an empty database."""
    if conn.execute(HAS_SCHEMA_VERSION).fetchone() is None:
        return 0
    row = conn.execute(READ_SCHEMA_VERSION).fetchone()
    return int((row[0] if row is not None else 0) or 0)


def read_token(conn: sqlite3.Connection, slot_id: int) -> tuple[tuple[Any, ...], dict[int, PinRecord]] | None:
    """The token row (slot_id, label, serial, created_at, meta) and its PIN records by user type."""
    row = conn.execute(READ_TOKEN, (slot_id,)).fetchone()
    if row is None:
        return None
    pins = {user_type: PinRecord(kdf=kdf, params=dict(json.loads(params)), wrapped_key=bytes(wrapped),
                                 failures=failures)
            for user_type, kdf, params, wrapped, failures in conn.execute(READ_PINS, (slot_id,)).fetchall()}
    slot, label, serial, created_at, meta = row
    return (slot, label, serial, created_at, json.loads(meta)), pins


def read_objects(conn: sqlite3.Connection, slot_id: int) -> list[tuple[Any, ...]]:
    """(oid, unique_id, type, value, is_sealed) rows of the slot's objects, in creation order."""
    return conn.execute(READ_OBJECTS, (slot_id,)).fetchall()


def pin_params(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The params of every PIN record."""
    return [json.loads(p) for (_s, _u, p, _w) in conn.execute(READ_ALL_PINS).fetchall()]


def seal_pins(conn: sqlite3.Connection, wrap: Callable[[PinRecord], PinRecord], sealed: str) -> int:
    """Every PIN record whose params lack `sealed` replaced by ``wrap(record)``; how many."""
    n = 0
    for slot_id, user_type, params, wrapped in conn.execute(READ_ALL_PINS).fetchall():
        params = json.loads(params)
        if sealed in params:
            continue
        rec = wrap(PinRecord(kdf="", params=dict(params), wrapped_key=bytes(wrapped)))
        conn.execute(SEAL_PIN, (_json(rec.params), rec.wrapped_key, slot_id, user_type))
        n += 1
    return n


def replace_pin(conn: sqlite3.Connection, slot_id: int, user_type: int, expected: bytes, rec: PinRecord) -> bool:
    return conn.execute(REPLACE_PIN, (rec.kdf, _json(rec.params), rec.wrapped_key,
                                      slot_id, user_type, expected)).rowcount == 1


def reserve_login(conn: sqlite3.Connection, slot_id: int, user_type: int, limit: int | None,
                  wrapped_key: bytes | None) -> int | None:
    """`Store.reserve_login`'s one conditional UPDATE (the write lock makes it atomic)."""
    where, args = _PIN, list[Any]([slot_id, user_type])
    if wrapped_key is not None:
        where, args = where + " AND wrapped_key = ?", args + [wrapped_key]
    cond, cond_args = (where, args) if limit is None else (where + " AND failures < ?", args + [limit])
    rows = conn.execute(f"UPDATE pins SET failures = failures + 1 WHERE {cond} RETURNING failures",
                        cond_args).fetchall()
    if rows:
        return int(rows[0][0])
    if conn.execute(f"SELECT failures FROM pins WHERE {where}", args).fetchone() is None:
        raise KeyError(f"no such PIN record of user type {user_type} in slot {slot_id}")
    return None


def login_succeeded(conn: sqlite3.Connection, slot_id: int, user_type: int, reserved: int | None,
                    wrapped_key: bytes | None) -> None:
    where, args = _PIN + " AND failures != 0", list[Any]([slot_id, user_type])
    if wrapped_key is not None:
        where, args = where + " AND wrapped_key = ?", args + [wrapped_key]
    if reserved is None:
        conn.execute(f"UPDATE pins SET failures = 0 WHERE {where}", args)
    else:
        conn.execute(f"UPDATE pins SET failures = CASE WHEN failures > ? THEN failures - ? ELSE 0 END WHERE {where}",
                     [reserved, reserved, *args])


# -- token writes (C_InitToken, C_InitPIN/C_SetPIN, restore): `core_ops` has the twins

INSERT_TOKEN = "INSERT INTO tokens (slot_id, label, serial, created_at, meta) VALUES (?, ?, ?, ?, ?)"
INSERT_PIN = "INSERT INTO pins (slot_id, user_type, kdf, params, wrapped_key, failures) VALUES (?, ?, ?, ?, ?, ?)"
DELETE_PIN = "DELETE FROM pins WHERE slot_id = ? AND user_type = ?"
_SLOT_OBJECTS = "SELECT id FROM objects WHERE slot_id = ?"
DELETE_SLOT = (f"DELETE FROM attributes WHERE object_id IN ({_SLOT_OBJECTS})",
               f"DELETE FROM objects WHERE id IN ({_SLOT_OBJECTS})",
               "DELETE FROM pins WHERE slot_id = ?",
               "DELETE FROM tokens WHERE slot_id = ?")
_TOKEN_COLUMNS = ("label", "serial", "meta")


def insert_pin(conn: sqlite3.Connection, slot_id: int, user_type: int, pin: PinRecord) -> None:
    conn.execute(INSERT_PIN, (slot_id, user_type, pin.kdf, _json(pin.params), pin.wrapped_key, pin.failures))


def replace_token(conn: sqlite3.Connection, rec: TokenRecord, pins: dict[int, PinRecord],
                  objs: list[tuple[Any, list[tuple[int, bytes, int]]]]) -> None:
    """`Store.replace_token`'s write: the slot's objects, PIN records and token deleted, the
    new ones inserted (each object's `oid` set)."""
    for statement in DELETE_SLOT:
        conn.execute(statement, (rec.slot_id,))
    conn.execute(INSERT_TOKEN, (rec.slot_id, rec.label, rec.serial, rec.created_at, _json(rec.meta)))
    for user_type, pin in pins.items():
        insert_pin(conn, rec.slot_id, user_type, pin)
    for o, rows in objs:
        o.oid = add_object(conn, rec.slot_id, o.unique_id, rows)


def update_token(conn: sqlite3.Connection, slot_id: int, columns: dict[str, Any],
                 pins: dict[int, PinRecord | None]) -> None:
    """`Store.update_token`'s write: `columns` (label, serial, meta) set, each PIN record of
    `pins` replaced (None: removed). KeyError if the slot has no token."""
    if not columns.keys() <= set(_TOKEN_COLUMNS):
        raise TypeError(f"update_token: unknown columns {sorted(columns.keys() - set(_TOKEN_COLUMNS))}")
    cols = columns or {"slot_id": slot_id}
    sets = ", ".join(f"{name} = ?" for name in cols)
    values = [_json(v) if name == "meta" else v for name, v in cols.items()]
    if conn.execute(f"UPDATE tokens SET {sets} WHERE slot_id = ?", [*values, slot_id]).rowcount == 0:
        raise KeyError(f"no token in slot {slot_id}")
    for user_type, pin in pins.items():
        conn.execute(DELETE_PIN, (slot_id, user_type))
        if pin is not None:
            insert_pin(conn, slot_id, user_type, pin)


# -- a new store's schema (an older one is upgraded by `schema.upgrade`, on Core) -------------

#: (table, its CREATE TABLE and CREATE INDEX statements) in dependency order: exactly what
#: `schema.metadata.create_all` emits on SQLite (tests/store/test_store_paths.py compares).
CREATE_SCHEMA: tuple[tuple[str, tuple[str, ...]], ...] = (
    ('generation', (
        'CREATE TABLE generation (\n'
        '\tid INTEGER NOT NULL, \n'
        '\tvalue BIGINT NOT NULL, \n'
        '\tPRIMARY KEY (id)\n'
        ')',
    )),
    ('schema_version', (
        'CREATE TABLE schema_version (\n'
        '\tid INTEGER NOT NULL, \n'
        '\tversion INTEGER NOT NULL, \n'
        '\tPRIMARY KEY (id)\n'
        ')',
    )),
    ('tokens', (
        'CREATE TABLE tokens (\n'
        '\tslot_id BIGINT NOT NULL, \n'
        '\tlabel BLOB NOT NULL, \n'
        '\tserial VARCHAR(16) NOT NULL, \n'
        '\tcreated_at BIGINT NOT NULL, \n'
        '\tmeta JSON NOT NULL, \n'
        '\tPRIMARY KEY (slot_id)\n'
        ')',
    )),
    ('objects', (
        'CREATE TABLE objects (\n'
        '\tid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \n'
        '\tslot_id BIGINT NOT NULL, \n'
        '\tunique_id VARCHAR(64) NOT NULL, \n'
        '\tCONSTRAINT uq_objects_slot_unique_id UNIQUE (slot_id, unique_id), \n'
        '\tFOREIGN KEY(slot_id) REFERENCES tokens (slot_id)\n'
        ')',
    )),
    ('pins', (
        'CREATE TABLE pins (\n'
        '\tslot_id BIGINT NOT NULL, \n'
        '\tuser_type INTEGER NOT NULL, \n'
        '\tkdf VARCHAR(16) NOT NULL, \n'
        '\tparams JSON NOT NULL, \n'
        '\twrapped_key BLOB NOT NULL, \n'
        '\tfailures INTEGER NOT NULL, \n'
        '\tPRIMARY KEY (slot_id, user_type), \n'
        '\tFOREIGN KEY(slot_id) REFERENCES tokens (slot_id)\n'
        ')',
    )),
    ('attributes', (
        'CREATE TABLE attributes (\n'
        '\tobject_id INTEGER NOT NULL, \n'
        '\ttype BIGINT NOT NULL, \n'
        '\tvalue BLOB NOT NULL, \n'
        '\tis_sealed BOOLEAN NOT NULL, \n'
        '\tPRIMARY KEY (object_id, type), \n'
        '\tFOREIGN KEY(object_id) REFERENCES objects (id)\n'
        ')',
        'CREATE INDEX ix_attributes_type_value ON attributes (type, value)',
    )),
)


def create_schema(conn: sqlite3.Connection) -> int:
    """`schema.upgrade` for an empty database: the current tables (a table that exists is
    left, as `create_all(checkfirst=True)` does), the version row and the generation row.
    Returns the version found under the write lock; a store that another process created or
    that needs upgrade steps meanwhile is left alone (the caller upgrades it on Core)."""
    found = stored_version(conn)
    versions.check_supported(found)
    if found != 0:
        return found
    for table, statements in CREATE_SCHEMA:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is None:
            for statement in statements:
                conn.execute(statement)
    conn.execute("INSERT INTO schema_version (id, version) VALUES (1, ?)", (versions.CURRENT_VERSION,))
    conn.execute("INSERT INTO generation (id, value) VALUES (1, 0)")
    _schema_log.info("created store schema version %d", versions.CURRENT_VERSION)
    return found
