"""The Clulow / Tookan class of key-management attacks, tried through the built library with
the user PIN (issue 15 item 2). Each test runs the attack as an attacker would and asserts
that it fails now; on the code before the fix the derivation and unwrap attacks recovered
the key (each test was run against it once and failed).

The rules these tests pin (docs/security.md, "Key management"):

* D1 weak derivations (CKM_EXTRACT_KEY_FROM_KEY, CKM_XOR_BASE_AND_DATA) on a protected base
  (CKA_SENSITIVE TRUE or CKA_EXTRACTABLE FALSE): CKR_KEY_FUNCTION_NOT_PERMITTED, unless the
  slot sets ``weak_derivation = true``;
* D2 no secret key shorter than 16 bytes is derived from a protected base
  (CKR_ATTRIBUTE_VALUE_INVALID on CKA_VALUE_LEN);
* D3 a key derived from a secret-key base keeps its protection: SENSITIVE, EXTRACTABLE FALSE
  and WRAP_WITH_TRUSTED TRUE are inherited (a template that says otherwise is
  CKR_TEMPLATE_INCONSISTENT);
* W1 a key is not wrapped under itself or a key of the same value (CKR_KEY_NOT_WRAPPABLE);
* T1 a trusted key never decrypts (CKR_KEY_FUNCTION_NOT_PERMITTED), and only the SO clears
  CKA_TRUSTED; T2 what a trusted key unwraps is SENSITIVE and WRAP_WITH_TRUSTED; T3 no key is
  wrapped under a trusted RSA public key whose private key is in this token.

Every attack on a secret-key cipher runs on AES and on triple-DES keys alike (issue 23 item 9:
``KINDS``), through each type's own ECB, wrapping mechanism and key generation.
"""

from __future__ import annotations

import hmac as std_hmac
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as S
from p11 import P11, SO_PIN, USER_PIN, ffi, raises_ckr, write_config
from vectors_abi import Params, derive, secret, unwrap, wrap

MESSAGE = b"known message"


# ----------------------------------------------------------------------------- attacks

def extract_param(first_bit: int) -> bytes:
    """CK_EXTRACT_PARAMS is a bare CK_ULONG."""
    return bytes(ffi.buffer(ffi.new("CK_EXTRACT_PARAMS *", first_bit)))


def string_data(data: bytes) -> Any:
    buf = ffi.new("unsigned char[]", data)
    param = ffi.new("CK_KEY_DERIVATION_STRING_DATA *", {"pData": buf, "ulLen": len(data)})
    Params._alive.append(buf)
    return param


ONE_BYTE_HMAC_KEY = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_VALUE_LEN: 1,
                     S.CKA_TOKEN: False, S.CKA_SIGN: True}


def brute_force_byte(p: P11, s: int, one_byte_key: int) -> int:
    """HMAC a known message with the 1-byte key, try the 256 values offline."""
    tag = p.sign(s, S.CKM_SHA256_HMAC, one_byte_key, MESSAGE)
    found = [b for b in range(256) if std_hmac.new(bytes([b]), MESSAGE, hashlib.sha256).digest() == tag]
    assert len(found) == 1
    return found[0]


def extract_attack(p: P11, s: int, base: int, length: int) -> bytes:
    """The issue's attack: CKM_EXTRACT_KEY_FROM_KEY into a 1-byte signing key, per byte."""
    return bytes(brute_force_byte(p, s, derive(p, s, S.CKM_EXTRACT_KEY_FROM_KEY, base, ONE_BYTE_HMAC_KEY,
                                               extract_param(8 * i)))
                 for i in range(length))


def xor_attack(p: P11, s: int, base: int) -> int:
    """CKM_XOR_BASE_AND_DATA with one zero byte: the base's first byte as a 1-byte key."""
    no_len = {t: v for t, v in ONE_BYTE_HMAC_KEY.items() if t != S.CKA_VALUE_LEN}
    return brute_force_byte(p, s, derive(p, s, S.CKM_XOR_BASE_AND_DATA, base, no_len, string_data(b"\x00")))


