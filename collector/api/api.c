/*
 * api.c - Prometheus HTTP API handlers (pure) and their HTTP glue.
 *
 * The handlers validate parameters in Prometheus's order and with its
 * messages (bad_data errors are compared byte for byte by tests), read the
 * store through snapshot queries, and write JSON with vg_buf. A selector
 * that is valid PromQL but more than a vector selector is refused with
 * bad_data and "only vector selectors are supported in this build" until
 * the PromQL engine lands.
 */
#include "api/api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/json.h"
#include "promql/lex.h"
#include "promql/selector.h"
#include "vigil/clock.h"
#include "vigil/alloc.h"

/* Prometheus's MinTime/MaxTime (web/api/v1) in milliseconds. */
#define API_MIN_TIME   (INT64_C(-9223309901257974) * 1000)
#define API_MAX_TIME   (INT64_C(9223309901257974) * 1000 + 999)
#define STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* ---- time parsing ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int read_digits(const char **s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++, (*s)++) {
        if (**s < '0' || **s > '9') return 0;
        *out = *out * 10 + (**s - '0');
    }
    return 1;
}

/* time.Parse(time.RFC3339Nano, s): YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm). */
static int parse_rfc3339(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, frac_ms = 0, oh = 0, om = 0, sign = 0;
    if (!read_digits(&s, 4, &y) || *s++ != '-' || !read_digits(&s, 2, &mo) || *s++ != '-' ||
        !read_digits(&s, 2, &d) || *s++ != 'T' || !read_digits(&s, 2, &h) || *s++ != ':' ||
        !read_digits(&s, 2, &mi) || *s++ != ':' || !read_digits(&s, 2, &sec))
        return 0;
    if (*s == '.') {
        int n = 0;
        for (s++; *s >= '0' && *s <= '9'; s++, n++)
            if (n < 3) frac_ms = frac_ms * 10 + (*s - '0');
        if (n == 0 || n > 9) return 0;
        for (; n < 3; n++) frac_ms *= 10;
    }
    if (*s == 'Z')
        s++;
    else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!read_digits(&s, 2, &oh) || *s++ != ':' || !read_digits(&s, 2, &om)) return 0;
    } else
        return 0;
    if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59 ||
        oh > 23 || om > 59)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    secs -= sign * (oh * 3600 + om * 60);
    *ms = secs * 1000 + frac_ms;
    return 1;
}

/* strconv.ParseFloat seconds, rounded to milliseconds as Prometheus does. */
static int parse_float_time(const char *s, int64_t *ms)
{
    char *end;
    if (!*s || strchr(" \t\n\r\v\f", *s)) return 0;
    double t = strtod(s, &end);
    if (*end || !isfinite(t) || fabs(t) > 9.2e15) return 0;
    double ip = trunc(t);
    *ms = (int64_t)ip * 1000 + (int64_t)llround((t - ip) * 1000);
    return 1;
}

vg_err_t vg_api_parse_time(const char *s, int64_t *ms, vg_error *err)
{
    if (parse_float_time(s, ms) || parse_rfc3339(s, ms)) return VG_OK;
    if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) return *ms = API_MIN_TIME, VG_OK;
    if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) return *ms = API_MAX_TIME, VG_OK;
    vg_buf b;
    vg_buf_init(&b, 1024);
    vg_lex_goquote(&b, s, strlen(s), 0);
    vg_error_set(err, VG_EINVAL, "cannot parse %s to a valid timestamp", b.data ? b.data : "");
    vg_buf_free(&b);
    return VG_EINVAL;
}

/* ---- shared helpers ---- */

static int fail(vg_buf *out, int status, const char *type, const char *fmt, const char *a,
                const char *b)
{
    char msg[1200];
    snprintf(msg, sizeof msg, fmt, a, b);
    vg_api_json_error(out, type, msg);
    return status;
}

