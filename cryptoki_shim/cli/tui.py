"""``cryptoki-shim tui``: the admin commands as a terminal UI (Textual; docs/tui.md).

What it shows and does is what the commands show and do, because it runs them: every read
is ``cryptoki-shim list --json`` / ``audit verify --json``, every action the same command
(``init-token``, ``set-pin``, ``import``, ``backup``) in a child process, with the PINs
passed in that child's environment (``--pin-env``), never on a command line. So there is
no second implementation of a rule, and a secret never reaches the screen (PIN fields are
masked; key values are never read: ``list`` never returns them).

Screens: the slots and their tokens, the objects of the selected slot (public ones, or all
after ``l``ogin), an object's attributes with its backend and how often it was used (from
the audit log's ``key.use`` records), the audit log's last records with the result of
``audit verify``, and the admin actions, each behind a confirmation.

Textual is an optional dependency (``pip install 'cryptoki-shim[tui]'``; ``./run`` installs it).
"""

from __future__ import annotations

import argparse

from .common import CliError, EXIT_USAGE
from .tui_backend import Backend


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tui", parents=[parent], help="browse slots, tokens, objects and the audit log; admin actions")
    p.set_defaults(func=tui)


def tui(args: argparse.Namespace) -> int:
    try:
        from .tui_app import ShimApp
    except ImportError as exc:
        raise CliError(f"the TUI needs Textual ({exc.name}): pip install 'cryptoki-shim[tui]'", EXIT_USAGE) from None
    ShimApp(Backend(args.config)).run()
    return 0
