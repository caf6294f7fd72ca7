"""Objects as the core keeps them in memory, and the search over them.

An ``Object`` is what a handle names: its typed attributes (sensitive ones decrypted once
the token key is unlocked), where it lives (token store row or session), and a ``cache``
that mechanisms use to keep a parsed key (it is also the ``KeyView`` a mechanism sees).
Handles are process-wide, never reused, and stay valid for the life of the object in this
process (a token object keeps its handle across reloads from the store).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Iterable

from .. import spec
from ..attributes import codec
from ..spec_ints import CKA_KEY_TYPE, CKA_PRIVATE, CKA_TOKEN, CKA_VALUE


_handles = itertools.count(1)


def new_handle() -> int:
    """A fresh object handle (never 0 = CK_INVALID_HANDLE, never reused in this process)."""
    return next(_handles)


@dataclass(eq=False, slots=True)  # slots: one per key and object, made on every create
class Object:
    handle: int
    attrs: dict[int, Any]
    unique_id: str
    oid: int | None = None            # store row id (token objects)
    session: int | None = None        # owning session handle (session objects)
    locked: frozenset[int] = frozenset()  # sealed attributes not decrypted (token key not unlocked)
    cache: dict = field(default_factory=dict)
    stored: Any = None                # the store's record as loaded (to detect unchanged rows)
    supplied: bool = False            # a session object whose value the caller gave (C_CreateObject,
                                      # or derived only from such): CKA_PRIVATE defaults FALSE

    @property
    def is_token(self) -> bool:
        return self.oid is not None or self.attrs.get(CKA_TOKEN, False) is True

    @property
    def is_private(self) -> bool:
        return self.attrs.get(CKA_PRIVATE, False) is True

    def matches(self, template: Iterable[tuple[int, Any]], readable: Any) -> bool:
        """True when every (type, value) of a search template equals ours.

        An attribute we may not reveal never matches (a search must not become an oracle
        for a sensitive value).
        """
        attrs = self.attrs
        for atype, value in template:
            if atype not in attrs or attrs[atype] != value and not self._same_number(atype, value):
                return False
            if atype in self.locked or not readable(attrs, atype):
                return False
        return True

    def _same_number(self, atype: int, value: Any) -> bool:
        """CKA_VALUE of a DSA/DH key is a big integer: ``00 01`` is ``01`` (issue 23 item 6).
        Asked only when the bytes differ, so other searches pay nothing."""
        return (atype == CKA_VALUE and self.attrs.get(CKA_KEY_TYPE) in codec.BIG_INTEGER_VALUE_KEY_TYPES
                and isinstance(value, bytes) and codec.big_integer(value) == self.attrs[atype])


#: Attributes searches name most (pkcs11-tool, OpenSSL, NSS look keys up by these).
INDEXED = frozenset(int(t) for t in (spec.CKA_CLASS, spec.CKA_LABEL, spec.CKA_ID, spec.CKA_KEY_TYPE,
                                     spec.CKA_UNIQUE_ID, spec.CKA_CERTIFICATE_TYPE, spec.CKA_SUBJECT))


class ObjectIndex:
    """(attribute, value) -> handles, for the token objects: C_FindObjectsInit looks at the
    candidates of the most selective indexed attribute of its template instead of at every
    object (a search among thousands of keys stays proportional to what it finds)."""

    def __init__(self) -> None:
        self._map: dict[tuple[int, Any], set[int]] = {}

    def rebuild(self, objects: Iterable[Object]) -> None:
        self._map = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: Object) -> None:
        for atype in INDEXED:
            value = obj.attrs.get(atype)
            if value is not None and atype not in obj.locked:
                self._map.setdefault((atype, value), set()).add(obj.handle)

    def remove(self, obj: Object) -> None:
        for atype in INDEXED:
            value = obj.attrs.get(atype)
            if value is not None:
                handles = self._map.get((atype, value))
                if handles is not None:
                    handles.discard(obj.handle)
                    if not handles:
                        del self._map[(atype, value)]

    def candidates(self, template: Iterable[tuple[int, Any]]) -> set[int] | None:
        """The smallest candidate set among the template's indexed attributes (None: no
        indexed attribute, scan everything)."""
        best: set[int] | None = None
        for atype, value in template:
            if atype in INDEXED:
                try:
                    handles = self._map.get((atype, value), _EMPTY)
                except TypeError:  # an unhashable value cannot be indexed: it matches by scan
                    continue
                if best is None or len(handles) < len(best):
                    best = handles
        return best


_EMPTY: set[int] = set()
