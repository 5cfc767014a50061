/*
 * eval_functions.c - PromQL function calls.
 *
 * Three families, as in Prometheus's engine:
 *   - range-vector functions (rate, *_over_time, deriv, ...): each input
 *     series is read once and its window (t - range, t] slides forward step
 *     by step with two cursors, so a range query costs one pass per series;
 *   - instant-vector functions (abs, clamp, histogram_quantile, sort, ...):
 *     evaluated per step through pq_range_eval;
 *   - label functions (label_replace, label_join): rewrite label sets once
 *     per series, not per step.
 * Functions that change the meaning of a value mark the series drop_name;
 * the name is removed when the query ends (delayed name removal), which is
 * why label_replace can still read and even keep __name__. The numerics
 * (extrapolation in rate, Kahan sums, the linear regression) are
 * Prometheus 3's functions.go.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "promql/eval.h"
#include "promql/lex.h"
#include "tsdb/tiers.h"
#include "vigil/alloc.h"
#include "vigil/metrics.h"
#include "vigil/timefmt.h"

/* Go's math.Max / math.Min: NaN wins, +0 > -0. */
static double go_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && b == 0) return signbit(a) ? b : a;
    return a > b ? a : b;
}

static double go_min(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && b == 0) return signbit(a) ? a : b;
    return a < b ? a : b;
}

/* ================================================= range-vector functions */

typedef struct rwin {
    const int64_t *t;
    const double *v;
    size_t n;
    int64_t ts, range_start, range_end, range_ms;
    double arg[2];          /* scalar arguments of this step */
    int resets;             /* counter resets in the window (v[i] < v[i - 1]), -1 unknown */
    struct rate_memo *memo; /* extrapolated_rate's quotients of the last window */
} rwin;

/* The divisions of extrapolated_rate bound a rate over many series; with
 * regular samples successive windows divide the same numbers, so the last
 * quotient of each kind is kept (same operands, same bits). Zero keys map
 * to zero quotients, so a zeroed memo is valid. */
typedef struct rate_memo {
    int64_t start_ms, end_ms, sampled_ms, avg_ms, range_ms;
    double start_s, end_s, sampled_s, avg, range_s;
    size_t avg_n;
    double f_start, f_end, f_sampled, factor; /* the factor of these operands */
    int f_valid;
} rate_memo;

static inline double ms_to_s(int64_t ms, int64_t *key, double *val)
{
    if (ms != *key) {
        *key = ms;
        *val = (double)ms / 1000;
    }
    return *val;
}

static double kahan_sum(const double *v, size_t n)
{
    double s = 0, c = 0;
    for (size_t i = 0; i < n; i++) pq_kahan_inc(v[i], &s, &c);
    return isinf(s) ? s : s + c;
}

static double avg_over(const rwin *w)
{
    double sum = w->v[0], count = 1, mean = 0, kc = 0;
    int incr = 0;
    for (size_t i = 1; i < w->n; i++) {
        double f = w->v[i];
        count = (double)(i + 1);
        if (!incr) {
            double s = sum, c = kc;
            pq_kahan_inc(f, &s, &c);
            if (!isinf(s)) {
                sum = s;
                kc = c;
                continue;
            }
            incr = 1;
            mean = sum / (count - 1);
            kc /= count - 1;
        }
        double q = (count - 1) / count, m = q * mean, c = q * kc;
        pq_kahan_inc(f / count, &m, &c);
        mean = m;
        kc = c;
    }
    return incr ? mean + kc : sum / count + kc / count;
}

static double variance_over(const rwin *w)
{
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (size_t i = 0; i < w->n; i++) {
        double f = w->v[i];
        count++;
        double delta = f - (mean + cmean);
        pq_kahan_inc(delta / count, &mean, &cmean);
        pq_kahan_inc(delta * (f - (mean + cmean)), &aux, &caux);
    }
    return (aux + caux) / count;
}

/* Whether sampled * (v0 / result), the extrapolation to zero of a counter,
 * is certainly not below to_start, found without the division: the
 * products differ by a relative margin far above their rounding errors
 * (a few ulp), and are normal finite numbers. When unsure, the caller
 * divides, so the answer is always the division's. For a counter that
 * started long before the window (the usual case), v0 / result is large. */
static inline int zero_is_further(double sampled, double v0, double result, double to_start)
{
    double lhs = sampled * v0, rhs = to_start * result;
    return rhs > 1e-300 && lhs < INFINITY && lhs > rhs * (1 + 1e-9);
}

