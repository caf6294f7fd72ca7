"""A hanging upstream module must not hang our clients: per-call timeout and circuit breaker.

A call into a vendor's PKCS#11 module cannot be interrupted: a module that stops answering
(an HSM behind a dead network path, a driver waiting on a card) holds the calling thread
until it returns, if ever. So each upstream step runs on a worker thread and the caller waits
at most ``call_timeout`` seconds; past that our client gets ``CKR_DEVICE_ERROR`` (with the
reason at warning level in the log) and the worker is left to finish (or not) on its own;
if the module ever answers, the step ends as usual (its session goes back to the pool) and
its result is dropped.

The circuit breaker (``Breaker``) then keeps later calls from queueing behind the stuck one:
after ``breaker_failures`` consecutive failures of the device (a timeout; the token removed
or not present; the upstream's own CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY or CKR_GENERAL_ERROR)
it opens and every call fails at once for
``breaker_seconds``; then one call is let through (half-open): it closes the breaker if the
upstream answers, and opens it again if not. Any answer of the upstream, an error code
about the request included (CKR_KEY_FUNCTION_NOT_PERMITTED ...), counts as an answer; so do
our own refusals that are not the device's fault (a rejected upstream PIN, which is never
retried anyway; a module that cannot be loaded, retried at each use as before).

Workers are daemon threads (a stuck one never blocks the host's exit) kept in a small
set: an idle one is reused (no thread start per call); at most ``MAX_WORKERS`` exist, so
stuck workers cannot grow without bound (past that, calls fail at once). After ``fork``
the child starts with none (the parent's threads do not exist there).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any, Callable, TypeVar

from .. import spec
from ..errors import CryptokiError

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: our codes that mean the device is gone
GONE = frozenset({spec.CKR_DEVICE_REMOVED, spec.CKR_TOKEN_NOT_PRESENT})
#: the upstream's own codes (UpstreamError.rv) that mean it failed, not that it refused
DEVICE_FAILURES = frozenset({spec.CKR_DEVICE_ERROR, spec.CKR_DEVICE_MEMORY, spec.CKR_GENERAL_ERROR})


def device_failed(exc: CryptokiError) -> bool:
    return exc.ckr in GONE or getattr(exc, "rv", None) in DEVICE_FAILURES
MAX_WORKERS = 16


class Breaker:
    """Closed (calls go through) -> open after ``failures`` consecutive device failures
    (calls fail at once) -> half-open after ``seconds`` (one trial call) -> closed or open."""

    def __init__(self, name: str, failures: int, seconds: float) -> None:
        self.name, self.limit, self.seconds = name, failures, seconds
        self.lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0
        self.trial = False  # a half-open trial call is in flight

    def before(self) -> None:
        """Raise ``CKR_DEVICE_ERROR`` at once while open (or while a trial call is out)."""
        if not self.limit:
            return
        with self.lock:
            if self.failures < self.limit:
                return
            now = time.monotonic()
            if now < self.open_until or self.trial:
                wait = max(0.0, self.open_until - now)
                raise CryptokiError(spec.CKR_DEVICE_ERROR, f"upstream {self.name}: circuit breaker open after "
                                    f"{self.failures} failures; next try in {wait:.0f} s (breaker_seconds)")
            self.trial = True  # half-open: this call is the trial

    def answered(self) -> None:
        with self.lock:
            if self.failures >= self.limit and self.limit:
                _log.warning("upstream %s: answering again; circuit breaker closed", self.name)
            self.failures, self.trial = 0, False

    def failed(self, why: str) -> None:
        with self.lock:
            self.failures += 1
            self.trial = False
            if self.limit and self.failures >= self.limit:
                self.open_until = time.monotonic() + self.seconds
                _log.warning("upstream %s: %s; circuit breaker open for %g s after %d consecutive failures "
                             "(breaker_failures, breaker_seconds in [slots.upstream])", self.name, why,
                             self.seconds, self.failures)


class _Job:
    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


_jobs: "queue.SimpleQueue[_Job]" = queue.SimpleQueue()
_workers_lock = threading.Lock()
_workers = 0
_idle = 0


def _worker() -> None:
    global _idle
    while True:
        job = _jobs.get()
        with _workers_lock:
            _idle -= 1
        try:
            job.result = job.fn()
        except BaseException as exc:  # handed to the waiting caller, raised there
            job.error = exc
        job.done.set()
        with _workers_lock:
            _idle += 1


def _submit(job: _Job) -> None:
    global _workers, _idle
    with _workers_lock:
        if _idle == 0:
            if _workers >= MAX_WORKERS:
                raise CryptokiError(spec.CKR_DEVICE_ERROR, f"upstream: {MAX_WORKERS} calls are stuck in upstream "
                                    "modules; refusing more until they return")
            threading.Thread(target=_worker, name="cryptoki-shim-upstream", daemon=True).start()
            _workers += 1
            _idle += 1
    _jobs.put(job)


def _after_fork() -> None:
    global _jobs, _workers_lock, _workers, _idle
    _jobs, _workers_lock, _workers, _idle = queue.SimpleQueue(), threading.Lock(), 0, 0


os.register_at_fork(after_in_child=_after_fork)


def call(name: str, breaker: Breaker, timeout: float, fn: Callable[[], T]) -> T:
    """``fn()`` within ``timeout`` seconds (0: inline, no limit), behind ``breaker``."""
    breaker.before()
    try:
        if not timeout:
            result = fn()
        else:
            job = _Job(fn)
            _submit(job)
            if not job.done.wait(timeout):
                raise TimeoutError
            if job.error is not None:
                raise job.error
            result = job.result
    except TimeoutError:
        why = f"no answer within {timeout:g} s (call_timeout)"
        breaker.failed(why)
        _log.warning("upstream %s: %s; the call answers CKR_DEVICE_ERROR, its thread is left to finish", name, why)
        raise CryptokiError(spec.CKR_DEVICE_ERROR, f"upstream {name}: {why}") from None
    except CryptokiError as exc:
        if device_failed(exc):
            breaker.failed(str(exc) or spec.ckr_name(exc.ckr))
        else:
            breaker.answered()
        raise
    except BaseException:
        breaker.answered()  # not a device failure (a bug of ours is not the device's)
        raise
    breaker.answered()
    return result
