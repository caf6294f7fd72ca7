"""AES on pyca/cryptography: key generation, ECB/CBC/CBC-PAD/CTR/GCM/CCM encryption and the
AES MACs (CMAC, CBC-MAC).

Spec: PKCS#11 3.0 §2.10 (AES: KEY_GEN, ECB, CBC, CBC_PAD, MAC, MAC_GENERAL), §2.11
(CKM_AES_CTR, CK_AES_CTR_PARAMS), §2.12.4 (CKM_AES_CCM, CK_CCM_PARAMS), §2.13
(CKM_AES_GCM, CK_GCM_PARAMS), §2.14 (CMAC).
Key sizes are in bytes (16/24/32). Wrapping with these mechanisms encrypts the key bytes
with the same contexts (``wrapping.EncryptionWrap``; ``wrap.py`` has the AES key-wrap mechanisms).

Every context is one operation: it holds a pyca cipher context and no reference to the
session. ``length_hint`` answers a NULL-buffer length query without doing the work.
"""

from __future__ import annotations

import functools

import hmac as _hmac
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from ..errors import CryptokiError
from ..spec import (
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT,
    CKF_SIGN,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_WRAP,
    CKK_AES,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CCM,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_CTR,
    CKM_AES_ECB,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKM_AES_MAC,
    CKM_AES_MAC_GENERAL,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from . import generic
from .params import AesCtrParams, CcmParams, GcmParams, MacGeneralParams
from .registry import EntryData, KeyGenData, KeyView, MechanismEntry, register
from .wrapping import EncryptionWrap

_log = logging.getLogger(__name__)

BLOCK = 16
AES_MIN, AES_MAX = 16, 32

# pyca/OpenSSL limits for GCM: IV of 8..128 bytes (shorter IVs are legal in SP 800-38D but
# weak and unsupported by pyca), tags of 4..16 bytes. The spec's ulTagBits is 0..128; we
# take the byte multiples pyca can check.
GCM_IV_MIN, GCM_IV_MAX = 8, 128
GCM_TAG_BITS = frozenset(range(32, 129, 8))
# CCM (SP 800-38C, RFC 3610): a nonce of 7..13 bytes (the rest of the 15 carries the
# length), a MAC of 4..16 bytes, even.
CCM_NONCE_MIN, CCM_NONCE_MAX = 7, 13
CCM_MAC_LENS = frozenset(range(4, 17, 2))


# --- keys ------------------------------------------------------------------------------


def aes_key(key: KeyView) -> bytes:
    """The AES key value; a stored value of another length is CKR_KEY_SIZE_RANGE."""
    value = generic.secret_value(key)
    if len(value) not in generic.AES_KEY_SIZES:
        raise CryptokiError(CKR_KEY_SIZE_RANGE, f"AES key of {len(value)} bytes")
    return value


def aes_algorithm(key: KeyView) -> algorithms.AES:
    """pyca's AES algorithm object for the key, kept in the key's cache."""
    algo = key.cache.get("aes.algorithm")
    if algo is None:
        algo = key.cache["aes.algorithm"] = algorithms.AES(aes_key(key))
    return algo


def _aesgcm(key: KeyView) -> AESGCM:
    aead = key.cache.get("aes.gcm")
    if aead is None:
        aead = key.cache["aes.gcm"] = AESGCM(aes_key(key))
    return aead


def _iv16(param: Any) -> bytes:
    """The 16-byte IV parameter of CBC/CBC_PAD (§2.10)."""
    if not isinstance(param, (bytes, bytearray)) or len(param) != BLOCK:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "a 16-byte IV is required")
    return bytes(param)


def _round_down(n: int, block: int = BLOCK) -> int:
    return n - n % block


# --- unpadded block modes: ECB, CBC ----------------------------------------------------


