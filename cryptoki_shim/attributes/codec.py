"""Typed attribute values <-> bytes.

The ABI hands us ``CK_ATTRIBUTE`` values as raw bytes and the store keeps encoded bytes;
inside the package an attribute is a typed Python value chosen by the attribute's kind
(``spec.ATTR_KIND``), see docs/architecture.md "Attribute values".

``decode``/``encode`` run on every C_GetAttributeValue / C_FindObjects / store load, so they
are table lookups plus precompiled ``struct`` objects, nothing more.

Errors (PKCS#11 3.0 section 4.1.1 "Creating objects", items 1 and 2):
unknown attribute type -> CKR_ATTRIBUTE_TYPE_INVALID; a value of the wrong length or shape ->
CKR_ATTRIBUTE_VALUE_INVALID.

``ATTR_ARRAY`` storage format (ours; the C array of CK_ATTRIBUTE is decoded by the ABI):
a concatenation of records ``type:u64 | length:u64 | value`` in native byte order, each value
encoded by its own attribute kind (so nested arrays nest). Empty dict <-> ``b""``.
"""

from __future__ import annotations

import struct
from typing import Any, Callable

from ..errors import CryptokiError
from .. import spec
from ..spec import AttrKind

__all__ = ["kind", "decode", "encode", "check_value"]

_ULONG = struct.Struct("=Q")  # CK_ULONG: 8 bytes, native order (Linux LP64)
_HEADER = struct.Struct("=QQ")  # ATTR_ARRAY record header: type, length
_ULONG_MAX = (1 << 64) - 1
_DIGITS = frozenset(b"0123456789")

#: spec.ATTR_KIND: the spec's attributes and all our vendor-defined CKA_SHIM_* (defined
#: only there, by scripts/gen_spec.py: issue 16 item 5).
_KIND: dict[int, AttrKind] = spec.ATTR_KIND


def _invalid(attr_type: int, why: str) -> CryptokiError:
    return CryptokiError(spec.CKR_ATTRIBUTE_VALUE_INVALID, f"attribute {attr_type:#x}: {why}")


def kind(attr_type: int) -> AttrKind:
    """The kind of ``attr_type``; CKR_ATTRIBUTE_TYPE_INVALID if Cryptoki (or we) do not know it."""
    try:
        return _KIND[attr_type]
    except KeyError:
        raise CryptokiError(
            spec.CKR_ATTRIBUTE_TYPE_INVALID, f"unknown attribute type {attr_type:#x}"
        ) from None


# ---------------------------------------------------------------------------- decoding


def _dec_bool(t: int, raw: bytes) -> bool:
    if len(raw) != 1:
        raise _invalid(t, f"CK_BBOOL needs 1 byte, got {len(raw)}")
    return raw[0] != 0


def _dec_ulong(t: int, raw: bytes) -> int:
    if len(raw) != 8:
        raise _invalid(t, f"CK_ULONG needs 8 bytes, got {len(raw)}")
    return _ULONG.unpack(raw)[0]


def _dec_bytes(t: int, raw: bytes) -> bytes:
    return bytes(raw)


def _dec_date(t: int, raw: bytes) -> bytes:
    raw = bytes(raw)
    if raw and (len(raw) != 8 or not _DIGITS.issuperset(raw)):
        raise _invalid(t, "CK_DATE must be empty or 8 ASCII digits YYYYMMDD")
    return raw


def _dec_mechs(t: int, raw: bytes) -> tuple[int, ...]:
    n, rest = divmod(len(raw), 8)
    if rest:
        raise _invalid(t, f"CK_MECHANISM_TYPE array length {len(raw)} not a multiple of 8")
    return struct.unpack(f"={n}Q", raw) if n else ()


def _dec_array(t: int, raw: bytes) -> dict[int, Any]:
    raw = bytes(raw)
    out: dict[int, Any] = {}
    pos, end = 0, len(raw)
    while pos < end:
        if end - pos < _HEADER.size:
            raise _invalid(t, "truncated attribute-array record")
        inner, length = _HEADER.unpack_from(raw, pos)
        pos += _HEADER.size
        if end - pos < length:
            raise _invalid(t, "attribute-array record overruns its buffer")
        out[inner] = decode(inner, raw[pos : pos + length])
        pos += length
    return out


