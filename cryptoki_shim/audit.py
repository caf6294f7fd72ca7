"""The audit log: who logged in, which objects changed, which keys were used — never secrets.

One JSON object per line, to a file and/or syslog (``[audit]`` in the configuration). Every
record carries ``time``, ``pid``, ``run`` (random per process start, since pids are reused),
``seq`` (1, 2, 3 ... per run) and ``event``. With ``hash_chain = true`` each record also
carries ``hash`` = SHA-256(previous record's hash ‖ this record without ``hash``), the
chain of a run starting at SHA-256(run); ``verify`` then detects edited, deleted, reordered
or inserted lines (only the loss of a run's *last* lines is invisible: see docs/cli.md).

Events: ``login.ok``, ``login.failed``, ``login.locked``, ``logout``, ``token.init``,
``pin.set``, ``object.create``, ``object.modify``, ``object.destroy``, ``key.use``,
``backend.error``.

The hooks in the core call the helpers below with *objects* (a token, a key, a session),
and the helpers pick the fields, so a hook cannot hand over a PIN or a key value by
mistake; ``event`` refuses bytes values outright. With audit off every helper returns after
one global check: they sit on the hot path of ``C_Sign``.

A failure to write the audit log is logged (``cryptoki_shim.audit``) and does not fail the
PKCS#11 call (fail-open): a full disk must not stop every signature of a server.

This module is imported by every C_Initialize, audit on or off: what only a sink or
``verify`` needs (json, hashlib, socket, datetime, secrets) is imported when one is made
(issue #9, cold start).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from . import spec
from .errors import CryptokiError

_log = logging.getLogger(__name__)

#: CKR values that mean "the device behind the key failed" (a TPM, an upstream HSM, the store).
BACKEND_FAILURES = frozenset(int(x) for x in (spec.CKR_DEVICE_ERROR, spec.CKR_DEVICE_MEMORY,
                                              spec.CKR_DEVICE_REMOVED, spec.CKR_TOKEN_NOT_PRESENT,
                                              spec.CKR_FUNCTION_FAILED))
FACILITIES = {"auth": 4, "authpriv": 10, "daemon": 3, "user": 1, **{f"local{i}": 16 + i for i in range(8)}}
SEVERITY = {"info": 6, "warning": 4}
USERS = {int(spec.CKU_SO): "so", int(spec.CKU_USER): "user", int(spec.CKU_CONTEXT_SPECIFIC): "context"}
_HASH_TAIL = r',"hash":"([0-9a-f]{64})"\}$'

if TYPE_CHECKING:
    import socket


class _Sink:
    """One run's open targets (file, syslog socket), sequence number and hash chain."""

    def __init__(self, settings: dict[str, Any], pid: int) -> None:
        import secrets

        self.settings = settings
        self.pid = pid
        self.run: str = secrets.token_hex(8)
        self.seq = 0
        self.fd: int | None = None
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.warned = False
        self._open()

    def _open(self) -> None:
        import datetime
        import hashlib
        import json
        import socket

        global _datetime, _hashlib, _json
        _datetime, _hashlib, _json = datetime, hashlib, json
        self.prev = hashlib.sha256(self.run.encode()).hexdigest()
        path = self.settings.get("file")
        if path:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if self.settings.get("syslog"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def write(self, name: str, fields: dict[str, Any], severity: str) -> None:
        with self.lock:
            self.seq += 1
            record = {
                "time": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="milliseconds"),
                "pid": self.pid, "run": self.run, "seq": self.seq, "event": name, **fields,
            }
            body = _json.dumps(record, separators=(",", ":"), ensure_ascii=True)
            if self.settings.get("hash_chain"):
                digest = _hashlib.sha256((self.prev + body).encode()).hexdigest()
                self.prev = digest
                body = body[:-1] + f',"hash":"{digest}"}}'
            try:
                if self.fd is not None:
                    os.write(self.fd, (body + "\n").encode())
                if self.sock is not None:
                    pri = FACILITIES[self.settings.get("syslog_facility", "authpriv")] * 8 + SEVERITY[severity]
                    self.sock.sendto(f"<{pri}>cryptoki-shim[{self.pid}]: {body}".encode(),
                                     self.settings.get("syslog_address", "/dev/log"))
            except OSError as exc:
                if not self.warned:  # once per run: a broken sink must not flood the log
                    _log.error("audit record %d (%s) not written: %s", self.seq, name, exc)
                    self.warned = True


