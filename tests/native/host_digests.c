/* Issue 25 item 1: digests, HMAC and hash-then-sign never run on the host's OpenSSL.
 *
 * The driver starts this host with OPENSSL_CONF naming pkcs11-provider, configured to load
 * this very module, with `default_properties = ?provider=pkcs11` (the provider's documented
 * way to keep all crypto on the token). Any digest the module computed through the host's
 * libcrypto default context (Python's hashlib) would be routed to pkcs11-provider and back
 * into the module. Known-answer digests (FIPS 180 "abc"), HMAC (RFC 4231 case 2), a key's
 * CKA_CHECK_VALUE and a multi-part CKM_ECDSA_SHA256 signature must all come out right.
 * The host first starts its own libcrypto with that configuration, as the `openssl` command
 * does (a host that never starts it would let the module's first import start it, under
 * the module's neutral configuration, which hides the fault).
 * Prints "OK"; any failure is a FAIL line.
 * Usage: host_digests <library>
 */
#include <stdint.h>

#include "host.h"

/* OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL), found at run time: the host
 * programs build without OpenSSL's headers or link flags. */
static void host_start_openssl(void)
{
    void *crypto = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_GLOBAL);
    int (*init)(uint64_t, const void *);

    if (crypto == NULL)
        FAIL("dlopen libcrypto.so.3: %s", dlerror());
    *(void **)&init = dlsym(crypto, "OPENSSL_init_crypto");
    if (init == NULL || init(0x40L /* OPENSSL_INIT_LOAD_CONFIG */, NULL) != 1)
        FAIL("OPENSSL_init_crypto failed");
}

static void expect_digest(CK_FUNCTION_LIST_3_0_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type,
                          const char *hex)
{
    CK_MECHANISM mech = {type, NULL, 0};
    CK_BYTE out[64];
    CK_ULONG len = sizeof(out), i;
    char got[129];

    CHECK(f->C_DigestInit(s, &mech));
    CHECK(f->C_DigestUpdate(s, (CK_BYTE_PTR) "a", 1));
    CHECK(f->C_DigestUpdate(s, (CK_BYTE_PTR) "bc", 2));
    CHECK(f->C_DigestFinal(s, out, &len));
    for (i = 0; i < len; i++)
        sprintf(got + 2 * i, "%02x", out[i]);
    if (strcmp(got, hex) != 0)
        FAIL("digest 0x%lx of abc: %s", (unsigned long)type, got);
    len = sizeof(out);
    CHECK(f->C_DigestInit(s, &mech));
    CHECK(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len));
    for (i = 0; i < len; i++)
        sprintf(got + 2 * i, "%02x", out[i]);
    if (strcmp(got, hex) != 0)
        FAIL("one-shot digest 0x%lx of abc: %s", (unsigned long)type, got);
}

int main(int argc, char **argv)
{
    host_module m;
    CK_FUNCTION_LIST_3_0_PTR f;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE secret, pub, priv;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE key[] = "Jefe", check[3];
    CK_ATTRIBUTE secret_tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
                                  {CKA_VALUE, key, 4}, {CKA_SIGN, &yes, 1}, {CKA_TOKEN, &no, 1}};
    CK_ATTRIBUTE check_attr = {CKA_CHECK_VALUE, check, sizeof(check)};
    CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_ATTRIBUTE pub_tmpl[] = {{CKA_EC_PARAMS, p256, sizeof(p256)}, {CKA_VERIFY, &yes, 1}};
    CK_ATTRIBUTE priv_tmpl[] = {{CKA_SIGN, &yes, 1}};
    /* RFC 4231 test case 2 */
    const char *data = "what do ya want for nothing?";
    static const CK_BYTE expected_mac[] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
        0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    CK_BYTE mac[32], sig[64];
    CK_ULONG mac_len = sizeof(mac), sig_len = sizeof(sig);

    if (argc != 2)
        return 2;
    host_start_openssl();
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;
    CHECK(f->C_Initialize(NULL));
    slot = host_first_slot(f);
    host_init_token(f, slot);
    s = host_user_session(f, slot);
    expect_digest(f, s, CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d");
    expect_digest(f, s, CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_digest(f, s, CKM_SHA512,
                  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    CHECK(f->C_CreateObject(s, secret_tmpl, 5, &secret));
    CHECK(f->C_GetAttributeValue(s, secret, &check_attr, 1));
    CHECK(f->C_SignInit(s, &hmac, secret));
    CHECK(f->C_Sign(s, (CK_BYTE_PTR)data, strlen(data), mac, &mac_len));
    if (mac_len != 32 || memcmp(mac, expected_mac, 32) != 0)
        FAIL("HMAC-SHA256 differs from RFC 4231 case 2");
    CHECK(f->C_GenerateKeyPair(s, &gen, pub_tmpl, 2, priv_tmpl, 1, &pub, &priv));
    CHECK(f->C_SignInit(s, &ecdsa, priv));
    CHECK(f->C_SignUpdate(s, (CK_BYTE_PTR)data, 10));
    CHECK(f->C_SignUpdate(s, (CK_BYTE_PTR)data + 10, strlen(data) - 10));
    CHECK(f->C_SignFinal(s, sig, &sig_len));
    CHECK(f->C_VerifyInit(s, &ecdsa, pub));
    CHECK(f->C_Verify(s, (CK_BYTE_PTR)data, strlen(data), sig, sig_len));
    CHECK(f->C_Logout(s));
    CHECK(f->C_CloseSession(s));
    CHECK(f->C_Finalize(NULL));
    printf("OK\n");
    return 0;
}
