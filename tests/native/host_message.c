/* Issue 17 item 5: a 3.0 C client of the message-based functions.
 *
 * AES-GCM through C_EncryptMessage gives the GCM specification's test case 2 (key, IV and
 * plaintext of zeros) with the tag in pTag; CKG_GENERATE_COUNTER writes the generated IV
 * (fixed part || counter) back into pIv; a multi-part message (Begin, Next, Next with
 * CKF_END_OF_MESSAGE) decrypts through C_DecryptMessage; a caller-supplied IV used twice is
 * refused; C_SignMessage with HMAC-SHA256 gives RFC 4231 test case 2 and C_VerifyMessage
 * accepts it. Prints "OK"; any failure is a FAIL line.
 * Usage: host_message <library>
 */
#include "host.h"

static void expect_bytes(const CK_BYTE *got, const char *hex, CK_ULONG n, const char *what)
{
    char buf[129];
    CK_ULONG i;

    for (i = 0; i < n && i < 64; i++)
        sprintf(buf + 2 * i, "%02x", got[i]);
    buf[2 * i] = 0;
    if (strcmp(buf, hex) != 0)
        FAIL("%s: %s, expected %s", what, buf, hex);
}

int main(int argc, char **argv)
{
    host_module m;
    CK_FUNCTION_LIST_3_0_PTR f;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE aes, mac;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt_aes = CKK_AES, kt_gen = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE zeros[16] = {0}, jefe[] = "Jefe";
    CK_ATTRIBUTE aes_tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt_aes, sizeof(kt_aes)},
                               {CKA_VALUE, zeros, 16}, {CKA_ENCRYPT, &yes, 1}, {CKA_DECRYPT, &yes, 1},
                               {CKA_TOKEN, &no, 1}};
    CK_ATTRIBUTE mac_tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt_gen, sizeof(kt_gen)},
                               {CKA_VALUE, jefe, 4}, {CKA_SIGN, &yes, 1}, {CKA_VERIFY, &yes, 1},
                               {CKA_TOKEN, &no, 1}};
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0}, hmac = {CKM_SHA256_HMAC, NULL, 0};
    CK_BYTE iv[12] = {0}, tag[16], ct[64], pt[64], msg[32], sig[32];
    CK_GCM_MESSAGE_PARAMS p;
    CK_ULONG n, first;
    const char *data = "what do ya want for nothing?";

    if (argc != 2)
        FAIL("usage: host_message <library>");
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;
    CHECK(f->C_Initialize(NULL));
    host_init_token(f, host_first_slot(f));
    s = host_user_session(f, host_first_slot(f));
    CHECK(f->C_CreateObject(s, aes_tmpl, 6, &aes));
    CHECK(f->C_CreateObject(s, mac_tmpl, 6, &mac));

    /* GCM test case 2, one-shot, caller's IV */
    memset(&p, 0, sizeof(p));
    p.pIv = iv, p.ulIvLen = 12, p.ivGenerator = CKG_NO_GENERATE, p.pTag = tag, p.ulTagBits = 128;
    CHECK(f->C_MessageEncryptInit(s, &gcm, aes));
    n = 0;
    CHECK(f->C_EncryptMessage(s, &p, sizeof(p), NULL, 0, zeros, 16, NULL, &n));
    if (n != 16)
        FAIL("length query: %lu", (unsigned long)n);
    n = sizeof(ct);
    CHECK(f->C_EncryptMessage(s, &p, sizeof(p), NULL, 0, zeros, 16, ct, &n));
    expect_bytes(ct, "0388dace60b6a392f328c2b971b2fe78", n, "GCM test case 2 ciphertext");
    expect_bytes(tag, "ab6e47d42cec13bdf53a67b21257bddf", 16, "GCM test case 2 tag");
    n = sizeof(ct);
    EXPECT_RV(CKR_MECHANISM_PARAM_INVALID, f->C_EncryptMessage(s, &p, sizeof(p), NULL, 0, zeros, 16, ct, &n));

    /* the counter generator: fixed 32 bits, then 0, written back into pIv */
    memset(iv, 0, sizeof(iv));
    iv[0] = 0xCA, iv[1] = 0xFE, iv[2] = 0xBA, iv[3] = 0xBE;
    p.ulIvFixedBits = 32, p.ivGenerator = CKG_GENERATE_COUNTER;
    CHECK(f->C_EncryptMessageBegin(s, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3));
    expect_bytes(iv, "cafebabe0000000000000000", 12, "generated IV");
    memcpy(msg, "a message in two parts, 32 bytes", 32);
    first = sizeof(ct);
    CHECK(f->C_EncryptMessageNext(s, &p, sizeof(p), msg, 10, ct, &first, 0));
    n = sizeof(ct) - first;
    CHECK(f->C_EncryptMessageNext(s, &p, sizeof(p), msg + 10, 22, ct + first, &n, CKF_END_OF_MESSAGE));
    if (first + n != 32)
        FAIL("multi-part ciphertext of %lu bytes", (unsigned long)(first + n));
    CHECK(f->C_MessageEncryptFinal(s));
    EXPECT_RV(CKR_OPERATION_NOT_INITIALIZED, f->C_MessageEncryptFinal(s));

    p.ivGenerator = CKG_NO_GENERATE;  /* decrypt: the IV and tag as the encryption left them */
    CHECK(f->C_MessageDecryptInit(s, &gcm, aes));
    n = sizeof(pt);
    CHECK(f->C_DecryptMessage(s, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3, ct, 32, pt, &n));
    if (n != 32 || memcmp(pt, msg, 32) != 0)
        FAIL("multi-part message did not decrypt");
    tag[0] ^= 1;
    n = sizeof(pt);
    EXPECT_RV(CKR_ENCRYPTED_DATA_INVALID, f->C_DecryptMessage(s, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3, ct, 32, pt, &n));
    CHECK(f->C_MessageDecryptFinal(s));

    /* HMAC-SHA256, RFC 4231 test case 2 */
    CHECK(f->C_MessageSignInit(s, &hmac, mac));
    n = sizeof(sig);
    CHECK(f->C_SignMessage(s, NULL, 0, (CK_BYTE_PTR)data, strlen(data), sig, &n));
    expect_bytes(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", n, "HMAC");
    CHECK(f->C_MessageSignFinal(s));
    CHECK(f->C_MessageVerifyInit(s, &hmac, mac));
    CHECK(f->C_VerifyMessageBegin(s, NULL, 0));
    CHECK(f->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR)data, 10, NULL, 0));
    CHECK(f->C_VerifyMessageNext(s, NULL, 0, (CK_BYTE_PTR)data + 10, strlen(data) - 10, sig, 32));
    CHECK(f->C_MessageVerifyFinal(s));

    CHECK(f->C_Finalize(NULL));
    printf("OK\n");
    return 0;
}
