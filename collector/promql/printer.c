/*
 * printer.c - PromQL expressions back to text, in Prometheus's canonical
 * String() form (format_query, promtool, recording-rule output).
 *
 *   sum by (job) (rate(x{a="b"}[5m] offset 1m))   a - on (b) group_left (c) d
 *   x @ 100.000    up > bool 0    topk(5, x)    a[1h:5m]    -1    "str"
 *
 * The rules are Prometheus's: matchers sorted as strings and joined by ","
 * with the metric name outside the braces, durations in their shortest
 * unit form, '@' with three decimals, numbers as Go's %v, strings as Go's
 * %q, "ignoring ()" dropped but "on ()" kept, "by ()" dropped but
 * "without ()" kept. Parentheses come only from ParenExpr nodes, so
 * printing then parsing again gives the same tree; the one exception is a
 * signed number left of '^' ("(+Inf) ^ 2"), which would otherwise read
 * back as a sign over the power (print_binary).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"

#include "promql/engine.h"
#include "promql/functions_table.h"
#include "promql/lex.h"
#include "promql/parser_int.h"

static void print_node(vg_buf *b, const vg_pq_node *n);

static void print_labels(vg_buf *b, const char *const *l, size_t n)
{
    vg_buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        if (i) vg_buf_puts(b, ", ");
        vg_pq_fmt_label(b, l[i]);
    }
    vg_buf_putc(b, ')');
}

static void print_at_offset(vg_buf *b, vg_pq_at at, int64_t at_ms, int64_t off)
{
    if (at == VG_PQ_AT_TS) vg_buf_printf(b, " @ %.3f", (double)at_ms / 1000.0);
    if (at == VG_PQ_AT_START) vg_buf_puts(b, " @ start()");
    if (at == VG_PQ_AT_END) vg_buf_puts(b, " @ end()");
    if (off > 0) vg_buf_puts(b, " offset "), vg_pq_fmt_duration(b, off);
    if (off < 0) vg_buf_puts(b, " offset -"), vg_pq_fmt_duration(b, -off);
}

static void matcher_string(vg_buf *b, const vg_matcher_t *m)
{
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    const char *name = vg_matcher_name(m), *v = vg_matcher_value(m);
    vg_pq_fmt_label(b, name);
    vg_buf_puts(b, ops[vg_matcher_op(m)]);
    vg_lex_goquote(b, v, strlen(v), 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_name_matcher(const vg_pq_selector *s, const vg_matcher_t *m)
{
    return s->name && *s->name && vg_matcher_op(m) == VG_MATCH_EQ &&
           !strcmp(vg_matcher_name(m), VG_METRIC_NAME) && !strcmp(vg_matcher_value(m), s->name);
}

/* The name, then the other matchers as strings, sorted, joined by ','. A
 * name that is not a legacy metric name goes quoted inside the braces. */
static void print_matchers(vg_buf *b, const vg_pq_selector *s)
{
    int quoted = s->name && !vg_metric_name_valid(s->name, strlen(s->name));
    char **arr = vg_calloc(s->nmatchers + 1, sizeof(*arr));
    size_t n = 0;
    if (!arr) return;
    for (size_t i = 0; i < s->nmatchers; i++) {
        if (is_name_matcher(s, s->matchers[i])) continue;
        vg_buf one;
        vg_buf_init(&one, 0);
        matcher_string(&one, s->matchers[i]);
        arr[n++] = vg_buf_steal(&one, NULL);
    }
    qsort(arr, n, sizeof(*arr), cmp_str);
    if (s->name && !quoted) vg_buf_puts(b, s->name);
    if (quoted) vg_buf_putc(b, '{'), vg_lex_goquote(b, s->name, strlen(s->name), 0);
    for (size_t i = 0; i < n; i++) {
        vg_buf_puts(b, i || quoted ? "," : "{");
        vg_buf_puts(b, arr[i] ? arr[i] : "");
        vg_free(arr[i]);
    }
    if (n || quoted) vg_buf_putc(b, '}');
    vg_free(arr);
}

static void print_selector(vg_buf *b, const vg_pq_node *n)
{
    const vg_pq_selector *s = &n->u.sel;
    print_matchers(b, s);
    if (n->kind == VG_PQ_MATRIX_SEL) {
        vg_buf_putc(b, '[');
        vg_pq_fmt_duration(b, s->range_ms);
        vg_buf_putc(b, ']');
    }
    print_at_offset(b, s->at, s->at_ms, s->offset_ms);
}

/* A number printed with a sign ("+Inf": Inf prints as Go prints it) left of
 * '^' would read back as a sign over the whole power (-2 ^ 2 is -(2 ^ 2)),
 * a different tree whose print grows a sign each round: it goes in
 * parentheses. (Prometheus prints it bare.) */
