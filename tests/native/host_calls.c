/* Issue 2 (d, e, h): a host that reports what the module answers, and nothing else.
 *
 * It calls C_GetFunctionList, C_Initialize, C_GetInfo, C_GetSlotList, C_GetTokenInfo,
 * C_Finalize and writes "name 0x<rv>" lines to the file named by its second argument — not
 * to stdout or stderr, so the driver can require both to be empty: whatever appears there
 * came from the library. Used with a broken Python start-up (every call must answer
 * CKR_GENERAL_ERROR and the host must live on) and in a normal run (silence).
 * Usage: host_calls <library> <results-file>.
 */
#include "host.h"

int main(int argc, char **argv)
{
    void *handle;
    CK_C_GetFunctionList get_list;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_INFO info;
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    CK_TOKEN_INFO ti;
    FILE *out;

    if (argc != 3)
        return 2;
    out = fopen(argv[2], "w");
    if (out == NULL)
        return 2;
    handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fprintf(out, "dlopen-failed %s\n", dlerror());
        return 1;
    }
    get_list = (CK_C_GetFunctionList)dlsym(handle, "C_GetFunctionList");
    fprintf(out, "C_GetFunctionList 0x%lx\n", (unsigned long)get_list(&f));
    fflush(out);
    fprintf(out, "C_Initialize 0x%lx\n", (unsigned long)f->C_Initialize(NULL));
    fflush(out);
    fprintf(out, "C_GetInfo 0x%lx\n", (unsigned long)f->C_GetInfo(&info));
    fprintf(out, "C_GetSlotList 0x%lx\n", (unsigned long)f->C_GetSlotList(CK_FALSE, slots, &n));
    fprintf(out, "C_GetTokenInfo 0x%lx\n", (unsigned long)f->C_GetTokenInfo(0, &ti));
    fprintf(out, "C_Initialize 0x%lx\n", (unsigned long)f->C_Initialize(NULL));
    fprintf(out, "C_Finalize 0x%lx\n", (unsigned long)f->C_Finalize(NULL));
    fprintf(out, "alive\n");
    fclose(out);
    return 0;
}
