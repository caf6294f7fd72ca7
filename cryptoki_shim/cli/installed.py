"""Where the library of this installation is: ``module-path`` (issue 18 item 2).

One answer for every layout (docs/install.md), in this order:
  * ``$CRYPTOKI_SHIM_LIB`` (tests, unusual layouts);
  * next to the package: a pip install (setup.py builds ``cryptoki_shim/libcryptoki_shim.so``);
  * the Debian package's: the package in ``<prefix>/lib/cryptoki-shim/python``, the library in
    ``<prefix>/lib/<multiarch>/pkcs11/`` (or ``<prefix>/lib/pkcs11/``);
  * a clone's ``build/libcryptoki_shim.so`` (``make build``).
The library finds its Python environment by the same layouts from its side (native/pyenv.c).
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path

from .common import CliError, EXIT_USAGE, emit

LIBRARY_NAME = "libcryptoki_shim.so"
PACKAGE = Path(__file__).resolve().parents[1]


def candidates() -> list[Path]:
    """Every place of the order above, first match wins."""
    found = [PACKAGE / LIBRARY_NAME]
    if PACKAGE.parent.name == "python" and PACKAGE.parent.parent.name == "cryptoki-shim":
        lib = PACKAGE.parents[2]
        multiarch = sysconfig.get_config_var("MULTIARCH")
        if multiarch:
            found.append(lib / multiarch / "pkcs11" / LIBRARY_NAME)
        found.append(lib / "pkcs11" / LIBRARY_NAME)
    found.append(PACKAGE.parent / "build" / LIBRARY_NAME)
    return found


def default_library() -> Path:
    """The library of this installation (the first existing candidate; else the clone's)."""
    env = os.environ.get("CRYPTOKI_SHIM_LIB")
    if env:
        return Path(env)
    places = candidates()
    return next((p for p in places if p.is_file()), places[-1])


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("module-path", parents=[parent],
                       help="print the path of the PKCS#11 library of this installation")
    p.set_defaults(func=module_path)


def module_path(args: argparse.Namespace) -> int:
    lib = default_library()
    if not lib.is_file():
        raise CliError(f"no library found (looked at {', '.join(map(str, candidates()))}); "
                       "in a clone: make build", EXIT_USAGE)
    emit(args, {"ok": True, "module": str(lib.resolve())}, str(lib.resolve()))
    sys.stdout.flush()
    return 0
