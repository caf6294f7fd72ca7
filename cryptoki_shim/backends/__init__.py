"""Where key material lives and operations run: per object, not per token (DESIGN.md §1).

Every key object records its backend in ``CKA_SHIM_BACKEND`` (software when absent). The
core asks this package for the backend of a key it is about to use, or of a key it is about
to make (the slot's configured default, overridden by ``CKA_SHIM_BACKEND`` in the template),
and calls only the ``Backend`` methods below: the core never knows whether the bytes are in
memory, sealed to a TPM, or inside an upstream HSM.

A backend registers itself with ``register``; ``software`` is always there. The TPM and
upstream backends are configured per slot and registered when the module initializes.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Mapping

from .. import spec
from ..errors import CryptokiError

if TYPE_CHECKING:
    from ..mechanisms.registry import ContextMaker, MechanismEntry

CKA_SHIM_BACKEND = int(spec.CKA_SHIM_BACKEND)
BY_NAME = {
    "software": int(spec.SHIM_BACKEND_SOFTWARE),
    "tpm": int(spec.SHIM_BACKEND_TPM),
    "upstream": int(spec.SHIM_BACKEND_UPSTREAM),
}
SOFTWARE = BY_NAME["software"]


class Backend(abc.ABC):
    """What the core asks of a backend: the contract between the core and where key
    material lives. ``entry``/``param`` come from the mechanism registry; ``key`` is the
    core's object (``.attrs``, ``.cache``: a ``mechanisms.registry.KeyView``); templates
    are typed dicts.

    One method is required, :meth:`context_maker`; every other one has the software
    behaviour here (the family computes on the key's attributes), which a backend overrides
    where it keeps the material itself. The families are reached only through
    ``entry.family`` (``mechanisms.registry.Family``), whose operations all exist and answer
    CKR_MECHANISM_INVALID when the family does not do them.

    Material returned by the generate/unwrap/derive methods is merged into the new object
    by the attribute validator; a backend adds its own vendor attributes (a TPM blob, an
    upstream reference) there, and ``CKA_SHIM_BACKEND``.
    """

    backend_id: int

    @abc.abstractmethod
    def context_maker(self, kind: str, entry: MechanismEntry) -> ContextMaker:
        """What makes the operation context of ``kind`` ("sign", "verify", "encrypt",
        "decrypt", "digest") for ``entry`` on this backend's keys: a callable
        ``(entry, param, key) -> context`` (the contexts of ``registry.Family``). The core
        asks once per key and mechanism and keeps the answer in the key's ``cache``
        (docs/architecture.md "The operation path"), so the maker is what runs on every
        C_*Init: make it direct (the software backend returns the family's own maker)."""

    def generate_key(self, entry: MechanismEntry, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        return entry.family.generate_key(entry, param, template)

    def generate_key_pair(self, entry: MechanismEntry, param: Any, pub: Mapping[int, Any],
                          priv: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        return entry.family.generate_key_pair(entry, param, pub, priv)

    def wrap(self, entry: MechanismEntry, param: Any, wrapping_key: Any, key: Any) -> bytes:
        return entry.family.wrap(entry, param, wrapping_key, key.attrs)

    def unwrap(self, entry: MechanismEntry, param: Any, unwrapping_key: Any, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None) -> dict[int, Any]:
        return entry.family.unwrap(entry, param, unwrapping_key, wrapped, key_class, key_type, value_len)

    def derive(self, entry: MechanismEntry, param: Any, base_key: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        return entry.family.derive(entry, param, base_key, template)

    def import_key(self, attrs: Mapping[int, Any]) -> dict[int, Any]:
        """C_CreateObject of a key: the material checks of the key's type (a public key on
        its curve, an RSA key's size ...) and the attributes they complete
        (``mechanisms.keys.check_import``). Objects are created in software."""
        from ..mechanisms import keys

        return keys.check_import(attrs)

    def mechanism_info(self, entry: MechanismEntry) -> tuple[int, int, int] | None:
        """(min key size, max key size, flags) C_GetMechanismInfo reports for ``entry`` on a
        slot whose keys go here; None: not offered (left out of C_GetMechanismList)."""
        return entry.min_key_size, entry.max_key_size, entry.flags

    def destroyed(self, key: Any) -> None:
        """The key object was destroyed (an upstream backend deletes its upstream object)."""

    def logged_out(self) -> None:
        """The application logged out of the token: drop cached secrets (a TPM unseal cache)."""


def keyless_context_maker(kind: str, entry: MechanismEntry) -> ContextMaker:
    """The maker of a context that needs no key (C_DigestInit): digests run in software on
    every slot, whichever backend holds its keys (an upstream slot too)."""
    global _keyless
    if _keyless is None:
        from .software import SoftwareBackend

        _keyless = SoftwareBackend()
    return _keyless.context_maker(kind, entry)


_keyless: Backend | None = None


#: backend name -> "module:Class"; a backend is built per slot from the slot's configuration
#: (``SlotConfig.tpm`` / ``SlotConfig.upstream``), imported only when a slot uses it.
FACTORIES = {
    "software": "cryptoki_shim.backends.software:SoftwareBackend",
    "tpm": "cryptoki_shim.backends.tpm:TpmBackend",
    "upstream": "cryptoki_shim.backends.upstream:UpstreamBackend",
}


def make_backends(slot_cfg: Any) -> dict[int, Backend]:
    """The backends of one slot: software always; tpm/upstream when the slot configures them.

    Each backend class takes the slot configuration (``cls(slot_cfg)``).
    """
    import importlib

    out: dict[int, Backend] = {}
    for name, where in FACTORIES.items():
        if name != "software" and not getattr(slot_cfg, name, None) and slot_cfg.backend != name:
            continue
        module, cls = where.split(":")
        out[BY_NAME[name]] = getattr(importlib.import_module(module), cls)(slot_cfg)
    return out


def backend_id_of(attrs: Mapping[int, Any]) -> int:
    return attrs.get(CKA_SHIM_BACKEND, BY_NAME["software"])


def pick(available: Mapping[int, Backend], backend_id: int) -> Backend:
    try:
        return available[backend_id]
    except KeyError:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, f"backend {backend_id} is not configured for this slot") from None


def pick_for_new_key(available: Mapping[int, Backend], default: str, template: Mapping[int, Any]) -> Backend:
    """The backend a new key goes to: the template's CKA_SHIM_BACKEND, else the slot default."""
    wanted = template.get(CKA_SHIM_BACKEND, BY_NAME.get(default, BY_NAME["software"]))
    if wanted not in available:
        raise CryptokiError(spec.CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_SHIM_BACKEND {wanted}: not configured for this slot")
    return available[wanted]
