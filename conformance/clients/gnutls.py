"""GnuTLS: p11tool lists, generates and test-signs; certtool makes a self-signed certificate
with the token key. The PIN comes from GNUTLS_PIN (GnuTLS's non-interactive way)."""

from __future__ import annotations

import shutil

from cryptography import x509

from conformance.clients.common import same_key
from conformance.runner import Check, check
from conformance.target import Context, Target

NAME = "gnutls"
DESCRIPTION = "GnuTLS p11tool (--list-all, --generate-privkey, --test-sign) and certtool"


def requires(target: Target) -> str | None:
    for tool in ("p11tool", "certtool"):
        if not shutil.which(tool):
            return f"{tool} (gnutls-bin) is not installed"
    return None


def _token(ctx: Context) -> str:
    ctx.env.update(GNUTLS_PIN=ctx.pin, GNUTLS_SO_PIN=ctx.so_pin)
    return f"pkcs11:token={ctx.label}"


def p11tool(ctx: Context, *args: str):
    return ctx.must(["p11tool", "--provider", ctx.module, *args])


@check("p11tool --list-tokens", "C_GetTokenInfo through GnuTLS")
def list_tokens(ctx: Context) -> None:
    _token(ctx)
    out = p11tool(ctx, "--list-tokens").out
    assert f"token={ctx.label}" in out, out


def _gen(kind: str, label: str, *extra: str):
    def fn(ctx: Context) -> None:
        out = p11tool(ctx, "--login", f"--generate-privkey={kind}", *extra, f"--label={label}", "--outfile",
                      str(ctx.path(f"{label}.pub")), _token(ctx)).out
        assert "BEGIN PUBLIC KEY" in ctx.path(f"{label}.pub").read_text() + out
    return fn


gen_ec = Check("p11tool --generate-privkey ecdsa", _gen("ecdsa", "gt-ec", "--curve=secp256r1"), "C_GenerateKeyPair via GnuTLS")
gen_rsa = Check("p11tool --generate-privkey rsa", _gen("rsa", "gt-rsa", "--bits=2048"), "C_GenerateKeyPair via GnuTLS")


@check("p11tool --list-all", "C_FindObjects: the generated keys are listed")
def list_all(ctx: Context) -> None:
    ctx.need("p11tool --generate-privkey ecdsa")
    out = p11tool(ctx, "--login", "--list-all", _token(ctx)).out
    assert "gt-ec" in out and "Private key" in out, out


def _test_sign(label: str, need: str):
    def fn(ctx: Context) -> None:
        ctx.need(need)
        p = p11tool(ctx, "--login", "--test-sign", f"{_token(ctx)};object={label};type=private")
        text = p.out + p.err
        assert "Verifying against public key in the token... ok" in text, text
    return fn


test_sign_ec = Check("p11tool --test-sign ecdsa", _test_sign("gt-ec", "p11tool --generate-privkey ecdsa"), "GnuTLS signs and verifies (gnutls_pubkey_verify_data2)")
test_sign_rsa = Check("p11tool --test-sign rsa", _test_sign("gt-rsa", "p11tool --generate-privkey rsa"), "GnuTLS signs and verifies")


def _self_signed(label: str, need: str):
    def fn(ctx: Context) -> None:
        ctx.need(need)
        tmpl = ctx.path("cert.tmpl")
        tmpl.write_text('cn = "gnutls conformance"\nexpiration_days = 2\nsigning_key\nca\ncert_signing_key\n')
        cert = ctx.path(f"{label}.crt")
        ctx.must(["certtool", "--provider", ctx.module, "--generate-self-signed", "--load-privkey",
                  f"{_token(ctx)};object={label};type=private", "--load-pubkey",
                  f"{_token(ctx)};object={label};type=public", "--template", str(tmpl), "--outfile", str(cert)])
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        c.verify_directly_issued_by(c)   # pyca checks GnuTLS's signature made by the token
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        assert same_key(c.public_key(), load_pem_public_key(ctx.path(f"{label}.pub").read_bytes()))
        ctx.must(["certtool", "--verify", "--load-ca-certificate", str(cert), "--infile", str(cert)])
    return fn


cert_ec = Check("certtool --generate-self-signed ecdsa", _self_signed("gt-ec", "p11tool --generate-privkey ecdsa"), "pyca verifies the certificate")
cert_rsa = Check("certtool --generate-self-signed rsa", _self_signed("gt-rsa", "p11tool --generate-privkey rsa"), "pyca verifies the certificate")

CHECKS = [list_tokens, gen_ec, gen_rsa, list_all, test_sign_ec, test_sign_rsa, cert_ec, cert_rsa]


def checks(target: Target) -> list[Check]:
    return CHECKS