@dataclass(frozen=True)
class Kind:
    """A secret-key cipher the attacks run on: its key type, generation mechanism, value
    length, ECB mechanism and block, a wrapping mechanism with its parameter, and its
    ENCRYPT_DATA derivation."""

    name: str
    key_type: int
    gen: int
    length: int
    ecb: int
    block: int
    wrap: int
    wrap_param: bytes | None
    encrypt_data: int

    def gen_template(self) -> dict[int, Any]:
        """AES needs CKA_VALUE_LEN; a DES key has none (the type fixes the length)."""
        return {S.CKA_VALUE_LEN: self.length} if self.key_type == S.CKK_AES else {}

    def ecb_block(self, key: bytes) -> bytes:
        algo = algorithms.AES(key) if self.key_type == S.CKK_AES else TripleDES(key)
        enc = Cipher(algo, modes.ECB()).encryptor()
        return enc.update(bytes(self.block)) + enc.finalize()

    def template(self) -> dict[int, Any]:
        return {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: self.key_type, S.CKA_TOKEN: False}


AES_KIND = Kind("aes", S.CKK_AES, S.CKM_AES_KEY_GEN, 32, S.CKM_AES_ECB, 16, S.CKM_AES_KEY_WRAP, None,
                S.CKM_AES_ECB_ENCRYPT_DATA)
DES3_KIND = Kind("des3", S.CKK_DES3, S.CKM_DES3_KEY_GEN, 24, S.CKM_DES3_ECB, 8, S.CKM_DES3_CBC_PAD, bytes(8),
                 S.CKM_DES3_ECB_ENCRYPT_DATA)
KINDS = pytest.mark.parametrize("kind", [AES_KIND, DES3_KIND], ids=lambda k: k.name)


def aes_block(key: bytes) -> bytes:
    return AES_KIND.ecb_block(key)


def protected_key(p: P11, s: int, kind: Kind, **extra: Any) -> int:
    """A generated key of ``kind``: sensitive, never extractable, CKA_DERIVE TRUE."""
    attrs = {**kind.gen_template(), S.CKA_TOKEN: False, S.CKA_SENSITIVE: True, S.CKA_EXTRACTABLE: False,
             S.CKA_DERIVE: True, S.CKA_ENCRYPT: True}
    attrs.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in extra.items()})
    return p.generate_key(s, kind.gen, attrs)


def protected_aes(p: P11, s: int, **extra: Any) -> int:
    """A generated AES-256 key: sensitive, never extractable, CKA_DERIVE TRUE."""
    return protected_key(p, s, AES_KIND, **extra)


def protected_generic(p: P11, s: int, **extra: Any) -> int:
    """A generated 32-byte generic secret (the HKDF base type, §2.62), protected likewise."""
    attrs = {S.CKA_VALUE_LEN: 32, S.CKA_TOKEN: False, S.CKA_SENSITIVE: True, S.CKA_EXTRACTABLE: False,
             S.CKA_DERIVE: True}
    attrs.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in extra.items()})
    return p.generate_key(s, S.CKM_GENERIC_SECRET_KEY_GEN, attrs)


def encrypt_zero_block(p: P11, s: int, key: int) -> bytes:
    return p.encrypt(s, S.CKM_AES_ECB, key, bytes(16))


AES_TEMPLATE = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False}


# ----------------------------------------------------------------------------- derivation

@KINDS
def test_extract_key_from_key_byte_by_byte_fails(token: P11, user_session: int, kind: Kind) -> None:
    """Issue 15 item 2 verbatim: before the fix the 32 bytes came back and encrypted like the
    key (so this test failed on the old code); now the first derivation is refused."""
    s = user_session
    key = protected_key(token, s, kind)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        recovered = extract_attack(token, s, key, kind.length)
        assert kind.ecb_block(recovered) == token.encrypt(s, kind.ecb, key, bytes(kind.block))  # it worked


@KINDS
def test_xor_base_and_data_one_byte_fails(token: P11, user_session: int, kind: Kind) -> None:
    s = user_session
    key = protected_key(token, s, kind)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        xor_attack(token, s, key)


def test_weak_mechanisms_refused_on_non_extractable_non_sensitive_base(token: P11, user_session: int) -> None:
    """CKA_EXTRACTABLE FALSE alone protects the value (C_GetAttributeValue refuses it), so it
    protects it from the weak mechanisms too."""
    s = user_session
    key = token.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(32), derive=True, sensitive=False,
                                 extractable=False))
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        extract_attack(token, s, key, 1)


