"""Codec: round trips, wrong lengths, unknown types (architecture.md "Attribute values")."""

import struct

import pytest
from hypothesis import given, strategies as st

from cryptoki_shim import spec
from cryptoki_shim.attributes import codec
from cryptoki_shim.errors import CryptokiError

ULONGS = st.integers(min_value=0, max_value=2**64 - 1)
DATES = st.one_of(st.just(b""), st.text("0123456789", min_size=8, max_size=8).map(str.encode))


def _ckr(fn, *args):
    with pytest.raises(CryptokiError) as e:
        fn(*args)
    return e.value.ckr


@given(st.booleans())
def test_bool_round_trip(v):
    assert codec.decode(spec.CKA_TOKEN, codec.encode(spec.CKA_TOKEN, v)) is v


@given(ULONGS)
def test_ulong_round_trip_is_native_8_bytes(v):
    raw = codec.encode(spec.CKA_VALUE_LEN, v)
    assert raw == struct.pack("=Q", v)
    assert codec.decode(spec.CKA_VALUE_LEN, raw) == v


@given(st.binary())
def test_bytes_round_trip(v):
    assert codec.decode(spec.CKA_LABEL, codec.encode(spec.CKA_LABEL, v)) == v


@given(DATES)
def test_date_round_trip(v):
    assert codec.decode(spec.CKA_START_DATE, codec.encode(spec.CKA_START_DATE, v)) == v


@given(st.lists(ULONGS, max_size=20).map(tuple))
def test_mech_array_round_trip(v):
    raw = codec.encode(spec.CKA_ALLOWED_MECHANISMS, v)
    assert len(raw) == 8 * len(v)
    assert codec.decode(spec.CKA_ALLOWED_MECHANISMS, raw) == v


ATTR_DICTS = st.fixed_dictionaries(
    {},
    optional={
        spec.CKA_TOKEN: st.booleans(),
        spec.CKA_LABEL: st.binary(max_size=40),
        spec.CKA_VALUE_LEN: ULONGS,
        spec.CKA_END_DATE: DATES,
        spec.CKA_ALLOWED_MECHANISMS: st.lists(ULONGS, max_size=4).map(tuple),
    },
)


@given(ATTR_DICTS, ATTR_DICTS)
def test_attr_array_round_trip_nested(outer, inner):
    value = dict(outer)
    value[spec.CKA_WRAP_TEMPLATE] = inner  # arrays nest: each value decoded by its own kind
    raw = codec.encode(spec.CKA_UNWRAP_TEMPLATE, value)
    assert codec.decode(spec.CKA_UNWRAP_TEMPLATE, raw) == value


def test_attr_array_empty_is_empty_bytes():
    assert codec.encode(spec.CKA_WRAP_TEMPLATE, {}) == b""
    assert codec.decode(spec.CKA_WRAP_TEMPLATE, b"") == {}


@given(st.binary().filter(lambda b: len(b) != 1))
def test_bool_wrong_length_is_value_invalid(raw):
    assert _ckr(codec.decode, spec.CKA_TOKEN, raw) == spec.CKR_ATTRIBUTE_VALUE_INVALID


@given(st.binary(max_size=20).filter(lambda b: len(b) != 8))
def test_ulong_wrong_length_is_value_invalid(raw):
    assert _ckr(codec.decode, spec.CKA_CLASS, raw) == spec.CKR_ATTRIBUTE_VALUE_INVALID


@given(st.binary(max_size=40).filter(lambda b: len(b) % 8))
def test_mech_array_not_multiple_of_8_is_value_invalid(raw):
    assert _ckr(codec.decode, spec.CKA_ALLOWED_MECHANISMS, raw) == spec.CKR_ATTRIBUTE_VALUE_INVALID


@pytest.mark.parametrize("raw", [b"2024", b"2024010A", b"202401011"])
def test_date_must_be_empty_or_8_digits(raw):
    assert _ckr(codec.decode, spec.CKA_START_DATE, raw) == spec.CKR_ATTRIBUTE_VALUE_INVALID


@given(st.binary(min_size=1, max_size=60))
def test_attr_array_garbage_never_crashes(raw):
    try:
        codec.decode(spec.CKA_WRAP_TEMPLATE, raw)
    except CryptokiError as e:
        assert e.ckr in (spec.CKR_ATTRIBUTE_VALUE_INVALID, spec.CKR_ATTRIBUTE_TYPE_INVALID)


def test_attr_array_truncated_record_is_value_invalid():
    raw = codec.encode(spec.CKA_WRAP_TEMPLATE, {spec.CKA_LABEL: b"abc"})
    assert _ckr(codec.decode, spec.CKA_WRAP_TEMPLATE, raw[:-1]) == spec.CKR_ATTRIBUTE_VALUE_INVALID


