"""Build build/libcryptoki_shim.so with cffi's embedding mode.

Run with the venv's interpreter (``.venv/bin/python build_ffi.py``); the venv must be made
from Debian's python3, whose libpython is shared. No path of the build is baked in: the
library finds its Python environment from where it lies (native/pyenv.c: a clone's .venv,
the package directory of a pip install, /usr/lib/cryptoki-shim/python of the Debian package;
CRYPTOKI_SHIM_VENV or [python] venv override), so it works from any host process without
environment variables (DESIGN.md §2.1-2) and from a copied or moved tree (issue 18).
``build(out)`` writes the library elsewhere (setup.py: into the package of a wheel).

What is generated here, from ``native/functions.h`` (the X-macro list of every function of
the 3.2 function list, in table order):
  * ``build/gen/shim_entries.inc``: for every function that Python implements, a guarded
    exported wrapper ``C_X`` calling the cffi embedding entry ``py_C_X`` inside the fork
    gate (shim_enter/shim_leave, see shim.c), the GIL entry gate around the Python call
    (shim_gate_enter/shim_gate_exit: only its holder waits for the GIL) and the re-entry guard (shim_depth: a call
    on a thread already inside is refused); the 2.40, 3.0 and 3.2
    function lists, each with a C_GetInfo that reports its version; the interface table
    (3.2 first: the default);
  * the cffi ``embedding_api`` declarations of those ``py_C_X``, ``shim_py_ready`` and
    ``shim_py_reentered`` (the re-entry guard's log line);
  * the embedding init code, which attaches the Python entries (``cryptoki_shim.abi``).

Besides the PKCS#11 declarations (``native/cdef.h``), the cdef holds the C helpers that
Python calls through the embedded module's ``lib`` (``PY_CALLABLE``): cffi releases the GIL
around those calls, which is why signing lives there (``native/fastsign.c``, issue #9).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

import cffi

ROOT = Path(__file__).resolve().parent
NATIVE = ROOT / "native"
BUILD = ROOT / "build"
MODULE_NAME = "_cryptoki_shim"
LIBRARY = BUILD / "libcryptoki_shim.so"

#: Functions answered in C (they hand out tables and must work before Python runs).
C_ONLY = ("C_GetFunctionList", "C_GetInterfaceList", "C_GetInterface")
#: Headers of C helpers callable from Python as ``lib.<name>`` (cdef text, no preprocessor);
#: each ``<name>.h`` has its implementation in ``<name>.c``, compiled into the library.
PY_CALLABLE = ("fastsign", "digest", "lane", "sessions")
#: What shim.c itself offers to Python (``lib.<name>``).
SHIM_CDEF = "int shim_owns_interpreter(void);\nconst char *shim_site_dir(void);\nint shim_gate_publish(void);"
#: Libraries the helpers need (the system libcrypto for fastsign.c).
HELPER_LIBRARIES = ["crypto"]
#: How many functions the 2.40 CK_FUNCTION_LIST, CK_FUNCTION_LIST_3_0 and
#: CK_FUNCTION_LIST_3_2 hold (each list is a prefix of the next).
COUNT_2_40 = 68
COUNT_3_0 = 92
COUNT_3_2 = 104

_FN = re.compile(r"^\s*CK_FN\(\s*(\w+)\s*,\s*\((.*)\)\s*,\s*\((.*)\)\s*\)\s*$")


def read_functions() -> list[tuple[str, str, str]]:
    """(name, parameter declarations, argument names) for every function, in table order."""
    out = []
    for line in (NATIVE / "functions.h").read_text().splitlines():
        m = _FN.match(line)
        if m:
            out.append((m.group(1), m.group(2).strip() or "void", m.group(3).strip()))
    if len(out) != COUNT_3_2:
        raise SystemExit(f"native/functions.h: expected {COUNT_3_2} functions, found {len(out)}")
    return out


#: The native lane (native/lane.c, issue 22): the functions it may answer in C before Python
#: (name -> its function in lane.c), ...
LANE_SERVED = {"C_DigestInit": "shim_lane_digest_init", "C_Digest": "shim_lane_digest",
               "C_SignInit": "shim_lane_sign_init", "C_Sign": "shim_lane_sign",
               "C_VerifyInit": "shim_lane_verify_init", "C_Verify": "shim_lane_verify",
               "C_EncryptInit": "shim_lane_encrypt_init", "C_Encrypt": "shim_lane_encrypt",
               "C_GetSessionInfo": "shim_lane_session_info"}
#: ... the C_*Init functions (and C_GetSessionInfo) whose Python answer may arm it (their call's
#: epoch is noted) ...
LANE_ARMING = ("C_DigestInit", "C_SignInit", "C_VerifyInit", "C_EncryptInit", "C_DecryptInit", "C_GetSessionInfo")
#: ... and the functions that cannot change any verdict of a C_*Init (docs/security.md "The
#: native lane"): every other function voids the lane's arms before and after its Python call
#: and no lane C_*Init is served while it runs (shim_lane_change_begin/_end; the voided key
#: states are cleansed at the end). A function missing here only costs the lane a Python
#: C_*Init: the list is an allow-list on purpose.
LANE_NEUTRAL = frozenset({
    "C_GetInfo", "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo",
    "C_OpenSession", "C_GetSessionInfo", "C_GetOperationState", "C_GetObjectSize", "C_GetAttributeValue",
    "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal",
    "C_EncryptInit", "C_Encrypt", "C_EncryptUpdate", "C_EncryptFinal",
    "C_DecryptInit", "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal",
    "C_DigestInit", "C_Digest", "C_DigestUpdate", "C_DigestKey", "C_DigestFinal",
    "C_SignInit", "C_Sign", "C_SignUpdate", "C_SignFinal", "C_SignRecoverInit", "C_SignRecover",
    "C_VerifyInit", "C_Verify", "C_VerifyUpdate", "C_VerifyFinal", "C_VerifyRecoverInit", "C_VerifyRecover",
    "C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate", "C_DecryptVerifyUpdate",
    "C_SeedRandom", "C_GenerateRandom", "C_GetFunctionStatus", "C_CancelFunction", "C_WaitForSlotEvent",
    "C_SessionCancel",
    "C_MessageEncryptInit", "C_EncryptMessage", "C_EncryptMessageBegin", "C_EncryptMessageNext",
    "C_MessageEncryptFinal", "C_MessageDecryptInit", "C_DecryptMessage", "C_DecryptMessageBegin",
    "C_DecryptMessageNext", "C_MessageDecryptFinal", "C_MessageSignInit", "C_SignMessage", "C_SignMessageBegin",
    "C_SignMessageNext", "C_MessageSignFinal", "C_MessageVerifyInit", "C_VerifyMessage", "C_VerifyMessageBegin",
    "C_VerifyMessageNext", "C_MessageVerifyFinal",
    "C_VerifySignatureInit", "C_VerifySignature", "C_VerifySignatureUpdate", "C_VerifySignatureFinal",
    "C_GetSessionValidationFlags", "C_AsyncComplete", "C_AsyncGetID", "C_AsyncJoin",
})
#: What the lane does after the Python call of these, when it answered CKR_OK.
LANE_AFTER = {"C_CloseSession": "shim_lane_closed(hSession)", "C_Finalize": "shim_lane_finalized()"}
LANE_PROTOTYPES = """static void shim_lane_change_begin(void);
static void shim_lane_change_end(void);
static inline void shim_lane_mark(void);
static void shim_lane_settle(CK_SESSION_HANDLE h);
static void shim_lane_closed(CK_SESSION_HANDLE h);
static void shim_lane_finalized(void);
static CK_RV shim_lane_digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism);
static CK_RV shim_lane_digest(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                              CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen);
static CK_RV shim_lane_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey);
static CK_RV shim_lane_verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey);
static CK_RV shim_lane_sign(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                            CK_ULONG_PTR pulSignatureLen);
static CK_RV shim_lane_verify(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                              CK_ULONG ulSignatureLen);
static CK_RV shim_lane_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey);
static CK_RV shim_lane_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR pInfo);
static CK_RV shim_lane_encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                               CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen);
#define SHIM_LANE_PASS (~(CK_RV)0)
"""


def lane_call(name: str, params: str, args: str, python: str) -> str:
    """A wrapper's body after the start-up guard: the lane first (LANE_SERVED; outside the
    fork gate: it touches neither Python nor SQLite, and its mutexes are made anew in a forked
    child, native/lane.c), else ``python`` (the fork gate and the Python call), with the
    lane's change bracket, the adoption of the session's lane operations just before the
    Python call (any function on a session: ``shim_lane_settle``) and LANE_AFTER."""
    before = ""
    if name not in LANE_NEUTRAL:
        before += "        shim_lane_change_begin();\n"
    if name in LANE_ARMING:
        before += "        shim_lane_mark();\n"
    if params.startswith("CK_SESSION_HANDLE hSession"):  # just before the Python call (inside any gate)
        call_at = python.index(f"        rv = py_{name}(")
        python = python[:call_at] + "        shim_lane_settle(hSession);\n" + python[call_at:]
    after = "" if name in LANE_NEUTRAL else "        shim_lane_change_end();\n"
    if name in LANE_AFTER:
        after += f"        if (rv == CKR_OK)\n            {LANE_AFTER[name]};\n"
    body = before + python + after
    if name not in LANE_SERVED:
        return body
    inner = "".join("    " + line + "\n" for line in body.splitlines())
    return (f"        rv = {LANE_SERVED[name]}({args});\n"
            f"        if (rv == SHIM_LANE_PASS) {{\n{inner}        }}\n")


#: Answered in C first when they can be (native/sessions.c, issue 22 goal 3: sessions Python
#: never saw), inside the re-entry guard, before the fork gate and Python; 0 = go to Python.
C_FIRST = {"C_OpenSession": "shim_sess_open(slotID, flags, phSession, &rv)",
           "C_CloseSession": "shim_sess_close(hSession, &rv)"}
C_FIRST_PROTOTYPES = """static int shim_sess_open(CK_SLOT_ID slot_id, CK_FLAGS flags, CK_SESSION_HANDLE_PTR ph, CK_RV *rv);
static int shim_sess_close(CK_SESSION_HANDLE h, CK_RV *rv);
"""


def generate_entries(funcs: list[tuple[str, str, str]]) -> str:
    """The C text of shim_entries.inc (see the module docstring)."""
    lines = ["/* Generated by build_ffi.py from native/functions.h. Do not edit. */", "", LANE_PROTOTYPES,
             C_FIRST_PROTOTYPES]
    for name, params, args in funcs:
        if name in C_ONLY:
            continue
        lines.append(f"CK_RV py_{name}({params});")
        lines.append(
            f"SHIM_EXPORT CK_RV {name}({params})\n{{\n"
            f"    CK_RV rv;\n"
            f"    if (shim_depth != 0)\n        return shim_reentered(\"{name}\");\n"
            f"    shim_depth = 1;\n"
            f"    rv = shim_guard();\n"
            f"    if (rv == CKR_OK{' && !' + C_FIRST[name] if name in C_FIRST else ''}) {{\n"
            + lane_call(name, params, args,
                        f"        shim_enter();\n"
                        f"        shim_gate_enter();\n"
                        f"        rv = py_{name}({args});\n"
                        f"        shim_gate_exit();\n"
                        "        shim_leave();\n")
            + "    }\n"
            "    shim_exit();\n"
            "    return rv;\n}\n"
        )
    # Each table's C_GetInfo reports the version of that table (the one the caller chose:
    # CK_INFO.cryptokiVersion is the version of the interface in use, our rule); the
    # Python C_GetInfo reports 3.2, the default interface.
    tables = (("2_40", 2, 40, COUNT_2_40, "CK_FUNCTION_LIST"),
              ("3_0", 3, 0, COUNT_3_0, "CK_FUNCTION_LIST_3_0"),
              ("3_2", 3, 2, COUNT_3_2, "CK_FUNCTION_LIST_3_2"))
    for suffix, major, minor, count, struct in tables:
        getinfo = "C_GetInfo"
        if (major, minor) != (3, 2):
            getinfo = f"shim_GetInfo_{suffix}"
            lines.append(
                f"static CK_RV {getinfo}(CK_INFO_PTR pInfo)\n{{\n"
                "    CK_RV rv = C_GetInfo(pInfo);\n"
                "    if (rv == CKR_OK) {\n"
                f"        pInfo->cryptokiVersion.major = {major};\n"
                f"        pInfo->cryptokiVersion.minor = {minor};\n"
                "    }\n    return rv;\n}\n"
            )
        names = [n if n != "C_GetInfo" else getinfo for n, _, _ in funcs[:count]]
        lines.append(f"static {struct} shim_function_list_{suffix} = {{\n    {{{major}, {minor}}},")
        lines += [f"    {n}," for n in names]
        lines.append("};\n")
    lines.append(
        "static CK_INTERFACE shim_interfaces[] = {\n"
        '    {(CK_CHAR_PTR)"PKCS 11", &shim_function_list_3_2, 0},\n'
        '    {(CK_CHAR_PTR)"PKCS 11", &shim_function_list_3_0, 0},\n'
        '    {(CK_CHAR_PTR)"PKCS 11", &shim_function_list_2_40, 0},\n'
        "};\n"
    )
    return "\n".join(lines)


def embedding_api(funcs: list[tuple[str, str, str]]) -> str:
    decls = ["CK_RV shim_py_ready(void);", "void shim_py_reentered(const char *name, unsigned long times);",
             "CK_RV shim_py_lane_adopt(CK_SESSION_HANDLE handle);"]
    decls += [f"CK_RV py_{n}({p});" for n, p, _ in funcs if n not in C_ONLY]
    return "\n".join(decls)


INIT_CODE = r'''
import sys as _sys
from {module} import ffi as _ffi, lib as _lib

_ready = [False]


@_ffi.def_extern(error=0)
def shim_py_ready():
    """Answered first: tells the C guard whether the entries below were attached."""
    return 0x5AFE5AFE if _ready[0] else 0


# Our environment's site-packages, found by the C side (native/pyenv.c); [] in a Python host
# where none was found (its own sys.path then has to hold our package).
_SITE_DIRS = [_d for _d in [_ffi.string(_lib.shim_site_dir()).decode(_sys.getfilesystemencoding(),
                                                                         "surrogateescape")] if _d]


def _own_packages_first():
    """Our venv's site-packages (and what their .pth files add) go first on sys.path.

    In a Python host from another environment, site.addsitedir alone would append them
    after the host's own site-packages, and an older copy of a dependency there would win
    (issue 15 item 11: Debian's python3-cryptography 38, without Argon2id). Packages the
    host had already imported are checked by cryptoki_shim.abi.isolation."""
    import site
    before = list(_sys.path)
    for _dir in _SITE_DIRS:
        if _dir not in _sys.path:
            site.addsitedir(_dir)
    ours = [p for p in _SITE_DIRS if p in _sys.path]
    ours += [p for p in _sys.path if p not in before and p not in ours]
    _sys.path[:] = ours + [p for p in _sys.path if p not in ours]


def _attach():
    _own_packages_first()
    from cryptoki_shim.abi import install
    install(_ffi, _lib, {names!r}, _SITE_DIRS)


try:
    _attach()
    _ready[0] = True
except BaseException:  # the C guard answers CKR_GENERAL_ERROR; say why in our log only
    import os as _os
    import traceback as _tb
    _path = _os.environ.get("CRYPTOKI_SHIM_LOG")
    if _path:
        try:
            with open(_path, "a") as _f:
                _f.write("cryptoki-shim: Python side failed to start\n" + _tb.format_exc())
        except OSError:
            pass
'''


#: Directories the dynamic linker searches anyway: no RUNPATH for them (Debian policy 10.2).
SYSTEM_LIBDIRS = ("/lib", "/usr/lib", f"/usr/lib/{sysconfig.get_config_var('MULTIARCH')}",
                  f"/lib/{sysconfig.get_config_var('MULTIARCH')}")


def rpath(libdir: str) -> list[str]:
    """``-rpath`` to libpython's directory, unless the linker finds it there anyway."""
    return [] if os.path.normpath(libdir) in SYSTEM_LIBDIRS else [f"-Wl,-rpath,{libdir}"]


def build(out_path: Path = LIBRARY, work: Path = BUILD) -> Path:
    """Compile the library into ``out_path``; generated sources and objects go under ``work``
    (setup.py gives its own build directory: a pip build never touches the tree's build/)."""
    work = work.resolve()
    gen = work / "gen"
    funcs = read_functions()
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "shim_entries.inc").write_text(generate_entries(funcs))
    version_script = gen / "exports.map"
    version_script.write_text("{\n  global:\n    C_*;\n  local:\n    *;\n};\n")

    ffi = cffi.FFI()
    ffi.cdef((NATIVE / "cdef.h").read_text())
    ffi.cdef(SHIM_CDEF)
    for helper in PY_CALLABLE:
        ffi.cdef((NATIVE / f"{helper}.h").read_text())
    ffi.embedding_api(embedding_api(funcs))
    names = [n for n, _, _ in funcs if n not in C_ONLY]
    ffi.embedding_init_code(INIT_CODE.format(module=MODULE_NAME, names=names))

    # The system interpreter a site-directory environment is started as (native/pyenv.c).
    base_python = os.path.join(sysconfig.get_config_var("BINDIR"), f"python{sysconfig.get_python_version()}")
    libdir = sysconfig.get_config_var("LIBDIR")
    ldlibrary = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if not ldlibrary or not ldlibrary.endswith((".so", ".so.1.0")) and ".so" not in ldlibrary:
        raise SystemExit(f"this Python has no shared libpython ({ldlibrary}); use Debian's python3")
    py_version = f"{sys.version_info.major}.{sys.version_info.minor}"

    tmp = work / "cffi"
    tmp.mkdir(parents=True, exist_ok=True)

    def cstr(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    ffi.set_source(
        MODULE_NAME,
        '#include "shim.c"\n' + "".join(f'#include "{helper}.c"\n' for helper in PY_CALLABLE),
        include_dirs=[str(NATIVE), str(gen)],
        define_macros=[
            ("SHIM_BASE_PYTHON", cstr(base_python)),
            ("SHIM_LIBPYTHON", cstr(ldlibrary)),
            ("SHIM_PY_VERSION", cstr(py_version)),
        ],
        # the debug information names sources relative to the tree, not where it was built
        extra_compile_args=["-fvisibility=hidden", "-O2", "-Wall", "-Wno-unused-function",
                            f"-ffile-prefix-map={ROOT}=.", f"-ffile-prefix-map={tmp}=build/cffi"],
        extra_link_args=[
            *rpath(libdir),
            "-Wl,-z,nodelete",
            "-Wl,--no-undefined",
            f"-Wl,--version-script={version_script}",
        ],
        libraries=["dl", "pthread", *HELPER_LIBRARIES],
    )
    out = ffi.compile(tmpdir=str(tmp), target="libcryptoki_shim.*", verbose=bool(os.environ.get("V")))
    # A new inode, never an in-place rewrite: processes that have the old library mapped
    # (a client, a benchmark, a test) would crash on the changed pages.
    staging = out_path.with_name(out_path.name + ".new")
    shutil.copy2(out, staging)
    os.replace(staging, out_path)
    return out_path


if __name__ == "__main__":
    sys.stdout.write(f"{build()}\n")
