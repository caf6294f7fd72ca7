/* Where the module's Python environment is (issue 18 item 1): found at run time, never baked in.
 *
 * Included by shim.c (it uses shim_clog). Nothing here needs Python: the environment must be
 * known before Python starts (its interpreter is PyConfig.executable, DESIGN.md §2.2).
 *
 * An environment is a directory E that is either
 *   - a venv (E/pyvenv.cfg): Python is started as E/bin/python, so its own site module reads
 *     pyvenv.cfg; our packages are E/lib/pythonX.Y/site-packages; or
 *   - a site directory holding the cryptoki_shim package and its dependencies (pip --target,
 *     a pip install's site-packages): Python is started as the system interpreter the library
 *     was built for (SHIM_BASE_PYTHON); when E is a venv's site-packages, as that venv's.
 * The first of these that is an environment wins:
 *   1. $CRYPTOKI_SHIM_VENV;
 *   2. `venv` in the [python] table of the configuration file (the search order of
 *      config.py: $CRYPTOKI_SHIM_CONF, $XDG_CONFIG_HOME or ~/.config, /etc);
 *   3. relative to the directory L this library was loaded from (as loaded, then with the
 *      symbolic links resolved): L/../.venv (a clone's build/), L/.. when L is the package
 *      directory (pip: site-packages/cryptoki_shim/libcryptoki_shim.so), L/../../cryptoki-shim/
 *      python and L/../cryptoki-shim/python (installed: /usr/lib/<multiarch>/pkcs11/ and
 *      <prefix>/lib/pkcs11/ next to <prefix>/lib/cryptoki-shim/python).
 * An override (1, 2) that is not an environment is an error, not a reason to look elsewhere:
 * the administrator asked for that one. Every failure is logged (shim_clog) and the module
 * answers CKR_GENERAL_ERROR.
 */
#include <limits.h>
#include <sys/stat.h>

#ifndef SHIM_BASE_PYTHON
#error "SHIM_BASE_PYTHON (the system interpreter, e.g. \"/usr/bin/python3.11\") must be defined"
#endif

/* What was found: the interpreter Python is started as, and the directory to put first on
 * sys.path (read by the embedding init code through shim_site_dir()). */
static char shim_env_python[PATH_MAX];
static char shim_env_site[PATH_MAX];
/* The directory this library was loaded from, as loaded and resolved (set at load time: a
 * relative dlopen path is relative to the working directory of that moment). */
static char shim_lib_dir[PATH_MAX];
static char shim_lib_dir_real[PATH_MAX];

static int shim_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int shim_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int shim_joinf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int shim_joinf(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    return n > 0 && n < PATH_MAX;
}

/* 1 when `dir` is an environment (see the top); fills shim_env_python and shim_env_site. */
static int shim_try_env(const char *dir)
{
    char path[PATH_MAX];
    char root[PATH_MAX];
    size_t n;
    if (!shim_joinf(path, "%s/pyvenv.cfg", dir))
        return 0;
    if (shim_is_file(path)) {
        if (!shim_joinf(shim_env_python, "%s/bin/python", dir)
            || !shim_joinf(shim_env_site, "%s/lib/python%s/site-packages", dir, SHIM_PY_VERSION))
            return 0;
        if (access(shim_env_python, X_OK) != 0 || !shim_is_dir(shim_env_site)) {
            shim_clog("%s: a venv without %s or %s (made by another Python than %s?)", dir,
                      shim_env_python, shim_env_site, SHIM_PY_VERSION);
            return 0;
        }
        return 1;
    }
    if (!shim_joinf(path, "%s/cryptoki_shim/__init__.py", dir) || !shim_is_file(path))
        return 0;
    if (!shim_joinf(shim_env_site, "%s", dir))
        return 0;
    /* A venv's site-packages: start that venv's interpreter (its pyvenv.cfg applies). */
    n = strlen(dir);
    snprintf(root, sizeof(root), "/lib/python%s/site-packages", SHIM_PY_VERSION);
    if (n > strlen(root) && strcmp(dir + n - strlen(root), root) == 0) {
        snprintf(root, sizeof(root), "%.*s", (int)(n - strlen(root)), dir);
        if (shim_joinf(path, "%s/pyvenv.cfg", root) && shim_is_file(path)
            && shim_joinf(shim_env_python, "%s/bin/python", root) && access(shim_env_python, X_OK) == 0)
            return 1;
    }
    return shim_joinf(shim_env_python, "%s", SHIM_BASE_PYTHON);
}

/* The configuration file of config.find_config_file's search order, or 0. */
static int shim_config_file(char *out)
{
    const char *env = getenv("CRYPTOKI_SHIM_CONF");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    if (env != NULL && *env != '\0')
        return shim_joinf(out, "%s", env) && shim_is_file(out);
    if (xdg != NULL && *xdg != '\0') {
        if (shim_joinf(out, "%s/cryptoki-shim/config.toml", xdg) && shim_is_file(out))
            return 1;
    } else if (home != NULL && *home != '\0') {
        if (shim_joinf(out, "%s/.config/cryptoki-shim/config.toml", home) && shim_is_file(out))
            return 1;
    }
    return shim_joinf(out, "/etc/cryptoki-shim/config.toml") && shim_is_file(out);
}

/* `venv = "..."` (or '...') in the [python] table of `file`, into out; 1 when present. The
 * value is a plain path: config.py refuses the forms read only by Python (escapes, ${NAME},
 * venv_file), so both sides read the same string. */
