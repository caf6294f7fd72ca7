"""HMAC sign/verify: CKM_<hash>_HMAC and CKM_<hash>_HMAC_GENERAL (PKCS#11 3.0 §2.22 and the
per-hash sections).

The plain mechanisms output the full hash length; the _GENERAL ones take a
CK_MAC_GENERAL_PARAMS (our ``int``) between 1 and the hash length. Keys are generic secrets
or the hash's own HMAC key type (CKK_SHA256_HMAC ...). Key generation is CKM_GENERIC_SECRET_KEY_GEN
(generic.py), not here.

Speed: the keyed HMAC state (inner/outer pads) is prepared once per key and hash and kept in
``view.cache``; each operation starts from a ``copy()`` of it. Inside the library SHA-1/SHA-2
HMAC runs on ``native/digest.c`` (hermetic, and its state can be saved for
C_GetOperationState); SHA-3 HMAC, and everything without the library, on pyca.
"""

from __future__ import annotations

import hmac as _consttime
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac

from ..errors import CryptokiError
from ..spec import (
    CKR_SAVED_STATE_INVALID,
    CKA_VALUE,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_GENERIC_SECRET,
    CKK_SHA3_224_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA512_224_HMAC,
    CKK_SHA512_256_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA_1_HMAC,
    CKK_MD5_HMAC,
    CKM_MD5_HMAC,
    CKM_MD5_HMAC_GENERAL,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_224_HMAC_GENERAL,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_256_HMAC_GENERAL,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_384_HMAC_GENERAL,
    CKM_SHA3_512_HMAC,
    CKM_SHA3_512_HMAC_GENERAL,
    CKM_SHA224_HMAC,
    CKM_SHA224_HMAC_GENERAL,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_224_HMAC,
    CKM_SHA512_224_HMAC_GENERAL,
    CKM_SHA512_256_HMAC,
    CKM_SHA512_256_HMAC_GENERAL,
    CKM_SHA512_HMAC,
    CKM_SHA512_HMAC_GENERAL,
    CKM_SHA_1_HMAC,
    CKM_SHA_1_HMAC_GENERAL,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from .digest import CKM_OF, NATIVE, RunningDigest, native_ready, unsaveable
from .params import MacGeneralParams
from .registry import EntryData, Family, MechanismEntry, register

#: Key sizes in bytes (generic secret unit). HMAC takes any key length; the bounds are
#: what we report and what C_GenerateKey of a generic secret allows.
MIN_KEY_BYTES = 1
MAX_KEY_BYTES = 4096

# (HMAC mechanism, _GENERAL mechanism, hash, dedicated key type)
_TABLE = (
    (CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, hashes.SHA1, CKK_SHA_1_HMAC),
    (CKM_SHA224_HMAC, CKM_SHA224_HMAC_GENERAL, hashes.SHA224, CKK_SHA224_HMAC),
    (CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, hashes.SHA256, CKK_SHA256_HMAC),
    (CKM_SHA384_HMAC, CKM_SHA384_HMAC_GENERAL, hashes.SHA384, CKK_SHA384_HMAC),
    (CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, hashes.SHA512, CKK_SHA512_HMAC),
    (CKM_SHA512_224_HMAC, CKM_SHA512_224_HMAC_GENERAL, hashes.SHA512_224, CKK_SHA512_224_HMAC),
    (CKM_SHA512_256_HMAC, CKM_SHA512_256_HMAC_GENERAL, hashes.SHA512_256, CKK_SHA512_256_HMAC),
    (CKM_SHA3_224_HMAC, CKM_SHA3_224_HMAC_GENERAL, hashes.SHA3_224, CKK_SHA3_224_HMAC),
    (CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL, hashes.SHA3_256, CKK_SHA3_256_HMAC),
    (CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL, hashes.SHA3_384, CKK_SHA3_384_HMAC),
    (CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL, hashes.SHA3_512, CKK_SHA3_512_HMAC),
)
#: HMAC-MD5: offered only by a slot with ``legacy_mechanisms = true`` (``digest.LEGACY_HASHES``).
_LEGACY_TABLE = ((CKM_MD5_HMAC, CKM_MD5_HMAC_GENERAL, hashes.MD5, CKK_MD5_HMAC),)


@dataclass(frozen=True)
class HmacData(EntryData):
    """An HMAC mechanism: its hash, and whether it is the _GENERAL one (a length parameter)."""

    hash: type[hashes.HashAlgorithm]
    general: bool


def _keyed(entry: MechanismEntry[HmacData], key: Any) -> Any:
    """A fresh HMAC state for ``key``, copied from the one prepared in the key's cache."""
    algorithm = entry.data.hash
    slot = ("hmac", algorithm.name)
    prepared = key.cache.get(slot)
    if prepared is None:
        value = key.attrs.get(CKA_VALUE)
        if value is None:
            raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "HMAC key has no CKA_VALUE")
        ckm = CKM_OF[algorithm]
        if native_ready() is not None and ckm in NATIVE:
            prepared = RunningDigest.keyed(ckm, bytes(value))
        else:
            prepared = _PycaPrepared(hmac.HMAC(bytes(value), algorithm()))
        key.cache[slot] = prepared
    return prepared


