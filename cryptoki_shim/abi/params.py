"""Mechanism parameters: C structs -> the dataclasses of ``mechanisms/params.py``.

``read_param`` is the one helper the entries call for every CK_MECHANISM: it reads the
struct named by ``entry.param`` and copies every byte out, so no C pointer survives the
call (the caller may free its buffers as soon as C_*Init returns).

Rules (PKCS#11 3.0 §5.1 "CKR_MECHANISM_PARAM_INVALID"): ulParameterLen must equal the
struct's size; every byte string inside is read by ``marshal.read_buffer`` under
``limits.PARAMETER`` (``limits.AAD`` for AAD), so a huge length is refused before it is
read; a NULL pointer with a non-zero length, anywhere, is invalid; a mechanism
that takes no parameter accepts only ulParameterLen == 0 (pointer ignored: clients pass
stale pointers with a zero length); an optional parameter (``entry.param_optional``) may
be absent (NULL/0).
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import CryptokiError
from ..mechanisms.params import (
    AesCbcEncryptDataParams,
    AesCtrParams,
    CcmParams,
    DesCbcEncryptDataParams,
    ChachaPolyParams,
    EcdhDeriveParams,
    EddsaParams,
    GcmParams,
    HashSignAdditionalContext,
    HkdfParams,
    KeyDerivationStringData,
    KeyHandleParam,
    Pbkd2Params,
    PrfDataParam,
    SignAdditionalContext,
    RsaPkcsOaepParams,
    RsaPkcsPssParams,
    Sp800108CounterFormat,
    Sp800108DkmLengthFormat,
    Sp800108Params,
)
from ..spec import CKR_MECHANISM_PARAM_INVALID
from . import limits
from .limits import Limit
from .marshal import read_buffer

Reader = Callable[[Any, Any, int], object]

# CK_PRF_DATA_TYPE values (PKCS#11 3.0 §2.42.3)
CK_SP800_108_ITERATION_VARIABLE = 1
CK_SP800_108_OPTIONAL_COUNTER = 2
CK_SP800_108_DKM_LENGTH = 3
CK_SP800_108_BYTE_ARRAY = 4

# An ulPasswordLen above this in a 72-byte PBKDF2 struct is a pointer: the 2.40 struct
# (CK_PKCS5_PBKD2_PARAMS, CK_ULONG_PTR ulPasswordLen) and the 3.0 CK_PKCS5_PBKD2_PARAMS2
# have the same size on LP64, and clients still send both.
_PBKDF2_MAX_PASSWORD = 0x10000
# ...but only a value that can be a user-space address of a CK_ULONG (8-aligned, below the
# 57-bit top of x86-64/aarch64 user space) is dereferenced: any other huge ulPasswordLen is a
# garbage length, refused (issue 15 item 10) rather than followed.
_USER_SPACE_END = 1 << 57


def _invalid(why: str) -> CryptokiError:
    return CryptokiError(CKR_MECHANISM_PARAM_INVALID, why)


_STRUCT_TYPES: dict[str, tuple[int, Any]] = {}


def _struct_type(ffi: Any, ctype: str) -> tuple[int, Any]:
    """(size, pointer type) of a parameter struct, parsed once: these run on every C_*Init."""
    known = _STRUCT_TYPES.get(ctype)
    if known is None:
        known = _STRUCT_TYPES[ctype] = (ffi.sizeof(ctype), ffi.typeof(ctype + " *"))
    return known


def _struct(ffi: Any, p: Any, length: int, ctype: str) -> Any:
    size, pointer = _struct_type(ffi, ctype)
    if length != size:
        raise _invalid(f"ulParameterLen {length} != sizeof({ctype}) {size}")
    if p == ffi.NULL:
        raise _invalid(f"NULL {ctype}")
    return ffi.cast(pointer, p)[0]


def _bytes(ffi: Any, p: Any, n: int, what: str, limit: Limit = limits.PARAMETER) -> bytes:
    return read_buffer(p, n, limit, what, ffi)


def read_bytes_param(ffi: Any, p: Any, length: int) -> bytes:
    """A plain byte-string parameter (IVs)."""
    return read_buffer(p, length, limits.PARAMETER, "pParameter", ffi)


def read_ulong(ffi: Any, p: Any, length: int) -> int:
    """CK_MAC_GENERAL_PARAMS and other single-CK_ULONG parameters."""
    return int(_struct(ffi, p, length, "CK_ULONG"))


def read_oaep(ffi: Any, p: Any, length: int) -> RsaPkcsOaepParams:
    s = _struct(ffi, p, length, "CK_RSA_PKCS_OAEP_PARAMS")
    return RsaPkcsOaepParams(int(s.hashAlg), int(s.mgf), int(s.source),
                             _bytes(ffi, s.pSourceData, s.ulSourceDataLen, "pSourceData"))


def read_pss(ffi: Any, p: Any, length: int) -> RsaPkcsPssParams:
    s = _struct(ffi, p, length, "CK_RSA_PKCS_PSS_PARAMS")
    return RsaPkcsPssParams(int(s.hashAlg), int(s.mgf), int(s.sLen))


def read_eddsa(ffi: Any, p: Any, length: int) -> EddsaParams:
    s = _struct(ffi, p, length, "CK_EDDSA_PARAMS")
    return EddsaParams(bool(s.phFlag), _bytes(ffi, s.pContextData, s.ulContextDataLen, "pContextData"))


def read_sign_context(ffi: Any, p: Any, length: int) -> SignAdditionalContext:
    s = _struct(ffi, p, length, "CK_SIGN_ADDITIONAL_CONTEXT")
    return SignAdditionalContext(int(s.hedgeVariant), _bytes(ffi, s.pContext, s.ulContextLen, "pContext"))


def read_hash_sign_context(ffi: Any, p: Any, length: int) -> HashSignAdditionalContext:
    s = _struct(ffi, p, length, "CK_HASH_SIGN_ADDITIONAL_CONTEXT")
    return HashSignAdditionalContext(int(s.hedgeVariant), _bytes(ffi, s.pContext, s.ulContextLen, "pContext"),
                                     int(s.hash))


def read_ecdh1(ffi: Any, p: Any, length: int) -> EcdhDeriveParams:
    s = _struct(ffi, p, length, "CK_ECDH1_DERIVE_PARAMS")
    return EcdhDeriveParams(int(s.kdf), _bytes(ffi, s.pSharedData, s.ulSharedDataLen, "pSharedData"),
                            _bytes(ffi, s.pPublicData, s.ulPublicDataLen, "pPublicData"))


def read_gcm(ffi: Any, p: Any, length: int) -> GcmParams:
    """CK_GCM_PARAMS, read inline: the one parameter read on every AES-GCM C_*Init (each
    message needs a fresh IV), so no helper frames on the valid path."""
    size, pointer = _STRUCT_TYPES.get("CK_GCM_PARAMS") or _struct_type(ffi, "CK_GCM_PARAMS")
    if length != size or p == ffi.NULL:
        _struct(ffi, p, length, "CK_GCM_PARAMS")  # raises the precise error
    s = ffi.cast(pointer, p)  # fields read through the pointer: no struct cdata
    n = s.ulIvLen
    iv = read_buffer(s.pIv, n, limits.PARAMETER, "pIv", ffi) if n else b""
    m = s.ulAADLen
    aad = read_buffer(s.pAAD, m, limits.AAD, "pAAD", ffi) if m else b""
    return tuple.__new__(GcmParams, (iv, aad, s.ulTagBits, s.ulIvBits))


def read_ccm(ffi: Any, p: Any, length: int) -> CcmParams:
    s = _struct(ffi, p, length, "CK_CCM_PARAMS")
    return CcmParams(int(s.ulDataLen), _bytes(ffi, s.pNonce, s.ulNonceLen, "pNonce"),
                     _bytes(ffi, s.pAAD, s.ulAADLen, "pAAD", limits.AAD), int(s.ulMACLen))


def read_chacha_poly(ffi: Any, p: Any, length: int) -> ChachaPolyParams:
    """CK_SALSA20_CHACHA20_POLY1305_PARAMS; ulNonceLen in bits (the spec) or bytes
    (``mechanisms.chacha.nonce_bytes``)."""
    from ..mechanisms.chacha import nonce_bytes

    s = _struct(ffi, p, length, "CK_SALSA20_CHACHA20_POLY1305_PARAMS")
    return ChachaPolyParams(_bytes(ffi, s.pNonce, nonce_bytes(int(s.ulNonceLen)), "pNonce"),
                            _bytes(ffi, s.pAAD, s.ulAADLen, "pAAD", limits.AAD))


def read_aes_ctr(ffi: Any, p: Any, length: int) -> AesCtrParams:
    s = _struct(ffi, p, length, "CK_AES_CTR_PARAMS")
    return AesCtrParams(int(s.ulCounterBits), bytes(ffi.buffer(s.cb, 16)))


def read_aes_cbc_encrypt_data(ffi: Any, p: Any, length: int) -> AesCbcEncryptDataParams:
    s = _struct(ffi, p, length, "CK_AES_CBC_ENCRYPT_DATA_PARAMS")
    return AesCbcEncryptDataParams(bytes(ffi.buffer(s.iv, 16)), _bytes(ffi, s.pData, s.length, "pData"))


def read_des_cbc_encrypt_data(ffi: Any, p: Any, length: int) -> DesCbcEncryptDataParams:
    s = _struct(ffi, p, length, "CK_DES_CBC_ENCRYPT_DATA_PARAMS")
    return DesCbcEncryptDataParams(bytes(ffi.buffer(s.iv, 8)), _bytes(ffi, s.pData, s.length, "pData"))


def read_key_handle(ffi: Any, p: Any, length: int) -> KeyHandleParam:
    """CKM_CONCATENATE_BASE_AND_KEY: a CK_OBJECT_HANDLE."""
    return KeyHandleParam(int(_struct(ffi, p, length, "CK_OBJECT_HANDLE")))


def read_hkdf(ffi: Any, p: Any, length: int) -> HkdfParams:
    s = _struct(ffi, p, length, "CK_HKDF_PARAMS")
    return HkdfParams(bool(s.bExtract), bool(s.bExpand), int(s.prfHashMechanism), int(s.ulSaltType),
                      _bytes(ffi, s.pSalt, s.ulSaltLen, "pSalt"), int(s.hSaltKey),
                      _bytes(ffi, s.pInfo, s.ulInfoLen, "pInfo"))


def read_string_data(ffi: Any, p: Any, length: int) -> KeyDerivationStringData:
    s = _struct(ffi, p, length, "CK_KEY_DERIVATION_STRING_DATA")
    return KeyDerivationStringData(_bytes(ffi, s.pData, s.ulLen, "pData"))


def _prf_value(ffi: Any, item: Any) -> Any:
    kind, p, n = int(item.type), item.pValue, int(item.ulValueLen)
    if kind in (CK_SP800_108_ITERATION_VARIABLE, CK_SP800_108_OPTIONAL_COUNTER):
        if kind == CK_SP800_108_ITERATION_VARIABLE and n == 0:
            return None  # feedback/pipeline mode: the iteration variable has no format
        f = _struct(ffi, p, n, "CK_SP800_108_COUNTER_FORMAT")
        return Sp800108CounterFormat(bool(f.bLittleEndian), int(f.ulWidthInBits))
    if kind == CK_SP800_108_DKM_LENGTH:
        f = _struct(ffi, p, n, "CK_SP800_108_DKM_LENGTH_FORMAT")
        return Sp800108DkmLengthFormat(int(f.dkmLengthMethod), bool(f.bLittleEndian), int(f.ulWidthInBits))
    if kind == CK_SP800_108_BYTE_ARRAY:
        return _bytes(ffi, p, n, "CK_SP800_108_BYTE_ARRAY")
    raise _invalid(f"CK_PRF_DATA_PARAM type {kind} unknown")


def read_sp800_108(ffi: Any, p: Any, length: int) -> Sp800108Params:
    """CK_SP800_108_KDF_PARAMS (counter, double pipeline) or the FEEDBACK variant, told apart
    by their sizes. Additional derived keys are refused (handles would have to be written
    back after the derivation; not supported yet)."""
    feedback = length == ffi.sizeof("CK_SP800_108_FEEDBACK_KDF_PARAMS")
    s = _struct(ffi, p, length, "CK_SP800_108_FEEDBACK_KDF_PARAMS" if feedback else "CK_SP800_108_KDF_PARAMS")
    if int(s.ulAdditionalDerivedKeys):
        raise _invalid("SP 800-108 additional derived keys not supported")
    count = int(s.ulNumberOfDataParams)
    if count > limits.PARAMETER_ITEMS.size:
        raise _invalid(f"ulNumberOfDataParams {count} over the limit of {limits.PARAMETER_ITEMS.size}")
    if count and s.pDataParams == ffi.NULL:
        raise _invalid("pDataParams NULL with a non-zero count")
    items = tuple(PrfDataParam(int(s.pDataParams[i].type), _prf_value(ffi, s.pDataParams[i])) for i in range(count))
    iv = _bytes(ffi, s.pIV, s.ulIVLen, "pIV") if feedback else b""
    return Sp800108Params(int(s.prfType), items, iv)


def read_pbkd2(ffi: Any, p: Any, length: int) -> Pbkd2Params:
    s = _struct(ffi, p, length, "CK_PKCS5_PBKD2_PARAMS2")
    password_len = int(s.ulPasswordLen)
    if password_len > _PBKDF2_MAX_PASSWORD:  # the 2.40 struct: a pointer to the length
        if password_len >= _USER_SPACE_END or password_len % 8:
            raise _invalid(f"ulPasswordLen {password_len}: neither a length nor a pointer to one")
        old = ffi.cast("CK_PKCS5_PBKD2_PARAMS *", p)[0]
        password_len = int(old.ulPasswordLen[0])
    return Pbkd2Params(int(s.saltSource), _bytes(ffi, s.pSaltSourceData, s.ulSaltSourceDataLen, "pSaltSourceData"),
                       int(s.iterations), int(s.prf), _bytes(ffi, s.pPrfData, s.ulPrfDataLen, "pPrfData"),
                       _bytes(ffi, s.pPassword, password_len, "pPassword"))


READERS: dict[Any, Reader] = {
    bytes: read_bytes_param,
    int: read_ulong,  # MacGeneralParams
    RsaPkcsOaepParams: read_oaep,
    RsaPkcsPssParams: read_pss,
    EddsaParams: read_eddsa,
    SignAdditionalContext: read_sign_context,
    HashSignAdditionalContext: read_hash_sign_context,
    EcdhDeriveParams: read_ecdh1,
    GcmParams: read_gcm,
    CcmParams: read_ccm,
    ChachaPolyParams: read_chacha_poly,
    AesCtrParams: read_aes_ctr,
    AesCbcEncryptDataParams: read_aes_cbc_encrypt_data,
    DesCbcEncryptDataParams: read_des_cbc_encrypt_data,
    KeyHandleParam: read_key_handle,
    HkdfParams: read_hkdf,
    Sp800108Params: read_sp800_108,
    Pbkd2Params: read_pbkd2,
    KeyDerivationStringData: read_string_data,
}


def param_reader(entry: Any) -> Reader | None:
    """The reader ``read_param`` uses for a non-empty parameter of ``entry`` (None: it takes
    none); the entries keep it per mechanism so C_*Init skips the lookups."""
    return READERS.get(entry.param) if entry.param is not None else None


def read_param(ffi: Any, entry: Any, p_param: Any, length: int) -> object:
    """The parsed parameter of one CK_MECHANISM for ``entry`` (see the module docstring)."""
    kind = entry.param
    if kind is None:
        if length:
            raise _invalid("mechanism takes no parameter")
        return None
    if not length and entry.param_optional:
        return None
    reader = READERS.get(kind)
    if reader is None:
        raise _invalid(f"no reader for parameter kind {kind!r}")
    return reader(ffi, p_param, length)
