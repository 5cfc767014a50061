/*
 * eval_exec.c - running one query: the engine handle, the storage adapter,
 * the pre-pass that marks step-invariant subtrees, the per-query context
 * with its limits, the final clean-up (delayed __name__ removal and the
 * duplicate-series check) and the conversion into a vg_promql_result that
 * owns its memory.
 *
 * The pre-pass is Prometheus's PreprocessExpr: the largest subtrees whose
 * value cannot change from step to step ('@' selectors, literals, and
 * functions of them) are wrapped in a VG_PQ_STEP_INVARIANT node, which the
 * evaluator computes once and repeats. Result order: a range query's
 * matrix is sorted by labels; an instant vector is sorted by labels too,
 * except when its top node orders it on purpose (sort*, topk, bottomk).
 */
#include <stdlib.h>
#include <string.h>

#include "promql/eval.h"
#include "promql/lex.h"
#include "tsdb/tiers.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"

struct vg_promql_engine {
    vg_promql_opts o;
};

vg_promql_engine_t *vg_promql_engine_new(const vg_promql_opts *opts)
{
    vg_promql_engine_t *e = vg_calloc(1, sizeof(*e));
    if (!e) return NULL;
    if (opts) e->o = *opts;
    if (e->o.lookback_ms <= 0) e->o.lookback_ms = 5 * 60 * 1000;
    if (e->o.max_samples == 0) e->o.max_samples = 50000000;
    if (e->o.timeout_ms <= 0) e->o.timeout_ms = 2 * 60 * 1000;
    return e;
}

void vg_promql_engine_free(vg_promql_engine_t *e)
{
    vg_free(e);
}

static vg_err_t tsdb_select(void *ud, vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                            vg_seriesset_t **out, vg_error *err)
{
    vg_tsdb_queryable *q = ud;
    return vg_tsdb_select(q->db, q->tenant ? q->tenant : VG_TENANT_DEFAULT, m, nm, mint, maxt, out,
                          err);
}

vg_queryable vg_queryable_tsdb(vg_tsdb_queryable *q)
{
    vg_queryable r = {tsdb_select, q};
    return r;
}

int pq_select_aggregates(const pq_ctx *c)
{
    return c->q.select == tsdb_select;
}

vg_err_t pq_select(pq_ctx *c, vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                   int aggr_hint, vg_seriesset_t **out, vg_error *err)
{
    if (c->q.select != tsdb_select || aggr_hint <= 0)
        return c->q.select(c->q.ud, m, nm, mint, maxt, out, err);
    vg_tsdb_queryable *q = c->q.ud;
    return vg_tsdb_select_aggr(q->db, q->tenant ? q->tenant : VG_TENANT_DEFAULT, m, nm, mint, maxt,
                               (vg_aggr_kind)(aggr_hint - 1), out, err);
}

/* ------------------------------------------------------------ pre-pass */

static vg_pq_node *wrap(vg_arena_t *a, vg_pq_node *n)
{
    vg_pq_node *w = vg_arena_calloc(a, sizeof(*w));
    if (!w) return NULL;
    w->kind = VG_PQ_STEP_INVARIANT;
    w->type = n->type;
    w->pos = n->pos;
    w->end = n->end;
    w->u.unary.expr = n;
    return w;
}

/* Pointers to the child slots of n. */
static size_t children(vg_pq_node *n, vg_pq_node ***slots, vg_pq_node **fixed[2])
{
    switch (n->kind) {
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT:
        fixed[0] = &n->u.unary.expr;
        *slots = NULL;
        return 1;
    case VG_PQ_SUBQUERY:
        fixed[0] = &n->u.sub.expr;
        *slots = NULL;
        return 1;
    case VG_PQ_BINARY:
        fixed[0] = &n->u.bin.lhs;
        fixed[1] = &n->u.bin.rhs;
        *slots = NULL;
        return 2;
    case VG_PQ_AGGREGATE:
        fixed[0] = &n->u.agg.expr;
        fixed[1] = &n->u.agg.param;
        *slots = NULL;
        return n->u.agg.param ? 2 : 1;
    case VG_PQ_CALL: *slots = n->u.call.args; return n->u.call.nargs;
    default: *slots = NULL; return 0;
    }
}

