"""Object management through the built library (PKCS#11 3.0 §5.7 and chapter 4): create, copy,
destroy, size, get, set, find for every object class we serve; the creation error codes; the
C_GetAttributeValue per-attribute protocol; visibility; bad input; secrets at rest."""

from __future__ import annotations

import datetime
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cryptoki_shim import spec
from cryptoki_shim.attributes import codec
from p11 import P11, Template, ffi, raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them

CKU_SO = int(spec.CKU_SO)
UNAVAILABLE = int(spec.CK_UNAVAILABLE_INFORMATION)
ULONG = struct.Struct("=Q")
P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")


def i2b(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def data_obj(**extra: Any) -> dict[int, Any]:
    attrs = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_LABEL: b"data", spec.CKA_VALUE: b"payload"}
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


def aes_key(value: bytes = bytes(range(32)), **extra: Any) -> dict[int, Any]:
    attrs = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_VALUE: value}
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


def rsa_private(key: rsa.RSAPrivateKey, **extra: Any) -> dict[int, Any]:
    n = key.private_numbers()
    attrs = {
        spec.CKA_CLASS: spec.CKO_PRIVATE_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA,
        spec.CKA_MODULUS: i2b(n.public_numbers.n), spec.CKA_PUBLIC_EXPONENT: i2b(n.public_numbers.e),
        spec.CKA_PRIVATE_EXPONENT: i2b(n.d), spec.CKA_PRIME_1: i2b(n.p), spec.CKA_PRIME_2: i2b(n.q),
        spec.CKA_EXPONENT_1: i2b(n.dmp1), spec.CKA_EXPONENT_2: i2b(n.dmq1), spec.CKA_COEFFICIENT: i2b(n.iqmp),
    }
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@pytest.fixture(scope="module")
def cert_der(rsa_key) -> tuple[bytes, x509.Certificate]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cryptoki-shim test"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tests")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
            .public_key(rsa_key.public_key()).serial_number(0x1234567890ABCDEF)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
            .sign(rsa_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER), cert


def raw_attr_call(p11: P11, fn: str, session: int, handle: int, items: list[tuple[int, bytes | None, int]]):
    """C_Get/SetAttributeValue with hand-made CK_ATTRIBUTEs: (type, buffer or None, length)."""
    arr = ffi.new("CK_ATTRIBUTE[]", len(items))
    keep = []
    for i, (t, buf, n) in enumerate(items):
        arr[i].type = t
        if buf is None:
            arr[i].pValue = ffi.NULL
        else:
            cbuf = ffi.new("unsigned char[]", max(1, len(buf)))
            cbuf[0:len(buf)] = buf
            keep.append(cbuf)
            arr[i].pValue = cbuf
        arr[i].ulValueLen = n
    rv = p11.call(fn, session, handle, arr, len(items))
    return rv, arr, keep


def create_raw(p11: P11, session: int, items: list[tuple[int, bytes]]) -> tuple[int, int]:
    """C_CreateObject from raw (type, bytes) pairs (wrong lengths, duplicates ...)."""
    arr = ffi.new("CK_ATTRIBUTE[]", max(1, len(items)))
    keep = []
    for i, (t, raw) in enumerate(items):
        buf = ffi.new("unsigned char[]", raw) if raw else ffi.NULL
        keep.append(buf)
        arr[i].type, arr[i].pValue, arr[i].ulValueLen = t, buf, len(raw)
    h = ffi.new("CK_OBJECT_HANDLE *")
    rv = p11.call("C_CreateObject", session, arr, len(items), h)
    return rv, int(h[0])


def enc(t: int, v: Any) -> bytes:
    return codec.encode(t, v)


# ----------------------------------------------------------------------------- data objects


def test_data_object_lifecycle(token, user_session):
    s = user_session
    h = token.create(s, data_obj(CKA_TOKEN=True, CKA_APPLICATION=b"app", CKA_OBJECT_ID=b"\x06\x01\x00"))
    assert token.get(s, h, spec.CKA_CLASS) == spec.CKO_DATA
    assert token.get(s, h, spec.CKA_APPLICATION) == b"app"
    assert token.get(s, h, spec.CKA_PRIVATE) is True  # data objects default to private (SoftHSM2)
    assert token.get(s, h, spec.CKA_MODIFIABLE) is True
    size = ffi.new("CK_ULONG *")
    token.check("C_GetObjectSize", s, h, size)
    assert size[0] > len(b"payload")
    token.set(s, h, {spec.CKA_LABEL: b"renamed"})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):  # 4.5: no footnote 8 on CKA_VALUE
        token.set(s, h, {spec.CKA_VALUE: b"new"})
    assert token.get(s, h, spec.CKA_LABEL) == b"renamed"
    assert token.find(s, {spec.CKA_LABEL: b"renamed", spec.CKA_CLASS: spec.CKO_DATA}) == [h]
    c = token.copy(s, h, {spec.CKA_LABEL: b"copy", spec.CKA_TOKEN: False})
    assert c != h and token.get(s, c, spec.CKA_VALUE) == b"payload" and token.get(s, c, spec.CKA_TOKEN) is False
    assert token.get(s, c, spec.CKA_UNIQUE_ID) != token.get(s, h, spec.CKA_UNIQUE_ID)
    token.destroy(s, h)
    token.destroy(s, c)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == []
    for fn_args in (("C_DestroyObject", s, h), ("C_GetObjectSize", s, h, size)):
        assert token.call(*fn_args) == spec.CKR_OBJECT_HANDLE_INVALID


