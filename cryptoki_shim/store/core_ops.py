"""The store's hot statements through SQLAlchemy Core: the portable twin of `sqlite_ops`.

`Store` runs the object writes (create, replace the attributes of, destroy a token object)
and the generation read through one of two modules with the same four functions: this one
on a Core `Connection` (every database other than SQLite, which is what PostgreSQL will
execute; SQLite too with `Store(..., fast_path=False)`, so the suite runs these statements
against real files), or `sqlite_ops` on the driver connection (SQLite's default, ~5× less
per statement). Each function runs inside the transaction `Store` opened, which bumps the
generation row; none commits.

Attribute rows arrive as ``(type, value, is_sealed)`` tuples (`store._attribute_tuples`),
the shape both modules take.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import Connection, delete, insert, select

from .schema import attributes, generation, objects

_INSERT_OBJECT = insert(objects)
_INSERT_ATTRIBUTES = insert(attributes)
_READ_GENERATION = select(generation.c.value)


def read_generation(conn: Connection) -> int:
    return int(conn.execute(_READ_GENERATION).scalar_one())


def _insert_attributes(conn: Connection, oid: int, rows: Iterable[tuple[int, bytes, int]]) -> None:
    params = [{"object_id": oid, "type": t, "value": v, "is_sealed": bool(s)} for t, v, s in rows]
    if params:  # an executemany of no rows is an error in Core
        conn.execute(_INSERT_ATTRIBUTES, params)


def add_object(conn: Connection, slot_id: int, unique_id: str, rows: Iterable[tuple[int, bytes, int]]) -> int:
    """INSERT the object row and its attribute rows; its oid."""
    oid = int(conn.execute(_INSERT_OBJECT.values(slot_id=slot_id, unique_id=unique_id)).inserted_primary_key[0])
    _insert_attributes(conn, oid, rows)
    return oid


def _owned(conn: Connection, slot_id: int, oid: int) -> bool:
    return conn.execute(
        select(objects.c.id).where((objects.c.id == oid) & (objects.c.slot_id == slot_id))
    ).first() is not None


def replace_attributes(conn: Connection, slot_id: int, oid: int, rows: Iterable[tuple[int, bytes, int]]) -> bool:
    """All attribute rows of the slot's object replaced; False if the object is gone."""
    if not _owned(conn, slot_id, oid):
        return False
    conn.execute(delete(attributes).where(attributes.c.object_id == oid))
    _insert_attributes(conn, oid, rows)
    return True


def delete_object(conn: Connection, slot_id: int, oid: int) -> bool:
    """The slot's object and its attribute rows deleted; False if it was already gone."""
    if not _owned(conn, slot_id, oid):
        return False
    delete_objects(conn, [oid])
    return True


def delete_objects(conn: Connection, ids: object) -> None:
    """Delete objects (`ids`: a list or a SELECT of ids) and their attribute rows
    (explicitly: no reliance on ON DELETE)."""
    conn.execute(delete(attributes).where(attributes.c.object_id.in_(ids)))
    conn.execute(delete(objects).where(objects.c.id.in_(ids)))
