/* digest.c - SHA-1/SHA-2 digests and HMAC on libcrypto's low-level block functions
 * (issue 25: hermetic digests; see digest.h for the contract).
 *
 * Included by the cffi source next to shim.c (see build_ffi.py); declared to cffi from
 * digest.h, so Python calls them through the embedded module's `lib` and cffi releases the
 * GIL for the duration of each call.
 *
 * Why the deprecated SHA*_Init/Update/Final: they are the only libcrypto digests that read
 * no configuration, fetch nothing and consult no provider, so a host whose OpenSSL sends
 * every algorithm to pkcs11-provider (which would call back into us) cannot reach them; and
 * their state is a public struct without pointers, so C_GetOperationState can save it as
 * bytes. They stay in OpenSSL 3.x (deprecated, not removed) and run the same assembly
 * block functions as EVP. Nothing here allocates, locks or keeps state between calls.
 */
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "digest.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* FIPS 180-4 §5.3.6: the initial hash values of SHA-512/224 and SHA-512/256; SHA512_Final
 * writes md_len bytes (28 or 32) of the state, as OpenSSL's own SHA-512/t does. */
static const SHA_LONG64 shim_iv_512_224[8] = {
    0x8C3D37C819544DA2ULL, 0x73E1996689DCD4D6ULL, 0x1DFAB7AE32FF9C82ULL, 0x679DD514582F9FCFULL,
    0x0F6D2B697BD44DA8ULL, 0x77E36F7304C48942ULL, 0x3F9D85A86A1D36C8ULL, 0x1112E6AD91D692A1ULL,
};
static const SHA_LONG64 shim_iv_512_256[8] = {
    0x22312194FC2BF72CULL, 0x9F555FA3C84C64C2ULL, 0x2393B86B6F53B151ULL, 0x963877195940EABDULL,
    0x96283EE2A88EFFE3ULL, 0xBE5E1E2553863992ULL, 0x2B0199FC2C85B8AAULL, 0x0EB72DDC81C52CA2ULL,
};

/* SHA-3 (FIPS 202): libcrypto has no low-level SHA-3 API (its Keccak is reached only through
 * EVP, i.e. providers), so the permutation is here, from the standard's definition: 24
 * rounds of theta, rho, pi, chi, iota on 25 little-endian 64-bit lanes. Lanes are read and
 * written as bytes of the state on a little-endian machine; on another byte order SHA-3
 * is not served here (pyca then runs it and its state is not saveable). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SHIM_HAVE_SHA3 1
#else
#define SHIM_HAVE_SHA3 0
#endif

typedef struct shim_sha3_ctx {
    uint64_t st[25];
    unsigned int pt;     /* bytes absorbed into the current block */
    unsigned int rate;   /* 200 - 2 * md_len */
    unsigned int md_len;
} shim_sha3_ctx;

static const uint64_t shim_keccak_rc[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};
static const int shim_keccak_rotc[24] = {1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14,
                                         27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44};
static const int shim_keccak_piln[24] = {10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4,
                                         15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1};

#define SHIM_ROTL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))

/* The loops have constant bounds: unrolled, the lanes stay in registers (5x faster than
 * the rolled loops at -O2 on x86-64). */
__attribute__((optimize("O3", "unroll-loops")))
static void shim_keccakf(uint64_t st[25])
{
    static const int next[5] = {1, 2, 3, 4, 0}, prev[5] = {4, 0, 1, 2, 3}, next2[5] = {2, 3, 4, 0, 1};
    uint64_t bc[5], t;
    int i, j, r;

    for (r = 0; r < 24; r++) {
        for (i = 0; i < 5; i++) /* theta */
            bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
        for (i = 0; i < 5; i++) {
            t = bc[prev[i]] ^ SHIM_ROTL64(bc[next[i]], 1);
            for (j = 0; j < 25; j += 5)
                st[j + i] ^= t;
        }
        t = st[1]; /* rho and pi */
        for (i = 0; i < 24; i++) {
            j = shim_keccak_piln[i];
            bc[0] = st[j];
            st[j] = SHIM_ROTL64(t, shim_keccak_rotc[i]);
            t = bc[0];
        }
        for (j = 0; j < 25; j += 5) { /* chi */
            for (i = 0; i < 5; i++)
                bc[i] = st[j + i];
            for (i = 0; i < 5; i++)
                st[j + i] ^= (~bc[next[i]]) & bc[next2[i]];
        }
        st[0] ^= shim_keccak_rc[r]; /* iota */
    }
}

static int shim_sha3_init(shim_sha3_ctx *c, size_t md_len)
{
    memset(c, 0, sizeof(*c));
    c->md_len = (unsigned int)md_len;
    c->rate = (unsigned int)(200 - 2 * md_len);
    return 1;
}

