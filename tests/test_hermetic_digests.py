"""Issue 25 item 1: digests, HMAC, check values and hash-then-sign never use the host's
OpenSSL (Python's hashlib links the system libcrypto and fetches through its default library
context; under ``default_properties = ?provider=pkcs11`` that is pkcs11-provider, which calls
back into us). SHA-1/SHA-2 run on ``native/digest.c`` inside the library; these tests drive
the built library: known answers against pyca for every length class, the state layouts of
SHA-512/t, HMAC key lengths around the block size, and a C host under the provider's forced
configuration."""

from __future__ import annotations

import hmac as std_hmac
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from cryptoki_shim import spec
from p11 import LIB, P11, USER_PIN
from test_native_hosts import assert_ok, build_dir, compile_host, conf, host_env, run  # noqa: F401  (fixtures)

A = spec
NATIVE = {
    A.CKM_SHA_1: hashes.SHA1, A.CKM_SHA224: hashes.SHA224, A.CKM_SHA256: hashes.SHA256,
    A.CKM_SHA384: hashes.SHA384, A.CKM_SHA512: hashes.SHA512, A.CKM_SHA512_224: hashes.SHA512_224,
    A.CKM_SHA512_256: hashes.SHA512_256, A.CKM_SHA3_224: hashes.SHA3_224, A.CKM_SHA3_256: hashes.SHA3_256,
    A.CKM_SHA3_384: hashes.SHA3_384, A.CKM_SHA3_512: hashes.SHA3_512,
}
HMACS = {A.CKM_SHA_1_HMAC: "sha1", A.CKM_SHA256_HMAC: "sha256", A.CKM_SHA384_HMAC: "sha384",
         A.CKM_SHA512_HMAC: "sha512", A.CKM_SHA224_HMAC: "sha224", A.CKM_SHA3_224_HMAC: "sha3_224",
         A.CKM_SHA3_256_HMAC: "sha3_256", A.CKM_SHA3_512_HMAC: "sha3_512"}
#: Around the 64- and 128-byte blocks, the 55/56/111/112 padding boundaries and the SHA-3
#: rates (144, 136, 104, 72).
LENGTHS = (0, 1, 7, 55, 56, 63, 64, 65, 71, 72, 73, 103, 104, 111, 112, 127, 128, 129, 135, 136, 143, 144, 145,
           1000, 70001)


def _pyca(algorithm: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    h = hashes.Hash(algorithm())
    h.update(data)
    return h.finalize()


def _multipart(p11: P11, s: int, ckm: int, data: bytes, step: int) -> bytes:
    m, _keep = p11.mechanism(ckm)
    p11.check("C_DigestInit", s, m)
    for i in range(0, len(data), step):
        chunk = data[i:i + step]
        p11.check("C_DigestUpdate", s, chunk, len(chunk))
    return p11._two_pass("C_DigestFinal", s)


@pytest.mark.parametrize("ckm", sorted(NATIVE), ids=lambda c: A.ckm_name(c))
def test_native_digests_match_pyca(user_session: int, token: P11, ckm: int) -> None:
    for n in LENGTHS:
        data = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        want = _pyca(NATIVE[ckm], data)
        assert token.digest(user_session, ckm, data) == want, n
        assert _multipart(token, user_session, ckm, data, 37) == want, n


def _hmac_key(p11: P11, s: int, value: bytes) -> int:
    return p11.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET,
                          A.CKA_VALUE: value, A.CKA_SIGN: True, A.CKA_VERIFY: True, A.CKA_TOKEN: False})


@pytest.mark.parametrize("ckm", sorted(HMACS), ids=lambda c: A.ckm_name(c))
def test_native_hmac_matches_rfc2104(user_session: int, token: P11, ckm: int) -> None:
    """Key lengths below, at and above the block (a longer key is hashed first), one-shot
    and multi-part, sign and verify."""
    name = HMACS[ckm]
    for key_len in (1, 20, 64, 65, 72, 73, 128, 129, 136, 137, 144, 145, 300):
        key = bytes((7 * i + 1) & 0xFF for i in range(key_len))
        h = _hmac_key(token, user_session, key)
        for n in (0, 3, 64, 200):
            data = b"m" * n
            want = std_hmac.new(key, data, name).digest()
            assert token.sign(user_session, ckm, h, data) == want, (key_len, n)
            m, _keep = token.mechanism(ckm)
            token.check("C_SignInit", user_session, m, h)
            token.check("C_SignUpdate", user_session, data[:1], len(data[:1]))
            token.check("C_SignUpdate", user_session, data[1:], len(data[1:]))
            assert token._two_pass("C_SignFinal", user_session) == want
            token.verify(user_session, ckm, h, data, want)
            bad = bytes([want[0] ^ 1]) + want[1:]
            m, _keep = token.mechanism(ckm)
            token.check("C_VerifyInit", user_session, m, h)
            assert token.call("C_Verify", user_session, data, len(data), bad, len(bad)) == A.CKR_SIGNATURE_INVALID


