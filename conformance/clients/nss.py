"""NSS (Firefox, Thunderbird, certutil): the module added to a fresh NSS database with
``modutil -add``, its token listed by ``certutil -L -h all`` / ``-K``, and self-signed
certificates made by ``certutil -S`` with keys generated on the token (NSS signs through
C_Sign). pyca verifies each certificate's signature."""

from __future__ import annotations

import os
import shutil

from cryptography import x509

from conformance.runner import Check, check
from conformance.target import Context, Target

NAME = "nss"
DESCRIPTION = "NSS modutil -add, certutil -L/-K, certutil -S signing with a token key"


def requires(target: Target) -> str | None:
    for tool in ("modutil", "certutil"):
        if not shutil.which(tool):
            return f"{tool} (libnss3-tools) is not installed"
    return None


def _db(ctx: Context) -> str:
    return f"sql:{ctx.path('nssdb')}"


def _pw(ctx: Context) -> str:
    pw = ctx.path("pin.txt")
    pw.write_text(ctx.pin + "\n")
    return str(pw)


@check("modutil -add", "C_Initialize with NSS's CK_C_INITIALIZE_ARGS (pReserved config string)")
def add(ctx: Context) -> None:
    ctx.path("nssdb").mkdir()
    ctx.must(["certutil", "-N", "-d", _db(ctx), "--empty-password"])
    ctx.must(["modutil", "-dbdir", _db(ctx), "-add", "conformance", "-libfile", ctx.module, "-force"])
    out = ctx.must(["modutil", "-dbdir", _db(ctx), "-list", "conformance", "-force"]).out
    assert ctx.label in out, out


@check("certutil -L -h all", "certificates of every token (needs C_FindObjects on CKO_CERTIFICATE)")
def list_all(ctx: Context) -> None:
    ctx.need("modutil -add")
    ctx.must(["certutil", "-L", "-d", _db(ctx), "-h", "all", "-f", _pw(ctx)])


def _self_signed(nick: str, *keyargs: str):
    def fn(ctx: Context) -> None:
        ctx.need("modutil -add")
        noise = ctx.path("noise")
        noise.write_bytes(os.urandom(64))
        ctx.must(["certutil", "-S", "-d", _db(ctx), "-h", ctx.label, "-f", _pw(ctx), "-n", nick,
                  "-s", f"CN={nick}", "-x", "-t", "CT,,", "-v", "2", "-z", str(noise), *keyargs])
        pem = ctx.must(["certutil", "-L", "-d", _db(ctx), "-n", f"{ctx.label}:{nick}", "-a",
                        "-h", ctx.label, "-f", _pw(ctx)]).out
        cert = x509.load_pem_x509_certificate(pem.encode())
        cert.verify_directly_issued_by(cert)
    return fn


sign_ec = Check("certutil -S ec (token keygen + signature)", _self_signed("nss-ec", "-k", "ec", "-q", "nistp256"), "pyca verifies")
sign_rsa = Check("certutil -S rsa (token keygen + signature)", _self_signed("nss-rsa", "-k", "rsa", "-g", "2048"), "pyca verifies")


@check("certutil -K", "the token's private keys, after login")
def list_keys(ctx: Context) -> None:
    ctx.need("certutil -S ec (token keygen + signature)")
    out = ctx.must(["certutil", "-K", "-d", _db(ctx), "-h", ctx.label, "-f", _pw(ctx)]).out
    assert "nss-ec" in out, out


@check("certutil -L -h all lists token certificates")
def list_certs(ctx: Context) -> None:
    ctx.need("certutil -S ec (token keygen + signature)")
    out = ctx.must(["certutil", "-L", "-d", _db(ctx), "-h", "all", "-f", _pw(ctx)]).out
    assert f"{ctx.label}:nss-ec" in out, out


CHECKS = [add, list_all, sign_ec, sign_rsa, list_keys, list_certs]


def checks(target: Target) -> list[Check]:
    return CHECKS
