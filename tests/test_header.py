"""Checks of our PKCS#11 3.2 header files in native/.

native/pkcs11.h (for C), native/cdef.h (for cffi) and native/functions.h (the function
table) are written by hand from the OASIS PKCS#11 3.0 and 3.2 values.  A wrong member, a
swapped pointer or a mistyped constant would not show until a client crashes or reads
a wrong value, so these tests hold the three files against each other, against gcc,
against the spec's function order, and against the independent p11-kit header.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cffi
import pytest

NATIVE = Path(__file__).resolve().parent.parent / "native"
PKCS11_H = NATIVE / "pkcs11.h"
CDEF_H = NATIVE / "cdef.h"
FUNCTIONS_H = NATIVE / "functions.h"
P11_KIT_H = Path("/usr/include/p11-kit-1/p11-kit/pkcs11.h")

# The 68 functions of CK_FUNCTION_LIST, in the order of OASIS pkcs11f.h (2.40 and 3.0).
SPEC_FUNCTIONS_2_40 = [
    "C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList",
    "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList",
    "C_GetMechanismInfo", "C_InitToken", "C_InitPIN", "C_SetPIN",
    "C_OpenSession", "C_CloseSession", "C_CloseAllSessions", "C_GetSessionInfo",
    "C_GetOperationState", "C_SetOperationState", "C_Login", "C_Logout",
    "C_CreateObject", "C_CopyObject", "C_DestroyObject", "C_GetObjectSize",
    "C_GetAttributeValue", "C_SetAttributeValue", "C_FindObjectsInit", "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal",
    "C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal",
    "C_DigestInit", "C_Digest", "C_DigestUpdate", "C_DigestKey", "C_DigestFinal",
    "C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal", "C_SignRecoverInit",
    "C_SignRecover",
    "C_VerifyInit", "C_Verify", "C_VerifyUpdate", "C_VerifyFinal",
    "C_VerifyRecoverInit", "C_VerifyRecover",
    "C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate",
    "C_DecryptVerifyUpdate",
    "C_GenerateKey", "C_GenerateKeyPair", "C_WrapKey", "C_UnwrapKey", "C_DeriveKey",
    "C_SeedRandom", "C_GenerateRandom",
    "C_GetFunctionStatus", "C_CancelFunction", "C_WaitForSlotEvent",
]

# The 24 functions PKCS#11 3.0 appends in CK_FUNCTION_LIST_3_0 (OASIS 3.0 pkcs11f.h).
SPEC_FUNCTIONS_3_0_ADDED = [
    "C_GetInterfaceList", "C_GetInterface", "C_LoginUser", "C_SessionCancel",
    "C_MessageEncryptInit", "C_EncryptMessage", "C_EncryptMessageBegin",
    "C_EncryptMessageNext", "C_MessageEncryptFinal",
    "C_MessageDecryptInit", "C_DecryptMessage", "C_DecryptMessageBegin",
    "C_DecryptMessageNext", "C_MessageDecryptFinal",
    "C_MessageSignInit", "C_SignMessage", "C_SignMessageBegin", "C_SignMessageNext",
    "C_MessageSignFinal",
    "C_MessageVerifyInit", "C_VerifyMessage", "C_VerifyMessageBegin",
    "C_VerifyMessageNext", "C_MessageVerifyFinal",
]

# The 12 functions PKCS#11 3.2 appends in CK_FUNCTION_LIST_3_2 (OASIS published/3-02
# pkcs11f.h, then the two authenticated-wrap functions, as p11-kit's pkcs11.h orders them).
SPEC_FUNCTIONS_3_2_ADDED = [
    "C_EncapsulateKey", "C_DecapsulateKey",
    "C_VerifySignatureInit", "C_VerifySignature", "C_VerifySignatureUpdate",
    "C_VerifySignatureFinal", "C_GetSessionValidationFlags",
    "C_AsyncComplete", "C_AsyncGetID", "C_AsyncJoin",
    "C_WrapKeyAuthenticated", "C_UnwrapKeyAuthenticated",
]

# Structs the ABI layer reads or writes; each must exist in both headers.
REQUIRED_STRUCTS = [
    "CK_VERSION", "CK_INFO", "CK_SLOT_INFO", "CK_TOKEN_INFO", "CK_SESSION_INFO",
    "CK_ATTRIBUTE", "CK_DATE", "CK_MECHANISM", "CK_MECHANISM_INFO",
    "CK_C_INITIALIZE_ARGS", "CK_INTERFACE", "CK_FUNCTION_LIST", "CK_FUNCTION_LIST_3_0",
    "CK_RSA_PKCS_OAEP_PARAMS", "CK_RSA_PKCS_PSS_PARAMS", "CK_ECDH1_DERIVE_PARAMS",
    "CK_ECDH2_DERIVE_PARAMS", "CK_ECMQV_DERIVE_PARAMS", "CK_X9_42_DH1_DERIVE_PARAMS",
    "CK_X9_42_DH2_DERIVE_PARAMS", "CK_X9_42_MQV_DERIVE_PARAMS",
    "CK_GCM_PARAMS", "CK_CCM_PARAMS", "CK_AES_CTR_PARAMS", "CK_EDDSA_PARAMS",
    "CK_HKDF_PARAMS", "CK_SP800_108_KDF_PARAMS", "CK_SP800_108_FEEDBACK_KDF_PARAMS",
    "CK_PRF_DATA_PARAM", "CK_SP800_108_COUNTER_FORMAT", "CK_SP800_108_DKM_LENGTH_FORMAT",
    "CK_DERIVED_KEY", "CK_PKCS5_PBKD2_PARAMS", "CK_PKCS5_PBKD2_PARAMS2",
    "CK_KEY_DERIVATION_STRING_DATA", "CK_AES_CBC_ENCRYPT_DATA_PARAMS",
    "CK_GCM_MESSAGE_PARAMS", "CK_CCM_MESSAGE_PARAMS", "CK_CHACHA20_PARAMS",
    "CK_SALSA20_PARAMS", "CK_SALSA20_CHACHA20_POLY1305_PARAMS",
    "CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS",
    # 3.2
    "CK_FUNCTION_LIST_3_2", "CK_ASYNC_DATA", "CK_SIGN_ADDITIONAL_CONTEXT",
    "CK_HASH_SIGN_ADDITIONAL_CONTEXT", "CK_GCM_WRAP_PARAMS", "CK_CCM_WRAP_PARAMS",
    "CK_TLS12_EXTENDED_MASTER_KEY_DERIVE_PARAMS",
]

# Macros in pkcs11.h that are C plumbing, not PKCS#11 values.
PLUMBING_MACROS = {
    "CK_PTR", "CK_DEFINE_FUNCTION", "CK_DECLARE_FUNCTION", "CK_DECLARE_FUNCTION_POINTER",
    "CK_CALLBACK_FUNCTION", "CK_FN", "CK_FN_3_0_BEGIN", "CK_FN_3_2_BEGIN",
}

# Names whose value p11-kit (Debian's /usr/include/p11-kit-1/p11-kit/pkcs11.h) numbers
# differently from OASIS.  p11-kit took these five return values from a 2.40 draft
# (0x1C0-0x1C4); the OASIS 2.40 errata and 3.0 pkcs11t.h number them 0x1B5-0x1B9,
# which is what we (and clients built against the OASIS headers) use.
P11_KIT_KNOWN_DIFFERENCES = {
    "CKR_EXCEEDED_MAX_ITERATIONS": (0x1B5, 0x1C0),
    "CKR_FIPS_SELF_TEST_FAILED": (0x1B6, 0x1C1),
    "CKR_LIBRARY_LOAD_FAILED": (0x1B7, 0x1C2),
    "CKR_PIN_TOO_WEAK": (0x1B8, 0x1C3),
    "CKR_PUBLIC_KEY_INVALID": (0x1B9, 0x1C4),
}

_CK_FN = re.compile(r"^CK_FN\((\w+), \(([^)]*)\), \(([^)]*)\)\)$")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(CK[A-Z]?_\w+)[ \t]*([^\n]*)$", re.M)


def read_functions_by_version() -> tuple[list[tuple[str, str, str]], ...]:
    """Parse functions.h into (2.40 entries, 3.0 additions, 3.2 additions), each (name, params, args)."""
    parts: list[list[tuple[str, str, str]]] = [[], [], []]
    markers: list[str] = []
    for line in FUNCTIONS_H.read_text().splitlines():
        if line.strip() in ("CK_FN_3_0_BEGIN", "CK_FN_3_2_BEGIN"):
            markers.append(line.strip())
            continue
        if line.startswith("CK_FN"):
            match = _CK_FN.match(line)
            assert match, f"functions.h line not in the one-line CK_FN form: {line!r}"
            parts[len(markers)].append(match.groups())  # type: ignore[arg-type]
    assert markers == ["CK_FN_3_0_BEGIN", "CK_FN_3_2_BEGIN"], "one marker of each, in order"
    return tuple(parts)


def read_functions() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(2.40 entries, every later addition: 3.0 then 3.2)."""
    before, added_3_0, added_3_2 = read_functions_by_version()
    return before, added_3_0 + added_3_2


