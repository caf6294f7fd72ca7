"""Object commands: ``import``, ``export-public``, ``delete``.

``import`` reads PEM, DER or PKCS#12 and creates the objects a PKCS#11 application would
(C_CreateObject through the core, so the attribute validator and at-rest sealing are the
library's own): a private key (sensitive, non-extractable unless ``--extractable``), its
public key, and the certificate(s), all with the same CKA_ID and CKA_LABEL so clients
(OpenSSL's pkcs11 URIs, ssh, NSS) pair them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, ed448, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .. import spec
from ..spec_ints import CKA_CLASS, CKA_ID, CKA_LABEL, CKA_MODULUS_BITS, CKA_PUBLIC_KEY_INFO, CKA_VALUE
from ..mechanisms import keys
from ..spec_ints import CKU_USER
from . import tpm_admin
from .common import (Admin, CliError, EXIT_USAGE, add_secret_options, emit, secret, table)
from .tokens import describe_object

A = spec


@dataclass
class Material:
    private: Any = None
    public: Any = None
    certs: list[x509.Certificate] = field(default_factory=list)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("import", parents=[parent], help="import a private key / certificate (PEM, DER, PKCS#12)")
    p.add_argument("file", type=Path)
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--label", help="CKA_LABEL (default: the certificate's CN, else the file name)")
    p.add_argument("--id", type=hex_id, help="CKA_ID in hex (default: first 8 bytes of SHA-1 of the public key)")
    p.add_argument("--extractable", action="store_true", help="allow wrapping the private key out (default: not)")
    add_secret_options(p, "pin", "user PIN")
    add_secret_options(p, "password", "PKCS#12 / encrypted PEM password")
    p.set_defaults(func=import_file)

    p = sub.add_parser("export-public", parents=[parent], help="write a public key (PEM or OpenSSH)")
    _selectors(p)
    p.add_argument("--format", choices=("pem", "openssh"), default="pem")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    add_secret_options(p, "pin", "user PIN (for private objects)")
    p.set_defaults(func=export_public)

    p = sub.add_parser("delete", parents=[parent], help="destroy objects (C_DestroyObject)")
    _selectors(p)
    p.add_argument("--class", dest="cls", choices=("private", "public", "secret", "cert", "data"))
    p.add_argument("--yes", action="store_true", help="needed when more than one object matches")
    add_secret_options(p, "pin", "user PIN")
    p.set_defaults(func=delete)


def hex_id(value: str) -> str:
    """argparse type of --id: hex digits (an error names the option instead of a traceback)."""
    try:
        bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not hex (e.g. 01 or a1b2)") from None
    return value


def _selectors(p: argparse.ArgumentParser) -> None:
    p.add_argument("--slot", type=int, default=0)
    p.add_argument("--id", type=hex_id, help="CKA_ID in hex")
    p.add_argument("--label", help="CKA_LABEL")


# --------------------------------------------------------------------------- parsing


def load_material(data: bytes, password: bytes | None) -> Material:
    """PKCS#12, PEM (any mix of keys and certificates) or DER (key, certificate, public key)."""
    m = Material()
    if b"-----BEGIN" in data:
        for block in _pem_blocks(data):
            kind = block.split(b"\n", 1)[0]
            if b"CERTIFICATE" in kind:
                m.certs.append(x509.load_pem_x509_certificate(block))
            elif b"PUBLIC KEY" in kind:
                m.public = serialization.load_pem_public_key(block)
            elif b"PRIVATE KEY" in kind:
                m.private = _with_password(serialization.load_pem_private_key, block, password)
        return _checked(m)
    try:
        key, cert, more = pkcs12.load_key_and_certificates(data, password)
        m.private, m.certs = key, [c for c in [cert, *more] if c is not None]
        return _checked(m)
    except ValueError as exc:
        if "password" in str(exc).lower() or "mac" in str(exc).lower():
            raise CliError(f"PKCS#12: {exc} (give --password-env/--password-file)", EXIT_USAGE) from None
    for loader, attr in ((lambda d: _with_password(serialization.load_der_private_key, d, password), "private"),
                         (x509.load_der_x509_certificate, "cert"), (serialization.load_der_public_key, "public")):
        try:
            value = loader(data)
        except (ValueError, TypeError):
            continue
        if attr == "cert":
            m.certs.append(value)
        else:
            setattr(m, attr, value)
        return _checked(m)
    raise CliError("not a PEM, DER or PKCS#12 key or certificate", EXIT_USAGE)


