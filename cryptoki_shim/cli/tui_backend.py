"""What ``cryptoki-shim tui`` reads and runs: the admin commands, as child processes.

Every read is ``cryptoki-shim list --json`` / ``audit verify --json``, every action the same
command (``init-token``, ``set-pin``, ``import``, ``backup``), with the PINs passed in that
child's environment (``--pin-env``), never on a command line. No Textual here: the app
(tui_app.py) and the tests use it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .. import config as config_mod

#: the environment variables the actions hand secrets to the child command in
SECRET_VARS = {"pin": "CRYPTOKI_SHIM_TUI_PIN", "so-pin": "CRYPTOKI_SHIM_TUI_SO_PIN",
               "new-pin": "CRYPTOKI_SHIM_TUI_NEW_PIN", "old-pin": "CRYPTOKI_SHIM_TUI_OLD_PIN",
               "password": "CRYPTOKI_SHIM_TUI_PASSWORD", "passphrase": "CRYPTOKI_SHIM_TUI_PASSPHRASE"}
AUDIT_TAIL = 200


class Backend:
    """The TUI's access to the token: the admin commands, run as child processes."""

    def __init__(self, config: str | None = None) -> None:
        self.config = os.path.abspath(config) if config else None

    def command(self, *argv: str, secrets: dict[str, str] | None = None) -> tuple[int, Any]:
        """``cryptoki-shim ARGV --json`` with ``secrets`` ({option name: value}) passed as
        ``--<name>-env``; (exit code, the parsed JSON output)."""
        env = dict(os.environ)
        opts: list[str] = []
        for name, value in (secrets or {}).items():
            env[SECRET_VARS[name]] = value
            opts += [f"--{name}-env", SECRET_VARS[name]]
        if self.config:
            opts += ["--config", self.config]
        proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *argv, *opts, "--json"], env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            data = {"ok": False, "error": proc.stdout.strip()[-300:] or proc.stderr.strip()[-300:]}
        if proc.returncode and not data.get("error"):
            data["error"] = proc.stderr.strip()[-300:] or f"exit {proc.returncode}"
        return proc.returncode, data

    def slots(self, pin: str | None = None, slot: int | None = None) -> list[dict[str, Any]]:
        argv = ["list"] + (["--slot", str(slot)] if slot is not None else [])
        code, data = self.command(*argv, secrets={"pin": pin} if pin else None)
        if code:
            raise RuntimeError(data.get("error") or f"list: exit {code}")
        return list(data["slots"])

    # ------------------------------------------------------------------ audit

    def audit_file(self) -> str | None:
        if self.config:
            os.environ["CRYPTOKI_SHIM_CONF"] = self.config
        try:
            file = config_mod.load().audit.get("file")
        except config_mod.ConfigError:
            return None
        return os.path.expanduser(file) if file else None

    def audit(self) -> tuple[str, list[dict[str, Any]], Counter[str]]:
        """(verification status line, the last records, key.use count per key unique id)."""
        path = self.audit_file()
        if path is None:
            return "no audit log ([audit] file is not set)", [], Counter()
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"{path}: {exc.strerror}", [], Counter()
        records: list[dict[str, Any]] = []
        uses: Counter[str] = Counter()
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "key.use" and rec.get("key_unique_id"):
                uses[rec["key_unique_id"]] += 1
            records.append(rec)
        code, data = self.command("audit", "verify", path)
        if code == 0:
            status = (f"verified: {data.get('records')} records, {data.get('runs')} runs, MAC chain and ledger "
                      "intact")
        else:
            problems = data.get("problems") or [{"problem": data.get("error", f"exit {code}")}]
            status = f"VERIFY FAILED: {len(problems)} problem(s), first: {problems[0].get('problem')}"
        return status, records[-AUDIT_TAIL:], uses
