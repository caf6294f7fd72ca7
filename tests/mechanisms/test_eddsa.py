"""CKM_EDDSA: RFC 8032 vectors (cryptography_vectors), multi-part, parameter rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry
from cryptoki_shim.mechanisms.params import EddsaParams
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKF_SIGN,
    CKF_VERIFY,
    CKK_EC_EDWARDS,
    CKM_EDDSA,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
)
from vectors_util import KeyView, nist_records, vector_text

ED25519 = b"\x13\x0cedwards25519"
ED448 = keys.encode_oid("1.3.101.113")


def _views(params: bytes, secret: bytes, public: bytes, der_point: bool = True):
    priv = KeyView({CKA_CLASS: CKO_PRIVATE_KEY, CKA_KEY_TYPE: CKK_EC_EDWARDS, CKA_EC_PARAMS: params, CKA_VALUE: secret})
    point = keys.der_tlv(0x04, public) if der_point else public
    pub = KeyView({CKA_CLASS: CKO_PUBLIC_KEY, CKA_KEY_TYPE: CKK_EC_EDWARDS, CKA_EC_PARAMS: params, CKA_EC_POINT: point})
    return priv, pub


def _op(op, view, param=None):
    entry = registry.lookup(CKM_EDDSA)
    return getattr(entry.family, op + "_init")(entry, param, view)


def _raises(ckr, fn, *args):
    with pytest.raises(CryptokiError) as exc:
        fn(*args)
    assert exc.value.ckr == ckr, exc.value


def test_ed25519_sign_input_vectors():
    lines = vector_text("asymmetric", "Ed25519", "sign.input").splitlines()
    for i, line in enumerate(lines[:128]):
        sk_pk, pk, msg, sig_msg, _ = line.split(":")
        secret, public, msg = bytes.fromhex(sk_pk)[:32], bytes.fromhex(pk), bytes.fromhex(msg)
        sig = bytes.fromhex(sig_msg)[:64]
        priv, pub = _views(ED25519 if i % 2 else keys.encode_oid("1.3.101.112"), secret, public, der_point=bool(i % 2))
        assert _op("sign", priv).oneshot(msg) == sig  # EdDSA is deterministic
        _op("verify", pub).oneshot(msg, sig)
        multi = _op("sign", priv)
        for j in range(0, len(msg), 17):
            multi.update(msg[j : j + 17])
        assert multi.final() == sig


def test_ed448_rfc8032_vectors():
    count = 0
    for rec in nist_records("asymmetric", "Ed448", "rfc8032.txt"):
        if "SIGNATURE" not in rec:
            continue
        priv, pub = _views(ED448, bytes.fromhex(rec["SECRET"]), bytes.fromhex(rec["PUBLIC"]))
        msg, sig = bytes.fromhex(rec.get("MESSAGE", "")), bytes.fromhex(rec["SIGNATURE"])
        if rec.get("CONTEXT"):
            # Ed448 with a context: pyca cannot, so the parameter is refused, not ignored
            _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", priv, EddsaParams(False, bytes.fromhex(rec["CONTEXT"])))
            continue
        assert _op("sign", priv).oneshot(msg) == sig
        assert _op("sign", priv, EddsaParams(False, b"")).oneshot(msg) == sig  # Ed448, empty context
        _op("verify", pub).oneshot(msg, sig)
        count += 1
    assert count >= 7


@pytest.mark.parametrize("param", [EddsaParams(True, b""), EddsaParams(False, b"ctx")])
def test_ed25519_variants_refused(param):
    """Ed25519ctx with a context and Ed25519ph are not plain Ed25519 (dom2 prefix): refused,
    never downgraded. (phFlag FALSE with an empty context is pure Ed25519: see eddsa.py.)"""
    key = ed25519.Ed25519PrivateKey.generate()
    material = keys.private_material(key)
    priv = KeyView({**material, CKA_CLASS: CKO_PRIVATE_KEY})
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", priv, param)


def test_ed25519_params_without_context_or_prehash_is_pure_ed25519():
    """CK_EDDSA_PARAMS(phFlag FALSE, no context) on Ed25519 signs pure Ed25519 (PyKCS11 sends it)."""
    key = ed25519.Ed25519PrivateKey.generate()
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    sig = _op("sign", priv, EddsaParams(False, b"")).oneshot(b"message")
    key.public_key().verify(sig, b"message")


def test_ed448ph_refused_and_long_context():
    key = ed448.Ed448PrivateKey.generate()
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", priv, EddsaParams(True, b""))
    _raises(CKR_MECHANISM_PARAM_INVALID, _op, "sign", priv, EddsaParams(False, b"x" * 256))


@pytest.mark.parametrize("cls, size", [(ed25519.Ed25519PrivateKey, 64), (ed448.Ed448PrivateKey, 114)])
def test_cross_check_and_errors(cls, size):
    key = cls.generate()
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    pub = KeyView({**keys.public_material(key), CKA_CLASS: CKO_PUBLIC_KEY})
    msg = b"cross-check" * 10
    sig = _op("sign", priv).oneshot(msg)
    key.public_key().verify(sig, msg)
    _op("verify", pub).oneshot(msg, key.sign(msg))
    ctx = _op("verify", pub)
    ctx.update(msg[:5])
    ctx.update(msg[5:])
    ctx.final(sig)
    _raises(CKR_SIGNATURE_LEN_RANGE, _op("verify", pub).oneshot, msg, sig[:-1])
    _raises(CKR_SIGNATURE_INVALID, _op("verify", pub).oneshot, msg + b"x", sig)
    assert _op("sign", priv).length_hint("final", 0) == size


def test_wrong_key_type_and_entry():
    from cryptography.hazmat.primitives.asymmetric import x25519

    key = x25519.X25519PrivateKey.generate()
    view = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    _raises(CKR_KEY_TYPE_INCONSISTENT, _op, "sign", view)
    entry = registry.lookup(CKM_EDDSA)
    assert entry.flags & (CKF_SIGN | CKF_VERIFY) == CKF_SIGN | CKF_VERIFY
    assert entry.param is EddsaParams and entry.param_optional
    assert (entry.min_key_size, entry.max_key_size) == (255, 448)
