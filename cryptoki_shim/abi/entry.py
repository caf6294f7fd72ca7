"""Attaching Python implementations to the C entry points, and mapping errors to CKR.

Every entry is wrapped once: ``CryptokiError`` becomes its ``ckr``; any other exception is a
bug, logged with its traceback and answered ``CKR_GENERAL_ERROR`` (DESIGN.md §2.4: a plain
``def_extern`` that raises would answer 0 = CKR_OK). A function with no implementation
answers ``CKR_FUNCTION_NOT_SUPPORTED``, never a NULL slot in the table.

Cold start (issue #9): only the modules a client needs up to its first session
(``EAGER_MODULES``: C_Initialize, slots and tokens, sessions) are imported by ``install``.
Every other entry is first attached to a loader that imports ``LAZY_MODULES`` (objects and
crypto, and through them the attribute policy, the operations, the mechanism registry),
re-attaches every entry to its real implementation, and answers the call; later calls go
straight to the implementation. Re-attaching an entry while another thread is inside it is
safe from cffi 2.0 on (the call holds its own reference to the attachment); with an older
cffi every module is imported by ``install``.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any, Callable

from .. import spec
from ..spec_ints import CKR_CRYPTOKI_NOT_INITIALIZED, CKR_FUNCTION_NOT_SUPPORTED, CKR_GENERAL_ERROR
from ..errors import CryptokiError
from .. import metrics, runtime

_log = logging.getLogger("cryptoki_shim.abi")

IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {}
#: Entries registered with ``direct=True`` (see ``entry``).
DIRECT: set[str] = set()

#: Modules that define entries with @entry: imported by install() ...
EAGER_MODULES = ("general", "slots", "sessions")
#: ... and on the first call of an entry none of those defines.
LAZY_MODULES = ("objects", "crypto", "message", "kem", "verify_signature", "wrap_authenticated")
#: Every module that defines entries.
ENTRY_MODULES = EAGER_MODULES + LAZY_MODULES

CKR_OK = 0


def entry(name: str, *, direct: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the implementation of the C function ``name``.

    The implementation returns ``None`` (CKR_OK) or a CKR value that is not a failure of
    the whole call (C_GetAttributeValue's per-attribute codes), and raises CryptokiError.

    ``direct=True``: the implementation always returns an int (``CKR_OK`` included) and is
    attached without the wrapper; cffi hands its exceptions to an ``onerror`` that maps
    them exactly as the wrapper does. One Python frame less per call, for the entries whose
    cost is mostly that floor (C_GetSessionInfo, C_OpenSession, C_CloseSession: issue #9).
    A direct entry that returned None would answer CKR_GENERAL_ERROR (logged), never OK.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in IMPLEMENTATIONS:
            raise ValueError(f"{name} implemented twice")
        IMPLEMENTATIONS[name] = fn
        if direct:
            DIRECT.add(name)
        return fn

    return register


def _wrap(name: str, fn: Callable[..., Any]) -> Callable[..., int]:
    def call(*args: Any) -> int:
        try:
            rv = fn(*args)
            return CKR_OK if rv is None else rv
        except CryptokiError as exc:
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("%s -> %s: %s", name, spec.ckr_name(exc.ckr), exc)
            if metrics.ON:
                metrics.call_failed(name, exc.ckr)
            return exc.ckr
        except Exception:
            _log.exception("%s: unexpected error (answered CKR_GENERAL_ERROR)", name)
            if metrics.ON:
                metrics.call_failed(name, CKR_GENERAL_ERROR)
            return CKR_GENERAL_ERROR

    call.__name__ = name
    return call


def _direct_onerror(name: str) -> Callable[[Any, Any, Any], int]:
    """What ``_wrap`` does with an exception, as cffi's ``onerror`` of a direct entry.

    An ``onerror`` that raises makes cffi print "Exception ignored from cffi callback" on
    the host's stderr (issue 25, item 3), so nothing may escape it: not a failing log
    handler, not a RecursionError raised by the logging call itself."""

    def onerror(exc_type: Any, exc_value: Any, tb: Any) -> int:
        try:
            if isinstance(exc_value, CryptokiError):
                if _log.isEnabledFor(logging.DEBUG):
                    _log.debug("%s -> %s: %s", name, spec.ckr_name(exc_value.ckr), exc_value)
                if metrics.ON:
                    metrics.call_failed(name, exc_value.ckr)
                return exc_value.ckr
            if isinstance(exc_value, Exception):
                _log.error("%s: unexpected error (answered CKR_GENERAL_ERROR)", name,
                           exc_info=(exc_type, exc_value, tb))
            else:
                _onerror(exc_type, exc_value, tb)
        except BaseException:
            pass
        return CKR_GENERAL_ERROR

    return onerror


def _not_supported(name: str) -> Callable[..., int]:
    def call(*_args: Any) -> int:
        if not _module_initialized():
            return CKR_CRYPTOKI_NOT_INITIALIZED
        return CKR_FUNCTION_NOT_SUPPORTED

    call.__name__ = name
    return call


def _module_initialized() -> bool:
    from ..core.module import MODULE

    return MODULE.initialized


def _onerror(exc_type: Any, exc_value: Any, tb: Any) -> None:
    """cffi calls this when even the wrapper raised (BaseException, a RecursionError in the
    wrapper's own frame): log, and cffi answers the ``error`` value (CKR_GENERAL_ERROR).
    Never raises (see ``_direct_onerror``)."""
    try:
        _log.error("entry raised %s: %s", getattr(exc_type, "__name__", exc_type), exc_value,
                   exc_info=(exc_type, exc_value, tb))
    except BaseException:
        pass


def _reentered(name: Any, times: int = 1) -> None:
    """``shim_py_reentered``: the log line of a function the C guard refused because it was
    called on a thread already inside the module (native/shim.c, shim_reentered); ``times``
    when the line was deferred to the end of the outer call and counts several refusals."""
    try:
        _log.warning("%s refused (CKR_FUNCTION_FAILED)%s: called on a thread that is already inside "
                     "the module, through a library our call used (re-entry)",
                     runtime.ffi.string(name).decode("ascii", "replace"),
                     f" {times} times" if times > 1 else "",
                     stack_info=_log.isEnabledFor(logging.DEBUG))  # which library called back
    except BaseException:
        pass


class _Attacher:
    """Attaches entries to the embedded library; imports the lazy modules on demand."""

    def __init__(self, ffi: Any, names: list[str]) -> None:
        self.ffi = ffi
        self.names = names
        self.lock = threading.Lock()
        self.complete = False
        #: Entries attached to their loader, re-attached by complete_all().
        self.pending: list[str] = []

    def attach(self, name: str, fn: Callable[..., int]) -> None:
        onerror = _direct_onerror(name) if fn is IMPLEMENTATIONS.get(name) else _onerror
        self.ffi.def_extern(name=f"py_{name}", error=CKR_GENERAL_ERROR, onerror=onerror)(fn)

    def resolved(self, name: str) -> Callable[..., int]:
        impl = IMPLEMENTATIONS.get(name)
        if impl is None:
            return _not_supported(name)
        return impl if name in DIRECT else _wrap(name, impl)

    def attach_eager(self) -> None:
        for name in self.names:
            if name in IMPLEMENTATIONS:
                self.attach(name, self.resolved(name))
            else:
                self.pending.append(name)
                self.attach(name, self.loader(name))

    def loader(self, name: str) -> Callable[..., int]:
        """The first attachment of an entry of a lazy module: load, re-attach, answer."""

        def call(*args: Any) -> int:
            try:
                self.complete_all()
            except Exception:
                _log.exception("%s: importing the entry modules failed (answered CKR_GENERAL_ERROR)", name)
                return CKR_GENERAL_ERROR
            impl = IMPLEMENTATIONS.get(name)  # wrapped even if direct: this is not its attachment
            return _wrap(name, impl)(*args) if impl is not None else _not_supported(name)(*args)

        call.__name__ = name
        return call

    def complete_all(self) -> None:
        with self.lock:  # one thread imports; the others wait and find it done
            if self.complete:
                return
            for module in LAZY_MODULES:
                importlib.import_module(f"{__package__}.{module}")
            for name in self.pending:
                self.attach(name, self.resolved(name))
            self.pending = []
            self.complete = True


#: The attacher of the running library (None until install()).
_attacher: _Attacher | None = None


def install(ffi: Any, lib: Any, names: list[str], site_dirs: list[str] | None = None) -> None:
    """Attach an implementation, a loader or NOT_SUPPORTED to every ``py_<name>``.

    First the guest rules of ``isolation`` (issue 25): our output kept off the host's
    stdout/stderr, a Python host's other versions of our dependencies refused, the wheel's
    OpenSSL started without the host's configuration. ``site_dirs`` are our venv's
    site-packages (the embedding init code put them first on sys.path)."""
    global _attacher
    runtime.ffi, runtime.lib, runtime.NULL = ffi, lib, ffi.NULL
    from ..log import configure_from_environment
    from . import isolation

    configure_from_environment()
    owns = getattr(lib, "shim_owns_interpreter", None)
    owns_interpreter = bool(owns()) if owns is not None else False
    isolation.silence_output(owns_interpreter)
    isolation.keep_system_openssl_unstarted(owns_interpreter)
    try:
        ffi.def_extern(name="shim_py_reentered", onerror=_onerror)(_reentered)
    except Exception:  # a library built before the re-entry guard (no such extern)
        pass
    try:
        isolation.check_dependencies(list(site_dirs or ()))
    except isolation.DependencyConflict as exc:
        _log.error("refusing to start: %s", exc)
        raise
    isolation.import_openssl_hermetically()
    import _cffi_backend

    lazy = int(_cffi_backend.__version__.split(".")[0]) >= 2
    for module in EAGER_MODULES if lazy else ENTRY_MODULES:
        importlib.import_module(f"{__package__}.{module}")
    _attacher = _Attacher(ffi, names)
    _attacher.attach_eager()
