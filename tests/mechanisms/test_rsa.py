"""RSA mechanisms: CAVP SigVer vectors, cross-checks with pyca and openssl, spec error codes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry
from cryptoki_shim.mechanisms.params import RsaPkcsOaepParams, RsaPkcsPssParams
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_SIGN_RECOVER,
    CKF_UNWRAP,
    CKF_WRAP,
    CKF_VERIFY,
    CKF_VERIFY_RECOVER,
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
    CKK_RSA,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_RSA_X_509,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA3_256,
    CKM_SHA3_256_RSA_PKCS,
    CKM_SHA3_256_RSA_PKCS_PSS,
    CKM_SHA224,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA_1,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKZ_DATA_SPECIFIED,
)
from vectors_util import KeyView, nist_records

HASH_CKM = {"SHA1": CKM_SHA_1, "SHA224": CKM_SHA224, "SHA256": CKM_SHA256, "SHA384": CKM_SHA384, "SHA512": CKM_SHA512}
PKCS_BY_HASH = {CKM_SHA_1: CKM_SHA1_RSA_PKCS, CKM_SHA224: CKM_SHA224_RSA_PKCS, CKM_SHA256: CKM_SHA256_RSA_PKCS,
                CKM_SHA384: CKM_SHA384_RSA_PKCS, CKM_SHA512: CKM_SHA512_RSA_PKCS, CKM_SHA3_256: CKM_SHA3_256_RSA_PKCS}
PSS_BY_HASH = {CKM_SHA_1: CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224: CKM_SHA224_RSA_PKCS_PSS,
               CKM_SHA256: CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384: CKM_SHA384_RSA_PKCS_PSS,
               CKM_SHA512: CKM_SHA512_RSA_PKCS_PSS, CKM_SHA3_256: CKM_SHA3_256_RSA_PKCS_PSS}
PYCA_HASH = {CKM_SHA_1: hashes.SHA1, CKM_SHA224: hashes.SHA224, CKM_SHA256: hashes.SHA256,
             CKM_SHA384: hashes.SHA384, CKM_SHA512: hashes.SHA512, CKM_SHA3_256: hashes.SHA3_256}
MGF = {CKG_MGF1_SHA1: hashes.SHA1, CKG_MGF1_SHA224: hashes.SHA224, CKG_MGF1_SHA256: hashes.SHA256,
       CKG_MGF1_SHA384: hashes.SHA384, CKG_MGF1_SHA512: hashes.SHA512}
MGF_BY_HASH = {CKM_SHA_1: CKG_MGF1_SHA1, CKM_SHA224: CKG_MGF1_SHA224, CKM_SHA256: CKG_MGF1_SHA256,
               CKM_SHA384: CKG_MGF1_SHA384, CKM_SHA512: CKG_MGF1_SHA512}


@pytest.fixture(scope="module")
def pair():
    entry = registry.lookup(CKM_RSA_PKCS_KEY_PAIR_GEN)
    pub, priv = entry.family.generate_key_pair(entry, None, {CKA_MODULUS_BITS: 2048}, {})
    priv_view = KeyView({**priv, CKA_CLASS: CKO_PRIVATE_KEY})
    pub_view = KeyView({**pub, CKA_CLASS: CKO_PUBLIC_KEY})
    return priv_view, pub_view, keys.load_private(priv_view)


def _op(op, ckm, param, view):
    entry = registry.lookup(ckm)
    return getattr(entry.family, op + "_init")(entry, param, view)


def _raises(ckr, fn, *args):
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr == ckr, exc.value
    return exc.value


# ----------------------------------------------------------------- known answers


def _public_view(rec):
    return KeyView({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_RSA,
                    CKA_MODULUS: bytes.fromhex(rec["n"]), CKA_PUBLIC_EXPONENT: bytes.fromhex(rec["e"])})


@pytest.mark.parametrize("kind", ["pkcs", "pss"])
def test_cavp_sigver(kind):
    name = "SigVer15_186-3.rsp" if kind == "pkcs" else "SigVerPSS_186-3.rsp"
    seen = {"P": 0, "F": 0}
    for rec in nist_records("asymmetric", "RSA", "FIPS_186-2", name):
        if "Result" not in rec:
            continue
        hash_ckm = HASH_CKM[rec["SHAAlg"]]
        msg, sig = bytes.fromhex(rec["Msg"]), bytes.fromhex(rec["S"])
        if kind == "pkcs":
            ckm, param = PKCS_BY_HASH[hash_ckm], None
        else:
            ckm = PSS_BY_HASH[hash_ckm]
            param = RsaPkcsPssParams(hash_ckm, MGF_BY_HASH[hash_ckm], len(bytes.fromhex(rec["SaltVal"])))
        ctx = _op("verify", ckm, param, _public_view(rec))
        expected = rec["Result"][0]
        if expected == "P":
            ctx.oneshot(msg, sig)
        else:
            _raises(CKR_SIGNATURE_INVALID, ctx.oneshot, msg, sig)
        seen[expected] += 1
    assert seen["P"] > 50 and seen["F"] > 50


# ----------------------------------------------------------------- cross-checks with pyca


@pytest.mark.parametrize("hash_ckm", sorted(PKCS_BY_HASH))
def test_pkcs1_hashed_cross(pair, hash_ckm):
    priv, pub, key = pair
    msg = os.urandom(300)
    ckm = PKCS_BY_HASH[hash_ckm]
    sig = _op("sign", ckm, None, priv).oneshot(msg)
    key.public_key().verify(sig, msg, padding.PKCS1v15(), PYCA_HASH[hash_ckm]())
    multi = _op("sign", ckm, None, priv)
    for i in range(0, len(msg), 64):
        multi.update(msg[i : i + 64])
    assert multi.final() == sig  # PKCS#1 v1.5 is deterministic: multi-part == one-shot
    theirs = key.sign(msg, padding.PKCS1v15(), PYCA_HASH[hash_ckm]())
    _op("verify", ckm, None, pub).oneshot(msg, theirs)
    verify = _op("verify", ckm, None, pub)
    verify.update(msg[:10])
    verify.update(msg[10:])
    verify.final(theirs)


@pytest.mark.parametrize("hash_ckm", sorted(PSS_BY_HASH))
@pytest.mark.parametrize("mgf", [CKG_MGF1_SHA1, CKG_MGF1_SHA256, CKG_MGF1_SHA512])
def test_pss_cross(pair, hash_ckm, mgf):
    priv, pub, key = pair
    algorithm = PYCA_HASH[hash_ckm]
    param = RsaPkcsPssParams(hash_ckm, mgf, algorithm.digest_size)
    pad = padding.PSS(padding.MGF1(MGF[mgf]()), algorithm.digest_size)
    msg = os.urandom(100)
    sig = _op("sign", PSS_BY_HASH[hash_ckm], param, priv).oneshot(msg)
    key.public_key().verify(sig, msg, pad, algorithm())
    digest = hashlib.new(algorithm.name.replace("-", "_"), msg).digest()
    raw_sig = _op("sign", CKM_RSA_PKCS_PSS, param, priv).oneshot(digest)
    key.public_key().verify(raw_sig, digest, pad, utils.Prehashed(algorithm()))
    theirs = key.sign(msg, pad, algorithm())
    _op("verify", PSS_BY_HASH[hash_ckm], param, pub).oneshot(msg, theirs)
    _op("verify", CKM_RSA_PKCS_PSS, param, pub).oneshot(digest, theirs)


def test_rsa_pkcs_raw_digestinfo_and_arbitrary_data(pair):
    """CKM_RSA_PKCS signs the caller's DigestInfo (fast path) and any other data <= k-11
    (Python path); both must equal pyca's PKCS#1 v1.5 encoding."""
    priv, pub, key = pair
    digest = hashlib.sha256(b"msg").digest()
    info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    sig = _op("sign", CKM_RSA_PKCS, None, priv).oneshot(info)
    assert sig == key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    tls = os.urandom(36)  # MD5||SHA-1 of TLS 1.0/1.1: no DigestInfo
    sig = _op("sign", CKM_RSA_PKCS, None, priv).oneshot(tls)
    assert key.public_key().recover_data_from_signature(sig, padding.PKCS1v15(), None) == tls
    _op("verify", CKM_RSA_PKCS, None, pub).oneshot(tls, sig)
    _raises(CKR_SIGNATURE_INVALID, _op("verify", CKM_RSA_PKCS, None, pub).oneshot, tls[:-1] + b"\0", sig)


