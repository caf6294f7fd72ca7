"""Issue 23 item 5, through the built library: token keys with CKA_PRIVATE FALSE are made,
stored and used without a login (PKCS#11 3.0 §5.6 session states: an R/W Public session has
read/write access to public token objects), in this process, in another one and after a
restart; private ones still need the user's login. The at-rest side (sealed under the
public-object key, not the PIN's) is in tests/store/test_at_rest_hardening.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import der, spec
from p11 import P11, raises_ckr

P256 = bytes.fromhex("06082a8648ce3d030107")
KEY = bytes(range(32))
IV = bytes(16)


def aes_template(private: bool | None, extra: dict[int, Any] | None = None) -> dict[int, Any]:
    attrs: dict[int, Any] = {spec.CKA_TOKEN: True, spec.CKA_VALUE_LEN: 32, spec.CKA_ENCRYPT: True,
                             spec.CKA_DECRYPT: True, spec.CKA_LABEL: b"pub-aes"}
    if private is not None:
        attrs[spec.CKA_PRIVATE] = private
    attrs.update(extra or {})
    return attrs


def ec_templates(private: bool | None) -> tuple[dict[int, Any], dict[int, Any]]:
    pub = {spec.CKA_TOKEN: True, spec.CKA_EC_PARAMS: P256, spec.CKA_VERIFY: True, spec.CKA_PRIVATE: False,
           spec.CKA_LABEL: b"pub-ec"}
    priv: dict[int, Any] = {spec.CKA_TOKEN: True, spec.CKA_SIGN: True, spec.CKA_LABEL: b"pub-ec"}
    if private is not None:
        priv[spec.CKA_PRIVATE] = private
    return pub, priv


def cbc(p11: P11, s: int, key: int, data: bytes) -> bytes:
    return p11.encrypt(s, spec.CKM_AES_CBC, key, data, IV)


def ec_public_key(p11: P11, s: int, handle: int) -> ec.EllipticCurvePublicKey:
    found = der.read_one(p11.get(s, handle, spec.CKA_EC_POINT))
    assert found is not None and found[0] == 0x04  # a DER OCTET STRING around the point
    point = found[1]
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def verify_p256(pub: ec.EllipticCurvePublicKey, data: bytes, raw_sig: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    r, s = int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
    pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))


CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from p11 import P11
from cryptoki_shim import spec
p11 = P11()
p11.initialize()
s = p11.open(0, rw=False)
aes = p11.find(s, {{spec.CKA_LABEL: b"pub-aes", spec.CKA_CLASS: spec.CKO_SECRET_KEY}})
ec = p11.find(s, {{spec.CKA_LABEL: b"pub-ec", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY}})
out = {{"aes": p11.encrypt(s, spec.CKM_AES_CBC, aes[0], b"x" * 16, bytes(16)).hex(),
        "sig": p11.sign(s, spec.CKM_ECDSA_SHA256, ec[0], b"signed").hex(),
        "login": p11.session_info(s).state}}
print(json.dumps(out))
"""


def other_process() -> dict[str, Any]:
    """Find and use both keys in a fresh process that never logs in (R/O Public session)."""
    tests = str(Path(__file__).resolve().parent)
    p = subprocess.run([sys.executable, "-c", CHILD.format(tests=tests)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])


