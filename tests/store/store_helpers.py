"""Helpers shared by the store tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from cryptoki_shim.store import ObjectRecord, TokenRecord, make_pin_record

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("store_worker.py")


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
