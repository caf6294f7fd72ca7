"""Backup, restore and escrow of TPM keys with age (pyrage). Used by the admin CLI.

* **Backup** (``export_keys`` / ``import_keys``): a token's TPM key objects (blobs, auth
  values, public attributes — every stored attribute) as one age-encrypted JSON document, to
  an X25519 recipient or a passphrase. Restorable on the *same* TPM only: the blobs are
  encrypted under that TPM's storage root key. The file holds the auth values, so the backup
  file plus the TPM can use the keys without the PIN: keep the age identity offline.
* **Escrow** (sealed keys only, ``tpm_escrow.py``): with ``[slots.tpm] escrow_recipient`` set,
  every sealed key gets ``CKA_SHIM_TPM_ESCROW`` = its secret attributes encrypted to that
  recipient at creation time. ``escrow_decrypt`` + ``TpmBackend.reseal`` move such a key to a new TPM (docs/tpm.md
  "Migration"). Resident keys never leave their TPM and have no escrow.

Backup format (inside age): ``{"format": "cryptoki-shim-tpm-backup/1", "objects":
[{"unique_id": str, "attrs": {"<type hex>": "<codec bytes hex>", ...}}]}``.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import pyrage

from .. import spec
from ..spec_ints import CKA_SHIM_BACKEND
from ..attributes import codec
from ..errors import CryptokiError
from .tpm_attrs import CKA_SHIM_TPM_PUBLIC
from . import tpm_escrow
from .tpm_escrow import escrow_decrypt  # noqa: F401  (re-exported: the admin side's name for it)

FORMAT = "cryptoki-shim-tpm-backup/1"


def _encrypt(doc: bytes, recipient: str | None, passphrase: str | None) -> bytes:
    if recipient:
        return pyrage.encrypt(doc, [tpm_escrow.recipient(recipient)])
    if passphrase:
        return pyrage.passphrase.encrypt(doc, passphrase)  # scrypt: seconds, interactive use only
    raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "a backup needs an age recipient or a passphrase")


def _decrypt(data: bytes, identity: str | None, passphrase: str | None) -> bytes:
    try:
        if identity:
            return pyrage.decrypt(data, [pyrage.x25519.Identity.from_str(identity)])
        if passphrase:
            return pyrage.passphrase.decrypt(data, passphrase)
    except Exception:
        raise CryptokiError(spec.CKR_PIN_INCORRECT, "the age identity/passphrase does not open this backup") from None
    raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "restoring needs the age identity or the passphrase")


def export_keys(objects: Iterable[tuple[str, Mapping[int, Any]]], *, recipient: str | None = None,
                passphrase: str | None = None) -> bytes:
    """Backup of ``(unique_id, attrs)`` pairs: only TPM-backend objects are taken. ``attrs``
    must be decrypted (a logged-in token's objects), or the auth values would be missing."""
    entries = []
    for unique_id, attrs in objects:
        if attrs.get(CKA_SHIM_BACKEND) != spec.SHIM_BACKEND_TPM:
            continue
        encoded = {f"{t:x}": codec.encode(t, v).hex() for t, v in attrs.items() if t != spec.CKA_UNIQUE_ID}
        entries.append({"unique_id": unique_id, "attrs": encoded})
    doc = json.dumps({"format": FORMAT, "objects": entries}).encode()
    return _encrypt(doc, recipient, passphrase)


def import_keys(data: bytes, *, identity: str | None = None, passphrase: str | None = None) -> list[dict[int, Any]]:
    """The attribute dicts of a backup, ready for ``Token.add_object`` (new unique ids)."""
    doc = json.loads(_decrypt(data, identity, passphrase))
    if doc.get("format") != FORMAT:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"not a {FORMAT} document")
    return [{int(t, 16): codec.decode(int(t, 16), bytes.fromhex(v)) for t, v in o["attrs"].items()}
            for o in doc["objects"]]


def export_token(token: Any, **kw: Any) -> bytes:
    """Backup of a logged-in core ``Token``'s TPM objects (admin CLI: ``tpm backup``)."""
    if token.token_key is None:
        raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "backup needs the user's login (auth values)")
    token.refresh(force=True)
    return export_keys(((o.unique_id, o.attrs) for o in token.objects.values()), **kw)


def restore_token(token: Any, data: bytes, **kw: Any) -> int:
    """Add a backup's objects to a logged-in core ``Token``; returns how many were added.
    Objects already present (same class and public key / TPM blob) are skipped, so a
    restore can be repeated."""
    if token.token_key is None:
        raise CryptokiError(spec.CKR_USER_NOT_LOGGED_IN, "restore needs the user's login")
    token.refresh(force=True)
    key = (spec.CKA_CLASS, spec.CKA_PUBLIC_KEY_INFO, CKA_SHIM_TPM_PUBLIC)
    have = {tuple(o.attrs.get(t) for t in key) for o in token.objects.values()}
    added = 0
    for attrs in import_keys(data, **kw):
        if tuple(attrs.get(t) for t in key) in have:
            continue
        token.add_object(attrs, None)
        added += 1
    return added
