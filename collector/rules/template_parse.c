/*
 * template_parse.c - lexer and parser for the Go text/template subset that
 * Prometheus alert templates use.
 *
 * Shape: a hand-written scanner pulls one token at a time from the source
 * (saving and restoring the cursor is the only lookahead), and a recursive
 * descent parser builds the tree of template_int.h in the caller's arena.
 * Like Go, undefined functions and variables are parse errors, and messages
 * have Go's "template: NAME:LINE: ..." form so `vigilctl check rules` prints
 * what promtool prints. Nesting is capped so hostile input cannot recurse
 * the stack away.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/template_int.h"
#include "vigil/alloc.h"

typedef enum {
    T_EOF,
    T_RDELIM,
    T_IDENT,
    T_FIELD,
    T_DOT,
    T_VAR,
    T_STR,
    T_NUM,
    T_CHAR,
    T_BOOL,
    T_NIL,
    T_PIPE,
    T_LPAREN,
    T_RPAREN,
    T_DECL,
    T_ASSIGN,
    T_COMMA,
    T_IF,
    T_ELSE,
    T_END,
    T_RANGE,
    T_WITH,
    T_DEFINE,
    T_TEMPLATE,
    T_BLOCK,
    T_BREAK,
    T_CONTINUE,
    T_ERR
} ttok;

typedef struct tok {
    ttok t;
    size_t pos, len; /* text is src+pos */
    int space;       /* whitespace before it */
    int trim;        /* T_RDELIM: " -}}" */
} tok;

typedef struct P {
    vg_arena_t *a;
    const char *name, *src;
    size_t cur;
    char *msg;
    int depth, failed, in_range, range_depth;
    const char *vars[TMPL_MAX_VARS];
    size_t nvars;
    tdefine **defs;
} P;

static vg_err_t perr(P *p, size_t pos, const char *fmt, const char *arg)
{
    if (p->failed) return VG_EPARSE;
    int line = 1;
    for (size_t i = 0; i < pos && p->src[i]; i++) line += p->src[i] == '\n';
    int n = snprintf(p->msg, TMPL_MSG, "template: %s:%d: ", p->name, line);
    if (n > 0 && n < TMPL_MSG) snprintf(p->msg + n, (size_t)(TMPL_MSG - n), fmt, arg);
    p->failed = 1;
    return VG_EPARSE;
}

static int is_sp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
static int is_alnum_(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (c & 0x80);
}

static const struct {
    const char *w;
    ttok t;
} KEYWORDS[] = {
    {"if", T_IF},       {"else", T_ELSE},         {"end", T_END},           {"range", T_RANGE},
    {"with", T_WITH},   {"define", T_DEFINE},     {"template", T_TEMPLATE}, {"block", T_BLOCK},
    {"break", T_BREAK}, {"continue", T_CONTINUE}, {"true", T_BOOL},         {"false", T_BOOL},
    {"nil", T_NIL},
};

static ttok keyword(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof KEYWORDS / sizeof KEYWORDS[0]; i++)
        if (strlen(KEYWORDS[i].w) == n && memcmp(KEYWORDS[i].w, s, n) == 0) return KEYWORDS[i].t;
    return T_IDENT;
}

static size_t scan_quoted(const char *s, size_t i, char q)
{
    for (i++; s[i] && s[i] != q; i++) {
        if (q != '`' && s[i] == '\n') return 0;
        if (q != '`' && s[i] == '\\' && s[i + 1]) i++;
    }
    return s[i] == q ? i + 1 : 0;
}

static size_t scan_number(const char *s, size_t i)
{
    if (s[i] == '+' || s[i] == '-') i++;
    while (isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' ||
           ((s[i] == '+' || s[i] == '-') && strchr("eEpP", s[i - 1])))
        i++;
    return i;
}

