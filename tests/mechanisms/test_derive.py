"""Key derivation through the registry: ECDH vs pyca's exchange(), HKDF vs RFC 5869,
SP 800-108 vs NIST CAVP and pyca's KBKDFHMAC, PBKDF2 vs hashlib."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.kbkdf import CounterLocation, KBKDFHMAC, Mode
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptoki_shim import der
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry
from cryptoki_shim.mechanisms.params import (
    EcdhDeriveParams,
    HkdfParams,
    Pbkd2Params,
    PrfDataParam,
    Sp800108CounterFormat,
    Sp800108DkmLengthFormat,
    Sp800108Params,
)
from cryptoki_shim.spec import (
    CK_SP800_108_BYTE_ARRAY,
    CK_SP800_108_DKM_LENGTH,
    CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS,
    CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS,
    CK_SP800_108_ITERATION_VARIABLE,
    CK_SP800_108_OPTIONAL_COUNTER,
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKD_NULL,
    CKD_SHA1_KDF,
    CKD_SHA256_KDF,
    CKD_SHA256_KDF_SP800,
    CKD_SHA512_KDF,
    CKF_DERIVE,
    CKF_GENERATE,
    CKF_HKDF_SALT_DATA,
    CKF_HKDF_SALT_KEY,
    CKF_HKDF_SALT_NULL,
    CKK_AES,
    CKK_EC,
    CKK_EC_MONTGOMERY,
    CKK_GENERIC_SECRET,
    CKM_AES_CMAC,
    CKM_ECDH1_DERIVE,
    CKM_HKDF_DATA,
    CKM_HKDF_DERIVE,
    CKM_PKCS5_PBKD2,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA224_HMAC,
    CKM_SHA256,
    CKM_SHA256_HMAC,
    CKM_SHA384_HMAC,
    CKM_SHA512_HMAC,
    CKM_SHA_1,
    CKM_SHA_1_HMAC,
    CKM_SP800_108_COUNTER_KDF,
    CKM_SP800_108_FEEDBACK_KDF,
    CKO_DATA,
    CKO_PRIVATE_KEY,
    CKO_SECRET_KEY,
    CKP_PKCS5_PBKD2_HMAC_SHA1,
    CKP_PKCS5_PBKD2_HMAC_SHA256,
    CKP_PKCS5_PBKD2_HMAC_SHA512,
    CKR_KEY_SIZE_RANGE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKZ_SALT_SPECIFIED,
)

KDF_VECTORS = Path(cryptography_vectors.__file__).parent / "KDF"


class View:
    def __init__(self, attrs: dict) -> None:
        self.attrs = attrs
        self.cache: dict = {}


def secret_view(value: bytes, key_type: int = CKK_GENERIC_SECRET) -> View:
    return View({CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: key_type, CKA_VALUE: value, CKA_VALUE_LEN: len(value)})


def private_view(key) -> View:
    return View({CKA_CLASS: CKO_PRIVATE_KEY, **keys.private_material(key)})


def derive(mech: int, param, base: View, template: dict) -> dict:
    entry = registry.lookup(mech)
    return entry.family.derive(entry, param, base, template)


def load_nist(path: Path) -> list[dict]:
    """Records start at ``COUNT``; [KEY=VALUE] section headers apply to the records after
    them (some files have blank lines inside a record, so blank lines do not split)."""
    records, section, current = [], {}, {}

    def flush() -> None:
        nonlocal current
        if current:
            records.append({**section, **current})
            current = {}

    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            flush()
            k, _, v = line[1:-1].partition("=")
            section[k.strip().lower()] = v.strip()
            continue
        k, _, v = line.partition("=")
        if k.strip().lower() == "count":
            flush()
        current[k.strip().lower()] = v.strip()
    flush()
    return records


def test_entries():
    ecdh = registry.lookup(CKM_ECDH1_DERIVE)
    assert ecdh.flags & CKF_DERIVE and ecdh.key_types == {CKK_EC, CKK_EC_MONTGOMERY}
    for mech in (CKM_HKDF_DERIVE, CKM_HKDF_DATA, CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF):
        assert registry.lookup(mech).flags == CKF_DERIVE
    assert registry.lookup(CKM_PKCS5_PBKD2).flags == CKF_GENERATE


# --- ECDH ----------------------------------------------------------------------------


def _ec_point(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
@pytest.mark.parametrize("as_der", [False, True])
def test_ecdh_null_kdf_equals_pyca_exchange(curve, as_der):
    ours, peer = ec.generate_private_key(curve), ec.generate_private_key(curve)
    point = _ec_point(peer)
    if as_der:
        point = der.tlv(0x04, point)
    out = derive(CKM_ECDH1_DERIVE, EcdhDeriveParams(CKD_NULL, b"", point), private_view(ours), {})
    expected = ours.exchange(ec.ECDH(), peer.public_key())
    assert out == {CKA_VALUE: expected, CKA_VALUE_LEN: len(expected)}


def test_ecdh_truncation_keeps_trailing_bytes_and_aes_length():
    ours, peer = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    z = ours.exchange(ec.ECDH(), peer.public_key())
    param = EcdhDeriveParams(CKD_NULL, b"", _ec_point(peer))
    out = derive(CKM_ECDH1_DERIVE, param, private_view(ours), {CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 16})
    assert out[CKA_VALUE] == z[-16:]
    with pytest.raises(CryptokiError) as err:
        derive(CKM_ECDH1_DERIVE, param, private_view(ours), {CKA_VALUE_LEN: 33})
    assert err.value.ckr == CKR_TEMPLATE_INCONSISTENT
    with pytest.raises(CryptokiError) as err:
        derive(CKM_ECDH1_DERIVE, param, private_view(ours), {CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 20})
    assert err.value.ckr == CKR_TEMPLATE_INCONSISTENT


@pytest.mark.parametrize("cls,size", [(x25519.X25519PrivateKey, 32), (x448.X448PrivateKey, 56)])
def test_ecdh_montgomery_equals_pyca_exchange(cls, size):
    ours, peer = cls.generate(), cls.generate()
    raw = peer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    for public in (raw, der.tlv(0x04, raw)):
        out = derive(CKM_ECDH1_DERIVE, EcdhDeriveParams(CKD_NULL, b"", public), private_view(ours), {})
        assert out[CKA_VALUE] == ours.exchange(peer.public_key())
        assert len(out[CKA_VALUE]) == size


@pytest.mark.parametrize("kdf,algo", [(CKD_SHA1_KDF, hashes.SHA1), (CKD_SHA256_KDF, hashes.SHA256), (CKD_SHA512_KDF, hashes.SHA512)])
def test_ecdh_x963_kdf_equals_pyca(kdf, algo):
    ours, peer = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    z = ours.exchange(ec.ECDH(), peer.public_key())
    shared = b"shared info"
    out = derive(CKM_ECDH1_DERIVE, EcdhDeriveParams(kdf, shared, _ec_point(peer)), private_view(ours), {CKA_VALUE_LEN: 24})
    assert out[CKA_VALUE] == X963KDF(algo(), 24, shared).derive(z)


def test_ecdh_x25519_sp800_concat_kdf_equals_pyca():
    ours, peer = x25519.X25519PrivateKey.generate(), x25519.X25519PrivateKey.generate()
    raw = peer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out = derive(CKM_ECDH1_DERIVE, EcdhDeriveParams(CKD_SHA256_KDF_SP800, b"ctx", raw), private_view(ours), {CKA_VALUE_LEN: 32})
    assert out[CKA_VALUE] == ConcatKDFHash(hashes.SHA256(), 32, b"ctx").derive(ours.exchange(peer.public_key()))


def test_ecdh_bad_params():
    ours, peer = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    view = private_view(ours)
    good_point = _ec_point(ec.generate_private_key(ec.SECP256R1()))
    off_curve = b"\x04" + bytes(64)
    cases = [
        EcdhDeriveParams(CKD_NULL, b"", _ec_point(peer)),  # point of another curve (wrong length)
        EcdhDeriveParams(CKD_NULL, b"", off_curve),
        EcdhDeriveParams(CKD_NULL, b"not allowed", good_point),
        EcdhDeriveParams(0x999, b"", good_point),
        None,
    ]
    for param in cases:
        with pytest.raises(CryptokiError) as err:
            derive(CKM_ECDH1_DERIVE, param, view, {})
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


# --- HKDF ----------------------------------------------------------------------------

_HKDF_HASH = {"SHA-256": CKM_SHA256, "SHA-1": CKM_SHA_1}


@pytest.mark.parametrize("name", ["rfc-5869-HKDF-SHA256.txt", "rfc-5869-HKDF-SHA1.txt"])
def test_hkdf_rfc5869_vectors(name):
    vectors = load_nist(KDF_VECTORS / name)
    assert vectors
    for v in vectors:
        ikm = bytes.fromhex(v["ikm"])
        salt, info = bytes.fromhex(v["salt"]), bytes.fromhex(v["info"])
        prf, length = _HKDF_HASH[v["hash"]], int(v["l"])
        salt_type = CKF_HKDF_SALT_DATA if salt else CKF_HKDF_SALT_NULL
        both = HkdfParams(True, True, prf, salt_type, salt, 0, info)
        assert derive(CKM_HKDF_DERIVE, both, secret_view(ikm), {CKA_VALUE_LEN: length})[CKA_VALUE] == bytes.fromhex(v["okm"])
        extract = HkdfParams(True, False, prf, salt_type, salt, 0, b"")
        prk = derive(CKM_HKDF_DERIVE, extract, secret_view(ikm), {})[CKA_VALUE]
        assert prk == bytes.fromhex(v["prk"])
        expand = HkdfParams(False, True, prf, CKF_HKDF_SALT_NULL, b"", 0, info)
        data = derive(CKM_HKDF_DATA, expand, secret_view(prk), {CKA_VALUE_LEN: length})
        assert data == {CKA_CLASS: CKO_DATA, CKA_VALUE: bytes.fromhex(v["okm"])}


def test_hkdf_salt_key_uses_resolved_value_and_errors():
    ikm, salt = os.urandom(32), os.urandom(32)
    with_key = HkdfParams(True, True, CKM_SHA256, CKF_HKDF_SALT_KEY, salt, 7, b"i")
    with_data = HkdfParams(True, True, CKM_SHA256, CKF_HKDF_SALT_DATA, salt, 0, b"i")
    t = {CKA_VALUE_LEN: 40}
    assert derive(CKM_HKDF_DERIVE, with_key, secret_view(ikm), t) == derive(CKM_HKDF_DERIVE, with_data, secret_view(ikm), t)
    with pytest.raises(CryptokiError) as err:
        derive(CKM_HKDF_DERIVE, HkdfParams(True, True, CKM_SHA256, CKF_HKDF_SALT_DATA, b"", 0, b""), secret_view(ikm), {})
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
    for bad in (
        HkdfParams(False, False, CKM_SHA256, CKF_HKDF_SALT_NULL, b"", 0, b""),
        HkdfParams(True, True, CKM_SHA1_RSA_PKCS, CKF_HKDF_SALT_NULL, b"", 0, b""),
        HkdfParams(True, True, CKM_SHA256, 0x40, b"", 0, b""),
    ):
        with pytest.raises(CryptokiError) as err:
            derive(CKM_HKDF_DERIVE, bad, secret_view(ikm), t)
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


# --- SP 800-108 ----------------------------------------------------------------------

_KBKDF_PRF = {
    "HMAC_SHA1": (CKM_SHA_1_HMAC, hashes.SHA1),
    "HMAC_SHA224": (CKM_SHA224_HMAC, hashes.SHA224),
    "HMAC_SHA256": (CKM_SHA256_HMAC, hashes.SHA256),
    "HMAC_SHA384": (CKM_SHA384_HMAC, hashes.SHA384),
    "HMAC_SHA512": (CKM_SHA512_HMAC, hashes.SHA512),
    "CMAC_AES128": (CKM_AES_CMAC, None),
    "CMAC_AES192": (CKM_AES_CMAC, None),
    "CMAC_AES256": (CKM_AES_CMAC, None),
}


def test_sp800_108_counter_nist_cavp():
    done = 0
    for v in load_nist(KDF_VECTORS / "nist-800-108-KBKDF-CTR.txt"):
        if v.get("prf") not in _KBKDF_PRF or v.get("ctrlocation") not in ("BEFORE_FIXED", "AFTER_FIXED"):
            continue
        if int(v["l"]) % 8:
            continue
        prf = _KBKDF_PRF[v["prf"]][0]
        rlen = int(v["rlen"].split("_")[0])
        counter = PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, Sp800108CounterFormat(False, rlen))
        fixed = PrfDataParam(CK_SP800_108_BYTE_ARRAY, bytes.fromhex(v["fixedinputdata"]))
        order = (counter, fixed) if v["ctrlocation"] == "BEFORE_FIXED" else (fixed, counter)
        ki = bytes.fromhex(v["ki"])
        base = secret_view(ki, CKK_AES if prf == CKM_AES_CMAC else CKK_GENERIC_SECRET)
        out = derive(CKM_SP800_108_COUNTER_KDF, Sp800108Params(prf, order), base, {CKA_VALUE_LEN: int(v["l"]) // 8})
        assert out[CKA_VALUE] == bytes.fromhex(v["ko"]), (v["prf"], v["count"])
        done += 1
    assert done > 500


@settings(max_examples=30, deadline=None)
@given(
    prf=st.sampled_from(["HMAC_SHA1", "HMAC_SHA256", "HMAC_SHA512"]),
    key=st.binary(min_size=1, max_size=64),
    label=st.binary(min_size=1, max_size=20),
    context=st.binary(min_size=1, max_size=20),
    length=st.integers(1, 100),
    rlen=st.sampled_from([8, 16, 24, 32]),
    llen=st.sampled_from([8, 16, 32]),
)
def test_sp800_108_counter_equals_pyca_kbkdfhmac(prf, key, label, context, length, rlen, llen):
    ckm, algo = _KBKDF_PRF[prf]
    if length >= 1 << (llen - 3):
        length = (1 << (llen - 3)) - 1  # L in bits must fit the DKM width
    params = Sp800108Params(
        ckm,
        (
            PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, Sp800108CounterFormat(False, rlen)),
            PrfDataParam(CK_SP800_108_BYTE_ARRAY, label),
            PrfDataParam(CK_SP800_108_BYTE_ARRAY, b"\x00"),
            PrfDataParam(CK_SP800_108_BYTE_ARRAY, context),
            PrfDataParam(CK_SP800_108_DKM_LENGTH, Sp800108DkmLengthFormat(CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS, False, llen)),
        ),
    )
    ours = derive(CKM_SP800_108_COUNTER_KDF, params, secret_view(key), {CKA_VALUE_LEN: length})[CKA_VALUE]
    theirs = KBKDFHMAC(algo(), Mode.CounterMode, length, rlen // 8, llen // 8, CounterLocation.BeforeFixed, label, context, None).derive(key)
    assert ours == theirs


def test_sp800_108_feedback_follows_the_definition():
    from cryptography.hazmat.primitives import hmac

    key, iv, label = os.urandom(32), os.urandom(32), b"label"

    def prf(data: bytes) -> bytes:
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(data)
        return h.finalize()

    k1 = prf(iv + (1).to_bytes(4, "big") + label)
    k2 = prf(k1 + (2).to_bytes(4, "big") + label)
    params = Sp800108Params(
        CKM_SHA256_HMAC,
        (
            PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, None),
            PrfDataParam(CK_SP800_108_OPTIONAL_COUNTER, Sp800108CounterFormat(False, 32)),
            PrfDataParam(CK_SP800_108_BYTE_ARRAY, label),
        ),
        iv,
    )
    out = derive(CKM_SP800_108_FEEDBACK_KDF, params, secret_view(key), {CKA_VALUE_LEN: 48})
    assert out[CKA_VALUE] == (k1 + k2)[:48]


def test_sp800_108_dkm_sum_of_segments_and_little_endian():
    from cryptography.hazmat.primitives import hmac

    key = os.urandom(16)
    params = Sp800108Params(
        CKM_SHA256_HMAC,
        (
            PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, Sp800108CounterFormat(True, 16)),
            PrfDataParam(CK_SP800_108_DKM_LENGTH, Sp800108DkmLengthFormat(CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS, True, 16)),
        ),
    )
    out = derive(CKM_SP800_108_COUNTER_KDF, params, secret_view(key), {CKA_VALUE_LEN: 40})[CKA_VALUE]
    blocks = []
    for i in (1, 2):
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(i.to_bytes(2, "little") + (512).to_bytes(2, "little"))
        blocks.append(h.finalize())
    assert out == b"".join(blocks)[:40]


def test_sp800_108_errors():
    base = secret_view(os.urandom(32))
    it8 = PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, Sp800108CounterFormat(False, 8))
    with pytest.raises(CryptokiError) as err:
        derive(CKM_SP800_108_COUNTER_KDF, Sp800108Params(CKM_SHA256_HMAC, (it8,)), base, {})
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
    with pytest.raises(CryptokiError) as err:  # 8-bit counter: at most 255 blocks of 32 bytes
        derive(CKM_SP800_108_COUNTER_KDF, Sp800108Params(CKM_SHA256_HMAC, (it8,)), base, {CKA_VALUE_LEN: 256 * 32})
    assert err.value.ckr == CKR_KEY_SIZE_RANGE
    bad_params = [
        Sp800108Params(CKM_SHA256_HMAC, ()),
        Sp800108Params(CKM_SHA256_HMAC, (it8, it8)),
        Sp800108Params(CKM_SHA256_HMAC, (PrfDataParam(CK_SP800_108_ITERATION_VARIABLE, Sp800108CounterFormat(False, 12)),)),
        Sp800108Params(CKM_SHA256_HMAC, (it8, PrfDataParam(CK_SP800_108_OPTIONAL_COUNTER, Sp800108CounterFormat(False, 8)))),
        Sp800108Params(CKM_SHA1_RSA_PKCS, (it8,)),
    ]
    for param in bad_params:
        with pytest.raises(CryptokiError) as err:
            derive(CKM_SP800_108_COUNTER_KDF, param, base, {CKA_VALUE_LEN: 16})
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


# --- PBKDF2 --------------------------------------------------------------------------


@pytest.mark.parametrize("prf,name", [(CKP_PKCS5_PBKD2_HMAC_SHA1, "sha1"), (CKP_PKCS5_PBKD2_HMAC_SHA256, "sha256"), (CKP_PKCS5_PBKD2_HMAC_SHA512, "sha512")])
@pytest.mark.parametrize("length", [16, 32, 70])
def test_pbkdf2_equals_hashlib(prf, name, length):
    password, salt = b"correct horse battery staple", os.urandom(16)
    entry = registry.lookup(CKM_PKCS5_PBKD2)
    param = Pbkd2Params(CKZ_SALT_SPECIFIED, salt, 1000, prf, b"", password)
    material = entry.family.generate_key(entry, param, {CKA_VALUE_LEN: length})
    assert material[CKA_VALUE] == hashlib.pbkdf2_hmac(name, password, salt, 1000, length)
    assert material[CKA_KEY_TYPE] == CKK_GENERIC_SECRET and material[CKA_VALUE_LEN] == length


def test_pbkdf2_rfc6070_and_errors():
    entry = registry.lookup(CKM_PKCS5_PBKD2)
    for v in load_nist(KDF_VECTORS / "rfc-6070-PBKDF2-SHA1.txt"):
        if int(v["iterations"]) > 5000:
            continue
        salt, password = (v[f].encode().decode("unicode_escape").encode("latin-1") for f in ("salt", "password"))
        param = Pbkd2Params(CKZ_SALT_SPECIFIED, salt, int(v["iterations"]), CKP_PKCS5_PBKD2_HMAC_SHA1, b"", password)
        out = entry.family.generate_key(entry, param, {CKA_VALUE_LEN: int(v["length"])})
        assert out[CKA_VALUE] == bytes.fromhex(v["derived_key"])
    good = Pbkd2Params(CKZ_SALT_SPECIFIED, b"salt", 2, CKP_PKCS5_PBKD2_HMAC_SHA1, b"", b"pw")
    with pytest.raises(CryptokiError) as err:
        entry.family.generate_key(entry, good, {})
    assert err.value.ckr == CKR_TEMPLATE_INCOMPLETE
    aes = entry.family.generate_key(entry, good, {CKA_KEY_TYPE: CKK_AES, CKA_VALUE_LEN: 32})
    assert aes[CKA_KEY_TYPE] == CKK_AES and len(aes[CKA_VALUE]) == 32
    for bad in (
        Pbkd2Params(2, b"salt", 2, CKP_PKCS5_PBKD2_HMAC_SHA1, b"", b"pw"),
        Pbkd2Params(CKZ_SALT_SPECIFIED, b"salt", 0, CKP_PKCS5_PBKD2_HMAC_SHA1, b"", b"pw"),
        Pbkd2Params(CKZ_SALT_SPECIFIED, b"salt", 2, 0x99, b"", b"pw"),
    ):
        with pytest.raises(CryptokiError) as err:
            entry.family.generate_key(entry, bad, {CKA_VALUE_LEN: 16})
        assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID
