"""The store's tables (SQLAlchemy Core) and the schema upgrade run on every open.

Only portable types (Integer/BigInteger, LargeBinary, String, Boolean, JSON) so the same
schema serves SQLite now and PostgreSQL later. Attributes are rows, not a blob per object,
so public attributes can be searched in SQL, with an index on (type, value).

Versioning (the number and its check live in `versions.py`, which the SQLite fast path
reads without importing this module): `schema_version` holds one row with the version the file was written in.
`upgrade()` brings any older store to `CURRENT_VERSION`: a fresh store gets the current
tables at once; an existing one runs `UPGRADES[v]` for v = its version .. CURRENT-1, each
step in the same write transaction. To add v2: change the tables below, write
`_v1_to_v2(conn)` (ALTER/CREATE/data moves), register it as `UPGRADES[1]`, bump
`CURRENT_VERSION`.

Notes for PostgreSQL: CKA_* types are CK_ULONG; vendor types above 2**63 would not fit
BigInteger (none are defined). A btree entry is limited to ~2.7 kB, so the (type, value)
index will need to cover a digest of `value` there (a v2 step) before large values such as
certificates are stored in a PostgreSQL store.
"""

from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    inspect,
    select,
)

from . import versions
from .versions import CURRENT_VERSION as CURRENT_VERSION  # re-exported (read-only: the value lives in versions)
from .versions import check_supported

log = logging.getLogger(__name__)

metadata = MetaData()

#: An auto-incrementing 64-bit key: BIGINT elsewhere, but INTEGER on SQLite, where only
#: "INTEGER PRIMARY KEY" is the rowid alias that auto-increments.
_RowId = BigInteger().with_variant(Integer(), "sqlite")

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)

#: Bumped in every write transaction: the change signal for databases without
#: SQLite's `PRAGMA data_version` (PostgreSQL).
generation = Table(
    "generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("slot_id", BigInteger, primary_key=True, autoincrement=False),
    Column("label", LargeBinary(32), nullable=False),
    Column("serial", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("meta", JSON, nullable=False),
)

pins = Table(
    "pins",
    metadata,
    Column("slot_id", BigInteger, ForeignKey("tokens.slot_id"), primary_key=True,
           autoincrement=False),
    Column("user_type", Integer, primary_key=True, autoincrement=False),  # CKU_SO / CKU_USER
    Column("kdf", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("failures", Integer, nullable=False, default=0),
)

objects = Table(
    "objects",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("slot_id", BigInteger, ForeignKey("tokens.slot_id"), nullable=False),
    Column("unique_id", String(64), nullable=False),
    UniqueConstraint("slot_id", "unique_id", name="uq_objects_slot_unique_id"),
    # AUTOINCREMENT: never hand a deleted object's id to a new one (stale caches in other
    # processes must miss, not hit the wrong object). PostgreSQL sequences never reuse.
    sqlite_autoincrement=True,
)

attributes = Table(
    "attributes",
    metadata,
    Column("object_id", _RowId, ForeignKey("objects.id"), primary_key=True,
           autoincrement=False),
    Column("type", BigInteger, primary_key=True, autoincrement=False),
    Column("value", LargeBinary, nullable=False),
    Column("is_sealed", Boolean, nullable=False),
    Index("ix_attributes_type_value", "type", "value"),
)

def _v1_to_v2(conn: Connection) -> None:
    """v2: objects' clear rows are bound to their sealed rows (store/crypto.py "object
    binding"), and a private object's CKA_VALUE is sealed. No table changes: binding needs
    the token key, so each object is rewritten at the first login after the upgrade
    (`core.token.Token._bind_legacy`). The version bump keeps releases that cannot open
    bound rows (they would skip every key as unreadable) away from the store."""


#: from-version -> step that brings the store to from-version + 1.
UPGRADES: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}


def stored_version(conn: Connection) -> int:
    """The schema version recorded in the store; 0 for an empty database."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    version = conn.execute(select(schema_version.c.version)).scalar()
    return int(version or 0)


def upgrade(conn: Connection) -> int:
    """Bring the store to `CURRENT_VERSION` inside the caller's write transaction.

    Returns the version found before. Safe against concurrent openers: the caller holds the
    write lock, and the version is read again under it.
    """
    found = stored_version(conn)
    check_supported(found)
    if found == 0:
        metadata.create_all(conn, checkfirst=True)
        conn.execute(schema_version.insert().values(id=1, version=versions.CURRENT_VERSION))
        conn.execute(generation.insert().values(id=1, value=0))
        log.info("created store schema version %d", versions.CURRENT_VERSION)
        return found
    version = found
    while version < versions.CURRENT_VERSION:
        UPGRADES[version](conn)
        version += 1
        conn.execute(schema_version.update().values(version=version))
        log.info("upgraded store schema to version %d", version)
    return found
