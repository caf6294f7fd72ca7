"""The README's first command: the demo runs and says everything verified."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", "demo"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "demo finished: everything verified" in proc.stdout
    assert "FAILED" not in proc.stdout
    assert "(MAC-chained)" in proc.stdout and "hash-chain" not in proc.stdout  # the audit log has a keyed MAC chain
