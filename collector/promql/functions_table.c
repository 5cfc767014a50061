/*
 * functions_table.c - the PromQL function table (see functions_table.h).
 *
 * One static const array in name order whose index is the function id, so a
 * lookup by name is a binary search and a lookup by id is an index; nothing
 * is written at run time, so every thread may read it without locks. The
 * signatures are Prometheus 3's (promql/parser/functions.go), experimental
 * functions included: the promqltest corpus enables them.
 */
#include "promql/functions_table.h"

#include <string.h>

static const vg_pq_type A_M[] = {VG_PQ_TYPE_MATRIX};
static const vg_pq_type A_MS[] = {VG_PQ_TYPE_MATRIX, VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_MSS[] = {VG_PQ_TYPE_MATRIX, VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_S[] = {VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_SM[] = {VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_MATRIX};
static const vg_pq_type A_SS[] = {VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_SSV[] = {VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_VECTOR};
static const vg_pq_type A_SV[] = {VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_VECTOR};
static const vg_pq_type A_V[] = {VG_PQ_TYPE_VECTOR};
static const vg_pq_type A_VS[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_VSS[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_SCALAR, VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_VT[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_STRING};
static const vg_pq_type A_VTSS[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_STRING, VG_PQ_TYPE_SCALAR,
                                    VG_PQ_TYPE_SCALAR};
static const vg_pq_type A_VTTT[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_STRING, VG_PQ_TYPE_STRING,
                                    VG_PQ_TYPE_STRING};
static const vg_pq_type A_VTTTT[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_STRING, VG_PQ_TYPE_STRING,
                                     VG_PQ_TYPE_STRING, VG_PQ_TYPE_STRING};
static const vg_pq_type A_VV[] = {VG_PQ_TYPE_VECTOR, VG_PQ_TYPE_VECTOR};

#define F(n, id, args, na, var, ret, exp, mn, mx)                                                  \
    {                                                                                              \
        n, id, args, na, var, VG_PQ_TYPE_##ret, exp, mn, mx                                        \
    }

static const vg_pq_func funcs[VG_PQ_FN__COUNT] = {
    F("abs", VG_PQ_FN_ABS, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("absent", VG_PQ_FN_ABSENT, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("absent_over_time", VG_PQ_FN_ABSENT_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("acos", VG_PQ_FN_ACOS, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("acosh", VG_PQ_FN_ACOSH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("asin", VG_PQ_FN_ASIN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("asinh", VG_PQ_FN_ASINH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("atan", VG_PQ_FN_ATAN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("atanh", VG_PQ_FN_ATANH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("avg_over_time", VG_PQ_FN_AVG_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("ceil", VG_PQ_FN_CEIL, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("changes", VG_PQ_FN_CHANGES, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("clamp", VG_PQ_FN_CLAMP, A_VSS, 3, -1, VECTOR, 0, 3, 3),
    F("clamp_max", VG_PQ_FN_CLAMP_MAX, A_VS, 2, -1, VECTOR, 0, 2, 2),
    F("clamp_min", VG_PQ_FN_CLAMP_MIN, A_VS, 2, -1, VECTOR, 0, 2, 2),
    F("cos", VG_PQ_FN_COS, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("cosh", VG_PQ_FN_COSH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("count_over_time", VG_PQ_FN_COUNT_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("day_of_month", VG_PQ_FN_DAY_OF_MONTH, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("day_of_week", VG_PQ_FN_DAY_OF_WEEK, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("day_of_year", VG_PQ_FN_DAY_OF_YEAR, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("days_in_month", VG_PQ_FN_DAYS_IN_MONTH, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("deg", VG_PQ_FN_DEG, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("delta", VG_PQ_FN_DELTA, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("deriv", VG_PQ_FN_DERIV, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("double_exponential_smoothing", VG_PQ_FN_DOUBLE_EXPONENTIAL_SMOOTHING, A_MSS, 3, -1, VECTOR,
      1, 3, 3),
    F("end", VG_PQ_FN_END, NULL, 0, -1, SCALAR, 1, 0, 0),
    F("exp", VG_PQ_FN_EXP, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("first_over_time", VG_PQ_FN_FIRST_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("floor", VG_PQ_FN_FLOOR, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("histogram_avg", VG_PQ_FN_HISTOGRAM_AVG, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("histogram_count", VG_PQ_FN_HISTOGRAM_COUNT, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("histogram_fraction", VG_PQ_FN_HISTOGRAM_FRACTION, A_SSV, 3, -1, VECTOR, 0, 3, 3),
    F("histogram_quantile", VG_PQ_FN_HISTOGRAM_QUANTILE, A_SV, 2, -1, VECTOR, 0, 2, 2),
    F("histogram_quantiles", VG_PQ_FN_HISTOGRAM_QUANTILES, A_VTSS, 4, 9, VECTOR, 1, 3, 12),
    F("histogram_stddev", VG_PQ_FN_HISTOGRAM_STDDEV, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("histogram_stdvar", VG_PQ_FN_HISTOGRAM_STDVAR, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("histogram_sum", VG_PQ_FN_HISTOGRAM_SUM, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("hour", VG_PQ_FN_HOUR, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("idelta", VG_PQ_FN_IDELTA, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("increase", VG_PQ_FN_INCREASE, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("info", VG_PQ_FN_INFO, A_VV, 2, 1, VECTOR, 1, 1, 2),
    F("integral", VG_PQ_FN_INTEGRAL, A_MS, 2, 1, VECTOR, 1, 1, 2),
    F("irate", VG_PQ_FN_IRATE, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("label_join", VG_PQ_FN_LABEL_JOIN, A_VTTT, 4, 0, VECTOR, 0, 3, -1),
    F("label_replace", VG_PQ_FN_LABEL_REPLACE, A_VTTTT, 5, -1, VECTOR, 0, 5, 5),
    F("last_over_time", VG_PQ_FN_LAST_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("ln", VG_PQ_FN_LN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("log10", VG_PQ_FN_LOG10, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("log2", VG_PQ_FN_LOG2, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("mad_over_time", VG_PQ_FN_MAD_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("max_of", VG_PQ_FN_MAX_OF, A_SS, 2, -1, SCALAR, 1, 2, 2),
    F("max_over_time", VG_PQ_FN_MAX_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("min_of", VG_PQ_FN_MIN_OF, A_SS, 2, -1, SCALAR, 1, 2, 2),
    F("min_over_time", VG_PQ_FN_MIN_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("minute", VG_PQ_FN_MINUTE, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("month", VG_PQ_FN_MONTH, A_V, 1, 1, VECTOR, 0, 0, 1),
    F("pi", VG_PQ_FN_PI, NULL, 0, -1, SCALAR, 0, 0, 0),
    F("predict_linear", VG_PQ_FN_PREDICT_LINEAR, A_MS, 2, -1, VECTOR, 0, 2, 2),
    F("present_over_time", VG_PQ_FN_PRESENT_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("quantile_over_time", VG_PQ_FN_QUANTILE_OVER_TIME, A_SM, 2, -1, VECTOR, 0, 2, 2),
    F("rad", VG_PQ_FN_RAD, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("range", VG_PQ_FN_RANGE, NULL, 0, -1, SCALAR, 1, 0, 0),
    F("rate", VG_PQ_FN_RATE, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("resets", VG_PQ_FN_RESETS, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("round", VG_PQ_FN_ROUND, A_VS, 2, 1, VECTOR, 0, 1, 2),
    F("scalar", VG_PQ_FN_SCALAR, A_V, 1, -1, SCALAR, 0, 1, 1),
    F("sgn", VG_PQ_FN_SGN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("sin", VG_PQ_FN_SIN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("sinh", VG_PQ_FN_SINH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("sort", VG_PQ_FN_SORT, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("sort_by_label", VG_PQ_FN_SORT_BY_LABEL, A_VT, 2, 0, VECTOR, 1, 1, -1),
    F("sort_by_label_desc", VG_PQ_FN_SORT_BY_LABEL_DESC, A_VT, 2, 0, VECTOR, 1, 1, -1),
    F("sort_desc", VG_PQ_FN_SORT_DESC, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("sqrt", VG_PQ_FN_SQRT, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("start", VG_PQ_FN_START, NULL, 0, -1, SCALAR, 1, 0, 0),
    F("stddev_over_time", VG_PQ_FN_STDDEV_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("stdvar_over_time", VG_PQ_FN_STDVAR_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("step", VG_PQ_FN_STEP, NULL, 0, -1, SCALAR, 1, 0, 0),
    F("sum_over_time", VG_PQ_FN_SUM_OVER_TIME, A_M, 1, -1, VECTOR, 0, 1, 1),
    F("tan", VG_PQ_FN_TAN, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("tanh", VG_PQ_FN_TANH, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("time", VG_PQ_FN_TIME, NULL, 0, -1, SCALAR, 0, 0, 0),
    F("timestamp", VG_PQ_FN_TIMESTAMP, A_V, 1, -1, VECTOR, 0, 1, 1),
    F("ts_of_first_over_time", VG_PQ_FN_TS_OF_FIRST_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("ts_of_last_over_time", VG_PQ_FN_TS_OF_LAST_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("ts_of_max_over_time", VG_PQ_FN_TS_OF_MAX_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("ts_of_min_over_time", VG_PQ_FN_TS_OF_MIN_OVER_TIME, A_M, 1, -1, VECTOR, 1, 1, 1),
    F("vector", VG_PQ_FN_VECTOR, A_S, 1, -1, VECTOR, 0, 1, 1),
    F("year", VG_PQ_FN_YEAR, A_V, 1, 1, VECTOR, 0, 0, 1),
};

const vg_pq_func *vg_pq_func_lookup(const char *name)
{
    size_t lo = 0, hi = VG_PQ_FN__COUNT;
    if (!name) return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, funcs[mid].name);
        if (c == 0) return &funcs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const vg_pq_func *vg_pq_func_by_id(vg_pq_fn_id id)
{
    return (unsigned)id < VG_PQ_FN__COUNT ? &funcs[id] : NULL;
}

const vg_pq_func *vg_pq_func_all(size_t *n)
{
    if (n) *n = VG_PQ_FN__COUNT;
    return funcs;
}

const char *vg_pq_aggop_name(vg_pq_aggop op)
{
    static const char *const names[] = {
        [VG_PQ_AGG_SUM] = "sum",           [VG_PQ_AGG_AVG] = "avg",
        [VG_PQ_AGG_MIN] = "min",           [VG_PQ_AGG_MAX] = "max",
        [VG_PQ_AGG_COUNT] = "count",       [VG_PQ_AGG_STDDEV] = "stddev",
        [VG_PQ_AGG_STDVAR] = "stdvar",     [VG_PQ_AGG_GROUP] = "group",
        [VG_PQ_AGG_TOPK] = "topk",         [VG_PQ_AGG_BOTTOMK] = "bottomk",
        [VG_PQ_AGG_QUANTILE] = "quantile", [VG_PQ_AGG_COUNT_VALUES] = "count_values",
        [VG_PQ_AGG_LIMITK] = "limitk",     [VG_PQ_AGG_LIMIT_RATIO] = "limit_ratio",
    };
    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *vg_pq_op_name(vg_pq_op op)
{
    static const char *const names[] = {
        [VG_PQ_OP_NONE] = "",  [VG_PQ_OP_ADD] = "+",         [VG_PQ_OP_SUB] = "-",
        [VG_PQ_OP_MUL] = "*",  [VG_PQ_OP_DIV] = "/",         [VG_PQ_OP_MOD] = "%",
        [VG_PQ_OP_POW] = "^",  [VG_PQ_OP_ATAN2] = "atan2",   [VG_PQ_OP_EQLC] = "==",
        [VG_PQ_OP_NEQ] = "!=", [VG_PQ_OP_GTR] = ">",         [VG_PQ_OP_LSS] = "<",
        [VG_PQ_OP_GTE] = ">=", [VG_PQ_OP_LTE] = "<=",        [VG_PQ_OP_AND] = "and",
        [VG_PQ_OP_OR] = "or",  [VG_PQ_OP_UNLESS] = "unless",
    };
    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *vg_pq_type_name(vg_pq_type t)
{
    switch (t) {
    case VG_PQ_TYPE_SCALAR: return "scalar";
    case VG_PQ_TYPE_VECTOR: return "instant vector";
    case VG_PQ_TYPE_MATRIX: return "range vector";
    case VG_PQ_TYPE_STRING: return "string";
    default: return "none";
    }
}

const char *vg_pq_value_type_name(vg_pq_type t)
{
    switch (t) {
    case VG_PQ_TYPE_SCALAR: return "scalar";
    case VG_PQ_TYPE_VECTOR: return "vector";
    case VG_PQ_TYPE_MATRIX: return "matrix";
    case VG_PQ_TYPE_STRING: return "string";
    default: return "none";
    }
}
