"""The rules that keep a protected key inside the token through C_DeriveKey, C_WrapKey and
C_UnwrapKey: the Clulow (2003) / Tookan (Bortolozzo et al. 2010) class of attacks, issue 15
item 2. ``attributes.policy`` checks one template against the tables; these rules relate a
new key to the key it comes from, which no single template shows.

A key is *protected* when C_GetAttributeValue will not give its value: CKA_SENSITIVE TRUE or
CKA_EXTRACTABLE FALSE (``policy.readable``). Rules (docs/security.md, "Key management"):

D1  The weak derivations (§2.43 CKM_EXTRACT_KEY_FROM_KEY, CKM_XOR_BASE_AND_DATA and the
    CKM_CONCATENATE_* family) copy bits of the base into the new key: one byte extracted into
    a 1-byte signing key is found by 256 HMAC trials, so a 32-byte key falls in 32 × 256
    tries. On a protected base they are CKR_KEY_FUNCTION_NOT_PERMITTED (the mechanism is
    valid and listed; the *key's* protection forbids this use — §5.1 definition of that
    code; CKR_MECHANISM_INVALID would tell the client the mechanism does not exist), unless
    the slot sets ``weak_derivation = true``. The derivations by encryption
    (CKM_AES/DES3_ECB/CBC_ENCRYPT_DATA) are not among them: every byte of E_K(data) depends on
    the whole key. But the caller chooses the data, so the new key is an encryption-oracle
    output of the base, one the base may not even allow (no CKA_ENCRYPT): D2 and D3 keep it
    unreadable from a protected base (issue 23 item 10).
D2  From a protected base no secret key shorter than ``MIN_DERIVED_KEY_BYTES`` is made (a
    short key is brute-forced whatever KDF made it): CKR_ATTRIBUTE_VALUE_INVALID on
    CKA_VALUE_LEN; ``weak_derivation = true`` lifts this too.
D3  A derived key is never weaker than its base(s) (the base key and an HKDF salt key): it
    inherits CKA_WRAP_WITH_TRUSTED TRUE; from a secret-key base also CKA_SENSITIVE TRUE and
    CKA_EXTRACTABLE FALSE. A template that asks otherwise is CKR_TEMPLATE_INCONSISTENT (the
    §2.43 wording for XOR/extraction, applied to every KDF). Key agreement (ECDH, PKCS#3 DH)
    is exempt from the SENSITIVE/EXTRACTABLE part: the agreed secret does not reveal the
    private key, and real clients (OpenSSL's pkcs11-provider, pkcs11-tool --derive) read it. ALWAYS_SENSITIVE and
    NEVER_EXTRACTABLE follow §5.18.5 (``policy._derived_flags``).
W1  A key is not wrapped under itself or a key of the same value: CKR_KEY_NOT_WRAPPABLE.
T1  A trusted key (CKA_TRUSTED, set by the SO only, and cleared by the SO only:
    ``policy._check_change``) never decrypts: C_DecryptInit with it is
    CKR_KEY_FUNCTION_NOT_PERMITTED. Else a CKA_WRAP_WITH_TRUSTED key, wrapped under the
    trusted key (the one place 4.9 lets it go), comes out of C_Decrypt of the blob — and the
    default templates give every key CKA_DECRYPT TRUE.
T2  What a trusted key unwraps is CKA_SENSITIVE TRUE and CKA_WRAP_WITH_TRUSTED TRUE (a
    template asking otherwise is CKR_TEMPLATE_INCONSISTENT): else the same blob comes back as
    a readable key, or as one that leaves again under an untrusted key.
T3  A key is not wrapped under a trusted RSA public key whose private key is in this token
    (CKR_KEY_NOT_WRAPPABLE): that private key would decrypt or unwrap the blob here.

Not a rule, by design: a sensitive key with CKA_EXTRACTABLE TRUE and CKA_WRAP_WITH_TRUSTED
FALSE may leave wrapped under any key with CKA_WRAP — one the user imported with a known
value included (4.9: that is what EXTRACTABLE means). Refusing "wrap under a key that can
decrypt" (Clulow) for such a key would break every default template and protect nothing: the
user wraps under a known key instead. A key that must not leave is CKA_EXTRACTABLE FALSE, or
CKA_WRAP_WITH_TRUSTED TRUE with trusted keys provisioned by the SO.
"""

from __future__ import annotations

import hmac
from typing import Any, Iterable, Mapping

