"""C_EncapsulateKey and C_DecapsulateKey (PKCS#11 3.2 §5.18): a KEM's shared secret as a
new secret-key object made from the caller's template.

They sit next to C_DeriveKey and follow its rules (``crypto_functions.derive_key``):

* the key: the mechanism's key types, CKA_ALLOWED_MECHANISMS, and the usage flag
  CKA_ENCAPSULATE (public key) / CKA_DECAPSULATE (private key): CKR_KEY_FUNCTION_NOT_PERMITTED
  when it is not TRUE (``crypto_functions.check_key``); the key's CKA_ENCAPSULATE_TEMPLATE /
  CKA_DECAPSULATE_TEMPLATE applies as CKA_DERIVE_TEMPLATE does;
* the new key: built as a derived key (Origin.DERIVE: CKA_LOCAL FALSE, CKA_VALUE and the
  other footnote-4 attributes refused in the template), under the key-management rules of
  ``key_management.derive_rules`` with the KEM key as the base. A KEM is a key agreement
  (the secret reveals nothing of the private key, as with ECDH), so the new key inherits
  CKA_WRAP_WITH_TRUSTED, not the base's SENSITIVE/EXTRACTABLE (docs/security.md), and no key
  under 16 bytes comes from a protected private key unless ``weak_derivation``;
* C_EncapsulateKey's ciphertext follows the output-buffer protocol (§5.2): a NULL
  ``pCiphertext`` answers its length, a short buffer CKR_BUFFER_TOO_SMALL with the length,
  and in both cases no key is made (the encapsulation run for the answer is discarded);
* both are audited as ``key.use`` records naming the new key, as C_DeriveKey is.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import audit, spec
from ..attributes import policy
from ..attributes.policy import Origin
from ..errors import BufferTooSmall, CryptokiError
from ..mechanisms.registry import Mechanism
from ..spec_ints import (
    CKA_CLASS,
    CKA_DECAPSULATE,
    CKA_DECAPSULATE_TEMPLATE,
    CKA_ENCAPSULATE,
    CKA_ENCAPSULATE_TEMPLATE,
    CKF_DECAPSULATE,
    CKF_ENCAPSULATE,
    CKO_SECRET_KEY,
)
from . import key_management
from .crypto_functions import _merge_template, check_key


class Encapsulated(NamedTuple):
    """What C_EncapsulateKey returns: the ciphertext and the new key's handle."""

    ciphertext: bytes
    handle: int


def _require(entry: Any, flag: int) -> None:
    if not entry.flags & flag:
        raise CryptokiError(spec.CKR_MECHANISM_INVALID, f"{spec.ckm_name(entry.mechanism)} cannot do this")


def _new_key(session: Any, kem_key: Any, template: dict[int, Any], material: dict[int, Any]) -> Any:
    key_management.check_derived_length([kem_key.attrs], material, session.token.cfg.weak_derivation)
    if CKA_CLASS not in template:
        material = {CKA_CLASS: CKO_SECRET_KEY, **material}
    elif template[CKA_CLASS] != CKO_SECRET_KEY:
        raise CryptokiError(spec.CKR_TEMPLATE_INCONSISTENT, "a KEM makes a secret key")
    template = session.held_by_caller(template, kem_key.supplied)
    # base: only read (the derived flags); an object's attrs are replaced, never changed in place
    attrs = policy.build_object(template, Origin.DERIVE, material=material, base=kem_key.attrs,
                                is_so=session.is_so)
    new = session.add(attrs)
    new.supplied = kem_key.supplied and not new.is_token
    return new


def _template_for(session: Any, entry: Any, kem_key: Any, template: dict[int, Any], own_template: int) -> dict[int, Any]:
    template = _merge_template(kem_key.attrs.get(own_template), template)
    return {**template, **key_management.derive_rules(entry.mechanism, [kem_key.attrs], template, True,
                                                      session.token.cfg.weak_derivation)}


def encapsulate_key(session: Any, mech: Mechanism, public_handle: int, template: dict[int, Any],
                    capacity: int | None) -> int | Encapsulated:
    """C_EncapsulateKey: the ciphertext's length for a query (``capacity`` None), else the
    ciphertext and the new key (module docstring)."""
    entry = mech.entry
    _require(entry, CKF_ENCAPSULATE)
    key = session.key(public_handle)
    new = None
    try:
        check_key(entry, key, CKA_ENCAPSULATE)
        template = _template_for(session, entry, key, template, CKA_ENCAPSULATE_TEMPLATE)
        backend = session.token.backend_for(key)
        length = backend.ciphertext_length(entry, mech.param, key, template)
        if capacity is None:
            return length
        if capacity < length:
            raise BufferTooSmall(length)
        ciphertext, material = backend.encapsulate(entry, mech.param, key, template)
        new = _new_key(session, key, template, material)
    except CryptokiError as exc:
        if not isinstance(exc, BufferTooSmall):
            audit.key_management(session, "encapsulate", entry.mechanism, key, None, exc)
        raise
    audit.key_management(session, "encapsulate", entry.mechanism, key, new)
    return Encapsulated(ciphertext, new.handle)


def decapsulate_key(session: Any, mech: Mechanism, private_handle: int, template: dict[int, Any],
                    ciphertext: bytes) -> int:
    """C_DecapsulateKey: the handle of the new key holding the secret ``ciphertext`` carries."""
    entry = mech.entry
    _require(entry, CKF_DECAPSULATE)
    key = session.key(private_handle)
    new = None
    try:
        check_key(entry, key, CKA_DECAPSULATE)
        template = _template_for(session, entry, key, template, CKA_DECAPSULATE_TEMPLATE)
        material = session.token.backend_for(key).decapsulate(entry, mech.param, key, ciphertext, template)
        new = _new_key(session, key, template, material)
    except CryptokiError as exc:
        audit.key_management(session, "decapsulate", entry.mechanism, key, None, exc)
        raise
    audit.key_management(session, "decapsulate", entry.mechanism, key, new)
    return new.handle
