"""Message digests: CKM_SHA_1, CKM_SHA224 ... CKM_SHA512_256, CKM_SHA3_224 ... CKM_SHA3_512.

PKCS#11 3.0 §2.20-2.31: no parameter, single- and multi-part, C_DigestKey feeds a secret
key's value into the running digest. The table :data:`HASHES` (CKM -> pyca hash class) is
also what the signature and HMAC families use to name their hash, so there is one mapping.

Hermetic (issue 25): no digest of a C_* call goes through the host's OpenSSL state. Python's
``hashlib`` links the system libcrypto and fetches through its default library context, so
under ``default_properties = ?provider=pkcs11`` it is routed to pkcs11-provider and back into
us. Inside the built library SHA-1/SHA-2 run on libcrypto's low-level block functions
(``native/digest.c``: no config, no fetch, no provider), whose state is a plain struct that
C_GetOperationState can save (:class:`RunningDigest`); SHA-3 runs on pyca/cryptography
(its own OpenSSL, started with a neutral config). Without the library (the admin CLI, tests
importing the package) everything runs on pyca.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes

from .. import runtime
from ..errors import CryptokiError
from ..spec import (
    CKF_DIGEST,
    CKM_MD5,
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
    CKR_FUNCTION_FAILED,
    CKR_SAVED_STATE_INVALID,
    CKR_STATE_UNSAVEABLE,
)
from .registry import EntryData, Family, KeyView, MechanismEntry, register

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
#: The broken hashes (MD5: collisions in seconds): their mechanisms (CKM_MD5, CKM_MD5_HMAC,
#: CKM_MD5_RSA_PKCS) are ``legacy`` entries, offered only where a slot sets
#: ``legacy_mechanisms = true``; kept out of ``HASHES`` so that no parameter (an HKDF PRF, an
#: OAEP or PSS hash) can name them in any slot.
LEGACY_HASHES: dict[int, type[hashes.HashAlgorithm]] = {CKM_MD5: hashes.MD5}
#: pyca algorithm class -> CKM (the signature families name their hash by pyca class).
CKM_OF: dict[type[hashes.HashAlgorithm], int] = {alg: ckm for ckm, alg in {**HASHES, **LEGACY_HASHES}.items()}
#: The digests native/digest.c serves, filled when the library binds (``native_ready``):
#: SHA-1/SHA-2 on libcrypto's low-level functions, SHA-3 on its own Keccak (libcrypto has
#: no low-level SHA-3; a big-endian build leaves it to pyca). Empty without the library.
NATIVE: set[int] = set()


def native_lib() -> Any | None:
    """The embedded module's ``lib`` when it carries the digest helpers, else None."""
    lib = runtime.lib
    if lib is None or getattr(lib, "shim_digest_publish", None) is None:
        return None
    return lib


def unsaveable(what: str) -> CryptokiError:
    """C_GetOperationState of an operation whose state we cannot copy (§5.6: not an error
    of the caller, a property of the operation)."""
    return CryptokiError(CKR_STATE_UNSAVEABLE, f"{what}: state cannot be saved")


def _failed() -> CryptokiError:
    return CryptokiError(CKR_FUNCTION_FAILED, "native digest failed")


