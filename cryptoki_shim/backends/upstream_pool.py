"""Pooled upstream sessions: one login per pool, lost sessions re-opened transparently.

Our sessions do not map to upstream sessions one to one: an upstream operation is always
a single atomic step here (init and one-shot call in one checked-out upstream session), so
any idle upstream session serves any of our sessions and a small pool suffices. Login
state is per application and token in PKCS#11 (§5.6), so logging in once on the first
session covers every session the pool opens later.

Failure handling (the tables are in ``upstream_errors``):

* lost session / login -> the session is dropped, a new one opened (login again if
  needed) and the step retried once;
* stale object handle -> the caller re-resolves by reference and retries once;
* token removed -> ``CKR_DEVICE_REMOVED``, the pool forgets its connection; the next use
  reconnects (and rescans tokens), so the token recovers when the upstream returns;
* wrong upstream PIN -> ``CKR_DEVICE_ERROR``; the same PIN is not tried again (each try
  would count toward the upstream's PIN lockout) until the configured PIN source changes.

Nothing here blocks other slots: each pool has its own lock, held only while connecting.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from .. import metrics, spec
from ..errors import CryptokiError
from . import upstream_client as client
from . import upstream_guard
from .upstream_errors import PIN_REJECTED, SUSPECT, ObjectMissing, Unavailable, UpstreamError

_log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_IDLE = 8


def read_pin(cfg: Mapping[str, Any]) -> bytes:
    """The upstream user PIN from ``pin_env`` or ``pin_file`` (never inline, DESIGN.md §5)."""
    if cfg.get("pin_env"):
        value = os.environ.get(cfg["pin_env"])
        if value is None:
            raise Unavailable(spec.CKR_DEVICE_ERROR, f"upstream PIN: ${cfg['pin_env']} is not set")
        return value.encode()
    if cfg.get("pin_file"):
        try:
            return Path(cfg["pin_file"]).read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise Unavailable(spec.CKR_DEVICE_ERROR, f"upstream PIN file: {exc.strerror}") from None
    raise Unavailable(spec.CKR_DEVICE_ERROR, "upstream PIN: set pin_env or pin_file")


class Pool:
    #: at most one upstream re-initialization per this many seconds (it voids every
    #: session of the library, those of other slots included: they re-open transparently)
    REINIT_INTERVAL = 1.0

    """Sessions of one upstream token (library + token label/serial) for one of our slots.

    Made with the slot's token (so a C_Finalize/C_Initialize of our module starts afresh);
    slots naming the same upstream token share the loaded library and its login state."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = dict(cfg)
        self.lock = threading.Lock()
        self.lib: client.Library | None = None
        self.slot: int | None = None
        self.generation = 0                 # bumped on every (re)connect: cached handles die
        self._lib_generation = -1
        self._idle: list[int] = []
        self._logged_in = False
        self._bad_pin: bytes | None = None
        self._mechanisms: dict[int, tuple[int, int, int]] | None = None
        self._last_reinit = 0.0
        self.name = os.path.basename(str(self.cfg.get("library") or "?"))
        self.timeout = float(self.cfg.get("call_timeout") or 0)
        self.breaker = upstream_guard.Breaker(self.name, int(self.cfg.get("breaker_failures") or 0),
                                              float(self.cfg.get("breaker_seconds") or 0))

    # ------------------------------------------------------------------ connection

    def _connect(self) -> client.Library:
        """Load, initialize, find the token (lock held). Raises CryptokiError if it cannot."""
        lib = self.lib
        if lib is not None and self.slot is not None and lib.generation == self._lib_generation:
            return lib
        lib = client.library(self.cfg["library"], client.parse_quirks(self.cfg.get("quirks")))
        label, serial = self.cfg.get("token_label"), self.cfg.get("token_serial")
        try:
            slot = lib.find_slot(label, serial)
        except Unavailable:
            lib.reinitialize()              # SoftHSM2 and others rescan tokens only here
            slot = lib.find_slot(label, serial)
        self.lib, self.slot = lib, slot
        self._lib_generation = lib.generation
        self._idle = []
        self._logged_in = False
        self._mechanisms = None
        self.generation += 1
        _log.info("upstream %s: token %r in slot %d", self.cfg["library"], label or serial, slot)
        return lib

    def _disconnect(self, why: str) -> None:
        with self.lock:
            _log.warning("upstream %s: %s; reconnecting on next use", self.cfg.get("library"), why)
            if self.lib is not None:
                for s in self._idle:
                    self.lib.close_session(s)
            self._idle = []
            self.slot = None
            self._logged_in = False

    def _reinit(self, why: str) -> bool:
        """Re-initialize the upstream library (rate-limited); True if the step may be retried."""
        now = time.monotonic()
        if self.lib is None or now - self._last_reinit < self.REINIT_INTERVAL:
            return False
        self._last_reinit = now
        _log.warning("upstream %s: %s; re-initializing the module", self.cfg.get("library"), why)
        self._disconnect(why)
        try:
            self.lib.reinitialize()
        except CryptokiError as exc:
            _log.error("upstream %s: re-initialization failed: %s", self.cfg.get("library"), exc)
        return True

    def _acquire(self) -> tuple[client.Library, int]:
        with self.lock:
            try:
                lib = self._connect()
            except UpstreamError as exc:
                raise CryptokiError(exc.ckr if exc.removed else spec.CKR_DEVICE_ERROR, str(exc)) from None
            if self._idle:
                return lib, self._idle.pop()
            session = lib.open_session(self.slot)
            if not self._logged_in:
                pin = read_pin(self.cfg)
                if pin == self._bad_pin:
                    lib.close_session(session)
                    raise Unavailable(spec.CKR_DEVICE_ERROR, "upstream PIN was rejected; not retried until it changes")
                try:
                    lib.login(session, pin)
                except UpstreamError as exc:
                    lib.close_session(session)
                    if exc.rv in PIN_REJECTED:
                        self._bad_pin = pin
                        _log.error("upstream %s: login rejected (%s); check pin_env/pin_file",
                                   self.cfg["library"], spec.ckr_name(exc.rv))
                        raise Unavailable(spec.CKR_DEVICE_ERROR, "upstream login rejected") from None
                    raise
                self._logged_in = True
            return lib, session

    def _release(self, session: int, generation: int) -> None:
        with self.lock:
            if generation == self.generation and self.slot is not None and len(self._idle) < MAX_IDLE:
                self._idle.append(session)
                return
        if self.lib is not None:
            self.lib.close_session(session)

    def run(self, step: Callable[[client.Library, int], T]) -> T:
        """``_run`` within ``call_timeout`` and behind the circuit breaker (upstream_guard)."""
        return upstream_guard.call(self.name, self.breaker, self.timeout, lambda: self._run(step))

    def _run(self, step: Callable[[client.Library, int], T]) -> T:
        """Run ``step(lib, session)`` on a pooled, logged-in session.

        A lost session is replaced and the step retried once; a removed token disconnects
        the pool. Every failure reaches the caller as a CryptokiError with our code.
        """
        for attempt in (0, 1):
            try:
                lib, session = self._acquire()
            except UpstreamError as exc:
                if exc.removed or exc.lost_session:
                    self._disconnect(str(exc))
                    if attempt == 0 and exc.lost_session:
                        continue
                    raise CryptokiError(spec.CKR_DEVICE_REMOVED if exc.removed else spec.CKR_DEVICE_ERROR,
                                        str(exc)) from None
                _log.error("upstream %s: %s", self.cfg.get("library"), exc)
                raise
            except Unavailable as exc:
                _log.error("upstream %s: %s", self.cfg.get("library"), exc)
                raise
            generation = self.generation
            started = metrics.now() if metrics.ON else 0.0
            try:
                if lib.serial:
                    with lib.lock:
                        result = step(lib, session)
                else:
                    result = step(lib, session)
                if metrics.ON:
                    metrics.round_trip("upstream", os.path.basename(self.cfg.get("library") or "?"), started)
            except UpstreamError as exc:
                if metrics.ON:
                    metrics.round_trip("upstream", os.path.basename(self.cfg.get("library") or "?"), started, exc)
                if exc.lost_session:
                    lib.close_session(session)
                    with self.lock:
                        self._logged_in = False if exc.rv == spec.CKR_USER_NOT_LOGGED_IN else self._logged_in
                    if exc.rv == spec.CKR_CRYPTOKI_NOT_INITIALIZED:
                        self._disconnect(str(exc))
                    if attempt == 0:
                        _log.info("upstream %s: %s; re-opening the session", self.cfg.get("library"), exc)
                        continue
                elif exc.removed:
                    self._disconnect(str(exc))
                else:
                    self._release(session, generation)
                if attempt == 0 and (exc.removed or exc.rv in SUSPECT) and self._reinit(str(exc)):
                    continue
                if exc.ckr == spec.CKR_DEVICE_ERROR:
                    _log.error("upstream %s: %s", self.cfg.get("library"), exc)
                raise
            except ObjectMissing as exc:
                self._release(session, generation)
                if attempt == 0 and self._reinit(str(exc)):
                    continue
                _log.error("upstream %s: %s", self.cfg.get("library"), exc)
                raise
            except BaseException:
                self._release(session, generation)
                raise
            self._release(session, generation)
            return result
        raise CryptokiError(spec.CKR_DEVICE_ERROR, "upstream session lost twice")  # pragma: no cover

    def mechanisms(self) -> dict[int, tuple[int, int, int]]:
        """The upstream token's mechanisms and their info (cached per connection)."""
        if self._mechanisms is None:
            mechs = self.run(lambda lib, s: lib.mechanisms(self.slot))
            self._mechanisms = mechs
        return self._mechanisms