class _PycaPrepared:
    """A key's prepared pyca HMAC with the interface of a prepared ``RunningDigest``."""

    __slots__ = ("_mac",)

    def __init__(self, mac: hmac.HMAC) -> None:
        self._mac = mac

    def copy(self) -> hmac.HMAC:
        return self._mac.copy()

    def mac(self, data: bytes) -> bytes:
        running = self._mac.copy()
        running.update(data)
        return running.finalize()


def _mac_length(entry: MechanismEntry[HmacData], param: Any) -> int:
    data = entry.data
    size = data.hash.digest_size
    if not data.general:
        return size
    if not isinstance(param, MacGeneralParams) or isinstance(param, bool) or not 1 <= param <= size:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, f"HMAC_GENERAL length {param!r} not in 1..{size}")
    return param


class HmacSignContext:
    """C_Sign*/C_Verify* share the MAC computation; verify compares in constant time.

    The running state is copied from the key's prepared one at the first update; a
    one-shot call never makes it (``prepared.mac``)."""

    __slots__ = ("_prepared", "_running", "_length")

    def __init__(self, prepared: Any, length: int) -> None:
        self._prepared = prepared
        self._running: Any = None
        self._length = length

    @property
    def _mac(self) -> Any:
        running = self._running
        if running is None:
            running = self._running = self._prepared.copy()
        return running

    def update(self, data: bytes) -> None:
        self._mac.update(data)

    def final(self) -> bytes:
        return self._mac.finalize()[: self._length]

    def oneshot(self, data: bytes) -> bytes:
        if self._running is None:
            return self._prepared.mac(data)[: self._length]
        self._running.update(data)
        return self.final()

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0 if step == "update" else self._length

    def lane_state(self) -> bytes | None:
        """The key's prepared state for the native lane (core/crypto_functions._arm_keyed), if
        this is a fresh full-length HMAC on native/digest.c; else None (pyca, SHA-3)."""
        if self._running is not None or not isinstance(self._prepared, RunningDigest):
            return None
        return self._prepared.prepared_state(self._length)

    def save(self) -> bytes:
        """C_GetOperationState: the inner and outer states (key-dependent: the core only
        hands them out encrypted and bound to this key, ``core/opstate.py``)."""
        save = getattr(self._mac, "save", None)
        if save is None:
            raise unsaveable("HMAC on pyca")
        return save()

    def restore(self, state: bytes) -> None:
        load = getattr(self._mac, "load", None)
        if load is None:
            raise CryptokiError(CKR_SAVED_STATE_INVALID, "no saved state for this HMAC")
        load(state)


class HmacVerifyContext(HmacSignContext):
    __slots__ = ()

    def final(self, signature: bytes) -> None:  # type: ignore[override]
        self._check(self._mac.finalize(), signature)

    def oneshot(self, data: bytes, signature: bytes) -> None:  # type: ignore[override]
        if self._running is None:
            self._check(self._prepared.mac(data), signature)
            return
        self._running.update(data)
        self.final(signature)

    def _check(self, mac: bytes, signature: bytes) -> None:
        # spec §5.15: a signature of the wrong length is CKR_SIGNATURE_LEN_RANGE
        if len(signature) != self._length:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "MAC length differs from the mechanism's")
        if not _consttime.compare_digest(mac[: self._length], bytes(signature)):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "MAC mismatch")

    def length_hint(self, step: str, data_len: int) -> int | None:
        return 0


class HmacFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[HmacData], param: Any, key: Any) -> HmacSignContext:
        length = _mac_length(entry, param)
        return HmacSignContext(_keyed(entry, key), length)

    def verify_init(self, entry: MechanismEntry[HmacData], param: Any, key: Any) -> HmacVerifyContext:
        length = _mac_length(entry, param)
        return HmacVerifyContext(_keyed(entry, key), length)


FAMILY = HmacFamily()

for _legacy, _table in ((False, _TABLE), (True, _LEGACY_TABLE)):
    for _plain, _general, _hash, _ckk in _table:
        _types = frozenset({CKK_GENERIC_SECRET, _ckk})
        register(MechanismEntry(_plain, CKF_SIGN | CKF_VERIFY, MIN_KEY_BYTES, MAX_KEY_BYTES, FAMILY, _types,
                                data=HmacData(_hash, False), legacy=_legacy))
        register(MechanismEntry(_general, CKF_SIGN | CKF_VERIFY, MIN_KEY_BYTES, MAX_KEY_BYTES, FAMILY, _types,
                                param=MacGeneralParams, data=HmacData(_hash, True), legacy=_legacy))
