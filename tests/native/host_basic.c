/* Issue 2 (a): the module in a plain C host that dlopens it RTLD_NOW | RTLD_LOCAL.
 *
 * RTLD_LOCAL hides libpython's symbols from the extension modules Python imports later
 * (_sqlite3 at C_Initialize, cryptography's Rust extension behind C_GetMechanismList); the
 * library must re-open libpython RTLD_GLOBAL itself. The host checks both extensions are
 * really mapped afterwards, so a run that never reached them cannot pass.
 * Usage: host_basic <library>; prints "OK" on success.
 */
#include <stddef.h>

#include "host.h"

static int mapped(const char *needle)
{
    char line[4096];
    int found = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        FAIL("cannot read /proc/self/maps");
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    host_module m;
    CK_FUNCTION_LIST_3_0_PTR f;
    CK_INFO info;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h, found[4];
    CK_ULONG n, count;
    CK_MECHANISM_TYPE *mechs;
    CK_MECHANISM_INFO minfo;
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    char label[] = "c-host note";
    char value[] = "hello from C";
    char back[64];
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_LABEL, label, sizeof(label) - 1},
        {CKA_VALUE, value, sizeof(value) - 1},
    };
    CK_ATTRIBUTE get = {CKA_VALUE, NULL, 0};
    CK_ATTRIBUTE by_label = {CKA_LABEL, label, sizeof(label) - 1};

    if (argc != 2)
        FAIL("usage: %s <library>", argv[0]);
    m = host_load(argv[1], RTLD_NOW | RTLD_LOCAL);
    f = m.fl30;

    /* C_GetInterfaceList: 3.2 (the default C_GetInterface gave), 3.0, 2.40, in that order;
     * each list's version is its interface's, and every list holds its version's count of
     * non-NULL pointers (104, 92, 68). */
    {
        static const CK_BYTE want[3][2] = {{3, 2}, {3, 0}, {2, 40}};
        static const size_t count[3] = {104, 92, 68};
        CK_C_GetInterfaceList get_list = (CK_C_GetInterfaceList)dlsym(m.handle, "C_GetInterfaceList");
        CK_INTERFACE itfs[4];
        CK_ULONG n_itf = 0;
        size_t k, p;
        if (get_list == NULL)
            FAIL("dlsym C_GetInterfaceList: %s", dlerror());
        CHECK(get_list(NULL, &n_itf));
        if (n_itf != 3)
            FAIL("C_GetInterfaceList: %lu interfaces", (unsigned long)n_itf);
        n_itf = 4;
        CHECK(get_list(itfs, &n_itf));
        for (k = 0; k < 3; k++) {
            const CK_VERSION *v = (const CK_VERSION *)itfs[k].pFunctionList;
            void **fp = (void **)((char *)itfs[k].pFunctionList + offsetof(CK_FUNCTION_LIST, C_Initialize));
            if (strcmp((const char *)itfs[k].pInterfaceName, "PKCS 11") != 0 || itfs[k].flags != 0)
                FAIL("interface %zu: %s flags %lu", k, (const char *)itfs[k].pInterfaceName,
                     (unsigned long)itfs[k].flags);
            if (v->major != want[k][0] || v->minor != want[k][1])
                FAIL("interface %zu: version %d.%d", k, v->major, v->minor);
            for (p = 0; p < count[k]; p++)
                if (fp[p] == NULL)
                    FAIL("interface %zu: NULL function pointer %zu", k, p);
        }
        if (itfs[0].pFunctionList != (void *)m.fl32 || itfs[1].pFunctionList != (void *)m.fl30
            || itfs[2].pFunctionList != (void *)m.fl240)
            FAIL("C_GetInterfaceList and C_GetInterface / C_GetFunctionList disagree");
    }

    CHECK(m.fl240->C_Initialize(NULL));

    CHECK(m.fl240->C_GetInfo(&info));
    if (info.cryptokiVersion.major != 2 || info.cryptokiVersion.minor != 40)
        FAIL("2.40 table: cryptokiVersion %d.%d", info.cryptokiVersion.major, info.cryptokiVersion.minor);
    CHECK(f->C_GetInfo(&info));
    if (info.cryptokiVersion.major != 3 || info.cryptokiVersion.minor != 0)
        FAIL("3.0 table: cryptokiVersion %d.%d", info.cryptokiVersion.major, info.cryptokiVersion.minor);
    CHECK(m.fl32->C_GetInfo(&info));
    if (info.cryptokiVersion.major != 3 || info.cryptokiVersion.minor != 2)
        FAIL("3.2 table: cryptokiVersion %d.%d", info.cryptokiVersion.major, info.cryptokiVersion.minor);
    if (memcmp(info.manufacturerID, "cryptoki-shim", 13) != 0)
        FAIL("manufacturerID %.32s", (char *)info.manufacturerID);

    slot = host_first_slot(f);
    host_init_token(f, slot);
    /* The store opens on first token use (not at C_Initialize): by now it has. */
    if (!mapped("_sqlite3"))
        FAIL("the token's store did not load the _sqlite3 extension (test premise)");
    s = host_user_session(f, slot);

    CHECK(f->C_CreateObject(s, tmpl, 4, &h));
    CHECK(f->C_GetAttributeValue(s, h, &get, 1));
    if (get.ulValueLen != sizeof(value) - 1)
        FAIL("CKA_VALUE length %lu", (unsigned long)get.ulValueLen);
    get.pValue = back;
    CHECK(f->C_GetAttributeValue(s, h, &get, 1));
    if (memcmp(back, value, sizeof(value) - 1) != 0)
        FAIL("CKA_VALUE read back differs");
    CHECK(f->C_FindObjectsInit(s, &by_label, 1));
    CHECK(f->C_FindObjects(s, found, 4, &count));
    CHECK(f->C_FindObjectsFinal(s));
    if (count != 1 || found[0] != h)
        FAIL("C_FindObjects by label: %lu objects", (unsigned long)count);

    /* The mechanism registry imports cryptography (a Rust extension module). */
    CHECK(f->C_GetMechanismList(slot, NULL, &n));
    if (n == 0)
        FAIL("empty mechanism list");
    mechs = calloc(n, sizeof(*mechs));
    CHECK(f->C_GetMechanismList(slot, mechs, &n));
    CHECK(f->C_GetMechanismInfo(slot, mechs[0], &minfo));
    free(mechs);
    if (!mapped("_rust.abi3.so"))
        FAIL("cryptography's Rust extension is not loaded after C_GetMechanismList");

    CHECK(f->C_CloseSession(s));
    CHECK(f->C_Finalize(NULL));
    EXPECT_RV(CKR_CRYPTOKI_NOT_INITIALIZED, f->C_GetInfo(&info));
    printf("OK\n");
    return 0;
}
