"""Helpers shared by the clients: keys made by pkcs11-tool, public keys exported for checks."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conformance import crosscheck
from conformance.target import Context

SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DER = serialization.Encoding.DER


def make_keys(ctx: Context, *specs: tuple[str, str, str]) -> None:
    """(key_type, id, label) key pairs on the token, made by pkcs11-tool."""
    for key_type, key_id, label in specs:
        ctx.tool("--keypairgen", "--key-type", key_type, "--id", key_id, "--label", label,
                 "--usage-sign", login=True)


#: CKA_EC_PARAMS (named curve OID, DER) -> curve, for the keys pkcs11-tool makes here.
EC_CURVES = {
    "06082a8648ce3d030107": ec.SECP256R1(),
    "06052b81040022": ec.SECP384R1(),
    "06052b81040023": ec.SECP521R1(),
}


def public_key(ctx: Context, key_id: str):
    """The public key of ``key_id`` as the module reports it, for cross-checks.

    EC keys are rebuilt from the EC_PARAMS/EC_POINT pkcs11-tool lists: OpenSC 0.23's
    ``--read-object`` of an EC key frees the buffer holding the curve name before
    ``EVP_PKEY_fromdata`` reads it (valgrind shows the read of the freed block), so it fails
    whenever the module's own allocations reuse that block. Other keys use ``--read-object``.
    """
    listing = ctx.tool("--list-objects", "--type", "pubkey").out
    block = next((b for b in listing.split("Public Key Object;") if re.search(rf"ID:\s+{key_id}\n", b)), "")
    point = re.search(r"EC_POINT:\s+([0-9a-f]+)", block)
    params = re.search(r"EC_PARAMS:\s+([0-9a-f]+)", block)
    if point and params and params.group(1) in EC_CURVES:
        der = bytes.fromhex(point.group(1))
        if der[0] == 0x04 and der[1] == len(der) - 2:  # DER OCTET STRING (short form) around the point
            der = der[2:]
        elif der[:2] == b"\x04\x81" and der[2] == len(der) - 3:  # long form (P-521: 133 bytes)
            der = der[3:]
        return ec.EllipticCurvePublicKey.from_encoded_point(EC_CURVES[params.group(1)], der)
    out = ctx.path(f"pub-{key_id}.der")
    ctx.tool("--read-object", "--type", "pubkey", "--id", key_id, "-o", str(out))
    return crosscheck.load_public(out)


def same_key(a, b) -> bool:
    return a.public_bytes(DER, SPKI) == b.public_bytes(DER, SPKI)
