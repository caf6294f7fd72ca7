"""Our own table of PKCS#11 3.0 clauses (conformance/clauses.py), each row citing its section,
run through the C ABI in a child process."""

from __future__ import annotations

import json
import sys

from conformance import clauses
from conformance.runner import Check, Outcome
from conformance.target import Context, Target

NAME = "spec-clauses"
DESCRIPTION = "PKCS#11 3.0 return codes, buffer protocol, state and attribute rules via the C ABI"


def requires(target: Target) -> str | None:
    return None


def run(ctx: Context) -> list[Outcome]:
    out = ctx.path("clauses.json")
    p = ctx.run([sys.executable, "-m", "conformance.clauses", ctx.module, ctx.label, ctx.pin, ctx.so_pin, str(out)],
                timeout=300, cwd=clauses.ROOT)
    if not out.exists():
        raise AssertionError(f"the clause runner crashed:\n{p.text()}")
    return [Outcome(name, status, reason, 0.0, section) for name, section, status, reason in json.loads(out.read_text())]


def checks(target: Target) -> list[Check]:
    return [Check("clauses", run, "PKCS#11 3.0 base specification")]
