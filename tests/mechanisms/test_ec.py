"""ECDSA and EC key pair generation: CAVP SigVer, pyca/openssl cross-checks, spec errors."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cryptoki_shim import der
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKF_EC_CURVENAME,
    CKF_EC_OID,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKM_EC_EDWARDS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA1,
    CKM_ECDSA_SHA3_256,
    CKM_ECDSA_SHA3_512,
    CKM_ECDSA_SHA224,
    CKM_ECDSA_SHA256,
    CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA512,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
)
from vectors_util import KeyView, nist_records

CURVE_OID = {"P-256": "1.2.840.10045.3.1.7", "P-384": "1.3.132.0.34", "P-521": "1.3.132.0.35", "K-256": "1.3.132.0.10"}
CURVE_SIZE = {"P-256": 32, "P-384": 48, "P-521": 66, "K-256": 32}
BY_HASH = {"SHA-1": CKM_ECDSA_SHA1, "SHA-224": CKM_ECDSA_SHA224, "SHA-256": CKM_ECDSA_SHA256,
           "SHA-384": CKM_ECDSA_SHA384, "SHA-512": CKM_ECDSA_SHA512}
PYCA = {CKM_ECDSA_SHA1: hashes.SHA1, CKM_ECDSA_SHA224: hashes.SHA224, CKM_ECDSA_SHA256: hashes.SHA256,
        CKM_ECDSA_SHA384: hashes.SHA384, CKM_ECDSA_SHA512: hashes.SHA512, CKM_ECDSA_SHA3_256: hashes.SHA3_256,
        CKM_ECDSA_SHA3_512: hashes.SHA3_512}


def _op(op, ckm, view, param=None):
    entry = registry.lookup(ckm)
    return getattr(entry.family, op + "_init")(entry, param, view)


def _raises(ckr, fn, *args):
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr == ckr, exc.value


def _generate(params: bytes, ckm=CKM_EC_KEY_PAIR_GEN):
    entry = registry.lookup(ckm)
    pub, priv = entry.family.generate_key_pair(entry, None, {CKA_EC_PARAMS: params}, {})
    return KeyView({**priv, CKA_CLASS: CKO_PRIVATE_KEY}), KeyView({**pub, CKA_CLASS: CKO_PUBLIC_KEY})


def _point_view(curve: str, qx: str, qy: str) -> KeyView:
    n = CURVE_SIZE[curve]
    point = b"\x04" + int(qx, 16).to_bytes(n, "big") + int(qy, 16).to_bytes(n, "big")
    return KeyView({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC,
                    CKA_EC_PARAMS: keys.encode_oid(CURVE_OID[curve]), CKA_EC_POINT: der.tlv(0x04, point)})


def _rs(curve, r, s):
    n = CURVE_SIZE[curve]
    return int(r, 16).to_bytes(n, "big") + int(s, 16).to_bytes(n, "big")


@pytest.fixture(scope="module", params=["P-256", "P-384", "P-521", "K-256"])
def pair(request):
    priv, pub = _generate(keys.encode_oid(CURVE_OID[request.param]))
    return request.param, priv, pub, keys.load_private(priv)


def test_cavp_sigver():
    seen = {"P": 0, "F": 0}
    for rec in nist_records("asymmetric", "ECDSA", "FIPS_186-3", "SigVer.rsp"):
        curve, _, hash_name = rec["section"].partition(",")
        if curve not in CURVE_OID or "Result" not in rec:
            continue
        msg = bytes.fromhex(rec["Msg"])
        view = _point_view(curve, rec["Qx"], rec["Qy"])
        sig = _rs(curve, rec["R"], rec["S"])
        ckm = BY_HASH[hash_name]
        raw = hashlib.new(hash_name.replace("-", "").lower(), msg).digest()
        for mech, data in ((ckm, msg), (CKM_ECDSA, raw)):
            ctx = _op("verify", mech, view)
            if rec["Result"].startswith("P"):
                ctx.oneshot(data, sig)
            else:
                _raises(CKR_SIGNATURE_INVALID, ctx.oneshot, data, sig)
        seen[rec["Result"][0]] += 1
    assert seen["P"] > 30 and seen["F"] > 100


def test_secp256k1_known_answers():
    count = 0
    for rec in nist_records("asymmetric", "ECDSA", "SECP256K1", "SigGen.txt"):
        if "R" not in rec:
            continue
        ckm = BY_HASH[rec["section"].partition(",")[2]]
        view = _point_view("K-256", rec["Qx"], rec["Qy"])
        _op("verify", ckm, view).oneshot(bytes.fromhex(rec["Msg"]), _rs("K-256", rec["R"], rec["S"]))
        count += 1
    assert count >= 5


@pytest.mark.parametrize("ckm", sorted(PYCA))
def test_sign_with_us_verify_with_pyca_and_back(pair, ckm):
    curve, priv, pub, key = pair
    msg = b"message " * 20
    sig = _op("sign", ckm, priv).oneshot(msg)
    n = CURVE_SIZE[curve]
    assert len(sig) == 2 * n  # r||s, each nLen bytes: not DER
    der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
    key.public_key().verify(der, msg, ec.ECDSA(PYCA[ckm]()))
    multi = _op("sign", ckm, priv)
    multi.update(msg[:33])
    multi.update(msg[33:])
    sig2 = multi.final()  # ECDSA is randomised: check by verifying
    _op("verify", ckm, pub).oneshot(msg, sig2)
    r, s = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(PYCA[ckm]())))
    theirs = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    verify = _op("verify", ckm, pub)
    verify.update(msg)
    verify.final(theirs)
    _raises(CKR_SIGNATURE_INVALID, _op("verify", ckm, pub).oneshot, msg + b"!", theirs)


@pytest.mark.parametrize("hash_cls", [hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512])
def test_raw_ecdsa_truncates_like_the_hashing_mechanism(pair, hash_cls):
    """CKM_ECDSA gets the whole digest; the token truncates to the order's bits (§2.3.1),
    so its signature must verify as ECDSA-with-<hash> over the message."""
    curve, priv, pub, key = pair
    msg = b"truncation"
    h = hashes.Hash(hash_cls())
    h.update(msg)
    digest = h.finalize()
    sig = _op("sign", CKM_ECDSA, priv).oneshot(digest)
    n = CURVE_SIZE[curve]
    der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
    key.public_key().verify(der, msg, ec.ECDSA(hash_cls()))
    _op("verify", CKM_ECDSA, pub).oneshot(digest, sig)


def test_short_signature_encoding_verifies():
    """Verify accepts r and s padded to a common length shorter than nLen (spec §2.3.1).
    On P-521 the top byte of r and s is 0 half of the time, so a short form is found fast."""
    priv, pub = _generate(keys.encode_oid(CURVE_OID["P-521"]))
    n = CURVE_SIZE["P-521"]
    for _ in range(400):
        sig = _op("sign", CKM_ECDSA_SHA256, priv).oneshot(b"x")
        if sig[0] == 0 and sig[n] == 0:
            _op("verify", CKM_ECDSA_SHA256, pub).oneshot(b"x", sig[1:n] + sig[n + 1 :])
            return
    pytest.skip("no signature with two leading zero bytes in 400 tries")


def test_signature_length_errors(pair):
    curve, priv, pub, key = pair
    sig = _op("sign", CKM_ECDSA_SHA256, priv).oneshot(b"x")
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", CKM_ECDSA_SHA256, pub).oneshot, b"x", sig[:-1])
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", CKM_ECDSA_SHA256, pub).oneshot, b"x", sig + b"\0\0")
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", CKM_ECDSA_SHA256, pub).oneshot, b"x", b"")
    _raises(CKR_FUNCTION_NOT_SUPPORTED, _op("sign", CKM_ECDSA, priv).update, b"x")
    ctx = _op("sign", CKM_ECDSA, priv)
    assert ctx.length_hint("oneshot", 32) >= len(ctx.oneshot(b"\1" * 32))


@pytest.mark.parametrize("params", [
    b"\x13\x0aprime256v1", b"\x13\x09secp256r1", b"\x13\x05P-384", b"\x13\x09secp521r1", b"\x13\x09secp256k1",
])
def test_keygen_by_curve_name_keeps_the_callers_params(params):
    priv, pub = _generate(params)
    assert pub.attrs[CKA_EC_PARAMS] == params == priv.attrs[CKA_EC_PARAMS]
    raw = keys.load_public(pub).public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pub.attrs[CKA_EC_POINT] == der.tlv(0x04, raw)  # DER OCTET STRING, uncompressed point
    sig = _op("sign", CKM_ECDSA_SHA256, priv).oneshot(b"m")
    _op("verify", CKM_ECDSA_SHA256, pub).oneshot(b"m", sig)


@pytest.mark.parametrize("ckm, params, ckr", [
    (CKM_EC_KEY_PAIR_GEN, None, CKR_TEMPLATE_INCOMPLETE),
    (CKM_EC_KEY_PAIR_GEN, keys.encode_oid("1.3.36.3.3.2.8.1.1.7"), CKR_CURVE_NOT_SUPPORTED),  # brainpoolP256r1: not served
    (CKM_EC_KEY_PAIR_GEN, keys.encode_oid("1.3.101.112"), CKR_CURVE_NOT_SUPPORTED),  # Ed25519 via EC gen
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, keys.encode_oid("1.2.840.10045.3.1.7"), CKR_CURVE_NOT_SUPPORTED),
    (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, b"\x13\x0cedwards25519", CKR_CURVE_NOT_SUPPORTED),
    (CKM_EC_KEY_PAIR_GEN, b"\x30\x03\x02\x01\x01", CKR_DOMAIN_PARAMS_INVALID),  # explicit ecParameters
    (CKM_EC_KEY_PAIR_GEN, b"\x05\x00", CKR_DOMAIN_PARAMS_INVALID),  # implicitlyCA
    (CKM_EC_KEY_PAIR_GEN, b"\x06\x08\x2a", CKR_DOMAIN_PARAMS_INVALID),  # truncated DER
])
def test_keygen_errors(ckm, params, ckr):
    entry = registry.lookup(ckm)
    template = {} if params is None else {CKA_EC_PARAMS: params}
    _raises(ckr, entry.family.generate_key_pair, entry, None, template, {})


@pytest.mark.parametrize("ckm, params, key_type, size", [
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, b"\x13\x0cedwards25519", CKK_EC_EDWARDS, 32),
    (CKM_EC_EDWARDS_KEY_PAIR_GEN, keys.encode_oid("1.3.101.113"), CKK_EC_EDWARDS, 57),
    (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, keys.encode_oid("1.3.101.110"), CKK_EC_MONTGOMERY, 32),
    (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, b"\x13\x08curve448", CKK_EC_MONTGOMERY, 56),
])
def test_edwards_and_montgomery_generation(ckm, params, key_type, size):
    priv, pub = _generate(params, ckm)
    assert priv.attrs[CKA_KEY_TYPE] == pub.attrs[CKA_KEY_TYPE] == key_type
    assert len(priv.attrs[CKA_VALUE]) == size
    assert pub.attrs[CKA_EC_POINT] == der.tlv(0x04, pub.attrs[CKA_EC_POINT][2:])
    assert keys.load_private(priv).public_key() == keys.load_public(pub)


def test_entries():
    for ckm in (CKM_EC_KEY_PAIR_GEN, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_MONTGOMERY_KEY_PAIR_GEN):
        entry = registry.lookup(ckm)
        assert entry.flags & CKF_GENERATE_KEY_PAIR and entry.flags & CKF_EC_OID and entry.flags & CKF_EC_CURVENAME
    entry = registry.lookup(CKM_ECDSA_SHA256)
    assert entry.flags & (CKF_SIGN | CKF_VERIFY) == CKF_SIGN | CKF_VERIFY
    assert (entry.min_key_size, entry.max_key_size) == (192, 521) and entry.key_types == {CKK_EC}
    assert registry.lookup(CKM_ECDSA).data.single_part


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not installed")
def test_openssl_verifies_our_signature(pair, tmp_path):
    curve, priv, pub, key = pair
    msg = b"openssl interop\n"
    sig = _op("sign", CKM_ECDSA_SHA256, priv).oneshot(msg)
    n = CURVE_SIZE[curve]
    der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
    (tmp_path / "pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "msg").write_bytes(msg)
    (tmp_path / "sig").write_bytes(der)
    result = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
                             "-signature", str(tmp_path / "sig"), str(tmp_path / "msg")], capture_output=True, text=True)
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stderr
