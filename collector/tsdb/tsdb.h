/*
 * tsdb.h - the collector's time-series store: one head per tenant.
 *
 * Tenants are isolated by construction: each has its own head (series,
 * chunks, postings, interned strings), created on its first append, so a
 * query can never see another tenant's series and one tenant's cardinality
 * does not slow another's lookups. This layer validates input (tenant
 * names, labels), counts every outcome in vg_append_stats and in
 * self-metrics, and offers a querier whose result is a snapshot: series come
 * out sorted by labels, with samples copied at select time, so iterating
 * never holds a lock and is safe against concurrent appends.
 */
#ifndef VIGIL_TSDB_H
#define VIGIL_TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "prometheus/types.pb-c.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

#define VG_TENANT_MAX     64
#define VG_TENANT_DEFAULT "default"

typedef struct vg_tsdb vg_tsdb_t;
typedef struct vg_seriesset vg_seriesset_t;

/* Outcome counters; every append function ADDS to the fields. */
typedef struct vg_append_stats {
    uint64_t samples_appended;
    uint64_t samples_deduplicated; /* already stored (same timestamp and value): no-op */
    uint64_t samples_out_of_order; /* older than the series' newest sample, not stored */
    uint64_t samples_conflicting;  /* a stored sample has this timestamp, another value */
    uint64_t series_created;
    uint64_t series_rejected; /* invalid labels: all its samples dropped */
    uint64_t wal_pos; /* WAL position covering this call's samples (max over calls); 0 = none */
} vg_append_stats;

struct vg_tenant_limits; /* collector/config.h */

/* How the store is opened. Zero values mean the documented defaults. */
typedef struct vg_tsdb_opts {
    const char *dir;            /* NULL: memory only (unit tests); else WAL and blocks live here */
    int64_t ooo_window_ms;      /* accept samples this much older than a series' newest sample,
                                   inserted in order; 0 = 10m, < 0 = none */
    int64_t block_range_ms;     /* the head is cut into blocks of this span; 2h */
    int64_t wal_sync_ms;        /* the longest an acknowledged append waits for a group fsync */
    uint64_t wal_segment_bytes; /* WAL segment size; 128 MiB */
    int64_t retention_raw_ms, retention_5m_ms, retention_1h_ms; /* tiers; 90d, 1y, 7y */
    uint64_t max_bytes;                                         /* 0 = no cap on disk use */
    int64_t downsample_5m_after_ms; /* raw blocks this old get a 5m copy; 0 = 40h, < 0 = never */
    int64_t downsample_1h_after_ms; /* 5m blocks this old get a 1h copy; 0 = 10d, < 0 = never */
    /* Tenant limits (limits.h): rate/burst in samples/s and max active series. Over the rate a
     * request is refused whole before anything is appended (VG_ELIMIT with a retry-after, see
     * vg_tsdb_retry_after_s); a new series over max_series is VG_ELIMIT too. Not applied to the
     * WAL replay. */
    const struct vg_tenant_limits *default_limits;              /* NULL = unlimited */
    const struct vg_tenant_limits *tenant_limits;               /* per-tenant overrides */
    size_t ntenant_limits;
} vg_tsdb_opts;

/* Open (or create) the store described by o: replay the WAL, load blocks.
 * metrics as for vg_tsdb_new. VG_EIO / VG_ECORRUPT with a message. */
vg_err_t vg_tsdb_open(const vg_tsdb_opts *o, vg_metrics_t *metrics, vg_tsdb_t **out, vg_error *err);

/* New empty in-memory store (vg_tsdb_open with every option zero). metrics may be NULL; otherwise
 * the vigil_tsdb_* self-metrics are registered there (it must outlive the store). NULL on ENOMEM.
 */
vg_tsdb_t *vg_tsdb_new(vg_metrics_t *metrics);
/* Free everything; NULL is a no-op. No other call may be in flight. */
void vg_tsdb_free(vg_tsdb_t *db);

/* True for 1..64 bytes of [A-Za-z0-9_.-]. */
int vg_tsdb_tenant_valid(const char *tenant);

/* Append one sample. labels must be sorted by name; they are validated
 * (vg_labels_validate, and __name__ must be present). Returns VG_OK when
 * appended or deduplicated; VG_EINVAL with a message for a bad tenant or
 * labels, an out-of-order sample or a conflicting duplicate ("duplicate
 * sample for timestamp"); VG_ENOMEM. st may be NULL. Thread-safe. */
vg_err_t vg_tsdb_append(vg_tsdb_t *db, const char *tenant, const vg_label_t *labels, size_t nlabels,
                        int64_t ts_ms, double v, vg_append_stats *st, vg_error *err);

