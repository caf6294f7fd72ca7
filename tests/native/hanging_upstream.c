/* A fake upstream PKCS#11 module that hangs (tests/upstream/test_upstream_timeout.py).
 *
 * One slot with a token labelled "hanging", any PIN accepted, two mechanisms. While the file
 * named by $HANGING_UPSTREAM_FILE exists, C_GetMechanismList does not return (it polls the
 * file every 10 ms): an HSM that stopped answering. Once the file is gone it answers again,
 * so a test can watch the circuit breaker close. Every other function answers
 * CKR_FUNCTION_NOT_SUPPORTED. Built by the test with gcc -shared against native/pkcs11.h.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11.h"

static CK_FUNCTION_LIST fl;

static CK_RV not_supported(void) { return CKR_FUNCTION_NOT_SUPPORTED; }

static CK_RV initialize(CK_VOID_PTR args) { (void)args; return CKR_OK; }
static CK_RV finalize(CK_VOID_PTR reserved) { (void)reserved; return CKR_OK; }

static CK_RV get_slot_list(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
    (void)present;
    if (list != NULL) {
        if (*count < 1) { *count = 1; return CKR_BUFFER_TOO_SMALL; }
        list[0] = 7;
    }
    *count = 1;
    return CKR_OK;
}

static CK_RV get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    if (slot != 7) return CKR_SLOT_ID_INVALID;
    memset(info, ' ', sizeof(*info));
    memcpy(info->label, "hanging", 7);
    memcpy(info->serialNumber, "0000000000000001", 16);
    info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
    return CKR_OK;
}

static CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                          CK_SESSION_HANDLE_PTR session) {
    (void)flags; (void)app; (void)notify;
    if (slot != 7) return CKR_SLOT_ID_INVALID;
    *session = 1;
    return CKR_OK;
}

static CK_RV close_session(CK_SESSION_HANDLE session) { (void)session; return CKR_OK; }

static CK_RV login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len) {
    (void)session; (void)user; (void)pin; (void)len;
    return CKR_OK;
}

static CK_RV logout(CK_SESSION_HANDLE session) { (void)session; return CKR_OK; }

static const CK_MECHANISM_TYPE MECHS[] = {0x1040 /* CKM_EC_KEY_PAIR_GEN */, 0x1041 /* CKM_ECDSA */};

static CK_RV get_mechanism_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
    const char *hang = getenv("HANGING_UPSTREAM_FILE");
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    (void)slot;
    while (hang != NULL && access(hang, F_OK) == 0)
        nanosleep(&ten_ms, NULL);
    if (list != NULL) {
        if (*count < 2) { *count = 2; return CKR_BUFFER_TOO_SMALL; }
        memcpy(list, MECHS, sizeof(MECHS));
    }
    *count = 2;
    return CKR_OK;
}

static CK_RV get_mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
    (void)slot;
    info->ulMinKeySize = 256;
    info->ulMaxKeySize = 521;
    info->flags = type == 0x1040 ? CKF_GENERATE_KEY_PAIR : CKF_SIGN | CKF_VERIFY;
    return CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    void **entry = (void **)&fl.C_Initialize;
    size_t n = (sizeof(fl) - offsetof(CK_FUNCTION_LIST, C_Initialize)) / sizeof(void *);
    fl.version.major = 2;
    fl.version.minor = 40;
    for (size_t i = 0; i < n; i++)
        entry[i] = (void *)not_supported;
    fl.C_Initialize = initialize;
    fl.C_Finalize = finalize;
    fl.C_GetSlotList = get_slot_list;
    fl.C_GetTokenInfo = get_token_info;
    fl.C_OpenSession = open_session;
    fl.C_CloseSession = close_session;
    fl.C_Login = login;
    fl.C_Logout = logout;
    fl.C_GetMechanismList = get_mechanism_list;
    fl.C_GetMechanismInfo = get_mechanism_info;
    *out = &fl;
    return CKR_OK;
}
