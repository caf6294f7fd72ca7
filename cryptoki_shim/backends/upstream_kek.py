"""KEK mode (issue 6): the token key's PIN records are also encrypted by an AES key that
never leaves the upstream HSM.

Without KEK mode a PIN record is ``AES-GCM(KDF(PIN), token key)`` (store/crypto.py): whoever
copies the SQLite file can try PINs offline, slowed only by the memory-hard KDF. In KEK
mode the stored ``wrapped_key`` is additionally ``AES-GCM(KEK, that blob)``, computed by the
upstream with its non-extractable key (label ``kek_label``, made at ``C_InitToken`` if
absent). Unlocking runs the KEK first, then the PIN: the file alone yields nothing, and
PIN guessing needs the HSM (whose own access control and audit apply).

The layering is on the record, not in the KDF, so store/crypto.py is unchanged and a
record says in its parameters (``params["kek"]`` = the KEK label) that it needs the HSM: a
slot without the KEK refuses such a record with ``CKR_DEVICE_ERROR`` instead of answering
``CKR_PIN_INCORRECT`` (and counting a failure) for the right PIN.

Trade-offs (docs/upstream.md): the HSM becomes a hard dependency of C_Login on this token
(it is down -> nobody logs in; operations of already logged-in applications continue, the
token key being in memory); losing the KEK loses the token (back up the HSM); the token
key is in our process memory while logged in, as without KEK mode. Records made before KEK
mode was switched on still open (and are re-wrapped at the next PIN change).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping

from .. import spec
from ..spec_ints import (
    CKA_CLASS,
    CKA_DECRYPT,
    CKA_ENCRYPT,
    CKA_EXTRACTABLE,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_TOKEN,
    CKA_VALUE_LEN,
    CKK_AES,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKO_SECRET_KEY,
)
from ..errors import CryptokiError
from .upstream_errors import ObjectMissing

_log = logging.getLogger(__name__)
A = spec
PARAM = "kek"
AAD = b"cryptoki-shim/kek/v1"
IV_LEN = 12


class Kek:
    """The upstream AES key that wraps a token's PIN records."""

    def __init__(self, backend: Any, label: str) -> None:
        self.backend = backend
        self.label = label.encode()

    def _key(self, lib: Any, session: int, create: bool) -> int:
        found = lib.find(session, {CKA_CLASS: CKO_SECRET_KEY, CKA_LABEL: self.label}, limit=2)
        if len(found) == 1:
            return found[0]
        if found:
            raise CryptokiError(A.CKR_DEVICE_ERROR, f"KEK {self.label!r}: several upstream keys have this label")
        if not create:  # (a token that went away and came back: the pool re-initializes once)
            raise ObjectMissing(f"KEK {self.label!r}: not in the upstream token")
        from . import upstream_client as client

        t = client.Template({
            CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: CKK_AES,
            CKA_VALUE_LEN: 32, CKA_TOKEN: True, CKA_PRIVATE: True,
            CKA_SENSITIVE: True, CKA_EXTRACTABLE: False, CKA_ENCRYPT: True,
            CKA_DECRYPT: True, CKA_LABEL: self.label,
        })
        h = client.ffi().new("CK_OBJECT_HANDLE *")
        lib.call("C_GenerateKey", session, client.Mechanism(CKM_AES_KEY_GEN, None).ptr, t.array, t.count, h)
        _log.info("KEK %r generated in the upstream token", self.label)
        return int(h[0])

    def _gcm(self, encrypt: bool, iv: bytes, data: bytes, create: bool = False) -> bytes:
        from ..mechanisms.params import GcmParams
        from . import upstream_client as client

        mech = client.Mechanism(CKM_AES_GCM, GcmParams(iv=iv, aad=AAD, tag_bits=128, iv_bits=IV_LEN * 8))
        name = "Encrypt" if encrypt else "Decrypt"

        def step(lib: Any, session: int) -> bytes:
            key = self._key(lib, session, create)
            lib.call(f"C_{name}Init", session, mech.ptr, key)
            return lib.two_pass(f"C_{name}", session, data, len(data))

        return self.backend.pool.run(step)

    def wrap(self, blob: bytes) -> bytes:
        iv = os.urandom(IV_LEN)
        return iv + self._gcm(True, iv, blob, create=True)

    def unwrap(self, blob: bytes) -> bytes:
        try:
            return self._gcm(False, blob[:IV_LEN], blob[IV_LEN:])
        except CryptokiError as exc:
            if exc.ckr in (A.CKR_ENCRYPTED_DATA_INVALID, A.CKR_ENCRYPTED_DATA_LEN_RANGE):
                raise CryptokiError(A.CKR_DEVICE_ERROR, f"PIN record does not open under KEK {self.label!r}") from None
            raise


def for_slot(cfg: Any, backends: Mapping[int, Any]) -> Kek | None:
    """The KEK of a slot with ``[slots.upstream] kek = "wrap"``, else None."""
    up = cfg.upstream or {}
    if up.get("kek", "off") == "off":
        return None
    return Kek(backends[A.SHIM_BACKEND_UPSTREAM], up.get("kek_label") or "cryptoki-shim-kek")


def seal_record(kek: Kek | None, rec: Any) -> Any:
    """A PIN record as stored: KEK-wrapped in KEK mode (C_InitToken, C_InitPIN, C_SetPIN)."""
    if kek is None:
        return rec
    return dataclasses.replace(rec, wrapped_key=kek.wrap(rec.wrapped_key),
                               params={**rec.params, PARAM: kek.label.decode()})


def open_record(kek: Kek | None, rec: Any) -> Any:
    """The PIN record with its KEK layer removed (C_Login), before the PIN is tried.

    Raises CKR_DEVICE_ERROR (or the upstream's removed/not-present code) when the record
    needs a KEK this slot cannot use: no failed PIN is counted for that.
    """
    label = rec.params.get(PARAM)
    if label is None:
        if kek is not None:
            _log.warning("PIN record without KEK layer on a KEK-mode token (made before KEK mode?)")
        return rec
    if kek is None:
        raise CryptokiError(A.CKR_DEVICE_ERROR, f"PIN record is wrapped by upstream KEK {label!r}; "
                                                "this slot has no [slots.upstream] kek")
    if label.encode() != kek.label:
        kek = Kek(kek.backend, label)  # the record names its KEK (kek_label changed since)
    params = {k: v for k, v in rec.params.items() if k != PARAM}
    return dataclasses.replace(rec, wrapped_key=kek.unwrap(rec.wrapped_key), params=params)