static int bad_data(vg_buf *out, const char *fmt, const char *a, const char *b)
{
    return fail(out, 400, "bad_data", fmt, a, b);
}

/* Storage or output failure: 422 "execution" (500 "internal" for bugs). */
static int exec_error(vg_buf *out, vg_err_t rc, const vg_error *err)
{
    if (rc == VG_ETOOLARGE)
        return fail(out, 422, "execution", "%s%s", "response larger than the configured limit", "");
    return fail(out, rc == VG_EINTERNAL ? 500 : 422, rc == VG_EINTERNAL ? "internal" : "execution",
                "%s%s", vg_error_msg(err, rc), "");
}

static const char *tenant_of(const vg_api_params *p)
{
    return p->tenant && p->tenant[0] ? p->tenant : VG_TENANT_DEFAULT;
}

/* start/end with Prometheus's defaults; 0 or a written 400 status. */
static int time_range(const vg_api_params *p, int64_t *mint, int64_t *maxt, vg_buf *out)
{
    vg_error err = {0};
    *mint = API_MIN_TIME;
    *maxt = API_MAX_TIME;
    if (p->start && p->start[0] && vg_api_parse_time(p->start, mint, &err))
        return bad_data(out, "invalid parameter \"start\": invalid time value for 'start': %s%s",
                        err.msg, "");
    if (p->end && p->end[0] && vg_api_parse_time(p->end, maxt, &err))
        return bad_data(out, "invalid parameter \"end\": invalid time value for 'end': %s%s",
                        err.msg, "");
    return 0;
}

/* Parse every match[]; 0 or a written 400 status. prefix wraps the message. */
static int parse_matches(const vg_api_params *p, vg_selector *sels, const char *prefix, vg_buf *out)
{
    if (p->nmatch > VG_API_MAX_MATCH)
        return bad_data(out, "too many match[] parameters: at most %s%s", "64", "");
    for (size_t i = 0; i < p->nmatch; i++) {
        vg_error err = {0};
        const char *s = p->match[i] ? p->match[i] : "";
        if (vg_selector_parse(s, strlen(s), &sels[i], &err) != VG_OK) {
            for (size_t j = 0; j < i; j++) vg_selector_free(&sels[j]);
            return bad_data(out, "%s%s", prefix, err.msg);
        }
    }
    return 0;
}

static void free_matches(vg_selector *sels, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_selector_free(&sels[i]);
}

static int tenant_ok(const vg_api_params *p, vg_buf *out)
{
    if (vg_tsdb_tenant_valid(tenant_of(p))) return 0;
    return bad_data(out, "invalid tenant in X-Scope-OrgID: want 1-64 characters of %s%s",
                    "[A-Za-z0-9_.-]", "");
}

/* ---- /api/v1/series ---- */

typedef struct lset {
    const vg_label_t *l;
    size_t n;
} lset;

static int cmp_lset(const void *x, const void *y)
{
    const lset *a = x, *b = y;
    return vg_labels_cmp(a->l, a->n, b->l, b->n);
}

/* Gather the series of every set, sorted and unique, into *out. */
static vg_err_t merge_series(vg_seriesset_t **ss, size_t nss, lset **out, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < nss; i++) total += vg_seriesset_len(ss[i]);
    *n = 0;
    *out = vg_malloc((total ? total : 1) * sizeof(**out));
    if (!*out) return VG_ENOMEM;
    for (size_t i = 0; i < nss; i++) {
        while (vg_seriesset_next(ss[i])) {
            (*out)[*n].l = vg_seriesset_labels(ss[i], &(*out)[*n].n);
            (*n)++;
        }
    }
    if (nss > 1 && *n > 1) {
        qsort(*out, *n, sizeof(**out), cmp_lset);
        size_t w = 1;
        for (size_t i = 1; i < *n; i++)
            if (cmp_lset(&(*out)[i], &(*out)[w - 1]) != 0) (*out)[w++] = (*out)[i];
        *n = w;
    }
    return VG_OK;
}