/* extrapolatedRate for floats. */
static int extrapolated_rate(const rwin *w, int is_counter, int is_rate, double *out)
{
    if (w->n < 2) return 0;
    size_t last = w->n - 1;
    double result = w->v[last] - w->v[0];
    if (is_counter && w->resets != 0) /* the sum in Prometheus's order */
        for (size_t i = 1; i < w->n; i++)
            if (w->v[i] < w->v[i - 1]) result += w->v[i - 1];
    rate_memo *m = w->memo;
    int64_t sampled_ms = w->t[last] - w->t[0];
    double to_start = ms_to_s(w->t[0] - w->range_start, &m->start_ms, &m->start_s);
    double to_end = ms_to_s(w->range_end - w->t[last], &m->end_ms, &m->end_s);
    double sampled = ms_to_s(sampled_ms, &m->sampled_ms, &m->sampled_s);
    if (m->avg_n != last || m->avg_ms != sampled_ms) { /* avg_n 0: never cached */
        m->avg_n = last;
        m->avg_ms = sampled_ms;
        m->avg = sampled / (double)last;
    }
    double avg = m->avg, threshold = avg * 1.1;
    if (to_start >= threshold) to_start = avg / 2;
    if (is_counter && result > 0 && w->v[0] >= 0 &&
        !zero_is_further(sampled, w->v[0], result, to_start)) {
        double to_zero = sampled * (w->v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    if (to_end >= threshold) to_end = avg / 2;
    if (!m->f_valid || to_start != m->f_start || to_end != m->f_end || sampled != m->f_sampled) {
        double factor = (sampled + to_start + to_end) / sampled;
        if (is_rate) factor /= ms_to_s(w->range_ms, &m->range_ms, &m->range_s);
        m->f_start = to_start;
        m->f_end = to_end;
        m->f_sampled = sampled;
        m->factor = factor;
        m->f_valid = 1;
    }
    *out = result * m->factor;
    return 1;
}

static int instant_value(const rwin *w, int is_rate, double *out)
{
    if (w->n < 2) return 0;
    int64_t t0 = w->t[w->n - 2], t1 = w->t[w->n - 1];
    double v0 = w->v[w->n - 2], v1 = w->v[w->n - 1];
    if (t1 == t0) return 0;
    double r = v1;
    if (!is_rate || !(v1 < v0)) r = v1 - v0;
    if (is_rate) r /= (double)(t1 - t0) / 1000;
    *out = r;
    return 1;
}

/* Least squares over (t - tbase, v): slope and intercept at tbase. */
static void linear_regression(const rwin *w, int64_t tbase, double *slope, double *icpt)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double init = w->v[0];
    int const_y = 1;
    for (size_t i = 0; i < w->n; i++) {
        if (const_y && i > 0 && w->v[i] != init) const_y = 0;
        n += 1;
        double x = (double)(w->t[i] - tbase) / 1e3;
        pq_kahan_inc(x, &sx, &cx);
        pq_kahan_inc(w->v[i], &sy, &cy);
        pq_kahan_inc(x * w->v[i], &sxy, &cxy);
        pq_kahan_inc(x * x, &sx2, &cx2);
    }
    if (const_y) {
        *slope = isinf(init) ? NAN : 0;
        *icpt = isinf(init) ? NAN : init;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n, var = sx2 - sx * sx / n;
    *slope = cov / var;
    *icpt = sy / n - *slope * sx / n;
}

static int holt(const rwin *w, double *out)
{
    double sf = w->arg[0], tf = w->arg[1];
    if (w->n < 2) return 0;
    double s0 = 0, s1 = w->v[0], b = w->v[1] - w->v[0];
    for (size_t i = 1; i < w->n; i++) {
        double x = sf * w->v[i];
        if (i - 1 > 0) b = tf * (s1 - s0) + (1 - tf) * b;
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    *out = s1;
    return 1;
}

static double mad_over(const rwin *w)
{
    for (size_t i = 0; i < w->n; i++)
        if (isnan(w->v[i])) return NAN; /* a NaN sample makes the result NaN */
    double *a = vg_malloc(w->n * sizeof(double));
    if (!a) return NAN;
    memcpy(a, w->v, w->n * sizeof(double));
    double med = pq_quantile(0.5, a, w->n);
    for (size_t i = 0; i < w->n; i++) a[i] = fabs(w->v[i] - med);
    double r = pq_quantile(0.5, a, w->n);
    vg_free(a);
    return r;
}

static double quantile_over(const rwin *w)
{
    double *a = vg_malloc(w->n * sizeof(double));
    if (!a) return NAN;
    memcpy(a, w->v, w->n * sizeof(double));
    double r = pq_quantile(w->arg[0], a, w->n);
    vg_free(a);
    return r;
}

/* min/max_over_time and ts_of_min/max_over_time; ge: >= instead of >. */
static double compare_over(const rwin *w, int want_max, int ge, int ts)
{
    double best = w->v[0];
    int64_t bt = w->t[0];
    for (size_t i = 0; i < w->n; i++) {
        double f = w->v[i];
        int better = want_max ? (ge ? f >= best : f > best) : (ge ? f <= best : f < best);
        if (better || isnan(best)) best = f, bt = w->t[i];
    }
    return ts ? (double)bt / 1000 : best;
}

static double count_changes(const rwin *w, int resets)
{
    double n = 0;
    for (size_t i = 1; i < w->n; i++) {
        double p = w->v[i - 1], c = w->v[i];
        if (resets ? c < p : (c != p && !(isnan(c) && isnan(p)))) n++;
    }
    return n;
}

/* One range function over one window; 0 = no output. */
static int range_fn(vg_pq_fn_id id, const rwin *w, double *out)
{
    switch (id) {
    case VG_PQ_FN_RATE: return extrapolated_rate(w, 1, 1, out);
    case VG_PQ_FN_INCREASE: return extrapolated_rate(w, 1, 0, out);
    case VG_PQ_FN_DELTA: return extrapolated_rate(w, 0, 0, out);
    case VG_PQ_FN_IRATE: return instant_value(w, 1, out);
    case VG_PQ_FN_IDELTA: return instant_value(w, 0, out);
    case VG_PQ_FN_AVG_OVER_TIME: *out = avg_over(w); return 1;
    case VG_PQ_FN_SUM_OVER_TIME: *out = kahan_sum(w->v, w->n); return 1;
    case VG_PQ_FN_COUNT_OVER_TIME: *out = (double)w->n; return 1;
    case VG_PQ_FN_MIN_OVER_TIME: *out = compare_over(w, 0, 0, 0); return 1;
    case VG_PQ_FN_MAX_OVER_TIME: *out = compare_over(w, 1, 0, 0); return 1;
    case VG_PQ_FN_TS_OF_MIN_OVER_TIME: *out = compare_over(w, 0, 1, 1); return 1;
    case VG_PQ_FN_TS_OF_MAX_OVER_TIME: *out = compare_over(w, 1, 1, 1); return 1;
    case VG_PQ_FN_LAST_OVER_TIME: *out = w->v[w->n - 1]; return 1;
    case VG_PQ_FN_FIRST_OVER_TIME: *out = w->v[0]; return 1;
    case VG_PQ_FN_TS_OF_LAST_OVER_TIME: *out = (double)w->t[w->n - 1] / 1000; return 1;
    case VG_PQ_FN_TS_OF_FIRST_OVER_TIME: *out = (double)w->t[0] / 1000; return 1;
    case VG_PQ_FN_PRESENT_OVER_TIME:
    case VG_PQ_FN_ABSENT_OVER_TIME: *out = 1; return 1;
    case VG_PQ_FN_STDVAR_OVER_TIME: *out = variance_over(w); return 1;
    case VG_PQ_FN_STDDEV_OVER_TIME: *out = sqrt(variance_over(w)); return 1;
    case VG_PQ_FN_QUANTILE_OVER_TIME: *out = quantile_over(w); return 1;
    case VG_PQ_FN_MAD_OVER_TIME: *out = mad_over(w); return 1;
    case VG_PQ_FN_CHANGES: *out = count_changes(w, 0); return 1;
    case VG_PQ_FN_RESETS: *out = count_changes(w, 1); return 1;
    case VG_PQ_FN_DERIV: {
        if (w->n < 2) return 0;
        double icpt;
        linear_regression(w, w->t[0], out, &icpt);
        return 1;
    }
    case VG_PQ_FN_PREDICT_LINEAR: {
        if (w->n < 2) return 0;
        double slope, icpt;
        linear_regression(w, w->ts, &slope, &icpt);
        *out = slope * w->arg[0] + icpt;
        return 1;
    }
    case VG_PQ_FN_DOUBLE_EXPONENTIAL_SMOOTHING: return holt(w, out);
    default: return 0;
    }
}

typedef struct rcall {
    pq_ev *ev;
    vg_pq_node *n;
    vg_pq_fn_id id;
    size_t margs;      /* index of the range argument */
    pq_value sargs[2]; /* scalar arguments (matrices) */
    size_t nsargs;
    double *argv[2]; /* per step */
    rate_memo memo;
} rcall;

static vg_err_t eval_scalar_args(rcall *rc_)
{
    pq_ev *ev = rc_->ev;
    size_t ns = pq_nsteps(ev);
    for (size_t i = 0; i < rc_->n->u.call.nargs; i++) {
        if (i == rc_->margs || rc_->nsargs >= 2) continue;
        size_t k = rc_->nsargs++;
        vg_err_t rc = pq_eval(ev, rc_->n->u.call.args[i], &rc_->sargs[k]);
        if (rc) return rc;
        rc_->argv[k] = vg_malloc(ns * sizeof(double));
        if (!rc_->argv[k]) return VG_ENOMEM;
        for (size_t j = 0; j < ns; j++) rc_->argv[k][j] = NAN;
        if (!rc_->sargs[k].m.n) continue;
        pq_series *s = &rc_->sargs[k].m.s[0];
        for (size_t j = 0; j < s->n; j++) {
            size_t st = (size_t)((s->t[j] - ev->start) / ev->interval);
            if (st < ns) rc_->argv[k][st] = s->v[j];
        }
    }
    return VG_OK;
}

/* Checks and annotations that depend on a step's scalar arguments. */
static vg_err_t check_args(rcall *r, const rwin *w)
{
    pq_ctx *c = r->ev->c;
    if (r->id == VG_PQ_FN_DOUBLE_EXPONENTIAL_SMOOTHING) {
        if (!(w->arg[0] > 0 && w->arg[0] < 1))
            return pq_fail(c, VG_EINVAL, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f",
                           w->arg[0]);
        if (!(w->arg[1] > 0 && w->arg[1] < 1))
            return pq_fail(c, VG_EINVAL, "invalid trend factor. Expected: 0 < tf < 1, got: %f",
                           w->arg[1]);
    }
    if (r->id == VG_PQ_FN_QUANTILE_OVER_TIME &&
        (isnan(w->arg[0]) || w->arg[0] < 0 || w->arg[0] > 1)) {
        char b[32];
        return pq_annotate(c, 0, r->n->u.call.args[0],
                           "PromQL warning: quantile value should be between 0 and 1, got %s",
                           vg_fmt_float(w->arg[0], b));
    }
    return VG_OK;
}

/* A counter reset between samples i - 1 and i. */
static inline int reset_at(const double *v, size_t i)
{
    return v[i] < v[i - 1];
}

/* Slide the window over the steps for the current series of src. For
 * rate and increase the resets inside the window are counted as it slides,
 * so a window without one skips the per-sample loop. Touches no query
 * state but r's memo (check_args runs only for functions with scalar
 * arguments, which stay on the query's thread); o's points are not counted. */
static vg_err_t range_series(rcall *r, const pq_rsrc *src, pq_series *o)
{
    pq_ev *ev = r->ev;
    /* Locals, not src/o fields: the stores of output points (int64_t)
     * could alias the size_t counts, which would be reloaded every step. */
    const int64_t *t = src->t;
    const double *sv = src->v;
    size_t n = src->n, lo = 0, hi = 0, step = 0, on = o->n;
    int counting = r->id == VG_PQ_FN_RATE || r->id == VG_PQ_FN_INCREASE, resets = 0;
    /* Room for every output point up front: a window holds each sample for
     * at most range / interval + 1 steps, so sparse series reserve little. */
    size_t per = (size_t)(src->range_ms / ev->interval) + 1, want = pq_nsteps(ev);
    if (n < want / per + 1) want = n * per;
    vg_err_t rc = pq_series_reserve(o, want);
    int64_t *ot = o->t;
    double *ov = o->v;
    size_t cap = o->cap;
    for (int64_t ts = ev->start; !rc && ts <= ev->end; ts += ev->interval, step++) {
        int64_t maxt = src->at == VG_PQ_AT_NONE
                           ? ts - src->offset_ms
                           : pq_ref_time(ev, src->at, src->at_ms, src->offset_ms, ts);
        int64_t mint = maxt - src->range_ms;
        /* resets counts pairs (i - 1, i) with lo < i < hi */
        for (; lo < n && t[lo] <= mint; lo++)
            if (counting && lo + 1 < hi) resets -= reset_at(sv, lo + 1);
        if (hi < lo) hi = lo, resets = 0;
        for (; hi < n && t[hi] <= maxt; hi++)
            if (counting && hi > lo) resets += reset_at(sv, hi);
        if (hi <= lo) continue;
        rwin w = {t + lo,
                  sv + lo,
                  hi - lo,
                  ts,
                  mint,
                  maxt,
                  src->range_ms,
                  {0, 0},
                  counting ? resets : -1,
                  &r->memo};
        for (size_t k = 0; k < r->nsargs; k++) w.arg[k] = r->argv[k][step];
        if (r->nsargs && (rc = check_args(r, &w))) break; /* only functions with arguments */
        double v;
        if (!range_fn(r->id, &w, &v)) continue;
        if (on == cap) {
            o->n = on;
            if ((rc = pq_series_reserve(o, cap ? cap * 2 : 4))) break;
            ot = o->t;
            ov = o->v;
            cap = o->cap;
        }
        ot[on] = ts; /* counted by the caller: this may run on a helper thread */
        ov[on++] = v;
    }
    o->n = on;
    return rc;
}

/* The range call's per-series function for pq_rsrc_parallel. */
static vg_err_t range_series_par(void *ud, const pq_rsrc *src, pq_series *o)
{
    return range_series(ud, src, o);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static vg_err_t counter_info(rcall *r, const vg_label_t *l, size_t n)
{
    const char *name = pq_metric_name(l, n);
    if (!name[0] || has_suffix(name, "_total") || has_suffix(name, "_sum") ||
        has_suffix(name, "_count") || has_suffix(name, "_bucket"))
        return VG_OK;
    vg_buf b;
    vg_buf_init(&b, 1 << 16);
    vg_lex_goquote(&b, name, strlen(name), 0);
    vg_err_t rc = pq_annotate(r->ev->c, 1, r->n->u.call.args[0],
                              "PromQL info: metric might not be a counter, name does not end in "
                              "_total/_sum/_count/_bucket: %s",
                              b.data ? b.data : "\"\"");
    vg_buf_free(&b);
    return rc;
}

/* Labels for absent()/absent_over_time(): the equality matchers of a plain
 * selector argument (a label matched twice is left out). */
static vg_err_t absent_labels(pq_ctx *c, vg_pq_node *arg, const vg_label_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    arg = pq_unwrap(arg);
    if (arg->kind != VG_PQ_VECTOR_SEL && arg->kind != VG_PQ_MATRIX_SEL) return VG_OK;
    const vg_pq_selector *sel = &arg->u.sel;
    const vg_label_t *l = NULL;
    size_t n = 0;
    const char **dropped = vg_arena_alloc(c->arena, (sel->nmatchers + 1) * sizeof(char *));
    size_t nd = 0;
    if (!dropped) return VG_ENOMEM;
    for (size_t i = 0; i < sel->nmatchers; i++) {
        const vg_matcher_t *m = sel->matchers[i];
        const char *name = vg_matcher_name(m);
        if (strcmp(name, VG_METRIC_NAME) == 0) continue;
        int had = vg_labels_get(l, n, name) != NULL;
        for (size_t k = 0; k < nd; k++) had |= strcmp(dropped[k], name) == 0;
        vg_err_t rc;
        if (vg_matcher_op(m) == VG_MATCH_EQ && !had)
            rc = pq_lbl_set(c, l, n, name, vg_matcher_value(m), &l, &n);
        else {
            rc = pq_lbl_set(c, l, n, name, "", &l, &n);
            dropped[nd++] = name;
        }
        if (rc) return rc;
    }
    *out = l;
    *nout = n;
    return VG_OK;
}

static vg_err_t absent_over_time_post(rcall *r, pq_matrix *mat, pq_matrix *out)
{
    pq_ev *ev = r->ev;
    size_t ns = pq_nsteps(ev);
    for (size_t i = 0; i < mat->n; i++)
        if (mat->s[i].n == ns) return VG_OK;
    unsigned char *found = vg_calloc(ns, 1);
    if (!found) return VG_ENOMEM;
    for (size_t i = 0; i < mat->n; i++)
        for (size_t j = 0; j < mat->s[i].n; j++)
            found[(mat->s[i].t[j] - ev->start) / ev->interval] = 1;
    const vg_label_t *l;
    size_t nl, k;
    vg_err_t rc = absent_labels(ev->c, r->n->u.call.args[0], &l, &nl);
    if (!rc) rc = pq_mat_add(ev->c, out, l, nl, vg_labels_hash(l, nl), 1, &k);
    size_t step = 0;
    for (int64_t ts = ev->start; !rc && ts <= ev->end; ts += ev->interval, step++)
        if (!found[step]) rc = pq_series_push(ev->c, &out->s[k], ts, 1);
    vg_free(found);
    if (!rc && out->s[k].n == 0) {
        vg_free(out->s[k].t);
        vg_free(out->s[k].v);
        out->n--;
    }
    return rc;
}

static int range_arg(vg_pq_node *n, size_t *idx);

/* Take one evaluated series into dst (labels copied into the arena unless
 * in_arena), or drop it when it has no points; its points are counted here. */
static vg_err_t adopt_series(rcall *r, pq_matrix *dst, pq_series *o, int in_arena, int drop,
                             int want_info)
{
    pq_ctx *c = r->ev->c;
    const vg_label_t *l = o->lbl;
    size_t k;
    vg_err_t rc = VG_OK;
    if (o->n == 0) goto out;
    if ((rc = pq_samples_add(c, o->n))) {
        pq_samples_sub(c, o->n);
        goto out;
    }
    if ((!in_arena && (rc = pq_lbl_copy(c, o->lbl, o->nlbl, &l))) ||
        (rc = pq_mat_add(c, dst, l, o->nlbl, vg_labels_hash(l, o->nlbl), drop, &k))) {
        pq_samples_sub(c, o->n);
        goto out;
    }
    dst->s[k].t = o->t;
    dst->s[k].v = o->v;
    dst->s[k].n = o->n;
    dst->s[k].cap = o->cap;
    o->t = NULL;
    o->v = NULL;
    if (want_info) rc = counter_info(r, l, o->nlbl);
out:
    vg_free(o->t);
    vg_free(o->v);
    o->t = NULL;
    o->v = NULL;
    return rc;
}

/* Every series of src on this thread (the helper decodes ahead). */
static vg_err_t range_call_serial(rcall *r, pq_rsrc *src, pq_matrix *dst, int drop, int want_info)
{
    vg_err_t rc = VG_OK;
    pq_rsrc_prefetch(src);
    while (!rc && pq_rsrc_next(src, &rc)) {
        pq_series o = {0};
        o.lbl = src->lbl; /* already in the arena */
        o.nlbl = src->nlbl;
        rc = range_series(r, src, &o);
        vg_err_t rc2 = adopt_series(r, dst, &o, 1, drop, want_info);
        if (!rc) rc = rc2;
    }
    return rc;
}

/* A range call's series on their way out of pq_rsrc_parallel: kept in dst,
 * or handed to a consumer's commit. */
typedef struct rstream {
    rcall *r;
    int drop, want_info;
    pq_matrix *dst;
    pq_commit_fn commit;
    void *ud;
} rstream;

static vg_err_t stream_commit(void *ud, pq_series *s, size_t n)
{
    rstream *st = ud;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        s[i].drop_name = st->drop;
        if (st->commit && s[i].n && st->want_info)
            rc = counter_info(st->r, s[i].lbl, s[i].nlbl);
        else if (!st->commit)
            rc = adopt_series(st->r, st->dst, &s[i], 0, st->drop, st->want_info);
    }
    return !rc && st->commit ? st->commit(st->ud, s, n) : rc;
}

/* The series of a selector on nthr threads (eval_parallel.c), each with its
 * own copy of r (the rate memo), committed in the selection's order. */
static vg_err_t range_call_parallel(rcall *r, pq_rsrc *src, size_t nthr, rstream *st)
{
    rcall rs[PQ_PAR_MAX_THREADS];
    void *ud[PQ_PAR_MAX_THREADS];
    for (size_t i = 0; i < nthr && i < PQ_PAR_MAX_THREADS; i++) {
        rs[i] = *r;
        ud[i] = &rs[i];
    }
    return pq_rsrc_parallel(src, nthr, range_series_par, ud, stream_commit, st);
}

/* Scalar arguments, the storage hint and the range source of a call. */
static vg_err_t range_call_open(pq_ev *ev, vg_pq_node *n, vg_pq_fn_id id, size_t margs, rcall *r,
                                pq_rsrc *src)
{
    memset(r, 0, sizeof(*r));
    memset(src, 0, sizeof(*src));
    r->ev = ev;
    r->n = n;
    r->id = id;
    r->margs = margs;
    vg_err_t rc = eval_scalar_args(r);
    if (!rc) ev->c->sel_aggr = 1 + (int)vg_aggr_for_function(vg_pq_func_by_id(id)->name);
    if (!rc) rc = pq_rsrc_open(ev, n->u.call.args[margs], src);
    if (!rc && id == VG_PQ_FN_COUNT_OVER_TIME && src->is_selector && pq_select_aggregates(ev->c))
        r->id = VG_PQ_FN_SUM_OVER_TIME; /* the store gave per-window counts, 1 per raw sample */
    return rc;
}

static void range_call_close(rcall *r, pq_rsrc *src)
{
    pq_rsrc_close(src);
    for (size_t i = 0; i < r->nsargs; i++) {
        pq_value_free(r->ev->c, &r->sargs[i]);
        vg_free(r->argv[i]);
    }
}

static int drops_name(vg_pq_fn_id id)
{
    return id != VG_PQ_FN_LAST_OVER_TIME && id != VG_PQ_FN_FIRST_OVER_TIME;
}

static int wants_info(vg_pq_fn_id id)
{
    return id == VG_PQ_FN_RATE || id == VG_PQ_FN_INCREASE;
}

static vg_err_t eval_range_call(pq_ev *ev, vg_pq_node *n, vg_pq_fn_id id, size_t margs,
                                pq_matrix *out)
{
    rcall r;
    pq_rsrc src;
    pq_matrix tmp = {0}, *dst = id == VG_PQ_FN_ABSENT_OVER_TIME ? &tmp : out;
    rstream st = {&r, drops_name(id), wants_info(id), dst, NULL, NULL};
    vg_err_t rc = range_call_open(ev, n, id, margs, &r, &src);
    /* Scalar arguments are checked and annotated per step: those stay serial. */
    size_t nthr = !rc && src.is_selector && r.nsargs == 0 ? pq_par_threads(src.ss) : 0;
    if (!rc && nthr > 1)
        rc = range_call_parallel(&r, &src, nthr, &st);
    else if (!rc)
        rc = range_call_serial(&r, &src, dst, st.drop, st.want_info);
    if (!rc && id == VG_PQ_FN_ABSENT_OVER_TIME) rc = absent_over_time_post(&r, &tmp, out);
    pq_mat_free(ev->c, &tmp);
    range_call_close(&r, &src);
    return rc;
}

/* n (parentheses aside) is a range function over a plain selector with no
 * other argument: its range argument's index in *margs. */
static int streamable_call(vg_pq_node *n, vg_pq_fn_id *id, size_t *margs)
{
    while (n->kind == VG_PQ_PAREN) n = n->u.unary.expr;
    if (n->kind != VG_PQ_CALL || n->u.call.nargs != 1 || !range_arg(n, margs)) return 0;
    *id = pq_call_id(n);
    return *id != VG_PQ_FN__COUNT && *id != VG_PQ_FN_ABSENT_OVER_TIME && *id != VG_PQ_FN_INFO &&
           *id != VG_PQ_FN_INTEGRAL && pq_unwrap(n->u.call.args[*margs])->kind == VG_PQ_MATRIX_SEL;
}

vg_err_t pq_range_call_stream(pq_ev *ev, vg_pq_node *n, pq_accept_fn accept, pq_commit_fn commit,
                              void *ud, pq_value *in, int *mode)
{
    vg_pq_fn_id id;
    size_t margs;
    rcall r;
    pq_rsrc src;
    *mode = 0;
    if (!streamable_call(n, &id, &margs)) return VG_OK;
    while (n->kind == VG_PQ_PAREN) n = n->u.unary.expr;
    vg_err_t rc = range_call_open(ev, n, id, margs, &r, &src);
    rstream st = {&r, drops_name(id), wants_info(id), NULL, commit, ud};
    if (!rc && src.is_selector) {
        size_t nthr = pq_par_threads(src.ss);
        *mode = accept(ud, src.ss) ? 1 : 2;
        if (*mode == 2) {
            memset(in, 0, sizeof(*in));
            in->type = VG_PQ_TYPE_MATRIX;
            st.dst = &in->m;
            st.commit = NULL;
        }
        rc = range_call_parallel(&r, &src, nthr < 1 ? 1 : nthr, &st);
    }
    range_call_close(&r, &src);
    return rc;
}

/* =============================================== instant-vector functions */

typedef struct hcache {
    int state; /* 0 unset, 1 ok, 2 bad le */
    double le;
    uint64_t sig;         /* all labels but le */
    const vg_label_t *ol; /* without le and __name__ */
    size_t nol;
    uint64_t oh;
} hcache;

typedef struct hgroup {
    size_t src; /* first input series of the group */
    pq_bucket *b;
    size_t nb, cap;
} hgroup;

typedef struct lset {
    const vg_label_t *l;
    size_t n;
    uint64_t h;
} lset;

typedef struct icall {
    vg_pq_node *n;
    vg_pq_fn_id id;
    size_t vidx; /* the vector argument */
    pq_value *args;
    lset absent;
    const char **sort_labels;
    size_t nsort;
    hcache *hc;
    size_t nhc;
    hgroup *hg;
    size_t nhg, caphg;
    pq_map gmap;
    pq_map qmap; /* histogram_quantiles: (group, q index) -> qsets index */
    lset *qsets;
    size_t nq, capq;
} icall;

static double math_fn(vg_pq_fn_id id, double f)
{
    switch (id) {
    case VG_PQ_FN_ABS: return fabs(f);
    case VG_PQ_FN_CEIL: return ceil(f);
    case VG_PQ_FN_FLOOR: return floor(f);
    case VG_PQ_FN_EXP: return exp(f);
    case VG_PQ_FN_SQRT: return sqrt(f);
    case VG_PQ_FN_LN: return log(f);
    case VG_PQ_FN_LOG2: return log2(f);
    case VG_PQ_FN_LOG10: return log10(f);
    case VG_PQ_FN_SIN: return sin(f);
    case VG_PQ_FN_COS: return cos(f);
    case VG_PQ_FN_TAN: return tan(f);
    case VG_PQ_FN_ASIN: return asin(f);
    case VG_PQ_FN_ACOS: return acos(f);
    case VG_PQ_FN_ATAN: return atan(f);
    case VG_PQ_FN_SINH: return sinh(f);
    case VG_PQ_FN_COSH: return cosh(f);
    case VG_PQ_FN_TANH: return tanh(f);
    case VG_PQ_FN_ASINH: return asinh(f);
    case VG_PQ_FN_ACOSH: return acosh(f);
    case VG_PQ_FN_ATANH: return atanh(f);
    case VG_PQ_FN_DEG: return f * 180 / M_PI;
    case VG_PQ_FN_RAD: return f * M_PI / 180;
    case VG_PQ_FN_SGN: return f < 0 ? -1 : f > 0 ? 1 : f;
    default: return NAN;
    }
}

/* ---- dates (UTC, proleptic Gregorian, any year) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static double date_fn(vg_pq_fn_id id, double secs)
{
    int64_t s;
    if (isnan(secs) || secs >= 9.2e18 || secs <= -9.2e18)
        s = INT64_MIN / 2; /* Go turns these into MinInt64; any far date will do */
    else
        s = (int64_t)secs;
    int64_t days = floor_div(s, 86400), sod = s - days * 86400, y;
    int m, d;
    vg_timefmt_civil_from_days(days, &y, &m, &d);
    static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    switch (id) {
    case VG_PQ_FN_YEAR: return (double)y;
    case VG_PQ_FN_MONTH: return m;
    case VG_PQ_FN_DAY_OF_MONTH: return d;
    case VG_PQ_FN_DAY_OF_WEEK: return (double)(((days % 7) + 7 + 4) % 7);
    case VG_PQ_FN_DAY_OF_YEAR: return cum[m - 1] + d + (m > 2 && is_leap(y));
    case VG_PQ_FN_DAYS_IN_MONTH: return vg_timefmt_days_in_month(y, m);
    case VG_PQ_FN_HOUR: return (double)(sod / 3600);
    case VG_PQ_FN_MINUTE: return (double)(sod % 3600 / 60);
    default: return NAN;
    }
}

/* ---- sorting ---- */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Next chunk (run of digits or of non-digits) of s at *p. */
static size_t chunk(const char *s, size_t *p, const char **start)
{
    size_t b = *p;
    *start = s + b;
    if (!s[b]) return 0;
    int dig = is_digit(s[b]);
    while (s[*p] && is_digit(s[*p]) == dig) (*p)++;
    return *p - b;
}

static int atoi_chunk(const char *c, size_t n, long long *v)
{
    if (n == 0 || n > 18 || !is_digit(c[0])) return 0;
    long long r = 0;
    for (size_t i = 0; i < n; i++) r = r * 10 + (c[i] - '0');
    *v = r;
    return 1;
}

/* github.com/facette/natsort Compare: a < b in natural order. */
static int natless(const char *a, const char *b)
{
    size_t pa = 0, pb = 0;
    for (;;) {
        const char *ca, *cb;
        size_t na = chunk(a, &pa, &ca);
        if (!na) return 0;
        size_t nb = chunk(b, &pb, &cb);
        if (!nb) return 0;
        int a_last = a[pa] == 0, b_last = b[pb] == 0;
        long long ia, ib;
        if (atoi_chunk(ca, na, &ia) && atoi_chunk(cb, nb, &ib)) {
            if (ia != ib) return ia < ib;
        } else if (na != nb || memcmp(ca, cb, na) != 0) {
            size_t m = na < nb ? na : nb;
            int c = memcmp(ca, cb, m);
            return c ? c < 0 : na < nb;
        }
        if (a_last) return 1;
        if (b_last) return 0;
    }
}

/* qsort has no user argument in C11; one call sorts at a time per thread. */
static __thread const icall *sort_ctx;

static int by_label_cmp(const void *x, const void *y)
{
    const pq_sample *a = x, *b = y;
    int desc = sort_ctx->id == VG_PQ_FN_SORT_BY_LABEL_DESC;
    for (size_t i = 0; i < sort_ctx->nsort; i++) {
        const char *va = vg_labels_get(a->lbl, a->nlbl, sort_ctx->sort_labels[i]);
        const char *vb = vg_labels_get(b->lbl, b->nlbl, sort_ctx->sort_labels[i]);
        if (!va) va = "";
        if (!vb) vb = "";
        if (strcmp(va, vb) == 0) continue;
        int less = natless(va, vb);
        return desc ? (less ? 1 : -1) : (less ? -1 : 1);
    }
    int c = vg_labels_cmp(a->lbl, a->nlbl, b->lbl, b->nlbl);
    return desc ? -c : c;
}

static int by_value_asc(const void *x, const void *y)
{
    double a = ((const pq_sample *)x)->v, b = ((const pq_sample *)y)->v;
    if (isnan(a)) return isnan(b) ? 0 : 1;
    if (isnan(b)) return -1;
    return a < b ? -1 : a > b;
}

static int by_value_desc(const void *x, const void *y)
{
    double a = ((const pq_sample *)x)->v, b = ((const pq_sample *)y)->v;
    if (isnan(a)) return isnan(b) ? 0 : 1;
    if (isnan(b)) return -1;
    return a > b ? -1 : a < b;
}

static vg_err_t sort_step(pq_ctx *c, icall *ic, pq_vector *in, pq_vector *out)
{
    for (size_t i = 0; i < in->n; i++) {
        vg_err_t rc = pq_vec_push(c, out, &in->s[i]);
        if (rc) return rc;
    }
    if (out->n < 2) return VG_OK;
    if (ic->id == VG_PQ_FN_SORT) {
        qsort(out->s, out->n, sizeof(*out->s), by_value_asc);
    } else if (ic->id == VG_PQ_FN_SORT_DESC) {
        qsort(out->s, out->n, sizeof(*out->s), by_value_desc);
    } else {
        sort_ctx = ic;
        qsort(out->s, out->n, sizeof(*out->s), by_label_cmp);
    }
    return VG_OK;
}

/* ---- classic histograms ---- */

static vg_err_t hist_cache(pq_ctx *c, icall *ic, const pq_sample *s, const vg_pq_node *arg,
                           hcache **out)
{
    hcache *h = &ic->hc[s->src];
    *out = h;
    if (h->state) return VG_OK;
    const char *le = vg_labels_get(s->lbl, s->nlbl, "le");
    char *end = NULL;
    h->le = le ? strtod(le, &end) : 0;
    if (!le || !*le || *end) {
        h->state = 2;
        vg_buf b;
        vg_buf_init(&b, 1 << 16);
        vg_lex_goquote(&b, le ? le : "", le ? strlen(le) : 0, 0);
        const char *name = pq_metric_name(s->lbl, s->nlbl);
        vg_err_t rc;
        if (name[0]) {
            vg_buf_puts(&b, " for metric name ");
            vg_lex_goquote(&b, name, strlen(name), 0);
        }
        rc = pq_annotate(c, 0, arg,
                         "PromQL warning: bucket label \"le\" is missing or has a malformed value "
                         "of %s",
                         b.data ? b.data : "\"\"");
        vg_buf_free(&b);
        return rc;
    }
    static const char *const le_only[] = {"le"};
    static const char *const excl[] = {"le", VG_METRIC_NAME};
    h->sig = pq_lbl_hash_subset(s->lbl, s->nlbl, le_only, 1, 0);
    /* pq_lbl_hash_subset(keep=0) also skips __name__; fold the name back in. */
    const char *name = pq_metric_name(s->lbl, s->nlbl);
    for (const char *p = name; *p; p++) h->sig = (h->sig ^ (unsigned char)*p) * 0x100000001b3ULL;
    vg_err_t rc = pq_lbl_without(c, s->lbl, s->nlbl, excl, 2, 1, &h->ol, &h->nol);
    if (rc) return rc;
    h->oh = vg_labels_hash(h->ol, h->nol);
    h->state = 1;
    return VG_OK;
}

static vg_err_t hist_group_push(hgroup *g, double le, double v)
{
    if (g->nb == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 16;
        pq_bucket *nb = vg_realloc(g->b, nc * sizeof(*nb));
        if (!nb) return VG_ENOMEM;
        g->b = nb;
        g->cap = nc;
    }
    g->b[g->nb++] = (pq_bucket){le, v};
    return VG_OK;
}

/* Group this step's bucket samples into histograms. */
static vg_err_t hist_groups(pq_ctx *c, icall *ic, pq_vector *vec)
{
    const vg_pq_node *arg = ic->n->u.call.args[ic->vidx];
    pq_map_clear(&ic->gmap);
    for (size_t i = 0; i < ic->nhg; i++) ic->hg[i].nb = 0;
    size_t used = 0;
    for (size_t i = 0; i < vec->n; i++) {
        hcache *h;
        vg_err_t rc = hist_cache(c, ic, &vec->s[i], arg, &h);
        if (rc) return rc;
        if (h->state != 1) continue;
        size_t gi;
        if (!pq_map_get(&ic->gmap, h->sig, &gi)) {
            if (used == ic->caphg) {
                size_t nc = ic->caphg ? ic->caphg * 2 : 16;
                hgroup *ng = vg_realloc(ic->hg, nc * sizeof(*ng));
                if (!ng) return VG_ENOMEM;
                memset(ng + ic->caphg, 0, (nc - ic->caphg) * sizeof(*ng));
                ic->hg = ng;
                ic->caphg = nc;
            }
            gi = used++;
            ic->hg[gi].nb = 0;
            ic->hg[gi].src = vec->s[i].src;
            if ((rc = pq_map_put(&ic->gmap, h->sig, gi))) return rc;
        }
        if ((rc = hist_group_push(&ic->hg[gi], h->le, vec->s[i].v))) return rc;
    }
    ic->nhg = used;
    return VG_OK;
}

static vg_err_t quantile_warning(pq_ctx *c, const vg_pq_node *arg, double q)
{
    if (!(isnan(q) || q < 0 || q > 1)) return VG_OK;
    char b[32];
    return pq_annotate(c, 0, arg,
                       "PromQL warning: quantile value should be between 0 and 1, got %s",
                       vg_fmt_float(q, b));
}

static vg_err_t forced_info(pq_ctx *c, const vg_pq_node *arg)
{
    return pq_annotate(c, 1, arg,
                       "PromQL info: input to histogram_quantile needed to be fixed for "
                       "monotonicity (see "
                       "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                       "#histogram_quantile)");
}

/* labels.FormatOpenMetricsFloat */
static const char *om_float(double q, char *b)
{
    if (q == 0) return strcpy(b, signbit(q) ? "-0.0" : "0.0");
    vg_fmt_float(q, b);
    if (!isnan(q) && !isinf(q) && !strpbrk(b, ".e")) strcat(b, ".0");
    return b;
}

static vg_err_t quantile_labels(pq_ctx *c, icall *ic, const hcache *h, size_t qi, double q,
                                lset **out)
{
    uint64_t key = h->oh ^ ((uint64_t)(qi + 1) * 0x9e3779b97f4a7c15ULL);
    size_t k;
    if (pq_map_get(&ic->qmap, key, &k)) {
        *out = &ic->qsets[k];
        return VG_OK;
    }
    if (ic->nq == ic->capq) {
        size_t nc = ic->capq ? ic->capq * 2 : 16;
        lset *ns = vg_realloc(ic->qsets, nc * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        ic->qsets = ns;
        ic->capq = nc;
    }
    char b[64];
    const char *lbl = pq_unwrap(ic->n->u.call.args[1])->u.str;
    if (vg_labels_get(h->ol, h->nol, lbl))
        return pq_fail(c, VG_EINVAL,
                       "histogram_quantiles: label \"%s\" already exists in the input series", lbl);
    const char *v = vg_arena_strdup(c->arena, om_float(q, b));
    lset *ls = &ic->qsets[ic->nq];
    vg_err_t rc = v ? pq_lbl_set(c, h->ol, h->nol, lbl, v, &ls->l, &ls->n) : VG_ENOMEM;
    if (rc) return rc;
    ls->h = vg_labels_hash(ls->l, ls->n);
    if ((rc = pq_map_put(&ic->qmap, key, ic->nq))) return rc;
    *out = &ic->qsets[ic->nq++];
    return VG_OK;
}

static vg_err_t hist_step(pq_ev *ev, icall *ic, pq_vector *in, int64_t ts, pq_vector *out)
{
    pq_ctx *c = ev->c;
    vg_pq_node **args = ic->n->u.call.args;
    size_t nq = ic->id == VG_PQ_FN_HISTOGRAM_QUANTILES ? ic->n->u.call.nargs - 2 : 1;
    vg_err_t rc = VG_OK;
    for (size_t qi = 0; qi < nq && !rc; qi++) {
        if (ic->id == VG_PQ_FN_HISTOGRAM_QUANTILE && in[0].n)
            rc = quantile_warning(c, args[0], in[0].s[0].v);
        if (ic->id == VG_PQ_FN_HISTOGRAM_QUANTILES && in[2 + qi].n)
            rc = quantile_warning(c, args[2 + qi], in[2 + qi].s[0].v);
    }
    if (!rc) rc = hist_groups(c, ic, &in[ic->vidx]);
    for (size_t qi = 0; qi < nq && !rc; qi++) {
        for (size_t g = 0; g < ic->nhg && !rc; g++) {
            hgroup *hg = &ic->hg[g];
            const hcache *h = &ic->hc[hg->src];
            pq_sample s = {h->ol, h->nol, h->oh, 0, ts, hg->src, 1};
            if (ic->id == VG_PQ_FN_HISTOGRAM_FRACTION) {
                if (!in[0].n || !in[1].n) return VG_OK;
                s.v = pq_bucket_fraction(in[0].s[0].v, in[1].s[0].v, hg->b, hg->nb);
            } else {
                pq_vector *qv = &in[ic->id == VG_PQ_FN_HISTOGRAM_QUANTILES ? 2 + qi : 0];
                if (!qv->n) return VG_OK;
                int forced;
                s.v = pq_bucket_quantile(qv->s[0].v, hg->b, hg->nb, &forced);
                if (forced) rc = forced_info(c, args[ic->vidx]);
                if (!rc && ic->id == VG_PQ_FN_HISTOGRAM_QUANTILES) {
                    lset *ls = NULL;
                    rc = quantile_labels(c, ic, h, qi, qv->s[0].v, &ls);
                    if (!rc) s.lbl = ls->l, s.nlbl = ls->n, s.hash = ls->h;
                }
            }
            if (!rc) rc = pq_vec_push(c, out, &s);
        }
    }
    return rc;
}

/* ---- the per-step dispatcher ---- */

static double arg0(pq_vector *in, size_t i, double dflt)
{
    return in[i].n ? in[i].s[0].v : dflt;
}

static vg_err_t push_value(pq_ctx *c, pq_vector *out, int64_t ts, double v)
{
    pq_sample s = {NULL, 0, vg_labels_hash(NULL, 0), v, ts, 0, 0};
    return pq_vec_push(c, out, &s);
}

static int is_date_fn(vg_pq_fn_id id)
{
    switch (id) {
    case VG_PQ_FN_DAY_OF_MONTH:
    case VG_PQ_FN_DAY_OF_WEEK:
    case VG_PQ_FN_DAY_OF_YEAR:
    case VG_PQ_FN_DAYS_IN_MONTH:
    case VG_PQ_FN_HOUR:
    case VG_PQ_FN_MINUTE:
    case VG_PQ_FN_MONTH:
    case VG_PQ_FN_YEAR: return 1;
    default: return 0;
    }
}

/* Apply a float function to every sample of in[0], marking drop_name. */
static vg_err_t map_samples(pq_ctx *c, icall *ic, pq_vector *in, pq_vector *out)
{
    double lo = -INFINITY, hi = INFINITY, inv = 1;
    vg_pq_fn_id id = ic->id;
    if (id == VG_PQ_FN_CLAMP) lo = arg0(in, 1, NAN), hi = arg0(in, 2, NAN);
    if (id == VG_PQ_FN_CLAMP_MIN) lo = arg0(in, 1, NAN);
    if (id == VG_PQ_FN_CLAMP_MAX) hi = arg0(in, 1, NAN);
    if ((id == VG_PQ_FN_CLAMP || id == VG_PQ_FN_CLAMP_MIN || id == VG_PQ_FN_CLAMP_MAX) && hi < lo)
        return VG_OK;
    if (id == VG_PQ_FN_ROUND) inv = 1.0 / (ic->n->u.call.nargs >= 2 ? arg0(in, 1, NAN) : 1);
    for (size_t i = 0; i < in[0].n; i++) {
        pq_sample s = in[0].s[i];
        double f = s.v;
        switch (id) {
        case VG_PQ_FN_CLAMP:
        case VG_PQ_FN_CLAMP_MIN:
        case VG_PQ_FN_CLAMP_MAX: s.v = go_max(lo, go_min(hi, f)); break;
        case VG_PQ_FN_ROUND: s.v = floor(f * inv + 0.5) / inv; break;
        case VG_PQ_FN_TIMESTAMP: s.v = (double)s.t / 1000; break;
        default: s.v = is_date_fn(id) ? date_fn(id, f) : math_fn(id, f); break;
        }
        s.drop_name = 1;
        vg_err_t rc = pq_vec_push(c, out, &s);
        if (rc) return rc;
    }
    return VG_OK;
}

static vg_err_t inst_step(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud)
{
    icall *ic = ud;
    pq_ctx *c = ev->c;
    switch (ic->id) {
    case VG_PQ_FN_TIME: return push_value(c, out, ts, (double)ts / 1000);
    case VG_PQ_FN_PI: return push_value(c, out, ts, M_PI);
    case VG_PQ_FN_START: return push_value(c, out, ts, (double)c->q_start / 1000);
    case VG_PQ_FN_END: return push_value(c, out, ts, (double)c->q_end / 1000);
    case VG_PQ_FN_RANGE: return push_value(c, out, ts, (double)(c->q_end - c->q_start) / 1000);
    case VG_PQ_FN_STEP: return push_value(c, out, ts, (double)c->q_step / 1000);
    case VG_PQ_FN_MIN_OF: return push_value(c, out, ts, go_min(arg0(in, 0, NAN), arg0(in, 1, NAN)));
    case VG_PQ_FN_MAX_OF: return push_value(c, out, ts, go_max(arg0(in, 0, NAN), arg0(in, 1, NAN)));
    case VG_PQ_FN_VECTOR: return push_value(c, out, ts, arg0(in, 0, NAN));
    case VG_PQ_FN_SCALAR: return push_value(c, out, ts, in[0].n == 1 ? in[0].s[0].v : NAN);
    case VG_PQ_FN_ABSENT:
        if (in[0].n) return VG_OK;
        {
            pq_sample s = {ic->absent.l, ic->absent.n, ic->absent.h, 1, ts, 0, 0};
            return pq_vec_push(c, out, &s);
        }
    case VG_PQ_FN_SORT:
    case VG_PQ_FN_SORT_DESC:
    case VG_PQ_FN_SORT_BY_LABEL:
    case VG_PQ_FN_SORT_BY_LABEL_DESC: return sort_step(c, ic, in, out);
    case VG_PQ_FN_HISTOGRAM_QUANTILE:
    case VG_PQ_FN_HISTOGRAM_QUANTILES:
    case VG_PQ_FN_HISTOGRAM_FRACTION: return hist_step(ev, ic, in, ts, out);
    case VG_PQ_FN_HISTOGRAM_AVG:
    case VG_PQ_FN_HISTOGRAM_COUNT:
    case VG_PQ_FN_HISTOGRAM_SUM:
    case VG_PQ_FN_HISTOGRAM_STDDEV:
    case VG_PQ_FN_HISTOGRAM_STDVAR: return VG_OK; /* native histograms only */
    default:
        if (is_date_fn(ic->id) && ic->n->u.call.nargs == 0)
            return push_value(c, out, ts, date_fn(ic->id, (double)(ts / 1000)));
        return map_samples(c, ic, in, out);
    }
}

static void icall_free(icall *ic)
{
    for (size_t i = 0; i < ic->caphg; i++) vg_free(ic->hg[i].b);
    vg_free(ic->hg);
    vg_free(ic->hc);
    vg_free(ic->qsets);
    pq_map_free(&ic->gmap);
    pq_map_free(&ic->qmap);
}

static vg_err_t prepare_icall(pq_ev *ev, icall *ic)
{
    pq_ctx *c = ev->c;
    vg_pq_call *call = &ic->n->u.call;
    vg_err_t rc = VG_OK;
    if (ic->id == VG_PQ_FN_ABSENT) {
        rc = absent_labels(c, call->args[0], &ic->absent.l, &ic->absent.n);
        ic->absent.h = vg_labels_hash(ic->absent.l, ic->absent.n);
    }
    if (ic->id == VG_PQ_FN_SORT_BY_LABEL || ic->id == VG_PQ_FN_SORT_BY_LABEL_DESC) {
        ic->nsort = call->nargs - 1;
        ic->sort_labels = vg_arena_alloc(c->arena, (ic->nsort + 1) * sizeof(char *));
        if (!ic->sort_labels) return VG_ENOMEM;
        for (size_t i = 0; i < ic->nsort; i++)
            ic->sort_labels[i] = pq_unwrap(call->args[i + 1])->u.str;
    }
    if (ic->id == VG_PQ_FN_HISTOGRAM_QUANTILE) ic->vidx = 1;
    if (ic->id == VG_PQ_FN_HISTOGRAM_FRACTION) ic->vidx = 2;
    if (ic->id == VG_PQ_FN_HISTOGRAM_QUANTILE || ic->id == VG_PQ_FN_HISTOGRAM_FRACTION ||
        ic->id == VG_PQ_FN_HISTOGRAM_QUANTILES) {
        ic->nhc = ic->args[ic->vidx].m.n;
        ic->hc = vg_calloc(ic->nhc ? ic->nhc : 1, sizeof(hcache));
        if (!ic->hc) return VG_ENOMEM;
    }
    return rc;
}

static vg_err_t eval_instant_call(pq_ev *ev, vg_pq_node *n, vg_pq_fn_id id, pq_matrix *out)
{
    vg_pq_call *call = &n->u.call;
    pq_value args[16] = {{0}};
    icall ic = {0};
    vg_err_t rc = VG_OK;
    size_t na = call->nargs < 16 ? call->nargs : 16; /* later ones can only be strings */
    for (size_t i = 16; i < call->nargs; i++)
        if (pq_node_type(call->args[i]) != VG_PQ_TYPE_STRING)
            return pq_fail(ev->c, VG_EINVAL, "too many arguments to %s", call->name);
    ic.n = n;
    ic.id = id;
    ic.args = args;
    for (size_t i = 0; i < na && !rc; i++) {
        if (pq_node_type(call->args[i]) == VG_PQ_TYPE_STRING)
            args[i].type = VG_PQ_TYPE_STRING;
        else
            rc = pq_eval(ev, call->args[i], &args[i]);
    }
    if (!rc) rc = prepare_icall(ev, &ic);
    if (!rc) rc = pq_range_eval(ev, args, na, inst_step, &ic, out);
    for (size_t i = 0; i < na; i++) pq_value_free(ev->c, &args[i]);
    icall_free(&ic);
    return rc;
}

/* ================================================== label_replace / join */

/* Go's Regexp.Expand for label_replace: $1, ${1}, $name, ${name}, $$. */
static vg_err_t expand(vg_buf *b, const char *tmpl, const char *src, PCRE2_SIZE *ov, int nov,
                       pcre2_code *re)
{
    for (const char *p = tmpl; *p;) {
        if (*p != '$') {
            vg_buf_putc(b, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            vg_buf_putc(b, '$');
            p++;
            continue;
        }
        const char *name = p;
        size_t len = 0;
        int braced = *p == '{';
        if (braced) {
            name = ++p;
            while (p[len] && p[len] != '}') len++;
            if (!p[len] || len == 0) {
                vg_buf_putc(b, '$');
                p = name - 1;
                continue;
            }
            p += len + 1;
        } else {
            while ((p[len] >= 'a' && p[len] <= 'z') || (p[len] >= 'A' && p[len] <= 'Z') ||
                   (p[len] >= '0' && p[len] <= '9') || p[len] == '_')
                len++;
            if (len == 0) {
                vg_buf_putc(b, '$');
                continue;
            }
            p += len;
        }
        char nm[256];
        if (len >= sizeof(nm)) continue;
        memcpy(nm, name, len);
        nm[len] = 0;
        int grp = -1, numeric = 1;
        for (size_t i = 0; i < len; i++) numeric &= nm[i] >= '0' && nm[i] <= '9';
        if (numeric)
            grp = len < 9 ? atoi(nm) : -1;
        else
            grp = pcre2_substring_number_from_name(re, (PCRE2_SPTR)nm);
        if (grp < 0 || grp >= nov || ov[2 * grp] == PCRE2_UNSET) continue;
        vg_buf_append(b, src + ov[2 * grp], ov[2 * grp + 1] - ov[2 * grp]);
    }
    return VG_OK;
}

static int ts_cmp(const void *a, const void *b)
{
    int64_t x = ((const int64_t *)a)[0], y = ((const int64_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* Append series b's points to a, keep time order; equal timestamps mean
 * two series with one label set at one time: an error. */
static vg_err_t merge_into(pq_ctx *c, pq_series *a, pq_series *b)
{
    size_t n = a->n + b->n;
    int64_t(*pairs)[2] = vg_malloc((n ? n : 1) * sizeof(*pairs));
    if (!pairs) return VG_ENOMEM;
    for (size_t i = 0; i < a->n; i++) pairs[i][0] = a->t[i], memcpy(&pairs[i][1], &a->v[i], 8);
    for (size_t i = 0; i < b->n; i++)
        pairs[a->n + i][0] = b->t[i], memcpy(&pairs[a->n + i][1], &b->v[i], 8);
    qsort(pairs, n, sizeof(*pairs), ts_cmp);
    vg_err_t rc = VG_OK;
    for (size_t i = 1; i < n && !rc; i++)
        if (pairs[i][0] == pairs[i - 1][0])
            rc = pq_fail(c, VG_EINVAL, "vector cannot contain metrics with the same labelset");
    a->n = 0;
    b->n = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        double v;
        memcpy(&v, &pairs[i][1], 8);
        rc = pq_series_push(c, a, pairs[i][0], v);
    }
    pq_samples_sub(c, n); /* the points were already counted in a and b */
    vg_free(pairs);
    return rc;
}

vg_err_t pq_merge_same_labels(pq_ctx *c, pq_matrix *m)
{
    pq_map seen = {0};
    vg_err_t rc = VG_OK;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        size_t j;
        if (!rc && pq_map_get(&seen, m->s[i].hash, &j)) {
            rc = merge_into(c, &m->s[j], &m->s[i]);
            pq_samples_sub(c, m->s[i].n);
            vg_free(m->s[i].t);
            vg_free(m->s[i].v);
            continue;
        }
        m->s[k] = m->s[i];
        if (!rc) rc = pq_map_put(&seen, m->s[k].hash, k);
        k++;
    }
    m->n = k;
    pq_map_free(&seen);
    return rc;
}

static const char *str_arg(vg_pq_node *n, size_t i)
{
    vg_pq_node *a = pq_unwrap(n->u.call.args[i]);
    return a && a->kind == VG_PQ_STRING ? a->u.str : "";
}

static vg_err_t relabel(pq_ctx *c, pq_series *s, const char *dst, const char *val)
{
    const vg_label_t *l;
    size_t n;
    vg_err_t rc = pq_lbl_set(c, s->lbl, s->nlbl, dst, val, &l, &n);
    if (rc) return rc;
    s->lbl = l;
    s->nlbl = n;
    s->hash = vg_labels_hash(l, n);
    if (strcmp(dst, VG_METRIC_NAME) == 0) s->drop_name = 0;
    return VG_OK;
}

static vg_err_t label_replace(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    pq_ctx *c = ev->c;
    const char *dst = str_arg(n, 1), *repl = str_arg(n, 2), *src = str_arg(n, 3);
    const char *regex = str_arg(n, 4);
    char *pat = vg_arena_sprintf(c->arena, "(?s:%s)", regex);
    int code;
    PCRE2_SIZE off;
    if (!pat) return VG_ENOMEM;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                      PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                      &code, &off, NULL);
    if (!re)
        return pq_fail(c, VG_EINVAL, "invalid regular expression in label_replace(): %s", regex);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    vg_err_t rc = md ? VG_OK : VG_ENOMEM;
    if (!rc && !pq_utf8_valid(dst, strlen(dst)))
        rc = pq_fail(c, VG_EINVAL, "invalid destination label name in label_replace(): %s", dst);
    pq_value v = {0};
    if (!rc) rc = pq_eval(ev, n->u.call.args[0], &v);
    vg_buf b;
    vg_buf_init(&b, 1 << 20);
    for (size_t i = 0; !rc && i < v.m.n; i++) {
        pq_series *s = &v.m.s[i];
        const char *sv = vg_labels_get(s->lbl, s->nlbl, src);
        if (!sv) sv = "";
        if (pcre2_match(re, (PCRE2_SPTR)sv, strlen(sv), 0, 0, md, NULL) < 0) continue;
        vg_buf_reset(&b);
        expand(&b, repl, sv, pcre2_get_ovector_pointer(md), (int)pcre2_get_ovector_count(md), re);
        const char *val = vg_arena_strndup(c->arena, b.data ? b.data : "", b.data ? b.len : 0);
        rc = val ? relabel(c, s, dst, val) : VG_ENOMEM;
    }
    vg_buf_free(&b);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    if (!rc) rc = pq_merge_same_labels(c, &v.m);
    if (rc) {
        pq_value_free(c, &v);
        return rc;
    }
    *out = v.m;
    return VG_OK;
}

static vg_err_t label_join(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    pq_ctx *c = ev->c;
    const char *dst = str_arg(n, 1), *sep = str_arg(n, 2);
    size_t nsrc = n->u.call.nargs > 3 ? n->u.call.nargs - 3 : 0;
    for (size_t i = 0; i < nsrc; i++) {
        const char *s = str_arg(n, 3 + i);
        if (!pq_utf8_valid(s, strlen(s)))
            return pq_fail(c, VG_EINVAL, "invalid source label name in label_join(): %s", s);
    }
    if (!pq_utf8_valid(dst, strlen(dst)))
        return pq_fail(c, VG_EINVAL, "invalid destination label name in label_join(): %s", dst);
    pq_value v = {0};
    vg_err_t rc = pq_eval(ev, n->u.call.args[0], &v);
    vg_buf b;
    vg_buf_init(&b, 1 << 20);
    for (size_t i = 0; !rc && i < v.m.n; i++) {
        pq_series *s = &v.m.s[i];
        vg_buf_reset(&b);
        for (size_t k = 0; k < nsrc; k++) {
            const char *sv = vg_labels_get(s->lbl, s->nlbl, str_arg(n, 3 + k));
            if (k) vg_buf_puts(&b, sep);
            if (sv) vg_buf_puts(&b, sv);
        }
        const char *val = vg_arena_strndup(c->arena, b.data ? b.data : "", b.data ? b.len : 0);
        rc = val ? relabel(c, s, dst, val) : VG_ENOMEM;
    }
    vg_buf_free(&b);
    if (!rc) rc = pq_merge_same_labels(c, &v.m);
    if (rc) {
        pq_value_free(c, &v);
        return rc;
    }
    *out = v.m;
    return VG_OK;
}

/* ============================================================ dispatcher */

static int range_arg(vg_pq_node *n, size_t *idx)
{
    for (size_t i = 0; i < n->u.call.nargs; i++) {
        vg_pq_node *a = pq_unwrap(n->u.call.args[i]);
        if (a->kind == VG_PQ_MATRIX_SEL || a->kind == VG_PQ_SUBQUERY) {
            *idx = i;
            return 1;
        }
    }
    return 0;
}

static vg_err_t eval_timestamp_sel(pq_ev *ev, vg_pq_node *sel, pq_matrix *out)
{
    vg_err_t rc = pq_eval_vector_sel(ev, sel, 1, out);
    for (size_t i = 0; !rc && i < out->n; i++) out->s[i].drop_name = 1;
    return rc;
}

vg_err_t pq_eval_call(pq_ev *ev, vg_pq_node *n, pq_matrix *out)
{
    vg_pq_fn_id id = pq_call_id(n);
    size_t m;
    switch (id) {
    case VG_PQ_FN__COUNT:
        return pq_fail(ev->c, VG_EINVAL, "unknown function with name \"%s\"",
                       n->u.call.name ? n->u.call.name : "");
    case VG_PQ_FN_INFO:
    case VG_PQ_FN_INTEGRAL:
        return pq_fail(ev->c, VG_EUNSUPPORTED, "function %s() is not supported", n->u.call.name);
    case VG_PQ_FN_LABEL_REPLACE: return label_replace(ev, n, out);
    case VG_PQ_FN_LABEL_JOIN: return label_join(ev, n, out);
    case VG_PQ_FN_SORT:
    case VG_PQ_FN_SORT_DESC:
    case VG_PQ_FN_SORT_BY_LABEL:
    case VG_PQ_FN_SORT_BY_LABEL_DESC:
        if (ev->c->range_query) {
            vg_err_t rc = pq_annotate(ev->c, 0, n,
                                      "PromQL warning: sort is ineffective for range queries "
                                      "since results are always ordered by labels");
            if (rc) return rc;
        }
        break;
    case VG_PQ_FN_TIMESTAMP:
        if (n->u.call.nargs == 1 && pq_unwrap(n->u.call.args[0])->kind == VG_PQ_VECTOR_SEL)
            return eval_timestamp_sel(ev, pq_unwrap(n->u.call.args[0]), out);
        break;
    default: break;
    }
    if (range_arg(n, &m)) return eval_range_call(ev, n, id, m, out);
    return eval_instant_call(ev, n, id, out);
}
