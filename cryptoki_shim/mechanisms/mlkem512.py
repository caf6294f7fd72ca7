"""ML-KEM-512 (FIPS 203) keys with pyca's interface, on the `pqcrypto` package.

pyca/cryptography 50 has ML-KEM-768 and -1024 only. ML-KEM-512 runs on `pqcrypto` (PyPI,
Rust bindings of PQClean's ML-KEM: self-contained, its own SHA-3/SHAKE, so no host OpenSSL
is involved; the pure-Python candidates hash with the stdlib's ``hashlib``, which is the
host's OpenSSL: docs/architecture.md "A guest in the host's process"). `pqcrypto` builds
keys only at random and takes the expanded keys, so keys are made here from their seed d‖z
by ``pqc_expand.ml_kem_keygen`` (FIPS 203 Algorithms 13/16, checked against the KAT files'
ek and dk), and encapsulation/decapsulation run in `pqcrypto` on ek / dk. These classes
give the module's key code (``pqc_keys``) the few pyca methods it uses, so the parameter
set is one more row of ``pqc_keys.ML_KEM``. Without `pqcrypto` installed the parameter set
stays CKR_PARAMETER_SET_NOT_SUPPORTED.
"""

from __future__ import annotations

import os
from typing import Any

from .. import der
from . import pqc_expand

try:  # an optional dependency: docs/pqc.md
    from pqcrypto.kem import ml_kem_512 as _backend  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover (the venv has it)
    _backend = None

AVAILABLE = _backend is not None
_K = 2
PUBLIC_LEN, CIPHERTEXT_LEN, SEED_LEN = 800, 768, 64
#: AlgorithmIdentifier of id-alg-ml-kem-512 (2.16.840.1.101.3.4.4.1), no parameters: the form
#: pyca writes for id-alg-ml-kem-768/1024
_ALGORITHM = der.tlv(der.SEQUENCE, bytes.fromhex("0609608648016503040401"))


def _modulus_check(ek: bytes) -> None:
    """FIPS 203 §7.2: every 12-bit coefficient of ek's first 384k bytes is below q."""
    value = int.from_bytes(ek[: 384 * _K], "little")
    if any((value >> (12 * i)) & 0xFFF >= 3329 for i in range(256 * _K)):
        raise ValueError("encapsulation key coefficient not below q")


class MLKEM512PublicKey:
    __slots__ = ("_ek",)

    def __init__(self, ek: bytes) -> None:
        self._ek = ek

    @classmethod
    def from_public_bytes(cls, data: bytes) -> MLKEM512PublicKey:
        data = bytes(data)
        if len(data) != PUBLIC_LEN:
            raise ValueError("an ML-KEM-512 public key is 800 bytes")
        _modulus_check(data)
        return cls(data)

    def public_bytes_raw(self) -> bytes:
        return self._ek

    def public_bytes(self, *_: Any) -> bytes:
        """The SubjectPublicKeyInfo, the only form the module asks for (``pqc_keys._spki``)."""
        bits = der.tlv(der.BIT_STRING, b"\x00" + self._ek)
        return der.tlv(der.SEQUENCE, _ALGORITHM + bits)

    def encapsulate(self) -> tuple[bytes, bytes]:
        """(shared secret, ciphertext), pyca's order."""
        ciphertext, secret = _backend.encaps(self._ek)
        return bytes(secret), bytes(ciphertext)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MLKEM512PublicKey) and other._ek == self._ek

    def __hash__(self) -> int:
        return hash(self._ek)


class MLKEM512PrivateKey:
    __slots__ = ("_seed", "_ek", "_dk")

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._ek, self._dk = pqc_expand.ml_kem_keygen(seed, _K)

    @classmethod
    def generate(cls) -> MLKEM512PrivateKey:
        return cls(os.urandom(SEED_LEN))

    @classmethod
    def from_seed_bytes(cls, data: bytes) -> MLKEM512PrivateKey:
        data = bytes(data)
        if len(data) != SEED_LEN:
            raise ValueError("an ML-KEM seed is 64 bytes")
        return cls(data)

    def private_bytes_raw(self) -> bytes:
        return self._seed

    def private_bytes(self, *_: Any) -> bytes:
        """PKCS#8 PrivateKeyInfo in the seed form pyca writes for 768/1024 ([0] seed), the
        only form the module asks for (``keys.to_pkcs8``)."""
        key = der.tlv(der.OCTET_STRING, der.tlv(0x80, self._seed))
        return der.tlv(der.SEQUENCE, der.integer(0) + _ALGORITHM + key)

    def public_key(self) -> MLKEM512PublicKey:
        return MLKEM512PublicKey(self._ek)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != CIPHERTEXT_LEN:
            raise ValueError("an ML-KEM-512 ciphertext is 768 bytes")
        return bytes(_backend.decaps(self._dk, bytes(ciphertext)))


def from_pkcs8(data: bytes) -> MLKEM512PrivateKey | None:
    """The key of a seed-form ML-KEM-512 PrivateKeyInfo (as ``private_bytes`` writes it), or
    None when ``data`` is not one (pyca reads the other key types)."""
    outer = der.read_one(bytes(data))
    if outer is None or outer[0] != der.SEQUENCE:
        return None
    body = outer[1]
    version = der.integer(0)
    if not body.startswith(version + _ALGORITHM):
        return None
    key = der.read_one(body[len(version) + len(_ALGORITHM):])
    if key is None or key[0] != der.OCTET_STRING:
        return None
    seed = der.read_one(key[1])
    if seed is None or seed[0] != 0x80 or len(seed[1]) != SEED_LEN:
        return None
    return MLKEM512PrivateKey(seed[1])
