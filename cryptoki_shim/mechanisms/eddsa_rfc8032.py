"""RFC 8032 EdDSA in pure Python: the variants pyca/cryptography does not offer.

CKM_EDDSA with CK_EDDSA_PARAMS (PKCS#11 3.0 §2.3.14) names Ed25519ctx, Ed25519ph, Ed448
with a context and Ed448ph; pyca implements only pure Ed25519/Ed448, so these are done here
from the RFC's definitions (§5.1 Ed25519, §5.2 Ed448): twisted Edwards curves in extended
coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z, with the unified addition of Hisil et
al. (complete on both curves: a is a square and d is not), Python ints throughout.

Not constant time (Python ints are not): acceptable for a software token whose pure
schemes stay on pyca; these variants are for interoperability.

``Scheme`` holds the curve and hash of one family; ``sign``/``verify`` take the message
already reduced by PH when ``phflag`` is set (``prehash`` does that), so a multi-part
operation can hash incrementally with ``new_prehash``.

H and PH run on pyca/cryptography, never ``hashlib``: Python's hashlib uses the host
process's libcrypto and its configuration, which may send digests back into this module
through pkcs11-provider (issue 25).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from cryptography.hazmat.primitives import hashes

Point = tuple[int, int, int, int]


class InvalidSignature(Exception):
    """The signature does not verify (or does not decode)."""


@dataclass(frozen=True)
class Scheme:
    name: str
    p: int  # field prime
    a: int  # curve coefficient a (-1 for edwards25519, 1 for edwards448)
    d: int
    L: int  # order of the base point
    b: int  # encoding length in bits (256, 456)
    cofactor: int  # 8, 4
    base: tuple[int, int]  # (x, y) of B
    dom_prefix: bytes  # "SigEd25519 no Ed25519 collisions" / "SigEd448"
    dom_always: bool  # Ed448 always prefixes dom4; Ed25519 only with a context or prehash
    hash: Callable[[bytes], bytes]  # H, 2b bits
    prehash_factory: Callable[[], Any]  # PH: SHA-512 / SHAKE256(x, 64), a pyca Hash

    @property
    def size(self) -> int:
        return self.b // 8

    # --- field and points ----------------------------------------------------------

    def _inv(self, x: int) -> int:
        return pow(x, self.p - 2, self.p)

    def _add(self, P: Point, Q: Point) -> Point:
        p = self.p
        X1, Y1, Z1, T1 = P
        X2, Y2, Z2, T2 = Q
        A = X1 * X2 % p
        B = Y1 * Y2 % p
        C = self.d * T1 % p * T2 % p
        D = Z1 * Z2 % p
        E = ((X1 + Y1) * (X2 + Y2) - A - B) % p
        F = (D - C) % p
        G = (D + C) % p
        H = (B - self.a * A) % p
        return (E * F % p, G * H % p, F * G % p, E * H % p)

    def _mul(self, k: int, P: Point) -> Point:
        R: Point = (0, 1, 1, 0)  # the neutral element
        while k:
            if k & 1:
                R = self._add(R, P)
            P = self._add(P, P)
            k >>= 1
        return R

    def _point(self, xy: tuple[int, int]) -> Point:
        x, y = xy
        return (x, y, 1, x * y % self.p)

    def _equal(self, P: Point, Q: Point) -> bool:
        p = self.p
        return (P[0] * Q[2] - Q[0] * P[2]) % p == 0 and (P[1] * Q[2] - Q[1] * P[2]) % p == 0

    def encode(self, P: Point) -> bytes:
        """§5.1.2 / §5.2.2: y little-endian, the top bit of the last octet = x's low bit."""
        zi = self._inv(P[2])
        x, y = P[0] * zi % self.p, P[1] * zi % self.p
        return (y | ((x & 1) << (self.b - 1))).to_bytes(self.size, "little")

    def _sqrt(self, u: int) -> int | None:
        p = self.p
        if p % 4 == 3:
            x = pow(u, (p + 1) // 4, p)
        else:  # p = 5 mod 8
            x = pow(u, (p + 3) // 8, p)
            if x * x % p != u % p:
                x = x * pow(2, (p - 1) // 4, p) % p
        return x if x * x % p == u % p else None

    def decode(self, data: bytes) -> Point:
        """§5.1.3 / §5.2.3; InvalidSignature for anything that is not a curve point."""
        if len(data) != self.size:
            raise InvalidSignature("point encoding length")
        n = int.from_bytes(data, "little")
        sign = n >> (self.b - 1)
        y = n & ((1 << (self.b - 1)) - 1)
        if y >= self.p:
            raise InvalidSignature("y out of range")
        p = self.p
        u = (y * y - 1) % p
        v = (self.d * y * y - self.a) % p
        x = self._sqrt(u * self._inv(v) % p)
        if x is None:
            raise InvalidSignature("not on the curve")
        if x == 0 and sign:
            raise InvalidSignature("x = 0 with the sign bit set")
        if x & 1 != sign:
            x = p - x
        return self._point((x, y))

    # --- keys ------------------------------------------------------------------------

    def _expand(self, seed: bytes) -> tuple[int, bytes]:
        """(secret scalar s, prefix) from the private key (§5.1.5 / §5.2.5)."""
        if len(seed) != self.size:
            raise ValueError(f"{self.name} private key must be {self.size} bytes")
        h = self.hash(seed)
        head = bytearray(h[: self.size])
        if self.cofactor == 8:
            head[0] &= 248
            head[31] &= 127
            head[31] |= 64
        else:
            head[0] &= 252
            head[56] = 0
            head[55] |= 128
        return int.from_bytes(head, "little"), h[self.size :]

    def public_key(self, seed: bytes) -> bytes:
        s, _prefix = self._expand(seed)
        return self.encode(self._mul(s, self._point(self.base)))

    # --- signatures --------------------------------------------------------------------

    def dom(self, phflag: bool, context: bytes) -> bytes:
        """dom2 (§5.1) / dom4 (§5.2): empty only for pure Ed25519."""
        if len(context) > 255:
            raise ValueError("context longer than 255 octets")
        if not self.dom_always and not phflag and not context:
            return b""
        return self.dom_prefix + bytes([int(phflag), len(context)]) + context

    def new_prehash(self) -> Any:
        return self.prehash_factory()

    def finish_prehash(self, h: Any) -> bytes:
        return h.finalize()

    def prehash(self, message: bytes) -> bytes:
        h = self.new_prehash()
        h.update(message)
        return self.finish_prehash(h)

    def _h_int(self, *parts: bytes) -> int:
        return int.from_bytes(self.hash(b"".join(parts)), "little") % self.L

    def sign(self, seed: bytes, phm: bytes, *, phflag: bool, context: bytes) -> bytes:
        """R || S over PH(M) (``phm``: M itself unless ``phflag``), §5.1.6 / §5.2.6."""
        dom = self.dom(phflag, context)
        s, prefix = self._expand(seed)
        B = self._point(self.base)
        A = self.encode(self._mul(s, B))
        r = self._h_int(dom, prefix, phm)
        R = self.encode(self._mul(r, B))
        k = self._h_int(dom, R, A, phm)
        S = (r + k * s) % self.L
        return R + S.to_bytes(self.size, "little")

    def verify(self, public: bytes, phm: bytes, signature: bytes, *, phflag: bool, context: bytes) -> None:
        """§5.1.7 / §5.2.7: the cofactored equation [c][S]B = [c]R + [c][k]A."""
        if len(signature) != 2 * self.size:
            raise InvalidSignature("signature length")
        dom = self.dom(phflag, context)
        R_enc, S_enc = signature[: self.size], signature[self.size :]
        S = int.from_bytes(S_enc, "little")
        if S >= self.L:
            raise InvalidSignature("S out of range")
        A = self.decode(public)
        R = self.decode(R_enc)
        k = self._h_int(dom, R_enc, public, phm)
        left = self._mul(self.cofactor * S, self._point(self.base))
        right = self._add(self._mul(self.cofactor, R), self._mul(self.cofactor * k, A))
        if not self._equal(left, right):
            raise InvalidSignature("equation does not hold")


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


_P25519 = 2**255 - 19
_P448 = 2**448 - 2**224 - 1


ED25519 = Scheme(
    name="Ed25519",
    p=_P25519,
    a=-1,
    d=-121665 * pow(121666, _P25519 - 2, _P25519) % _P25519,
    L=2**252 + 27742317777372353535851937790883648493,
    b=256,
    cofactor=8,
    base=(15112221349535400772501151409588531511454012693041857206046113283949847762202,
          46316835694926478169428394003475163141307993866256225615783033603165251855960),
    dom_prefix=b"SigEd25519 no Ed25519 collisions",
    dom_always=False,
    hash=lambda data: _hash(hashes.SHA512(), data),
    prehash_factory=lambda: hashes.Hash(hashes.SHA512()),
)

ED448 = Scheme(
    name="Ed448",
    p=_P448,
    a=1,
    d=-39081 % _P448,
    L=2**446 - 13818066809895115352007386748515426880336692474882178609894547503885,
    b=456,
    cofactor=4,
    base=(224580040295924300187604334099896036246789641632564134246125461686950415467406032909029192869357953282578032075146446173674602635247710,
          298819210078481492676017930443930673437544040154080242095928241372331506189835876003536878655418784733982303233503462500531545062832660),
    dom_prefix=b"SigEd448",
    dom_always=True,
    hash=lambda data: _hash(hashes.SHAKE256(114), data),
    prehash_factory=lambda: hashes.Hash(hashes.SHAKE256(64)),
)
