"""Issue 15 item 4: the audit log cannot be rewritten by whoever can write only the log file.

Each test makes a genuine log through the built library (a token set up, failed logins, key
uses), C_Finalize, then tampers with the file as an attacker without the audit key would,
and runs ``cryptoki-shim audit verify`` as an operator does: exit 4 and a line naming the
record. The untampered log, also written by threads and by two processes at once, exits 0.

What an attacker who *can* read the key (the store's owner) can do is shown too: with the
key a forged chain verifies unless the ledger disagrees, and with the ledger rewritten as
well nothing is detected (the limit stated in docs/cli.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from p11 import P11, P11Error, ffi

from cryptoki_shim import audit, spec

A = spec
SO_PIN, USER_PIN = b"so-pin-4411", b"user-pin-8823"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def env(lib_path, tmp_path, monkeypatch):
    """A config with an audit file (key and ledger default: next to the store)."""
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
                    f'[audit]\nfile = "{tmp_path / "audit.jsonl"}"\ncheckpoint_every = 5\n'
                    '[[slots]]\nid = 0\nkdf_cost = "test"\nmax_pin_failures = 5\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    yield tmp_path
    audit.configure(None)


def _genuine(tmp_path: Path) -> list[str]:
    """A token's life in one run: init, PINs, two failed logins, a key, signatures."""
    p = P11()
    p.initialize()
    try:
        p.init_token(0, SO_PIN, "tamper")
        s = p.open(0)
        p.login(s, SO_PIN, user=A.CKU_SO)
        p.init_pin(s, USER_PIN)
        p.logout(s)
        for _ in range(2):
            with pytest.raises(P11Error):
                p.login(s, b"guess-0000")
        p.login(s, USER_PIN)
        key = p.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: bytes(32),
                           A.CKA_SIGN: True, A.CKA_TOKEN: True, A.CKA_LABEL: b"mac-key"})
        for i in range(12):
            p.sign(s, A.CKM_AES_CMAC, key, b"message %d" % i)
    finally:
        p.call("C_Finalize", ffi.NULL)
    return (tmp_path / "audit.jsonl").read_text().splitlines()


def _verify(tmp_path: Path, lines: list[str] | None = None, *extra: str) -> subprocess.CompletedProcess:
    log = tmp_path / "audit.jsonl"
    if lines is not None:
        log.write_text("".join(line + "\n" for line in lines))
    return subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", "audit", "verify", str(log), *extra],
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)


def _fails(tmp_path: Path, lines: list[str], *named: str) -> str:
    proc = _verify(tmp_path, lines)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    for text in named:
        assert text in proc.stdout, proc.stdout
    return proc.stdout


def _mac_chain(lines: list[str], key: bytes) -> list[str]:
    """What an attacker does after editing: renumber each run and recompute every MAC with
    ``key`` (the attacker's own key, or the real one if they could read it)."""
    from cryptography.hazmat.primitives import hashes, hmac  # after the library loaded its own

    out, seqs, prevs = [], {}, {}
    for line in lines:
        rec = json.loads(line)
        rec.pop("mac", None)
        rec.pop("hash", None)
        run = rec["run"]
        seqs[run] = rec["seq"] = seqs.get(run, 0) + 1
        body = json.dumps(rec, separators=(",", ":"), ensure_ascii=True)
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(audit._DOMAIN + prevs.get(run, bytes(32)) + body.encode())
        prevs[run] = h.finalize()
        out.append(f'{body[:-1]},"mac":"{prevs[run].hex()}"}}')
    return out


def _ledger_for(lines: list[str], log: Path) -> str:
    entries = []
    for line in lines:
        r = json.loads(line)
        if r["event"] in (audit.START, audit.CHECKPOINT):
            entries.append(json.dumps({"log": str(log), "run": r["run"], "pid": r["pid"], "seq": r["seq"],
                                       "time": r["time"], "event": r["event"], "mac": r["mac"]}) + "\n")
    return "".join(entries)


def _events(lines: list[str]) -> list[str]:
    return [json.loads(x)["event"] for x in lines]


# --------------------------------------------------------------------------- genuine logs


