"""OpenSC's pkcs11-tool: the everyday command-line client of any PKCS#11 module.

Every key it makes is used for real work whose result a second implementation checks:
signatures verified by pyca/OpenSSL from the exported public key, ciphertexts and wrapped
keys compared with values computed here from key bytes we chose and imported.
"""

from __future__ import annotations

import os
import re
import shutil

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
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


# ---------------------------------------------------------------- issue 23: more of pkcs11-tool


@check("list-interfaces", "C_GetInterfaceList (3.0 §5.2): the 3.0 interface is offered")
def list_interfaces(ctx: Context) -> None:
    out = ctx.tool("--list-interfaces").out
    assert "Interface 'PKCS 11'" in out and "version: 3.0" in out, out


keygen_p384 = Check("keygen-ec-p384", _keygen("EC:secp384r1", "0a", "--usage-sign"), "C_GenerateKeyPair P-384")
keygen_p521 = Check("keygen-ec-p521", _keygen("EC:secp521r1", "0b", "--usage-sign"), "C_GenerateKeyPair P-521")
sign_p384 = Check("sign-ecdsa-sha384", _sign("0a", "ECDSA-SHA384", "keygen-ec-p384", hash="sha384"), "pyca verifies")
sign_p521 = Check("sign-ecdsa-sha512", _sign("0b", "ECDSA-SHA512", "keygen-ec-p521", hash="sha512"), "pyca verifies")
sign_rsa384 = Check("sign-rsa-pkcs1-sha384", _sign("01", "SHA384-RSA-PKCS", "keygen-rsa-2048", hash="sha384"),
                    "pyca verifies")
sign_rsa512 = Check("sign-rsa-pkcs1-sha512", _sign("01", "SHA512-RSA-PKCS", "keygen-rsa-2048", hash="sha512"),
                    "pyca verifies")
sign_pss512 = Check("sign-rsa-pss-sha512", _sign("01", "SHA512-RSA-PKCS-PSS", "keygen-rsa-2048", hash="sha512",
                                                 scheme="pss", extra=("--mgf", "MGF1-SHA512")), "pyca verifies")


@check("sign-ecdsa-raw", "C_Sign CKM_ECDSA on a SHA-256 digest; pyca verifies it as prehashed")
def sign_ecdsa_raw(ctx: Context) -> None:
    ctx.need("keygen-ec-p256")
    h = hashes.Hash(hashes.SHA256())
    h.update(MSG)
    digest = h.finalize()
    f, sig = ctx.path("digest.bin"), ctx.path("sig-ecdsa-raw")
    f.write_bytes(digest)
    ctx.tool("--sign", "-m", "ECDSA", "--id", "02", "-i", str(f), "-o", str(sig), login=True)
    raw = sig.read_bytes()
    n = len(raw) // 2
    der = utils.encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))
    public_key(ctx, "02").verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


@check("verify-rejects-tampered", "C_Verify of a signature with one bit flipped: CKR_SIGNATURE_INVALID")
def verify_tampered(ctx: Context) -> None:
    ctx.need("sign-rsa-pkcs1-sha256")
    sig = ctx.path("sig-SHA256-RSA-PKCS")
    bad = bytearray(sig.read_bytes())
    bad[5] ^= 0x01
    tampered = ctx.path("sig-tampered")
    tampered.write_bytes(bytes(bad))
    p = ctx.run(["pkcs11-tool", "--module", ctx.module, "--token-label", ctx.label, "--login", "--pin", ctx.pin,
                 "--verify", "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", str(_msg(ctx)), "--signature-file",
                 str(tampered)])
    assert p.rc != 0 or "Invalid signature" in p.out + p.err, p.text()
    assert "Signature is valid" not in p.out, p.text()


@check("decrypt-rsa-x509", "C_Decrypt CKM_RSA_X_509: the raw block pyca's public numbers encrypted")
def decrypt_x509(ctx: Context) -> None:
    ctx.need("keygen-rsa-2048")
    numbers = public_key(ctx, "01").public_numbers()
    k = (numbers.n.bit_length() + 7) // 8
    m = int.from_bytes(b"\x00" + os.urandom(k - 1), "big")
    ct, out = ctx.path("x509.bin"), ctx.path("x509.out")
    ct.write_bytes(pow(m, numbers.e, numbers.n).to_bytes(k, "big"))
    ctx.tool("--decrypt", "-m", "RSA-X-509", "--id", "01", "-i", str(ct), "-o", str(out), login=True)
    assert int.from_bytes(out.read_bytes(), "big") == m, "raw RSA plaintext differs"


