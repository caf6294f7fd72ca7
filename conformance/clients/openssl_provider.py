"""OpenSSL 3 through pkcs11-provider (Debian's ``pkcs11-provider`` package; engines are
deprecated), everything through the ``openssl`` command line on a fresh token.

The provider is configured three ways, as its manual documents them: by command-line flags
(``-provider pkcs11 -provider default`` with ``PKCS11_PROVIDER_MODULE``), by ``OPENSSL_CONF``
with the default lazy load, and by ``OPENSSL_CONF`` with ``pkcs11-module-load-behavior =
early`` (which the provider needs for its digests, ``openssl rand`` and PEM-URI decoding). The
``forced`` configuration adds ``default_properties = ?provider=pkcs11``: OpenSSL then routes
every algorithm the provider offers (digests, HKDF, keys the caller holds) to the token, and a
module whose own cryptography goes through the host's OpenSSL calls back into itself
(issue 25). Every signature is verified by pyca from the public key pkcs11-tool lists;
digests, random bytes and HKDF output are checked against pyca/hashlib, and the provider's
debug log (``PKCS11_PROVIDER_DEBUG``) shows which C_* calls reached the module, so a silent
fallback to OpenSSL's default provider cannot pass for the token. The last check reads every
``openssl`` process's stderr: nothing in it may come from the module.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conformance import crosscheck
from conformance.clients.common import public_key, same_key
from conformance.runner import Check, Skip, check
from conformance.target import Context, Target, free_port

NAME = "openssl-provider"
DESCRIPTION = ("OpenSSL 3 + pkcs11-provider: flags, OPENSSL_CONF lazy/early, rand, digests, PEM URIs, "
               "RSA/PSS/ECDSA/Ed25519, req -x509, TLS 1.3, forced default_properties, a forking server")

MSG = b"openssl provider conformance message\n"
#: Every openssl process is bounded: SoftHSM 2.6's C_Login calls OpenSSL, whose default
#: context now holds pkcs11-provider, which calls back into SoftHSM under its own lock and
#: deadlocks (the failure mode of issue 25, in the reference module).
TIMEOUT = 20
FORK_CHILDREN = 3
FORK_HOST = Path(__file__).with_name("openssl_provider_fork.c")

#: (key type for pkcs11-tool, CKA_ID, label)
KEYS = (("rsa:2048", "01", "rsa"), ("EC:prime256v1", "02", "ec"), ("EC:edwards25519", "03", "ed25519"))


def provider_module() -> Path | None:
    """pkcs11.so in the MODULESDIR this openssl reports (``openssl version -m``)."""
    try:
        out = subprocess.run(["openssl", "version", "-m"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'MODULESDIR: "([^"]+)"', out)
    path = Path(m.group(1)) / "pkcs11.so" if m else None
    return path if path and path.exists() else None


def requires(target: Target) -> str | None:
    if not shutil.which("openssl"):
        return "openssl is not installed"
    if provider_module() is None:
        return "pkcs11-provider is not installed (./run installs it: Debian 12 from bookworm-backports)"
    if not shutil.which("pkcs11-tool"):
        return "pkcs11-tool (opensc) is needed to make the keys"
    return None


# ------------------------------------------------------------------ configuration

def openssl_cnf(provider: str, module: str, pin_file: str, *, early: bool = False, forced: bool = False,
                rand: bool = False, pem_uri: bool = False) -> str:
    """The openssl.cnf of one mode (docs/clients.md shows it with placeholders; a test keeps
    the two equal). ``forced`` implies early load, as the provider needs for digests."""
    early = early or forced or rand or pem_uri
    init = ["openssl_conf = openssl_init", "", "[openssl_init]", "providers = provider_sect"]
    init += ["alg_section = evp_properties"] if forced else []
    init += ["random = random_sect"] if rand else []
    body = ["", "[provider_sect]", "default = default_sect", "pkcs11 = pkcs11_sect",
            "", "[default_sect]", "activate = 1",
            "", "[pkcs11_sect]", f"module = {provider}", f"pkcs11-module-path = {module}",
            f"pkcs11-module-token-pin = file:{pin_file}"]
    body += ["pkcs11-module-load-behavior = early"] if early else []
    body += ["pkcs11-module-encode-provider-uri-to-pem = true"] if pem_uri else []
    body += ["activate = 1"]
    body += ["", "[evp_properties]", "default_properties = ?provider=pkcs11"] if forced else []
    body += ["", "[random_sect]", "random = PKCS11-RAND"] if rand else []
    body += ["", "[req]", "distinguished_name = dn", "prompt = no", "", "[dn]", "CN = localhost"]
    return "\n".join(init + body) + "\n"


MODES = {  # mode -> openssl_cnf flags; "flags" has no configuration file
    "lazy": {},
    "early": {"early": True},
    "forced": {"forced": True},
    "rand": {"rand": True},
    "pem": {"pem_uri": True},
}


def _env(ctx: Context, mode: str, log: Path) -> dict[str, str]:
    env = {k: v for k, v in ctx.env.items() if k not in ("OPENSSL_CONF", "PKCS11_PROVIDER_MODULE")}
    env["PKCS11_PROVIDER_DEBUG"] = f"file:{log}"
    if mode == "flags":
        env["PKCS11_PROVIDER_MODULE"] = ctx.module
        return env
    conf = ctx.path(f"openssl-{mode}.cnf")
    if not conf.exists():
        pin = ctx.path("pin.txt")
        pin.write_text(ctx.pin + "\n")
        pin.chmod(0o600)
        conf.write_text(openssl_cnf(str(provider_module()), ctx.module, str(pin), **MODES[mode]))
    env["OPENSSL_CONF"] = str(conf)
    return env


def _no_provider_env(ctx: Context) -> dict[str, str]:
    """For the verifying side (s_client, verify): OpenSSL alone, no token."""
    return {k: v for k, v in ctx.env.items() if k not in ("OPENSSL_CONF", "PKCS11_PROVIDER_MODULE")}


# ------------------------------------------------------------------ processes

class Run:
    """One openssl (or fork host) process with the provider: its result and the C_* calls the
    provider's debug log shows, with the return codes it logged as errors."""

    def __init__(self, argv: list[str], rc: int, out: str, err: str, log: Path) -> None:
        self.argv, self.rc, self.out, self.err = argv, rc, out, err
        text = log.read_text(errors="replace") if log.exists() else ""
        self.calls = set(re.findall(r"Calling (C_\w+)", text))
        self.errors = sorted({(fn, int(rv)) for rv, fn in re.findall(r"Error (\d+) returned by (C_\w+)", text)})
        log.unlink(missing_ok=True)

    def text(self) -> str:
        errs = ", ".join(f"{fn} -> 0x{rv:08X}" for fn, rv in self.errors)
        return (f"$ {' '.join(self.argv)}\nrc={self.rc}\n{self.out[-800:]}\n{self.err[-1500:]}"
                + (f"\nprovider debug log, C_* errors: {errs}" if errs else ""))

    def succeeded(self, *fns: str) -> None:
        """Those of ``fns`` that the provider called returned CKR_OK (its log names failures)."""
        failed = [f"{fn} -> 0x{rv:08X}" for fn, rv in self.errors if fn in fns]
        assert not failed, f"{', '.join(failed)}\n{self.text()}"

    def called(self, *fns: str) -> None:
        missing = [fn for fn in fns if fn not in self.calls]
        assert not missing, f"{', '.join(missing)} never reached the module (a fallback to the default provider?)\n{self.text()}"


