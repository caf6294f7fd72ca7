"""The lint step's tools catch the slips issue 16 item 6 named, with this repository's settings.

scripts/lint.py runs ruff, mypy and vulture over the tree before the suite (``make test``); here
each tool is shown a small module with one slip and must report it, so a settings change that
silences a check fails the suite. (Pure Python, no library needed.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = str(ROOT / "pyproject.toml")

SLIPS = '''
import os


def dead() -> int:
    return 1


def live(flag: bool) -> int:
    if isinstance(flag, bool):
        return 1
    return 2
'''


def tool(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=cwd, capture_output=True, text=True)


def test_lint_tools_report_unused_unreachable_and_dead_code(tmp_path: Path) -> None:
    (tmp_path / "slips.py").write_text(SLIPS + "\n\nlive(True)\n")
    ruff = tool("ruff", "check", "--config", PYPROJECT, "--output-format", "concise", "slips.py", cwd=tmp_path)
    assert ruff.returncode != 0 and "F401" in ruff.stdout, ruff.stdout  # unused import
    mypy = tool("mypy", "--config-file", PYPROJECT, "--cache-dir", str(tmp_path / "cache"), "slips.py", cwd=tmp_path)
    assert mypy.returncode != 0 and "[unreachable]" in mypy.stdout, mypy.stdout
    vulture = tool("vulture", "--config", PYPROJECT, "slips.py", cwd=tmp_path)
    assert "unused function 'dead'" in vulture.stdout, vulture.stdout


def test_lint_step_passes_on_the_tree() -> None:
    """What ``make test`` runs first; green here means the step is green."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint.py")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
