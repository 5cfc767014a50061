/*
 * api.c - the API context, the parameter parsers and envelopes every
 * endpoint shares, the metadata endpoints (series, labels, label values)
 * and the HTTP glue.
 *
 * The handlers validate parameters in Prometheus's order and with its
 * messages (bad_data errors are compared byte for byte by tests), read the
 * store through snapshot queries, and write JSON with vg_buf. Queries live
 * in query.c, the informational endpoints in status.c, /federate in
 * federate.c and remote read in read.c.
 */
#include "api/api.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "api/json.h"
#include "promql/lex.h"
#include "promql/selector.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/duration.h"
#include "vigil/timefmt.h"

/* ---- time parsing ---- */

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

/* VG_EINVAL with fmt's %s replaced by Go's %q of s, as Prometheus words it. */
static vg_err_t quoted_error(vg_error *err, const char *fmt, const char *s)
{
    vg_buf b;
    vg_buf_init(&b, 1024);
    vg_lex_goquote(&b, s, strlen(s), 0);
    vg_error_set(err, VG_EINVAL, fmt, b.data ? b.data : "");
    vg_buf_free(&b);
    return VG_EINVAL;
}

vg_err_t vg_api_parse_time(const char *s, int64_t *ms, vg_error *err)
{
    if (parse_float_time(s, ms) || vg_timefmt_parse_rfc3339(s, strlen(s), 0, ms) == VG_OK)
        return VG_OK;
    if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) return *ms = VG_API_MIN_TIME, VG_OK;
    if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) return *ms = VG_API_MAX_TIME, VG_OK;
    return quoted_error(err, "cannot parse %s to a valid timestamp", s);
}

/* Go's time.ParseDuration-free parseDuration: float seconds, else a
 * PromQL duration. */
