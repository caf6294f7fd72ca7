"""The admin command line: ``cryptoki-shim <command>`` (commands grow with issue 10)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cryptoki-shim", description="cryptoki-shim administration")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="init a token, make keys, sign and verify through real clients")
    demo.add_argument("--library", default=None, help="path of libcryptoki_shim.so (default: build/)")
    demo.add_argument("--keep", action="store_true", help="keep the demo's temporary store")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run

        return run(args.library, keep=args.keep)
    return 2


if __name__ == "__main__":
    sys.exit(main())
