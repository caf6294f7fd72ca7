"""Persistent store (SQLAlchemy; SQLite by default) and the at-rest crypto of its secrets.

The core persists tokens, PIN records and objects through `Store`; sensitive attribute
values reach the store already sealed with `crypto.seal`. The store never imports the core.
"""

from typing import TYPE_CHECKING, Any

from .crypto import (
    SealError,
    attribute_aad,
    make_pin_record,
    new_token_key,
    open_pin_record,
    seal,
    unseal,
)
from .records import CKU_SO, CKU_USER, ObjectRecord, PinRecord, TokenRecord

if TYPE_CHECKING:
    from .store import Store


def __getattr__(name: str) -> Any:
    """``Store`` is imported on first use: SQLAlchemy is most of the library's import time,
    and a client that only lists slots never needs it (PEP 562 module attribute)."""
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CKU_SO",
    "CKU_USER",
    "ObjectRecord",
    "PinRecord",
    "SealError",
    "Store",
    "TokenRecord",
    "attribute_aad",
    "make_pin_record",
    "new_token_key",
    "open_pin_record",
    "seal",
    "unseal",
]
