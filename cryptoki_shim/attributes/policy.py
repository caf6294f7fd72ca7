"""The one attribute validator: reads ``tables.py`` for create, generate, unwrap, derive, copy,
set and get.

Error codes follow PKCS#11 3.0 section 4.1 "Creating, modifying, and copying objects":

1. an attribute type nobody knows             -> CKR_ATTRIBUTE_TYPE_INVALID
2. an invalid value for a valid attribute      -> CKR_ATTRIBUTE_VALUE_INVALID
3. a value for a read-only attribute           -> CKR_ATTRIBUTE_READ_ONLY
   (footnotes 2/4/6 "must not be specified", CKA_UNIQUE_ID, footnotes 10/11/12)
4. not enough to specify the object            -> CKR_TEMPLATE_INCOMPLETE (footnotes 1/3/5)
5. values that cannot hold together            -> CKR_TEMPLATE_INCONSISTENT (the spec's own
   example: a secret key with a public/private-key attribute; template vs. mechanism values)

Choices where the spec leaves room (each also named in the error message):

* An unknown or unsupported CKA_CLASS / CKA_KEY_TYPE / CKA_CERTIFICATE_TYPE value is
  CKR_ATTRIBUTE_VALUE_INVALID (item 2; SoftHSM2 does the same); a key type that cannot go with
  the class (CKK_AES public key) is CKR_TEMPLATE_INCONSISTENT (item 5).
* CKO_PROFILE objects describe the token and are made by the token (``build_profile``); an
  application template with CKA_CLASS = CKO_PROFILE is CKR_ATTRIBUTE_VALUE_INVALID.
* Footnote 4 ("must not be specified when generated") also applies to C_DeriveKey: key material
  comes from the mechanism there too.
* C_SetAttributeValue with an attribute the object's class does not have is
  CKR_ATTRIBUTE_TYPE_INVALID (as C_GetAttributeValue reports it).
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Callable, Mapping

from cryptography.hazmat.primitives import hashes

from .. import der, spec
from ..errors import CryptokiError
from . import codec
from .tables import (
    F, FOOTNOTE_TEXT, NO_DEFAULT, SECRET_VALUE_LENGTHS, HMAC_KEY_TYPES, KEY_CLASSES, DES_KEY_TYPES,
    KEY_TYPES_BY_CLASS, Schema, schema_for,
)

__all__ = ["Origin", "SecretMaker", "build_object", "build_profile", "check_set", "readable", "has_attribute",
           "sealed_types", "schema_of", "secret_maker"]

log = logging.getLogger(__name__)


class Origin(enum.Enum):
    """Which function creates the object (selects footnotes 1-6 and the derived flags)."""

    # Members are singletons compared by identity: hash them by identity too (C speed; Enum's
    # own __hash__ is Python code, and build_object looks origins up in dicts per call).
    __hash__ = object.__hash__

    CREATE = "C_CreateObject"
    GENERATE = "C_GenerateKey(Pair)"
    UNWRAP = "C_UnwrapKey"
    DERIVE = "C_DeriveKey"
    COPY = "C_CopyObject"


_REQUIRED: dict[Origin, F] = {
    Origin.CREATE: F.REQUIRED_ON_CREATE,
    Origin.GENERATE: F.REQUIRED_ON_GENERATE,
    Origin.UNWRAP: F.REQUIRED_ON_UNWRAP,
    Origin.DERIVE: F.NONE,
}
_FORBIDDEN: dict[Origin, F] = {
    Origin.CREATE: F.FORBIDDEN_ON_CREATE,
    Origin.GENERATE: F.FORBIDDEN_ON_GENERATE,
    Origin.UNWRAP: F.FORBIDDEN_ON_UNWRAP,
    Origin.DERIVE: F.FORBIDDEN_ON_GENERATE,
}


def _name(attr_type: int) -> str:
    return spec.cka_name(attr_type)


def _fail(ckr: int, attr_type: int | None, why: str) -> CryptokiError:
    msg = f"{_name(attr_type)}: {why}" if attr_type is not None else why
    log.debug("attribute policy: %s -> %s", msg, spec.ckr_name(ckr))
    return CryptokiError(ckr, msg)


def _footnote(flag: F) -> str:
    return FOOTNOTE_TEXT[flag]


# --------------------------------------------------------------------------- schema lookup

_SUBTYPE_ATTR: dict[int, int] = {
    spec.CKO_PUBLIC_KEY: spec.CKA_KEY_TYPE,
    spec.CKO_PRIVATE_KEY: spec.CKA_KEY_TYPE,
    spec.CKO_SECRET_KEY: spec.CKA_KEY_TYPE,
    spec.CKO_DOMAIN_PARAMETERS: spec.CKA_KEY_TYPE,
    spec.CKO_CERTIFICATE: spec.CKA_CERTIFICATE_TYPE,
}


def schema_of(attrs: Mapping[int, Any]) -> Schema:
    """The schema of an existing object (built by ``build_object``)."""
    cls = attrs[spec.CKA_CLASS]
    sub_attr = _SUBTYPE_ATTR.get(cls)
    found = schema_for(cls, attrs.get(sub_attr) if sub_attr is not None else None)
    if found is None:  # only objects we built reach here
        raise CryptokiError(spec.CKR_GENERAL_ERROR, f"object of unsupported class {cls:#x}")
    return found


def _resolve_schema(merged: Mapping[int, Any]) -> Schema:
    """Class and sub-type of a new object from template + material (4.1.1 items 2, 4, 5)."""
    cls = merged.get(spec.CKA_CLASS)
    if cls is None:
        raise _fail(spec.CKR_TEMPLATE_INCOMPLETE, spec.CKA_CLASS,
                    "no object class in the template (footnote 1)")
    if cls == spec.CKO_PROFILE:
        raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_CLASS,
                    "CKO_PROFILE objects are created by the token, not by applications")
    sub_attr = _SUBTYPE_ATTR.get(cls, None)
    if sub_attr is None:
        found = schema_for(cls, None)
        if found is None:
            raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_CLASS,
                        f"object class {spec.cko_name(cls)} not supported")
        return found
    sub = merged.get(sub_attr)
    if sub is None:
        raise _fail(spec.CKR_TEMPLATE_INCOMPLETE, sub_attr,
                    f"required for class {spec.cko_name(cls)} (footnote 1)")
    found = schema_for(cls, sub)
    if found is not None:
        return found
    if cls in KEY_CLASSES and any(sub in types for types in KEY_TYPES_BY_CLASS.values()):
        raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, sub_attr,
                    f"key type {spec.ckk_name(sub)} cannot be a {spec.cko_name(cls)}")
    raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, sub_attr, f"type {sub:#x} not supported")


# --------------------------------------------------------------------------- value rules

def _check_secret_value(obj: Mapping[int, Any], value: bytes) -> None:
    allowed = SECRET_VALUE_LENGTHS.get(obj.get(spec.CKA_KEY_TYPE))  # type: ignore[arg-type]
    if not value or (allowed is not None and len(value) not in allowed):
        raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_VALUE,
                    f"{len(value)}-byte value not valid for {spec.ckk_name(obj[spec.CKA_KEY_TYPE])}")


def _check_nonempty(attr_type: int) -> Callable[[Mapping[int, Any], Any], None]:
    def check(obj: Mapping[int, Any], value: Any) -> None:
        if not value:
            raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, attr_type, "must not be empty")
    return check


# Per (class, attribute) value checks, run on template values (4.1.1 item 2). Of the object
# they read its class and sub-type only (the key under which ``_plan`` keeps a verdict). Material
# consistency (is the point on the curve, does the key parse) belongs to the mechanisms layer.
_VALUE_RULES: dict[tuple[int, int], Callable[[Mapping[int, Any], Any], None]] = {
    (spec.CKO_SECRET_KEY, spec.CKA_VALUE): _check_secret_value,
    **{(c, t): _check_nonempty(t)
       for c in (spec.CKO_PUBLIC_KEY, spec.CKO_PRIVATE_KEY)
       for t in (spec.CKA_MODULUS, spec.CKA_PUBLIC_EXPONENT, spec.CKA_PRIVATE_EXPONENT,
                 spec.CKA_EC_PARAMS, spec.CKA_EC_POINT, spec.CKA_VALUE)},
    **{(c, t): _check_nonempty(t)  # DSA/DH keys and domain parameters: big integers
       for c in (spec.CKO_PUBLIC_KEY, spec.CKO_PRIVATE_KEY, spec.CKO_DOMAIN_PARAMETERS)
       for t in (spec.CKA_PRIME, spec.CKA_SUBPRIME, spec.CKA_BASE)},
}


def _normalise(template: Mapping[int, Any]) -> dict[int, Any]:
    """Kind check of every template value (4.1.1 items 1 and 2); a template the ABI decoded
    is in normal form already (``codec.Decoded``), so only its unknown types could fail, and
    the decoder refused those."""
    if template.__class__ is codec.Decoded:
        return dict(template)
    return {t: codec.check_value(t, v) for t, v in template.items()}


# --------------------------------------------------------------------------- derived values

def _pyca_sha1(value: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA1())
    h.update(value)
    return h.finalize()


#: The SHA-1 of the check values: pyca's, never ``hashlib`` (the host's libcrypto: issue 25),
#: until the mechanisms layer hands its hermetic one-shot (``use_sha1``).
_sha1: Callable[[bytes], bytes] = _pyca_sha1


def use_sha1(fn: Callable[[bytes], bytes]) -> None:
    """Compute SHA-1 check values with ``fn`` (``mechanisms.digest.digest`` of CKM_SHA_1:
    native/digest.c on libcrypto's block functions, pyca without the library; a pyca ``Hash``
    per new secret key was ~0.8 us of a KEM call). The layer below cannot import it."""
    global _sha1
    _sha1 = fn


def _sha1_kcv(value: bytes) -> bytes:
    """SHA-1 check value (first three bytes), hermetic (``_sha1``)."""
    return _sha1(value)[:3]


def _aes_kcv(value: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
    return (enc.update(bytes(16)) + enc.finalize())[:3]


def _des_kcv(value: bytes) -> bytes:
    """DES/DES2/DES3: the first three bytes of the ECB encryption of a zero block, on pyca's
    three-key TripleDES with the key spread over K1 K2 K3 (K1=K2=K3 is single DES)."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    key = (value * 3)[:24] if len(value) == 8 else value + value[:8] if len(value) == 16 else value
    enc = Cipher(TripleDES(key), modes.ECB()).encryptor()
    return (enc.update(bytes(8)) + enc.finalize())[:3]


