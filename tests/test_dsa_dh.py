"""Issue 23 item 11, through the built library: DSA (parameter and key pair generation, raw and
hashing signatures, cross-checked with pyca both ways) and PKCS#3 Diffie-Hellman (parameter
and key pair generation, CKM_DH_PKCS_DERIVE between token keys and against a pyca peer), with
the derivation rules of docs/security.md and the negative cases."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dh, dsa, utils

from cryptoki_shim import spec
from p11 import P11, Template, ffi, raises_ckr

A = spec
NULL = ffi.NULL
#: pyca deprecates finite-field DH (the module silences it; pytest resets filters per test)
pytestmark = pytest.mark.filterwarnings("ignore:Diffie-Hellman over finite fields")

#: RFC 3526 §3, the 2048-bit MODP group (group 14), generator 2: a fixed group, so no test
#: waits for a safe prime.
MODP_2048 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)
with warnings.catch_warnings():  # at import: the pytestmark below does not reach here
    warnings.simplefilter("ignore")
    GROUP = dh.DHParameterNumbers(MODP_2048, 2)
HASHING = {A.CKM_DSA_SHA1: hashes.SHA1, A.CKM_DSA_SHA224: hashes.SHA224, A.CKM_DSA_SHA256: hashes.SHA256,
           A.CKM_DSA_SHA384: hashes.SHA384, A.CKM_DSA_SHA512: hashes.SHA512,
           A.CKM_DSA_SHA3_224: hashes.SHA3_224, A.CKM_DSA_SHA3_256: hashes.SHA3_256,
           A.CKM_DSA_SHA3_384: hashes.SHA3_384, A.CKM_DSA_SHA3_512: hashes.SHA3_512}
MESSAGE = b"issue 23 item 11 " * 40


def _b(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def _int(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


@pytest.fixture(scope="module")
def dsa_params() -> dict[int, dsa.DSAParameterNumbers]:
    """pyca-generated domain parameters, once per module (1024: q of 160 bits; 2048: 256)."""
    return {bits: dsa.generate_parameters(bits).parameter_numbers() for bits in (1024, 2048)}


def _dsa_pair(token: P11, s: int, params: dsa.DSAParameterNumbers, extra: dict | None = None) -> tuple[int, int]:
    return token.generate_key_pair(
        s, A.CKM_DSA_KEY_PAIR_GEN,
        {A.CKA_TOKEN: False, A.CKA_VERIFY: True, A.CKA_PRIME: _b(params.p), A.CKA_SUBPRIME: _b(params.q),
         A.CKA_BASE: _b(params.g)},
        {A.CKA_TOKEN: False, A.CKA_SIGN: True, **(extra or {})})


def _pyca_dsa_public(token: P11, s: int, pub: int) -> dsa.DSAPublicKey:
    g = {t: _int(token.get(s, pub, t)) for t in (A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE, A.CKA_VALUE)}
    params = dsa.DSAParameterNumbers(g[A.CKA_PRIME], g[A.CKA_SUBPRIME], g[A.CKA_BASE])
    return dsa.DSAPublicNumbers(g[A.CKA_VALUE], params).public_key()


def _import_dsa(token: P11, s: int, key: dsa.DSAPrivateKey) -> tuple[int, int]:
    n = key.private_numbers()
    params = n.public_numbers.parameter_numbers
    common = {A.CKA_TOKEN: False, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_PRIME: _b(params.p),
              A.CKA_SUBPRIME: _b(params.q), A.CKA_BASE: _b(params.g)}
    pub = token.create(s, {**common, A.CKA_CLASS: A.CKO_PUBLIC_KEY, A.CKA_VALUE: _b(n.public_numbers.y),
                           A.CKA_VERIFY: True})
    priv = token.create(s, {**common, A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_VALUE: _b(n.x), A.CKA_SIGN: True})
    return pub, priv


def _raw(sig_der: bytes, q_len: int) -> bytes:
    r, s = utils.decode_dss_signature(sig_der)
    return r.to_bytes(q_len, "big") + s.to_bytes(q_len, "big")


def _der(sig: bytes) -> bytes:
    half = len(sig) // 2
    return utils.encode_dss_signature(_int(sig[:half]), _int(sig[half:]))


def _digest(algorithm: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    h = hashes.Hash(algorithm())
    h.update(data)
    return h.finalize()


def _info(token: P11, mech: int) -> tuple[int, int, int]:
    info = ffi.new("CK_MECHANISM_INFO *")
    token.check("C_GetMechanismInfo", 0, mech, info)
    return info.ulMinKeySize, info.ulMaxKeySize, info.flags


# ------------------------------------------------------------------ mechanism info


def test_mechanism_info(token: P11) -> None:
    n = ffi.new("CK_ULONG *")
    token.check("C_GetMechanismList", 0, NULL, n)
    arr = ffi.new("CK_ULONG[]", n[0])
    token.check("C_GetMechanismList", 0, arr, n)
    listed = set(arr)
    sign = A.CKF_SIGN | A.CKF_VERIFY
    expected = {A.CKM_DSA_PARAMETER_GEN: (1024, 3072, A.CKF_GENERATE),
                A.CKM_DSA_KEY_PAIR_GEN: (1024, 3072, A.CKF_GENERATE_KEY_PAIR),
                A.CKM_DSA: (1024, 3072, sign),
                **{m: (1024, 3072, sign) for m in HASHING},
                A.CKM_DH_PKCS_PARAMETER_GEN: (512, 10000, A.CKF_GENERATE),
                A.CKM_DH_PKCS_KEY_PAIR_GEN: (512, 10000, A.CKF_GENERATE_KEY_PAIR),
                A.CKM_DH_PKCS_DERIVE: (512, 10000, A.CKF_DERIVE)}
    for mech, want in expected.items():
        assert mech in listed, spec.ckm_name(mech)
        lo, hi, flags = _info(token, mech)
        assert (lo, hi) == want[:2] and flags & want[2] == want[2], spec.ckm_name(mech)
        assert not flags & (A.CKF_ENCRYPT | A.CKF_DECRYPT | A.CKF_DIGEST | A.CKF_WRAP | A.CKF_UNWRAP), spec.ckm_name(mech)
    for mech in (A.CKM_X9_42_DH_KEY_PAIR_GEN, A.CKM_X9_42_DH_DERIVE, A.CKM_X9_42_DH_PARAMETER_GEN):
        assert mech not in listed  # not offered: docs/conformance.md says why


# ------------------------------------------------------------------ DSA


def test_dsa_parameter_generation_then_key_pair(token: P11, user_session: int) -> None:
    s = user_session
    h = token.generate_key(s, A.CKM_DSA_PARAMETER_GEN, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_TOKEN: False,
                                                          A.CKA_PRIME_BITS: 1024})
    assert token.get(s, h, A.CKA_CLASS) == A.CKO_DOMAIN_PARAMETERS
    assert token.get(s, h, A.CKA_KEY_TYPE) == A.CKK_DSA
    assert token.get(s, h, A.CKA_PRIME_BITS) == 1024
    assert token.get(s, h, A.CKA_LOCAL) is True
    p, q, g = (token.get(s, h, t) for t in (A.CKA_PRIME, A.CKA_SUBPRIME, A.CKA_BASE))
    assert _int(p).bit_length() == 1024 and _int(q).bit_length() == 160
    params = dsa.DSAParameterNumbers(_int(p), _int(q), _int(g))
    params.parameters()  # pyca accepts them
    pub, priv = _dsa_pair(token, s, params)
    assert token.get(s, priv, A.CKA_PRIME) == p and token.get(s, priv, A.CKA_KEY_GEN_MECHANISM) == A.CKM_DSA_KEY_PAIR_GEN
    sig = token.sign(s, A.CKM_DSA_SHA256, priv, MESSAGE)
    _pyca_dsa_public(token, s, pub).verify(_der(sig), MESSAGE, hashes.SHA256())


def test_dsa_parameter_generation_refusals(token: P11, user_session: int) -> None:
    s = user_session
    base = {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_TOKEN: False}
    for template, ckr in (({}, A.CKR_TEMPLATE_INCOMPLETE),
                          ({A.CKA_PRIME_BITS: 1536}, A.CKR_ATTRIBUTE_VALUE_INVALID),
                          ({A.CKA_PRIME_BITS: 4096}, A.CKR_KEY_SIZE_RANGE),
                          ({A.CKA_PRIME_BITS: 512}, A.CKR_KEY_SIZE_RANGE),
                          # the mechanism's value disagrees (policy: checked before footnote 4)
                          ({A.CKA_PRIME_BITS: 1024, A.CKA_PRIME: b"\x05"}, A.CKR_TEMPLATE_INCONSISTENT),
                          ({A.CKA_PRIME_BITS: 1024, A.CKA_CLASS: A.CKO_SECRET_KEY}, A.CKR_TEMPLATE_INCONSISTENT)):
        with raises_ckr(ckr):
            token.generate_key(s, A.CKM_DSA_PARAMETER_GEN, {**base, **template})


@pytest.mark.parametrize("bits", (1024, 2048))
def test_dsa_token_signs_pyca_verifies(token: P11, user_session: int, dsa_params: Any, bits: int) -> None:
    s = user_session
    pub, priv = _dsa_pair(token, s, dsa_params[bits])
    public = _pyca_dsa_public(token, s, pub)
    q_len = (dsa_params[bits].q.bit_length() + 7) // 8
    for mech, algorithm in HASHING.items():
        sig = token.sign(s, mech, priv, MESSAGE)
        assert len(sig) == 2 * q_len, spec.ckm_name(mech)
        public.verify(_der(sig), MESSAGE, algorithm())
        token.verify(s, mech, pub, MESSAGE, sig)
    for algorithm in (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512):
        digest = _digest(algorithm, MESSAGE)  # CKM_DSA: the hash, any length, truncated to q's bits
        sig = token.sign(s, A.CKM_DSA, priv, digest)
        assert len(sig) == 2 * q_len
        public.verify(_der(sig), digest, utils.Prehashed(algorithm()))
        token.verify(s, A.CKM_DSA, pub, digest, sig)


@pytest.mark.parametrize("bits", (1024, 2048))
def test_pyca_signs_imported_key_verifies_and_signs(token: P11, user_session: int, dsa_params: Any,
                                                    bits: int) -> None:
    """A pyca key imported with C_CreateObject: the token verifies pyca's signatures and pyca
    verifies the token's."""
    s = user_session
    key = dsa_params[bits].parameters().generate_private_key()
    pub, priv = _import_dsa(token, s, key)
    q_len = (dsa_params[bits].q.bit_length() + 7) // 8
    for mech, algorithm in HASHING.items():
        token.verify(s, mech, pub, MESSAGE, _raw(key.sign(MESSAGE, algorithm()), q_len))
        key.public_key().verify(_der(token.sign(s, mech, priv, MESSAGE)), MESSAGE, algorithm())
    digest = _digest(hashes.SHA256, MESSAGE)
    token.verify(s, A.CKM_DSA, pub, digest, _raw(key.sign(digest, utils.Prehashed(hashes.SHA256())), q_len))
    assert token.get(s, pub, A.CKA_VALUE) == _b(key.public_key().public_numbers().y)


