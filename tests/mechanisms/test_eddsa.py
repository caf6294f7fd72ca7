"""CKM_EDDSA: RFC 8032 vectors (cryptography_vectors), multi-part, parameter rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

from cryptoki_shim import der
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
    point = der.tlv(0x04, public) if der_point else public
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
            # Ed448 with a context: signed by the RFC 8032 implementation, never ignored
            param = EddsaParams(False, bytes.fromhex(rec["CONTEXT"]))
            assert _op("sign", priv, param).oneshot(msg) == sig
            _op("verify", pub, param).oneshot(msg, sig)
            _raises(CKR_SIGNATURE_INVALID, _op("verify", pub).oneshot, msg, sig)  # context is bound
            continue
        assert _op("sign", priv).oneshot(msg) == sig
        assert _op("sign", priv, EddsaParams(False, b"")).oneshot(msg) == sig  # Ed448, empty context
        _op("verify", pub).oneshot(msg, sig)
        count += 1
    assert count >= 7


#: RFC 8032 §7 test vectors of the variants (Ed25519ctx 7.2, Ed25519ph 7.3, Ed448ph 7.5),
#: with one pure vector of each curve for the cross-check of the parameter path.
RFC8032_VECTORS = [
    {
        "scheme": "Ed25519",
        "secret": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "public": "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "message": "af82",
        "signature": ("6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290"
                "ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    },
    {
        "scheme": "Ed25519ctx",
        "secret": "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        "public": "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        "message": "f726936d19c800494e3fdaff20b276a8",
        "context": "666f6f",
        "signature": ("55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a8b36950b95130022"
                "907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d"),
    },
    {
        "scheme": "Ed25519ph",
        "secret": "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "public": "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "message": "616263",
        "signature": ("98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a35"
                "5a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"),
    },
    {
        "scheme": "Ed448",
        "secret": ("c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463afbea67c5e8d2877c"
                "5e3bc397a659949ef8021e954e0a12274e"),
        "public": ("43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c0866aea01eb00742802"
                "b8438ea4cb82169c235160627b4c3a9480"),
        "message": "03",
        "context": "666f6f",
        "signature": ("d4f8f6131770dd46f40867d6fd5d5055de43541f8c5e35abbcd001b32a89f7d2151f7647f11d8ca2"
                "ae279fb842d607217fce6e042f6815ea000c85741de5c8da1144a6a1aba7f96de42505d7a7298524"
                "fda538fccbbb754f578c1cad10d54d0d5428407e85dcbc98a49155c13764e66c3c00"),
    },
    {
        "scheme": "Ed448ph",
        "secret": ("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42ef7822e0d5104127"
                "dc05d6dbefde69e3ab2cec7c867c6e2c49"),
        "public": ("259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743c09428a131d6b1b5"
                "7303d90d8132c276d5ed3d5d01c0f53880"),
        "message": "616263",
        "context": "666f6f",
        "signature": ("c32299d46ec8ff02b54540982814dce9a05812f81962b649d528095916a2aa481065b1580423ef92"
                "7ecf0af5888f90da0f6a9a85ad5dc3f280d91224ba9911a3653d00e484e2ce232521481c8658df30"
                "4bb7745a73514cdb9bf3e15784ab71284f8d0704a608c54a6b62d97beb511d132100"),
    },
]
#: scheme -> (key class, phFlag)
SCHEMES = {"Ed25519": (ed25519.Ed25519PrivateKey, False), "Ed25519ctx": (ed25519.Ed25519PrivateKey, False),
           "Ed25519ph": (ed25519.Ed25519PrivateKey, True), "Ed448": (ed448.Ed448PrivateKey, False),
           "Ed448ph": (ed448.Ed448PrivateKey, True)}


@pytest.mark.parametrize("vector", RFC8032_VECTORS, ids=[v["scheme"] for v in RFC8032_VECTORS])
def test_rfc8032_vectors_with_params(vector):
    """Every scheme CK_EDDSA_PARAMS can name signs the RFC's signature and verifies it."""
    cls, phflag = SCHEMES[vector["scheme"]]
    key = cls.from_private_bytes(bytes.fromhex(vector["secret"]))
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    pub = KeyView({**keys.public_material(key), CKA_CLASS: CKO_PUBLIC_KEY})
    param = EddsaParams(phflag, bytes.fromhex(vector.get("context", "")))
    message, want = bytes.fromhex(vector["message"]), bytes.fromhex(vector["signature"])
    assert _op("sign", priv, param).oneshot(message) == want
    _op("verify", pub, param).oneshot(message, want)
    bad = bytes([want[0] ^ 1]) + want[1:]
    _raises(CKR_SIGNATURE_INVALID, _op("verify", pub, param).oneshot, message, bad)


def test_context_is_bound_to_the_signature():
    """An Ed25519ctx signature under one context does not verify under another."""
    key = ed25519.Ed25519PrivateKey.generate()
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
    pub = KeyView({**keys.public_material(key), CKA_CLASS: CKO_PUBLIC_KEY})
    sig = _op("sign", priv, EddsaParams(False, b"foo")).oneshot(b"msg")
    _op("verify", pub, EddsaParams(False, b"foo")).oneshot(b"msg", sig)
    _raises(CKR_SIGNATURE_INVALID, _op("verify", pub, EddsaParams(False, b"bar")).oneshot, b"msg", sig)
    _raises(CKR_SIGNATURE_INVALID, _op("verify", pub, None).oneshot, b"msg", sig)


def test_long_context_refused():
    key = ed448.Ed448PrivateKey.generate()
    priv = KeyView({**keys.private_material(key), CKA_CLASS: CKO_PRIVATE_KEY})
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
