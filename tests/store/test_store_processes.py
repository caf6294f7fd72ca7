"""Several processes on one store file at once (each a fresh interpreter)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cryptoki_shim.store import CKU_USER, Store


def _run_together(start_worker, tmp_path: Path, *commands: tuple) -> list[str]:
    go = tmp_path / "go"
    procs = [start_worker(*cmd, go) for cmd in commands]
    go.touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
        outputs.append(out)
    return outputs


def test_data_version_sees_another_process_commit(store: Store, db_url: str,
                                                  start_worker) -> None:
    v = store.data_version()
    p = start_worker("add", db_url, 1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert store.data_version() != v
    assert len(store.objects(1)) == 1


def test_two_processes_add_500_objects_each(store: Store, db_url: str, start_worker,
                                            tmp_path: Path) -> None:
    before = store.generation()
    _run_together(start_worker, tmp_path, ("add", db_url, 500), ("add", db_url, 500))
    objs = store.objects(1)
    assert len(objs) == 1000
    assert len({o.unique_id for o in objs}) == 1000
    assert all(len(o.attrs) == 2 and len(o.sealed) == 1 for o in objs)
    assert store.generation() == before + 1000  # one write transaction per object
    if db_url.startswith("sqlite:"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_login_failure_counter_is_atomic_across_processes(store: Store, db_url: str,
                                                           start_worker, tmp_path: Path) -> None:
    outs = _run_together(start_worker, tmp_path, ("failed", db_url, 100),
                         ("failed", db_url, 100))
    counts = [int(c) for out in outs for c in out.split()]
    assert sorted(counts) == list(range(1, 201))  # every increment saw a distinct value
    assert store.token(1).user_pin.failures == 200
    assert store.reserve_login(1, CKU_USER) == 201


def test_login_reservations_never_pass_the_limit_across_processes(store: Store, db_url: str,
                                                                  start_worker, tmp_path: Path) -> None:
    """Four processes reserving at once against max_pin_failures = 3: exactly the counts 1, 2
    and 3 are granted, once each; every other attempt is refused (issue 15 item 3)."""
    outs = _run_together(start_worker, tmp_path, *[("limit3", db_url, 10)] * 4)
    counts = [c for out in outs for c in out.split()]
    assert sorted(c for c in counts if c != "None") == ["1", "2", "3"]
    assert counts.count("None") == 37
    assert store.token(1).user_pin.failures == 3
