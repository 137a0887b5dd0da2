/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every segment file and
 * metadata log record.  It uses the SSE4.2 crc32 instruction on three
 * interleaved streams when the CPU has it, else a slicing-by-8 table.
 */
#ifndef MV_CRC32C_H
#define MV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) with the n bytes at p and return the new value;
 * the pre- and post-inversion are done inside, so that
 * mv_crc32c(mv_crc32c(0, a, na), b, nb) == mv_crc32c(0, a || b, na + nb).
 * crc32c("123456789") is 0xe3069283.  Thread-safe; the first call picks
 * the implementation and builds the tables.
 */
uint32_t mv_crc32c(uint32_t crc, const void *p, size_t n);

/*
 * The two implementations, for tests and benchmarks.  mv_crc32c_hw may be
 * called only when mv_crc32c_hw_available() returns non-zero.
 */
uint32_t mv_crc32c_sw(uint32_t crc, const void *p, size_t n);
uint32_t mv_crc32c_hw(uint32_t crc, const void *p, size_t n);
int mv_crc32c_hw_available(void);

#endif
