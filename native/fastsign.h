/*
 * fastsign.h - signing helpers on the system libcrypto (a private library context), callable from Python (cffi lib).
 *
 * Read twice: by build_ffi.py as cffi cdef text (so no preprocessor directives here) and by
 * fastsign.c. cffi releases the GIL around each call, so the scalar multiplication of one
 * client thread runs while another thread runs Python (issue #9).
 *
 * shim_pkey_from_der: a key handle from PKCS#8 PrivateKeyInfo DER, NULL on failure.
 * shim_pkey_free:     releases a handle (NULL is accepted).
 * shim_ecdsa_sign:    signs dgst (any length: libcrypto keeps its leftmost bits of the
 *                     order's length) and writes r||s, each left-padded to n bytes, to
 *                     out[2n]. 1 on success; 0 on failure, with out zeroed.
 * shim_fastsign_count: how many signatures the helpers produced in this process (a
 *                     diagnostic the tests read to see that this path is taken).
 * shim_ec_generate:   a new EC key pair on the OpenSSL group `group` ("P-256"): the private
 *                     scalar left-padded to n bytes in priv[n], the uncompressed point in
 *                     point[point_len = 2n + 1]. 1 on success; 0 on failure, priv cleared.
 * shim_ec_generate_count: how many key pairs shim_ec_generate made in this process.
 * shim_rsa_key_from_der: an RSA PKCS#1 v1.5 signing handle from PKCS#8 DER for the digest
 *                     `md` (pyca's name: "sha1", "sha224", "sha256", "sha384", "sha512"),
 *                     NULL on failure or another key type / digest.
 * shim_rsa_sign:      signs the digest (dlen = the digest's length) into out[n], n = the
 *                     modulus length. 1 on success; 0 on failure, out cleared.
 * shim_verify_key_from_spki: a verification handle from SubjectPublicKeyInfo DER: RSA
 *                     PKCS#1 v1.5 with the digest `md`, or EC (ECDSA) with `md` NULL.
 * shim_pkey_verify:   verifies sig (RSA: k bytes; ECDSA: DER Ecdsa-Sig-Value) over the
 *                     digest (RSA: the digest's length; ECDSA: as given, truncated to the
 *                     order like shim_ecdsa_sign). 1 valid, 0 invalid, -1 bad arguments.
 * shim_rsa_sign_count, shim_verify_count: how often these two ran (diagnostics).
 * shim_ed25519_key:   an Ed25519 handle from the 32-byte raw private (private_key 1) or
 *                     public key; NULL on failure.
 * shim_ed25519_sign / _verify: pure Ed25519 (RFC 8032) of msg[len], sig[64]; 1 on success /
 *                     a valid signature, 0 otherwise (sig cleared when signing failed).
 * shim_ed25519_count: how many Ed25519 signatures these made or found valid.
 * All of them hand the GIL entry gate over for the crypto (shim.c shim_gate_yield).
 */

void *shim_pkey_from_der(const unsigned char *der, size_t len);
void shim_pkey_free(void *key);
int shim_ecdsa_sign(void *key, const unsigned char *dgst, size_t dlen, unsigned char *out, size_t n);
unsigned long shim_fastsign_count(void);
int shim_ec_generate(const char *group, unsigned char *priv, size_t n, unsigned char *point, size_t point_len);
unsigned long shim_ec_generate_count(void);
void *shim_rsa_key_from_der(const unsigned char *der, size_t len, const char *md);
int shim_rsa_sign(void *key, const unsigned char *dgst, size_t dlen, unsigned char *out, size_t n);
void *shim_verify_key_from_spki(const unsigned char *der, size_t len, const char *md);
int shim_pkey_verify(void *key, const unsigned char *dgst, size_t dlen, const unsigned char *sig, size_t siglen);
unsigned long shim_rsa_sign_count(void);
unsigned long shim_verify_count(void);
void *shim_ed25519_key(const unsigned char *raw, size_t len, int private_key);
int shim_ed25519_sign(void *key, const unsigned char *msg, size_t len, unsigned char *sig);
int shim_ed25519_verify(void *key, const unsigned char *msg, size_t len, const unsigned char *sig);
unsigned long shim_ed25519_count(void);
