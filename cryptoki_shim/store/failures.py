"""What a database error means for the caller: wait and retry, or which CKR_* to return.

PKCS#11 has two return values for a store that cannot take a write: `CKR_DEVICE_MEMORY`
("the token does not have sufficient memory", base spec, function return values) for a full disk, and
`CKR_DEVICE_ERROR` for everything else that is wrong with the device (read-only file,
I/O error, corruption). Lock contention is never an error for the caller: it is waited out.
Errors that mean a bug in our SQL (integrity, programming errors) are not classified and
propagate, so the entry layer logs them with a traceback.

Importing this module does not import SQLAlchemy: a SQLite store on the fast path never
does (`classify_sqlite` takes the driver's own exceptions).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Final

from ..spec import CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError

RETRY: Final = "retry"

# SQLite primary result codes (https://sqlite.org/rescode.html); extended codes carry the
# primary one in their low byte.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
_SQLITE_RETRY = {SQLITE_BUSY, SQLITE_LOCKED}
_SQLITE_CKR: dict[int, int] = {
    3: CKR_DEVICE_ERROR,  # SQLITE_PERM
    7: CKR_DEVICE_MEMORY,  # SQLITE_NOMEM
    8: CKR_DEVICE_ERROR,  # SQLITE_READONLY
    10: CKR_DEVICE_ERROR,  # SQLITE_IOERR
    11: CKR_DEVICE_ERROR,  # SQLITE_CORRUPT
    13: CKR_DEVICE_MEMORY,  # SQLITE_FULL
    14: CKR_DEVICE_ERROR,  # SQLITE_CANTOPEN
    26: CKR_DEVICE_ERROR,  # SQLITE_NOTADB
}

# PostgreSQL SQLSTATEs (appendix A of its manual).
_PG_RETRY = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available
_PG_CKR: dict[str, int] = {
    "53100": CKR_DEVICE_MEMORY,  # disk_full
    "53200": CKR_DEVICE_MEMORY,  # out_of_memory
    "25006": CKR_DEVICE_ERROR,  # read_only_sql_transaction
}


def sqlite_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of a `sqlite3.Error`, if it carries one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def classify_driver(orig: BaseException | None) -> int | str | None:
    """RETRY, a CKR_* value, or None (not a device condition) for a driver exception."""
    if orig is None:
        return None
    code = sqlite_code(orig)
    if code is not None:
        if code in _SQLITE_RETRY:
            return RETRY
        return _SQLITE_CKR.get(code)
    pgcode = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if pgcode in _PG_RETRY:
        return RETRY
    if pgcode in _PG_CKR:
        return _PG_CKR[pgcode]
    return None


def classify(exc: DBAPIError) -> int | str | None:
    """RETRY, a CKR_* value, or None for an exception raised through SQLAlchemy."""
    from sqlalchemy.exc import OperationalError

    verdict = classify_driver(exc.orig)
    if verdict is None and isinstance(exc, OperationalError):
        # Lost connection, server gone, unknown operational trouble: the device failed.
        return CKR_DEVICE_ERROR
    return verdict


def classify_sqlite(exc: sqlite3.Error) -> int | str | None:
    """`classify` for an exception of the `sqlite3` driver itself (the fast path): the same
    verdict SQLAlchemy's wrapping of it would get (its `OperationalError` wraps the
    driver's)."""
    verdict = classify_driver(exc)
    if verdict is None and isinstance(exc, sqlite3.OperationalError):
        return CKR_DEVICE_ERROR
    return verdict
