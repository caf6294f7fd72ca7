"""The software backend: key material in the object's (decrypted) attributes, operations by
the mechanism families on pyca/cryptography.

It adds nothing of its own but the choice of ``rsa_implicit_rejection`` (a slot option that
picks another CKM_RSA_PKCS decryptor): the families already work on ``KeyView`` objects, and every
``Backend`` default is the software behaviour. It exists so the core dispatches every key
use the same way, whichever backend holds the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import spec
from .base import Backend

if TYPE_CHECKING:
    from ..mechanisms.registry import ContextMaker, MechanismEntry


class SoftwareBackend(Backend):
    backend_id = spec.SHIM_BACKEND_SOFTWARE

    def __init__(self, slot_cfg: object = None) -> None:
        self.slot_cfg = slot_cfg

    def context_maker(self, kind: str, entry: MechanismEntry) -> ContextMaker:
        """The family's own maker (its ``*_init``, or the more direct callable it prefers:
        ``Family.context_maker``): the core keeps it per key and mechanism, so a repeated
        C_*Init passes through neither this backend nor the family's dispatch. A slot with
        ``rsa_implicit_rejection = false`` decrypts CKM_RSA_PKCS with explicit rejection
        (``mechanisms/rsa_rejection.py``)."""
        if (kind == "decrypt" and entry.mechanism == spec.CKM_RSA_PKCS
                and getattr(self.slot_cfg, "rsa_implicit_rejection", True) is False):
            from ..mechanisms import rsa_rejection

            return rsa_rejection.decrypt_init
        return entry.family.context_maker(kind, entry)
