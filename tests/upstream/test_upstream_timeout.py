"""An upstream module that hangs (issue 21 item 4): call_timeout and the circuit breaker.

The upstream is ``tests/native/hanging_upstream.c``, built here: while a file exists, its
C_GetMechanismList never returns. Through our ``.so`` (a child process driving tests/p11.py,
so a thread stuck in the fake module cannot outlive the test):

* the first calls answer CKR_DEVICE_ERROR after ``call_timeout`` instead of hanging;
* after ``breaker_failures`` of them the breaker is open: the next call fails at once;
* a software slot of the same module keeps answering meanwhile;
* once the upstream answers again, the first call after ``breaker_seconds`` goes through
  and closes the breaker;
* the log says each of these at warning level, with the key to change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "native" / "hanging_upstream.c"

SCRIPT = r"""
import json, os, sys, time
sys.path.insert(0, os.environ["TESTS_DIR"])
from p11 import P11, ffi
p = P11(); p.initialize()
n = ffi.new("CK_ULONG *")

def mechanisms(slot):
    t0 = time.monotonic()
    rv = p.call("C_GetMechanismList", slot, ffi.NULL, n)
    return {"rv": rv, "seconds": round(time.monotonic() - t0, 3), "count": int(n[0])}

out = {"hanging": [mechanisms(0) for _ in range(3)], "software": mechanisms(1)}
os.unlink(os.environ["HANGING_UPSTREAM_FILE"])   # the HSM answers again
out["early"] = mechanisms(0)                      # breaker still open: fails at once
time.sleep(2.2)                                   # breaker_seconds
out["after"] = [mechanisms(0), mechanisms(0)]
print(json.dumps(out), flush=True)   # os._exit does not flush a piped stdout
os._exit(0)   # not C_Finalize: workers stuck in the fake module may still be finishing
"""


@pytest.fixture(scope="module")
def hanging_so(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the fake upstream module")
    out = tmp_path_factory.mktemp("hang") / "libhanging.so"
    res = subprocess.run(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC",
                          f"-I{ROOT / 'native'}", "-o", str(out), str(SOURCE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return out


def test_a_hanging_upstream_times_out_and_opens_the_breaker(hanging_so, tmp_path):
    hang = tmp_path / "hang-now"
    hang.touch()
    log = tmp_path / "module.log"
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
                    f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "upstream"\n'
                    f'[slots.upstream]\nlibrary = "{hanging_so}"\ntoken_label = "hanging"\npin_env = "UP_PIN"\n'
                    'call_timeout = 1\nbreaker_failures = 2\nbreaker_seconds = 2\n'
                    '[[slots]]\nid = 1\nkdf_cost = "test"\n')
    env = {**os.environ, "CRYPTOKI_SHIM_CONF": str(conf), "CRYPTOKI_SHIM_LOG": str(log), "UP_PIN": "1234",
           "HANGING_UPSTREAM_FILE": str(hang), "TESTS_DIR": str(ROOT / "tests")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    first, second, third = out["hanging"]
    device_error = 0x30
    for timed_out in (first, second):  # call_timeout, not forever
        assert timed_out["rv"] == device_error and 0.9 <= timed_out["seconds"] < 3, out
    assert third["rv"] == device_error and third["seconds"] < 0.3, out          # breaker open: at once
    assert out["software"]["rv"] == 0 and out["software"]["count"] > 50, out      # other slots unaffected
    assert out["early"]["rv"] == device_error and out["early"]["seconds"] < 0.3, out
    for answered in out["after"]:  # the trial call went through and closed the breaker
        assert answered["rv"] == 0 and answered["count"] > 0 and answered["seconds"] < 1, out
    text = log.read_text()
    assert "WARNING" in text and "no answer within 1 s (call_timeout)" in text, text
    assert "circuit breaker open for 2 s after 2 consecutive failures" in text
    assert "answering again; circuit breaker closed" in text


def test_call_timeout_and_breaker_are_documented_keys():
    from cryptoki_shim import config

    for key in ("call_timeout", "breaker_failures", "breaker_seconds", "quirks"):
        assert key in config.UPSTREAM_KEYS
    cfg = config.parse('[[slots]]\nid = 0\n[slots.upstream]\nlibrary = "/x.so"\n')
    assert cfg.slots[0].upstream["call_timeout"] == 30 and cfg.slots[0].upstream["breaker_failures"] == 3
