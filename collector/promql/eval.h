/*
 * eval.h - internals of the PromQL evaluator, shared by eval.c and the
 * eval_*.c files split by concern (selectors, binary operators,
 * aggregations, functions). Not a public interface: engine.h is.
 *
 * Shape, following Prometheus's engine: every expression evaluates over all
 * steps of the query at once, to a matrix (one series per label set, a point
 * per step where it has a value). An instant query is a range query with one
 * step. Scalars are a matrix with one unlabelled series holding every step.
 * Operators that work per step (binary operators, most functions) go through
 * pq_range_eval, which gathers one vector per step from the argument
 * matrices and assembles the outputs back into series; selectors, range
 * functions and aggregations walk their inputs series by series instead.
 *
 * Memory: labels and strings live in the query arena (they are few and live
 * for the whole query); sample points live in per-series heap arrays that are
 * freed as soon as the parent node has consumed them, and every point held is
 * counted against max_samples, so a query's footprint is capped.
 * The metric name is removed late, as with Prometheus 3's delayed name
 * removal: a series carries drop_name and the name goes at the very end.
 */
#ifndef VIGIL_PROMQL_EVAL_H
#define VIGIL_PROMQL_EVAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "promql/engine.h"
#include "promql/functions_table.h"

#define PQ_DEFAULT_SUBQUERY_STEP_MS 60000

typedef struct pq_series {
    const vg_label_t *lbl; /* sorted, in the query arena */
    size_t nlbl;
    uint64_t hash; /* vg_labels_hash of lbl */
    int64_t *t;    /* heap; n points in time order */
    double *v;
    size_t n, cap;
    size_t cur;    /* gather cursor */
    int drop_name; /* delete __name__ at the end of the query */
} pq_series;

typedef struct pq_matrix {
    pq_series *s;
    size_t n, cap;
} pq_matrix;

typedef struct pq_value {
    vg_pq_type type; /* SCALAR, VECTOR, MATRIX: m; STRING: str */
    pq_matrix m;
    const char *str;
} pq_value;

/* One element of a per-step vector; src is the index of the series it came
 * from in the argument matrix, so per-series work can be cached. */
typedef struct pq_sample {
    const vg_label_t *lbl;
    size_t nlbl;
    uint64_t hash;
    double v;
    int64_t t;
    size_t src;
    int drop_name;
} pq_sample;

typedef struct pq_vector {
    pq_sample *s;
    size_t n, cap;
} pq_vector;

typedef struct pq_anno {
    const char *msg;
    size_t pos;
    int has_pos, info;
} pq_anno;

/* Per-query state. */
typedef struct pq_ctx {
    vg_arena_t *arena;
    vg_queryable q;
    const char *query; /* text, for annotation positions; may be NULL */
    size_t qlen;
    int64_t lookback_ms, deadline_ms;
    uint64_t max_samples, cur_samples;
    int64_t q_start, q_end, q_step; /* the query's own range (start()/end()/step()) */
    int range_query;
    pq_anno *annos;
    size_t nannos, cap_annos;
    vg_error *err;
    uint64_t ticks; /* deadline checks are throttled */
    int sel_aggr;   /* 1 + the vg_aggr_kind the next selector's function needs; 0 = plain */
} pq_ctx;

/* One evaluation frame: the steps the current subtree is evaluated at. */
typedef struct pq_ev {
    pq_ctx *c;
    int64_t start, end, interval;
} pq_ev;

/* Select through c->q; a store queryable also gets the aggregate hint
 * (downsampled tiers, tsdb/tiers.h). */
vg_err_t pq_select(pq_ctx *c, vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                   int aggr_hint, vg_seriesset_t **out, vg_error *err);
/* True when c->q is the store's queryable (it honours the hint). */
int pq_select_aggregates(const pq_ctx *c);

