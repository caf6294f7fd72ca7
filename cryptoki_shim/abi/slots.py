"""Slot and token management (§5.5): slot lists, infos, mechanisms, token and PIN set-up."""

from __future__ import annotations

from typing import Any

from .. import spec
from ..core import info as core_info
from ..core.module import MODULE
from ..errors import CryptokiError
from .. import runtime
from . import limits
from .entry import entry
from .marshal import deliver_ulongs, fill_text, read_optional_buffer, require


@entry("C_GetSlotList")
def C_GetSlotList(token_present: int, p_slot_list: Any, p_count: Any) -> None:
    deliver_ulongs(p_slot_list, p_count, MODULE.slot_ids())


@entry("C_GetSlotInfo")
def C_GetSlotInfo(slot_id: int, p_info: Any) -> None:
    slot = MODULE.slot(slot_id)
    require(p_info, "CK_SLOT_INFO pointer")
    info = core_info.slot_info(slot)
    fill_text(p_info.slotDescription, info.description)
    fill_text(p_info.manufacturerID, info.manufacturer)
    p_info.flags = info.flags
    p_info.hardwareVersion.major, p_info.hardwareVersion.minor = info.hardware_version
    p_info.firmwareVersion.major, p_info.firmwareVersion.minor = info.firmware_version


@entry("C_GetTokenInfo")
def C_GetTokenInfo(slot_id: int, p_info: Any) -> None:
    slot = MODULE.slot(slot_id)
    require(p_info, "CK_TOKEN_INFO pointer")
    t = core_info.token_info(MODULE, slot)
    fill_text(p_info.label, t.label)
    fill_text(p_info.manufacturerID, t.manufacturer)
    fill_text(p_info.model, t.model)
    fill_text(p_info.serialNumber, t.serial)
    p_info.flags = t.flags
    p_info.ulMaxSessionCount = t.max_sessions
    p_info.ulSessionCount = t.sessions
    p_info.ulMaxRwSessionCount = t.max_rw_sessions
    p_info.ulRwSessionCount = t.rw_sessions
    p_info.ulMaxPinLen = t.max_pin_len
    p_info.ulMinPinLen = t.min_pin_len
    p_info.ulTotalPublicMemory = t.memory
    p_info.ulFreePublicMemory = t.memory
    p_info.ulTotalPrivateMemory = t.memory
    p_info.ulFreePrivateMemory = t.memory
    p_info.hardwareVersion.major, p_info.hardwareVersion.minor = t.hardware_version
    p_info.firmwareVersion.major, p_info.firmwareVersion.minor = t.firmware_version
    fill_text(p_info.utcTime, t.utc_time)


@entry("C_GetMechanismList")
def C_GetMechanismList(slot_id: int, p_list: Any, p_count: Any) -> None:
    slot = MODULE.slot(slot_id)
    deliver_ulongs(p_list, p_count, core_info.mechanism_list(slot))


@entry("C_GetMechanismInfo")
def C_GetMechanismInfo(slot_id: int, mechanism: int, p_info: Any) -> None:
    """Overwrites the caller's struct (SoftHSM2 ORs flags into it)."""
    slot = MODULE.slot(slot_id)
    require(p_info, "CK_MECHANISM_INFO pointer")
    lo, hi, flags = core_info.mechanism_info(mechanism, slot)
    p_info.ulMinKeySize = lo
    p_info.ulMaxKeySize = hi
    p_info.flags = flags


@entry("C_WaitForSlotEvent")
def C_WaitForSlotEvent(flags: int, p_slot: Any, p_reserved: Any) -> None:
    """Our slots never change: nothing to wait for (blocking would hang the caller forever)."""
    MODULE.require()
    if p_reserved != runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "pReserved must be NULL")
    if flags & spec.CKF_DONT_BLOCK:
        raise CryptokiError(spec.CKR_NO_EVENT)
    raise CryptokiError(spec.CKR_FUNCTION_NOT_SUPPORTED, "blocking wait: slots never change")


@entry("C_InitToken")
def C_InitToken(slot_id: int, p_pin: Any, pin_len: int, p_label: Any) -> None:
    slot = MODULE.slot(slot_id)
    require(p_label, "label")
    label = runtime.ffi.buffer(p_label, 32)[:]  # a fixed-size field (CK_UTF8CHAR[32]): no length to trust
    # The spec's label is 32 blank-padded bytes; some clients (PyKCS11) pass a NUL-terminated
    # C string instead: what follows the NUL is not theirs, so the label ends there.
    label = label.split(b"\0", 1)[0].ljust(32, b" ")
    try:
        label.decode("utf-8")
    except UnicodeDecodeError:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "label is not UTF-8") from None
    MODULE.init_token(slot_id, read_optional_buffer(p_pin, pin_len, limits.pin(slot.token.cfg.max_pin_len)), label)


@entry("C_InitPIN")
def C_InitPIN(h_session: int, p_pin: Any, pin_len: int) -> None:
    session = MODULE.sessions[h_session]
    MODULE.init_pin(session, read_optional_buffer(p_pin, pin_len, limits.pin(session.token.cfg.max_pin_len)))


@entry("C_SetPIN")
def C_SetPIN(h_session: int, p_old: Any, old_len: int, p_new: Any, new_len: int) -> None:
    session = MODULE.sessions[h_session]
    limit = limits.pin(session.token.cfg.max_pin_len)
    MODULE.set_pin(session, read_optional_buffer(p_old, old_len, limit), read_optional_buffer(p_new, new_len, limit))
