"""abi/params.py: C parameter structs -> dataclasses, with cffi in ABI mode on native/cdef.h."""

from __future__ import annotations

import pathlib

import pytest

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import registry
from cryptoki_shim.mechanisms.params import (
    AesCtrParams,
    CcmParams,
    EcdhDeriveParams,
    EddsaParams,
    GcmParams,
    HkdfParams,
    KeyDerivationStringData,
    Pbkd2Params,
    PrfDataParam,
    RsaPkcsOaepParams,
    RsaPkcsPssParams,
    Sp800108CounterFormat,
    Sp800108DkmLengthFormat,
    Sp800108Params,
)
from cryptoki_shim.spec import (
    CKG_MGF1_SHA256,
    CKM_EDDSA,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256,
    CKM_SHA256_HMAC_GENERAL,
    CKR_MECHANISM_PARAM_INVALID,
)

CDEF = pathlib.Path(__file__).resolve().parents[2] / "native" / "cdef.h"
pytestmark = pytest.mark.skipif(not CDEF.exists(), reason="native/cdef.h not written yet")


@pytest.fixture(scope="module")
def ffi():
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(CDEF.read_text())
    return ffi


@pytest.fixture(scope="module")
def reader():
    from cryptoki_shim.abi import params

    return params


def _raises_param_invalid(fn, *args):
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr == CKR_MECHANISM_PARAM_INVALID


def _size(ffi, ptr):
    return ffi.sizeof(ptr[0])


def test_oaep_copies_the_label(ffi, reader):
    label = ffi.new("CK_BYTE[]", b"label")
    s = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *", {"hashAlg": CKM_SHA256, "mgf": CKG_MGF1_SHA256, "source": 1,
                                              "pSourceData": label, "ulSourceDataLen": 5})
    value = reader.read_param(ffi, registry.lookup(CKM_RSA_PKCS_OAEP), s, _size(ffi, s))
    assert value == RsaPkcsOaepParams(CKM_SHA256, CKG_MGF1_SHA256, 1, b"label")
    label[0] = ord("X")  # the caller's buffer changes after C_*Init: our copy must not
    assert value.source_data == b"label"
    assert isinstance(value.source_data, bytes)


def test_struct_size_must_match(ffi, reader):
    s = ffi.new("CK_RSA_PKCS_PSS_PARAMS *", {"hashAlg": CKM_SHA256, "mgf": CKG_MGF1_SHA256, "sLen": 32})
    entry = registry.lookup(CKM_RSA_PKCS_PSS)
    assert reader.read_param(ffi, entry, s, _size(ffi, s)) == RsaPkcsPssParams(CKM_SHA256, CKG_MGF1_SHA256, 32)
    _raises_param_invalid(reader.read_param, ffi, entry, s, _size(ffi, s) - 8)
    _raises_param_invalid(reader.read_param, ffi, entry, s, 0)  # PSS parameter is required
    _raises_param_invalid(reader.read_param, ffi, entry, ffi.NULL, _size(ffi, s))


def test_null_pointer_with_length_inside_struct(ffi, reader):
    s = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *", {"hashAlg": CKM_SHA256, "mgf": CKG_MGF1_SHA256, "source": 1,
                                              "pSourceData": ffi.NULL, "ulSourceDataLen": 4})
    _raises_param_invalid(reader.read_param, ffi, registry.lookup(CKM_RSA_PKCS_OAEP), s, _size(ffi, s))


def test_no_param_mechanism(ffi, reader):
    entry = registry.lookup(CKM_RSA_PKCS)
    assert reader.read_param(ffi, entry, ffi.NULL, 0) is None
    buf = ffi.new("CK_BYTE[4]")
    _raises_param_invalid(reader.read_param, ffi, entry, buf, 4)


def test_optional_eddsa_param(ffi, reader):
    entry = registry.lookup(CKM_EDDSA)
    assert reader.read_param(ffi, entry, ffi.NULL, 0) is None
    ctx = ffi.new("CK_BYTE[]", b"ctx")
    s = ffi.new("CK_EDDSA_PARAMS *", {"phFlag": 1, "ulContextDataLen": 3, "pContextData": ctx})
    assert reader.read_param(ffi, entry, s, _size(ffi, s)) == EddsaParams(True, b"ctx")


def test_mac_general_ulong(ffi, reader):
    n = ffi.new("CK_ULONG *", 16)
    entry = registry.lookup(CKM_SHA256_HMAC_GENERAL)
    assert reader.read_param(ffi, entry, n, ffi.sizeof("CK_ULONG")) == 16
    _raises_param_invalid(reader.read_param, ffi, entry, n, 4)


def test_byte_string_param(ffi, reader):
    iv = ffi.new("CK_BYTE[]", bytes(range(16)))
    assert reader.read_bytes_param(ffi, iv, 16) == bytes(range(16))
    assert reader.read_bytes_param(ffi, ffi.NULL, 0) == b""
    _raises_param_invalid(reader.read_bytes_param, ffi, ffi.NULL, 16)


