/*
 * query.c - /api/v1/query, /api/v1/query_range, /api/v1/format_query and
 * /api/v1/parse_query on the PromQL engine.
 *
 * Parameters are checked in the order Prometheus checks them (limit, times,
 * step, timeout) so the first error reported is the same one; the result is
 * written in Prometheus's JSON (see json.h) with the warnings and infos the
 * engine collected. Engine error codes map to Prometheus's error types:
 * VG_EPARSE -> bad_data 400 (prefixed `invalid parameter "query": `),
 * VG_ERETRY -> timeout 503, VG_ELIMIT and other evaluation errors ->
 * execution 422, VG_EINTERNAL/ENOMEM -> internal 500.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "api/json.h"
#include "promql/functions_table.h"

/* ---- results ---- */

static vg_err_t write_series(vg_buf *out, const vg_promql_series *s, int matrix)
{
    vg_err_t rc = vg_buf_puts(out, "{\"metric\":");
    if (!rc) rc = vg_api_json_labels(out, s->labels, s->nlabels);
    if (!rc) rc = vg_buf_puts(out, matrix ? ",\"values\":[" : ",\"value\":");
    for (size_t i = 0; i < s->n && !rc && (matrix || i == 0); i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_api_json_point(out, s->ts[i], s->v[i]);
    }
    if (!rc && matrix) rc = vg_buf_putc(out, ']');
    return rc ? rc : vg_buf_putc(out, '}');
}

static const char *type_name(vg_promql_result_type t)
{
    switch (t) {
    case VG_PROMQL_RES_SCALAR: return "scalar";
    case VG_PROMQL_RES_VECTOR: return "vector";
    case VG_PROMQL_RES_MATRIX: return "matrix";
    case VG_PROMQL_RES_STRING: return "string";
    }
    return "unknown";
}

/* The whole success envelope of a query result; limit 0 = all series. */
static vg_err_t write_result(vg_buf *out, const vg_promql_result *r, size_t limit)
{
    vg_err_t rc = vg_buf_printf(out,
                                "{\"status\":\"success\",\"data\":{\"resultType\":\"%s\","
                                "\"result\":",
                                type_name(r->type));
    if (!rc && (r->type == VG_PROMQL_RES_SCALAR || r->type == VG_PROMQL_RES_STRING)) {
        rc = vg_buf_putc(out, '[');
        if (!rc) rc = vg_api_json_time(out, r->t_ms);
        if (!rc) rc = vg_buf_putc(out, ',');
        if (!rc && r->type == VG_PROMQL_RES_SCALAR) rc = vg_api_json_value(out, r->scalar);
        if (!rc && r->type == VG_PROMQL_RES_STRING)
            rc =
                vg_buf_json_str(out, r->string ? r->string : "", r->string ? strlen(r->string) : 0);
        if (!rc) rc = vg_buf_puts(out, "]}");
        return rc ? rc : vg_api__finish(out, r->warnings, r->nwarnings, r->infos, r->ninfos);
    }
    size_t n = limit && r->nseries > limit ? limit : r->nseries;
    if (!rc) rc = vg_buf_putc(out, '[');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = write_series(out, &r->series[i], r->type == VG_PROMQL_RES_MATRIX);
    }
    if (!rc) rc = vg_buf_puts(out, "]}");
    if (rc || n == r->nseries)
        return rc ? rc : vg_api__finish(out, r->warnings, r->nwarnings, r->infos, r->ninfos);
    /* Truncated: Prometheus adds its warning after the engine's. */
    const char *w[65];
    size_t nw = r->nwarnings < 64 ? r->nwarnings : 64;
    memcpy(w, r->warnings, nw * sizeof(*w));
    w[nw++] = VG_API_TRUNCATED;
    return vg_api__finish(out, w, nw, r->infos, r->ninfos);
}

/* An engine error as Prometheus reports it. */
static int query_error(vg_buf *out, vg_err_t rc, const vg_error *err)
{
    if (rc == VG_EPARSE || rc == VG_EUNSUPPORTED)
        return vg_api__fail(out, 400, "bad_data", "invalid parameter \"query\": %s",
                            vg_error_msg(err, rc));
    return vg_api__exec_error(out, rc, err);
}

/* ?timeout=: 0 (and *ms = 0 when absent), or a written 400. */
static int timeout_param(const vg_api_params *p, int64_t *ms, vg_buf *out)
{
    vg_error err = {0};
    *ms = 0;
    if (!p->timeout || !p->timeout[0] || vg_api_parse_duration(p->timeout, ms, &err) == VG_OK)
        return 0;
    return vg_api__fail(out, 400, "bad_data", "invalid parameter \"timeout\": %s", err.msg);
}

/* The engine for a request. Prometheus applies ?timeout= as a deadline on
 * top of the engine's own, so a shorter one gets a request-scoped engine
 * (an engine is only its options); *tmp is what the caller frees. */
