"""Key material: PKCS#11 attributes <-> pyca/cryptography key objects.

Every asymmetric family (rsa, ec, eddsa, derive, wrap) goes through here so that there is
one place that knows how ``CKA_EC_PARAMS`` names a curve, how ``CKA_EC_POINT`` is wrapped,
which CRT values an RSA key may omit, and how a key becomes a SubjectPublicKeyInfo.

Attribute dicts are the typed dicts of the architecture (``CKA_* -> bool | int | bytes``).
Parsed keys are kept in ``view.cache`` (see ``registry.KeyView``) so the operation path never
parses twice.

Spec references: PKCS#11 3.0 §2.1.2-2.1.3 (RSA key objects), §2.3.3-2.3.10 (EC, Edwards and
Montgomery key objects; CKA_EC_PARAMS is a DER ``Parameters`` CHOICE of ecParameters, oId or
curveName; CKA_EC_POINT is DER ``ECPoint`` = OCTET STRING), §2.3 introduction (error codes
for unsupported curves: CKR_CURVE_NOT_SUPPORTED, bad representation: CKR_DOMAIN_PARAMS_INVALID).
"""

from __future__ import annotations

import functools

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from .. import der
from ..errors import CryptokiError
from ..spec import (
    CKA_CLASS,
    CKA_COEFFICIENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_KEY_TYPE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_PRIVATE_EXPONENT,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKK_RSA,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_WRAPPED_KEY_INVALID,
)
from . import ffc
from . import pqc_keys, slhdsa_keys

_log = logging.getLogger(__name__)

_PRIVATE_CACHE = "keys.private"
_PUBLIC_CACHE = "keys.public"


# --------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Curve:
    """One supported curve: what CKA_EC_PARAMS may call it and what pyca calls it.

    ``bits`` is the field size in bits, the unit of ulMin/MaxKeySize for EC mechanisms;
    ``size`` is the byte length of a coordinate / scalar / raw key.
    """

    key_type: int
    oid: str
    names: tuple[str, ...]
    bits: int
    size: int
    pyca: Any  # ec.EllipticCurve subclass, or the Edwards/Montgomery private key class


CURVES: tuple[Curve, ...] = (
    # P-192 and P-224: legacy strengths, still what older clients and suites use (SoftHSM2 has them)
    Curve(CKK_EC, "1.2.840.10045.3.1.1", ("secp192r1", "prime192v1", "p-192", "nistp192"), 192, 24, ec.SECP192R1),
    Curve(CKK_EC, "1.3.132.0.33", ("secp224r1", "p-224", "nistp224"), 224, 28, ec.SECP224R1),
    Curve(CKK_EC, "1.2.840.10045.3.1.7", ("secp256r1", "prime256v1", "p-256", "nistp256"), 256, 32, ec.SECP256R1),
    Curve(CKK_EC, "1.3.132.0.34", ("secp384r1", "prime384v1", "p-384", "nistp384"), 384, 48, ec.SECP384R1),
    Curve(CKK_EC, "1.3.132.0.35", ("secp521r1", "prime521v1", "p-521", "nistp521"), 521, 66, ec.SECP521R1),
    Curve(CKK_EC, "1.3.132.0.10", ("secp256k1",), 256, 32, ec.SECP256K1),
    Curve(CKK_EC_EDWARDS, "1.3.101.112", ("edwards25519", "ed25519"), 255, 32, ed25519.Ed25519PrivateKey),
    Curve(CKK_EC_EDWARDS, "1.3.101.113", ("edwards448", "ed448"), 448, 57, ed448.Ed448PrivateKey),
    Curve(CKK_EC_MONTGOMERY, "1.3.101.110", ("curve25519", "x25519"), 255, 32, x25519.X25519PrivateKey),
    Curve(CKK_EC_MONTGOMERY, "1.3.101.111", ("curve448", "x448"), 448, 56, x448.X448PrivateKey),
)
_BY_OID = {c.oid: c for c in CURVES}
_BY_NAME = {n: c for c in CURVES for n in c.names}
_BY_PYCA_EC = {c.pyca.name: c for c in CURVES if c.key_type == CKK_EC}


