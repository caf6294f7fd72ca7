"""Threads, processes and fork on one token.

* N threads x M sessions, mixed operations on a shared EC key and per-thread HMAC keys,
  objects created, found and destroyed: every signature verifies (pyca), nothing deadlocks
  (joins are bounded; a thread still running fails the test), no unexpected code.
* 2 and 4 processes on one token (``multi_worker.py``): concurrent creates, destroys,
  attribute changes and PIN changes; afterwards every surviving object is present exactly
  once, every destroyed one is gone, and no call answered anything but CKR_OK.
* fork in the middle of activity (preforking servers, pkcs11-tool --test-fork): the child
  gets CKR_CRYPTOKI_NOT_INITIALIZED until it calls C_Initialize, then works; the parent
  goes on unaffected.
"""

from __future__ import annotations

import faulthandler
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

sys.path.insert(0, str(Path(__file__).resolve().parent))

from p11 import (
    P11,
    USER_PIN,
    P11Error,
    ffi,
)

from cryptoki_shim import spec

P256 = bytes.fromhex("06082a8648ce3d030107")
THREADS, SESSIONS, OPS = 4, 2, 300
JOIN_TIMEOUT = 120.0


def reinit_os_locking(p11: P11) -> None:
    """Threads need C_Initialize with CKF_OS_LOCKING_OK (§5.4: NULL args promise one thread)."""
    p11.finalize()
    args = ffi.new("CK_C_INITIALIZE_ARGS *")
    args.flags = spec.CKF_OS_LOCKING_OK
    p11.initialize(args)


def ec_public(p11: P11, s: int, h: int) -> ec.EllipticCurvePublicKey:
    point = p11.get(s, h, spec.CKA_EC_POINT)
    assert point[0] == 0x04 and point[1] == len(point) - 2  # DER OCTET STRING (short form)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point[2:])


def verify_ecdsa(pub: ec.EllipticCurvePublicKey, data: bytes, sig: bytes) -> None:
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def ready(token: P11) -> P11:
    reinit_os_locking(token)
    return token


