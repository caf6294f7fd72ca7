"""Upstream HSM commands: ``adopt`` (issue 6, docs/upstream.md "Adopting existing keys").

``adopt`` puts keys that already exist in the slot's upstream token in front of clients:
``backends.upstream.adopt`` makes one of our token objects per matching upstream key object
(private, public, secret), holding its public attributes and a reference, never its
private material. So no login to our token is needed; the upstream login uses the slot's
configured ``pin_env``/``pin_file`` as at every upstream use.
"""

from __future__ import annotations

import argparse

from .common import Admin, CliError, EXIT_USAGE, emit, table
from .objects import hex_id
from .tokens import describe_object


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("adopt", parents=[parent],
                       help="reference existing upstream HSM keys (by --label/--id) as token objects")
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--id", type=hex_id, help="CKA_ID of the upstream key(s) in hex")
    p.add_argument("--label", help="CKA_LABEL of the upstream key(s)")
    p.set_defaults(func=adopt)


def adopt(args: argparse.Namespace) -> int:
    if not (args.id or args.label):
        raise CliError("give --id and/or --label of the upstream key", EXIT_USAGE)
    with Admin(args) as adm:
        # imported here, not at the top: it loads cffi and the upstream client, which the
        # other commands do not need
        from ..backends import upstream

        objs = upstream.adopt(adm.token(args.slot), label=args.label.encode() if args.label else None,
                              id=bytes.fromhex(args.id) if args.id else None)
        rows = [describe_object(o) for o in objs]
    emit(args, {"ok": True, "slot": args.slot, "objects": rows},
         lambda: f"adopted into slot {args.slot}:\n" + table(rows, ["handle", "class", "label", "id", "key_type"]))
    return 0
