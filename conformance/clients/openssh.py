"""OpenSSH: ``ssh-keygen -D`` lists token keys, ``ssh-agent`` loads them with ``ssh-add -s``
(PIN through SSH_ASKPASS, no terminal), and ``ssh-keygen -Y sign`` through the agent makes a
signature that ``ssh-keygen -Y verify`` accepts. No network: the agent is a Unix socket."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from cryptography.hazmat.primitives import serialization

from conformance.clients.common import make_keys, public_key
from conformance.runner import Check, check
from conformance.target import Context, Target

NAME = "openssh"
DESCRIPTION = "OpenSSH ssh-keygen -D, ssh-agent + ssh-add -s, ssh-keygen -Y sign/verify"


def requires(target: Target) -> str | None:
    for tool in ("ssh-keygen", "ssh-agent", "ssh-add", "pkcs11-tool"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


def _openssh_line(pub) -> str:
    return pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@check("keys (pkcs11-tool)", "setup: RSA-2048 id 01, EC P-256 id 02")
def keys(ctx: Context) -> None:
    make_keys(ctx, ("rsa:2048", "01", "ssh-rsa"), ("EC:prime256v1", "02", "ssh-ec"))


@check("ssh-keygen -D", "public keys in OpenSSH format equal pyca's encoding of the exported keys")
def keygen_d(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    out = ctx.must(["ssh-keygen", "-D", ctx.module]).out
    got = {" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()}
    for key_id in ("01", "02"):
        want = _openssh_line(public_key(ctx, key_id))
        assert want in got, f"{want[:40]}... not listed by ssh-keygen -D:\n{out}"


@check("ssh-agent + ssh-add -s", "the agent loads the token keys (C_Login via SSH_ASKPASS)")
def agent_add(ctx: Context) -> None:
    ctx.need("keys (pkcs11-tool)")
    sock = ctx.path("agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock), "-P", f"{ctx.module},/usr/lib/*"],
                             env=ctx.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ctx.cleanups.append(lambda: (agent.kill(), agent.wait(5)))
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.05)
    askpass = ctx.path("askpass.sh")
    askpass.write_text(f"#!/bin/sh\necho {ctx.pin}\n")
    askpass.chmod(0o700)
    ctx.env.update(SSH_AUTH_SOCK=str(sock), SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force",
                   DISPLAY=ctx.env.get("DISPLAY", ":0"))
    p = ctx.run(["ssh-add", "-s", ctx.module], setsid=True, input="", timeout=60)
    assert p.rc == 0, p.text()
    listed = ctx.must(["ssh-add", "-L"]).out
    for key_id in ("01", "02"):
        assert _openssh_line(public_key(ctx, key_id)).split()[1] in listed, f"key {key_id} not in agent:\n{listed}"


def _ysign(key_id: str):
    def fn(ctx: Context) -> None:
        ctx.need("ssh-agent + ssh-add -s")
        line = _openssh_line(public_key(ctx, key_id))
        pubf, msg = ctx.path(f"id-{key_id}.pub"), ctx.path(f"file-{key_id}.txt")
        pubf.write_text(line + "\n")
        msg.write_bytes(os.urandom(64).hex().encode())
        ctx.must(["ssh-keygen", "-Y", "sign", "-f", str(pubf), "-n", "file", str(msg)], setsid=True)
        allowed = ctx.path("allowed_signers")
        allowed.write_text(f"conformance@example {line}\n")
        p = ctx.must(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "conformance@example",
                      "-n", "file", "-s", f"{msg}.sig"], input=msg.read_text())
        assert "Good" in p.out + p.err, p.text()
        msg.write_text("tampered")
        bad = ctx.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "conformance@example",
                       "-n", "file", "-s", f"{msg}.sig"], input=msg.read_text())
        assert bad.rc != 0, "a tampered file verified"
    return fn


ysign_rsa = Check("ssh-keygen -Y sign (rsa, via agent)", _ysign("01"), "rsa-sha2-512 by the token; ssh-keygen -Y verify")
ysign_ec = Check("ssh-keygen -Y sign (ecdsa, via agent)", _ysign("02"), "ecdsa-sha2-nistp256 by the token; ssh-keygen -Y verify")

CHECKS = [keys, keygen_d, agent_add, ysign_rsa, ysign_ec]


def checks(target: Target) -> list[Check]:
    return CHECKS