def _with_password(loader: Any, data: bytes, password: bytes | None) -> Any:
    try:
        return loader(data, password=password)
    except TypeError as exc:
        raise CliError(f"{exc} (give --password-env/--password-file)", EXIT_USAGE) from None


def _pem_blocks(data: bytes) -> list[bytes]:
    out, current = [], None
    for line in data.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN"):
            current = [line]
        elif current is not None:
            current.append(line)
            if line.startswith(b"-----END"):
                out.append(b"".join(current))
                current = None
    return out


def _checked(m: Material) -> Material:
    if m.private is None and m.public is None and not m.certs:
        raise CliError("no key or certificate found in the file", EXIT_USAGE)
    if m.private is not None and not isinstance(m.private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                                                            ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise CliError(f"{type(m.private).__name__} keys are not supported; allowed: RSA, EC, Ed25519, Ed448",
                       EXIT_USAGE)
    return m


def _spki(key: Any) -> bytes:
    return keys.public_key_info(key)


# --------------------------------------------------------------------------- templates


def templates(m: Material, label: str, cka_id: bytes, extractable: bool) -> list[dict[int, Any]]:
    """The C_CreateObject templates: private key, public key, certificates."""
    out: list[dict[int, Any]] = []
    label_b = label.encode()
    if m.private is not None:
        material = keys.private_material(m.private)
        material.pop(CKA_PUBLIC_KEY_INFO, None)  # derived by the core on import
        is_rsa = isinstance(m.private, rsa.RSAPrivateKey)
        out.append({A.CKA_CLASS: A.CKO_PRIVATE_KEY, A.CKA_TOKEN: True, A.CKA_PRIVATE: True,
                    A.CKA_SENSITIVE: True, A.CKA_EXTRACTABLE: extractable, A.CKA_LABEL: label_b,
                    A.CKA_ID: cka_id, A.CKA_SIGN: True, **({A.CKA_DECRYPT: True} if is_rsa else {}),
                    **material})
    public = m.public or (m.private.public_key() if m.private is not None else None)
    if public is not None:
        material = keys.public_material(public)
        material.pop(CKA_PUBLIC_KEY_INFO, None)
        material.pop(CKA_MODULUS_BITS, None)
        is_rsa = isinstance(public, rsa.RSAPublicKey)
        out.append({A.CKA_CLASS: A.CKO_PUBLIC_KEY, A.CKA_TOKEN: True, A.CKA_PRIVATE: False, A.CKA_LABEL: label_b,
                    A.CKA_ID: cka_id, A.CKA_VERIFY: True, **({A.CKA_ENCRYPT: True} if is_rsa else {}), **material})
    for i, cert in enumerate(m.certs):
        der = cert.public_bytes(serialization.Encoding.DER)
        own = i == 0 and (public is None or _spki(cert.public_key()) == _spki(public))
        out.append({A.CKA_CLASS: A.CKO_CERTIFICATE, A.CKA_CERTIFICATE_TYPE: A.CKC_X_509, A.CKA_TOKEN: True,
                    A.CKA_PRIVATE: False, A.CKA_VALUE: der,
                    A.CKA_LABEL: label_b if own else _cn(cert, f"{label}-chain-{i}").encode(),
                    A.CKA_ID: cka_id if own else hashlib.sha1(_spki(cert.public_key())).digest()[:8]})
    return out


def _cn(cert: x509.Certificate, default: str) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else default


def import_file(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise CliError(f"{args.file}: {exc.strerror}", EXIT_USAGE) from None
    m = load_material(data, secret(args, "password", "password", required=False))
    public = m.public or (m.private.public_key() if m.private is not None else None) or m.certs[0].public_key()
    cka_id = bytes.fromhex(args.id) if args.id else hashlib.sha1(_spki(public)).digest()[:8]
    label = args.label or (_cn(m.certs[0], args.file.stem) if m.certs else args.file.stem)
    pin = secret(args, "pin", "user PIN") if m.private is not None else secret(args, "pin", "user PIN", required=False)
    created = []
    with Admin(args) as adm:
        s = adm.session(args.slot, login=CKU_USER if pin else None, pin=pin)
        made = []
        try:
            for t in templates(m, label, cka_id, args.extractable):
                made.append(s.create_object(t))
            tpm_admin.seal_created(adm, args.slot, s, made)  # a TPM slot seals imported keys (docs/tpm.md)
        except BaseException:
            for h in made:  # all or nothing: no key without its public half
                s.destroy_object(h)
            raise
        created = [describe_object(s.object(h)) for h in made]
    emit(args, {"ok": True, "slot": args.slot, "objects": created},
         lambda: f"imported into slot {args.slot}:\n" + table(created, ["handle", "class", "label", "id", "key_type"]))
    return 0


# --------------------------------------------------------------------------- export / delete


def _template(args: argparse.Namespace) -> list[tuple[int, Any]]:
    t: list[tuple[int, Any]] = []
    if args.id:
        t.append((CKA_ID, bytes.fromhex(args.id)))
    if args.label:
        t.append((CKA_LABEL, args.label.encode()))
    return t


def _public_of(obj: Any) -> Any:
    a = obj.attrs
    cls = a.get(CKA_CLASS)
    if cls == A.CKO_CERTIFICATE and a.get(CKA_VALUE):
        return x509.load_der_x509_certificate(a[CKA_VALUE]).public_key()
    info = a.get(CKA_PUBLIC_KEY_INFO)
    if cls in (A.CKO_PUBLIC_KEY, A.CKO_PRIVATE_KEY) and info:
        return serialization.load_der_public_key(info)
    if cls == A.CKO_PUBLIC_KEY:
        return keys.parse_public(a)
    return None


def export_public(args: argparse.Namespace) -> int:
    if not (args.id or args.label):
        raise CliError("give --id or --label", EXIT_USAGE)
    pin = secret(args, "pin", "user PIN", required=False)
    with Admin(args) as adm:
        s = adm.session(args.slot, login=CKU_USER if pin else None, pin=pin)
        objs = adm.objects(s, _template(args))
        order = {A.CKO_PUBLIC_KEY: 0, A.CKO_CERTIFICATE: 1, A.CKO_PRIVATE_KEY: 2}
        objs.sort(key=lambda o: order.get(o.attrs.get(CKA_CLASS), 9))
        public = next((p for p in map(_public_of, objs) if p is not None), None)
        label = (objs[0].attrs.get(CKA_LABEL) or b"").decode("utf-8", "replace") if objs else ""
    if public is None:
        raise CliError("no public key, certificate or private key with a public key matches")
    if args.format == "openssh":
        out = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        out += f" {label}\n".encode() if label else b"\n"
    else:
        out = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if args.output:
        args.output.write_bytes(out)
        emit(args, {"ok": True, "file": str(args.output), "format": args.format}, f"wrote {args.output}")
    elif args.json:
        emit(args, {"ok": True, "format": args.format, "public_key": out.decode()}, "")
    else:
        sys.stdout.write(out.decode())
    return 0


CLASSES = {"private": A.CKO_PRIVATE_KEY, "public": A.CKO_PUBLIC_KEY, "secret": A.CKO_SECRET_KEY,
           "cert": A.CKO_CERTIFICATE, "data": A.CKO_DATA}


def delete(args: argparse.Namespace) -> int:
    template = _template(args)
    if args.cls:
        template.append((CKA_CLASS, int(CLASSES[args.cls])))
    if not (args.id or args.label):
        raise CliError("give --id or --label (and optionally --class)", EXIT_USAGE)
    pin = secret(args, "pin", "user PIN", required=False)
    with Admin(args) as adm:
        s = adm.session(args.slot, login=CKU_USER if pin else None, pin=pin)
        objs = [o for o in adm.objects(s, template) if o.attrs.get(CKA_CLASS) != A.CKO_PROFILE]
        rows = [describe_object(o) for o in objs]
        if not objs:
            raise CliError("no object matches" + ("" if pin else " (private objects need --pin-env/--pin-file)"))
        if len(objs) > 1 and not args.yes:
            raise CliError(f"{len(objs)} objects match; add --yes to delete them all:\n"
                           + table(rows, ["handle", "class", "label", "id"]), EXIT_USAGE)
        for o in objs:
            s.destroy_object(o.handle)
    emit(args, {"ok": True, "deleted": rows}, lambda: "deleted:\n" + table(rows, ["class", "label", "id", "unique_id"]))
    return 0
