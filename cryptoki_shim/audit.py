"""The audit log: who logged in, which objects changed, which keys were used — never secrets.

One JSON object per line, to a file and/or syslog (``[audit]`` in the configuration). Every
record carries ``time``, ``pid``, ``run`` (random per process start, since pids are reused),
``seq`` (1, 2, 3 ... per run), ``event``, the event's fields, and last ``mac``.

Why a keyed chain (issue 15 item 4): a SHA-256 chain has no secret, so whoever can write the
file can edit a record and recompute every hash after it. Here ``mac`` = HMAC-SHA256(audit
key, domain ‖ previous record's mac ‖ this record without ``mac``), the previous mac of a
run's first record being 32 zero bytes. The audit key is 32 random bytes in a key file
(``[audit] key_file``, by default ``audit.key`` next to the SQLite store, created 0600 by the
first process that needs it): whoever can write the log but cannot read the key file can
neither edit, insert, reorder nor reuse a record without ``verify`` failing. Whoever can read
the key (the store's owner: every client process of the token) can forge; that is stated in
docs/cli.md. HMAC is pyca's, never ``hashlib`` (issue 25: no host libcrypto on a C_* path).

Runs and truncation. A run starts with an ``audit.start`` record and ends its checkpoints
with ``audit.checkpoint`` records: after ``checkpoint_every`` records, on the first record
after ``checkpoint_seconds``, and at every ``C_Finalize``. Each start and checkpoint is also
appended to the *ledger* (``audit.ledger`` next to the key file: run, seq, mac), which the
log's writer alone cannot rewrite either. ``verify`` with the ledger then detects a run
whose tail was cut at or before its last checkpoint, and a whole run deleted from the middle
of the file; it reports, per run, how many records after the last checkpoint no checkpoint
protects (their loss is undetectable: a crash and a truncation look alike there).

Events: ``audit.start``, ``audit.checkpoint``, ``login.ok``, ``login.failed``,
``login.locked``, ``logout``, ``token.init``, ``pin.set``, ``object.create``,
``object.modify``, ``object.destroy``, ``key.use``, ``backend.error``.

The hooks in the core call the helpers below with *objects* (a token, a key, a session),
and the helpers pick the fields, so a hook cannot hand over a PIN or a key value by
mistake; ``event`` refuses bytes values outright. With audit off every helper returns after
one global check: they sit on the hot path of ``C_Sign`` (one HMAC per record when on).

A failure to write the audit log is logged (``cryptoki_shim.audit``) and does not fail the
PKCS#11 call (fail-open): a full disk must not stop every signature of a server. The lost
record's ``seq`` is consumed, so ``verify`` shows the gap.

This module is imported by every C_Initialize, audit on or off: what only a sink or
``verify`` needs (json, the HMAC, socket, datetime) is imported when one is made
(issue #9, cold start).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from . import metrics, private_files, spec
from .spec_ints import CKA_CLASS, CKA_LABEL, CKA_SHIM_BACKEND, CKU_CONTEXT_SPECIFIC, CKU_SO, CKU_USER
from .errors import CryptokiError

_log = logging.getLogger(__name__)

#: CKR values that mean "the device behind the key failed" (a TPM, an upstream HSM, the store).
BACKEND_FAILURES = frozenset(int(x) for x in (spec.CKR_DEVICE_ERROR, spec.CKR_DEVICE_MEMORY,
                                              spec.CKR_DEVICE_REMOVED, spec.CKR_TOKEN_NOT_PRESENT,
                                              spec.CKR_FUNCTION_FAILED))
FACILITIES = {"auth": 4, "authpriv": 10, "daemon": 3, "user": 1, **{f"local{i}": 16 + i for i in range(8)}}
SEVERITY = {"info": 6, "warning": 4}
USERS = {CKU_SO: "so", CKU_USER: "user", CKU_CONTEXT_SPECIFIC: "context"}

START = "audit.start"
CHECKPOINT = "audit.checkpoint"
#: Fields every record has, in this order; ``mac`` comes last.
ENVELOPE = ("time", "pid", "run", "seq", "event")
KEY_LEN = 32
MAC_LEN = 32
#: HMAC input prefix: an audit MAC can never be confused with another use of the key.
_DOMAIN = b"cryptoki-shim/audit/v1\x00"
DEFAULT_CHECKPOINT_EVERY = 100
DEFAULT_CHECKPOINT_SECONDS = 60
KEY_FILE_NAME = "audit.key"
LEDGER_FILE_NAME = "audit.ledger"

if TYPE_CHECKING:
    import socket


class AuditKeyError(Exception):
    """The audit key cannot be read or made: no audit records (an error in our log, never a failed call)."""


def key_path(settings: dict[str, Any], store_url: str | None) -> str | None:
    """``[audit] key_file``, else ``audit.key`` in the directory of a SQLite store file.

    Next to the store because whoever can read the store already holds every token's PIN
    records: the key adds no new party able to forge. None when neither applies (an
    in-memory or non-SQLite store without ``key_file``).
    """
    if settings.get("key_file"):
        return os.path.abspath(os.path.expanduser(settings["key_file"]))
    url = store_url or ""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return os.path.join(os.path.dirname(os.path.abspath(path)), KEY_FILE_NAME)


def ledger_path(key_file: str) -> str:
    """The ledger lives next to the key, under the same protection."""
    return os.path.join(os.path.dirname(key_file), LEDGER_FILE_NAME)


def load_key(path: str, *, create: bool) -> bytes:
    """The 32-byte audit key in ``path``; with ``create`` a missing file is made 0600.

    Creation is race-free across processes: the key is written to a private temporary file
    and hard-linked into place (``link`` fails if another process won), so no reader ever
    sees a partial key. A key file readable by group or others is refused (its MACs would
    prove nothing).
    """
    try:
        return private_files.read_secret(path, KEY_LEN, "audit key")
    except FileNotFoundError:
        if not create:
            raise AuditKeyError(f"audit key {path} does not exist") from None
    except OSError as exc:
        raise AuditKeyError(f"audit key {path}: {exc.strerror}") from None
    except private_files.SecretFileError as exc:
        raise AuditKeyError(str(exc)) from None
    _create_key(path)
    return load_key(path, create=False)


def _create_key(path: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = private_files.create_new(tmp)
    try:
        os.write(fd, (os.urandom(KEY_LEN).hex() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        os.unlink(tmp)


def key_id(key: bytes) -> str:
    """A public name of the key (in ``audit.start``): verify tells "another key" from "edited"."""
    from cryptography.hazmat.primitives import hashes, hmac

    h = hmac.HMAC(key, hashes.SHA256())
    h.update(_DOMAIN + b"key-id")
    return h.finalize()[:8].hex()


class _Sink:
    """One run's open targets (file, syslog socket, ledger), sequence number and MAC chain."""

    def __init__(self, settings: dict[str, Any], pid: int, key: bytes, key_file: str) -> None:
        self.settings = settings
        self.pid = pid
        self.run: str = os.urandom(8).hex()  # not ``secrets``: it imports hmac, hence hashlib
        self.seq = 0
        self.prev = bytes(MAC_LEN)
        self.key_id = key_id(key)
        self.every = max(1, int(settings.get("checkpoint_every") or DEFAULT_CHECKPOINT_EVERY))
        self.seconds = max(1, int(settings.get("checkpoint_seconds") or DEFAULT_CHECKPOINT_SECONDS))
        self.since_checkpoint = 0
        self.checkpoint_at = time.monotonic()
        self.fd: int | None = None
        self.ledger_fd: int | None = None
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()
        self.warned = False
        self._open(key, key_file)

    def _open(self, key: bytes, key_file: str) -> None:
        import datetime
        import json
        import socket

        from cryptography.hazmat.primitives import hashes, hmac

        global _datetime, _json
        _datetime, _json = datetime, json
        self.hmac0 = hmac.HMAC(key, hashes.SHA256())
        self.hmac0.update(_DOMAIN)
        path = self.settings.get("file")
        if path:
            self.path = os.path.abspath(path)
            self.fd = private_files.open_private(path, os.O_WRONLY | os.O_APPEND)
            try:
                self.ledger_fd = private_files.open_private(ledger_path(key_file), os.O_WRONLY | os.O_APPEND)
            except OSError:
                os.close(self.fd)
                self.fd = None
                raise
        if self.settings.get("syslog"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def close(self) -> None:
        for name in ("fd", "ledger_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def write(self, name: str, fields: dict[str, Any], severity: str) -> None:
        with self.lock:
            if self.seq == 0:
                self._append(START, {"key_id": self.key_id, "checkpoint_every": self.every,
                                     "checkpoint_seconds": self.seconds}, "info")
            self._append(name, fields, severity)
            self.since_checkpoint += 1
            if self.since_checkpoint >= self.every or time.monotonic() - self.checkpoint_at >= self.seconds:
                self._append(CHECKPOINT, {"reason": "count" if self.since_checkpoint >= self.every else "time"},
                             "info")

    def checkpoint(self, reason: str) -> None:
        """A checkpoint now (C_Finalize), if this run wrote anything since the last one."""
        with self.lock:
            if self.seq and self.since_checkpoint:
                self._append(CHECKPOINT, {"reason": reason}, "info")

    def _append(self, name: str, fields: dict[str, Any], severity: str) -> None:
        """Number, MAC and write one record; never raises (fail-open, logged once per run)."""
        self.seq += 1
        try:
            record = {
                "time": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="milliseconds"),
                "pid": self.pid, "run": self.run, "seq": self.seq, "event": name, **fields,
            }
            body = _json.dumps(record, separators=(",", ":"), ensure_ascii=True)
            h = self.hmac0.copy()
            h.update(self.prev)
            h.update(body.encode())
            mac = h.finalize()
            self.prev = mac
            line = f'{body[:-1]},"mac":"{mac.hex()}"}}'
            if name in (START, CHECKPOINT):
                self.since_checkpoint = 0
                self.checkpoint_at = time.monotonic()
            if self.fd is not None:
                os.write(self.fd, (line + "\n").encode())
                if name in (START, CHECKPOINT) and self.ledger_fd is not None:
                    entry = {"log": self.path, "run": self.run, "pid": self.pid, "seq": self.seq,
                             "time": record["time"], "event": name, "mac": mac.hex()}
                    os.write(self.ledger_fd, (_json.dumps(entry, separators=(",", ":")) + "\n").encode())
            if self.sock is not None:
                pri = FACILITIES[self.settings.get("syslog_facility", "authpriv")] * 8 + SEVERITY[severity]
                self.sock.sendto(f"<{pri}>cryptoki-shim[{self.pid}]: {line}".encode(),
                                 self.settings.get("syslog_address", "/dev/log"))
        except Exception as exc:  # OSError (full disk, closed socket), or an unencodable value
            if not self.warned:  # once per run: a broken sink must not flood the log
                _log.error("audit record %d (%s) not written: %s", self.seq, name, exc)
                self.warned = True


_sink: _Sink | None = None
_key_use = True
#: Whether ``key_use`` records anything (a sink is open and ``key_use`` is on): the
#: operation path reads this flag instead of making a call per C_Sign/C_Encrypt.
KEY_USE = False
#: Whether a sink is open (``enabled()``): the object-creation path (``Token.add_object``,
#: C_EncapsulateKey ...) reads this flag instead of calling ``object_event`` per object.
ON = False
#: Modules only a sink needs, imported by the first one (``_Sink._open``).
_datetime: Any = None
_json: Any = None


def configure(settings: dict[str, Any] | None, store_url: str | None = None) -> None:
    """Apply the ``[audit]`` settings (``Config.audit``); None or no target turns audit off.

    ``store_url`` places the default key file (``key_path``). Called by every
    ``C_Initialize``: the same settings in the same process keep the run (its sequence and
    chain continue); new settings or a new process start a new run. An audit that was asked
    for but cannot open its file or key is an error in our log, never a failed call.
    """
    global _sink, _key_use, KEY_USE, ON
    settings = dict(settings or {})
    settings["store_url"] = store_url
    wanted = bool(settings.get("file") or settings.get("syslog"))
    if _sink is not None and _sink.settings == settings and _sink.pid == os.getpid():
        return
    if _sink is not None:
        _sink.checkpoint("close")
        _sink.close()
        _sink = None
        KEY_USE = ON = False
    if wanted:
        path = key_path(settings, store_url)
        try:
            if path is None:
                raise AuditKeyError("no [audit] key_file, and the store is not a SQLite file to put it next to")
            _sink = _Sink(settings, os.getpid(), load_key(path, create=True), path)
        except (AuditKeyError, OSError) as exc:
            # Logging never fails a call (DESIGN §7, issue 15 item 12: an [audit] file in a
            # missing directory made every C_Initialize CKR_GENERAL_ERROR): the error goes to
            # our log, `config-check` names it beforehand, and the next C_Initialize retries.
            why = exc if isinstance(exc, AuditKeyError) else \
                f"cannot open {exc.filename or settings.get('file')}: {exc.strerror}"
            _log.error("audit: %s; no audit records until a C_Initialize can open it", why)
            _sink = None
    _key_use = bool(settings.get("key_use", True))
    KEY_USE = _sink is not None and _key_use
    ON = _sink is not None


def enabled() -> bool:
    return _sink is not None


def checkpoint(reason: str = "finalize") -> None:
    """``C_Finalize``: a checkpoint covering every record of the run so far."""
    sink = _sink
    if sink is not None and sink.pid == os.getpid():
        sink.checkpoint(reason)


def _after_fork_in_child() -> None:
    """The child starts its own run when it initializes again (its pid is new)."""
    global _sink, KEY_USE, ON
    KEY_USE = ON = False
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
    raw = attrs.get(CKA_LABEL)
    return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else None


def login(token: Any, user: int, exc: BaseException | None = None, failures: int | None = None) -> None:
    """A PIN check of ``user`` on ``token``: ``login.ok`` / ``login.failed``."""
    if metrics.ON:
        metrics.login(token.slot_id, USERS.get(user, str(user)), exc)
    if _sink is None:
        return
    fields: dict[str, Any] = {"slot": token.slot_id, "user": USERS.get(user, user), "outcome": _ckr(exc)}
    if failures is not None:
        fields["failures"] = failures
        fields["max_failures"] = token.cfg.max_pin_failures
    event("login.ok" if exc is None else "login.failed", "info" if exc is None else "warning", **fields)


def token_event(name: str, token: Any, user: int | None = None) -> None:
    """``login.locked``, ``logout``, ``token.init``, ``pin.set`` of one token."""
    if name == "login.locked" and metrics.ON:
        metrics.lockout(token.slot_id, USERS.get(user, str(user)) if user is not None else "?")
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
    cls = attrs.get(CKA_CLASS)
    event(f"object.{action}", slot=token.slot_id, handle=obj.handle, unique_id=obj.unique_id,
          object_class=spec.cko_name(cls) if cls is not None else None, label=_label(attrs),
          token_object=obj.oid is not None)


_BACKEND_NAMES = {spec.SHIM_BACKEND_SOFTWARE: "software", spec.SHIM_BACKEND_TPM: "tpm",
                  spec.SHIM_BACKEND_UPSTREAM: "upstream"}


def _key_fields(session: Any, kind: str, mechanism: int, key: Any, exc: BaseException | None) -> dict[str, Any]:
    """The fields of every ``key.use`` record: where, which operation and key, the outcome."""
    backend = key.attrs.get(CKA_SHIM_BACKEND, spec.SHIM_BACKEND_SOFTWARE)
    return {"slot": session.token.slot_id, "session": session.handle, "operation": kind,
            "mechanism": spec.ckm_name(mechanism), "key_unique_id": key.unique_id,
            "key_label": _label(key.attrs), "backend": _BACKEND_NAMES.get(backend, str(backend)),
            "outcome": _ckr(exc)}


def key_use(session: Any, op: Any, exc: BaseException | None = None) -> None:
    """The end of an operation with a key (its outcome); a failed device adds ``backend.error``."""
    if _sink is None or not _key_use or op.key is None:
        return
    key = op.key
    fields = _key_fields(session, op.kind, op.mechanism, key, exc)
    event("key.use", "info" if exc is None else "warning", **fields)
    if isinstance(exc, CryptokiError) and exc.ckr in BACKEND_FAILURES:
        backend_error(fields["backend"], exc, slot=session.token.slot_id, key_unique_id=key.unique_id)


def key_management(session: Any, kind: str, mechanism: int, key: Any, other: Any,
                   exc: BaseException | None = None) -> None:
    """C_WrapKey / C_UnwrapKey / C_DeriveKey as key uses (issue 15 item 7): one ``key.use``
    record with the key used, the mechanism and the other key (the wrapped key, or the new
    key); identities only, never values. Recorded whenever audit is on: these move key
    material, so ``key_use = false`` (which quiets the per-operation records) keeps them."""
    if _sink is None:
        return
    fields = _key_fields(session, kind, mechanism, key, exc)
    fields["wrapped_key_unique_id" if kind == "wrap" else "new_key_unique_id"] = (
        other.unique_id if other is not None else None)
    event("key.use", "info" if exc is None else "warning", **fields)


def backend_error(backend: str, exc: BaseException, **fields: Any) -> None:
    """A TPM, upstream module or store failure (``CKR_DEVICE_ERROR`` ...)."""
    if _sink is None:
        return
    event("backend.error", "warning", backend=backend, outcome=_ckr(exc), **fields)


# --------------------------------------------------------------------------- verification

_RUN_ID = re.compile(r"[0-9a-f]{16}\Z")
_MAC_HEX = re.compile(r"[0-9a-f]{64}\Z")
_EVENT = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\Z")
_FIELD = re.compile(r"[a-z][a-z0-9_]*\Z")
_RESERVED = frozenset((*ENVELOPE, "mac", "hash"))
_TYPES: dict[str, type] = {"time": str, "pid": int, "run": str, "seq": int, "event": str, "mac": str}
#: The fields an ``audit.start`` record must have (the run's checkpoint policy, the key's name).
START_FIELDS = ("key_id", "checkpoint_every", "checkpoint_seconds")


@dataclass
class Problem:
    line: int
    what: str


@dataclass
class Run:
    """What ``verify`` learnt of one run: its chain position and its checkpoints."""

    run: str
    pid: int
    first_line: int
    last_line: int = 0
    records: int = 0
    last_seq: int = 0
    prev: bytes | None = bytes(MAC_LEN)  # None after a gap: the next MAC cannot be checked
    checkpoint_seq: int = 0
    checkpoints: dict[int, str] = field(default_factory=dict)  # seq -> mac (start and checkpoints)

    @property
    def unprotected(self) -> int:
        """Records after the last checkpoint: their loss would not be detected."""
        return self.last_seq - self.checkpoint_seq


@dataclass
class Report:
    records: int = 0
    runs: dict[str, Run] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ledger_entries: int = 0
    #: Ledger runs absent from the log and outside its time span (other or rotated files).
    runs_elsewhere: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def checkpoints(self) -> int:
        return sum(len(r.checkpoints) for r in self.runs.values())


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"field {k!r} appears twice")
        out[k] = v
    return out


