/* Issue 22: the GIL entry gate (native/shim.c) under threads of a C host.
 *
 * `threads` workers, each on its own session, make `calls` rounds of a mix of calls whose
 * Python part holds the GIL (C_GetSessionInfo, a SHA-256 C_Digest compared with the first
 * one) and calls that give the gate up in a C helper (ECDSA C_Sign through native/fastsign.c,
 * then C_Verify of that signature, and of a corrupted copy, which must fail); every other
 * worker also generates an EC key pair per round (the helper's other hand-over). Meanwhile
 * one more thread holds the gate while blocked for long stretches: C_Login / C_Logout on a
 * second token whose PIN costs the default Argon2id (tens of milliseconds and 64 MiB each),
 * `slow` times. Everything must finish (the pytest driver's timeout turns a hang into a
 * failure) with every result right; no timing is asserted.
 *
 * Built twice by tests/test_gate.py: as a program (main below: usage
 * host_gate <library> <threads> <calls> <slow logins>; prints "OK ...") and, with
 * -DGATE_LIBRARY, as a shared library whose gate_run() a Python host calls through ctypes
 * (C threads next to Python threads of that host).
 */
#include <pthread.h>
#include <stdint.h>

#include "host.h"

static CK_FUNCTION_LIST_3_0_PTR gf;
static CK_SLOT_ID gslot;
static CK_OBJECT_HANDLE gpub, gpriv;
static int gcalls;
static unsigned char gexpected[32];
static volatile int gfailures;
static char gfirst_failure[256];
static pthread_mutex_t gfail_lock = PTHREAD_MUTEX_INITIALIZER;