#: pkcs11-tool's mechanism names (or the CKM_ value in hex, for SHA-3) -> pyca's hash
DIGESTS = {"SHA-1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
           "SHA512": hashes.SHA512, "0x2b0": hashes.SHA3_256, "0x2c0": hashes.SHA3_384, "0x2d0": hashes.SHA3_512}


@check("hash-sha1-sha2-sha3", "C_Digest SHA-1, SHA-2 and SHA-3 (CKM_SHA3_256/384/512 by value); pyca hashes")
def digests(ctx: Context) -> None:
    for mech, algorithm in DIGESTS.items():
        out = ctx.path(f"hash-{mech}")
        ctx.tool("--hash", "-m", mech, "-i", str(_msg(ctx)), "-o", str(out))
        h = hashes.Hash(algorithm())
        h.update(MSG)
        assert out.read_bytes() == h.finalize(), f"{mech} digest differs"


def _aes_mode(mech: str, mode):
    def fn(ctx: Context) -> None:
        ctx.need("object-write-secret-keys")
        data = MSG[:96]
        f, out, back = ctx.path(f"{mech}.in"), ctx.path(f"{mech}.out"), ctx.path(f"{mech}.back")
        f.write_bytes(data)
        iv = os.urandom(16)
        extra = ("--iv", iv.hex()) if mech != "AES-ECB" else ()
        ctx.tool("--encrypt", "-m", mech, *extra, "--id", "07", "-i", str(f), "-o", str(out), login=True)
        e = Cipher(algorithms.AES(DATA_KEY), mode(iv) if mech != "AES-ECB" else mode()).encryptor()
        assert out.read_bytes() == e.update(data) + e.finalize(), f"{mech} ciphertext differs from pyca's"
        ctx.tool("--decrypt", "-m", mech, *extra, "--id", "07", "-i", str(out), "-o", str(back), login=True)
        assert back.read_bytes() == data, f"{mech} decryption differs"
    return fn


encrypt_ecb = Check("encrypt-aes-ecb", _aes_mode("AES-ECB", modes.ECB), "C_Encrypt/C_Decrypt CKM_AES_ECB; pyca")
encrypt_cbc = Check("encrypt-aes-cbc", _aes_mode("AES-CBC", modes.CBC), "C_Encrypt/C_Decrypt CKM_AES_CBC; pyca")


@check("sign-hmac-sha256", "C_GenerateKey GENERIC extractable, C_GetAttributeValue(CKA_VALUE), C_Sign "
       "CKM_SHA256_HMAC; pyca computes the same MAC")
def sign_hmac(ctx: Context) -> None:
    ctx.tool("--keygen", "--key-type", "GENERIC:32", "--id", "0d", "--label", "k0d", "--usage-sign", "--extractable",
             login=True)
    value, mac = ctx.path("k0d.bin"), ctx.path("hmac.bin")
    ctx.tool("--read-object", "--type", "secrkey", "--id", "0d", "-o", str(value), login=True)
    ctx.tool("--sign", "-m", "SHA256-HMAC", "--id", "0d", "-i", str(_msg(ctx)), "-o", str(mac), login=True)
    h = hmac.HMAC(value.read_bytes(), hashes.SHA256())
    h.update(MSG)
    assert len(value.read_bytes()) == 32 and mac.read_bytes() == h.finalize(), "HMAC differs from pyca's"


@check("allowed-mechanisms", "CKA_ALLOWED_MECHANISMS set at generation: SHA384-RSA-PKCS refused "
       "(CKR_MECHANISM_INVALID), SHA256-RSA-PKCS signs (pyca verifies)")
def allowed_mechanisms(ctx: Context) -> None:
    ctx.tool("--keypairgen", "--key-type", "rsa:2048", "--id", "0e", "--label", "k0e", "--usage-sign",
             "--allowed-mechanisms", "SHA256-RSA-PKCS", login=True)
    sig = ctx.path("sig-allowed")
    p = ctx.run(["pkcs11-tool", "--module", ctx.module, "--token-label", ctx.label, "--login", "--pin", ctx.pin,
                 "--sign", "-m", "SHA384-RSA-PKCS", "--id", "0e", "-i", str(_msg(ctx)), "-o", str(sig)])
    assert p.rc != 0 and "CKR_MECHANISM_INVALID" in p.out + p.err, p.text()
    ctx.tool("--sign", "-m", "SHA256-RSA-PKCS", "--id", "0e", "-i", str(_msg(ctx)), "-o", str(sig), login=True)
    crosscheck.verify(public_key(ctx, "0e"), sig.read_bytes(), MSG)


