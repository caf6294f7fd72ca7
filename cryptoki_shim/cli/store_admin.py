"""``store migrate``: copy the whole store to another database and verify the copy
(issue 19 item 5, `store/migrate.py`): SQLite -> PostgreSQL and back."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import config as config_mod
from .common import EXIT_CHECK, EXIT_CONFIG, EXIT_USAGE, CliError, emit


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("store", help="store administration (migrate)")
    ssub = p.add_subparsers(dest="store_command", required=True, metavar="store-command")
    m = ssub.add_parser("migrate", parents=[parent],
                        help="copy every token, PIN record and object into another (empty) database and verify it")
    m.add_argument("--to", required=True, metavar="URL",
                   help="the destination's SQLAlchemy URL (postgresql+psycopg://... or sqlite:///path); "
                        "${NAME} is expanded from the environment")
    m.add_argument("--from", dest="source", metavar="URL", default=None,
                   help="the source (default: the configured [store] url, with its password and TLS settings)")
    m.add_argument("--to-password-file", metavar="FILE", default=None,
                   help="file holding the destination's PostgreSQL password (not in the URL)")
    m.add_argument("--to-sslmode", default=None, choices=config_mod.STORE_KEYS["sslmode"].choices,
                   help="libpq sslmode of the destination")
    m.set_defaults(func=migrate)


def migrate(args: argparse.Namespace) -> int:
    from ..errors import CryptokiError
    from ..store import migrate as migrate_mod
    from ..store.pg import safe_url
    from ..store.store import Store

    if getattr(args, "config", None):
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    try:
        cfg = config_mod.load()
        to_url = config_mod.expand_env(args.to, "--to")
        source_url = config_mod.expand_env(args.source, "--from") if args.source else cfg.store_url
        to_connect: dict[str, Any] = {}
        if args.to_password_file:
            to_connect["password"] = config_mod.read_secret_file(args.to_password_file, "--to-password-file")
    except config_mod.ConfigError as exc:
        raise CliError(str(exc), EXIT_CONFIG) from None
    if args.to_sslmode:
        to_connect["sslmode"] = args.to_sslmode
    from_connect = cfg.store_connect if args.source is None else {}
    if safe_url(to_url) == safe_url(source_url):
        raise CliError("--to names the source store itself", EXIT_USAGE)
    try:
        with Store(source_url, create=False, connect=from_connect, connect_timeout=cfg.store_connect_timeout) as src, \
                Store(to_url, connect=to_connect, connect_timeout=cfg.store_connect_timeout) as dst:
            report = migrate_mod.copy(src, dst)
    except migrate_mod.MigrationError as exc:
        raise CliError(f"migration refused or not verified: {exc}", EXIT_CHECK) from None
    except CryptokiError as exc:
        raise CliError(str(exc)) from None
    data = {"ok": True, "from": safe_url(source_url), "to": safe_url(to_url), "slots": report.slots,
            "rows": report.rows, "sha256": report.digests}
    counts = ", ".join(f"{n} {t}" for t, n in report.rows.items())
    emit(args, data, f"copied {safe_url(source_url)} -> {safe_url(to_url)}: slots {report.slots}; {counts}; "
                     "verified (every table's rows and every token read back equal)\n"
                     "  next: point [store] url at the copy (same [store] key_file), then restart the applications")
    return 0
