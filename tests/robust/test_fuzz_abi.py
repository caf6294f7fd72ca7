"""Hypothesis drives the built library through its C ABI in a child process.

A ``RuleBasedStateMachine`` generates sequences of PKCS#11 calls — valid and invalid
templates, wrong PINs, random handles, mechanisms with garbage parameter blobs, output
buffers that are NULL, short or large — and sends each to ``abi_worker.py``. After every
step it checks:

* the host process is alive (a crash or a hang fails with the reproducing call sequence);
* every return value is one the spec allows for that function (``rv_table``), and never
  CKR_GENERAL_ERROR (our code for an unexpected exception);
* the module agrees with a small model: which sessions exist and in which state, which
  objects a C_FindObjects over everything returns (private ones only for the user);
* a key created sensitive or non-extractable never shows its value in any output;
* lengths written back follow the buffer protocol (§5.2; C_GetAttributeValue's rules).

Profiles: the normal run is bounded (``FUZZ_EXAMPLES``); ``CRYPTOKI_SHIM_FUZZ=long``
(``make fuzz``) runs until at least 100,000 ABI calls and prints the figures.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from child import Child
from p11 import (
    SO_PIN,
    USER_PIN,
    ffi,
    write_config,
)
from rv_table import allowed

from cryptoki_shim import spec
from cryptoki_shim.mechanisms import registry

LONG = os.environ.get("CRYPTOKI_SHIM_FUZZ") == "long"
LONG_CALLS = int(os.environ.get("CRYPTOKI_SHIM_FUZZ_CALLS", "100000"))
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000" if LONG else "500"))
FUZZ_STEPS = 60 if LONG else 40

OK = 0
R = {n[4:]: int(getattr(spec, n)) for n in dir(spec) if n.startswith("CKR_")}
NOT_OK = set(R.values()) - {OK}
UNAVAILABLE = int(spec.CK_UNAVAILABLE_INFORMATION)
CKA = spec
CKF_FIND_OBJECTS = 0x40  # C_SessionCancel flags (3.0 §5.6)
SERIAL, RW = int(spec.CKF_SERIAL_SESSION), int(spec.CKF_RW_SESSION)
P256 = bytes.fromhex("06082a8648ce3d030107")
#: attributes whose value must never come out of a sensitive / non-extractable key
SECRET_ATTRS = {int(CKA.CKA_VALUE), int(CKA.CKA_PRIVATE_EXPONENT), int(CKA.CKA_PRIME_1), int(CKA.CKA_PRIME_2),
                int(CKA.CKA_EXPONENT_1), int(CKA.CKA_EXPONENT_2), int(CKA.CKA_COEFFICIENT)}

STATS = {"calls": 0, "crashes": 0, "unexpected": 0, "examples": 0}
_CHILD: Child | None = None


def child() -> Child:
    global _CHILD
    if _CHILD is None:
        _CHILD = Child(timeout=120)
    return _CHILD


def u(v: int) -> bytes:
    return struct.pack("=Q", v)


def b(v: bool) -> bytes:
    return b"\x01" if v else b"\x00"


# ------------------------------------------------------------------ generated inputs

ulongs = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 0x10, 0x1F, 0x80000000, 2**32, 2**63, 2**64 - 1]),
                   st.integers(0, 2**64 - 1))
handles = st.one_of(st.sampled_from([0, 1, 2, 2**32 - 1, 2**64 - 1]), st.integers(0, 2**64 - 1))
blobs = st.binary(max_size=80)
datas = st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"\x00" * 16, b"A" * 1000]))


@st.composite
def attribute_items(draw: st.DrawFn, base: dict[int, bytes]) -> list[tuple[int, bytes | None, int]]:
    """A template derived from ``base`` with mutations: drops, duplicates, wrong lengths,
    NULL values, huge declared lengths, unknown types."""
    items = [(t, v, len(v)) for t, v in base.items()]
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["drop", "dup", "dupdiff", "len", "null", "huge", "unknown", "garbage", "none"]))
        if how == "unknown":
            items.append((draw(ulongs), draw(blobs), 0))
            items[-1] = (items[-1][0], items[-1][1], len(items[-1][1]))
            continue
        if not items or how == "none":
            continue
        i = draw(st.integers(0, len(items) - 1))
        t, v, n = items[i]
        if how == "drop":
            items.pop(i)
        elif how == "dup":
            items.append((t, v, n))
        elif how == "dupdiff":
            other = draw(blobs)
            items.append((t, other, len(other)))
        elif how == "len" and v is not None:
            items[i] = (t, v, draw(st.integers(0, len(v) + 8)))
        elif how == "null":
            items[i] = (t, None, draw(st.sampled_from([0, 1, 8, 2**64 - 1])))
        elif how == "huge" and v is not None:
            items[i] = (t, v, draw(st.sampled_from([2**24 + 1, 2**32, 2**63, 2**64 - 2, 2**64 - 1])))
        elif how == "garbage":
            items[i] = (t, draw(blobs), 0)
            items[i] = (t, items[i][1], len(items[i][1]))
    if draw(st.booleans()):
        items = draw(st.permutations(items))
    return list(items)


@st.composite
def object_templates(draw: st.DrawFn) -> tuple[list[tuple[int, bytes | None, int]], bytes | None]:
    """(template, the secret value if the template asks for a sensitive or unextractable key)."""
    token, private = draw(st.booleans()), draw(st.booleans())
    kind = draw(st.sampled_from(["data", "aes", "generic", "raw"]))
    base: dict[int, bytes] = {int(CKA.CKA_TOKEN): b(token), int(CKA.CKA_PRIVATE): b(private)}
    secret = None
    if kind == "data":
        base |= {int(CKA.CKA_CLASS): u(int(spec.CKO_DATA)), int(CKA.CKA_LABEL): draw(st.binary(max_size=12)),
                 int(CKA.CKA_VALUE): draw(blobs)}
    elif kind in ("aes", "generic"):
        value = draw(st.binary(min_size=16, max_size=32)) if kind == "generic" else \
            draw(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)))
        sensitive, extractable = draw(st.booleans()), draw(st.booleans())
        base |= {int(CKA.CKA_CLASS): u(int(spec.CKO_SECRET_KEY)),
                 int(CKA.CKA_KEY_TYPE): u(int(spec.CKK_AES if kind == "aes" else spec.CKK_GENERIC_SECRET)),
                 int(CKA.CKA_VALUE): value, int(CKA.CKA_SENSITIVE): b(sensitive),
                 int(CKA.CKA_EXTRACTABLE): b(extractable)}
        for a in (CKA.CKA_SIGN, CKA.CKA_VERIFY, CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT):
            base[int(a)] = b(True)
        if sensitive or not extractable:
            secret = value
    else:
        base[int(CKA.CKA_CLASS)] = u(draw(ulongs))
    items = draw(attribute_items(base))
    if secret is not None and any(v is not None and v != b"\x01" and t == int(CKA.CKA_SENSITIVE) for t, v, _ in items) \
            and not any(t == int(CKA.CKA_EXTRACTABLE) and v == b"\x00" for t, v, _ in items):
        secret = None  # a mutation may have turned sensitivity off: only track certain secrets
    return items, secret


# mechanism parameters: struct layouts (pointer fields get real buffers, never garbage)
_POINTER_STRUCTS = {
    "RsaPkcsOaepParams": ("CK_RSA_PKCS_OAEP_PARAMS", {"hashAlg": "u", "mgf": "u", "source": "u",
                                                      "pSourceData": ("p", "ulSourceDataLen")}),
    "EddsaParams": ("CK_EDDSA_PARAMS", {"phFlag": "bool", "pContextData": ("p", "ulContextDataLen")}),
    "EcdhDeriveParams": ("CK_ECDH1_DERIVE_PARAMS", {"kdf": "u", "pSharedData": ("p", "ulSharedDataLen"),
                                                     "pPublicData": ("p", "ulPublicDataLen")}),
    "GcmParams": ("CK_GCM_PARAMS", {"pIv": ("p", "ulIvLen"), "ulIvBits": "u", "pAAD": ("p", "ulAADLen"),
                                    "ulTagBits": "u"}),
    "CcmParams": ("CK_CCM_PARAMS", {"ulDataLen": "u", "pNonce": ("p", "ulNonceLen"), "pAAD": ("p", "ulAADLen"),
                                    "ulMACLen": "u"}),
    "HkdfParams": ("CK_HKDF_PARAMS", {"bExtract": "bool", "bExpand": "bool", "prfHashMechanism": "u",
                                      "ulSaltType": "u", "pSalt": ("p", "ulSaltLen"), "hSaltKey": "u",
                                      "pInfo": ("p", "ulInfoLen")}),
    "KeyDerivationStringData": ("CK_KEY_DERIVATION_STRING_DATA", {"pData": ("p", "ulLen")}),
    "AesCbcEncryptDataParams": ("CK_AES_CBC_ENCRYPT_DATA_PARAMS", {"pData": ("p", "length")}),
    "DesCbcEncryptDataParams": ("CK_DES_CBC_ENCRYPT_DATA_PARAMS", {"pData": ("p", "length")}),
    "ChachaPolyParams": ("CK_SALSA20_CHACHA20_POLY1305_PARAMS", {"pNonce": ("p", "ulNonceLen"),
                                                                 "pAAD": ("p", "ulAADLen")}),
}
_STRUCT_SIZES = sorted({ffi.sizeof(c) for c, _ in _POINTER_STRUCTS.values()} |
                       {ffi.sizeof("CK_SP800_108_KDF_PARAMS"), ffi.sizeof("CK_SP800_108_FEEDBACK_KDF_PARAMS"),
                        ffi.sizeof("CK_PKCS5_PBKD2_PARAMS2")})
small_ulongs = st.one_of(st.sampled_from([0, 1, 8, 12, 16, 32, 64, 96, 128, 0x250, 0x251, 2**64 - 1]),
                         st.integers(0, 2**64 - 1))


@st.composite
def mechanism_params(draw: st.DrawFn, kind: object) -> object:
    name = getattr(kind, "__name__", repr(kind))
    how = draw(st.sampled_from(["none", "blob", "struct", "struct"]))
    if how == "none":
        return None
    if how == "struct" and name in _POINTER_STRUCTS:
        ctype, layout = _POINTER_STRUCTS[name]
        fields: dict[str, object] = {}
        for fname, ftype in layout.items():
            if ftype == "u":
                fields[fname] = draw(small_ulongs)
            elif ftype == "bool":
                fields[fname] = draw(st.integers(0, 255))
            else:
                data = draw(st.one_of(st.none(), st.binary(max_size=48)))
                fields[fname] = data
                # a pointer field is backed by >= 4096 bytes (worker), so any length <= 4096 is in bounds;
                # a non-zero length with NULL must be refused
                fields[ftype[1]] = draw(st.one_of(st.just(len(data or b"")), st.integers(0, 4096)))
        return ("pstruct", ctype, fields)
    blob = draw(blobs)
    declared = draw(st.one_of(st.just(len(blob)), st.sampled_from([0, 8, 16, 24] + _STRUCT_SIZES)))
    if name in _POINTER_STRUCTS or name in ("Sp800108Params", "Pbkd2Params"):
        # same size as the struct would make the reader follow garbage pointers (a caller bug in C)
        assume(declared not in _STRUCT_SIZES)
    return (blob, declared)


MECHS = [e for e in registry.all_entries()]
OP_KINDS = ["Sign", "Verify", "Encrypt", "Decrypt", "Digest"]
MESSAGE_KINDS = ["Encrypt", "Decrypt", "Sign", "Verify"]
AEAD_MECHS = [registry.lookup(int(m)) for m in (spec.CKM_AES_GCM, spec.CKM_AES_CCM, spec.CKM_CHACHA20_POLY1305)]
DUAL_FNS = ["C_DigestEncryptUpdate", "C_DecryptDigestUpdate", "C_SignEncryptUpdate", "C_DecryptVerifyUpdate"]
END_OF_MESSAGE = int(spec.CKF_END_OF_MESSAGE)
_MESSAGE_STRUCTS = ["CK_GCM_MESSAGE_PARAMS", "CK_CCM_MESSAGE_PARAMS", "CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS"]
_fixed_bits = st.sampled_from([0, 0, 8, 32, 96, 97, 2**64 - 1])
_generators = st.sampled_from([0, 0, 1, 2, 3, 4, 99])


@st.composite
def _pointer(draw: st.DrawFn) -> bytes | None:
    """A pointer field: NULL or a buffer (the worker backs it with >= 4096 bytes)."""
    return draw(st.one_of(st.none(), st.binary(min_size=0, max_size=32)))


@st.composite
def message_params(draw: st.DrawFn) -> tuple[tuple, int]:
    """A message-based function's (pParameter, ulParameterLen): NULL, a blob of no struct's size
    (a struct-sized blob would be followed as garbage pointers: a caller bug in C), or one of
    the three message structs with in-bounds lengths (it may not be the process's)."""
    how = draw(st.sampled_from(["null", "blob", "struct", "struct", "struct"]))
    if how == "null":
        return ("null",), draw(st.sampled_from([0, 0, 48]))
    if how == "blob":
        blob = draw(blobs)
        assume(len(blob) not in {ffi.sizeof(c) for c in _MESSAGE_STRUCTS})
        return ("bytes", blob), len(blob)
    ctype = draw(st.sampled_from(_MESSAGE_STRUCTS))
    lens = st.integers(0, 4096)
    if ctype == "CK_GCM_MESSAGE_PARAMS":
        iv = draw(_pointer())
        fields = {"pIv": iv, "ulIvLen": draw(st.one_of(st.just(len(iv or b"")), st.sampled_from([12, 16]), lens)),
                  "ulIvFixedBits": draw(_fixed_bits), "ivGenerator": draw(_generators), "pTag": draw(_pointer()),
                  "ulTagBits": draw(st.sampled_from([0, 96, 100, 128, 128, 4096 * 8]))}
    elif ctype == "CK_CCM_MESSAGE_PARAMS":
        nonce = draw(_pointer())
        fields = {"ulDataLen": draw(st.one_of(st.integers(0, 80), small_ulongs)), "pNonce": nonce,
                  "ulNonceLen": draw(st.one_of(st.just(len(nonce or b"")), st.sampled_from([7, 13]), lens)),
                  "ulNonceFixedBits": draw(_fixed_bits), "nonceGenerator": draw(_generators),
                  "pMAC": draw(_pointer()), "ulMACLen": draw(st.sampled_from([0, 4, 5, 12, 16, 4096]))}
    else:
        fields = {"pNonce": draw(_pointer()), "ulNonceLen": draw(st.sampled_from([96, 96, 12, 64, 192, 2**64 - 1])),
                  "pTag": draw(_pointer())}
    return ("pstruct", ctype, fields), ffi.sizeof(ctype)


#: the message struct of each AEAD mechanism
_MESSAGE_STRUCT_OF = {int(spec.CKM_AES_GCM): "CK_GCM_MESSAGE_PARAMS", int(spec.CKM_AES_CCM): "CK_CCM_MESSAGE_PARAMS",
                      int(spec.CKM_CHACHA20_POLY1305): "CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS"}


@st.composite
def valid_message_params(draw: st.DrawFn, ckm: int, data_len: int) -> tuple[tuple, int]:
    """A well-formed message struct for ``ckm`` (a data length for CCM), with a generator
    that may repeat an IV: the messages of a process then really run."""
    ctype = _MESSAGE_STRUCT_OF.get(ckm)
    if ctype is None:
        return ("null",), 0
    iv = draw(st.sampled_from([b"\x01" * 13, b"\x02" * 13, draw(st.binary(min_size=13, max_size=13))]))
    gen, fixed = draw(st.sampled_from([0, 1, 2, 3])), draw(st.sampled_from([0, 32]))
    if ctype == "CK_GCM_MESSAGE_PARAMS":
        fields = {"pIv": iv[:12], "ulIvLen": 12, "ulIvFixedBits": fixed, "ivGenerator": gen,
                  "pTag": draw(st.binary(min_size=16, max_size=16)), "ulTagBits": draw(st.sampled_from([128, 96]))}
    elif ctype == "CK_CCM_MESSAGE_PARAMS":
        fields = {"ulDataLen": data_len, "pNonce": iv, "ulNonceLen": 13, "ulNonceFixedBits": fixed,
                  "nonceGenerator": gen, "pMAC": draw(st.binary(min_size=16, max_size=16)), "ulMACLen": 16}
    else:
        fields = {"pNonce": iv[:12], "ulNonceLen": 96, "pTag": draw(st.binary(min_size=16, max_size=16))}
    return ("pstruct", ctype, fields), ffi.sizeof(ctype)


# ------------------------------------------------------------------ the model


@dataclass
class Obj:
    token: bool
    private: bool
    session: int  # owning session for session objects
    sensitive: bool = False
    extractable: bool = True


@dataclass
class Model:
    initialized: bool = False
    sessions: dict[int, bool] = field(default_factory=dict)  # handle -> rw
    login: int | None = None  # CKU_USER / CKU_SO
    objects: dict[int, Obj] = field(default_factory=dict)
    finding: set[int] = field(default_factory=set)
    #: sessions whose find may or may not have been ended by a login state change (§5.6)
    finding_maybe: set[int] = field(default_factory=set)
    failures: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})
    secrets: list[bytes] = field(default_factory=list)
    builtin: set[int] = field(default_factory=set)
    #: after C_Finalize the module may hand out new handles for the same token objects
    #: (handles are not stable across C_Initialize): token objects are then no longer modelled
    stale: bool = False

    def unknown(self, h: int) -> bool:
        """Whether handle ``h`` is certainly not an object the caller may use."""
        return not self.stale and h not in self.objects and h not in self.builtin

    def visible(self) -> set[int]:
        return {h for h, o in self.objects.items() if not o.private or self.login == int(spec.CKU_USER)}

    def drop_session(self, h: int) -> None:
        self.sessions.pop(h, None)
        self.finding.discard(h)
        self.finding_maybe.discard(h)
        for oh in [oh for oh, o in self.objects.items() if not o.token and o.session == h]:
            del self.objects[oh]
        if not self.sessions:
            self.login = None

    def login_changed(self) -> None:
        """A token may end active finds when the login state changes; C_Logout destroys the
        application's private session objects (§5.6 C_Logout)."""
        self.finding_maybe |= self.finding
        self.finding.clear()
        if self.login is None:
            for oh in [oh for oh, o in self.objects.items() if o.private and not o.token]:
                del self.objects[oh]

    def find_codes(self, h: int, active: int, idle: int) -> set[int]:
        if h in self.finding_maybe:
            return {active, idle}
        return {active} if h in self.finding else {idle}

    def reset(self) -> None:
        for h in list(self.sessions):
            self.drop_session(h)
        self.initialized = False
        self.login = None
        self.objects.clear()
        self.stale = True


