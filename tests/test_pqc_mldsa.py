"""ML-DSA (FIPS 204, PKCS#11 3.2 §6.67) through the built library; every signature checked
by pyca/cryptography directly, and pyca's signatures verified by the library. docs/pqc.md."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from cryptoki_shim import spec as S
from p11 import P11, Template, ffi, raises_ckr
from pqc_util import PREHASH, hash_ml_dsa_mu, hash_sign_context, prehash, sign_context
from vectors_abi import mech_info, multipart, unwrap, verify_multipart, wrap

MSG = b"post-quantum signatures through a PKCS#11 module" * 3
SETS = {S.CKP_ML_DSA_44: (mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey, 1312, 2420),
        S.CKP_ML_DSA_65: (mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey, 1952, 3309),
        S.CKP_ML_DSA_87: (mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey, 2592, 4627)}


def pair(p: P11, s: int, ckp: int = S.CKP_ML_DSA_65, **priv: Any) -> tuple[int, int, Any]:
    """A generated pair and its public key as pyca sees it (from CKA_VALUE)."""
    private = {S.CKA_TOKEN: False, S.CKA_SIGN: True}
    private.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in priv.items()})
    hpub, hpriv = p.generate_key_pair(s, S.CKM_ML_DSA_KEY_PAIR_GEN,
                                      {S.CKA_TOKEN: False, S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: ckp}, private)
    return hpub, hpriv, SETS[ckp][1].from_public_bytes(p.get(s, hpub, S.CKA_VALUE))


def import_private(p: P11, s: int, ckp: int, seed: bytes, **extra: Any) -> int:
    t = {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False, S.CKA_SIGN: True,
         S.CKA_PARAMETER_SET: ckp, S.CKA_SEED: seed}
    t.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in extra.items()})
    return p.create(s, t)


def import_public(p: P11, s: int, ckp: int, value: bytes) -> int:
    return p.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                        S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: ckp, S.CKA_VALUE: value})


@pytest.mark.parametrize("ckp", list(SETS))
def test_generated_pairs_sign_for_pyca_and_verify_pyca(token: P11, user_session: int, ckp: int) -> None:
    s = user_session
    hpub, hpriv, pub = pair(token, s, ckp, extractable=True)
    _, _, pk_len, sig_len = SETS[ckp]
    assert token.get(s, hpub, S.CKA_PARAMETER_SET) == ckp == token.get(s, hpriv, S.CKA_PARAMETER_SET)
    assert token.get(s, hpub, S.CKA_KEY_TYPE) == S.CKK_ML_DSA and len(token.get(s, hpub, S.CKA_VALUE)) == pk_len
    assert token.get(s, hpub, S.CKA_PUBLIC_KEY_INFO) == pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = token.sign(s, S.CKM_ML_DSA, hpriv, MSG)
    assert len(sig) == sig_len
    pub.verify(sig, MSG)
    token.verify(s, S.CKM_ML_DSA, hpub, MSG, sig)
    # the seed the token keeps is the key pyca signs with, and its expanded form is 3.2's CKA_VALUE
    seed = token.get(s, hpriv, S.CKA_SEED)
    ours = SETS[ckp][0].from_seed_bytes(seed)
    assert ours.public_key() == pub
    token.verify(s, S.CKM_ML_DSA, hpub, MSG, ours.sign(MSG))
    assert token.get(s, hpriv, S.CKA_LOCAL) is True
    assert token.get(s, hpriv, S.CKA_KEY_GEN_MECHANISM) == S.CKM_ML_DSA_KEY_PAIR_GEN


def test_private_key_material_is_sensitive_by_the_usual_rules(token: P11, user_session: int) -> None:
    s = user_session
    _, hpriv, _ = pair(token, s)  # CKA_EXTRACTABLE defaults to FALSE
    for cka in (S.CKA_SEED, S.CKA_VALUE):
        attr = ffi.new("CK_ATTRIBUTE *")
        attr.type = cka
        assert token.call("C_GetAttributeValue", s, hpriv, attr, 1) == S.CKR_ATTRIBUTE_SENSITIVE
        assert attr.ulValueLen == S.CK_UNAVAILABLE_INFORMATION
    _, hsens, _ = pair(token, s, sensitive=True, extractable=True)
    with raises_ckr(S.CKR_ATTRIBUTE_SENSITIVE):
        token.get(s, hsens, S.CKA_SEED)


def test_context_string_and_hedge_variants(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, pub = pair(token, s)
    ctx = b"application context"
    for hedge in (S.CKH_HEDGE_PREFERRED, S.CKH_HEDGE_REQUIRED):
        sig = token.sign(s, S.CKM_ML_DSA, hpriv, MSG, sign_context(ctx, hedge))
        pub.verify(sig, MSG, ctx)
        with pytest.raises(InvalidSignature):
            pub.verify(sig, MSG)  # the context is part of what is signed
        # verification ignores the hedge variant, deterministic included (3.2 §6.67.6)
        token.verify(s, S.CKM_ML_DSA, hpub, MSG, sig, sign_context(ctx, S.CKH_DETERMINISTIC_REQUIRED))
        with raises_ckr(S.CKR_SIGNATURE_INVALID):
            token.verify(s, S.CKM_ML_DSA, hpub, MSG, sig, sign_context(b"other"))
    # pyca's signature with a context verifies through the token, under the same context only
    key = mldsa.MLDSA65PrivateKey.generate()
    hpub2 = import_public(token, s, S.CKP_ML_DSA_65, key.public_key().public_bytes_raw())
    token.verify(s, S.CKM_ML_DSA, hpub2, MSG, key.sign(MSG, ctx), sign_context(ctx))
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_ML_DSA, hpub2, MSG, key.sign(MSG, ctx))
    # hedged: two signatures of one message differ
    assert token.sign(s, S.CKM_ML_DSA, hpriv, MSG) != token.sign(s, S.CKM_ML_DSA, hpriv, MSG)
    # an empty parameter struct is the no-parameter case; 255 bytes is the longest context
    pub.verify(token.sign(s, S.CKM_ML_DSA, hpriv, MSG, sign_context()), MSG)
    token.verify(s, S.CKM_ML_DSA, hpub, MSG, token.sign(s, S.CKM_ML_DSA, hpriv, MSG, sign_context(bytes(255))),
                 sign_context(bytes(255)))


def test_parameter_errors(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, _ = pair(token, s)
    bad = [sign_context(bytes(256)), sign_context(b"x", S.CKH_DETERMINISTIC_REQUIRED), sign_context(b"", 7)]
    for param in bad:
        m, _keep = token.mechanism(S.CKM_ML_DSA, param)
        assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_ML_DSA, b"\x00" * 5)  # not a CK_SIGN_ADDITIONAL_CONTEXT
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_ML_DSA, sign_context(bytes(256)))
    assert token.call("C_VerifyInit", s, m, hpub) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_HASH_ML_DSA)  # its parameter is required
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_HASH_ML_DSA, hash_sign_context(S.CKM_SHA_1))
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID


def test_signature_checks_and_buffer_protocol(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, _ = pair(token, s)
    sig = token.sign(s, S.CKM_ML_DSA, hpriv, MSG)
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_ML_DSA, hpub, MSG + b"!", sig)
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_ML_DSA, hpub, MSG, sig[:-1] + bytes([sig[-1] ^ 1]))
    with raises_ckr(S.CKR_SIGNATURE_LEN_RANGE):
        token.verify(s, S.CKM_ML_DSA, hpub, MSG, sig[:-1])
    m, _keep = token.mechanism(S.CKM_ML_DSA)
    token.check("C_SignInit", s, m, hpriv)
    n = ffi.new("CK_ULONG *", 100)
    small = ffi.new("unsigned char[]", 100)
    assert token.call("C_Sign", s, MSG, len(MSG), small, n) == S.CKR_BUFFER_TOO_SMALL
    assert n[0] == 3309
    out = ffi.new("unsigned char[]", n[0])
    token.check("C_Sign", s, MSG, len(MSG), out, n)  # the operation stayed active for the retry
    token.verify(s, S.CKM_ML_DSA, hpub, MSG, ffi.buffer(out, n[0])[:])


def test_multipart_sign_and_verify(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, pub = pair(token, s)
    sig = multipart(token, s, "Sign", S.CKM_ML_DSA, hpriv, MSG, sign_context(b"ctx"))
    pub.verify(sig, MSG, b"ctx")
    verify_multipart(token, s, S.CKM_ML_DSA, hpub, MSG, sig, sign_context(b"ctx"))


def test_key_usage_and_type_enforced(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, _ = pair(token, s, sign=False)
    m, _keep = token.mechanism(S.CKM_ML_DSA)
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    kem_pub, kem_priv = token.generate_key_pair(s, S.CKM_ML_KEM_KEY_PAIR_GEN,
                                                {S.CKA_TOKEN: False, S.CKA_PARAMETER_SET: S.CKP_ML_KEM_768,
                                                 S.CKA_VERIFY: True}, {S.CKA_TOKEN: False, S.CKA_SIGN: True})
    assert token.call("C_SignInit", s, m, kem_priv) == S.CKR_KEY_TYPE_INCONSISTENT
    assert token.call("C_VerifyInit", s, m, kem_pub) == S.CKR_KEY_TYPE_INCONSISTENT
    m2, _keep2 = token.mechanism(S.CKM_ML_DSA_KEY_PAIR_GEN)
    assert token.call("C_SignInit", s, m2, hpriv) == S.CKR_MECHANISM_INVALID


@pytest.mark.parametrize("mech", sorted(PREHASH))
def test_hash_ml_dsa_with_hashing(token: P11, user_session: int, mech: int) -> None:
    """CKM_HASH_ML_DSA_<hash>: our signature verifies against μ computed from FIPS 204 with
    hashlib (so the M' encoding, OID and pre-hash are checked independently of our code)."""
    s = user_session
    hpub, hpriv, pub = pair(token, s)
    raw = pub.public_bytes_raw()
    for ctx in (b"", b"hash ctx"):
        param = sign_context(ctx) if ctx else None
        sig = token.sign(s, mech, hpriv, MSG, param)
        pub.verify_mu(sig, hash_ml_dsa_mu(raw, mech, prehash(mech, MSG), ctx))
        token.verify(s, mech, hpub, MSG, sig, param)
        verify_multipart(token, s, mech, hpub, MSG, sig, param)
        sig2 = multipart(token, s, "Sign", mech, hpriv, MSG, param)
        pub.verify_mu(sig2, hash_ml_dsa_mu(raw, mech, prehash(mech, MSG), ctx))
        with pytest.raises(InvalidSignature):
            pub.verify(sig, MSG, ctx or None)  # HashML-DSA is not pure ML-DSA
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, mech, hpub, MSG + b"x", sig)


