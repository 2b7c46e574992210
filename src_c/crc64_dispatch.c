/* Picks the fastest CRC-64 kernel the CPU runs, once, through one function pointer.
 * Kernels other than the table one are registered here as they are added (see crc64_kernels). */
#include <string.h>
#include "crc64.h"

typedef struct {
    const char *name;
    cosfast_crc64_fn fn;
    int (*cpu_ok)(void);
} crc64_kernel_entry;

static int always_ok(void) { return 1; }

/* Best first: the dispatcher takes the first entry whose cpu_ok() holds. */
static const crc64_kernel_entry crc64_kernels[] = {
    {"table", cosfast_crc64_table, always_ok},
};
#define N_KERNELS (sizeof(crc64_kernels) / sizeof(crc64_kernels[0]))

static const crc64_kernel_entry *active = NULL;

static const crc64_kernel_entry *find_kernel(const char *name) {
    for (size_t i = 0; i < N_KERNELS; i++)
        if (strcmp(crc64_kernels[i].name, name) == 0)
            return &crc64_kernels[i];
    return NULL;
}

static const crc64_kernel_entry *best_kernel(void) {
    for (size_t i = 0; i < N_KERNELS; i++)
        if (crc64_kernels[i].cpu_ok())
            return &crc64_kernels[i];
    return &crc64_kernels[N_KERNELS - 1];
}

int cosfast_crc64_impl_supported(const char *name) {
    const crc64_kernel_entry *k = find_kernel(name);
    if (!k)
        return strcmp(name, "clmul") == 0 || strcmp(name, "avx512") == 0 ? 0 : -1;
    return k->cpu_ok() ? 1 : 0;
}

int cosfast_crc64_select(const char *name) {
    if (name == NULL || name[0] == '\0') {
        active = best_kernel();
        return 0;
    }
    int ok = cosfast_crc64_impl_supported(name);
    if (ok < 0)
        return -1;
    if (ok == 0)
        return -2;
    active = find_kernel(name);
    return 0;
}

cosfast_crc64_fn cosfast_crc64_kernel(const char *name) {
    const crc64_kernel_entry *k = find_kernel(name);
    return (k && k->cpu_ok()) ? k->fn : NULL;
}

const char *cosfast_crc64_impl_name(void) {
    if (!active)
        active = best_kernel();
    return active->name;
}

uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len) {
    if (!active)
        active = best_kernel();
    return active->fn(crc, buf, len);
}
