"""The validator's kept verdicts (``policy._plan``): a template seen before is not checked
again, so a kept verdict must answer exactly what the validator answers. Every bad template
here is asked with an empty table (the validator runs), then again after its good twin and
itself were asked (a kept verdict could answer), in several attribute orders: the same
error code and message each time; good templates build the same object either way."""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest

from cryptoki_shim import spec as C
from cryptoki_shim.attributes import Origin, build_object, policy
from cryptoki_shim.errors import CryptokiError

P256 = bytes.fromhex("06082a8648ce3d030107")
SECRET = {C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_GENERIC_SECRET, C.CKA_TOKEN: False}
EC_PRIV = {C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_KEY_TYPE: C.CKK_EC, C.CKA_EC_PARAMS: P256}
BASE = {C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_SENSITIVE: True, C.CKA_EXTRACTABLE: False,
        C.CKA_ALWAYS_SENSITIVE: True, C.CKA_NEVER_EXTRACTABLE: True}


def derived(n: int = 32) -> dict[int, Any]:
    return {C.CKA_VALUE: os.urandom(n), C.CKA_VALUE_LEN: n}


def ec_material() -> dict[int, Any]:
    return {**EC_PRIV, C.CKA_VALUE: os.urandom(32)}


# (name, template, origin, material, is_so): each refused by the validator.
BAD: list[tuple[str, dict[int, Any], Origin, Any, bool]] = [
    ("value in a derive template (footnote 4)", {**SECRET, C.CKA_VALUE: bytes(32)}, Origin.DERIVE, derived, False),
    ("CKA_LOCAL given", {**SECRET, C.CKA_LOCAL: True}, Origin.DERIVE, derived, False),
    ("unique id given", {**SECRET, C.CKA_UNIQUE_ID: b"1"}, Origin.DERIVE, derived, False),
    ("public-key attribute on a secret key", {**SECRET, C.CKA_VERIFY_RECOVER: True}, Origin.DERIVE, derived, False),
    ("CKA_TRUSTED TRUE by a user (footnote 10)", {**SECRET, C.CKA_TRUSTED: True}, Origin.DERIVE, derived, False),
    ("length disagrees with the material", {**SECRET, C.CKA_VALUE_LEN: 16}, Origin.DERIVE, derived, False),
    ("another class than the material", {**SECRET, C.CKA_CLASS: C.CKO_PUBLIC_KEY}, Origin.DERIVE,
     lambda: {C.CKA_CLASS: C.CKO_SECRET_KEY, **derived()}, False),
    ("wrong value kind", {**SECRET, C.CKA_SIGN: 1}, Origin.DERIVE, derived, False),
    ("unknown attribute type", {**SECRET, 0x7FFF_0000: b"x"}, Origin.DERIVE, derived, False),
    ("empty label is fine but key type unknown", {**SECRET, C.CKA_KEY_TYPE: 0x7FFF_0000}, Origin.DERIVE,
     derived, False),
    ("generate: a private key with CKA_ALWAYS_SENSITIVE", {C.CKA_TOKEN: False, C.CKA_ALWAYS_SENSITIVE: True},
     Origin.GENERATE, ec_material, False),
    ("generate: ALWAYS_AUTHENTICATE without PRIVATE", {C.CKA_PRIVATE: False, C.CKA_ALWAYS_AUTHENTICATE: True},
     Origin.GENERATE, ec_material, False),
    ("generate: key type disagrees with the mechanism", {C.CKA_KEY_TYPE: C.CKK_RSA}, Origin.GENERATE,
     ec_material, False),
    ("unwrap: a secret key without key type", {C.CKA_CLASS: C.CKO_SECRET_KEY}, Origin.UNWRAP,
     lambda: {C.CKA_VALUE: os.urandom(16)}, False),
]

