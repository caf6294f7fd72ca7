/* The C side of cryptoki-shim: no PKCS#11 logic lives here.
 *
 * What it does, and why (DESIGN.md §2):
 *   - a readiness guard in front of every entry: Python is started once, by us, with a
 *     PyConfig that names the interpreter of our Python environment (cffi would derive the
 *     prefix from the host executable and fail), the environment found at run time from where
 *     this library lies (pyenv.c: no build path is baked in, issue 18), and a failed start-up
 *     answers CKR_GENERAL_ERROR instead of killing the host or answering CKR_OK (cffi's
 *     default for a callback without code);
 *   - libpython re-opened RTLD_GLOBAL, because hosts dlopen us RTLD_LOCAL and extension
 *     modules would then miss the Py* symbols;
 *   - a refusal inside a Python host of another minor version (it would hang);
 *   - fork handlers so a fork while another thread is inside the module does not hang the
 *     child: a fork gate (a read lock around every Python entry, the write lock across fork)
 *     waits until no thread is inside, because holding the GIL is not enough: a thread inside
 *     SQLite runs without the GIL and may hold SQLite's process-wide mutexes;
 *   - a re-entry guard: a C_* call that arrives on a thread already inside the module (a
 *     callback chain through a host library, e.g. pkcs11-provider loaded by an OpenSSL that
 *     our own code called) is refused before it reaches Python (shim_reentered, issue 25);
 *   - the function tables (generated from functions.h into shim_entries.inc by build_ffi.py)
 *     and the three functions that only hand out tables.
 * Python is never finalized (C_Finalize only resets state; atexit does not run in C hosts).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <Python.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11.h"
#include "pyversion.h"

#ifndef SHIM_LIBPYTHON
#error "SHIM_LIBPYTHON (libpython soname) must be defined"
#endif
#ifndef SHIM_PY_VERSION
#error "SHIM_PY_VERSION (\"3.11\") must be defined"
#endif

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_READY_MAGIC 0x5AFE5AFEUL

/* Answered by the Python side once its entry points are attached (see build_ffi.py). */
CK_RV shim_py_ready(void);
/* Logs a refused re-entry through the module's logger (see shim_reentered). */
void shim_py_reentered(const char *name, unsigned long times);

static pthread_once_t shim_once = PTHREAD_ONCE_INIT;
static CK_RV shim_start_rv = CKR_GENERAL_ERROR;
static int shim_we_started_python;

/* Logging before Python runs goes to $CRYPTOKI_SHIM_LOG only (never the host's stderr). */
static void shim_clog(const char *fmt, ...)
{
    const char *path = getenv("CRYPTOKI_SHIM_LOG");
    FILE *f;
    va_list ap;
    if (path == NULL || *path == '\0')
        return;
    if (strcmp(path, "stderr") == 0) {
        f = stderr;
    } else {
        /* 0600 whatever the umask, like the Python side's log (issue 15 item 5) */
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        f = fd < 0 ? NULL : fdopen(fd, "a");
        if (f == NULL && fd >= 0)
            close(fd);
    }
    if (f == NULL)
        return;
    fprintf(f, "cryptoki-shim[%ld] native: ", (long)getpid());
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    if (f != stderr)
        fclose(f);
}

/* The unsigned-long arguments of a METH_FASTCALL builtin of the helpers (lane.c, sessions.c):
 * exactly `want` of them, else TypeError with `usage`. */
static int shim_ulong_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want, const char *usage,
                          unsigned long *out)
{
    Py_ssize_t i;
    if (nargs != want) {
        PyErr_SetString(PyExc_TypeError, usage);
        return 0;
    }
    for (i = 0; i < nargs; i++) {
        out[i] = PyLong_AsUnsignedLong(args[i]);
        if (out[i] == (unsigned long)-1 && PyErr_Occurred())
            return 0;
    }
    return 1;
}

/* Finding the Python environment (shim_locate_env, shim_site_dir). */
#include "pyenv.c"

