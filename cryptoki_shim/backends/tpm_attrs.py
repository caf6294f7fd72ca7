"""The TPM backend's vendor-defined attributes (cryptoki-shim range ``0xD348xxxx``, 'SH').

Kept apart from ``tpm.py`` (which needs tpm2-pytss) so the attribute tables can know these
types on every installation: a store written on a TPM machine must still load elsewhere,
and the codec must be able to decode the rows (``attributes.tables`` registers ``KINDS``
with ``codec.register_kinds``).

| attribute | kind | what |
|---|---|---|
| CKA_SHIM_TPM_KIND | ULONG | 1 = sealed (software key, sealed data key), 2 = TPM-resident |
| CKA_SHIM_TPM_PUBLIC | BYTES | marshalled TPM2B_PUBLIC of the TPM object |
| CKA_SHIM_TPM_PRIVATE | BYTES | marshalled TPM2B_PRIVATE (encrypted by the TPM's storage root key) |
| CKA_SHIM_TPM_AUTH | BYTES | the object's auth value; sensitive, so encrypted at rest with the token key |
| CKA_SHIM_TPM_PCRS | BYTES | the policy PCR selection, e.g. b"sha256:0,7" |
| CKA_SHIM_TPM_SEALED | BYTES | sealed kind: the key's secret attributes, AES-256-GCM under the sealed data key |
| CKA_SHIM_TPM_ESCROW | BYTES | optional: the secret attributes encrypted to the escrow age recipient |
"""

from __future__ import annotations

from ..spec import AttrKind

CKA_SHIM_TPM_KIND = 0xD3480101
CKA_SHIM_TPM_PUBLIC = 0xD3480102
CKA_SHIM_TPM_PRIVATE = 0xD3480103
CKA_SHIM_TPM_AUTH = 0xD3480104
CKA_SHIM_TPM_PCRS = 0xD3480105
CKA_SHIM_TPM_SEALED = 0xD3480106
CKA_SHIM_TPM_ESCROW = 0xD3480107

TPM_KIND_SEALED = 1
TPM_KIND_RESIDENT = 2

KINDS: dict[int, AttrKind] = {
    CKA_SHIM_TPM_KIND: AttrKind.ULONG,
    CKA_SHIM_TPM_PUBLIC: AttrKind.BYTES,
    CKA_SHIM_TPM_PRIVATE: AttrKind.BYTES,
    CKA_SHIM_TPM_AUTH: AttrKind.BYTES,
    CKA_SHIM_TPM_PCRS: AttrKind.BYTES,
    CKA_SHIM_TPM_SEALED: AttrKind.BYTES,
    CKA_SHIM_TPM_ESCROW: AttrKind.BYTES,
}
NAMES: dict[int, str] = {v: k for k, v in globals().items() if k.startswith("CKA_SHIM_TPM_")}
