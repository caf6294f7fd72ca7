"""Key wrapping: NIST SP 800-38F KW/KWP known answers and wrap/unwrap round trips for
secret and private keys with every wrapping mechanism."""

from __future__ import annotations

import os
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry
from cryptoki_shim.mechanisms.params import GcmParams
from cryptoki_shim.spec import (
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_UNWRAP,
    CKF_WRAP,
    CKK_AES,
    CKK_EC,
    CKK_GENERIC_SECRET,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_ECB,
    CKM_AES_GCM,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_KEY_WRAP_PAD,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
    CKR_DATA_LEN_RANGE,
    CKR_KEY_NOT_WRAPPABLE,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_WRAPPED_KEY_INVALID,
    CKR_WRAPPED_KEY_LEN_RANGE,
)

VECTORS = Path(cryptography_vectors.__file__).parent / "keywrap" / "kwtestvectors"


class View:
    def __init__(self, attrs: dict) -> None:
        self.attrs = attrs
        self.cache: dict = {}


def aes_view(key: bytes) -> View:
    return View({CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: CKK_AES, CKA_VALUE: key})


def secret_attrs(value: bytes, key_type: int = CKK_GENERIC_SECRET) -> dict:
    return {CKA_CLASS: CKO_SECRET_KEY, CKA_KEY_TYPE: key_type, CKA_VALUE: value, CKA_VALUE_LEN: len(value)}


def private_attrs(key) -> dict:
    return {CKA_CLASS: CKO_PRIVATE_KEY, **keys.private_material(key)}


