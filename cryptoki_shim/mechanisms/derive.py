"""Key derivation: ECDH (Weierstrass and Montgomery), HKDF, SP 800-108 KDFs and PBKDF2.

Spec: PKCS#11 3.0 §2.3.x CKM_ECDH1_DERIVE with CK_ECDH1_DERIVE_PARAMS (KDFs CKD_NULL,
CKD_SHA*_KDF = ANSI X9.63, CKD_SHA*_KDF_SP800 = SP 800-56A concatenation KDF); §2.62
CKM_HKDF_DERIVE / CKM_HKDF_DATA; §2.42 CKM_SP800_108_COUNTER_KDF / _FEEDBACK_KDF;
§2.37 CKM_PKCS5_PBKD2 (a key *generation* mechanism: the key comes from a password);
§2.43 "Miscellaneous simple key derivation mechanisms": CKM_XOR_BASE_AND_DATA,
CKM_EXTRACT_KEY_FROM_KEY and the CKM_CONCATENATE_* family; "Key derivation by data
encryption - DES & AES": CKM_AES_ECB/CBC_ENCRYPT_DATA and CKM_DES3_ECB/CBC_ENCRYPT_DATA.

``derive(entry, param, base_key, template) -> material`` returns CKA_VALUE (+CKA_VALUE_LEN
for secret keys); the core adds class, key type and the derived flags. ``template`` decides
the length via CKA_VALUE_LEN (missing where needed -> CKR_TEMPLATE_INCOMPLETE).

What a derivation may do with a protected base key — the weak mechanisms of §2.43, short
keys, the new key's SENSITIVE/EXTRACTABLE/WRAP_WITH_TRUSTED — is the core's rule, for every
mechanism at once (``core/key_management.py``, issue 15 item 2), not each function's here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from cryptography.hazmat.primitives import cmac, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from ..errors import CryptokiError
from ..spec import (
    CK_SP800_108_BYTE_ARRAY,
    CK_SP800_108_DKM_LENGTH,
    CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS,
    CK_SP800_108_ITERATION_VARIABLE,
    CK_SP800_108_OPTIONAL_COUNTER,
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKD_NULL,
    CKD_SHA1_KDF,
    CKD_SHA1_KDF_SP800,
    CKD_SHA224_KDF,
    CKD_SHA224_KDF_SP800,
    CKD_SHA256_KDF,
    CKD_SHA256_KDF_SP800,
    CKD_SHA384_KDF,
    CKD_SHA384_KDF_SP800,
    CKD_SHA3_224_KDF,
    CKD_SHA3_224_KDF_SP800,
    CKD_SHA3_256_KDF,
    CKD_SHA3_256_KDF_SP800,
    CKD_SHA3_384_KDF,
    CKD_SHA3_384_KDF_SP800,
    CKD_SHA3_512_KDF,
    CKD_SHA3_512_KDF_SP800,
    CKD_SHA512_KDF,
    CKD_SHA512_KDF_SP800,
    CKF_DERIVE,
    CKF_EC_F_P,
    CKF_EC_NAMEDCURVE,
    CKF_EC_UNCOMPRESS,
    CKF_GENERATE,
    CKF_HKDF_SALT_DATA,
    CKF_HKDF_SALT_KEY,
    CKF_HKDF_SALT_NULL,
    CKK_AES,
    CKK_DES2,
    CKK_DES3,
    CKK_EC,
    CKK_EC_MONTGOMERY,
    CKK_GENERIC_SECRET,
    CKK_HKDF,
    CKK_SHA224_HMAC,
    CKK_SHA256_HMAC,
    CKK_SHA384_HMAC,
    CKK_SHA3_224_HMAC,
    CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC,
    CKK_SHA512_HMAC,
    CKK_SHA_1_HMAC,
    CKM_AES_CBC_ENCRYPT_DATA,
    CKM_AES_CMAC,
    CKM_AES_ECB_ENCRYPT_DATA,
    CKM_CONCATENATE_BASE_AND_DATA,
    CKM_CONCATENATE_BASE_AND_KEY,
    CKM_CONCATENATE_DATA_AND_BASE,
    CKM_DES3_CBC_ENCRYPT_DATA,
    CKM_DES3_ECB_ENCRYPT_DATA,
    CKM_ECDH1_DERIVE,
    CKM_EXTRACT_KEY_FROM_KEY,
    CKM_HKDF_DATA,
    CKM_HKDF_DERIVE,
    CKM_PKCS5_PBKD2,
    CKM_SHA224_HMAC,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_512_HMAC,
    CKM_SHA512_HMAC,
    CKM_SHA_1_HMAC,
    CKM_SP800_108_COUNTER_KDF,
    CKM_SP800_108_FEEDBACK_KDF,
    CKM_XOR_BASE_AND_DATA,
    CKO_DATA,
    CKP_PKCS5_PBKD2_HMAC_SHA1,
    CKP_PKCS5_PBKD2_HMAC_SHA224,
    CKP_PKCS5_PBKD2_HMAC_SHA256,
    CKP_PKCS5_PBKD2_HMAC_SHA384,
    CKP_PKCS5_PBKD2_HMAC_SHA512,
    CKP_PKCS5_PBKD2_HMAC_SHA512_224,
    CKP_PKCS5_PBKD2_HMAC_SHA512_256,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_TEMPLATE_INCONSISTENT,
    CKZ_SALT_SPECIFIED,
)
from . import aes, des, generic
from .params import (AesCbcEncryptDataParams, DesCbcEncryptDataParams, EcdhDeriveParams, HkdfParams,
                     KeyDerivationStringData, KeyHandleParam, Pbkd2Params, Sp800108CounterFormat,
                     Sp800108DkmLengthFormat, Sp800108Params)
from .digest import HASHES
from .registry import EntryData, Family, KeyView, MechanismEntry, register

_log = logging.getLogger(__name__)


def _bad_param(why: str) -> CryptokiError:
    return CryptokiError(CKR_MECHANISM_PARAM_INVALID, why)


# --- hash tables -----------------------------------------------------------------------

# prfHashMechanism of CK_HKDF_PARAMS: a digest mechanism (§2.62): the digest family's table
HASH_BY_CKM: dict[int, type[hashes.HashAlgorithm]] = HASHES

# CK_SP800_108_PRF_TYPE: HMAC mechanisms (and CKM_AES_CMAC, handled apart) (§2.42)
HMAC_PRF: dict[int, type[hashes.HashAlgorithm]] = {
    CKM_SHA_1_HMAC: hashes.SHA1,
    CKM_SHA224_HMAC: hashes.SHA224,
    CKM_SHA256_HMAC: hashes.SHA256,
    CKM_SHA384_HMAC: hashes.SHA384,
    CKM_SHA512_HMAC: hashes.SHA512,
    CKM_SHA3_224_HMAC: hashes.SHA3_224,
    CKM_SHA3_256_HMAC: hashes.SHA3_256,
    CKM_SHA3_384_HMAC: hashes.SHA3_384,
    CKM_SHA3_512_HMAC: hashes.SHA3_512,
}

# CKD_* of CK_ECDH1_DERIVE_PARAMS: (kdf kind, hash)
ECDH_KDF: dict[int, tuple[str, type[hashes.HashAlgorithm] | None]] = {
    CKD_NULL: ("null", None),
    CKD_SHA1_KDF: ("x963", hashes.SHA1),
    CKD_SHA224_KDF: ("x963", hashes.SHA224),
    CKD_SHA256_KDF: ("x963", hashes.SHA256),
    CKD_SHA384_KDF: ("x963", hashes.SHA384),
    CKD_SHA512_KDF: ("x963", hashes.SHA512),
    CKD_SHA3_224_KDF: ("x963", hashes.SHA3_224),
    CKD_SHA3_256_KDF: ("x963", hashes.SHA3_256),
    CKD_SHA3_384_KDF: ("x963", hashes.SHA3_384),
    CKD_SHA3_512_KDF: ("x963", hashes.SHA3_512),
    CKD_SHA1_KDF_SP800: ("concat", hashes.SHA1),
    CKD_SHA224_KDF_SP800: ("concat", hashes.SHA224),
    CKD_SHA256_KDF_SP800: ("concat", hashes.SHA256),
    CKD_SHA384_KDF_SP800: ("concat", hashes.SHA384),
    CKD_SHA512_KDF_SP800: ("concat", hashes.SHA512),
    CKD_SHA3_224_KDF_SP800: ("concat", hashes.SHA3_224),
    CKD_SHA3_256_KDF_SP800: ("concat", hashes.SHA3_256),
    CKD_SHA3_384_KDF_SP800: ("concat", hashes.SHA3_384),
    CKD_SHA3_512_KDF_SP800: ("concat", hashes.SHA3_512),
}

# CKP_PKCS5_PBKD2_* (§2.37); GOSTR3411 is not offered by pyca
PBKD2_PRF: dict[int, type[hashes.HashAlgorithm]] = {
    CKP_PKCS5_PBKD2_HMAC_SHA1: hashes.SHA1,
    CKP_PKCS5_PBKD2_HMAC_SHA224: hashes.SHA224,
    CKP_PKCS5_PBKD2_HMAC_SHA256: hashes.SHA256,
    CKP_PKCS5_PBKD2_HMAC_SHA384: hashes.SHA384,
    CKP_PKCS5_PBKD2_HMAC_SHA512: hashes.SHA512,
    CKP_PKCS5_PBKD2_HMAC_SHA512_224: hashes.SHA512_224,
    CKP_PKCS5_PBKD2_HMAC_SHA512_256: hashes.SHA512_256,
}


def _result(template: Mapping[int, Any], value: bytes) -> dict[int, Any]:
    """The new key's material; a DES key gets odd parity in every byte (FIPS 46-3), as
    SoftHSM2 sets it on derived DES keys."""
    key_type = template.get(CKA_KEY_TYPE)
    if key_type in generic.DES_KEY_SIZES:
        value = des.odd_parity(value)
    return generic.secret_material(value, key_type=key_type)


# --- ECDH ------------------------------------------------------------------------------


def _peer_key(private: Any, public_data: bytes) -> Any:
    """The other party's public key from pPublicData: a raw or DER OCTET STRING point for
    Weierstrass curves, the raw (or DER-wrapped) u-coordinate for X25519/X448 (§2.3)."""
    from . import keys

    curve = keys.curve_of_key(private)
    try:
        raw = keys.unwrap_ec_point(public_data, curve)
    except CryptokiError:
        raise _bad_param("pPublicData has the wrong length for the curve") from None
    try:
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return ec.EllipticCurvePublicKey.from_encoded_point(private.curve, raw)
        if isinstance(private, x25519.X25519PrivateKey):
            return x25519.X25519PublicKey.from_public_bytes(raw)
        if isinstance(private, x448.X448PrivateKey):
            return x448.X448PublicKey.from_public_bytes(raw)
    except ValueError:
        raise _bad_param("pPublicData is not a point on the curve") from None
    raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "base key is not an ECDH key")


def ecdh_shared_secret(base_key: KeyView, public_data: bytes) -> bytes:
    """Z: the x-coordinate (Weierstrass) or X25519/X448 output, as pyca's exchange()."""
    from . import keys

    private = keys.load_private(base_key)
    peer = _peer_key(private, public_data)
    try:
        if isinstance(private, ec.EllipticCurvePrivateKey):
            return private.exchange(ec.ECDH(), peer)
        return private.exchange(peer)
    except ValueError:  # X25519 all-zero output (small-order point)
        raise _bad_param("key agreement produced an invalid shared secret") from None


