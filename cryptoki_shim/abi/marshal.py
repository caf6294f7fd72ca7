"""Reading C arguments and writing results: one helper per concept.

* ``deliver`` is THE output-buffer helper (PKCS#11 3.0 §5.2, "variable-length buffers"):
  a NULL buffer asks for the length (CKR_OK); a short buffer answers CKR_BUFFER_TOO_SMALL
  with the needed length written; otherwise the bytes are copied and the length written.
  Whoever produces the output decides, given the capacity, whether to compute it
  (so an operation can keep a computed result for the caller's retry).
* ``read_buffer`` is THE input-buffer helper: every byte string read from a C pointer
  (data, PINs, parameters, attribute values) goes through it with its ``limits.Limit``, so
  a length is checked before a byte is allocated or read (issue 15, item 10).
* ``read_template`` / ``write_attributes`` convert CK_ATTRIBUTE arrays.
* ``fill_text`` writes blank-padded fixed-size CK_UTF8CHAR fields (labels, descriptions).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from .. import spec
from ..spec_ints import (
    CKR_ARGUMENTS_BAD,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_BUFFER_TOO_SMALL,
    CKR_TEMPLATE_INCONSISTENT,
    CK_UNAVAILABLE_INFORMATION,
)
from ..attributes import codec
from ..errors import BufferTooSmall, CryptokiError
from .. import runtime
from . import limits
from .limits import Limit

_DECODE_ARRAY = codec.decoder(spec.CKA_WRAP_TEMPLATE)  # the nested-template kind


class Producer(Protocol):
    """Whatever computes an output for ``deliver``: a session's operations, or ``Fixed``."""

    def produce(self, capacity: int | None, kind: str, step: str, data: bytes) -> bytes | int: ...


def deliver(p_buf: Any, p_len: Any, producer: Producer, kind: str = "", step: str = "",
            data: bytes = b"") -> None:
    """Run ``producer.produce(capacity, kind, step, data)`` and write its result by the
    buffer protocol.

    ``capacity`` is ``None`` for a NULL buffer (a length query); ``produce`` returns an
    ``int`` (the length, for a query) or the output ``bytes``; it raises ``BufferTooSmall``
    when the output does not fit (and keeps it, if it is an operation, for the retry).
    The producer object and fixed arguments (no bound method, no ``*args``) are for the
    hot callers: C_Encrypt, C_Sign, C_Digest ... pass their session.
    """
    NULL = runtime.NULL
    if p_len == NULL:
        raise CryptokiError(CKR_ARGUMENTS_BAD, "NULL length pointer")
    capacity = None if p_buf == NULL else p_len[0]
    try:
        result = producer.produce(capacity, kind, step, data)
    except BufferTooSmall as exc:
        p_len[0] = exc.needed
        raise
    if result.__class__ is int:
        p_len[0] = result
        return
    n = len(result)  # type: ignore[arg-type]  # bytes: the __class__ test above (mypy narrows on isinstance only)
    if capacity is not None and n > capacity:  # a producer that did not check
        p_len[0] = n
        raise BufferTooSmall(n)
    if n:
        runtime.ffi.memmove(p_buf, result, n)
    p_len[0] = n


class Fixed:
    """A producer for output that already exists (no state to keep)."""

    __slots__ = ("output",)

    def __init__(self, output: bytes) -> None:
        self.output = output

    def produce(self, capacity: int | None, kind: str = "", step: str = "", data: bytes = b"") -> bytes | int:
        if capacity is None:
            return len(self.output)
        if capacity < len(self.output):
            raise BufferTooSmall(len(self.output))
        return self.output


def deliver_ulongs(p_array: Any, p_count: Any, values: Sequence[int]) -> None:
    """The same protocol for CK_ULONG arrays (slot lists, mechanism lists)."""
    NULL = runtime.NULL
    if p_count == NULL:
        raise CryptokiError(CKR_ARGUMENTS_BAD, "NULL count pointer")
    n = len(values)
    if p_array == NULL:
        p_count[0] = n
        return
    if p_count[0] < n:
        p_count[0] = n
        raise BufferTooSmall(n)
    for i, v in enumerate(values):
        p_array[i] = v
    p_count[0] = n


