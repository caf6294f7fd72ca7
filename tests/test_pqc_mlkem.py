"""ML-KEM (FIPS 203, PKCS#11 3.2 §6.68) and C_EncapsulateKey / C_DecapsulateKey (§5.18)
through the built library; every encapsulation decapsulated by pyca/cryptography and every
pyca encapsulation decapsulated by the library. docs/pqc.md."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as S
from p11 import P11, Template, ffi, raises_ckr
from pqc_util import decapsulate, encapsulate, secret_template
from vectors_abi import mech_info, unwrap, wrap

SETS = {S.CKP_ML_KEM_768: (mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey, 1184, 1088),
        S.CKP_ML_KEM_1024: (mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey, 1568, 1568)}


def pair(p: P11, s: int, ckp: int = S.CKP_ML_KEM_768, pub: dict[int, Any] | None = None,
         **priv: Any) -> tuple[int, int]:
    private = {S.CKA_TOKEN: False}
    private.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in priv.items()})
    return p.generate_key_pair(s, S.CKM_ML_KEM_KEY_PAIR_GEN,
                               {S.CKA_TOKEN: False, S.CKA_PARAMETER_SET: ckp, **(pub or {})}, private)


def value(p: P11, s: int, h: int) -> bytes:
    return p.get(s, h, S.CKA_VALUE)


def count_objects(p: P11, s: int) -> int:
    return len(p.find(s, {}))


@pytest.mark.parametrize("ckp", list(SETS))
def test_encapsulation_both_ways_with_pyca(token: P11, user_session: int, ckp: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s, ckp, extractable=True)
    priv_cls, pub_cls, pk_len, ct_len = SETS[ckp]
    assert token.get(s, hpub, S.CKA_KEY_TYPE) == S.CKK_ML_KEM and len(value(token, s, hpub)) == pk_len
    assert token.get(s, hpub, S.CKA_ENCAPSULATE) is True and token.get(s, hpriv, S.CKA_DECAPSULATE) is True
    key = priv_cls.from_seed_bytes(token.get(s, hpriv, S.CKA_SEED))
    assert key.public_key().public_bytes_raw() == value(token, s, hpub)
    # the library encapsulates, pyca decapsulates
    ct, hsecret = encapsulate(token, s, hpub)
    assert len(ct) == ct_len
    assert value(token, s, hsecret) == key.decapsulate(ct)
    assert token.get(s, hsecret, S.CKA_VALUE_LEN) == 32 and token.get(s, hsecret, S.CKA_LOCAL) is False
    # pyca encapsulates, the library decapsulates
    secret, ct2 = pub_cls.from_public_bytes(value(token, s, hpub)).encapsulate()
    assert value(token, s, decapsulate(token, s, hpriv, ct2)) == secret
    # the library on both sides
    ct3, h3 = encapsulate(token, s, hpub)
    assert value(token, s, decapsulate(token, s, hpriv, ct3)) == value(token, s, h3)


def test_ml_kem_512_on_pqcrypto(token: P11, user_session: int) -> None:
    """ML-KEM-512 (not in pyca) runs on the pqcrypto package from keys the module expands from
    their seed: every encapsulation decapsulated by pqcrypto on the token's own dk, pqcrypto's
    decapsulated by the token; the SPKI is the one pyca writes for 768/1024 with 512's OID; the key wraps and unwraps (PKCS#8)."""
    from pqcrypto.kem import ml_kem_512

    s = user_session
    hpub, hpriv = pair(token, s, S.CKP_ML_KEM_512, extractable=True)
    ek, dk = value(token, s, hpub), value(token, s, hpriv)
    assert len(ek) == 800 and len(dk) == 1632 and len(token.get(s, hpriv, S.CKA_SEED)) == 64
    spki = token.get(s, hpub, S.CKA_PUBLIC_KEY_INFO)
    assert spki == bytes.fromhex("30820332300b060960864801650304040103820321") + b"\x00" + ek
    ct, h = encapsulate(token, s, hpub)
    assert len(ct) == 768 and ml_kem_512.decaps(dk, ct) == value(token, s, h)
    ct2, secret = ml_kem_512.encaps(ek)
    assert value(token, s, decapsulate(token, s, hpriv, ct2)) == secret
    with raises_ckr(S.CKR_WRAPPED_KEY_LEN_RANGE):
        decapsulate(token, s, hpriv, ct2[:-1])
    kek = token.create(s, {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False,
                           S.CKA_WRAP: True, S.CKA_UNWRAP: True, S.CKA_VALUE: bytes(range(16))})
    blob = wrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, hpriv)
    back = unwrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, blob,
                  {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                   S.CKA_EXTRACTABLE: True})
    assert token.get(s, back, S.CKA_PARAMETER_SET) == S.CKP_ML_KEM_512 and value(token, s, back) == dk
    bad_ek = bytes([0xFF, 0xFF]) + ek[2:]  # a coefficient >= q: FIPS 203's modulus check
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                         S.CKA_PARAMETER_SET: S.CKP_ML_KEM_512, S.CKA_VALUE: bad_ek})


