/* lane.c - the native lane (see lane.h for the contract; docs/security.md "The native lane"
 * for the invariant and why it holds).
 *
 * Included by the cffi source after shim.c and digest.c (see build_ffi.py): the generated
 * C_* wrappers of shim_entries.inc call the shim_lane_* entry functions below before they
 * enter Python, and this file uses digest.c's one-shot digest.
 *
 * State: one slot per session, found by handle (handles are never reused in a process:
 * core/module.py counts them up), each with its own mutex held only for a few loads and
 * stores, never across a digest or a call into Python. A slot holds
 *   - arms: the (session, kind, mechanism) combinations Python answered CKR_OK for, stamped
 *     with the lane epoch of the start of that Python call; valid while the epoch is unchanged;
 *   - py_mask: the kinds that have a Python operation on the session (Python tells, on every
 *     change of its operation table: core/operations.py OpTable);
 *   - lane_mask: the kinds that have a lane operation (started here by C_DigestInit).
 * A kind has at most one operation: a lane Init needs the kind free in both masks; Python's
 * table refuses a kind that has a lane operation (py_ops answers 0: CKR_OPERATION_ACTIVE), and
 * every Python call on the session first adopts the lane operations (shim_lane_settle ->
 * shim_py_lane_adopt), so Python sees exactly the operations that exist.
 * A handle whose slot is owned by another open session (two handles equal modulo
 * SHIM_LANE_SLOTS) is simply never served here.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lane.h"

#define SHIM_LANE_SLOTS 1024u
/* Not a CKR_* value: "not handled here, go to Python". */
#define SHIM_LANE_PASS (~(CK_RV)0)

/* The kinds, as bits (core/lane.py KIND_BITS has the same values). */
enum { SHIM_LANE_DIGEST = 1, SHIM_LANE_SIGN = 2, SHIM_LANE_VERIFY = 4, SHIM_LANE_ENCRYPT = 8,
       SHIM_LANE_DECRYPT = 16 };

/* A keyed verdict (HMAC sign/verify): the key's prepared state (digest.c's HMAC inner and
 * outer digest states), copied from Python's own prepared state of that key. */
#define SHIM_LANE_KEY_STATE 512
#define SHIM_LANE_KEYED_ARMS 4
/* The CK_GCM_PARAMS the lane takes: Python's accepted IVs (mechanisms/aes.py GCM_IV_MIN..MAX,
 * 8..128 bytes) and tags (32..128 bits by 8), and an AAD of at most SHIM_LANE_GCM_AAD_MAX
 * bytes (a longer one goes to Python). */
#define SHIM_LANE_GCM_IV_MIN 8
#define SHIM_LANE_GCM_IV_MAX 128
#define SHIM_LANE_GCM_AAD_MAX 256
typedef struct {
    unsigned kind;                 /* SHIM_LANE_SIGN or SHIM_LANE_VERIFY; 0: unused */
    CK_MECHANISM_TYPE mech;        /* CKM_SHA*_HMAC */
    CK_OBJECT_HANDLE key;
    size_t len;
    unsigned char state[SHIM_LANE_KEY_STATE];
} shim_lane_keyed;

typedef struct {
    pthread_mutex_t mu;
    CK_SESSION_HANDLE handle;      /* the owner; 0: free */
    uint64_t epoch;                /* the epoch the arms were made in */
    unsigned py_mask;              /* kinds with a Python operation */
    unsigned lane_mask;            /* kinds with a lane operation (also read without the mutex) */
    unsigned digest_armed;         /* bit per digest (shim_lane_digest_index) */
    CK_MECHANISM_TYPE digest_mech; /* the lane digest operation's mechanism */
    unsigned keyed_next;           /* the arm a new one replaces (round robin) */
    shim_lane_keyed arms[SHIM_LANE_KEYED_ARMS];
    shim_lane_keyed op_sign;       /* the lane sign operation (its own copy of the key state) */
    shim_lane_keyed op_verify;     /* the lane verify operation */
    shim_lane_keyed op_encrypt;    /* the lane AES-GCM or AES-CBC-PAD encryption (state: the AES key) */
    size_t gcm_iv_len, gcm_aad_len, gcm_tag_len;
    CK_ULONG gcm_iv_bits;          /* kept as given, for an adopted operation's parameter */
    /* (a CBC_PAD encryption keeps its 16-byte IV in gcm_iv, gcm_iv_len 16, no AAD, no tag) */
    /* the last GCM context used here, keyed (its key schedule) with gcm_ctx_key: the next
     * encryption under the same key only sets a new IV (no allocation, no key expansion) */
    void *gcm_ctx;
    size_t gcm_ctx_key_len;
    unsigned char gcm_ctx_key[32];
    unsigned char gcm_iv[SHIM_LANE_GCM_IV_MAX];
    unsigned char gcm_aad[SHIM_LANE_GCM_AAD_MAX];
    /* C_GetSessionInfo: the CK_SESSION_INFO Python packed for this session, stamped with the
     * epoch of that Python call (0: none); answered while that epoch holds */
    uint64_t info_epoch;
    unsigned long info_served;     /* answers given here (for tests) */
    CK_SESSION_INFO info;
} __attribute__((aligned(128))) shim_lane_slot;

static shim_lane_slot shim_lane_slots[SHIM_LANE_SLOTS];
/* Every verdict-changing event adds 1; arms of another epoch are void. Starts at 1. */
static uint64_t shim_lane_epoch = 1;
/* Verdict-changing calls in flight (between shim_lane_change_begin and _end): while one is,
 * no lane C_*Init is served, so no Init can use an arm between that call's effect (inside
 * Python) and its closing bump. */
static unsigned long shim_lane_changing;
/* The epoch when this thread's current Python call started (the arms it makes get it). */
static __thread uint64_t shim_lane_call_epoch;
/* 0: the lane answers nothing (config [module] native_lane = false, or not enabled yet). */
static int shim_lane_on;
/* limits.DATA of the Python side: an input over it is Python's CKR_DATA_LEN_RANGE. */
static CK_ULONG shim_lane_data_limit;
static pthread_once_t shim_lane_once = PTHREAD_ONCE_INIT;

/* Python's adoption of a session's lane operations (core/lane.py adopt; embedding API). */
CK_RV shim_py_lane_adopt(CK_SESSION_HANDLE handle);

/* Slots whose arms hold key material (shim_lane_scrub walks the slots only when it is not 0). */
static unsigned long shim_lane_keyed_slots;

/* Key material goes with OPENSSL_cleanse (not optimised away), wherever it is dropped. */
static void shim_lane_drop_keyed(shim_lane_keyed *k)
{
    if (k->kind != 0 || k->len != 0)
        OPENSSL_cleanse(k, sizeof(*k));
}

static int shim_lane_has_keyed(const shim_lane_slot *s)
{
    unsigned i;
    for (i = 0; i < SHIM_LANE_KEYED_ARMS; i++)
        if (s->arms[i].kind != 0)
            return 1;
    return 0;
}

