"""The PKCS#11 3.2 function set through the built .so (issue 17 items 1 and 5).

Every call goes through the 3.2 function list from C_GetInterface (``tests/p11.py``), or the
3.0 / 2.40 lists where a test is about an old client. Use cases next to abuse cases: wrong
state, wrong key or mechanism, NULL pointers, buffer-too-small protocol.
"""

from __future__ import annotations

from typing import Any

import pytest

from cryptoki_shim import spec
from p11 import P11, Template, ffi

NULL = ffi.NULL
P256 = bytes.fromhex("06082a8648ce3d030107")
DATA = b"the data a 3.2 client verifies with the signature given first"


def rv(client: P11, name: str, *args: Any) -> str:
    return spec.ckr_name(client.call(name, *args))


@pytest.fixture
def ec_pair(token: P11, user_session: int) -> tuple[int, int]:
    return token.generate_key_pair(
        user_session, spec.CKM_EC_KEY_PAIR_GEN,
        {spec.CKA_EC_PARAMS: P256, spec.CKA_VERIFY: True},
        {spec.CKA_SIGN: True, spec.CKA_SENSITIVE: True})


def _vs_init(client: P11, s: int, key: int, sig: bytes, mech: int = spec.CKM_ECDSA_SHA256) -> str:
    m, _keep = client.mechanism(mech)
    return rv(client, "C_VerifySignatureInit", s, m, key, sig, len(sig))


# ---------------------------------------------------------------------- interfaces


def test_the_3_2_list_has_the_3_0_functions_and_twelve_more(p11: P11) -> None:
    pp = ffi.new("CK_INTERFACE_PTR *")
    assert p11.lib.C_GetInterface(b"PKCS 11", [{"major": 3, "minor": 0}], pp, 0) == 0
    fl30 = ffi.cast("CK_FUNCTION_LIST_3_0 *", pp[0].pFunctionList)
    names_30 = [n for n, _ in ffi.typeof("CK_FUNCTION_LIST_3_0").fields][1:]
    names_32 = [n for n, _ in ffi.typeof("CK_FUNCTION_LIST_3_2").fields][1:]
    assert names_32[:92] == names_30 and len(names_32) == 104
    for name in names_30:
        if name != "C_GetInfo":  # each list's C_GetInfo reports its own version
            assert getattr(fl30, name) == getattr(p11.fl, name), name
    assert fl30.C_GetInfo != p11.fl.C_GetInfo
    assert all(getattr(p11.fl, n) != NULL for n in names_32)


def test_a_2_40_client_through_c_get_function_list_still_works(token: P11) -> None:
    pp = ffi.new("CK_FUNCTION_LIST_PTR *")
    assert token.lib.C_GetFunctionList(pp) == 0
    fl = pp[0]
    assert (fl.version.major, fl.version.minor) == (2, 40)
    hs = ffi.new("CK_SESSION_HANDLE *")
    assert fl.C_OpenSession(0, spec.CKF_SERIAL_SESSION, NULL, NULL, hs) == 0
    out = ffi.new("unsigned char[]", 16)
    assert fl.C_GenerateRandom(hs[0], out, 16) == 0
    info = ffi.new("CK_SESSION_INFO *")
    assert fl.C_GetSessionInfo(hs[0], info) == 0 and info.state == spec.CKS_RO_PUBLIC_SESSION
    assert fl.C_CloseSession(hs[0]) == 0


# ---------------------------------------------------------------------- C_VerifySignature*


