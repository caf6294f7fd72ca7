"""Crash consistency: SIGKILL in the middle of writes, full and read-only media.

A child creates token objects in a loop and reports each index whose C_CreateObject
returned CKR_OK; it is killed with SIGKILL at a random moment, ``KILLS`` times. After each
kill the store must open (SQLite ``integrity_check`` and C_Initialize), every reported
object must be present exactly once with its exact value, and no other object may be
visible except at most the one whose creation was in flight (committed, not yet reported).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_writer import expected_value
from p11 import P11, SO_PIN, USER_PIN, P11Error, write_config

from cryptoki_shim import spec

WRITER = Path(__file__).resolve().parent / "crash_writer.py"
KILLS = int(os.environ.get("CRYPTOKI_SHIM_KILLS", "50"))
STATS = {"kills": 0, "committed": 0, "lost": 0, "duplicated": 0, "half_written": 0}


def _label_index(label: bytes) -> int | None:
    if not label.startswith(b"crash-"):
        return None
    return int(label[6:])


def survey(p11: P11) -> dict[int, list[bytes]]:
    """index -> the values of every object labelled crash-<index> (through the .so)."""
    s = p11.open(0)
    p11.login(s, USER_PIN)
    out: dict[int, list[bytes]] = {}
    for h in p11.find(s, {spec.CKA_TOKEN: True}):
        label = p11.get(s, h, spec.CKA_LABEL)
        i = _label_index(label)
        if i is not None:
            out.setdefault(i, []).append(p11.get(s, h, spec.CKA_VALUE))
    p11.close(s)
    return out


def run_writer(env: dict[str, str], first: int, rng: random.Random) -> list[int]:
    """Start the writer, let it commit for a random while, SIGKILL it; the reported indices."""
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, str(WRITER), str(w), str(first)], pass_fds=(w,), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    buf = b""
    deadline = None
    try:
        while True:
            timeout = 30.0 if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([r], [], [], timeout)
            if not ready:
                break
            chunk = os.read(r, 65536)
            if not chunk:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise AssertionError(f"writer exited by itself (status {proc.wait()}): {err[-2000:]}")
            buf += chunk
            if deadline is None and b"ready\n" in buf:
                deadline = time.monotonic() + rng.uniform(0.0, 0.25)
        assert deadline is not None, "writer did not start within 30 s"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        buf += os.read(r, 1 << 20) if select.select([r], [], [], 0)[0] else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(r)
    lines = buf.split(b"\n")[:-1]  # the last line may be cut
    return [int(x) for x in lines if x and x != b"ready"]


@pytest.mark.slow
def test_sigkill_during_writes_loses_nothing(tmp_path: Path, lib_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(tmp_path)
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    env = dict(os.environ)
    p11 = P11(lib_path)
    p11.initialize()
    p11.init_token(0, SO_PIN, "crash")
    s = p11.open(0)
    p11.login(s, SO_PIN, user=spec.CKU_SO)
    p11.init_pin(s, USER_PIN)
    p11.close(s)
    p11.finalize()

    rng = random.Random(8)
    committed: set[int] = set()
    first = 0
    try:
        for _ in range(KILLS):
            reported = run_writer(env, first, rng)
            STATS["kills"] += 1
            committed |= set(reported)
            in_flight = (max(reported) + 1) if reported else first
            first = in_flight + 1  # never reuse an index: the in-flight one may have committed

            db = tmp_path / "store.db"
            with sqlite3.connect(db) as con:  # opens cleanly, WAL recovered
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            p11.initialize()
            try:
                found = survey(p11)
            finally:
                p11.finalize()
            lost = committed - set(found)
            dup = {i for i, vals in found.items() if len(vals) > 1}
            bad = {i for i, vals in found.items() if any(v != expected_value(i) for v in vals)}
            stray = set(found) - committed - {in_flight}
            STATS["lost"] += len(lost)
            STATS["duplicated"] += len(dup)
            STATS["half_written"] += len(bad) + len(stray)
            assert not lost, f"committed objects lost after a kill: {sorted(lost)[:10]}"
            assert not dup, f"objects present twice: {sorted(dup)[:10]}"
            assert not bad, f"objects with damaged values: {sorted(bad)[:10]}"
            assert not stray, f"objects that were never created: {sorted(stray)[:10]}"
            committed |= set(found) & {in_flight}
        STATS["committed"] = len(committed)
        assert len(committed) > KILLS, "the writer hardly wrote anything: the test proves nothing"
    finally:
        print(f"\nCRASH kills={STATS['kills']} committed={len(committed)} lost={STATS['lost']} "
              f"duplicated={STATS['duplicated']} half_written={STATS['half_written']}")


# ----------------------------------------------------------------- full and read-only media


def _tmpfs(size: str) -> Path:
    d = Path(__import__("tempfile").mkdtemp(prefix="robust-tmpfs-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)], check=False, capture_output=True, text=True)
    if r.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount tmpfs here: {r.stderr.strip()}")
    return d


def _umount(d: Path) -> None:
    subprocess.run(["umount", "-l", str(d)], check=False)
    d.rmdir()


def _ready_token(p11: P11) -> int:
    p11.init_token(0, SO_PIN, "media")
    s = p11.open(0)
    p11.login(s, SO_PIN, user=spec.CKU_SO)
    p11.init_pin(s, USER_PIN)
    p11.logout(s)
    p11.login(s, USER_PIN)
    return s


def _data(i: int, size: int = 64) -> dict[int, object]:
    return {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
            spec.CKA_LABEL: b"m-%d" % i, spec.CKA_VALUE: bytes([i % 256]) * size}


def _check_intact(p11: P11, s: int, handles: dict[int, int]) -> None:
    for i, h in handles.items():
        assert p11.get(s, h, spec.CKA_VALUE) == bytes([i % 256]) * 64
        assert p11.get(s, h, spec.CKA_LABEL) == b"m-%d" % i


def test_full_disk_through_the_abi(lib_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _tmpfs("2m")
    p11 = P11(lib_path)
    try:
        monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(d)))
        p11.initialize()
        s = _ready_token(p11)
        handles = {i: p11.create(s, _data(i)) for i in range(5)}
        with open(d / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        failures = set()
        for i in range(5, 40):  # big values: the WAL cannot absorb them in free pages
            try:
                p11.create(s, _data(i, 64 * 1024) | {spec.CKA_VALUE: os.urandom(64 * 1024)})
            except P11Error as exc:
                failures.add(exc.rv)
        assert failures, "the full disk never refused a write"
        assert failures <= {spec.CKR_DEVICE_MEMORY, spec.CKR_DEVICE_ERROR}, [spec.ckr_name(x) for x in failures]
        _check_intact(p11, s, handles)  # reads keep working
        assert set(handles.values()) <= set(p11.find(s, {spec.CKA_TOKEN: True}))
        (d / "filler").unlink()
        handles[99] = p11.create(s, _data(99))  # space again: writes work again
        p11.finalize()
        p11.initialize()  # and everything is still there after a restart
        s = p11.open(0)
        found = {p11.get(s, h, spec.CKA_LABEL): h for h in p11.find(s, {spec.CKA_TOKEN: True})}
        assert {b"m-%d" % i for i in handles} <= set(found)
        _check_intact(p11, s, {i: found[b"m-%d" % i] for i in handles})
    finally:
        p11.call("C_Finalize", __import__("p11").ffi.NULL)
        _umount(d)


def test_read_only_store_through_the_abi(lib_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = _tmpfs("8m")
    p11 = P11(lib_path)
    try:
        monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(d)))
        p11.initialize()
        s = _ready_token(p11)
        handles = {i: p11.create(s, _data(i)) for i in range(5)}
        p11.finalize()
        subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True, capture_output=True)
        p11.initialize()
        s = p11.open(0, rw=True)
        found = {p11.get(s, h, spec.CKA_LABEL): h for h in p11.find(s, {spec.CKA_TOKEN: True})}
        handles = {i: found[b"m-%d" % i] for i in handles}
        _check_intact(p11, s, handles)  # reads work
        codes = set()
        for op in (lambda: p11.create(s, _data(50)),
                   lambda: p11.destroy(s, handles[0]),
                   lambda: p11.set(s, handles[1], {spec.CKA_LABEL: b"changed"})):
            try:
                op()
            except P11Error as exc:
                codes.add(exc.rv)
            else:
                raise AssertionError("a write on a read-only store succeeded")
        assert codes <= {spec.CKR_DEVICE_ERROR, spec.CKR_DEVICE_MEMORY, spec.CKR_TOKEN_WRITE_PROTECTED}, \
            [spec.ckr_name(x) for x in codes]
        _check_intact(p11, s, handles)  # nothing changed, reads still work
        p11.finalize()
        subprocess.run(["mount", "-o", "remount,rw", str(d)], check=True, capture_output=True)
        p11.initialize()
        s = p11.open(0)
        found = {p11.get(s, h, spec.CKA_LABEL): h for h in p11.find(s, {spec.CKA_TOKEN: True})}
        _check_intact(p11, s, {i: found[b"m-%d" % i] for i in range(5)})
    finally:
        p11.call("C_Finalize", __import__("p11").ffi.NULL)
        _umount(d)
