"""TPM objects under the storage root key: sealed data objects and resident signing keys, both
gated by the same policy, ``TPM2_PolicyPCR`` over the configured PCRs then
``TPM2_PolicyAuthValue`` (the key's auth value, itself protected by the user PIN).

Everything here runs inside one ``tpm_conn.open_tpm`` unit and deals in marshalled blobs
(``TPM2B_PUBLIC`` / ``TPM2B_PRIVATE`` bytes): what the store keeps.

Facts that shaped this (DESIGN.md §6): sealed data is at most 128 bytes (we seal a 32-byte
data key, see ``tpm.py``); the TPM signs only a digest of exactly its scheme's hash length;
``userWithAuth`` is cleared so the policy is the only way to use an object.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from tpm2_pytss.constants import (
    TPM2_ALG,
    TPM2_ECC,
    TPM2_SE,
    TPMA_OBJECT,
)
from tpm2_pytss.types import (
    TPM2B_DATA,
    TPM2B_PRIVATE,
    TPM2B_PUBLIC,
    TPM2B_PUBLIC_KEY_RSA,
    TPM2B_SENSITIVE_CREATE,
    TPM2B_SENSITIVE_DATA,
    TPML_PCR_SELECTION,
    TPMS_SENSITIVE_CREATE,
    TPMT_RSA_DECRYPT,
)

from .. import spec
from ..errors import CryptokiError
from ..mechanisms.digest import sha256
from .tpm_conn import SECRET_IN, SECRET_OUT, Connection

_A = TPMA_OBJECT
#: Sealed data object: no sign/decrypt, policy only (userWithAuth clear), DA-protected.
SEAL_ATTRS = _A.FIXEDTPM | _A.FIXEDPARENT
#: Resident key: sign + decrypt (raw RSA for the padding we do ourselves), policy only.
KEY_ATTRS = (_A.FIXEDTPM | _A.FIXEDPARENT | _A.SENSITIVEDATAORIGIN | _A.SIGN_ENCRYPT
             | _A.DECRYPT)

TPM_CC_POLICY_PCR = 0x0000017F
TPM_CC_POLICY_AUTH_VALUE = 0x0000016B


# --------------------------------------------------------------------------- PCRs and policy

def parse_pcrs(text: str) -> tuple[str, tuple[int, ...]]:
    """``"sha256:0,7"`` -> ("sha256", (0, 7)); CKR_ARGUMENTS_BAD for anything else."""
    bank, _, ids = text.partition(":")
    try:
        pcrs = tuple(sorted({int(i) for i in ids.split(",") if i.strip()}))
    except ValueError:
        pcrs = ()
    if bank not in ("sha1", "sha256", "sha384") or not pcrs or not all(0 <= p < 24 for p in pcrs):
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"PCR selection {text!r}: want e.g. sha256:0,7")
    return bank, pcrs


def pcr_selection(text: str) -> TPML_PCR_SELECTION:
    bank, pcrs = parse_pcrs(text)
    return TPML_PCR_SELECTION.parse(f"{bank}:{','.join(map(str, pcrs))}")


def read_pcrs(conn: Connection, text: str) -> list[bytes]:
    """Current values of the selected PCRs, in index order."""
    _, _, values = conn.ectx.pcr_read(pcr_selection(text))
    return [bytes(v) for v in values]


def pcr_policy_digest(text: str, pcr_values: list[bytes]) -> bytes:
    """The digest of PolicyPCR(pcrs = values) alone (TPM 2.0 Part 3 §23.7): what an
    administrator authorises for keys under a policy authority (``tpm_authority``)."""
    selection = pcr_selection(text).marshal()
    return sha256(bytes(32) + struct.pack(">I", TPM_CC_POLICY_PCR) + selection + sha256(b"".join(pcr_values)))


def policy_digest(text: str, pcr_values: list[bytes]) -> bytes:
    """The policy digest of PolicyPCR(pcrs = values) then PolicyAuthValue, computed offline
    (TPM 2.0 Part 3 §23.7 and §23.18). Given expected future PCR values, this is what a key
    must be sealed to for the platform after an update."""
    return sha256(pcr_policy_digest(text, pcr_values) + struct.pack(">I", TPM_CC_POLICY_AUTH_VALUE))


def new_key_policy(conn: Connection, pcrs: str, pcr_values: list[bytes] | None = None) -> bytes:
    """authPolicy of a new object: authorised by the slot's policy authority when it has one
    (``conn.authority``), else bound to the PCR values (current ones unless given)."""
    if conn.authority is not None:
        return bytes(conn.authority.key_policy)
    return policy_digest(pcrs, pcr_values if pcr_values is not None else read_pcrs(conn, pcrs))


def _pcr_part(conn: Connection, session: int, pcrs: str, blob: Blob | None) -> None:
    """PolicyPCR over the current values, then, for a key under the policy authority,
    PolicyAuthorize with the administrator's authorisation of exactly that digest. No
    authorisation for the current values is the same failure as a PCR mismatch."""
    conn.wire.policy_pcr(session, pcr_selection(pcrs).marshal())
    authority = conn.authority
    if authority is None or blob is None or auth_policy(blob) != authority.key_policy:
        return
    approved = conn.wire.policy_get_digest(session)
    entry = authority.find(approved)
    if entry is None:
        from .tpm_conn import audit, audit_event, Cause
        cause = Cause(spec.CKR_FUNCTION_REJECTED, "PCR policy mismatch: no authorization for the current PCR values")
        audit.warning("tpm: %s", cause.name)
        audit_event("policy authorize", cause)
        raise CryptokiError(cause.ckr, cause.name)
    key, name = conn.wire.load_external_public(authority.public)
    conn.track_raw(key)
    ticket = conn.wire.verify_ecdsa(key, sha256(approved + b""), entry.r, entry.s)
    conn.wire.policy_authorize(session, approved, b"", name, ticket)


def auth_policy(blob: Blob) -> bytes:
    public, _ = TPM2B_PUBLIC.unmarshal(blob.public)
    return bytes(public.publicArea.authPolicy)


def policy_session(conn: Connection, pcrs: str, *, secret_out: bool = False, blob: Blob | None = None) -> Any:
    """A policy session satisfied for the current PCRs (the TPM checks them at use) and,
    for ``blob`` under a policy authority, authorised (``_pcr_part``).

    ``secret_out``: the command answers a secret (unsealed data, RSA plaintext), so the
    session is salted to the SRK and encrypts the response (key: session key ‖ the object's
    auth value). Signing answers nothing secret and skips the salt's ECDH."""
    session = conn.start_session(TPM2_SE.POLICY, SECRET_OUT if secret_out else 0, salted=secret_out)
    _pcr_part(conn, int(conn.ectx.tr_get_tpm_handle(session)), pcrs, blob)
    conn.ectx.policy_auth_value(session)  # through ESAPI: it then keys the HMAC with the auth value
    return session


