"""TPM counters in the metrics file and the doctor's TPM probe (issue 20 item 6).

Through the built library with ``[metrics] file``: a sealed key signing twice inside its
unseal window is one seal, one unseal and one cache hit; a resident signature sends its
commands in bytes (counted); every TPM unit is in the round-trip histogram (latency
percentiles for a scraper). The probe (what ``cryptoki-shim doctor`` shows for a TPM slot)
names the persistent SRK, the PCRs read and the dictionary-attack counter, and fails while
the TPM is locked out.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from p11 import write_config
from swtpm_helper import swtpm  # noqa: F401  (fixture)
from test_tpm_backend import ED25519, P256, gen_ec, slot_config, user_token
from test_tpm_lockout_cli import drive_into_lockout

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_conn
from cryptoki_shim.backends.tpm import TpmBackend
from cryptoki_shim.config import SlotConfig


def samples(path: Path) -> dict[tuple[str, frozenset], float]:
    """The file's samples through prometheus_client's strict OpenMetrics parser."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((f"cryptoki_shim_{name}", frozenset(labels.items())), 0)


def test_tpm_counters_in_the_metrics_file(swtpm, lib_path, tmp_path):
    metrics_file = tmp_path / "shim.prom"
    conf = write_config(tmp_path, slots=slot_config(swtpm.tcti, cache=300),
                        extra=f'[metrics]\nfile = "{metrics_file}"\ninterval = 3600\n')
    with user_token(lib_path, conf, "metrics") as (client, s):
        _, sealed = gen_ec(client, s, ED25519, label=b"sealed")
        _, resident = gen_ec(client, s, P256, label=b"resident", key_id=b"\x02")
        client.sign(s, S.CKM_EDDSA, sealed, b"1")
        client.sign(s, S.CKM_EDDSA, sealed, b"2")
        for i in range(3):
            client.sign(s, S.CKM_ECDSA, resident, hashlib.sha256(b"%d" % i).digest())
    found = samples(metrics_file)  # written at C_Finalize
    event = lambda e: value(found, "backend_events_total", backend="tpm", slot="0", event=e)  # noqa: E731
    assert event("seal") == 1
    assert event("unseal") == 1 and event("unseal_cache_hit") == 1
    assert event("wire_commands") >= 3 * 6
    assert event("da_lockout") == 0
    units = value(found, "backend_round_trip_seconds_count", backend="tpm", target=swtpm.tcti)
    assert units >= 1 + 1 + 1 + 3  # seal, resident creation, unseal, 3 signatures (one locked unit each)


def test_doctor_probe_names_srk_pcrs_and_lockout(swtpm):
    backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": swtpm.tcti, "pcrs": "sha256:16,23"}))
    detail = backend.probe()
    assert "reachable" in detail and "SRK at 0x81000001" in detail and "PCRs sha256:16,23 read (2)" in detail
    assert "0/" in detail and "not locked out" in detail
    drive_into_lockout(swtpm.tcti)
    with pytest.raises(Exception) as info:
        backend.probe()
    assert info.value.ckr == S.CKR_PIN_LOCKED and "dictionary-attack lockout" in str(info.value)
    tpm_conn.reset_lockout(swtpm.tcti)
    assert "not locked out" in backend.probe()
