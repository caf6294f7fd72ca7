"""The TPM backend's vendor-defined attributes (cryptoki-shim range ``0xD348xxxx``, 'SH').

Defined, with their kinds, where every vendor attribute is: ``spec`` (written by
``scripts/gen_spec.py``), so the attribute tables and the codec know them on every
installation (a store written on a TPM machine must still load elsewhere) without
importing a backend; this module names what they mean for the TPM backend and the values
of ``CKA_SHIM_TPM_KIND``. It needs no tpm2-pytss.

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

from ..spec import (  # noqa: F401  (re-exported: the TPM backend's names for them)
    CKA_SHIM_TPM_AUTH,
    CKA_SHIM_TPM_ESCROW,
    CKA_SHIM_TPM_KIND,
    CKA_SHIM_TPM_PCRS,
    CKA_SHIM_TPM_PRIVATE,
    CKA_SHIM_TPM_PUBLIC,
    CKA_SHIM_TPM_SEALED,
)

TPM_KIND_SEALED = 1
TPM_KIND_RESIDENT = 2
