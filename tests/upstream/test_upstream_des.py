"""Triple-DES keys on an upstream-backed token (issue 23 item 9), on a real SoftHSM2: the key is
generated upstream (no CKA_VALUE_LEN read back: a DES key has none) and encrypts there; the
single-DES and MD5 mechanisms stay out of an upstream slot without ``legacy_mechanisms``,
whatever the upstream offers."""

from __future__ import annotations

import pytest

from cryptoki_shim import spec as A
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)
from vectors_abi import mech_list

UPSTREAM = A.SHIM_BACKEND_UPSTREAM
IV = bytes(range(8))

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")


def test_des3_key_upstream_encrypts(p11, up_session):
    s = up_session
    listed = set(mech_list(p11))
    assert {A.CKM_DES3_KEY_GEN, A.CKM_DES3_CBC_PAD} <= listed  # SoftHSM2 has them
    assert not {A.CKM_DES_ECB, A.CKM_MD5} & listed  # SoftHSM2 has these too: legacy, off here
    key = p11.generate_key(s, A.CKM_DES3_KEY_GEN, {A.CKA_TOKEN: True, A.CKA_ENCRYPT: True, A.CKA_DECRYPT: True})
    assert p11.get(s, key, A.CKA_SHIM_BACKEND) == UPSTREAM
    msg = b"encrypted by the upstream's DES3 key"
    blob = p11.encrypt(s, A.CKM_DES3_CBC_PAD, key, msg, IV)
    assert len(blob) == 40 and p11.decrypt(s, A.CKM_DES3_CBC_PAD, key, blob, IV) == msg
