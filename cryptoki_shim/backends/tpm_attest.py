"""Attestation of a TPM key: a ``TPM2_Quote`` over the key's policy PCRs whose qualifying data
binds the key's TPM name and a verifier's nonce, signed by an attestation key (AK).
Called by the admin CLI (``attest`` / ``verify-attestation``).

The AK is a primary restricted ECDSA P-256 signing key in the endorsement hierarchy, made
from a fixed template: the same TPM always yields the same AK, so nothing is stored, and a
verifier pins ``ak_public`` once (enrolment: ``ak_request`` / ``ak_challenge`` /
``ak_activate`` below certify it by the TPM's EK certificate through credential activation).

What ``verify_attestation`` establishes, given a pinned AK: the quote was made by that TPM
for this nonce and this key name; the PCR values in the document are the quoted ones; the
key's policy is PolicyPCR(those PCRs at those values) + PolicyAuthValue; and the TPM name
is the hash of the public blob, whose public key is the one in the document.

Document (JSON, all binary values hex)::

    {"format": "cryptoki-shim-tpm-attestation/1",
     "nonce": hex, "pcrs": "sha256:0,7", "pcr_values": [hex, ...],
     "key_public_blob": hex (TPM2B_PUBLIC), "key_name": hex, "public_key_info": hex (SPKI DER),
     "ak_public": hex (TPM2B_PUBLIC of the AK),
     "quote": hex (TPMS_ATTEST), "signature": hex (TPMT_SIGNATURE)}
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from .. import spec
from ..spec_ints import CKA_PUBLIC_KEY_INFO
from ..errors import CryptokiError
from ..mechanisms.digest import sha256
from . import tpm_conn, tpm_keys
from .tpm_attrs import CKA_SHIM_TPM_PCRS, CKA_SHIM_TPM_PUBLIC

FORMAT = "cryptoki-shim-tpm-attestation/1"
TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018


class AttestationError(Exception):
    """The attestation does not verify; the message says which check failed."""


def _ak_template() -> Any:
    from tpm2_pytss.constants import TPMA_OBJECT as A
    from tpm2_pytss.types import TPM2B_PUBLIC
    attrs = (A.USERWITHAUTH | A.RESTRICTED | A.SIGN_ENCRYPT | A.FIXEDTPM | A.FIXEDPARENT
             | A.SENSITIVEDATAORIGIN | A.NODA)
    return TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256:null", objectAttributes=attrs)


def qualifying_data(nonce: bytes, key_name: bytes) -> bytes:
    """What the quote's extraData carries: SHA-256(nonce ‖ key name)."""
    return sha256(nonce + key_name)


