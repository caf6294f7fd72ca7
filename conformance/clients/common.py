"""Helpers shared by the clients: keys made by pkcs11-tool, public keys exported for checks."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from conformance import crosscheck
from conformance.target import Context

SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DER = serialization.Encoding.DER


def make_keys(ctx: Context, *specs: tuple[str, str, str]) -> None:
    """(key_type, id, label) key pairs on the token, made by pkcs11-tool."""
    for key_type, key_id, label in specs:
        ctx.tool("--keypairgen", "--key-type", key_type, "--id", key_id, "--label", label,
                 "--usage-sign", login=True)


def public_key(ctx: Context, key_id: str):
    out = ctx.path(f"pub-{key_id}.der")
    ctx.tool("--read-object", "--type", "pubkey", "--id", key_id, "-o", str(out))
    return crosscheck.load_public(out)


def same_key(a, b) -> bool:
    return a.public_bytes(DER, SPKI) == b.public_bytes(DER, SPKI)