/* Next token inside an action. */
static tok lex(P *p)
{
    const char *s = p->src;
    tok k = {T_EOF, p->cur, 0, 0, 0};
    size_t i = p->cur;
    while (is_sp(s[i])) {
        if (s[i] == ' ' && s[i + 1] == '-' && s[i + 2] == '}' && s[i + 3] == '}') break;
        i++;
    }
    k.space = i > p->cur;
    k.pos = i;
    size_t e = i + 1;
    char c = s[i];
    if (!c) return k; /* T_EOF: unclosed action */
    if (c == ' ' && s[i + 1] == '-')
        k.t = T_RDELIM, k.trim = 1, e = i + 4;
    else if (c == '}' && s[i + 1] == '}')
        k.t = T_RDELIM, e = i + 2;
    else if (c == '|')
        k.t = T_PIPE;
    else if (c == '(')
        k.t = T_LPAREN;
    else if (c == ')')
        k.t = T_RPAREN;
    else if (c == ',')
        k.t = T_COMMA;
    else if (c == '=')
        k.t = T_ASSIGN;
    else if (c == ':' && s[i + 1] == '=')
        k.t = T_DECL, e = i + 2;
    else if (c == '"' || c == '`' || c == '\'') {
        e = scan_quoted(s, i, c);
        k.t = e ? (c == '\'' ? T_CHAR : T_STR) : T_ERR;
        if (!e) e = i + 1;
    } else if (c == '$') {
        for (e = i + 1; is_alnum_(s[e]); e++) {
        }
        k.t = T_VAR;
    } else if (c == '.' && !isdigit((unsigned char)s[i + 1])) {
        for (e = i + 1; is_alnum_(s[e]); e++) {
        }
        k.t = e == i + 1 ? T_DOT : T_FIELD;
    } else if (isdigit((unsigned char)c) || c == '.' || c == '+' || c == '-') {
        e = scan_number(s, i);
        k.t = T_NUM;
    } else if (is_alnum_(c)) {
        for (e = i + 1; is_alnum_(s[e]); e++) {
        }
        k.t = keyword(s + i, e - i);
    } else
        k.t = T_ERR;
    k.len = e - i;
    p->cur = e;
    return k;
}

static tok peek(P *p)
{
    size_t save = p->cur;
    tok k = lex(p);
    p->cur = save;
    return k;
}

static const char *tok_str(P *p, tok k)
{
    if (k.t == T_EOF) return "EOF";
    if (k.t == T_RDELIM) return "}}";
    return vg_arena_strndup(p->a, p->src + k.pos, k.len > 40 ? 40 : k.len);
}

static vg_err_t unexpected(P *p, tok k, const char *ctx)
{
    if (k.t == T_EOF) return perr(p, k.pos, "%s", "unclosed action");
    if (k.t == T_ERR && p->src[k.pos] == '"')
        return perr(p, k.pos, "%s", "unterminated quoted string");
    if (k.t == T_ERR && p->src[k.pos] == '`')
        return perr(p, k.pos, "%s", "unterminated raw quoted string");
    if (k.t == T_RDELIM && !strcmp(ctx, "parenthesized pipeline"))
        return perr(p, k.pos, "%s", "unclosed left paren");
    char m[96];
    snprintf(m, sizeof m, "unexpected \"%s\" in %s", tok_str(p, k), ctx);
    return perr(p, k.pos, "%s", m);
}

/* ---- literals ---- */