def test_short_keys_from_a_protected_base_are_refused(token: P11, user_session: int) -> None:
    """A one-way KDF does not reveal the base, but a 1-byte "sensitive" key is no key: from a
    protected base every derived secret key has at least 16 bytes."""
    s = user_session
    key = protected_generic(token, s)
    hkdf = Params().hkdf(True, True, S.CKM_SHA256, b"salt", b"info")
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        derive(token, s, S.CKM_HKDF_DERIVE, key, ONE_BYTE_HMAC_KEY, hkdf)
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        derive(token, s, S.CKM_SP800_108_COUNTER_KDF, protected_aes(token, s),
               {**ONE_BYTE_HMAC_KEY, S.CKA_VALUE_LEN: 15},
               Params().sp800_108_counter(S.CKM_AES_CMAC, b"label", b"ctx", 120))
    h = derive(token, s, S.CKM_HKDF_DERIVE, key, {**ONE_BYTE_HMAC_KEY, S.CKA_VALUE_LEN: 16}, hkdf)
    assert token.get(s, h, S.CKA_VALUE_LEN) == 16


def test_derived_keys_keep_the_base_protection(token: P11, user_session: int) -> None:
    """A full-length copy by a KDF may not be weaker than its base: no non-sensitive,
    extractable or WRAP_WITH_TRUSTED FALSE child of a protected, trusted-only base."""
    s = user_session
    key = protected_generic(token, s, wrap_with_trusted=True)
    hkdf = Params().hkdf(True, True, S.CKM_SHA256, b"salt", b"info")
    child = {**AES_TEMPLATE, S.CKA_VALUE_LEN: 32, S.CKA_ENCRYPT: True}
    for weaker in ({S.CKA_SENSITIVE: False}, {S.CKA_EXTRACTABLE: True}, {S.CKA_WRAP_WITH_TRUSTED: False}):
        with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
            derive(token, s, S.CKM_HKDF_DERIVE, key, {**child, **weaker}, hkdf)
    h = derive(token, s, S.CKM_HKDF_DERIVE, key, child, hkdf)
    got = {a: token.get(s, h, a) for a in (S.CKA_SENSITIVE, S.CKA_EXTRACTABLE, S.CKA_WRAP_WITH_TRUSTED,
                                           S.CKA_ALWAYS_SENSITIVE, S.CKA_NEVER_EXTRACTABLE)}
    assert got == {S.CKA_SENSITIVE: True, S.CKA_EXTRACTABLE: False, S.CKA_WRAP_WITH_TRUSTED: True,
                   S.CKA_ALWAYS_SENSITIVE: True, S.CKA_NEVER_EXTRACTABLE: True}
    # §5.18.5: a base that was ever readable (imported) passes ALWAYS_SENSITIVE and
    # NEVER_EXTRACTABLE FALSE on, whatever the child's own SENSITIVE/EXTRACTABLE
    imported = token.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(32), derive=True, sensitive=True))
    h = derive(token, s, S.CKM_HKDF_DERIVE, imported, child, hkdf)
    got = {a: token.get(s, h, a) for a in (S.CKA_SENSITIVE, S.CKA_EXTRACTABLE, S.CKA_ALWAYS_SENSITIVE,
                                           S.CKA_NEVER_EXTRACTABLE)}
    assert got == {S.CKA_SENSITIVE: True, S.CKA_EXTRACTABLE: False, S.CKA_ALWAYS_SENSITIVE: False,
                   S.CKA_NEVER_EXTRACTABLE: False}


@KINDS
def test_full_length_extract_cannot_drop_wrap_with_trusted(token: P11, user_session: int, kind: Kind) -> None:
    """The issue's second half: a full-length extract of a WRAP_WITH_TRUSTED key used to be a
    copy without it, wrapped under an untrusted known key and decrypted offline."""
    s = user_session
    value = os.urandom(kind.length)
    key = token.create(s, secret(kind.key_type, value, derive=True, sensitive=True, extractable=True,
                                 wrap_with_trusted=True))
    known = os.urandom(32)
    kek = token.create(s, secret(S.CKK_AES, known, wrap=True))
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):  # the base itself: 4.9 CKA_WRAP_WITH_TRUSTED
        wrap(token, s, S.CKM_AES_KEY_WRAP, kek, key)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        copy = derive(token, s, S.CKM_EXTRACT_KEY_FROM_KEY, key,
                      {**AES_TEMPLATE, S.CKA_VALUE_LEN: 32, S.CKA_SENSITIVE: True, S.CKA_EXTRACTABLE: True},
                      extract_param(0))
        blob = wrap(token, s, S.CKM_AES_KEY_WRAP, kek, copy)
        from cryptography.hazmat.primitives import keywrap
        assert keywrap.aes_key_unwrap(known, blob) == value  # the attack worked


