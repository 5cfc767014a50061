/*
 * chunk_int.h - the compact chunk encoding of on-disk blocks: values that
 * are integers after scaling by a power of ten, stored as bit-packed deltas.
 *
 * Why: most of what Prometheus-style exporters send are counters of whole
 * units or of hundredths (node_cpu_seconds_total), and a Gorilla XOR chunk
 * spends ~50 bits on each step of a two-decimal counter because the step
 * changes most mantissa bits. The same values as integers (value x 10^s)
 * differ by a few thousand: ~12 bits. Timestamps at a regular interval pack
 * to 0 bits. The block writer (block_write.c) tries this encoding for every
 * chunk it writes and keeps it only when it decodes back bit for bit and is
 * smaller than the XOR chunk; the head does the same to each full chunk once
 * its successor starts (vg_chunk_compact); the open chunk and remote read
 * stay XOR.
 *
 * Layout (docs/storage.md, "Chunk encodings"), little-endian bit packing:
 *   0x00 0x00       an XOR chunk's count of 0: marks a non-XOR chunk (the
 *                   XOR writer never writes an empty chunk with data)
 *   0x01            encoding: scaled integers
 *   uvarint n       samples, 1..65535
 *   flags           bits 0-3 decimal scale s, bit 4 exceptions follow,
 *                   bit 5 timestamp multiplier follows, bit 6 value
 *                   multiplier follows, bit 7 zero
 *   zigzag t0; when n > 1: zigzag tmin, [uvarint tmul >= 2], byte tw <= 64
 *   zigzag k0; when n > 1: zigzag kmin, [uvarint kmul >= 2], byte kw <= 64
 *   (n-1) x tw bits, byte-aligned: t[i] = t[i-1] + tmin + tmul * p
 *   (n-1) x kw bits, byte-aligned: k[i] = k[i-1] + kmin + kmul * q
 *   [uvarint count, then per exception: uvarint index (the first) or gap
 *    to the previous index (>= 1), 8 bytes of raw float64, little-endian]
 * and nothing after. Sample i is (double)k[i] / 10^s unless it is an
 * exception (NaN, the stale marker, +-Inf, -0, a value with more digits),
 * whose raw bits are stored instead. Integer arithmetic wraps (uint64).
 *
 * The decoder takes untrusted bytes (a block file): the layout is checked
 * whole at init, and no read goes past the data.
 */
#ifndef VIGIL_TSDB_CHUNK_INT_H
#define VIGIL_TSDB_CHUNK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

#define VG_CHUNK_ENC_INT 1
/* The encoder's limit (samples per chunk); the format allows 65535. */
#define VG_CHUNK_INT_MAX_ENCODE 1024

typedef struct vg_chunk_int_iter {
    const uint8_t *tp, *kp, *xp, *xend; /* packed timestamps, values, next exception, end */
    size_t tlen, klen;                  /* bytes of each packed section */
    uint64_t tbit, kbit;                /* next bit to read in each */
    uint64_t tmin, tmul, kmin, kmul, k;
    int64_t ts;
    double div;
    uint32_t total, read;
    uint32_t xnext, xleft; /* index of the next exception; exceptions left */
    uint8_t tw, kw;
    vg_err_t err;
} vg_chunk_int_iter;

/* True when data is a non-XOR chunk (marked by an XOR count of 0 and more
 * bytes); which encoding is the third byte's business. */
static inline int vg_chunk_is_compact(const uint8_t *data, size_t len)
{
    return len > 2 && data && data[0] == 0 && data[1] == 0;
}

/* Samples announced by a chunk's header, either encoding (0 if malformed). */
size_t vg_chunk_data_samples(const uint8_t *data, size_t len);

/* Encode n samples (timestamps strictly increasing or not: any int64) into
 * out (reset first). VG_EAGAIN when the values do not fit the encoding
 * (too many exceptions, n outside 1..VG_CHUNK_INT_MAX_ENCODE) or the
 * result does not decode back bit for bit; VG_ENOMEM. */
vg_err_t vg_chunk_int_encode(const int64_t *ts, const double *v, size_t n, vg_buf *out);

/* Decoder over data[0..len) (not copied). Never fails; a malformed chunk
 * shows up as VG_ECORRUPT from next()/read() returning 0. */
void vg_chunk_int_iter_init(vg_chunk_int_iter *it, const uint8_t *data, size_t len);
int vg_chunk_int_iter_next(vg_chunk_int_iter *it, int64_t *ts, double *v);
size_t vg_chunk_int_iter_read(vg_chunk_int_iter *it, int64_t *ts, double *v, size_t max);

#endif
