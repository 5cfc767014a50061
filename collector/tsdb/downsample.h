/*
 * downsample.h - 5-minute and 1-hour aggregate blocks made from older data.
 *
 * Semantics follow Thanos's downsampling (written from its documentation):
 * every series of a raw block becomes five aggregate series per window of
 * `res` ms ([w, w + res), aligned to the epoch):
 *   count, sum, min, max   of the window's samples, at the timestamp of the
 *                          window's last sample;
 *   counter                reset-aware: the running total with every reset
 *                          folded in (so it never decreases), as the first
 *                          sample, then one sample per window at its last
 *                          sample, then a MARKER: a second sample at the
 *                          same timestamp as the last one holding the last
 *                          raw value. A reader that stitches blocks compares
 *                          the next block's first value with the marker, so
 *                          a reset between two blocks is seen exactly.
 *
 * Representation: one series per aggregate, told apart by the internal
 * label __vigil_aggr__ ("count", "sum", "min", "max", "counter"). The block
 * writer, index, postings, compaction and merge stay unchanged (they only
 * see more series), choosing an aggregate is one label comparison, and a
 * block of one resolution never mixes raw and aggregate series. The price is
 * five index entries per series instead of one, small next to the samples a
 * raw block holds (a 5m block has 1/20 of a 15 s series' samples, times 5).
 *
 * A pass (run on the block thread, vg_tiers_run) turns each raw block whose
 * maxt is older than `after_5m` (before the tenant's newest sample) into a 5m block over the same
 * range, and 5m blocks older than `after_1h` into 1h blocks (count and sum add up, min and max
 * combine, the counter is stitched and re-windowed). Progress is a watermark per tenant and tier,
 * the newest maxt of that tier's blocks, so a range is downsampled once; raw data arriving later
 * for an already downsampled range (out-of-order blocks) is not downsampled again.
 */
#ifndef VIGIL_TSDB_DOWNSAMPLE_H
#define VIGIL_TSDB_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/block.h"
#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

#define VG_AGGR_LABEL "__vigil_aggr__"
#define VG_RES_5M     (300 * 1000LL)
#define VG_RES_1H     (3600 * 1000LL)

/* What a reader wants from downsampled data (the PromQL evaluator's hint). */
typedef enum vg_aggr_kind {
    VG_AGGR_COUNT = 0,
    VG_AGGR_SUM,
    VG_AGGR_MIN,
    VG_AGGR_MAX,
    VG_AGGR_COUNTER,
    VG_AGGR_NKINDS, /* the stored kinds end here */
    VG_AGGR_AVG,    /* sum / count per window: plain selectors and most functions */
} vg_aggr_kind;

/* Label value of a stored kind ("count"...); NULL for AVG. */
const char *vg_aggr_name(vg_aggr_kind k);
/* Stored kind of a label value, or -1. */
int vg_aggr_parse(const char *v);

/* A growable sample array. */
typedef struct vg_ds_samples {
    int64_t *ts;
    double *v;
    size_t n, cap;
} vg_ds_samples;

vg_err_t vg_ds_push(vg_ds_samples *s, int64_t t, double v);
void vg_ds_clear(vg_ds_samples *s);

/* Reset-aware running total of counter samples in time order. A sample with
 * the same timestamp as the one before is a marker (the raw value the next
 * sample is compared with) and gives no output. Output starts at the first
 * value; a decrease counts the new value in full (a reset to zero). *raw_last
 * (may be NULL) gets the value the next sample would be compared with. */
vg_err_t vg_counter_stitch(const int64_t *ts, const double *v, size_t n, vg_ds_samples *out,
                           double *raw_last);

/* Aggregate raw samples (time order, stale markers skipped) into out[0..5)
 * (indexed by vg_aggr_kind) with windows of res ms. Appends to out. */
vg_err_t vg_downsample_raw(const int64_t *ts, const double *v, size_t n, int64_t res,
                           vg_ds_samples *out);
/* Aggregate the five aggregate series in[0..5) of a finer resolution into
 * coarser windows of res ms, appending to out[0..5). */
vg_err_t vg_downsample_aggr(const vg_ds_samples *in, int64_t res, vg_ds_samples *out);

/* Decode a block series' chunks into out (emptied first), keeping samples in
 * [mint, maxt) in time order; a repeated timestamp is kept only when
 * keep_dups (counter markers). VG_ECORRUPT, VG_ENOMEM. */
vg_err_t vg_ds_decode(const vg_block_series *s, int64_t mint, int64_t maxt, int keep_dups,
                      vg_ds_samples *out);

/* Labels l without the aggregate label, into a (NULL on ENOMEM); *kind gets
 * the kind its value names, or -1 (no such label). */
vg_label_t *vg_ds_base_labels(const vg_label_t *l, size_t n, vg_arena_t *a, size_t *nb, int *kind);

struct vg_tsdb_blocks;
/* One downsampling pass over every tenant at time now_ms (INT64_MIN: each
 * tenant's newest sample, vg_tiers_tenant_now): raw blocks with
 * maxt <= now - after_5m into 5m blocks, 5m blocks with maxt <= now - after_1h
 * into 1h blocks. *nout (may be NULL) gets blocks written. */
vg_err_t vg_downsample_pass(struct vg_tsdb_blocks *bs, int64_t now_ms, int64_t after_5m,
                            int64_t after_1h, size_t *nout, vg_error *err);

#endif