def _error(ckr: int, why: str) -> CryptokiError:
    _log.debug("key material rejected: %s", why)
    return CryptokiError(ckr, why)


# --------------------------------------------------------------------------- DER (the codec: ..der)


@functools.lru_cache(maxsize=64)
def encode_oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER for a dotted string (a handful of curve OIDs: memoized)."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return der.tlv(der.OID, bytes(body))


def _decode_oid(body: bytes) -> str:
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs or body[-1] & 0x80:
        raise ValueError("truncated OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def curve_from_params(ec_params: bytes) -> Curve:
    """The curve CKA_EC_PARAMS names, as the oId or the curveName choice.

    Unknown curve -> CKR_CURVE_NOT_SUPPORTED; explicit ecParameters, implicitlyCA or
    garbage -> CKR_DOMAIN_PARAMS_INVALID (spec §2.3, "unsupported representation").
    Encodings that named a curve are remembered (a handful in practice; errors are not).
    """
    ec_params = bytes(ec_params)
    curve = _CURVE_OF_PARAMS.get(ec_params)
    if curve is None:
        curve = _parse_curve_params(ec_params)
        if len(_CURVE_OF_PARAMS) < _CURVE_MEMO_MAX:
            _CURVE_OF_PARAMS[ec_params] = curve
    return curve


_CURVE_OF_PARAMS: dict[bytes, Curve] = {}
_CURVE_MEMO_MAX = 64  # bounded: curveName strings are the caller's (case, padding)


def _parse_curve_params(ec_params: bytes) -> Curve:
    element = der.read_one(ec_params)
    if element is None:
        raise _error(CKR_DOMAIN_PARAMS_INVALID, "CKA_EC_PARAMS is not one DER element")
    tag, body = element
    if tag == 0x06:
        try:
            oid = _decode_oid(body)
        except ValueError:
            raise _error(CKR_DOMAIN_PARAMS_INVALID, "CKA_EC_PARAMS: malformed OID") from None
        curve = _BY_OID.get(oid)
        if curve is None:
            raise _error(CKR_CURVE_NOT_SUPPORTED, f"curve OID {oid} not supported")
        return curve
    if tag in (0x13, 0x0C):  # PrintableString (spec), UTF8String (lenient)
        name = body.decode("ascii", "replace").strip().lower()
        curve = _BY_NAME.get(name)
        if curve is None:
            raise _error(CKR_CURVE_NOT_SUPPORTED, f"curve name {name!r} not supported")
        return curve
    raise _error(CKR_DOMAIN_PARAMS_INVALID, f"CKA_EC_PARAMS choice with tag {tag:#x} not supported")


def ec_params_der(curve: Curve) -> bytes:
    """CKA_EC_PARAMS for ``curve`` as we emit it: the oId choice."""
    return encode_oid(curve.oid)


def unwrap_ec_point(point: bytes, curve: Curve) -> bytes:
    """The raw point from CKA_EC_POINT given raw or as a DER OCTET STRING.

    Clients disagree (OpenSSL's pkcs11 engines send DER, some older tools raw); we accept both
    and emit DER (DESIGN.md §3). The lengths tell them apart: a raw Weierstrass point is
    1+size or 1+2*size bytes, a raw Edwards/Montgomery key exactly ``size`` bytes.
    """
    point = bytes(point)
    if curve.key_type == CKK_EC:
        raw_lengths = (1 + curve.size, 1 + 2 * curve.size)
    else:
        raw_lengths = (curve.size,)
    element = der.read_one(point)
    if element is not None and element[0] == 0x04 and len(element[1]) in raw_lengths:
        return element[1]
    if len(point) in raw_lengths:
        return point
    raise _error(CKR_ATTRIBUTE_VALUE_INVALID, "CKA_EC_POINT has the wrong length for its curve")


def _unwrap_private_value(value: bytes, curve: Curve) -> bytes:
    """Edwards/Montgomery CKA_VALUE: raw (spec) or, leniently, a DER OCTET STRING (RFC 8410)."""
    value = bytes(value)
    if len(value) == curve.size:
        return value
    element = der.read_one(value)
    if element is not None and element[0] == 0x04 and len(element[1]) == curve.size:
        return element[1]
    raise _error(CKR_ATTRIBUTE_VALUE_INVALID, "CKA_VALUE has the wrong length for its curve")


# --------------------------------------------------------------------------- helpers


def _int(attrs: Mapping[int, Any], cka: int, required: bool = True) -> int | None:
    value = attrs.get(cka)
    if value is None or value == b"":
        if required:
            raise _error(CKR_TEMPLATE_INCOMPLETE, f"attribute {cka:#x} missing")
        return None
    return int.from_bytes(bytes(value), "big")


def int_bytes(n: int, length: int = 0) -> bytes:
    """A PKCS#11 big integer: big-endian, minimal unless ``length`` asks for padding."""
    return n.to_bytes(max(length, (n.bit_length() + 7) // 8, 1), "big")


def _key_type(attrs: Mapping[int, Any]) -> int:
    kt = attrs.get(CKA_KEY_TYPE)
    if kt is None:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE missing")
    return int(kt)


def _curve_of(attrs: Mapping[int, Any], key_type: int) -> Curve:
    params = attrs.get(CKA_EC_PARAMS)
    if not params:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_EC_PARAMS missing")
    curve = curve_from_params(params)
    if curve.key_type != key_type:
        # spec §2.3.7/§2.3.8: Edwards/Montgomery curves only with their own key types
        raise _error(CKR_CURVE_NOT_SUPPORTED, f"curve {curve.names[0]} is not for key type {key_type:#x}")
    return curve


def curve_of_key(key: Any) -> Curve:
    """The :class:`Curve` of a pyca EC/Edwards/Montgomery key (private or public)."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        curve = _BY_PYCA_EC.get(key.curve.name)
        if curve is None:
            raise _error(CKR_CURVE_NOT_SUPPORTED, f"curve {key.curve.name} not supported")
        return curve
    for cls, oid in (
        ((ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey), "1.3.101.112"),
        ((ed448.Ed448PrivateKey, ed448.Ed448PublicKey), "1.3.101.113"),
        ((x25519.X25519PrivateKey, x25519.X25519PublicKey), "1.3.101.110"),
        ((x448.X448PrivateKey, x448.X448PublicKey), "1.3.101.111"),
    ):
        if isinstance(key, cls):
            return _BY_OID[oid]
    raise _error(CKR_KEY_TYPE_INCONSISTENT, f"not an EC key: {type(key).__name__}")


# --------------------------------------------------------------------------- RSA

RSA_MIN_BITS = 1024
"""The smallest modulus the RSA mechanisms use (C_GetMechanismInfo ulMinKeySize)."""
RSA_MAX_BITS = 16384
"""The largest modulus any RSA key may have (C_GetMechanismInfo ulMaxKeySize, and OpenSSL's
OPENSSL_RSA_MAX_MODULUS_BITS): checked when a key enters (C_CreateObject, C_UnwrapKey) and
when one is loaded, because a 1-Mbit public key costs ~10 s per operation (issue 15,
item 10) and a huge private key's consistency checks cost more."""


def check_rsa_bits(bits: int, ckr: int = CKR_KEY_SIZE_RANGE) -> None:
    """A modulus over ``RSA_MAX_BITS`` is refused with ``ckr``: where a key comes in
    (C_CreateObject, C_UnwrapKey) CKR_ATTRIBUTE_VALUE_INVALID, the code their "Return
    values" lists have for a CKA_MODULUS this token cannot hold; where a stored key is used
    (C_*Init) CKR_KEY_SIZE_RANGE (§5.1: "the supplied key's size is outside the range").
    Small moduli are refused per use by the mechanisms (``ulMinKeySize``), not here."""
    if bits > RSA_MAX_BITS:
        raise _error(ckr, f"RSA modulus of {bits} bits (the maximum is {RSA_MAX_BITS})")


def _rsa_modulus(attrs: Mapping[int, Any], ckr: int = CKR_KEY_SIZE_RANGE) -> int:
    """CKA_MODULUS, within ``RSA_MAX_BITS``; every other RSA integer given must be no longer
    than the modulus (a 16 MiB CKA_PRIME_1 would make ``p * q`` the slow part)."""
    n = _int(attrs, CKA_MODULUS)
    assert n is not None
    check_rsa_bits(n.bit_length(), ckr)
    for cka in _RSA_COMPONENTS:
        value = attrs.get(cka)
        if value is not None and len(value) > (RSA_MAX_BITS + 7) // 8 + 1:
            raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"RSA attribute {cka:#x} longer than any modulus")
    return n


_RSA_COMPONENTS = (CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1,
                   CKA_EXPONENT_2, CKA_COEFFICIENT)


def _rsa_private(attrs: Mapping[int, Any]) -> rsa.RSAPrivateKey:
    """RSA private key from attributes; missing CRT values are computed (spec §2.1.3 makes
    only CKA_MODULUS and CKA_PRIVATE_EXPONENT mandatory)."""
    n = _rsa_modulus(attrs)
    d = _int(attrs, CKA_PRIVATE_EXPONENT)
    e = _int(attrs, CKA_PUBLIC_EXPONENT, required=False)
    p = _int(attrs, CKA_PRIME_1, required=False)
    q = _int(attrs, CKA_PRIME_2, required=False)
    try:
        if not (p and q):
            if not e:
                raise _error(CKR_TEMPLATE_INCOMPLETE, "RSA private key needs CKA_PUBLIC_EXPONENT or the primes")
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        if p * q != n:
            raise _error(CKR_ATTRIBUTE_VALUE_INVALID, "RSA primes do not multiply to the modulus")
        if not e:
            e = pow(d, -1, (p - 1) * (q - 1))
        dmp1 = _int(attrs, CKA_EXPONENT_1, required=False) or rsa.rsa_crt_dmp1(d, p)
        dmq1 = _int(attrs, CKA_EXPONENT_2, required=False) or rsa.rsa_crt_dmq1(d, q)
        iqmp = _int(attrs, CKA_COEFFICIENT, required=False) or rsa.rsa_crt_iqmp(p, q)
        numbers = rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, rsa.RSAPublicNumbers(e, n))
        return numbers.private_key()
    except CryptokiError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"RSA private key does not parse: {exc}") from None


