"""ML-DSA (FIPS 204) and ML-KEM (FIPS 203) key material: PKCS#11 3.2 attributes <-> pyca keys.

PKCS#11 3.2 §6.67 (ML-DSA) and §6.68 (ML-KEM) key objects:

* public key: ``CKA_PARAMETER_SET`` (CKP_*) and ``CKA_VALUE``, the encoded public key
  (ML-DSA pk, ML-KEM encapsulation key ek);
* private key: ``CKA_PARAMETER_SET``, ``CKA_SEED`` (ML-DSA ξ, 32 bytes; ML-KEM d‖z, 64
  bytes) and ``CKA_VALUE``, the expanded private key (ML-DSA sk of KeyGen_internal, ML-KEM
  decapsulation key dk). "At least one of CKA_SEED and CKA_VALUE must be specified on
  C_CreateObject. Tokens may reject creation requests that only specify one of these."

pyca/cryptography 50 builds private keys only from the seed and exports only the seed, so
the seed is what this token keeps and uses: a private key without ``CKA_SEED`` is refused
(CKR_TEMPLATE_INCOMPLETE, the spec's "may reject"). ``CKA_VALUE`` is computed from the seed
(``pqc_expand``) for generated and imported keys; one given on C_CreateObject must equal it
(CKR_ATTRIBUTE_VALUE_INVALID otherwise). docs/pqc.md says so.

Parameter sets served: ML-DSA-44/65/87, ML-KEM-768/1024 (pyca), ML-KEM-512 (``mlkem512``, on
the optional `pqcrypto` package; without it CKR_PARAMETER_SET_NOT_SUPPORTED, 3.2 §5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

from ..errors import CryptokiError
from ..spec_ints import (
    CKA_KEY_TYPE,
    CKA_PARAMETER_SET,
    CKA_PUBLIC_KEY_INFO,
    CKA_SEED,
    CKA_VALUE,
    CKK_ML_DSA,
    CKK_ML_KEM,
    CKP_ML_DSA_44,
    CKP_ML_DSA_65,
    CKP_ML_DSA_87,
    CKP_ML_KEM_512,
    CKP_ML_KEM_768,
    CKP_ML_KEM_1024,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_PARAMETER_SET_NOT_SUPPORTED,
    CKR_TEMPLATE_INCOMPLETE,
)
from . import mlkem512, pqc_expand


@dataclass(frozen=True)
class ParameterSet:
    """One FIPS 203/204 parameter set: its CKP_* value and sizes (bytes).

    ``output_len``: the signature (ML-DSA) or ciphertext (ML-KEM) length; ``k``/``l``: the
    module dimensions (ML-KEM has only k).
    """

    key_type: int
    ckp: int
    name: str
    private_cls: Any
    public_cls: Any
    public_len: int
    private_len: int
    seed_len: int
    output_len: int
    k: int
    l: int = 0  # noqa: E741 (FIPS 204's name)


ML_DSA: dict[int, ParameterSet] = {
    CKP_ML_DSA_44: ParameterSet(CKK_ML_DSA, CKP_ML_DSA_44, "ML-DSA-44", mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey,
                                1312, 2560, 32, 2420, 4, 4),
    CKP_ML_DSA_65: ParameterSet(CKK_ML_DSA, CKP_ML_DSA_65, "ML-DSA-65", mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey,
                                1952, 4032, 32, 3309, 6, 5),
    CKP_ML_DSA_87: ParameterSet(CKK_ML_DSA, CKP_ML_DSA_87, "ML-DSA-87", mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey,
                                2592, 4896, 32, 4627, 8, 7),
}
ML_KEM: dict[int, ParameterSet] = {
    **({CKP_ML_KEM_512: ParameterSet(CKK_ML_KEM, CKP_ML_KEM_512, "ML-KEM-512", mlkem512.MLKEM512PrivateKey,
                                     mlkem512.MLKEM512PublicKey, 800, 1632, 64, 768, 2)}
       if mlkem512.AVAILABLE else {}),
    CKP_ML_KEM_768: ParameterSet(CKK_ML_KEM, CKP_ML_KEM_768, "ML-KEM-768", mlkem.MLKEM768PrivateKey,
                                 mlkem.MLKEM768PublicKey, 1184, 2400, 64, 1088, 3),
    CKP_ML_KEM_1024: ParameterSet(CKK_ML_KEM, CKP_ML_KEM_1024, "ML-KEM-1024", mlkem.MLKEM1024PrivateKey,
                                  mlkem.MLKEM1024PublicKey, 1568, 3168, 64, 1568, 4),
}
#: CKP values the spec defines that this token does not serve (CKR_PARAMETER_SET_NOT_SUPPORTED).
NOT_SERVED: dict[int, frozenset[int]] = {CKK_ML_KEM: frozenset({CKP_ML_KEM_512} - set(ML_KEM)),
                                         CKK_ML_DSA: frozenset()}
SETS: dict[int, dict[int, ParameterSet]] = {CKK_ML_DSA: ML_DSA, CKK_ML_KEM: ML_KEM}
KEY_TYPES = frozenset(SETS)
#: The shared secret of every ML-KEM parameter set (FIPS 203 §7: 32 bytes).
SHARED_SECRET_LEN = 32

_BY_CLASS: dict[type, ParameterSet] = {}
for _sets in SETS.values():
    for _ps in _sets.values():
        _BY_CLASS[_ps.private_cls] = _ps
        _BY_CLASS[_ps.public_cls] = _ps


def _error(ckr: int, why: str) -> CryptokiError:
    return CryptokiError(ckr, why)


def parameter_set(key_type: int, ckp: Any) -> ParameterSet:
    """The parameter set ``ckp`` of ``key_type``: a missing one is CKR_TEMPLATE_INCOMPLETE, a
    defined one we do not serve CKR_PARAMETER_SET_NOT_SUPPORTED, any other value
    CKR_ATTRIBUTE_VALUE_INVALID."""
    if ckp is None:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_PARAMETER_SET missing")
    found = SETS[key_type].get(int(ckp))
    if found is None:
        if int(ckp) in NOT_SERVED[key_type]:
            raise _error(CKR_PARAMETER_SET_NOT_SUPPORTED, f"parameter set {ckp} not offered (docs/pqc.md)")
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_PARAMETER_SET {ckp} undefined for key type {key_type:#x}")
    return found


def of_attrs(attrs: Mapping[int, Any]) -> ParameterSet:
    return parameter_set(int(attrs[CKA_KEY_TYPE]), attrs.get(CKA_PARAMETER_SET))


def of_key(key: Any) -> ParameterSet:
    """The parameter set of a pyca ML-DSA/ML-KEM key (private or public)."""
    for cls, ps in _BY_CLASS.items():
        if isinstance(key, cls):
            return ps
    raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"not an ML-DSA/ML-KEM key: {type(key).__name__}")


def is_pqc_key(key: Any) -> bool:
    return any(isinstance(key, cls) for cls in _BY_CLASS)


def parse_private(attrs: Mapping[int, Any]) -> Any:
    """The pyca private key of a private key object: from its CKA_SEED (module docstring)."""
    ps = of_attrs(attrs)
    seed = attrs.get(CKA_SEED)
    if not seed:
        raise _error(CKR_TEMPLATE_INCOMPLETE, f"{ps.name} private key needs CKA_SEED (docs/pqc.md)")
    if len(seed) != ps.seed_len:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"{ps.name} CKA_SEED is {ps.seed_len} bytes, not {len(seed)}")
    try:
        return ps.private_cls.from_seed_bytes(bytes(seed))
    except ValueError as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"{ps.name} seed refused: {exc}") from None


def from_pkcs8(data: bytes) -> Any | None:
    """A private key of a PrivateKeyInfo pyca cannot read (ML-KEM-512), or None."""
    return mlkem512.from_pkcs8(data) if mlkem512.AVAILABLE else None


def parse_public(attrs: Mapping[int, Any]) -> Any:
    ps = of_attrs(attrs)
    value = attrs.get(CKA_VALUE)
    if not value:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE missing")
    if len(value) != ps.public_len:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"{ps.name} public key is {ps.public_len} bytes, not {len(value)}")
    try:
        return ps.public_cls.from_public_bytes(bytes(value))
    except ValueError as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"{ps.name} public key refused: {exc}") from None


def _spki(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_material(key: Any) -> dict[int, Any]:
    """The attributes of a public key object holding ``key`` (private or public pyca key)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    ps = of_key(public)
    return {CKA_KEY_TYPE: ps.key_type, CKA_PARAMETER_SET: ps.ckp, CKA_VALUE: public.public_bytes_raw(),
            CKA_PUBLIC_KEY_INFO: _spki(public)}