static int shim_sha3_update(shim_sha3_ctx *c, const unsigned char *in, size_t len)
{
    unsigned char *state = (unsigned char *)c->st;
    uint64_t lane;

    while (len) {
        if (c->pt % 8 == 0 && len >= 8 && c->pt + 8 <= c->rate) { /* a whole lane */
            memcpy(&lane, in, 8);
            c->st[c->pt / 8] ^= lane;
            c->pt += 8;
            in += 8;
            len -= 8;
        } else {
            state[c->pt++] ^= *in++;
            len--;
        }
        if (c->pt == c->rate) {
            shim_keccakf(c->st);
            c->pt = 0;
        }
    }
    return 1;
}

static int shim_sha3_final(shim_sha3_ctx *c, unsigned char *out)
{
    unsigned char *state = (unsigned char *)c->st;

    state[c->pt] ^= 0x06; /* SHA-3 domain bits 01, then pad10*1 */
    state[c->rate - 1] ^= 0x80;
    shim_keccakf(c->st);
    memcpy(out, state, c->md_len);
    OPENSSL_cleanse(c, sizeof(*c));
    return 1;
}

/* The state layouts: SHA-1, SHA-224/256, SHA-384/512 and the SHA-512/t, SHA-3. */
enum { SHIM_NONE, SHIM_SHA1, SHIM_SHA256, SHIM_SHA512, SHIM_SHA3 };

/* Big enough for any layout (one-shot states on the C stack). */
typedef union shim_any_ctx {
    SHA512_CTX sha512;
    shim_sha3_ctx sha3;
} shim_any_ctx;
/* The largest block (SHA3-224's rate): HMAC pads. */
#define SHIM_MAX_BLOCK 144

typedef struct shim_digest_kind {
    int layout;
    size_t md_len;
    size_t block;
} shim_digest_kind;

static shim_digest_kind shim_kind(unsigned long mech)
{
    shim_digest_kind k = {SHIM_NONE, 0, 0};
    switch (mech) {
    case CKM_SHA_1:      k.layout = SHIM_SHA1;   k.md_len = SHA_DIGEST_LENGTH;    k.block = SHA_CBLOCK; break;
    case CKM_SHA224:     k.layout = SHIM_SHA256; k.md_len = SHA224_DIGEST_LENGTH; k.block = SHA256_CBLOCK; break;
    case CKM_SHA256:     k.layout = SHIM_SHA256; k.md_len = SHA256_DIGEST_LENGTH; k.block = SHA256_CBLOCK; break;
    case CKM_SHA384:     k.layout = SHIM_SHA512; k.md_len = SHA384_DIGEST_LENGTH; k.block = SHA512_CBLOCK; break;
    case CKM_SHA512:     k.layout = SHIM_SHA512; k.md_len = SHA512_DIGEST_LENGTH; k.block = SHA512_CBLOCK; break;
    case CKM_SHA512_224: k.layout = SHIM_SHA512; k.md_len = SHA224_DIGEST_LENGTH; k.block = SHA512_CBLOCK; break;
    case CKM_SHA512_256: k.layout = SHIM_SHA512; k.md_len = SHA256_DIGEST_LENGTH; k.block = SHA512_CBLOCK; break;
    case CKM_SHA3_224:   k.layout = SHIM_SHA3;   k.md_len = 28; k.block = 200 - 56; break;
    case CKM_SHA3_256:   k.layout = SHIM_SHA3;   k.md_len = 32; k.block = 200 - 64; break;
    case CKM_SHA3_384:   k.layout = SHIM_SHA3;   k.md_len = 48; k.block = 200 - 96; break;
    case CKM_SHA3_512:   k.layout = SHIM_SHA3;   k.md_len = 64; k.block = 200 - 128; break;
    default: break;
    }
    if (k.layout == SHIM_SHA3 && !SHIM_HAVE_SHA3)
        k.layout = SHIM_NONE, k.md_len = 0, k.block = 0;
    return k;
}

size_t shim_digest_ctx_size(unsigned long mech)
{
    switch (shim_kind(mech).layout) {
    case SHIM_SHA1:   return sizeof(SHA_CTX);
    case SHIM_SHA256: return sizeof(SHA256_CTX);
    case SHIM_SHA512: return sizeof(SHA512_CTX);
    case SHIM_SHA3:   return sizeof(shim_sha3_ctx);
    default:          return 0;
    }
}

size_t shim_digest_size(unsigned long mech)
{
    return shim_kind(mech).md_len;
}

