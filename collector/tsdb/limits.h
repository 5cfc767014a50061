/*
 * limits.h - per-tenant ingestion limits: a token bucket of samples/s with a
 * burst, and a cap on active series.
 *
 * The bucket is checked once per request, before anything is appended, so a
 * request over the rate is refused whole and a retry after the hinted delay
 * neither loses nor doubles a sample. A request larger than the burst is let
 * through when the bucket is full and leaves it in debt, so it is slowed
 * down rather than refused forever. Each tenant gets its own bucket on its
 * first request; the limits come from limits.tenants.<name>, else
 * limits.default. The clock is injectable so tests step time by hand.
 */
#ifndef VIGIL_TSDB_LIMITS_H
#define VIGIL_TSDB_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "collector/config.h"
#include "tsdb/tsdb.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

#define VG_LIMITS_SERIES_RETRY_S 60 /* Retry-After for a refused new series */

typedef struct vg_limits vg_limits_t;
/* Monotonic time in microseconds. */
typedef int64_t (*vg_limits_clock_fn)(void *ud);

/* Limits from def (NULL = unlimited) and per-tenant overrides per[0..n).
 * A rate <= 0 means no rate limit, max_series 0 no cap. metrics may be NULL.
 * NULL on ENOMEM. The arrays are copied. */
vg_limits_t *vg_limits_new(const vg_tenant_limits_t *def, const vg_tenant_limits_t *per, size_t n,
                           vg_metrics_t *metrics);
void vg_limits_free(vg_limits_t *l);
/* Replace the clock (tests). Call before any take. */
void vg_limits_set_clock(vg_limits_t *l, vg_limits_clock_fn fn, void *ud);

/* Take n samples from tenant's bucket. VG_OK, or VG_ELIMIT with err saying
 * "... retry after N s (retry_after_ms=M)" and *retry_after_s = N (>= 1, M
 * rounded up; may be NULL); counted as reason="rate". VG_ENOMEM. Thread-safe. */
vg_err_t vg_limits_take(vg_limits_t *l, const char *tenant, uint64_t n, int *retry_after_s,
                        vg_error *err);
/* The active-series cap of tenant; 0 = none. */
uint64_t vg_limits_max_series(const vg_limits_t *l, const char *tenant);
/* Record a new series refused by the cap: count reason="max_series" and
 * set err (VG_ELIMIT, retry after VG_LIMITS_SERIES_RETRY_S). Returns VG_ELIMIT. */
vg_err_t vg_limits_series_refused(vg_limits_t *l, const char *tenant, vg_error *err);

/* The store's side, called by vg_tsdb_open once the WAL is replayed (the
 * replay runs with no limit and an unbounded out-of-order window, so it
 * restores everything that was acknowledged): build db->limits from o (may
 * be NULL), then set the window and series caps of the heads that exist. */
vg_err_t vg_tsdb_limits_init(vg_tsdb_t *db, const vg_tsdb_opts *o, vg_metrics_t *metrics,
                             vg_error *err);

#endif
