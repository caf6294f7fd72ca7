"""Attaching Python implementations to the C entry points, and mapping errors to CKR.

Every entry is wrapped once: ``CryptokiError`` becomes its ``ckr``; any other exception is a
bug, logged with its traceback and answered ``CKR_GENERAL_ERROR`` (DESIGN.md §2.4: a plain
``def_extern`` that raises would answer 0 = CKR_OK). A function with no implementation
answers ``CKR_FUNCTION_NOT_SUPPORTED``, never a NULL slot in the table.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

from .. import spec
from ..errors import CryptokiError
from . import runtime

_log = logging.getLogger("cryptoki_shim.abi")

IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {}

#: Modules that define entries with @entry; imported by install().
ENTRY_MODULES = ("general", "slots", "sessions", "objects", "crypto")

CKR_OK = 0
CKR_GENERAL_ERROR = int(spec.CKR_GENERAL_ERROR)
CKR_FUNCTION_NOT_SUPPORTED = int(spec.CKR_FUNCTION_NOT_SUPPORTED)


def entry(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the implementation of the C function ``name``.

    The implementation returns ``None`` (CKR_OK) or a CKR value that is not a failure of
    the whole call (C_GetAttributeValue's per-attribute codes), and raises CryptokiError.
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in IMPLEMENTATIONS:
            raise ValueError(f"{name} implemented twice")
        IMPLEMENTATIONS[name] = fn
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
            return exc.ckr
        except Exception:
            _log.exception("%s: unexpected error (answered CKR_GENERAL_ERROR)", name)
            return CKR_GENERAL_ERROR

    call.__name__ = name
    return call


def _not_supported(name: str) -> Callable[..., int]:
    def call(*_args: Any) -> int:
        if not _module_initialized():
            return int(spec.CKR_CRYPTOKI_NOT_INITIALIZED)
        return CKR_FUNCTION_NOT_SUPPORTED

    call.__name__ = name
    return call


def _module_initialized() -> bool:
    from ..core.module import MODULE

    return MODULE.initialized


def _onerror(exc_type: Any, exc_value: Any, tb: Any) -> None:
    """cffi calls this when even the wrapper raised (BaseException): log, answer GENERAL_ERROR."""
    _log.error("entry raised %s: %s", getattr(exc_type, "__name__", exc_type), exc_value, exc_info=(exc_type, exc_value, tb))


def install(ffi: Any, lib: Any, names: list[str]) -> None:
    """Attach an implementation (or NOT_SUPPORTED) to every ``py_<name>`` of the library."""
    runtime.ffi, runtime.lib, runtime.NULL = ffi, lib, ffi.NULL
    from ..log import configure_from_environment

    configure_from_environment()
    for module in ENTRY_MODULES:
        importlib.import_module(f"{__package__}.{module}")
    for name in names:
        impl = IMPLEMENTATIONS.get(name)
        fn = _wrap(name, impl) if impl is not None else _not_supported(name)
        ffi.def_extern(name=f"py_{name}", error=CKR_GENERAL_ERROR, onerror=_onerror)(fn)