class BlockContext:
    """ECB/CBC without padding: input must total a multiple of the block size.

    Multi-part input may arrive in any pieces; pyca buffers the partial block. A total
    that is not a block multiple is CKR_DATA_LEN_RANGE (encrypt) or
    CKR_ENCRYPTED_DATA_LEN_RANGE (decrypt) at final, or at once for one-shot.
    """

    def __init__(self, ctx: Any, len_error: int, block: int = BLOCK) -> None:
        self._ctx = ctx
        self._len_error = len_error
        self._total = 0
        self._block = block  # 8 for the DES family (``des.py``)

    def update(self, data: bytes) -> bytes:
        self._total += len(data)
        return self._ctx.update(data)

    def final(self) -> bytes:
        if self._total % self._block:
            raise CryptokiError(self._len_error, "input is not a multiple of the block size")
        return self._ctx.finalize()

    def oneshot(self, data: bytes) -> bytes:
        if len(data) % self._block:
            raise CryptokiError(self._len_error, "input is not a multiple of the block size")
        return self._ctx.update(data) + self._ctx.finalize()

    def length_hint(self, step: str, data_len: int) -> int | None:
        if step == "update":
            return _round_down(self._total % self._block + data_len, self._block)
        if step == "final":
            return 0
        return data_len


class CbcPadEncrypt:
    """CBC with PKCS#7 padding, encrypting: the output is always a whole number of blocks,
    1..16 bytes longer than the input (§2.10 table "AES-CBC with PKCS padding")."""

    def __init__(self, ctx: Any, block: int = BLOCK, key: KeyView | None = None) -> None:
        self._ctx = ctx
        self._pad = padding.PKCS7(8 * block).padder()
        self._total = 0
        self._block = block
        self._key = key  # an AES key, for ``lane_state`` until the first step

    def update(self, data: bytes) -> bytes:
        self._key = None
        self._total += len(data)
        return self._ctx.update(self._pad.update(data))

    def final(self) -> bytes:
        self._key = None
        return self._ctx.update(self._pad.finalize()) + self._ctx.finalize()

    def lane_state(self) -> bytes | None:
        """The AES key, for the native lane (core/crypto_functions._arm_keyed), which runs this
        encryption on the system libcrypto from it; None for another cipher (DES) or once
        this context has started."""
        return aes_key(self._key) if self._key is not None else None

    def oneshot(self, data: bytes) -> bytes:
        return self.update(data) + self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        block = self._block
        if step == "update":
            return _round_down(self._total % block + data_len, block)
        if step == "final":
            return block
        return _round_down(data_len, block) + block


class CbcPadDecrypt:
    """CBC with PKCS#7 padding, decrypting: the last block is held back until final, where
    the padding is checked (bad padding -> CKR_ENCRYPTED_DATA_INVALID; a length that is not
    a positive block multiple -> CKR_ENCRYPTED_DATA_LEN_RANGE)."""

    def __init__(self, ctx: Any, block: int = BLOCK) -> None:
        self._ctx = ctx
        self._unpad = padding.PKCS7(8 * block).unpadder()
        self._total = 0
        self._block = block

    def update(self, data: bytes) -> bytes:
        self._total += len(data)
        return self._unpad.update(self._ctx.update(data))

    def final(self) -> bytes:
        if self._total == 0 or self._total % self._block:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not a positive block multiple")
        tail = self._unpad.update(self._ctx.finalize())
        try:
            return tail + self._unpad.finalize()
        except ValueError:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "bad PKCS#7 padding") from None

    def oneshot(self, data: bytes) -> bytes:
        if not data or len(data) % self._block:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not a positive block multiple")
        return self.update(data) + self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        block = self._block
        if step == "update":
            return _round_down(self._total % block + data_len, block)
        if step == "final":
            return block
        return data_len


# --- CTR -------------------------------------------------------------------------------