/* Remove wrappers a parser may already have put in. */
static vg_pq_node *strip(vg_pq_node *n)
{
    while (n && n->kind == VG_PQ_STEP_INVARIANT) n = n->u.unary.expr;
    if (!n) return n;
    vg_pq_node **slots, **fixed[2];
    size_t k = children(n, &slots, fixed);
    for (size_t i = 0; i < k; i++) {
        vg_pq_node **p = slots ? &slots[i] : fixed[i];
        *p = strip(*p);
    }
    return n;
}

static int at_unsafe(vg_pq_fn_id id)
{
    switch (id) {
    case VG_PQ_FN_DAYS_IN_MONTH:
    case VG_PQ_FN_DAY_OF_MONTH:
    case VG_PQ_FN_DAY_OF_WEEK:
    case VG_PQ_FN_DAY_OF_YEAR:
    case VG_PQ_FN_HOUR:
    case VG_PQ_FN_MINUTE:
    case VG_PQ_FN_MONTH:
    case VG_PQ_FN_YEAR:
    case VG_PQ_FN_PREDICT_LINEAR:
    case VG_PQ_FN_TIME:
    case VG_PQ_FN_TIMESTAMP: return 1;
    default: return 0;
    }
}

/* Returns whether n is step invariant; *wrap whether a parent should wrap it. */
static int pre(vg_arena_t *a, vg_pq_node *n, int *wrapit, int *oom)
{
    int li, lw, ri, rw;
    *wrapit = 0;
    switch (n->kind) {
    case VG_PQ_VECTOR_SEL: return *wrapit = n->u.sel.at != VG_PQ_AT_NONE;
    case VG_PQ_MATRIX_SEL: return n->u.sel.at != VG_PQ_AT_NONE;
    case VG_PQ_NUMBER:
    case VG_PQ_STRING: return 1;
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT: return pre(a, n->u.unary.expr, wrapit, oom);
    case VG_PQ_AGGREGATE: return pre(a, n->u.agg.expr, wrapit, oom);
    case VG_PQ_BINARY:
        li = pre(a, n->u.bin.lhs, &lw, oom);
        ri = pre(a, n->u.bin.rhs, &rw, oom);
        if (li && ri) return *wrapit = 1;
        if (lw && !(n->u.bin.lhs = wrap(a, n->u.bin.lhs))) *oom = 1;
        if (rw && !(n->u.bin.rhs = wrap(a, n->u.bin.rhs))) *oom = 1;
        return 0;
    case VG_PQ_CALL: {
        int inv = !at_unsafe(pq_call_id(n));
        int w[64] = {0};
        size_t na = n->u.call.nargs;
        for (size_t i = 0; i < na; i++) {
            int ai = pre(a, n->u.call.args[i], i < 64 ? &w[i] : &lw, oom);
            inv = inv && ai;
        }
        if (inv) return *wrapit = 1;
        for (size_t i = 0; i < na && i < 64; i++)
            if (w[i] && !(n->u.call.args[i] = wrap(a, n->u.call.args[i]))) *oom = 1;
        return 0;
    }
    case VG_PQ_SUBQUERY:
        if (pre(a, n->u.sub.expr, &lw, oom) && !(n->u.sub.expr = wrap(a, n->u.sub.expr))) *oom = 1;
        return *wrapit = n->u.sub.at != VG_PQ_AT_NONE;
    }
    return 0;
}

static vg_err_t preprocess(vg_promql_expr_t *expr)
{
    int w, oom = 0;
    expr->root = strip(expr->root);
    pre(expr->arena, expr->root, &w, &oom);
    if (w && !oom && !(expr->root = wrap(expr->arena, expr->root))) oom = 1;
    return oom ? VG_ENOMEM : VG_OK;
}

/* ------------------------------------------------------------- clean-up */

