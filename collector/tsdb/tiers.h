/*
 * tiers.h - retention tiers: scheduling, and which tier a query reads.
 *
 * Scheduling: vg_tiers_attach gives the store's block thread a downsampling
 * pass (downsample.h) and a retention pass (retention.h) after each round of
 * cuts and compactions. Ages are measured against each tenant's newest
 * sample (retention.h says why); unit tests pass an instant instead.
 *
 * Reading: a query reads the finest tier that holds each part of its range.
 * Raw data (raw blocks and the head) is read from where it starts
 * (raw_start); before that 5m blocks, and before the first 5m block 1h
 * blocks. Raw and downsampled blocks coexist for a while (a raw block is only
 * deleted after its 5m copy exists), so the cut-over points are the tiers'
 * oldest data, not block by block. The downsampled part is materialised per
 * series in the aggregate the caller asks for (vg_aggr_kind: the PromQL
 * evaluator passes what the function around the selector needs) and handed
 * to the ordinary merge as one more source, oldest first.
 */
#ifndef VIGIL_TSDB_TIERS_H
#define VIGIL_TSDB_TIERS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "tsdb/downsample.h"
#include "tsdb/tsdb.h"
#include "vigil/arena.h"
#include "vigil/metrics.h"

#define VG_DOWNSAMPLE_5M_AFTER_DEFAULT (40 * 3600 * 1000LL)      /* as Thanos */
#define VG_DOWNSAMPLE_1H_AFTER_DEFAULT (10 * 24 * 3600 * 1000LL) /* as Thanos */

struct vg_tsdb_blocks;
typedef struct vg_tiers vg_tiers_t;

typedef struct vg_tiers_opts {
    int64_t downsample_5m_after_ms; /* raw blocks this old get a 5m copy; 0 = 40h, < 0 = never */
    int64_t downsample_1h_after_ms; /* 5m blocks this old get a 1h copy; 0 = 10d, < 0 = never */
    int64_t keep_ms[3];             /* retention raw, 5m, 1h; 0 = 90d, 1y, 7y */
    uint64_t max_bytes;             /* 0 = no cap */
} vg_tiers_opts;

/* Give the block thread of bs the tier passes (and register
 * vigil_tsdb_blocks_deleted_total{tier,reason} in m, which may be NULL). */
vg_err_t vg_tiers_attach(struct vg_tsdb_blocks *bs, const vg_tiers_opts *o, vg_metrics_t *m,
                         vg_error *err);
/* vg_tiers_attach with the tier fields of a vg_tsdb_opts (vg_tsdb_open). */
vg_err_t vg_tiers_attach_tsdb(struct vg_tsdb_blocks *bs, const vg_tsdb_opts *o, vg_metrics_t *m,
                              vg_error *err);
/* Free; NULL is a no-op (vg_tsdb_blocks_free calls it). */
void vg_tiers_free(vg_tiers_t *t);
/* One downsampling then retention pass at now_ms (INT64_MIN: each tenant's
 * newest sample, as the block thread runs it); a no-op when not attached.
 * *nds / *ndel (may be NULL) get blocks written / deleted. */
vg_err_t vg_tiers_pass(struct vg_tsdb_blocks *bs, int64_t now_ms, size_t *nds, size_t *ndel,
                       vg_error *err);
/* The "now" of tenant index ti for the passes: now_ms, or when it is
 * INT64_MIN the tenant's newest sample (head and blocks; INT64_MIN if none). */
int64_t vg_tiers_tenant_now(struct vg_tsdb_blocks *bs, size_t ti, int64_t now_ms);
/* The block thread's step: vg_tiers_pass at wall-clock time, errors logged. */
void vg_tiers_run(struct vg_tsdb_blocks *bs);

/* Like vg_tsdb_select; where only downsampled data covers the range, series
 * carry the aggregate kind (VG_AGGR_AVG for plain selectors). For
 * VG_AGGR_COUNT raw samples read as 1 (stale markers stay), so the sum of the
 * values is the number of raw samples: count_over_time sums them. */
vg_err_t vg_tsdb_select_aggr(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                             int64_t mint, int64_t maxt, vg_aggr_kind kind, vg_seriesset_t **out,
                             vg_error *err);

/* ---- for tsdb_query.c ---- */

/* The blocks a select over [mint, maxt] reads, each referenced: raw ones in
 * b[0..nraw) (mint order), then downsampled ones (1h, then 5m, mint order). */
typedef struct vg_tier_sel {
    vg_block_t **b;
    size_t n, nraw;
    int64_t raw_start; /* downsampled samples are read before this */
    int64_t start_5m;  /* 1h samples before this */
} vg_tier_sel;

/* Choose the blocks; give them back with vg_tsdb_blocks_release(s->b, s->n). */
vg_err_t vg_tiers_acquire(vg_tsdb_t *db, const char *tenant, int64_t mint, int64_t maxt,
                          vg_tier_sel *s);
/* The downsampled part as one source of label-sorted series (without the
 * aggregate label) whose chunks hold the kind asked for, into a. */
vg_err_t vg_tiers_source(const vg_tier_sel *s, vg_matcher_t *const *m, size_t nm, int64_t mint,
                         int64_t maxt, vg_aggr_kind kind, vg_arena_t *a, vg_block_series **out,
                         size_t *n, vg_error *err);

/* The aggregate that PromQL function name needs from downsampled data. */
vg_aggr_kind vg_aggr_for_function(const char *fn);

#endif
