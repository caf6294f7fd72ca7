"""Counters and latency histograms, written as an OpenMetrics text file (issue 21 item 3).

The module lives inside client processes: it may open no port and print nothing, and a
metric may never fail a call. So the numbers are kept in memory and written, when
``[metrics] file`` is set, to that file for node_exporter's textfile collector (or any
reader): rendered to a temporary file in the same directory and renamed over the old one
(a reader sees the old file or the new one, never half of one), at most every ``interval``
seconds (checked when something is recorded: no thread), at ``C_Finalize`` and at
interpreter exit. Any failure to write is one warning in our log, then silence.

What is counted (the families of ``render``):

* ``operations``: every cryptographic operation that ended (C_Sign, C_Encrypt, C_Digest,
  C_Verify ... one-shot or final, a failed init too), by slot, mechanism, operation and
  outcome (``CKR_OK`` or the error's name), with a histogram of its duration from its
  ``C_*Init`` to the call that ended it;
* ``errors``: every C_* call that answered an error, by function and CKR;
* ``logins`` (slot, user, outcome) and ``lockouts`` (slot, user);
* ``backend_round_trips``: each call into an upstream module (by module file) or the TPM,
  by outcome, with a duration histogram.

Cost on the hot path when off: one module attribute test (``ON``). When on: two clock reads,
a lock, two dict updates and a bisect per operation (measured in docs/cli.md "Metrics").
"""

from __future__ import annotations

import atexit
import bisect
import logging
import os
import threading
import time
from typing import Any

from .errors import CryptokiError

_log = logging.getLogger(__name__)

#: True when a metrics file is configured: the only thing the hot path reads when off.
ON = False
#: Histogram bucket upper bounds (seconds): 50 us to 10 s, the range of a software HMAC to
#: a slow HSM or a TPM RSA key generation.
BOUNDS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
          2.5, 5.0, 10.0)
_NB = len(BOUNDS) + 1  # + the +Inf bucket
PREFIX = "cryptoki_shim_"
CKR_GENERAL_ERROR = 0x5

_now = time.monotonic
_bisect = bisect.bisect_left
_lock = threading.Lock()
#: (slot, mechanism, operation) -> [bucket counts..., sum of seconds]
_op_hist: dict[tuple[int, int, str], list[float]] = {}
#: (slot, mechanism, operation, ckr) -> count
_op_outcomes: dict[tuple[int, int, str, int], int] = {}
_errors: dict[tuple[str, int], int] = {}
_logins: dict[tuple[int, str, int], int] = {}
_lockouts: dict[tuple[int, str], int] = {}
_rt_hist: dict[tuple[str, str], list[float]] = {}
_rt_outcomes: dict[tuple[str, str, int], int] = {}
_events: dict[tuple[str, int, str], int] = {}

_path: str | None = None
_interval = 15.0
_next_write = float("inf")
_pid = 0
_failed_once = False
_atexit = False


def configure(settings: dict[str, Any]) -> None:
    """``[metrics]`` of the configuration in force (C_Initialize). A new process (after a
    fork) starts from zero: its counters are its own."""
    global ON, _path, _interval, _next_write, _pid, _atexit
    if _pid != os.getpid():
        reset()
        _pid = os.getpid()
    path = settings.get("file")
    _path = os.path.expanduser(path).replace("{pid}", str(os.getpid())) if path else None
    _interval = float(settings.get("interval") or 15)
    _next_write = _now() + _interval if _path else float("inf")
    ON = _path is not None
    if ON and not _atexit:
        atexit.register(flush)
        _atexit = True


def reset() -> None:
    with _lock:
        for table in (_op_hist, _op_outcomes, _errors, _logins, _lockouts, _rt_hist, _rt_outcomes, _events):
            table.clear()


def _ckr(exc: BaseException | None) -> int:
    if exc is None:
        return 0
    return exc.ckr if isinstance(exc, CryptokiError) else CKR_GENERAL_ERROR


