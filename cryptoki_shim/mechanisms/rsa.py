"""RSA: key pair generation, PKCS#1 v1.5, PSS, OAEP and raw (X.509) mechanisms.

PKCS#11 3.0 §2.1 (06.01_rsa.md). Data-length rules enforced here, by the spec's tables:
  CKM_RSA_PKCS     sign/encrypt input <= k-11, signatures/ciphertexts exactly k bytes
  CKM_RSA_X_509    input <= k (and < n), output k bytes
  CKM_RSA_PKCS_PSS input == hLen of params.hashAlg (it signs a digest)
  CKM_RSA_PKCS_OAEP input <= k-2-2hLen
(k = modulus length in bytes). Wrong signature length -> CKR_SIGNATURE_LEN_RANGE, wrong
ciphertext length -> CKR_ENCRYPTED_DATA_LEN_RANGE.

PKCS#1 v1.5 decryption goes through OpenSSL, which applies implicit rejection (the Marvin
attack counter-measure): a malformed ciphertext yields a deterministic random-looking
plaintext and CKR_OK instead of CKR_ENCRYPTED_DATA_INVALID. That is deliberate.

pyca has no raw RSA primitive; CKM_RSA_X_509 and CKM_RSA_PKCS signing of data that is not a
DigestInfo we recognise use a blinded CRT exponentiation in Python on the key's numbers.
"""

from __future__ import annotations

import enum
import hmac as _consttime
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from .. import der
from ..errors import CryptokiError
from ..spec import (
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKF_DECRYPT,
    CKF_ENCRYPT,
    CKF_GENERATE_KEY_PAIR,
    CKF_SIGN,
    CKF_SIGN_RECOVER,
    CKF_UNWRAP,
    CKF_VERIFY,
    CKF_VERIFY_RECOVER,
    CKF_WRAP,
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA3_224,
    CKG_MGF1_SHA3_256,
    CKG_MGF1_SHA3_384,
    CKG_MGF1_SHA3_512,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
    CKK_RSA,
    CKM_MD5,
    CKM_MD5_RSA_PKCS,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_RSA_X_509,
    CKM_SHA1_RSA_PKCS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA3_224,
    CKM_SHA3_224_RSA_PKCS,
    CKM_SHA3_224_RSA_PKCS_PSS,
    CKM_SHA3_256,
    CKM_SHA3_256_RSA_PKCS,
    CKM_SHA3_256_RSA_PKCS_PSS,
    CKM_SHA3_384,
    CKM_SHA3_384_RSA_PKCS,
    CKM_SHA3_384_RSA_PKCS_PSS,
    CKM_SHA3_512,
    CKM_SHA3_512_RSA_PKCS,
    CKM_SHA3_512_RSA_PKCS_PSS,
    CKM_SHA224,
    CKM_SHA224_RSA_PKCS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256,
    CKM_SHA256_RSA_PKCS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384,
    CKM_SHA384_RSA_PKCS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512,
    CKM_SHA512_RSA_PKCS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA_1,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_INVALID,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKZ_DATA_SPECIFIED,
)
from . import keys, native
from .digest import HASHES, LEGACY_HASHES, hash_of
from .params import RsaPkcsOaepParams, RsaPkcsPssParams
from .registry import EntryData, KeyGenData, MechanismEntry, not_supported, register
from .signing import CipherContext, SignContext, VerifyContext, hash_accumulator, running_hash
from .wrapping import EncryptionWrap

_log = logging.getLogger(__name__)

GEN_MIN_BITS, GEN_MAX_BITS = 1024, 4096
USE_MIN_BITS, USE_MAX_BITS = keys.RSA_MIN_BITS, keys.RSA_MAX_BITS

#: CK_RSA_PKCS_MGF_TYPE -> the hash MGF1 runs on (spec §2.1.14 table).
MGF1: dict[int, type[hashes.HashAlgorithm]] = {
    CKG_MGF1_SHA1: hashes.SHA1,
    CKG_MGF1_SHA224: hashes.SHA224,
    CKG_MGF1_SHA256: hashes.SHA256,
    CKG_MGF1_SHA384: hashes.SHA384,
    CKG_MGF1_SHA512: hashes.SHA512,
    CKG_MGF1_SHA3_224: hashes.SHA3_224,
    CKG_MGF1_SHA3_256: hashes.SHA3_256,
    CKG_MGF1_SHA3_384: hashes.SHA3_384,
    CKG_MGF1_SHA3_512: hashes.SHA3_512,
}



