"""PIN paths as an attacker and a busy server use them (issue 15 items 1, 3, 7 and 8).

1. Concurrency at the *default* KDF cost: OpenSSL's multi-lane Argon2id (cryptography 50,
   lanes > 1) deadlocked when two threads derived at once, so two threads in C_Login never
   returned. Every PIN path is run with several threads and processes deriving at once, each
   run in a child under a timeout (in its own process group): a hang fails, it does not hang
   the suite.
3. The retry limit holds under parallel guessing: 16 processes guessing at once get at most
   ``max_pin_failures`` guesses evaluated (the attempt is counted in the store before the KDF).
7. C_SetPIN of the SO is audited.
8. A locked SO PIN keeps C_InitToken refused even with the right SO PIN; the recovery is the
   out-of-band ``cryptoki-shim init-token --force`` (filesystem access to the store).

Every test drives the built library (tests/p11.py, or the CLI on the same store).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from p11 import P11, SO_PIN, USER_PIN, raises_ckr, write_config

from cryptoki_shim import spec

TESTS = Path(__file__).resolve().parent
WORKER = TESTS / "pin_worker.py"
CKU_SO = int(spec.CKU_SO)
OK, INCORRECT, LOCKED = int(spec.CKR_OK), int(spec.CKR_PIN_INCORRECT), int(spec.CKR_PIN_LOCKED)
ALREADY = int(spec.CKR_USER_ALREADY_LOGGED_IN)
#: Wall-time bound of one child: generous for a loaded 2-core CI; a deadlock never ends.
HANG_S = 90


def slots(*ids: int, kdf_cost: str = "default", max_pin_failures: int | None = None) -> str:
    extra = f"max_pin_failures = {max_pin_failures}\n" if max_pin_failures is not None else ""
    return "".join(f'[[slots]]\nid = {i}\nkdf_cost = "{kdf_cost}"\n{extra}' for i in ids)


def run_worker(conf: Path, *args: Any, timeout: float = HANG_S) -> dict[str, Any]:
    """pin_worker.py in a child of its own process group; the whole group dies on timeout."""
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf))
    proc = subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"pin_worker {args} did not finish in {timeout} s: a PIN path hangs")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.splitlines()[-1])


def start_worker(conf: Path, *args: Any) -> subprocess.Popen:
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf))
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


# ------------------------------------------------------------------ item 1: no hang, default cost


def test_every_pin_path_with_8_threads_at_default_cost(tmp_path: Path) -> None:
    conf = write_config(tmp_path, slots=slots(0, 1, max_pin_failures=1000))
    run_worker(conf, "setup")
    t0 = time.monotonic()
    res = run_worker(conf, "threads", 8)
    elapsed = time.monotonic() - t0
    assert sorted(res["A"][:2]) in ([OK, OK], [OK, ALREADY]), res  # the two right PINs
    assert set(res["A"][2:]) <= {INCORRECT, ALREADY}, res
    assert INCORRECT in res["A"][2:], res
    assert res["B"] == [OK] * 4, res  # 2 context-specific logins (+ C_Sign), 2 C_SetPIN
    assert res["C"] == [OK] * 3, res  # C_InitPIN
    assert res["D"] == [INCORRECT] * 2 + [OK], res  # wrong logins + C_InitToken of slot 1
    # The KDF runs without the GIL: another session signed while derivations were running.
    assert res["signed_during_kdf"] >= 3, res
    assert elapsed < HANG_S


def test_logins_of_2_processes_x_8_threads_at_default_cost(tmp_path: Path) -> None:
    conf = write_config(tmp_path, slots=slots(0, max_pin_failures=1000))
    run_worker(conf, "setup")
    procs = [start_worker(conf, "logins", 8) for _ in range(2)]
    deadline = time.monotonic() + HANG_S
    try:
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.splitlines()[-1])["rvs"])
    except subprocess.TimeoutExpired:
        pytest.fail(f"2 processes x 8 threads of C_Login did not finish in {HANG_S} s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    for rvs in results:
        assert set(rvs[0::2]) <= {INCORRECT, ALREADY}, rvs
        assert OK in rvs[1::2] and set(rvs[1::2]) <= {OK, ALREADY}, rvs


def test_records_of_4_lanes_still_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens initialized before this fix have lanes=4 records made by OpenSSL: they open."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    from cryptoki_shim.store import crypto

    rec = crypto.make_pin_record(b"1234", b"k" * 32, cost="default")
    assert rec.kdf == "argon2id" and rec.params["memory_cost"] == 64 * 1024  # still memory-hard
    old = Argon2id(salt=bytes.fromhex(rec.params["salt"]), length=32, iterations=3, lanes=4,
                   memory_cost=64 * 1024).derive(b"1234")
    assert crypto._derive_argon2id(b"1234", {**rec.params, "lanes": 4}) == old


# ------------------------------------------------------------------ item 3: lockout under parallelism


def _guess(tmp_path: Path, n: int, pins: list[bytes], limit: int = 3) -> tuple[list[list[int]], Path]:
    conf = write_config(tmp_path, slots=slots(0, max_pin_failures=limit),
                        extra=f'[audit]\nfile = "{tmp_path / "audit.jsonl"}"\n')
    run_worker(conf, "setup")
    res = run_worker(conf, "guess", n, *(p.decode() for p in pins))
    assert res["exit"] == [0] * n, res
    assert len(res["rvs"]) == n, res
    return res["rvs"], conf


def evaluated_wrong_pins(tmp_path: Path) -> int:
    """Wrong PINs the KDF actually evaluated: the audit log's login.failed records whose
    outcome is CKR_PIN_INCORRECT (a refused attempt is logged as CKR_PIN_LOCKED). The CKRs
    cannot tell: the evaluation that reaches the limit answers CKR_PIN_LOCKED too."""
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    return sum(1 for r in records if r["event"] == "login.failed" and r.get("outcome") == "CKR_PIN_INCORRECT")


def stored_failures(conf: Path) -> int:
    """The user PIN's failure counter, as the admin CLI reads it from the store."""
    proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", "list", "--json"], capture_output=True,
                          text=True, timeout=HANG_S, env=dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf)))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["slots"][0]["token"]["user_pin_failures"]


