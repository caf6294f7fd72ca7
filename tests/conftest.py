"""Fixtures shared by the suite: the built library, a private store, a ready token.

Every test that loads the library gets its own configuration file and SQLite store in a
temporary directory (``CRYPTOKI_SHIM_CONF``), with the fast "test" KDF cost, so tests are
independent and never touch a user's real store.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from p11 import LIB, P11, SO_PIN, USER_PIN, write_config  # noqa: E402,F401  (re-exported)

@pytest.fixture(scope="session")
def lib_path() -> Path:
    if not LIB.exists():
        pytest.fail(f"{LIB} is not built: run `make build` (./run test does)")
    return LIB


@pytest.fixture
def shim_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conf = write_config(tmp_path)
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    return conf


@pytest.fixture
def p11(lib_path: Path, shim_conf: Path):
    """The library, initialized on a fresh store; finalized afterwards."""
    client = P11(lib_path)
    client.initialize()
    yield client
    client.call("C_Finalize", __import__("p11").ffi.NULL)


@pytest.fixture
def token(p11: P11) -> P11:
    """An initialized token in slot 0 with SO PIN 12345678 and user PIN 1234."""
    p11.init_token(0, SO_PIN, "test")
    s = p11.open(0)
    p11.login(s, SO_PIN, user=0)
    p11.init_pin(s, USER_PIN)
    p11.close(s)
    return p11


@pytest.fixture
def user_session(token: P11) -> int:
    """A RW session of slot 0 with the user logged in."""
    s = token.open(0)
    token.login(s, USER_PIN)
    return s