class RunningDigest:
    """One running SHA-1/SHA-2 digest in C memory (``native/digest.c``): the accumulator of
    C_Digest*, of the hash-then-sign mechanisms (pyca ``Hash`` interface: ``update``,
    ``finalize``) and of HMAC (``hmac``: inner then outer state, RFC 2104). ``save`` and
    ``load`` copy the state struct as bytes (C_GetOperationState / C_SetOperationState;
    the bytes never leave the module unencrypted, see ``core/opstate.py``)."""

    __slots__ = ("_mech", "_ctx", "_size", "_hmac", "_proto")

    def __init__(self, ckm: int, ctx: Any, hmac: bool) -> None:
        self._mech = ckm
        self._ctx = ctx
        self._size = HASHES[ckm].digest_size
        self._hmac = hmac
        self._proto: bytes | None = None  # a prepared HMAC key's state, copied per operation

    @classmethod
    def new(cls, ckm: int) -> "RunningDigest":
        """A fresh digest; its C state is made at the first update (a one-shot use never
        needs it: ``oneshot``)."""
        return cls(ckm, None, False)

    def _start(self) -> Any:
        ctx = self._ctx = _FFI.new("char[]", _LIB.shim_digest_ctx_size(self._mech))
        if not _LIB.shim_digest_init(self._mech, ctx):
            raise _failed()
        return ctx

    @classmethod
    def keyed(cls, ckm: int, key: bytes) -> "RunningDigest":
        """A fresh HMAC state for ``key`` (the inner and outer pads hashed)."""
        ctx = _FFI.new("char[]", 2 * _LIB.shim_digest_ctx_size(ckm))
        if not _LIB.shim_hmac_init(ckm, ctx, key, len(key)):
            raise _failed()
        prepared = cls(ckm, ctx, True)
        prepared._proto = prepared.save()
        return prepared

    def prepared_state(self, length: int) -> bytes | None:
        """A prepared HMAC key's state (``keyed``) when ``length`` is its full MAC length, for
        the native lane (which runs digest.c's HMAC from it, as ``mac`` does)."""
        return self._proto if self._hmac and length == self._size else None

    def copy(self) -> "RunningDigest":
        """A twin of this state (HMAC: each operation starts from a copy of the key's
        prepared pads)."""
        if self._ctx is None:
            return RunningDigest(self._mech, None, self._hmac)
        return RunningDigest(self._mech, _FFI.new("char[]", self._proto or self.save()), self._hmac)

    def mac(self, data: bytes) -> bytes:
        """The HMAC of ``data`` under a prepared key (``keyed``), in one C call that copies
        the prepared state on the C stack: the one-shot C_Sign path of the HMAC family."""
        return _FAST.hmac(self._mech, self._proto, data)

    def update(self, data: bytes) -> None:
        ctx = self._ctx
        if ctx is None:
            ctx = self._start()
        if not _LIB.shim_digest_update(self._mech, ctx, data, len(data)):
            raise _failed()

    def oneshot(self, data: bytes) -> bytes:
        """update(data) then finalize(), in one call when nothing was fed before."""
        if self._ctx is None:
            return _oneshot(self._mech, data)
        self.update(data)
        return self.finalize()

    def finalize(self) -> bytes:
        if self._ctx is None:
            return _FAST.digest(self._mech, b"")
        size = self._size
        out = _FFI.new("char[]", size)
        if not (_LIB.shim_hmac_final if self._hmac else _LIB.shim_digest_final)(self._mech, self._ctx, out):
            raise _failed()
        return _FFI.unpack(out, size)

    def save(self) -> bytes:
        return _FFI.buffer(self._ctx if self._ctx is not None else self._start())[:]

    def load(self, state: bytes) -> None:
        """Continue from ``save()`` output of the same mechanism (and kind: plain or HMAC);
        a state that does not fit the struct is CKR_SAVED_STATE_INVALID (checked in C:
        lengths in range), and the running state is then unchanged."""
        size = _LIB.shim_digest_ctx_size(self._mech)
        halves = (state[:size], state[size:]) if self._hmac else (state,)
        if self._ctx is None:
            self._start()
        if len(state) != len(self._ctx) or not all(_LIB.shim_digest_check(self._mech, h) for h in halves):
            raise CryptokiError(CKR_SAVED_STATE_INVALID, "digest state does not fit the mechanism")
        _FFI.memmove(self._ctx, state, len(state))


class _PycaAccumulator:
    """A running pyca hash with the accumulator interface; its state cannot be copied out
    (SHA-3, SHAKE, and every hash when the package runs without the library). ``args``: an
    extendable-output function's output length."""

    __slots__ = ("_hash",)

    def __init__(self, algorithm: type[hashes.HashAlgorithm], *args: int) -> None:
        self._hash = hashes.Hash(algorithm(*args))

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def finalize(self) -> bytes:
        return self._hash.finalize()

    def oneshot(self, data: bytes) -> bytes:
        self._hash.update(data)
        return self._hash.finalize()

    def save(self) -> bytes:
        raise unsaveable(self._hash.algorithm.name)

    def load(self, state: bytes) -> None:
        raise CryptokiError(CKR_SAVED_STATE_INVALID, f"no saved state for {self._hash.algorithm.name}")


