/* fastsign.c - ECDSA signing on the system libcrypto, without the GIL (issue #9).
 *
 * Included by the cffi source next to shim.c (see build_ffi.py); the functions are declared
 * to cffi from fastsign.h, so Python calls them through the embedded module's `lib` and cffi
 * releases the GIL for the duration of the call.
 *
 * A key handle holds the EVP_PKEY and a prototype EVP_PKEY_CTX that is sign-initialised once;
 * each signature works on a private duplicate of it (EVP_PKEY_CTX_dup), which skips the
 * algorithm fetch of a fresh context. The prototype is only ever read after creation, so
 * any number of threads may sign with one handle. Nothing here takes a lock of its own or
 * keeps state across calls except the handle, so a fork between calls is harmless (and the
 * fork gate in shim.c keeps fork out while a thread is inside a C_* entry).
 *
 * Failures leave nothing on this thread's OpenSSL error queue: other libcrypto users in the
 * host process read that queue and must not see our leftovers.
 *
 * Hermetic (issue 25): the system libcrypto is the host's too, and its default library
 * context follows the host's configuration (OPENSSL_CONF, default_properties such as
 * `?provider=pkcs11`, activated providers). A fetch there can be routed to pkcs11-provider
 * and back into this module. So every call that fetches takes our private OSSL_LIB_CTX,
 * made once with only the built-in default provider loaded explicitly and no configuration
 * read (OSSL_LIB_CTX_new never loads one); calls that only parse ASN.1 (d2i_*) fetch nothing.
 * What this cannot change: libcrypto 3.0 initialises itself on its first use in the process
 * (here the OID lookup of d2i_PKCS8_PRIV_KEY_INFO) and then loads the host's configuration
 * into the host's default context, as the host's own first use would. Providers started
 * that way serve the host, never our fetches; one that calls back into this module from
 * there (pkcs11-provider, early-loaded) is refused by the re-entry guard (shim.c).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "fastsign.h"

typedef struct shim_sign_key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *proto; /* sign- or verify-initialised, read-only after creation */
    EVP_MD *md;          /* the RSA keys' digest (their DigestInfo), else NULL */
} shim_sign_key;

/* Largest DER ECDSA-Sig-Value we accept (P-521: 2 * (66 + 1 + 3) + 3 = 143). */
#define SHIM_ECDSA_DER_MAX 160

static unsigned long shim_fastsign_signed;
static unsigned long shim_ec_generated;

/* The private library context (NULL if it could not be made: then no key is accepted and
 * pyca signs). Made once; never freed (the library is never unloaded: -z nodelete). */
static OSSL_LIB_CTX *shim_libctx;
static pthread_once_t shim_libctx_once = PTHREAD_ONCE_INIT;

static void shim_libctx_make(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx != NULL && OSSL_PROVIDER_load(ctx, "default") == NULL) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    ERR_clear_error();
    shim_libctx = ctx;
}

/* The context every fetch of this file uses (see the header comment). */
static OSSL_LIB_CTX *shim_fastsign_libctx(void)
{
    pthread_once(&shim_libctx_once, shim_libctx_make);
    return shim_libctx;
}

unsigned long shim_fastsign_count(void)
{
    return __atomic_load_n(&shim_fastsign_signed, __ATOMIC_RELAXED);
}

void shim_pkey_free(void *key)
{
    shim_sign_key *k = key;
    if (k == NULL)
        return;
    EVP_PKEY_CTX_free(k->proto);
    EVP_PKEY_free(k->pkey); /* libcrypto clears private components when freeing them */
    EVP_MD_free(k->md);
    OPENSSL_free(k);
}

/* A key handle holding the private key of PKCS#8 DER `der` if it is of type `base_id`, on our
 * library context; NULL (nothing on the error queue) otherwise. The one PKCS#8 parse of the
 * signing helpers. */
static shim_sign_key *shim_key_from_pkcs8(const unsigned char *der, size_t len, int base_id, OSSL_LIB_CTX *libctx)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8;
    shim_sign_key *k;

    if (der == NULL || len == 0 || len > 0x7fffffff || libctx == NULL)
        return NULL;
    k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        return NULL;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 != NULL) {
        k->pkey = EVP_PKCS82PKEY_ex(p8, libctx, NULL);
        PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets it held */
    }
    if (k->pkey == NULL || EVP_PKEY_get_base_id(k->pkey) != base_id) {
        shim_pkey_free(k);
        ERR_clear_error();
        return NULL;
    }
    return k;
}

