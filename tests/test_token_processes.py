"""Persistence and several processes on one SQLite store, through the built library (named
so as not to clash with tests/store/test_store_processes.py, the store layer's own).

Another process is a real one: ``Worker`` runs a Python child that loads the library with
``tests/p11.py`` (same config, same store) and executes the statements the test sends it, one
line at a time, so the two processes' calls interleave in a known order. Neither re-initializes
to see the other's changes (the store's data_version check must do it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cryptoki_shim import spec
from p11 import raises_ckr

SO_PIN, USER_PIN = b"12345678", b"1234"  # as the conftest fixture `token` sets them

TESTS = Path(__file__).resolve().parent
CKU_SO = int(spec.CKU_SO)

WORKER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from p11 import P11, P11Error, ffi
from cryptoki_shim import spec
p = P11()
p.initialize()
ns = {"p": p, "spec": spec, "ffi": ffi}
print(json.dumps({"ok": None}), flush=True)
for line in sys.stdin:
    ns["result"] = None
    try:
        exec(line, ns)
        out = {"ok": ns["result"]}
    except P11Error as exc:
        out = {"rv": exc.rv}
    print(json.dumps(out), flush=True)
"""


class Worker:
    """A child process serving the same token; ``run(stmt)`` executes one line there."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(TESTS)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        assert self._reply() == {"ok": None}

    def _reply(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        assert line, "worker died"
        return json.loads(line)

    def run(self, stmt: str) -> Any:
        self.proc.stdin.write(stmt.replace("\n", "; ") + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        if "rv" in reply:
            from p11 import P11Error
            raise P11Error(reply["rv"], stmt)
        return reply["ok"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


@pytest.fixture
def worker(token):
    w = Worker()
    yield w
    w.close()


def data(label: bytes, **extra: Any) -> dict[int, Any]:
    attrs = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: label, spec.CKA_VALUE: label}
    attrs.update({getattr(spec, k): v for k, v in extra.items()})
    return attrs


# ----------------------------------------------------------------------------- persistence


def test_objects_survive_finalize(token, user_session):
    s = user_session
    token.create(s, data(b"kept-private", CKA_PRIVATE=True))
    token.create(s, data(b"kept-public", CKA_PRIVATE=False))
    key = {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_TOKEN: True,
           spec.CKA_VALUE: b"\x07" * 16, spec.CKA_EXTRACTABLE: True, spec.CKA_LABEL: b"kept-key"}
    token.create(s, key)
    token.create(s, data(b"session-only", CKA_TOKEN=False))
    token.finalize()
    token.initialize()
    s = token.open(0)
    assert [token.get(s, h, spec.CKA_LABEL) for h in token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})] == [b"kept-public"]
    token.login(s, USER_PIN)
    labels = sorted(token.get(s, h, spec.CKA_LABEL) for h in token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}))
    assert labels == [b"kept-private", b"kept-public"]
    (h,) = token.find(s, {spec.CKA_LABEL: b"kept-key"})
    assert token.get(s, h, spec.CKA_VALUE) == b"\x07" * 16
    ct = token.encrypt(s, spec.CKM_AES_ECB, h, bytes(16))
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    enc = Cipher(algorithms.AES(b"\x07" * 16), modes.ECB()).encryptor()
    assert ct == enc.update(bytes(16)) + enc.finalize()


def test_token_label_and_pin_persist(token, user_session):
    token.set_pin(user_session, USER_PIN, b"5555")
    token.close(user_session)
    token.finalize()
    token.initialize()
    info = token.token_info(0)
    assert bytes(info.label).rstrip() == b"test" and info.flags & spec.CKF_USER_PIN_INITIALIZED
    s = token.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, USER_PIN)
    token.login(s, b"5555")


# ----------------------------------------------------------------------------- two processes


def test_other_process_sees_creates_and_destroys(token, worker):
    s = token.open(0)
    token.login(s, USER_PIN)
    worker.run("s = p.open(0); p.login(s, b'1234')")
    h1 = token.create(s, data(b"from-parent"))
    n = worker.run("result = p.find(s, {spec.CKA_LABEL: b'from-parent'})")
    assert len(n) == 1
    wh = n[0]
    assert worker.run(f"result = p.get(s, {wh}, spec.CKA_VALUE).decode()") == "from-parent"
    worker.run("result = p.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b'from-child'})")
    (h2,) = token.find(s, {spec.CKA_LABEL: b"from-child"})
    assert token.get(s, h1, spec.CKA_VALUE) == b"from-parent"  # our handle survived the reload
    worker.run(f"p.destroy(s, {wh})")
    assert token.find(s, {spec.CKA_LABEL: b"from-parent"}) == []
    with raises_ckr(spec.CKR_OBJECT_HANDLE_INVALID):
        token.get(s, h1, spec.CKA_LABEL)
    token.set(s, h2, {spec.CKA_LABEL: b"renamed-by-parent"})
    assert worker.run("result = len(p.find(s, {spec.CKA_LABEL: b'renamed-by-parent'}))") == 1
    token.destroy(s, h2)
    assert worker.run("result = p.find(s, {spec.CKA_CLASS: spec.CKO_DATA})") == []


def test_other_process_sees_pin_change(token, worker):
    s = token.open(0)
    worker.run("s = p.open(0)")
    token.set_pin(s, USER_PIN, b"8642")
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        worker.run("p.login(s, b'1234')")
    worker.run("p.login(s, b'8642')")
    assert worker.run("result = p.session_info(s).state") == spec.CKS_RW_USER_FUNCTIONS
    # the failure the worker caused is shared too; the success reset it
    assert not token.token_info(0).flags & spec.CKF_USER_PIN_COUNT_LOW


def test_failure_counter_shared_between_processes(token, worker, shim_conf):
    shim_conf.write_text(shim_conf.read_text() + "\nmax_pin_failures = 3\n")  # into the [[slots]] table
    token.finalize()
    token.initialize()
    worker.run("p.finalize(); p.initialize(); s = p.open(0)")
    s = token.open(0)
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        token.login(s, b"0000")
    with raises_ckr(spec.CKR_PIN_INCORRECT):
        worker.run("p.login(s, b'0000')")
    assert worker.run("result = p.token_info(0).flags") & spec.CKF_USER_PIN_FINAL_TRY
    with raises_ckr(spec.CKR_PIN_LOCKED):
        token.login(s, b"0000")
    with raises_ckr(spec.CKR_PIN_LOCKED):
        worker.run("p.login(s, b'1234')")
    assert token.token_info(0).flags & spec.CKF_USER_PIN_LOCKED
    # the SO in the worker unlocks; we can log in without re-initializing
    worker.run("p.login(s, b'12345678', 0); p.init_pin(s, b'1234'); p.logout(s)")
    assert not token.token_info(0).flags & spec.CKF_USER_PIN_LOCKED
    token.login(s, USER_PIN)


def test_other_process_reinit_token(token, worker):
    s = token.open(0)
    token.login(s, USER_PIN)
    token.create(s, data(b"doomed", CKA_PRIVATE=False))
    token.close(s)
    worker.run("p.init_token(0, b'12345678', 'fresh')")
    info = token.token_info(0)
    assert bytes(info.label).rstrip() == b"fresh"
    assert not info.flags & spec.CKF_USER_PIN_INITIALIZED
    s = token.open(0)
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}) == []
    with raises_ckr(spec.CKR_USER_PIN_NOT_INITIALIZED):
        token.login(s, USER_PIN)


CREATOR = r"""
import sys
sys.path.insert(0, sys.argv[1])
from p11 import P11, P11Error
from cryptoki_shim import spec
p = P11()
p.initialize()
s = p.open(0)
p.login(s, b"1234")
tag = sys.argv[2].encode()
errors = {}
for i in range(int(sys.argv[3])):
    try:
        p.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: tag,
                     spec.CKA_VALUE: b"%d" % i})
    except P11Error as exc:
        errors[exc.rv] = errors.get(exc.rv, 0) + 1
print(errors)
p.finalize()
"""


def test_two_processes_concurrent_creates(token):
    n = 500
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(TESTS), tag, str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert out.strip() == "{}", out
    s = token.open(0)
    token.login(s, USER_PIN)
    for tag in (b"a", b"b"):
        found = token.find(s, {spec.CKA_LABEL: tag}, batch=256)
        assert len(found) == n
        values = sorted(int(token.get(s, h, spec.CKA_VALUE)) for h in found)
        assert values == list(range(n))
    assert len(token.find(s, {spec.CKA_CLASS: spec.CKO_DATA}, batch=256)) == 2 * n
