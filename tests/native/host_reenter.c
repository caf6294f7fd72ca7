/* Issue 25 items 2 and 3: a host whose library calls back into the module from inside a call.
 *
 * This is what pkcs11-provider does when an OpenSSL that our own code uses loads it: a C_*
 * call arrives on a thread that is already inside the module. The host plays that library
 * by defining getpid() itself (linked with -rdynamic, so it interposes on libc's for every
 * shared object, libpython included): the module's Python code calls os.getpid() inside
 * C_GetTokenInfo (the store's fork check), and while the host has armed the hook, that
 * getpid() calls the module again.
 *
 * Modes (argv[2]):
 *   nested   the hook calls C_GetInfo, C_Finalize and C_Initialize once; the module must
 *            refuse them and stay initialized under the outer call;
 *   recurse  the hook calls C_GetTokenInfo, whose getpid() calls the hook again, up to
 *            MAX_LEVELS deep (what the issue saw: ~250 levels to a RecursionError, and
 *            "Exception ignored from cffi callback" on stderr at each level).
 * Prints "key 0x<rv>" lines, then "OK"; the driver requires stderr to be empty.
 * Usage: host_reenter <library> nested|recurse
 */
#include "host.h"

#include <sys/syscall.h>
#include <unistd.h>

#define MAX_LEVELS 400
#define NOT_CALLED 0xFFFFFFFFUL

static CK_FUNCTION_LIST_3_0_PTR F;
static int armed;
static int recurse;
static int levels;
static CK_RV nested_info = NOT_CALLED, nested_finalize = NOT_CALLED, nested_initialize = NOT_CALLED;
static CK_RV nested_token_info = NOT_CALLED;

pid_t getpid(void)
{
    if (armed && levels < MAX_LEVELS) {
        CK_INFO info;
        CK_TOKEN_INFO ti;
        levels++;
        if (recurse) {
            CK_RV rv = F->C_GetTokenInfo(0, &ti); /* its getpid() re-enters here while armed */
            if (nested_token_info == NOT_CALLED)
                nested_token_info = rv;
        } else {
            armed = 0;
            nested_info = F->C_GetInfo(&info);
            nested_finalize = F->C_Finalize(NULL);
            nested_initialize = F->C_Initialize(NULL);
        }
    }
    return (pid_t)syscall(SYS_getpid);
}

int main(int argc, char **argv)
{
    host_module m;
    CK_TOKEN_INFO ti;
    CK_INFO info;
    CK_RV outer;

    if (argc != 3)
        return 2;
    recurse = strcmp(argv[2], "recurse") == 0;
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    F = m.fl30;
    CHECK(F->C_Initialize(NULL));
    CHECK(F->C_GetTokenInfo(0, &ti)); /* the store is open: later calls only check the pid */
    armed = 1;
    outer = F->C_GetTokenInfo(0, &ti);
    armed = 0;
    printf("outer 0x%lx\n", (unsigned long)outer);
    printf("levels %d\n", levels);
    printf("nested_info 0x%lx\n", (unsigned long)nested_info);
    printf("nested_finalize 0x%lx\n", (unsigned long)nested_finalize);
    printf("nested_initialize 0x%lx\n", (unsigned long)nested_initialize);
    printf("nested_token_info 0x%lx\n", (unsigned long)nested_token_info);
    printf("after_info 0x%lx\n", (unsigned long)F->C_GetInfo(&info));
    printf("after_token_info 0x%lx\n", (unsigned long)F->C_GetTokenInfo(0, &ti));
    printf("finalize 0x%lx\n", (unsigned long)F->C_Finalize(NULL));
    printf("OK\n");
    return 0;
}