static vg_err_t write_series(vg_buf *out, const lset *s, size_t n)
{
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_api_json_labels(out, s[i].l, s[i].n);
    }
    return rc ? rc : vg_buf_puts(out, "]}");
}

static int series_run(vg_tsdb_t *db, const vg_api_params *p, vg_selector *sels, int64_t mint,
                      int64_t maxt, vg_buf *out)
{
    vg_seriesset_t *ss[VG_API_MAX_MATCH] = {0};
    lset *all = NULL;
    size_t n = 0, nss = 0;
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    for (; nss < p->nmatch && !rc; nss++)
        rc = vg_tsdb_select(db, tenant_of(p), sels[nss].m, sels[nss].n, mint, maxt, &ss[nss], &err);
    if (!rc) rc = merge_series(ss, nss, &all, &n);
    if (!rc) rc = write_series(out, all, n);
    vg_free(all);
    for (size_t i = 0; i < nss; i++) vg_seriesset_free(ss[i]);
    return rc ? exec_error(out, rc, &err) : 200;
}

int vg_api_series(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out)
{
    vg_selector sels[VG_API_MAX_MATCH];
    int64_t mint, maxt;
    int status;
    vg_buf_reset(out);
    if ((status = tenant_ok(p, out))) return status;
    if (p->nmatch == 0) return bad_data(out, "no match[] parameter provided%s%s", "", "");
    if ((status = time_range(p, &mint, &maxt, out))) return status;
    if ((status = parse_matches(p, sels, "invalid parameter \"match[]\": ", out))) return status;
    status = series_run(db, p, sels, mint, maxt, out);
    free_matches(sels, p->nmatch);
    return status;
}

/* ---- /api/v1/labels and /api/v1/label/<name>/values ---- */

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Union of the per-selector lists (each sorted), sorted and unique. */
static vg_err_t write_union(vg_buf *out, char ***lists, const size_t *ns, size_t nl)
{
    size_t total = 0, n = 0;
    for (size_t i = 0; i < nl; i++) total += ns[i];
    char **all = vg_malloc((total ? total : 1) * sizeof(*all));
    if (!all) return VG_ENOMEM;
    for (size_t i = 0; i < nl; i++)
        for (size_t j = 0; j < ns[i]; j++) all[n++] = lists[i][j];
    if (nl > 1) qsort(all, n, sizeof(*all), cmp_cstr);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (w == 0 || strcmp(all[w - 1], all[i]) != 0) all[w++] = all[i];
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc) rc = vg_api_json_strings(out, all, w);
    if (!rc) rc = vg_buf_putc(out, '}');
    vg_free(all);
    return rc;
}

static int label_strings(vg_tsdb_t *db, const vg_api_params *p, const char *name, vg_buf *out)
{
    vg_selector sels[VG_API_MAX_MATCH];
    char **lists[VG_API_MAX_MATCH] = {0};
    size_t ns[VG_API_MAX_MATCH] = {0}, nl = p->nmatch ? p->nmatch : 1;
    int64_t mint, maxt;
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    int status;
    if ((status = time_range(p, &mint, &maxt, out))) return status;
    if ((status = parse_matches(p, sels, "", out))) return status;
    for (size_t i = 0; i < nl && !rc; i++) {
        vg_matcher_t *const *m = p->nmatch ? sels[i].m : NULL;
        size_t nm = p->nmatch ? sels[i].n : 0;
        rc = name ? vg_tsdb_label_values(db, tenant_of(p), name, m, nm, mint, maxt, &lists[i],
                                         &ns[i], &err)
                  : vg_tsdb_label_names(db, tenant_of(p), m, nm, mint, maxt, &lists[i], &ns[i],
                                        &err);
    }
    if (!rc) rc = write_union(out, lists, ns, nl);
    for (size_t i = 0; i < nl; i++) vg_free(lists[i]);
    free_matches(sels, p->nmatch);
    return rc ? exec_error(out, rc, &err) : 200;
}

