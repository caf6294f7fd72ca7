"""Finite-field key material (DSA, PKCS#3 Diffie-Hellman): PKCS#11 attributes <-> pyca keys.

``keys.py`` dispatches here for CKK_DSA and CKK_DH (its loader tables, ``check_import``,
``key_size``); the dsa and dh families use the domain-parameter helpers directly.

Spec (PKCS#11 3.0 §2.2 DSA, §2.5 PKCS#3 Diffie-Hellman; v2.40 tables):
* DSA public key: CKA_PRIME, CKA_SUBPRIME, CKA_BASE (footnotes 1, 3: from the public template
  at generation), CKA_VALUE = y (1, 4). Private key: the same parameters (1, 4, 6) and
  CKA_VALUE = x (1, 4, 6, 7). Domain parameters: CKA_PRIME/SUBPRIME/BASE (1, 4),
  CKA_PRIME_BITS (2, 3).
* DH public key: CKA_PRIME, CKA_BASE (1, 3), CKA_VALUE = y (1, 4). Private key: CKA_PRIME,
  CKA_BASE (1, 4, 6), CKA_VALUE = x (1, 4, 6, 7), CKA_VALUE_BITS (2, 6: the token
  contributes it). Domain parameters: CKA_PRIME, CKA_BASE (1, 4), CKA_PRIME_BITS (2, 3).
* Every value is a big integer: CKA_VALUE is emitted without leading zero bytes here (the
  attribute codec normalises CKA_PRIME/SUBPRIME/BASE by type; CKA_VALUE is an octet string
  for other key types, so its normal form is the key type's business, issue 23 item 6).

Sizes (``ulMin/MaxKeySize`` of the mechanisms, bits of p), checked wherever a prime comes in:
DSA 1024-3072 (FIPS 186-4's L values; pyca also takes 4096-bit p with a 256-bit q, which is
no FIPS size and is refused here), q of 160, 224 or 256 bits (pyca's rule); DH 512-10000
(pyca's minimum, OpenSSL's OPENSSL_DH_MAX_MODULUS_BITS).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa

from ..errors import CryptokiError
from ..spec_ints import (
    CKA_BASE,
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_PRIME,
    CKA_PRIME_BITS,
    CKA_PUBLIC_KEY_INFO,
    CKA_SUBPRIME,
    CKA_VALUE,
    CKA_VALUE_BITS,
    CKK_DH,
    CKK_DSA,
    CKO_DOMAIN_PARAMETERS,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
)

# pyca deprecates finite-field DH (a CryptographyDeprecationWarning at each use, attributed to
# the calling line): silenced for our modules only, so the host's own warnings stay its own
# (and a host running with warnings as errors does not fail our DH calls).
warnings.filterwarnings("ignore", message="Diffie-Hellman over finite fields", module=r"cryptoki_shim\.")

DSA_MIN_BITS, DSA_MAX_BITS = 1024, 3072
DH_MIN_BITS, DH_MAX_BITS = 512, 10000
DSA_SUBPRIME_BITS = (160, 224, 256)

KEY_TYPES = frozenset({CKK_DSA, CKK_DH})
PUBLIC_TYPES = (dsa.DSAPublicKey, dh.DHPublicKey)
PRIVATE_TYPES = (dsa.DSAPrivateKey, dh.DHPrivateKey)
_RANGE = {CKK_DSA: (DSA_MIN_BITS, DSA_MAX_BITS), CKK_DH: (DH_MIN_BITS, DH_MAX_BITS)}
_NAME = {CKK_DSA: "DSA", CKK_DH: "DH"}


def int_bytes(n: int) -> bytes:
    """A PKCS#11 big integer: unsigned big-endian, no leading zero byte (one byte for 0)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def _int(attrs: Mapping[int, Any], cka: int, what: str) -> int:
    value = attrs.get(cka)
    if not value:
        raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, f"{what}: attribute {cka:#x} missing")
    return int.from_bytes(bytes(value), "big")


def check_prime_bits(key_type: int, bits: int, ckr: int) -> None:
    """The size rule of the module docstring: a p outside the range is ``ckr``
    (CKR_ATTRIBUTE_VALUE_INVALID where a key or parameters come in, CKR_KEY_SIZE_RANGE where
    a size is asked for or a key is generated)."""
    lo, hi = _RANGE[key_type]
    if not lo <= bits <= hi:
        raise CryptokiError(ckr, f"{_NAME[key_type]} prime of {bits} bits (this token: {lo}-{hi})")