static int shim_config_venv(const char *file, char *out)
{
    char line[PATH_MAX + 64];
    int in_python = 0, found = 0;
    FILE *f = fopen(file, "re");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *end;
        char quote;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '[') {
            in_python = strncmp(p, "[python]", 8) == 0;
            continue;
        }
        if (!in_python || strncmp(p, "venv", 4) != 0)
            continue;
        p += 4;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p++ != '=')
            continue;
        while (*p == ' ' || *p == '\t')
            p++;
        quote = *p++;
        if ((quote != '"' && quote != '\'') || (end = strchr(p, quote)) == NULL)
            continue;
        *end = '\0';
        found = shim_joinf(out, "%s", p);
    }
    fclose(f);
    return found;
}

/* Run at load time (a constructor): the directory of this library, as loaded and resolved. */
__attribute__((constructor)) static void shim_find_lib_dir(void)
{
    Dl_info info;
    char *slash;
    char real[PATH_MAX];
    if (dladdr((void *)&shim_find_lib_dir, &info) == 0 || info.dli_fname == NULL)
        return;
    if (info.dli_fname[0] == '/') {
        shim_joinf(shim_lib_dir, "%s", info.dli_fname);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return;
        shim_joinf(shim_lib_dir, "%s/%s", cwd, info.dli_fname);
    }
    if (realpath(shim_lib_dir, real) != NULL) {
        shim_joinf(shim_lib_dir_real, "%s", real);
        if ((slash = strrchr(shim_lib_dir_real, '/')) != NULL)
            *slash = '\0';
    }
    if ((slash = strrchr(shim_lib_dir, '/')) != NULL)
        *slash = '\0';
}

/* The candidates of step 3 below one library directory. */
static int shim_env_near(const char *libdir)
{
    char path[PATH_MAX];
    const char *base = strrchr(libdir, '/');
    if (*libdir == '\0')
        return 0;
    if (shim_joinf(path, "%s/../.venv", libdir) && shim_try_env(path))
        return 1;
    if (base != NULL && strcmp(base, "/cryptoki_shim") == 0
        && shim_joinf(path, "%.*s", (int)(base - libdir), libdir) && shim_try_env(path))
        return 1;
    if (shim_joinf(path, "%s/../../cryptoki-shim/python", libdir) && shim_try_env(path))
        return 1;
    return shim_joinf(path, "%s/../cryptoki-shim/python", libdir) && shim_try_env(path);
}

/* Finds the environment (the order at the top); 0 when found, -1 (logged) when not. */
static int shim_locate_env(void)
{
    char conf[PATH_MAX];
    char venv[PATH_MAX];
    const char *env = getenv("CRYPTOKI_SHIM_VENV");
    if (env != NULL && *env != '\0') {
        if (shim_try_env(env))
            return 0;
        shim_clog("CRYPTOKI_SHIM_VENV=%s: not a venv nor a directory holding the cryptoki_shim package", env);
        return -1;
    }
    if (shim_config_file(conf) && shim_config_venv(conf, venv)) {
        if (shim_try_env(venv))
            return 0;
        shim_clog("%s: [python] venv = %s: not a venv nor a directory holding the cryptoki_shim package",
                  conf, venv);
        return -1;
    }
    if (shim_env_near(shim_lib_dir))
        return 0;
    if (strcmp(shim_lib_dir, shim_lib_dir_real) != 0 && shim_env_near(shim_lib_dir_real))
        return 0;
    shim_clog("no Python environment found near %s (tried ../.venv, the package directory, "
              "../../cryptoki-shim/python, ../cryptoki-shim/python); set CRYPTOKI_SHIM_VENV or "
              "[python] venv", *shim_lib_dir ? shim_lib_dir : "(unknown: dladdr failed)");
    shim_env_site[0] = '\0';
    return -1;
}

/* Imports _cffi_backend from the environment before the first call into cffi: cffi's start-up
 * imports it before our init code runs (which then puts the environment on sys.path, with its
 * .pth entries), and it must be ours, the version that compiled us, not a system package of
 * another version nor missing (a site directory started on the system interpreter, a Python
 * host of another environment). The site directory is on sys.path for that import only; a
 * host that already imported _cffi_backend keeps its own. */
static void shim_import_cffi_backend(void)
{
    PyGILState_STATE gil;
    PyObject *path, *dir, *mod;
    int inserted = 0;
    Py_ssize_t at;
    if (shim_env_site[0] == '\0')
        return;
    gil = PyGILState_Ensure();
    path = PySys_GetObject("path"); /* borrowed */
    dir = PyUnicode_DecodeFSDefault(shim_env_site);
    if (path != NULL && dir != NULL && PyList_Check(path) && PySequence_Contains(path, dir) == 0)
        inserted = PyList_Insert(path, 0, dir) == 0;
    mod = PyImport_ImportModule("_cffi_backend");
    if (mod == NULL)
        shim_clog("_cffi_backend is not in %s", shim_env_site);
    Py_XDECREF(mod);
    PyErr_Clear();
    if (inserted && (at = PySequence_Index(path, dir)) >= 0)
        PySequence_DelItem(path, at);
    Py_XDECREF(dir);
    PyErr_Clear();
    PyGILState_Release(gil);
}

/* For the embedding init code (SHIM_CDEF in build_ffi.py): the site directory to put first on
 * sys.path, "" when none was found (a Python host that imports us from its own path). */
const char *shim_site_dir(void)
{
    return shim_env_site;
}
