"""Errors name the fix (issue 21 item 2, and the concrete reports at its top).

Each environment failure that would make clients see CKR_GENERAL_ERROR / CKR_DEVICE_ERROR is
reported by ``config-check`` (exit 3: file, key, fix), shown by ``doctor`` as a warning (exit
4), and logged by the library at ``warning`` level when a client initializes it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import Cli

LIB = Path(__file__).resolve().parents[2] / "build" / "libcryptoki_shim.so"


def client_log(cli: Cli, tmp: Path, name: str = "client.log") -> str:
    """What the library logs at the default level while pkcs11-tool lists its slots."""
    log = tmp / name
    subprocess.run(["pkcs11-tool", "--module", str(LIB), "-L"], env={**cli.env, "CRYPTOKI_SHIM_LOG": str(log)},
                   capture_output=True, text=True, timeout=60)
    return log.read_text() if log.exists() else ""


def test_audit_file_in_a_missing_directory(cli, tmp_path):
    """The quickstart's own example on a fresh home: config-check passed, clients failed."""
    missing = tmp_path / "nowhere" / "state"
    cli.conf.write_text(cli.conf.read_text() + f'\n[audit]\nfile = "{missing / "audit.jsonl"}"\n')
    err = cli.run("config-check", rc=3).stderr
    assert f"{cli.conf}: [audit] file = '{missing / 'audit.jsonl'}': the directory {missing} does not exist" in err
    assert f"mkdir -p -m 700 {missing}" in err
    steps = {s["step"]: s for s in cli.json("doctor", rc=4)["steps"]}
    assert steps["config: [audit] file"]["status"] == "warn"
    log = client_log(cli, tmp_path)
    assert f"WARNING cryptoki_shim.core.module: {cli.conf}: [audit] file" in log and "mkdir -p" in log, log
    # the fix works: the same checks are then quiet
    missing.mkdir(parents=True)
    cli.run("config-check")
    assert "WARNING" not in client_log(cli, tmp_path, "after-the-fix.log")


def test_upstream_module_path_and_pin_variable(cli, tmp_path):
    cli.conf.write_text(cli.conf.read_text() + '[slots.upstream]\nlibrary = "/usr/lib/nope/libvendor.so"\n'
                        'token_label = "hsm"\npin_env = "NO_SUCH_PIN_VARIABLE"\nquirks = "no_reinitialize, bogus"\n')
    err = cli.run("config-check", rc=3).stderr
    assert "[slots[0].upstream] quirks = 'no_reinitialize, bogus': unknown quirk 'bogus'" in err
    assert "[slots[0].upstream] library = '/usr/lib/nope/libvendor.so': no such file" in err
    assert "[slots[0].upstream] pin_env = 'NO_SUCH_PIN_VARIABLE': not set in this environment" in err
    data = cli.json("doctor", rc=4)
    steps = {s["step"]: s for s in data["steps"]}
    assert steps["slot 0 upstream"]["status"] == "FAIL"
    assert "/usr/lib/nope/libvendor.so: cannot load" in steps["slot 0 upstream"]["detail"]


def test_tpm_device_missing(cli, tmp_path):
    dev = tmp_path / "tpmrm9"
    cli.conf.write_text(cli.conf.read_text() + f'[slots.tpm]\ntcti = "device:{dev}"\n')
    err = cli.run("config-check", rc=3).stderr
    assert f"[slots[0].tpm] tcti = 'device:{dev}': {dev} does not exist" in err and "swtpm" in err
    steps = {s["step"]: s for s in cli.json("doctor", rc=4)["steps"]}
    assert steps["slot 0 tpm"]["status"] == "FAIL"  # probed for real, not "backend built"


def test_store_key_file_missing(cli, tmp_path):
    text = cli.conf.read_text().replace("[store]\n", f'[store]\nkey_file = "{tmp_path / "gone.key"}"\n')
    cli.conf.write_text(text)
    err = cli.run("config-check", rc=3).stderr
    assert "[store] key_file" in err and "C_Login answers CKR_DEVICE_ERROR" in err
    assert "cryptoki-shim store-key-create" in err


