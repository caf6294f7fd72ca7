"""At-rest cryptography: the token key, PIN records, sealed attributes.

Every token has one random 32-byte token key. Sensitive attribute values are stored as
AES-256-GCM ciphertexts under it, with associated data that binds the token serial, the
object's `CKA_UNIQUE_ID` and the attribute type: a ciphertext copied to another object,
attribute or token fails to open instead of silently becoming that value.

The token key itself is stored only wrapped, once per PIN (user and SO), under a key derived
from the PIN with a memory-hard KDF: Argon2id (RFC 9106) where libargon2 is installed,
scrypt otherwise. The KDF and its parameters (salt included) live in each `PinRecord`, so
costs can be raised per record (re-wrap at the next successful login) without touching the
schema. Peers derive with 1,000-1,500 hash rounds, which a GPU tries in microseconds per
guess; 64 MiB of memory per guess is what makes an offline PIN search expensive.

Argon2id runs in libargon2, the reference implementation (the `argon2-cffi` package), not in
OpenSSL: OpenSSL's multi-lane Argon2id (cryptography 50, lanes > 1) deadlocks when two
threads derive at once, so two threads in C_Login never returned (issue 15 item 1). The
reference code starts its own threads per derivation, shares nothing between calls, and its
cffi call releases the GIL, so other sessions keep signing meanwhile. Both compute RFC 9106's
function: records written by OpenSSL open unchanged. It also keeps PIN checks away from the
host's OpenSSL configuration (issue 25).

Timings on the development machine (libargon2, 4 lanes, 2 cores): Argon2id "default"
(64 MiB, t=3) ~100 ms per derivation; "test" well under 1 ms.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR, CKR_PIN_INCORRECT
from .records import PinRecord

log = logging.getLogger(__name__)


TOKEN_KEY_LEN = 32
NONCE_LEN = 12  # 96-bit GCM nonce, random per seal (NIST SP 800-38D 8.2.2)
TAG_LEN = 16
SALT_LEN = 16

#: Associated data of a wrapped token key: ties the blob to its purpose, so a sealed
#: attribute value can never be presented as a PIN record or the other way round.
_PIN_WRAP_AAD = b"cryptoki-shim/pin-record/v1"
_ATTR_AAD_PREFIX = b"cryptoki-shim/attribute/v1\x00"


class SealError(CryptokiError):
    """A sealed value did not open: wrong token key, changed associated data or tampering.

    Raised as `CKR_DEVICE_ERROR`: the stored data is not what we wrote, which for the caller
    is a failing device, not a bad argument.
    """

    def __init__(self, message: str = "sealed value does not open") -> None:
        super().__init__(CKR_DEVICE_ERROR, message)


# Named KDF costs. Argon2id: memory_cost in KiB (RFC 9106 section 4, second recommended
# option is 64 MiB, t=3); lanes=4. scrypt: 128 * r * n bytes (n=2**16, r=8 -> 64 MiB).
ARGON2ID_COSTS: dict[str, dict[str, int]] = {
    "default": {"memory_cost": 64 * 1024, "iterations": 3, "lanes": 4},
    "high": {"memory_cost": 256 * 1024, "iterations": 4, "lanes": 4},
    "test": {"memory_cost": 8, "iterations": 1, "lanes": 1},
}
SCRYPT_COSTS: dict[str, dict[str, int]] = {
    "default": {"n": 2**16, "r": 8, "p": 1},
    "high": {"n": 2**18, "r": 8, "p": 1},
    "test": {"n": 2**4, "r": 8, "p": 1},
}


#: At most this many derivations run at once in a process: each takes `memory_cost` (64 MiB
#: by default) for its duration, so a burst of logins cannot exhaust the host's memory; the
#: others wait their turn (a derivation always ends, so the wait is bounded).
MAX_CONCURRENT_KDF = 4
_kdf_slots = threading.BoundedSemaphore(MAX_CONCURRENT_KDF)


def _reset_kdf_slots() -> None:
    """After fork: a slot held by a thread of the parent would never be released here."""
    global _kdf_slots
    _kdf_slots = threading.BoundedSemaphore(MAX_CONCURRENT_KDF)


os.register_at_fork(after_in_child=_reset_kdf_slots)


def _derive_argon2id(pin: bytes, params: dict[str, Any]) -> bytes:
    """Argon2id in libargon2 (not OpenSSL: see the module docstring); the GIL is released."""
    from argon2.low_level import Type, hash_secret_raw

    with _kdf_slots:
        return hash_secret_raw(
            pin,
            bytes.fromhex(params["salt"]),
            time_cost=int(params["iterations"]),
            memory_cost=int(params["memory_cost"]),
            parallelism=int(params["lanes"]),
            hash_len=TOKEN_KEY_LEN,
            type=Type.ID,
        )


def _derive_scrypt(pin: bytes, params: dict[str, Any]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    with _kdf_slots:
        return Scrypt(
            salt=bytes.fromhex(params["salt"]),
            length=TOKEN_KEY_LEN,
            n=int(params["n"]),
            r=int(params["r"]),
            p=int(params["p"]),
        ).derive(pin)


#: kdf name -> (derive function, named cost table)
KDFS: dict[str, tuple[Callable[[bytes, dict[str, Any]], bytes], dict[str, dict[str, int]]]] = {
    "argon2id": (_derive_argon2id, ARGON2ID_COSTS),
    "scrypt": (_derive_scrypt, SCRYPT_COSTS),
}

_preferred_kdf: str | None = None


def preferred_kdf() -> str:
    """"argon2id" if libargon2 (`argon2-cffi`) is installed, else "scrypt" (probed once).

    `argon2-cffi` is a dependency, so scrypt is only the answer of a broken install; a record
    of either KDF opens wherever its KDF is installed.
    """
    global _preferred_kdf
    if _preferred_kdf is None:
        try:
            _derive_argon2id(b"probe", {"salt": "00" * SALT_LEN, **ARGON2ID_COSTS["test"]})
            _preferred_kdf = "argon2id"
        except ImportError as exc:
            log.warning("Argon2id unavailable (%s); PIN records use scrypt", exc)
            _preferred_kdf = "scrypt"
    return _preferred_kdf


def new_token_key() -> bytes:
    """A fresh random token key (32 bytes, for AES-256-GCM)."""
    return os.urandom(TOKEN_KEY_LEN)


def _check_key(token_key: bytes) -> None:
    if len(token_key) != TOKEN_KEY_LEN:
        raise ValueError(f"token key must be {TOKEN_KEY_LEN} bytes")


def make_pin_record(
    pin: bytes, token_key: bytes, cost: str = "default", kdf: str | None = None
) -> PinRecord:
    """Wrap `token_key` under a key derived from `pin` (C_InitToken, C_InitPIN, C_SetPIN).

    `cost` names a row of the KDF's cost table ("default", "high", "test"); `kdf` forces a
    KDF (tests of the scrypt path), else the preferred one is used.
    """
    _check_key(token_key)
    kdf = kdf or preferred_kdf()
    derive, costs = KDFS[kdf]
    params: dict[str, Any] = {"salt": os.urandom(SALT_LEN).hex(), **costs[cost]}
    wrapping_key = derive(pin, params)
    nonce = os.urandom(NONCE_LEN)
    wrapped = nonce + AESGCM(wrapping_key).encrypt(nonce, token_key, _PIN_WRAP_AAD)
    return PinRecord(kdf=kdf, params=params, wrapped_key=wrapped)


def open_pin_record(pin: bytes, rec: PinRecord) -> bytes:
    """The token key, if `pin` is the record's PIN; else `CKR_PIN_INCORRECT` (C_Login).

    GCM's tag is the PIN check: there is no separate verifier to attack.
    """
    entry = KDFS.get(rec.kdf)
    if entry is None:
        raise CryptokiError(CKR_DEVICE_ERROR, f"PIN record uses unknown KDF {rec.kdf!r}")
    wrapping_key = entry[0](pin, rec.params)
    blob = rec.wrapped_key
    try:
        return AESGCM(wrapping_key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], _PIN_WRAP_AAD)
    except InvalidTag:
        raise CryptokiError(CKR_PIN_INCORRECT, "PIN incorrect") from None


def seal(token_key: bytes, aad: bytes, value: bytes) -> bytes:
    """AES-256-GCM of `value` under the token key: random 96-bit nonce || ciphertext || tag.

    Random nonces are safe here: a token key seals far fewer than 2**32 values.
    """
    _check_key(token_key)
    nonce = os.urandom(NONCE_LEN)
    return nonce + AESGCM(token_key).encrypt(nonce, value, aad)


def unseal(token_key: bytes, aad: bytes, blob: bytes) -> bytes:
    """The plaintext of a `seal` blob, or `SealError` (wrong key, other aad, tampered)."""
    _check_key(token_key)
    if len(blob) < NONCE_LEN + TAG_LEN:
        raise SealError("sealed value too short")
    try:
        return AESGCM(token_key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], aad)
    except InvalidTag:
        raise SealError() from None


def attribute_aad(serial: str, unique_id: str, attr_type: int) -> bytes:
    """Associated data binding a sealed value to its token, object and attribute type.

    Length-prefixed fields, so no two (serial, unique_id) pairs encode alike.
    """
    s = serial.encode()
    u = unique_id.encode()
    return b"".join(
        (_ATTR_AAD_PREFIX, struct.pack(">H", len(s)), s, struct.pack(">H", len(u)), u,
         struct.pack(">Q", attr_type))
    )


# --------------------------------------------------------------------------- object binding
#
# Issue 15 item 5: the clear attributes of an object (CKA_SENSITIVE, CKA_EXTRACTABLE,
# CKA_PRIVATE, usage flags, CKA_TRUSTED, CKA_CLASS, CKA_UNIQUE_ID, CKA_SHIM_BACKEND ... and
# the label and id) are searchable rows in the file, so whoever can write the file could flip
# CKA_SENSITIVE to FALSE and read the key after the next login. Schema v2 binds them: every
# sealed value's associated data also carries the SHA-256 of all the object's clear rows
# (`clear_digest`), so an edited row makes every sealed value fail to open and the object is
# refused. An object with no sealed value written by a logged-in session gets one sealed
# row of its own, `BINDING_ROW` (empty plaintext, same associated data), for the same check.

#: A row type in ``ObjectRecord.sealed`` that is no attribute: the binding of an object that
#: has no sealed value. The core never decodes or exposes it ('SH' range, store rows 0x03xx).
BINDING_ROW = 0xD3480301

_BOUND_AAD_PREFIX = b"cryptoki-shim/attribute/v2\x00"
_DIGEST_PREFIX = b"cryptoki-shim/clear-attributes/v1\x00"


def clear_digest(clear: dict[int, bytes]) -> bytes:
    """SHA-256 over an object's clear rows as stored: sorted by type, each length-prefixed."""
    from cryptography.hazmat.primitives import hashes

    h = hashes.Hash(hashes.SHA256())
    h.update(_DIGEST_PREFIX)
    for t in sorted(clear):
        value = clear[t]
        h.update(struct.pack(">QI", t, len(value)))
        h.update(value)
    return h.finalize()


