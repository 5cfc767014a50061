/*
 * selector.c - recursive-descent parser for vector selectors on top of lex.c.
 *
 * Grammar:
 *   selector := name [ '{' list '}' ] | '{' list '}'
 *   list     := [ item { ',' item } [ ',' ] ]
 *   item     := (ident | string) op string | string      (a bare string is the name)
 * Messages follow Prometheus's "unexpected <token> in label matching,
 * expected <what>" so users recognise them.
 */
#include "promql/selector.h"

#include <string.h>

#include "promql/lex.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"

typedef struct parser {
    const char *in;
    size_t len;
    vg_lexer lx;
    vg_tok tok;
    vg_selector *out;
    size_t cap;
    vg_error *err;
} parser;

static void advance(parser *p)
{
    vg_lex_next(&p->lx, &p->tok);
}

/* "L:C: parse error: <msg>" at byte pos. */
static vg_err_t fail_at(parser *p, vg_err_t code, size_t pos, const char *msg)
{
    int line, col;
    vg_lex_linecol(p->in, p->len, pos, &line, &col);
    return vg_error_set(p->err, code, "%d:%d: parse error: %s", line, col, msg);
}

static vg_err_t fail_lex(parser *p)
{
    return fail_at(p, VG_EPARSE, p->tok.pos, p->lx.err);
}

static vg_err_t unexpected(parser *p, const char *expected)
{
    if (p->tok.type == VG_TOK_ERROR) return fail_lex(p);
    vg_buf b;
    vg_buf_init(&b, 512);
    vg_buf_puts(&b, "unexpected ");
    vg_lex_describe(p->in, &p->tok, &b);
    vg_buf_printf(&b, " in label matching, expected %s", expected);
    vg_err_t rc = fail_at(p, VG_EPARSE, p->tok.pos, b.data ? b.data : "unexpected token");
    vg_buf_free(&b);
    return rc;
}

/* Decoded copy of the current STRING token (caller frees). */
static char *string_value(parser *p)
{
    char *s = vg_malloc(p->tok.len + 1);
    size_t n;
    if (s && vg_lex_unquote(p->in + p->tok.pos, p->tok.len, s, &n) != VG_OK) {
        vg_free(s);
        return NULL;
    }
    return s;
}