def test_x509_raw(pair):
    priv, pub, key = pair
    n = key.public_key().public_numbers().n
    data = b"\x01\x02\x03"
    sig = _op("sign", CKM_RSA_X_509, None, priv).oneshot(data)
    assert len(sig) == 256
    assert pow(int.from_bytes(sig, "big"), 65537, n) == int.from_bytes(data, "big")
    _op("verify", CKM_RSA_X_509, None, pub).oneshot(data, sig)
    ct = _op("encrypt", CKM_RSA_X_509, None, pub).oneshot(data)
    assert _op("decrypt", CKM_RSA_X_509, None, priv).oneshot(ct) == data.rjust(256, b"\0")
    _raises(CKR_DATA_INVALID, _op("encrypt", CKM_RSA_X_509, None, pub).oneshot, b"\xff" * 256)
    _raises(CKR_DATA_LEN_RANGE, _op("sign", CKM_RSA_X_509, None, priv).oneshot, b"\x01" * 257)


OAEP_HASHES = [CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512]


@pytest.mark.parametrize("hash_ckm", OAEP_HASHES)
@pytest.mark.parametrize("mgf", sorted(MGF))
def test_oaep_all_pairs_cross(pair, hash_ckm, mgf):
    priv, pub, key = pair
    label = b"label"
    param = RsaPkcsOaepParams(hash_ckm, mgf, CKZ_DATA_SPECIFIED, label)
    pad = padding.OAEP(padding.MGF1(MGF[mgf]()), PYCA_HASH[hash_ckm](), label)
    ct = _op("encrypt", CKM_RSA_PKCS_OAEP, param, pub).oneshot(b"secret")
    assert key.decrypt(ct, pad) == b"secret"
    theirs = key.public_key().encrypt(b"other", pad)
    assert _op("decrypt", CKM_RSA_PKCS_OAEP, param, priv).oneshot(theirs) == b"other"


