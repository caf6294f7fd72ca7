"""Upstream failures (issue 6): clear codes, other slots unaffected, recovery in place.

Slot 0 routes keys to the upstream, slot 1 is a plain software token in the same module:
whatever happens to the upstream, slot 1 keeps working, and slot 0 recovers when the
upstream is back, without C_Finalize/C_Initialize by the client.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cryptoki_shim import spec as A
from p11 import P11, P11Error, ffi
from upstream_hsm import UP_PIN, SoftHsm, ready_token, upstream_slot, write_config
from upstream_hsm import HAVE_SOFTHSM, hsm, shim_conf, up_session  # noqa: F401  (fixtures)

P256 = bytes.fromhex("06082a8648ce3d030107")
FAILURES = (A.CKR_DEVICE_ERROR, A.CKR_DEVICE_REMOVED, A.CKR_TOKEN_NOT_PRESENT)

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")


def software_slot_works(p11: P11) -> None:
    s = ready_token(p11, 1)
    key = p11.generate_key(s, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 16})
    assert len(p11.encrypt(s, A.CKM_AES_ECB, key, bytes(16))) == 16
    p11.close(s)


def ec_pair(p11: P11, s: int) -> tuple[int, int]:
    return p11.generate_key_pair(s, A.CKM_EC_KEY_PAIR_GEN, {A.CKA_EC_PARAMS: P256, A.CKA_TOKEN: True},
                                 {A.CKA_TOKEN: True})


def ckr_of(fn, *args) -> int:
    try:
        fn(*args)
    except P11Error as exc:
        return exc.rv
    return 0


@pytest.fixture(autouse=True)
def fast_reinit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module runs in this interpreter: let every failed step re-initialize the upstream."""
    from cryptoki_shim.backends import upstream_pool

    monkeypatch.setattr(upstream_pool.Pool, "REINIT_INTERVAL", 0.0)


@pytest.fixture
def conf_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hsm: SoftHsm):
    def make(**kw) -> None:
        monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, slots=upstream_slot(hsm, **kw))))
    return make


def open_lib(lib_path) -> P11:
    p11 = P11(lib_path)
    p11.initialize()
    return p11


def test_missing_library_is_a_device_error_and_spares_other_slots(lib_path, conf_with):
    conf_with(library="/nonexistent/libvendor-pkcs11.so")
    p11 = open_lib(lib_path)
    try:
        s = ready_token(p11, 0)          # our own token (store) still works
        assert ckr_of(p11.generate_key, s, A.CKM_AES_KEY_GEN, {A.CKA_VALUE_LEN: 16}) == A.CKR_DEVICE_ERROR
        n = ffi.new("CK_ULONG *")
        assert p11.call("C_GetMechanismList", 0, ffi.NULL, n) == A.CKR_DEVICE_ERROR
        software_slot_works(p11)
    finally:
        p11.call("C_Finalize", ffi.NULL)


def test_wrong_upstream_pin_is_not_retried_and_recovers_when_fixed(lib_path, conf_with, monkeypatch):
    from cryptoki_shim.backends import upstream_client

    logins: list[bytes] = []
    real_login = upstream_client.Library.login

    def counting_login(self, session, pin):  # the real login, counted
        logins.append(pin)
        return real_login(self, session, pin)

    monkeypatch.setattr(upstream_client.Library, "login", counting_login)
    monkeypatch.setenv("SHIM_UPSTREAM_PIN", "00000000")
    conf_with()
    p11 = open_lib(lib_path)
    try:
        s = ready_token(p11, 0)
        for _ in range(3):
            assert ckr_of(ec_pair, p11, s) == A.CKR_DEVICE_ERROR
        assert logins == [b"00000000"]   # each try would count toward the HSM's PIN lockout
        software_slot_works(p11)
        monkeypatch.setenv("SHIM_UPSTREAM_PIN", UP_PIN)
        pub, priv = ec_pair(p11, s)
        assert len(p11.sign(s, A.CKM_ECDSA, priv, bytes(32))) == 64
        assert logins == [b"00000000", UP_PIN.encode()]
    finally:
        p11.call("C_Finalize", ffi.NULL)


def test_upstream_token_removed_mid_run_then_back(lib_path, conf_with, hsm):
    conf_with()
    p11 = open_lib(lib_path)
    try:
        s = ready_token(p11, 0)
        pub, priv = ec_pair(p11, s)
        assert len(p11.sign(s, A.CKM_ECDSA, priv, bytes(32))) == 64
        [token_dir] = list(hsm.tokens.iterdir())
        aside = hsm.root / "aside"
        shutil.move(str(token_dir), str(aside))
        rv = ckr_of(p11.sign, s, A.CKM_ECDSA, priv, bytes(32))
        assert rv in FAILURES, A.ckr_name(rv)
        software_slot_works(p11)
        rv = ckr_of(p11.sign, s, A.CKM_ECDSA, priv, bytes(32))   # still gone: still a clear code
        assert rv in FAILURES, A.ckr_name(rv)
        shutil.move(str(aside), str(token_dir))
        sig = p11.sign(s, A.CKM_ECDSA, priv, bytes(32))          # same key, same handle, no restart
        p11.verify(s, A.CKM_ECDSA, pub, bytes(32), sig)
    finally:
        p11.call("C_Finalize", ffi.NULL)


def test_upstream_token_deleted_and_recreated(lib_path, conf_with, hsm):
    """A token deleted for good: its keys answer a clear code; a new token with the same
    label serves new keys without restarting the client."""
    conf_with()
    p11 = open_lib(lib_path)
    try:
        s = ready_token(p11, 0)
        pub, priv = ec_pair(p11, s)
        hsm.delete_token()
        rv = ckr_of(p11.sign, s, A.CKM_ECDSA, priv, bytes(32))
        assert rv in FAILURES, A.ckr_name(rv)
        hsm.init_token()
        assert ckr_of(p11.sign, s, A.CKM_ECDSA, priv, bytes(32)) == A.CKR_DEVICE_ERROR  # key gone for good
        pub2, priv2 = ec_pair(p11, s)
        assert len(p11.sign(s, A.CKM_ECDSA, priv2, bytes(32))) == 64
    finally:
        p11.call("C_Finalize", ffi.NULL)
