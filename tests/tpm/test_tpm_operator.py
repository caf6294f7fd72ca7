"""The operator's view of a TPM slot (issue 21) on a real swtpm: doctor probes the TPM for
real, the slot describes itself as a TPM slot, and the metrics count TPM round trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p11 import LIB, write_config
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import slot_config

SO, UP = "so-pin-0001", "user-pin-0001"


def cli(conf: Path, *args: str, rc: int | None = 0) -> dict:
    proc = subprocess.run([sys.executable, "-m", "cryptoki_shim.cli", *args, "--json"],
                          env=dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), SO=SO, UP=UP),
                          capture_output=True, text=True, timeout=120, check=False)
    assert rc is None or proc.returncode == rc, f"{args} -> {proc.returncode}, wanted {rc}\n{proc.stdout}{proc.stderr}"
    return json.loads(proc.stdout)


def test_doctor_description_and_tpm_round_trips(swtpm, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti),
                        extra=f'[metrics]\nfile = "{metrics_dir}/m-{{pid}}.prom"\n')
    cli(conf, "init-token", "--label", "tpm-op", "--so-pin-env", "SO", "--pin-env", "UP")
    steps = {s["step"]: s for s in cli(conf, "doctor", rc=None)["steps"]}  # 0 or 4: p11-kit registration
    assert steps["slot 0 tpm"]["status"] == "ok", steps["slot 0 tpm"]
    detail = steps["slot 0 tpm"]["detail"]  # TpmBackend.probe (issue 20 item 6)
    assert detail.startswith(f"{swtpm.tcti}: reachable, SRK at 0x81000001, PCRs sha256:16 read (1)"), detail
    assert detail.endswith("failed auths, not locked out"), detail

    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf))
    out = subprocess.run(["pkcs11-tool", "--module", str(LIB), "-L"], env=env, capture_output=True, text=True,
                         timeout=60).stdout
    assert f"cryptoki-shim TPM slot ({swtpm.tcti})" in out, out

    for f in metrics_dir.iterdir():
        f.unlink()
    (tmp_path / "data").write_bytes(b"hello")
    for args in (["--keypairgen", "--key-type", "EC:prime256v1", "--label", "t", "--id", "01"],
                 ["--sign", "-m", "ECDSA-SHA256", "--id", "01", "-i", str(tmp_path / "data"),
                  "-o", str(tmp_path / "sig")]):
        proc = subprocess.run(["pkcs11-tool", "--module", str(LIB), "--login", "--pin", UP, *args], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    text = "".join(f.read_text() for f in sorted(metrics_dir.iterdir()))
    ok = f'cryptoki_shim_backend_round_trips_total{{backend="tpm",target="{swtpm.tcti}",outcome="CKR_OK"}} '
    counts = [int(line.split()[-1]) for line in text.splitlines() if line.startswith(ok)]
    assert counts and sum(counts) >= 2, text  # generation and signature each went to the TPM
    assert f'cryptoki_shim_backend_round_trip_seconds_count{{backend="tpm",target="{swtpm.tcti}"}}' in text
