"""A thin PKCS#11 client over the built library, for tests that check exact return codes.

It loads ``build/libcryptoki_shim.so`` (or ``$CRYPTOKI_SHIM_LIB``) with cffi in ABI mode,
takes the default (3.2) function list from ``C_GetInterface`` and calls through it, as a C
client does. ``call`` returns the raw CK_RV; the convenience methods raise ``P11Error``
carrying the CKR on failure, so tests can say ``with raises_ckr(CKR_X): ...``.
Attribute values are encoded with the package's own codec (``attributes.codec``): the test
still crosses the real C boundary, only the byte layout helper is shared.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

import cffi

from cryptoki_shim import spec
from cryptoki_shim.attributes import codec

ROOT = Path(__file__).resolve().parent.parent
LIB = Path(os.environ.get("CRYPTOKI_SHIM_LIB", ROOT / "build" / "libcryptoki_shim.so"))

ffi = cffi.FFI()
ffi.cdef((ROOT / "native" / "cdef.h").read_text())
ffi.cdef(
    """
    CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                         CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);
    CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);
    CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
    """
)


SO_PIN = b"12345678"
USER_PIN = b"1234"


def write_config(directory: Path, *, slots: str | None = None, extra: str = "", kdf_cost: str = "test") -> Path:
    """A config file with its own store in ``directory``; returns its path.

    One slot 0 with the fast "test" KDF unless ``slots`` says otherwise; ``kdf_cost="default"``
    gives the production Argon2id cost (64 MiB): the concurrency tests of PIN paths need it,
    since a bug of the real KDF under threads never shows at the test cost (issue 15 item 1).
    """
    db = directory / "store.db"
    slots = slots if slots is not None else f'[[slots]]\nid = 0\nkdf_cost = "{kdf_cost}"\n'
    path = directory / "config.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{db}"\n{extra}\n{slots}')
    return path


class P11Error(Exception):
    def __init__(self, rv: int, fn: str) -> None:
        super().__init__(f"{fn} -> {spec.ckr_name(rv)}")
        self.rv = rv


@contextlib.contextmanager
def raises_ckr(expected: int) -> Iterator[None]:
    try:
        yield
    except P11Error as exc:
        assert exc.rv == expected, f"expected {spec.ckr_name(expected)}, got {spec.ckr_name(exc.rv)}"
        return
    raise AssertionError(f"expected {spec.ckr_name(expected)}, the call succeeded")


_lib_cache: dict[str, Any] = {}


def load(path: Path | str = LIB) -> Any:
    """dlopen the library once per process (a second dlopen returns the same handle)."""
    key = str(path)
    if key not in _lib_cache:
        _lib_cache[key] = ffi.dlopen(key)
    return _lib_cache[key]


class Template:
    """A CK_ATTRIBUTE array that keeps its value buffers alive."""

    def __init__(self, attrs: dict[int, Any] | list[tuple[int, Any]]) -> None:
        items = list(attrs.items()) if isinstance(attrs, dict) else list(attrs)
        self._keep: list[Any] = []
        self.count = len(items)
        self.array = ffi.new("CK_ATTRIBUTE[]", max(1, self.count))
        for i, (atype, value) in enumerate(items):
            raw = value if isinstance(value, (bytes, bytearray)) and codec.kind(atype) is not spec.AttrKind.ATTR_ARRAY \
                else codec.encode(atype, value)
            buf = ffi.new("unsigned char[]", raw) if raw else ffi.NULL
            self._keep.append(buf)
            self.array[i].type = atype
            self.array[i].pValue = buf
            self.array[i].ulValueLen = len(raw)


class P11:
    """The library through its default function list (PKCS#11 3.2, from C_GetInterface)."""

    def __init__(self, path: Path | str = LIB) -> None:
        self.lib = load(path)
        pp = ffi.new("CK_INTERFACE_PTR *")
        rv = self.lib.C_GetInterface(ffi.NULL, ffi.NULL, pp, 0)
        assert rv == 0, spec.ckr_name(rv)
        self.fl = ffi.cast("CK_FUNCTION_LIST_3_2 *", pp[0].pFunctionList)

    def call(self, name: str, *args: Any) -> int:
        return int(getattr(self.fl, name)(*args))

    def check(self, name: str, *args: Any) -> None:
        rv = self.call(name, *args)
        if rv != 0:
            raise P11Error(rv, name)

    # ------------------------------------------------------------------ general

    def initialize(self, args: Any = ffi.NULL) -> None:
        self.check("C_Initialize", args)

    def finalize(self) -> None:
        self.check("C_Finalize", ffi.NULL)

    def slots(self) -> list[int]:
        n = ffi.new("CK_ULONG *")
        self.check("C_GetSlotList", 0, ffi.NULL, n)
        arr = ffi.new("CK_SLOT_ID[]", max(1, n[0]))
        self.check("C_GetSlotList", 0, arr, n)
        return [arr[i] for i in range(n[0])]

    def token_info(self, slot: int) -> Any:
        info = ffi.new("CK_TOKEN_INFO *")
        self.check("C_GetTokenInfo", slot, info)
        return info

    def init_token(self, slot: int, so_pin: bytes, label: str = "test") -> None:
        raw = label.encode().ljust(32, b" ")
        self.check("C_InitToken", slot, so_pin, len(so_pin), raw)

    # ------------------------------------------------------------------ sessions

    def open(self, slot: int, rw: bool = True) -> int:
        h = ffi.new("CK_SESSION_HANDLE *")
        flags = spec.CKF_SERIAL_SESSION | (spec.CKF_RW_SESSION if rw else 0)
        self.check("C_OpenSession", slot, flags, ffi.NULL, ffi.NULL, h)
        return h[0]

    def close(self, session: int) -> None:
        self.check("C_CloseSession", session)

    def session_info(self, session: int) -> Any:
        info = ffi.new("CK_SESSION_INFO *")
        self.check("C_GetSessionInfo", session, info)
        return info

    def login(self, session: int, pin: bytes, user: int = spec.CKU_USER) -> None:
        self.check("C_Login", session, user, pin, len(pin))

    def logout(self, session: int) -> None:
        self.check("C_Logout", session)

    def init_pin(self, session: int, pin: bytes) -> None:
        self.check("C_InitPIN", session, pin, len(pin))

    def set_pin(self, session: int, old: bytes, new: bytes) -> None:
        self.check("C_SetPIN", session, old, len(old), new, len(new))

    # ------------------------------------------------------------------ objects

    def create(self, session: int, attrs: dict[int, Any]) -> int:
        t = Template(attrs)
        h = ffi.new("CK_OBJECT_HANDLE *")
        self.check("C_CreateObject", session, t.array, t.count, h)
        return h[0]

    def copy(self, session: int, handle: int, attrs: dict[int, Any]) -> int:
        t = Template(attrs)
        h = ffi.new("CK_OBJECT_HANDLE *")
        self.check("C_CopyObject", session, handle, t.array, t.count, h)
        return h[0]

    def destroy(self, session: int, handle: int) -> None:
        self.check("C_DestroyObject", session, handle)

    def get(self, session: int, handle: int, atype: int) -> Any:
        """One attribute's typed value (two calls: length, then value)."""
        attr = ffi.new("CK_ATTRIBUTE *")
        attr.type = atype
        self.check("C_GetAttributeValue", session, handle, attr, 1)
        n = attr.ulValueLen
        buf = ffi.new("unsigned char[]", max(1, n))
        attr.pValue = buf
        self.check("C_GetAttributeValue", session, handle, attr, 1)
        return codec.decode(atype, ffi.buffer(buf, attr.ulValueLen)[:])

    def set(self, session: int, handle: int, attrs: dict[int, Any]) -> None:
        t = Template(attrs)
        self.check("C_SetAttributeValue", session, handle, t.array, t.count)

    def find(self, session: int, attrs: dict[int, Any] | None = None, batch: int = 64) -> list[int]:
        t = Template(attrs or {})
        self.check("C_FindObjectsInit", session, t.array if t.count else ffi.NULL, t.count)
        out: list[int] = []
        arr = ffi.new("CK_OBJECT_HANDLE[]", batch)
        n = ffi.new("CK_ULONG *")
        try:
            while True:
                self.check("C_FindObjects", session, arr, batch, n)
                out += [arr[i] for i in range(n[0])]
                if n[0] < batch:
                    return out
        finally:
            self.check("C_FindObjectsFinal", session)

    # ------------------------------------------------------------------ crypto

    @staticmethod
    def mechanism(mech: int, param: bytes | Any = None) -> tuple[Any, list[Any]]:
        m = ffi.new("CK_MECHANISM *")
        m.mechanism = mech
        keep: list[Any] = []
        if param is None:
            m.pParameter, m.ulParameterLen = ffi.NULL, 0
        elif isinstance(param, (bytes, bytearray)):
            buf = ffi.new("unsigned char[]", bytes(param))
            keep.append(buf)
            m.pParameter, m.ulParameterLen = buf, len(param)
        else:  # a cffi struct pointer
            keep.append(param)
            m.pParameter, m.ulParameterLen = param, ffi.sizeof(param[0])
        return m, keep

    def generate_key_pair(self, session: int, mech: int, pub: dict[int, Any], priv: dict[int, Any]) -> tuple[int, int]:
        m, _keep = self.mechanism(mech)
        tp, tq = Template(pub), Template(priv)
        hp, hq = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
        self.check("C_GenerateKeyPair", session, m, tp.array, tp.count, tq.array, tq.count, hp, hq)
        return hp[0], hq[0]

    def generate_key(self, session: int, mech: int, attrs: dict[int, Any]) -> int:
        m, _keep = self.mechanism(mech)
        t = Template(attrs)
        h = ffi.new("CK_OBJECT_HANDLE *")
        self.check("C_GenerateKey", session, m, t.array, t.count, h)
        return h[0]

    def _two_pass(self, name: str, *args: Any) -> bytes:
        n = ffi.new("CK_ULONG *")
        self.check(name, *args, ffi.NULL, n)
        buf = ffi.new("unsigned char[]", max(1, n[0]))
        self.check(name, *args, buf, n)
        return ffi.buffer(buf, n[0])[:]

    def sign(self, session: int, mech: int, key: int, data: bytes, param: Any = None) -> bytes:
        m, _keep = self.mechanism(mech, param)
        self.check("C_SignInit", session, m, key)
        return self._two_pass("C_Sign", session, data, len(data))

    def verify(self, session: int, mech: int, key: int, data: bytes, sig: bytes, param: Any = None) -> None:
        m, _keep = self.mechanism(mech, param)
        self.check("C_VerifyInit", session, m, key)
        self.check("C_Verify", session, data, len(data), sig, len(sig))

    def encrypt(self, session: int, mech: int, key: int, data: bytes, param: Any = None) -> bytes:
        m, _keep = self.mechanism(mech, param)
        self.check("C_EncryptInit", session, m, key)
        return self._two_pass("C_Encrypt", session, data, len(data))

    def decrypt(self, session: int, mech: int, key: int, data: bytes, param: Any = None) -> bytes:
        m, _keep = self.mechanism(mech, param)
        self.check("C_DecryptInit", session, m, key)
        return self._two_pass("C_Decrypt", session, data, len(data))

    def digest(self, session: int, mech: int, data: bytes) -> bytes:
        m, _keep = self.mechanism(mech)
        self.check("C_DigestInit", session, m)
        return self._two_pass("C_Digest", session, data, len(data))