def test_dsa_multipart_length_protocol(token: P11, user_session: int, dsa_params: Any) -> None:
    s = user_session
    pub, priv = _dsa_pair(token, s, dsa_params[2048])
    m, _keep = token.mechanism(A.CKM_DSA_SHA256)
    token.check("C_SignInit", s, m, priv)
    token.check("C_SignUpdate", s, MESSAGE[:100], 100)
    token.check("C_SignUpdate", s, MESSAGE[100:], len(MESSAGE) - 100)
    n = ffi.new("CK_ULONG *")
    token.check("C_SignFinal", s, NULL, n)
    assert n[0] == 64
    buf = ffi.new("unsigned char[]", 64)
    n[0] = 63
    assert token.call("C_SignFinal", s, buf, n) == A.CKR_BUFFER_TOO_SMALL and n[0] == 64
    token.check("C_SignFinal", s, buf, n)
    sig = ffi.buffer(buf, n[0])[:]
    token.check("C_VerifyInit", s, m, pub)
    token.check("C_VerifyUpdate", s, MESSAGE[:7], 7)
    token.check("C_VerifyUpdate", s, MESSAGE[7:], len(MESSAGE) - 7)
    token.check("C_VerifyFinal", s, sig, len(sig))
    _pyca_dsa_public(token, s, pub).verify(_der(sig), MESSAGE, hashes.SHA256())
    # raw CKM_DSA is single-part (the spec's footnote), and the error ends the operation
    raw, _keep2 = token.mechanism(A.CKM_DSA)
    token.check("C_SignInit", s, raw, priv)
    assert token.call("C_SignUpdate", s, MESSAGE, 20) == A.CKR_FUNCTION_NOT_SUPPORTED
    assert token.call("C_SignFinal", s, buf, n) == A.CKR_OPERATION_NOT_INITIALIZED