def test_hkdf_salt_key_protection_is_inherited(token: P11, user_session: int) -> None:
    """A sensitive key used as the HKDF salt key protects the result like a base key would:
    else HMAC(salt key, known IKM) could be read from a non-sensitive base's child."""
    s = user_session
    salt_key = protected_generic(token, s)
    base = token.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(32), derive=True, sensitive=False,
                                  extractable=True))
    p = ffi.new("CK_HKDF_PARAMS *")
    p.bExtract, p.bExpand, p.prfHashMechanism = True, False, S.CKM_SHA256
    p.ulSaltType, p.hSaltKey = S.CKF_HKDF_SALT_KEY, salt_key
    readable = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_TOKEN: False,
                S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True}
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        derive(token, s, S.CKM_HKDF_DERIVE, base, readable, p)


# ----------------------------------------------------------------------------- wrap / unwrap

def trusted_key(p: P11, s: int, kind: Kind = AES_KIND) -> int:
    """The SO's trusted key of ``kind`` (AES-256, DES3), default usages (CKA_DECRYPT too), as
    a token object the user then sees; ``s`` is the user's session, logged in again afterwards."""
    so = p.open(0)
    p.logout(s)
    p.login(so, SO_PIN, user=S.CKU_SO)
    h = p.generate_key(so, kind.gen, {**kind.gen_template(), S.CKA_TOKEN: True, S.CKA_PRIVATE: False,
                                      S.CKA_TRUSTED: True, S.CKA_SENSITIVE: True})
    p.logout(so)
    p.close(so)
    p.login(s, USER_PIN)
    return h


def wwt_target(p: P11, s: int) -> tuple[int, bytes]:
    value = os.urandom(32)
    return p.create(s, secret(S.CKK_AES, value, sensitive=True, extractable=True, wrap_with_trusted=True)), value


@KINDS
def test_wrap_under_a_trusted_key_then_decrypt_fails(token: P11, user_session: int, kind: Kind) -> None:
    """Clulow's first attack where it matters: a WRAP_WITH_TRUSTED key may be wrapped under
    a trusted key only, and that key (made with the default usages, CKA_DECRYPT TRUE) used
    to decrypt the blob. Rule T1: a trusted key never decrypts."""
    p, s = token, user_session
    kek = trusted_key(p, s, kind)
    target, value = wwt_target(p, s)
    blob = wrap(p, s, kind.ecb, kek, target)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        assert p.decrypt(s, kind.ecb, kek, blob) == value  # the attack worked


@KINDS
def test_wrap_with_trusted_needs_a_trusted_key(token: P11, user_session: int, kind: Kind) -> None:
    s = user_session
    target, _ = wwt_target(token, s)
    kek = token.create(s, secret(kind.key_type, os.urandom(kind.length), wrap=True))
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(token, s, kind.wrap, kek, target, kind.wrap_param)


