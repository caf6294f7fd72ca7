"""PostgreSQL specifics of the store (issue 19): the engine, and change detection without SQL.

The store on PostgreSQL runs the `core_ops` statements through SQLAlchemy Core on psycopg 3
(`postgresql+psycopg://`). What differs from SQLite lives here:

* **The engine** (`make_engine`): `pool_pre_ping` (a connection the server dropped, by a
  restart or a failover, is replaced before use instead of failing a call), the connect
  timeout, and for TCP the keepalive and `tcp_user_timeout` settings that turn a server that
  stopped answering into an error within that timeout instead of a hang. The password and
  the TLS settings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) come from the
  configuration as libpq connection parameters, never from a log line: the URL may carry
  them too, and is only ever printed with SQLAlchemy's password masking (`safe_url`).

* **TLS on libpq's own OpenSSL, not the host's configuration** (`isolate_libpq_openssl`, issue
  25 applied to issue 19). The psycopg binary wheel carries libpq linked to its own libssl and
  libcrypto (`psycopg_binary.libs/libcrypto-<hash>.so.3`, OpenSSL 3), and libpq starts them
  with `OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG)` at the first TLS connection: the host
  process's `$OPENSSL_CONF` then decides our TLS. Seen with a C host: `default_properties =
  fips=yes` or `provider=nonexistent`, or an unavailable provider activated, made every TLS
  connection fail ("could not create SSL context: library has no ciphers"), and an `ssl_conf`
  section changed the handshake (MinProtocol, Groups). Before the first engine is made, that
  bundled libcrypto (found by path from the `psycopg_binary` package, never the system one)
  is initialised with `OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG)`: OpenSSL runs its
  configuration step once per process, so libpq's later request to load it does nothing and
  our TLS runs on OpenSSL's built-in defaults (libpq's `ssl_min_protocol_version` TLSv1.2).
  Not isolated: psycopg's pure-Python or C implementation on the system libpq
  (`PSYCOPG_IMPL`, or no binary wheel) uses the system libcrypto, which is the host's own
  library: that is left alone and logged; likewise when the host had imported psycopg before
  us (its copy, its configuration). The CA file is only ever the configured `sslrootcert`
  (`sslrootcert=system` reads OpenSSL's default paths and `SSL_CERT_FILE`/`SSL_CERT_DIR`).

* **Change detection**: both a generation row and LISTEN/NOTIFY. Every write transaction
  bumps the `generation` row and sends `pg_notify(<channel>, <new value>)` in the same
  statement (delivered at commit, dropped on rollback). Object management calls
  (C_FindObjectsInit, C_GetAttributeValue, C_CreateObject, C_Login ...) read the generation
  row on the listener's own connection: exact, one round trip, so a commit on another host
  is seen by the next such call.
  The use of a cached key (C_SignInit, C_VerifyInit, C_EncryptInit ..., `Store.data_version
  (exact=False)`) reads no row: each process keeps one extra connection that `LISTEN`s on
  the channel (`Listener`), and the check drains its socket without blocking (libpq's
  `PQconsumeInput` + `PQnotifies`: a `recv()`, no query, no round trip), taking the highest
  generation announced. A notification arrives right after the other host's commit (well
  under a millisecond on one LAN), so a key destroyed on host A can still be used on host B
  in that window, and never after; reading the row on every C_SignInit would cost a network
  round trip per signature for that window. A listener (re)connected (server restart,
  failover) knows nothing yet: that check reads the row once. While no listener can be
  made the check fails with CKR_DEVICE_ERROR: a cached key is not used while the store
  cannot say whether it still exists.
"""

from __future__ import annotations

import logging
import select
import threading
from typing import TYPE_CHECKING, Any

from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

log = logging.getLogger(__name__)

#: The notification channel of a store: per schema (LISTEN/NOTIFY is per database, and two
#: stores may share one in two schemas), of fixed length (a channel name is an identifier:
#: at most 63 bytes), computed by the server on both sides.
CHANNEL_SQL = "'cryptoki_shim.' || md5(current_schema())"

#: One round trip for a write transaction's end: the generation bumped, its new value read,
#: and the change announced to every listener at commit.
BUMP_SQL = f"UPDATE generation SET value = value + 1 RETURNING value, pg_notify({CHANNEL_SQL}, value::text)"

#: The default of `[store] connect_timeout` (seconds).
DEFAULT_CONNECT_TIMEOUT = 5

