"""The admin CLI as an operator runs it: a separate process on a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SO_PIN, USER_PIN = "so-Pin-5531", "user-Pin-8842"


class Cli:
    SO_PIN, USER_PIN = SO_PIN, USER_PIN

    def __init__(self, conf: Path, work: Path) -> None:
        self.conf, self.work = conf, work
        self.env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), SO=SO_PIN, UP=USER_PIN)

    def run(self, *args: str, rc: int | None = 0, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *args], cwd=self.work,
                              env={**self.env, **env}, capture_output=True, text=True, timeout=120)
        if rc is not None:
            assert proc.returncode == rc, f"exit {proc.returncode}, wanted {rc}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def json(self, *args: str, rc: int | None = 0, **env: str) -> Any:
        return json.loads(self.run(*args, "--json", rc=rc, **env).stdout)

    def objects(self, slot: int = 0, pin: bool = True) -> list[dict[str, Any]]:
        data = self.json("list", "--slot", str(slot), *(["--pin-env", "UP"] if pin else []))
        return data["slots"][0]["objects"]


def make_config(work: Path, extra: str = "", max_failures: int = 10) -> Path:
    conf = work / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{work / "store.db"}"\n{extra}\n'
                    f'[[slots]]\nid = 0\nkdf_cost = "test"\nmax_pin_failures = {max_failures}\n')
    return conf


@pytest.fixture
def new_cli(tmp_path: Path):
    """A factory: ``new_cli(extra=..., max_failures=...)`` -> Cli on its own fresh store."""
    count = iter(range(100))

    def make(extra: str = "", max_failures: int = 10) -> Cli:
        work = tmp_path / f"w{next(count)}"
        work.mkdir()
        return Cli(make_config(work, extra, max_failures), work)

    return make


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A fresh store with no token yet."""
    return Cli(make_config(tmp_path), tmp_path)


@pytest.fixture
def ready(cli: Cli) -> Cli:
    """A token in slot 0 with SO and user PINs set."""
    cli.run("init-token", "--label", "cli-test", "--so-pin-env", "SO", "--pin-env", "UP")
    return cli
