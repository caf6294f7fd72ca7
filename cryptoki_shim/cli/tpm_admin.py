"""TPM administration: ``tpm-reset-lockout`` (issue 5, docs/tpm.md "Dictionary attack"),
``tpm authorize-pcrs`` and ``tpm reseal`` (issue 20, docs/tpm.md "Firmware updates").

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
import hmac
import json
from pathlib import Path

from ..backends import BY_NAME
from .common import EXIT_USAGE, Admin, CliError, add_secret_options, emit, secret
from ..spec_ints import CKU_USER

TPM = BY_NAME["tpm"]


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("tpm-reset-lockout", parents=[parent],
                       help="TPM slot: leave dictionary-attack lockout (TPM2_DictionaryAttackLockReset)")
    p.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    add_secret_options(p, "lockout-auth", "TPM lockout auth")
    p.set_defaults(func=reset_lockout)
    group = sub.add_parser("tpm", help="TPM slot: PCR policies after firmware updates")
    tsub = group.add_subparsers(dest="tpm_command", required=True, metavar="COMMAND")
    a = tsub.add_parser("authorize-pcrs", parents=[parent],
                        help="sign PCR values for keys under the slot's policy_authority")
    a.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    a.add_argument("--signing-key", required=True, metavar="PEM",
                   help="the policy authority's private key (ECDSA P-256, unencrypted PEM; keep it offline)")
    a.add_argument("--pcr-values", metavar="HEX,HEX",
                   help="the values to authorise, in the order of the slot's pcrs (default: the TPM's current ones)")
    a.set_defaults(func=authorize_pcrs)
    r = tsub.add_parser("reseal", parents=[parent],
                        help="re-seal the token's sealed keys to the slot's policy now (current PCRs or the authority)")
    r.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    add_secret_options(r, "pin", "user PIN")
    r.set_defaults(func=reseal)
    m = tsub.add_parser("migrate", parents=[parent],
                        help="turn the token's software private and secret keys into TPM-sealed keys")
    m.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    m.add_argument("--label", help="only keys with this CKA_LABEL")
    add_secret_options(m, "pin", "user PIN")
    m.set_defaults(func=migrate)
    e = tsub.add_parser("restore-escrow", parents=[parent],
                        help="re-seal sealed keys from their escrow copies (PCRs changed for good, or a new TPM)")
    e.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    e.add_argument("--label", help="only keys with this CKA_LABEL")
    add_secret_options(e, "identity", "age identity (AGE-SECRET-KEY-1...) of the escrow recipient")
    add_secret_options(e, "pin", "user PIN")
    e.set_defaults(func=restore_escrow)
    q = tsub.add_parser("ak-request", parents=[parent],
                        help="attester: the TPM's EK certificate and attestation key, for a verifier's ak-challenge")
    q.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    q.add_argument("-o", "--output", type=Path, required=True, help="request file (JSON)")
    q.set_defaults(func=ak_request)
    c = tsub.add_parser("ak-challenge", parents=[parent],
                        help="verifier (no TPM): check the EK chain, encrypt a secret to the EK bound to the AK")
    c.add_argument("request", type=Path)
    c.add_argument("--ca-bundle", type=Path, required=True, help="PEM CAs the EK certificate must chain to")
    c.add_argument("-o", "--output", type=Path, required=True, help="challenge file (JSON) for ak-activate")
    c.add_argument("--secret-out", type=Path, required=True, help="where the verifier keeps the secret (0600)")
    c.set_defaults(func=ak_challenge)
    v = tsub.add_parser("ak-activate", parents=[parent],
                        help="attester: TPM2_ActivateCredential; prints the secret only this TPM can recover")
    v.add_argument("challenge", type=Path)
    v.add_argument("--slot", type=int, default=0, help="the TPM slot (default 0)")
    v.set_defaults(func=ak_activate)
    k = tsub.add_parser("ak-verify", parents=[parent],
                        help="verifier: the answer equals the secret: write the AK to pin (--ak-public-file)")
    k.add_argument("request", type=Path)
    k.add_argument("--secret-file", type=Path, required=True)
    k.add_argument("--answer", required=True, help="the hex ak-activate printed")
    k.add_argument("-o", "--output", type=Path, required=True, help="the certified AK (hex TPM2B_PUBLIC)")
    k.set_defaults(func=ak_verify)


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
        tpm_conn.reset_lockout(backend.tcti, decode_auth(raw), lock_file=backend.lock_file,
                               srk_handle=backend.srk_handle, ek_bundle=backend.ek_bundle)  # the slot's salt key
    emit(args, {"ok": True, "slot": args.slot, "tcti": backend.tcti, "auth_from": source},
         f"slot {args.slot}: TPM dictionary-attack lockout reset ({backend.tcti}; auth from {source})")
    return 0


def _tpm_backend(adm: Admin, slot_id: int):
    slot = adm.module.slot(slot_id)
    backend = slot.token.backends.get(TPM)
    if backend is None:
        raise CliError(f"slot {slot_id} has no TPM backend ([slots.tpm] or backend = \"tpm\")", EXIT_USAGE)
    return slot, backend


def authorize_pcrs(args: argparse.Namespace) -> int:
    """Sign the PolicyPCR digest of the given (or current) PCR values with the policy
    authority's key and add it to the slot's ``pcr_authorizations`` file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from ..backends import tpm_authority, tpm_conn, tpm_keys

    try:
        private = serialization.load_pem_private_key(open(args.signing_key, "rb").read(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise CliError(f"--signing-key {args.signing_key}: {exc}", EXIT_USAGE) from None
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise CliError("--signing-key: want an ECDSA P-256 private key", EXIT_USAGE)
    with Admin(args) as adm:
        _, backend = _tpm_backend(adm, args.slot)
        authority = backend.authority
        if authority is None or not authority.path:
            raise CliError(f"slot {args.slot}: set [slots.tpm] policy_authority and pcr_authorizations first",
                           EXIT_USAGE)
        if authority.key.public_numbers() != private.public_key().public_numbers():
            raise CliError("--signing-key is not the slot's policy_authority", EXIT_USAGE)
        bank, ids = tpm_keys.parse_pcrs(backend.pcrs)
        if args.pcr_values:
            try:
                values = [bytes.fromhex(v) for v in args.pcr_values.split(",")]
            except ValueError:
                raise CliError("--pcr-values: comma-separated hex values", EXIT_USAGE) from None
            size = {"sha1": 20, "sha256": 32, "sha384": 48}[bank]
            if len(values) != len(ids) or any(len(v) != size for v in values):
                raise CliError(f"--pcr-values: {len(ids)} values of {size} bytes for {backend.pcrs}", EXIT_USAGE)
        else:
            with tpm_conn.open_tpm(backend.tcti, "read PCRs", with_srk=False, lock_file=backend.lock_file) as conn:
                values = tpm_keys.read_pcrs(conn, backend.pcrs)
        entry = tpm_authority.sign_authorization(private, backend.pcrs, values)
        count = tpm_authority.add_authorization(authority.path, entry)
    emit(args, {"ok": True, "slot": args.slot, "pcrs": backend.pcrs, "values": [v.hex() for v in values],
                "policy": entry.policy.hex(), "file": authority.path, "authorizations": count},
         f"slot {args.slot}: authorised {backend.pcrs} = {','.join(v.hex() for v in values)} "
         f"({authority.path}: {count} authorisation(s))")
    return 0


def reseal(args: argparse.Namespace) -> int:
    """Every sealed key of the token, unsealed under its present policy and sealed again
    under the slot's policy now: the current PCR values, or the policy authority when the
    slot has one (moves keys made before ``policy_authority`` was set under it)."""
    from ..backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED

    pin = secret(args, "pin", "user PIN")
    done = []
    with Admin(args) as adm:
        slot, backend = _tpm_backend(adm, args.slot)
        adm.session(args.slot, login=CKU_USER, pin=pin)
        token = slot.token
        token.refresh(force=True)
        for obj in list(token.objects.values()):
            if obj.attrs.get(CKA_SHIM_TPM_KIND) != TPM_KIND_SEALED:
                continue
            token.update_object(obj, backend.reseal_key(obj))
            done.append(obj.unique_id)
    emit(args, {"ok": True, "slot": args.slot, "resealed": len(done)},
         f"slot {args.slot}: {len(done)} sealed key(s) re-sealed to the slot's policy")
    return 0


def _keys(token, label: str | None, want) -> list:
    from ..spec_ints import CKA_CLASS, CKA_LABEL, CKO_PRIVATE_KEY, CKO_SECRET_KEY
    token.refresh(force=True)
    return [o for o in list(token.objects.values())
            if o.attrs.get(CKA_CLASS) in (CKO_PRIVATE_KEY, CKO_SECRET_KEY) and want(o.attrs)
            and (label is None or o.attrs.get(CKA_LABEL) == label.encode())]


def is_software_key(attrs) -> bool:
    from .. import spec
    from ..spec_ints import CKA_SHIM_BACKEND
    return attrs.get(CKA_SHIM_BACKEND, spec.SHIM_BACKEND_SOFTWARE) == spec.SHIM_BACKEND_SOFTWARE


def seal_created(adm: Admin, slot_id: int, session, handles: list[int]) -> None:
    """``cryptoki-shim import`` into a TPM slot: the private or secret keys just created
    (software keys, as C_CreateObject makes them) become TPM-sealed keys in place."""
    from ..spec_ints import CKA_CLASS, CKO_PRIVATE_KEY, CKO_SECRET_KEY
    slot = adm.module.slot(slot_id)
    backend = slot.token.backends.get(TPM)
    if backend is None:
        return
    from ..spec_ints import CKA_EXTRACTABLE
    keys = [o for o in map(session.object, handles) if o.attrs.get(CKA_CLASS) in (CKO_PRIVATE_KEY, CKO_SECRET_KEY)]
    if any(o.attrs.get(CKA_EXTRACTABLE) for o in keys):
        raise CliError(f"--extractable: slot {slot_id} seals imported keys in its TPM, never extractable", EXIT_USAGE)
    for obj in keys:
        slot.token.update_object(obj, backend.seal_software_key(obj.attrs))


def migrate(args: argparse.Namespace) -> int:
    pin = secret(args, "pin", "user PIN")
    with Admin(args) as adm:
        slot, backend = _tpm_backend(adm, args.slot)
        adm.session(args.slot, login=CKU_USER, pin=pin)
        moved = _keys(slot.token, args.label, is_software_key)
        for obj in moved:
            slot.token.update_object(obj, backend.seal_software_key(obj.attrs))
    emit(args, {"ok": True, "slot": args.slot, "sealed": len(moved)},
         f"slot {args.slot}: {len(moved)} software key(s) now sealed to the TPM")
    return 0


def restore_escrow(args: argparse.Namespace) -> int:
    from ..backends.tpm_attrs import CKA_SHIM_TPM_ESCROW

    identity = (secret(args, "identity", "age identity") or b"").decode().strip()
    pin = secret(args, "pin", "user PIN")
    with Admin(args) as adm:
        slot, backend = _tpm_backend(adm, args.slot)
        adm.session(args.slot, login=CKU_USER, pin=pin)
        keys = _keys(slot.token, args.label, lambda a: bool(a.get(CKA_SHIM_TPM_ESCROW)))
        for obj in keys:
            slot.token.update_object(obj, backend.restore_from_escrow(obj, identity))
    emit(args, {"ok": True, "slot": args.slot, "restored": len(keys)},
         f"slot {args.slot}: {len(keys)} key(s) re-sealed from escrow to this TPM")
    return 0


# --------------------------------------------------------------------------- AK certified by the EK

def _read(path: Path, what: str) -> dict:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: not a readable {what} ({exc})", EXIT_USAGE) from None


def ak_request(args: argparse.Namespace) -> int:
    from ..backends import tpm_attest
    with Admin(args) as adm:
        _, backend = _tpm_backend(adm, args.slot)
        request = tpm_attest.ak_request(backend.tcti, lock_file=backend.lock_file)
    args.output.write_text(json.dumps(request, indent=1) + "\n")
    emit(args, {"ok": True, "slot": args.slot, "request": str(args.output)}, f"wrote {args.output}")
    return 0


def ak_challenge(args: argparse.Namespace) -> int:
    from ..backends import tpm_attest, tpm_ek
    from .common import EXIT_CHECK, write_private_output
    try:
        challenge, secret_value = tpm_attest.ak_challenge(_read(args.request, "AK request"),
                                                          tpm_ek.load_bundle(str(args.ca_bundle)))
    except tpm_attest.AttestationError as exc:
        raise CliError(f"{args.request}: {exc}", EXIT_CHECK) from None
    write_private_output(args.secret_out, secret_value.hex().encode() + b"\n")
    args.output.write_text(json.dumps(challenge, indent=1) + "\n")
    emit(args, {"ok": True, "challenge": str(args.output)}, f"EK certificate chains to {args.ca_bundle}; wrote "
         f"{args.output} (secret in {args.secret_out})")
    return 0


def ak_activate(args: argparse.Namespace) -> int:
    from ..backends import tpm_attest
    with Admin(args) as adm:
        _, backend = _tpm_backend(adm, args.slot)
        answer = tpm_attest.ak_activate(backend.tcti, _read(args.challenge, "AK challenge"), lock_file=backend.lock_file)
    emit(args, {"ok": True, "answer": answer.hex()}, answer.hex())
    return 0


def ak_verify(args: argparse.Namespace) -> int:
    from .common import EXIT_CHECK
    request = _read(args.request, "AK request")
    try:
        expected = bytes.fromhex(args.secret_file.read_text().strip())
        answer = bytes.fromhex(args.answer)
    except (OSError, ValueError) as exc:
        raise CliError(f"secret / answer: {exc}", EXIT_USAGE) from None
    if not hmac.compare_digest(expected, answer):
        raise CliError("the answer is not the secret: this AK is not in the TPM of that EK", EXIT_CHECK)
    args.output.write_text(request["ak_public"] + "\n")
    emit(args, {"ok": True, "ak_public": request["ak_public"], "output": str(args.output)},
         f"AK certified by the EK (credential activation); pin {args.output} with verify-attestation --ak-public-file")
    return 0
