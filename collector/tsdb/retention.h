/*
 * retention.h - which blocks to delete: per-tier retention and a byte cap.
 *
 * Ages are measured against each tenant's newest sample (as Prometheus
 * measures retention against its newest block), not the wall clock: data
 * backfilled or replayed with old timestamps is not deleted on arrival, one
 * tenant's clock skew cannot age out another's data, and tests drive time
 * by writing later samples. The price: a tenant that stops sending keeps its
 * last retention's worth of data. A block has expired once its
 * maxt <= now - keep[tier] (now = the tenant's newest sample, or an instant
 * a test passes).
 *
 * Rules, per tenant:
 *   raw  expired and (its range is covered by 5m blocks, or 5m data for that
 *        range would itself have expired): deleted, reason "retention". An
 *        expired raw block not yet downsampled waits for its 5m copy.
 *   5m   the same with 1h blocks and the 1h retention.
 *   1h   expired: deleted.
 * Then, when max_bytes > 0 and the kept blocks (all tenants) exceed it, the
 * oldest data goes first (smallest maxt; raw before a coarser tier at the
 * same maxt) until the rest fits: reason "max_bytes". Only blocks count; the
 * head and the WAL are not in the cap.
 *
 * The plan is a pure function over block descriptors, so the decision table
 * is unit-tested without files; vg_retention_pass applies it to the store.
 */
#ifndef VIGIL_TSDB_RETENTION_H
#define VIGIL_TSDB_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/metrics.h"

typedef enum vg_ret_reason { VG_RET_KEEP = 0, VG_RET_AGE, VG_RET_BYTES } vg_ret_reason;

typedef struct vg_ret_block {
    size_t tenant; /* blocks of the same tenant share it */
    int64_t mint, maxt, res;
    uint64_t bytes;
    int64_t now; /* the tenant's "now" */
} vg_ret_block;

typedef struct vg_ret_opts {
    int64_t keep_ms[3]; /* raw, 5m, 1h; <= 0 = keep forever */
    uint64_t max_bytes; /* 0 = no cap */
} vg_ret_opts;

/* Tier index of a resolution: 0 raw, 1 5m, 2 1h (anything coarser: 2). */
int vg_ret_tier(int64_t res);
/* "raw", "5m" or "1h" for a tier index. */
const char *vg_ret_tier_name(int tier);
/* Decide, for each of b[0..n), keep or why it goes, into out[0..n). */
void vg_retention_plan(const vg_ret_block *b, size_t n, const vg_ret_opts *o, vg_ret_reason *out);

struct vg_tsdb_blocks;
/* Apply the plan to every tenant's blocks, at now_ms for all tenants, or
 * each tenant's newest sample when now_ms == INT64_MIN. deleted (may be NULL) holds six
 * counters, [tier * 2 + reason - 1]. *ndel (may be NULL) gets the number. */
vg_err_t vg_retention_pass(struct vg_tsdb_blocks *bs, int64_t now_ms, const vg_ret_opts *o,
                           vg_metric_t *const *deleted, size_t *ndel, vg_error *err);

#endif
