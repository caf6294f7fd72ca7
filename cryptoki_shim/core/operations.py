"""An active operation of a session (one per kind), as the session keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .objects import Object

ONESHOT, UPDATE, FINAL = "oneshot", "update", "final"


@dataclass
class Operation:
    kind: str                          # "sign", "verify", "encrypt", "decrypt", "digest", "find" ...
    ctx: Any                           # the mechanism context (or the find cursor)
    mechanism: int = 0
    key: Object | None = None
    mode: str | None = None            # ONESHOT or UPDATE once the caller chose
    pending: tuple[str, bytes, bytes] | None = None
    needs_context_login: bool = False  # CKA_ALWAYS_AUTHENTICATE: C_Login(CKU_CONTEXT_SPECIFIC) first
    extra: dict = field(default_factory=dict)
