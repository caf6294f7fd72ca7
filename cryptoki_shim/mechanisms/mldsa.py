"""ML-DSA (FIPS 204) on pyca/cryptography: PKCS#11 3.2 §6.67.

* CKM_ML_DSA_KEY_PAIR_GEN: the parameter set comes from the public template's
  CKA_PARAMETER_SET (CKP_ML_DSA_44/65/87); both objects get the material of
  ``pqc_keys`` (the private key's seed and expanded form).
* CKM_ML_DSA: pure ML-DSA (Algorithm 2/3) with the optional CK_SIGN_ADDITIONAL_CONTEXT: a
  context string of at most 255 bytes; hedgeVariant CKH_HEDGE_PREFERRED or
  CKH_HEDGE_REQUIRED sign hedged (pyca's only signing mode); CKH_DETERMINISTIC_REQUIRED,
  which "must produce a deterministic signature or fail", fails at C_SignInit with
  CKR_MECHANISM_PARAM_INVALID (pyca offers no deterministic signing); on verification the
  hedge variant is ignored, as the spec says. Multi-part sign and verify buffer the message
  (ML-DSA hashes it with the public key's tr first, so it cannot stream through pyca's
  one-call API); the spec limits C_VerifyUpdate to C_VerifySignature*, we accept both.
* HashML-DSA (Algorithm 4/5): M' = 1 ‖ |ctx| ‖ ctx ‖ OID(PH) ‖ PH(M), signed as its message
  representative μ = SHAKE256(tr ‖ M', 64) through pyca's ``sign_mu``/``verify_mu``.
  CKM_HASH_ML_DSA_<hash> hash on token (multi-part, a running hash);
  CKM_HASH_ML_DSA takes the digest itself, its hash named by CK_HASH_SIGN_ADDITIONAL_CONTEXT
  (a CKM_SHA* digest mechanism; the SHAKE pre-hashes only through their own mechanisms,
  since PKCS#11 has no SHAKE digest mechanism), single-part, input exactly the digest's
  length (else CKR_DATA_LEN_RANGE).

``ulMinKeySize``/``ulMaxKeySize``: the public key's length in bytes (1312 to 2592).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from ..errors import CryptokiError
from ..spec_ints import (
    CKH_DETERMINISTIC_REQUIRED,
    CKH_HEDGE_PREFERRED,
    CKH_HEDGE_REQUIRED,
    CKK_ML_DSA,
    CKM_HASH_ML_DSA,
    CKM_HASH_ML_DSA_SHA3_224,
    CKM_HASH_ML_DSA_SHA3_256,
    CKM_HASH_ML_DSA_SHA3_384,
    CKM_HASH_ML_DSA_SHA3_512,
    CKM_HASH_ML_DSA_SHA224,
    CKM_HASH_ML_DSA_SHA256,
    CKM_HASH_ML_DSA_SHA384,
    CKM_HASH_ML_DSA_SHA512,
    CKM_HASH_ML_DSA_SHAKE128,
    CKM_HASH_ML_DSA_SHAKE256,
    CKM_ML_DSA,
    CKM_ML_DSA_KEY_PAIR_GEN,
    CKA_PARAMETER_SET,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_VERIFY,
    CKM_SHA3_224,
    CKM_SHA3_256,
    CKM_SHA3_384,
    CKM_SHA3_512,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKR_DATA_LEN_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from . import keys, pqc_keys
from .digest import HASHES, accumulator, xof_accumulator
from .params import HashSignAdditionalContext, SignAdditionalContext
from .pqc_keys import ML_DSA
from .registry import EntryData, Family, KeyGenData, MechanismEntry, register
from .signing import Buffer, SignContext, VerifyContext

#: Pseudo digest numbers for the SHAKE pre-hashes (no CKM_ digest exists for them).
_SHAKE128, _SHAKE256 = -128, -256
MAX_CONTEXT = 255  # FIPS 204 §5.2: |ctx| <= 255 bytes


@dataclass(frozen=True)
class PreHash:
    """A HashML-DSA pre-hash: its DER OID (FIPS 204 §5.4 "OID"), output length, accumulator."""

    oid: bytes
    size: int
    accumulator: Any


def _nist_hash_oid(last: int) -> bytes:
    return bytes.fromhex("0609608648016503040201")[:-1] + bytes([last])  # 2.16.840.1.101.3.4.2.<last>


def _running(ckm: int) -> Any:
    """A running SHA-2/SHA-3 (``digest.accumulator``: native inside the library, chosen
    when the operation starts, after the library bound)."""
    return lambda: accumulator(HASHES[ckm])()


PREHASHES: dict[int, PreHash] = {
    CKM_SHA224: PreHash(_nist_hash_oid(4), 28, _running(CKM_SHA224)),
    CKM_SHA256: PreHash(_nist_hash_oid(1), 32, _running(CKM_SHA256)),
    CKM_SHA384: PreHash(_nist_hash_oid(2), 48, _running(CKM_SHA384)),
    CKM_SHA512: PreHash(_nist_hash_oid(3), 64, _running(CKM_SHA512)),
    CKM_SHA3_224: PreHash(_nist_hash_oid(7), 28, _running(CKM_SHA3_224)),
    CKM_SHA3_256: PreHash(_nist_hash_oid(8), 32, _running(CKM_SHA3_256)),
    CKM_SHA3_384: PreHash(_nist_hash_oid(9), 48, _running(CKM_SHA3_384)),
    CKM_SHA3_512: PreHash(_nist_hash_oid(10), 64, _running(CKM_SHA3_512)),
    _SHAKE128: PreHash(_nist_hash_oid(11), 32, xof_accumulator(hashes.SHAKE128, 32)),
    _SHAKE256: PreHash(_nist_hash_oid(12), 64, xof_accumulator(hashes.SHAKE256, 64)),
}


@dataclass(frozen=True)
class MlDsaData(EntryData):
    """``prehash``: None for pure ML-DSA, the pre-hash of a CKM_HASH_ML_DSA_<hash>, or
    ``PARAM`` for CKM_HASH_ML_DSA (named by its parameter); ``hashing``: whether the
    token hashes the message (multi-part) or receives the digest (single-part)."""

    prehash: int | None
    hashing: bool = True


PARAM = 0  # MlDsaData.prehash of CKM_HASH_ML_DSA: the hash comes with the parameter


def _shake256(data: bytes, n: int) -> bytes:
    h = hashes.Hash(hashes.SHAKE256(n))
    h.update(data)
    return h.finalize()


_TR_CACHE = "mldsa.tr"


def _tr(view: Any, public: Any) -> bytes:
    """tr = H(pk, 64) (FIPS 204 Algorithm 6), kept per key object."""
    tr = view.cache.get(_TR_CACHE)
    if tr is None:
        tr = view.cache[_TR_CACHE] = _shake256(public.public_bytes_raw(), 64)
    return tr


class _PureSigner:
    __slots__ = ("_key", "_context", "size")

    def __init__(self, key: Any, context: bytes | None, size: int) -> None:
        self._key, self._context, self.size = key, context, size

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, self._context)

    def verify(self, message: bytes, signature: bytes) -> None:
        _check_length(signature, self.size)
        try:
            self._key.verify(signature, message, self._context)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "ML-DSA signature does not verify") from None


class _PreHashSigner:
    """HashML-DSA on pyca's μ interface: ``message`` is PH(M)."""

    __slots__ = ("_key", "_prefix", "_size_in", "size")

    def __init__(self, key: Any, tr: bytes, context: bytes, prehash: PreHash, size: int) -> None:
        self._key, self.size, self._size_in = key, size, prehash.size
        self._prefix = tr + bytes([1, len(context)]) + context + prehash.oid

    def _mu(self, digest: bytes) -> bytes:
        if len(digest) != self._size_in:
            raise CryptokiError(CKR_DATA_LEN_RANGE, f"HashML-DSA input is the {self._size_in}-byte digest")
        return _shake256(self._prefix + digest, 64)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign_mu(self._mu(message))

    def verify(self, message: bytes, signature: bytes) -> None:
        _check_length(signature, self.size)
        try:
            self._key.verify_mu(signature, self._mu(message))
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "HashML-DSA signature does not verify") from None