def attest_key(tcti: str, attrs: Mapping[int, Any], nonce: bytes | None = None, *, lock_file: str = "") -> dict[str, Any]:
    """The attestation document of a TPM key object (its attributes, e.g. from the store).
    ``nonce`` comes from the verifier (fresh per request); 32 random bytes when absent."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG
    from tpm2_pytss.types import TPM2B_DATA, TPM2B_SENSITIVE_CREATE, TPMT_SIG_SCHEME

    public_blob = attrs.get(CKA_SHIM_TPM_PUBLIC)
    pcrs = attrs.get(CKA_SHIM_TPM_PCRS)
    if not public_blob or not pcrs:
        raise CryptokiError(spec.CKR_KEY_TYPE_INCONSISTENT, "not a TPM key object")
    pcrs_text = pcrs.decode()
    nonce = nonce if nonce is not None else os.urandom(32)
    key_name = tpm_keys.blob_name(tpm_keys.Blob(public_blob, b""))
    with tpm_conn.open_tpm(tcti, "attest", with_srk=False, lock_file=lock_file) as conn:
        ak, ak_public, *_ = conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), _ak_template(), ESYS_TR.ENDORSEMENT)
        conn.track(ak)
        values = tpm_keys.read_pcrs(conn, pcrs_text)
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.NULL)
        quoted, signature = conn.ectx.quote(ak, tpm_keys.pcr_selection(pcrs_text),
                                            TPM2B_DATA(qualifying_data(nonce, key_name)), scheme)
    return {
        "format": FORMAT,
        "nonce": nonce.hex(),
        "pcrs": pcrs_text,
        "pcr_values": [v.hex() for v in values],
        "key_public_blob": bytes(public_blob).hex(),
        "key_name": key_name.hex(),
        "public_key_info": bytes(attrs.get(CKA_PUBLIC_KEY_INFO, b"")).hex(),
        "ak_public": ak_public.marshal().hex(),
        "quote": bytes(quoted.marshal()[2:]).hex(),  # TPM2B_ATTEST -> its TPMS_ATTEST bytes
        "signature": signature.marshal().hex(),
    }


def ak_public_key(ak_public_hex: str) -> ec.EllipticCurvePublicKey:
    """The pyca key of a marshalled AK TPM2B_PUBLIC (what a verifier pins)."""
    from tpm2_pytss.types import TPM2B_PUBLIC
    public, _ = TPM2B_PUBLIC.unmarshal(bytes.fromhex(ak_public_hex))
    point = public.publicArea.unique.ecc
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + bytes(point.x) + bytes(point.y))


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AttestationError(what)


def verify_attestation(doc: Mapping[str, Any] | str | bytes, nonce: bytes, *, ak_public: str | None = None) -> None:
    """Check an attestation document: raises ``AttestationError`` naming the failed check.

    ``nonce``: the one the verifier sent. ``ak_public``: the pinned AK (hex TPM2B_PUBLIC); when
    absent the document's own AK is used, which proves consistency, not which TPM."""
    from tpm2_pytss.types import TPM2B_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE

    if isinstance(doc, (str, bytes)):
        doc = json.loads(doc)
    _check(doc.get("format") == FORMAT, "unknown format")
    _check(hmac.compare_digest(bytes.fromhex(doc["nonce"]), nonce), "nonce mismatch")
    if ak_public is not None:
        _check(hmac.compare_digest(bytes.fromhex(ak_public), bytes.fromhex(doc["ak_public"])), "not the pinned AK")
    quote_bytes = bytes.fromhex(doc["quote"])
    signature, _ = TPMT_SIGNATURE.unmarshal(bytes.fromhex(doc["signature"]))
    r = int.from_bytes(bytes(signature.signature.ecdsa.signatureR), "big")
    s = int.from_bytes(bytes(signature.signature.ecdsa.signatureS), "big")
    try:
        ak_public_key(doc["ak_public"]).verify(utils.encode_dss_signature(r, s), quote_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AttestationError("quote signature does not verify") from None
    attest, _ = TPMS_ATTEST.unmarshal(quote_bytes)
    _check(int(attest.magic) == TPM_GENERATED_VALUE, "not a TPM-generated structure")
    _check(int(attest.type) == TPM_ST_ATTEST_QUOTE, "not a quote")
    public_blob = bytes.fromhex(doc["key_public_blob"])
    key_name = tpm_keys.blob_name(tpm_keys.Blob(public_blob, b""))
    _check(key_name.hex() == doc["key_name"], "key name is not the public blob's name")
    _check(bytes(attest.extraData) == qualifying_data(nonce, key_name), "quote is not over this key and nonce")
    values = [bytes.fromhex(v) for v in doc["pcr_values"]]
    quote = attest.attested.quote
    _check(quote.pcrSelect.marshal() == tpm_keys.pcr_selection(doc["pcrs"]).marshal(), "quoted PCR selection differs")
    _check(bytes(quote.pcrDigest) == sha256(b"".join(values)), "PCR values do not match the quote")
    public, _ = TPM2B_PUBLIC.unmarshal(public_blob)
    _check(bytes(public.publicArea.authPolicy) == tpm_keys.policy_digest(doc["pcrs"], values),
           "key policy is not bound to the quoted PCR values")
    spki = bytes.fromhex(doc["public_key_info"])
    blob_spki = _blob_spki(public)
    if spki and blob_spki:
        _check(blob_spki == spki, "public key differs from the TPM object's")


def _blob_spki(public: Any) -> bytes:
    from tpm2_pytss.constants import TPM2_ALG
    from cryptography.hazmat.primitives.asymmetric import rsa
    area = public.publicArea
    if area.type == TPM2_ALG.ECC:
        curve = {32: ec.SECP256R1(), 48: ec.SECP384R1()}[len(bytes(area.unique.ecc.x))]
        key: Any = ec.EllipticCurvePublicKey.from_encoded_point(
            curve, b"\x04" + bytes(area.unique.ecc.x) + bytes(area.unique.ecc.y))
    elif area.type == TPM2_ALG.RSA:
        key = rsa.RSAPublicNumbers(area.parameters.rsaDetail.exponent or 65537,
                                   int.from_bytes(bytes(area.unique.rsa), "big")).public_key()
    else:  # a sealed key's data object: the key itself is in software
        return b""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# --------------------------------------------------------------------------- AK certified by the EK

ENROL_FORMAT = "cryptoki-shim-ak-enrolment/1"
#: the EK credential activation uses: the TCG low-range RSA 2048 EK (template L-1, policy
#: PolicySecret(endorsement) in SHA-256), which every TPM with an EK certificate has
RSA_EK = (0x01C00002, 0x81010001, "EK-RSA2048")


def _rsa_ek(conn: Any) -> Any:
    """The attester's RSA EK and its certificate (whether it is trusted is the verifier's
    call, in ``ak_challenge``): at its persistent handle when that holds the certificate's
    key, else re-created from the template."""
    from . import tpm_ek
    cert = tpm_ek.read_certificate(conn, RSA_EK[0])
    if cert is None:
        raise tpm_ek.UntrustedEK("the TPM has no RSA EK certificate (NV 0x01c00002)")
    return _find_self(conn, cert)


def _find_self(conn: Any, cert: Any) -> Any:
    from . import tpm_ek
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.internal.templates import ek_template
    from tpm2_pytss.types import TPM2B_SENSITIVE_CREATE
    from tpm2_pytss import TSS2_Exception
    try:
        handle = conn.ectx.tr_from_tpmpublic(RSA_EK[1])
        found = tpm_ek._same(tpm_ek._public_key_of(conn, handle), cert.public_key())
    except TSS2_Exception:
        found = False
    if not found:
        handle = conn.track(conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), ek_template.lookup("EK-RSA2048").template,
                                                     ESYS_TR.ENDORSEMENT)[0])
    return tpm_ek.TrustedEK(handle, cert)


