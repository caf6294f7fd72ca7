"""The admin command line: ``cryptoki-shim <command>`` (docs/cli.md).

One module per command group registers its sub-commands (``register(sub, parent)``):
``tokens`` (init-token, set-pin, unlock-pin, list), ``objects`` (import, export-public,
delete), ``backup`` (backup, restore), ``doctor`` (doctor, p11-kit-module, store-key-create), ``auditing``
(audit verify), ``configuration`` (config-reference, config-check), ``attestation`` (attest,
verify-attestation: TPM keys), ``tpm_admin`` (tpm-reset-lockout), ``upstream`` (adopt: upstream HSM keys), ``installed`` (module-path), ``store_admin`` (store migrate), ``serve`` (p11-kit server), ``stats`` (the module's metrics file), ``tui`` (Textual), and ``demo``.

Exit codes: 0 success, 1 a PKCS#11 operation failed, 2 bad usage, 3 invalid configuration,
4 a check found problems (doctor, audit verify, a backup that fails its integrity check),
141 the reader of stdout went away (``cryptoki-shim list | head``; nothing on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

GROUPS = ("tokens", "objects", "backup", "doctor", "auditing", "configuration", "attestation", "tpm_admin",
          "upstream", "installed", "store_admin", "serve", "stats", "tui")


def build_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", metavar="FILE", help="configuration file (default: $CRYPTOKI_SHIM_CONF, "
                                                         "${XDG_CONFIG_HOME:-~/.config}/cryptoki-shim/config.toml, "
                                                         "/etc/cryptoki-shim/config.toml)")
    parent.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser = argparse.ArgumentParser(prog="cryptoki-shim", description="cryptoki-shim administration")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for group in GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(sub, parent)
    demo = sub.add_parser("demo", help="init a token, make keys, sign and verify through real clients")
    demo.add_argument("--library", default=None, help="path of libcryptoki_shim.so (default: `module-path`)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's temporary store")
    demo.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a closed stdout ends it quietly (issue 15 item 12: ``list | head``
    printed a BrokenPipeError traceback), with the status a shell gives a command that
    SIGPIPE killed. SIGPIPE itself stays ignored (Python's default): dying on it in the middle
    of a store transaction or a backup would be worse than an exception we handle here."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # inside the try: the last buffered output may be what breaks
        return code
    except BrokenPipeError:
        from .common import EXIT_BROKEN_PIPE

        # the interpreter flushes stdout again at exit: point it at /dev/null so that flush
        # cannot raise (and print "Exception ignored ...") a second time
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run

        return run(args.library, keep=args.keep)
    from .common import run_command

    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