_DECODERS: dict[AttrKind, Callable[[int, bytes], Any]] = {
    AttrKind.BOOL: _dec_bool,
    AttrKind.ULONG: _dec_ulong,
    AttrKind.BYTES: _dec_bytes,
    AttrKind.DATE: _dec_date,
    AttrKind.MECH_ARRAY: _dec_mechs,
    AttrKind.ATTR_ARRAY: _dec_array,
}


class Decoded(dict):
    """A template whose values came from ``decode`` (the ABI's ``read_template``): already
    in the normal form ``check_value`` would return, so the policy need not check them again."""

    __slots__ = ()


def decoder(attr_type: int) -> Callable[[int, bytes], Any]:
    """The decode function of ``attr_type``'s kind; CKR_ATTRIBUTE_TYPE_INVALID if unknown."""
    fn = _DECODE_BY_TYPE.get(attr_type)
    if fn is None:
        kind(attr_type)  # raises CKR_ATTRIBUTE_TYPE_INVALID
    return fn  # type: ignore[return-value]


def decode(attr_type: int, raw: bytes) -> Any:
    """Raw attribute bytes -> typed value (see the module docstring for the kinds)."""
    fn = _DECODE_BY_TYPE.get(attr_type)
    if fn is None:
        kind(attr_type)  # raises CKR_ATTRIBUTE_TYPE_INVALID
    return fn(attr_type, raw)  # type: ignore[misc]


# ---------------------------------------------------------------------------- encoding


def _enc_bool(t: int, v: Any) -> bytes:
    if v is True:
        return b"\x01"
    if v is False:
        return b"\x00"
    raise _invalid(t, f"expected bool, got {type(v).__name__}")


def _enc_ulong(t: int, v: Any) -> bytes:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _invalid(t, f"expected int, got {type(v).__name__}")
    if not 0 <= v <= _ULONG_MAX:
        raise _invalid(t, "CK_ULONG out of range")
    return _ULONG.pack(v)