def _rsa_public(attrs: Mapping[int, Any]) -> rsa.RSAPublicKey:
    n = _rsa_modulus(attrs)
    e = _int(attrs, CKA_PUBLIC_EXPONENT)
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"RSA public key does not parse: {exc}") from None


# --------------------------------------------------------------------------- EC family


def _ec_private(attrs: Mapping[int, Any], key_type: int) -> Any:
    curve = _curve_of(attrs, key_type)
    value = attrs.get(CKA_VALUE)
    if not value:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE missing")
    try:
        if key_type == CKK_EC:
            return ec.derive_private_key(int.from_bytes(bytes(value), "big"), curve.pyca())
        return curve.pyca.from_private_bytes(_unwrap_private_value(value, curve))
    except CryptokiError:
        raise
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"EC private value invalid: {exc}") from None


_PUBLIC_CLASS = {
    "1.3.101.112": ed25519.Ed25519PublicKey,
    "1.3.101.113": ed448.Ed448PublicKey,
    "1.3.101.110": x25519.X25519PublicKey,
    "1.3.101.111": x448.X448PublicKey,
}


def _ec_public(attrs: Mapping[int, Any], key_type: int) -> Any:
    curve = _curve_of(attrs, key_type)
    point = attrs.get(CKA_EC_POINT)
    if not point:
        raise _error(CKR_TEMPLATE_INCOMPLETE, "CKA_EC_POINT missing")
    raw = unwrap_ec_point(point, curve)
    try:
        if key_type == CKK_EC:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve.pyca(), raw)
        return _PUBLIC_CLASS[curve.oid].from_public_bytes(raw)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise _error(CKR_ATTRIBUTE_VALUE_INVALID, f"EC point invalid (not on the curve?): {exc}") from None


