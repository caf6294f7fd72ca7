"""The lengths a C caller may claim, one named limit per concept (issue 15, item 10).

Every ``CK_ULONG`` length that comes with a C buffer is checked against one of these
*before* the buffer is touched (``marshal.read_buffer``): a garbage or hostile length must
neither make us allocate and copy gigabytes (MemoryError -> CKR_GENERAL_ERROR) nor read far
past the caller's buffer (``C_Login`` with ulPinLen = 256 MiB over 5 bytes crashed the host).
A length within its limit but larger than the real buffer cannot be detected from C; that is
the caller's bug, as with any C API.

Each ``Limit`` names the CKR the spec gives for "too long" in that place (§5.1):
``ckr`` when the length is over ``size``, ``null_ckr`` when the pointer is NULL with a
non-zero length. The sizes are far above any legitimate use and far below what hurts.
"""

from __future__ import annotations

from typing import NamedTuple

from ..spec_ints import (
    CKR_ARGUMENTS_BAD as _ARGS,
    CKR_ATTRIBUTE_VALUE_INVALID as _ATTR,
    CKR_DATA_LEN_RANGE,
    CKR_ENCRYPTED_DATA_LEN_RANGE,
    CKR_MECHANISM_PARAM_INVALID as _PARAM,
    CKR_PIN_LEN_RANGE,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_WRAPPED_KEY_LEN_RANGE,
)


class Limit(NamedTuple):
    """The largest length a caller may claim for one kind of buffer, and the codes to answer."""

    size: int
    ckr: int
    null_ckr: int
    what: str


KiB, MiB = 1 << 10, 1 << 20

DATA = Limit(64 * MiB, CKR_DATA_LEN_RANGE, _ARGS, "data")
"""One call's input to C_Encrypt/Sign/Verify/Digest (and their Update parts). Larger inputs
are streamed through the Update calls, which each take up to this much; 64 MiB per call
keeps a single call's copies (input, output) well inside a host's memory."""

ENCRYPTED_DATA = Limit(DATA.size + 64 * KiB, CKR_ENCRYPTED_DATA_LEN_RANGE, _ARGS, "encrypted data")
"""C_Decrypt/C_DecryptUpdate input: ``DATA`` plus room for any padding, tag or RSA block."""

SIGNATURE = Limit(64 * KiB, CKR_SIGNATURE_LEN_RANGE, _ARGS, "signature")
"""C_Verify/C_VerifyFinal: our largest signature is RSA-16384's 2 KiB; 64 KiB leaves room
for upstream tokens with larger schemes (SLH-DSA signatures reach 49,856 bytes)."""

WRAPPED_KEY = Limit(64 * KiB, CKR_WRAPPED_KEY_LEN_RANGE, _ARGS, "wrapped key")
"""C_UnwrapKey input: a wrapped RSA-16384 private key (PKCS#8) is under 10 KiB."""

SEED = Limit(64 * KiB, _ARGS, _ARGS, "seed")
"""C_SeedRandom: the OS pool takes a few hundred bytes of entropy at most; more is refused."""

PARAMETER = Limit(64 * KiB, _PARAM, _PARAM, "mechanism parameter")
"""Byte strings inside a CK_MECHANISM (IVs, nonces, OAEP labels, HKDF salt and info, EdDSA
context, ECDH public data, derivation data, PBKDF2 password): the longest legitimate one
is a public key or a KDF label, a few KiB."""

AAD = Limit(16 * MiB, _PARAM, _PARAM, "additional authenticated data")
"""GCM/CCM pAAD: authenticated headers can be large, but one mechanism parameter is copied
whole on every C_*Init; 16 MiB is the same bound as an attribute value."""

PARAMETER_ITEMS = Limit(64, _PARAM, _PARAM, "parameter array")
"""Arrays inside a parameter (SP 800-108 ulNumberOfDataParams): real ones have under ten."""

ATTRIBUTE_VALUE = Limit(16 * MiB, _ATTR, _ATTR, "attribute value")
"""One CK_ATTRIBUTE's ulValueLen (CK_UNAVAILABLE_INFORMATION included): the largest real
value is a certificate or a data object; 16 MiB is the bound of a stored object."""

TEMPLATE = Limit(4096, _ARGS, _ARGS, "template")
"""ulCount of a CK_ATTRIBUTE array: an object has under 100 attributes; a larger count is a
garbage argument (CKR_ARGUMENTS_BAD, which every function taking a template may answer)."""

NESTED_TEMPLATE = Limit(TEMPLATE.size, _ATTR, _ATTR, "nested template")
"""A CKA_WRAP_TEMPLATE-style value: the same count bound, but the fault is the attribute's."""

_PINS: dict[int, Limit] = {}


def pin(max_pin_len: int) -> Limit:
    """A PIN for a token whose CK_TOKEN_INFO.ulMaxPinLen is ``max_pin_len`` (config
    ``max_pin_len``, at most 255): a longer one is CKR_PIN_LEN_RANGE before it is read, and
    is not counted as a wrong guess (no PIN that long can be right)."""
    limit = _PINS.get(max_pin_len)
    if limit is None:
        limit = _PINS[max_pin_len] = Limit(max_pin_len, CKR_PIN_LEN_RANGE, _ARGS, "PIN")
    return limit
