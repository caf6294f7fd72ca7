"""Signing and EC key generation through the C helpers compiled into the library
(native/fastsign.c, issues #9 and #22).

cffi releases the GIL around calls into the embedded module's ``lib``, so the scalar
multiplication of one client thread runs while others run Python; a pyca call would keep
the interpreter for its whole duration on older releases. The helpers exist only inside the
built library: when the package runs in-process without it (the admin CLI, tests importing
the package directly) ``runtime.lib`` is None and the families keep pyca as their path.

The key reaches C once per key object, as PKCS#8 DER that is dropped right after parsing;
the C handle is freed by ``ffi.gc`` when the signer that holds it is dropped with the key
object's cache.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .. import runtime
from ..errors import CryptokiError
from ..spec import CKR_FUNCTION_FAILED

_log = logging.getLogger(__name__)

#: sign(prepared digest) -> r||s, each half ``n`` bytes.
EcdsaSign = Callable[[bytes], bytes]


def _helpers() -> Any | None:
    """The embedded module's ``lib`` when it carries the signing helpers, else None."""
    lib = runtime.lib
    if lib is None or getattr(lib, "shim_ecdsa_sign", None) is None:
        return None
    return lib


def _handle(lib: Any, private_key: Any) -> Any | None:
    """A garbage-collected C key handle for a pyca private key, or None if C refuses it."""
    ffi = runtime.ffi
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        raw = lib.shim_pkey_from_der(ffi.from_buffer(der), len(der))
    finally:
        del der  # the only reference: the DER lives no longer than the parse
    if raw == ffi.NULL:
        return None
    return ffi.gc(raw, lib.shim_pkey_free)


def ecdsa_signer(private_key: Any, n: int) -> EcdsaSign | None:
    """A GIL-free ECDSA signer for ``private_key`` producing r||s of ``2 * n`` bytes, or None
    when the helpers are unavailable or do not take this key (pyca is then the path).

    The digest passed in is signed as given: libcrypto keeps its leftmost bits of the
    order's length, the same rule pyca applies to a Prehashed value.
    """
    lib = _helpers()
    if lib is None:
        return None
    handle = _handle(lib, private_key)
    if handle is None:
        _log.debug("native ECDSA signer unavailable for this key; pyca signs")
        return None
    ffi = runtime.ffi
    sign_c = lib.shim_ecdsa_sign
    size = 2 * n

    def sign(digest: bytes) -> bytes:
        out = ffi.new("unsigned char[]", size)
        if not sign_c(handle, digest, len(digest), out, n):
            raise CryptokiError(CKR_FUNCTION_FAILED, "native ECDSA signature failed")
        return ffi.buffer(out, size)[:]

    _log.debug("native ECDSA signer ready (%d-byte order)", n)
    return sign


#: sign(digest) -> signature; verify(digest, signature) -> valid?
DigestSign = Callable[[bytes], bytes]
DigestVerify = Callable[[bytes, bytes], bool]

#: the digests the RSA helpers take (pyca's names; the others stay on pyca)
_RSA_DIGESTS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})


def rsa_pkcs1_signer(private_key: Any, digest_name: str, size: int) -> DigestSign | None:
    """A PKCS#1 v1.5 signer of ``digest_name`` digests through the C helper (the GIL and the
    GIL entry gate are given up for the modular exponentiation and taken back without
    parking), or None: pyca then signs. The signature is pyca's, byte for byte (v1.5 is
    deterministic)."""
    lib = _helpers()
    if lib is None or digest_name not in _RSA_DIGESTS or getattr(lib, "shim_rsa_sign", None) is None:
        return None
    ffi = runtime.ffi
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        raw = lib.shim_rsa_key_from_der(ffi.from_buffer(der), len(der), digest_name.encode())
    finally:
        del der  # the only reference: the DER lives no longer than the parse
    if raw == ffi.NULL:
        return None
    handle = ffi.gc(raw, lib.shim_pkey_free)
    sign_c = lib.shim_rsa_sign

    def sign(digest: bytes) -> bytes:
        out = ffi.new("unsigned char[]", size)
        if not sign_c(handle, digest, len(digest), out, size):
            raise CryptokiError(CKR_FUNCTION_FAILED, "native RSA signature failed")
        return ffi.buffer(out, size)[:]

    return sign


def verifier(public_key: Any, digest_name: str | None) -> DigestVerify | None:
    """A verifier through the C helper: RSA PKCS#1 v1.5 of ``digest_name`` digests, or ECDSA
    (``digest_name`` None; the signature as DER, the digest as pyca's Prehashed carrier would
    take it); None when the helpers do not take this key (pyca then verifies)."""
    lib = _helpers()
    if lib is None or getattr(lib, "shim_pkey_verify", None) is None:
        return None
    if digest_name is not None and digest_name not in _RSA_DIGESTS:
        return None
    ffi = runtime.ffi
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = lib.shim_verify_key_from_spki(der, len(der), digest_name.encode() if digest_name else ffi.NULL)
    if raw == ffi.NULL:
        return None
    handle = ffi.gc(raw, lib.shim_pkey_free)
    verify_c = lib.shim_pkey_verify

    def verify(digest: bytes, signature: bytes) -> bool:
        rv = verify_c(handle, digest, len(digest), signature, len(signature))
        if rv < 0:
            raise CryptokiError(CKR_FUNCTION_FAILED, "native verification refused its arguments")
        return rv == 1

    return verify