class CtrContext:
    """AES-CTR (§2.11): only the low ``counter_bits`` of the block count. Processing more
    blocks than the counter can take before it wraps is CKR_DATA_LEN_RANGE; within that
    bound pyca's full 128-bit increment gives the same counter blocks."""

    def __init__(self, ctx: Any, counter_bits: int, cb: bytes) -> None:
        self._ctx = ctx
        start = int.from_bytes(cb, "big") & ((1 << counter_bits) - 1)
        self._max_blocks = (1 << counter_bits) - start
        self._total = 0

    def _admit(self, n: int) -> None:
        blocks = -(-(self._total + n) // BLOCK)
        if blocks > self._max_blocks:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "the counter would wrap")
        self._total += n

    def update(self, data: bytes) -> bytes:
        self._admit(len(data))
        return self._ctx.update(data)

    def final(self) -> bytes:
        return self._ctx.finalize()

    def oneshot(self, data: bytes) -> bytes:
        return self.update(data) + self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0 if step == "final" else data_len


def _ctr_params(param: Any) -> AesCtrParams:
    if not isinstance(param, AesCtrParams) or len(param.cb) != BLOCK or not 0 < param.counter_bits <= 128:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_AES_CTR_PARAMS: 0 < ulCounterBits <= 128, 16-byte cb")
    return param


# --- GCM -------------------------------------------------------------------------------


class GcmEncrypt:
    """AES-GCM encryption (§2.13): ciphertext streams out of update; final appends the tag,
    ulTagBits/8 bytes (SP 800-38D MSB_t: the leading bytes of the full tag)."""

    __slots__ = ("_key", "_iv", "_aad", "_tag_len", "_ctx")

    def __init__(self, key: KeyView, iv: bytes, aad: bytes, tag_len: int) -> None:
        self._key, self._iv, self._aad, self._tag_len = key, iv, aad, tag_len
        self._ctx: Any = None

    def _stream(self) -> Any:
        if self._ctx is None:
            self._ctx = Cipher(aes_algorithm(self._key), modes.GCM(self._iv)).encryptor()
            if self._aad:
                self._ctx.authenticate_additional_data(self._aad)
        return self._ctx

    def update(self, data: bytes) -> bytes:
        return self._stream().update(data)

    def final(self) -> bytes:
        ctx = self._stream()
        out = ctx.finalize()
        return out + ctx.tag[: self._tag_len]

    def lane_state(self) -> bytes | None:
        """The AES key, for the native lane (core/crypto_functions._arm_keyed), which runs this
        encryption on the system libcrypto from it; None once this context has started."""
        return aes_key(self._key) if self._ctx is None else None

    def oneshot(self, data: bytes) -> bytes:
        if self._tag_len == 16:
            aead = self._key.cache.get("aes.gcm") or _aesgcm(self._key)
            return aead.encrypt(self._iv, data, self._aad or None)
        return self.update(data) + self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        if step == "update":
            return data_len
        if step == "final":
            return self._tag_len
        return data_len + self._tag_len


class BufferedContext:
    """Multi-part input collected and processed at final: the AES key-wrap mechanisms are
    single-part (§2.16) and GCM decryption releases nothing before the tag is checked, so
    their updates deliver no output and final does the work. ``run(data)`` is the one-shot
    operation; ``hint(n)`` the output length for n input bytes."""

    def __init__(self, run: Any, hint: Any) -> None:
        self._run = run
        self._hint = hint
        self._buf = bytearray()

    def update(self, data: bytes) -> bytes:
        self._buf += data
        return b""

    def final(self) -> bytes:
        data, self._buf = bytes(self._buf), bytearray()
        return self._run(data)

    def oneshot(self, data: bytes) -> bytes:
        return self._run(bytes(data))

    def length_hint(self, step: str, data_len: int) -> int | None:
        # A length query for an update answers the input length, an upper bound (§5.2 lets
        # the answer exceed the need), not the 0 bytes the update delivers: a client that
        # sizes its buffer from the answer (PyKCS11 resizes a vector, whose data() is NULL
        # when empty) would otherwise repeat the NULL query and never make the real call,
        # so nothing would be buffered and final would see a truncated input.
        if step == "update":
            return data_len
        return self._hint(len(self._buf) if step == "final" else data_len)


