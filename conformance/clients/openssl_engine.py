"""OpenSSL 3 through libp11's pkcs11 engine (``libengine-pkcs11-openssl``), keys named by
RFC 7512 ``pkcs11:`` URIs: the path of every OpenSSL-based server (nginx, stunnel, curl).

Keys are made by pkcs11-tool; signatures, decryptions, ECDH secrets, a CSR and a self-signed
certificate are then produced by OpenSSL with the token key and checked by pyca; the TLS
checks run ``s_server`` with the token key on 127.0.0.1 and a verifying ``s_client``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from conformance import crosscheck
from conformance.clients.common import public_key
from conformance.runner import Check, check
from conformance.target import Context, Target, free_port

NAME = "openssl-engine"
DESCRIPTION = "OpenSSL 3 + libp11 pkcs11 engine with pkcs11: URIs (sign, decrypt, ECDH, X.509, TLS)"

ENGINE_PATHS = [Path("/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so"), Path("/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so")]
MSG = b"openssl engine conformance message\n"


def _engine() -> Path | None:
    return next((p for p in ENGINE_PATHS if p.exists()), None)


def requires(target: Target) -> str | None:
    if not shutil.which("openssl"):
        return "openssl is not installed"
    if _engine() is None:
        return "libp11's pkcs11 engine (libengine-pkcs11-openssl) is not installed"
    if not shutil.which("pkcs11-tool"):
        return "pkcs11-tool (opensc) is needed to make the keys"
    return None


def _setup_env(ctx: Context) -> None:
    if "OPENSSL_CONF" in ctx.state:
        return
    conf = ctx.path("openssl.cnf")
    conf.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nengines = engine_section\n"
        "[engine_section]\npkcs11 = pkcs11_section\n[pkcs11_section]\nengine_id = pkcs11\n"
        f"dynamic_path = {_engine()}\nMODULE_PATH = {ctx.module}\nPIN = {ctx.pin}\ninit = 0\n"
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n")
    ctx.env["OPENSSL_CONF"] = str(conf)
    ctx.state["OPENSSL_CONF"] = str(conf)


def uri(ctx: Context, key_id: str, kind: str = "private") -> str:
    return f"pkcs11:token={ctx.label};id=%{key_id};type={kind};pin-value={ctx.pin}"



@check("keys (pkcs11-tool)", "setup: RSA-2048 id 01, EC P-256 id 02")
def keys(ctx: Context) -> None:
    _setup_env(ctx)
    ctx.tool("--keypairgen", "--key-type", "rsa:2048", "--id", "01", "--label", "rsa", "--usage-sign",
             "--usage-decrypt", login=True)
    ctx.tool("--keypairgen", "--key-type", "EC:prime256v1", "--id", "02", "--label", "ec", "--usage-sign",
             "--usage-derive", login=True)


def ossl(ctx: Context, *args: str, **kw) -> None:
    return ctx.must(["openssl", *args], **kw)


def _dgst_sign(key_id: str, hash: str):
    def fn(ctx: Context) -> None:
        ctx.need("keys (pkcs11-tool)")
        msg, sig = ctx.path("msg"), ctx.path(f"sig-{key_id}-{hash}")
        msg.write_bytes(MSG)
        ossl(ctx, "dgst", f"-{hash}", "-engine", "pkcs11", "-keyform", "engine", "-sign", uri(ctx, key_id),
             "-out", str(sig), str(msg))
        crosscheck.verify(public_key(ctx, key_id), sig.read_bytes(), MSG, hash=hash, ec_raw=False)
    return fn


sign_rsa = Check("dgst-sign-rsa-sha256", _dgst_sign("01", "sha256"), "EVP_PKEY via engine; pyca verifies")
sign_ec = Check("dgst-sign-ecdsa-sha384", _dgst_sign("02", "sha384"), "ECDSA DER from r||s; pyca verifies")


@check("pkeyutl-verify-with-token-pubkey", "engine public key loading (type=public)")
def verify_pub(ctx: Context) -> None:
    ctx.need("dgst-sign-rsa-sha256")
    ossl(ctx, "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-verify", uri(ctx, "01", "public"),
         "-signature", str(ctx.path("sig-01-sha256")), str(ctx.path("msg")))


@check("pkeyutl-decrypt-rsa", "C_Decrypt CKM_RSA_PKCS via engine; pyca encrypts")
def decrypt(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    secret = os.urandom(32)
    ct, out = ctx.path("ct"), ctx.path("pt")
    ct.write_bytes(public_key(ctx, "01").encrypt(secret, padding.PKCS1v15()))
    ossl(ctx, "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-decrypt", "-inkey", uri(ctx, "01"),
         "-in", str(ct), "-out", str(out))
    assert out.read_bytes() == secret, "decrypted plaintext differs"


@check("pkeyutl-derive-ecdh", "C_DeriveKey CKM_ECDH1_DERIVE via engine; pyca computes the same secret")
def derive(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_pem, out = ctx.path("peer.pem"), ctx.path("ecdh")
    peer_pem.write_bytes(peer.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    ossl(ctx, "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-derive", "-inkey", uri(ctx, "02"),
         "-peerkey", str(peer_pem), "-out", str(out))
    assert out.read_bytes() == peer.exchange(ec.ECDH(), public_key(ctx, "02")), "ECDH secret differs"


def _req(key_id: str, x509_cert: bool):
    def fn(ctx: Context) -> None:
        ctx.need("keys (pkcs11-tool)")
        out = ctx.path(f"{'cert' if x509_cert else 'csr'}-{key_id}.pem")
        args = ["req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", uri(ctx, key_id),
                "-sha256", "-out", str(out)]
        if x509_cert:
            args += ["-x509", "-days", "2", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        ossl(ctx, *args)
        pub = public_key(ctx, key_id)
        if x509_cert:
            cert = x509.load_pem_x509_certificate(out.read_bytes())
            cert.verify_directly_issued_by(cert)
            ossl(ctx, "verify", "-CAfile", str(out), str(out))
            got = cert.public_key()
        else:
            csr = x509.load_pem_x509_csr(out.read_bytes())
            assert csr.is_signature_valid, "CSR signature invalid (pyca)"
            ossl(ctx, "req", "-verify", "-noout", "-in", str(out), env={k: v for k, v in ctx.env.items() if k != "OPENSSL_CONF"})
            got = csr.public_key()
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert got.public_bytes(serialization.Encoding.DER, spki) == pub.public_bytes(serialization.Encoding.DER, spki)
    return fn


csr_rsa = Check("req-csr-rsa", _req("01", False), "openssl req -engine pkcs11 -keyform engine")
cert_rsa = Check("req-x509-rsa", _req("01", True), "self-signed certificate with the token key")
cert_ec = Check("req-x509-ec", _req("02", True), "self-signed certificate with the token key")


def _tls(key_id: str, version: str, need: str):
    def fn(ctx: Context) -> None:
        ctx.need(need)
        cert = ctx.path(f"cert-{key_id}.pem")
        port = free_port()
        server = subprocess.Popen(
            ["openssl", "s_server", "-engine", "pkcs11", "-keyform", "engine", "-key", uri(ctx, key_id),
             "-cert", str(cert), "-accept", f"127.0.0.1:{port}", f"-{version}", "-quiet"],
            env=ctx.env, cwd=ctx.work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_port(port, server)
            p = ctx.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(cert),
                         "-verify_return_error", "-verify_hostname", "localhost", f"-{version}", "-brief"],
                        input="hello over TLS\n", timeout=30,
                        env={k: v for k, v in ctx.env.items() if k != "OPENSSL_CONF"})
            text = p.out + p.err
            want = {"tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}[version]
            assert p.rc == 0 and "Verification: OK" in text and want in text, text[-1500:]
        finally:
            server.kill()
            out, err = server.communicate(timeout=10)
        assert b"hello over TLS" in out, f"server did not receive the data: {err.decode(errors='replace')[-800:]}"
    return fn


def _wait_port(port: int, server: subprocess.Popen, seconds: float = 20) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"s_server exited: {server.stderr.read().decode(errors='replace')[-800:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("s_server did not listen in time")


tls12 = Check("tls1.2-rsa-s_server", _tls("01", "tls1_2", "req-x509-rsa"), "RSA PKCS#1 v1.5 / PSS handshake signature by the token")
tls13_rsa = Check("tls1.3-rsa-pss-s_server", _tls("01", "tls1_3", "req-x509-rsa"), "TLS 1.3 needs RSA-PSS from the token")
tls13_ec = Check("tls1.3-ecdsa-s_server", _tls("02", "tls1_3", "req-x509-ec"), "ECDSA P-256 handshake signature")

CHECKS = [keys, sign_rsa, sign_ec, verify_pub, decrypt, derive, csr_rsa, cert_rsa, cert_ec, tls12, tls13_rsa, tls13_ec]


def checks(target: Target) -> list[Check]:
    return CHECKS
