"""Java SunPKCS11 (OpenJDK): ``keytool`` generates a key pair and certificate on the token and
lists the PKCS11 keystore; a small program compiled at run time signs through
``java.security.Signature`` with the token key. pyca verifies the signatures."""

from __future__ import annotations

import re
import shutil

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from conformance.runner import Check, check
from conformance.target import Context, Target

NAME = "java"
DESCRIPTION = "Java SunPKCS11: keytool -genkeypair/-list -storetype PKCS11, java.security.Signature"

PROGRAM = """
import java.nio.file.*;
import java.security.*;
import java.security.cert.Certificate;

public class TokenSign {
    public static void main(String[] a) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(a[0]);
        Security.addProvider(p);
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, a[1].toCharArray());
        PrivateKey key = (PrivateKey) ks.getKey(a[2], null);
        Signature s = Signature.getInstance(a[3], p);
        s.initSign(key);
        s.update(Files.readAllBytes(Paths.get(a[4])));
        Files.write(Paths.get(a[5]), s.sign());
        Certificate c = ks.getCertificate(a[2]);
        Files.write(Paths.get(a[6]), c.getEncoded());
        Signature v = Signature.getInstance(a[3], p);
        v.initVerify(c.getPublicKey());
        v.update(Files.readAllBytes(Paths.get(a[4])));
        if (!v.verify(Files.readAllBytes(Paths.get(a[5])))) throw new Exception("token verify failed");
    }
}
"""


def requires(target: Target) -> str | None:
    for tool in ("java", "javac", "keytool"):
        if not shutil.which(tool):
            return f"{tool} (openjdk) is not installed"
    return None


def _cfg(ctx: Context) -> str:
    cfg = ctx.path("pkcs11.cfg")
    if not cfg.exists():
        # SunPKCS11 names a token by slot or slot list index only: find our token's index.
        listing = ctx.must(["pkcs11-tool", "--module", ctx.module, "-L"]).out
        index = next(int(m.group(1)) for m in re.finditer(r"^Slot (\d+) .*\n(?:  .*\n)*?  token label\s*:\s*(.*)$",
                                                          listing, re.M) if m.group(2).strip() == ctx.label)
        cfg.write_text(f"name = Conformance\nlibrary = {ctx.module}\nslotListIndex = {index}\n")
    return str(cfg)


def keytool(ctx: Context, *args: str):
    return ctx.must(["keytool", *args, "-keystore", "NONE", "-storetype", "PKCS11", "-addprovider", "SunPKCS11",
                     "-providerArg", _cfg(ctx), "-storepass", ctx.pin], timeout=120)


def _genkey(alias: str, *alg: str):
    def fn(ctx: Context) -> None:
        keytool(ctx, "-genkeypair", "-alias", alias, "-dname", f"CN={alias}", "-validity", "2", *alg)
    return fn


gen_ec = Check("keytool -genkeypair EC", _genkey("j-ec", "-keyalg", "EC", "-groupname", "secp256r1"), "key pair + certificate object on the token")
gen_rsa = Check("keytool -genkeypair RSA", _genkey("j-rsa", "-keyalg", "RSA", "-keysize", "2048"), "key pair + certificate object on the token")


@check("keytool -list -storetype PKCS11", "the keystore view of the token")
def list_(ctx: Context) -> None:
    out = keytool(ctx, "-list").out
    assert "Keystore type: PKCS11" in out, out
    for alias in ("j-ec", "j-rsa"):
        if ctx.results.get(f"keytool -genkeypair {alias[2:].upper()}") == "passed":
            assert f"{alias}, PrivateKeyEntry" in out, out


@check("javac TokenSign", "compile the signing program")
def compile_(ctx: Context) -> None:
    src = ctx.path("TokenSign.java")
    src.write_text(PROGRAM)
    ctx.must(["javac", "-d", str(ctx.work), str(src)], timeout=120)


def _sign(alias: str, alg: str, need: str):
    def fn(ctx: Context) -> None:
        ctx.need("javac TokenSign", need)
        msg, sig, der = ctx.path("msg"), ctx.path(f"{alias}.sig"), ctx.path(f"{alias}.der")
        msg.write_bytes(b"signed by SunPKCS11\n" * 5)
        ctx.must(["java", "-cp", str(ctx.work), "TokenSign", _cfg(ctx), ctx.pin, alias, alg, str(msg), str(sig),
                  str(der)], timeout=120)
        pub = x509.load_der_x509_certificate(der.read_bytes()).public_key()
        if alg.endswith("ECDSA"):
            pub.verify(sig.read_bytes(), msg.read_bytes(), ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig.read_bytes(), msg.read_bytes(), padding.PKCS1v15(), hashes.SHA256())
    return fn


sign_ec = Check("Signature SHA256withECDSA", _sign("j-ec", "SHA256withECDSA", "keytool -genkeypair EC"), "pyca verifies")
sign_rsa = Check("Signature SHA256withRSA", _sign("j-rsa", "SHA256withRSA", "keytool -genkeypair RSA"), "pyca verifies")

CHECKS = [gen_ec, gen_rsa, list_, compile_, sign_ec, sign_rsa]


def checks(target: Target) -> list[Check]:
    return CHECKS