@KINDS
def test_unwrap_under_a_trusted_key_into_weaker_attributes_fails(token: P11, user_session: int,
                                                                 kind: Kind) -> None:
    """Wrap a WRAP_WITH_TRUSTED key under the trusted key, unwrap the blob as non-sensitive
    (read CKA_VALUE) or without WRAP_WITH_TRUSTED (wrap it again under a known key). Rule
    T2: what a trusted key unwraps is sensitive and WRAP_WITH_TRUSTED."""
    p, s = token, user_session
    kek = trusted_key(p, s, kind)
    target, value = wwt_target(p, s)
    blob = wrap(p, s, kind.wrap, kek, target, kind.wrap_param)
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        h = unwrap(p, s, kind.wrap, kek, blob,
                   {**AES_TEMPLATE, S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True}, kind.wrap_param)
        assert p.get(s, h, S.CKA_VALUE) == value  # the attack worked
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        unwrap(p, s, kind.wrap, kek, blob,
               {**AES_TEMPLATE, S.CKA_EXTRACTABLE: True, S.CKA_WRAP_WITH_TRUSTED: False}, kind.wrap_param)
    h = unwrap(p, s, kind.wrap, kek, blob, {**AES_TEMPLATE, S.CKA_EXTRACTABLE: True}, kind.wrap_param)
    assert p.get(s, h, S.CKA_SENSITIVE) is True and p.get(s, h, S.CKA_WRAP_WITH_TRUSTED) is True
    with raises_ckr(S.CKR_ATTRIBUTE_SENSITIVE):
        p.get(s, h, S.CKA_VALUE)
    known = p.create(s, secret(S.CKK_AES, os.urandom(32), wrap=True))
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(p, s, S.CKM_AES_KEY_WRAP, known, h)


def test_wrap_under_a_trusted_public_key_whose_private_key_is_here_fails(token: P11, user_session: int) -> None:
    """T3: a trusted RSA public key whose private half is in this token is no way out (its
    private key would decrypt or unwrap the blob here); once the private key is gone (an
    HSM elsewhere holds it: the key-transport case), it is."""
    p, s = token, user_session
    so = p.open(0)
    p.logout(s)
    p.login(so, SO_PIN, user=S.CKU_SO)
    pub, priv = p.generate_key_pair(so, S.CKM_RSA_PKCS_KEY_PAIR_GEN,
                                    {S.CKA_TOKEN: True, S.CKA_MODULUS_BITS: 2048, S.CKA_WRAP: True,
                                     S.CKA_TRUSTED: True},
                                    {S.CKA_TOKEN: True, S.CKA_PRIVATE: False, S.CKA_SENSITIVE: True})
    p.logout(so)
    p.login(s, USER_PIN)
    target, _ = wwt_target(p, s)
    oaep = Params().oaep(S.CKM_SHA256, S.CKG_MGF1_SHA256, b"")
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(p, s, S.CKM_RSA_PKCS_OAEP, pub, target, oaep)
    p.logout(s)
    p.login(so, SO_PIN, user=S.CKU_SO)
    p.destroy(so, priv)
    p.logout(so)
    p.close(so)
    p.login(s, USER_PIN)
    target, _ = wwt_target(p, s)  # the logout destroyed the private session object
    assert len(wrap(p, s, S.CKM_RSA_PKCS_OAEP, pub, target, oaep)) == 256


@KINDS
def test_a_trusted_key_keeps_its_rules_through_set_and_copy(token: P11, user_session: int, kind: Kind) -> None:
    """T1 holds whatever the user does to the trusted key afterwards: C_SetAttributeValue
    cannot clear CKA_TRUSTED (SO only), and a copy is trusted too."""
    p, s = token, user_session
    kek = trusted_key(p, s, kind)
    with raises_ckr(S.CKR_ATTRIBUTE_READ_ONLY):
        p.set(s, kek, {S.CKA_TRUSTED: False})
    twin = p.copy(s, kek, {S.CKA_TOKEN: False})
    assert p.get(s, twin, S.CKA_TRUSTED) is True
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        p.decrypt(s, kind.ecb, twin, bytes(kind.block))


@KINDS
def test_wrap_a_key_under_itself_fails(token: P11, user_session: int, kind: Kind) -> None:
    s = user_session
    key = token.create(s, secret(kind.key_type, os.urandom(kind.length), sensitive=True, extractable=True,
                                 wrap=True, unwrap=True))
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(token, s, kind.wrap, key, key, kind.wrap_param)
    twin = token.copy(s, key, {})  # the same value under another handle
    with raises_ckr(S.CKR_KEY_NOT_WRAPPABLE):
        wrap(token, s, kind.wrap, twin, key, kind.wrap_param)


@KINDS
def test_wrap_under_a_derived_weak_key_fails(token: P11, user_session: int, kind: Kind) -> None:
    """A wrapping key made from the target's own bits (XOR with zeros = the value) is
    refused at derivation."""
    s = user_session
    target = token.create(s, secret(kind.key_type, os.urandom(kind.length), sensitive=True, extractable=True,
                                    derive=True))
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        derive(token, s, S.CKM_XOR_BASE_AND_DATA, target, {**kind.template(), S.CKA_WRAP: True},
               string_data(bytes(kind.length)))


