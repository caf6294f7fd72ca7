"""``audit verify FILE``: check sequence numbers and the hash chain of an audit log."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import audit
from .common import CliError, EXIT_CHECK, EXIT_USAGE, emit, table


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("audit", parents=[parent], help="audit log tools")
    inner = p.add_subparsers(dest="audit_command", required=True, metavar="audit-command")
    v = inner.add_parser("verify", parents=[parent], help="detect deleted, edited or reordered records")
    v.add_argument("file", type=Path)
    v.set_defaults(func=verify)


def verify(args: argparse.Namespace) -> int:
    try:
        with open(args.file, encoding="utf-8") as f:
            report = audit.verify(f)
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror}", EXIT_USAGE) from None
    problems = [{"line": p.line, "problem": p.what} for p in report.problems]
    data = {"ok": report.ok, "records": report.records, "runs": report.runs, "chained": report.chained,
            "problems": problems}
    summary = (f"{report.records} records from {report.runs} process run(s), {report.chained} hash-chained: "
               + ("no deletion or edit detected" if report.ok else f"{len(problems)} problem(s)"))
    emit(args, data, lambda: summary + ("" if report.ok else "\n" + table(problems, ["line", "problem"])))
    return 0 if report.ok else EXIT_CHECK
