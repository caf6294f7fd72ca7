"""The one error type that carries a PKCS#11 return value.

Every layer raises ``CryptokiError(CKR_X, "why")``; only the ABI layer turns it into the
``CK_RV`` a C caller sees. Any other exception that reaches an entry point is a bug and is
returned as ``CKR_GENERAL_ERROR`` (and logged with its traceback).
"""

from __future__ import annotations


class CryptokiError(Exception):
    """A PKCS#11 failure with the CKR_* value the caller must receive."""

    __slots__ = ("ckr",)

    def __init__(self, ckr: int, message: str = "") -> None:
        super().__init__(message or hex(ckr))
        self.ckr = int(ckr)

    def __repr__(self) -> str:
        return f"CryptokiError({self.ckr:#x}, {self.args[0]!r})"


class BufferTooSmall(CryptokiError):
    """CKR_BUFFER_TOO_SMALL carrying the length the caller needs (§5.2 buffer protocol).

    Raised by whoever produces output (an operation keeps its computed output for the
    retry); the ABI writes ``needed`` into the caller's length field.
    """

    __slots__ = ("needed",)

    def __init__(self, needed: int) -> None:
        super().__init__(0x150, f"needs {needed} bytes")  # CKR_BUFFER_TOO_SMALL
        self.needed = needed
