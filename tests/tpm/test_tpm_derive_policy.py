"""A TPM-sealed key feeds no software derivation (issue 15 item 2), through the built
library on a real swtpm.

Before the fix the byte-by-byte CKM_EXTRACT_KEY_FROM_KEY attack recovered a sealed AES-256
key in 32 × 256 offline HMAC trials, and any KDF made a software copy of sealed material
(a key no longer bound to the TPM's PCR policy). Now: the weak derivations are refused on
every protected key (core/key_management.py D1), and a sealed key is the base of no
C_DeriveKey unless ``[slots.tpm] software_derive = true`` — and then the derived key still
keeps the base's protection (D3).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from p11 import raises_ckr, write_config  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_key_management_attacks import (  # noqa: E402
    ONE_BYTE_HMAC_KEY, aes_block, encrypt_zero_block, extract_attack, extract_param, xor_attack,
)
from test_tpm_backend import PCRS, user_token  # noqa: E402
from vectors_abi import Params, derive  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED  # noqa: E402


def tpm_slot(tcti: str, *, software_derive: bool) -> str:
    return (f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "tpm"\n'
            f'[slots.tpm]\ntcti = "{tcti}"\npcrs = "{PCRS}"\nunseal_cache_seconds = 0\n'
            f'software_derive = {"true" if software_derive else "false"}\n')


def sealed(client, s, mech: int, extra: dict | None = None) -> int:
    attrs = {S.CKA_VALUE_LEN: 32, S.CKA_TOKEN: True, S.CKA_DERIVE: True, **(extra or {})}
    if mech == S.CKM_AES_KEY_GEN:
        attrs[S.CKA_ENCRYPT] = True
    h = client.generate_key(s, mech, attrs)
    assert client.get(s, h, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
    return h


HKDF_CHILD = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_VALUE_LEN: 32, S.CKA_TOKEN: False,
              S.CKA_ENCRYPT: True}


def test_extract_attack_on_a_sealed_key_fails(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-derive") as (client, s):
        key = sealed(client, s, S.CKM_AES_KEY_GEN)
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
            recovered = extract_attack(client, s, key, 32)
            assert aes_block(recovered) == encrypt_zero_block(client, s, key)  # the attack worked
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
            xor_attack(client, s, key)
        generic = sealed(client, s, S.CKM_GENERIC_SECRET_KEY_GEN)
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):  # a one-way KDF: still not by default
            derive(client, s, S.CKM_HKDF_DERIVE, generic, HKDF_CHILD,
                   Params().hkdf(True, True, S.CKM_SHA256, b"salt", b"info"))


def test_software_derive_policy_allows_strong_kdfs_only(swtpm, lib_path, tmp_path):
    """With the slot's policy on, a KDF works and its key keeps the sealed base's protection;
    the weak mechanisms stay refused (that is ``weak_derivation``, not this)."""
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=True))
    with user_token(lib_path, conf, "tpm-derive-on") as (client, s):
        generic = sealed(client, s, S.CKM_GENERIC_SECRET_KEY_GEN, {S.CKA_WRAP_WITH_TRUSTED: True})
        h = derive(client, s, S.CKM_HKDF_DERIVE, generic, HKDF_CHILD,
                   Params().hkdf(True, True, S.CKM_SHA256, b"salt", b"info"))
        for attr, want in ((S.CKA_SENSITIVE, True), (S.CKA_EXTRACTABLE, False), (S.CKA_WRAP_WITH_TRUSTED, True),
                           (S.CKA_ALWAYS_SENSITIVE, True), (S.CKA_NEVER_EXTRACTABLE, True)):
            assert client.get(s, h, attr) is want, S.cka_name(attr)
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
            derive(client, s, S.CKM_EXTRACT_KEY_FROM_KEY, generic, ONE_BYTE_HMAC_KEY, extract_param(0))