def test_public_data_object_without_login(token):
    s = token.open(0)
    h = token.create(s, data_obj(CKA_PRIVATE=False, CKA_TOKEN=True))
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == [h]
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.create(s, data_obj(CKA_PRIVATE=True))


# ----------------------------------------------------------------------------- certificates


def test_x509_certificate_fields_from_value(token, user_session, cert_der):
    der, cert = cert_der
    s = user_session
    h = token.create(s, {spec.CKA_CLASS: spec.CKO_CERTIFICATE, spec.CKA_CERTIFICATE_TYPE: spec.CKC_X_509,
                         spec.CKA_TOKEN: True, spec.CKA_VALUE: der, spec.CKA_ID: b"\x01", spec.CKA_LABEL: b"cert"})
    assert token.get(s, h, spec.CKA_SUBJECT) == cert.subject.public_bytes()
    assert token.get(s, h, spec.CKA_ISSUER) == cert.issuer.public_bytes()
    serial = token.get(s, h, spec.CKA_SERIAL_NUMBER)
    assert serial[0] == 0x02 and int.from_bytes(serial[2:], "big") == cert.serial_number
    assert token.get(s, h, spec.CKA_VALUE) == der
    assert token.get(s, h, spec.CKA_PRIVATE) is False
    import hashlib
    assert token.get(s, h, spec.CKA_CHECK_VALUE) == hashlib.sha1(der).digest()[:3]
    assert token.find(s, {spec.CKA_SUBJECT: cert.subject.public_bytes()}) == [h]
    token.set(s, h, {spec.CKA_ID: b"\x02"})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, h, {spec.CKA_VALUE: der + b"\x00"})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, h, {spec.CKA_SUBJECT: b"\x30\x00"})
    token.destroy(s, h)


def test_certificate_given_subject_kept(token, user_session, cert_der):
    der, _cert = cert_der
    h = token.create(user_session, {spec.CKA_CLASS: spec.CKO_CERTIFICATE, spec.CKA_CERTIFICATE_TYPE: spec.CKC_X_509,
                                    spec.CKA_VALUE: der, spec.CKA_SUBJECT: b"\x30\x00"})
    assert token.get(user_session, h, spec.CKA_SUBJECT) == b"\x30\x00"


def test_certificate_errors(token, user_session):
    s = user_session
    with raises_ckr(spec.CKR_TEMPLATE_INCOMPLETE):  # no certificate type
        token.create(s, {spec.CKA_CLASS: spec.CKO_CERTIFICATE, spec.CKA_VALUE: b"x"})
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):  # not DER, no subject
        token.create(s, {spec.CKA_CLASS: spec.CKO_CERTIFICATE, spec.CKA_CERTIFICATE_TYPE: spec.CKC_X_509,
                         spec.CKA_VALUE: b"not a certificate"})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):  # only the SO may trust
        token.create(s, {spec.CKA_CLASS: spec.CKO_CERTIFICATE, spec.CKA_CERTIFICATE_TYPE: spec.CKC_X_509,
                         spec.CKA_VALUE: b"x", spec.CKA_SUBJECT: b"\x30\x00", spec.CKA_TRUSTED: True})


# ----------------------------------------------------------------------------- keys


def test_rsa_private_key_all_crt(token, user_session, rsa_key):
    s = user_session
    tmpl = rsa_private(rsa_key, CKA_TOKEN=True, CKA_SENSITIVE=False, CKA_EXTRACTABLE=True, CKA_ID=b"k1")
    h = token.create(s, tmpl)
    for t in (spec.CKA_MODULUS, spec.CKA_PRIVATE_EXPONENT, spec.CKA_PRIME_1, spec.CKA_COEFFICIENT):
        assert token.get(s, h, t) == tmpl[t]
    assert token.get(s, h, spec.CKA_LOCAL) is False
    assert token.get(s, h, spec.CKA_ALWAYS_SENSITIVE) is False
    assert token.get(s, h, spec.CKA_NEVER_EXTRACTABLE) is False
    assert token.get(s, h, spec.CKA_KEY_GEN_MECHANISM) == UNAVAILABLE
    # a usable key: the signature verifies with pyca
    from cryptography.hazmat.primitives.asymmetric import padding
    sig = token.sign(s, spec.CKM_SHA256_RSA_PKCS, h, b"msg")
    rsa_key.public_key().verify(sig, b"msg", padding.PKCS1v15(), hashes.SHA256())
    # sensitive from now on; the derived flags do not turn TRUE
    token.set(s, h, {spec.CKA_SENSITIVE: True})
    with raises_ckr(spec.CKR_ATTRIBUTE_SENSITIVE):
        token.get(s, h, spec.CKA_PRIVATE_EXPONENT)
    assert token.get(s, h, spec.CKA_ALWAYS_SENSITIVE) is False
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, h, {spec.CKA_SENSITIVE: False})  # footnote 11


def test_rsa_private_key_incomplete(token, user_session, rsa_key):
    tmpl = rsa_private(rsa_key)
    del tmpl[spec.CKA_MODULUS]
    with raises_ckr(spec.CKR_TEMPLATE_INCOMPLETE):
        token.create(user_session, tmpl)


