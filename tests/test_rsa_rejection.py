"""Issue 23, "decide and document": CKM_RSA_PKCS decryption of a malformed block, through
the built library. Default (``rsa_implicit_rejection = true``): CKR_OK with OpenSSL's
deterministic pseudo-random message (implicit rejection against Bleichenbacher/Marvin);
``false``: CKR_ENCRYPTED_DATA_INVALID as PKCS#11 3.0 §2.1.6 names it, and the operation ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cryptoki_shim import spec
from cryptoki_shim.mechanisms.rsa_rejection import eme_pkcs1_decode
from p11 import P11, SO_PIN, USER_PIN, ffi, raises_ckr, write_config


def i2b(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def session(p11: P11, key: rsa.RSAPrivateKey) -> tuple[int, int]:
    p11.init_token(0, SO_PIN, "test")
    s = p11.open(0)
    p11.login(s, SO_PIN, user=spec.CKU_SO)
    p11.init_pin(s, USER_PIN)
    p11.logout(s)
    p11.login(s, USER_PIN)
    n = key.private_numbers()
    h = p11.create(s, {
        spec.CKA_CLASS: spec.CKO_PRIVATE_KEY, spec.CKA_KEY_TYPE: spec.CKK_RSA, spec.CKA_DECRYPT: True,
        spec.CKA_MODULUS: i2b(n.public_numbers.n), spec.CKA_PUBLIC_EXPONENT: i2b(n.public_numbers.e),
        spec.CKA_PRIVATE_EXPONENT: i2b(n.d), spec.CKA_PRIME_1: i2b(n.p), spec.CKA_PRIME_2: i2b(n.q),
        spec.CKA_EXPONENT_1: i2b(n.dmp1), spec.CKA_EXPONENT_2: i2b(n.dmq1), spec.CKA_COEFFICIENT: i2b(n.iqmp)})
    return s, h


@pytest.fixture(params=[True, False], ids=["implicit", "explicit"])
def implicit(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lib_path: Path) -> Any:
    option = "" if request.param else "rsa_implicit_rejection = false\n"
    conf = write_config(tmp_path, slots=f'[[slots]]\nid = 0\nkdf_cost = "test"\n{option}')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    client = P11(lib_path)
    client.initialize()
    yield client, request.param
    client.finalize()


def raw_block(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """The ciphertext of a chosen k-byte block (the attacker's raw RSA public operation)."""
    pub = key.public_key().public_numbers()
    k = (pub.n.bit_length() + 7) // 8
    return pow(int.from_bytes(block, "big"), pub.e, pub.n).to_bytes(k, "big")


BAD_BLOCKS = {
    "type 1": lambda k: b"\x00\x01" + b"\xff" * (k - 19) + b"\x00" + bytes(16),
    "no separator": lambda k: b"\x00\x02" + b"\x11" * (k - 2),
    "short padding": lambda k: b"\x00\x02" + b"\x11" * 7 + b"\x00" + b"m" * (k - 10),
    "leading byte": lambda k: b"\x01\x02" + b"\x11" * 8 + b"\x00" + b"m" * (k - 11),
}


def test_good_blocks_decrypt_in_both_modes(implicit, rsa_key):
    p11, _ = implicit
    s, h = session(p11, rsa_key)
    k = rsa_key.key_size // 8
    for message in (b"hello", b"", b"x" * (k - 11)):
        ct = rsa_key.public_key().encrypt(message, padding.PKCS1v15())
        assert p11.decrypt(s, spec.CKM_RSA_PKCS, h, ct) == message
    # the shortest valid padding (8 bytes), built by hand
    block = b"\x00\x02" + b"\x11" * 8 + b"\x00" + b"m" * (k - 11)
    assert p11.decrypt(s, spec.CKM_RSA_PKCS, h, raw_block(rsa_key, block)) == b"m" * (k - 11)


@pytest.mark.parametrize("name", list(BAD_BLOCKS))
def test_bad_block(implicit, rsa_key, name):
    p11, is_implicit = implicit
    s, h = session(p11, rsa_key)
    ct = raw_block(rsa_key, BAD_BLOCKS[name](rsa_key.key_size // 8))
    if is_implicit:
        first = p11.decrypt(s, spec.CKM_RSA_PKCS, h, ct)
        assert first == p11.decrypt(s, spec.CKM_RSA_PKCS, h, ct)  # deterministic: no oracle in the result
        return
    m, _keep = p11.mechanism(spec.CKM_RSA_PKCS)
    with raises_ckr(spec.CKR_ENCRYPTED_DATA_INVALID):
        p11.decrypt(s, spec.CKM_RSA_PKCS, h, ct)
    with raises_ckr(spec.CKR_OPERATION_NOT_INITIALIZED):  # the error ended the operation
        p11.check("C_Decrypt", s, ct, len(ct), ffi.NULL, ffi.new("CK_ULONG *"))
    assert p11.call("C_DecryptInit", s, m, h) == spec.CKR_OK


def test_explicit_mode_keeps_length_and_range_checks(implicit, rsa_key):
    p11, _ = implicit
    s, h = session(p11, rsa_key)
    with raises_ckr(spec.CKR_ENCRYPTED_DATA_LEN_RANGE):
        p11.decrypt(s, spec.CKM_RSA_PKCS, h, bytes(rsa_key.key_size // 8 - 1))


def test_eme_pkcs1_decode_edges():
    k = 64
    assert eme_pkcs1_decode(b"\x00\x02" + b"\x01" * 8 + b"\x00" + b"m" * (k - 11)) == b"m" * (k - 11)
    assert eme_pkcs1_decode(b"\x00\x02" + b"\x01" * (k - 3) + b"\x00") == b""
    assert eme_pkcs1_decode(b"\x00\x02" + b"\x01" * 7 + b"\x00" + b"m" * (k - 10)) is None
    assert eme_pkcs1_decode(b"\x00\x02" + b"\x01" * (k - 2)) is None
    assert eme_pkcs1_decode(b"\x00\x00" + b"\x01" * 8 + b"\x00" + b"m" * (k - 11)) is None
    # the first zero after PS ends it, a later one is message data
    assert eme_pkcs1_decode(b"\x00\x02" + b"\x01" * 8 + b"\x00" + b"\x00m") == b"\x00m"
