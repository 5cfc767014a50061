/*
 * api.h - the Prometheus HTTP API (/api/v1/...) served by the collector.
 *
 * Each endpoint is a pure function from (store, parameters) to a JSON body
 * and an HTTP status, so unit tests call it directly and compare bytes with
 * what Prometheus answers; vg_api_register adds the thin libmicrohttpd glue
 * that reads the request (GET query string or POST form, X-Scope-OrgID for
 * the tenant) into a vg_api_params. This build answers /api/v1/series,
 * /api/v1/labels, /api/v1/label/<name>/values and /api/v1/query with plain
 * vector selectors; other PromQL gets a bad_data error that says so.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/tsdb.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"

/* Most match[] selectors one request may carry. */
#define VG_API_MAX_MATCH 64
/* Cap on one response body (VG_ETOOLARGE becomes a 422 error). */
#define VG_API_MAX_RESPONSE (256u * 1024 * 1024)
/* Instant queries look back this far for the latest sample. */
#define VG_API_LOOKBACK_MS (5 * 60 * 1000)

typedef struct vg_api_params {
    const char *tenant;       /* NULL = "default" */
    const char *const *match; /* match[] values */
    size_t nmatch;
    const char *start, *end; /* series, labels: NULL = whole range */
    const char *time;        /* query: NULL = now_ms */
    const char *query;       /* query */
    const char *label;       /* label values: the <name> of the path */
    int64_t now_ms;          /* the clock, injected for tests */
} vg_api_params;

/* Each handler resets out, writes the full JSON answer and returns the HTTP
 * status (200, 400 bad_data, 422 execution, 500 internal). */
int vg_api_series(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out);
int vg_api_labels(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out);
int vg_api_label_values(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out);
int vg_api_query(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out);

/* Parse a Prometheus API time: unix seconds as a float ("1435781451.781") or
 * RFC 3339 ("2015-07-01T20:10:51.781Z"); to milliseconds. VG_EINVAL with
 * Prometheus's message ("cannot parse \"x\" to a valid timestamp"). */
vg_err_t vg_api_parse_time(const char *s, int64_t *ms, vg_error *err);

/* Register GET and POST handlers for the endpoints above on h (before
 * vg_httpd_start). db must outlive h; m may be NULL (request counters). */
vg_err_t vg_api_register(vg_httpd_t *h, vg_tsdb_t *db, vg_metrics_t *m);

#endif
