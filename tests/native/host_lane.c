/* The native lane (issue 22) in a C host: the library started Python itself, so the fork
 * gate and the GIL entry gate are live, and the lane's calls run before both.
 *
 * Known answers, each repeated so the second and later C_*Init of a session are the lane's:
 * SHA-256("abc") (FIPS 180-4), HMAC-SHA-256 RFC 4231 case 2 (sign and verify, and a wrong
 * MAC refused), AES-128-GCM of the NIST GCM spec's test cases 1 and 2 (zero key and IV),
 * AES-128-CBC-PAD of 0 and 16 zero bytes under the zero key and IV (the first block of the
 * latter is the well-known AES-128 zero vector 66e94bd4...), and C_GetSessionInfo.
 * Then 2 threads, a session each, on the same session keys; then a fork while the parent
 * has a lane digest active: the child answers CKR_CRYPTOKI_NOT_INITIALIZED, works after its
 * own C_Initialize, and the parent's operation completes.
 * Prints "OK"; any failure is a FAIL line. Usage: host_lane <library> <rounds>
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"

static CK_FUNCTION_LIST_3_0_PTR f;
static CK_SLOT_ID slot;
static CK_OBJECT_HANDLE hmac_key, aes_key;
static int rounds;

static const CK_BYTE SHA256_ABC[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
static const CK_BYTE HMAC_RFC4231_2[32] = {
    0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
    0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
static const CK_BYTE GCM_TAG_1[16] = {0x58, 0xe2, 0xfc, 0xce, 0xfa, 0x7e, 0x30, 0x61,
                                      0x36, 0x7f, 0x1d, 0x57, 0xa4, 0xe7, 0x45, 0x5a};
static const CK_BYTE GCM_OUT_2[32] = {
    0x03, 0x88, 0xda, 0xce, 0x60, 0xb6, 0xa3, 0x92, 0xf3, 0x28, 0xc2, 0xb9, 0x71, 0xb2, 0xfe, 0x78,
    0xab, 0x6e, 0x47, 0xd4, 0x2c, 0xec, 0x13, 0xbd, 0xf5, 0x3a, 0x67, 0xb2, 0x12, 0x57, 0xbd, 0xdf};

static const CK_BYTE CBC_PAD_16[32] = {
    0x66, 0xe9, 0x4b, 0xd4, 0xef, 0x8a, 0x2c, 0x3b, 0x88, 0x4c, 0xfa, 0x59, 0xca, 0x34, 0x2b, 0x2e,
    0x94, 0x34, 0xde, 0xc2, 0xd0, 0x0f, 0xda, 0xc7, 0x65, 0xf0, 0x0c, 0x0c, 0x11, 0x62, 0x8c, 0xd1};
static const CK_BYTE CBC_PAD_0[16] = {0x01, 0x43, 0xdb, 0x63, 0xee, 0x66, 0xb0, 0xcd,
                                      0xff, 0x9f, 0x69, 0x91, 0x76, 0x80, 0x15, 0x1e};

static void digest_abc(CK_SESSION_HANDLE s)
{
    CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
    CK_BYTE out[64];
    CK_ULONG len = sizeof(out);
    CHECK(f->C_DigestInit(s, &mech));
    CHECK(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len));
    if (len != 32 || memcmp(out, SHA256_ABC, 32) != 0)
        FAIL("SHA-256(abc) wrong");
}

static void hmac_case2(CK_SESSION_HANDLE s)
{
    static const char data[] = "what do ya want for nothing?";
    CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
    CK_BYTE out[64], bad[32];
    CK_ULONG len = sizeof(out);
    CHECK(f->C_SignInit(s, &mech, hmac_key));
    CHECK(f->C_Sign(s, (CK_BYTE_PTR)data, sizeof(data) - 1, out, &len));
    if (len != 32 || memcmp(out, HMAC_RFC4231_2, 32) != 0)
        FAIL("HMAC-SHA-256 RFC 4231 case 2 wrong");
    CHECK(f->C_VerifyInit(s, &mech, hmac_key));
    CHECK(f->C_Verify(s, (CK_BYTE_PTR)data, sizeof(data) - 1, out, 32));
    memcpy(bad, out, 32);
    bad[31] ^= 1;
    CHECK(f->C_VerifyInit(s, &mech, hmac_key));
    EXPECT_RV(CKR_SIGNATURE_INVALID, f->C_Verify(s, (CK_BYTE_PTR)data, sizeof(data) - 1, bad, 32));
}

static void gcm_cases(CK_SESSION_HANDLE s)
{
    CK_BYTE iv[12] = {0}, zeros[16] = {0}, out[64];
    CK_GCM_PARAMS gcm = {iv, sizeof(iv), 96, NULL, 0, 128};
    CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
    CK_ULONG len = sizeof(out);
    CHECK(f->C_EncryptInit(s, &mech, aes_key));
    CHECK(f->C_Encrypt(s, zeros, 0, out, &len));
    if (len != 16 || memcmp(out, GCM_TAG_1, 16) != 0)
        FAIL("AES-GCM test case 1 wrong");
    len = sizeof(out);
    CHECK(f->C_EncryptInit(s, &mech, aes_key));
    CHECK(f->C_Encrypt(s, zeros, 16, out, &len));
    if (len != 32 || memcmp(out, GCM_OUT_2, 32) != 0)
        FAIL("AES-GCM test case 2 wrong");
}

static void cbc_pad_cases(CK_SESSION_HANDLE s)
{
    CK_BYTE iv[16] = {0}, zeros[16] = {0}, out[64];
    CK_MECHANISM mech = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
    CK_ULONG len = sizeof(out);
    CHECK(f->C_EncryptInit(s, &mech, aes_key));
    CHECK(f->C_Encrypt(s, zeros, 0, out, &len));
    if (len != 16 || memcmp(out, CBC_PAD_0, 16) != 0)
        FAIL("AES-CBC-PAD of nothing wrong");
    len = sizeof(out);
    CHECK(f->C_EncryptInit(s, &mech, aes_key));
    CHECK(f->C_Encrypt(s, zeros, 16, out, &len));
    if (len != 32 || memcmp(out, CBC_PAD_16, 32) != 0)
        FAIL("AES-CBC-PAD of a zero block wrong");
}

/* The user is logged in: a R/W session is CKS_RW_USER_FUNCTIONS, a R/O one CKS_RO_USER_FUNCTIONS. */
static void session_info(CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO info;
    memset(&info, 0xa5, sizeof(info));
    CHECK(f->C_GetSessionInfo(s, &info));
    if (info.slotID != slot || !(info.flags & CKF_SERIAL_SESSION) || info.ulDeviceError != 0
        || info.state != ((info.flags & CKF_RW_SESSION) ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS))
        FAIL("C_GetSessionInfo wrong (state %lu, flags 0x%lx)", info.state, info.flags);
    EXPECT_RV(CKR_ARGUMENTS_BAD, f->C_GetSessionInfo(s, NULL));
}