class RsaScheme(enum.Enum):
    """The encoding an RSA mechanism applies (RFC 8017 names)."""

    PKCS = "pkcs"            # CKM_RSA_PKCS: EMSA/EME-PKCS1-v1_5 around the caller's data
    PKCS_HASH = "pkcs-hash"  # CKM_<hash>_RSA_PKCS: hash, DigestInfo, EMSA-PKCS1-v1_5
    PSS = "pss"              # CKM_RSA_PKCS_PSS, CKM_<hash>_RSA_PKCS_PSS: EMSA-PSS
    OAEP = "oaep"            # CKM_RSA_PKCS_OAEP: EME-OAEP
    X509 = "x509"            # CKM_RSA_X_509: raw RSA


@dataclass(frozen=True)
class RsaData(EntryData):
    """An RSA mechanism: its scheme and the hash it applies first (None: the caller's data
    is signed as given, and the mechanism is single-part only)."""

    scheme: RsaScheme
    hash: type[hashes.HashAlgorithm] | None = None

    @property
    def single_part(self) -> bool:
        return self.hash is None


# DER of DigestInfo.digestAlgorithm + OCTET STRING header, per hash (RFC 8017 §9.2 note 1),
# so a caller-supplied DigestInfo for CKM_RSA_PKCS can be signed by OpenSSL as Prehashed.
_DIGEST_OIDS = {
    hashes.MD5: "1.2.840.113549.2.5",  # CKM_MD5_RSA_PKCS (legacy slots); HASHES has no MD5 for OAEP/PSS
    hashes.SHA1: "1.3.14.3.2.26",
    hashes.SHA224: "2.16.840.1.101.3.4.2.4",
    hashes.SHA256: "2.16.840.1.101.3.4.2.1",
    hashes.SHA384: "2.16.840.1.101.3.4.2.2",
    hashes.SHA512: "2.16.840.1.101.3.4.2.3",
    hashes.SHA3_224: "2.16.840.1.101.3.4.2.7",
    hashes.SHA3_256: "2.16.840.1.101.3.4.2.8",
    hashes.SHA3_384: "2.16.840.1.101.3.4.2.9",
    hashes.SHA3_512: "2.16.840.1.101.3.4.2.10",
}


def digest_info_prefix(algorithm: type[hashes.HashAlgorithm]) -> bytes:
    """The DER of a DigestInfo up to the digest itself (RFC 8017 §9.2 note 1): prefix +
    digest is the T that EMSA-PKCS1-v1_5 pads."""
    alg_id = der.tlv(der.SEQUENCE, keys.encode_oid(_DIGEST_OIDS[algorithm]) + der.tlv(der.NULL, b""))
    size = algorithm.digest_size
    digest_head = bytes([der.OCTET_STRING]) + der.length(size)
    return bytes([der.SEQUENCE]) + der.length(len(alg_id) + len(digest_head) + size) + alg_id + digest_head


_PREFIXES: dict[int, list[tuple[bytes, type[hashes.HashAlgorithm]]]] = {}
for _alg in _DIGEST_OIDS:
    _prefix = digest_info_prefix(_alg)
    _PREFIXES.setdefault(len(_prefix) + _alg.digest_size, []).append((_prefix, _alg))


def _split_digest_info(message: bytes) -> tuple[type[hashes.HashAlgorithm], bytes] | None:
    """(hash, digest) if ``message`` is a DigestInfo we know (the usual CKM_RSA_PKCS input)."""
    for prefix, algorithm in _PREFIXES.get(len(message), ()):
        if message.startswith(prefix):
            return algorithm, message[len(prefix):]
    return None


# --------------------------------------------------------------------------- key access


def _private(view: Any) -> rsa.RSAPrivateKey:
    key = keys.load_private(view)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not an RSA private key")
    return key


def _public(view: Any) -> rsa.RSAPublicKey:
    key = keys.load_public(view)
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not an RSA public key")
    return key


