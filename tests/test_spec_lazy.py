"""spec.py builds its enum families on first use (issue #9): with CPython's fast enum
constructor when it exists, else with the functional API. Both must give the same classes
(members, aliases, canonical names), and a family must be built exactly once even when
many threads ask for it together."""

from __future__ import annotations

import importlib.util
import threading
from types import ModuleType

import pytest

from cryptoki_shim import spec

FAMILIES = ("CKR", "CKA", "CKM", "CKO", "CKK", "CKC", "CKU", "CKS")


def fresh_spec(fast: bool) -> ModuleType:
    """A private copy of spec.py with no family built yet."""
    loader_spec = importlib.util.spec_from_file_location("spec_copy", spec.__file__)
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    if not fast:
        module._simple_enum = None
    return module


def shape(cls) -> tuple:
    return (tuple((n, int(m), m.name) for n, m in cls.__members__.items()), tuple(int(m) for m in cls))


@pytest.mark.parametrize("fast", [True, False])
def test_both_constructors_build_the_same_families(fast: bool) -> None:
    copy = fresh_spec(fast)
    for fam in FAMILIES:
        built = getattr(copy, fam)
        assert shape(built) == shape(getattr(spec, fam)), fam
        assert built.__doc__ == getattr(spec, fam).__doc__
    assert copy.CKK_ECDSA is copy.CKK.CKK_EC and copy.CKM_CAST5_CBC.name == "CKM_CAST128_CBC"


def test_family_is_not_built_before_use_and_globals_follow() -> None:
    copy = fresh_spec(True)
    assert "CKM" not in vars(copy) and "CKM_AES_GCM" not in vars(copy)
    value = copy.CKM_AES_GCM
    assert vars(copy)["CKM_AES_GCM"] is value is copy.CKM.CKM_AES_GCM
    assert "CKM_AES_GCM" in dir(fresh_spec(True))
    with pytest.raises(AttributeError):
        _ = copy.CKM_NO_SUCH_MECHANISM
    with pytest.raises(AttributeError):
        _ = copy.CKMX


def test_concurrent_first_use_builds_one_class() -> None:
    copy = fresh_spec(True)
    barrier = threading.Barrier(8)
    seen = []

    def worker() -> None:
        barrier.wait()
        seen.append(copy.CKM_SHA256)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(type(v)) for v in seen}) == 1 and all(v is copy.CKM.CKM_SHA256 for v in seen)


def test_name_functions_need_no_enum() -> None:
    copy = fresh_spec(True)
    assert copy.ckm_name(int(spec.CKM_AES_GCM)) == "CKM_AES_GCM"
    assert copy.ckk_name(3) == "CKK_EC"
    assert copy.ckr_name(0xDEAD0000) == "0xDEAD0000"
    assert "CKM" not in vars(copy) and "CKK" not in vars(copy)
