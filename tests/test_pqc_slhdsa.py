"""SLH-DSA (FIPS 205, PKCS#11 3.2 §6.69) through the built library, on the pqcrypto package.

Known answers: ACVP keyGen vectors (tests/vectors/slh_dsa_keygen_acvp.json, source named in
the file). A key pair from them signs through the library and the signature verifies under
the vector's PK.root, which the verifier recomputes from the signature's WOTS+/FORS/XMSS
paths: so the hypertree the implementation builds from SK.seed and PK.seed is FIPS 205's.
Signatures are cross-checked by pqcrypto called directly (pqcrypto's SLH-DSA signatures, pure
and pre-hashed, were also verified once by the independent `slh-dsa` package: docs/pqc.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pqcrypto
from pqcrypto.sign import slh_dsa_sha2_128f, slh_dsa_shake_128f

from cryptoki_shim import spec as S
from p11 import P11, raises_ckr
from pqc_util import hash_sign_context, sign_context
from vectors_abi import mech_info, multipart, unwrap, verify_multipart, wrap

MSG = b"a stateless hash-based signature through PKCS#11"
VECTORS = json.loads((Path(__file__).parent / "vectors" / "slh_dsa_keygen_acvp.json").read_text())
SETS = {"SLH-DSA-SHA2-128s": S.CKP_SLH_DSA_SHA2_128S, "SLH-DSA-SHAKE-128s": S.CKP_SLH_DSA_SHAKE_128S,
        "SLH-DSA-SHA2-128f": S.CKP_SLH_DSA_SHA2_128F, "SLH-DSA-SHAKE-128f": S.CKP_SLH_DSA_SHAKE_128F}
HASHES = {S.CKM_HASH_SLH_DSA_SHA224: "Sha224", S.CKM_HASH_SLH_DSA_SHA256: "Sha256",
          S.CKM_HASH_SLH_DSA_SHA384: "Sha384", S.CKM_HASH_SLH_DSA_SHA512: "Sha512",
          S.CKM_HASH_SLH_DSA_SHA3_224: "Sha3_224", S.CKM_HASH_SLH_DSA_SHA3_256: "Sha3_256",
          S.CKM_HASH_SLH_DSA_SHA3_384: "Sha3_384", S.CKM_HASH_SLH_DSA_SHA3_512: "Sha3_512",
          S.CKM_HASH_SLH_DSA_SHAKE128: "Shake128", S.CKM_HASH_SLH_DSA_SHAKE256: "Shake256"}


def keys_of(p: P11, s: int, ckp: int, sk: bytes, pk: bytes, **extra: Any) -> tuple[int, int]:
    priv = {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_SLH_DSA, S.CKA_TOKEN: False, S.CKA_SIGN: True,
            S.CKA_PARAMETER_SET: ckp, S.CKA_VALUE: sk}
    priv.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in extra.items()})
    hpub = p.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_SLH_DSA, S.CKA_TOKEN: False,
                        S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: ckp, S.CKA_VALUE: pk})
    return hpub, p.create(s, priv)


def pair(p: P11, s: int, ckp: int = S.CKP_SLH_DSA_SHA2_128F, **priv: Any) -> tuple[int, int]:
    private = {S.CKA_TOKEN: False, S.CKA_SIGN: True}
    private.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in priv.items()})
    return p.generate_key_pair(s, S.CKM_SLH_DSA_KEY_PAIR_GEN,
                               {S.CKA_TOKEN: False, S.CKA_VERIFY: True, S.CKA_PARAMETER_SET: ckp}, private)


@pytest.mark.parametrize("case", VECTORS["tests"], ids=lambda c: f"tc{c['tcId']}")
def test_acvp_keygen_vectors_sign_and_verify(token: P11, user_session: int, case: dict) -> None:
    s = user_session
    sk, pk = bytes.fromhex(case["sk"]), bytes.fromhex(case["pk"])
    hpub, hpriv = keys_of(token, s, SETS[case["parameterSet"]], sk, pk)
    assert token.get(s, hpriv, S.CKA_PUBLIC_KEY_INFO).endswith(pk)
    sig = token.sign(s, S.CKM_SLH_DSA, hpriv, MSG, sign_context(b"acvp"))
    token.verify(s, S.CKM_SLH_DSA, hpub, MSG, sig, sign_context(b"acvp"))
    wrong_root = pk[:-1] + bytes([pk[-1] ^ 1])  # the vector's PK.root is what the signature leads to
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_SLH_DSA, keys_of(token, s, SETS[case["parameterSet"]], sk, wrong_root)[0], MSG, sig,
                     sign_context(b"acvp"))


@pytest.mark.parametrize("ckp, module", [(S.CKP_SLH_DSA_SHA2_128F, slh_dsa_sha2_128f),
                                         (S.CKP_SLH_DSA_SHAKE_128F, slh_dsa_shake_128f)])
def test_generated_pairs_with_pqcrypto(token: P11, user_session: int, ckp: int, module: Any) -> None:
    s = user_session
    hpub, hpriv = pair(token, s, ckp, extractable=True)
    pk, sk = token.get(s, hpub, S.CKA_VALUE), token.get(s, hpriv, S.CKA_VALUE)
    assert len(pk) == 32 and len(sk) == 64 and sk[32:] == pk  # FIPS 205 §9.1: sk ends with pk
    sig = token.sign(s, S.CKM_SLH_DSA, hpriv, MSG)
    assert len(sig) == 17088
    module.verify(pk, MSG, sig)
    token.verify(s, S.CKM_SLH_DSA, hpub, MSG, module.sign(sk, MSG))
    assert token.sign(s, S.CKM_SLH_DSA, hpriv, MSG) != sig  # hedged
    verify_multipart(token, s, S.CKM_SLH_DSA, hpub, MSG, multipart(token, s, "Sign", S.CKM_SLH_DSA, hpriv, MSG))
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, S.CKM_SLH_DSA, hpub, MSG + b"!", sig)
    with raises_ckr(S.CKR_SIGNATURE_LEN_RANGE):
        token.verify(s, S.CKM_SLH_DSA, hpub, MSG, sig[:-1])


def test_small_parameter_set_signs(token: P11, user_session: int) -> None:
    """An "s" set: short signatures, slow signing (0.4-2 s here)."""
    s = user_session
    hpub, hpriv = pair(token, s, S.CKP_SLH_DSA_SHA2_128S)
    sig = token.sign(s, S.CKM_SLH_DSA, hpriv, MSG)
    assert len(sig) == 7856
    token.verify(s, S.CKM_SLH_DSA, hpub, MSG, sig)


@pytest.mark.parametrize("mech", sorted(HASHES))
def test_hash_slh_dsa(token: P11, user_session: int, mech: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    pk = token.get(s, hpub, S.CKA_VALUE)
    algorithm = getattr(pqcrypto.HashAlgorithm, HASHES[mech])
    sig = token.sign(s, mech, hpriv, MSG, sign_context(b"h"))
    slh_dsa_sha2_128f.verify(pk, MSG, sig, context=b"h", hash_algorithm=algorithm)
    with pytest.raises(pqcrypto.InvalidSignatureError):
        slh_dsa_sha2_128f.verify(pk, MSG, sig, context=b"h")  # not pure SLH-DSA
    token.verify(s, mech, hpub, MSG, sig, sign_context(b"h"))
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.verify(s, mech, hpub, MSG, sig)


def test_parameter_and_key_errors(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    m, _keep = token.mechanism(S.CKM_SLH_DSA, sign_context(b"", S.CKH_DETERMINISTIC_REQUIRED))
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_SLH_DSA, sign_context(bytes(256)))
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_PARAM_INVALID
    m, _keep = token.mechanism(S.CKM_HASH_SLH_DSA, hash_sign_context(S.CKM_SHA256))
    assert token.call("C_SignInit", s, m, hpriv) == S.CKR_MECHANISM_INVALID  # not offered (docs/pqc.md)
    mldsa_pub, mldsa_priv = token.generate_key_pair(s, S.CKM_ML_DSA_KEY_PAIR_GEN,
                                                    {S.CKA_TOKEN: False, S.CKA_PARAMETER_SET: S.CKP_ML_DSA_44},
                                                    {S.CKA_TOKEN: False})
    m, _keep = token.mechanism(S.CKM_SLH_DSA)
    assert token.call("C_SignInit", s, m, mldsa_priv) == S.CKR_KEY_TYPE_INCONSISTENT
    m2, _keep2 = token.mechanism(S.CKM_ML_DSA)
    assert token.call("C_SignInit", s, m2, hpriv) == S.CKR_KEY_TYPE_INCONSISTENT
    case = VECTORS["tests"][2]
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):  # a 128-bit key under a 256-bit set
        keys_of(token, s, S.CKP_SLH_DSA_SHA2_256F, bytes.fromhex(case["sk"]), bytes.fromhex(case["pk"]))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        keys_of(token, s, 13, bytes.fromhex(case["sk"]), bytes.fromhex(case["pk"]))
    with raises_ckr(S.CKR_TEMPLATE_INCOMPLETE):
        token.generate_key_pair(s, S.CKM_SLH_DSA_KEY_PAIR_GEN, {S.CKA_TOKEN: False}, {S.CKA_TOKEN: False})


def test_wrap_and_unwrap(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s, S.CKP_SLH_DSA_SHAKE_128F, extractable=True)
    kek = token.create(s, {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False,
                           S.CKA_WRAP: True, S.CKA_UNWRAP: True, S.CKA_VALUE: bytes(range(32))})
    blob = wrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, hpriv)
    back = unwrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, blob,
                  {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_SLH_DSA, S.CKA_TOKEN: False,
                   S.CKA_SIGN: True})
    assert token.get(s, back, S.CKA_PARAMETER_SET) == S.CKP_SLH_DSA_SHAKE_128F
    token.verify(s, S.CKM_SLH_DSA, hpub, MSG, token.sign(s, S.CKM_SLH_DSA, back, MSG))


def test_mechanism_info(token: P11) -> None:
    info = mech_info(token, S.CKM_SLH_DSA_KEY_PAIR_GEN)
    assert (info.ulMinKeySize, info.ulMaxKeySize, info.flags) == (32, 64, S.CKF_GENERATE_KEY_PAIR)
    for mech in (S.CKM_SLH_DSA, *HASHES):
        info = mech_info(token, mech)
        assert (info.ulMinKeySize, info.ulMaxKeySize) == (32, 64)
        assert info.flags & (S.CKF_SIGN | S.CKF_VERIFY) == S.CKF_SIGN | S.CKF_VERIFY