class GcmDecrypt(BufferedContext):
    """AES-GCM decryption (§2.13): "no data should be returned until C_Decrypt or
    C_DecryptFinal" - update buffers and returns nothing; final checks the tag first and
    only then releases the plaintext. A bad tag is CKR_ENCRYPTED_DATA_INVALID."""

    def __init__(self, key: KeyView, iv: bytes, aad: bytes, tag_len: int) -> None:
        super().__init__(self._decrypt, lambda n: max(n - tag_len, 0))
        self._key, self._iv, self._aad, self._tag_len = key, iv, aad, tag_len

    def _decrypt(self, data: bytes) -> bytes:
        if len(data) < self._tag_len:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "shorter than the GCM tag")
        try:
            if self._tag_len == 16:
                return _aesgcm(self._key).decrypt(self._iv, data, self._aad or None)
            body, tag = data[: -self._tag_len], data[-self._tag_len :]
            ctx = Cipher(aes_algorithm(self._key), modes.GCM(self._iv, tag, min_tag_length=self._tag_len)).decryptor()
            if self._aad:
                ctx.authenticate_additional_data(self._aad)
            return ctx.update(body) + ctx.finalize()
        except InvalidTag:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "GCM tag mismatch") from None


# --- MACs ------------------------------------------------------------------------------


class CbcMac:
    """FIPS 113 data authentication with AES (§2.10 AES-MAC): CBC with a zero IV over the
    data zero-padded to a block multiple; the MAC is the start of the last block."""

    def __init__(self, algo: Any, block: int = BLOCK) -> None:
        self._ctx = Cipher(algo, modes.CBC(bytes(block))).encryptor()
        self._pending = b""
        self._last = b""
        self._block = block  # 8: DES3-MAC (``des.py``)

    def update(self, data: bytes) -> None:
        block = self._block
        data = self._pending + data
        cut = _round_down(len(data), block)
        self._pending = data[cut:]
        if cut:
            self._last = self._ctx.update(data[:cut])[-block:]

    def finalize(self) -> bytes:
        block = self._block
        if self._pending or not self._last:
            self._last = self._ctx.update(self._pending.ljust(block, b"\0"))[-block:]
        return self._last


class MacSign:
    """Sign context for a MAC: ``new()`` gives an object with update/finalize."""

    def __init__(self, new: Callable[[], Any], length: int) -> None:
        self._mac = new()
        self._length = length

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def final(self) -> bytes:
        return self._mac.finalize()[: self._length]

    def oneshot(self, data: bytes) -> bytes:
        self.update(data)
        return self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        return None if step == "update" else self._length


class MacVerify:
    """Verify context for a MAC: a wrong length is CKR_SIGNATURE_LEN_RANGE, a wrong value
    CKR_SIGNATURE_INVALID (constant-time comparison)."""

    def __init__(self, new: Callable[[], Any], length: int) -> None:
        self._sign = MacSign(new, length)
        self._length = length

    def update(self, data: bytes) -> None:
        self._sign.update(data)

    def final(self, signature: bytes) -> None:
        if len(signature) != self._length:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "MAC length mismatch")
        if not _hmac.compare_digest(self._sign.final(), bytes(signature)):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "MAC mismatch")

    def oneshot(self, data: bytes, signature: bytes) -> None:
        self.update(data)
        self.final(signature)

    def length_hint(self, step: str, data_len: int) -> int | None:
        return None


def general_length(param: Any, block: int = BLOCK) -> int:
    """CK_MAC_GENERAL_PARAMS: 1..block size bytes (§2.10, §2.14; DES3 §2.x: 1..8)."""
    if not isinstance(param, int) or isinstance(param, bool) or not 1 <= param <= block:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, f"MAC length must be 1..{block}")
    return param


# --- the family ------------------------------------------------------------------------


