"""Where key material lives and operations run: per object, not per token (DESIGN.md §1).

Every key object records its backend in ``CKA_SHIM_BACKEND`` (software when absent). The
core asks this package for the backend of a key it is about to use, or of a key it is about
to make (the slot's configured default, overridden by ``CKA_SHIM_BACKEND`` in the template),
and calls only the methods of ``Backend`` (``base.py``, re-exported here): the core never
knows whether the bytes are in memory, sealed to a TPM, or inside an upstream HSM.

A backend registers itself with ``register``; ``software`` is always there. The TPM and
upstream backends are configured per slot and registered when the module initializes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from .. import spec
from ..spec_ints import CKA_SHIM_BACKEND
from ..errors import CryptokiError
from .base import Backend

if TYPE_CHECKING:
    from ..mechanisms.registry import ContextMaker, MechanismEntry

BY_NAME = {
    "software": spec.SHIM_BACKEND_SOFTWARE,
    "tpm": spec.SHIM_BACKEND_TPM,
    "upstream": spec.SHIM_BACKEND_UPSTREAM,
}
SOFTWARE = BY_NAME["software"]


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
