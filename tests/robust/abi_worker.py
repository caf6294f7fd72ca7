"""A child process that executes PKCS#11 calls described in plain Python values.

The fuzzer (``test_fuzz_abi.py``) runs in the test process and sends each call here over a
pipe, so a crash of the library (segfault, abort, hang) kills this process, not pytest: the
parent sees EOF or a timeout and reports the call sequence that led to it.

Protocol: length-prefixed pickles on two inherited file descriptors. A request is
``(fn_name, args)`` where every arg is an int or one of the tagged tuples below; the reply is
``(rv, outputs)`` with one entry per tagged output argument, in order. ``("conf", path)`` as
fn_name switches the configuration (between hypothesis examples, after C_Finalize).

Argument tags (the worker owns every buffer, so no length it declares exceeds what it
allocated, except the deliberate ``huge`` attribute lengths the library must refuse unread):

* ``("null",)`` NULL; ``("bytes", b)`` input bytes; ``("out", n)`` output buffer of n bytes
* ``("ulong", v)`` a CK_ULONG* in/out; ``("struct", ctype)`` an out struct pointer
* ``("handles", n)`` a CK_OBJECT_HANDLE[n] out array
* ``("tmpl", [(type, value | None, declared_len)])`` a CK_ATTRIBUTE array (in/out)
* ``("mech", ckm, param)`` a CK_MECHANISM*; param is None, ``(blob, declared_len)`` or
  ``("pstruct", ctype, {field: int | bytes | None})`` (bytes: a pointer to a copy; the
  generator keeps the paired length fields <= POINTED)
* ``("pstruct", ctype, fields)`` alone: such a struct as a plain pointer argument (the
  message-based functions' pParameter)
* ``("initargs", flags, n_mutex_fns, reserved_non_null)`` a CK_C_INITIALIZE_ARGS*
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p11 import P11, ffi

POINTED = 4096  # every pointer field points at least this many bytes
HUGE_LIMIT = 1 << 16  # declared lengths above this are not backed by a buffer of that size


def send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj)
    os.write(fd, struct.pack("<Q", len(data)) + data)


def _read_exact(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def recv(fd: int) -> Any:
    (n,) = struct.unpack("<Q", _read_exact(fd, 8))
    return pickle.loads(_read_exact(fd, n))


_CREATEMUTEX = ffi.callback("CK_RV(CK_VOID_PTR_PTR)", lambda pp: 0)
_MUTEXFN = ffi.callback("CK_RV(CK_VOID_PTR)", lambda p: 0)


class Marshal:
    """Turns tagged args into C values and reads the outputs back after the call."""

    def __init__(self) -> None:
        self.keep: list[Any] = []
        self.outs: list[tuple[str, Any, Any]] = []

    def arg(self, a: Any) -> Any:
        if isinstance(a, int):
            return a
        tag = a[0]
        if tag == "null":
            return ffi.NULL
        if tag == "bytes":
            buf = ffi.new("unsigned char[]", max(1, len(a[1])))
            ffi.memmove(buf, a[1], len(a[1]))
            self.keep.append(buf)
            return buf
        if tag == "out":
            buf = ffi.new("unsigned char[]", max(1, a[1]))
            self.outs.append(("out", buf, a[1]))
            return buf
        if tag == "ulong":
            p = ffi.new("CK_ULONG *", a[1])
            self.outs.append(("ulong", p, None))
            return p
        if tag == "struct":
            p = ffi.new(a[1] + " *")
            self.outs.append(("struct", p, a[1]))
            return p
        if tag == "handles":
            arr = ffi.new("CK_OBJECT_HANDLE[]", max(1, a[1]))
            self.outs.append(("handles", arr, a[1]))
            return arr
        if tag == "tmpl":
            return self.template(a[1])
        if tag == "mech":
            return self.mechanism(a[1], a[2])
        if tag == "pstruct":  # a message-based function's pParameter (its length is the next argument)
            return self.pstruct(a[1], a[2])
        if tag == "initargs":
            return self.initargs(*a[1:])
        raise ValueError(a)

    def template(self, items: list[tuple[int, bytes | None, int]]) -> Any:
        arr = ffi.new("CK_ATTRIBUTE[]", max(1, len(items)))
        bufs = []
        for i, (atype, value, declared) in enumerate(items):
            arr[i].type = atype
            arr[i].ulValueLen = declared
            if value is None:
                arr[i].pValue = ffi.NULL
                bufs.append(None)
                continue
            size = len(value) if declared > HUGE_LIMIT else max(len(value), declared)
            buf = ffi.new("unsigned char[]", max(1, size))
            ffi.memmove(buf, value, len(value))
            arr[i].pValue = buf
            bufs.append((buf, size))
        self.keep.append(bufs)
        self.outs.append(("tmpl", arr, bufs))
        return arr

    def mechanism(self, ckm: int, param: tuple[bytes, int] | None) -> Any:
        m = ffi.new("CK_MECHANISM *")
        m.mechanism = ckm
        if param is None:
            m.pParameter, m.ulParameterLen = ffi.NULL, 0
        elif param[0] == "pstruct":
            m.pParameter, m.ulParameterLen = self.pstruct(param[1], param[2]), ffi.sizeof(param[1])
        else:
            blob, declared = param
            buf = ffi.new("unsigned char[]", max(1, len(blob), min(declared, HUGE_LIMIT)))
            ffi.memmove(buf, blob, len(blob))
            self.keep.append(buf)
            m.pParameter, m.ulParameterLen = buf, declared
        self.keep.append(m)
        return m

    def pstruct(self, ctype: str, fields: dict[str, Any]) -> Any:
        """A parameter struct whose pointer fields point at real buffers (>= POINTED bytes)."""
        s = ffi.new(ctype + " *")
        for name, value in fields.items():
            if isinstance(value, bytes):  # a pointer field: backed by >= POINTED bytes
                buf = ffi.new("unsigned char[]", max(POINTED, len(value)))
                ffi.memmove(buf, value, len(value))
                self.keep.append(buf)
                setattr(s, name, ffi.cast(ffi.typeof(getattr(s, name)), buf))
            elif value is None:
                setattr(s, name, ffi.NULL)
            else:
                setattr(s, name, value)
        self.keep.append(s)
        return s

    def initargs(self, flags: int, n_fns: int, reserved: bool) -> Any:
        a = ffi.new("CK_C_INITIALIZE_ARGS *")
        fns = [_CREATEMUTEX, _MUTEXFN, _MUTEXFN, _MUTEXFN]
        names = ["CreateMutex", "DestroyMutex", "LockMutex", "UnlockMutex"]
        for name, fn in list(zip(names, fns))[:n_fns]:
            setattr(a, name, fn)
        a.flags = flags
        if reserved:
            r = ffi.new("char[]", 8)
            self.keep.append(r)
            a.pReserved = r
        self.keep.append(a)
        return a

    def results(self) -> list[Any]:
        out: list[Any] = []
        for tag, p, extra in self.outs:
            if tag == "out":
                out.append(ffi.buffer(p, extra)[:])
            elif tag == "ulong":
                out.append(int(p[0]))
            elif tag == "struct":
                out.append(ffi.buffer(p)[:])
            elif tag == "handles":
                out.append([int(p[i]) for i in range(extra)])
            elif tag == "tmpl":
                items = []
                for i, b in enumerate(extra):
                    n = int(p[i].ulValueLen)
                    content = None if b is None else ffi.buffer(b[0], min(n, b[1]))[:]
                    items.append((int(p[i].type), n, content))
                out.append(items)
        return out


def main() -> None:
    rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
    p11 = P11()
    fl = p11.fl
    while True:
        try:
            fn, args = recv(rfd)
        except EOFError:
            return
        if fn == "conf":
            os.environ["CRYPTOKI_SHIM_CONF"] = args[0]
            send(wfd, (0, []))
            continue
        m = Marshal()
        c_args = [m.arg(a) for a in args]
        rv = int(getattr(fl, fn)(*c_args))
        send(wfd, (rv, m.results()))


if __name__ == "__main__":
    main()