def _numbers(view: Any) -> rsa.RSAPrivateNumbers:
    numbers = view.cache.get("rsa.numbers")
    if numbers is None:
        numbers = _private(view).private_numbers()
        view.cache["rsa.numbers"] = numbers
    return numbers


def _k(key: Any) -> int:
    return (key.key_size + 7) // 8


def _raw_private(numbers: rsa.RSAPrivateNumbers, c: int) -> int:
    """c^d mod n with CRT and base blinding (raw RSA; pyca has no such primitive)."""
    pub = numbers.public_numbers
    n = pub.n
    r = secrets.randbelow(n - 2) + 2
    blinded = (c * pow(r, pub.e, n)) % n
    m1 = pow(blinded, numbers.dmp1, numbers.p)
    m2 = pow(blinded, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    m = (m2 + h * numbers.q) % n
    result = (m * pow(r, -1, n)) % n
    if pow(result, pub.e, n) != c:  # fault check: never release a wrong private result
        raise CryptokiError(CKR_DATA_INVALID, "raw RSA self-check failed")
    return result


# --------------------------------------------------------------------------- signers


class _Pkcs1RawSigner:
    """CKM_RSA_PKCS sign/verify: the caller supplies the DigestInfo (or any data <= k-11)."""

    def __init__(self, view: Any, private: bool) -> None:
        self._view = view
        self._key = _private(view) if private else _public(view)
        self.size = _k(self._key)

    def sign(self, message: bytes) -> bytes:
        k = self.size
        if len(message) > k - 11:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS input longer than k-11")
        split = _split_digest_info(message)
        if split is not None:  # OpenSSL builds the identical encoding, faster than Python
            algorithm, digest = split
            native.lend_gate()  # pyca signs with the GIL released
            return self._key.sign(digest, padding.PKCS1v15(), utils.Prehashed(algorithm()))
        value = _raw_private(_numbers(self._view), int.from_bytes(emsa_pkcs1_encode(message, k), "big"))
        return value.to_bytes(k, "big")

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "signature is not k bytes")
        if len(message) > self.size - 11:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS input longer than k-11")
        try:
            recovered = self._key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
        except (InvalidSignature, ValueError):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "bad PKCS#1 v1.5 signature") from None
        if not _consttime.compare_digest(recovered, message):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "bad PKCS#1 v1.5 signature")


class _X509Signer:
    """CKM_RSA_X_509: raw RSA; input <= k bytes and < n, output k bytes (spec §2.1.9)."""

    def __init__(self, view: Any, private: bool) -> None:
        self._view = view
        self._key = _private(view) if private else _public(view)
        self.size = _k(self._key)
        public = self._key.public_key() if private else self._key
        self._public_numbers = public.public_numbers()

    def sign(self, message: bytes) -> bytes:
        if len(message) > self.size:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_X_509 input longer than k")
        m = int.from_bytes(message, "big")
        if m >= self._public_numbers.n:
            raise CryptokiError(CKR_DATA_INVALID, "CKM_RSA_X_509 input not below the modulus")
        return _raw_private(_numbers(self._view), m).to_bytes(self.size, "big")

    def verify(self, message: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "signature is not k bytes")
        if len(message) > self.size:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_X_509 input longer than k")
        numbers = self._public_numbers
        s = int.from_bytes(signature, "big")
        if s >= numbers.n:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "signature not below the modulus")
        recovered = pow(s, numbers.e, numbers.n).to_bytes(self.size, "big")
        if not _consttime.compare_digest(recovered, message.rjust(self.size, b"\x00")):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "raw RSA signature mismatch")


