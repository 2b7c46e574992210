/* Shared pieces of the carry-less-multiply CRC-64/XZ kernels (clmul, vpclmul, avx512): folding
 * one 128-bit lane forward, the final Barrett reduction, and the tail. The constants and the
 * algebra behind them are derived in gen_crc64_constants.py.
 *
 * A 128-bit lane holds 16 message bytes as loaded (little-endian): its low qword Q0 is the
 * earlier 8 bytes and carries the higher powers of x. Everything here is static inline with
 * the narrowest target (pclmul, sse4.1); GCC and clang inline it into the wider kernels because
 * their targets are supersets. */
#ifndef COSFAST_CRC64_FOLD_H
#define COSFAST_CRC64_FOLD_H

#include "crc64.h"

#if COSFAST_CRC64_X86

#include <immintrin.h>
#include "crc64_fold_constants.h"

#define COSFAST_TARGET_CLMUL __attribute__((target("pclmul,sse4.1")))

/* Software prefetch this far ahead of the fold loops. Buffers larger than the cache stream in
 * from memory; on the virtual machines measured (bench/README.md) the hardware prefetcher alone
 * left the loop ~10% short of a plain read. Prefetching past the end is harmless (no fault). */
#define COSFAST_CRC64_PREFETCH_DISTANCE 1024

static inline COSFAST_TARGET_CLMUL void cosfast_prefetch_step(const unsigned char *buf, size_t step) {
    for (size_t i = 0; i < step; i += 64)
        _mm_prefetch((const char *)buf + COSFAST_CRC64_PREFETCH_DISTANCE + i, _MM_HINT_T0);
}

/* A fold constant pair as one register: low qword multiplies Q0, high qword multiplies Q1. */
static inline COSFAST_TARGET_CLMUL __m128i cosfast_pair128(uint64_t lo, uint64_t hi) {
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* lane * x^D mod P (up to 128 bits), for the distance D that the pair k encodes. */
static inline COSFAST_TARGET_CLMUL __m128i cosfast_fold128(__m128i lane, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x00), _mm_clmulepi64_si128(lane, k, 0x11));
}

/* The raw (not inverted) CRC register for a 128-bit remainder S: S * x^64 mod P. */
static inline COSFAST_TARGET_CLMUL uint64_t cosfast_crc64_reduce128(__m128i s) {
    /* V = Q0 * x^128 + Q1 * x^64 (mod P): Q0 times x^127 (clmul adds one x), Q1 shifted to the
     * low qword, which holds the powers x^64..x^127. */
    const __m128i x127 = cosfast_pair128(COSFAST_CRC64_FOLD_1_HI, 0);
    __m128i v = _mm_xor_si128(_mm_clmulepi64_si128(s, x127, 0x00), _mm_srli_si128(s, 8));
    /* Barrett: q = Vh + floor(Vh * MU1 * x / x^64); crc = Vl + q + (q * P1 * x mod x^64). */
    const __m128i barrett = cosfast_pair128(COSFAST_CRC64_BARRETT_MU1, COSFAST_CRC64_BARRETT_P1);
    __m128i q = _mm_xor_si128(_mm_clmulepi64_si128(v, barrett, 0x00), v);
    __m128i qp = _mm_clmulepi64_si128(q, barrett, 0x10);
    return (uint64_t)_mm_extract_epi64(v, 1) ^ (uint64_t)_mm_cvtsi128_si64(q) ^
           (uint64_t)_mm_extract_epi64(qp, 1);
}

/* Eight consecutive lanes (x[0] first) folded into one 128-bit remainder: lane i moves 7 - i
 * lanes forward onto the last one. */
static inline COSFAST_TARGET_CLMUL __m128i cosfast_crc64_merge8(const __m128i x[8]) {
    const __m128i k[7] = {
        cosfast_pair128(COSFAST_CRC64_FOLD_7_LO, COSFAST_CRC64_FOLD_7_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_6_LO, COSFAST_CRC64_FOLD_6_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_5_LO, COSFAST_CRC64_FOLD_5_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_4_LO, COSFAST_CRC64_FOLD_4_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_3_LO, COSFAST_CRC64_FOLD_3_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_2_LO, COSFAST_CRC64_FOLD_2_HI),
        cosfast_pair128(COSFAST_CRC64_FOLD_1_LO, COSFAST_CRC64_FOLD_1_HI),
    };
    __m128i s = x[7];
    for (int i = 0; i < 7; i++)
        s = _mm_xor_si128(s, cosfast_fold128(x[i], k[i]));
    return s;
}

/* Folds the whole 16-byte blocks left in buf into the remainder s, reduces, and runs the last
 * 0..15 bytes through the table kernel. Returns the finalised CRC. */
static inline COSFAST_TARGET_CLMUL uint64_t cosfast_crc64_fold_finish(__m128i s, const unsigned char *buf,
                                                                      size_t len) {
    const __m128i one_lane = cosfast_pair128(COSFAST_CRC64_FOLD_1_LO, COSFAST_CRC64_FOLD_1_HI);
    while (len >= 16) {
        s = _mm_xor_si128(cosfast_fold128(s, one_lane), _mm_loadu_si128((const __m128i *)buf));
        buf += 16;
        len -= 16;
    }
    return cosfast_crc64_table(~cosfast_crc64_reduce128(s), buf, len);
}

/* The first 16 bytes with the running CRC folded in: the register (~crc) XORed into the first
 * 8 message bytes is exactly what the bitwise algorithm does with its initial value. */
static inline COSFAST_TARGET_CLMUL __m128i cosfast_crc64_first_lane(uint64_t crc, const unsigned char *buf) {
    return _mm_xor_si128(_mm_loadu_si128((const __m128i *)buf), _mm_cvtsi64_si128((long long)~crc));
}

#endif /* COSFAST_CRC64_X86 */
#endif