def private_material(key: Any) -> dict[int, Any]:
    """The attributes of a private key object holding ``key``: seed, expanded form, SPKI."""
    ps = of_key(key)
    seed = key.private_bytes_raw()
    public = key.public_key()
    return {CKA_KEY_TYPE: ps.key_type, CKA_PARAMETER_SET: ps.ckp, CKA_SEED: seed,
            CKA_VALUE: expanded(ps, seed, public.public_bytes_raw()), CKA_PUBLIC_KEY_INFO: _spki(public)}


def expanded(ps: ParameterSet, seed: bytes, public: bytes) -> bytes:
    """The spec's private CKA_VALUE (ML-DSA sk, ML-KEM dk), computed from the seed."""
    if ps.key_type == CKK_ML_DSA:
        return pqc_expand.ml_dsa_sk(seed, public, ps.k, ps.l)
    return pqc_expand.ml_kem_dk(seed, public, ps.k)


def check_import(attrs: Mapping[int, Any], public_class: bool) -> dict[int, Any]:
    """C_CreateObject of an ML-DSA/ML-KEM key: parse it and return what the object gains.

    A private key gets its expanded CKA_VALUE; one given must be the one its seed expands
    to (CKR_ATTRIBUTE_VALUE_INVALID), and CKA_VALUE alone is refused (module docstring).
    """
    if public_class:
        material = public_material(parse_public(attrs))
        return {CKA_PUBLIC_KEY_INFO: material[CKA_PUBLIC_KEY_INFO]}
    material = private_material(parse_private(attrs))
    given = attrs.get(CKA_VALUE)
    expected_len = of_attrs(attrs).private_len
    if given and len(given) != expected_len:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_VALUE is not {expected_len} bytes long")
    if given and bytes(given) != material[CKA_VALUE]:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE is not the private key CKA_SEED expands to")
    return {CKA_VALUE: material[CKA_VALUE], CKA_PUBLIC_KEY_INFO: material[CKA_PUBLIC_KEY_INFO]}
