"""C_FindObjects through the index agrees with a full scan, across every kind of change."""

from cryptoki_shim import spec
from p11 import P11


def _data(label: bytes, app: bytes = b"a") -> dict:
    return {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: label,
            spec.CKA_APPLICATION: app, spec.CKA_VALUE: b"v"}


def test_indexed_search_follows_create_modify_destroy(token: P11, user_session: int) -> None:
    s = user_session
    handles = [token.create(s, _data(b"obj-%d" % i, b"app-%d" % (i % 3))) for i in range(30)]
    assert token.find(s, {spec.CKA_LABEL: b"obj-7"}) == [handles[7]]
    # an indexed attribute together with one that is not indexed
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_APPLICATION: b"app-1"}) == handles[1::3]
    token.set(s, handles[7], {spec.CKA_LABEL: b"renamed"})
    assert token.find(s, {spec.CKA_LABEL: b"obj-7"}) == []
    assert token.find(s, {spec.CKA_LABEL: b"renamed"}) == [handles[7]]
    token.destroy(s, handles[8])
    assert token.find(s, {spec.CKA_LABEL: b"obj-8"}) == []
    assert len(token.find(s, {spec.CKA_CLASS: spec.CKO_DATA})) == 29


def test_index_after_reload_and_private_objects(token: P11, user_session: int) -> None:
    s = user_session
    h = token.create(s, {**_data(b"secret-note"), spec.CKA_PRIVATE: True})
    token.logout(s)
    assert token.find(s, {spec.CKA_LABEL: b"secret-note"}) == []  # invisible before login
    token.login(s, b"1234")
    found = token.find(s, {spec.CKA_LABEL: b"secret-note"})
    assert len(found) == 1 and found != [] and token.get(s, found[0], spec.CKA_VALUE) == b"v"
    # a re-initialize (fresh cache built from the store) finds the same objects
    token.finalize()
    token.initialize()
    s2 = token.open(0)
    token.login(s2, b"1234")
    assert len(token.find(s2, {spec.CKA_LABEL: b"secret-note"})) == 1
    assert h  # the old handle is not reused for anything else


def test_every_key_says_which_backend_holds_it(token: P11, user_session: int) -> None:
    """CKA_SHIM_BACKEND (vendor attribute, issue 6): software keys answer SHIM_BACKEND_SOFTWARE
    even though they do not store it; a data object has no such attribute."""
    s = user_session
    key = token.generate_key(s, spec.CKM_AES_KEY_GEN, {spec.CKA_VALUE_LEN: 16})
    assert token.get(s, key, spec.CKA_SHIM_BACKEND) == spec.SHIM_BACKEND_SOFTWARE
    data = token.create(s, _data(b"plain"))
    try:
        token.get(s, data, spec.CKA_SHIM_BACKEND)
    except Exception as exc:  # P11Error
        assert getattr(exc, "rv", None) == spec.CKR_ATTRIBUTE_TYPE_INVALID
    else:
        raise AssertionError("a data object has no backend attribute")
