/*
 * lex.h - PromQL lexer (the seed of the full parser).
 *
 * It follows the Prometheus lexer's token rules and error messages, because
 * users compare our errors with promtool's: positions are byte offsets,
 * strings use Go escape rules (single, double and backtick quotes), metric
 * identifiers may contain ':' outside braces, keywords are recognised only
 * outside braces, and spaces and '#' comments are skipped. The lexer never
 * allocates; tokens point into the input. Numbers and durations are scanned
 * with Prometheus's rules (scanNumber, then a duration's unit letters), so
 * "1.5.2" or "5mx" fail here with "bad number or duration syntax"; the
 * parser converts the text (promql/parser_lit.c).
 */
#ifndef VIGIL_PROMQL_LEX_H
#define VIGIL_PROMQL_LEX_H

#include <stddef.h>

#include "vigil/buf.h"
#include "vigil/error.h"

typedef enum vg_tok_type {
    VG_TOK_EOF,
    VG_TOK_ERROR, /* message in lexer->err; no tokens follow */
    VG_TOK_IDENT,
    VG_TOK_METRIC_IDENT, /* identifier containing ':' */
    VG_TOK_KEYWORD,      /* by, sum, offset... (also VG_TOK_AGGR, VG_TOK_OP_WORD below) */
    VG_TOK_AGGR,         /* sum, avg, count, topk... */
    VG_TOK_OP_WORD,      /* and, or, unless, atan2 */
    VG_TOK_STRING,       /* quotes included; see vg_lex_unquote */
    VG_TOK_NUMBER,
    VG_TOK_DURATION,
    VG_TOK_LBRACE,
    VG_TOK_RBRACE,
    VG_TOK_LPAREN,
    VG_TOK_RPAREN,
    VG_TOK_LBRACKET,
    VG_TOK_RBRACKET,
    VG_TOK_COMMA,
    VG_TOK_COLON,
    VG_TOK_EQL,       /* =  */
    VG_TOK_NEQ,       /* != */
    VG_TOK_EQL_REGEX, /* =~ */
    VG_TOK_NEQ_REGEX, /* !~ */
    VG_TOK_EQLC,      /* == */
    VG_TOK_LSS,
    VG_TOK_LTE,
    VG_TOK_GTR,
    VG_TOK_GTE,
    VG_TOK_ADD,
    VG_TOK_SUB,
    VG_TOK_MUL,
    VG_TOK_DIV,
    VG_TOK_MOD,
    VG_TOK_POW,
    VG_TOK_AT,
} vg_tok_type;

typedef struct vg_tok {
    vg_tok_type type;
    size_t pos, len; /* bytes of the input */
} vg_tok;

typedef struct vg_lexer {
    const char *in;
    size_t len, pos;
    int brace_open, bracket_open, paren_depth, done;
    char err[160];
} vg_lexer;

/* Start lexing in[0..len). */
void vg_lex_init(vg_lexer *l, const char *in, size_t len);
/* Next token. After EOF or ERROR, returns EOF. */
void vg_lex_next(vg_lexer *l, vg_tok *t);
/* Decode a STRING token's text (quotes included) with Go rules into out,
 * which needs n bytes. *outlen gets the length; out is NUL-terminated.
 * VG_EPARSE on a malformed literal (the lexer has rejected those already). */
vg_err_t vg_lex_unquote(const char *s, size_t n, char *out, size_t *outlen);
/* Prometheus's description of a token for errors: `identifier "foo"`,
 * `","`, `<op:=~>`, `string "\"a\""`, `end of input`. */
void vg_lex_describe(const char *in, const vg_tok *t, vg_buf *out);
/* Append s as Go's %q would (max_runes > 0 truncates like %.Nq). */
void vg_lex_goquote(vg_buf *out, const char *s, size_t n, size_t max_runes);
/* 1-based line and column (in bytes) of a byte position. */
void vg_lex_linecol(const char *in, size_t len, size_t pos, int *line, int *col);

#endif
