"""ECDSA through the library's C helper (native/fastsign.c, issue #9), through the .so.

The helper signs without the GIL; these tests check that what it produces is what pyca and
the OpenSSL command line accept (hashing mechanisms and raw CKM_ECDSA inputs shorter and
longer than the order), that concurrent signers all produce valid signatures, that the
helper is really the path taken when the library runs, and that pyca remains the path when
the package runs without the library.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cryptoki_shim import spec as S
from cryptoki_shim import runtime
from cryptoki_shim.mechanisms import keys, native, registry
from p11 import P11, raises_ckr
from vectors_abi import CURVE_OIDS, strip_octet, usage
from vectors_util import KeyView

SIZES = {"P-256": 32, "P-384": 48, "P-521": 66}
HASHED = ((S.CKM_ECDSA_SHA256, hashes.SHA256), (S.CKM_ECDSA_SHA384, hashes.SHA384),
          (S.CKM_ECDSA_SHA512, hashes.SHA512), (S.CKM_ECDSA_SHA1, hashes.SHA1))
#: a raw CKM_ECDSA input of this many bytes verifies with pyca as Prehashed(this hash)
PREHASHED = {20: hashes.SHA1, 28: hashes.SHA224, 32: hashes.SHA256, 48: hashes.SHA384, 64: hashes.SHA512}
MSG = b"native signing through the library\n"


def _pair(p: P11, s: int, curve: str) -> tuple[int, int, ec.EllipticCurvePublicKey]:
    params, pyca_curve = CURVE_OIDS[curve]
    hpub, hpriv = p.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params),
                                      usage("sign", sensitive=True))
    point = strip_octet(p.get(s, hpub, S.CKA_EC_POINT))
    return hpub, hpriv, ec.EllipticCurvePublicKey.from_encoded_point(pyca_curve, point)


def _der(sig: bytes, n: int) -> bytes:
    assert len(sig) == 2 * n
    return utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))


def _openssl_verify(tmp_path, pub: ec.EllipticCurvePublicKey, digest: bytes, der: bytes) -> None:
    """OpenSSL's own ECDSA verify of a raw digest (it truncates to the order by itself)."""
    (tmp_path / "pub.pem").write_bytes(pub.public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "in").write_bytes(digest)
    (tmp_path / "sig").write_bytes(der)
    result = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
                             "-in", str(tmp_path / "in"), "-sigfile", str(tmp_path / "sig")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Verified Successfully" in result.stdout, (result.stdout, result.stderr)


def test_the_library_carries_the_helper(token: P11) -> None:
    assert runtime.lib is not None and getattr(runtime.lib, "shim_ecdsa_sign", None) is not None


@pytest.mark.parametrize("curve", sorted(SIZES))
def test_hashing_mechanisms_verify_with_pyca(token: P11, user_session: int, curve: str) -> None:
    s, n = user_session, SIZES[curve]
    hpub, hpriv, pub = _pair(token, s, curve)
    for mech, h in HASHED:
        sig = token.sign(s, mech, hpriv, MSG)
        pub.verify(_der(sig, n), MSG, ec.ECDSA(h()))
        token.verify(s, mech, hpub, MSG, sig)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command line not installed")
@pytest.mark.parametrize("curve", sorted(SIZES))
def test_raw_ecdsa_shorter_and_longer_than_the_order(token: P11, user_session: int, curve: str, tmp_path) -> None:
    """CKM_ECDSA keeps the input's leftmost bits of the order's length (spec §2.3.1)."""
    s, n = user_session, SIZES[curve]
    hpub, hpriv, pub = _pair(token, s, curve)
    lengths = [20, 28, 32, 40, 48, 64] + ([n + 1, 80] if n < 64 else [])
    for length in lengths:
        digest = os.urandom(length)
        sig = token.sign(s, S.CKM_ECDSA, hpriv, digest)
        der = _der(sig, n)
        # the command line takes at most 64 bytes; a longer input's leftmost 64 already hold
        # every bit the order keeps (n < 64 when longer ones are tried)
        _openssl_verify(tmp_path, pub, digest[:64], der)
        if length in PREHASHED:
            pub.verify(der, digest, ec.ECDSA(utils.Prehashed(PREHASHED[length]())))
        token.verify(s, S.CKM_ECDSA, hpub, digest, sig)


def test_p521_raw_input_beyond_64_bytes_still_refused(token: P11, user_session: int) -> None:
    """The same answer as the pyca path gives (no Prehashed carrier that long)."""
    _hpub, hpriv, _pub = _pair(token, user_session, "P-521")
    with raises_ckr(S.CKR_DATA_LEN_RANGE):
        token.sign(user_session, S.CKM_ECDSA, hpriv, os.urandom(66))


