"""Return codes of the triple-DES mechanisms and of the derivations of issue 23 item 10
(CKM_*_ENCRYPT_DATA, CKM_CONCATENATE_*) through the built library: the abuse cases next to the
use cases of tests/test_mech_abi.py (wrong lengths, IVs, key types, parameters, handles,
templates) and the mechanism information each advertises."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cryptoki_shim import spec as S
from p11 import USER_PIN, P11, Template, ffi, raises_ckr
from vectors_abi import Params, derive, mech_info, secret, unwrap, wrap

GENERIC = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_TOKEN: False,
           S.CKA_EXTRACTABLE: True}


def string_data(data: bytes) -> Any:
    return ffi.new("CK_KEY_DERIVATION_STRING_DATA *", {"pData": Params().buf(data), "ulLen": len(data)})


def cbc_data(ctype: str, iv: bytes, data: bytes) -> Any:
    p = ffi.new(f"{ctype} *")
    ffi.memmove(p.iv, iv, len(iv))
    p.pData, p.length = Params().buf(data), len(data)
    return p


def rv_of(p: P11, fn: str, s: int, mech: int, key: int, param: Any = None) -> int:
    m, _keep = p.mechanism(mech, param)
    return p.call(fn, s, m, key)


@pytest.fixture
def des3(token: P11, user_session: int) -> int:
    return token.create(user_session, secret(S.CKK_DES3, os.urandom(24), encrypt=True, decrypt=True, sign=True,
                                             verify=True, wrap=True, unwrap=True, derive=True, extractable=True))


# ----------------------------------------------------------------------------- info


def test_mechanism_info_of_the_new_mechanisms(token: P11) -> None:
    """Key sizes in bytes (as AES's), the flags each mechanism works with."""
    cipher = S.CKF_ENCRYPT | S.CKF_DECRYPT | S.CKF_WRAP | S.CKF_UNWRAP
    want = {
        S.CKM_DES2_KEY_GEN: (16, 16, S.CKF_GENERATE), S.CKM_DES3_KEY_GEN: (24, 24, S.CKF_GENERATE),
        S.CKM_DES3_ECB: (16, 24, cipher), S.CKM_DES3_CBC: (16, 24, cipher), S.CKM_DES3_CBC_PAD: (16, 24, cipher),
        S.CKM_DES3_MAC: (16, 24, S.CKF_SIGN | S.CKF_VERIFY), S.CKM_DES3_CMAC_GENERAL: (16, 24, S.CKF_SIGN | S.CKF_VERIFY),
        S.CKM_AES_ECB_ENCRYPT_DATA: (16, 32, S.CKF_DERIVE), S.CKM_AES_CBC_ENCRYPT_DATA: (16, 32, S.CKF_DERIVE),
        S.CKM_DES3_ECB_ENCRYPT_DATA: (16, 24, S.CKF_DERIVE), S.CKM_DES3_CBC_ENCRYPT_DATA: (16, 24, S.CKF_DERIVE),
        S.CKM_CONCATENATE_BASE_AND_KEY: (1, 65536, S.CKF_DERIVE),
    }
    for mech, (lo, hi, flags) in want.items():
        info = mech_info(token, mech)
        # the message-based flags of the signature mechanisms come on top (3.0 §5.14)
        got = info.flags & ~(S.CKF_MESSAGE_SIGN | S.CKF_MESSAGE_VERIFY)
        assert (info.ulMinKeySize, info.ulMaxKeySize, got) == (lo, hi, flags), S.ckm_name(mech)


# ----------------------------------------------------------------------------- ciphers


def test_des3_lengths_ivs_padding_and_key_types(token: P11, user_session: int, des3: int) -> None:
    p, s = token, user_session
    with raises_ckr(S.CKR_DATA_LEN_RANGE):
        p.encrypt(s, S.CKM_DES3_ECB, des3, b"x" * 12)
    with raises_ckr(S.CKR_ENCRYPTED_DATA_LEN_RANGE):
        p.decrypt(s, S.CKM_DES3_CBC, des3, b"x" * 12, bytes(8))
    with raises_ckr(S.CKR_ENCRYPTED_DATA_LEN_RANGE):
        p.decrypt(s, S.CKM_DES3_CBC_PAD, des3, b"", bytes(8))
    blob = p.encrypt(s, S.CKM_DES3_ECB, des3, bytes(8))  # a block whose CBC_PAD decryption has bad padding
    assert p.decrypt(s, S.CKM_DES3_ECB, des3, blob) == bytes(8)
    with raises_ckr(S.CKR_ENCRYPTED_DATA_INVALID):
        p.decrypt(s, S.CKM_DES3_CBC_PAD, des3, blob, bytes(8))
    for iv in (None, bytes(16), bytes(7)):  # CBC takes exactly 8 bytes
        assert rv_of(p, "C_EncryptInit", s, S.CKM_DES3_CBC, des3, iv) == S.CKR_MECHANISM_PARAM_INVALID
    aes = p.create(s, secret(S.CKK_AES, os.urandom(24), encrypt=True))
    assert rv_of(p, "C_EncryptInit", s, S.CKM_DES3_ECB, aes) == S.CKR_KEY_TYPE_INCONSISTENT
    assert rv_of(p, "C_EncryptInit", s, S.CKM_AES_ECB, des3) == S.CKR_KEY_TYPE_INCONSISTENT
    no_encrypt = p.create(s, secret(S.CKK_DES3, os.urandom(24), encrypt=False))
    assert rv_of(p, "C_EncryptInit", s, S.CKM_DES3_ECB, no_encrypt) == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # a DES3 value is 24 bytes
        p.create(s, secret(S.CKK_DES3, os.urandom(16)))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        p.create(s, secret(S.CKK_DES2, os.urandom(24)))


def test_des3_mac_lengths(token: P11, user_session: int, des3: int) -> None:
    p, s = token, user_session
    for n in (0, 9):
        param = n.to_bytes(8, "little")
        assert rv_of(p, "C_SignInit", s, S.CKM_DES3_MAC_GENERAL, des3, param) == S.CKR_MECHANISM_PARAM_INVALID
        assert rv_of(p, "C_SignInit", s, S.CKM_DES3_CMAC_GENERAL, des3, param) == S.CKR_MECHANISM_PARAM_INVALID
    tag = p.sign(s, S.CKM_DES3_CMAC, des3, b"data")
    assert len(tag) == 8 and len(p.sign(s, S.CKM_DES3_MAC, des3, b"data")) == 4
    with raises_ckr(S.CKR_SIGNATURE_LEN_RANGE):
        p.verify(s, S.CKM_DES3_CMAC, des3, b"data", tag[:4])
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        p.verify(s, S.CKM_DES3_CMAC, des3, b"data", bytes(8))


def test_des3_unwrap_takes_the_type_length(token: P11, user_session: int, des3: int) -> None:
    """A DES3 key wrapped by AES-ECB is zero padded to 32 bytes; unwrapped as CKK_DES3 it is cut
    to 24 (no CKA_VALUE_LEN: the type fixes it); a blob too short for the type is refused."""
    p, s = token, user_session
    value = p.get(s, des3, S.CKA_VALUE)
    kek = p.create(s, secret(S.CKK_AES, os.urandom(32), wrap=True, unwrap=True))
    blob = wrap(p, s, S.CKM_AES_ECB, kek, des3)
    assert len(blob) == 32
    t = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_DES3, S.CKA_TOKEN: False, S.CKA_EXTRACTABLE: True}
    assert p.get(s, unwrap(p, s, S.CKM_AES_ECB, kek, blob, t), S.CKA_VALUE) == value
    short = p.encrypt(s, S.CKM_AES_ECB, p.create(s, secret(S.CKK_AES, os.urandom(32), encrypt=True)), bytes(16))
    with raises_ckr(S.CKR_WRAPPED_KEY_INVALID):
        unwrap(p, s, S.CKM_AES_ECB, kek, short, t)
    blob = wrap(p, s, S.CKM_DES3_ECB, des3, p.create(s, secret(S.CKK_AES, os.urandom(16), extractable=True)))
    assert len(blob) == 16