static int signed_pow_lhs(const vg_pq_binary *x)
{
    const vg_pq_node *l = x->lhs;
    while (l->kind == VG_PQ_STEP_INVARIANT) l = l->u.unary.expr;
    return x->op == VG_PQ_OP_POW && l->kind == VG_PQ_NUMBER && !isnan(l->u.num) &&
           (isinf(l->u.num) || signbit(l->u.num));
}

static void print_binary(vg_buf *b, const vg_pq_binary *x)
{
    const vg_pq_matching *m = x->matching;
    int paren = signed_pow_lhs(x);
    if (paren) vg_buf_putc(b, '(');
    print_node(b, x->lhs);
    if (paren) vg_buf_putc(b, ')');
    vg_buf_printf(b, " %s%s", vg_pq_op_name(x->op), x->return_bool ? " bool" : "");
    if (m && (m->nlabels > 0 || m->on)) {
        vg_buf_puts(b, m->on ? " on " : " ignoring ");
        print_labels(b, m->labels, m->nlabels);
        if (m->card == VG_PQ_CARD_MANY_TO_ONE || m->card == VG_PQ_CARD_ONE_TO_MANY) {
            vg_buf_puts(b, m->card == VG_PQ_CARD_MANY_TO_ONE ? " group_left " : " group_right ");
            print_labels(b, m->include, m->ninclude);
        }
    }
    vg_buf_putc(b, ' ');
    print_node(b, x->rhs);
}

static void print_aggregate(vg_buf *b, const vg_pq_aggregate *a)
{
    vg_buf_puts(b, vg_pq_aggop_name(a->op));
    if (a->without || a->ngrouping > 0) {
        vg_buf_puts(b, a->without ? " without " : " by ");
        print_labels(b, a->grouping, a->ngrouping);
        vg_buf_putc(b, ' ');
    }
    vg_buf_putc(b, '(');
    if (a->param) {
        print_node(b, a->param);
        vg_buf_puts(b, ", ");
    }
    print_node(b, a->expr);
    vg_buf_putc(b, ')');
}

static void print_call(vg_buf *b, const vg_pq_call *c)
{
    vg_buf_printf(b, "%s(", c->func ? c->func->name : c->name);
    for (size_t i = 0; i < c->nargs; i++) {
        if (i) vg_buf_puts(b, ", ");
        print_node(b, c->args[i]);
    }
    vg_buf_putc(b, ')');
}

static void print_subquery(vg_buf *b, const vg_pq_subquery *s)
{
    print_node(b, s->expr);
    vg_buf_putc(b, '[');
    vg_pq_fmt_duration(b, s->range_ms);
    vg_buf_putc(b, ':');
    if (s->step_ms) vg_pq_fmt_duration(b, s->step_ms);
    vg_buf_putc(b, ']');
    print_at_offset(b, s->at, s->at_ms, s->offset_ms);
}

static void print_node(vg_buf *b, const vg_pq_node *n)
{
    switch (n->kind) {
    case VG_PQ_NUMBER: vg_pq_fmt_float(b, n->u.num); break;
    case VG_PQ_STRING: vg_lex_goquote(b, n->u.str, strlen(n->u.str), 0); break;
    case VG_PQ_VECTOR_SEL:
    case VG_PQ_MATRIX_SEL: print_selector(b, n); break;
    case VG_PQ_SUBQUERY: print_subquery(b, &n->u.sub); break;
    case VG_PQ_PAREN:
        vg_buf_putc(b, '(');
        print_node(b, n->u.unary.expr);
        vg_buf_putc(b, ')');
        break;
    case VG_PQ_UNARY:
        vg_buf_puts(b, n->u.unary.op == VG_PQ_OP_SUB ? "-" : "+");
        print_node(b, n->u.unary.expr);
        break;
    case VG_PQ_BINARY: print_binary(b, &n->u.bin); break;
    case VG_PQ_AGGREGATE: print_aggregate(b, &n->u.agg); break;
    case VG_PQ_CALL: print_call(b, &n->u.call); break;
    case VG_PQ_STEP_INVARIANT: print_node(b, n->u.unary.expr); break;
    }
}

vg_err_t vg_promql_format(const vg_promql_expr_t *e, vg_buf *out)
{
    if (!e || !e->root) return VG_EINVAL;
    vg_buf tmp;
    vg_buf_init(&tmp, 0);
    print_node(&tmp, e->root);
    /* every expression prints at least one byte; no data means ENOMEM */
    vg_err_t rc = tmp.data ? vg_buf_append(out, tmp.data, tmp.len) : VG_ENOMEM;
    vg_buf_free(&tmp);
    return rc;
}
