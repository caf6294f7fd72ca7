"""Keys on an upstream-backed token (issue 6), through our library, on a real SoftHSM2.

Every result is checked independently: signatures and ciphertexts with pyca/cryptography
from the public values our store holds, secret keys by what they compute against a key of
known value. SoftHSM2's own tool shows where the private objects are; the SQLite file shows
what is not in it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as A
from cryptoki_shim.backends.upstream_attrs import CKA_SHIM_UPSTREAM_REF
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)
from p11 import P11, Template, ffi, raises_ckr

P256 = bytes.fromhex("06082a8648ce3d030107")
UPSTREAM = A.SHIM_BACKEND_UPSTREAM

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")


def rsa_pair(p11: P11, s: int) -> tuple[int, int]:
    return p11.generate_key_pair(s, A.CKM_RSA_PKCS_KEY_PAIR_GEN,
                                 {A.CKA_MODULUS_BITS: 2048, A.CKA_PUBLIC_EXPONENT: b"\x01\x00\x01", A.CKA_TOKEN: True},
                                 {A.CKA_TOKEN: True})


def ec_pair(p11: P11, s: int) -> tuple[int, int]:
    return p11.generate_key_pair(s, A.CKM_EC_KEY_PAIR_GEN, {A.CKA_EC_PARAMS: P256, A.CKA_TOKEN: True},
                                 {A.CKA_TOKEN: True, A.CKA_DERIVE: True})


def aes_key(p11: P11, s: int, attrs: dict | None = None) -> int:
    return p11.generate_key(s, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 32, A.CKA_TOKEN: True, **(attrs or {})})


def rsa_public(p11: P11, s: int, pub: int) -> rsa.RSAPublicKey:
    n = int.from_bytes(p11.get(s, pub, A.CKA_MODULUS), "big")
    e = int.from_bytes(p11.get(s, pub, A.CKA_PUBLIC_EXPONENT), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def ec_public(p11: P11, s: int, pub: int) -> ec.EllipticCurvePublicKey:
    der = p11.get(s, pub, A.CKA_EC_POINT)
    assert der[0] == 0x04 and der[1] == len(der) - 2  # DER OCTET STRING
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), der[2:])


def mech_with(mech: int, struct: str, **fields: object) -> tuple[object, list]:
    p = ffi.new(f"{struct} *")
    for k, v in fields.items():
        setattr(p, k, v)
    return P11.mechanism(mech, p)


# --------------------------------------------------------------------------- placement

def test_generated_keys_live_in_the_upstream_and_say_so(p11, up_session, hsm):
    s = up_session
    pub, priv = rsa_pair(p11, s)
    secret = aes_key(p11, s)
    for h in (pub, priv, secret):
        assert p11.get(s, h, A.CKA_SHIM_BACKEND) == UPSTREAM
        assert p11.get(s, h, CKA_SHIM_UPSTREAM_REF).startswith(b"owner=shim;label=")
    assert p11.get(s, priv, A.CKA_SENSITIVE) is True
    assert p11.get(s, priv, A.CKA_EXTRACTABLE) is False
    assert p11.get(s, secret, A.CKA_NEVER_EXTRACTABLE) is True
    listing = hsm.objects()
    assert "Private Key Object; RSA" in listing and "Secret Key Object; AES" in listing
    assert "cryptoki-shim:" in listing


def test_store_holds_no_private_material(p11, up_session, tmp_path: Path):
    s = up_session
    rsa_pair(p11, s)
    ec_pair(p11, s)
    aes_key(p11, s)
    db = sqlite3.connect(tmp_path / "store.db")
    types = {t for (t,) in db.execute("select distinct type from attributes")}
    private = {A.CKA_PRIVATE_EXPONENT, A.CKA_PRIME_1, A.CKA_PRIME_2, A.CKA_EXPONENT_1, A.CKA_EXPONENT_2,
               A.CKA_COEFFICIENT, A.CKA_VALUE}
    assert not types & private
    # the only sealed rows: each object's binding of its clear attributes (issue 15 item 5)
    from cryptoki_shim.store.crypto import BINDING_ROW
    assert db.execute("select count(*) from attributes where is_sealed and type != ?", (BINDING_ROW,)).fetchone()[0] == 0
    n_keys = db.execute("select count(distinct object_id) from attributes where type = ?",
                        (A.CKA_SHIM_BACKEND,)).fetchone()[0]
    assert n_keys == 5


def test_destroy_deletes_the_upstream_object(p11, up_session, hsm):
    s = up_session
    key = aes_key(p11, s, {A.CKA_LABEL: b"to-go"})
    assert "Secret Key Object; AES" in hsm.objects()
    p11.destroy(s, key)
    assert "Secret Key Object; AES" not in hsm.objects()


# --------------------------------------------------------------------------- operations

def test_rsa_sign_verify_and_oaep_decrypt(p11, up_session):
    s = up_session
    pub, priv = rsa_pair(p11, s)
    key = rsa_public(p11, s, pub)
    sig = p11.sign(s, A.CKM_SHA256_RSA_PKCS, priv, b"message")
    key.verify(sig, b"message", padding.PKCS1v15(), hashes.SHA256())
    p11.verify(s, A.CKM_SHA256_RSA_PKCS, pub, b"message", sig)
    with raises_ckr(A.CKR_SIGNATURE_INVALID):
        p11.verify(s, A.CKM_SHA256_RSA_PKCS, pub, b"other", sig)
    ct = key.encrypt(b"secret", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    m, keep = mech_with(A.CKM_RSA_PKCS_OAEP, "CK_RSA_PKCS_OAEP_PARAMS", hashAlg=A.CKM_SHA_1, mgf=A.CKG_MGF1_SHA1)
    p11.check("C_DecryptInit", s, m, priv)
    assert p11._two_pass("C_Decrypt", s, ct, len(ct)) == b"secret"


def test_rsa_multi_part_sign(p11, up_session):
    s = up_session
    pub, priv = rsa_pair(p11, s)
    m, _ = P11.mechanism(A.CKM_SHA256_RSA_PKCS)
    p11.check("C_SignInit", s, m, priv)
    p11.check("C_SignUpdate", s, b"mess", 4)
    p11.check("C_SignUpdate", s, b"age", 3)
    sig = p11._two_pass("C_SignFinal", s)
    rsa_public(p11, s, pub).verify(sig, b"message", padding.PKCS1v15(), hashes.SHA256())


def test_ecdsa_sign_verify(p11, up_session):
    s = up_session
    pub, priv = ec_pair(p11, s)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"message")
    d = digest.finalize()
    sig = p11.sign(s, A.CKM_ECDSA, priv, d)
    assert len(sig) == 64
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    ec_public(p11, s, pub).verify(der, b"message", ec.ECDSA(hashes.SHA256()))
    p11.verify(s, A.CKM_ECDSA, pub, d, sig)


def test_aes_encrypt_decrypt_round_trip(p11, up_session):
    s = up_session
    key = aes_key(p11, s)
    iv = b"\x01" * 16
    ct = p11.encrypt(s, A.CKM_AES_CBC_PAD, key, b"hello upstream", iv)
    assert len(ct) == 16
    assert p11.decrypt(s, A.CKM_AES_CBC_PAD, key, ct, iv) == b"hello upstream"


def test_unwrap_known_key_into_upstream(p11, up_session):
    """pyca wraps an AES key of known value under the upstream RSA public key; the upstream
    unwraps it; what the new key encrypts through us is what pyca computes with the value."""
    s = up_session
    pub, priv = rsa_pair(p11, s)
    value = bytes(range(32))
    wrapped = rsa_public(p11, s, pub).encrypt(value, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    m, keep = mech_with(A.CKM_RSA_PKCS_OAEP, "CK_RSA_PKCS_OAEP_PARAMS", hashAlg=A.CKM_SHA_1, mgf=A.CKG_MGF1_SHA1,
                        source=A.CKZ_DATA_SPECIFIED)
    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_TOKEN: True, A.CKA_ENCRYPT: True})
    h = ffi.new("CK_OBJECT_HANDLE *")
    p11.check("C_UnwrapKey", s, m, priv, wrapped, len(wrapped), t.array, t.count, h)
    key = h[0]
    assert p11.get(s, key, A.CKA_SHIM_BACKEND) == UPSTREAM
    enc = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
    assert p11.encrypt(s, A.CKM_AES_ECB, key, b"\x11" * 16) == enc.update(b"\x11" * 16) + enc.finalize()


def test_aes_key_wrap_and_unwrap_upstream(p11, up_session):
    s = up_session
    kek = aes_key(p11, s)
    k1 = aes_key(p11, s, {A.CKA_EXTRACTABLE: True})
    m, _ = P11.mechanism(A.CKM_AES_KEY_WRAP)
    wrapped = p11._two_pass("C_WrapKey", s, m, kek, k1)
    assert len(wrapped) == 40
    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_TOKEN: True})
    h = ffi.new("CK_OBJECT_HANDLE *")
    p11.check("C_UnwrapKey", s, m, kek, wrapped, len(wrapped), t.array, t.count, h)
    block = b"\x22" * 16
    assert p11.encrypt(s, A.CKM_AES_ECB, h[0], block) == p11.encrypt(s, A.CKM_AES_ECB, k1, block)
    with raises_ckr(A.CKR_KEY_UNEXTRACTABLE):
        p11._two_pass("C_WrapKey", s, m, kek, kek)


def test_software_key_wrapped_by_upstream_kek(p11, up_session):
    """A software AES key (CKA_SHIM_BACKEND = software in the template) wrapped by an
    upstream KEK: pyca's RFC 3394 unwrap with... the KEK is not extractable, so we check by
    unwrapping back upstream and comparing what both keys compute."""
    s = up_session
    kek = aes_key(p11, s)
    value = bytes(range(16))
    soft = p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: value,
                          A.CKA_EXTRACTABLE: True})
    m, _ = P11.mechanism(A.CKM_AES_KEY_WRAP)
    wrapped = p11._two_pass("C_WrapKey", s, m, kek, soft)
    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES})
    h = ffi.new("CK_OBJECT_HANDLE *")
    p11.check("C_UnwrapKey", s, m, kek, wrapped, len(wrapped), t.array, t.count, h)
    enc = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
    assert p11.encrypt(s, A.CKM_AES_ECB, h[0], b"\x33" * 16) == enc.update(b"\x33" * 16) + enc.finalize()
    assert keywrap  # (RFC 3394 itself is checked by the software tests)


def test_ecdh_derive_matches_pyca(p11, up_session):
    s = up_session
    pub, priv = ec_pair(p11, s)
    peer = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import serialization

    point = peer.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    buf = ffi.new("unsigned char[]", point)
    m, keep = mech_with(A.CKM_ECDH1_DERIVE, "CK_ECDH1_DERIVE_PARAMS", kdf=A.CKD_NULL, pPublicData=buf,
                        ulPublicDataLen=len(point), pSharedData=ffi.NULL, ulSharedDataLen=0)
    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 32,
                  A.CKA_ENCRYPT: True, A.CKA_TOKEN: False})
    h = ffi.new("CK_OBJECT_HANDLE *")
    p11.check("C_DeriveKey", s, m, priv, t.array, t.count, h)
    assert p11.get(s, h[0], A.CKA_SHIM_BACKEND) == UPSTREAM
    shared = peer.exchange(ec.ECDH(), ec_public(p11, s, pub))
    enc = Cipher(algorithms.AES(shared), modes.ECB()).encryptor()
    assert p11.encrypt(s, A.CKM_AES_ECB, h[0], b"\x44" * 16) == enc.update(b"\x44" * 16) + enc.finalize()


# --------------------------------------------------------------------------- mechanisms

def mechanisms(p11: P11, slot: int) -> list[int]:
    n = ffi.new("CK_ULONG *")
    p11.check("C_GetMechanismList", slot, ffi.NULL, n)
    arr = ffi.new("CK_MECHANISM_TYPE[]", n[0])
    p11.check("C_GetMechanismList", slot, arr, n)
    return [arr[i] for i in range(n[0])]


def test_mechanism_list_is_the_intersection(p11, up_session):
    upstream, software = set(mechanisms(p11, 0)), set(mechanisms(p11, 1))
    assert {A.CKM_ECDSA, A.CKM_RSA_PKCS_OAEP, A.CKM_AES_KEY_WRAP, A.CKM_ECDH1_DERIVE, A.CKM_SHA256} <= upstream
    assert A.CKM_ECDSA_SHA256 in software and A.CKM_ECDSA_SHA256 not in upstream  # SoftHSM2 2.6 lacks it
    assert upstream < software
    info = ffi.new("CK_MECHANISM_INFO *")
    with raises_ckr(A.CKR_MECHANISM_INVALID):
        p11.check("C_GetMechanismInfo", 0, A.CKM_ECDSA_SHA256, info)
    ours = ffi.new("CK_MECHANISM_INFO *")
    p11.check("C_GetMechanismInfo", 1, A.CKM_ECDSA, ours)
    p11.check("C_GetMechanismInfo", 0, A.CKM_ECDSA, info)
    # SoftHSM2 2.6.1 reports ECDSA for 112..521-bit keys: the upstream token says the narrower
    assert (info.ulMinKeySize, info.ulMaxKeySize) == (max(ours.ulMinKeySize, 112), min(ours.ulMaxKeySize, 521))
    assert info.flags & (A.CKF_SIGN | A.CKF_VERIFY) == A.CKF_SIGN | A.CKF_VERIFY


def test_unsupported_upstream_mechanism_is_refused(p11, up_session):
    s = up_session
    pub, priv = ec_pair(p11, s)
    with raises_ckr(A.CKR_MECHANISM_INVALID):
        p11.sign(s, A.CKM_ECDSA_SHA256, priv, b"x")


# --------------------------------------------------------------------------- adoption

def test_adopt_existing_upstream_key(p11, up_session, hsm, shim_conf):
    hsm.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "4242", "--label", "legacy")
    from cryptoki_shim import config
    from cryptoki_shim.backends.upstream import adopt
    from cryptoki_shim.core.token import Token
    from cryptoki_shim.store import Store

    cfg = config.load()
    token = Token(cfg.slots[0], Store(cfg.store_url))
    made = adopt(token, id=bytes.fromhex("4242"))
    assert {o.attrs[A.CKA_CLASS] for o in made} == {A.CKO_PRIVATE_KEY, A.CKO_PUBLIC_KEY}
    s = up_session
    found = p11.find(s, {A.CKA_ID: bytes.fromhex("4242"), A.CKA_CLASS: A.CKO_PRIVATE_KEY})
    assert len(found) == 1
    assert p11.get(s, found[0], A.CKA_LABEL) == b"legacy"
    pub = p11.find(s, {A.CKA_ID: bytes.fromhex("4242"), A.CKA_CLASS: A.CKO_PUBLIC_KEY})[0]
    d = b"\x05" * 32
    sig = p11.sign(s, A.CKM_ECDSA, found[0], d)
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    ec_public(p11, s, pub).verify(der, d, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    p11.destroy(s, found[0])  # our object only: the adopted upstream key stays
    assert "legacy" in hsm.objects()
    with pytest.raises(Exception):
        adopt(token, label=b"no-such-key")
