"""The TPM backend: key material bound to a TPM 2.0 (issue 5, docs/tpm.md).

Two kinds of key, chosen per new key by ``[slots.tpm] key_kind`` (or ``CKA_SHIM_TPM_KIND`` in
the private/secret template):

* **resident** — ECDSA P-256/P-384 and RSA-2048 keys created inside the TPM; every private
  operation runs there (``tpm_keys``). The store keeps the TPM's public/private blobs.
* **sealed** — any other key the software families can make (Ed25519, X25519, secp256k1,
  AES, HMAC, RSA-4096 ...). The material is generated in software; its secret attributes
  are encrypted (AES-256-GCM) under a fresh 32-byte data key, and only that data key is
  sealed to the TPM (sealed objects hold at most 128 bytes). On use the data key is
  unsealed, the material decrypted and the software family does the work; the material is
  kept for ``unseal_cache_seconds`` and wiped on expiry, logout and C_Finalize.

Both kinds use the policy PolicyPCR(configured PCRs) + PolicyAuthValue. The auth value is
32 random bytes per key stored as ``CKA_SHIM_TPM_AUTH``, a footnote-7 attribute: the store
encrypts it at rest with the token key, which only the user PIN unwraps. So a copy of the
disk plus the TPM still needs the PIN, and no PIN is kept in memory.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa as pyca_rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .. import config, metrics, spec
from ..spec_ints import (
    CKA_CHECK_VALUE,
    CKA_CLASS,
    CKA_EC_PARAMS,
    CKA_EXTRACTABLE,
    CKA_KEY_TYPE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_SENSITIVE,
    CKA_SHIM_BACKEND,
    CKA_UNIQUE_ID,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from ..attributes import policy
from ..errors import CryptokiError
from ..mechanisms import ec as ec_family
from ..mechanisms import keys
from ..mechanisms import rsa as rsa_family
from ..mechanisms.digest import sha256
from . import tpm_conn, tpm_ek, tpm_keys
from .base import Backend
from .tpm_authority import Authority
from .tpm_escrow import decode_secret, encode_secret, escrow_encrypt
from .tpm_attrs import (
    CKA_SHIM_TPM_AUTH,
    CKA_SHIM_TPM_ESCROW,
    CKA_SHIM_TPM_KIND,
    CKA_SHIM_TPM_PCRS,
    CKA_SHIM_TPM_PRIVATE,
    CKA_SHIM_TPM_PUBLIC,
    CKA_SHIM_TPM_SEALED,
    TPM_KIND_RESIDENT,
    TPM_KIND_SEALED,
)
from .tpm_keys import Blob

_log = logging.getLogger(__name__)

S = spec
#: [slots.tpm]'s defaults: config.TPM_KEYS is where they are declared (and documented).
DEFAULTS = {name: key.default for name, key in config.TPM_KEYS.items()}
KIND_BY_NAME = {"sealed": TPM_KIND_SEALED, "resident": TPM_KIND_RESIDENT}
_SEALED_AAD = b"cryptoki-shim tpm sealed v1"
#: TPM_PT_PERMANENT (its bit 9: inLockout), TPM_PT_LOCKOUT_COUNTER, TPM_PT_MAX_AUTH_FAIL (Part 2 §6.13)
PT_PERMANENT, PT_LOCKOUT_COUNTER, PT_MAX_AUTH_FAIL, IN_LOCKOUT = 0x200, 0x20E, 0x20F, 1 << 9
_RESIDENT_CURVES = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1"}


# --------------------------------------------------------------------------- secret attributes
# encode_secret / decode_secret and the escrow copy: tpm_escrow.py (shared with tpm_backup.py)

def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


class UnsealCache:
    """Unsealed material per key, for ``seconds`` (0: none). Entries hold the encoded secret
    attributes in a bytearray (overwritten on eviction) and the family's parse cache (a pyca
    key object: dropped, not wipeable — best effort, docs/tpm.md "Threat model")."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entries: dict[bytes, tuple[float, bytearray, dict]] = {}

    def get(self, tag: bytes) -> tuple[bytearray, dict] | None:
        now = time.monotonic()
        with self._lock:
            self._evict(now)
            found = self._entries.get(tag)
            return (found[1], found[2]) if found else None

    def put(self, tag: bytes, raw: bytearray) -> dict:
        cache: dict = {}
        if self.seconds > 0:
            with self._lock:
                self._entries[tag] = (time.monotonic() + self.seconds, raw, cache)
        return cache

    def _evict(self, now: float) -> None:
        for tag in [t for t, (expiry, _, _) in self._entries.items() if expiry <= now]:
            _, raw, cache = self._entries.pop(tag)
            _wipe(raw)
            cache.clear()

    def wipe(self) -> None:
        with self._lock:
            for _, raw, cache in self._entries.values():
                _wipe(raw)
                cache.clear()
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            self._evict(time.monotonic())
            return len(self._entries)


