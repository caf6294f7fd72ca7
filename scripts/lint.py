"""The lint step of ``make test`` (issue 16 item 6): slips that no test catches fail the build.

* ruff: unused imports and variables, redefinitions, undefined names, likely bugs (bugbear),
  stale ``# noqa`` (pyproject ``[tool.ruff]``), over the whole repository;
* mypy: types of ``cryptoki_shim``, with unreachable code and unused ``# type: ignore`` as
  errors (``[tool.mypy]``; its cache is build/mypy_cache);
* vulture: functions, classes and names nothing uses (``[tool.vulture]``, plus
  scripts/vulture_whitelist.py for what is used from C or by a protocol). The tests are
  scanned as users of the package; findings inside tests/ are not reported (ruff covers them).

Each tool runs with the settings of pyproject.toml; the step fails when any tool finds
anything. Usage: ``.venv/bin/python scripts/lint.py`` (``make lint``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(name: str, argv: list[str], keep=lambda line: True) -> bool:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True)
    out = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip() and keep(line)]
    # vulture exits 3 when it found dead code; the filter decides what counts.
    ok = (proc.returncode == 0 or name == "vulture") and not (name == "vulture" and out)
    if name == "vulture" and proc.returncode not in (0, 3):
        ok = False
    print(f"lint: {name} {'ok' if ok else 'FAILED'} ({time.perf_counter() - start:.1f} s)", flush=True)
    if not ok:
        print("\n".join(out), flush=True)
    return ok


def main() -> int:
    results = [
        run("ruff", ["ruff", "check", "--quiet", "--output-format", "concise", "."]),
        run("mypy", ["mypy"]),  # files, cache and checks: [tool.mypy]
        run("vulture", ["vulture"], keep=lambda line: not line.startswith("tests/")),  # paths: [tool.vulture]
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