# --------------------------------------------------------------------------- blobs

@dataclass(frozen=True)
class Blob:
    public: bytes    # marshalled TPM2B_PUBLIC
    private: bytes   # marshalled TPM2B_PRIVATE (encrypted by the TPM under the SRK)


def _sensitive(auth: bytes, data: bytes = b"") -> TPM2B_SENSITIVE_CREATE:
    return TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(userAuth=auth, data=TPM2B_SENSITIVE_DATA(data)))


def _create(conn: Connection, template: TPM2B_PUBLIC, auth: bytes, data: bytes = b"") -> tuple[Blob, TPM2B_PUBLIC]:
    # inSensitive (auth value, sealed data) is the first parameter: encrypted in a salted session
    private, public, *_ = conn.ectx.create(conn.srk, _sensitive(auth, data), template,
                                           session1=conn.secret_session(SECRET_IN))
    return Blob(public.marshal(), private.marshal()), public


def _parsed(blob: Blob) -> None:
    """A blob that does not even parse is CORRUPTED (before the TPM sees it)."""
    try:
        TPM2B_PUBLIC.unmarshal(blob.public)
        TPM2B_PRIVATE.unmarshal(blob.private)
    except Exception:
        from .tpm_conn import CORRUPTED, audit
        audit.warning("tpm: key blob does not parse: %s", CORRUPTED.name)
        raise CryptokiError(CORRUPTED.ckr, CORRUPTED.name) from None


def load_handle(conn: Connection, blob: Blob) -> int:
    """Load a stored blob under the SRK: its TPM handle (flushed when the unit ends). A
    damaged blob fails here (TPM_RC_INTEGRITY etc.)."""
    _parsed(blob)
    return conn.load_blob(blob.public, blob.private)


def load(conn: Connection, blob: Blob, auth: bytes) -> Any:
    """``load_handle`` as an ESAPI handle carrying the key's auth value."""
    handle = conn.ectx.tr_from_tpmpublic(load_handle(conn, blob))
    conn.ectx.tr_set_auth(handle, auth)
    return handle


def seal(conn: Connection, data: bytes, auth: bytes, pcrs: str, pcr_values: list[bytes] | None = None) -> Blob:
    """A keyed-hash sealed object holding ``data`` (<= 128 bytes), policy as above; sealed to
    the current PCR values unless ``pcr_values`` gives expected ones."""
    if len(data) > 128:
        raise CryptokiError(spec.CKR_DATA_LEN_RANGE, "a TPM seals at most 128 bytes")
    template = TPM2B_PUBLIC.parse("keyedhash", objectAttributes=SEAL_ATTRS,
                                  authPolicy=new_key_policy(conn, pcrs, pcr_values))
    return _create(conn, template, auth, data)[0]


def unseal(conn: Connection, blob: Blob, auth: bytes, pcrs: str) -> bytes:
    handle = load(conn, blob, auth)
    session = policy_session(conn, pcrs, secret_out=True, blob=blob)
    return bytes(conn.ectx.unseal(handle, session1=session))


# --------------------------------------------------------------------------- resident keys

#: what the TPM can make: (key type, size) -> tpm2-pytss algorithm string
RESIDENT_EC = {"secp256r1": ("ecc_nist_p256", 32, TPM2_ALG.SHA256),
               "secp384r1": ("ecc_nist_p384", 48, TPM2_ALG.SHA384)}
