"""``backup`` / ``restore``: a whole token to an age-encrypted file and back.

What is saved is the token as the store holds it: label, serial, the PIN records (the token
key wrapped under Argon2id of each PIN, with failure counters) and every object's
attributes, sensitive ones still sealed under the token key. So a backup restores to the
very same token (same serial: the sealed values' associated data still match), and a stolen
backup is protected twice: by age, and by the PINs.

The file is an age file (pyrage): to X25519 / SSH recipients (fast), or to a passphrase
(scrypt, 2–4 s per call: DESIGN.md §6). Age only hides: anyone who knows the public
recipient can make a valid age file (issue 15 item 9: such a forged file was restored).
So inside, the JSON payload carries ``mac`` = HMAC-SHA256 under a key derived (HKDF) from
the token key: ``backup`` needs a PIN of the token (a login, counted like any other) to
make it, and ``restore`` needs a PIN of the backed-up token to check it: the PIN opens the
backup's own PIN record, whose token key must then reproduce the MAC. A forger who does
not hold that token key (knows none of its PINs) cannot make a file that passes; a file
made by the old release (version 1, only a SHA-256) is refused for the same reason.

``restore`` decrypts, checks the shape of every record and the MAC, and only then replaces
the slot's token in one store transaction: a client sees the old token or the new one,
never a mix, and a bad file writes nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path
from typing import Any

from ..store import ObjectRecord, PinRecord, TokenRecord
from .common import (Admin, CliError, EXIT_CHECK, EXIT_USAGE, Progress, add_secret_options, emit, secret,
                     write_private_output)

from ..errors import CryptokiError
from ..spec import CKR_PIN_INCORRECT
from ..spec_ints import CKU_SO, CKU_USER

FORMAT = "cryptoki-shim-token-backup"
VERSION = 2  # 2: authenticated (mac); 1 had only a SHA-256, which anyone can recompute
MAC_ALG = "HMAC-SHA256/HKDF-SHA256(token key)"
_MAC_INFO = b"cryptoki-shim/backup-mac/v2"
#: Upper bounds of a backup's KDF parameters: a forged PIN record must not make ``restore``
#: allocate gigabytes before the MAC can refuse it (the cost tables stay well below).
KDF_LIMITS = {"argon2id": {"memory_cost": 1 << 20, "iterations": 16, "lanes": 16},
              "scrypt": {"n": 1 << 20, "r": 16, "p": 16}}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("backup", parents=[parent],
                       help="write a token to an age-encrypted file, authenticated under the token key (needs a PIN)")
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("-r", "--recipient", action="append", default=[],
                   help="age recipient (age1...) or SSH public key line; repeatable")
    p.add_argument("-R", "--recipients-file", type=Path, help="file with one recipient per line")
    add_secret_options(p, "passphrase", "backup passphrase (instead of recipients; slow: scrypt)")
    _pin_options(p)
    p.set_defaults(func=backup)

    p = sub.add_parser("restore", parents=[parent],
                       help="replace a token by a backup (authenticity checked first: needs a PIN of the backed-up token)")
    p.add_argument("file", type=Path)
    p.add_argument("--slot", type=int, default=None, help="target slot (default: the slot it was taken from)")
    p.add_argument("-i", "--identity", type=Path, help="age identity file (AGE-SECRET-KEY-1...)")
    add_secret_options(p, "passphrase", "backup passphrase")
    _pin_options(p)
    p.set_defaults(func=restore)


def _pin_options(p: argparse.ArgumentParser) -> None:
    """The user PIN (``--pin-*``, the default) or the SO PIN (``--so-pin-*``)."""
    add_secret_options(p, "pin", "user PIN")
    add_secret_options(p, "so-pin", "SO PIN (instead of the user PIN)")


def _pin(args: argparse.Namespace) -> tuple[int, bytes]:
    if args.so_pin_env or args.so_pin_file:
        if args.pin_env or args.pin_file:
            raise CliError("give the user PIN or the SO PIN, not both", EXIT_USAGE)
        return CKU_SO, secret(args, "so-pin", "SO PIN of the backed-up token")
    return CKU_USER, secret(args, "pin", "user PIN of the backed-up token")


def _mac(token_key: bytes, payload: Any) -> str:
    """HMAC-SHA256 of the canonical payload under HKDF(token key): only a holder of the
    token key (of one of its PINs) can make it. pyca, never hashlib (issue 25)."""
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MAC_INFO).derive(token_key)
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(_canonical(payload))
    return h.finalize().hex()


# --------------------------------------------------------------------------- encoding


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _pin_record(p: PinRecord | None) -> dict[str, Any] | None:
    return None if p is None else {"kdf": p.kdf, "params": p.params, "wrapped_key": _b64(p.wrapped_key),
                                   "failures": p.failures}


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def snapshot(store: Any, slot: int, token_key: bytes, progress: Progress | None = None) -> dict[str, Any]:
    rec = store.token(slot)
    if rec is None:
        raise CliError(f"slot {slot} has no token to back up")
    objs = store.objects(slot)
    if progress:
        progress.total = len(objs)
    objects = []
    for o in objs:
        objects.append({"unique_id": o.unique_id, "attrs": {str(t): _b64(v) for t, v in sorted(o.attrs.items())},
                        "sealed": {str(t): _b64(v) for t, v in sorted(o.sealed.items())}})
        if progress:
            progress.step()
    payload = {"format": FORMAT, "version": VERSION, "created": int(time.time()), "slot": slot,
               "token": {"label": _b64(rec.label), "serial": rec.serial, "created_at": rec.created_at,
                         "meta": rec.meta, "so_pin": _pin_record(rec.so_pin),
                         "user_pin": _pin_record(rec.user_pin)},
               "objects": objects}
    return {"payload": payload, "mac_alg": MAC_ALG, "mac": _mac(token_key, payload)}


class BadBackup(CliError):
    def __init__(self, why: str) -> None:
        super().__init__(f"backup rejected, nothing written: {why}", EXIT_CHECK)


def parse_backup(doc: Any) -> tuple[int, TokenRecord, list[ObjectRecord]]:
    """Check the shape of everything before anything is written (``authenticate`` next)."""
    try:
        payload = doc["payload"]
        version = payload.get("version")
    except (TypeError, KeyError, AttributeError):
        raise BadBackup("not a cryptoki-shim backup") from None
    if payload.get("format") != FORMAT or version != VERSION:
        why = " (unauthenticated: anyone with the public recipient could have made it)" if version == 1 else ""
        raise BadBackup(f"format {payload.get('format')!r} version {version!r}{why}; "
                        f"allowed: {FORMAT} version {VERSION}")
    if doc.get("mac_alg") != MAC_ALG or not isinstance(doc.get("mac"), str):
        raise BadBackup(f"no {MAC_ALG} mac")
    try:
        t = payload["token"]

        def pin(d: Any) -> PinRecord | None:
            return None if d is None else PinRecord(kdf=str(d["kdf"]), params=dict(d["params"]),
                                                    wrapped_key=base64.b64decode(d["wrapped_key"], validate=True),
                                                    failures=int(d["failures"]))

        token = TokenRecord(slot_id=int(payload["slot"]), label=base64.b64decode(t["label"], validate=True),
                            serial=str(t["serial"]), so_pin=pin(t["so_pin"]), user_pin=pin(t["user_pin"]),
                            created_at=int(t["created_at"]), meta=dict(t["meta"]))
        objects = [ObjectRecord(oid=None, unique_id=str(o["unique_id"]),
                                attrs={int(k): base64.b64decode(v, validate=True) for k, v in o["attrs"].items()},
                                sealed={int(k): base64.b64decode(v, validate=True) for k, v in o["sealed"].items()})
                   for o in payload["objects"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadBackup(f"malformed record ({type(exc).__name__}: {exc})") from None
    if token.so_pin is None:
        raise BadBackup("the token has no SO PIN record")
    for rec in (token.so_pin, token.user_pin):
        limits = KDF_LIMITS.get(rec.kdf) if rec is not None else {}
        if rec is not None and (limits is None or any(not isinstance(rec.params.get(k), int) or
                                                      not 0 < rec.params[k] <= top for k, top in limits.items())):
            raise BadBackup(f"PIN record with KDF {rec.kdf!r} parameters outside {KDF_LIMITS}")
    ids = [o.unique_id for o in objects]
    if len(set(ids)) != len(ids):
        raise BadBackup("two objects share a unique id")
    if any(o.attrs.keys() & o.sealed.keys() for o in objects):
        raise BadBackup("an attribute is both clear and sealed")
    return int(payload["slot"]), token, objects


def authenticate(doc: dict[str, Any], token: TokenRecord, user: int, pin: bytes, open_layers: Any) -> None:
    """The PIN opens the backup's own PIN record (its outer layers removed by the slot's
    ``Token.open_pin_layers``: key file, TPM, KEK), and the token key inside reproduces the
    backup's MAC: else ``BadBackup`` (exit 4)."""
    from cryptography.hazmat.primitives import constant_time

    from ..store import crypto as at_rest

    rec = token.pin(user)
    if rec is None:
        raise BadBackup("the backed-up token has no user PIN: give its SO PIN (--so-pin-*)")
    try:
        with Progress("checking the PIN against the backup (Argon2id)"):
            token_key = at_rest.open_pin_record(pin, open_layers(rec, pin))
    except CryptokiError as exc:
        if exc.ckr != CKR_PIN_INCORRECT:
            raise
        raise BadBackup(f"the {'SO' if user == CKU_SO else 'user'} PIN does not open the backup's PIN record: "
                        "a wrong PIN (the one the token had when backed up), or a forged backup") from None
    if not constant_time.bytes_eq(_mac(token_key, doc["payload"]).encode(), doc["mac"].encode()):
        raise BadBackup("the MAC does not match: the content was modified, or the file was not made by "
                        "`cryptoki-shim backup` of this token")