def accumulator(algorithm: type[hashes.HashAlgorithm]) -> Callable[[], Any]:
    """A factory of running hashes for ``algorithm``: native where it can, else pyca."""
    ckm = CKM_OF[algorithm]
    if (_LIB if _LIB is not None else native_ready()) is not None and ckm in NATIVE:
        return functools.partial(RunningDigest.new, ckm)
    return functools.partial(_PycaAccumulator, algorithm)


def xof_accumulator(algorithm: type[hashes.HashAlgorithm], size: int) -> Callable[[], Any]:
    """A factory of running SHAKE128/SHAKE256 hashes of ``size`` output bytes (pyca's: no
    saved state)."""
    return functools.partial(_PycaAccumulator, algorithm, size)


def sha256(data: bytes) -> bytes:
    """SHA-256 of ``data``, hermetic (the TPM backend's policy digests, names, tags)."""
    return digest(CKM_SHA256, data)


def hash_of(algorithm: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    """``digest`` for a hash named by its pyca class (the families name hashes that way)."""
    return digest(CKM_OF[algorithm], data)


def digest(ckm: int, data: bytes) -> bytes:
    """The digest of ``data``, hermetic (never the host's OpenSSL): for check values, TPM
    policy digests, EdDSA prehashes and anything else computed on a C_* path."""
    if (_LIB if _LIB is not None else native_ready()) is not None and ckm in NATIVE:
        return _oneshot(ckm, data)
    return _pyca_digest(ckm, data)


def _pyca_digest(ckm: int, data: bytes) -> bytes:
    h = hashes.Hash((HASHES.get(ckm) or LEGACY_HASHES[ckm])())
    h.update(data)
    return h.finalize()


class DigestContext:
    """One running digest (C_DigestInit .. C_DigestFinal); the accumulator is made lazily,
    so a one-shot C_Digest hashes in one call.

    Each hash has its own subclass (``context_class``) carrying the mechanism, size and the
    accumulator factory as class attributes: C_DigestInit runs per message, and an
    argument-less construction is the cheapest object Python can make with slots.
    """

    __slots__ = ("_acc",)
    _mech: int
    _size: int
    _new: Callable[[], Any]

    def __init__(self) -> None:
        self._acc: Any = None

    def update(self, data: bytes) -> None:
        acc = self._acc
        if acc is None:
            acc = self._acc = self._new()
        acc.update(data)

    def digest_key(self, value: bytes) -> None:
        """C_DigestKey: the key's CKA_VALUE enters the digest like data (spec §5.12)."""
        self.update(value)

    def final(self) -> bytes:
        acc = self._acc
        return acc.finalize() if acc is not None else self.oneshot(b"")

    def oneshot(self, data: bytes) -> bytes:
        acc = self._new()
        acc.update(data)
        return acc.finalize()

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0 if step == "update" else self._size

    def save(self) -> bytes:
        """C_GetOperationState: the accumulator's state (a fresh one if nothing was fed)."""
        if self._acc is None:
            self._acc = self._new()
        return self._acc.save()

    def restore(self, state: bytes) -> None:
        acc = self._new()
        acc.load(state)
        self._acc = acc


class NativeDigestContext(DigestContext):
    """SHA-1/SHA-2 inside the library: a one-shot C_Digest is one call of a CPython builtin
    (``native/digest.c``: state on the C stack, the bytes made directly), the hot path of
    p11bench's digest-sha256-1k; a cffi call costs a tuple, a GIL hand-off and an output
    cdata more, ~0.4 µs in the embedded interpreter."""

    __slots__ = ()

    def oneshot(self, data: bytes) -> bytes:
        return _FAST.digest(self._mech, data)


class NativeSha3Context(NativeDigestContext):
    """SHA-3: our Keccak is faster than pyca's under ~4 KiB and slower above (OpenSSL's is
    assembly); a one-shot of a long message goes to pyca, which has no state to save anyway."""

    __slots__ = ()

    def oneshot(self, data: bytes) -> bytes:
        return _oneshot(self._mech, data)


#: SHA-3 one-shots from this length on run on pyca (``NativeSha3Context``).
SHA3_PYCA_FROM = 4096
_SHA3 = frozenset({CKM_SHA3_224, CKM_SHA3_256, CKM_SHA3_384, CKM_SHA3_512})


def _oneshot(ckm: int, data: bytes) -> bytes:
    if ckm in _SHA3 and len(data) >= SHA3_PYCA_FROM:
        return _pyca_digest(ckm, data)
    return _FAST.digest(ckm, data)


def context_class(ckm: int, algorithm: type[hashes.HashAlgorithm]) -> type[DigestContext]:
    """The ``DigestContext`` subclass of one hash (mechanism, digest size, accumulator)."""
    base = DigestContext
    if _LIB is not None and ckm in NATIVE:
        base = NativeSha3Context if ckm in _SHA3 else NativeDigestContext
    return type(f"{algorithm.name.upper()}Context", (base,),
                {"__slots__": (), "_mech": ckm, "_size": algorithm.digest_size,
                 "_new": staticmethod(accumulator(algorithm))})


@dataclass(frozen=True)
class DigestData(EntryData):
    """A digest mechanism: its pyca hash."""

    hash: type[hashes.HashAlgorithm]


class DigestFamily(Family):
    """The digest family: only ``digest_init`` (no key)."""

    __slots__ = ()

    def digest_init(self, entry: MechanismEntry, param: Any, key: KeyView | None = None) -> DigestContext:
        if _LIB is None:
            native_ready()
        return CONTEXTS[entry.mechanism]()


#: The library's ``lib``/``ffi`` once the digest helpers are there, else None; ``_FAST``
#: the module of builtins ``native/digest.c`` publishes (``digest``, ``hmac``).
_LIB: Any = None
_FFI: Any = None
_FAST: Any = None


def native_ready() -> Any | None:
    """Bind the library's digest helpers if they have appeared since the last look, and
    return its ``lib`` (None without the library). The library imports the package after
    ``abi.install`` set ``runtime.lib``, so this binds at import; a Python process that
    imported the package first and loads the library later (the test suite) binds at its
    next digest, and the digest entries get their native context classes then."""
    global _LIB, _FFI, _FAST
    if _LIB is None:
        lib = native_lib()
        if lib is not None and lib.shim_digest_publish():
            import _cryptoki_shim_fast  # type: ignore[import-not-found]  # made by the call above

            _LIB, _FFI, _FAST = lib, runtime.ffi, _cryptoki_shim_fast
            NATIVE.update(ckm for ckm in HASHES if lib.shim_digest_size(ckm))
            for ckm, algorithm in HASHES.items():
                if ckm in NATIVE:
                    CONTEXTS[ckm] = context_class(ckm, algorithm)
    return _LIB


#: The context class of each digest mechanism (replaced by the native ones when the library
#: binds, ``native_ready``): the family's state, not the entries' (entries are frozen).
CONTEXTS: dict[int, type[DigestContext]] = {}
native_ready()
CONTEXTS.update((_ckm, context_class(_ckm, _hash)) for _ckm, _hash in HASHES.items() if _ckm not in CONTEXTS)
CONTEXTS.update((_ckm, context_class(_ckm, _hash)) for _ckm, _hash in LEGACY_HASHES.items())

FAMILY = DigestFamily()

for _ckm, _hash in HASHES.items():
    register(MechanismEntry(_ckm, CKF_DIGEST, 0, 0, FAMILY, data=DigestData(_hash)))
for _ckm, _hash in LEGACY_HASHES.items():
    register(MechanismEntry(_ckm, CKF_DIGEST, 0, 0, FAMILY, data=DigestData(_hash), legacy=True))
