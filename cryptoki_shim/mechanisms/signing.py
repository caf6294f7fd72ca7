"""Operation contexts shared by the signature families (rsa, ec, eddsa).

A family supplies a *signer* for the key and mechanism (``sign(message) -> bytes``,
``verify(message, signature)`` raising CryptokiError, ``size`` = signature length) and an
*accumulator* for the multi-part calls: a running hash for the ``CKM_<hash>_*`` mechanisms
(the signer then gets the digest), a buffer for EdDSA (which must see the whole message,
spec §2.3.14), or none for the single-part-only mechanisms (CKM_RSA_PKCS, CKM_RSA_X_509,
CKM_RSA_PKCS_PSS, CKM_ECDSA: the spec's footnote "single-part operations only").

For a single-part mechanism C_SignUpdate/C_VerifyUpdate/C_*Final answer
CKR_FUNCTION_NOT_SUPPORTED (as SoftHSM2 does; the spec names no code) and the core ends the
operation.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from cryptography.hazmat.primitives import hashes

from ..errors import CryptokiError
from ..spec import CKR_FUNCTION_NOT_SUPPORTED, CKR_SAVED_STATE_INVALID
from .digest import accumulator


class Signer(Protocol):
    size: int

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, message: bytes, signature: bytes) -> None: ...


class Buffer:
    """Accumulator that keeps the whole message (EdDSA). Accumulators offer ``update``,
    ``finalize``, ``oneshot`` (both at once: the single-call C_Sign path), and ``save`` /
    ``load`` for C_GetOperationState."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def update(self, data: bytes) -> None:
        self._parts.append(bytes(data))

    def finalize(self) -> bytes:
        return b"".join(self._parts)

    def oneshot(self, data: bytes) -> bytes:
        self._parts.append(bytes(data))
        return b"".join(self._parts)

    def save(self) -> bytes:
        return b"".join(self._parts)

    def load(self, state: bytes) -> None:
        self._parts = [bytes(state)]


def hash_accumulator(algorithm: type[hashes.HashAlgorithm]) -> Callable[[], Any]:
    """A factory of running hashes for the CKM_<hash>_<sig> mechanisms: hermetic, and
    saveable for SHA-1/SHA-2 inside the library (``digest.accumulator``)."""
    return accumulator(algorithm)


def running_hash(algorithm: type[hashes.HashAlgorithm] | None) -> Any | None:
    """The running hash of a hash-then-sign mechanism (CKM_ECDSA_SHA256, CKM_DSA_SHA256, ...), or
    None for the raw ones (CKM_ECDSA, CKM_DSA) whose input already is the hash."""
    return accumulator(algorithm)() if algorithm is not None else None


def _single_part() -> CryptokiError:
    return CryptokiError(CKR_FUNCTION_NOT_SUPPORTED, "mechanism is single-part only")


class _Accumulating:
    """What sign and verify contexts share: the signer, the accumulator, and the state
    C_GetOperationState saves (the accumulator's; nothing for a single-part mechanism,
    which has consumed no data while it is active)."""

    __slots__ = ("_signer", "_acc")

    def __init__(self, signer: Signer, accumulator: Any | None) -> None:
        self._signer = signer
        self._acc = accumulator

    def save(self) -> bytes:
        return b"" if self._acc is None else self._acc.save()

    def restore(self, state: bytes) -> None:
        if self._acc is not None:
            self._acc.load(state)
        elif state:
            raise CryptokiError(CKR_SAVED_STATE_INVALID, "single-part operation with data")


class SignContext(_Accumulating):
    __slots__ = ()

    def update(self, data: bytes) -> None:
        if self._acc is None:
            raise _single_part()
        self._acc.update(data)

    def final(self) -> bytes:
        if self._acc is None:
            raise _single_part()
        return self._signer.sign(self._acc.finalize())

    def oneshot(self, data: bytes) -> bytes:
        if self._acc is None:
            return self._signer.sign(bytes(data))
        return self._signer.sign(self._acc.oneshot(data))

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0 if step == "update" else self._signer.size


class VerifyContext(_Accumulating):
    __slots__ = ()

    def update(self, data: bytes) -> None:
        if self._acc is None:
            raise _single_part()
        self._acc.update(data)

    def final(self, signature: bytes) -> None:
        if self._acc is None:
            raise _single_part()
        self._signer.verify(self._acc.finalize(), bytes(signature))

    def oneshot(self, data: bytes, signature: bytes) -> None:
        if self._acc is None:
            self._signer.verify(bytes(data), bytes(signature))
            return
        self._signer.verify(self._acc.oneshot(data), bytes(signature))

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0


class CipherContext:
    """Single-part encryption/decryption (the RSA mechanisms): only ``oneshot``."""

    __slots__ = ("_fn", "_size")

    def __init__(self, fn: Callable[[bytes], bytes], size: int) -> None:
        self._fn = fn
        self._size = size

    def update(self, data: bytes) -> bytes:
        raise _single_part()

    def final(self) -> bytes:
        raise _single_part()

    def oneshot(self, data: bytes) -> bytes:
        return self._fn(bytes(data))

    def length_hint(self, step: str, data_len: int) -> int | None:
        return self._size if step == "oneshot" else 0