def test_parameter_set_rules(token: P11, user_session: int) -> None:
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        pair(token, user_session, 4)
    with raises_ckr(S.CKR_TEMPLATE_INCOMPLETE):
        token.generate_key_pair(user_session, S.CKM_ML_KEM_KEY_PAIR_GEN, {S.CKA_TOKEN: False}, {S.CKA_TOKEN: False})


def test_ciphertext_buffer_protocol_makes_no_key(token: P11, user_session: int) -> None:
    """3.2 §5.18 / §5.2: a NULL pCiphertext answers the length, a short buffer
    CKR_BUFFER_TOO_SMALL with the length; neither makes a key."""
    s = user_session
    hpub, hpriv = pair(token, s)
    before = count_objects(token, s)
    m, _keep = token.mechanism(S.CKM_ML_KEM)
    t = Template(secret_template())
    n, h = ffi.new("CK_ULONG *"), ffi.new("CK_OBJECT_HANDLE *", 0)
    token.check("C_EncapsulateKey", s, m, hpub, t.array, t.count, ffi.NULL, n, h)
    assert n[0] == 1088 and h[0] == 0 and count_objects(token, s) == before
    n[0] = 1087
    small = ffi.new("unsigned char[]", 1087)
    assert token.call("C_EncapsulateKey", s, m, hpub, t.array, t.count, small, n, h) == S.CKR_BUFFER_TOO_SMALL
    assert n[0] == 1088 and h[0] == 0 and count_objects(token, s) == before
    buf = ffi.new("unsigned char[]", 2000)
    n[0] = 2000
    token.check("C_EncapsulateKey", s, m, hpub, t.array, t.count, buf, n, h)
    assert n[0] == 1088 and h[0] != 0 and count_objects(token, s) == before + 1
    assert value(token, s, decapsulate(token, s, hpriv, ffi.buffer(buf, 1088)[:])) == value(token, s, h[0])


