"""The TPM backend end to end through the built library, on a real swtpm (issue 5).

One swtpm and one token per module; policy PCR 16 (resettable, debug) so tests can extend
it and reset it. Keys are generated with C_GenerateKeyPair and checked with pyca/OpenSSL.
"""

from __future__ import annotations

import hashlib
import contextlib
import os
import subprocess
from pathlib import Path

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

from p11 import SO_PIN, USER_PIN, write_config
from p11 import P11, ffi, raises_ckr
from swtpm_helper import swtpm  # noqa: F401  (fixture)

from cryptoki_shim import spec as S
from cryptoki_shim.backends import tpm_attest, tpm_backup, tpm_conn, tpm_keys
from cryptoki_shim.backends.tpm_attrs import (
    CKA_SHIM_TPM_ESCROW, CKA_SHIM_TPM_KIND, CKA_SHIM_TPM_PCRS, CKA_SHIM_TPM_PUBLIC, TPM_KIND_RESIDENT,
    TPM_KIND_SEALED,
)

PCRS = "sha256:16"
P256 = bytes.fromhex("06082a8648ce3d030107")
P384 = bytes.fromhex("06052b81040022")
ED25519 = bytes.fromhex("06032b6570")
IDENTITY = None  # set in the fixture (age X25519 escrow identity)


def slot_config(tcti: str, *, cache: int = 0, escrow: str = "") -> str:
    return (f'[[slots]]\nid = 0\nkdf_cost = "test"\nbackend = "tpm"\n'
            f'[slots.tpm]\ntcti = "{tcti}"\npcrs = "{PCRS}"\nunseal_cache_seconds = {cache}\n'
            f'escrow_recipient = "{escrow}"\n')


@pytest.fixture(scope="module")
def env(swtpm, lib_path, tmp_path_factory):
    """(client, session, config path) on a token whose slot uses the TPM backend."""
    import pyrage
    identity = pyrage.x25519.Identity.generate()
    directory = tmp_path_factory.mktemp("tpm")
    conf = write_config(directory, slots=slot_config(swtpm.tcti, escrow=str(identity.to_public())))
    with user_token(lib_path, conf, "tpm") as (client, s):
        yield client, s, conf, identity


@contextlib.contextmanager
def user_token(lib_path, conf, label: str):
    """(client, user session) on slot 0 of ``conf``: token initialised, user PIN set and
    logged in; CRYPTOKI_SHIM_CONF points at ``conf`` until the module is finalized."""
    old = os.environ.get("CRYPTOKI_SHIM_CONF")
    os.environ["CRYPTOKI_SHIM_CONF"] = str(conf)
    client = P11(lib_path)
    try:
        client.initialize()
        client.init_token(0, SO_PIN, label)
        s = client.open(0)
        client.login(s, SO_PIN, user=S.CKU_SO)
        client.init_pin(s, USER_PIN)
        client.logout(s)
        client.login(s, USER_PIN)
        yield client, s
    finally:
        client.call("C_Finalize", ffi.NULL)
        if old is None:
            os.environ.pop("CRYPTOKI_SHIM_CONF", None)
        else:
            os.environ["CRYPTOKI_SHIM_CONF"] = old


@pytest.fixture(autouse=True)
def clean_pcr(swtpm):
    with tpm_conn.open_tpm(swtpm.tcti, "test reset", with_srk=False) as conn:
        from tpm2_pytss.constants import ESYS_TR
        conn.ectx.pcr_reset(ESYS_TR.PCR16)
    yield


def extend_pcr16(tcti: str) -> None:
    from tpm2_pytss.constants import ESYS_TR
    with tpm_conn.open_tpm(tcti, "test extend", with_srk=False) as conn:
        conn.ectx.pcr_event(ESYS_TR.PCR16, b"firmware update")


def gen_ec(client, s, params: bytes, kind: int | None = None, label: bytes = b"k", key_id: bytes = b"\x01"):
    priv = {S.CKA_TOKEN: True, S.CKA_SIGN: True, S.CKA_LABEL: label, S.CKA_ID: key_id}
    if kind is not None:
        priv[CKA_SHIM_TPM_KIND] = kind
    mech = S.CKM_EC_EDWARDS_KEY_PAIR_GEN if params == ED25519 else S.CKM_EC_KEY_PAIR_GEN
    return client.generate_key_pair(s, mech, {S.CKA_TOKEN: True, S.CKA_EC_PARAMS: params, S.CKA_LABEL: label,
                                              S.CKA_ID: key_id}, priv)