def test_oaep_no_label_and_errors(pair):
    priv, pub, key = pair
    param = RsaPkcsOaepParams(CKM_SHA256, CKG_MGF1_SHA256, 0, b"")
    ct = key.public_key().encrypt(b"x", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert _op("decrypt", CKM_RSA_PKCS_OAEP, param, priv).oneshot(ct) == b"x"
    limit = 256 - 2 * 32 - 2
    _op("encrypt", CKM_RSA_PKCS_OAEP, param, pub).oneshot(b"a" * limit)
    _raises(CKR_DATA_LEN_RANGE, _op("encrypt", CKM_RSA_PKCS_OAEP, param, pub).oneshot, b"a" * (limit + 1))
    _raises(CKR_ENCRYPTED_DATA_LEN_RANGE, _op("decrypt", CKM_RSA_PKCS_OAEP, param, priv).oneshot, ct[1:])
    _raises(CKR_ENCRYPTED_DATA_INVALID, _op("decrypt", CKM_RSA_PKCS_OAEP, param, priv).oneshot, b"\x01" * 256)
    bad = RsaPkcsOaepParams(CKM_SHA256, CKG_MGF1_SHA256, 0, b"label-without-source")
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "encrypt", CKM_RSA_PKCS_OAEP, bad, pub)
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "encrypt", CKM_RSA_PKCS_OAEP, RsaPkcsOaepParams(CKM_SHA256, 99, 1, b""), pub)
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "encrypt", CKM_RSA_PKCS_OAEP, None, pub)


def test_pkcs1_encrypt_decrypt_and_lengths(pair):
    priv, pub, key = pair
    ct = _op("encrypt", CKM_RSA_PKCS, None, pub).oneshot(b"a" * 245)
    assert key.decrypt(ct, padding.PKCS1v15()) == b"a" * 245
    theirs = key.public_key().encrypt(b"hello", padding.PKCS1v15())
    assert _op("decrypt", CKM_RSA_PKCS, None, priv).oneshot(theirs) == b"hello"
    _raises(CKR_DATA_LEN_RANGE, _op("encrypt", CKM_RSA_PKCS, None, pub).oneshot, b"a" * 246)
    _raises(CKR_ENCRYPTED_DATA_LEN_RANGE, _op("decrypt", CKM_RSA_PKCS, None, priv).oneshot, theirs + b"\0")


# ----------------------------------------------------------------- spec errors


def test_sign_verify_errors(pair):
    priv, pub, key = pair
    _raises(CKR_DATA_LEN_RANGE, _op("sign", CKM_RSA_PKCS, None, priv).oneshot, b"a" * 246)
    sig = _op("sign", CKM_SHA256_RSA_PKCS, None, priv).oneshot(b"m")
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", CKM_SHA256_RSA_PKCS, None, pub).oneshot, b"m", sig[:-1])
    _raises(CKR_SIGNATURE_INVALID, _op("verify", CKM_SHA256_RSA_PKCS, None, pub).oneshot, b"n", sig)
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", CKM_RSA_PKCS, None, pub).oneshot, b"m", sig + b"\0")


