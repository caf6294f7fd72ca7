"""Mechanism parameters as plain Python values: one named tuple per C parameter struct
(immutable, and made on every C_*Init that carries one: a tuple is made in a fraction of a
frozen dataclass's time).

The ABI (``abi/params.py``) reads the struct named by ``MechanismEntry.param`` and copies
every byte out into one of these, so nothing below the ABI ever holds a C pointer. Field
names follow the spec's struct members without their Hungarian prefixes
(``ulSaltLen`` -> ``salt_len``, ``pSourceData`` -> ``source_data``).

A mechanism whose parameter is a single ``CK_ULONG`` (``CK_MAC_GENERAL_PARAMS``,
``CK_RSA_PKCS_PSS`` salt etc.) uses :data:`MacGeneralParams` (an ``int``); a mechanism
whose parameter is a byte string (an IV) uses ``bytes``.
"""

from __future__ import annotations

from typing import NamedTuple, Union

# CK_MAC_GENERAL_PARAMS is a CK_ULONG: the requested MAC length in bytes (PKCS#11 3.0 §2.1.x,
# the *_HMAC_GENERAL and *_MAC_GENERAL mechanisms).
MacGeneralParams = int


class RsaPkcsOaepParams(NamedTuple):
    """CK_RSA_PKCS_OAEP_PARAMS (PKCS#11 3.0 §2.1.14): hashAlg, mgf, source, pSourceData."""

    hash_alg: int  # CKM_SHA_1, CKM_SHA256, ...
    mgf: int  # CKG_MGF1_*
    source: int  # CKZ_DATA_SPECIFIED or 0 (no label)
    source_data: bytes  # the OAEP label


class RsaPkcsPssParams(NamedTuple):
    """CK_RSA_PKCS_PSS_PARAMS (PKCS#11 3.0 §2.1.15): hashAlg, mgf, sLen."""

    hash_alg: int
    mgf: int
    salt_len: int


class EddsaParams(NamedTuple):
    """CK_EDDSA_PARAMS (PKCS#11 3.0 §2.3.15): phFlag selects the pre-hash variant,
    the context string selects Ed25519ctx/Ed448 with context (RFC 8032)."""

    phflag: bool
    context: bytes


class SignAdditionalContext(NamedTuple):
    """CK_SIGN_ADDITIONAL_CONTEXT (PKCS#11 3.2 §6.67.1): hedgeVariant (CKH_*), the FIPS 204
    context string (CKM_ML_DSA and the CKM_HASH_ML_DSA_<hash> mechanisms)."""

    hedge: int
    context: bytes


class HashSignAdditionalContext(NamedTuple):
    """CK_HASH_SIGN_ADDITIONAL_CONTEXT (3.2 §6.67.1): as above plus the pre-hash (a CKM_
    digest) of CKM_HASH_ML_DSA, whose input is that hash's output."""

    hedge: int
    context: bytes
    hash: int


class EcdhDeriveParams(NamedTuple):
    """CK_ECDH1_DERIVE_PARAMS (PKCS#11 3.0 §2.3.15): kdf (CKD_*), shared data, the peer's
    public value (raw or DER-wrapped EC point, or a raw Montgomery u-coordinate)."""

    kdf: int
    shared_data: bytes
    public_data: bytes


class GcmParams(NamedTuple):
    """CK_GCM_PARAMS (PKCS#11 3.0 §2.12.3): pIv/ulIvLen, pAAD/ulAADLen, ulTagBits.

    ``iv_bits`` is the struct's ulIvBits, kept for mechanisms that generate part of the IV.
    """

    iv: bytes
    aad: bytes
    tag_bits: int
    iv_bits: int = 0


class CcmParams(NamedTuple):
    """CK_CCM_PARAMS (PKCS#11 3.0 §2.12.4): ulDataLen, pNonce, pAAD, ulMACLen."""

    data_len: int
    nonce: bytes
    aad: bytes
    mac_len: int