_sink: _Sink | None = None
_key_use = True
#: Whether ``key_use`` records anything (a sink is open and ``key_use`` is on): the
#: operation path reads this flag instead of making a call per C_Sign/C_Encrypt.
KEY_USE = False
#: Modules only a sink needs, imported by the first one (``_Sink._open``).
_datetime: Any = None
_hashlib: Any = None
_json: Any = None


def configure(settings: dict[str, Any] | None) -> None:
    """Apply the ``[audit]`` settings (``Config.audit``); None or no target turns audit off.

    Called by every ``C_Initialize``: the same settings in the same process keep the run
    (its sequence and chain continue); new settings or a new process start a new run.
    """
    global _sink, _key_use, KEY_USE
    settings = dict(settings or {})
    wanted = bool(settings.get("file") or settings.get("syslog"))
    if _sink is not None and _sink.settings == settings and _sink.pid == os.getpid():
        return
    if _sink is not None:
        _sink.close()
        _sink = None
        KEY_USE = False
    if wanted:
        try:
            _sink = _Sink(settings, os.getpid())
        except OSError as exc:
            raise CryptokiError(spec.CKR_GENERAL_ERROR, f"audit: cannot open {settings.get('file')}: {exc.strerror}")
    _key_use = bool(settings.get("key_use", True))
    KEY_USE = _sink is not None and _key_use


def enabled() -> bool:
    return _sink is not None


def _after_fork_in_child() -> None:
    """The child starts its own run when it initializes again (its pid is new)."""
    global _sink, KEY_USE
    KEY_USE = False
    if _sink is not None:
        sink, _sink = _sink, None
        sink.lock = threading.Lock()
        sink.close()


os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- recording


def event(name: str, severity: str = "info", **fields: Any) -> None:
    """Write one record. Values must be str/int/bool/None (bytes are refused: no secrets)."""
    sink = _sink
    if sink is None:
        return
    for k, v in fields.items():
        if isinstance(v, (bytes, bytearray, memoryview)):
            raise TypeError(f"audit field {k!r} is bytes: audit records never carry raw values")
    sink.write(name, fields, severity)