/* The fork gate. Every Python entry runs under its read lock (shim_enter/shim_leave, in the
 * generated wrappers); fork() takes the write lock first, so it waits until no other thread
 * is inside the module. Holding only the GIL is not enough: a thread inside SQLite has
 * released the GIL and may hold SQLite's process-wide mutexes (VFS, inode list), and a child
 * forked at that moment hangs on its first database access. Writers are preferred so a busy
 * thread cannot starve fork(); no entry re-enters another, so the read lock is never taken
 * twice by one thread. Only used when we started Python: in a Python host, os.fork() holds
 * the GIL while a thread inside the module may wait for it, so waiting would deadlock. */
static pthread_rwlock_t shim_fork_gate;
static int shim_gate_ready;

static void shim_gate_init(void)
{
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&shim_fork_gate, &attr);
    pthread_rwlockattr_destroy(&attr);
    shim_gate_ready = 1;
}

static inline void shim_enter(void)
{
    if (shim_gate_ready)
        pthread_rwlock_rdlock(&shim_fork_gate);
}

static inline void shim_leave(void)
{
    if (shim_gate_ready)
        pthread_rwlock_unlock(&shim_fork_gate);
}

/* Then holding the GIL across fork() keeps the child's interpreter consistent;
 * PyOS_AfterFork_Child clears the other threads' states and runs os.register_at_fork
 * handlers (the core resets itself there). */
static PyGILState_STATE shim_fork_gil;

static void shim_fork_prepare(void)
{
    if (!shim_we_started_python)
        return;
    pthread_rwlock_wrlock(&shim_fork_gate);
    shim_fork_gil = PyGILState_Ensure();
    PyOS_BeforeFork();
}

static void shim_fork_parent(void)
{
    if (!shim_we_started_python)
        return;
    PyOS_AfterFork_Parent();
    PyGILState_Release(shim_fork_gil);
    pthread_rwlock_unlock(&shim_fork_gate);
}

static void shim_fork_child(void)
{
    if (!shim_we_started_python)
        return;
    PyOS_AfterFork_Child();
    PyGILState_Release(shim_fork_gil);
    /* Not unlocked: the parent's waiting readers are counted in the lock and do not exist
     * here (glibc would keep the child waiting for them); the child is single-threaded. */
    shim_gate_init();
}

/* The GIL entry gate (issue 22; docs/performance.md "The GIL entry gate", docs/security.md
 * "The GIL entry gate cannot deadlock"). With two client threads, the one waiting for the GIL
 * parks on CPython's GIL condition variable, and every GIL release of the running thread (one
 * per call: cffi's callback returning) futex-wakes it; it contends for the GIL's mutex, loses
 * to the thread that just released it, and parks again: syscalls and context switches per
 * call (the convoy), and two threads got less than one. So a thread takes this gate just
 * around its Python call (inside the fork gate), and only the gate holder goes on to
 * PyGILState_Ensure: the GIL is never contended by our threads, and a waiter for the gate is
 * woken once per hand-over, not once per call.
 *
 * Waiting: spin (SHIM_GATE_SPIN_NS: covers another thread's short Python part, e.g. between
 * two ECDSA signatures), then park on a futex. The holder hands over (a) at once where it
 * leaves Python for a while (the C helpers, shim_gate_yield; `lend()` before a library call
 * that releases the GIL), and (b) otherwise after a slice (SHIM_GATE_SLICE_NS) of calls: it
 * wakes a parked waiter, and once a waiter spins it does not re-take the gate it released
 * ("polite", at most SHIM_GATE_POLITE_NS) — a plain test-and-set lock is always won back by
 * the thread that released it (its cache has the line), and handing over on every call would
 * make every call pay a hand-over. Not FIFO: a queue whose head was descheduled stops all.
 *
 * The gate is a hint, never needed for correctness, so it cannot deadlock:
 *   (a) a thread that already holds the GIL (a Python host calling us without releasing it)
 *       skips it (it could otherwise wait for a holder that waits for that GIL);
 *   (b) every wait is bounded (SHIM_GATE_BOUND_NS): then the thread goes on to
 *       PyGILState_Ensure without the gate (the behaviour before the gate), and marks the
 *       holder's turn stale so later arrivals wait for that turn only SHIM_GATE_STALE_NS (a
 *       holder blocked in SQLite, an upstream HSM, a TPM round trip, a lock or the PIN KDF
 *       costs the others one bound once, then a short wait per call);
 *   (c) it is held only across the Python call of one entry, never across a return to the
 *       host, and no lock is taken while holding it that a gate waiter could hold.
 * Such a bypass takes the GIL in the wrapper itself, counted in shim_gil_wanters: while any
 * thread of ours waits for the GIL that way, the gate is not taken (its holder would race it
 * for the GIL and win, leaving it parked for CPython's 5 ms switch interval).
 * The word counts turns: even = free, odd = held; every take and every release adds 1, so
 * each turn has its own odd value and "stale" names exactly one turn. */