class ChachaPolyParams(NamedTuple):
    """CK_SALSA20_CHACHA20_POLY1305_PARAMS (PKCS#11 3.0 §2.61): pNonce/ulNonceLen, pAAD/ulAADLen."""

    nonce: bytes
    aad: bytes


class AesCtrParams(NamedTuple):
    """CK_AES_CTR_PARAMS (PKCS#11 3.0 §2.12.2): ulCounterBits and the 16-byte counter block."""

    counter_bits: int
    cb: bytes


class AesCbcEncryptDataParams(NamedTuple):
    """CK_AES_CBC_ENCRYPT_DATA_PARAMS (key derivation by data encryption, §2.12.x)."""

    iv: bytes
    data: bytes


class HkdfParams(NamedTuple):
    """CK_HKDF_PARAMS (PKCS#11 3.0 §2.62): extract and/or expand with prfHashMechanism.

    ``salt_type`` is CKF_HKDF_SALT_NULL / _DATA / _KEY; with _KEY the salt is the key object
    ``salt_key`` (a handle the core resolves), otherwise ``salt`` holds the bytes.
    """

    extract: bool
    expand: bool
    prf_hash: int
    salt_type: int
    salt: bytes
    salt_key: int
    info: bytes


class Sp800108CounterFormat(NamedTuple):
    """CK_SP800_108_COUNTER_FORMAT: bLittleEndian, ulWidthInBits."""

    little_endian: bool
    width_bits: int


class Sp800108DkmLengthFormat(NamedTuple):
    """CK_SP800_108_DKM_LENGTH_FORMAT: dkmLengthMethod, bLittleEndian, ulWidthInBits."""

    method: int
    little_endian: bool
    width_bits: int


class PrfDataParam(NamedTuple):
    """One CK_PRF_DATA_PARAM: ``type`` is CK_SP800_108_ITERATION_VARIABLE (1),
    _OPTIONAL_COUNTER (2), _DKM_LENGTH (3) or _BYTE_ARRAY (4); ``value`` is the parsed
    pValue: a counter format (or ``None`` for the feedback/pipeline iteration variable),
    a DKM length format, or the bytes of a byte array."""

    type: int
    value: Union[Sp800108CounterFormat, Sp800108DkmLengthFormat, bytes, None]


class Sp800108Params(NamedTuple):
    """CK_SP800_108_KDF_PARAMS / CK_SP800_108_FEEDBACK_KDF_PARAMS (PKCS#11 3.0 §2.42).

    ``iv`` is only used by the feedback mode. Additional derived keys (whose handles must be
    written back to the caller) are not supported yet: the reader refuses a non-zero count.
    """

    prf_type: int
    data_params: tuple[PrfDataParam, ...]
    iv: bytes = b""


class Pbkd2Params(NamedTuple):
    """CK_PKCS5_PBKD2_PARAMS2 (and the 2.x CK_PKCS5_PBKD2_PARAMS with a length pointer),
    PKCS#11 3.0 §2.37.x: saltSource, salt, iterations, prf, prf data, password."""

    salt_source: int
    salt: bytes
    iterations: int
    prf: int
    prf_data: bytes
    password: bytes


class KeyDerivationStringData(NamedTuple):
    """CK_KEY_DERIVATION_STRING_DATA: pData/ulLen (CKM_CONCATENATE_BASE_AND_DATA etc.)."""

    data: bytes


class DesCbcEncryptDataParams(NamedTuple):
    """CK_DES_CBC_ENCRYPT_DATA_PARAMS (CKM_DES3_CBC_ENCRYPT_DATA): an 8-byte IV and the data."""

    iv: bytes
    data: bytes


class KeyHandleParam(NamedTuple):
    """A CK_OBJECT_HANDLE parameter (CKM_CONCATENATE_BASE_AND_KEY, §2.43): the other key's
    handle; the core resolves it and passes that key's value in ``value`` (mechanisms never
    see handles)."""

    handle: int
    value: bytes = b""
