/*
 * receiver.c - POST /api/v1/write: Prometheus remote-write 1.0 into the store.
 *
 * Shape, and why:
 *   - Headers are judged before the body is touched: a sender speaking
 *     another protocol (remote-write 2.0, zstd, JSON) gets 415 at once and
 *     never costs a decode.
 *   - snappy_uncompressed_length is read from the block header and checked
 *     against the cap before one byte is allocated, so a 20-byte body cannot
 *     announce 4 GiB.
 *   - The WriteRequest is decoded by rw_decode.c (not protobuf-c's generic
 *     unpack, the largest cost of ingest) into one per-request arena with a
 *     budget: no malloc per Sample, no free walk, and the expansion (a
 *     10-byte Sample becomes a 40-byte struct plus a pointer) stays bounded.
 *   - Series are checked here (no __name__, repeated label names) before the
 *     store sees them, so each refusal is counted under its own reason; the
 *     valid series of a request are still stored (as Prometheus does) and the
 *     answer is 400 so the sender does not retry what can never succeed.
 *   - Status codes are the sender's retry policy: 204 stored, 400 never retry,
 *     413 too large, 415 wrong format, 429 over a limit, 500 retry later.
 */
#include "remotewrite/receiver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <snappy-c.h>

#include "metadata/mdstore.h"
#include "remotewrite/rw_decode.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/labels.h"
#include "vigil/log.h"

#define MAX_LABELS   1024
#define UNPACK_RATIO 8
#define UNPACK_MIN   (64u << 10)
#define ARENA_BLOCK  (256u << 10)

/* Request-level refusals. */
enum req_reason { RQ_MEDIA, RQ_TENANT, RQ_SNAPPY, RQ_PROTO, RQ_TOO_LARGE, RQ__N };
static const char *const req_reason_names[RQ__N] = {"unsupported_media_type", "invalid_tenant",
                                                    "bad_snappy", "bad_protobuf", "too_large"};

/* Sample-level refusals. */
enum smp_reason { SR_NO_NAME, SR_DUP_LABEL, SR_TOO_MANY, SR_INVALID, SR_OOO, SR_CONFLICT, SR__N };
static const char *const smp_reason_names[SR__N] = {"no_metric_name",  "duplicate_label_name",
                                                    "too_many_labels", "invalid_labels",
                                                    "out_of_order",    "duplicate_timestamp"};

struct vg_rw_receiver {
    vg_tsdb_t *db;
    struct vg_mdstore *md; /* WriteRequest.metadata goes here; NULL = ignored */
    size_t max_decoded;
    vg_metric_t *m_requests, *m_received, *m_appended, *m_dedup;
    vg_metric_t *m_req_rej[RQ__N];
    vg_metric_t *m_smp_rej[SR__N];
};

/* ---- lifecycle ---- */

static void register_metrics(vg_rw_receiver_t *r, vg_metrics_t *m)
{
    char lbl[64];
    r->m_requests = vg_metrics_counter(m, "vigil_remote_write_requests_total",
                                       "Remote-write requests received.", NULL);
    r->m_received =
        vg_metrics_counter(m, "vigil_remote_write_samples_received_total",
                           "Samples received in decodable remote-write requests.", NULL);
    r->m_appended = vg_metrics_counter(m, "vigil_remote_write_samples_appended_total",
                                       "Remote-write samples appended to the store.", NULL);
    r->m_dedup =
        vg_metrics_counter(m, "vigil_remote_write_samples_deduplicated_total",
                           "Remote-write samples already stored with the same value.", NULL);
    for (int i = 0; i < RQ__N; i++) {
        snprintf(lbl, sizeof(lbl), "reason=\"%s\"", req_reason_names[i]);
        r->m_req_rej[i] =
            vg_metrics_counter(m, "vigil_remote_write_requests_rejected_total",
                               "Remote-write requests refused whole, by reason.", lbl);
    }
    for (int i = 0; i < SR__N; i++) {
        snprintf(lbl, sizeof(lbl), "reason=\"%s\"", smp_reason_names[i]);
        r->m_smp_rej[i] = vg_metrics_counter(m, "vigil_remote_write_samples_rejected_total",
                                             "Remote-write samples refused, by reason.", lbl);
    }
}

