"""The mechanism registry: CKM_* -> one entry that says what the mechanism takes and does.

Each family module (``rsa.py``, ``ec.py``, ``aes.py`` ...) calls :func:`register` for the
mechanisms it implements; nothing else in the package switches on a mechanism number. The
core asks the registry for ``C_GetMechanismList``/``C_GetMechanismInfo`` and for the entry
of every ``C_*Init``; the ABI asks it which parameter struct to read (``entry.param``).

Adding a mechanism touches one family file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Protocol

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


class Family(Protocol):
    """The operations a family may implement. The core calls only what ``entry.flags`` says.

    Every method receives the entry, the parsed parameter (``None``, ``bytes`` or the
    dataclass of ``params.py`` named by ``entry.param``) and the key, and raises
    ``CryptokiError`` with the spec's code on bad input.

    Contexts returned by the ``*_init`` methods:
      sign:    update(data) -> None; final() -> bytes; oneshot(data) -> bytes
      verify:  update(data) -> None; final(sig) -> None; oneshot(data, sig) -> None
               (raise CKR_SIGNATURE_INVALID / CKR_SIGNATURE_LEN_RANGE)
      encrypt/decrypt: update(data) -> bytes; final() -> bytes; oneshot(data) -> bytes
      digest:  update(data) -> None; final() -> bytes; oneshot(data) -> bytes
    and every context has ``length_hint(step: str, data_len: int) -> int | None`` (step is
    "update", "final" or "oneshot"): an upper bound of the output, so that a NULL-buffer
    length query is answered without doing the work; ``None`` means "compute to know".
    """


@dataclass(frozen=True)
class MechanismEntry:
    """One mechanism: what ``C_GetMechanismInfo`` reports and what the core checks.

    ``min_key_size``/``max_key_size`` are in the unit the spec gives for the mechanism
    (bits for RSA/EC, bytes for AES and generic secrets). ``key_types`` is the set of CKK_*
    the mechanism accepts (empty for digests and key generation without a key).
    ``param`` is the parameter kind: ``None`` (no parameter), ``bytes`` (an IV or other
    plain byte string), or a dataclass type from ``mechanisms.params``.
    """

    mechanism: int
    flags: int
    min_key_size: int
    max_key_size: int
    family: Any
    key_types: frozenset[int] = field(default_factory=frozenset)
    param: Any = None
    param_optional: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


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


class Mechanism(NamedTuple):
    """A CK_MECHANISM as Python values: the registry entry and the parsed parameter (a
    named tuple: one is made on every C_*Init with a parameter)."""

    entry: MechanismEntry
    param: Any = None
