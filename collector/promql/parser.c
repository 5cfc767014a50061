/*
 * parser.c - the PromQL parser: recursive descent with precedence climbing
 * over lex.c's tokens, producing the ast.h tree in one arena.
 *
 * Prometheus generates its parser with yacc; we hand-write one because the
 * grammar is small and error positions matter more than generality. The
 * shape follows the yacc grammar's precedences exactly:
 *   or  <  and unless  <  == != < <= > >=  <  + -  <  * / % atan2  <  ^
 * all left-associative except the right-associative '^'; unary +/- binds
 * like '*' (so -a^b is -(a^b)); the postfix forms [range], [range:step],
 * offset and @ bind tightest, to the nearest operand. Errors carry
 * Prometheus's wording and contexts ("unexpected X in grouping opts,
 * expected label"), and the first one wins, as promtool reports it.
 * Semantic checks that Prometheus runs after parsing (types, argument
 * counts, matcher rules) are in parser_check.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "promql/engine.h"
#include "promql/functions_table.h"
#include "promql/parser_int.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"

enum { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

static vg_pq_node *parse_expr(vg_pq_parser *p, int min_prec);

/* ---- tokens and errors ---- */

static void advance(vg_pq_parser *p)
{
    p->last_end = p->tok.pos + p->tok.len;
    vg_lex_next(&p->lx, &p->tok);
}

/* The token after the lookahead, without consuming anything. */
static vg_tok peek2(const vg_pq_parser *p)
{
    vg_lexer l = p->lx;
    vg_tok t;
    vg_lex_next(&l, &t);
    return t;
}

static int is_word_tok(vg_tok_type t)
{
    return t == VG_TOK_KEYWORD || t == VG_TOK_AGGR || t == VG_TOK_OP_WORD || t == VG_TOK_IDENT ||
           t == VG_TOK_METRIC_IDENT;
}

/* Is the lookahead the keyword w (case-insensitive, as Prometheus's lexer)? */
static int at_word(const vg_pq_parser *p, const vg_tok *t, const char *w)
{
    size_t n = strlen(w);
    return is_word_tok(t->type) && t->type != VG_TOK_IDENT && t->type != VG_TOK_METRIC_IDENT &&
           t->len == n && strncasecmp(p->in + t->pos, w, n) == 0;
}

vg_err_t vg_pq_fail(vg_pq_parser *p, size_t pos, const char *fmt, ...)
{
    if (p->rc) return p->rc;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, col;
    vg_lex_linecol(p->in, p->len, pos, &line, &col);
    p->rc = vg_error_set(p->err, VG_EPARSE, "%d:%d: parse error: %s", line, col, msg);
    return p->rc;
}

static vg_pq_node *oom(vg_pq_parser *p)
{
    if (!p->rc) p->rc = vg_error_set(p->err, VG_ENOMEM, "out of memory");
    return NULL;
}

/* "unexpected <tok>[ in <ctx>][, expected <what>]"; lexer errors win. */
static vg_pq_node *unexpected(vg_pq_parser *p, const char *ctx, const char *expected)
{
    if (p->tok.type == VG_TOK_ERROR) return vg_pq_fail(p, p->tok.pos, "%s", p->lx.err), NULL;
    if (!ctx && p->in_agg) ctx = "aggregation";
    vg_buf b;
    vg_buf_init(&b, 1024);
    vg_lex_describe(p->in, &p->tok, &b);
    vg_pq_fail(p, p->tok.pos, "unexpected %s%s%s%s%s", b.data ? b.data : "token", ctx ? " in " : "",
               ctx ? ctx : "", expected ? ", expected " : "", expected ? expected : "");
    vg_buf_free(&b);
    return NULL;
}

static vg_pq_node *new_node(vg_pq_parser *p, vg_pq_kind kind, size_t pos)
{
    vg_pq_node *n = vg_arena_calloc(p->arena, sizeof(*n));
    if (!n) return oom(p);
    n->kind = kind;
    n->pos = pos;
    n->end = p->last_end;
    return n;
}

/* Decoded copy of the STRING lookahead in the arena. */
static char *tok_string(vg_pq_parser *p)
{
    char *s = vg_arena_alloc(p->arena, p->tok.len + 1);
    size_t n;
    if (!s) return oom(p), NULL;
    if (vg_lex_unquote(p->in + p->tok.pos, p->tok.len, s, &n) != VG_OK) {
        vg_pq_fail(p, p->tok.pos, "error unquoting string %.*s", (int)p->tok.len,
                   p->in + p->tok.pos);
        return NULL;
    }
    return s;
}