def _observe(hist: dict[Any, list[float]], key: Any, seconds: float) -> None:
    h = hist.get(key)
    if h is None:
        h = hist[key] = [0.0] * (_NB + 1)
    h[bisect.bisect_left(BOUNDS, seconds)] += 1
    h[_NB] += seconds


# --------------------------------------------------------------------------- recording


def operation_ended(slot: int, mechanism: int, kind: str, started: float, exc: BaseException | None = None) -> None:
    """An operation ended (its last step, or a failure that ended it): the hot path.

    No lock here: each count is one ``list[i] += n`` on a list that is never replaced, which
    the GIL makes indivisible in CPython (a thread switch happens only at the interpreter's
    eval-breaker points: calls and backward jumps, none between the read and the store of
    a list item). The successes are not counted apart: ``render`` derives them as the
    histogram's count minus the failures, which only the (slow) failure path records."""
    now = _now()
    elapsed = now - started if started else 0.0
    key = (slot, mechanism, kind)
    h = _op_hist.get(key)
    if h is None:
        h = _op_hist.setdefault(key, [0.0] * (_NB + 1))
    h[_bisect(BOUNDS, elapsed)] += 1
    h[_NB] += elapsed
    if exc is not None:
        failed = (slot, mechanism, kind, _ckr(exc))
        with _lock:
            _op_outcomes[failed] = _op_outcomes.get(failed, 0) + 1
    if now >= _next_write:
        flush()


def call_failed(function: str, ckr: int) -> None:
    """A C_* call answered ``ckr`` (the entry layer's error path: never on a success)."""
    with _lock:
        _errors[(function, ckr)] = _errors.get((function, ckr), 0) + 1


def login(slot: int, user: str, exc: BaseException | None = None) -> None:
    key = (slot, user, _ckr(exc))
    with _lock:
        _logins[key] = _logins.get(key, 0) + 1


def lockout(slot: int, user: str) -> None:
    with _lock:
        _lockouts[(slot, user)] = _lockouts.get((slot, user), 0) + 1


def round_trip(backend: str, target: str, started: float, exc: BaseException | None = None) -> None:
    """One call into a backend device (an upstream module's session step, a TPM unit)."""
    now = _now()
    ckr = _ckr(exc)
    with _lock:
        _observe(_rt_hist, (backend, target), now - started)
        key = (backend, target, ckr)
        _rt_outcomes[key] = _rt_outcomes.get(key, 0) + 1
    if now >= _next_write:
        flush()


def backend_event(backend: str, slot: int, event: str, n: int = 1) -> None:
    """A backend's own count (the TPM's seals, unseals, unseal-cache hits, commands sent,
    dictionary-attack lockouts: issue 20 item 6)."""
    key = (backend, slot, event)
    with _lock:
        _events[key] = _events.get(key, 0) + n


def now() -> float:
    """The clock the durations use (for a caller that starts one)."""
    return _now()


# --------------------------------------------------------------------------- output


def _labels(**labels: Any) -> str:
    def esc(v: Any) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def _names() -> tuple[Any, Any]:
    from . import spec

    return spec.ckr_name, spec.ckm_name


def _hist_lines(name: str, labels: dict[str, Any], h: list[float]) -> list[str]:
    lines, total = [], 0
    for bound, n in zip((*BOUNDS, float("inf")), h[:_NB]):
        total += int(n)
        le = "+Inf" if bound == float("inf") else repr(bound)
        lines.append(f"{name}_bucket{_labels(**labels, le=le)} {total}")
    lines.append(f"{name}_count{_labels(**labels)} {total}")
    lines.append(f"{name}_sum{_labels(**labels)} {h[_NB]:.9f}")
    return lines