static void shim_lane_drop_gcm_ctx(shim_lane_slot *s)
{
    if (s->gcm_ctx != NULL) {
        EVP_CIPHER_CTX_free((EVP_CIPHER_CTX *)s->gcm_ctx); /* cleanses its key schedule */
        s->gcm_ctx = NULL;
        OPENSSL_cleanse(s->gcm_ctx_key, sizeof(s->gcm_ctx_key));
        s->gcm_ctx_key_len = 0;
    }
}

static void shim_lane_drop_arms(shim_lane_slot *s)
{
    unsigned i;
    s->digest_armed = 0;
    shim_lane_drop_gcm_ctx(s);
    if (!shim_lane_has_keyed(s))
        return;
    for (i = 0; i < SHIM_LANE_KEYED_ARMS; i++)
        shim_lane_drop_keyed(&s->arms[i]);
    __atomic_sub_fetch(&shim_lane_keyed_slots, 1, __ATOMIC_RELAXED);
}

static void shim_lane_end_ops(shim_lane_slot *s)
{
    __atomic_store_n(&s->lane_mask, 0, __ATOMIC_RELEASE);
    s->digest_mech = 0;
    shim_lane_drop_keyed(&s->op_sign);
    shim_lane_drop_keyed(&s->op_verify);
    shim_lane_drop_keyed(&s->op_encrypt);
    s->gcm_iv_len = s->gcm_aad_len = s->gcm_tag_len = 0;
    s->gcm_iv_bits = 0;
}

static void shim_lane_clear(shim_lane_slot *s)
{
    s->handle = 0;
    s->epoch = 0;
    s->info_epoch = 0;
    s->info_served = 0;
    s->py_mask = 0;
    shim_lane_end_ops(s);
    shim_lane_drop_arms(s);
}

static void shim_lane_after_fork_child(void)
{
    unsigned i;
    /* A parent thread may have held a slot mutex: the child makes them anew, and has no
     * session (core/module.py after_fork), so every slot is free. */
    for (i = 0; i < SHIM_LANE_SLOTS; i++) {
        pthread_mutex_init(&shim_lane_slots[i].mu, NULL);
        shim_lane_clear(&shim_lane_slots[i]);
    }
    shim_lane_keyed_slots = 0;
    shim_lane_changing = 0; /* the parent's calls in flight do not exist here */
    __atomic_add_fetch(&shim_lane_epoch, 1, __ATOMIC_SEQ_CST);
}

static void shim_lane_init_once(void)
{
    unsigned i;
    for (i = 0; i < SHIM_LANE_SLOTS; i++)
        pthread_mutex_init(&shim_lane_slots[i].mu, NULL);
    pthread_atfork(NULL, NULL, shim_lane_after_fork_child);
}

static inline shim_lane_slot *shim_lane_slot_of(CK_SESSION_HANDLE h)
{
    return &shim_lane_slots[h % SHIM_LANE_SLOTS];
}

static inline uint64_t shim_lane_current_epoch(void)
{
    return __atomic_load_n(&shim_lane_epoch, __ATOMIC_SEQ_CST);
}

static int shim_lane_digest_index(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_SHA_1: return 0;
    case CKM_SHA224: return 1;
    case CKM_SHA256: return 2;
    case CKM_SHA384: return 3;
    case CKM_SHA512: return 4;
    default: return -1;
    }
}

/* The digest of a CKM_SHA*_HMAC (the full-length ones only; _GENERAL has a parameter); 0: none. */
static CK_MECHANISM_TYPE shim_lane_hmac_digest(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_SHA_1_HMAC: return CKM_SHA_1;
    case CKM_SHA224_HMAC: return CKM_SHA224;
    case CKM_SHA256_HMAC: return CKM_SHA256;
    case CKM_SHA384_HMAC: return CKM_SHA384;
    case CKM_SHA512_HMAC: return CKM_SHA512;
    default: return 0;
    }
}

/* ---- called by the generated wrappers (shim_entries.inc), inside the fork gate ---- */

/* Every arm made before is void. */
static void shim_lane_bump(void)
{
    __atomic_add_fetch(&shim_lane_epoch, 1, __ATOMIC_SEQ_CST);
}

/* After the Python call of a verdict-changing function: the arms it voided are cleansed now
 * (a destroyed key's state does not wait in lane memory for its session to end). */
