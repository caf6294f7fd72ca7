"""A throwaway PostgreSQL cluster for the tests (issue 19 item 4): no mocks, a real server.

`Cluster` runs Debian's `initdb` and `pg_ctl` (/usr/lib/postgresql/<ver>/bin, installed by
`./run`) on a private directory: the data directory, a Unix socket directory and the log,
owned by the unprivileged `postgres` user when the tests run as root (PostgreSQL refuses to
run as root). It listens on its private socket and on a free loopback port (the password and
TLS tests need TCP). Durability settings that cost time without protecting anything a test
checks are off (`fsync`: the OS keeps what the server wrote, and the fault tests kill the
server, never the machine); `synchronous_commit` stays on, so a commit acknowledged to the
client survives `pg_ctl stop -m immediate`.

A missing PostgreSQL is a failure, not a skip: `./run` installs it, and a suite that silently
skipped the store's PostgreSQL half would prove nothing about it.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: The superuser the cluster is created with (trusted on the socket and on loopback).
SUPERUSER = "shim"
#: The database holding the per-test schemas (`Cluster.new_schema`), and their prefix.
SCHEMAS_DB = "shim_tests"
SCHEMA_PREFIX = "s_"
#: A role that must give a password (scram-sha-256 on loopback): the `*_file` / ${ENV} tests.
PASSWORD_ROLE = "shim_pw"


def bin_dir() -> Path:
    """The newest installed server's bin directory; AssertionError if none (not a skip)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    assert found, "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run ./run, or apt-get install postgresql"
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One cluster: `start()`, `new_schema()` per test (`new_database()` where a test changes
    database-wide settings), `stop()`/`start()` for the fault tests."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="shim-pg-"))
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "server.log"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._user: str | None = None
        self.ca_file: Path | None = None  # `enable_tls()`: the CA of the server's certificate
        if os.geteuid() == 0:  # the server refuses root: run it as postgres (or nobody)
            for name in ("postgres", "nobody"):
                try:
                    pw = pwd.getpwnam(name)
                except KeyError:
                    continue
                self._user = name
                self.sock.mkdir()
                for p in (self.base, self.sock):
                    os.chown(p, pw.pw_uid, pw.pw_gid)
                break
            assert self._user, "running as root and no 'postgres' or 'nobody' user to run the server as"
        else:
            self.sock.mkdir()
        self.base.chmod(0o755)  # the socket must be reachable by the tests' processes
        self.sock.chmod(0o755)

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / args[0]), *args[1:]], user=self._user, capture_output=True,
                              text=True, check=check, timeout=timeout, cwd=self.base)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "--no-sync",
                  "--no-instructions", "-E", "UTF8", "--locale=C")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n")

    def enable_tls(self) -> Path:
        """ssl=on with a fresh test CA and a server certificate for 127.0.0.1
        (`tls_certificates`), written into the data directory before `start()`; the CA's PEM
        file (`ca_file`)."""
        ca, cert, key = tls_certificates()
        (self.data / "server.crt").write_bytes(cert)
        (self.data / "server.key").write_bytes(key)
        (self.data / "server.key").chmod(0o600)  # the server refuses a key readable by others
        if self._user:
            pw = pwd.getpwnam(self._user)
            for f in ("server.crt", "server.key"):
                os.chown(self.data / f, pw.pw_uid, pw.pw_gid)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlog_connections = on\n")
        self.ca_file = self.base / "ca.pem"
        self.ca_file.write_bytes(ca)
        return self.ca_file

    def start(self) -> None:
        opts = (f"-k {self.sock} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB "
                "-c log_min_messages=warning")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast` (clean: open connections are cut) or `immediate` (a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", mode, "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str, *, user: str = SUPERUSER, tcp: bool = False) -> str:
        """A SQLAlchemy URL of `database` (or of a `new_schema()` name: the tests' database
        with that schema as search_path) on the socket (default) or on loopback."""
        query = []
        if database.startswith(SCHEMA_PREFIX):
            query.append(f"options=-csearch_path%3D{database}")
            database = SCHEMAS_DB
        if tcp:
            return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}" + "".join(f"?{q}" for q in query)
        query[:0] = [f"host={self.sock}", f"port={self.port}"]
        return f"postgresql+psycopg://{user}@/{database}?" + "&".join(query)

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string of `database` (or of a `new_schema()` name)."""
        if database.startswith(SCHEMA_PREFIX):
            return f"host={self.sock} port={self.port} user={SUPERUSER} dbname={SCHEMAS_DB} " \
                   f"options='-c search_path={database}'"
        return f"host={self.sock} port={self.port} user={SUPERUSER} dbname={database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """Run one statement as the superuser (autocommit); its rows."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def sql_fails(self) -> bool:
        """True if the server does not answer (stopped by a fault test)."""
        try:
            self.sql("SELECT 1")
            return False
        except Exception:
            return True

    def files_of(self, database: str) -> bytes:
        """What the server wrote of `database` (or of a `new_schema()`) to disk, after a
        CHECKPOINT: its tables' and indexes' files (TOAST included) and the newest WAL
        segments (where this test's writes are), for the tests that look for plaintext at
        rest."""
        self.sql("CHECKPOINT")
        if database.startswith(SCHEMA_PREFIX):
            paths = self.sql("SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n "
                             f"ON n.oid = c.relnamespace WHERE n.nspname IN ('{database}', 'pg_toast') "
                             "AND pg_relation_filepath(c.oid) IS NOT NULL", SCHEMAS_DB)
            heap = sorted(p for (rel,) in paths for p in self.data.glob(f"{rel}*") if p.is_file())
        else:
            [(oid,)] = self.sql(f"SELECT oid FROM pg_database WHERE datname = '{database}'")
            heap = sorted(p for p in (self.data / "base" / str(oid)).iterdir() if p.is_file())
        wal = sorted((p for p in (self.data / "pg_wal").iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        return b"".join(p.read_bytes() for p in [*heap, *wal[-2:]])

    def new_schema(self) -> str:
        """A fresh empty schema of the tests' database (cheaper than a database: no copy of
        template1); its name, which `url`, `dsn` and `files_of` take like a database's."""
        name = f"{SCHEMA_PREFIX}{next(self._names)}"
        self.sql(f"CREATE SCHEMA {name}", SCHEMAS_DB)
        return name

    def new_database(self) -> str:
        """A fresh empty database; its name."""
        name = f"t{next(self._names)}"
        self.sql(f"CREATE DATABASE {name}")
        return name


def tls_certificates(ca_name: str = "shim test CA") -> tuple[bytes, bytes, bytes]:
    """A fresh test CA (`ca_name`) and a server certificate for 127.0.0.1 (in its SAN) signed by it, all
    P-256 (pyca): (CA PEM, server certificate PEM, server key PEM, unencrypted PKCS#8)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))
    ca = (builder.subject_name(name(ca_name)).issuer_name(name(ca_name)).public_key(ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    server = (builder.subject_name(name("127.0.0.1")).issuer_name(ca.subject).public_key(server_key.public_key())
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False).sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), server.public_bytes(pem),
            server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


#: The session's cluster once started (tests/store/conftest.py), for helpers that get a URL.
ACTIVE: Cluster | None = None


def database_of(url: str) -> str:
    """The database (or `new_schema()`) name of one of `Cluster.url`'s URLs."""
    if "search_path%3D" in url:
        return url.split("search_path%3D")[1].split("&")[0]
    return url.split("/")[3].split("?")[0]


def start_cluster(*, tls: bool = False) -> Cluster:
    """A started cluster (`tls`: with `Cluster.enable_tls()`, for the TLS tests' own cluster)."""
    c = Cluster()
    try:
        c.init()
        if tls:
            c.enable_tls()
        c.start()
        c.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD 'pw-of-the-tests'")
        c.sql(f"CREATE DATABASE {SCHEMAS_DB}")
    except BaseException:
        log = c.log.read_text() if c.log.exists() else ""
        c.destroy()
        raise AssertionError(f"cannot start the test PostgreSQL cluster: {log[-2000:]}") from None
    return c