# --------------------------------------------------------------------------- age


def _recipients(args: argparse.Namespace) -> list[Any]:
    import pyrage

    lines = list(args.recipient)
    if args.recipients_file:
        lines += [ln.strip() for ln in args.recipients_file.read_text().splitlines()
                  if ln.strip() and not ln.startswith("#")]
    out = []
    for r in lines:
        try:
            out.append(pyrage.ssh.Recipient.from_str(r) if r.startswith(("ssh-", "ecdsa-")) else
                       pyrage.x25519.Recipient.from_str(r))
        except Exception as exc:
            raise CliError(f"recipient {r[:20]}...: {exc}", EXIT_USAGE) from None
    return out


def backup(args: argparse.Namespace) -> int:
    import pyrage

    recipients = _recipients(args)
    passphrase = secret(args, "passphrase", "backup passphrase", required=not recipients, confirm=True) \
        if not recipients else None
    if recipients and (args.passphrase_env or args.passphrase_file):
        raise CliError("give recipients or a passphrase, not both", EXIT_USAGE)
    user, pin = _pin(args)
    with Admin(args) as adm:
        adm.module.slot(args.slot)
        adm.session(args.slot, login=user, pin=pin)  # counted like any login; audited
        token_key = adm.token(args.slot).token_key
        assert token_key is not None
        with Progress("reading objects") as prog:
            doc = snapshot(adm.module.open_store(), args.slot, token_key, prog)
    data = _canonical(doc)
    with Progress("encrypting" + (" (scrypt, a few seconds)" if passphrase else "")):
        blob = (pyrage.encrypt(data, recipients) if recipients
                else pyrage.passphrase.encrypt(data, passphrase.decode()))
    write_private_output(args.output, blob)  # 0600, never through a symlink (cli/common.py)
    n = len(doc["payload"]["objects"])
    emit(args, {"ok": True, "slot": args.slot, "file": str(args.output), "objects": n, "mac": doc["mac"]},
         f"slot {args.slot}: {n} objects written to {args.output} (authenticated, mac {doc['mac'][:16]}...)")
    return 0