def bound_aad(serial: str, unique_id: str, attr_type: int, digest: bytes) -> bytes:
    """`attribute_aad` (v2 prefix) followed by the `clear_digest` of the object's clear rows."""
    return _BOUND_AAD_PREFIX + attribute_aad(serial, unique_id, attr_type)[len(_ATTR_AAD_PREFIX):] + digest


def seal_object(token_key: bytes, serial: str, unique_id: str, clear: dict[int, bytes],
                secret: dict[int, bytes]) -> dict[int, bytes]:
    """The sealed rows of an object: each secret value under the bound associated data, or
    the lone `BINDING_ROW` when there is none (the object still gets its clear rows bound)."""
    digest = clear_digest(clear)
    rows = secret or {BINDING_ROW: b""}
    return {t: seal(token_key, bound_aad(serial, unique_id, t, digest), v) for t, v in rows.items()}


def open_object(token_key: bytes, serial: str, unique_id: str, clear: dict[int, bytes],
                sealed: dict[int, bytes]) -> tuple[dict[int, bytes], bool]:
    """(plaintexts of the sealed values, bound?) — `SealError` if they do not open.

    Bound (v2): every sealed row opens under `bound_aad` with the digest of ``clear`` as it
    is now; an edited, added or removed clear row fails. Legacy (v1, before schema 2): every
    row opens under `attribute_aad`; only code holding the token key ever made such a
    ciphertext, so an attacker cannot forge one, only replay a row of an older copy of the
    same token. A `BINDING_ROW` is never legacy. No sealed row: ``({}, False)``.
    """
    if not sealed:
        return {}, False
    digest = clear_digest(clear)
    try:
        values = {t: unseal(token_key, bound_aad(serial, unique_id, t, digest), blob) for t, blob in sealed.items()}
    except SealError:
        if BINDING_ROW in sealed:
            raise
        return {t: unseal(token_key, attribute_aad(serial, unique_id, t), blob) for t, blob in sealed.items()}, False
    values.pop(BINDING_ROW, None)
    return values, True