int vg_api_labels(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out)
{
    int status;
    vg_buf_reset(out);
    if ((status = tenant_ok(p, out))) return status;
    return label_strings(db, p, NULL, out);
}

int vg_api_label_values(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out)
{
    int status;
    const char *name = p->label ? p->label : "";
    vg_buf_reset(out);
    if ((status = tenant_ok(p, out))) return status;
    if (!vg_label_name_valid(name, strlen(name))) {
        vg_buf q;
        vg_buf_init(&q, 1024);
        vg_lex_goquote(&q, name, strlen(name), 0);
        status = bad_data(out, "invalid label name: %s%s", q.data ? q.data : "\"\"", "");
        vg_buf_free(&q);
        return status;
    }
    return label_strings(db, p, name, out);
}

/* ---- /api/v1/query ---- */

/* Latest sample of the current series; 0 when none or when it is stale. */
static int latest_value(vg_seriesset_t *ss, double *v)
{
    int64_t t;
    double x;
    int have = 0;
    while (vg_seriesset_sample_next(ss, &t, &x)) {
        *v = x;
        have = 1;
    }
    uint64_t bits;
    memcpy(&bits, v, sizeof(bits));
    return have && bits != STALE_NAN_BITS; /* a stale marker ends the series */
}

static vg_err_t write_vector(vg_buf *out, vg_seriesset_t *ss, int64_t t)
{
    int first = 1;
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                                   "\"result\":[");
    while (!rc && vg_seriesset_next(ss)) {
        double v = 0;
        size_t n;
        if (!latest_value(ss, &v)) continue;
        const vg_label_t *l = vg_seriesset_labels(ss, &n);
        rc = vg_buf_puts(out, first ? "{\"metric\":" : ",{\"metric\":");
        first = 0;
        if (!rc) rc = vg_api_json_labels(out, l, n);
        if (!rc) rc = vg_buf_puts(out, ",\"value\":[");
        if (!rc) rc = vg_api_json_time(out, t);
        if (!rc) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_api_json_value(out, v);
        if (!rc) rc = vg_buf_puts(out, "]}");
    }
    return rc ? rc : vg_buf_puts(out, "]}}");
}

int vg_api_query(vg_tsdb_t *db, const vg_api_params *p, vg_buf *out)
{
    vg_selector sel;
    vg_seriesset_t *ss = NULL;
    vg_error err = {0};
    int64_t t = p->now_ms;
    int status;
    vg_buf_reset(out);
    if ((status = tenant_ok(p, out))) return status;
    if (p->time && p->time[0] && vg_api_parse_time(p->time, &t, &err))
        return bad_data(out, "invalid parameter \"time\": invalid time value for 'time': %s%s",
                        err.msg, "");
    const char *q = p->query ? p->query : "";
    if (vg_selector_parse(q, strlen(q), &sel, &err) != VG_OK)
        return bad_data(out, "invalid parameter \"query\": %s%s", err.msg, "");
    /* The lookback window is (t - 5m, t]. */
    int64_t mint = t > API_MIN_TIME + VG_API_LOOKBACK_MS ? t - VG_API_LOOKBACK_MS + 1 : t;
    vg_err_t rc = vg_tsdb_select(db, tenant_of(p), sel.m, sel.n, mint, t, &ss, &err);
    if (!rc) rc = write_vector(out, ss, t);
    vg_seriesset_free(ss);
    vg_selector_free(&sel);
    return rc ? exec_error(out, rc, &err) : 200;
}

/* ---- HTTP glue ---- */

typedef int (*api_fn)(vg_tsdb_t *, const vg_api_params *, vg_buf *);

typedef struct api_route {
    const char *path, *name;
    api_fn fn;
} api_route;