int shim_digest_init(unsigned long mech, void *ctx)
{
    SHA512_CTX *c512 = ctx;

    switch (mech) {
    case CKM_SHA_1:      return SHA1_Init(ctx);
    case CKM_SHA224:     return SHA224_Init(ctx);
    case CKM_SHA256:     return SHA256_Init(ctx);
    case CKM_SHA384:     return SHA384_Init(ctx);
    case CKM_SHA512:     return SHA512_Init(ctx);
    case CKM_SHA512_224:
    case CKM_SHA512_256:
        if (!SHA512_Init(c512))
            return 0;
        memcpy(c512->h, mech == CKM_SHA512_224 ? shim_iv_512_224 : shim_iv_512_256, sizeof(c512->h));
        c512->md_len = (unsigned int)shim_kind(mech).md_len;
        return 1;
    default:
        if (shim_kind(mech).layout == SHIM_SHA3)
            return shim_sha3_init(ctx, shim_kind(mech).md_len);
        return 0;
    }
}

static int shim_digest_feed(unsigned long mech, void *ctx, const char *data, size_t len)
{
    switch (shim_kind(mech).layout) {
    case SHIM_SHA1:   return SHA1_Update(ctx, data, len);
    case SHIM_SHA256: return SHA256_Update(ctx, data, len);
    case SHIM_SHA512: return SHA512_Update(ctx, data, len);
    case SHIM_SHA3:   return shim_sha3_update(ctx, (const unsigned char *)data, len);
    default:          return 0;
    }
}

/* Python's C_DigestUpdate/C_SignUpdate (cffi, GIL released): a large part hands the GIL entry
 * gate (shim.c) to another thread for its duration, as the one-shot path does; without that a
 * second thread waited for the gate while the GIL was free (digest-sha256-1m: 2 threads 0.9x
 * of 1). Small parts keep it: the hand-over costs more than their hashing. */
int shim_digest_update(unsigned long mech, void *ctx, const char *data, size_t len)
{
    int ok;
    if (len < 2048)
        return shim_digest_feed(mech, ctx, data, len);
    shim_gate_yield();
    ok = shim_digest_feed(mech, ctx, data, len);
    shim_gate_reclaim();
    return ok;
}

int shim_digest_final(unsigned long mech, void *ctx, char *out)
{
    switch (shim_kind(mech).layout) {
    case SHIM_SHA1:   return SHA1_Final((unsigned char *)out, ctx);
    case SHIM_SHA256: return SHA256_Final((unsigned char *)out, ctx);
    case SHIM_SHA512: return SHA512_Final((unsigned char *)out, ctx);
    case SHIM_SHA3:   return shim_sha3_final(ctx, (unsigned char *)out);
    default:          return 0;
    }
}

int shim_digest_oneshot(unsigned long mech, const char *data, size_t len, char *out)
{
    shim_any_ctx ctx;
    int ok = shim_digest_init(mech, &ctx) && shim_digest_feed(mech, &ctx, data, len)
             && shim_digest_final(mech, &ctx, out);
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    return ok;
}

int shim_digest_check(unsigned long mech, const void *ctx)
{
    shim_digest_kind k = shim_kind(mech);

    switch (k.layout) {
    case SHIM_SHA1:
        return ((const SHA_CTX *)ctx)->num < k.block;
    case SHIM_SHA256:
        return ((const SHA256_CTX *)ctx)->num < k.block && ((const SHA256_CTX *)ctx)->md_len == k.md_len;
    case SHIM_SHA512:
        return ((const SHA512_CTX *)ctx)->num < k.block && ((const SHA512_CTX *)ctx)->md_len == k.md_len;
    case SHIM_SHA3:
        return ((const shim_sha3_ctx *)ctx)->pt < k.block && ((const shim_sha3_ctx *)ctx)->rate == k.block
               && ((const shim_sha3_ctx *)ctx)->md_len == k.md_len;
    default:
        return 0;
    }
}