class _PrehashedSigner:
    """Signs a digest with PKCS#1 v1.5 or PSS (the hashed mechanisms and CKM_RSA_PKCS_PSS)."""

    def __init__(self, key: Any, pad: padding.AsymmetricPadding, algorithm: type[hashes.HashAlgorithm]) -> None:
        self._key = key
        self._pad = pad
        hash_ = algorithm()  # digest_size is an instance attribute in pyca's types
        self._prehashed = utils.Prehashed(hash_)
        self._hlen = hash_.digest_size
        self.size = _k(key)
        # PKCS#1 v1.5 through the C helper where it takes the key (issue 22: no GIL parking)
        v15 = isinstance(pad, padding.PKCS1v15)
        private = isinstance(key, rsa.RSAPrivateKey)
        self._native_sign = native.rsa_pkcs1_signer(key, hash_.name, self.size) if v15 and private else None
        self._native_verify = native.verifier(key, hash_.name) if v15 and not private else None

    def sign(self, digest: bytes) -> bytes:
        if len(digest) != self._hlen:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "input is not the hash length")
        if self._native_sign is not None:
            return self._native_sign(digest)
        native.lend_gate()  # pyca signs with the GIL released
        return self._key.sign(digest, self._pad, self._prehashed)

    def verify(self, digest: bytes, signature: bytes) -> None:
        if len(signature) != self.size:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "signature is not k bytes")
        if len(digest) != self._hlen:
            raise CryptokiError(CKR_DATA_LEN_RANGE, "input is not the hash length")
        if self._native_verify is not None:
            if not self._native_verify(digest, signature):
                raise CryptokiError(CKR_SIGNATURE_INVALID, "RSA signature does not verify")
            return
        native.lend_gate()  # pyca verifies with the GIL released
        try:
            self._key.verify(signature, digest, self._pad, self._prehashed)
        except InvalidSignature:
            raise CryptokiError(CKR_SIGNATURE_INVALID, "RSA signature does not verify") from None


def pss_params(entry: MechanismEntry[RsaData], param: Any, key_bits: int) -> tuple[type[hashes.HashAlgorithm],
                                                                    type[hashes.HashAlgorithm], int]:
    """(hash, MGF1 hash, salt length) of a CK_RSA_PKCS_PSS_PARAMS, checked (spec §2.1.15):
    for the hashing mechanisms hashAlg must be the mechanism's own hash; sLen must fit a key
    of ``key_bits`` (emLen - hLen - 2)."""
    if not isinstance(param, RsaPkcsPssParams):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_RSA_PKCS_PSS_PARAMS required")
    algorithm = HASHES.get(param.hash_alg)
    mgf = MGF1.get(param.mgf)
    if algorithm is None or algorithm not in _DIGEST_OIDS or mgf is None:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "PSS hashAlg or mgf not supported")
    own = entry.data.hash
    if own is not None and own is not algorithm:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "PSS hashAlg differs from the mechanism's hash")
    em_len = (key_bits - 1 + 7) // 8
    if not 0 <= param.salt_len <= em_len - algorithm.digest_size - 2:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "PSS salt length does not fit the key")
    return algorithm, mgf, param.salt_len


def _pss_padding(entry: MechanismEntry, param: Any, key: Any) -> tuple[padding.PSS, type[hashes.HashAlgorithm]]:
    algorithm, mgf, salt_len = pss_params(entry, param, key.key_size)
    return padding.PSS(mgf=padding.MGF1(mgf()), salt_length=salt_len), algorithm


def _signer(entry: MechanismEntry[RsaData], param: Any, view: Any, private: bool) -> tuple[Any, Any]:
    """(signer, accumulator factory or None) for one sign/verify operation.

    Signers hold no operation state, so for parameterless mechanisms (PKCS#1 v1.5 with a
    hash, raw) one per key and mechanism is kept in the key's cache; PSS depends on its
    parameters and is made each time.
    """
    if param is None:
        slot = ("rsa-signer", entry.mechanism, private)
        made = view.cache.get(slot)
        if made is None:
            made = view.cache[slot] = _make_signer(entry, param, view, private)
        return made
    return _make_signer(entry, param, view, private)


def _make_signer(entry: MechanismEntry[RsaData], param: Any, view: Any, private: bool) -> tuple[Any, Any]:
    data = entry.data
    scheme = data.scheme
    if scheme is RsaScheme.PKCS:
        return _Pkcs1RawSigner(view, private), None
    if scheme is RsaScheme.X509:
        return _X509Signer(view, private), None
    key = _private(view) if private else _public(view)
    hashed = data.hash
    if scheme is RsaScheme.PSS:
        pad, algorithm = _pss_padding(entry, param, key)
    else:  # "pkcs-hash"
        pad, algorithm = padding.PKCS1v15(), hashed
    signer = _PrehashedSigner(key, pad, algorithm)
    return signer, (hash_accumulator(hashed) if hashed is not None else None)


