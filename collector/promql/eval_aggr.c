/*
 * eval_aggr.c - aggregation operators: sum, avg, min, max, count, group,
 * stddev, stdvar, quantile, topk, bottomk, limitk, limit_ratio and
 * count_values, with by/without.
 *
 * Like Prometheus's rangeEvalAgg, each input series is mapped to its group
 * once, then every step walks the input series and folds their points into
 * per-group state; no per-step hashing. The numerics are Prometheus 3's:
 * sum uses Kahan-Neumaier compensation, avg sums directly (compensated) and
 * switches to an incremental mean only when the sum would overflow, and
 * stddev/stdvar use Welford's update. topk/bottomk/limitk/limit_ratio keep
 * the input label sets; the others build group label sets.
 */
#include "promql/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "promql/lex.h"
#include "vigil/alloc.h"
#include "vigil/metrics.h"

typedef struct grp {
    int seen, drop, incr;
    double val, mean, kc, count;
    double *vals; /* quantile */
    size_t nvals, capvals;
    size_t *idx; /* k-ops: input series of this step */
    size_t nidx, capidx;
    size_t out; /* output series (plain ops) */
} grp;

typedef struct aggctx {
    pq_ev *ev;
    vg_pq_node *n;
    const vg_pq_aggregate *a;
    const char **grouping;
    size_t ngrouping;
    pq_matrix *in;
    size_t *gid; /* group of each input series */
    grp *g;
    size_t ng;
    double *params; /* per step */
    double *ratio;  /* limit_ratio: sampling offset per input series */
} aggctx;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_kop(vg_pq_aggop op)
{
    return op == VG_PQ_AGG_TOPK || op == VG_PQ_AGG_BOTTOMK || op == VG_PQ_AGG_LIMITK ||
           op == VG_PQ_AGG_LIMIT_RATIO;
}

static int val_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return x < y ? -1 : x > y;
}

void pq_sort_values(double *vals, size_t n)
{
    if (n > 1) qsort(vals, n, sizeof(*vals), val_cmp);
}