def agreed_key(template: Mapping[int, Any], secret: bytes) -> dict[int, Any]:
    """The key of a raw key agreement, CKM_ECDH1_DERIVE with CKD_NULL and CKM_DH_PKCS_DERIVE:
    CKA_VALUE_LEN bytes (or the key type's length; without either, the whole secret) taken by
    removing bytes from the secret's leading end (§2.3 "ECDH key derivation"; SoftHSM2 cuts a
    DH secret the same way); longer than the secret is CKR_TEMPLATE_INCONSISTENT."""
    length = generic.derived_length(template, len(secret))
    if length > len(secret):
        raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the shared secret")
    return _result(template, secret[len(secret) - length :])


def ecdh_derive(entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_ECDH1_DERIVE. With CKD_NULL the secret is truncated by removing bytes from its
    leading end (§2.3 "ECDH key derivation"); with a KDF the KDF yields exactly the length."""
    if not isinstance(param, EcdhDeriveParams):
        raise _bad_param("CK_ECDH1_DERIVE_PARAMS required")
    kind, algo = ECDH_KDF.get(param.kdf, (None, None))
    if kind is None:
        raise _bad_param(f"KDF {param.kdf:#x} not supported")
    if kind == "null" and param.shared_data:
        raise _bad_param("CKD_NULL takes no shared data")
    secret = ecdh_shared_secret(base_key, param.public_data)
    if kind == "null":
        return agreed_key(template, secret)
    length = generic.derived_length(template, len(secret))
    shared = bytes(param.shared_data) or None
    kdf = X963KDF(algo(), length, shared) if kind == "x963" else ConcatKDFHash(algo(), length, shared)
    try:
        return _result(template, kdf.derive(secret))
    except ValueError:
        raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN too long for the KDF") from None


# --- HKDF ------------------------------------------------------------------------------


def hkdf_derive(entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_HKDF_DERIVE / CKM_HKDF_DATA (RFC 5869 through CK_HKDF_PARAMS, §2.62).

    Salt types: NULL -> HashLen zero bytes; DATA -> pSalt; KEY -> the salt key's value,
    which the core resolves from hSaltKey and passes in ``param.salt``.
    Expand needs CKA_VALUE_LEN; extract alone yields HashLen bytes.
    """
    if not isinstance(param, HkdfParams) or not (param.extract or param.expand):
        raise _bad_param("CK_HKDF_PARAMS with bExtract and/or bExpand required")
    algo_cls = HASH_BY_CKM.get(param.prf_hash)
    if algo_cls is None:
        raise _bad_param(f"prfHashMechanism {param.prf_hash:#x} not supported")
    hash_len = algo_cls.digest_size
    key_material = generic.secret_value(base_key)
    if param.extract:
        if param.salt_type == CKF_HKDF_SALT_NULL:
            salt = bytes(hash_len)
        elif param.salt_type in (CKF_HKDF_SALT_DATA, CKF_HKDF_SALT_KEY):
            salt = bytes(param.salt)
            if param.salt_type == CKF_HKDF_SALT_KEY and not salt:
                raise _bad_param("salt key not resolved")
        else:
            raise _bad_param(f"ulSaltType {param.salt_type:#x} invalid")
        mac = hmac.HMAC(salt, algo_cls())
        mac.update(key_material)
        key_material = mac.finalize()
    data_object = entry.mechanism == CKM_HKDF_DATA
    if param.expand:
        length = generic.derived_length(template, None)
        if length > 255 * hash_len:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "HKDF output longer than 255*HashLen")
        out = HKDFExpand(algo_cls(), length, bytes(param.info)).derive(key_material)
    else:
        if not data_object:
            length = generic.derived_length(template, hash_len)
            if length != hash_len:
                raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "extract-only HKDF yields HashLen bytes")
        out = key_material
    if data_object:  # §2.62 "HKDF Data": the result is a CKO_DATA object
        return {CKA_CLASS: CKO_DATA, CKA_VALUE: out}
    return _result(template, out)


