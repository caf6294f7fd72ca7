"""``cryptoki-shim serve``: the token over p11-kit's RPC (issue 18 item 5).

``serve`` starts ``p11-kit server`` with our module and prints the variables a host exports;
the host loads p11-kit-client.so. A plain C host (pkcs11-tool) makes a key and signs through
it, the signature is verified by the module loaded directly; the mechanisms that pass p11-kit's
RPC are a subset of ours (on p11-kit 0.24: no AES-GCM, no AES-CBC, docs/install.md); a Python
3.12+ host (pyenv) with python-pkcs11 signs through it when such an interpreter is present
(python-pkcs11 is installed into a venv of it from PyPI; no network: skipped).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from cryptoki_shim.cli.serve import client_module
from p11 import LIB, ROOT, write_config

CLI = str(ROOT / ".venv" / "bin" / "cryptoki-shim")


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert res.returncode == 0, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A token (label "served", a P-256 key pair id 07 made in-process) and a server for it; the environment a
    host gets from ``eval "$(cryptoki-shim serve)"``."""
    if shutil.which("p11-kit") is None:
        pytest.fail("p11-kit is needed (apt-get install p11-kit)")
    tmp = tmp_path_factory.mktemp("serve")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM", "PYTHON", "P11_KIT"))}
    env.update(CRYPTOKI_SHIM_CONF=str(write_config(tmp)), CRYPTOKI_SHIM_LIB=str(LIB))
    tool = ["pkcs11-tool", "--module", str(LIB)]
    run([*tool, "--init-token", "--label", "served", "--so-pin", "12345678"], env)
    run([*tool, "--init-pin", "--so-pin", "12345678", "--pin", "1234"], env)
    run([*tool, "-l", "--pin", "1234", "--keypairgen", "--key-type", "EC:prime256v1", "--id", "07"], env)
    out = run([CLI, "serve", "--socket", str(tmp / "sock")], env)
    found = dict(re.findall(r"^(\w+)=([^;]+); export \1;$", out, re.M))
    assert set(found) == {"P11_KIT_SERVER_ADDRESS", "P11_KIT_SERVER_PID", "CRYPTOKI_SHIM_CLIENT_MODULE"}, out
    assert found["P11_KIT_SERVER_ADDRESS"] == f"unix:path={tmp / 'sock'}"
    pid = int(found["P11_KIT_SERVER_PID"])
    try:
        yield {**env, **found, "tmp": str(tmp)}
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def client(env: dict[str, str]) -> list[str]:
    return ["pkcs11-tool", "--module", env["CRYPTOKI_SHIM_CLIENT_MODULE"], "--token-label", "served"]


def test_c_host_signs_through_p11_kit_client(served: dict[str, str]) -> None:
    tmp = Path(served["tmp"])
    run([*client(served), "-l", "--pin", "1234", "--keypairgen", "--key-type", "EC:prime256v1", "--id", "08"], served)
    # p11-kit 0.24 forwards CKM_ECDSA but not CKM_ECDSA_SHA256: the host hashes
    (tmp / "msg").write_bytes(hashlib.sha256(b"signed in another process").digest())
    run([*client(served), "-l", "--pin", "1234", "--sign", "-m", "ECDSA", "--id", "08",
         "-i", str(tmp / "msg"), "-o", str(tmp / "sig")], served)
    assert len((tmp / "sig").read_bytes()) == 64
    direct = {k: v for k, v in served.items() if k != "P11_KIT_SERVER_ADDRESS"}
    run(["pkcs11-tool", "--module", str(LIB), "-l", "--pin", "1234", "--verify", "-m", "ECDSA", "--id", "08",
         "-i", str(tmp / "msg"), "--signature-file", str(tmp / "sig")], direct)
    # a wrong PIN is refused across the socket as in-process
    res = subprocess.run([*client(served), "-l", "--pin", "9999", "-O"], capture_output=True, text=True, env=served)
    assert res.returncode != 0 and "CKR_PIN_INCORRECT" in res.stdout + res.stderr


def mechanisms(cmd: list[str], env: dict[str, str]) -> set[str]:
    return {line.split(",")[0].strip() for line in run([*cmd, "-M"], env).splitlines()[1:] if line.startswith("  ")}


def test_mechanisms_over_the_rpc_are_a_subset(served: dict[str, str]) -> None:
    remote = mechanisms(client(served), served)
    local = mechanisms(["pkcs11-tool", "--module", str(LIB)], served)
    assert remote < local
    assert {"ECDSA", "ECDSA-KEY-PAIR-GEN", "RSA-PKCS", "RSA-PKCS-PSS", "RSA-PKCS-OAEP", "SHA256-RSA-PKCS"} <= remote
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "p11-kit"], capture_output=True, text=True).stdout
    if version.startswith("0.24."):  # p11-kit 0.24 cannot marshal these parameters (docs/install.md)
        assert not {"AES-GCM", "AES-CBC", "AES-CBC-PAD"} & remote


def _newer_python() -> str | None:
    for minor in ("3.13", "3.12"):
        for exe in sorted(Path.home().glob(f".pyenv/versions/{minor}*/bin/python{minor}"), reverse=True):
            return str(exe)
        if shutil.which(f"python{minor}"):
            return shutil.which(f"python{minor}")
    return None


HOST = """
import hashlib, sys, pkcs11
from pkcs11 import Mechanism, ObjectClass
lib = pkcs11.lib(sys.argv[1])
with lib.get_token(token_label="served").open(user_pin="1234") as s:
    key = s.get_key(object_class=ObjectClass.PRIVATE_KEY, id=b"\\x07")
    digest = hashlib.sha256(b"from a newer Python").digest()
    print(len(key.sign(digest, mechanism=Mechanism.ECDSA)), sys.version_info[:2])
"""


def test_python_of_another_version_signs_through_it(served: dict[str, str], tmp_path: Path) -> None:
    python = _newer_python()
    if python is None:
        pytest.skip("no Python >= 3.12 on this machine (pyenv)")
    venv = tmp_path / "venv"
    run([python, "-m", "venv", str(venv)], served)
    res = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "python-pkcs11"], capture_output=True,
                         text=True, timeout=300)
    if res.returncode != 0:
        pytest.skip(f"python-pkcs11 could not be installed for {python}: {res.stderr.strip()[-200:]}")
    out = run([str(venv / "bin" / "python"), "-c", HOST, served["CRYPTOKI_SHIM_CLIENT_MODULE"]], served)
    length, version = out.split(" ", 1)
    assert length == "64" and not version.startswith("(3, 11)"), out


def test_foreground_server_for_a_unit(tmp_path: Path) -> None:
    """``serve --foreground`` (the systemd user unit's ExecStart) stays attached: the socket
    answers while it runs and is gone once it is stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOKI_SHIM", "PYTHON", "P11_KIT"))}
    env.update(CRYPTOKI_SHIM_CONF=str(write_config(tmp_path)), CRYPTOKI_SHIM_LIB=str(LIB))
    sock = tmp_path / "run" / "pkcs11"
    proc = subprocess.Popen([CLI, "serve", "--foreground", "--socket", str(sock)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None and sock.exists(), "the foreground server exited or made no socket"
        env.update(P11_KIT_SERVER_ADDRESS=f"unix:path={sock}")
        slots = run(["pkcs11-tool", "--module", str(client_module()), "-L"], env)
        assert "cryptoki-shim" in slots
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not sock.exists()
