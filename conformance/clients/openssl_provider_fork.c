/* A pre-forking server as OpenSSL 3 applications are written (nginx, Apache httpd with
 * mod_ssl): the parent loads the providers from OPENSSL_CONF, opens the token key by its
 * pkcs11: URI and signs once; then it forks CHILDREN workers, and each child signs the
 * message with the key object inherited from the parent (pkcs11-provider notices the fork
 * and re-initializes the module in the child; PKCS#11 base spec §5.4: a child calls
 * C_Initialize itself).
 *
 * Usage: openssl_provider_fork URI MESSAGE_FILE OUT_PREFIX CHILDREN
 * Writes OUT_PREFIX-parent.sig and OUT_PREFIX-<i>.sig (DER ECDSA / PKCS#1 v1.5, SHA-256).
 * Exit 0 when the parent and every child signed; the caller verifies the signatures. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static EVP_PKEY *load_key(const char *uri)
{
    EVP_PKEY *key = NULL;
    OSSL_STORE_CTX *store = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    if (!store)
        return NULL;
    while (!key && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return key;
}

/* Sign msg with key (SHA-256) and write the signature to path; 0 on success. */
static int sign_to(EVP_PKEY *key, const unsigned char *msg, size_t len, const char *path)
{
    unsigned char sig[1024];
    size_t siglen = sizeof sig;
    int ok = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) == 1
        && EVP_DigestSign(md, sig, &siglen, msg, len) == 1) {
        FILE *f = fopen(path, "wb");
        ok = f && fwrite(sig, 1, siglen, f) == siglen;
        if (f)
            ok = (fclose(f) == 0) && ok;
    }
    EVP_MD_CTX_free(md);
    if (!ok)
        ERR_print_errors_fp(stderr);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    unsigned char msg[4096];
    char path[4096];
    size_t len;
    int children, failed = 0;
    FILE *f;
    EVP_PKEY *key;

    if (argc != 5 || (children = atoi(argv[4])) < 1 || children > 16) {
        fprintf(stderr, "usage: %s URI MESSAGE_FILE OUT_PREFIX CHILDREN(1-16)\n", argv[0]);
        return 2;
    }
    f = fopen(argv[2], "rb");
    if (!f)
        return 2;
    len = fread(msg, 1, sizeof msg, f);
    fclose(f);
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 || !(key = load_key(argv[1]))) {
        fprintf(stderr, "parent: cannot load %s\n", argv[1]);
        ERR_print_errors_fp(stderr);
        return 1;
    }
    snprintf(path, sizeof path, "%s-parent.sig", argv[3]);
    if (sign_to(key, msg, len, path) != 0) {
        fprintf(stderr, "parent: sign failed\n");
        return 1;
    }
    fflush(NULL);
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            snprintf(path, sizeof path, "%s-%d.sig", argv[3], i);
            exit(sign_to(key, msg, len, path)); /* atexit: OpenSSL unloads the provider, C_Finalize */
        }
    }
    for (int i = 0; i < children; i++) {
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    if (failed)
        fprintf(stderr, "%d of %d children failed to sign\n", failed, children);
    EVP_PKEY_free(key);
    return failed ? 1 : 0;
}
