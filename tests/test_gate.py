"""The GIL entry gate (native/shim.c, issue 22): only the gate holder of our threads goes on to
take the GIL, the C helpers and the pyca calls that release the GIL give the gate up for
their crypto, a thread holding the GIL never waits for it, and every wait for it is bounded.

Through the .so: results of the operations that hand the gate over (native ECDSA signing and
EC key generation; pyca's RSA, ECDSA verification and EdDSA with ``native.lend_gate``) from
threads, each checked by pyca; the gate's diagnostic counters show which path was taken; a C
host of many threads with one more that holds the gate while blocked in the default Argon2id
of C_Login; a Python host where one thread calls with the GIL held (ctypes.PyDLL, as
python-pkcs11 would) next to C threads (ctypes.CDLL releases the GIL) and cffi threads.
A hang is a failure (timeouts); nothing is timed.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from cryptoki_shim import spec as S
from cryptoki_shim.mechanisms import native
from p11 import LIB, P11, ffi, raises_ckr, write_config
from test_native_hosts import assert_ok, compile_host, host_env, run
from vectors_abi import CURVE_OIDS, rsa_import, strip_octet, usage

HOSTS = Path(__file__).resolve().parent / "native"
NATIVE = Path(__file__).resolve().parents[1] / "native"
WAITED, TIMED_OUT, STALE, GIL_HELD, LENT, PARKS = range(6)
THREADS, ROUNDS = 4, 20


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gate_hosts")


def _counters() -> tuple[int, ...]:
    counters = native.gate_counters()
    assert len(counters) == 6, "the library carries no GIL entry gate"
    return counters


def _ec_pair(p: P11, s: int) -> tuple[int, int, ec.EllipticCurvePublicKey]:
    params, curve = CURVE_OIDS["P-256"]
    hpub, hpriv = p.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params), usage("sign"))
    return hpub, hpriv, ec.EllipticCurvePublicKey.from_encoded_point(curve, strip_octet(p.get(s, hpub, S.CKA_EC_POINT)))


def _ed_pair(p: P11, s: int) -> tuple[int, int, ed25519.Ed25519PublicKey]:
    hpub, hpriv = p.generate_key_pair(s, S.CKM_EC_EDWARDS_KEY_PAIR_GEN,
                                      usage("verify", ec_params=bytes.fromhex("06032b6570")), usage("sign"))
    return hpub, hpriv, ed25519.Ed25519PublicKey.from_public_bytes(strip_octet(p.get(s, hpub, S.CKA_EC_POINT)))


def _der(sig: bytes) -> bytes:
    n = len(sig) // 2
    return utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))


# ---------------------------------------------------------------------- which path is taken


def test_each_hand_over_is_counted_one_thread(token: P11, user_session: int) -> None:
    """One thread, so the gate is always free: every native ECDSA signature, EC key
    generation, pyca RSA signature and verification, pyca ECDSA verification and Ed25519
    signature gives the gate up exactly once; the results verify with pyca."""
    s = user_session
    hpub, hpriv, pub = _ec_pair(token, s)  # one native generation
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rpub, rpriv = rsa_import(token, s, rsa_key)
    epub, epriv, ed_pub = _ed_pair(token, s)
    before = _counters()
    digest = os.urandom(32)
    sig = token.sign(s, S.CKM_ECDSA, hpriv, digest)                       # native helper
    token.verify(s, S.CKM_ECDSA, hpub, digest, sig)                        # pyca, lent
    rsig = token.sign(s, S.CKM_SHA256_RSA_PKCS, rpriv, b"gate")            # pyca, lent
    token.verify(s, S.CKM_SHA256_RSA_PKCS, rpub, b"gate", rsig)            # pyca, lent
    esig = token.sign(s, S.CKM_EDDSA, epriv, b"gate")                      # pyca, lent
    token.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=CURVE_OIDS["P-256"][0]),
                            usage("sign"))                                 # native helper
    after = _counters()
    assert after[LENT] - before[LENT] == 6, (before, after)
    pub.verify(_der(sig), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    rsa_key.public_key().verify(rsig, b"gate", padding.PKCS1v15(), hashes.SHA256())
    ed_pub.verify(esig, b"gate")
    _ = epub


def test_a_large_digest_update_hands_the_gate_over(token: P11, user_session: int) -> None:
    """C_DigestUpdate of a part of 2 KiB or more gives the gate up once for its hashing (as the
    one-shot C_Digest does); a small part keeps it. The digest is hashlib's."""
    s, big, small = user_session, os.urandom(64 * 1024), os.urandom(100)
    token.call("C_DigestInit", s, token.mechanism(S.CKM_SHA256)[0])
    before = _counters()
    token.call("C_DigestUpdate", s, big, len(big))
    middle = _counters()
    token.call("C_DigestUpdate", s, small, len(small))
    after = _counters()
    out, n = ffi.new("unsigned char[32]"), ffi.new("CK_ULONG *", 32)
    assert token.call("C_DigestFinal", s, out, n) == 0
    assert bytes(ffi.buffer(out, n[0])) == hashlib.sha256(big + small).digest()
    assert middle[LENT] - before[LENT] == 1, (before, middle)
    assert after[LENT] == middle[LENT], (middle, after)


