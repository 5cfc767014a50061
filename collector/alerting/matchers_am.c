/*
 * matchers_am.c - Alertmanager's matcher syntax, parsed and printed.
 *
 * Alertmanager accepts `name="value"`, `name=~"re"`, `name!=v`, lists
 * separated by commas and an optional pair of braces around the list. Names
 * and values may be double-quoted (Go escapes: \" \\ \n \t ...) or bare; a
 * bare value runs to the next comma or closing brace and is trimmed, which
 * covers both the classic and the UTF-8 parser for what users write. The
 * printer uses Go's %q quoting because that is what Alertmanager puts into
 * route keys, and so into group keys and PagerDuty dedup keys.
 */
#include <string.h>

#include "alerting/amconfig.h"
#include "vigil/alloc.h"

#define AM_MATCHERS_MAX 256
#define AM_TOKEN_MAX    4096

typedef struct cursor {
    const char *p;
    vg_error *err;
} cursor;

static void skip_ws(cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r') c->p++;
}

static vg_err_t put(char *dst, size_t *len, char ch, vg_error *err)
{
    if (*len + 1 >= AM_TOKEN_MAX) return vg_error_set(err, VG_ETOOLARGE, "matcher too long");
    dst[(*len)++] = ch;
    return VG_OK;
}

static int escape_char(char e, char *out)
{
    switch (e) {
    case 'n': *out = '\n'; return 1;
    case 't': *out = '\t'; return 1;
    case 'r': *out = '\r'; return 1;
    case '\\': *out = '\\'; return 1;
    case '"': *out = '"'; return 1;
    case '\'': *out = '\''; return 1;
    default: return 0;
    }
}