def test_symmetric_structs(ffi, reader):
    iv, aad = ffi.new("CK_BYTE[]", b"\x01" * 12), ffi.new("CK_BYTE[]", b"aad")
    s = ffi.new("CK_GCM_PARAMS *", {"pIv": iv, "ulIvLen": 12, "ulIvBits": 96, "pAAD": aad, "ulAADLen": 3, "ulTagBits": 128})
    assert reader.read_gcm(ffi, s, _size(ffi, s)) == GcmParams(b"\x01" * 12, b"aad", 128, 96)
    s = ffi.new("CK_CCM_PARAMS *", {"ulDataLen": 10, "pNonce": iv, "ulNonceLen": 12, "pAAD": ffi.NULL,
                                    "ulAADLen": 0, "ulMACLen": 16})
    assert reader.read_ccm(ffi, s, _size(ffi, s)) == CcmParams(10, b"\x01" * 12, b"", 16)
    s = ffi.new("CK_AES_CTR_PARAMS *", {"ulCounterBits": 32, "cb": list(range(16))})
    assert reader.read_aes_ctr(ffi, s, _size(ffi, s)) == AesCtrParams(32, bytes(range(16)))
    data = ffi.new("CK_BYTE[]", b"data")
    s = ffi.new("CK_KEY_DERIVATION_STRING_DATA *", {"pData": data, "ulLen": 4})
    assert reader.read_string_data(ffi, s, _size(ffi, s)) == KeyDerivationStringData(b"data")


def test_ecdh_and_hkdf(ffi, reader):
    pub = ffi.new("CK_BYTE[]", b"\x04" + b"\x02" * 64)
    s = ffi.new("CK_ECDH1_DERIVE_PARAMS *", {"kdf": 1, "ulSharedDataLen": 0, "pSharedData": ffi.NULL,
                                             "ulPublicDataLen": 65, "pPublicData": pub})
    assert reader.read_ecdh1(ffi, s, _size(ffi, s)) == EcdhDeriveParams(1, b"", b"\x04" + b"\x02" * 64)
    salt, info = ffi.new("CK_BYTE[]", b"salt"), ffi.new("CK_BYTE[]", b"info")
    s = ffi.new("CK_HKDF_PARAMS *", {"bExtract": 1, "bExpand": 1, "prfHashMechanism": CKM_SHA256, "ulSaltType": 2,
                                     "pSalt": salt, "ulSaltLen": 4, "hSaltKey": 0, "pInfo": info, "ulInfoLen": 4})
    assert reader.read_hkdf(ffi, s, _size(ffi, s)) == HkdfParams(True, True, CKM_SHA256, 2, b"salt", 0, b"info")


def test_sp800_108_counter_and_feedback(ffi, reader):
    counter = ffi.new("CK_SP800_108_COUNTER_FORMAT *", {"bLittleEndian": 0, "ulWidthInBits": 32})
    dkm = ffi.new("CK_SP800_108_DKM_LENGTH_FORMAT *", {"dkmLengthMethod": 1, "bLittleEndian": 1, "ulWidthInBits": 16})
    label = ffi.new("CK_BYTE[]", b"label")
    items = ffi.new("CK_PRF_DATA_PARAM[3]")
    items[0] = {"type": 1, "pValue": counter, "ulValueLen": ffi.sizeof(counter[0])}
    items[1] = {"type": 3, "pValue": dkm, "ulValueLen": ffi.sizeof(dkm[0])}
    items[2] = {"type": 4, "pValue": label, "ulValueLen": 5}
    s = ffi.new("CK_SP800_108_KDF_PARAMS *", {"prfType": CKM_SHA256, "ulNumberOfDataParams": 3, "pDataParams": items,
                                              "ulAdditionalDerivedKeys": 0, "pAdditionalDerivedKeys": ffi.NULL})
    assert reader.read_sp800_108(ffi, s, _size(ffi, s)) == Sp800108Params(CKM_SHA256, (
        PrfDataParam(1, Sp800108CounterFormat(False, 32)),
        PrfDataParam(3, Sp800108DkmLengthFormat(1, True, 16)),
        PrfDataParam(4, b"label"),
    ))
    iv = ffi.new("CK_BYTE[]", b"iv")
    items[0] = {"type": 1, "pValue": ffi.NULL, "ulValueLen": 0}
    f = ffi.new("CK_SP800_108_FEEDBACK_KDF_PARAMS *", {"prfType": CKM_SHA256, "ulNumberOfDataParams": 1,
                                                       "pDataParams": items, "ulIVLen": 2, "pIV": iv,
                                                       "ulAdditionalDerivedKeys": 0})
    assert reader.read_sp800_108(ffi, f, _size(ffi, f)) == Sp800108Params(CKM_SHA256, (PrfDataParam(1, None),), b"iv")
    s.ulAdditionalDerivedKeys = 1
    _raises_param_invalid(reader.read_sp800_108, ffi, s, _size(ffi, s))
    items[0] = {"type": 99, "pValue": ffi.NULL, "ulValueLen": 0}
    s.ulAdditionalDerivedKeys = 0
    _raises_param_invalid(reader.read_sp800_108, ffi, s, _size(ffi, s))


def test_pbkdf2_both_struct_versions(ffi, reader):
    salt, password = ffi.new("CK_BYTE[]", b"salt"), ffi.new("CK_BYTE[]", b"password")
    common = {"saltSource": 1, "pSaltSourceData": salt, "ulSaltSourceDataLen": 4, "iterations": 1000, "prf": 2,
              "pPrfData": ffi.NULL, "ulPrfDataLen": 0, "pPassword": password}
    expected = Pbkd2Params(1, b"salt", 1000, 2, b"", b"password")
    v2 = ffi.new("CK_PKCS5_PBKD2_PARAMS2 *", {**common, "ulPasswordLen": 8})
    assert reader.read_pbkd2(ffi, v2, _size(ffi, v2)) == expected
    length = ffi.new("CK_ULONG *", 8)
    v1 = ffi.new("CK_PKCS5_PBKD2_PARAMS *", {**common, "ulPasswordLen": length})
    assert reader.read_pbkd2(ffi, v1, _size(ffi, v1)) == expected


def test_every_registered_param_kind_has_a_reader(reader):
    for entry in registry.all_entries():
        if entry.param is not None:
            assert entry.param in reader.READERS, hex(entry.mechanism)
