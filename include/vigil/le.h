/*
 * le.h - little-endian integers in byte buffers, for on-disk formats.
 *
 * Every file format Vigil writes (WAL frames, spool records, audit segments)
 * is little endian whatever the host, so files move between machines. Byte
 * by byte, so unaligned pointers are fine; compilers turn these into plain
 * loads and stores.
 */
#ifndef VIGIL_LE_H
#define VIGIL_LE_H

#include <stdint.h>

/* Store v at p (2 bytes). */
static inline void vg_le_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

/* Store v at p (4 bytes). */
static inline void vg_le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Store v at p (8 bytes). */
static inline void vg_le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Load 2 bytes at p. */
static inline uint16_t vg_le_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Load 4 bytes at p. */
static inline uint32_t vg_le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Load 8 bytes at p. */
static inline uint64_t vg_le_get64(const uint8_t *p)
{
    return (uint64_t)vg_le_get32(p) | (uint64_t)vg_le_get32(p + 4) << 32;
}

#endif