/* Append remote-write / batch TimeSeries. Labels are copied and sorted; labels
 * with empty values are dropped. A series without __name__, with a repeated or
 * invalid label name is rejected (series_rejected) and the others are still
 * appended. Returns VG_OK when every series was accepted and every sample
 * appended or deduplicated; VG_EINVAL (err = the first problem) when anything
 * was rejected; VG_ENOMEM / VG_ETOOLARGE (over 1024 labels) stop early.
 * Thread-safe. */
vg_err_t vg_tsdb_append_timeseries(vg_tsdb_t *db, const char *tenant,
                                   Prometheus__TimeSeries *const *ts, size_t n, vg_append_stats *st,
                                   vg_error *err);

/* The Retry-After hint, in seconds (>= 1), of an error a limit produced:
 * every VG_ELIMIT from an append carries one, as "retry after N s
 * (retry_after_ms=M)" (M exact, N = M rounded up to seconds). 0 when err
 * holds none. HTTP maps VG_ELIMIT to 429 with Retry-After: N; the Kafka
 * consumer pauses the partition for M ms. */
int vg_tsdb_retry_after_s(const vg_error *err);

/* Select the series of tenant matching every matcher (nm == 0: all series)
 * with samples overlapping [mint, maxt] (inclusive, ms). *out is a snapshot,
 * sorted by labels; free it with vg_seriesset_free. An unknown tenant gives
 * an empty set. The matchers are only used during the call. Thread-safe. */
vg_err_t vg_tsdb_select(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                        int64_t mint, int64_t maxt, vg_seriesset_t **out, vg_error *err);
/* Move to the next series: 1, or 0 at the end. Call before the first series. */
int vg_seriesset_next(vg_seriesset_t *ss);
/* Labels of the current series (sorted); valid until vg_seriesset_free. */
const vg_label_t *vg_seriesset_labels(vg_seriesset_t *ss, size_t *n);
/* Next sample of the current series within [mint, maxt]: 1, or 0 when done. */
int vg_seriesset_sample_next(vg_seriesset_t *ss, int64_t *ts, double *v);
/* Up to max next samples of the current series into ts[], v[] (the ones
 * sample_next would give, decoded a chunk at a time): how many, 0 when done. */
size_t vg_seriesset_read(vg_seriesset_t *ss, int64_t *ts, double *v, size_t max);
/* Number of series in the set. */
size_t vg_seriesset_len(const vg_seriesset_t *ss);
/* Labels of series i (< len) without iterating; valid until vg_seriesset_free. */
const vg_label_t *vg_seriesset_labels_at(const vg_seriesset_t *ss, size_t i, size_t *n);
/* A second set over series [from, to) of ss (clamped), with its own
 * iteration and decode state, so another thread can read it while ss is
 * read elsewhere: the parallel range evaluation splits a selection so.
 * It shares ss's data: free it with vg_seriesset_free before ss. */
vg_err_t vg_seriesset_slice(vg_seriesset_t *ss, size_t from, size_t to, vg_seriesset_t **out);
/* VG_ECORRUPT if a chunk failed to decode while iterating (a bug), else VG_OK. */
vg_err_t vg_seriesset_err(const vg_seriesset_t *ss);
void vg_seriesset_free(vg_seriesset_t *ss);

/* Sorted distinct label names of the tenant's series matching the matchers
 * (all series when nm == 0). The head contributes when its samples overlap
 * [mint, maxt]. *out is one allocation: free it with vg_free(*out). */
vg_err_t vg_tsdb_label_names(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                             int64_t mint, int64_t maxt, char ***out, size_t *n, vg_error *err);
/* Same for the values of label name. */
vg_err_t vg_tsdb_label_values(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err);

/* Durability. Appends write the WAL but do not wait for it; whoever
 * acknowledges data waits here: HTTP handlers with the wal_pos of their own
 * call, the Kafka consumer once for many batches (VG_TSDB_SYNC_ALL) before
 * committing offsets. Returns once an fsync covers pos; VG_OK at once for a
 * memory-only store or pos 0; VG_EIO when the WAL cannot be made durable.
 * Thread-safe. */
#define VG_TSDB_SYNC_ALL UINT64_MAX
vg_err_t vg_tsdb_sync(vg_tsdb_t *db, uint64_t pos, vg_error *err);

/* The store's WAL (NULL when memory only), for the block writer to call
 * vg_wal_truncate (tsdb/wal.h) after persisting a block. */
struct vg_wal *vg_tsdb_wal(vg_tsdb_t *db);

/* Series held across all tenants. */
size_t vg_tsdb_num_series(vg_tsdb_t *db);

#endif
