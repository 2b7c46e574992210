/* Portable slice-by-8 CRC-64/XZ kernel. Tables are built once, on first use; the build is
 * idempotent so a benign race between threads only repeats identical work. */
#include <string.h>
#include "crc64.h"

static uint64_t crc64_tables[8][256];
static volatile int crc64_tables_ready = 0;

static void crc64_build_tables(void) {
    for (int n = 0; n < 256; n++) {
        uint64_t c = (uint64_t)n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ COSFAST_CRC64_POLY_REFLECTED : c >> 1;
        crc64_tables[0][n] = c;
    }
    for (int n = 0; n < 256; n++) {
        uint64_t c = crc64_tables[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc64_tables[0][c & 0xff] ^ (c >> 8);
            crc64_tables[t][n] = c;
        }
    }
    __atomic_store_n(&crc64_tables_ready, 1, __ATOMIC_RELEASE);
}

uint64_t cosfast_crc64_table(uint64_t crc, const unsigned char *buf, size_t len) {
    if (!__atomic_load_n(&crc64_tables_ready, __ATOMIC_ACQUIRE))
        crc64_build_tables();
    uint64_t c = ~crc;
    while (len && ((uintptr_t)buf & 7)) {
        c = crc64_tables[0][(c ^ *buf++) & 0xff] ^ (c >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, buf, 8); /* little-endian hosts only: x86-64 and aarch64 */
        c ^= word;
        c = crc64_tables[7][c & 0xff] ^ crc64_tables[6][(c >> 8) & 0xff] ^
            crc64_tables[5][(c >> 16) & 0xff] ^ crc64_tables[4][(c >> 24) & 0xff] ^
            crc64_tables[3][(c >> 32) & 0xff] ^ crc64_tables[2][(c >> 40) & 0xff] ^
            crc64_tables[1][(c >> 48) & 0xff] ^ crc64_tables[0][c >> 56];
        buf += 8;
        len -= 8;
    }
    while (len--)
        c = crc64_tables[0][(c ^ *buf++) & 0xff] ^ (c >> 8);
    return ~c;
}