void *shim_pkey_from_der(const unsigned char *der, size_t len)
{
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();
    shim_sign_key *k = shim_key_from_pkcs8(der, len, EVP_PKEY_EC, libctx);

    if (k == NULL)
        return NULL;
    k->proto = EVP_PKEY_CTX_new_from_pkey(libctx, k->pkey, NULL);
    if (k->proto == NULL || EVP_PKEY_sign_init(k->proto) <= 0)
        goto fail;
    return k;

fail:
    shim_pkey_free(k);
    ERR_clear_error();
    return NULL;
}

int shim_ecdsa_sign(void *key, const unsigned char *dgst, size_t dlen, unsigned char *out, size_t n)
{
    shim_sign_key *k = key;
    unsigned char der[SHIM_ECDSA_DER_MAX];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    const BIGNUM *r, *s;
    EVP_PKEY_CTX *ctx = NULL;
    ECDSA_SIG *sig = NULL;
    int ok = 0;

    if (k == NULL || dgst == NULL || dlen == 0 || out == NULL || n == 0 || n > 0x7fffffff)
        goto done;
    shim_gate_yield(); /* the GIL entry gate (shim.c): another thread's Python part meanwhile */
    ctx = EVP_PKEY_CTX_dup(k->proto);
    if (ctx == NULL || EVP_PKEY_sign(ctx, der, &der_len, dgst, dlen) <= 0)
        goto done;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL)
        goto done;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, out, (int)n) < 0 || BN_bn2binpad(s, out + n, (int)n) < 0)
        goto done;
    ok = 1;
    __atomic_add_fetch(&shim_fastsign_signed, 1, __ATOMIC_RELAXED);

done:
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        if (out != NULL && n != 0 && n <= 0x7fffffff)
            memset(out, 0, 2 * n);
        ERR_clear_error();
    }
    shim_gate_reclaim(); /* no-op unless yielded above */
    return ok;
}

unsigned long shim_ec_generate_count(void)
{
    return __atomic_load_n(&shim_ec_generated, __ATOMIC_RELAXED);
}

/* Key pair generation (issue #22): pyca's ec.generate_private_key keeps the GIL for the
 * whole scalar multiplication, so a second client thread waits for it; here it runs with
 * the GIL released, on the private library context (its DRBG, its default provider; nothing
 * of the host's configuration). Each group's parameters are made once (a template key:
 * making the group from its name each time costs as much as the generation) and only read
 * afterwards, so threads share them. Nothing of a new key outlives the call but what is
 * written to the caller's buffers: the EVP_PKEY and the BIGNUM are cleared on free. */
static const char *const shim_ec_groups[] = {"P-256", "P-384", "P-521"};
#define SHIM_EC_GROUPS (sizeof(shim_ec_groups) / sizeof(shim_ec_groups[0]))
static EVP_PKEY *shim_ec_templates[SHIM_EC_GROUPS];
static pthread_mutex_t shim_ec_templates_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *shim_ec_template(OSSL_LIB_CTX *libctx, const char *group)
{
    EVP_PKEY *tmpl;
    EVP_PKEY_CTX *ctx;
    OSSL_PARAM params[2];
    size_t i;

    for (i = 0; i < SHIM_EC_GROUPS && strcmp(group, shim_ec_groups[i]) != 0; i++)
        ;
    if (i == SHIM_EC_GROUPS)
        return NULL;
    tmpl = __atomic_load_n(&shim_ec_templates[i], __ATOMIC_ACQUIRE);
    if (tmpl != NULL)
        return tmpl;
    pthread_mutex_lock(&shim_ec_templates_lock);
    tmpl = shim_ec_templates[i];
    if (tmpl == NULL) {
        ctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)shim_ec_groups[i], 0);
        params[1] = OSSL_PARAM_construct_end();
        if (ctx == NULL || EVP_PKEY_paramgen_init(ctx) <= 0 || EVP_PKEY_CTX_set_params(ctx, params) <= 0
            || EVP_PKEY_paramgen(ctx, &tmpl) <= 0)
            tmpl = NULL;
        EVP_PKEY_CTX_free(ctx);
        __atomic_store_n(&shim_ec_templates[i], tmpl, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&shim_ec_templates_lock);
    return tmpl;
}

int shim_ec_generate(const char *group, unsigned char *priv, size_t n, unsigned char *point, size_t point_len)
{
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();
    EVP_PKEY *tmpl;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;
    size_t len = 0;
    int ok = 0;

    if (libctx == NULL || group == NULL || priv == NULL || point == NULL || n == 0 || n > 0x7fffffff
        || point_len != 2 * n + 1)
        goto done;
    shim_gate_yield(); /* the GIL entry gate (shim.c): another thread's Python part meanwhile */
    tmpl = shim_ec_template(libctx, group);
    if (tmpl == NULL)
        goto done;
    ctx = EVP_PKEY_CTX_new_from_pkey(libctx, tmpl, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_generate(ctx, &pkey) <= 0)
        goto done;
    if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) || BN_bn2binpad(d, priv, (int)n) < 0)
        goto done;
    /* the encoded public key: uncompressed (the provider's default point format) */
    if (!EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, point_len, &len)
        || len != point_len || point[0] != 0x04)
        goto done;
    ok = 1;
    __atomic_add_fetch(&shim_ec_generated, 1, __ATOMIC_RELAXED);