def test_argument_and_mechanism_errors(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    m, _keep = token.mechanism(S.CKM_ML_KEM)
    t = Template(secret_template())
    n, h = ffi.new("CK_ULONG *"), ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_EncapsulateKey", s, m, hpub, t.array, t.count, ffi.NULL, ffi.NULL, h) == S.CKR_ARGUMENTS_BAD
    assert token.call("C_EncapsulateKey", s, m, hpub, t.array, t.count, ffi.NULL, n, ffi.NULL) == S.CKR_ARGUMENTS_BAD
    assert token.call("C_EncapsulateKey", s, ffi.NULL, hpub, t.array, t.count, ffi.NULL, n, h) == S.CKR_ARGUMENTS_BAD
    ct, _ = encapsulate(token, s, hpub)
    assert token.call("C_DecapsulateKey", s, m, hpriv, t.array, t.count, ct, len(ct), ffi.NULL) == S.CKR_ARGUMENTS_BAD
    assert token.call("C_DecapsulateKey", s, m, hpriv, t.array, t.count, ffi.NULL, 5, h) == S.CKR_ARGUMENTS_BAD
    m_dsa, _keep2 = token.mechanism(S.CKM_ML_DSA)
    assert token.call("C_EncapsulateKey", s, m_dsa, hpub, t.array, t.count, ffi.NULL, n, h) == S.CKR_MECHANISM_INVALID
    assert token.call("C_DecapsulateKey", s, m_dsa, hpriv, t.array, t.count, ct, len(ct), h) == S.CKR_MECHANISM_INVALID
    assert token.call("C_EncapsulateKey", s, m, 0xDEAD, t.array, t.count, ffi.NULL, n, h) == S.CKR_KEY_HANDLE_INVALID
    assert token.call("C_EncapsulateKey", 0xBAD, m, hpub, t.array, t.count, ffi.NULL, n, h) \
        == S.CKR_SESSION_HANDLE_INVALID
    # the wrong half of the pair: no CKA_ENCAPSULATE on a private key, no CKA_DECAPSULATE on a public one
    assert token.call("C_EncapsulateKey", s, m, hpriv, t.array, t.count, ffi.NULL, n, h) \
        == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    assert token.call("C_DecapsulateKey", s, m, hpub, t.array, t.count, ct, len(ct), h) \
        == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    with raises_ckr(S.CKR_WRAPPED_KEY_LEN_RANGE):
        decapsulate(token, s, hpriv, ct[:-1])


def test_implicit_rejection_of_a_modified_ciphertext(token: P11, user_session: int) -> None:
    """FIPS 203 Decaps never fails on a ciphertext of the right length: a modified one gives
    another (pseudo-random) secret, and so does the library."""
    s = user_session
    hpub, hpriv = pair(token, s)
    ct, h = encapsulate(token, s, hpub)
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    assert value(token, s, decapsulate(token, s, hpriv, bad)) != value(token, s, h)


def test_encapsulate_and_decapsulate_flags_enforced(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s, pub={S.CKA_ENCAPSULATE: False}, decapsulate=False)
    m, _keep = token.mechanism(S.CKM_ML_KEM)
    t = Template(secret_template())
    n, h = ffi.new("CK_ULONG *"), ffi.new("CK_OBJECT_HANDLE *")
    assert token.call("C_EncapsulateKey", s, m, hpub, t.array, t.count, ffi.NULL, n, h) \
        == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    other_pub, _ = pair(token, s)
    ct, _ = encapsulate(token, s, other_pub)
    assert token.call("C_DecapsulateKey", s, m, hpriv, t.array, t.count, ct, len(ct), h) \
        == S.CKR_KEY_FUNCTION_NOT_PERMITTED
    # CKA_ALLOWED_MECHANISMS applies as to every key use
    hpub2, _ = pair(token, s, pub={S.CKA_ALLOWED_MECHANISMS: (S.CKM_ML_DSA,)})
    assert token.call("C_EncapsulateKey", s, m, hpub2, t.array, t.count, ffi.NULL, n, h) == S.CKR_MECHANISM_INVALID


def test_new_key_template_rules(token: P11, user_session: int) -> None:
    """The caller's template makes the key: an AES key of CKA_VALUE_LEN bytes (the secret's
    first bytes) that encrypts; more than the 32-byte secret, a value in the template, or
    another class are refused."""
    s = user_session
    hpub, hpriv = pair(token, s, extractable=True)
    aes = secret_template(key_type=S.CKK_AES, value_len=16, encrypt=True, decrypt=True)
    ct, h = encapsulate(token, s, hpub, aes)
    full = mlkem.MLKEM768PrivateKey.from_seed_bytes(token.get(s, hpriv, S.CKA_SEED)).decapsulate(ct)
    assert value(token, s, h) == full[:16] and token.get(s, h, S.CKA_KEY_TYPE) == S.CKK_AES
    hd = decapsulate(token, s, hpriv, ct, aes)
    assert value(token, s, hd) == full[:16]
    iv = bytes(16)
    enc = token.encrypt(s, S.CKM_AES_CBC, h, bytes(32), iv)
    assert enc == Cipher(algorithms.AES(full[:16]), modes.CBC(iv)).encryptor().update(bytes(32))
    # no key type: a generic secret of all 32 bytes
    _, hg = encapsulate(token, s, hpub, {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_TOKEN: False, S.CKA_EXTRACTABLE: True})
    assert token.get(s, hg, S.CKA_KEY_TYPE) == S.CKK_GENERIC_SECRET and len(value(token, s, hg)) == 32
    for template, ckr in ((secret_template(value_len=33), S.CKR_TEMPLATE_INCONSISTENT),
                          (secret_template(key_type=S.CKK_AES, value_len=20), S.CKR_TEMPLATE_INCONSISTENT),
                          (secret_template(value=bytes(32)), S.CKR_TEMPLATE_INCONSISTENT),
                          ({**secret_template(), S.CKA_CLASS: S.CKO_DATA}, S.CKR_TEMPLATE_INCONSISTENT)):
        with raises_ckr(ckr):
            encapsulate(token, s, hpub, template)
        with raises_ckr(ckr):
            decapsulate(token, s, hpriv, ct, template)


def test_key_management_rules_of_derived_keys(token: P11, user_session: int) -> None:
    """docs/security.md for derived keys, KEM as key agreement: the secret inherits
    CKA_WRAP_WITH_TRUSTED, not the private key's SENSITIVE/EXTRACTABLE; no key under 16 bytes
    from a protected private key; the key's CKA_DECAPSULATE_TEMPLATE applies."""
    s = user_session
    hpub, hpriv = pair(token, s, sensitive=True, wrap_with_trusted=True)
    ct, _ = encapsulate(token, s, hpub)
    h = decapsulate(token, s, hpriv, ct)
    assert token.get(s, h, S.CKA_WRAP_WITH_TRUSTED) is True
    assert token.get(s, h, S.CKA_SENSITIVE) is False and len(value(token, s, h)) == 32
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        decapsulate(token, s, hpriv, ct, secret_template(wrap_with_trusted=False))
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        decapsulate(token, s, hpriv, ct, secret_template(value_len=8))
    hpub2, hpriv2 = _pair_with_decapsulate_template(token, s, {S.CKA_SENSITIVE: True})
    ct2, _ = encapsulate(token, s, hpub2)
    assert token.get(s, decapsulate(token, s, hpriv2, ct2), S.CKA_SENSITIVE) is True
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        decapsulate(token, s, hpriv2, ct2, secret_template(sensitive=False))


def _pair_with_decapsulate_template(p: P11, s: int, inner: dict[int, Any]) -> tuple[int, int]:
    """C_GenerateKeyPair with a CKA_DECAPSULATE_TEMPLATE, its nested CK_ATTRIBUTE array built
    here (tests/p11.Template encodes flat templates only)."""
    nested = Template(inner)
    outer = Template({S.CKA_TOKEN: False})
    arr = ffi.new("CK_ATTRIBUTE[2]")
    arr[0] = outer.array[0]
    arr[1].type = S.CKA_DECAPSULATE_TEMPLATE
    arr[1].pValue = nested.array
    arr[1].ulValueLen = ffi.sizeof("CK_ATTRIBUTE") * nested.count
    pub = Template({S.CKA_TOKEN: False, S.CKA_PARAMETER_SET: S.CKP_ML_KEM_768})
    m, _keep = p.mechanism(S.CKM_ML_KEM_KEY_PAIR_GEN)
    hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
    p.check("C_GenerateKeyPair", s, m, pub.array, pub.count, arr, 2, hp, hq)
    return hp[0], hq[0]


def test_session_and_login_rules(token: P11, user_session: int) -> None:
    s = user_session
    hpub, _ = pair(token, s)
    ro = token.open(0, rw=False)
    with raises_ckr(S.CKR_SESSION_READ_ONLY):
        encapsulate(token, ro, hpub, secret_template(token=True))
    ct, h = encapsulate(token, ro, hpub)  # a session object is fine in a read-only session
    assert len(ct) == 1088 and h


def test_import_by_seed(token: P11, user_session: int) -> None:
    s = user_session
    key = mlkem.MLKEM1024PrivateKey.generate()
    seed = key.private_bytes_raw()
    base = {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
            S.CKA_PARAMETER_SET: S.CKP_ML_KEM_1024, S.CKA_EXTRACTABLE: True}
    h = token.create(s, {**base, S.CKA_SEED: seed})
    dk = value(token, s, h)
    ek = key.public_key().public_bytes_raw()
    assert len(dk) == 3168 and dk[1536:1536 + 1568] == ek and dk[-32:] == seed[32:]  # dk_PKE || ek || H(ek) || z
    secret, ct = key.public_key().encapsulate()
    assert value(token, s, decapsulate(token, s, h, ct)) == secret
    token.create(s, {**base, S.CKA_SEED: seed, S.CKA_VALUE: dk})
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        token.create(s, {**base, S.CKA_SEED: seed, S.CKA_VALUE: bytes(3168)})
    with raises_ckr(S.CKR_TEMPLATE_INCOMPLETE):
        token.create(s, {**base, S.CKA_VALUE: dk})
    hpub = token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                            S.CKA_PARAMETER_SET: S.CKP_ML_KEM_1024, S.CKA_VALUE: ek})
    ct2, h2 = encapsulate(token, s, hpub)
    assert key.decapsulate(ct2) == value(token, s, h2)