def test_pss_param_rules(pair):
    priv, pub, key = pair
    good = RsaPkcsPssParams(CKM_SHA256, CKG_MGF1_SHA256, 32)
    # the hashing mechanism's hash must be params.hashAlg (spec §2.1.15)
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", CKM_SHA384_RSA_PKCS_PSS, good, priv)
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", CKM_SHA256_RSA_PKCS_PSS, None, priv)
    too_long = RsaPkcsPssParams(CKM_SHA256, CKG_MGF1_SHA256, 256 - 32 - 1)
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", CKM_RSA_PKCS_PSS, too_long, priv)
    # CKM_RSA_PKCS_PSS signs a digest: its length must be hLen
    _raises(CKR_DATA_LEN_RANGE, _op("sign", CKM_RSA_PKCS_PSS, good, priv).oneshot, b"x" * 31)
    sig = _op("sign", CKM_RSA_PKCS_PSS, good, priv).oneshot(b"x" * 32)
    _raises(CKR_SIGNATURE_INVALID, _op("verify", CKM_RSA_PKCS_PSS, good, pub).oneshot, b"y" * 32, sig)


@pytest.mark.parametrize("ckm", [CKM_RSA_PKCS, CKM_RSA_X_509, CKM_RSA_PKCS_PSS])
def test_single_part_mechanisms_refuse_update(pair, ckm):
    priv, pub, key = pair
    param = RsaPkcsPssParams(CKM_SHA256, CKG_MGF1_SHA256, 32) if ckm == CKM_RSA_PKCS_PSS else None
    _raises(CKR_FUNCTION_NOT_SUPPORTED, _op("sign", ckm, param, priv).update, b"x")
    assert registry.lookup(ckm).data.single_part


def test_length_hints(pair):
    priv, pub, key = pair
    ctx = _op("sign", CKM_SHA256_RSA_PKCS, None, priv)
    assert ctx.length_hint("oneshot", 5) >= len(ctx.oneshot(b"hello"))
    ctx = _op("encrypt", CKM_RSA_PKCS, None, pub)
    assert ctx.length_hint("oneshot", 5) >= len(ctx.oneshot(b"hello"))
    ct = _op("encrypt", CKM_RSA_PKCS, None, pub).oneshot(b"hello")
    ctx = _op("decrypt", CKM_RSA_PKCS, None, priv)
    assert ctx.length_hint("oneshot", len(ct)) >= len(ctx.oneshot(ct))


# ----------------------------------------------------------------- key generation


def test_keygen_material_and_entries(pair):
    priv, pub, key = pair
    assert pub.attrs[CKA_MODULUS_BITS] == 2048
    assert pub.attrs[CKA_PUBLIC_EXPONENT] == b"\x01\x00\x01"
    assert keys.key_size(pub) == 2048
    gen = registry.lookup(CKM_RSA_PKCS_KEY_PAIR_GEN)
    assert gen.flags == CKF_GENERATE_KEY_PAIR and (gen.min_key_size, gen.max_key_size) == (1024, 4096)
    # with message recovery too (§2.1.6: the raw mechanisms only)
    assert registry.lookup(CKM_RSA_PKCS).flags == (CKF_SIGN | CKF_VERIFY | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER
                                                   | CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)
    assert not registry.lookup(CKM_RSA_PKCS_PSS).flags & (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER)
    assert registry.lookup(CKM_RSA_PKCS_OAEP).param is RsaPkcsOaepParams


@pytest.mark.parametrize("template, ckr", [
    ({}, CKR_TEMPLATE_INCOMPLETE),
    ({CKA_MODULUS_BITS: 512}, CKR_KEY_SIZE_RANGE),
    ({CKA_MODULUS_BITS: 8192}, CKR_KEY_SIZE_RANGE),
    ({CKA_MODULUS_BITS: 2048, CKA_PUBLIC_EXPONENT: b"\x11"}, CKR_ATTRIBUTE_VALUE_INVALID),
])
def test_keygen_errors(template, ckr):
    gen = registry.lookup(CKM_RSA_PKCS_KEY_PAIR_GEN)
    _raises(ckr, gen.family.generate_key_pair, gen, None, template, {})


# ----------------------------------------------------------------- openssl CLI


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not installed")
@pytest.mark.parametrize("pss", [False, True])
def test_openssl_verifies_our_signature(pair, tmp_path, pss):
    priv, pub, key = pair
    msg = b"interop with the openssl command line\n"
    if pss:
        sig = _op("sign", CKM_SHA256_RSA_PKCS_PSS, RsaPkcsPssParams(CKM_SHA256, CKG_MGF1_SHA256, 32), priv).oneshot(msg)
        opts = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32", "-sigopt", "rsa_mgf1_md:sha256"]
    else:
        sig = _op("sign", CKM_SHA256_RSA_PKCS, None, priv).oneshot(msg)
        opts = []
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "msg").write_bytes(msg)
    (tmp_path / "sig").write_bytes(sig)
    result = subprocess.run(["openssl", "dgst", "-sha256", *opts, "-verify", str(tmp_path / "pub.pem"),
                             "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stderr