# Key check value per secret key type: AES "first three bytes of the ECB encryption of a
# single block of null bytes"; generic secret and HMAC key types "first three bytes of the
# SHA-1 hash of CKA_VALUE" (as SoftHSM2 computes for them).
_KCV: dict[int, Callable[[bytes], bytes]] = {
    spec.CKK_AES: _aes_kcv,
    spec.CKK_CHACHA20: _sha1_kcv,  # §2.58: SHA-1 of CKA_VALUE, first three bytes
    spec.CKK_GENERIC_SECRET: _sha1_kcv,
    **{k: _sha1_kcv for k in HMAC_KEY_TYPES},
}
_KCV.update({k: _des_kcv for k in DES_KEY_TYPES})


def _fill_certificate(obj: dict[int, Any], template: Mapping[int, Any]) -> None:
    """X.509 certificate: fields from CKA_VALUE, CKA_CHECK_VALUE (4.6.1, 4.6.3)."""
    value: bytes = obj.get(spec.CKA_VALUE, b"")
    if not value and not obj.get(spec.CKA_URL):
        raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_VALUE,
                    "must be non-empty when CKA_URL is empty (X.509 table note 2)")
    wanted = [t for t in (spec.CKA_SUBJECT, spec.CKA_ISSUER, spec.CKA_SERIAL_NUMBER,
                          spec.CKA_PUBLIC_KEY_INFO) if t not in template]
    cert = None
    if value and wanted:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            cert = x509.load_der_x509_certificate(value)
        except ValueError:
            cert = None
        if cert is not None:
            fields: dict[int, Callable[[], bytes]] = {
                spec.CKA_SUBJECT: lambda: cert.subject.public_bytes(),
                spec.CKA_ISSUER: lambda: cert.issuer.public_bytes(),
                spec.CKA_SERIAL_NUMBER: lambda: der.integer(cert.serial_number),
                spec.CKA_PUBLIC_KEY_INFO: lambda: cert.public_key().public_bytes(
                    serialization.Encoding.DER,
                    serialization.PublicFormat.SubjectPublicKeyInfo),
            }
            for t in wanted:
                try:
                    obj[t] = fields[t]()
                except Exception:  # an unsupported key algorithm only loses PUBLIC_KEY_INFO
                    if t != spec.CKA_PUBLIC_KEY_INFO:
                        raise
        elif spec.CKA_SUBJECT in wanted:
            raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_VALUE,
                        "not a DER X.509 certificate, and CKA_SUBJECT was not given")
    if spec.CKA_SUBJECT not in obj:
        raise _fail(spec.CKR_TEMPLATE_INCOMPLETE, spec.CKA_SUBJECT,
                    _footnote(F.REQUIRED_ON_CREATE))
    kcv = _sha1_kcv(value) if value else b""
    given = template.get(spec.CKA_CHECK_VALUE)
    if given is not None and given != kcv:
        raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_CHECK_VALUE,
                    "must be the first 3 bytes of SHA-1 of CKA_VALUE (4.6.1)")
    obj[spec.CKA_CHECK_VALUE] = kcv


