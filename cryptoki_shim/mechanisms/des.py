"""Triple DES (two- and three-key) and, for slots that allow the legacy mechanisms, single DES.

Spec: PKCS#11 3.0 current mechanisms §2.x "DES" / "DES2" / "DES3" (key objects: CKA_VALUE of
8/16/24 bytes and no CKA_VALUE_LEN; CKM_DES_KEY_GEN, CKM_DES2_KEY_GEN, CKM_DES3_KEY_GEN),
"General block cipher mechanisms" (ECB, CBC, CBC_PAD with an 8-byte IV; MAC of half a block,
MAC_GENERAL of 1..8 bytes) and "DES3 CMAC" (CMAC, CMAC_GENERAL). Issue 23 item 9.

Every key runs on pyca's decrepit ``TripleDES`` with a 24-byte key: two-key DES is K1 K2 K1
and single DES is K K K (EDE with three equal keys is one DES encryption: E_K(D_K(E_K(x))) =
E_K(x)), so there is one cipher and no deprecated short-key path of pyca. Generated keys have
odd parity in every byte (FIPS 46-3), as SoftHSM2 generates them; an imported or unwrapped
key's parity is not checked (SoftHSM2 does not either; DES ignores the parity bits).

Single DES (56-bit keys) and everything else ``legacy=True`` is offered only by a slot with
``legacy_mechanisms = true`` (``core.crypto_functions.offered``). Wrapping with the cipher
mechanisms encrypts the key bytes (``wrapping.EncryptionWrap``, zero padded to the block for
ECB and CBC).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ..errors import CryptokiError
from ..spec import (
    CKA_KEY_TYPE,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_SIGN,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_WRAP,
    CKK_DES,
    CKK_DES2,
    CKK_DES3,
    CKM_DES2_KEY_GEN,
    CKM_DES3_CBC,
    CKM_DES3_CBC_PAD,
    CKM_DES3_CMAC,
    CKM_DES3_CMAC_GENERAL,
    CKM_DES3_ECB,
    CKM_DES3_KEY_GEN,
    CKM_DES3_MAC,
    CKM_DES3_MAC_GENERAL,
    CKM_DES_CBC,
    CKM_DES_CBC_PAD,
    CKM_DES_ECB,
    CKM_DES_KEY_GEN,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_TEMPLATE_INCONSISTENT,
)
from . import aes, generic
from .params import MacGeneralParams
from .registry import EntryData, KeyGenData, KeyView, MechanismEntry, register
from .wrapping import EncryptionWrap

BLOCK = 8


# --- keys ------------------------------------------------------------------------------


def odd_parity(value: bytes) -> bytes:
    """Each byte with its low bit set so that the byte has an odd number of ones (FIPS 46-3
    "DES keys": the eighth bit of each byte is a parity bit)."""
    return bytes((b & 0xFE) | (1 - bin(b >> 1).count("1") % 2) for b in value)


def ede_key(value: bytes) -> bytes:
    """The 24-byte K1 K2 K3 of a DES (K K K), DES2 (K1 K2 K1) or DES3 key value."""
    if len(value) == 8:
        return value * 3
    if len(value) == 16:
        return value + value[:8]
    if len(value) == 24:
        return value
    raise CryptokiError(CKR_KEY_SIZE_RANGE, f"a DES key of {len(value)} bytes")


def des_algorithm(key: KeyView) -> TripleDES:
    """pyca's TripleDES for the key (any of the three types), kept in the key's cache."""
    algo = key.cache.get("des.algorithm")
    if algo is None:
        algo = key.cache["des.algorithm"] = TripleDES(ede_key(generic.secret_value(key)))
    return algo


# --- ciphers ---------------------------------------------------------------------------


def _iv8(param: Any) -> bytes:
    if not isinstance(param, (bytes, bytearray)) or len(param) != BLOCK:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "an 8-byte IV is required")
    return bytes(param)


def _context(mode: Any, key: KeyView, encrypt: bool) -> Any:
    cipher = Cipher(des_algorithm(key), mode)
    return cipher.encryptor() if encrypt else cipher.decryptor()


def _ecb(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    return aes.BlockContext(_context(modes.ECB(), key, encrypt),
                            CKR_DATA_LEN_RANGE if encrypt else CKR_ENCRYPTED_DATA_LEN_RANGE, BLOCK)


def _cbc(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    return aes.BlockContext(_context(modes.CBC(_iv8(param)), key, encrypt),
                            CKR_DATA_LEN_RANGE if encrypt else CKR_ENCRYPTED_DATA_LEN_RANGE, BLOCK)


def _cbc_pad(encrypt: bool, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
    ctx = _context(modes.CBC(_iv8(param)), key, encrypt)
    return aes.CbcPadEncrypt(ctx, BLOCK) if encrypt else aes.CbcPadDecrypt(ctx, BLOCK)


_CIPHERS: dict[int, Callable[[bool, MechanismEntry, Any, KeyView], Any]] = {
    CKM_DES3_ECB: _ecb,
    CKM_DES3_CBC: _cbc,
    CKM_DES3_CBC_PAD: _cbc_pad,
    CKM_DES_ECB: _ecb,
    CKM_DES_CBC: _cbc,
    CKM_DES_CBC_PAD: _cbc_pad,
}


# --- MACs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesMacData(EntryData):
    """A DES3 MAC: CMAC (``cmac``) or the FIPS 113 CBC-MAC, and its fixed length (0: the
    _GENERAL mechanisms, whose CK_MAC_GENERAL_PARAMS gives it, 1..8)."""

    cmac: bool
    length: int


def _mac(entry: MechanismEntry[DesMacData], param: Any, key: KeyView) -> tuple[Callable[[], Any], int]:
    algo = des_algorithm(key)
    data = entry.data
    length = data.length if data.length else aes.general_length(param, BLOCK)
    if data.cmac:
        return (lambda: cmac.CMAC(algo)), length
    return (lambda: aes.CbcMac(algo, BLOCK)), length


class DesFamily(EncryptionWrap):
    """The DES mechanisms; which of these methods the core calls follows ``entry.flags``."""

    __slots__ = ()

    def generate_key(self, entry: MechanismEntry[KeyGenData], param: Any,
                     template: Mapping[int, Any]) -> dict[int, Any]:
        """CKK_DES/DES2/DES3: random bytes of the type's length with odd parity (as SoftHSM2's
        ``OSSLDES::generateKey``); no CKA_VALUE_LEN, the key type fixes the length."""
        key_type = entry.data.key_type
        requested = template.get(CKA_KEY_TYPE)
        if requested is not None and requested != key_type:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_KEY_TYPE does not match the mechanism")
        value = odd_parity(os.urandom(generic.DES_KEY_SIZES[key_type]))
        material = generic.secret_material(value, key_type=key_type)
        material[CKA_KEY_TYPE] = key_type
        return material

    def encrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
        return _CIPHERS[entry.mechanism](True, entry, param, key)

    def decrypt_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> Any:
        return _CIPHERS[entry.mechanism](False, entry, param, key)

    def context_maker(self, kind: str, entry: MechanismEntry) -> Callable[[MechanismEntry, Any, KeyView], Any]:
        maker = _CIPHERS.get(entry.mechanism)
        if maker is None or kind not in ("encrypt", "decrypt"):
            return super().context_maker(kind, entry)
        return functools.partial(maker, kind == "encrypt")

    def sign_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> aes.MacSign:
        return aes.MacSign(*_mac(entry, param, key))

    def verify_init(self, entry: MechanismEntry, param: Any, key: KeyView) -> aes.MacVerify:
        return aes.MacVerify(*_mac(entry, param, key))


DES = DesFamily()

_CIPHER_FLAGS = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
_MAC_FLAGS = CKF_SIGN | CKF_VERIFY
_DES3_TYPES = frozenset({CKK_DES2, CKK_DES3})
_DES_TYPES = frozenset({CKK_DES})

# mechanism -> (flags, parameter kind, entry data, key types, min/max key bytes, legacy)
_MECHANISMS: dict[int, tuple[int, Any, EntryData, frozenset[int], int, int, bool]] = {
    CKM_DES2_KEY_GEN: (CKF_GENERATE, None, KeyGenData(CKK_DES2), frozenset(), 16, 16, False),
    CKM_DES3_KEY_GEN: (CKF_GENERATE, None, KeyGenData(CKK_DES3), frozenset(), 24, 24, False),
    CKM_DES3_ECB: (_CIPHER_FLAGS, None, EntryData(), _DES3_TYPES, 16, 24, False),
    CKM_DES3_CBC: (_CIPHER_FLAGS, bytes, EntryData(), _DES3_TYPES, 16, 24, False),
    CKM_DES3_CBC_PAD: (_CIPHER_FLAGS, bytes, EntryData(), _DES3_TYPES, 16, 24, False),
    CKM_DES3_MAC: (_MAC_FLAGS, None, DesMacData(False, BLOCK // 2), _DES3_TYPES, 16, 24, False),
    CKM_DES3_MAC_GENERAL: (_MAC_FLAGS, MacGeneralParams, DesMacData(False, 0), _DES3_TYPES, 16, 24, False),
    CKM_DES3_CMAC: (_MAC_FLAGS, None, DesMacData(True, BLOCK), _DES3_TYPES, 16, 24, False),
    CKM_DES3_CMAC_GENERAL: (_MAC_FLAGS, MacGeneralParams, DesMacData(True, 0), _DES3_TYPES, 16, 24, False),
    # single DES: a 56-bit key, found by exhaustive search in hours; legacy slots only
    CKM_DES_KEY_GEN: (CKF_GENERATE, None, KeyGenData(CKK_DES), frozenset(), 8, 8, True),
    CKM_DES_ECB: (_CIPHER_FLAGS, None, EntryData(), _DES_TYPES, 8, 8, True),
    CKM_DES_CBC: (_CIPHER_FLAGS, bytes, EntryData(), _DES_TYPES, 8, 8, True),
    CKM_DES_CBC_PAD: (_CIPHER_FLAGS, bytes, EntryData(), _DES_TYPES, 8, 8, True),
}

for _mech, (_flags, _param, _data, _types, _min, _max, _legacy) in _MECHANISMS.items():
    register(MechanismEntry(mechanism=_mech, flags=_flags, min_key_size=_min, max_key_size=_max, family=DES,
                            key_types=_types, param=_param, data=_data, legacy=_legacy))