def load_kw(path: Path) -> list[dict]:
    records, current = [], {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")):
            if current:
                records.append(current)
                current = {}
            continue
        if line == "FAIL":
            current["fail"] = True
        elif "=" in line:
            k, v = line.split("=", 1)
            current[k.strip()] = v.strip()
    if current:
        records.append(current)
    return records


def crypt(mech: int, key: bytes, data: bytes, encrypt: bool, param=None) -> bytes:
    entry = registry.lookup(mech)
    init = entry.family.encrypt_init if encrypt else entry.family.decrypt_init
    return init(entry, param, aes_view(key)).oneshot(data)


def test_key_wrap_entries():
    for mech in (CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD):
        e = registry.lookup(mech)
        assert e.flags == CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP
        assert (e.min_key_size, e.max_key_size) == (16, 32) and e.key_types == {CKK_AES}
    assert int(CKM_AES_KEY_WRAP_KWP) == 0x210B


@pytest.mark.parametrize("mech,prefix", [(CKM_AES_KEY_WRAP, "KW"), (CKM_AES_KEY_WRAP_KWP, "KWP")])
@pytest.mark.parametrize("bits", [128, 192, 256])
def test_nist_sp800_38f_vectors(mech, prefix, bits):
    ae = load_kw(VECTORS / f"{prefix}_AE_{bits}.txt")
    for v in ae:
        k, p, c = (bytes.fromhex(v[x]) for x in "KPC")
        assert crypt(mech, k, p, True) == c
    ad = load_kw(VECTORS / f"{prefix}_AD_{bits}.txt")
    fails = 0
    for v in ad:
        k, c = bytes.fromhex(v["K"]), bytes.fromhex(v["C"])
        if v.get("fail"):
            with pytest.raises(CryptokiError):
                crypt(mech, k, c, False)
            fails += 1
        else:
            assert crypt(mech, k, c, False) == bytes.fromhex(v["P"])
    assert ae and ad and fails


def test_kw_matches_pyca_and_pad_alias_is_kwp():
    kek, data = os.urandom(32), os.urandom(20)
    assert crypt(CKM_AES_KEY_WRAP_KWP, kek, data, True) == keywrap.aes_key_wrap_with_padding(kek, data)
    assert crypt(CKM_AES_KEY_WRAP_PAD, kek, data, True) == keywrap.aes_key_wrap_with_padding(kek, data)
    assert crypt(CKM_AES_KEY_WRAP, kek, data[:16], True) == keywrap.aes_key_wrap(kek, data[:16])


def test_kw_input_lengths_and_iv_param():
    kek = os.urandom(16)
    with pytest.raises(CryptokiError) as err:
        crypt(CKM_AES_KEY_WRAP, kek, os.urandom(20), True)
    assert err.value.ckr == CKR_DATA_LEN_RANGE
    # the default IV given explicitly is accepted, another one refused
    data = os.urandom(16)
    assert crypt(CKM_AES_KEY_WRAP, kek, data, True, bytes.fromhex("A6A6A6A6A6A6A6A6")) == keywrap.aes_key_wrap(kek, data)
    with pytest.raises(CryptokiError) as err:
        crypt(CKM_AES_KEY_WRAP, kek, data, True, bytes(8))
    assert err.value.ckr == CKR_MECHANISM_PARAM_INVALID


# --- wrap / unwrap round trips -------------------------------------------------------

_PARAMS = {
    CKM_AES_KEY_WRAP: lambda: None,
    CKM_AES_KEY_WRAP_KWP: lambda: None,
    CKM_AES_KEY_WRAP_PAD: lambda: None,
    CKM_AES_ECB: lambda: None,
    CKM_AES_CBC: lambda: os.urandom(16),
    CKM_AES_CBC_PAD: lambda: os.urandom(16),
    CKM_AES_GCM: lambda: GcmParams(os.urandom(12), b"wrap", 128),
}


@pytest.mark.parametrize("mech", list(_PARAMS))
@pytest.mark.parametrize("length", [16, 32])
def test_secret_key_round_trip(mech, length):
    kek, param = aes_view(os.urandom(32)), _PARAMS[mech]()
    value = os.urandom(length)
    entry = registry.lookup(mech)
    wrapped = entry.family.wrap(entry, param, kek, secret_attrs(value, CKK_AES))
    assert value not in wrapped
    material = entry.family.unwrap(entry, param, kek, wrapped, CKO_SECRET_KEY, CKK_AES)
    assert material == {CKA_VALUE: value, CKA_VALUE_LEN: length}


@pytest.mark.parametrize("mech", [CKM_AES_KEY_WRAP, CKM_AES_ECB, CKM_AES_CBC])
def test_zero_padded_secret_needs_value_len(mech):
    kek, param, value = aes_view(os.urandom(16)), _PARAMS[mech](), os.urandom(20)
    entry = registry.lookup(mech)
    wrapped = entry.family.wrap(entry, param, kek, secret_attrs(value))
    assert len(wrapped) % 8 == 0
    material = entry.family.unwrap(entry, param, kek, wrapped, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 20)
    assert material[CKA_VALUE] == value
    with pytest.raises(CryptokiError) as err:
        entry.family.unwrap(entry, param, kek, wrapped, CKO_SECRET_KEY, CKK_GENERIC_SECRET, 64)
    assert err.value.ckr == CKR_TEMPLATE_INCONSISTENT


def test_ecb_wrap_equals_pyca_ecb_of_zero_padded_value():
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    kek, value = os.urandom(16), os.urandom(20)
    enc = Cipher(algorithms.AES(kek), modes.ECB()).encryptor()
    expected = enc.update(value + bytes(12)) + enc.finalize()
    entry = registry.lookup(CKM_AES_ECB)
    assert entry.family.wrap(entry, None, aes_view(kek), secret_attrs(value)) == expected


_PRIVATE_KEYS = {
    "rsa": lambda: rsa.generate_private_key(65537, 2048),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
    "x25519": lambda: x25519.X25519PrivateKey.generate(),
}


@pytest.mark.parametrize("mech", [CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP, CKM_AES_CBC_PAD, CKM_AES_GCM])
@pytest.mark.parametrize("kind", list(_PRIVATE_KEYS))
def test_private_key_round_trip(mech, kind):
    key = _PRIVATE_KEYS[kind]()
    attrs = private_attrs(key)
    kek, param = aes_view(os.urandom(32)), _PARAMS[mech]()
    entry = registry.lookup(mech)
    wrapped = entry.family.wrap(entry, param, kek, attrs)
    material = entry.family.unwrap(entry, param, kek, wrapped, CKO_PRIVATE_KEY, attrs[CKA_KEY_TYPE])
    assert material[CKA_VALUE if CKA_VALUE in attrs else CKA_KEY_TYPE] == attrs[CKA_VALUE if CKA_VALUE in attrs else CKA_KEY_TYPE]
    der = serialization.load_der_private_key(keys.to_pkcs8({CKA_CLASS: CKO_PRIVATE_KEY, **material}), None)
    assert keys.public_key_info(der) == keys.public_key_info(key)


def test_kwp_wrap_of_private_key_is_pkcs8_under_rfc5649():
    key = ec.generate_private_key(ec.SECP256R1())
    kek = os.urandom(16)
    entry = registry.lookup(CKM_AES_KEY_WRAP_KWP)
    wrapped = entry.family.wrap(entry, None, aes_view(kek), private_attrs(key))
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert keywrap.aes_key_unwrap_with_padding(kek, wrapped) == pkcs8


def test_unwrap_errors():
    kek = aes_view(os.urandom(16))
    entry = registry.lookup(CKM_AES_KEY_WRAP_KWP)
    wrapped = bytearray(entry.family.wrap(entry, None, kek, secret_attrs(os.urandom(16))))
    wrapped[0] ^= 1
    with pytest.raises(CryptokiError) as err:
        entry.family.unwrap(entry, None, kek, bytes(wrapped), CKO_SECRET_KEY, CKK_AES)
    assert err.value.ckr == CKR_WRAPPED_KEY_INVALID
    with pytest.raises(CryptokiError) as err:
        entry.family.unwrap(entry, None, kek, bytes(wrapped[:12]), CKO_SECRET_KEY, CKK_AES)
    assert err.value.ckr == CKR_WRAPPED_KEY_LEN_RANGE
    gcm = registry.lookup(CKM_AES_GCM)
    param = _PARAMS[CKM_AES_GCM]()
    blob = bytearray(gcm.family.wrap(gcm, param, kek, secret_attrs(os.urandom(16))))
    blob[-1] ^= 1
    with pytest.raises(CryptokiError) as err:
        gcm.family.unwrap(gcm, param, kek, bytes(blob), CKO_SECRET_KEY, CKK_AES)
    assert err.value.ckr == CKR_WRAPPED_KEY_INVALID
    # unwrapped bytes that are not PKCS#8 where a private key is expected
    junk = entry.family.wrap(entry, None, kek, secret_attrs(os.urandom(40)))
    with pytest.raises(CryptokiError) as err:
        entry.family.unwrap(entry, None, kek, junk, CKO_PRIVATE_KEY, CKK_EC)
    assert err.value.ckr == CKR_WRAPPED_KEY_INVALID
    # an AES key type with a length AES cannot hold
    odd = entry.family.wrap(entry, None, kek, secret_attrs(os.urandom(20)))
    with pytest.raises(CryptokiError) as err:
        entry.family.unwrap(entry, None, kek, odd, CKO_SECRET_KEY, CKK_AES)
    assert err.value.ckr == CKR_WRAPPED_KEY_INVALID


def test_public_keys_are_not_wrappable():
    entry = registry.lookup(CKM_AES_KEY_WRAP_KWP)
    with pytest.raises(CryptokiError) as err:
        entry.family.wrap(entry, None, aes_view(os.urandom(16)), {CKA_CLASS: CKO_PUBLIC_KEY})
    assert err.value.ckr == CKR_KEY_NOT_WRAPPABLE


@pytest.mark.parametrize("oaep", [True, False])
def test_rsa_wrap_of_secret_uses_rsa_encryption(oaep):
    """RSA wraps by encryption: its wrap/unwrap go through its encrypt/decrypt."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding

    from cryptoki_shim.mechanisms.params import RsaPkcsOaepParams
    from cryptoki_shim.spec import CKG_MGF1_SHA256, CKM_RSA_PKCS, CKM_RSA_PKCS_OAEP, CKM_SHA256, CKZ_DATA_SPECIFIED

    private = rsa.generate_private_key(65537, 2048)
    public_view = View({CKA_CLASS: CKO_PUBLIC_KEY, **keys.public_material(private)})
    private_view = View(private_attrs(private))
    if oaep:
        entry = registry.lookup(CKM_RSA_PKCS_OAEP)
        param = RsaPkcsOaepParams(CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, b"")
        pad = rsa_padding.OAEP(rsa_padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    else:
        entry = registry.lookup(CKM_RSA_PKCS)
        param, pad = None, rsa_padding.PKCS1v15()
    value = os.urandom(32)
    wrapped = entry.family.wrap(entry, param, public_view, secret_attrs(value, CKK_AES))
    assert private.decrypt(wrapped, pad) == value
    material = entry.family.unwrap(entry, param, private_view, wrapped, CKO_SECRET_KEY, CKK_AES)
    assert material == {CKA_VALUE: value, CKA_VALUE_LEN: 32}