# --- SP 800-108 ------------------------------------------------------------------------

_COUNTER_WIDTHS = (8, 16, 24, 32)


def _prf(prf_type: int, base_key: KeyView) -> tuple[Callable[[bytes], bytes], int]:
    """(PRF(key, data), output length h in bytes) for CK_SP800_108_PRF_TYPE."""
    if prf_type == CKM_AES_CMAC:
        algo = aes.aes_algorithm(base_key)

        def run_cmac(data: bytes) -> bytes:
            c = cmac.CMAC(algo)
            c.update(data)
            return c.finalize()

        return run_cmac, aes.BLOCK
    algo_cls = HMAC_PRF.get(prf_type)
    if algo_cls is None:
        raise _bad_param(f"PRF {prf_type:#x} not supported")
    key = generic.secret_value(base_key)

    def run_hmac(data: bytes) -> bytes:
        h = hmac.HMAC(key, algo_cls())
        h.update(data)
        return h.finalize()

    return run_hmac, algo_cls.digest_size


def _encode(value: int, fmt: Any) -> bytes:
    width = fmt.width_bits // 8
    return value.to_bytes(width, "little" if fmt.little_endian else "big")


def sp800_108_derive(entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_SP800_108_COUNTER_KDF (SP 800-108 §5.1) and _FEEDBACK_KDF (§5.2).

    The PRF input is the concatenation of the data params in order (§2.42 "Constructing PRF
    input data"); the iteration variable is the counter i (counter mode) or K(i-1)
    (feedback mode, K(0) = IV). Additional derived keys are not supported (the ABI refuses
    them).
    """
    if not isinstance(param, Sp800108Params):
        raise _bad_param("CK_SP800_108_KDF_PARAMS required")
    feedback = entry.mechanism == CKM_SP800_108_FEEDBACK_KDF
    prf, h = _prf(param.prf_type, base_key)
    length = generic.derived_length(template, None)
    segments = -(-length // h)

    kinds = [p.type for p in param.data_params]
    if kinds.count(CK_SP800_108_ITERATION_VARIABLE) != 1 or kinds.count(CK_SP800_108_DKM_LENGTH) > 1:
        raise _bad_param("exactly one iteration variable and at most one DKM length")
    if kinds.count(CK_SP800_108_OPTIONAL_COUNTER) > (1 if feedback else 0):
        raise _bad_param("optional counter not allowed here")
    counter_fmt = None
    for p in param.data_params:
        if p.type == CK_SP800_108_ITERATION_VARIABLE:
            if feedback:
                if p.value is not None:
                    raise _bad_param("feedback iteration variable takes no format")
            else:
                counter_fmt = p.value
        elif p.type == CK_SP800_108_OPTIONAL_COUNTER:
            counter_fmt = p.value
        elif p.type == CK_SP800_108_DKM_LENGTH:
            fmt = p.value
            if (
                not isinstance(fmt, Sp800108DkmLengthFormat)
                or fmt.width_bits % 8
                or not 8 <= fmt.width_bits <= 64
                or fmt.method not in (CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS)
            ):
                raise _bad_param("bad DKM length format")
        elif p.type != CK_SP800_108_BYTE_ARRAY or not isinstance(p.value, (bytes, bytearray)):
            raise _bad_param(f"data param type {p.type:#x} invalid")
    if counter_fmt is not None:
        if not isinstance(counter_fmt, Sp800108CounterFormat) or counter_fmt.width_bits not in _COUNTER_WIDTHS:
            raise _bad_param("counter width must be 8, 16, 24 or 32 bits")
        if segments > (1 << counter_fmt.width_bits) - 1:
            raise CryptokiError(CKR_KEY_SIZE_RANGE, "too much keying material for the counter width")
    elif not feedback:
        raise _bad_param("counter mode needs a counter format")

    out = bytearray()
    previous = bytes(param.iv)
    for i in range(1, segments + 1):
        data = bytearray()
        for p in param.data_params:
            if p.type == CK_SP800_108_ITERATION_VARIABLE:
                data += previous if feedback else _encode(i, p.value)
            elif p.type == CK_SP800_108_OPTIONAL_COUNTER:
                data += _encode(i, p.value)
            elif p.type == CK_SP800_108_DKM_LENGTH:
                bits = 8 * (length if p.value.method == CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS else segments * h)
                data += _encode(bits, p.value)
            else:
                data += p.value
        previous = prf(bytes(data))
        out += previous
    return _result(template, bytes(out[:length]))


# --- XOR / extraction (§2.43) ---------------------------------------------------------


def xor_derive(entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_XOR_BASE_AND_DATA: base value XOR pData. Without CKA_VALUE_LEN (and a key type
    of no fixed length) the key is as long as the shorter of the two; a longer request is
    an error ("more bytes than are available")."""
    if not isinstance(param, KeyDerivationStringData):
        raise _bad_param("CK_KEY_DERIVATION_STRING_DATA required")
    if not param.data:
        raise _bad_param("CKM_XOR_BASE_AND_DATA needs data")
    value = generic.secret_value(base_key)
    available = min(len(value), len(param.data))
    length = generic.derived_length(template, available)
    if length > available:
        raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the shorter of key and data")
    out = bytes(a ^ b for a, b in zip(value[:length], param.data[:length]))
    return _result(template, out)


def extract_bits(value: bytes, first_bit: int, length: int) -> bytes:
    """``length`` bytes of consecutive bits of ``value`` from bit ``first_bit`` on, bit b0
    being the most significant bit of the first byte, wrapping around the end (§2.43
    "Extraction of one key from another key": 0x329F84A9 from bit 21, 2 bytes -> 0x9526)."""
    total = 8 * len(value)
    start = first_bit % total
    n_bits = 8 * length
    # the value repeated enough times that the window never needs an index modulo
    reps = (start + n_bits + total - 1) // total
    stream = int.from_bytes(value * reps, "big")
    window = (stream >> (total * reps - start - n_bits)) & ((1 << n_bits) - 1)
    return window.to_bytes(length, "big")


def extract_derive(entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_EXTRACT_KEY_FROM_KEY with CK_EXTRACT_PARAMS (the first bit's index). The length
    comes from the template only (no length and no fixed-length type is an error) and may
    not exceed the base key's length."""
    if not isinstance(param, int) or isinstance(param, bool):
        raise _bad_param("CK_EXTRACT_PARAMS required")
    value = generic.secret_value(base_key)
    length = generic.derived_length(template, None)
    if length > len(value):
        raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the base key")
    return _result(template, extract_bits(value, param, length))


def concatenate_derive(entry: MechanismEntry, param: Any, base_key: KeyView,
                       template: Mapping[int, Any]) -> dict[int, Any]:
    """CKM_CONCATENATE_BASE_AND_KEY (base || other key), _BASE_AND_DATA (base || data) and
    _DATA_AND_BASE (data || base), §2.43. Without CKA_VALUE_LEN (and a key type of no fixed
    length) the key is the whole concatenation; a shorter length keeps its leading bytes, a
    longer one is CKR_TEMPLATE_INCONSISTENT. The other key of _BASE_AND_KEY is resolved by
    the core (``KeyHandleParam.value``) and is a base for the key-management rules too."""
    value = generic.secret_value(base_key)
    if entry.mechanism == CKM_CONCATENATE_BASE_AND_KEY:
        if not isinstance(param, KeyHandleParam) or not param.value:
            raise _bad_param("CKM_CONCATENATE_BASE_AND_KEY needs the handle of a secret key")
        joined = value + bytes(param.value)
    else:
        if not isinstance(param, KeyDerivationStringData):
            raise _bad_param("CK_KEY_DERIVATION_STRING_DATA required")
        data = bytes(param.data)
        joined = value + data if entry.mechanism == CKM_CONCATENATE_BASE_AND_DATA else data + value
    length = generic.derived_length(template, len(joined))
    if length > len(joined):
        raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the concatenation")
    return _result(template, joined[:length])


# --- derivation by data encryption ----------------------------------------------------


@dataclass(frozen=True)
class EncryptDataData(EntryData):
    """CKM_<cipher>_ECB/CBC_ENCRYPT_DATA: the cipher's block, its pyca algorithm for a key,
    and the CBC parameter struct (None: ECB, CK_KEY_DERIVATION_STRING_DATA)."""

    block: int
    algorithm: Callable[[KeyView], Any]
    cbc_params: type | None


def encrypt_data_derive(entry: MechanismEntry[EncryptDataData], param: Any, base_key: KeyView,
                        template: Mapping[int, Any]) -> dict[int, Any]:
    """The new key's value is the encryption of the parameter's data under the base key
    (ECB, or CBC with the parameter's IV; no padding), cut to the key's length: CKA_VALUE_LEN,
    else the key type's one length, else the whole ciphertext. Data that is empty or not a
    block multiple, or shorter than the key, is CKR_MECHANISM_PARAM_INVALID (the parameter
    cannot make the key; python-pkcs11's suite expects that code, as SoftHSM2 answers).

    The data is the caller's: the derived key is an encryption-oracle output of the base, so
    it inherits the base's protection (D3, ``core/key_management.py``); never a D1 weak
    derivation, since each output byte depends on the whole base key."""
    spec_ = entry.data
    if spec_.cbc_params is None:
        if not isinstance(param, KeyDerivationStringData):
            raise _bad_param("CK_KEY_DERIVATION_STRING_DATA required")
        mode: Any = modes.ECB()
    else:
        if not isinstance(param, spec_.cbc_params) or len(param.iv) != spec_.block:
            raise _bad_param(f"a CBC_ENCRYPT_DATA parameter with a {spec_.block}-byte IV required")
        mode = modes.CBC(bytes(param.iv))
    data = bytes(param.data)
    if not data or len(data) % spec_.block:
        raise _bad_param(f"the data must be a positive multiple of {spec_.block} bytes")
    enc = Cipher(spec_.algorithm(base_key), mode).encryptor()
    out = enc.update(data) + enc.finalize()
    length = generic.derived_length(template, len(out))
    if length > len(out):
        raise _bad_param("the data is shorter than the key to derive")
    return _result(template, out[:length])


# --- PBKDF2 ----------------------------------------------------------------------------


class Pbkd2Family(Family):
    """CKM_PKCS5_PBKD2 (§2.37): C_GenerateKey from a password with CK_PKCS5_PBKD2_PARAMS2.

    The key type comes from the template (generic secret by default); CKA_VALUE_LEN is
    required for types without a fixed length.
    """

    def generate_key(self, entry: MechanismEntry, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        if not isinstance(param, Pbkd2Params):
            raise _bad_param("CK_PKCS5_PBKD2_PARAMS2 required")
        if param.salt_source != CKZ_SALT_SPECIFIED:
            raise _bad_param("saltSource must be CKZ_SALT_SPECIFIED")
        algo_cls = PBKD2_PRF.get(param.prf)
        if algo_cls is None:
            raise _bad_param(f"PRF {param.prf:#x} not supported")
        if param.iterations < 1:
            raise _bad_param("iterations must be positive")
        key_type = template.get(CKA_KEY_TYPE, CKK_GENERIC_SECRET)
        length = generic.derived_length(template, None)
        kdf = PBKDF2HMAC(algo_cls(), length, bytes(param.salt), param.iterations)
        material = generic.secret_material(kdf.derive(bytes(param.password)))
        material[CKA_KEY_TYPE] = key_type
        return material


# --- the family ------------------------------------------------------------------------


class DeriveFamily(Family):
    """C_DeriveKey for the mechanisms of this module; dispatch by mechanism number."""

    _BY_MECHANISM: dict[int, Callable[..., dict[int, Any]]] = {
        CKM_ECDH1_DERIVE: ecdh_derive,
        CKM_HKDF_DERIVE: hkdf_derive,
        CKM_HKDF_DATA: hkdf_derive,
        CKM_SP800_108_COUNTER_KDF: sp800_108_derive,
        CKM_SP800_108_FEEDBACK_KDF: sp800_108_derive,
        CKM_XOR_BASE_AND_DATA: xor_derive,
        CKM_EXTRACT_KEY_FROM_KEY: extract_derive,
        CKM_CONCATENATE_BASE_AND_KEY: concatenate_derive,
        CKM_CONCATENATE_BASE_AND_DATA: concatenate_derive,
        CKM_CONCATENATE_DATA_AND_BASE: concatenate_derive,
        CKM_AES_ECB_ENCRYPT_DATA: encrypt_data_derive,
        CKM_AES_CBC_ENCRYPT_DATA: encrypt_data_derive,
        CKM_DES3_ECB_ENCRYPT_DATA: encrypt_data_derive,
        CKM_DES3_CBC_ENCRYPT_DATA: encrypt_data_derive,
    }

    def derive(self, entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
        return self._BY_MECHANISM[entry.mechanism](entry, param, base_key, template)


DERIVE = DeriveFamily()
PBKD2 = Pbkd2Family()

_SECRET_BASES = frozenset(
    {
        CKK_GENERIC_SECRET,
        CKK_HKDF,
        CKK_AES,
        CKK_SHA_1_HMAC,
        CKK_SHA224_HMAC,
        CKK_SHA256_HMAC,
        CKK_SHA384_HMAC,
        CKK_SHA512_HMAC,
        CKK_SHA3_224_HMAC,
        CKK_SHA3_256_HMAC,
        CKK_SHA3_384_HMAC,
        CKK_SHA3_512_HMAC,
    }
)

#: The bases of the §2.43 mechanisms: the secret types above and the DES types (payment key
#: components are XORed and concatenated), so the D1 rules meet DES keys as they meet AES keys.
_SIMPLE_BASES = _SECRET_BASES | frozenset(generic.DES_KEY_SIZES)

# ECDH: key sizes in bits (field size, 192 for P-192 .. 521 for P-521)
register(
    MechanismEntry(
        mechanism=CKM_ECDH1_DERIVE,
        flags=CKF_DERIVE | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS,
        min_key_size=192,
        max_key_size=521,
        family=DERIVE,
        key_types=frozenset({CKK_EC, CKK_EC_MONTGOMERY}),
        param=EcdhDeriveParams,
    )
)
for _mech in (CKM_HKDF_DERIVE, CKM_HKDF_DATA):
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_DERIVE,
            min_key_size=1,
            max_key_size=generic.GENERIC_MAX_BYTES,
            family=DERIVE,
            key_types=frozenset({CKK_HKDF, CKK_GENERIC_SECRET}),
            param=HkdfParams,
        )
    )
# SP 800-108: §2.42 gives the base key sizes in bits.
for _mech in (CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF):
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_DERIVE,
            min_key_size=8,
            max_key_size=generic.GENERIC_MAX_BYTES * 8,
            family=DERIVE,
            key_types=_SECRET_BASES,
            param=Sp800108Params,
        )
    )
# §2.43 gives no key sizes; like HKDF, bytes of the base key's value.
for _mech, _param in ((CKM_XOR_BASE_AND_DATA, KeyDerivationStringData), (CKM_EXTRACT_KEY_FROM_KEY, int),
                      (CKM_CONCATENATE_BASE_AND_KEY, KeyHandleParam),
                      (CKM_CONCATENATE_BASE_AND_DATA, KeyDerivationStringData),
                      (CKM_CONCATENATE_DATA_AND_BASE, KeyDerivationStringData)):
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_DERIVE,
            min_key_size=1,
            max_key_size=generic.GENERIC_MAX_BYTES,
            family=DERIVE,
            key_types=_SIMPLE_BASES,
            param=_param,
        )
    )
