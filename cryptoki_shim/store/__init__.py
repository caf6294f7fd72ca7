"""Persistent store (SQLAlchemy; SQLite by default) and the at-rest crypto of its secrets.

The core persists tokens, PIN records and objects through `Store`; sensitive attribute
values reach the store already sealed with `crypto.seal`. The store never imports the core.
"""

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
from .store import Store

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