def _ckr(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    if isinstance(exc, CryptokiError):
        return spec.ckr_name(exc.ckr)
    return "CKR_GENERAL_ERROR"


def _label(attrs: dict[int, Any]) -> str | None:
    raw = attrs.get(int(spec.CKA_LABEL))
    return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else None


def login(token: Any, user: int, exc: BaseException | None = None, failures: int | None = None) -> None:
    """A PIN check of ``user`` on ``token``: ``login.ok`` / ``login.failed``."""
    if _sink is None:
        return
    fields: dict[str, Any] = {"slot": token.slot_id, "user": USERS.get(user, user), "outcome": _ckr(exc)}
    if failures is not None:
        fields["failures"] = failures
        fields["max_failures"] = token.cfg.max_pin_failures
    event("login.ok" if exc is None else "login.failed", "info" if exc is None else "warning", **fields)


def token_event(name: str, token: Any, user: int | None = None) -> None:
    """``login.locked``, ``logout``, ``token.init``, ``pin.set`` of one token."""
    if _sink is None:
        return
    fields: dict[str, Any] = {"slot": token.slot_id}
    if token.record is not None:
        fields["serial"] = token.record.serial
    if user is not None:
        fields["user"] = USERS.get(user, user)
    event(name, "warning" if name == "login.locked" else "info", **fields)


def object_event(action: str, token: Any, obj: Any) -> None:
    """``object.create`` / ``object.modify`` / ``object.destroy``: identity, never values."""
    if _sink is None:
        return
    attrs = obj.attrs
    cls = attrs.get(int(spec.CKA_CLASS))
    event(f"object.{action}", slot=token.slot_id, handle=obj.handle, unique_id=obj.unique_id,
          object_class=spec.cko_name(cls) if cls is not None else None, label=_label(attrs),
          token_object=obj.oid is not None)


def key_use(session: Any, op: Any, exc: BaseException | None = None) -> None:
    """The end of an operation with a key (its outcome); a failed device adds ``backend.error``."""
    if _sink is None or not _key_use or op.key is None:
        return
    key = op.key
    backend = key.attrs.get(int(spec.CKA_SHIM_BACKEND), int(spec.SHIM_BACKEND_SOFTWARE))
    backend_name = {int(spec.SHIM_BACKEND_SOFTWARE): "software", int(spec.SHIM_BACKEND_TPM): "tpm",
                    int(spec.SHIM_BACKEND_UPSTREAM): "upstream"}.get(backend, str(backend))
    outcome = _ckr(exc)
    fields = {"slot": session.token.slot_id, "session": session.handle, "operation": op.kind,
              "mechanism": spec.ckm_name(op.mechanism), "key_unique_id": key.unique_id,
              "key_label": _label(key.attrs), "backend": backend_name, "outcome": outcome}
    event("key.use", "info" if exc is None else "warning", **fields)
    if isinstance(exc, CryptokiError) and exc.ckr in BACKEND_FAILURES:
        backend_error(backend_name, exc, slot=session.token.slot_id, key_unique_id=key.unique_id)


def backend_error(backend: str, exc: BaseException, **fields: Any) -> None:
    """A TPM, upstream module or store failure (``CKR_DEVICE_ERROR`` ...)."""
    if _sink is None:
        return
    event("backend.error", "warning", backend=backend, outcome=_ckr(exc), **fields)


# --------------------------------------------------------------------------- verification


@dataclass
class Problem:
    line: int
    what: str


@dataclass
class Report:
    records: int = 0
    runs: int = 0
    chained: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(lines: Iterable[str]) -> Report:
    """Check an audit file: per run, ``seq`` must count 1, 2, 3 ... with no gap, and a chained
    record's ``hash`` must follow from the previous one (edits, deletions, insertions,
    reordering). Lines of several processes may be interleaved (one file, many clients).
    """
    import hashlib
    import json
    import re

    hash_tail = re.compile(_HASH_TAIL)
    report = Report()
    state: dict[tuple[int, str], tuple[int, str | None]] = {}  # (pid, run) -> (last seq, last hash)
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            key = (int(rec["pid"]), str(rec["run"]))
            seq = int(rec["seq"])
        except (ValueError, KeyError, TypeError):
            report.problems.append(Problem(number, "not an audit record (unreadable JSON or fields missing)"))
            continue
        report.records += 1
        last_seq, last_hash = state.get(key, (0, None))
        if key not in state:
            report.runs += 1
        if seq != last_seq + 1:
            what = (f"seq {seq} after {last_seq}: {seq - last_seq - 1} record(s) missing" if seq > last_seq + 1
                    else f"seq {seq} after {last_seq}: duplicated or reordered")
            report.problems.append(Problem(number, f"run {key[1]} (pid {key[0]}): {what}"))
        m = hash_tail.search(line)
        if m:
            report.chained += 1
            body = line[: m.start()] + "}"
            prev = last_hash if last_hash is not None and seq == last_seq + 1 else None
            if prev is None and seq == 1:
                prev = hashlib.sha256(key[1].encode()).hexdigest()
            if prev is not None and hashlib.sha256((prev + body).encode()).hexdigest() != m.group(1):
                report.problems.append(Problem(number, f"run {key[1]} (pid {key[0]}): seq {seq} hash does not "
                                                       "match (record edited, or the one before it)"))
            last_hash = m.group(1)
        elif last_hash is not None:
            report.problems.append(Problem(number, f"run {key[1]} (pid {key[0]}): seq {seq} has no hash in a "
                                                   "chained run"))
        state[key] = (max(seq, last_seq), last_hash)
    return report
