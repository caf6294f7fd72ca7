"""The store's statements through SQLAlchemy Core: the portable twin of `sqlite_ops`.

`Store` runs every statement of a method (object writes, the generation read, token and
object reads, token writes, the login counter, the key file's sealing of PIN records)
through one of two modules with the same functions: this one on a Core `Connection` (every
database other than SQLite, which is what PostgreSQL will execute; SQLite too with
`Store(..., fast_path=False)`, so the suite runs these statements against real files), or
`sqlite_ops` on the driver connection (SQLite's default, ~5× less per statement, and no
SQLAlchemy import). Each function runs inside the transaction `Store` opened, which bumps
the generation row on a write; none commits.

Attribute rows arrive as ``(type, value, is_sealed)`` tuples (`store._attribute_tuples`),
the shape both modules take.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from sqlalchemy import Connection, case, delete, insert, select, update

from .records import PinRecord, TokenRecord
from .schema import attributes, generation, objects, pins, tokens

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


# -- the rest of `sqlite_ops`' statements, same signatures ---------------------------------------

def read_token(conn: Connection, slot_id: int) -> tuple[tuple[Any, ...], dict[int, PinRecord]] | None:
    """The token row (slot_id, label, serial, created_at, meta) and its PIN records by user type."""
    row = conn.execute(select(tokens).where(tokens.c.slot_id == slot_id)).first()
    if row is None:
        return None
    pin_rows = conn.execute(select(pins).where(pins.c.slot_id == slot_id)).all()
    by_type = {p.user_type: PinRecord(kdf=p.kdf, params=dict(p.params),
                                      wrapped_key=bytes(p.wrapped_key), failures=p.failures)
               for p in pin_rows}
    return (row.slot_id, row.label, row.serial, row.created_at, row.meta), by_type


def read_objects(conn: Connection, slot_id: int) -> list[Any]:
    """(oid, unique_id, type, value, is_sealed) rows of the slot's objects, in creation order."""
    return list(conn.execute(
        select(objects.c.id, objects.c.unique_id, attributes.c.type,
               attributes.c.value, attributes.c.is_sealed)
        .select_from(objects.outerjoin(attributes, attributes.c.object_id == objects.c.id))
        .where(objects.c.slot_id == slot_id)
        .order_by(objects.c.id)
    ))


def pin_params(conn: Connection) -> list[dict[str, Any]]:
    """The params of every PIN record."""
    return list(conn.execute(select(pins.c.params)).scalars().all())


def seal_pins(conn: Connection, wrap: Callable[[PinRecord], PinRecord], sealed: str) -> int:
    """Every PIN record whose params lack `sealed` replaced by ``wrap(record)``; how many."""
    n = 0
    for row in conn.execute(select(pins.c.slot_id, pins.c.user_type, pins.c.params, pins.c.wrapped_key)).all():
        if sealed in row.params:
            continue
        rec = wrap(PinRecord(kdf="", params=dict(row.params), wrapped_key=bytes(row.wrapped_key)))
        conn.execute(update(pins).where((pins.c.slot_id == row.slot_id) & (pins.c.user_type == row.user_type))
                     .values(params=rec.params, wrapped_key=rec.wrapped_key))
        n += 1
    return n


def replace_pin(conn: Connection, slot_id: int, user_type: int, expected: bytes, rec: PinRecord) -> bool:
    where = (pins.c.slot_id == slot_id) & (pins.c.user_type == user_type) & (pins.c.wrapped_key == expected)
    return conn.execute(update(pins).where(where).values(
        kdf=rec.kdf, params=rec.params, wrapped_key=rec.wrapped_key)).rowcount == 1


def reserve_login(conn: Connection, slot_id: int, user_type: int, limit: int | None,
                  wrapped_key: bytes | None) -> int | None:
    """`Store.reserve_login`'s one conditional UPDATE (a row lock makes it atomic)."""
    where = (pins.c.slot_id == slot_id) & (pins.c.user_type == user_type)
    if wrapped_key is not None:
        where = where & (pins.c.wrapped_key == wrapped_key)
    cond = where if limit is None else where & (pins.c.failures < limit)
    row = conn.execute(update(pins).where(cond).values(failures=pins.c.failures + 1)
                       .returning(pins.c.failures)).first()
    if row is not None:
        return int(row.failures)
    if conn.execute(select(pins.c.failures).where(where)).first() is None:
        raise KeyError(f"no such PIN record of user type {user_type} in slot {slot_id}")
    return None


def login_succeeded(conn: Connection, slot_id: int, user_type: int, reserved: int | None,
                    wrapped_key: bytes | None) -> None:
    where = (pins.c.slot_id == slot_id) & (pins.c.user_type == user_type) & (pins.c.failures != 0)
    if wrapped_key is not None:
        where = where & (pins.c.wrapped_key == wrapped_key)
    value = 0 if reserved is None else case((pins.c.failures > reserved, pins.c.failures - reserved), else_=0)
    conn.execute(update(pins).where(where).values(failures=value))


def insert_pin(conn: Connection, slot_id: int, user_type: int, pin: PinRecord) -> None:
    conn.execute(insert(pins).values(
        slot_id=slot_id, user_type=user_type, kdf=pin.kdf, params=pin.params,
        wrapped_key=pin.wrapped_key, failures=pin.failures,
    ))


def replace_token(conn: Connection, rec: TokenRecord, pins_: dict[int, PinRecord],
                  objs: list[tuple[Any, list[tuple[int, bytes, int]]]]) -> None:
    """`Store.replace_token`'s write: the slot's objects, PIN records and token deleted, the
    new ones inserted (each object's `oid` set)."""
    delete_objects(conn, select(objects.c.id).where(objects.c.slot_id == rec.slot_id))
    conn.execute(delete(pins).where(pins.c.slot_id == rec.slot_id))
    conn.execute(delete(tokens).where(tokens.c.slot_id == rec.slot_id))
    conn.execute(insert(tokens).values(
        slot_id=rec.slot_id, label=rec.label, serial=rec.serial,
        created_at=rec.created_at, meta=rec.meta,
    ))
    for user_type, pin in pins_.items():
        insert_pin(conn, rec.slot_id, user_type, pin)
    for o, rows in objs:
        o.oid = add_object(conn, rec.slot_id, o.unique_id, rows)


def update_token(conn: Connection, slot_id: int, columns: dict[str, Any],
                 pins_: dict[int, PinRecord | None]) -> None:
    """`Store.update_token`'s write: `columns` (label, serial, meta) set, each PIN record of
    `pins_` replaced (None: removed). KeyError if the slot has no token."""
    found = conn.execute(
        update(tokens).where(tokens.c.slot_id == slot_id).values(**columns or {"slot_id": slot_id})
    ).rowcount
    if not found:
        raise KeyError(f"no token in slot {slot_id}")
    for user_type, pin in pins_.items():
        conn.execute(delete(pins).where((pins.c.slot_id == slot_id) & (pins.c.user_type == user_type)))
        if pin is not None:
            insert_pin(conn, slot_id, user_type, pin)
