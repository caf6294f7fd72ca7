/* Issue 2 (c): C_Finalize, dlclose, dlopen again, C_Initialize, use again.
 *
 * The library is linked -z nodelete (Python cannot be unloaded), so dlclose must leave it
 * mapped and the second dlopen must hand back a working module in its reset state.
 * Usage: host_reload <library> [rounds]; prints "OK" on success.
 */
#include "host.h"

static void use(CK_FUNCTION_LIST_3_0_PTR f, int round)
{
    CK_INFO info;
    CK_TOKEN_INFO ti;
    CK_SLOT_ID slot = host_first_slot(f);
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE objs[16];
    CK_ULONG n;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, "reload", 6},
    };
    CK_ATTRIBUTE by_label = {CKA_LABEL, "reload", 6};
    CK_OBJECT_HANDLE h;

    CHECK(f->C_GetInfo(&info));
    CHECK(f->C_GetTokenInfo(slot, &ti));
    if (round == 0)
        host_init_token(f, slot);
    else if (!(ti.flags & CKF_TOKEN_INITIALIZED))
        FAIL("round %d: the token initialized in round 0 is gone", round);
    s = host_user_session(f, slot);
    CHECK(f->C_CreateObject(s, tmpl, 3, &h));
    CHECK(f->C_FindObjectsInit(s, &by_label, 1));
    CHECK(f->C_FindObjects(s, objs, 16, &n));
    CHECK(f->C_FindObjectsFinal(s));
    if (n != (CK_ULONG)round + 1)  /* one token object per round so far */
        FAIL("round %d: found %lu objects", round, (unsigned long)n);
    CHECK(f->C_CloseSession(s));
}

int main(int argc, char **argv)
{
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    int i;
    void *first_handle = NULL;

    if (argc < 2)
        FAIL("usage: %s <library> [rounds]", argv[0]);
    for (i = 0; i < rounds; i++) {
        host_module m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
        CK_INFO info;
        if (i == 0)
            first_handle = (void *)m.fl30->C_GetInfo;
        else if ((void *)m.fl30->C_GetInfo != first_handle)
            FAIL("round %d: the library moved (was it unloaded despite -z nodelete?)", i);
        /* A fresh load after C_Finalize is not initialized. */
        EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, m.fl30->C_GetInfo(&info));
        CHECK(m.fl30->C_Initialize(NULL));
        use(m.fl30, i);
        CHECK(m.fl30->C_Finalize(NULL));
        if (dlclose(m.handle) != 0)
            FAIL("dlclose: %s", dlerror());
    }
    printf("OK rounds=%d\n", rounds);
    return 0;
}
