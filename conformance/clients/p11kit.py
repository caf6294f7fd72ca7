"""p11-kit: registration through a ``.module`` file (how desktop and system services find a
module) and the ``p11-kit server`` / ``p11-kit-client.so`` remoting path (tokens forwarded
over a Unix socket, as into containers). The registration uses a private HOME, so only this
run's user configuration is read besides the system's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from conformance.clients.common import make_keys, public_key
from conformance.runner import Check, Skip, check
from conformance.target import Context, Target

NAME = "p11-kit"
DESCRIPTION = "p11-kit .module registration (list-modules) and p11-kit server / p11-kit-client.so remoting"

CLIENT_SO = [Path("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"), Path("/usr/lib/aarch64-linux-gnu/pkcs11/p11-kit-client.so")]
MSG = b"through p11-kit remoting\n"


def _client_so() -> Path | None:
    return next((p for p in CLIENT_SO if p.exists()), None)


def requires(target: Target) -> str | None:
    if not shutil.which("p11-kit"):
        return "p11-kit is not installed"
    if _client_so() is None:
        return "p11-kit-client.so is not installed"
    return None


@check(".module registration: p11-kit list-modules", "module found through ~/.config/pkcs11/modules")
def list_modules(ctx: Context) -> None:
    home = ctx.path("home")
    mods = home / ".config" / "pkcs11" / "modules"
    mods.mkdir(parents=True)
    (mods / "conformance-under-test.module").write_text(f"module: {ctx.module}\ncritical: yes\n")
    env = dict(ctx.env, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    argv = ["p11-kit", "list-modules"]
    if os.geteuid() == 0:
        # p11-kit skips user configuration when running as root ("skipping user config in
        # program running as root"), so list as nobody, with this run's files opened to it.
        if not shutil.which("setpriv"):
            raise Skip("running as root and setpriv (util-linux) is missing")
        for path in [ctx.work, *ctx.work.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o777 if path.is_dir() else path.stat().st_mode | 0o666)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    out = ctx.must(argv, env=env).out
    assert ctx.label in out, f"token {ctx.label!r} not listed:\n{out}"
    # the module's header: "NAME: FILE" (p11-kit 0.24, Debian 12) or "module: NAME" (0.25, Debian 13)
    listed = re.split(r"^(?:conformance-under-test: .*|module: conformance-under-test)$", out, maxsplit=1, flags=re.M)
    assert len(listed) == 2, f"module not listed under its .module name:\n{out}"
    own = re.split(r"\n\S", listed[1], maxsplit=1)[0]   # this module's indented block
    assert f"token: {ctx.label}" in own, f"token not under the module's entry:\n{out}"


@check("keys (pkcs11-tool)", "setup: EC P-256 id 02")
def keys(ctx: Context) -> None:
    make_keys(ctx, ("EC:prime256v1", "02", "remote-ec"))


@check("p11-kit server", "the module served on a Unix socket")
def server(ctx: Context) -> None:
    sock = ctx.path("p11kit.sock")
    proc = subprocess.Popen(["p11-kit", "server", "-f", "--provider", ctx.module, "-n", str(sock),
                             f"pkcs11:token={ctx.label}"],
                            env=ctx.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ctx.cleanups.append(lambda: (proc.kill(), proc.wait(5)))
    for _ in range(200):
        if sock.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert sock.exists(), f"no socket: {proc.stderr.read().decode(errors='replace') if proc.poll() is not None else 'timeout'}"
    ctx.state["remote_env"] = dict(ctx.env, P11_KIT_SERVER_ADDRESS=f"unix:path={sock}")


def _remote(ctx: Context, *args: str):
    return ctx.must(["pkcs11-tool", "--module", str(_client_so()), "--token-label", ctx.label, *args],
                    env=ctx.state["remote_env"])


@check("p11-kit-client.so: token info", "C_GetTokenInfo forwarded")
def remote_list(ctx: Context) -> None:
    ctx.need("p11-kit server")
    out = _remote(ctx, "-L").out
    assert ctx.label in out, out


@check("p11-kit-client.so: sign", "C_Sign forwarded; pyca verifies with the key exported directly")
def remote_sign(ctx: Context) -> None:
    ctx.need("p11-kit server", "keys (pkcs11-tool)")
    msg, sig = ctx.path("msg"), ctx.path("sig")
    msg.write_bytes(MSG)
    import hashlib
    digest = ctx.path("digest")
    digest.write_bytes(hashlib.sha256(MSG).digest())
    _remote(ctx, "--login", "--pin", ctx.pin, "--sign", "-m", "ECDSA", "--id", "02", "-i", str(digest), "-o", str(sig))
    from cryptography.hazmat.primitives.asymmetric import utils, ec
    from cryptography.hazmat.primitives import hashes
    raw = sig.read_bytes()
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key(ctx, "02").verify(der, hashlib.sha256(MSG).digest(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))


@check("p11-kit-client.so: generate + find", "C_GenerateKeyPair and C_FindObjects forwarded")
def remote_gen(ctx: Context) -> None:
    ctx.need("p11-kit server")
    _remote(ctx, "--login", "--pin", ctx.pin, "--keypairgen", "--key-type", "rsa:2048", "--id", "05", "--label", "via-remote")
    out = ctx.tool("-O", login=True).out   # seen directly by the module: the remote write landed
    assert "via-remote" in out, out


CHECKS = [list_modules, keys, server, remote_list, remote_sign, remote_gen]


def checks(target: Target) -> list[Check]:
    return CHECKS
