"""Tests for cryptoki_shim.spec: constant values, name lookups, the attribute-kind table.

Expected numbers are written here independently, as read from the OASIS PKCS#11 3.0
``pkcs11t.h`` (oasis-tcs/pkcs11, working/3-00-current and published/3-01) and the 3.2
header (working/headers/pkcs11t.h).
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

import pytest

from cryptoki_shim import spec
from cryptoki_shim.spec import ATTR_KIND, AttrKind

ENUM_FAMILIES = [spec.CKR, spec.CKA, spec.CKM, spec.CKO, spec.CKK, spec.CKC, spec.CKU, spec.CKS]


# --- values read from the OASIS header ---------------------------------------------------

OASIS_VALUES = {
    "CKR_OK": 0x0,
    "CKR_BUFFER_TOO_SMALL": 0x150,
    "CKR_OPERATION_CANCEL_FAILED": 0x202,
    "CKR_TOKEN_RESOURCE_EXCEEDED": 0x201,
    "CKR_FUNCTION_REJECTED": 0x200,
    "CKR_PIN_TOO_WEAK": 0x1B8,
    "CKR_PUBLIC_KEY_INVALID": 0x1B9,
    "CKR_EXCEEDED_MAX_ITERATIONS": 0x1B5,
    "CKR_AEAD_DECRYPT_FAILED": 0x42,
    "CKR_ACTION_PROHIBITED": 0x1B,
    "CKR_CRYPTOKI_NOT_INITIALIZED": 0x190,
    "CKR_VENDOR_DEFINED": 0x80000000,
    "CKA_CLASS": 0x0,
    "CKA_UNIQUE_ID": 0x4,
    "CKA_WRAP_TEMPLATE": 0x40000211,
    "CKA_UNWRAP_TEMPLATE": 0x40000212,
    "CKA_DERIVE_TEMPLATE": 0x40000213,
    "CKA_ALLOWED_MECHANISMS": 0x40000600,
    "CKA_PROFILE_ID": 0x601,
    "CKA_DESTROYABLE": 0x172,
    "CKA_EC_PARAMS": 0x180,
    "CKA_EC_POINT": 0x181,
    "CKA_PUBLIC_KEY_INFO": 0x129,
    "CKA_NAME_HASH_ALGORITHM": 0x8C,
    "CKA_OTP_COUNTER": 0x22E,
    "CKA_X2RATCHET_RK": 0x612,
    "CKA_VENDOR_DEFINED": 0x80000000,
    "CKM_AES_KEY_WRAP": 0x2109,
    "CKM_AES_KEY_WRAP_PAD": 0x210A,
    "CKM_AES_KEY_WRAP_KWP": 0x210B,
    "CKM_EC_EDWARDS_KEY_PAIR_GEN": 0x1055,
    "CKM_EC_MONTGOMERY_KEY_PAIR_GEN": 0x1056,
    "CKM_EDDSA": 0x1057,
    "CKM_HKDF_DERIVE": 0x402A,
    "CKM_HKDF_KEY_GEN": 0x402C,
    "CKM_SALSA20_KEY_GEN": 0x402D,
    "CKM_SP800_108_COUNTER_KDF": 0x3AC,
    "CKM_SHA3_256_KEY_DERIVE": 0x397,
    "CKM_ECDSA_SHA3_512": 0x104A,
    "CKM_AES_GCM": 0x1087,
    "CKM_RSA_PKCS_PSS": 0x0D,
    "CKM_VENDOR_DEFINED": 0x80000000,
    "CKO_PROFILE": 0x9,
    "CKO_OTP_KEY": 0x8,
    "CKK_EC_EDWARDS": 0x40,
    "CKK_EC_MONTGOMERY": 0x41,
    "CKK_HKDF": 0x42,
    "CKK_SHA512_T_HMAC": 0x45,
    "CKC_WTLS": 0x2,
    "CKU_CONTEXT_SPECIFIC": 0x2,
    "CKS_RW_SO_FUNCTIONS": 0x4,
    "CKP_BASELINE_PROVIDER": 0x1,
    "CKP_AUTHENTICATION_TOKEN": 0x3,
    "CKP_PUBLIC_CERTIFICATES_TOKEN": 0x4,
    "CKP_PKCS5_PBKD2_HMAC_SHA512_256": 0x8,
    "CKH_USER_INTERFACE": 0x3,
    "CKN_OTP_CHANGED": 0x1,
    "CKD_BLAKE2B_512_KDF": 0x1A,
    "CKG_MGF1_SHA3_512": 0x9,
    "CKG_GENERATE_RANDOM": 0x3,
    "CKZ_SALT_SPECIFIED": 0x1,
    "CKF_ARRAY_ATTRIBUTE": 0x40000000,
    "CKF_MULTI_MESSAGE": 0x20,
    "CKF_FIND_OBJECTS": 0x40,
    "CKF_ERROR_STATE": 0x01000000,
    "CKF_EC_CURVENAME": 0x04000000,
    "CKF_OS_LOCKING_OK": 0x2,
    "CKF_HKDF_SALT_KEY": 0x4,
    "CK_UNAVAILABLE_INFORMATION": 0xFFFFFFFFFFFFFFFF,  # (~0UL) on LP64
    "CK_EFFECTIVELY_INFINITE": 0,
    "CK_INVALID_HANDLE": 0,
    "CK_TRUE": 1,
    "CK_FALSE": 0,
    "CK_SP800_108_DKM_LENGTH_SUM_OF_SEGMENTS": 0x2,
    "CRYPTOKI_VERSION_MAJOR": 3,
    "CRYPTOKI_VERSION_MINOR": 2,
}


@pytest.mark.parametrize("name,value", sorted(OASIS_VALUES.items()))
def test_value_matches_oasis_header(name: str, value: int) -> None:
    assert getattr(spec, name) == value


# 3.1 additions kept because native/pkcs11.h exports them (OASIS published/3-01/pkcs11t.h).
OASIS_3_1_VALUES = {
    "CKM_IKE2_PRF_PLUS_DERIVE": 0x402E,
    "CKM_IKE_PRF_DERIVE": 0x402F,
    "CKM_IKE1_PRF_DERIVE": 0x4030,
    "CKM_IKE1_EXTENDED_DERIVE": 0x4031,
    "CKP_COMPLETE_PROVIDER": 0x5,
    "CKP_HKDF_TLS_TOKEN": 0x6,
}


def test_3_1_additions_are_listed_with_their_values() -> None:
    assert spec.SINCE_3_1 == frozenset(OASIS_3_1_VALUES)
    for name, value in OASIS_3_1_VALUES.items():
        assert getattr(spec, name) == value, name


# PKCS#11 3.2 values, as read from the OASIS 3.2 header (oasis-tcs/pkcs11
# working/headers/pkcs11t.h, CRYPTOKI_VERSION 3.2).
OASIS_3_2_VALUES = {
    "CKK_ML_KEM": 0x49,
    "CKK_ML_DSA": 0x4A,
    "CKK_SLH_DSA": 0x4B,
    "CKK_HSS": 0x46,
    "CKO_VALIDATION": 0xA,
    "CKO_TRUST": 0xB,
    "CKA_PARAMETER_SET": 0x61D,
    "CKA_SEED": 0x637,
    "CKA_ENCAPSULATE": 0x633,
    "CKA_DECAPSULATE": 0x634,
    "CKA_ENCAPSULATE_TEMPLATE": 0x4000062A,
    "CKA_DECAPSULATE_TEMPLATE": 0x4000062B,
    "CKA_PUBLIC_CRC64_VALUE": 0x636,
    "CKA_KEYS_REMAINING": 0x61C,
    "CKM_ML_KEM_KEY_PAIR_GEN": 0x0F,
    "CKM_ML_KEM": 0x17,
    "CKM_ML_DSA_KEY_PAIR_GEN": 0x1C,
    "CKM_ML_DSA": 0x1D,
    "CKM_HASH_ML_DSA": 0x1F,
    "CKM_HASH_ML_DSA_SHA224": 0x23,
    "CKM_HASH_ML_DSA_SHA512": 0x26,
    "CKM_HASH_ML_DSA_SHAKE256": 0x2C,
    "CKM_SLH_DSA_KEY_PAIR_GEN": 0x2D,
    "CKM_SLH_DSA": 0x2E,
    "CKM_HASH_SLH_DSA": 0x34,
    "CKM_HASH_SLH_DSA_SHAKE256": 0x3F,
    "CKM_AES_KEY_WRAP_PKCS7": 0x210C,
    "CKF_ENCAPSULATE": 0x10000000,
    "CKF_DECAPSULATE": 0x20000000,
    "CKF_ASYNC_SESSION": 0x8,
    "CKR_KEY_EXHAUSTED": 0x203,
    "CKR_PENDING": 0x204,
    "CKR_SESSION_ASYNC_NOT_SUPPORTED": 0x205,
    "CKR_OPERATION_NOT_VALIDATED": 0x207,
    "CKR_PARAMETER_SET_NOT_SUPPORTED": 0x209,
    "CKH_HEDGE_PREFERRED": 0,
    "CKH_HEDGE_REQUIRED": 1,
    "CKH_DETERMINISTIC_REQUIRED": 2,
    "CKP_ML_DSA_44": 1,
    "CKP_ML_DSA_87": 3,
    "CKP_ML_KEM_512": 1,
    "CKP_ML_KEM_1024": 3,
    "CKP_SLH_DSA_SHA2_128S": 1,
    "CKP_SLH_DSA_SHAKE_256F": 0xC,
    "CKS_LAST_VALIDATION_OK": 1,
}


@pytest.mark.parametrize("name,value", sorted(OASIS_3_2_VALUES.items()))
def test_3_2_value_matches_oasis_header(name: str, value: int) -> None:
    assert getattr(spec, name) == value
    assert name in spec.SINCE_3_2


def test_3_2_names_that_reuse_a_prefix_are_not_family_members() -> None:
    """CKS_LAST_VALIDATION_OK is a validation flag, not a session state (its 1 is not
    CKS_RO_USER_FUNCTIONS); hedge types and parameter sets are plain ints."""
    assert "CKS_LAST_VALIDATION_OK" not in spec.CKS.__members__
    assert type(spec.CKS_LAST_VALIDATION_OK) is int
    assert type(spec.CKP_ML_DSA_65) is int and type(spec.CKH_HEDGE_REQUIRED) is int


def test_deprecated_names_are_aliases_of_current_names() -> None:
    assert spec.CKK_ECDSA is spec.CKK.CKK_EC
    assert spec.CKK_CAST5 is spec.CKK.CKK_CAST128
    assert spec.CKA_ECDSA_PARAMS is spec.CKA.CKA_EC_PARAMS
    assert spec.CKA_SUB_PRIME_BITS is spec.CKA.CKA_SUBPRIME_BITS
    assert spec.CKM_ECDSA_KEY_PAIR_GEN is spec.CKM.CKM_EC_KEY_PAIR_GEN
    assert spec.CKM_CAST5_CBC is spec.CKM.CKM_CAST128_CBC
    assert spec.CKF_EC_NAMEDCURVE == spec.CKF_EC_OID


def test_module_globals_are_the_enum_members() -> None:
    for cls in ENUM_FAMILIES:
        for name, member in cls.__members__.items():  # includes aliases
            assert getattr(spec, name) is member, name


def test_repr_shows_spec_name() -> None:
    assert repr(spec.CKR_OK) == "<CKR.CKR_OK: 0>"
    assert spec.CKR_BUFFER_TOO_SMALL.name == "CKR_BUFFER_TOO_SMALL"


def test_enum_members_behave_as_ints() -> None:
    assert spec.CKA_WRAP_TEMPLATE & spec.CKF_ARRAY_ATTRIBUTE
    assert spec.CKR(0x150) is spec.CKR_BUFFER_TOO_SMALL
    assert {0x150: "x"}[spec.CKR_BUFFER_TOO_SMALL] == "x"


def test_shim_backend_attribute_is_vendor_defined_ulong() -> None:
    assert spec.CKA_SHIM_BACKEND == spec.CKA_VENDOR_DEFINED | 0x53480001
    assert spec.CKA_SHIM_BACKEND & spec.CKA_VENDOR_DEFINED
    assert ATTR_KIND[spec.CKA_SHIM_BACKEND] is AttrKind.ULONG
    assert (spec.SHIM_BACKEND_SOFTWARE, spec.SHIM_BACKEND_TPM, spec.SHIM_BACKEND_UPSTREAM) == (0, 1, 2)


# --- name functions ------------------------------------------------------------------------

NAME_FUNCTIONS = [
    (spec.ckr_name, spec.CKR),
    (spec.cka_name, spec.CKA),
    (spec.ckm_name, spec.CKM),
    (spec.cko_name, spec.CKO),
    (spec.ckk_name, spec.CKK),
]


@pytest.mark.parametrize("fn,cls", NAME_FUNCTIONS)
def test_name_functions_round_trip(fn, cls: type[enum.IntEnum]) -> None:
    for member in cls:
        assert fn(int(member)) == member.name
        assert getattr(spec, fn(int(member))) == member


def test_name_functions_use_canonical_names_and_hex_fallback() -> None:
    assert spec.ckk_name(3) == "CKK_EC"
    assert spec.cka_name(0x180) == "CKA_EC_PARAMS"
    assert spec.ckr_name(0x150) == "CKR_BUFFER_TOO_SMALL"
    assert spec.ckr_name(0x80000123) == "0x80000123"
    assert spec.ckm_name(0x7777) == "0x00007777"
    assert spec.cko_name(spec.CKO_VENDOR_DEFINED + 1) == "0x80000001"


# --- no unexpected collisions --------------------------------------------------------------

# Every pair of names sharing a value within a family, as the header defines them.
EXPECTED_ALIASES = {
    "CKA": {("CKA_SUB_PRIME_BITS", "CKA_SUBPRIME_BITS"), ("CKA_ECDSA_PARAMS", "CKA_EC_PARAMS"),
            ("CKA_HSS_KEYS_REMAINING", "CKA_KEYS_REMAINING")},
    "CKK": {("CKK_ECDSA", "CKK_EC"), ("CKK_CAST5", "CKK_CAST128")},
    "CKM": {
        ("CKM_CAST5_KEY_GEN", "CKM_CAST128_KEY_GEN"),
        ("CKM_CAST5_ECB", "CKM_CAST128_ECB"),
        ("CKM_CAST5_CBC", "CKM_CAST128_CBC"),
        ("CKM_CAST5_MAC", "CKM_CAST128_MAC"),
        ("CKM_CAST5_MAC_GENERAL", "CKM_CAST128_MAC_GENERAL"),
        ("CKM_CAST5_CBC_PAD", "CKM_CAST128_CBC_PAD"),
        ("CKM_PBE_MD5_CAST5_CBC", "CKM_PBE_MD5_CAST128_CBC"),
        ("CKM_PBE_SHA1_CAST5_CBC", "CKM_PBE_SHA1_CAST128_CBC"),
        ("CKM_ECDSA_KEY_PAIR_GEN", "CKM_EC_KEY_PAIR_GEN"),
        ("CKM_SHA3_256_KEY_DERIVATION", "CKM_SHA3_256_KEY_DERIVE"),
        ("CKM_SHA3_224_KEY_DERIVATION", "CKM_SHA3_224_KEY_DERIVE"),
        ("CKM_SHA3_384_KEY_DERIVATION", "CKM_SHA3_384_KEY_DERIVE"),
        ("CKM_SHA3_512_KEY_DERIVATION", "CKM_SHA3_512_KEY_DERIVE"),
        ("CKM_SHAKE_128_KEY_DERIVATION", "CKM_SHAKE_128_KEY_DERIVE"),
        ("CKM_SHAKE_256_KEY_DERIVATION", "CKM_SHAKE_256_KEY_DERIVE"),
        ("CKM_DSA_PROBABILISTIC_PARAMETER_GEN", "CKM_DSA_PROBABLISTIC_PARAMETER_GEN"),
    },
}


@pytest.mark.parametrize("cls", ENUM_FAMILIES, ids=lambda c: c.__name__)
def test_no_unexpected_collisions_within_family(cls: type[enum.IntEnum]) -> None:
    aliases = {
        (name, member.name) for name, member in cls.__members__.items() if name != member.name
    }
    assert aliases == EXPECTED_ALIASES.get(cls.__name__, set())


@pytest.mark.parametrize("cls", ENUM_FAMILIES, ids=lambda c: c.__name__)
def test_members_carry_their_family_prefix(cls: type[enum.IntEnum]) -> None:
    for name in cls.__members__:
        assert name.startswith(cls.__name__ + "_"), name


# --- attribute kinds -----------------------------------------------------------------------


def test_every_cka_name_has_a_kind() -> None:
    missing = [
        name for name, member in spec.CKA.__members__.items()
        if member not in ATTR_KIND and name != "CKA_VENDOR_DEFINED"
    ]
    assert missing == []
    assert set(ATTR_KIND) == {int(m) for m in spec.CKA} - {spec.CKA_VENDOR_DEFINED}


def test_vendor_range_base_is_not_an_attribute() -> None:
    """CKA_VENDOR_DEFINED only marks the vendor range; the codec must reject it."""
    assert spec.CKA_VENDOR_DEFINED not in ATTR_KIND
    assert spec.CKA_VENDOR_DEFINED + 2 not in ATTR_KIND


@pytest.mark.parametrize(
    "attr,kind",
    [
        (spec.CKA_CLASS, AttrKind.ULONG),
        (spec.CKA_TOKEN, AttrKind.BOOL),
        (spec.CKA_LABEL, AttrKind.BYTES),
        (spec.CKA_ID, AttrKind.BYTES),
        (spec.CKA_UNIQUE_ID, AttrKind.BYTES),
        (spec.CKA_VALUE, AttrKind.BYTES),
        (spec.CKA_VALUE_LEN, AttrKind.ULONG),
        (spec.CKA_MODULUS, AttrKind.BYTES),
        (spec.CKA_MODULUS_BITS, AttrKind.ULONG),
        (spec.CKA_PUBLIC_EXPONENT, AttrKind.BYTES),
        (spec.CKA_EC_PARAMS, AttrKind.BYTES),
        (spec.CKA_EC_POINT, AttrKind.BYTES),
        (spec.CKA_PUBLIC_KEY_INFO, AttrKind.BYTES),
        (spec.CKA_START_DATE, AttrKind.DATE),
        (spec.CKA_END_DATE, AttrKind.DATE),
        (spec.CKA_KEY_TYPE, AttrKind.ULONG),
        (spec.CKA_CERTIFICATE_TYPE, AttrKind.ULONG),
        (spec.CKA_CERTIFICATE_CATEGORY, AttrKind.ULONG),
        (spec.CKA_JAVA_MIDP_SECURITY_DOMAIN, AttrKind.ULONG),
        (spec.CKA_NAME_HASH_ALGORITHM, AttrKind.ULONG),
        (spec.CKA_KEY_GEN_MECHANISM, AttrKind.ULONG),
        (spec.CKA_MECHANISM_TYPE, AttrKind.ULONG),
        (spec.CKA_HW_FEATURE_TYPE, AttrKind.ULONG),
        (spec.CKA_PROFILE_ID, AttrKind.ULONG),
        (spec.CKA_PIXEL_X, AttrKind.ULONG),
        (spec.CKA_BITS_PER_PIXEL, AttrKind.ULONG),
        (spec.CKA_COLOR, AttrKind.BOOL),
        (spec.CKA_CHAR_SETS, AttrKind.BYTES),
        (spec.CKA_PRIME_BITS, AttrKind.ULONG),
        (spec.CKA_VALUE_BITS, AttrKind.ULONG),
        (spec.CKA_OTP_FORMAT, AttrKind.ULONG),
        (spec.CKA_OTP_USER_FRIENDLY_MODE, AttrKind.BOOL),
        (spec.CKA_OTP_COUNTER, AttrKind.BYTES),
        (spec.CKA_ALWAYS_AUTHENTICATE, AttrKind.BOOL),
        (spec.CKA_DESTROYABLE, AttrKind.BOOL),
        (spec.CKA_WRAP_TEMPLATE, AttrKind.ATTR_ARRAY),
        (spec.CKA_UNWRAP_TEMPLATE, AttrKind.ATTR_ARRAY),
        (spec.CKA_DERIVE_TEMPLATE, AttrKind.ATTR_ARRAY),
        (spec.CKA_ALLOWED_MECHANISMS, AttrKind.MECH_ARRAY),
        (spec.CKA_PARAMETER_SET, AttrKind.ULONG),
        (spec.CKA_SEED, AttrKind.BYTES),
        (spec.CKA_ENCAPSULATE, AttrKind.BOOL),
        (spec.CKA_DECAPSULATE, AttrKind.BOOL),
        (spec.CKA_ENCAPSULATE_TEMPLATE, AttrKind.ATTR_ARRAY),
        (spec.CKA_DECAPSULATE_TEMPLATE, AttrKind.ATTR_ARRAY),
        (spec.CKA_PUBLIC_CRC64_VALUE, AttrKind.BYTES),
        (spec.CKA_TRUST_SERVER_AUTH, AttrKind.ULONG),
    ],
    ids=lambda v: v.name if hasattr(v, "name") else str(v),
)
def test_attribute_kind(attr: int, kind: AttrKind) -> None:
    assert ATTR_KIND[attr] is kind


def test_array_kinds_are_exactly_the_array_attributes() -> None:
    """CKF_ARRAY_ATTRIBUTE marks the attributes whose value is an array (pkcs11t.h)."""
    flagged = {a for a in ATTR_KIND if a & spec.CKF_ARRAY_ATTRIBUTE and a < spec.CKA_VENDOR_DEFINED}
    arrays = {a for a, k in ATTR_KIND.items() if k in (AttrKind.ATTR_ARRAY, AttrKind.MECH_ARRAY)}
    assert flagged == arrays


def test_attr_kind_names() -> None:
    assert {k.name for k in AttrKind} == {"BOOL", "ULONG", "BYTES", "DATE", "ATTR_ARRAY", "MECH_ARRAY"}


# --- the generated file is up to date --------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_spec_py_is_what_the_generator_writes() -> None:
    import runpy

    gen = runpy.run_path(str(ROOT / "scripts" / "gen_spec.py"))
    assert gen["build"]() == (ROOT / "cryptoki_shim" / "spec.py").read_text()
    assert gen["build_ints"]() == (ROOT / "cryptoki_shim" / "spec_ints.py").read_text()


def test_spec_ints_are_plain_ints_equal_to_spec() -> None:
    """spec_ints (the hot path's constants) names what spec names, same values, type int."""
    from cryptoki_shim import spec_ints

    names = [n for n in vars(spec_ints) if n.startswith("CK")]
    assert set(names) == {n for n in dir(spec) if re.fullmatch(r"CK[A-Z]?_\w+", n)}
    for name in names:
        value = getattr(spec_ints, name)
        assert type(value) is int and value == getattr(spec, name), name


# --- our C header agrees ------------------------------------------------------------------------

HEADER = ROOT / "native" / "pkcs11.h"
_DEFINE = re.compile(r"^\s*#\s*define\s+(CK[A-Z]?_\w+)\s+(.+?)\s*(?:/\*.*\*/)?\s*$")
_INT = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b")


def _header_values(text: str) -> dict[str, int]:
    """Numeric #defines of a PKCS#11 header; names as values are resolved, macros skipped."""
    raw = {m.group(1): m.group(2) for m in map(_DEFINE.match, text.splitlines()) if m}
    out: dict[str, int] = {}

    def value(name: str, depth: int = 0) -> int | None:
        if name in out:
            return out[name]
        expr = raw.get(name)
        if expr is None or depth > 10:
            return None
        py = _INT.sub(lambda m: str(int(m.group(1), 0)), expr)
        for ref in re.findall(r"\b[A-Za-z_]\w*\b", py):
            v = value(ref, depth + 1)
            if v is None:
                return None
            py = re.sub(rf"\b{ref}\b", str(v), py)
        if not re.fullmatch(r"[\d\s()|~&+]*", py):
            return None
        result = eval(py, {"__builtins__": {}}) & ((1 << 64) - 1)  # noqa: S307
        out[name] = result
        return result

    for name in raw:
        value(name)
    return out


# C plumbing macros of pkcs11.h (section 2 of the base spec), not constants.
PLATFORM_MACROS = {"CK_PTR", "CK_NULL_PTR", "NULL_PTR"}


def test_header_parser_reads_values_and_expressions() -> None:
    """The parser used below must see hex, suffixes, | expressions and aliases."""
    text = """
#define CKA_TEST_A 0x00000003UL /* comment */
#define CKA_TEST_T (CKF_TEST|0x211UL)
#define CKF_TEST 0x40000000UL
#define CKA_TEST_ALIAS CKA_TEST_A
#define CK_TEST_ALL (~0UL)
#define CK_PTR *
#define CK_DECLARE_FUNCTION(rtype, name) extern rtype name
"""
    assert _header_values(text) == {
        "CKA_TEST_A": 3,
        "CKA_TEST_T": 0x40000211,
        "CKF_TEST": 0x40000000,
        "CKA_TEST_ALIAS": 3,
        "CK_TEST_ALL": 0xFFFFFFFFFFFFFFFF,
    }


def test_native_header_values_agree_with_spec() -> None:
    if not HEADER.exists():
        pytest.skip("native/pkcs11.h is not written yet (another engineer's file)")
    values = _header_values(HEADER.read_text())
    assert values, "no CK*_ #defines found in native/pkcs11.h"
    missing = sorted(n for n in values if not hasattr(spec, n) and n not in PLATFORM_MACROS)
    wrong = sorted(
        (n, hex(v), hex(int(getattr(spec, n)))) for n, v in values.items()
        if hasattr(spec, n) and int(getattr(spec, n)) != v
    )
    assert wrong == []
    assert missing == []
