"""HMAC sign/verify against RFC 2202/4231 vectors and pyca, and the spec's error codes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import registry
from cryptoki_shim.spec import (
    CKA_VALUE,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_GENERIC_SECRET,
    CKK_SHA256_HMAC,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_512_HMAC,
    CKM_SHA224_HMAC,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC,
    CKM_SHA512_224_HMAC,
    CKM_SHA512_256_HMAC,
    CKM_SHA512_HMAC,
    CKM_SHA_1_HMAC,
    CKM_SHA_1_HMAC_GENERAL,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from vectors_util import KeyView, nist_records

RFC_FILES = {
    CKM_SHA_1_HMAC: "rfc-2202-sha1.txt",
    CKM_SHA224_HMAC: "rfc-4231-sha224.txt",
    CKM_SHA256_HMAC: "rfc-4231-sha256.txt",
    CKM_SHA384_HMAC: "rfc-4231-sha384.txt",
    CKM_SHA512_HMAC: "rfc-4231-sha512.txt",
}
PYCA = {
    CKM_SHA512_224_HMAC: hashes.SHA512_224,
    CKM_SHA512_256_HMAC: hashes.SHA512_256,
    CKM_SHA3_224_HMAC: hashes.SHA3_224,
    CKM_SHA3_256_HMAC: hashes.SHA3_256,
    CKM_SHA3_384_HMAC: hashes.SHA3_384,
    CKM_SHA3_512_HMAC: hashes.SHA3_512,
}


def _sign(ckm, key: bytes, param=None):
    entry = registry.lookup(ckm)
    return entry.family.sign_init(entry, param, KeyView({CKA_VALUE: key}))


def _verify(ckm, key: bytes, param=None):
    entry = registry.lookup(ckm)
    return entry.family.verify_init(entry, param, KeyView({CKA_VALUE: key}))


@pytest.mark.parametrize("ckm", sorted(RFC_FILES))
def test_rfc_vectors(ckm):
    records = [r for r in nist_records("HMAC", RFC_FILES[ckm]) if "MD" in r]
    assert len(records) >= 5
    for rec in records:
        key, msg, md = (bytes.fromhex(rec[k]) for k in ("Key", "Msg", "MD"))
        assert _sign(ckm, key).oneshot(msg) == md
        _verify(ckm, key).oneshot(msg, md)
        multi = _sign(ckm, key)
        for i in range(0, len(msg), 5):
            multi.update(msg[i : i + 5])
        assert multi.final() == md


@pytest.mark.parametrize("ckm", sorted(PYCA))
def test_matches_pyca(ckm):
    key, msg = b"k" * 40, b"message" * 30
    ref = pyca_hmac.HMAC(key, PYCA[ckm]())
    ref.update(msg)
    assert _sign(ckm, key).oneshot(msg) == ref.finalize()


def test_general_truncates_and_verifies():
    key, msg = b"\x0b" * 20, b"Hi There"
    full = _sign(CKM_SHA256_HMAC, key).oneshot(msg)
    assert _sign(CKM_SHA256_HMAC_GENERAL, key, 16).oneshot(msg) == full[:16]
    _verify(CKM_SHA256_HMAC_GENERAL, key, 16).oneshot(msg, full[:16])
    assert _sign(CKM_SHA_1_HMAC_GENERAL, key, 20).length_hint("final", 0) == 20


@pytest.mark.parametrize("length", [0, 33, -1, None])
def test_general_length_out_of_range(length):
    with pytest.raises(CryptokiError) as exc:
        _sign(CKM_SHA256_HMAC_GENERAL, b"k", length)
    assert exc.value.ckr == CKR_MECHANISM_PARAM_INVALID


def test_verify_errors():
    key, msg = b"secret", b"data"
    mac = _sign(CKM_SHA256_HMAC, key).oneshot(msg)
    with pytest.raises(CryptokiError) as exc:
        _verify(CKM_SHA256_HMAC, key).oneshot(msg, mac[:-1])
    assert exc.value.ckr == CKR_SIGNATURE_LEN_RANGE
    bad = bytes([mac[0] ^ 1]) + mac[1:]
    with pytest.raises(CryptokiError) as exc:
        _verify(CKM_SHA256_HMAC, key).oneshot(msg, bad)
    assert exc.value.ckr == CKR_SIGNATURE_INVALID


def test_entry_and_key_cache():
    entry = registry.lookup(CKM_SHA256_HMAC)
    assert entry.flags == CKF_SIGN | CKF_VERIFY
    assert {CKK_GENERIC_SECRET, CKK_SHA256_HMAC} <= entry.key_types
    view = KeyView({CKA_VALUE: b"key"})
    first = entry.family.sign_init(entry, None, view).oneshot(b"a")
    assert view.cache  # keyed state prepared once
    assert entry.family.sign_init(entry, None, view).oneshot(b"a") == first
    assert entry.family.sign_init(entry, None, view).length_hint("oneshot", 1) == 32