static void shim_lane_scrub(void)
{
    unsigned i;
    uint64_t now;
    shim_lane_bump();
    if (__atomic_load_n(&shim_lane_keyed_slots, __ATOMIC_RELAXED) == 0)
        return;
    now = shim_lane_current_epoch();
    for (i = 0; i < SHIM_LANE_SLOTS; i++) {
        shim_lane_slot *s = &shim_lane_slots[i];
        if (__atomic_load_n(&s->handle, __ATOMIC_RELAXED) == 0)
            continue;
        pthread_mutex_lock(&s->mu);
        if (s->epoch != now)
            shim_lane_drop_arms(s);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Around the Python call of every function not on the verdict-neutral list (build_ffi.py):
 * begin voids every arm and stops lane Inits until end, which voids the arms made meanwhile
 * (a verdict made while the change was in flight must not outlive it) and cleanses them. */
static void shim_lane_change_begin(void)
{
    __atomic_add_fetch(&shim_lane_changing, 1, __ATOMIC_SEQ_CST);
    shim_lane_bump();
}

static void shim_lane_change_end(void)
{
    shim_lane_scrub();
    __atomic_sub_fetch(&shim_lane_changing, 1, __ATOMIC_SEQ_CST);
}

/* A lane Init may use an arm of `epoch` now: no change in flight, the epoch unchanged (read
 * in this order: a change that begins after the first load moves the epoch before its effect). */
static inline int shim_lane_valid(uint64_t epoch)
{
    return __atomic_load_n(&shim_lane_changing, __ATOMIC_SEQ_CST) == 0 && epoch == shim_lane_current_epoch();
}

/* Before the Python call of a C_*Init: the epoch its arm will be stamped with. */
static inline void shim_lane_mark(void)
{
    shim_lane_call_epoch = shim_lane_current_epoch();
}

/* Before any Python call on a session: its lane operations become Python operations first. */
static void shim_lane_settle(CK_SESSION_HANDLE h)
{
    shim_lane_slot *s = shim_lane_slot_of(h);
    if (__atomic_load_n(&s->lane_mask, __ATOMIC_ACQUIRE) == 0
        || __atomic_load_n(&s->handle, __ATOMIC_RELAXED) != h)
        return;
    shim_py_lane_adopt(h);
}

/* C_CloseSession answered: the session's slot is freed (its arms were already void: the call
 * bumped the epoch). */
static void shim_lane_closed(CK_SESSION_HANDLE h)
{
    shim_lane_slot *s;
    if (!shim_lane_on)
        return;
    s = shim_lane_slot_of(h);
    pthread_mutex_lock(&s->mu);
    if (s->handle == h)
        shim_lane_clear(s);
    pthread_mutex_unlock(&s->mu);
}

static void shim_lane_reset_all(void)
{
    unsigned i;
    __atomic_add_fetch(&shim_lane_epoch, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < SHIM_LANE_SLOTS; i++) {
        shim_lane_slot *s = &shim_lane_slots[i];
        pthread_mutex_lock(&s->mu);
        shim_lane_clear(s);
        pthread_mutex_unlock(&s->mu);
    }
}

/* C_Finalize answered CKR_OK: no session is left. */
static void shim_lane_finalized(void)
{
    if (shim_lane_on)
        shim_lane_reset_all();
}

/* C_DigestInit: CKR_OK when Python answered CKR_OK for this session and mechanism in this
 * epoch and no digest is active (lane or Python); anything else goes to Python. */
static CK_RV shim_lane_digest_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism)
{
    shim_lane_slot *s;
    int idx;
    CK_RV rv = SHIM_LANE_PASS;

    if (!shim_lane_on || pMechanism == NULL || pMechanism->ulParameterLen != 0)
        return SHIM_LANE_PASS; /* NULL: the cancel of 3.0; a parameter: Python reads it */
    idx = shim_lane_digest_index(pMechanism->mechanism);
    if (idx < 0)
        return SHIM_LANE_PASS;
    s = shim_lane_slot_of(h);
    pthread_mutex_lock(&s->mu);
    if (s->handle == h && shim_lane_valid(s->epoch) && (s->digest_armed & (1u << idx))
        && !((s->py_mask | s->lane_mask) & SHIM_LANE_DIGEST)) {
        s->digest_mech = pMechanism->mechanism;
        __atomic_store_n(&s->lane_mask, s->lane_mask | SHIM_LANE_DIGEST, __ATOMIC_RELEASE);
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rv;
}

/* C_Digest of a lane digest, when every argument is one Python answers CKR_OK for with the
 * digest delivered (a buffer that fits, the input within the limit, no NULL pointer with a
 * length): the operation ends, as Python's does. Anything else (a length query, a small
 * buffer, a NULL pointer, too much data) goes to Python, which adopts the operation first and
 * answers by its own rules. */
static CK_RV shim_lane_digest(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                              CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    shim_lane_slot *s = shim_lane_slot_of(h);
    CK_MECHANISM_TYPE mech;
    size_t md_len;
    unsigned char out[64];

    if (!(__atomic_load_n(&s->lane_mask, __ATOMIC_ACQUIRE) & SHIM_LANE_DIGEST))
        return SHIM_LANE_PASS;
    if (pDigest == NULL || pulDigestLen == NULL || ulDataLen > shim_lane_data_limit
        || (ulDataLen != 0 && pData == NULL))
        return SHIM_LANE_PASS;
    pthread_mutex_lock(&s->mu);
    if (s->handle != h || !(s->lane_mask & SHIM_LANE_DIGEST)) {
        pthread_mutex_unlock(&s->mu);
        return SHIM_LANE_PASS;
    }
    mech = s->digest_mech;
    md_len = shim_digest_size(mech);
    if (md_len == 0 || md_len > sizeof(out) || *pulDigestLen < md_len) {
        pthread_mutex_unlock(&s->mu);
        return SHIM_LANE_PASS;
    }
    /* taken: the operation is this call's now (it ends whatever the digest does) */
    __atomic_store_n(&s->lane_mask, s->lane_mask & ~(unsigned)SHIM_LANE_DIGEST, __ATOMIC_RELEASE);
    s->digest_mech = 0;
    pthread_mutex_unlock(&s->mu);
    if (!shim_digest_oneshot(mech, (const char *)(ulDataLen ? pData : (CK_BYTE_PTR)""), ulDataLen,
                             (char *)out))
        return CKR_GENERAL_ERROR; /* not reached: the mechanism is one of the five above */
    memcpy(pDigest, out, md_len);
    *pulDigestLen = md_len;
    return CKR_OK;
}

/* C_SignInit / C_VerifyInit of a full-length HMAC: CKR_OK when Python answered CKR_OK for
 * this session, kind, mechanism and key in this epoch (an arm holds the key's prepared
 * state) and no operation of the kind is active; anything else goes to Python. */
static CK_RV shim_lane_mac_init(unsigned kind, CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism,
                                CK_OBJECT_HANDLE hKey)
{
    shim_lane_slot *s;
    unsigned i;
    CK_RV rv = SHIM_LANE_PASS;

    if (!shim_lane_on || pMechanism == NULL || pMechanism->ulParameterLen != 0
        || shim_lane_hmac_digest(pMechanism->mechanism) == 0)
        return SHIM_LANE_PASS;
    s = shim_lane_slot_of(h);
    pthread_mutex_lock(&s->mu);
    if (s->handle == h && shim_lane_valid(s->epoch) && !((s->py_mask | s->lane_mask) & kind)) {
        for (i = 0; i < SHIM_LANE_KEYED_ARMS; i++) {
            const shim_lane_keyed *arm = &s->arms[i];
            if (arm->kind == kind && arm->mech == pMechanism->mechanism && arm->key == hKey) {
                memcpy(kind == SHIM_LANE_SIGN ? &s->op_sign : &s->op_verify, arm, sizeof(*arm));
                __atomic_store_n(&s->lane_mask, s->lane_mask | kind, __ATOMIC_RELEASE);
                rv = CKR_OK;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rv;
}

static CK_RV shim_lane_sign_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return shim_lane_mac_init(SHIM_LANE_SIGN, h, pMechanism, hKey);
}

static CK_RV shim_lane_verify_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return shim_lane_mac_init(SHIM_LANE_VERIFY, h, pMechanism, hKey);
}

/* Takes the session's lane operation of `kind` into `op` when `fits` says the call is one the
 * lane answers (the mutex held); else PASS and the operation stays. */
static int shim_lane_take_mac(shim_lane_slot *s, CK_SESSION_HANDLE h, unsigned kind, CK_ULONG out_room,
                              int exact, shim_lane_keyed *op, size_t *mac_len)
{
    shim_lane_keyed *mine;
    size_t n;
    pthread_mutex_lock(&s->mu);
    mine = kind == SHIM_LANE_SIGN ? &s->op_sign : &s->op_verify;
    if (s->handle != h || !(s->lane_mask & kind)) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    n = shim_digest_size(shim_lane_hmac_digest(mine->mech));
    if (n == 0 || (exact ? out_room != n : out_room < n)) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    memcpy(op, mine, sizeof(*op));
    shim_lane_drop_keyed(mine);
    __atomic_store_n(&s->lane_mask, s->lane_mask & ~kind, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    *mac_len = n;
    return 1;
}

/* C_Sign of a lane HMAC: only the call Python answers CKR_OK with the MAC delivered. */
static CK_RV shim_lane_sign(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                            CK_ULONG_PTR pulSignatureLen)
{
    shim_lane_slot *s = shim_lane_slot_of(h);
    shim_lane_keyed op;
    size_t mac_len = 0;
    unsigned char out[64];
    int ok;

    if (!(__atomic_load_n(&s->lane_mask, __ATOMIC_ACQUIRE) & SHIM_LANE_SIGN))
        return SHIM_LANE_PASS;
    if (pSignature == NULL || pulSignatureLen == NULL || ulDataLen > shim_lane_data_limit
        || (ulDataLen != 0 && pData == NULL))
        return SHIM_LANE_PASS;
    if (!shim_lane_take_mac(s, h, SHIM_LANE_SIGN, *pulSignatureLen, 0, &op, &mac_len))
        return SHIM_LANE_PASS;
    ok = shim_hmac_oneshot(shim_lane_hmac_digest(op.mech), op.state,
                           (const char *)(ulDataLen ? pData : (CK_BYTE_PTR)""), ulDataLen, (char *)out);
    OPENSSL_cleanse(&op, sizeof(op));
    if (ok)
        memcpy(pSignature, out, mac_len);
    OPENSSL_cleanse(out, sizeof(out));
    if (!ok)
        return CKR_GENERAL_ERROR; /* not reached: the state was checked when it was armed */
    *pulSignatureLen = mac_len;
    return CKR_OK;
}

/* C_Verify of a lane HMAC: a signature of exactly the MAC's length, non-NULL; CKR_OK or
 * CKR_SIGNATURE_INVALID (constant-time comparison), the operation ends either way, as in
 * Python. A wrong length, NULL pointers, too much data go to Python. */
static CK_RV shim_lane_verify(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                              CK_ULONG ulSignatureLen)
{
    shim_lane_slot *s = shim_lane_slot_of(h);
    shim_lane_keyed op;
    size_t mac_len = 0;
    unsigned char out[64];
    int ok, same;

    if (!(__atomic_load_n(&s->lane_mask, __ATOMIC_ACQUIRE) & SHIM_LANE_VERIFY))
        return SHIM_LANE_PASS;
    if (pSignature == NULL || ulDataLen > shim_lane_data_limit || (ulDataLen != 0 && pData == NULL))
        return SHIM_LANE_PASS;
    if (!shim_lane_take_mac(s, h, SHIM_LANE_VERIFY, ulSignatureLen, 1, &op, &mac_len))
        return SHIM_LANE_PASS;
    ok = shim_hmac_oneshot(shim_lane_hmac_digest(op.mech), op.state,
                           (const char *)(ulDataLen ? pData : (CK_BYTE_PTR)""), ulDataLen, (char *)out);
    OPENSSL_cleanse(&op, sizeof(op));
    same = ok && CRYPTO_memcmp(out, pSignature, mac_len) == 0;
    OPENSSL_cleanse(out, sizeof(out));
    if (!ok)
        return CKR_GENERAL_ERROR; /* not reached: the state was checked when it was armed */
    return same ? CKR_OK : CKR_SIGNATURE_INVALID;
}

/* ---- AES-GCM encryption ---- */

/* AES-128/192/256-GCM, then AES-128/192/256-CBC, fetched once on fastsign.c's private context */
static EVP_CIPHER *shim_lane_gcm_ciphers[6];
static pthread_once_t shim_lane_gcm_once = PTHREAD_ONCE_INIT;

static void shim_lane_gcm_fetch(void)
{
    static const char *const names[6] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM",
                                         "AES-128-CBC", "AES-192-CBC", "AES-256-CBC"};
    OSSL_LIB_CTX *libctx = shim_fastsign_libctx();
    int i;
    for (i = 0; i < 6 && libctx != NULL; i++)
        shim_lane_gcm_ciphers[i] = EVP_CIPHER_fetch(libctx, names[i], NULL);
    ERR_clear_error();
}

/* The lane's cipher of `mech` (CKM_AES_GCM or CKM_AES_CBC_PAD) for an AES key of `key_len`
 * bytes; NULL: none (the lane never arms it, Python runs it). */
static const EVP_CIPHER *shim_lane_aes_cipher(CK_MECHANISM_TYPE mech, size_t key_len)
{
    int base = mech == CKM_AES_GCM ? 0 : mech == CKM_AES_CBC_PAD ? 3 : -1;
    pthread_once(&shim_lane_gcm_once, shim_lane_gcm_fetch);
    if (base < 0)
        return NULL;
    return key_len == 16 ? shim_lane_gcm_ciphers[base] : key_len == 24 ? shim_lane_gcm_ciphers[base + 1]
         : key_len == 32 ? shim_lane_gcm_ciphers[base + 2] : NULL;
}

static const EVP_CIPHER *shim_lane_gcm_cipher(size_t key_len)
{
    return shim_lane_aes_cipher(CKM_AES_GCM, key_len);
}

/* The CK_GCM_PARAMS the lane takes: exactly a subset of what Python accepts (abi/params.py
 * read_gcm, mechanisms/aes.py _gcm): the struct's size, an IV of 8..128 bytes, tag bits
 * 32..128 by 8, an AAD up to SHIM_LANE_GCM_AAD_MAX, no NULL pointer with a length.
 * ulIvBits is not read (neither does Python). */
static int shim_lane_gcm_params_ok(CK_MECHANISM_PTR m)
{
    const CK_GCM_PARAMS *g = (const CK_GCM_PARAMS *)m->pParameter;
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_GCM_PARAMS))
        return 0;
    if (g->pIv == NULL || g->ulIvLen < SHIM_LANE_GCM_IV_MIN || g->ulIvLen > SHIM_LANE_GCM_IV_MAX)
        return 0;
    if (g->ulAADLen > SHIM_LANE_GCM_AAD_MAX || (g->ulAADLen != 0 && g->pAAD == NULL))
        return 0;
    return g->ulTagBits >= 32 && g->ulTagBits <= 128 && g->ulTagBits % 8 == 0;
}

/* The CKM_AES_CBC_PAD parameter the lane takes: exactly a 16-byte IV (abi/params.py
 * read_bytes_param, mechanisms/aes.py _iv16); anything else goes to Python. */
#define SHIM_LANE_CBC_IV 16
static int shim_lane_cbc_params_ok(CK_MECHANISM_PTR m)
{
    return m->pParameter != NULL && m->ulParameterLen == SHIM_LANE_CBC_IV;
}

/* C_EncryptInit of AES-GCM or AES-CBC-PAD: CKR_OK when Python answered CKR_OK for this session
 * and key with this mechanism in this epoch, the parameter is one the lane takes, and no
 * encryption is active. */
static CK_RV shim_lane_encrypt_init(CK_SESSION_HANDLE h, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    shim_lane_slot *s;
    const CK_GCM_PARAMS *g = NULL;
    CK_MECHANISM_TYPE mech;
    unsigned i;
    CK_RV rv = SHIM_LANE_PASS;

    if (!shim_lane_on || pMechanism == NULL)
        return SHIM_LANE_PASS;
    mech = pMechanism->mechanism;
    if (mech == CKM_AES_GCM) {
        if (!shim_lane_gcm_params_ok(pMechanism))
            return SHIM_LANE_PASS;
        g = (const CK_GCM_PARAMS *)pMechanism->pParameter;
    } else if (mech != CKM_AES_CBC_PAD || !shim_lane_cbc_params_ok(pMechanism)) {
        return SHIM_LANE_PASS;
    }
    s = shim_lane_slot_of(h);
    pthread_mutex_lock(&s->mu);
    if (s->handle == h && shim_lane_valid(s->epoch) && !((s->py_mask | s->lane_mask) & SHIM_LANE_ENCRYPT)) {
        for (i = 0; i < SHIM_LANE_KEYED_ARMS; i++) {
            const shim_lane_keyed *arm = &s->arms[i];
            if (arm->kind == SHIM_LANE_ENCRYPT && arm->mech == mech && arm->key == hKey) {
                memcpy(&s->op_encrypt, arm, sizeof(*arm));
                if (g == NULL) { /* CBC_PAD: the IV only */
                    memcpy(s->gcm_iv, pMechanism->pParameter, SHIM_LANE_CBC_IV);
                    s->gcm_iv_len = SHIM_LANE_CBC_IV;
                    s->gcm_aad_len = s->gcm_tag_len = 0;
                    s->gcm_iv_bits = 0;
                } else {
                    memcpy(s->gcm_iv, g->pIv, g->ulIvLen);
                    s->gcm_iv_len = g->ulIvLen;
                    if (g->ulAADLen)
                        memcpy(s->gcm_aad, g->pAAD, g->ulAADLen);
                    s->gcm_aad_len = g->ulAADLen;
                    s->gcm_tag_len = g->ulTagBits / 8;
                    s->gcm_iv_bits = g->ulIvBits;
                }
                __atomic_store_n(&s->lane_mask, s->lane_mask | SHIM_LANE_ENCRYPT, __ATOMIC_RELEASE);
                rv = CKR_OK;
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rv;
}

/* One AES-GCM encryption: out = ciphertext || the first tag_len bytes of the tag. `ctx` is
 * new (`fresh`: the cipher and key are set) or was last keyed with this same key (only the IV
 * is set, as OpenSSL's GCM examples reuse a context). */
static int shim_lane_gcm_encrypt(EVP_CIPHER_CTX *ctx, int fresh, const shim_lane_keyed *key,
                                 const unsigned char *iv, size_t iv_len, const unsigned char *aad,
                                 size_t aad_len, size_t tag_len, const unsigned char *in, size_t in_len,
                                 unsigned char *out)
{
    OSSL_PARAM params[2];
    unsigned char tag[16];
    size_t ivl = iv_len;
    int n = 0, ok;

    params[0] = OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &ivl);
    params[1] = OSSL_PARAM_construct_end();
    ok = (!fresh || EVP_EncryptInit_ex2(ctx, shim_lane_gcm_cipher(key->len), NULL, NULL, NULL))
         && EVP_CIPHER_CTX_set_params(ctx, params)
         && EVP_EncryptInit_ex2(ctx, NULL, fresh ? key->state : NULL, iv, NULL)
         && (aad_len == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len))
         && (in_len == 0 || EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len))
         && EVP_EncryptFinal_ex(ctx, out + in_len, &n)
         && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) > 0;
    if (ok)
        memcpy(out + in_len, tag, tag_len);
    OPENSSL_cleanse(tag, sizeof(tag));
    ERR_clear_error();
    return ok;
}

