"""General-purpose functions (§5.4): C_Initialize, C_Finalize, C_GetInfo."""

from __future__ import annotations

from typing import Any

from .. import __version__, spec
from ..core.module import MODULE
from ..errors import CryptokiError
from ..spec_ints import CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR
from .. import runtime
from .entry import entry
from .marshal import fill_text, require

MANUFACTURER = "cryptoki-shim project"
LIBRARY_DESCRIPTION = "cryptoki-shim PKCS#11 provider"
LIBRARY_VERSION = tuple(int(x) for x in __version__.split(".")[:2])


@entry("C_Initialize")
def C_Initialize(p_init_args: Any) -> None:
    """NULL, or CK_C_INITIALIZE_ARGS: mutex callbacks all or none, pReserved NULL (§5.4.1).

    Supplied mutex callbacks are accepted and our own (OS) locks are used, with or without
    CKF_OS_LOCKING_OK: both are native locks, so the application's guarantee holds.
    """
    if p_init_args != runtime.NULL:
        args = runtime.ffi.cast("CK_C_INITIALIZE_ARGS *", p_init_args)
        fns = (args.CreateMutex, args.DestroyMutex, args.LockMutex, args.UnlockMutex)
        given = sum(f != runtime.NULL for f in fns)
        if given not in (0, 4):
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "mutex callbacks must be all or none")
        if args.pReserved != runtime.NULL:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "pReserved must be NULL")
    MODULE.initialize()
    from . import lane  # the native lane, on or off by the configuration just read

    lane.configure(MODULE.config)


@entry("C_Finalize")
def C_Finalize(p_reserved: Any) -> None:
    if p_reserved != runtime.NULL:
        MODULE.require()
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "pReserved must be NULL")
    MODULE.finalize()


@entry("C_GetInfo")
def C_GetInfo(p_info: Any) -> None:
    """cryptokiVersion 3.2 here (the default interface's table); the 3.0 and 2.40 tables'
    C_GetInfo report their own version (C side, build_ffi.py: §5.4.2, the version of the
    interface the caller obtained)."""
    MODULE.require()
    require(p_info, "CK_INFO pointer")
    p_info.cryptokiVersion.major = CRYPTOKI_VERSION_MAJOR
    p_info.cryptokiVersion.minor = CRYPTOKI_VERSION_MINOR
    fill_text(p_info.manufacturerID, MANUFACTURER)
    p_info.flags = 0
    fill_text(p_info.libraryDescription, LIBRARY_DESCRIPTION)
    p_info.libraryVersion.major, p_info.libraryVersion.minor = LIBRARY_VERSION