static vg_err_t add_matcher(parser *p, vg_match_op op, const char *name, const char *value,
                            size_t pos)
{
    vg_error merr = {0};
    if (p->out->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 4;
        vg_matcher_t **nm = vg_realloc(p->out->m, ncap * sizeof(*nm));
        if (!nm) return vg_error_set(p->err, VG_ENOMEM, "out of memory");
        p->out->m = nm;
        p->cap = ncap;
    }
    vg_err_t rc = vg_matcher_new(op, name, value, &p->out->m[p->out->n], &merr);
    if (rc == VG_ENOMEM) return vg_error_set(p->err, rc, "out of memory");
    if (rc) return fail_at(p, VG_EPARSE, pos, vg_error_msg(&merr, rc));
    p->out->n++;
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

/* After the label name (already decoded into name): op and value. */
static vg_err_t parse_matcher_rest(parser *p, const char *name, size_t pos)
{
    vg_match_op op;
    if (!match_op(p->tok.type, &op)) return unexpected(p, "label matching operator");
    advance(p);
    if (p->tok.type != VG_TOK_STRING) return unexpected(p, "string");
    char *value = string_value(p);
    if (!value) return fail_at(p, VG_EPARSE, p->tok.pos, "malformed string literal");
    vg_err_t rc = add_matcher(p, op, name, value, pos);
    vg_free(value);
    if (!rc) advance(p);
    return rc;
}

static vg_err_t parse_item(parser *p)
{
    size_t pos = p->tok.pos;
    char *name;
    if (p->tok.type == VG_TOK_IDENT) {
        name = vg_strndup(p->in + p->tok.pos, p->tok.len);
    } else if (p->tok.type == VG_TOK_STRING) {
        name = string_value(p);
        if (!name) return fail_at(p, VG_EPARSE, pos, "malformed string literal");
    } else {
        return unexpected(p, "identifier or \"}\"");
    }
    if (!name) return vg_error_set(p->err, VG_ENOMEM, "out of memory");
    int quoted = p->tok.type == VG_TOK_STRING;
    advance(p);
    vg_err_t rc;
    if (quoted && (p->tok.type == VG_TOK_COMMA || p->tok.type == VG_TOK_RBRACE))
        rc = add_matcher(p, VG_MATCH_EQ, VG_METRIC_NAME, name, pos); /* {"metric"} */
    else
        rc = parse_matcher_rest(p, name, pos);
    vg_free(name);
    return rc;
}

/* Called on '{'; consumes through '}'. */
static vg_err_t parse_braces(parser *p)
{
    advance(p);
    while (p->tok.type != VG_TOK_RBRACE) {
        vg_err_t rc = parse_item(p);
        if (rc) return rc;
        if (p->tok.type == VG_TOK_COMMA)
            advance(p);
        else if (p->tok.type != VG_TOK_RBRACE)
            return unexpected(p, "\",\" or \"}\"");
    }
    advance(p);
    return VG_OK;
}

/* Semantic checks after the syntax: name set twice, all matchers empty. */
static vg_err_t check_selector(parser *p, const char *name, size_t start)
{
    for (size_t i = 0; name && i < p->out->n; i++) {
        if (strcmp(vg_matcher_name(p->out->m[i]), VG_METRIC_NAME) != 0) continue;
        vg_buf b;
        vg_buf_init(&b, 1024);
        vg_buf_puts(&b, "metric name must not be set twice: ");
        vg_lex_goquote(&b, name, strlen(name), 0);
        vg_buf_puts(&b, " or ");
        const char *v = vg_matcher_value(p->out->m[i]);
        vg_lex_goquote(&b, v, strlen(v), 0);
        vg_err_t rc = fail_at(p, VG_EPARSE, start, b.data ? b.data : "metric name set twice");
        vg_buf_free(&b);
        return rc;
    }
    for (size_t i = 0; i < p->out->n; i++)
        if (!vg_matcher_matches_empty(p->out->m[i])) return VG_OK;
    if (name) return VG_OK;
    return fail_at(p, VG_EPARSE, start,
                   "vector selector must contain at least one non-empty matcher");
}

static vg_err_t unsupported(parser *p)
{
    if (p->tok.type == VG_TOK_ERROR) return fail_lex(p);
    int line, col;
    vg_lex_linecol(p->in, p->len, p->tok.pos, &line, &col);
    return vg_error_set(p->err, VG_EUNSUPPORTED,
                        "%d:%d: only vector selectors are supported in this build", line, col);
}

static vg_err_t parse_selector(parser *p)
{
    char *name = NULL;
    vg_err_t rc = VG_OK;
    advance(p);
    size_t start = p->tok.pos;
    if (p->tok.type == VG_TOK_EOF)
        return fail_at(p, VG_EPARSE, start, "no expression found in input");
    if (p->tok.type == VG_TOK_IDENT || p->tok.type == VG_TOK_METRIC_IDENT) {
        name = vg_strndup(p->in + p->tok.pos, p->tok.len);
        if (!name) return vg_error_set(p->err, VG_ENOMEM, "out of memory");
        advance(p);
    } else if (p->tok.type != VG_TOK_LBRACE) {
        return unsupported(p);
    }
    if (p->tok.type == VG_TOK_LBRACE) rc = parse_braces(p);
    if (!rc) rc = check_selector(p, name, start);
    if (!rc && name) rc = add_matcher(p, VG_MATCH_EQ, VG_METRIC_NAME, name, start);
    if (!rc && p->tok.type != VG_TOK_EOF) rc = unsupported(p);
    vg_free(name);
    return rc;
}

vg_err_t vg_selector_parse(const char *s, size_t len, vg_selector *out, vg_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len > VG_SELECTOR_MAX)
        return vg_error_set(err, VG_ETOOLARGE, "selector is %zu bytes, over the limit of %d", len,
                            VG_SELECTOR_MAX);
    parser p = {.in = s, .len = len, .out = out, .err = err};
    vg_lex_init(&p.lx, s, len);
    vg_err_t rc = parse_selector(&p);
    if (rc) vg_selector_free(out);
    return rc;
}

void vg_selector_free(vg_selector *sel)
{
    if (!sel) return;
    for (size_t i = 0; i < sel->n; i++) vg_matcher_free(sel->m[i]);
    vg_free(sel->m);
    sel->m = NULL;
    sel->n = 0;
}