vg_rw_receiver_t *vg_rw_receiver_new(vg_tsdb_t *db, vg_metrics_t *metrics, const vg_rw_opts *opts)
{
    vg_rw_receiver_t *r = vg_calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->db = db;
    r->max_decoded = opts && opts->max_decoded ? opts->max_decoded : VG_RW_DEFAULT_MAX_DECODED;
    if (metrics) register_metrics(r, metrics);
    return r;
}

void vg_rw_receiver_set_metadata(vg_rw_receiver_t *r, struct vg_mdstore *md)
{
    r->md = md;
}

void vg_rw_receiver_free(vg_rw_receiver_t *r)
{
    vg_free(r);
}

/* ---- headers ---- */

/* s[0..n) with blanks trimmed on both sides equals want (case-insensitive). */
static int token_eq(const char *s, size_t n, const char *want)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

/* Each ;-separated parameter may only be proto=prometheus.WriteRequest (the
 * 2.0 spec's name for the 1.0 message) or something that is not "proto". */
static int params_ok(const char *p)
{
    while (p && *p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq && token_eq(p, (size_t)(eq - p), "proto") &&
            !token_eq(eq + 1, n - (size_t)(eq + 1 - p), "prometheus.WriteRequest"))
            return 0;
        p = end ? end + 1 : NULL;
    }
    return 1;
}

int vg_rw_headers_ok(const char *ct, const char *ce)
{
    if (!ct || !ce) return 0;
    if (!token_eq(ce, strlen(ce), "snappy")) return 0;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    if (!token_eq(ct, n, "application/x-protobuf")) return 0;
    return params_ok(semi ? semi + 1 : NULL);
}

/* ---- decoding ---- */

vg_err_t vg_rw_decode(const uint8_t *body, size_t len, size_t max_decoded, vg_arena_t *arena,
                      Prometheus__WriteRequest **out, vg_error *err)
{
    size_t n = 0;
    *out = NULL;
    if (!body || snappy_uncompressed_length((const char *)body, len, &n) != SNAPPY_OK)
        return vg_error_set(err, VG_EPARSE, "snappy: corrupt block header");
    if (n > max_decoded)
        return vg_error_set(err, VG_ETOOLARGE,
                            "body decodes to %zu bytes, over the cap of %zu bytes", n, max_decoded);
    char *raw = vg_arena_alloc(arena, n ? n : 1);
    if (!raw) return vg_error_set(err, VG_ENOMEM, "out of memory decoding a write request");
    if (snappy_uncompress((const char *)body, len, raw, &n) != SNAPPY_OK)
        return vg_error_set(err, VG_EPARSE, "snappy: corrupt input");
    size_t budget = n < UNPACK_MIN / UNPACK_RATIO ? UNPACK_MIN : n * UNPACK_RATIO;
    vg_err_t rc = vg_rw_unpack((const uint8_t *)raw, n, arena, budget, out);
    if (rc == VG_OK) return VG_OK;
    if (rc == VG_ETOOLARGE)
        return vg_error_set(err, VG_ETOOLARGE,
                            "write request of %zu bytes expands past %dx its size in memory", n,
                            UNPACK_RATIO);
    if (rc == VG_ENOMEM) return vg_error_set(err, rc, "out of memory decoding a write request");
    return vg_error_set(err, VG_EPARSE, "cannot decode the WriteRequest protobuf");
}

/* ---- series checks ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

vg_rw_series_check vg_rw_check_series(const Prometheus__TimeSeries *ts, vg_error *err)
{
    const char *names[MAX_LABELS];
    int have_name = 0;
    if (ts->n_labels > MAX_LABELS) {
        vg_error_set(err, VG_EINVAL, "series has %zu labels, over the limit of %d", ts->n_labels,
                     MAX_LABELS);
        return VG_RW_SERIES_TOO_MANY_LABELS;
    }
    int ascending = 1; /* the usual case: strictly sorted names cannot repeat */
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *l = ts->labels[i];
        names[i] = l && l->name ? l->name : "";
        if (strcmp(names[i], VG_METRIC_NAME) == 0 && l->value && l->value[0]) have_name = 1;
        if (i && ascending && strcmp(names[i - 1], names[i]) >= 0) ascending = 0;
    }
    if (!ascending) qsort(names, ts->n_labels, sizeof(names[0]), cmp_str);
    for (size_t i = 1; i < ts->n_labels && !ascending; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            vg_error_set(err, VG_EINVAL, "series has the label name \"%.100s\" more than once",
                         names[i]);
            return VG_RW_SERIES_DUPLICATE_NAME;
        }
    }
    if (!have_name) {
        vg_error_set(err, VG_EINVAL, "series has no metric name (__name__)");
        return VG_RW_SERIES_NO_NAME;
    }
    return VG_RW_SERIES_OK;
}