def run(ctx: Context, mode: str, argv: list[str], *, check: bool = True, input: str | bytes | None = None,
        popen: bool = False):
    """Run ``argv`` (``openssl SUB ...``: the flags mode puts ``-provider pkcs11 -provider
    default`` after SUB) with the provider in ``mode``; record its stderr for the last check."""
    if mode == "flags" and argv[0] == "openssl":
        argv = [argv[0], argv[1], "-provider", "pkcs11", "-provider", "default", *argv[2:]]
    n = ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    log = ctx.path(f"p11prov-{n}.log")
    env = _env(ctx, mode, log)
    if popen:
        return subprocess.Popen(argv, env=env, cwd=ctx.work, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True), log
    try:
        p = ctx.run(argv, env=env, timeout=TIMEOUT, input=input, setsid=True)  # no terminal to prompt on
    except AssertionError:
        raise AssertionError(f"timed out after {TIMEOUT}s (hung): {' '.join(argv)}") from None
    r = Run(argv, p.rc, p.out, p.err, log)
    ctx.state.setdefault("stderr", []).append(r)
    if check and r.rc != 0:
        raise AssertionError(r.text())
    return r


def uri(ctx: Context, key_id: str, kind: str = "private", pin: bool = False) -> str:
    """RFC 7512 URI of a key; ``pin`` adds ``?pin-value=`` (flags mode has no PIN file)."""
    return f"pkcs11:token={ctx.label};id=%{key_id};type={kind}" + (f"?pin-value={ctx.pin}" if pin else "")


