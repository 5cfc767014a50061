/*
 * record_rule.c - recording rules: evaluate, rename, relabel, store.
 *
 * The output of a recording rule is the instant vector of its expression
 * with __name__ set to the record name and the rule's labels applied (an
 * empty value removes a label); a scalar result becomes one series without
 * other labels, as in Prometheus. A result that has two series with the same
 * labels afterwards, or more series than the group's limit, fails the whole
 * evaluation and nothing is written.
 */
#include <string.h>

#include "rules/rules_int.h"
#include "vigil/alloc.h"

vg_err_t vg_rules__query_vector(vg_rules_t *m, const char *q, int64_t t, vg_promql_result **out,
                                vg_error *err)
{
    vg_err_t rc = vg_promql_instant(m->engine, vg_queryable_tsdb(&m->tq), q, t, out, err);
    if (rc) return rc;
    if ((*out)->type != VG_PROMQL_RES_VECTOR && (*out)->type != VG_PROMQL_RES_SCALAR) {
        vg_promql_result_free(*out);
        *out = NULL;
        return vg_error_set(err, VG_EINVAL, "rule result is not a vector or scalar");
    }
    return VG_OK;
}

static void free_sets(lset *s, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_rules__lset_free(&s[i]);
    vg_free(s);
}

static vg_err_t relabel_all(const rule *r, const vg_promql_result *res, lset *out, double *v,
                            vg_error *err)
{
    static const vg_label_t none[1];
    size_t n = res->type == VG_PROMQL_RES_SCALAR ? 1 : res->nseries;
    for (size_t i = 0; i < n; i++) {
        const vg_label_t *l = res->type == VG_PROMQL_RES_SCALAR ? none : res->series[i].labels;
        size_t nl = res->type == VG_PROMQL_RES_SCALAR ? 0 : res->series[i].nlabels;
        v[i] = res->type == VG_PROMQL_RES_SCALAR ? res->scalar : res->series[i].v[0];
        if (vg_rules__relabel(l, nl, r->labels, r->nlabels, VG_METRIC_NAME, r->def->name, 0,
                              &out[i]))
            return vg_error_set(err, VG_ENOMEM, "out of memory");
        for (size_t j = 0; j < i; j++)
            if (out[j].hash == out[i].hash &&
                !vg_labels_cmp(out[j].l, out[j].n, out[i].l, out[i].n))
                return vg_error_set(err, VG_EINVAL,
                                    "vector contains metrics with the same labelset after "
                                    "applying rule labels");
    }
    return VG_OK;
}

vg_err_t vg_rules__eval_record(vg_rules_t *m, group *g, rule *r, int64_t t_ms, vg_error *err)
{
    vg_promql_result *res = NULL;
    vg_err_t rc = vg_rules__query_vector(m, r->def->expr, t_ms, &res, err);
    if (rc) return rc;
    size_t n = res->type == VG_PROMQL_RES_SCALAR ? 1 : res->nseries;
    lset *out = vg_calloc(n ? n : 1, sizeof *out);
    double *v = vg_calloc(n ? n : 1, sizeof *v);
    if (!out || !v) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = relabel_all(r, res, out, v, err))) goto out;
    if (g->def->limit && n > g->def->limit) {
        rc = vg_error_set(err, VG_ELIMIT, "exceeded limit of %llu with %zu series",
                          (unsigned long long)g->def->limit, n);
        goto out;
    }
    vg_rules__write(m, &r->prev, out, v, n, t_ms);
    out = NULL; /* the memo owns it now */
out:
    if (out) free_sets(out, n);
    vg_free(v);
    vg_promql_result_free(res);
    return rc;
}