@KINDS
def test_concatenations_refuse_a_protected_key(token: P11, user_session: int, kind: Kind) -> None:
    """D1 for the CKM_CONCATENATE_* family: the new key would hold the protected key's bytes
    next to known ones (then CKM_EXTRACT_KEY_FROM_KEY-style guessing, or a key of known
    structure). The other key of _BASE_AND_KEY is a base too: a readable base with a
    protected other key is refused the same way."""
    s = user_session
    key = protected_key(token, s, kind)
    readable = token.create(s, secret(S.CKK_GENERIC_SECRET, os.urandom(16), derive=True, extractable=True))
    generic = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_TOKEN: False}
    for mech in (S.CKM_CONCATENATE_BASE_AND_DATA, S.CKM_CONCATENATE_DATA_AND_BASE):
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
            derive(token, s, mech, key, generic, string_data(b"\x00"))
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        derive(token, s, S.CKM_CONCATENATE_BASE_AND_KEY, readable, generic, key.to_bytes(8, "little"))


@KINDS
def test_encrypt_data_derivation_keeps_the_base_protection(token: P11, user_session: int, kind: Kind) -> None:
    """CKM_<cipher>_ECB_ENCRYPT_DATA with data the caller chooses makes the new key an
    encryption-oracle output of the base (E_K(data)): readable, it would hand out
    encryptions under a key that may not even have CKA_ENCRYPT. So it is no D1 weak
    derivation (every output byte depends on the whole key), but D2 and D3 hold: the new key
    inherits SENSITIVE / EXTRACTABLE FALSE and is at least 16 bytes."""
    s = user_session
    base = protected_key(token, s, kind, encrypt=False)
    data = string_data(bytes(range(32)))
    child = {**AES_TEMPLATE, S.CKA_VALUE_LEN: 16, S.CKA_ENCRYPT: True}
    for weaker in ({S.CKA_SENSITIVE: False}, {S.CKA_EXTRACTABLE: True}):
        with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
            derive(token, s, kind.encrypt_data, base, {**child, **weaker}, data)
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # D2: no short key from a protected base
        derive(token, s, kind.encrypt_data, base, {**ONE_BYTE_HMAC_KEY, S.CKA_VALUE_LEN: 8}, data)
    h = derive(token, s, kind.encrypt_data, base, child, data)
    assert token.get(s, h, S.CKA_SENSITIVE) is True and token.get(s, h, S.CKA_EXTRACTABLE) is False
    with raises_ckr(S.CKR_ATTRIBUTE_SENSITIVE):
        token.get(s, h, S.CKA_VALUE)


def test_wrap_strength_is_not_compared(token: P11, user_session: int) -> None:
    """Decided, not a rule (docs/security.md): an AES-256 key may be wrapped under a two-key
    triple-DES key (~80-bit security by SP 800-57, against 256). A key that must not leave
    under weaker keys is CKA_EXTRACTABLE FALSE or CKA_WRAP_WITH_TRUSTED TRUE, whose
    trusted wrapping keys the SO chooses."""
    s = user_session
    target = token.create(s, secret(S.CKK_AES, os.urandom(32), sensitive=True, extractable=True))
    kek = token.generate_key(s, S.CKM_DES2_KEY_GEN, {S.CKA_TOKEN: False, S.CKA_WRAP: True})
    assert len(wrap(token, s, S.CKM_DES3_CBC_PAD, kek, target, bytes(8))) == 40


# ----------------------------------------------------------------------------- copy / set

@KINDS
@pytest.mark.parametrize("weaker", [{S.CKA_SENSITIVE: False}, {S.CKA_EXTRACTABLE: True},
                                    {S.CKA_WRAP_WITH_TRUSTED: False}])
def test_copy_and_set_cannot_weaken_a_key(token: P11, user_session: int, weaker: dict[int, Any], kind: Kind) -> None:
    s = user_session
    key = token.create(s, secret(kind.key_type, os.urandom(kind.length), sensitive=True, extractable=False,
                                 wrap_with_trusted=True))
    with raises_ckr(S.CKR_ATTRIBUTE_READ_ONLY):
        token.copy(s, key, weaker)
    with raises_ckr(S.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, key, weaker)