# Their good twins: the same shape without the fault (what a caller asks before and after).
GOOD: list[tuple[dict[int, Any], Origin, Any, bool]] = [
    (SECRET, Origin.DERIVE, derived, False),
    ({**SECRET, C.CKA_VALUE_LEN: 32}, Origin.DERIVE, derived, False),
    ({**SECRET, C.CKA_TRUSTED: True}, Origin.DERIVE, derived, True),  # the SO may
    ({**SECRET, C.CKA_SIGN: True}, Origin.DERIVE, derived, False),
    ({C.CKA_TOKEN: False}, Origin.GENERATE, ec_material, False),
    ({C.CKA_PRIVATE: True, C.CKA_ALWAYS_AUTHENTICATE: True}, Origin.GENERATE, ec_material, False),
    ({C.CKA_KEY_TYPE: C.CKK_EC}, Origin.GENERATE, ec_material, False),
    ({C.CKA_CLASS: C.CKO_SECRET_KEY, C.CKA_KEY_TYPE: C.CKK_AES}, Origin.UNWRAP,
     lambda: {C.CKA_VALUE: os.urandom(16)}, False),
]


def answer(template: dict[int, Any], origin: Origin, material: dict[int, Any], is_so: bool) -> tuple[int, str]:
    with pytest.raises(CryptokiError) as e:
        build_object(template, origin, material=material, base=BASE, is_so=is_so,
                     key_gen_mechanism=C.CKM_EC_KEY_PAIR_GEN)
    return e.value.ckr, str(e.value)


def orders(template: dict[int, Any]) -> list[dict[int, Any]]:
    items = list(template.items())
    return [dict(p) for p in itertools.islice(itertools.permutations(items), 0, None, 7)][:6] + [dict(items[::-1])]


@pytest.mark.parametrize("name, template, origin, material, is_so", BAD, ids=[b[0] for b in BAD])
def test_a_kept_verdict_refuses_what_the_validator_refuses(name: str, template: dict[int, Any], origin: Origin,
                                                          material: Any, is_so: bool) -> None:
    for ordered in orders(template):
        policy._PLANS.clear()
        uncached = answer(ordered, origin, material(), is_so)
        for good, g_origin, g_material, g_so in GOOD:  # warm the table with the good twins
            build_object(good, g_origin, material=g_material(), base=BASE, is_so=g_so,
                         key_gen_mechanism=C.CKM_EC_KEY_PAIR_GEN)
        assert answer(ordered, origin, material(), is_so) == uncached
        assert answer(ordered, origin, material(), is_so) == uncached  # asked twice


def test_a_kept_verdict_does_not_carry_material_values() -> None:
    """The key holds the material's types, not its values: a length that agreed once is
    checked again the next time (4.1.1 item 5)."""
    template = {**SECRET, C.CKA_VALUE_LEN: 32}
    policy._PLANS.clear()
    build_object(template, Origin.DERIVE, material=derived(32), base=BASE)
    assert policy._PLANS
    ckr, msg = answer(template, Origin.DERIVE, {C.CKA_VALUE: bytes(16), C.CKA_VALUE_LEN: 16}, False)
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT and "disagrees" in msg


def test_a_kept_verdict_is_per_role() -> None:
    """CKA_TRUSTED TRUE allowed for the SO and kept; the same template from a user refused."""
    template = {**SECRET, C.CKA_TRUSTED: True}
    policy._PLANS.clear()
    assert build_object(template, Origin.DERIVE, material=derived(), base=BASE, is_so=True)[C.CKA_TRUSTED] is True
    ckr, msg = answer(template, Origin.DERIVE, derived(), False)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY and "footnote 10" in msg


def test_a_kept_verdict_is_per_value_type() -> None:
    """``True`` and ``1`` are equal and hash alike; only the bool is a CK_BBOOL value."""
    policy._PLANS.clear()
    build_object({**SECRET, C.CKA_SIGN: True}, Origin.DERIVE, material=derived(), base=BASE)
    ckr, _ = answer({**SECRET, C.CKA_SIGN: 1}, Origin.DERIVE, derived(), False)
    assert ckr == C.CKR_ATTRIBUTE_VALUE_INVALID


