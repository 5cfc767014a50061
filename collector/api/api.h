/*
 * api.h - the Prometheus HTTP API (/api/v1/..., /federate) served by the
 * collector.
 *
 * Each endpoint is a pure function from (API context, parameters) to a body
 * and an HTTP status, so unit tests call it directly and compare bytes with
 * what Prometheus answers; vg_api_register adds the thin libmicrohttpd glue
 * that reads the request (GET query string or POST form, X-Scope-OrgID for
 * the tenant) into a vg_api_params. The context (vg_api_t) holds the store
 * and the process's one PromQL engine; queries run on the HTTP server's
 * bounded thread pool, and the engine's caps (samples, time) protect the
 * process from any one query.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include <stddef.h>
#include <stdint.h>

#include "promql/engine.h"
#include "tsdb/tsdb.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"

/* Most match[] selectors one request may carry. */
#define VG_API_MAX_MATCH 64
/* Cap on one response body (VG_ETOOLARGE becomes a 422 error). */
#define VG_API_MAX_RESPONSE (256u * 1024 * 1024)
/* Instant lookups (federate) look back this far for the latest sample. */
#define VG_API_LOOKBACK_MS (5 * 60 * 1000)
/* query_range refuses more points than this per series (Prometheus's figure). */
#define VG_API_MAX_POINTS 11000

typedef struct vg_api vg_api_t;

typedef struct vg_api_params {
    const char *tenant;       /* NULL = "default" */
    const char *const *match; /* match[] values */
    size_t nmatch;
    const char *start, *end;               /* series, labels, query_range, exemplars */
    const char *time;                      /* query: NULL = now_ms */
    const char *query;                     /* query, query_range, exemplars, format/parse_query */
    const char *step;                      /* query_range: float seconds or a duration */
    const char *timeout;                   /* query, query_range: validated like Prometheus */
    const char *limit;                     /* series, labels, label values, query, metadata */
    const char *limit_per_metric, *metric; /* metadata */
    const char *label;                     /* label values: the <name> of the path */
    int64_t now_ms;                        /* the clock, injected for tests */
} vg_api_params;

/* New API context over db (which must outlive it). opts sets the engine's
 * caps (NULL = engine defaults). NULL on ENOMEM. */
vg_api_t *vg_api_new(vg_tsdb_t *db, const vg_promql_opts *opts);
struct vg_mdstore;
/* Answer /api/v1/metadata from md (borrowed; must outlive api). Without it
 * the answer is an empty map. */
void vg_api_set_metadata(vg_api_t *api, struct vg_mdstore *md);
/* Free the context and its engine; NULL is a no-op. Stop the HTTP server
 * first: no handler may be running. */
void vg_api_free(vg_api_t *api);

/* Each handler resets out, writes the full JSON answer and returns the HTTP
 * status (200; 400 bad_data; 422 execution; 503 timeout; 500 internal). */
int vg_api_series(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_labels(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_label_values(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_query(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_query_range(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_format_query(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_parse_query(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_metadata(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_buildinfo(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_query_exemplars(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_rules(vg_api_t *api, const vg_api_params *p, vg_buf *out);
int vg_api_alerts(vg_api_t *api, const vg_api_params *p, vg_buf *out);
/* /federate: text format 0.0.4 (not JSON), the latest sample of each series
 * matching any match[] within the lookback, with its timestamp. Errors are
 * plain text with status 400 or 500, as Prometheus writes them. */
int vg_api_federate(vg_api_t *api, const vg_api_params *p, vg_buf *out);

/* Remote read (POST /api/v1/read): body is a snappy-compressed ReadRequest.
 * Answers SAMPLES (snappy ReadResponse) or, when the client lists it first,
 * STREAMED_XOR_CHUNKS (framed ChunkedReadResponse messages). *content_type
 * and *encoding (NULL = none) get static strings for the response headers.
 * Errors are plain text (400 bad request, 422 over the sample cap, 500). */
int vg_api_remote_read(vg_api_t *api, const char *tenant, const uint8_t *body, size_t len,
                       vg_buf *out, const char **content_type, const char **encoding);

/* Parse a Prometheus API time: unix seconds as a float ("1435781451.781") or
 * RFC 3339 ("2015-07-01T20:10:51.781Z"); to milliseconds. VG_EINVAL with
 * Prometheus's message ("cannot parse \"x\" to a valid timestamp"). */
vg_err_t vg_api_parse_time(const char *s, int64_t *ms, vg_error *err);
/* Parse a Prometheus API duration: float seconds ("15", "0.5") or a PromQL
 * duration ("1m30s"); to milliseconds, rounded down (a positive value under
 * 1ms gives 1). VG_EINVAL with "cannot parse \"x\" to a valid duration". */
vg_err_t vg_api_parse_duration(const char *s, int64_t *ms, vg_error *err);
/* Decode a U__-escaped label or metric name (Prometheus's value-encoding
 * escaping: "__" is "_", "_2e_" is U+002E) into out (n bytes). A name without
 * the prefix, or one that does not decode, is copied unchanged. */
void vg_api_unescape_name(const char *in, char *out, size_t n);

/* Register GET and POST handlers for every endpoint above on h (before
 * vg_httpd_start). api must outlive h; m may be NULL (request counters). */
vg_err_t vg_api_register(vg_httpd_t *h, vg_api_t *api, vg_metrics_t *m);

#endif
