"""Load the library as a C client does and report each step as a JSON line (for ``doctor``).

Run as a script in a child process (``python probe.py LIB``) so a crash or hang while
loading cannot take ``doctor`` down. Uses ctypes only — nothing of the package — and the
path every C client takes: dlopen, C_GetFunctionList, then calls through the table.
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any

CK_ULONG = ctypes.c_ulong
# Positions in CK_FUNCTION_LIST after the version (PKCS#11 2.40 / 3.0 pkcs11f.h order).
C_INITIALIZE, C_FINALIZE, C_GETINFO, C_GETSLOTLIST = 0, 1, 2, 4


class CK_VERSION(ctypes.Structure):
    _fields_ = [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]


class CK_INFO(ctypes.Structure):
    _fields_ = [("cryptokiVersion", CK_VERSION), ("manufacturerID", ctypes.c_char * 32), ("flags", CK_ULONG),
                ("libraryDescription", ctypes.c_char * 32), ("libraryVersion", CK_VERSION)]


class CK_FUNCTION_LIST(ctypes.Structure):
    _fields_ = [("version", CK_VERSION), ("fns", ctypes.c_void_p * 68)]


def report(step: str, ok: bool, detail: str) -> None:
    print(json.dumps({"step": step, "ok": ok, "detail": detail}), flush=True)


def fn(table: CK_FUNCTION_LIST, index: int, *argtypes: Any) -> Any:
    return ctypes.CFUNCTYPE(CK_ULONG, *argtypes)(table.fns[index])


def main(path: str) -> int:
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        report("dlopen", False, str(exc))
        return 1
    report("dlopen", True, path)
    pp = ctypes.POINTER(CK_FUNCTION_LIST)()
    rv = lib.C_GetFunctionList(ctypes.byref(pp))
    if rv != 0:
        report("C_GetFunctionList", False, f"rv {rv:#x}")
        return 1
    table = pp.contents
    report("C_GetFunctionList", True, f"version {table.version.major}.{table.version.minor}")
    rv = fn(table, C_INITIALIZE, ctypes.c_void_p)(None)
    report("C_Initialize", rv == 0, "ok" if rv == 0 else f"rv {rv:#x} (see the log: CRYPTOKI_SHIM_LOG=stderr)")
    if rv != 0:
        return 1
    info = CK_INFO()
    rv = fn(table, C_GETINFO, ctypes.POINTER(CK_INFO))(ctypes.byref(info))
    report("C_GetInfo", rv == 0, f"{info.libraryDescription.decode(errors='replace').strip()} "
                                 f"{info.libraryVersion.major}.{info.libraryVersion.minor}, Cryptoki "
                                 f"{info.cryptokiVersion.major}.{info.cryptokiVersion.minor}")
    count = CK_ULONG()
    rv = fn(table, C_GETSLOTLIST, ctypes.c_ubyte, ctypes.c_void_p, ctypes.POINTER(CK_ULONG))(0, None, ctypes.byref(count))
    report("C_GetSlotList", rv == 0, f"{count.value} slot(s)" if rv == 0 else f"rv {rv:#x}")
    rv = fn(table, C_FINALIZE, ctypes.c_void_p)(None)
    report("C_Finalize", rv == 0, "ok" if rv == 0 else f"rv {rv:#x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
