"""Elliptic curves: ECDSA (raw and hashing) and the three EC key pair generators.

PKCS#11 3.0 §2.3 (06.03_elliptic_curves.md):
* Signatures are r||s, each left-padded to nLen (the byte length of the order), never DER.
  Verify accepts shorter even-length signatures (r, s of equal length), anything else is
  CKR_SIGNATURE_LEN_RANGE.
* CKM_ECDSA takes the raw digest of any length, single-part only; the token truncates it to
  the leftmost bits of the order's length.
* Key pair generation takes CKA_EC_PARAMS (oId or curveName) from the public template; a
  curve of another form (Edwards with CKM_EC_KEY_PAIR_GEN ...) is CKR_CURVE_NOT_SUPPORTED.
  Edwards and Montgomery generation live here too: they share the template handling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from ..errors import CryptokiError
from ..spec import (
    CKA_EC_PARAMS,
    CKF_EC_CURVENAME,
    CKF_EC_F_P,
    CKF_EC_OID,
    CKF_EC_UNCOMPRESS,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA3_224,
    CKM_ECDSA_SHA3_256,
    CKM_ECDSA_SHA3_384,
    CKM_ECDSA_SHA3_512,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA_1,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DATA_LEN_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
)
from . import keys, native
from .digest import HASHES
from .registry import EntryData, Family, KeyGenData, MechanismEntry, register
from .signing import SignContext, VerifyContext, running_hash

_log = logging.getLogger(__name__)

EC_FLAGS = CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS

# Prehashed carriers for CKM_ECDSA, shortest first: OpenSSL reads a digest no longer than the order
# as an integer, so a raw input (after our truncation) is left-padded to one of these sizes.
# An order shorter than every carrier (P-192) takes the shortest one, the value left-aligned:
# OpenSSL keeps the leftmost bits of the order's length of a longer digest.
_CARRIERS = (hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)


def _carrier_for(bits: int) -> type[hashes.HashAlgorithm]:
    """The longest carrier no longer than the order, else (P-192) the shortest one."""
    fitting = [h for h in _CARRIERS if 8 * h().digest_size <= bits]
    return fitting[-1] if fitting else _CARRIERS[0]


def _order_bits(curve: keys.Curve) -> int:
    # the supported Weierstrass curves have an order of the field's bit length
    return curve.bits


class _EcdsaSigner:
    """Signs/verifies a digest. ``algorithm`` is the mechanism's hash, or None for CKM_ECDSA
    (any digest length: truncated to the order's bits, then carried as a Prehashed value).

    A private key signs through the library's C helper when it is there (``native``: the
    GIL is released while the curve arithmetic runs); the prepared digest and the r||s
    output are the same on both paths."""

    def __init__(self, key: Any, algorithm: type[hashes.HashAlgorithm] | None) -> None:
        self._key = key
        self._curve = keys.curve_of_key(key)
        self.size = 2 * self._curve.size
        self._algorithm = algorithm
        self._native = (
            native.ecdsa_signer(key, self._curve.size) if isinstance(key, ec.EllipticCurvePrivateKey) else None
        )
        self._native_verify = native.verifier(key, None) if isinstance(key, ec.EllipticCurvePublicKey) else None
        if algorithm is None:
            bits = _order_bits(self._curve)
            carrier = _carrier_for(bits)()
            self._carrier = ec.ECDSA(utils.Prehashed(carrier))
            self._carrier_len: int = carrier.digest_size
            # left alignment of the value in a carrier longer than the order (P-192 only)
            self._carrier_shift = max(0, 8 * self._carrier_len - bits)
        else:
            self._carrier = ec.ECDSA(utils.Prehashed(algorithm()))

    def _prepare(self, digest: bytes) -> bytes:
        if self._algorithm is not None:
            return digest
        bits = _order_bits(self._curve)
        value = int.from_bytes(digest, "big")
        excess = 8 * len(digest) - bits
        if excess > 0:  # spec §2.3.1: only the leftmost bits of the order's length are used
            value >>= excess
        if value.bit_length() > 8 * self._carrier_len:
            # only P-521 with an input longer than 64 bytes: no Prehashed carrier that long
            raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_ECDSA input too long for this curve")
        return (value << self._carrier_shift).to_bytes(self._carrier_len, "big")

    def sign(self, digest: bytes) -> bytes:
        if self._native is not None:
            return self._native(self._prepare(digest))
        prepared = self._prepare(digest)
        native.lend_gate()  # pyca signs with the GIL released
        der = self._key.sign(prepared, self._carrier)
        r, s = utils.decode_dss_signature(der)
        n = self._curve.size
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")

    def verify(self, digest: bytes, signature: bytes) -> None:
        half = len(signature) // 2
        if not signature or len(signature) % 2 or half > self._curve.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "ECDSA signature length out of range")
        r = int.from_bytes(signature[:half], "big")
        s = int.from_bytes(signature[half:], "big")
        der, prepared = utils.encode_dss_signature(r, s), self._prepare(digest)
        if self._native_verify is not None:
            if not self._native_verify(prepared, der):
                raise CryptokiError(CKR_SIGNATURE_INVALID, "ECDSA signature does not verify")
            return
        native.lend_gate()  # pyca verifies with the GIL released
        try:
            self._key.verify(der, prepared, self._carrier)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "ECDSA signature does not verify") from None


def _ec_key(view: Any, private: bool) -> Any:
    key = keys.load_private(view) if private else keys.load_public(view)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_EC key")
    return key


def _generate(curve: keys.Curve) -> Any:
    if curve.key_type == CKK_EC:
        return ec.generate_private_key(curve.pyca())
    return curve.pyca.generate()


def _signer(view: Any, private: bool, algorithm: Any) -> _EcdsaSigner:
    """The key's signer for one hash, made once per key object (a signer holds no state of
    an operation): C_SignInit then costs a dict lookup, not a curve lookup and objects."""
    slot = ("ecdsa", private, algorithm)
    signer = view.cache.get(slot)
    if signer is None:
        signer = view.cache[slot] = _EcdsaSigner(_ec_key(view, private), algorithm)
    return signer


@dataclass(frozen=True)
class EcdsaData(EntryData):
    """An ECDSA mechanism: the hash it applies first (None: CKM_ECDSA signs the caller's
    digest, single-part only)."""

    hash: type[hashes.HashAlgorithm] | None

    @property
    def single_part(self) -> bool:
        return self.hash is None


def external_sign_context(entry: MechanismEntry[EcdsaData], signer: Any) -> SignContext:
    """A sign context of an ECDSA mechanism around a backend's own ``signer`` (``sign(digest)
    -> r||s``, ``size``): the mechanism's running hash (or none, CKM_ECDSA) is the family's
    business, the private-key operation the backend's (the TPM's resident keys)."""
    algorithm = entry.data.hash
    return SignContext(signer, running_hash(algorithm))


class EcFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[EcdsaData], param: Any, key: Any) -> SignContext:
        algorithm = entry.data.hash
        return SignContext(_signer(key, True, algorithm), running_hash(algorithm))

    def verify_init(self, entry: MechanismEntry[EcdsaData], param: Any, key: Any) -> VerifyContext:
        algorithm = entry.data.hash
        return VerifyContext(_signer(key, False, algorithm), running_hash(algorithm))

    def generate_key_pair(
        self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
        priv_template: Mapping[int, Any]
    ) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_EC_KEY_PAIR_GEN, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_MONTGOMERY_KEY_PAIR_GEN
        (spec §2.3.11-2.3.13). Both objects keep the caller's CKA_EC_PARAMS encoding (oId or
        curveName) so that what the client asked for is what it reads back."""
        params = pub_template.get(CKA_EC_PARAMS)
        if not params:
            raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS missing from the public template")
        curve = keys.curve_from_params(params)
        if curve.key_type != entry.data.key_type:
            raise CryptokiError(CKR_CURVE_NOT_SUPPORTED, f"{curve.names[0]} is not generated by this mechanism")
        raw = native.ec_generate(curve.pyca.name, curve.size) if curve.key_type == CKK_EC else None
        if raw is not None:  # the GIL released while the library's helper generates (issue #22)
            public, private = keys.ec_pair_material(curve, *raw)
        else:
            public, private = keys.key_pair_material(_generate(curve))
        public[CKA_EC_PARAMS] = private[CKA_EC_PARAMS] = bytes(params)
        return public, private


