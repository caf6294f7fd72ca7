"""OpenSC's pkcs11-tool: the everyday command-line client of any PKCS#11 module.

Every key it makes is used for real work whose result a second implementation checks:
signatures verified by pyca/OpenSSL from the exported public key, ciphertexts and wrapped
keys compared with values computed here from key bytes we chose and imported.
"""

from __future__ import annotations

import os
import shutil

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from conformance import crosscheck
from conformance.clients.common import public_key
from conformance.runner import Check, check
from conformance.target import Context, Target

NAME = "pkcs11-tool"
DESCRIPTION = "OpenSC pkcs11-tool: token admin, keygen, crypto, objects, built-in tests"

MSG = b"conformance: signed by a token key\n" * 3
KEK = bytes(range(32))                    # imported AES key-encryption key (id 06)
DATA_KEY = bytes(range(100, 132))         # imported extractable AES key (id 07)


def requires(target: Target) -> str | None:
    return None if shutil.which("pkcs11-tool") else "pkcs11-tool (opensc) is not installed"


def _msg(ctx: Context):
    p = ctx.path("msg.bin")
    p.write_bytes(MSG)
    return p



@check("info", "C_GetInfo §5.4")
def info(ctx: Context) -> None:
    out = ctx.tool("-I").out
    assert "Cryptoki version" in out and "Manufacturer" in out, out


@check("slots", "C_GetSlotList/C_GetTokenInfo §5.5")
def slots(ctx: Context) -> None:
    out = ctx.tool("-L").out
    assert ctx.label in out and "token initialized" in out and "PIN initialized" in out, out


@check("mechanisms", "C_GetMechanismList §5.5")
def mechanisms(ctx: Context) -> None:
    out = ctx.tool("-M").out
    for m in ("RSA-PKCS-KEY-PAIR-GEN", "ECDSA", "SHA256-RSA-PKCS", "AES-CBC"):
        assert m in out, f"{m} not listed:\n{out}"


@check("init-token", "C_InitToken §5.6 (re-initialization with the SO PIN)")
def init_token(ctx: Context) -> None:
    base = ["pkcs11-tool", "--module", ctx.module, "--token-label", ctx.label]
    ctx.must(base + ["--init-token", "--label", ctx.label, "--so-pin", ctx.so_pin])
    ctx.must(base + ["--init-pin", "--login", "--login-type", "so", "--so-pin", ctx.so_pin, "--pin", ctx.pin])
    ctx.tool("--login", "--pin", ctx.pin, "-O")


@check("change-pin", "C_SetPIN §5.6")
def change_pin(ctx: Context) -> None:
    ctx.tool("--change-pin", "--pin", ctx.pin, "--new-pin", "98765")
    bad = ctx.run(["pkcs11-tool", "--module", ctx.module, "--token-label", ctx.label,
                   "--login", "--pin", ctx.pin, "-O"])
    assert bad.rc != 0, "the old PIN still logs in"
    ctx.tool("--login", "--pin", "98765", "--change-pin", "--new-pin", ctx.pin)
    ctx.tool("--login", "--pin", ctx.pin, "-O")


def _keygen(key_type: str, key_id: str, *extra: str):
    def fn(ctx: Context) -> None:
        ctx.tool("--keypairgen", "--key-type", key_type, "--id", key_id, "--label", f"k{key_id}",
                 *extra, login=True)
        out = ctx.tool("-O", "--id", key_id, login=True).out
        assert "Private Key Object" in out and "Public Key Object" in out, out
    return fn


keygen_rsa = Check("keygen-rsa-2048", _keygen("rsa:2048", "01", "--usage-sign", "--usage-decrypt"), "C_GenerateKeyPair CKM_RSA_PKCS_KEY_PAIR_GEN")
keygen_ec = Check("keygen-ec-p256", _keygen("EC:prime256v1", "02", "--usage-sign", "--usage-derive"), "C_GenerateKeyPair CKM_EC_KEY_PAIR_GEN")
keygen_ed = Check("keygen-ed25519", _keygen("EC:edwards25519", "03"), "C_GenerateKeyPair CKM_EC_EDWARDS_KEY_PAIR_GEN")


def _secret_keygen(key_type: str, key_id: str):
    def fn(ctx: Context) -> None:
        ctx.tool("--keygen", "--key-type", key_type, "--id", key_id, "--label", f"k{key_id}", login=True)
        out = ctx.tool("-O", "--type", "secrkey", "--id", key_id, login=True).out
        assert "Secret Key Object" in out, out
    return fn


keygen_aes = Check("keygen-aes-256", _secret_keygen("AES:32", "04"), "C_GenerateKey CKM_AES_KEY_GEN")
keygen_generic = Check("keygen-generic-secret", _secret_keygen("GENERIC:32", "05"), "C_GenerateKey CKM_GENERIC_SECRET_KEY_GEN")


