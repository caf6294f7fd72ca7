"""DSA (FIPS 186-4): parameter and key pair generation, raw and hashing signatures.

PKCS#11 3.0 §2.2:
* CKM_DSA_PARAMETER_GEN (C_GenerateKey) makes a CKO_DOMAIN_PARAMETERS object of CKA_PRIME_BITS
  bits; CKM_DSA_KEY_PAIR_GEN takes CKA_PRIME/SUBPRIME/BASE from the public template.
* Signatures are r||s, each as long as the subprime q (40, 56 or 64 bytes), never DER; a
  signature of another length is CKR_SIGNATURE_LEN_RANGE.
* CKM_DSA signs the caller's hash, single-part only; as OpenSSL, an input longer than q keeps
  its leftmost bits of q's length. CKM_DSA_SHA1/SHA224/SHA256/SHA384/SHA512 and the SHA-3
  variants hash first and are multi-part.

Sizes: p of 1024-3072 bits, q of 160/224/256 (``ffc``). pyca/OpenSSL generate parameters of
those sizes: 1024-bit p with a 160-bit q, larger p with a 256-bit q (FIPS 186-4's (2048, 256)
and (3072, 256)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, utils

from ..errors import CryptokiError
from ..spec_ints import (
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_DSA,
    CKM_DSA,
    CKM_DSA_KEY_PAIR_GEN,
    CKM_DSA_PARAMETER_GEN,
    CKM_DSA_SHA1,
    CKM_DSA_SHA3_224,
    CKM_DSA_SHA3_256,
    CKM_DSA_SHA3_384,
    CKM_DSA_SHA3_512,
    CKM_DSA_SHA224,
    CKM_DSA_SHA256,
    CKM_DSA_SHA384,
    CKM_DSA_SHA512,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA_1,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from . import ffc, keys
from .digest import HASHES
from .registry import EntryData, Family, KeyGenData, MechanismEntry, ParameterGenData, register
from .signing import SignContext, VerifyContext, running_hash

#: CKM_DSA's prehashed carrier per bit length of q: a digest exactly as long as q, so that
#: OpenSSL reads the prepared value as the integer it is (no second truncation).
_CARRIERS: dict[int, type[hashes.HashAlgorithm]] = {160: hashes.SHA1, 224: hashes.SHA224, 256: hashes.SHA256}
#: The sizes of p CKM_DSA_PARAMETER_GEN makes (FIPS 186-4 §4.2; pyca picks q: 160 or 256 bits).
_GENERATED_P_BITS = frozenset({1024, 2048, 3072})


class _DsaSigner:
    """Signs/verifies a digest with one key. ``algorithm``: the mechanism's hash, or None for
    CKM_DSA (the caller's hash, any length, truncated to q's bits)."""

    def __init__(self, key: Any, algorithm: type[hashes.HashAlgorithm] | None) -> None:
        public = key.public_key() if isinstance(key, dsa.DSAPrivateKey) else key
        self._qbits = public.public_numbers().parameter_numbers.q.bit_length()
        self._qlen = (self._qbits + 7) // 8
        self.size = 2 * self._qlen
        self._key = key
        self._raw = algorithm is None
        self._carrier = utils.Prehashed((algorithm or _CARRIERS[self._qbits])())

    def _prepare(self, digest: bytes) -> bytes:
        if not self._raw:
            return digest
        value = int.from_bytes(digest, "big")
        excess = 8 * len(digest) - self._qbits
        if excess > 0:  # FIPS 186-4 §4.6: the leftmost min(N, outlen) bits of the hash
            value >>= excess
        return value.to_bytes(self._qlen, "big")

    def sign(self, digest: bytes) -> bytes:
        r, s = utils.decode_dss_signature(self._key.sign(self._prepare(digest), self._carrier))
        return r.to_bytes(self._qlen, "big") + s.to_bytes(self._qlen, "big")

    def verify(self, digest: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, f"DSA signature of {len(signature)} bytes, not {self.size}")
        r = int.from_bytes(signature[: self._qlen], "big")
        s = int.from_bytes(signature[self._qlen :], "big")
        try:
            self._key.verify(utils.encode_dss_signature(r, s), self._prepare(digest), self._carrier)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "DSA signature does not verify") from None


def _signer(view: Any, private: bool, algorithm: Any) -> _DsaSigner:
    """The key's signer for one hash, made once per key object (it holds no operation state)."""
    slot = ("dsa", private, algorithm)
    signer = view.cache.get(slot)
    if signer is None:
        key = keys.load_private(view) if private else keys.load_public(view)
        if not isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
            raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_DSA key")
        signer = view.cache[slot] = _DsaSigner(key, algorithm)
    return signer