def test_dsa_signature_checks(token: P11, user_session: int, dsa_params: Any) -> None:
    s = user_session
    pub, priv = _dsa_pair(token, s, dsa_params[1024])
    sig = token.sign(s, A.CKM_DSA_SHA1, priv, MESSAGE)
    assert len(sig) == 40
    for bad in (sig[:-1], sig + b"\0", b""):
        with raises_ckr(A.CKR_SIGNATURE_LEN_RANGE):
            token.verify(s, A.CKM_DSA_SHA1, pub, MESSAGE, bad)
    with raises_ckr(A.CKR_SIGNATURE_INVALID):
        token.verify(s, A.CKM_DSA_SHA1, pub, MESSAGE + b"!", sig)
    with raises_ckr(A.CKR_SIGNATURE_INVALID):
        token.verify(s, A.CKM_DSA_SHA1, pub, MESSAGE, bytes(40))


def test_dsa_wrong_keys_and_templates(token: P11, user_session: int, dsa_params: Any) -> None:
    s = user_session
    params = dsa_params[1024]
    pub, priv = _dsa_pair(token, s, params)
    ec_pub, ec_priv = token.generate_key_pair(s, A.CKM_EC_KEY_PAIR_GEN,
                                              {A.CKA_TOKEN: False, A.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107")},
                                              {A.CKA_TOKEN: False})
    for mech, key in ((A.CKM_DSA_SHA256, ec_priv), (A.CKM_ECDSA_SHA256, priv), (A.CKM_SHA256_RSA_PKCS, priv)):
        m, _keep = token.mechanism(mech)
        assert token.call("C_SignInit", s, m, key) == A.CKR_KEY_TYPE_INCONSISTENT, spec.ckm_name(mech)
    full = {A.CKA_PRIME: _b(params.p), A.CKA_SUBPRIME: _b(params.q), A.CKA_BASE: _b(params.g)}
    for missing in full:
        with raises_ckr(A.CKR_TEMPLATE_INCOMPLETE):
            token.generate_key_pair(s, A.CKM_DSA_KEY_PAIR_GEN,
                                    {A.CKA_TOKEN: False, **{t: v for t, v in full.items() if t != missing}},
                                    {A.CKA_TOKEN: False})
    with raises_ckr(A.CKR_DOMAIN_PARAMS_INVALID):  # a q that does not divide p - 1
        token.generate_key_pair(s, A.CKM_DSA_KEY_PAIR_GEN, {**full, A.CKA_SUBPRIME: _b(params.q + 2)},
                                {A.CKA_TOKEN: False})
    with raises_ckr(A.CKR_ATTRIBUTE_READ_ONLY):  # the private key gets them from the mechanism
        token.generate_key_pair(s, A.CKM_DSA_KEY_PAIR_GEN, {A.CKA_TOKEN: False, **full},
                                {A.CKA_TOKEN: False, A.CKA_PRIME: _b(params.p)})
    with raises_ckr(A.CKR_ATTRIBUTE_VALUE_INVALID):  # y not in the group's range
        token.create(s, {A.CKA_CLASS: A.CKO_PUBLIC_KEY, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_TOKEN: False, **full,
                         A.CKA_VALUE: _b(params.p)})
    for x in (0, params.q, params.q + 1):  # x in [1, q-1]
        with raises_ckr(A.CKR_ATTRIBUTE_VALUE_INVALID):
            token.create(s, {A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_TOKEN: False, **full,
                             A.CKA_VALUE: _b(x)})
    with raises_ckr(A.CKR_ATTRIBUTE_VALUE_INVALID):  # 4096 bits: pyca takes it, FIPS 186-4 has no such size
        token.create(s, {A.CKA_CLASS: A.CKO_PUBLIC_KEY, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_TOKEN: False, **full,
                         A.CKA_PRIME: _b((1 << 4095) | params.p), A.CKA_VALUE: b"\x02"})
    with raises_ckr(A.CKR_KEY_FUNCTION_NOT_PERMITTED):
        pub2, priv2 = _dsa_pair(token, s, params, extra={A.CKA_SIGN: False})
        token.sign(s, A.CKM_DSA_SHA256, priv2, MESSAGE)


def test_dsa_big_integers_normalised(token: P11, user_session: int, dsa_params: Any) -> None:
    """Leading zero bytes of every DSA value (CKA_PRIME/SUBPRIME/BASE by the codec, CKA_VALUE
    by the key type) are dropped on import: one normal form read back and matched."""
    s = user_session
    params = dsa_params[1024]
    key = params.parameters().generate_private_key()
    y = key.public_key().public_numbers().y
    pub = token.create(s, {A.CKA_CLASS: A.CKO_PUBLIC_KEY, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_TOKEN: False,
                           A.CKA_PRIME: b"\0\0" + _b(params.p), A.CKA_SUBPRIME: b"\0" + _b(params.q),
                           A.CKA_BASE: b"\0" + _b(params.g), A.CKA_VALUE: b"\0\0\0" + _b(y)})
    assert token.get(s, pub, A.CKA_PRIME) == _b(params.p)
    assert token.get(s, pub, A.CKA_SUBPRIME) == _b(params.q)
    assert token.get(s, pub, A.CKA_VALUE) == _b(y)
    assert pub in token.find(s, {A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_VALUE: _b(y)})
    assert pub in token.find(s, {A.CKA_VALUE: b"\0\0" + _b(y)})  # compared as a number
    assert pub not in token.find(s, {A.CKA_VALUE: b"\1" + _b(y)})
    # an octet string elsewhere: a secret key's leading zero byte is part of its value
    secret = token.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_TOKEN: False,
                              A.CKA_VALUE: b"\0" + b"k" * 31, A.CKA_SENSITIVE: False, A.CKA_EXTRACTABLE: True})
    assert token.get(s, secret, A.CKA_VALUE) == b"\0" + b"k" * 31
    assert secret not in token.find(s, {A.CKA_VALUE: b"k" * 31})
    assert secret in token.find(s, {A.CKA_VALUE: b"\0" + b"k" * 31})
    assert pub in token.find(s, {A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_PRIME: b"\0" + _b(params.p)})


