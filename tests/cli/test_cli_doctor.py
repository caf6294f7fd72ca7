"""doctor, p11-kit-module, config-check, audit verify exit codes."""

from __future__ import annotations

from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "build" / "libcryptoki_shim.so"


def registered(cli):
    """The library registered with p11-kit in a private config home: doctor warns otherwise,
    and any warning is exit 4."""
    cli.env["XDG_CONFIG_HOME"] = str(cli.work / "xdg")
    cli.run("p11-kit-module", "--library", str(LIB))
    return cli


def test_doctor_all_good(ready):
    registered(ready)
    assert ready.run("doctor").stdout.rstrip().endswith("all good")
    data = ready.json("doctor")
    steps = {s["step"]: s for s in data["steps"]}
    assert data["ok"] is True
    assert steps["config"]["status"] == "ok"
    assert steps["store"]["status"] == "ok"
    assert steps["slot 0 token"]["status"] == "ok"
    for step in ("dlopen", "C_GetFunctionList", "C_Initialize", "C_GetInfo", "C_GetSlotList", "C_Finalize"):
        assert steps[f"library: {step}"]["status"] == "ok", steps
    assert "1 slot(s)" in steps["library: C_GetSlotList"]["detail"]


def test_doctor_reports_uninitialized_token_and_bad_library(cli):
    data = cli.json("doctor", "--library", "/nonexistent/lib.so", rc=4)
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["slot 0 token"]["status"] == "warn"
    assert steps["library"]["status"] == "FAIL"


def test_doctor_reports_invalid_config_and_the_library_refuses_to_initialize(cli):
    cli.conf.write_text(cli.conf.read_text() + '\n[log]\nlevel = "loud"\n')
    data = cli.json("doctor", rc=4)
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["config"]["status"] == "FAIL"
    assert "level = 'loud' is not allowed; allowed: debug, info, warning, error" in steps["config"]["detail"]
    assert steps["library: C_Initialize"]["status"] == "FAIL"
    # issue 21: the CKR's name and the module's own reason, not a bare "rv 0x5"
    detail = steps["library: C_Initialize"]["detail"]
    assert "CKR_GENERAL_ERROR" in detail and "level = 'loud' is not allowed" in detail, detail


def test_doctor_exits_4_on_a_warning_alone(cli):
    """Issue 21: doctor warned (here: no token yet) and then said "all good", exit 0."""
    registered(cli)
    proc = cli.run("doctor", rc=4)
    assert "problems found: 0 failure(s), 1 warning(s)" in proc.stdout
    assert "all good" not in proc.stdout
    data = cli.json("doctor", rc=4)
    assert data["ok"] is False
    assert [s["step"] for s in data["steps"] if s["status"] != "ok"] == ["slot 0 token"]


def test_config_check_exit_codes(cli):
    assert cli.json("config-check")["ok"] is True
    cli.conf.write_text("[store]\nurl = 3\n")
    proc = cli.run("config-check", rc=3)
    assert "[store] url must be a string, got 3" in proc.stderr
    # every command refuses an invalid configuration with exit code 3
    assert cli.run("list", rc=3).returncode == 3


def test_p11_kit_module_file(cli, tmp_path):
    out = tmp_path / "m" / "cryptoki-shim.module"
    cli.run("p11-kit-module", "--library", str(LIB), "-o", str(out))
    lines = out.read_text().splitlines()
    assert f"module: {LIB.resolve()}" in lines
    assert "critical: no" in lines
    assert cli.run("p11-kit-module", "--library", str(LIB), "-o", "-").stdout == out.read_text()
    cli.run("p11-kit-module", "--library", "/nope.so", "-o", "-", rc=2)


def test_doctor_fails_on_a_store_readable_by_group_or_others(ready):
    """Issue 15 item 5: a store (or its -wal/-shm) that other users can read is an offline PIN
    search for them; doctor said "all good" (a warning) about it."""
    import os

    db = ready.work / "store.db"
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if f.exists():
            assert f.stat().st_mode & 0o777 == 0o600, f  # as created
    os.chmod(db, 0o644)
    data = ready.json("doctor", rc=4)
    steps = {s["step"]: s for s in data["steps"]}
    assert data["ok"] is False
    assert steps["store file modes"]["status"] == "FAIL"
    assert "store.db 644" in steps["store file modes"]["detail"]
    assert "all good" not in ready.run("doctor", rc=4).stdout


def test_store_key_create_and_doctor_checks_the_key_file(new_cli):
    import os

    probe = new_cli()
    key = probe.work / "store.key"
    data = probe.json("store-key-create", str(key))
    assert data["ok"] is True and len(data["key_id"]) == 16
    assert key.stat().st_mode & 0o777 == 0o600 and key.stat().st_size == 32
    probe.run("store-key-create", str(key), rc=2)  # never replaced
    cli = new_cli(extra=f'key_file = "{key}"')
    cli.run("init-token", "--label", "keyed", "--so-pin-env", "SO", "--pin-env", "UP")
    registered(cli)
    steps = {s["step"]: s for s in cli.json("doctor")["steps"]}
    assert steps["store key file"]["status"] == "ok" and data["key_id"] in steps["store key file"]["detail"]
    os.chmod(key, 0o640)
    steps = {s["step"]: s for s in cli.json("doctor", rc=4)["steps"]}
    assert steps["store key file"]["status"] == "FAIL" and "chmod 600" in steps["store key file"]["detail"]