def test_rsa_public_key(token, user_session, rsa_key):
    pub = rsa_key.public_key().public_numbers()
    h = token.create(user_session, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA,
                                    spec.CKA_MODULUS: i2b(pub.n), spec.CKA_PUBLIC_EXPONENT: i2b(pub.e),
                                    spec.CKA_TOKEN: True})
    assert token.get(user_session, h, spec.CKA_MODULUS_BITS) == 2048
    assert token.get(user_session, h, spec.CKA_PRIVATE) is False
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    assert token.get(user_session, h, spec.CKA_PUBLIC_KEY_INFO) == spki
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):  # footnote 2: computed, not given
        token.create(user_session, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA,
                                    spec.CKA_MODULUS: i2b(pub.n), spec.CKA_PUBLIC_EXPONENT: i2b(pub.e),
                                    spec.CKA_MODULUS_BITS: 2048})


def test_ec_keys(token, user_session):
    key = ec.generate_private_key(ec.SECP256R1())
    s = user_session
    d = key.private_numbers().private_value.to_bytes(32, "big")
    hpriv = token.create(s, {spec.CKA_CLASS: spec.CKO_PRIVATE_KEY, spec.CKA_KEY_TYPE: spec.CKK_EC,
                             spec.CKA_EC_PARAMS: P256_OID_DER, spec.CKA_VALUE: d, spec.CKA_TOKEN: True,
                             spec.CKA_SENSITIVE: True})
    with raises_ckr(spec.CKR_ATTRIBUTE_SENSITIVE):
        token.get(s, hpriv, spec.CKA_VALUE)
    assert token.get(s, hpriv, spec.CKA_EC_PARAMS) == P256_OID_DER
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    hpub = token.create(s, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_EC,
                            spec.CKA_EC_PARAMS: P256_OID_DER, spec.CKA_EC_POINT: point})
    assert token.get(s, hpub, spec.CKA_EC_POINT) == b"\x04\x41" + point  # DER OCTET STRING
    sig = token.sign(s, spec.CKM_ECDSA_SHA256, hpriv, b"msg")
    token.verify(s, spec.CKM_ECDSA_SHA256, hpub, b"msg", sig)
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):  # a point not on the curve
        token.create(s, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_EC,
                         spec.CKA_EC_PARAMS: P256_OID_DER, spec.CKA_EC_POINT: b"\x04" + bytes(64)})


def test_secret_keys(token, user_session):
    s = user_session
    h = token.create(s, aes_key(CKA_TOKEN=True, CKA_EXTRACTABLE=True))
    assert token.get(s, h, spec.CKA_VALUE) == bytes(range(32))
    assert token.get(s, h, spec.CKA_VALUE_LEN) == 32
    assert len(token.get(s, h, spec.CKA_CHECK_VALUE)) == 3
    g = token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                         spec.CKA_VALUE: b"\x11" * 20, spec.CKA_SENSITIVE: True})
    assert token.get(s, g, spec.CKA_VALUE_LEN) == 20
    with raises_ckr(spec.CKR_ATTRIBUTE_SENSITIVE):
        token.get(s, g, spec.CKA_VALUE)
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(s, aes_key(bytes(15)))
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):  # footnote 2
        token.create(s, aes_key(CKA_VALUE_LEN=32))
    with raises_ckr(spec.CKR_TEMPLATE_INCOMPLETE):
        token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES})


def test_generated_key_derived_flags(token, user_session):
    s = user_session
    h = token.generate_key(s, spec.CKM_AES_KEY_GEN, {spec.CKA_VALUE_LEN: 16, spec.CKA_SENSITIVE: True,
                                                     spec.CKA_EXTRACTABLE: False})
    assert token.get(s, h, spec.CKA_LOCAL) is True
    assert token.get(s, h, spec.CKA_KEY_GEN_MECHANISM) == spec.CKM_AES_KEY_GEN
    assert token.get(s, h, spec.CKA_ALWAYS_SENSITIVE) is True
    assert token.get(s, h, spec.CKA_NEVER_EXTRACTABLE) is True
    c = token.copy(s, h, {})
    assert token.get(s, c, spec.CKA_ALWAYS_SENSITIVE) is True and token.get(s, c, spec.CKA_LOCAL) is True
    for t in (spec.CKA_LOCAL, spec.CKA_ALWAYS_SENSITIVE, spec.CKA_NEVER_EXTRACTABLE):
        with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
            token.set(s, h, {t: False})
    g = token.generate_key(s, spec.CKM_AES_KEY_GEN, {spec.CKA_VALUE_LEN: 16, spec.CKA_EXTRACTABLE: True})
    assert token.get(s, g, spec.CKA_ALWAYS_SENSITIVE) is False
    assert token.get(s, g, spec.CKA_NEVER_EXTRACTABLE) is False
    token.set(s, g, {spec.CKA_SENSITIVE: True, spec.CKA_EXTRACTABLE: False})
    assert token.get(s, g, spec.CKA_ALWAYS_SENSITIVE) is False
    assert token.get(s, g, spec.CKA_NEVER_EXTRACTABLE) is False


# ----------------------------------------------------------------------------- profiles


def test_profile_objects_visible(token):
    s = token.open(0, rw=False)
    found = token.find(s, {spec.CKA_CLASS: spec.CKO_PROFILE})
    ids = {token.get(s, h, spec.CKA_PROFILE_ID) for h in found}
    assert spec.CKP_BASELINE_PROVIDER in ids and len(ids) == len(found)
    h = found[0]
    assert token.get(s, h, spec.CKA_TOKEN) is True and token.get(s, h, spec.CKA_PRIVATE) is False
    uids = {token.get(s, x, spec.CKA_UNIQUE_ID) for x in found}  # storage objects (4.4) have one
    assert len(uids) == len(found) and all(uids)
    rw = token.open(0)
    token.login(rw, USER_PIN)
    assert set(token.find(rw, {spec.CKA_CLASS: spec.CKO_PROFILE})) == set(found)
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.destroy(rw, h)
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.set(rw, h, {spec.CKA_LABEL: b"x"})
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.copy(rw, h, {})
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(rw, {spec.CKA_CLASS: spec.CKO_PROFILE, spec.CKA_PROFILE_ID: spec.CKP_BASELINE_PROVIDER})