static const api_route routes[] = {
    {"/api/v1/series", "series", vg_api_series},
    {"/api/v1/labels", "labels", vg_api_labels},
    {"/api/v1/label/*", "label_values", vg_api_label_values},
    {"/api/v1/query", "query", vg_api_query},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Handler context. vg_api_register has no matching free (the collector
 * registers once per process), so contexts live in static slots instead of
 * leaking heap memory. */
typedef struct api_ctx {
    vg_tsdb_t *db;
    const api_route *route;
    vg_metric_t *requests, *errors;
} api_ctx;

#define MAX_REGISTRATIONS 16
static api_ctx ctx_slots[MAX_REGISTRATIONS * NROUTES];
static int ctx_used;

/* "/api/v1/label/<name>/values" -> name in buf; NULL when the path is not that. */
static const char *label_from_path(const char *path, char *buf, size_t n)
{
    static const char pre[] = "/api/v1/label/", suf[] = "/values";
    size_t len = strlen(path), lp = sizeof(pre) - 1, ls = sizeof(suf) - 1;
    if (len <= lp + ls || strncmp(path, pre, lp) || strcmp(path + len - ls, suf)) return NULL;
    size_t nl = len - lp - ls;
    if (nl >= n || memchr(path + lp, '/', nl)) return NULL;
    memcpy(buf, path + lp, nl);
    buf[nl] = 0;
    return buf;
}

static void api_handle(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    api_ctx *c = ud;
    const char *match[VG_API_MAX_MATCH + 1];
    char label[512];
    vg_api_params p = {
        .tenant = vg_http_req_header(req, "X-Scope-OrgID"),
        .match = match,
        .start = vg_http_req_arg(req, "start"),
        .end = vg_http_req_arg(req, "end"),
        .time = vg_http_req_arg(req, "time"),
        .query = vg_http_req_arg(req, "query"),
        .now_ms = vg_clock_wall_ms(),
    };
    p.nmatch = vg_http_req_args(req, "match[]", match, VG_API_MAX_MATCH + 1);
    vg_metric_inc(c->requests);
    if (c->route->fn == vg_api_label_values &&
        !(p.label = label_from_path(vg_http_req_path(req), label, sizeof label))) {
        vg_http_resp_text(resp, 404, "404 page not found\n");
        return;
    }
    vg_buf out;
    vg_buf_init(&out, VG_API_MAX_RESPONSE);
    resp->status = c->route->fn(c->db, &p, &out);
    if (resp->status != 200) vg_metric_inc(c->errors);
    resp->content_type = "application/json";
    vg_buf_free(&resp->body);
    resp->body = out;
}

vg_err_t vg_api_register(vg_httpd_t *h, vg_tsdb_t *db, vg_metrics_t *m)
{
    int base = __atomic_fetch_add(&ctx_used, (int)NROUTES, __ATOMIC_RELAXED);
    if (base + (int)NROUTES > (int)(sizeof(ctx_slots) / sizeof(ctx_slots[0]))) return VG_ELIMIT;
    for (size_t i = 0; i < NROUTES; i++) {
        api_ctx *c = &ctx_slots[base + (int)i];
        char labels[64];
        snprintf(labels, sizeof labels, "handler=\"%s\"", routes[i].name);
        c->db = db;
        c->route = &routes[i];
        c->requests = m ? vg_metrics_counter(m, "vigil_api_requests_total",
                                             "Prometheus API requests, by handler.", labels)
                        : NULL;
        c->errors =
            m ? vg_metrics_counter(m, "vigil_api_request_errors_total",
                                   "Prometheus API requests answered with an error.", labels)
              : NULL;
        vg_err_t rc = vg_httpd_route(h, "GET", routes[i].path, api_handle, c);
        if (!rc) rc = vg_httpd_route(h, "POST", routes[i].path, api_handle, c);
        if (rc) return rc;
    }
    return VG_OK;
}
