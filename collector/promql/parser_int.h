/*
 * parser_int.h - shared state of the PromQL parser files (not a public API).
 *
 * parser.c holds the recursive-descent syntax, parser_check.c the type
 * checks Prometheus runs after parsing (checkAST) and the step-invariant
 * marking, parser_lit.c the literal conversions and Go-style formatting the
 * printer shares. They meet in this one struct so every error goes through
 * one place and keeps Prometheus's "line:col: parse error: msg" shape.
 */
#ifndef VIGIL_PROMQL_PARSER_INT_H
#define VIGIL_PROMQL_PARSER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "promql/ast.h"
#include "promql/lex.h"
#include "vigil/buf.h"
#include "vigil/error.h"

/* Longest query accepted, and deepest tree (the parser, checker, printer and
 * evaluator all recurse; 1000 levels need well under 1 MiB of stack). */
#define VG_PQ_MAX_QUERY (1024 * 1024)
#define VG_PQ_MAX_DEPTH 1000
/* Largest duration in ms: Go's time.Duration range, which Prometheus uses. */
#define VG_PQ_MAX_DURATION_MS INT64_C(9223372036854)

typedef struct vg_pq_parser {
    const char *in;
    size_t len;
    vg_lexer lx;
    vg_tok tok;      /* the lookahead */
    size_t last_end; /* end of the last consumed token */
    vg_arena_t *arena;
    vg_error *err;
    vg_err_t rc; /* first error; later ones are dropped as Prometheus reports only the first */
    int depth;
    int in_agg;              /* inside an aggregation body: Prometheus's error context */
    vg_matcher_t **matchers; /* every matcher made, for cleanup on failure */
    size_t nmatchers, capmatchers;
} vg_pq_parser;

/* Record the first error at byte pos: "L:C: parse error: <msg>". Returns p->rc. */
vg_err_t vg_pq_fail(vg_pq_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Type-check the tree like Prometheus's checkAST, then wrap step-invariant subtrees. */
vg_err_t vg_pq_check(vg_pq_parser *p, vg_pq_node *root);
/* The result type of a node. */
vg_pq_type vg_pq_node_type(const vg_pq_node *n);

/* ---- literals (parser_lit.c) ---- */
/* Go's ParseInt(s, 0, 64) then ParseFloat(s, 64) on a NUMBER token. 0 on
 * success; otherwise a message for "error parsing number: ..." in msg. */
int vg_pq_parse_number(const char *s, size_t n, double *out, char *msg, size_t msglen);
/* Prometheus's model.ParseDuration into ms; 0 or -1 with msg. */
int vg_pq_parse_duration(const char *s, size_t n, int64_t *ms, char *msg, size_t msglen);
/* Append v as Go's fmt %v does: 1e+06, 0.5, +Inf, NaN. */
void vg_pq_fmt_float(vg_buf *b, double v);
/* Append ms as Prometheus's model.Duration: 1h30m, 5m, 100ms, 0s. */
void vg_pq_fmt_duration(vg_buf *b, int64_t ms);
/* Append a label or metric name, Go-quoted when it is not a legacy name. */
void vg_pq_fmt_label(vg_buf *b, const char *name);

#endif
