"""Trust rooted in the TPM's endorsement key (issue 20 item 3, docs/tpm.md "EK trust").

Salted sessions protect secrets on the CPU–TPM bus only if the key the salt is encrypted to
belongs to the real TPM. The SRK is re-created or read back from whoever answers on the bus,
so an *active* interposer could hand us its own key. The EK comes with a certificate from
the TPM's manufacturer (swtpm: a local CA, ``swtpm_setup --create-ek-cert``): with
``[slots.tpm] ek_ca_bundle`` set, the first unit of a process reads the EK certificate from
its NV index, checks its chain up to a CA of the bundle, and finds the EK object whose
public key is the certificate's (persistent handle, else re-created from the TCG template).
Salted sessions then use that EK: only the TPM holding its private key can decrypt the salt.
A TPM (or interposer) without a certificate chaining to the bundle gets no secret:
``CKR_DEVICE_ERROR`` with the audit cause "EK certificate not trusted".

Chain check (``verify_chain``): each certificate's signature by the next one up, validity
periods, up to a self-signed certificate of the bundle; intermediates may come from the
bundle. No revocation lists, no name constraints (docs/tpm.md states it).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import spec
from ..errors import CryptokiError

#: (certificate NV index, persistent EK handle, pytss template name): ECC first (a cheap salt)
CANDIDATES = ((0x01C0000A, 0x81010002, "EK-ECC256"), (0x01C00016, 0x81010016, "EK-HIGH-ECC384"),
              (0x01C00002, 0x81010001, "EK-RSA2048"))
#: TPM2_NV_Read moves at most this much per command (TPM_PT_NV_BUFFER_MAX is >= 1024 on swtpm)
_CHUNK = 512


class UntrustedEK(CryptokiError):
    def __init__(self, why: str) -> None:
        super().__init__(spec.CKR_DEVICE_ERROR, f"EK certificate not trusted: {why}")


def load_bundle(path: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise CryptokiError(spec.CKR_ARGUMENTS_BAD, f"ek_ca_bundle {path}: {exc}") from None
    return certs


def verify_chain(cert: x509.Certificate, bundle: list[x509.Certificate],
                 now: datetime.datetime | None = None) -> list[x509.Certificate]:
    """The chain from ``cert`` to a self-signed certificate of ``bundle`` (UntrustedEK if none)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    chain = [cert]
    current = cert
    for _ in range(8):
        if not current.not_valid_before_utc <= now <= current.not_valid_after_utc:
            raise UntrustedEK(f"{current.subject.rfc4514_string() or 'the EK certificate'} is not valid now")
        issuers = [c for c in bundle if c.subject == current.issuer]
        for issuer in issuers:
            try:
                current.verify_directly_issued_by(issuer)
            except Exception:  # noqa: BLE001 - InvalidSignature, a mismatching key type ...
                continue
            chain.append(issuer)
            if issuer.subject == issuer.issuer:
                return chain
            current = issuer
            break
        else:
            raise UntrustedEK(f"no CA of the bundle issued {current.issuer.rfc4514_string()!r}")
    raise UntrustedEK("chain too long")


@dataclass
class TrustedEK:
    handle: Any          # ESAPI handle of the EK in this unit (salt key)
    certificate: x509.Certificate


def _public_key_of(conn: Any, esys_handle: Any) -> Any:
    """The public key of a loaded object as pyca sees it."""
    public, _, _ = conn.ectx.read_public(esys_handle)
    return serialization.load_der_public_key(public.to_der())


def _same(a: Any, b: Any) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(a.public_bytes(*fmt) == b.public_bytes(*fmt))


def read_certificate(conn: Any, index: int) -> x509.Certificate | None:
    """The DER certificate in NV ``index`` (None when the index does not exist)."""
    from tpm2_pytss import TSS2_Exception
    try:
        nv = conn.ectx.tr_from_tpmpublic(index)
    except TSS2_Exception:
        return None
    public, _ = conn.ectx.nv_read_public(nv)
    size = int(public.nvPublic.dataSize)
    data = b""
    while len(data) < size:
        data += bytes(conn.ectx.nv_read(nv, min(_CHUNK, size - len(data)), len(data)))
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise UntrustedEK(f"NV index 0x{index:08x} holds no DER certificate") from None


def find_ek(conn: Any, bundle: list[x509.Certificate]) -> TrustedEK:
    """The EK whose certificate chains to ``bundle`` and whose object in the TPM has the
    certificate's public key: at its persistent handle, else re-created from its template
    (endorsement hierarchy, empty auth) and flushed when the unit ends."""
    from tpm2_pytss import TSS2_Exception
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.internal.templates import ek_template
    from tpm2_pytss.types import TPM2B_SENSITIVE_CREATE

    seen = False
    for index, persistent, template in CANDIDATES:
        cert = read_certificate(conn, index)
        if cert is None:
            continue
        seen = True
        verify_chain(cert, bundle)
        try:
            handle = conn.ectx.tr_from_tpmpublic(persistent)
            if _same(_public_key_of(conn, handle), cert.public_key()):
                return TrustedEK(handle, cert)
        except TSS2_Exception:
            pass
        try:
            made = conn.track(conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), ek_template.lookup(template).template,
                                                       ESYS_TR.ENDORSEMENT)[0])
        except TSS2_Exception:
            continue
        if _same(_public_key_of(conn, made), cert.public_key()):
            return TrustedEK(made, cert)
    raise UntrustedEK("the TPM has no EK whose certificate and key match" if seen else
                      "the TPM has no EK certificate (NV 0x01c00002 / 0x01c0000a / 0x01c00016)")