# ----------------------------------------------------------------------------- creation errors


def test_creation_error_codes(token, user_session):
    s = user_session
    cases = [
        (spec.CKR_TEMPLATE_INCOMPLETE, {spec.CKA_LABEL: b"no class"}),
        (spec.CKR_TEMPLATE_INCOMPLETE, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_VALUE: bytes(16)}),
        (spec.CKR_TEMPLATE_INCONSISTENT, {**aes_key(), spec.CKA_MODULUS: b"\x01"}),
        (spec.CKR_TEMPLATE_INCONSISTENT, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                                          spec.CKA_VALUE: bytes(16)}),
        (spec.CKR_ATTRIBUTE_READ_ONLY, {**aes_key(), spec.CKA_LOCAL: True}),
        (spec.CKR_ATTRIBUTE_READ_ONLY, {**aes_key(), spec.CKA_ALWAYS_SENSITIVE: True}),
        (spec.CKR_ATTRIBUTE_READ_ONLY, {**aes_key(), spec.CKA_NEVER_EXTRACTABLE: False}),
        (spec.CKR_ATTRIBUTE_READ_ONLY, {**data_obj(), spec.CKA_UNIQUE_ID: b"mine"}),
        (spec.CKR_ATTRIBUTE_VALUE_INVALID, {spec.CKA_CLASS: 0x7777}),
        (spec.CKR_ATTRIBUTE_VALUE_INVALID, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: 0x7777,
                                            spec.CKA_VALUE: bytes(16)}),
    ]
    for ckr, tmpl in cases:
        with raises_ckr(ckr):
            token.create(s, tmpl)
    rv, _ = create_raw(token, s, [(spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_DATA)), (0x0FFF_FFF0, b"x")])
    assert rv == spec.CKR_ATTRIBUTE_TYPE_INVALID
    rv, _ = create_raw(token, s, [(spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_DATA)),
                                  (spec.CKA_VENDOR_DEFINED | 0x4242, b"x")])
    assert rv == spec.CKR_ATTRIBUTE_TYPE_INVALID
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == []


def test_modifiable_copyable_destroyable(token, user_session):
    s = user_session
    h = token.create(s, data_obj(CKA_MODIFIABLE=False, CKA_COPYABLE=False, CKA_DESTROYABLE=False, CKA_TOKEN=True))
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.set(s, h, {spec.CKA_LABEL: b"x"})
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.copy(s, h, {})
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.destroy(s, h)
    assert token.find(s, {spec.CKA_LABEL: b"data"}) == [h]
    m = token.create(s, data_obj(CKA_COPYABLE=True))
    token.set(s, m, {spec.CKA_COPYABLE: False})  # TRUE -> FALSE only
    with raises_ckr(spec.CKR_ACTION_PROHIBITED):
        token.copy(s, m, {})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, m, {spec.CKA_COPYABLE: True})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, m, {spec.CKA_MODIFIABLE: False})
    # the SO re-initialising the token does wipe it
    token.check("C_CloseAllSessions", 0)
    token.init_token(0, SO_PIN, "wiped")
    s2 = token.open(0)
    token.login(s2, SO_PIN, user=CKU_SO)
    assert token.find(s2) == token.find(s2, {spec.CKA_CLASS: spec.CKO_PROFILE})


def test_unique_id(token, user_session):
    s = user_session
    hs = [token.create(s, data_obj(CKA_TOKEN=bool(i % 2))) for i in range(6)]
    ids = [token.get(s, h, spec.CKA_UNIQUE_ID) for h in hs]
    assert all(ids) and len(set(ids)) == len(ids)
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, hs[0], {spec.CKA_UNIQUE_ID: b"other"})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.copy(s, hs[0], {spec.CKA_UNIQUE_ID: b"other"})
    assert token.find(s, {spec.CKA_UNIQUE_ID: ids[3]}) == [hs[3]]
    token.finalize()
    token.initialize()
    s = token.open(0)
    token.login(s, USER_PIN)
    assert len(token.find(s, {spec.CKA_UNIQUE_ID: ids[1]})) == 1  # token objects keep theirs


def test_set_attribute_errors(token, user_session):
    s = user_session
    h = token.create(s, aes_key(CKA_EXTRACTABLE=True))
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, h, {spec.CKA_VALUE: bytes(32)})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):
        token.set(s, h, {spec.CKA_CLASS: spec.CKO_DATA})
    with raises_ckr(spec.CKR_ATTRIBUTE_TYPE_INVALID):
        token.set(s, h, {spec.CKA_MODULUS: b"\x01"})
    rv, _arr, _k = raw_attr_call(token, "C_SetAttributeValue", s, h, [(0x0FFF_FFF0, b"x", 1)])
    assert rv == spec.CKR_ATTRIBUTE_TYPE_INVALID
    token.set(s, h, {spec.CKA_EXTRACTABLE: False})
    with raises_ckr(spec.CKR_ATTRIBUTE_READ_ONLY):  # footnote 12
        token.set(s, h, {spec.CKA_EXTRACTABLE: True})


