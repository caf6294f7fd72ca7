"""The README's demo: what a newcomer does first, with real clients, narrated.

It makes a token on a temporary SQLite store (so it can be run again and again), then
drives it with pkcs11-tool (OpenSC) exactly as a user would, checks every signature with
OpenSSL (an implementation that is not ours), makes a self-signed certificate and a
signature through OpenSSL's pkcs11 engine (libp11: the key never leaves the token), lists
the token with our admin CLI and checks the audit log the run produced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .installed import default_library

SO_PIN, USER_PIN = "12345678", "1234"


class Step:
    def __init__(self, env: dict[str, str], lib: str, work: Path) -> None:
        self.env, self.lib, self.work = env, lib, work
        self.failures = 0

    def run(self, title: str, argv: list[str], *, show: int = 0, check_text: str | None = None) -> str:
        shown = " ".join(a if " " not in a else repr(a) for a in argv).replace(self.lib, "$LIB")
        shown = shown.replace(f"{sys.executable} -m cryptoki_shim.cli", "cryptoki-shim")
        print(f"\n== {title}\n$ {shown}")
        proc = subprocess.run(argv, env=self.env, cwd=self.work, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        lines = [ln for ln in out.splitlines() if ln.strip()]
        for ln in lines[-show:] if show else []:
            print(f"  {ln}")
        ok = proc.returncode == 0 and (check_text is None or check_text in out)
        print("  -> ok" if ok else f"  -> FAILED (exit {proc.returncode})\n" + "\n".join("  " + ln for ln in lines[-15:]))
        self.failures += 0 if ok else 1
        return out

    def p11(self, title: str, *args: str, **kw) -> str:
        return self.run(title, ["pkcs11-tool", "--module", self.lib, *args], **kw)


def run(library: str | None = None, keep: bool = False) -> int:
    lib = str(Path(library or default_library()).resolve())
    work = Path(tempfile.mkdtemp(prefix="cryptoki-shim-demo-"))
    conf = work / "config.toml"
    conf.write_text(f'[store]\nurl = "sqlite:///{work / "store.db"}"\n\n'
                    f'[audit]\nfile = "{work / "audit.log"}"\n\n[[slots]]\nid = 0\n')
    # PKCS11_MODULE_PATH: where OpenSSL's pkcs11 engine (libp11) finds the module.
    env = dict(os.environ, CRYPTOKI_SHIM_CONF=str(conf), PKCS11_MODULE_PATH=lib, DEMO_PIN=USER_PIN)
    print(f"cryptoki-shim demo\n  library: {lib}\n  store:   {work / 'store.db'} (temporary)")
    s = Step(env, lib, work)
    msg = work / "message.txt"
    msg.write_text("Signed by a key that lives in cryptoki-shim.\n")

    s.p11("The module as pkcs11-tool sees it", "-I", show=4, check_text="cryptoki-shim")
    s.p11("Initialize the token (SO PIN) and set the user PIN", "--init-token", "--label", "demo",
          "--so-pin", SO_PIN, show=1)
    s.p11("", "--init-pin", "--login", "--login-type", "so", "--so-pin", SO_PIN, "--pin", USER_PIN, show=1)
    s.p11("Generate an EC P-256 key pair", "--login", "--pin", USER_PIN, "--keypairgen",
          "--key-type", "EC:prime256v1", "--label", "demo-ec", "--id", "01", show=3)
    s.p11("Generate an RSA-2048 key pair", "--login", "--pin", USER_PIN, "--keypairgen",
          "--key-type", "rsa:2048", "--label", "demo-rsa", "--id", "02", show=3)
    for key_id, mech, name, fmt in (("01", "ECDSA-SHA256", "ec", ["--signature-format", "openssl"]),
                                    ("02", "SHA256-RSA-PKCS", "rsa", [])):
        s.p11(f"Sign the message with the {name.upper()} key ({mech})", "--login", "--pin", USER_PIN,
              "--sign", "-m", mech, "--id", key_id, "-i", str(msg), "-o", f"{name}.sig", *fmt)
        # Through OpenSSL's pkcs11 engine, not `pkcs11-tool --read-object`: OpenSC 0.23 reads a
        # freed buffer when it exports an EC public key (docs/clients.md).
        s.run(f"Export the {name.upper()} public key through OpenSSL's pkcs11 engine",
              ["openssl", "pkey", "-engine", "pkcs11", "-inform", "engine", "-pubin", "-in",
               f"pkcs11:token=demo;type=public;id=%{key_id}", "-pubout", "-outform", "DER",
               "-out", f"{name}.pub.der"])
        s.run(f"Verify the {name.upper()} signature with OpenSSL (not our code)",
              ["openssl", "dgst", "-sha256", "-keyform", "DER", "-verify", f"{name}.pub.der",
               "-signature", f"{name}.sig", str(msg)], show=1, check_text="Verified OK")
    uri = "pkcs11:token=demo;type=private;pin-value=" + USER_PIN + ";id=%"
    s.run("Make a self-signed certificate with the EC key, through OpenSSL's pkcs11 engine",
          ["openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine", "-key", uri + "01",
           "-subj", "/CN=cryptoki-shim demo", "-days", "30", "-sha256", "-out", "cert.pem"])
    s.run("Check the certificate's self-signature with OpenSSL", ["openssl", "verify", "-CAfile", "cert.pem",
                                                                 "cert.pem"], show=1, check_text="OK")
    s.run("Sign the message with the RSA key through OpenSSL's pkcs11 engine",
          ["openssl", "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign", uri + "02",
           "-out", "rsa-engine.sig", str(msg)])
    s.run("Verify that signature with OpenSSL", ["openssl", "dgst", "-sha256", "-keyform", "DER", "-verify",
                                                 "rsa.pub.der", "-signature", "rsa-engine.sig", str(msg)],
          show=1, check_text="Verified OK")
    cli = [sys.executable, "-m", "cryptoki_shim.cli"]
    s.run("Store the certificate next to its key with the admin CLI",
          [*cli, "import", "cert.pem", "--id", "01", "--label", "demo-ec"], show=5)
    s.run("The token as the admin CLI lists it (no secrets shown)", [*cli, "list", "--pin-env", "DEMO_PIN"], show=12)
    s.run("The audit log of this run: logins, new objects, key uses (MAC-chained)",
          [*cli, "audit", "verify", "audit.log"], show=1, check_text="no deletion or edit detected")

    print(f"\n{'demo finished: everything verified' if not s.failures else f'demo: {s.failures} step(s) FAILED'}")
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(run())
