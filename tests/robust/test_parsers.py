"""Property tests for every parser of untrusted bytes.

* mechanism parameter structs (``abi/params.read_param``) for every registered mechanism,
  with garbage scalars, NULL or real pointers, lengths up to what the pointer holds, and
  wrong ``ulParameterLen``: a dataclass or CKR_MECHANISM_PARAM_INVALID, nothing else;
* attribute templates (``abi/marshal.read_template``) and values (``attributes.codec``);
* EC parameters and points, DER keys (``keys.check_import``, ``keys.from_pkcs8``) and
  certificates (through C_CreateObject in the fuzzer, here through the policy parser);
* a store file with flipped bytes, read back through the .so in a child process: every call
  answers a code (never CKR_GENERAL_ERROR) and the host process survives.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from child import Child
from p11 import P11, SO_PIN, USER_PIN, ffi, write_config
from rv_table import allowed

from cryptoki_shim import spec
from cryptoki_shim import runtime
from cryptoki_shim.abi import marshal, params
from cryptoki_shim.attributes import codec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.mechanisms import keys, registry

FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
ENTRIES = registry.all_entries()
PARAM_CTYPES = {
    "RsaPkcsOaepParams": "CK_RSA_PKCS_OAEP_PARAMS", "RsaPkcsPssParams": "CK_RSA_PKCS_PSS_PARAMS",
    "EddsaParams": "CK_EDDSA_PARAMS", "EcdhDeriveParams": "CK_ECDH1_DERIVE_PARAMS", "GcmParams": "CK_GCM_PARAMS",
    "CcmParams": "CK_CCM_PARAMS", "AesCtrParams": "CK_AES_CTR_PARAMS",
    "AesCbcEncryptDataParams": "CK_AES_CBC_ENCRYPT_DATA_PARAMS", "HkdfParams": "CK_HKDF_PARAMS",
    "DesCbcEncryptDataParams": "CK_DES_CBC_ENCRYPT_DATA_PARAMS",
    "KeyDerivationStringData": "CK_KEY_DERIVATION_STRING_DATA", "Sp800108Params": "CK_SP800_108_KDF_PARAMS",
    "Pbkd2Params": "CK_PKCS5_PBKD2_PARAMS2", "int": "CK_ULONG",
}
POINTED = 4096
ulongs = st.one_of(st.sampled_from([0, 1, 2, 16, 32, 128, 4096, 2**32, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))


def fill_struct(data: st.DataObject, ctype: str, keep: list) -> object:
    """A struct whose pointers are NULL or point at POINTED real bytes, lengths <= POINTED
    (pointer-to-length fields and arrays of sub-structs point at one real element)."""
    if ctype == "CK_ULONG":
        return ffi.new("CK_ULONG *", data.draw(ulongs))
    s = ffi.new(ctype + " *")
    for name, fld in ffi.typeof(ctype).fields:
        t = fld.type
        if t.kind == "primitive":
            value = data.draw(ulongs) if ffi.sizeof(t) == 8 else data.draw(st.integers(0, 255))
            if name.startswith("ul") or name in ("length", "iterations"):
                value = data.draw(st.one_of(st.integers(0, POINTED), st.just(value)))
            setattr(s, name, value)
        elif t.kind == "pointer":
            if data.draw(st.booleans()):
                buf = ffi.new("unsigned char[]", POINTED)
                ffi.memmove(buf, data.draw(st.binary(max_size=64)), 0)
                keep.append(buf)
                setattr(s, name, ffi.cast(t, buf))
    # a non-NULL pointer may come with a length larger than it holds only if the length was
    # drawn from ulongs: clamp every length whose pointer is set, so reads stay in bounds
    for name, _fld in ffi.typeof(ctype).fields:
        if name.startswith("ul") and name.endswith("Len") and getattr(s, name) > POINTED:
            setattr(s, name, POINTED)
        if name in ("length", "ulLen", "ulNumberOfDataParams") and getattr(s, name) > 1:
            setattr(s, name, min(getattr(s, name), POINTED if name != "ulNumberOfDataParams" else 1))
    return s


@FAST
@given(st.data())
def test_mechanism_parameter_readers_never_raise_anything_else(data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(ENTRIES))
    keep: list = []
    kind = getattr(entry.param, "__name__", None)
    ctype = PARAM_CTYPES.get(kind or "")
    if ctype and data.draw(st.booleans()):
        s = fill_struct(data, ctype, keep)
        if ctype == "CK_SP800_108_KDF_PARAMS" and s.pDataParams != ffi.NULL:
            s.pDataParams = ffi.cast("CK_PRF_DATA_PARAM_PTR", ffi.new("CK_PRF_DATA_PARAM *"))
            s.ulNumberOfDataParams = min(s.ulNumberOfDataParams, 1)
        if ctype == "CK_PKCS5_PBKD2_PARAMS2" and s.ulPasswordLen > 0x10000:
            s.ulPasswordLen = 16
        p, n = s, ffi.sizeof(ctype)
    else:
        blob = data.draw(st.binary(max_size=96))
        n = data.draw(st.one_of(st.just(len(blob)), st.integers(0, 256)))
        if ctype and n == ffi.sizeof(ctype) and kind not in ("int", "RsaPkcsPssParams", "AesCtrParams"):
            n += 1  # the same size would make the reader follow garbage pointers (a caller bug)
        buf = ffi.new("unsigned char[]", max(1, n, len(blob)))
        ffi.memmove(buf, blob, len(blob))
        p = data.draw(st.sampled_from([buf, ffi.NULL]))
    try:
        value = params.read_param(ffi, entry, p, n)
    except CryptokiError as exc:
        assert exc.ckr == spec.CKR_MECHANISM_PARAM_INVALID, spec.ckr_name(exc.ckr)
    else:
        assert value is None or value.__class__.__module__.endswith(("params", "builtins"))


@pytest.fixture
def abi_runtime(monkeypatch: pytest.MonkeyPatch):
    """marshal reads through runtime.ffi: point it at the ABI-mode ffi (same cdef)."""
    monkeypatch.setattr(runtime, "ffi", ffi, raising=False)
    monkeypatch.setattr(runtime, "NULL", ffi.NULL, raising=False)


attr_types = st.one_of(st.sampled_from([0, 1, 2, 3, 0x11, 0x100, 0x161, 0x162, 0x180, 0x181, 0x40000211,
                                        0x40000600, 0x80000000]), st.integers(0, 2**64 - 1))


@FAST
@given(items=st.lists(st.tuples(attr_types, st.one_of(st.none(), st.binary(max_size=40)),
                                st.one_of(st.none(), st.sampled_from([2**24 + 1, 2**64 - 1]))), max_size=6))
def test_attribute_templates(abi_runtime, items: list) -> None:
    arr = ffi.new("CK_ATTRIBUTE[]", max(1, len(items)))
    keep = []
    for i, (t, v, huge) in enumerate(items):
        arr[i].type = t
        if t in (0x40000211, 0x40000212, 0x40000600) and v is not None:
            v = v[:0]  # a nested template of garbage pointers is a caller bug; empty is fine
        if v is None:
            arr[i].pValue, arr[i].ulValueLen = ffi.NULL, huge or 0
        else:
            buf = ffi.new("unsigned char[]", max(1, len(v)))
            ffi.memmove(buf, v, len(v))
            keep.append(buf)
            arr[i].pValue, arr[i].ulValueLen = buf, huge if huge else len(v)
    codes = {spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKR_ATTRIBUTE_TYPE_INVALID, spec.CKR_TEMPLATE_INCONSISTENT,
             spec.CKR_ARGUMENTS_BAD}
    for reader in (marshal.read_template, marshal.read_search_template):
        try:
            reader(arr, len(items))
        except CryptokiError as exc:
            assert exc.ckr in codes, spec.ckr_name(exc.ckr)


@FAST
@given(t=attr_types, raw=st.binary(max_size=64))
def test_codec_decode(t: int, raw: bytes) -> None:
    try:
        value = codec.decode(t, raw)
    except CryptokiError as exc:
        assert exc.ckr in (spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKR_ATTRIBUTE_TYPE_INVALID)
    else:
        if not isinstance(value, dict):
            assert codec.decode(t, codec.encode(t, value)) == value


KEY_CODES = {spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKR_CURVE_NOT_SUPPORTED, spec.CKR_DOMAIN_PARAMS_INVALID,
             spec.CKR_TEMPLATE_INCOMPLETE, spec.CKR_TEMPLATE_INCONSISTENT, spec.CKR_KEY_SIZE_RANGE,
             spec.CKR_WRAPPED_KEY_INVALID}
P256 = bytes.fromhex("06082a8648ce3d030107")
der_ish = st.one_of(st.binary(max_size=80),
                    st.binary(max_size=70).map(lambda b: bytes([0x04, len(b)]) + b),
                    st.binary(max_size=70).map(lambda b: bytes([0x06, len(b)]) + b),
                    st.binary(max_size=70).map(lambda b: bytes([0x30, 0x81, len(b)]) + b),
                    st.just(P256 + b"\x00"), st.just(bytes.fromhex("130a7072696d6532353676")))


@FAST
@given(cls=st.sampled_from([spec.CKO_PUBLIC_KEY, spec.CKO_PRIVATE_KEY]),
       kt=st.sampled_from([spec.CKK_EC, spec.CKK_EC_EDWARDS, spec.CKK_EC_MONTGOMERY, spec.CKK_RSA]),
       params_=der_ish, point=der_ish, value=der_ish, modulus=st.binary(max_size=64), exp=st.binary(max_size=4))
def test_key_material_parsers(cls, kt, params_, point, value, modulus, exp) -> None:
    attrs = {spec.CKA_CLASS: cls, spec.CKA_KEY_TYPE: kt, spec.CKA_EC_PARAMS: params_}
    if cls == spec.CKO_PUBLIC_KEY:
        attrs |= {spec.CKA_EC_POINT: point, spec.CKA_MODULUS: modulus, spec.CKA_PUBLIC_EXPONENT: exp}
    else:
        attrs |= {spec.CKA_VALUE: value, spec.CKA_MODULUS: modulus, spec.CKA_PRIVATE_EXPONENT: exp}
    try:
        keys.check_import(attrs)
    except CryptokiError as exc:
        assert exc.ckr in KEY_CODES, spec.ckr_name(exc.ckr)
    try:
        keys.curve_from_params(params_)
    except CryptokiError as exc:
        assert exc.ckr in KEY_CODES, spec.ckr_name(exc.ckr)


@FAST
@given(der=der_ish)
def test_pkcs8_parser(der: bytes) -> None:
    try:
        keys.from_pkcs8(der)
    except CryptokiError as exc:
        assert exc.ckr in KEY_CODES, spec.ckr_name(exc.ckr)


# ------------------------------------------------------------------ corrupted store


def _populate(p11: P11) -> None:
    p11.init_token(0, SO_PIN, "corrupt")
    s = p11.open(0)
    p11.login(s, SO_PIN, user=spec.CKU_SO)
    p11.init_pin(s, USER_PIN)
    p11.logout(s)
    p11.login(s, USER_PIN)
    for i in range(12):
        p11.create(s, {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True, spec.CKA_LABEL: b"d%d" % i,
                       spec.CKA_VALUE: bytes([i]) * 200})
        p11.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_GENERIC_SECRET,
                       spec.CKA_TOKEN: True, spec.CKA_PRIVATE: True, spec.CKA_SENSITIVE: True,
                       spec.CKA_VALUE: bytes([i + 1]) * 32, spec.CKA_SIGN: True})
    p11.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, {spec.CKA_EC_PARAMS: P256, spec.CKA_TOKEN: True},
                          {spec.CKA_TOKEN: True, spec.CKA_SIGN: True})


def _read_everything(c: Child) -> list[str]:
    """Every object's attributes and a sign with every key, through the child; returns codes seen."""
    seen = []

    def call(fn: str, *args):
        rv, outs = c.call(fn, *args)
        assert rv in allowed(fn), f"{fn} -> {spec.ckr_name(rv)}"
        seen.append(spec.ckr_name(rv))
        return rv, outs

    rv, _ = call("C_Initialize", ("null",))
    if rv:
        return seen
    rv, (h,) = call("C_OpenSession", 0, 6, ("null",), ("null",), ("ulong", 0))
    if rv == 0:
        call("C_GetTokenInfo", 0, ("struct", "CK_TOKEN_INFO"))
        call("C_Login", h, 1, ("bytes", USER_PIN), len(USER_PIN))
        rv, _ = call("C_FindObjectsInit", h, ("null",), 0)
        found: list[int] = []
        if rv == 0:
            _, (arr, n) = call("C_FindObjects", h, ("handles", 256), 256, ("ulong", 0))
            found = arr[:n]
            call("C_FindObjectsFinal", h)
        for o in found:
            items = [(t, b"", 512) for t in (0, 1, 2, 3, 0x11, 0x100, 0x180, 0x181, 0x103)]
            call("C_GetAttributeValue", h, o, ("tmpl", items), len(items))
            call("C_SignInit", h, ("mech", int(spec.CKM_SHA256_HMAC), None), o)
            call("C_Sign", h, ("bytes", b"x"), 1, ("out", 64), ("ulong", 64))
            call("C_DestroyObject", h, o) if o % 5 == 0 else None
    call("C_Finalize", ("null",))
    return seen


