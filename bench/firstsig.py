"""`make bench-process`: what one process pays before its first signature, ours vs SoftHSM2.

Every `openssl` command run with pkcs11-provider is a fresh process that loads the module,
initializes it, logs in and signs once (issue 25 item 5). ``bench/firstsig.c`` times those
phases in a fresh process: dlopen, C_Initialize, token lookup + C_OpenSession, C_Login,
C_FindObjects, the first C_SignInit + C_Sign (CKM_ECDSA, P-256), C_Finalize ("total" runs
from dlopen to the first signature; "process" from exec to exit, timed outside). Both modules get a fresh
token with their default PIN KDF (ours: ``kdf_cost = "default"``, Argon2id 64 MiB x 3); runs
alternate between the modules so that a noisy machine hits both alike; medians are printed.

Then, for our module, where the time goes: one more run with Python's import profiler
(``PYTHONPROFILEIMPORTTIME``, through ``CRYPTOKI_SHIM_USE_PYTHON_ENV``) gives the imports of
each phase (each module's least time in 3 runs: the profiler and a busy machine inflate single
runs). C_Login without its imports is the Argon2id KDF (cProfile of C_Login: >90 % in
libargon2, the rest the PIN record and the login counter's write). What is neither import nor
KDF is the interpreter's start-up (in C_Initialize) and our code.

Options: ``--runs N`` (default 7), ``--no-breakdown``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.__main__ import LABEL, LIB, PIN, ROOT, SO_PIN, SOFTHSM, fresh_tokens

PHASES = ("load", "initialize", "session", "login", "find", "sign", "finalize", "total")
KEY_LABEL = "firstsig"


def build(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    exe = out / "firstsig"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'native'}", "-o", str(exe),
                    str(ROOT / "bench" / "firstsig.c"), "-ldl"], check=True)
    return exe


def other_build_token(lib: Path, work: Path) -> dict[str, str]:
    """A fresh default-KDF token for another build of ours (its own store: schemas differ)."""
    work.mkdir(parents=True)
    conf = work / "shim.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{work / "shim.db"}"\n\n[[slots]]\nid = 0\n')
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf))
    for args in (["--init-token", "--label", LABEL, "--so-pin", SO_PIN],
                 ["--init-pin", "--login", "--login-type", "so", "--so-pin", SO_PIN, "--pin", PIN]):
        subprocess.run(["pkcs11-tool", "--module", str(lib), *args], env=env, check=True, capture_output=True)
    return env


def make_keys(env: dict[str, str], modules: list[Path]) -> None:
    for module in modules:
        subprocess.run(["pkcs11-tool", "--module", str(module), "--token-label", LABEL, "--login", "--pin", PIN,
                        "--keypairgen", "--key-type", "EC:prime256v1", "--label", KEY_LABEL],
                       env=env, check=True, capture_output=True)


def one_run(exe: Path, module: Path, env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    p = subprocess.run([str(exe), str(module), LABEL, PIN, KEY_LABEL], env=env, capture_output=True, text=True,
                       timeout=120)
    wall = (time.perf_counter() - t0) * 1e3
    if p.returncode != 0:
        raise SystemExit(f"firstsig {module.name}: rc={p.returncode}\n{p.stdout}{p.stderr}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in p.stdout.split())}
    out = {name: fields[f"{name}_ms"] for name in PHASES}
    out["process"] = wall
    return out


def breakdown(exe: Path, module: Path, env: dict[str, str], runs: int = 3) -> dict[str, tuple[float, list]]:
    """phase -> (sum of import self-times, top-level imports by cumulative time), in ms: each
    module's minimum over ``runs`` profiled runs (a busy machine inflates single runs)."""
    env = dict(env, CRYPTOKI_SHIM_USE_PYTHON_ENV="1", PYTHONPROFILEIMPORTTIME="1", FIRSTSIG_MARKS="1")
    best: dict[tuple[str, str], tuple[float, float, bool]] = {}
    for _ in range(runs):
        p = subprocess.run([str(exe), str(module), LABEL, PIN, KEY_LABEL], env=env, capture_output=True,
                           text=True, timeout=120)
        phase = "load"
        for line in p.stderr.splitlines():
            m = re.match(r"firstsig: phase (\w+)", line)
            if m:
                phase = m.group(1)
                continue
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m:
                key = (phase, m.group(4))
                own, cum = int(m.group(1)) / 1e3, int(m.group(2)) / 1e3
                old = best.get(key, (own, cum, False))
                best[key] = (min(own, old[0]), min(cum, old[1]), len(m.group(3)) == 1 or old[2])
    out: dict[str, tuple[float, list]] = {}
    for ph in PHASES[:-1]:
        rows = [(v, name) for (p_, name), v in best.items() if p_ == ph]
        out[ph] = (sum(v[0] for v, _ in rows), sorted(((v[1], name) for v, name in rows if v[2]), reverse=True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make bench-process", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=LIB",
                    help="another build of our library (e.g. an older commit's), on its own fresh token")
    args = ap.parse_args(argv)
    if not LIB.exists():
        raise SystemExit(f"{LIB} missing: make build")
    work = Path(tempfile.mkdtemp(prefix="cryptoki-shim-firstsig-"))
    try:
        exe = build(ROOT / "build" / "bench")
        env = fresh_tokens(work)
        lib = work / "libcryptoki_shim.so"  # a rebuild during the run must not change the mapped file
        shutil.copy2(LIB, lib)
        modules = {"SoftHSM2": SOFTHSM, "cryptoki-shim": lib}
        envs = {name: env for name in modules}
        make_keys(env, list(modules.values()))
        for spec in args.also:
            name, _, path = spec.partition("=")
            envs[name] = other_build_token(Path(path), work / name)
            modules[name] = Path(path)
            make_keys(envs[name], [Path(path)])
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in modules}
        for _ in range(args.runs):
            for name, module in modules.items():
                runs[name].append(one_run(exe, module, envs[name]))
        cols = list(PHASES) + ["process"]
        print(f"module load -> first signature, fresh process each, median of {args.runs} "
              f"(default PIN KDF; ms; 'process' = exec to exit, measured outside):")
        print(f"  {'':14s}" + "".join(f"{c:>11s}" for c in cols))
        med = {name: {c: statistics.median(r[c] for r in rs) for c in cols} for name, rs in runs.items()}
        for name in modules:
            print(f"  {name:14s}" + "".join(f"{med[name][c]:>11.1f}" for c in cols))
        ratio = med["cryptoki-shim"]["process"] / med["SoftHSM2"]["process"]
        print(f"  per process: cryptoki-shim {med['cryptoki-shim']['process']:.0f} ms, "
              f"SoftHSM2 {med['SoftHSM2']['process']:.0f} ms ({ratio:.0f}x)")
        if not args.no_breakdown:
            parts = breakdown(exe, lib, env)
            ours = med["cryptoki-shim"]
            print("\nwhere our time goes (imports: each module's least self-time in 3 runs under "
                  "PYTHONPROFILEIMPORTTIME, top-level imports by cumulative time):")
            for ph in PHASES[:-1]:
                imp, top = parts[ph]
                heads = ", ".join(f"{n} {ms:.0f}" for ms, n in top[:4])
                print(f"  {ph:11s} {ours[ph]:8.1f} ms   imports {imp:6.1f} ms   {heads}")
            imports = sum(parts[ph][0] for ph in PHASES[:-2])
            login = ours["login"] - parts["login"][0]
            rest = ours["total"] - imports - login
            print(f"  dlopen -> first signature {ours['total']:.0f} ms = imports ~{imports:.0f} "
                  f"+ C_Login without imports (the Argon2id KDF) ~{login:.0f} "
                  f"+ interpreter start, our code and the rest ~{rest:.0f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
