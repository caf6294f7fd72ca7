"""The store's hot statements on SQLite, as fixed SQL run on the driver connection.

Creating or destroying a token object is one short write transaction; through SQLAlchemy
Core each statement costs ~100 µs of compilation-cache lookup, parameter processing and
event dispatch, about five times what SQLite itself needs (measured: `add_object` +
`delete_object` 1.65 ms through Core, 0.31 ms here). So `Store` runs exactly these
statements as constant SQL strings (the driver keeps them prepared in its statement cache)
on a connection checked out of the *same* engine pool: the pool's `connect` event
(pragmas, tests' hooks), `dispose()` and the fork handling still apply. Everything else
(token records, PIN records, schema upgrades, loading objects) stays on Core. `core_ops`
has the same four functions in SQLAlchemy Core (what every other database runs, and a
SQLite store opened with `fast_path=False`); `Store` picks one set when it opens.

The transaction discipline is the one of `Store._run`: writes `BEGIN IMMEDIATE` and bump
the generation row in the same transaction; driver errors are re-raised as SQLAlchemy's
`DBAPIError` family so the one classification (`failures.classify`) decides retry, CKR_* or
propagate.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterable, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from . import sqlite

T = TypeVar("T")

BUMP_GENERATION = "UPDATE generation SET value = value + 1 RETURNING value"
READ_GENERATION = "SELECT value FROM generation"
INSERT_OBJECT = "INSERT INTO objects (slot_id, unique_id) VALUES (?, ?)"
INSERT_ATTRIBUTE = "INSERT INTO attributes (object_id, type, value, is_sealed) VALUES (?, ?, ?, ?)"
OWNED = "SELECT 1 FROM objects WHERE id = ? AND slot_id = ?"
DELETE_ATTRIBUTES = "DELETE FROM attributes WHERE object_id = ?"
DELETE_OWNED_ATTRIBUTES = ("DELETE FROM attributes WHERE object_id = "
                           "(SELECT id FROM objects WHERE id = ? AND slot_id = ?)")
DELETE_OWNED_OBJECT = "DELETE FROM objects WHERE id = ? AND slot_id = ?"


def transaction(engine: Engine, fn: Callable[[sqlite3.Connection], T], write: bool) -> tuple[T, int | None]:
    """Run ``fn(driver_connection)`` in one transaction; (its result, generation written).

    A read is a single statement in autocommit (its own snapshot); a write is
    ``BEGIN IMMEDIATE`` .. generation bump .. ``COMMIT``. Any driver error rolls back and
    is raised as a ``DBAPIError`` (the subclass matching the driver's exception).
    """
    with sqlite.FORK_GUARD:
        pooled = engine.raw_connection()
        try:
            conn: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
            try:
                if not write:
                    return fn(conn), None
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                written = conn.execute(BUMP_GENERATION).fetchone()[0]
                conn.execute("COMMIT")
                return result, int(written)
            except sqlite3.Error as exc:
                _rollback(conn)
                raise DBAPIError.instance(None, None, exc, sqlite3.Error, hide_parameters=True) from exc
            except BaseException:
                _rollback(conn)
                raise
        finally:
            pooled.close()


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

