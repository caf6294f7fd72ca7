"""``config-reference`` (writes docs/configuration.md) and ``config-check`` (validate a file)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import diagnostics
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
    """Validate the file, then report what would fail in this environment (diagnostics.py):
    each problem names the file, key and fix; any is exit 3."""
    if args.config:
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    found = diagnostics.problems(cfg)
    if found:
        raise CliError("; ".join(map(str, found)), EXIT_CONFIG)
    searched = [str(p) for p in config_mod.search_paths()]
    data = {"ok": True, "source": cfg.source, "store": cfg.store_url, "slots": [s.id for s in cfg.slots],
            "audit": bool(cfg.audit.get("file") or cfg.audit.get("syslog")), "searched": searched}
    where = (cfg.source if cfg.source != "<defaults>"
             else f"<defaults> (no file: CRYPTOKI_SHIM_CONF unset, none of {', '.join(searched)})")
    emit(args, data, f"{where}: valid; store {cfg.store_url}; slots {data['slots']}")
    return 0