from .. import spec as A
from ..spec_ints import (
    CKA_CLASS,
    CKA_EXTRACTABLE,
    CKA_MODULUS,
    CKA_SENSITIVE,
    CKA_TRUSTED,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_WRAP_WITH_TRUSTED,
    CKM_DH_PKCS_DERIVE,
    CKM_ECDH1_DERIVE,
    CKM_ML_KEM,
    CKO_DATA,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from ..errors import CryptokiError


#: D1: mechanisms whose output is bits of the base key (§2.43 and the concatenations).
WEAK_DERIVATIONS = frozenset(int(m) for m in (
    A.CKM_EXTRACT_KEY_FROM_KEY, A.CKM_XOR_BASE_AND_DATA, A.CKM_CONCATENATE_BASE_AND_KEY,
    A.CKM_CONCATENATE_BASE_AND_DATA, A.CKM_CONCATENATE_DATA_AND_BASE))
#: D3: key agreement — the new key is not a function of the private key alone (a KEM's
#: decapsulated secret too: core/kem.py).
KEY_AGREEMENT = frozenset({CKM_ECDH1_DERIVE, CKM_DH_PKCS_DERIVE, CKM_ML_KEM})
#: D2: 128 bits, the least any key of this token offers (AES-128, SP 800-131A's floor).
MIN_DERIVED_KEY_BYTES = 16


def protected(attrs: Mapping[int, Any]) -> bool:
    """Whether the key's value is kept from the caller (``policy.readable`` says no)."""
    return attrs.get(CKA_SENSITIVE) is True or attrs.get(CKA_EXTRACTABLE) is not True


def _refuse_contradiction(template: Mapping[int, Any], forced: Mapping[int, Any], why: str) -> None:
    for t, v in forced.items():
        if t in template and template[t] != v:
            raise CryptokiError(A.CKR_TEMPLATE_INCONSISTENT, f"{A.cka_name(t)}: {why}")


def derive_rules(mechanism: int, bases: Iterable[Mapping[int, Any]], template: Mapping[int, Any],
                 makes_key: bool, weak_allowed: bool) -> dict[int, Any]:
    """D1-D3 before a derivation runs: raises, or returns the attributes the new key is
    given (to be merged into the mechanism's material)."""
    bases = list(bases)
    guarded = any(protected(b) for b in bases)
    if guarded and not weak_allowed and mechanism in WEAK_DERIVATIONS:
        raise CryptokiError(A.CKR_KEY_FUNCTION_NOT_PERMITTED,
                            f"{A.ckm_name(mechanism)} would copy bits of a protected key (weak_derivation is off)")
    if not makes_key:  # CKM_HKDF_DATA: a data object, readable by definition (§2.62)
        return {}
    length = template.get(CKA_VALUE_LEN)
    if guarded and not weak_allowed and isinstance(length, int) and length < MIN_DERIVED_KEY_BYTES:
        raise CryptokiError(A.CKR_ATTRIBUTE_VALUE_INVALID,
                            f"CKA_VALUE_LEN {length} < {MIN_DERIVED_KEY_BYTES} from a protected key")
    forced: dict[int, Any] = {}
    if any(b.get(CKA_WRAP_WITH_TRUSTED) is True for b in bases):
        forced[CKA_WRAP_WITH_TRUSTED] = True
    if mechanism not in KEY_AGREEMENT:
        if any(b.get(CKA_SENSITIVE) is True for b in bases):
            forced[CKA_SENSITIVE] = True
        if any(b.get(CKA_EXTRACTABLE) is not True for b in bases):
            forced[CKA_EXTRACTABLE] = False
    _refuse_contradiction(template, forced, "a derived key may not be weaker than its base key")
    return forced


def check_derived_length(bases: Iterable[Mapping[int, Any]], material: Mapping[int, Any],
                         weak_allowed: bool) -> None:
    """D2 on the material itself: the length may come from the key type or the data."""
    value = material.get(CKA_VALUE)
    if (weak_allowed or value is None or material.get(CKA_CLASS) == CKO_DATA
            or len(value) >= MIN_DERIVED_KEY_BYTES or not any(protected(b) for b in bases)):
        return
    raise CryptokiError(A.CKR_ATTRIBUTE_VALUE_INVALID,
                        f"a {len(value)}-byte key from a protected key (at least {MIN_DERIVED_KEY_BYTES})")


def wrap_rules(wrapping: Mapping[int, Any], key: Mapping[int, Any], same_object: bool) -> None:
    """W1, after the spec's own checks (CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED)."""
    if same_object or _same_secret(wrapping, key):
        raise CryptokiError(A.CKR_KEY_NOT_WRAPPABLE, "a key is not wrapped under itself")


def _same_secret(a: Mapping[int, Any], b: Mapping[int, Any]) -> bool:
    va, vb = a.get(CKA_VALUE), b.get(CKA_VALUE)
    return (a.get(CKA_CLASS) == CKO_SECRET_KEY == b.get(CKA_CLASS) and isinstance(va, bytes)
            and isinstance(vb, bytes) and hmac.compare_digest(va, vb))


def trusted_public_with_private_here(wrapping: Mapping[int, Any]) -> list[tuple[int, Any]] | None:
    """T3: the search template for the private half of a trusted RSA public wrapping key, or
    None when the rule does not apply."""
    if wrapping.get(CKA_CLASS) != CKO_PUBLIC_KEY or wrapping.get(CKA_TRUSTED) is not True:
        return None
    modulus = wrapping.get(CKA_MODULUS)
    return [(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_MODULUS, modulus)] if modulus else None


def check_decrypt(key: Mapping[int, Any]) -> None:
    """T1."""
    if key.get(CKA_TRUSTED) is True:
        raise CryptokiError(A.CKR_KEY_FUNCTION_NOT_PERMITTED,
                            "a trusted key does not decrypt (it would open what it wrapped)")


def unwrap_rules(unwrapping: Mapping[int, Any], template: Mapping[int, Any]) -> dict[int, Any]:
    """T2: the attributes the unwrapped key is given (template contradictions refused)."""
    if unwrapping.get(CKA_TRUSTED) is not True:
        return {}
    forced = {CKA_SENSITIVE: True, CKA_WRAP_WITH_TRUSTED: True}
    _refuse_contradiction(template, forced, "what a trusted key unwraps keeps the protection it may have had")
    return forced
