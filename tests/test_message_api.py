"""The PKCS#11 3.0 message-based functions through the built .so (core/message.py,
abi/message.py): AES-GCM, AES-CCM and ChaCha20-Poly1305 messages cross-checked with pyca, the
IV generators and their write-back, IV reuse refused, the buffer protocol, wrong states, wrong
key flags, NULL arguments; signature messages for the registry's signature mechanisms."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from cryptoki_shim import spec as S
from p11 import P11, ffi, raises_ckr

CKG_NO_GENERATE, CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM = (
    S.CKG_NO_GENERATE, S.CKG_GENERATE, S.CKG_GENERATE_COUNTER, S.CKG_GENERATE_RANDOM)
END = S.CKF_END_OF_MESSAGE


def _secret(p11: P11, s: int, mech: int, key_type: int, length: int | None = 32, **flags: bool) -> int:
    attrs: dict[int, Any] = {S.CKA_TOKEN: False, S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True,
                             S.CKA_ENCRYPT: True, S.CKA_DECRYPT: True}
    if length is not None:
        attrs[S.CKA_VALUE_LEN] = length
    attrs.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in flags.items()})
    h = p11.generate_key(s, mech, attrs)
    assert p11.get(s, h, S.CKA_KEY_TYPE) == key_type
    return h


def aes_key(p11: P11, s: int, **flags: bool) -> tuple[int, bytes]:
    h = _secret(p11, s, S.CKM_AES_KEY_GEN, S.CKK_AES, **flags)
    return h, p11.get(s, h, S.CKA_VALUE)


def chacha_key(p11: P11, s: int) -> tuple[int, bytes]:
    h = _secret(p11, s, S.CKM_CHACHA20_KEY_GEN, S.CKK_CHACHA20, length=None)  # 256 bits by default
    return h, p11.get(s, h, S.CKA_VALUE)


class Gcm:
    """A CK_GCM_MESSAGE_PARAMS with its IV and tag buffers."""

    def __init__(self, iv: bytes, generator: int = CKG_NO_GENERATE, fixed_bits: int = 0, tag: bytes | None = None,
                 tag_bits: int = 128) -> None:
        self.iv = ffi.new("unsigned char[]", iv)
        self.tag = ffi.new("unsigned char[]", tag if tag is not None else bytes(tag_bits // 8))
        self.p = ffi.new("CK_GCM_MESSAGE_PARAMS *")
        self.p.pIv, self.p.ulIvLen, self.p.ulIvFixedBits, self.p.ivGenerator = self.iv, len(iv), fixed_bits, generator
        self.p.pTag, self.p.ulTagBits = self.tag, tag_bits
        self.size = ffi.sizeof("CK_GCM_MESSAGE_PARAMS")

    def iv_out(self) -> bytes:
        return ffi.buffer(self.iv, self.p.ulIvLen)[:]

    def tag_out(self) -> bytes:
        return ffi.buffer(self.tag, self.p.ulTagBits // 8)[:]


class Ccm:
    def __init__(self, nonce: bytes, data_len: int, generator: int = CKG_NO_GENERATE, mac: bytes | None = None,
                 mac_len: int = 16) -> None:
        self.nonce = ffi.new("unsigned char[]", nonce)
        self.mac = ffi.new("unsigned char[]", mac if mac is not None else bytes(mac_len))
        self.p = ffi.new("CK_CCM_MESSAGE_PARAMS *")
        self.p.ulDataLen, self.p.pNonce, self.p.ulNonceLen = data_len, self.nonce, len(nonce)
        self.p.ulNonceFixedBits, self.p.nonceGenerator, self.p.pMAC, self.p.ulMACLen = 0, generator, self.mac, mac_len
        self.size = ffi.sizeof("CK_CCM_MESSAGE_PARAMS")

    def tag_out(self) -> bytes:
        return ffi.buffer(self.mac, self.p.ulMACLen)[:]


class Chacha:
    def __init__(self, nonce: bytes, tag: bytes | None = None, nonce_len: int = 96) -> None:
        self.nonce = ffi.new("unsigned char[]", nonce)
        self.tag = ffi.new("unsigned char[]", tag if tag is not None else bytes(16))
        self.p = ffi.new("CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS *")
        self.p.pNonce, self.p.ulNonceLen, self.p.pTag = self.nonce, nonce_len, self.tag
        self.size = ffi.sizeof("CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS")

    def tag_out(self) -> bytes:
        return ffi.buffer(self.tag, 16)[:]


def init(p11: P11, s: int, fn: str, mech: int, key: int) -> None:
    m, _keep = p11.mechanism(mech)
    p11.check(fn, s, m, key)


def encrypt_message(p11: P11, s: int, prm: Any, aad: bytes, data: bytes) -> bytes:
    n = ffi.new("CK_ULONG *", len(data))
    out = ffi.new("unsigned char[]", max(1, len(data)))
    p11.check("C_EncryptMessage", s, prm.p, prm.size, aad or ffi.NULL, len(aad), data, len(data), out, n)
    return ffi.buffer(out, n[0])[:]


def decrypt_message(p11: P11, s: int, prm: Any, aad: bytes, data: bytes) -> bytes:
    n = ffi.new("CK_ULONG *", len(data))
    out = ffi.new("unsigned char[]", max(1, len(data)))
    p11.check("C_DecryptMessage", s, prm.p, prm.size, aad or ffi.NULL, len(aad), data, len(data), out, n)
    return ffi.buffer(out, n[0])[:]


def next_part(p11: P11, s: int, fn: str, prm: Any, data: bytes, flags: int) -> bytes:
    n = ffi.new("CK_ULONG *")
    p11.check(fn, s, prm.p, prm.size, data, len(data), ffi.NULL, n, flags)  # length query
    out = ffi.new("unsigned char[]", max(1, n[0]))
    p11.check(fn, s, prm.p, prm.size, data, len(data), out, n, flags)
    return ffi.buffer(out, n[0])[:]


PT, AAD = b"attack at dawn, bring the message API" * 3, b"header"


# ---------------------------------------------------------------------- AES-GCM


def test_gcm_message_matches_pyca_and_decrypts(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    iv = bytes(range(12))
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    prm = Gcm(iv)
    ct = encrypt_message(token, s, prm, AAD, PT)
    assert ct + prm.tag_out() == AESGCM(value).encrypt(iv, PT, AAD)
    token.check("C_MessageEncryptFinal", s)

    init(token, s, "C_MessageDecryptInit", S.CKM_AES_GCM, key)
    assert decrypt_message(token, s, Gcm(iv, tag=prm.tag_out()), AAD, ct) == PT
    bad = bytes([prm.tag_out()[0] ^ 1]) + prm.tag_out()[1:]
    with raises_ckr(S.CKR_ENCRYPTED_DATA_INVALID):
        decrypt_message(token, s, Gcm(iv, tag=bad), AAD, ct)
    assert decrypt_message(token, s, Gcm(iv, tag=prm.tag_out()), AAD, ct) == PT  # the process stays
    token.check("C_MessageDecryptFinal", s)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_MessageDecryptFinal", s)


def test_gcm_short_tag(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    iv = b"\x07" * 12
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    prm = Gcm(iv, tag_bits=96)
    ct = encrypt_message(token, s, prm, b"", PT)
    assert ct + prm.tag_out() == AESGCM(value).encrypt(iv, PT, None)[:len(PT) + 12]
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        encrypt_message(token, s, Gcm(b"\x08" * 12, tag_bits=100), b"", PT)


def test_iv_generators_write_the_iv_back(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    aead = AESGCM(value)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    fixed = b"\xAA\xBB\xCC\xDD"
    seen = []
    for n in range(3):  # CKG_GENERATE_COUNTER: the fixed 32 bits, then a counter from zero
        prm = Gcm(fixed + bytes(8), CKG_GENERATE_COUNTER, fixed_bits=32)
        ct = encrypt_message(token, s, prm, AAD, PT)
        assert prm.iv_out() == fixed + n.to_bytes(8, "big")
        assert aead.decrypt(prm.iv_out(), ct + prm.tag_out(), AAD) == PT
        seen.append(prm.iv_out())
    for generator in (CKG_GENERATE_RANDOM, CKG_GENERATE):
        prm = Gcm(fixed + bytes(8), generator, fixed_bits=32)
        ct = encrypt_message(token, s, prm, AAD, PT)
        assert prm.iv_out()[:4] == fixed and prm.iv_out() not in seen
        assert aead.decrypt(prm.iv_out(), ct + prm.tag_out(), AAD) == PT
        seen.append(prm.iv_out())
    # too few bits left for a random IV, every bit fixed, an unknown generator
    for bad in (Gcm(bytes(12), CKG_GENERATE_RANDOM, fixed_bits=40), Gcm(bytes(12), CKG_GENERATE, fixed_bits=96),
                Gcm(bytes(12), 99), Gcm(bytes(12), CKG_GENERATE, fixed_bits=97)):
        with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
            encrypt_message(token, s, bad, AAD, PT)


def test_caller_iv_reuse_is_refused_within_a_process(token: P11, user_session: int) -> None:
    s = user_session
    key, _value = aes_key(token, s)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    iv = b"\x01" * 12
    encrypt_message(token, s, Gcm(iv), AAD, PT)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        encrypt_message(token, s, Gcm(iv), AAD, b"another message")
    again = Gcm(iv)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):  # Begin too
        token.check("C_EncryptMessageBegin", s, again.p, again.size, ffi.NULL, 0)
    # the counter's first IV, then the same IV supplied by the caller
    prm = Gcm(bytes(12), CKG_GENERATE_COUNTER)
    encrypt_message(token, s, prm, b"", PT)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        encrypt_message(token, s, Gcm(prm.iv_out()), b"", PT)
    encrypt_message(token, s, Gcm(b"\x02" * 12), AAD, PT)  # the process goes on
    token.check("C_MessageEncryptFinal", s)
    # a new process starts a new record (the spec's counter restarts too: the caller's fixed part)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    encrypt_message(token, s, Gcm(iv), AAD, PT)


def test_gcm_multi_part_message(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    prm = Gcm(b"\x00" * 4 + bytes(8), CKG_GENERATE_COUNTER, fixed_bits=32)
    token.check("C_EncryptMessageBegin", s, prm.p, prm.size, AAD, len(AAD))
    iv = prm.iv_out()
    ct = next_part(token, s, "C_EncryptMessageNext", prm, PT[:10], 0)
    ct += next_part(token, s, "C_EncryptMessageNext", prm, PT[10:], END)
    assert ct + prm.tag_out() == AESGCM(value).encrypt(iv, PT, AAD)
    token.check("C_MessageEncryptFinal", s)

    init(token, s, "C_MessageDecryptInit", S.CKM_AES_GCM, key)
    dprm = Gcm(iv, tag=prm.tag_out())
    token.check("C_DecryptMessageBegin", s, dprm.p, dprm.size, AAD, len(AAD))
    pt = next_part(token, s, "C_DecryptMessageNext", dprm, ct[:7], 0)
    assert pt == b""  # nothing released before the tag is checked
    pt += next_part(token, s, "C_DecryptMessageNext", dprm, ct[7:], END)
    assert pt == PT

    # a last part whose tag length differs from the Begin's is refused, and ends the message
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    begun = Gcm(b"\x0b" * 12)
    token.check("C_EncryptMessageBegin", s, begun.p, begun.size, ffi.NULL, 0)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        next_part(token, s, "C_EncryptMessageNext", Gcm(b"\x0b" * 12, tag_bits=96), PT, END)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        next_part(token, s, "C_EncryptMessageNext", begun, PT, END)


# ---------------------------------------------------------------------- CCM, ChaCha20-Poly1305


def test_ccm_message_one_part_and_multi_part(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    nonce = b"\x05" * 13
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_CCM, key)
    prm = Ccm(nonce, len(PT), mac_len=12)
    ct = encrypt_message(token, s, prm, AAD, PT)
    assert ct + prm.tag_out() == AESCCM(value, 12).encrypt(nonce, PT, AAD)
    gen = Ccm(bytes(13), len(PT), CKG_GENERATE_RANDOM)
    token.check("C_EncryptMessageBegin", s, gen.p, gen.size, AAD, len(AAD))
    generated = ffi.buffer(gen.nonce, 13)[:]
    assert generated != bytes(13)
    ct2 = next_part(token, s, "C_EncryptMessageNext", gen, PT[:5], 0)
    ct2 += next_part(token, s, "C_EncryptMessageNext", gen, PT[5:], END)
    assert AESCCM(value, 16).decrypt(generated, ct2 + gen.tag_out(), AAD) == PT
    with raises_ckr(S.CKR_DATA_LEN_RANGE):  # ulDataLen says otherwise
        encrypt_message(token, s, Ccm(b"\x06" * 13, len(PT) + 1), AAD, PT)

    init(token, s, "C_MessageDecryptInit", S.CKM_AES_CCM, key)
    assert decrypt_message(token, s, Ccm(nonce, len(PT), mac=prm.tag_out(), mac_len=12), AAD, ct) == PT


def test_chacha20_poly1305_single_part_and_messages(token: P11, user_session: int) -> None:
    s = user_session
    key, value = chacha_key(token, s)
    assert len(value) == 32
    nonce = b"\x09" * 12
    aead = ChaCha20Poly1305(value)
    for nonce_len in (96, 12):  # the spec's bits, or bytes
        prm = ffi.new("CK_SALSA20_CHACHA20_POLY1305_PARAMS *")
        nbuf, abuf = ffi.new("unsigned char[]", nonce), ffi.new("unsigned char[]", AAD)
        prm.pNonce, prm.ulNonceLen, prm.pAAD, prm.ulAADLen = nbuf, nonce_len, abuf, len(AAD)
        ct = token.encrypt(s, S.CKM_CHACHA20_POLY1305, key, PT, prm)
        assert ct == aead.encrypt(nonce, PT, AAD)
        assert token.decrypt(s, S.CKM_CHACHA20_POLY1305, key, ct, prm) == PT
    # multi-part single-part encryption streams and matches
    m, _keep = token.mechanism(S.CKM_CHACHA20_POLY1305, prm)
    token.check("C_EncryptInit", s, m, key)
    out = b""
    for piece in (PT[:3], PT[3:70], PT[70:]):
        n = ffi.new("CK_ULONG *", 200)
        buf = ffi.new("unsigned char[]", 200)
        token.check("C_EncryptUpdate", s, piece, len(piece), buf, n)
        out += ffi.buffer(buf, n[0])[:]
    n = ffi.new("CK_ULONG *", 16)
    buf = ffi.new("unsigned char[]", 16)
    token.check("C_EncryptFinal", s, buf, n)
    assert out + ffi.buffer(buf, n[0])[:] == aead.encrypt(nonce, PT, AAD)
    prm.ulNonceLen = 64  # the original 64-bit variant: not offered
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        token.encrypt(s, S.CKM_CHACHA20_POLY1305, key, PT, prm)

    init(token, s, "C_MessageEncryptInit", S.CKM_CHACHA20_POLY1305, key)
    msg = Chacha(nonce)
    ct = encrypt_message(token, s, msg, AAD, PT)
    assert ct + msg.tag_out() == aead.encrypt(nonce, PT, AAD)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):
        encrypt_message(token, s, Chacha(nonce), AAD, PT)  # no nonce twice under one key
    multi = Chacha(b"\x0a" * 12)
    token.check("C_EncryptMessageBegin", s, multi.p, multi.size, AAD, len(AAD))
    ct2 = next_part(token, s, "C_EncryptMessageNext", multi, PT[:33], 0)
    assert len(ct2) == 33  # streams
    ct2 += next_part(token, s, "C_EncryptMessageNext", multi, PT[33:], END)
    assert ct2 + multi.tag_out() == aead.encrypt(b"\x0a" * 12, PT, AAD)
    init(token, s, "C_MessageDecryptInit", S.CKM_CHACHA20_POLY1305, key)
    assert decrypt_message(token, s, Chacha(nonce, tag=msg.tag_out()), AAD, ct) == PT


def test_chacha20_key_length_is_fixed(token: P11, user_session: int) -> None:
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        _secret(token, user_session, S.CKM_CHACHA20_KEY_GEN, S.CKK_CHACHA20, length=16)


# ---------------------------------------------------------------------- protocol and states


def test_buffer_protocol_does_no_work_for_a_length(token: P11, user_session: int) -> None:
    s = user_session
    key, value = aes_key(token, s)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    prm = Gcm(bytes(12), CKG_GENERATE_COUNTER)
    n = ffi.new("CK_ULONG *")
    token.check("C_EncryptMessage", s, prm.p, prm.size, ffi.NULL, 0, PT, len(PT), ffi.NULL, n)
    assert n[0] == len(PT)
    small = ffi.new("unsigned char[]", 4)
    n[0] = 4
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_EncryptMessage", s, prm.p, prm.size, ffi.NULL, 0, PT, len(PT), small, n)
    assert n[0] == len(PT)
    ct = encrypt_message(token, s, prm, b"", PT)
    assert prm.iv_out() == bytes(12)  # the counter did not move for the query nor the short buffer
    assert AESGCM(value).decrypt(prm.iv_out(), ct + prm.tag_out(), None) == PT
    with raises_ckr(S.CKR_ARGUMENTS_BAD):  # NULL length pointer
        token.check("C_EncryptMessage", s, prm.p, prm.size, ffi.NULL, 0, PT, len(PT), small, ffi.NULL)
    # a last part answered too small stays; the retry completes the message
    prm2 = Gcm(b"\x03" * 12)
    token.check("C_EncryptMessageBegin", s, prm2.p, prm2.size, ffi.NULL, 0)
    n[0] = 1
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_EncryptMessageNext", s, prm2.p, prm2.size, PT, len(PT), small, n, END)
    assert n[0] == len(PT)
    ct = next_part(token, s, "C_EncryptMessageNext", prm2, PT, END)
    assert AESGCM(value).decrypt(b"\x03" * 12, ct + prm2.tag_out(), None) == PT


def test_wrong_states(token: P11, user_session: int) -> None:
    s = user_session
    key, _value = aes_key(token, s)
    prm = Gcm(b"\x04" * 12)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        encrypt_message(token, s, prm, b"", PT)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_MessageEncryptFinal", s)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    with raises_ckr(S.CKR_OPERATION_ACTIVE):
        init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):  # Next before Begin
        next_part(token, s, "C_EncryptMessageNext", prm, PT, END)
    # the classic operations coexist with a message process
    m, _keep = token.mechanism(S.CKM_AES_ECB)
    token.check("C_EncryptInit", s, m, key)
    token.check("C_EncryptInit", s, ffi.NULL, key)  # cancel
    token.check("C_EncryptMessageBegin", s, prm.p, prm.size, ffi.NULL, 0)
    other = Gcm(b"\x05" * 12)
    with raises_ckr(S.CKR_OPERATION_ACTIVE):
        token.check("C_EncryptMessageBegin", s, other.p, other.size, ffi.NULL, 0)
    with raises_ckr(S.CKR_OPERATION_ACTIVE):
        encrypt_message(token, s, Gcm(b"\x06" * 12), b"", PT)
    next_part(token, s, "C_EncryptMessageNext", prm, PT, 0)  # the message survived the refusals
    # an error in a Next ends the message, not the process
    n = ffi.new("CK_ULONG *", 100)
    buf = ffi.new("unsigned char[]", 100)
    with raises_ckr(S.CKR_ARGUMENTS_BAD):
        token.check("C_EncryptMessageNext", s, prm.p, prm.size, PT, len(PT), buf, n, 0x80)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        next_part(token, s, "C_EncryptMessageNext", prm, PT, END)
    encrypt_message(token, s, Gcm(b"\x07" * 12), b"", PT)
    # C_SessionCancel(CKF_MESSAGE_ENCRYPT) ends the process
    token.check("C_SessionCancel", s, S.CKF_MESSAGE_ENCRYPT)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        encrypt_message(token, s, Gcm(b"\x08" * 12), b"", PT)
    # NULL mechanism ends it too
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    token.check("C_MessageEncryptInit", s, ffi.NULL, key)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        encrypt_message(token, s, Gcm(b"\x09" * 12), b"", PT)
    # C_GetOperationState cannot save a message process
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    n = ffi.new("CK_ULONG *")
    assert token.call("C_GetOperationState", s, ffi.NULL, n) == S.CKR_STATE_UNSAVEABLE


def test_wrong_keys_mechanisms_and_params(token: P11, user_session: int) -> None:
    s = user_session
    no_encrypt, _v = aes_key(token, s, encrypt=False)
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, no_encrypt)
    key, _v = aes_key(token, s)
    with raises_ckr(S.CKR_MECHANISM_INVALID):  # no message-based CBC
        init(token, s, "C_MessageEncryptInit", S.CKM_AES_CBC, key)
    with raises_ckr(S.CKR_KEY_TYPE_INCONSISTENT):
        init(token, s, "C_MessageEncryptInit", S.CKM_CHACHA20_POLY1305, key)
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):
        init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, 0xDEAD)
    init(token, s, "C_MessageEncryptInit", S.CKM_AES_GCM, key)
    n = ffi.new("CK_ULONG *", 100)
    buf = ffi.new("unsigned char[]", 100)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):  # NULL parameter
        token.check("C_EncryptMessage", s, ffi.NULL, 0, ffi.NULL, 0, PT, len(PT), buf, n)
    prm = Gcm(b"\x01" * 12)
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):  # the size of another struct
        token.check("C_EncryptMessage", s, prm.p, prm.size - 8, ffi.NULL, 0, PT, len(PT), buf, n)
    prm.p.pTag = ffi.NULL
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):  # nowhere to put the tag
        token.check("C_EncryptMessage", s, prm.p, prm.size, ffi.NULL, 0, PT, len(PT), buf, n)


def test_mechanism_info_flags(token: P11) -> None:
    info = ffi.new("CK_MECHANISM_INFO *")
    for mech, flags in ((S.CKM_AES_GCM, S.CKF_MESSAGE_ENCRYPT | S.CKF_MESSAGE_DECRYPT),
                        (S.CKM_AES_CCM, S.CKF_MESSAGE_ENCRYPT | S.CKF_MESSAGE_DECRYPT),
                        (S.CKM_CHACHA20_POLY1305, S.CKF_MESSAGE_ENCRYPT | S.CKF_MESSAGE_DECRYPT | S.CKF_ENCRYPT),
                        (S.CKM_ECDSA_SHA256, S.CKF_MESSAGE_SIGN | S.CKF_MESSAGE_VERIFY),
                        (S.CKM_SHA256_HMAC, S.CKF_MESSAGE_SIGN | S.CKF_MESSAGE_VERIFY)):
        token.check("C_GetMechanismInfo", 0, mech, info)
        assert info.flags & flags == flags, S.ckm_name(mech)
    token.check("C_GetMechanismInfo", 0, S.CKM_AES_CBC, info)
    assert not info.flags & (S.CKF_MESSAGE_ENCRYPT | S.CKF_MESSAGE_SIGN)


# ---------------------------------------------------------------------- signature messages


def _ec_pair(p11: P11, s: int) -> tuple[int, int]:
    params = bytes.fromhex("06082a8648ce3d030107")  # P-256
    return p11.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, {S.CKA_EC_PARAMS: params, S.CKA_VERIFY: True,
                                                           S.CKA_TOKEN: False},
                                 {S.CKA_SIGN: True, S.CKA_TOKEN: False})


def sign_message(p11: P11, s: int, data: bytes) -> bytes:
    n = ffi.new("CK_ULONG *")
    p11.check("C_SignMessage", s, ffi.NULL, 0, data, len(data), ffi.NULL, n)
    buf = ffi.new("unsigned char[]", n[0])
    p11.check("C_SignMessage", s, ffi.NULL, 0, data, len(data), buf, n)
    return ffi.buffer(buf, n[0])[:]


def test_ecdsa_messages_verify_with_pyca(token: P11, user_session: int) -> None:
    s = user_session
    pub, priv = _ec_pair(token, s)
    point = token.get(s, pub, S.CKA_EC_POINT)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point[2:])
    init(token, s, "C_MessageSignInit", S.CKM_ECDSA_SHA256, priv)
    sigs = [sign_message(token, s, b"message %d" % i) for i in range(3)]
    # multi-part: Next with NULL pulSignatureLen feeds, then the last part brings the signature
    token.check("C_SignMessageBegin", s, ffi.NULL, 0)
    token.check("C_SignMessageNext", s, ffi.NULL, 0, b"multi ", 6, ffi.NULL, ffi.NULL)
    n = ffi.new("CK_ULONG *")
    token.check("C_SignMessageNext", s, ffi.NULL, 0, b"part", 4, ffi.NULL, n)  # length query
    buf = ffi.new("unsigned char[]", n[0])
    token.check("C_SignMessageNext", s, ffi.NULL, 0, b"part", 4, buf, n)
    multi = ffi.buffer(buf, n[0])[:]
    token.check("C_MessageSignFinal", s)

    def der(sig: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))

    for i, sig in enumerate(sigs):
        public.verify(der(sig), b"message %d" % i, ec.ECDSA(hashes.SHA256()))
    public.verify(der(multi), b"multi part", ec.ECDSA(hashes.SHA256()))

    init(token, s, "C_MessageVerifyInit", S.CKM_ECDSA_SHA256, pub)
    token.check("C_VerifyMessage", s, ffi.NULL, 0, b"message 1", 9, sigs[1], len(sigs[1]))
    with raises_ckr(S.CKR_SIGNATURE_INVALID):
        token.check("C_VerifyMessage", s, ffi.NULL, 0, b"message 1", 9, sigs[0], len(sigs[0]))
    token.check("C_VerifyMessageBegin", s, ffi.NULL, 0)
    token.check("C_VerifyMessageNext", s, ffi.NULL, 0, b"multi ", 6, ffi.NULL, 0)
    token.check("C_VerifyMessageNext", s, ffi.NULL, 0, b"part", 4, multi, len(multi))
    token.check("C_MessageVerifyFinal", s)
    with pytest.raises(InvalidSignature):
        public.verify(der(multi), b"other", ec.ECDSA(hashes.SHA256()))


def test_hmac_messages_and_refusals(token: P11, user_session: int) -> None:
    s = user_session
    key = token.generate_key(s, S.CKM_GENERIC_SECRET_KEY_GEN, {S.CKA_VALUE_LEN: 32, S.CKA_SIGN: True,
                                                               S.CKA_VERIFY: True, S.CKA_TOKEN: False,
                                                               S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True})
    value = token.get(s, key, S.CKA_VALUE)
    init(token, s, "C_MessageSignInit", S.CKM_SHA256_HMAC, key)
    mac = hmac.HMAC(value, hashes.SHA256())
    mac.update(b"data")
    assert sign_message(token, s, b"data") == mac.finalize()
    with raises_ckr(S.CKR_MECHANISM_PARAM_INVALID):  # signature messages take no parameter
        token.check("C_SignMessage", s, b"x", 1, b"d", 1, ffi.NULL, ffi.new("CK_ULONG *"))
    small = ffi.new("unsigned char[]", 4)
    n = ffi.new("CK_ULONG *", 4)
    with raises_ckr(S.CKR_BUFFER_TOO_SMALL):
        token.check("C_SignMessage", s, ffi.NULL, 0, b"data", 4, small, n)
    assert n[0] == 32
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_SignMessageNext", s, ffi.NULL, 0, b"d", 1, ffi.NULL, ffi.NULL)
    with raises_ckr(S.CKR_OPERATION_NOT_INITIALIZED):
        token.check("C_VerifyMessage", s, ffi.NULL, 0, b"d", 1, b"x" * 32, 32)
    with raises_ckr(S.CKR_MECHANISM_INVALID):  # an encryption mechanism cannot sign messages
        init(token, s, "C_MessageVerifyInit", S.CKM_AES_GCM, key)
    no_sign = token.generate_key(s, S.CKM_GENERIC_SECRET_KEY_GEN, {S.CKA_VALUE_LEN: 32, S.CKA_VERIFY: False,
                                                                   S.CKA_TOKEN: False})
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        init(token, s, "C_MessageVerifyInit", S.CKM_SHA256_HMAC, no_sign)


def test_always_authenticate_key_needs_a_context_login_per_message(token: P11, user_session: int) -> None:
    """CKA_ALWAYS_AUTHENTICATE: each signed message is a use of the key (a context login each)."""
    s = user_session
    _pub, priv = token.generate_key_pair(
        s, S.CKM_EC_KEY_PAIR_GEN, {S.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), S.CKA_TOKEN: False},
        {S.CKA_SIGN: True, S.CKA_TOKEN: False, S.CKA_ALWAYS_AUTHENTICATE: True})
    init(token, s, "C_MessageSignInit", S.CKM_ECDSA_SHA256, priv)
    n = ffi.new("CK_ULONG *", 64)
    buf = ffi.new("unsigned char[]", 64)
    with raises_ckr(S.CKR_USER_NOT_LOGGED_IN):
        token.check("C_SignMessage", s, ffi.NULL, 0, b"one", 3, buf, n)
    token.check("C_Login", s, S.CKU_CONTEXT_SPECIFIC, b"1234", 4)
    n[0] = 64
    token.check("C_SignMessage", s, ffi.NULL, 0, b"one", 3, buf, n)
    assert n[0] == 64
    n[0] = 64
    with raises_ckr(S.CKR_USER_NOT_LOGGED_IN):  # the next message needs its own login
        token.check("C_SignMessage", s, ffi.NULL, 0, b"two", 3, buf, n)
    token.check("C_Login", s, S.CKU_CONTEXT_SPECIFIC, b"1234", 4)
    token.check("C_SignMessage", s, ffi.NULL, 0, b"two", 3, buf, n)
    token.check("C_MessageSignFinal", s)  # the process ends even while waiting
