"""Entries of the object and crypto modules are attached on first use (issue #9, cold start).

Each check runs in a fresh Python process that loads the built library (the lazy state is
per process): C_Initialize and the slot queries must not import the store, the mechanisms
or pyca/cryptography, and the first call of a lazily attached entry must answer exactly
what it would have answered had everything been imported up front, from any thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cryptoki_shim import spec

TESTS = Path(__file__).resolve().parent

PRELUDE = """
import json, sys, threading
sys.path.insert(0, {tests!r})
from p11 import P11, ffi
from cryptoki_shim import spec
lib = P11({lib!r})
out = {{}}
"""


def run(lib_path: Path, body: str) -> dict:
    code = PRELUDE.format(tests=str(TESTS), lib=str(lib_path)) + body + "\nprint(json.dumps(out))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: ``cryptography`` itself is imported by the first call, on purpose: its extension (which
#: starts the wheel's OpenSSL) must start under the neutral OpenSSL environment, not later
#: under the host's (issue 25, cryptoki_shim.abi.isolation; ~3 ms). Its primitives are not.
HEAVY = ("cryptography.hazmat.primitives", "sqlalchemy", "cryptoki_shim.abi.crypto", "cryptoki_shim.abi.objects",
         "cryptoki_shim.core.session", "cryptoki_shim.store", "cryptoki_shim.mechanisms.registry")


def test_initialize_and_slot_queries_import_nothing_heavy(lib_path: Path, shim_conf: Path) -> None:
    out = run(lib_path, f"""
lib.initialize()
lib.slots()
out["loaded"] = sorted(m for m in {HEAVY!r} if m in sys.modules)
""")
    assert out["loaded"] == []


def test_lazy_entry_before_initialize_answers_not_initialized(lib_path: Path, shim_conf: Path) -> None:
    out = run(lib_path, """
out["find"] = lib.call("C_FindObjectsInit", 1, ffi.NULL, 0)
out["sign"] = lib.call("C_SignInit", 1, ffi.NULL, 0)
""")
    assert out == {"find": int(spec.CKR_CRYPTOKI_NOT_INITIALIZED), "sign": int(spec.CKR_CRYPTOKI_NOT_INITIALIZED)}


def test_first_calls_from_many_threads_answer_like_later_calls(lib_path: Path, shim_conf: Path) -> None:
    out = run(lib_path, """
lib.initialize()
barrier = threading.Barrier(8)
results = []
def worker(i):
    mech = ffi.new("CK_MECHANISM *", {"mechanism": spec.CKM_SHA256})
    barrier.wait()
    name = ("C_FindObjectsInit", "C_DigestInit", "C_GenerateRandom", "C_SignInit")[i % 4]
    args = {"C_FindObjectsInit": (999, ffi.NULL, 0), "C_DigestInit": (999, mech),
            "C_GenerateRandom": (999, ffi.new("CK_BYTE[4]"), 4), "C_SignInit": (999, mech, 1)}[name]
    results.append(lib.call(name, *args))
threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
out["first"] = sorted(results)
out["again"] = lib.call("C_FindObjectsInit", 999, ffi.NULL, 0)
out["loaded"] = "cryptoki_shim.abi.crypto" in sys.modules and "cryptoki_shim.abi.objects" in sys.modules
""")
    assert out["first"] == [int(spec.CKR_SESSION_HANDLE_INVALID)] * 8
    assert out["again"] == int(spec.CKR_SESSION_HANDLE_INVALID)
    assert out["loaded"] is True


@pytest.mark.parametrize("first", ["C_OpenSession", "C_FindObjectsInit"])
def test_a_session_works_whichever_entry_comes_first(lib_path: Path, shim_conf: Path, first: str) -> None:
    out = run(lib_path, f"""
lib.initialize()
lib.init_token(0, b"12345678", "test")
if {first!r} == "C_FindObjectsInit":
    out["pre"] = lib.call("C_FindObjectsInit", 12345, ffi.NULL, 0)
h = lib.open(0)
out["find"] = lib.call("C_FindObjectsInit", h, ffi.NULL, 0)
out["final"] = lib.call("C_FindObjectsFinal", h)
out["close"] = lib.call("C_CloseSession", h)
""")
    assert out["find"] == out["final"] == out["close"] == 0
    assert out.get("pre", int(spec.CKR_SESSION_HANDLE_INVALID)) == int(spec.CKR_SESSION_HANDLE_INVALID)


def test_first_signature_on_a_sqlite_store_never_imports_sqlalchemy(lib_path: Path, shim_conf: Path) -> None:
    """Issue 25 item 7: a process that opens an existing SQLite store (the fast path, the
    default), logs in, finds a key and signs with it never imports SQLAlchemy (~130 ms of
    such a process). The token is made in another process: C_InitToken is a Core write."""
    run(lib_path, """
from p11 import SO_PIN, USER_PIN
lib.initialize()
lib.init_token(0, SO_PIN, "lazy")
s = lib.open(0)
lib.login(s, SO_PIN, user=spec.CKU_SO)
lib.init_pin(s, USER_PIN)
lib.logout(s)
lib.login(s, USER_PIN)
p256 = bytes.fromhex("06082a8648ce3d030107")
lib.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: p256},
                      {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_LABEL: b"k"})
lib.finalize()
""")
    out = run(lib_path, """
from p11 import USER_PIN
lib.initialize()
s = lib.open(0)
lib.login(s, USER_PIN)
[key] = lib.find(s, {spec.CKA_LABEL: b"k", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY})
out["sig"] = len(lib.sign(s, spec.CKM_ECDSA, key, bytes(32)))
out["sqlalchemy"] = sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")
lib.finalize()
""")
    assert out == {"sig": 64, "sqlalchemy": []}
