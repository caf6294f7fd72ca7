"""Token commands: ``init-token``, ``set-pin``, ``unlock-pin``, ``list``.

Each is what a PKCS#11 application would do (C_InitToken, C_InitPIN, C_SetPIN, C_Login,
C_FindObjects), done through the core's own functions.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import spec
from ..spec_ints import (
    CKU_SO,
    CKU_USER,
    CKA_CLASS,
    CKA_EXTRACTABLE,
    CKA_ID,
    CKA_KEY_TYPE,
    CKA_LABEL,
    CKA_PRIVATE,
    CKA_SHIM_BACKEND,
    CKO_PRIVATE_KEY,
    CKO_PUBLIC_KEY,
    CKO_SECRET_KEY,
)
from .common import (Admin, CliError, EXIT_USAGE, Progress, add_secret_options, emit, hexid,
                     secret, table, text)

BACKENDS = {spec.SHIM_BACKEND_SOFTWARE: "software", spec.SHIM_BACKEND_TPM: "tpm",
            spec.SHIM_BACKEND_UPSTREAM: "upstream"}
KEY_CLASSES = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init-token", parents=[parent], help="initialize (or wipe and re-initialize) a token")
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--label", required=True, help="token label (at most 32 bytes of UTF-8)")
    add_secret_options(p, "so-pin", "SO PIN")
    add_secret_options(p, "pin", "user PIN (sets the user PIN as well; asked at a terminal)")
    p.add_argument("--no-user-pin", action="store_true",
                   help="set no user PIN now (at a terminal the user PIN is asked otherwise)")
    p.add_argument("--force", action="store_true",
                   help="wipe an initialized token without its old SO PIN (a locked or lost SO PIN): "
                        "every key is destroyed")
    p.set_defaults(func=init_token)

    p = sub.add_parser("set-pin", parents=[parent], help="change the user or SO PIN (C_SetPIN)")
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--user", choices=("user", "so"), default="user")
    add_secret_options(p, "old-pin", "current PIN")
    add_secret_options(p, "new-pin", "new PIN")
    p.set_defaults(func=set_pin)

    p = sub.add_parser("unlock-pin", parents=[parent],
                       help="the SO sets a new user PIN, which also clears a lockout (C_InitPIN)")
    p.add_argument("--slot", type=int, default=0)
    add_secret_options(p, "so-pin", "SO PIN")
    add_secret_options(p, "new-pin", "new user PIN")
    p.set_defaults(func=unlock_pin)

    p = sub.add_parser("list", parents=[parent], help="slots, tokens and objects (no secrets)")
    p.add_argument("--slot", type=int, default=None, help="only this slot")
    p.add_argument("--all", action="store_true", help="also the CKO_PROFILE objects every token publishes")
    add_secret_options(p, "pin", "user PIN (to see private objects)")
    p.set_defaults(func=list_tokens)


def _label32(label: str) -> bytes:
    raw = label.encode()
    if len(raw) > 32:
        raise CliError(f"--label is {len(raw)} bytes; allowed: at most 32", EXIT_USAGE)
    return raw.ljust(32, b" ")


def init_token(args: argparse.Namespace) -> int:
    so_pin = secret(args, "so-pin", "SO PIN", confirm=True)
    user_pin = _init_user_pin(args)
    with Admin(args) as adm:
        with Progress("initializing the token (Argon2id)"):
            adm.module.init_token(args.slot, so_pin, _label32(args.label), force=args.force)
        if user_pin is not None:
            s = adm.session(args.slot, login=CKU_SO, pin=so_pin)
            with Progress("setting the user PIN (Argon2id)"):
                adm.module.init_pin(s, user_pin)
        rec = adm.token(args.slot).record
        data = {"ok": True, "slot": args.slot, "label": args.label, "serial": rec.serial,
                "user_pin_set": user_pin is not None}
    emit(args, data, f"slot {args.slot}: token {args.label!r} initialized (serial {data['serial']}); PINs now: "
         + ("SO PIN and user PIN" if user_pin is not None
            else "SO PIN only, no user PIN yet: keys cannot be used until `cryptoki-shim unlock-pin` sets one"))
    return 0


def _init_user_pin(args: argparse.Namespace) -> bytes | None:
    """The user PIN that init-token sets: from ``--pin-*``; else typed at a terminal (issue 21:
    only the SO PIN was asked, and the next step failed with CKR_USER_PIN_NOT_INITIALIZED);
    none with ``--no-user-pin`` or without a terminal (scripts keep the two steps apart)."""
    if args.no_user_pin:
        if args.pin_env or args.pin_file:
            raise CliError("--no-user-pin and --pin-* contradict each other", EXIT_USAGE)
        return None
    if args.pin_env or args.pin_file or sys.stdin.isatty():
        return secret(args, "pin", "user PIN", confirm=True)
    return None


def set_pin(args: argparse.Namespace) -> int:
    old = secret(args, "old-pin", "current PIN")
    new = secret(args, "new-pin", "new PIN", confirm=True)
    with Admin(args) as adm:
        if args.user == "so":
            s = adm.session(args.slot, login=CKU_SO, pin=old)
        else:
            s = adm.session(args.slot)
        with Progress("changing the PIN (Argon2id)"):
            adm.module.set_pin(s, old, new)
    emit(args, {"ok": True, "slot": args.slot, "user": args.user}, f"slot {args.slot}: {args.user} PIN changed")
    return 0


def unlock_pin(args: argparse.Namespace) -> int:
    so_pin = secret(args, "so-pin", "SO PIN")
    new = secret(args, "new-pin", "new user PIN", confirm=True)
    with Admin(args) as adm:
        s = adm.session(args.slot, login=CKU_SO, pin=so_pin)
        with Progress("setting the user PIN (Argon2id)"):
            adm.module.init_pin(s, new)
    emit(args, {"ok": True, "slot": args.slot}, f"slot {args.slot}: user PIN set, failure counter cleared")
    return 0


def describe_object(obj: Any) -> dict[str, Any]:
    """The public identity of an object: never a value of a key."""
    a = obj.attrs
    cls = a.get(CKA_CLASS)
    row: dict[str, Any] = {
        "handle": obj.handle,
        "class": spec.cko_name(cls).removeprefix("CKO_") if cls is not None else None,
        "label": text(a.get(CKA_LABEL)),
        "id": hexid(a.get(CKA_ID)),
        "key_type": None, "backend": None,
        "unique_id": obj.unique_id,
        "private": a.get(CKA_PRIVATE) is True,
    }
    if cls in KEY_CLASSES:
        kt = a.get(CKA_KEY_TYPE)
        row["key_type"] = spec.ckk_name(kt).removeprefix("CKK_") if kt is not None else None
        row["backend"] = BACKENDS.get(a.get(CKA_SHIM_BACKEND, 0), "?")
        if cls != CKO_PUBLIC_KEY:
            row["extractable"] = a.get(CKA_EXTRACTABLE) is True
    return row


def list_tokens(args: argparse.Namespace) -> int:
    pin = secret(args, "pin", "user PIN", required=False)
    out: list[dict[str, Any]] = []
    with Admin(args) as adm:
        for slot_id in adm.slot_ids():
            if args.slot is not None and slot_id != args.slot:
                continue
            cfg = adm.module.slot(slot_id).cfg
            token = adm.token(slot_id)
            token.refresh(force=True)
            entry: dict[str, Any] = {"slot": slot_id, "description": cfg.description, "backend": cfg.backend,
                                     "token": None, "objects": []}
            rec = token.record
            if token.initialized and rec is not None:
                entry["token"] = {
                    "label": rec.label.decode("utf-8", "replace").rstrip(),
                    "serial": rec.serial,
                    "user_pin_set": rec.user_pin is not None,
                    "user_pin_failures": rec.user_pin.failures if rec.user_pin else 0,
                    "user_pin_locked": bool(rec.user_pin and rec.user_pin.failures >= cfg.max_pin_failures),
                    "so_pin_failures": rec.so_pin.failures if rec.so_pin else 0,
                }
                login = CKU_USER if pin is not None and rec.user_pin is not None else None
                s = adm.session(slot_id, login=login, pin=pin)
                objs = [describe_object(o) for o in adm.objects(s)]
                entry["objects"] = [o for o in objs if args.all or o["class"] != "PROFILE"]
                entry["logged_in"] = login is not None
            out.append(entry)
    if args.slot is not None and not out:
        raise CliError(f"slot {args.slot} is not configured", EXIT_USAGE)

    def human() -> str:
        parts = []
        for e in out:
            head = f"slot {e['slot']}: {e['description']} (backend {e['backend']})"
            t = e["token"]
            if t is None:
                parts.append(head + "\n  token: not initialized (cryptoki-shim init-token)")
                continue
            flags = "user PIN set" if t["user_pin_set"] else "no user PIN"
            if t["user_pin_locked"]:
                flags += ", user PIN LOCKED (cryptoki-shim unlock-pin)"
            elif t["user_pin_failures"]:
                flags += f", {t['user_pin_failures']} failed login(s)"
            seen = "all objects" if e.get("logged_in") else "public objects only (give --pin-env/--pin-file)"
            parts.append(f"{head}\n  token: {t['label']!r} serial {t['serial']}, {flags}\n  {seen}:\n"
                         + table(e["objects"], ["handle", "class", "label", "id", "key_type", "backend"]))
        return "\n\n".join(parts)

    emit(args, {"ok": True, "slots": out}, human)
    return 0