# --------------------------------------------------------------------------- ciphers


def oaep_params(param: Any) -> tuple[type[hashes.HashAlgorithm], type[hashes.HashAlgorithm], bytes | None]:
    """(hash, MGF1 hash, label or None) of a CK_RSA_PKCS_OAEP_PARAMS, checked (spec
    §2.1.14): any hash/MGF1 pair, label via CKZ_DATA_SPECIFIED (source 0 with no data is
    accepted as "no label": several clients send it)."""
    if not isinstance(param, RsaPkcsOaepParams):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "CK_RSA_PKCS_OAEP_PARAMS required")
    algorithm = HASHES.get(param.hash_alg)
    mgf = MGF1.get(param.mgf)
    if algorithm is None or algorithm not in _DIGEST_OIDS or mgf is None:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "OAEP hashAlg or mgf not supported")
    if param.source not in (0, CKZ_DATA_SPECIFIED) or (param.source == 0 and param.source_data):
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "OAEP source must be CKZ_DATA_SPECIFIED")
    return algorithm, mgf, bytes(param.source_data) or None


def _oaep_padding(param: Any) -> tuple[padding.OAEP, int]:
    algorithm, mgf, label = oaep_params(param)
    return padding.OAEP(mgf=padding.MGF1(mgf()), algorithm=algorithm(), label=label), algorithm.digest_size


def _encryptor(entry: MechanismEntry[RsaData], param: Any, view: Any) -> CipherContext:
    key = _public(view)
    k = _k(key)
    scheme = entry.data.scheme
    if scheme is RsaScheme.X509:
        numbers = key.public_numbers()

        def raw(data: bytes) -> bytes:
            if len(data) > k:
                raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_X_509 input longer than k")
            m = int.from_bytes(data, "big")
            if m >= numbers.n:
                raise CryptokiError(CKR_DATA_INVALID, "CKM_RSA_X_509 input not below the modulus")
            return pow(m, numbers.e, numbers.n).to_bytes(k, "big")

        return CipherContext(raw, k)
    if scheme is RsaScheme.OAEP:
        pad, hlen = _oaep_padding(param)
        limit = k - 2 * hlen - 2
    else:
        pad, limit = padding.PKCS1v15(), k - 11

    def encrypt(data: bytes) -> bytes:
        if len(data) > limit:
            raise CryptokiError(CKR_DATA_LEN_RANGE, f"input longer than {limit} bytes")
        return key.encrypt(data, pad)

    return CipherContext(encrypt, k)


def _decryptor(entry: MechanismEntry[RsaData], param: Any, view: Any) -> CipherContext:
    key = _private(view)
    k = _k(key)
    scheme = entry.data.scheme
    if scheme is RsaScheme.X509:
        n = key.public_key().public_numbers().n

        def raw(data: bytes) -> bytes:
            if len(data) != k:
                raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not k bytes")
            c = int.from_bytes(data, "big")
            if c >= n:
                raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "ciphertext not below the modulus")
            return _raw_private(_numbers(view), c).to_bytes(k, "big")

        return CipherContext(raw, k)
    pad = _oaep_padding(param)[0] if scheme is RsaScheme.OAEP else padding.PKCS1v15()

    def decrypt(data: bytes) -> bytes:
        if len(data) != k:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not k bytes")
        try:
            return key.decrypt(data, pad)
        except ValueError:
            raise CryptokiError(CKR_ENCRYPTED_DATA_INVALID, "decryption failed") from None

    return CipherContext(decrypt, k)


# --------------------------------------------------------------------------- encodings for backends
# A backend that holds the private key elsewhere (a TPM) does only the raw RSA operation;
# the encodings are this family's, public so that no backend re-writes them.


