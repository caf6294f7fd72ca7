/* Issue 25 item 1: the module's crypto does not run on the host's OpenSSL configuration.
 *
 * The driver starts this host with OPENSSL_CONF naming a file that breaks every fetch of a
 * library context that reads it (default_properties naming a provider that does not exist,
 * as `?provider=pkcs11` would route them into pkcs11-provider). A C host that never uses
 * OpenSSL itself must still get the whole everyday path from the module: a token, a login
 * (Argon2id in the wheel's OpenSSL), an EC key pair, ECDSA sign (native/fastsign.c on the
 * system libcrypto) and verify, a SHA-256 digest (known answer), random bytes.
 * Prints "step 0x<rv>" lines and "OK"; any failure is a FAIL line.
 * Usage: host_hermetic <library>
 */
#include "host.h"

int main(int argc, char **argv)
{
    host_module m;
    CK_FUNCTION_LIST_3_0_PTR f;
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE pub, priv;
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    /* DER OID of P-256 (prime256v1) */
    CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub_tmpl[] = {{CKA_EC_PARAMS, p256, sizeof(p256)}, {CKA_VERIFY, &yes, sizeof(yes)}};
    CK_ATTRIBUTE priv_tmpl[] = {{CKA_SIGN, &yes, sizeof(yes)}, {CKA_PRIVATE, &yes, sizeof(yes)}};
    CK_BYTE digest[32], sig[64], rnd[16];
    CK_ULONG sig_len = sizeof(sig);

    if (argc != 2)
        return 2;
    memset(digest, 0x5a, sizeof(digest));
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;
    CHECK(f->C_Initialize(NULL));
    slot = host_first_slot(f);
    host_init_token(f, slot);
    s = host_user_session(f, slot);
    printf("login 0x0\n");
    CHECK(f->C_GenerateKeyPair(s, &gen, pub_tmpl, 2, priv_tmpl, 2, &pub, &priv));
    CHECK(f->C_SignInit(s, &ecdsa, priv));
    CHECK(f->C_Sign(s, digest, sizeof(digest), sig, &sig_len));
    if (sig_len != 64)
        FAIL("signature length %lu", (unsigned long)sig_len);
    printf("sign 0x0\n");
    CHECK(f->C_VerifyInit(s, &ecdsa, pub));
    CHECK(f->C_Verify(s, digest, sizeof(digest), sig, sig_len));
    sig[10] ^= 1;
    CHECK(f->C_VerifyInit(s, &ecdsa, pub));
    EXPECT_RV(CKR_SIGNATURE_INVALID, f->C_Verify(s, digest, sizeof(digest), sig, sig_len));
    printf("verify 0x0\n");
    {
        static const CK_BYTE abc_sha256[32] = {
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
            0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
        CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
        CK_BYTE md[32];
        CK_ULONG md_len = sizeof(md);
        CHECK(f->C_DigestInit(s, &sha256));
        CHECK(f->C_Digest(s, (CK_BYTE_PTR)"abc", 3, md, &md_len));
        if (md_len != 32 || memcmp(md, abc_sha256, 32) != 0)
            FAIL("SHA-256(\"abc\") is wrong");
        printf("digest 0x0\n");
    }
    CHECK(f->C_GenerateRandom(s, rnd, sizeof(rnd)));
    CHECK(f->C_Logout(s));
    CHECK(f->C_CloseSession(s));
    CHECK(f->C_Finalize(NULL));
    printf("OK\n");
    return 0;
}
