"""The store on SQLite and on PostgreSQL side by side, through the built library (issue 19
item 6): ``.venv/bin/python bench/store_pg.py [--seconds S] [--counts 1000,10000]``.

Each backend gets a fresh token (slot 0, "test" KDF cost so C_Login shows the store's part,
not Argon2id's 64 MiB); PostgreSQL is a throwaway local cluster (tests/pg.py: Unix socket,
fsync off, synchronous_commit on). The two backends run in alternating rounds in this
process (the same interpreter, the same cffi client, tests/p11.py), best of the rounds per
measurement. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import pg  # noqa: E402
from cryptoki_shim import spec  # noqa: E402
from p11 import P11  # noqa: E402

SO_PIN, USER_PIN = b"12345678", b"1234"
P256 = bytes.fromhex("06082a8648ce3d030107")

SIGNER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from p11 import P11
from cryptoki_shim import spec
p = P11(); p.initialize(); s = p.open(0); p.login(s, b"1234")
[k] = p.find(s, {spec.CKA_LABEL: b"bench-ec", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY})
p.sign(s, spec.CKM_ECDSA_SHA256, k, b"warm")
start, n = float(sys.argv[2]), 0
while time.time() < start:
    time.sleep(0.001)
t0 = time.time()
end = max(start, t0) + float(sys.argv[3])
while time.time() < end:
    p.sign(s, spec.CKM_ECDSA_SHA256, k, b"message"); n += 1
print(n / (time.time() - t0))
p.finalize()
"""


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of `fn` over about `seconds`."""
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return n / elapsed


class Backend:
    def __init__(self, name: str, url: str, work: Path) -> None:
        self.name, self.url = name, url
        self.conf = work / f"{name}.toml"
        self.conf.write_text(f'[store]\nurl = "{url}"\n\n[[slots]]\nid = 0\nkdf_cost = "test"\n')
        self.objects = 0

    def use(self, p: P11) -> int:
        """Initialize the library on this backend; a logged-in R/W session."""
        os.environ["CRYPTOKI_SHIM_CONF"] = str(self.conf)
        p.initialize()
        s = p.open(0)
        p.login(s, USER_PIN)
        return s

    def setup(self, p: P11) -> None:
        os.environ["CRYPTOKI_SHIM_CONF"] = str(self.conf)
        p.initialize()
        p.init_token(0, SO_PIN, "bench")
        s = p.open(0)
        p.login(s, SO_PIN, user=spec.CKU_SO)
        p.init_pin(s, USER_PIN)
        p.logout(s)
        p.login(s, USER_PIN)
        p.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN,
                            {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: P256, spec.CKA_VERIFY: True,
                             spec.CKA_LABEL: b"bench-ec"},
                            {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True,
                             spec.CKA_LABEL: b"bench-ec"})
        p.finalize()


def fill(p: P11, b: Backend, count: int) -> None:
    s = b.use(p)
    while b.objects < count:
        p.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
                     spec.CKA_LABEL: b"filler-%d" % b.objects, spec.CKA_VALUE: b"v"})
        b.objects += 1
    p.finalize()


def measure(p: P11, b: Backend, seconds: float, count: int) -> dict[str, float]:
    out: dict[str, float] = {}
    s = b.use(p)
    [k] = p.find(s, {spec.CKA_LABEL: b"bench-ec", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY})
    p.sign(s, spec.CKM_ECDSA_SHA256, k, b"warm")
    out["sign ECDSA P-256, cached key (ops/s)"] = rate(lambda: p.sign(s, spec.CKM_ECDSA_SHA256, k, b"m"), seconds)
    target = {spec.CKA_LABEL: b"filler-%d" % (count // 2)}
    p.find(s, target)
    out[f"find 1 among {count} (ops/s)"] = rate(lambda: p.find(s, target), seconds)

    def login() -> None:
        p.logout(s)
        p.login(s, USER_PIN)
    out[f"C_Logout + C_Login, test KDF, {count} objects (ops/s)"] = rate(login, seconds)
    created = [0]

    def create() -> None:
        p.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False,
                     spec.CKA_LABEL: b"made-%d" % created[0], spec.CKA_VALUE: b"x" * 32})
        created[0] += 1
    out["C_CreateObject, token object (ops/s)"] = rate(create, seconds)
    b.objects += created[0]
    p.finalize()
    return out


def four_processes(b: Backend, seconds: float) -> float:
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(b.conf))
    start = time.time() + 5  # all four loaded and logged in before any signs
    procs = [subprocess.Popen([sys.executable, "-c", SIGNER, str(ROOT / "tests"), str(start), str(seconds)],
                              env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    return sum(float(p.communicate(timeout=120)[0]) for p in procs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--counts", default="1000,10000")
    args = ap.parse_args(argv)
    cluster = pg.start_cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
            work = Path(tmp)
            backends = [Backend("sqlite", f"sqlite:///{work / 'store.db'}", work),
                        Backend("postgresql", cluster.url(cluster.new_database()), work)]
            p = P11()
            for b in backends:
                b.setup(p)
            rows: dict[str, dict[str, float]] = {}
            for count in [int(c) for c in args.counts.split(",") if c]:
                for b in backends:
                    fill(p, b, count)
                for _ in range(args.rounds):
                    for b in backends:
                        for k, v in measure(p, b, args.seconds, count).items():
                            rows.setdefault(k, {})[b.name] = max(rows.get(k, {}).get(b.name, 0.0), v)
            for b in backends:
                rows.setdefault("sign ECDSA P-256, 4 processes (ops/s total)", {})[b.name] = four_processes(b, args.seconds * 2)
            print(f"{'measurement':52} {'SQLite':>12} {'PostgreSQL':>12} {'PG/SQLite':>10}")
            for k, v in rows.items():
                print(f"{k:52} {v['sqlite']:12.1f} {v['postgresql']:12.1f} {v['postgresql'] / v['sqlite']:10.3f}")
    finally:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
