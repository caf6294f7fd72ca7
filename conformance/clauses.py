"""PKCS#11 3.0 behaviours checked through the C ABI, one row per clause.

Run as ``python -m conformance.clauses MODULE LABEL PIN SO_PIN OUT.json`` in a child process
(the module is dlopen'ed there with cffi in ABI mode, through ``C_GetFunctionList`` so any
2.40/3.0 module answers), so each module under test gets a fresh process. Each row names the
section of the PKCS#11 3.0 base specification whose rule it checks; constants come from our
generated ``cryptoki_shim.spec`` (the OASIS header values).
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import cffi

from cryptoki_shim import spec as S

ROOT = Path(__file__).resolve().parent.parent
ffi = cffi.FFI()
ffi.cdef((ROOT / "native" / "cdef.h").read_text())
ffi.cdef("CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);")

UNAVAILABLE = S.CK_UNAVAILABLE_INFORMATION


class CKR(Exception):
    def __init__(self, rv: int, fn: str) -> None:
        super().__init__(f"{fn} -> {S.ckr_name(rv)}")
        self.rv = rv


def ulong(v: int) -> bytes:
    return struct.pack("=L" if ffi.sizeof("CK_ULONG") == 4 else "=Q", v)


def boolean(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


class Client:
    """Minimal calls over the function list; ``rv(...)`` returns the raw CK_RV."""

    def __init__(self, module: str) -> None:
        self.lib = ffi.dlopen(module)
        pp = ffi.new("CK_FUNCTION_LIST_PTR *")
        assert self.lib.C_GetFunctionList(pp) == 0
        self.fl = pp[0]
        self.keep: list[Any] = []

    def rv(self, name: str, *args: Any) -> int:
        return int(getattr(self.fl, name)(*args))

    def ok(self, name: str, *args: Any) -> None:
        rv = self.rv(name, *args)
        if rv != 0:
            raise CKR(rv, name)

    def template(self, attrs: list[tuple[int, bytes]]) -> Any:
        arr = ffi.new("CK_ATTRIBUTE[]", max(1, len(attrs)))
        for i, (t, v) in enumerate(attrs):
            buf = ffi.new("unsigned char[]", v) if v else ffi.NULL
            self.keep.append(buf)
            arr[i].type, arr[i].pValue, arr[i].ulValueLen = t, buf, len(v)
        return arr

    def mech(self, m: int, param: bytes = b"") -> Any:
        p = ffi.new("CK_MECHANISM *")
        p.mechanism = m
        if param:
            buf = ffi.new("unsigned char[]", param)
            self.keep.append(buf)
            p.pParameter, p.ulParameterLen = buf, len(param)
        return p

    def slot(self, label: str) -> int:
        n = ffi.new("CK_ULONG *")
        self.ok("C_GetSlotList", 1, ffi.NULL, n)
        arr = ffi.new("CK_SLOT_ID[]", max(1, n[0]))
        self.ok("C_GetSlotList", 1, arr, n)
        for i in range(n[0]):
            info = ffi.new("CK_TOKEN_INFO *")
            self.ok("C_GetTokenInfo", arr[i], info)
            if bytes(ffi.buffer(info.label, 32)).decode().rstrip() == label:
                return arr[i]
        raise AssertionError(f"token {label!r} not found")

    def open(self, slot: int, rw: bool = True) -> int:
        h = ffi.new("CK_SESSION_HANDLE *")
        self.ok("C_OpenSession", slot, S.CKF_SERIAL_SESSION | (S.CKF_RW_SESSION if rw else 0), ffi.NULL, ffi.NULL, h)
        return h[0]

    def login(self, s: int, pin: str, user: int = S.CKU_USER) -> int:
        return self.rv("C_Login", s, user, pin.encode(), len(pin))

    def create(self, s: int, attrs: list[tuple[int, bytes]]) -> int:
        h = ffi.new("CK_OBJECT_HANDLE *")
        self.ok("C_CreateObject", s, self.template(attrs), len(attrs), h)
        return h[0]

    def find(self, s: int, attrs: list[tuple[int, bytes]]) -> list[int]:
        self.ok("C_FindObjectsInit", s, self.template(attrs), len(attrs))
        arr, n = ffi.new("CK_OBJECT_HANDLE[]", 64), ffi.new("CK_ULONG *")
        self.ok("C_FindObjects", s, arr, 64, n)
        self.ok("C_FindObjectsFinal", s)
        return [arr[i] for i in range(n[0])]

    def ec_keypair(self, s: int, token: bool = False) -> tuple[int, int]:
        params = bytes.fromhex("06082a8648ce3d030107")  # P-256 OID (§2.3.3 CKA_EC_PARAMS)
        pub = [(S.CKA_EC_PARAMS, params), (S.CKA_VERIFY, boolean(True)), (S.CKA_TOKEN, boolean(token))]
        prv = [(S.CKA_SIGN, boolean(True)), (S.CKA_SENSITIVE, boolean(True)), (S.CKA_TOKEN, boolean(token)),
               (S.CKA_PRIVATE, boolean(True))]
        hp, hk = ffi.new("CK_OBJECT_HANDLE *"), ffi.new("CK_OBJECT_HANDLE *")
        self.ok("C_GenerateKeyPair", s, self.mech(S.CKM_EC_KEY_PAIR_GEN), self.template(pub), len(pub),
                self.template(prv), len(prv), hp, hk)
        return hp[0], hk[0]


def expect(got: int, want: int, what: str) -> None:
    assert got == want, f"{what}: expected {S.ckr_name(want)}, got {S.ckr_name(got)}"


class Env:
    def __init__(self, c: Client, label: str, pin: str, so_pin: str) -> None:
        self.c, self.pin, self.so_pin = c, pin, so_pin
        self.slot = c.slot(label)


ROWS: list[tuple[str, str, Callable[[Env], None]]] = []


def clause(name: str, section: str):
    def wrap(fn: Callable[[Env], None]) -> Callable[[Env], None]:
        ROWS.append((name, section, fn))
        return fn
    return wrap


@clause("C_Initialize twice -> CKR_CRYPTOKI_ALREADY_INITIALIZED", "§5.4 C_Initialize")
def init_twice(e: Env) -> None:
    expect(e.c.rv("C_Initialize", ffi.NULL), S.CKR_CRYPTOKI_ALREADY_INITIALIZED, "second C_Initialize")


@clause("C_GetSlotList: NULL list gives the count; short buffer -> CKR_BUFFER_TOO_SMALL with the count",
        "§5.2 (output buffers), §5.5 C_GetSlotList")
def slot_list_buffers(e: Env) -> None:
    n = ffi.new("CK_ULONG *")
    e.c.ok("C_GetSlotList", 0, ffi.NULL, n)
    total = n[0]
    assert total >= 1
    n[0] = 0
    arr = ffi.new("CK_SLOT_ID[]", 1)
    expect(e.c.rv("C_GetSlotList", 0, arr, n), S.CKR_BUFFER_TOO_SMALL, "zero-length list")
    assert n[0] == total, f"count after BUFFER_TOO_SMALL is {n[0]}, not {total}"


@clause("C_GetTokenInfo on an unknown slot -> CKR_SLOT_ID_INVALID", "§5.5 C_GetTokenInfo")
def bad_slot(e: Env) -> None:
    info = ffi.new("CK_TOKEN_INFO *")
    expect(e.c.rv("C_GetTokenInfo", 0x7FFFFFF0, info), S.CKR_SLOT_ID_INVALID, "C_GetTokenInfo")


@clause("C_OpenSession without CKF_SERIAL_SESSION -> CKR_SESSION_PARALLEL_NOT_SUPPORTED", "§5.6 C_OpenSession")
def not_serial(e: Env) -> None:
    h = ffi.new("CK_SESSION_HANDLE *")
    expect(e.c.rv("C_OpenSession", e.slot, 0, ffi.NULL, ffi.NULL, h), S.CKR_SESSION_PARALLEL_NOT_SUPPORTED, "flags=0")


@clause("an unknown session handle -> CKR_SESSION_HANDLE_INVALID", "§5.1 common return values")
def bad_session(e: Env) -> None:
    info = ffi.new("CK_SESSION_INFO *")
    expect(e.c.rv("C_GetSessionInfo", 0x7FFFFF01, info), S.CKR_SESSION_HANDLE_INVALID, "C_GetSessionInfo")


@clause("C_Login with a wrong PIN -> CKR_PIN_INCORRECT; the right PIN then works", "§5.6 C_Login")
def wrong_pin(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, "0000"), S.CKR_PIN_INCORRECT, "wrong PIN")
    expect(e.c.login(s, e.pin), S.CKR_OK, "right PIN")
    expect(e.c.login(s, e.pin), S.CKR_USER_ALREADY_LOGGED_IN, "second C_Login")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("SO login while a read-only session exists -> CKR_SESSION_READ_ONLY_EXISTS", "§5.6 C_Login")
def so_with_ro(e: Env) -> None:
    ro, rw = e.c.open(e.slot, rw=False), e.c.open(e.slot)
    expect(e.c.login(rw, e.so_pin, S.CKU_SO), S.CKR_SESSION_READ_ONLY_EXISTS, "SO login")
    e.c.ok("C_CloseAllSessions", e.slot)
    del ro


@clause("closing the last session logs the user out", "§5.6 C_CloseSession / §5.6 session states")
def logout_on_close(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    e.c.ok("C_CloseAllSessions", e.slot)
    s = e.c.open(e.slot)
    info = ffi.new("CK_SESSION_INFO *")
    e.c.ok("C_GetSessionInfo", s, info)
    assert info.state == S.CKS_RW_PUBLIC_SESSION, f"state {info.state} after reopening"
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("creating a token object in a read-only session -> CKR_SESSION_READ_ONLY", "§5.7 C_CreateObject")
def ro_create(e: Env) -> None:
    s = e.c.open(e.slot, rw=False)
    attrs = [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_TOKEN, boolean(True)), (S.CKA_VALUE, b"x")]
    h = ffi.new("CK_OBJECT_HANDLE *")
    expect(e.c.rv("C_CreateObject", s, e.c.template(attrs), len(attrs), h), S.CKR_SESSION_READ_ONLY, "C_CreateObject")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("a template without CKA_CLASS -> CKR_TEMPLATE_INCOMPLETE", "§5.7 C_CreateObject, §4.2 footnote 1")
def incomplete(e: Env) -> None:
    s = e.c.open(e.slot)
    attrs = [(S.CKA_VALUE, b"x")]
    h = ffi.new("CK_OBJECT_HANDLE *")
    expect(e.c.rv("C_CreateObject", s, e.c.template(attrs), 1, h), S.CKR_TEMPLATE_INCOMPLETE, "C_CreateObject")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("private objects are invisible before login", "§4.4 CKA_PRIVATE, §5.7 C_FindObjectsInit")
def private_hidden(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    e.c.create(s, [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_TOKEN, boolean(True)), (S.CKA_PRIVATE, boolean(True)),
                   (S.CKA_LABEL, b"clause-private"), (S.CKA_VALUE, b"secret")])
    e.c.ok("C_Logout", s)
    assert e.c.find(s, [(S.CKA_LABEL, b"clause-private")]) == [], "found before login"
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    assert len(e.c.find(s, [(S.CKA_LABEL, b"clause-private")])) == 1, "not found after login"
    e.c.ok("C_CloseAllSessions", e.slot)


def _attr_query(e: Env, s: int, h: int, types: list[int], sizes: list[int]) -> tuple[int, list[int]]:
    arr = ffi.new("CK_ATTRIBUTE[]", len(types))
    for i, (t, n) in enumerate(zip(types, sizes)):
        buf = ffi.new("unsigned char[]", n) if n else ffi.NULL
        e.c.keep.append(buf)
        arr[i].type, arr[i].pValue, arr[i].ulValueLen = t, buf, n
    rv = e.c.rv("C_GetAttributeValue", s, h, arr, len(types))
    return rv, [arr[i].ulValueLen for i in range(len(types))]


@clause("C_GetAttributeValue: a sensitive value -> CKR_ATTRIBUTE_SENSITIVE, its length CK_UNAVAILABLE_INFORMATION, "
        "the other attributes still returned", "§5.7 C_GetAttributeValue (1)-(5)")
def attr_sensitive(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    _, prv = e.c.ec_keypair(s)
    rv, lens = _attr_query(e, s, prv, [S.CKA_VALUE, S.CKA_KEY_TYPE], [64, ffi.sizeof("CK_ULONG")])
    expect(rv, S.CKR_ATTRIBUTE_SENSITIVE, "CKA_VALUE of a sensitive key")
    assert lens[0] == UNAVAILABLE, f"ulValueLen {lens[0]:#x}"
    assert lens[1] == ffi.sizeof("CK_ULONG"), "the readable attribute was not returned"
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_GetAttributeValue: an unknown type -> CKR_ATTRIBUTE_TYPE_INVALID with CK_UNAVAILABLE_INFORMATION",
        "§5.7 C_GetAttributeValue")
def attr_invalid(e: Env) -> None:
    s = e.c.open(e.slot)
    h = e.c.create(s, [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_PRIVATE, boolean(False)), (S.CKA_VALUE, b"abc")])
    rv, lens = _attr_query(e, s, h, [0x7FFF0001, S.CKA_VALUE], [8, 3])
    expect(rv, S.CKR_ATTRIBUTE_TYPE_INVALID, "unknown attribute")
    assert lens[0] == UNAVAILABLE and lens[1] == 3, f"lengths {lens}"
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_GetAttributeValue: a short buffer -> CKR_BUFFER_TOO_SMALL with CK_UNAVAILABLE_INFORMATION; "
        "NULL pValue gives the length", "§5.7 C_GetAttributeValue")
def attr_small(e: Env) -> None:
    s = e.c.open(e.slot)
    h = e.c.create(s, [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_PRIVATE, boolean(False)), (S.CKA_VALUE, b"abcdef")])
    rv, lens = _attr_query(e, s, h, [S.CKA_VALUE], [0])
    expect(rv, S.CKR_OK, "length query")
    assert lens[0] == 6, f"length {lens[0]}"
    rv, lens = _attr_query(e, s, h, [S.CKA_VALUE], [2])
    expect(rv, S.CKR_BUFFER_TOO_SMALL, "short buffer")
    assert lens[0] == UNAVAILABLE, f"ulValueLen {lens[0]:#x}"
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("CKA_CLASS cannot be changed -> CKR_ATTRIBUTE_READ_ONLY", "§4.2 table 10 footnote, §5.7 C_SetAttributeValue")
def class_read_only(e: Env) -> None:
    s = e.c.open(e.slot)
    h = e.c.create(s, [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_PRIVATE, boolean(False)), (S.CKA_VALUE, b"v")])
    t = e.c.template([(S.CKA_CLASS, ulong(S.CKO_SECRET_KEY))])
    expect(e.c.rv("C_SetAttributeValue", s, h, t, 1), S.CKR_ATTRIBUTE_READ_ONLY, "set CKA_CLASS")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("CKA_SENSITIVE cannot go back to FALSE -> CKR_ATTRIBUTE_READ_ONLY", "§4.9 table (footnote 10: only to TRUE)")
def sensitive_one_way(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    _, prv = e.c.ec_keypair(s)
    t = e.c.template([(S.CKA_SENSITIVE, boolean(False))])
    expect(e.c.rv("C_SetAttributeValue", s, prv, t, 1), S.CKR_ATTRIBUTE_READ_ONLY, "CKA_SENSITIVE=FALSE")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("generated private keys: CKA_LOCAL, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE as the spec sets them",
        "§4.9 private key attributes")
def generated_flags(e: Env) -> None:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    _, prv = e.c.ec_keypair(s)
    for attr, want in ((S.CKA_LOCAL, 1), (S.CKA_ALWAYS_SENSITIVE, 1)):
        buf = ffi.new("CK_BBOOL *")
        a = ffi.new("CK_ATTRIBUTE *")
        a.type, a.pValue, a.ulValueLen = attr, buf, 1
        e.c.ok("C_GetAttributeValue", s, prv, a, 1)
        assert buf[0] == want, f"{S.cka_name(attr) if hasattr(S, 'cka_name') else hex(attr)} = {buf[0]}"
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_DestroyObject: the handle is then invalid -> CKR_OBJECT_HANDLE_INVALID", "§5.7 C_DestroyObject")
def destroyed(e: Env) -> None:
    s = e.c.open(e.slot)
    h = e.c.create(s, [(S.CKA_CLASS, ulong(S.CKO_DATA)), (S.CKA_PRIVATE, boolean(False)), (S.CKA_VALUE, b"v")])
    e.c.ok("C_DestroyObject", s, h)
    rv, _ = _attr_query(e, s, h, [S.CKA_VALUE], [0])
    expect(rv, S.CKR_OBJECT_HANDLE_INVALID, "C_GetAttributeValue on a destroyed object")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_FindObjectsInit while a search is active -> CKR_OPERATION_ACTIVE", "§5.7 C_FindObjectsInit")
def find_active(e: Env) -> None:
    s = e.c.open(e.slot)
    e.c.ok("C_FindObjectsInit", s, ffi.NULL, 0)
    expect(e.c.rv("C_FindObjectsInit", s, ffi.NULL, 0), S.CKR_OPERATION_ACTIVE, "second C_FindObjectsInit")
    e.c.ok("C_FindObjectsFinal", s)
    e.c.ok("C_CloseAllSessions", e.slot)


def _sign_setup(e: Env) -> tuple[int, int, int]:
    s = e.c.open(e.slot)
    expect(e.c.login(s, e.pin), S.CKR_OK, "login")
    pub, prv = e.c.ec_keypair(s)
    return s, pub, prv


@clause("C_Sign: NULL buffer gives the length, a short buffer -> CKR_BUFFER_TOO_SMALL and the operation stays "
        "active, then the signature (verified by pyca)", "§5.2 output buffers, §5.12 C_Sign")
def sign_buffers(e: Env) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    from cryptography.hazmat.primitives import hashes
    s, pub, prv = _sign_setup(e)
    digest = hashlib.sha256(b"clause").digest()
    e.c.ok("C_SignInit", s, e.c.mech(S.CKM_ECDSA), prv)
    n = ffi.new("CK_ULONG *")
    e.c.ok("C_Sign", s, digest, 32, ffi.NULL, n)
    assert n[0] >= 64, f"length {n[0]}"
    n[0] = 10
    out = ffi.new("unsigned char[]", 128)
    expect(e.c.rv("C_Sign", s, digest, 32, out, n), S.CKR_BUFFER_TOO_SMALL, "short buffer")
    n[0] = 128
    e.c.ok("C_Sign", s, digest, 32, out, n)
    sig = bytes(ffi.buffer(out, n[0]))
    point = ffi.new("unsigned char[]", 128)
    a = ffi.new("CK_ATTRIBUTE *")
    a.type, a.pValue, a.ulValueLen = S.CKA_EC_POINT, point, 128
    e.c.ok("C_GetAttributeValue", s, pub, a, 1)
    raw = bytes(ffi.buffer(point, a.ulValueLen))
    raw = raw[2:] if raw[0] == 0x04 and raw[1] == len(raw) - 2 else raw   # DER OCTET STRING (§2.3.3)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    expect(e.c.rv("C_Sign", s, digest, 32, out, n), S.CKR_OPERATION_NOT_INITIALIZED, "C_Sign after completion")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_SignInit while signing -> CKR_OPERATION_ACTIVE", "§5.12 C_SignInit")
def sign_active(e: Env) -> None:
    s, _, prv = _sign_setup(e)
    e.c.ok("C_SignInit", s, e.c.mech(S.CKM_ECDSA), prv)
    expect(e.c.rv("C_SignInit", s, e.c.mech(S.CKM_ECDSA), prv), S.CKR_OPERATION_ACTIVE, "second C_SignInit")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("an unknown mechanism -> CKR_MECHANISM_INVALID", "§5.12 C_SignInit")
def mech_invalid(e: Env) -> None:
    s, _, prv = _sign_setup(e)
    expect(e.c.rv("C_SignInit", s, e.c.mech(0x7FFFFFF0), prv), S.CKR_MECHANISM_INVALID, "C_SignInit")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("a key of the wrong type -> CKR_KEY_TYPE_INCONSISTENT", "§5.12 C_SignInit")
def key_type(e: Env) -> None:
    s, _, prv = _sign_setup(e)
    expect(e.c.rv("C_SignInit", s, e.c.mech(S.CKM_SHA256_RSA_PKCS), prv), S.CKR_KEY_TYPE_INCONSISTENT, "RSA mech, EC key")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_Verify with a wrong signature -> CKR_SIGNATURE_INVALID and the operation ends", "§5.13 C_Verify")
def verify_invalid(e: Env) -> None:
    s, pub, _ = _sign_setup(e)
    digest = hashlib.sha256(b"x").digest()
    e.c.ok("C_VerifyInit", s, e.c.mech(S.CKM_ECDSA), pub)
    expect(e.c.rv("C_Verify", s, digest, 32, bytes(64), 64), S.CKR_SIGNATURE_INVALID, "zero signature")
    expect(e.c.rv("C_Verify", s, digest, 32, bytes(64), 64), S.CKR_OPERATION_NOT_INITIALIZED, "after the failure")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_Digest SHA-256 with the length query equals hashlib", "§5.11 C_Digest, §5.2 output buffers")
def digest(e: Env) -> None:
    s = e.c.open(e.slot)
    data = b"abc" * 100
    e.c.ok("C_DigestInit", s, e.c.mech(S.CKM_SHA256))
    n = ffi.new("CK_ULONG *")
    e.c.ok("C_Digest", s, data, len(data), ffi.NULL, n)
    assert n[0] == 32
    out = ffi.new("unsigned char[]", 32)
    e.c.ok("C_Digest", s, data, len(data), out, n)
    assert bytes(ffi.buffer(out, 32)) == hashlib.sha256(data).digest()
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_Sign without C_SignInit -> CKR_OPERATION_NOT_INITIALIZED", "§5.12 C_Sign")
def sign_uninit(e: Env) -> None:
    s = e.c.open(e.slot)
    n = ffi.new("CK_ULONG *")
    expect(e.c.rv("C_Sign", s, b"x", 1, ffi.NULL, n), S.CKR_OPERATION_NOT_INITIALIZED, "C_Sign")
    e.c.ok("C_CloseAllSessions", e.slot)


@clause("C_Finalize with a non-NULL argument -> CKR_ARGUMENTS_BAD; then calls -> CKR_CRYPTOKI_NOT_INITIALIZED",
        "§5.4 C_Finalize")
def finalize(e: Env) -> None:
    expect(e.c.rv("C_Finalize", ffi.cast("void *", 1)), S.CKR_ARGUMENTS_BAD, "C_Finalize(non-NULL)")
    e.c.ok("C_Finalize", ffi.NULL)
    info = ffi.new("CK_INFO *")
    expect(e.c.rv("C_GetInfo", info), S.CKR_CRYPTOKI_NOT_INITIALIZED, "C_GetInfo after C_Finalize")


def main(argv: list[str]) -> int:
    module, label, pin, so_pin, out = argv
    c = Client(module)
    results = []
    info = ffi.new("CK_INFO *")
    rv = c.rv("C_GetInfo", info)
    results.append(("C_GetInfo before C_Initialize -> CKR_CRYPTOKI_NOT_INITIALIZED", "§5.4 / §5.1",
                    "passed" if rv == S.CKR_CRYPTOKI_NOT_INITIALIZED else "failed", f"got {S.ckr_name(rv)}"))
    c.ok("C_Initialize", ffi.NULL)
    e = Env(c, label, pin, so_pin)
    for name, section, fn in ROWS:
        try:
            fn(e)
            results.append((name, section, "passed", ""))
        except AssertionError as exc:
            results.append((name, section, "failed", str(exc)))
        except Exception as exc:
            results.append((name, section, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-600:]}"))
        finally:
            c.rv("C_CloseAllSessions", e.slot)
    Path(out).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
