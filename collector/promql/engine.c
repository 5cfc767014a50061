/*
 * engine.c - the public entry points of the PromQL engine: parse the query
 * text, then evaluate it (eval_exec.c). Kept apart from the evaluator so the
 * evaluator can be built and tested on syntax trees alone.
 */
#include "promql/engine.h"

#include <string.h>

#include "promql/eval.h"

static vg_err_t run(vg_promql_engine_t *e, vg_queryable q, const char *query, int64_t start,
                    int64_t end, int64_t step, int range, vg_promql_result **out, vg_error *err)
{
    vg_promql_expr_t *expr = NULL;
    if (!out) return VG_EINVAL;
    *out = NULL;
    if (!e || !query) return vg_error_set(err, VG_EINVAL, "no query");
    vg_err_t rc = vg_promql_parse(query, strlen(query), &expr, err);
    if (rc) return rc;
    rc = pq_exec(e, q, expr, start, end, step, range, out, err);
    vg_promql_expr_free(expr);
    return rc;
}

vg_err_t vg_promql_instant(vg_promql_engine_t *e, vg_queryable q, const char *query, int64_t t_ms,
                           vg_promql_result **out, vg_error *err)
{
    return run(e, q, query, t_ms, t_ms, 0, 0, out, err);
}

vg_err_t vg_promql_range(vg_promql_engine_t *e, vg_queryable q, const char *query, int64_t start_ms,
                         int64_t end_ms, int64_t step_ms, vg_promql_result **out, vg_error *err)
{
    if (step_ms <= 0)
        return vg_error_set(err, VG_EINVAL,
                            "zero or negative query resolution step widths are not accepted. Try a "
                            "positive integer");
    if (end_ms < start_ms)
        return vg_error_set(err, VG_EINVAL, "end timestamp must not be before start time");
    return run(e, q, query, start_ms, end_ms, step_ms, 1, out, err);
}