def test_public_token_keys_made_and_used_without_login(token):
    """R/W Public session: C_GenerateKey, C_GenerateKeyPair and C_CreateObject of token keys
    with CKA_PRIVATE FALSE succeed; another process and a restart use them with no login."""
    s = token.open(0)
    assert token.session_info(s).state == spec.CKS_RW_PUBLIC_SESSION
    aes = token.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(False, {spec.CKA_EXTRACTABLE: True}))
    pub, priv = token.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, *ec_templates(False))
    assert token.get(s, aes, spec.CKA_PRIVATE) is False and token.get(s, priv, spec.CKA_PRIVATE) is False
    value = token.get(s, aes, spec.CKA_VALUE)
    expect = Cipher(algorithms.AES(value), modes.CBC(IV)).encryptor().update(b"x" * 16)
    assert cbc(token, s, aes, b"x" * 16) == expect
    point = ec_public_key(token, s, pub)
    verify_p256(point, b"signed", token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"signed"))
    imported = token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                                spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False, spec.CKA_VALUE: KEY,
                                spec.CKA_ENCRYPT: True, spec.CKA_LABEL: b"imported"})
    assert cbc(token, s, imported, b"y" * 16) == Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor().update(b"y" * 16)

    child = other_process()
    assert child["login"] == spec.CKS_RO_PUBLIC_SESSION
    assert bytes.fromhex(child["aes"]) == expect
    verify_p256(point, b"signed", bytes.fromhex(child["sig"]))

    token.finalize()
    token.initialize()
    s = token.open(0, rw=False)
    [aes] = token.find(s, {spec.CKA_LABEL: b"pub-aes"})
    [imported] = token.find(s, {spec.CKA_LABEL: b"imported"})
    assert cbc(token, s, aes, b"x" * 16) == expect
    assert len(cbc(token, s, imported, b"y" * 16)) == 16
    [priv] = token.find(s, {spec.CKA_LABEL: b"pub-ec", spec.CKA_CLASS: spec.CKO_PRIVATE_KEY})
    verify_p256(point, b"again", token.sign(s, spec.CKM_ECDSA_SHA256, priv, b"again"))


def test_public_key_of_a_logged_in_user_is_usable_after_logout(token, user_session):
    """A CKA_PRIVATE FALSE key made during a login is sealed under the public-object key too:
    usable once the user has logged out and by a process that never logs in."""
    token.generate_key(user_session, spec.CKM_AES_KEY_GEN, aes_template(False))
    token.generate_key_pair(user_session, spec.CKM_EC_KEY_PAIR_GEN, *ec_templates(False))
    token.logout(user_session)
    [aes] = token.find(user_session, {spec.CKA_LABEL: b"pub-aes"})
    assert len(cbc(token, user_session, aes, b"z" * 16)) == 16
    child = other_process()
    assert len(bytes.fromhex(child["sig"])) == 64


@pytest.mark.parametrize("private", [True, None], ids=["explicit-true", "default"])
def test_private_token_keys_still_need_the_login(token, private):
    """CKA_PRIVATE TRUE, or absent (our default for keys is TRUE, whatever
    `strict_private_default` says about session objects), still needs the user: nothing is
    stored by the refused call."""
    s = token.open(0)
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(private))
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.generate_key_pair(s, spec.CKM_EC_KEY_PAIR_GEN, *ec_templates(private))
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_TOKEN: True,
                         spec.CKA_VALUE: KEY, **({spec.CKA_PRIVATE: True} if private else {})})
    assert token.find(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY}) == []
    assert token.find(s, {spec.CKA_LABEL: b"pub-ec"}) == []


def test_public_token_key_needs_a_read_write_session(token):
    s = token.open(0, rw=False)
    with raises_ckr(spec.CKR_SESSION_READ_ONLY):
        token.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(False))


def test_private_session_key_still_needs_the_login_public_one_does_not(token):
    """Session objects live in memory only; CKA_PRIVATE TRUE still means the user's."""
    s = token.open(0)
    h = token.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(False, {spec.CKA_TOKEN: False}))
    assert len(cbc(token, s, h, b"s" * 16)) == 16
    with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):
        token.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(True, {spec.CKA_TOKEN: False}))


