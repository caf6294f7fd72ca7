"""Helpers shared by the store tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from cryptoki_shim.store import ObjectRecord, TokenRecord, make_pin_record

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("store_worker.py")

#: For a test about SQLite's own machinery (its files, pragmas, lock and busy handling): the
#: two SQLite backends only. Its PostgreSQL counterpart, where one exists, is named in the
#: test's docstring (mostly tests/store/test_store_pg.py).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite_ops", "core"], indirect=True)


def query(url: str, *statements: str, **params: Any) -> Any:
    """Statements in one transaction on the store's database from outside the store (as an
    administrator or an attacker with database access would): the last one's rows, or its
    row count if it is a write."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for sql in statements:
                result = conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else result.rowcount
    finally:
        engine.dispose()


def make_token(slot_id: int, token_key: bytes, serial: str = "0123456789abcdef") -> TokenRecord:
    return TokenRecord(
        slot_id=slot_id,
        label=b"test token".ljust(32),
        serial=serial,
        so_pin=make_pin_record(b"so-pin", token_key, cost="test"),
        user_pin=make_pin_record(b"1234", token_key, cost="test"),
    )


def sample_object(unique_id: str, n: int = 0) -> ObjectRecord:
    return ObjectRecord(None, unique_id, {0: b"\x04" + bytes(7), 3: f"label {n}".encode()},
                        {0x11: b"sealed-bytes-%d" % n})


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size`; skips the test where mounting is not permitted.

    Tests run as root, whom chmod does not stop: only a read-only or full *filesystem*
    makes SQLite's writes really fail.
    """
    d = Path(tempfile.mkdtemp(prefix="store-tmpfs-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
        d.rmdir()


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True,
                   capture_output=True)