double pq_quantile(double q, double *vals, size_t n)
{
    if (n == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    pq_sort_values(vals, n);
    double fn = (double)n, rank = q * (fn - 1);
    double lo = fmax(0, floor(rank)), hi = fmin(fn - 1, lo + 1);
    double w = rank - floor(rank);
    return vals[(size_t)lo] * (1 - w) + vals[(size_t)hi] * w;
}

/* -------------------------------------------------------------- groups */

static uint64_t group_key(const aggctx *ac, const vg_label_t *l, size_t n)
{
    if (!ac->a->without && ac->ngrouping == 0) return 0;
    return pq_lbl_hash_subset(l, n, ac->grouping, ac->ngrouping, !ac->a->without);
}

static vg_err_t group_labels(pq_ctx *c, const aggctx *ac, const vg_label_t *l, size_t n,
                             const vg_label_t **out, size_t *nout)
{
    if (ac->a->without) return pq_lbl_without(c, l, n, ac->grouping, ac->ngrouping, 1, out, nout);
    return pq_lbl_keep(c, l, n, ac->grouping, ac->ngrouping, out, nout);
}

static vg_err_t make_groups(aggctx *ac, pq_matrix *out)
{
    pq_ctx *c = ac->ev->c;
    pq_map m = {0};
    vg_err_t rc = VG_OK;
    ac->gid = vg_malloc((ac->in->n ? ac->in->n : 1) * sizeof(size_t));
    ac->g = vg_calloc(ac->in->n ? ac->in->n : 1, sizeof(grp));
    if (!ac->gid || !ac->g) return VG_ENOMEM;
    for (size_t i = 0; i < ac->in->n && !rc; i++) {
        pq_series *s = &ac->in->s[i];
        uint64_t k = group_key(ac, s->lbl, s->nlbl);
        size_t gi;
        if (!pq_map_get(&m, k, &gi)) {
            gi = ac->ng++;
            rc = pq_map_put(&m, k, gi);
            if (!rc && !is_kop(ac->a->op)) {
                const vg_label_t *gl;
                size_t ngl;
                rc = group_labels(c, ac, s->lbl, s->nlbl, &gl, &ngl);
                if (!rc)
                    rc = pq_mat_add(c, out, gl, ngl, vg_labels_hash(gl, ngl), 0, &ac->g[gi].out);
            }
        }
        ac->gid[i] = gi;
    }
    pq_map_free(&m);
    return rc;
}

/* ------------------------------------------------------------ plain ops */

static void group_first(grp *g, vg_pq_aggop op, double f, int drop)
{
    g->seen = 1;
    g->val = f;
    g->mean = f;
    g->kc = 0;
    g->count = 1;
    g->incr = 0;
    g->drop = drop;
    g->nvals = 0;
    if (op == VG_PQ_AGG_STDDEV || op == VG_PQ_AGG_STDVAR) g->val = isnan(f) || isinf(f) ? NAN : 0;
    if (op == VG_PQ_AGG_GROUP) g->val = 1;
}

static void group_avg(grp *g, double f)
{
    g->count++;
    if (!g->incr) {
        double s = g->val, c = g->kc;
        pq_kahan_inc(f, &s, &c);
        if (!isinf(s)) {
            g->val = s;
            g->kc = c;
            return;
        }
        g->incr = 1;
        g->mean = g->val / (g->count - 1);
        g->kc /= g->count - 1;
    }
    double q = (g->count - 1) / g->count;
    double m = q * g->mean, c = q * g->kc;
    pq_kahan_inc(f / g->count, &m, &c);
    g->mean = m;
    g->kc = c;
}

static vg_err_t group_add(grp *g, vg_pq_aggop op, double f)
{
    switch (op) {
    case VG_PQ_AGG_SUM: pq_kahan_inc(f, &g->val, &g->kc); break;
    case VG_PQ_AGG_AVG: group_avg(g, f); break;
    case VG_PQ_AGG_MAX:
        if (g->val < f || isnan(g->val)) g->val = f;
        break;
    case VG_PQ_AGG_MIN:
        if (g->val > f || isnan(g->val)) g->val = f;
        break;
    case VG_PQ_AGG_COUNT: g->count++; break;
    case VG_PQ_AGG_STDDEV:
    case VG_PQ_AGG_STDVAR: {
        g->count++;
        double delta = f - g->mean;
        g->mean += delta / g->count;
        g->val += delta * (f - g->mean);
        break;
    }
    default: break;
    }
    return VG_OK;
}

static vg_err_t push_val(grp *g, double f)
{
    if (g->nvals == g->capvals) {
        size_t nc = g->capvals ? g->capvals * 2 : 8;
        double *nv = vg_realloc(g->vals, nc * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        g->vals = nv;
        g->capvals = nc;
    }
    g->vals[g->nvals++] = f;
    return VG_OK;
}

static double group_result(grp *g, vg_pq_aggop op, double q)
{
    switch (op) {
    case VG_PQ_AGG_SUM: return isinf(g->val) ? g->val : g->val + g->kc;
    case VG_PQ_AGG_AVG: return g->incr ? g->mean + g->kc : g->val / g->count + g->kc / g->count;
    case VG_PQ_AGG_COUNT: return g->count;
    case VG_PQ_AGG_STDVAR: return g->val / g->count;
    case VG_PQ_AGG_STDDEV: return sqrt(g->val / g->count);
    case VG_PQ_AGG_QUANTILE: return pq_quantile(q, g->vals, g->nvals);
    default: return g->val;
    }
}

/* The value of series s at ts (cursor based); 0 when it has none. */
static int value_at(pq_series *s, int64_t ts, double *v)
{
    while (s->cur < s->n && s->t[s->cur] < ts) s->cur++;
    if (s->cur >= s->n || s->t[s->cur] != ts) return 0;
    *v = s->v[s->cur++];
    return 1;
}

static vg_err_t plain_step(aggctx *ac, int64_t ts, double param, pq_matrix *out)
{
    vg_pq_aggop op = ac->a->op;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ac->ng; i++) ac->g[i].seen = 0;
    for (size_t i = 0; i < ac->in->n && !rc; i++) {
        double f;
        if (!value_at(&ac->in->s[i], ts, &f)) continue;
        grp *g = &ac->g[ac->gid[i]];
        int drop = ac->in->s[i].drop_name;
        if (!g->seen)
            group_first(g, op, f, drop);
        else {
            g->drop |= drop;
            if (op != VG_PQ_AGG_QUANTILE) rc = group_add(g, op, f);
        }
        if (!rc && op == VG_PQ_AGG_QUANTILE) rc = push_val(g, f);
    }
    for (size_t i = 0; i < ac->ng && !rc; i++) {
        grp *g = &ac->g[i];
        if (!g->seen) continue;
        pq_series *o = &out->s[g->out];
        o->drop_name |= g->drop;
        rc = pq_series_push(ac->ev->c, o, ts, group_result(g, op, param));
    }
    return rc;
}

/* ---------------------------------------------------------------- k ops */

typedef struct kentry {
    size_t idx;
    double v;
} kentry;

static int k_desc(const void *a, const void *b) /* topk: big first, NaN last, stable */
{
    const kentry *x = a, *y = b;
    int xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn) return xn - yn;
    if (!xn && x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int k_asc(const void *a, const void *b) /* bottomk: small first, NaN last, stable */
{
    const kentry *x = a, *y = b;
    int xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn) return xn - yn;
    if (!xn && x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int ratio_keep(double r, double off)
{
    return (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
}

static vg_err_t k_emit(aggctx *ac, size_t si, double v, int64_t ts, pq_map *idx, pq_matrix *out)
{
    pq_ctx *c = ac->ev->c;
    pq_series *s = &ac->in->s[si];
    size_t k;
    vg_err_t rc = VG_OK;
    if (ac->ev->start == ac->ev->end || !pq_map_get(idx, s->hash, &k)) {
        rc = pq_mat_add(c, out, s->lbl, s->nlbl, s->hash, s->drop_name, &k);
        if (!rc && ac->ev->start != ac->ev->end) rc = pq_map_put(idx, s->hash, k);
    }
    if (!rc) rc = pq_series_push(c, &out->s[k], ts, v);
    return rc;
}

static vg_err_t push_idx(grp *g, size_t i)
{
    if (g->nidx == g->capidx) {
        size_t nc = g->capidx ? g->capidx * 2 : 8;
        size_t *ni = vg_realloc(g->idx, nc * sizeof(*ni));
        if (!ni) return VG_ENOMEM;
        g->idx = ni;
        g->capidx = nc;
    }
    g->idx[g->nidx++] = i;
    return VG_OK;
}

/* Heaps of the k best so far, the worst on top (topk: smallest, NaN
 * worst; bottomk: largest, NaN worst), as Prometheus keeps them. */
static int worse(int top, double a, double b)
{
    if (isnan(a)) return !isnan(b);
    if (isnan(b)) return 0;
    return top ? a < b : a > b;
}

static void sift_down(grp *g, const double *vals, int top)
{
    size_t i = 0, n = g->nidx;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(top, vals[g->idx[l]], vals[g->idx[w]])) w = l;
        if (r < n && worse(top, vals[g->idx[r]], vals[g->idx[w]])) w = r;
        if (w == i) return;
        size_t t = g->idx[i];
        g->idx[i] = g->idx[w];
        g->idx[w] = t;
        i = w;
    }
}

static vg_err_t heap_push(grp *g, size_t si, const double *vals, int top)
{
    vg_err_t rc = push_idx(g, si);
    for (size_t i = g->nidx - 1; !rc && i > 0;) {
        size_t p = (i - 1) / 2;
        if (!worse(top, vals[g->idx[i]], vals[g->idx[p]])) break;
        size_t t = g->idx[i];
        g->idx[i] = g->idx[p];
        g->idx[p] = t;
        i = p;
    }
    return rc;
}

static vg_err_t k_group_out(aggctx *ac, grp *g, int64_t k, double *vals, int64_t ts, pq_map *idx,
                            pq_matrix *out)
{
    vg_pq_aggop op = ac->a->op;
    vg_err_t rc = VG_OK;
    if (op == VG_PQ_AGG_LIMITK || op == VG_PQ_AGG_LIMIT_RATIO) {
        for (size_t j = 0; j < g->nidx && !rc && (op != VG_PQ_AGG_LIMITK || (int64_t)j < k); j++)
            rc = k_emit(ac, g->idx[j], vals[g->idx[j]], ts, idx, out);
        return rc;
    }
    kentry *e = vg_malloc((g->nidx ? g->nidx : 1) * sizeof(*e));
    if (!e) return VG_ENOMEM;
    for (size_t j = 0; j < g->nidx; j++) e[j] = (kentry){g->idx[j], vals[g->idx[j]]};
    qsort(e, g->nidx, sizeof(*e), op == VG_PQ_AGG_TOPK ? k_desc : k_asc);
    for (size_t j = 0; j < g->nidx && (int64_t)j < k && !rc; j++)
        rc = k_emit(ac, e[j].idx, e[j].v, ts, idx, out);
    vg_free(e);
    return rc;
}

static vg_err_t k_step(aggctx *ac, int64_t ts, double param, double *vals, pq_map *idx,
                       pq_matrix *out)
{
    vg_pq_aggop op = ac->a->op;
    int64_t k = 0;
    double r = 0;
    if (op == VG_PQ_AGG_LIMIT_RATIO) {
        if (param == 0) return VG_OK;
        r = param < -1 ? -1 : param > 1 ? 1 : param;
    } else {
        k = (int64_t)param;
        if (k > (int64_t)ac->in->n) k = (int64_t)ac->in->n;
        if (k < 1) return VG_OK;
    }
    for (size_t i = 0; i < ac->ng; i++) ac->g[i].nidx = 0;
    for (size_t i = 0; i < ac->in->n; i++) {
        if (!value_at(&ac->in->s[i], ts, &vals[i])) continue;
        if (op == VG_PQ_AGG_LIMIT_RATIO && !ratio_keep(r, ac->ratio[i])) continue;
        grp *g = &ac->g[ac->gid[i]];
        vg_err_t rc = VG_OK;
        if (op != VG_PQ_AGG_TOPK && op != VG_PQ_AGG_BOTTOMK)
            rc = push_idx(g, i);
        else if ((int64_t)g->nidx < k)
            rc = heap_push(g, i, vals, op == VG_PQ_AGG_TOPK);
        else if (worse(op == VG_PQ_AGG_TOPK, vals[g->idx[0]], vals[i])) {
            g->idx[0] = i;
            sift_down(g, vals, op == VG_PQ_AGG_TOPK);
        }
        if (rc) return rc;
    }
    for (size_t i = 0; i < ac->ng; i++) {
        vg_err_t rc = k_group_out(ac, &ac->g[i], k, vals, ts, idx, out);
        if (rc) return rc;
    }
    return VG_OK;
}

/* Prometheus's HashRatioSampler: xxhash64 of the label set's stringlabels
 * encoding (uvarint-prefixed names and values) over 2^64. */
static double ratio_offset(const pq_series *s)
{
    XXH64_state_t *st = XXH64_createState();
    if (!st) return 1;
    XXH64_reset(st, 0);
    for (size_t i = 0; i < s->nlbl; i++) {
        const char *p[2] = {s->lbl[i].name, s->lbl[i].value};
        for (int j = 0; j < 2; j++) {
            unsigned char v[10];
            size_t len = strlen(p[j]), k = 0;
            do {
                v[k] = (unsigned char)(len & 0x7f);
                len >>= 7;
                if (len) v[k] |= 0x80;
                k++;
            } while (len);
            XXH64_update(st, v, k);
            XXH64_update(st, p[j], strlen(p[j]));
        }
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return (double)h / 18446744073709551615.0;
}

/* --------------------------------------------------------------- params */

static vg_err_t eval_params(aggctx *ac)
{
    pq_ev *ev = ac->ev;
    size_t ns = pq_nsteps(ev);
    ac->params = vg_malloc(ns * sizeof(double));
    if (!ac->params) return VG_ENOMEM;
    for (size_t i = 0; i < ns; i++) ac->params[i] = NAN;
    if (!ac->a->param || pq_node_type(ac->a->param) != VG_PQ_TYPE_SCALAR) return VG_OK;
    pq_value v = {0};
    vg_err_t rc = pq_eval(ev, ac->a->param, &v);
    if (!rc && v.m.n) {
        pq_series *s = &v.m.s[0];
        for (size_t j = 0; j < s->n; j++) {
            size_t i = (size_t)((s->t[j] - ev->start) / ev->interval);
            if (i < ns) ac->params[i] = s->v[j];
        }
    }
    pq_value_free(ev->c, &v);
    return rc;
}

static void param_range(const aggctx *ac, double *mn, double *mx, int *anynan)
{
    size_t ns = pq_nsteps(ac->ev);
    *mn = INFINITY;
    *mx = -INFINITY;
    *anynan = 0;
    for (size_t i = 0; i < ns; i++) {
        double p = ac->params[i];
        if (isnan(p)) *anynan = 1;
        if (p < *mn) *mn = p;
        if (p > *mx) *mx = p;
    }
}

/* Validate k/ratio/q: 1 = nothing to return, 0 = go on, errors via *rc. */
static int check_params(aggctx *ac, vg_err_t *rc)
{
    pq_ctx *c = ac->ev->c;
    double mn, mx;
    int nan;
    char b1[32], b2[32];
    param_range(ac, &mn, &mx, &nan);
    *rc = VG_OK;
    switch (ac->a->op) {
    case VG_PQ_AGG_TOPK:
    case VG_PQ_AGG_BOTTOMK:
    case VG_PQ_AGG_LIMITK:
        if (!nan && mx < 1) return 1;
        if (nan)
            *rc = pq_fail(c, VG_EINVAL, "Parameter value is NaN");
        else if (mn <= -9223372036854775808.0)
            *rc = pq_fail(c, VG_EINVAL, "Scalar value %s underflows int64", vg_fmt_float(mn, b1));
        else if (mx >= 9223372036854775807.0)
            *rc = pq_fail(c, VG_EINVAL, "Scalar value %s overflows int64", vg_fmt_float(mx, b1));
        return 0;
    case VG_PQ_AGG_LIMIT_RATIO:
        if (!nan && mx == 0 && mn == 0) return 1;
        if (nan) {
            *rc = pq_fail(c, VG_EINVAL, "Ratio value is NaN");
            return 0;
        }
        if (mx > 1)
            *rc = pq_annotate(c, 0, ac->a->param,
                              "PromQL warning: ratio value should be between -1 and 1, got %s, "
                              "capping to %s",
                              vg_fmt_float(mx, b1), vg_fmt_float(1, b2));
        if (!*rc && mn < -1)
            *rc = pq_annotate(c, 0, ac->a->param,
                              "PromQL warning: ratio value should be between -1 and 1, got %s, "
                              "capping to %s",
                              vg_fmt_float(mn, b1), vg_fmt_float(-1, b2));
        return 0;
    case VG_PQ_AGG_QUANTILE: {
        const char *fmt = "PromQL warning: quantile value should be between 0 and 1, got %s";
        if (nan) *rc = pq_annotate(c, 0, ac->a->param, fmt, "NaN");
        if (!*rc && mx > 1) *rc = pq_annotate(c, 0, ac->a->param, fmt, vg_fmt_float(mx, b1));
        if (!*rc && mn < 0) *rc = pq_annotate(c, 0, ac->a->param, fmt, vg_fmt_float(mn, b1));
        return 0;
    }
    default: return 0;
    }
}

/* ---------------------------------------------------------- count_values */

typedef struct cvctx {
    aggctx *ac;
    const char *label;
    pq_map cache; /* label-set hash -> index into sets */
    const vg_label_t **sets;
    size_t *nsets;
    uint64_t *hashes;
    size_t n, cap;
    double *counts;
    size_t *order;
} cvctx;

static vg_err_t cv_labels(pq_ctx *c, cvctx *cv, const pq_sample *s, size_t *slot)
{
    char num[400];
    const vg_label_t *l;
    size_t n;
    /* pq_lbl_set keeps the value pointer: the formatted number must live in the arena. */
    const char *val = vg_arena_strdup(c->arena, pq_fmt_float_f(s->v, num));
    if (!val) return VG_ENOMEM;
    vg_err_t rc = pq_lbl_set(c, s->lbl, s->nlbl, cv->label, val, &l, &n);
    if (rc) return rc;
    uint64_t key = group_key(cv->ac, l, n);
    if (pq_map_get(&cv->cache, key, slot)) return VG_OK;
    if (cv->n == cv->cap) {
        size_t nc = cv->cap ? cv->cap * 2 : 16;
        const vg_label_t **ns = vg_realloc(cv->sets, nc * sizeof(*ns));
        size_t *nn = ns ? vg_realloc(cv->nsets, nc * sizeof(*nn)) : NULL;
        uint64_t *nh = nn ? vg_realloc(cv->hashes, nc * sizeof(*nh)) : NULL;
        double *ncnt = nh ? vg_realloc(cv->counts, nc * sizeof(*ncnt)) : NULL;
        if (ns) cv->sets = ns;
        if (nn) cv->nsets = nn;
        if (nh) cv->hashes = nh;
        if (ncnt) cv->counts = ncnt;
        if (!ncnt) return VG_ENOMEM;
        cv->cap = nc;
    }
    rc = group_labels(c, cv->ac, l, n, &cv->sets[cv->n], &cv->nsets[cv->n]);
    if (rc) return rc;
    cv->hashes[cv->n] = vg_labels_hash(cv->sets[cv->n], cv->nsets[cv->n]);
    cv->counts[cv->n] = 0;
    *slot = cv->n++;
    return pq_map_put(&cv->cache, key, *slot);
}

static vg_err_t cv_step(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    cvctx *cv = ud;
    size_t *seen = vg_malloc((in[0].n ? in[0].n : 1) * sizeof(size_t));
    size_t nseen = 0;
    vg_err_t rc = seen ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; i < cv->n; i++) cv->counts[i] = 0;
    for (size_t i = 0; i < in[0].n && !rc; i++) {
        size_t slot;
        rc = cv_labels(ev->c, cv, &in[0].s[i], &slot);
        if (rc) break;
        if (cv->counts[slot] == 0) seen[nseen++] = slot;
        cv->counts[slot]++;
    }
    for (size_t i = 0; i < nseen && !rc; i++) {
        size_t k = seen[i];
        pq_sample s = {cv->sets[k], cv->nsets[k], cv->hashes[k], cv->counts[k], ts, 0, 0};
        rc = pq_vec_push(ev->c, out, &s);
    }
    vg_free(seen);
    return rc;
}

static vg_err_t eval_count_values(aggctx *ac, pq_matrix *out)
{
    pq_ev *ev = ac->ev;
    vg_pq_node *p = pq_unwrap(ac->a->param);
    if (!p || p->kind != VG_PQ_STRING)
        return pq_fail(ev->c, VG_EINVAL, "count_values needs a string parameter");
    cvctx cv = {0};
    cv.ac = ac;
    cv.label = p->u.str;
    size_t len = strlen(cv.label);
    if (!pq_utf8_valid(cv.label, len)) {
        vg_buf b;
        vg_buf_init(&b, 4096);
        vg_lex_goquote(&b, cv.label, len, 0);
        vg_err_t rc = pq_fail(ev->c, VG_EINVAL, "invalid label name %s", b.data ? b.data : "\"\"");
        vg_buf_free(&b);
        return rc;
    }
    if (!ac->a->without) {
        const char **g = vg_arena_alloc(ev->c->arena, (ac->ngrouping + 1) * sizeof(*g));
        if (!g) return VG_ENOMEM;
        memcpy(g, ac->grouping, ac->ngrouping * sizeof(*g));
        g[ac->ngrouping++] = cv.label;
        ac->grouping = g;
        qsort(ac->grouping, ac->ngrouping, sizeof(*g), name_cmp);
    }
    pq_value v = {0};
    vg_err_t rc = pq_eval(ev, ac->a->expr, &v);
    if (!rc) rc = pq_range_eval(ev, &v, 1, cv_step, &cv, out);
    pq_value_free(ev->c, &v);
    pq_map_free(&cv.cache);
    vg_free(cv.sets);
    vg_free(cv.nsets);
    vg_free(cv.hashes);
    vg_free(cv.counts);
    return rc;
}

/* ------------------------------------------------------------------ main */

static void aggctx_free(aggctx *ac)
{
    for (size_t i = 0; ac->g && i < ac->ng; i++) {
        vg_free(ac->g[i].vals);
        vg_free(ac->g[i].idx);
    }
    vg_free(ac->g);
    vg_free(ac->gid);
    vg_free(ac->params);
    vg_free(ac->ratio);
}

/* Largest group x step state the series-major path allocates (~27 MB). */
#define SERIES_MAJOR_MAX_CELLS (1u << 18)

/* Plain ops other than quantile, series by series: each input series is
 * streamed once into per-(group, step) state, instead of every step visiting
 * every series through a cursor (thousands of interleaved streams that defeat
 * the cache). Within a step the series are still folded in input order, so
 * the results are bit-identical to plain_step's. Points off the step grid
 * are ignored, as value_at ignores them. Returns VG_EAGAIN when the state
 * would be too large, for the caller to fall back to step order. */
/* Fold series s into row (its group's state, one cell per step). */
static void fold_series(const pq_ev *ev, vg_pq_aggop op, grp *row, size_t ns, const pq_series *s)
{
    size_t k = 0; /* step of the previous point + 1: the usual next one */
    for (size_t j = 0; j < s->n; j++) {
        int64_t off = s->t[j] - ev->start;
        if (k < ns && off == (int64_t)k * ev->interval) {
            k++; /* on the grid, no division */
        } else {
            if (off < 0 || s->t[j] > ev->end || (ev->interval && off % ev->interval)) continue;
            k = (ev->interval ? (size_t)(off / ev->interval) : 0) + 1;
        }
        grp *g = &row[k - 1];
        if (!g->seen) {
            group_first(g, op, s->v[j], s->drop_name);
            continue;
        }
        g->drop |= s->drop_name;
        if (op == VG_PQ_AGG_SUM) /* the common case, without group_add's switch */
            pq_kahan_inc(s->v[j], &g->val, &g->kc);
        else
            group_add(g, op, s->v[j]);
    }
}

/* One group's folded state out as points of o. */
static vg_err_t emit_row(aggctx *ac, const grp *row, size_t ns, pq_series *o)
{
    pq_ev *ev = ac->ev;
    vg_err_t rc = VG_OK;
    for (size_t j = 0; j < ns && !rc; j++) {
        const grp *g = &row[j];
        if (!g->seen) continue;
        o->drop_name |= g->drop;
        rc = pq_series_push(ev->c, o, ev->start + (int64_t)j * ev->interval,
                            group_result((grp *)g, ac->a->op, ac->params[j]));
    }
    return rc;
}

static int series_major_op(vg_pq_aggop op)
{
    return !is_kop(op) && op != VG_PQ_AGG_QUANTILE && op != VG_PQ_AGG_COUNT_VALUES;
}

static vg_err_t plain_series_major(aggctx *ac, pq_matrix *out)
{
    pq_ev *ev = ac->ev;
    vg_pq_aggop op = ac->a->op;
    size_t ns = pq_nsteps(ev);
    if (!series_major_op(op) || ac->ng == 0 || ns > SERIES_MAJOR_MAX_CELLS / ac->ng)
        return VG_EAGAIN;
    grp *st = vg_calloc(ac->ng * ns, sizeof(grp));
    if (!st) return VG_ENOMEM;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ac->in->n && !rc; i++) {
        if ((rc = pq_tick(ev->c))) break;
        fold_series(ev, op, &st[ac->gid[i] * ns], ns, &ac->in->s[i]);
    }
    for (size_t gi = 0; gi < ac->ng && !rc; gi++)
        rc = emit_row(ac, &st[gi * ns], ns, &out->s[ac->g[gi].out]);
    vg_free(st);
    return rc;
}

/* ---- fused: sum by (...) (rate(sel[r])) without the rate matrix ----
 *
 * When the argument is a range function over a selector, its series are
 * folded as they come out of the (parallel) range evaluation, in the
 * selection's order, so the answers are the ones plain_series_major gives
 * over the materialised matrix: groups appear in the same order, and
 * every (group, step) cell folds the same values in the same order. */

typedef struct fused {
    aggctx *ac;
    pq_matrix *out;
    pq_map map;   /* group key -> group */
    grp **rows;   /* per group, one cell per step */
    size_t *gout; /* per group, its series in out */
    size_t ng, cap, ns;
} fused;

/* At most SERIES_MAJOR_MAX_CELLS of state: count the groups the selection
 * could make (labels only; empty series make none later, so this bounds). */
static int fused_accept(void *ud, vg_seriesset_t *ss)
{
    fused *f = ud;
    pq_map m = {0};
    int ok = 1;
    for (size_t i = 0; ok && i < vg_seriesset_len(ss); i++) {
        size_t nl;
        const vg_label_t *l = vg_seriesset_labels_at(ss, i, &nl);
        uint64_t k = group_key(f->ac, l, nl);
        size_t v;
        if (!pq_map_get(&m, k, &v) && pq_map_put(&m, k, 0)) ok = 0;
        if (m.n && f->ns > SERIES_MAJOR_MAX_CELLS / m.n) ok = 0;
    }
    pq_map_free(&m);
    return ok;
}

static vg_err_t fused_group(fused *f, const pq_series *s, size_t *gi)
{
    pq_ctx *c = f->ac->ev->c;
    uint64_t k = group_key(f->ac, s->lbl, s->nlbl);
    if (pq_map_get(&f->map, k, gi)) return VG_OK;
    if (f->ng == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        grp **nr = vg_realloc(f->rows, nc * sizeof(*nr));
        if (!nr) return VG_ENOMEM;
        f->rows = nr;
        size_t *no = vg_realloc(f->gout, nc * sizeof(*no));
        if (!no) return VG_ENOMEM;
        f->gout = no;
        f->cap = nc;
    }
    const vg_label_t *gl, *cl;
    size_t ngl;
    /* The input labels are the set's: the group's go into the arena. */
    vg_err_t rc = group_labels(c, f->ac, s->lbl, s->nlbl, &gl, &ngl);
    if (!rc) rc = pq_lbl_copy(c, gl, ngl, &cl);
    if (!rc && !(f->rows[f->ng] = vg_calloc(f->ns, sizeof(grp)))) rc = VG_ENOMEM;
    if (rc) return rc;
    *gi = f->ng++;
    if ((rc = pq_map_put(&f->map, k, *gi))) return rc;
    return pq_mat_add(c, f->out, cl, ngl, vg_labels_hash(cl, ngl), 0, &f->gout[*gi]);
}

static vg_err_t fused_commit(void *ud, pq_series *s, size_t n)
{
    fused *f = ud;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t gi;
        if (s[i].n == 0) continue; /* not in the matrix: makes no group */
        if (!(rc = fused_group(f, &s[i], &gi)))
            fold_series(f->ac->ev, f->ac->a->op, f->rows[gi], f->ns, &s[i]);
    }
    return rc;
}

