"""Second implementations for every cryptographic result: the OpenSSL CLI and pyca/cryptography.

A client's output is never checked by the module that produced it: signatures are verified,
ciphertexts decrypted and shared secrets recomputed here, from public keys exported by the
client, or from key values this side chose and imported.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def load_public(path: Path):
    raw = path.read_bytes()
    if raw.startswith(b"-----"):
        return serialization.load_pem_public_key(raw)
    return serialization.load_der_public_key(raw)


def verify(pub, signature: bytes, data: bytes, *, hash: str = "sha256", scheme: str = "pkcs1",
           ec_raw: bool = True) -> None:
    """Raise (cryptography.exceptions.InvalidSignature) unless ``signature`` is valid."""
    h = HASHES[hash]()
    if isinstance(pub, rsa.RSAPublicKey):
        pad = padding.PKCS1v15() if scheme == "pkcs1" else padding.PSS(padding.MGF1(h), h.digest_size)
        pub.verify(signature, data, pad, h)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        if ec_raw:  # PKCS#11 ECDSA signatures are r || s (current spec §2.3.1)
            n = len(signature) // 2
            signature = utils.encode_dss_signature(int.from_bytes(signature[:n], "big"),
                                                   int.from_bytes(signature[n:], "big"))
        pub.verify(signature, data, ec.ECDSA(h))
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(signature, data)
    else:
        raise AssertionError(f"no verifier for {type(pub).__name__}")