vg_err_t vg_api_parse_duration(const char *s, int64_t *ms, vg_error *err)
{
    char *end;
    if (*s && !strchr(" \t\n\r\v\f", *s)) {
        double d = strtod(s, &end);
        if (!*end && !isnan(d)) {
            if (fabs(d) * 1e9 > 9.2233720368547758e18)
                return quoted_error(err, "cannot parse %s to a valid duration. It overflows int64",
                                    s);
            double m = d * 1000;
            *ms = (int64_t)m;
            if (*ms == 0 && d > 0) *ms = 1;
            return VG_OK;
        }
    }
    if (vg_duration_parse(s, ms, NULL) == VG_OK) return VG_OK;
    return quoted_error(err, "cannot parse %s to a valid duration", s);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One "_hex_" escape at s (after the '_'); bytes consumed or 0 when bad. */
static size_t unescape_code(const char *s, char *out, size_t *w, size_t n)
{
    uint32_t cp = 0;
    size_t i = 0;
    for (; s[i] != '_'; i++) {
        int h = hexval(s[i]);
        if (h < 0 || i >= 6) return 0;
        cp = cp * 16 + (uint32_t)h;
    }
    if (i == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    char enc[4];
    size_t k = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (k == 1)
        enc[0] = (char)cp;
    else {
        for (size_t j = k - 1; j > 0; j--, cp >>= 6) enc[j] = (char)(0x80 | (cp & 0x3f));
        enc[0] = (char)((0xf00u >> k) | cp);
    }
    if (*w + k >= n) return 0;
    memcpy(out + *w, enc, k);
    *w += k;
    return i + 1;
}

void vg_api_unescape_name(const char *in, char *out, size_t n)
{
    size_t w = 0, len = strlen(in);
    if (n == 0) return;
    if (strncmp(in, "U__", 3) == 0) {
        const char *s = in + 3;
        while (*s && w + 1 < n) {
            if (*s != '_')
                out[w++] = *s++;
            else if (s[1] == '_')
                out[w++] = '_', s += 2;
            else {
                size_t used = s[1] ? unescape_code(s + 1, out, &w, n) : 0;
                if (!used) break;
                s += 1 + used;
            }
        }
        if (!*s) {
            out[w] = 0;
            return;
        }
    }
    if (len >= n) len = n - 1;
    memcpy(out, in, len);
    out[len] = 0;
}

/* ---- shared helpers ---- */

int vg_api__fail(vg_buf *out, int status, const char *type, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_api_json_error(out, type, msg);
    return status;
}

int vg_api__exec_error(vg_buf *out, vg_err_t rc, const vg_error *err)
{
    const char *msg = vg_error_msg(err, rc);
    switch (rc) {
    case VG_ETOOLARGE:
        return vg_api__fail(out, 422, "execution", "response larger than the configured limit");
    case VG_EPARSE:
    case VG_EUNSUPPORTED: return vg_api__fail(out, 400, "bad_data", "%s", msg);
    case VG_ERETRY: return vg_api__fail(out, 503, "timeout", "%s", msg);
    case VG_ENOMEM:
    case VG_EINTERNAL:
    case VG_ECORRUPT: return vg_api__fail(out, 500, "internal", "%s", msg);
    default: return vg_api__fail(out, 422, "execution", "%s", msg);
    }
}

const char *vg_api__tenant(const vg_api_params *p)
{
    return p->tenant && p->tenant[0] ? p->tenant : VG_TENANT_DEFAULT;
}

int vg_api__tenant_ok(const vg_api_params *p, vg_buf *out)
{
    if (vg_tsdb_tenant_valid(vg_api__tenant(p))) return 0;
    return vg_api__fail(out, 400, "bad_data",
                        "invalid tenant in X-Scope-OrgID: want 1-64 characters of [A-Za-z0-9_.-]");
}

int vg_api__time_param(const char *name, const char *s, int64_t dflt, int64_t *ms, vg_buf *out)
{
    vg_error err = {0};
    *ms = dflt;
    if (!s || !s[0] || vg_api_parse_time(s, ms, &err) == VG_OK) return 0;
    return vg_api__fail(out, 400, "bad_data",
                        "invalid parameter \"%s\": invalid time value for '%s': %s", name, name,
                        err.msg);
}

int vg_api__limit_param(const char *s, size_t *limit, vg_buf *out)
{
    char *end;
    *limit = 0;
    if (!s || !s[0]) return 0;
    vg_buf q;
    vg_buf_init(&q, 1024);
    vg_lex_goquote(&q, s, strlen(s), 0);
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int status = 0;
    if (*end || isspace((unsigned char)s[0]) || (s[0] == '+' && !isdigit((unsigned char)s[1])))
        status =
            vg_api__fail(out, 400, "bad_data",
                         "invalid parameter \"limit\": strconv.Atoi: parsing %s: invalid syntax",
                         q.data ? q.data : "");
    else if (errno == ERANGE)
        status = vg_api__fail(out, 400, "bad_data",
                              "invalid parameter \"limit\": strconv.Atoi: parsing %s: value out of "
                              "range",
                              q.data ? q.data : "");
    else if (v < 0)
        status = vg_api__fail(out, 400, "bad_data",
                              "invalid parameter \"limit\": limit must be non-negative");
    else
        *limit = (size_t)v;
    vg_buf_free(&q);
    return status;
}

static vg_err_t json_list(vg_buf *out, const char *key, const char *const *v, size_t n)
{
    vg_err_t rc = vg_buf_printf(out, ",\"%s\":[", key);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_buf_json_str(out, v[i], strlen(v[i]));
    }
    return rc ? rc : vg_buf_putc(out, ']');
}

vg_err_t vg_api__finish(vg_buf *out, const char *const *warnings, size_t nw,
                        const char *const *infos, size_t ni)
{
    vg_err_t rc = nw ? json_list(out, "warnings", warnings, nw) : VG_OK;
    if (!rc && ni) rc = json_list(out, "infos", infos, ni);
    return rc ? rc : vg_buf_putc(out, '}');
}

void vg_api__quote(vg_buf *b, const char *s)
{
    vg_lex_goquote(b, s, strlen(s), 0);
}

vg_api_t *vg_api_new(vg_tsdb_t *db, const vg_promql_opts *opts)
{
    vg_api_t *a = vg_calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->db = db;
    if (opts) a->opts = *opts;
    /* Zero fields mean the engine's documented defaults. */
    if (!a->opts.lookback_ms) a->opts.lookback_ms = 5 * 60 * 1000;
    if (!a->opts.max_samples) a->opts.max_samples = 50000000;
    if (!a->opts.timeout_ms) a->opts.timeout_ms = 2 * 60 * 1000;
    a->eng = vg_promql_engine_new(&a->opts);
    if (!a->eng) {
        vg_free(a);
        return NULL;
    }
    return a;
}

void vg_api_free(vg_api_t *api)
{
    if (!api) return;
    vg_promql_engine_free(api->eng);
    vg_free(api);
}

vg_queryable vg_api__queryable(vg_api_t *api, const vg_api_params *p, vg_tsdb_queryable *tq)
{
    *tq = (vg_tsdb_queryable){api->db, vg_api__tenant(p)};
    return vg_queryable_tsdb(tq);
}

/* Parse every match[]; 0 or a written 400 status. prefix wraps the message. */
static int parse_matches(const vg_api_params *p, vg_selector *sels, const char *prefix, vg_buf *out)
{
    if (p->nmatch > VG_API_MAX_MATCH)
        return vg_api__fail(out, 400, "bad_data", "too many match[] parameters: at most %d",
                            VG_API_MAX_MATCH);
    for (size_t i = 0; i < p->nmatch; i++) {
        vg_error err = {0};
        const char *s = p->match[i] ? p->match[i] : "";
        if (vg_selector_parse(s, strlen(s), &sels[i], &err) != VG_OK) {
            for (size_t j = 0; j < i; j++) vg_selector_free(&sels[j]);
            return vg_api__fail(out, 400, "bad_data", "%s%s", prefix, err.msg);
        }
    }
    return 0;
}

static void free_matches(vg_selector *sels, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_selector_free(&sels[i]);
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

static const char *const truncated[] = {VG_API_TRUNCATED};

static vg_err_t write_series(vg_buf *out, const lset *s, size_t n, size_t limit)
{
    int cut = limit && n > limit;
    if (cut) n = limit;
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_api_json_labels(out, s[i].l, s[i].n);
    }
    if (!rc) rc = vg_buf_putc(out, ']');
    return rc ? rc : vg_api__finish(out, truncated, cut, NULL, 0);
}

static int series_run(vg_api_t *api, const vg_api_params *p, vg_selector *sels, int64_t mint,
                      int64_t maxt, size_t limit, vg_buf *out)
{
    vg_seriesset_t *ss[VG_API_MAX_MATCH] = {0};
    lset *all = NULL;
    size_t n = 0, nss = 0;
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    for (; nss < p->nmatch && !rc; nss++)
        rc = vg_tsdb_select(api->db, vg_api__tenant(p), sels[nss].m, sels[nss].n, mint, maxt,
                            &ss[nss], &err);
    if (!rc) rc = merge_series(ss, nss, &all, &n);
    if (!rc) rc = write_series(out, all, n, limit);
    vg_free(all);
    for (size_t i = 0; i < nss; i++) vg_seriesset_free(ss[i]);
    return rc ? vg_api__exec_error(out, rc, &err) : 200;
}

/* start, end (defaults: all time) and limit, in Prometheus's order. */
static int range_and_limit(const vg_api_params *p, int64_t *mint, int64_t *maxt, size_t *limit,
                           vg_buf *out)
{
    int status = vg_api__time_param("start", p->start, VG_API_MIN_TIME, mint, out);
    if (!status) status = vg_api__time_param("end", p->end, VG_API_MAX_TIME, maxt, out);
    if (!status) status = vg_api__limit_param(p->limit, limit, out);
    return status;
}

int vg_api_series(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_selector sels[VG_API_MAX_MATCH];
    int64_t mint, maxt;
    size_t limit;
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    if (p->nmatch == 0) return vg_api__fail(out, 400, "bad_data", "no match[] parameter provided");
    if ((status = range_and_limit(p, &mint, &maxt, &limit, out))) return status;
    if ((status = parse_matches(p, sels, "invalid parameter \"match[]\": ", out))) return status;
    status = series_run(api, p, sels, mint, maxt, limit, out);
    free_matches(sels, p->nmatch);
    return status;
}

/* ---- /api/v1/labels and /api/v1/label/<name>/values ---- */

static int cmp_cstr(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Union of the per-selector lists (each sorted), sorted and unique. */
static vg_err_t write_union(vg_buf *out, char ***lists, const size_t *ns, size_t nl, size_t limit)
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
    int cut = limit && w > limit;
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc) rc = vg_api_json_strings(out, all, cut ? limit : w);
    if (!rc) rc = vg_api__finish(out, truncated, cut, NULL, 0);
    vg_free(all);
    return rc;
}

