/*
 * lex.c - PromQL tokens, Go string literals and Go-style error quoting.
 *
 * The state is two flags (inside braces, inside brackets) and a paren depth,
 * mirroring Prometheus's state functions; error messages and their positions
 * (the start of the token being scanned) are Prometheus's, so "1:14: parse
 * error: ..." points at the same byte promtool would.
 */
#include "promql/lex.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RUNE_EOF (-1)
#define RUNE_BAD 0xFFFD

void vg_lex_init(vg_lexer *l, const char *in, size_t len)
{
    memset(l, 0, sizeof(*l));
    l->in = in;
    l->len = len;
}

/* ---- UTF-8 ---- */

/* Decode the rune at s[0..n); *w = its width (1 for invalid bytes). */
static long decode_rune(const unsigned char *s, size_t n, size_t *w)
{
    *w = 1;
    if (n == 0) return RUNE_EOF;
    if (s[0] < 0x80) return s[0];
    size_t need = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
    if (need == 0 || s[0] > 0xF4 || need > n) return RUNE_BAD;
    long r = s[0] & (0x3F >> (need - 1));
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return RUNE_BAD;
        r = (r << 6) | (s[i] & 0x3F);
    }
    static const long min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (r < min[need] || r > 0x10FFFF || (r >= 0xD800 && r < 0xE000)) return RUNE_BAD;
    *w = need;
    return r;
}

static long next_rune(vg_lexer *l, size_t *w)
{
    return decode_rune((const unsigned char *)l->in + l->pos, l->len - l->pos, w);
}

static int peek(const vg_lexer *l)
{
    return l->pos < l->len ? (unsigned char)l->in[l->pos] : RUNE_EOF;
}