# --------------------------------------------------------------------------- public objects
#
# Issue 23 item 5: the key material of an object with CKA_PRIVATE FALSE (a token key made in
# an R/W Public session, or a non-private key of a logged-in user) must be usable without the
# PIN, so it cannot be sealed under the token key. It is sealed under a *public-object key*
# that needs no PIN (docs/security.md, "Non-private keys"):
#
# - with a store key file: HKDF of the file key and the token serial. A copy of the database
#   alone reads nothing; the database plus the key file reads these keys (no PIN needed:
#   the caller chose CKA_PRIVATE FALSE), and an editor without the file cannot forge them.
# - without: HKDF of a fixed string and the serial, which is in the database. It keeps the
#   values out of a plain read of the file, and nothing more: for A3/A4 they are as good as
#   clear (as SoftHSM2 stores public objects).
#
# The clear rows are bound into the associated data as for private objects; when the writer
# holds the token key the object also gets a `BINDING_ROW` under the token key, the binding
# that counts against an editor of the store (CKA_TRUSTED needs it).

_PUBLIC_INFO = b"cryptoki-shim/public-objects/v1\x00"
_NO_FILE_IKM = b"cryptoki-shim/public-objects/no-key-file/v1"


def public_object_info(serial: str) -> bytes:
    """The HKDF info of a token's public-object key (the key file's derivation input)."""
    return _PUBLIC_INFO + serial.encode()


