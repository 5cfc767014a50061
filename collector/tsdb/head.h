/*
 * head.h - the in-memory head of one tenant: series, chunks, postings.
 *
 * Each series is found by its id (vg_labels_hash) in an open-addressing
 * table whose collisions are resolved by comparing the labels, and it gets a
 * dense ref (0, 1, 2...) used by the postings index. Labels are interned in
 * the head's vg_strtab. A series keeps a list of Gorilla chunks and cuts a
 * new one every VG_CHUNK_MAX_SAMPLES samples.
 *
 * Locking: a rwlock (writer-preferring) guards the series table, the ref
 * array and the postings; a striped mutex (by ref) guards each series'
 * chunks. Appends take the rwlock shared plus one stripe, so ingest threads
 * only contend on the same stripe; creating a series takes the rwlock
 * exclusively. Queries take the rwlock shared and copy what they need under
 * the stripes (a snapshot), then release everything before the caller
 * iterates. vg_head_truncate takes the rwlock exclusively.
 *
 * Out-of-order samples: a sample older than its series' newest one but
 * within the window is inserted in order by decoding the one chunk that
 * covers its time, inserting, and re-encoding (split in two past
 * VG_CHUNK_MAX_SAMPLES), so chunks stay time-ordered, disjoint and small and
 * the common in-order path pays nothing. OOO samples are rare (a sender with
 * several queues), so O(120) per such sample is the right trade.
 *
 * Refs: handed out in creation order (so postings stay sorted by appending)
 * and NEVER reused or renumbered, also across vg_head_truncate. A removed
 * series' ref simply stops resolving (vg_head_append answers VG_ENOTFOUND);
 * a series looked up again by labels after its removal gets a NEW ref. Refs
 * are per process: a replay builds a new head whose refs differ, so the WAL
 * must map its own record refs to head refs by labels. Series pointers live
 * in pages of 4096 refs; a page whose series are all removed is freed, so
 * churn costs 8 bytes per 4096 dead refs, not a pointer per dead series.
 */
#ifndef VIGIL_TSDB_HEAD_H
#define VIGIL_TSDB_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/labels.h"

typedef struct vg_head vg_head_t;

#define VG_HEAD_OOO_DEFAULT_MS (10 * 60 * 1000) /* Prometheus-style out_of_order_time_window */

typedef enum vg_append_res {
    VG_APPEND_ADDED,
    VG_APPEND_DUPLICATE,    /* a stored sample has this timestamp and value: a no-op */
    VG_APPEND_OUT_OF_ORDER, /* out of bounds: older than the series' newest sample minus the
                               out-of-order window, or than the last truncation; not stored */
    VG_APPEND_CONFLICT,     /* a stored sample has this timestamp, another value */
} vg_append_res;

/* New empty head; NULL on ENOMEM. */
vg_head_t *vg_head_new(void);
/* Free the head and everything in it; NULL is a no-op. No concurrent use. */
void vg_head_free(vg_head_t *h);

/* Accept samples up to window_ms older than a series' newest one (inserted
 * in order); < 0 accepts none. A new head uses 10 minutes. */
void vg_head_set_ooo_window(vg_head_t *h, int64_t window_ms);

/* Cap the live series: creating one more answers VG_ELIMIT. 0 = no cap. */
void vg_head_set_max_series(vg_head_t *h, uint64_t max);

/* Ref of the series with these sorted, validated labels, creating it when
 * new (*created = 1). VG_ENOMEM; VG_ELIMIT when a new series would pass the
 * max_series cap. Thread-safe. */
vg_err_t vg_head_series(vg_head_t *h, const vg_label_t *l, size_t n, uint32_t *ref, int *created);
/* One series of a batched lookup: the caller fills l, n; lookup fills the rest. */
typedef struct vg_head_key {
    const vg_label_t *l; /* sorted, validated */
    size_t n;
    uint32_t ref; /* valid when found */
    int found;
} vg_head_key;
/* Find many existing series at once (never creates; creation is
 * vg_head_series), prefetching each level of the table so the cache misses
 * of all of them overlap, and the tail chunk each will append to next.
 * Marks the found series as live like vg_head_series. Thread-safe. */