def test_dsa_key_wraps_and_unwraps(token: P11, user_session: int, dsa_params: Any) -> None:
    """A DSA private key leaves as PKCS#8 under an AES key and comes back signing."""
    s = user_session
    pub, priv = _dsa_pair(token, s, dsa_params[1024], extra={A.CKA_EXTRACTABLE: True})
    h = _rewrapped(token, s, priv, {A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_SIGN: True})
    assert token.get(s, h, A.CKA_PRIME) == token.get(s, pub, A.CKA_PRIME)
    token.verify(s, A.CKM_DSA_SHA256, pub, MESSAGE, token.sign(s, A.CKM_DSA_SHA256, h, MESSAGE))


def _rewrapped(token: P11, s: int, priv: int, attrs: dict[int, Any]) -> int:
    """``priv`` wrapped (PKCS#8 under CKM_AES_KEY_WRAP_PAD, by the two-call length protocol)
    and unwrapped as a session private key with ``attrs``: the new handle."""
    kek = token.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: b"w" * 32,
                           A.CKA_TOKEN: False, A.CKA_WRAP: True, A.CKA_UNWRAP: True})
    m, _keep = token.mechanism(A.CKM_AES_KEY_WRAP_PAD)
    n = ffi.new("CK_ULONG *")
    token.check("C_WrapKey", s, m, kek, priv, NULL, n)
    buf = ffi.new("unsigned char[]", n[0])
    token.check("C_WrapKey", s, m, kek, priv, buf, n)
    t = Template({A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_TOKEN: False, **attrs})
    h = ffi.new("CK_OBJECT_HANDLE *")
    token.check("C_UnwrapKey", s, m, kek, buf, n[0], t.array, t.count, h)
    return int(h[0])


