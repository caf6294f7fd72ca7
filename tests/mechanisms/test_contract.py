"""The mechanism/backend contract (issue 16 item 2, docs/architecture.md "Mechanisms and
backends: the contract").

* ``registry.Family``: every operation exists and answers CKR_MECHANISM_INVALID unless the
  family overrides it; each entry's flags name only operations its family implements.
* Entries are frozen and their family data typed (``EntryData`` subclasses), no mapping.
* ``backends.Backend``: ``context_maker`` is the one required method.
* The encodings a backend needs are the RSA family's public functions: a backend that
  supplies only the raw private operation gets signatures pyca verifies, for every scheme.
* Nobody reaches past the contract: no ``getattr`` probing of families, no ``.extra``, no
  private RSA helpers in backends, no ``entry.family`` or ``mechanisms.keys`` in the core.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cryptoki_shim import backends, spec as S
from cryptoki_shim.backends.software import SoftwareBackend
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import registry
from cryptoki_shim.mechanisms import rsa as rsa_family
from cryptoki_shim.mechanisms.params import RsaPkcsOaepParams, RsaPkcsPssParams
from cryptoki_shim.mechanisms.registry import EntryData, Family, MechanismEntry

PACKAGE = Path(registry.__file__).resolve().parent.parent

#: flag -> the Family method that an entry with the flag needs
FLAG_METHODS = {
    S.CKF_SIGN: "sign_init",
    S.CKF_VERIFY: "verify_init",
    S.CKF_ENCRYPT: "encrypt_init",
    S.CKF_DECRYPT: "decrypt_init",
    S.CKF_DIGEST: "digest_init",
    S.CKF_GENERATE: "generate_key",
    S.CKF_GENERATE_KEY_PAIR: "generate_key_pair",
    S.CKF_DERIVE: "derive",
    S.CKF_WRAP: "wrap",
    S.CKF_UNWRAP: "unwrap",
    S.CKF_ENCAPSULATE: "encapsulate",
    S.CKF_DECAPSULATE: "decapsulate",
}
#: each operation's arguments after (entry, param)
ARGS = {
    "sign_init": (None,), "verify_init": (None,), "encrypt_init": (None,), "decrypt_init": (None,),
    "digest_init": (None,), "generate_key": ({},), "generate_key_pair": ({}, {}), "derive": (None, {}),
    "wrap": (None, {}), "unwrap": (None, b"", S.CKO_SECRET_KEY, None, None),
    "encapsulate": (None, {}), "decapsulate": (None, b"", {}),
}
ENTRIES = registry.all_entries()


def _overrides(family: Family, method: str) -> bool:
    return getattr(type(family), method) is not getattr(Family, method)


def test_base_family_answers_mechanism_invalid_for_every_operation():
    entry = MechanismEntry(0x80000001, 0, 0, 0, Family())
    for method, args in ARGS.items():
        with pytest.raises(CryptokiError) as err:
            getattr(entry.family, method)(entry, None, *args)
        assert err.value.ckr == S.CKR_MECHANISM_INVALID, method


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: S.ckm_name(e.mechanism))
def test_entry_flags_name_only_what_its_family_does(entry: MechanismEntry):
    assert isinstance(entry.family, Family)
    for flag, method in FLAG_METHODS.items():
        if entry.flags & flag:
            assert _overrides(entry.family, method), f"{method} not implemented for {S.ckm_name(entry.mechanism)}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: S.ckm_name(e.mechanism))
def test_what_a_family_does_not_do_is_mechanism_invalid(entry: MechanismEntry):
    for method, args in ARGS.items():
        if _overrides(entry.family, method):
            continue
        with pytest.raises(CryptokiError) as err:
            getattr(entry.family, method)(entry, None, *args)
        assert err.value.ckr == S.CKR_MECHANISM_INVALID


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: S.ckm_name(e.mechanism))
def test_entries_are_frozen_and_their_data_typed(entry: MechanismEntry):
    assert not hasattr(entry, "extra")
    assert isinstance(entry.data, EntryData)
    assert dataclasses.is_dataclass(entry.data) and type(entry.data).__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.flags = 0  # type: ignore[misc]
    for f in dataclasses.fields(entry.data):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(entry.data, f.name, None)


def test_backend_requires_context_maker_and_every_backend_is_one():
    class Incomplete(backends.Backend):
        backend_id = 99

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]
    import importlib

    for where in backends.FACTORIES.values():
        module, cls = where.split(":")
        assert issubclass(getattr(importlib.import_module(module), cls), backends.Backend), where


def test_software_backend_hands_out_the_familys_own_maker():
    """The fast path (docs/architecture.md "The operation path"): the maker the core keeps
    is the family's bound ``*_init`` (or AES's bound cipher maker), no backend frame."""
    software = SoftwareBackend()
    ecdsa = registry.lookup(S.CKM_ECDSA_SHA256)
    assert software.context_maker("sign", ecdsa) == ecdsa.family.sign_init
    gcm = registry.lookup(S.CKM_AES_GCM)
    maker = software.context_maker("encrypt", gcm)
    assert maker.func.__name__ == "_gcm" and maker.args == (True,)
    sha = registry.lookup(S.CKM_SHA256)
    assert backends.keyless_context_maker("digest", sha)(sha, None, None).oneshot(b"abc") == bytes.fromhex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


# --------------------------------------------------------------------------- RSA encodings


class _RawOps:
    """A backend's private operations done with pyca's numbers (what a TPM does inside)."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key, self.n = key, key.private_numbers()
        self.calls: list[str] = []

    def _raw(self, data: bytes) -> bytes:
        k = (self.key.key_size + 7) // 8
        return pow(int.from_bytes(data, "big"), self.n.d, self.n.public_numbers.n).to_bytes(k, "big")

    def raw_sign(self, data: bytes) -> bytes:
        self.calls.append("raw_sign")
        return self._raw(data)

    def raw_decrypt(self, data: bytes) -> bytes:
        self.calls.append("raw_decrypt")
        return self._raw(data)

    def pkcs1_decrypt(self, data: bytes) -> bytes:
        self.calls.append("pkcs1")
        return self.key.decrypt(data, padding.PKCS1v15())

    def oaep(self, algorithm: Any, mgf: Any, label: bytes | None) -> Any:
        self.calls.append("oaep")
        pad = padding.OAEP(padding.MGF1(mgf()), algorithm(), label)
        return lambda data: self.key.decrypt(data, pad)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_external_rsa_signatures_verify_for_every_scheme(rsa_key):
    """A backend supplying only ``raw_sign`` (the TPM) signs every RSA signature mechanism;
    the encodings are the family's public functions."""
    public, ops, msg = rsa_key.public_key(), _RawOps(rsa_key), b"the contract"
    digest = hashes.Hash(hashes.SHA256())
    digest.update(msg)
    h = digest.finalize()
    pss = RsaPkcsPssParams(S.CKM_SHA256, S.CKG_MGF1_SHA256, 32)

    def sign(ckm: int, data: bytes, param: Any = None) -> bytes:
        entry = registry.lookup(ckm)
        return rsa_family.external_sign_context(entry, param, public, ops).oneshot(data)

    public.verify(sign(S.CKM_SHA256_RSA_PKCS, msg), msg, padding.PKCS1v15(), hashes.SHA256())
    public.verify(sign(S.CKM_RSA_PKCS, rsa_family.digest_info_prefix(hashes.SHA256) + h), msg,
                  padding.PKCS1v15(), hashes.SHA256())
    public.verify(sign(S.CKM_SHA256_RSA_PKCS_PSS, msg, pss), msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                  hashes.SHA256())
    public.verify(sign(S.CKM_RSA_PKCS_PSS, h, pss), msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                  hashes.SHA256())
    raw = sign(S.CKM_RSA_X_509, b"\x01" * 16)
    n = public.public_numbers()
    assert pow(int.from_bytes(raw, "big"), n.e, n.n) == int.from_bytes(b"\x01" * 16, "big")
    assert set(ops.calls) == {"raw_sign"}
    with pytest.raises(CryptokiError) as err:  # the PSS parameter checks are the family's
        sign(S.CKM_SHA256_RSA_PKCS_PSS, msg, RsaPkcsPssParams(S.CKM_SHA384, S.CKG_MGF1_SHA384, 32))
    assert err.value.ckr == S.CKR_MECHANISM_PARAM_INVALID


