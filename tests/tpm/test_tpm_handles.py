"""The resident-key fast path keeps its promises (issue 20 item 1, docs/tpm.md "Performance"):

* the SRK is made persistent at 0x81000001 once, and only while the object there has our
  SRK's name: a foreign object at the configured handle is left alone and not used;
* a signature costs a handful of TPM commands, none of them TPM2_CreatePrimary;
* many signatures over several keys from several processes leave no transient object and
  no session in the TPM (TPM2_GetCapability(handles)); the same under tpm2-abrmd, a
  resource manager in front of another swtpm.

Sizes: 4 processes, 6 keys, 240 signatures here; ``make soak`` (CRYPTOKI_SHIM_SOAK=long)
runs the issue's 4 processes, 50 keys, 10,000 signatures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bus_recorder import BusRecorder
from swtpm_helper import Swtpm, swtpm  # noqa: F401  (fixture)
from test_tpm_backend import P256, gen_ec, user_token
from test_tpm_bus import Key

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_conn, tpm_wire
from cryptoki_shim.backends.tpm import TpmBackend
from cryptoki_shim.config import SlotConfig
from cryptoki_shim.mechanisms.registry import lookup

PCRS = "sha256:16"
SOAK = os.environ.get("CRYPTOKI_SHIM_SOAK") == "long"
PROCESSES, KEYS, SIGNS = (4, 50, 10_000) if SOAK else (4, 6, 240)
WORKER = Path(__file__).resolve().parent / "sign_worker.py"
TRANSIENT, HMAC_SESSIONS, POLICY_SESSIONS, PERSISTENT = 0x80000000, 0x02000000, 0x03000000, 0x81000000


def slots(tcti: str, srk_handle: str = "0x81000001") -> str:
    return (f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "tpm"\n[slots.tpm]\ntcti = "{tcti}"\n'
            f'pcrs = "{PCRS}"\nunseal_cache_seconds = 0\nsrk_handle = "{srk_handle}"\n')


def handles(tcti: str, first: int) -> list[int]:
    with tpm_conn.open_tpm(tcti, "test handles", with_srk=False) as conn:
        return conn.wire.handles(first)


def leftovers(tcti: str) -> dict[str, list[str]]:
    """Transient objects and sessions still in the TPM (hex), by kind."""
    return {kind: [hex(h) for h in handles(tcti, first)]
            for kind, first in (("transient", TRANSIENT), ("loaded sessions", HMAC_SESSIONS),
                                ("saved sessions", POLICY_SESSIONS))}


def srk_name(tcti: str) -> bytes:
    """The name our SRK template has on this TPM (TPM2_CreatePrimary, flushed)."""
    from tpm2_pytss.constants import ESYS_TR
    from tpm2_pytss.types import TPM2B_SENSITIVE_CREATE
    with tpm_conn.open_tpm(tcti, "test srk", with_srk=False) as conn:
        handle = conn.track(conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(), tpm_conn.srk_template(),
                                                     ESYS_TR.OWNER)[0])
        return bytes(conn.ectx.tr_get_name(handle))


def commands(stream: bytes) -> list[int]:
    """Command codes in a recorded command/response stream (each message: tag, size, code)."""
    codes, pos, is_command = [], 0, True
    while pos + 10 <= len(stream):
        _, size, code = struct.unpack_from(">HII", stream, pos)
        if is_command:
            codes.append(code)
        pos += size
        is_command = not is_command
    return codes


def backend(tcti: str, srk_handle: str = "0x81000001") -> TpmBackend:
    return TpmBackend(SlotConfig(id=0, tpm={"tcti": tcti, "pcrs": PCRS, "unseal_cache_seconds": 0,
                                             "srk_handle": srk_handle}))


def sign_with(b: TpmBackend, key: Key, digest: bytes) -> bytes:
    mech = lookup(S.CKM_ECDSA)
    return b.context_maker("sign", mech)(mech, None, key).oneshot(digest)


def resident_key(b: TpmBackend) -> Key:
    from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_RESIDENT
    _, priv = b.generate_key_pair(lookup(S.CKM_EC_KEY_PAIR_GEN), None, {S.CKA_EC_PARAMS: P256},
                                  {CKA_SHIM_TPM_KIND: TPM_KIND_RESIDENT})
    return Key(priv, "handles-test")


def verify(key: Key, digest: bytes, sig: bytes) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    public = serialization.load_der_public_key(key.attrs[S.CKA_PUBLIC_KEY_INFO])
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# --------------------------------------------------------------------------- the SRK

def test_srk_made_persistent_once_and_a_signature_is_a_few_commands(swtpm):
    assert handles(swtpm.tcti, PERSISTENT) == []
    b = backend(swtpm.tcti)
    key = resident_key(b)
    assert handles(swtpm.tcti, PERSISTENT) == [tpm_conn.PERSISTENT_SRK]
    expected = srk_name(swtpm.tcti)
    with tpm_conn.open_tpm(swtpm.tcti, "test name", with_srk=False) as conn:
        assert conn.wire.read_public_name(tpm_conn.PERSISTENT_SRK) == expected
    bus = BusRecorder(swtpm.dir + "/s")
    try:
        recorded = backend(bus.tcti)
        for _ in range(2):  # once per process and TPM: the SRK's name is learnt, then checked there
            sign_with(recorded, key, bytes(32))
        bus.clear()
        for i in range(10):
            digest = hashlib.sha256(b"%d" % i).digest()
            verify(key, digest, sign_with(recorded, key, digest))
        codes = commands(bus.tpm_stream())
    finally:
        bus.close()
    assert codes.count(tpm_wire.CC_SIGN) == 10
    assert 0x131 not in codes  # TPM2_CreatePrimary: the persistent SRK is used
    # Load, StartAuthSession, PolicyPCR, PolicyAuthValue, Sign, FlushContext
    assert len(codes) == 10 * 6, [hex(c) for c in codes]
    assert leftovers(swtpm.tcti) == {"transient": [], "loaded sessions": [], "saved sessions": []}


def test_foreign_object_at_the_srk_handle_is_left_alone(swtpm, caplog):
    """An object that is not our SRK at the configured handle (tpm2-pkcs11 puts its own
    primary at 0x81000001) is neither used nor replaced: keys still work, slower."""
    from tpm2_pytss.constants import ESYS_TR, TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE
    foreign = 0x81000010
    attrs = tpm_conn.SRK_ATTRS & ~TPMA_OBJECT.NODA  # the tpm2-tools primary: DA-protected
    with tpm_conn.open_tpm(swtpm.tcti, "test foreign", with_srk=False) as conn:
        h = conn.track(conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(),
                                                TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=attrs),
                                                ESYS_TR.OWNER)[0])
        conn.ectx.evict_control(ESYS_TR.OWNER, h, foreign)
        name = conn.wire.read_public_name(foreign)
    assert name != srk_name(swtpm.tcti)
    b = backend(swtpm.tcti, hex(foreign))
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.audit.tpm"):
        key = resident_key(b)
        digest = hashlib.sha256(b"foreign").digest()
        verify(key, digest, sign_with(b, key, digest))
    assert "0x81000010 holds an object that is not this TPM's SRK" in caplog.text
    with tpm_conn.open_tpm(swtpm.tcti, "test name", with_srk=False) as conn:
        assert conn.wire.read_public_name(foreign) == name
    assert leftovers(swtpm.tcti)["transient"] == []


def test_srk_handle_outside_the_persistent_range_is_refused(swtpm):
    with pytest.raises(Exception) as info:
        backend(swtpm.tcti, "0x80000001")
    assert info.value.ckr == S.CKR_ARGUMENTS_BAD
    assert backend(swtpm.tcti, "none").srk_handle is None


# --------------------------------------------------------------------------- leak test

def run_workers(lib_path: Path, conf: Path, extra_env: dict[str, str] | None = None,
                processes: int = PROCESSES, signs: int = SIGNS) -> list[dict]:
    env = {**os.environ, "CRYPTOKI_SHIM_CONF": str(conf), **(extra_env or {})}
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(lib_path), "leak-", str(signs // processes)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
             for _ in range(processes)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    return results


@pytest.mark.soak
def test_many_signs_by_many_processes_leave_nothing_in_the_tpm(swtpm, lib_path, tmp_path):
    from p11 import write_config
    conf = write_config(tmp_path, slots=slots(swtpm.tcti))
    with user_token(lib_path, conf, "leak") as (client, s):
        for i in range(KEYS):
            gen_ec(client, s, P256, label=b"leak-%d" % i, key_id=bytes([i]))
        started = time.monotonic()
        results = run_workers(lib_path, conf)
        elapsed = time.monotonic() - started
    assert [r["keys"] for r in results] == [KEYS] * PROCESSES
    assert sum(r["signed"] for r in results) == SIGNS // PROCESSES * PROCESSES
    assert leftovers(swtpm.tcti) == {"transient": [], "loaded sessions": [], "saved sessions": []}
    print(f"{SIGNS} signatures, {KEYS} keys, {PROCESSES} processes: {elapsed:.1f} s")


# --------------------------------------------------------------------------- resource manager

@pytest.fixture
def abrmd(tmp_path):
    """Another swtpm with tpm2-abrmd in front of it (on a private D-Bus session bus): the
    TCTI string and the swtpm (to look at the TPM behind the broker afterwards)."""
    if shutil.which("tpm2-abrmd") is None or shutil.which("dbus-daemon") is None:
        pytest.fail("tpm2-abrmd / dbus-daemon missing: apt-get install tpm2-abrmd libtss2-tcti-tabrmd0 dbus "
                    "(./run installs them)")
    tpm = Swtpm()
    tpm.start()
    bus_dir = tempfile.mkdtemp(prefix="dbus", dir="/tmp")
    address = f"unix:path={bus_dir}/bus"
    dbus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address={address}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    name = f"com.intel.tss2.Tabrmd.shim{os.getpid()}"
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
    broker = None
    try:
        deadline = time.monotonic() + 10
        while not Path(bus_dir, "bus").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        broker = subprocess.Popen(["tpm2-abrmd", "--session", "--allow-root", f"--dbus-name={name}",
                                   f"--tcti={tpm.tcti}", "--flush-all"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        tcti = f"tabrmd:bus_name={name},bus_type=session"
        while True:  # until the broker owns its name
            probe = subprocess.run([sys.executable, "-c", "from tpm2_pytss import TCTILdr; import sys; "
                                    "TCTILdr.parse(sys.argv[1]).close()", tcti], env=env, capture_output=True)
            if probe.returncode == 0:
                break
            if broker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tpm2-abrmd did not start: {probe.stderr[-500:]!r}")
            time.sleep(0.1)
        yield tcti, env, tpm, broker
    finally:
        for proc in (broker, dbus):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        tpm.remove()
        shutil.rmtree(bus_dir, ignore_errors=True)


def test_under_tpm2_abrmd_signs_and_leaves_nothing(abrmd, lib_path, tmp_path):
    tcti, env, tpm, broker = abrmd
    from p11 import write_config
    conf = write_config(tmp_path, slots=slots(tcti))
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = env["DBUS_SESSION_BUS_ADDRESS"]
    try:
        with user_token(lib_path, conf, "rm") as (client, s):
            for i in range(3):
                gen_ec(client, s, P256, label=b"leak-%d" % i, key_id=bytes([i]))
            # a client of the broker keeps its connection: the other processes still get through
            results = run_workers(lib_path, conf, env, processes=3, signs=60)
    finally:
        os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
    assert [r["signed"] for r in results] == [20, 20, 20]
    broker.terminate()  # the broker holds swtpm's one connection: look behind it directly
    broker.wait(10)
    assert handles(tpm.tcti, PERSISTENT) == [tpm_conn.PERSISTENT_SRK]
    assert leftovers(tpm.tcti) == {"transient": [], "loaded sessions": [], "saved sessions": []}


def test_srk_replaced_between_operations_is_noticed(swtpm, caplog):
    """Someone with the owner auth evicts our SRK and puts a DA-protected object with an auth
    value at its handle while this process signs: the next Load fails there (costing at most
    one dictionary-attack try, once), the handle is checked by name again, found foreign,
    left alone, and signing goes on with the SRK re-created per operation."""
    from tpm2_pytss.constants import ESYS_TR, TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPMS_SENSITIVE_CREATE
    handle = 0x81000020
    b = backend(swtpm.tcti, hex(handle))
    key = resident_key(b)
    for i in range(2):  # the SRK is persistent and checked by this process
        digest = hashlib.sha256(b"before %d" % i).digest()
        verify(key, digest, sign_with(b, key, digest))
    attrs = tpm_conn.SRK_ATTRS & ~TPMA_OBJECT.NODA
    with tpm_conn.open_tpm(swtpm.tcti, "test replace", with_srk=False) as conn:
        conn.ectx.evict_control(ESYS_TR.OWNER, conn.ectx.tr_from_tpmpublic(handle), handle)
        h = conn.track(conn.ectx.create_primary(TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(userAuth=b"other")),
                                                TPM2B_PUBLIC.parse("ecc256:aes128cfb", objectAttributes=attrs),
                                                ESYS_TR.OWNER)[0])
        conn.ectx.evict_control(ESYS_TR.OWNER, h, handle)
        foreign = conn.wire.read_public_name(handle)
        tries = conn.wire.properties(0x20E, 1).get(0x20E, 0)
    with caplog.at_level(logging.WARNING, logger="cryptoki_shim.audit.tpm"):
        for i in range(3):
            digest = hashlib.sha256(b"after %d" % i).digest()
            verify(key, digest, sign_with(b, key, digest))
    assert f"0x{handle:08x} holds an object that is not this TPM's SRK" in caplog.text
    with tpm_conn.open_tpm(swtpm.tcti, "test after", with_srk=False) as conn:
        assert conn.wire.read_public_name(handle) == foreign
        assert conn.wire.properties(0x20E, 1).get(0x20E, 0) <= tries + 1
        conn.ectx.evict_control(ESYS_TR.OWNER, conn.ectx.tr_from_tpmpublic(handle), handle)
    assert leftovers(swtpm.tcti)["transient"] == []
