"""TPM key attestation commands: ``attest`` and ``verify-attestation`` (issue 5).

``attest`` asks the slot's TPM for a ``TPM2_Quote`` over a TPM key's policy PCRs, bound to
the key's TPM name and a verifier's nonce, signed by the TPM's attestation key
(``backends.tpm_attest.attest_key``), and writes the JSON document
(``cryptoki-shim-tpm-attestation/1``, docs/tpm.md "Attestation"). ``verify-attestation``
runs ``tpm_attest.verify_attestation`` on such a file: it needs no TPM and no store, so a
remote verifier runs it on its own machine.

Exit codes: a document that fails a check is ``EXIT_CHECK`` (4) with the failed check named,
as ``audit verify`` and ``doctor`` do for what they check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import spec
from ..spec_ints import CKA_CLASS
from ..backends import BY_NAME
from ..spec_ints import CKU_USER
from .common import EXIT_CHECK, EXIT_USAGE, Admin, CliError, add_secret_options, emit, secret, table
from .objects import _selectors, _template
from .tokens import describe_object

A = spec
TPM = BY_NAME["tpm"]


def hex_bytes(value: str) -> bytes:
    """argparse type of --nonce: hex digits, at least 8 bytes (a nonce that short is guessable)."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not hex") from None
    if not 8 <= len(raw) <= 64:
        raise argparse.ArgumentTypeError("a nonce is 8 to 64 bytes (16 to 128 hex digits)")
    return raw


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("attest", parents=[parent],
                       help="TPM key: write a TPM2_Quote attestation document (JSON)")
    _selectors(p)
    p.add_argument("--nonce", type=hex_bytes, help="the verifier's nonce in hex (default: 32 random bytes)")
    p.add_argument("-o", "--output", required=True, help="file to write the document to ('-': stdout)")
    add_secret_options(p, "pin", "user PIN")
    p.set_defaults(func=attest)

    p = sub.add_parser("verify-attestation", parents=[parent],
                       help="check an attestation document; exit 4 naming the failed check")
    p.add_argument("file", type=Path)
    p.add_argument("--nonce", type=hex_bytes, required=True, help="the nonce the verifier sent, in hex")
    ak = p.add_mutually_exclusive_group()
    ak.add_argument("--ak-public", metavar="HEX", help="the pinned attestation key (hex TPM2B_PUBLIC)")
    ak.add_argument("--ak-public-file", type=Path, metavar="PATH",
                    help="a file holding the pinned attestation key's hex (or an earlier document)")
    p.set_defaults(func=verify)


# --------------------------------------------------------------------------- attest


def _tpm_key(objs: list[Any]) -> Any:
    """The one private key among ``objs`` that lives in the TPM (its TPM public blob is set)."""
    from ..backends.tpm_attrs import CKA_SHIM_TPM_PUBLIC

    keys = [o for o in objs if o.attrs.get(CKA_CLASS) == A.CKO_PRIVATE_KEY]
    tpm_keys = [o for o in keys if o.attrs.get(CKA_SHIM_TPM_PUBLIC)]
    if not tpm_keys:
        what = "private key" if not keys else "TPM key (the matching keys are not in the TPM)"
        raise CliError(f"no {what} matches")
    if len(tpm_keys) > 1:
        rows = [describe_object(o) for o in tpm_keys]
        raise CliError(f"{len(tpm_keys)} TPM keys match; narrow with --id/--label:\n"
                       + table(rows, ["handle", "label", "id", "key_type"]), EXIT_USAGE)
    return tpm_keys[0]


def attest(args: argparse.Namespace) -> int:
    from ..backends import tpm_attest

    if not (args.id or args.label):
        raise CliError("give --id or --label", EXIT_USAGE)
    pin = secret(args, "pin", "user PIN")  # TPM keys are private objects
    with Admin(args) as adm:
        backend = adm.token(args.slot).backends.get(TPM)
        if backend is None:
            raise CliError(f"slot {args.slot} has no TPM backend ([slots.tpm] or backend = \"tpm\")", EXIT_USAGE)
        s = adm.session(args.slot, login=CKU_USER, pin=pin)
        key = _tpm_key(adm.objects(s, _template(args)))
        row = describe_object(key)
        doc = tpm_attest.attest_key(backend.tcti, key.attrs, args.nonce, lock_file=backend.lock_file)
    data = json.dumps(doc, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(data)
        return 0
    Path(args.output).write_text(data, encoding="utf-8")
    emit(args, {"ok": True, "file": args.output, "key": row, "nonce": doc["nonce"], "pcrs": doc["pcrs"],
                "ak_public": doc["ak_public"]},
         lambda: f"wrote {args.output}: key {row['label']!r} (id {row['id']}), PCRs {doc['pcrs']}, "
                 f"nonce {doc['nonce']}")
    return 0


# --------------------------------------------------------------------------- verify


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}", EXIT_USAGE) from None
    except ValueError as exc:
        raise CliError(f"{path}: not a JSON {what}: {exc}", EXIT_CHECK) from None


def _pinned_ak(args: argparse.Namespace) -> str | None:
    if args.ak_public is not None:
        value = args.ak_public.strip()
    elif args.ak_public_file is not None:
        try:
            value = args.ak_public_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"{args.ak_public_file}: {exc.strerror}", EXIT_USAGE) from None
        if value.startswith("{"):  # an earlier document of the same TPM: its AK
            value = str(json.loads(value).get("ak_public", ""))
    else:
        return None
    try:
        bytes.fromhex(value)
    except ValueError:
        raise CliError("the pinned AK is not hex", EXIT_USAGE) from None
    return value


def verify(args: argparse.Namespace) -> int:
    from ..backends import tpm_attest

    doc = _read_json(args.file, "attestation document")
    ak = _pinned_ak(args)
    try:
        tpm_attest.verify_attestation(doc, args.nonce, ak_public=ak)
    except tpm_attest.AttestationError as exc:
        raise CliError(f"{args.file}: attestation does not verify: {exc}", EXIT_CHECK) from None
    except Exception as exc:  # untrusted input: a field missing, not hex, not a TPM structure
        raise CliError(f"{args.file}: malformed attestation document ({type(exc).__name__}: {exc})",
                       EXIT_CHECK) from None
    emit(args, {"ok": True, "file": str(args.file), "pcrs": doc["pcrs"], "key_name": doc["key_name"],
                "ak_pinned": ak is not None},
         f"{args.file}: OK (PCRs {doc['pcrs']}, key name {doc['key_name'][:16]}...; "
         + ("AK pinned)" if ak is not None else "AK not pinned: proves consistency, not which TPM)"))
    return 0