static int label_strings(vg_api_t *api, const vg_api_params *p, const char *name, vg_buf *out)
{
    vg_selector sels[VG_API_MAX_MATCH];
    char **lists[VG_API_MAX_MATCH] = {0};
    size_t ns[VG_API_MAX_MATCH] = {0}, nl = p->nmatch ? p->nmatch : 1, limit;
    int64_t mint, maxt;
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    int status;
    const char *tenant = vg_api__tenant(p);
    if ((status = range_and_limit(p, &mint, &maxt, &limit, out))) return status;
    if ((status = parse_matches(p, sels, "", out))) return status;
    for (size_t i = 0; i < nl && !rc; i++) {
        vg_matcher_t *const *m = p->nmatch ? sels[i].m : NULL;
        size_t nm = p->nmatch ? sels[i].n : 0;
        rc = name
                 ? vg_tsdb_label_values(api->db, tenant, name, m, nm, mint, maxt, &lists[i], &ns[i],
                                        &err)
                 : vg_tsdb_label_names(api->db, tenant, m, nm, mint, maxt, &lists[i], &ns[i], &err);
    }
    if (!rc) rc = write_union(out, lists, ns, nl, limit);
    for (size_t i = 0; i < nl; i++) vg_free(lists[i]);
    free_matches(sels, p->nmatch);
    return rc ? vg_api__exec_error(out, rc, &err) : 200;
}

