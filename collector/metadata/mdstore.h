/*
 * mdstore.h - per-tenant metric metadata (TYPE, HELP, UNIT) behind
 * GET /api/v1/metadata.
 *
 * Prometheus answers /api/v1/metadata from its scrape caches: per metric
 * family name, the distinct {type, help, unit} its active targets expose.
 * The collector scrapes nothing, so it learns the same facts from what
 * arrives: MetricBatch.metadata from agents (sent when a target's set
 * changes and again every few minutes) and WriteRequest.metadata from
 * remote-write senders (Prometheus sends it every minute). The table is
 * small and bounded: per name at most max_per_metric distinct entries (the
 * least recently seen one makes room), per tenant at most max_entries (new
 * ones past it are counted and dropped), and an entry not seen again for
 * ttl is forgotten, which stands in for Prometheus forgetting the metadata
 * of targets that went away. It is written to one small file (atomic
 * replace) whenever its content changes, so a restarted collector answers
 * at once instead of after the next re-send.
 */
#ifndef VIGIL_MDSTORE_H
#define VIGIL_MDSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "prometheus/types.pb-c.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_mdstore vg_mdstore_t;

#define VG_MDSTORE_DEFAULT_MAX_ENTRIES    100000
#define VG_MDSTORE_DEFAULT_MAX_PER_METRIC 10
#define VG_MDSTORE_DEFAULT_TTL_MS         (60 * 60 * 1000)
/* Longest name, help and unit kept; longer entries are dropped as invalid. */
#define VG_MDSTORE_MAX_NAME 1024
#define VG_MDSTORE_MAX_HELP 16384
#define VG_MDSTORE_MAX_UNIT 256

typedef struct vg_mdstore_opts {
    const char *path;      /* the state file; NULL = kept in memory only */
    size_t max_entries;    /* per tenant; 0 = VG_MDSTORE_DEFAULT_MAX_ENTRIES */
    size_t max_per_metric; /* distinct entries per name; 0 = default */
    int64_t ttl_ms;        /* forget entries not seen for this long; 0 = default */
} vg_mdstore_opts;

/* Open the store, loading opts->path when it exists. An unreadable or
 * corrupt file is logged and counted, and the store starts empty (agents
 * and senders re-send their metadata), so this fails only on ENOMEM.
 * metrics may be NULL. Free with vg_mdstore_free. */
vg_err_t vg_mdstore_open(const vg_mdstore_opts *opts, vg_metrics_t *metrics, vg_mdstore_t **out,
                         vg_error *err);
/* Free; NULL is a no-op. */
void vg_mdstore_free(vg_mdstore_t *md);

/* Record n entries for tenant, seen at now_ms. Entries with an empty or
 * over-long name, help or unit are counted and skipped. When the content
 * changed, the file is rewritten before returning (outside the table lock).
 * Returns how many entries were new. Thread-safe. */
size_t vg_mdstore_add(vg_mdstore_t *md, const char *tenant,
                      const Prometheus__MetricMetadata *const *m, size_t n, int64_t now_ms);

/* The "data" object of /api/v1/metadata for tenant at now_ms, appended to
 * out: names sorted, at most limit of them (< 0 = all), at most
 * limit_per_metric entries each (<= 0 = all), only metric when it is
 * non-empty. VG_ENOMEM / VG_ETOOLARGE from the buffer. Thread-safe. */
vg_err_t vg_mdstore_json(vg_mdstore_t *md, const char *tenant, const char *metric, long long limit,
                         long long limit_per_metric, int64_t now_ms, vg_buf *out);

/* Merge the bytes of a metadata file (what vg_mdstore_open reads) into md,
 * every entry seen at now_ms; the file is not rewritten. VG_ECORRUPT (or the
 * envelope decoder's error) at the first bad frame, what came before it
 * kept. For the fuzz harness and tests. */
vg_err_t vg_mdstore_load(vg_mdstore_t *md, const uint8_t *p, size_t n, int64_t now_ms,
                         vg_error *err);

/* One request's worth of a tenant's entries: a packed (not compressed)
 * prometheus.WriteRequest carrying only metadata, for remote_write. */
typedef struct vg_mdstore_wr {
    char *tenant;
    uint8_t *data;
    size_t len;
    size_t entries;
} vg_mdstore_wr;
/* Every live entry at now_ms as WriteRequests of at most per entries (0 =
 * 500), tenant by tenant, into *out (*n of them; free with
 * vg_mdstore_wr_free). The table lock is held only while packing. VG_ENOMEM. */
vg_err_t vg_mdstore_write_requests(vg_mdstore_t *md, int64_t now_ms, size_t per,
                                   vg_mdstore_wr **out, size_t *n);
void vg_mdstore_wr_free(vg_mdstore_wr *w, size_t n);

/* Entries held for tenant (tests, self-metrics). */
size_t vg_mdstore_count(vg_mdstore_t *md, const char *tenant);

/* "counter", "gauge", ... "unknown" for a MetricMetadata type, as Prometheus
 * names it in JSON. */
const char *vg_mdstore_type_name(int type);

#endif