def _check_length(signature: bytes, size: int) -> None:
    if len(signature) != size:
        raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, f"ML-DSA signature is {size} bytes")


def _invalid(why: str) -> CryptokiError:
    return CryptokiError(CKR_MECHANISM_PARAM_INVALID, why)


def context_string(param: Any, signing: bool) -> bytes:
    """The context string of a CK_SIGN_ADDITIONAL_CONTEXT (or CK_HASH_SIGN_...) parameter, its
    hedge variant checked (module docstring); SLH-DSA takes the same rules (``slhdsa``)."""
    if param is None:
        return b""
    if param.hedge not in (CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED, CKH_DETERMINISTIC_REQUIRED):
        raise _invalid(f"hedgeVariant {param.hedge} undefined")
    if signing and param.hedge == CKH_DETERMINISTIC_REQUIRED:
        raise _invalid("deterministic ML-DSA signing is not offered (pyca signs hedged only; docs/pqc.md)")
    if len(param.context) > MAX_CONTEXT:
        raise _invalid("ML-DSA context longer than 255 bytes")
    return param.context


def _prehash(entry: MechanismEntry[MlDsaData], param: Any) -> PreHash | None:
    which = entry.data.prehash
    if which == PARAM:
        if not isinstance(param, HashSignAdditionalContext):
            raise _invalid("CKM_HASH_ML_DSA needs CK_HASH_SIGN_ADDITIONAL_CONTEXT")
        found = PREHASHES.get(param.hash)
        if found is None or param.hash < 0:
            raise _invalid(f"pre-hash {param.hash:#x} not offered for CKM_HASH_ML_DSA")
        return found
    return None if which is None else PREHASHES[which]