def _mgf1(seed: bytes, length: int, algorithm: type[hashes.HashAlgorithm]) -> bytes:
    out, counter = b"", 0
    while len(out) < length:
        out += hash_of(algorithm, seed + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def emsa_pss_encode(m_hash: bytes, em_bits: int, algorithm: type[hashes.HashAlgorithm],
                    mgf_algorithm: type[hashes.HashAlgorithm], salt_len: int) -> bytes:
    """RFC 8017 §9.1.1 EMSA-PSS-ENCODE of a message hash."""
    h_len, em_len = len(m_hash), (em_bits + 7) // 8
    if em_len < h_len + salt_len + 2:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "PSS salt too long for the key")
    salt = os.urandom(salt_len)
    h = hash_of(algorithm, bytes(8) + m_hash + salt)
    db = bytes(em_len - salt_len - h_len - 2) + b"\x01" + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, em_len - h_len - 1, mgf_algorithm)))
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    return bytes(masked) + h + b"\xbc"


def emsa_pkcs1_encode(t: bytes, k: int) -> bytes:
    """RFC 8017 §9.2 EMSA-PKCS1-v1_5 (block type 1) around ``t``: a DigestInfo, or the
    CKM_RSA_PKCS input as given."""
    if len(t) > k - 11:
        raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_PKCS input longer than k - 11")
    return b"\x00\x01" + b"\xff" * (k - 3 - len(t)) + b"\x00" + t


class RsaPrivateOps(Protocol):
    """What a backend that keeps the private key does for :func:`external_sign_context` /
    :func:`external_decrypt_context`: the raw private operation on an encoded message to
    sign (``raw_sign``) and on a CKM_RSA_X_509 ciphertext (``raw_decrypt``: its output is
    plaintext, a device may protect it differently), and the decryptions whose padding it
    checks itself (inside the device: no padding oracle of ours). ``oaep`` may refuse
    parameters it cannot take (CKR_MECHANISM_PARAM_INVALID): it is called at C_DecryptInit."""

    def raw_sign(self, data: bytes) -> bytes: ...

    def raw_decrypt(self, data: bytes) -> bytes: ...

    def pkcs1_decrypt(self, data: bytes) -> bytes: ...

    def oaep(self, algorithm: type[hashes.HashAlgorithm], mgf: type[hashes.HashAlgorithm],
             label: bytes | None) -> Callable[[bytes], bytes]: ...


class _EncodedSigner:
    """A signer whose private operation is a backend's: ``encode`` makes the k-byte block
    (the mechanism's EMSA), ``raw`` applies the key."""

    __slots__ = ("_encode", "_raw", "size")

    def __init__(self, encode: Callable[[bytes], bytes], raw: Callable[[bytes], bytes], size: int) -> None:
        self._encode, self._raw, self.size = encode, raw, size

    def sign(self, message: bytes) -> bytes:
        return self._raw(self._encode(message)).rjust(self.size, b"\x00")

    def verify(self, message: bytes, signature: bytes) -> None:  # verification runs on the public key
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "a private key's backend signs, it does not verify")


def _encoder(entry: MechanismEntry[RsaData], param: Any, bits: int) -> Callable[[bytes], bytes]:
    """The EMSA of a signature mechanism for a key of ``bits``, parameters checked now."""
    data = entry.data
    k = (bits + 7) // 8
    scheme = data.scheme
    if scheme is RsaScheme.PKCS:
        return lambda message: emsa_pkcs1_encode(message, k)
    if scheme is RsaScheme.PKCS_HASH:
        assert data.hash is not None
        prefix = digest_info_prefix(data.hash)
        return lambda digest: emsa_pkcs1_encode(prefix + digest, k)
    if scheme is RsaScheme.PSS:
        algorithm, mgf, salt_len = pss_params(entry, param, bits)
        h_len = algorithm().digest_size  # an instance attribute in pyca's types

        def pss(digest: bytes) -> bytes:
            if len(digest) != h_len:
                raise CryptokiError(CKR_DATA_LEN_RANGE, "input is not the hash length")
            return emsa_pss_encode(digest, bits - 1, algorithm, mgf, salt_len).rjust(k, b"\x00")

        return pss
    if scheme is RsaScheme.X509:
        def raw(message: bytes) -> bytes:
            if len(message) > k:
                raise CryptokiError(CKR_DATA_LEN_RANGE, "CKM_RSA_X_509 input longer than k")
            return message.rjust(k, b"\x00")

        return raw
    raise not_supported(entry, "sign")


