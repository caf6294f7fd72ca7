"""``config-reference`` (writes docs/configuration.md) and ``config-check`` (validate a file)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import audit, private_files
from .. import config as config_mod
from .. import config_reference
from .common import CliError, EXIT_CONFIG, emit


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config-reference", parents=[parent], help="print (or write) the configuration reference")
    p.add_argument("-o", "--output", type=Path, help="file to write (docs/configuration.md)")
    p.set_defaults(func=reference)
    p = sub.add_parser("config-check", parents=[parent], help="validate the configuration in force")
    p.set_defaults(func=check)


def reference(args: argparse.Namespace) -> int:
    text = config_reference.render()
    if args.output:
        args.output.write_text(text)
        emit(args, {"ok": True, "file": str(args.output)}, f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def check(args: argparse.Namespace) -> int:
    if args.config:
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    problems = [f"{cfg.source}: {key} = {path!r}: {why}" for key, path in _files_written(cfg)
                if (why := _cannot_write(path))]
    if (why := _audit_key_problem(cfg)) is not None:
        problems.append(f"{cfg.source}: {why}")
    if problems:
        raise CliError("; ".join(problems), EXIT_CONFIG)
    data = {"ok": True, "source": cfg.source, "store": cfg.store_url, "slots": [s.id for s in cfg.slots],
            "audit": bool(cfg.audit.get("file") or cfg.audit.get("syslog"))}
    emit(args, data, f"{cfg.source}: valid; store {cfg.store_url}; slots {data['slots']}")
    return 0


def _files_written(cfg: config_mod.Config) -> list[tuple[str, str]]:
    """The files the module appends to, by their config key: the module never fails a call
    because one cannot be opened (it logs and goes on), so this is where an operator learns it."""
    files = [("[audit] file", cfg.audit.get("file")), ("[audit] key_file", cfg.audit.get("key_file"))]
    if cfg.log_file != "stderr":
        files.append(("[log] file", cfg.log_file))
    return [(key, os.path.expanduser(path)) for key, path in files if path]


def _audit_key_problem(cfg: config_mod.Config) -> str | None:
    """Why the module would write no audit records for want of its key (None: no such
    problem): no place for the key, or a key file group or others can access (refused)."""
    if not (cfg.audit.get("file") or cfg.audit.get("syslog")):
        return None
    path = audit.key_path(cfg.audit, cfg.store_url)
    if path is None:
        return "[audit] key_file is not set and the store is not a SQLite file to put audit.key next to"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # made on first use; a key_file's directory is checked with the files written
    if not private_files.is_private(mode):
        return f"[audit] key {path!r}: mode {mode & 0o777:04o}, group/others have access (chmod 600)"
    return None


def _cannot_write(path: str) -> str | None:
    """Why this user could not create or append to ``path`` (None: it could)."""
    target = Path(path)
    if target.is_dir():
        return "is a directory"
    if target.exists():
        return None if os.access(target, os.W_OK) else "the file is not writable"
    parent = target.parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"the directory {parent} is not writable"
    return None
