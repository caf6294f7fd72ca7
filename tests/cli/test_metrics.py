"""Metrics (issue 21 item 3): counters and histograms the library writes as an OpenMetrics
file for node_exporter's textfile collector, and ``cryptoki-shim stats``.

Client work runs in child processes (pkcs11-tool, or a tests/p11.py script) so each has its
own counters and its own file, as real clients do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "build" / "libcryptoki_shim.so"


def tool(cli: Cli, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["pkcs11-tool", "--module", str(LIB), *args], env={**cli.env, **(env or {})},
                          capture_output=True, text=True, timeout=120, cwd=cli.work)


def samples(path: Path) -> dict[tuple[str, frozenset], float]:
    """Every sample of the file, parsed by prometheus_client's strict OpenMetrics parser when
    installed (the format is then proven, not only our reading of it)."""
    text = path.read_text()
    assert text.endswith("# EOF\n")
    try:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    except ImportError:  # pragma: no cover - the test extra installs it
        from cryptoki_shim.cli.stats import parse

        return {(n, frozenset(lab.items())): v for n, lab, v in parse(text)}
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((f"cryptoki_shim_{name}", frozenset(labels.items())), 0)


@pytest.fixture
def measured(new_cli) -> Cli:
    cli = new_cli(extra='[metrics]\nfile = "{work}/metrics/shim-{pid}.prom"\n', max_failures=2)
    text = cli.conf.read_text().replace("{work}", str(cli.work))
    cli.conf.write_text(text)
    (cli.work / "metrics").mkdir()
    cli.run("init-token", "--label", "m", "--so-pin-env", "SO", "--pin-env", "UP")
    for f in (cli.work / "metrics").iterdir():  # the CLI's own process counted the init: start clean
        f.unlink()
    return cli


def only_file(cli: Cli) -> Path:
    files = sorted((cli.work / "metrics").glob("shim-*.prom"))
    assert len(files) == 1, files
    return files[0]


def test_operations_logins_errors_and_latency_counted(measured):
    cli = measured
    assert tool(cli, "--login", "--pin", cli.USER_PIN, "--keypairgen", "--key-type", "EC:prime256v1",
                "--label", "k", "--id", "01").returncode == 0
    for f in (cli.work / "metrics").iterdir():
        f.unlink()
    (cli.work / "data").write_bytes(b"hello")
    proc = tool(cli, "--login", "--pin", cli.USER_PIN, "--sign", "-m", "ECDSA-SHA256", "--id", "01",
                "-i", "data", "-o", "sig")
    assert proc.returncode == 0, proc.stderr
    found = samples(only_file(cli))
    op = {"slot": "0", "mechanism": "CKM_ECDSA_SHA256", "operation": "sign"}
    assert value(found, "operations_total", **op, outcome="CKR_OK") == 1
    assert value(found, "operation_seconds_count", **op) == 1
    assert value(found, "operation_seconds_bucket", **op, le="+Inf") == 1
    assert 0 < value(found, "operation_seconds_sum", **op) < 5
    assert value(found, "logins_total", slot="0", user="user", outcome="CKR_OK") == 1

    # a wrong PIN twice: two failed logins, C_Login errors, and the lockout (max_pin_failures 2)
    for f in (cli.work / "metrics").iterdir():
        f.unlink()
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "from p11 import P11\n"
              "p = P11(); p.initialize(); s = p.open(0)\n"
              "rvs = [p.call('C_Login', s, 1, b'wrong-pin', 9) for _ in range(2)]\n"
              "assert rvs == [0xA0, 0xA4], [hex(r) for r in rvs]\n"  # PIN_INCORRECT, then PIN_LOCKED
              "p.finalize()\n")
    subprocess.run([sys.executable, "-c", script], env=cli.env, check=True, timeout=120)
    found = samples(only_file(cli))
    # logins count PIN checks by their verdict (both wrong); the call that locked answers PIN_LOCKED
    assert value(found, "logins_total", slot="0", user="user", outcome="CKR_PIN_INCORRECT") == 2
    assert value(found, "lockouts_total", slot="0", user="user") == 1
    assert value(found, "errors_total", function="C_Login", ckr="CKR_PIN_INCORRECT") == 1
    assert value(found, "errors_total", function="C_Login", ckr="CKR_PIN_LOCKED") == 1

    data = cli.json("stats")
    assert {"function": "C_Login", "ckr": "CKR_PIN_LOCKED", "count": 1} in data["errors"]
    assert {"slot": "0", "user": "user", "count": 1} in data["lockouts"]
    text = cli.run("stats").stdout
    assert "lockouts" in text and "C_Login   CKR_PIN_LOCKED" in text


def test_a_failed_operation_is_counted_with_its_ckr(measured):
    cli = measured
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "from p11 import P11, ffi, USER_PIN\n"
              "from cryptoki_shim import spec\n"
              "p = P11(); p.initialize(); s = p.open(0); p.login(s, b'" + cli.USER_PIN + "')\n"
              "k = p.generate_key(s, spec.CKM_AES_KEY_GEN, {spec.CKA_VALUE_LEN: 16, spec.CKA_ENCRYPT: True, "
              "spec.CKA_TOKEN: False})\n"
              "m, keep = P11.mechanism(spec.CKM_AES_ECB)\n"
              "assert p.call('C_EncryptInit', s, m, k) == 0\n"
              "out = ffi.new('CK_BYTE[]', 64); n = ffi.new('CK_ULONG *', 64)\n"
              "assert p.call('C_Encrypt', s, b'x' * 15, 15, out, n) == spec.CKR_DATA_LEN_RANGE\n"
              "p.finalize()\n")
    subprocess.run([sys.executable, "-c", script], env=cli.env, check=True, timeout=120)
    found = samples(only_file(cli))
    op = {"slot": "0", "mechanism": "CKM_AES_ECB", "operation": "encrypt"}
    assert value(found, "operations_total", **op, outcome="CKR_DATA_LEN_RANGE") == 1
    assert value(found, "operations_total", **op, outcome="CKR_OK") == 0
    assert value(found, "errors_total", function="C_Encrypt", ckr="CKR_DATA_LEN_RANGE") == 1


def test_metrics_never_fail_a_call_nor_print(new_cli, tmp_path):
    """A metrics file that cannot be written (its directory is missing) costs the client
    nothing: the calls answer as before, nothing reaches stdout/stderr, our log says why once."""
    cli = new_cli(extra=f'[metrics]\nfile = "{tmp_path}/missing/dir/m.prom"\ninterval = 1\n')
    cli.run("init-token", "--label", "m", "--so-pin-env", "SO", "--pin-env", "UP")
    log = tmp_path / "client.log"
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "import time\n"
              "from p11 import P11\n"
              "from cryptoki_shim import spec\n"
              "p = P11(); p.initialize(); s = p.open(0)\n"
              "for _ in range(3):\n"
              "    p.digest(s, spec.CKM_SHA256, b'abc'); time.sleep(0.6)\n"
              "p.finalize()\n"
              "print('done')\n")
    proc = subprocess.run([sys.executable, "-c", script], env={**cli.env, "CRYPTOKI_SHIM_LOG": str(log)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "done\n" and proc.stderr == "", proc
    warnings = [ln for ln in log.read_text().splitlines() if "[metrics] file" in ln and "cannot write" in ln]
    assert len(warnings) == 1, log.read_text()
    assert not (tmp_path / "missing").exists()


def test_the_file_is_replaced_whole(measured):
    """Written to a temporary name and renamed: a reader never sees half a file, and no
    temporary file stays behind."""
    cli = measured
    for _ in range(2):
        tool(cli, "-L")
    names = sorted(p.name for p in (cli.work / "metrics").iterdir())
    assert len(names) == 2 and all(n.startswith("shim-") and n.endswith(".prom") for n in names), names
    assert all(p.read_text().endswith("# EOF\n") for p in (cli.work / "metrics").iterdir())
    assert oct(only_file_mode(cli)) == "0o644"  # node_exporter runs as another user; no secret inside


def only_file_mode(cli: Cli) -> int:
    return os.stat(sorted((cli.work / "metrics").iterdir())[0]).st_mode & 0o777


def test_stats_without_metrics_configured_says_how(cli):
    err = cli.run("stats", rc=2).stderr
    assert "[metrics] file is not set" in err


def test_counts_are_exact_under_threads(measured):
    """The hot path counts without a lock (metrics.operation_ended): 4 client threads on their
    own sessions, 400 HMAC signatures each, must give exactly 1600 in the file."""
    cli = measured
    script = (f"import sys, threading; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "from p11 import P11, ffi\n"
              "from cryptoki_shim import spec\n"
              "p = P11(); p.initialize(); s0 = p.open(0); p.login(s0, b'" + cli.USER_PIN + "')\n"
              "k = p.generate_key(s0, spec.CKM_GENERIC_SECRET_KEY_GEN, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, "
              "spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET, spec.CKA_VALUE_LEN: 32, spec.CKA_SIGN: True, "
              "spec.CKA_TOKEN: False})\n"
              "def work():\n"
              "    s = p.open(0); m, keep = P11.mechanism(spec.CKM_SHA256_HMAC)\n"
              "    out = ffi.new('CK_BYTE[]', 64); n = ffi.new('CK_ULONG *')\n"
              "    for _ in range(400):\n"
              "        assert p.call('C_SignInit', s, m, k) == 0\n"
              "        n[0] = 64; assert p.call('C_Sign', s, b'data', 4, out, n) == 0\n"
              "ts = [threading.Thread(target=work) for _ in range(4)]\n"
              "[t.start() for t in ts]; [t.join() for t in ts]\n"
              "p.finalize()\n")
    subprocess.run([sys.executable, "-c", script], env=cli.env, check=True, timeout=300)
    found = samples(only_file(cli))
    op = {"slot": "0", "mechanism": "CKM_SHA256_HMAC", "operation": "sign"}
    assert value(found, "operations_total", **op, outcome="CKR_OK") == 1600
    assert value(found, "operation_seconds_count", **op) == 1600