def _sign(key_id: str, mech: str, need: str, *, hash: str = "sha256", scheme: str = "pkcs1", extra=()):
    def fn(ctx: Context) -> None:
        ctx.need(need)
        sig = ctx.path(f"sig-{mech}")
        ctx.tool("--sign", "-m", mech, "--id", key_id, "-i", str(_msg(ctx)), "-o", str(sig), *extra, login=True)
        crosscheck.verify(public_key(ctx, key_id), sig.read_bytes(), MSG, hash=hash, scheme=scheme)
        ctx.tool("--verify", "-m", mech, "--id", key_id, "-i", str(_msg(ctx)), "--signature-file", str(sig),
                 *extra, login=True)
    return fn


sign_rsa = Check("sign-rsa-pkcs1-sha256", _sign("01", "SHA256-RSA-PKCS", "keygen-rsa-2048"), "pyca verifies")
sign_pss = Check("sign-rsa-pss-sha256", _sign("01", "SHA256-RSA-PKCS-PSS", "keygen-rsa-2048", scheme="pss",
                                              extra=("--mgf", "MGF1-SHA256")), "pyca verifies")
sign_ec = Check("sign-ecdsa-sha256", _sign("02", "ECDSA-SHA256", "keygen-ec-p256"), "pyca verifies")
sign_ed = Check("sign-eddsa", _sign("03", "EDDSA", "keygen-ed25519"), "pyca verifies")


@check("decrypt-rsa-oaep", "C_Decrypt CKM_RSA_PKCS_OAEP; pyca encrypts")
def decrypt_oaep(ctx: Context) -> None:
    ctx.need("keygen-rsa-2048")
    secret = os.urandom(32)
    pub = public_key(ctx, "01")
    ct = ctx.path("oaep.bin")
    ct.write_bytes(pub.encrypt(secret, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)))
    out = ctx.path("oaep.out")
    ctx.tool("--decrypt", "-m", "RSA-PKCS-OAEP", "--hash-algorithm", "SHA256", "--mgf", "MGF1-SHA256",
             "--id", "01", "-i", str(ct), "-o", str(out), login=True)
    assert out.read_bytes() == secret, "OAEP plaintext differs"


@check("decrypt-rsa-pkcs1", "C_Decrypt CKM_RSA_PKCS; pyca encrypts")
def decrypt_pkcs1(ctx: Context) -> None:
    ctx.need("keygen-rsa-2048")
    secret = os.urandom(24)
    ct = ctx.path("pkcs1.bin")
    ct.write_bytes(public_key(ctx, "01").encrypt(secret, padding.PKCS1v15()))
    out = ctx.path("pkcs1.out")
    ctx.tool("--decrypt", "-m", "RSA-PKCS", "--id", "01", "-i", str(ct), "-o", str(out), login=True)
    assert out.read_bytes() == secret, "PKCS#1 v1.5 plaintext differs"


@check("object-write-secret-keys", "C_CreateObject CKO_SECRET_KEY")
def write_keys(ctx: Context) -> None:
    for key_id, value in (("06", KEK), ("07", DATA_KEY)):
        f = ctx.path(f"key-{key_id}.bin")
        f.write_bytes(value)
        ctx.tool("--write-object", str(f), "--type", "secrkey", "--key-type", "AES:32", "--id", key_id,
                 "--label", f"k{key_id}", "--usage-wrap", "--usage-decrypt", "--extractable", login=True)


@check("encrypt-aes-cbc-pad", "C_Encrypt CKM_AES_CBC_PAD; pyca decrypts with the imported key")
def encrypt_aes(ctx: Context) -> None:
    ctx.need("object-write-secret-keys")
    iv = os.urandom(16)
    out = ctx.path("cbc.out")
    ctx.tool("--encrypt", "-m", "AES-CBC-PAD", "--iv", iv.hex(), "--id", "07", "-i", str(_msg(ctx)),
             "-o", str(out), login=True)
    d = Cipher(algorithms.AES(DATA_KEY), modes.CBC(iv)).decryptor()
    plain = d.update(out.read_bytes()) + d.finalize()
    assert plain[: len(MSG)] == MSG and len(plain) - len(MSG) == plain[-1], "AES-CBC-PAD ciphertext wrong"
    back = ctx.path("cbc.back")
    ctx.tool("--decrypt", "-m", "AES-CBC-PAD", "--iv", iv.hex(), "--id", "07", "-i", str(out),
             "-o", str(back), login=True)
    assert back.read_bytes() == MSG, "token decryption differs"