def test_external_rsa_decryption_leaves_the_padding_to_the_backend(rsa_key):
    public, ops = rsa_key.public_key(), _RawOps(rsa_key)

    def decrypt(ckm: int, data: bytes, param: Any = None) -> bytes:
        return rsa_family.external_decrypt_context(registry.lookup(ckm), param, public, ops).oneshot(data)

    assert decrypt(S.CKM_RSA_PKCS, public.encrypt(b"v15", padding.PKCS1v15())) == b"v15"
    oaep = RsaPkcsOaepParams(S.CKM_SHA256, S.CKG_MGF1_SHA256, S.CKZ_DATA_SPECIFIED, b"")
    ct = public.encrypt(b"oaep", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert decrypt(S.CKM_RSA_PKCS_OAEP, ct, oaep) == b"oaep"
    assert decrypt(S.CKM_RSA_X_509, public.encrypt(b"x", padding.PKCS1v15()))[-1:] == b"x"
    assert ops.calls == ["pkcs1", "oaep", "raw_decrypt"]
    with pytest.raises(CryptokiError) as err:
        decrypt(S.CKM_RSA_PKCS, b"short")
    assert err.value.ckr == S.CKR_ENCRYPTED_DATA_LEN_RANGE
    with pytest.raises(CryptokiError) as err:  # a signature-only scheme does not decrypt
        rsa_family.external_decrypt_context(registry.lookup(S.CKM_RSA_PKCS_PSS), None, public, ops)
    assert err.value.ckr == S.CKR_MECHANISM_INVALID


def test_emsa_encodings_match_rfc_8017(rsa_key):
    k = 256
    em = rsa_family.emsa_pkcs1_encode(b"T", k)
    assert em[:2] == b"\x00\x01" and em[-2:] == b"\x00T" and set(em[2:-2]) == {0xFF}
    with pytest.raises(CryptokiError) as err:
        rsa_family.emsa_pkcs1_encode(bytes(k - 10), k)
    assert err.value.ckr == S.CKR_DATA_LEN_RANGE
    m_hash = bytes(32)
    em = rsa_family.emsa_pss_encode(m_hash, 2047, hashes.SHA256, hashes.SHA256, 32)
    assert len(em) == k and em[-1] == 0xBC


# --------------------------------------------------------------------------- nobody reaches past it


def _sources(*parts: str) -> dict[str, str]:
    out = {}
    for part in parts:
        root = PACKAGE / part
        for path in ([root] if root.is_file() else sorted(root.rglob("*.py"))):
            out[str(path.relative_to(PACKAGE))] = path.read_text()
    return out


def test_no_getattr_probing_of_families_or_backends():
    for name, src in _sources("core", "backends", "mechanisms").items():
        assert not re.search(r"getattr\((entry\.family|backend|self\.family)\b", src), name
        assert "init_for" not in src and ".extra[" not in src and ".extra.get" not in src, name


def test_backends_use_only_the_public_encodings_of_rsa():
    for name, src in _sources("backends").items():
        assert not re.search(r"rsa_family\._|\brsa\._[a-z]", src), name
        assert "emsa_" not in src or "def emsa_" not in src, name


def test_the_core_reaches_mechanisms_only_through_registry_and_backends():
    for name, src in _sources("core").items():
        assert "entry.family" not in src, name
        assert not re.search(r"mechanisms(\.| import )keys\b", src), name