# ----------------------------------------------------------------------------- ENCRYPT_DATA


@pytest.mark.parametrize("data, why", [(b"", "empty"), (b"x" * 20, "not a block multiple"),
                                       (b"x" * 8, "shorter than the 16-byte key")])
def test_encrypt_data_refuses_data_that_cannot_make_the_key(token: P11, user_session: int, des3: int,
                                                            data: bytes, why: str) -> None:
    p, s = token, user_session
    t = {**GENERIC, S.CKA_VALUE_LEN: 16}
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        derive(p, s, S.CKM_DES3_ECB_ENCRYPT_DATA, des3, t, string_data(data))
    aes = p.create(s, secret(S.CKK_AES, os.urandom(16), derive=True, extractable=True))
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        derive(p, s, S.CKM_AES_CBC_ENCRYPT_DATA, aes, t, cbc_data("CK_AES_CBC_ENCRYPT_DATA_PARAMS", bytes(16), data))


def test_encrypt_data_parameters_keys_and_lengths(token: P11, user_session: int, des3: int) -> None:
    p, s = token, user_session
    # the DES struct to the AES mechanism (a wrong ulParameterLen), a NULL pData with a length
    m, _keep = p.mechanism(S.CKM_AES_CBC_ENCRYPT_DATA, cbc_data("CK_DES_CBC_ENCRYPT_DATA_PARAMS", bytes(8), bytes(16)))
    aes = p.create(s, secret(S.CKK_AES, os.urandom(16), derive=True, extractable=True))
    t = Template({**GENERIC, S.CKA_VALUE_LEN: 16})
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert p.call("C_DeriveKey", s, m, aes, t.array, t.count, h) == S.CKR_MECHANISM_PARAM_INVALID
    null = ffi.new("CK_KEY_DERIVATION_STRING_DATA *", {"pData": ffi.NULL, "ulLen": 16})
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        derive(p, s, S.CKM_AES_ECB_ENCRYPT_DATA, aes, {**GENERIC, S.CKA_VALUE_LEN: 16}, null)
    with raises_ckr(S.CKR_KEY_TYPE_INCONSISTENT):  # a DES3 key is not an AES base
        derive(p, s, S.CKM_AES_ECB_ENCRYPT_DATA, des3, {**GENERIC, S.CKA_VALUE_LEN: 16}, string_data(bytes(16)))
    # a DES3 key from 32 bytes of data: no CKA_VALUE_LEN, the type's 24 bytes, odd parity
    t3 = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_DES3, S.CKA_TOKEN: False, S.CKA_EXTRACTABLE: True}
    h3 = derive(p, s, S.CKM_DES3_CBC_ENCRYPT_DATA, des3, t3,
                cbc_data("CK_DES_CBC_ENCRYPT_DATA_PARAMS", bytes(8), os.urandom(32)))
    value = p.get(s, h3, S.CKA_VALUE)
    assert len(value) == 24 and all(bin(b).count("1") % 2 for b in value)
    # an AES key asks a length the ciphertext has not
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        derive(p, s, S.CKM_DES3_ECB_ENCRYPT_DATA, des3, {**GENERIC, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_VALUE_LEN: 32},
               string_data(bytes(24)))
    # without a length or a type of one length, the whole ciphertext
    assert p.get(s, derive(p, s, S.CKM_DES3_ECB_ENCRYPT_DATA, des3, GENERIC, string_data(bytes(40))),
                 S.CKA_VALUE_LEN) == 40


