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
from ..attributes import codec, policy
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


class _Plan:
    """What a KEM call concludes before any secret exists, from the key's attributes, the
    mechanism, the caller's template and role: the key passed ``check_key``, the template
    merged with the key's CKA_(EN|DE)CAPSULATE_TEMPLATE and the D1-D3 rules
    (``_template_for``), the backend, the template as the new key takes it
    (``held_by_caller``), then what the first call found: the ciphertext's length and the
    new key's attributes without its value (``policy.SecretMaker``, made by ``build_object``).

    Kept in the key's ``cache`` (emptied whenever the key's attributes change; a reload makes
    a new ``Object``), as ``operation_init`` keeps its key verdicts, and used only while the
    key's attribute dict is the one it was made from (attribute dicts are replaced, never
    changed in place), per (usage, mechanism, parameter, logged-in user, the template's
    items): a repeated call runs the crypto, D2 on the secret's length, and makes the object
    from the maker. Refusals are never kept: a call that fails before the plan is made makes
    none, and the lazily found parts are set only when they were found."""

    __slots__ = ("attrs", "template", "backend", "held", "supplied", "ct_len", "maker", "keep")

    def __init__(self, attrs: dict[int, Any], template: dict[int, Any], backend: Any, held: dict[int, Any],
                 supplied: bool, keep: bool) -> None:
        self.attrs, self.template, self.backend, self.held = attrs, template, backend, held
        self.supplied, self.keep = supplied, keep
        self.ct_len: int | None = None
        self.maker: policy.SecretMaker | None = None


_PLANS = "kem.plans"  # the key's cache slot: {plan key: _Plan}
#: A key used with many templates (a fresh CKA_LABEL per key) keeps the latest few.
_PLANS_PER_KEY = 16


def _plan(session: Any, mech: Mechanism, key: Any, template: dict[int, Any], usage: int,
          own_template: int) -> _Plan:
    """The key's kept plan for this call, or a new one from the checks (``_Plan``)."""
    entry = mech.entry
    token = session.token
    slot: tuple | None = None
    plans = key.cache.get(_PLANS)
    if template.__class__ is codec.Decoded:  # normal-form values: equal items, equal template
        slot = (usage, entry.mechanism, mech.param, token.login_user, tuple(template.items()))
        try:
            plan = plans.get(slot) if plans is not None else None
        except TypeError:  # an unhashable value (a nested template): nothing kept
            slot = plan = None
        if plan is not None and plan.attrs is key.attrs:
            return plan
    attrs = key.attrs
    check_key(entry, key, usage)
    merged = _merge_template(attrs.get(own_template), template)
    merged = {**merged, **key_management.derive_rules(entry.mechanism, [attrs], merged, True,
                                                     token.cfg.weak_derivation)}
    plan = _Plan(attrs, merged, token.backend_for(key), session.held_by_caller(merged, key.supplied),
                 key.supplied, slot is not None)
    if slot is not None:
        if plans is None or len(plans) >= _PLANS_PER_KEY:
            plans = key.cache[_PLANS] = {}
        plans[slot] = plan
    return plan


def _new_key(session: Any, kem_key: Any, plan: _Plan, material: dict[int, Any]) -> Any:
    key_management.check_derived_length([kem_key.attrs], material, session.token.cfg.weak_derivation)
    template = plan.held
    if CKA_CLASS not in template:
        material = {CKA_CLASS: CKO_SECRET_KEY, **material}
    elif template[CKA_CLASS] != CKO_SECRET_KEY:
        raise CryptokiError(spec.CKR_TEMPLATE_INCONSISTENT, "a KEM makes a secret key")
    maker = plan.maker
    attrs = maker.make(material) if maker is not None else None
    if attrs is None:
        # base: only read (the derived flags); an object's attrs are replaced, never changed in place
        attrs = policy.build_object(template, Origin.DERIVE, material=material, base=kem_key.attrs,
                                    is_so=session.is_so)
        if plan.keep:
            plan.maker = policy.secret_maker(template, Origin.DERIVE, material=material, base=kem_key.attrs,
                                             is_so=session.is_so)
    new = session.add(attrs)
    new.supplied = plan.supplied and not new.is_token
    return new


def encapsulate_key(session: Any, mech: Mechanism, public_handle: int, template: dict[int, Any],
                    capacity: int | None) -> int | Encapsulated:
    """C_EncapsulateKey: the ciphertext's length for a query (``capacity`` None), else the
    ciphertext and the new key (module docstring)."""
    entry = mech.entry
    _require(entry, CKF_ENCAPSULATE)
    key = session.key(public_handle)
    new = None
    try:
        plan = _plan(session, mech, key, template, CKA_ENCAPSULATE, CKA_ENCAPSULATE_TEMPLATE)
        length = plan.ct_len
        if length is None:
            length = plan.ct_len = plan.backend.ciphertext_length(entry, mech.param, key, plan.template)
        if capacity is None:
            return length
        if capacity < length:
            raise BufferTooSmall(length)
        ciphertext, material = plan.backend.encapsulate(entry, mech.param, key, plan.template)
        new = _new_key(session, key, plan, material)
    except CryptokiError as exc:
        if not isinstance(exc, BufferTooSmall):
            audit.key_management(session, "encapsulate", entry.mechanism, key, None, exc)
        raise
    if audit.ON:
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
        plan = _plan(session, mech, key, template, CKA_DECAPSULATE, CKA_DECAPSULATE_TEMPLATE)
        material = plan.backend.decapsulate(entry, mech.param, key, ciphertext, plan.template)
        new = _new_key(session, key, plan, material)
    except CryptokiError as exc:
        audit.key_management(session, "decapsulate", entry.mechanism, key, None, exc)
        raise
    if audit.ON:
        audit.key_management(session, "decapsulate", entry.mechanism, key, new)
    return new.handle
