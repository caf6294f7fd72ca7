"""The spec's object attribute tables, as data.

One ``Attr(type, flags, default)`` per row of the PKCS#11 3.0 tables; ``flags`` are the
footnotes of the table "Common footnotes for object attribute tables" (section 4.2), one bit
per footnote number, plus two flags of ours that the spec states in prose rather than as a
footnote (``COPY_MODIFIABLE``, ``DERIVED``). Nothing here decides anything: ``policy.py`` is
the one validator that reads these tables.

Layers are composed per object class and sub-type (key type / certificate type); a later
layer's row replaces an earlier one for the same attribute type.

Defaults marked "SoftHSM2" are the spec's "token-specific" (footnote 9) or unspecified
defaults; we take SoftHSM2's choice (src/lib/P11Attributes.cpp, P11Objects.cpp) so clients
tested against SoftHSM2 see the same objects.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import spec

__all__ = ["F", "Attr", "NO_DEFAULT", "Schema", "schema_for", "SUPPORTED_CLASSES",
           "KEY_TYPES_BY_CLASS", "SECRET_VALUE_LENGTHS", "HMAC_KEY_TYPES", "DES_KEY_TYPES"]


class F(enum.IntFlag):
    """Footnotes of the common attribute-table footnote list (bit n = footnote n)."""

    NONE = 0
    REQUIRED_ON_CREATE = 1 << 1        # 1  MUST be specified when created with C_CreateObject
    FORBIDDEN_ON_CREATE = 1 << 2       # 2  MUST not be specified ... C_CreateObject
    REQUIRED_ON_GENERATE = 1 << 3      # 3  MUST be specified ... C_GenerateKey(Pair)
    FORBIDDEN_ON_GENERATE = 1 << 4     # 4  MUST not be specified ... C_GenerateKey(Pair)
    REQUIRED_ON_UNWRAP = 1 << 5        # 5  MUST be specified ... C_UnwrapKey
    FORBIDDEN_ON_UNWRAP = 1 << 6       # 6  MUST not be specified ... C_UnwrapKey
    SENSITIVE_IF_SENSITIVE = 1 << 7    # 7  cannot be revealed if SENSITIVE or not EXTRACTABLE
    MODIFIABLE = 1 << 8                # 8  may be modified by C_SetAttributeValue / C_CopyObject
    TOKEN_DEFAULT = 1 << 9             # 9  default value is token-specific
    SO_ONLY_TRUE = 1 << 10             # 10 can only be set to CK_TRUE by the SO
    READONLY_ONCE_TRUE = 1 << 11       # 11 cannot be changed once set to CK_TRUE
    READONLY_ONCE_FALSE = 1 << 12      # 12 cannot be changed once set to CK_FALSE
    # Not footnotes, but rules the spec states in prose:
    COPY_MODIFIABLE = 1 << 20          # 4.1.3: CKA_TOKEN/PRIVATE/MODIFIABLE/DESTROYABLE on copy
    DERIVED = 1 << 21                  # maintained by the token (LOCAL, ALWAYS_SENSITIVE, ...)


FOOTNOTE_TEXT: dict[F, str] = {
    F.REQUIRED_ON_CREATE: "footnote 1: must be specified when created with C_CreateObject",
    F.FORBIDDEN_ON_CREATE: "footnote 2: must not be specified when created with C_CreateObject",
    F.REQUIRED_ON_GENERATE: "footnote 3: must be specified when generated",
    F.FORBIDDEN_ON_GENERATE: "footnote 4: must not be specified when generated (or derived)",
    F.REQUIRED_ON_UNWRAP: "footnote 5: must be specified when unwrapped",
    F.FORBIDDEN_ON_UNWRAP: "footnote 6: must not be specified when unwrapped",
    F.SENSITIVE_IF_SENSITIVE: "footnote 7: not revealed if sensitive or unextractable",
    F.MODIFIABLE: "footnote 8: modifiable",
    F.TOKEN_DEFAULT: "footnote 9: token-specific default",
    F.SO_ONLY_TRUE: "footnote 10: can only be set to CK_TRUE by the SO",
    F.READONLY_ONCE_TRUE: "footnote 11: cannot be changed once set to CK_TRUE",
    F.READONLY_ONCE_FALSE: "footnote 12: cannot be changed once set to CK_FALSE",
    F.COPY_MODIFIABLE: "section 4.1.3: may be changed by C_CopyObject only",
    F.DERIVED: "maintained by the token, never set by applications",
}


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()

# A default may be a value or a callable of the object built so far.
Default = Any | Callable[[Mapping[int, Any]], Any]


@dataclass(frozen=True, slots=True)
class Attr:
    """One row of a spec attribute table."""

    type: int
    flags: F = F.NONE
    default: Default = NO_DEFAULT


R1, X2, R3, X4, R5, X6, S7, M8, D9, SO10, T11, F12 = (
    F.REQUIRED_ON_CREATE, F.FORBIDDEN_ON_CREATE, F.REQUIRED_ON_GENERATE,
    F.FORBIDDEN_ON_GENERATE, F.REQUIRED_ON_UNWRAP, F.FORBIDDEN_ON_UNWRAP,
    F.SENSITIVE_IF_SENSITIVE, F.MODIFIABLE, F.TOKEN_DEFAULT, F.SO_ONLY_TRUE,
    F.READONLY_ONCE_TRUE, F.READONLY_ONCE_FALSE,
)
CP, DV = F.COPY_MODIFIABLE, F.DERIVED
TOKEN_MAINTAINED = X2 | X4 | X6 | DV


# ------------------------------------------------------------------ common / storage (4.2, 4.4)

COMMON = (
    Attr(spec.CKA_CLASS, R1),
)


def _private_default(obj: Mapping[int, Any]) -> bool:
    # Footnote 9 / "token-specific": SoftHSM2 defaults CKA_PRIVATE to TRUE (P11AttrPrivate)
    # and overrides it to FALSE for public keys and certificates (P11Objects.cpp
    # "Make public keys public", certificates likewise). Data objects therefore default
    # to private, as in SoftHSM2.
    return obj.get(spec.CKA_CLASS) not in (spec.CKO_PUBLIC_KEY, spec.CKO_CERTIFICATE,
                                           spec.CKO_PROFILE)


STORAGE = (
    Attr(spec.CKA_TOKEN, CP, False),
    Attr(spec.CKA_PRIVATE, CP | D9, _private_default),
    Attr(spec.CKA_MODIFIABLE, CP, True),
    # "Only the CKA_LABEL attribute can be modified after the object is created."
    Attr(spec.CKA_LABEL, M8, b""),
    # "Can't be set to TRUE once it is set to FALSE" (footnote-12 semantics); SoftHSM2 lets
    # C_SetAttributeValue turn it to FALSE, so it is modifiable in that direction only.
    Attr(spec.CKA_COPYABLE, M8 | F12 | CP, True),
    Attr(spec.CKA_DESTROYABLE, CP, True),
    # Assigned by the core after build_object; read-only for applications (4.4.1).
    Attr(spec.CKA_UNIQUE_ID, TOKEN_MAINTAINED),
)

# ------------------------------------------------------------------ data objects (4.5)

DATA = (
    Attr(spec.CKA_APPLICATION, F.NONE, b""),
    Attr(spec.CKA_OBJECT_ID, F.NONE, b""),
    Attr(spec.CKA_VALUE, F.NONE, b""),
)

# ------------------------------------------------------------------ certificates (4.6)

CERTIFICATE = (
    Attr(spec.CKA_CERTIFICATE_TYPE, R1),
    Attr(spec.CKA_TRUSTED, SO10, False),
    Attr(spec.CKA_CERTIFICATE_CATEGORY, F.NONE, 0),   # CK_CERTIFICATE_CATEGORY_UNSPECIFIED
    Attr(spec.CKA_CHECK_VALUE, DV),                   # first 3 bytes of SHA-1(CKA_VALUE)
    Attr(spec.CKA_START_DATE, F.NONE, b""),
    Attr(spec.CKA_END_DATE, F.NONE, b""),
    Attr(spec.CKA_PUBLIC_KEY_INFO, F.NONE, b""),      # filled from CKA_VALUE when parseable
)

# X.509 public key certificates: "Only the CKA_ID, CKA_ISSUER, and CKA_SERIAL_NUMBER
# attributes may be modified after the object is created."
X509 = (
    Attr(spec.CKA_SUBJECT, R1),                       # filled from CKA_VALUE when absent
    Attr(spec.CKA_ID, M8, b""),
    Attr(spec.CKA_ISSUER, M8, b""),
    Attr(spec.CKA_SERIAL_NUMBER, M8, b""),
    Attr(spec.CKA_VALUE, R1),                         # table note 2: non-empty if URL empty
    Attr(spec.CKA_URL, F.NONE, b""),
    Attr(spec.CKA_HASH_OF_SUBJECT_PUBLIC_KEY, F.NONE, b""),
    Attr(spec.CKA_HASH_OF_ISSUER_PUBLIC_KEY, F.NONE, b""),
    Attr(spec.CKA_JAVA_MIDP_SECURITY_DOMAIN, F.NONE, 0),  # CK_SECURITY_DOMAIN_UNSPECIFIED
    Attr(spec.CKA_NAME_HASH_ALGORITHM, F.NONE, spec.CKM_SHA_1),  # "defaults to SHA-1"
)

# ------------------------------------------------------------------ keys (4.7 - 4.10)

# ---- vendor attributes of the key backends (cryptoki-shim; issues 5 and 6) -----------------
# All defined in spec (scripts/gen_spec.py), kinds included: the tables import no backend.
# CKA_SHIM_BACKEND: chosen by a generate template (or the slot default), never changed.
# The CKA_SHIM_TPM_* rows are contributed by the TPM backend only (token-maintained); the
# auth value is footnote-7 sensitive, so the store encrypts it at rest with the token key.
# CKA_SHIM_UPSTREAM_REF: the stable reference to the key's upstream object, contributed by
# the upstream backend only (token-maintained); public, never key material.
VENDOR_KEY = (
    Attr(spec.CKA_SHIM_BACKEND, X2 | X6),
    Attr(spec.CKA_SHIM_TPM_KIND, X2 | X6),
    Attr(spec.CKA_SHIM_TPM_PUBLIC, TOKEN_MAINTAINED),
    Attr(spec.CKA_SHIM_TPM_PRIVATE, TOKEN_MAINTAINED),
    Attr(spec.CKA_SHIM_TPM_AUTH, TOKEN_MAINTAINED | S7),
    Attr(spec.CKA_SHIM_TPM_PCRS, TOKEN_MAINTAINED),
    Attr(spec.CKA_SHIM_TPM_SEALED, TOKEN_MAINTAINED),
    Attr(spec.CKA_SHIM_TPM_ESCROW, TOKEN_MAINTAINED),
    Attr(spec.CKA_SHIM_UPSTREAM_REF, TOKEN_MAINTAINED),
)
# ---- end of vendor attributes ---------------------------------------------------------------

KEY = (
    Attr(spec.CKA_KEY_TYPE, R1 | R5),
    Attr(spec.CKA_ID, M8, b""),
    Attr(spec.CKA_START_DATE, M8, b""),
    Attr(spec.CKA_END_DATE, M8, b""),
    Attr(spec.CKA_DERIVE, M8, False),
    Attr(spec.CKA_LOCAL, TOKEN_MAINTAINED),
    Attr(spec.CKA_KEY_GEN_MECHANISM, TOKEN_MAINTAINED),
    Attr(spec.CKA_ALLOWED_MECHANISMS, F.NONE, ()),  # empty: every mechanism (SoftHSM2)
    *VENDOR_KEY,  # vendor rows above (issues 5, 6)
)

# Capability flags: footnote 9 defaults; SoftHSM2 defaults every one of them to TRUE.
PUBLIC_KEY = (
    Attr(spec.CKA_SUBJECT, M8, b""),
    Attr(spec.CKA_ENCRYPT, M8 | D9, True),
    Attr(spec.CKA_VERIFY, M8 | D9, True),
    Attr(spec.CKA_VERIFY_RECOVER, M8 | D9, True),
    Attr(spec.CKA_WRAP, M8 | D9, True),
    Attr(spec.CKA_TRUSTED, SO10, False),
    Attr(spec.CKA_WRAP_TEMPLATE, F.NONE, {}),
    Attr(spec.CKA_PUBLIC_KEY_INFO, F.NONE, b""),  # the mechanism may contribute it
)

PRIVATE_KEY = (
    Attr(spec.CKA_SUBJECT, M8, b""),
    # SoftHSM2: CKA_SENSITIVE and CKA_EXTRACTABLE both default to FALSE (P11AttrSensitive,
    # P11AttrExtractable). A non-extractable key still hides its footnote-7 values.
    Attr(spec.CKA_SENSITIVE, M8 | T11 | D9, False),
    Attr(spec.CKA_DECRYPT, M8 | D9, True),
    Attr(spec.CKA_SIGN, M8 | D9, True),
    Attr(spec.CKA_SIGN_RECOVER, M8 | D9, True),
    Attr(spec.CKA_UNWRAP, M8 | D9, True),
    Attr(spec.CKA_EXTRACTABLE, M8 | F12 | D9, False),
    Attr(spec.CKA_ALWAYS_SENSITIVE, TOKEN_MAINTAINED),
    Attr(spec.CKA_NEVER_EXTRACTABLE, TOKEN_MAINTAINED),
    Attr(spec.CKA_WRAP_WITH_TRUSTED, T11, False),
    Attr(spec.CKA_UNWRAP_TEMPLATE, F.NONE, {}),
    Attr(spec.CKA_ALWAYS_AUTHENTICATE, F.NONE, False),
    Attr(spec.CKA_PUBLIC_KEY_INFO, M8, b""),
    Attr(spec.CKA_DERIVE_TEMPLATE, F.NONE, {}),
)

SECRET_KEY = (
    Attr(spec.CKA_SENSITIVE, M8 | T11, False),       # spec: default CK_FALSE
    Attr(spec.CKA_ENCRYPT, M8 | D9, True),
    Attr(spec.CKA_DECRYPT, M8 | D9, True),
    Attr(spec.CKA_SIGN, M8 | D9, True),
    Attr(spec.CKA_VERIFY, M8 | D9, True),
    Attr(spec.CKA_WRAP, M8 | D9, True),
    Attr(spec.CKA_UNWRAP, M8 | D9, True),
    Attr(spec.CKA_EXTRACTABLE, M8 | F12 | D9, False),  # SoftHSM2 default FALSE
    Attr(spec.CKA_ALWAYS_SENSITIVE, TOKEN_MAINTAINED),
    Attr(spec.CKA_NEVER_EXTRACTABLE, TOKEN_MAINTAINED),
    # Key check value: computed by the token; a template value must match it, an empty one
    # suppresses it (4.10 "Secret key objects").
    Attr(spec.CKA_CHECK_VALUE, F.NONE),
    Attr(spec.CKA_WRAP_WITH_TRUSTED, T11, False),
    Attr(spec.CKA_TRUSTED, SO10, False),
    Attr(spec.CKA_WRAP_TEMPLATE, F.NONE, {}),
    Attr(spec.CKA_UNWRAP_TEMPLATE, F.NONE, {}),
    Attr(spec.CKA_DERIVE_TEMPLATE, F.NONE, {}),
)

# ------------------------------------------------------------------ key types (section 6)

RSA_PUBLIC = (                                           # 6.1.2
    Attr(spec.CKA_MODULUS, R1 | X4),
    Attr(spec.CKA_MODULUS_BITS, X2 | R3),                # computed from CKA_MODULUS on create
    Attr(spec.CKA_PUBLIC_EXPONENT, R1),
)
RSA_PRIVATE = (                                          # 6.1.3
    Attr(spec.CKA_MODULUS, R1 | X4 | X6),
    Attr(spec.CKA_PUBLIC_EXPONENT, R1 | X4 | X6),
    Attr(spec.CKA_PRIVATE_EXPONENT, R1 | X4 | X6 | S7),
    Attr(spec.CKA_PRIME_1, X4 | X6 | S7),
    Attr(spec.CKA_PRIME_2, X4 | X6 | S7),
    Attr(spec.CKA_EXPONENT_1, X4 | X6 | S7),
    Attr(spec.CKA_EXPONENT_2, X4 | X6 | S7),
    Attr(spec.CKA_COEFFICIENT, X4 | X6 | S7),
)
EC_PUBLIC = (                                            # 6.3: EC, Edwards, Montgomery
    Attr(spec.CKA_EC_PARAMS, R1 | R3),
    Attr(spec.CKA_EC_POINT, R1 | X4),
)
EC_PRIVATE = (
    Attr(spec.CKA_EC_PARAMS, R1 | X4 | X6),
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
)
# ML-DSA (3.2 §6.67) and ML-KEM (§6.68) key objects. The private CKA_VALUE (the expanded key)
# is computed from CKA_SEED, which this token requires instead (mechanisms/pqc_keys.py, the
# spec's "tokens may reject creation requests that only specify one of these values").
PQC_PUBLIC = (
    Attr(spec.CKA_PARAMETER_SET, R1 | R3),
    Attr(spec.CKA_VALUE, R1 | X4),
)
PQC_PRIVATE = (
    Attr(spec.CKA_PARAMETER_SET, R1 | X4 | X6),
    Attr(spec.CKA_SEED, X4 | X6 | S7),
    Attr(spec.CKA_VALUE, X4 | X6 | S7),
)
# SLH-DSA (§6.69): the private key is its 4n-byte value alone (SK.seed ‖ SK.prf ‖ PK.seed ‖ PK.root).
SLH_DSA_PRIVATE = (
    Attr(spec.CKA_PARAMETER_SET, R1 | X4 | X6),
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
)
# CKA_ENCAPSULATE/CKA_DECAPSULATE (3.2 §4.9/§4.10, footnotes 8, 9): on the KEM keys only, with
# the TRUE default SoftHSM2 gives every other capability flag.
ML_KEM_PUBLIC = (*PQC_PUBLIC, Attr(spec.CKA_ENCAPSULATE, M8 | D9, True),
                 Attr(spec.CKA_ENCAPSULATE_TEMPLATE, F.NONE, {}))
ML_KEM_PRIVATE = (*PQC_PRIVATE, Attr(spec.CKA_DECAPSULATE, M8 | D9, True),
                  Attr(spec.CKA_DECAPSULATE_TEMPLATE, F.NONE, {}))
SECRET_VALUE = (                                         # AES 6.10, generic secret, HMAC types
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
    Attr(spec.CKA_VALUE_LEN, X2 | R3),                   # computed from CKA_VALUE
)
DES_VALUE = (                                            # DES, DES2, DES3: fixed length, no CKA_VALUE_LEN
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
)

# DSA (§2.2) and PKCS#3 Diffie-Hellman (§2.5) keys: every value a big integer. The public
# template names the domain parameters at generation (footnote 3); the private key gets them
# from the mechanism. CKA_VALUE_BITS of a DH private key: the length of x, which a generate
# template may ask for and the token otherwise contributes (footnotes 2, 6).
DSA_PUBLIC = (
    Attr(spec.CKA_PRIME, R1 | R3),
    Attr(spec.CKA_SUBPRIME, R1 | R3),
    Attr(spec.CKA_BASE, R1 | R3),
    Attr(spec.CKA_VALUE, R1 | X4),
)
DSA_PRIVATE = (
    Attr(spec.CKA_PRIME, R1 | X4 | X6),
    Attr(spec.CKA_SUBPRIME, R1 | X4 | X6),
    Attr(spec.CKA_BASE, R1 | X4 | X6),
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
)
DH_PUBLIC = (
    Attr(spec.CKA_PRIME, R1 | R3),
    Attr(spec.CKA_BASE, R1 | R3),
    Attr(spec.CKA_VALUE, R1 | X4),
)
DH_PRIVATE = (
    Attr(spec.CKA_PRIME, R1 | X4 | X6),
    Attr(spec.CKA_BASE, R1 | X4 | X6),
    Attr(spec.CKA_VALUE, R1 | X4 | X6 | S7),
    Attr(spec.CKA_VALUE_BITS, X2 | X6),
)

# ------------------------------------------------------------------ domain parameters (4.7)

# "Common domain parameter attributes": CKA_KEY_TYPE (1), CKA_LOCAL (2, 4: the token's).
DOMAIN_PARAMETERS = (
    Attr(spec.CKA_KEY_TYPE, R1),
    Attr(spec.CKA_LOCAL, TOKEN_MAINTAINED),
)
# CKM_*_PARAMETER_GEN takes CKA_PRIME_BITS (3) and contributes the rest (4); C_CreateObject
# takes the values (1) and the token computes CKA_PRIME_BITS (2).
DSA_DOMAIN = (
    Attr(spec.CKA_PRIME, R1 | X4),
    Attr(spec.CKA_SUBPRIME, R1 | X4),
    Attr(spec.CKA_BASE, R1 | X4),
    Attr(spec.CKA_PRIME_BITS, X2 | R3),
)
DH_DOMAIN = (
    Attr(spec.CKA_PRIME, R1 | X4),
    Attr(spec.CKA_BASE, R1 | X4),
    Attr(spec.CKA_PRIME_BITS, X2 | R3),
)

# ------------------------------------------------------------------ profiles (4.13)

PROFILE = (
    Attr(spec.CKA_PROFILE_ID, F.NONE),
)

# ------------------------------------------------------------------ composition


def _names(*names: str) -> tuple[int, ...]:
    return tuple(getattr(spec, n) for n in names if hasattr(spec, n))


HMAC_KEY_TYPES: tuple[int, ...] = _names(
    "CKK_MD5_HMAC", "CKK_SHA_1_HMAC", "CKK_SHA224_HMAC", "CKK_SHA256_HMAC", "CKK_SHA384_HMAC",
    "CKK_SHA512_HMAC", "CKK_SHA512_224_HMAC", "CKK_SHA512_256_HMAC", "CKK_SHA512_T_HMAC",
    "CKK_SHA3_224_HMAC", "CKK_SHA3_256_HMAC", "CKK_SHA3_384_HMAC", "CKK_SHA3_512_HMAC",
)
EC_KEY_TYPES = (spec.CKK_EC, spec.CKK_EC_EDWARDS, spec.CKK_EC_MONTGOMERY)
#: Secret keys whose CKA_VALUE may be any non-empty length: generic, HMAC, HKDF (3.0 §2.43).
FREE_LENGTH_SECRET_TYPES: tuple[int, ...] = (spec.CKK_GENERIC_SECRET, *HMAC_KEY_TYPES, *_names("CKK_HKDF"))

KEY_TYPES_BY_CLASS: dict[int, dict[int, tuple[Attr, ...]]] = {
    spec.CKO_PUBLIC_KEY: {spec.CKK_RSA: RSA_PUBLIC, **{k: EC_PUBLIC for k in EC_KEY_TYPES},
                          spec.CKK_ML_DSA: PQC_PUBLIC, spec.CKK_ML_KEM: ML_KEM_PUBLIC, spec.CKK_SLH_DSA: PQC_PUBLIC},
    spec.CKO_PRIVATE_KEY: {spec.CKK_RSA: RSA_PRIVATE, **{k: EC_PRIVATE for k in EC_KEY_TYPES},
                           spec.CKK_ML_DSA: PQC_PRIVATE, spec.CKK_ML_KEM: ML_KEM_PRIVATE,
                           spec.CKK_SLH_DSA: SLH_DSA_PRIVATE},
    spec.CKO_SECRET_KEY: {k: SECRET_VALUE
                          for k in (spec.CKK_AES, spec.CKK_CHACHA20, *FREE_LENGTH_SECRET_TYPES)},
}
#: The DES key types (issue 23 item 9): single DES is used only where a slot allows the
#: legacy mechanisms, but its objects are secret keys like any other.
DES_KEY_TYPES: dict[int, int] = {spec.CKK_DES: 8, spec.CKK_DES2: 16, spec.CKK_DES3: 24}
KEY_TYPES_BY_CLASS[spec.CKO_SECRET_KEY].update({k: DES_VALUE for k in DES_KEY_TYPES})
# DSA and DH: key objects and their domain parameters objects (sub-type CKA_KEY_TYPE too)
KEY_TYPES_BY_CLASS[spec.CKO_PUBLIC_KEY].update({spec.CKK_DSA: DSA_PUBLIC, spec.CKK_DH: DH_PUBLIC})
KEY_TYPES_BY_CLASS[spec.CKO_PRIVATE_KEY].update({spec.CKK_DSA: DSA_PRIVATE, spec.CKK_DH: DH_PRIVATE})
KEY_TYPES_BY_CLASS[spec.CKO_DOMAIN_PARAMETERS] = {spec.CKK_DSA: DSA_DOMAIN, spec.CKK_DH: DH_DOMAIN}
CERT_TYPES: dict[int, tuple[Attr, ...]] = {spec.CKC_X_509: X509}

# Allowed CKA_VALUE lengths per secret key type (None: any non-empty length).
SECRET_VALUE_LENGTHS: dict[int, frozenset[int] | None] = {
    spec.CKK_AES: frozenset((16, 24, 32)),
    spec.CKK_CHACHA20: frozenset((32,)),
    **{k: None for k in FREE_LENGTH_SECRET_TYPES},
}
SECRET_VALUE_LENGTHS.update({k: frozenset((n,)) for k, n in DES_KEY_TYPES.items()})

_CLASS_LAYERS: dict[int, tuple[tuple[Attr, ...], ...]] = {
    spec.CKO_DATA: (COMMON, STORAGE, DATA),
    spec.CKO_CERTIFICATE: (COMMON, STORAGE, CERTIFICATE),
    spec.CKO_PUBLIC_KEY: (COMMON, STORAGE, KEY, PUBLIC_KEY),
    spec.CKO_PRIVATE_KEY: (COMMON, STORAGE, KEY, PRIVATE_KEY),
    spec.CKO_SECRET_KEY: (COMMON, STORAGE, KEY, SECRET_KEY),
    spec.CKO_PROFILE: (COMMON, STORAGE, PROFILE),
    spec.CKO_DOMAIN_PARAMETERS: (COMMON, STORAGE, DOMAIN_PARAMETERS),
}
SUPPORTED_CLASSES = frozenset(_CLASS_LAYERS)
KEY_CLASSES = frozenset(KEY_TYPES_BY_CLASS)


@dataclass(frozen=True, slots=True)
class Schema:
    """All attribute rows of one (class, sub-type), with the flag sets precomputed."""

    cls: int
    subtype: int | None
    attrs: Mapping[int, Attr]
    sensitive: frozenset[int]          # footnote 7

    def has(self, attr_type: int) -> bool:
        return attr_type in self.attrs


_SCHEMAS: dict[tuple[int, int | None], Schema] = {}


def schema_for(cls: int, subtype: int | None) -> Schema | None:
    """The schema of class ``cls`` with key/certificate type ``subtype``, or None if unsupported."""
    key = (cls, subtype)
    found = _SCHEMAS.get(key)
    if found is not None:
        return found
    layers = _CLASS_LAYERS.get(cls)
    if layers is None:
        return None
    if cls in KEY_CLASSES:
        extra = KEY_TYPES_BY_CLASS[cls].get(subtype)  # type: ignore[arg-type]
    elif cls == spec.CKO_CERTIFICATE:
        extra = CERT_TYPES.get(subtype)  # type: ignore[arg-type]
    else:
        extra = ()
    if extra is None:
        return None
    rows: dict[int, Attr] = {}
    for layer in (*layers, extra):
        for row in layer:
            rows[row.type] = row
    found = Schema(
        cls=cls,
        subtype=subtype,
        attrs=rows,
        sensitive=frozenset(t for t, a in rows.items() if a.flags & F.SENSITIVE_IF_SENSITIVE),
    )
    _SCHEMAS[key] = found
    return found