_PRIVATE_LOADERS = {
    CKK_RSA: lambda a: _rsa_private(a),
    CKK_EC: lambda a: _ec_private(a, CKK_EC),
    CKK_EC_EDWARDS: lambda a: _ec_private(a, CKK_EC_EDWARDS),
    CKK_EC_MONTGOMERY: lambda a: _ec_private(a, CKK_EC_MONTGOMERY),
    **{kt: ffc.parse_private for kt in ffc.KEY_TYPES},  # DSA, DH (finite-field material: ffc.py)
    **{kt: pqc_keys.parse_private for kt in pqc_keys.KEY_TYPES},  # ML-DSA, ML-KEM (3.2)
    **{kt: slhdsa_keys.parse_private for kt in slhdsa_keys.KEY_TYPES},  # SLH-DSA (3.2, pqcrypto)
}
_PUBLIC_LOADERS = {
    CKK_RSA: lambda a: _rsa_public(a),
    CKK_EC: lambda a: _ec_public(a, CKK_EC),
    CKK_EC_EDWARDS: lambda a: _ec_public(a, CKK_EC_EDWARDS),
    CKK_EC_MONTGOMERY: lambda a: _ec_public(a, CKK_EC_MONTGOMERY),
    **{kt: ffc.parse_public for kt in ffc.KEY_TYPES},  # DSA, DH (finite-field material: ffc.py)
    **{kt: pqc_keys.parse_public for kt in pqc_keys.KEY_TYPES},  # ML-DSA, ML-KEM (3.2)
    **{kt: slhdsa_keys.parse_public for kt in slhdsa_keys.KEY_TYPES},  # SLH-DSA (3.2, pqcrypto)
}