static char *tok_text(vg_pq_parser *p)
{
    char *s = vg_arena_strndup(p->arena, p->in + p->tok.pos, p->tok.len);
    if (!s) oom(p);
    return s;
}

/* ---- literals ---- */

/* NUMBER or DURATION lookahead as seconds (Prometheus's `number` rule). */
static int tok_seconds(vg_pq_parser *p, double *out)
{
    char msg[300];
    const char *s = p->in + p->tok.pos;
    if (p->tok.type == VG_TOK_DURATION) {
        int64_t ms;
        if (vg_pq_parse_duration(s, p->tok.len, &ms, msg, sizeof msg))
            return vg_pq_fail(p, p->tok.pos, "%s", msg), -1;
        *out = (double)ms / 1000.0;
        return 0;
    }
    if (vg_pq_parse_number(s, p->tok.len, out, msg, sizeof msg))
        return vg_pq_fail(p, p->tok.pos, "error parsing number: %s", msg), -1;
    return 0;
}

/* number_duration_literal as a time.Duration in ms. */
static int tok_duration_ms(vg_pq_parser *p, int64_t *ms)
{
    char msg[300];
    const char *s = p->in + p->tok.pos;
    if (p->tok.type == VG_TOK_DURATION) {
        if (vg_pq_parse_duration(s, p->tok.len, ms, msg, sizeof msg))
            return vg_pq_fail(p, p->tok.pos, "%s", msg), -1;
        return 0;
    }
    double v;
    if (tok_seconds(p, &v)) return -1;
    double m = v * 1000.0;
    if (!(fabs(m) <= (double)VG_PQ_MAX_DURATION_MS))
        return vg_pq_fail(p, p->tok.pos, "duration out of range"), -1;
    *ms = (int64_t)m;
    return 0;
}

static vg_pq_node *parse_number(vg_pq_parser *p)
{
    vg_pq_node *n = new_node(p, VG_PQ_NUMBER, p->tok.pos);
    if (!n || tok_seconds(p, &n->u.num)) return NULL;
    advance(p);
    n->end = p->last_end;
    n->type = VG_PQ_TYPE_SCALAR;
    return n;
}

static vg_pq_node *parse_string(vg_pq_parser *p)
{
    vg_pq_node *n = new_node(p, VG_PQ_STRING, p->tok.pos);
    if (!n || !(n->u.str = tok_string(p))) return NULL;
    advance(p);
    n->end = p->last_end;
    n->type = VG_PQ_TYPE_STRING;
    return n;
}

/* ---- vector selectors ---- */

static vg_err_t add_matcher(vg_pq_parser *p, vg_pq_selector *sel, vg_match_op op, const char *name,
                            const char *value, size_t pos)
{
    vg_error merr = {0};
    vg_matcher_t *m = NULL;
    if (p->nmatchers == p->capmatchers) {
        size_t ncap = p->capmatchers ? p->capmatchers * 2 : 8;
        vg_matcher_t **nm = vg_realloc(p->matchers, ncap * sizeof(*nm));
        if (!nm) return oom(p), p->rc;
        p->matchers = nm;
        p->capmatchers = ncap;
    }
    vg_err_t rc = vg_matcher_new(op, name, value, &m, &merr);
    if (rc == VG_ENOMEM) return oom(p), p->rc;
    if (rc) return vg_pq_fail(p, pos, "%s", vg_error_msg(&merr, rc));
    p->matchers[p->nmatchers++] = m;
    vg_matcher_t **arr = vg_arena_alloc(p->arena, (sel->nmatchers + 1) * sizeof(*arr));
    if (!arr) return oom(p), p->rc;
    if (sel->nmatchers) memcpy(arr, sel->matchers, sel->nmatchers * sizeof(*arr));
    arr[sel->nmatchers++] = m;
    sel->matchers = arr;
    return VG_OK;
}

static int match_op(vg_tok_type t, vg_match_op *op)
{
    switch (t) {
    case VG_TOK_EQL: *op = VG_MATCH_EQ; return 1;
    case VG_TOK_NEQ: *op = VG_MATCH_NEQ; return 1;
    case VG_TOK_EQL_REGEX: *op = VG_MATCH_RE; return 1;
    case VG_TOK_NEQ_REGEX: *op = VG_MATCH_NRE; return 1;
    default: return 0;
    }
}

