/*
 * lane.h - the native lane (issue 22; docs/security.md "The native lane", docs/architecture.md):
 * whole single-part operations (C_DigestInit + C_Digest, HMAC C_SignInit/C_VerifyInit + C_Sign/
 * C_Verify, AES-GCM and AES-CBC-PAD C_EncryptInit + C_Encrypt, a repeated C_GetSessionInfo)
 * answered in C, without Python and the GIL, only where Python already made the same call's
 * verdict on the same session and nothing that could change it has happened since (the lane
 * epoch). Python stays the only authority: the lane repeats a verdict, it never makes one.
 *
 * Read twice: by build_ffi.py as cffi cdef text (so no preprocessor directives here) and by
 * lane.c. Python calls one function through cffi:
 *
 * shim_lane_publish: makes the module `_cryptoki_shim_lane` (in sys.modules) with the
 *                    METH_FASTCALL builtins the Python side uses (core/lane.py, installed by
 *                    abi/lane.py): enable(on), py_ops(handle, mask), arm_digest(handle, mech,
 *                    mask), arm_key(handle, kind, mech, key, state, mask), arm_info(handle,
 *                    info), take(handle), cancel(handle), forget(handle), bump(), reset(),
 *                    and for tests state(handle), changing().
 *                    1 on success. Takes the GIL itself.
 *
 * The generated C_* wrappers (build_ffi.py) call the rest (not declared to Python).
 */

int shim_lane_publish(void);
