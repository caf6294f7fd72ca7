"""Attribute codec (typed value <-> bytes) and the declarative attribute policy.

``codec``: ``kind``, ``decode``, ``encode``, ``check_value``.
``tables``: the spec's per-class attribute tables (``Attr(type, flags, default)``).
``policy``: the one validator over those tables: ``build_object``, ``check_set``,
``readable``, ``has_attribute``, ``sealed_types``.
"""

from .codec import check_value, decode, encode, kind
from .policy import (Origin, build_object, build_profile, check_set, has_attribute, readable,
                     schema_of, sealed_types)

__all__ = ["kind", "decode", "encode", "check_value", "Origin", "build_object", "build_profile",
           "check_set", "readable", "has_attribute", "sealed_types", "schema_of"]
