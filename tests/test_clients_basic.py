"""Real PKCS#11 clients load the module and see our slot and token (issue 2).

OpenSC's pkcs11-tool, GnuTLS's p11tool and python-pkcs11 each run as a subprocess with
their own configuration and store (``CRYPTOKI_SHIM_CONF``) and a timeout. python-pkcs11 runs
in a subprocess of the venv's interpreter: a second copy of the library inside the pytest
process is not what a client does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from p11 import LIB, write_config

SO_PIN = "12345678"
USER_PIN = "1234"
_SCRUBBED = ("CRYPTOKI_SHIM_LOG", "CRYPTOKI_SHIM_LOG_LEVEL", "CRYPTOKI_SHIM_PYTHONHOME",
             "CRYPTOKI_SHIM_USE_PYTHON_ENV", "CRYPTOKI_SHIM_CONF")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (./run installs opensc and gnutls-bin)")
    return path


@pytest.fixture
def env(tmp_path: Path, lib_path: Path) -> dict[str, str]:
    """A clean environment: our config, and a HOME without p11-kit/OpenSC user settings."""
    e = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    home = tmp_path / "home"
    home.mkdir()
    e.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
             CRYPTOKI_SHIM_CONF=str(write_config(tmp_path)))
    return e


def run(cmd: list[str], env: dict[str, str], timeout: float = 120) -> str:
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(cmd)} hung")
    assert res.returncode == 0, f"{' '.join(cmd)}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def init_token(env: dict[str, str], label: str = "clients") -> None:
    run([tool("pkcs11-tool"), "--module", str(LIB), "--slot", "0", "--init-token", "--label", label,
         "--so-pin", SO_PIN], env)
    run([tool("pkcs11-tool"), "--module", str(LIB), "--slot", "0", "--login", "--login-type", "so",
         "--so-pin", SO_PIN, "--init-pin", "--pin", USER_PIN], env)


def test_pkcs11_tool_info_slots_mechanisms_tokens(env: dict[str, str]) -> None:
    out = run([tool("pkcs11-tool"), "--module", str(LIB), "-I", "-L", "-M", "-T"], env)
    assert "Cryptoki version 3.2" in out  # OpenSC takes the default interface (3.2)
    assert "Manufacturer     cryptoki-shim project" in out
    assert "Library          cryptoki-shim PKCS#11 provider" in out
    assert "Slot 0 (0x0): cryptoki-shim software slot" in out
    assert "token state:   uninitialized" in out
    assert "Supported mechanisms:" in out
    assert "RSA-PKCS-KEY-PAIR-GEN" in out and "ECDSA" in out and "SHA256-RSA-PKCS" in out


def test_pkcs11_tool_sees_the_initialized_token(env: dict[str, str]) -> None:
    init_token(env, "clients")
    out = run([tool("pkcs11-tool"), "--module", str(LIB), "-L"], env)
    assert "token label        : clients" in out
    assert "token manufacturer : cryptoki-shim project" in out
    assert "token model        : software" in out
    flags = next(line for line in out.splitlines() if "token flags" in line)
    for flag in ("login required", "rng", "token initialized", "PIN initialized"):
        assert flag in flags, flags


def test_pkcs11_tool_lists_configured_slot_ids(env: dict[str, str], tmp_path: Path) -> None:
    conf = tmp_path / "two"
    conf.mkdir()
    env["CRYPTOKI_SHIM_CONF"] = str(write_config(
        conf, slots='[[slots]]\nid = 3\nkdf_cost = "test"\n[[slots]]\nid = 7\nkdf_cost = "test"\n'))
    out = run([tool("pkcs11-tool"), "--module", str(LIB), "-L"], env)
    assert "Slot 0 (0x3): cryptoki-shim software slot" in out
    assert "Slot 1 (0x7): cryptoki-shim software slot" in out


def test_p11tool_lists_the_token(env: dict[str, str]) -> None:
    init_token(env, "gnutls")
    out = run([tool("p11tool"), "--provider", str(LIB.resolve()), "--list-tokens"], env)
    assert "Label: gnutls" in out
    assert "Manufacturer: cryptoki-shim project" in out
    assert "Model: software" in out
    assert "manufacturer=cryptoki-shim%20project" in out and "token=gnutls" in out


_PYTHON_PKCS11 = r'''
import sys
import pkcs11

lib = pkcs11.lib(sys.argv[1])
print("library", lib.manufacturer_id, "|", lib.library_description)
for slot in lib.get_slots(token_present=False):
    token = slot.get_token()
    print("slot", slot.slot_id, "|", slot.slot_description, "|", slot.manufacturer_id)
    print("token", token.label, "|", token.manufacturer_id, "|", token.model, "|", bool(token.flags & pkcs11.TokenFlag.TOKEN_INITIALIZED))
token = lib.get_token(token_label="python")
with token.open(user_pin=sys.argv[2]) as session:
    print("session", type(session).__name__)
'''


def test_python_pkcs11_lists_slot_and_token(env: dict[str, str], tmp_path: Path) -> None:
    init_token(env, "python")
    script = tmp_path / "client.py"
    script.write_text(_PYTHON_PKCS11)
    out = run([sys.executable, str(script), str(LIB), USER_PIN], env).splitlines()
    assert out == [
        "library cryptoki-shim project | cryptoki-shim PKCS#11 provider",
        "slot 0 | cryptoki-shim software slot | cryptoki-shim project",
        "token python | cryptoki-shim project | software | True",
        "session Session",
    ]
