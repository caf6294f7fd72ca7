"""Fixtures of the upstream tests: a private SoftHSM2 token per test (see upstream_hsm.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p11 import P11
from upstream_hsm import UP_PIN, SoftHsm, ready_token, upstream_slot, write_config


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



def pytest_collection_modifyitems(items):
    from upstream_hsm import HAVE_SOFTHSM

    if not HAVE_SOFTHSM:
        for item in items:
            if "upstream" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason="SoftHSM2 is not installed"))
