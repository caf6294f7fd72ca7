"""`make bench`: our library and SoftHSM2 side by side, each on its own fresh token.

Throughput comes from p11bench (``../shared/p11bench``, an independent C benchmark that
interleaves the modules op by op over several rounds, so the ratio column survives a noisy
machine). Cold start (dlopen -> first successful C_Initialize, fresh process) and RSS come
from ``bench/coldstart.c``. Numbers are reported, never asserted: this is a measurement.

Options: ``--seconds S`` (per measurement, default 2), ``--rounds N`` (default 3),
``--threads 1,2``, ``--ops GLOB``, ``--p11bench DIR`` (where p11bench's sources are),
``--find-counts 1000,10000`` (search scaling: find-objects among that many token objects,
one p11bench run per count; ``""`` skips it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "build" / "libcryptoki_shim.so"
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN, SO_PIN, LABEL = "1234", "12345678", "test"


def build_tools(p11bench_src: Path, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    if not (p11bench_src / "p11bench.c").exists():
        raise SystemExit(f"p11bench sources not found in {p11bench_src} (use --p11bench DIR)")
    bench = out / "p11bench"
    subprocess.run(["gcc", "-O2", "-o", str(bench), str(p11bench_src / "p11bench.c"), "-ldl", "-lpthread"], check=True)
    cold = out / "coldstart"
    subprocess.run(["gcc", "-O2", f"-I{ROOT / 'native'}", "-o", str(cold), str(ROOT / "bench" / "coldstart.c"), "-ldl"],
                   check=True)
    return bench, cold


def fresh_tokens(work: Path) -> dict[str, str]:
    """A SoftHSM2 token and a cryptoki-shim token, both 'test' / PIN 1234, in ``work``."""
    (work / "softhsm" / "tokens").mkdir(parents=True)
    conf = work / "softhsm" / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {work / 'softhsm' / 'tokens'}/\nobjectstore.backend = file\nlog.level = ERROR\n")
    shim_conf = work / "shim.toml"
    shim_conf.write_text(f'[store]\nurl = "sqlite:///{work / "shim.db"}"\n\n[[slots]]\nid = 0\n')
    env = dict(os.environ, SOFTHSM2_CONF=str(conf), CRYPTOKI_SHIM_CONF=str(shim_conf))
    run = lambda *a: subprocess.run(a, env=env, check=True, capture_output=True)  # noqa: E731
    run("softhsm2-util", "--init-token", "--free", "--label", LABEL, "--so-pin", SO_PIN, "--pin", PIN)
    run("pkcs11-tool", "--module", str(LIB), "--init-token", "--label", LABEL, "--so-pin", SO_PIN)
    run("pkcs11-tool", "--module", str(LIB), "--init-pin", "--login", "--login-type", "so", "--so-pin", SO_PIN,
        "--pin", PIN)
    return env


def coldstart(cold: Path, module: Path, env: dict[str, str], runs: int = 7) -> tuple[float, int]:
    times, rss = [], 0
    for _ in range(runs):
        out = subprocess.run([str(cold), str(module)], env=env, check=True, capture_output=True, text=True).stdout
        fields = dict(kv.split("=") for kv in out.split())
        times.append(float(fields["coldstart_ms"]))
        rss = int(fields["rss_kb"])
    return statistics.median(times), rss


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make bench")
    ap.add_argument("--seconds", default="2")
    ap.add_argument("--rounds", default="3")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ops", default=None)
    ap.add_argument("--p11bench", type=Path, default=ROOT.parent / "shared" / "p11bench")
    ap.add_argument("--find-counts", default="1000,10000")
    args = ap.parse_args(argv)
    if not LIB.exists():
        raise SystemExit(f"{LIB} missing: make build")
    work = Path(tempfile.mkdtemp(prefix="cryptoki-shim-bench-"))
    try:
        bench, cold = build_tools(args.p11bench, ROOT / "build" / "bench")
        env = fresh_tokens(work)
        # A private copy: a rebuild during the run must not change the mapped library.
        lib = work / "libcryptoki_shim.so"
        shutil.copy2(LIB, lib)
        # The copy lies outside the tree, where it would look for its Python environment
        # (native/pyenv.c): name the tree's venv.
        if (ROOT / ".venv").is_dir():
            env["CRYPTOKI_SHIM_VENV"] = str(ROOT / ".venv")
        print("cold start (dlopen -> first C_Initialize, median of 7 fresh processes) and RSS after it:")
        for name, module in (("SoftHSM2", SOFTHSM), ("cryptoki-shim", lib)):
            ms, rss = coldstart(cold, module, env)
            print(f"  {name:14s} {ms:8.1f} ms   RSS {rss / 1024:6.1f} MiB")
        cmd = [str(bench), "--module", str(SOFTHSM), "--module", str(lib), "--pin", PIN, "--token-label", LABEL,
               "--threads", args.threads, "--seconds", args.seconds, "--rounds", args.rounds]
        if args.ops:
            cmd += ["--ops", args.ops]
        print("\n$ " + " ".join(cmd), flush=True)
        rc = subprocess.run(cmd, env=env, stderr=subprocess.DEVNULL).returncode
        counts = [int(c) for c in args.find_counts.split(",") if c.strip()]
        if rc == 0 and counts:
            rc = find_scaling(cmd, env, counts)
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def find_scaling(base: list[str], env: dict[str, str], counts: list[int]) -> int:
    """find-objects among N token objects for each N (same tokens; p11bench destroys its
    objects after each run): how search time grows with the token's size."""
    cmd = list(base)
    cmd[cmd.index("--threads") + 1] = "1"
    if "--ops" in cmd:
        cmd[cmd.index("--ops") + 1] = "find-objects"
    else:
        cmd += ["--ops", "find-objects"]
    rows = []
    for n in counts:
        out = subprocess.run(cmd + ["--find-count", str(n)], env=env, stderr=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True)
        if out.returncode != 0:
            print(out.stdout)
            return out.returncode
        fields = next((ln.split() for ln in out.stdout.splitlines() if ln.startswith("find-objects")), None)
        if fields is None:
            print(out.stdout)
            return 1
        rows.append((n, float(fields[2]), float(fields[3])))
    print("\nsearch scaling (find-objects, 1 thread, ops/s; a search costs 1/ops):")
    print(f"  {'objects':>8} {'SoftHSM2':>12} {'cryptoki-shim':>14} {'ratio':>9}")
    for n, m1, m2 in rows:
        print(f"  {n:>8} {m1:>12.1f} {m2:>14.1f} {m2 / m1:>9.1f}")
    if len(rows) > 1:
        (n0, a0, b0), (n1, a1, b1) = rows[0], rows[-1]
        print(f"  objects x{n1 / n0:.0f}: SoftHSM2 search time x{a0 / a1:.1f}, cryptoki-shim x{b0 / b1:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