def _fill_secret(obj: dict[int, Any], template: Mapping[int, Any]) -> None:
    """CKA_VALUE_LEN from CKA_VALUE; CKA_CHECK_VALUE computed, or checked if given (4.10)."""
    value = obj.get(spec.CKA_VALUE)
    if value is None:  # material kept elsewhere (e.g. a TPM-resident key)
        return
    want_len = obj.get(spec.CKA_VALUE_LEN)
    if want_len is not None and want_len != len(value):
        raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, spec.CKA_VALUE_LEN,
                    f"{want_len} but the key value has {len(value)} bytes")
    obj[spec.CKA_VALUE_LEN] = len(value)
    _fill_check_value(obj, template)


def _fill_check_value(obj: dict[int, Any], template: Mapping[int, Any]) -> None:
    """CKA_CHECK_VALUE of a secret key: computed, checked if given, suppressed if empty (4.10);
    alone for the DES key types, which have no CKA_VALUE_LEN."""
    value = obj.get(spec.CKA_VALUE)
    if value is None:
        return
    kcv_fn = _KCV.get(obj[spec.CKA_KEY_TYPE])
    given = template.get(spec.CKA_CHECK_VALUE)
    if given == b"" or kcv_fn is None:
        obj.setdefault(spec.CKA_CHECK_VALUE, b"")
        return
    kcv = kcv_fn(value)
    if given is not None and given != kcv:
        raise _fail(spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKA_CHECK_VALUE,
                    "does not match the key (4.10: must match what the library calculates)")
    obj[spec.CKA_CHECK_VALUE] = kcv


