/*
 * eval_binop.c - binary operators: arithmetic, comparison (filtering or
 * with bool), and the set operators and/or/unless, between scalars and
 * vectors, with Prometheus's vector matching (on/ignoring, group_left/
 * group_right with extra labels).
 *
 * Matching works on signatures: each input series' matching labels are
 * hashed once and mapped to a small ordinal, so that per step the match is
 * an array lookup. The result label set of a (left, right) pair is also
 * computed once and cached. Errors and label handling follow engine.go:
 * arithmetic drops the metric name at once; a comparison keeps the left
 * side's name unless bool is given (then it is dropped at the end).
 */
#include "promql/eval.h"

#include <math.h>
#include <string.h>

#include "vigil/alloc.h"

typedef struct rmetric {
    const vg_label_t *lbl;
    size_t nlbl;
    uint64_t hash;
} rmetric;

typedef struct binctx {
    vg_pq_node *n;
    const vg_pq_binary *b;
    vg_pq_matching m;
    int swap_scalar; /* scalar-vector: the scalar is on the left */
    size_t *ord[2];  /* signature ordinal per series of lhs, rhs */
    size_t nsigs;
    size_t *right; /* per step: ordinal -> sample index + 1 */
    unsigned char *seen;
    pq_map pairs;  /* many-to-one: (ordinal, result hash) already produced */
    pq_map rm_idx; /* (lsrc, rsrc) -> rm index */
    rmetric *rm;
    size_t nrm, caprm;
} binctx;

static int is_comparison(vg_pq_op op)
{
    return op >= VG_PQ_OP_EQLC && op <= VG_PQ_OP_LTE;
}

static int is_arith(vg_pq_op op)
{
    return op >= VG_PQ_OP_ADD && op <= VG_PQ_OP_ATAN2;
}

static int is_set(vg_pq_op op)
{
    return op == VG_PQ_OP_AND || op == VG_PQ_OP_OR || op == VG_PQ_OP_UNLESS;
}

/* vectorElemBinop for floats: the value and whether to keep it. */
static double elem_binop(vg_pq_op op, double l, double r, int *keep)
{
    *keep = 1;
    switch (op) {
    case VG_PQ_OP_ADD: return l + r;
    case VG_PQ_OP_SUB: return l - r;
    case VG_PQ_OP_MUL: return l * r;
    case VG_PQ_OP_DIV: return l / r;
    case VG_PQ_OP_POW: return pow(l, r);
    case VG_PQ_OP_MOD: return fmod(l, r);
    case VG_PQ_OP_ATAN2: return atan2(l, r);
    case VG_PQ_OP_EQLC: *keep = l == r; return l;
    case VG_PQ_OP_NEQ: *keep = l != r; return l;
    case VG_PQ_OP_GTR: *keep = l > r; return l;
    case VG_PQ_OP_LSS: *keep = l < r; return l;
    case VG_PQ_OP_GTE: *keep = l >= r; return l;
    case VG_PQ_OP_LTE: *keep = l <= r; return l;
    default: *keep = 0; return 0;
    }
}

static double scalar_binop(vg_pq_op op, double l, double r)
{
    int keep;
    double v = elem_binop(op, l, r, &keep);
    return is_comparison(op) ? (keep ? 1 : 0) : v;
}

/* ------------------------------------------------------ scalar operands */

static vg_err_t step_ss(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    binctx *bc = ud;
    (void)ts;
    if (!in[0].n || !in[1].n) return VG_OK;
    pq_sample s = {0};
    s.hash = vg_labels_hash(NULL, 0);
    s.v = scalar_binop(bc->b->op, in[0].s[0].v, in[1].s[0].v);
    return pq_vec_push(ev->c, out, &s);
}

