/* crc(A || B) from crc(A), crc(B), len(B), without touching the data.
 *
 * For a reflected CRC with init = xorout = ~0, appending len(B) zero bytes to A advances the raw
 * register by multiplication with x^(8*len_b) mod P; the init/xorout terms cancel, so
 *     crc(A||B) = mulmod(crc(A), x^(8*len_b)) ^ crc(B).
 * x^(8*len_b) is the product of one precomputed power x^(8 * 2^k) per set bit k of len_b
 * (tables derived in gen_crc64_constants.py), so combine costs popcount(len_b) multiplies:
 * one PCLMULQDQ multiply-and-reduce each where the CPU has it, a 64-step loop each where not. */
#include "crc64.h"
#include "crc64_fold.h"
#include "crc64_fold_constants.h"

static const uint64_t byte_shifts[64] = COSFAST_CRC64_BYTE_SHIFTS;

/* a * b mod P, both in reflected representation (bit 63 is x^0); branch-free. */
static uint64_t gf2_mulmod(uint64_t a, uint64_t b) {
    uint64_t prod = 0;
    for (int i = 0; i < 64; i++) {
        prod ^= b & (0 - (a >> 63)); /* coefficient of x^i in a */
        a <<= 1;
        b = (b >> 1) ^ (COSFAST_CRC64_POLY_REFLECTED & (0 - (b & 1))); /* b := b * x mod P */
    }
    return prod;
}

/* The portable path; public so tests check it on CPUs that take the clmul one. */
uint64_t cosfast_crc64_combine_portable(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
    for (int k = 0; len_b; k++, len_b >>= 1)
        if (len_b & 1)
            crc_a = gf2_mulmod(crc_a, byte_shifts[k]);
    return crc_a ^ crc_b;
}

#if COSFAST_CRC64_X86
static const uint64_t byte_shifts_clmul[64] = COSFAST_CRC64_BYTE_SHIFTS_CLMUL;

COSFAST_TARGET_CLMUL
static uint64_t combine_clmul(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
    for (int k = 0; len_b; k++, len_b >>= 1) {
        if (len_b & 1) {
            __m128i prod = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)crc_a),
                                                _mm_cvtsi64_si128((long long)byte_shifts_clmul[k]), 0x00);
            crc_a = cosfast_crc64_reduce128(prod); /* a * b * x^65 mod P; the table holds b * x^-65 */
        }
    }
    return crc_a ^ crc_b;
}
#endif

uint64_t cosfast_crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
#if COSFAST_CRC64_X86
    if (cosfast_cpu_has_clmul())
        return combine_clmul(crc_a, crc_b, len_b);
#endif
    return cosfast_crc64_combine_portable(crc_a, crc_b, len_b);
}