def test_a_config_file_hidden_by_xdg_config_home(tmp_path):
    """Issue 21: with XDG_CONFIG_HOME elsewhere, ~/.config/... was silently ignored and
    config-check said ``<defaults>: valid``."""
    home = tmp_path / "home"
    (home / ".config" / "cryptoki-shim").mkdir(parents=True)
    (home / ".config" / "cryptoki-shim" / "config.toml").write_text("[[slots]]\nid = 7\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM_", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(tmp_path / "elsewhere"), XDG_DATA_HOME=str(tmp_path / "data"))
    import sys

    run = lambda *a: subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    proc = run("config-check")
    assert proc.returncode == 3, proc
    assert "config.toml: file: not read: XDG_CONFIG_HOME=" in proc.stderr
    assert f"move it to {tmp_path / 'elsewhere' / 'cryptoki-shim' / 'config.toml'}" in proc.stderr
    del env["XDG_CONFIG_HOME"]
    proc = run("config-check")
    assert proc.returncode == 0 and "slots [7]" in proc.stdout, proc


@pytest.mark.parametrize("slot, shown", [
    ('backend = "tpm"\n[slots.tpm]\ntcti = "swtpm:path=/run/x"\n', "cryptoki-shim TPM slot (swtpm:path=/run/x)"),
    ('backend = "upstream"\n[slots.upstream]\nlibrary = "/opt/v/libvendor.so"\ntoken_label = "prod"\n',
     "cryptoki-shim upstream slot (prod in libvendor.so)"),
    ("", "cryptoki-shim software slot"),
    ('description = "mine"\nbackend = "tpm"\n', "mine"),
])
def test_slot_description_says_what_the_slot_is(cli, tmp_path, slot, shown):
    """Issue 21: TPM and upstream slots called themselves "software slot"; C_GetSlotInfo
    through the .so needs neither the TPM nor the upstream module."""
    cli.conf.write_text(cli.conf.read_text() + slot)
    out = subprocess.run(["pkcs11-tool", "--module", str(LIB), "-L"], env=cli.env, capture_output=True,
                         text=True, timeout=60).stdout
    assert f"Slot 0 (0x0): {shown}\n" in out, out


def test_audit_syslog_socket_missing(cli, tmp_path):
    cli.conf.write_text(cli.conf.read_text() + f'\n[audit]\nsyslog = true\nsyslog_address = "{tmp_path / "log"}"\n')
    err = cli.run("config-check", rc=3).stderr
    assert f"[audit] syslog_address = '{tmp_path / 'log'}': no such socket" in err


def test_doctor_probes_a_real_upstream(cli, tmp_path):
    """Issue 21: doctor said the upstream backend "has no probe()"; now it loads the module,
    finds the token and logs in (SoftHSM2 as the HSM)."""
    import shutil

    if shutil.which("softhsm2-util") is None or not Path("/usr/lib/softhsm/libsofthsm2.so").exists():
        pytest.skip("SoftHSM2 is not installed")
    (tmp_path / "tokens").mkdir()
    hsm_conf = tmp_path / "softhsm2.conf"
    hsm_conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\n")
    cli.env.update(SOFTHSM2_CONF=str(hsm_conf), HSM_PIN="87654321")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "doctor-hsm", "--so-pin", "12345678",
                    "--pin", "87654321"], env=cli.env, check=True, capture_output=True)
    cli.conf.write_text(cli.conf.read_text() + '[slots.upstream]\nlibrary = "/usr/lib/softhsm/libsofthsm2.so"\n'
                        'token_label = "doctor-hsm"\npin_env = "HSM_PIN"\n')
    steps = {s["step"]: s for s in cli.json("doctor", rc=4)["steps"]}  # rc 4: no token of ours yet
    up = steps["slot 0 upstream"]
    assert up["status"] == "ok" and "token 'doctor-hsm'" in up["detail"] and "logged in" in up["detail"], up
    cli.env["HSM_PIN"] = "00000000"  # a wrong upstream PIN is a failure doctor names
    steps = {s["step"]: s for s in cli.json("doctor", rc=4)["steps"]}
    assert steps["slot 0 upstream"]["status"] == "FAIL" and "login rejected" in steps["slot 0 upstream"]["detail"]
