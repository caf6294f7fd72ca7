"""Correctness under threads (issue #22): several client threads, each with its own session,
run the operations p11bench times concurrently on shared keys, through the .so; every result
is checked by pyca/hashlib afterwards (never by the module itself).

The module releases the GIL inside these operations (native ECDSA signing and EC key
generation, pyca's RSA verification; docs/performance.md "Thread scaling"), so threads do
interleave inside them. Nothing here is timed: throughput is the benchmark's business.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cryptoki_shim import spec as S
from cryptoki_shim.mechanisms import native
from p11 import P11, ffi
from vectors_abi import CURVE_OIDS, rsa_import, strip_octet, usage

THREADS = 4
ROUNDS = 25


def _run(token: P11, work: Callable[[int, int], list[Any]]) -> list[Any]:
    """``work(session, thread_index)`` on THREADS threads at once, each on its own session;
    the concatenated results, or the first thread's error raised here."""
    start = threading.Barrier(THREADS)
    results: list[list[Any]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def thread(i: int) -> None:
        try:
            s = token.open(0)
            try:
                start.wait()
                results[i] = work(s, i)
            finally:
                token.close(s)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=thread, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads did not finish"
    assert not errors, errors
    out = [r for rs in results for r in rs]
    assert len(out) == THREADS * ROUNDS
    return out


def _secret(token: P11, s: int, key_type: int, value: bytes, **flags: bool) -> int:
    attrs = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_KEY_TYPE: key_type, S.CKA_TOKEN: False, S.CKA_VALUE: value}
    attrs.update({getattr(S, f"CKA_{k.upper()}"): v for k, v in flags.items()})
    return token.create(s, attrs)


def _gcm(iv: bytes) -> tuple[Any, list[Any]]:
    p = ffi.new("CK_GCM_PARAMS *")
    buf = ffi.new("unsigned char[]", iv)
    p.pIv, p.ulIvLen, p.ulIvBits = buf, len(iv), 8 * len(iv)
    p.pAAD, p.ulAADLen, p.ulTagBits = ffi.NULL, 0, 128
    return p, [buf]


def test_ecdsa_signatures_from_threads_verify(token: P11, user_session: int) -> None:
    params, curve = CURVE_OIDS["P-256"]
    hpub, hpriv = token.generate_key_pair(user_session, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params),
                                          usage("sign"))
    pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, strip_octet(token.get(user_session, hpub, S.CKA_EC_POINT)))

    def work(s: int, _i: int) -> list[tuple[bytes, bytes]]:
        out = []
        for _ in range(ROUNDS):
            digest = os.urandom(32)
            out.append((digest, token.sign(s, S.CKM_ECDSA, hpriv, digest)))
        return out

    for digest, sig in _run(token, work):
        der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


def test_rsa_verify_from_threads_tells_good_from_bad(token: P11, user_session: int) -> None:
    """pyca signs; the module verifies in every thread (pyca releases the GIL inside): each
    good signature is CKR_OK, each altered one CKR_SIGNATURE_INVALID."""
    key = rsa.generate_private_key(65537, 2048)
    hpub, _hpriv = rsa_import(token, user_session, key)
    messages = [os.urandom(64) for _ in range(8)]
    sigs = [key.sign(m, padding.PKCS1v15(), hashes.SHA256()) for m in messages]

    def work(s: int, i: int) -> list[tuple[bool, int]]:
        out = []
        for r in range(ROUNDS):
            n = (i + r) % len(messages)
            good = r % 3 != 0
            sig = sigs[n] if good else bytes([sigs[n][0] ^ 1]) + sigs[n][1:]
            m, _keep = token.mechanism(S.CKM_SHA256_RSA_PKCS)
            token.check("C_VerifyInit", s, m, hpub)
            rv = token.call("C_Verify", s, messages[n], len(messages[n]), sig, len(sig))
            out.append((good, rv))
        return out

    for good, rv in _run(token, work):
        assert rv == (S.CKR_OK if good else S.CKR_SIGNATURE_INVALID)