int vg_api_labels(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    return label_strings(api, p, NULL, out);
}

/* Prometheus 3 accepts any non-empty UTF-8 label name here. */
static int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        int n = *u < 0x80             ? 0
                : (*u & 0xe0) == 0xc0 ? 1
                : (*u & 0xf0) == 0xe0 ? 2
                : (*u & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *u < 0xc2)) return 0;
        for (u++; n > 0; n--, u++)
            if ((*u & 0xc0) != 0x80) return 0;
    }
    return 1;
}

int vg_api_label_values(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    char name[1024];
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    vg_api_unescape_name(p->label ? p->label : "", name, sizeof name);
    if (!name[0] || !utf8_valid(name)) {
        vg_buf q;
        vg_buf_init(&q, 4096);
        vg_api__quote(&q, name);
        status =
            vg_api__fail(out, 400, "bad_data", "invalid label name: %s", q.data ? q.data : "\"\"");
        vg_buf_free(&q);
        return status;
    }
    return label_strings(api, p, name, out);
}

/* ---- HTTP glue ---- */

typedef int (*api_fn)(vg_api_t *, const vg_api_params *, vg_buf *);

typedef struct api_route {
    const char *path, *name;
    api_fn fn;
} api_route;

static const api_route routes[] = {
    {"/api/v1/series", "series", vg_api_series},
    {"/api/v1/labels", "labels", vg_api_labels},
    {"/api/v1/label/*", "label_values", vg_api_label_values},
    {"/api/v1/query", "query", vg_api_query},
    {"/api/v1/query_range", "query_range", vg_api_query_range},
    {"/api/v1/format_query", "format_query", vg_api_format_query},
    {"/api/v1/parse_query", "parse_query", vg_api_parse_query},
    {"/api/v1/metadata", "metadata", vg_api_metadata},
    {"/api/v1/status/buildinfo", "buildinfo", vg_api_buildinfo},
    {"/api/v1/query_exemplars", "query_exemplars", vg_api_query_exemplars},
    /* /api/v1/rules and /api/v1/alerts are served by rules/rules_api.c. */
    {"/federate", "federate", vg_api_federate},
    {"/api/v1/read", "read", NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Handler context. vg_api_register has no matching free (the collector
 * registers once per process), so contexts live in static slots instead of
 * leaking heap memory. */
typedef struct api_ctx {
    vg_api_t *api;
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

static void read_params(const vg_http_req *req, vg_api_params *p, const char **match)
{
    *p = (vg_api_params){
        .tenant = vg_http_req_header(req, "X-Scope-OrgID"),
        .match = match,
        .start = vg_http_req_arg(req, "start"),
        .end = vg_http_req_arg(req, "end"),
        .time = vg_http_req_arg(req, "time"),
        .query = vg_http_req_arg(req, "query"),
        .step = vg_http_req_arg(req, "step"),
        .timeout = vg_http_req_arg(req, "timeout"),
        .limit = vg_http_req_arg(req, "limit"),
        .limit_per_metric = vg_http_req_arg(req, "limit_per_metric"),
        .metric = vg_http_req_arg(req, "metric"),
        .now_ms = vg_clock_wall_ms(),
    };
    p->nmatch = vg_http_req_args(req, "match[]", match, VG_API_MAX_MATCH + 1);
}

static void read_handle(api_ctx *c, const vg_http_req *req, vg_http_resp *resp)
{
    size_t len;
    const uint8_t *body = vg_http_req_body(req, &len);
    const char *ctype = NULL, *enc = NULL;
    vg_buf out;
    vg_buf_init(&out, VG_API_MAX_RESPONSE);
    resp->status = vg_api_remote_read(c->api, vg_http_req_header(req, "X-Scope-OrgID"), body, len,
                                      &out, &ctype, &enc);
    resp->content_type = ctype;
    if (enc) vg_http_resp_header(resp, "Content-Encoding", enc);
    vg_buf_free(&resp->body);
    resp->body = out;
}

static void api_handle(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    api_ctx *c = ud;
    const char *match[VG_API_MAX_MATCH + 1];
    char label[1024];
    vg_api_params p;
    vg_metric_inc(c->requests);
    if (!c->route->fn) {
        read_handle(c, req, resp);
    } else {
        read_params(req, &p, match);
        if (c->route->fn == vg_api_label_values &&
            !(p.label = label_from_path(vg_http_req_path(req), label, sizeof label))) {
            vg_http_resp_text(resp, 404, "404 page not found\n");
            return;
        }
        vg_buf out;
        vg_buf_init(&out, VG_API_MAX_RESPONSE);
        resp->status = c->route->fn(c->api, &p, &out);
        resp->content_type = c->route->fn != vg_api_federate ? "application/json"
                             : resp->status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                                                   : "text/plain; charset=utf-8";
        vg_buf_free(&resp->body);
        resp->body = out;
    }
    if (resp->status != 200) vg_metric_inc(c->errors);
}

vg_err_t vg_api_register(vg_httpd_t *h, vg_api_t *api, vg_metrics_t *m)
{
    int base = __atomic_fetch_add(&ctx_used, (int)NROUTES, __ATOMIC_RELAXED);
    if (base + (int)NROUTES > (int)(sizeof(ctx_slots) / sizeof(ctx_slots[0]))) return VG_ELIMIT;
    for (size_t i = 0; i < NROUTES; i++) {
        api_ctx *c = &ctx_slots[base + (int)i];
        char labels[64];
        snprintf(labels, sizeof labels, "handler=\"%s\"", routes[i].name);
        c->api = api;
        c->route = &routes[i];
        c->requests = m ? vg_metrics_counter(m, "vigil_api_requests_total",
                                             "Prometheus API requests, by handler.", labels)
                        : NULL;
        c->errors =
            m ? vg_metrics_counter(m, "vigil_api_request_errors_total",
                                   "Prometheus API requests answered with an error.", labels)
              : NULL;
        vg_err_t rc = routes[i].fn ? vg_httpd_route(h, "GET", routes[i].path, api_handle, c) : 0;
        if (!rc) rc = vg_httpd_route(h, "POST", routes[i].path, api_handle, c);
        if (rc) return rc;
    }
    return VG_OK;
}