def _enc_bytes(t: int, v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise _invalid(t, f"expected bytes, got {type(v).__name__}")


def _enc_date(t: int, v: Any) -> bytes:
    return _dec_date(t, _enc_bytes(t, v))


def _enc_mechs(t: int, v: Any) -> bytes:
    if not isinstance(v, (tuple, list)):
        raise _invalid(t, f"expected tuple of mechanism types, got {type(v).__name__}")
    for m in v:
        if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= _ULONG_MAX:
            raise _invalid(t, "mechanism types must be CK_ULONG ints")
    return struct.pack(f"={len(v)}Q", *v)


def _enc_array(t: int, v: Any) -> bytes:
    if not isinstance(v, dict):
        raise _invalid(t, f"expected dict of attributes, got {type(v).__name__}")
    parts: list[bytes] = []
    for inner, value in v.items():
        body = encode(inner, value)
        parts.append(_HEADER.pack(inner, len(body)))
        parts.append(body)
    return b"".join(parts)


_ENCODERS: dict[AttrKind, Callable[[int, Any], bytes]] = {
    AttrKind.BOOL: _enc_bool,
    AttrKind.ULONG: _enc_ulong,
    AttrKind.BYTES: _enc_bytes,
    AttrKind.DATE: _enc_date,
    AttrKind.MECH_ARRAY: _enc_mechs,
    AttrKind.ATTR_ARRAY: _enc_array,
}


def encode(attr_type: int, value: Any) -> bytes:
    """Typed value -> bytes (the C encoding for scalar kinds, our storage format for arrays)."""
    fn = _ENCODE_BY_TYPE.get(attr_type)
    if fn is None:
        kind(attr_type)  # raises CKR_ATTRIBUTE_TYPE_INVALID
    return fn(attr_type, value)  # type: ignore[misc]


_NORMALISE: dict[AttrKind, Callable[[int, Any], Any]] = {
    AttrKind.BOOL: lambda t, v: v if v is True or v is False else _enc_bool(t, v),
    AttrKind.ULONG: lambda t, v: v if type(v) is int and 0 <= v <= _ULONG_MAX else (_enc_ulong(t, v), v)[1],
    AttrKind.BYTES: lambda t, v: v if type(v) is bytes else _enc_bytes(t, v),
    AttrKind.DATE: _enc_date,
    AttrKind.MECH_ARRAY: lambda t, v: tuple(_dec_mechs(t, _enc_mechs(t, v))),
    AttrKind.ATTR_ARRAY: lambda t, v: {k: check_value(k, x) for k, x in _array_items(t, v)},
}


def _array_items(t: int, v: Any):
    if not isinstance(v, dict):
        raise _invalid(t, f"expected dict of attributes, got {type(v).__name__}")
    return v.items()


def check_value(attr_type: int, value: Any) -> Any:
    """Validate a typed value against its kind and return it normalised (bytes, tuple).

    Used by the policy on templates that arrive already decoded (from the ABI or from Python
    callers): unknown type -> CKR_ATTRIBUTE_TYPE_INVALID, wrong shape -> CKR_ATTRIBUTE_VALUE_INVALID.
    """
    fn = _NORMALISE_BY_TYPE.get(attr_type)
    if fn is None:
        kind(attr_type)  # raises CKR_ATTRIBUTE_TYPE_INVALID
    return fn(attr_type, value)  # type: ignore[misc]


# Per attribute type, the function of its kind: decode/encode/check_value run for every
# attribute of every template, object load and search, and a lookup keyed by the AttrKind
# enum costs a Python-level __hash__ each time (in CPython 3.11); these are plain int keys.
_DECODE_BY_TYPE: dict[int, Callable[[int, bytes], Any]] = {}
_ENCODE_BY_TYPE: dict[int, Callable[[int, Any], bytes]] = {}
_NORMALISE_BY_TYPE: dict[int, Callable[[int, Any], Any]] = {}


# ---------------------------------------------------------------------------- big integers

#: The attributes whose value is a PKCS#11 "Big integer" (unsigned, big-endian; base spec
#: §2.1 "Big integer": a string of bytes of any length): C lays them out as BYTES, and the
#: codec gives them one normal form, without leading zero bytes but at least one byte, so
#: that ``00 01 00 01`` and ``01 00 01`` are the same CKA_PUBLIC_EXPONENT in templates,
#: stored objects, C_GetAttributeValue and C_FindObjects (issue 23 item 6). Not here:
#: CKA_VALUE, a big integer only for DSA/DH/EC private keys and an octet string elsewhere
#: (its normal form would depend on the object, not on the type).
#: Plain ints (the CKA enum is built on first use, not at C_Initialize: spec.py).
BIG_INTEGERS: frozenset[int] = frozenset({
    0x120, 0x122, 0x123,  # CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT
    0x124, 0x125, 0x126, 0x127, 0x128,  # CKA_PRIME_1/2, CKA_EXPONENT_1/2, CKA_COEFFICIENT
    0x130, 0x131, 0x132,  # CKA_PRIME, CKA_SUBPRIME, CKA_BASE
})


#: Key types whose CKA_VALUE is a big integer (CKK_DSA, CKK_DH: y or x): their material gets
#: the normal form below where it enters (mechanisms/ffc.py), and a search compares a value
#: given for it in that form (core/objects.py); the codec alone cannot tell (see above).
BIG_INTEGER_VALUE_KEY_TYPES: frozenset[int] = frozenset({0x1, 0x2})


def big_integer(raw: bytes) -> bytes:
    """The normal form of a big integer given as bytes (for values only their object types)."""
    return _big_integer(bytes(raw))


def _big_integer(raw: bytes) -> bytes:
    """The normal form of a big integer: leading zero bytes stripped, one byte kept (an
    empty value stays empty: the policy treats it as absent)."""
    if raw[:1] != b"\0":
        return raw
    return raw.lstrip(b"\0") or b"\0"


def _dec_big(t: int, raw: bytes) -> bytes:
    return _big_integer(bytes(raw))


def _enc_big(t: int, v: Any) -> bytes:
    return _big_integer(_enc_bytes(t, v))


def _index(kinds: dict[int, AttrKind]) -> None:
    for t, k in kinds.items():
        _DECODE_BY_TYPE[t] = _DECODERS[k]
        _ENCODE_BY_TYPE[t] = _ENCODERS[k]
        _NORMALISE_BY_TYPE[t] = _NORMALISE[k]
    for t in BIG_INTEGERS:
        assert kinds[t] is AttrKind.BYTES, t
        _DECODE_BY_TYPE[t] = _dec_big
        _ENCODE_BY_TYPE[t] = _NORMALISE_BY_TYPE[t] = _enc_big


_index(_KIND)
