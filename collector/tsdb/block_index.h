/*
 * block_index.h - a block's index file: symbols, series, postings.
 *
 * Layout (all integers big-endian; uvarint/varint as in protobuf):
 *   "VGIX" u8 version=1, 3 zero bytes
 *   five sections, each  u32 length | payload | u32 CRC32C(payload):
 *     1 symbols:   uvarint count, then count NUL-terminated strings, sorted,
 *                  distinct; a symbol ref is its position
 *     2 series:    per series: uvarint nlabels, (uvarint name, uvarint
 *                  value) symbol refs, uvarint nchunks, then per chunk
 *                  varint mint (first: absolute, then minus the previous
 *                  maxt), uvarint maxt - mint, uvarint ref (first absolute,
 *                  then a delta); series sorted by labels
 *     3 series offsets: uvarint count N, N x u32 offset into section 2
 *     4 postings:  lists of uvarint count, then delta-coded series numbers
 *     5 postings table: uvarint count, entries (uvarint name, uvarint
 *                  value, uvarint offset into 4) sorted by (name, value);
 *                  the entry ("", "") lists every series
 *   TOC: five u64 section offsets, u32 CRC32C of those 40 bytes
 * Series are numbered 0..N-1 in label order, so postings are sorted arrays of
 * small integers and selection reuses the head's merge helpers. Symbols are
 * NUL-terminated so label strings can point straight into the map.
 *
 * The reader treats the bytes as untrusted: open checks magic, TOC, section
 * bounds and CRCs, symbol order and the tables; series entries and postings
 * lists are decoded lazily with every offset and length bounds-checked.
 */
#ifndef VIGIL_TSDB_BLOCK_INDEX_H
#define VIGIL_TSDB_BLOCK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "tsdb/postings.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"

#define VG_BINDEX_VERSION 1
#define VG_BINDEX_TOC_LEN 44

/* ---- varints (shared by the block files) ---- */
vg_err_t vg_bx_put_uvarint(vg_buf *b, uint64_t v);
vg_err_t vg_bx_put_varint(vg_buf *b, int64_t v);
vg_err_t vg_bx_put_u32(vg_buf *b, uint32_t v);
vg_err_t vg_bx_put_u64(vg_buf *b, uint64_t v);
uint32_t vg_bx_get_u32(const uint8_t *p);
uint64_t vg_bx_get_u64(const uint8_t *p);

/* Bounds-checked decoder: after any failure ok is 0 and values read are 0. */
typedef struct vg_bx_dec {
    const uint8_t *p, *end;
    int ok;
} vg_bx_dec;
uint64_t vg_bx_uvarint(vg_bx_dec *d);
int64_t vg_bx_varint(vg_bx_dec *d);

/* ---- writing ---- */

/* One series to index: labels already mapped to symbol refs. */
typedef struct vg_bindex_series {
    const uint32_t *syms; /* 2 * nlabels refs: name, value, ... */
    size_t nlabels;
    const vg_block_chunk *chunks; /* data unused; ref in .len */
    size_t nchunks;
} vg_bindex_entry;

/* Receives the index bytes in order; a non-OK return stops the build. */
typedef vg_err_t (*vg_bindex_emit)(void *ud, const void *p, size_t n);
/* Encode a whole index through emit: symbols sorted and distinct, series
 * sorted by labels; chunk refs travel in vg_block_chunk.len. */
vg_err_t vg_bindex_build(const char *const *syms, size_t nsyms, const vg_bindex_entry *s, size_t ns,
                         vg_bindex_emit emit, void *ud);

/* ---- reading ---- */
typedef struct vg_bindex vg_bindex_t;

/* Parse data[0..len) (which must outlive the index). verify_crc = 0 skips
 * the checksums (fuzzing). VG_ECORRUPT with "index: <section>: ..." */
vg_err_t vg_bindex_open(const uint8_t *data, size_t len, int verify_crc, vg_bindex_t **out,
                        vg_error *err);
void vg_bindex_free(vg_bindex_t *ix);
uint32_t vg_bindex_num_series(const vg_bindex_t *ix);
/* Series numbers selected by all matchers (nm == 0: all), sorted. out empty. */
vg_err_t vg_bindex_select(const vg_bindex_t *ix, vg_matcher_t *const *m, size_t nm,
                          vg_postings *out, vg_error *err);
/* Decode series i: labels point into data, chunks (data NULL, ref in .len)
 * into arena a. */
vg_err_t vg_bindex_series(const vg_bindex_t *ix, uint32_t i, vg_arena_t *a, vg_label_t **labels,
                          size_t *nlabels, vg_block_chunk **chunks, size_t *nchunks, vg_error *err);
/* Distinct label names, or values of name, in sorted order (into a). */
vg_err_t vg_bindex_strings(const vg_bindex_t *ix, const char *name, vg_arena_t *a,
                           const char ***out, size_t *n);

#endif
