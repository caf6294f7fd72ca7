/*
 * digest.h - SHA-1 / SHA-2 digests and HMAC on libcrypto's low-level functions, callable
 * from Python (cffi lib). Issue 25: the module's digests must never go through the host's
 * OpenSSL state (its config, default library context, providers: pkcs11-provider under
 * `default_properties = ?provider=pkcs11` would route them back into us). SHA256_Init and
 * friends touch none of that: they are plain block functions over a public struct.
 *
 * Read twice: by build_ffi.py as cffi cdef text (so no preprocessor directives here) and by
 * digest.c. `mech` is the CKM_* number of the digest (CKM_SHA_1, CKM_SHA224, CKM_SHA256,
 * CKM_SHA384, CKM_SHA512, CKM_SHA512_224, CKM_SHA512_256).
 *
 * shim_digest_ctx_size: bytes of a running digest's state for `mech` (0: not served here).
 *                       The state is the library's public SHA*_CTX struct, so it can be
 *                       copied as bytes (C_GetOperationState) and copied back.
 * shim_digest_size:     the digest length of `mech` (0: not served here).
 * shim_digest_init / _update / _final: one running digest in caller memory `ctx`.
 * shim_digest_oneshot:  the digest of one buffer (state on the C stack).
 * shim_digest_check:    1 when `ctx` is a state this code could have produced for `mech`
 *                       (lengths in range): a restored state is checked before use.
 * shim_hmac_init:       an HMAC state (inner then outer digest state, 2 * ctx_size bytes)
 *                       keyed with `key` (RFC 2104); updates go to the inner half with
 *                       shim_digest_update(mech, ctx, ...).
 * shim_hmac_final:      the full-length HMAC of the state; the state is consumed.
 * shim_hmac_oneshot:    the full-length HMAC of one buffer, continuing a copy (on the C
 *                       stack) of the prepared state `proto`; `proto` is not changed.
 * shim_digest_publish:  makes the module `_cryptoki_shim_fast` (in sys.modules) with two
 *                       METH_FASTCALL builtins, digest(mech, data) -> bytes and
 *                       hmac(mech, prepared_state, data) -> bytes: the one-shot C_Digest and
 *                       HMAC C_Sign paths in one call each, without cffi's per-call argument
 *                       tuple, GIL hand-off and output cdata (the GIL is released only for
 *                       inputs of 2 KiB and more, as hashlib does). Takes the GIL itself.
 * All return 1 on success, 0 for an unknown `mech` or a bad state.
 */

size_t shim_digest_ctx_size(unsigned long mech);
size_t shim_digest_size(unsigned long mech);
int shim_digest_init(unsigned long mech, void *ctx);
int shim_digest_update(unsigned long mech, void *ctx, const char *data, size_t len);
int shim_digest_final(unsigned long mech, void *ctx, char *out);
int shim_digest_oneshot(unsigned long mech, const char *data, size_t len, char *out);
int shim_digest_check(unsigned long mech, const void *ctx);
int shim_hmac_init(unsigned long mech, void *ctx, const char *key, size_t keylen);
int shim_hmac_final(unsigned long mech, void *ctx, char *out);
int shim_hmac_oneshot(unsigned long mech, const void *proto, const char *data, size_t len, char *out);
int shim_digest_publish(void);