/* One AES-CBC encryption with PKCS#7 padding (OpenSSL's default for CBC): out gets
 * (in_len / 16 + 1) * 16 bytes. A new context each time (a CBC context is not kept). */
static int shim_lane_cbc_pad_encrypt(const shim_lane_keyed *key, const unsigned char *iv,
                                     const unsigned char *in, size_t in_len, unsigned char *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, m = 0, ok;
    ok = ctx != NULL
         && EVP_EncryptInit_ex2(ctx, shim_lane_aes_cipher(CKM_AES_CBC_PAD, key->len), key->state, iv, NULL)
         && (in_len == 0 || EVP_EncryptUpdate(ctx, out, &n, in, (int)in_len))
         && EVP_EncryptFinal_ex(ctx, out + n, &m)
         && (size_t)(n + m) == (in_len / 16 + 1) * 16;
    EVP_CIPHER_CTX_free(ctx); /* cleanses its key schedule */
    ERR_clear_error();
    return ok;
}

/* C_Encrypt of a lane AES-CBC-PAD operation (the mutex held, the operation taken): see
 * shim_lane_encrypt. */
static CK_RV shim_lane_encrypt_cbc(shim_lane_slot *s, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                   CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    shim_lane_keyed key;
    unsigned char iv[SHIM_LANE_CBC_IV];
    int ok;
    memcpy(&key, &s->op_encrypt, sizeof(key));
    memcpy(iv, s->gcm_iv, sizeof(iv));
    shim_lane_drop_keyed(&s->op_encrypt);
    s->gcm_iv_len = 0;
    __atomic_store_n(&s->lane_mask, s->lane_mask & ~(unsigned)SHIM_LANE_ENCRYPT, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    ok = shim_lane_cbc_pad_encrypt(&key, iv, ulDataLen ? pData : (CK_BYTE_PTR)"", ulDataLen, pEncryptedData);
    OPENSSL_cleanse(&key, sizeof(key));
    if (!ok)
        return CKR_GENERAL_ERROR; /* not reached: the key's length was checked when it was armed */
    *pulEncryptedDataLen = (ulDataLen / 16 + 1) * 16;
    return CKR_OK;
}

/* C_Encrypt of a lane AES-GCM or AES-CBC-PAD: only the call Python answers CKR_OK with the
 * output delivered (a buffer of at least data + tag bytes, or the padded length, data within
 * the limit and an int, no NULL pointer with a length); anything else goes to Python, which
 * adopts the operation first. */
static CK_RV shim_lane_encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                               CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    shim_lane_slot *s = shim_lane_slot_of(h);
    shim_lane_keyed key;
    unsigned char iv[SHIM_LANE_GCM_IV_MAX], aad[SHIM_LANE_GCM_AAD_MAX];
    size_t iv_len, aad_len, tag_len;
    EVP_CIPHER_CTX *ctx;
    int ok, fresh;
    uint64_t epoch;

    if (!(__atomic_load_n(&s->lane_mask, __ATOMIC_ACQUIRE) & SHIM_LANE_ENCRYPT))
        return SHIM_LANE_PASS;
    if (pEncryptedData == NULL || pulEncryptedDataLen == NULL || ulDataLen > shim_lane_data_limit
        || ulDataLen > (CK_ULONG)INT32_MAX - 16 || (ulDataLen != 0 && pData == NULL))
        return SHIM_LANE_PASS;
    /* Output overlapping the input other than exactly in place: Python copies the input first
     * and answers; libcrypto would refuse a partial overlap. */
    if (ulDataLen != 0 && pEncryptedData != pData
        && (uintptr_t)pEncryptedData < (uintptr_t)pData + ulDataLen
        && (uintptr_t)pData < (uintptr_t)pEncryptedData + ulDataLen + 16)
        return SHIM_LANE_PASS;
    pthread_mutex_lock(&s->mu);
    if (s->handle != h || !(s->lane_mask & SHIM_LANE_ENCRYPT)
        || *pulEncryptedDataLen < (s->op_encrypt.mech == CKM_AES_CBC_PAD ? (ulDataLen / 16 + 1) * 16
                                                                         : ulDataLen + s->gcm_tag_len)) {
        pthread_mutex_unlock(&s->mu);
        return SHIM_LANE_PASS;
    }
    if (s->op_encrypt.mech == CKM_AES_CBC_PAD)
        return shim_lane_encrypt_cbc(s, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
    memcpy(&key, &s->op_encrypt, sizeof(key));
    iv_len = s->gcm_iv_len, aad_len = s->gcm_aad_len, tag_len = s->gcm_tag_len;
    memcpy(iv, s->gcm_iv, iv_len);
    memcpy(aad, s->gcm_aad, aad_len);
    shim_lane_drop_keyed(&s->op_encrypt);
    s->gcm_iv_len = s->gcm_aad_len = s->gcm_tag_len = 0;
    __atomic_store_n(&s->lane_mask, s->lane_mask & ~(unsigned)SHIM_LANE_ENCRYPT, __ATOMIC_RELEASE);
    /* the session's cached context, taken (this thread's alone until it is given back) */
    ctx = (EVP_CIPHER_CTX *)s->gcm_ctx;
    fresh = ctx == NULL || s->gcm_ctx_key_len != key.len || CRYPTO_memcmp(s->gcm_ctx_key, key.state, key.len) != 0;
    s->gcm_ctx = NULL;
    OPENSSL_cleanse(s->gcm_ctx_key, sizeof(s->gcm_ctx_key));
    s->gcm_ctx_key_len = 0;
    epoch = shim_lane_current_epoch();
    pthread_mutex_unlock(&s->mu);
    if (ctx != NULL && fresh) {
        EVP_CIPHER_CTX_free(ctx);
        ctx = NULL;
    }
    if (ctx == NULL)
        ctx = EVP_CIPHER_CTX_new();
    ok = ctx != NULL && shim_lane_gcm_encrypt(ctx, fresh, &key, iv, iv_len, aad, aad_len, tag_len, pData,
                                              ulDataLen, pEncryptedData);
    /* given back only if nothing voided the arms meanwhile (else its key schedule goes now) */
    if (ctx != NULL) {
        pthread_mutex_lock(&s->mu);
        if (ok && s->handle == h && s->gcm_ctx == NULL && epoch == shim_lane_current_epoch()
            && shim_lane_has_keyed(s)) {
            s->gcm_ctx = ctx;
            memcpy(s->gcm_ctx_key, key.state, key.len);
            s->gcm_ctx_key_len = key.len;
            ctx = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        EVP_CIPHER_CTX_free(ctx);
    }
    OPENSSL_cleanse(&key, sizeof(key));
    if (!ok)
        return CKR_GENERAL_ERROR;
    *pulEncryptedDataLen = ulDataLen + tag_len;
    return CKR_OK;
}

/* ---- C_GetSessionInfo ---- */

/* C_GetSessionInfo: the CK_SESSION_INFO Python answered for this session, while the epoch of
 * that answer holds and no verdict-changing call is in flight (a login, logout, close or
 * C_InitToken moves the epoch: the state it holds may change). A NULL pInfo, or a session
 * without a valid answer, goes to Python. */
static CK_RV shim_lane_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR pInfo)
{
    shim_lane_slot *s;
    CK_RV rv = SHIM_LANE_PASS;

    if (!shim_lane_on || pInfo == NULL)
        return SHIM_LANE_PASS;
    s = shim_lane_slot_of(h);
    pthread_mutex_lock(&s->mu);
    if (s->handle == h && s->info_epoch != 0 && shim_lane_valid(s->info_epoch)) {
        *pInfo = s->info;
        s->info_served++;
        rv = CKR_OK;
    }
    pthread_mutex_unlock(&s->mu);
    return rv;
}

/* ---- the Python side's builtins (module _cryptoki_shim_lane, see lane.h) ---- */

/* enable(on, data_limit): at C_Initialize, from [module] native_lane. */
static PyObject *shim_lane_py_enable(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[2];
    (void)self;
    if (!shim_ulong_args(args, nargs, 2, "enable(on, data_limit)", a))
        return NULL;
    shim_lane_reset_all();
    shim_lane_data_limit = a[1];
    __atomic_store_n(&shim_lane_on, a[0] != 0, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

/* py_ops(handle, mask) -> bool: the kinds with a Python operation are now `mask`. False (and
 * nothing changed) when a kind it adds has a lane operation: the caller answers
 * CKR_OPERATION_ACTIVE (the lane's C_*Init came first). A free slot is taken. */
static PyObject *shim_lane_py_py_ops(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[2];
    shim_lane_slot *s;
    int ok = 1;
    (void)self;
    if (!shim_ulong_args(args, nargs, 2, "py_ops(handle, mask)", a))
        return NULL;
    if (a[0] == 0)
        Py_RETURN_TRUE;
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    if (s->handle == 0 && a[1] != 0) {
        s->handle = a[0];
        s->epoch = 0;
    }
    if (s->handle == a[0]) {
        if ((unsigned)a[1] & ~s->py_mask & s->lane_mask)
            ok = 0;
        else
            s->py_mask = (unsigned)a[1];
    }
    pthread_mutex_unlock(&s->mu);
    if (ok)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* arm_digest(handle, mech, mask) -> bool: Python's C_DigestInit answered CKR_OK for `mech` on
 * this session; `mask` is its table's kinds now. Void (False) when the epoch moved since the
 * call started, the slot belongs to another session, or the mechanism is not served here. */
static PyObject *shim_lane_py_arm_digest(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[3];
    shim_lane_slot *s;
    int idx, ok = 0;
    uint64_t epoch = shim_lane_call_epoch;
    (void)self;
    if (!shim_ulong_args(args, nargs, 3, "arm_digest(handle, mech, mask)", a))
        return NULL;
    idx = shim_lane_digest_index(a[1]);
    if (!shim_lane_on || idx < 0 || a[0] == 0 || epoch == 0)
        Py_RETURN_FALSE;
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    if (s->handle == 0)
        s->handle = a[0];
    if (s->handle == a[0] && epoch == shim_lane_current_epoch()) {
        if (s->epoch != epoch) {
            s->digest_armed = 0;
            s->epoch = epoch;
        }
        s->digest_armed |= 1u << idx;
        s->py_mask = (unsigned)a[2];
        ok = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (ok)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* arm_info(handle, info) -> bool: Python's C_GetSessionInfo answered CKR_OK for this session
 * with `info` (a packed CK_SESSION_INFO). Void (False) when the epoch moved since the call
 * started or the slot belongs to another session. */
static PyObject *shim_lane_py_arm_info(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long handle;
    shim_lane_slot *s;
    Py_buffer info;
    int ok = 0;
    uint64_t epoch = shim_lane_call_epoch;
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "arm_info(handle, info)");
        return NULL;
    }
    if (!shim_ulong_args(args, 1, 1, "arm_info", &handle))
        return NULL;
    if (PyObject_GetBuffer(args[1], &info, PyBUF_SIMPLE) != 0)
        return NULL;
    if (shim_lane_on && handle != 0 && epoch != 0 && (size_t)info.len == sizeof(CK_SESSION_INFO)) {
        s = shim_lane_slot_of(handle);
        pthread_mutex_lock(&s->mu);
        if (s->handle == 0)
            s->handle = handle;
        if (s->handle == handle && epoch == shim_lane_current_epoch()) {
            memcpy(&s->info, info.buf, sizeof(CK_SESSION_INFO));
            s->info_epoch = epoch;
            ok = 1;
        }
        pthread_mutex_unlock(&s->mu);
    }
    PyBuffer_Release(&info);
    if (ok)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* Is `state` what an arm of (kind, mech) holds? HMAC: a prepared state digest.c could have
 * made (checked as digest.c checks a restored one); AES-GCM: an AES key's length. */
static int shim_lane_state_ok(unsigned long kind, CK_MECHANISM_TYPE mech, const Py_buffer *state)
{
    CK_MECHANISM_TYPE dmech = shim_lane_hmac_digest(mech);
    size_t half = shim_digest_ctx_size(dmech);
    if (kind == SHIM_LANE_ENCRYPT) /* (no cipher on the private context: never armed, Python runs it) */
        return (state->len == 16 || state->len == 24 || state->len == 32)
               && shim_lane_aes_cipher(mech, (size_t)state->len) != NULL;
    return (kind == SHIM_LANE_SIGN || kind == SHIM_LANE_VERIFY) && dmech != 0 && half != 0
           && (size_t)state->len == 2 * half && 2 * half <= SHIM_LANE_KEY_STATE
           && shim_digest_check(dmech, state->buf) && shim_digest_check(dmech, (const char *)state->buf + half);
}

/* arm_key(handle, kind, mech, key, state, mask) -> bool: Python's C_SignInit/C_VerifyInit of a
 * full-length HMAC, or its C_EncryptInit of AES-GCM, answered CKR_OK for this session and
 * session key of the software backend; `state` is the key's prepared HMAC state or the AES
 * key (shim_lane_state_ok), `mask` the table's kinds. */
static PyObject *shim_lane_py_arm_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[4];
    shim_lane_slot *s;
    Py_buffer state;
    unsigned long mask;
    unsigned i;
    int ok = 0;
    uint64_t epoch = shim_lane_call_epoch;
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "arm_key(handle, kind, mech, key, state, mask)");
        return NULL;
    }
    if (!shim_ulong_args(args, 4, 4, "arm_key", a))
        return NULL;
    mask = PyLong_AsUnsignedLong(args[5]);
    if (mask == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    if (PyObject_GetBuffer(args[4], &state, PyBUF_SIMPLE) != 0)
        return NULL;
    if (shim_lane_on && a[0] != 0 && epoch != 0 && shim_lane_state_ok(a[1], a[2], &state)) {
        s = shim_lane_slot_of(a[0]);
        pthread_mutex_lock(&s->mu);
        if (s->handle == 0)
            s->handle = a[0];
        if (s->handle == a[0] && epoch == shim_lane_current_epoch()) {
            shim_lane_keyed *arm = NULL;
            if (s->epoch != epoch) {
                shim_lane_drop_arms(s);
                s->epoch = epoch;
            }
            for (i = 0; i < SHIM_LANE_KEYED_ARMS && arm == NULL; i++)
                if (s->arms[i].kind == a[1] && s->arms[i].mech == a[2] && s->arms[i].key == a[3])
                    arm = &s->arms[i];
            if (!shim_lane_has_keyed(s))
                __atomic_add_fetch(&shim_lane_keyed_slots, 1, __ATOMIC_RELAXED);
            if (arm == NULL)
                arm = &s->arms[s->keyed_next++ % SHIM_LANE_KEYED_ARMS];
            shim_lane_drop_keyed(arm);
            arm->kind = (unsigned)a[1];
            arm->mech = a[2];
            arm->key = a[3];
            arm->len = (size_t)state.len;
            memcpy(arm->state, state.buf, (size_t)state.len);
            s->py_mask = (unsigned)mask;
            ok = 1;
        }
        pthread_mutex_unlock(&s->mu);
    }
    PyBuffer_Release(&state);
    if (ok)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* take(handle) -> ((kind_bit, mech, key, param), ...): the session's lane operations, handed
 * to Python (their kinds move to py_mask in the same step: no lane Init can slip in between;
 * their key state is cleansed: Python makes its own context). key 0 for a digest; param
 * (iv, aad, tag_bits, iv_bits) for an AES-GCM encryption, the IV (bytes) for an AES-CBC-PAD
 * one, else None. */
static PyObject *shim_lane_py_take(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1];
    shim_lane_slot *s;
    unsigned long ops[4][3];
    unsigned char iv[SHIM_LANE_GCM_IV_MAX], aad[SHIM_LANE_GCM_AAD_MAX];
    size_t iv_len = 0, aad_len = 0, tag_len = 0;
    unsigned long iv_bits = 0;
    int n = 0, i, gcm = -1, cbc = 0;
    PyObject *out;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "take(handle)", a))
        return NULL;
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    if (s->handle == a[0] && s->lane_mask != 0) {
        if (s->lane_mask & SHIM_LANE_DIGEST) {
            ops[n][0] = SHIM_LANE_DIGEST, ops[n][1] = s->digest_mech, ops[n][2] = 0;
            n++;
        }
        if (s->lane_mask & SHIM_LANE_SIGN) {
            ops[n][0] = SHIM_LANE_SIGN, ops[n][1] = s->op_sign.mech, ops[n][2] = s->op_sign.key;
            n++;
        }
        if (s->lane_mask & SHIM_LANE_VERIFY) {
            ops[n][0] = SHIM_LANE_VERIFY, ops[n][1] = s->op_verify.mech, ops[n][2] = s->op_verify.key;
            n++;
        }
        if (s->lane_mask & SHIM_LANE_ENCRYPT) {
            ops[n][0] = SHIM_LANE_ENCRYPT, ops[n][1] = s->op_encrypt.mech, ops[n][2] = s->op_encrypt.key;
            cbc = s->op_encrypt.mech == CKM_AES_CBC_PAD;
            gcm = n++;
            iv_len = s->gcm_iv_len, aad_len = s->gcm_aad_len, tag_len = s->gcm_tag_len;
            iv_bits = s->gcm_iv_bits;
            memcpy(iv, s->gcm_iv, iv_len);
            memcpy(aad, s->gcm_aad, aad_len);
        }
        s->py_mask |= s->lane_mask;
        shim_lane_end_ops(s);
    }
    pthread_mutex_unlock(&s->mu);
    out = PyTuple_New(n);
    for (i = 0; out != NULL && i < n; i++) {
        /* (no "y#": this file is compiled without PY_SSIZE_T_CLEAN, shim.c includes Python.h) */
        PyObject *item = i == gcm && cbc
            ? Py_BuildValue("(kkkN)", ops[i][0], ops[i][1], ops[i][2],
                            PyBytes_FromStringAndSize((const char *)iv, (Py_ssize_t)iv_len))
            : i == gcm
            ? Py_BuildValue("(kkk(NNkk))", ops[i][0], ops[i][1], ops[i][2],
                            PyBytes_FromStringAndSize((const char *)iv, (Py_ssize_t)iv_len),
                            PyBytes_FromStringAndSize((const char *)aad, (Py_ssize_t)aad_len),
                            (unsigned long)(tag_len * 8), iv_bits)
            : Py_BuildValue("(kkkO)", ops[i][0], ops[i][1], ops[i][2], Py_None);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

/* cancel(handle): C_Logout ended every operation of the session; the lane's end too. */
static PyObject *shim_lane_py_cancel(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1];
    shim_lane_slot *s;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "cancel(handle)", a))
        return NULL;
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    if (s->handle == a[0])
        shim_lane_end_ops(s);
    pthread_mutex_unlock(&s->mu);
    Py_RETURN_NONE;
}

