/* CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones): the value COS sends
 * in x-cos-hash-crc64ecma. crc64(b"123456789") == 0x995DC9BBDF1939FA, crc64(b"") == 0.
 *
 * Every kernel takes and returns the *finalised* CRC (as users see it), so a running value
 * can be fed back in: update(update(0, a), b) == update(0, a || b). Lengths are size_t. */
#ifndef COSFAST_CRC64_H
#define COSFAST_CRC64_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reflected form of the ECMA-182 polynomial 0x42F0E1EBA9EA3693. */
#define COSFAST_CRC64_POLY_REFLECTED 0xC96C5795D7870F42ULL

typedef uint64_t (*cosfast_crc64_fn)(uint64_t crc, const unsigned char *buf, size_t len);

/* The kernel picked at start-up (or forced by cosfast_crc64_select), through one pointer. */
uint64_t cosfast_crc64_update(uint64_t crc, const unsigned char *buf, size_t len);

/* crc(A || B) from crc(A), crc(B) and len(B); popcount(len_b) multiplies, PCLMULQDQ when the
 * CPU has it. len_b == 0 gives crc_a ^ crc_b (crc_b is 0 for an empty B). */
uint64_t cosfast_crc64_combine(uint64_t crc_a, uint64_t crc_b, uint64_t len_b);
/* The same without PCLMULQDQ (any CPU). */
uint64_t cosfast_crc64_combine_portable(uint64_t crc_a, uint64_t crc_b, uint64_t len_b);

/* Portable slice-by-8 kernel; always available, the reference for the others. */
uint64_t cosfast_crc64_table(uint64_t crc, const unsigned char *buf, size_t len);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define COSFAST_CRC64_X86 1
/* Carry-less-multiply kernels (one file each); call only when the matching cpu check holds. */
uint64_t cosfast_crc64_clmul(uint64_t crc, const unsigned char *buf, size_t len);   /* PCLMULQDQ, xmm */
uint64_t cosfast_crc64_vpclmul(uint64_t crc, const unsigned char *buf, size_t len); /* VPCLMULQDQ, ymm */
uint64_t cosfast_crc64_avx512(uint64_t crc, const unsigned char *buf, size_t len);  /* VPCLMULQDQ, zmm */
/* CPU and OS support (cpuid and, for ymm/zmm state, xgetbv), probed once. */
int cosfast_cpu_has_clmul(void);
int cosfast_cpu_has_vpclmul(void);
int cosfast_cpu_has_avx512_vpclmul(void);
#else
#define COSFAST_CRC64_X86 0
#endif

/* Kernel names, best first: "avx512", "vpclmul", "clmul", "table" (as known to the dispatcher). */
const char *cosfast_crc64_impl_name(void);
/* 1 if the CPU (and this build) can run the named kernel, 0 if not, -1 if the name is unknown. */
int cosfast_crc64_impl_supported(const char *name);
/* What the named kernel needs from the CPU, for error messages; NULL if the name is unknown. */
const char *cosfast_crc64_impl_needs(const char *name);
/* Picks a kernel: NULL or "" picks the best the CPU supports. Returns 0, or -1 when the name is
 * unknown, -2 when it is known but unsupported here. */
int cosfast_crc64_select(const char *name);
/* Direct access to one kernel by name, for tests that compare kernels; NULL if unusable. */
cosfast_crc64_fn cosfast_crc64_kernel(const char *name);

#ifdef __cplusplus
}
#endif
#endif