def test_mechanism_info(token: P11) -> None:
    info = mech_info(token, S.CKM_ML_KEM_KEY_PAIR_GEN)
    assert (info.ulMinKeySize, info.ulMaxKeySize, info.flags) == (800, 1568, S.CKF_GENERATE_KEY_PAIR)
    info = mech_info(token, S.CKM_ML_KEM)
    assert (info.ulMinKeySize, info.ulMaxKeySize, info.flags) == (800, 1568, S.CKF_ENCAPSULATE | S.CKF_DECAPSULATE)


@pytest.mark.parametrize("ckp", list(SETS))
def test_wrap_and_unwrap_a_private_key(token: P11, user_session: int, ckp: int) -> None:
    """The existing PKCS#8 wrapping carries ML-KEM keys (pyca's seed form); the unwrapped key
    decapsulates what the original's public key encapsulates."""
    s = user_session
    hpub, hpriv = pair(token, s, ckp, extractable=True)
    kek = token.create(s, {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False,
                           S.CKA_WRAP: True, S.CKA_UNWRAP: True, S.CKA_VALUE: bytes(range(32))})
    blob = wrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, hpriv)
    back = unwrap(token, s, S.CKM_AES_KEY_WRAP_PAD, kek, blob,
                  {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                   S.CKA_EXTRACTABLE: True})
    assert token.get(s, back, S.CKA_SEED) == token.get(s, hpriv, S.CKA_SEED)
    assert token.get(s, back, S.CKA_DECAPSULATE) is True
    ct, h = encapsulate(token, s, hpub)
    assert value(token, s, decapsulate(token, s, back, ct)) == value(token, s, h)


def test_encapsulation_under_threads_on_shared_keys(token: P11, user_session: int) -> None:
    """6 threads, each in its own session, encapsulate to one public key and decapsulate with one
    private key (the keys' per-object caches are shared): every secret is what pyca's decapsulation
    of the same ciphertext gives, on both sides, and no thread hangs or fails."""
    import threading


    hpub, hpriv = pair(token, user_session, S.CKP_ML_KEM_768, extractable=True)
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(token.get(user_session, hpriv, S.CKA_SEED))
    failures: list[str] = []

    def worker(i: int) -> None:
        try:
            s = token.open(0)
            for _ in range(10):
                ct, h = encapsulate(token, s, hpub)
                want = key.decapsulate(ct)
                if value(token, s, h) != want or value(token, s, decapsulate(token, s, hpriv, ct)) != want:
                    failures.append(f"thread {i}: secrets differ")
        except Exception as exc:  # a CKR from any call is a failure of the test
            failures.append(f"thread {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert failures == []
