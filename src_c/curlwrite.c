/* See curlwrite.h. */
#define _GNU_SOURCE
#include "curlwrite.h"

#include <dlfcn.h>

/* libcurl's option and info numbers are part of its ABI, fixed since they were introduced
 * (curl/curl.h: CURLOPTTYPE_FUNCTIONPOINT + 11, CURLOPTTYPE_OBJECTPOINT + 1,
 * CURLINFO_STRING + 21). A wrong one fails tests/test_curlwrite.py: no handle is confirmed, or
 * no chunk reaches the C callback. */
enum {
    COSFAST_CURLOPT_WRITEFUNCTION = 20011,
    COSFAST_CURLOPT_WRITEDATA = 10001,
    COSFAST_CURLINFO_PRIVATE = 0x100000 + 21,
};

typedef int (*easy_setopt_fn)(void *handle, int option, ...);
typedef int (*easy_getinfo_fn)(void *handle, int info, ...);

static easy_setopt_fn easy_setopt;
static easy_getinfo_fn easy_getinfo;

int cosfast_curl_resolve(const void *address)
{
    Dl_info info;
    void *library;
    if (easy_setopt && easy_getinfo)
        return 0;
    if (!dladdr(address, &info) || !info.dli_fname)
        return -1;
    /* Already loaded by Python's import of pycurl: RTLD_NOLOAD only takes another reference.
     * dlsym on this handle searches the module and then the libraries it needs, so it finds
     * the libcurl pycurl calls, whatever its file is named. The reference is kept for good:
     * the pointers below stay valid while the process runs (CPython never unloads modules). */
    library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!library)
        return -1;
    easy_setopt = (easy_setopt_fn)dlsym(library, "curl_easy_setopt");
    easy_getinfo = (easy_getinfo_fn)dlsym(library, "curl_easy_getinfo");
    if (!easy_setopt || !easy_getinfo) {
        easy_setopt = NULL;
        easy_getinfo = NULL;
        return -1;
    }
    return 0;
}

void *cosfast_curl_bind_handle(void *const *slot, const void *object)
{
    void *handle = *slot;
    char *private_data = NULL;
    if (!handle || !easy_getinfo)
        return NULL;
    if (easy_getinfo(handle, COSFAST_CURLINFO_PRIVATE, &private_data) != 0)
        return NULL;
    return private_data == (const char *)object ? handle : NULL;
}

int cosfast_curl_set_writer(void *handle, cosfast_curl_write_fn fn, void *userdata)
{
    int rc;
    if (!easy_setopt)
        return -1;
    /* Called before the transfer starts, so no callback runs between the two calls. */
    rc = easy_setopt(handle, COSFAST_CURLOPT_WRITEDATA, userdata);
    if (rc == 0)
        rc = easy_setopt(handle, COSFAST_CURLOPT_WRITEFUNCTION, fn);
    return rc;
}