static const unsigned char P256_OID[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char DATA[] = "the GIL entry gate: one message digested by every thread";

static void gate_fail(const char *what, CK_RV rv)
{
    pthread_mutex_lock(&gfail_lock);
    if (gfailures++ == 0)
        snprintf(gfirst_failure, sizeof(gfirst_failure), "%s -> 0x%lx", what, (unsigned long)rv);
    pthread_mutex_unlock(&gfail_lock);
}

#define W_EXPECT(expected, what, expr)                                                 \
    do {                                                                               \
        CK_RV r_ = (expr);                                                             \
        if (r_ != (CK_RV)(expected)) {                                                 \
            gate_fail(what, r_);                                                       \
            return NULL;                                                               \
        }                                                                              \
    } while (0)

static CK_RV gate_digest(CK_SESSION_HANDLE s, unsigned char out[32])
{
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK_ULONG n = 32;
    CK_RV rv = gf->C_DigestInit(s, &m);
    if (rv == CKR_OK)
        rv = gf->C_Digest(s, (CK_BYTE_PTR)DATA, sizeof(DATA) - 1, out, &n);
    return rv == CKR_OK && n != 32 ? CKR_GENERAL_ERROR : rv;
}

static CK_RV gate_keypair(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub_t[] = {{CKA_EC_PARAMS, (void *)P256_OID, sizeof(P256_OID)}, {CKA_VERIFY, &yes, sizeof(yes)}};
    CK_ATTRIBUTE priv_t[] = {{CKA_SIGN, &yes, sizeof(yes)}, {CKA_SENSITIVE, &yes, sizeof(yes)}};
    return gf->C_GenerateKeyPair(s, &m, pub_t, 2, priv_t, 2, pub, priv);
}

static void *gate_worker(void *arg)
{
    int index = (int)(intptr_t)arg, i;
    CK_SESSION_HANDLE s;
    CK_SESSION_INFO info;
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    unsigned char digest[32], sig[64];
    CK_ULONG n;

    W_EXPECT(CKR_OK, "C_OpenSession", gf->C_OpenSession(gslot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    for (i = 0; i < gcalls; i++) {
        W_EXPECT(CKR_OK, "C_GetSessionInfo", gf->C_GetSessionInfo(s, &info));
        if (info.slotID != gslot)
            W_EXPECT(CKR_OK, "C_GetSessionInfo slotID", CKR_GENERAL_ERROR);
        W_EXPECT(CKR_OK, "C_Digest", gate_digest(s, digest));
        if (memcmp(digest, gexpected, 32) != 0)
            W_EXPECT(CKR_OK, "C_Digest value", CKR_GENERAL_ERROR);
        pub = gpub;
        priv = gpriv;
        if (index % 2 == 1)
            W_EXPECT(CKR_OK, "C_GenerateKeyPair", gate_keypair(s, &pub, &priv));
        digest[0] ^= (unsigned char)i;
        n = sizeof(sig);
        W_EXPECT(CKR_OK, "C_SignInit", gf->C_SignInit(s, &ecdsa, priv));
        W_EXPECT(CKR_OK, "C_Sign", gf->C_Sign(s, digest, 32, sig, &n));
        if (n != 64)
            W_EXPECT(CKR_OK, "C_Sign length", CKR_GENERAL_ERROR);
        W_EXPECT(CKR_OK, "C_VerifyInit", gf->C_VerifyInit(s, &ecdsa, pub));
        W_EXPECT(CKR_OK, "C_Verify", gf->C_Verify(s, digest, 32, sig, 64));
        sig[5] ^= 0x01;
        W_EXPECT(CKR_OK, "C_VerifyInit", gf->C_VerifyInit(s, &ecdsa, pub));
        W_EXPECT(CKR_SIGNATURE_INVALID, "C_Verify of a corrupted signature", gf->C_Verify(s, digest, 32, sig, 64));
        if (index % 2 == 1) {
            W_EXPECT(CKR_OK, "C_DestroyObject", gf->C_DestroyObject(s, priv));
            W_EXPECT(CKR_OK, "C_DestroyObject", gf->C_DestroyObject(s, pub));
        }
    }
    W_EXPECT(CKR_OK, "C_CloseSession", gf->C_CloseSession(s));
    return NULL;
}

typedef struct {
    CK_SLOT_ID slot;
    int times;
} gate_slow_args;

/* Holds the gate while blocked: each C_Login runs the default Argon2id of the second token. */
static void *gate_slow(void *arg)
{
    gate_slow_args *a = arg;
    CK_SESSION_HANDLE s;
    int i;

    W_EXPECT(CKR_OK, "slow C_OpenSession", gf->C_OpenSession(a->slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    for (i = 0; i < a->times; i++) {
        W_EXPECT(CKR_OK, "slow C_Login", gf->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
        W_EXPECT(CKR_OK, "slow C_Logout", gf->C_Logout(s));
    }
    W_EXPECT(CKR_OK, "slow C_CloseSession", gf->C_CloseSession(s));
    return NULL;
}

/* Runs the workers (and the slow thread if `slow_slot` names a token) to completion: the
 * number of failures, the first one described in `first` (up to `first_len` bytes). The
 * module must be initialised, `slot`'s user logged in and the key pair made by the caller. */
int gate_run(CK_FUNCTION_LIST_3_0_PTR f, CK_SLOT_ID slot, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv,
             int threads, int calls, long slow_slot, int slow_times, char *first, size_t first_len)
{
    pthread_t tids[64], slow_tid;
    gate_slow_args slow = {(CK_SLOT_ID)slow_slot, slow_times};
    CK_SESSION_HANDLE s;
    int i, started = 0;

    gf = f;
    gslot = slot;
    gpub = pub;
    gpriv = priv;
    gcalls = calls;
    gfailures = 0;
    gfirst_failure[0] = '\0';
    if (threads > 64)
        threads = 64;
    if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK || gate_digest(s, gexpected) != CKR_OK
        || f->C_CloseSession(s) != CKR_OK)
        gate_fail("the reference digest", CKR_GENERAL_ERROR);
    if (slow_slot >= 0 && pthread_create(&slow_tid, NULL, gate_slow, &slow) != 0)
        gate_fail("pthread_create", CKR_GENERAL_ERROR);
    for (i = 0; i < threads; i++, started++)
        if (pthread_create(&tids[i], NULL, gate_worker, (void *)(intptr_t)i) != 0)
            break;
    for (i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (slow_slot >= 0)
        pthread_join(slow_tid, NULL);
    if (started != threads)
        gate_fail("pthread_create", CKR_GENERAL_ERROR);
    if (first != NULL && first_len > 0)
        snprintf(first, first_len, "%s", gfirst_failure);
    return gfailures;
}

/* The key pair gate_run signs with, made on a session of `slot` (the user logged in). */
int gate_setup(CK_FUNCTION_LIST_3_0_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    gf = f;
    return gate_keypair(s, pub, priv) == CKR_OK ? 0 : 1;
}

#ifdef GATE_LIBRARY
/* For a Python host (ctypes.CDLL releases the GIL for this call): the library `path` that
 * host already loaded and initialised, slot 0's token set up with USER_PIN; its own session
 * and key pair, then gate_run without the slow thread. The number of failures. */
int gate_host_run(const char *path, int threads, int calls, char *first, size_t first_len)
{
    host_module m = host_load(path, RTLD_NOW | RTLD_NOLOAD);
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub, priv;
    CK_RV rv;
    int failures;

    CHECK(m.fl30->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    rv = m.fl30->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        FAIL("C_Login -> 0x%lx", (unsigned long)rv);
    if (gate_setup(m.fl30, s, &pub, &priv) != 0)
        FAIL("C_GenerateKeyPair in the set-up");
    failures = gate_run(m.fl30, 0, pub, priv, threads, calls, -1, 0, first, first_len);
    CHECK(m.fl30->C_CloseSession(s));
    return failures;
}
#else
int main(int argc, char **argv)
{
    host_module m;
    CK_C_INITIALIZE_ARGS init = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE pub, priv;
    char first[256];
    int threads, calls, slow, failures;

    if (argc != 5)
        FAIL("usage: host_gate <library> <threads> <calls> <slow logins>");
    threads = atoi(argv[2]);
    calls = atoi(argv[3]);
    slow = atoi(argv[4]);
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(m.fl30->C_Initialize(&init));
    CHECK(m.fl30->C_GetSlotList(CK_FALSE, slots, &n));
    if (n < 2)
        FAIL("two slots expected, found %lu", (unsigned long)n);
    host_init_token(m.fl30, slots[0]);
    if (slow > 0)
        host_init_token(m.fl30, slots[1]);
    s = host_user_session(m.fl30, slots[0]);
    if (gate_setup(m.fl30, s, &pub, &priv) != 0)
        FAIL("C_GenerateKeyPair in the set-up");
    failures = gate_run(m.fl30, slots[0], pub, priv, threads, calls, slow > 0 ? (long)slots[1] : -1, slow, first,
                        sizeof(first));
    if (failures != 0)
        FAIL("%d failure(s), the first: %s", failures, first);
    CHECK(m.fl30->C_CloseSession(s));
    CHECK(m.fl30->C_Finalize(NULL));
    printf("OK threads=%d calls=%d slow=%d\n", threads, calls, slow);
    return 0;
}
#endif