def test_check_value_is_sha1_of_the_value(user_session: int, token: P11) -> None:
    """CKA_CHECK_VALUE of a generic secret: the first 3 bytes of SHA-1 of CKA_VALUE."""
    h = _hmac_key(token, user_session, b"Jefe")
    assert token.get(user_session, h, A.CKA_CHECK_VALUE) == _pyca(hashes.SHA1, b"Jefe")[:3]


_PKCS11_PROVIDER = Path("/usr/lib/x86_64-linux-gnu/ossl-modules/pkcs11.so")
#: pkcs11-provider loading this module, every fetch of the default context preferring it.
_FORCED = """openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
alg_section = evp_properties
[evp_properties]
default_properties = ?provider=pkcs11
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = {provider}
pkcs11-module-path = {lib}
pkcs11-module-token-pin = {pin}
activate = 1
"""


def test_digests_under_forced_pkcs11_provider(build_dir: Path, conf: Path, tmp_path: Path) -> None:
    """The issue's configuration: `default_properties = ?provider=pkcs11` with the provider
    loading us. Before: C_DigestUpdate went hashlib -> pkcs11-provider -> C_DigestInit on
    us (refused as a re-entry, or recursing before the guard) and failed. Now every digest,
    the HMAC, the check value and a multi-part ECDSA-SHA256 are right, nothing on stderr."""
    if not _PKCS11_PROVIDER.exists():
        pytest.skip("pkcs11-provider is not installed (./run installs it)")
    cnf = tmp_path / "openssl.cnf"
    cnf.write_text(_FORCED.format(provider=_PKCS11_PROVIDER, lib=LIB, pin=USER_PIN.decode()))
    host = compile_host(build_dir, "host_digests")
    res = run([str(host), str(LIB)], host_env(conf, OPENSSL_CONF=str(cnf)))
    assert_ok(res)


_NO_HASHLIB_HOST = r'''
import sys, types
def _refuse(*a, **k):
    raise RuntimeError("hashlib used on a C_* path")
class _Poison(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _refuse
sys.modules["hashlib"] = _Poison("hashlib")
sys.path.insert(0, sys.argv[1])
from p11 import P11, SO_PIN, USER_PIN
from cryptoki_shim import spec as A
c = P11(sys.argv[2]); c.initialize()
c.init_token(0, SO_PIN, "t"); s = c.open(0); c.login(s, SO_PIN, user=0); c.init_pin(s, USER_PIN); c.logout(s)
c.login(s, USER_PIN)
out = []
for ckm in (A.CKM_SHA_1, A.CKM_SHA256, A.CKM_SHA512, A.CKM_SHA3_256):
    out.append(c.digest(s, ckm, b"abc").hex())
h = c.create(s, {A.CKA_CLASS: A.CKO_SECRET_KEY, A.CKA_KEY_TYPE: A.CKK_GENERIC_SECRET, A.CKA_VALUE: b"Jefe",
                 A.CKA_SIGN: True, A.CKA_TOKEN: False})
out.append(c.get(s, h, A.CKA_CHECK_VALUE).hex())
out.append(c.sign(s, A.CKM_SHA256_HMAC, h, b"what do ya want for nothing?").hex())
pub, priv = c.generate_key_pair(s, A.CKM_EC_EDWARDS_KEY_PAIR_GEN,
                                {A.CKA_EC_PARAMS: bytes.fromhex("06032b6570"), A.CKA_VERIFY: True}, {A.CKA_SIGN: True})
from p11 import ffi
ph = ffi.new("CK_EDDSA_PARAMS *", {"phFlag": 1, "ulContextDataLen": 0})
sig = c.sign(s, A.CKM_EDDSA, priv, b"prehashed", param=ph)
c.verify(s, A.CKM_EDDSA, pub, b"prehashed", sig, param=ph)
print(" ".join(out))
'''


def test_no_hashlib_on_any_c_path(tmp_path: Path) -> None:
    """A Python host whose ``hashlib`` refuses every use: digests (SHA-1/2 native, SHA-3 on
    pyca), a CKA_CHECK_VALUE, HMAC and Ed25519ph (the RFC 8032 prehash) all work. Before:
    each of them called hashlib (CKR_GENERAL_ERROR here)."""
    import os
    import subprocess
    import sys

    from p11 import write_config

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOKI_SHIM_LOG")}
    env["CRYPTOKI_SHIM_CONF"] = str(write_config(tmp_path))
    res = subprocess.run([sys.executable, "-c", _NO_HASHLIB_HOST, str(Path(__file__).parent), str(LIB)],
                         env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    got = res.stdout.split()
    assert got[1] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert got[3] == "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"
    assert got[4] == _pyca(hashes.SHA1, b"Jefe")[:3].hex()
    assert got[5] == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_fast_hmac_refuses_a_forged_prepared_state(p11: P11) -> None:
    """The one-shot HMAC builtin copies a prepared state onto the C stack; any Python code of
    the process can call it, so a state with an out-of-range block offset is refused (it
    would have written past the state), never hashed."""
    from cryptoki_shim.mechanisms import digest

    assert digest.native_ready() is not None
    with pytest.raises(ValueError):
        digest._FAST.hmac(A.CKM_SHA256, b"\xff" * 224, b"x")
    with pytest.raises(ValueError):
        digest._FAST.hmac(A.CKM_SHA256, b"\x00" * 10, b"x")