def token_public(ctx: Context, key_id: str):
    """The public key as pkcs11-tool lists it (Ed25519: the 32-byte CKA_EC_POINT)."""
    if key_id != "03":
        return public_key(ctx, key_id)
    cached = ctx.state.get("ed25519-pub")
    if cached is None:
        listing = ctx.tool("--list-objects", "--type", "pubkey").out
        block = next(b for b in listing.split("Public Key Object;") if re.search(r"ID:\s+03\n", b))
        point = bytes.fromhex(re.search(r"EC_POINT:\s+([0-9a-f]+)", block).group(1))
        cached = ctx.state["ed25519-pub"] = ed25519.Ed25519PublicKey.from_public_bytes(point[-32:])
    return cached


def pem_uri(u: str) -> bytes:
    """The provider's PEM encoding of a key URI (tools/uri2pem.py upstream):
    SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0", UTF8String uri }."""

    def tlv(tag: int, value: bytes) -> bytes:
        n = len(value)
        length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([tag]) + length + value

    der = tlv(0x30, tlv(0x1A, b"PKCS#11 Provider URI v1.0") + tlv(0x0C, u.encode()))
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN PKCS#11 PROVIDER URI-----\n" + "\n".join(lines) + "\n-----END PKCS#11 PROVIDER URI-----\n").encode()


def _msg(ctx: Context) -> Path:
    msg = ctx.path("msg")
    if not msg.exists():
        msg.write_bytes(MSG)
    return msg


def _tampered_fails(pub, sig: bytes, **kw) -> None:
    try:
        crosscheck.verify(pub, sig, MSG + b"x", **kw)
    except Exception:
        return
    raise AssertionError("a signature verified over a different message")


# ------------------------------------------------------------------ checks

@check("keys (pkcs11-tool)", "setup: RSA-2048 id 01, EC P-256 id 02, Ed25519 id 03")
def keys(ctx: Context) -> None:
    for key_type, key_id, label in KEYS:
        ctx.tool("--keypairgen", "--key-type", key_type, "--id", key_id, "--label", label, "--usage-sign", login=True)


@check("flags: pkey -pubin (RSA, EC, Ed25519)",
       "-provider pkcs11 -provider default, PKCS11_PROVIDER_MODULE; OSSL_STORE public keys equal pkcs11-tool's")
