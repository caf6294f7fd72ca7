"""The expanded private keys of FIPS 203/204, computed from their seeds.

PKCS#11 3.2 gives ML-DSA and ML-KEM private key objects both the seed (``CKA_SEED``) and the
expanded key (``CKA_VALUE``: ML-DSA sk, ML-KEM dk), and a generated key pair carries both.
pyca/cryptography 50 keeps and exports only the seed, so the expanded form is computed here,
from the standards' own definitions, only when an object is made (generation, import,
unwrap): signing and decapsulation run on pyca from the seed. The results are checked
against the NIST KAT files' ``sk`` values (tests/test_pqc_kat.py), and each expansion checks
itself against pyca's public key (the public key is a by-product of the same computation).

Hashes are pyca's (SHAKE128/256, SHA3-256/512: hermetic, never the host's OpenSSL).

ML-DSA (FIPS 204): Algorithm 6 ML-DSA.KeyGen_internal, 24 skEncode, 32 ExpandA, 33 ExpandS,
30 RejNTTPoly, 31 RejBoundedPoly, 35 Power2Round, 41/42 NTT/NTT^-1.
ML-KEM (FIPS 203): Algorithm 13 K-PKE.KeyGen (only ŝ is needed for dk_PKE), 16
ML-KEM.KeyGen_internal (dk = dk_PKE ‖ ek ‖ H(ek) ‖ z), 8 SamplePolyCBD, 9 NTT, 5 ByteEncode12.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

from ..errors import CryptokiError
from ..spec import CKR_GENERAL_ERROR

# ----------------------------------------------------------------------------- hashes


def _shake256(data: bytes, n: int) -> bytes:
    h = hashes.Hash(hashes.SHAKE256(n))
    h.update(data)
    return h.finalize()


def _xof(algorithm: type, data: bytes) -> hashes.XOFHash:
    x = hashes.XOFHash(algorithm(digest_size=1 << 40))
    x.update(data)
    return x


def _sha3(algorithm: type, data: bytes) -> bytes:
    h = hashes.Hash(algorithm())
    h.update(data)
    return h.finalize()


def _bitrev(i: int, bits: int) -> int:
    return int(format(i, f"0{bits}b")[::-1], 2)


# ----------------------------------------------------------------------------- ML-DSA

_Q = 8380417
_D = 13
_DSA_ZETAS = [pow(1753, _bitrev(k, 8), _Q) for k in range(256)]
_INV_256 = 8347681  # 256^-1 mod q
_ETA = {(4, 4): 2, (6, 5): 4, (8, 7): 2}  # (k, l) -> η


def _dsa_ntt(w: list[int]) -> list[int]:
    w = list(w)
    m, length = 0, 128
    while length >= 1:
        for start in range(0, 256, 2 * length):
            m += 1
            z = _DSA_ZETAS[m]
            for j in range(start, start + length):
                t = z * w[j + length] % _Q
                w[j + length] = (w[j] - t) % _Q
                w[j] = (w[j] + t) % _Q
        length //= 2
    return w


def _dsa_intt(w: list[int]) -> list[int]:
    w = list(w)
    m, length = 256, 1
    while length < 256:
        for start in range(0, 256, 2 * length):
            m -= 1
            z = _Q - _DSA_ZETAS[m]
            for j in range(start, start + length):
                t = w[j]
                w[j] = (t + w[j + length]) % _Q
                w[j + length] = z * (t - w[j + length]) % _Q
        length *= 2
    return [_INV_256 * x % _Q for x in w]


def _rej_ntt_poly(seed: bytes) -> list[int]:
    xof = _xof(hashes.SHAKE128, seed)
    out: list[int] = []
    while len(out) < 256:
        block = xof.squeeze(168)
        for i in range(0, 168, 3):
            z = block[i] | (block[i + 1] << 8) | ((block[i + 2] & 0x7F) << 16)
            if z < _Q:
                out.append(z)
                if len(out) == 256:
                    break
    return out


def _half_byte(b: int, eta: int) -> int | None:
    if eta == 2 and b < 15:
        return 2 - (b % 5)
    if eta == 4 and b < 9:
        return 4 - b
    return None


def _rej_bounded_poly(seed: bytes, eta: int) -> list[int]:
    xof = _xof(hashes.SHAKE256, seed)
    out: list[int] = []
    while len(out) < 256:
        for z in xof.squeeze(136):
            for half in (z & 0x0F, z >> 4):
                c = _half_byte(half, eta)
                if c is not None and len(out) < 256:
                    out.append(c)
            if len(out) == 256:
                break
    return out


def _bit_pack(values: list[int], bits: int) -> bytes:
    """Coefficients of ``bits`` bits each, least significant bit first (BitsToBytes)."""
    acc = 0
    for i, v in enumerate(values):
        acc |= v << (i * bits)
    return acc.to_bytes(len(values) * bits // 8, "little")


def ml_dsa_sk(xi: bytes, public: bytes, k: int, l: int) -> bytes:  # noqa: E741 (FIPS 204's name)
    """sk of ML-DSA.KeyGen_internal(ξ) (FIPS 204 Algorithm 6), checked against ``public``."""
    eta = _ETA[(k, l)]
    expanded = _shake256(xi + bytes([k, l]), 128)
    rho, rho_prime, key = expanded[:32], expanded[32:96], expanded[96:]
    s1 = [_rej_bounded_poly(rho_prime + r.to_bytes(2, "little"), eta) for r in range(l)]
    s2 = [_rej_bounded_poly(rho_prime + (r + l).to_bytes(2, "little"), eta) for r in range(k)]
    s1_hat = [_dsa_ntt([c % _Q for c in p]) for p in s1]
    t1: list[int] = []
    t0: list[int] = []
    for r in range(k):
        acc = [0] * 256
        for s in range(l):
            a = _rej_ntt_poly(rho + bytes([s, r]))
            b = s1_hat[s]
            acc = [(x + y * z) % _Q for x, y, z in zip(acc, a, b)]
        t = [(x + y) % _Q for x, y in zip(_dsa_intt(acc), s2[r])]
        for c in t:
            r0 = c & ((1 << _D) - 1)
            if r0 > 1 << (_D - 1):
                r0 -= 1 << _D
            t1.append((c - r0) >> _D)
            t0.append(r0)
    if rho + _bit_pack(t1, 10) != public:  # pkEncode (Algorithm 22): our t1 is pyca's
        raise CryptokiError(CKR_GENERAL_ERROR, "ML-DSA expansion disagrees with the public key")
    tr = _shake256(public, 64)
    bits = 3 if eta == 2 else 4
    packed_s = b"".join(_bit_pack([eta - c for c in p], bits) for p in (*s1, *s2))
    packed_t0 = _bit_pack([(1 << (_D - 1)) - c for c in t0], _D)
    return rho + key + tr + packed_s + packed_t0


# ----------------------------------------------------------------------------- ML-KEM

_KQ = 3329
_KEM_ZETAS = [pow(17, _bitrev(i, 7), _KQ) for i in range(128)]


def _kem_ntt(f: list[int]) -> list[int]:
    f = list(f)
    i, length = 1, 128
    while length >= 2:
        for start in range(0, 256, 2 * length):
            zeta = _KEM_ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % _KQ
                f[j + length] = (f[j] - t) % _KQ
                f[j] = (f[j] + t) % _KQ
        length //= 2
    return f


def _cbd(data: bytes, eta: int) -> list[int]:
    bits = int.from_bytes(data, "little")
    out = []
    for i in range(256):
        x = sum((bits >> (2 * i * eta + j)) & 1 for j in range(eta))
        y = sum((bits >> (2 * i * eta + eta + j)) & 1 for j in range(eta))
        out.append((x - y) % _KQ)
    return out


_KEM_GAMMAS = [pow(17, 2 * _bitrev(i, 7) + 1, _KQ) for i in range(128)]


def _sample_ntt(seed: bytes) -> list[int]:
    """SampleNTT (Algorithm 7): rejection sampling of 12-bit values below q from SHAKE128."""
    xof = _xof(hashes.SHAKE128, seed)
    out: list[int] = []
    while len(out) < 256:
        block = xof.squeeze(168)
        for i in range(0, 168, 3):
            d1 = block[i] | ((block[i + 1] & 0x0F) << 8)
            d2 = (block[i + 1] >> 4) | (block[i + 2] << 4)
            for d in (d1, d2):
                if d < _KQ and len(out) < 256:
                    out.append(d)
    return out


def _multiply_ntts(f: list[int], g: list[int]) -> list[int]:
    """MultiplyNTTs (Algorithm 11): 128 products of degree-one polynomials."""
    h = [0] * 256
    for i in range(128):
        a0, a1, b0, b1 = f[2 * i], f[2 * i + 1], g[2 * i], g[2 * i + 1]
        h[2 * i] = (a0 * b0 + a1 * b1 * _KEM_GAMMAS[i]) % _KQ
        h[2 * i + 1] = (a0 * b1 + a1 * b0) % _KQ
    return h


def _kem_s_hat(sigma: bytes, k: int, first: int) -> list[list[int]]:
    eta1 = 3 if k == 2 else 2
    return [_kem_ntt(_cbd(_shake256(sigma + bytes([first + n]), 64 * eta1), eta1)) for n in range(k)]


def ml_kem_keygen(seed: bytes, k: int) -> tuple[bytes, bytes]:
    """(ek, dk) of ML-KEM.KeyGen_internal(d, z) (FIPS 203 Algorithms 13 and 16), for a
    parameter set whose library builds keys only from their expanded form (ML-KEM-512)."""
    d = seed[:32]
    expanded = _sha3(hashes.SHA3_512, d + bytes([k]))
    rho, sigma = expanded[:32], expanded[32:]
    s_hat = _kem_s_hat(sigma, k, 0)
    e_hat = _kem_s_hat(sigma, k, k)
    t_hat = []
    for i in range(k):
        acc = e_hat[i]
        for j in range(k):
            product = _multiply_ntts(_sample_ntt(rho + bytes([j, i])), s_hat[j])
            acc = [(x + y) % _KQ for x, y in zip(acc, product)]
        t_hat.append(acc)
    ek = b"".join(_bit_pack(p, 12) for p in t_hat) + rho
    return ek, ml_kem_dk(seed, ek, k)


def ml_kem_dk(seed: bytes, ek: bytes, k: int) -> bytes:
    """dk of ML-KEM.KeyGen_internal(d, z) (FIPS 203 Algorithm 16): dk_PKE ‖ ek ‖ H(ek) ‖ z."""
    d, z = seed[:32], seed[32:]
    sigma = _sha3(hashes.SHA3_512, d + bytes([k]))[32:]
    dk_pke = b"".join(_bit_pack(p, 12) for p in _kem_s_hat(sigma, k, 0))
    return dk_pke + ek + _sha3(hashes.SHA3_256, ek) + z
