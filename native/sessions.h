/*
 * sessions.h - sessions opened and closed in C (issue 22 goal 3; docs/performance.md "Where a
 * call's time goes (the floor), per layer", docs/architecture.md): C_OpenSession and
 * C_CloseSession of a session that Python never saw are answered by sessions.c, without
 * Python and the GIL. Python stays the owner of every rule: it enables a slot only after it
 * opened a session there itself (token initialized, no SO logged in), and the first Python
 * call that names such a session (any C_* with its handle, C_GetTokenInfo, C_Login,
 * C_CloseAllSessions, C_InitToken, the close of a slot's last session) claims it from here
 * and makes it an ordinary Python session (core/module.py Module.adopt, sessions_of).
 *
 * Read twice: by build_ffi.py as cffi cdef text (so no preprocessor directives here) and by
 * sessions.c. Python calls one function through cffi:
 *
 * shim_sess_publish: makes the module `_cryptoki_shim_sessions` (in sys.modules) with the
 *                    METH_FASTCALL builtins core/module.py uses (under its module lock):
 *                    sync(slot_id, py_count, on) -> C sessions of the slot,
 *                    claim(handle) -> (slot_id, flags) or None,
 *                    claim_all(slot_id) -> ((handle, flags), ...), reset().
 *                    1 on success. Takes the GIL itself.
 *
 * The generated C_OpenSession/C_CloseSession wrappers (build_ffi.py C_FIRST) call
 * shim_sess_open/shim_sess_close (not declared to Python).
 */

int shim_sess_publish(void);