done:
    BN_clear_free(d);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        if (priv != NULL && n != 0 && n <= 0x7fffffff)
            OPENSSL_cleanse(priv, n);
        ERR_clear_error();
    }
    shim_gate_reclaim(); /* no-op unless yielded above */
    return ok;
}

/* ---- RSA PKCS#1 v1.5 signing and RSA / ECDSA verification (issue 22: the GIL entry gate) ----
 *
 * pyca releases the GIL inside these too, but after the call it re-takes the GIL by parking
 * on it when another thread has it, and the gate (shim.c) cannot give it a turn there. Here
 * the gate is handed over for the crypto and taken back (bounded) before cffi re-takes the
 * GIL, so nobody parks. Same conventions as above: private library context, a prototype
 * context duplicated per call, nothing left on the error queue. Results are those of pyca's
 * calls (PKCS#1 v1.5 is deterministic; tests compare bytes and verify with pyca). */

static unsigned long shim_rsa_signed, shim_verified;

/* The digests an RSA handle may name (pyca's names; others stay on pyca). */
static const char *shim_rsa_md_name(const char *name)
{
    static const char *const names[][2] = {
        {"sha1", "SHA1"}, {"sha224", "SHA2-224"}, {"sha256", "SHA2-256"}, {"sha384", "SHA2-384"}, {"sha512", "SHA2-512"},
    };
    size_t i;
    for (i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}

/* The prototype: padding PKCS#1 v1.5 and the digest for RSA, nothing more for EC. */
static int shim_proto_setup(shim_sign_key *k, OSSL_LIB_CTX *libctx, const char *md_name, int sign)
{
    int base = EVP_PKEY_get_base_id(k->pkey);
    const char *md = shim_rsa_md_name(md_name);

    k->proto = EVP_PKEY_CTX_new_from_pkey(libctx, k->pkey, NULL);
    if (k->proto == NULL || (sign ? EVP_PKEY_sign_init(k->proto) : EVP_PKEY_verify_init(k->proto)) <= 0)
        return 0;
    if (base == EVP_PKEY_EC)
        return md_name == NULL;
    if (base != EVP_PKEY_RSA || md == NULL)
        return 0;
    k->md = EVP_MD_fetch(libctx, md, NULL);
    return k->md != NULL && EVP_PKEY_CTX_set_rsa_padding(k->proto, RSA_PKCS1_PADDING) > 0
           && EVP_PKEY_CTX_set_signature_md(k->proto, k->md) > 0;
}

void *shim_rsa_key_from_der(const unsigned char *der, size_t len, const char *md_name)
{
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();
    shim_sign_key *k = shim_key_from_pkcs8(der, len, EVP_PKEY_RSA, libctx);

    if (k == NULL)
        return NULL;
    if (!shim_proto_setup(k, libctx, md_name, 1))
        goto fail;
    return k;

fail:
    shim_pkey_free(k);
    ERR_clear_error();
    return NULL;
}

void *shim_verify_key_from_spki(const unsigned char *der, size_t len, const char *md_name)
{
    const unsigned char *p = der;
    shim_sign_key *k = NULL;
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();

    if (der == NULL || len == 0 || len > 0x7fffffff || libctx == NULL)
        return NULL;
    k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        goto fail;
    k->pkey = d2i_PUBKEY_ex(NULL, &p, (long)len, libctx, NULL);
    if (k->pkey == NULL || p != der + len || !shim_proto_setup(k, libctx, md_name, 0))
        goto fail;
    return k;

fail:
    shim_pkey_free(k);
    ERR_clear_error();
    return NULL;
}

int shim_rsa_sign(void *key, const unsigned char *dgst, size_t dlen, unsigned char *out, size_t n)
{
    shim_sign_key *k = key;
    EVP_PKEY_CTX *ctx = NULL;
    size_t len = n;
    int ok = 0;

    if (k == NULL || k->md == NULL || dgst == NULL || out == NULL || n == 0 || n > 0x7fffffff
        || dlen != (size_t)EVP_MD_get_size(k->md) || (size_t)EVP_PKEY_get_size(k->pkey) != n)
        return 0;
    shim_gate_yield(); /* the GIL entry gate (shim.c): another thread's Python part meanwhile */
    ctx = EVP_PKEY_CTX_dup(k->proto);
    ok = ctx != NULL && EVP_PKEY_sign(ctx, out, &len, dgst, dlen) > 0 && len == n;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        __atomic_add_fetch(&shim_rsa_signed, 1, __ATOMIC_RELAXED);
    } else {
        OPENSSL_cleanse(out, n);
        ERR_clear_error();
    }
    shim_gate_reclaim();
    return ok;
}

