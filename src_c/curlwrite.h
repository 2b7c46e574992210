/* A write callback in C for a transfer that pycurl drives.
 *
 * libcurl hands a body to its write callback in pieces of at most 16 KiB (CURL_MAX_WRITE_SIZE),
 * whatever the receive buffer's size: 65536 calls per GiB. Through pycurl each one takes the
 * GIL and runs Python; the part writer gathers the pieces into 1 MiB stages, so most calls are
 * only a copy that needs neither. This binds a C function as the WRITEFUNCTION of a pycurl
 * easy handle, with the libcurl pycurl itself is linked to (a wheel bundles its own copy, whose
 * handles another libcurl must never touch).
 *
 * pycurl does not hand out its CURL pointer: cosfast_curl_bind_handle finds it in the Python
 * object where pycurl keeps it and accepts it only if libcurl confirms it, by CURLINFO_PRIVATE,
 * which pycurl sets to the object itself. None of these functions touches Python objects. */
#ifndef COSFAST_CURLWRITE_H
#define COSFAST_CURLWRITE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef size_t (*cosfast_curl_write_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

/* Finds libcurl's curl_easy_setopt and curl_easy_getinfo in the shared object that contains
 * `address` (any function of pycurl's extension module) or in the libraries it was linked to.
 * Returns 0, or -1 when they cannot be found (then nothing here works). Idempotent; call it
 * with the GIL held (it is not thread-safe the first time). */
int cosfast_curl_resolve(const void *address);

/* The CURL handle stored at `slot` (a pointer-sized field of a pycurl Curl object), if libcurl
 * says its CURLINFO_PRIVATE is `object`; NULL otherwise. */
void *cosfast_curl_bind_handle(void *const *slot, const void *object);

/* Makes `fn` the handle's write callback, called with `userdata`. Returns 0 or the CURLcode. */
int cosfast_curl_set_writer(void *handle, cosfast_curl_write_fn fn, void *userdata);

#ifdef __cplusplus
}
#endif

#endif
