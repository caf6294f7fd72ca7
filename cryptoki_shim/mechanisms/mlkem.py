"""ML-KEM (FIPS 203) on pyca/cryptography: PKCS#11 3.2 §6.68.

* CKM_ML_KEM_KEY_PAIR_GEN: the parameter set comes from the public template's
  CKA_PARAMETER_SET: CKP_ML_KEM_768 and CKP_ML_KEM_1024 (pyca's); CKP_ML_KEM_512 is
  CKR_PARAMETER_SET_NOT_SUPPORTED (docs/pqc.md: no maintained package with KATs here).
* CKM_ML_KEM (no parameter) in C_EncapsulateKey / C_DecapsulateKey: ML-KEM.Encaps with the
  public key gives (ciphertext, 32-byte shared secret), ML-KEM.Decaps with the private key
  the secret of a ciphertext (a ciphertext of the wrong length is
  CKR_WRAPPED_KEY_LEN_RANGE, the code of a wrong-length ``pWrappedKey``; a wrong one of the
  right length gives FIPS 203's implicit-rejection secret, as the standard requires). The
  core makes the secret into the caller's key object (``core/kem.py``).

``ulMinKeySize``/``ulMaxKeySize``: the public key's length in bytes (1184 to 1568).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import CryptokiError
from ..spec_ints import (
    CKA_KEY_TYPE,
    CKA_PARAMETER_SET,
    CKA_VALUE_LEN,
    CKF_DECAPSULATE,
    CKF_ENCAPSULATE,
    CKK_ML_KEM,
    CKM_ML_KEM,
    CKM_ML_KEM_KEY_PAIR_GEN,
    CKF_GENERATE_KEY_PAIR,
    CKK_GENERIC_SECRET,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_WRAPPED_KEY_LEN_RANGE,
)
from . import generic, keys, pqc_keys
from .pqc_keys import ML_KEM
from .registry import Family, KeyGenData, MechanismEntry, register


_CACHE = ("mlkem.public", "mlkem.private")  # indexed by ``private``


def _kem_key(view: Any, private: bool) -> tuple[Any, pqc_keys.ParameterSet]:
    """The pyca key and its parameter set, checked once per key object (``view.cache``)."""
    found = view.cache.get(_CACHE[private])
    if found is None:
        key = keys.load_private(view) if private else keys.load_public(view)
        ps = pqc_keys.of_key(key) if pqc_keys.is_pqc_key(key) else None
        if ps is None or ps.key_type != CKK_ML_KEM:
            raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "not a CKK_ML_KEM key")
        found = view.cache[_CACHE[private]] = (key, ps)
    return found


class MlKemFamily(Family):
    __slots__ = ()

    def generate_key_pair(self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
                          priv_template: Mapping[int, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_ML_KEM_KEY_PAIR_GEN (3.2 §6.68.4): the set named by the public template."""
        ps = pqc_keys.parameter_set(CKK_ML_KEM, pub_template.get(CKA_PARAMETER_SET))
        return keys.key_pair_material(ps.private_cls.generate())

    def encapsulate(self, entry: MechanismEntry, param: Any, public_key: Any,
                    template: Mapping[int, Any]) -> tuple[bytes, dict[int, Any]]:
        key, _ = _kem_key(public_key, False)
        length = _secret_length(template)  # before the work: a bad template costs nothing
        secret, ciphertext = key.encapsulate()
        return ciphertext, _material(template, secret[:length])

    def ciphertext_length(self, entry: MechanismEntry, param: Any, public_key: Any,
                          template: Mapping[int, Any]) -> int:
        _, ps = _kem_key(public_key, False)
        _secret_length(template)
        return ps.output_len

    def decapsulate(self, entry: MechanismEntry, param: Any, private_key: Any, ciphertext: bytes,
                    template: Mapping[int, Any]) -> dict[int, Any]:
        key, ps = _kem_key(private_key, True)
        length = _secret_length(template)
        if len(ciphertext) != ps.output_len:
            raise CryptokiError(CKR_WRAPPED_KEY_LEN_RANGE, f"{ps.name} ciphertext is {ps.output_len} bytes")
        return _material(template, key.decapsulate(ciphertext)[:length])


#: (CKA_KEY_TYPE, CKA_VALUE_LEN) of a template -> the length ``_secret_length`` found for it:
#: the only two values it reads; only lengths found are kept, at most 256.
_LENGTHS: dict[tuple[Any, Any], int] = {}


def _secret_length(template: Mapping[int, Any]) -> int:
    """The new key's length: CKA_VALUE_LEN, else the key type's only one, else all 32 bytes
    of the shared secret (as C_DeriveKey: ``generic.derived_length``); longer than the
    secret is CKR_TEMPLATE_INCONSISTENT. A shorter key is the secret's first bytes (the
    secret is uniformly random: every slice is)."""
    shape = (template.get(CKA_KEY_TYPE), template.get(CKA_VALUE_LEN))
    try:
        length = _LENGTHS.get(shape)
        keep = True
    except TypeError:  # not hashable: not kept
        length, keep = None, False
    if length is None:
        length = generic.derived_length(template, pqc_keys.SHARED_SECRET_LEN)
        if length > pqc_keys.SHARED_SECRET_LEN:
            raise CryptokiError(CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN longer than the 32-byte shared secret")
        if keep:
            if len(_LENGTHS) >= 256:  # any CK_ULONG is a key type here (checked later): bounded
                _LENGTHS.clear()
            _LENGTHS[shape] = length
    return length


def _material(template: Mapping[int, Any], value: bytes) -> dict[int, Any]:
    """A generic secret unless the template names the key type (3.2 §6.68.5: "other
    attributes required by the key type must be specified in the template")."""
    material = generic.secret_material(value)
    if CKA_KEY_TYPE not in template:
        material[CKA_KEY_TYPE] = CKK_GENERIC_SECRET
    return material


FAMILY = MlKemFamily()
_SIZES = (min(ps.public_len for ps in ML_KEM.values()), max(ps.public_len for ps in ML_KEM.values()))

register(MechanismEntry(CKM_ML_KEM_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, *_SIZES, FAMILY, data=KeyGenData(CKK_ML_KEM)))
register(MechanismEntry(CKM_ML_KEM, CKF_ENCAPSULATE | CKF_DECAPSULATE, *_SIZES, FAMILY, frozenset({CKK_ML_KEM})))
