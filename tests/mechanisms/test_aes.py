"""AES mechanisms through the registry: NIST CAVP / RFC known answers, pyca and openssl
cross-checks, multi-part == one-shot, and the spec's error codes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import cmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import registry
from cryptoki_shim.mechanisms.params import AesCtrParams, GcmParams
from cryptoki_shim.spec import (
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE,
    CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT,
    CKF_SIGN,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_WRAP,
    CKK_AES,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_AES_CTR,
    CKM_AES_ECB,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKM_AES_MAC,
    CKM_AES_MAC_GENERAL,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
)

VECTORS = Path(cryptography_vectors.__file__).parent


class View:
    """A KeyView: typed attributes and a per-object cache."""

    def __init__(self, attrs: dict) -> None:
        self.attrs = attrs
        self.cache: dict = {}


def aes_view(key: bytes) -> View:
    return View({CKA_KEY_TYPE: CKK_AES, CKA_VALUE: key, CKA_VALUE_LEN: len(key)})


def load_nist(path: Path) -> list[dict]:
    """NIST .rsp/.txt: blocks of ``NAME = value`` separated by blank lines; [SECTION]
    headers (ENCRYPT/DECRYPT, Taglen ...) are carried into each record in lower case."""
    records: list[dict] = []
    section: dict = {}
    current: dict = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            if current:
                records.append({**section, **current})
                current = {}
            continue
        if line.startswith("[") and line.endswith("]"):
            body = line[1:-1]
            if "=" in body:
                k, v = body.split("=", 1)
                section[k.strip().lower()] = v.strip()
            else:
                section = {"section": body}
            continue
        if line == "FAIL":
            current["fail"] = True
            continue
        if "=" in line:
            k, v = line.split("=", 1)
            current[k.strip().lower()] = v.strip()
    if current:
        records.append({**section, **current})
    return records


def run(mech: int, key: bytes, param, data: bytes, encrypt: bool = True) -> bytes:
    entry = registry.lookup(mech)
    init = entry.family.encrypt_init if encrypt else entry.family.decrypt_init
    return init(entry, param, aes_view(key)).oneshot(data)


def run_parts(mech: int, key: bytes, param, chunks: list[bytes], encrypt: bool = True) -> tuple[list[bytes], bytes]:
    entry = registry.lookup(mech)
    init = entry.family.encrypt_init if encrypt else entry.family.decrypt_init
    ctx = init(entry, param, aes_view(key))
    outs = [ctx.update(c) for c in chunks]
    return outs, ctx.final()


# --- registration --------------------------------------------------------------------


def test_entries_flags_and_sizes():
    for mech in (CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR, CKM_AES_GCM):
        e = registry.lookup(mech)
        # the AEAD mode also runs the message-based functions (3.0 §5.9, §5.11)
        aead = CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT if mech == CKM_AES_GCM else 0
        assert e.flags == CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP | aead
        assert (e.min_key_size, e.max_key_size) == (16, 32)
        assert e.key_types == {CKK_AES}
    for mech in (CKM_AES_CMAC, CKM_AES_CMAC_GENERAL, CKM_AES_MAC, CKM_AES_MAC_GENERAL):
        assert registry.lookup(mech).flags == CKF_SIGN | CKF_VERIFY
    assert registry.lookup(CKM_AES_KEY_GEN).flags == CKF_GENERATE


# --- NIST CAVP known answers ---------------------------------------------------------


def _block_files(mode: str) -> list[Path]:
    return sorted((VECTORS / "ciphers" / "AES" / mode).glob("*.rsp"))


@pytest.mark.parametrize("mech,mode", [(CKM_AES_ECB, "ECB"), (CKM_AES_CBC, "CBC")])
def test_nist_cavp_ecb_cbc(mech, mode):
    count = 0
    for path in _block_files(mode):
        for v in load_nist(path):
            key = bytes.fromhex(v["key"])
            iv = bytes.fromhex(v["iv"]) if "iv" in v else None
            pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
            if v["section"] == "ENCRYPT":
                assert run(mech, key, iv, pt) == ct, (path.name, v["count"])
            else:
                assert run(mech, key, iv, ct, encrypt=False) == pt, (path.name, v["count"])
            count += 1
    assert count > 500


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_rfc3686_ctr_vectors(bits):
    vectors = load_nist(VECTORS / "ciphers" / "AES" / "CTR" / f"aes-{bits}-ctr.txt")
    assert vectors
    for v in vectors:
        key, cb = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
        pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
        param = AesCtrParams(32, cb)  # RFC 3686: 32-bit block counter
        assert run(CKM_AES_CTR, key, param, pt) == ct
        assert run(CKM_AES_CTR, key, param, ct, encrypt=False) == pt


def _gcm_vectors(kind: str):
    for path in sorted((VECTORS / "ciphers" / "AES" / "GCM").glob(f"gcm{kind}*.rsp")):
        yield from load_nist(path)


def test_nist_gcm_encrypt():
    done = refused = 0
    for v in _gcm_vectors("EncryptExtIV"):
        key, iv = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
        aad, pt = bytes.fromhex(v["aad"]), bytes.fromhex(v["pt"])
        tag = bytes.fromhex(v["tag"])
        param = GcmParams(iv, aad, len(tag) * 8)
        if len(iv) < 8:  # pyca's lower bound: refused as a parameter we cannot take
            with pytest.raises(CryptokiError) as err:
                run(CKM_AES_GCM, key, param, pt)
            assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID
            refused += 1
            continue
        assert run(CKM_AES_GCM, key, param, pt) == bytes.fromhex(v["ct"]) + tag
        done += 1
    assert done > 1000 and refused > 0


def test_nist_gcm_decrypt_including_fail_cases():
    ok = failed = 0
    for v in _gcm_vectors("Decrypt"):
        key, iv = bytes.fromhex(v["key"]), bytes.fromhex(v["iv"])
        if len(iv) < 8:
            continue
        tag = bytes.fromhex(v["tag"])
        param = GcmParams(iv, bytes.fromhex(v["aad"]), len(tag) * 8)
        data = bytes.fromhex(v["ct"]) + tag
        if v.get("fail"):
            with pytest.raises(CryptokiError) as err:
                run(CKM_AES_GCM, key, param, data, encrypt=False)
            assert err.value.ckr == CKR_ENCRYPTED_DATA_INVALID
            failed += 1
        else:
            assert run(CKM_AES_GCM, key, param, data, encrypt=False) == bytes.fromhex(v["pt"])
            ok += 1
    assert ok > 500 and failed > 100


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_nist_sp800_38b_cmac(bits):
    vectors = load_nist(VECTORS / "CMAC" / f"nist-800-38b-aes{bits}.txt")
    assert vectors
    entry = registry.lookup(CKM_AES_CMAC)
    for v in vectors:
        key, msg, out = bytes.fromhex(v["key"]), bytes.fromhex(v["message"]), bytes.fromhex(v["output"])
        assert entry.family.sign_init(entry, None, aes_view(key)).oneshot(msg) == out
        entry.family.verify_init(entry, None, aes_view(key)).oneshot(msg, out)


# --- cross-checks against pyca and openssl -------------------------------------------


@settings(max_examples=50, deadline=None)
@given(key=st.sampled_from([16, 24, 32]).map(os.urandom), data=st.binary(max_size=200), iv=st.binary(min_size=16, max_size=16))
def test_cbc_pad_matches_pyca(key, data, iv):
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    expected = enc.update(padder.update(data) + padder.finalize()) + enc.finalize()
    assert run(CKM_AES_CBC_PAD, key, iv, data) == expected
    assert run(CKM_AES_CBC_PAD, key, iv, expected, encrypt=False) == data


@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from([16, 32]).map(os.urandom), data=st.binary(max_size=200), iv=st.binary(min_size=12, max_size=12), aad=st.binary(max_size=40))
def test_gcm_matches_pyca_aesgcm(key, data, iv, aad):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    expected = AESGCM(key).encrypt(iv, data, aad)
    assert run(CKM_AES_GCM, key, GcmParams(iv, aad, 128), data) == expected
    # a truncated tag is the leading bytes of the full one
    assert run(CKM_AES_GCM, key, GcmParams(iv, aad, 96), data) == expected[:-4]


@settings(max_examples=30, deadline=None)
@given(key=st.sampled_from([16, 24, 32]).map(os.urandom), msg=st.binary(max_size=100), n=st.integers(1, 16))
def test_cmac_general_matches_pyca(key, msg, n):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(msg)
    entry = registry.lookup(CKM_AES_CMAC_GENERAL)
    assert entry.family.sign_init(entry, n, aes_view(key)).oneshot(msg) == c.finalize()[:n]


def test_aes_mac_is_cbc_mac_with_zero_padding():
    key, msg = os.urandom(16), os.urandom(37)
    padded = msg + bytes(-len(msg) % 16)
    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    last = (enc.update(padded) + enc.finalize())[-16:]
    entry = registry.lookup(CKM_AES_MAC)
    assert entry.family.sign_init(entry, None, aes_view(key)).oneshot(msg) == last[:8]
    general = registry.lookup(CKM_AES_MAC_GENERAL)
    assert general.family.sign_init(general, 12, aes_view(key)).oneshot(msg) == last[:12]


openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@openssl
@pytest.mark.parametrize("bits", [128, 256])
def test_cbc_pad_equals_openssl_enc(bits):
    key, iv, data = os.urandom(bits // 8), os.urandom(16), os.urandom(100)
    out = subprocess.run(
        ["openssl", "enc", f"-aes-{bits}-cbc", "-K", key.hex(), "-iv", iv.hex()], input=data, capture_output=True, check=True
    ).stdout
    assert run(CKM_AES_CBC_PAD, key, iv, data) == out


@openssl
def test_ecb_and_ctr_equal_openssl_enc():
    key, data = os.urandom(16), os.urandom(64)
    ecb = subprocess.run(
        ["openssl", "enc", "-aes-128-ecb", "-nopad", "-K", key.hex()], input=data, capture_output=True, check=True
    ).stdout
    assert run(CKM_AES_ECB, key, None, data) == ecb
    cb = os.urandom(16)
    ctr = subprocess.run(
        ["openssl", "enc", "-aes-128-ctr", "-K", key.hex(), "-iv", cb.hex()], input=data[:50], capture_output=True, check=True
    ).stdout
    assert run(CKM_AES_CTR, key, AesCtrParams(128, cb), data[:50]) == ctr


# --- multi-part == one-shot ----------------------------------------------------------


def _chunk(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


def _params(mech: int):
    return {
        CKM_AES_ECB: None,
        CKM_AES_CBC: os.urandom(16),
        CKM_AES_CBC_PAD: os.urandom(16),
        CKM_AES_CTR: AesCtrParams(64, os.urandom(8) + bytes(8)),
        CKM_AES_GCM: GcmParams(os.urandom(12), b"header", 128),
    }[mech]


@settings(max_examples=40, deadline=None)
@given(
    mech=st.sampled_from([CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR, CKM_AES_GCM]),
    blocks=st.integers(0, 8),
    extra=st.integers(0, 15),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_multipart_equals_oneshot(mech, blocks, extra, cuts):
    if mech in (CKM_AES_ECB, CKM_AES_CBC):
        extra = 0  # no padding: whole blocks only
    key, param = os.urandom(32), _params(mech)
    data = os.urandom(16 * blocks + extra)
    ct = run(mech, key, param, data)
    outs, last = run_parts(mech, key, param, _chunk(data, cuts))
    assert b"".join(outs) + last == ct
    outs, last = run_parts(mech, key, param, _chunk(ct, cuts), encrypt=False)
    assert b"".join(outs) + last == data
    assert run(mech, key, param, ct, encrypt=False) == data


def test_length_hints_bound_the_output():
    key = os.urandom(16)
    for mech in (CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR, CKM_AES_GCM):
        entry, param = registry.lookup(mech), _params(mech)
        data = os.urandom(48)
        enc = entry.family.encrypt_init(entry, param, aes_view(key))
        hint = enc.length_hint("oneshot", len(data))
        ct = enc.oneshot(data)
        assert hint is not None and hint >= len(ct)
        dec = entry.family.decrypt_init(entry, param, aes_view(key))
        assert dec.length_hint("oneshot", len(ct)) >= len(data)


# --- GCM: authentication before release ----------------------------------------------


def test_gcm_tampered_tag_is_encrypted_data_invalid():
    key, param = os.urandom(16), GcmParams(os.urandom(12), b"aad", 128)
    ct = bytearray(run(CKM_AES_GCM, key, param, b"attack at dawn"))
    ct[-1] ^= 1
    with pytest.raises(CryptokiError) as err:
        run(CKM_AES_GCM, key, param, bytes(ct), encrypt=False)
    assert err.value.ckr == CKR_ENCRYPTED_DATA_INVALID


def test_gcm_multipart_decrypt_releases_nothing_before_final():
    key, param = os.urandom(16), GcmParams(os.urandom(12), b"", 128)
    pt = os.urandom(100)
    ct = run(CKM_AES_GCM, key, param, pt)
    entry = registry.lookup(CKM_AES_GCM)
    ctx = entry.family.decrypt_init(entry, param, aes_view(key))
    assert [ctx.update(ct[i : i + 7]) for i in range(0, len(ct), 7)] == [b""] * len(range(0, len(ct), 7))
    assert ctx.length_hint("update", 10) == 10  # an upper bound: PyKCS11 sizes its buffer from it (see aes.py)
    assert ctx.final() == pt
    # tampered body: final raises and nothing was released before
    bad = bytearray(ct)
    bad[3] ^= 0x80
    ctx = entry.family.decrypt_init(entry, param, aes_view(key))
    assert ctx.update(bytes(bad)) == b""
    with pytest.raises(CryptokiError) as err:
        ctx.final()
    assert err.value.ckr == CKR_ENCRYPTED_DATA_INVALID


@pytest.mark.parametrize("param", [GcmParams(b"", b"", 128), GcmParams(bytes(12), b"", 130), GcmParams(bytes(12), b"", 0), b"x" * 16, None])
def test_gcm_bad_params(param):
    entry = registry.lookup(CKM_AES_GCM)
    with pytest.raises(CryptokiError) as err:
        entry.family.encrypt_init(entry, param, aes_view(os.urandom(16)))
    assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


def test_gcm_ciphertext_shorter_than_tag():
    with pytest.raises(CryptokiError) as err:
        run(CKM_AES_GCM, os.urandom(16), GcmParams(bytes(12), b"", 128), b"short", encrypt=False)
    assert err.value.ckr == CKR_ENCRYPTED_DATA_LEN_RANGE


# --- other error codes ---------------------------------------------------------------


@pytest.mark.parametrize("mech", [CKM_AES_ECB, CKM_AES_CBC])
def test_unpadded_modes_need_whole_blocks(mech):
    param = _params(mech)
    with pytest.raises(CryptokiError) as err:
        run(mech, os.urandom(16), param, b"x" * 17)
    assert err.value.ckr == CKR_DATA_LEN_RANGE
    with pytest.raises(CryptokiError) as err:
        run(mech, os.urandom(16), param, b"x" * 17, encrypt=False)
    assert err.value.ckr == CKR_ENCRYPTED_DATA_LEN_RANGE
    # multi-part: the error comes at final
    entry = registry.lookup(mech)
    ctx = entry.family.encrypt_init(entry, param, aes_view(os.urandom(16)))
    assert len(ctx.update(b"y" * 20)) == 16
    with pytest.raises(CryptokiError) as err:
        ctx.final()
    assert err.value.ckr == CKR_DATA_LEN_RANGE


def test_cbc_pad_bad_padding_and_length():
    key, iv = os.urandom(16), os.urandom(16)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    bogus = enc.update(bytes(15) + b"\x11") + enc.finalize()  # pad byte 0x11 > 16
    with pytest.raises(CryptokiError) as err:
        run(CKM_AES_CBC_PAD, key, iv, bogus, encrypt=False)
    assert err.value.ckr == CKR_ENCRYPTED_DATA_INVALID
    for bad_len in (b"", b"z" * 15):
        with pytest.raises(CryptokiError) as err:
            run(CKM_AES_CBC_PAD, key, iv, bad_len, encrypt=False)
        assert err.value.ckr == CKR_ENCRYPTED_DATA_LEN_RANGE


@pytest.mark.parametrize("param", [None, b"short", AesCtrParams(64, bytes(16))])
def test_cbc_iv_must_be_16_bytes(param):
    with pytest.raises(CryptokiError) as err:
        run(CKM_AES_CBC, os.urandom(16), param, bytes(16))
    assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


def test_ctr_counter_overflow_is_data_len_range():
    # spec §2.11 example: 2 counter bits starting at 1 -> only 3 blocks
    cb = bytes(15) + b"\x01"
    key = os.urandom(16)
    assert len(run(CKM_AES_CTR, key, AesCtrParams(2, cb), bytes(48))) == 48
    with pytest.raises(CryptokiError) as err:
        run(CKM_AES_CTR, key, AesCtrParams(2, cb), bytes(49))
    assert err.value.ckr == CKR_DATA_LEN_RANGE
    for bits in (0, 129):
        with pytest.raises(CryptokiError) as err:
            run(CKM_AES_CTR, key, AesCtrParams(bits, cb), b"")
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


def test_mac_verify_errors():
    entry, key = registry.lookup(CKM_AES_CMAC), aes_view(os.urandom(16))
    tag = entry.family.sign_init(entry, None, key).oneshot(b"msg")
    with pytest.raises(CryptokiError) as err:
        entry.family.verify_init(entry, None, key).oneshot(b"msh", tag)
    assert err.value.ckr == CKR_SIGNATURE_INVALID
    with pytest.raises(CryptokiError) as err:
        entry.family.verify_init(entry, None, key).oneshot(b"msg", tag[:15])
    assert err.value.ckr == CKR_SIGNATURE_LEN_RANGE
    general = registry.lookup(CKM_AES_CMAC_GENERAL)
    for bad in (0, 17, None):
        with pytest.raises(CryptokiError) as err:
            general.family.sign_init(general, bad, key)
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


# --- key generation ------------------------------------------------------------------


@pytest.mark.parametrize("length", [16, 24, 32])
def test_aes_key_gen(length):
    entry = registry.lookup(CKM_AES_KEY_GEN)
    material = entry.family.generate_key(entry, None, {CKA_VALUE_LEN: length})
    assert len(material[CKA_VALUE]) == length
    assert material[CKA_VALUE_LEN] == length and material[CKA_KEY_TYPE] == CKK_AES
    assert material[CKA_VALUE] != entry.family.generate_key(entry, None, {CKA_VALUE_LEN: length})[CKA_VALUE]


def test_aes_key_gen_errors():
    entry = registry.lookup(CKM_AES_KEY_GEN)
    with pytest.raises(CryptokiError) as err:
        entry.family.generate_key(entry, None, {})
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
    for bad in (0, 15, 20, 33, 64):
        with pytest.raises(CryptokiError) as err:
            entry.family.generate_key(entry, None, {CKA_VALUE_LEN: bad})
        assert err.value.ckr == CKR_ATTRIBUTE_VALUE_INVALID