/* One item inside braces: name op "value", "name" op "value", or "metric". */
static vg_err_t parse_matcher(vg_pq_parser *p, vg_pq_selector *sel)
{
    size_t pos = p->tok.pos;
    int quoted = p->tok.type == VG_TOK_STRING;
    vg_match_op op;
    if (!quoted && p->tok.type != VG_TOK_IDENT)
        return unexpected(p, "label matching", "identifier or \"}\""), p->rc;
    char *name = quoted ? tok_string(p) : tok_text(p);
    if (!name) return p->rc;
    advance(p);
    if (quoted && (p->tok.type == VG_TOK_COMMA || p->tok.type == VG_TOK_RBRACE))
        return add_matcher(p, sel, VG_MATCH_EQ, VG_METRIC_NAME, name, pos);
    if (!match_op(p->tok.type, &op))
        return unexpected(p, "label matching", "label matching operator"), p->rc;
    advance(p);
    if (p->tok.type != VG_TOK_STRING) return unexpected(p, "label matching", "string"), p->rc;
    char *value = tok_string(p);
    if (!value || add_matcher(p, sel, op, name, value, pos)) return p->rc;
    advance(p);
    return VG_OK;
}

/* '{' list '}' with an optional trailing comma. */
static vg_err_t parse_braces(vg_pq_parser *p, vg_pq_selector *sel)
{
    advance(p);
    while (p->tok.type != VG_TOK_RBRACE) {
        if (parse_matcher(p, sel)) return p->rc;
        if (p->tok.type == VG_TOK_COMMA)
            advance(p);
        else if (p->tok.type != VG_TOK_RBRACE)
            return unexpected(p, "label matching", "\",\" or \"}\""), p->rc;
    }
    advance(p);
    return VG_OK;
}

/* name [braces] | braces; the name (if any) is the lookahead. */
static vg_pq_node *parse_selector(vg_pq_parser *p, int named)
{
    vg_pq_node *n = new_node(p, VG_PQ_VECTOR_SEL, p->tok.pos);
    if (!n) return NULL;
    n->type = VG_PQ_TYPE_VECTOR;
    vg_pq_selector *sel = &n->u.sel;
    if (named) {
        if (!(sel->name = tok_text(p))) return NULL;
        advance(p);
    }
    if (p->tok.type == VG_TOK_LBRACE && parse_braces(p, sel)) return NULL;
    if (sel->name && add_matcher(p, sel, VG_MATCH_EQ, VG_METRIC_NAME, sel->name, n->pos))
        return NULL;
    n->end = p->last_end;
    return n;
}

/* ---- grouping labels, function and aggregation bodies ---- */

/* A label name in grouping opts: any word Prometheus's maybe_label allows, or a string. */
static const char *grouping_label(vg_pq_parser *p)
{
    if (p->tok.type == VG_TOK_STRING) return tok_string(p);
    if (!is_word_tok(p->tok.type) || !vg_label_name_valid(p->in + p->tok.pos, p->tok.len))
        return unexpected(p, "grouping opts", "label"), NULL;
    return tok_text(p);
}

/* '(' [label {',' label} [',']] ')' into an arena array. */
static int parse_grouping(vg_pq_parser *p, const char ***out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (p->tok.type != VG_TOK_LPAREN) return unexpected(p, "grouping opts", "\"(\""), -1;
    advance(p);
    while (p->tok.type != VG_TOK_RPAREN) {
        const char *l = grouping_label(p);
        if (!l) return -1;
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            const char **arr = vg_arena_alloc(p->arena, cap * sizeof(*arr));
            if (!arr) return oom(p), -1;
            if (*n) memcpy(arr, *out, *n * sizeof(*arr));
            *out = arr;
        }
        (*out)[(*n)++] = l;
        advance(p);
        if (p->tok.type == VG_TOK_COMMA)
            advance(p);
        else if (p->tok.type != VG_TOK_RPAREN)
            return unexpected(p, "grouping opts", "\",\" or \")\""), -1;
    }
    advance(p);
    return 0;
}

/* '(' [expr {',' expr}] ')' — shared by calls and aggregations. */
static int parse_args(vg_pq_parser *p, vg_pq_node ***args, size_t *nargs)
{
    size_t cap = 0;
    *args = NULL;
    *nargs = 0;
    advance(p); /* '(' */
    while (p->tok.type != VG_TOK_RPAREN) {
        vg_pq_node *a = parse_expr(p, 0);
        if (!a) return -1;
        if (*nargs == cap) {
            cap = cap ? cap * 2 : 4;
            vg_pq_node **arr = vg_arena_alloc(p->arena, cap * sizeof(*arr));
            if (!arr) return oom(p), -1;
            if (*nargs) memcpy(arr, *args, *nargs * sizeof(*arr));
            *args = arr;
        }
        (*args)[(*nargs)++] = a;
        if (p->tok.type == VG_TOK_RPAREN) break;
        if (p->tok.type != VG_TOK_COMMA) return unexpected(p, NULL, NULL), -1;
        size_t comma = p->tok.pos;
        advance(p);
        if (p->tok.type == VG_TOK_RPAREN)
            return vg_pq_fail(p, comma, "trailing commas not allowed in function call args"), -1;
    }
    advance(p);
    return 0;
}