def test_16_processes_guessing_at_once_get_at_most_the_limit(tmp_path: Path, monkeypatch) -> None:
    """max_pin_failures = 3: of 16 wrong PINs sent at the same moment by 16 processes, exactly
    3 are evaluated (2 answer CKR_PIN_INCORRECT, the third locks: CKR_PIN_LOCKED), the other
    13 are refused before the KDF. Before: all 16 were evaluated (the counter ended at 16)."""
    rows, conf = _guess(tmp_path, 16, [b"0000"])
    rvs = [rv for _, rv in rows]
    assert rvs.count(INCORRECT) == 2 and rvs.count(LOCKED) == 14, [spec.ckr_name(r) for r in rvs]
    assert evaluated_wrong_pins(tmp_path) == 3
    assert stored_failures(conf) == 3
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11()
    p.initialize()
    try:
        assert p.token_info(0).flags & spec.CKF_USER_PIN_LOCKED
        s = p.open(0)
        with raises_ckr(spec.CKR_PIN_LOCKED):
            p.login(s, USER_PIN)  # even the right PIN
    finally:
        p.finalize()
    assert evaluated_wrong_pins(tmp_path) == 3


def test_right_pin_among_16_wrong_ones_never_beats_the_limit(tmp_path: Path, monkeypatch) -> None:
    """16 wrong guesses and the right PIN at once. The right one logs in only if it was counted
    before the limit was reached (it then clears the failures counted before it, as a login in
    sequence would); else it is refused as locked. Wrong guesses evaluated: at most 3 before
    it and 3 after it."""
    rows, conf = _guess(tmp_path, 17, [b"0000"] * 16 + [USER_PIN])
    wrong = [rv for i, rv in rows if i < 16]
    (right,) = [rv for i, rv in rows if i == 16]
    assert right in (OK, LOCKED), spec.ckr_name(right)
    assert set(wrong) <= {INCORRECT, LOCKED}
    evaluated = evaluated_wrong_pins(tmp_path)
    assert evaluated <= (6 if right == OK else 3), evaluated
    failures = stored_failures(conf)
    assert failures <= 3
    if right == LOCKED:
        assert failures == 3 and evaluated == 3
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11()
    p.initialize()
    try:
        s = p.open(0)
        if failures == 3:
            with raises_ckr(LOCKED):
                p.login(s, USER_PIN)
        else:  # the right PIN won the race: fewer than the limit are counted, it still logs in
            p.login(s, USER_PIN)
    finally:
        p.finalize()


def test_16_threads_guessing_at_once_get_at_most_the_limit(tmp_path: Path) -> None:
    """The same inside one process: 16 threads, no right PIN, 3 evaluated."""
    conf = write_config(tmp_path, slots=slots(0, max_pin_failures=3),
                        extra=f'[audit]\nfile = "{tmp_path / "audit.jsonl"}"\n')
    run_worker(conf, "setup")
    res = run_worker(conf, "logins", 16, "wrong")
    assert sorted(res["rvs"]) == [INCORRECT] * 2 + [LOCKED] * 14, res
    assert evaluated_wrong_pins(tmp_path) == 3
    assert stored_failures(conf) == 3


# ------------------------------------------------------------------ items 7 and 8: the SO PIN


def _audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[P11, Path, Path]:
    log = tmp_path / "audit.jsonl"
    conf = write_config(tmp_path, slots=slots(0, kdf_cost="test", max_pin_failures=3),
                        extra=f'[audit]\nfile = "{log}"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11()
    p.initialize()
    p.init_token(0, SO_PIN, "so")
    s = p.open(0)
    p.login(s, SO_PIN, user=CKU_SO)
    p.init_pin(s, USER_PIN)
    p.close(s)
    return p, conf, log


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["event"] == name]


