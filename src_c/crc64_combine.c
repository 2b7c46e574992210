/* crc(A || B) from crc(A), crc(B), len(B), without touching the data.
 *
 * For a reflected CRC with init = xorout = ~0, appending len(B) zero bytes to A advances the raw
 * register by multiplication with x^(8*len_b) mod P; the init/xorout terms cancel, so
 *     crc(A||B) = mulmod(crc(A), x^(8*len_b)) ^ crc(B)
 * where mulmod is carry-less multiplication modulo P in the bit-reflected domain. x^(2^k) are
 * computed by repeated squaring: 64 squarings cover any 64-bit length, O(log len) multiplies. */
#include "crc64.h"

/* a * b mod P, both in reflected representation (bit 63 is x^0). */
static uint64_t gf2_mulmod(uint64_t a, uint64_t b) {
    uint64_t prod = 0;
    for (int i = 0; i < 64; i++) {
        if (a & 0x8000000000000000ULL) /* coefficient of x^i in a */
            prod ^= b;
        a <<= 1;
        /* b := b * x mod P */
        b = (b & 1) ? (b >> 1) ^ COSFAST_CRC64_POLY_REFLECTED : b >> 1;
    }
    return prod;
}

uint64_t cosfast_crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
    if (len_b == 0)
        return crc_a;
    /* power = x^8 (one byte) in reflected form: x^8 is bit 63-8. */
    uint64_t power = 0x8000000000000000ULL >> 8;
    uint64_t acc = crc_a;
    while (len_b) {
        if (len_b & 1)
            acc = gf2_mulmod(acc, power);
        len_b >>= 1;
        if (len_b)
            power = gf2_mulmod(power, power);
    }
    return acc ^ crc_b;
}