@pytest.mark.parametrize("digest_mech, mech", [(S.CKM_SHA256, S.CKM_HASH_ML_DSA_SHA256),
                                               (S.CKM_SHA3_384, S.CKM_HASH_ML_DSA_SHA3_384),
                                               (S.CKM_SHA512, S.CKM_HASH_ML_DSA_SHA512)])
def test_hash_ml_dsa_on_a_digest(token: P11, user_session: int, digest_mech: int, mech: int) -> None:
    """CKM_HASH_ML_DSA: the input is PH(M), the hash named by CK_HASH_SIGN_ADDITIONAL_CONTEXT;
    its signatures are those of CKM_HASH_ML_DSA_<hash> over M."""
    s = user_session
    hpub, hpriv, pub = pair(token, s)
    digest = prehash(mech, MSG)
    sig = token.sign(s, S.CKM_HASH_ML_DSA, hpriv, digest, hash_sign_context(digest_mech, b"c"))
    pub.verify_mu(sig, hash_ml_dsa_mu(pub.public_bytes_raw(), mech, digest, b"c"))
    token.verify(s, mech, hpub, MSG, sig, sign_context(b"c"))
    token.verify(s, S.CKM_HASH_ML_DSA, hpub, digest, sig, hash_sign_context(digest_mech, b"c"))
    m, _keep = token.mechanism(S.CKM_HASH_ML_DSA, hash_sign_context(digest_mech))
    token.check("C_SignInit", s, m, hpriv)
    n = ffi.new("CK_ULONG *", 5000)
    out = ffi.new("unsigned char[]", 5000)
    assert token.call("C_Sign", s, digest[:-1], len(digest) - 1, out, n) == S.CKR_DATA_LEN_RANGE
    token.check("C_SignInit", s, m, hpriv)
    assert token.call("C_SignUpdate", s, digest, len(digest)) == S.CKR_FUNCTION_NOT_SUPPORTED  # single-part


