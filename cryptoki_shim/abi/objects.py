"""Object management (§5.7): create, copy, destroy, size, attributes, search.

Every entry here is attached ``direct`` (no wrapper frame; cffi's onerror maps an exception
exactly as the wrapper does), so each returns its CKR itself: a key generation benchmark
is one C_GenerateKeyPair and two C_DestroyObject, and the per-call floor is a good part of
a C_DestroyObject (issue #9).
"""

from __future__ import annotations

from typing import Any

from .. import spec
from ..core.module import MODULE
from ..errors import CryptokiError
from .. import runtime
from .entry import entry
from .marshal import read_search_template, read_template, require, write_attributes

CKR_OK = 0


@entry("C_CreateObject", direct=True)
def C_CreateObject(h_session: int, p_template: Any, count: int, ph_object: Any) -> int:
    session = MODULE.sessions[h_session]
    require(ph_object, "object handle pointer")
    template = read_template(p_template, count)
    with session.lock:
        ph_object[0] = session.create_object(template)
    return CKR_OK


@entry("C_CopyObject", direct=True)
def C_CopyObject(h_session: int, h_object: int, p_template: Any, count: int, ph_new: Any) -> int:
    session = MODULE.sessions[h_session]
    require(ph_new, "object handle pointer")
    template = read_template(p_template, count)
    with session.lock:
        ph_new[0] = session.copy_object(h_object, template)
    return CKR_OK


@entry("C_DestroyObject", direct=True)
def C_DestroyObject(h_session: int, h_object: int) -> int:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.destroy_object(h_object)
    return CKR_OK


@entry("C_GetObjectSize", direct=True)
def C_GetObjectSize(h_session: int, h_object: int, p_size: Any) -> int:
    session = MODULE.sessions[h_session]
    require(p_size, "size pointer")
    p_size[0] = session.object_size(h_object)
    return CKR_OK


@entry("C_GetAttributeValue", direct=True)
def C_GetAttributeValue(h_session: int, h_object: int, p_template: Any, count: int) -> int:
    """Every attribute is answered; the call returns the first per-attribute error (§5.7.5)."""
    session = MODULE.sessions[h_session]
    obj = session.object(h_object)
    if count and p_template == runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL template")
    return write_attributes(p_template, count, lambda t: session.attribute_value(obj, t))


@entry("C_SetAttributeValue", direct=True)
def C_SetAttributeValue(h_session: int, h_object: int, p_template: Any, count: int) -> int:
    session = MODULE.sessions[h_session]
    changes = read_template(p_template, count)
    with session.lock:
        session.set_attributes(h_object, changes)
    return CKR_OK


@entry("C_FindObjectsInit", direct=True)
def C_FindObjectsInit(h_session: int, p_template: Any, count: int) -> int:
    session = MODULE.sessions[h_session]
    template = read_search_template(p_template, count)
    with session.lock:
        session.find_init(template)
    return CKR_OK


@entry("C_FindObjects", direct=True)
def C_FindObjects(h_session: int, ph_objects: Any, max_count: int, p_count: Any) -> int:
    session = MODULE.sessions[h_session]
    require(p_count, "count pointer")
    if max_count and ph_objects == runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL handle array")
    with session.lock:
        handles = session.find(max_count)
    for i, h in enumerate(handles):
        ph_objects[i] = h
    p_count[0] = len(handles)
    return CKR_OK


@entry("C_FindObjectsFinal", direct=True)
def C_FindObjectsFinal(h_session: int) -> int:
    session = MODULE.sessions[h_session]
    with session.lock:
        session.find_final()
    return CKR_OK