def restore(args: argparse.Namespace) -> int:
    import pyrage

    user, pin = _pin(args)
    blob = args.file.read_bytes()
    try:
        if args.identity:
            ids = [pyrage.x25519.Identity.from_str(ln.strip()) for ln in args.identity.read_text().splitlines()
                   if ln.strip().startswith("AGE-SECRET-KEY-")]
            if not ids:
                raise CliError(f"{args.identity}: no AGE-SECRET-KEY line", EXIT_USAGE)
            data = pyrage.decrypt(blob, ids)
        else:
            pw = secret(args, "passphrase", "backup passphrase")
            with Progress("decrypting (scrypt, a few seconds)"):
                data = pyrage.passphrase.decrypt(blob, pw.decode())
    except CliError:
        raise
    except Exception as exc:  # pyrage.DecryptError: wrong key, or the file was altered
        raise BadBackup(f"cannot decrypt ({exc}): wrong identity/passphrase or a damaged file") from None
    try:
        doc = json.loads(data)
    except ValueError:
        raise BadBackup("decrypted content is not JSON") from None
    source_slot, token, objects = parse_backup(doc)
    slot = source_slot if args.slot is None else args.slot
    token.slot_id = slot
    with Admin(args) as adm:
        adm.module.slot(slot)  # a configured slot (CKR_SLOT_ID_INVALID otherwise)
        # The record's outer layers (store key file, TPM pin_binding, upstream KEK) are opened as
        # at C_Login; restored records are sealed under this store's key file (Store.replace_token).
        authenticate(doc, token, user, pin, adm.token(slot).open_pin_layers)
        if any(s.token.slot_id == slot for s in adm.module.sessions.values()):
            raise CliError(f"slot {slot} has open sessions in this process")
        with Progress(f"restoring {len(objects)} objects"):
            adm.module.open_store().replace_token(token, objects)
    emit(args, {"ok": True, "slot": slot, "serial": token.serial, "objects": len(objects)},
         f"slot {slot}: token serial {token.serial} restored with {len(objects)} objects")
    return 0
