"""One client process of the TPM leak test (tests/tpm/test_tpm_handles.py): loads the built
library with ``CRYPTOKI_SHIM_CONF`` from the environment, logs in on slot 0, signs ``count``
times round-robin over the private keys labelled ``<prefix>*`` (CKM_ECDSA, P-256 in the TPM)
and checks every signature with pyca. Prints one JSON line {"signed": n, "keys": k}."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
from p11 import USER_PIN, P11

from cryptoki_shim import spec as S


def main() -> int:
    lib, prefix, count = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    client = P11(lib)
    client.initialize()
    try:
        s = client.open(0)
        client.login(s, USER_PIN)
        pairs = []
        for priv in client.find(s, {S.CKA_CLASS: S.CKO_PRIVATE_KEY}):
            label = bytes(client.get(s, priv, S.CKA_LABEL))
            if label.startswith(prefix):
                [pub] = client.find(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_LABEL: label})
                pairs.append((priv, serialization.load_der_public_key(client.get(s, pub, S.CKA_PUBLIC_KEY_INFO))))
        for i in range(count):
            priv, public = pairs[i % len(pairs)]
            digest = hashlib.sha256(b"%d" % i).digest()
            sig = client.sign(s, S.CKM_ECDSA, priv, digest)
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            public.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    finally:
        client.finalize()
    print(json.dumps({"signed": count, "keys": len(pairs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