/* ---- the request ---- */

static void refuse(vg_rw_receiver_t *r, vg_rw_result *res, int status, int reason, const char *msg)
{
    res->status = status;
    snprintf(res->msg, sizeof(res->msg), "%s", msg);
    if (reason >= 0) vg_metric_inc(r->m_req_rej[reason]);
}

/* Keep the series that pass the checks (and carry samples) in ok[]; count
 * the refused samples by reason. Returns the number kept. */
static size_t filter_series(vg_rw_receiver_t *r, const Prometheus__WriteRequest *wr,
                            Prometheus__TimeSeries **ok, vg_rw_result *res, vg_error *first)
{
    static const int reason_of[] = {-1, SR_NO_NAME, SR_DUP_LABEL, SR_TOO_MANY};
    size_t nok = 0;
    vg_error e;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        Prometheus__TimeSeries *ts = wr->timeseries[i];
        if (!ts) continue;
        res->samples_received += ts->n_samples;
        vg_rw_series_check c = vg_rw_check_series(ts, &e);
        if (c != VG_RW_SERIES_OK) {
            vg_metric_add(r->m_smp_rej[reason_of[c]], (double)ts->n_samples);
            if (!first->code) *first = e;
            continue;
        }
        if (ts->n_samples) ok[nok++] = ts;
    }
    return nok;
}

static void count_stats(vg_rw_receiver_t *r, const vg_append_stats *st, uint64_t invalid_samples)
{
    vg_metric_add(r->m_appended, (double)st->samples_appended);
    vg_metric_add(r->m_dedup, (double)st->samples_deduplicated);
    vg_metric_add(r->m_smp_rej[SR_OOO], (double)st->samples_out_of_order);
    vg_metric_add(r->m_smp_rej[SR_CONFLICT], (double)st->samples_conflicting);
    vg_metric_add(r->m_smp_rej[SR_INVALID], (double)invalid_samples);
}

static int status_for(vg_err_t rc)
{
    switch (rc) {
    case VG_OK: return 204;
    case VG_EINVAL:
    case VG_EPARSE: return 400;
    case VG_ETOOLARGE: return 413;
    case VG_ELIMIT: return 429;
    default: return 500;
    }
}

/* Samples of the series the store refused as invalid (labels it rejects
 * beyond our own checks, e.g. a bad label name). */
static uint64_t invalid_samples(Prometheus__TimeSeries *const *ok, size_t n, uint64_t rejected)
{
    if (!rejected) return 0;
    uint64_t s = 0;
    vg_label_t l[MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        for (size_t j = 0; j < ok[i]->n_labels; j++) {
            if (!ok[i]->labels[j]->value || !ok[i]->labels[j]->value[0]) continue;
            l[k].name = ok[i]->labels[j]->name;
            l[k++].value = ok[i]->labels[j]->value;
        }
        vg_labels_sort(l, k);
        if (vg_labels_validate(l, k, NULL)) s += ok[i]->n_samples;
    }
    return s;
}

static void store(vg_rw_receiver_t *r, const char *tenant, Prometheus__TimeSeries *const *ok,
                  size_t nok, vg_rw_result *res, vg_error *first)
{
    vg_append_stats st = {0};
    vg_error e = {0};
    vg_err_t rc = nok ? vg_tsdb_append_timeseries(r->db, tenant, ok, nok, &st, &e) : VG_OK;
    /* Acknowledge only what the WAL holds durably; a failed fsync is a 500 (retry). */
    vg_err_t src = (rc == VG_OK || rc == VG_EINVAL) ? vg_tsdb_sync(r->db, st.wal_pos, &e) : VG_OK;
    if (src) rc = src;
    count_stats(r, &st, invalid_samples(ok, nok, st.series_rejected));
    res->samples_written = st.samples_appended + st.samples_deduplicated;
    if (rc == VG_ETOOLARGE) rc = VG_EINVAL; /* too many labels: never retry */
    if (first->code && !rc) rc = VG_EINVAL;
    res->status = status_for(rc);
    /* A limit's message carries the retry-after hint: it wins over a filter problem. */
    if (rc)
        snprintf(res->msg, sizeof(res->msg), "%s",
                 first->code && rc != VG_ELIMIT ? first->msg : e.msg);
}