def _fill_rsa_public(obj: dict[int, Any], template: Mapping[int, Any]) -> None:
    modulus = obj.get(spec.CKA_MODULUS)
    if modulus is None:
        return
    bits = int.from_bytes(modulus, "big").bit_length()
    given = obj.get(spec.CKA_MODULUS_BITS)
    if given is not None and given != bits:
        raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, spec.CKA_MODULUS_BITS,
                    f"{given} but the modulus has {bits} bits")
    obj[spec.CKA_MODULUS_BITS] = bits


def _fill_private(obj: dict[int, Any], template: Mapping[int, Any]) -> None:
    # 4.9: "CKA_ALWAYS_AUTHENTICATE may only be set to CK_TRUE when CKA_PRIVATE is also CK_TRUE".
    if obj.get(spec.CKA_ALWAYS_AUTHENTICATE) and not obj.get(spec.CKA_PRIVATE):
        raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, spec.CKA_ALWAYS_AUTHENTICATE,
                    "CK_TRUE needs CKA_PRIVATE CK_TRUE")


_FILLERS: dict[tuple[int, int | None], tuple[Callable[[dict[int, Any], Mapping[int, Any]], None], ...]] = {
    (spec.CKO_CERTIFICATE, spec.CKC_X_509): (_fill_certificate,),
    (spec.CKO_PUBLIC_KEY, spec.CKK_RSA): (_fill_rsa_public,),
    **{(spec.CKO_PRIVATE_KEY, k): (_fill_private,)
       for k in KEY_TYPES_BY_CLASS[spec.CKO_PRIVATE_KEY]},
    **{(spec.CKO_SECRET_KEY, k): (_fill_secret,)
       for k in KEY_TYPES_BY_CLASS[spec.CKO_SECRET_KEY]},
}
_FILLERS.update({(spec.CKO_SECRET_KEY, k): (_fill_check_value,) for k in DES_KEY_TYPES})


def _derived_flags(obj: dict[int, Any], schema: Schema, origin: Origin,
                   base: Mapping[int, Any] | None, key_gen_mechanism: int | None) -> None:
    """CKA_LOCAL, CKA_KEY_GEN_MECHANISM, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE.

    4.7 / 4.9 / 4.10 and the function descriptions in 5.18 / 5.7:
    generated keys are local with their mechanism, ALWAYS_SENSITIVE = SENSITIVE,
    NEVER_EXTRACTABLE = not EXTRACTABLE; created and unwrapped keys are neither; derived keys
    inherit FALSE from a base key that had it FALSE.
    """
    attrs = schema.attrs
    if spec.CKA_LOCAL in attrs:
        local = origin is Origin.GENERATE
        obj[spec.CKA_LOCAL] = local
    if spec.CKA_KEY_GEN_MECHANISM in attrs:  # keys; domain parameters have CKA_LOCAL only
        obj[spec.CKA_KEY_GEN_MECHANISM] = (
            key_gen_mechanism if local and key_gen_mechanism is not None
            else spec.CK_UNAVAILABLE_INFORMATION)
    if spec.CKA_ALWAYS_SENSITIVE in attrs:
        sensitive = bool(obj.get(spec.CKA_SENSITIVE))
        never_extractable = not obj.get(spec.CKA_EXTRACTABLE)
        if origin is Origin.GENERATE:
            obj[spec.CKA_ALWAYS_SENSITIVE] = sensitive
            obj[spec.CKA_NEVER_EXTRACTABLE] = never_extractable
        elif origin is Origin.DERIVE:
            b = base or {}
            obj[spec.CKA_ALWAYS_SENSITIVE] = sensitive and bool(b.get(spec.CKA_ALWAYS_SENSITIVE))
            obj[spec.CKA_NEVER_EXTRACTABLE] = (never_extractable
                                               and bool(b.get(spec.CKA_NEVER_EXTRACTABLE)))
        else:  # CREATE, UNWRAP: the key material has been outside the token
            obj[spec.CKA_ALWAYS_SENSITIVE] = False
            obj[spec.CKA_NEVER_EXTRACTABLE] = False


# --------------------------------------------------------------------------- create & co.