/* forget(handle): the session ended without C_CloseSession (C_CloseAllSessions, a token
 * re-initialized elsewhere): its slot is freed and every arm is void. */
static PyObject *shim_lane_py_forget(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1];
    shim_lane_slot *s;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "forget(handle)", a))
        return NULL;
    shim_lane_bump();
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    if (s->handle == a[0])
        shim_lane_clear(s);
    pthread_mutex_unlock(&s->mu);
    Py_RETURN_NONE;
}

/* bump(): a change Python made that may change a verdict (every arm is void). */
static PyObject *shim_lane_py_bump(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "bump()");
        return NULL;
    }
    shim_lane_bump();
    Py_RETURN_NONE;
}

/* reset(): every slot freed (a forked child in a Python host, C_Finalize). */
static PyObject *shim_lane_py_reset(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "reset()");
        return NULL;
    }
    shim_lane_reset_all();
    Py_RETURN_NONE;
}

/* state(handle) -> (owned, epoch_valid, py_mask, lane_mask, digest_armed, info_valid,
 * info_served): for tests. */
static PyObject *shim_lane_py_state(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long a[1];
    shim_lane_slot *s;
    PyObject *out;
    (void)self;
    if (!shim_ulong_args(args, nargs, 1, "state(handle)", a))
        return NULL;
    s = shim_lane_slot_of(a[0]);
    pthread_mutex_lock(&s->mu);
    out = Py_BuildValue("(iiIIIik)", s->handle == a[0], s->handle == a[0] && s->epoch == shim_lane_current_epoch(),
                        s->handle == a[0] ? s->py_mask : 0u, s->handle == a[0] ? s->lane_mask : 0u,
                        s->handle == a[0] ? s->digest_armed : 0u,
                        s->handle == a[0] && s->info_epoch != 0 && shim_lane_valid(s->info_epoch),
                        s->handle == a[0] ? s->info_served : 0ul);
    pthread_mutex_unlock(&s->mu);
    return out;
}