def read_buffer(p: Any, n: int, limit: Limit, what: str = "", ffi: Any = None) -> bytes:
    """Copy ``n`` bytes from ``p``, after checking ``n`` against ``limit``.

    Over the limit -> ``limit.ckr`` (CKR_DATA_LEN_RANGE, CKR_PIN_LEN_RANGE ...), decided
    from the length alone; NULL with n > 0 -> ``limit.null_ckr``. ``ffi`` defaults to the
    embedded module's (the parameter readers pass theirs).
    """
    if n > limit.size:
        raise CryptokiError(limit.ckr, f"{what or limit.what}: length {n} over the limit of {limit.size}")
    if not n:
        return b""
    ffi = ffi or runtime.ffi
    if p == ffi.NULL:
        raise CryptokiError(limit.null_ckr, f"{what or limit.what}: NULL pointer with length {n}")
    return ffi.buffer(p, n)[:]


def read_optional_buffer(p: Any, n: int, limit: Limit) -> bytes | None:
    """``read_buffer``, but ``None`` for a NULL pointer with length 0 (a NULL PIN: the
    protected authentication path)."""
    if p == runtime.NULL and not n:
        return None
    return read_buffer(p, n, limit)


def require(p: Any, what: str = "pointer") -> None:
    if p == runtime.NULL:
        raise CryptokiError(CKR_ARGUMENTS_BAD, f"NULL {what}")


def fill_text(field: Any, text: str | bytes) -> None:
    """Write a blank-padded, not NUL-terminated CK_UTF8CHAR field (§3.2 conventions)."""
    size = runtime.ffi.sizeof(field)
    raw = text.encode("utf-8") if isinstance(text, str) else text
    raw = raw[:size]
    runtime.ffi.memmove(field, raw + b" " * (size - len(raw)), size)


# ---------------------------------------------------------------- attribute templates


def _check_template(p_template: Any, count: int, limit: Limit = limits.TEMPLATE) -> None:
    """The count against its limit first (a garbage count must not make us read GBs)."""
    if count > limit.size:
        raise CryptokiError(limit.ckr, f"{limit.what} of {count} attributes")
    if count and p_template == runtime.NULL:
        raise CryptokiError(limit.null_ckr, f"NULL {limit.what} with a non-zero count")


def require_template(p_template: Any, count: int) -> None:
    """A template's argument checks alone (count limit, NULL with a non-zero count), for the
    entries that make them before their mechanism's (issue 23 item 7)."""
    _check_template(p_template, count)