# ----------------------------------------------------------------------------- CONCATENATE


def test_concatenate_handles_templates_and_parameters(token: P11, user_session: int) -> None:
    p, s = token, user_session
    base = p.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(16), derive=True, extractable=True))
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):
        derive(p, s, S.CKM_CONCATENATE_BASE_AND_KEY, base, GENERIC, (0xDEAD).to_bytes(8, "little"))
    data_object = p.create(s, {S.CKA_CLASS: S.CKO_DATA, S.CKA_TOKEN: False, S.CKA_VALUE: b"v"})
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):  # not a key
        derive(p, s, S.CKM_CONCATENATE_BASE_AND_KEY, base, GENERIC, data_object.to_bytes(8, "little"))
    m, _keep = p.mechanism(S.CKM_CONCATENATE_BASE_AND_KEY, (1).to_bytes(4, "little"))  # not a CK_OBJECT_HANDLE
    t = Template(GENERIC)
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert p.call("C_DeriveKey", s, m, base, t.array, t.count, h) == S.CKR_MECHANISM_PARAM_INVALID
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):  # longer than base + data
        derive(p, s, S.CKM_CONCATENATE_BASE_AND_DATA, base, {**GENERIC, S.CKA_VALUE_LEN: 25}, string_data(b"x" * 8))
    aes = derive(p, s, S.CKM_CONCATENATE_BASE_AND_DATA, base,
                 {**GENERIC, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_VALUE_LEN: 24}, string_data(b"x" * 8))
    assert p.get(s, aes, S.CKA_VALUE_LEN) == 24
    no_derive = p.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(16), derive=False, extractable=True))
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        derive(p, s, S.CKM_CONCATENATE_DATA_AND_BASE, no_derive, GENERIC, string_data(b"x"))


def test_a_des3_token_key_survives_a_restart(token: P11, user_session: int) -> None:
    """Stored without CKA_VALUE_LEN, sealed, and the same key after C_Finalize/C_Initialize
    (its check value is the first bytes of ECB(0), what the key computes)."""
    p, s = token, user_session
    k = p.generate_key(s, S.CKM_DES3_KEY_GEN, {S.CKA_TOKEN: True, S.CKA_LABEL: b"des3 kept"})
    block = p.encrypt(s, S.CKM_DES3_ECB, k, bytes(8))
    assert p.get(s, k, S.CKA_CHECK_VALUE) == block[:3]
    p.finalize()
    p.initialize()
    s = p.open(0)
    p.login(s, USER_PIN)
    (h,) = p.find(s, {S.CKA_LABEL: b"des3 kept"})
    assert p.get(s, h, S.CKA_KEY_TYPE) == S.CKK_DES3
    assert p.encrypt(s, S.CKM_DES3_ECB, h, bytes(8)) == block
