"""Concurrent first use of the mechanism registry, through the real library (issue 16 item 1).

The registry imports the mechanism families on first use. It used to mark itself loaded
*before* importing them, so threads whose first C_*Init ran while another thread was still
importing found an empty registry and answered CKR_MECHANISM_INVALID (8 threads making
their first C_DigestInit(CKM_SHA256): 6 failing runs of 11, up to 7 of 8 calls). Loading is
now one atomic step under a lock, complete before any lookup answers.

Each run is a fresh process (the registry is per process): C_Initialize, a session per
thread, the login and the key search (none of which loads the registry: the worker checks),
then 8 threads released together make their first call of one entry family — digest, sign,
encrypt, derive, key generation — and every call must answer CKR_OK. The families are
imported lazily on purpose (cold start, docs/performance.md), so the window is real. Each
run uses a mechanism whose family module is not imported yet (the worker checks), so the
first call of the process must load the registry. Checked against the old registry when
this test was written: sign, encrypt, derive and key generation failed in their first run
(1 or 2 calls of 8 CKR_OK). The digest run passed there: the library imports ``digest.py``
at start-up, which registered the digest entries before any lookup; it stays as the
guard of the digest entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from p11 import LIB, ROOT, write_config

FAMILIES = ("digest", "sign", "encrypt", "derive", "keygen")
THREADS = 8
#: fresh processes per family; the old registry failed most runs of every family
RUNS = int(os.environ.get("REGISTRY_RACE_RUNS", "4"))

WORKER = r'''
import sys, threading
sys.path.insert(0, sys.argv[3])
from p11 import P11, Template, ffi, USER_PIN
from cryptoki_shim import spec as S

family, threads = sys.argv[1], int(sys.argv[2])
p11 = P11()
if family == "setup":
    p11.initialize()
    p11.init_token(0, b"12345678", "race")
    s = p11.open(0)
    p11.login(s, b"12345678", user=0)
    p11.init_pin(s, USER_PIN)
    p11.logout(s)
    p11.login(s, USER_PIN)
    common = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_TOKEN: True, S.CKA_SENSITIVE: False, S.CKA_EXTRACTABLE: True}
    p11.create(s, {**common, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_LABEL: b"mac", S.CKA_SIGN: True,
                   S.CKA_DERIVE: True, S.CKA_VALUE: bytes(range(32))})
    p11.generate_key_pair(s, S.CKM_RSA_PKCS_KEY_PAIR_GEN,
                          {S.CKA_TOKEN: True, S.CKA_LABEL: b"rsa", S.CKA_ENCRYPT: True, S.CKA_MODULUS_BITS: 2048},
                          {S.CKA_TOKEN: True, S.CKA_LABEL: b"rsa-private", S.CKA_DECRYPT: True})
    p11.finalize()
    sys.exit(0)

p11.initialize()
sessions = [p11.open(0) for _ in range(threads)]
if family != "digest":  # a digest needs no login: the host of the original report made none
    p11.login(sessions[0], USER_PIN)
    mac = p11.find(sessions[0], {S.CKA_LABEL: b"mac"})[0]
    rsa = p11.find(sessions[0], {S.CKA_LABEL: b"rsa"})[0]
# the family module of the mechanism each run uses registers its entries when imported: it
# must not be there yet, nor the registry loaded, or the threads would not be the first use
# (digest.py is imported by the library's start-up: its module is no marker)
module = {"digest": "families", "sign": "hmac", "encrypt": "rsa", "derive": "derive", "keygen": "ec"}[family]
early = [m for m in ("families", module) if f"cryptoki_shim.mechanisms.{m}" in sys.modules]
assert not early, f"imported before the threads started: {early}"

barrier = threading.Barrier(threads)
results = [None] * threads

def first_call(i):
    s = sessions[i]
    keep = []
    if family == "digest":
        m, keep = P11.mechanism(S.CKM_SHA256)
        barrier.wait()
        rv = p11.call("C_DigestInit", s, m)
    elif family == "sign":
        m, keep = P11.mechanism(S.CKM_SHA256_HMAC)
        barrier.wait()
        rv = p11.call("C_SignInit", s, m, mac)
    elif family == "encrypt":
        m, keep = P11.mechanism(S.CKM_RSA_PKCS)
        barrier.wait()
        rv = p11.call("C_EncryptInit", s, m, rsa)
    elif family == "derive":
        m, keep = P11.mechanism(S.CKM_EXTRACT_KEY_FROM_KEY, (3).to_bytes(ffi.sizeof("CK_ULONG"), sys.byteorder))
        t = Template({S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_GENERIC_SECRET, S.CKA_VALUE_LEN: 16})
        h = ffi.new("CK_OBJECT_HANDLE *")
        barrier.wait()
        rv = p11.call("C_DeriveKey", s, m, mac, t.array, t.count, h)
    else:  # keygen
        m, keep = P11.mechanism(S.CKM_EC_KEY_PAIR_GEN)
        pub = Template({S.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), S.CKA_VERIFY: True})
        priv = Template({S.CKA_SIGN: True})
        hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
        barrier.wait()
        rv = p11.call("C_GenerateKeyPair", s, m, pub.array, pub.count, priv.array, priv.count, hp, hq)
    results[i] = rv

workers = [threading.Thread(target=first_call, args=(i,)) for i in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(" ".join(S.ckr_name(rv) for rv in results))
p11.finalize()
'''


@pytest.fixture(scope="module")
def race_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not LIB.exists():
        pytest.fail(f"{LIB} is not built: run `make build`")
    directory = tmp_path_factory.mktemp("race")
    env = {**os.environ, "CRYPTOKI_SHIM_CONF": str(write_config(directory))}
    env.pop("CRYPTOKI_SHIM_LOG", None)
    script = directory / "worker.py"
    script.write_text(WORKER)
    env["RACE_WORKER"] = str(script)
    _run(env, "setup")
    return env


def _run(env: dict[str, str], family: str) -> str:
    done = subprocess.run([sys.executable, env["RACE_WORKER"], family, str(THREADS), str(Path(__file__).parent)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


@pytest.mark.parametrize("family", FAMILIES)
def test_concurrent_first_use_of_every_family(race_env: dict[str, str], family: str) -> None:
    """8 threads' first call of one family, in fresh processes: every call is CKR_OK."""
    for run in range(RUNS):
        answers = _run(race_env, family).split()
        assert answers == ["CKR_OK"] * THREADS, f"run {run}: {answers}"


def test_a_child_forked_while_the_registry_loads_gets_its_own_lock() -> None:
    """fork() while another thread holds the loading lock: the child's first lookup must not
    wait for a thread that does not exist in it (a Python host has no fork gate)."""
    from cryptoki_shim.mechanisms import registry

    with registry._load_lock:
        pid = os.fork()
        if pid == 0:  # the child: its lock is free
            os._exit(0 if registry._load_lock.acquire(timeout=5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
