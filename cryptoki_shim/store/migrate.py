"""`cryptoki-shim store migrate`: copy a whole store to another database and prove the copy
(issue 19 item 5): SQLite -> PostgreSQL, PostgreSQL -> SQLite, or any two URLs.

What is copied is every row of the store's tables as stored: tokens, PIN records (still
sealed under the store key file if one is used, with their failure counters), objects with
their ids and their attribute rows (sealed values stay sealed: they are bound to the token
serial, the object's unique id and the attribute type, never to the database), and the
generation counter. Nothing is decrypted, so no PIN and no key file is needed, and the
destination needs the same `[store] key_file` as the source.

The source is read in one snapshot (SQLite: one read transaction; PostgreSQL: REPEATABLE
READ), the destination written in one transaction, and only into an empty store (a new
database or file): a half-copied store is never left behind, and an existing token is never
overwritten. Then both are read again and compared table by table (row count and a SHA-256
over the rows in key order) and token by token through `Store` (token records, PIN records,
objects): `verify` raises if anything differs, e.g. when the source was written meanwhile.
Stop the applications (or point them at the destination) before the copy: writes after the
snapshot are not copied, and the verification would report them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR
from .store import Store

#: Copied in this order (foreign keys: tokens before pins and objects, objects before attributes).
TABLES = ("tokens", "pins", "objects", "attributes")
_KEYS = {"tokens": ("slot_id",), "pins": ("slot_id", "user_type"), "objects": ("id",),
         "attributes": ("object_id", "type")}


class MigrationError(CryptokiError):
    """The copy was refused or does not match its source (the message says where)."""

    def __init__(self, msg: str) -> None:
        super().__init__(CKR_DEVICE_ERROR, msg)


@dataclass
class Report:
    rows: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    slots: list[int] = field(default_factory=list)
    generation: int = 0


def _rows(conn: Any, name: str) -> list[tuple[Any, ...]]:
    from .schema import metadata

    table = metadata.tables[name]
    order = [table.c[k] for k in _KEYS[name]]
    return [tuple(r) for r in conn.execute(table.select().order_by(*order))]


def _digest(rows: list[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps([_plain(v) for v in row], sort_keys=True).encode())
        h.update(b"\n")
    return h.hexdigest()


def _plain(v: Any) -> Any:
    """A column value in one form on every database (bytes as hex, booleans as 0/1)."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, bool):
        return int(v)
    return v


def _snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    from .schema import generation

    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            data = {name: _rows(conn, name) for name in TABLES}
            data["generation"] = [(int(conn.execute(generation.select()).one().value),)]
    return data


def copy(src: Store, dst: Store) -> Report:
    """Copy every row of `src` into the empty store `dst`, in one transaction; then `verify`."""
    from sqlalchemy import text, update

    from .schema import generation, metadata

    data = _snapshot(src)
    if any(_snapshot_counts(dst).values()):
        raise MigrationError("the destination store already holds tokens or objects: migrate into an empty "
                             "database (or file) only")
    with dst.engine.begin() as conn:
        for name in TABLES:
            table = metadata.tables[name]
            columns = [c.name for c in table.columns]
            rows = [dict(zip(columns, r)) for r in data[name]]
            for i in range(0, len(rows), 1000):
                conn.execute(table.insert(), rows[i:i + 1000])
        conn.execute(update(generation).values(value=data["generation"][0][0] + 1))
        if conn.dialect.name == "postgresql" and data["objects"]:
            # explicit ids do not move the sequence: the next object must not reuse one
            conn.execute(text("SELECT setval(pg_get_serial_sequence('objects', 'id'), "
                              "(SELECT max(id) FROM objects))"))
    return verify(src, dst)


def _snapshot_counts(store: Store) -> dict[str, int]:
    from sqlalchemy import func, select

    from .schema import metadata

    with store.engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(metadata.tables[name])).scalar_one())
                for name in TABLES}


def verify(src: Store, dst: Store) -> Report:
    """Both stores hold the same rows (per table: count and digest) and the same tokens,
    PIN records and objects as `Store` reads them; MigrationError naming the first difference."""
    a, b = _snapshot(src), _snapshot(dst)
    report = Report(generation=b["generation"][0][0])
    for name in TABLES:
        da, db = _digest(a[name]), _digest(b[name])
        if len(a[name]) != len(b[name]) or da != db:
            raise MigrationError(f"table {name}: source {len(a[name])} rows ({da[:16]}), "
                                 f"copy {len(b[name])} rows ({db[:16]})")
        report.rows[name], report.digests[name] = len(a[name]), da
    report.slots = [int(r[0]) for r in a["tokens"]]
    for slot in report.slots:
        if src.token(slot) != dst.token(slot):
            raise MigrationError(f"slot {slot}: the token or PIN records differ")
        if src.objects(slot) != dst.objects(slot):
            raise MigrationError(f"slot {slot}: the objects differ")
    return report