# Key sizes as the cipher's own mechanisms report them (bytes).
for _mech, _data, _types, _min, _max in (
    (CKM_AES_ECB_ENCRYPT_DATA, EncryptDataData(aes.BLOCK, aes.aes_algorithm, None), {CKK_AES}, 16, 32),
    (CKM_AES_CBC_ENCRYPT_DATA, EncryptDataData(aes.BLOCK, aes.aes_algorithm, AesCbcEncryptDataParams), {CKK_AES},
     16, 32),
    (CKM_DES3_ECB_ENCRYPT_DATA, EncryptDataData(des.BLOCK, des.des_algorithm, None), {CKK_DES2, CKK_DES3}, 16, 24),
    (CKM_DES3_CBC_ENCRYPT_DATA, EncryptDataData(des.BLOCK, des.des_algorithm, DesCbcEncryptDataParams),
     {CKK_DES2, CKK_DES3}, 16, 24),
):
    register(
        MechanismEntry(
            mechanism=_mech,
            flags=CKF_DERIVE,
            min_key_size=_min,
            max_key_size=_max,
            family=DERIVE,
            key_types=frozenset(_types),
            param=_data.cbc_params or KeyDerivationStringData,
            data=_data,
        )
    )
register(
    MechanismEntry(
        mechanism=CKM_PKCS5_PBKD2,
        flags=CKF_GENERATE,
        min_key_size=1,
        max_key_size=generic.GENERIC_MAX_BYTES,
        family=PBKD2,
        param=Pbkd2Params,
    )
)