def test_import_by_seed_and_expanded_value(token: P11, user_session: int) -> None:
    """3.2 §6.67.5: CKA_SEED and/or CKA_VALUE; this token takes the seed (with CKA_VALUE, when
    given, checked against it) and refuses CKA_VALUE alone (docs/pqc.md)."""
    s = user_session
    key = mldsa.MLDSA44PrivateKey.generate()
    seed = key.private_bytes_raw()
    h = import_private(token, s, S.CKP_ML_DSA_44, seed, extractable=True)
    expanded = token.get(s, h, S.CKA_VALUE)
    assert len(expanded) == 2560 and expanded[:32] == key.public_key().public_bytes_raw()[:32]  # ρ
    assert expanded[64:128] == hashlib.shake_256(key.public_key().public_bytes_raw()).digest(64)  # tr
    key.public_key().verify(token.sign(s, S.CKM_ML_DSA, h, MSG), MSG)
    h2 = import_private(token, s, S.CKP_ML_DSA_44, seed, value=expanded)  # both, consistent
    key.public_key().verify(token.sign(s, S.CKM_ML_DSA, h2, MSG), MSG)
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # inconsistent
        import_private(token, s, S.CKP_ML_DSA_44, seed, value=expanded[:-1] + bytes([expanded[-1] ^ 1]))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        import_private(token, s, S.CKP_ML_DSA_44, seed, value=expanded[:-1])
    with raises_ckr(S.CKR_TEMPLATE_INCOMPLETE):  # CKA_VALUE alone
        token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                         S.CKA_PARAMETER_SET: S.CKP_ML_DSA_44, S.CKA_VALUE: expanded})
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        import_private(token, s, S.CKP_ML_DSA_44, seed[:31])
    with raises_ckr(S.CKR_TEMPLATE_INCOMPLETE):
        token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                         S.CKA_SEED: seed})
    hpub = import_public(token, s, S.CKP_ML_DSA_44, key.public_key().public_bytes_raw())
    token.verify(s, S.CKM_ML_DSA, hpub, MSG, key.sign(MSG))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # a 44 key under the 65 parameter set
        import_public(token, s, S.CKP_ML_DSA_65, key.public_key().public_bytes_raw())
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        import_public(token, s, 9, key.public_key().public_bytes_raw())