#define SHIM_GATE_BOUND_NS 2000000u /* the longest wait for the gate; then on without it */
#define SHIM_GATE_STALE_NS 30000u   /* the wait for a turn another thread already gave up on */
#define SHIM_GATE_SPIN_NS 10000u    /* spinning, before parking on the futex */
#define SHIM_GATE_SLICE_NS 1000000u /* a holder with parked waiters wakes one after this long */
#define SHIM_GATE_POLITE_NS 5000u   /* how long a polite thread leaves its released gate to a spinner */

static uint64_t shim_gil_gate;       /* even: free; odd: held (the value names the turn) */
static uint64_t shim_gil_gate_stale; /* a held value a waiter gave up on (0: none; 0 is never held) */
/* The free value of a release at the end of a call inside its holder's slice: the holder
 * will likely take it again within ~0.1 µs (its next call), and a spinning waiter that took
 * it in that gap would make every call a hand-over (GIL and gate lines moving between cores,
 * the waiter's core spinning: 2x the CPU per operation for 1x the work). So a waiter takes
 * such a value only once it has stayed free SHIM_GATE_GAP_NS (the holder did not come back). */
static uint64_t shim_gil_gate_soft;
#define SHIM_GATE_GAP_NS 3000u
static unsigned shim_gate_waiting;   /* threads spinning for the gate (and lenders, see lend()) */
static unsigned shim_gate_parked;    /* threads parked on shim_gate_futex */
static unsigned shim_gate_wake_sent; /* a wake is on its way (cleared by the woken thread) */
static uint32_t shim_gate_futex;     /* bumped by every wake */
static unsigned shim_gil_wanters;    /* threads of ours in PyGILState_Ensure without the gate */
static __thread uint64_t shim_gate_mine;   /* the held value if this thread holds the gate, else 0 */
static __thread uint64_t shim_gate_polite; /* the free value this thread handed over, else 0 */
static __thread uint64_t shim_gate_slice;  /* when this thread saw waiters first in its turn (ns) */
static __thread int shim_gate_lent;        /* given up by shim_gate_yield, to be reclaimed */
static __thread int shim_gate_lent_py;     /* given up by `_cryptoki_shim_gate.lend()`: counted waiting */
static __thread int shim_gate_bypassed;    /* this entry took the GIL itself ... */
static __thread PyGILState_STATE shim_gate_gstate; /* ... with this state */
/* Diagnostics (tests read them; the uncontended take is not counted: no shared write). */
enum { SHIM_GATE_WAITED, SHIM_GATE_TIMED_OUT, SHIM_GATE_STALE, SHIM_GATE_GIL_HELD, SHIM_GATE_LENT,
       SHIM_GATE_PARKS, SHIM_GATE_COUNTERS };
static unsigned long shim_gate_counters[SHIM_GATE_COUNTERS];

#define SHIM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static inline void shim_gate_count(int which)
{
    __atomic_add_fetch(&shim_gate_counters[which], 1, __ATOMIC_RELAXED);
}