# ----------------------------------------------------------------------------- C_GetAttributeValue


def test_get_attribute_value_per_attribute_results(token, user_session):
    s = user_session
    h = token.create(s, aes_key(CKA_SENSITIVE=True, CKA_LABEL=b"hello"))
    rv, arr, _k = raw_attr_call(token, "C_GetAttributeValue", s, h, [
        (spec.CKA_LABEL, bytes(64), 64),          # ok
        (spec.CKA_VALUE, bytes(64), 64),          # sensitive
        (spec.CKA_MODULUS, bytes(64), 64),        # not an attribute of a secret key
        (spec.CKA_KEY_TYPE, None, 0),             # length query
        (spec.CKA_VALUE_LEN, bytes(8), 8),        # ok
    ])
    assert rv in (spec.CKR_ATTRIBUTE_SENSITIVE, spec.CKR_ATTRIBUTE_TYPE_INVALID)
    assert arr[0].ulValueLen == 5 and bytes(ffi.buffer(arr[0].pValue, 5)) == b"hello"
    assert arr[1].ulValueLen == UNAVAILABLE
    assert arr[2].ulValueLen == UNAVAILABLE
    assert arr[3].ulValueLen == 8
    assert arr[4].ulValueLen == 8 and ULONG.unpack(bytes(ffi.buffer(arr[4].pValue, 8)))[0] == 32
    rv, arr, _k = raw_attr_call(token, "C_GetAttributeValue", s, h, [
        (spec.CKA_LABEL, bytes(2), 2), (spec.CKA_CLASS, bytes(8), 8)])
    assert rv == spec.CKR_BUFFER_TOO_SMALL
    assert arr[0].ulValueLen == UNAVAILABLE
    assert arr[1].ulValueLen == 8  # processed despite the earlier failure
    rv, arr, _k = raw_attr_call(token, "C_GetAttributeValue", s, h, [(0x0FFF_FFF0, None, 0)])
    assert rv == spec.CKR_ATTRIBUTE_TYPE_INVALID and arr[0].ulValueLen == UNAVAILABLE
    rv, arr, _k = raw_attr_call(token, "C_GetAttributeValue", s, h, [(spec.CKA_VALUE, None, 0)])
    assert rv == spec.CKR_ATTRIBUTE_SENSITIVE and arr[0].ulValueLen == UNAVAILABLE


def test_get_attribute_value_zero_count_and_null(token, user_session):
    h = token.create(user_session, data_obj())
    assert token.call("C_GetAttributeValue", user_session, h, ffi.NULL, 0) == spec.CKR_OK
    assert token.call("C_GetAttributeValue", user_session, h, ffi.NULL, 2) == spec.CKR_ARGUMENTS_BAD


def test_allowed_mechanisms_array(token, user_session):
    s = user_session
    mechs = (spec.CKM_AES_CBC, spec.CKM_AES_GCM)
    h = token.create(s, aes_key(CKA_ALLOWED_MECHANISMS=mechs))
    assert token.get(s, h, spec.CKA_ALLOWED_MECHANISMS) == mechs
    rv, arr, _k = raw_attr_call(token, "C_GetAttributeValue", s, h, [(spec.CKA_ALLOWED_MECHANISMS, None, 0)])
    assert rv == 0 and arr[0].ulValueLen == 16
    with raises_ckr(spec.CKR_ATTRIBUTE_VALUE_INVALID):  # not a whole number of CK_ULONGs
        create_and_raise(token, s, [(spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_SECRET_KEY)),
                                    (spec.CKA_KEY_TYPE, enc(spec.CKA_KEY_TYPE, spec.CKK_AES)),
                                    (spec.CKA_VALUE, bytes(16)), (spec.CKA_ALLOWED_MECHANISMS, bytes(12))])


def create_and_raise(p11: P11, s: int, items: list[tuple[int, bytes]]) -> int:
    rv, h = create_raw(p11, s, items)
    if rv:
        from p11 import P11Error
        raise P11Error(rv, "C_CreateObject")
    return h


class Nested:
    """A CK_ATTRIBUTE whose value is a CK_ATTRIBUTE array (CKA_WRAP_TEMPLATE ...)."""

    def __init__(self, atype: int, inner: dict[int, Any]) -> None:
        self.inner = Template(inner)
        self.outer = ffi.new("CK_ATTRIBUTE[]", 1)
        self.outer[0].type = atype
        self.outer[0].pValue = self.inner.array
        self.outer[0].ulValueLen = self.inner.count * ffi.sizeof("CK_ATTRIBUTE")