def _gcm(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    """CK_GCM_PARAMS checked against what pyca/OpenSSL support, then the context (one frame:
    this runs on every AES-GCM C_*Init, since each message needs a fresh IV)."""
    if param.__class__ is not GcmParams:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_GCM_PARAMS required")
    iv = param.iv
    if not GCM_IV_MIN <= len(iv) <= GCM_IV_MAX:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, f"GCM IV of {len(iv)} bytes unsupported")
    tag_bits = param.tag_bits
    if tag_bits not in GCM_TAG_BITS:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, f"GCM tag of {tag_bits} bits unsupported")
    return (GcmEncrypt if encrypt else GcmDecrypt)(key, iv, param.aad, tag_bits // 8)


def _ccm(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    """AES-CCM (§2.12.4): ``ulDataLen`` is the length of the plaintext, known in advance;
    encryption takes exactly that many bytes and returns them encrypted with the MAC
    appended (ulDataLen + ulMACLen bytes), decryption takes ciphertext and MAC and releases
    the plaintext only once the MAC is checked (bad MAC: CKR_ENCRYPTED_DATA_INVALID). Both
    buffer their multi-part input: CCM's MAC covers the length before any data."""
    if param.__class__ is not CcmParams:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_CCM_PARAMS required")
    nonce, data_len, mac_len = param.nonce, param.data_len, param.mac_len
    if not CCM_NONCE_MIN <= len(nonce) <= CCM_NONCE_MAX or mac_len not in CCM_MAC_LENS:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CCM: nonce of 7..13 bytes, MAC of 4..16 bytes (even)")
    if data_len >> (8 * (15 - len(nonce))):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CCM: ulDataLen does not fit the nonce's length field")
    aead, aad = AESCCM(aes_key(key), mac_len), param.aad or None

    if encrypt:
        def seal(data: bytes) -> bytes:
            if len(data) != data_len:
                raise CryptokiError(CKR_DATA_LEN_RANGE, "CCM: the data is not ulDataLen bytes")
            return aead.encrypt(nonce, data, aad)

        return BufferedContext(seal, lambda n: data_len + mac_len)

    def open_(data: bytes) -> bytes:
        if len(data) != data_len + mac_len:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "CCM: the input is not ulDataLen + ulMACLen bytes")
        try:
            return aead.decrypt(nonce, data, aad)
        except InvalidTag:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "CCM MAC mismatch") from None

    return BufferedContext(open_, lambda n: data_len)