def param_decls(params: str) -> list[tuple[str, str]]:
    """Split "CK_X a, CK_Y b" into [(type, name), ...]."""
    out = []
    for decl in params.split(","):
        *type_words, name = decl.split()
        out.append((" ".join(type_words), name))
    return out


def define_values(path: Path) -> dict[str, int]:
    """Numeric value of every `#define CK?_NAME expr` in a header (64-bit CK_ULONG).

    Understands the forms both OASIS-style headers use: literals with U/L suffixes,
    parentheses, `|`, `~`, and names defined earlier in the same file.
    """
    text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
    values: dict[str, int] = {}
    for name, expr in _DEFINE.findall(text):
        expr = re.sub(r"\b([0-9][0-9a-fA-FxX]*)[uUlL]+\b", r"\1", expr.strip())
        expr = re.sub(
            r"\b(CK[A-Z]?_\w+)\b",
            lambda m: str(values[m.group(1)]) if m.group(1) in values else "@",
            expr,
        )
        if expr and re.fullmatch(r"[0-9a-fA-FxX\s()|~&+]+", expr):
            values[name] = eval(expr) & 0xFFFFFFFFFFFFFFFF  # noqa: S307 - digits/operators only
    return values


@pytest.fixture(scope="module")
def ffi() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(CDEF_H.read_text())
    return ffi