def test_wrap_template_nested(token, user_session):
    s = user_session
    base = Template(aes_key(CKA_WRAP=True))
    wrap = Nested(spec.CKA_WRAP_TEMPLATE, {spec.CKA_EXTRACTABLE: True, spec.CKA_KEY_TYPE: spec.CKK_AES})
    arr = ffi.new("CK_ATTRIBUTE[]", base.count + 1)
    for i in range(base.count):
        arr[i] = base.array[i]
    arr[base.count] = wrap.outer[0]
    hp = ffi.new("CK_OBJECT_HANDLE *")
    token.check("C_CreateObject", s, arr, base.count + 1, hp)
    h = hp[0]
    # size query: n * sizeof(CK_ATTRIBUTE)
    q = ffi.new("CK_ATTRIBUTE *")
    q.type = spec.CKA_WRAP_TEMPLATE
    token.check("C_GetAttributeValue", s, h, q, 1)
    assert q.ulValueLen == 2 * ffi.sizeof("CK_ATTRIBUTE")
    inner = ffi.new("CK_ATTRIBUTE[]", 2)
    q.pValue = inner
    token.check("C_GetAttributeValue", s, h, q, 1)  # inner pValues NULL: lengths
    lengths = {inner[i].type: inner[i].ulValueLen for i in range(2)}
    assert lengths == {spec.CKA_EXTRACTABLE: 1, spec.CKA_KEY_TYPE: 8}
    bufs = [ffi.new("unsigned char[]", 8) for _ in range(2)]
    for i in range(2):
        inner[i].pValue = bufs[i]
    token.check("C_GetAttributeValue", s, h, q, 1)
    got = {inner[i].type: codec.decode(inner[i].type, ffi.buffer(bufs[i], inner[i].ulValueLen)[:]) for i in range(2)}
    assert got == {spec.CKA_EXTRACTABLE: True, spec.CKA_KEY_TYPE: spec.CKK_AES}
    # too small an outer buffer
    q.ulValueLen = ffi.sizeof("CK_ATTRIBUTE")
    assert token.call("C_GetAttributeValue", s, h, q, 1) == spec.CKR_BUFFER_TOO_SMALL
    assert q.ulValueLen == UNAVAILABLE


# ----------------------------------------------------------------------------- visibility


def test_private_objects_invisible_until_login(token, user_session):
    s = user_session
    priv = token.create(s, data_obj(CKA_TOKEN=True, CKA_PRIVATE=True, CKA_LABEL=b"secret"))
    pub = token.create(s, data_obj(CKA_TOKEN=True, CKA_PRIVATE=False, CKA_LABEL=b"open"))
    key = token.create(s, aes_key(CKA_TOKEN=True))
    token.logout(s)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == [pub]
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(s, priv, spec.CKA_LABEL)
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.destroy(s, priv)
    m, _keep = token.mechanism(spec.CKM_AES_ECB)
    assert token.call("C_EncryptInit", s, m, key) == spec.CKR_KEY_HANDLE_INVALID
    token.login(s, SO_PIN, user=CKU_SO)  # the SO does not see them either
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == [pub]
    token.logout(s)
    token.login(s, USER_PIN)
    # §5.6.8: handles to private objects stay invalid after C_Logout, even once logged in again
    found = token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})
    assert pub in found and priv not in found and len(found) == 2
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(s, priv, spec.CKA_LABEL)
    (again,) = token.find(s, {spec.CKA_LABEL: b"secret"})
    assert token.get(s, again, spec.CKA_LABEL) == b"secret"
    assert token.get(s, pub, spec.CKA_LABEL) == b"open"  # public handles stay valid across reloads


def test_private_session_objects_destroyed_by_logout(token, user_session):
    s = user_session
    h = token.create(s, data_obj(CKA_PRIVATE=True))
    p = token.create(s, data_obj(CKA_PRIVATE=False))
    token.logout(s)
    token.login(s, USER_PIN)
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(s, h, spec.CKA_LABEL)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == [p]


def test_session_objects_shared_and_die_with_session(token, user_session):
    a = user_session
    b = token.open(0, rw=False)
    h = token.create(a, data_obj(CKA_LABEL=b"mine"))
    assert token.find(b, {spec.CKA_LABEL: b"mine"}) == [h]
    assert token.get(b, h, spec.CKA_VALUE) == b"payload"
    hb = token.create(b, data_obj(CKA_LABEL=b"ro session obj"))  # session objects in RO sessions are fine
    token.set(b, hb, {spec.CKA_LABEL: b"ro changed"})
    token.close(a)
    assert token.find(b, {spec.CKA_LABEL: b"mine"}) == []
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(b, h, spec.CKA_LABEL)
    assert token.find(b, {spec.CKA_LABEL: b"ro changed"}) == [hb]


def test_read_only_session_and_token_objects(token, user_session):
    h = token.create(user_session, data_obj(CKA_TOKEN=True))
    ro = token.open(0, rw=False)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.create(ro, data_obj(CKA_TOKEN=True))
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.set(ro, h, {spec.CKA_LABEL: b"x"})
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.destroy(ro, h)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.copy(ro, h, {})
    c = token.copy(ro, h, {spec.CKA_TOKEN: False})  # a session copy is fine
    assert token.get(ro, c, spec.CKA_TOKEN) is False
    assert token.get(ro, h, spec.CKA_LABEL) == b"data"


# ----------------------------------------------------------------------------- bad input


def test_unknown_object_handles(token, user_session):
    s = user_session
    size = ffi.new("CK_ULONG *")
    t = Template({spec.CKA_LABEL: b"x"})
    newh = ffi.new("CK_OBJECT_HANDLE *")
    for h in (0, 999999, 2**63 + 5):
        assert token.call("C_GetObjectSize", s, h, size) == spec.CKR_OBJECT_HANDLE_INVALID
        assert token.call("C_GetAttributeValue", s, h, t.array, 1) == spec.CKR_OBJECT_HANDLE_INVALID
        assert token.call("C_SetAttributeValue", s, h, t.array, 1) == spec.CKR_OBJECT_HANDLE_INVALID
        assert token.call("C_DestroyObject", s, h) == spec.CKR_OBJECT_HANDLE_INVALID
        assert token.call("C_CopyObject", s, h, t.array, 1, newh) == spec.CKR_OBJECT_HANDLE_INVALID


