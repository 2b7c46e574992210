/* PCLMULQDQ folding kernel: eight independent 128-bit lanes (128 bytes per step) keep the
 * multiplier busy despite its latency; the lanes are then folded into one and reduced. */
#include "crc64_fold.h"

#if COSFAST_CRC64_X86

#define LANES 8

COSFAST_TARGET_CLMUL
uint64_t cosfast_crc64_clmul(uint64_t crc, const unsigned char *buf, size_t len) {
    if (len < 16)
        return cosfast_crc64_table(crc, buf, len);
    if (len < 16 * LANES)
        return cosfast_crc64_fold_finish(cosfast_crc64_first_lane(crc, buf), buf + 16, len - 16);

    __m128i x[LANES];
    x[0] = cosfast_crc64_first_lane(crc, buf);
    for (int i = 1; i < LANES; i++)
        x[i] = _mm_loadu_si128((const __m128i *)(buf + 16 * i));
    buf += 16 * LANES;
    len -= 16 * LANES;

    const __m128i step = cosfast_pair128(COSFAST_CRC64_FOLD_8_LO, COSFAST_CRC64_FOLD_8_HI);
    while (len >= 16 * LANES) {
        cosfast_prefetch_step(buf, 16 * LANES);
        for (int i = 0; i < LANES; i++)
            x[i] = _mm_xor_si128(cosfast_fold128(x[i], step), _mm_loadu_si128((const __m128i *)(buf + 16 * i)));
        buf += 16 * LANES;
        len -= 16 * LANES;
    }
    return cosfast_crc64_fold_finish(cosfast_crc64_merge8(x), buf, len);
}

#endif
