"""docs/security.md names the test that keeps each attack closed: every name must exist.

A renamed or deleted test would otherwise leave the table promising a guard that is gone.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names.update(re.findall(r"^\s*def (test_\w+)", path.read_text(), re.M))
    return names


def test_every_test_named_in_the_security_doc_exists() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"`(test_[\w*]+)`", doc))
    assert len(named) > 40, "the attack table lost its test names"
    defined = _defined_tests()
    missing = sorted(n for n in named if not fnmatch.filter(defined, n))
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