def struct_names(ffi: cffi.FFI) -> list[str]:
    typedefs, _structs, _unions = ffi.list_types()
    named = [n for n in typedefs if ffi.typeof(n).kind == "struct"]
    # the function lists are declared as `struct X` with a separate typedef
    return sorted(set(named) | {"CK_FUNCTION_LIST", "CK_FUNCTION_LIST_3_0", "CK_FUNCTION_LIST_3_2"})


def compile_and_run(tmp_path: Path, source: str, *flags: str) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    c_file = tmp_path / "probe.c"
    c_file.write_text(source)
    exe = tmp_path / "probe"
    build = subprocess.run(
        [gcc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags,
         f"-I{NATIVE}", str(c_file), "-o", str(exe)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


# ---------------------------------------------------------------- functions.h


def test_functions_h_lists_the_68_functions_of_ck_function_list_in_spec_order():
    before, _ = read_functions()
    assert [name for name, _, _ in before] == SPEC_FUNCTIONS_2_40
    assert len(before) == 68


def test_functions_h_lists_the_24_functions_3_0_adds_in_spec_order():
    _, after, _ = read_functions_by_version()
    assert [name for name, _, _ in after] == SPEC_FUNCTIONS_3_0_ADDED
    assert len(after) == 24


def test_functions_h_lists_the_12_functions_3_2_adds_in_spec_order():
    _, _, after = read_functions_by_version()
    assert [name for name, _, _ in after] == SPEC_FUNCTIONS_3_2_ADDED
    assert len(after) == 12


def test_functions_h_argument_names_match_parameter_names():
    before, after = read_functions()
    for name, params, args in before + after:
        assert [n for _, n in param_decls(params)] == args.split(", "), name


# --------------------------------------------------------------------- cdef.h


def test_cdef_h_has_no_preprocessor_directives():
    lines = [line for line in CDEF_H.read_text().splitlines() if line.lstrip().startswith("#")]
    assert lines == []


def test_cdef_h_declares_every_required_struct(ffi):
    missing = [name for name in REQUIRED_STRUCTS if name not in struct_names(ffi)]
    assert missing == []


def test_cdef_h_function_lists_hold_version_then_the_functions_h_pointers(ffi):
    before, added_3_0, added_3_2 = read_functions_by_version()
    names_2_40 = [n for n, _, _ in before]
    names_3_0 = names_2_40 + [n for n, _, _ in added_3_0]
    names_3_2 = names_3_0 + [n for n, _, _ in added_3_2]
    for struct, names in (("CK_FUNCTION_LIST", names_2_40), ("CK_FUNCTION_LIST_3_0", names_3_0),
                          ("CK_FUNCTION_LIST_3_2", names_3_2)):
        fields = ffi.typeof(struct).fields
        assert [f for f, _ in fields] == ["version", *names]
        assert [t.type for _, t in fields[1:]] == [ffi.typeof(f"CK_{n}") for n in names]
    pointer = ffi.sizeof("void *")
    assert ffi.sizeof("CK_FUNCTION_LIST") == 8 + 68 * pointer
    assert ffi.sizeof("CK_FUNCTION_LIST_3_0") == 8 + 92 * pointer
    assert ffi.sizeof("CK_FUNCTION_LIST_3_2") == 8 + 104 * pointer


def test_cdef_h_function_pointer_types_match_functions_h(ffi):
    before, after = read_functions()
    for name, params, _ in before + after:
        fn = ffi.typeof(f"CK_{name}")  # cffi's ctype for a pointer to function
        assert fn.kind == "function" and not fn.ellipsis, name
        assert fn.result is ffi.typeof("CK_RV"), name
        expected = [ffi.typeof(t) for t, _ in param_decls(params)]
        assert list(fn.args) == expected, name


def test_cdef_h_uses_the_linux_lp64_sizes(ffi):
    assert ffi.sizeof("CK_ULONG") == 8
    assert ffi.sizeof("CK_BBOOL") == 1
    assert ffi.sizeof("CK_ATTRIBUTE") == 24
    assert ffi.sizeof("CK_TOKEN_INFO") == 208
    # 3.0 CK_GCM_PARAMS: pIv, ulIvLen, ulIvBits, pAAD, ulAADLen, ulTagBits
    assert [f for f, _ in ffi.typeof("CK_GCM_PARAMS").fields] == [
        "pIv", "ulIvLen", "ulIvBits", "pAAD", "ulAADLen", "ulTagBits"]
    assert ffi.sizeof("CK_GCM_PARAMS") == 48


# ------------------------------------------------------------ pkcs11.h vs gcc


def test_pkcs11_h_layout_matches_cdef_h_for_every_struct(ffi, tmp_path):
    """gcc's sizeof/offsetof of each struct in pkcs11.h == cffi's from cdef.h."""
    expected: list[str] = []
    probes: list[str] = []
    for struct in struct_names(ffi):
        expected.append(f"{struct} {ffi.sizeof(struct)}")
        probes.append(f'    printf("{struct} %zu\\n", sizeof({struct}));')
        for field, info in ffi.typeof(struct).fields:
            expected.append(f"{struct}.{field} {info.offset}")
            probes.append(
                f'    printf("{struct}.{field} %zu\\n", offsetof({struct}, {field}));')
    source = "\n".join([
        "#include <stddef.h>", "#include <stdio.h>", '#include "pkcs11.h"',
        "int main(void) {", *probes, "    return 0;", "}", ""])
    assert len(expected) > 400  # every struct and member, not a vacuous comparison
    assert compile_and_run(tmp_path, source).splitlines() == expected


def test_pkcs11_h_prototypes_have_the_ck_c_pointer_types(tmp_path):
    """Each C_x prototype is assignable to CK_C_x and sits in both function lists."""
    before, added_3_0, added_3_2 = read_functions_by_version()
    lines = ["#include <stdio.h>", '#include "pkcs11.h"', "int main(void) {",
             "    CK_FUNCTION_LIST l2 = {{2, 40}, 0};", "    CK_FUNCTION_LIST_3_0 l3 = {{3, 0}, 0};",
             "    CK_FUNCTION_LIST_3_2 l32 = {{3, 2}, 0};"]
    for name, _, _ in before:
        lines += [f"    {{ CK_{name} p = &{name}; l2.{name} = p; l3.{name} = p; l32.{name} = p; }}"]
    for name, _, _ in added_3_0:
        lines += [f"    {{ CK_{name} p = &{name}; l3.{name} = p; l32.{name} = p; }}"]
    for name, _, _ in added_3_2:
        lines += [f"    {{ CK_{name} p = &{name}; l32.{name} = p; }}"]
    lines += ['    printf("%d %d %d\\n", l2.C_Initialize != 0, l3.C_MessageVerifyFinal != 0,'
              ' l32.C_UnwrapKeyAuthenticated != 0);',
              "    return 0;", "}"]
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    c_file = tmp_path / "protos.c"
    c_file.write_text("\n".join(lines) + "\n")
    # compile only: the functions are declared, not defined, in the header
    build = subprocess.run(
        [gcc, "-std=c11", "-Wall", "-Werror", "-Wno-missing-field-initializers",
         "-Werror=incompatible-pointer-types", f"-I{NATIVE}", "-c", str(c_file),
         "-o", str(tmp_path / "protos.o")],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stderr


def test_pkcs11_h_compiles_as_c_and_cxx_without_warnings(tmp_path):
    source = '#include "pkcs11.h"\nint main(void) { return (int)CKR_OK; }\n'
    assert compile_and_run(tmp_path, source) == ""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not installed")
    cc = tmp_path / "probe.cc"
    cc.write_text(source.replace("(void)", "()"))
    build = subprocess.run(
        [gxx, "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{NATIVE}", "-fsyntax-only", str(cc)],
        capture_output=True, text=True)
    assert build.returncode == 0, build.stderr


def test_pkcs11_h_constants_are_literal_unsigned_long_hex():
    """Every value is written `0x...UL` so scripts (scripts/gen_spec.py) can read it."""
    text = re.sub(r"/\*.*?\*/", " ", PKCS11_H.read_text(), flags=re.S)
    bad = [
        (name, expr) for name, expr in _DEFINE.findall(text)
        if name not in PLUMBING_MACROS and not re.fullmatch(r"0x[0-9A-F]+UL", expr.strip())
    ]
    assert bad == []
    names = [name for name, _ in _DEFINE.findall(text) if name not in PLUMBING_MACROS]
    assert len(names) == len(set(names)), "a constant is defined twice"


def test_pkcs11_h_aliases_and_array_attributes_keep_the_spec_relations(tmp_path):
    """The spec writes some values as expressions; our literals must equal them."""
    checks = [
        "CKA_WRAP_TEMPLATE == (CKF_ARRAY_ATTRIBUTE | 0x211UL)",
        "CKA_UNWRAP_TEMPLATE == (CKF_ARRAY_ATTRIBUTE | 0x212UL)",
        "CKA_DERIVE_TEMPLATE == (CKF_ARRAY_ATTRIBUTE | 0x213UL)",
        "CKA_ALLOWED_MECHANISMS == (CKF_ARRAY_ATTRIBUTE | 0x600UL)",
        "CKA_ENCAPSULATE_TEMPLATE == (CKF_ARRAY_ATTRIBUTE | 0x62AUL)",
        "CKA_DECAPSULATE_TEMPLATE == (CKF_ARRAY_ATTRIBUTE | 0x62BUL)",
        "CKA_HSS_KEYS_REMAINING == CKA_KEYS_REMAINING",
        "CKA_SUB_PRIME_BITS == CKA_SUBPRIME_BITS",
        "CKF_EC_NAMEDCURVE == CKF_EC_OID",
        "CKF_MULTI_MESSGE == CKF_MULTI_MESSAGE",
        "CK_SP800_108_COUNTER == CK_SP800_108_OPTIONAL_COUNTER",
        "CKK_ECDSA == CKK_EC",
        "CKM_ECDSA_KEY_PAIR_GEN == CKM_EC_KEY_PAIR_GEN",
        "CK_UNAVAILABLE_INFORMATION == ~0UL",
    ]
    source = "\n".join(
        ['#include "pkcs11.h"']
        + [f'_Static_assert({c}, "{c}");' for c in checks]
        + ["int main(void) { return 0; }", ""])
    compile_and_run(tmp_path, source)


# -------------------------------------------------------- pkcs11.h vs p11-kit


@pytest.mark.skipif(not P11_KIT_H.exists(), reason="p11-kit header not installed (libp11-kit-dev)")
def test_pkcs11_h_values_agree_with_p11_kit_header():
    """Independent check of our transcription: the names p11-kit shares must agree."""
    ours = define_values(PKCS11_H)
    theirs = define_values(P11_KIT_H)
    shared = sorted(set(ours) & set(theirs))
    assert len(shared) > 500  # p11-kit covers most of 2.40 and part of 3.0
    differences = {n: (ours[n], theirs[n]) for n in shared if ours[n] != theirs[n]}
    assert differences == {
        n: v for n, v in P11_KIT_KNOWN_DIFFERENCES.items() if n in shared}


def test_define_values_reads_expressions_and_aliases(tmp_path):
    """Self-test of the parser the p11-kit comparison relies on."""
    header = tmp_path / "h.h"
    header.write_text(
        "#define CKF_ARRAY_ATTRIBUTE (0x40000000UL)\n"
        "#define CKA_WRAP_TEMPLATE (CKF_ARRAY_ATTRIBUTE | 0x211UL) /* c */\n"
        "#define CK_UNAVAILABLE_INFORMATION (~0UL)\n"
        "#define CKR_OK 0\n"
        "#define CK_PTR *\n")
    assert define_values(header) == {
        "CKF_ARRAY_ATTRIBUTE": 0x40000000,
        "CKA_WRAP_TEMPLATE": 0x40000211,
        "CK_UNAVAILABLE_INFORMATION": 0xFFFFFFFFFFFFFFFF,
        "CKR_OK": 0,
    }
