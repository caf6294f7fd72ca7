"""CKM_RSA_PKCS decryption with explicit rejection: the slot option ``rsa_implicit_rejection =
false`` (docs/security.md, "RSA PKCS#1 v1.5 decryption").

By default C_Decrypt(CKM_RSA_PKCS) goes through OpenSSL, which applies *implicit rejection*
(draft-irtf-cfrg-rsa-guidance, the Marvin/Bleichenbacher counter-measure): a malformed block
decrypts to a deterministic pseudo-random message and CKR_OK, so no caller can learn whether
a chosen ciphertext was well padded. PKCS#11 3.0 §2.1.6 names CKR_ENCRYPTED_DATA_INVALID for
such a block instead, which a few clients test for. pyca/cryptography 50 offers no way to turn
OpenSSL's implicit rejection off, so this path does the raw private operation (the family's
blinded CRT, ``rsa._raw_private``) and removes the RFC 8017 §7.2.2 EME-PKCS1-v1_5 padding
itself, looking at every byte of the block whatever it finds (no early exit), and answers
CKR_ENCRYPTED_DATA_INVALID for a bad block. The answer itself is the padding oracle that
implicit rejection closes: that is what the option trades, and why it is off by default.
"""

from __future__ import annotations

from typing import Any

from ..errors import CryptokiError
from ..spec import CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE
from . import rsa
from .registry import MechanismEntry
from .signing import CipherContext


def eme_pkcs1_decode(em: bytes) -> bytes | None:
    """RFC 8017 §7.2.2 step 3: M of ``00 02 PS 00 M`` (PS at least 8 non-zero bytes), else
    None. Every byte is examined and the flags are combined without branching on the data
    until the end (Python gives no constant-time guarantee; the timing shows little more than
    the result, which this mode answers anyway)."""
    bad = em[0] | (em[1] ^ 0x02)
    separator = 0
    found = 0
    for i in range(2, len(em)):
        zero = int(em[i] == 0)
        first = zero & (1 - found)
        separator |= i * first
        found |= zero
    bad |= 1 - found
    bad |= int(separator < 10)  # PS shorter than 8 bytes
    if bad:
        return None
    return em[separator + 1:]


def decrypt_init(entry: MechanismEntry[Any], param: Any, view: Any) -> CipherContext:
    """A CKM_RSA_PKCS decrypt context that answers CKR_ENCRYPTED_DATA_INVALID for a bad block."""
    numbers = rsa._numbers(view)
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8

    def decrypt(data: bytes) -> bytes:
        if len(data) != k:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not k bytes")
        c = int.from_bytes(data, "big")
        if c >= n:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "ciphertext not below the modulus")
        message = eme_pkcs1_decode(rsa._raw_private(numbers, c).to_bytes(k, "big"))
        if message is None:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "bad PKCS#1 v1.5 block")
        return message

    return CipherContext(decrypt, k)