FAMILY = EcFamily()

for _ckm, _kt, _lo, _hi in (
    (CKM_EC_KEY_PAIR_GEN, CKK_EC, 192, 521),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, CKK_EC_EDWARDS, 255, 448),
    (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, CKK_EC_MONTGOMERY, 255, 448),
):
    register(MechanismEntry(_ckm, CKF_GENERATE_KEY_PAIR | EC_FLAGS, _lo, _hi, FAMILY, data=KeyGenData(_kt)))

register(MechanismEntry(CKM_ECDSA, CKF_SIGN | CKF_VERIFY | EC_FLAGS, 192, 521, FAMILY, frozenset({CKK_EC}),
                        data=EcdsaData(None)))
for _ckm, _hash in (
    (CKM_ECDSA_SHA1, CKM_SHA_1),
    (CKM_ECDSA_SHA224, CKM_SHA224),
    (CKM_ECDSA_SHA256, CKM_SHA256),
    (CKM_ECDSA_SHA384, CKM_SHA384),
    (CKM_ECDSA_SHA512, CKM_SHA512),
    (CKM_ECDSA_SHA3_224, CKM_SHA3_224),
    (CKM_ECDSA_SHA3_256, CKM_SHA3_256),
    (CKM_ECDSA_SHA3_384, CKM_SHA3_384),
    (CKM_ECDSA_SHA3_512, CKM_SHA3_512),
):
    register(MechanismEntry(_ckm, CKF_SIGN | CKF_VERIFY | EC_FLAGS, 192, 521, FAMILY, frozenset({CKK_EC}),
                            data=EcdsaData(HASHES[_hash])))
