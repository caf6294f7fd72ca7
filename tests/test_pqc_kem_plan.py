"""The KEM calls' kept plans (core/kem.py ``_Plan``, attributes/policy.py ``SecretMaker``):
a repeated C_EncapsulateKey / C_DecapsulateKey answers exactly what the first call (the
whole validator path) answers, and every change in between that a fresh module would see
is seen: the key's CKA_ENCAPSULATE, its SENSITIVE / WRAP_WITH_TRUSTED (the D1-D3 rules), its
destruction, the logged-in user (the CKA_PRIVATE default of a caller-supplied key's secret),
another template, a refused template. Every secret is checked against pyca's decapsulation;
every check value against the value. docs/performance.md "Post-quantum operations"."""

from __future__ import annotations

import threading
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cryptoki_shim import spec as S
from p11 import P11, P11Error, USER_PIN, raises_ckr
from pqc_util import decapsulate, encapsulate, secret_template

#: Every attribute a secret key made by a KEM call has (3.2 §4.7, §4.8, §4.10).
SECRET_ATTRIBUTES = (
    S.CKA_CLASS, S.CKA_KEY_TYPE, S.CKA_TOKEN, S.CKA_PRIVATE, S.CKA_MODIFIABLE, S.CKA_LABEL, S.CKA_COPYABLE,
    S.CKA_DESTROYABLE, S.CKA_ID, S.CKA_START_DATE, S.CKA_END_DATE, S.CKA_DERIVE, S.CKA_LOCAL,
    S.CKA_KEY_GEN_MECHANISM, S.CKA_ALLOWED_MECHANISMS, S.CKA_SENSITIVE, S.CKA_ENCRYPT, S.CKA_DECRYPT,
    S.CKA_SIGN, S.CKA_VERIFY, S.CKA_WRAP, S.CKA_UNWRAP, S.CKA_EXTRACTABLE, S.CKA_ALWAYS_SENSITIVE,
    S.CKA_NEVER_EXTRACTABLE, S.CKA_WRAP_WITH_TRUSTED, S.CKA_TRUSTED, S.CKA_VALUE_LEN, S.CKA_CHECK_VALUE,
    S.CKA_VALUE,
)


def pair(p: P11, s: int, pub: dict[int, Any] | None = None, priv: dict[int, Any] | None = None) -> tuple[int, int]:
    return p.generate_key_pair(s, S.CKM_ML_KEM_KEY_PAIR_GEN,
                               {S.CKA_TOKEN: False, S.CKA_PARAMETER_SET: S.CKP_ML_KEM_768, **(pub or {})},
                               {S.CKA_TOKEN: False, S.CKA_EXTRACTABLE: True, **(priv or {})})


def pyca_key(p: P11, s: int, hpriv: int) -> mlkem.MLKEM768PrivateKey:
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(p.get(s, hpriv, S.CKA_SEED))


def attributes(p: P11, s: int, h: int) -> dict[int, Any]:
    """Every attribute of SECRET_ATTRIBUTES: its value, or the CKR that refused it."""
    out: dict[int, Any] = {}
    for t in SECRET_ATTRIBUTES:
        try:
            out[t] = p.get(s, h, t)
        except P11Error as exc:
            out[t] = ("CKR", exc.rv)
    return out


def check_value(key_type: int, value: bytes) -> bytes:
    if key_type == S.CKK_AES:
        enc = Cipher(algorithms.AES(value), modes.ECB()).encryptor()
        return (enc.update(bytes(16)) + enc.finalize())[:3]
    h = hashes.Hash(hashes.SHA1())
    h.update(value)
    return h.finalize()[:3]


def same_but_value(first: dict[int, Any], second: dict[int, Any]) -> None:
    """Two keys of one template: equal in every attribute but the value and its check value,
    each of which is right for its own value."""
    for a in (first, second):
        assert a[S.CKA_CHECK_VALUE] == check_value(a[S.CKA_KEY_TYPE], a[S.CKA_VALUE])
        assert a[S.CKA_VALUE_LEN] == len(a[S.CKA_VALUE])
    assert first[S.CKA_VALUE] != second[S.CKA_VALUE]
    rest = [t for t in SECRET_ATTRIBUTES if t not in (S.CKA_VALUE, S.CKA_CHECK_VALUE)]
    assert {t: first[t] for t in rest} == {t: second[t] for t in rest}


