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
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "fastsign.h"

typedef struct shim_sign_key {
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *proto; /* sign-initialised, read-only after creation */
} shim_sign_key;

/* Largest DER ECDSA-Sig-Value we accept (P-521: 2 * (66 + 1 + 3) + 3 = 143). */
#define SHIM_ECDSA_DER_MAX 160

static unsigned long shim_fastsign_signed;

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
    OPENSSL_free(k);
}

void *shim_pkey_from_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    PKCS8_PRIV_KEY_INFO *p8;
    shim_sign_key *k = NULL;
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();

    if (der == NULL || len == 0 || len > 0x7fffffff || libctx == NULL)
        return NULL;
    k = OPENSSL_zalloc(sizeof(*k));
    if (k == NULL)
        goto fail;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    if (p8 == NULL)
        goto fail;
    k->pkey = EVP_PKCS82PKEY_ex(p8, libctx, NULL);
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets it held */
    if (k->pkey == NULL || EVP_PKEY_get_base_id(k->pkey) != EVP_PKEY_EC)
        goto fail;
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
    return ok;
}