static void all(CK_SESSION_HANDLE s)
{
    int i;
    for (i = 0; i < rounds; i++) {
        digest_abc(s);
        hmac_case2(s);
        gcm_cases(s);
        cbc_pad_cases(s);
        session_info(s);
    }
}

static void *worker(void *arg)
{
    CK_SESSION_HANDLE s;
    (void)arg;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    all(s);
    CHECK(f->C_CloseSession(s));
    return NULL;
}

static CK_OBJECT_HANDLE secret(CK_SESSION_HANDLE s, CK_KEY_TYPE type, const void *value, CK_ULONG len)
{
    static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_KEY_TYPE kt = type;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_TOKEN, &no, sizeof(no)},
        {CKA_VALUE, (void *)value, len}, {CKA_SIGN, &yes, sizeof(yes)}, {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ENCRYPT, &yes, sizeof(yes)},
    };
    CK_OBJECT_HANDLE h;
    CK_ULONG n = type == CKK_AES ? 7 : 6;
    if (type == CKK_AES) /* no CKA_SIGN/CKA_VERIFY on an AES key: replace them */
        t[4] = t[6], n = 5;
    CHECK(f->C_CreateObject(s, t, n, &h));
    return h;
}

int main(int argc, char **argv)
{
    host_module m;
    CK_SESSION_HANDLE s;
    CK_BYTE aes_zero[16] = {0};
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_BYTE out[32];
    CK_ULONG len;
    pthread_t th[2];
    pid_t pid;
    int status, i;

    if (argc != 3)
        FAIL("usage: host_lane <library> <rounds>");
    rounds = atoi(argv[2]);
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;
    CHECK(f->C_Initialize(NULL));
    slot = host_first_slot(f);
    host_init_token(f, slot);
    s = host_user_session(f, slot);
    hmac_key = secret(s, CKK_GENERIC_SECRET, "Jefe", 4);
    aes_key = secret(s, CKK_AES, aes_zero, sizeof(aes_zero));
    all(s);
    for (i = 0; i < 2; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) != 0)
            FAIL("pthread_create");
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);

    /* a fork with a lane digest active in the parent (the Init is the lane's: armed above) */
    CHECK(f->C_DigestInit(s, &sha));
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        FAIL("fork");
    if (pid == 0) {
        CK_SESSION_INFO info;
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f->C_GetSessionInfo(s, &info)); /* armed in the parent */
        len = sizeof(out);
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len));
        CHECK(f->C_Initialize(NULL));
        EXPECT_RV(CKR_SESSION_HANDLE_INVALID, f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len));
        CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
        digest_abc(s);
        digest_abc(s);
        CHECK(f->C_Finalize(NULL));
        _exit(0);
    }
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("the child failed (status 0x%x)", status);
    len = sizeof(out);
    CHECK(f->C_Digest(s, (CK_BYTE_PTR) "abc", 3, out, &len));
    if (len != 32 || memcmp(out, SHA256_ABC, 32) != 0)
        FAIL("the parent's digest after the fork is wrong");
    CHECK(f->C_Finalize(NULL));
    printf("OK\n");
    return 0;
}