def test_repeated_calls_make_the_same_key_as_the_first(token: P11, user_session: int) -> None:
    """The first call runs the validator, the next ones the kept plan: the same attributes,
    for a generic secret and an AES key (another check-value function), on both sides."""
    s = user_session
    hpub, hpriv = pair(token, s)
    key = pyca_key(token, s, hpriv)
    for template in (secret_template(), secret_template(key_type=S.CKK_AES, value_len=16, encrypt=True),
                     secret_template(key_type=S.CKK_GENERIC_SECRET, value_len=20, label=b"kem")):
        made = []
        for _ in range(3):
            ct, h = encapsulate(token, s, hpub, template)
            want = key.decapsulate(ct)[:len(token.get(s, h, S.CKA_VALUE))]
            assert token.get(s, h, S.CKA_VALUE) == want
            hd = decapsulate(token, s, hpriv, ct, template)
            assert token.get(s, hd, S.CKA_VALUE) == want
            made.append((attributes(token, s, h), attributes(token, s, hd)))
        for side in (0, 1):
            same_but_value(made[0][side], made[1][side])
            same_but_value(made[1][side], made[2][side])
        assert made[0][0][S.CKA_LOCAL] is False and made[0][0][S.CKA_ALWAYS_SENSITIVE] is False


def test_encapsulate_flag_changed_between_calls(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    encapsulate(token, s, hpub)
    token.set(s, hpub, {S.CKA_ENCAPSULATE: False})
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        encapsulate(token, s, hpub)
    token.set(s, hpub, {S.CKA_ENCAPSULATE: True})
    ct, h = encapsulate(token, s, hpub)
    assert token.get(s, h, S.CKA_VALUE) == pyca_key(token, s, hpriv).decapsulate(ct)


def test_decapsulate_flag_changed_between_calls(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    ct, _ = encapsulate(token, s, hpub)
    decapsulate(token, s, hpriv, ct)
    token.set(s, hpriv, {S.CKA_DECAPSULATE: False})
    with raises_ckr(S.CKR_KEY_FUNCTION_NOT_PERMITTED):
        decapsulate(token, s, hpriv, ct)


def test_key_destroyed_between_calls(token: P11, user_session: int) -> None:
    s = user_session
    hpub, hpriv = pair(token, s)
    ct, _ = encapsulate(token, s, hpub)
    decapsulate(token, s, hpriv, ct)
    token.destroy(s, hpub)
    token.destroy(s, hpriv)
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):
        encapsulate(token, s, hpub)
    with raises_ckr(S.CKR_KEY_HANDLE_INVALID):
        decapsulate(token, s, hpriv, ct)


def test_protection_of_the_private_key_changed_between_calls(token: P11, user_session: int) -> None:
    """D2 (no key under 16 bytes from a protected key) and the inherited CKA_WRAP_WITH_TRUSTED
    follow the private key's attributes as they are at each call."""
    s = user_session
    hpub, hpriv = pair(token, s)
    ct, _ = encapsulate(token, s, hpub)
    short = secret_template(value_len=8)
    h = decapsulate(token, s, hpriv, ct, short)  # an extractable, non-sensitive key: allowed
    assert len(token.get(s, h, S.CKA_VALUE)) == 8 and token.get(s, h, S.CKA_WRAP_WITH_TRUSTED) is False
    decapsulate(token, s, hpriv, ct, short)
    assert token.get(s, decapsulate(token, s, hpriv, ct), S.CKA_WRAP_WITH_TRUSTED) is False
    decapsulate(token, s, hpriv, ct, secret_template(wrap_with_trusted=False))
    token.set(s, hpriv, {S.CKA_SENSITIVE: True, S.CKA_WRAP_WITH_TRUSTED: True})
    with raises_ckr(S.CKR_ATTRIBUTE_VALUE_INVALID):
        decapsulate(token, s, hpriv, ct, short)
    h = decapsulate(token, s, hpriv, ct)
    assert token.get(s, h, S.CKA_WRAP_WITH_TRUSTED) is True
    with raises_ckr(S.CKR_TEMPLATE_INCONSISTENT):
        decapsulate(token, s, hpriv, ct, secret_template(wrap_with_trusted=False))


def test_templates_alternate_and_refusals_are_not_kept(token: P11, user_session: int) -> None:
    """Good and bad templates in turn: each bad one refused as the first time, each good one
    still answered from its own plan (its key type, length and value)."""
    s = user_session
    hpub, hpriv = pair(token, s)
    key = pyca_key(token, s, hpriv)
    good = {16: secret_template(key_type=S.CKK_AES, value_len=16), 32: secret_template()}
    bad = ((secret_template(value_len=33), S.CKR_TEMPLATE_INCONSISTENT),
           (secret_template(key_type=S.CKK_AES, value_len=20), S.CKR_TEMPLATE_INCONSISTENT),
           (secret_template(value=bytes(32)), S.CKR_TEMPLATE_INCONSISTENT),
           ({**secret_template(), S.CKA_CLASS: S.CKO_DATA}, S.CKR_TEMPLATE_INCONSISTENT),
           (secret_template(check_value=b"abc"), S.CKR_ATTRIBUTE_VALUE_INVALID))
    for _ in range(2):
        for length, template in good.items():
            ct, h = encapsulate(token, s, hpub, template)
            assert token.get(s, h, S.CKA_VALUE) == key.decapsulate(ct)[:length]
            assert token.get(s, h, S.CKA_KEY_TYPE) == template[S.CKA_KEY_TYPE]
            assert token.get(s, decapsulate(token, s, hpriv, ct, template), S.CKA_VALUE) == key.decapsulate(ct)[:length]
            for template_bad, ckr in bad:
                with raises_ckr(ckr):
                    encapsulate(token, s, hpub, template_bad)
                with raises_ckr(ckr):
                    decapsulate(token, s, hpriv, ct, template_bad)


def test_a_template_naming_the_check_value(token: P11, user_session: int) -> None:
    """CKA_CHECK_VALUE in the template is checked against each new value (4.10): the right
    one is accepted, and an empty one suppresses it, on the first call and the next ones."""
    s = user_session
    hpub, hpriv = pair(token, s)
    key = pyca_key(token, s, hpriv)
    ct, _ = encapsulate(token, s, hpub)
    want = check_value(S.CKK_GENERIC_SECRET, key.decapsulate(ct))
    for _ in range(2):
        h = decapsulate(token, s, hpriv, ct, secret_template(check_value=want))
        assert token.get(s, h, S.CKA_CHECK_VALUE) == want
        h = decapsulate(token, s, hpriv, ct, secret_template(check_value=b""))
        assert token.get(s, h, S.CKA_CHECK_VALUE) == b""


def test_logged_in_user_changes_the_private_default(token: P11, user_session: int) -> None:
    """A public key the caller imported (a session object it supplied): its secret is private
    while the user is logged in, and CKA_PRIVATE FALSE after C_Logout (issue 25 item 4), as a
    fresh module answers: the plan is kept per logged-in user."""
    s = user_session
    hpub, hpriv = pair(token, s)
    key = pyca_key(token, s, hpriv)
    imported = token.create(s, {S.CKA_CLASS: S.CKO_PUBLIC_KEY, S.CKA_KEY_TYPE: S.CKK_ML_KEM, S.CKA_TOKEN: False,
                                S.CKA_PARAMETER_SET: S.CKP_ML_KEM_768,
                                S.CKA_VALUE: key.public_key().public_bytes_raw()})
    template = {S.CKA_CLASS: S.CKO_SECRET_KEY, S.CKA_TOKEN: False, S.CKA_EXTRACTABLE: True}
    for _ in range(2):
        _, h = encapsulate(token, s, imported, template)
        assert token.get(s, h, S.CKA_PRIVATE) is True
    token.logout(s)
    for _ in range(2):
        ct, h = encapsulate(token, s, imported, template)
        assert token.get(s, h, S.CKA_PRIVATE) is False and token.get(s, h, S.CKA_VALUE) == key.decapsulate(ct)
    token.login(s, USER_PIN)
    _, h = encapsulate(token, s, imported, template)
    assert token.get(s, h, S.CKA_PRIVATE) is True


def test_read_only_session_after_a_plan_of_a_rw_one(token: P11, user_session: int) -> None:
    """A token-object template is refused in a read-only session even when a RW session
    made the plan (the session's own checks run on every call)."""
    s = user_session
    hpub, _ = pair(token, s)
    tok = secret_template(token=True)
    _, h = encapsulate(token, s, hpub, tok)
    assert token.get(s, h, S.CKA_TOKEN) is True
    ro = token.open(0, rw=False)
    with raises_ckr(S.CKR_SESSION_READ_ONLY):
        encapsulate(token, ro, hpub, tok)
    _, h2 = encapsulate(token, s, hpub, tok)
    token.destroy(s, h)
    token.destroy(s, h2)


def test_threads_share_plans(token: P11, user_session: int) -> None:
    """6 threads, each in its own session, encapsulate to one public key and decapsulate with
    one private key with two templates in turn (the plans and makers are the keys', shared):
    every secret is pyca's decapsulation of the same ciphertext, every check value right."""
    hpub, hpriv = pair(token, user_session)
    key = pyca_key(token, user_session, hpriv)
    templates = ((32, secret_template()), (16, secret_template(key_type=S.CKK_AES, value_len=16)))
    failures: list[str] = []

    def worker(i: int) -> None:
        try:
            s = token.open(0)
            for n in range(12):
                length, template = templates[(i + n) % 2]
                ct, h = encapsulate(token, s, hpub, template)
                want = key.decapsulate(ct)[:length]
                hd = decapsulate(token, s, hpriv, ct, template)
                for handle in (h, hd):
                    value = token.get(s, handle, S.CKA_VALUE)
                    kcv = token.get(s, handle, S.CKA_CHECK_VALUE)
                    if value != want or kcv != check_value(template[S.CKA_KEY_TYPE], value):
                        failures.append(f"thread {i}: secret or check value differs")
                    token.destroy(s, handle)
        except Exception as exc:  # a CKR from any call is a failure of the test
            failures.append(f"thread {i}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert failures == []
