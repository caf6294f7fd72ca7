"""The runner: clients are lists of checks; a check passes, fails or skips with a reason.

A client whose programs are missing is reported as skipped with the reason, never absent and
never counted as passed (issue 7 rules). Checks of one client run in order on one fresh token
and may depend on earlier ones (``ctx.need``): a check whose prerequisite failed is skipped,
naming the prerequisite, so one bug is counted once.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from conformance.target import Context, Skip, Target  # Skip: re-exported for the clients

log = logging.getLogger(__name__)

PASS, FAIL, SKIP = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[[Context], Any]
    cites: str = ""           # spec section or client behaviour the check stands for


@dataclass
class Outcome:
    name: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    cites: str = ""


@dataclass
class ClientReport:
    client: str
    description: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped_reason: str = ""

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def as_json(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "description": self.description,
            "passed": self.count(PASS),
            "failed": self.count(FAIL),
            "skipped": self.count(SKIP),
            "skipped_reason": self.skipped_reason,
            "checks": [o.__dict__ for o in self.outcomes],
        }


def check(name: str, cites: str = "") -> Callable[[Callable[[Context], Any]], Check]:
    """Decorator: turn ``def f(ctx)`` into a ``Check`` (collected by the client's CHECKS list)."""

    def wrap(fn: Callable[[Context], Any]) -> Check:
        return Check(name, fn, cites)

    return wrap


def run_check(ctx: Context, c: Check) -> Outcome | list[Outcome]:
    t0 = time.monotonic()
    try:
        expanded = c.fn(ctx)
        if isinstance(expanded, list):  # a suite: one outcome per test of the third-party suite
            ctx.results[c.name] = FAIL if any(o.status == FAIL for o in expanded) else PASS
            return expanded
        status, reason = PASS, ""
    except Skip as exc:
        status, reason = SKIP, str(exc)
    except AssertionError as exc:
        status, reason = FAIL, str(exc) or "assertion failed"
    except Exception as exc:  # a crash of the check is a failure, with where it happened
        status = FAIL
        reason = f"{type(exc).__name__}: {exc} ({traceback.extract_tb(exc.__traceback__)[-1].lineno})"
    ctx.results[c.name] = status
    return Outcome(c.name, status, reason.strip()[:2000], round(time.monotonic() - t0, 2), c.cites)


def run_client(target: Target, modname: str, only: set[str] | None = None) -> ClientReport:
    mod = importlib.import_module(f"conformance.clients.{modname}")
    report = ClientReport(mod.NAME, mod.DESCRIPTION)
    missing = mod.requires(target)
    if missing:
        report.skipped_reason = missing
        report.outcomes = [Outcome(c.name, SKIP, missing, 0.0, c.cites) for c in mod.checks(target)]
        return report
    ctx = target.fresh(mod.NAME, getattr(mod, "SLOT_OPTIONS", ""))
    try:
        for c in mod.checks(target):
            if only and c.name not in only:
                continue
            got = run_check(ctx, c)
            report.outcomes.extend(got if isinstance(got, list) else [got])
            log.info("%s %s: %s", mod.NAME, c.name, ctx.results.get(c.name))
    finally:
        ctx.close()
    return report