/* Delayed name removal, then no two series may share a label set at one time. */
static vg_err_t cleanup(pq_ctx *c, pq_matrix *m)
{
    int any = 0;
    for (size_t i = 0; i < m->n; i++) {
        pq_series *s = &m->s[i];
        if (!s->drop_name || !vg_labels_get(s->lbl, s->nlbl, VG_METRIC_NAME)) continue;
        vg_err_t rc = pq_lbl_without(c, s->lbl, s->nlbl, NULL, 0, 1, &s->lbl, &s->nlbl);
        if (rc) return rc;
        s->hash = vg_labels_hash(s->lbl, s->nlbl);
        any = 1;
    }
    (void)any;
    return pq_merge_same_labels(c, m);
}

/* ---------------------------------------------------------------- result */

static vg_err_t copy_labels(vg_arena_t *a, const vg_label_t *l, size_t n, vg_label_t **out)
{
    vg_label_t *r = vg_arena_alloc(a, (n ? n : 1) * sizeof(*r));
    if (!r) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        r[i].name = vg_arena_strdup(a, l[i].name);
        r[i].value = vg_arena_strdup(a, l[i].value);
        if (!r[i].name || !r[i].value) return VG_ENOMEM;
    }
    *out = r;
    return VG_OK;
}

static vg_err_t copy_series(vg_promql_result *r, const pq_matrix *m, int64_t force_t)
{
    r->series = vg_arena_calloc(r->arena, (m->n ? m->n : 1) * sizeof(*r->series));
    if (!r->series) return VG_ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        const pq_series *s = &m->s[i];
        vg_promql_series *o = &r->series[i];
        size_t n = force_t >= 0 ? 1 : s->n;
        if (copy_labels(r->arena, s->lbl, s->nlbl, &o->labels)) return VG_ENOMEM;
        o->nlabels = s->nlbl;
        o->ts = vg_arena_alloc(r->arena, (n ? n : 1) * sizeof(*o->ts));
        o->v = vg_arena_alloc(r->arena, (n ? n : 1) * sizeof(*o->v));
        if (!o->ts || !o->v) return VG_ENOMEM;
        for (size_t j = 0; j < n; j++) {
            o->ts[j] = force_t >= 0 ? force_t : s->t[j];
            o->v[j] = s->v[j];
        }
        o->n = n;
    }
    r->nseries = m->n;
    return VG_OK;
}

static vg_err_t copy_annos(vg_promql_result *r, const pq_ctx *c)
{
    r->warnings = vg_arena_calloc(r->arena, (c->nannos + 1) * sizeof(char *));
    r->infos = vg_arena_calloc(r->arena, (c->nannos + 1) * sizeof(char *));
    if (!r->warnings || !r->infos) return VG_ENOMEM;
    for (size_t i = 0; i < c->nannos; i++) {
        const pq_anno *a = &c->annos[i];
        char *s;
        if (a->has_pos && c->query) {
            int line, col;
            vg_lex_linecol(c->query, c->qlen, a->pos, &line, &col);
            s = vg_arena_sprintf(r->arena, "%s (%d:%d)", a->msg, line, col);
        } else {
            s = vg_arena_strdup(r->arena, a->msg);
        }
        if (!s) return VG_ENOMEM;
        if (a->info)
            r->infos[r->ninfos++] = s;
        else
            r->warnings[r->nwarnings++] = s;
    }
    return VG_OK;
}

/* Does the top of the expression order an instant vector on purpose? */
static int keeps_order(vg_pq_node *n)
{
    n = pq_unwrap(n);
    if (n->kind == VG_PQ_AGGREGATE)
        return n->u.agg.op == VG_PQ_AGG_TOPK || n->u.agg.op == VG_PQ_AGG_BOTTOMK;
    if (n->kind != VG_PQ_CALL) return 0;
    vg_pq_fn_id id = pq_call_id(n);
    return id == VG_PQ_FN_SORT || id == VG_PQ_FN_SORT_DESC || id == VG_PQ_FN_SORT_BY_LABEL ||
           id == VG_PQ_FN_SORT_BY_LABEL_DESC;
}

