"""PIN records bound to the TPM (``[slots.tpm] pin_binding = true``, issue 15 item 5).

Without it a PIN record is ``AES-GCM(Argon2id(PIN), token key)``, and a copy of the store is
an offline PIN search at ~0.13 s per guess. On a TPM slot with ``pin_binding``, each PIN
record made by C_InitToken, C_InitPIN or C_SetPIN gets an outer layer: its ``wrapped_key`` is
``AES-256-GCM(S, that blob)`` where ``S`` is 32 random bytes sealed in a TPM object
(keyed-hash, ``userWithAuth``, *not* ``noDA``) whose auth value is derived from the PIN and a
per-record salt. To open the record the TPM must unseal ``S`` with the PIN's auth value, so:

- a copy of the store without this TPM: ``S`` never left the TPM (the sealed blob is
  encrypted under the TPM's storage root key), no guess can be tested offline at all;
- the store *and* this TPM (an attacker on the host): every guess is a TPM authorisation
  attempt, counted by the TPM's dictionary-attack protection — after ``maxTries`` failures
  the TPM refuses every DA-protected object (our TPM keys too) until ``recoveryTime``
  passes or the lockout hierarchy resets it (``cryptoki-shim tpm-reset-lockout``). Resetting
  our own ``failures`` column in the file does not reset the TPM's counter.

A wrong PIN therefore fails at the TPM before the KDF runs (``CKR_PIN_INCORRECT``, counted
by the token as ever); a TPM in lockout answers ``CKR_PIN_LOCKED``. The auth value is a
salted SHA-256 of the PIN: the TPM, not the hash, is what rate-limits guesses here, and the
inner Argon2id layer stays for a copy taken *with* the TPM's secrets (which a TPM does not
give out). Records made before ``pin_binding`` was switched on keep opening without the
TPM; each gains the layer at the next successful login with its PIN
(``Token._bind_pin_to_tpm``). Moving the token to another TPM needs the
PINs set again (backups keep the layer: restore on the same TPM).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import spec
from ..errors import CryptokiError
from ..mechanisms.digest import sha256

PARAM = "tpm_pin"
_AAD = b"cryptoki-shim/tpm-pin/v1"
_AUTH_PREFIX = b"cryptoki-shim/tpm-pin-auth/v1\x00"


def backend_of(backends: Mapping[int, Any]) -> Any:
    """The slot's TPM backend (opens bound records whatever ``pin_binding`` says now)."""
    return backends.get(spec.SHIM_BACKEND_TPM)


def sealer(cfg: Any, backends: Mapping[int, Any]) -> Any:
    """The slot's TPM backend when ``[slots.tpm] pin_binding`` is on (new records get the
    layer), else None."""
    return backend_of(backends) if (cfg.tpm or {}).get("pin_binding") else None


def _auth(salt: bytes, pin: bytes) -> bytes:
    return sha256(_AUTH_PREFIX + salt + pin)


def seal_record(backend: Any, rec: Any, pin: bytes) -> Any:
    """The record with the TPM layer (a new TPM-sealed secret per record)."""
    if backend is None:
        return rec
    from tpm2_pytss import TSS2_Exception
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC

    from . import tpm_conn, tpm_keys

    salt, secret = os.urandom(16), os.urandom(32)
    # a sealed data object authorised by its auth value directly; DA-protected (no NODA)
    attrs = TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.USERWITHAUTH
    template = TPM2B_PUBLIC.parse("keyedhash", objectAttributes=attrs)
    try:
        with backend.open("seal PIN secret") as conn:
            blob = tpm_keys._create(conn, template, _auth(salt, pin), secret)[0]
    except TSS2_Exception as exc:
        raise tpm_conn.fail(exc, "seal PIN secret") from None
    nonce = os.urandom(12)
    outer = nonce + AESGCM(secret).encrypt(nonce, rec.wrapped_key, _AAD)
    layer = {"salt": salt.hex(), "public": base64.b64encode(blob.public).decode(),
             "private": base64.b64encode(blob.private).decode()}
    return dataclasses.replace(rec, wrapped_key=outer, params={**rec.params, PARAM: layer})


def open_record(backend: Any, rec: Any, pin: bytes) -> Any:
    """The record without its TPM layer; ``CKR_PIN_INCORRECT`` when the TPM refuses the
    PIN's auth value (one dictionary-attack failure), ``CKR_PIN_LOCKED`` in TPM lockout,
    ``CKR_DEVICE_ERROR`` when the record needs a TPM this slot does not use."""
    layer = rec.params.get(PARAM)
    if layer is None:
        return rec
    if backend is None:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, "PIN record is bound to a TPM ([slots.tpm] pin_binding); "
                                                   "this slot has no TPM backend")
    from tpm2_pytss import TSS2_Exception

    from . import tpm_conn, tpm_keys

    try:
        blob = tpm_keys.Blob(base64.b64decode(layer["public"]), base64.b64decode(layer["private"]))
        auth = _auth(bytes.fromhex(layer["salt"]), pin)
    except (KeyError, TypeError, ValueError):
        raise CryptokiError(spec.CKR_DEVICE_ERROR, "PIN record's TPM layer is malformed") from None
    try:
        with backend.open("unseal PIN secret") as conn:
            handle = tpm_keys.load(conn, blob, auth)
            secret = bytes(conn.ectx.unseal(handle, session1=conn.secret_session(tpm_conn.SECRET_OUT)))
    except TSS2_Exception as exc:
        cause = tpm_conn.cause_of(exc)
        if cause.ckr in (spec.CKR_PIN_INCORRECT, spec.CKR_PIN_LOCKED):
            raise CryptokiError(cause.ckr, f"TPM: {cause.name}") from None
        raise tpm_conn.fail(exc, "unseal PIN secret") from None
    blob_ = rec.wrapped_key
    try:
        inner = AESGCM(secret).decrypt(blob_[:12], blob_[12:], _AAD)
    except InvalidTag:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, "PIN record does not open under its TPM secret") from None
    return dataclasses.replace(rec, wrapped_key=inner, params={k: v for k, v in rec.params.items() if k != PARAM})
