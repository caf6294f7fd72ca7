"""Object management (§5.7): create, copy, destroy, size, attributes, search."""

from __future__ import annotations

from typing import Any

from .. import spec
from ..core.module import MODULE
from ..errors import CryptokiError
from . import runtime
from .entry import entry
from .marshal import read_search_template, read_template, require, write_attributes


@entry("C_CreateObject")
def C_CreateObject(h_session: int, p_template: Any, count: int, ph_object: Any) -> None:
    session = MODULE.session(h_session)
    require(ph_object, "object handle pointer")
    template = read_template(p_template, count)
    with session.lock:
        ph_object[0] = session.create_object(template)


@entry("C_CopyObject")
def C_CopyObject(h_session: int, h_object: int, p_template: Any, count: int, ph_new: Any) -> None:
    session = MODULE.session(h_session)
    require(ph_new, "object handle pointer")
    template = read_template(p_template, count)
    with session.lock:
        ph_new[0] = session.copy_object(h_object, template)


@entry("C_DestroyObject")
def C_DestroyObject(h_session: int, h_object: int) -> None:
    session = MODULE.session(h_session)
    with session.lock:
        session.destroy_object(h_object)


@entry("C_GetObjectSize")
def C_GetObjectSize(h_session: int, h_object: int, p_size: Any) -> None:
    session = MODULE.session(h_session)
    require(p_size, "size pointer")
    p_size[0] = session.object_size(h_object)


@entry("C_GetAttributeValue")
def C_GetAttributeValue(h_session: int, h_object: int, p_template: Any, count: int) -> int:
    """Every attribute is answered; the call returns the first per-attribute error (§5.7.5)."""
    session = MODULE.session(h_session)
    obj = session.object(h_object)
    if count and p_template == runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL template")
    return write_attributes(p_template, count, lambda t: session.attribute_value(obj, t))


@entry("C_SetAttributeValue")
def C_SetAttributeValue(h_session: int, h_object: int, p_template: Any, count: int) -> None:
    session = MODULE.session(h_session)
    changes = read_template(p_template, count)
    with session.lock:
        session.set_attributes(h_object, changes)


@entry("C_FindObjectsInit")
def C_FindObjectsInit(h_session: int, p_template: Any, count: int) -> None:
    session = MODULE.session(h_session)
    template = read_search_template(p_template, count)
    with session.lock:
        session.find_init(template)


@entry("C_FindObjects")
def C_FindObjects(h_session: int, ph_objects: Any, max_count: int, p_count: Any) -> None:
    session = MODULE.session(h_session)
    require(p_count, "count pointer")
    if max_count and ph_objects == runtime.NULL:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "NULL handle array")
    with session.lock:
        handles = session.find(max_count)
    for i, h in enumerate(handles):
        ph_objects[i] = h
    p_count[0] = len(handles)


@entry("C_FindObjectsFinal")
def C_FindObjectsFinal(h_session: int) -> None:
    session = MODULE.session(h_session)
    with session.lock:
        session.find_final()