def test_threads_sessions_mixed_operations(ready: P11) -> None:
    p11 = ready
    s0 = p11.open(0)
    p11.login(s0, USER_PIN)
    pub_h, priv_h = p11.generate_key_pair(s0, spec.CKM_EC_KEY_PAIR_GEN,
                                          {spec.CKA_EC_PARAMS: P256, spec.CKA_VERIFY: True},
                                          {spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True})
    pub = ec_public(p11, s0, pub_h)
    errors: list[str] = []
    done = [0] * THREADS

    def worker(n: int) -> None:
        try:
            sessions = [p11.open(0) for _ in range(SESSIONS)]
            secret = hashlib.sha256(b"thread-%d" % n).digest()
            hk = p11.create(sessions[0], {spec.CKA_CLASS: spec.CKO_SECRET_KEY,
                                          spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET, spec.CKA_VALUE: secret,
                                          spec.CKA_SIGN: True, spec.CKA_VERIFY: True})
            for i in range(OPS):
                s = sessions[i % SESSIONS]
                data = b"t%d-op%d" % (n, i)
                kind = i % 3
                if kind == 0:
                    verify_ecdsa(pub, data, p11.sign(s, spec.CKM_ECDSA_SHA256, priv_h, data))
                elif kind == 1:
                    mac = p11.sign(s, spec.CKM_SHA256_HMAC, hk, data)
                    assert mac == hmac.new(secret, data, "sha256").digest(), "wrong HMAC"
                    p11.verify(s, spec.CKM_SHA256_HMAC, hk, data, mac)
                else:
                    label = b"thr-%d-%d" % (n, i)
                    h = p11.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_LABEL: label, spec.CKA_VALUE: data})
                    assert p11.find(s, {spec.CKA_LABEL: label}) == [h]
                    p11.destroy(s, h)
                    assert p11.find(s, {spec.CKA_LABEL: label}) == []
                done[n] += 1
            for s in sessions:
                p11.close(s)
        except (P11Error, AssertionError, InvalidSignature) as exc:
            errors.append(f"thread {n}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), f"deadlock: threads still running after {JOIN_TIMEOUT}s ({done})"
    assert not errors, errors
    assert done == [OPS] * THREADS


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_on_one_token(token: P11, shim_conf: Path, tmp_path: Path, processes: int) -> None:
    ops = 60
    worker = Path(__file__).resolve().parent / "multi_worker.py"
    outs = [tmp_path / f"w{n}.json" for n in range(processes)]
    procs = [subprocess.Popen([sys.executable, str(worker), str(n), str(ops), str(outs[n])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for n in range(processes)]
    for p in procs:
        try:
            _, err = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError("a worker process hung (deadlock between processes?)") from None
        assert p.returncode == 0, err.decode(errors="replace")[-2000:]
    results = [json.loads(o.read_text()) for o in outs]
    errors = [e for r in results for e in r["errors"]]
    assert not errors, errors  # in particular no CKR_GENERAL_ERROR
    alive = {lbl for r in results for lbl in r["created"]} - {lbl for r in results for lbl in r["destroyed"]}
    dead = {lbl for r in results for lbl in r["destroyed"]}
    assert len(alive) + len(dead) == processes * ops

    s = token.open(0)
    token.login(s, USER_PIN)  # the PIN changes left the PIN as it was
    labels: dict[bytes, int] = {}
    for h in token.find(s, {spec.CKA_TOKEN: True, spec.CKA_CLASS: spec.CKO_DATA}):
        label = token.get(s, h, spec.CKA_LABEL)
        labels[label] = labels.get(label, 0) + 1
        assert token.get(s, h, spec.CKA_VALUE) == label * 4
    assert {k.decode() for k in labels} == alive, "committed objects missing or destroyed ones back"
    assert set(labels.values()) == {1}, "an object present more than once"


def wait_bounded(pid: int, timeout: float) -> int:
    """waitpid with a deadline: a hung child is killed and reported, not waited on forever."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    trace = Path(f"/tmp/robust-fork-{pid}.txt")
    stacks = trace.read_text() if trace.exists() else ""
    raise AssertionError(f"forked child {pid} hung for {timeout}s:\n{stacks}")


def test_fork_in_the_middle_of_activity(token: P11) -> None:
    """A Python host forks while another thread is signing (preforking servers)."""
    reinit_os_locking(token)
    p11 = token
    s = p11.open(0)
    p11.login(s, USER_PIN)
    key = p11.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                         spec.CKA_TOKEN: True, spec.CKA_VALUE: b"k" * 32, spec.CKA_SIGN: True})
    want = hmac.new(b"k" * 32, b"data", "sha256").digest()
    stop = threading.Event()
    errors: list[str] = []
    signs = [0]

    def busy() -> None:
        s2 = p11.open(0)
        while not stop.is_set():
            try:
                assert p11.sign(s2, spec.CKM_SHA256_HMAC, key, b"data") == want
                signs[0] += 1
            except (P11Error, AssertionError) as exc:
                errors.append(repr(exc))
                return

    # Client-side cffi parses a C type string once, under its own locks; a fork while the
    # busy thread holds one of those would hang the child in *our test's* code (a host hazard
    # Python warns about for any lock). So every type the child uses is parsed now, and the
    # fork happens only once the busy thread is in its steady signing loop.
    for ctype in ("CK_INFO *", "CK_MECHANISM *", "CK_ULONG *", "CK_SESSION_HANDLE *", "CK_OBJECT_HANDLE *",
                  "CK_OBJECT_HANDLE[]", "CK_ATTRIBUTE[]", "CK_ATTRIBUTE *", "unsigned char[]"):
        ffi.typeof(ctype)
    t = threading.Thread(target=busy, daemon=True)
    t.start()
    while signs[0] < 20 and t.is_alive():
        time.sleep(0.001)
    children = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # child: only os._exit leaves it
            code = 1
            try:
                # a hang is reported with the child's Python stacks (read by wait_bounded)
                trace = open(f"/tmp/robust-fork-{os.getpid()}.txt", "w")  # noqa: SIM115
                faulthandler.dump_traceback_later(30, exit=True, file=trace)
                rv = p11.call("C_GetInfo", ffi.new("CK_INFO *"))
                if rv == spec.CKR_CRYPTOKI_NOT_INITIALIZED:
                    p11.initialize()
                    cs = p11.open(0)
                    p11.login(cs, USER_PIN)
                    hk = p11.find(cs, {spec.CKA_CLASS: spec.CKO_SECRET_KEY})
                    code = 0 if any(p11.sign(cs, spec.CKM_SHA256_HMAC, k, b"data") == want for k in hk) else 3
                    p11.finalize()
                else:
                    code = 2
            except BaseException:  # noqa: BLE001 -- the forked child must reach os._exit
                code = 4
            finally:
                os._exit(code)
        children.append(pid)
    statuses = [wait_bounded(pid, 60.0) for pid in children]
    stop.set()
    t.join(30)
    assert not t.is_alive(), "the parent's signing thread hung after fork"
    traces = []
    for pid in children:
        trace = Path(f"/tmp/robust-fork-{pid}.txt")
        traces.append(trace.read_text() if trace.exists() else "")
        trace.unlink(missing_ok=True)
    assert statuses == [0, 0, 0], f"{[os.waitstatus_to_exitcode(x) for x in statuses]}\n" + "\n".join(traces)
    assert not errors, errors
    assert p11.sign(s, spec.CKM_SHA256_HMAC, key, b"data") == want  # the parent is unaffected


def test_pkcs11_tool_test_fork(token: P11, shim_conf: Path, lib_path: Path) -> None:
    tool = "/usr/bin/pkcs11-tool"
    if not os.path.exists(tool):
        pytest.skip("pkcs11-tool not installed")
    r = subprocess.run([tool, "--module", str(lib_path), "--test-fork"], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "C_Initialize in forked child" in r.stdout + r.stderr


def _fork_while_reading(url: str, forks: int) -> list[int]:
    """Fork ``forks`` times while a thread runs SQLite statements; each child opens the store."""
    from cryptoki_shim.store import Store

    store = Store(url)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            store.data_version()
            store.token(0)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    codes = []
    try:
        for _ in range(forks):
            time.sleep(0.001)
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    faulthandler.dump_traceback_later(20, exit=True)
                    with Store(url) as child:
                        child.token(0)
                        child.data_version()
                    code = 0
                finally:
                    os._exit(code)
            codes.append(os.waitstatus_to_exitcode(wait_bounded(pid, 60.0)))
    finally:
        stop.set()
        t.join(10)
        store.close()
    return codes


def test_fork_while_another_thread_is_inside_sqlite(tmp_path: Path) -> None:
    """Regression: SQLite's mutexes copied locked into a forked child hung its next connect
    (the store now holds a fork guard around every SQLite call)."""
    codes = _fork_while_reading(f"sqlite:///{tmp_path / 'store.db'}", 60)
    assert codes == [0] * 60, codes