static void fused_free(fused *f)
{
    for (size_t i = 0; i < f->ng; i++) vg_free(f->rows[i]);
    vg_free(f->rows);
    vg_free(f->gout);
    pq_map_free(&f->map);
}

/* *mode as pq_range_call_stream's: 1 done (out filled), 2 in holds the
 * argument evaluated as usual, 0 not applicable. */
static vg_err_t plain_fused(aggctx *ac, pq_value *in, pq_matrix *out, int *mode)
{
    fused f = {0};
    f.ac = ac;
    f.out = out;
    f.ns = pq_nsteps(ac->ev);
    *mode = 0;
    if (!series_major_op(ac->a->op)) return VG_OK;
    vg_err_t rc =
        pq_range_call_stream(ac->ev, ac->a->expr, fused_accept, fused_commit, &f, in, mode);
    for (size_t gi = 0; !rc && *mode == 1 && gi < f.ng; gi++)
        rc = emit_row(ac, f.rows[gi], f.ns, &out->s[f.gout[gi]]);
    fused_free(&f);
    return rc;
}

static vg_err_t run_steps(aggctx *ac, pq_matrix *out)
{
    pq_ev *ev = ac->ev;
    vg_err_t rc = VG_OK;
    int k = is_kop(ac->a->op);
    if (!k && (rc = plain_series_major(ac, out)) != VG_EAGAIN) return rc;
    rc = VG_OK;
    double *vals = k ? vg_malloc((ac->in->n ? ac->in->n : 1) * sizeof(double)) : NULL;
    pq_map idx = {0};
    if (k && !vals) return VG_ENOMEM;
    for (size_t i = 0; i < ac->in->n; i++) ac->in->s[i].cur = 0;
    size_t step = 0;
    for (int64_t ts = ev->start; !rc && ts <= ev->end; ts += ev->interval, step++) {
        if ((rc = pq_tick(ev->c))) break;
        double p = ac->params[step];
        rc = k ? k_step(ac, ts, p, vals, &idx, out) : plain_step(ac, ts, p, out);
    }
    vg_free(vals);
    pq_map_free(&idx);
    return rc;
}

