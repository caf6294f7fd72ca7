"""PKCS#3 Diffie-Hellman: parameter and key pair generation, key agreement.

PKCS#11 3.0 §2.5:
* CKM_DH_PKCS_PARAMETER_GEN (C_GenerateKey) makes a CKO_DOMAIN_PARAMETERS object of
  CKA_PRIME_BITS bits (a safe prime, generator 2: pyca's generation, which takes seconds for
  2048 bits and more; well-known groups such as RFC 7919's ffdhe2048 need none).
* CKM_DH_PKCS_KEY_PAIR_GEN takes CKA_PRIME and CKA_BASE from the public template and, when the
  private template has it, CKA_VALUE_BITS: the length of x (PKCS#3 §7.1: 2^(l-1) <= x < 2^l).
  Without it OpenSSL chooses (the group's security strength for known groups, else p's length).
* CKM_DH_PKCS_DERIVE: the parameter is the other party's public value y (a big integer). The
  shared secret Z = y^x mod p is as long as p (leading zeros kept, as SoftHSM2 does); the new
  key takes CKA_VALUE_LEN bytes of it from the trailing end, the ECDH rule
  (``derive.agreed_key``: one code path for both agreements). A y outside [2, p-2] or one
  OpenSSL refuses is CKR_MECHANISM_PARAM_INVALID; the core's derivation rules treat DH as
  key agreement (``core.key_management.KEY_AGREEMENT``).

X9.42 DH (CKM_X9_42_DH_*) is not offered: pyca generates no X9.42 domain parameters (q and a
verifiable seed) and has none of its KDFs (CKD_SHA1_KDF_ASN1, _CONCATENATE) nor MQV.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping

from cryptography.hazmat.primitives.asymmetric import dh

from ..errors import CryptokiError
from ..spec_ints import (
    CKA_CLASS,
    CKA_VALUE_BITS,
    CKF_DERIVE,
    CKF_GENERATE,
    CKF_GENERATE_KEY_PAIR,
    CKK_DH,
    CKM_DH_PKCS_DERIVE,
    CKM_DH_PKCS_KEY_PAIR_GEN,
    CKM_DH_PKCS_PARAMETER_GEN,
    CKO_PRIVATE_KEY,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_PARAM_INVALID,
)
from . import ffc, keys
from .derive import agreed_key
from .registry import Family, KeyGenData, KeyView, MechanismEntry, ParameterGenData, register

#: The generator of the groups CKM_DH_PKCS_PARAMETER_GEN makes (pyca offers 2 and 5).
GENERATOR = 2


def _private_key(numbers: dh.DHParameterNumbers, value_bits: Any) -> dh.DHPrivateKey:
    """A new private key in the group; with CKA_VALUE_BITS, x of exactly that many bits."""
    if value_bits is None:
        return numbers.parameters().generate_private_key()
    bits = int(value_bits)
    if not 2 <= bits < numbers.p.bit_length():
        raise CryptokiError(CKR_ATTRIBUTE_VALUE_INVALID, f"CKA_VALUE_BITS {bits} for a {numbers.p.bit_length()}-bit prime")
    x = (1 << (bits - 1)) | secrets.randbits(bits - 1)
    public = dh.DHPublicNumbers(pow(numbers.g, x, numbers.p), numbers)
    return dh.DHPrivateNumbers(x, public).private_key()


def shared_secret(base_key: KeyView, public_value: Any) -> bytes:
    """Z of PKCS#3 §8.2 with the base key's x and the other party's y, as long as p."""
    if base_key.attrs.get(CKA_CLASS) != CKO_PRIVATE_KEY:
        raise CryptokiError(CKR_KEY_TYPE_INCONSISTENT, "CKM_DH_PKCS_DERIVE needs a DH private key")
    if not isinstance(public_value, bytes) or not public_value:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "the other party's public value is required")
    private = keys.load_private(base_key)
    numbers = private.private_numbers().public_numbers.parameter_numbers
    p_len = (numbers.p.bit_length() + 7) // 8
    y = int.from_bytes(public_value, "big")
    if len(public_value.lstrip(b"\0")) > p_len or not 1 < y < numbers.p - 1:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "the public value is outside [2, p-2]")
    try:
        secret = private.exchange(dh.DHPublicNumbers(y, numbers).public_key())
    except ValueError:
        raise CryptokiError(CKR_MECHANISM_PARAM_INVALID, "OpenSSL refused the public value") from None
    return secret.rjust(p_len, b"\0")


class DhFamily(Family):
    __slots__ = ()

    def generate_key(self, entry: MechanismEntry[ParameterGenData], param: Any, template: Mapping[int, Any]) -> dict[int, Any]:
        """CKM_DH_PKCS_PARAMETER_GEN (§2.5.6): a safe-prime group of CKA_PRIME_BITS bits."""
        bits = ffc.parameter_bits(template, CKK_DH)
        return ffc.domain_material(CKK_DH, dh.generate_parameters(GENERATOR, bits).parameter_numbers())

    def generate_key_pair(
        self, entry: MechanismEntry[KeyGenData], param: Any, pub_template: Mapping[int, Any],
        priv_template: Mapping[int, Any]
    ) -> tuple[dict[int, Any], dict[int, Any]]:
        """CKM_DH_PKCS_KEY_PAIR_GEN (§2.5.5): CKA_PRIME/CKA_BASE of the public template
        (missing: CKR_TEMPLATE_INCOMPLETE; refused: CKR_DOMAIN_PARAMS_INVALID)."""
        numbers = ffc.dh_parameters(pub_template, CKR_DOMAIN_PARAMS_INVALID)
        return ffc.key_pair_material(_private_key(numbers, priv_template.get(CKA_VALUE_BITS)))

    def derive(self, entry: MechanismEntry, param: Any, base_key: KeyView, template: Mapping[int, Any]) -> dict[int, Any]:
        """CKM_DH_PKCS_DERIVE (§2.5.7)."""
        return agreed_key(template, shared_secret(base_key, param))


FAMILY = DhFamily()

register(MechanismEntry(CKM_DH_PKCS_PARAMETER_GEN, CKF_GENERATE, ffc.DH_MIN_BITS, ffc.DH_MAX_BITS, FAMILY,
                        data=ParameterGenData(CKK_DH)))
register(MechanismEntry(CKM_DH_PKCS_KEY_PAIR_GEN, CKF_GENERATE_KEY_PAIR, ffc.DH_MIN_BITS, ffc.DH_MAX_BITS, FAMILY,
                        data=KeyGenData(CKK_DH)))
register(MechanismEntry(CKM_DH_PKCS_DERIVE, CKF_DERIVE, ffc.DH_MIN_BITS, ffc.DH_MAX_BITS, FAMILY,
                        frozenset({CKK_DH}), param=bytes))