static vg_pq_node *parse_call(vg_pq_parser *p)
{
    vg_pq_node *n = new_node(p, VG_PQ_CALL, p->tok.pos);
    if (!n || !(n->u.call.name = tok_text(p))) return NULL;
    n->u.call.func = vg_pq_func_lookup(n->u.call.name);
    if (!n->u.call.func) {
        vg_buf b;
        vg_buf_init(&b, 1024);
        vg_lex_goquote(&b, n->u.call.name, strlen(n->u.call.name), 0);
        vg_pq_fail(p, n->pos, "unknown function with name %s", b.data ? b.data : "\"\"");
        vg_buf_free(&b);
        return NULL;
    }
    advance(p);
    if (parse_args(p, &n->u.call.args, &n->u.call.nargs)) return NULL;
    n->end = p->last_end;
    n->type = n->u.call.func->ret;
    return n;
}

static int aggop_of(const vg_pq_parser *p, vg_pq_aggop *op)
{
    for (int i = VG_PQ_AGG_SUM; i <= VG_PQ_AGG_LIMIT_RATIO; i++) {
        const char *name = vg_pq_aggop_name((vg_pq_aggop)i);
        if (strlen(name) == p->tok.len && !strncasecmp(name, p->in + p->tok.pos, p->tok.len))
            return *op = (vg_pq_aggop)i, 1;
    }
    return 0;
}

static int parse_agg_modifier(vg_pq_parser *p, vg_pq_aggregate *a)
{
    a->without = at_word(p, &p->tok, "without");
    advance(p);
    return parse_grouping(p, &a->grouping, &a->ngrouping);
}

static int agg_has_param(vg_pq_aggop op)
{
    return op == VG_PQ_AGG_TOPK || op == VG_PQ_AGG_BOTTOMK || op == VG_PQ_AGG_QUANTILE ||
           op == VG_PQ_AGG_COUNT_VALUES || op == VG_PQ_AGG_LIMITK || op == VG_PQ_AGG_LIMIT_RATIO;
}

/* Prometheus's newAggregateExpr: argument count against the operator. */
static vg_pq_node *finish_aggregate(vg_pq_parser *p, vg_pq_node *n, vg_pq_node **args, size_t na)
{
    vg_pq_aggregate *a = &n->u.agg;
    size_t want = agg_has_param(a->op) ? 2 : 1;
    n->end = p->last_end;
    if (na == 0)
        return vg_pq_fail(p, n->pos, "no arguments for aggregate expression provided"), NULL;
    if (na != want) {
        vg_pq_fail(p, n->pos,
                   "wrong number of arguments for aggregate expression provided, expected %zu, "
                   "got %zu",
                   want, na);
        return NULL;
    }
    a->param = want == 2 ? args[0] : NULL;
    a->expr = args[want - 1];
    n->type = VG_PQ_TYPE_VECTOR;
    return n;
}

static vg_pq_node *parse_aggregate(vg_pq_parser *p)
{
    vg_pq_node *n = new_node(p, VG_PQ_AGGREGATE, p->tok.pos);
    vg_pq_node **args = NULL;
    size_t na = 0;
    int ok;
    if (!n) return NULL;
    aggop_of(p, &n->u.agg.op);
    advance(p);
    int pre = at_word(p, &p->tok, "by") || at_word(p, &p->tok, "without");
    if (pre && parse_agg_modifier(p, &n->u.agg)) return NULL;
    if (p->tok.type != VG_TOK_LPAREN) return unexpected(p, "aggregation", NULL);
    p->in_agg++;
    ok = parse_args(p, &args, &na) == 0;
    p->in_agg--;
    if (!ok) return NULL;
    if (!pre && (at_word(p, &p->tok, "by") || at_word(p, &p->tok, "without")) &&
        parse_agg_modifier(p, &n->u.agg))
        return NULL;
    return finish_aggregate(p, n, args, na);
}

/* ---- primary expressions ---- */