static vg_promql_engine_t *engine_for(vg_api_t *api, int64_t timeout_ms, vg_promql_engine_t **tmp)
{
    *tmp = NULL;
    if (timeout_ms <= 0 || timeout_ms >= api->opts.timeout_ms) return api->eng;
    vg_promql_opts o = api->opts;
    o.timeout_ms = timeout_ms;
    *tmp = vg_promql_engine_new(&o);
    return *tmp ? *tmp : api->eng;
}

static int finish_query(vg_buf *out, vg_err_t rc, const vg_error *err, vg_promql_result *res,
                        size_t limit)
{
    if (!rc) rc = write_result(out, res, limit);
    vg_promql_result_free(res);
    return rc ? query_error(out, rc, err) : 200;
}

int vg_api_query(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_promql_result *res = NULL;
    vg_promql_engine_t *tmp;
    vg_tsdb_queryable tq;
    vg_error err = {0};
    int64_t t, timeout;
    size_t limit;
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    if ((status = vg_api__limit_param(p->limit, &limit, out))) return status;
    if ((status = vg_api__time_param("time", p->time, p->now_ms, &t, out))) return status;
    if ((status = timeout_param(p, &timeout, out))) return status;
    vg_err_t rc = vg_promql_instant(engine_for(api, timeout, &tmp), vg_api__queryable(api, p, &tq),
                                    p->query ? p->query : "", t, &res, &err);
    vg_promql_engine_free(tmp);
    return finish_query(out, rc, &err, res, limit);
}

/* start, end and step of a range query, checked as Prometheus does. */
static int range_params(const vg_api_params *p, int64_t *start, int64_t *end, int64_t *step,
                        int64_t *timeout, vg_buf *out)
{
    vg_error err = {0};
    if (vg_api_parse_time(p->start ? p->start : "", start, &err))
        return vg_api__fail(out, 400, "bad_data", "invalid parameter \"start\": %s", err.msg);
    if (vg_api_parse_time(p->end ? p->end : "", end, &err))
        return vg_api__fail(out, 400, "bad_data", "invalid parameter \"end\": %s", err.msg);
    if (*end < *start)
        return vg_api__fail(out, 400, "bad_data", "end timestamp must not be before start time");
    if (vg_api_parse_duration(p->step ? p->step : "", step, &err))
        return vg_api__fail(out, 400, "bad_data", "invalid parameter \"step\": %s", err.msg);
    if (*step <= 0)
        return vg_api__fail(out, 400, "bad_data",
                            "zero or negative query resolution step widths are not accepted. "
                            "Try a positive integer");
    if ((*end - *start) / *step > VG_API_MAX_POINTS)
        return vg_api__fail(out, 400, "bad_data",
                            "exceeded maximum resolution of 11,000 points per timeseries. Try "
                            "decreasing the query resolution (?step=XX)");
    return timeout_param(p, timeout, out);
}

int vg_api_query_range(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_promql_result *res = NULL;
    vg_promql_engine_t *tmp;
    vg_tsdb_queryable tq;
    vg_error err = {0};
    int64_t start, end, step, timeout;
    size_t limit;
    int status;
    vg_buf_reset(out);
    if ((status = vg_api__tenant_ok(p, out))) return status;
    if ((status = vg_api__limit_param(p->limit, &limit, out))) return status;
    if ((status = range_params(p, &start, &end, &step, &timeout, out))) return status;
    vg_err_t rc = vg_promql_range(engine_for(api, timeout, &tmp), vg_api__queryable(api, p, &tq),
                                  p->query ? p->query : "", start, end, step, &res, &err);
    vg_promql_engine_free(tmp);
    return finish_query(out, rc, &err, res, limit);
}

/* ---- format_query and parse_query ---- */

static int parse_param(const vg_api_params *p, vg_promql_expr_t **e, vg_buf *out)
{
    vg_error err = {0};
    const char *q = p->query ? p->query : "";
    vg_err_t rc = vg_promql_parse(q, strlen(q), e, &err);
    if (rc == VG_ENOMEM) return vg_api__exec_error(out, rc, &err);
    if (rc)
        return vg_api__fail(out, 400, "bad_data", "invalid parameter \"query\": %s",
                            vg_error_msg(&err, rc));
    return 0;
}

int vg_api_format_query(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_promql_expr_t *e = NULL;
    vg_buf text;
    int status;
    (void)api;
    vg_buf_reset(out);
    if ((status = parse_param(p, &e, out))) return status;
    vg_buf_init(&text, VG_API_MAX_RESPONSE / 4);
    vg_err_t rc = vg_promql_format(e, &text);
    if (!rc) rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc) rc = vg_buf_json_str(out, text.data ? text.data : "", text.len);
    if (!rc) rc = vg_buf_putc(out, '}');
    vg_buf_free(&text);
    vg_promql_expr_free(e);
    return rc ? vg_api__exec_error(out, rc, NULL) : 200;
}

int vg_api_parse_query(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_promql_expr_t *e = NULL;
    int status;
    (void)api;
    vg_buf_reset(out);
    if ((status = parse_param(p, &e, out))) return status;
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc) rc = vg_api__ast_json(out, e->root);
    if (!rc) rc = vg_buf_putc(out, '}');
    vg_promql_expr_free(e);
    return rc ? vg_api__exec_error(out, rc, NULL) : 200;
}