void vg_rw_handle(vg_rw_receiver_t *r, const char *ct, const char *ce, const char *tenant,
                  const uint8_t *body, size_t len, vg_rw_result *res)
{
    vg_error err = {0}, first = {0};
    vg_arena_t *arena = NULL;
    memset(res, 0, sizeof(*res));
    vg_metric_inc(r->m_requests);
    if (!vg_rw_headers_ok(ct, ce)) {
        refuse(r, res, 415, RQ_MEDIA,
               "remote-write 1.0 wants Content-Type: application/x-protobuf and "
               "Content-Encoding: snappy");
        return;
    }
    if (!tenant || !tenant[0]) tenant = VG_TENANT_DEFAULT;
    if (!vg_tsdb_tenant_valid(tenant)) {
        refuse(r, res, 400, RQ_TENANT, "X-Scope-OrgID: want 1-64 characters of [A-Za-z0-9_.-]");
        return;
    }
    Prometheus__WriteRequest *wr = NULL;
    Prometheus__TimeSeries **ok = NULL;
    if (!(arena = vg_arena_new(ARENA_BLOCK))) goto nomem;
    vg_err_t rc = vg_rw_decode(body, len, r->max_decoded, arena, &wr, &err);
    if (rc) {
        int reason = rc == VG_ETOOLARGE ? RQ_TOO_LARGE
                     : rc == VG_EPARSE  ? (strncmp(err.msg, "snappy", 6) ? RQ_PROTO : RQ_SNAPPY)
                                        : -1;
        refuse(r, res, status_for(rc), reason, vg_error_msg(&err, rc));
        goto out;
    }
    if (r->md && wr->n_metadata)
        vg_mdstore_add(r->md, tenant, (const Prometheus__MetricMetadata *const *)wr->metadata,
                       wr->n_metadata, vg_clock_wall_ms());
    ok = vg_arena_alloc(arena, (wr->n_timeseries ? wr->n_timeseries : 1) * sizeof(*ok));
    if (!ok) goto nomem;
    size_t nok = filter_series(r, wr, ok, res, &first);
    vg_metric_add(r->m_received, (double)res->samples_received);
    store(r, tenant, ok, nok, res, &first);
    goto out;
nomem:
    refuse(r, res, 500, -1, "out of memory");
out:
    vg_arena_free(arena);
}

/* ---- HTTP glue ---- */

/* Retry-After from the limit's message (vg_tsdb_retry_after_s), at least 1 s. */
static void retry_after_header(vg_http_resp *resp, const char *msg)
{
    vg_error e = {.code = VG_ELIMIT};
    snprintf(e.msg, sizeof(e.msg), "%s", msg);
    int s = vg_tsdb_retry_after_s(&e);
    char v[16];
    snprintf(v, sizeof(v), "%d", s > 0 ? s : 1);
    vg_http_resp_header(resp, "Retry-After", v);
}

static void handle_http(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_rw_receiver_t *r = ud;
    size_t len = 0;
    const uint8_t *body = vg_http_req_body(req, &len);
    vg_rw_result res;
    vg_rw_handle(r, vg_http_req_header(req, "Content-Type"),
                 vg_http_req_header(req, "Content-Encoding"),
                 vg_http_req_header(req, "X-Scope-OrgID"), body, len, &res);
    char n[24];
    snprintf(n, sizeof(n), "%" PRIu64, res.samples_written);
    vg_http_resp_header(resp, "X-Prometheus-Remote-Write-Samples-Written", n);
    vg_http_resp_header(resp, "X-Prometheus-Remote-Write-Histograms-Written", "0");
    vg_http_resp_header(resp, "X-Prometheus-Remote-Write-Exemplars-Written", "0");
    if (res.status == 204) {
        resp->status = 204;
        return;
    }
    if (res.status == 429) retry_after_header(resp, res.msg);
    char q[600];
    vg_log_warn("remotewrite", "write refused",
                "status=%d samples=%" PRIu64 " written=%" PRIu64 " err=%s", res.status,
                res.samples_received, res.samples_written, vg_logq(q, sizeof(q), res.msg));
    vg_http_resp_text(resp, res.status, "%s\n", res.msg);
}

vg_err_t vg_rw_receiver_register(vg_rw_receiver_t *r, vg_httpd_t *h)
{
    return vg_httpd_route(h, "POST", "/api/v1/write", handle_http, r);
}