static int hexval(char h)
{
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

/* One escape after a backslash at p[0]; sets *ch and returns its length, 0 if bad. */
static int escape_at(const char *p, char *ch)
{
    if (p[1] == 'x') {
        int hi = hexval(p[2]), lo = hi < 0 ? -1 : hexval(p[3]);
        if (lo < 0) return 0;
        *ch = (char)(hi * 16 + lo);
        return 4;
    }
    return escape_char(p[1], ch) ? 2 : 0;
}

/* A double-quoted string starting at c->p (on the quote). */
static vg_err_t quoted(cursor *c, char *dst, vg_error *err)
{
    size_t len = 0;
    vg_err_t rc;
    c->p++;
    while (*c->p != '"') {
        char ch = *c->p;
        int step = 1;
        if (!ch) return vg_error_set(err, VG_EINVAL, "unterminated quoted string in matcher");
        if (ch == '\\' && !(step = escape_at(c->p, &ch)))
            return vg_error_set(err, VG_EINVAL, "invalid escape \\%c in matcher",
                                c->p[1] ? c->p[1] : ' ');
        if ((rc = put(dst, &len, ch, err))) return rc;
        c->p += step;
    }
    c->p++;
    dst[len] = '\0';
    return VG_OK;
}

static int name_stop(char ch)
{
    return !ch || strchr(" \t\r\n{}!=~,\"'`", ch) != NULL;
}

static vg_err_t parse_name(cursor *c, char *dst)
{
    skip_ws(c);
    if (*c->p == '"') return quoted(c, dst, c->err);
    size_t len = 0;
    while (!name_stop(*c->p)) {
        if (put(dst, &len, *c->p++, c->err)) return VG_ETOOLARGE;
    }
    dst[len] = '\0';
    if (!len)
        return vg_error_set(c->err, VG_EINVAL, "matcher has no label name at \"%.40s\"", c->p);
    return VG_OK;
}

static vg_err_t parse_op(cursor *c, vg_match_op *op)
{
    skip_ws(c);
    const char *p = c->p;
    if (p[0] == '=' && p[1] == '~')
        *op = VG_MATCH_RE, c->p += 2;
    else if (p[0] == '!' && p[1] == '~')
        *op = VG_MATCH_NRE, c->p += 2;
    else if (p[0] == '!' && p[1] == '=')
        *op = VG_MATCH_NEQ, c->p += 2;
    else if (p[0] == '=')
        *op = VG_MATCH_EQ, c->p += 1;
    else
        return vg_error_set(c->err, VG_EINVAL, "matcher wants one of = != =~ !~ at \"%.40s\"", p);
    return VG_OK;
}

/* A bare value runs to ',' or '}' (or the end) and is trimmed. */
static vg_err_t parse_value(cursor *c, char *dst)
{
    skip_ws(c);
    if (*c->p == '"') return quoted(c, dst, c->err);
    size_t len = 0;
    while (*c->p && *c->p != ',' && *c->p != '}') {
        if (*c->p == '"')
            return vg_error_set(c->err, VG_EINVAL, "unexpected quote in bare matcher value");
        if (put(dst, &len, *c->p++, c->err)) return VG_ETOOLARGE;
    }
    while (len && strchr(" \t\r\n", dst[len - 1])) len--;
    dst[len] = '\0';
    return VG_OK;
}

static vg_err_t parse_one(cursor *c, vg_matcher_t **out)
{
    char *name = vg_malloc(AM_TOKEN_MAX), *value = vg_malloc(AM_TOKEN_MAX);
    vg_match_op op = VG_MATCH_EQ;
    vg_err_t rc = VG_OK;
    if (!name || !value) {
        rc = vg_error_set(c->err, VG_ENOMEM, "out of memory parsing a matcher");
        goto out;
    }
    if ((rc = parse_name(c, name)) || (rc = parse_op(c, &op)) || (rc = parse_value(c, value)))
        goto out;
    rc = vg_matcher_new(op, name, value, out, c->err);
out:
    vg_free(name);
    vg_free(value);
    return rc;
}

static void free_list(vg_matcher_t **ms, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_matcher_free(ms[i]);
    vg_free(ms);
}

static vg_err_t parse_list(cursor *c, vg_matcher_t **ms, size_t *n)
{
    skip_ws(c);
    int braced = *c->p == '{';
    if (braced) c->p++;
    vg_err_t rc = VG_OK;
    for (;;) {
        skip_ws(c);
        if (!*c->p || (braced && *c->p == '}')) break;
        if (*n >= AM_MATCHERS_MAX) return vg_error_set(c->err, VG_ETOOLARGE, "too many matchers");
        if ((rc = parse_one(c, &ms[*n]))) return rc;
        (*n)++;
        skip_ws(c);
        if (*c->p == ',')
            c->p++;
        else if (*c->p && !(braced && *c->p == '}'))
            return vg_error_set(c->err, VG_EINVAL, "expected ',' between matchers at \"%.40s\"",
                                c->p);
    }
    if (braced) {
        if (*c->p != '}') return vg_error_set(c->err, VG_EINVAL, "missing closing '}' in matchers");
        c->p++;
        skip_ws(c);
    }
    if (*c->p)
        return vg_error_set(c->err, VG_EINVAL, "unexpected text after matchers: \"%.40s\"", c->p);
    return VG_OK;
}

vg_err_t vg_am_matchers_parse(const char *text, vg_matcher_t ***out, size_t *n, vg_error *err)
{
    *out = NULL;
    *n = 0;
    if (!text) return vg_error_set(err, VG_EINVAL, "no matcher text");
    vg_matcher_t **ms = vg_calloc(AM_MATCHERS_MAX, sizeof *ms);
    if (!ms) return vg_error_set(err, VG_ENOMEM, "out of memory parsing matchers");
    cursor c = {.p = text, .err = err};
    size_t cnt = 0;
    vg_err_t rc = parse_list(&c, ms, &cnt);
    if (rc) {
        free_list(ms, cnt);
        return rc;
    }
    *out = ms;
    *n = cnt;
    return VG_OK;
}

vg_err_t vg_am_matcher_parse(const char *text, vg_matcher_t **out, vg_error *err)
{
    vg_matcher_t **ms = NULL;
    size_t n = 0;
    *out = NULL;
    vg_err_t rc = vg_am_matchers_parse(text, &ms, &n, err);
    if (rc) return rc;
    if (n != 1) {
        free_list(ms, n);
        return vg_error_set(err, VG_EINVAL, "want exactly one matcher in \"%.100s\", got %zu", text,
                            n);
    }
    *out = ms[0];
    vg_free(ms);
    return VG_OK;
}

static const char *op_text(vg_match_op op)
{
    switch (op) {
    case VG_MATCH_EQ: return "=";
    case VG_MATCH_NEQ: return "!=";
    case VG_MATCH_RE: return "=~";
    case VG_MATCH_NRE: return "!~";
    }
    return "=";
}

/* Go's strconv.Quote for what matters here: escapes, control bytes as \xNN. */
static vg_err_t go_quote(const char *s, vg_buf *out)
{
    vg_err_t rc = vg_buf_putc(out, '"');
    for (; !rc && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char e = 0;
        if (ch == '"' || ch == '\\')
            e = (char)ch;
        else if (ch == '\n')
            e = 'n';
        else if (ch == '\t')
            e = 't';
        else if (ch == '\r')
            e = 'r';
        if (e)
            rc = vg_buf_printf(out, "\\%c", e);
        else if (ch < 0x20 || ch == 0x7f)
            rc = vg_buf_printf(out, "\\x%02x", ch);
        else
            rc = vg_buf_putc(out, (char)ch);
    }
    return rc ? rc : vg_buf_putc(out, '"');
}

/* A name that is not a classic label name is quoted, as Alertmanager 0.27+ prints it. */
vg_err_t vg_am_matcher_format(const vg_matcher_t *m, vg_buf *out)
{
    const char *name = vg_matcher_name(m);
    vg_err_t rc =
        vg_label_name_valid(name, strlen(name)) ? vg_buf_puts(out, name) : go_quote(name, out);
    if (!rc) rc = vg_buf_puts(out, op_text(vg_matcher_op(m)));
    return rc ? rc : go_quote(vg_matcher_value(m), out);
}
