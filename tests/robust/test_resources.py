"""Leaks: RSS after many calls stays within a few percent of RSS after the first ones.

``make soak`` (CRYPTOKI_SHIM_SOAK=long): 10^6 sign calls and 10^4 open/close-session and
create/destroy-object cycles, RSS at the end within 5 % of RSS after the first 10^4.
The normal suite runs a short version (2x10^4 signs, 2x10^3 cycles) with a bound that
still catches a leak of a few hundred bytes per call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from p11 import P11

LONG = os.environ.get("CRYPTOKI_SHIM_SOAK") == "long"
WORKER = Path(__file__).resolve().parent / "rss_worker.py"

#: kind -> (baseline after, total, allowed growth in percent, allowed growth in KiB (short runs))
PROFILES = {
    "sign": (10_000, 1_000_000, 5.0, None) if LONG else (5_000, 20_000, 5.0, 2048),
    "session": (10_000, 20_000, 5.0, None) if LONG else (500, 2_000, 5.0, 2048),
    "object": (10_000, 20_000, 5.0, None) if LONG else (500, 2_000, 5.0, 2048),
}


def measure(kind: str, base: int, total: int) -> tuple[int, int]:
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, str(WORKER), kind, str(total), str(base), str(w)], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        lines = f.read().decode().split()
    _, err = proc.communicate(timeout=3600)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    rss = [int(x) for x in lines[1::2]]
    return rss[0], rss[1]


@pytest.mark.soak
@pytest.mark.parametrize("kind", sorted(PROFILES))
def test_rss_stays_flat(token: P11, shim_conf: Path, kind: str) -> None:
    base, total, pct, slack = PROFILES[kind]
    first, last = measure(kind, base, total)
    growth = last - first
    print(f"\nSOAK {kind}: calls={total} rss_after_{base}={first} KiB rss_after_{total}={last} KiB "
          f"growth={growth} KiB ({100.0 * growth / first:.2f} %)")
    limit = max(first * pct / 100.0, 0) if slack is None else min(first * pct / 100.0, slack)
    assert growth <= limit, f"RSS grew by {growth} KiB over {total - base} {kind} cycles (limit {limit:.0f} KiB)"
