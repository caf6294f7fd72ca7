"""Fixtures for the store tests: real SQLite files, a real PostgreSQL server, real processes.

Each store test runs on three backends (`backend`): SQLite with its fixed SQL (``sqlite_ops``),
SQLite through SQLAlchemy Core (``core``) and PostgreSQL (``pg``: Core on psycopg 3, against
the session's throwaway cluster of ``tests/pg.py``, a fresh database per test). A test that
is about SQLite's files themselves asks for `sqlite_backend` instead (two runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest
from store_helpers import REPO, WORKER, make_token

import pg
from cryptoki_shim.store import Store, new_token_key
from p11 import write_config

BACKENDS = ["sqlite_ops", "core", "pg"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    """The session's PostgreSQL cluster, started on first use (~2 s), destroyed at the end."""
    cluster = pg.ACTIVE = pg.start_cluster()
    yield cluster
    pg.ACTIVE = None
    cluster.destroy()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fast_path(backend: str) -> bool:
    """The statement set: ``sqlite_ops`` (SQLite's default) or SQLAlchemy Core (``core_ops``,
    what PostgreSQL runs, here on SQLite files or on the server)."""
    return backend == "sqlite_ops"


@pytest.fixture
def pg_url(pg_cluster: pg.Cluster) -> str:
    """A fresh PostgreSQL store of the session's cluster: an empty schema of its own."""
    return pg_cluster.url(pg_cluster.new_schema())


@pytest.fixture
def db_url(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "pg":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'store' / 'tokens.db'}"


@pytest.fixture
def shim_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, db_url: str) -> Path:
    """The suite's configuration (conftest.py one level up), once per backend: the library's
    tests in this directory run with ``[store] sqlite_fast_path`` on and off, and on PostgreSQL."""
    conf = write_config(tmp_path, extra="" if backend == "sqlite_ops" else "sqlite_fast_path = false")
    if backend == "pg":
        text = conf.read_text()
        conf.write_text(text.replace(f'url = "sqlite:///{tmp_path / "store.db"}"', f'url = "{db_url}"', 1))
        assert db_url in conf.read_text()
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    return conf


@pytest.fixture
def token_key() -> bytes:
    return new_token_key()


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