def test_create_templates_are_never_kept() -> None:
    """C_CreateObject's template is the key material: never held in the table."""
    policy._PLANS.clear()
    build_object({**SECRET, C.CKA_VALUE: os.urandom(32)}, Origin.CREATE)
    assert not policy._PLANS


@pytest.mark.parametrize("template, origin, material, is_so", GOOD)
def test_kept_and_fresh_objects_are_equal_and_independent(template: dict[int, Any], origin: Origin,
                                                          material: Any, is_so: bool) -> None:
    mat = material()
    kw = dict(material=mat, base=BASE, is_so=is_so, key_gen_mechanism=C.CKM_EC_KEY_PAIR_GEN)
    policy._PLANS.clear()
    fresh = build_object(template, origin, **kw)  # type: ignore[arg-type]
    kept = build_object(template, origin, **kw)  # type: ignore[arg-type]
    assert kept == fresh and kept is not fresh
    for t, v in kept.items():  # nothing mutable shared between two objects (dict defaults)
        if isinstance(v, dict):
            assert v is not fresh[t]
    kept[C.CKA_LABEL] = b"changed"
    assert build_object(template, origin, **kw)[C.CKA_LABEL] == fresh[C.CKA_LABEL]  # type: ignore[arg-type]


def test_unhashable_templates_are_validated_every_time() -> None:
    """An attribute template (CKA_DERIVE_TEMPLATE) is a dict: the template is not kept, and
    still validated."""
    policy._PLANS.clear()
    template = {**SECRET, C.CKA_DERIVE_TEMPLATE: {C.CKA_SENSITIVE: True}}
    obj = build_object(template, Origin.DERIVE, material=derived(), base=BASE)
    assert obj[C.CKA_DERIVE_TEMPLATE] == {C.CKA_SENSITIVE: True}
    ckr, _ = answer({**template, C.CKA_LOCAL: True}, Origin.DERIVE, derived(), False)
    assert ckr == C.CKR_ATTRIBUTE_READ_ONLY


def test_the_table_is_bounded() -> None:
    policy._PLANS.clear()
    for i in range(policy._PLANS_MAX + 10):
        build_object({**SECRET, C.CKA_ID: b"%d" % i}, Origin.DERIVE, material=derived(), base=BASE)
    assert 0 < len(policy._PLANS) <= policy._PLANS_MAX


def test_a_kept_verdict_is_per_class_of_the_material() -> None:
    """The schema comes from the material when the template names no class: CKA_SIGN is
    fine on a private key and not an attribute of a public key, with the same material
    attribute types."""
    template = {C.CKA_TOKEN: False, C.CKA_SIGN: True}
    policy._PLANS.clear()
    private = {C.CKA_CLASS: C.CKO_PRIVATE_KEY, C.CKA_KEY_TYPE: C.CKK_EC, C.CKA_EC_PARAMS: P256}
    assert build_object(template, Origin.GENERATE, material=private)[C.CKA_SIGN] is True
    ckr, msg = answer(template, Origin.GENERATE, {**private, C.CKA_CLASS: C.CKO_PUBLIC_KEY}, False)
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT and "CKA_SIGN" in msg


def test_values_are_never_kept() -> None:
    """A derived data object's template may restate its CKA_VALUE (it must agree with the
    mechanism's): such a template is validated and not kept."""
    policy._PLANS.clear()
    data = {C.CKA_CLASS: C.CKO_DATA, C.CKA_TOKEN: False, C.CKA_VALUE: b"secret"}
    obj = build_object(data, Origin.DERIVE, material={C.CKA_VALUE: b"secret"}, base=BASE)
    assert obj[C.CKA_VALUE] == b"secret"
    assert not policy._PLANS
    ckr, _ = answer(data, Origin.DERIVE, {C.CKA_VALUE: b"other!"}, False)
    assert ckr == C.CKR_TEMPLATE_INCONSISTENT
