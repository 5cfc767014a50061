/*
 * chunk.h - Gorilla-compressed chunks of (timestamp, float) samples.
 *
 * One chunk holds up to VG_CHUNK_MAX_SAMPLES samples of one series, in
 * timestamp order. Timestamps are delta-of-delta encoded and values XOR
 * encoded (Facebook's Gorilla paper, with the bucket layout of Prometheus's
 * XOR chunk), which makes a typical scrape sample cost 1-2 bytes.
 *
 * Layout: a 2-byte big-endian sample count, then a bit stream. The count in
 * front lets a reader stop without a terminator, and the whole encoding is a
 * plain byte string, so a chunk can later be written to disk as is.
 *
 * Values are stored as raw IEEE-754 bits, so every double survives bit for
 * bit: NaN payloads (the Prometheus stale marker 0x7ff0000000000002), -0,
 * +-Inf. The reader treats its input as untrusted: every read is bounds
 * checked and a malformed stream ends the iteration with VG_ECORRUPT.
 */
#ifndef VIGIL_TSDB_CHUNK_H
#define VIGIL_TSDB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/chunk_int.h"
#include "vigil/error.h"

#define VG_CHUNK_MAX_SAMPLES 120

typedef struct vg_chunk vg_chunk_t;

/* New empty chunk; NULL on ENOMEM. */
vg_chunk_t *vg_chunk_new(void);
/* New empty chunk with room for bytes of encoding to start with (the head
 * starts at half its previous chunk, then grows by quarters: fewer
 * reallocations than doubling from 32 bytes, and at most a quarter unused). */
vg_chunk_t *vg_chunk_new_sized(size_t bytes);
/* Free a chunk; NULL is a no-op. */
void vg_chunk_free(vg_chunk_t *c);
/* Append a sample. The caller guarantees ts is after the last one.
 * VG_ETOOLARGE when the chunk is full (65535 samples), VG_ENOMEM. */
vg_err_t vg_chunk_append(vg_chunk_t *c, int64_t ts, double v);
/* Give back the unused tail of the buffer (a full chunk no longer grows;
 * appending later still works). */
void vg_chunk_shrink(vg_chunk_t *c);
/* Re-encode a chunk that will not grow again in the compact scaled-integer
 * form (chunk_int.h) when that is smaller and decodes back bit for bit;
 * otherwise leave it as it is. Appending to a compacted chunk is VG_EINVAL;
 * vg_chunk_bytes then returns the compact bytes, which vg_chunk_iter reads.
 * The head calls it on a full chunk once its successor starts: a two-decimal
 * counter's 120 samples shrink from ~800 to ~130 bytes. VG_OK whether or not
 * it changed; VG_ECORRUPT if the chunk does not decode; VG_ENOMEM. */
vg_err_t vg_chunk_compact(vg_chunk_t *c);
/* A hint: start loading the bytes the next append writes (no effect otherwise). */
void vg_chunk_prefetch_tail(const vg_chunk_t *c);
/* Number of samples in the chunk. */
size_t vg_chunk_num_samples(const vg_chunk_t *c);
/* The encoded bytes (count header included); valid until the next append. */
const uint8_t *vg_chunk_bytes(const vg_chunk_t *c, size_t *len);
/* Timestamp of the first / last sample; undefined when the chunk is empty. */
int64_t vg_chunk_min_time(const vg_chunk_t *c);
int64_t vg_chunk_max_time(const vg_chunk_t *c);

/* Decoder over encoded bytes (which it does not own or copy). Stack-allocate. */
typedef struct vg_chunk_iter {
    const uint8_t *data;
    size_t len;     /* bytes */
    size_t bitpos;  /* next bit to read, from the start of data */
    uint32_t total; /* samples announced by the header */
    uint32_t read;  /* samples decoded so far */
    int64_t ts;
    uint64_t vbits;
    int64_t delta;
    uint8_t leading, trailing;
    uint8_t compact; /* a block's scaled-integer chunk (chunk_int.h): ci decodes */
    vg_err_t err;
    vg_chunk_int_iter ci;
} vg_chunk_iter;

/* Start decoding data[0..len), XOR or compact (chunk_int.h: blocks hold
 * both). Never fails; a bad header shows up in next(). */
void vg_chunk_iter_init(vg_chunk_iter *it, const uint8_t *data, size_t len);
/* Advance: 1 and the sample in *ts, *v; 0 at the end or on corrupt input
 * (then vg_chunk_iter_err says VG_ECORRUPT). Never reads out of bounds. */
int vg_chunk_iter_next(vg_chunk_iter *it, int64_t *ts, double *v);
/* Decode up to max samples into ts[], v[]: how many (0 at the end or on
 * corrupt input, as next()). The same samples next() would give, faster. */
size_t vg_chunk_iter_read(vg_chunk_iter *it, int64_t *ts, double *v, size_t max);
/* VG_OK, or VG_ECORRUPT once the stream was found malformed. */
vg_err_t vg_chunk_iter_err(const vg_chunk_iter *it);

#endif