def test_corrupted_store_never_crashes(tmp_path: Path, lib_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(clean)))
    p11 = P11(lib_path)
    p11.initialize()
    _populate(p11)
    p11.finalize()
    import sqlite3

    with sqlite3.connect(clean / "store.db") as con:  # fold the WAL into the file we corrupt
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    original = (clean / "store.db").read_bytes()
    rng = random.Random(1234)
    c = Child(timeout=60)
    codes: dict[str, int] = {}
    try:
        for round_ in range(25):
            d = tmp_path / f"r{round_}"
            d.mkdir()
            conf = write_config(d)
            data = bytearray(original)
            for _ in range(rng.choice([1, 4, 32, 256])):
                pos = rng.randrange(100, len(data))  # keep the 100-byte header: a new file otherwise
                data[pos] ^= 1 << rng.randrange(8)
            (d / "store.db").write_bytes(bytes(data))
            c.mark()
            c.call("conf", str(conf))
            for code in _read_everything(c):
                codes[code] = codes.get(code, 0) + 1
    finally:
        c.stop()
        shutil.rmtree(tmp_path / "clean", ignore_errors=True)
    assert c.crashes == 0
    print(f"\nCORRUPT rounds=25 codes={codes}")
    assert "CKR_GENERAL_ERROR" not in codes, codes
    assert codes.get("CKR_OK", 0) > 100, "the corrupted stores were hardly read: the test proves little"