def public_key(client, s, pub_handle):
    return serialization.load_der_public_key(client.get(s, pub_handle, S.CKA_PUBLIC_KEY_INFO))


def rs_to_der(sig: bytes) -> bytes:
    half = len(sig) // 2
    return utils.encode_dss_signature(int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big"))


# --------------------------------------------------------------------------- key kinds

@pytest.mark.parametrize("params,curve_hash", [(P256, hashes.SHA256), (P384, hashes.SHA384)])
def test_resident_ecdsa_signs_in_tpm_and_pyca_verifies(env, params, curve_hash):
    client, s, _, _ = env
    pub, priv = gen_ec(client, s, params)
    assert client.get(s, priv, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_TPM
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_RESIDENT
    assert client.get(s, priv, S.CKA_SENSITIVE) is True and client.get(s, priv, S.CKA_EXTRACTABLE) is False
    key = public_key(client, s, pub)
    data = b"node identity"
    sig = client.sign(s, S.CKM_ECDSA_SHA256, priv, data)
    assert len(sig) == 2 * key.curve.key_size // 8
    key.verify(rs_to_der(sig), data, ec.ECDSA(hashes.SHA256()))
    # CKM_ECDSA over a SHA-512 digest: truncated to the order's bits (spec §2.3.1)
    digest = hashlib.sha512(data).digest()
    sig = client.sign(s, S.CKM_ECDSA, priv, digest)
    key.verify(rs_to_der(sig), digest[: key.curve.key_size // 8], ec.ECDSA(utils.Prehashed(curve_hash())))
    client.verify(s, S.CKM_ECDSA_SHA256, pub, data, client.sign(s, S.CKM_ECDSA_SHA256, priv, data))


def test_resident_rsa_pkcs1_pss_and_decrypt(env):
    client, s, _, _ = env
    pub, priv = client.generate_key_pair(
        s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, {S.CKA_TOKEN: True, S.CKA_MODULUS_BITS: 2048},
        {S.CKA_TOKEN: True, S.CKA_SIGN: True, S.CKA_DECRYPT: True, S.CKA_LABEL: b"rsa"})
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_RESIDENT
    key = public_key(client, s, pub)
    data = b"hello rsa"
    key.verify(client.sign(s, S.CKM_SHA256_RSA_PKCS, priv, data), data, padding.PKCS1v15(), hashes.SHA256())
    pss = ffi.new("CK_RSA_PKCS_PSS_PARAMS *", {"hashAlg": S.CKM_SHA256, "mgf": S.CKG_MGF1_SHA256, "sLen": 32})
    sig = client.sign(s, S.CKM_SHA256_RSA_PKCS_PSS, priv, data, pss)
    key.verify(sig, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    ciphertext = key.encrypt(b"secret", padding.PKCS1v15())
    assert client.decrypt(s, S.CKM_RSA_PKCS, priv, ciphertext) == b"secret"
    oaep = ffi.new("CK_RSA_PKCS_OAEP_PARAMS *", {"hashAlg": S.CKM_SHA256, "mgf": S.CKG_MGF1_SHA256,
                                                 "source": S.CKZ_DATA_SPECIFIED})
    ciphertext = key.encrypt(b"secret2", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert client.decrypt(s, S.CKM_RSA_PKCS_OAEP, priv, ciphertext, oaep) == b"secret2"


def test_sealed_ed25519_signs_after_unseal(env):
    client, s, _, identity = env
    pub, priv = gen_ec(client, s, ED25519, label=b"ed")
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
    key = public_key(client, s, pub)
    sig = client.sign(s, S.CKM_EDDSA, priv, b"msg")
    key.verify(sig, b"msg")
    # the private value is not an attribute of the object: only the sealed envelope is stored
    with raises_ckr(S.CKR_ATTRIBUTE_TYPE_INVALID):
        client.get(s, priv, S.CKA_VALUE)


def test_sealed_p256_when_kind_forced(env):
    client, s, _, _ = env
    pub, priv = gen_ec(client, s, P256, kind=TPM_KIND_SEALED, label=b"sealed-p256")
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
    sig = client.sign(s, S.CKM_ECDSA_SHA256, priv, b"x")
    public_key(client, s, pub).verify(rs_to_der(sig), b"x", ec.ECDSA(hashes.SHA256()))


def test_secp256k1_cannot_be_resident(env):
    client, s, _, _ = env
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        gen_ec(client, s, bytes.fromhex("06052b8104000a"), kind=TPM_KIND_RESIDENT)


def test_sealed_aes_key(env):
    client, s, _, _ = env
    h = client.generate_key(s, S.CKM_AES_KEY_GEN, {S.CKA_VALUE_LEN: 32, S.CKA_TOKEN: True, S.CKA_ENCRYPT: True,
                                                   S.CKA_DECRYPT: True})
    assert client.get(s, h, S.CKA_SHIM_BACKEND) == S.SHIM_BACKEND_TPM
    iv = os.urandom(16)
    ct = client.encrypt(s, S.CKM_AES_CBC_PAD, h, b"data" * 5, iv)
    assert client.decrypt(s, S.CKM_AES_CBC_PAD, h, ct, iv) == b"data" * 5


def test_tpm_keys_cannot_be_wrapped(env):
    client, s, _, _ = env
    wrapper = client.generate_key(s, S.CKM_AES_KEY_GEN, {S.CKA_VALUE_LEN: 32, S.CKA_WRAP: True,
                                                         S.CKA_SHIM_BACKEND: S.SHIM_BACKEND_SOFTWARE})
    _, priv = gen_ec(client, s, ED25519, label=b"nowrap")
    with raises_ckr(S.CKR_KEY_UNEXTRACTABLE):
        m, _keep = client.mechanism(S.CKM_AES_KEY_WRAP_PAD)
        n = ffi.new("CK_ULONG *")
        client.check("C_WrapKey", s, m, wrapper, priv, ffi.NULL, n)
    with raises_ckr(S.CKR_ATTRIBUTE_READ_ONLY):
        client.set(s, priv, {S.CKA_EXTRACTABLE: True})


# --------------------------------------------------------------------------- failures map to clear codes

def test_pcr_change_refuses_with_function_rejected(env, swtpm):
    client, s, _, _ = env
    _, sealed = gen_ec(client, s, ED25519, label=b"pcr-sealed")
    _, resident = gen_ec(client, s, P256, label=b"pcr-resident")
    extend_pcr16(swtpm.tcti)
    m, _keep = client.mechanism(S.CKM_EDDSA)
    assert client.call("C_SignInit", s, m, sealed) == S.CKR_FUNCTION_REJECTED
    with raises_ckr(S.CKR_FUNCTION_REJECTED):
        client.sign(s, S.CKM_ECDSA_SHA256, resident, b"x")
    # the module keeps serving: a software key still signs, and the TPM keys come back
    soft_pub, soft = client.generate_key_pair(s, S.CKM_EC_EDWARDS_KEY_PAIR_GEN, {S.CKA_EC_PARAMS: ED25519},
                                              {S.CKA_SHIM_BACKEND: S.SHIM_BACKEND_SOFTWARE, S.CKA_SIGN: True})
    assert client.sign(s, S.CKM_EDDSA, soft, b"x")
    with tpm_conn.open_tpm(swtpm.tcti, "reset", with_srk=False) as conn:
        from tpm2_pytss.constants import ESYS_TR
        conn.ectx.pcr_reset(ESYS_TR.PCR16)
    assert client.sign(s, S.CKM_EDDSA, sealed, b"x")
    assert client.sign(s, S.CKM_ECDSA_SHA256, resident, b"x")


def test_tss_messages_never_reach_stderr(env, swtpm, lib_path):
    """pkcs11-tool signing while the PCR is wrong: the TSS library's errors stay silent."""
    client, s, conf, _ = env
    gen_ec(client, s, P256, label=b"tool-quiet", key_id=b"\x42")
    extend_pcr16(swtpm.tcti)
    run = subprocess.run(["pkcs11-tool", "--module", str(lib_path), "-l", "--pin", USER_PIN.decode(), "--sign",
                          "-m", "ECDSA-SHA256", "--id", "42", "-i", "/etc/hostname", "-o", os.devnull],
                         capture_output=True, env={**os.environ, "CRYPTOKI_SHIM_CONF": str(conf)})
    assert run.returncode != 0
    assert b"(0x200)" in run.stderr  # CKR_FUNCTION_REJECTED, as pkcs11-tool prints it
    assert b"esys" not in run.stderr.lower() and b"tcti" not in run.stderr.lower()


def test_wrong_pin_gets_no_key_and_the_right_one_does(env):
    """The auth value is encrypted with the PIN-unwrapped token key: a wrong PIN is
    CKR_PIN_INCORRECT and without a login the TPM key is not usable (not even visible)."""
    client, s, _, _ = env
    _, priv = gen_ec(client, s, ED25519, label=b"pin")
    client.logout(s)
    try:
        with raises_ckr(S.CKR_PIN_INCORRECT):
            client.login(s, b"9999")
        assert not client.find(s, {S.CKA_LABEL: b"pin", S.CKA_CLASS: S.CKO_PRIVATE_KEY})
        m, _keep = client.mechanism(S.CKM_EDDSA)
        assert client.call("C_SignInit", s, m, priv) in (S.CKR_KEY_HANDLE_INVALID, S.CKR_USER_NOT_LOGGED_IN)
    finally:
        client.login(s, USER_PIN)
    [priv] = client.find(s, {S.CKA_LABEL: b"pin", S.CKA_CLASS: S.CKO_PRIVATE_KEY})
    assert client.sign(s, S.CKM_EDDSA, priv, b"x")


def test_lockout_and_recovery(env, swtpm):
    """Three wrong auth values (someone guessing against a blob) lock the TPM: our keys then
    answer CKR_PIN_LOCKED until the owner resets the lockout."""
    client, s, _, _ = env
    _, priv = gen_ec(client, s, ED25519, label=b"lockout")
    with tpm_conn.open_tpm(swtpm.tcti, "test seal") as conn:
        victim = tpm_keys.seal(conn, b"x", b"right", PCRS)
    codes = []
    for _ in range(4):
        try:
            with tpm_conn.open_tpm(swtpm.tcti, "guess") as conn:
                tpm_keys.unseal(conn, victim, b"wrong", PCRS)
        except Exception as exc:  # noqa: BLE001 - collecting CryptokiError codes
            codes.append(exc.ckr)
    assert codes[0] == S.CKR_PIN_INCORRECT and codes[-1] == S.CKR_PIN_LOCKED
    m, _keep = client.mechanism(S.CKM_EDDSA)
    assert client.call("C_SignInit", s, m, priv) == S.CKR_PIN_LOCKED
    tpm_conn.reset_lockout(swtpm.tcti)
    assert client.sign(s, S.CKM_EDDSA, priv, b"back")


def test_corrupted_blob_is_device_error(env, swtpm):
    from cryptoki_shim.backends.tpm import TpmBackend
    from cryptoki_shim.config import SlotConfig
    backend = TpmBackend(SlotConfig(id=9, tpm={"tcti": swtpm.tcti, "pcrs": PCRS}))
    client, s, _, _ = env
    _, priv = gen_ec(client, s, ED25519, label=b"corrupt")

    class Key:  # the key as the core would hand it over, with one byte of the blob flipped
        unique_id = "x"
        cache: dict = {}
        attrs = {}
    from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_AUTH, CKA_SHIM_TPM_PRIVATE, CKA_SHIM_TPM_SEALED
    for t in (CKA_SHIM_TPM_PUBLIC, CKA_SHIM_TPM_PRIVATE, CKA_SHIM_TPM_PCRS, CKA_SHIM_TPM_SEALED, CKA_SHIM_TPM_KIND):
        Key.attrs[t] = client.get(s, priv, t)
    Key.attrs[CKA_SHIM_TPM_AUTH] = b"a" * 32
    blob = bytearray(Key.attrs[CKA_SHIM_TPM_PRIVATE])
    blob[-5] ^= 1
    Key.attrs[CKA_SHIM_TPM_PRIVATE] = bytes(blob)
    with pytest.raises(Exception) as info:
        backend._unsealed(Key)
    assert info.value.ckr == S.CKR_DEVICE_ERROR
    unreachable = TpmBackend(SlotConfig(id=9, tpm={"tcti": "swtpm:path=/tmp/nothing-here/s", "pcrs": PCRS}))
    with pytest.raises(Exception) as info:
        unreachable._unsealed(Key)
    assert info.value.ckr == S.CKR_DEVICE_REMOVED


# --------------------------------------------------------------------------- persistence

def test_keys_survive_restart_of_swtpm_and_of_the_process(env, swtpm, lib_path):
    client, s, conf, _ = env
    pub, sealed = gen_ec(client, s, ED25519, label=b"persist-ed")
    rpub, resident = gen_ec(client, s, P256, label=b"persist-p256")
    swtpm.restart()
    public_key(client, s, pub).verify(client.sign(s, S.CKM_EDDSA, sealed, b"a"), b"a")
    sig = client.sign(s, S.CKM_ECDSA_SHA256, resident, b"a")
    public_key(client, s, rpub).verify(rs_to_der(sig), b"a", ec.ECDSA(hashes.SHA256()))
    # a new process: pkcs11-tool finds and uses the resident key; OpenSSL verifies
    client.set(s, resident, {S.CKA_ID: b"\x77"})
    pem = public_key(client, s, rpub).public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    work = Path(swtpm.dir)
    (work / "pub.pem").write_bytes(pem)
    (work / "in").write_bytes(b"signed by pkcs11-tool")
    env_vars = {**os.environ, "CRYPTOKI_SHIM_CONF": str(conf)}
    subprocess.run(["pkcs11-tool", "--module", str(lib_path), "-l", "--pin", USER_PIN.decode(), "--sign",
                    "-m", "ECDSA-SHA256", "--id", "77", "--signature-format", "openssl",
                    "-i", str(work / "in"), "-o", str(work / "sig")], check=True, capture_output=True, env=env_vars)
    subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(work / "pub.pem"), "-signature",
                    str(work / "sig"), str(work / "in")], check=True, capture_output=True)


# --------------------------------------------------------------------------- attestation

def test_attestation_verifies_and_tampering_is_rejected(env, swtpm):
    client, s, _, _ = env
    _, priv = gen_ec(client, s, P256, label=b"attest")
    attrs = {t: client.get(s, priv, t) for t in (CKA_SHIM_TPM_PUBLIC, CKA_SHIM_TPM_PCRS, S.CKA_PUBLIC_KEY_INFO)}
    nonce = os.urandom(32)
    doc = tpm_attest.attest_key(swtpm.tcti, attrs, nonce)
    tpm_attest.verify_attestation(doc, nonce, ak_public=doc["ak_public"])
    bad_quote = dict(doc, quote=doc["quote"][:-2] + ("00" if doc["quote"][-2:] != "00" else "01"))
    bad_pcr = dict(doc, pcr_values=["11" * 32])
    bad_key = dict(doc, public_key_info=client.get(s, gen_ec(client, s, P256, label=b"other")[0],
                                                    S.CKA_PUBLIC_KEY_INFO).hex())
    for tampered, why in ((bad_quote, "signature"), (bad_pcr, "PCR"), (bad_key, "public key")):
        with pytest.raises(tpm_attest.AttestationError, match=why):
            tpm_attest.verify_attestation(tampered, nonce)
    with pytest.raises(tpm_attest.AttestationError, match="nonce"):
        tpm_attest.verify_attestation(doc, os.urandom(32))
    extend_pcr16(swtpm.tcti)  # the platform changed: a fresh quote no longer matches the key's policy
    later = tpm_attest.attest_key(swtpm.tcti, attrs, nonce)
    with pytest.raises(tpm_attest.AttestationError, match="policy"):
        tpm_attest.verify_attestation(later, nonce)


# --------------------------------------------------------------------------- backup and escrow

def test_backup_wipe_restore_sign(env, swtpm):
    import pyrage
    from cryptoki_shim import config as config_mod
    from cryptoki_shim.core.token import Token
    from cryptoki_shim.store import Store
    client, s, conf, _ = env
    pub, priv = gen_ec(client, s, ED25519, label=b"backed-up", key_id=b"\x90")
    rpub, rpriv = gen_ec(client, s, P256, label=b"backed-up-r", key_id=b"\x91")
    ed_pub, p256_pub = public_key(client, s, pub), public_key(client, s, rpub)
    backup_identity = pyrage.x25519.Identity.generate()
    cfg = config_mod.load()
    store = Store(cfg.store_url)
    token = Token(cfg.slots[0], store)
    token.login(S.CKU_USER, USER_PIN)
    data = tpm_backup.export_token(token, recipient=str(backup_identity.to_public()))
    assert b"backed-up" not in data
    for h in (pub, priv, rpub, rpriv):  # wipe
        client.destroy(s, h)
    assert not client.find(s, {S.CKA_LABEL: b"backed-up"})
    added = tpm_backup.restore_token(token, data, identity=str(backup_identity))
    assert added >= 4
    assert tpm_backup.restore_token(token, data, identity=str(backup_identity)) == 0
    [ed] = client.find(s, {S.CKA_LABEL: b"backed-up", S.CKA_CLASS: S.CKO_PRIVATE_KEY})
    [p256] = client.find(s, {S.CKA_LABEL: b"backed-up-r", S.CKA_CLASS: S.CKO_PRIVATE_KEY})
    ed_pub.verify(client.sign(s, S.CKM_EDDSA, ed, b"restored"), b"restored")
    p256_pub.verify(rs_to_der(client.sign(s, S.CKM_ECDSA_SHA256, p256, b"r")), b"r", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(Exception):
        tpm_backup.import_keys(data, identity=str(pyrage.x25519.Identity.generate()))


def test_escrow_migrates_a_sealed_key_to_another_tpm(env, swtpm):
    from swtpm_helper import Swtpm
    from cryptoki_shim.backends.tpm import TpmBackend
    from cryptoki_shim.config import SlotConfig
    from cryptoki_shim.mechanisms.registry import lookup
    client, s, _, identity = env
    pub, priv = gen_ec(client, s, ED25519, label=b"escrowed")
    escrow = client.get(s, priv, CKA_SHIM_TPM_ESCROW)
    attrs = {S.CKA_CLASS: S.CKO_PRIVATE_KEY, S.CKA_KEY_TYPE: S.CKK_EC_EDWARDS,
             S.CKA_EC_PARAMS: ED25519, CKA_SHIM_TPM_ESCROW: escrow, S.CKA_SIGN: True}
    secret = tpm_backup.escrow_decrypt(attrs, str(identity))
    recovered = ed25519.Ed25519PrivateKey.from_private_bytes(secret[S.CKA_VALUE])
    assert recovered.public_key().public_bytes_raw() == public_key(client, s, pub).public_bytes_raw()
    other = Swtpm()
    other.start()
    try:
        backend = TpmBackend(SlotConfig(id=1, tpm={"tcti": other.tcti, "pcrs": PCRS, "unseal_cache_seconds": 0}))
        moved = backend.reseal(attrs, secret)

        class Key:
            unique_id = "moved"
            cache: dict = {}
        Key.attrs = moved
        ctx = backend.context_maker("sign", lookup(S.CKM_EDDSA))(lookup(S.CKM_EDDSA), None, Key)
        recovered.public_key().verify(ctx.oneshot(b"on the new TPM"), b"on the new TPM")
    finally:
        other.remove()


def test_resident_rsa_sign_recover_signs_in_the_tpm(env):
    """C_SignRecover with a TPM-resident RSA key is the C_Sign signature made in the TPM (the
    backend is asked for a sign context), never a private operation of another kind: the key
    has no CKA_DECRYPT. C_VerifyRecover gives the data back from the public key."""
    client, s, _, _ = env
    pub, priv = client.generate_key_pair(
        s, S.CKM_RSA_PKCS_KEY_PAIR_GEN, {S.CKA_TOKEN: False, S.CKA_MODULUS_BITS: 2048, S.CKA_VERIFY_RECOVER: True},
        {S.CKA_TOKEN: False, S.CKA_SIGN: True, S.CKA_SIGN_RECOVER: True, S.CKA_DECRYPT: False})
    assert client.get(s, priv, CKA_SHIM_TPM_KIND) == TPM_KIND_RESIDENT
    m, _keep = client.mechanism(S.CKM_RSA_PKCS)
    client.check("C_SignRecoverInit", s, m, priv)
    sig = client._two_pass("C_SignRecover", s, b"recover me", 10)
    assert public_key(client, s, pub).recover_data_from_signature(sig, padding.PKCS1v15(), None) == b"recover me"
    client.check("C_VerifyRecoverInit", s, m, pub)
    assert client._two_pass("C_VerifyRecover", s, sig, len(sig)) == b"recover me"
