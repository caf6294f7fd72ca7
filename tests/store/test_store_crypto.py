"""At-rest crypto: PIN records (memory-hard KDF) and sealed attribute values."""

from __future__ import annotations

import pytest

from cryptoki_shim import spec
from cryptoki_shim.errors import CryptokiError
from cryptoki_shim.store import crypto
from cryptoki_shim.store.crypto import (
    SealError,
    attribute_aad,
    make_pin_record,
    new_token_key,
    open_pin_record,
    seal,
    unseal,
)


def test_new_token_key_is_32_random_bytes() -> None:
    a, b = new_token_key(), new_token_key()
    assert len(a) == 32 and len(b) == 32 and a != b


def test_pin_record_opens_with_its_pin() -> None:
    key = new_token_key()
    rec = make_pin_record(b"1234", key, cost="test")
    assert open_pin_record(b"1234", rec) == key
    assert key not in rec.wrapped_key
    assert rec.failures == 0


def test_wrong_pin_is_ckr_pin_incorrect() -> None:
    rec = make_pin_record(b"1234", new_token_key(), cost="test")
    with pytest.raises(CryptokiError) as exc:
        open_pin_record(b"1235", rec)
    assert exc.value.ckr == spec.CKR_PIN_INCORRECT


def test_pin_record_uses_argon2id_with_its_parameters_stored() -> None:
    rec = make_pin_record(b"1234", new_token_key(), cost="test")
    assert rec.kdf == "argon2id"
    assert set(rec.params) == {"salt", "memory_cost", "iterations", "lanes"}
    assert len(bytes.fromhex(rec.params["salt"])) == 16


def test_default_cost_is_memory_hard() -> None:
    """64 MiB, t=3 (RFC 9106's second recommended setting), and recorded as such."""
    rec = make_pin_record(b"1234", key := new_token_key())
    assert rec.params["memory_cost"] == 64 * 1024 and rec.params["iterations"] == 3
    assert open_pin_record(b"1234", rec) == key


def test_each_record_has_its_own_salt() -> None:
    key = new_token_key()
    a, b = make_pin_record(b"1234", key, cost="test"), make_pin_record(b"1234", key, cost="test")
    assert a.params["salt"] != b.params["salt"] and a.wrapped_key != b.wrapped_key


def test_costs_are_read_from_the_record_not_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raising the named costs later must not lock out existing records."""
    key = new_token_key()
    rec = make_pin_record(b"1234", key, cost="test")
    monkeypatch.setitem(crypto.ARGON2ID_COSTS, "test", {"memory_cost": 16, "iterations": 2,
                                                        "lanes": 1})
    assert open_pin_record(b"1234", rec) == key


def test_scrypt_records_open() -> None:
    key = new_token_key()
    rec = make_pin_record(b"1234", key, cost="test", kdf="scrypt")
    assert rec.kdf == "scrypt" and {"salt", "n", "r", "p"} <= set(rec.params)
    assert open_pin_record(b"1234", rec) == key
    with pytest.raises(CryptokiError) as exc:
        open_pin_record(b"4321", rec)
    assert exc.value.ckr == spec.CKR_PIN_INCORRECT


def test_unknown_kdf_is_device_error() -> None:
    rec = make_pin_record(b"1234", new_token_key(), cost="test")
    rec.kdf = "md5"
    with pytest.raises(CryptokiError) as exc:
        open_pin_record(b"1234", rec)
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR


def test_seal_round_trip_and_shape() -> None:
    key, aad, value = new_token_key(), attribute_aad("SER", "uid-1", 0x11), b"k" * 32
    blob = seal(key, aad, value)
    assert len(blob) == 12 + len(value) + 16
    assert value not in blob
    assert unseal(key, aad, blob) == value
    assert seal(key, aad, value) != blob  # fresh nonce each time


@pytest.mark.parametrize("change", ["key", "serial", "unique_id", "type", "tamper", "short"])
def test_unseal_fails_with_seal_error(change: str) -> None:
    key = new_token_key()
    blob = seal(key, attribute_aad("SER", "uid-1", 0x11), b"secret value")
    args = {"key": key, "aad": attribute_aad("SER", "uid-1", 0x11), "blob": blob}
    if change == "key":
        args["key"] = new_token_key()
    elif change == "serial":
        args["aad"] = attribute_aad("SER2", "uid-1", 0x11)
    elif change == "unique_id":
        args["aad"] = attribute_aad("SER", "uid-2", 0x11)
    elif change == "type":
        args["aad"] = attribute_aad("SER", "uid-1", 0x12)
    elif change == "tamper":
        args["blob"] = blob[:-1] + bytes([blob[-1] ^ 1])
    else:
        args["blob"] = blob[:20]
    with pytest.raises(SealError) as exc:
        unseal(args["key"], args["aad"], args["blob"])
    assert isinstance(exc.value, CryptokiError)
    assert exc.value.ckr == spec.CKR_DEVICE_ERROR


def test_attribute_aad_is_unambiguous() -> None:
    assert attribute_aad("ab", "c", 1) != attribute_aad("a", "bc", 1)
    assert attribute_aad("a", "b", 1) != attribute_aad("a", "b", 2)


def test_token_key_length_checked() -> None:
    with pytest.raises(ValueError):
        seal(b"short", b"", b"x")