static vg_err_t step_vs(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    binctx *bc = ud;
    (void)ts;
    pq_vector *vec = &in[bc->swap_scalar ? 1 : 0], *sc = &in[bc->swap_scalar ? 0 : 1];
    if (!sc->n) return VG_OK;
    double scalar = sc->s[0].v;
    vg_pq_op op = bc->b->op;
    for (size_t i = 0; i < vec->n; i++) {
        pq_sample s = vec->s[i];
        double l = s.v, r = scalar;
        if (bc->swap_scalar) l = scalar, r = s.v;
        int keep;
        double v = elem_binop(op, l, r, &keep);
        if (is_comparison(op) && bc->swap_scalar) v = r;
        if (bc->b->return_bool) {
            v = keep ? 1 : 0;
            keep = 1;
        }
        if (!keep) continue;
        s.v = v;
        if (is_arith(op) || bc->b->return_bool) s.drop_name = 1;
        vg_err_t rc = pq_vec_push(ev->c, out, &s);
        if (rc) return rc;
    }
    return VG_OK;
}

/* ------------------------------------------------------------ matching */

static uint64_t signature(const binctx *bc, const pq_series *s)
{
    return pq_lbl_hash_subset(s->lbl, s->nlbl, bc->m.labels, bc->m.nlabels, bc->m.on);
}

static vg_err_t assign_ordinals(pq_ctx *c, binctx *bc, pq_value *v, int side, pq_map *sigs)
{
    bc->ord[side] = vg_malloc((v->m.n ? v->m.n : 1) * sizeof(size_t));
    if (!bc->ord[side]) return VG_ENOMEM;
    for (size_t i = 0; i < v->m.n; i++) {
        uint64_t h = signature(bc, &v->m.s[i]);
        size_t o;
        if (!pq_map_get(sigs, h, &o)) {
            o = bc->nsigs++;
            vg_err_t rc = pq_map_put(sigs, h, o);
            if (rc) return rc;
        }
        bc->ord[side][i] = o;
        if ((i & 255) == 0) {
            vg_err_t rc = pq_tick(c);
            if (rc) return rc;
        }
    }
    return VG_OK;
}

/* The match group labels of a series, for the many-to-many error. */
static const char *match_labels(pq_ctx *c, const binctx *bc, const pq_sample *s)
{
    const vg_label_t *l;
    size_t n;
    vg_err_t rc = bc->m.on
                      ? pq_lbl_keep(c, s->lbl, s->nlbl, bc->m.labels, bc->m.nlabels, &l, &n)
                      : pq_lbl_without(c, s->lbl, s->nlbl, bc->m.labels, bc->m.nlabels, 1, &l, &n);
    return rc ? "{}" : pq_lbl_string(c, l, n);
}

/* resultMetric: computed once per (left, right) series pair. */
static vg_err_t result_metric(pq_ctx *c, binctx *bc, const pq_sample *ls, const pq_sample *rs,
                              rmetric **out)
{
    uint64_t key = ((uint64_t)ls->src << 32) ^ (uint64_t)rs->src ^ ((uint64_t)rs->src << 52);
    size_t k;
    if (pq_map_get(&bc->rm_idx, key, &k)) {
        *out = &bc->rm[k];
        return VG_OK;
    }
    static const char *const schema[] = {VG_METRIC_NAME, "__type__", "__unit__"};
    const vg_label_t *l = ls->lbl;
    size_t n = ls->nlbl;
    vg_err_t rc = VG_OK;
    if (is_arith(bc->b->op)) rc = pq_lbl_without(c, l, n, schema, 3, 0, &l, &n);
    if (!rc && bc->m.card == VG_PQ_CARD_ONE_TO_ONE)
        rc = bc->m.on ? pq_lbl_keep(c, l, n, bc->m.labels, bc->m.nlabels, &l, &n)
                      : pq_lbl_without(c, l, n, bc->m.labels, bc->m.nlabels, 0, &l, &n);
    for (size_t i = 0; !rc && i < bc->m.ninclude; i++) {
        const char *v = vg_labels_get(rs->lbl, rs->nlbl, bc->m.include[i]);
        rc = pq_lbl_set(c, l, n, bc->m.include[i], v ? v : "", &l, &n);
    }
    if (rc) return rc;
    if (bc->nrm == bc->caprm) {
        size_t nc = bc->caprm ? bc->caprm * 2 : 64;
        rmetric *nr = vg_realloc(bc->rm, nc * sizeof(*nr));
        if (!nr) return VG_ENOMEM;
        bc->rm = nr;
        bc->caprm = nc;
    }
    bc->rm[bc->nrm] = (rmetric){l, n, vg_labels_hash(l, n)};
    if ((rc = pq_map_put(&bc->rm_idx, key, bc->nrm))) return rc;
    *out = &bc->rm[bc->nrm++];
    return VG_OK;
}

