"""The parent side of ``abi_worker.py``: a child process that runs PKCS#11 calls for us.

``Child.call(fn, *args)`` forwards one call and returns ``(rv, outputs)``. If the child
dies or does not answer within ``timeout`` seconds, ``ChildCrashed`` is raised carrying the
calls sent since the last ``mark()`` (the reproducing sequence) and the exit status.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from abi_worker import _read_exact, send

WORKER = Path(__file__).resolve().parent / "abi_worker.py"
ROOT = Path(__file__).resolve().parents[2]


class ChildCrashed(AssertionError):
    pass


class Child:
    """One worker process; restarted on demand after a crash."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.calls = 0
        self.crashes = 0

    def start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_child_r)
        os.close(from_child_w)
        self.wfd, self.rfd = to_child_w, from_child_r

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure(self) -> None:
        if not self.alive():
            self.start()

    def mark(self) -> None:
        self.log = []

    def _dead(self, why: str) -> ChildCrashed:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        status = self.proc.wait()
        err = self.proc.stderr.read().decode(errors="replace")[-3000:] if self.proc.stderr else ""
        self.crashes += 1
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc = None
        seq = "\n".join(f"  {fn}{args!r}" for fn, args in self.log[-60:])
        return ChildCrashed(f"PKCS#11 host process {why} (exit status {status}) after:\n{seq}\nstderr:\n{err}")

    def call(self, fn: str, *args: Any) -> tuple[int, list[Any]]:
        self.ensure()
        self.log.append((fn, args))
        try:
            send(self.wfd, (fn, list(args)))
        except (BrokenPipeError, OSError):
            raise self._dead("died") from None
        ready, _, _ = select.select([self.rfd], [], [], self.timeout)
        if not ready:
            raise self._dead(f"hung for {self.timeout}s")
        try:
            (n,) = struct.unpack("<Q", _read_exact(self.rfd, 8))
            reply = pickle.loads(_read_exact(self.rfd, n))
        except EOFError:
            raise self._dead("died") from None
        if fn != "conf":
            self.calls += 1
        return reply

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.close(self.wfd)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self.rfd)
        self.proc = None