@dataclass(frozen=True)
class DsaData(EntryData):
    """A DSA signature mechanism: the hash it applies first (None: CKM_DSA, single-part)."""

    hash: type[hashes.HashAlgorithm] | None


class DsaFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[DsaData], param: Any, key: Any) -> SignContext:
        algorithm = entry.data.hash
        return SignContext(_signer(key, True, algorithm), running_hash(algorithm))

    def verify_init(self, entry: MechanismEntry[DsaData], param: Any, key: Any) -> VerifyContext:
        algorithm = entry.data.hash
        return VerifyContext(_signer(key, False, algorithm), running_hash(algorithm))

    def generate_key(self, entry: MechanismEntry[ParameterGenData], param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        """CKM_DSA_PARAMETER_GEN (§2.2.11): domain parameters of CKA_PRIME_BITS bits, one of
        FIPS 186-4's L values (another size within the range: CKR_ATTRIBUTE_VALUE_INVALID)."""
        bits = ffc.parameter_bits(template, CKK_DSA)
        if bits not in _GENERATED_P_BITS:
            raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_PRIME_BITS {bits}: DSA generates 1024, 2048 or 3072")
        return ffc.domain_material(CKK_DSA, dsa.generate_parameters(bits).parameter_numbers())

    def generate_key_pair(
        self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
        priv_template: Mapping[int, Any]
    ) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_DSA_KEY_PAIR_GEN (§2.2.12): the domain parameters of the public template
        (missing: CKR_TEMPLATE_INCOMPLETE; refused by pyca or outside the sizes:
        CKR_DOMAIN_PARAMS_INVALID)."""
        numbers = ffc.dsa_parameters(pub_template, CKR_DOMAIN_PARAMS_INVALID)
        return ffc.key_pair_material(numbers.parameters().generate_private_key())


FAMILY = DsaFamily()
_TYPES = frozenset({CKK_DSA})

register(MechanismEntry(CKM_DSA_PARAMETER_GEN, CKF_GENERATE, ffc.DSA_MIN_BITS, ffc.DSA_MAX_BITS, FAMILY,
                        data=ParameterGenData(CKK_DSA)))
register(MechanismEntry(CKM_DSA_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, ffc.DSA_MIN_BITS, ffc.DSA_MAX_BITS, FAMILY,
                        data=KeyGenData(CKK_DSA)))
register(MechanismEntry(CKM_DSA, CKF_SIGN | CKF_VERIFY, ffc.DSA_MIN_BITS, ffc.DSA_MAX_BITS, FAMILY, _TYPES,
                        data=DsaData(None)))
for _ckm, _hash in (
    (CKM_DSA_SHA1, CKM_SHA_1),
    (CKM_DSA_SHA224, CKM_SHA224),
    (CKM_DSA_SHA256, CKM_SHA256),
    (CKM_DSA_SHA384, CKM_SHA384),
    (CKM_DSA_SHA512, CKM_SHA512),
    (CKM_DSA_SHA3_224, CKM_SHA3_224),
    (CKM_DSA_SHA3_256, CKM_SHA3_256),
    (CKM_DSA_SHA3_384, CKM_SHA3_384),
    (CKM_DSA_SHA3_512, CKM_SHA3_512),
):
    register(MechanismEntry(_ckm, CKF_SIGN | CKF_VERIFY, ffc.DSA_MIN_BITS, ffc.DSA_MAX_BITS, FAMILY, _TYPES,
                            data=DsaData(HASHES[_hash])))
