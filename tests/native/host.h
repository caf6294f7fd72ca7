/* Shared helpers of the C host programs in tests/native (compiled by tests/test_native_hosts.py).
 *
 * A host is what a real PKCS#11 client does: dlopen the module (RTLD_LOCAL by default, as
 * p11-kit and OpenSC do), take the function lists, call through them. Each failure prints
 * one "FAIL ..." line on stdout and exits 1; the pytest driver shows that line. Results a
 * driver wants to parse go to stdout as "key value" lines; the library itself must never
 * write to stdout or stderr (the drivers check stderr is empty).
 */
#ifndef CRYPTOKI_SHIM_TEST_HOST_H
#define CRYPTOKI_SHIM_TEST_HOST_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11.h"

#define SO_PIN "12345678"
#define USER_PIN "1234"

#define FAIL(...)                                                                      \
    do {                                                                               \
        printf("FAIL %s:%d: ", __FILE__, __LINE__);                                    \
        printf(__VA_ARGS__);                                                           \
        printf("\n");                                                                  \
        fflush(stdout);                                                                \
        exit(1);                                                                       \
    } while (0)

/* Call expr (a CK_RV), require `expected`. */
#define EXPECT_RV(expected, expr)                                                      \
    do {                                                                               \
        CK_RV rv_ = (expr);                                                            \
        if (rv_ != (CK_RV)(expected))                                                  \
            FAIL("%s -> 0x%lx, expected 0x%lx", #expr, (unsigned long)rv_,             \
                 (unsigned long)(expected));                                           \
    } while (0)

#define CHECK(expr) EXPECT_RV(CKR_OK, expr)

typedef struct {
    void *handle;
    CK_FUNCTION_LIST_PTR fl240;      /* from C_GetFunctionList */
    CK_FUNCTION_LIST_3_0_PTR fl30;   /* from C_GetInterface("PKCS 11", 3.0): a 3.0 client */
    CK_FUNCTION_LIST_3_2_PTR fl32;   /* from C_GetInterface(NULL, NULL): the default, 3.2 */
} host_module;

static inline host_module host_load(const char *path, int flags)
{
    host_module m;
    CK_C_GetFunctionList get_list;
    CK_C_GetInterface get_interface;
    CK_INTERFACE_PTR itf = NULL, itf30 = NULL;
    CK_VERSION v30 = {3, 0};

    memset(&m, 0, sizeof(m));
    m.handle = dlopen(path, flags);
    if (m.handle == NULL)
        FAIL("dlopen %s: %s", path, dlerror());
    get_list = (CK_C_GetFunctionList)dlsym(m.handle, "C_GetFunctionList");
    get_interface = (CK_C_GetInterface)dlsym(m.handle, "C_GetInterface");
    if (get_list == NULL || get_interface == NULL)
        FAIL("dlsym: %s", dlerror());
    CHECK(get_list(&m.fl240));
    CHECK(get_interface(NULL, NULL, &itf, 0));
    CHECK(get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &itf30, 0));
    if (m.fl240 == NULL || itf == NULL || itf->pFunctionList == NULL || itf30 == NULL
        || itf30->pFunctionList == NULL)
        FAIL("NULL function list");
    m.fl32 = (CK_FUNCTION_LIST_3_2_PTR)itf->pFunctionList;
    m.fl30 = (CK_FUNCTION_LIST_3_0_PTR)itf30->pFunctionList;
    return m;
}

/* C_InitToken + SO login + C_InitPIN on `slot`, as pkcs11-tool --init-token --init-pin does. */
static inline void host_init_token(CK_FUNCTION_LIST_3_0_PTR f, CK_SLOT_ID slot)
{
    CK_UTF8CHAR label[32];
    CK_SESSION_HANDLE s;

    memset(label, ' ', sizeof(label));
    memcpy(label, "c-host", 6);
    CHECK(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    CHECK(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
    CHECK(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    CHECK(f->C_CloseSession(s));
}

/* A RW session with the user logged in. */
static inline CK_SESSION_HANDLE host_user_session(CK_FUNCTION_LIST_3_0_PTR f, CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s;
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    CHECK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    return s;
}

/* The first slot of the slot list (the test configs have exactly one). */
static inline CK_SLOT_ID host_first_slot(CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CHECK(f->C_GetSlotList(CK_TRUE, slots, &n));
    if (n < 1)
        FAIL("no slot");
    return slots[0];
}

#endif