static vg_err_t build_result(pq_ctx *c, vg_pq_node *root, pq_value *v, int64_t start, int range,
                             vg_promql_result **out)
{
    vg_promql_result *r = vg_calloc(1, sizeof(*r));
    if (!r) return VG_ENOMEM;
    r->arena = vg_arena_new(0);
    vg_err_t rc = r->arena ? VG_OK : VG_ENOMEM;
    r->t_ms = start;
    vg_pq_type t = pq_node_type(root);
    if (rc) {
    } else if (t == VG_PQ_TYPE_STRING) {
        r->type = VG_PROMQL_RES_STRING;
        r->string = vg_arena_strdup(r->arena, v->str ? v->str : "");
        if (!r->string) rc = VG_ENOMEM;
    } else if (t == VG_PQ_TYPE_SCALAR && !range) {
        r->type = VG_PROMQL_RES_SCALAR;
        r->scalar = v->m.n && v->m.s[0].n ? v->m.s[0].v[0] : 0;
    } else if (t == VG_PQ_TYPE_VECTOR && !range) {
        r->type = VG_PROMQL_RES_VECTOR;
        if (!keeps_order(root)) pq_mat_sort(&v->m);
        rc = copy_series(r, &v->m, start);
    } else {
        r->type = VG_PROMQL_RES_MATRIX;
        pq_mat_sort(&v->m);
        rc = copy_series(r, &v->m, -1);
    }
    if (!rc) rc = copy_annos(r, c);
    if (rc) {
        vg_promql_result_free(r);
        return rc;
    }
    *out = r;
    return VG_OK;
}

void vg_promql_result_free(vg_promql_result *r)
{
    if (!r) return;
    vg_arena_free(r->arena);
    vg_free(r);
}

/* ------------------------------------------------------------------ exec */

static vg_err_t check_range_type(pq_ctx *c, vg_pq_node *root, int range)
{
    vg_pq_type t = pq_node_type(root);
    if (!range || t == VG_PQ_TYPE_SCALAR || t == VG_PQ_TYPE_VECTOR) return VG_OK;
    return pq_fail(c, VG_EPARSE,
                   "invalid expression type \"%s\" for range query, must be Scalar or instant "
                   "Vector",
                   vg_pq_type_name(t));
}

vg_err_t pq_exec(vg_promql_engine_t *e, vg_queryable q, vg_promql_expr_t *expr, int64_t start,
                 int64_t end, int64_t step, int range, vg_promql_result **out, vg_error *err)
{
    vg_error local = {0};
    pq_ctx c = {0};
    pq_value v = {0};
    vg_err_t rc;
    *out = NULL;
    c.err = err ? err : &local;
    c.err->code = VG_OK;
    c.err->msg[0] = 0;
    if (!e || !expr || !expr->root) return pq_fail(&c, VG_EINVAL, "no query");
    if (range && (step <= 0 || end < start)) return pq_fail(&c, VG_EINVAL, "bad query range");
    c.arena = vg_arena_new(0);
    if (!c.arena) return VG_ENOMEM;
    c.q = q;
    c.query = expr->query;
    c.qlen = expr->query ? strlen(expr->query) : 0;
    c.lookback_ms = e->o.lookback_ms;
    c.max_samples = e->o.max_samples;
    c.deadline_ms = vg_clock_mono_ms() + e->o.timeout_ms;
    c.q_start = start;
    c.q_end = range ? end : start;
    c.q_step = range ? step : 0;
    c.range_query = range;
    pq_ev ev = {&c, start, range ? end : start, range ? step : 1};
    rc = check_range_type(&c, expr->root, range);
    if (!rc) rc = preprocess(expr);
    if (!rc) rc = pq_eval(&ev, expr->root, &v);
    if (!rc && v.type != VG_PQ_TYPE_STRING) rc = cleanup(&c, &v.m);
    if (!rc) rc = pq_deadline(&c);
    if (!rc) rc = build_result(&c, expr->root, &v, start, range, out);
    if (rc == VG_ENOMEM && c.err->code == VG_OK) pq_fail(&c, VG_ENOMEM, "out of memory");
    pq_value_free(&c, &v);
    vg_arena_free(c.arena);
    return rc;
}
