"""The module under test and a fresh token on it, for one client.

Two kinds are provisioned: our library (a private TOML configuration and SQLite store named by
``CRYPTOKI_SHIM_CONF``, token initialized through the C ABI by pkcs11-tool) and SoftHSM2 (a
private ``SOFTHSM2_CONF`` token directory, token made by ``softhsm2-util --init-token --free``).
Every client gets its own token so that one client's PIN changes or leftovers never reach
another. Clients see the token only through ``env``, ``label``, ``pin`` and ``so_pin``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
CACHE = BUILD / "conformance-cache"

PIN = "1234"
SO_PIN = "12345678"
LABEL = "conformance"


class Unavailable(Exception):
    """The module cannot be provisioned here (missing tool)."""


class Skip(Exception):
    """The check cannot run here (missing program, unsupported by this client build ...).

    Defined here, under the runner (which re-exports it), because ``Context.need`` raises it:
    the runner imports this module, never the other way round (issue 16 item 5)."""


def module_kind(path: Path) -> str:
    name = path.name.lower()
    if "softhsm" in name:
        return "softhsm2"
    if "cryptoki_shim" in name:
        return "cryptoki-shim"
    return name.removeprefix("lib").split(".")[0]


@dataclass
class Proc:
    argv: list[str]
    rc: int
    out: str
    err: str

    def text(self) -> str:
        return f"$ {' '.join(self.argv)}\nrc={self.rc}\n{self.out[-1500:]}\n{self.err[-1500:]}"


@dataclass
class Target:
    """A module to test; ``fresh(client)`` makes the per-client token."""

    module: Path
    keep: bool = False

    @property
    def kind(self) -> str:
        return module_kind(self.module)

    def fresh(self, client: str, slot_options: str = "") -> "Context":
        work = Path(tempfile.mkdtemp(prefix=f"conf-{self.kind}-{client}-"))
        env = dict(os.environ)
        for var in ("CRYPTOKI_SHIM_CONF", "SOFTHSM2_CONF", "P11_KIT_SERVER_ADDRESS", "SSH_AUTH_SOCK"):
            env.pop(var, None)
        ctx = Context(self, work, env)
        if self.kind == "softhsm2":
            tokens = work / "tokens"
            tokens.mkdir()
            conf = work / "softhsm2.conf"
            conf.write_text(f"directories.tokendir = {tokens}/\nobjectstore.backend = file\n"
                            "log.level = ERROR\nslots.removable = false\n")
            env["SOFTHSM2_CONF"] = str(conf)
            ctx.must(["softhsm2-util", "--init-token", "--free", "--label", LABEL,
                      "--so-pin", SO_PIN, "--pin", PIN])
        else:
            conf = work / "config.toml"
            conf.write_text(f'[store]\nurl = "sqlite:///{work / "store.db"}"\n\n{self._python_table()}'
                            '[[slots]]\nid = 0\nkdf_cost = "test"\n' + slot_options)
            env["CRYPTOKI_SHIM_CONF"] = str(conf)
            ctx.init_token_with_pkcs11_tool()
        return ctx


    def _python_table(self) -> str:
        """[python] venv for the library built in this tree: its environment named as an
        installed configuration names it, so a copy of the library loaded from elsewhere
        (PyKCS11's test_load copies it to a temporary directory) finds it too
        (native/pyenv.c, docs/install.md). Another module finds its own."""
        venv = ROOT / ".venv"
        if self.module.resolve() != (BUILD / "libcryptoki_shim.so").resolve() or not (venv / "pyvenv.cfg").exists():
            return ""
        return f'[python]\nvenv = "{venv}"\n\n'


@dataclass
class Context:
    """One client's view: its work directory, environment and the fresh token."""

    target: Target
    work: Path
    env: dict[str, str]
    label: str = LABEL
    pin: str = PIN
    so_pin: str = SO_PIN
    results: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Any] = field(default_factory=list)

    @property
    def module(self) -> str:
        return str(self.target.module)

    @property
    def kind(self) -> str:
        return self.target.kind

    # ---------------------------------------------------------------- processes

    def run(self, argv: list[str], *, timeout: float = 60, input: str | bytes | None = None,
            env: dict[str, str] | None = None, cwd: Path | None = None, setsid: bool = False) -> Proc:
        binary = isinstance(input, bytes)
        try:
            p = subprocess.run(argv, env=env or self.env, cwd=cwd or self.work, input=input,
                               capture_output=True, text=not binary, timeout=timeout,
                               start_new_session=setsid)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from None
        out, err = (p.stdout, p.stderr) if not binary else (p.stdout.decode(errors="replace"),
                                                              p.stderr.decode(errors="replace"))
        return Proc(list(argv), p.returncode, out, err)

    def must(self, argv: list[str], **kw: Any) -> Proc:
        p = self.run(argv, **kw)
        if p.rc != 0:
            raise AssertionError(p.text())
        return p

    def tool(self, *args: str, login: bool = False, **kw: Any) -> Proc:
        """pkcs11-tool on this module and token (by label: SoftHSM2 renumbers its slots)."""
        argv = ["pkcs11-tool", "--module", self.module, "--token-label", self.label]
        if login:
            argv += ["--login", "--pin", self.pin]
        return self.must(argv + list(args), **kw)

    def init_token_with_pkcs11_tool(self) -> None:
        base = ["pkcs11-tool", "--module", self.module]
        if shutil.which("pkcs11-tool") is None:
            raise Unavailable("pkcs11-tool (opensc) is not installed")
        self.must(base + ["--slot-index", "0", "--init-token", "--label", self.label, "--so-pin", self.so_pin])
        self.must(base + ["--token-label", self.label, "--init-pin", "--login", "--login-type", "so",
                          "--so-pin", self.so_pin, "--pin", self.pin])

    # ---------------------------------------------------------------- helpers

    def need(self, *checks: str) -> None:
        """Skip unless the named earlier checks passed."""
        for name in checks:
            status = self.results.get(name)
            if status != "passed":
                raise Skip(f"needs {name!r}, which {status or 'did not run'}")

    def path(self, name: str) -> Path:
        return self.work / name

    def close(self) -> None:
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:
                pass
        if not self.target.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