def test_null_pointers_with_lengths(token, user_session):
    s = user_session
    h = token.create(s, data_obj())
    hp = ffi.new("CK_OBJECT_HANDLE *")
    t = Template(data_obj())
    assert token.call("C_CreateObject", s, ffi.NULL, 3, hp) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_CreateObject", s, t.array, t.count, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_CopyObject", s, h, ffi.NULL, 1, hp) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_CopyObject", s, h, ffi.NULL, 0, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_SetAttributeValue", s, h, ffi.NULL, 1) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_GetObjectSize", s, h, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_FindObjectsInit", s, ffi.NULL, 2) == spec.CKR_ARGUMENTS_BAD
    n = ffi.new("CK_ULONG *")
    token.check("C_FindObjectsInit", s, ffi.NULL, 0)
    assert token.call("C_FindObjects", s, ffi.NULL, 4, n) == spec.CKR_ARGUMENTS_BAD
    assert token.call("C_FindObjects", s, ffi.new("CK_OBJECT_HANDLE[]", 4), 4, ffi.NULL) == spec.CKR_ARGUMENTS_BAD
    token.check("C_FindObjectsFinal", s)
    # an attribute value pointer NULL with a length
    arr = ffi.new("CK_ATTRIBUTE[]", 1)
    arr[0].type, arr[0].pValue, arr[0].ulValueLen = spec.CKA_LABEL, ffi.NULL, 5
    rv = token.call("C_SetAttributeValue", s, h, arr, 1)
    assert rv in (spec.CKR_ARGUMENTS_BAD, spec.CKR_ATTRIBUTE_VALUE_INVALID)
    assert token.get(s, h, spec.CKA_LABEL) == b"data"


def test_zero_length_templates(token, user_session):
    s = user_session
    h = token.create(s, data_obj())
    hp = ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_CreateObject", s, ffi.NULL, 0, hp) == spec.CKR_TEMPLATE_INCOMPLETE
    assert token.call("C_SetAttributeValue", s, h, ffi.NULL, 0) == spec.CKR_OK
    token.check("C_CopyObject", s, h, ffi.NULL, 0, hp)
    assert token.get(s, hp[0], spec.CKA_VALUE) == b"payload"
    assert len(token.find(s)) == 2 + len(token.find(s, {spec.CKA_CLASS: spec.CKO_PROFILE}))


def test_duplicate_attributes(token, user_session):
    s = user_session
    cls = (spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_DATA))
    rv, h = create_raw(token, s, [cls, (spec.CKA_LABEL, b"same"), (spec.CKA_LABEL, b"same")])
    assert rv == 0 and token.get(s, h, spec.CKA_LABEL) == b"same"
    rv, _ = create_raw(token, s, [cls, (spec.CKA_LABEL, b"one"), (spec.CKA_LABEL, b"two")])
    assert rv == spec.CKR_TEMPLATE_INCONSISTENT
    rv, _arr, _k = raw_attr_call(token, "C_SetAttributeValue", s, h,
                                 [(spec.CKA_LABEL, b"a", 1), (spec.CKA_LABEL, b"b", 1)])
    assert rv == spec.CKR_TEMPLATE_INCONSISTENT
    assert token.get(s, h, spec.CKA_LABEL) == b"same"


def test_wrong_value_lengths(token, user_session):
    s = user_session
    for t, raw in ((spec.CKA_CLASS, b"\x00\x00\x00\x00"), (spec.CKA_CLASS, bytes(9)), (spec.CKA_CLASS, b"")):
        rv, _ = create_raw(token, s, [(t, raw)])
        assert rv == spec.CKR_ATTRIBUTE_VALUE_INVALID, (t, raw)
    cls = (spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_DATA))
    for raw in (bytes(8), b"\x01\x00", b""):
        rv, _ = create_raw(token, s, [cls, (spec.CKA_TOKEN, raw)])
        assert rv == spec.CKR_ATTRIBUTE_VALUE_INVALID, raw
    h = token.create(s, data_obj())
    rv, _arr, _k = raw_attr_call(token, "C_SetAttributeValue", s, h, [(spec.CKA_PRIVATE, bytes(8), 8)])
    assert rv == spec.CKR_ATTRIBUTE_VALUE_INVALID
    # a search with a wrongly sized value finds nothing, it does not fail
    t = ffi.new("CK_ATTRIBUTE[]", 1)
    buf = ffi.new("unsigned char[]", 4)
    t[0].type, t[0].pValue, t[0].ulValueLen = spec.CKA_CLASS, buf, 4
    token.check("C_FindObjectsInit", s, t, 1)
    n = ffi.new("CK_ULONG *")
    token.check("C_FindObjects", s, ffi.new("CK_OBJECT_HANDLE[]", 4), 4, n)
    token.check("C_FindObjectsFinal", s)
    assert n[0] == 0


def test_long_labels(token, user_session):
    s = user_session
    label = b"L" * 100_000
    h = token.create(s, data_obj(CKA_LABEL=label, CKA_TOKEN=True))
    assert token.get(s, h, spec.CKA_LABEL) == label
    rv, _ = create_raw(token, s, [(spec.CKA_CLASS, enc(spec.CKA_CLASS, spec.CKO_DATA)),
                                  (spec.CKA_LABEL, b"x" * (17 * 1024 * 1024))])
    assert rv == spec.CKR_ATTRIBUTE_VALUE_INVALID
    arr = ffi.new("CK_ATTRIBUTE[]", 1)
    arr[0].type, arr[0].pValue, arr[0].ulValueLen = spec.CKA_LABEL, ffi.new("char[]", 1), UNAVAILABLE
    assert token.call("C_SetAttributeValue", s, h, arr, 1) == spec.CKR_ATTRIBUTE_VALUE_INVALID
    hp = ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_CreateObject", s, arr, 2**40, hp) == spec.CKR_ARGUMENTS_BAD


