"""PCR policies an administrator authorises (issue 20 item 2, docs/tpm.md "Firmware updates").

A key made while ``[slots.tpm] policy_authority`` names the administrator's policy-signing
public key (ECDSA P-256, PEM) gets the authPolicy

    PolicyAuthorize(authority) then PolicyAuthValue

instead of PolicyPCR(values at creation) then PolicyAuthValue (TPM 2.0 Part 3 §23.16). At use
the session runs PolicyPCR over the key's PCRs (the TPM puts the *current* values into the
digest), then PolicyAuthorize with an authorisation of exactly that digest: the authority's
ECDSA signature over SHA-256(approvedPolicy ‖ policyRef), checked by the TPM
(TPM2_VerifySignature -> ticket). The PCRs still gate every use; which PCR values count is
decided by the administrator, so after a firmware update the administrator signs the new
values (``cryptoki-shim tpm authorize-pcrs``) and the keys keep working. PolicyAuthValue stays
outside the authorised part: no signature can waive the key's auth value (the user PIN).

The authorisations live in the file ``[slots.tpm] pcr_authorizations`` (JSON,
``cryptoki-shim-pcr-authorizations/1``); only the signature makes an entry count, so the file
needs no secrecy, only to be readable by the module. policyRef is empty.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from .. import spec
from ..errors import CryptokiError
from ..mechanisms.digest import sha256

FORMAT = "cryptoki-shim-pcr-authorizations/1"
TPM_CC_POLICY_AUTHORIZE = 0x0000016A
TPM_CC_POLICY_AUTH_VALUE = 0x0000016B
POLICY_REF = b""


def _public_area(key: ec.EllipticCurvePublicKey) -> bytes:
    """The authority as TPM2_LoadExternal takes it (marshalled TPM2B_PUBLIC): ECC P-256,
    SHA-256 name, sign only, scheme NULL (any hash at TPM2_VerifySignature). Fixed here: its
    name is part of every authorised key's policy."""
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public = TPM2B_PUBLIC.from_pem(pem, objectAttributes=TPMA_OBJECT.SIGN_ENCRYPT | TPMA_OBJECT.USERWITHAUTH)
    return bytes(public.marshal())


@dataclass(frozen=True)
class Authorization:
    pcrs: str
    values: tuple[bytes, ...]
    policy: bytes      # the approved PolicyPCR digest
    r: bytes
    s: bytes


class Authority:
    """The administrator's policy-signing public key and the authorisations it signed."""

    def __init__(self, public_key_pem: bytes, authorizations_path: str) -> None:
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, "policy_authority: want an ECDSA P-256 public key (PEM)")
        self.key = key
        self.public = _public_area(key)
        from tpm2_pytss.types import TPM2B_PUBLIC
        self.name = bytes(TPM2B_PUBLIC.unmarshal(self.public)[0].get_name())
        self.path = authorizations_path
        digest = sha256(bytes(32) + struct.pack(">I", TPM_CC_POLICY_AUTHORIZE) + self.name)
        digest = sha256(digest + POLICY_REF)
        #: authPolicy of a key under this authority
        self.key_policy = sha256(digest + struct.pack(">I", TPM_CC_POLICY_AUTH_VALUE))

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Authority | None:
        path = cfg.get("policy_authority") or ""
        if not path:
            return None
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"policy_authority {path}: {exc.strerror}") from None
        return cls(pem, cfg.get("pcr_authorizations") or "")

    def verifies(self, entry: Authorization) -> bool:
        der = utils.encode_dss_signature(int.from_bytes(entry.r, "big"), int.from_bytes(entry.s, "big"))
        try:
            self.key.verify(der, sha256(entry.policy + POLICY_REF), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        except InvalidSignature:
            return False
        return True

    def find(self, approved: bytes) -> Authorization | None:
        """The authorisation of the PolicyPCR digest ``approved`` whose signature verifies."""
        for entry in read_authorizations(self.path):
            if entry.policy == approved and self.verifies(entry):
                return entry
        return None


def read_authorizations(path: str) -> list[Authorization]:
    if not path:
        return []
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, f"pcr_authorizations {path}: {exc}") from None
    if doc.get("format") != FORMAT:
        raise CryptokiError(spec.CKR_DEVICE_ERROR, f"pcr_authorizations {path}: not {FORMAT}")
    return [Authorization(e["pcrs"], tuple(bytes.fromhex(v) for v in e["values"]), bytes.fromhex(e["policy"]),
                          bytes.fromhex(e["r"]), bytes.fromhex(e["s"])) for e in doc.get("authorizations", [])]


def sign_authorization(private_key: ec.EllipticCurvePrivateKey, pcrs: str, values: list[bytes]) -> Authorization:
    """What ``cryptoki-shim tpm authorize-pcrs`` adds: the PolicyPCR digest of ``values``
    signed by the administrator's key."""
    from .tpm_keys import pcr_policy_digest
    policy = pcr_policy_digest(pcrs, values)
    der = private_key.sign(sha256(policy + POLICY_REF), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(der)
    return Authorization(pcrs, tuple(values), policy, r.to_bytes(32, "big"), s.to_bytes(32, "big"))


def add_authorization(path: str, entry: Authorization) -> int:
    """Append ``entry`` (an identical policy is not repeated); the number of entries after.
    Written to a temporary file and renamed: a module reading it never sees half a file."""
    entries = [e for e in read_authorizations(path) if e.policy != entry.policy] + [entry]
    doc = {"format": FORMAT, "authorizations": [
        {"pcrs": e.pcrs, "values": [v.hex() for v in e.values], "policy": e.policy.hex(), "r": e.r.hex(),
         "s": e.s.hex()} for e in entries]}
    tmp = f"{path}.tmp{os.getpid()}"
    Path(tmp).write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)
    return len(entries)
