/*
 * status.c - the informational endpoints: /api/v1/status/buildinfo,
 * /api/v1/query_exemplars, /api/v1/rules and /api/v1/alerts
 * (/api/v1/metadata is in metadata.c).
 *
 * Grafana and promtool call these to discover what the server is and what
 * it holds; an error here breaks a data-source health check, so each one
 * answers with Prometheus's exact shape even where Vigil has nothing to
 * report yet: the store keeps no exemplars, and
 * rules and alerts stay empty until the alerting module fills them.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

#ifndef VIGIL_REVISION
#define VIGIL_REVISION ""
#endif

static int success(vg_buf *out, const char *data)
{
    vg_err_t rc = vg_buf_puts(out, "{\"status\":\"success\",\"data\":");
    if (!rc) rc = vg_buf_puts(out, data);
    if (!rc) rc = vg_buf_putc(out, '}');
    return rc ? vg_api__exec_error(out, rc, NULL) : 200;
}

int vg_api_buildinfo(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    (void)api, (void)p;
    vg_buf_reset(out);
    return success(out, "{\"version\":\"" VIGIL_VERSION "\",\"revision\":\"" VIGIL_REVISION
                        "\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
                        "\"goVersion\":\"\",\"features\":{}}");
}

static int has_selector(const vg_pq_node *n)
{
    if (!n) return 0;
    switch (n->kind) {
    case VG_PQ_VECTOR_SEL:
    case VG_PQ_MATRIX_SEL: return 1;
    case VG_PQ_SUBQUERY: return has_selector(n->u.sub.expr);
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT: return has_selector(n->u.unary.expr);
    case VG_PQ_BINARY: return has_selector(n->u.bin.lhs) || has_selector(n->u.bin.rhs);
    case VG_PQ_AGGREGATE: return has_selector(n->u.agg.param) || has_selector(n->u.agg.expr);
    case VG_PQ_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++)
            if (has_selector(n->u.call.args[i])) return 1;
        return 0;
    default: return 0;
    }
}

/* Grafana sends start and end in milliseconds here; as unix seconds those
 * are far-future times that parse fine, and no exemplars are stored, so the
 * answer is the same either way. */
int vg_api_query_exemplars(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    int64_t start, end;
    vg_promql_expr_t *e = NULL;
    vg_error err = {0};
    int status;
    (void)api;
    vg_buf_reset(out);
    if ((status = vg_api__time_param("start", p->start, VG_API_MIN_TIME, &start, out)))
        return status;
    if ((status = vg_api__time_param("end", p->end, VG_API_MAX_TIME, &end, out))) return status;
    if (end < start)
        return vg_api__fail(out, 400, "bad_data",
                            "end timestamp must not be before start timestamp");
    const char *q = p->query ? p->query : "";
    vg_err_t rc = vg_promql_parse(q, strlen(q), &e, &err);
    if (rc)
        return rc == VG_ENOMEM ? vg_api__exec_error(out, rc, &err)
                               : vg_api__fail(out, 400, "bad_data", "%s", vg_error_msg(&err, rc));
    int any = has_selector(e->root);
    vg_promql_expr_free(e);
    if (!any) return vg_buf_puts(out, "{\"status\":\"success\"}") ? 500 : 200;
    return success(out, "[]");
}

int vg_api_rules(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    (void)api, (void)p;
    vg_buf_reset(out);
    return success(out, "{\"groups\":[]}");
}

int vg_api_alerts(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    (void)api, (void)p;
    vg_buf_reset(out);
    return success(out, "{\"alerts\":[]}");
}
