/*
 * ast.h - the PromQL syntax tree, shared by the parser, the printer and the
 * evaluator.
 *
 * One tagged node type rather than a struct per kind: the evaluator walks
 * the tree with one switch, and the parser allocates every node, string and
 * matcher array from one arena owned by vg_promql_expr_t, so freeing a
 * parsed query is one call. Positions are byte offsets into the query, kept
 * so errors found after parsing (type errors, evaluation errors) can point
 * at the text. Durations and timestamps are int64 milliseconds.
 */
#ifndef VIGIL_PROMQL_AST_H
#define VIGIL_PROMQL_AST_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/labels.h"

typedef enum vg_pq_type {
    VG_PQ_TYPE_NONE = 0,
    VG_PQ_TYPE_SCALAR,
    VG_PQ_TYPE_VECTOR,
    VG_PQ_TYPE_MATRIX,
    VG_PQ_TYPE_STRING,
} vg_pq_type;

typedef enum vg_pq_kind {
    VG_PQ_NUMBER,         /* num */
    VG_PQ_STRING,         /* str */
    VG_PQ_VECTOR_SEL,     /* sel */
    VG_PQ_MATRIX_SEL,     /* sel + range_ms */
    VG_PQ_SUBQUERY,       /* sub */
    VG_PQ_PAREN,          /* unary.expr */
    VG_PQ_UNARY,          /* unary: op is VG_PQ_OP_ADD or VG_PQ_OP_SUB */
    VG_PQ_BINARY,         /* bin */
    VG_PQ_AGGREGATE,      /* agg */
    VG_PQ_CALL,           /* call */
    VG_PQ_STEP_INVARIANT, /* unary.expr: inserted by the evaluator's pre-pass, never by the parser
                           */
} vg_pq_kind;

typedef enum vg_pq_op {
    VG_PQ_OP_NONE = 0,
    /* arithmetic */
    VG_PQ_OP_ADD,
    VG_PQ_OP_SUB,
    VG_PQ_OP_MUL,
    VG_PQ_OP_DIV,
    VG_PQ_OP_MOD,
    VG_PQ_OP_POW,
    VG_PQ_OP_ATAN2,
    /* comparison */
    VG_PQ_OP_EQLC,
    VG_PQ_OP_NEQ,
    VG_PQ_OP_GTR,
    VG_PQ_OP_LSS,
    VG_PQ_OP_GTE,
    VG_PQ_OP_LTE,
    /* set */
    VG_PQ_OP_AND,
    VG_PQ_OP_OR,
    VG_PQ_OP_UNLESS,
} vg_pq_op;

typedef enum vg_pq_aggop {
    VG_PQ_AGG_SUM,
    VG_PQ_AGG_AVG,
    VG_PQ_AGG_MIN,
    VG_PQ_AGG_MAX,
    VG_PQ_AGG_COUNT,
    VG_PQ_AGG_STDDEV,
    VG_PQ_AGG_STDVAR,
    VG_PQ_AGG_GROUP,
    VG_PQ_AGG_TOPK,
    VG_PQ_AGG_BOTTOMK,
    VG_PQ_AGG_QUANTILE,
    VG_PQ_AGG_COUNT_VALUES,
    VG_PQ_AGG_LIMITK,
    VG_PQ_AGG_LIMIT_RATIO,
} vg_pq_aggop;

/* The '@' modifier: none, a fixed time, or start()/end() of the query. */
typedef enum vg_pq_at { VG_PQ_AT_NONE = 0, VG_PQ_AT_TS, VG_PQ_AT_START, VG_PQ_AT_END } vg_pq_at;

typedef enum vg_pq_card {
    VG_PQ_CARD_ONE_TO_ONE = 0,
    VG_PQ_CARD_MANY_TO_ONE,  /* group_left */
    VG_PQ_CARD_ONE_TO_MANY,  /* group_right */
    VG_PQ_CARD_MANY_TO_MANY, /* set operators */
} vg_pq_card;

typedef struct vg_pq_node vg_pq_node;

typedef struct vg_pq_selector {
    const char *name;        /* metric name, or NULL when only matchers were given */
    vg_matcher_t **matchers; /* all matchers, the name's __name__="x" included */
    size_t nmatchers;
    int64_t offset_ms; /* may be negative */
    vg_pq_at at;
    int64_t at_ms;    /* for VG_PQ_AT_TS */
    int64_t range_ms; /* matrix selectors only */
} vg_pq_selector;

typedef struct vg_pq_subquery {
    vg_pq_node *expr;
    int64_t range_ms, step_ms; /* step 0 = the default evaluation interval */
    int64_t offset_ms;
    vg_pq_at at;
    int64_t at_ms;
} vg_pq_subquery;

typedef struct vg_pq_matching {
    vg_pq_card card;
    int on;              /* 1: on(labels), 0: ignoring(labels) */
    const char **labels; /* the on/ignoring list */
    size_t nlabels;
    const char **include; /* extra labels of group_left/group_right */
    size_t ninclude;
} vg_pq_matching;

typedef struct vg_pq_binary {
    vg_pq_op op;
    vg_pq_node *lhs, *rhs;
    int return_bool;
    vg_pq_matching *matching; /* NULL unless both sides are vectors */
} vg_pq_binary;

typedef struct vg_pq_aggregate {
    vg_pq_aggop op;
    vg_pq_node *expr;
    vg_pq_node *param; /* topk k, quantile q, count_values label, limitk k, limit_ratio r */
    const char **grouping;
    size_t ngrouping;
    int without;
} vg_pq_aggregate;

typedef struct vg_pq_func vg_pq_func; /* the function table entry; see functions */

typedef struct vg_pq_call {
    const char *name;
    const vg_pq_func *func; /* resolved by the parser */
    vg_pq_node **args;
    size_t nargs;
} vg_pq_call;

typedef struct vg_pq_unary {
    vg_pq_op op;
    vg_pq_node *expr;
} vg_pq_unary;

struct vg_pq_node {
    vg_pq_kind kind;
    vg_pq_type type; /* result type, set by the parser */
    size_t pos, end; /* byte range in the query */
    union {
        double num;
        const char *str;
        vg_pq_selector sel;
        vg_pq_subquery sub;
        vg_pq_binary bin;
        vg_pq_aggregate agg;
        vg_pq_call call;
        vg_pq_unary unary;
    } u;
};

/* A parsed query: the root and the arena that owns every node. */
typedef struct vg_promql_expr {
    vg_pq_node *root;
    vg_arena_t *arena;
    char *query; /* copy of the text */
} vg_promql_expr_t;

#endif