@check("set-id", "C_SetAttributeValue(CKA_ID) of a private key (--set-id)")
def set_id(ctx: Context) -> None:
    ctx.need("allowed-mechanisms")
    ctx.tool("--set-id", "11", "--id", "0e", "--type", "privkey", login=True)
    listed = ctx.tool("-O", "--type", "privkey", login=True).out
    ids = re.findall(r"ID:\s+([0-9a-f]+)", listed)
    assert "11" in ids and "0e" not in ids, listed


PUBLIC_KEY_VALUE = bytes(range(200, 232))


@check("object-write-public-key-no-login", "C_CreateObject of a token AES key with CKA_PRIVATE FALSE in an "
       "R/W Public session (issue 23 item 5), listed without a login; pyca checks its ciphertext")
def public_key_no_login(ctx: Context) -> None:
    f = ctx.path("public-aes.bin")
    f.write_bytes(PUBLIC_KEY_VALUE)
    ctx.tool("--write-object", str(f), "--type", "secrkey", "--key-type", "AES:32", "--id", "0f", "--label", "k0f",
             "--usage-decrypt")
    listed = ctx.tool("-O", "--type", "secrkey").out
    assert re.search(r"ID:\s+0f\n", listed), listed
    data, out = ctx.path("pub-ecb.in"), ctx.path("pub-ecb.out")
    data.write_bytes(MSG[:32])
    ctx.tool("--encrypt", "-m", "AES-ECB", "--id", "0f", "-i", str(data), "-o", str(out), login=True)
    e = Cipher(algorithms.AES(PUBLIC_KEY_VALUE), modes.ECB()).encryptor()
    assert out.read_bytes() == e.update(MSG[:32]) + e.finalize(), "the public key's ciphertext differs"


@check("keypairgen-private-needs-login", "C_GenerateKeyPair of a private key (pkcs11-tool sets CKA_PRIVATE TRUE) "
       "without a login: CKR_USER_NOT_LOGGED_IN, nothing stored")
def keypairgen_no_login(ctx: Context) -> None:
    p = ctx.run(["pkcs11-tool", "--module", ctx.module, "--token-label", ctx.label, "--keypairgen",
                 "--key-type", "EC:prime256v1", "--id", "12", "--label", "k12"], input="")
    assert p.rc != 0 and "CKR_USER_NOT_LOGGED_IN" in p.out + p.err, p.text()
    listed = ctx.tool("-O", login=True).out
    assert not re.search(r"ID:\s+12\n", listed), listed


@check("object-write-private-key", "C_CreateObject of an RSA private key (PKCS#8 from pyca), C_Sign "
       "SHA256-RSA-PKCS with it; pyca verifies with its own public key")
def write_private_key(ctx: Context) -> None:
    key = rsa.generate_private_key(65537, 2048)
    f, sig = ctx.path("imported.der"), ctx.path("sig-imported")
    f.write_bytes(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    ctx.tool("--write-object", str(f), "--type", "privkey", "--id", "0c", "--label", "k0c", "--usage-sign", login=True)
    ctx.tool("--sign", "-m", "SHA256-RSA-PKCS", "--id", "0c", "-i", str(_msg(ctx)), "-o", str(sig), login=True)
    crosscheck.verify(key.public_key(), sig.read_bytes(), MSG)


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
          encrypt_aes, wrap, unwrap, derive, data_objects, random,
          list_interfaces, keygen_p384, keygen_p521, sign_p384, sign_p521, sign_rsa384, sign_rsa512, sign_pss512,
          sign_ecdsa_raw, verify_tampered, decrypt_x509, digests, encrypt_ecb, encrypt_cbc, sign_hmac,
          allowed_mechanisms, set_id, public_key_no_login, keypairgen_no_login, write_private_key,
          test_builtin, test_ec, test_fork]


def checks(target: Target) -> list[Check]:
    return CHECKS
