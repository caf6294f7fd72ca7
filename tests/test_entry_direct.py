"""Direct entries (``entry(..., direct=True)``): cffi's onerror maps their exceptions exactly
as the wrapper of ordinary entries does (CryptokiError -> its CKR, anything else -> logged
CKR_GENERAL_ERROR), and a direct entry that forgets to return an int never answers CKR_OK.
Checked through a real cffi callback, the mechanism the embedded library uses."""

from __future__ import annotations

import logging

import cffi
import pytest

from cryptoki_shim import spec
from cryptoki_shim.abi import entry
from cryptoki_shim.errors import CryptokiError

ffi = cffi.FFI()


def as_c(fn):
    return ffi.callback("unsigned long(unsigned long)", fn, error=entry.CKR_GENERAL_ERROR,
                        onerror=entry._direct_onerror("C_Test"))


def impl(x: int):
    if x == 1:
        raise CryptokiError(spec.CKR_SESSION_HANDLE_INVALID, "no such session")
    if x == 2:
        raise ValueError("a bug")
    if x == 3:
        return None
    return entry.CKR_OK


@pytest.mark.parametrize("arg, expected", [
    (0, 0),
    (1, int(spec.CKR_SESSION_HANDLE_INVALID)),
    (2, int(spec.CKR_GENERAL_ERROR)),
    (3, int(spec.CKR_GENERAL_ERROR)),
])
def test_direct_entry_answers(arg: int, expected: int) -> None:
    assert as_c(impl)(arg) == expected


def test_unexpected_error_is_logged_with_entry_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="cryptoki_shim.abi"):
        assert as_c(impl)(2) == int(spec.CKR_GENERAL_ERROR)
    assert any("C_Test" in r.getMessage() and r.exc_info for r in caplog.records)


def test_only_entries_registered_direct_are_direct() -> None:
    from cryptoki_shim.abi import sessions  # noqa: F401  (registers its entries)

    assert {"C_OpenSession", "C_CloseSession", "C_GetSessionInfo"} <= entry.DIRECT
    assert {"C_Login", "C_Logout", "C_CloseAllSessions"} & entry.DIRECT == set()
