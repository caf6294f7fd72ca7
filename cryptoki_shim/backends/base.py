"""The Backend contract: what the core asks of whatever holds a key's material (software,
TPM, upstream HSM). The package ``__init__`` re-exports it as ``backends.Backend``; it is its
own module so every backend module imports it without importing the package's registry of
backends (docs/architecture.md "The mechanism/backend contract").
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..mechanisms.registry import ContextMaker, MechanismEntry


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

    def encapsulate(self, entry: MechanismEntry, param: Any, public_key: Any,
                    template: Mapping[int, Any]) -> tuple[bytes, dict[int, Any]]:
        return entry.family.encapsulate(entry, param, public_key, template)

    def ciphertext_length(self, entry: MechanismEntry, param: Any, public_key: Any,
                          template: Mapping[int, Any]) -> int:
        return entry.family.ciphertext_length(entry, param, public_key, template)

    def decapsulate(self, entry: MechanismEntry, param: Any, private_key: Any, ciphertext: bytes,
                    template: Mapping[int, Any]) -> dict[int, Any]:
        return entry.family.decapsulate(entry, param, private_key, ciphertext, template)

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

    def destroyed(self, key: Any) -> None:  # noqa: B027  (a hook: nothing to do unless overridden)
        """The key object was destroyed (an upstream backend deletes its upstream object)."""

    def logged_out(self) -> None:  # noqa: B027  (a hook: nothing to do unless overridden)
        """The application logged out of the token: drop cached secrets (a TPM unseal cache)."""