def ed25519_pair(key: Any, sign_too: bool = False) -> tuple[Callable[[bytes], bytes] | None, Callable[[bytes, bytes], bool] | None]:
    """(sign, verify) of an Ed25519 key through the C helper (None where the helper does not
    take the key: pyca then runs it, with the gate lent). Only verification is served: the
    system libcrypto 3.0 signs at 73 cpu-us against pyca's 31.5 (p11bench sign-ed25519,
    docs/performance.md "The GIL entry gate"), more than the gate's hand-over wins back;
    ``shim_ed25519_sign`` stays for a libcrypto where that is not so (``sign_too``)."""
    lib = _helpers()
    if lib is None or getattr(lib, "shim_ed25519_key", None) is None:
        return None, None
    ffi = runtime.ffi
    private = isinstance(key, ed25519.Ed25519PrivateKey)
    if (private and not sign_too) or (not private and not isinstance(key, ed25519.Ed25519PublicKey)):
        return None, None
    raw = key.private_bytes_raw() if private else key.public_bytes_raw()
    try:
        handle_c = lib.shim_ed25519_key(raw, len(raw), 1 if private else 0)
    finally:
        del raw  # the only reference: the raw key lives no longer than the parse
    if handle_c == ffi.NULL:
        return None, None
    handle = ffi.gc(handle_c, lib.shim_pkey_free)
    sign_c, verify_c = lib.shim_ed25519_sign, lib.shim_ed25519_verify

    def sign(message: bytes) -> bytes:
        out = ffi.new("unsigned char[64]")
        if not sign_c(handle, message, len(message), out):
            raise CryptokiError(CKR_FUNCTION_FAILED, "native Ed25519 signature failed")
        return ffi.buffer(out, 64)[:]

    def verify(message: bytes, signature: bytes) -> bool:
        return bool(verify_c(handle, message, len(message), signature))

    return (sign, None) if private else (None, verify)


def ed25519_operations() -> int:
    """How many Ed25519 signatures the C helper made or found valid (0 without it)."""
    lib = _helpers()
    count = getattr(lib, "shim_ed25519_count", None) if lib is not None else None
    return int(count()) if count is not None else 0


def rsa_signatures_made() -> int:
    """How many RSA signatures the C helper made in this process (0 without it)."""
    lib = _helpers()
    count = getattr(lib, "shim_rsa_sign_count", None) if lib is not None else None
    return int(count()) if count is not None else 0


def verifications_made() -> int:
    """How many verifications the C helper ran in this process (0 without it)."""
    lib = _helpers()
    count = getattr(lib, "shim_verify_count", None) if lib is not None else None
    return int(count()) if count is not None else 0


#: pyca's curve name -> the OpenSSL group the helper generates on (the others stay on pyca).
_GROUPS = {"secp256r1": b"P-256", "secp384r1": b"P-384", "secp521r1": b"P-521"}


def ec_generate(curve_name: str, n: int) -> tuple[bytes, bytes] | None:
    """(private scalar of ``n`` bytes, uncompressed point) of a new key pair made by the C
    helper with the GIL released (pyca's generation keeps it: issue #22), or None when the
    helpers are unavailable or do not make this curve (pyca is then the path)."""
    lib = _helpers()
    group = _GROUPS.get(curve_name)
    if lib is None or group is None or getattr(lib, "shim_ec_generate", None) is None:
        return None
    ffi = runtime.ffi
    priv = ffi.new("unsigned char[]", n)
    point = ffi.new("unsigned char[]", 2 * n + 1)
    if not lib.shim_ec_generate(group, priv, n, point, 2 * n + 1):
        raise CryptokiError(CKR_FUNCTION_FAILED, "native EC key generation failed")
    try:
        return ffi.buffer(priv, n)[:], ffi.buffer(point, 2 * n + 1)[:]
    finally:
        ffi.memmove(priv, bytes(n), n)  # the only other copy of the scalar


def keys_generated() -> int:
    """How many EC key pairs the C helper made in this process (0 without it)."""
    lib = _helpers()
    count = getattr(lib, "shim_ec_generate_count", None) if lib is not None else None
    return int(count()) if count is not None else 0


def signatures_made() -> int:
    """How many signatures the C helpers produced in this process (0 without them)."""
    lib = _helpers()
    return int(lib.shim_fastsign_count()) if lib is not None else 0


def _no_gate() -> None:
    """Nothing to lend: no library, or one without the GIL entry gate."""


#: ``_cryptoki_shim_gate.lend`` once resolved (never cached while the library is absent).
_lend: Callable[[], None] | None = None


def lend_gate() -> None:
    """Give the library's GIL entry gate (native/shim.c) to another client thread, just before
    a pyca call that releases the GIL for its crypto (RSA, ECDSA verify, EdDSA: one release
    each, docs/performance.md "What a second thread can get").

    Held across such a call, the gate would keep every other thread out of Python for the
    whole signature, though the GIL is free: the threads would take turns instead of running
    the crypto side by side. Lent, another thread runs its Python part meanwhile; this thread
    re-takes the GIL inside pyca as it always did. A CPython builtin, not a cffi call (cffi
    would release and re-take the GIL around it). Without the library: nothing."""
    global _lend
    lend = _lend
    if lend is None:
        lend = _resolve_lend()
    lend()


def _resolve_lend() -> Callable[[], None]:
    global _lend
    lib = runtime.lib
    publish = getattr(lib, "shim_gate_publish", None) if lib is not None else None
    if publish is None:
        return _no_gate  # not cached: the library may be attached later in this process
    if publish():
        import _cryptoki_shim_gate  # type: ignore[import-not-found]  # made by the call above

        _lend = _cryptoki_shim_gate.lend
    else:
        _lend = _no_gate
    return _lend


def gate_counters() -> tuple[int, ...]:
    """The gate's diagnostics (waited, timed_out, stale, gil_held, lent, parks), () without it."""
    lend_gate()  # resolves the module (lending outside an entry does nothing)
    gate = __import__("sys").modules.get("_cryptoki_shim_gate")
    return tuple(gate.counters()) if gate is not None else ()

