/* The Python-version check of DESIGN.md §2.5, kept apart so a C unit test can call it.
 *
 * Inside a host that already runs Python of another minor version our calls would bind to
 * that interpreter's symbols and hang or crash, so we compare "MAJOR.MINOR." of the running
 * interpreter (Py_GetVersion()) with the one we were built for, and refuse on a mismatch.
 */
#ifndef CRYPTOKI_SHIM_PYVERSION_H
#define CRYPTOKI_SHIM_PYVERSION_H

#include <string.h>

/* built is "3.11"; running is Py_GetVersion(), e.g. "3.11.2 (main, ...) [GCC 12.2.0]". */
static inline int shim_python_version_ok(const char *running, const char *built)
{
    size_t n;
    if (running == NULL || built == NULL)
        return 0;
    n = strlen(built);
    if (n == 0 || strncmp(running, built, n) != 0)
        return 0;
    /* "3.1" must not accept "3.11": the next character ends the minor number. */
    return running[n] == '.' || running[n] == ' ' || running[n] == '+' || running[n] == '\0'
        || running[n] == 'a' || running[n] == 'b' || running[n] == 'r';
}

#endif
