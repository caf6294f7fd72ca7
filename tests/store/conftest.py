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


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'tokens.db'}"


@pytest.fixture
def token_key() -> bytes:
    return new_token_key()


@pytest.fixture
def store(db_url: str, token_key: bytes) -> Iterator[Store]:
    s = Store(db_url)
    s.init_token(make_token(1, token_key))
    yield s
    s.close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `store_worker.py` in a fresh interpreter (no state shared with pytest)."""
    procs: list[subprocess.Popen[str]] = []
    env = dict(os.environ, PYTHONPATH=str(REPO))

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