_CACHE = ("mldsa.public", "mldsa.private")


def _dsa_key(view: Any, private: bool) -> tuple[Any, int]:
    """The pyca key and its signature length, checked once per key object (``view.cache``)."""
    found = view.cache.get(_CACHE[private])
    if found is None:
        key = keys.load_private(view) if private else keys.load_public(view)
        if not pqc_keys.is_pqc_key(key) or pqc_keys.of_key(key).key_type != CKK_ML_DSA:
            raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_ML_DSA key")
        found = view.cache[_CACHE[private]] = (key, pqc_keys.of_key(key).output_len)
    return found


def _context_init(entry: MechanismEntry[MlDsaData], param: Any, view: Any, signing: bool) -> tuple[Any, Any]:
    """(signer, accumulator) for a sign or verify operation."""
    key, size = _dsa_key(view, signing)
    context = context_string(param, signing)
    prehash = _prehash(entry, param)
    if prehash is None:
        return _PureSigner(key, context or None, size), Buffer()
    public = key.public_key() if signing else key
    signer = _PreHashSigner(key, _tr(view, public), context, prehash, size)
    return signer, (prehash.accumulator() if entry.data.hashing else None)


class MlDsaFamily(Family):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[MlDsaData], param: Any, key: Any) -> SignContext:
        return SignContext(*_context_init(entry, param, key, True))

    def verify_init(self, entry: MechanismEntry[MlDsaData], param: Any, key: Any) -> VerifyContext:
        return VerifyContext(*_context_init(entry, param, key, False))

    def generate_key_pair(self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
                          priv_template: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_ML_DSA_KEY_PAIR_GEN (3.2 §6.67.4): the set named by the public template."""
        ps = pqc_keys.parameter_set(CKK_ML_DSA, pub_template.get(CKA_PARAMETER_SET))
        return keys.key_pair_material(ps.private_cls.generate())


FAMILY = MlDsaFamily()
_SIZES = (min(ps.public_len for ps in ML_DSA.values()), max(ps.public_len for ps in ML_DSA.values()))
_KEY = frozenset({CKK_ML_DSA})

register(MechanismEntry(CKM_ML_DSA_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, *_SIZES, FAMILY,
                        data=KeyGenData(CKK_ML_DSA)))
register(MechanismEntry(CKM_ML_DSA, CKF_SIGN | CKF_VERIFY, *_SIZES, FAMILY, _KEY, param=SignAdditionalContext,
                        param_optional=True, data=MlDsaData(None)))
register(MechanismEntry(CKM_HASH_ML_DSA, CKF_SIGN | CKF_VERIFY, *_SIZES, FAMILY, _KEY, param=HashSignAdditionalContext,
                        data=MlDsaData(PARAM, hashing=False)))
for _ckm, _hash in (
    (CKM_HASH_ML_DSA_SHA224, CKM_SHA224),
    (CKM_HASH_ML_DSA_SHA256, CKM_SHA256),
    (CKM_HASH_ML_DSA_SHA384, CKM_SHA384),
    (CKM_HASH_ML_DSA_SHA512, CKM_SHA512),
    (CKM_HASH_ML_DSA_SHA3_224, CKM_SHA3_224),
    (CKM_HASH_ML_DSA_SHA3_256, CKM_SHA3_256),
    (CKM_HASH_ML_DSA_SHA3_384, CKM_SHA3_384),
    (CKM_HASH_ML_DSA_SHA3_512, CKM_SHA3_512),
    (CKM_HASH_ML_DSA_SHAKE128, _SHAKE128),
    (CKM_HASH_ML_DSA_SHAKE256, _SHAKE256),
):
    register(MechanismEntry(_ckm, CKF_SIGN | CKF_VERIFY, *_SIZES, FAMILY, _KEY, param=SignAdditionalContext,
                            param_optional=True, data=MlDsaData(_hash)))
