"""SLH-DSA (FIPS 205) key material: PKCS#11 3.2 §6.69 attributes <-> keys of the `pqcrypto`
package (pyca/cryptography 50 has no SLH-DSA).

Key objects: public ``CKA_PARAMETER_SET`` (CKP_SLH_DSA_*) and ``CKA_VALUE`` = PK.seed ‖
PK.root (2n bytes); private ``CKA_PARAMETER_SET`` and ``CKA_VALUE`` = SK.seed ‖ SK.prf ‖
PK.seed ‖ PK.root (4n bytes, FIPS 205 §9.1), whose public key is its second half. `pqcrypto`
(Rust bindings of PQClean: its own SHA-2/SHAKE, links only libc) signs and verifies on these
byte strings. SubjectPublicKeyInfo and PKCS#8 carry the NIST OIDs id-slh-dsa-* (CSOR
2.16.840.1.101.3.4.3.20-31) with the raw keys (the form of the LAMPS SLH-DSA profile), so
private keys wrap and unwrap. Without `pqcrypto` installed no SLH-DSA key type is served.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from .. import der
from ..errors import CryptokiError
from ..spec_ints import (
    CKA_KEY_TYPE,
    CKA_PARAMETER_SET,
    CKA_PUBLIC_KEY_INFO,
    CKA_VALUE,
    CKK_SLH_DSA,
    CKP_SLH_DSA_SHA2_128F,
    CKP_SLH_DSA_SHA2_128S,
    CKP_SLH_DSA_SHA2_192F,
    CKP_SLH_DSA_SHA2_192S,
    CKP_SLH_DSA_SHA2_256F,
    CKP_SLH_DSA_SHA2_256S,
    CKP_SLH_DSA_SHAKE_128F,
    CKP_SLH_DSA_SHAKE_128S,
    CKP_SLH_DSA_SHAKE_192F,
    CKP_SLH_DSA_SHAKE_192S,
    CKP_SLH_DSA_SHAKE_256F,
    CKP_SLH_DSA_SHAKE_256S,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_TEMPLATE_INCOMPLETE,
)

try:  # an optional dependency: docs/pqc.md
    import pqcrypto  # type: ignore[import-untyped]
    from pqcrypto import sign as _sign  # noqa: F401 (makes the submodules)
except ImportError:  # pragma: no cover (the venv has it)
    pqcrypto = None

AVAILABLE = pqcrypto is not None


@dataclass(frozen=True)
class SlhParameterSet:
    """One FIPS 205 parameter set: its CKP_*, name, security parameter n (bytes), signature
    length, OID arc (2.16.840.1.101.3.4.3.<arc>) and the `pqcrypto` module that runs it."""

    ckp: int
    name: str
    n: int
    signature_len: int
    oid_arc: int
    module: str

    @property
    def public_len(self) -> int:
        return 2 * self.n

    @property
    def private_len(self) -> int:
        return 4 * self.n

    @property
    def algorithm(self) -> bytes:
        """The DER AlgorithmIdentifier (no parameters)."""
        return der.tlv(der.SEQUENCE, bytes.fromhex("06096086480165030403") + bytes([self.oid_arc]))

    def backend(self) -> Any:
        return importlib.import_module(f"pqcrypto.sign.{self.module}")


SETS: dict[int, SlhParameterSet] = {ps.ckp: ps for ps in (
    SlhParameterSet(CKP_SLH_DSA_SHA2_128S, "SLH-DSA-SHA2-128s", 16, 7856, 20, "slh_dsa_sha2_128s"),
    SlhParameterSet(CKP_SLH_DSA_SHA2_128F, "SLH-DSA-SHA2-128f", 16, 17088, 21, "slh_dsa_sha2_128f"),
    SlhParameterSet(CKP_SLH_DSA_SHA2_192S, "SLH-DSA-SHA2-192s", 24, 16224, 22, "slh_dsa_sha2_192s"),
    SlhParameterSet(CKP_SLH_DSA_SHA2_192F, "SLH-DSA-SHA2-192f", 24, 35664, 23, "slh_dsa_sha2_192f"),
    SlhParameterSet(CKP_SLH_DSA_SHA2_256S, "SLH-DSA-SHA2-256s", 32, 29792, 24, "slh_dsa_sha2_256s"),
    SlhParameterSet(CKP_SLH_DSA_SHA2_256F, "SLH-DSA-SHA2-256f", 32, 49856, 25, "slh_dsa_sha2_256f"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_128S, "SLH-DSA-SHAKE-128s", 16, 7856, 26, "slh_dsa_shake_128s"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_128F, "SLH-DSA-SHAKE-128f", 16, 17088, 27, "slh_dsa_shake_128f"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_192S, "SLH-DSA-SHAKE-192s", 24, 16224, 28, "slh_dsa_shake_192s"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_192F, "SLH-DSA-SHAKE-192f", 24, 35664, 29, "slh_dsa_shake_192f"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_256S, "SLH-DSA-SHAKE-256s", 32, 29792, 30, "slh_dsa_shake_256s"),
    SlhParameterSet(CKP_SLH_DSA_SHAKE_256F, "SLH-DSA-SHAKE-256f", 32, 49856, 31, "slh_dsa_shake_256f"),
)} if AVAILABLE else {}
KEY_TYPES = frozenset({CKK_SLH_DSA}) if AVAILABLE else frozenset()
_BY_ALGORITHM = {ps.algorithm: ps for ps in SETS.values()}


class SlhDsaPublicKey:
    __slots__ = ("ps", "raw")

    def __init__(self, ps: SlhParameterSet, raw: bytes) -> None:
        self.ps, self.raw = ps, raw

    def public_bytes_raw(self) -> bytes:
        return self.raw

    def spki(self) -> bytes:
        return der.tlv(der.SEQUENCE, self.ps.algorithm + der.tlv(der.BIT_STRING, b"\x00" + self.raw))

    def verify(self, signature: bytes, message: bytes, context: bytes, prehash: Any) -> bool:
        try:
            self.ps.backend().verify(self.raw, message, signature, context=context or None, hash_algorithm=prehash)
        except pqcrypto.InvalidSignatureError:
            return False
        return True


class SlhDsaPrivateKey:
    __slots__ = ("ps", "raw")

    def __init__(self, ps: SlhParameterSet, raw: bytes) -> None:
        self.ps, self.raw = ps, raw

    @classmethod
    def generate(cls, ps: SlhParameterSet) -> SlhDsaPrivateKey:
        _, sk = ps.backend().keygen()
        return cls(ps, bytes(sk))

    def public_key(self) -> SlhDsaPublicKey:
        return SlhDsaPublicKey(self.ps, self.raw[2 * self.ps.n:])

    def sign(self, message: bytes, context: bytes, prehash: Any) -> bytes:
        """Hedged (`pqcrypto` draws opt_rand): FIPS 205 Algorithm 22/23 with the context."""
        return bytes(self.ps.backend().sign(self.raw, message, context=context or None, hash_algorithm=prehash))

    def private_bytes(self, *_: Any) -> bytes:
        """PKCS#8 PrivateKeyInfo (the only form the module asks for: ``keys.to_pkcs8``)."""
        return der.tlv(der.SEQUENCE, der.integer(0) + self.ps.algorithm + der.tlv(der.OCTET_STRING, self.raw))


