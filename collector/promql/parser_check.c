/*
 * parser_check.c - the checks Prometheus runs on a parsed PromQL tree
 * (checkAST).
 *
 * Kept apart from the syntax because Prometheus reports these only when the
 * whole query parsed: a type error is never shown ahead of a later syntax
 * error. The walk visits children in Prometheus's order (a binary
 * expression's operands before its own checks, an aggregation's body
 * before its parameter) so the first message is the one promtool prints.
 *
 * Step invariance (Prometheus's PreprocessExpr) is not marked here: the
 * evaluator's pre-pass (eval_exec.c) owns it, so there is one rule set.
 */
#include <string.h>

#include "promql/functions_table.h"
#include "promql/parser_int.h"
#include "vigil/arena.h"

vg_pq_type vg_pq_node_type(const vg_pq_node *n)
{
    switch (n->kind) {
    case VG_PQ_NUMBER: return VG_PQ_TYPE_SCALAR;
    case VG_PQ_STRING: return VG_PQ_TYPE_STRING;
    case VG_PQ_VECTOR_SEL: return VG_PQ_TYPE_VECTOR;
    case VG_PQ_MATRIX_SEL:
    case VG_PQ_SUBQUERY: return VG_PQ_TYPE_MATRIX;
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT: return vg_pq_node_type(n->u.unary.expr);
    case VG_PQ_BINARY:
        return vg_pq_node_type(n->u.bin.lhs) == VG_PQ_TYPE_SCALAR &&
                       vg_pq_node_type(n->u.bin.rhs) == VG_PQ_TYPE_SCALAR
                   ? VG_PQ_TYPE_SCALAR
                   : VG_PQ_TYPE_VECTOR;
    case VG_PQ_AGGREGATE: return VG_PQ_TYPE_VECTOR;
    case VG_PQ_CALL: return n->u.call.func ? n->u.call.func->ret : VG_PQ_TYPE_NONE;
    }
    return VG_PQ_TYPE_NONE;
}

static vg_pq_type check(vg_pq_parser *p, vg_pq_node *n, int bypass_empty);

static void expect_type(vg_pq_parser *p, vg_pq_node *n, vg_pq_type want, const char *ctx)
{
    vg_pq_type t = check(p, n, 0);
    if (t != want)
        vg_pq_fail(p, n->pos, "expected type %s in %s, got %s", vg_pq_type_name(want), ctx,
                   vg_pq_type_name(t));
}

static void check_aggregate(vg_pq_parser *p, vg_pq_aggregate *a)
{
    expect_type(p, a->expr, VG_PQ_TYPE_VECTOR, "aggregation expression");
    if (a->op == VG_PQ_AGG_COUNT_VALUES)
        expect_type(p, a->param, VG_PQ_TYPE_STRING, "aggregation parameter");
    else if (a->param)
        expect_type(p, a->param, VG_PQ_TYPE_SCALAR, "aggregation parameter");
}

static int is_cmp(vg_pq_op op)
{
    return op >= VG_PQ_OP_EQLC && op <= VG_PQ_OP_LTE;
}

static int is_set(vg_pq_op op)
{
    return op == VG_PQ_OP_AND || op == VG_PQ_OP_OR || op == VG_PQ_OP_UNLESS;
}

/* Position of the operator: the first non-space after the left operand. */
static size_t op_pos(const vg_pq_parser *p, const vg_pq_node *n)
{
    size_t i = n->u.bin.lhs->end;
    while (i < p->len && strchr(" \t\r\n", p->in[i]) && p->in[i]) i++;
    return i;
}

static void check_matching(vg_pq_parser *p, vg_pq_node *n, vg_pq_type lt, vg_pq_type rt)
{
    vg_pq_binary *b = &n->u.bin;
    vg_pq_matching *m = b->matching;
    if (!m) return;
    if (is_set(b->op) && m->card == VG_PQ_CARD_ONE_TO_ONE) m->card = VG_PQ_CARD_MANY_TO_MANY;
    for (size_t i = 0; m->on && i < m->nlabels; i++)
        for (size_t j = 0; j < m->ninclude; j++)
            if (strcmp(m->labels[i], m->include[j]) == 0)
                vg_pq_fail(p, op_pos(p, n),
                           "label \"%s\" must not occur in ON and GROUP clause at once",
                           m->labels[i]);
    if (lt != VG_PQ_TYPE_SCALAR && lt != VG_PQ_TYPE_VECTOR)
        vg_pq_fail(p, b->lhs->pos,
                   "binary expression must contain only scalar and instant vector types");
    if (rt != VG_PQ_TYPE_SCALAR && rt != VG_PQ_TYPE_VECTOR)
        vg_pq_fail(p, b->rhs->pos,
                   "binary expression must contain only scalar and instant vector types");
    if (lt != VG_PQ_TYPE_VECTOR || rt != VG_PQ_TYPE_VECTOR) {
        if (m->nlabels > 0)
            vg_pq_fail(p, n->pos, "vector matching only allowed between instant vectors");
        b->matching = NULL;
    } else if (is_set(b->op)) {
        if (m->card == VG_PQ_CARD_ONE_TO_MANY || m->card == VG_PQ_CARD_MANY_TO_ONE)
            vg_pq_fail(p, n->pos, "no grouping allowed for \"%s\" operation", vg_pq_op_name(b->op));
        if (m->card != VG_PQ_CARD_MANY_TO_MANY)
            vg_pq_fail(p, n->pos, "set operations must always be many-to-many");
    }
}

