"""A PKCS#11 client of the upstream module, in cffi ABI mode (no compiler at run time).

The upstream library is ``dlopen``ed and called through the ``CK_FUNCTION_LIST`` that its
``C_GetFunctionList`` returns, with the declarations of ``native/cdef.h`` (the same header
our own ABI is built from). cffi releases the GIL around each call, so a slow HSM does not
stop other threads of the host, nor our other slots.

One ``Library`` per (path, process): ``C_Initialize`` is per application (PKCS#11 3.0
§5.4), so slots that share an upstream library share it. A library some other component of
the host already initialized (``CKR_CRYPTOKI_ALREADY_INITIALIZED``) is used as is, and
then never finalized by us.

Attribute values cross this boundary encoded by our own codec (the C encoding of every
``CKA_*`` kind is the same on both sides).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import spec
from ..spec_ints import CKF_OS_LOCKING_OK, CKU_USER
from ..attributes import codec
from ..errors import CryptokiError
from ..mechanisms import params as P
from .upstream_errors import Unavailable, UpstreamError

_log = logging.getLogger(__name__)

CDEF = Path(__file__).resolve().parents[2] / "native" / "cdef.h"
_ffi: Any = None
_ffi_lock = threading.Lock()


def ffi() -> Any:
    """The cffi FFI with our PKCS#11 declarations (parsed once, on first upstream use)."""
    global _ffi
    with _ffi_lock:
        if _ffi is None:
            import cffi

            f = cffi.FFI()
            f.cdef(CDEF.read_text())
            f.cdef("CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);")
            _ffi = f
    return _ffi