def parse_private(attrs: Mapping[int, Any]) -> Any:
    """A pyca private key from a private key object's attributes (no caching)."""
    loader = _PRIVATE_LOADERS.get(_key_type(attrs))
    if loader is None:
        raise _error(CKR_KEY_TYPE_INCONSISTENT, "not an asymmetric key type")
    return loader(attrs)


def parse_public(attrs: Mapping[int, Any]) -> Any:
    """A pyca public key from a public key object's attributes (no caching)."""
    loader = _PUBLIC_LOADERS.get(_key_type(attrs))
    if loader is None:
        raise _error(CKR_KEY_TYPE_INCONSISTENT, "not an asymmetric key type")
    return loader(attrs)


def load_private(view: Any) -> Any:
    """The pyca private key of a private key object, parsed once per object (view.cache)."""
    key = view.cache.get(_PRIVATE_CACHE)
    if key is None:
        key = parse_private(view.attrs)
        view.cache[_PRIVATE_CACHE] = key
    return key


def load_public(view: Any) -> Any:
    """The pyca public key of a public key object, parsed once per object.

    A private key object is accepted too (its public half is derived): some clients verify
    with the handle they signed with.
    """
    key = view.cache.get(_PUBLIC_CACHE)
    if key is None:
        if view.attrs.get(CKA_CLASS) == CKO_PRIVATE_KEY:
            key = load_private(view).public_key()
        else:
            key = parse_public(view.attrs)
        view.cache[_PUBLIC_CACHE] = key
    return key


# --------------------------------------------------------------------------- material out