# --------------------------------------------------------------------------- domain parameters


def dsa_parameters(attrs: Mapping[int, Any], ckr: int) -> dsa.DSAParameterNumbers:
    """CKA_PRIME/SUBPRIME/BASE as pyca parameter numbers; missing -> CKR_TEMPLATE_INCOMPLETE,
    a size or value pyca refuses -> ``ckr``. The prime's length is checked before any
    arithmetic on it."""
    p = _int(attrs, CKA_PRIME, "DSA")
    check_prime_bits(CKK_DSA, p.bit_length(), ckr)
    q = _int(attrs, CKA_SUBPRIME, "DSA")
    g = _int(attrs, CKA_BASE, "DSA")
    # FIPS 186-4 §A.1.1.1/§A.2.2's structural checks (pyca checks only the sizes, OpenSSL
    # fails later with an internal error): q divides p - 1, g has order q. Primality of p
    # and q is not tested (a modexp each here; a primality test of p would cost more).
    if q.bit_length() not in DSA_SUBPRIME_BITS or (p - 1) % q or not 1 < g < p or pow(g, q, p) != 1:
        raise CryptokiError(ckr, "DSA subprime or base invalid")
    numbers = dsa.DSAParameterNumbers(p, q, g)
    try:
        numbers.parameters()
    except ValueError as exc:
        raise CryptokiError(ckr, f"DSA domain parameters invalid: {exc}") from None
    return numbers


def dh_parameters(attrs: Mapping[int, Any], ckr: int) -> dh.DHParameterNumbers:
    """CKA_PRIME/BASE as pyca parameter numbers (PKCS#3: no subgroup order), as
    ``dsa_parameters``. OpenSSL checks that p is a prime it can use."""
    p = _int(attrs, CKA_PRIME, "DH")
    check_prime_bits(CKK_DH, p.bit_length(), ckr)
    g = _int(attrs, CKA_BASE, "DH")
    if not 1 < g < p - 1:
        raise CryptokiError(ckr, "DH base out of range")
    numbers = dh.DHParameterNumbers(p, g)
    try:
        numbers.parameters()
    except ValueError as exc:
        raise CryptokiError(ckr, f"DH domain parameters invalid: {exc}") from None
    return numbers


def domain_material(key_type: int, numbers: Any) -> dict[int, Any]:
    """The attributes of a domain parameters object (CKO_DOMAIN_PARAMETERS) of ``numbers``."""
    out = {CKA_CLASS: CKO_DOMAIN_PARAMETERS, CKA_KEY_TYPE: key_type, CKA_PRIME: int_bytes(numbers.p),
           CKA_BASE: int_bytes(numbers.g), CKA_PRIME_BITS: numbers.p.bit_length()}
    if key_type == CKK_DSA:
        out[CKA_SUBPRIME] = int_bytes(numbers.q)
    return out


def _parameters_of(attrs: Mapping[int, Any], ckr: int) -> Any:
    if attrs.get(CKA_KEY_TYPE) == CKK_DSA:
        return dsa_parameters(attrs, ckr)
    return dh_parameters(attrs, ckr)


# --------------------------------------------------------------------------- keys


def parse_private(attrs: Mapping[int, Any]) -> Any:
    """A pyca DSA/DH private key from a private key object's attributes. The public value
    is computed (the object does not hold it); x must lie in [1, q-1] (DSA) or [1, p-2]."""
    params = _parameters_of(attrs, CKR_ATTRIBUTE_VALUE_INVALID)
    x = _int(attrs, CKA_VALUE, "private key")
    try:
        if isinstance(params, dsa.DSAParameterNumbers):
            if not 0 < x < params.q:
                raise ValueError("x out of range")
            public = dsa.DSAPublicNumbers(pow(params.g, x, params.p), params)
            return dsa.DSAPrivateNumbers(x, public).private_key()
        if not 0 < x < params.p - 1:
            raise ValueError("x out of range")
        return dh.DHPrivateNumbers(x, dh.DHPublicNumbers(pow(params.g, x, params.p), params)).private_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"private value invalid: {exc}") from None


