"""A separate process working on a store, for the multi-process tests.

Run as `python store_worker.py COMMAND URL N [GO_FILE]`: opens the store, waits until
GO_FILE exists (so several workers start together), then (on the statement set of the test
that started it: STORE_FAST_PATH=0 is SQLAlchemy Core):
  add    N  -> add_object N times on slot 1
  failed N  -> reserve_login(1, CKU_USER) N times (no limit); prints the returned counts
  limit3 N  -> reserve_login(1, CKU_USER, limit=3) N times; prints the counts (None: refused)
"""

import os
import sys
import time

from cryptoki_shim.store import CKU_USER, ObjectRecord, Store


def main() -> None:
    command, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    go = sys.argv[4] if len(sys.argv) > 4 else None
    store = Store(url, fast_path=os.environ.get("STORE_FAST_PATH", "1") != "0")
    while go and not os.path.exists(go):
        time.sleep(0.001)
    pid = os.getpid()
    if command == "add":
        for i in range(n):
            store.add_object(1, ObjectRecord(None, f"{pid}-{i}", {0: b"v" * 32, 3: str(i).encode()},
                                             {0x11: b"s" * 48}))
    elif command == "failed":
        counts = [store.reserve_login(1, CKU_USER) for _ in range(n)]
        sys.stdout.write(" ".join(map(str, counts)) + "\n")
    elif command == "limit3":
        counts = [store.reserve_login(1, CKU_USER, limit=3) for _ in range(n)]
        sys.stdout.write(" ".join(map(str, counts)) + "\n")
    else:
        raise SystemExit(f"unknown command {command}")
    store.close()


if __name__ == "__main__":
    main()