# ------------------------------------------------------------------ DH


def _dh_pair(token: P11, s: int, group: tuple[int, int] = (MODP_2048, 2), pub: dict | None = None,
             extra: dict | None = None) -> tuple[int, int]:
    return token.generate_key_pair(
        s, A.CKM_DH_PKCS_KEY_PAIR_GEN,
        {A.CKA_TOKEN: False, A.CKA_PRIME: _b(group[0]), A.CKA_BASE: _b(group[1]), **(pub or {})},
        {A.CKA_TOKEN: False, A.CKA_DERIVE: True, **(extra or {})})


def _derive(token: P11, s: int, base: int, public_value: bytes, template: dict[int, Any]) -> int:
    m, _keep = token.mechanism(A.CKM_DH_PKCS_DERIVE, public_value)
    t = Template({A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_TOKEN: False, **template})
    h = ffi.new("CK_OBJECT_HANDLE *")
    token.check("C_DeriveKey", s, m, base, t.array, t.count, h)
    return h[0]


READABLE = {A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_SENSITIVE: False, A.CKA_EXTRACTABLE: True}


def test_dh_derive_between_token_keys(token: P11, user_session: int) -> None:
    s = user_session
    a_pub, a_priv = _dh_pair(token, s)
    b_pub, b_priv = _dh_pair(token, s)
    ya, yb = token.get(s, a_pub, A.CKA_VALUE), token.get(s, b_pub, A.CKA_VALUE)
    assert ya != yb and 1 < _int(ya) < MODP_2048 - 1
    ka = _derive(token, s, a_priv, yb, {**READABLE, A.CKA_VALUE_LEN: 32})
    kb = _derive(token, s, b_priv, ya, {**READABLE, A.CKA_VALUE_LEN: 32})
    assert token.get(s, ka, A.CKA_VALUE) == token.get(s, kb, A.CKA_VALUE)
    # an AES key both sides use: the python-pkcs11 DH test's shape
    ta = _derive(token, s, a_priv, yb, {A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 16, A.CKA_ENCRYPT: True})
    tb = _derive(token, s, b_priv, ya, {A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 16, A.CKA_DECRYPT: True})
    ct = token.encrypt(s, A.CKM_AES_CBC_PAD, ta, b"HI BOB!", bytes(16))
    assert token.decrypt(s, A.CKM_AES_CBC_PAD, tb, ct, bytes(16)) == b"HI BOB!"