def test_a_caller_holding_the_gil_skips_the_gate(token: P11, user_session: int) -> None:
    """ctypes.PyDLL keeps the GIL across the call (python-pkcs11 style): the entry must not
    wait for the gate (rule (a)); it is counted, and the call works."""
    py = ctypes.PyDLL(str(LIB))
    info = ctypes.create_string_buffer(ffi.sizeof("CK_SESSION_INFO"))
    py.C_GetSessionInfo.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    py.C_GetMechanismInfo.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    py.C_GetSessionInfo.restype = py.C_GetMechanismInfo.restype = ctypes.c_ulong
    minfo = (ctypes.c_ulong * 3)()
    before = _counters()
    # C_GetMechanismInfo always reaches Python (C_GetSessionInfo may be answered in C)
    assert py.C_GetMechanismInfo(0, S.CKM_SHA256, minfo) == S.CKR_OK
    assert py.C_GetMechanismInfo(0, 0x7FFFFFF0, minfo) == S.CKR_MECHANISM_INVALID
    after = _counters()
    assert after[GIL_HELD] - before[GIL_HELD] == 2
    assert py.C_GetSessionInfo(user_session, info) == S.CKR_OK
    assert py.C_GetSessionInfo(0xDEAD, info) == S.CKR_SESSION_HANDLE_INVALID
    state = ffi.cast("CK_SESSION_INFO *", ffi.from_buffer(info)).state
    assert state == token.session_info(user_session).state


RSA_HASHED = ((S.CKM_SHA1_RSA_PKCS, hashes.SHA1), (S.CKM_SHA224_RSA_PKCS, hashes.SHA224),
              (S.CKM_SHA256_RSA_PKCS, hashes.SHA256), (S.CKM_SHA384_RSA_PKCS, hashes.SHA384),
              (S.CKM_SHA512_RSA_PKCS, hashes.SHA512))


