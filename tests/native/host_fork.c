/* Issue 2 (b): fork() while another thread is inside the module.
 *
 * A worker thread loops C_GetSlotList / C_GetTokenInfo / C_FindObjects* on its session
 * while the main thread forks several times. Each child must not hang (it arms alarm(), so
 * a hang ends as SIGALRM and the parent reports it), must answer
 * CKR_CRYPTOKI_NOT_INITIALIZED (PKCS#11 3.0 §5.4: a child must call C_Initialize), then
 * C_Initialize and a real call (a session and a find) must work. The parent keeps working
 * throughout, and its worker must have made progress across the forks.
 * Usage: host_fork <library> [forks]; prints "OK" on success.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static CK_FUNCTION_LIST_3_0_PTR f;
static CK_SLOT_ID slot;
static volatile int stop;
static volatile unsigned long iterations;
static volatile CK_RV worker_rv = CKR_OK;
static const char *worker_step = "";
static CK_ULONG parent_count;  /* objects a public session of the parent finds */

#define WORKER_CHECK(step, expr)                                                       \
    do {                                                                               \
        CK_RV r_ = (expr);                                                             \
        if (r_ != CKR_OK) {                                                            \
            worker_step = step;                                                        \
            worker_rv = r_;                                                            \
            return NULL;                                                               \
        }                                                                              \
    } while (0)

static void *worker(void *arg)
{
    CK_SESSION_HANDLE s = *(CK_SESSION_HANDLE *)arg;
    CK_SLOT_ID slots[8];
    CK_TOKEN_INFO ti;
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n;

    while (!stop) {
        n = 8;
        WORKER_CHECK("C_GetSlotList", f->C_GetSlotList(CK_TRUE, slots, &n));
        WORKER_CHECK("C_GetTokenInfo", f->C_GetTokenInfo(slot, &ti));
        WORKER_CHECK("C_FindObjectsInit", f->C_FindObjectsInit(s, NULL, 0));
        WORKER_CHECK("C_FindObjects", f->C_FindObjects(s, objs, 8, &n));
        WORKER_CHECK("C_FindObjectsFinal", f->C_FindObjectsFinal(s));
        iterations++;
    }
    return NULL;
}

/* The child's checks; its exit code tells the parent which one failed. */
static int child(void)
{
    CK_INFO info;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE objs[8];
    CK_ULONG n = 0;
    CK_RV rv;

    alarm(20);
    rv = f->C_GetInfo(&info);
    if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        printf("FAIL child: C_GetInfo before C_Initialize -> 0x%lx\n", (unsigned long)rv);
        return 2;
    }
    rv = f->C_Initialize(NULL);
    if (rv != CKR_OK) {
        printf("FAIL child: C_Initialize -> 0x%lx\n", (unsigned long)rv);
        return 3;
    }
    if (f->C_GetInfo(&info) != CKR_OK
        || f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK
        || f->C_FindObjectsInit(s, NULL, 0) != CKR_OK
        || f->C_FindObjects(s, objs, 8, &n) != CKR_OK
        || f->C_FindObjectsFinal(s) != CKR_OK) {
        printf("FAIL child: calls after C_Initialize failed\n");
        return 4;
    }
    if (n != parent_count) {  /* the child sees the same token as the parent */
        printf("FAIL child: found %lu objects, the parent %lu\n", (unsigned long)n,
               (unsigned long)parent_count);
        return 5;
    }
    if (f->C_Finalize(NULL) != CKR_OK) {
        printf("FAIL child: C_Finalize\n");
        return 6;
    }
    return 0;
}

int main(int argc, char **argv)
{
    host_module m;
    CK_SESSION_HANDLE s, s_main;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &no, sizeof(no)},
        {CKA_VALUE, "v", 1},
    };
    CK_OBJECT_HANDLE h;
    CK_TOKEN_INFO ti;
    pthread_t thread;
    int forks = argc > 2 ? atoi(argv[2]) : 8;
    int i, status;
    unsigned long before;

    if (argc < 2)
        FAIL("usage: %s <library> [forks]", argv[0]);
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;
    CHECK(f->C_Initialize(NULL));
    slot = host_first_slot(f);
    host_init_token(f, slot);
    s_main = host_user_session(f, slot);
    CHECK(f->C_CreateObject(s_main, tmpl, 4, &h));
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    {
        CK_OBJECT_HANDLE objs[8];
        CK_ATTRIBUTE get = {CKA_VALUE, NULL, 0};
        CHECK(f->C_FindObjectsInit(s, NULL, 0));
        CHECK(f->C_FindObjects(s, objs, 8, &parent_count));
        CHECK(f->C_FindObjectsFinal(s));
        CHECK(f->C_GetAttributeValue(s, h, &get, 1));  /* the public object is among them */
        if (parent_count < 1 || parent_count == 8)
            FAIL("the parent found %lu objects", (unsigned long)parent_count);
    }

    if (pthread_create(&thread, NULL, worker, &s) != 0)
        FAIL("pthread_create");
    for (i = 0; i < forks; i++) {
        pid_t pid;
        struct timespec pause = {0, 20 * 1000 * 1000};
        before = iterations;
        while (iterations == before && worker_rv == CKR_OK)
            nanosleep(&pause, NULL);  /* fork while the worker is busy in the module */
        pid = fork();
        if (pid < 0)
            FAIL("fork");
        if (pid == 0) {
            int code = child();
            fflush(stdout);
            _exit(code);
        }
        if (waitpid(pid, &status, 0) != pid)
            FAIL("waitpid");
        if (WIFSIGNALED(status))
            FAIL("child %d killed by signal %d%s", i, WTERMSIG(status),
                 WTERMSIG(status) == SIGALRM ? " (hung)" : "");
        if (WEXITSTATUS(status) != 0)
            FAIL("child %d exited %d", i, WEXITSTATUS(status));
        CHECK(f->C_GetTokenInfo(slot, &ti));  /* the parent keeps working */
    }
    before = iterations;
    {
        struct timespec pause = {0, 50 * 1000 * 1000};
        int waited = 0;
        while (iterations == before && worker_rv == CKR_OK && waited++ < 200)
            nanosleep(&pause, NULL);
    }
    stop = 1;
    pthread_join(thread, NULL);
    if (worker_rv != CKR_OK)
        FAIL("worker: %s -> 0x%lx", worker_step, (unsigned long)worker_rv);
    if (iterations == before)
        FAIL("the worker made no progress after the forks");
    CHECK(f->C_CloseSession(s));
    CHECK(f->C_CloseSession(s_main));
    CHECK(f->C_Finalize(NULL));
    printf("OK forks=%d iterations=%lu\n", forks, iterations);
    return 0;
}
