"""TPM administration: ``tpm-reset-lockout`` (issue 5, docs/tpm.md "Dictionary attack").

After too many wrong auth values (someone guessing against a key blob, or a client with a
stale store) the TPM refuses every DA-protected object: our keys answer ``CKR_PIN_LOCKED``.
An operator who found out why runs this command: ``TPM2_DictionaryAttackLockReset`` with
the lockout hierarchy's auth (``tpm_conn.reset_lockout``, in a salted HMAC session, so the
auth never crosses the bus). The auth comes from ``--lockout-auth-env`` /
``--lockout-auth-file`` or else the slot's ``[slots.tpm] lockout_auth_file``; with neither,
the empty auth (what a TPM has until someone sets one). Values are text, or ``hex:...``
(the tpm2-tools convention).
"""

from __future__ import annotations

import argparse

from ..backends import BY_NAME
from .common import EXIT_USAGE, Admin, CliError, add_secret_options, emit, secret

TPM = BY_NAME["tpm"]


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tpm-reset-lockout", parents=[parent],
                       help="TPM slot: leave dictionary-attack lockout (TPM2_DictionaryAttackLockReset)")
    p.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    add_secret_options(p, "lockout-auth", "TPM lockout auth")
    p.set_defaults(func=reset_lockout)


def decode_auth(raw: bytes) -> bytes:
    """``hex:0a1b...`` -> bytes; ``str:text`` or plain text -> its UTF-8 bytes."""
    if raw.startswith(b"hex:"):
        try:
            return bytes.fromhex(raw[4:].decode())
        except ValueError:
            raise CliError("lockout auth: 'hex:' followed by something that is not hex", EXIT_USAGE) from None
    return raw.removeprefix(b"str:")


def _configured_auth(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read().rstrip(b"\r\n")
    except OSError as exc:
        raise CliError(f"[slots.tpm] lockout_auth_file {path}: {exc.strerror}", EXIT_USAGE) from None


def reset_lockout(args: argparse.Namespace) -> int:
    from ..backends import tpm_conn

    given = secret(args, "lockout-auth", "TPM lockout auth", required=False)
    with Admin(args) as adm:
        slot = adm.module.slot(args.slot)
        backend = slot.token.backends.get(TPM)
        if backend is None:
            raise CliError(f"slot {args.slot} has no TPM backend ([slots.tpm] or backend = \"tpm\")", EXIT_USAGE)
        path = (slot.cfg.tpm or {}).get("lockout_auth_file") or ""
        source = "--lockout-auth" if given is not None else ("lockout_auth_file" if path else "empty auth")
        raw = given if given is not None else (_configured_auth(path) if path else b"")
        tpm_conn.reset_lockout(backend.tcti, decode_auth(raw), lock_file=backend.lock_file)
    emit(args, {"ok": True, "slot": args.slot, "tcti": backend.tcti, "auth_from": source},
         f"slot {args.slot}: TPM dictionary-attack lockout reset ({backend.tcti}; auth from {source})")
    return 0
