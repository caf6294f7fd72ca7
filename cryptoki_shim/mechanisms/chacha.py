"""ChaCha20 keys and ChaCha20-Poly1305 (RFC 8439) on pyca/cryptography.

Spec: PKCS#11 3.0 §2.58 (CKK_CHACHA20, CKM_CHACHA20_KEY_GEN: 256-bit keys), §2.61
(CKM_CHACHA20_POLY1305 with CK_SALSA20_CHACHA20_POLY1305_PARAMS; the 16-byte tag is appended
to the ciphertext in C_Encrypt/C_Decrypt). Only the IETF variant (96-bit nonce) is offered:
pyca has neither the original 64-bit-nonce construction nor XChaCha20 (a 64- or 192-bit nonce
is CKR_MECHANISM_PARAM_INVALID). The spec gives ``ulNonceLen`` in bits; 12 is taken as bytes
too (clients that read it like every other ``ul*Len``), since 12 bits cannot be a nonce.

Encryption streams: ChaCha20 from block 1 over the data, Poly1305 keyed from block 0 over
AAD, ciphertext and the lengths (RFC 8439 §2.8), so multi-part and message-based calls
release ciphertext as they go; one-shot calls use pyca's AEAD. Decryption releases nothing
before the tag is checked (``aes.BufferedContext``, as for GCM).
"""

from __future__ import annotations

import struct
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.poly1305 import Poly1305

from ..errors import CryptokiError
from ..spec import (
    CKA_VALUE_LEN,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT,
    CKK_CHACHA20,
    CKM_CHACHA20_KEY_GEN,
    CKM_CHACHA20_POLY1305,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
)
from . import generic
from .aes import BufferedContext
from .params import ChachaPolyParams
from .registry import EntryData, Family, KeyGenData, KeyView, MechanismEntry, register

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: ulNonceLen values meaning the 96-bit IETF nonce: 96 bits (the spec's unit) or 12 bytes.
IETF_NONCE_LENGTHS = frozenset({96, NONCE_BYTES})


def nonce_bytes(length: int) -> int:
    """The byte length of a nonce whose ulNonceLen is ``length`` (see the module doc)."""
    if length not in IETF_NONCE_LENGTHS:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID,
                            f"ChaCha20-Poly1305 nonce of ulNonceLen {length}: only the 96-bit IETF nonce")
    return NONCE_BYTES


def chacha_key(key: KeyView) -> bytes:
    value = generic.secret_value(key)
    if len(value) != KEY_BYTES:
        raise CryptokiError(CKR_KEY_SIZE_RANGE, f"ChaCha20 key of {len(value)} bytes")
    return value


def _pad16(n: int) -> bytes:
    return bytes(-n % 16)


class ChachaPolyEncrypt:
    """RFC 8439 §2.8 AEAD encryption, streaming: update returns ciphertext, final the tag."""

    __slots__ = ("_key", "_nonce", "_aad", "_stream", "_mac", "_length")

    def __init__(self, key: bytes, nonce: bytes, aad: bytes) -> None:
        self._key, self._nonce, self._aad = key, nonce, aad
        # pyca's ChaCha20 nonce is the 32-bit little-endian block counter || the 96-bit nonce
        self._stream = Cipher(algorithms.ChaCha20(key, bytes(4) + nonce), None).encryptor()
        self._mac = Poly1305(self._stream.update(bytes(64))[:32])  # block 0 keys Poly1305
        self._mac.update(aad + _pad16(len(aad)))
        self._length = 0

    def update(self, data: bytes) -> bytes:
        out = self._stream.update(data)
        self._mac.update(out)
        self._length += len(out)
        return out

    def final(self) -> bytes:
        self._mac.update(_pad16(self._length) + struct.pack("<QQ", len(self._aad), self._length))
        return self._mac.finalize()

    def oneshot(self, data: bytes) -> bytes:
        return ChaCha20Poly1305(self._key).encrypt(self._nonce, data, self._aad or None)

    def length_hint(self, step: str, data_len: int) -> int | None:
        if step == "update":
            return data_len
        if step == "final":
            return TAG_BYTES
        return data_len + TAG_BYTES


def _decryptor(key: bytes, nonce: bytes, aad: bytes) -> BufferedContext:
    aead = ChaCha20Poly1305(key)

    def open_(data: bytes) -> bytes:
        if len(data) < TAG_BYTES:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "shorter than the Poly1305 tag")
        try:
            return aead.decrypt(nonce, data, aad or None)
        except InvalidTag:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "Poly1305 tag mismatch") from None

    return BufferedContext(open_, lambda n: max(n - TAG_BYTES, 0))


def _params(param: Any) -> ChachaPolyParams:
    if param.__class__ is not ChachaPolyParams:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_SALSA20_CHACHA20_POLY1305_PARAMS required")
    if len(param.nonce) != NONCE_BYTES:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "ChaCha20-Poly1305 needs a 96-bit nonce")
    return param


class ChachaFamily(Family):
    """CKM_CHACHA20_KEY_GEN and CKM_CHACHA20_POLY1305."""

    __slots__ = ()

    def generate_key(self, entry: MechanismEntry, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        """The key is 256 bits: CKA_VALUE_LEN may be left out (§2.58 "generates ChaCha20 keys
        of 256 bits"); any other length is refused by the generic generator."""
        if CKA_VALUE_LEN not in template:
            template = {**template, CKA_VALUE_LEN: KEY_BYTES}
        return generic.SECRET_KEY_GEN.generate_key(entry, param, template)

    def encrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> ChachaPolyEncrypt:
        p = _params(param)
        return ChachaPolyEncrypt(chacha_key(key), p.nonce, p.aad)

    def decrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> BufferedContext:
        p = _params(param)
        return _decryptor(chacha_key(key), p.nonce, p.aad)


CHACHA = ChachaFamily()

register(MechanismEntry(CKM_CHACHA20_KEY_GEN, CKF_GENERATE, KEY_BYTES, KEY_BYTES, CHACHA,
                        data=KeyGenData(CKK_CHACHA20)))
register(MechanismEntry(CKM_CHACHA20_POLY1305, CKF_ENCRYPT | CKF_DECRYPT | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT,
                        KEY_BYTES, KEY_BYTES, CHACHA, frozenset({CKK_CHACHA20}), param=ChachaPolyParams,
                        data=EntryData()))