def test_generation_template_rules(token: P11, user_session: int) -> None:
    s = user_session
    m, _keep = token.mechanism(S.CKM_ML_DSA_KEY_PAIR_GEN)
    hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
    for pub_t, priv_t, ckr in (
        ({S.CKA_TOKEN: False}, {S.CKA_TOKEN: False}, S.CKR_TEMPLATE_INCOMPLETE),
        ({S.CKA_PARAMETER_SET: 7}, {S.CKA_TOKEN: False}, S.CKR_ATTRIBUTE_VALUE_INVALID),
        ({S.CKA_PARAMETER_SET: 2}, {S.CKA_PARAMETER_SET: 2}, S.CKR_ATTRIBUTE_READ_ONLY),  # footnote 4
        ({S.CKA_PARAMETER_SET: 2, S.CKA_VALUE: b"x"}, {}, S.CKR_ATTRIBUTE_READ_ONLY),
    ):
        tp, tq = Template(pub_t), Template(priv_t)
        rv = token.call("C_GenerateKeyPair", s, m, tp.array, tp.count, tq.array, tq.count, hp, hq)
        assert rv in (ckr, S.CKR_TEMPLATE_INCONSISTENT) if ckr == S.CKR_ATTRIBUTE_READ_ONLY else rv == ckr, \
            S.ckr_name(rv)


def test_wrap_and_unwrap_a_private_key(token: P11, user_session: int) -> None:
    """The existing PKCS#8 wrapping carries ML-DSA keys (seed form, RFC 9881 §6)."""
    s = user_session
    hpub, hpriv, pub = pair(token, s, extractable=True)
    kek = token.create(s, {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False,
                           S.CKA_WRAP: True, S.CKA_UNWRAP: True, S.CKA_VALUE: bytes(range(32))})
    blob = wrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, hpriv)
    back = unwrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, blob,
                  {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_DSA, S.CKA_TOKEN: False,
                   S.CKA_SIGN: True, S.CKA_EXTRACTABLE: True})
    assert token.get(s, back, S.CKA_PARAMETER_SET) == S.CKP_ML_DSA_65
    assert token.get(s, back, S.CKA_SEED) == token.get(s, hpriv, S.CKA_SEED)
    assert token.get(s, back, S.CKA_VALUE) == token.get(s, hpriv, S.CKA_VALUE)
    pub.verify(token.sign(s, S.CKM_ML_DSA, back, MSG), MSG)
    _, hlocked, _ = pair(token, s)  # not extractable
    m, _keep = token.mechanism(S.CKM_AES_KEY_WRAP_PAD)
    n = ffi.new("CK_ULONG *")
    assert token.call("C_WrapKey", s, m, kek, hlocked, ffi.NULL, n) == S.CKR_KEY_UNEXTRACTABLE