def flags_pubkeys(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    for _, key_id, _ in KEYS:
        out = ctx.path(f"pub-{key_id}.pem")
        run(ctx, "flags", ["openssl", "pkey", "-pubin", "-in", uri(ctx, key_id, "public"), "-pubout", "-out", str(out)])
        got = serialization.load_pem_public_key(out.read_bytes())
        assert same_key(got, token_public(ctx, key_id)), f"key {key_id}: the provider's public key differs"


def _sign(key_id: str, argv: list[str], verify_kw: dict):
    def fn(ctx: Context) -> None:
        ctx.need("keys (pkcs11-tool)")
        sig = ctx.path(f"sig-{key_id}-{verify_kw.get('scheme', verify_kw.get('hash', 'raw'))}")
        args = [a.replace("KEY", uri(ctx, key_id, pin=True)).replace("MSG", str(_msg(ctx))).replace("SIG", str(sig))
                for a in argv]
        r = run(ctx, "flags", args)
        r.called("C_Login")
        # OpenSSL duplicates DigestSign contexts: the provider saves and restores the token's
        # operation state. 3.0 tolerates a failure there, 3.2+ fails the signature (issue 25).
        r.succeeded("C_GetOperationState", "C_SetOperationState")
        pub = token_public(ctx, key_id)
        crosscheck.verify(pub, sig.read_bytes(), MSG, **verify_kw)
        _tampered_fails(pub, sig.read_bytes(), **verify_kw)
    return fn


DGST = ["openssl", "dgst", "-sign", "KEY", "-out", "SIG"]
sign_rsa = Check("flags: dgst -sign RSA PKCS#1 v1.5 (SHA-256)",
                 _sign("01", DGST[:2] + ["-sha256"] + DGST[2:] + ["MSG"], {"hash": "sha256"}),
                 "CKM_RSA_PKCS (or SHA256_RSA_PKCS) through the provider; pyca verifies")
sign_pss = Check("flags: dgst -sign RSA-PSS (SHA-256)",
                 _sign("01", DGST[:2] + ["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
                       + DGST[2:] + ["MSG"], {"hash": "sha256", "scheme": "pss"}),
                 "CKM_RSA_PKCS_PSS, salt = digest length; pyca verifies")
sign_ec = Check("flags: dgst -sign ECDSA P-256 (SHA-384)",
                _sign("02", DGST[:2] + ["-sha384"] + DGST[2:] + ["MSG"], {"hash": "sha384", "ec_raw": False}),
                "CKM_ECDSA, r||s -> DER by the provider; pyca verifies")
sign_ed = Check("flags: pkeyutl -sign Ed25519 (-rawin)",
                _sign("03", ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", "KEY", "-in", "MSG", "-out", "SIG"], {}),
                "CKM_EDDSA (pure Ed25519); pyca verifies")


#: sign check -> (signature file, verify command with PUB/SIG/MSG placeholders, what a good one prints)
VERIFY = {
    "flags: dgst -sign RSA PKCS#1 v1.5 (SHA-256)": ("sig-01-sha256", ["dgst", "-sha256"], "Verified OK"),
    "flags: dgst -sign RSA-PSS (SHA-256)": ("sig-01-pss", ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss",
                                                          "-sigopt", "rsa_pss_saltlen:digest"], "Verified OK"),
    "flags: dgst -sign ECDSA P-256 (SHA-384)": ("sig-02-sha384", ["dgst", "-sha384"], "Verified OK"),
    "flags: pkeyutl -sign Ed25519 (-rawin)": ("sig-03-raw", ["pkeyutl", "-verify", "-rawin", "-pubin"],
                                              "Signature Verified Successfully"),
}


@check("OPENSSL_CONF lazy: verify with the token public key (RSA, PSS, ECDSA, Ed25519)",
       "type=public URIs: each signature above accepted, the same signature over another message refused")
def verify_token_pub(ctx: Context) -> None:
    ctx.need(*VERIFY)
    good, bad = _msg(ctx), ctx.path("msg-tampered")
    bad.write_bytes(MSG + b"x")
    for name, (sig_name, cmd, ok_text) in VERIFY.items():
        key_id = sig_name.split("-")[1]
        pub, sig = uri(ctx, key_id, "public"), str(ctx.path(sig_name))
        for msg, want in ((good, True), (bad, False)):
            if cmd[0] == "dgst":
                argv = ["openssl", *cmd, "-verify", pub, "-signature", sig, str(msg)]
            else:
                argv = ["openssl", *cmd, "-inkey", pub, "-in", str(msg), "-sigfile", sig]
            # With a PIN file: to verify with an EdDSA token key the provider logs in to copy the
            # key into a session object (pkcs11-module-cache-keys); configured by flags alone it
            # prompts for the PIN there, whatever the URI says (pin-value, -passin).
            r = run(ctx, "lazy", argv, check=False)
            assert (r.rc == 0 and ok_text in r.out) == want, \
                f"{name}: {'a good signature was refused' if want else 'a tampered message verified'}\n{r.text()}"


def _storeutl(mode: str):
    def fn(ctx: Context) -> None:
        ctx.need("keys (pkcs11-tool)")
        r = run(ctx, mode, ["openssl", "storeutl", "-keys", "-text", f"pkcs11:token={ctx.label}"])
        listed = re.findall(r"^URI (pkcs11:\S+)$", r.out, re.M)
        for _, key_id, label in KEYS:
            assert any(f"id=%{key_id}" in u and "type=private" in u for u in listed), \
                f"private key {key_id} ({label}) not listed:\n{r.out[-1500:]}"
        r.called("C_Login", "C_FindObjectsInit")
    return fn


store_lazy = Check("OPENSSL_CONF lazy: storeutl -keys pkcs11:", _storeutl("lazy"),
                   "provider from openssl.cnf, module initialized at first use, PIN from a file")
store_early = Check("OPENSSL_CONF early: storeutl -keys pkcs11:", _storeutl("early"),
                    "pkcs11-module-load-behavior = early: C_Initialize/C_GetTokenInfo at OpenSSL start-up")


@check("OPENSSL_CONF early: dgst -sign ECDSA", "a token signature with the early-loaded provider; pyca verifies")
def sign_early(ctx: Context) -> None:
    ctx.need("OPENSSL_CONF early: storeutl -keys pkcs11:")
    sig = ctx.path("sig-early")
    run(ctx, "early", ["openssl", "dgst", "-sha256", "-sign", uri(ctx, "02"), "-out", str(sig), str(_msg(ctx))])
    crosscheck.verify(token_public(ctx, "02"), sig.read_bytes(), MSG, hash="sha256", ec_raw=False)


@check("early: openssl rand (random = PKCS11-RAND)", "OpenSSL's RAND is the provider's: C_GenerateRandom")
def rand(ctx: Context) -> None:
    outs = [run(ctx, "rand", ["openssl", "rand", "-hex", "32"]) for _ in range(2)]
    values = [o.out.strip() for o in outs]
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in values), values
    assert values[0] != values[1], "two runs returned the same random bytes"
    outs[0].called("C_GenerateRandom")


@check("early: dgst -propquery provider=pkcs11 (SHA-256, SHA-384, SHA-512)",
       "the provider's digests (early load only) are C_Digest* on the token; hashlib computes the same")
def digests(ctx: Context) -> None:
    msg = _msg(ctx)
    for name in ("sha256", "sha384", "sha512"):
        r = run(ctx, "early", ["openssl", "dgst", f"-{name}", "-propquery", "provider=pkcs11", "-r", str(msg)])
        got = r.out.split()[0] if r.out.split() else ""
        assert got == hashlib.new(name, MSG).hexdigest(), f"{name}: {r.out!r}"
        r.called("C_DigestInit")


@check("early: PEM URI from the provider's encoder, then used as -key",
       "pkcs11-module-encode-provider-uri-to-pem: pkey writes the URI PEM; dgst -sign loads it (early decoders)")
def pem_from_provider(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    pem, sig = ctx.path("ec-uri.pem"), ctx.path("sig-pem-uri")
    run(ctx, "pem", ["openssl", "pkey", "-in", uri(ctx, "02"), "-out", str(pem)])
    text = pem.read_text()
    assert text.startswith("-----BEGIN PKCS#11 PROVIDER URI-----"), text[:300]
    der = base64.b64decode("".join(text.strip().splitlines()[1:-1]))
    assert b"pkcs11:" in der and b"id=%02" in der, der
    run(ctx, "early", ["openssl", "dgst", "-sha256", "-sign", str(pem), "-out", str(sig), str(_msg(ctx))])
    crosscheck.verify(token_public(ctx, "02"), sig.read_bytes(), MSG, hash="sha256", ec_raw=False)


@check("early: PEM URI written by hand (uri2pem format)", "a PEM file naming the RSA key by URI: pkey -pubout equals the token key")
def pem_by_hand(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    pem, pub = ctx.path("rsa-uri.pem"), ctx.path("rsa-uri-pub.pem")
    pem.write_bytes(pem_uri(uri(ctx, "01")))
    run(ctx, "early", ["openssl", "pkey", "-in", str(pem), "-pubout", "-out", str(pub)])
    assert same_key(serialization.load_pem_public_key(pub.read_bytes()), token_public(ctx, "01"))


def _req_x509(key_id: str):
    def fn(ctx: Context) -> None:
        ctx.need("OPENSSL_CONF lazy: storeutl -keys pkcs11:")
        cert = ctx.path(f"cert-{key_id}.pem")
        run(ctx, "lazy", ["openssl", "req", "-new", "-x509", "-key", uri(ctx, key_id), "-sha256", "-days", "2",
                          "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", str(cert)])
        ctx.must(["openssl", "verify", "-CAfile", str(cert), str(cert)], env=_no_provider_env(ctx))
        c = x509.load_pem_x509_certificate(cert.read_bytes())
        c.verify_directly_issued_by(c)
        assert same_key(c.public_key(), token_public(ctx, key_id)), "certificate key is not the token key"
    return fn


req_rsa = Check("OPENSSL_CONF lazy: req -x509 RSA, then verify", _req_x509("01"), "self-signed with the token key; openssl verify, pyca")
req_ec = Check("OPENSSL_CONF lazy: req -x509 ECDSA, then verify", _req_x509("02"), "self-signed with the token key; openssl verify, pyca")


def _tls13(key_id: str, need: str):
    def fn(ctx: Context) -> None:
        ctx.need(need)
        cert, port = ctx.path(f"cert-{key_id}.pem"), free_port()
        server, log = run(ctx, "lazy", ["openssl", "s_server", "-key", uri(ctx, key_id), "-cert", str(cert),
                                        "-accept", f"127.0.0.1:{port}", "-tls1_3", "-naccept", "1"], popen=True)
        try:
            before = _wait_accept(server)
            p = ctx.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(cert),
                         "-verify_return_error", "-verify_hostname", "localhost", "-tls1_3", "-brief"],
                        input="hello over TLS 1.3\n", timeout=TIMEOUT, env=_no_provider_env(ctx))
            text = p.out + p.err
            assert p.rc == 0 and "Verification: OK" in text and "TLSv1.3" in text, text[-1500:]
            try:
                out, err = server.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                raise AssertionError("s_server did not exit after its one connection (-naccept 1)") from None
        except AssertionError as exc:
            if server.poll() is None:
                server.kill()
            _, err = server.communicate(timeout=10)
            # The server's side, and the C_* errors its provider logged (a failed login makes
            # the provider prompt for the PIN on stdin, which would wait here until the bound).
            dead = Run(server.args, server.returncode or -9, "", err.decode(errors="replace"), log)
            raise AssertionError(f"{exc}\n--- s_server ---\n{dead.text()}") from None
        r = Run(server.args, server.returncode, (before + out).decode(errors="replace"), err.decode(errors="replace"), log)
        ctx.state.setdefault("stderr", []).append(r)
        assert "hello over TLS 1.3" in r.out, f"server did not receive the data\n{r.text()}"
        r.called("C_SignInit")
    return fn


def _wait_accept(server: subprocess.Popen) -> bytes:
    """Until s_server prints ACCEPT (listening; probing the port would use up -naccept 1).
    Reads the pipe's file descriptor itself: a buffered readline could take ACCEPT into its
    buffer with an earlier line, where select() no longer sees it. Returns what was read."""
    deadline, seen = time.monotonic() + TIMEOUT, b""
    fd = server.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            seen += chunk
            if b"ACCEPT\n" in seen:
                return seen
            if not chunk:
                break
    rc = server.poll()
    state = f"exited with {rc}" if rc is not None else f"not listening after {TIMEOUT}s"
    raise AssertionError(f"s_server {state}; its output: {seen[-800:]!r}")


tls_rsa = Check("OPENSSL_CONF lazy: s_server TLS 1.3 RSA-PSS", _tls13("01", "OPENSSL_CONF lazy: req -x509 RSA, then verify"),
                "handshake signature (rsa_pss_rsae_sha256) by the token; verifying s_client without the provider")
tls_ec = Check("OPENSSL_CONF lazy: s_server TLS 1.3 ECDSA", _tls13("02", "OPENSSL_CONF lazy: req -x509 ECDSA, then verify"),
               "handshake signature (ecdsa_secp256r1_sha256) by the token")


@check("forced ?provider=pkcs11: dgst -sign with a PEM key file",
       "a key the caller holds is imported as a session object (C_CreateObject, CKA_TOKEN=FALSE) and used there")
def forced_pem_key(ctx: Context) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem, sig = ctx.path("file-key.pem"), ctx.path("sig-file-key")
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    r = run(ctx, "forced", ["openssl", "dgst", "-sha256", "-sign", str(pem), "-out", str(sig), str(_msg(ctx))])
    key.public_key().verify(sig.read_bytes(), MSG, ec.ECDSA(hashes.SHA256()))
    r.called("C_CreateObject")


@check("forced ?provider=pkcs11: HKDF (pkeyutl -kdf HKDF)",
       "the input secret becomes a session object, C_DeriveKey CKM_HKDF_DERIVE; pyca computes the same")
def forced_hkdf(ctx: Context) -> None:
    secret, salt, info = os.urandom(32), os.urandom(16), b"conformance hkdf"
    out = ctx.path("hkdf.bin")
    r = run(ctx, "forced", ["openssl", "pkeyutl", "-derive", "-kdf", "HKDF", "-kdflen", "48",
                            "-pkeyopt", "md:SHA256", "-pkeyopt", "mode:EXTRACT_AND_EXPAND",
                            "-pkeyopt", f"hexkey:{secret.hex()}", "-pkeyopt", f"hexsalt:{salt.hex()}",
                            "-pkeyopt", f"hexinfo:{info.hex()}", "-out", str(out)])
    want = HKDF(hashes.SHA256(), 48, salt, info).derive(secret)
    assert out.read_bytes() == want, "HKDF output differs from pyca's"
    r.called("C_DeriveKey")


@check("forced ?provider=pkcs11: dgst -sign with the token key",
       "digest and signature both routed to the token (DigestSign context duplication: C_GetOperationState)")
def forced_token_key(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    sig = ctx.path("sig-forced")
    r = run(ctx, "forced", ["openssl", "dgst", "-sha256", "-sign", uri(ctx, "01"), "-out", str(sig), str(_msg(ctx))])
    crosscheck.verify(token_public(ctx, "01"), sig.read_bytes(), MSG, hash="sha256")
    r.called("C_GetOperationState")
    r.succeeded("C_GetOperationState", "C_SetOperationState")


@check(f"fork: a server loads the key, then {FORK_CHILDREN} forked children sign",
       "pre-forking server (C host on libcrypto): the provider re-initializes the module in each child (§5.4)")
def forking_server(ctx: Context) -> None:
    ctx.need("OPENSSL_CONF lazy: storeutl -keys pkcs11:")
    if shutil.which("gcc") is None:
        raise Skip("gcc is needed to build the forking host")
    host = ctx.path("openssl_provider_fork")
    ctx.must(["gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-o", str(host), str(FORK_HOST), "-lcrypto"])
    prefix = ctx.path("fork")
    run(ctx, "lazy", [str(host), uri(ctx, "02"), str(_msg(ctx)), str(prefix), str(FORK_CHILDREN)])
    pub = token_public(ctx, "02")
    for who in ["parent", *map(str, range(FORK_CHILDREN))]:
        sig = Path(f"{prefix}-{who}.sig")
        assert sig.exists(), f"{who} wrote no signature"
        crosscheck.verify(pub, sig.read_bytes(), MSG, hash="sha256", ec_raw=False)


#: OpenSSL's error stack as ERR_print_errors writes it: <thread>:error:<code>:<lib>:<func>:<reason>.
OPENSSL_ERROR = re.compile(r"^[0-9A-F]{8,}:error:[0-9A-F]{8}:")
#: Messages of the openssl applications seen on stderr of a successful run, and OpenSSL's PIN
#: prompt as pkcs11-provider issues it through the application's UI.
OPENSSL_OWN = re.compile(r"^(Using default temp DH parameters|ACCEPT|DONE|shutting down SSL|CONNECTION CLOSED|"
                         r"Verification failure|Verified OK|Signature Verified Successfully|"
                         r"Enter PIN for PKCS#11 Token)")
#: The module's own log format, a Python runtime's reports, cffi's: never OpenSSL's.
MODULE_LIKE = re.compile(r"cryptoki-shim\[\d+\]|Traceback \(most recent call last\)|Exception ignored|"
                         r"^\s+File \"|^\w+(Error|Exception|Warning)\b|cffi|^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


def foreign_lines(r: Run) -> list[str]:
    """stderr lines of one process that are not OpenSSL's: any module-like line, and on a
    successful run any line that is neither OpenSSL's error stack nor an application message."""
    bad = []
    for line in r.err.splitlines():
        if not line.strip() or OPENSSL_ERROR.search(line):
            continue
        if MODULE_LIKE.search(line) or (r.rc == 0 and not OPENSSL_OWN.search(line)):
            bad.append(line)
    return bad


@check("stderr: nothing from the module", "every openssl/host process above: its stderr holds only OpenSSL's own messages")
def quiet(ctx: Context) -> None:
    runs = ctx.state.get("stderr", [])
    if not runs:
        raise Skip("no process ran with the provider")
    bad = [f"{' '.join(r.argv[:2])}: {line}" for r in runs for line in foreign_lines(r)]
    assert not bad, f"{len(bad)} line(s) on stderr not from OpenSSL (of {len(runs)} processes):\n" + "\n".join(bad[:30])


CHECKS = [keys, flags_pubkeys, sign_rsa, sign_pss, sign_ec, sign_ed, verify_token_pub,
          store_lazy, store_early, sign_early, rand, digests, pem_from_provider, pem_by_hand,
          req_rsa, req_ec, tls_rsa, tls_ec, forced_pem_key, forced_hkdf, forced_token_key, forking_server, quiet]


def checks(target: Target) -> list[Check]:
    return CHECKS
