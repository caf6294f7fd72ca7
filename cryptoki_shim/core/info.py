"""What C_GetSlotInfo, C_GetTokenInfo and C_GetMechanism* report, as plain values.

The flags are computed from the real state on every call (a cached CKF_USER_PIN_LOCKED
would lie after another process's C_InitPIN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from .. import __version__, spec
from ..spec_ints import (
    CKF_LOGIN_REQUIRED,
    CKF_RNG,
    CKF_SO_PIN_COUNT_LOW,
    CKF_SO_PIN_FINAL_TRY,
    CKF_SO_PIN_LOCKED,
    CKF_TOKEN_INITIALIZED,
    CKF_TOKEN_PRESENT,
    CKF_USER_PIN_COUNT_LOW,
    CKF_USER_PIN_FINAL_TRY,
    CKF_USER_PIN_INITIALIZED,
    CKF_USER_PIN_LOCKED,
    CKU_SO,
    CKU_USER,
    CK_EFFECTIVELY_INFINITE,
    CK_UNAVAILABLE_INFORMATION,
)
from ..errors import CryptokiError


if TYPE_CHECKING:
    from .module import Module, Slot

MANUFACTURER = "cryptoki-shim project"
_MAJOR, _MINOR = __version__.split(".")[:2]
VERSION = (int(_MAJOR), int(_MINOR))


class SlotInfo(NamedTuple):
    """Immutable values (a NamedTuple: a frozen dataclass costs more to define at start-up)."""

    description: str
    manufacturer: str
    flags: int
    hardware_version: tuple[int, int]
    firmware_version: tuple[int, int]


class TokenInfo(NamedTuple):
    label: bytes
    manufacturer: str
    model: str
    serial: str
    flags: int
    max_sessions: int
    sessions: int
    max_rw_sessions: int
    rw_sessions: int
    max_pin_len: int
    min_pin_len: int
    memory: int
    hardware_version: tuple[int, int]
    firmware_version: tuple[int, int]
    utc_time: str


def slot_info(slot: "Slot") -> SlotInfo:
    return SlotInfo(
        description=slot.cfg.description,
        manufacturer=MANUFACTURER,
        flags=CKF_TOKEN_PRESENT,
        hardware_version=VERSION,
        firmware_version=VERSION,
    )


def _pin_flags(failures: int, limit: int, low: int, final: int, locked: int) -> int:
    """COUNT_LOW after a failure, FINAL_TRY when one try is left, LOCKED at the limit."""
    if failures >= limit:
        return locked
    flags = low if failures else 0
    if failures and failures == limit - 1:
        flags |= final
    return flags


def token_info(module: "Module", slot: "Slot") -> TokenInfo:
    token = slot.token
    token.refresh()
    rec = token.record
    flags = CKF_RNG | CKF_LOGIN_REQUIRED
    if token.initialized:
        flags |= CKF_TOKEN_INITIALIZED
        limit = token.cfg.max_pin_failures
        flags |= _pin_flags(token.failures(CKU_SO), limit, CKF_SO_PIN_COUNT_LOW,
                            CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED)
        if rec.user_pin is not None:
            flags |= CKF_USER_PIN_INITIALIZED
            flags |= _pin_flags(token.failures(CKU_USER), limit, CKF_USER_PIN_COUNT_LOW,
                                CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED)
    sessions = module.sessions_of(token)
    return TokenInfo(
        label=rec.label if token.initialized else b"",
        manufacturer=MANUFACTURER,
        model=slot.cfg.backend,
        serial=rec.serial if token.initialized else "",
        flags=flags,
        max_sessions=CK_EFFECTIVELY_INFINITE,
        sessions=len(sessions),
        max_rw_sessions=CK_EFFECTIVELY_INFINITE,
        rw_sessions=sum(1 for s in sessions if s.rw),
        max_pin_len=token.cfg.max_pin_len,
        min_pin_len=token.cfg.min_pin_len,
        memory=CK_UNAVAILABLE_INFORMATION,
        hardware_version=VERSION,
        firmware_version=VERSION,
        utc_time="",
    )


def _backend_limits(slot: "Slot | None"):
    """The slot's default backend may narrow what we offer: an upstream HSM can do only what
    it reports (issue 6). Returns ``backend.mechanism_info`` or None (our registry as is)."""
    if slot is None:
        return None
    from .. import backends

    backend = slot.token.backends.get(backends.BY_NAME.get(slot.cfg.backend, -1))
    return None if backend is None else backend.mechanism_info


def mechanism_list(slot: "Slot | None" = None) -> list[int]:
    from ..mechanisms import registry

    limits = _backend_limits(slot)
    legacy = slot is not None and slot.cfg.legacy_mechanisms
    return [e.mechanism for e in registry.all_entries()
            if (legacy or not e.legacy) and (limits is None or limits(e) is not None)]


def mechanism_info(mechanism: int, slot: "Slot | None" = None) -> tuple[int, int, int]:
    from ..mechanisms import registry

    from .message import message_flags

    entry = registry.lookup(mechanism)
    if entry.legacy:
        registry.check_offered(entry, slot is not None and slot.cfg.legacy_mechanisms)
    limits = _backend_limits(slot)
    if limits is None:
        return entry.min_key_size, entry.max_key_size, message_flags(entry.flags)
    info = limits(entry)
    if info is None:
        raise CryptokiError(spec.CKR_MECHANISM_INVALID, f"{spec.ckm_name(mechanism)}: not offered by this slot's backend")
    return info[0], info[1], message_flags(info[2])