class _View:
    """A KeyView for the software families: the object's attributes plus the unsealed ones."""

    __slots__ = ("attrs", "cache")

    def __init__(self, attrs: dict[int, Any], cache: dict) -> None:
        self.attrs = attrs
        self.cache = cache


# --------------------------------------------------------------------------- resident signers

class _TpmEcdsaSigner:
    """CKM_ECDSA[_SHAx] in the TPM: the digest is truncated to the order's bits (spec §2.3.1)
    and left-padded to the curve size, then signed with the scheme hash of that size (the TPM
    signs only digests of exactly its hash length); the signature becomes r‖s."""

    def __init__(self, backend: TpmBackend, key: Any, size: int) -> None:
        self._backend, self._key, self.size = backend, key, 2 * size
        self._n = size
        self._hash = tpm_keys.HASH_ALG["sha256" if size == 32 else "sha384"]

    def sign(self, digest: bytes) -> bytes:
        value = int.from_bytes(digest, "big")
        excess = 8 * len(digest) - 8 * self._n
        if excess > 0:
            value >>= excess
        prepared = value.to_bytes(self._n, "big")
        r, s = self._backend.resident_call(self._key, "ECDSA sign", tpm_keys.sign_ecdsa, prepared, self._hash)
        return r.to_bytes(self._n, "big") + s.to_bytes(self._n, "big")


class _TpmRsa:
    """The private operations of a resident RSA key (``rsa.RsaPrivateOps``): raw RSA in the
    TPM for signatures (the encoding is the RSA family's) and the TPM's own RSAES/OAEP
    decryption (its padding checks stay inside the TPM)."""

    __slots__ = ("_backend", "_key")

    def __init__(self, backend: TpmBackend, key: Any) -> None:
        self._backend, self._key = backend, key

    def raw_sign(self, data: bytes) -> bytes:
        return self._backend.resident_call(self._key, "RSA sign", tpm_keys.rsa_raw, data)

    def raw_decrypt(self, data: bytes) -> bytes:
        return self._backend.resident_call(self._key, "RSA decrypt", tpm_keys.rsa_raw, data, True)

    def pkcs1_decrypt(self, data: bytes) -> bytes:
        from tpm2_pytss.constants import TPM2_ALG
        return self._backend.resident_call(self._key, "RSA decrypt", tpm_keys.rsa_decrypt, data, TPM2_ALG.RSAES)

    def oaep(self, algorithm: Any, mgf: Any, label: bytes | None) -> Any:
        if mgf is not algorithm or label or algorithm.name not in tpm_keys.HASH_ALG:
            raise CryptokiError(S.CKR_MECHANISM_PARAM_INVALID,
                                "TPM OAEP: MGF1 hash must equal hashAlg, no label, SHA-1/2 only")
        from tpm2_pytss.constants import TPM2_ALG
        tpm_hash = tpm_keys.HASH_ALG[algorithm.name]

        def decrypt(data: bytes) -> bytes:
            return self._backend.resident_call(self._key, "RSA decrypt", tpm_keys.rsa_decrypt, data, TPM2_ALG.OAEP,
                                               tpm_hash)

        return decrypt


# --------------------------------------------------------------------------- the backend