def _read_value(attr: Any, atype: int, depth: int) -> Any:
    """Decode one CK_ATTRIBUTE's value by its kind (nested templates recursively).

    Every attribute of every template passes here, so it does one decoder lookup (which
    also answers "is the type known") and reads each struct field once.
    """
    decode = codec.decoder(atype)
    n = attr.ulValueLen
    if decode is _DECODE_ARRAY:
        if depth > 0:
            raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, "nested template inside a template")
        if n % runtime.ffi.sizeof("CK_ATTRIBUTE"):
            raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"attribute {atype:#x}: length {n}")
        inner = runtime.ffi.cast("CK_ATTRIBUTE *", attr.pValue)
        return dict(read_template(inner, n // runtime.ffi.sizeof("CK_ATTRIBUTE"), depth=depth + 1))
    # over the limit: CK_UNAVAILABLE_INFORMATION included
    return decode(atype, read_buffer(attr.pValue, n, limits.ATTRIBUTE_VALUE, f"attribute {atype:#x}"))


def read_template(p_template: Any, count: int, *, depth: int = 0) -> codec.Decoded:
    """A CK_ATTRIBUTE array as ``{type: typed value}`` (a ``codec.Decoded``: the values are
    already in normal form, so the attribute policy does not check their kinds again).

    An attribute given twice with different values is CKR_TEMPLATE_INCONSISTENT (§4.1: the
    template must not contradict itself); the same value twice is accepted.
    """
    _check_template(p_template, count, limits.NESTED_TEMPLATE if depth else limits.TEMPLATE)
    out = codec.Decoded()
    buffer, null, decoder, most = runtime.ffi.buffer, runtime.NULL, codec.decoder, limits.ATTRIBUTE_VALUE.size
    for i in range(count):
        attr = p_template[i]
        atype = attr.type
        decode = decoder(atype)
        n = attr.ulValueLen
        if decode is not _DECODE_ARRAY and 0 < n <= most and (p := attr.pValue) != null:
            # the common case, as ``_read_value`` reads it (one value within its limit)
            value = decode(atype, buffer(p, n)[:])
        else:
            value = _read_value(attr, atype, depth)
        if atype in out and out[atype] != value:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, f"attribute {atype:#x} given twice")
        out[atype] = value
    return out


def read_search_template(p_template: Any, count: int) -> list[tuple[int, Any]] | None:
    """A C_FindObjectsInit template: ``None`` when it can match nothing.

    An unknown attribute type or an impossible value does not make the search fail; it
    makes it find nothing (no object has that attribute with that value).
    """
    _check_template(p_template, count)
    out: list[tuple[int, Any]] = []
    for i in range(count):
        try:
            attr = p_template[i]
            atype = attr.type
            out.append((atype, _read_value(attr, atype, 0)))
        except CryptokiError as exc:
            if exc.ckr in (CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID):
                return None
            raise
    return out


def write_attributes(p_template: Any, count: int, lookup: Callable[[int], Any]) -> int:
    """C_GetAttributeValue's per-attribute protocol (§5.7, C_GetAttributeValue).

    ``lookup(type)`` returns the typed value or raises CryptokiError with
    CKR_ATTRIBUTE_SENSITIVE / CKR_ATTRIBUTE_TYPE_INVALID. Every attribute is processed;
    the return value is CKR_OK or the first of the codes the spec lets stand for the call
    (SENSITIVE and TYPE_INVALID take precedence over BUFFER_TOO_SMALL only in the order met).
    """
    _check_template(p_template, count)
    rv = 0
    for i in range(count):
        attr = p_template[i]
        atype = int(attr.type)
        try:
            value = lookup(atype)
        except CryptokiError as exc:
            if exc.ckr not in (CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID):
                raise
            attr.ulValueLen = CK_UNAVAILABLE_INFORMATION
            rv = rv or exc.ckr
            continue
        if codec.kind(atype) is spec.AttrKind.ATTR_ARRAY:
            code = _write_nested(attr, value)
        else:
            code = _write_one(attr, codec.encode(atype, value))
        rv = rv or code
    return rv


def _write_one(attr: Any, raw: bytes) -> int:
    """One value by the per-attribute rule: NULL -> length; short -> UNAVAILABLE + too small."""
    if attr.pValue == runtime.NULL:
        attr.ulValueLen = len(raw)
        return 0
    if attr.ulValueLen < len(raw):
        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION
        return CKR_BUFFER_TOO_SMALL
    if raw:
        runtime.ffi.memmove(attr.pValue, raw, len(raw))
    attr.ulValueLen = len(raw)
    return 0


def _write_nested(attr: Any, template: dict[int, Any]) -> int:
    """An ATTR_ARRAY value (CKA_WRAP_TEMPLATE ...): the caller supplies the CK_ATTRIBUTE
    array (first asking its size); we fill each element's type and its value by the same
    per-attribute rule (a NULL element value asks for that element's length)."""
    ffi = runtime.ffi
    needed = len(template) * ffi.sizeof("CK_ATTRIBUTE")
    if attr.pValue == runtime.NULL:
        attr.ulValueLen = needed
        return 0
    if attr.ulValueLen < needed:
        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION
        return CKR_BUFFER_TOO_SMALL
    inner = ffi.cast("CK_ATTRIBUTE *", attr.pValue)
    rv = 0
    for i, (atype, value) in enumerate(template.items()):
        inner[i].type = atype
        rv = rv or _write_one(inner[i], codec.encode(atype, value))
    attr.ulValueLen = needed
    return rv