def _ctr(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    p = _ctr_params(param)
    ctx = Cipher(aes_algorithm(key), modes.CTR(bytes(p.cb)))
    return CtrContext(ctx.encryptor() if encrypt else ctx.decryptor(), p.counter_bits, p.cb)


def _block(mode: Any, param: Any, key: KeyView, encrypt: bool) -> Any:
    cipher = Cipher(aes_algorithm(key), mode)
    return cipher.encryptor() if encrypt else cipher.decryptor()


def _ecb(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    return BlockContext(_block(modes.ECB(), param, key, encrypt),
                        CKR_DATA_LEN_RANGE if encrypt else CKR_ENCRYPTED_DATA_LEN_RANGE)


def _cbc(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    return BlockContext(_block(modes.CBC(_iv16(param)), param, key, encrypt),
                        CKR_DATA_LEN_RANGE if encrypt else CKR_ENCRYPTED_DATA_LEN_RANGE)


def _cbc_pad(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    ctx = _block(modes.CBC(_iv16(param)), param, key, encrypt)
    return CbcPadEncrypt(ctx, key=key) if encrypt else CbcPadDecrypt(ctx)


#: The encrypt/decrypt context maker of each AES cipher mechanism, called as
#: ``maker(encrypt, entry, param, key)`` (``AesFamily.context_maker`` binds ``encrypt``).
_CIPHERS: dict[int, Callable[[bool, MechanismEntry, Any, KeyView], Any]] = {
    CKM_AES_GCM: _gcm,
    CKM_AES_CCM: _ccm,
    CKM_AES_CTR: _ctr,
    CKM_AES_ECB: _ecb,
    CKM_AES_CBC: _cbc,
    CKM_AES_CBC_PAD: _cbc_pad,
}


@dataclass(frozen=True)
class AesMacData(EntryData):
    """An AES MAC mechanism: CMAC (``cmac``) or FIPS 113 CBC-MAC, and its fixed output
    length (0: the _GENERAL mechanisms, whose parameter gives it)."""

    cmac: bool
    length: int


def _mac(entry: MechanismEntry[AesMacData], param: Any, key: KeyView) -> tuple[Callable[[], Any], int]:
    """(factory of a fresh MAC object, output length) for an AES MAC mechanism."""
    algo = aes_algorithm(key)
    data = entry.data
    length = data.length if data.length else general_length(param)
    if data.cmac:
        return (lambda: cmac.CMAC(algo)), length
    return (lambda: CbcMac(algo)), length


class AesFamily(EncryptionWrap):
    """The AES mechanisms; which of these methods the core calls follows ``entry.flags``."""

    __slots__ = ()

    def generate_key(self, entry: MechanismEntry, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        return generic.SECRET_KEY_GEN.generate_key(entry, param, template)

    def encrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
        return _CIPHERS[entry.mechanism](True, entry, param, key)

    def decrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
        return _CIPHERS[entry.mechanism](False, entry, param, key)

    def context_maker(self, kind: str, entry: MechanismEntry) -> Callable[[MechanismEntry, Any, KeyView], Any]:
        """The cipher's context maker with ``encrypt`` bound (a C-level partial, no frame of
        ours): the software backend hands it to the core, which keeps it per key, so
        C_EncryptInit calls it directly."""
        maker = _CIPHERS.get(entry.mechanism)
        if maker is None or kind not in ("encrypt", "decrypt"):
            return super().context_maker(kind, entry)
        return functools.partial(maker, kind == "encrypt")

    def sign_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> MacSign:
        return MacSign(*_mac(entry, param, key))

    def verify_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> MacVerify:
        return MacVerify(*_mac(entry, param, key))


AES = AesFamily()

_CIPHER_FLAGS = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
_MAC_FLAGS = CKF_SIGN | CKF_VERIFY
#: The AEAD modes also run the message-based functions (3.0 §5.9, §5.11; core/message.py).
_MESSAGE_FLAGS = CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT

# mechanism -> (flags, parameter kind, entry data)
_AES_MECHANISMS: dict[int, tuple[int, Any, EntryData]] = {
    CKM_AES_KEY_GEN: (CKF_GENERATE, None, KeyGenData(CKK_AES)),
    CKM_AES_ECB: (_CIPHER_FLAGS, None, EntryData()),
    CKM_AES_CBC: (_CIPHER_FLAGS, bytes, EntryData()),
    CKM_AES_CBC_PAD: (_CIPHER_FLAGS, bytes, EntryData()),
    CKM_AES_CTR: (_CIPHER_FLAGS, AesCtrParams, EntryData()),
    CKM_AES_GCM: (_CIPHER_FLAGS | _MESSAGE_FLAGS, GcmParams, EntryData()),
    # encrypt/decrypt only: a wrapped key would have to be ulDataLen long, known in advance
    CKM_AES_CCM: (CKF_ENCRYPT | CKF_DECRYPT | _MESSAGE_FLAGS, CcmParams, EntryData()),
    CKM_AES_MAC: (_MAC_FLAGS, None, AesMacData(False, BLOCK // 2)),
    CKM_AES_MAC_GENERAL: (_MAC_FLAGS, MacGeneralParams, AesMacData(False, 0)),
    CKM_AES_CMAC: (_MAC_FLAGS, None, AesMacData(True, BLOCK)),
    CKM_AES_CMAC_GENERAL: (_MAC_FLAGS, MacGeneralParams, AesMacData(True, 0)),
}

for _mech, (_flags, _param, _data) in _AES_MECHANISMS.items():
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=_flags,
            min_key_size=AES_MIN,
            max_key_size=AES_MAX,
            family=AES,
            key_types=frozenset() if _mech == CKM_AES_KEY_GEN else frozenset({CKK_AES}),
            param=_param,
            data=_data,
        )
    )
