"""The slot option ``legacy_mechanisms`` (issue 23 item 9) through the built library: single
DES and MD5 exist only in a slot that sets it. Here slot 0 sets it and slot 1 does not, in
one process, so each answer is the slot's own and not the module's.

Off: the mechanisms are absent from C_GetMechanismList, C_GetMechanismInfo and every
function that takes a mechanism answer CKR_MECHANISM_INVALID (as for a mechanism we do not
have), whatever the key. On: they work, each checked against pyca / hashlib and the classic
known answers (FIPS 81's DES example, RFC 1321's MD5 test suite, RFC 2202's HMAC-MD5)."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sympad
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from cryptoki_shim import spec as S
from p11 import P11, SO_PIN, USER_PIN, Template, ffi, raises_ckr, write_config
from vectors_abi import mech_info, mech_list, multipart, secret, unwrap, usage, wrap

MSG = b"legacy data, for legacy peers only" * 3
LEGACY = (S.CKM_DES_KEY_GEN, S.CKM_DES_ECB, S.CKM_DES_CBC, S.CKM_DES_CBC_PAD, S.CKM_MD5, S.CKM_MD5_HMAC,
          S.CKM_MD5_HMAC_GENERAL, S.CKM_MD5_RSA_PKCS)
ON, OFF = 0, 1


@pytest.fixture
def two_slots(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[P11, int, int]]:
    """Slot 0 with ``legacy_mechanisms = true``, slot 1 without; a user session on each."""
    slots = ('[[slots]]\nid = 0\nkdf_cost = "test"\nlegacy_mechanisms = true\n'
             '[[slots]]\nid = 1\nkdf_cost = "test"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, slots=slots)))
    p = P11(lib_path)
    p.initialize()
    try:
        sessions = []
        for slot in (ON, OFF):
            p.init_token(slot, SO_PIN, f"legacy{slot}")
            s = p.open(slot)
            p.login(s, SO_PIN, user=S.CKU_SO)
            p.init_pin(s, USER_PIN)
            p.logout(s)
            p.login(s, USER_PIN)
            sessions.append(s)
        yield p, sessions[0], sessions[1]
    finally:
        p.call("C_Finalize", ffi.NULL)


def _des_key(value: bytes) -> Any:
    """Single DES on pyca: three-key TDES with K1 = K2 = K3 (EDE collapses to one DES)."""
    return TripleDES(value * 3)


# ----------------------------------------------------------------------------- off


def test_off_by_default_and_per_slot(two_slots: tuple[P11, int, int]) -> None:
    p, _on, _off = two_slots
    listed_on, listed_off = set(mech_list(p, ON)), set(mech_list(p, OFF))
    assert set(LEGACY) <= listed_on
    assert not set(LEGACY) & listed_off
    assert listed_on - listed_off == set(LEGACY)  # nothing else differs
    assert {S.CKM_DES3_CBC, S.CKM_DES2_KEY_GEN} <= listed_off  # triple DES is not legacy
    for m in LEGACY:
        info = ffi.new("CK_MECHANISM_INFO *")
        assert p.call("C_GetMechanismInfo", OFF, m, info) == S.CKR_MECHANISM_INVALID, S.ckm_name(m)
        assert mech_info(p, m, ON).flags


def test_every_function_refuses_a_legacy_mechanism_when_off(two_slots: tuple[P11, int, int]) -> None:
    """Digest, generate, encrypt/decrypt, sign/verify, wrap/unwrap: CKR_MECHANISM_INVALID in
    slot 1, with keys that would do (a CKK_DES key object is only secret bytes there)."""
    p, _on, s = two_slots
    with raises_ckr(S.CKR_MECHANISM_INVALID):
        p.digest(s, S.CKM_MD5, MSG)
    with raises_ckr(S.CKR_MECHANISM_INVALID):
        p.generate_key(s, S.CKM_DES_KEY_GEN, {S.CKA_TOKEN: False})
    des = p.create(s, secret(S.CKK_DES, bytes.fromhex("0123456789abcdef"), encrypt=True, decrypt=True, wrap=True,
                             unwrap=True))
    for fn, mech, param in (("Encrypt", S.CKM_DES_ECB, None), ("Decrypt", S.CKM_DES_CBC, bytes(8)),
                            ("Encrypt", S.CKM_DES_CBC_PAD, bytes(8))):
        m, _keep = p.mechanism(mech, param)
        assert p.call(f"C_{fn}Init", s, m, des) == S.CKR_MECHANISM_INVALID
    mac_key = p.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(16), sign=True, verify=True))
    for fn in ("Sign", "Verify"):
        m, _keep = p.mechanism(S.CKM_MD5_HMAC)
        assert p.call(f"C_{fn}Init", s, m, mac_key) == S.CKR_MECHANISM_INVALID
    _pub, priv = p.generate_key_pair(s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, usage("verify", modulus_bits=2048),
                                     usage("sign"))
    m, _keep = p.mechanism(S.CKM_MD5_RSA_PKCS)
    assert p.call("C_SignInit", s, m, priv) == S.CKR_MECHANISM_INVALID
    assert p.call("C_MessageSignInit", s, m, priv) == S.CKR_MECHANISM_INVALID  # 3.0 message signing
    m, _keep = p.mechanism(S.CKM_MD5_HMAC)
    assert p.call("C_MessageVerifyInit", s, m, mac_key) == S.CKR_MECHANISM_INVALID
    target = p.create(s, secret(S.CKK_AES, os.urandom(16), extractable=True))
    with raises_ckr(S.CKR_MECHANISM_INVALID):
        wrap(p, s, S.CKM_DES_CBC_PAD, des, target, bytes(8))
    with raises_ckr(S.CKR_MECHANISM_INVALID):
        unwrap(p, s, S.CKM_DES_ECB, des, bytes(16), {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES})


# ----------------------------------------------------------------------------- on


def test_md5_digest_hmac_and_rsa(two_slots: tuple[P11, int, int]) -> None:
    p, s, _off = two_slots
    assert p.digest(s, S.CKM_MD5, b"abc").hex() == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321 A.5
    assert p.digest(s, S.CKM_MD5, MSG) == hashlib.md5(MSG).digest()
    assert multipart(p, s, "Digest", S.CKM_MD5, 0, MSG) == hashlib.md5(MSG).digest()
    key = p.create(s, secret(S.CKK_MD5_HMAC, b"\x0b" * 16, sign=True, verify=True))
    assert p.sign(s, S.CKM_MD5_HMAC, key, b"Hi There").hex() == "9294727a3638bb1c13f48ef8158bfc9d"  # RFC 2202
    want = hmac.new(b"\x0b" * 16, MSG, "md5").digest()
    assert multipart(p, s, "Sign", S.CKM_MD5_HMAC, key, MSG) == want
    assert p.sign(s, S.CKM_MD5_HMAC_GENERAL, key, MSG, (10).to_bytes(8, "little")) == want[:10]
    p.verify(s, S.CKM_MD5_HMAC, key, MSG, want)
    m, _keep = p.mechanism(S.CKM_MD5_HMAC)
    p.check("C_MessageSignInit", s, m, key)  # a message is one C_Sign's worth (3.0 §5.14)
    n = ffi.new("CK_ULONG *", 16)
    out = ffi.new("unsigned char[]", 16)
    p.check("C_SignMessage", s, ffi.NULL, 0, MSG, len(MSG), out, n)
    assert ffi.buffer(out, n[0])[:] == want
    p.check("C_MessageSignFinal", s)
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        p.verify(s, S.CKM_MD5_HMAC, key, MSG, bytes(16))
    hpub, hpriv = p.generate_key_pair(s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, usage("verify", modulus_bits=2048),
                                      usage("sign"))
    n = int.from_bytes(p.get(s, hpub, S.CKA_MODULUS), "big")
    public = rsa.RSAPublicNumbers(65537, n).public_key()
    sig = p.sign(s, S.CKM_MD5_RSA_PKCS, hpriv, MSG)
    public.verify(sig, MSG, padding.PKCS1v15(), hashes.MD5())
    assert multipart(p, s, "Sign", S.CKM_MD5_RSA_PKCS, hpriv, MSG) == sig  # deterministic
    p.verify(s, S.CKM_MD5_RSA_PKCS, hpub, MSG, sig)


def test_single_des_known_answer_modes_and_keygen(two_slots: tuple[P11, int, int]) -> None:
    p, s, _off = two_slots
    kat = p.create(s, secret(S.CKK_DES, bytes.fromhex("0123456789abcdef"), encrypt=True, decrypt=True))
    # FIPS 81 appendix B: "Now is the time for all " under 0123456789abcdef, ECB
    pt = b"Now is the time for all "
    assert p.encrypt(s, S.CKM_DES_ECB, kat, pt).hex() == "3fa40e8a984d4815" "6a271787ab8883f9" "893d51ec4b563b53"
    assert p.decrypt(s, S.CKM_DES_ECB, kat, bytes.fromhex("3fa40e8a984d4815")) == b"Now is t"
    # FIPS 81 CBC example, IV 1234567890abcdef
    iv = bytes.fromhex("1234567890abcdef")
    assert p.encrypt(s, S.CKM_DES_CBC, kat, pt, iv).hex() == "e5c7cdde872bf27c" "43e934008c389c0f" "683788499a7c05f6"
    h = p.generate_key(s, S.CKM_DES_KEY_GEN, usage("encrypt", "decrypt", "wrap", extractable=True))
    value = p.get(s, h, S.CKA_VALUE)
    assert len(value) == 8 and all(bin(b).count("1") % 2 for b in value)
    with raises_ckr(S.CKR_ATTRIBUTE_TYPE_INVALID):  # a DES key has no CKA_VALUE_LEN
        p.get(s, h, S.CKA_VALUE_LEN)
    padder = sympad.PKCS7(64).padder()
    enc = Cipher(_des_key(value), modes.CBC(iv)).encryptor()
    want = enc.update(padder.update(MSG) + padder.finalize()) + enc.finalize()
    assert p.encrypt(s, S.CKM_DES_CBC_PAD, h, MSG, iv) == want
    assert multipart(p, s, "Decrypt", S.CKM_DES_CBC_PAD, h, want, iv) == MSG
    enc = Cipher(_des_key(value), modes.ECB()).encryptor()
    assert p.get(s, h, S.CKA_CHECK_VALUE) == (enc.update(bytes(8)) + enc.finalize())[:3]
    info = mech_info(p, S.CKM_DES_ECB, ON)
    assert (info.ulMinKeySize, info.ulMaxKeySize) == (8, 8)
    target = p.create(s, secret(S.CKK_AES, os.urandom(16), extractable=True))
    blob = wrap(p, s, S.CKM_DES_CBC_PAD, h, target, iv)
    assert len(blob) == 24
    # single DES keys are not triple-DES keys
    m, _keep = p.mechanism(S.CKM_DES3_ECB)
    assert p.call("C_EncryptInit", s, m, h) == S.CKR_KEY_TYPE_INCONSISTENT


def test_generate_des_with_value_len_is_refused(two_slots: tuple[P11, int, int]) -> None:
    """DES key objects have no CKA_VALUE_LEN (the type fixes it), as SoftHSM2's: a template
    that gives one asks for an attribute this object cannot have."""
    p, s, _off = two_slots
    for mech in (S.CKM_DES_KEY_GEN, S.CKM_DES3_KEY_GEN):
        t = Template({S.CKA_TOKEN: False, S.CKA_VALUE_LEN: 24})
        m, _keep = p.mechanism(mech)
        h = ffi.new("CK_OBJECT_HANDLE *")
        assert p.call("C_GenerateKey", s, m, t.array, t.count, h) == S.CKR_TEMPLATE_INCONSISTENT