def ak_request(tcti: str, *, lock_file: str = "") -> dict[str, Any]:
    """Attester, step 1: the TPM's RSA EK certificate and public area, and the AK's public area."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.types import TPM2B_SENSITIVE_CREATE
    with tpm_conn.open_tpm(tcti, "AK request", with_srk=False, lock_file=lock_file) as conn:
        ek = _rsa_ek(conn)
        ek_public, _, _ = conn.ectx.read_public(ek.handle)
        ak, ak_public, *_ = conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), _ak_template(), ESYS_TR.ENDORSEMENT)
        conn.track(ak)
    return {"format": ENROL_FORMAT, "ek_certificate": ek.certificate.public_bytes(Encoding.DER).hex(),
            "ek_public": ek_public.marshal().hex(), "ak_public": ak_public.marshal().hex()}


def ak_challenge(request: Mapping[str, Any], ca_bundle: list[Any]) -> tuple[dict[str, Any], bytes]:
    """Verifier, step 2 (no TPM): the EK certificate chains to ``ca_bundle``, the EK public area
    carries the certificate's key, the AK is a restricted, fixed signing key; then a secret is
    encrypted to the EK bound to the AK's name (TPM2_MakeCredential in software). Returns the
    challenge and the secret (keep it; the answer must equal it)."""
    from cryptography import x509
    from tpm2_pytss.constants import TPMA_OBJECT as A
    from tpm2_pytss.types import TPM2B_PUBLIC
    from tpm2_pytss.utils import make_credential

    from . import tpm_ek
    _check(request.get("format") == ENROL_FORMAT, "unknown format")
    cert = x509.load_der_x509_certificate(bytes.fromhex(request["ek_certificate"]))
    try:
        tpm_ek.verify_chain(cert, ca_bundle)
    except tpm_ek.UntrustedEK as exc:
        raise AttestationError(str(exc)) from None
    ek_public, _ = TPM2B_PUBLIC.unmarshal(bytes.fromhex(request["ek_public"]))
    _check(tpm_ek._same(serialization.load_der_public_key(ek_public.to_der()), cert.public_key()),
           "EK public area does not carry the certificate's key")
    ak_public, _ = TPM2B_PUBLIC.unmarshal(bytes.fromhex(request["ak_public"]))
    need = A.RESTRICTED | A.SIGN_ENCRYPT | A.FIXEDTPM | A.FIXEDPARENT | A.SENSITIVEDATAORIGIN
    _check(int(ak_public.publicArea.objectAttributes) & int(need) == int(need)
           and not int(ak_public.publicArea.objectAttributes) & int(A.DECRYPT), "AK is not a restricted TPM signing key")
    secret = os.urandom(32)
    blob, encrypted = make_credential(ek_public, secret, ak_public.get_name())
    return ({"format": ENROL_FORMAT, "ak_name": bytes(ak_public.get_name()).hex(),
             "credential_blob": blob.marshal().hex(), "encrypted_secret": encrypted.marshal().hex()}, secret)


def ak_activate(tcti: str, challenge: Mapping[str, Any], *, lock_file: str = "") -> bytes:
    """Attester, step 3: TPM2_ActivateCredential with the AK and the EK (PolicySecret of the
    endorsement hierarchy): only the TPM holding both gets the secret out."""
    from tpm2_pytss.constants import ESYS_TR, TPM2_ALG, TPM2_SE
    from tpm2_pytss.types import (TPM2B_DIGEST, TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPM2B_NONCE,
                                  TPM2B_SENSITIVE_CREATE, TPMT_SYM_DEF)
    _check(challenge.get("format") == ENROL_FORMAT, "unknown format")
    blob, _ = TPM2B_ID_OBJECT.unmarshal(bytes.fromhex(challenge["credential_blob"]))
    encrypted, _ = TPM2B_ENCRYPTED_SECRET.unmarshal(bytes.fromhex(challenge["encrypted_secret"]))
    with tpm_conn.open_tpm(tcti, "AK activation", with_srk=False, lock_file=lock_file) as conn:
        ek = _rsa_ek(conn)
        ak, *_ = conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), _ak_template(), ESYS_TR.ENDORSEMENT)
        conn.track(ak)
        session = conn.track(conn.ectx.start_auth_session(ESYS_TR.NONE, ESYS_TR.NONE, TPM2_SE.POLICY,
                                                          TPMT_SYM_DEF(algorithm=TPM2_ALG.NULL), TPM2_ALG.SHA256))
        conn.ectx.policy_secret(ESYS_TR.ENDORSEMENT, session, TPM2B_NONCE(), TPM2B_DIGEST(), b"", 0)
        return bytes(conn.ectx.activate_credential(ak, ek.handle, blob, encrypted, session1=ESYS_TR.PASSWORD,
                                                   session2=session))