static void check_binary(vg_pq_parser *p, vg_pq_node *n)
{
    vg_pq_binary *b = &n->u.bin;
    vg_pq_type lt = check(p, b->lhs, 0), rt = check(p, b->rhs, 0);
    if (b->return_bool && !is_cmp(b->op))
        vg_pq_fail(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
    if (is_cmp(b->op) && !b->return_bool && lt == VG_PQ_TYPE_SCALAR && rt == VG_PQ_TYPE_SCALAR)
        vg_pq_fail(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
    check_matching(p, n, lt, rt);
    if ((lt == VG_PQ_TYPE_SCALAR || rt == VG_PQ_TYPE_SCALAR) && is_set(b->op))
        vg_pq_fail(p, n->pos, "set operator \"%s\" not allowed in binary scalar expression",
                   vg_pq_op_name(b->op));
}

static void check_call(vg_pq_parser *p, vg_pq_node *n)
{
    const vg_pq_func *f = n->u.call.func;
    int na = (int)n->u.call.nargs;
    if (f->variadic == -1 && na != f->nargs)
        vg_pq_fail(p, n->pos, "expected %d argument(s) in call to \"%s\", got %d", f->nargs,
                   f->name, na);
    else if (f->variadic != -1 && na < f->min_args)
        vg_pq_fail(p, n->pos, "expected at least %d argument(s) in call to \"%s\", got %d",
                   f->min_args, f->name, na);
    else if (f->variadic > 0 && na > f->max_args)
        vg_pq_fail(p, n->pos, "expected at most %d argument(s) in call to \"%s\", got %d",
                   f->max_args, f->name, na);
    int info_sel = 0;
    if (f->id == VG_PQ_FN_INFO && na > 1) {
        vg_pq_node *a = n->u.call.args[1];
        if (vg_pq_node_type(a) != VG_PQ_TYPE_VECTOR)
            vg_pq_fail(p, n->pos,
                       "expected type instant vector in call to function \"info\", got %s",
                       vg_pq_type_name(vg_pq_node_type(a)));
        if (a->kind == VG_PQ_VECTOR_SEL && a->u.sel.name)
            vg_pq_fail(p, a->pos, "expected label selectors only, got vector selector instead");
        else if (a->kind != VG_PQ_VECTOR_SEL)
            vg_pq_fail(p, a->pos, "expected label selectors only");
        info_sel = 1;
    }
    for (int i = 0; i < na; i++) {
        if (i >= f->nargs && f->variadic == -1) break;
        vg_pq_type want = f->arg_types[i < f->nargs ? i : f->nargs - 1];
        vg_pq_type t = check(p, n->u.call.args[i], info_sel && i == 1);
        if (t != want)
            vg_pq_fail(p, n->u.call.args[i]->pos,
                       "expected type %s in call to function \"%s\", got %s", vg_pq_type_name(want),
                       f->name, vg_pq_type_name(t));
    }
}

static void check_selector(vg_pq_parser *p, vg_pq_node *n, int bypass_empty)
{
    vg_pq_selector *s = &n->u.sel;
    if (s->name) {
        for (size_t i = 0; i + 1 < s->nmatchers; i++)
            if (strcmp(vg_matcher_name(s->matchers[i]), VG_METRIC_NAME) == 0) {
                vg_buf b;
                vg_buf_init(&b, 1024);
                vg_lex_goquote(&b, s->name, strlen(s->name), 0);
                vg_buf_puts(&b, " or ");
                const char *v = vg_matcher_value(s->matchers[i]);
                vg_lex_goquote(&b, v, strlen(v), 0);
                vg_pq_fail(p, n->pos, "metric name must not be set twice: %s",
                           b.data ? b.data : "");
                vg_buf_free(&b);
            }
        return;
    }
    if (bypass_empty) return;
    for (size_t i = 0; i < s->nmatchers; i++)
        if (!vg_matcher_matches_empty(s->matchers[i])) return;
    vg_pq_fail(p, n->pos, "vector selector must contain at least one non-empty matcher");
}

static vg_pq_type check(vg_pq_parser *p, vg_pq_node *n, int bypass_empty)
{
    vg_pq_type t = vg_pq_node_type(n);
    n->type = t;
    switch (n->kind) {
    case VG_PQ_AGGREGATE: check_aggregate(p, &n->u.agg); break;
    case VG_PQ_BINARY: check_binary(p, n); break;
    case VG_PQ_CALL: check_call(p, n); break;
    case VG_PQ_PAREN:
    case VG_PQ_STEP_INVARIANT: check(p, n->u.unary.expr, 0); break;
    case VG_PQ_UNARY: {
        vg_pq_type it = check(p, n->u.unary.expr, 0);
        if (it != VG_PQ_TYPE_SCALAR && it != VG_PQ_TYPE_VECTOR)
            vg_pq_fail(p, n->pos,
                       "unary expression only allowed on expressions of type scalar or instant "
                       "vector, got \"%s\"",
                       vg_pq_type_name(it));
        break;
    }
    case VG_PQ_SUBQUERY: {
        vg_pq_type it = check(p, n->u.sub.expr, 0);
        if (it != VG_PQ_TYPE_VECTOR)
            vg_pq_fail(p, n->pos, "subquery is only allowed on instant vector, got %s instead",
                       vg_pq_value_type_name(it));
        break;
    }
    case VG_PQ_VECTOR_SEL:
    case VG_PQ_MATRIX_SEL: check_selector(p, n, bypass_empty); break;
    default: break;
    }
    return t;
}

vg_err_t vg_pq_check(vg_pq_parser *p, vg_pq_node *root)
{
    check(p, root, 0);
    return p->rc;
}
