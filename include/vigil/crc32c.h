/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of Vigil's on-disk records.
 *
 * The spool frames every record with a CRC32C, and the TSDB WAL is meant to
 * use the same function. Castagnoli rather than the zlib CRC because x86
 * has an instruction for it (SSE4.2 crc32): the spool checksums every byte
 * it writes and, when it opens, every byte it holds, so the checksum must
 * cost far less than the disk. A slice-by-8 table is the portable fallback.
 */
#ifndef VIGIL_CRC32C_H
#define VIGIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over n bytes of p; crc32c("123456789") == 0xe3069283. */
uint32_t vg_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable table-driven implementation (tests compare it to vg_crc32c). */
uint32_t vg_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
