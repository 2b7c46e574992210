/* Picks the fastest CRC-64 kernel the CPU runs, once, through one function pointer.
 * Every kernel name is known on every build, so an unsupported choice is told apart from a typo;
 * kernels this architecture cannot compile have no function and are never supported. */
#include <string.h>
#include "crc64.h"

typedef struct {
    const char *name;
    cosfast_crc64_fn fn;
    int (*cpu_ok)(void);
    const char *needs; /* for the error message when cpu_ok() fails */
} crc64_kernel_entry;

static int always_ok(void) { return 1; }

#if COSFAST_CRC64_X86
#define X86_KERNEL(fn, ok) fn, ok
#else
static int never_ok(void) { return 0; }
#define X86_KERNEL(fn, ok) NULL, never_ok
#endif

/* Best first: the dispatcher takes the first entry whose cpu_ok() holds. */
static const crc64_kernel_entry crc64_kernels[] = {
    {"avx512", X86_KERNEL(cosfast_crc64_avx512, cosfast_cpu_has_avx512_vpclmul),
     "an x86-64 CPU with AVX-512F, AVX-512VL and VPCLMULQDQ, and an OS that saves zmm state"},
    {"vpclmul", X86_KERNEL(cosfast_crc64_vpclmul, cosfast_cpu_has_vpclmul),
     "an x86-64 CPU with VPCLMULQDQ and AVX2, and an OS that saves ymm state"},
    {"clmul", X86_KERNEL(cosfast_crc64_clmul, cosfast_cpu_has_clmul), "an x86-64 CPU with PCLMULQDQ and SSE4.1"},
    {"table", cosfast_crc64_table, always_ok, "nothing"},
};
#define N_KERNELS (sizeof(crc64_kernels) / sizeof(crc64_kernels[0]))

/* The kernel in use. Starts as a resolver that installs the best kernel on the first call;
 * the Cython module selects at import, so the hot path is one indirect call. A race between
 * threads on the first call only stores the same pointer twice. */
static uint64_t resolve_and_update(uint64_t crc, const unsigned char *buf, size_t len);
static cosfast_crc64_fn active_fn = resolve_and_update;
static const crc64_kernel_entry *active = NULL;

static void activate(const crc64_kernel_entry *k) {
    active = k;
    __atomic_store_n(&active_fn, k->fn, __ATOMIC_RELEASE);
}

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
        return -1;
    return k->cpu_ok() ? 1 : 0;
}

const char *cosfast_crc64_impl_needs(const char *name) {
    const crc64_kernel_entry *k = find_kernel(name);
    return k ? k->needs : NULL;
}

int cosfast_crc64_select(const char *name) {
    if (name == NULL || name[0] == '\0') {
        activate(best_kernel());
        return 0;
    }
    int ok = cosfast_crc64_impl_supported(name);
    if (ok < 0)
        return -1;
    if (ok == 0)
        return -2;
    activate(find_kernel(name));
    return 0;
}

cosfast_crc64_fn cosfast_crc64_kernel(const char *name) {
    const crc64_kernel_entry *k = find_kernel(name);
    return (k && k->cpu_ok()) ? k->fn : NULL;
}

const char *cosfast_crc64_impl_name(void) {
    if (!active)
        activate(best_kernel());
    return active->name;
}

static uint64_t resolve_and_update(uint64_t crc, const unsigned char *buf, size_t len) {
    activate(best_kernel());
    return active->fn(crc, buf, len);
}

uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len) {
    return __atomic_load_n(&active_fn, __ATOMIC_ACQUIRE)(crc, buf, len);
}
