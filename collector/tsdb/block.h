/*
 * block.h - immutable on-disk blocks: write once, read through mmap.
 *
 * A block holds every series of one tenant for a time range [mint, maxt)
 * (maxt exclusive, as in Prometheus), in a directory named by its ULID:
 *   <parent>/<ULID>/meta.json   range, stats, compaction level and sources,
 *                               and vigil.resolution (0 raw, 300000, 3600000)
 *   <parent>/<ULID>/chunks/000001...  chunk segments ("VGCK", version 2):
 *                               per chunk a uvarint length, the chunk bytes
 *                               (XOR, or compact: chunk_int.h), a CRC32C
 *   <parent>/<ULID>/index       symbols, series, postings (block_index.h)
 * The writer builds everything in "<ULID>.tmp", fsyncs each file and the
 * directory, then renames, so a crash leaves either no block or a whole one
 * (a leftover *.tmp is removed at open by the caller's listing).
 *
 * The writer takes any series and samples or chunks, so the cutter, the
 * compactor and a later downsampler all use the same path; resolution is
 * only recorded. A reader maps the files, checks the index's checksums and
 * bounds at open (VG_ECORRUPT naming the file and section) and hands out
 * chunk bytes that point into the map, so a select copies nothing but small
 * descriptors. Blocks are reference counted: a query holds a reference while
 * it iterates, and a block marked deleted is unmapped and removed from disk
 * by whoever drops the last reference.
 */
#ifndef VIGIL_TSDB_BLOCK_H
#define VIGIL_TSDB_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/labels.h"

#define VG_ULID_LEN          26
#define VG_BLOCK_META_MAX    (4u << 20) /* meta.json cap */
#define VG_BLOCK_SEGMENT_MAX (512u << 20)

typedef struct vg_block_meta {
    char ulid[VG_ULID_LEN + 1];
    int64_t mint, maxt; /* [mint, maxt) */
    uint64_t num_samples, num_series, num_chunks;
    int level; /* 1 for a block cut from the head */
    char (*sources)[VG_ULID_LEN + 1];
    size_t nsources;
    int64_t resolution_ms; /* 0 raw; else the downsampling step */
} vg_block_meta;

/* One encoded chunk and its time range (inclusive). */
typedef struct vg_block_chunk {
    int64_t mint, maxt;
    const uint8_t *data;
    size_t len;
} vg_block_chunk;

/* ---- writing ---- */
typedef struct vg_block_writer vg_block_writer_t;

/* Start a block for [mint, maxt) under directory parent (created if needed). */
vg_err_t vg_block_writer_new(const char *parent, int64_t mint, int64_t maxt, int64_t resolution_ms,
                             vg_block_writer_t **out, vg_error *err);
/* Add a series; labels sorted, each series strictly after the previous one by
 * vg_labels_cmp; chunks in time order. VG_EINVAL otherwise. */
vg_err_t vg_block_writer_add(vg_block_writer_t *w, const vg_label_t *l, size_t n,
                             const vg_block_chunk *c, size_t nc, vg_error *err);
/* Add a series from samples in strictly increasing time order (cut into
 * chunks of VG_CHUNK_MAX_SAMPLES). ns == 0 adds nothing. */
vg_err_t vg_block_writer_add_samples(vg_block_writer_t *w, const vg_label_t *l, size_t n,
                                     const int64_t *ts, const double *v, size_t ns, vg_error *err);
/* Record compaction level and the source ULIDs (default: level 1, itself). */
vg_err_t vg_block_writer_set_sources(vg_block_writer_t *w, int level, const char *const *src,
                                     size_t n);
/* Write index and meta, fsync, rename into place; the ULID goes to ulid
 * (27 bytes) when not NULL. An empty block (no series) is not written and
 * gives VG_EAGAIN. The writer must still be freed. */
vg_err_t vg_block_writer_commit(vg_block_writer_t *w, char *ulid, vg_error *err);
/* Free; removes the tmp directory unless committed. NULL is a no-op. */
void vg_block_writer_free(vg_block_writer_t *w);

/* ---- reading ---- */
typedef struct vg_block vg_block_t;

/* Open the block directory dir (refcount 1). VG_ECORRUPT / VG_EIO with a
 * message naming the file and section. */
vg_err_t vg_block_open(const char *dir, vg_block_t **out, vg_error *err);
/* Take / drop a reference. The last drop unmaps, and removes the directory
 * if vg_block_mark_deleted was called. Thread-safe. */
void vg_block_ref(vg_block_t *b);
void vg_block_unref(vg_block_t *b);
/* Delete the directory once the last reference is dropped. */
void vg_block_mark_deleted(vg_block_t *b);
const vg_block_meta *vg_block_get_meta(const vg_block_t *b);
const char *vg_block_dir(const vg_block_t *b);
/* Bytes on disk of chunks and index (for bytes-per-sample figures). */
uint64_t vg_block_size(const vg_block_t *b);

/* A series read from a block: labels and chunks point into the map. */
typedef struct vg_block_series {
    const vg_label_t *labels;
    size_t nlabels;
    vg_block_chunk *chunks;
    size_t nchunks;
} vg_block_series;

/* Series selected by the matchers (nm == 0: all) with a chunk overlapping
 * [mint, maxt] (only those chunks), sorted by labels, into arena a. Labels
 * and chunk bytes point into the map (valid while the caller holds a
 * reference). Chunk CRCs are checked: VG_ECORRUPT names the segment. */
vg_err_t vg_block_select(vg_block_t *b, vg_matcher_t *const *m, size_t nm, int64_t mint,
                         int64_t maxt, vg_arena_t *a, vg_block_series **out, size_t *n,
                         vg_error *err);
/* Sorted distinct label names (name == NULL) or values of name of the
 * series selected by the matchers, into a (pointing into the map). */
vg_err_t vg_block_label_strings(vg_block_t *b, const char *name, vg_matcher_t *const *m, size_t nm,
                                vg_arena_t *a, const char ***out, size_t *n, vg_error *err);

/* ---- meta.json and directories ---- */

/* Parse meta.json text (untrusted, at most VG_BLOCK_META_MAX). Free with
 * vg_block_meta_clear. */
vg_err_t vg_block_meta_parse(const char *text, size_t len, vg_block_meta *m, vg_error *err);
void vg_block_meta_clear(vg_block_meta *m);
/* ULIDs of the block directories under parent, sorted; removes leftover
 * *.tmp directories. Free with vg_free(*out) (one allocation). */
vg_err_t vg_block_list(const char *parent, char ***out, size_t *n, vg_error *err);
/* New ULID for time ms into buf (27 bytes). */
void vg_ulid_new(int64_t ms, char *buf);
/* Remove a directory tree (block dirs only: files and one level of subdirs). */
vg_err_t vg_block_rmdir(const char *dir);

#endif
