"""A sealed TPM key's secret attributes as bytes, and their escrow copy (age, pyrage).

The secret attributes of a sealed key (``tpm.py``) are encrypted as one record string
(``encode_secret``); with ``[slots.tpm] escrow_recipient`` the same string is also encrypted
to that age recipient and kept as ``CKA_SHIM_TPM_ESCROW`` (``escrow_encrypt``), which
``escrow_decrypt`` opens with the escrow identity to move the key to a new TPM
(``TpmBackend.reseal``; docs/tpm.md "Migration"). Kept apart from ``tpm.py`` (the backend,
which writes escrow copies) and ``tpm_backup.py`` (the admin functions, which read them) so
that neither imports the other (issue 16 item 5: they were an import circle).
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from .. import spec
from ..attributes import codec
from ..errors import CryptokiError
from .tpm_attrs import CKA_SHIM_TPM_ESCROW


def encode_secret(attrs: Mapping[int, Any]) -> bytearray:
    """Secret attributes as ``type:u64 | len:u64 | codec value`` records (what gets encrypted)."""
    out = bytearray()
    for t, v in sorted(attrs.items()):
        raw = codec.encode(t, v)
        out += struct.pack(">QQ", t, len(raw)) + raw
    return out


def decode_secret(raw: bytes | bytearray) -> dict[int, Any]:
    out: dict[int, Any] = {}
    view, i = memoryview(raw), 0
    while i < len(view):
        t, n = struct.unpack_from(">QQ", view, i)
        out[t] = codec.decode(t, bytes(view[i + 16:i + 16 + n]))
        i += 16 + n
    return out


def recipient(text: str) -> Any:
    """An age X25519 recipient (``age1...``); CKR_ARGUMENTS_BAD otherwise."""
    import pyrage  # only where escrow or backups are used: not on every TPM backend load

    try:
        return pyrage.x25519.Recipient.from_str(text)
    except Exception:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "not an age X25519 recipient (age1...)") from None


def escrow_encrypt(secret: bytes | bytearray, recipient_text: str) -> bytes:
    """The escrow copy of a sealed key's encoded secret attributes (sub-millisecond)."""
    import pyrage

    return pyrage.encrypt(bytes(secret), [recipient(recipient_text)])


def escrow_decrypt(attrs: Mapping[int, Any], identity: str) -> dict[int, Any]:
    """The secret attributes of a sealed key from its escrow copy, with the escrow identity
    (``AGE-SECRET-KEY-1...``). The result is key material: handle it as such."""
    import pyrage

    blob = attrs.get(CKA_SHIM_TPM_ESCROW)
    if not blob:
        raise CryptokiError(spec.CKR_KEY_FUNCTION_NOT_PERMITTED, "this key has no escrow copy")
    try:
        raw = pyrage.decrypt(blob, [pyrage.x25519.Identity.from_str(identity)])
    except Exception:
        raise CryptokiError(spec.CKR_PIN_INCORRECT, "escrow identity does not open this key") from None
    return decode_secret(raw)
