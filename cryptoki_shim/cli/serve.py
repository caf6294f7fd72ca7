"""``serve``: the token for hosts that cannot load the module in-process (issue 18 item 5).

A process that already embeds another Python (a Python 3.12 program, or any host of another
minor version) cannot load a library that embeds 3.11: the module refuses there
(DESIGN.md §2.5). Such a host loads p11-kit's client module instead, and ``p11-kit server``
runs ours in its own process; p11-kit's RPC carries the calls over a Unix socket. No protocol
of ours: ``serve`` only starts ``p11-kit server`` with our module and prints what the host
needs (the variables to export and the client module's path).

Limits are p11-kit's: its RPC forwards only the mechanisms whose parameters it can marshal
(docs/install.md lists them per p11-kit version); the cost per call is measured in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from .common import CliError, EXIT_FAILED, EXIT_USAGE
from .installed import default_library

CLIENT_MODULE = "p11-kit-client.so"


def client_module() -> Path:
    """p11-kit's client module (the one a remote host loads)."""
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    return Path("/usr/lib") / multiarch / "pkcs11" / CLIENT_MODULE


def default_socket() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path(f"/tmp/cryptoki-shim-{os.getuid()}")
    return base / "cryptoki-shim" / "pkcs11"


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[parent],
                       help="share the token over p11-kit's RPC (p11-kit server) and print what to export")
    p.add_argument("--library", type=Path, default=None, help="the module to serve (default: `module-path`)")
    p.add_argument("--socket", type=Path, default=None,
                   help="socket path (default: $XDG_RUNTIME_DIR/cryptoki-shim/pkcs11)")
    p.add_argument("--token", default="pkcs11:", help="PKCS#11 URI of the tokens to share (default: all)")
    p.add_argument("--foreground", action="store_true", help="stay in the foreground (systemd units)")
    p.add_argument("--group", default=None, help="group whose members may connect (p11-kit server --group)")
    p.add_argument("--user", default=None, help="user who may connect (p11-kit server --user)")
    p.add_argument("--csh", action="store_true", help="print C-shell commands instead of Bourne shell ones")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    p11kit = shutil.which("p11-kit")
    if p11kit is None:
        raise CliError("p11-kit is not installed (apt-get install p11-kit)", EXIT_USAGE)
    lib = (args.library or default_library()).resolve()
    if not lib.is_file():
        raise CliError(f"{lib} not found (module-path; in a clone: make build)", EXIT_USAGE)
    if args.config:
        os.environ["CRYPTOKI_SHIM_CONF"] = os.path.abspath(args.config)
    sock = (args.socket or default_socket()).absolute()
    sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if sock.exists():
        raise CliError(f"{sock} exists: a server runs there already (or remove the stale socket)", EXIT_USAGE)
    cmd = [p11kit, "server", "--provider", str(lib), "--name", str(sock), "--csh" if args.csh else "--sh"]
    if args.group:
        cmd += ["--group", args.group]
    if args.user:
        cmd += ["--user", args.user]
    if args.foreground:
        sys.stdout.flush()
        os.execv(p11kit, [*cmd, "--foreground", args.token])
    # p11-kit prints the variables and leaves a daemon behind that keeps its output open: read
    # files once the first process exits, never pipes (they would stay open with the daemon)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run([*cmd, args.token], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                              timeout=60).returncode
        out.seek(0)
        err.seek(0)
        printed, problems = out.read(), err.read()
    if code != 0 or "P11_KIT_SERVER_ADDRESS" not in printed:
        raise CliError(f"p11-kit server failed (exit {code}): {problems.strip()[-500:]}", EXIT_FAILED)
    client = client_module()
    export = (f"setenv CRYPTOKI_SHIM_CLIENT_MODULE {client};" if args.csh
              else f"CRYPTOKI_SHIM_CLIENT_MODULE={client}; export CRYPTOKI_SHIM_CLIENT_MODULE;")
    sys.stdout.write(printed + export + "\n"
                     + "# hosts load $CRYPTOKI_SHIM_CLIENT_MODULE; stop with: kill $P11_KIT_SERVER_PID\n")
    return 0