static size_t put_utf8(char *o, long r)
{
    if (r < 0x80) return (size_t)(o[0] = (char)r, 1);
    if (r < 0x800) {
        o[0] = (char)(0xC0 | (r >> 6));
        o[1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    if (r < 0x10000) {
        o[0] = (char)(0xE0 | (r >> 12));
        o[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        o[2] = (char)(0x80 | (r & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (r >> 18));
    o[1] = (char)(0x80 | ((r >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((r >> 6) & 0x3F));
    o[3] = (char)(0x80 | (r & 0x3F));
    return 4;
}

/* ---- Go-style quoting for messages ---- */

static int is_print(long r)
{
    if (r < 0x80) return r >= 0x20 && r < 0x7F;
    return !(r < 0xA1 || r == 0xAD || r == 0x2028 || r == 0x2029);
}

static void quote_rune_into(vg_buf *b, long r, char quote)
{
    static const char esc[] = "\a\b\f\n\r\t\v";
    static const char code[] = "abfnrtv";
    const char *e = r > 0 && r < 0x80 ? strchr(esc, (int)r) : NULL;
    char tmp[12];
    if (r == quote || r == '\\') {
        vg_buf_putc(b, '\\');
        vg_buf_putc(b, (char)r);
    } else if (e) {
        vg_buf_putc(b, '\\');
        vg_buf_putc(b, code[e - esc]);
    } else if (is_print(r)) {
        vg_buf_append(b, tmp, put_utf8(tmp, r));
    } else if (r < 0x80) {
        vg_buf_printf(b, "\\x%02x", (unsigned)r);
    } else {
        vg_buf_printf(b, r < 0x10000 ? "\\u%04lx" : "\\U%08lx", r);
    }
}

void vg_lex_goquote(vg_buf *out, const char *s, size_t n, size_t max_runes)
{
    vg_buf_putc(out, '"');
    for (size_t i = 0, runes = 0; i < n && (!max_runes || runes < max_runes); runes++) {
        size_t w;
        long r = decode_rune((const unsigned char *)s + i, n - i, &w);
        if (r == RUNE_BAD && w == 1)
            vg_buf_printf(out, "\\x%02x", (unsigned char)s[i]);
        else
            quote_rune_into(out, r, '"');
        i += w;
    }
    vg_buf_putc(out, '"');
}

/* Go's %q of a rune: '}' */
static void fmt_rune(char *o, size_t n, long r)
{
    vg_buf b;
    vg_buf_init(&b, 32);
    vg_buf_putc(&b, '\'');
    quote_rune_into(&b, r, '\'');
    vg_buf_putc(&b, '\'');
    snprintf(o, n, "%s", b.data ? b.data : "''");
    vg_buf_free(&b);
}

/* Go's %#U: U+0071 'q' */
static void fmt_unicode(char *o, size_t n, long r)
{
    char tmp[8] = {0};
    if (is_print(r)) {
        put_utf8(tmp, r);
        snprintf(o, n, "U+%04lX '%s'", r, tmp);
    } else {
        snprintf(o, n, "U+%04lX", r);
    }
}

/* ---- token scanning ---- */

static void emit(vg_lexer *l, vg_tok *t, vg_tok_type type, size_t start)
{
    t->type = type;
    t->pos = start;
    t->len = l->pos - start;
}

static void lex_error(vg_lexer *l, vg_tok *t, size_t start, const char *fmt, const char *arg)
{
    snprintf(l->err, sizeof(l->err), fmt, arg);
    t->type = VG_TOK_ERROR;
    t->pos = start;
    t->len = l->pos > start ? l->pos - start : 0;
    l->done = 1;
}

static int is_alpha(int c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int digit_val(long c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return 16;
}

/* After a backslash. Returns 0 and sets the error on a bad escape. */
static int lex_escape(vg_lexer *l, vg_tok *t, size_t start, char quote)
{
    size_t w;
    char what[40];
    long ch = next_rune(l, &w), x = 0, max;
    int n, base;
    l->pos += ch == RUNE_EOF ? 0 : w;
    if (ch == RUNE_EOF) return lex_error(l, t, start, "%s", "escape sequence not terminated"), 0;
    if (ch > 0 && ch < 0x80 && strchr("abfnrtv\\", (int)ch)) return 1;
    if (ch == quote) return 1;
    if (ch >= '0' && ch <= '7')
        n = 3, base = 8, max = 255;
    else if (ch == 'x')
        n = 2, base = 16, max = 255;
    else if (ch == 'u')
        n = 4, base = 16, max = 0x10FFFF;
    else if (ch == 'U')
        n = 8, base = 16, max = 0x10FFFF;
    else {
        fmt_unicode(what, sizeof what, ch);
        return lex_error(l, t, start, "unknown escape sequence %s", what), 0;
    }
    if (base == 16) ch = next_rune(l, &w), l->pos += ch == RUNE_EOF ? 0 : w;
    for (;;) {
        int d = digit_val(ch);
        if (d >= base) {
            if (ch == RUNE_EOF)
                return lex_error(l, t, start, "%s", "escape sequence not terminated"), 0;
            fmt_unicode(what, sizeof what, ch);
            return lex_error(l, t, start, "illegal character %s in escape sequence", what), 0;
        }
        x = x * base + d;
        if (--n == 0) break;
        ch = next_rune(l, &w);
        l->pos += ch == RUNE_EOF ? 0 : w;
    }
    if (x > max || (x >= 0xD800 && x < 0xE000))
        return lex_error(l, t, start, "%s", "escape sequence is an invalid Unicode code point"), 0;
    return 1;
}

static void lex_string(vg_lexer *l, vg_tok *t, size_t start, char quote)
{
    for (;;) {
        size_t w;
        long r = next_rune(l, &w);
        if (r == RUNE_EOF || r == '\n')
            return lex_error(l, t, start, "%s", "unterminated quoted string");
        l->pos += w;
        if (r == RUNE_BAD) return lex_error(l, t, start, "%s", "invalid UTF-8 rune");
        if (r == '\\' && !lex_escape(l, t, start, quote)) return;
        if (r == quote) return emit(l, t, VG_TOK_STRING, start);
    }
}

static void lex_raw_string(vg_lexer *l, vg_tok *t, size_t start)
{
    for (;;) {
        size_t w;
        long r = next_rune(l, &w);
        if (r == RUNE_EOF) return lex_error(l, t, start, "%s", "unterminated raw string");
        l->pos += w;
        if (r == RUNE_BAD) return lex_error(l, t, start, "%s", "invalid UTF-8 rune");
        if (r == '`') return emit(l, t, VG_TOK_STRING, start);
    }
}

static const char *const aggregators[] = {
    "sum",    "avg",  "count",   "min",          "max",      "group",  "stddev",
    "stdvar", "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio",
};
static const char *const keywords[] = {
    "offset",     "smoothed",    "anchored", "by",    "without", "on",   "ignoring",
    "group_left", "group_right", "bool",     "start", "end",     "step", "range",
};
static const char *const op_words[] = {"and", "or", "unless", "atan2"};

static int in_list(const char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0) return 1;
    return 0;
}

static int followed_by_paren(const vg_lexer *l)
{
    size_t p = l->pos;
    while (p < l->len && is_space((unsigned char)l->in[p])) p++;
    return p < l->len && l->in[p] == '(';
}

static vg_tok_type word_type(const vg_lexer *l, const char *w, size_t n, int colon)
{
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
    if (in_list(aggregators, NELEM(aggregators), w, n)) return VG_TOK_AGGR;
    if (in_list(op_words, NELEM(op_words), w, n)) return VG_TOK_OP_WORD;
    if (in_list(keywords, NELEM(keywords), w, n)) return VG_TOK_KEYWORD;
    if ((n == 3 && (!strncasecmp(w, "inf", 3) || !strncasecmp(w, "nan", 3)))) return VG_TOK_NUMBER;
    if ((n == 4 && !strncasecmp(w, "fill", 4)) || (n == 9 && !strncasecmp(w, "fill_left", 9)) ||
        (n == 10 && !strncasecmp(w, "fill_right", 10)))
        return followed_by_paren(l) ? VG_TOK_KEYWORD : VG_TOK_IDENT;
    return colon ? VG_TOK_METRIC_IDENT : VG_TOK_IDENT;
#undef NELEM
}

static void lex_word(vg_lexer *l, vg_tok *t, size_t start, int allow_colon)
{
    int colon = 0;
    while (l->pos < l->len) {
        int c = (unsigned char)l->in[l->pos];
        if (c == ':' && allow_colon)
            colon = 1;
        else if (!is_alpha(c) && !is_digit(c))
            break;
        l->pos++;
    }
    emit(l, t, allow_colon ? word_type(l, l->in + start, l->pos - start, colon) : VG_TOK_IDENT,
         start);
}

static int accept(vg_lexer *l, const char *set)
{
    int c = peek(l);
    if (c == RUNE_EOF || c == 0 || !strchr(set, c)) return 0;
    l->pos++;
    return 1;
}

static int is_alnum_at(const vg_lexer *l)
{
    int c = peek(l);
    return c != RUNE_EOF && (is_alpha(c) || is_digit(c));
}

/* Prometheus's scanNumber: [0x][.][d][d._eE]* with the anti-patterns that
 * stop "1..2", "1e", "1_" and friends; true when a number ends here. */
static int scan_number(vg_lexer *l)
{
    const char *digits = "0123456789";
    size_t initial = l->pos;
    int dot = 0, exp = 0;
    if (accept(l, "0")) {
        if (accept(l, "xX")) {
            accept(l, "_");
            digits = "0123456789abcdefABCDEF";
        }
    }
    accept(l, ".");
    accept(l, digits);
    for (int c; (c = peek(l)) != RUNE_EOF && c && (strchr(digits, c) || strchr("._eE", c));) {
        int hex = strlen(digits) > 10;
        if (c == '.') {
            if (dot) return l->pos++, 0;
            dot = 1, l->pos++;
            if (accept(l, "_.") || hex) return 0;
        } else if ((c == 'e' || c == 'E') && !hex) {
            if (exp) return l->pos++, 0;
            exp = 1, l->pos++;
            accept(l, "+-");
            if (accept(l, "._eE") || peek(l) == RUNE_EOF) return 0;
        } else if (c == '_') {
            l->pos++;
            if (accept(l, "._eE") || peek(l) == RUNE_EOF) return 0;
        } else {
            while ((c = peek(l)) != RUNE_EOF && c && strchr(digits, c)) l->pos++;
        }
    }
    return l->pos != initial && !is_alnum_at(l);
}

/* Prometheus's acceptRemainingDuration: unit letters after a number. */
static int scan_duration_rest(vg_lexer *l)
{
    if (!accept(l, "smhdwy")) return 0;
    accept(l, "s");
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789")) {
        }
        if (!accept(l, "smhdw")) return 0;
        accept(l, "s");
    }
    if (is_alnum_at(l)) return l->pos++, 0;
    return 1;
}

static void lex_number(vg_lexer *l, vg_tok *t, size_t start)
{
    l->pos = start;
    if (scan_number(l)) return emit(l, t, VG_TOK_NUMBER, start);
    if (scan_duration_rest(l)) return emit(l, t, VG_TOK_DURATION, start);
    char what[64];
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_lex_goquote(&b, l->in + start, l->pos - start, 0);
    snprintf(what, sizeof what, "%s", b.data ? b.data : "\"\"");
    vg_buf_free(&b);
    lex_error(l, t, start, "bad number or duration syntax: %s", what);
}

static void lex_inside_braces(vg_lexer *l, vg_tok *t, size_t start)
{
    char what[16];
    size_t w;
    long r = next_rune(l, &w);
    l->pos += r == RUNE_EOF ? 0 : w;
    if (r == RUNE_EOF) return lex_error(l, t, start, "%s", "unexpected end of input inside braces");
    if (is_alpha((int)r)) return l->pos--, lex_word(l, t, start, 0);
    switch (r) {
    case ',': return emit(l, t, VG_TOK_COMMA, start);
    case '"':
    case '\'': return lex_string(l, t, start, (char)r);
    case '`': return lex_raw_string(l, t, start);
    case '=':
        if (peek(l) == '~') return l->pos++, emit(l, t, VG_TOK_EQL_REGEX, start);
        return emit(l, t, VG_TOK_EQL, start);
    case '!':
        r = next_rune(l, &w);
        l->pos += r == RUNE_EOF ? 0 : w;
        if (r == '~') return emit(l, t, VG_TOK_NEQ_REGEX, start);
        if (r == '=') return emit(l, t, VG_TOK_NEQ, start);
        fmt_rune(what, sizeof what, r);
        return lex_error(l, t, start, "unexpected character after '!' inside braces: %s", what);
    case '{': return lex_error(l, t, start, "%s", "unexpected left brace '{'");
    case '}': return l->brace_open = 0, emit(l, t, VG_TOK_RBRACE, start);
    }
    fmt_rune(what, sizeof what, r);
    lex_error(l, t, start, "unexpected character inside braces: %s", what);
}

/* Two-character operators and single punctuation outside braces. */
static int lex_operator(vg_lexer *l, vg_tok *t, size_t start, long r)
{
    static const char single[] = ",*/%+-^@";
    static const vg_tok_type stype[] = {VG_TOK_COMMA, VG_TOK_MUL, VG_TOK_DIV, VG_TOK_MOD,
                                        VG_TOK_ADD,   VG_TOK_SUB, VG_TOK_POW, VG_TOK_AT};
    const char *p = r > 0 && r < 0x80 ? strchr(single, (int)r) : NULL;
    if (p) return emit(l, t, stype[p - single], start), 1;
    int n = peek(l);
    switch (r) {
    case '=':
        if (n == '=') return l->pos++, emit(l, t, VG_TOK_EQLC, start), 1;
        if (n == '~') return lex_error(l, t, start, "%s", "unexpected character after '=': '~'"), 1;
        return emit(l, t, VG_TOK_EQL, start), 1;
    case '<':
        return (n == '=' ? l->pos++ : 0), emit(l, t, n == '=' ? VG_TOK_LTE : VG_TOK_LSS, start), 1;
    case '>':
        return (n == '=' ? l->pos++ : 0), emit(l, t, n == '=' ? VG_TOK_GTE : VG_TOK_GTR, start), 1;
    }
    return 0;
}

static void lex_eof(vg_lexer *l, vg_tok *t, size_t start)
{
    if (l->paren_depth != 0) return lex_error(l, t, start, "%s", "unclosed left parenthesis");
    if (l->bracket_open) return lex_error(l, t, start, "%s", "unclosed left bracket");
    l->done = 1;
    emit(l, t, VG_TOK_EOF, start);
}

static void lex_statement(vg_lexer *l, vg_tok *t, size_t start)
{
    char what[16];
    size_t w;
    long r = next_rune(l, &w);
    if (r == RUNE_EOF) return lex_eof(l, t, start);
    l->pos += w;
    if (r == '!') {
        r = next_rune(l, &w);
        if (r == '=') return l->pos++, emit(l, t, VG_TOK_NEQ, start);
        fmt_rune(what, sizeof what, r == RUNE_EOF ? 0xFFFD : r);
        return lex_error(l, t, start, "unexpected character after '!': %s", what);
    }
    if (lex_operator(l, t, start, r)) return;
    if (is_digit((int)r) || (r == '.' && is_digit(peek(l)))) return lex_number(l, t, start);
    if (r == '"' || r == '\'') return lex_string(l, t, start, (char)r);
    if (r == '`') return lex_raw_string(l, t, start);
    if (r == ':' && l->bracket_open) return emit(l, t, VG_TOK_COLON, start);
    if (is_alpha((int)r) || r == ':') return l->pos--, lex_word(l, t, start, 1);
    switch (r) {
    case '(': return l->paren_depth++, emit(l, t, VG_TOK_LPAREN, start);
    case ')':
        if (--l->paren_depth < 0)
            return lex_error(l, t, l->pos, "%s", "unexpected right parenthesis ')'");
        return emit(l, t, VG_TOK_RPAREN, start);
    case '{': return l->brace_open = 1, emit(l, t, VG_TOK_LBRACE, start);
    case '[':
        if (l->bracket_open) return lex_error(l, t, start, "%s", "unexpected left bracket '['");
        return l->bracket_open = 1, emit(l, t, VG_TOK_LBRACKET, start);
    case ']':
        if (!l->bracket_open) return lex_error(l, t, start, "%s", "unexpected right bracket ']'");
        return l->bracket_open = 0, emit(l, t, VG_TOK_RBRACKET, start);
    }
    fmt_rune(what, sizeof what, r);
    lex_error(l, t, start, "unexpected character: %s", what);
}

/* Skip spaces and # comments (to the end of the line). */
static void skip_blank(vg_lexer *l)
{
    while (l->pos < l->len) {
        char c = l->in[l->pos];
        if (is_space((unsigned char)c))
            l->pos++;
        else if (c == '#')
            while (l->pos < l->len && l->in[l->pos] != '\n' && l->in[l->pos] != '\r') l->pos++;
        else
            break;
    }
}

void vg_lex_next(vg_lexer *l, vg_tok *t)
{
    if (l->done) {
        t->type = VG_TOK_EOF;
        t->pos = l->len;
        t->len = 0;
        return;
    }
    skip_blank(l);
    size_t start = l->pos;
    if (l->brace_open)
        lex_inside_braces(l, t, start);
    else
        lex_statement(l, t, start);
}

/* ---- unquoting ---- */

static vg_err_t unescape(const char *s, size_t n, size_t *i, char quote, char *o, size_t *k)
{
    static const char esc[] = "abfnrtv\\";
    static const char val[] = "\a\b\f\n\r\t\v\\";
    char c = s[(*i)++];
    const char *e = strchr(esc, c);
    if (c && e) return o[(*k)++] = val[e - esc], VG_OK;
    if (c == quote) return o[(*k)++] = c, VG_OK;
    int len = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : (c >= '0' && c <= '7') ? 3 : 0;
    int base = (c >= '0' && c <= '7') ? 8 : 16;
    if (len == 0) return VG_EPARSE;
    if (base == 8) (*i)--;
    long x = 0;
    for (int d = 0; d < len; d++) {
        if (*i >= n || digit_val(s[*i]) >= base) return VG_EPARSE;
        x = x * base + digit_val(s[(*i)++]);
    }
    if (c == 'u' || c == 'U') {
        if (x > 0x10FFFF || (x >= 0xD800 && x < 0xE000)) return VG_EPARSE;
        *k += put_utf8(o + *k, x);
    } else {
        if (x > 255) return VG_EPARSE;
        o[(*k)++] = (char)x;
    }
    return VG_OK;
}

vg_err_t vg_lex_unquote(const char *s, size_t n, char *out, size_t *outlen)
{
    *outlen = 0;
    out[0] = 0;
    if (n < 2 || s[0] != s[n - 1] || !strchr("\"'`", s[0])) return VG_EPARSE;
    char q = s[0];
    size_t k = 0, i = 1;
    while (i < n - 1) {
        char c = s[i++];
        if (q == '`') {
            if (c != '\r') out[k++] = c; /* Go drops \r from raw strings */
        } else if (c == '\\') {
            if (i >= n - 1 || unescape(s, n - 1, &i, q, out, &k)) return VG_EPARSE;
        } else {
            out[k++] = c;
        }
    }
    out[k] = 0;
    *outlen = k;
    return VG_OK;
}

/* ---- descriptions and positions ---- */

static const char *punct(vg_tok_type t)
{
    switch (t) {
    case VG_TOK_LBRACE: return "{";
    case VG_TOK_RBRACE: return "}";
    case VG_TOK_LPAREN: return "(";
    case VG_TOK_RPAREN: return ")";
    case VG_TOK_LBRACKET: return "[";
    case VG_TOK_RBRACKET: return "]";
    case VG_TOK_COMMA: return ",";
    case VG_TOK_COLON: return ":";
    case VG_TOK_EQL: return "=";
    default: return NULL;
    }
}

void vg_lex_describe(const char *in, const vg_tok *t, vg_buf *out)
{
    const char *s = in + t->pos, *p = punct(t->type);
    int n = (int)t->len;
    switch (t->type) {
    case VG_TOK_EOF: vg_buf_puts(out, "end of input"); return;
    case VG_TOK_ERROR: vg_buf_puts(out, "error"); return;
    case VG_TOK_IDENT: vg_buf_puts(out, "identifier "); break;
    case VG_TOK_METRIC_IDENT: vg_buf_puts(out, "metric identifier "); break;
    case VG_TOK_STRING: vg_buf_puts(out, "string "); break;
    case VG_TOK_NUMBER: vg_buf_puts(out, "number "); break;
    case VG_TOK_DURATION: vg_buf_puts(out, "duration "); break;
    case VG_TOK_KEYWORD: vg_buf_printf(out, "<%.*s>", n, s); return;
    case VG_TOK_AGGR: vg_buf_printf(out, "<aggr:%.*s>", n, s); return;
    default:
        if (p)
            vg_lex_goquote(out, p, strlen(p), 0);
        else
            vg_buf_printf(out, "<op:%.*s>", n, s);
        return;
    }
    /* Identifiers are quoted whole; other literals are cut to 10 runes. */
    int ident = t->type == VG_TOK_IDENT || t->type == VG_TOK_METRIC_IDENT;
    vg_lex_goquote(out, s, t->len, ident ? 0 : 10);
    if (!ident && t->len > 10) vg_buf_puts(out, "...");
}

void vg_lex_linecol(const char *in, size_t len, size_t pos, int *line, int *col)
{
    long last_nl = -1;
    *line = 1;
    for (size_t i = 0; i < pos && i < len; i++) {
        if (in[i] == '\n') {
            last_nl = (long)i;
            (*line)++;
        }
    }
    *col = (int)((long)pos - last_nl);
}
