"""SLH-DSA (FIPS 205) on the `pqcrypto` package: PKCS#11 3.2 §6.69 (docs/pqc.md).

* CKM_SLH_DSA_KEY_PAIR_GEN: the twelve parameter sets, named by the public template's
  CKA_PARAMETER_SET (the "s" sets sign in 0.4-2 s here, the "f" sets in 20-50 ms).
* CKM_SLH_DSA: pure SLH-DSA (Algorithms 22/24) with the optional CK_SIGN_ADDITIONAL_CONTEXT,
  by ML-DSA's rules (``mldsa.context_string``): context <= 255 bytes, hedged signing only
  (`pqcrypto` draws opt_rand: CKH_DETERMINISTIC_REQUIRED is CKR_MECHANISM_PARAM_INVALID).
* CKM_HASH_SLH_DSA_<hash>: HashSLH-DSA (Algorithm 23/25) hashing on token, single- and
  multi-part (the message is buffered: `pqcrypto` hashes it in one call).
* CKM_HASH_SLH_DSA (the caller's digest as input) is not offered: `pqcrypto` signs a message it
  hashes itself and has no pre-hashed entry.

``ulMinKeySize``/``ulMaxKeySize``: the public key's length in bytes (32 to 64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import CryptokiError
from ..spec_ints import (
    CKA_PARAMETER_SET,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_SLH_DSA,
    CKM_HASH_SLH_DSA_SHA3_224,
    CKM_HASH_SLH_DSA_SHA3_256,
    CKM_HASH_SLH_DSA_SHA3_384,
    CKM_HASH_SLH_DSA_SHA3_512,
    CKM_HASH_SLH_DSA_SHA224,
    CKM_HASH_SLH_DSA_SHA256,
    CKM_HASH_SLH_DSA_SHA384,
    CKM_HASH_SLH_DSA_SHA512,
    CKM_HASH_SLH_DSA_SHAKE128,
    CKM_HASH_SLH_DSA_SHAKE256,
    CKM_SLH_DSA,
    CKM_SLH_DSA_KEY_PAIR_GEN,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from . import keys, slhdsa_keys
from .mldsa import context_string
from .params import SignAdditionalContext
from .registry import EntryData, Family, KeyGenData, MechanismEntry, register
from .signing import Buffer, SignContext, VerifyContext

#: CKM_HASH_SLH_DSA_<hash> -> the `pqcrypto.HashAlgorithm` member name of its pre-hash
PREHASH_NAMES = {
    CKM_HASH_SLH_DSA_SHA224: "Sha224", CKM_HASH_SLH_DSA_SHA256: "Sha256", CKM_HASH_SLH_DSA_SHA384: "Sha384",
    CKM_HASH_SLH_DSA_SHA512: "Sha512", CKM_HASH_SLH_DSA_SHA3_224: "Sha3_224",
    CKM_HASH_SLH_DSA_SHA3_256: "Sha3_256", CKM_HASH_SLH_DSA_SHA3_384: "Sha3_384",
    CKM_HASH_SLH_DSA_SHA3_512: "Sha3_512", CKM_HASH_SLH_DSA_SHAKE128: "Shake128",
    CKM_HASH_SLH_DSA_SHAKE256: "Shake256",
}


@dataclass(frozen=True)
class SlhDsaData(EntryData):
    """``prehash``: None for pure SLH-DSA, else the CKM_HASH_SLH_DSA_<hash> (its pre-hash)."""

    prehash: int | None


class _Signer:
    """SLH-DSA or HashSLH-DSA with one key, context and pre-hash (None: pure)."""

    __slots__ = ("_key", "_context", "_prehash", "size")

    def __init__(self, key: Any, context: bytes, prehash: Any) -> None:
        self._key, self._context, self._prehash = key, context, prehash
        self.size = key.ps.signature_len

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, self._context, self._prehash)

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, f"{self._key.ps.name} signature is {self.size} bytes")
        if not self._key.verify(signature, message, self._context, self._prehash):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "SLH-DSA signature does not verify")


def _signer(entry: MechanismEntry[SlhDsaData], param: Any, view: Any, signing: bool) -> _Signer:
    key = keys.load_private(view) if signing else keys.load_public(view)
    if not slhdsa_keys.is_slh_key(key):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_SLH_DSA key")
    prehash = entry.data.prehash
    algorithm = None if prehash is None else getattr(slhdsa_keys.pqcrypto.HashAlgorithm, PREHASH_NAMES[prehash])
    return _Signer(key, context_string(param, signing), algorithm)


class SlhDsaFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[SlhDsaData], param: Any, key: Any) -> SignContext:
        return SignContext(_signer(entry, param, key, True), Buffer())

    def verify_init(self, entry: MechanismEntry[SlhDsaData], param: Any, key: Any) -> VerifyContext:
        return VerifyContext(_signer(entry, param, key, False), Buffer())

    def generate_key_pair(self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
                          priv_template: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_SLH_DSA_KEY_PAIR_GEN (3.2 §6.69.4): the set named by the public template."""
        ps = slhdsa_keys.parameter_set(pub_template.get(CKA_PARAMETER_SET))
        return keys.key_pair_material(slhdsa_keys.SlhDsaPrivateKey.generate(ps))


if slhdsa_keys.AVAILABLE:
    FAMILY = SlhDsaFamily()
    _SIZES = (min(ps.public_len for ps in slhdsa_keys.SETS.values()),
              max(ps.public_len for ps in slhdsa_keys.SETS.values()))
    _KEY = frozenset({CKK_SLH_DSA})
    register(MechanismEntry(CKM_SLH_DSA_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, *_SIZES, FAMILY,
                            data=KeyGenData(CKK_SLH_DSA)))
    register(MechanismEntry(CKM_SLH_DSA, CKF_SIGN | CKF_VERIFY, *_SIZES, FAMILY, _KEY, param=SignAdditionalContext,
                            param_optional=True, data=SlhDsaData(None)))
    for _ckm in PREHASH_NAMES:
        register(MechanismEntry(_ckm, CKF_SIGN | CKF_VERIFY, *_SIZES, FAMILY, _KEY, param=SignAdditionalContext,
                                param_optional=True, data=SlhDsaData(_ckm)))
