/* sessions.c - C_OpenSession/C_CloseSession answered in C for sessions Python never saw (see
 * sessions.h for the contract; docs/performance.md "Where a call's time goes (the floor), per
 * layer" for why: the two Python calls of an open/close pair were 0.16x SoftHSM2).
 *
 * Included by the cffi source after shim.c (see build_ffi.py): the generated wrappers of
 * C_OpenSession and C_CloseSession (shim_entries.inc) try shim_sess_open/shim_sess_close
 * first, inside the re-entry guard, before the fork gate and Python.
 *
 * What is here: the C sessions (opened here, not yet claimed by Python) in a table indexed by
 * handle, and per slot whether Python allows opening here (`enabled`), how many sessions
 * Python holds on it (`py_count`, which Python sets) and how many C sessions (`c_count`). All
 * under one mutex, held for a few loads and stores only: never across a call into Python,
 * never while making a Python object (a collection could run code that calls back here).
 *
 * The rules, and why they keep Python's (core/module.py):
 *   - handles: C sessions get even handles, Python's are odd (both count up, never reused);
 *   - open: only SERIAL or SERIAL|RW, a non-NULL phSession, on a slot Python enabled (it does
 *     so after opening a session there itself: the token is initialized and no SO is logged
 *     in, so OPENED allows both kinds); anything else goes to Python, which answers it;
 *   - close: only a C session that is not the last session of its slot (c_count + py_count
 *     > 1, both under the mutex, so two closes cannot both believe the other stays); the
 *     last one is claimed and closed by Python (the logout of the last session, §5.6);
 *   - a C session has no operation, no object and no login state of its own: every call that
 *     could give it one names its handle and claims it first (Sessions.__missing__), and every
 *     Python function that needs all sessions of a token claims them all (sessions_of);
 *   - C_Finalize and a forked child forget every C session (reset(); the fork handler).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sessions.h"

#define SHIM_SESS_TABLE 4096u /* C sessions open at once at most (more: Python opens them) */
#define SHIM_SESS_SLOTS 64u   /* slots with C sessions */

typedef struct {
    CK_SESSION_HANDLE handle; /* 0: free */
    CK_FLAGS flags;
    unsigned slot;            /* index into shim_sess_slots */
} shim_sess_entry;

typedef struct {
    CK_SLOT_ID id;
    int enabled;              /* Python allows C_OpenSession here */
    unsigned long py_count;   /* the slot's sessions Python holds (it sets this) */
    unsigned long c_count;    /* the slot's C sessions */
} shim_sess_slot;

static pthread_mutex_t shim_sess_mu = PTHREAD_MUTEX_INITIALIZER;
static shim_sess_entry shim_sess_table[SHIM_SESS_TABLE];
static shim_sess_slot shim_sess_slots[SHIM_SESS_SLOTS];
static unsigned shim_sess_nslots;
/* Slots enabled; read without the mutex as a hint (0: both wrappers go straight to Python). */
static unsigned shim_sess_on;
/* The next C handle: even, counted up, kept across C_Finalize (never reused in a process). */
static CK_SESSION_HANDLE shim_sess_next = 2;

static void shim_sess_clear(void)
{
    memset(shim_sess_table, 0, sizeof(shim_sess_table));
    memset(shim_sess_slots, 0, sizeof(shim_sess_slots));
    shim_sess_nslots = 0;
    __atomic_store_n(&shim_sess_on, 0, __ATOMIC_RELAXED);
}

static void shim_sess_after_fork_child(void)
{
    /* A parent thread may have held the mutex; the child has no session (core/module.py
     * after_fork runs after this handler: registered before the module's own). */
    pthread_mutex_init(&shim_sess_mu, NULL);
    shim_sess_clear();
}

__attribute__((constructor)) static void shim_sess_init(void)
{
    pthread_atfork(NULL, NULL, shim_sess_after_fork_child);
}

static inline shim_sess_entry *shim_sess_entry_of(CK_SESSION_HANDLE h)
{
    return &shim_sess_table[(h >> 1) & (SHIM_SESS_TABLE - 1)];
}