def test_find_protocol(token, user_session):
    s = user_session
    hs = {token.create(s, data_obj(CKA_LABEL=b"f")) for _ in range(5)}
    n = ffi.new("CK_ULONG *")
    out = ffi.new("CK_OBJECT_HANDLE[]", 2)
    assert token.call("C_FindObjects", s, out, 2, n) == spec.CKR_OPERATION_NOT_INITIALIZED
    assert token.call("C_FindObjectsFinal", s) == spec.CKR_OPERATION_NOT_INITIALIZED
    t = Template({spec.CKA_LABEL: b"f"})
    token.check("C_FindObjectsInit", s, t.array, 1)
    assert token.call("C_FindObjectsInit", s, t.array, 1) == spec.CKR_OPERATION_ACTIVE
    got = set()
    while True:
        token.check("C_FindObjects", s, out, 2, n)
        got |= {out[i] for i in range(n[0])}
        if n[0] == 0:
            break
    token.check("C_FindObjectsFinal", s)
    assert got == hs
    unknown = ffi.new("CK_ATTRIBUTE[]", 1)
    unknown[0].type, unknown[0].pValue, unknown[0].ulValueLen = 0x0FFF_FFF0, ffi.new("char[]", 1), 1
    token.check("C_FindObjectsInit", s, unknown, 1)
    token.check("C_FindObjects", s, out, 2, n)
    assert n[0] == 0
    token.check("C_FindObjectsFinal", s)


def test_find_does_not_match_sensitive_values(token, user_session):
    s = user_session
    token.create(s, aes_key(b"\x42" * 16, CKA_SENSITIVE=True))
    assert token.find(s, {spec.CKA_VALUE: b"\x42" * 16}) == []
    assert len(token.find(s, {spec.CKA_VALUE_LEN: 16})) == 1


# ----------------------------------------------------------------------------- secrets at rest


def store_bytes(conf: Path) -> bytes:
    d = conf.parent
    return b"".join(p.read_bytes() for p in d.iterdir() if p.name.startswith("store.db"))


def test_secrets_not_in_store_files(token, user_session, shim_conf, rsa_key):
    s = user_session
    aes_value = bytes.fromhex("6b1f0e3c9a5d47e8b2c4f61a03d5e79c8b2a4d6f1e3c5a7b9d0f2e4c6a8b0d1f")
    token.create(s, aes_key(aes_value, CKA_TOKEN=True, CKA_SENSITIVE=False, CKA_EXTRACTABLE=True))
    tmpl = rsa_private(rsa_key, CKA_TOKEN=True, CKA_SENSITIVE=True)
    token.create(s, tmpl)
    token.create(s, data_obj(CKA_TOKEN=True, CKA_PRIVATE=False, CKA_VALUE=b"marker-in-clear"))
    token.create(s, data_obj(CKA_TOKEN=True, CKA_PRIVATE=True, CKA_VALUE=b"private-data-value"))
    raw = store_bytes(shim_conf)
    assert b"marker-in-clear" in raw  # the files we read are the right ones
    assert b"private-data-value" not in raw  # a private object's value is sealed (issue 15 item 5)
    assert aes_value not in raw and aes_value[:16] not in raw
    for t in (spec.CKA_PRIVATE_EXPONENT, spec.CKA_PRIME_1, spec.CKA_PRIME_2, spec.CKA_EXPONENT_1,
              spec.CKA_EXPONENT_2, spec.CKA_COEFFICIENT):
        assert tmpl[t][:16] not in raw, spec.cka_name(t)
    assert SO_PIN not in raw and USER_PIN + USER_PIN not in raw
    token.finalize()  # checkpointed / closed files too
    raw = store_bytes(shim_conf)
    assert aes_value[:16] not in raw and tmpl[spec.CKA_PRIVATE_EXPONENT][:16] not in raw
    token.initialize()


def test_wrong_pin_decrypts_nothing(token, user_session, shim_conf):
    s = user_session
    value = b"\x5a" * 32
    h = token.create(s, aes_key(value, CKA_TOKEN=True, CKA_PRIVATE=True, CKA_EXTRACTABLE=True))
    token.close(s)
    s = token.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, b"9999")
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []  # private: not without the login
    m, _keep = token.mechanism(spec.CKM_AES_ECB)
    assert token.call("C_EncryptInit", s, m, h) == spec.CKR_KEY_HANDLE_INVALID
    # (a CKA_PRIVATE FALSE key is usable without a login since issue 23 item 5:
    # tests/test_public_token_keys.py)
    # straight at the store: the wrong PIN does not open the record
    from cryptoki_shim.errors import CryptokiError
    from cryptoki_shim.store import Store
    from cryptoki_shim.store import crypto as at_rest
    store = Store(f"sqlite:///{shim_conf.parent / 'store.db'}")
    try:
        rec = store.token(0)
        with pytest.raises(CryptokiError) as err:
            at_rest.open_pin_record(b"9999", rec.user_pin)
        assert err.value.ckr == spec.CKR_PIN_INCORRECT
        assert len(at_rest.open_pin_record(USER_PIN, rec.user_pin)) == 32
    finally:
        store.close()
    token.login(s, USER_PIN)
    [h] = token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY})  # a private object's handle is new after a logout
    assert token.get(s, h, spec.CKA_VALUE) == value