def parse_public(attrs: Mapping[int, Any]) -> Any:
    """A pyca DSA/DH public key from a public key object's attributes (y in [2, p-2])."""
    params = _parameters_of(attrs, CKR_ATTRIBUTE_VALUE_INVALID)
    y = _int(attrs, CKA_VALUE, "public key")
    if not 1 < y < params.p - 1:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, "public value out of range")
    try:
        if isinstance(params, dsa.DSAParameterNumbers):
            return dsa.DSAPublicNumbers(y, params).public_key()
        return dh.DHPublicNumbers(y, params).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"public value invalid: {exc}") from None


def _common(numbers: Any) -> dict[int, Any]:
    """Key type and domain parameters of a key object holding a key with ``numbers``."""
    if isinstance(numbers, dsa.DSAParameterNumbers):
        return {CKA_KEY_TYPE: CKK_DSA, CKA_PRIME: int_bytes(numbers.p), CKA_SUBPRIME: int_bytes(numbers.q),
                CKA_BASE: int_bytes(numbers.g)}
    return {CKA_KEY_TYPE: CKK_DH, CKA_PRIME: int_bytes(numbers.p), CKA_BASE: int_bytes(numbers.g)}


def _spki(public: Any) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_material(key: Any) -> dict[int, Any]:
    """The attributes of a public key object holding ``key`` (a pyca DSA/DH key, either half)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    numbers = public.public_numbers()
    return {**_common(numbers.parameter_numbers), CKA_VALUE: int_bytes(numbers.y), CKA_PUBLIC_KEY_INFO: _spki(public)}


def private_material(key: Any) -> dict[int, Any]:
    """The attributes of a private key object holding ``key`` (generate, unwrap, import)."""
    numbers = key.private_numbers()
    out = {**_common(numbers.public_numbers.parameter_numbers), CKA_VALUE: int_bytes(numbers.x),
           CKA_PUBLIC_KEY_INFO: _spki(key.public_key())}
    if isinstance(key, dh.DHPrivateKey):
        out[CKA_VALUE_BITS] = numbers.x.bit_length()
    return out


def unwrapped(key: Any) -> dict[int, Any]:
    """The private key attributes of a DSA/DH key from PKCS#8 (C_UnwrapKey), checked as
    C_CreateObject checks them (CKR_ATTRIBUTE_VALUE_INVALID, as ``keys.from_pkcs8`` for RSA):
    an X9.42 key's group, which is no safe prime, is refused here rather than at its use."""
    material = private_material(key)
    _parameters_of(material, CKR_ATTRIBUTE_VALUE_INVALID)  # sizes first, then the group's checks
    return material


def key_pair_material(key: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """(public, private) object attributes of a freshly generated private key."""
    return public_material(key), private_material(key)


def check_import(attrs: Mapping[int, Any]) -> dict[int, Any]:
    """C_CreateObject of a DSA/DH public key, private key or domain parameters object: the
    material is parsed (CKR_ATTRIBUTE_VALUE_INVALID if it does not; a prime outside the
    sizes of the module docstring too) and the object gains what the token computes:
    CKA_VALUE in its normal form, CKA_PUBLIC_KEY_INFO, CKA_VALUE_BITS of a DH private key,
    CKA_PRIME_BITS of domain parameters."""
    cls = attrs.get(CKA_CLASS)
    if cls == CKO_DOMAIN_PARAMETERS:
        numbers = _parameters_of(attrs, CKR_ATTRIBUTE_VALUE_INVALID)
        return {CKA_PRIME_BITS: numbers.p.bit_length()}
    if cls == CKO_PUBLIC_KEY:
        material = public_material(parse_public(attrs))
    elif cls == CKO_PRIVATE_KEY:
        material = private_material(parse_private(attrs))
    else:
        return {}
    return {t: material[t] for t in (CKA_VALUE, CKA_PUBLIC_KEY_INFO, CKA_VALUE_BITS) if t in material}


def key_size(attrs: Mapping[int, Any]) -> int:
    """Bits of p: the unit of the DSA and DH mechanisms' ulMin/MaxKeySize."""
    prime = attrs.get(CKA_PRIME)
    return int.from_bytes(bytes(prime), "big").bit_length() if prime else 0


def parameter_bits(template: Mapping[int, Any], key_type: int) -> int:
    """CKA_PRIME_BITS of a parameter generation template (footnote 3: required there),
    within the token's sizes (CKR_KEY_SIZE_RANGE)."""
    bits = template.get(CKA_PRIME_BITS)
    if bits is None:
        raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_PRIME_BITS missing from the template")
    check_prime_bits(key_type, int(bits), CKR_KEY_SIZE_RANGE)
    return int(bits)
