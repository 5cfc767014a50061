/*
 * functions_table.h - the PromQL function table: names, argument and return
 * types, and a stable id per function.
 *
 * The parser resolves a call to a table entry and checks argument counts and
 * types against it (with Prometheus's messages); the evaluator switches on
 * the entry's id, or indexes its own array of implementations by id. The
 * table itself is const and shared by all threads, so the implementation
 * "slot" is the id: the evaluator keeps `impl[VG_PQ_FN__COUNT]` in its own
 * file rather than writing pointers into a shared table.
 *
 * Argument rules follow Prometheus's Function.Variadic exactly:
 *   variadic == -1  exactly nargs arguments;
 *   variadic ==  0  the last type repeats: at least nargs-1 arguments, no maximum;
 *   variadic  >  0  the last argument is optional and may repeat: between
 *                   nargs-1 and nargs-1+variadic arguments.
 * min_args/max_args spell that out (max_args -1 = unlimited). Arguments past
 * the end of arg_types have the last type.
 */
#ifndef VIGIL_PROMQL_FUNCTIONS_TABLE_H
#define VIGIL_PROMQL_FUNCTIONS_TABLE_H

#include "promql/ast.h"

/* In the byte order of the names, so an id is also the table index. */
typedef enum vg_pq_fn_id {
    VG_PQ_FN_ABS,
    VG_PQ_FN_ABSENT,
    VG_PQ_FN_ABSENT_OVER_TIME,
    VG_PQ_FN_ACOS,
    VG_PQ_FN_ACOSH,
    VG_PQ_FN_ASIN,
    VG_PQ_FN_ASINH,
    VG_PQ_FN_ATAN,
    VG_PQ_FN_ATANH,
    VG_PQ_FN_AVG_OVER_TIME,
    VG_PQ_FN_CEIL,
    VG_PQ_FN_CHANGES,
    VG_PQ_FN_CLAMP,
    VG_PQ_FN_CLAMP_MAX,
    VG_PQ_FN_CLAMP_MIN,
    VG_PQ_FN_COS,
    VG_PQ_FN_COSH,
    VG_PQ_FN_COUNT_OVER_TIME,
    VG_PQ_FN_DAY_OF_MONTH,
    VG_PQ_FN_DAY_OF_WEEK,
    VG_PQ_FN_DAY_OF_YEAR,
    VG_PQ_FN_DAYS_IN_MONTH,
    VG_PQ_FN_DEG,
    VG_PQ_FN_DELTA,
    VG_PQ_FN_DERIV,
    VG_PQ_FN_DOUBLE_EXPONENTIAL_SMOOTHING,
    VG_PQ_FN_END,
    VG_PQ_FN_EXP,
    VG_PQ_FN_FIRST_OVER_TIME,
    VG_PQ_FN_FLOOR,
    VG_PQ_FN_HISTOGRAM_AVG,
    VG_PQ_FN_HISTOGRAM_COUNT,
    VG_PQ_FN_HISTOGRAM_FRACTION,
    VG_PQ_FN_HISTOGRAM_QUANTILE,
    VG_PQ_FN_HISTOGRAM_QUANTILES,
    VG_PQ_FN_HISTOGRAM_STDDEV,
    VG_PQ_FN_HISTOGRAM_STDVAR,
    VG_PQ_FN_HISTOGRAM_SUM,
    VG_PQ_FN_HOUR,
    VG_PQ_FN_IDELTA,
    VG_PQ_FN_INCREASE,
    VG_PQ_FN_INFO,
    VG_PQ_FN_INTEGRAL,
    VG_PQ_FN_IRATE,
    VG_PQ_FN_LABEL_JOIN,
    VG_PQ_FN_LABEL_REPLACE,
    VG_PQ_FN_LAST_OVER_TIME,
    VG_PQ_FN_LN,
    VG_PQ_FN_LOG10,
    VG_PQ_FN_LOG2,
    VG_PQ_FN_MAD_OVER_TIME,
    VG_PQ_FN_MAX_OF,
    VG_PQ_FN_MAX_OVER_TIME,
    VG_PQ_FN_MIN_OF,
    VG_PQ_FN_MIN_OVER_TIME,
    VG_PQ_FN_MINUTE,
    VG_PQ_FN_MONTH,
    VG_PQ_FN_PI,
    VG_PQ_FN_PREDICT_LINEAR,
    VG_PQ_FN_PRESENT_OVER_TIME,
    VG_PQ_FN_QUANTILE_OVER_TIME,
    VG_PQ_FN_RAD,
    VG_PQ_FN_RANGE,
    VG_PQ_FN_RATE,
    VG_PQ_FN_RESETS,
    VG_PQ_FN_ROUND,
    VG_PQ_FN_SCALAR,
    VG_PQ_FN_SGN,
    VG_PQ_FN_SIN,
    VG_PQ_FN_SINH,
    VG_PQ_FN_SORT,
    VG_PQ_FN_SORT_BY_LABEL,
    VG_PQ_FN_SORT_BY_LABEL_DESC,
    VG_PQ_FN_SORT_DESC,
    VG_PQ_FN_SQRT,
    VG_PQ_FN_START,
    VG_PQ_FN_STDDEV_OVER_TIME,
    VG_PQ_FN_STDVAR_OVER_TIME,
    VG_PQ_FN_STEP,
    VG_PQ_FN_SUM_OVER_TIME,
    VG_PQ_FN_TAN,
    VG_PQ_FN_TANH,
    VG_PQ_FN_TIME,
    VG_PQ_FN_TIMESTAMP,
    VG_PQ_FN_TS_OF_FIRST_OVER_TIME,
    VG_PQ_FN_TS_OF_LAST_OVER_TIME,
    VG_PQ_FN_TS_OF_MAX_OVER_TIME,
    VG_PQ_FN_TS_OF_MIN_OVER_TIME,
    VG_PQ_FN_VECTOR,
    VG_PQ_FN_YEAR,
    VG_PQ_FN__COUNT
} vg_pq_fn_id;

struct vg_pq_func {
    const char *name;
    vg_pq_fn_id id;
    const vg_pq_type *arg_types;
    int nargs;    /* entries in arg_types */
    int variadic; /* see the file comment */
    vg_pq_type ret;
    int experimental;       /* behind Prometheus's promql-experimental-functions flag */
    int min_args, max_args; /* max_args -1 = unlimited */
};

/* The entry for a function name (case-sensitive, as Prometheus), or NULL. */
const vg_pq_func *vg_pq_func_lookup(const char *name);
/* The entry with this id, or NULL when out of range. */
const vg_pq_func *vg_pq_func_by_id(vg_pq_fn_id id);
/* All entries, sorted by name; *n gets the count (VG_PQ_FN__COUNT). */
const vg_pq_func *vg_pq_func_all(size_t *n);

/* Prometheus's spelling of an aggregation ("sum", "count_values"...). */
const char *vg_pq_aggop_name(vg_pq_aggop op);
/* Prometheus's spelling of a binary operator ("+", "==", "and", "atan2"...). */
const char *vg_pq_op_name(vg_pq_op op);
/* Prometheus's name of a value type in messages ("scalar", "instant vector",
 * "range vector", "string"). */
const char *vg_pq_type_name(vg_pq_type t);
/* Go's ValueType String() ("scalar", "vector", "matrix", "string", "none"):
 * the words of parse_query's JSON and of the subquery type error. */
const char *vg_pq_value_type_name(vg_pq_type t);

#endif