def fileless_public_key(serial: str) -> bytes:
    """The public-object key of a store without a key file: derived from public data only."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), TOKEN_KEY_LEN, salt=None, info=public_object_info(serial)).derive(_NO_FILE_IKM)


def seal_public_object(public_key: bytes, token_key: bytes | None, serial: str, unique_id: str,
                       clear: dict[int, bytes], secret: dict[int, bytes]) -> dict[int, bytes]:
    """The sealed rows of a non-private object: each secret value under ``public_key``, and the
    `BINDING_ROW` under the token key when the writer holds it."""
    digest = clear_digest(clear)
    rows = {t: seal(public_key, bound_aad(serial, unique_id, t, digest), v) for t, v in secret.items()}
    if token_key is not None:
        rows[BINDING_ROW] = seal(token_key, bound_aad(serial, unique_id, BINDING_ROW, digest), b"")
    return rows


#: How `open_public_object` opened the values: under the current public-object key, under an
#: older one (the key file was added later), or under the token key (written before item 5).
CURRENT, OLDER, TOKEN = "current", "older", "token"


def open_public_object(public_keys: tuple[bytes, ...], token_key: bytes | None, serial: str, unique_id: str,
                       clear: dict[int, bytes], sealed: dict[int, bytes]) -> tuple[dict[int, bytes], bool, str] | None:
    """(plaintexts, bound to the token key?, how) of a non-private object's sealed rows.

    ``public_keys``: the current public-object key first, then older ones. None when the
    values open under none of them and there is no token key to try (the object stays
    locked); `SealError` when a `BINDING_ROW` or the token key's attempt fails (edited).
    """
    digest = clear_digest(clear)
    bound = False
    if token_key is not None and BINDING_ROW in sealed:
        unseal(token_key, bound_aad(serial, unique_id, BINDING_ROW, digest), sealed[BINDING_ROW])
        bound = True
    rows = {t: b for t, b in sealed.items() if t != BINDING_ROW}
    for i, key in enumerate(public_keys):
        try:
            values = {t: unseal(key, bound_aad(serial, unique_id, t, digest), b) for t, b in rows.items()}
        except SealError:
            continue
        return values, bound, CURRENT if i == 0 else OLDER
    if token_key is None:
        return None
    values, bound = open_object(token_key, serial, unique_id, clear, sealed)
    return values, bound, TOKEN
