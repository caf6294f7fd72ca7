"""The persistent store: tokens, PIN records, objects and their attributes, over a URL.

The core keeps tokens and objects in memory and calls this class to persist them; before it
trusts its cache it asks `data_version()`, which is cheap enough to run before every object
lookup and changes whenever any process committed to the store.

Every method is one transaction. Reads run in a deferred transaction (one snapshot);
writes in `BEGIN IMMEDIATE` on SQLite (see `sqlite.py`). Lock contention is waited out
(busy timeout, then retries with back-off for up to `RETRY_FOR_S`); a write that fails
because the medium is full raises `CryptokiError(CKR_DEVICE_MEMORY)`, read-only or failing
media `CryptokiError(CKR_DEVICE_ERROR)`; reads keep working in both cases.

The public methods are the one write API: every write is a named method (`init_token`,
`replace_token`, `update_token`, `replace_pin`, `reserve_login`, `login_succeeded`,
`add_object`, `update_object`, `delete_object`, `scrub`), used by the core and the admin
CLI alike; nothing outside this package runs SQL on the store. Every method's statements
come from one of two statement sets with one signature, picked once when the store opens
(`_ops`, run by `_hot`): `sqlite_ops` (fixed SQL on the driver connection, SQLite's default) or `core_ops`
(SQLAlchemy Core: every other database, and SQLite with `fast_path=False`, which is how
the tests execute the statements PostgreSQL will run). On the fast path the schema version (and a new store's schema),
token, PIN record and object reads, the login counter, `replace_pin`, the token writes
(`init_token`, `replace_token`, `update_token`) and the key file's sealing are `sqlite_ops`
statements too, on `sqlite.Pool` connections: a SQLite store that
is only opened, read, logged into and written objects to never imports SQLAlchemy (issue 25
item 7: its import was ~130 ms of a process's way to its first signature). The rest
(upgrading an older schema, and the `engine` property) is Core on every database; on the fast path it makes the engine on first
use, whose pool then serves the fast path's connections too.

PostgreSQL (`postgresql+psycopg://`, docs/ha.md) runs `core_ops`; what differs lives in
`pg.py`: the engine (connect timeout, keepalives, lock_timeout, password and TLS settings),
and change detection, where `data_version(exact=True)` reads the generation row on the
process's LISTEN connection and `exact=False` (the use of a cached key) only drains that
connection's notifications (no SQL; ~2.6 µs, as SQLite's pragma).

Measured on the development machine (2 vCPUs, ext4, SQLite 3.40, WAL, synchronous=NORMAL):
`data_version()` ~3 µs; `add_object` with 3 attributes ~0.12 ms (0.27 ms through SQLAlchemy
Core; object writes on SQLite run through `sqlite_ops`); `objects()` of 200 objects
~1.5-3 ms, of 500 ~6 ms. `tests/store/test_store_roundtrip.py::test_timings` prints the
current values with `-s` (and fails at ten times these).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from .. import private_files
from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR
from . import key_file as key_file_mod
from . import pg, sqlite, sqlite_ops, versions
from .failures import RETRY, classify, classify_driver, classify_sqlite
from .records import CKU_SO, CKU_USER, ObjectRecord, PinRecord, TokenRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.engine import URL, Engine

log = logging.getLogger(__name__)

#: How long lock contention is retried (beyond SQLite's own busy timeout) before giving up.
RETRY_FOR_S = 60.0

T = TypeVar("T")

#: Connections inherited from a parent process: never closed (closing a SQLite handle in
#: the child can drop the parent's locks or checkpoint under it), never collected.
_ABANDONED: list[Any] = []

_TOKEN_FIELDS = frozenset({"label", "serial", "meta", "so_pin", "user_pin"})
_PIN_FIELDS = {"so_pin": CKU_SO, "user_pin": CKU_USER}


class Store:
    """One database (SQLite file by default) holding any number of tokens, keyed by slot id."""

    def __init__(self, url: str, *, create: bool = True, key_file: str | None = None,
                 fast_path: bool = True, connect: dict[str, Any] | None = None,
                 connect_timeout: int = pg.DEFAULT_CONNECT_TIMEOUT) -> None:
        """Open the store at `url` (`sqlite:///path` or any SQLAlchemy URL).

        With `create`, a missing SQLite file (and its directory, mode 0700) is created; an
        existing store is always upgraded to the current schema. Without it, a missing or
        empty store is `CKR_DEVICE_ERROR`. `key_file`: PIN records are also sealed under
        that file's key (`key_file.py`); records of an existing store are sealed now. A
        key file that cannot be used is logged here and fails each PIN record use with
        `CKR_DEVICE_ERROR` (public objects stay readable). `fast_path=False` runs the object
        writes of a SQLite store through SQLAlchemy Core (`core_ops`), as on any other
        database, instead of `sqlite_ops` (the tests run both; `[store] sqlite_fast_path`).
        `connect` (password, sslmode, sslrootcert, sslcert, sslkey) and `connect_timeout`
        (seconds) are PostgreSQL's connection settings (`pg.py`); a server that cannot be
        reached is CKR_DEVICE_ERROR with the reason logged.
        """
        self._url_text = url
        self._url: URL | None = None
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()
        self._tls = threading.local()
        self._pid = os.getpid()
        self._own_commits = 0
        self._dv_conn: sqlite3.Connection | None = None
        self._dv_last: tuple[int, int] | None = None
        self._dv_counter = 0
        database = sqlite.plain_path(url)  # a plain SQLite URL is read without SQLAlchemy
        self._is_sqlite = database is not None or self.url.get_backend_name() == "sqlite"
        if database is None and self._is_sqlite:
            database = self.url.database
        self._path = sqlite.database_path(database) if self._is_sqlite else ""
        self._immutable = False
        self._engine: Engine | None = None
        self._pool: sqlite.Pool | None = None
        #: PostgreSQL's change feed (LISTEN/NOTIFY, `pg.Listener`); None elsewhere.
        self._listener: pg.Listener | None = None
        self._pg_known = -1  # the highest generation seen (read or announced)
        #: The statement set (`_hot` runs its functions): `sqlite_ops` on the driver
        #: connection, or `core_ops` on a Core connection.
        self.fast_path = self._is_sqlite and fast_path
        if self._is_sqlite:
            self._prepare_sqlite(create)
            if self.fast_path and self._path != sqlite.MEMORY:
                self._pool = sqlite.Pool(self._path, self._immutable)
            else:  # an in-memory store is one shared connection: the engine's StaticPool
                self._core_engine()
        elif pg.is_postgresql(self.url):
            args = pg.connect_args(self.url, connect or {}, connect_timeout)
            self._engine = pg.make_engine(self.url, args)
            self._listener = pg.Listener(self._engine, args)
        else:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.url, pool_pre_ping=True, hide_parameters=True)
        if connect and self._listener is None:
            log.warning("[store] %s apply to PostgreSQL only: ignored for %s", ", ".join(sorted(connect)),
                        pg.safe_url(self._url_text))
        if self.fast_path:
            self._ops: Any = sqlite_ops
        else:
            from . import core_ops

            self._ops = core_ops
        self._open_schema(create)
        self._key_file: key_file_mod.KeyFile | None = None
        self._key_file_error: CryptokiError | None = None
        if key_file:
            self._open_key_file(key_file)

    @property
    def url(self) -> URL:
        """The store's URL, parsed by SQLAlchemy (on first use)."""
        if self._url is None:
            from sqlalchemy.engine import make_url

            self._url = make_url(self._url_text)
        return self._url

    def _prepare_sqlite(self, create: bool) -> None:
        """The SQLite file's checks before anything connects: create it 0600 (with
        `create`), warn on a readable one, open one on read-only media immutable."""
        path = self._path
        if path != sqlite.MEMORY:
            if not os.path.exists(path):
                if not create:
                    raise CryptokiError(CKR_DEVICE_ERROR, f"no store at {path}")
                os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
                # 0600 before SQLite sees it: its -wal, -shm and -journal copy this mode.
                try:
                    private_files.create_empty(path)
                except OSError as exc:
                    raise CryptokiError(CKR_DEVICE_ERROR, f"cannot create the store {path}: {exc.strerror}") from None
            elif not private_files.is_private(os.stat(path).st_mode):
                log.warning("store %s is readable by group or others (mode %o); chmod 600 it",
                            path, os.stat(path).st_mode & 0o777)
            self._immutable = sqlite.needs_immutable(path)
            if self._immutable:
                log.warning("store %s is on read-only media: opened read-only", path)

    def _core_engine(self) -> Engine:
        """The SQLAlchemy engine, made on first use on a SQLite store (its pool then serves
        the fast path too, so its events apply to every connection from then on)."""
        engine = self._engine
        if engine is not None:
            return engine
        with self._engine_lock:
            if self._engine is None:
                self._engine = sqlite.make_engine(self.url, self._path, immutable=self._immutable)
                if self._pool is not None:
                    self._pool.close(retire=True)
            return self._engine

    def _checkout(self) -> tuple[sqlite3.Connection, Callable[[], None]]:
        """A driver connection for `sqlite_ops` and the function that gives it back."""
        engine, pool = self._engine, self._pool
        if engine is None and pool is not None and not pool.retired:
            conn = pool.checkout()
            return conn, lambda: pool.checkin(conn)
        pooled = self._core_engine().raw_connection()
        return pooled.driver_connection, pooled.close

    def _open_schema(self, create: bool) -> None:
        """Check the schema version and upgrade (or create) under the write lock if needed.

        A current store is only read, so opening a read-only store works.
        """
        if self.fast_path:
            version = self._run_sqlite(sqlite_ops.stored_version, False, True)
        else:
            from . import schema

            version = self._read(schema.stored_version)
        versions.check_supported(version)
        if version == versions.CURRENT_VERSION:
            return
        if version == 0 and not create:
            raise CryptokiError(CKR_DEVICE_ERROR, f"no store schema in {self.url!r}")
        if version == 0 and self.fast_path and self._path != sqlite.MEMORY:
            found = self._run_sqlite(sqlite_ops.create_schema, True)
            if found in (0, versions.CURRENT_VERSION):
                return
        from . import schema

        self._write(schema.upgrade)

    def _open_key_file(self, path: str) -> None:
        try:
            self._key_file = key_file_mod.load(path)
        except CryptokiError as exc:
            log.error("%s; logins on this store fail until it is fixed", exc)
            self._key_file_error = exc
            return
        kf = self._key_file
        ops = self._ops
        unbound = self._hot(ops.pin_params, False, True)
        if all(key_file_mod.PARAM in p for p in unbound):
            return
        try:
            n = self._hot(lambda c: ops.seal_pins(c, kf.wrap, key_file_mod.PARAM), True)
        except CryptokiError as exc:
            log.warning("PIN records not yet sealed under the key file %s: %s", path, exc)
            return
        log.info("%d PIN record(s) sealed under the store key file %s", n, path)
        self.scrub()  # the unsealed records must not linger in the WAL

    def bind_pin(self, rec: PinRecord) -> PinRecord:
        """The PIN record as stored: under the key file's layer when one is configured."""
        if self._key_file_error is not None:
            raise self._key_file_error
        return self._key_file.wrap(rec) if self._key_file is not None else rec

    def derive_from_key_file(self, info: bytes) -> bytes | None:
        """A key derived from the key file's (`KeyFile.derive`), None without a key file;
        the file's error (`CKR_DEVICE_ERROR`) when the configured one cannot be used."""
        if self._key_file_error is not None:
            raise self._key_file_error
        return self._key_file.derive(info) if self._key_file is not None else None

    def unbind_pin(self, rec: PinRecord) -> PinRecord:
        """The record with the key file's layer removed (C_Login, before the PIN is tried).

        `CKR_DEVICE_ERROR` when the record needs a key file this store cannot use: the right
        PIN must never look wrong, and nothing is counted as a failed login.
        """
        if key_file_mod.PARAM not in rec.params:
            return rec
        if self._key_file_error is not None:
            raise self._key_file_error
        if self._key_file is None:
            raise key_file_mod.KeyFileError(
                f"PIN record is sealed under a store key file (id {rec.params[key_file_mod.PARAM]}), "
                "and no [store] key_file is configured")
        return self._key_file.unwrap(rec)

    def probe(self) -> tuple[bool, str] | None:
        """`cryptoki-shim doctor`: a PostgreSQL server's version, round trip, TLS, standby
        and synchronous-replica settings, and whether writes can work; None on SQLite.
        Also opens the change listener (the signing path's check)."""
        if self._listener is None:
            return None
        self.data_version(exact=False)
        return pg.probe(self.engine)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for admin tools and tests; the core never needs it).
        On a SQLite store it is made here on first use (see the module doc)."""
        return self._core_engine()

    # -- transactions ------------------------------------------------------------------

    def _check_pid(self) -> None:
        if os.getpid() != self._pid:
            self.after_fork()

    def _run(self, fn: Callable[[Connection], T], write: bool) -> T:
        """Run `fn` in one transaction; wait out locks; map device failures to CKR_*."""
        return self._retrying(lambda: self._core_transaction(fn, write), write)

    def _run_sqlite(self, fn: Callable[[sqlite3.Connection], T], write: bool, snapshot: bool = False) -> T:
        """`_run` for the statements of `sqlite_ops` (SQLite stores only); `snapshot`: a
        read of several statements in one transaction."""
        return self._retrying(lambda: sqlite_ops.transaction(self._checkout, fn, write, snapshot), write)

    def _hot(self, fn: Callable[[Any], T], write: bool, snapshot: bool = False) -> T:
        """Run a function of `self._ops` (`sqlite_ops` or `core_ops`) in its transaction; a
        Core read is always one snapshot."""
        if self.fast_path:
            return self._run_sqlite(fn, write, snapshot)
        return self._run(fn, write)

    def _core_transaction(self, fn: Callable[[Connection], T], write: bool) -> tuple[T, int | None]:
        from sqlalchemy import select, update

        from .schema import generation

        written = None
        with sqlite.FORK_GUARD, self._core_engine().connect() as conn:
            if write:
                conn.execution_options(**{sqlite.BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                result = fn(conn)
                if write and self._listener is not None:  # one round trip, and the listeners told
                    written = int(conn.exec_driver_sql(pg.BUMP_SQL).first()[0])
                elif write:
                    conn.execute(update(generation).values(value=generation.c.value + 1))
                    written = int(conn.execute(select(generation.c.value)).scalar_one())
        return result, written

    def _retrying(self, transaction: Callable[[], tuple[T, int | None]], write: bool) -> T:
        """Run one transaction; wait out lock contention; map device failures to CKR_*."""
        self._check_pid()
        deadline: float | None = None
        delay = 0.002
        while True:
            try:
                result, written = transaction()
                if write:
                    self._tls.generation = written
                    with self._lock:
                        self._own_commits += 1
                return result
            except Exception as exc:
                verdict, orig = _classified(exc)
                if verdict is None:
                    if isinstance(exc, sqlite3.Error):  # the fast path's: raised as on Core
                        from sqlalchemy.exc import DBAPIError

                        raise DBAPIError.instance(None, None, exc, sqlite3.Error, hide_parameters=True) from exc
                    raise
                if verdict == RETRY:
                    now = time.monotonic()
                    deadline = deadline if deadline is not None else now + RETRY_FOR_S
                    if now < deadline:
                        time.sleep(delay * (0.5 + random.random()))
                        delay = min(delay * 2, 0.25)
                        continue
                    raise CryptokiError(
                        CKR_DEVICE_ERROR, f"store stayed locked for {RETRY_FOR_S:.0f} s"
                    ) from None
                what = "write" if write else "read"
                log.warning("store %s failed: %s", what, orig)
                raise CryptokiError(int(verdict), f"store {what} failed: {orig}") from None

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn, write=False)

    def _write(self, fn: Callable[[Connection], T]) -> T:
        return self._run(fn, write=True)

    # -- change detection --------------------------------------------------------------

    def data_version(self, exact: bool = True) -> int:
        """A number that changes whenever any connection or process committed to the store.

        Call it *before* reading: a commit landing between the two then shows as a change
        next time, never as a missed one. On SQLite it is `PRAGMA data_version` of one
        dedicated connection that never writes (so every commit, this process's included,
        is "another connection's"), combined with the count of this process's own commits;
        on PostgreSQL the `generation` row, or with `exact=False` (the use of a cached key)
        the highest generation the LISTEN connection was told of (`pg.py`: no SQL, and a
        commit elsewhere is seen once its notification arrived); elsewhere the `generation`
        row every write transaction bumps.
        """
        self._check_pid()
        if self._listener is not None:
            announced = None if exact else self._listener.latest()
            probe = announced if announced is not None else self._listener.generation()
            with self._lock:
                probe = self._pg_known = max(self._pg_known, probe)
        elif self._is_sqlite:
            probe = self._sqlite_data_version()
        else:
            probe = self._generation()
        with self._lock:
            key = (probe, self._own_commits)
            if key != self._dv_last:
                self._dv_last = key
                self._dv_counter += 1
            return self._dv_counter

    def _sqlite_data_version(self) -> int:
        if self._path == sqlite.MEMORY:
            return 0  # only this process can write it: the own-commit count is the signal
        with self._lock, sqlite.FORK_GUARD:
            try:
                if self._dv_conn is None:
                    self._dv_conn = sqlite.connect(self._path, immutable=self._immutable)
                return int(self._dv_conn.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error as exc:
                # Unknown is "changed": the caller re-reads, which is always correct.
                log.debug("PRAGMA data_version failed (%s): reporting a change", exc)
                verdict = classify_driver(exc)
                if verdict not in (None, RETRY) and self._dv_conn is not None:
                    self._dv_conn.close()
                    self._dv_conn = None
                return -(self._dv_counter + 1)

    def _generation(self) -> int:
        """The generation counter row (bumped by every write transaction); on PostgreSQL
        read on the change listener's own connection (one round trip, `pg.Listener`)."""
        self._check_pid()
        if self._listener is not None:
            return self._listener.generation()
        return self._hot(self._ops.read_generation, False)

    def generation(self) -> int:
        """The store's generation: +1 for every committed write transaction, by anyone."""
        return self._generation()

    def write_generation(self) -> int:
        """The generation the calling thread's last write transaction committed.

        A cache that was current at generation g and sees its own write commit g + 1 knows
        nobody else wrote in between (writes are serialized), so it need not reload.
        """
        return getattr(self._tls, "generation", -1)

    # -- tokens ------------------------------------------------------------------------

    def token(self, slot_id: int) -> TokenRecord | None:
        """The token in `slot_id`, or None if that slot's token was never initialised."""
        read_token = self._ops.read_token
        found = self._hot(lambda c: read_token(c, slot_id), False, True)
        if found is None:
            return None
        (slot, label, serial, created_at, meta), by_type = found
        return TokenRecord(
            slot_id=slot, label=bytes(label), serial=serial,
            so_pin=by_type.get(CKU_SO), user_pin=by_type.get(CKU_USER),
            created_at=created_at, meta=dict(meta),
        )

    def init_token(self, rec: TokenRecord) -> None:
        """C_InitToken: replace the token record and destroy all its objects, atomically.

        Either the old token with all its objects survives, or the new empty token exists;
        another process never sees a new token next to old objects.
        """
        self.replace_token(rec, ())

    def replace_token(self, rec: TokenRecord, objs: Iterable[ObjectRecord]) -> None:
        """The slot's token, PIN records and objects replaced by `rec` and `objs` in one write
        transaction (`cryptoki-shim restore`; `init_token` with no objects): a reader sees
        the old token or the new one, never a mix. PIN records keep their failure counts
        and are sealed under the key file (`bind_pin`); objects keep their unique ids and
        get new oids (each `oid` set). A repeated unique id is a caller bug
        (IntegrityError, nothing written)."""
        bound = {u: self.bind_pin(p) for u, p in ((CKU_SO, rec.so_pin), (CKU_USER, rec.user_pin)) if p is not None}
        items = [(o, _attribute_tuples(o.attrs, o.sealed)) for o in objs]
        replace = self._ops.replace_token
        self._hot(lambda c: replace(c, rec, bound, items), True)

    def update_token(self, slot_id: int, **fields: Any) -> None:
        """Change `label`, `serial`, `meta`, `so_pin` or `user_pin` (None removes a PIN).

        KeyError if the slot has no token; TypeError for any other field.
        """
        unknown = set(fields) - _TOKEN_FIELDS
        if unknown:
            raise TypeError(f"update_token: unknown fields {sorted(unknown)}")
        columns = {k: v for k, v in fields.items() if k not in _PIN_FIELDS}
        fields = {k: (self.bind_pin(v) if k in _PIN_FIELDS and v is not None else v) for k, v in fields.items()}
        pin_fields = {u: fields[name] for name, u in _PIN_FIELDS.items() if name in fields}
        update = self._ops.update_token
        self._hot(lambda c: update(c, slot_id, columns, pin_fields), True)

    def replace_pin(self, slot_id: int, user_type: int, expected: bytes, rec: PinRecord) -> bool:
        """Replace a PIN record by another for the same PIN (a new outer layer), only if the
        stored one is still `expected` (its `wrapped_key`): a C_SetPIN that landed meanwhile
        must not be undone. The failure count is kept. True if replaced."""
        stored = self.bind_pin(rec)
        replace = self._ops.replace_pin
        return self._hot(lambda c: replace(c, slot_id, user_type, expected, stored), True)

    def reserve_login(self, slot_id: int, user_type: int, *, limit: int | None = None,
                      wrapped_key: bytes | None = None) -> int | None:
        """Count one PIN attempt *before* the PIN is tried: the new failure count, or None if
        the count had already reached `limit` (the PIN is locked: nothing may be tried).

        One conditional UPDATE, atomic across threads and processes (a row lock on
        PostgreSQL, the write lock on SQLite), so parallel guessers can never get more than
        `limit` guesses evaluated between them (issue 15 item 3). The caller settles
        afterwards: a right PIN calls `login_succeeded` with the returned count; a wrong
        one leaves it counted; a crash in between also leaves it counted (the safe side).
        `wrapped_key` is the stored record the caller is about to try: KeyError if the PIN
        is not set or was replaced meanwhile (C_SetPIN, C_InitToken elsewhere), so the
        attempt is never counted against one record and evaluated against another.
        `limit=None` counts without a limit, `wrapped_key=None` whatever the record (store
        tests, admin tools).
        """
        reserve = self._ops.reserve_login
        return self._hot(lambda c: reserve(c, slot_id, user_type, limit, wrapped_key), True)

    def login_succeeded(self, slot_id: int, user_type: int, reserved: int | None = None,
                        wrapped_key: bytes | None = None) -> None:
        """Settle a right PIN: clear the failures counted before it and its own reservation
        (`reserved`, what `reserve_login` returned); attempts that began after it stay counted,
        as they would have in sequence. None resets the counter to 0. With `wrapped_key`, only
        if that record is still the stored one (a replaced record has its own count)."""
        succeeded = self._ops.login_succeeded
        self._hot(lambda c: succeeded(c, slot_id, user_type, reserved, wrapped_key), True)

    # -- objects -----------------------------------------------------------------------

    def objects(self, slot_id: int) -> list[ObjectRecord]:
        """All token objects of the slot, in creation order, from one snapshot."""
        read_objects = self._ops.read_objects
        return _object_records(self._hot(lambda c: read_objects(c, slot_id), False, True))

    def add_object(self, slot_id: int, rec: ObjectRecord) -> int:
        """Store a new object of the slot's token; returns (and sets `rec.oid` to) its oid.

        A slot without a token or a `unique_id` already used in the token is a caller bug:
        SQLAlchemy's IntegrityError propagates (not a device condition).
        """
        rows = _attribute_tuples(rec.attrs, rec.sealed)
        add = self._ops.add_object
        rec.oid = self._hot(lambda c: add(c, slot_id, rec.unique_id, rows), True)
        return rec.oid

    def update_object(self, slot_id: int, oid: int, attrs: dict[int, bytes],
                      sealed: dict[int, bytes]) -> bool:
        """Replace all attributes of the object (C_SetAttributeValue); False if it is gone."""
        rows = _attribute_tuples(attrs, sealed)
        replace = self._ops.replace_attributes
        return self._hot(lambda c: replace(c, slot_id, oid, rows), True)

    def delete_object(self, slot_id: int, oid: int) -> bool:
        """Destroy the object (C_DestroyObject); False if it was already gone."""
        delete_ = self._ops.delete_object
        return self._hot(lambda c: delete_(c, slot_id, oid), True)

    def scrub(self) -> None:
        """Leave no old page images behind: after rows that held plaintext were rewritten or
        deleted (`secure_delete` zeroes them in the new page versions), the WAL still keeps
        the old versions until a checkpoint. `wal_checkpoint(TRUNCATE)` copies the current
        pages into the database and cuts the WAL to zero bytes. Best effort: a reader that
        holds an old snapshot makes it give up after the busy timeout (logged)."""
        if not self._is_sqlite or self._path == sqlite.MEMORY or self._immutable:
            return
        self._check_pid()
        with sqlite.FORK_GUARD:
            conn, checkin = self._checkout()
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.Error as exc:
                busy = exc
            finally:
                checkin()
        if busy:
            log.warning("store %s: WAL checkpoint incomplete (%s); old pages stay until the next one", self._path, busy)

    # -- process life ------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: forget the parent's connections without closing them.

        SQLite forbids using a connection across fork(), and closing the child's copy could
        checkpoint or unlock under the parent; the copies are kept referenced forever
        (`_ABANDONED`) and new connections are made on demand. The lock is replaced too:
        another parent thread may have held it at the fork.
        """
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()
        self._tls = threading.local()
        self._pid = os.getpid()
        if self._dv_conn is not None:
            _ABANDONED.append(self._dv_conn)
            self._dv_conn = None
        if self._path != sqlite.MEMORY:
            if self._pool is not None:
                _ABANDONED.append((self._pool, self._pool.abandon()))
                self._pool = sqlite.Pool(self._path, self._immutable, retired=self._pool.retired)
            if self._engine is not None:
                _ABANDONED.append(self._engine.pool)
                self._engine.dispose(close=False)
            if self._listener is not None:
                _ABANDONED.append(self._listener.abandon())

    def close(self) -> None:
        """Close every connection (C_Finalize)."""
        with self._lock, sqlite.FORK_GUARD:
            if self._dv_conn is not None:
                self._dv_conn.close()
                self._dv_conn = None
            if self._pool is not None:
                self._pool.close()
            if self._engine is not None:
                self._engine.dispose()
            if self._listener is not None:
                self._listener.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _classified(exc: Exception) -> tuple[int | str | None, BaseException | None]:
    """The verdict on a store exception (`failures`) and the driver's exception: a raw
    `sqlite3.Error` (the fast path) or SQLAlchemy's `DBAPIError` (only if SQLAlchemy was
    imported: nothing else can have raised one)."""
    if isinstance(exc, sqlite3.Error):
        return classify_sqlite(exc), exc
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        return classify(exc), exc.orig
    return None, None


def _object_records(rows: Iterable[Any]) -> list[ObjectRecord]:
    """ObjectRecords from (oid, unique_id, type, value, is_sealed) rows ordered by oid (a
    LEFT JOIN: an object without attributes has one row of NULLs)."""
    result: list[ObjectRecord] = []
    current: ObjectRecord | None = None
    for oid, unique_id, attr_type, value, is_sealed in rows:
        if current is None or current.oid != oid:
            current = ObjectRecord(oid=oid, unique_id=unique_id)
            result.append(current)
        if attr_type is not None:
            (current.sealed if is_sealed else current.attrs)[attr_type] = bytes(value)
    return result


def _attribute_tuples(attrs: dict[int, bytes], sealed: dict[int, bytes]) -> list[tuple[int, bytes, int]]:
    """(type, value, is_sealed) rows of an object's attributes."""
    if sealed and not attrs.keys().isdisjoint(sealed):
        raise ValueError(f"attribute types both clear and sealed: {sorted(attrs.keys() & sealed.keys())}")
    return [(t, bytes(v), 0) for t, v in attrs.items()] + [(t, bytes(v), 1) for t, v in sealed.items()]
