/* VPCLMULQDQ on 512-bit registers (Ice Lake server and later, Zen 4 and later): sixteen 128-bit
 * lanes, four per register, 256 bytes per step. The registers are then folded pairwise onto the
 * last two (eight consecutive lanes), and the shared eight-lane merge, reduction and tail finish.
 * Built for the AVX-512 target only here; runs only where cosfast_cpu_has_avx512_vpclmul(). */
#include "crc64_fold.h"

#if COSFAST_CRC64_X86

#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,avx2,sse4.1")))
#define REGS 4 /* x 64 bytes: lanes 4i..4i+3 in register i */
#define STEP (64 * REGS)
#define XOR3 0x96 /* ternary-logic truth table of a ^ b ^ c */

static inline TARGET_AVX512 __m512i broadcast_pair(uint64_t lo, uint64_t hi) {
    return _mm512_broadcast_i32x4(cosfast_pair128(lo, hi));
}

/* reg * x^D + data, D encoded by the broadcast pair k, in one ternary XOR. */
static inline TARGET_AVX512 __m512i fold512(__m512i reg, __m512i k, __m512i data) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(reg, k, 0x00),
                                     _mm512_clmulepi64_epi128(reg, k, 0x11), data, XOR3);
}

TARGET_AVX512
uint64_t cosfast_crc64_avx512(uint64_t crc, const unsigned char *buf, size_t len) {
    if (len < 2 * STEP)
        return cosfast_crc64_vpclmul(crc, buf, len);

    __m512i z[REGS];
    z[0] = _mm512_xor_si512(_mm512_loadu_si512(buf), _mm512_zextsi128_si512(_mm_cvtsi64_si128((long long)~crc)));
    for (int i = 1; i < REGS; i++)
        z[i] = _mm512_loadu_si512(buf + 64 * i);
    buf += STEP;
    len -= STEP;

    /* Every lane moves 16 lanes (256 bytes) forward per step. */
    const __m512i k16 = broadcast_pair(COSFAST_CRC64_FOLD_16_LO, COSFAST_CRC64_FOLD_16_HI);
    while (len >= STEP) {
        cosfast_prefetch_step(buf, STEP);
        for (int i = 0; i < REGS; i++)
            z[i] = fold512(z[i], k16, _mm512_loadu_si512(buf + 64 * i));
        buf += STEP;
        len -= STEP;
    }

    /* Registers 0 and 1 sit 8 lanes before registers 2 and 3. */
    const __m512i k8 = broadcast_pair(COSFAST_CRC64_FOLD_8_LO, COSFAST_CRC64_FOLD_8_HI);
    __m512i last[2] = {fold512(z[0], k8, z[2]), fold512(z[1], k8, z[3])};

    __m128i x[8];
    for (int i = 0; i < 2; i++) {
        x[4 * i + 0] = _mm512_extracti32x4_epi32(last[i], 0);
        x[4 * i + 1] = _mm512_extracti32x4_epi32(last[i], 1);
        x[4 * i + 2] = _mm512_extracti32x4_epi32(last[i], 2);
        x[4 * i + 3] = _mm512_extracti32x4_epi32(last[i], 3);
    }
    return cosfast_crc64_fold_finish(cosfast_crc64_merge8(x), buf, len);
}

#endif
