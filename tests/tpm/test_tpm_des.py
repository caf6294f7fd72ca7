"""Triple-DES keys on a TPM slot (issue 23 item 9), through the built library on a real swtpm:
a generated DES3 key is sealed like every other secret key (no CKA_VALUE_LEN: its type fixes
the length), encrypts, MACs and wraps as in software, and a derivation by encryption from it
follows the slot's ``software_derive`` rule."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from p11 import ffi, raises_ckr, write_config  # noqa: E402
from swtpm_helper import swtpm  # noqa: E402,F401  (fixture)
from test_tpm_backend import user_token  # noqa: E402
from test_tpm_derive_policy import tpm_slot  # noqa: E402
from vectors_abi import derive, secret, unwrap, wrap  # noqa: E402

from cryptoki_shim import spec as S  # noqa: E402
from cryptoki_shim.backends.tpm_attrs import CKA_SHIM_TPM_KIND, TPM_KIND_SEALED  # noqa: E402

IV = bytes(range(8))


def test_des3_on_a_tpm_slot(swtpm, lib_path, tmp_path):
    conf = write_config(tmp_path, slots=tpm_slot(swtpm.tcti, software_derive=False))
    with user_token(lib_path, conf, "tpm-des") as (client, s):
        key = client.generate_key(s, S.CKM_DES3_KEY_GEN, {S.CKA_TOKEN: True, S.CKA_ENCRYPT: True, S.CKA_DECRYPT: True,
                                                          S.CKA_SIGN: True, S.CKA_VERIFY: True, S.CKA_WRAP: True,
                                                          S.CKA_UNWRAP: True, S.CKA_DERIVE: True})
        assert client.get(s, key, CKA_SHIM_TPM_KIND) == TPM_KIND_SEALED
        msg = b"sealed triple DES" * 5
        blob = client.encrypt(s, S.CKM_DES3_CBC_PAD, key, msg, IV)
        assert len(blob) == 88 and client.decrypt(s, S.CKM_DES3_CBC_PAD, key, blob, IV) == msg
        client.verify(s, S.CKM_DES3_CMAC, key, msg, client.sign(s, S.CKM_DES3_CMAC, key, msg))
        value = os.urandom(32)
        target = client.create(s, secret(S.CKK_AES, value, extractable=True))
        wrapped = wrap(client, s, S.CKM_DES3_CBC_PAD, key, target, IV)
        back = unwrap(client, s, S.CKM_DES3_CBC_PAD, key, wrapped,
                      {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_AES, S.CKA_TOKEN: False,
                       S.CKA_EXTRACTABLE: True}, IV)
        assert client.get(s, back, S.CKA_VALUE) == value
        param = ffi.new("CK_KEY_DERIVATION_STRING_DATA *")
        buf = ffi.new("unsigned char[]", bytes(24))
        param.pData, param.ulLen = buf, 24
        with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):  # sealed material: software_derive is off
            derive(client, s, S.CKM_DES3_ECB_ENCRYPT_DATA, key,
                   {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: S.CKK_DES3, S.CKA_TOKEN: False}, param)