def test_unknown_type_is_type_invalid():
    unknown = 0x7FFF_FFF1
    assert unknown not in spec.ATTR_KIND
    assert _ckr(codec.kind, unknown) == spec.CKR_ATTRIBUTE_TYPE_INVALID
    assert _ckr(codec.decode, unknown, b"") == spec.CKR_ATTRIBUTE_TYPE_INVALID
    assert _ckr(codec.encode, unknown, b"") == spec.CKR_ATTRIBUTE_TYPE_INVALID


@pytest.mark.parametrize("attr, value", [
    (spec.CKA_TOKEN, 1), (spec.CKA_TOKEN, b"\x01"), (spec.CKA_CLASS, True),
    (spec.CKA_CLASS, -1), (spec.CKA_CLASS, 2**64), (spec.CKA_LABEL, "text"),
    (spec.CKA_ALLOWED_MECHANISMS, (1, -2)), (spec.CKA_WRAP_TEMPLATE, [1]),
])
def test_encode_wrong_python_type_is_value_invalid(attr, value):
    assert _ckr(codec.encode, attr, value) == spec.CKR_ATTRIBUTE_VALUE_INVALID
    assert _ckr(codec.check_value, attr, value) == spec.CKR_ATTRIBUTE_VALUE_INVALID


def test_check_value_normalises_containers():
    assert codec.check_value(spec.CKA_LABEL, bytearray(b"x")) == b"x"
    assert codec.check_value(spec.CKA_ALLOWED_MECHANISMS, [1, 2]) == (1, 2)


def test_unknown_type_is_type_invalid_for_check_value_too():
    assert _ckr(codec.check_value, 0x7FFF_FFF1, b"") == spec.CKR_ATTRIBUTE_TYPE_INVALID


def test_every_vendor_attribute_is_a_spec_attribute_with_a_kind():
    """Issue 16 item 5: every CKA_SHIM_* is defined once, in spec (scripts/gen_spec.py), with
    its kind; the codec serves them without any backend imported or registering anything."""
    shim = {n: int(getattr(spec, n)) for n in dir(spec) if n.startswith("CKA_SHIM_")}
    assert len(shim) == 9
    for name, value in shim.items():
        assert value & spec.CKA_VENDOR_DEFINED and spec.cka_name(value) == name
        assert codec.kind(value) is spec.ATTR_KIND[value]
    assert codec.decode(spec.CKA_SHIM_TPM_KIND, codec.encode(spec.CKA_SHIM_TPM_KIND, 2)) == 2
    assert codec.check_value(spec.CKA_SHIM_UPSTREAM_REF, bytearray(b"owner=shim")) == b"owner=shim"
    assert _ckr(codec.check_value, spec.CKA_SHIM_TPM_AUTH, 1) == spec.CKR_ATTRIBUTE_VALUE_INVALID


@pytest.mark.parametrize("attr, value, same", [
    (spec.CKA_CLASS, spec.CKO_DATA, True), (spec.CKA_VALUE_LEN, 16, True),
    (spec.CKA_LABEL, b"abc", True), (spec.CKA_LABEL, bytearray(b"abc"), False),
    (spec.CKA_LABEL, memoryview(b"abc"), False), (spec.CKA_TOKEN, False, True),
])
def test_check_value_keeps_typed_values_and_converts_buffers(attr, value, same):
    out = codec.check_value(attr, value)
    assert out == value and type(out) is (type(value) if same else bytes)


# decode's output is the normal form: the policy skips check_value for ABI-decoded templates
# (codec.Decoded), which is only sound if check_value would return the same value unchanged.
_RAW_BY_TYPE = {
    spec.CKA_TOKEN: st.sampled_from([b"\x00", b"\x01"]),
    spec.CKA_VALUE_LEN: ULONGS.map(lambda v: struct.pack("=Q", v)),
    spec.CKA_LABEL: st.binary(max_size=64),
    spec.CKA_START_DATE: DATES,
    spec.CKA_ALLOWED_MECHANISMS: st.lists(ULONGS, max_size=6).map(lambda v: struct.pack(f"={len(v)}Q", *v)),
    spec.CKA_WRAP_TEMPLATE: ATTR_DICTS.map(lambda d: codec.encode(spec.CKA_WRAP_TEMPLATE, d)),
}


@given(st.sampled_from(sorted(_RAW_BY_TYPE)).flatmap(lambda t: st.tuples(st.just(t), _RAW_BY_TYPE[t])))
def test_decoded_values_are_already_normal(case):
    attr, raw = case
    value = codec.decode(attr, raw)
    normal = codec.check_value(attr, value)
    assert normal == value and type(normal) is type(value)


def test_policy_still_checks_templates_that_were_not_decoded():
    from cryptoki_shim.attributes import policy

    plain = {spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: 1}
    with pytest.raises(CryptokiError) as e:
        policy.build_object(plain, policy.Origin.CREATE)
    assert e.value.ckr == spec.CKR_ATTRIBUTE_VALUE_INVALID
    decoded = codec.Decoded({spec.CKA_CLASS: spec.CKO_DATA, spec.CKA_TOKEN: True})
    obj = policy.build_object(decoded, policy.Origin.CREATE)
    assert obj[spec.CKA_TOKEN] is True and type(obj) is dict