def render() -> str:
    """The OpenMetrics text exposition of everything counted so far (ends with ``# EOF``)."""
    ckr_name, ckm_name = _names()
    with _lock:
        # list(items()) is one C call: the hot path inserts into _op_hist without the lock
        op_hist = {k: list(v) for k, v in list(_op_hist.items())}
        op_outcomes, errors = dict(_op_outcomes), dict(_errors)
        logins, lockouts = dict(_logins), dict(_lockouts)
        rt_hist, rt_outcomes = {k: list(v) for k, v in _rt_hist.items()}, dict(_rt_outcomes)
        events = dict(_events)
    out: list[str] = []

    def family(name: str, kind: str, help_: str, unit: str = "") -> str:
        full = PREFIX + name
        out.append(f"# TYPE {full} {kind}")
        if unit:
            out.append(f"# UNIT {full} {unit}")
        out.append(f"# HELP {full} {help_}")
        return full

    name = family("operations", "counter", "Cryptographic operations ended, by slot, mechanism, operation and outcome.")
    for (slot, mech, kind), h in op_hist.items():  # the successes: all minus the failures
        ok = int(sum(h[:_NB])) - sum(n for k, n in op_outcomes.items() if k[:3] == (slot, mech, kind))
        if ok:
            op_outcomes[(slot, mech, kind, 0)] = ok
    for (slot, mech, kind, ckr), n in sorted(op_outcomes.items()):
        out.append(f"{name}_total{_labels(slot=slot, mechanism=ckm_name(mech), operation=kind, outcome=ckr_name(ckr))} {n}")
    name = family("operation_seconds", "histogram", "Duration of an operation from its C_*Init to the call that "
                  "ended it.", "seconds")
    for (slot, mech, kind), h in sorted(op_hist.items()):
        out += _hist_lines(name, {"slot": slot, "mechanism": ckm_name(mech), "operation": kind}, h)
    name = family("errors", "counter", "C_* calls that answered an error, by function and CKR.")
    for (function, ckr), n in sorted(errors.items()):
        out.append(f"{name}_total{_labels(function=function, ckr=ckr_name(ckr))} {n}")
    name = family("logins", "counter", "C_Login calls, by slot, user and outcome.")
    for (slot, user, ckr), n in sorted(logins.items()):
        out.append(f"{name}_total{_labels(slot=slot, user=user, outcome=ckr_name(ckr))} {n}")
    name = family("lockouts", "counter", "PINs locked by a wrong PIN (max_pin_failures reached), by slot and user.")
    for (slot, user), n in sorted(lockouts.items()):
        out.append(f"{name}_total{_labels(slot=slot, user=user)} {n}")
    name = family("backend_round_trips", "counter", "Calls into an upstream PKCS#11 module or the TPM, by outcome.")
    for (backend, target, ckr), n in sorted(rt_outcomes.items()):
        out.append(f"{name}_total{_labels(backend=backend, target=target, outcome=ckr_name(ckr))} {n}")
    name = family("backend_round_trip_seconds", "histogram", "Duration of a call into an upstream module or the TPM.",
                  "seconds")
    for (backend, target), h in sorted(rt_hist.items()):
        out += _hist_lines(name, {"backend": backend, "target": target}, h)
    name = family("backend_events", "counter", "Backend events by slot: TPM seal, unseal, unseal_cache_hit, "
                  "wire_commands (TPM commands sent in bytes), da_lockout.")
    for (backend, slot, event), n in sorted(events.items()):
        out.append(f"{name}_total{_labels(backend=backend, slot=slot, event=event)} {n}")
    out.append("# EOF")
    return "\n".join(out) + "\n"


def flush() -> None:
    """Write the file now (atomically); never raises, never prints."""
    global _next_write, _failed_once
    path = _path
    if path is None:
        return
    _next_write = _now() + _interval
    tmp = None
    try:
        text = render().encode()
        directory, base = os.path.split(os.path.abspath(path))
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _failed_once = False
    except Exception as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if not _failed_once:
            _failed_once = True
            try:
                _log.warning("[metrics] file %s: cannot write it (%s); the counters stay in memory", path, exc)
            except Exception:
                pass
