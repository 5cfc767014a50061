/*
 * merge.h - merge one series' samples from several sources (blocks, head).
 *
 * A query or a compaction sees the same series in several places: blocks
 * whose ranges may overlap (out-of-order data, a re-cut) and the head. Each
 * source contributes a run of time-ordered chunks; the iterator merges the
 * runs by timestamp and drops duplicate timestamps (the earliest run wins,
 * so callers list older sources first). Grouping series by labels across
 * sources is vg_merge_group: a k-way merge of the already sorted lists,
 * O(n * k) label comparisons for k sources (a few blocks and the head).
 */
#ifndef VIGIL_TSDB_MERGE_H
#define VIGIL_TSDB_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "vigil/arena.h"

/* The chunks one source holds for a series, in time order. */
typedef struct vg_mrun {
    const vg_block_chunk *c;
    size_t n;
} vg_mrun;

/* A series and its runs, oldest source first. */
typedef struct vg_mseries {
    const vg_label_t *labels;
    size_t nlabels;
    vg_mrun *runs;
    size_t nruns;
} vg_mseries;

/* Group k sources of label-sorted series (src[i][0..nsrc[i])) into merged
 * series sorted by labels, allocated in a. */
vg_err_t vg_merge_group(vg_block_series *const *src, const size_t *nsrc, size_t k, vg_arena_t *a,
                        vg_mseries **out, size_t *n);

typedef struct vg_mcur {
    const vg_mrun *run;
    size_t next; /* next chunk to open */
    vg_chunk_iter it;
    int live, has;
    int64_t ts;
    double v;
} vg_mcur;

typedef struct vg_merge_iter {
    vg_mcur *cur; /* caller storage, at least nruns entries */
    size_t n;
    int64_t last;
    int started;
    vg_err_t err;
} vg_merge_iter;

/* Start iterating s using cur (>= s->nruns entries) as scratch. */
void vg_merge_iter_init(vg_merge_iter *it, vg_mcur *cur, const vg_mseries *s);
/* Next sample in time order, duplicates dropped: 1, or 0 at the end. */
int vg_merge_iter_next(vg_merge_iter *it, int64_t *ts, double *v);
/* Up to max (>= 1) next samples into ts[], v[], the same ones next() gives
 * in the same order: how many, 0 at the end. Decodes a chunk at a time. */
size_t vg_merge_iter_read(vg_merge_iter *it, int64_t *ts, double *v, size_t max);

#endif