def public_key_info(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a pyca key (CKA_PUBLIC_KEY_INFO, PKCS#11 3.0 §4.8)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _raw_public(public: Any, curve: Curve) -> bytes:
    if curve.key_type == CKK_EC:
        return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


#: DER AlgorithmIdentifier of id-ecPublicKey (RFC 5480) with each named curve, per curve OID.
_EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"


def _ec_spki_prefix(curve: Curve, point_len: int) -> bytes:
    """Everything of a SubjectPublicKeyInfo before the point (RFC 5480 §2: namedCurve
    parameters, the uncompressed point as the BIT STRING with no unused bits); one per
    curve and point length, kept (keyed by the OID string: hashing the frozen ``Curve``
    dataclass costs more than building the prefix)."""
    key = (curve.oid, point_len)
    prefix = _SPKI_PREFIX.get(key)
    if prefix is None:
        prefix = _SPKI_PREFIX[key] = _build_spki_prefix(curve, point_len)
    return prefix


_SPKI_PREFIX: dict[tuple[str, int], bytes] = {}


def _build_spki_prefix(curve: Curve, point_len: int) -> bytes:
    algorithm = der.tlv(der.SEQUENCE, encode_oid(_EC_PUBLIC_KEY_OID) + encode_oid(curve.oid))
    bit_string_head = bytes([der.BIT_STRING]) + der.length(point_len + 1) + b"\x00"
    body_len = len(algorithm) + len(bit_string_head) + point_len
    return bytes([der.SEQUENCE]) + der.length(body_len) + algorithm + bit_string_head


def _ec_public_parts(public: ec.EllipticCurvePublicKey, curve: Curve) -> tuple[bytes, bytes]:
    """(uncompressed point, SubjectPublicKeyInfo DER) of a Weierstrass key: one
    serialization, the SPKI around it built from the curve's constant prefix (the same bytes
    pyca/OpenSSL emit; tests/attributes/test_key_material.py compares them)."""
    point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return point, _ec_spki_prefix(curve, len(point)) + point


def key_pair_material(key: Any) -> tuple[dict[int, Any], dict[int, Any]]:
    """(public, private) object attributes of a freshly generated private key: the same
    dicts as ``public_material(key), private_material(key)``, with the public point and the
    SubjectPublicKeyInfo (which both objects carry) computed once."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = curve_of_key(key)
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return ec_pair_material(curve, int_bytes(key.private_numbers().private_value, curve.size), point)
    return public_material(key), private_material(key)


def ec_pair_material(curve: Curve, scalar: bytes, point: bytes) -> tuple[dict[int, Any], dict[int, Any]]:
    """(public, private) attributes of a Weierstrass key pair from its raw parts: the
    private scalar (``curve.size`` bytes) and the uncompressed point, whichever generator
    made them (pyca, or the library's C helper: mechanisms/native.py)."""
    spki = _ec_spki_prefix(curve, len(point)) + point
    params = ec_params_der(curve)
    public = {CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: params, CKA_EC_POINT: der.tlv(der.OCTET_STRING, point),
              CKA_PUBLIC_KEY_INFO: spki}
    private = {CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: params, CKA_VALUE: scalar, CKA_PUBLIC_KEY_INFO: spki}
    return public, private


def public_material(key: Any) -> dict[int, Any]:
    """The attributes of a public key object holding ``key`` (private or public pyca key)."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, ffc.PUBLIC_TYPES):
        return ffc.public_material(public)
    if pqc_keys.is_pqc_key(public):
        return pqc_keys.public_material(public)
    if slhdsa_keys.is_slh_key(public):
        return slhdsa_keys.public_material(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        curve = curve_of_key(public)
        point, spki = _ec_public_parts(public, curve)
        return {CKA_KEY_TYPE: CKK_EC, CKA_EC_PARAMS: ec_params_der(curve), CKA_EC_POINT: der.tlv(der.OCTET_STRING, point),
                CKA_PUBLIC_KEY_INFO: spki}
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {
            CKA_KEY_TYPE: CKK_RSA,
            CKA_MODULUS: int_bytes(numbers.n),
            CKA_PUBLIC_EXPONENT: int_bytes(numbers.e),
            CKA_MODULUS_BITS: public.key_size,
            CKA_PUBLIC_KEY_INFO: public_key_info(public),
        }
    curve = curve_of_key(public)
    return {
        CKA_KEY_TYPE: curve.key_type,
        CKA_EC_PARAMS: ec_params_der(curve),
        CKA_EC_POINT: der.tlv(der.OCTET_STRING, _raw_public(public, curve)),
        CKA_PUBLIC_KEY_INFO: public_key_info(public),
    }


def private_material(key: Any) -> dict[int, Any]:
    """The attributes of a private key object holding ``key`` (generate, unwrap, import)."""
    if isinstance(key, ffc.PRIVATE_TYPES):
        return ffc.private_material(key)
    if pqc_keys.is_pqc_key(key):
        return pqc_keys.private_material(key)
    if slhdsa_keys.is_slh_key(key):
        return slhdsa_keys.private_material(key)
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.private_numbers()
        pub = numbers.public_numbers
        return {
            CKA_KEY_TYPE: CKK_RSA,
            CKA_MODULUS: int_bytes(pub.n),
            CKA_PUBLIC_EXPONENT: int_bytes(pub.e),
            CKA_PRIVATE_EXPONENT: int_bytes(numbers.d),
            CKA_PRIME_1: int_bytes(numbers.p),
            CKA_PRIME_2: int_bytes(numbers.q),
            CKA_EXPONENT_1: int_bytes(numbers.dmp1),
            CKA_EXPONENT_2: int_bytes(numbers.dmq1),
            CKA_COEFFICIENT: int_bytes(numbers.iqmp),
            CKA_PUBLIC_KEY_INFO: public_key_info(key),
        }
    curve = curve_of_key(key)
    if curve.key_type == CKK_EC:
        value = int_bytes(key.private_numbers().private_value, curve.size)
        spki = _ec_public_parts(key.public_key(), curve)[1]
    else:
        value = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        spki = public_key_info(key)
    return {
        CKA_KEY_TYPE: curve.key_type,
        CKA_EC_PARAMS: ec_params_der(curve),
        CKA_VALUE: value,
        CKA_PUBLIC_KEY_INFO: spki,
    }


_ASYMMETRIC = (CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY)


def check_import(attrs: Mapping[int, Any]) -> dict[int, Any]:
    """Validate the material of a key object given to C_CreateObject; return derived values.

    Parses the key (CKR_ATTRIBUTE_VALUE_INVALID when it does not, e.g. a point off the
    curve; CKR_CURVE_NOT_SUPPORTED / CKR_DOMAIN_PARAMS_INVALID for the curve) and returns
    what the object gains: CKA_PUBLIC_KEY_INFO, CKA_MODULUS_BITS for RSA public keys, the
    DER form of CKA_EC_POINT, computed RSA CRT values the template left out. Secret keys and
    other classes are not asymmetric material: an empty dict.
    """
    cls = attrs.get(CKA_CLASS)
    key_type = attrs.get(CKA_KEY_TYPE)
    if key_type in ffc.KEY_TYPES:  # DSA, DH: keys and domain parameters (ffc.py)
        return ffc.check_import(attrs)
    if cls in (CKO_PUBLIC_KEY, CKO_PRIVATE_KEY) and key_type in pqc_keys.KEY_TYPES:
        return pqc_keys.check_import(attrs, cls == CKO_PUBLIC_KEY)
    if cls in (CKO_PUBLIC_KEY, CKO_PRIVATE_KEY) and key_type in slhdsa_keys.KEY_TYPES:
        return slhdsa_keys.check_import(attrs, cls == CKO_PUBLIC_KEY)
    if cls not in (CKO_PUBLIC_KEY, CKO_PRIVATE_KEY) or key_type not in _ASYMMETRIC:
        return {}
    if key_type == CKK_RSA and attrs.get(CKA_MODULUS):
        _rsa_modulus(attrs, CKR_ATTRIBUTE_VALUE_INVALID)  # C_CreateObject's code, before any parsing
    if cls == CKO_PUBLIC_KEY:
        material = public_material(parse_public(attrs))
        always = (CKA_PUBLIC_KEY_INFO, CKA_MODULUS_BITS, CKA_EC_POINT)  # EC_POINT: stored as DER
        if_missing: tuple[int, ...] = ()
    else:
        material = private_material(parse_private(attrs))
        always = (CKA_PUBLIC_KEY_INFO,)
        if_missing = (CKA_PUBLIC_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT)
    extra = {cka: material[cka] for cka in always if cka in material}
    extra.update({cka: material[cka] for cka in if_missing if cka in material and not attrs.get(cka)})
    return extra


def to_pkcs8(attrs: Mapping[int, Any]) -> bytes:
    """PKCS#8 PrivateKeyInfo DER of a private key object (CKM_AES_KEY_WRAP_PAD etc. wrap this,
    spec §2.7 "Wrapping/unwrapping private keys")."""
    return parse_private(attrs).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def from_pkcs8(der: bytes) -> dict[int, Any]:
    """The private key attributes of a PKCS#8 PrivateKeyInfo (C_UnwrapKey).

    Anything that does not parse, or a key type we do not serve, is CKR_WRAPPED_KEY_INVALID;
    an EC key on a curve we do not serve is CKR_CURVE_NOT_SUPPORTED.
    """
    try:
        # parsed unchecked first: an RSA key's consistency check costs its size cubed, so the
        # modulus is checked against RSA_MAX_BITS before it runs
        key = serialization.load_der_private_key(bytes(der), password=None, unsafe_skip_rsa_key_validation=True)
        if isinstance(key, rsa.RSAPrivateKey):
            check_rsa_bits(key.key_size, CKR_ATTRIBUTE_VALUE_INVALID)
            key = serialization.load_der_private_key(bytes(der), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        key = pqc_keys.from_pkcs8(der) or slhdsa_keys.from_pkcs8(der)  # ML-KEM-512, SLH-DSA: not pyca's
        if key is None:
            raise _error(CKR_WRAPPED_KEY_INVALID, f"unwrapped data is not a PKCS#8 key: {exc}") from None
    if isinstance(key, ffc.PRIVATE_TYPES):
        return ffc.unwrapped(key)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
                            ed448.Ed448PrivateKey, x25519.X25519PrivateKey, x448.X448PrivateKey)) \
            and not pqc_keys.is_pqc_key(key) and not slhdsa_keys.is_slh_key(key):
        raise _error(CKR_WRAPPED_KEY_INVALID, f"unwrapped key type {type(key).__name__} not supported")
    return private_material(key)  # an EC key on another curve: CKR_CURVE_NOT_SUPPORTED (spec §2.3)


def key_size(view: Any) -> int:
    """The key's size in the unit of CK_MECHANISM_INFO: bits for RSA (modulus) and the EC
    families (field size: 255 for curve25519/edwards25519), bytes for secret keys."""
    attrs = view.attrs
    key_type = attrs.get(CKA_KEY_TYPE)
    if key_type == CKK_RSA:
        bits = attrs.get(CKA_MODULUS_BITS)
        if bits:
            return int(bits)
        modulus = attrs.get(CKA_MODULUS)
        return int.from_bytes(bytes(modulus), "big").bit_length() if modulus else 0
    if key_type in pqc_keys.KEY_TYPES:  # 3.2 §6.67/§6.68: the public key's length in bytes
        return pqc_keys.of_attrs(attrs).public_len
    if key_type in slhdsa_keys.KEY_TYPES:  # §6.69 likewise
        return slhdsa_keys.parameter_set(attrs.get(slhdsa_keys.CKA_PARAMETER_SET)).public_len
    if key_type in ffc.KEY_TYPES:
        return ffc.key_size(attrs)
    if key_type in (CKK_EC, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY):
        return curve_from_params(attrs.get(CKA_EC_PARAMS) or b"").bits
    value = attrs.get(CKA_VALUE)
    if value is not None:
        return len(value)
    return int(attrs.get(CKA_VALUE_LEN) or 0)
