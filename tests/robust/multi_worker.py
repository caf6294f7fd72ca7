"""One of several processes working on the same token (test_concurrency.py).

Usage: multi_worker.py <worker_no> <ops> <result_path>. Creates token objects labelled
``w<no>-<i>``, destroys every third one it made, rewrites the label of every fifth, and (worker 0)
changes the user PIN to itself, which rewraps the token key under a new record. Writes a
JSON result: created, destroyed, and every non-OK return value with the call that gave it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p11 import P11, P11Error

from cryptoki_shim import spec

PIN = b"1234"


def main() -> None:
    no, ops, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    created: dict[str, int] = {}
    destroyed: list[str] = []
    errors: list[tuple[str, str]] = []
    p11 = P11()
    p11.initialize()
    s = p11.open(0)
    p11.login(s, PIN)

    def attempt(what: str, fn, *args):
        try:
            return fn(*args)
        except P11Error as exc:
            errors.append((what, spec.ckr_name(exc.rv)))
            return None

    for i in range(ops):
        label = f"w{no}-{i}"
        h = attempt("create", p11.create, s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True,
                                              spec.CKA_PRIVATE: i % 2 == 1, spec.CKA_LABEL: label.encode(),
                                              spec.CKA_VALUE: label.encode() * 4})
        if h is None:
            continue
        created[label] = h
        if i % 5 == 4:
            attempt("set", p11.set, s, h, {spec.CKA_LABEL: label.encode()})  # a real write, same label
        if i % 3 == 2:
            victim = f"w{no}-{i - 1}"
            before = len(errors)
            if victim in created:
                attempt("destroy", p11.destroy, s, created[victim])
                if len(errors) == before:
                    destroyed.append(victim)
        if no == 0 and i % 10 == 0:
            attempt("setpin", p11.set_pin, s, PIN, PIN)
        if i % 7 == 0:
            attempt("find", p11.find, s, {spec.CKA_LABEL: label.encode()})
    p11.finalize()
    out.write_text(json.dumps({"created": sorted(created), "destroyed": destroyed, "errors": errors}))


if __name__ == "__main__":
    main()
