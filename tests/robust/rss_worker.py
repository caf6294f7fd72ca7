"""Child for the leak test: repeats one kind of cycle and reports RSS at checkpoints.

Usage: rss_worker.py <kind> <total> <baseline_after>. Prints (to a pipe fd given as argv[4])
one line "calls rss_kib" at ``baseline_after`` and at ``total``. A fresh process per kind so
that the pytest process's own allocations do not blur the figures.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p11 import P11, ffi

from cryptoki_shim import spec


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> None:
    kind, total, base, fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    p11 = P11()
    p11.initialize()
    s = p11.open(0)
    p11.login(s, b"1234")
    key = p11.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                         spec.CKA_VALUE: b"k" * 32, spec.CKA_SIGN: True})
    mech = ffi.new("CK_MECHANISM *", {"mechanism": spec.CKM_SHA256_HMAC})
    out = ffi.new("unsigned char[]", 64)
    n = ffi.new("CK_ULONG *")
    data = b"x" * 64
    fl = p11.fl
    template = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"leak", spec.CKA_VALUE: data}

    def one() -> None:
        if kind == "sign":  # raw function-list calls: the client side allocates nothing per call
            assert fl.C_SignInit(s, mech, key) == 0
            n[0] = 64
            assert fl.C_Sign(s, data, len(data), out, n) == 0
        elif kind == "session":
            h = p11.open(0)
            p11.close(h)
        elif kind == "object":
            p11.destroy(s, p11.create(s, template))
        else:
            raise ValueError(kind)

    for i in range(1, total + 1):
        one()
        if i == base or i == total:
            gc.collect()
            os.write(fd, b"%d %d\n" % (i, rss_kib()))
    p11.finalize()


if __name__ == "__main__":
    main()