class _SchemaRows:
    """What build_object reads of a schema on every call, computed once per schema: enum
    flag arithmetic per attribute per call was most of a key generation's own cost. The
    per-attribute checks of a template (4.1.1 items 3 and 5, footnotes 2/4/6 and 10, the
    value rules) become set and dict lookups."""

    __slots__ = ("required", "defaulted", "forbidden", "so_only", "rules")

    def __init__(self, schema: Schema) -> None:
        self.required = {origin: tuple(t for t, row in schema.attrs.items() if row.flags & flag)
                         for origin, flag in _REQUIRED.items()}
        #: (type, default, how): how 0 = a constant, 1 = a dict to copy, 2 = a callable of
        #: the object built so far
        self.defaulted = tuple(
            (t, row.default, 2 if callable(row.default) else 1 if isinstance(row.default, dict) else 0)
            for t, row in schema.attrs.items()
            if row.default is not NO_DEFAULT and not row.flags & F.DERIVED)
        #: origin -> {attribute type: the footnote that forbids it for that origin}
        self.forbidden = {origin: {t: F(row.flags & flag) for t, row in schema.attrs.items()
                                   if row.flags & flag}
                          for origin, flag in _FORBIDDEN.items()}
        self.so_only = frozenset(t for t, row in schema.attrs.items() if row.flags & F.SO_ONLY_TRUE)
        self.rules = {t: rule for (cls, t), rule in _VALUE_RULES.items()
                      if cls == schema.cls and t in schema.attrs}


_SCHEMA_ROWS: dict[int, _SchemaRows] = {}


def _rows(schema: Schema) -> _SchemaRows:
    """Schemas are built once and kept (tables._SCHEMAS), so their id is a stable key."""
    rows = _SCHEMA_ROWS.get(id(schema))
    if rows is None:
        rows = _SCHEMA_ROWS[id(schema)] = _SchemaRows(schema)
    return rows


def _check_template(schema: Schema, rows: _SchemaRows, tmpl: Mapping[int, Any], origin: Origin,
                    is_so: bool, obj: Mapping[int, Any]) -> None:
    """Every template attribute: known to this object, allowed for this origin, SO-only
    TRUE values, value rules (4.1.1 items 2, 3, 5)."""
    attrs = schema.attrs
    forbidden = rows.forbidden[origin]
    so_only = rows.so_only
    rules = rows.rules
    for t, v in tmpl.items():
        if t not in attrs:
            raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, t,
                        f"not an attribute of {spec.cko_name(schema.cls)} objects of this type "
                        "(4.1.1 item 5)")
        if t in forbidden:
            raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t,
                        f"{_footnote(forbidden[t])} ({origin.value})")
        if v is True and t in so_only and not is_so:
            raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t, _footnote(F.SO_ONLY_TRUE))
        rule = rules.get(t)
        if rule is not None:
            rule(obj, v)


def _check_contribution(tmpl: Mapping[int, Any], mat: Mapping[int, Any], origin: Origin) -> None:
    """A mechanism's contribution must agree with the template (4.1.1 item 5)."""
    for t, v in mat.items():
        if t in tmpl and tmpl[t] != v:
            raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, t,
                        f"template value disagrees with the value {origin.value} contributes")


class _Plan:
    """What ``_validate`` concludes from a template, the creating function's contribution
    (which attributes it gives; the class and sub-type it names) and the caller's role: the
    normalised template, the object's schema, and the defaults the new object takes. Holds
    no material value (the material's values are merged per call)."""

    __slots__ = ("tmpl", "schema", "constants", "defaults", "fillers")

    def __init__(self, tmpl: dict[int, Any], schema: Schema, defaults: tuple[tuple[int, Any, int], ...]) -> None:
        self.tmpl = tmpl
        self.schema = schema
        #: the constant defaults, merged in one step; then those made per object (a dict
        #: copied, a callable of the object so far), in table order
        self.constants = {t: d for t, d, how in defaults if not how}
        self.defaults = tuple(row for row in defaults if row[2])
        self.fillers = _FILLERS.get((schema.cls, schema.subtype), ())


def _validate(template: Mapping[int, Any], origin: Origin, mat: Mapping[int, Any], is_so: bool) -> _Plan:
    """4.1.1 items 1-5 on a template for ``origin`` (not COPY): the template alone, and
    against what the creating function contributes (``mat``: its attribute types and its
    CKA_CLASS / sub-type values, the cache key of ``_plan``; its other values only by the
    agreement check, which ``build_object`` repeats on every call)."""
    tmpl = _normalise(template)
    if spec.CKA_UNIQUE_ID in tmpl:
        raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, spec.CKA_UNIQUE_ID,
                    "assigned by the token (4.4.1)")
    _check_contribution(tmpl, mat, origin)
    merged = {**tmpl, **mat}
    schema = _resolve_schema(merged)

    rows = _rows(schema)
    _check_template(schema, rows, tmpl, origin, is_so, merged)
    for t in mat:
        if t not in schema.attrs:
            raise _fail(spec.CKR_TEMPLATE_INCONSISTENT, t,
                        f"contributed by {origin.value} but not an attribute of this object")

    for t in rows.required[origin]:
        if t not in merged and not _filled_later(schema, t):
            raise _fail(spec.CKR_TEMPLATE_INCOMPLETE, t,
                        f"{_footnote(_REQUIRED[origin])} ({origin.value})")
    if origin is not Origin.CREATE:
        for t in (spec.CKA_CLASS, spec.CKA_KEY_TYPE):
            if t in schema.attrs and t not in merged:  # pragma: no cover - resolved above
                raise _fail(spec.CKR_TEMPLATE_INCOMPLETE, t, "class and key type are needed")
    return _Plan(tmpl, schema, tuple(d for d in rows.defaulted if d[0] not in merged))