class AbiMachine(RuleBasedStateMachine):
    """One example = a fresh store with an initialized token, driven through the ABI."""

    def __init__(self) -> None:
        super().__init__()
        self.c = child()
        self.m = Model()
        self.dir = tempfile.TemporaryDirectory(prefix="fuzz")
        STATS["examples"] += 1

    def teardown(self) -> None:
        if self.c.alive():
            self.c.call("C_Finalize", ("null",))
        self.dir.cleanup()

    # --------------------------------------------------------------- plumbing

    def call(self, fn: str, *args: object, expect: set[int] | None = None) -> tuple[int, list]:
        before = self.c.calls
        try:
            rv, outs = self.c.call(fn, *args)
        except AssertionError:
            STATS["crashes"] += 1
            raise
        finally:
            STATS["calls"] += self.c.calls - before
        ok = allowed(fn)
        if rv not in ok or (expect is not None and rv not in expect):
            STATS["unexpected"] += 1
            why = "not allowed by the spec" if rv not in ok else f"model expected {[spec.ckr_name(e) for e in expect]}"
            seq = "\n".join(f"  {f}{a!r}" for f, a in self.c.log[-40:])
            raise AssertionError(f"{fn} -> {spec.ckr_name(rv)} ({why}); calls since the example began:\n{seq}")
        for out in outs:
            if fn == "C_GetAttributeValue" or not isinstance(out, list):  # other templates are inputs
                self._no_secret(out)
        return rv, outs

    def _no_secret(self, out: object) -> None:
        if isinstance(out, bytes):
            for s in self.m.secrets:
                assert s not in out, "a sensitive key value came out of the module"
        elif isinstance(out, list):
            for item in out:
                if isinstance(item, tuple) and len(item) == 3 and isinstance(item[2], bytes):
                    self._no_secret(item[2])

    def pick_session(self, i: int, raw: int | None = None) -> int:
        if raw is not None or not self.m.sessions:
            return raw if raw is not None else 0xDEAD
        return sorted(self.m.sessions)[i % len(self.m.sessions)]

    def pick_object(self, i: int, raw: int | None) -> int:
        pool = sorted(self.m.objects)
        if raw is not None or not pool:
            return raw if raw is not None else 0xBEEF
        return pool[i % len(pool)]

    def session_codes(self, h: int) -> set[int] | None:
        """The one code a call on ``h`` must give when the module or handle is not usable."""
        if not self.m.initialized:
            return {R["CRYPTOKI_NOT_INITIALIZED"]}
        if h not in self.m.sessions:
            return {R["SESSION_HANDLE_INVALID"], R["SESSION_CLOSED"]}
        return None

    def learn_object(self, h: int, session: int, secret: bytes | None) -> None:
        """Read an object's visibility flags back (their defaults are the token's choice)."""
        types = [int(CKA.CKA_TOKEN), int(CKA.CKA_PRIVATE), int(CKA.CKA_SENSITIVE), int(CKA.CKA_EXTRACTABLE)]
        _rv, (items,) = self.call("C_GetAttributeValue", session, h, ("tmpl", [(t, b"\x00" * 8, 8) for t in types]), 4,
                                 expect={OK, R["ATTRIBUTE_TYPE_INVALID"]})
        vals = {t: (n == 1 and c == b"\x01") for t, n, c in items}
        assert items[0][1] == 1 and items[1][1] == 1, f"CKA_TOKEN/CKA_PRIVATE unreadable: {items}"
        self.m.objects[h] = Obj(vals[types[0]], vals[types[1]], session,
                                sensitive=vals.get(types[2], False),
                                extractable=items[3][1] != 1 or vals[types[3]])
        if secret is not None and len(set(secret)) >= 8 and (self.m.objects[h].sensitive or not self.m.objects[h].extractable):
            self.m.secrets.append(secret)

    # --------------------------------------------------------------- set-up

    @initialize()
    def fresh_token(self) -> None:
        conf = write_config(Path(self.dir.name))
        self.c.ensure()
        self.c.mark()
        self.c.call("C_Finalize", ("null",))
        self.c.call("conf", str(conf))
        self.call("C_Initialize", ("null",), expect={OK})
        label = b"fuzz".ljust(32, b" ")
        self.call("C_InitToken", 0, ("bytes", SO_PIN), len(SO_PIN), ("bytes", label), expect={OK})
        _, (h,) = self.call("C_OpenSession", 0, SERIAL | RW, ("null",), ("null",), ("ulong", 0), expect={OK})
        self.call("C_Login", h, int(spec.CKU_SO), ("bytes", SO_PIN), len(SO_PIN), expect={OK})
        self.call("C_InitPIN", h, ("bytes", USER_PIN), len(USER_PIN), expect={OK})
        self.call("C_CloseSession", h, expect={OK})
        self.m.initialized = True
        _, (h,) = self.call("C_OpenSession", 0, SERIAL, ("null",), ("null",), ("ulong", 0), expect={OK})
        self.m.sessions[h] = False
        self.m.builtin = set(self.find_all(h))

    def find_all(self, h: int) -> list[int]:
        self.call("C_FindObjectsInit", h, ("null",), 0, expect={OK})
        _, (found, n) = self.call("C_FindObjects", h, ("handles", 512), 512, ("ulong", 0), expect={OK})
        self.call("C_FindObjectsFinal", h, expect={OK})
        return found[:n]

    # --------------------------------------------------------------- general purpose

    @rule(kind=st.sampled_from(["null", "os", "mutex", "partial", "reserved"]), n=st.integers(1, 3))
    def c_initialize(self, kind: str, n: int) -> None:
        bad = kind in ("partial", "reserved")
        arg = {"null": ("null",), "os": ("initargs", int(spec.CKF_OS_LOCKING_OK), 0, False),
               "mutex": ("initargs", 0, 4, False), "partial": ("initargs", 0, n, False),
               "reserved": ("initargs", 0, 0, True)}[kind]
        expect = {R["CRYPTOKI_ALREADY_INITIALIZED"]} if self.m.initialized else {OK}
        if bad:
            expect = {R["ARGUMENTS_BAD"]} | (expect - {OK})
        rv, _ = self.call("C_Initialize", arg, expect=expect)
        if rv == OK:
            self.m.initialized = True

    @rule(really=st.integers(0, 9))
    def c_finalize(self, really: int) -> None:
        if really:
            self.call("C_GetInfo", ("struct", "CK_INFO"),
                      expect={OK} if self.m.initialized else {R["CRYPTOKI_NOT_INITIALIZED"]})
            return
        _rv, _ = self.call("C_Finalize", ("null",), expect={OK} if self.m.initialized else {R["CRYPTOKI_NOT_INITIALIZED"]})
        self.m.reset()

    @rule(slot=st.sampled_from([0, 0, 1, 7, 2**64 - 1]), cap=st.integers(0, 3), present=st.booleans())
    def slot_queries(self, slot: int, cap: int, present: bool) -> None:
        rv, (n,) = self.call("C_GetSlotList", int(present), ("null",), ("ulong", 0))
        if rv == OK:
            rv2, (_arr, n2) = self.call("C_GetSlotList", int(present), ("handles", cap), ("ulong", cap))
            if rv2 == R["BUFFER_TOO_SMALL"]:
                assert n2 > cap
            elif rv2 == OK:
                assert n2 <= cap and n2 == n
        self.call("C_GetSlotInfo", slot, ("struct", "CK_SLOT_INFO"))
        self.call("C_GetTokenInfo", slot, ("struct", "CK_TOKEN_INFO"))
        rv, (n,) = self.call("C_GetMechanismList", slot, ("null",), ("ulong", 0))
        self.call("C_GetMechanismInfo", slot, int(MECHS[cap * 7 % len(MECHS)].mechanism), ("struct", "CK_MECHANISM_INFO"))

    # --------------------------------------------------------------- sessions and login

    @rule(slot=st.sampled_from([0, 0, 0, 5, 2**64 - 1]),
          flags=st.sampled_from([SERIAL | RW, SERIAL | RW, SERIAL, SERIAL, RW, 0, SERIAL | RW | 0x100]))
    def c_open_session(self, slot: int, flags: int) -> None:
        if not self.m.initialized:
            expect = {R["CRYPTOKI_NOT_INITIALIZED"]}
        elif slot != 0:
            expect = {R["SLOT_ID_INVALID"]}
        elif not flags & SERIAL:
            expect = {R["SESSION_PARALLEL_NOT_SUPPORTED"]}
        elif not flags & RW and self.m.login == int(spec.CKU_SO):
            expect = {R["SESSION_READ_WRITE_SO_EXISTS"]}
        elif flags & ~(SERIAL | RW):
            expect = {OK, R["ARGUMENTS_BAD"]}
        else:
            expect = {OK, R["SESSION_COUNT"]}
        rv, (h,) = self.call("C_OpenSession", slot, flags, ("null",), ("null",), ("ulong", 0), expect=expect)
        if rv == OK:
            assert h not in self.m.sessions and h != 0
            self.m.sessions[h] = bool(flags & RW)

    @rule(i=st.integers(0, 7), raw=st.one_of(st.none(), handles))
    def c_close_session(self, i: int, raw: int | None) -> None:
        h = self.pick_session(i, raw)
        rv, _ = self.call("C_CloseSession", h, expect=self.session_codes(h) or {OK})
        if rv == OK:
            self.m.drop_session(h)

    @rule(slot=st.sampled_from([0, 0, 3]))
    def c_close_all_sessions(self, slot: int) -> None:
        expect = {R["CRYPTOKI_NOT_INITIALIZED"]} if not self.m.initialized else \
            ({OK} if slot == 0 else {R["SLOT_ID_INVALID"]})
        rv, _ = self.call("C_CloseAllSessions", slot, expect=expect)
        if rv == OK:
            for h in list(self.m.sessions):
                self.m.drop_session(h)

    @rule(i=st.integers(0, 7), user=st.sampled_from([0, 1, 1, 1, 2, 9]),
          pin=st.sampled_from(["right", "right", "wrong", "empty", "long"]))
    def c_login(self, i: int, user: int, pin: str) -> None:
        h = self.pick_session(i)
        right = SO_PIN if user == 0 else USER_PIN
        if pin != "right" and self.m.failures.get(user, 0) >= 3:
            pin = "right"  # stay clear of the lock-out (tested in test_tokens)
        value = {"right": right, "wrong": b"99999999", "empty": b"", "long": b"7" * 300}[pin]
        expect = self.session_codes(h)
        if expect is None:
            if user not in (0, 1, 2):
                expect = {R["USER_TYPE_INVALID"]}
            elif user == 2:
                expect = None  # context-specific: depends on the operation state
            elif self.m.login == user:
                expect = {R["USER_ALREADY_LOGGED_IN"]}
            elif self.m.login is not None:
                expect = {R["USER_ANOTHER_ALREADY_LOGGED_IN"]}
            elif user == 0 and not all(self.m.sessions.values()):
                expect = {R["SESSION_READ_ONLY_EXISTS"]}
            elif pin == "right":
                expect = {OK}
            else:
                expect = {R["PIN_INCORRECT"], R["PIN_LEN_RANGE"]}
            if pin == "long" and expect is not None:
                # a PIN longer than max_pin_len is refused before it is read, whatever the
                # login state (abi/limits.py, issue 15 item 10)
                expect = expect | {R["PIN_LEN_RANGE"]}
        rv, _ = self.call("C_Login", h, user, ("bytes", value), len(value), expect=expect)
        if rv == OK and user in (0, 1):
            self.m.login = user
            self.m.login_changed()
            self.m.failures[user] = 0
        elif rv == R["PIN_INCORRECT"]:
            self.m.failures[user] += 1

    @rule(i=st.integers(0, 7))
    def c_logout(self, i: int) -> None:
        h = self.pick_session(i)
        expect = self.session_codes(h) or ({OK} if self.m.login is not None else {R["USER_NOT_LOGGED_IN"]})
        rv, _ = self.call("C_Logout", h, expect=expect)
        if rv == OK:
            self.m.login = None
            self.m.login_changed()

    # --------------------------------------------------------------- objects

    @rule(i=st.integers(0, 7), t=object_templates())
    def c_create_object(self, i: int, t: tuple) -> None:
        items, secret = t
        h = self.pick_session(i)
        rv, (_, oh) = self.call("C_CreateObject", h, ("tmpl", items), len(items), ("ulong", 0),
                                expect=self.session_codes(h))
        if rv == OK:
            assert oh not in self.m.objects and oh not in self.m.builtin and oh != 0
            self.learn_object(oh, h, secret)
            token = self.m.objects[oh].token
            assert not token or self.m.sessions[h], "a token object was created in a read-only session"

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles),
          t=st.fixed_dictionaries({}, optional={int(CKA.CKA_TOKEN): st.booleans().map(b),
                                                int(CKA.CKA_PRIVATE): st.booleans().map(b),
                                                int(CKA.CKA_SENSITIVE): st.booleans().map(b),
                                                int(CKA.CKA_EXTRACTABLE): st.booleans().map(b),
                                                int(CKA.CKA_LABEL): st.binary(max_size=8)}).flatmap(attribute_items))
    def c_copy_object(self, i: int, j: int, raw: int | None, t: list) -> None:
        h, o = self.pick_session(i), self.pick_object(j, raw)
        rv, (_, oh) = self.call("C_CopyObject", h, o, ("tmpl", t), len(t), ("ulong", 0), expect=self.session_codes(h))
        if rv == OK:
            assert self.m.stale or o in self.m.visible(), "copied an object the caller cannot see"
            self.learn_object(oh, h, None)
            old, new = self.m.objects.get(o, self.m.objects[oh]), self.m.objects[oh]
            assert new.sensitive or not old.sensitive, "a copy turned CKA_SENSITIVE off"
            assert not new.extractable or old.extractable, "a copy turned CKA_EXTRACTABLE on"

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles))
    def c_destroy_object(self, i: int, j: int, raw: int | None) -> None:
        h, o = self.pick_session(i), self.pick_object(j, raw)
        expect = self.session_codes(h)
        if expect is None and self.m.unknown(o):
            expect = NOT_OK
        rv, _ = self.call("C_DestroyObject", h, o, expect=expect)
        if rv == OK:
            assert self.m.stale or o in self.m.visible(), "destroyed an object the caller cannot see"
            self.m.objects.pop(o, None)

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles),
          q=st.lists(st.tuples(st.sampled_from(sorted(SECRET_ATTRS) + [0, 1, 2, 3, 0x100, 0x161, 0x165, 0x170,
                                                                       0x40000211, 0x40000600, 0x80000000, 2**40]),
                               st.sampled_from(["null", "small", "big"])), min_size=1, max_size=5))
    def c_get_attribute_value(self, i: int, j: int, raw: int | None, q: list) -> None:
        h, o = self.pick_session(i), self.pick_object(j, raw)
        sizes = {"null": 0, "small": 1, "big": 4096}
        items = [(t, None if mode == "null" else b"", sizes[mode]) for t, mode in q]
        expect = self.session_codes(h)
        if expect is None and self.m.unknown(o):
            expect = NOT_OK
        rv, (out,) = self.call("C_GetAttributeValue", h, o, ("tmpl", items), len(items), expect=expect)
        if rv in (R["OBJECT_HANDLE_INVALID"], R["SESSION_HANDLE_INVALID"], R["CRYPTOKI_NOT_INITIALIZED"]):
            return
        codes = set()
        for (t, mode), (_, n, _content) in zip(q, out):
            if n == UNAVAILABLE:
                codes.add(t)
                continue
            if mode != "null":
                assert n <= sizes[mode], f"attribute {t:#x}: wrote length {n} into a {sizes[mode]}-byte buffer"
            obj = self.m.objects.get(o)
            if t in SECRET_ATTRS and obj is not None and (obj.sensitive or not obj.extractable):
                raise AssertionError(f"attribute {t:#x} of a sensitive/unextractable key answered length {n}")
        if rv == OK:
            assert not codes, "CKR_OK with CK_UNAVAILABLE_INFORMATION in a length"
        if rv in (R["ATTRIBUTE_SENSITIVE"], R["ATTRIBUTE_TYPE_INVALID"], R["BUFFER_TOO_SMALL"]):
            assert codes, f"{spec.ckr_name(rv)} but every length is available"

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles),
          t=st.fixed_dictionaries({}, optional={int(CKA.CKA_LABEL): st.binary(max_size=8),
                                                int(CKA.CKA_SENSITIVE): st.booleans().map(b),
                                                int(CKA.CKA_EXTRACTABLE): st.booleans().map(b),
                                                int(CKA.CKA_PRIVATE): st.booleans().map(b),
                                                int(CKA.CKA_TOKEN): st.booleans().map(b),
                                                int(CKA.CKA_VALUE): blobs}).flatmap(attribute_items))
    def c_set_attribute_value(self, i: int, j: int, raw: int | None, t: list) -> None:
        h, o = self.pick_session(i), self.pick_object(j, raw)
        expect = self.session_codes(h)
        if expect is None and self.m.unknown(o):
            expect = NOT_OK
        rv, _ = self.call("C_SetAttributeValue", h, o, ("tmpl", t), len(t), expect=expect)
        if rv == OK and o in self.m.objects:
            old = self.m.objects[o]
            self.learn_object(o, old.session, None)
            new = self.m.objects[o]
            assert new.sensitive or not old.sensitive, "CKA_SENSITIVE went from TRUE to FALSE"
            assert not new.extractable or old.extractable, "CKA_EXTRACTABLE went from FALSE to TRUE"
            assert new.token == old.token, "CKA_TOKEN changed"

    @rule(i=st.integers(0, 7), t=st.fixed_dictionaries({}, optional={
        int(CKA.CKA_CLASS): st.sampled_from([0, 2, 3, 4, 2**64 - 1]).map(u),
        int(CKA.CKA_TOKEN): st.booleans().map(b), int(CKA.CKA_PRIVATE): st.booleans().map(b),
        int(CKA.CKA_LABEL): st.binary(max_size=4)}).flatmap(attribute_items))
    def c_find_objects_init(self, i: int, t: list) -> None:
        h = self.pick_session(i)
        expect = self.session_codes(h)
        if expect is None and h in self.m.finding:
            expect = NOT_OK  # OPERATION_ACTIVE, or a template error found first
        rv, _ = self.call("C_FindObjectsInit", h, ("tmpl", t), len(t), expect=expect)
        if rv == OK or rv == R["OPERATION_ACTIVE"]:
            self.m.finding.add(h)
            self.m.finding_maybe.discard(h)

    @rule(i=st.integers(0, 7), n=st.sampled_from([0, 1, 3, 64]))
    def c_find_objects(self, i: int, n: int) -> None:
        h = self.pick_session(i)
        expect = self.session_codes(h) or self.m.find_codes(h, OK, R["OPERATION_NOT_INITIALIZED"])
        rv, (found, count) = self.call("C_FindObjects", h, ("handles", n), n, ("ulong", 0), expect=expect)
        if rv == OK:
            assert count <= n
            extra = set(found[:count]) - self.m.visible() - self.m.builtin
            assert self.m.stale or not extra, f"C_FindObjects returned objects the caller cannot see: {extra}"

    @rule(i=st.integers(0, 7))
    def c_find_objects_final(self, i: int) -> None:
        h = self.pick_session(i)
        expect = self.session_codes(h) or self.m.find_codes(h, OK, R["OPERATION_NOT_INITIALIZED"])
        _rv, _ = self.call("C_FindObjectsFinal", h, expect=expect)
        self.m.finding.discard(h)
        self.m.finding_maybe.discard(h)

    # --------------------------------------------------------------- keys and operations

    @rule(i=st.integers(0, 7), which=st.sampled_from(["aes", "generic", "ec", "mlkem"]), n=st.sampled_from([16, 32, 7, 0]),
          token=st.booleans(), sensitive=st.booleans(), mutate=st.booleans(), data=st.data())
    def c_generate(self, i: int, which: str, n: int, token: bool, sensitive: bool, mutate: bool, data: st.DataObject) -> None:
        h = self.pick_session(i)
        flags = {int(CKA.CKA_TOKEN): b(token), int(CKA.CKA_SENSITIVE): b(sensitive),
                 int(CKA.CKA_SIGN): b(True), int(CKA.CKA_ENCRYPT): b(True)}
        if which in ("ec", "mlkem"):
            if which == "ec":
                gen = int(spec.CKM_EC_KEY_PAIR_GEN)
                pub = {int(CKA.CKA_EC_PARAMS): P256, int(CKA.CKA_TOKEN): b(token), int(CKA.CKA_VERIFY): b(True)}
                tpriv = [(k, v, len(v)) for k, v in flags.items() if k != int(CKA.CKA_ENCRYPT)]
            else:  # an ML-KEM-768 pair for c_kem (PKCS#11 3.2)
                gen = int(spec.CKM_ML_KEM_KEY_PAIR_GEN)
                pub = {int(spec.CKA_PARAMETER_SET): u(int(spec.CKP_ML_KEM_768)), int(CKA.CKA_TOKEN): b(token),
                       int(spec.CKA_ENCAPSULATE): b(True)}
                tpriv = [(k, v, len(v)) for k, v in ((int(CKA.CKA_TOKEN), b(token)),
                                                     (int(CKA.CKA_SENSITIVE), b(sensitive)),
                                                     (int(spec.CKA_DECAPSULATE), b(True)))]
            tpub = data.draw(attribute_items(pub)) if mutate else [(k, v, len(v)) for k, v in pub.items()]
            rv, (_, _, hp, hq) = self.call("C_GenerateKeyPair", h, ("mech", gen, None),
                                           ("tmpl", tpub), len(tpub), ("tmpl", tpriv), len(tpriv),
                                           ("ulong", 0), ("ulong", 0), expect=self.session_codes(h))
            if rv == OK:
                self.learn_object(hp, h, None)
                self.learn_object(hq, h, None)
                assert self.m.objects[hq].sensitive == sensitive
            return
        mech = int(spec.CKM_AES_KEY_GEN if which == "aes" else spec.CKM_GENERIC_SECRET_KEY_GEN)
        flags[int(CKA.CKA_VALUE_LEN)] = u(n)
        t = data.draw(attribute_items(flags)) if mutate else [(k, v, len(v)) for k, v in flags.items()]
        rv, (_, oh) = self.call("C_GenerateKey", h, ("mech", mech, None), ("tmpl", t), len(t), ("ulong", 0),
                                expect=self.session_codes(h))
        if rv == OK:
            self.learn_object(oh, h, None)

    @rule(kind=st.sampled_from(OP_KINDS), i=st.integers(0, 7), j=st.integers(0, 15),
          raw=st.one_of(st.none(), st.none(), st.none(), handles), data=st.data(),
          null_mech=st.integers(0, 9))
    def c_operation_init(self, kind: str, i: int, j: int, raw: int | None, data: st.DataObject, null_mech: int) -> None:
        h, o = self.pick_session(i), self.pick_object(j, raw)
        if null_mech == 0:  # 3.0: a NULL mechanism ends the active operation
            mech = ("null",)
        else:
            ent = data.draw(st.sampled_from(MECHS))
            ckm = int(ent.mechanism) if null_mech > 1 else data.draw(ulongs)
            mech = ("mech", ckm, data.draw(mechanism_params(ent.param)))
        args = (h, mech) if kind == "Digest" else (h, mech, o)
        self.call(f"C_{kind}Init", *args, expect=self.session_codes(h))

    @rule(kind=st.sampled_from(OP_KINDS), i=st.integers(0, 7), step=st.sampled_from(["", "Update", "Final"]),
          data=datas, out=st.sampled_from(["null", "small", "big"]))
    def c_operation_step(self, kind: str, i: int, step: str, data: bytes, out: str) -> None:
        h = self.pick_session(i)
        fn = f"C_{kind}{step}"
        cap = {"null": 0, "small": 1, "big": 2048}[out]
        buf = ("null",) if out == "null" else ("out", cap)
        if kind == "Verify":
            args = {"": (h, ("bytes", data), len(data), ("bytes", data[:16]), len(data[:16])),
                    "Update": (h, ("bytes", data), len(data)),
                    "Final": (h, ("bytes", data), len(data))}[step]
        elif step == "Update" and kind in ("Sign", "Digest"):
            args = (h, ("bytes", data), len(data))
        elif step == "Final":
            args = (h, buf, ("ulong", cap))
        else:
            args = (h, ("bytes", data), len(data), buf, ("ulong", cap))
        rv, outs = self.call(fn, *args, expect=self.session_codes(h))
        if isinstance(args[-1], tuple) and args[-1][0] == "ulong":
            n = outs[-1]
            if rv == R["BUFFER_TOO_SMALL"]:
                assert out != "null" and n > cap, f"{fn}: BUFFER_TOO_SMALL with length {n} for capacity {cap}"
            elif rv == OK and out != "null":
                assert n <= cap, f"{fn}: wrote {n} bytes into {cap}"

    # ------------------------- message-based functions, recovery, C_DigestKey, dual functions

    @rule(kind=st.sampled_from(MESSAGE_KINDS), i=st.integers(0, 7), j=st.integers(0, 15),
          raw=st.one_of(st.none(), st.none(), st.none(), handles), data=st.data(), null_mech=st.integers(0, 9),
          fresh=st.booleans())
    def c_message_init(self, kind: str, i: int, j: int, raw: int | None, data: st.DataObject, null_mech: int,
                       fresh: bool) -> None:
        """C_Message*Init with the AEAD mechanisms (often) or any, any key, NULL to end; ``fresh``:
        with a new session key that fits (AES, ChaCha20, an HMAC secret), so processes start."""
        h, o = self.pick_session(i), self.pick_object(j, raw)
        if fresh and h in self.m.sessions:
            if kind in ("Encrypt", "Decrypt"):
                ent = data.draw(st.sampled_from(AEAD_MECHS))
                gen = spec.CKM_CHACHA20_KEY_GEN if ent.mechanism == spec.CKM_CHACHA20_POLY1305 else spec.CKM_AES_KEY_GEN
            else:
                ent, gen = registry.lookup(int(spec.CKM_SHA256_HMAC)), spec.CKM_GENERIC_SECRET_KEY_GEN
            t = [(int(a), b(True), 1) for a in (CKA.CKA_ENCRYPT, CKA.CKA_DECRYPT, CKA.CKA_SIGN, CKA.CKA_VERIFY)]
            t += [(int(CKA.CKA_TOKEN), b(False), 1), (int(CKA.CKA_PRIVATE), b(False), 1), (int(CKA.CKA_VALUE_LEN), u(32), 8)]
            rv, (_, oh) = self.call("C_GenerateKey", h, ("mech", int(gen), None), ("tmpl", t), len(t), ("ulong", 0),
                                    expect=None)
            if rv == OK:
                self.learn_object(oh, h, None)
                o = oh
            mech: tuple = ("mech", int(ent.mechanism), None)
        elif null_mech == 0:
            mech = ("null",)
        else:
            ent = data.draw(st.one_of(st.sampled_from(AEAD_MECHS), st.sampled_from(MECHS)))
            mech = ("mech", int(ent.mechanism), data.draw(mechanism_params(ent.param)))
        rv, _ = self.call(f"C_Message{kind}Init", h, mech, o, expect=self.session_codes(h))
        if rv == OK and mech[0] == "mech":
            self.message_sessions[kind] = h  # the steps go there most of the time
            for _ in range(data.draw(st.integers(1, 6))):  # and some follow at once, mostly well-formed
                payload = data.draw(datas)
                param = data.draw(st.one_of(valid_message_params(mech[1], len(payload)),
                                            valid_message_params(mech[1], len(payload)), message_params()))
                self._message_step(kind, h, data.draw(st.sampled_from(["", "", "Begin", "Next", "Next", "Final"])),
                                   param, payload, data.draw(st.one_of(st.none(), blobs)),
                                   data.draw(st.sampled_from(["null", "small", "big", "big"])), data.draw(st.booleans()),
                                   data.draw(st.sampled_from([0, 0, 0x80])))

    @property
    def message_sessions(self) -> dict[str, int]:
        """kind -> the session of the last successful C_Message*Init (steps aim there)."""
        if not hasattr(self, "_message_sessions"):
            self._message_sessions: dict[str, int] = {}
        return self._message_sessions

    @rule(kind=st.sampled_from(MESSAGE_KINDS), i=st.integers(0, 7), step=st.sampled_from(["", "", "Begin", "Next", "Final"]),
          param=message_params(), payload=datas, aad=st.one_of(st.none(), blobs),
          out=st.sampled_from(["null", "small", "big"]), last=st.booleans(), flags=st.sampled_from([0, 0x80]))
    def c_message_step(self, kind: str, i: int, step: str, param: tuple, payload: bytes, aad: bytes | None, out: str,
                       last: bool, flags: int) -> None:
        """Every message step with NULL, garbage-sized or real (maybe mismatched) parameter structs,
        NULL/short/large output buffers; the last part by CKF_END_OF_MESSAGE, a non-NULL
        pulSignatureLen or pSignature."""
        h = self.message_sessions.get(kind, -1) if i < 6 else -1
        if h not in self.m.sessions:
            h = self.pick_session(i)
        self._message_step(kind, h, step, param, payload, aad, out, last, flags)

    def _message_step(self, kind: str, h: int, step: str, param: tuple, payload: bytes, aad: bytes | None, out: str,
                      last: bool, flags: int) -> None:
        if step == "Final":
            self.call(f"C_Message{kind}Final", h, expect=self.session_codes(h))
            return
        p, plen = param
        cap = {"null": 0, "small": 1, "big": 2048}[out]
        buf, n = (("null",) if out == "null" else ("out", cap)), ("ulong", cap)
        data = (("bytes", payload), len(payload))
        sig = payload[:16]
        if kind in ("Encrypt", "Decrypt"):
            assoc = (("null",), 0) if aad is None else (("bytes", aad), len(aad))
            args = {"": (h, p, plen, *assoc, *data, buf, n), "Begin": (h, p, plen, *assoc),
                    "Next": (h, p, plen, *data, buf, n, END_OF_MESSAGE if last else flags)}[step]
        elif kind == "Sign":
            args = {"": (h, p, plen, *data, buf, n), "Begin": (h, p, plen),
                    "Next": (h, p, plen, *data, buf, n if last else ("null",))}[step]
        else:
            args = {"": (h, p, plen, *data, ("bytes", sig), len(sig)), "Begin": (h, p, plen),
                    "Next": (h, p, plen, *data, ("bytes", sig) if last else ("null",), len(sig) if last else 0)}[step]
        rv, outs = self.call(f"C_{kind}Message{step}", *args, expect=self.session_codes(h))
        if n in args:
            if rv == R["BUFFER_TOO_SMALL"]:
                assert out != "null" and outs[-1] > cap, f"C_{kind}Message{step}: BUFFER_TOO_SMALL, {outs[-1]} <= {cap}"
            elif rv == OK and out != "null":
                assert outs[-1] <= cap, f"C_{kind}Message{step}: wrote {outs[-1]} bytes into {cap}"

    @rule(kind=st.sampled_from(["SignRecover", "VerifyRecover"]), i=st.integers(0, 7), j=st.integers(0, 15),
          raw=st.one_of(st.none(), st.none(), handles), data=st.data(), init=st.booleans(), payload=datas,
          out=st.sampled_from(["null", "small", "big"]))
    def c_recover(self, kind: str, i: int, j: int, raw: int | None, data: st.DataObject, init: bool, payload: bytes,
                  out: str) -> None:
        h = self.pick_session(i)
        if init:
            ent = data.draw(st.one_of(st.sampled_from([registry.lookup(int(spec.CKM_RSA_PKCS)),
                                                       registry.lookup(int(spec.CKM_RSA_X_509))]),
                                      st.sampled_from(MECHS)))
            mech = ("mech", int(ent.mechanism), data.draw(mechanism_params(ent.param)))
            self.call(f"C_{kind}Init", h, mech, self.pick_object(j, raw), expect=self.session_codes(h))
            return
        cap = {"null": 0, "small": 1, "big": 2048}[out]
        rv, outs = self.call(f"C_{kind}", h, ("bytes", payload), len(payload),
                             ("null",) if out == "null" else ("out", cap), ("ulong", cap),
                             expect=self.session_codes(h))
        if rv == R["BUFFER_TOO_SMALL"]:
            assert out != "null" and outs[-1] > cap

    @rule(fn=st.sampled_from(["C_DigestKey", *DUAL_FNS]), i=st.integers(0, 7), j=st.integers(0, 15),
          raw=st.one_of(st.none(), st.none(), handles), payload=datas, out=st.sampled_from(["null", "small", "big"]))
    def c_digest_key_and_dual(self, fn: str, i: int, j: int, raw: int | None, payload: bytes, out: str) -> None:
        """C_DigestKey on any object (a sensitive key's digest must not leak it: checked as any
        output) and the dual-function updates over whatever operations the session has."""
        h = self.pick_session(i)
        if fn == "C_DigestKey":
            self.call(fn, h, self.pick_object(j, raw), expect=self.session_codes(h))
            return
        cap = {"null": 0, "small": 1, "big": 2048}[out]
        rv, outs = self.call(fn, h, ("bytes", payload), len(payload), ("null",) if out == "null" else ("out", cap),
                             ("ulong", cap), expect=self.session_codes(h))
        if rv == R["BUFFER_TOO_SMALL"]:
            assert out != "null" and outs[-1] > cap

    # ----------------------------------------------------- the PKCS#11 3.2 functions

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles),
          data=st.data(), null_mech=st.integers(0, 9), sig=st.one_of(st.just(None), blobs),
          step=st.sampled_from(["Init", "Init", "", "Update", "Final"]), payload=datas)
    def c_verify_signature(self, i: int, j: int, raw: int | None, data: st.DataObject, null_mech: int,
                           sig: bytes | None, step: str, payload: bytes) -> None:
        """C_VerifySignatureInit (any mechanism, key, signature or NULL) and its steps."""
        h = self.pick_session(i)
        if step == "Init":
            if null_mech == 0:
                mech: tuple = ("null",)
            else:
                ent = data.draw(st.sampled_from(MECHS))
                ckm = int(ent.mechanism) if null_mech > 1 else data.draw(ulongs)
                mech = ("mech", ckm, data.draw(mechanism_params(ent.param)))
            signature = ("null",) if sig is None else ("bytes", sig)
            self.call("C_VerifySignatureInit", h, mech, self.pick_object(j, raw), signature,
                      0 if sig is None else len(sig), expect=self.session_codes(h))
        elif step == "Final":
            self.call("C_VerifySignatureFinal", h, expect=self.session_codes(h))
        else:
            self.call(f"C_VerifySignature{step}", h, ("bytes", payload), len(payload), expect=self.session_codes(h))

    @rule(i=st.integers(0, 7), raw=st.one_of(st.none(), handles), kind=st.sampled_from([1, 1, 0, 7, 2**64 - 1]),
          null=st.booleans(), name=st.sampled_from([None, b"C_Sign", b""]), ident=ulongs)
    def c_session_functions_3_2(self, i: int, raw: int | None, kind: int, null: bool, name: bytes | None,
                                ident: int) -> None:
        """C_GetSessionValidationFlags and the asynchronous functions, NULLs included."""
        h = self.pick_session(i, raw)
        codes = self.session_codes(h)
        out = ("null",) if null else ("ulong", 0xFFFF)
        rv, outs = self.call("C_GetSessionValidationFlags", h, kind, out, expect=codes)
        if rv == OK:
            assert outs[-1] == 0, "a token without validation objects reports no validation flag"
        fname = ("null",) if name is None else ("bytes", name + b"\x00")
        async_codes = codes if codes is not None else {R["FUNCTION_NOT_SUPPORTED"]}
        self.call("C_AsyncComplete", h, fname, ("null",) if null else ("struct", "CK_ASYNC_DATA"), expect=async_codes)
        self.call("C_AsyncGetID", h, fname, ("null",) if null else ("ulong", 0), expect=async_codes)
        self.call("C_AsyncJoin", h, fname, ident, ("null",), 0, expect=async_codes)

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), k=st.integers(0, 15), raw=st.one_of(st.none(), handles),
          data=st.data(), aad=st.one_of(st.just(None), blobs), wrapped=blobs, out=st.sampled_from(["null", "small", "big"]))
    def c_wrap_key_authenticated(self, i: int, j: int, k: int, raw: int | None, data: st.DataObject,
                                 aad: bytes | None, wrapped: bytes, out: str) -> None:
        """C_WrapKeyAuthenticated / C_UnwrapKeyAuthenticated with any mechanism and key."""
        h = self.pick_session(i)
        ent = data.draw(st.one_of(st.just(registry.lookup(int(spec.CKM_AES_GCM))), st.sampled_from(MECHS)))
        mech = ("mech", int(ent.mechanism), data.draw(mechanism_params(ent.param)))
        assoc = (("null",), 0) if aad is None else (("bytes", aad), len(aad))
        cap = {"null": 0, "small": 1, "big": 2048}[out]
        buf = ("null",) if out == "null" else ("out", cap)
        rv, outs = self.call("C_WrapKeyAuthenticated", h, mech, self.pick_object(j, raw), self.pick_object(k, None),
                             *assoc, buf, ("ulong", cap), expect=self.session_codes(h))
        if rv == R["BUFFER_TOO_SMALL"]:
            assert outs[-1] > cap
        t = [(int(CKA.CKA_CLASS), u(int(spec.CKO_SECRET_KEY)), 8)]
        rv, outs = self.call("C_UnwrapKeyAuthenticated", h, mech, self.pick_object(j, raw), ("bytes", wrapped),
                             len(wrapped), ("tmpl", t), 1, *assoc, ("ulong", 0), expect=self.session_codes(h))
        if rv == OK:
            self.learn_object(outs[-1], h, None)

    @rule(i=st.integers(0, 7), j=st.integers(0, 15), raw=st.one_of(st.none(), st.none(), handles), data=st.data(),
          encapsulate=st.booleans(), ct=blobs, mutate=st.booleans(), out=st.sampled_from(["null", "small", "big"]))
    def c_kem(self, i: int, j: int, raw: int | None, data: st.DataObject, encapsulate: bool, ct: bytes,
              mutate: bool, out: str) -> None:
        """C_EncapsulateKey / C_DecapsulateKey (PKCS#11 3.2) with any mechanism, key and template."""
        h = self.pick_session(i)
        ent = data.draw(st.one_of(st.just(registry.lookup(int(spec.CKM_ML_KEM))), st.sampled_from(MECHS)))
        mech = ("mech", int(ent.mechanism), data.draw(mechanism_params(ent.param)))
        base = {int(CKA.CKA_CLASS): u(int(spec.CKO_SECRET_KEY)), int(CKA.CKA_KEY_TYPE): u(int(spec.CKK_GENERIC_SECRET)),
                int(CKA.CKA_SENSITIVE): b(data.draw(st.booleans()))}
        t = data.draw(attribute_items(base)) if mutate else [(k, v, len(v)) for k, v in base.items()]
        if encapsulate:
            cap = {"null": 0, "small": 1, "big": 2048}[out]
            buf = ("null",) if out == "null" else ("out", cap)
            rv, outs = self.call("C_EncapsulateKey", h, mech, self.pick_object(j, raw), ("tmpl", t), len(t), buf,
                                 ("ulong", cap), ("ulong", 0), expect=self.session_codes(h))
            if rv == R["BUFFER_TOO_SMALL"]:
                assert outs[-2] > cap and outs[-1] == 0, "a length answer makes no key"
        else:
            rv, outs = self.call("C_DecapsulateKey", h, mech, self.pick_object(j, raw), ("tmpl", t), len(t),
                                 ("bytes", ct), len(ct), ("ulong", 0), expect=self.session_codes(h))
        if rv == OK and outs[-1]:
            self.learn_object(outs[-1], h, None)

    @rule(i=st.integers(0, 7), flags=st.sampled_from([0, 1, 2, 0x1E, 0xFFFF]))
    def c_session_cancel(self, i: int, flags: int) -> None:
        h = self.pick_session(i)
        rv, _ = self.call("C_SessionCancel", h, flags, expect=self.session_codes(h))
        if rv == OK and flags & CKF_FIND_OBJECTS:
            self.m.finding.discard(h)
            self.m.finding_maybe.discard(h)

    @rule(i=st.integers(0, 7), n=st.sampled_from([0, 1, 32, 5000]), seed=blobs)
    def c_random(self, i: int, n: int, seed: bytes) -> None:
        h = self.pick_session(i)
        self.call("C_SeedRandom", h, ("bytes", seed), len(seed), expect=self.session_codes(h))
        self.call("C_GenerateRandom", h, ("out", n), n, expect=self.session_codes(h))

    # --------------------------------------------------------------- invariants

    @invariant()
    def sessions_agree(self) -> None:
        if not self.m.initialized:
            return
        for h, rw in self.m.sessions.items():
            _rv, (raw,) = self.call("C_GetSessionInfo", h, ("struct", "CK_SESSION_INFO"), expect={OK})
            info = ffi.from_buffer("CK_SESSION_INFO *", bytearray(raw))
            want = {None: 2 if rw else 0, 1: 3 if rw else 1, 0: 4}[self.m.login]
            assert info.state == want, f"session {h}: state {info.state}, model says {want}"
            assert bool(info.flags & RW) == rw and info.slotID == 0

    @invariant()
    def objects_agree(self) -> None:
        if not self.m.initialized:
            return
        free = [h for h in self.m.sessions if h not in self.m.finding and h not in self.m.finding_maybe]
        if not free:
            return
        found = set(self.find_all(free[0])) - self.m.builtin
        want = self.m.visible()
        if self.m.stale:
            assert want <= found, f"objects created since C_Initialize missing: {sorted(want - found)}"
            return
        assert found == want, f"visible objects: module {sorted(found)}, model {sorted(want)}"


AbiMachine.TestCase.settings = settings(
    max_examples=FUZZ_EXAMPLES, stateful_step_count=FUZZ_STEPS, deadline=None,
    suppress_health_check=list(HealthCheck), derandomize=not LONG,
    database=None if not LONG else settings.default.database,
)


class CallBudget(Exception):
    pass


@pytest.mark.fuzz
def test_abi_state_machine() -> None:
    """The bounded profile in the normal suite; ``make fuzz`` loops until LONG_CALLS."""
    from hypothesis.stateful import run_state_machine_as_test

    try:
        rounds = 0
        while True:
            rounds += 1
            run_state_machine_as_test(AbiMachine, settings=AbiMachine.TestCase.settings)
            if not LONG or STATS["calls"] >= LONG_CALLS:
                break
    finally:
        print(f"\nFUZZ calls={STATS['calls']} examples={STATS['examples']} crashes={STATS['crashes']} "
              f"unexpected={STATS['unexpected']}")
        child().stop()
    assert STATS["crashes"] == 0 and STATS["unexpected"] == 0
