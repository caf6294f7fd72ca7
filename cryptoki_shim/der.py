"""DER, the little of it the module reads and writes itself (ITU-T X.690 §8.1.2-8.1.3, §10.1).

One codec for every layer that needs a DER element without a full ASN.1 parser: the
attribute policy (a certificate's CKA_SERIAL_NUMBER as a DER INTEGER, §4.6.3), the key
families (CKA_EC_POINT's OCTET STRING, EC parameters, OIDs, SubjectPublicKeyInfo and the
DigestInfo of RSA PKCS #1 v1.5) and key wrapping (the length of an unwrapped PKCS#8 blob).
Lengths are definite; a length field of more than 4 bytes (4 GiB) is refused.
"""

from __future__ import annotations

SEQUENCE, INTEGER, BIT_STRING, OCTET_STRING, NULL, OID = 0x30, 0x02, 0x03, 0x04, 0x05, 0x06


def length(n: int) -> bytes:
    """The length octets of ``n``: short form under 128, else the minimal long form."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """One DER element."""
    return bytes([tag]) + length(len(value)) + value


def integer(n: int) -> bytes:
    """A DER INTEGER: minimal two's complement (a leading 0x00 keeps a positive value positive)."""
    return tlv(INTEGER, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def header(data: bytes, *, strict: bool = True) -> tuple[int, int, int] | None:
    """(tag, header length, value length) of the element at the start of ``data``, or None
    when the header does not parse. ``strict``: a long form that could have been shorter
    is not DER either (None)."""
    if len(data) < 2:
        return None
    tag, first = data[0], data[1]
    if first < 0x80:
        return tag, 2, first
    n = first & 0x7F
    if n == 0 or n > 4 or len(data) < 2 + n:
        return None
    value_len = int.from_bytes(data[2 : 2 + n], "big")
    if strict and (value_len < 0x80 or data[2] == 0):  # not minimal: not DER
        return None
    return tag, 2 + n, value_len


def read_one(data: bytes) -> tuple[int, bytes] | None:
    """(tag, value) if ``data`` is exactly one DER element with a definite length, else None."""
    h = header(data)
    if h is None or h[1] + h[2] != len(data):
        return None
    return h[0], data[h[1] :]