def test_signing_through_the_library_takes_the_native_path(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv, pub = _pair(token, s, "P-256")
    before = native.signatures_made()
    digest = os.urandom(32)
    sig = token.sign(s, S.CKM_ECDSA, hpriv, digest)
    sig2 = token.sign(s, S.CKM_ECDSA_SHA384, hpriv, MSG)
    assert native.signatures_made() == before + 2
    pub.verify(_der(sig, 32), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    pub.verify(_der(sig2, 32), MSG, ec.ECDSA(hashes.SHA384()))


def test_two_threads_signing_concurrently_all_verify(token: P11, user_session: int) -> None:
    hpub, hpriv, pub = _pair(token, user_session, "P-256")
    rounds, results, errors = 60, [], []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            s = token.open(0)
            start.wait()
            for _ in range(rounds):
                digest = os.urandom(32)
                results.append((digest, token.sign(s, S.CKM_ECDSA, hpriv, digest)))
            token.close(s)
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)

    before = native.signatures_made()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 2 * rounds
    assert native.signatures_made() == before + 2 * rounds
    for digest, sig in results:
        pub.verify(_der(sig, 32), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_without_the_library_pyca_signs(token: P11, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process use (admin CLI, direct imports) has no ``lib``: no native signer, pyca signs."""
    lib = runtime.lib  # the loaded library's, to read its counter while the package does without
    monkeypatch.setattr(runtime, "lib", None)
    entry = registry.lookup(S.CKM_EC_KEY_PAIR_GEN)
    _pub, priv = entry.family.generate_key_pair(entry, None, {S.CKA_EC_PARAMS: CURVE_OIDS["P-256"][0]}, {})
    view = KeyView({**priv, S.CKA_CLASS: S.CKO_PRIVATE_KEY})
    key = keys.load_private(view)
    assert native.ecdsa_signer(key, 32) is None
    before = lib.shim_fastsign_count()
    ecdsa = registry.lookup(S.CKM_ECDSA)
    sig = ecdsa.family.sign_init(ecdsa, None, view).oneshot(b"\x42" * 32)
    assert lib.shim_fastsign_count() == before
    key.public_key().verify(_der(sig, 32), b"\x42" * 32, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# ----------------------------------------------------------------------------- key generation (issue #22)


@pytest.mark.parametrize("curve", sorted(SIZES))
def test_generated_key_pair_takes_the_native_path_and_is_consistent(token: P11, user_session: int,
                                                                   curve: str) -> None:
    """C_GenerateKeyPair on P-256/384/521 runs in the C helper (GIL released); the scalar and
    the point it returns belong together (pyca derives the same point from CKA_VALUE), the
    SPKI is pyca's encoding of that point, and the pair signs and verifies."""
    s, n = user_session, SIZES[curve]
    params, pyca_curve = CURVE_OIDS[curve]
    before = native.keys_generated()
    hpub, hpriv = token.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params),
                                          usage("sign", sensitive=False, extractable=True))
    assert native.keys_generated() == before + 1
    point = strip_octet(token.get(s, hpub, S.CKA_EC_POINT))
    value = token.get(s, hpriv, S.CKA_VALUE)
    assert len(value) == n and len(point) == 2 * n + 1
    derived = ec.derive_private_key(int.from_bytes(value, "big"), pyca_curve)
    assert derived.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint) == point
    spki = derived.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert token.get(s, hpub, S.CKA_PUBLIC_KEY_INFO) == spki == token.get(s, hpriv, S.CKA_PUBLIC_KEY_INFO)
    sig = token.sign(s, S.CKM_ECDSA_SHA256, hpriv, MSG)
    derived.public_key().verify(_der(sig, n), MSG, ec.ECDSA(hashes.SHA256()))
    token.verify(s, S.CKM_ECDSA_SHA256, hpub, MSG, sig)


def test_generation_on_other_curves_stays_on_pyca(token: P11, user_session: int) -> None:
    """secp256k1 has no helper group here: pyca generates, and the pair is still usable."""
    before = native.keys_generated()
    hpub, hpriv = token.generate_key_pair(user_session, S.CKM_EC_KEY_PAIR_GEN,
                                          usage("verify", ec_params=CURVE_OIDS["secp256k1"][0]), usage("sign"))
    assert native.keys_generated() == before
    point = strip_octet(token.get(user_session, hpub, S.CKA_EC_POINT))
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), point)
    sig = token.sign(user_session, S.CKM_ECDSA_SHA256, hpriv, MSG)
    pub.verify(_der(sig, 32), MSG, ec.ECDSA(hashes.SHA256()))