void vg_head_lookup_n(vg_head_t *h, vg_head_key *k, size_t count);
/* Append one sample to series ref; *res says what happened. VG_ENOTFOUND for
 * an unknown ref, VG_ENOMEM. Thread-safe. */
vg_err_t vg_head_append(vg_head_t *h, uint32_t ref, int64_t ts, double v, vg_append_res *res);
/* vg_head_append of ts[i], v[i] for i < n in order under one lock round;
 * res[i] for the first *done samples, which stop at the first error. */
vg_err_t vg_head_append_n(vg_head_t *h, uint32_t ref, const int64_t *ts, const double *v, size_t n,
                          vg_append_res *res, size_t *done);

/* Live series (removed ones not counted). */
size_t vg_head_num_series(vg_head_t *h);
/* Oldest and newest sample time held; 0 when the head holds no sample.
 * Reflects truncation. */
int vg_head_time_range(vg_head_t *h, int64_t *mint, int64_t *maxt);

/* From now on refuse samples older than mint as out of bounds
 * (VG_APPEND_OUT_OF_ORDER); never lowers it. A block cut of [.., mint) calls
 * this BEFORE taking its snapshot, so no late (out-of-order) sample can land
 * below mint between the snapshot and vg_head_truncate and be dropped
 * unpersisted. Thread-safe. */
void vg_head_set_min_valid(vg_head_t *h, int64_t mint);

/* Drop every chunk whose samples are all older than mint (the blocks layer
 * calls this after persisting [.., mint) from a snapshot). From then on a
 * sample older than mint is refused as out of bounds (VG_APPEND_OUT_OF_ORDER),
 * since a block already covers that time. A series left without samples is
 * removed (postings and strings freed) once it has not been looked up or
 * appended to since the previous truncate, so a writer holding a fresh ref
 * never loses its series. Refs of the remaining series are unchanged. Cost:
 * O(series) under the exclusive lock, plus an index rebuild when series were
 * removed. VG_ENOMEM leaves a consistent head (the index may keep removed
 * refs, which readers skip). Thread-safe. */
vg_err_t vg_head_truncate(vg_head_t *h, int64_t mint);

/* A copied series: labels and the encoded chunks overlapping the range. */
typedef struct vg_snap_chunk {
    const uint8_t *data;
    size_t len;
    int64_t mint, maxt; /* first and last sample's time */
} vg_snap_chunk;

typedef struct vg_snap_series {
    vg_label_t *labels;
    size_t nlabels;
    vg_snap_chunk *chunks;
    size_t nchunks;
} vg_snap_series;

/* Copy every series selected by the matchers that has a chunk overlapping
 * [mint, maxt] into arena a, sorted by labels. nm == 0 selects all. */
vg_err_t vg_head_snapshot(vg_head_t *h, vg_matcher_t *const *m, size_t nm, int64_t mint,
                          int64_t maxt, vg_arena_t *a, vg_snap_series **out, size_t *n);
/* Refs of every live series, sorted by labels (vg_free the array). A block
 * cut snapshots them a slice at a time with vg_head_snapshot_refs, so it
 * never holds a copy of the whole head's range. Thread-safe. */
vg_err_t vg_head_refs_sorted(vg_head_t *h, uint32_t **refs, size_t *n);
/* vg_head_snapshot of the series refs[0..nrefs) in that order, into a; refs
 * removed since, and series without a chunk overlapping [mint, maxt], are
 * skipped. Thread-safe. */
vg_err_t vg_head_snapshot_refs(vg_head_t *h, const uint32_t *refs, size_t nrefs, int64_t mint,
                               int64_t maxt, vg_arena_t *a, vg_snap_series **out, size_t *n);
/* Sorted distinct label names (name == NULL) or values of label name, of the
 * series selected by the matchers (all series when nm == 0), copied into a. */
vg_err_t vg_head_label_strings(vg_head_t *h, const char *name, vg_matcher_t *const *m, size_t nm,
                               int64_t mint, int64_t maxt, vg_arena_t *a, const char ***out,
                               size_t *n);

#endif
