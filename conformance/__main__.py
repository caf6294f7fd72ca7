"""``python -m conformance [--module PATH ...] [--client NAME ...] [--check NAME ...]``.

Without ``--module`` it runs our built library and, when installed, SoftHSM2 (what
``make conformance`` shows). Exit status 1 when the first module (ours by default) failed a
check, so CI can gate on it; the other modules are references and never fail the run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from conformance import report
from conformance.clients import CLIENTS
from conformance.runner import run_client
from conformance.target import BUILD, Target

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    ap.add_argument("--module", action="append", type=Path,
                    help="a PKCS#11 module to test (repeatable); default: ours and SoftHSM2")
    ap.add_argument("--client", action="append", choices=CLIENTS, help="only these clients")
    ap.add_argument("--check", action="append", help="only checks with these names")
    ap.add_argument("--json-dir", type=Path, default=BUILD)
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    modules = args.module or [BUILD / "libcryptoki_shim.so"] + ([SOFTHSM] if SOFTHSM.exists() else [])
    targets = [Target(m.resolve(), keep=args.keep) for m in modules]
    clients = args.client or list(CLIENTS)
    only = set(args.check) if args.check else None
    all_reports = []
    for t in targets:
        if not t.module.exists():
            print(f"{t.module}: not found", file=sys.stderr)
            return 2
        reports = [run_client(t, c, only) for c in clients]
        all_reports.append(reports)
        path = report.write_json(t, reports, args.json_dir)
        print(f"\n== {t.kind} ({t.module})\n{report.table(reports)}\nreport: {path}")
        fails = report.failures(reports)
        if fails:
            print(f"failures:\n{fails}")
    if len(targets) > 1:
        print(f"\n== side by side\n{report.side_by_side(targets, all_reports)}")
        diff = report.differences(targets, all_reports)
        if diff:
            print(f"\ndifferences:\n{diff}")
    first = all_reports[0]
    return 1 if any(r.count("failed") for r in first) else 0


if __name__ == "__main__":
    sys.exit(main())
