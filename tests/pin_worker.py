"""Child programs for tests/test_pin_security.py: PIN paths under threads and processes.

Run as ``python pin_worker.py MODE ARGS...`` with ``CRYPTOKI_SHIM_CONF`` set; prints one JSON
object on stdout. Every mode drives the built library through ``tests/p11.py`` (the C ABI),
and the test runs it under a timeout in its own process group: a hang (issue 15 item 1, OpenSSL's
multi-lane Argon2id deadlocking when two threads derive at once) fails the test instead of
hanging the suite.

Modes:
  setup                  initialize slot 0 (SO + user PIN) and, if configured, slot 1
  threads N              every PIN path with N threads at once on one token (see `threads`)
  logins N [wrong|right] N threads C_Login at once (half a wrong PIN, half the right one; or all one)
  guess N PIN            fork N processes that all C_Login(PIN) at the same moment; the CKRs
  locked-init           C_InitToken with the right SO PIN (after the SO PIN was locked)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from p11 import P11, P11Error, SO_PIN, USER_PIN, ffi  # noqa: E402

from cryptoki_shim import spec  # noqa: E402

WRONG_PIN = b"0000"
P256_OID_DER = bytes.fromhex("06082a8648ce3d030107")
CKU_SO, CKU_USER, CKU_CONTEXT_SPECIFIC = int(spec.CKU_SO), int(spec.CKU_USER), int(spec.CKU_CONTEXT_SPECIFIC)


def rv_of(fn: Callable[[], Any]) -> int:
    try:
        fn()
    except P11Error as exc:
        return exc.rv
    return int(spec.CKR_OK)


def together(jobs: list[Callable[[], Any]], stagger: dict[int, float] | None = None) -> list[Any]:
    """Run the jobs in threads released by one barrier; their results (a CKR for P11Error)."""
    barrier = threading.Barrier(len(jobs))
    out: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        if stagger and i in stagger:
            time.sleep(stagger[i])
        try:
            out[i] = jobs[i]()
        except P11Error as exc:
            out[i] = exc.rv

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def setup(p: P11) -> dict[str, Any]:
    for slot in p.slots():
        p.init_token(slot, SO_PIN, f"slot{slot}")
        s = p.open(slot)
        p.login(s, SO_PIN, user=CKU_SO)
        p.init_pin(s, USER_PIN)
        p.logout(s)
        p.close(s)
    return {"slots": p.slots()}


def ec_pair(p: P11, s: int, always_authenticate: bool) -> int:
    _, priv = p.generate_key_pair(
        s, spec.CKM_EC_KEY_PAIR_GEN, {spec.CKA_EC_PARAMS: P256_OID_DER, spec.CKA_TOKEN: False},
        {spec.CKA_SIGN: True, spec.CKA_TOKEN: False, spec.CKA_PRIVATE: True,
         spec.CKA_ALWAYS_AUTHENTICATE: always_authenticate})
    return priv


def threads(p: P11, n: int) -> dict[str, Any]:
    """Every PIN path, each with several threads deriving at once (default cost):

    A  n threads C_Login(USER): n-2 wrong PINs, 2 right ones
    B  C_Login(CKU_CONTEXT_SPECIFIC) x2 and C_SetPIN(user) x2 at once, while another thread
       signs: signatures completed during a derivation show that the KDF releases the GIL
    C  the SO: C_InitPIN x3 at once
    D  C_Login(USER, wrong) x2 with C_InitToken of slot 1 starting meanwhile
    """
    res: dict[str, Any] = {}
    sessions = [p.open(0) for _ in range(n)]
    res["A"] = together([lambda s=s, i=i: rv_of(lambda: p.login(s, USER_PIN if i < 2 else WRONG_PIN))
                         for i, s in enumerate(sessions)])

    s0 = sessions[0]  # the user is logged in now (application-wide)
    assert rv_of(lambda: p.login(s0, USER_PIN)) == spec.CKR_USER_ALREADY_LOGGED_IN, "phase A logged nobody in"
    auth_key = ec_pair(p, s0, True)
    plain_key = ec_pair(p, s0, False)
    ctx_sessions = sessions[1:3]
    for s in ctx_sessions:
        m, _keep = P11.mechanism(spec.CKM_ECDSA)
        p.check("C_SignInit", s, m, auth_key)

    def ctx_login(s: int) -> int:
        rv = rv_of(lambda: p.login(s, USER_PIN, user=CKU_CONTEXT_SPECIFIC))
        if rv == 0:
            sig = ffi.new("unsigned char[]", 64)
            n_sig = ffi.new("CK_ULONG *", 64)
            rv = p.call("C_Sign", s, b"d" * 32, 32, sig, n_sig)
        return rv

    stop = threading.Event()
    kdf_windows: list[tuple[float, float]] = []
    signed: list[tuple[float, float]] = []

    def timed(fn: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            t0 = time.monotonic()
            rv = fn()
            kdf_windows.append((t0, time.monotonic()))
            return rv
        return run

    def signer() -> None:
        s = sessions[7 % n]
        while not stop.is_set():
            t0 = time.monotonic()
            p.sign(s, spec.CKM_ECDSA, plain_key, b"x" * 32)
            signed.append((t0, time.monotonic()))
            time.sleep(0.002)  # a client's pace, not a busy loop competing for the 2 cores

    sign_thread = threading.Thread(target=signer)
    sign_thread.start()
    jobs = [timed(lambda s=s: ctx_login(s)) for s in ctx_sessions]
    jobs += [timed(lambda s=s: rv_of(lambda: p.set_pin(s, USER_PIN, USER_PIN))) for s in sessions[3:5]]
    res["B"] = together(jobs)
    stop.set()
    sign_thread.join()
    # signatures that started and ended while some derivation was running
    res["signed_during_kdf"] = sum(
        1 for a, b in signed if any(k0 < a and b < k1 for k0, k1 in kdf_windows))
    res["signed"] = len(signed)

    p.logout(s0)
    p.login(s0, SO_PIN, user=CKU_SO)
    res["C"] = together([lambda s=s: rv_of(lambda: p.init_pin(s, USER_PIN)) for s in sessions[:3]])
    p.logout(s0)

    res["D"] = together(
        [lambda s=s: rv_of(lambda: p.login(s, WRONG_PIN)) for s in sessions[:2]]
        + [lambda: rv_of(lambda: p.init_token(1, SO_PIN, "again"))],
        stagger={2: 0.03})
    p.login(s0, USER_PIN)  # the token still works, with the PIN of phase B/C
    return res


def logins(p: P11, n: int, which: str = "mixed") -> dict[str, Any]:
    """n threads C_Login at once: odd ones the right PIN ("mixed"), or all a wrong ("wrong")
    or the right one ("right")."""
    sessions = [p.open(0) for _ in range(n)]
    pins = [USER_PIN if which == "right" or (i % 2 and which == "mixed") else WRONG_PIN for i in range(n)]
    out = together([lambda s=s, pin=pin: rv_of(lambda: p.login(s, pin)) for s, pin in zip(sessions, pins)])
    return {"rvs": out}


def guess(p: P11, n: int, pins: list[bytes]) -> dict[str, Any]:
    """Fork n children (library loaded, not initialized: PKCS#11 allows that); each
    initializes, opens a session and waits; all are released at once to C_Login. The parent
    opened a session once before, so the children inherit the imports (0.5 s each otherwise)."""
    p.initialize()
    p.close(p.open(0))
    p.finalize()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    kids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                p.initialize()
                s = p.open(0)
                os.write(ready_w, b"r")
                os.read(go_r, 1)  # EOF when the parent closes go_w: everybody at once
                rv = rv_of(lambda: p.login(s, pins[i % len(pins)]))  # noqa: B023 (called here, in this iteration)
                os.write(out_w, json.dumps([i % len(pins), rv]).encode() + b"\n")
                code = 0
            finally:
                os._exit(code)
        kids.append(pid)
    os.close(go_r)
    os.close(ready_w)
    for _ in range(n):
        assert os.read(ready_r, 1) == b"r"
    os.close(go_w)
    codes = [os.waitpid(pid, 0)[1] for pid in kids]
    os.close(out_w)
    data = b""
    while chunk := os.read(out_r, 65536):
        data += chunk
    rows = [json.loads(line) for line in data.decode().splitlines()]
    return {"rvs": rows, "exit": codes}


def locked_init(p: P11) -> dict[str, Any]:
    return {"rv": rv_of(lambda: p.init_token(0, SO_PIN, "again"))}


def main() -> None:
    mode, args = sys.argv[1], sys.argv[2:]
    p = P11()
    if mode == "guess":
        result = guess(p, int(args[0]), [a.encode() for a in args[1:]])
    else:
        p.initialize()
        result = {"setup": lambda: setup(p), "threads": lambda: threads(p, int(args[0])),
                  "logins": lambda: logins(p, int(args[0]), *args[1:]), "locked-init": lambda: locked_init(p)}[mode]()
        p.finalize()
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