int shim_pkey_verify(void *key, const unsigned char *dgst, size_t dlen, const unsigned char *sig, size_t siglen)
{
    shim_sign_key *k = key;
    EVP_PKEY_CTX *ctx;
    int rv;

    if (k == NULL || dgst == NULL || dlen == 0 || dlen > 0x7fffffff || sig == NULL || siglen == 0
        || siglen > 0x7fffffff || (k->md != NULL && dlen != (size_t)EVP_MD_get_size(k->md)))
        return -1;
    shim_gate_yield(); /* the GIL entry gate (shim.c): another thread's Python part meanwhile */
    ctx = EVP_PKEY_CTX_dup(k->proto);
    rv = ctx == NULL ? -1 : EVP_PKEY_verify(ctx, sig, siglen, dgst, dlen);
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error(); /* a bad signature leaves a reason on the queue */
    if (rv >= 0)
        __atomic_add_fetch(&shim_verified, 1, __ATOMIC_RELAXED);
    shim_gate_reclaim();
    return rv == 1 ? 1 : rv == 0 ? 0 : -1;
}

unsigned long shim_rsa_sign_count(void)
{
    return __atomic_load_n(&shim_rsa_signed, __ATOMIC_RELAXED);
}

unsigned long shim_verify_count(void)
{
    return __atomic_load_n(&shim_verified, __ATOMIC_RELAXED);
}


/* ---- Ed25519 (pure, RFC 8032) signing and verification, the same gate hand-over ---- */

static unsigned long shim_ed25519_done;

void *shim_ed25519_key(const unsigned char *raw, size_t len, int private_key)
{
    shim_sign_key *k;
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();

    if (raw == NULL || len != 32 || libctx == NULL)
        return NULL;
    k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        return NULL;
    k->pkey = private_key ? EVP_PKEY_new_raw_private_key_ex(libctx, "ED25519", NULL, raw, len)
                          : EVP_PKEY_new_raw_public_key_ex(libctx, "ED25519", NULL, raw, len);
    if (k->pkey == NULL) {
        shim_pkey_free(k);
        ERR_clear_error();
        return NULL;
    }
    return k;
}

/* sig[64]: written when signing (`sign` 1), read when verifying. 1 success / valid, 0 not. */
static int shim_ed25519_run(shim_sign_key *k, const unsigned char *msg, size_t len, unsigned char *sig, int sign)
{
    EVP_MD_CTX *mctx;
    size_t siglen = 64;
    int ok;

    shim_gate_yield(); /* the GIL entry gate (shim.c): another thread's Python part meanwhile */
    mctx = EVP_MD_CTX_new();
    ok = mctx != NULL
         && (sign ? EVP_DigestSignInit_ex(mctx, NULL, NULL, shim_fastsign_libctx(), NULL, k->pkey, NULL)
                  : EVP_DigestVerifyInit_ex(mctx, NULL, NULL, shim_fastsign_libctx(), NULL, k->pkey, NULL)) > 0
         && (sign ? EVP_DigestSign(mctx, sig, &siglen, msg, len) > 0 && siglen == 64
                  : EVP_DigestVerify(mctx, sig, 64, msg, len) == 1);
    EVP_MD_CTX_free(mctx);
    ERR_clear_error(); /* a bad signature leaves a reason on the queue */
    if (ok)
        __atomic_add_fetch(&shim_ed25519_done, 1, __ATOMIC_RELAXED);
    else if (sign)
        OPENSSL_cleanse(sig, 64);
    shim_gate_reclaim();
    return ok;
}

int shim_ed25519_sign(void *key, const unsigned char *msg, size_t len, unsigned char *sig)
{
    shim_sign_key *k = key;
    if (k == NULL || sig == NULL || (msg == NULL && len != 0) || len > 0x7fffffff)
        return 0;
    return shim_ed25519_run(k, len ? msg : (const unsigned char *)"", len, sig, 1);
}

int shim_ed25519_verify(void *key, const unsigned char *msg, size_t len, const unsigned char *sig)
{
    shim_sign_key *k = key;
    if (k == NULL || sig == NULL || (msg == NULL && len != 0) || len > 0x7fffffff)
        return 0;
    return shim_ed25519_run(k, len ? msg : (const unsigned char *)"", len, (unsigned char *)sig, 0);
}

unsigned long shim_ed25519_count(void)
{
    return __atomic_load_n(&shim_ed25519_done, __ATOMIC_RELAXED);
}
