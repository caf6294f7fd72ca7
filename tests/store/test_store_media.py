"""What reaches the disk, and what happens when the disk refuses writes.

Tests run as root, which `chmod` does not stop, so read-only and full media are real
filesystems: a tmpfs remounted read-only, a read-only bind mount of the database file, a
tmpfs filled to the last byte. Where mounting is not permitted these tests skip, and
`test_page_limit_is_device_memory` still covers "full" through SQLite's own
`PRAGMA max_page_count` limit (SQLITE_FULL, the same error a full disk gives).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import event
import pg
from store_helpers import SQLITE_ONLY, make_token, remount, sample_object, tmpfs

from cryptoki_shim import spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.store import CKU_USER, ObjectRecord, Store, attribute_aad, seal, unseal

SECRET = bytes(range(0x41, 0x61))  # a known 32-byte key value
MARKER = b"public-marker-6b1f0c2d9e8a7f35"


def raw_bytes(db: Path) -> bytes:
    """The database file and its -wal and -shm companions, as found on disk."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"))
                    if p.exists())


def sealed_object(token_key: bytes, serial: str, unique_id: str = "k1") -> ObjectRecord:
    return ObjectRecord(None, unique_id, {3: MARKER},
                        {0x11: seal(token_key, attribute_aad(serial, unique_id, 0x11), SECRET)})


def expect_ckr(ckrs: tuple[int, ...], fn, *args) -> None:
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr in ckrs, hex(exc.value.ckr)
    assert "locked" not in str(exc.value)


# -- confidentiality ---------------------------------------------------------------------


def _pg_files(request: pytest.FixtureRequest, db_url: str) -> bytes:
    """A PostgreSQL database's files and the newest WAL, as the server wrote them."""
    return request.getfixturevalue("pg_cluster").files_of(pg.database_of(db_url))


def test_sealed_secret_never_on_disk(store: Store, db_url: str, token_key: bytes, backend: str,
                                     request: pytest.FixtureRequest) -> None:
    """The sealed value reaches the medium only sealed: the SQLite files, or on PostgreSQL
    the database's heap files and the cluster's WAL."""
    db = Path(db_url.removeprefix("sqlite:///"))
    files = (lambda: _pg_files(request, db_url)) if backend == "pg" else (lambda: raw_bytes(db))
    serial = store.token(1).serial
    store.add_object(1, sealed_object(token_key, serial))
    while_open = files()
    assert MARKER in while_open  # the read really sees what was written
    assert SECRET not in while_open
    (obj,) = store.objects(1)
    assert unseal(token_key, attribute_aad(serial, "k1", 0x11), obj.sealed[0x11]) == SECRET
    store.close()
    after_close = files()
    assert MARKER in after_close and SECRET not in after_close


@SQLITE_ONLY
def test_destroyed_objects_leave_no_trace(db_url: str, token_key: bytes) -> None:
    """secure_delete: a destroyed object's public values are zeroed in the file. PostgreSQL
    has no such thing (a deleted row stays in the heap until VACUUM and in the WAL archive):
    docs/ha.md says what that means for public values (sealed ones are sealed anyway)."""
    db = Path(db_url.removeprefix("sqlite:///"))
    with Store(db_url) as s:
        s.init_token(make_token(1, token_key))
        oid = s.add_object(1, sealed_object(token_key, "0123456789abcdef"))
        s.add_object(1, sample_object("other"))
    assert MARKER in raw_bytes(db)
    with Store(db_url) as s:
        assert s.delete_object(1, oid)
    assert MARKER not in raw_bytes(db)


# -- read-only media -------------------------------------------------------------------------


def _populate(url: str, token_key: bytes) -> int:
    with Store(url) as s:
        s.init_token(make_token(1, token_key))
        return s.add_object(1, sample_object("u1"))


def _writes_fail_reads_work(s: Store, oid: int, token_key: bytes) -> None:
    v = s.data_version()
    assert [o.oid for o in s.objects(1)] == [oid]
    assert s.token(1).serial == "0123456789abcdef"
    ro = (spec.CKR_DEVICE_ERROR, spec.CKR_DEVICE_MEMORY)
    expect_ckr(ro, s.add_object, 1, sample_object("u2"))
    expect_ckr(ro, s.reserve_login, 1, CKU_USER)
    expect_ckr(ro, s.delete_object, 1, oid)
    expect_ckr(ro, s.init_token, make_token(1, token_key))
    assert [o.oid for o in s.objects(1)] == [oid]  # reads still work after failed writes
    assert s.data_version() == v


def test_read_only_directory(token_key: bytes) -> None:
    with tmpfs("4m") as d:
        url = f"sqlite:///{d / 'tokens.db'}"
        oid = _populate(url, token_key)
        remount(d, "ro")
        with Store(url) as s:
            _writes_fail_reads_work(s, oid, token_key)


def test_read_only_file(tmp_path: Path, token_key: bytes) -> None:
    """The database file itself read-only (bind mount), its directory writable."""
    db = tmp_path / "tokens.db"
    url = f"sqlite:///{db}"
    oid = _populate(url, token_key)
    bind = subprocess.run(["mount", "--bind", str(db), str(db)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(db)], check=True)
        with pytest.raises(OSError) as exc:  # root really cannot write it
            open(db, "r+b").close()
        assert exc.value.errno == errno.EROFS
        with Store(url) as s:
            _writes_fail_reads_work(s, oid, token_key)
    finally:
        subprocess.run(["umount", str(db)], check=False)


def test_missing_store_on_read_only_media_is_device_error() -> None:
    with tmpfs("1m") as d:
        remount(d, "ro")
        expect_ckr((spec.CKR_DEVICE_ERROR,), Store, f"sqlite:///{d / 'tokens.db'}")


# -- full media ---------------------------------------------------------------------------------


def _fill(d: Path) -> Path:
    filler = d / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    assert os.statvfs(d).f_bavail == 0
    return filler


def test_full_disk_is_device_memory(token_key: bytes) -> None:
    with tmpfs("1m") as d:
        url = f"sqlite:///{d / 'tokens.db'}"
        with Store(url) as s:
            s.init_token(make_token(1, token_key))
            oid = s.add_object(1, sample_object("u1"))
            filler = _fill(d)
            big = ObjectRecord(None, "big", {0x11: os.urandom(256 * 1024)})
            expect_ckr((spec.CKR_DEVICE_MEMORY,), s.add_object, 1, big)
            assert [o.oid for o in s.objects(1)] == [oid]
            assert s.token(1) is not None
            filler.unlink()  # space again: the same store writes again
            s.add_object(1, big)
            assert len(s.objects(1)) == 2


@SQLITE_ONLY
def test_page_limit_is_device_memory(store: Store) -> None:
    """SQLITE_FULL without a special filesystem: cap the file at its current size."""

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_conn, _record) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    store.engine.dispose()
    oid = store.add_object(1, sample_object("small"))  # fits in free space of existing pages
    expect_ckr((spec.CKR_DEVICE_MEMORY,), store.add_object, 1,
               ObjectRecord(None, "big", {0x11: os.urandom(64 * 1024)}))
    assert [o.oid for o in store.objects(1)] == [oid]