def test_hmac_gcm_digest_from_threads_match_pyca(token: P11, user_session: int) -> None:
    mac_key, aes_key = os.urandom(32), os.urandom(16)
    hmac_h = _secret(token, user_session, S.CKK_GENERIC_SECRET, mac_key, sign=True)
    aes_h = _secret(token, user_session, S.CKK_AES, aes_key, encrypt=True)

    def work(s: int, i: int) -> list[tuple[bytes, bytes, bytes, bytes, bytes, bytes]]:
        out = []
        for _ in range(ROUNDS):
            data, iv = os.urandom(1024), os.urandom(12)
            mac = token.sign(s, S.CKM_SHA256_HMAC, hmac_h, data[:64])
            param, _keep = _gcm(iv)
            ct = token.encrypt(s, S.CKM_AES_GCM, aes_h, data, param)
            cbc_iv = os.urandom(16)
            cbc = token.encrypt(s, S.CKM_AES_CBC_PAD, aes_h, data, cbc_iv)
            digest = token.digest(s, S.CKM_SHA256, data)
            out.append((data, iv, cbc_iv, mac, ct + b"|" + cbc, digest))
        return out

    for data, iv, cbc_iv, mac, cts, digest in _run(token, work):
        assert mac == hmac.new(mac_key, data[:64], hashlib.sha256).digest()
        ct, cbc = cts[:1024 + 16], cts[1024 + 17:]
        assert AESGCM(aes_key).decrypt(iv, ct, None) == data
        d = Cipher(algorithms.AES(aes_key), modes.CBC(cbc_iv)).decryptor()
        plain = d.update(cbc) + d.finalize()
        assert plain == data + bytes([16]) * 16  # PKCS#7: a whole block of padding after 1 KiB
        assert digest == hashlib.sha256(data).digest()


def test_key_pairs_generated_from_threads_are_each_consistent(token: P11, user_session: int) -> None:
    """The native generator (GIL released) from several threads: every pair's point is the
    one pyca derives from its scalar, and no two pairs are the same."""
    params, curve = CURVE_OIDS["P-256"]
    before = native.keys_generated()

    def work(s: int, _i: int) -> list[tuple[bytes, bytes]]:
        out = []
        for _ in range(ROUNDS):
            hpub, hpriv = token.generate_key_pair(s, S.CKM_EC_KEY_PAIR_GEN, usage("verify", ec_params=params),
                                                  usage("sign", sensitive=False, extractable=True))
            out.append((token.get(s, hpriv, S.CKA_VALUE), strip_octet(token.get(s, hpub, S.CKA_EC_POINT))))
            token.destroy(s, hpub)
            token.destroy(s, hpriv)
        return out

    pairs = _run(token, work)
    assert native.keys_generated() == before + THREADS * ROUNDS
    assert len({value for value, _ in pairs}) == len(pairs)
    for value, point in pairs:
        derived = ec.derive_private_key(int.from_bytes(value, "big"), curve).public_key()
        assert derived.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == point


def test_session_info_from_threads_follows_the_login_state(token: P11) -> None:
    """C_GetSessionInfo's packed answer (kept per login state) from threads while the login
    state changes: every answer is one of the two valid states of an R/W session, and after
    the last change each thread's session reads CKS_RW_PUBLIC_SESSION."""
    anchor = token.open(0)
    seen: list[int] = []

    def work(s: int, _i: int) -> list[int]:
        return [int(token.session_info(s).state) for _ in range(ROUNDS)]

    flipping = threading.Event()

    def flip() -> None:
        while not flipping.is_set():
            token.login(anchor, b"1234")
            token.logout(anchor)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        seen = _run(token, work)
    finally:
        flipping.set()
        flipper.join(60)
    assert set(seen) <= {S.CKS_RW_PUBLIC_SESSION, S.CKS_RW_USER_FUNCTIONS}
    assert token.session_info(anchor).state == S.CKS_RW_PUBLIC_SESSION
    token.close(anchor)
