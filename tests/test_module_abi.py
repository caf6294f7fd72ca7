"""The general-purpose and slot functions at the C boundary (PKCS#11 3.2 §5.4, §5.5).

Everything goes through ``tests/p11.py``: the library's 3.2 function list called with cffi
in ABI mode, so each assertion is about the exact CK_RV and the bytes a C client gets.
Every test starts from a finalized module on its own store (``CRYPTOKI_SHIM_CONF``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from cryptoki_shim import spec
from cryptoki_shim.mechanisms import registry
from p11 import P11, ffi, write_config

CKR_OK = 0
TABLE_FUNCTIONS = ("C_GetFunctionList", "C_GetInterfaceList", "C_GetInterface")


def _finalize_quietly(client: P11) -> None:
    client.call("C_Finalize", ffi.NULL)  # NOT_INITIALIZED when it already is: fine


@pytest.fixture
def raw(lib_path: Path, shim_conf: Path) -> Iterator[P11]:
    """The library, not initialized; finalized again afterwards whatever the test did."""
    client = P11(lib_path)
    _finalize_quietly(client)
    yield client
    _finalize_quietly(client)


def rv(client: P11, name: str, *args: Any) -> str:
    """The spec name of what ``name(*args)`` returns (readable assertion failures)."""
    return spec.ckr_name(client.call(name, *args))


# ---------------------------------------------------------------------- C_Initialize / C_Finalize


class Mutexes:
    """Application mutex callbacks (§5.4.1); they keep count of how often they are called."""

    def __init__(self) -> None:
        self.calls = 0
        self._store: dict[int, Any] = {}

        @ffi.callback("CK_CREATEMUTEX")
        def create(pp: Any) -> int:
            self.calls += 1
            handle = ffi.new("int *")
            self._store[int(ffi.cast("uintptr_t", handle))] = handle
            pp[0] = handle
            return CKR_OK

        @ffi.callback("CK_DESTROYMUTEX")
        def destroy(p: Any) -> int:
            self.calls += 1
            self._store.pop(int(ffi.cast("uintptr_t", p)), None)
            return CKR_OK

        @ffi.callback("CK_LOCKMUTEX")
        def lock(p: Any) -> int:
            self.calls += 1
            return CKR_OK

        @ffi.callback("CK_UNLOCKMUTEX")
        def unlock(p: Any) -> int:
            self.calls += 1
            return CKR_OK

        self.create, self.destroy, self.lock, self.unlock = create, destroy, lock, unlock

    def args(self, which: str = "CDLU", flags: int = 0) -> Any:
        a = ffi.new("CK_C_INITIALIZE_ARGS *")
        if "C" in which:
            a.CreateMutex = self.create
        if "D" in which:
            a.DestroyMutex = self.destroy
        if "L" in which:
            a.LockMutex = self.lock
        if "U" in which:
            a.UnlockMutex = self.unlock
        a.flags = flags
        return a


def test_initialize_with_null(raw: P11) -> None:
    assert rv(raw, "C_Initialize", ffi.NULL) == "CKR_OK"
    assert rv(raw, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_OK"


@pytest.mark.parametrize("flags", [0, int(spec.CKF_OS_LOCKING_OK)])
def test_initialize_with_all_four_mutex_callbacks(raw: P11, flags: int) -> None:
    m = Mutexes()
    assert rv(raw, "C_Initialize", m.args("CDLU", flags)) == "CKR_OK"
    raw.slots()  # the module works with them


def test_initialize_with_os_locking_only(raw: P11) -> None:
    assert rv(raw, "C_Initialize", Mutexes().args("", int(spec.CKF_OS_LOCKING_OK))) == "CKR_OK"


def test_initialize_with_an_empty_args_struct(raw: P11) -> None:
    """No callbacks, no flags: the application does not use threads (§5.4.1 case 1)."""
    assert rv(raw, "C_Initialize", Mutexes().args("")) == "CKR_OK"


@pytest.mark.parametrize("which", ["C", "D", "L", "U", "CD", "LU", "CDL", "DLU"])
@pytest.mark.parametrize("flags", [0, int(spec.CKF_OS_LOCKING_OK)])
def test_initialize_with_some_callbacks_is_arguments_bad(raw: P11, which: str, flags: int) -> None:
    assert rv(raw, "C_Initialize", Mutexes().args(which, flags)) == "CKR_ARGUMENTS_BAD"
    # ... and the module stays uninitialized
    assert rv(raw, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_CRYPTOKI_NOT_INITIALIZED"


def test_initialize_with_reserved_pointer_is_arguments_bad(raw: P11) -> None:
    a = Mutexes().args("")
    keep = ffi.new("int *")
    a.pReserved = keep
    assert rv(raw, "C_Initialize", a) == "CKR_ARGUMENTS_BAD"
    assert rv(raw, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_CRYPTOKI_NOT_INITIALIZED"


def test_second_initialize_is_already_initialized(raw: P11) -> None:
    raw.initialize()
    assert rv(raw, "C_Initialize", ffi.NULL) == "CKR_CRYPTOKI_ALREADY_INITIALIZED"
    assert rv(raw, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_OK"


def test_finalize_with_reserved_pointer_is_arguments_bad(raw: P11) -> None:
    raw.initialize()
    keep = ffi.new("int *")
    assert rv(raw, "C_Finalize", keep) == "CKR_ARGUMENTS_BAD"
    assert rv(raw, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_OK"  # still initialized
    assert rv(raw, "C_Finalize", ffi.NULL) == "CKR_OK"
    assert rv(raw, "C_Finalize", ffi.NULL) == "CKR_CRYPTOKI_NOT_INITIALIZED"


def test_initialize_finalize_cycles(raw: P11) -> None:
    for _ in range(3):
        assert rv(raw, "C_Initialize", ffi.NULL) == "CKR_OK"
        assert raw.slots() == [0]
        assert rv(raw, "C_Finalize", ffi.NULL) == "CKR_OK"


def _zero_args(fn: Any) -> list[Any]:
    return [ffi.NULL if t.kind in ("pointer", "function") else 0 for t in ffi.typeof(fn).args]


def test_every_function_before_initialize_is_not_initialized(raw: P11) -> None:
    """The whole 3.2 table with NULL/0 arguments, C_Finalize included (§5.4: only the table
    functions and C_Initialize may be called first)."""
    seen = []
    for name, _field in ffi.typeof("CK_FUNCTION_LIST_3_2").fields:
        if name == "version" or name in TABLE_FUNCTIONS or name == "C_Initialize":
            continue
        fn = getattr(raw.fl, name)
        got = spec.ckr_name(int(fn(*_zero_args(fn))))
        assert got == "CKR_CRYPTOKI_NOT_INITIALIZED", f"{name} -> {got}"
        seen.append(name)
    assert len(seen) == 104 - 4


# ---------------------------------------------------------------------- C_GetInfo


def _text(field: Any) -> bytes:
    return bytes(ffi.buffer(field))


def test_get_info_fields(p11: P11) -> None:
    info = ffi.new("CK_INFO *")
    ffi.memmove(info, b"\xff" * ffi.sizeof("CK_INFO"), ffi.sizeof("CK_INFO"))
    p11.check("C_GetInfo", info)
    assert (info.cryptokiVersion.major, info.cryptokiVersion.minor) == (3, 2)
    assert _text(info.manufacturerID) == b"cryptoki-shim project".ljust(32, b" ")
    assert _text(info.libraryDescription).rstrip(b" ") and len(_text(info.libraryDescription)) == 32
    assert b"\x00" not in _text(info.libraryDescription) and b"\xff" not in _text(info.libraryDescription)
    assert info.flags == 0
    from cryptoki_shim import __version__

    major, minor = (int(x) for x in __version__.split(".")[:2])
    assert (info.libraryVersion.major, info.libraryVersion.minor) == (major, minor)


def test_get_info_null_is_arguments_bad(p11: P11) -> None:
    assert rv(p11, "C_GetInfo", ffi.NULL) == "CKR_ARGUMENTS_BAD"


def test_get_info_through_the_3_0_interface_reports_3_0(p11: P11) -> None:
    """CK_INFO.cryptokiVersion is the version of the interface the caller obtained."""
    code, itf = _interface(p11, b"PKCS 11", (3, 0))
    assert code == "CKR_OK"
    fl = ffi.cast("CK_FUNCTION_LIST_3_0 *", itf.pFunctionList)
    info = ffi.new("CK_INFO *")
    assert fl.C_GetInfo(info) == CKR_OK
    assert (info.cryptokiVersion.major, info.cryptokiVersion.minor) == (3, 0)
    assert fl.C_GetInfo(ffi.NULL) == spec.CKR_ARGUMENTS_BAD


def test_get_info_through_the_2_40_list_reports_2_40(p11: P11) -> None:
    pp = ffi.new("CK_FUNCTION_LIST_PTR *")
    assert p11.lib.C_GetFunctionList(pp) == CKR_OK
    info = ffi.new("CK_INFO *")
    assert pp[0].C_GetInfo(info) == CKR_OK
    assert (info.cryptokiVersion.major, info.cryptokiVersion.minor) == (2, 40)
    assert _text(info.manufacturerID) == b"cryptoki-shim project".ljust(32, b" ")


# ---------------------------------------------------------------------- slots and tokens


def _slot_list(client: P11, present: int) -> list[int]:
    n = ffi.new("CK_ULONG *")
    client.check("C_GetSlotList", present, ffi.NULL, n)
    arr = ffi.new("CK_SLOT_ID[]", n[0] + 2)
    n[0] += 2  # a generous buffer: the count written back is the real one
    client.check("C_GetSlotList", present, arr, n)
    return [arr[i] for i in range(n[0])]


def test_slot_list_both_passes(p11: P11) -> None:
    n = ffi.new("CK_ULONG *", 99)
    p11.check("C_GetSlotList", 0, ffi.NULL, n)
    assert n[0] == 1
    assert _slot_list(p11, 0) == [0]
    assert _slot_list(p11, 1) == [0]  # our tokens are always present


def test_slot_list_short_buffer(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, slots=_TWO_SLOTS)))
    client = P11(lib_path)
    _finalize_quietly(client)
    client.initialize()
    try:
        arr = ffi.new("CK_SLOT_ID[]", 2)
        n = ffi.new("CK_ULONG *", 1)
        assert rv(client, "C_GetSlotList", 0, arr, n) == "CKR_BUFFER_TOO_SMALL"
        assert n[0] == 2
        assert rv(client, "C_GetSlotList", 0, arr, n) == "CKR_OK"
        assert list(arr) == [3, 7]
        assert rv(client, "C_GetSlotList", 0, arr, ffi.NULL) == "CKR_ARGUMENTS_BAD"
    finally:
        _finalize_quietly(client)


def test_slot_and_token_info_of_an_invalid_slot(p11: P11) -> None:
    assert rv(p11, "C_GetSlotInfo", 1, ffi.new("CK_SLOT_INFO *")) == "CKR_SLOT_ID_INVALID"
    assert rv(p11, "C_GetTokenInfo", 1, ffi.new("CK_TOKEN_INFO *")) == "CKR_SLOT_ID_INVALID"
    assert rv(p11, "C_GetSlotInfo", 0, ffi.NULL) == "CKR_ARGUMENTS_BAD"
    assert rv(p11, "C_GetTokenInfo", 0, ffi.NULL) == "CKR_ARGUMENTS_BAD"


def test_slot_info_fields(p11: P11) -> None:
    info = ffi.new("CK_SLOT_INFO *")
    p11.check("C_GetSlotInfo", 0, info)
    assert info.flags & spec.CKF_TOKEN_PRESENT
    assert not info.flags & spec.CKF_REMOVABLE_DEVICE
    assert _text(info.manufacturerID) == b"cryptoki-shim project".ljust(32, b" ")
    assert _text(info.slotDescription).startswith(b"cryptoki-shim")
    assert len(_text(info.slotDescription)) == 64 and b"\x00" not in _text(info.slotDescription)


def test_token_info_fields_before_and_after_init_token(p11: P11) -> None:
    info = p11.token_info(0)
    assert not info.flags & spec.CKF_TOKEN_INITIALIZED
    p11.init_token(0, b"12345678", "abi-token")
    info = p11.token_info(0)
    assert info.flags & spec.CKF_TOKEN_INITIALIZED
    assert _text(info.label) == b"abi-token".ljust(32, b" ")
    assert _text(info.manufacturerID) == b"cryptoki-shim project".ljust(32, b" ")
    assert _text(info.serialNumber).strip(b" ") and len(_text(info.serialNumber)) == 16
    assert info.ulMinPinLen <= info.ulMaxPinLen


# ---------------------------------------------------------------------- mechanisms


def _mechanisms(client: P11) -> list[int]:
    n = ffi.new("CK_ULONG *")
    client.check("C_GetMechanismList", 0, ffi.NULL, n)
    arr = ffi.new("CK_MECHANISM_TYPE[]", n[0])
    client.check("C_GetMechanismList", 0, arr, n)
    return list(arr)[: n[0]]


def test_mechanism_list_both_passes(p11: P11) -> None:
    mechs = _mechanisms(p11)
    # the legacy entries (single DES, MD5) only where a slot sets legacy_mechanisms (not here)
    assert sorted(mechs) == sorted(e.mechanism for e in registry.all_entries() if not e.legacy)
    assert len(set(mechs)) == len(mechs) > 0
    short = ffi.new("CK_MECHANISM_TYPE[]", 1)
    n = ffi.new("CK_ULONG *", 1)
    assert rv(p11, "C_GetMechanismList", 0, short, n) == "CKR_BUFFER_TOO_SMALL"
    assert n[0] == len(mechs)
    assert rv(p11, "C_GetMechanismList", 0, ffi.NULL, ffi.NULL) == "CKR_ARGUMENTS_BAD"
    assert rv(p11, "C_GetMechanismList", 1, ffi.NULL, n) == "CKR_SLOT_ID_INVALID"


def test_mechanism_info_overwrites_the_whole_struct(p11: P11) -> None:
    """SoftHSM2-style callers pass a struct with garbage; every field must be written.
    The flags are the entry's, plus CKF_MESSAGE_SIGN/VERIFY wherever it signs/verifies (a
    message is one C_Sign's worth, core/message.py); the AEAD entries declare their own
    CKF_MESSAGE_ENCRYPT/DECRYPT."""
    for mech in _mechanisms(p11):
        info = ffi.new("CK_MECHANISM_INFO *")
        ffi.memmove(info, b"\xff" * ffi.sizeof("CK_MECHANISM_INFO"), ffi.sizeof("CK_MECHANISM_INFO"))
        p11.check("C_GetMechanismInfo", 0, mech, info)
        entry = registry.lookup(mech)
        flags = entry.flags
        flags |= spec.CKF_MESSAGE_SIGN if flags & spec.CKF_SIGN else 0
        flags |= spec.CKF_MESSAGE_VERIFY if flags & spec.CKF_VERIFY else 0
        got = (info.ulMinKeySize, info.ulMaxKeySize, info.flags)
        assert got == (entry.min_key_size, entry.max_key_size, flags), spec.ckm_name(mech)


def test_mechanism_info_errors(p11: P11) -> None:
    info = ffi.new("CK_MECHANISM_INFO *")
    assert rv(p11, "C_GetMechanismInfo", 0, 0x80001234, info) == "CKR_MECHANISM_INVALID"
    assert rv(p11, "C_GetMechanismInfo", 1, int(spec.CKM_SHA256), info) == "CKR_SLOT_ID_INVALID"
    assert rv(p11, "C_GetMechanismInfo", 0, int(spec.CKM_SHA256), ffi.NULL) == "CKR_ARGUMENTS_BAD"


def test_wait_for_slot_event_dont_block(p11: P11) -> None:
    slot = ffi.new("CK_SLOT_ID *")
    assert rv(p11, "C_WaitForSlotEvent", int(spec.CKF_DONT_BLOCK), slot, ffi.NULL) == "CKR_NO_EVENT"


# ---------------------------------------------------------------------- interfaces and tables


def _interface(client: P11, name: bytes | None, version: tuple[int, int] | None, flags: int = 0) -> tuple[str, Any]:
    pp = ffi.new("CK_INTERFACE_PTR *")
    keep = ffi.new("char[]", name) if name is not None else ffi.NULL
    v = ffi.new("CK_VERSION *", version) if version is not None else ffi.NULL
    code = spec.ckr_name(client.lib.C_GetInterface(ffi.cast("CK_UTF8CHAR_PTR", keep), v, pp, flags))
    return code, (pp[0] if code == "CKR_OK" else None)


def _version_of(itf: Any) -> tuple[int, int]:
    v = ffi.cast("CK_VERSION *", itf.pFunctionList)
    return v.major, v.minor


def test_get_interface_default_is_3_2(raw: P11) -> None:
    code, itf = _interface(raw, None, None)
    assert code == "CKR_OK"
    assert ffi.string(ffi.cast("char *", itf.pInterfaceName)) == b"PKCS 11"
    assert _version_of(itf) == (3, 2)
    assert itf.flags == 0


def test_get_interface_by_name_and_version(raw: P11) -> None:
    code, itf = _interface(raw, b"PKCS 11", (2, 40))
    assert code == "CKR_OK" and _version_of(itf) == (2, 40)
    pp = ffi.new("CK_FUNCTION_LIST_PTR *")
    assert raw.lib.C_GetFunctionList(pp) == CKR_OK
    assert ffi.cast("void *", pp[0]) == itf.pFunctionList  # the same 2.40 table
    code, itf = _interface(raw, b"PKCS 11", (3, 0))
    assert code == "CKR_OK" and _version_of(itf) == (3, 0)
    code, itf = _interface(raw, b"PKCS 11", (3, 2))
    assert code == "CKR_OK" and _version_of(itf) == (3, 2)
    code, itf = _interface(raw, b"PKCS 11", None)
    assert code == "CKR_OK" and _version_of(itf) == (3, 2)


@pytest.mark.parametrize("name,version", [
    (b"Vendor thing", None),
    (b"PKCS 11 ", None),
    (b"PKCS 11", (3, 1)),
    (b"PKCS 11", (3, 3)),
    (b"PKCS 11", (2, 20)),
    (None, (9, 9)),
])
def test_get_interface_unknown_name_or_version(raw: P11, name: bytes | None, version: tuple[int, int] | None) -> None:
    assert _interface(raw, name, version)[0] == "CKR_ARGUMENTS_BAD"


def test_get_interface_with_a_flag_we_do_not_offer(raw: P11) -> None:
    assert _interface(raw, None, None, int(spec.CKF_INTERFACE_FORK_SAFE))[0] == "CKR_ARGUMENTS_BAD"


def test_get_interface_null_output(raw: P11) -> None:
    assert spec.ckr_name(raw.lib.C_GetInterface(ffi.NULL, ffi.NULL, ffi.NULL, 0)) == "CKR_ARGUMENTS_BAD"


def test_get_interface_list_both_passes(raw: P11) -> None:
    n = ffi.new("CK_ULONG *")
    assert raw.lib.C_GetInterfaceList(ffi.NULL, n) == CKR_OK
    assert n[0] == 3
    short = ffi.new("CK_INTERFACE[]", 2)
    n[0] = 2
    assert spec.ckr_name(raw.lib.C_GetInterfaceList(short, n)) == "CKR_BUFFER_TOO_SMALL"
    assert n[0] == 3
    arr = ffi.new("CK_INTERFACE[]", 4)
    n[0] = 4
    assert raw.lib.C_GetInterfaceList(arr, n) == CKR_OK
    assert n[0] == 3
    got = [(ffi.string(ffi.cast("char *", arr[i].pInterfaceName)), _version_of(arr[i]), arr[i].flags) for i in range(3)]
    assert got == [(b"PKCS 11", (3, 2), 0), (b"PKCS 11", (3, 0), 0), (b"PKCS 11", (2, 40), 0)]
    assert spec.ckr_name(raw.lib.C_GetInterfaceList(arr, ffi.NULL)) == "CKR_ARGUMENTS_BAD"


def test_get_function_list(raw: P11) -> None:
    assert spec.ckr_name(raw.lib.C_GetFunctionList(ffi.NULL)) == "CKR_ARGUMENTS_BAD"
    pp = ffi.new("CK_FUNCTION_LIST_PTR *")
    assert raw.lib.C_GetFunctionList(pp) == CKR_OK
    assert (pp[0].version.major, pp[0].version.minor) == (2, 40)
    for name, _field in ffi.typeof("CK_FUNCTION_LIST").fields:
        if name != "version":
            assert getattr(pp[0], name) != ffi.NULL, name


# ---------------------------------------------------------------------- configuration

_TWO_SLOTS = '[[slots]]\nid = 3\nkdf_cost = "test"\n\n[[slots]]\nid = 7\nkdf_cost = "test"\ndescription = "the second"\n'


def test_multi_slot_config_ids_are_stable(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, slots=_TWO_SLOTS)))
    client = P11(lib_path)
    _finalize_quietly(client)
    try:
        client.initialize()
        assert _slot_list(client, 0) == [3, 7]
        info = ffi.new("CK_SLOT_INFO *")
        client.check("C_GetSlotInfo", 7, info)
        assert _text(info.slotDescription) == b"the second".ljust(64, b" ")
        assert rv(client, "C_GetTokenInfo", 0, ffi.new("CK_TOKEN_INFO *")) == "CKR_SLOT_ID_INVALID"
        client.init_token(7, b"12345678", "seven")
        assert _slot_list(client, 1) == [3, 7]
        client.finalize()
        client.initialize()
        assert _slot_list(client, 0) == [3, 7]
        assert _text(client.token_info(7).label) == b"seven".ljust(32, b" ")
        assert not client.token_info(3).flags & spec.CKF_TOKEN_INITIALIZED
    finally:
        _finalize_quietly(client)


def test_invalid_config_fails_initialize_with_a_logged_reason(lib_path: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "cheap"\n')
    log = tmp_path / "shim.log"
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    monkeypatch.setenv("CRYPTOKI_SHIM_LOG", str(log))
    client = P11(lib_path)
    _finalize_quietly(client)
    try:
        assert rv(client, "C_Initialize", ffi.NULL) == "CKR_GENERAL_ERROR"
        assert rv(client, "C_GetInfo", ffi.new("CK_INFO *")) == "CKR_CRYPTOKI_NOT_INITIALIZED"
        lines = [line for line in log.read_text().splitlines() if "ERROR" in line]
        assert any(str(conf) in line and "kdf_cost" in line and "'cheap'" in line for line in lines), lines
    finally:
        monkeypatch.delenv("CRYPTOKI_SHIM_LOG")
        _finalize_quietly(client)  # also puts our logging back to silent


def test_config_that_is_not_toml(lib_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "config.toml"
    conf.write_text("[store\nurl = \n")
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    client = P11(lib_path)
    _finalize_quietly(client)
    assert rv(client, "C_Initialize", ffi.NULL) == "CKR_GENERAL_ERROR"
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(tmp_path / "missing.toml"))
    assert rv(client, "C_Initialize", ffi.NULL) == "CKR_GENERAL_ERROR"


def test_no_config_serves_one_slot_on_the_default_store(lib_path: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/etc/cryptoki-shim/config.toml").exists():
        pytest.skip("/etc/cryptoki-shim/config.toml exists on this machine")
    monkeypatch.delenv("CRYPTOKI_SHIM_CONF", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    client = P11(lib_path)
    _finalize_quietly(client)
    try:
        client.initialize()
        assert _slot_list(client, 0) == [0]
        store = tmp_path / "data" / "cryptoki-shim" / "store.db"
        assert not store.exists()  # opened on first token use, not by C_Initialize
        client.token_info(0)
        assert store.is_file()
        assert oct(store.parent.stat().st_mode & 0o777) == oct(0o700)
    finally:
        _finalize_quietly(client)