/* ---- eval.c: core ---- */
vg_err_t pq_eval(pq_ev *ev, vg_pq_node *n, pq_value *out);
/* The result type of a node (independent of what the parser filled in). */
vg_pq_type pq_node_type(const vg_pq_node *n);
/* Skip parentheses and step-invariant wrappers. */
vg_pq_node *pq_unwrap(vg_pq_node *n);
/* Function id of a call node, or VG_PQ_FN__COUNT when unknown. */
vg_pq_fn_id pq_call_id(const vg_pq_node *n);
size_t pq_nsteps(const pq_ev *ev);

vg_err_t pq_fail(pq_ctx *c, vg_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
vg_err_t pq_tick(pq_ctx *c);         /* throttled deadline check, VG_ERETRY past it */
vg_err_t pq_deadline(pq_ctx *c);     /* unthrottled */
vg_err_t pq_samples_over(pq_ctx *c); /* the max_samples error */
/* Count n more points held; the error past max_samples. Inline: once per
 * output point. */
static inline vg_err_t pq_samples_add(pq_ctx *c, size_t n)
{
    c->cur_samples += n;
    if (c->max_samples && c->cur_samples > c->max_samples) return pq_samples_over(c);
    return VG_OK;
}
void pq_samples_sub(pq_ctx *c, size_t n);
/* Annotations: kind 0 warning, 1 info; node may be NULL (no position). */
vg_err_t pq_annotate(pq_ctx *c, int info, const vg_pq_node *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Matrices. pq_mat_add returns the new series' index in *idx. */
vg_err_t pq_mat_add(pq_ctx *c, pq_matrix *m, const vg_label_t *l, size_t nl, uint64_t hash,
                    int drop_name, size_t *idx);
vg_err_t pq_series_push(pq_ctx *c, pq_series *s, int64_t t, double v);
/* Capacity for n points (not counted: only pushed points are). */
vg_err_t pq_series_reserve(pq_series *s, size_t n);
void pq_mat_free(pq_ctx *c, pq_matrix *m);
void pq_value_free(pq_ctx *c, pq_value *v);
size_t pq_mat_points(const pq_matrix *m);
/* A scalar matrix: one unlabelled series with v at every step. */
vg_err_t pq_scalar_const(pq_ev *ev, double v, pq_matrix *out);
/* Sort series by labels (Prometheus's labels.Compare). */
void pq_mat_sort(pq_matrix *m);

vg_err_t pq_vec_push(pq_ctx *c, pq_vector *v, const pq_sample *s);
void pq_vec_free(pq_vector *v);

/* Labels (results in the query arena). */
vg_err_t pq_lbl_copy(pq_ctx *c, const vg_label_t *l, size_t n, const vg_label_t **out);
/* l with name set to value (value "" deletes it). */
vg_err_t pq_lbl_set(pq_ctx *c, const vg_label_t *l, size_t n, const char *name, const char *value,
                    const vg_label_t **out, size_t *nout);
/* l without the names in del (any order) and, if drop_name, without __name__. */
vg_err_t pq_lbl_without(pq_ctx *c, const vg_label_t *l, size_t n, const char *const *del,
                        size_t ndel, int drop_name, const vg_label_t **out, size_t *nout);
/* l restricted to the names in keep. */
vg_err_t pq_lbl_keep(pq_ctx *c, const vg_label_t *l, size_t n, const char *const *keep,
                     size_t nkeep, const vg_label_t **out, size_t *nout);
/* Hash of the subset (keep != 0: only names; keep == 0: all but names and __name__)
 * without allocating. */
uint64_t pq_lbl_hash_subset(const vg_label_t *l, size_t n, const char *const *names, size_t nn,
                            int keep);
/* Prometheus's Labels.String(): {a="b", c="d"}, into the arena. */
const char *pq_lbl_string(pq_ctx *c, const vg_label_t *l, size_t n);
const char *pq_metric_name(const vg_label_t *l, size_t n);
/* Non-empty valid UTF-8 (Prometheus 3's label name rule). */
int pq_utf8_valid(const char *s, size_t n);

/* Gather the points at ts of every series of m into vec (cursor based). */
vg_err_t pq_gather(pq_ctx *c, pq_matrix *m, int64_t ts, pq_vector *vec);

/* A per-step callback: in[i] is the i-th argument's vector at ts (empty for
 * strings); append results to out (labels must outlive the query step). */
typedef vg_err_t (*pq_step_fn)(pq_ev *ev, pq_vector *in, int64_t ts, pq_vector *out, void *ud);
/* Run fn over every step of ev with the argument values (consumed: their
 * cursors move, not their points) and assemble the outputs into *out. */
vg_err_t pq_range_eval(pq_ev *ev, pq_value *args, size_t nargs, pq_step_fn fn, void *ud,
                       pq_matrix *out);

/* Small open-addressing map uint64 -> size_t. */
typedef struct pq_map {
    uint64_t *keys;
    size_t *vals;
    unsigned char *used;
    size_t cap, n;
} pq_map;
vg_err_t pq_map_put(pq_map *m, uint64_t k, size_t v);
int pq_map_get(const pq_map *m, uint64_t k, size_t *v);
void pq_map_clear(pq_map *m);
void pq_map_free(pq_map *m);

/* Go's strconv.FormatFloat(v, 'f', -1, 64) into buf (>= 400 bytes). */
const char *pq_fmt_float_f(double v, char *buf);

/* ---- eval_selectors.c ---- */
/* ts_mode: values are the sample timestamps in seconds (timestamp()). */
vg_err_t pq_eval_vector_sel(pq_ev *ev, vg_pq_node *n, int ts_mode, pq_matrix *out);
/* A matrix selector at one instant (the top of an instant query). */
vg_err_t pq_eval_matrix_sel(pq_ev *ev, vg_pq_node *n, pq_matrix *out);
/* The reference time of a selector/subquery at step ts (offset and @ applied). */
int64_t pq_ref_time(const pq_ev *ev, vg_pq_at at, int64_t at_ms, int64_t offset_ms, int64_t ts);

/* The series a range function reads: a matrix selector's raw samples (stale
 * markers removed) or a subquery's result, one series at a time. */
typedef struct pq_rsrc {
    pq_ev *ev;
    vg_seriesset_t *ss; /* matrix selector */
    size_t loaded;      /* raw samples counted against the limit */
    pq_matrix sub;      /* subquery result */
    size_t si;
    /* current series */
    const vg_label_t *lbl;
    size_t nlbl;
    int drop_name;
    const int64_t *t;
    const double *v;
    size_t n;
    int64_t *bt; /* buffer for the selector's series */
    double *bv;
    size_t bcap;
    struct pq_prefetch *pf; /* decodes batches of series on a helper thread */
    /* window */
    int64_t range_ms, offset_ms, at_ms;
    vg_pq_at at;
    int is_selector;
} pq_rsrc;
vg_err_t pq_rsrc_open(pq_ev *ev, vg_pq_node *n, pq_rsrc *src);
/* Decode a selector's series ahead on a helper thread while they are read
 * with pq_rsrc_next (worth it over many series; no-op otherwise). */
void pq_rsrc_prefetch(pq_rsrc *src);
/* Append the current series of ss to the growable arrays *t, *v (*n used,
 * *cap allocated), a chunk at a time, stale markers dropped. */
vg_err_t pq_read_series(vg_seriesset_t *ss, int64_t **t, double **v, size_t *n, size_t *cap);
/* 1 with the next series loaded, 0 at the end, <0 never; errors via *rc. */
int pq_rsrc_next(pq_rsrc *src, vg_err_t *rc);
void pq_rsrc_close(pq_rsrc *src);

/* ---- eval_parallel.c ---- */
#define PQ_PAR_MAX_THREADS 4
/* Evaluate one series: src's t, v, n and window fields are set, o is
 * empty (labels set); append o's points. Runs on any thread: no query state. */
typedef vg_err_t (*pq_series_fn)(void *ud, const pq_rsrc *src, pq_series *o);
/* How many threads a selector's series are worth (<= 1: stay serial). */
size_t pq_par_threads(vg_seriesset_t *ss);
/* Take a slice of evaluated series, in the selection's order: s[0..n), labels
 * still pointing into the set, points not counted against max_samples. It
 * takes the arrays it keeps (sets them NULL); the rest are freed after it.
 * Commits never overlap and may use the query context, on any thread. */
typedef vg_err_t (*pq_commit_fn)(void *ud, pq_series *s, size_t n);
/* Run fn over every series of a selector source opened without prefetch
 * (pq_rsrc_open) on nthr threads (the caller's included), with ud[i] for
 * thread i, and hand the results to commit. The raw samples are counted
 * as pq_rsrc_next counts them, the outputs against the limit while they
 * are made. Errors: the limit and the deadline as the serial path gives
 * them, or the first error of fn or commit. */
vg_err_t pq_rsrc_parallel(pq_rsrc *src, size_t nthr, pq_series_fn fn, void *const *ud,
                          pq_commit_fn commit, void *cud);
/* A range function over a selector on several threads (eval_functions.c),
 * its series handed to commit (drop_name set) instead of kept. accept sees
 * the selection first; when it declines (*mode 2), the call is evaluated
 * into *in as pq_eval would. *mode 0: n is not such a call (a range
 * function whose only argument is a selector), nothing done. */
typedef int (*pq_accept_fn)(void *ud, vg_seriesset_t *ss);
vg_err_t pq_range_call_stream(pq_ev *ev, vg_pq_node *n, pq_accept_fn accept, pq_commit_fn commit,
                              void *ud, pq_value *in, int *mode);

/* ---- eval_subquery in eval.c ---- */
vg_err_t pq_eval_subquery(pq_ev *ev, vg_pq_node *n, pq_matrix *out);

/* ---- eval_binop.c ---- */
vg_err_t pq_eval_binary(pq_ev *ev, vg_pq_node *n, pq_matrix *out);

/* ---- eval_aggr.c ---- */
vg_err_t pq_eval_aggregate(pq_ev *ev, vg_pq_node *n, pq_matrix *out);
/* Prometheus's quantile() over values (sorted in place, NaN first). */
double pq_quantile(double q, double *vals, size_t n);
void pq_sort_values(double *vals, size_t n);
/* Kahan-Neumaier increment. */
static inline void pq_kahan_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* ---- eval_functions.c ---- */
vg_err_t pq_eval_call(pq_ev *ev, vg_pq_node *n, pq_matrix *out);
/* Merge series with equal label sets (after relabelling or dropping names);
 * two points at one timestamp are an error. */
vg_err_t pq_merge_same_labels(pq_ctx *c, pq_matrix *m);

/* ---- eval_hist.c ---- */
typedef struct pq_bucket {
    double le, count;
} pq_bucket;
/* Classic-bucket quantile; *forced set when monotonicity had to be forced. */
double pq_bucket_quantile(double q, pq_bucket *b, size_t n, int *forced);
/* Classic-bucket fraction of observations in [lower, upper]. */
double pq_bucket_fraction(double lower, double upper, pq_bucket *b, size_t n);

/* ---- eval_exec.c ---- */
/* Evaluate a parsed expression (preprocessed in place: step-invariant
 * subtrees get wrapped) over [start, end] every step; range = 0 gives an
 * instant query at start. The result's type follows Prometheus. */
vg_err_t pq_exec(vg_promql_engine_t *e, vg_queryable q, vg_promql_expr_t *expr, int64_t start,
                 int64_t end, int64_t step, int range, vg_promql_result **out, vg_error *err);

#endif
