"""Helpers and fixtures of the upstream tests: a private SoftHSM2 token as the upstream HSM (issue 6).

Each test gets its own SoftHSM2 configuration and token directory (``SOFTHSM2_CONF`` in
the environment, read by SoftHSM2 at ``C_Initialize``) and a cryptoki-shim configuration
whose slot 0 routes keys to that token; the upstream PIN comes from ``pin_env``.
``softhsm`` runs SoftHSM2's own tools on the same token, to look at it from outside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from p11 import P11

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
UP_PIN = "87654321"
UP_SO_PIN = "12345678"
SO_PIN = b"12345678"   # ours (as tests/conftest.py)
USER_PIN = b"1234"

HAVE_SOFTHSM = SOFTHSM.exists() and shutil.which("softhsm2-util") is not None


class SoftHsm:
    """The private SoftHSM2 installation of one test."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tokens = root / "tokens"
        self.conf = root / "softhsm2.conf"
        self.label = "up-" + uuid.uuid4().hex[:8]
        self.tokens.mkdir()
        self.conf.write_text(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def init_token(self) -> None:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", self.label,
                        "--so-pin", UP_SO_PIN, "--pin", UP_PIN], env=self.env, check=True, capture_output=True)

    def delete_token(self) -> None:
        subprocess.run(["softhsm2-util", "--delete-token", "--token", self.label], env=self.env, check=True,
                       capture_output=True)

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """pkcs11-tool on SoftHSM2 itself (not through us), logged in to our token."""
        return subprocess.run(["pkcs11-tool", "--module", str(SOFTHSM), "--token-label", self.label,
                               "--login", "--pin", UP_PIN, *args],
                              env=self.env, check=check, capture_output=True, text=True)

    def objects(self) -> str:
        return self.tool("--list-objects").stdout


def upstream_slot(hsm: SoftHsm, *, backend: str = "upstream", extra: str = "", library: str | None = None) -> str:
    return (f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "{backend}"\n'
            f'[slots.upstream]\nlibrary = "{library or SOFTHSM}"\ntoken_label = "{hsm.label}"\n'
            f'pin_env = "SHIM_UPSTREAM_PIN"\n{extra}'
            f'[[slots]]\nid = 1\nkdf_cost = "test"\n')


def write_config(directory: Path, *, slots: str) -> Path:
    path = directory / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{directory / "store.db"}"\n{slots}')
    return path


def ready_token(p11: P11, slot: int = 0) -> int:
    """Init our token in ``slot`` and return a RW user session."""
    p11.init_token(slot, SO_PIN, "test")
    s = p11.open(slot)
    p11.login(s, SO_PIN, user=0)
    p11.init_pin(s, USER_PIN)
    p11.close(s)
    s = p11.open(slot)
    p11.login(s, USER_PIN)
    return s


# ---------------------------------------------------------------- fixtures
# Imported by the test modules (``from upstream_hsm import hsm, ...``): no conftest.py here, as a
# second module named ``conftest`` would shadow tests/conftest.py for ``from conftest import``.

@pytest.fixture
def hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    root = tmp_path / "softhsm"
    root.mkdir()
    h = SoftHsm(root)
    h.init_token()
    monkeypatch.setenv("SOFTHSM2_CONF", str(h.conf))
    monkeypatch.setenv("SHIM_UPSTREAM_PIN", UP_PIN)
    return h


@pytest.fixture
def shim_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hsm: SoftHsm) -> Path:
    conf = write_config(tmp_path, slots=upstream_slot(hsm))
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    return conf


@pytest.fixture
def up_session(p11: P11) -> int:
    return ready_token(p11)
