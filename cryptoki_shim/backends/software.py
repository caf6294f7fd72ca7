"""The software backend: key material in the object's (decrypted) attributes, operations by
the mechanism families on pyca/cryptography.

It adds nothing of its own: the families already work on ``KeyView`` objects. It exists so
the core dispatches every key use the same way, whichever backend holds the key.
"""

from __future__ import annotations

from typing import Any, Mapping

from .. import spec
from ..mechanisms import wrap as wrapping

METHODS = {"sign": "sign_init", "verify": "verify_init", "encrypt": "encrypt_init", "decrypt": "decrypt_init"}


class SoftwareBackend:
    backend_id = int(spec.SHIM_BACKEND_SOFTWARE)

    def __init__(self, slot_cfg: Any = None) -> None:
        self.slot_cfg = slot_cfg

    def operation_init(self, kind: str, entry: Any, param: Any, key: Any) -> Any:
        return getattr(entry.family, METHODS[kind])(entry, param, key)

    def context_maker(self, kind: str, entry: Any) -> Any:
        """The family's ``*_init`` itself, or the more direct maker a family offers through
        ``init_for(kind, entry)``: the core keeps it per key and mechanism, so a repeated
        C_*Init passes through neither this backend nor the family's dispatch."""
        init_for = getattr(entry.family, "init_for", None)
        maker = init_for(kind, entry) if init_for is not None else None
        return maker if maker is not None else getattr(entry.family, METHODS[kind])

    def generate_key(self, entry: Any, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        return entry.family.generate_key(entry, param, template)

    def generate_key_pair(self, entry: Any, param: Any, pub: Mapping[int, Any],
                          priv: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        return entry.family.generate_key_pair(entry, param, pub, priv)

    def wrap(self, entry: Any, param: Any, wrapping_key: Any, key: Any) -> bytes:
        return wrapping.wrap_key(entry, param, wrapping_key, key.attrs)

    def unwrap(self, entry: Any, param: Any, unwrapping_key: Any, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None) -> dict[int, Any]:
        return wrapping.unwrap_key(entry, param, unwrapping_key, wrapped, key_class, key_type, value_len)

    def derive(self, entry: Any, param: Any, base_key: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        return entry.family.derive(entry, param, base_key, template)

    def destroyed(self, key: Any) -> None:
        """Nothing outside the store to clean up."""

    def logged_out(self) -> None:
        """Decrypted material is dropped by the token itself."""