def test_dh_derive_against_a_pyca_peer(token: P11, user_session: int) -> None:
    """The token's secret is pyca's: the whole of it (as long as p, leading zeros kept) with
    no CKA_VALUE_LEN, its trailing bytes with one (the ECDH rule)."""
    s = user_session
    pub, priv = _dh_pair(token, s)
    peer = GROUP.parameters().generate_private_key()
    token_y = dh.DHPublicNumbers(_int(token.get(s, pub, A.CKA_VALUE)), GROUP).public_key()
    expected = peer.exchange(token_y).rjust(256, b"\0")
    peer_y = _b(peer.public_key().public_numbers().y)
    whole = _derive(token, s, priv, peer_y, READABLE)
    assert token.get(s, whole, A.CKA_VALUE) == expected and token.get(s, whole, A.CKA_VALUE_LEN) == 256
    for length in (16, 32, 255):
        k = _derive(token, s, priv, peer_y, {**READABLE, A.CKA_VALUE_LEN: length})
        assert token.get(s, k, A.CKA_VALUE) == expected[-length:]
    aes = _derive(token, s, priv, b"\0\0" + peer_y, {**READABLE, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 32})
    assert token.get(s, aes, A.CKA_VALUE) == expected[-32:]  # a padded public value is the same integer
    with raises_ckr(A.CKR_TEMPLATE_INCONSISTENT):
        _derive(token, s, priv, peer_y, {**READABLE, A.CKA_VALUE_LEN: 257})
    with raises_ckr(A.CKR_TEMPLATE_INCOMPLETE):  # AES without a length: 256 bytes is no AES key
        _derive(token, s, priv, peer_y, {A.CKA_KEY_TYPE: A.CKK_AES})


def test_dh_imported_private_key_derives(token: P11, user_session: int) -> None:
    """A pyca private key imported with C_CreateObject agrees with a token key pair."""
    s = user_session
    mine = GROUP.parameters().generate_private_key()
    x = mine.private_numbers().x
    priv = token.create(s, {A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_TOKEN: False,
                            A.CKA_PRIME: _b(MODP_2048), A.CKA_BASE: b"\x02", A.CKA_VALUE: b"\0" + _b(x),
                            A.CKA_DERIVE: True, A.CKA_EXTRACTABLE: True})
    assert token.get(s, priv, A.CKA_VALUE) == _b(x) and token.get(s, priv, A.CKA_VALUE_BITS) == x.bit_length()
    pub, theirs = _dh_pair(token, s)
    mine_y = _b(mine.public_key().public_numbers().y)
    k1 = _derive(token, s, priv, token.get(s, pub, A.CKA_VALUE), {**READABLE, A.CKA_VALUE_LEN: 32})
    k2 = _derive(token, s, theirs, mine_y, {**READABLE, A.CKA_VALUE_LEN: 32})
    assert token.get(s, k1, A.CKA_VALUE) == token.get(s, k2, A.CKA_VALUE)
    with raises_ckr(A.CKR_ATTRIBUTE_READ_ONLY):  # footnote 2: the token computes it
        token.create(s, {A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_TOKEN: False,
                         A.CKA_PRIME: _b(MODP_2048), A.CKA_BASE: b"\x02", A.CKA_VALUE: _b(x), A.CKA_VALUE_BITS: 256})


def test_dh_private_key_wraps_and_unwraps(token: P11, user_session: int) -> None:
    """A DH private key leaves as PKCS#8 and, unwrapped, agrees as before."""
    s = user_session
    pub, priv = _dh_pair(token, s, extra={A.CKA_EXTRACTABLE: True})
    h = _rewrapped(token, s, priv, {A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_DERIVE: True})
    peer = GROUP.parameters().generate_private_key()
    y = _b(peer.public_key().public_numbers().y)
    before = _derive(token, s, priv, y, {**READABLE, A.CKA_VALUE_LEN: 32})
    after = _derive(token, s, h, y, {**READABLE, A.CKA_VALUE_LEN: 32})
    assert token.get(s, before, A.CKA_VALUE) == token.get(s, after, A.CKA_VALUE)
    assert token.get(s, h, A.CKA_VALUE_BITS) == token.get(s, priv, A.CKA_VALUE_BITS)