def test_verify_signature_single_part(token: P11, user_session: int, ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    sig = token.sign(user_session, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert _vs_init(token, user_session, pub, sig) == "CKR_OK"
    assert rv(token, "C_VerifySignature", user_session, DATA, len(DATA)) == "CKR_OK"
    # the one-shot ended the operation
    assert rv(token, "C_VerifySignature", user_session, DATA, len(DATA)) == "CKR_OPERATION_NOT_INITIALIZED"


def test_verify_signature_multi_part(token: P11, user_session: int, ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    sig = token.sign(user_session, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert _vs_init(token, user_session, pub, sig) == "CKR_OK"
    for part in (DATA[:10], DATA[10:], b""):
        assert rv(token, "C_VerifySignatureUpdate", user_session, part, len(part)) == "CKR_OK"
    assert rv(token, "C_VerifySignatureFinal", user_session) == "CKR_OK"
    assert rv(token, "C_VerifySignatureFinal", user_session) == "CKR_OPERATION_NOT_INITIALIZED"


def test_verify_signature_refuses_a_wrong_signature_and_ends(token: P11, user_session: int,
                                                             ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    sig = bytearray(token.sign(user_session, spec.CKM_ECDSA_SHA256, priv, DATA))
    sig[5] ^= 1
    assert _vs_init(token, user_session, pub, bytes(sig)) == "CKR_OK"
    assert rv(token, "C_VerifySignature", user_session, DATA, len(DATA)) == "CKR_SIGNATURE_INVALID"
    assert rv(token, "C_VerifySignature", user_session, DATA, len(DATA)) == "CKR_OPERATION_NOT_INITIALIZED"
    good = token.sign(user_session, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert _vs_init(token, user_session, pub, good) == "CKR_OK"
    other = DATA + b"!"
    assert rv(token, "C_VerifySignatureUpdate", user_session, other, len(other)) == "CKR_OK"
    assert rv(token, "C_VerifySignatureFinal", user_session) == "CKR_SIGNATURE_INVALID"
    # a signature of the wrong length for P-256
    assert _vs_init(token, user_session, pub, good + b"\x00") == "CKR_OK"
    assert rv(token, "C_VerifySignature", user_session, DATA, len(DATA)) == "CKR_SIGNATURE_LEN_RANGE"


def test_verify_signature_state_rules(token: P11, user_session: int, ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    s = user_session
    sig = token.sign(s, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert rv(token, "C_VerifySignatureUpdate", s, DATA, len(DATA)) == "CKR_OPERATION_NOT_INITIALIZED"
    assert _vs_init(token, s, pub, sig) == "CKR_OK"
    assert _vs_init(token, s, pub, sig) == "CKR_OPERATION_ACTIVE"  # and it stays
    assert rv(token, "C_VerifySignatureUpdate", s, DATA, len(DATA)) == "CKR_OK"
    # a one-shot after an update: refused, and the operation ends (§5.2)
    assert rv(token, "C_VerifySignature", s, DATA, len(DATA)) == "CKR_OPERATION_ACTIVE"
    assert rv(token, "C_VerifySignatureFinal", s) == "CKR_OPERATION_NOT_INITIALIZED"
    # a NULL mechanism cancels
    assert _vs_init(token, s, pub, sig) == "CKR_OK"
    assert rv(token, "C_VerifySignatureInit", s, NULL, pub, sig, len(sig)) == "CKR_OK"
    assert rv(token, "C_VerifySignatureFinal", s) == "CKR_OPERATION_NOT_INITIALIZED"
    # C_SessionCancel(CKF_VERIFY) ends it
    assert _vs_init(token, s, pub, sig) == "CKR_OK"
    assert rv(token, "C_SessionCancel", s, spec.CKF_VERIFY) == "CKR_OK"
    assert rv(token, "C_VerifySignature", s, DATA, len(DATA)) == "CKR_OPERATION_NOT_INITIALIZED"


def test_verify_signature_is_its_own_operation_next_to_c_verify_init(token: P11, user_session: int,
                                                                      ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    s = user_session
    sig = token.sign(s, spec.CKM_ECDSA_SHA256, priv, DATA)
    m, _keep = token.mechanism(spec.CKM_ECDSA_SHA256)
    token.check("C_VerifyInit", s, m, pub)
    assert _vs_init(token, s, pub, sig) == "CKR_OK"
    assert rv(token, "C_VerifyInit", s, m, pub) == "CKR_OPERATION_ACTIVE"  # the C_VerifyInit one is kept
    assert rv(token, "C_VerifySignature", s, DATA, len(DATA)) == "CKR_OK"
    assert rv(token, "C_Verify", s, DATA, len(DATA), sig, len(sig)) == "CKR_OK"


def test_verify_signature_key_and_mechanism_checks(token: P11, user_session: int, ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    s = user_session
    sig = token.sign(s, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert _vs_init(token, s, priv, sig) in ("CKR_KEY_FUNCTION_NOT_PERMITTED", "CKR_KEY_TYPE_INCONSISTENT")
    assert _vs_init(token, s, pub, sig, spec.CKM_AES_CBC) == "CKR_MECHANISM_INVALID"
    assert _vs_init(token, s, pub, sig, spec.CKM_SHA256_RSA_PKCS) == "CKR_KEY_TYPE_INCONSISTENT"
    assert _vs_init(token, s, 0xDEAD, sig) == "CKR_KEY_HANDLE_INVALID"
    no_verify = token.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, {spec.CKA_EC_PARAMS: P256, spec.CKA_VERIFY: False},
                                        {spec.CKA_SIGN: True})[0]
    assert _vs_init(token, s, no_verify, sig) == "CKR_KEY_FUNCTION_NOT_PERMITTED"
    m, _keep = token.mechanism(spec.CKM_ECDSA_SHA256)
    assert rv(token, "C_VerifySignatureInit", s, m, pub, NULL, 64) == "CKR_ARGUMENTS_BAD"
    # nothing was started by the refusals
    assert rv(token, "C_VerifySignatureFinal", s) == "CKR_OPERATION_NOT_INITIALIZED"


def test_verify_signature_null_data_is_arguments_bad_and_ends(token: P11, user_session: int,
                                                              ec_pair: tuple[int, int]) -> None:
    pub, priv = ec_pair
    sig = token.sign(user_session, spec.CKM_ECDSA_SHA256, priv, DATA)
    assert _vs_init(token, user_session, pub, sig) == "CKR_OK"
    assert rv(token, "C_VerifySignatureUpdate", user_session, NULL, 5) == "CKR_ARGUMENTS_BAD"
    assert rv(token, "C_VerifySignatureFinal", user_session) == "CKR_OPERATION_NOT_INITIALIZED"


def test_verify_signature_with_ml_dsa_and_its_context(token: P11, user_session: int) -> None:
    """The 3.2 pairing: a FIPS 204 signature made by pyca, verified with the signature first,
    single- and multi-part, with its context string in CK_SIGN_ADDITIONAL_CONTEXT."""
    from cryptography.hazmat.primitives.asymmetric import mldsa
    from pqc_util import sign_context

    s = user_session
    ours = mldsa.MLDSA65PrivateKey.generate()
    pub = token.create(s, {spec.CKA_CLASS: spec.CKO_PUBLIC_KEY, spec.CKA_KEY_TYPE: spec.CKK_ML_DSA,
                           spec.CKA_PARAMETER_SET: spec.CKP_ML_DSA_65, spec.CKA_VERIFY: True, spec.CKA_TOKEN: False,
                           spec.CKA_VALUE: ours.public_key().public_bytes_raw()})
    sig = ours.sign(DATA, b"ctx")
    param = sign_context(b"ctx")
    m, _keep = token.mechanism(spec.CKM_ML_DSA, param)
    token.check("C_VerifySignatureInit", s, m, pub, sig, len(sig))
    token.check("C_VerifySignature", s, DATA, len(DATA))
    token.check("C_VerifySignatureInit", s, m, pub, sig, len(sig))
    for part in (DATA[:7], DATA[7:]):
        token.check("C_VerifySignatureUpdate", s, part, len(part))
    token.check("C_VerifySignatureFinal", s)
    other, _keep2 = token.mechanism(spec.CKM_ML_DSA, sign_context(b"other"))
    token.check("C_VerifySignatureInit", s, other, pub, sig, len(sig))
    assert rv(token, "C_VerifySignature", s, DATA, len(DATA)) == "CKR_SIGNATURE_INVALID"


def test_verify_signature_bad_handles(p11: P11) -> None:
    assert rv(p11, "C_VerifySignature", 0xBAD, NULL, 0) == "CKR_SESSION_HANDLE_INVALID"
    assert rv(p11, "C_VerifySignatureUpdate", 0xBAD, NULL, 0) == "CKR_SESSION_HANDLE_INVALID"
    assert rv(p11, "C_VerifySignatureFinal", 0xBAD) == "CKR_SESSION_HANDLE_INVALID"
    assert rv(p11, "C_VerifySignatureInit", 0xBAD, NULL, 0, NULL, 0) == "CKR_SESSION_HANDLE_INVALID"


# ---------------------------------------------------------------------- validation flags, async


def test_session_validation_flags(token: P11, user_session: int) -> None:
    flags = ffi.new("CK_FLAGS *", 0xFFFF)
    assert rv(token, "C_GetSessionValidationFlags", user_session, spec.CKS_LAST_VALIDATION_OK, flags) == "CKR_OK"
    assert flags[0] == 0  # this token has no validation object: no operation meets one
    assert rv(token, "C_GetSessionValidationFlags", user_session, spec.CKS_LAST_VALIDATION_OK, NULL) \
        == "CKR_ARGUMENTS_BAD"
    assert rv(token, "C_GetSessionValidationFlags", user_session, 7, flags) == "CKR_ARGUMENTS_BAD"
    assert rv(token, "C_GetSessionValidationFlags", 0xBAD, spec.CKS_LAST_VALIDATION_OK, flags) \
        == "CKR_SESSION_HANDLE_INVALID"


def test_session_validation_flags_before_initialize(p11: P11) -> None:
    p11.finalize()
    try:
        flags = ffi.new("CK_FLAGS *")
        assert rv(p11, "C_GetSessionValidationFlags", 1, spec.CKS_LAST_VALIDATION_OK, flags) \
            == "CKR_CRYPTOKI_NOT_INITIALIZED"
    finally:
        p11.initialize()


def test_no_asynchronous_sessions(token: P11, user_session: int) -> None:
    hs = ffi.new("CK_SESSION_HANDLE *", 0)
    flags = spec.CKF_SERIAL_SESSION | spec.CKF_ASYNC_SESSION
    assert rv(token, "C_OpenSession", 0, flags, NULL, NULL, hs) == "CKR_SESSION_ASYNC_NOT_SUPPORTED"
    assert hs[0] == 0
    assert not token.token_info(0).flags & spec.CKF_ASYNC_SESSION_SUPPORTED
    data = ffi.new("CK_ASYNC_DATA *")
    ident = ffi.new("CK_ULONG *")
    name = b"C_Sign"
    s = user_session
    assert rv(token, "C_AsyncComplete", s, name, data) == "CKR_FUNCTION_NOT_SUPPORTED"
    assert rv(token, "C_AsyncGetID", s, name, ident) == "CKR_FUNCTION_NOT_SUPPORTED"
    assert rv(token, "C_AsyncJoin", s, name, 1, NULL, 0) == "CKR_FUNCTION_NOT_SUPPORTED"
    assert rv(token, "C_AsyncComplete", 0xBAD, name, data) == "CKR_SESSION_HANDLE_INVALID"
    assert rv(token, "C_AsyncGetID", 0xBAD, NULL, NULL) == "CKR_SESSION_HANDLE_INVALID"
    assert rv(token, "C_AsyncJoin", 0xBAD, NULL, 0, NULL, 0) == "CKR_SESSION_HANDLE_INVALID"


# ---------------------------------------------------------------------- authenticated wrapping


def _aes(token: P11, s: int, **attrs: Any) -> int:
    base = {spec.CKA_VALUE_LEN: 32, spec.CKA_WRAP: True, spec.CKA_UNWRAP: True, spec.CKA_ENCRYPT: True,
            spec.CKA_DECRYPT: True, spec.CKA_EXTRACTABLE: True, spec.CKA_SENSITIVE: False}
    base.update({getattr(spec, f"CKA_{k.upper()}"): v for k, v in attrs.items()})
    return token.generate_key(s, spec.CKM_AES_KEY_GEN, base)


def _gcm(iv: bytes = b"\x07" * 12, aad: bytes = b"") -> tuple[Any, list[Any]]:
    p = ffi.new("CK_GCM_PARAMS *")
    keep = [ffi.new("unsigned char[]", iv), ffi.new("unsigned char[]", aad or b"\x00")]
    p.pIv, p.ulIvLen, p.ulIvBits = keep[0], len(iv), len(iv) * 8
    p.pAAD, p.ulAADLen = (keep[1], len(aad)) if aad else (NULL, 0)
    p.ulTagBits = 128
    m, keep_m = P11.mechanism(spec.CKM_AES_GCM, p)
    return m, keep + keep_m


def _wrap(token: P11, s: int, m: Any, kek: int, key: int, aad: bytes) -> bytes:
    n = ffi.new("CK_ULONG *")
    token.check("C_WrapKeyAuthenticated", s, m, kek, key, aad, len(aad), NULL, n)
    buf = ffi.new("unsigned char[]", n[0])
    token.check("C_WrapKeyAuthenticated", s, m, kek, key, aad, len(aad), buf, n)
    return ffi.buffer(buf, n[0])[:]


def _unwrap(token: P11, s: int, m: Any, kek: int, wrapped: bytes, aad: bytes) -> tuple[str, int]:
    t = Template({spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                  spec.CKA_EXTRACTABLE: True, spec.CKA_SENSITIVE: False})
    h = ffi.new("CK_OBJECT_HANDLE *")
    code = rv(token, "C_UnwrapKeyAuthenticated", s, m, kek, wrapped, len(wrapped), t.array, t.count,
              aad, len(aad), h)
    return code, h[0]


def test_wrap_key_authenticated_round_trip_binds_the_associated_data(token: P11, user_session: int) -> None:
    s = user_session
    kek, key = _aes(token, s), _aes(token, s)
    m, _keep = _gcm()
    aad = b"key of tenant 42"
    wrapped = _wrap(token, s, m, kek, key, aad)
    assert len(wrapped) == 32 + 16  # the value and the GCM tag
    code, new = _unwrap(token, s, m, kek, wrapped, aad)
    assert code == "CKR_OK"
    assert token.get(s, new, spec.CKA_VALUE) == token.get(s, key, spec.CKA_VALUE)
    # other associated data, none, or a flipped bit: the tag fails
    assert _unwrap(token, s, m, kek, wrapped, b"key of tenant 43")[0] == "CKR_WRAPPED_KEY_INVALID"
    assert _unwrap(token, s, m, kek, wrapped, b"")[0] == "CKR_WRAPPED_KEY_INVALID"
    assert _unwrap(token, s, m, kek, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), aad)[0] == "CKR_WRAPPED_KEY_INVALID"
    # the same as C_WrapKey with that AAD in CK_GCM_PARAMS: one wrapping, two doors
    m2, _keep2 = _gcm(aad=aad)
    n = ffi.new("CK_ULONG *", 100)
    buf = ffi.new("unsigned char[]", 100)
    token.check("C_WrapKey", s, m2, kek, key, buf, n)
    assert ffi.buffer(buf, n[0])[:] == wrapped


def test_wrap_key_authenticated_buffer_protocol(token: P11, user_session: int) -> None:
    s = user_session
    kek, key = _aes(token, s), _aes(token, s)
    m, _keep = _gcm()
    n = ffi.new("CK_ULONG *", 4)
    small = ffi.new("unsigned char[]", 4)
    assert rv(token, "C_WrapKeyAuthenticated", s, m, kek, key, b"a", 1, small, n) == "CKR_BUFFER_TOO_SMALL"
    assert n[0] == 48
    assert rv(token, "C_WrapKeyAuthenticated", s, m, kek, key, b"a", 1, NULL, NULL) == "CKR_ARGUMENTS_BAD"


def test_wrap_key_authenticated_refusals(token: P11, user_session: int) -> None:
    s = user_session
    kek, key = _aes(token, s), _aes(token, s)
    n = ffi.new("CK_ULONG *")
    m, _keep = _gcm(aad=b"in the parameter")
    assert rv(token, "C_WrapKeyAuthenticated", s, m, kek, key, b"a", 1, NULL, n) == "CKR_MECHANISM_PARAM_INVALID"
    kw, _kw_keep = P11.mechanism(spec.CKM_AES_KEY_WRAP)
    assert rv(token, "C_WrapKeyAuthenticated", s, kw, kek, key, b"a", 1, NULL, n) == "CKR_MECHANISM_INVALID"
    assert rv(token, "C_WrapKeyAuthenticated", s, NULL, kek, key, b"a", 1, NULL, n) == "CKR_ARGUMENTS_BAD"
    g, _g_keep = _gcm()
    assert rv(token, "C_WrapKeyAuthenticated", s, g, kek, key, NULL, 3, NULL, n) == "CKR_ARGUMENTS_BAD"
    stuck = _aes(token, s, extractable=False)
    assert rv(token, "C_WrapKeyAuthenticated", s, g, kek, stuck, b"a", 1, NULL, n) == "CKR_KEY_UNEXTRACTABLE"
    no_wrap = _aes(token, s, wrap=False)
    assert rv(token, "C_WrapKeyAuthenticated", s, g, no_wrap, key, b"a", 1, NULL, n) \
        == "CKR_KEY_FUNCTION_NOT_PERMITTED"
    assert rv(token, "C_WrapKeyAuthenticated", 0xBAD, g, kek, key, b"a", 1, NULL, n) == "CKR_SESSION_HANDLE_INVALID"
    t = Template({spec.CKA_CLASS: spec.CKO_SECRET_KEY})
    h = ffi.new("CK_OBJECT_HANDLE *")
    assert rv(token, "C_UnwrapKeyAuthenticated", s, kw, kek, b"x" * 40, 40, t.array, t.count, b"", 0, h) \
        == "CKR_MECHANISM_INVALID"
    assert rv(token, "C_UnwrapKeyAuthenticated", s, g, kek, b"x" * 48, 48, t.array, t.count, b"", 0, NULL) \
        == "CKR_ARGUMENTS_BAD"



# ---------------------------------------------------------------------- the documented tables


def test_conformance_doc_lists_every_function_with_its_interfaces() -> None:
    """docs/conformance.md's function table is functions.h's order, with the lists each is in."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    functions = re.findall(r"^CK_FN\((\w+),", (root / "native" / "functions.h").read_text(), re.M)
    rows = re.findall(r"^\| (\d+) \| `(C_\w+)` \| (✓?) \| (✓?) \| ✓ \|", (root / "docs" / "conformance.md").read_text(),
                      re.M)
    assert [name for _i, name, _a, _b in rows] == functions and len(functions) == 104
    for i, name, in_240, in_30 in rows:
        assert int(i) == functions.index(name)
        assert (in_240 == "✓", in_30 == "✓") == (int(i) < 68, int(i) < 92), name