def external_sign_context(entry: MechanismEntry[RsaData], param: Any, public: rsa.RSAPublicKey,
                          ops: RsaPrivateOps) -> SignContext:
    """A sign context of any RSA signature mechanism on a key whose private operation a
    backend does (``ops.raw_sign``): the running hash, the encoding and the checks are ours."""
    bits = public.key_size
    signer = _EncodedSigner(_encoder(entry, param, bits), ops.raw_sign, (bits + 7) // 8)
    hashed = entry.data.hash
    return SignContext(signer, running_hash(hashed))


def external_decrypt_context(entry: MechanismEntry[RsaData], param: Any, public: rsa.RSAPublicKey,
                             ops: RsaPrivateOps) -> CipherContext:
    """A decrypt context of an RSA mechanism on a key whose private operations a backend
    does: PKCS#1 v1.5 and OAEP unpadding stay the backend's (``ops``), raw RSA is
    ``ops.raw_decrypt``; the ciphertext must be k bytes."""
    k = (public.key_size + 7) // 8
    scheme = entry.data.scheme
    fn: Callable[[bytes], bytes]
    if scheme is RsaScheme.PKCS:
        fn = ops.pkcs1_decrypt
    elif scheme is RsaScheme.OAEP:
        fn = ops.oaep(*oaep_params(param))
    elif scheme is RsaScheme.X509:
        raw = ops.raw_decrypt

        def fn(data: bytes) -> bytes:
            return raw(data).rjust(k, b"\x00")
    else:
        raise not_supported(entry, "decrypt")

    def decrypt(data: bytes) -> bytes:
        if len(data) != k:
            raise CryptokiError(CKR_ENCRYPTED_DATA_LEN_RANGE, "ciphertext is not k bytes")
        return fn(data)

    return CipherContext(decrypt, k)


def _recoverer(entry: MechanismEntry[RsaData], view: Any) -> CipherContext:
    """C_VerifyRecover (§5.15.6) for CKM_RSA_PKCS (the data inside the EMSA-PKCS1-v1_5 block,
    at most k-11 bytes) and CKM_RSA_X_509 (the whole k-byte block, as C_Sign took it
    left-padded): a signature not k bytes is CKR_SIGNATURE_LEN_RANGE, a bad one
    CKR_SIGNATURE_INVALID."""
    key = _public(view)
    k = _k(key)
    numbers = key.public_numbers()

    def recover(signature: bytes) -> bytes:
        if len(signature) != k:
            raise CryptokiError(CKR_SIGNATURE_LEN_RANGE, "signature is not k bytes")
        if entry.data.scheme is RsaScheme.X509:
            s = int.from_bytes(signature, "big")
            if s >= numbers.n:
                raise CryptokiError(CKR_SIGNATURE_INVALID, "signature not below the modulus")
            return pow(s, numbers.e, numbers.n).to_bytes(k, "big")
        try:
            return key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
        except (InvalidSignature, ValueError):
            raise CryptokiError(CKR_SIGNATURE_INVALID, "bad PKCS#1 v1.5 signature") from None

    return CipherContext(recover, k)


# --------------------------------------------------------------------------- family


class RsaFamily(EncryptionWrap):
    __slots__ = ()

    def sign_init(self, entry: MechanismEntry[RsaData], param: Any, key: Any) -> SignContext:
        signer, acc = _signer(entry, param, key, private=True)
        return SignContext(signer, acc() if acc else None)

    def verify_init(self, entry: MechanismEntry[RsaData], param: Any, key: Any) -> VerifyContext:
        signer, acc = _signer(entry, param, key, private=False)
        return VerifyContext(signer, acc() if acc else None)

    def encrypt_init(self, entry: MechanismEntry[RsaData], param: Any, key: Any) -> CipherContext:
        return _encryptor(entry, param, key)

    def verify_recover_init(self, entry: MechanismEntry[RsaData], param: Any, key: Any) -> CipherContext:
        return _recoverer(entry, key)

    def decrypt_init(self, entry: MechanismEntry[RsaData], param: Any, key: Any) -> CipherContext:
        return _decryptor(entry, param, key)

    def generate_key_pair(
        self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
        priv_template: Mapping[int, Any]
    ) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_RSA_PKCS_KEY_PAIR_GEN (spec §2.1.6): CKA_MODULUS_BITS from the public template,
        CKA_PUBLIC_EXPONENT optional (65537). pyca/OpenSSL generate only e = 65537 or 3."""
        bits = pub_template.get(CKA_MODULUS_BITS)
        if bits is None:
            raise CryptokiError(CKR_TEMPLATE_INCOMPLETE, "CKA_MODULUS_BITS missing from the public template")
        if not entry.min_key_size <= int(bits) <= entry.max_key_size:
            raise CryptokiError(CKR_KEY_SIZE_RANGE, f"RSA modulus of {bits} bits not supported")
        exponent_bytes = pub_template.get(CKA_PUBLIC_EXPONENT)
        exponent = int.from_bytes(bytes(exponent_bytes), "big") if exponent_bytes else 65537
        if exponent not in (3, 65537):
            raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"public exponent {exponent} not supported")
        key = rsa.generate_private_key(exponent, int(bits))
        return keys.key_pair_material(key)


FAMILY = RsaFamily()
_TYPES = frozenset({CKK_RSA})
_SIG = CKF_SIGN | CKF_VERIFY
_CIPHER = CKF_ENCRYPT | CKF_DECRYPT
#: PKCS#1 v1.5 and OAEP wrap secret keys (spec §2.1.7, §2.1.8; as SoftHSM2 lists them);
#: ``RsaFamily.wrap`` (``EncryptionWrap``) encrypts the key value with the same context.
_WRAP = CKF_WRAP | CKF_UNWRAP


def _reg(ckm: int, flags: int, scheme: RsaScheme, param: Any = None, hash_ckm: int | None = None) -> None:
    legacy = hash_ckm in LEGACY_HASHES  # CKM_MD5_RSA_PKCS: legacy_mechanisms slots only
    data = RsaData(scheme, {**HASHES, **LEGACY_HASHES}[hash_ckm] if hash_ckm is not None else None)
    register(MechanismEntry(ckm, flags, USE_MIN_BITS, USE_MAX_BITS, FAMILY, _TYPES, param=param, data=data,
                            legacy=legacy))


register(MechanismEntry(CKM_RSA_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, GEN_MIN_BITS, GEN_MAX_BITS, FAMILY,
                        data=KeyGenData(CKK_RSA)))
#: sign/verify with message recovery (§2.1.6, §2.1.9: the two raw mechanisms only)
_RECOVER = CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER
_reg(CKM_RSA_PKCS, _SIG | _RECOVER | _CIPHER | _WRAP, RsaScheme.PKCS)
_reg(CKM_RSA_X_509, _SIG | _RECOVER | _CIPHER, RsaScheme.X509)
_reg(CKM_RSA_PKCS_OAEP, _CIPHER | _WRAP, RsaScheme.OAEP, RsaPkcsOaepParams)
_reg(CKM_RSA_PKCS_PSS, _SIG, RsaScheme.PSS, RsaPkcsPssParams)
_reg(CKM_MD5_RSA_PKCS, _SIG, RsaScheme.PKCS_HASH, hash_ckm=CKM_MD5)
for _pkcs, _pss, _hash in (
    (CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1),
    (CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224),
    (CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256),
    (CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384),
    (CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512),
    (CKM_SHA3_224_RSA_PKCS, CKM_SHA3_224_RSA_PKCS_PSS, CKM_SHA3_224),
    (CKM_SHA3_256_RSA_PKCS, CKM_SHA3_256_RSA_PKCS_PSS, CKM_SHA3_256),
    (CKM_SHA3_384_RSA_PKCS, CKM_SHA3_384_RSA_PKCS_PSS, CKM_SHA3_384),
    (CKM_SHA3_512_RSA_PKCS, CKM_SHA3_512_RSA_PKCS_PSS, CKM_SHA3_512),
):
    _reg(_pkcs, _SIG, RsaScheme.PKCS_HASH, hash_ckm=_hash)
    _reg(_pss, _SIG, RsaScheme.PSS, RsaPkcsPssParams, hash_ckm=_hash)