static vg_err_t dup_right(pq_ctx *c, binctx *bc, const pq_sample *rs, const pq_sample *prev)
{
    const char *side = bc->m.card == VG_PQ_CARD_ONE_TO_MANY ? "left" : "right";
    if (vg_labels_cmp(rs->lbl, rs->nlbl, prev->lbl, prev->nlbl) > 0) {
        const pq_sample *t = rs; /* reported in a stable, sorted order */
        rs = prev;
        prev = t;
    }
    return pq_fail(c, VG_EINVAL,
                   "found duplicate series for the match group %s on the %s hand-side of the "
                   "operation: [%s, %s];many-to-many matching not allowed: matching labels must "
                   "be unique on one side",
                   match_labels(c, bc, rs), side, pq_lbl_string(c, rs->lbl, rs->nlbl),
                   pq_lbl_string(c, prev->lbl, prev->nlbl));
}

/* Check the uniqueness rules of one match; *dup set on an error. */
static vg_err_t check_match(pq_ctx *c, binctx *bc, size_t ord, const rmetric *rm)
{
    if (bc->m.card == VG_PQ_CARD_ONE_TO_ONE) {
        if (bc->seen[ord])
            return pq_fail(c, VG_EINVAL,
                           "multiple matches for labels: many-to-one matching must be explicit "
                           "(group_left/group_right)");
        bc->seen[ord] = 1;
        return VG_OK;
    }
    uint64_t key = rm->hash ^ (ord * 0x9e3779b97f4a7c15ULL);
    if (pq_map_get(&bc->pairs, key, NULL))
        return pq_fail(c, VG_EINVAL,
                       "multiple matches for labels: grouping labels must ensure unique matches");
    bc->seen[ord] = 1;
    return pq_map_put(&bc->pairs, key, 0);
}

static vg_err_t step_vv(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    binctx *bc = ud;
    pq_ctx *c = ev->c;
    (void)ts;
    if (!in[0].n || !in[1].n) return VG_OK;
    int sw = bc->m.card == VG_PQ_CARD_ONE_TO_MANY;
    pq_vector *lhs = &in[sw ? 1 : 0], *rhs = &in[sw ? 0 : 1];
    size_t *lord = bc->ord[sw ? 1 : 0], *rord = bc->ord[sw ? 0 : 1];
    memset(bc->right, 0, bc->nsigs * sizeof(size_t));
    memset(bc->seen, 0, bc->nsigs);
    pq_map_clear(&bc->pairs);
    for (size_t i = 0; i < rhs->n; i++) {
        size_t o = rord[rhs->s[i].src];
        if (bc->right[o]) return dup_right(c, bc, &rhs->s[i], &rhs->s[bc->right[o] - 1]);
        bc->right[o] = i + 1;
    }
    for (size_t i = 0; i < lhs->n; i++) {
        const pq_sample *ls = &lhs->s[i];
        size_t o = lord[ls->src];
        if (!bc->right[o]) continue;
        const pq_sample *rs = &rhs->s[bc->right[o] - 1];
        double l = ls->v, r = rs->v;
        if (sw) l = rs->v, r = ls->v;
        int keep;
        double v = elem_binop(bc->b->op, l, r, &keep);
        if (bc->b->return_bool) v = keep ? 1 : 0;
        rmetric *rm;
        vg_err_t rc = result_metric(c, bc, ls, rs, &rm);
        if (!rc) rc = check_match(c, bc, o, rm);
        if (rc) return rc;
        if (!keep && !bc->b->return_bool) continue;
        pq_sample s = {rm->lbl, rm->nlbl, rm->hash, v, ts, ls->src, bc->b->return_bool};
        if ((rc = pq_vec_push(c, out, &s))) return rc;
    }
    return VG_OK;
}