/* Words Prometheus's metric_identifier rule accepts besides identifiers. */
static int keyword_is_metric_name(const vg_pq_parser *p)
{
    static const char *const words[] = {"by", "without", "offset", "start", "end",      "and",
                                        "or", "unless",  "step",   "range", "smoothed", "anchored"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (at_word(p, &p->tok, words[i])) return 1;
    return 0;
}

static vg_pq_node *parse_paren(vg_pq_parser *p)
{
    vg_pq_node *n = new_node(p, VG_PQ_PAREN, p->tok.pos);
    if (!n) return NULL;
    advance(p);
    if (!(n->u.unary.expr = parse_expr(p, 0))) return NULL;
    if (p->tok.type != VG_TOK_RPAREN) return unexpected(p, NULL, NULL);
    advance(p);
    n->end = p->last_end;
    n->type = n->u.unary.expr->type;
    return n;
}

static vg_pq_node *parse_word(vg_pq_parser *p)
{
    vg_tok next = peek2(p);
    int call_ok = p->tok.type == VG_TOK_IDENT || at_word(p, &p->tok, "start") ||
                  at_word(p, &p->tok, "end") || at_word(p, &p->tok, "step") ||
                  at_word(p, &p->tok, "range");
    if (p->tok.type == VG_TOK_AGGR) {
        /* "foo * sum" is a selector named sum; only '(', by or without start an aggregation */
        if (next.type == VG_TOK_LPAREN || at_word(p, &next, "by") || at_word(p, &next, "without"))
            return parse_aggregate(p);
        return parse_selector(p, 1);
    }
    if (call_ok && next.type == VG_TOK_LPAREN) return parse_call(p);
    if (p->tok.type == VG_TOK_IDENT || p->tok.type == VG_TOK_METRIC_IDENT ||
        keyword_is_metric_name(p))
        return parse_selector(p, 1);
    return unexpected(p, NULL, NULL);
}

static vg_pq_node *parse_primary(vg_pq_parser *p)
{
    switch (p->tok.type) {
    case VG_TOK_NUMBER:
    case VG_TOK_DURATION: return parse_number(p);
    case VG_TOK_STRING: return parse_string(p);
    case VG_TOK_LBRACE: return parse_selector(p, 0);
    case VG_TOK_LPAREN: return parse_paren(p);
    case VG_TOK_EOF:
        if (p->tok.pos == 0 || p->last_end == 0)
            return vg_pq_fail(p, 0, "no expression found in input"), NULL;
        return unexpected(p, NULL, NULL);
    default:
        if (is_word_tok(p->tok.type)) return parse_word(p);
        return unexpected(p, NULL, NULL);
    }
}

/* ---- postfix modifiers: [range], [range:step], offset, @ ---- */

static vg_pq_node *parse_brackets(vg_pq_parser *p, vg_pq_node *e)
{
    size_t lb = p->tok.pos;
    int64_t range = 0, step = 0;
    advance(p);
    if (p->tok.type != VG_TOK_NUMBER && p->tok.type != VG_TOK_DURATION)
        return unexpected(p, "subquery selector", "number or duration");
    if (tok_duration_ms(p, &range)) return NULL;
    advance(p);
    if (p->tok.type == VG_TOK_RBRACKET) {
        const char *msg = NULL;
        if (e->kind != VG_PQ_VECTOR_SEL)
            msg = "ranges only allowed for vector selectors";
        else if (e->u.sel.offset_ms != 0)
            msg = "no offset modifiers allowed before range";
        else if (e->u.sel.at != VG_PQ_AT_NONE)
            msg = "no @ modifiers allowed before range";
        if (msg) return vg_pq_fail(p, lb, "%s", msg), NULL;
        advance(p);
        e->kind = VG_PQ_MATRIX_SEL;
        e->type = VG_PQ_TYPE_MATRIX;
        e->u.sel.range_ms = range;
        e->end = p->last_end;
        return e;
    }
    if (p->tok.type != VG_TOK_COLON) return unexpected(p, "subquery or range", "\":\" or \"]\"");
    advance(p);
    if (p->tok.type == VG_TOK_NUMBER || p->tok.type == VG_TOK_DURATION) {
        if (tok_duration_ms(p, &step)) return NULL;
        advance(p);
        if (p->tok.type != VG_TOK_RBRACKET) return unexpected(p, "subquery selector", "\"]\"");
    } else if (p->tok.type != VG_TOK_RBRACKET) {
        return unexpected(p, "subquery selector", "number or duration or \"]\"");
    }
    advance(p);
    vg_pq_node *n = new_node(p, VG_PQ_SUBQUERY, e->pos);
    if (!n) return NULL;
    n->type = VG_PQ_TYPE_MATRIX;
    n->u.sub.expr = e;
    n->u.sub.range_ms = range;
    n->u.sub.step_ms = step;
    return n;
}

/* Prometheus's addOffset. */
static vg_pq_node *parse_offset(vg_pq_parser *p, vg_pq_node *e)
{
    int neg = 0;
    int64_t ms;
    advance(p);
    if (p->tok.type == VG_TOK_SUB) neg = 1, advance(p);
    if (p->tok.type != VG_TOK_NUMBER && p->tok.type != VG_TOK_DURATION)
        return unexpected(p, "offset", "number or duration");
    if (tok_duration_ms(p, &ms)) return NULL;
    advance(p);
    int64_t *slot = NULL;
    if (e->kind == VG_PQ_VECTOR_SEL || e->kind == VG_PQ_MATRIX_SEL) slot = &e->u.sel.offset_ms;
    if (e->kind == VG_PQ_SUBQUERY) slot = &e->u.sub.offset_ms;
    if (!slot) {
        vg_pq_fail(p, e->pos,
                   "offset modifier must be preceded by an instant vector selector or range "
                   "vector selector or a subquery");
        return NULL;
    }
    if (*slot != 0) return vg_pq_fail(p, e->pos, "offset may not be set multiple times"), NULL;
    *slot = neg ? -ms : ms;
    e->end = p->last_end;
    return e;
}

/* The '@' value: [+-]number, or start()/end(). */
static int parse_at_value(vg_pq_parser *p, vg_pq_at *at, double *ts)
{
    int neg = 0;
    if (at_word(p, &p->tok, "start") || at_word(p, &p->tok, "end")) {
        *at = at_word(p, &p->tok, "start") ? VG_PQ_AT_START : VG_PQ_AT_END;
        advance(p);
        if (p->tok.type != VG_TOK_LPAREN) return unexpected(p, "@", "timestamp"), -1;
        advance(p);
        if (p->tok.type != VG_TOK_RPAREN) return unexpected(p, "@", "timestamp"), -1;
        advance(p);
        return 0;
    }
    if (p->tok.type == VG_TOK_ADD || p->tok.type == VG_TOK_SUB) {
        neg = p->tok.type == VG_TOK_SUB;
        advance(p);
    }
    if (p->tok.type != VG_TOK_NUMBER && p->tok.type != VG_TOK_DURATION)
        return unexpected(p, "@", "timestamp"), -1;
    if (tok_seconds(p, ts)) return -1;
    advance(p);
    *at = VG_PQ_AT_TS;
    if (neg) *ts = -*ts;
    return 0;
}

static int at_slots(vg_pq_parser *p, vg_pq_node *e, vg_pq_at **at, int64_t **at_ms)
{
    if (e->kind == VG_PQ_VECTOR_SEL || e->kind == VG_PQ_MATRIX_SEL)
        *at = &e->u.sel.at, *at_ms = &e->u.sel.at_ms;
    else if (e->kind == VG_PQ_SUBQUERY)
        *at = &e->u.sub.at, *at_ms = &e->u.sub.at_ms;
    else
        return vg_pq_fail(p, e->pos,
                          "@ modifier must be preceded by an instant vector selector or range "
                          "vector selector or a subquery"),
               -1;
    return 0;
}

/* Prometheus's setTimestamp / setAtModifierPreprocessor. */
static vg_pq_node *parse_at(vg_pq_parser *p, vg_pq_node *e)
{
    vg_pq_at kind, *at;
    int64_t *at_ms;
    double ts = 0;
    advance(p);
    if (parse_at_value(p, &kind, &ts)) return NULL;
    if (kind == VG_PQ_AT_TS &&
        (isnan(ts) || isinf(ts) || ts >= 9223372036854775807.0 || ts <= -9223372036854775808.0)) {
        char v[64];
        snprintf(v, sizeof v, "%f", ts);
        if (isinf(ts)) snprintf(v, sizeof v, "%s", ts > 0 ? "+Inf" : "-Inf");
        if (isnan(ts)) snprintf(v, sizeof v, "NaN");
        return vg_pq_fail(p, e->pos, "timestamp out of bounds for @ modifier: %s", v), NULL;
    }
    if (at_slots(p, e, &at, &at_ms)) return NULL;
    if (*at != VG_PQ_AT_NONE)
        return vg_pq_fail(p, e->pos, "@ <timestamp> may not be set multiple times"), NULL;
    *at = kind;
    if (kind == VG_PQ_AT_TS) {
        double ms = round(ts * 1000.0);
        *at_ms = ms >= 9223372036854775807.0    ? INT64_MAX
                 : ms <= -9223372036854775808.0 ? INT64_MIN
                                                : (int64_t)ms;
    }
    e->end = p->last_end;
    return e;
}

/* Count one more level of tree depth (chains build deep trees without recursing). */
static int deeper(vg_pq_parser *p)
{
    if (++p->depth <= VG_PQ_MAX_DEPTH) return 0;
    vg_pq_fail(p, p->tok.pos, "expression nested too deeply (over %d levels)", VG_PQ_MAX_DEPTH);
    return -1;
}

static vg_pq_node *parse_postfix(vg_pq_parser *p, vg_pq_node *e)
{
    int saved = p->depth;
    while (e) {
        if (p->tok.type == VG_TOK_LBRACKET)
            e = deeper(p) ? NULL : parse_brackets(p, e);
        else if (at_word(p, &p->tok, "offset"))
            e = parse_offset(p, e);
        else if (p->tok.type == VG_TOK_AT)
            e = parse_at(p, e);
        else
            break;
    }
    p->depth = saved;
    return e;
}

/* ---- unary and binary ---- */

static vg_pq_node *parse_unary(vg_pq_parser *p)
{
    if (p->tok.type != VG_TOK_ADD && p->tok.type != VG_TOK_SUB)
        return parse_postfix(p, parse_primary(p));
    size_t pos = p->tok.pos;
    vg_pq_op op = p->tok.type == VG_TOK_SUB ? VG_PQ_OP_SUB : VG_PQ_OP_ADD;
    advance(p);
    vg_pq_node *e = parse_expr(p, PREC_POW); /* unary binds like '*' */
    if (!e) return NULL;
    if (e->kind == VG_PQ_NUMBER) { /* Prometheus folds the sign into the literal */
        if (op == VG_PQ_OP_SUB) e->u.num = -e->u.num;
        e->pos = pos;
        return e;
    }
    vg_pq_node *n = new_node(p, VG_PQ_UNARY, pos);
    if (!n) return NULL;
    n->u.unary.op = op;
    n->u.unary.expr = e;
    n->type = e->type;
    return n;
}

static int binop_of(const vg_pq_parser *p, vg_pq_op *op, int *prec)
{
    static const struct {
        vg_tok_type t;
        vg_pq_op op;
        int prec;
    } ops[] = {
        {VG_TOK_ADD, VG_PQ_OP_ADD, PREC_ADD},   {VG_TOK_SUB, VG_PQ_OP_SUB, PREC_ADD},
        {VG_TOK_MUL, VG_PQ_OP_MUL, PREC_MUL},   {VG_TOK_DIV, VG_PQ_OP_DIV, PREC_MUL},
        {VG_TOK_MOD, VG_PQ_OP_MOD, PREC_MUL},   {VG_TOK_POW, VG_PQ_OP_POW, PREC_POW},
        {VG_TOK_EQLC, VG_PQ_OP_EQLC, PREC_CMP}, {VG_TOK_NEQ, VG_PQ_OP_NEQ, PREC_CMP},
        {VG_TOK_GTR, VG_PQ_OP_GTR, PREC_CMP},   {VG_TOK_LSS, VG_PQ_OP_LSS, PREC_CMP},
        {VG_TOK_GTE, VG_PQ_OP_GTE, PREC_CMP},   {VG_TOK_LTE, VG_PQ_OP_LTE, PREC_CMP},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (p->tok.type == ops[i].t) return *op = ops[i].op, *prec = ops[i].prec, 1;
    if (p->tok.type != VG_TOK_OP_WORD) return 0;
    if (at_word(p, &p->tok, "and")) return *op = VG_PQ_OP_AND, *prec = PREC_AND, 1;
    if (at_word(p, &p->tok, "unless")) return *op = VG_PQ_OP_UNLESS, *prec = PREC_AND, 1;
    if (at_word(p, &p->tok, "or")) return *op = VG_PQ_OP_OR, *prec = PREC_OR, 1;
    if (at_word(p, &p->tok, "atan2")) return *op = VG_PQ_OP_ATAN2, *prec = PREC_MUL, 1;
    return 0;
}

/* bool, on(...)/ignoring(...), group_left/group_right[(...)] after an operator. */
static int parse_bin_modifiers(vg_pq_parser *p, vg_pq_binary *b)
{
    vg_pq_matching *m = vg_arena_calloc(p->arena, sizeof(*m));
    if (!m) return oom(p), -1;
    b->matching = m;
    if (at_word(p, &p->tok, "bool")) b->return_bool = 1, advance(p);
    if (!at_word(p, &p->tok, "on") && !at_word(p, &p->tok, "ignoring")) return 0;
    m->on = at_word(p, &p->tok, "on");
    advance(p);
    if (parse_grouping(p, &m->labels, &m->nlabels)) return -1;
    int left = at_word(p, &p->tok, "group_left");
    if (!left && !at_word(p, &p->tok, "group_right")) return 0;
    m->card = left ? VG_PQ_CARD_MANY_TO_ONE : VG_PQ_CARD_ONE_TO_MANY;
    advance(p);
    if (p->tok.type == VG_TOK_LPAREN) return parse_grouping(p, &m->include, &m->ninclude);
    return 0;
}

static vg_pq_node *parse_expr(vg_pq_parser *p, int min_prec)
{
    vg_pq_op op;
    int prec, saved = p->depth;
    if (deeper(p)) return p->depth = saved, NULL;
    vg_pq_node *lhs = parse_unary(p);
    while (lhs && binop_of(p, &op, &prec) && prec >= min_prec) {
        vg_pq_node *n = deeper(p) ? NULL : new_node(p, VG_PQ_BINARY, lhs->pos);
        advance(p);
        if (!n || parse_bin_modifiers(p, &n->u.bin)) {
            lhs = NULL;
            break;
        }
        n->u.bin.op = op;
        n->u.bin.lhs = lhs;
        n->u.bin.rhs = parse_expr(p, op == VG_PQ_OP_POW ? prec : prec + 1);
        if (!n->u.bin.rhs) {
            lhs = NULL;
            break;
        }
        n->end = p->last_end;
        lhs = n;
    }
    p->depth = saved;
    return lhs;
}

/* ---- entry points ---- */

static void free_matchers(vg_matcher_t **m, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_matcher_free(m[i]);
    vg_free(m);
}

static vg_err_t parse_all(vg_pq_parser *p, vg_pq_node **root)
{
    advance(p);
    p->last_end = 0;
    *root = parse_expr(p, 0);
    if (*root && p->tok.type != VG_TOK_EOF) unexpected(p, NULL, NULL);
    if (p->rc) return p->rc;
    vg_pq_check(p, *root);
    return p->rc;
}

vg_err_t vg_promql_parse(const char *q, size_t len, vg_promql_expr_t **out, vg_error *err)
{
    *out = NULL;
    if (len > VG_PQ_MAX_QUERY)
        return vg_error_set(err, VG_ETOOLARGE, "query is %zu bytes, over the limit of %d", len,
                            VG_PQ_MAX_QUERY);
    vg_promql_expr_t *e = vg_calloc(1, sizeof(*e));
    if (!e || !(e->arena = vg_arena_new(0)) || !(e->query = vg_arena_strndup(e->arena, q, len))) {
        if (e) vg_arena_free(e->arena);
        vg_free(e);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    vg_pq_parser p = {.in = e->query, .len = len, .arena = e->arena, .err = err};
    vg_lex_init(&p.lx, e->query, len);
    vg_err_t rc = parse_all(&p, &e->root);
    if (rc) {
        free_matchers(p.matchers, p.nmatchers);
        vg_arena_free(e->arena);
        vg_free(e);
        return rc;
    }
    vg_free(p.matchers); /* the tree owns them now; vg_promql_expr_free walks it */
    *out = e;
    return VG_OK;
}

static void free_node_matchers(vg_pq_node *n)
{
    if (!n) return;
    switch (n->kind) {
    case VG_PQ_VECTOR_SEL:
    case VG_PQ_MATRIX_SEL:
        for (size_t i = 0; i < n->u.sel.nmatchers; i++) vg_matcher_free(n->u.sel.matchers[i]);
        break;
    case VG_PQ_SUBQUERY: free_node_matchers(n->u.sub.expr); break;
    case VG_PQ_PAREN:
    case VG_PQ_UNARY:
    case VG_PQ_STEP_INVARIANT: free_node_matchers(n->u.unary.expr); break;
    case VG_PQ_BINARY:
        free_node_matchers(n->u.bin.lhs);
        free_node_matchers(n->u.bin.rhs);
        break;
    case VG_PQ_AGGREGATE:
        free_node_matchers(n->u.agg.param);
        free_node_matchers(n->u.agg.expr);
        break;
    case VG_PQ_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++) free_node_matchers(n->u.call.args[i]);
        break;
    default: break;
    }
}

void vg_promql_expr_free(vg_promql_expr_t *e)
{
    if (!e) return;
    free_node_matchers(e->root);
    vg_arena_free(e->arena);
    vg_free(e);
}
