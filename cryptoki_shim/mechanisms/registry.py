"""The mechanism registry: CKM_* -> one entry that says what the mechanism takes and does.

Each family module (``rsa.py``, ``ec.py``, ``aes.py`` ...) subclasses :class:`Family` (every
operation defaults to CKR_MECHANISM_INVALID), describes each of its mechanisms with a typed
:class:`EntryData` and calls :func:`register` for them; nothing else in the package switches
on a mechanism number. Backends reach a family only through ``Family``'s methods. The
core asks the registry for ``C_GetMechanismList``/``C_GetMechanismInfo`` and for the entry
of every ``C_*Init``; the ABI asks it which parameter struct to read (``entry.param``).

Adding a mechanism touches one family file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, NamedTuple, Protocol, TypeVar

from ..errors import CryptokiError

CKR_MECHANISM_INVALID = 0x70


class KeyView(Protocol):
    """What a mechanism sees of a key object.

    ``attrs``: the object's typed attributes (sensitive values already decrypted).
    ``cache``: a per-object dict where a family may keep a parsed key (a pyca key object,
    a prepared cipher) so the operation path never re-parses; the core drops it when the
    object changes.
    """

    attrs: Mapping[int, Any]
    cache: dict


#: The operation kinds that make a context, and the ``Family`` method of each: the one
#: place that names them (the core's ``C_*Init`` and every backend go through it).
INIT_METHODS: dict[str, str] = {
    "sign": "sign_init",
    "verify": "verify_init",
    "encrypt": "encrypt_init",
    "decrypt": "decrypt_init",
    "digest": "digest_init",
    "verify_recover": "verify_recover_init",
}

#: ``maker(entry, param, key) -> context``: what ``Family.context_maker`` and
#: ``Backend.context_maker`` return; the core keeps it per key and mechanism.
ContextMaker = Callable[["MechanismEntry", Any, Any], Any]


def not_supported(entry: "MechanismEntry", what: str) -> CryptokiError:
    """CKR_MECHANISM_INVALID for an operation the entry's family does not do (spec §5.2:
    "the mechanism is not supported for this function")."""
    return CryptokiError(CKR_MECHANISM_INVALID, f"mechanism {entry.mechanism:#x} does not {what}")


class Family:
    """The contract of a mechanism family (kryoptic's ``Mechanism`` trait): every operation
    exists and answers CKR_MECHANISM_INVALID unless the family overrides it. The core calls
    only what ``entry.flags`` says, through a backend.

    Every method receives the entry, the parsed parameter (``None``, ``bytes`` or the
    dataclass of ``params.py`` named by ``entry.param``) and the key (a ``KeyView``), and
    raises ``CryptokiError`` with the spec's code on bad input.

    Contexts returned by the ``*_init`` methods:
      sign:    update(data) -> None; final() -> bytes; oneshot(data) -> bytes
      verify:  update(data) -> None; final(sig) -> None; oneshot(data, sig) -> None
               (raise CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE)
      encrypt/decrypt: update(data) -> bytes; final() -> bytes; oneshot(data) -> bytes
      digest:  update(data) -> None; final() -> bytes; oneshot(data) -> bytes
      verify_recover: oneshot(signature) -> bytes (the recovered data)
    and every context has ``length_hint(step: str, data_len: int) -> int | None`` (step is
    "update", "final" or "oneshot"): an upper bound of the output, so that a NULL-buffer
    length query is answered without doing the work; ``None`` means "compute to know".
    """

    __slots__ = ()

    def sign_init(self, entry: "MechanismEntry", param: Any, key: KeyView) -> Any:
        raise not_supported(entry, "sign")

    def verify_init(self, entry: "MechanismEntry", param: Any, key: KeyView) -> Any:
        raise not_supported(entry, "verify")

    def encrypt_init(self, entry: "MechanismEntry", param: Any, key: KeyView) -> Any:
        raise not_supported(entry, "encrypt")

    def decrypt_init(self, entry: "MechanismEntry", param: Any, key: KeyView) -> Any:
        raise not_supported(entry, "decrypt")

    def digest_init(self, entry: "MechanismEntry", param: Any, key: KeyView | None = None) -> Any:
        raise not_supported(entry, "digest")

    def verify_recover_init(self, entry: "MechanismEntry", param: Any, key: KeyView) -> Any:
        """C_VerifyRecoverInit: a context whose ``oneshot(signature)`` returns the data."""
        raise not_supported(entry, "verify with recovery")

    def generate_key(self, entry: "MechanismEntry", param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        raise not_supported(entry, "generate a key")

    def generate_key_pair(self, entry: "MechanismEntry", param: Any, pub_template: Mapping[int, Any],
                          priv_template: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        raise not_supported(entry, "generate a key pair")

    def derive(self, entry: "MechanismEntry", param: Any, base_key: KeyView,
               template: Mapping[int, Any]) -> dict[int, Any]:
        raise not_supported(entry, "derive")

    def wrap(self, entry: "MechanismEntry", param: Any, wrapping_key: KeyView, key_attrs: Mapping[int, Any]) -> bytes:
        """C_WrapKey: the bytes of the key (``wrapping.encode_key``) under ``wrapping_key``.
        The cipher families wrap by encrypting (``wrapping.EncryptionWrap``)."""
        raise not_supported(entry, "wrap")

    def unwrap(self, entry: "MechanismEntry", param: Any, unwrapping_key: KeyView, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None = None) -> dict[int, Any]:
        """C_UnwrapKey: the material attributes of the new key (``wrapping.decode_key``)."""
        raise not_supported(entry, "unwrap")

    def encapsulate(self, entry: "MechanismEntry", param: Any, public_key: KeyView,
                    template: Mapping[int, Any]) -> tuple[bytes, dict[int, Any]]:
        """C_EncapsulateKey (PKCS#11 3.2 §5.18): the ciphertext under ``public_key`` and the
        material attributes of the new secret key (as ``derive``)."""
        raise not_supported(entry, "encapsulate")

    def ciphertext_length(self, entry: "MechanismEntry", param: Any, public_key: KeyView,
                          template: Mapping[int, Any]) -> int:
        """The length ``encapsulate`` would produce, checked as it would check its inputs, without
        doing the work: C_EncapsulateKey's length query and too-small buffer answer from it."""
        raise not_supported(entry, "encapsulate")

    def decapsulate(self, entry: "MechanismEntry", param: Any, private_key: KeyView, ciphertext: bytes,
                    template: Mapping[int, Any]) -> dict[int, Any]:
        """C_DecapsulateKey (PKCS#11 3.2 §5.18): the material attributes of the secret key
        ``ciphertext`` carries."""
        raise not_supported(entry, "decapsulate")

    def context_maker(self, kind: str, entry: "MechanismEntry") -> ContextMaker:
        """What makes a ``kind`` context ("sign", "verify", "encrypt", "decrypt", "digest")
        for ``entry``: the ``*_init`` method itself, or a more direct callable a family
        prefers (AES binds its cipher's maker). The software backend hands it to the core,
        which keeps it per key and mechanism: a repeated C_*Init calls it directly."""
        return getattr(self, INIT_METHODS[kind])


@dataclass(frozen=True)
class EntryData:
    """What a family needs to know about one of its mechanisms beyond the common fields
    (which hash, which padding scheme ...). Each family subclasses it with typed, frozen
    fields (``rsa.RsaData``, ``hmac.HmacData`` ...); an entry that needs nothing has
    ``NO_DATA``."""


NO_DATA = EntryData()


@dataclass(frozen=True)
class KeyGenData(EntryData):
    """A key generation mechanism: the CKK_* it makes (CKM_AES_KEY_GEN -> CKK_AES)."""

    key_type: int


@dataclass(frozen=True)
class ParameterGenData(KeyGenData):
    """A domain parameter generation mechanism (CKM_DSA_PARAMETER_GEN, CKM_DH_PKCS_PARAMETER_GEN):
    C_GenerateKey makes a CKO_DOMAIN_PARAMETERS object of ``key_type``. Public values, no key:
    the core makes them in software whichever backend holds the token's keys."""


D = TypeVar("D", bound=EntryData)


@dataclass(frozen=True)
class MechanismEntry(Generic[D]):
    """One mechanism: what ``C_GetMechanismInfo`` reports and what the core checks.

    ``min_key_size``/``max_key_size`` are in the unit the spec gives for the mechanism
    (bits for RSA/EC, bytes for AES and generic secrets). ``key_types`` is the set of CKK_*
    the mechanism accepts (empty for digests and key generation without a key).
    ``param`` is the parameter kind: ``None`` (no parameter), ``bytes`` (an IV or other
    plain byte string), or a dataclass type from ``mechanisms.params``. ``data`` is the
    family's own typed description of the mechanism (``EntryData``); a family's functions
    name it in their signature (``MechanismEntry[RsaData]``).
    """

    mechanism: int
    flags: int
    min_key_size: int
    max_key_size: int
    family: Family
    key_types: frozenset[int] = field(default_factory=frozenset)
    param: Any = None
    param_optional: bool = False
    data: D = NO_DATA
    #: An insecure mechanism (single DES, MD5) a slot offers only with ``legacy_mechanisms =
    #: true``: elsewhere it is absent from C_GetMechanismList and CKR_MECHANISM_INVALID
    #: (the core's ``offered`` check, issue 23 item 9).
    legacy: bool = False


_REGISTRY: dict[int, MechanismEntry] = {}


def register(entry: MechanismEntry) -> None:
    """Add a mechanism; a second registration of the same number is a programming error."""
    if entry.mechanism in _REGISTRY:
        raise ValueError(f"mechanism {entry.mechanism:#x} registered twice")
    _REGISTRY[entry.mechanism] = entry


def lookup(mechanism: int) -> MechanismEntry:
    """The entry for ``mechanism`` or ``CKR_MECHANISM_INVALID``."""
    if not _loaded:
        _load_families()
    try:
        return _REGISTRY[mechanism]
    except KeyError:
        raise CryptokiError(CKR_MECHANISM_INVALID, f"mechanism {mechanism:#x} not supported") from None


def check_offered(entry: MechanismEntry, legacy_allowed: bool) -> None:
    """A legacy entry (single DES, MD5) in a slot without ``legacy_mechanisms``: the slot
    does not offer it, so every function that takes it answers CKR_MECHANISM_INVALID, as for
    a mechanism we do not have (§5.2; C_GetMechanismList leaves it out). Issue 23 item 9."""
    if entry.legacy and not legacy_allowed:
        raise CryptokiError(CKR_MECHANISM_INVALID,
                            f"mechanism {entry.mechanism:#x} is a legacy mechanism: the slot's legacy_mechanisms is off")


def all_entries() -> list[MechanismEntry]:
    """Every registered entry, ordered by mechanism number (C_GetMechanismList order)."""
    if not _loaded:
        _load_families()
    return [_REGISTRY[m] for m in sorted(_REGISTRY)]


#: True once every family module has been imported (and so has registered its entries).
_loaded = False
_load_lock = threading.Lock()


def _load_families() -> None:
    """Import the family modules once; each registers its entries at import time.

    The families stay imported on first use, not at C_Initialize (cold start,
    docs/performance.md), so the first lookups of several threads may arrive together: the
    import runs under a lock and ``_loaded`` is set only after it completed, so no lookup
    answers from a registry still being filled (issue 16 item 1: threads whose first
    C_DigestInit met a half-loaded registry answered CKR_MECHANISM_INVALID). A failed import
    leaves ``_loaded`` False: the next lookup tries again and fails the same way.
    """
    global _loaded
    with _load_lock:
        if not _loaded:
            from . import families  # noqa: F401  (imports every family module)

            _loaded = True


def _new_lock_in_child() -> None:
    """A child forked while another thread of the parent held the lock would wait on it
    for ever at its first lookup (the C shim's fork gate prevents that fork in a C host,
    nothing does in a Python host): the child gets a lock of its own."""
    global _load_lock
    _load_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


class Mechanism(NamedTuple):
    """A CK_MECHANISM as Python values: the registry entry and the parsed parameter (a
    named tuple: one is made on every C_*Init with a parameter)."""

    entry: MechanismEntry
    param: Any = None
