"""Lengths are checked before a buffer is read (issue 15, item 10; abi/limits.py).

Every case crosses the built ``.so`` with a length far beyond its limit over a small real
buffer, and expects the spec's code for "too long" in that place. Before the fix:
``C_Login`` with ulPinLen = 256 MiB over 5 bytes crashed the host (SIGSEGV: run in a child
process here, so a crash fails the test instead of killing pytest), the other huge lengths
answered CKR_GENERAL_ERROR (MemoryError), and a 1-Mbit RSA public key was accepted.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cryptoki_shim import spec
from p11 import P11, USER_PIN, Template, ffi, raises_ckr

HUGE = 1 << 62  # no allocator gives this: the old code's MemoryError, never a crash
CKU_USER = int(spec.CKU_USER)
TESTS = Path(__file__).resolve().parent


def _small() -> object:
    return ffi.new("unsigned char[]", b"1234\0")  # 5 bytes


def _aes_key(p11: P11, s: int, value: bytes | None = None, extra: dict[int, object] | None = None) -> int:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_TOKEN: False,
             spec.CKA_ENCRYPT: True, spec.CKA_DECRYPT: True, spec.CKA_VALUE: value or secrets.token_bytes(32)}
    attrs.update(extra or {})
    return p11.create(s, attrs)


# ---------------------------------------------------------------------------- PINs


def _in_child(p11: P11, conf: Path, body: str) -> list[int]:
    """Run ``body`` (``p`` is an initialized P11, ``ffi`` its cffi) in a child process on the
    same store, and return the integers it prints: a crash there fails the test, not pytest."""
    script = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom p11 import P11, ffi\np = P11()\n" \
             f"p.initialize()\n{textwrap.dedent(body)}\np.finalize()\n"
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf))
    p11.finalize()  # the child opens the same store
    try:
        proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    finally:
        p11.initialize()
    assert proc.returncode == 0, f"the host died (rc {proc.returncode}): {proc.stderr[-500:]}"
    return [int(x) for x in proc.stdout.split()]


def test_login_with_256mib_pin_length_over_5_bytes_is_pin_len_range_not_a_crash(token: P11, shim_conf: Path) -> None:
    """The reproduction from the issue (the old code segfaulted there)."""
    first, second = _in_child(token, shim_conf, f"""
        s = p.open(0)
        pin = ffi.new("unsigned char[]", b"1234\\0")
        print(p.call("C_Login", s, {CKU_USER}, pin, 256 << 20))
        print(p.call("C_Login", s, {CKU_USER}, pin, 4))
    """)
    assert spec.ckr_name(first) == "CKR_PIN_LEN_RANGE"
    assert second == 0  # the right PIN still logs in: the long one was not a counted guess


def test_garbage_pbkdf2_password_length_is_refused_not_followed(token: P11, shim_conf: Path) -> None:
    """A huge ulPasswordLen in CK_PKCS5_PBKD2_PARAMS2 was taken for the 2.40 struct's pointer
    and dereferenced (a crash); only a possible address is, and its length is then bounded."""
    (rv,) = _in_child(token, shim_conf, f"""
        s = p.open(0)
        p.login(s, {USER_PIN!r})
        prm = ffi.new("CK_PKCS5_PBKD2_PARAMS2 *")
        salt, pw = ffi.new("unsigned char[]", b"salt"), ffi.new("unsigned char[]", b"password")
        prm.saltSource, prm.pSaltSourceData, prm.ulSaltSourceDataLen = {int(spec.CKZ_SALT_SPECIFIED)}, salt, 4
        prm.iterations, prm.prf = 1000, {int(spec.CKP_PKCS5_PBKD2_HMAC_SHA256)}
        prm.pPassword, prm.ulPasswordLen = pw, {HUGE}
        m, _keep = p.mechanism({int(spec.CKM_PKCS5_PBKD2)}, prm)
        t, h = ffi.new("CK_ATTRIBUTE[1]"), ffi.new("CK_OBJECT_HANDLE *")
        print(p.call("C_GenerateKey", s, m, t, 0, h))
    """)
    assert spec.ckr_name(rv) == "CKR_MECHANISM_PARAM_INVALID"


def test_pin_longer_than_max_pin_len_is_refused_unread_and_not_counted(token: P11) -> None:
    s = token.open(0)
    long_pin = ffi.new("unsigned char[]", 256)  # max_pin_len is 255 by default
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        token.check("C_Login", s, CKU_USER, long_pin, 256)
    flags = token.token_info(0).flags
    assert not flags & (spec.CKF_USER_PIN_COUNT_LOW | spec.CKF_USER_PIN_FINAL_TRY | spec.CKF_USER_PIN_LOCKED)


@pytest.mark.parametrize("call", ["C_InitPIN", "C_SetPIN_old", "C_SetPIN_new", "C_InitToken"])
def test_every_pin_entry_checks_the_length_first(token: P11, call: str) -> None:
    s = token.open(0)
    pin, ok = _small(), ffi.new("unsigned char[]", USER_PIN)
    with raises_ckr(spec.CKR_PIN_LEN_RANGE):
        if call == "C_InitPIN":
            token.login(s, b"12345678", user=spec.CKU_SO)
            token.check("C_InitPIN", s, pin, HUGE)
        elif call == "C_SetPIN_old":
            token.login(s, USER_PIN)
            token.check("C_SetPIN", s, pin, HUGE, ok, len(USER_PIN))
        elif call == "C_SetPIN_new":
            token.login(s, USER_PIN)
            token.check("C_SetPIN", s, ok, len(USER_PIN), pin, HUGE)
        else:
            token.close(s)
            token.check("C_InitToken", 0, pin, HUGE, b"label".ljust(32))


# ---------------------------------------------------------------------------- data


@pytest.mark.parametrize("fn, expected", [
    ("C_Encrypt", spec.CKR_DATA_LEN_RANGE),
    ("C_EncryptUpdate", spec.CKR_DATA_LEN_RANGE),
    ("C_Decrypt", spec.CKR_ENCRYPTED_DATA_LEN_RANGE),
    ("C_DecryptUpdate", spec.CKR_ENCRYPTED_DATA_LEN_RANGE),
])
def test_huge_cipher_input_is_its_len_range(token: P11, user_session: int, fn: str, expected: int) -> None:
    key = _aes_key(token, user_session)
    m, _keep = token.mechanism(spec.CKM_AES_CBC_PAD, bytes(16))
    token.check("C_EncryptInit" if "Encrypt" in fn else "C_DecryptInit", user_session, m, key)
    out, n = ffi.new("unsigned char[]", 64), ffi.new("CK_ULONG *", 64)
    with raises_ckr(expected):
        token.check(fn, user_session, _small(), HUGE, out, n)


@pytest.mark.parametrize("fn", ["C_Sign", "C_SignUpdate", "C_Verify", "C_VerifyUpdate", "C_Digest", "C_DigestUpdate"])
def test_huge_data_to_sign_verify_digest_is_data_len_range(token: P11, user_session: int, fn: str) -> None:
    s = user_session
    if fn.startswith("C_Digest"):
        m, _keep = token.mechanism(spec.CKM_SHA256)
        token.check("C_DigestInit", s, m)
    else:
        key = token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                               spec.CKA_TOKEN: False, spec.CKA_SIGN: True, spec.CKA_VERIFY: True,
                               spec.CKA_VALUE: secrets.token_bytes(32)})
        m, _keep = token.mechanism(spec.CKM_SHA256_HMAC)
        token.check("C_SignInit" if fn.startswith("C_Sign") else "C_VerifyInit", s, m, key)
    out, n, sig = ffi.new("unsigned char[]", 64), ffi.new("CK_ULONG *", 64), ffi.new("unsigned char[]", 32)
    args = {"C_Sign": (out, n), "C_Digest": (out, n), "C_Verify": (sig, 32)}.get(fn, ())
    with raises_ckr(spec.CKR_DATA_LEN_RANGE):
        token.check(fn, s, _small(), HUGE, *args)


@pytest.mark.parametrize("fn", ["C_Verify", "C_VerifyFinal"])
def test_huge_signature_is_signature_len_range(token: P11, user_session: int, fn: str) -> None:
    s = user_session
    key = token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                           spec.CKA_TOKEN: False, spec.CKA_VERIFY: True, spec.CKA_VALUE: secrets.token_bytes(32)})
    m, _keep = token.mechanism(spec.CKM_SHA256_HMAC)
    token.check("C_VerifyInit", s, m, key)
    data = ffi.new("unsigned char[]", b"data")
    with raises_ckr(spec.CKR_SIGNATURE_LEN_RANGE):
        if fn == "C_Verify":
            token.check("C_Verify", s, data, 4, _small(), HUGE)
        else:
            token.check("C_VerifyFinal", s, _small(), HUGE)


def test_huge_seed_is_arguments_bad(token: P11, user_session: int) -> None:
    with raises_ckr(spec.CKR_ARGUMENTS_BAD):
        token.check("C_SeedRandom", user_session, _small(), HUGE)


def test_huge_wrapped_key_is_wrapped_key_len_range(token: P11, user_session: int) -> None:
    kek = _aes_key(token, user_session, extra={spec.CKA_UNWRAP: True})
    m, _keep = token.mechanism(spec.CKM_AES_KEY_WRAP_PAD)
    t = ffi.new("CK_ATTRIBUTE[1]")
    h = ffi.new("CK_OBJECT_HANDLE *")
    with raises_ckr(spec.CKR_WRAPPED_KEY_LEN_RANGE):
        token.check("C_UnwrapKey", user_session, m, kek, _small(), HUGE, t, 0, h)


# ---------------------------------------------------------------------------- mechanism parameters


def _param_struct(ctype: str, **fields: object) -> tuple[object, list[object]]:
    keep: list[object] = []
    s = ffi.new(ctype + " *")
    for name, value in fields.items():
        if isinstance(value, bytes):
            buf = ffi.new("unsigned char[]", value)
            keep.append(buf)
            value = buf
        setattr(s, name, value)
    return s, keep


@pytest.mark.parametrize("mech, ctype, fields", [
    (spec.CKM_AES_GCM, "CK_GCM_PARAMS", {"pIv": b"1234\0", "ulIvLen": HUGE, "ulTagBits": 128}),
    (spec.CKM_AES_GCM, "CK_GCM_PARAMS", {"pIv": bytes(12), "ulIvLen": 12, "pAAD": b"1234\0", "ulAADLen": HUGE,
                                         "ulTagBits": 128}),
    (spec.CKM_ECDH1_DERIVE, "CK_ECDH1_DERIVE_PARAMS", {"kdf": 1, "pPublicData": b"1234\0",
                                                       "ulPublicDataLen": HUGE}),
    (spec.CKM_EDDSA, "CK_EDDSA_PARAMS", {"phFlag": False, "pContextData": b"1234\0", "ulContextDataLen": HUGE}),
    (spec.CKM_RSA_PKCS_OAEP, "CK_RSA_PKCS_OAEP_PARAMS", {"hashAlg": spec.CKM_SHA256, "mgf": spec.CKG_MGF1_SHA256,
                                                         "source": 1, "pSourceData": b"1234\0",
                                                         "ulSourceDataLen": HUGE}),
    (spec.CKM_HKDF_DERIVE, "CK_HKDF_PARAMS", {"bExtract": True, "bExpand": True, "prfHashMechanism": spec.CKM_SHA256,
                                              "ulSaltType": 2, "pSalt": b"1234\0", "ulSaltLen": HUGE}),
    (spec.CKM_HKDF_DERIVE, "CK_HKDF_PARAMS", {"bExtract": False, "bExpand": True, "prfHashMechanism": spec.CKM_SHA256,
                                              "ulSaltType": 1, "pInfo": b"1234\0", "ulInfoLen": HUGE}),
], ids=["gcm-iv", "gcm-aad", "ecdh-public-data", "eddsa-context", "oaep-label", "hkdf-salt", "hkdf-info"])
def test_huge_length_inside_a_parameter_is_mechanism_param_invalid(token: P11, user_session: int, mech: int,
                                                                   ctype: str, fields: dict) -> None:
    param, keep = _param_struct(ctype, **fields)
    m, _keep = token.mechanism(mech, param)
    if mech in (spec.CKM_HKDF_DERIVE, spec.CKM_ECDH1_DERIVE):
        t, h = ffi.new("CK_ATTRIBUTE[1]"), ffi.new("CK_OBJECT_HANDLE *")
        call = lambda: token.check("C_DeriveKey", user_session, m, 0, t, 0, h)  # noqa: E731
    else:
        init = "C_SignInit" if mech == spec.CKM_EDDSA else "C_EncryptInit"
        call = lambda: token.check(init, user_session, m, 0)  # noqa: E731
    with raises_ckr(spec.CKR_MECHANISM_PARAM_INVALID):
        call()


def test_huge_iv_parameter_length_is_mechanism_param_invalid(token: P11, user_session: int) -> None:
    key = _aes_key(token, user_session)
    m = ffi.new("CK_MECHANISM *")
    iv = _small()
    m.mechanism, m.pParameter, m.ulParameterLen = spec.CKM_AES_CBC_PAD, iv, HUGE
    with raises_ckr(spec.CKR_MECHANISM_PARAM_INVALID):
        token.check("C_EncryptInit", user_session, m, key)


# ---------------------------------------------------------------------------- attributes, templates


def test_huge_attribute_value_length_is_attribute_value_invalid(token: P11, user_session: int) -> None:
    t = ffi.new("CK_ATTRIBUTE[1]")
    buf = _small()
    t[0].type, t[0].pValue, t[0].ulValueLen = spec.CKA_LABEL, buf, HUGE
    h = ffi.new("CK_OBJECT_HANDLE *")
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.check("C_CreateObject", user_session, t, 1, h)


def test_huge_template_count_is_arguments_bad(token: P11, user_session: int) -> None:
    t = ffi.new("CK_ATTRIBUTE[1]")
    h = ffi.new("CK_OBJECT_HANDLE *")
    for fn, args in (("C_CreateObject", (t, HUGE, h)), ("C_FindObjectsInit", (t, HUGE))):
        with raises_ckr(spec.CKR_ARGUMENTS_BAD):
            token.check(fn, user_session, *args)
    with raises_ckr(spec.CKR_ARGUMENTS_BAD):
        token.check("C_GetAttributeValue", user_session, _aes_key(token, user_session), t, HUGE)


def test_huge_nested_template_is_attribute_value_invalid(token: P11, user_session: int) -> None:
    inner = ffi.new("CK_ATTRIBUTE[1]")
    t = ffi.new("CK_ATTRIBUTE[1]")
    t[0].type, t[0].pValue = spec.CKA_WRAP_TEMPLATE, inner
    t[0].ulValueLen = ffi.sizeof("CK_ATTRIBUTE") * (1 << 20)  # a million attributes, within the value limit
    h = ffi.new("CK_OBJECT_HANDLE *")
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.check("C_CreateObject", user_session, t, 1, h)


# ---------------------------------------------------------------------------- RSA sizes


def _modulus(bits: int) -> bytes:
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1
    return n.to_bytes((bits + 7) // 8, "big")


def _rsa_public(bits: int) -> dict[int, object]:
    return {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA, spec.CKA_TOKEN: False,
            spec.CKA_ENCRYPT: True, spec.CKA_VERIFY: True, spec.CKA_MODULUS: _modulus(bits),
            spec.CKA_PUBLIC_EXPONENT: (65537).to_bytes(3, "big")}


def test_one_megabit_rsa_public_key_is_refused_quickly(token: P11, user_session: int) -> None:
    """C_CreateObject's code for a CKA_MODULUS this token cannot hold (its "Return values"
    list has no CKR_KEY_SIZE_RANGE)."""
    start = time.monotonic()
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(user_session, _rsa_public(1 << 20))
    assert time.monotonic() - start < 5


def test_rsa_public_key_size_limit_is_the_mechanism_info_maximum(token: P11, user_session: int) -> None:
    info = ffi.new("CK_MECHANISM_INFO *")
    token.check("C_GetMechanismInfo", 0, spec.CKM_RSA_PKCS, info)
    top = info.ulMaxKeySize
    assert top == 16384
    token.create(user_session, _rsa_public(top))
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(user_session, _rsa_public(top + 1))


def _fake_rsa_private(bits: int) -> tuple[dict[int, object], bytes]:
    """RSA integers of the given size (not a real key: nothing may get as far as checking it)."""
    half = bits // 2
    p = secrets.randbits(half) | (1 << (half - 1)) | 1
    q = secrets.randbits(half) | (1 << (half - 1)) | 1
    ints = [p * q, 65537, secrets.randbits(bits - 1), p, q] + [secrets.randbits(half - 1) for _ in range(3)]

    def tlv(tag: int, body: bytes) -> bytes:
        n = len(body)
        head = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag]) + head + body

    def integer(v: int) -> bytes:
        return tlv(2, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))

    rsa_key = tlv(0x30, integer(0) + b"".join(integer(v) for v in ints))
    alg = tlv(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
    pkcs8 = tlv(0x30, integer(0) + alg + tlv(4, rsa_key))
    attrs = {spec.CKA_CLASS: spec.CKO_PRIVATE_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA, spec.CKA_TOKEN: False,
             spec.CKA_SIGN: True}
    for cka, v in zip((spec.CKA_MODULUS, spec.CKA_PUBLIC_EXPONENT, spec.CKA_PRIVATE_EXPONENT, spec.CKA_PRIME_1,
                       spec.CKA_PRIME_2), ints):
        attrs[cka] = v.to_bytes((v.bit_length() + 7) // 8, "big")
    return attrs, pkcs8


def test_oversized_rsa_private_key_is_refused_by_create_and_unwrap(token: P11, user_session: int) -> None:
    # imported here: the module refuses to start in a host that imported cryptography first
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

    s = user_session
    attrs, pkcs8 = _fake_rsa_private(20000)
    start = time.monotonic()
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(s, attrs)
    kek_value = secrets.token_bytes(32)
    kek = _aes_key(token, s, kek_value, {spec.CKA_UNWRAP: True})
    blob = aes_key_wrap_with_padding(kek_value, pkcs8)
    m, _keep = token.mechanism(spec.CKM_AES_KEY_WRAP_PAD)
    t = Template({spec.CKA_CLASS: spec.CKO_PRIVATE_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA, spec.CKA_TOKEN: False})
    h = ffi.new("CK_OBJECT_HANDLE *")
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.check("C_UnwrapKey", s, m, kek, blob, len(blob), t.array, t.count, h)
    assert time.monotonic() - start < 5



def test_sp800_108_data_param_count_is_bounded(token: P11, user_session: int) -> None:
    """ulNumberOfDataParams is walked item by item: a count over ``limits.PARAMETER_ITEMS``
    (64) is refused before the walk (old code: 1000 valid items were read, then the key
    handle looked at)."""
    n = 1000
    label = ffi.new("unsigned char[]", b"label")
    items = ffi.new("CK_PRF_DATA_PARAM[]", n)
    for i in range(n):
        items[i].type, items[i].pValue, items[i].ulValueLen = 4, label, 5  # CK_SP800_108_BYTE_ARRAY
    prm = ffi.new("CK_SP800_108_KDF_PARAMS *")
    prm.prfType, prm.ulNumberOfDataParams, prm.pDataParams = spec.CKM_SHA256_HMAC, n, items
    m, _keep = token.mechanism(spec.CKM_SP800_108_COUNTER_KDF, prm)
    t, h = ffi.new("CK_ATTRIBUTE[1]"), ffi.new("CK_OBJECT_HANDLE *")
    with raises_ckr(spec.CKR_MECHANISM_PARAM_INVALID):
        token.check("C_DeriveKey", user_session, m, 0, t, 0, h)