@check("wrap-aes-key-wrap", "C_WrapKey CKM_AES_KEY_WRAP; equals RFC 3394 by pyca")
def wrap(ctx: Context) -> None:
    ctx.need("object-write-secret-keys")
    out = ctx.path("wrapped.bin")
    ctx.tool("--wrap", "-m", "AES-KEY-WRAP", "--id", "06", "--application-id", "07", "-o", str(out), login=True)
    assert out.read_bytes() == aes_key_wrap(KEK, DATA_KEY), "wrapped bytes differ from RFC 3394"


@check("unwrap-aes-key-wrap", "C_UnwrapKey CKM_AES_KEY_WRAP; the key then decrypts pyca's ciphertext")
def unwrap(ctx: Context) -> None:
    ctx.need("object-write-secret-keys")
    value = os.urandom(32)
    wrapped = ctx.path("to-unwrap.bin")
    wrapped.write_bytes(aes_key_wrap(KEK, value))
    ctx.tool("--unwrap", "-m", "AES-KEY-WRAP", "--id", "06", "-i", str(wrapped), "--key-type", "AES:",
             "--application-id", "08", "--application-label", "unwrapped", login=True)
    iv = os.urandom(16)
    e = Cipher(algorithms.AES(value), modes.CBC(iv)).encryptor()
    ct = ctx.path("unwrapped-ct.bin")
    ct.write_bytes(e.update(MSG[:96]) + e.finalize())
    out = ctx.path("unwrapped-pt.bin")
    ctx.tool("--decrypt", "-m", "AES-CBC", "--iv", iv.hex(), "--id", "08", "-i", str(ct), "-o", str(out), login=True)
    assert out.read_bytes() == MSG[:96], "unwrapped key does not decrypt"
    assert aes_key_unwrap(KEK, wrapped.read_bytes()) == value


@check("derive-ecdh", "C_DeriveKey CKM_ECDH1_DERIVE; pyca computes the same secret")
def derive(ctx: Context) -> None:
    ctx.need("keygen-ec-p256")
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_der = ctx.path("peer.der")
    peer_der.write_bytes(peer.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    out = ctx.path("ecdh.bin")
    ctx.tool("--derive", "-m", "ECDH1-DERIVE", "--id", "02", "-i", str(peer_der), "-o", str(out), login=True)
    expected = peer.exchange(ec.ECDH(), public_key(ctx, "02"))
    assert out.read_bytes() == expected, "ECDH secret differs from pyca's"


@check("object-data-write-read-delete", "C_CreateObject/C_GetAttributeValue/C_DestroyObject CKO_DATA")
def data_objects(ctx: Context) -> None:
    blob = os.urandom(300)
    f = ctx.path("data.bin")
    f.write_bytes(blob)
    ctx.tool("--write-object", str(f), "--type", "data", "--label", "blob", login=True)
    out = ctx.path("data.out")
    ctx.tool("--read-object", "--type", "data", "--label", "blob", "-o", str(out), login=True)
    assert out.read_bytes() == blob, "data object value differs"
    ctx.tool("--delete-object", "--type", "data", "--label", "blob", login=True)
    listed = ctx.tool("-O", "--type", "data", login=True).out
    assert "blob" not in listed, "deleted object still listed"


@check("random", "C_GenerateRandom")
def random(ctx: Context) -> None:
    out = ctx.path("rnd")
    ctx.tool("--generate-random", "64", "-o", str(out))
    assert len(out.read_bytes()) == 64 and len(set(out.read_bytes())) > 16


def _builtin(flag: str, need: str | None, *extra: str, timeout: float = 240, ok: str = ""):
    """pkcs11-tool's own tests: exit status 0, and its summary line when it prints one."""
    def fn(ctx: Context) -> None:
        if need:
            ctx.need(need)
        p = ctx.tool(flag, *extra, "--session-rw", login=True, timeout=timeout)
        assert ok in p.out + p.err, (p.out + p.err)[-2000:]
    return fn


test_builtin = Check("--test", _builtin("--test", None, ok="No errors"), "pkcs11-tool's own test run")
test_ec = Check("--test-ec", _builtin("--test-ec", None, "--id", "09", "--key-type", "EC:prime256v1"), "pkcs11-tool's EC test")
test_fork = Check("--test-fork", _builtin("--test-fork", None, timeout=60), "C_Initialize in a forked child")

CHECKS = [info, slots, mechanisms, init_token, change_pin, keygen_rsa, keygen_ec, keygen_ed, keygen_aes,
          keygen_generic, sign_rsa, sign_pss, sign_ec, sign_ed, decrypt_oaep, decrypt_pkcs1, write_keys,
          encrypt_aes, wrap, unwrap, derive, data_objects, random, test_builtin, test_ec, test_fork]


def checks(target: Target) -> list[Check]:
    return CHECKS