def test_native_rsa_signing_and_verification_are_pycas(token: P11, user_session: int) -> None:
    """RSA PKCS#1 v1.5 through the C helper: pyca's signature byte for byte for every SHA-1/2
    mechanism, verified by the helper, a corrupted one refused; PSS stays on pyca."""
    s = user_session
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    hpub, hpriv = rsa_import(token, s, key)
    signed, verified = native.rsa_signatures_made(), native.verifications_made()
    for mech, h in RSA_HASHED:
        msg = f"native {mech:#x}".encode()
        sig = token.sign(s, mech, hpriv, msg)
        assert sig == key.sign(msg, padding.PKCS1v15(), h())
        token.verify(s, mech, hpub, msg, sig)
        with raises_ckr(S.CKR_SIGNATURE_INVALID):
            token.verify(s, mech, hpub, msg, sig[:-1] + bytes([sig[-1] ^ 1]))
        with raises_ckr(S.CKR_SIGNATURE_INVALID):  # another hash's DigestInfo
            token.verify(s, mech, hpub, msg + b"!", sig)
    assert native.rsa_signatures_made() == signed + len(RSA_HASHED)
    assert native.verifications_made() == verified + 3 * len(RSA_HASHED)
    pss = token.sign(s, S.CKM_SHA256_RSA_PKCS_PSS, hpriv, b"pss", _pss_params())
    key.public_key().verify(pss, b"pss", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert native.rsa_signatures_made() == signed + len(RSA_HASHED)


def _pss_params() -> Any:
    params = ffi.new("CK_RSA_PKCS_PSS_PARAMS *")
    params.hashAlg, params.mgf, params.sLen = S.CKM_SHA256, S.CKG_MGF1_SHA256, 32
    return params


def test_native_ecdsa_verification_agrees_with_pyca(token: P11, user_session: int) -> None:
    """ECDSA verification through the C helper: the module's signatures verify there and with
    pyca, for the hashing mechanism and raw digests shorter and longer than the order;
    another key's signature, r = 0, s = n and a corrupted one are refused."""
    s = user_session
    hpub, hpriv, pub = _ec_pair(token, s)
    verified = native.verifications_made()
    private = ec.generate_private_key(ec.SECP256R1())  # another key: its signatures must fail
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    checks = 0
    for length in (20, 32, 48, 64):
        digest = os.urandom(length)
        sig = token.sign(s, S.CKM_ECDSA, hpriv, digest)
        token.verify(s, S.CKM_ECDSA, hpub, digest, sig)
        r, s_ = utils.decode_dss_signature(private.sign(digest, ec.ECDSA(hashes.SHA256())))
        for bad in (r.to_bytes(32, "big") + s_.to_bytes(32, "big"), bytes(32) + sig[32:],
                    sig[:32] + order.to_bytes(32, "big"), sig[:-1] + bytes([sig[-1] ^ 1])):
            with raises_ckr(S.CKR_SIGNATURE_INVALID):
                token.verify(s, S.CKM_ECDSA, hpub, digest, bad)
        checks += 5
    msg = b"hashing mechanism"
    sig = token.sign(s, S.CKM_ECDSA_SHA256, hpriv, msg)
    pub.verify(_der(sig), msg, ec.ECDSA(hashes.SHA256()))
    token.verify(s, S.CKM_ECDSA_SHA256, hpub, msg, sig)
    assert native.verifications_made() == verified + checks + 1


def test_native_ed25519_is_pycas(token: P11, user_session: int) -> None:
    """Ed25519 verification through the C helper (signing stays on pyca: see
    native.ed25519_pair): an imported key signs pyca's bytes (pure Ed25519 is deterministic),
    for the empty message too; the helper verifies them and refuses a corrupted signature and
    another message."""
    s = user_session
    key = ed25519.Ed25519PrivateKey.generate()
    params = bytes.fromhex("06032b6570")
    hpriv = token.create(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_EC_EDWARDS, S.CKA_TOKEN: False,
                             S.CKA_EC_PARAMS: params, S.CKA_VALUE: key.private_bytes_raw(), S.CKA_SIGN: True})
    hpub = token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_EC_EDWARDS, S.CKA_TOKEN: False,
                            S.CKA_EC_PARAMS: params, S.CKA_VERIFY: True,
                            S.CKA_EC_POINT: bytes([4, 32]) + key.public_key().public_bytes_raw()})
    before = native.ed25519_operations()
    for msg in (b"", b"gate", os.urandom(1000)):
        sig = token.sign(s, S.CKM_EDDSA, hpriv, msg)
        assert sig == key.sign(msg)
        token.verify(s, S.CKM_EDDSA, hpub, msg, sig)
        with raises_ckr(S.CKR_SIGNATURE_INVALID):
            token.verify(s, S.CKM_EDDSA, hpub, msg, sig[:-1] + bytes([sig[-1] ^ 1]))
        with raises_ckr(S.CKR_SIGNATURE_INVALID):
            token.verify(s, S.CKM_EDDSA, hpub, msg + b"!", sig)
    assert native.ed25519_operations() == before + 3  # the 3 valid signatures
    sign, verify = native.ed25519_pair(key, sign_too=True)  # the helper's own signing, kept
    assert sign is not None and verify is None and sign(b"gate") == key.sign(b"gate")


# ---------------------------------------------------------------------- threads, checked by pyca