class TpmBackend(Backend):
    backend_id = S.SHIM_BACKEND_TPM

    def __init__(self, slot_cfg: Any = None) -> None:
        cfg = {**DEFAULTS, **(getattr(slot_cfg, "tpm", None) or {})}
        self.tcti: str = cfg["tcti"]
        self.pcrs: str = cfg["pcrs"]
        tpm_keys.parse_pcrs(self.pcrs)
        self.key_kind: str = cfg["key_kind"]
        self.escrow_recipient: str = cfg["escrow_recipient"]
        self.lock_file: str = cfg["lock_file"]
        self.srk_handle = tpm_conn.parse_srk_handle(str(cfg.get("srk_handle", "0x81000001")))
        self.authority = Authority.from_config(cfg)
        bundle = cfg.get("ek_ca_bundle") or ""
        self.ek_bundle = tpm_ek.load_bundle(bundle) if bundle else None
        self.software_derive: bool = bool(cfg["software_derive"])
        self.cache = UnsealCache(int(cfg["unseal_cache_seconds"]))
        self.slot_id: int = getattr(slot_cfg, "id", 0) or 0

    # ---------------------------------------------------------------- plumbing

    @contextlib.contextmanager
    def open(self, what: str, **kw: Any) -> Iterator[tpm_conn.Connection]:
        """One locked TPM unit (``tpm_conn.open_tpm``) of this slot; with metrics on, the
        commands it sent in bytes and a dictionary-attack lockout are counted."""
        try:
            with tpm_conn.open_tpm(self.tcti, what, lock_file=self.lock_file, srk_handle=self.srk_handle,
                                   authority=self.authority, ek_bundle=self.ek_bundle, **kw) as conn:
                try:
                    yield conn
                finally:
                    if metrics.ON and conn.wire.commands:
                        metrics.backend_event("tpm", self.slot_id, "wire_commands", conn.wire.commands)
        except CryptokiError as exc:
            if metrics.ON and exc.ckr == S.CKR_PIN_LOCKED:
                metrics.backend_event("tpm", self.slot_id, "da_lockout")
            raise

    def probe(self) -> str:
        """``cryptoki-shim doctor``: the TPM answers, the SRK is at its persistent handle (made
        there if free), the policy PCRs read, and the dictionary-attack state; lockout fails."""
        with self.open("doctor probe") as conn:
            conn.srk  # noqa: B018  (finds, checks or makes the SRK)
            persistent = conn.persistent_srk()
            ek = (f", EK certificate trusted (issued by {tpm_ek.find_ek(conn, self.ek_bundle).certificate.issuer.rfc4514_string()})"
                  if self.ek_bundle else "")
            values = tpm_keys.read_pcrs(conn, self.pcrs)
            props = conn.wire.properties(PT_PERMANENT, 1)
            props.update(conn.wire.properties(PT_LOCKOUT_COUNTER, 4))
        srk = (f"SRK at 0x{persistent:08x}" if persistent is not None
               else "SRK re-created per operation (srk_handle none or held by another object)")
        tries = f"{props.get(PT_LOCKOUT_COUNTER, 0)}/{props.get(PT_MAX_AUTH_FAIL, 0)} failed auths"
        if props.get(PT_PERMANENT, 0) & IN_LOCKOUT:
            raise CryptokiError(S.CKR_PIN_LOCKED, f"{self.tcti}: in dictionary-attack lockout ({tries}; "
                                                  "cryptoki-shim tpm-reset-lockout)")
        return f"{self.tcti}: reachable, {srk}{ek}, PCRs {self.pcrs} read ({len(values)}), {tries}, not locked out"

    @staticmethod
    def _blob(attrs: Mapping[int, Any]) -> tuple[Blob, bytes, str]:
        try:
            blob = Blob(attrs[CKA_SHIM_TPM_PUBLIC], attrs[CKA_SHIM_TPM_PRIVATE])
            pcrs = attrs[CKA_SHIM_TPM_PCRS].decode()
        except (KeyError, UnicodeDecodeError):
            tpm_conn.audit_event("key load", tpm_conn.CORRUPTED)
            raise CryptokiError(tpm_conn.CORRUPTED.ckr, "TPM key object lacks its blob") from None
        auth = attrs.get(CKA_SHIM_TPM_AUTH)
        if auth is None:
            raise CryptokiError(S.CKR_USER_NOT_LOGGED_IN, "the key's auth value needs the user's login")
        return blob, auth, pcrs

    def resident_call(self, key: Any, what: str, fn: Any, *args: Any) -> Any:
        blob, auth, pcrs = self._blob(key.attrs)
        with self.open(what) as conn:
            return fn(conn, blob, auth, pcrs, *args)

    def _unsealed(self, key: Any) -> _View:
        """The key's attributes with its secret ones, from the cache or unsealed now."""
        blob, auth, pcrs = self._blob(key.attrs)
        tag = sha256(key.unique_id.encode() + blob.public + blob.private)
        hit = self.cache.get(tag)
        if metrics.ON:
            metrics.backend_event("tpm", self.slot_id, "unseal" if hit is None else "unseal_cache_hit")
        if hit is None:
            with self.open("unseal") as conn:
                dek = bytearray(tpm_keys.unseal(conn, blob, auth, pcrs))
            try:
                sealed = key.attrs[CKA_SHIM_TPM_SEALED]
                raw = bytearray(AESGCM(bytes(dek)).decrypt(sealed[:12], sealed[12:], _SEALED_AAD + blob.public))
            except Exception:
                tpm_conn.audit_event("unseal", tpm_conn.CORRUPTED)
                raise CryptokiError(tpm_conn.CORRUPTED.ckr, "sealed material does not decrypt") from None
            finally:
                _wipe(dek)
            hit = (raw, self.cache.put(tag, raw))
        raw, cache = hit
        return _View({**key.attrs, **decode_secret(raw)}, cache)

    @staticmethod
    def _public_view(attrs: Mapping[int, Any]) -> _View:
        """A public-key view of a resident private key (verify/encrypt with its handle)."""
        public = serialization.load_der_public_key(attrs[CKA_PUBLIC_KEY_INFO])
        return _View({CKA_CLASS: CKO_PUBLIC_KEY, **keys.public_material(public)}, {})

    # ---------------------------------------------------------------- operations

    def context_maker(self, kind: str, entry: Any) -> Any:
        """Public keys and sealed keys run the family's own maker (on the unsealed
        material); resident keys run their private operations in the TPM."""
        return functools.partial(self._operation_init, kind, entry.family.context_maker(kind, entry))

    def _operation_init(self, kind: str, software: Any, entry: Any, param: Any, key: Any) -> Any:
        attrs = key.attrs
        if attrs.get(CKA_CLASS) == CKO_PUBLIC_KEY:
            return software(entry, param, key)
        if attrs.get(CKA_SHIM_TPM_KIND) == TPM_KIND_RESIDENT:
            if kind in ("verify", "encrypt"):
                return software(entry, param, self._public_view(attrs))
            return self._resident_init(kind, entry, param, key)
        return software(entry, param, self._unsealed(key))

    def _resident_init(self, kind: str, entry: Any, param: Any, key: Any) -> Any:
        """Sign (ECDSA, RSA) and decrypt (RSA) with a TPM-resident key: the mechanism's
        encodings and running hash are its family's (``ec.external_sign_context``,
        ``rsa.external_sign_context`` / ``external_decrypt_context``), the private
        operation the TPM's."""
        if kind not in ("sign", "decrypt"):  # verify_recover: a public-key operation, never the TPM's private one
            raise CryptokiError(S.CKR_KEY_FUNCTION_NOT_PERMITTED, f"a TPM-resident key does not {kind}")
        public = serialization.load_der_public_key(key.attrs[CKA_PUBLIC_KEY_INFO])
        if isinstance(public, ec.EllipticCurvePublicKey):
            if kind != "sign":
                raise CryptokiError(S.CKR_KEY_FUNCTION_NOT_PERMITTED, "EC keys do not decrypt")
            return ec_family.external_sign_context(entry, _TpmEcdsaSigner(self, key, (public.curve.key_size + 7) // 8))
        if not isinstance(public, pyca_rsa.RSAPublicKey):
            raise CryptokiError(S.CKR_KEY_TYPE_INCONSISTENT, "a TPM-resident key is ECDSA or RSA")
        if kind == "sign":
            return rsa_family.external_sign_context(entry, param, public, _TpmRsa(self, key))
        return rsa_family.external_decrypt_context(entry, param, public, _TpmRsa(self, key))

    # ---------------------------------------------------------------- new keys

    def _kind_for(self, template: Mapping[int, Any], resident_possible: bool) -> int:
        wanted = template.get(CKA_SHIM_TPM_KIND) or KIND_BY_NAME.get(self.key_kind)
        if wanted is None:  # auto
            return TPM_KIND_RESIDENT if resident_possible else TPM_KIND_SEALED
        if wanted not in (TPM_KIND_SEALED, TPM_KIND_RESIDENT):
            raise CryptokiError(S.CKR_ATTRIBUTE_VALUE_INVALID, "CKA_SHIM_TPM_KIND must be 1 (sealed) or 2 (resident)")
        if wanted == TPM_KIND_RESIDENT and not resident_possible:
            raise CryptokiError(S.CKR_TEMPLATE_INCONSISTENT,
                                "the TPM makes only ECDSA P-256/P-384 and RSA-2048 keys (e = 65537)")
        return wanted

    def _tpm_attrs(self, kind: int, blob: Blob, auth: bytes) -> dict[int, Any]:
        return {CKA_SHIM_BACKEND: self.backend_id, CKA_SHIM_TPM_KIND: kind,
                CKA_SHIM_TPM_PUBLIC: blob.public, CKA_SHIM_TPM_PRIVATE: blob.private,
                CKA_SHIM_TPM_AUTH: auth, CKA_SHIM_TPM_PCRS: self.pcrs.encode(),
                CKA_SENSITIVE: True, CKA_EXTRACTABLE: False}

    def _resident_target(self, entry: Any, pub: Mapping[int, Any]) -> tuple[str, Any] | None:
        """("ec", curve) / ("rsa", 2048) when the TPM can make this key, else None."""
        if entry.mechanism == S.CKM_EC_KEY_PAIR_GEN and pub.get(CKA_EC_PARAMS):
            try:
                curve = keys.curve_from_params(pub[CKA_EC_PARAMS])
            except CryptokiError:
                return None
            name = _RESIDENT_CURVES.get(curve.oid)
            return ("ec", name) if name else None
        if entry.mechanism == S.CKM_RSA_PKCS_KEY_PAIR_GEN:
            exponent = pub.get(CKA_PUBLIC_EXPONENT)
            if pub.get(CKA_MODULUS_BITS) in tpm_keys.RESIDENT_RSA_BITS and (
                    not exponent or int.from_bytes(bytes(exponent), "big") == 65537):
                return ("rsa", int(pub[CKA_MODULUS_BITS]))
        return None

    def generate_key_pair(self, entry: Any, param: Any, pub: Mapping[int, Any],
                          priv: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        target = self._resident_target(entry, pub)
        kind = self._kind_for(priv, target is not None)
        auth = os.urandom(32)
        if kind == TPM_KIND_RESIDENT:
            assert target is not None
            started = time.perf_counter()
            with self.open("create resident key") as conn:
                if target[0] == "ec":
                    blob, point = tpm_keys.create_ec(conn, target[1], auth, self.pcrs)
                    curve = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1}[target[1]]()
                    public_key: Any = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
                else:
                    blob, n, e = tpm_keys.create_rsa(conn, target[1], auth, self.pcrs)
                    public_key = pyca_rsa.RSAPublicNumbers(e, n).public_key()
            _log.info("tpm: resident %s key created in %.0f ms", target[1], 1000 * (time.perf_counter() - started))
            pub_mat = keys.public_material(public_key)
            if target[0] == "ec":
                pub_mat[CKA_EC_PARAMS] = bytes(pub[CKA_EC_PARAMS])
            priv_mat = {t: v for t, v in pub_mat.items() if t in (CKA_KEY_TYPE, CKA_EC_PARAMS, CKA_MODULUS,
                                                                   CKA_PUBLIC_EXPONENT, CKA_PUBLIC_KEY_INFO)}
        else:
            pub_mat, full = entry.family.generate_key_pair(entry, param, pub, priv)
            priv_mat, blob, extra = self._seal_material({CKA_CLASS: CKO_PRIVATE_KEY, **full}, auth)
            priv_mat.update(extra)
        priv_mat.update(self._tpm_attrs(kind, blob, auth))
        pub_mat[CKA_SHIM_BACKEND] = self.backend_id
        return pub_mat, priv_mat

    def generate_key(self, entry: Any, param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        """Secret keys are always sealed (a TPM's own symmetric keys are not PKCS#11 keys)."""
        self._kind_for(template, False)
        auth = os.urandom(32)
        full = entry.family.generate_key(entry, param, template)
        value = full.get(CKA_VALUE, b"")
        material, blob, extra = self._seal_material({CKA_CLASS: CKO_SECRET_KEY, **full}, auth)
        material.update(extra)
        material.update(self._tpm_attrs(TPM_KIND_SEALED, blob, auth))
        if CKA_VALUE_LEN in full:  # a DES key type has none (its type fixes the length)
            material[CKA_VALUE_LEN] = len(value)
        material.setdefault(CKA_CHECK_VALUE, b"")
        return material

    def _seal_material(self, full: dict[int, Any], auth: bytes) -> tuple[dict[int, Any], Blob, dict[int, Any]]:
        """Split the software material: secret attributes are encrypted under a sealed data
        key, the rest stays. Returns (the rest, the sealed data key's blob, the envelope and
        escrow attributes)."""
        cls = full.pop(CKA_CLASS)
        secret_types = policy.schema_of({CKA_CLASS: cls, CKA_KEY_TYPE: full[CKA_KEY_TYPE]}).sensitive
        secret = {t: v for t, v in full.items() if t in secret_types}
        rest = {t: v for t, v in full.items() if t not in secret_types}
        raw = encode_secret(secret)
        dek = bytearray(os.urandom(32))
        try:
            started = time.perf_counter()
            with self.open("seal") as conn:
                blob = tpm_keys.seal(conn, bytes(dek), auth, self.pcrs)
            if metrics.ON:
                metrics.backend_event("tpm", self.slot_id, "seal")
            _log.debug("tpm: sealed in %.1f ms", 1000 * (time.perf_counter() - started))
            nonce = os.urandom(12)
            extra = {CKA_SHIM_TPM_SEALED: nonce + AESGCM(bytes(dek)).encrypt(nonce, bytes(raw), _SEALED_AAD + blob.public)}
            if self.escrow_recipient:
                extra[CKA_SHIM_TPM_ESCROW] = escrow_encrypt(raw, self.escrow_recipient)
        finally:
            _wipe(dek)
            _wipe(raw)
        return rest, blob, extra

    def reseal(self, attrs: Mapping[int, Any], secret: Mapping[int, Any]) -> dict[int, Any]:
        """A sealed key's attributes re-bound to *this* TPM and PCR policy, from its secret
        attributes (``tpm_escrow.escrow_decrypt``): migration to a new TPM, or re-sealing
        after a firmware update changed the PCRs. The result replaces the stored object."""
        cls = attrs[CKA_CLASS]
        auth = os.urandom(32)
        _, blob, extra = self._seal_material({CKA_CLASS: cls, CKA_KEY_TYPE: attrs[CKA_KEY_TYPE], **secret}, auth)
        out = {t: v for t, v in attrs.items() if t not in (CKA_SHIM_TPM_ESCROW, CKA_UNIQUE_ID)}
        out.update(extra)
        out.update(self._tpm_attrs(TPM_KIND_SEALED, blob, auth))
        out[CKA_SENSITIVE] = attrs.get(CKA_SENSITIVE, True)
        return out

    def reseal_key(self, key: Any) -> dict[int, Any]:
        """A stored sealed key unsealed under its present policy and sealed again under the
        slot's policy now (``cryptoki-shim tpm reseal``): the complete new attribute set."""
        view = self._unsealed(key)
        secret = {t: v for t, v in view.attrs.items() if t not in key.attrs}
        out = self.reseal(key.attrs, secret)
        out[CKA_UNIQUE_ID] = key.attrs[CKA_UNIQUE_ID]
        self.cache.wipe()
        return out

    def seal_software_key(self, attrs: Mapping[int, Any]) -> dict[int, Any]:
        """A software private or secret key's complete attribute set turned into a sealed TPM
        key's (``cryptoki-shim import`` into a TPM slot, ``cryptoki-shim tpm migrate``): its
        secret attributes (the schema's sensitive ones) go under a sealed data key, the
        object becomes sensitive and unextractable; CKA_ALWAYS_SENSITIVE / CKA_NEVER_EXTRACTABLE
        keep telling its history. Same unique id (the caller replaces the object)."""
        secret_types = policy.schema_of({CKA_CLASS: attrs[CKA_CLASS], CKA_KEY_TYPE: attrs[CKA_KEY_TYPE]}).sensitive
        secret = {t: v for t, v in attrs.items() if t in secret_types}
        rest = {t: v for t, v in attrs.items() if t not in secret_types}
        out = self.reseal(rest, secret)
        out[CKA_SENSITIVE] = True
        out[CKA_UNIQUE_ID] = attrs[CKA_UNIQUE_ID]
        return out

    def restore_from_escrow(self, key: Any, identity: str) -> dict[int, Any]:
        """A sealed key re-sealed under this TPM and the slot's policy now from its escrow copy
        (``cryptoki-shim tpm restore-escrow``): after PCRs changed for good, or on a new TPM
        (TPM-to-TPM migration: the store copied or restored there). The escrow copy stays."""
        from .tpm_escrow import escrow_decrypt
        secret = escrow_decrypt(key.attrs, identity)
        out = self.reseal(key.attrs, secret)
        out[CKA_UNIQUE_ID] = key.attrs[CKA_UNIQUE_ID]
        if CKA_SHIM_TPM_ESCROW not in out and self.escrow_recipient == "":
            out[CKA_SHIM_TPM_ESCROW] = key.attrs[CKA_SHIM_TPM_ESCROW]
        return out

    # ---------------------------------------------------------------- wrap / unwrap / derive with a TPM key

    def wrap(self, entry: Any, param: Any, wrapping_key: Any, key: Any) -> bytes:
        return entry.family.wrap(entry, param, self._software_view(wrapping_key, "wrap"), key.attrs)

    def unwrap(self, entry: Any, param: Any, unwrapping_key: Any, wrapped: bytes, key_class: int,
               key_type: int | None, value_len: int | None) -> dict[int, Any]:
        return entry.family.unwrap(entry, param, self._software_view(unwrapping_key, "unwrap"), wrapped, key_class,
                                   key_type, value_len)

    def derive(self, entry: Any, param: Any, base_key: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        """A TPM-sealed key feeds no software derivation unless ``[slots.tpm] software_derive``
        says so (issue 15 item 2): the derivation runs on the unsealed material and its result
        is a software key, outside the TPM's PCR binding — a way out of the TPM for key
        material, however one-way the KDF."""
        if base_key.attrs.get(CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED and not self.software_derive:
            raise CryptokiError(S.CKR_KEY_FUNCTION_NOT_PERMITTED,
                                "a TPM-sealed key is not derived from in software ([slots.tpm] software_derive)")
        return entry.family.derive(entry, param, self._software_view(base_key, "derive"), template)

    def decapsulate(self, entry: Any, param: Any, private_key: Any, ciphertext: bytes,
                    template: Mapping[int, Any]) -> dict[int, Any]:
        """C_DecapsulateKey with a sealed ML-KEM key runs on its unsealed seed, as a signature
        does: the shared secret reveals nothing of the key (not a derivation from it, so
        ``software_derive`` does not apply; docs/pqc.md)."""
        return entry.family.decapsulate(entry, param, self._software_view(private_key, "decapsulate"), ciphertext,
                                        template)

    def _software_view(self, key: Any, what: str) -> Any:
        if key.attrs.get(CKA_CLASS) == CKO_PUBLIC_KEY:
            return key
        if key.attrs.get(CKA_SHIM_TPM_KIND) == TPM_KIND_RESIDENT:
            raise CryptokiError(S.CKR_KEY_FUNCTION_NOT_PERMITTED, f"a TPM-resident key cannot {what} here")
        return self._unsealed(key)

    # ---------------------------------------------------------------- lifecycle

    def destroyed(self, key: Any) -> None:
        """Nothing is loaded in the TPM between operations; drop any cached material."""
        self.cache.wipe()

    def logged_out(self) -> None:
        self.cache.wipe()
