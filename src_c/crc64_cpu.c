/* x86-64 feature probes for the CRC-64 kernels. A CPU flag alone is not enough for ymm/zmm
 * code: the OS must also save that register state (XCR0 via xgetbv), or the first wide
 * instruction faults. Probed once; a race between threads only repeats identical work. */
#include "crc64.h"

#if COSFAST_CRC64_X86
#include <cpuid.h>

enum {
    FEAT_CLMUL = 1,          /* PCLMULQDQ + SSE4.1 */
    FEAT_VPCLMUL_AVX2 = 2,   /* VPCLMULQDQ + AVX2, ymm state enabled by the OS */
    FEAT_VPCLMUL_AVX512 = 4, /* the above + AVX-512F/VL, opmask and zmm state enabled */
    FEAT_PROBED = 1 << 30,
};

/* XCR0 bits: SSE (1), AVX ymm upper halves (2), AVX-512 opmask (5), zmm upper halves (6),
 * zmm16-31 (7). */
#define XCR0_YMM 0x06u
#define XCR0_ZMM 0xE6u

static int features = 0;

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int probe(void) {
    unsigned int a, b, c, d;
    int f = FEAT_PROBED;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const int pclmul = (c >> 1) & 1, sse41 = (c >> 19) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (pclmul && sse41)
        f |= FEAT_CLMUL;
    if (!(f & FEAT_CLMUL) || !osxsave || !avx || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return f;
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512vl = (b >> 31) & 1;
    const int vpclmul = (c >> 10) & 1;
    const uint64_t xcr0 = read_xcr0();
    if (vpclmul && avx2 && (xcr0 & XCR0_YMM) == XCR0_YMM)
        f |= FEAT_VPCLMUL_AVX2;
    if ((f & FEAT_VPCLMUL_AVX2) && avx512f && avx512vl && (xcr0 & XCR0_ZMM) == XCR0_ZMM)
        f |= FEAT_VPCLMUL_AVX512;
    return f;
}

static int cpu_features(void) {
    int f = __atomic_load_n(&features, __ATOMIC_RELAXED);
    if (!f) {
        f = probe();
        __atomic_store_n(&features, f, __ATOMIC_RELAXED);
    }
    return f;
}

int cosfast_cpu_has_clmul(void) { return (cpu_features() & FEAT_CLMUL) != 0; }
int cosfast_cpu_has_vpclmul(void) { return (cpu_features() & FEAT_VPCLMUL_AVX2) != 0; }
int cosfast_cpu_has_avx512_vpclmul(void) { return (cpu_features() & FEAT_VPCLMUL_AVX512) != 0; }

#endif