def test_mechanism_info(token: P11) -> None:
    info = mech_info(token, S.CKM_ML_DSA_KEY_PAIR_GEN)
    assert (info.ulMinKeySize, info.ulMaxKeySize, info.flags) == (1312, 2592, S.CKF_GENERATE_KEY_PAIR)
    for mech in (S.CKM_ML_DSA, S.CKM_HASH_ML_DSA, *PREHASH):
        info = mech_info(token, mech)
        assert (info.ulMinKeySize, info.ulMaxKeySize) == (1312, 2592)
        assert info.flags & (S.CKF_SIGN | S.CKF_VERIFY) == S.CKF_SIGN | S.CKF_VERIFY
        assert not info.flags & (S.CKF_ENCRYPT | S.CKF_DECRYPT | S.CKF_DERIVE | S.CKF_WRAP | S.CKF_GENERATE_KEY_PAIR)


def test_operation_state_of_multipart_signing(token: P11, user_session: int) -> None:
    """C_GetOperationState saves a CKM_ML_DSA signing (its buffered message) and a SHA-2
    HashML-DSA one (its running hash); the SHAKE pre-hash is pyca's: CKR_STATE_UNSAVEABLE."""
    s = user_session
    hpub, hpriv, pub = pair(token, s)
    for mech, saveable in ((S.CKM_ML_DSA, True), (S.CKM_HASH_ML_DSA_SHA256, True),
                           (S.CKM_HASH_ML_DSA_SHAKE256, False)):
        m, _keep = token.mechanism(mech)
        token.check("C_SignInit", s, m, hpriv)
        token.check("C_SignUpdate", s, MSG[:10], 10)
        n = ffi.new("CK_ULONG *")
        rv = token.call("C_GetOperationState", s, ffi.NULL, n)
        if not saveable:
            assert rv == S.CKR_STATE_UNSAVEABLE
            token.check("C_SignUpdate", s, MSG[10:], len(MSG) - 10)  # the operation goes on
            token.verify(s, mech, hpub, MSG, token._two_pass("C_SignFinal", s))
            continue
        assert rv == 0
        state = ffi.new("unsigned char[]", n[0])
        token.check("C_GetOperationState", s, state, n)
        saved = ffi.buffer(state, n[0])[:]
        token.check("C_SignUpdate", s, b"something else", 14)
        token.check("C_SetOperationState", s, saved, len(saved), 0, hpriv)
        token.check("C_SignUpdate", s, MSG[10:], len(MSG) - 10)
        sig = token._two_pass("C_SignFinal", s)
        token.verify(s, mech, hpub, MSG, sig)


def test_verify_signature_functions(token: P11, user_session: int) -> None:
    """3.2 §5.15: C_VerifySignatureInit/Update/Final and C_VerifySignature, the interface 3.2
    names for multi-part ML-DSA verification (the signature comes first)."""
    s = user_session
    hpub, hpriv, _ = pair(token, s)
    for mech in (S.CKM_ML_DSA, S.CKM_HASH_ML_DSA_SHA256):
        sig = token.sign(s, mech, hpriv, MSG)
        m, _keep = token.mechanism(mech)
        token.check("C_VerifySignatureInit", s, m, hpub, sig, len(sig))
        for i in range(0, len(MSG), 17):
            token.check("C_VerifySignatureUpdate", s, MSG[i:i + 17], len(MSG[i:i + 17]))
        token.check("C_VerifySignatureFinal", s)
        token.check("C_VerifySignatureInit", s, m, hpub, sig, len(sig))
        token.check("C_VerifySignature", s, MSG, len(MSG))
        token.check("C_VerifySignatureInit", s, m, hpub, sig, len(sig))
        assert token.call("C_VerifySignature", s, MSG[:-1], len(MSG) - 1) == S.CKR_SIGNATURE_INVALID
        token.check("C_VerifySignatureInit", s, m, hpub, sig[:-1], len(sig) - 1)
        assert token.call("C_VerifySignature", s, MSG, len(MSG)) == S.CKR_SIGNATURE_LEN_RANGE


def test_private_material_is_sealed_at_rest(token: P11, user_session: int, shim_conf: Any) -> None:
    """CKA_SEED and the expanded CKA_VALUE are footnote-7 attributes: the store keeps them only
    encrypted under the token key (docs/architecture.md "At rest"), never as clear rows."""
    import sqlite3

    s = user_session
    hpub, hpriv, _ = pair(token, s, token=True)
    seed_and_value = {S.CKA_SEED, S.CKA_VALUE}
    db = sqlite3.connect(shim_conf.parent / "store.db")
    rows = db.execute("select object_id, type, is_sealed from attributes where type in (?, ?)",
                      tuple(seed_and_value)).fetchall()
    sealed = {(t, bool(flag)) for _, t, flag in rows}
    assert (S.CKA_SEED, True) in sealed and (S.CKA_SEED, False) not in sealed
    assert (S.CKA_VALUE, True) in sealed  # the private key's expanded form; the public key's is clear
