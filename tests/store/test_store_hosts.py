"""One token shared by several processes with separate caches, as several hosts would share it
(issue 19 item 2), through the built library, on SQLite and on PostgreSQL.

The two-process tests of tests/test_token_processes.py (creates, changes and destroys seen by
the other process at its next call, PIN changes, the shared failure counter, C_InitToken
elsewhere) run there on SQLite and are collected here again on PostgreSQL, with this
directory's `shim_conf`. The tests below, on both, add what a fleet needs:
lockout exact under concurrent wrong PINs from several processes, 2 x 1000 concurrent
creates, the other applications' sessions after C_InitToken, and no SQL on the signing path.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from cryptoki_shim import spec
from p11 import raises_ckr
import test_token_processes as on_sqlite
from test_token_processes import CREATOR, TESTS, USER_PIN, Worker, worker  # noqa: F401  (the fixture)


@pytest.fixture(params=["sqlite_ops", "pg"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite's default and PostgreSQL (the library's Core-on-SQLite path adds nothing here)."""
    return request.param


def _on_pg(test: Callable[..., None]) -> Callable[..., None]:
    """`test` of test_token_processes.py (which runs it on SQLite) again, on PostgreSQL."""
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        test(*args, **kwargs)
    return pytest.mark.parametrize("backend", ["pg"], indirect=True)(run)


test_other_process_sees_creates_and_destroys = _on_pg(on_sqlite.test_other_process_sees_creates_and_destroys)
test_other_process_sees_pin_change = _on_pg(on_sqlite.test_other_process_sees_pin_change)
test_failure_counter_shared_between_processes = _on_pg(on_sqlite.test_failure_counter_shared_between_processes)
test_other_process_reinit_token = _on_pg(on_sqlite.test_other_process_reinit_token)


GUESSER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from p11 import P11, P11Error
from cryptoki_shim import spec
p = P11()
p.initialize()
s = p.open(0)
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
out = []
for _ in range(int(sys.argv[3])):
    try:
        p.login(s, b"0000")
        out.append("OK")
    except P11Error as exc:
        out.append(spec.ckr_name(exc.rv))
print(" ".join(out))
p.finalize()
"""


def test_lockout_is_exact_under_concurrent_wrong_pins(token, shim_conf: Path, tmp_path: Path) -> None:
    """Four processes guess at once against max_pin_failures = 5: exactly five guesses are
    evaluated between them (four CKR_PIN_INCORRECT, the fifth CKR_PIN_LOCKED as it reaches
    the limit), every other attempt is refused untried, and the right PIN is locked out."""
    shim_conf.write_text(shim_conf.read_text() + "\nmax_pin_failures = 5\n")  # into [[slots]]
    token.finalize()
    token.initialize()
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", GUESSER, str(TESTS), str(go), "6"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    go.touch()
    answers: Counter[str] = Counter()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        answers.update(out.split())
    assert answers == {"CKR_PIN_INCORRECT": 4, "CKR_PIN_LOCKED": 20}, answers
    s = token.open(0)
    with raises_ckr(spec.CKR_PIN_LOCKED):
        token.login(s, USER_PIN)
    assert token.token_info(0).flags & spec.CKF_USER_PIN_LOCKED


@pytest.mark.slow
def test_two_processes_create_1000_objects_each(token) -> None:
    n = 1000
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, str(TESTS), tag, str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "{}", out  # no call failed
    s = token.open(0)
    token.login(s, USER_PIN)
    for tag in (b"a", b"b"):
        found = token.find(s, {spec.CKA_LABEL: tag}, batch=512)
        assert sorted(int(token.get(s, h, spec.CKA_VALUE)) for h in found) == list(range(n))


def test_init_token_elsewhere_ends_this_applications_sessions(token, worker: Worker) -> None:
    """C_InitToken in another process (host): the worker's session and login end at its next
    call that consults the token, as if the token had been removed and a new one inserted;
    that call and every later one on the old handle answer CKR_SESSION_HANDLE_INVALID, and
    a new session sees the new, empty token."""
    worker.run("s = p.open(0); p.login(s, b'1234')")
    s = token.open(0)
    token.login(s, USER_PIN)
    token.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"old"})
    assert len(worker.run("result = p.find(s, {spec.CKA_LABEL: b'old'})")) == 1
    token.close(s)
    token.init_token(0, b"12345678", "fresh")  # no session of ours is left, so it is allowed
    with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
        worker.run("p.find(s, {spec.CKA_LABEL: b'old'})")
    with raises_ckr(spec.CKR_SESSION_HANDLE_INVALID):
        worker.run("p.session_info(s)")
    worker.run("s = p.open(0)")
    assert worker.run("result = p.find(s, {spec.CKA_LABEL: b'old'})") == []
    with raises_ckr(spec.CKR_USER_PIN_NOT_INITIALIZED):
        worker.run("p.login(s, b'1234')")
    assert bytes(token.token_info(0).label).rstrip() == b"fresh"


def test_sign_with_a_cached_key_runs_no_sql(token, user_session: int, backend: str) -> None:
    """The signing path's store check (`Store.data_version`) sends no statement: on
    PostgreSQL it drains the LISTEN connection (store/pg.py), on SQLite it asks the file's
    data_version pragma on the driver, not through SQLAlchemy. Counted at every engine."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    s = user_session
    pub, priv = token.generate_key_pair(
        s, spec.CKM_EC_KEY_PAIR_GEN,
        {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: bytes.fromhex("06082a8648ce3d030107"), spec.CKA_VERIFY: True},
        {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True})
    token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"warm-up")  # the cache is current after this
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        for i in range(50):
            sig = token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"m%d" % i)
            token.verify(s, spec.CKM_ECDSA_SHA256, pub, b"m%d" % i, sig)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert seen == []
