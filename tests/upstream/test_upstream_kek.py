"""KEK mode (issue 6): a software token whose PIN records are also wrapped by an AES key
inside the upstream HSM. Works with the HSM; refuses to unlock without it; the store file
alone opens with no PIN, not even the right one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cryptoki_shim import spec as A
from cryptoki_shim.store import Store
from cryptoki_shim.store import crypto as at_rest
from p11 import P11, P11Error, ffi, raises_ckr
from upstream_hsm import USER_PIN, SoftHsm, ready_token, upstream_slot, write_config
from upstream_hsm import HAVE_SOFTHSM, hsm  # noqa: F401  (fixtures)

KEK = 'kek = "wrap"\nkek_label = "test-kek"\n'

pytestmark = pytest.mark.skipif(not HAVE_SOFTHSM, reason="SoftHSM2 is not installed")


@pytest.fixture(autouse=True)
def fast_reinit(monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptoki_shim.backends import upstream_pool

    monkeypatch.setattr(upstream_pool.Pool, "REINIT_INTERVAL", 0.0)


@pytest.fixture
def shim_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hsm: SoftHsm) -> Path:
    conf = write_config(tmp_path, slots=upstream_slot(hsm, backend="software", extra=KEK))
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    return conf


def secret(p11: P11, s: int) -> int:
    return p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_AES, A.CKA_VALUE: bytes(range(16)),
                          A.CKA_TOKEN: True, A.CKA_LABEL: b"kept"})


def test_kek_token_works_with_the_upstream(p11, hsm, tmp_path):
    s = ready_token(p11, 0)
    key = secret(p11, s)
    ct = p11.encrypt(s, A.CKM_AES_ECB, key, bytes(16))
    assert "test-kek" in hsm.objects()           # the KEK lives in the HSM
    p11.logout(s)
    p11.login(s, USER_PIN)                        # unlock runs through the HSM
    [again] = p11.find(s, {A.CKA_LABEL: b"kept"})
    assert p11.encrypt(s, A.CKM_AES_ECB, again, bytes(16)) == ct
    rec = Store(f"sqlite:///{tmp_path / 'store.db'}").token(0).user_pin
    assert rec.params["kek"] == "test-kek"


def test_kek_token_refuses_to_unlock_without_the_upstream(p11, hsm):
    s = ready_token(p11, 0)
    secret(p11, s)
    p11.logout(s)
    [token_dir] = list(hsm.tokens.iterdir())
    shutil.move(str(token_dir), str(hsm.root / "aside"))
    with pytest.raises(P11Error) as err:
        p11.login(s, USER_PIN)
    assert err.value.rv in (A.CKR_DEVICE_ERROR, A.CKR_DEVICE_REMOVED, A.CKR_TOKEN_NOT_PRESENT)
    assert not p11.token_info(0).flags & A.CKF_USER_PIN_COUNT_LOW   # no PIN failure counted
    shutil.move(str(hsm.root / "aside"), str(token_dir))
    p11.login(s, USER_PIN)                        # back: unlocks, no restart
    assert p11.find(s, {A.CKA_LABEL: b"kept"})


def test_store_file_alone_is_useless(p11, hsm, tmp_path, monkeypatch):
    s = ready_token(p11, 0)
    secret(p11, s)
    p11.close(s)
    p11.call("C_Finalize", ffi.NULL)
    stolen = tmp_path / "stolen"
    stolen.mkdir()
    shutil.copy(tmp_path / "store.db", stolen / "store.db")
    # The record does not open with the right PIN: the KEK layer is in the way.
    rec = Store(f"sqlite:///{stolen / 'store.db'}").token(0).user_pin
    with raises_ckr_any():
        at_rest.open_pin_record(USER_PIN, rec)
    # A configuration without the HSM refuses to unlock, with a clear code, and counts nothing.
    conf = write_config(stolen, slots='[[slots]]\nid = 0\nkdf_cost = "test"\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p11.initialize()
    s = p11.open(0)
    with raises_ckr(A.CKR_DEVICE_ERROR):
        p11.login(s, USER_PIN)
    assert not p11.token_info(0).flags & A.CKF_USER_PIN_COUNT_LOW


class raises_ckr_any:
    """Any CryptokiError (the package's own error type, raised in-process)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        from cryptoki_shim.errors import CryptokiError

        assert typ is not None and issubclass(typ, CryptokiError), "the record opened without the KEK"
        return True