def parse_record(line: str) -> tuple[dict[str, Any] | None, str]:
    """A record in exactly the form ``_Sink`` writes, or (None, why not).

    Strict on purpose: the MAC covers the bytes of the line, so every other form (spaces,
    escapes, duplicate or reordered fields, a ``hash`` left from a SHA-256 chain) is refused
    with its own reason rather than relied on.
    """
    import datetime
    import json

    if not line.strip():
        return None, "empty line"
    try:
        rec = json.loads(line, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        return None, f"not a JSON record ({exc})"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    names = list(rec)
    if names[:len(ENVELOPE)] != list(ENVELOPE):
        return None, f"fields {', '.join(ENVELOPE)} missing or out of order"
    if names[-1] != "mac":
        return None, "no mac (every record carries one, as its last field)"
    for name, kind in _TYPES.items():
        value = rec[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            return None, f"{name} is {type(value).__name__}, not {kind.__name__}"
    try:
        stamp = datetime.datetime.fromisoformat(rec["time"])
    except ValueError:
        stamp = None
    if stamp is None or stamp.utcoffset() is None:
        return None, f"time {rec['time']!r} is not an ISO 8601 time with offset"
    checks = ((rec["pid"] > 0, "pid"), (_RUN_ID.match(rec["run"]), "run"), (rec["seq"] >= 1, "seq"),
              (_EVENT.match(rec["event"]), "event"), (_MAC_HEX.match(rec["mac"]), "mac"))
    for good, name in checks:
        if not good:
            return None, f"{name} {rec[name]!r} is malformed"
    for name in names[len(ENVELOPE):-1]:
        value = rec[name]
        if name in _RESERVED or not _FIELD.match(name):
            return None, f"field {name!r} is not allowed here"
        if value is not None and not isinstance(value, (str, int)):  # bool is an int
            return None, f"field {name!r} holds a {type(value).__name__}"
    if rec["event"] == START and any(not isinstance(rec.get(n), (str, int)) for n in START_FIELDS):
        return None, f"{START} without {', '.join(START_FIELDS)}"
    if json.dumps(rec, separators=(",", ":"), ensure_ascii=True) != line:
        return None, "not in the form the module writes (re-encoded or edited by hand)"
    return rec, ""


def verify(lines: Iterable[str], key: bytes, ledger: Iterable[str] | None = None,
           log_paths: Iterable[str] = ()) -> Report:
    """Check an audit log with its key (and the ledger, when given).

    Per line: the strict form (``parse_record``). Per run (lines of several processes
    interleave: one file, many clients): ``seq`` counts 1, 2, 3 ... from an ``audit.start``,
    and every ``mac`` follows from the key and the previous record's mac (edits, forgeries,
    insertions, reordering, deletions in the middle, a cut head). With the ledger: every
    start and checkpoint it lists for a run in the log is there with the same mac (a tail
    cut at or before a checkpoint), every run in the log is in it, and no run that the
    ledger places inside the log's time span is missing (a whole run deleted).
    """
    from cryptography.hazmat.primitives import constant_time, hashes, hmac

    base = hmac.HMAC(key, hashes.SHA256())
    base.update(_DOMAIN)
    our_key_id = key_id(key)
    report = Report()
    times: list[str] = []

    def problem(line: int, what: str) -> None:
        report.problems.append(Problem(line, what))

    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\n") else raw
        rec, why = parse_record(line)
        if rec is None:
            problem(number, why)
            continue
        report.records += 1
        run_id, seq, mac = rec["run"], rec["seq"], bytes.fromhex(rec["mac"])
        times.append(rec["time"])
        run = report.runs.get(run_id)
        if run is None:
            run = report.runs[run_id] = Run(run_id, rec["pid"], number)
        name = f"run {run_id} (pid {run.pid}) seq {seq}"
        if rec["pid"] != run.pid:
            problem(number, f"{name}: pid {rec['pid']} in a run of pid {run.pid}")
        if seq <= run.last_seq:
            problem(number, f"{name} after seq {run.last_seq}: duplicated or reordered")
            continue
        if seq > run.last_seq + 1:
            missing = (f"{run.last_seq + 1}" if seq == run.last_seq + 2 else f"{run.last_seq + 1}-{seq - 1}")
            problem(number, f"{name}: record(s) {missing} missing" + (" (the run's head was cut)"
                                                                        if run.last_seq == 0 else ""))
            run.prev = None
        if run.prev is not None:
            h = base.copy()
            h.update(run.prev)
            h.update((line[: line.rindex(',"mac":')] + "}").encode())
            if not constant_time.bytes_eq(h.finalize(), mac):
                other = rec["event"] == START and rec.get("key_id") != our_key_id
                problem(number, f"{name}: MAC does not match ("
                                + (f"written under another audit key, key_id {rec.get('key_id')}, ours {our_key_id}"
                                   if other else "record edited or forged, or the one before it") + ")")
        if seq == 1 and rec["event"] != START:
            problem(number, f"{name}: a run's first record must be {START}")
        if rec["event"] in (START, CHECKPOINT):
            run.checkpoints[seq] = rec["mac"]
            run.checkpoint_seq = seq
        run.prev, run.last_seq, run.last_line = mac, seq, number
        run.records += 1
    if ledger is not None:
        _check_ledger(report, ledger, {os.path.realpath(p) for p in log_paths}, min(times, default=""),
                      max(times, default=""), problem)
    report.problems.sort(key=lambda p: p.line)
    return report


def _check_ledger(report: Report, ledger: Iterable[str], log_paths: set[str], first: str, last: str,
                  problem: Any) -> None:
    import json

    by_run: dict[str, list[dict[str, Any]]] = {}
    for number, raw in enumerate(ledger, 1):
        try:
            entry = json.loads(raw)
            entry["seq"] = int(entry["seq"])
            by_run.setdefault(str(entry["run"]), []).append(entry)
        except (ValueError, KeyError, TypeError):
            problem(0, f"ledger line {number} is malformed")
    report.ledger_entries = sum(len(v) for v in by_run.values())
    for run_id, entries in by_run.items():
        run = report.runs.get(run_id)
        if run is None:
            start = entries[0]
            inside = first < str(start.get("time", "")) < last
            if inside and os.path.realpath(str(start.get("log", ""))) in log_paths:
                problem(0, f"run {run_id} (pid {start.get('pid')}) started at {start.get('time')} inside this "
                           f"log's time span and reached seq {entries[-1]['seq']} (ledger), but none of its "
                           "records is in the log: deleted")
            else:
                report.runs_elsewhere += 1
            continue
        beyond = [e["seq"] for e in entries if e["seq"] > run.last_seq]
        if beyond:
            problem(run.last_line, f"run {run_id} (pid {run.pid}): the log ends at seq {run.last_seq} but the "
                                   f"ledger has a checkpoint of it at seq {max(beyond)}: the run's tail was cut "
                                   "(or it continues in another file: verify the files together)")
        for e in entries:
            seen = run.checkpoints.get(e["seq"])
            if seen == e.get("mac") or e["seq"] > run.last_seq:
                continue
            if seen is not None:
                problem(run.last_line, f"run {run_id} seq {e['seq']}: the ledger holds another mac for this "
                                       f"{e.get('event')}")
            else:
                problem(run.last_line, f"run {run_id} seq {e['seq']}: the ledger's {e.get('event')} is not in the "
                                       "log")
    for run in report.runs.values():
        listed = {e["seq"] for e in by_run.get(run.run, [])}
        absent = sorted(set(run.checkpoints) - listed)
        if absent:
            problem(run.first_line, f"run {run.run} (pid {run.pid}): start/checkpoint seq {absent[0]} is not in "
                                    "the ledger (another ledger, or the ledger was edited)")