static inline void shim_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static uint64_t shim_gate_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wakes one parked waiter, unless a wake is already on its way. */
static void shim_gate_wake(void)
{
    if (SHIM_LOAD(&shim_gate_parked) == 0 || __atomic_exchange_n(&shim_gate_wake_sent, 1, __ATOMIC_RELAXED))
        return;
    __atomic_add_fetch(&shim_gate_futex, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &shim_gate_futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Parks until woken or `ns` passed, unless the gate became free meanwhile; 1 if woken. */
static int shim_gate_park(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    uint32_t seq = __atomic_load_n(&shim_gate_futex, __ATOMIC_ACQUIRE);

    __atomic_add_fetch(&shim_gate_parked, 1, __ATOMIC_SEQ_CST);
    /* re-checked after announcing ourselves: a release in between sees us parked and wakes */
    if ((SHIM_LOAD(&shim_gil_gate) & 1) != 0 || SHIM_LOAD(&shim_gil_wanters) != 0) {
        shim_gate_count(SHIM_GATE_PARKS);
        syscall(SYS_futex, &shim_gate_futex, FUTEX_WAIT_PRIVATE, seq, &ts, NULL, 0);
    }
    __atomic_sub_fetch(&shim_gate_parked, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gate_wake_sent, 0, __ATOMIC_RELAXED);
    return __atomic_load_n(&shim_gate_futex, __ATOMIC_ACQUIRE) != seq;
}

/* The contended path of shim_gate_acquire: spin, park, bounded; the held value or 0. */
static uint64_t shim_gate_wait(uint64_t v)
{
    uint64_t start = shim_gate_now_ns(), now = start, spin_from = start, got = 0, soft_v = 1, soft_t = 0;
    unsigned spins = 0;
    int woken;

    __atomic_add_fetch(&shim_gate_waiting, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        if ((v & 1) == 0 && v == SHIM_LOAD(&shim_gil_gate_soft) && v != soft_v) {
            soft_v = v; /* its holder's gap between calls, perhaps: wait SHIM_GATE_GAP_NS */
            now = soft_t = shim_gate_now_ns();
        }
        if ((v & 1) == 0 && SHIM_LOAD(&shim_gil_wanters) == 0 && (v != soft_v || now - soft_t > SHIM_GATE_GAP_NS)
            && (v != shim_gate_polite || SHIM_LOAD(&shim_gate_waiting) <= 1 || now - start > SHIM_GATE_POLITE_NS)) {
            if (__atomic_compare_exchange_n(&shim_gil_gate, &v, v + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                got = v + 1;
                shim_gate_count(SHIM_GATE_WAITED);
                break;
            }
            continue; /* v is the word's new value */
        }
        if ((++spins & 15) == 0) {
            now = shim_gate_now_ns();
            if ((v & 1) && now - start > SHIM_GATE_STALE_NS && v == SHIM_LOAD(&shim_gil_gate_stale)) {
                shim_gate_count(SHIM_GATE_STALE);
                break;
            }
            if (now - start > SHIM_GATE_BOUND_NS) {
                if (v & 1)
                    __atomic_store_n(&shim_gil_gate_stale, v, __ATOMIC_RELAXED);
                shim_gate_count(SHIM_GATE_TIMED_OUT);
                break;
            }
            if (now - spin_from > SHIM_GATE_SPIN_NS) {
                uint64_t left = SHIM_GATE_BOUND_NS - (now - start);
                if ((v & 1) && v == SHIM_LOAD(&shim_gil_gate_stale))
                    left = now - start < SHIM_GATE_STALE_NS ? SHIM_GATE_STALE_NS - (now - start) : 1;
                if (left > SHIM_GATE_SLICE_NS) /* re-check now and then: a holder may stop calling */
                    left = SHIM_GATE_SLICE_NS;
                __atomic_sub_fetch(&shim_gate_waiting, 1, __ATOMIC_RELAXED);
                woken = shim_gate_park(left);
                __atomic_add_fetch(&shim_gate_waiting, 1, __ATOMIC_SEQ_CST);
                now = shim_gate_now_ns();
                if (woken)
                    spin_from = now; /* spin again: a hand-over is coming */
                v = SHIM_LOAD(&shim_gil_gate);
                continue;
            }
        }
        shim_cpu_relax();
        v = SHIM_LOAD(&shim_gil_gate);
    }
    __atomic_sub_fetch(&shim_gate_waiting, 1, __ATOMIC_RELAXED);
    shim_gate_polite = 0;
    shim_gate_slice = 0;
    return got;
}

/* Takes the gate, or gives up after the bound: the held value, or 0 (go on without it). */
static inline uint64_t shim_gate_acquire(void)
{
    uint64_t v = SHIM_LOAD(&shim_gil_gate);

    if ((v & 1) == 0 && v != shim_gate_polite && SHIM_LOAD(&shim_gil_wanters) == 0
        && __atomic_compare_exchange_n(&shim_gil_gate, &v, v + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return v + 1;
    return shim_gate_wait(v);
}

/* At the end of an entry (`handover`: after a slice, hand over; see above), or 0 from the
 * helpers (shim_gate_yield: the gate is free for the whole crypto, wake a waiter at once). */
static inline void shim_gate_release(int handover)
{
    uint64_t mine = shim_gate_mine, now;
    int contended, wake = 0;
    if (mine == 0)
        return;
    shim_gate_mine = 0;
    contended = SHIM_LOAD(&shim_gate_waiting) != 0 || SHIM_LOAD(&shim_gate_parked) != 0;
    if (!contended) {
        shim_gate_slice = 0;
    } else if (!handover) {
        wake = SHIM_LOAD(&shim_gate_waiting) == 0; /* free for the whole crypto: to a waiter now */
    } else {
        now = shim_gate_now_ns();
        if (shim_gate_slice == 0) {
            shim_gate_slice = now; /* the first release that saw a waiter: the slice starts */
        } else if (now - shim_gate_slice > SHIM_GATE_SLICE_NS) {
            if (SHIM_LOAD(&shim_gate_waiting) != 0) {
                shim_gate_polite = mine + 1; /* a spinner takes it; we do not, for a while */
                shim_gate_slice = 0;
                handover = 0; /* not soft: the spinner takes it at once */
            } else {
                wake = 1; /* it will spin, and a later release hands over */
            }
        }
    }
    if (handover) /* the end of a call inside our slice: we will likely be back */
        __atomic_store_n(&shim_gil_gate_soft, mine + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gil_gate, mine + 1, __ATOMIC_SEQ_CST);
    if (wake)
        shim_gate_wake();
}

/* Around the Python call of a generated wrapper (after shim_enter, before shim_leave). */
static inline void shim_gate_enter(void)
{
    shim_gate_lent = 0;
    if (PyGILState_Check()) { /* rule (a): never wait while holding the GIL */
        shim_gate_count(SHIM_GATE_GIL_HELD);
        return;
    }
    shim_gate_mine = shim_gate_acquire();
    if (shim_gate_mine == 0) { /* rule (b): on without the gate, visibly (shim_gil_wanters) */
        __atomic_add_fetch(&shim_gil_wanters, 1, __ATOMIC_SEQ_CST);
        shim_gate_gstate = PyGILState_Ensure();
        __atomic_sub_fetch(&shim_gil_wanters, 1, __ATOMIC_SEQ_CST);
        shim_gate_bypassed = 1; /* cffi's own PyGILState_Ensure is then a nested one */
        shim_gate_wake();       /* a waiter held back by us may take the gate now */
    }
}

static inline void shim_gate_exit(void)
{
    if (shim_gate_bypassed) {
        shim_gate_bypassed = 0;
        PyGILState_Release(shim_gate_gstate);
    }
    shim_gate_release(1);
    shim_gate_lent = 0;
    if (shim_gate_lent_py) {
        shim_gate_lent_py = 0;
        __atomic_sub_fetch(&shim_gate_waiting, 1, __ATOMIC_RELAXED);
    }
}

/* For C helpers running with the GIL released (cffi's call, Py_BEGIN_ALLOW_THREADS): give
 * the gate to the next thread for the duration of the crypto, and take it back (bounded)
 * before the GIL is re-taken, so that re-taking finds the GIL free instead of parking. A
 * thread without the gate (a bypass, a Python host's thread) does nothing. */
static void shim_gate_yield(void)
{
    if (shim_gate_mine != 0) {
        shim_gate_release(0);
        shim_gate_lent = 1;
        shim_gate_count(SHIM_GATE_LENT);
    }
}

static void shim_gate_reclaim(void)
{
    if (shim_gate_lent) {
        shim_gate_lent = 0;
        shim_gate_mine = shim_gate_acquire();
        /* 0 (bound passed): cffi re-takes the GIL as before the gate; counted as bypass */
    }
}

/* After fork: the child has only the forking thread; a turn held by another thread would
 * never end (the bound would cover it, once; resetting is cleaner). */
static void shim_gate_after_fork_child(void)
{
    __atomic_store_n(&shim_gil_gate, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gil_gate_stale, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gil_gate_soft, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gate_waiting, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gate_parked, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gate_wake_sent, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&shim_gil_wanters, 0, __ATOMIC_RELAXED);
    shim_gate_mine = 0;
    shim_gate_polite = 0;
    shim_gate_slice = 0;
    shim_gate_lent = 0;
    shim_gate_lent_py = 0;
}

/* `_cryptoki_shim_gate` (in sys.modules, made by shim_gate_publish): lend() gives the gate
 * up before a library call that releases the GIL internally (pyca's RSA, for one), so
 * another thread runs its Python part meanwhile; counters() returns the diagnostics as
 * (waited, timed_out, stale, gil_held, lent, parks). CPython builtins, not cffi functions: cffi
 * releases and re-takes the GIL around every call, which would defeat the point. */
static PyObject *shim_gate_py_lend(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (shim_gate_mine != 0 && !shim_gate_lent_py) {
        /* Not reclaimed: the library call re-takes the GIL by itself (parking on it if
         * another thread has it). Until this entry ends the thread counts as waiting, so
         * that holders hand the gate (and so the GIL) over after their slice instead of
         * re-taking the GIL ahead of this thread's wake-up (CPython would let it wait
         * for its 5 ms switch interval). */
        shim_gate_release(0);
        shim_gate_lent_py = 1;
        __atomic_add_fetch(&shim_gate_waiting, 1, __ATOMIC_RELAXED);
        shim_gate_count(SHIM_GATE_LENT);
    }
    Py_RETURN_NONE;
}

static PyObject *shim_gate_py_counters(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("(kkkkkk)", SHIM_LOAD(&shim_gate_counters[SHIM_GATE_WAITED]),
                         SHIM_LOAD(&shim_gate_counters[SHIM_GATE_TIMED_OUT]),
                         SHIM_LOAD(&shim_gate_counters[SHIM_GATE_STALE]),
                         SHIM_LOAD(&shim_gate_counters[SHIM_GATE_GIL_HELD]),
                         SHIM_LOAD(&shim_gate_counters[SHIM_GATE_LENT]),
                         SHIM_LOAD(&shim_gate_counters[SHIM_GATE_PARKS]));
}

static PyMethodDef shim_gate_methods[] = {
    {"lend", shim_gate_py_lend, METH_NOARGS, "lend() -> None: give the GIL entry gate to the next thread"},
    {"counters", shim_gate_py_counters, METH_NOARGS, "counters() -> (waited, timed_out, stale, gil_held, lent, parks)"},
    {NULL, NULL, 0, NULL},
};

/* For the Python side (cdef in build_ffi.py): makes `_cryptoki_shim_gate`; 1 on success. */
int shim_gate_publish(void)
{
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *module = PyImport_AddModule("_cryptoki_shim_gate"); /* borrowed, in sys.modules */
    int ok = module != NULL && PyModule_AddFunctions(module, shim_gate_methods) == 0;

    if (!ok)
        PyErr_Clear();
    PyGILState_Release(gil);
    return ok;
}

/* A CRYPTOKI_SHIM_PYTHONHOME without a standard library makes Python's start-up fail after
 * printing its path configuration to the host's stderr (init_fs_encoding), which we must
 * never write to. So look for the landmarks Python itself needs (getpath's os.py, and the
 * encodings package of the file-system codec) first, and fail quietly without them. */
static int shim_home_has_stdlib(const char *home)
{
    static const char *const landmarks[] = {"os.py", "encodings/__init__.py"};
    char path[4096];
    size_t i;
    /* PYTHONHOME may be "prefix:exec_prefix"; the standard library is under prefix. */
    int prefix_len = (int)strcspn(home, ":");
    for (i = 0; i < sizeof(landmarks) / sizeof(landmarks[0]); i++) {
        snprintf(path, sizeof(path), "%.*s/lib/python%s/%s", prefix_len, home, SHIM_PY_VERSION,
                 landmarks[i]);
        if (access(path, R_OK) != 0) {
            shim_clog("CRYPTOKI_SHIM_PYTHONHOME=%s: no Python standard library (%s is missing)",
                      home, path);
            return 0;
        }
    }
    return 1;
}

static int shim_init_python(void)
{
    PyStatus status;
    PyConfig config;
    const char *home = getenv("CRYPTOKI_SHIM_PYTHONHOME");

    if (home != NULL && *home != '\0' && !shim_home_has_stdlib(home))
        return -1;
    /* Isolated: the host's PYTHON* variables, user site and signal handlers stay the host's. */
    PyConfig_InitIsolatedConfig(&config);
    /* The opt-in must clear `isolated` too: Python forces use_environment = 0 while it is set. */
    if (getenv("CRYPTOKI_SHIM_USE_PYTHON_ENV") != NULL) {
        config.isolated = 0;
        config.use_environment = 1;
    }
    config.install_signal_handlers = 0;
    config.configure_c_stdio = 0;
    config.parse_argv = 0;
    config.site_import = 1;
    config.pathconfig_warnings = 0;
    status = PyConfig_SetBytesString(&config, &config.executable, shim_env_python);
    if (!PyStatus_Exception(status))
        status = PyConfig_SetBytesString(&config, &config.program_name, shim_env_python);
    if (!PyStatus_Exception(status) && home != NULL && *home != '\0')
        status = PyConfig_SetBytesString(&config, &config.home, home);
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        shim_clog("Python start-up failed: %s%s%s", status.func ? status.func : "",
                  status.func ? ": " : "", status.err_msg ? status.err_msg : "unknown error");
        return -1;
    }
    /* Let every thread (ours and the host's) enter through PyGILState_Ensure. */
    PyEval_SaveThread();
    return 0;
}

static void shim_start(void)
{
    shim_start_rv = CKR_GENERAL_ERROR;

    if (dlopen(SHIM_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == NULL)
        shim_clog("re-opening %s RTLD_GLOBAL failed: %s", SHIM_LIBPYTHON, dlerror());

    if (!shim_python_version_ok(Py_GetVersion(), SHIM_PY_VERSION)) {
        shim_clog("refusing to run: built for Python %s, the host runs Python %s",
                  SHIM_PY_VERSION, Py_GetVersion());
        return;
    }
    /* In a Python host a missing environment is not fatal yet: the host's own sys.path may
     * hold our package (the embedding init code then fails if it does not). */
    if (shim_locate_env() != 0 && !Py_IsInitialized())
        return;
    if (!Py_IsInitialized()) {
        if (shim_init_python() != 0)
            return;
        shim_we_started_python = 1;
        shim_gate_init();
        pthread_atfork(shim_fork_prepare, shim_fork_parent, shim_fork_child);
    }
    /* in a Python host too: a child forked there must not find a turn of a lost thread */
    pthread_atfork(NULL, NULL, shim_gate_after_fork_child);
    shim_import_cffi_backend();
    /* The first call into cffi runs the embedding init code, which attaches our entries. */
    if (shim_py_ready() != SHIM_READY_MAGIC) {
        shim_clog("the Python side did not attach its entry points");
        return;
    }
    shim_start_rv = CKR_OK;
}

/* For the Python side (cdef in build_ffi.py): 1 when this library started the interpreter (a
 * C host), so sys.stdout/sys.stderr are ours to redirect; 0 inside a Python host. */
int shim_owns_interpreter(void)
{
    return shim_we_started_python;
}

static CK_RV shim_guard(void)
{
    pthread_once(&shim_once, shim_start);
    return shim_start_rv;
}

/* The re-entry guard. shim_depth is 1 while this thread is inside a C_* entry (from the
 * start-up guard to the return of the Python call). A call that finds it set comes back to
 * us through some library our own code called (issue 25: the `cryptography` wheel's OpenSSL
 * or the system libcrypto starting pkcs11-provider, which then calls C_Initialize,
 * C_GetTokenInfo, C_Finalize on us from inside our call). Serving it would recurse without
 * bound (the same provider path again), deadlock (pthread_once of the start-up, the fork
 * gate's read lock taken twice with a writer waiting, non-recursive Python locks), or let a
 * nested C_Finalize reset the module under the outer call. So it is refused before any lock
 * or Python: CKR_FUNCTION_FAILED (PKCS#11 3.0 §5.1.1: the function could not be performed,
 * and the situation is "not necessarily totally hopeless", unlike CKR_GENERAL_ERROR: the
 * outer call and the module are intact; it is among the universal return values, so every
 * function, C_Initialize and C_Finalize included, may answer it). Other threads are not
 * affected: the counter is per thread. */
static __thread int shim_depth;
/* Set while this thread writes the log line of a refusal: a call that re-enters from inside
 * the logging itself is refused without a line of its own (no loop through the log). */
static __thread int shim_logging_refusal;

/* One log line per refused function: at once when this thread holds the GIL (entering
 * Python again is then only a re-entrant PyGILState_Ensure), otherwise when the outermost
 * call ends (shim_exit). A thread without the GIL may be inside a library that holds its
 * own lock (libcrypto's one-time initialisation) while another thread holds the GIL and
 * waits for that lock: taking the GIL there would deadlock. Until then the refusals are
 * counted per function here. */
#define SHIM_REFUSED_KINDS 16
static __thread struct {
    const char *name;
    unsigned long times;
} shim_refused[SHIM_REFUSED_KINDS];

static void shim_log_refusal(const char *name, unsigned long times)
{
    shim_logging_refusal = 1;
    if (shim_start_rv == CKR_OK)
        shim_py_reentered(name, times);
    else /* cffi's start-up lock is not re-entrant: the native log only */
        shim_clog("%s refused %lu time(s): re-entered during start-up on a thread already inside "
                  "the module", name, times);
    shim_logging_refusal = 0;
}

static CK_RV shim_reentered(const char *name)
{
    size_t i;
    if (shim_logging_refusal)
        return CKR_FUNCTION_FAILED;
    if (shim_start_rv == CKR_OK && PyGILState_Check()) {
        shim_log_refusal(name, 1);
        return CKR_FUNCTION_FAILED;
    }
    for (i = 0; i < SHIM_REFUSED_KINDS; i++) {
        if (shim_refused[i].name == NULL || shim_refused[i].name == name) {
            shim_refused[i].name = name;
            shim_refused[i].times++;
            break;
        }
    }
    return CKR_FUNCTION_FAILED; /* (more than SHIM_REFUSED_KINDS functions: not logged) */
}

/* The end of the outermost entry: log what was deferred, still at depth 1 (a call from the
 * logging is refused), then leave. */
static void shim_exit(void)
{
    size_t i;
    for (i = 0; i < SHIM_REFUSED_KINDS && shim_refused[i].name != NULL; i++) {
        shim_log_refusal(shim_refused[i].name, shim_refused[i].times);
        shim_refused[i].name = NULL;
        shim_refused[i].times = 0;
    }
    shim_depth = 0;
}

/* Generated by build_ffi.py from functions.h: one guarded wrapper per Python entry
 * (C_X -> py_C_X), the 2.40, 3.0 and 3.2 function lists (each with a C_GetInfo reporting
 * its own version), and the interface table. */
#include "shim_entries.inc"

/* PKCS#11 2.40: the 2.40 table. Needs no Python. */
SHIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (ppFunctionList == NULL)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &shim_function_list_2_40;
    return CKR_OK;
}

/* PKCS#11 3.2 §5.4.4: the interfaces we offer, default (3.2) first, then 3.0 and 2.40. */
SHIM_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    CK_ULONG n = sizeof(shim_interfaces) / sizeof(shim_interfaces[0]);
    if (pulCount == NULL)
        return CKR_ARGUMENTS_BAD;
    if (pInterfacesList == NULL) {
        *pulCount = n;
        return CKR_OK;
    }
    if (*pulCount < n) {
        *pulCount = n;
        return CKR_BUFFER_TOO_SMALL;
    }
    memcpy(pInterfacesList, shim_interfaces, sizeof(shim_interfaces));
    *pulCount = n;
    return CKR_OK;
}

/* PKCS#11 3.0 §5.4.5: NULL name -> "PKCS 11"; NULL version -> the first (default) one. */
SHIM_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                 CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    size_t i;
    if (ppInterface == NULL)
        return CKR_ARGUMENTS_BAD;
    for (i = 0; i < sizeof(shim_interfaces) / sizeof(shim_interfaces[0]); i++) {
        const CK_INTERFACE *itf = &shim_interfaces[i];
        const CK_VERSION *v = (const CK_VERSION *)itf->pFunctionList;
        if (pInterfaceName != NULL
            && strcmp((const char *)pInterfaceName, (const char *)itf->pInterfaceName) != 0)
            continue;
        if (pVersion != NULL && (pVersion->major != v->major || pVersion->minor != v->minor))
            continue;
        if ((itf->flags & flags) != flags)
            continue;
        *ppInterface = (CK_INTERFACE_PTR)itf;
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}
