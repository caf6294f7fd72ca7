"""The plain records the store reads and writes.

The core keeps tokens and objects in memory as its own types; these dataclasses are only
the shape in which they cross into the store (and into `crypto`, which makes PIN records).
They hold encoded bytes, never typed attribute values: the store does not know what a
`CKA_*` means, so it cannot get one wrong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..spec import CKU_SO, CKU_USER as CKU_USER  # CK_USER_TYPE: the key of a token's PIN records (both re-exported)


@dataclass
class PinRecord:
    """One PIN (user or SO): the token key wrapped under a key derived from that PIN.

    `kdf` names the derivation ("argon2id" or "scrypt") and `params` holds its parameters
    including the salt (hex), so each record can carry its own cost and costs can grow
    without a schema change. `wrapped_key` is AES-256-GCM nonce||ciphertext||tag of the
    32-byte token key. `failures` counts consecutive failed logins (persisted, so a retry
    limit holds across processes and restarts).
    """

    kdf: str
    params: dict[str, Any]
    wrapped_key: bytes
    failures: int = 0


@dataclass
class TokenRecord:
    """A token as stored: identity (label, serial), its PIN records and free metadata.

    `label` is the 32-byte blank-padded `CK_TOKEN_INFO.label`; `serial` at most 16 chars
    (`CK_TOKEN_INFO.serialNumber`). `meta` is a JSON-able dict for settings the core keeps
    with the token (e.g. a default backend) without needing a schema change.
    """

    slot_id: int
    label: bytes
    serial: str
    so_pin: PinRecord | None = None
    user_pin: PinRecord | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    meta: dict[str, Any] = field(default_factory=dict)

    def pin(self, user_type: int) -> PinRecord | None:
        """The PIN record for a `CKU_*` value (SO or USER)."""
        return self.so_pin if user_type == CKU_SO else self.user_pin


@dataclass
class ObjectRecord:
    """An object as stored.

    `oid` is the row id the store assigns (`None` before `Store.add_object`); it is never
    reused for another object, so a cached oid can only go stale, never point elsewhere.
    `attrs` are encoded attribute values in the clear (searchable); `sealed` holds the
    ciphertexts `crypto.seal` made of sensitive ones. A type appears in at most one of them.
    """

    oid: int | None
    unique_id: str
    attrs: dict[int, bytes] = field(default_factory=dict)
    sealed: dict[int, bytes] = field(default_factory=dict)