def is_slh_key(key: Any) -> bool:
    return isinstance(key, (SlhDsaPrivateKey, SlhDsaPublicKey))


def parameter_set(ckp: Any) -> SlhParameterSet:
    if ckp is None:
        raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_PARAMETER_SET missing")
    found = SETS.get(int(ckp))
    if found is None:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"SLH-DSA parameter set {ckp} undefined")
    return found


def _value(attrs: Mapping[int, Any], length: int, what: str) -> bytes:
    value = attrs.get(CKA_VALUE)
    if not value:
        raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE missing")
    if len(value) != length:
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"an {what} is {length} bytes")
    return bytes(value)


def parse_private(attrs: Mapping[int, Any]) -> SlhDsaPrivateKey:
    ps = parameter_set(attrs.get(CKA_PARAMETER_SET))
    return SlhDsaPrivateKey(ps, _value(attrs, ps.private_len, f"{ps.name} private key"))


def parse_public(attrs: Mapping[int, Any]) -> SlhDsaPublicKey:
    ps = parameter_set(attrs.get(CKA_PARAMETER_SET))
    return SlhDsaPublicKey(ps, _value(attrs, ps.public_len, f"{ps.name} public key"))


def public_material(key: Any) -> dict[int, Any]:
    public = key.public_key() if isinstance(key, SlhDsaPrivateKey) else key
    return {CKA_KEY_TYPE: CKK_SLH_DSA, CKA_PARAMETER_SET: public.ps.ckp, CKA_VALUE: public.raw,
            CKA_PUBLIC_KEY_INFO: public.spki()}


def private_material(key: SlhDsaPrivateKey) -> dict[int, Any]:
    return {CKA_KEY_TYPE: CKK_SLH_DSA, CKA_PARAMETER_SET: key.ps.ckp, CKA_VALUE: key.raw,
            CKA_PUBLIC_KEY_INFO: key.public_key().spki()}


def check_import(attrs: Mapping[int, Any], public_class: bool) -> dict[int, Any]:
    """C_CreateObject: the value's length for its set; what the object gains (the SPKI)."""
    key: Any = parse_public(attrs) if public_class else parse_private(attrs)
    return {CKA_PUBLIC_KEY_INFO: public_material(key)[CKA_PUBLIC_KEY_INFO]}


def from_pkcs8(data: bytes) -> SlhDsaPrivateKey | None:
    """The key of an SLH-DSA PrivateKeyInfo as ``private_bytes`` writes it, or None."""
    outer = der.read_one(bytes(data))
    version = der.integer(0)
    if outer is None or outer[0] != der.SEQUENCE or not outer[1].startswith(version):
        return None
    rest = outer[1][len(version):]
    for algorithm, ps in _BY_ALGORITHM.items():
        if rest.startswith(algorithm):
            key = der.read_one(rest[len(algorithm):])
            if key is not None and key[0] == der.OCTET_STRING and len(key[1]) == ps.private_len:
                return SlhDsaPrivateKey(ps, key[1])
    return None