/* changing() -> int: verdict-changing calls in flight now (for tests). */
static PyObject *shim_lane_py_changing(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    (void)args;
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "changing()");
        return NULL;
    }
    return PyLong_FromUnsignedLong(__atomic_load_n(&shim_lane_changing, __ATOMIC_SEQ_CST));
}

static PyMethodDef shim_lane_methods[] = {
    {"enable", (PyCFunction)(void (*)(void))shim_lane_py_enable, METH_FASTCALL, "enable(on, data_limit)"},
    {"py_ops", (PyCFunction)(void (*)(void))shim_lane_py_py_ops, METH_FASTCALL, "py_ops(handle, mask) -> bool"},
    {"arm_digest", (PyCFunction)(void (*)(void))shim_lane_py_arm_digest, METH_FASTCALL,
     "arm_digest(handle, mech, mask) -> bool"},
    {"arm_key", (PyCFunction)(void (*)(void))shim_lane_py_arm_key, METH_FASTCALL,
     "arm_key(handle, kind, mech, key, state, mask) -> bool"},
    {"arm_info", (PyCFunction)(void (*)(void))shim_lane_py_arm_info, METH_FASTCALL, "arm_info(handle, info) -> bool"},
    {"take", (PyCFunction)(void (*)(void))shim_lane_py_take, METH_FASTCALL, "take(handle) -> ((kind, mech, key, param), ...)"},
    {"cancel", (PyCFunction)(void (*)(void))shim_lane_py_cancel, METH_FASTCALL, "cancel(handle)"},
    {"forget", (PyCFunction)(void (*)(void))shim_lane_py_forget, METH_FASTCALL, "forget(handle)"},
    {"bump", (PyCFunction)(void (*)(void))shim_lane_py_bump, METH_FASTCALL, "bump()"},
    {"reset", (PyCFunction)(void (*)(void))shim_lane_py_reset, METH_FASTCALL, "reset()"},
    {"state", (PyCFunction)(void (*)(void))shim_lane_py_state, METH_FASTCALL, "state(handle) -> tuple"},
    {"changing", (PyCFunction)(void (*)(void))shim_lane_py_changing, METH_FASTCALL, "changing() -> int"},
    {NULL, NULL, 0, NULL},
};

int shim_lane_publish(void)
{
    PyGILState_STATE gil;
    PyObject *module;
    int ok;

    pthread_once(&shim_lane_once, shim_lane_init_once);
    gil = PyGILState_Ensure();
    module = PyImport_AddModule("_cryptoki_shim_lane"); /* borrowed, in sys.modules */
    ok = module != NULL && (PyObject_HasAttrString(module, "enable")
                            || PyModule_AddFunctions(module, shim_lane_methods) == 0);
    if (!ok)
        PyErr_Clear();
    PyGILState_Release(gil);
    return ok;
}