#: How long one statement waits for a row lock another transaction holds (the twin of
#: SQLite's busy timeout): then SQLSTATE 55P03, which `Store` retries with back-off for up to
#: `store.RETRY_FOR_S` before CKR_DEVICE_ERROR. A host that died holding a lock cannot make
#: the others wait for ever (the server ends its session when TCP notices, and this bounds
#: the wait until then).
LOCK_TIMEOUT_S = 10.0


def is_postgresql(url: URL) -> bool:
    return url.get_backend_name() == "postgresql"


def safe_url(url: URL | str) -> str:
    """The URL as it may be logged or printed: any password masked."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True) if isinstance(url, str) else \
            url.render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: print nothing of it
        return "<unparsable store URL>"


def connect_args(url: URL, options: dict[str, Any], timeout: int) -> dict[str, Any]:
    """libpq parameters for every connection: the configured ones (`options`, which win over
    the URL's query), the connect timeout, and on TCP keepalives and tcp_user_timeout so a
    silent server fails a call after about `timeout` seconds (libpq's own minimum is 2)."""
    given = str(url.query.get("options", ""))  # the URL's own server options are kept
    args: dict[str, Any] = {"connect_timeout": max(2, int(timeout)),
                            "options": f"{given} -c lock_timeout={int(LOCK_TIMEOUT_S * 1000)}".strip()}
    host = str(url.query.get("host", url.host or ""))
    if host and not host.startswith("/"):
        args.update(keepalives=1, keepalives_idle=max(1, timeout), keepalives_interval=1,
                    keepalives_count=max(1, timeout), tcp_user_timeout=max(1, timeout) * 1000)
    args.update({k: v for k, v in options.items() if v not in (None, "")})
    return args


#: OpenSSL 3's OPENSSL_INIT_NO_LOAD_CONFIG (openssl/crypto.h).
_OPENSSL_INIT_NO_LOAD_CONFIG = 0x80
#: What `isolate_libpq_openssl` found, once per process: None until it ran.
_isolation: str | None = None
_isolation_lock = threading.Lock()


def _bundled_libcrypto() -> str | None:
    """The libcrypto the psycopg binary wheel bundles (next to its package), or None."""
    import glob
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("psycopg_binary")
    if spec is None or not spec.origin:
        return None
    found = sorted(glob.glob(str(Path(spec.origin).parent.parent / "psycopg_binary.libs" / "libcrypto-*.so*")))
    return found[0] if len(found) == 1 else None


def isolate_libpq_openssl() -> str:
    """Keep the host's OpenSSL configuration out of libpq's TLS (the module docstring); once
    per process, before psycopg's first connection. What was done, for the log."""
    global _isolation
    with _isolation_lock:
        if _isolation is None:
            _isolation = _isolate()
            log.debug("PostgreSQL TLS: %s", _isolation)
        return _isolation


def _isolate() -> str:
    import ctypes
    import sys

    if "psycopg" in sys.modules:  # the host's (or an earlier user's): its OpenSSL start-up is its own
        return "psycopg was imported before the store: its libpq reads the process's OpenSSL configuration"
    try:
        import psycopg
    except ImportError:  # create_engine says so, as without this step
        return "psycopg is not installed"

    impl = psycopg.pq.__impl__
    path = _bundled_libcrypto() if impl == "binary" else None
    if path is None:
        log.warning("PostgreSQL TLS uses the system libpq (psycopg %s implementation): the host's OpenSSL "
                    "configuration (OPENSSL_CONF) applies to the store's TLS connections", impl)
        return f"system libpq ({impl}): host OpenSSL configuration applies"
    lib = ctypes.CDLL(path)  # the copy psycopg_binary's libpq already mapped (same file: same handle)
    lib.OPENSSL_init_crypto.argtypes = [ctypes.c_uint64, ctypes.c_void_p]
    lib.OPENSSL_init_crypto.restype = ctypes.c_int
    if lib.OPENSSL_init_crypto(_OPENSSL_INIT_NO_LOAD_CONFIG, None) != 1:
        log.warning("PostgreSQL TLS: OPENSSL_init_crypto failed in %s: the host's OpenSSL configuration "
                    "may apply to the store's TLS connections", path)
        return f"OPENSSL_init_crypto failed in {path}"
    return f"libpq's bundled OpenSSL ({path}) started without a configuration file"


def make_engine(url: URL, args: dict[str, Any]) -> Engine:
    """The store's engine; `args` from `connect_args`. Its TLS first isolated from the host's
    OpenSSL configuration (`isolate_libpq_openssl`)."""
    from sqlalchemy import create_engine

    isolate_libpq_openssl()

    return create_engine(url, pool_pre_ping=True, hide_parameters=True, connect_args=args)


def probe(engine: Engine) -> tuple[bool, str]:
    """`cryptoki-shim doctor`'s look at the server: (usable for writes, what it found)."""
    import time

    from sqlalchemy import text

    t0 = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        rtt_ms = (time.perf_counter() - t0) * 1e3
        version, standby, ssl, sync = conn.execute(text(
            "SELECT current_setting('server_version'), pg_is_in_recovery(), "
            "coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false), "
            "current_setting('synchronous_standby_names')")).one()
    parts = [f"PostgreSQL {version}", f"connect+query {rtt_ms:.1f} ms", "TLS" if ssl else "no TLS",
             f"synchronous_standby_names={sync!r}" if sync else "no synchronous standby (docs/ha.md)"]
    if standby:
        parts.append("a standby in recovery: every write fails (point [store] url at the primary)")
    return not standby, "; ".join(parts)


#: libpq's CONNECTION_OK (psycopg.pq.ConnStatus.OK), without importing psycopg for it.
_CONNECTION_OK = 0


class Listener:
    """One connection of a process for change detection: it LISTENs on the store's channel, answers
    the exact generation read (`generation`: one round trip on a connection of its own,
    autocommit, no pool check-out and no pre-ping), and is drained without blocking by
    `latest` (no round trip at all)."""

    def __init__(self, engine: Engine, args: dict[str, Any]) -> None:
        self._engine = engine
        self._args = args  # `connect_args`: the engine keeps them in its pool's creator only
        self._lock = threading.Lock()
        self._conn: Any = None
        self._latest = -1  # the highest generation read or announced since the connection was made

    def _connect(self) -> Any:
        import psycopg

        cargs, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
        try:
            conn = psycopg.connect(*cargs, **{**kwargs, **self._args, "autocommit": True})
            # Notifications psycopg itself reads while a statement runs reach us here.
            conn.add_notify_handler(lambda n: self._announced(n.payload))
            from psycopg import sql

            channel = str(conn.execute(f"SELECT {CHANNEL_SQL}").fetchone()[0])  # type: ignore[index]
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except Exception as exc:
            log.warning("store change listener cannot connect: %s", exc)
            raise CryptokiError(CKR_DEVICE_ERROR, f"store unreachable: {exc}") from None
        self._conn, self._latest = conn, -1
        return conn

    def _announced(self, payload: str) -> None:
        try:
            self._latest = max(self._latest, int(payload))
        except ValueError:  # not ours (someone NOTIFYing on the channel by hand)
            pass

    def _drain(self, conn: Any) -> None:
        """Read what the socket holds, without blocking: notifications, or the end of a
        connection the server closed (ConnectionError)."""
        pgconn = conn.pgconn
        # Until the socket has nothing more: a server that shuts down sends a notice and then
        # closes, and only the read after the notice sees the end.
        for _ in range(8):
            pgconn.consume_input()
            if pgconn.status != _CONNECTION_OK:
                raise ConnectionError(pgconn.error_message.decode(errors="replace").strip() or "closed")
            while (n := pgconn.notifies()) is not None:
                self._announced(n.extra.decode(errors="replace"))
            if not select.select([pgconn.socket], [], [], 0)[0]:
                break

    def latest(self) -> int | None:
        """The highest generation read or announced since the listener connected; None if
        nothing is known since it (re)connected (the caller reads the row: commits meanwhile
        were announced to nobody); CKR_DEVICE_ERROR when no connection can be made."""
        with self._lock:
            conn = self._conn
            if conn is not None:
                try:
                    self._drain(conn)
                    return self._latest if self._latest >= 0 else None
                except Exception as exc:
                    log.warning("store change listener lost (%s): reconnecting", exc)
                    self._drop()
            self._connect()
            return None

    def generation(self) -> int:
        """The generation row, read now (exact). A connection found dead is replaced once
        (a read is safe to repeat); CKR_DEVICE_ERROR if that fails too."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._conn if self._conn is not None else self._connect()
                try:
                    value = int(conn.execute("SELECT value FROM generation").fetchone()[0])
                    self._drain(conn)
                except Exception as exc:
                    self._drop()
                    if attempt == 2:
                        log.warning("store generation read failed: %s", exc)
                        raise CryptokiError(CKR_DEVICE_ERROR, f"store read failed: {exc}") from None
                    continue
                self._latest = max(self._latest, value)
                return value
            raise AssertionError("unreachable")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing to tell the server
                pass

    def abandon(self) -> Any:
        """In a forked child: forget the parent's connection without closing it (closing
        would send the server a Terminate on the parent's socket); returned for keeping."""
        conn, self._conn = self._conn, None
        self._lock = threading.Lock()
        return conn

    def close(self) -> None:
        with self._lock:
            self._drop()