#: Origins whose plans are kept: their templates carry no key material (footnotes 4 and 6
#: refuse CKA_VALUE & co. there, and only templates that passed are kept). C_CreateObject's
#: template is the material itself, so it is validated every time and never kept.
_CACHED_ORIGINS = frozenset({Origin.GENERATE, Origin.DERIVE, Origin.UNWRAP})
#: The material values ``_validate`` reads (the schema comes from them): part of the key.
_SHAPE = (spec.CKA_CLASS, spec.CKA_KEY_TYPE, spec.CKA_CERTIFICATE_TYPE)
#: Templates repeat per caller (a TLS server's KEM template, an application's key template);
#: one that names a fresh CKA_ID per key misses every time, so the table is bounded.
_PLANS_MAX = 256
_PLANS: dict[tuple, _Plan] = {}


def _plan(template: Mapping[int, Any], origin: Origin, mat: Mapping[int, Any], is_so: bool) -> _Plan:
    """``_validate``'s answer, kept per (origin, role, template with its value types, the
    contribution's attribute types and class/sub-type): the same inputs give the same
    answer, so a template seen before is not checked again. Refusals are never kept (every
    refused template runs the validator again and fails the same way)."""
    if origin not in _CACHED_ORIGINS:
        return _validate(template, origin, mat, is_so)
    try:
        key = (origin, is_so, template.__class__ is codec.Decoded, tuple(template.items()),
               tuple(map(type, template.values())), tuple(mat), tuple(map(mat.get, _SHAPE)))
        found = _PLANS.get(key)
    except TypeError:  # an unhashable value (an attribute template): not kept
        return _validate(template, origin, mat, is_so)
    if found is None:
        found = _validate(template, origin, mat, is_so)
        if not _may_keep(found):
            return found
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[key] = found
    return found


def _may_keep(plan: _Plan) -> bool:
    """Never a value the table should not hold: no CKA_VALUE (a derived data object's may
    be restated in its template) and no footnote-7 attribute."""
    return spec.CKA_VALUE not in plan.tmpl and plan.schema.sensitive.isdisjoint(plan.tmpl)


def build_object(template: Mapping[int, Any], origin: Origin, *,
                 material: Mapping[int, Any] | None = None,
                 base: Mapping[int, Any] | None = None,
                 key_gen_mechanism: int | None = None,
                 is_so: bool = False) -> dict[int, Any]:
    """The complete attribute dict of a new object (without CKA_UNIQUE_ID: the core adds it).

    ``template``: the application's attributes (typed values). ``material``: what the creating
    function contributes (key material, CKA_CLASS/CKA_KEY_TYPE from the mechanism); not subject
    to the "must not be specified" footnotes, but must agree with the template. ``base``: for
    COPY the original object, for DERIVE the base key (ALWAYS_SENSITIVE / NEVER_EXTRACTABLE
    inheritance). CKA_COPYABLE FALSE on the original is CKR_ACTION_PROHIBITED here.
    """
    if origin is Origin.COPY:
        tmpl = _normalise(template)
        if spec.CKA_UNIQUE_ID in tmpl:
            raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, spec.CKA_UNIQUE_ID,
                        "assigned by the token (4.4.1)")
        if base is None:
            raise CryptokiError(spec.CKR_GENERAL_ERROR, "C_CopyObject without the original")
        return _copy(base, tmpl, is_so)

    mat = material or {}  # only read: obj below is the new object
    plan = _plan(template, origin, mat, is_so)
    tmpl = plan.tmpl
    _check_contribution(tmpl, mat, origin)  # its values are not in the plan's key
    obj = {**tmpl, **mat, **plan.constants}
    for t, d, how in plan.defaults:
        obj[t] = d.copy() if how == 1 else d(obj)
    for fill in plan.fillers:
        fill(obj, tmpl)
    _derived_flags(obj, plan.schema, origin, base, key_gen_mechanism)
    return obj