def test_strict_private_default_leaves_an_explicit_false(tmp_path, monkeypatch, lib_path):
    """``strict_private_default = true`` governs the *default* only: an explicit
    CKA_PRIVATE FALSE token key is still made and used without a login."""
    from p11 import SO_PIN, USER_PIN, write_config

    conf = write_config(tmp_path, slots='[[slots]]\nid = 0\nkdf_cost = "test"\nstrict_private_default = true\n')
    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(conf))
    p11 = P11(lib_path)
    p11.initialize()
    try:
        p11.init_token(0, SO_PIN, "strict")
        s = p11.open(0)
        p11.login(s, SO_PIN, user=spec.CKU_SO)
        p11.init_pin(s, USER_PIN)
        p11.logout(s)
        h = p11.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(False))
        assert len(cbc(p11, s, h, b"q" * 16)) == 16
        with raises_ckr(spec.CKR_USER_NOT_LOGGED_IN):  # the option's own effect: a supplied session key
            p11.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES, spec.CKA_VALUE: KEY})
    finally:
        p11.finalize()


def test_public_keys_under_threads_with_login_churn_at_the_default_kdf_cost(tmp_path, monkeypatch, lib_path):
    """Abuse/concurrency at the defaults (the production Argon2id cost, the default config): 6
    threads make and use public token keys in R/W Public sessions while another thread logs the
    user in and out (the login decides which rows a write gets). No call hangs or fails other than
    by the rule; each thread's private key attempt answers OK only while a login was in place, else
    CKR_USER_NOT_LOGGED_IN; after a restart with no login every public key opens with its value."""
    import threading

    from p11 import P11Error, SO_PIN, USER_PIN, write_config

    monkeypatch.setenv("CRYPTOKI_SHIM_CONF", str(write_config(tmp_path, kdf_cost="default")))
    p = P11(lib_path)
    p.initialize()
    p.init_token(0, SO_PIN, "threads")
    s = p.open(0)
    p.login(s, SO_PIN, user=0)
    p.init_pin(s, USER_PIN)
    p.close(s)
    made: dict[bytes, bytes] = {}
    errors: list[str] = []
    stop = threading.Event()

    def churn() -> None:
        s = p.open(0)
        try:
            while not stop.is_set():
                p.login(s, USER_PIN)
                p.logout(s)
        except P11Error as exc:
            errors.append(f"churn: {exc}")

    def worker(i: int) -> None:
        try:
            s = p.open(0)
            for n in range(4):
                value = os.urandom(32)
                label = f"t{i}-{n}".encode()
                key = p.create(s, {spec.CKA_CLASS: spec.CKO_SECRET_KEY, spec.CKA_KEY_TYPE: spec.CKK_AES,
                                   spec.CKA_TOKEN: True, spec.CKA_PRIVATE: False, spec.CKA_VALUE: value,
                                   spec.CKA_ENCRYPT: True, spec.CKA_LABEL: label})
                want = Cipher(algorithms.AES(value), modes.CBC(IV)).encryptor().update(b"z" * 16)
                got = b""
                for _ in range(20):
                    try:  # §5.6 C_Logout: an application's logout may end its active operations
                        got = cbc(p, s, key, b"z" * 16)
                        break
                    except P11Error as exc:
                        if exc.rv != spec.CKR_OPERATION_NOT_INITIALIZED:
                            raise
                if got != want:
                    errors.append(f"{label!r}: wrong ciphertext")
                made[label] = value
                try:
                    p.generate_key(s, spec.CKM_AES_KEY_GEN, aes_template(True, {spec.CKA_TOKEN: False}))
                except P11Error as exc:
                    if exc.rv != spec.CKR_USER_NOT_LOGGED_IN:
                        errors.append(f"private key: {exc}")
        except P11Error as exc:
            errors.append(f"worker {i}: {exc}")

    churner = threading.Thread(target=churn)
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    churner.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=240)
    stop.set()
    churner.join(timeout=60)
    assert not any(t.is_alive() for t in [churner, *workers]), "a thread hung"
    assert errors == [] and len(made) == 24, (errors, len(made))

    p.finalize()
    p.initialize()
    s = p.open(0, rw=False)
    for label, value in made.items():
        [key] = p.find(s, {spec.CKA_LABEL: label})
        want = Cipher(algorithms.AES(value), modes.CBC(IV)).encryptor().update(b"z" * 16)
        assert cbc(p, s, key, b"z" * 16) == want, label
    p.finalize()
