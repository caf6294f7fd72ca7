/* Issue 2 (g): every function of the three tables, called with zero / NULL arguments.
 *
 * The argument lists come from native/functions.h (the X-macro of the 3.2 table): each
 * function is called through the 3.2 list with as many zeros as it has parameters (0 is a
 * valid CK_ULONG and a NULL pointer alike). With "session" the first argument of every
 * function whose first parameter is hSession is a real open session instead, so the calls
 * get past the handle check and meet the NULL pointers. Functions that would end the
 * experiment (C_Initialize, C_Finalize, and in "session" mode the two that close sessions)
 * are left out of the sweep. Output: "table <name> <index> <non-NULL>" lines for the lists,
 * then "<phase> <name> 0x<rv>" per call, then "alive".
 * Usage: host_sweep <library> before|after|session
 */
#include <stddef.h>

#include "host.h"

#define SWEEP_NARG(...) SWEEP_NARG_(__VA_ARGS__, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define SWEEP_NARG_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, n, ...) n
#define SWEEP_CAT(a, b) SWEEP_CAT_(a, b)
#define SWEEP_CAT_(a, b) a##b
#define SWEEP_EXPAND(...) __VA_ARGS__
/* first, then zeros: as many arguments as the function has parameters */
#define SWEEP_ARGS_1(v) v
#define SWEEP_ARGS_2(v) v, 0
#define SWEEP_ARGS_3(v) v, 0, 0
#define SWEEP_ARGS_4(v) v, 0, 0, 0
#define SWEEP_ARGS_5(v) v, 0, 0, 0, 0
#define SWEEP_ARGS_6(v) v, 0, 0, 0, 0, 0
#define SWEEP_ARGS_7(v) v, 0, 0, 0, 0, 0, 0
#define SWEEP_ARGS_8(v) v, 0, 0, 0, 0, 0, 0, 0
#define SWEEP_ARGS_9(v) v, 0, 0, 0, 0, 0, 0, 0, 0
#define SWEEP_ARGS_10(v) v, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define SWEEP_ARGS(v, ...) SWEEP_CAT(SWEEP_ARGS_, SWEEP_NARG(__VA_ARGS__))(v)
/* The first argument, by the first parameter's name: the session (0 unless "session"). A
 * name missing here is a compile error, so a new function cannot be skipped silently. */
#define SWEEP_FIRST_NAME(first, ...) first
#define SWEEP_FIRST(...) SWEEP_CAT(SWEEP_FIRST_, SWEEP_FIRST_NAME(__VA_ARGS__))
#define SWEEP_FIRST_hSession session
#define SWEEP_FIRST_slotID 0
#define SWEEP_FIRST_flags 0
#define SWEEP_FIRST_tokenPresent 0
#define SWEEP_FIRST_pInfo 0
#define SWEEP_FIRST_pInitArgs 0
#define SWEEP_FIRST_pReserved 0
#define SWEEP_FIRST_pInterfaceName 0
#define SWEEP_FIRST_pInterfacesList 0
#define SWEEP_FIRST_ppFunctionList 0

static const char *phase;
static CK_SESSION_HANDLE session;  /* stays 0 unless "session" */

static int skipped(const char *name, int session_mode)
{
    if (strcmp(name, "C_Initialize") == 0 || strcmp(name, "C_Finalize") == 0)
        return 1;
    return session_mode
        && (strcmp(name, "C_CloseSession") == 0 || strcmp(name, "C_CloseAllSessions") == 0);
}

static void report(const char *name, CK_RV rv)
{
    printf("%s %s 0x%lx\n", phase, name, (unsigned long)rv);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    host_module m;
    CK_FUNCTION_LIST_3_2_PTR f;
    int session_mode;
    size_t i;

    if (argc != 3)
        FAIL("usage: %s <library> before|after|session", argv[0]);
    phase = argv[2];
    session_mode = strcmp(phase, "session") == 0;
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl32;

    /* The three tables, pointer by pointer (a NULL slot would crash a client). */
    {
        void **p240 = (void **)((char *)m.fl240 + offsetof(CK_FUNCTION_LIST, C_Initialize));
        void **p30 = (void **)((char *)m.fl30 + offsetof(CK_FUNCTION_LIST_3_0, C_Initialize));
        size_t n240 = (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *);
        void **p32 = (void **)((char *)m.fl32 + offsetof(CK_FUNCTION_LIST_3_2, C_Initialize));
        size_t n30 = (sizeof(CK_FUNCTION_LIST_3_0) - offsetof(CK_FUNCTION_LIST_3_0, C_Initialize)) / sizeof(void *);
        size_t n32 = (sizeof(CK_FUNCTION_LIST_3_2) - offsetof(CK_FUNCTION_LIST_3_2, C_Initialize)) / sizeof(void *);
        printf("version 2.40 %d.%d\n", m.fl240->version.major, m.fl240->version.minor);
        printf("version 3.0 %d.%d\n", m.fl30->version.major, m.fl30->version.minor);
        printf("version 3.2 %d.%d\n", m.fl32->version.major, m.fl32->version.minor);
        for (i = 0; i < n240; i++)
            printf("table 2.40 %zu %d\n", i, p240[i] != NULL);
        for (i = 0; i < n30; i++)
            printf("table 3.0 %zu %d\n", i, p30[i] != NULL);
        for (i = 0; i < n32; i++)
            printf("table 3.2 %zu %d\n", i, p32[i] != NULL);
        /* The older lists share the 3.2 list's functions except C_GetInfo (each reports its
         * own version). */
        for (i = 0; i < n240; i++)
            printf("same240 %zu %d\n", i, p240[i] == p32[i]);
        for (i = 0; i < n30; i++)
            printf("same30 %zu %d\n", i, p30[i] == p32[i]);
    }

    if (strcmp(phase, "before") != 0)
        CHECK(f->C_Initialize(NULL));
    if (session_mode) {
        CK_SLOT_ID slot = host_first_slot(m.fl30);
        host_init_token(m.fl30, slot);
        CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &session));
    }

#define CK_FN(name, params, args)                                                     \
    if (!skipped(#name, session_mode)) {                                               \
        report(#name, f->name(SWEEP_ARGS(SWEEP_FIRST args, SWEEP_EXPAND args)));      \
    }
#define CK_FN_3_0_BEGIN
#define CK_FN_3_2_BEGIN
#include "functions.h"
#undef CK_FN
#undef CK_FN_3_0_BEGIN
#undef CK_FN_3_2_BEGIN

    if (strcmp(phase, "before") != 0)
        CHECK(f->C_Finalize(NULL));
    printf("alive\n");
    return 0;
}