class SecretMaker:
    """``build_object`` for many secret keys of one template, origin, base key and role whose
    material differs in CKA_VALUE alone (C_EncapsulateKey / C_DecapsulateKey repeated with one
    template: ``core/kem.py``): what does not depend on the value is built once, by
    ``build_object`` itself (the same validator, defaults and derived flags, with the value left
    out of the material); ``make`` adds a value and runs the value's fillers (CKA_VALUE_LEN
    against the value, CKA_CHECK_VALUE computed or checked: ``_fill_secret``), the steps
    ``build_object`` runs on it. Holds no key value."""

    __slots__ = ("attrs", "tmpl", "fillers", "shape")

    def __init__(self, attrs: dict[int, Any], tmpl: dict[int, Any], fillers: tuple, shape: dict[int, Any]) -> None:
        self.attrs, self.tmpl, self.fillers, self.shape = attrs, tmpl, fillers, shape

    def make(self, material: Mapping[int, Any]) -> dict[int, Any] | None:
        """The new object for ``material``; None when its shape (attribute types, values other
        than CKA_VALUE) is not the one this maker was built for: then ``build_object``."""
        shape = dict(material)
        value = shape.pop(spec.CKA_VALUE, None)
        if shape != self.shape or value.__class__ is not bytes:
            return None
        obj = self.attrs.copy()
        obj[spec.CKA_VALUE] = value
        for fill in self.fillers:
            fill(obj, self.tmpl)
        return obj


def secret_maker(template: Mapping[int, Any], origin: Origin, *, material: Mapping[int, Any],
                 base: Mapping[int, Any] | None = None, is_so: bool = False) -> SecretMaker | None:
    """A ``SecretMaker`` for a template ``build_object`` has accepted with ``material`` (a
    secret key's CKA_VALUE among it): None when the object is not a secret key whose fillers are
    only the value's (``_fill_secret``, ``_fill_check_value``) or the material has no value."""
    if origin not in _CACHED_ORIGINS or not isinstance(material.get(spec.CKA_VALUE), bytes):
        return None
    shape = {t: v for t, v in material.items() if t != spec.CKA_VALUE}
    plan = _plan(template, origin, shape, is_so)
    if plan.schema.cls != spec.CKO_SECRET_KEY or not set(plan.fillers) <= {_fill_secret, _fill_check_value}:
        return None
    attrs = build_object(template, origin, material=shape, base=base, is_so=is_so)
    return SecretMaker(attrs, plan.tmpl, plan.fillers, shape)


def _filled_later(schema: Schema, t: int) -> bool:
    """Required attributes a filler may supply (CKA_SUBJECT of an X.509 certificate)."""
    return schema.cls == spec.CKO_CERTIFICATE and t == spec.CKA_SUBJECT


def build_profile(profile_id: int) -> dict[int, Any]:
    """A CKO_PROFILE object the token publishes (4.13): public, read-only, not copyable."""
    return {
        spec.CKA_CLASS: spec.CKO_PROFILE,
        spec.CKA_TOKEN: True,
        spec.CKA_PRIVATE: False,
        spec.CKA_MODIFIABLE: False,
        spec.CKA_LABEL: b"",
        spec.CKA_COPYABLE: False,
        spec.CKA_DESTROYABLE: False,
        spec.CKA_PROFILE_ID: profile_id,
    }


# --------------------------------------------------------------------------- copy & set

def _check_change(schema: Schema, attrs: Mapping[int, Any], t: int, new: Any,
                  is_so: bool, copying: bool) -> None:
    """One attribute change on an existing object (4.1.2 / 4.1.3 and footnotes 8, 10-12)."""
    row = schema.attrs.get(t)
    if row is None:
        raise _fail(spec.CKR_ATTRIBUTE_TYPE_INVALID if not copying
                    else spec.CKR_TEMPLATE_INCONSISTENT, t,
                    f"not an attribute of this {spec.cko_name(schema.cls)}")
    flags = row.flags
    old = attrs.get(t)
    if copying and old == new:
        return  # restating the original's value in a copy template is not a change
    if flags & F.READONLY_ONCE_TRUE and old is True:
        raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t, _footnote(F.READONLY_ONCE_TRUE))
    if flags & F.READONLY_ONCE_FALSE and old is False:
        raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t, _footnote(F.READONLY_ONCE_FALSE))
    if flags & F.SO_ONLY_TRUE:
        # Footnote 10 says who may set CKA_TRUSTED; clearing it is the SO's too: a user who
        # could clear it would make the trusted key decrypt (or unwrap readable keys from)
        # what it wrapped (core/key_management.py rules T1/T2, issue 15 item 2).
        if (new is True or old is True) and not is_so:
            raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t, _footnote(F.SO_ONLY_TRUE) + "; cleared only by the SO")
        return
    changeable = F.MODIFIABLE | F.READONLY_ONCE_TRUE | F.READONLY_ONCE_FALSE
    if copying:
        changeable |= F.COPY_MODIFIABLE
    if not flags & changeable:
        where = "C_CopyObject" if copying else "C_SetAttributeValue"
        raise _fail(spec.CKR_ATTRIBUTE_READ_ONLY, t,
                    f"not modifiable by {where} (no footnote 8)")
    rule = _VALUE_RULES.get((schema.cls, t))
    if rule is not None:
        rule(attrs, new)


