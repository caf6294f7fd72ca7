"""The table (text) and the JSON report of one run."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.runner import FAIL, PASS, SKIP, ClientReport
from conformance.target import BUILD, Target


def table(reports: list[ClientReport]) -> str:
    rows = [("client", "checks passed", "failed", "skipped")]
    for r in reports:
        note = f"  (client skipped: {r.skipped_reason})" if r.skipped_reason else ""
        rows.append((r.client, str(r.count(PASS)), str(r.count(FAIL)), str(r.count(SKIP)) + note))
    rows.append(("total", *(str(sum(r.count(s) for r in reports)) for s in (PASS, FAIL, SKIP))))
    return _render(rows)


def side_by_side(targets: list[Target], all_reports: list[list[ClientReport]]) -> str:
    rows = [("client", *(f"{t.kind}: passed/failed/skipped" for t in targets))]
    for i, r in enumerate(all_reports[0]):
        rows.append((r.client, *(f"{rs[i].count(PASS)}/{rs[i].count(FAIL)}/{rs[i].count(SKIP)}"
                                 for rs in all_reports)))
    return _render(rows)


def differences(targets: list[Target], all_reports: list[list[ClientReport]]) -> str:
    """Checks whose status differs between modules: what docs/conformance.md explains."""
    lines = []
    for i, r in enumerate(all_reports[0]):
        by_name = [{o.name: o for o in rs[i].outcomes} for rs in all_reports]
        for name in dict.fromkeys(n for m in by_name for n in m):
            got = [m.get(name) for m in by_name]
            statuses = [g.status if g else "absent" for g in got]
            if len(set(statuses)) > 1:
                detail = "; ".join(f"{t.kind}={s}" + (f" ({g.reason.splitlines()[0][:140]})" if g and g.reason else "")
                                   for t, s, g in zip(targets, statuses, got))
                lines.append(f"  {r.client} / {name}: {detail}")
    return "\n".join(lines)


def failures(reports: list[ClientReport]) -> str:
    lines = []
    for r in reports:
        for o in r.outcomes:
            if o.status == FAIL:
                first = " | ".join(o.reason.splitlines()[:6])[:600]
                lines.append(f"  {r.client} / {o.name}: {first}")
    return "\n".join(lines)


def _render(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            out.append("-|-".join("-" * w for w in widths))
    return "\n".join(out)


def write_json(target: Target, reports: list[ClientReport], directory: Path = BUILD) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"conformance-{target.kind}.json"
    path.write_text(json.dumps({
        "module": str(target.module),
        "kind": target.kind,
        "totals": {s: sum(r.count(s) for r in reports) for s in (PASS, FAIL, SKIP)},
        "clients": [r.as_json() for r in reports],
    }, indent=2))
    return path
