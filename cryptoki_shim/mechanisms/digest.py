"""Message digests: CKM_SHA_1, CKM_SHA224 ... CKM_SHA512_256, CKM_SHA3_224 ... CKM_SHA3_512.

PKCS#11 3.0 §2.20-2.31: no parameter, single- and multi-part, C_DigestKey feeds a secret
key's value into the running digest. The table :data:`HASHES` (CKM -> pyca hash class) is
also what the signature and HMAC families use to name their hash, so there is one mapping.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes

from ..spec import (
    CKF_DIGEST,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA512_224,
    CKM_SHA512_256,
    CKM_SHA_1,
)
from .registry import MechanismEntry, register

#: The digest mechanisms and their pyca algorithms; the one CKM -> hash mapping of the package.
HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    CKM_SHA_1: hashes.SHA1,
    CKM_SHA224: hashes.SHA224,
    CKM_SHA256: hashes.SHA256,
    CKM_SHA384: hashes.SHA384,
    CKM_SHA512: hashes.SHA512,
    CKM_SHA512_224: hashes.SHA512_224,
    CKM_SHA512_256: hashes.SHA512_256,
    CKM_SHA3_224: hashes.SHA3_224,
    CKM_SHA3_256: hashes.SHA3_256,
    CKM_SHA3_384: hashes.SHA3_384,
    CKM_SHA3_512: hashes.SHA3_512,
}


def _hashlib_constructor(algorithm: type[hashes.HashAlgorithm]) -> Callable[..., Any]:
    """hashlib's constructor for a pyca algorithm: the same OpenSSL digests, about half the
    per-call cost for small inputs (no algorithm object, no type checks per call)."""
    name = algorithm.name.replace("-", "_")
    if hasattr(hashlib, name):
        return getattr(hashlib, name)
    return functools.partial(hashlib.new, name)


class DigestContext:
    """One running digest (C_DigestInit .. C_DigestFinal); the hash object is made lazily,
    so a one-shot C_Digest hashes in one call.

    Each hash has its own subclass (``context_class``) carrying the constructor and size as
    class attributes: C_DigestInit runs per message, and an argument-less construction is
    the cheapest object Python can make with slots.
    """

    __slots__ = ("_hash",)
    _new: Callable[..., Any]
    _size: int

    def __init__(self) -> None:
        self._hash: Any = None

    def update(self, data: bytes) -> None:
        if self._hash is None:
            self._hash = self._new()
        self._hash.update(data)

    def digest_key(self, value: bytes) -> None:
        """C_DigestKey: the key's CKA_VALUE enters the digest like data (spec §5.12)."""
        self.update(value)

    def final(self) -> bytes:
        return (self._hash if self._hash is not None else self._new()).digest()

    def oneshot(self, data: bytes) -> bytes:
        return self._new(data).digest()

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0 if step == "update" else self._size


def context_class(algorithm: type[hashes.HashAlgorithm]) -> type[DigestContext]:
    """The ``DigestContext`` subclass of one hash (hashlib's constructor, digest size)."""
    return type(f"{algorithm.name.upper()}Context", (DigestContext,),
                {"__slots__": (), "_new": staticmethod(_hashlib_constructor(algorithm)),
                 "_size": algorithm.digest_size})


class DigestFamily:
    """The digest family: only ``digest_init``."""

    def digest_init(self, entry: MechanismEntry, param: Any) -> DigestContext:
        return entry.extra["context"]()


FAMILY = DigestFamily()

for _ckm, _hash in HASHES.items():
    register(MechanismEntry(_ckm, CKF_DIGEST, 0, 0, FAMILY,
                            extra={"hash": _hash, "context": context_class(_hash)}))