static vg_err_t step_set(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    binctx *bc = ud;
    vg_pq_op op = bc->b->op;
    pq_vector *lhs = &in[0], *rhs = &in[1];
    vg_err_t rc = VG_OK;
    (void)ts;
    memset(bc->seen, 0, bc->nsigs);
    if (op == VG_PQ_OP_OR) {
        for (size_t i = 0; i < lhs->n && !rc; i++) {
            bc->seen[bc->ord[0][lhs->s[i].src]] = 1;
            rc = pq_vec_push(ev->c, out, &lhs->s[i]);
        }
        for (size_t i = 0; i < rhs->n && !rc; i++)
            if (!bc->seen[bc->ord[1][rhs->s[i].src]]) rc = pq_vec_push(ev->c, out, &rhs->s[i]);
        return rc;
    }
    if (op == VG_PQ_OP_AND && (!lhs->n || !rhs->n)) return VG_OK;
    for (size_t i = 0; i < rhs->n; i++) bc->seen[bc->ord[1][rhs->s[i].src]] = 1;
    for (size_t i = 0; i < lhs->n && !rc; i++) {
        int present = bc->seen[bc->ord[0][lhs->s[i].src]];
        if (present == (op == VG_PQ_OP_AND)) rc = pq_vec_push(ev->c, out, &lhs->s[i]);
    }
    return rc;
}

static vg_err_t eval_vv(pq_ev *ev, binctx *bc, pq_value *v, pq_matrix *out)
{
    pq_map sigs = {0};
    vg_err_t rc = assign_ordinals(ev->c, bc, &v[0], 0, &sigs);
    if (!rc) rc = assign_ordinals(ev->c, bc, &v[1], 1, &sigs);
    pq_map_free(&sigs);
    if (rc) return rc;
    bc->right = vg_calloc(bc->nsigs + 1, sizeof(size_t));
    bc->seen = vg_calloc(bc->nsigs + 1, 1);
    if (!bc->right || !bc->seen) return VG_ENOMEM;
    return pq_range_eval(ev, v, 2, is_set(bc->b->op) ? step_set : step_vv, bc, out);
}

static void binctx_free(binctx *bc)
{
    vg_free(bc->ord[0]);
    vg_free(bc->ord[1]);
    vg_free(bc->right);
    vg_free(bc->seen);
    vg_free(bc->rm);
    pq_map_free(&bc->pairs);
    pq_map_free(&bc->rm_idx);
}

vg_err_t pq_eval_binary(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    binctx bc = {0};
    bc.n = n;
    bc.b = &n->u.bin;
    if (bc.b->matching)
        bc.m = *bc.b->matching;
    else
        bc.m.card = is_set(bc.b->op) ? VG_PQ_CARD_MANY_TO_MANY : VG_PQ_CARD_ONE_TO_ONE;
    vg_pq_type lt = pq_node_type(bc.b->lhs), rt = pq_node_type(bc.b->rhs);
    pq_value v[2] = {{0}};
    vg_err_t rc = pq_eval(ev, bc.b->lhs, &v[0]);
    if (!rc) rc = pq_eval(ev, bc.b->rhs, &v[1]);
    if (rc) goto out;
    if (lt == VG_PQ_TYPE_SCALAR && rt == VG_PQ_TYPE_SCALAR) {
        rc = pq_range_eval(ev, v, 2, step_ss, &bc, out);
    } else if (lt == VG_PQ_TYPE_VECTOR && rt == VG_PQ_TYPE_VECTOR) {
        rc = eval_vv(ev, &bc, v, out);
    } else {
        bc.swap_scalar = lt == VG_PQ_TYPE_SCALAR;
        rc = pq_range_eval(ev, v, 2, step_vs, &bc, out);
    }
out:
    pq_value_free(ev->c, &v[0]);
    pq_value_free(ev->c, &v[1]);
    binctx_free(&bc);
    return rc;
}