def test_untampered_log_verifies(env):
    lines = _genuine(env)
    assert _events(lines)[0] == audit.START and _events(lines)[-1] == audit.CHECKPOINT  # C_Finalize's
    assert "login.failed" in _events(lines) and audit.CHECKPOINT in _events(lines)[1:-1]
    proc = _verify(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no deletion or edit detected" in proc.stdout


def test_threads_and_two_processes_append_to_one_log(env):
    """8 threads of this process and 2 child processes sign at once into one file: the
    records interleave, each process is its own run with its own chain, and it all verifies."""
    _genuine(env)  # the token
    child = (f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
             "from p11 import P11, ffi\nfrom cryptoki_shim import spec as A\n"
             "p = P11(); p.initialize(); s = p.open(0); p.login(s, %r)\n"
             "k = p.find(s, {A.CKA_LABEL: b'mac-key'})[0]\n"
             "for i in range(60): p.sign(s, A.CKM_AES_CMAC, k, b'child %%d' %% i)\n"
             "p.call('C_Finalize', ffi.NULL)\n") % USER_PIN
    procs = [subprocess.Popen([sys.executable, "-c", child]) for _ in range(2)]
    p = P11()
    p.initialize()
    try:
        s = p.open(0)
        p.login(s, USER_PIN)
        key = p.find(s, {A.CKA_LABEL: b"mac-key"})[0]

        def work(n: int) -> None:
            own = p.open(0)
            for i in range(30):
                p.sign(own, A.CKM_AES_CMAC, key, b"thread %d %d" % (n, i))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        p.call("C_Finalize", ffi.NULL)
    assert [pr.wait(120) for pr in procs] == [0, 0]
    lines = (env / "audit.jsonl").read_text().splitlines()
    runs = [json.loads(x)["run"] for x in lines]
    assert len(set(runs)) == 3  # this process (one run across its C_Initialize calls), two children
    uses = [x for x in lines if '"key.use"' in x]
    assert len(uses) == 12 + 8 * 30 + 2 * 60
    proc = _verify(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- the cases


def test_stripped_macs_then_edited_fail(env):
    """Issue case 1: a run's records stripped of their MAC (formerly: of `hash`), then edited."""
    lines = _genuine(env)
    bad = [re.sub(r',"mac":"[0-9a-f]{64}"\}$', "}", x).replace('"outcome":"CKR_PIN_INCORRECT"', '"outcome":"ok"')
           for x in lines]
    _fails(env, bad, "no mac")


def test_malformed_first_mac_then_edits_fail(env):
    """Issue case 2: the first record's MAC field malformed, the rest edited after it."""
    lines = _genuine(env)
    lines[0] = re.sub(r'"mac":"[0-9a-f]{64}"', '"mac":"not-hex"', lines[0])
    lines = [x.replace("CKR_PIN_INCORRECT", "CKR_OK") for x in lines]
    out = _fails(env, lines, "mac 'not-hex' is malformed")
    assert re.search(r"^\s+1\s", out, re.M), out  # names line 1


def test_chain_recomputed_after_edits_fails(env):
    """Issue case 3: edit a record and recompute the whole chain — SHA-256 as before, or an
    HMAC under a key of the attacker's: the MACs do not follow from the audit key."""
    lines = _genuine(env)
    edited = [x.replace('"key_label":"mac-key"', '"key_label":"other"') for x in lines]
    _fails(env, _mac_chain(edited, os.urandom(32)), "MAC does not match")
    sha_chain = []
    import hashlib  # the attacker's tool, not the module's

    prev = ""
    for x in edited:
        body = re.sub(r',"mac":"[0-9a-f]{64}"\}$', "}", x)
        prev = hashlib.sha256((prev + body).encode()).hexdigest()
        sha_chain.append(body[:-1] + f',"hash":"{prev}"}}')
    _fails(env, sha_chain, "no mac")


def test_failed_logins_removed_and_chain_rebuilt_fails(env):
    """Issue case 4: every login.failed removed, seq renumbered, chain rebuilt (no key)."""
    lines = _genuine(env)
    kept = [x for x in lines if '"login.failed"' not in x]
    assert len(kept) == len(lines) - 2
    _fails(env, _mac_chain(kept, os.urandom(32)), "MAC does not match")
    # Without even rebuilding: the deletion is a gap in seq.
    _fails(env, kept, "missing")


def test_deleted_reordered_duplicated_inserted_fail(env):
    lines = _genuine(env)
    i = _events(lines).index("login.failed")
    _fails(env, lines[:i] + lines[i + 1:], f"record(s) {i + 1} missing")
    _fails(env, lines[:i] + [lines[i + 1], lines[i]] + lines[i + 2:], "duplicated or reordered")
    _fails(env, lines[:i] + [lines[i], lines[i]] + lines[i + 1:], "duplicated or reordered")
    _fails(env, lines[1:], "record(s) 1 missing", "head was cut")
    forged = json.loads(lines[i])
    forged["run"] = "0123456789abcdef"
    forged["seq"] = 1
    _fails(env, lines + [json.dumps(forged, separators=(",", ":"))], "MAC does not match")


def test_unknown_or_malformed_fields_fail(env):
    lines = _genuine(env)
    cases = {
        '"outcome":"ok"': '"outcome":"ok","note":"added"',    # unknown field (the MAC fails too)
        '"seq":3,': '"seq":"3",',                            # seq as a string
        '"slot":0,': '"slot":0.0,',                          # a float
        '"event":"login.ok"': '"event":"login.ok","event":"logout"',  # a duplicated field
    }
    for old, new in cases.items():
        j = next(k for k, x in enumerate(lines) if old in x)
        bad = list(lines)
        bad[j] = bad[j].replace(old, new, 1)
        out = _fails(env, bad)
        assert re.search(rf"^\s+{j + 1}\s", out, re.M), (old, out)
    bad = list(lines)
    bad[2] = bad[2].replace(",", ", ", 1)  # same JSON, other bytes
    _fails(env, bad, "not in the form the module writes")
    _fails(env, lines[:3] + [""] + lines[3:], "empty line")


# --------------------------------------------------------------------------- truncation


def test_tail_cut_before_the_last_checkpoint_fails(env):
    lines = _genuine(env)
    last_cp = max(k for k, e in enumerate(_events(lines)[:-1]) if e == audit.CHECKPOINT)
    _fails(env, lines[:last_cp], "the run's tail was cut")
    _fails(env, lines[:-1], "the run's tail was cut")  # only C_Finalize's checkpoint gone


def test_records_after_the_last_checkpoint_are_reported_unprotected(env):
    """A run that ended without C_Finalize (a crash, or still running): its last records
    are not covered by a checkpoint. Verify passes, and says how many."""
    lines = _genuine(env)
    log = env / "audit.jsonl"
    # Simulate a process that wrote 3 records after its last checkpoint and never finalized:
    ledger = env / "audit.ledger"
    cp = max(k for k, e in enumerate(_events(lines)[:-1]) if e == audit.CHECKPOINT)
    kept = lines[:cp + 4]
    ledger.write_text(_ledger_for(kept, log))
    proc = _verify(env, kept, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["unprotected_records"] == 3, proc.stdout


def test_whole_run_deleted_from_the_middle_fails(env):
    first = _genuine(env)
    audit.configure(None)  # the run ends, as when its process exits; the next C_Initialize starts one
    second = _genuine(env)[len(first):]
    audit.configure(None)
    third = _genuine(env)[len(first) + len(second):]
    assert len({json.loads(x)["run"] for x in first + second + third}) == 3
    _fails(env, first + third, "none of its records is in the log: deleted")


def test_key_holder_limits(env):
    """What the docs state: with the key (the store's owner) a rebuilt chain passes the MACs,
    but the ledger's checkpoint MACs still differ; with the ledger rewritten too, nothing is
    detected. So the key and the ledger are the boundary, not the log file."""
    lines = _genuine(env)
    key = audit.load_key(str(env / "audit.key"), create=False)
    kept = _mac_chain([x for x in lines if '"login.failed"' not in x], key)
    _fails(env, kept, "ledger")
    (env / "audit.ledger").write_text(_ledger_for(kept, env / "audit.jsonl"))
    assert _verify(env, kept).returncode == 0


def test_verify_without_key_or_ledger(env):
    lines = _genuine(env)
    (env / "audit.ledger").rename(env / "elsewhere.ledger")
    proc = _verify(env)
    assert proc.returncode == 4 and "does not exist" in proc.stdout
    assert _verify(env, None, "--no-ledger").returncode == 0
    assert _verify(env, None, "--ledger", str(env / "elsewhere.ledger")).returncode == 0
    (env / "audit.key").rename(env / "moved.key")
    proc = _verify(env, None, "--no-ledger")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert _verify(env, None, "--no-ledger", "--key-file", str(env / "moved.key")).returncode == 0
    assert lines