class Library:
    """One loaded upstream module and its function list."""

    def __init__(self, path: str, quirks: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.quirks = quirks
        #: no_os_locking: initialized without CKF_OS_LOCKING_OK, so no two calls may overlap
        self.serial = "no_os_locking" in quirks
        self.generation = 0          # bumped by reinitialize(): every handle is void
        self.owned = False           # did our C_Initialize succeed (may we C_Finalize)?
        f = ffi()
        try:
            self._lib = f.dlopen(path)
        except OSError as exc:
            raise Unavailable(spec.CKR_DEVICE_ERROR, f"upstream library {path}: cannot load ({exc})") from None
        pp = f.new("CK_FUNCTION_LIST_PTR *")
        rv = self._lib.C_GetFunctionList(pp)
        if rv != 0 or pp[0] == f.NULL:
            raise Unavailable(spec.CKR_DEVICE_ERROR, f"upstream library {path}: C_GetFunctionList -> {spec.ckr_name(rv)}")
        self.fl = pp[0]
        self.initialize()

    def call(self, name: str, *args: Any) -> None:
        rv = int(getattr(self.fl, name)(*args))
        if rv != 0:
            raise UpstreamError(rv, name)

    def initialize(self) -> None:
        f = ffi()
        init = f.new("CK_C_INITIALIZE_ARGS *")
        init.flags = CKF_OS_LOCKING_OK
        rv = int(self.fl.C_Initialize(f.NULL if self.serial else init))
        if rv == spec.CKR_CANT_LOCK and not self.serial:
            # PKCS#11 §5.4: the module cannot use the OS's locking; NULL arguments promise it
            # one caller at a time, which self.serial then keeps (the no_os_locking quirk)
            _log.warning("upstream %s: C_Initialize -> CKR_CANT_LOCK with OS locking; using the no_os_locking "
                         "quirk (calls serialised)", self.path)
            self.serial = True
            rv = int(self.fl.C_Initialize(f.NULL))
        if rv == spec.CKR_CRYPTOKI_ALREADY_INITIALIZED:
            _log.info("upstream %s was already initialized in this process; shared", self.path)
            return
        if rv != 0:
            raise Unavailable(spec.CKR_DEVICE_ERROR, f"upstream {self.path}: C_Initialize -> {spec.ckr_name(rv)}")
        self.owned = True

    def reinitialize(self) -> None:
        """C_Finalize + C_Initialize: some modules (SoftHSM2) only rescan tokens then. Never
        with the no_reinitialize quirk (a module shared with other code of the process, whose
        sessions our C_Finalize would close, or one that fails a second C_Initialize)."""
        with self.lock:
            if not self.owned or "no_reinitialize" in self.quirks:
                return
            self.fl.C_Finalize(ffi().NULL)
            self.owned = False
            self.generation += 1
            self.initialize()

    # ------------------------------------------------------------------ slots

    def find_slot(self, label: str | None, serial: str | None) -> int:
        """The slot whose token has ``label``/``serial`` (blank-padded fields, §3.2)."""
        f = ffi()
        n = f.new("CK_ULONG *")
        self.call("C_GetSlotList", 1, f.NULL, n)
        slots = f.new("CK_SLOT_ID[]", max(1, n[0]))
        self.call("C_GetSlotList", 1, slots, n)
        info = f.new("CK_TOKEN_INFO *")
        for i in range(n[0]):
            try:
                self.call("C_GetTokenInfo", slots[i], info)
            except UpstreamError:
                continue
            tl = f.buffer(info.label, 32)[:].rstrip(b" \0").decode("utf-8", "replace")
            ts = f.buffer(info.serialNumber, 16)[:].rstrip(b" \0").decode("ascii", "replace")
            if (label is None or tl == label) and (serial is None or ts == serial):
                return int(slots[i])
        raise Unavailable(spec.CKR_TOKEN_NOT_PRESENT,
                          f"upstream {self.path}: no token with label={label!r} serial={serial!r}")

    def mechanisms(self, slot: int) -> dict[int, tuple[int, int, int]]:
        f = ffi()
        n = f.new("CK_ULONG *")
        self.call("C_GetMechanismList", slot, f.NULL, n)
        arr = f.new("CK_MECHANISM_TYPE[]", max(1, n[0]))
        self.call("C_GetMechanismList", slot, arr, n)
        info = f.new("CK_MECHANISM_INFO *")
        out = {}
        for i in range(n[0]):
            self.call("C_GetMechanismInfo", slot, arr[i], info)
            out[int(arr[i])] = (int(info.ulMinKeySize), int(info.ulMaxKeySize), int(info.flags))
        return out

    # ------------------------------------------------------------------ sessions

    def open_session(self, slot: int) -> int:
        f = ffi()
        h = f.new("CK_SESSION_HANDLE *")
        self.call("C_OpenSession", slot, int(spec.CKF_SERIAL_SESSION | spec.CKF_RW_SESSION), f.NULL, f.NULL, h)
        return int(h[0])

    def close_session(self, session: int) -> None:
        try:
            self.call("C_CloseSession", session)
        except UpstreamError:
            pass

    def login(self, session: int, pin: bytes) -> None:
        try:
            self.call("C_Login", session, CKU_USER, pin, len(pin))
        except UpstreamError as exc:
            if exc.rv != spec.CKR_USER_ALREADY_LOGGED_IN:
                raise

    # ------------------------------------------------------------------ objects

    def find(self, session: int, template: Mapping[int, Any], limit: int = 16) -> list[int]:
        t = Template(template)
        self.call("C_FindObjectsInit", session, t.array, t.count)
        try:
            arr = ffi().new("CK_OBJECT_HANDLE[]", limit)
            n = ffi().new("CK_ULONG *")
            self.call("C_FindObjects", session, arr, limit, n)
            return [int(arr[i]) for i in range(n[0])]
        finally:
            try:
                self.call("C_FindObjectsFinal", session)
            except UpstreamError:
                pass

    def get_attributes(self, session: int, handle: int, types: Iterable[int]) -> dict[int, Any]:
        """The readable ones of ``types`` (others are skipped, as C_GetAttributeValue allows)."""
        f = ffi()
        out: dict[int, Any] = {}
        for t in types:
            attr = f.new("CK_ATTRIBUTE *")
            attr.type = t
            try:
                self.call("C_GetAttributeValue", session, handle, attr, 1)
            except UpstreamError as exc:
                if exc.rv in (spec.CKR_ATTRIBUTE_SENSITIVE, spec.CKR_ATTRIBUTE_TYPE_INVALID):
                    continue
                raise
            if attr.ulValueLen == spec.CK_UNAVAILABLE_INFORMATION:
                continue
            buf = f.new("unsigned char[]", max(1, attr.ulValueLen))
            attr.pValue = buf
            self.call("C_GetAttributeValue", session, handle, attr, 1)
            out[t] = codec.decode(t, f.buffer(buf, attr.ulValueLen)[:])
        return out

    def destroy(self, session: int, handle: int) -> None:
        self.call("C_DestroyObject", session, handle)

    # ------------------------------------------------------------------ two-pass helper

    def two_pass(self, name: str, *args: Any) -> bytes:
        """Call an output function twice: length query (NULL buffer), then the real call."""
        f = ffi()
        n = f.new("CK_ULONG *")
        self.call(name, *args, f.NULL, n)
        buf = f.new("unsigned char[]", max(1, n[0]))
        self.call(name, *args, buf, n)
        return f.buffer(buf, n[0])[:]


class Template:
    """A CK_ATTRIBUTE array over typed values (our codec); keeps its buffers alive."""

    def __init__(self, attrs: Mapping[int, Any]) -> None:
        f = ffi()
        items = list(attrs.items())
        self._keep: list[Any] = []
        self.count = len(items)
        self.array = f.new("CK_ATTRIBUTE[]", max(1, self.count))
        for i, (t, v) in enumerate(items):
            raw = codec.encode(t, v)
            buf = f.new("unsigned char[]", raw) if raw else f.NULL
            self._keep.append(buf)
            self.array[i].type = t
            self.array[i].pValue = buf
            self.array[i].ulValueLen = len(raw)


# ---------------------------------------------------------------------- mechanisms


def _bytes(keep: list[Any], data: bytes) -> Any:
    f = ffi()
    if not data:
        return f.NULL
    buf = f.new("unsigned char[]", bytes(data))
    keep.append(buf)
    return buf


def _oaep(p: P.RsaPkcsOaepParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_RSA_PKCS_OAEP_PARAMS *")
    s.hashAlg, s.mgf, s.source = p.hash_alg, p.mgf, p.source
    s.pSourceData, s.ulSourceDataLen = _bytes(keep, p.source_data), len(p.source_data)
    return s


def _pss(p: P.RsaPkcsPssParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_RSA_PKCS_PSS_PARAMS *")
    s.hashAlg, s.mgf, s.sLen = p.hash_alg, p.mgf, p.salt_len
    return s


def _ecdh(p: P.EcdhDeriveParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_ECDH1_DERIVE_PARAMS *")
    s.kdf = p.kdf
    s.pSharedData, s.ulSharedDataLen = _bytes(keep, p.shared_data), len(p.shared_data)
    s.pPublicData, s.ulPublicDataLen = _bytes(keep, p.public_data), len(p.public_data)
    return s


def _gcm(p: P.GcmParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_GCM_PARAMS *")
    s.pIv, s.ulIvLen, s.ulIvBits = _bytes(keep, p.iv), len(p.iv), p.iv_bits or len(p.iv) * 8
    s.pAAD, s.ulAADLen, s.ulTagBits = _bytes(keep, p.aad), len(p.aad), p.tag_bits
    return s


def _ccm(p: P.CcmParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_CCM_PARAMS *")
    s.ulDataLen, s.ulMACLen = p.data_len, p.mac_len
    s.pNonce, s.ulNonceLen = _bytes(keep, p.nonce), len(p.nonce)
    s.pAAD, s.ulAADLen = _bytes(keep, p.aad), len(p.aad)
    return s


def _ctr(p: P.AesCtrParams, keep: list[Any]) -> Any:
    s = ffi().new("CK_AES_CTR_PARAMS *")
    s.ulCounterBits = p.counter_bits
    s.cb = list(p.cb)
    return s


#: parameter dataclass -> C struct builder: the parameters we can hand to an upstream.
#: A mechanism whose parameter kind is not here is not offered on an upstream token.
PARAM_BUILDERS = {
    P.RsaPkcsOaepParams: _oaep,
    P.RsaPkcsPssParams: _pss,
    P.EcdhDeriveParams: _ecdh,
    P.GcmParams: _gcm,
    P.CcmParams: _ccm,
    P.AesCtrParams: _ctr,
}


def routable_param(kind: Any) -> bool:
    return kind in (None, bytes, int) or kind in PARAM_BUILDERS


class Mechanism:
    """A CK_MECHANISM for the upstream, rebuilt from our parsed parameter."""

    def __init__(self, mechanism: int, param: Any) -> None:
        f = ffi()
        self._keep: list[Any] = []
        self.ptr = f.new("CK_MECHANISM *")
        self.ptr.mechanism = mechanism
        if param is None:
            self.ptr.pParameter, self.ptr.ulParameterLen = f.NULL, 0
        elif isinstance(param, (bytes, bytearray)):
            self.ptr.pParameter, self.ptr.ulParameterLen = _bytes(self._keep, bytes(param)), len(param)
        elif isinstance(param, int):
            s = f.new("CK_ULONG *", param)
            self._keep.append(s)
            self.ptr.pParameter, self.ptr.ulParameterLen = s, f.sizeof("CK_ULONG")
        else:
            builder = PARAM_BUILDERS.get(type(param))
            if builder is None:
                raise CryptokiError(spec.CKR_MECHANISM_PARAM_INVALID,
                                    f"{type(param).__name__} parameters are not passed to an upstream module")
            s = builder(param, self._keep)
            self._keep.append(s)
            self.ptr.pParameter, self.ptr.ulParameterLen = s, f.sizeof(s[0])


_libraries: dict[tuple[str, int], Library] = {}
_lib_lock = threading.Lock()


#: [slots.upstream] quirks names (docs/upstream.md "Quirks")
QUIRKS = ("no_reinitialize", "no_os_locking")


def parse_quirks(text: str | None) -> frozenset[str]:
    """The known quirk names of a ``quirks`` value (config-check reports unknown ones)."""
    return frozenset(q.strip() for q in (text or "").split(",") if q.strip() in QUIRKS)


def library(path: str, quirks: frozenset[str] = frozenset()) -> Library:
    """The loaded upstream module at ``path`` for this process (loaded on first use, with the
    quirks of the first slot that uses it)."""
    key = (path, os.getpid())
    with _lib_lock:
        lib = _libraries.get(key)
        if lib is None:
            lib = Library(path, quirks)
            _libraries[key] = lib
        return lib
