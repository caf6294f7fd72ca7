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
        """A context for "sign", "verify", "encrypt" or "decrypt" (see mechanisms.registry)."""

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


_BACKENDS: dict[int, Backend] = {}


def register(backend: Backend) -> None:
    _BACKENDS[backend.backend_id] = backend


def registered() -> list[Backend]:
    _ensure_software()
    return list(_BACKENDS.values())


def backend_id_of(attrs: Mapping[int, Any]) -> int:
    return attrs.get(CKA_SHIM_BACKEND, BY_NAME["software"])


def get(backend_id: int) -> Backend:
    _ensure_software()
    try:
        return _BACKENDS[backend_id]
    except KeyError:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, f"backend {backend_id} is not configured") from None


def for_key(key: Any) -> Backend:
    """The backend that holds ``key``'s material."""
    return get(backend_id_of(key.attrs))


def for_new_key(default: str, template: Mapping[int, Any]) -> Backend:
    """The backend a new key goes to: the template's CKA_SHIM_BACKEND, else the slot default."""
    wanted = template.get(CKA_SHIM_BACKEND, BY_NAME.get(default, BY_NAME["software"]))
    if wanted not in _BACKENDS:
        _ensure_software()
    if wanted not in _BACKENDS:
        raise CryptokiError(spec.CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_SHIM_BACKEND {wanted}: not configured here")
    return _BACKENDS[wanted]


def _ensure_software() -> None:
    if BY_NAME["software"] not in _BACKENDS:
        from .software import SoftwareBackend

        register(SoftwareBackend())
