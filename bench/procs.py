"""Processes as well as threads (issue #22 goal 4): N client processes, one thread each,
signing on one token at the same time, against one process alone.

``.venv/bin/python -m bench.procs [--procs 4] [--ops sign-ecdsa-p256] [--seconds 3] [--runs 3]``

Each process is an independent p11bench (``../shared/p11bench``) on the same fresh token of
each module (ours: one SQLite store file shared by every process; SoftHSM2: one token
directory), started together. Reported per module and op: ops/s of one process alone, the
sum over N concurrent processes, and their ratio; the median of ``--runs`` alternating runs
(1 process, N processes, SoftHSM2 and ours interleaved). Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.__main__ import LABEL, LIB, PIN, ROOT, SOFTHSM, build_tools, fresh_tokens


def _one(bench: Path, module: Path, env: dict[str, str], ops: str, seconds: str, procs: int) -> float:
    """Sum of ops/s of ``procs`` p11bench processes started together (one op, 1 thread)."""
    cmd = [str(bench), "--module", str(module), "--pin", PIN, "--token-label", LABEL, "--ops", ops,
           "--threads", "1", "--seconds", seconds, "--rounds", "1", "--warmup", "0.5"]
    running = []
    for _ in range(procs):
        running.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)  # SoftHSM2 2.6 may miss its token while another process is reading it
    total = 0.0
    for p in running:
        out, err = p.communicate()
        if p.returncode != 0 and "no initialised token" in err:  # that race: once more, at once
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate()
        row = next((ln.split() for ln in out.splitlines() if ln.startswith(ops + " ")), None)
        if p.returncode != 0 or row is None:
            raise SystemExit(f"p11bench failed ({p.returncode}):\n{out}{err[-2000:]}")
        total += float(row[2])
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.procs")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--ops", default="sign-ecdsa-p256")
    ap.add_argument("--seconds", default="3")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--p11bench", type=Path, default=ROOT.parent / "shared" / "p11bench")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cryptoki-shim-procs-"))
    try:
        bench, _cold = build_tools(args.p11bench, ROOT / "build" / "bench")
        env = fresh_tokens(work)
        lib = work / "libcryptoki_shim.so"
        shutil.copy2(LIB, lib)
        if (ROOT / ".venv").is_dir():
            env["CRYPTOKI_SHIM_VENV"] = str(ROOT / ".venv")
        modules = (("SoftHSM2", SOFTHSM), ("cryptoki-shim", lib))
        print(f"{args.procs} processes x 1 thread against 1 process, {args.seconds} s each, "
              f"median of {args.runs} runs (ops/s summed over the processes)")
        print(f"{'module':14} {'op':18} {'1 process':>11} {f'{args.procs} processes':>13} {'ratio':>7}  runs")
        for op in args.ops.split(","):
            rows: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _ in modules}
            for _ in range(args.runs):
                for name, module in modules:
                    rows[name][0].append(_one(bench, module, env, op, args.seconds, 1))
                    rows[name][1].append(_one(bench, module, env, op, args.seconds, args.procs))
            for name, (one, many) in rows.items():
                a, b = statistics.median(one), statistics.median(many)
                runs = ", ".join(f"{m / o:.2f}" for o, m in zip(one, many))
                print(f"{name:14} {op:18} {a:11.0f} {b:13.0f} {b / a:7.2f}  {runs}", flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
