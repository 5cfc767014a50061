/*
 * engine.h - the PromQL engine: parse, evaluate, format.
 *
 * The engine reads samples through a vg_queryable (a select callback), so
 * the same engine serves the collector's store, the promql-test runner's
 * scratch store, and rule evaluation. Every query has caps on samples loaded
 * and on wall time; past a cap it stops with a clear error instead of
 * exhausting memory or stalling other queries.
 */
#ifndef VIGIL_PROMQL_ENGINE_H
#define VIGIL_PROMQL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "promql/ast.h"
#include "tsdb/tsdb.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"

/* Where the engine reads series: select series matching all matchers with
 * samples in [mint, maxt] (both inclusive, ms). Same contract as vg_tsdb_select. */
typedef struct vg_queryable {
    vg_err_t (*select)(void *ud, vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                       vg_seriesset_t **out, vg_error *err);
    void *ud;
} vg_queryable;

/* A queryable over one tenant of a vg_tsdb_t (ud must point at a vg_tsdb_queryable). */
typedef struct vg_tsdb_queryable {
    vg_tsdb_t *db;
    const char *tenant;
} vg_tsdb_queryable;
vg_queryable vg_queryable_tsdb(vg_tsdb_queryable *q);

typedef struct vg_promql_opts {
    int64_t lookback_ms;  /* default 5m */
    uint64_t max_samples; /* samples loaded at once per query; default 50,000,000 */
    int64_t timeout_ms;   /* default 2m */
} vg_promql_opts;

typedef enum vg_promql_result_type {
    VG_PROMQL_RES_SCALAR = 1,
    VG_PROMQL_RES_VECTOR,
    VG_PROMQL_RES_MATRIX,
    VG_PROMQL_RES_STRING,
} vg_promql_result_type;

typedef struct vg_promql_series {
    vg_label_t *labels; /* sorted */
    size_t nlabels;
    int64_t *ts; /* ms; for a vector: one point at the evaluation time */
    double *v;
    size_t n;
} vg_promql_series;

typedef struct vg_promql_result {
    vg_promql_result_type type;
    vg_promql_series *series; /* vector or matrix, in Prometheus's order */
    size_t nseries;
    int64_t t_ms; /* scalar/string: the evaluation time */
    double scalar;
    const char *string;
    const char **warnings; /* annotations Prometheus returns as warnings */
    size_t nwarnings;
    const char **infos; /* and as infos */
    size_t ninfos;
    vg_arena_t *arena; /* owns everything above */
} vg_promql_result;

typedef struct vg_promql_engine vg_promql_engine_t;

/* New engine; opts may be NULL for defaults. NULL on ENOMEM. */
vg_promql_engine_t *vg_promql_engine_new(const vg_promql_opts *opts);
void vg_promql_engine_free(vg_promql_engine_t *e);

/* Parse a query. VG_EPARSE with Prometheus's message ("1:5: parse error: ...")
 * in err. On success free *out with vg_promql_expr_free. */
vg_err_t vg_promql_parse(const char *q, size_t len, vg_promql_expr_t **out, vg_error *err);
void vg_promql_expr_free(vg_promql_expr_t *e);
/* Print the expression in Prometheus's canonical form (format_query, promtool). */
vg_err_t vg_promql_format(const vg_promql_expr_t *e, vg_buf *out);

/* Evaluate at one instant. Errors: VG_EPARSE (bad_data), VG_ELIMIT (too many
 * samples; execution), VG_ERETRY (timeout), VG_EINVAL (execution error, e.g.
 * "vector cannot contain metrics with the same labelset"). Free *out with
 * vg_promql_result_free. */
vg_err_t vg_promql_instant(vg_promql_engine_t *e, vg_queryable q, const char *query, int64_t t_ms,
                           vg_promql_result **out, vg_error *err);
/* Evaluate over [start, end] every step; the result is a matrix (or a
 * scalar/string turned into a matrix, as Prometheus does). */
vg_err_t vg_promql_range(vg_promql_engine_t *e, vg_queryable q, const char *query, int64_t start_ms,
                         int64_t end_ms, int64_t step_ms, vg_promql_result **out, vg_error *err);
void vg_promql_result_free(vg_promql_result *r);

#endif
