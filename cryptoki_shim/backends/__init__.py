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

from typing import Any, Mapping, Protocol

from .. import spec
from ..errors import CryptokiError

CKA_SHIM_BACKEND = int(spec.CKA_SHIM_BACKEND)
BY_NAME = {
    "software": int(spec.SHIM_BACKEND_SOFTWARE),
    "tpm": int(spec.SHIM_BACKEND_TPM),
    "upstream": int(spec.SHIM_BACKEND_UPSTREAM),
}


class Backend(Protocol):
    """What the core asks of a backend. ``entry``/``param`` come from the mechanism registry;
    ``key`` is the core's object (``.attrs``, ``.cache``); templates are typed dicts.

    Material returned by the generate/unwrap/derive methods is merged into the new object
    by the attribute validator; a backend adds its own vendor attributes (a TPM blob, an
    upstream reference) there, and ``CKA_SHIM_BACKEND``.
    """

    backend_id: int

    def operation_init(self, kind: str, entry: Any, param: Any, key: Any) -> Any:
        """A context for "sign", "verify", "encrypt" or "decrypt" (see mechanisms.registry).

        Optional: ``context_maker(kind, entry)`` returning a callable ``(entry, param, key)``
        that does the same; the core keeps it per key and mechanism (the software backend
        offers one so a repeated C_*Init skips its dispatch). Without it the core binds
        ``operation_init`` to ``kind``.
        """

    def generate_key(self, entry: Any, param: Any, template: Mapping[int, Any]) -> dict[int, Any]: ...

    def generate_key_pair(self, entry: Any, param: Any, pub: Mapping[int, Any],
                          priv: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]: ...

    def wrap(self, entry: Any, param: Any, wrapping_key: Any, key: Any) -> bytes: ...

    def unwrap(self, entry: Any, param: Any, unwrapping_key: Any, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None) -> dict[int, Any]: ...

    def derive(self, entry: Any, param: Any, base_key: Any, template: Mapping[int, Any]) -> dict[int, Any]: ...

    def destroyed(self, key: Any) -> None:
        """The key object was destroyed (an upstream backend deletes its upstream object)."""

    def logged_out(self) -> None:
        """The application logged out of the token: drop cached secrets (a TPM unseal cache)."""


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
