"""Fixtures for the store tests: real SQLite files, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
from store_helpers import REPO, WORKER, make_token

from cryptoki_shim.store import Store, new_token_key
from p11 import write_config


@pytest.fixture
def shim_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_path: bool) -> Path:
    """The suite's configuration (conftest.py one level up), once per statement set: the
    library's tests in this directory (at-rest hardening, the write paths) run with
    ``[store] sqlite_fast_path`` on and off."""
    conf = write_config(tmp_path, extra="" if fast_path else "sqlite_fast_path = false")
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    return conf


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'tokens.db'}"


@pytest.fixture
def token_key() -> bytes:
    return new_token_key()


@pytest.fixture(params=[True, False], ids=["sqlite_ops", "core"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    """Both statement sets of the store's object writes: ``sqlite_ops`` (SQLite's default)
    and SQLAlchemy Core (``core_ops``, what PostgreSQL runs), each against a real file."""
    return request.param


@pytest.fixture
def store(db_url: str, token_key: bytes, fast_path: bool) -> Iterator[Store]:
    s = Store(db_url, fast_path=fast_path)
    assert s.fast_path is fast_path
    s.init_token(make_token(1, token_key))
    yield s
    s.close()


@pytest.fixture
def start_worker(fast_path: bool) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `store_worker.py` in a fresh interpreter (no state shared with pytest), on the
    test's statement set."""
    procs: list[subprocess.Popen[str]] = []
    env = dict(os.environ, PYTHONPATH=str(REPO), STORE_FAST_PATH="1" if fast_path else "0")

    def start(*args: object) -> subprocess.Popen[str]:
        p = subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
