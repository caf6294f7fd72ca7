/* Per-process cost of a PKCS#11 module as every `openssl` command run with pkcs11-provider
 * pays it: in a fresh process, dlopen -> C_GetFunctionList -> C_Initialize -> find the token
 * by label, C_OpenSession -> C_Login (the PIN KDF) -> find the key by label -> the first
 * C_SignInit + C_Sign (CKM_ECDSA over a 32-byte hash) -> C_Finalize. Each phase is timed on
 * its own; total_ms runs from dlopen to the first signature.
 *
 * Usage: firstsig MODULE TOKEN_LABEL PIN KEY_LABEL
 * Prints "load_ms=.. initialize_ms=.. session_ms=.. login_ms=.. find_ms=.. sign_ms=.. finalize_ms=.. total_ms=.."
 * on stdout. With FIRSTSIG_MARKS set, writes "firstsig: phase <name>" on stderr before each
 * phase, so that the module's own start-up traces (python -X importtime) can be cut by phase. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "pkcs11.h"

#define PHASES 7 /* the last, finalize, is not in total_ms */
static const char *phase_names[PHASES] = {"load", "initialize", "session", "login", "find", "sign", "finalize"};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void mark(int phase)
{
    if (getenv("FIRSTSIG_MARKS")) {
        fprintf(stderr, "firstsig: phase %s\n", phase_names[phase]);
        fflush(stderr);
    }
}

static int fail(const char *what, CK_RV rv)
{
    fprintf(stderr, "firstsig: %s: 0x%08lx\n", what, rv);
    return 1;
}

/* The first slot whose token label (blank-padded to 32) is `label`. */
static CK_RV find_slot(CK_FUNCTION_LIST_PTR fl, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    char want[32];
    size_t len = strlen(label);
    CK_RV rv = fl->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    memset(want, ' ', sizeof want);
    memcpy(want, label, len < sizeof want ? len : sizeof want);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (fl->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, want, sizeof want) == 0) {
            *slot = slots[i];
            return CKR_OK;
        }
    }
    return CKR_TOKEN_NOT_PRESENT;
}

int main(int argc, char **argv)
{
    CK_FUNCTION_LIST_PTR fl;
    CK_C_GetFunctionList get;
    CK_SESSION_HANDLE session;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE key;
    CK_ULONG found = 0, siglen;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[2];
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_BYTE hash[32], sig[512];
    double t[PHASES + 1];
    void *h;
    CK_RV rv;

    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE TOKEN_LABEL PIN KEY_LABEL\n", argv[0]);
        return 2;
    }
    memset(hash, 0x5a, sizeof hash);
    mark(0);
    t[0] = now_ms();
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    if (!get || (rv = get(&fl)) != CKR_OK)
        return fail("C_GetFunctionList", get ? rv : CKR_GENERAL_ERROR);
    mark(1);
    t[1] = now_ms();
    if ((rv = fl->C_Initialize(NULL)) != CKR_OK)
        return fail("C_Initialize", rv);
    mark(2);
    t[2] = now_ms();
    if ((rv = find_slot(fl, argv[2], &slot)) != CKR_OK)
        return fail("token", rv);
    if ((rv = fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session)) != CKR_OK)
        return fail("C_OpenSession", rv);
    mark(3);
    t[3] = now_ms();
    if ((rv = fl->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK)
        return fail("C_Login", rv);
    mark(4);
    t[4] = now_ms();
    tmpl[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof cls};
    tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, argv[4], strlen(argv[4])};
    if ((rv = fl->C_FindObjectsInit(session, tmpl, 2)) != CKR_OK
        || (rv = fl->C_FindObjects(session, &key, 1, &found)) != CKR_OK
        || (rv = fl->C_FindObjectsFinal(session)) != CKR_OK)
        return fail("C_FindObjects", rv);
    if (found != 1)
        return fail("key not found", CKR_OBJECT_HANDLE_INVALID);
    mark(5);
    t[5] = now_ms();
    siglen = sizeof sig;
    if ((rv = fl->C_SignInit(session, &mech, key)) != CKR_OK)
        return fail("C_SignInit", rv);
    if ((rv = fl->C_Sign(session, hash, sizeof hash, sig, &siglen)) != CKR_OK)
        return fail("C_Sign", rv);
    mark(6);
    t[6] = now_ms();
    if ((rv = fl->C_Finalize(NULL)) != CKR_OK)
        return fail("C_Finalize", rv);
    t[7] = now_ms();
    for (int i = 0; i < PHASES; i++)
        printf("%s_ms=%.2f ", phase_names[i], t[i + 1] - t[i]);
    printf("total_ms=%.2f\n", t[6] - t[0]);
    fflush(stdout);
    return 0;
}