int shim_hmac_init(unsigned long mech, void *ctx, const char *key, size_t keylen)
{
    shim_digest_kind k = shim_kind(mech);
    size_t size = shim_digest_ctx_size(mech), i;
    unsigned char *inner = ctx, *outer = inner + size;
    unsigned char pad[SHIM_MAX_BLOCK], hashed[SHA512_DIGEST_LENGTH];
    int ok = 0;

    if (k.layout == SHIM_NONE)
        return 0;
    memset(pad, 0, sizeof(pad));
    if (keylen > k.block) { /* RFC 2104 §2: a key longer than the block is hashed first */
        if (!shim_digest_oneshot(mech, key, keylen, (char *)hashed))
            goto done;
        memcpy(pad, hashed, k.md_len);
    } else if (keylen) {
        memcpy(pad, key, keylen);
    }
    for (i = 0; i < k.block; i++)
        pad[i] ^= 0x36;
    if (!shim_digest_init(mech, inner) || !shim_digest_feed(mech, inner, (char *)pad, k.block))
        goto done;
    for (i = 0; i < k.block; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    ok = shim_digest_init(mech, outer) && shim_digest_feed(mech, outer, (char *)pad, k.block);
done:
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(hashed, sizeof(hashed));
    return ok;
}

int shim_hmac_final(unsigned long mech, void *ctx, char *out)
{
    size_t size = shim_digest_ctx_size(mech), md_len = shim_digest_size(mech);
    unsigned char *inner = ctx, *outer = inner + size;
    unsigned char hashed[SHA512_DIGEST_LENGTH];
    int ok;

    if (size == 0)
        return 0;
    ok = shim_digest_final(mech, inner, (char *)hashed) && shim_digest_feed(mech, outer, (char *)hashed, md_len)
         && shim_digest_final(mech, outer, out);
    OPENSSL_cleanse(hashed, sizeof(hashed));
    return ok;
}

int shim_hmac_oneshot(unsigned long mech, const void *proto, const char *data, size_t len, char *out)
{
    shim_any_ctx pair[2]; /* inner and outer, the largest layout */
    size_t size = shim_digest_ctx_size(mech);
    int ok;

    if (size == 0)
        return 0;
    memcpy(pair, proto, 2 * size);
    ok = shim_digest_feed(mech, pair, data, len) && shim_hmac_final(mech, pair, out);
    OPENSSL_cleanse(pair, sizeof(pair));
    return ok;
}

/* ---- the one-shot paths as CPython builtins (see digest.h) ---- */

/* hashlib's threshold: below it the GIL hand-off costs more than the hashing. */
#define SHIM_GIL_MINSIZE 2048

static PyObject *shim_py_oneshot(unsigned long mech, const Py_buffer *proto, PyObject *data)
{
    Py_buffer in;
    PyObject *out;
    size_t md_len = shim_digest_size(mech);
    int ok;

    size_t size = shim_digest_ctx_size(mech);

    /* Any Python code of the process can call this: a prepared state must be one these
     * functions could have made (lengths in range), never an offset into the stack. */
    if (md_len == 0 || (proto != NULL && ((size_t)proto->len != 2 * size || !shim_digest_check(mech, proto->buf)
                                          || !shim_digest_check(mech, (const char *)proto->buf + size)))) {
        PyErr_SetString(PyExc_ValueError, "not a native digest or HMAC state");
        return NULL;
    }
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) != 0)
        return NULL;
    out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)md_len);
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    if (in.len >= SHIM_GIL_MINSIZE) {
        Py_BEGIN_ALLOW_THREADS
        shim_gate_yield(); /* the GIL entry gate (shim.c) goes to another thread meanwhile */
        ok = proto ? shim_hmac_oneshot(mech, proto->buf, in.buf, (size_t)in.len, PyBytes_AS_STRING(out))
                   : shim_digest_oneshot(mech, in.buf, (size_t)in.len, PyBytes_AS_STRING(out));
        shim_gate_reclaim();
        Py_END_ALLOW_THREADS
    } else {
        ok = proto ? shim_hmac_oneshot(mech, proto->buf, in.buf, (size_t)in.len, PyBytes_AS_STRING(out))
                   : shim_digest_oneshot(mech, in.buf, (size_t)in.len, PyBytes_AS_STRING(out));
    }
    PyBuffer_Release(&in);
    if (!ok) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_ValueError, "native digest failed");
        return NULL;
    }
    return out;
}

static PyObject *shim_py_digest(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long mech;

    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "digest(mech, data)");
        return NULL;
    }
    mech = PyLong_AsUnsignedLong(args[0]);
    if (mech == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    return shim_py_oneshot(mech, NULL, args[1]);
}

static PyObject *shim_py_hmac(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long mech;
    Py_buffer proto;
    PyObject *out;

    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "hmac(mech, prepared_state, data)");
        return NULL;
    }
    mech = PyLong_AsUnsignedLong(args[0]);
    if (mech == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[1], &proto, PyBUF_SIMPLE) != 0)
        return NULL;
    out = shim_py_oneshot(mech, &proto, args[2]);
    PyBuffer_Release(&proto);
    return out;
}

static PyMethodDef shim_fast_methods[] = {
    {"digest", (PyCFunction)(void (*)(void))shim_py_digest, METH_FASTCALL, "digest(mech, data) -> bytes"},
    {"hmac", (PyCFunction)(void (*)(void))shim_py_hmac, METH_FASTCALL, "hmac(mech, prepared_state, data) -> bytes"},
    {NULL, NULL, 0, NULL},
};

int shim_digest_publish(void)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_AddModule("_cryptoki_shim_fast"); /* borrowed, in sys.modules */
    int ok = module != NULL && PyModule_AddFunctions(module, shim_fast_methods) == 0;

    if (!ok)
        PyErr_Clear();
    PyGILState_Release(gil);
    return ok;
}

#pragma GCC diagnostic pop
