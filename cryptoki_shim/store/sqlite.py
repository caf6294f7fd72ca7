"""SQLite connections for the store: pragmas, write locking, read-only media.

Many processes (every application that loaded the module) share one file, so:

- **WAL** (`journal_mode=WAL`): readers never block the writer nor each other; a reader
  sees the last committed snapshot.
- **BEGIN IMMEDIATE for writes**: a write transaction takes the write lock at BEGIN, so it
  waits in the busy handler there instead of failing with SQLITE_BUSY later when a deferred
  reader tries to upgrade (an error no timeout can fix). Python 3.11's `sqlite3` emits its own
  BEGIN (DEFERRED, and only before DML), so, as SQLAlchemy's documentation recommends for
  this driver, the driver runs with `isolation_level=None` and the `begin` event emits
  `BEGIN` / `BEGIN IMMEDIATE` itself (chosen by the `cryptoki_begin` execution option).
- **busy_timeout** 10 s: lock waits are handled inside SQLite; the store retries on top.
- **secure_delete=ON**: deleted records (destroyed objects, old PIN records) are zeroed
  in the file instead of lingering in free pages.
- **synchronous=NORMAL** in WAL. Durability argument: a commit appends to the WAL with a
  write() but without fsync; the WAL is synced at checkpoints. A *process* crash therefore
  loses nothing committed (the data is in the OS page cache, and the WAL is replayed by the
  next opener). A *power loss* or kernel crash may lose the last transactions committed
  since the previous checkpoint, but cannot corrupt the database: WAL frames carry
  checksums, and recovery stops at the first frame that is not intact, leaving the last
  consistent state. For key storage the trade is: `C_GenerateKey` acknowledged just before
  a power cut may be gone after it, the file is never broken. `FULL` would add one fsync
  per commit (milliseconds on real disks).

Read-only media: a WAL database needs its `-shm` file. Where the directory cannot be
written and no `-shm` exists (a read-only mount of a cleanly closed store), SQLite cannot
open it at all (SQLITE_CANTOPEN); we open it then as `immutable`, read-only. Nobody can be
writing to such a file, so reads are correct and every write fails with SQLITE_READONLY.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0
MEMORY = ":memory:"

#: execution option naming the BEGIN mode of a transaction ("IMMEDIATE" for writes)
BEGIN_OPTION = "cryptoki_begin"

#: Held around every call into SQLite, and by the fork handlers below: SQLite's own
#: (pthread) mutexes are not fork-safe, so a fork() while another thread is inside SQLite
#: (e.g. `PRAGMA data_version` on the signing path, which releases the GIL) copies them
#: locked into the child, whose first sqlite3.connect after C_Initialize then waits
#: forever (found by tests/robust/test_concurrency.py::test_fork_in_the_middle_of_activity).
#: Our C fork handler runs these through PyOS_BeforeFork / PyOS_AfterFork_*.
FORK_GUARD = threading.RLock()


def _fork_before() -> None:
    FORK_GUARD.acquire()


def _fork_after_parent() -> None:
    FORK_GUARD.release()


def _fork_after_child() -> None:
    global FORK_GUARD
    FORK_GUARD = threading.RLock()


os.register_at_fork(before=_fork_before, after_in_parent=_fork_after_parent, after_in_child=_fork_after_child)

_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",
    "PRAGMA secure_delete = ON",
    "PRAGMA foreign_keys = ON",
)


def database_path(database: str | None) -> str:
    """The file of a `sqlite:///path` URL (its `database` part), or `MEMORY`."""
    return database or MEMORY


_PLAIN_URL = re.compile(r"sqlite(\+pysqlite)?://(/(?P<path>[^?#%@]*))?")


def plain_path(url: str) -> str | None:
    """The database part of a plain SQLite URL (`sqlite://`, `sqlite:///path`, no query,
    no escapes), read without SQLAlchemy; None for any other URL (parsed by SQLAlchemy's
    `make_url`). Equal to `make_url(url).database or ""` (tests/store/test_store_paths.py)."""
    m = _PLAIN_URL.fullmatch(url)
    return None if m is None else m.group("path") or ""


class Pool:
    """Idle driver connections of one SQLite file, for a store without an engine.

    A SQLite store on the fast path runs every statement on connections from `connect`
    and never needs SQLAlchemy's pool; this is the part of it that the store uses: up to
    `size` idle connections kept, a transaction left open rolled back on return. Once the
    store makes an engine (a Core write, the `engine` property) the pool is `retire`d and
    the engine's pool takes over, so its events apply to every connection from then on.
    """

    def __init__(self, path: str, immutable: bool, size: int = 5, retired: bool = False) -> None:
        self._path = path
        self._immutable = immutable
        self._size = size
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.retired = retired

    def checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return connect(self._path, immutable=self._immutable)

    def checkin(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                return
        with self._lock:
            if not self.retired and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self, *, retire: bool = False) -> None:
        """Close the idle connections (`retire`: and every one returned from now on)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self.retired = self.retired or retire
        for conn in idle:
            conn.close()

    def abandon(self) -> list[sqlite3.Connection]:
        """The idle connections, forgotten without closing (a forked child)."""
        with self._lock:
            idle, self._idle = self._idle, []
        return idle


def needs_immutable(path: str) -> bool:
    """True for an existing store that SQLite could not open normally (see module doc)."""
    if path == MEMORY or not os.path.exists(path):
        return False
    directory = os.path.dirname(os.path.abspath(path))
    return not os.access(directory, os.W_OK) and not os.path.exists(path + "-shm")


def connect(path: str, *, immutable: bool = False) -> sqlite3.Connection:
    """A raw connection with the store's pragmas, autocommit at the driver level."""
    if immutable:
        uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_S)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_S)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    if not immutable and path != MEMORY:
        _set_wal(conn)
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL (persistent in the file; a no-op once set)."""
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except sqlite3.OperationalError as exc:
        # A read-only file keeps whatever mode it has; writes will report the real problem.
        log.debug("journal_mode=WAL not set: %s", exc)
        return
    if str(mode).lower() != "wal":
        log.warning("store is in journal mode %s, not WAL", mode)


def make_engine(url: Any, path: str, *, immutable: bool = False) -> Engine:
    """An engine whose connections come from `connect` and whose BEGIN we emit."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.pool import StaticPool

    kwargs: dict[str, Any] = {
        "creator": lambda: connect(path, immutable=immutable),
        "hide_parameters": True,  # error texts must never carry PIN records or values
    }
    if path == MEMORY:
        # One shared connection, else every pooled connection would see its own empty db.
        # In-memory stores are for tests and tools: one thread at a time.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
