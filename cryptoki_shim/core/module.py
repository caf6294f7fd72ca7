"""Module-wide state: initialized or not, the slots, the sessions, login (§5.4–§5.6).

One ``MODULE`` per process. ``C_Finalize`` resets it (Python itself is never finalized).
After ``fork()`` the child's module is reset too (``os.register_at_fork``, which our C fork
handler triggers through ``PyOS_AfterFork_Child``), so the child answers
``CKR_CRYPTOKI_NOT_INITIALIZED`` until it calls ``C_Initialize`` (§5.4, fork note), and no
lock held by a parent thread at fork time is ever waited on.

Sessions and tokens (and through them the store, the attribute policy and pyca/cryptography)
are imported on first use, not here: C_Initialize and the slot queries must not pay for
them (issue #9, cold start).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from .. import audit, diagnostics, metrics
from .. import config as config_mod
from .. import log as log_mod
from .. import spec
from ..spec_ints import CKF_ASYNC_SESSION, CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_CONTEXT_SPECIFIC, CKU_SO, CKU_USER
from ..errors import CryptokiError
from . import lane, states
from .states import LOGIN_CONTEXT, LOGIN_EVENT, LOGOUT, OPENED, SESSION, IllegalMove, Refused

if TYPE_CHECKING:
    from .session import Session
    from .token import Token

_log = logging.getLogger(__name__)


#: ``session.Session``, imported by the first C_OpenSession (see the module docstring).
_Session: Any = None


def _session_type() -> Any:
    global _Session
    from .session import Session

    _Session = Session
    return Session


class Sessions(dict):
    """The open sessions by handle, and the one lookup of a session handle: ``sessions[h]``.

    Every entry point that takes a session handle starts with ``MODULE.sessions[h]``: a known
    handle costs one dict lookup (the operation path, docs/architecture.md); a missing one
    reaches ``__missing__``, the one place that answers CKR_CRYPTOKI_NOT_INITIALIZED (the
    module is not initialized: the dict is empty then) or CKR_SESSION_HANDLE_INVALID.
    """

    __slots__ = ("module",)

    def __init__(self, module: "Module") -> None:
        super().__init__()
        self.module = module

    def __missing__(self, handle: int) -> Session:
        module = self.module
        if module.native is not None and not handle & 1:  # maybe a session opened in C: claimed now
            session = module.adopt(handle)
            if session is not None:
                return session
        if not module.initialized:
            raise CryptokiError(spec.CKR_CRYPTOKI_NOT_INITIALIZED)
        raise CryptokiError(spec.CKR_SESSION_HANDLE_INVALID, f"session {handle}")


class Slot:
    """A configured slot. Its token (and the store behind it) is opened on first use, so a
    client that only lists modules or slots (p11-kit, NSS at start-up) never pays for
    importing and opening the store; a store that cannot be opened fails that first call
    with CKR_DEVICE_ERROR."""

    def __init__(self, cfg: config_mod.SlotConfig, module: "Module") -> None:
        self.cfg = cfg
        self._module = module
        self._token: Token | None = None

    @property
    def token(self) -> Token:
        token = self._token
        if token is None:
            with self._module.lock:
                if self._token is None:
                    self._token = self._module.open_token(self.cfg)
                token = self._token
        return token

    @property
    def opened(self) -> Token | None:
        """The token if it was opened (finalize and fork handling must not open it)."""
        return self._token


class Module:
    def __init__(self) -> None:
        #: The registry of the sessions opened in C (native/sessions.c's builtins, set by
        #: abi.sessions when the library has it; None in-process: the admin CLI, tests that
        #: import the package). Those sessions have even handles, ours odd (``adopt``).
        self.native: Any = None
        self._reset()
        self._session_handles = itertools.count(1, 2)

    def _reset(self) -> None:
        if self.native is not None:
            self.native.reset()  # C_Finalize, fork: the C sessions end with ours
        self.lock = threading.RLock()
        self.initialized = False
        self.pid: int | None = None
        self.config: config_mod.Config | None = None
        self.store: Any = None
        self.slots: dict[int, Slot] = {}
        self.sessions = Sessions(self)

    # ------------------------------------------------------------------ life cycle

    def initialize(self) -> None:
        with self.lock:
            if self.initialized and self.pid == os.getpid():
                raise CryptokiError(spec.CKR_CRYPTOKI_ALREADY_INITIALIZED)
            if self.pid is not None and self.pid != os.getpid():
                self.after_fork()
            # Logging follows CRYPTOKI_SHIM_LOG as it is now (a host may set it between loading
            # us and C_Initialize), and a previous configuration's log file is dropped.
            log_mod.configure_from_environment()
            try:
                cfg = config_mod.load()
            except config_mod.ConfigError as exc:
                _log.error("configuration: %s", exc)
                raise CryptokiError(spec.CKR_GENERAL_ERROR, str(exc)) from None
            if cfg.log_file and not os.environ.get("CRYPTOKI_SHIM_LOG"):
                log_mod.configure(cfg.log_file, cfg.log_level)
            for problem in diagnostics.problems(cfg):  # what will fail, at the default level (issue 21)
                _log.warning("%s (cryptoki-shim config-check reports it)", problem)
            audit.configure(cfg.audit, cfg.store_url)  # the default audit key sits next to the store
            metrics.configure(cfg.metrics)
            slots = {s.id: Slot(s, self) for s in cfg.slots}
            self.config, self.store, self.slots = cfg, None, slots
            self.sessions = Sessions(self)
            self.pid = os.getpid()
            self.initialized = True
            _log.info("initialized from %s with slots %s", cfg.source, sorted(slots))

    def open_store(self) -> Any:
        """The store, opened on first use (see Slot)."""
        self.require()
        with self.lock:
            if self.store is None:
                from ..store import Store

                self.store = Store(self.config.store_url, key_file=self.config.store_key_file,
                                   fast_path=self.config.store_fast_path, connect=self.config.store_connect,
                                   connect_timeout=self.config.store_connect_timeout)
            return self.store

    def open_token(self, cfg: config_mod.SlotConfig) -> Token:
        """Open the store (once) and the token of one slot; store failures are DEVICE_ERROR."""
        assert self.config is not None
        from .token import Token

        try:
            token = Token(cfg, self.open_store())
            token.replaced = lambda: self._token_replaced(token)
            return token
        except CryptokiError as exc:
            audit.backend_error("store", exc)
            raise
        except Exception as exc:
            from ..store.pg import safe_url

            _log.exception("cannot open the store %s", safe_url(self.config.store_url))
            audit.backend_error("store", exc)
            raise CryptokiError(spec.CKR_DEVICE_ERROR, f"store: {exc}") from None

    def finalize(self) -> None:
        with self.lock:
            self.require()
            for slot in self.slots.values():
                if slot.opened is not None:
                    slot.opened.logout()
            audit.checkpoint("finalize")  # the run so far is covered (issue 15 item 4)
            metrics.flush()
            if self.store is not None:
                self.store.close()
            self._reset()

    def after_fork(self) -> None:
        """In a forked child: forget the parent's state without touching its locks/connections."""
        store = self.store
        self._reset()
        if store is not None:
            try:
                store.after_fork()
            except Exception:  # never let the child's reset fail
                _log.exception("store after_fork")

    def require(self) -> None:
        if not self.initialized:
            raise CryptokiError(spec.CKR_CRYPTOKI_NOT_INITIALIZED)

    # ------------------------------------------------------------------ slots

    def slot(self, slot_id: int) -> Slot:
        if not self.initialized:
            raise CryptokiError(spec.CKR_CRYPTOKI_NOT_INITIALIZED)
        slot = self.slots.get(slot_id)
        if slot is None:
            raise CryptokiError(spec.CKR_SLOT_ID_INVALID, f"slot {slot_id}")
        return slot

    def slot_ids(self) -> list[int]:
        self.require()
        return sorted(self.slots)

    def sessions_of(self, token: Token) -> list[Session]:
        """Every session of the application on ``token``: the C sessions are claimed first
        (native/sessions.c), so the callers (login, logout, C_InitToken, C_CloseAllSessions,
        the session counts of CK_TOKEN_INFO) see all of them."""
        if self.native is not None:
            with self.lock:
                for handle, flags in self.native.claim_all(token.slot_id):
                    self._add(handle, token, flags)
        return [self.sessions[h] for h in list(token.session_handles) if h in self.sessions]

    # ------------------------------------------------------------------ sessions

    def open_session(self, slot_id: int, flags: int) -> int:
        return self.open_session_on(self.slot(slot_id), flags)

    def open_session_on(self, slot: Slot, flags: int) -> int:
        """C_OpenSession once the slot is known (``slot()``): the hot path of session churn."""
        if not flags & CKF_SERIAL_SESSION:
            raise CryptokiError(spec.CKR_SESSION_PARALLEL_NOT_SUPPORTED)
        if flags & CKF_ASYNC_SESSION:  # 3.2: this token has no asynchronous sessions
            raise CryptokiError(spec.CKR_SESSION_ASYNC_NOT_SUPPORTED)
        token = slot._token or slot.token
        if not token.initialized:  # an initialized token stays so until C_InitToken, which re-checks
            token.refresh()
            if not token.initialized:
                raise CryptokiError(spec.CKR_TOKEN_NOT_RECOGNIZED, "token not initialized (C_InitToken)")
        session_type = _Session or _session_type()
        with self.lock:
            opened = OPENED[token.login_user, not not flags & CKF_RW_SESSION]
            if opened.__class__ is Refused:  # no R/O session while the SO is logged in
                raise IllegalMove(opened, token.login_user, "open")
            handle = next(self._session_handles)
            self.sessions[handle] = session_type(handle, token, flags)
            token.session_handles.add(handle)
            if self.native is not None:  # from now on C may open sessions here (no SO: OPENED allows both)
                on = token.login_user != CKU_SO and self.config.native_sessions
                self.native.sync(token.slot_id, len(token.session_handles), int(on))
            return handle

    def _add(self, handle: int, token: Token, flags: int) -> Session:
        session = (_Session or _session_type())(handle, token, flags)
        self.sessions[handle] = session
        token.session_handles.add(handle)
        return session

    def adopt(self, handle: int) -> Session | None:
        """The session ``handle`` if C_OpenSession answered it in C and no call named it yet
        (native/sessions.c): claimed from there, it becomes an ordinary session; else None."""
        with self.lock:
            session = dict.get(self.sessions, handle)  # claimed by another thread meanwhile
            if session is not None:
                return session
            claimed = self.native.claim(handle)
            if claimed is None:
                return None
            slot_id, flags = claimed
            return self._add(handle, self.slots[slot_id].token, flags)

    def session(self, handle: int) -> Session:
        """The session of ``handle`` (``Sessions``: the entry points write ``sessions[h]``)."""
        return self.sessions[handle]

    def close_session(self, handle: int) -> None:
        with self.lock:
            if not self.initialized:
                raise CryptokiError(spec.CKR_CRYPTOKI_NOT_INITIALIZED)
            session = self.sessions.pop(handle, None)
            if session is None and self.native is not None and self.adopt(handle) is not None:
                session = self.sessions.pop(handle)  # a C session: its slot's last (native/sessions.c)
            if session is None:
                raise CryptokiError(spec.CKR_SESSION_HANDLE_INVALID, f"session {handle}")
            token = session.token
            token.session_handles.discard(handle)
            if token.session_objects:
                token.drop_session_objects(handle)
            left = len(token.session_handles)
            if self.native is not None:  # and the C sessions of the slot (Python's count told)
                left += self.native.sync(token.slot_id, left, 2)
            if not left and token.login_user is not None:
                token.logout()  # §5.6: the application's last session logs it out (states: LOGOUT)

    def close_all_sessions(self, slot_id: int) -> None:
        with self.lock:
            self._end_sessions(self.slot(slot_id).token)

    def _token_replaced(self, token: Token) -> None:
        """C_InitToken in another process or on another host (seen by `Token.refresh`): as
        if the token had been removed and a new one inserted (§5.6), this application's
        sessions on it end and its login is gone; their handles answer
        CKR_SESSION_HANDLE_INVALID from now on, the call that found it included."""
        with self.lock:
            ended = len(self.sessions_of(token))
            self._end_sessions(token)
        if ended:
            _log.warning("slot %d: the token was re-initialized elsewhere: %d session(s) ended", token.slot_id, ended)

    def _end_sessions(self, token: Token) -> None:
        with self.lock:
            for s in self.sessions_of(token):
                del self.sessions[s.handle]
                lane.forget(s.handle)  # the native lane's state of the session goes too
            token.session_handles.clear()
            if self.native is not None:
                self.native.sync(token.slot_id, 0, 2)
            token.drop_session_objects(None)
            if token.login_user is not None:
                token.logout()  # §5.6: the last session closed (states: LOGOUT)

    # ------------------------------------------------------------------ login and PINs

    def login(self, session: Session, user: int, pin: bytes | None) -> None:
        """C_Login: the argument checks, then ``states.SESSION``'s move for every session of
        the application on the token (an SO login is refused while one is R/O), then the PIN."""
        token = session.token
        if user not in (CKU_SO, CKU_USER, CKU_CONTEXT_SPECIFIC):
            raise CryptokiError(spec.CKR_USER_TYPE_INVALID, f"user type {user}")
        if pin is None:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "no protected authentication path; a PIN is required")
        if user == CKU_CONTEXT_SPECIFIC:
            ops = session.waiting_for_context_login()
            if not ops:
                raise CryptokiError(spec.CKR_OPERATION_NOT_INITIALIZED, "no operation waits for context login")
            states.move(SESSION, session.state, LOGIN_CONTEXT)
            token.verify_pin(CKU_USER, pin)
            session.context_logged_in(ops)
            return
        event = LOGIN_EVENT[user]
        with self.lock:
            if user == CKU_SO and self.native is not None:  # no session opened in C from now on: OPENED changes
                self.native.sync(token.slot_id, len(token.session_handles), 0)
            for s in self.sessions_of(token):
                states.move(SESSION, s.state, event)
            if user == CKU_USER and (token.record is None or token.record.user_pin is None):
                token.refresh(force=True)
                if token.record is None or token.record.user_pin is None:
                    raise CryptokiError(spec.CKR_USER_PIN_NOT_INITIALIZED)
        token.login(user, pin)
        if user == CKU_SO and self.native is not None:
            with self.lock:  # again: a Python C_OpenSession during the PIN check may have enabled C
                self.native.sync(token.slot_id, len(token.session_handles), 0)
        audit.login(token, user)

    def logout(self, session: Session) -> None:
        token = session.token
        with self.lock:
            states.move(SESSION, session.state, LOGOUT)
            for s in self.sessions_of(token):
                s.end_operations()
            token.logout()  # private session objects go, private handles become invalid (§5.6.8)
            audit.token_event("logout", token)

    def init_token(self, slot_id: int, so_pin: bytes | None, label: bytes, *, force: bool = False) -> None:
        """C_InitToken; ``force`` (admin CLI only, never the ABI) skips the old SO PIN."""
        token = self.slot(slot_id).token
        if so_pin is None:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "a PIN is required")
        with self.lock:
            if self.native is not None:  # no session opened in C while the token is made anew
                self.native.sync(token.slot_id, len(token.session_handles), 0)
            if self.sessions_of(token):
                raise CryptokiError(spec.CKR_SESSION_EXISTS)
            token.check_pin_length(so_pin)
            token.init_token(so_pin, label, force=force)

    def init_pin(self, session: Session, pin: bytes | None) -> None:
        token = session.token
        if token.login_user != CKU_SO:
            raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs the SO")
        if pin is None:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "a PIN is required")
        token.check_pin_length(pin)
        token.set_user_pin(pin)

    def set_pin(self, session: Session, old: bytes | None, new: bytes | None) -> None:
        token = session.token
        if old is None or new is None:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "PINs are required")
        if not session.rw:
            raise CryptokiError(spec.CKR_SESSION_READ_ONLY)
        user = CKU_SO if token.login_user == CKU_SO else CKU_USER
        token.check_pin_length(new)
        key = token.verify_pin(user, old)
        if user == CKU_SO:
            token.set_so_pin(new, key)
        else:
            token.set_user_pin(new, key)


MODULE = Module()

os.register_at_fork(after_in_child=MODULE.after_fork)
