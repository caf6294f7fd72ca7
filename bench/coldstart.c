/* Cold start of a PKCS#11 module as a C client sees it: dlopen -> C_GetFunctionList ->
 * first successful C_Initialize, in a fresh process; then the process's RSS.
 * Usage: coldstart MODULE   (prints "coldstart_ms=<ms> rss_kb=<kb>") */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "pkcs11.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            sscanf(line + 6, "%ld", &kb);
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    CK_FUNCTION_LIST_PTR fl;
    CK_C_GetFunctionList get;
    double t0 = now_ms();
    void *h;
    CK_RV rv;
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE\n", argv[0]);
        return 2;
    }
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    if (!get || get(&fl) != CKR_OK)
        return 1;
    rv = fl->C_Initialize(NULL);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_Initialize: 0x%lx\n", rv);
        return 1;
    }
    printf("coldstart_ms=%.2f rss_kb=%ld\n", now_ms() - t0, rss_kb());
    fl->C_Finalize(NULL);
    return 0;
}