static int hexval(char c)
{
    if (isdigit((unsigned char)c)) return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t put_utf8(char *o, unsigned long r)
{
    if (r < 0x80) return o[0] = (char)r, 1;
    if (r < 0x800) return o[0] = (char)(0xC0 | r >> 6), o[1] = (char)(0x80 | (r & 0x3F)), 2;
    if (r > 0x10FFFF || (r >= 0xD800 && r < 0xE000)) r = 0xFFFD;
    if (r < 0x10000) {
        o[0] = (char)(0xE0 | r >> 12), o[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        return o[2] = (char)(0x80 | (r & 0x3F)), 3;
    }
    o[0] = (char)(0xF0 | r >> 18), o[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((r >> 6) & 0x3F)), o[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

/* One Go escape after the backslash at s[*i]; appends to o; -1 if invalid. */
static int unescape1(const char *s, size_t *i, char *o, size_t *olen)
{
    static const char from[] = "abfnrtv\\'\"", to[] = "\a\b\f\n\r\t\v\\'\"";
    char c = s[++*i];
    const char *f = c ? strchr(from, c) : NULL;
    if (f) return o[(*olen)++] = to[f - from], (*i)++, 0;
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    unsigned long r = 0;
    if (c >= '0' && c <= '7') {
        for (int k = 0; k < 3; k++, (*i)++) {
            if (s[*i] < '0' || s[*i] > '7') return -1;
            r = r * 8 + (unsigned long)(s[*i] - '0');
        }
        if (r > 255) return -1;
        return o[(*olen)++] = (char)r, 0;
    }
    if (!digits) return -1;
    for (int k = 1; k <= digits; k++) {
        int h = hexval(s[*i + (size_t)k]);
        if (h < 0) return -1;
        r = r * 16 + (unsigned long)h;
    }
    *i += (size_t)digits + 1;
    if (c == 'x') return o[(*olen)++] = (char)r, 0;
    *olen += put_utf8(o + *olen, r);
    return 0;
}

static vg_err_t unquote(P *p, tok k, const char **out, size_t *olen)
{
    const char *s = p->src + k.pos;
    char *o = vg_arena_alloc(p->a, k.len * 2 + 4);
    if (!o) return VG_ENOMEM;
    size_t n = 0;
    if (s[0] == '`') {
        for (size_t i = 1; i + 1 < k.len; i++)
            if (s[i] != '\r') o[n++] = s[i];
    } else {
        for (size_t i = 1; i + 1 < k.len;) {
            if (s[i] != '\\')
                o[n++] = s[i++];
            else if (unescape1(s, &i, o, &n) < 0)
                return perr(p, k.pos, "%s", "invalid syntax");
        }
    }
    o[n] = '\0';
    *out = o, *olen = n;
    return VG_OK;
}

static vg_err_t number(P *p, tok k, targ *a)
{
    char *t = vg_arena_strndup(p->a, p->src + k.pos, k.len), *end;
    if (!t) return VG_ENOMEM;
    char *u = t;
    for (char *r = t; *r; r++)
        if (*r != '_') *u++ = *r;
    *u = '\0';
    const char *d = t + (*t == '+' || *t == '-');
    int hex = d[0] == '0' && (d[1] == 'x' || d[1] == 'X');
    if (!hex && strpbrk(d, ".eE")) {
        a->k = A_FLOAT, a->f = strtod(t, &end);
        if (*end || end == t) return perr(p, k.pos, "bad number syntax: \"%s\"", t);
        return VG_OK;
    }
    int base = 10;
    if (d[0] == '0' && (d[1] == 'o' || d[1] == 'O'))
        base = 8, memmove((char *)d, d + 2, strlen(d + 2) + 1);
    else if (d[0] == '0' && (d[1] == 'b' || d[1] == 'B'))
        base = 2, memmove((char *)d, d + 2, strlen(d + 2) + 1);
    else if (hex)
        base = 16;
    else if (d[0] == '0' && d[1])
        base = 8;
    errno = 0;
    a->k = A_INT, a->i = strtoll(t, &end, base);
    if (*end || end == t || errno) {
        a->k = A_FLOAT, a->f = strtod(t, &end);
        if (*end || end == t) return perr(p, k.pos, "bad number syntax: \"%s\"", t);
    }
    return VG_OK;
}

static vg_err_t bad_char(P *p, tok k)
{
    char m[80];
    snprintf(m, sizeof m, "malformed character constant: %.*s", (int)(k.len < 40 ? k.len : 40),
             p->src + k.pos);
    return perr(p, k.pos, "%s", m);
}

static vg_err_t charconst(P *p, tok k, targ *a)
{
    const char *s = p->src + k.pos;
    char o[8];
    size_t n = 0, i = 1;
    if (s[1] == '\\') {
        if (unescape1(s, &i, o, &n) < 0 || i + 1 != k.len) return bad_char(p, k);
        unsigned char c0 = (unsigned char)o[0];
        a->i = c0 < 0x80 ? c0 : c0;
    } else {
        a->i = (unsigned char)s[1];
        if (k.len != 3 && !((unsigned char)s[1] & 0x80)) return bad_char(p, k);
    }
    a->k = A_INT;
    return VG_OK;
}

/* ---- variables ---- */

static int var_known(P *p, const char *s, size_t n)
{
    for (size_t i = p->nvars; i-- > 0;)
        if (strlen(p->vars[i]) == n && memcmp(p->vars[i], s, n) == 0) return 1;
    return 0;
}

static vg_err_t var_push(P *p, const char *name, size_t pos)
{
    if (p->nvars >= TMPL_MAX_VARS) return perr(p, pos, "%s", "too many variables");
    p->vars[p->nvars++] = name;
    return VG_OK;
}

/* ---- pipelines ---- */

static vg_err_t pipeline(P *p, tpipe **out, const char *ctx, ttok end);

static vg_err_t fields(P *p, targ *a)
{
    const char *buf[64];
    size_t n = 0;
    for (tok k = peek(p); k.t == T_FIELD && !k.space; k = peek(p)) {
        lex(p);
        if (n == 64) return perr(p, k.pos, "%s", "field chain too long");
        buf[n] = vg_arena_strndup(p->a, p->src + k.pos + 1, k.len - 1);
        if (!buf[n++]) return VG_ENOMEM;
    }
    if (!n) return VG_OK;
    a->fields = vg_arena_alloc(p->a, n * sizeof *buf);
    if (!a->fields) return VG_ENOMEM;
    memcpy(a->fields, buf, n * sizeof *buf);
    a->nfields = n;
    return VG_OK;
}

static vg_err_t operand(P *p, tok k, targ *a)
{
    a->pos = k.pos, a->text = p->src + k.pos, a->tlen = k.len;
    a->name = p->src + k.pos, a->nlen = k.len;
    vg_err_t rc = VG_OK;
    switch (k.t) {
    case T_IDENT:
        a->k = A_IDENT;
        if (!tmpl_func(a->name, a->nlen, NULL))
            return perr(p, k.pos, "function \"%s\" not defined",
                        vg_arena_strndup(p->a, a->name, a->nlen));
        return VG_OK;
    case T_VAR:
        a->k = A_VAR;
        if (!var_known(p, a->name, a->nlen))
            return perr(p, k.pos, "undefined variable \"%s\"",
                        vg_arena_strndup(p->a, a->name, a->nlen));
        break;
    case T_FIELD: a->k = A_FIELD, a->name++, a->nlen--, p->cur = k.pos + k.len; break;
    case T_DOT: a->k = A_DOT; break;
    case T_NIL: a->k = A_NIL; return VG_OK;
    case T_BOOL: a->k = A_BOOL, a->i = k.len == 4; return VG_OK;
    case T_NUM: return number(p, k, a);
    case T_CHAR: return charconst(p, k, a);
    case T_STR: a->k = A_STR; return unquote(p, k, &a->name, &a->nlen);
    case T_LPAREN:
        if (++p->depth > TMPL_MAX_DEPTH) return perr(p, k.pos, "%s", "max nesting depth exceeded");
        a->k = A_PIPE;
        rc = pipeline(p, &a->pipe, "parenthesized pipeline", T_RPAREN);
        p->depth--;
        if (rc) return rc;
        a->tlen = p->cur - k.pos;
        break;
    default: return unexpected(p, k, "command");
    }
    if (a->k == A_FIELD) {
        /* .a.b: the first field is the chain's own name */
        p->cur = k.pos;
        a->k = A_DOT;
    }
    rc = fields(p, a);
    a->tlen = p->cur - k.pos;
    return rc;
}

static vg_err_t command(P *p, tcmd *c, ttok end)
{
    targ buf[32];
    size_t n = 0;
    for (;;) {
        tok k = peek(p);
        if (k.t == T_PIPE || k.t == end || k.t == T_RDELIM || k.t == T_RPAREN) {
            if (k.t != end && k.t != T_PIPE) return unexpected(p, k, "command");
            break;
        }
        if (n && !k.space && k.t != T_LPAREN && buf[n - 1].k != A_PIPE)
            return unexpected(p, k, "operand");
        lex(p);
        if (n == 32) return perr(p, k.pos, "%s", "too many arguments");
        memset(&buf[n], 0, sizeof buf[n]);
        vg_err_t rc = operand(p, k, &buf[n]);
        if (rc) return rc;
        if (!n) c->pos = k.pos;
        n++;
    }
    if (!n) return perr(p, p->cur, "%s", "missing value for command");
    c->args = vg_arena_alloc(p->a, n * sizeof *buf);
    if (!c->args) return VG_ENOMEM;
    memcpy(c->args, buf, n * sizeof *buf);
    c->nargs = n;
    return VG_OK;
}

/* Optional "$x :=", "$x =", "$i, $v :=" at the start of a pipeline. */
static vg_err_t decl(P *p, tpipe *pp)
{
    size_t save = p->cur;
    tok v1 = lex(p), op = lex(p);
    if (v1.t != T_VAR) return p->cur = save, VG_OK;
    tok v2 = {0};
    if (op.t == T_COMMA && p->in_range) {
        v2 = lex(p), op = lex(p);
        if (v2.t != T_VAR) return p->cur = save, VG_OK;
    }
    if (op.t != T_DECL && op.t != T_ASSIGN) return p->cur = save, VG_OK;
    pp->is_assign = op.t == T_ASSIGN;
    tok vs[2] = {v1, v2};
    pp->nvars = v2.len ? 2 : 1;
    for (size_t i = 0; i < pp->nvars; i++) {
        pp->vars[i] = vg_arena_strndup(p->a, p->src + vs[i].pos, vs[i].len);
        if (!pp->vars[i]) return VG_ENOMEM;
    }
    return VG_OK;
}

/* Go's checkPipeline: stages after the first must be able to take an argument. */
static vg_err_t check_stages(P *p, const tcmd *cmds, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        akind f = cmds[i].args[0].k;
        if (f == A_BOOL || f == A_NIL || f == A_INT || f == A_FLOAT || f == A_STR ||
            (f == A_DOT && !cmds[i].args[0].nfields)) {
            char m[64];
            snprintf(m, sizeof m, "non executable command in pipeline stage %zu", i + 1);
            return perr(p, cmds[i].pos, "%s", m);
        }
    }
    return VG_OK;
}

static vg_err_t pipeline(P *p, tpipe **out, const char *ctx, ttok end)
{
    tpipe *pp = vg_arena_calloc(p->a, sizeof *pp);
    tcmd cmds[32];
    if (!pp) return VG_ENOMEM;
    pp->pos = peek(p).pos;
    vg_err_t rc = decl(p, pp);
    for (; !rc;) {
        tok k = peek(p);
        if (k.t == end && !pp->ncmds) {
            if (end == T_RPAREN)
                return perr(p, k.pos, "%s", "missing value for parenthesized pipeline");
            return perr(p, k.pos, "missing value for %s", ctx);
        }
        if (k.t == T_RDELIM && end == T_RPAREN) return unexpected(p, k, "parenthesized pipeline");
        if (k.t == T_PIPE && !pp->ncmds) return unexpected(p, k, "command");
        if (pp->ncmds == 32) return perr(p, k.pos, "%s", "pipeline too long");
        memset(&cmds[pp->ncmds], 0, sizeof cmds[0]);
        rc = command(p, &cmds[pp->ncmds], end);
        if (rc) return rc;
        pp->ncmds++;
        k = lex(p);
        if (k.t == end) {
            if (k.trim)
                while (is_sp(p->src[p->cur])) p->cur++;
            break;
        }
        if (k.t != T_PIPE)
            return unexpected(p, k, end == T_RPAREN ? "parenthesized pipeline" : "command");
        if (peek(p).t == end) {
            lex(p);
            break;
        }
    }
    if (rc) return rc;
    if ((rc = check_stages(p, cmds, pp->ncmds))) return rc;
    if (!pp->is_assign)
        for (size_t i = 0; i < pp->nvars; i++)
            if ((rc = var_push(p, pp->vars[i], pp->pos))) return rc;
    pp->cmds = vg_arena_alloc(p->a, pp->ncmds * sizeof *cmds);
    if (!pp->cmds) return VG_ENOMEM;
    memcpy(pp->cmds, cmds, pp->ncmds * sizeof *cmds);
    *out = pp;
    return VG_OK;
}

/* ---- lists and control structures ---- */

typedef enum { STOP_EOF, STOP_END, STOP_ELSE } stop;

static vg_err_t list(P *p, tnode **out, stop *why, int toplevel);

static tnode *node(P *p, nkind k, size_t pos)
{
    tnode *n = vg_arena_calloc(p->a, sizeof *n);
    if (n) n->k = k, n->pos = pos;
    return n;
}

static vg_err_t expect_rdelim(P *p, const char *ctx)
{
    tok k = lex(p);
    if (k.t == T_RDELIM) {
        if (k.trim)
            while (is_sp(p->src[p->cur])) p->cur++;
        return VG_OK;
    }
    return unexpected(p, k, ctx);
}

/* if/range/with after the keyword; the closing {{end}} is consumed. */
static vg_err_t control(P *p, nkind kind, size_t pos, tnode **out)
{
    static const char *ctx[] = {[N_IF] = "if", [N_RANGE] = "range", [N_WITH] = "with"};
    if (++p->depth > TMPL_MAX_DEPTH) return perr(p, pos, "%s", "max nesting depth exceeded");
    size_t scope = p->nvars;
    int was_range = p->in_range;
    p->in_range = kind == N_RANGE;
    tnode *n = node(p, kind, pos);
    if (!n) return VG_ENOMEM;
    vg_err_t rc = pipeline(p, &n->pipe, ctx[kind], T_RDELIM);
    stop why = STOP_EOF;
    p->in_range = was_range;
    p->range_depth += kind == N_RANGE;
    if (!rc) rc = list(p, &n->list, &why, 0);
    p->range_depth -= kind == N_RANGE;
    if (!rc && why == STOP_ELSE) {
        tok k = peek(p);
        if ((k.t == T_IF && kind == N_IF) || (k.t == T_WITH && kind == N_WITH)) {
            lex(p); /* else if / else with: nested node that also eats {{end}} */
            tnode *l = node(p, N_LIST, k.pos);
            rc = l ? control(p, kind, k.pos, &l->first) : VG_ENOMEM;
            n->elselist = l;
            why = STOP_END;
        } else if (!(rc = expect_rdelim(p, "else")))
            rc = list(p, &n->elselist, &why, 0);
        if (!rc && why == STOP_ELSE) rc = perr(p, p->cur, "%s", "expected end; found {{else}}");
    }
    p->nvars = scope;
    p->depth--;
    if (!rc && why != STOP_END) rc = perr(p, p->cur, "%s", "unexpected EOF");
    *out = n;
    return rc;
}

/* The body of a define or block up to its {{end}}, registered under name. */
static vg_err_t define_body(P *p, const char *name)
{
    tdefine *d = vg_arena_calloc(p->a, sizeof *d);
    if (!d) return VG_ENOMEM;
    d->name = name;
    size_t scope = p->nvars;
    p->nvars = 1; /* only $ inside a define */
    int rd = p->range_depth;
    p->range_depth = 0;
    stop why = STOP_EOF;
    p->depth++;
    vg_err_t rc = list(p, &d->body, &why, 0);
    p->depth--;
    p->nvars = scope;
    p->range_depth = rd;
    if (!rc && why != STOP_END) rc = perr(p, p->cur, "%s", "unexpected EOF");
    if (rc) return rc;
    d->next = *p->defs;
    *p->defs = d;
    return VG_OK;
}

static vg_err_t define(P *p, size_t pos)
{
    if (p->depth) return perr(p, pos, "%s", "unexpected <define> in command");
    tok k = lex(p);
    if (k.t != T_STR) return unexpected(p, k, "define clause");
    const char *name;
    size_t nlen = 0;
    vg_err_t rc = unquote(p, k, &name, &nlen);
    if (!rc) rc = expect_rdelim(p, "define clause");
    return rc ? rc : define_body(p, name);
}

/* {{template "name" [pipeline]}}; a block is the same call plus a define. */
static vg_err_t tmpl_call(P *p, int block, tnode **out)
{
    const char *ctx = block ? "block clause" : "template clause";
    tok k = lex(p);
    if (k.t != T_STR) return unexpected(p, k, ctx);
    tnode *n = node(p, N_TEMPLATE, k.pos);
    if (!n) return VG_ENOMEM;
    vg_err_t rc = unquote(p, k, &n->text, &n->len);
    if (rc) return rc;
    if (peek(p).t == T_RDELIM && !block)
        rc = expect_rdelim(p, ctx);
    else
        rc = pipeline(p, &n->pipe, ctx, T_RDELIM);
    *out = n;
    if (!rc && block) rc = define_body(p, n->text);
    return rc;
}

/* {{break}} / {{continue}}: only directly inside a range body. */
static vg_err_t loop_jump(P *p, tok k, tnode **out)
{
    const char *w = p->src[k.pos] == 'b' ? "break" : "continue";
    char m[64];
    if (!p->range_depth) {
        snprintf(m, sizeof m, "{{%s}} outside {{range}}", w);
        return perr(p, k.pos, "%s", m);
    }
    tok e = lex(p);
    if (e.t != T_RDELIM) {
        snprintf(m, sizeof m, "unexpected \"%s\" in {{%s}}", tok_str(p, e), w);
        return perr(p, e.pos, "%s", m);
    }
    if (e.trim)
        while (is_sp(p->src[p->cur])) p->cur++;
    *out = node(p, w[0] == 'b' ? N_BREAK : N_CONTINUE, k.pos);
    return *out ? VG_OK : VG_ENOMEM;
}

/* One {{...}} after the left delimiter. *n may stay NULL (define, comment). */
static vg_err_t action(P *p, tnode **n, stop *why)
{
    tok k = peek(p);
    switch (k.t) {
    case T_END:
        lex(p);
        *why = STOP_END;
        return expect_rdelim(p, "end");
    case T_ELSE:
        lex(p);
        *why = STOP_ELSE;
        return VG_OK;
    case T_IF: lex(p); return control(p, N_IF, k.pos, n);
    case T_RANGE: lex(p); return control(p, N_RANGE, k.pos, n);
    case T_WITH: lex(p); return control(p, N_WITH, k.pos, n);
    case T_DEFINE: lex(p); return define(p, k.pos);
    case T_TEMPLATE: lex(p); return tmpl_call(p, 0, n);
    case T_BREAK:
    case T_CONTINUE: lex(p); return loop_jump(p, k, n);
    case T_BLOCK: lex(p); return tmpl_call(p, 1, n);
    default: break;
    }
    tnode *a = node(p, N_ACTION, k.pos);
    if (!a) return VG_ENOMEM;
    *n = a;
    return pipeline(p, &a->pipe, "command", T_RDELIM);
}

/* After "{{": trim marker and comments. 1 = comment consumed, 0 = action. */
static int comment(P *p, vg_err_t *rc)
{
    const char *s = p->src + p->cur;
    if (s[0] != '/' || s[1] != '*') return 0;
    const char *e = strstr(s + 2, "*/");
    if (!e) return *rc = perr(p, p->cur, "%s", "unclosed comment"), 1;
    e += 2;
    int trim = 0;
    if (e[0] == ' ' && e[1] == '-' && e[2] == '}' && e[3] == '}') trim = 1, e += 2;
    if (e[0] != '}' || e[1] != '}')
        return *rc = perr(p, p->cur, "%s", "comment ends before closing delimiter"), 1;
    p->cur = (size_t)(e + 2 - p->src);
    if (trim)
        while (is_sp(p->src[p->cur])) p->cur++;
    return 1;
}

static vg_err_t text_node(P *p, tnode ***tail, size_t from, size_t to)
{
    if (to <= from) return VG_OK;
    tnode *t = node(p, N_TEXT, from);
    if (!t) return VG_ENOMEM;
    t->text = p->src + from, t->len = to - from;
    **tail = t, *tail = &t->next;
    return VG_OK;
}

static vg_err_t list(P *p, tnode **out, stop *why, int toplevel)
{
    tnode *l = node(p, N_LIST, p->cur);
    if (!l) return VG_ENOMEM;
    tnode **tail = &l->first;
    vg_err_t rc = VG_OK;
    *out = l;
    *why = STOP_EOF;
    while (!rc) {
        const char *o = strstr(p->src + p->cur, "{{");
        size_t start = o ? (size_t)(o - p->src) : strlen(p->src), text_end = start;
        int ltrim = o && o[2] == '-' && is_sp(o[3]);
        if (ltrim)
            while (text_end > p->cur && is_sp(p->src[text_end - 1])) text_end--;
        if ((rc = text_node(p, &tail, p->cur, text_end)) || !o) break;
        p->cur = start + 2 + (ltrim ? 2 : 0);
        if (comment(p, &rc)) continue;
        tnode *n = NULL;
        if ((rc = action(p, &n, why))) break;
        if (n) *tail = n, tail = &n->next;
        if (*why != STOP_EOF) {
            if (toplevel)
                rc = perr(p, p->cur, "unexpected {{%s}}", *why == STOP_END ? "end" : "else");
            break;
        }
    }
    return rc;
}

vg_err_t tmpl_parse(vg_arena_t *a, const char *name, const char *src, ttree *out, char *msg)
{
    P p = {.a = a, .name = name, .src = src, .msg = msg, .defs = &out->defs};
    static const char *predef[] = {"$", "$labels", "$externalLabels", "$externalURL", "$value"};
    for (size_t i = 0; i < 5; i++) p.vars[p.nvars++] = predef[i];
    memset(out, 0, sizeof *out);
    out->name = name, out->src = src;
    stop why;
    vg_err_t rc = list(&p, &out->root, &why, 1);
    if (rc == VG_ENOMEM && !p.failed) snprintf(msg, TMPL_MSG, "out of memory");
    return rc;
}
