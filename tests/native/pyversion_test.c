/* Issue 2 (f): unit test of shim_python_version_ok (native/pyversion.h).
 *
 * The running version is what Py_GetVersion() returns ("3.11.2 (main, ...) [GCC ...]"),
 * the built one "MAJOR.MINOR". Prints one line per failed case and "OK <cases>" at the end.
 */
#include <stdio.h>

#include "pyversion.h"

static int failures;
static int cases;

static void expect(const char *running, const char *built, int want)
{
    int got = shim_python_version_ok(running, built);
    cases++;
    if (got != want) {
        failures++;
        printf("FAIL running=\"%s\" built=\"%s\": got %d, want %d\n",
               running ? running : "(null)", built ? built : "(null)", got, want);
    }
}

int main(void)
{
    /* the same minor version: accepted, whatever follows */
    expect("3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]", "3.11", 1);
    expect("3.11.7 (main, Dec  1 2023, 10:00:00) [GCC 12.2.0]", "3.11", 1);
    expect("3.11", "3.11", 1);
    expect("3.11.0rc1 (main)", "3.11", 1);
    expect("3.11 (main)", "3.11", 1);
    expect("3.12.1 (main, Jan  1 2024) [GCC 12.2.0]", "3.12", 1);
    /* another minor version: refused */
    expect("3.12.1 (main, Jan  1 2024) [GCC 12.2.0]", "3.11", 0);
    expect("3.10.13 (main)", "3.11", 0);
    expect("3.13.0 (main)", "3.11", 0);
    expect("2.7.18 (default)", "3.11", 0);
    /* a prefix of the minor number is not the minor number */
    expect("3.11.2 (main)", "3.1", 0);
    expect("3.1.4 (main)", "3.11", 0);
    expect("3.111.0 (main)", "3.11", 0);
    expect("3.110", "3.11", 0);
    /* nonsense */
    expect("", "3.11", 0);
    expect("3.11.2", "", 0);
    expect(NULL, "3.11", 0);
    expect("3.11.2", NULL, 0);
    if (failures)
        return 1;
    printf("OK %d\n", cases);
    return 0;
}