def test_so_pin_change_is_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """C_SetPIN of the SO writes `pin.set` with user "so" (its audit call was unreachable)."""
    p, _, log = _audited(tmp_path, monkeypatch)
    try:
        s = p.open(0)
        p.login(s, SO_PIN, user=CKU_SO)
        p.set_pin(s, SO_PIN, b"87654321")
        p.logout(s)
        p.login(s, b"87654321", user=CKU_SO)  # the new SO PIN works
    finally:
        p.finalize()
    assert [e["user"] for e in _events(log, "pin.set")] == ["user", "so"]


def test_locked_so_pin_refuses_init_token_and_only_the_admin_cli_resets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 8, the rule: a locked SO PIN keeps C_InitToken refused even with the right SO PIN
    (else the lock would not stop an SO PIN search: the right guess would wipe and take the
    token). The recovery is out of band: `cryptoki-shim init-token --force`, run by whoever can
    write the store, wipes the token without the old SO PIN; it is audited."""
    p, conf, log = _audited(tmp_path, monkeypatch)
    cli = [sys.executable, "-m", "cryptoki_shim.cli", "init-token", "--label", "fresh", "--so-pin-env", "SO"]
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), SO="new-so-pin")
    try:
        s = p.open(0)
        for expected in (INCORRECT, INCORRECT, LOCKED):
            with raises_ckr(expected):
                p.login(s, b"99999999", user=CKU_SO)
        p.close(s)
        assert p.token_info(0).flags & spec.CKF_SO_PIN_LOCKED
        with raises_ckr(spec.CKR_PIN_LOCKED):
            p.init_token(0, SO_PIN, "again")  # the right SO PIN: still refused
        plain = subprocess.run(cli, env=dict(env, SO=SO_PIN.decode()), capture_output=True, text=True, timeout=60)
        assert plain.returncode == 1 and "CKR_PIN_LOCKED" in plain.stdout + plain.stderr, plain
        forced = subprocess.run([*cli, "--force"], env=env, capture_output=True, text=True, timeout=60)
        assert forced.returncode == 0, forced.stdout + forced.stderr
        assert not p.token_info(0).flags & spec.CKF_SO_PIN_LOCKED
        s = p.open(0)
        with raises_ckr(spec.CKR_PIN_INCORRECT):
            p.login(s, SO_PIN, user=CKU_SO)  # the old SO PIN is gone with the old token
        p.login(s, b"new-so-pin", user=CKU_SO)
        p.logout(s)
        with raises_ckr(spec.CKR_USER_PIN_NOT_INITIALIZED):  # and so is the user PIN
            p.login(s, USER_PIN)
    finally:
        p.finalize()
    assert len(_events(log, "token.init.forced")) == 1


def test_a_crash_between_count_and_check_costs_one_try(tmp_path: Path, monkeypatch) -> None:
    """A process killed after its attempt was counted and before the PIN check finished keeps
    the attempt counted, even with the right PIN (the safe side: else killing the process in
    the middle of each guess would be a way around the limit). The next right PIN clears it."""
    conf = write_config(tmp_path, slots=slots(0, max_pin_failures=3))
    run_worker(conf, "setup")
    proc = start_worker(conf, "logins", 1, "right")
    deadline = time.monotonic() + HANG_S
    try:
        with sqlite3.connect(tmp_path / "store.db", timeout=5) as db:
            while db.execute("SELECT failures FROM pins WHERE user_type = ?", (int(spec.CKU_USER),)).fetchone()[0] == 0:
                assert proc.poll() is None and time.monotonic() < deadline, "the login was never seen counted"
                time.sleep(0.001)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # in the KDF (~100 ms at the default cost)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert stored_failures(conf) == 1
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p = P11()
    p.initialize()
    try:
        p.login(p.open(0), USER_PIN)
    finally:
        p.finalize()
    assert stored_failures(conf) == 0


def test_no_pin_is_tried_on_a_store_that_cannot_count(tmp_path: Path, monkeypatch) -> None:
    """A read-only store cannot count the attempt, so the PIN is not tried: C_Login answers
    CKR_DEVICE_ERROR (even the right PIN), public objects stay readable. Else a read-only copy
    of the store would be a guessing oracle without any limit."""
    d = tmp_path / "ro"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        conf = write_config(d, slots=slots(0, kdf_cost="test"))
        run_worker(conf, "setup")
        subprocess.run(["mount", "-o", "remount,ro", str(d)], check=True, capture_output=True)
        monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
        p = P11()
        p.initialize()
        try:
            s = p.open(0, rw=False)
            with raises_ckr(spec.CKR_DEVICE_ERROR):
                p.login(s, USER_PIN)
            assert p.token_info(0).flags & spec.CKF_USER_PIN_INITIALIZED
        finally:
            p.finalize()
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
