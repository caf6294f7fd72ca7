"""``audit verify FILE...``: check an audit log's MAC chain, sequence and checkpoints.

The key and the ledger come from the configuration in force (``[audit] key_file``, else
``audit.key`` next to the SQLite store; ``audit.ledger`` beside the key), or from
``--key-file`` / ``--ledger`` when the log is checked on another machine. Several files
(a rotated log and its successor) are checked as one log, in the order given.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import audit
from .. import config as config_mod
from .common import CliError, EXIT_CHECK, EXIT_CONFIG, EXIT_USAGE, emit, table

#: Problems listed in the human output (a rebuilt chain fails on every record).
SHOWN = 50


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("audit", parents=[parent], help="audit log tools")
    inner = p.add_subparsers(dest="audit_command", required=True, metavar="audit-command")
    v = inner.add_parser("verify", parents=[parent],
                         help="detect edited, forged, deleted, reordered or cut records (MAC chain + ledger)")
    v.add_argument("file", type=Path, nargs="+", help="the log; several files are one log in this order")
    v.add_argument("--key-file", type=Path, help="the audit key (default: from the configuration)")
    v.add_argument("--ledger", type=Path, help="the checkpoint ledger (default: audit.ledger beside the key)")
    v.add_argument("--no-ledger", action="store_true",
                   help="check without the ledger: a cut tail or a deleted whole run then goes unseen")
    v.set_defaults(func=verify)


def _key_file(args: argparse.Namespace) -> str:
    if getattr(args, "config", None):
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        raise CliError(f"configuration: {exc}", EXIT_CONFIG) from None
    path = str(args.key_file) if args.key_file else audit.key_path(cfg.audit, cfg.store_url)
    if path is None:
        raise CliError("no audit key: give --key-file (the store is not a SQLite file and [audit] key_file is unset)",
                       EXIT_USAGE)
    return path


def _read(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            text = f.read()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    except UnicodeDecodeError as exc:
        raise CliError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})", EXIT_CHECK) from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # a last line without its newline stays: a torn or cut record fails to parse
    return lines


def verify(args: argparse.Namespace) -> int:
    if args.ledger and args.no_ledger:
        raise CliError("give --ledger or --no-ledger, not both", EXIT_USAGE)
    key_file = _key_file(args)
    try:
        key = audit.load_key(key_file, create=False)
    except audit.AuditKeyError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    lines: list[str] = []
    where: list[tuple[int, Path]] = []  # (first global line number, file)
    for path in args.file:
        where.append((len(lines) + 1, path))
        lines += _read(path)
    ledger_file = None if args.no_ledger else (args.ledger or Path(audit.ledger_path(key_file)))
    ledger = None
    missing_ledger = False
    if ledger_file is not None:
        if ledger_file.exists():
            ledger = _read(ledger_file)
        else:
            missing_ledger = True
    # Whole-run deletion is judged only for runs the ledger says went to one of these files:
    # after a rotation, processes that still hold the old file append to it while new runs
    # go to the new one (verify both together, old first).
    report = audit.verify(lines, key, ledger, [str(p) for p in args.file])

    def locate(number: int) -> str:
        if number == 0:
            return "ledger"
        start, path = max((w for w in where if w[0] <= number), key=lambda w: w[0])
        return f"{path}:{number - start + 1}" if len(where) > 1 else str(number)

    problems = [{"line": locate(p.line), "problem": p.what} for p in report.problems]
    if missing_ledger:
        problems.insert(0, {"line": "ledger", "problem": f"{ledger_file} does not exist: a cut run tail or a deleted "
                                                         "run cannot be checked (--no-ledger to accept that)"})
    ok = not problems
    runs = [{"run": r.run, "pid": r.pid, "records": r.records, "last_seq": r.last_seq,
             "last_checkpoint": r.checkpoint_seq, "unprotected": r.unprotected} for r in report.runs.values()]
    tails = [r for r in runs if r["unprotected"]]
    data = {"ok": ok, "records": report.records, "runs": len(runs), "checkpoints": report.checkpoints,
            "key_file": key_file, "key_id": audit.key_id(key),
            "ledger": None if ledger_file is None else str(ledger_file), "ledger_entries": report.ledger_entries,
            "ledger_runs_elsewhere": report.runs_elsewhere, "unprotected_records": sum(r["unprotected"] for r in runs),
            "problems": problems, "run_details": runs}
    summary = (f"{report.records} records from {len(runs)} process run(s), {report.checkpoints} checkpoints, "
               f"MACs checked with {key_file} (key_id {data['key_id']}), "
               + ("no ledger" if ledger_file is None else f"ledger {ledger_file} ({report.ledger_entries} entries)")
               + ": " + ("no deletion or edit detected" if ok else f"{len(problems)} problem(s)"))

    def human() -> str:
        out = [summary]
        if tails:
            out.append(f"{data['unprotected_records']} record(s) after their run's last checkpoint (their loss "
                       "would not be detected; a run cut there ended without C_Finalize or is still running):")
            out.append(table(tails, ["run", "pid", "last_seq", "last_checkpoint", "unprotected"]))
        if not ok:
            out.append(table(problems[:SHOWN], ["line", "problem"]))
            if len(problems) > SHOWN:
                out.append(f"  ... and {len(problems) - SHOWN} more (--json lists them all)")
        return "\n".join(out)

    emit(args, data, human)
    return 0 if ok else EXIT_CHECK