static shim_sess_slot *shim_sess_slot_of(CK_SLOT_ID id)
{
    unsigned i;
    for (i = 0; i < shim_sess_nslots; i++)
        if (shim_sess_slots[i].id == id)
            return &shim_sess_slots[i];
    return NULL;
}

static void shim_sess_count_enabled(void)
{
    unsigned i, n = 0;
    for (i = 0; i < shim_sess_nslots; i++)
        n += shim_sess_slots[i].enabled != 0;
    __atomic_store_n(&shim_sess_on, n, __ATOMIC_RELAXED);
}

/* ---- called by the generated wrappers: 1 = answered (*rv set), 0 = go to Python ---- */

static int shim_sess_open(CK_SLOT_ID slot_id, CK_FLAGS flags, CK_SESSION_HANDLE_PTR ph, CK_RV *rv)
{
    shim_sess_slot *s;
    shim_sess_entry *e;
    CK_SESSION_HANDLE h;

    if (!__atomic_load_n(&shim_sess_on, __ATOMIC_RELAXED) || ph == NULL
        || (flags != CKF_SERIAL_SESSION && flags != (CKF_SERIAL_SESSION | CKF_RW_SESSION)))
        return 0;
    pthread_mutex_lock(&shim_sess_mu);
    s = shim_sess_slot_of(slot_id);
    if (s == NULL || !s->enabled) {
        pthread_mutex_unlock(&shim_sess_mu);
        return 0;
    }
    h = shim_sess_next;
    shim_sess_next += 2;
    e = shim_sess_entry_of(h);
    if (e->handle != 0) { /* an older C session holds the entry: Python opens this one */
        pthread_mutex_unlock(&shim_sess_mu);
        return 0;
    }
    e->handle = h;
    e->flags = flags;
    e->slot = (unsigned)(s - shim_sess_slots);
    s->c_count++;
    pthread_mutex_unlock(&shim_sess_mu);
    *ph = h;
    *rv = CKR_OK;
    return 1;
}

static int shim_sess_close(CK_SESSION_HANDLE h, CK_RV *rv)
{
    shim_sess_entry *e;
    shim_sess_slot *s;

    if (!__atomic_load_n(&shim_sess_on, __ATOMIC_RELAXED) || h == 0 || (h & 1))
        return 0;
    pthread_mutex_lock(&shim_sess_mu);
    e = shim_sess_entry_of(h);
    if (e->handle != h) { /* Python's (claimed), or no session: Python answers */
        pthread_mutex_unlock(&shim_sess_mu);
        return 0;
    }
    s = &shim_sess_slots[e->slot];
    if (!s->enabled || s->c_count + s->py_count <= 1) { /* the last one: Python closes (logout) */
        pthread_mutex_unlock(&shim_sess_mu);
        return 0;
    }
    e->handle = 0;
    s->c_count--;
    pthread_mutex_unlock(&shim_sess_mu);
    *rv = CKR_OK;
    return 1;
}

/* ---- called by Python (core/module.py, holding the GIL and its module lock) ---- */

/* sync(slot_id, py_count, on) -> int: Python holds py_count sessions on the slot; on: 0 stop
 * opening here, 1 open here, 2 unchanged. Answers the slot's C sessions (0 for an unknown
 * slot; `on` 1 makes it known, unless 64 slots are: then it stays Python's). */
static PyObject *shim_sess_py_sync(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[3], c = 0;
    shim_sess_slot *s;
    (void)self;
    if (!shim_ulong_args(args, nargs, 3, "sync(slot_id, py_count, on)", a))
        return NULL;
    pthread_mutex_lock(&shim_sess_mu);
    s = shim_sess_slot_of(a[0]);
    if (s == NULL && a[2] == 1 && shim_sess_nslots < SHIM_SESS_SLOTS) {
        s = &shim_sess_slots[shim_sess_nslots++];
        memset(s, 0, sizeof(*s));
        s->id = a[0];
    }
    if (s != NULL) {
        s->py_count = a[1];
        if (a[2] != 2)
            s->enabled = a[2] != 0;
        c = s->c_count;
        shim_sess_count_enabled();
    }
    pthread_mutex_unlock(&shim_sess_mu);
    return PyLong_FromUnsignedLong(c);
}