# ----------------------------------------------------------------------------- the option

def test_weak_derivation_slot_option(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``weak_derivation = true`` restores the old behaviour for the slot (for legacy
    protocols): the weak mechanisms and short keys from protected bases work again, and the
    derived key still inherits the base's protection."""
    conf = write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "test"\nweak_derivation = true\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11(lib_path)
    p.initialize()
    try:
        p.init_token(0, SO_PIN, "weak")
        s = p.open(0)
        p.login(s, SO_PIN, user=S.CKU_SO)
        p.init_pin(s, USER_PIN)
        p.logout(s)
        p.login(s, USER_PIN)
        key = protected_aes(p, s)
        h = derive(p, s, S.CKM_EXTRACT_KEY_FROM_KEY, key, ONE_BYTE_HMAC_KEY, extract_param(0))
        assert p.get(s, h, S.CKA_SENSITIVE) is True and p.get(s, h, S.CKA_EXTRACTABLE) is False
    finally:
        p.call("C_Finalize", ffi.NULL)


# ----------------------------------------------------------------------------- audit (item 7)

def test_wrap_unwrap_and_derive_are_audited_as_key_uses(lib_path: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15 item 7: C_WrapKey, C_UnwrapKey and C_DeriveKey leave one ``key.use`` record
    each, naming the key used, the mechanism and the other key (wrapped / new), also when
    refused; never a value."""
    import json

    log = tmp_path / "audit.jsonl"
    conf = write_config(tmp_path, extra=f'[audit]\nfile = "{log}"\nkey_use = false\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11(lib_path)
    p.initialize()
    try:
        p.init_token(0, SO_PIN, "audited")
        s = p.open(0)
        p.login(s, SO_PIN, user=S.CKU_SO)
        p.init_pin(s, USER_PIN)
        p.logout(s)
        p.login(s, USER_PIN)
        kek_value, target_value = os.urandom(32), os.urandom(32)
        kek = p.create(s, secret(S.CKK_AES, kek_value, wrap=True, unwrap=True, label=b"kek"))
        target = p.create(s, secret(S.CKK_AES, target_value, extractable=True, label=b"target"))
        blob = wrap(p, s, S.CKM_AES_KEY_WRAP, kek, target)
        back = unwrap(p, s, S.CKM_AES_KEY_WRAP, kek, blob, {**AES_TEMPLATE, S.CKA_LABEL: b"back"})
        base = protected_generic(p, s, label=b"base")
        child = derive(p, s, S.CKM_HKDF_DERIVE, base, {**AES_TEMPLATE, S.CKA_VALUE_LEN: 32, S.CKA_LABEL: b"child"},
                       Params().hkdf(True, True, S.CKM_SHA256, b"salt", b"info"))
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
            extract_attack(p, s, base, 1)
        uid = {h: p.get(s, h, S.CKA_UNIQUE_ID) for h in (kek, target, back, base, child)}
        uid = {h: v.decode() if isinstance(v, bytes) else v for h, v in uid.items()}
    finally:
        p.call("C_Finalize", ffi.NULL)
    text = log.read_text()
    uses = [r for r in map(json.loads, text.splitlines()) if r["event"] == "key.use"]
    got = [(r["operation"], r["mechanism"], r["key_unique_id"],
            r.get("wrapped_key_unique_id", r.get("new_key_unique_id")), r["outcome"]) for r in uses]
    assert got == [  # C_WrapKey twice: the length query wraps too (and is a key use)
        ("wrap", "CKM_AES_KEY_WRAP", uid[kek], uid[target], "ok"),
        ("wrap", "CKM_AES_KEY_WRAP", uid[kek], uid[target], "ok"),
        ("unwrap", "CKM_AES_KEY_WRAP", uid[kek], uid[back], "ok"),
        ("derive", "CKM_HKDF_DERIVE", uid[base], uid[child], "ok"),
        ("derive", "CKM_EXTRACT_KEY_FROM_KEY", uid[base], None, "CKR_KEY_FUNCTION_NOT_PERMITTED"),
    ]
    for value in (kek_value, target_value, blob):
        assert value.hex() not in text
