"""The store's schema version and the check of a stored one (no SQLAlchemy: the SQLite
fast path reads the version with plain SQL; `schema.py` re-exports both)."""

from __future__ import annotations

from ..errors import CryptokiError
from ..spec import CKR_DEVICE_ERROR

CURRENT_VERSION = 2


def check_supported(version: int) -> None:
    """Refuse a store written by a newer release: we could corrupt what we do not know."""
    if version > CURRENT_VERSION:
        raise CryptokiError(
            CKR_DEVICE_ERROR,
            f"store schema version {version} is newer than supported {CURRENT_VERSION}",
        )