def _threads(token: P11, work: Any) -> list[Any]:
    start = threading.Barrier(THREADS)
    results: list[list[Any]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        try:
            s = token.open(0)
            try:
                start.wait()
                results[i] = work(s, i)
            finally:
                token.close(s)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    assert not errors, errors
    return [r for rs in results for r in rs]


def test_lent_and_native_operations_from_threads_verify_with_pyca(token: P11, user_session: int) -> None:
    """Four threads mix every operation that gives the gate up with GIL-bound calls; each
    signature is checked by pyca, each verification of a good and of a bad signature by its
    answer, each key pair by its point."""
    s = user_session
    hpub, hpriv, pub = _ec_pair(token, s)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rpub, rpriv = rsa_import(token, s, rsa_key)
    epub, epriv, ed_pub = _ed_pair(token, s)
    before = _counters()

    def work(sess: int, i: int) -> list[tuple[str, bytes, bytes]]:
        out = []
        for r in range(ROUNDS):
            msg = f"thread {i} round {r}".encode()
            digest = hashlib.sha256(msg).digest()
            assert token.digest(sess, S.CKM_SHA256, msg) == digest
            sig = token.sign(sess, S.CKM_ECDSA, hpriv, digest)
            token.verify(sess, S.CKM_ECDSA, hpub, digest, sig)
            with pytest.raises(Exception):
                token.verify(sess, S.CKM_ECDSA, hpub, digest, sig[:-1] + bytes([sig[-1] ^ 1]))
            rsig = token.sign(sess, S.CKM_SHA256_RSA_PKCS, rpriv, msg)
            token.verify(sess, S.CKM_SHA256_RSA_PKCS, rpub, msg, rsig)
            esig = token.sign(sess, S.CKM_EDDSA, epriv, msg)
            token.verify(sess, S.CKM_EDDSA, epub, msg, esig)
            out += [("ecdsa", digest, sig), ("rsa", msg, rsig), ("ed25519", msg, esig)]
            if r % 5 == 0:
                kpub, kpriv, kpoint = _ec_pair(token, sess)
                ksig = token.sign(sess, S.CKM_ECDSA, kpriv, digest)
                kpoint.verify(_der(ksig), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
                token.destroy(sess, kpriv)
                token.destroy(sess, kpub)
        return out

    results = _threads(token, work)
    assert len(results) == 3 * THREADS * ROUNDS
    for kind, data, sig in results:
        if kind == "ecdsa":
            pub.verify(_der(sig), data, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        elif kind == "rsa":
            rsa_key.public_key().verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            ed_pub.verify(sig, data)
    after = _counters()
    # every signature and verification above gave the gate up, unless its thread had gone on
    # without the gate (a bound passed: counted as timed out or stale)
    handed = after[LENT] - before[LENT]
    bypassed = (after[TIMED_OUT] - before[TIMED_OUT]) + (after[STALE] - before[STALE])
    assert handed > 0 and handed + bypassed >= 6 * THREADS * ROUNDS, (before, after)


# ---------------------------------------------------------------------- hosts


def _two_slot_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "test"\n\n'
                                         '[[slots]]\nid = 1\nkdf_cost = "default"\n')


def test_c_host_threads_and_a_gate_holder_blocked_in_the_kdf(build_dir: Path, tmp_path: Path) -> None:
    """Six C threads of GIL-bound and gate-handing calls, results checked in C, while another
    thread logs in and out of a token whose PIN costs the default Argon2id: all finish."""
    host = compile_host(build_dir, "host_gate")
    res = run([str(host), str(LIB), "6", "40", "4"], host_env(_two_slot_config(tmp_path)), timeout=300)
    assert_ok(res)
    assert "threads=6 calls=40 slow=4" in res.stdout


PYTHON_HOST = r'''
import ctypes, hashlib, os, sys, threading
sys.path[:0] = [sys.argv[3]]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptoki_shim import spec as S
from cryptoki_shim.mechanisms import native
from p11 import P11, ffi
from vectors_abi import CURVE_OIDS, strip_octet, usage

lib_path, gate_lib = sys.argv[1], sys.argv[2]
p = P11(lib_path)
p.initialize()
p.init_token(0, b"12345678", "gate")
s = p.open(0)
p.login(s, b"12345678", user=0)
p.init_pin(s, b"1234")
p.logout(s)
p.login(s, b"1234")
params, curve = CURVE_OIDS["P-256"]
hpub, hpriv = p.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params), usage("sign"))
pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, strip_octet(p.get(s, hpub, S.CKA_EC_POINT)))
errors, results = [], []

def c_threads():  # ctypes.CDLL releases the GIL: three C threads call the module
    first = ctypes.create_string_buffer(256)
    n = ctypes.CDLL(gate_lib).gate_host_run(lib_path.encode(), 3, 30, first, 256)
    if n:
        errors.append(f"C threads: {n} failure(s), first {first.value!r}")

def gil_holder():  # ctypes.PyDLL keeps the GIL across each call
    py = ctypes.PyDLL(lib_path)
    py.C_GetSessionInfo.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    py.C_GetMechanismInfo.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.c_void_p]
    py.C_DigestInit.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    py.C_Digest.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p]
    for f in (py.C_GetSessionInfo, py.C_GetMechanismInfo, py.C_DigestInit, py.C_Digest):
        f.restype = ctypes.c_ulong
    sess = p.open(0)
    info = ctypes.create_string_buffer(ffi.sizeof("CK_SESSION_INFO"))
    mech = (ctypes.c_ulong * 3)(S.CKM_SHA256, 0, 0)
    for i in range(300):
        data = b"held %d" % i
        out, n = ctypes.create_string_buffer(32), ctypes.c_ulong(32)
        minfo = (ctypes.c_ulong * 3)()
        if py.C_GetSessionInfo(sess, info) or py.C_GetMechanismInfo(0, S.CKM_SHA256, minfo) or \
                py.C_DigestInit(sess, mech) or \
                py.C_Digest(sess, data, len(data), out, ctypes.byref(n)):
            errors.append("a call with the GIL held failed"); return
        if out.raw != hashlib.sha256(data).digest():
            errors.append("wrong digest with the GIL held"); return
    p.close(sess)

def cffi_signer(i):  # cffi's ABI calls release the GIL
    sess = p.open(0)
    for r in range(40):
        digest = hashlib.sha256(b"%d %d" % (i, r)).digest()
        results.append((digest, p.sign(sess, S.CKM_ECDSA, hpriv, digest)))
    p.close(sess)

before = native.gate_counters()
threads = [threading.Thread(target=c_threads), threading.Thread(target=gil_holder),
           threading.Thread(target=cffi_signer, args=(0,)), threading.Thread(target=cffi_signer, args=(1,))]
for t in threads: t.start()
for t in threads: t.join(240)
if any(t.is_alive() for t in threads):
    print("FAIL a thread did not finish", flush=True); os._exit(1)
if errors:
    print("FAIL", errors[0], flush=True); os._exit(1)
for digest, sig in results:
    r, s_ = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    pub.verify(utils.encode_dss_signature(r, s_), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
after = native.gate_counters()
# C_GetMechanismInfo at least (C_GetSessionInfo and C_Digest* may be answered in C before Python)
if len(results) != 80 or after[3] - before[3] < 300:
    print("FAIL", len(results), before, after, flush=True); os._exit(1)
print("OK", before, after, flush=True)
os._exit(0)  # C_Finalize is not the point here
'''


def test_python_host_gil_holder_with_c_and_cffi_threads(build_dir: Path, tmp_path: Path) -> None:
    """A Python host: a thread calling with the GIL held (never waits for the gate) next to
    three C threads and two cffi threads (which take the gate): no deadlock, every result right."""
    gate_lib = build_dir / "gate_lib.so"
    if not gate_lib.exists():
        cmd = ["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-shared", "-fPIC", "-DGATE_LIBRARY",
               f"-I{NATIVE}", f"-I{HOSTS}", "-o", str(gate_lib), str(HOSTS / "host_gate.c"), "-ldl", "-lpthread"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    script = tmp_path / "python_host.py"
    script.write_text(PYTHON_HOST)
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(write_config(tmp_path)))
    res = run([sys.executable, str(script), str(LIB), str(gate_lib), str(Path(__file__).resolve().parent)], env,
              timeout=300)
    assert res.returncode == 0 and res.stdout.startswith("OK"), (res.stdout, res.stderr)