def test_x942_dh_key_is_not_unwrapped(token: P11, user_session: int, dsa_params: Any) -> None:
    """An X9.42 DH private key (a group with q, no safe prime) in PKCS#8 is refused at
    C_UnwrapKey, not at its first use: PKCS#3 DH is what this token serves."""
    from cryptography.hazmat.primitives import keywrap, serialization

    s = user_session
    n = dsa_params[1024]
    key = dh.DHParameterNumbers(n.p, n.g, n.q).parameters().generate_private_key()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    blob = keywrap.aes_key_wrap_with_padding(b"w" * 32, der)
    kek = token.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: b"w" * 32,
                           A.CKA_TOKEN: False, A.CKA_UNWRAP: True})
    m, _keep = token.mechanism(A.CKM_AES_KEY_WRAP_PAD)
    t = Template({A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_TOKEN: False})
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_UnwrapKey", s, m, kek, blob, len(blob), t.array, t.count, h) == A.CKR_ATTRIBUTE_VALUE_INVALID


def test_dh_value_bits(token: P11, user_session: int) -> None:
    s = user_session
    _pub, priv = _dh_pair(token, s, extra={A.CKA_VALUE_BITS: 300, A.CKA_SENSITIVE: False, A.CKA_EXTRACTABLE: True})
    assert token.get(s, priv, A.CKA_VALUE_BITS) == 300
    assert _int(token.get(s, priv, A.CKA_VALUE)).bit_length() == 300
    _pub, priv = _dh_pair(token, s, extra={A.CKA_SENSITIVE: False, A.CKA_EXTRACTABLE: True})
    assert token.get(s, priv, A.CKA_VALUE_BITS) == _int(token.get(s, priv, A.CKA_VALUE)).bit_length()
    for bits in (1, 2048):
        with raises_ckr(A.CKR_ATTRIBUTE_VALUE_INVALID):
            _dh_pair(token, s, extra={A.CKA_VALUE_BITS: bits})


def test_dh_negative_cases(token: P11, user_session: int, dsa_params: Any) -> None:
    s = user_session
    pub, priv = _dh_pair(token, s, pub={A.CKA_DERIVE: True})
    p = MODP_2048
    for bad in (b"", b"\0", b"\x01", _b(p - 1), _b(p), _b(p + 7), b"\x01" + bytes(300)):
        with raises_ckr(A.CKR_MECHANISM_PARAM_INVALID):
            _derive(token, s, priv, bad, READABLE)
    with raises_ckr(A.CKR_TEMPLATE_INCOMPLETE):
        token.generate_key_pair(s, A.CKM_DH_PKCS_KEY_PAIR_GEN, {A.CKA_TOKEN: False, A.CKA_BASE: b"\x02"},
                                {A.CKA_TOKEN: False})
    with raises_ckr(A.CKR_TEMPLATE_INCOMPLETE):
        token.generate_key_pair(s, A.CKM_DH_PKCS_KEY_PAIR_GEN, {A.CKA_TOKEN: False, A.CKA_PRIME: _b(p)},
                                {A.CKA_TOKEN: False})
    with raises_ckr(A.CKR_DOMAIN_PARAMS_INVALID):  # not a prime
        _dh_pair(token, s, (p + 2, 2))
    with raises_ckr(A.CKR_DOMAIN_PARAMS_INVALID):  # under pyca's 512 bits
        _dh_pair(token, s, ((1 << 255) - 19, 2))
    y = token.get(s, pub, A.CKA_VALUE)
    _pub2, no_derive = _dh_pair(token, s, extra={A.CKA_DERIVE: False})
    with raises_ckr(A.CKR_KEY_FUNCTION_NOT_PERMITTED):
        _derive(token, s, no_derive, y, READABLE)
    with raises_ckr(A.CKR_KEY_TYPE_INCONSISTENT):  # a public key is no base of an agreement
        _derive(token, s, pub, y, READABLE)
    _dpub, dsa_priv = _dsa_pair(token, s, dsa_params[1024], extra={A.CKA_DERIVE: True})
    with raises_ckr(A.CKR_KEY_TYPE_INCONSISTENT):
        _derive(token, s, dsa_priv, y, READABLE)
    m, _keep = token.mechanism(A.CKM_DH_PKCS_DERIVE, y)
    assert token.call("C_SignInit", s, m, priv) == A.CKR_MECHANISM_INVALID


