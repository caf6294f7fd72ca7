"""Attribute codec (typed value <-> bytes) and the declarative attribute policy.

``codec``: ``kind``, ``decode``, ``encode``, ``check_value``.
``tables``: the spec's per-class attribute tables (``Attr(type, flags, default)``).
``policy``: the one validator over those tables: ``build_object``, ``check_set``,
``readable``, ``has_attribute``, ``sealed_types``.

The policy names are resolved on first use (module ``__getattr__``): the ABI needs only the
codec at C_Initialize, and importing the policy pulls in every attribute table (cold start).
"""

from typing import Any

from .codec import check_value, decode, encode, kind

_POLICY = ("Origin", "build_object", "build_profile", "check_set", "has_attribute", "readable",
           "schema_of", "sealed_types")

__all__ = ["kind", "decode", "encode", "check_value",  # and _POLICY's names:
           "Origin", "build_object", "build_profile", "check_set", "has_attribute", "readable",
           "schema_of", "sealed_types"]


def __getattr__(name: str) -> Any:
    if name in _POLICY:
        from . import policy

        return getattr(policy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
