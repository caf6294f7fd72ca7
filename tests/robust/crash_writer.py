"""Child for the crash-consistency test: creates token objects until it is killed.

Usage: crash_writer.py <report_fd> <first_index>. Object i is a public CKO_DATA object
(even i) or a private generic secret key (odd i) labelled ``crash-<i>`` whose value is
``expected_value(i)``; after C_CreateObject returns CKR_OK the index is written to the
report pipe, so the parent knows exactly which creations were committed before SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p11 import P11

from cryptoki_shim import spec


def expected_value(i: int) -> bytes:
    return hashlib.sha256(b"crash-%d" % i).digest() * (1 + i % 3)


def template(i: int) -> dict[int, object]:
    common = {spec.CKA_TOKEN: True, spec.CKA_LABEL: b"crash-%d" % i, spec.CKA_VALUE: expected_value(i)}
    if i % 2 == 0:
        return common | {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_PRIVATE: False}
    return common | {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                     spec.CKA_PRIVATE: True, spec.CKA_SENSITIVE: False, spec.CKA_EXTRACTABLE: True}


def main() -> None:
    fd, i = int(sys.argv[1]), int(sys.argv[2])
    p11 = P11()
    p11.initialize()
    s = p11.open(0)
    p11.login(s, b"1234")
    os.write(fd, b"ready\n")
    while True:
        p11.create(s, template(i))
        os.write(fd, b"%d\n" % i)
        i += 1


if __name__ == "__main__":
    main()