def test_dh_derivation_rules(token: P11, user_session: int) -> None:
    """docs/security.md D1-D3 as for ECDH: the agreed key may be readable (key agreement),
    keeps CKA_WRAP_WITH_TRUSTED, and no key under 16 bytes comes from a protected base."""
    s = user_session
    pub, priv = _dh_pair(token, s, extra={A.CKA_SENSITIVE: True, A.CKA_WRAP_WITH_TRUSTED: True})
    peer = GROUP.parameters().generate_private_key()
    y = _b(peer.public_key().public_numbers().y)
    k = _derive(token, s, priv, y, {**READABLE, A.CKA_VALUE_LEN: 16})
    assert token.get(s, k, A.CKA_WRAP_WITH_TRUSTED) is True
    assert token.get(s, k, A.CKA_ALWAYS_SENSITIVE) is False and token.get(s, k, A.CKA_SENSITIVE) is False
    with raises_ckr(A.CKR_TEMPLATE_INCONSISTENT):
        _derive(token, s, priv, y, {**READABLE, A.CKA_VALUE_LEN: 16, A.CKA_WRAP_WITH_TRUSTED: False})
    with raises_ckr(A.CKR_ATTRIBUTE_VALUE_INVALID):
        _derive(token, s, priv, y, {**READABLE, A.CKA_VALUE_LEN: 8})
    sensitive = _derive(token, s, priv, y, {A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE_LEN: 32, A.CKA_SENSITIVE: True})
    assert token.get(s, sensitive, A.CKA_ALWAYS_SENSITIVE) is True  # base always sensitive, key sensitive


def test_dh_parameter_generation_and_domain_objects(token: P11, user_session: int) -> None:
    s = user_session
    h = token.generate_key(s, A.CKM_DH_PKCS_PARAMETER_GEN, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_TOKEN: False,
                                                              A.CKA_PRIME_BITS: 512})
    assert token.get(s, h, A.CKA_KEY_TYPE) == A.CKK_DH and token.get(s, h, A.CKA_PRIME_BITS) == 512
    p, g = _int(token.get(s, h, A.CKA_PRIME)), _int(token.get(s, h, A.CKA_BASE))
    assert p.bit_length() == 512 and g == 2
    a_pub, a_priv = _dh_pair(token, s, (p, g))
    b_pub, b_priv = _dh_pair(token, s, (p, g))
    ka = _derive(token, s, a_priv, token.get(s, b_pub, A.CKA_VALUE), {**READABLE, A.CKA_VALUE_LEN: 16})
    kb = _derive(token, s, b_priv, token.get(s, a_pub, A.CKA_VALUE), {**READABLE, A.CKA_VALUE_LEN: 16})
    assert token.get(s, ka, A.CKA_VALUE) == token.get(s, kb, A.CKA_VALUE)
    for template, ckr in (({}, A.CKR_TEMPLATE_INCOMPLETE), ({A.CKA_PRIME_BITS: 256}, A.CKR_KEY_SIZE_RANGE),
                          ({A.CKA_PRIME_BITS: 16384}, A.CKR_KEY_SIZE_RANGE)):
        with raises_ckr(ckr):
            token.generate_key(s, A.CKM_DH_PKCS_PARAMETER_GEN, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS,
                                                                  A.CKA_TOKEN: False, **template})
    # C_CreateObject of domain parameters: checked, CKA_PRIME_BITS computed (footnote 2)
    d = token.create(s, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_TOKEN: False,
                         A.CKA_PRIME: b"\0" + _b(MODP_2048), A.CKA_BASE: b"\x02"})
    assert token.get(s, d, A.CKA_PRIME_BITS) == 2048 and token.get(s, d, A.CKA_PRIME) == _b(MODP_2048)
    assert token.get(s, d, A.CKA_LOCAL) is False
    assert d in token.find(s, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_KEY_TYPE: A.CKK_DH})
    for template, ckr in (({A.CKA_PRIME_BITS: 2048}, A.CKR_ATTRIBUTE_READ_ONLY),
                          ({A.CKA_PRIME: _b(MODP_2048 + 2)}, A.CKR_ATTRIBUTE_VALUE_INVALID),
                          ({A.CKA_PRIME: b""}, A.CKR_ATTRIBUTE_VALUE_INVALID),
                          ({A.CKA_SUBPRIME: b"\x05"}, A.CKR_TEMPLATE_INCONSISTENT)):
        with raises_ckr(ckr):
            token.create(s, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_KEY_TYPE: A.CKK_DH, A.CKA_TOKEN: False,
                             A.CKA_PRIME: _b(MODP_2048), A.CKA_BASE: b"\x02", **template})
    with raises_ckr(A.CKR_TEMPLATE_INCOMPLETE):
        token.create(s, {A.CKA_CLASS: A.CKO_DOMAIN_PARAMETERS, A.CKA_KEY_TYPE: A.CKK_DSA, A.CKA_TOKEN: False,
                         A.CKA_PRIME: _b(MODP_2048), A.CKA_BASE: b"\x02"})
