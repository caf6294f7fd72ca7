"""Secrets never cross the CPU–TPM bus in clear (issue 5, docs/tpm.md "Encrypted sessions").

Every byte between our TSS and a real swtpm goes through ``BusRecorder`` (a unix-socket
man-in-the-middle). The scenario seals and unseals a data key, generates and uses a sealed
Ed25519 key, a resident P-256 key and a resident RSA-2048 key (decrypting a known plaintext),
and resets the dictionary-attack lockout with a known lockout auth. Afterwards the secrets —
sealed data keys, key auth values, the lockout auth, the RSA plaintext — are looked up in the
recording. With parameter encryption on, none may appear; with it switched off (the private
knob ``tpm_conn._PARAM_ENCRYPTION``) each must appear, which shows the search finds them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bus_recorder import BusRecorder
from swtpm_helper import swtpm  # noqa: F401  (fixture)

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_conn, tpm_keys
from cryptoki_shim.backends.tpm import TpmBackend
from cryptoki_shim.backends.tpm_attrs import (
    CKA_SHIM_TPM_AUTH,
    CKA_SHIM_TPM_PRIVATE,
    CKA_SHIM_TPM_PUBLIC,
)
from cryptoki_shim.config import SlotConfig
from cryptoki_shim.mechanisms.registry import lookup

PCRS = "sha256:16"
P256 = bytes.fromhex("06082a8648ce3d030107")
ED25519 = bytes.fromhex("06032b6570")


class Key:
    """What the backend is handed for a stored key: its attributes, a parse cache, an id."""

    def __init__(self, attrs: dict, unique_id: str) -> None:
        self.attrs, self.cache, self.unique_id = attrs, {}, unique_id


def set_lockout_auth(tcti: str, old: bytes, new: bytes) -> None:
    from tpm2_pytss.constants import ESYS_TR
    with tpm_conn.open_tpm(tcti, "test lockout auth") as conn:
        conn.ectx.tr_set_auth(ESYS_TR.LOCKOUT, old)
        conn.ectx.hierarchy_change_auth(ESYS_TR.LOCKOUT, new, session1=conn.secret_session(tpm_conn.SECRET_IN))


def scenario(direct_tcti: str, bus: BusRecorder) -> dict[str, bytes]:
    """Run every secret-carrying operation through ``bus``; return the secrets by name."""
    secrets: dict[str, bytes] = {}
    # 1. seal + unseal a known data key with a known auth value
    data, auth = os.urandom(32), os.urandom(32)
    with tpm_conn.open_tpm(bus.tcti, "bus seal") as conn:
        blob = tpm_keys.seal(conn, data, auth, PCRS)
    with tpm_conn.open_tpm(bus.tcti, "bus unseal") as conn:
        assert tpm_keys.unseal(conn, blob, auth, PCRS) == data
    secrets |= {"sealed data": data, "seal auth": auth}

    backend = TpmBackend(SlotConfig(id=0, tpm={"tcti": bus.tcti, "pcrs": PCRS, "unseal_cache_seconds": 0}))
    # 2. a sealed Ed25519 key: generated (sealed), then signs (unseal + software sign)
    pub, priv = backend.generate_key_pair(lookup(S.CKM_EC_EDWARDS_KEY_PAIR_GEN), None, {S.CKA_EC_PARAMS: ED25519}, {})
    ed = Key(priv, "ed")
    signature = backend.context_maker("sign", lookup(S.CKM_EDDSA))(lookup(S.CKM_EDDSA), None, ed).oneshot(b"bus")
    load_der_public_key(pub[S.CKA_PUBLIC_KEY_INFO]).verify(signature, b"bus")
    # what the sealed object holds (its data key) and the key itself, read outside the bus
    blob_ed = tpm_keys.Blob(priv[CKA_SHIM_TPM_PUBLIC], priv[CKA_SHIM_TPM_PRIVATE])
    with tpm_conn.open_tpm(direct_tcti, "test read data key") as conn:
        secrets["Ed25519 data key"] = tpm_keys.unseal(conn, blob_ed, priv[CKA_SHIM_TPM_AUTH], PCRS)
    direct = TpmBackend(SlotConfig(id=0, tpm={"tcti": direct_tcti, "pcrs": PCRS, "unseal_cache_seconds": 0}))
    secrets["Ed25519 private value"] = direct._unsealed(ed).attrs[S.CKA_VALUE]
    secrets["Ed25519 auth"] = priv[CKA_SHIM_TPM_AUTH]

    # 3. a resident P-256 key: created (auth value in), signs
    pub, priv = backend.generate_key_pair(lookup(S.CKM_EC_KEY_PAIR_GEN), None, {S.CKA_EC_PARAMS: P256}, {})
    digest = hashlib.sha256(b"bus").digest()
    rs = backend.context_maker("sign", lookup(S.CKM_ECDSA))(lookup(S.CKM_ECDSA), None, Key(priv, "p256")).oneshot(digest)
    assert len(rs) == 64
    secrets["P-256 auth"] = priv[CKA_SHIM_TPM_AUTH]

    # 4. a resident RSA-2048 key decrypts a known plaintext (the answer is the secret)
    pub, priv = backend.generate_key_pair(lookup(S.CKM_RSA_PKCS_KEY_PAIR_GEN), None, {S.CKA_MODULUS_BITS: 2048}, {})
    plaintext = os.urandom(32)
    ciphertext = load_der_public_key(pub[S.CKA_PUBLIC_KEY_INFO]).encrypt(plaintext, padding.PKCS1v15())
    got = backend.context_maker("decrypt", lookup(S.CKM_RSA_PKCS))(lookup(S.CKM_RSA_PKCS), None, Key(priv, "rsa")).oneshot(ciphertext)
    assert got == plaintext
    secrets |= {"RSA auth": priv[CKA_SHIM_TPM_AUTH], "RSA plaintext": plaintext}

    # 5. lockout reset with a known lockout auth (set and cleared outside the bus)
    lockout = os.urandom(16)
    set_lockout_auth(direct_tcti, b"", lockout)
    try:
        tpm_conn.reset_lockout(bus.tcti, lockout)
    finally:
        set_lockout_auth(direct_tcti, lockout, b"")
    secrets["lockout auth"] = lockout
    return secrets


@pytest.fixture
def bus(swtpm):
    recorder = BusRecorder(swtpm.tcti.removeprefix("swtpm:path="))
    yield recorder
    recorder.close()


def found(recorded: bytes, secrets: dict[str, bytes]) -> set[str]:
    return {name for name, value in secrets.items() if value in recorded}


def test_no_secret_crosses_the_bus_in_clear(swtpm, bus):
    secrets = scenario(swtpm.tcti, bus)
    recorded = bus.recorded()
    assert len(recorded) > 10_000  # the scenario's traffic did go through the recorder
    assert found(recorded, secrets) == set()


def test_without_parameter_encryption_the_recording_shows_them(swtpm, bus, monkeypatch):
    """The same scenario with the private knob off: the search finds every secret that the
    TPM handles (so the test above can fail). The Ed25519 private value never goes to the
    TPM at all (only its data key is sealed), so it is absent either way."""
    monkeypatch.setattr(tpm_conn, "_PARAM_ENCRYPTION", False)
    secrets = scenario(swtpm.tcti, bus)
    assert found(bus.recorded(), secrets) == set(secrets) - {"Ed25519 private value"}
