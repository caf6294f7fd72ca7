"""``stats``: the counters and latencies the module wrote to its ``[metrics] file``.

Reads the file(s) the library writes (metrics.py; with ``{pid}`` in the name, every process's
file, summed), so it shows what the clients did, not this command's own process.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import metrics
from .common import CliError, EXIT_CONFIG, EXIT_USAGE, emit, table

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("stats", parents=[parent], help="operations, errors, logins and latencies the module counted "
                                                        "([metrics] file)")
    p.add_argument("--file", action="append", default=[], metavar="PATH",
                   help="a metrics file to read (default: [metrics] file of the configuration, every {pid})")
    p.set_defaults(func=stats)


def _files(args: argparse.Namespace) -> list[str]:
    if args.file:
        return [str(f) for f in args.file]
    if args.config:
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as exc:
        raise CliError(f"configuration: {exc}", EXIT_CONFIG) from None
    pattern = cfg.metrics.get("file")
    if not pattern:
        raise CliError(f"{cfg.source}: [metrics] file is not set: the module keeps no metrics (set it, "
                       "see docs/cli.md \"Metrics\")", EXIT_USAGE)
    return sorted(glob.glob(glob.escape(os.path.expanduser(pattern)).replace("{pid}", "*")))


def parse(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample of an exposition text."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if m:
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in LABEL.findall(m.group(2) or "")}
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def _quantile(buckets: list[tuple[float, float]], q: float) -> str:
    """The upper bound of the bucket holding the ``q`` quantile (a histogram's resolution)."""
    total = buckets[-1][1] if buckets else 0
    for bound, cumulative in buckets:
        if total and cumulative >= q * total:
            return "> 10 s" if bound == float("inf") else f"<= {_ms(bound)}"
    return ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def stats(args: argparse.Namespace) -> int:
    files = _files(args)
    summed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    for f in files:
        try:
            text = Path(f).read_text()
        except OSError as exc:
            raise CliError(f"{f}: {exc.strerror}", EXIT_USAGE) from None
        for name, labels, value in parse(text):
            summed[(name, tuple(sorted(labels.items())))] += value
    p = metrics.PREFIX
    ops: list[dict[str, Any]] = []
    hist: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    sums: dict[tuple[str, str, str], float] = {}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (name, labels_t), value in sorted(summed.items()):
        labels = dict(labels_t)
        if name == f"{p}operations_total":
            ops.append({**labels, "count": int(value)})
        elif name == f"{p}operation_seconds_bucket":
            key = (labels["slot"], labels["mechanism"], labels["operation"])
            hist[key].append((float(labels["le"].replace("+Inf", "inf")), value))
        elif name == f"{p}operation_seconds_sum":
            sums[(labels["slot"], labels["mechanism"], labels["operation"])] = value
        elif name.endswith("_total"):
            rows[name[len(p):-len("_total")]].append({**labels, "count": int(value)})
    latency = []
    for series, buckets in sorted(hist.items()):
        buckets.sort()
        n = buckets[-1][1]
        latency.append({"slot": series[0], "mechanism": series[1], "operation": series[2], "count": int(n),
                        "mean": _ms(sums.get(series, 0.0) / n) if n else "", "p50": _quantile(buckets, 0.5),
                        "p99": _quantile(buckets, 0.99)})
    data = {"ok": True, "files": files, "operations": ops, "latency": latency, **rows}

    def human() -> str:
        parts = [f"from {', '.join(files) or '(no file written yet)'}", "",
                 "operations", table(ops, ["slot", "mechanism", "operation", "outcome", "count"]), "",
                 "latency (C_*Init to the end of the operation)",
                 table(latency, ["slot", "mechanism", "operation", "count", "mean", "p50", "p99"])]
        for family, columns in (("errors", ["function", "ckr", "count"]),
                                ("logins", ["slot", "user", "outcome", "count"]),
                                ("lockouts", ["slot", "user", "count"]),
                                ("backend_round_trips", ["backend", "target", "outcome", "count"])):
            parts += ["", family.replace("_", " "), table(rows.get(family, []), columns)]
        return "\n".join(parts)

    emit(args, data, human)
    return 0