/* Drop output series that never got a point. */
static void drop_empty(pq_ctx *c, pq_matrix *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i].n == 0) {
            vg_free(m->s[i].t);
            vg_free(m->s[i].v);
            continue;
        }
        m->s[k++] = m->s[i];
    }
    (void)c;
    m->n = k;
}

static vg_err_t setup_grouping(aggctx *ac)
{
    pq_ctx *c = ac->ev->c;
    ac->ngrouping = ac->a->ngrouping;
    ac->grouping = vg_arena_alloc(c->arena, (ac->ngrouping + 1) * sizeof(char *));
    if (!ac->grouping) return VG_ENOMEM;
    if (ac->ngrouping) memcpy(ac->grouping, ac->a->grouping, ac->ngrouping * sizeof(char *));
    qsort(ac->grouping, ac->ngrouping, sizeof(char *), name_cmp);
    return VG_OK;
}

vg_err_t pq_eval_aggregate(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    aggctx ac = {0};
    ac.ev = ev;
    ac.n = n;
    ac.a = &n->u.agg;
    vg_err_t rc = setup_grouping(&ac);
    if (rc) return rc;
    if (ac.a->op == VG_PQ_AGG_COUNT_VALUES) return eval_count_values(&ac, out);
    pq_value in = {0};
    int mode = 0;
    rc = eval_params(&ac);
    if (!rc) rc = plain_fused(&ac, &in, out, &mode);
    if (!rc && mode == 1) drop_empty(ev->c, out);
    if (rc || mode == 1) goto out;
    if (mode == 0) rc = pq_eval(ev, ac.a->expr, &in);
    if (rc) goto out;
    ac.in = &in.m;
    int nothing = check_params(&ac, &rc);
    if (rc || nothing) goto out;
    if ((rc = make_groups(&ac, out))) goto out;
    if (ac.a->op == VG_PQ_AGG_LIMIT_RATIO) {
        ac.ratio = vg_malloc((in.m.n ? in.m.n : 1) * sizeof(double));
        if (!ac.ratio) {
            rc = VG_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < in.m.n; i++) ac.ratio[i] = ratio_offset(&in.m.s[i]);
    }
    rc = run_steps(&ac, out);
    if (!rc) drop_empty(ev->c, out);
out:
    pq_value_free(ev->c, &in);
    aggctx_free(&ac);
    return rc;
}
