"""KEM entries (PKCS#11 3.2 §5.18): C_EncapsulateKey, C_DecapsulateKey.

Thin readers around ``core.kem``, attached ``direct`` (no wrapper frame: each returns CKR_OK
itself; cffi's onerror maps an exception as the wrapper does): the ciphertext goes out by the one buffer protocol
(``marshal.deliver``): NULL ``pCiphertext`` -> its length, too small ->
CKR_BUFFER_TOO_SMALL with the length; only a delivered ciphertext makes a key, whose handle
is then written to ``phKey``.
"""

from __future__ import annotations

from typing import Any

from ..core import kem
from ..core.module import MODULE
from . import limits
from .crypto import _mechanism
from .entry import CKR_OK, entry
from .marshal import deliver, read_buffer, read_template, require, require_template


class _Encapsulation:
    """The producer ``deliver`` runs: the core's answer for the caller's capacity; the new
    key's handle is kept for ``phKey``."""

    __slots__ = ("session", "mech", "public", "template", "handle")

    def __init__(self, session: Any, mech: Any, public: int, template: dict[int, Any]) -> None:
        self.session, self.mech, self.public, self.template = session, mech, public, template
        self.handle: int | None = None

    def produce(self, capacity: int | None, kind: str = "", step: str = "", data: bytes = b"") -> bytes | int:
        result = kem.encapsulate_key(self.session, self.mech, self.public, self.template, capacity)
        if isinstance(result, int):
            return result
        self.handle = result.handle
        return result.ciphertext


@entry("C_EncapsulateKey", direct=True)
def C_EncapsulateKey(h_session: int, p_mechanism: Any, h_public: int, p_template: Any, count: int,
                     p_ciphertext: Any, p_ciphertext_len: Any, ph_key: Any) -> int:
    session = MODULE.sessions[h_session]
    require(p_ciphertext_len, "ciphertext length pointer")
    require(ph_key, "key handle pointer")
    require_template(p_template, count)
    mech = _mechanism(p_mechanism, kem.CKF_ENCAPSULATE)
    template = read_template(p_template, count)
    producer = _Encapsulation(session, mech, h_public, template)
    with session.lock:
        deliver(p_ciphertext, p_ciphertext_len, producer)
    if producer.handle is not None:
        ph_key[0] = producer.handle
    return CKR_OK


@entry("C_DecapsulateKey", direct=True)
def C_DecapsulateKey(h_session: int, p_mechanism: Any, h_private: int, p_template: Any, count: int,
                     p_ciphertext: Any, ciphertext_len: int, ph_key: Any) -> int:
    session = MODULE.sessions[h_session]
    require(ph_key, "key handle pointer")
    ciphertext = read_buffer(p_ciphertext, ciphertext_len, limits.WRAPPED_KEY)
    require_template(p_template, count)
    mech = _mechanism(p_mechanism, kem.CKF_DECAPSULATE)
    template = read_template(p_template, count)
    with session.lock:
        ph_key[0] = kem.decapsulate_key(session, mech, h_private, template, ciphertext)
    return CKR_OK