def _trusted_guard(schema: Schema, attrs: Mapping[int, Any], is_so: bool) -> None:
    # 4.6: "Trusted certificates cannot be modified" (except by the SO who trusted them).
    if schema.cls == spec.CKO_CERTIFICATE and attrs.get(spec.CKA_TRUSTED) and not is_so:
        raise _fail(spec.CKR_ACTION_PROHIBITED, spec.CKA_TRUSTED,
                    "trusted certificates cannot be modified")


def _copy(base: Mapping[int, Any], tmpl: dict[int, Any], is_so: bool) -> dict[int, Any]:
    if base.get(spec.CKA_COPYABLE) is False:
        raise _fail(spec.CKR_ACTION_PROHIBITED, spec.CKA_COPYABLE,
                    "the original has CKA_COPYABLE CK_FALSE (4.1.3)")
    schema = schema_of(base)
    for t, v in tmpl.items():
        if t in (spec.CKA_CLASS, spec.CKA_KEY_TYPE, spec.CKA_CERTIFICATE_TYPE) and base.get(t) == v:
            continue
        _check_change(schema, base, t, v, is_so, copying=True)
    obj = {t: v for t, v in base.items() if t != spec.CKA_UNIQUE_ID}
    obj.update(tmpl)
    for fill in (_fill_private,) if schema.cls == spec.CKO_PRIVATE_KEY else ():
        fill(obj, tmpl)
    # Derived flags stay as the original's: "the new key will have the same value for its
    # CKA_ALWAYS_SENSITIVE attribute as the original key"; NEVER_EXTRACTABLE likewise;
    # CKA_LOCAL is TRUE only for a copy of a local key.
    return obj


def check_set(attrs: Mapping[int, Any], changes: Mapping[int, Any], *,
              is_so: bool = False) -> dict[int, Any]:
    """C_SetAttributeValue: the object's new attribute dict, or the spec's error.

    CKA_MODIFIABLE FALSE -> CKR_ACTION_PROHIBITED; an attribute without footnote 8 ->
    CKR_ATTRIBUTE_READ_ONLY; footnote 11 (CKA_SENSITIVE, CKA_WRAP_WITH_TRUSTED) only
    FALSE -> TRUE; footnote 12 (CKA_EXTRACTABLE, CKA_COPYABLE) only TRUE -> FALSE; footnote 10
    (CKA_TRUSTED) TRUE only by the SO.
    """
    schema = schema_of(attrs)
    if attrs.get(spec.CKA_MODIFIABLE) is False:
        raise _fail(spec.CKR_ACTION_PROHIBITED, spec.CKA_MODIFIABLE,
                    "object has CKA_MODIFIABLE CK_FALSE")
    new = _normalise(changes)
    _trusted_guard(schema, attrs, is_so)
    for t, v in new.items():
        _check_change(schema, attrs, t, v, is_so, copying=False)
    obj = dict(attrs)
    obj.update(new)
    return obj


# --------------------------------------------------------------------------- get / storage

def readable(attrs: Mapping[int, Any], attr_type: int) -> bool:
    """False for a footnote-7 attribute of a sensitive or unextractable key (C_GetAttributeValue
    then answers CK_UNAVAILABLE_INFORMATION and CKR_ATTRIBUTE_SENSITIVE)."""
    if attr_type not in schema_of(attrs).sensitive:
        return True
    return not attrs.get(spec.CKA_SENSITIVE) and attrs.get(spec.CKA_EXTRACTABLE) is not False


def has_attribute(attrs: Mapping[int, Any], attr_type: int) -> bool:
    """Whether the object possesses ``attr_type`` (else C_GetAttributeValue reports
    CKR_ATTRIBUTE_TYPE_INVALID): valid for its class and actually stored (an RSA private key
    made without CRT values does not possess CKA_PRIME_1)."""
    return attr_type in attrs and schema_of(attrs).has(attr_type)


def sealed_types(attrs: Mapping[int, Any]) -> frozenset[int]:
    """Attributes to encrypt at rest: the footnote-7 attributes of private and secret keys,
    whatever CKA_SENSITIVE says (a non-sensitive key's value is still secret on disk).
    Vendor-defined ones (the TPM auth value, issue 5) only when the object has them. The
    CKA_VALUE of any private object (a CKO_DATA, a certificate) too: "private" promises that
    nobody without the user PIN reads it, and a copy of the store file must not either
    (issue 15 item 5)."""
    found = frozenset(t for t in schema_of(attrs).sensitive if t < spec.CKA_VENDOR_DEFINED or t in attrs)
    if attrs.get(spec.CKA_PRIVATE) is True and spec.CKA_VALUE in attrs:
        return found | {spec.CKA_VALUE}
    return found