RESIDENT_RSA_BITS = (2048,)
HASH_ALG = {"sha1": TPM2_ALG.SHA1, "sha256": TPM2_ALG.SHA256, "sha384": TPM2_ALG.SHA384, "sha512": TPM2_ALG.SHA512}


def create_ec(conn: Connection, curve: str, auth: bytes, pcrs: str) -> tuple[Blob, bytes]:
    """An ECDSA key of ``curve`` made inside the TPM; returns the blob and the uncompressed point."""
    alg = RESIDENT_EC[curve][0]
    template = TPM2B_PUBLIC.parse(f"{alg.replace('ecc_nist_p', 'ecc')}:null", objectAttributes=KEY_ATTRS,
                                  authPolicy=new_key_policy(conn, pcrs))
    blob, public = _create(conn, template, auth)
    point = public.publicArea.unique.ecc
    return blob, b"\x04" + bytes(point.x) + bytes(point.y)


def create_rsa(conn: Connection, bits: int, auth: bytes, pcrs: str) -> tuple[Blob, int, int]:
    """An RSA key made inside the TPM; returns the blob, modulus and public exponent."""
    template = TPM2B_PUBLIC.parse(f"rsa{bits}:null", objectAttributes=KEY_ATTRS,
                                  authPolicy=new_key_policy(conn, pcrs))
    blob, public = _create(conn, template, auth)
    area = public.publicArea
    exponent = area.parameters.rsaDetail.exponent or 65537
    return blob, int.from_bytes(bytes(area.unique.rsa), "big"), exponent


def sign_ecdsa(conn: Connection, blob: Blob, auth: bytes, pcrs: str, digest: bytes, hash_alg: Any) -> tuple[int, int]:
    """ECDSA over ``digest`` (already the scheme hash's length); returns (r, s). The hot path
    of a resident key, in command bytes (``tpm_wire``: ESAPI's session HMAC costs more than
    the TPM's signature): load, policy session, PolicyPCR, PolicyAuthValue, sign; the TPM
    drops the session with the signature."""
    handle = load_handle(conn, blob)
    started = conn.wire.start_policy_session()
    session = conn.track_raw(started[0])
    _pcr_part(conn, session, pcrs, blob)
    conn.wire.policy_auth_value(session)
    signature = conn.wire.sign_ecdsa(handle, blob_name(blob), auth, started, digest, int(hash_alg))
    conn.untrack_raw(session)
    return signature


def rsa_raw(conn: Connection, blob: Blob, auth: bytes, pcrs: str, value: bytes, secret_out: bool = False) -> bytes:
    """The raw RSA private operation (TPM2_RSA_Decrypt, scheme NULL): we pad in software, so
    every PKCS#11 RSA signature mechanism (v1.5, PSS with any salt, X.509) maps onto it.
    ``secret_out`` for CKM_RSA_X_509 decryption (the answer is plaintext, not a signature)."""
    handle = load(conn, blob, auth)
    session = policy_session(conn, pcrs, secret_out=secret_out, blob=blob)
    out = conn.ectx.rsa_decrypt(handle, TPM2B_PUBLIC_KEY_RSA(value), TPMT_RSA_DECRYPT(scheme=TPM2_ALG.NULL),
                                TPM2B_DATA(), session1=session)
    return bytes(out)


def rsa_decrypt(conn: Connection, blob: Blob, auth: bytes, pcrs: str, ciphertext: bytes,
                scheme: Any, hash_alg: Any = None) -> bytes:
    """PKCS#1 v1.5 (RSAES) or OAEP decryption inside the TPM: the padding check happens there,
    not in our code (no padding oracle of ours)."""
    handle = load(conn, blob, auth)
    session = policy_session(conn, pcrs, secret_out=True, blob=blob)
    in_scheme = TPMT_RSA_DECRYPT(scheme=scheme)
    if hash_alg is not None:
        in_scheme.details.anySig.hashAlg = hash_alg
    out = conn.ectx.rsa_decrypt(handle, TPM2B_PUBLIC_KEY_RSA(ciphertext), in_scheme, TPM2B_DATA(), session1=session)
    return bytes(out)


def blob_name(blob: Blob) -> bytes:
    """The TPM name of a blob's object (nameAlg || H(TPMT_PUBLIC)), what attestation binds."""
    public, _ = TPM2B_PUBLIC.unmarshal(blob.public)
    return bytes(public.get_name())


__all__ = [
    "HASH_ALG",
    "RESIDENT_EC",
    "RESIDENT_RSA_BITS",
    "TPM2_ECC",
    "Blob",
    "blob_name",
    "create_ec",
    "create_rsa",
    "load",
    "load_handle",
    "parse_pcrs",
    "pcr_selection",
    "new_key_policy",
    "pcr_policy_digest",
    "policy_digest",
    "policy_session",
    "read_pcrs",
    "rsa_decrypt",
    "rsa_raw",
    "seal",
    "sign_ecdsa",
    "unseal",
]