/* claim(handle) -> (slot_id, flags) or None: the C session becomes Python's (counted there). */
static PyObject *shim_sess_py_claim(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1];
    shim_sess_entry *e;
    shim_sess_slot *s;
    CK_SLOT_ID slot_id = 0;
    CK_FLAGS flags = 0;
    int found = 0;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "claim(handle)", a))
        return NULL;
    if (a[0] == 0 || (a[0] & 1))
        Py_RETURN_NONE;
    pthread_mutex_lock(&shim_sess_mu);
    e = shim_sess_entry_of(a[0]);
    if (e->handle == a[0]) {
        s = &shim_sess_slots[e->slot];
        s->c_count--;
        s->py_count++;
        slot_id = s->id;
        flags = e->flags;
        e->handle = 0;
        found = 1;
    }
    pthread_mutex_unlock(&shim_sess_mu);
    if (!found)
        Py_RETURN_NONE;
    return Py_BuildValue("(kk)", slot_id, flags);
}

/* claim_all(slot_id) -> ((handle, flags), ...): every C session of the slot becomes Python's. */
static PyObject *shim_sess_py_claim_all(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1], n = 0, i;
    shim_sess_slot *s;
    shim_sess_entry *taken = NULL;
    PyObject *out;
    unsigned j;
    int oom = 0;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "claim_all(slot_id)", a))
        return NULL;
    pthread_mutex_lock(&shim_sess_mu);
    s = shim_sess_slot_of(a[0]);
    if (s != NULL && s->c_count != 0) {
        taken = malloc(s->c_count * sizeof(*taken));
        if (taken != NULL) {
            unsigned idx = (unsigned)(s - shim_sess_slots);
            for (j = 0; j < SHIM_SESS_TABLE && n < s->c_count; j++) {
                shim_sess_entry *e = &shim_sess_table[j];
                if (e->handle != 0 && e->slot == idx) {
                    taken[n++] = *e;
                    e->handle = 0;
                }
            }
            s->c_count -= n;
            s->py_count += n;
        } else {
            oom = 1;
        }
    }
    pthread_mutex_unlock(&shim_sess_mu);
    if (oom)
        return PyErr_NoMemory();
    out = PyTuple_New((Py_ssize_t)n);
    for (i = 0; out != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue("(kk)", taken[i].handle, taken[i].flags);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, (Py_ssize_t)i, item);
    }
    free(taken);
    return out;
}

/* reset(): C_Finalize (and the Python side of a fork): no C session, no slot enabled. */
static PyObject *shim_sess_py_reset(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "reset()");
        return NULL;
    }
    pthread_mutex_lock(&shim_sess_mu);
    shim_sess_clear();
    pthread_mutex_unlock(&shim_sess_mu);
    Py_RETURN_NONE;
}

static PyMethodDef shim_sess_methods[] = {
    {"sync", (PyCFunction)(void (*)(void))shim_sess_py_sync, METH_FASTCALL, "sync(slot_id, py_count, on) -> int"},
    {"claim", (PyCFunction)(void (*)(void))shim_sess_py_claim, METH_FASTCALL, "claim(handle) -> (slot_id, flags)"},
    {"claim_all", (PyCFunction)(void (*)(void))shim_sess_py_claim_all, METH_FASTCALL,
     "claim_all(slot_id) -> ((handle, flags), ...)"},
    {"reset", (PyCFunction)(void (*)(void))shim_sess_py_reset, METH_FASTCALL, "reset()"},
    {NULL, NULL, 0, NULL},
};

int shim_sess_publish(void)
{
    PyGILState_STATE gil;
    PyObject *module;
    int ok;

    gil = PyGILState_Ensure();
    module = PyImport_AddModule("_cryptoki_shim_sessions"); /* borrowed, in sys.modules */
    ok = module != NULL && (PyObject_HasAttrString(module, "sync")
                            || PyModule_AddFunctions(module, shim_sess_methods) == 0);
    if (!ok)
        PyErr_Clear();
    PyGILState_Release(gil);
    return ok;
}
