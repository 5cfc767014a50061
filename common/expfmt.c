/*
 * expfmt.c - Prometheus text 0.0.4 / OpenMetrics 1.0 exposition parser.
 *
 * Shape: a cursor (vg_expfmt_next) rather than a callback or a tree, so the
 * scrape loop can stop early, count as it goes, and never hold more than one
 * line's worth of decoded strings. Each call finds the next line with memchr
 * (no copy), then a small hand-written scanner walks it with a column index
 * so every error can say "line L col C". Strings that must be handed out
 * NUL-terminated are decoded into one scratch buffer reserved up front at
 * twice the line length (decoding never grows a string by more than its
 * terminator), so no pointer moves while a line is being parsed and nothing
 * is allocated per line. The two dialects differ in a handful of places,
 * each guarded by `p->fmt == VG_EXPFMT_OPENMETRICS`.
 *
 * Sample lines go through a fast path first (fast_sample): the common shape
 * `name{a="b",c="d"} value [ts]` with no blanks inside the braces, no
 * escapes and only printable ASCII in values, scanned once with table
 * lookups and, when the caller borrows (vg_expfmt_set_borrow), with no copy
 * at all. Anything else makes it give up, and the general scanner parses the
 * line from its start, so both paths accept the same lines with the same
 * results and every error message comes from the general one.
 *
 * The grammar follows Prometheus's own parsers where the spec is silent:
 * whitespace is spaces and tabs, unknown escapes are kept verbatim, a
 * trailing comma closes a label set, numbers are Go ParseFloat syntax.
 */
#include "vigil/expfmt.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "vigil/alloc.h"

struct vg_expfmt_parser {
    const char *buf;
    size_t len;
    size_t pos; /* start of the next line */
    vg_expfmt_format fmt;
    size_t max_line;
    unsigned lineno;
    int done; /* EOF reached and returned */

    vg_err_t sticky; /* first error, replayed on later calls */
    char sticky_msg[256];

    char *scratch; /* decoded strings of the current line */
    size_t scap, sused;
    vg_label_t *labels;  /* labels of the current line */
    vg_expfmt_len *lens; /* their lengths, same index */
    size_t lcap, nlabels;
    int skip_text;      /* HELP and comment text not decoded */
    int borrow;         /* sample strings may point into buf (vg_expfmt_set_borrow) */
    int nofast;         /* every line through the general scanner (vg_expfmt_set_fast) */
    const char **sortv; /* scratch for the duplicate check of big label sets */
    size_t sortcap;

    /* The last few distinct sample metric names, in buf, newest first: lines
     * repeat them (series of one family; _bucket, _sum, _count in turn). */
    const char *prev[4];
    size_t prev_len[4];
    const char *meta; /* the last HELP/TYPE/UNIT family name, in buf */
    size_t meta_len;

    char *fam; /* OpenMetrics: family named by the last TYPE line */
    size_t fam_len, fam_cap;
    vg_expfmt_mtype fam_type;
};

/* One line being scanned: s[0..n), i is the cursor. */
typedef struct line {
    const char *s;
    size_t n, i;
} line_t;

#define IS_OM(p) ((p)->fmt == VG_EXPFMT_OPENMETRICS)

/* ---------------------------------------------------------------- errors */

static vg_err_t fail(vg_expfmt_parser_t *p, vg_error *err, vg_err_t code, size_t col,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static vg_err_t fail(vg_expfmt_parser_t *p, vg_error *err, vg_err_t code, size_t col,
                     const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(p->sticky_msg, sizeof p->sticky_msg, "line %u col %zu: %s", p->lineno, col + 1, why);
    p->sticky = code;
    return vg_error_set(err, code, "%s", p->sticky_msg);
}

/* ---------------------------------------------------------------- lifecycle */

vg_expfmt_parser_t *vg_expfmt_new(const char *buf, size_t len, vg_expfmt_format fmt)
{
    vg_expfmt_parser_t *p = vg_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->buf = buf ? buf : "";
    p->len = buf ? len : 0;
    p->fmt = fmt == VG_EXPFMT_OPENMETRICS ? VG_EXPFMT_OPENMETRICS : VG_EXPFMT_TEXT;
    p->max_line = VG_EXPFMT_DEFAULT_MAX_LINE;
    return p;
}

void vg_expfmt_free(vg_expfmt_parser_t *p)
{
    if (!p) return;
    vg_free(p->scratch);
    vg_free(p->labels);
    vg_free(p->lens);
    vg_free(p->sortv);
    vg_free(p->fam);
    vg_free(p);
}

void vg_expfmt_set_max_line(vg_expfmt_parser_t *p, size_t max_line)
{
    if (p) p->max_line = max_line ? max_line : VG_EXPFMT_DEFAULT_MAX_LINE;
}

void vg_expfmt_set_skip_text(vg_expfmt_parser_t *p, int skip)
{
    if (p) p->skip_text = skip != 0;
}

void vg_expfmt_set_borrow(vg_expfmt_parser_t *p, int borrow)
{
    if (p) p->borrow = borrow != 0;
}

void vg_expfmt_set_fast(vg_expfmt_parser_t *p, int on)
{
    if (p) p->nofast = !on;
}

unsigned vg_expfmt_line(const vg_expfmt_parser_t *p)
{
    return p ? p->lineno : 0;
}

/* ---------------------------------------------------------------- scratch */

static vg_err_t scratch_reserve(vg_expfmt_parser_t *p, size_t linelen)
{
    size_t need = 2 * linelen + 64;
    p->sused = 0;
    p->nlabels = 0;
    if (need <= p->scap) return VG_OK;
    char *s = vg_realloc(p->scratch, need);
    if (!s) return VG_ENOMEM;
    p->scratch = s;
    p->scap = need;
    return VG_OK;
}

/* Room for n bytes in the scratch; the reservation makes failure a bug. */
static char *scratch_take(vg_expfmt_parser_t *p, size_t n)
{
    if (n > p->scap - p->sused) return NULL;
    char *s = p->scratch + p->sused;
    p->sused += n;
    return s;
}

static const char *scratch_copy(vg_expfmt_parser_t *p, const char *s, size_t n)
{
    char *d = scratch_take(p, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static __attribute__((noinline)) vg_err_t labels_grow(vg_expfmt_parser_t *p)
{
    size_t cap = p->lcap ? p->lcap * 2 : 16;
    vg_label_t *l = vg_realloc(p->labels, cap * sizeof *l);
    if (!l) return VG_ENOMEM;
    p->labels = l;
    vg_expfmt_len *n = vg_realloc(p->lens, cap * sizeof *n);
    if (!n) return VG_ENOMEM;
    p->lens = n;
    p->lcap = cap;
    return VG_OK;
}

static inline vg_err_t labels_push(vg_expfmt_parser_t *p, const char *name, size_t nlen,
                                   const char *value, size_t vlen)
{
    if (p->nlabels == p->lcap && labels_grow(p)) return VG_ENOMEM;
    p->labels[p->nlabels] = (vg_label_t){name, value};
    p->lens[p->nlabels] = (vg_expfmt_len){nlen, vlen};
    p->nlabels++;
    return VG_OK;
}

/* ---------------------------------------------------------------- lexing */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_ws(line_t *l)
{
    while (l->i < l->n && is_ws(l->s[l->i])) l->i++;
}

static int at_end(const line_t *l)
{
    return l->i >= l->n;
}

/* Character classes, one table lookup per byte in the hot scanners. */
enum { C_START = 1, C_DIGIT = 2, C_COLON = 4, C_VALSTOP = 8 };

static const unsigned char cclass[256] = {
    ['\0'] = C_VALSTOP,
    ['"'] = C_VALSTOP,
    ['\\'] = C_VALSTOP,
    ['0'] = C_DIGIT,
    ['1'] = C_DIGIT,
    ['2'] = C_DIGIT,
    ['3'] = C_DIGIT,
    ['4'] = C_DIGIT,
    ['5'] = C_DIGIT,
    ['6'] = C_DIGIT,
    ['7'] = C_DIGIT,
    ['8'] = C_DIGIT,
    ['9'] = C_DIGIT,
    [':'] = C_COLON,
    ['_'] = C_START,
#define L(c) [c] = C_START, [c - 'a' + 'A'] = C_START
    L('a'),
    L('b'),
    L('c'),
    L('d'),
    L('e'),
    L('f'),
    L('g'),
    L('h'),
    L('i'),
    L('j'),
    L('k'),
    L('l'),
    L('m'),
    L('n'),
    L('o'),
    L('p'),
    L('q'),
    L('r'),
    L('s'),
    L('t'),
    L('u'),
    L('v'),
    L('w'),
    L('x'),
    L('y'),
    L('z'),
#undef L
};

static int name_start(char c, int colon)
{
    return cclass[(unsigned char)c] & (colon ? C_START | C_COLON : C_START);
}

/* Scan [a-zA-Z_:][a-zA-Z0-9_:]* (colon only for metric names); returns length. */
static size_t scan_name(line_t *l, int colon)
{
    size_t start = l->i;
    if (at_end(l) || !name_start(l->s[l->i], colon)) return 0;
    unsigned ok = C_START | C_DIGIT | (colon ? C_COLON : 0);
    const unsigned char *s = (const unsigned char *)l->s;
    size_t i = l->i + 1, n = l->n;
    while (i < n && (cclass[s[i]] & ok)) i++;
    l->i = i;
    return i - start;
}

/* Length of the token at the cursor (up to whitespace or end). */
static size_t scan_token(line_t *l)
{
    size_t start = l->i;
    while (l->i < l->n && !is_ws(l->s[l->i])) l->i++;
    return l->i - start;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

/* ---------------------------------------------------------------- numbers */

static int eq_nocase(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Mantissa digits with an optional '.', at least one digit; returns chars used. */
static size_t scan_mantissa(const char *s, size_t n, int hex)
{
    size_t i = 0, digits = 0;
    int dot = 0;
    for (; i < n; i++) {
        if (s[i] == '.' && !dot) {
            dot = 1;
        } else if (hex ? is_xdigit(s[i]) : is_digit(s[i])) {
            digits++;
        } else {
            break;
        }
    }
    return digits ? i : 0;
}

/* Exponent marker, optional sign and at least one decimal digit; returns chars used. */
static size_t scan_exponent(const char *s, size_t n, char lo, char up)
{
    size_t i = 0;
    if (n == 0 || (s[0] != lo && s[0] != up)) return 0;
    i = 1;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t d = i;
    while (i < n && is_digit(s[i])) i++;
    return i > d ? i : 0;
}

/* Syntax check for the finite forms: decimal, or hex with a mandatory p exponent. */
static int finite_syntax_ok(const char *s, size_t n)
{
    int hex = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    size_t i = hex ? 2 : 0;
    size_t m = scan_mantissa(s + i, n - i, hex);
    if (!m) return 0;
    i += m;
    if (i == n) return !hex;
    size_t e = scan_exponent(s + i, n - i, hex ? 'p' : 'e', hex ? 'P' : 'E');
    return e && i + e == n;
}

/* Exact powers of ten that a double holds (10^22 is the last). */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Decimal exponent after 'e'/'E' at s[0..n): sign and 1-4 digits; 0 if not that. */
static int fast_exponent(const char *s, size_t n, int *e)
{
    size_t i = 0;
    int neg = 0, v = 0;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i == n || n - i > 4) return 0;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *e = neg ? -v : v;
    return 1;
}

/* Digits at s[i..n) into *m (no overflow check: callers bound the count);
 * returns the index after them. */
static size_t take_digits(const char *s, size_t i, size_t n, uint64_t *m)
{
    uint64_t v = *m;
    for (unsigned d; i < n && (d = (unsigned)(s[i] - '0')) < 10; i++) v = v * 10 + d;
    *m = v;
    return i;
}

/* Clinger's fast path: a plain decimal whose digits fit in 2^53 and whose
 * scale is within 10^22 converts with one exact multiply or divide, which
 * IEEE rounds correctly, so the result equals strtod's. 1 if it applied.
 * At most 19 digits are taken (leading zeros included), so the mantissa
 * cannot overflow; anything longer goes to strtod. */
static int fast_decimal(const char *s, size_t n, double *out)
{
    size_t i = 0;
    int neg = 0, scale = 0;
    uint64_t m = 0;
    if (s[0] == '-' || s[0] == '+') neg = s[i++] == '-';
    size_t d0 = i;
    i = take_digits(s, i, n, &m);
    size_t ndig = i - d0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        i = take_digits(s, i, n, &m);
        scale = -(int)(i - f0);
        ndig += i - f0;
    }
    if (ndig == 0 || ndig > 19) return 0;
    if (i < n) {
        int e;
        if ((s[i] != 'e' && s[i] != 'E') || !fast_exponent(s + i + 1, n - i - 1, &e)) return 0;
        scale += e;
    }
    if (m > ((uint64_t)1 << 53) || scale < -22 || scale > 22) return 0;
    double v = (double)m;
    v = scale < 0 ? v / pow10_exact[-scale] : v * pow10_exact[scale];
    *out = neg ? -v : v;
    return 1;
}

vg_err_t vg_expfmt_parse_float(const char *s, size_t n, double *out)
{
    if (!s || n == 0) return VG_EPARSE;
    if (fast_decimal(s, n, out)) return VG_OK;
    int neg = s[0] == '-', sign = s[0] == '-' || s[0] == '+';
    const char *r = s + sign;
    size_t m = n - (size_t)sign;
    if (eq_nocase(r, m, "inf") || eq_nocase(r, m, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return VG_OK;
    }
    if (!sign && eq_nocase(r, m, "nan")) {
        *out = NAN;
        return VG_OK;
    }
    if (!finite_syntax_ok(r, m)) return VG_EPARSE;
    char stack[128], *tmp = n < sizeof stack ? stack : vg_strndup(s, n);
    if (!tmp) return VG_ENOMEM;
    if (tmp == stack) {
        memcpy(stack, s, n);
        stack[n] = '\0';
    }
    errno = 0;
    double v = strtod(tmp, NULL);
    int range = errno == ERANGE && isinf(v); /* Go: overflow is an error, underflow is not */
    if (tmp != stack) vg_free(tmp);
    if (range) return VG_EPARSE;
    *out = v;
    return VG_OK;
}

/* Decimal int64 with optional sign (Go ParseInt base 10). */
static vg_err_t parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (n && (s[0] == '+' || s[0] == '-')) neg = s[i++] == '-';
    if (i == n) return VG_EPARSE;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return VG_EPARSE;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return VG_EPARSE;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return VG_OK;
}

/* OpenMetrics timestamp: float seconds -> int64 ms, truncated like Go's int64(). */
static vg_err_t parse_om_ts(const char *s, size_t n, int64_t *out)
{
    double sec;
    if (vg_expfmt_parse_float(s, n, &sec) != VG_OK || !isfinite(sec)) return VG_EPARSE;
    double ms = trunc(sec * 1000.0);
    if (!(ms > -9.2e18 && ms < 9.2e18)) return VG_EPARSE;
    *out = (int64_t)ms;
    return VG_OK;
}

/* ---------------------------------------------------------------- strings */

/* Decode s[0..n) with \\ and \n (and \" when quote) escapes into the scratch. */
static const char *unescape(vg_expfmt_parser_t *p, const char *s, size_t n, int quote,
                            size_t *outlen)
{
    char *d = scratch_take(p, n + 1);
    size_t o = 0;
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[i + 1];
            if (c == '\\' || c == 'n' || (quote && c == '"')) {
                d[o++] = c == 'n' ? '\n' : c;
                i++;
                continue;
            }
        }
        d[o++] = s[i];
    }
    d[o] = '\0';
    p->sused -= n - o; /* give back what escapes saved */
    if (outlen) *outlen = o;
    return d;
}

/* Quoted label value at the cursor (on the opening quote). One pass finds
 * the closing quote and notes escapes, NULs and non-ASCII bytes, so the
 * common value (plain ASCII) is checked and copied without a second look. */
static vg_err_t scan_label_value(vg_expfmt_parser_t *p, line_t *l, const char **out, size_t *len,
                                 vg_error *err)
{
    const unsigned char *s = (const unsigned char *)l->s;
    size_t start = ++l->i, i = start, n = l->n;
    unsigned seen = 0; /* 1: escape, 2: NUL, 4: non-ASCII */
    for (; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            seen |= 4;
        } else if (cclass[c] & C_VALSTOP) {
            if (c == '"') break;
            if (c == '\\') {
                seen |= 1;
                if (i + 1 < n) { /* the escaped byte is still checked */
                    c = s[++i];
                    seen |= c == 0 ? 2 : c >= 0x80 ? 4 : 0;
                }
            } else {
                seen |= 2;
            }
        }
    }
    l->i = i;
    if (at_end(l)) return fail(p, err, VG_EPARSE, start - 1, "unterminated label value");
    size_t vn = i - start;
    if (seen & 2) return fail(p, err, VG_EPARSE, start, "NUL byte in label value");
    if ((seen & 4) && !utf8_valid(s + start, vn))
        return fail(p, err, VG_EPARSE, start, "invalid UTF-8 label value");
    l->i++; /* closing quote */
    *len = vn;
    *out = seen & 1 ? unescape(p, l->s + start, vn, 1, len) : scratch_copy(p, l->s + start, vn);
    return *out ? VG_OK : fail(p, err, VG_EINTERNAL, start, "scratch overflow");
}

/* ---------------------------------------------------------------- labels */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate names among labels[from..]; quadratic for small sets, sort for big. */
static const char *find_duplicate(vg_expfmt_parser_t *p, size_t from)
{
    size_t n = p->nlabels - from;
    if (n < 2) return NULL; /* also: no array yet for an empty set */
    const vg_label_t *l = p->labels + from;
    if (n <= 32) {
        const vg_expfmt_len *len = p->lens + from;
        for (size_t i = 1; i < n; i++)
            for (size_t j = 0; j < i; j++)
                if (len[i].name == len[j].name && memcmp(l[i].name, l[j].name, len[i].name) == 0)
                    return l[i].name;
        return NULL;
    }
    if (n > p->sortcap) {
        const char **v = vg_realloc(p->sortv, n * sizeof *v);
        if (!v) return NULL; /* no memory: skip the check rather than fail the line */
        p->sortv = v;
        p->sortcap = n;
    }
    for (size_t i = 0; i < n; i++) p->sortv[i] = l[i].name;
    qsort(p->sortv, n, sizeof *p->sortv, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(p->sortv[i], p->sortv[i - 1]) == 0) return p->sortv[i];
    return NULL;
}

/* One `name="value"` pair at the cursor. */
static vg_err_t scan_label(vg_expfmt_parser_t *p, line_t *l, vg_error *err)
{
    size_t col = l->i;
    size_t nlen = scan_name(l, 0);
    if (!nlen) return fail(p, err, VG_EPARSE, col, "invalid label name");
    const char *name = scratch_copy(p, l->s + col, nlen);
    if (!name) return fail(p, err, VG_EINTERNAL, col, "scratch overflow");
    if (nlen == sizeof VG_METRIC_NAME - 1 && memcmp(name, VG_METRIC_NAME, nlen) == 0)
        return fail(p, err, VG_EPARSE, col, "label name \"__name__\" is not unique");
    skip_ws(l);
    if (at_end(l) || l->s[l->i] != '=')
        return fail(p, err, VG_EPARSE, l->i, "expected '=' after label name");
    l->i++;
    skip_ws(l);
    if (at_end(l) || l->s[l->i] != '"')
        return fail(p, err, VG_EPARSE, l->i, "expected '\"' to open label value");
    const char *value;
    size_t vlen = 0;
    vg_err_t rc = scan_label_value(p, l, &value, &vlen, err);
    if (rc) return rc;
    if (labels_push(p, name, nlen, value, vlen))
        return fail(p, err, VG_ENOMEM, col, "out of memory");
    return VG_OK;
}

/* Label set at the cursor (on '{'); appends to p->labels from its current count. */
static vg_err_t scan_labels(vg_expfmt_parser_t *p, line_t *l, vg_error *err)
{
    size_t open = l->i++, from = p->nlabels;
    for (;;) {
        skip_ws(l);
        if (at_end(l)) return fail(p, err, VG_EPARSE, open, "unterminated label set");
        if (l->s[l->i] == '}') break;
        vg_err_t rc = scan_label(p, l, err);
        if (rc) return rc;
        skip_ws(l);
        if (at_end(l)) return fail(p, err, VG_EPARSE, open, "unterminated label set");
        if (l->s[l->i] == ',') {
            l->i++;
            continue;
        }
        if (l->s[l->i] != '}')
            return fail(p, err, VG_EPARSE, l->i, "expected ',' or '}' after label value");
    }
    l->i++;
    const char *dup = find_duplicate(p, from);
    if (dup) return fail(p, err, VG_EPARSE, open, "label name \"%s\" is not unique", dup);
    return VG_OK;
}

/* ---------------------------------------------------------------- samples */

/* OpenMetrics exemplar after " # ": {labels} value [timestamp]; validated, dropped. */
static vg_err_t scan_exemplar(vg_expfmt_parser_t *p, line_t *l, vg_error *err)
{
    size_t keep = p->nlabels, col = l->i++;
    double v;
    int64_t ts;
    if (at_end(l) || !is_ws(l->s[l->i]))
        return fail(p, err, VG_EPARSE, col, "expected ' ' after '#'");
    skip_ws(l);
    if (at_end(l) || l->s[l->i] != '{')
        return fail(p, err, VG_EPARSE, l->i, "expected '{' to open exemplar labels");
    vg_err_t rc = scan_labels(p, l, err);
    p->nlabels = keep;
    if (rc) return rc;
    skip_ws(l);
    col = l->i;
    if (vg_expfmt_parse_float(l->s + col, scan_token(l), &v))
        return fail(p, err, VG_EPARSE, col, "invalid exemplar value");
    skip_ws(l);
    col = l->i;
    if (!at_end(l) && parse_om_ts(l->s + col, scan_token(l), &ts))
        return fail(p, err, VG_EPARSE, col, "invalid exemplar timestamp");
    skip_ws(l);
    if (!at_end(l)) return fail(p, err, VG_EPARSE, l->i, "unexpected text after exemplar");
    return VG_OK;
}

/* Optional timestamp (and in OpenMetrics, exemplar) after the value. */
static vg_err_t scan_sample_tail(vg_expfmt_parser_t *p, line_t *l, vg_expfmt_entry *e,
                                 vg_error *err)
{
    skip_ws(l);
    if (at_end(l)) return VG_OK;
    if (IS_OM(p) && l->s[l->i] == '#') {
        e->has_exemplar = 1;
        return scan_exemplar(p, l, err);
    }
    size_t col = l->i, n = scan_token(l);
    vg_err_t rc =
        IS_OM(p) ? parse_om_ts(l->s + col, n, &e->ts_ms) : parse_int64(l->s + col, n, &e->ts_ms);
    if (rc)
        return fail(p, err, VG_EPARSE, col, "invalid timestamp \"%.*s\"", (int)(n > 40 ? 40 : n),
                    l->s + col);
    e->has_ts = 1;
    skip_ws(l);
    if (at_end(l)) return VG_OK;
    if (IS_OM(p) && l->s[l->i] == '#') {
        e->has_exemplar = 1;
        return scan_exemplar(p, l, err);
    }
    return fail(p, err, VG_EPARSE, l->i, "unexpected text after timestamp");
}

/* OpenMetrics: is name the _created series of the current typed family? */
static int om_is_created(const vg_expfmt_parser_t *p, const char *name, size_t n)
{
    static const char sfx[] = "_created";
    if (!IS_OM(p) || !p->fam || n != p->fam_len + sizeof sfx - 1) return 0;
    if (p->fam_type != VG_EXPFMT_COUNTER && p->fam_type != VG_EXPFMT_HISTOGRAM &&
        p->fam_type != VG_EXPFMT_SUMMARY && p->fam_type != VG_EXPFMT_GAUGEHISTOGRAM)
        return 0;
    return memcmp(name, p->fam, p->fam_len) == 0 &&
           memcmp(name + p->fam_len, sfx, sizeof sfx - 1) == 0;
}

/* A metric name: most sample lines repeat one of the last few names (the
 * series of a family, a histogram's _bucket, _sum and _count in turn), so
 * try those first; bytes equal to a name already checked need no second
 * look, only the byte after them must end the name. */
static size_t scan_metric_name(vg_expfmt_parser_t *p, line_t *l)
{
    const char *at = l->s + l->i;
    size_t room = l->n - l->i;
    for (size_t j = 0; j < 4; j++) {
        size_t k = p->prev_len[j];
        if (!k || room <= k || memcmp(at, p->prev[j], k) != 0 ||
            (cclass[(unsigned char)at[k]] & (C_START | C_DIGIT | C_COLON)))
            continue;
        for (; j > 0; j--) { /* move to the front */
            p->prev[j] = p->prev[j - 1];
            p->prev_len[j] = p->prev_len[j - 1];
        }
        p->prev[0] = at;
        p->prev_len[0] = k;
        l->i += k;
        return k;
    }
    size_t n = scan_name(l, 1);
    if (!n) return 0;
    memmove(p->prev + 1, p->prev, 3 * sizeof *p->prev);
    memmove(p->prev_len + 1, p->prev_len, 3 * sizeof *p->prev_len);
    p->prev[0] = at;
    p->prev_len[0] = n;
    return n;
}

/* Bytes that end a plain label value on the fast path: the closing quote,
 * and what only the general scanner handles (escape, NUL, non-ASCII). */
static const unsigned char value_stop[256] = {
    ['\0'] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
};

/* Index of the first value_stop byte in s[i..n), or n. Eight bytes at a
 * time where the line has them (on a little-endian host the lowest flagged
 * byte is the first match: a borrow only runs upward from a zero byte). */
static size_t value_end(const unsigned char *s, size_t i, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    for (; n - i >= 8; i += 8) {
        uint64_t x, q, b;
        memcpy(&x, s + i, 8);
        q = x ^ (ones * '"');
        b = x ^ (ones * '\\');
        uint64_t t = (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones) & ~x) | x) & high;
        if (t) return i + (size_t)(__builtin_ctzll(t) >> 3);
    }
#endif
    while (i < n && !value_stop[s[i]]) i++;
    return i;
}

/* A sample string for the entry: borrowed from the line, or copied. */
static const char *fast_str(vg_expfmt_parser_t *p, const unsigned char *s, size_t n)
{
    return p->borrow ? (const char *)s : scratch_copy(p, (const char *)s, n);
}

/* {name="value",...} at s[*pos] (on '{') in the fast path's shape; appends
 * the labels. 1 when the set closed, 0 when the general scanner must look. */
static int fast_labels(vg_expfmt_parser_t *p, const unsigned char *s, size_t n, size_t *pos)
{
    size_t i = *pos + 1;
    while (i < n && s[i] != '}') {
        size_t ns = i;
        if (!(cclass[s[i]] & C_START)) return 0;
        for (i++; i < n && (cclass[s[i]] & (C_START | C_DIGIT)); i++) {
        }
        size_t nl = i - ns;
        if (n - i < 2 || s[i] != '=' || s[i + 1] != '"') return 0;
        if (nl == sizeof VG_METRIC_NAME - 1 && memcmp(s + ns, VG_METRIC_NAME, nl) == 0) return 0;
        size_t vs = i += 2;
        i = value_end(s, i, n);
        if (i == n || s[i] != '"') return 0;
        const char *name = fast_str(p, s + ns, nl), *value = fast_str(p, s + vs, i - vs);
        if (!name || !value || labels_push(p, name, nl, value, i - vs)) return 0;
        if (++i == n || (s[i] != ',' && s[i] != '}')) return 0;
        i += s[i] == ',';
    }
    if (i == n || p->nlabels > 32) return 0; /* a big set: the sort needs C strings */
    *pos = i + 1;
    if (p->nlabels < 2) return 1;
    if (p->nlabels == 2) /* the common pair, without the call */
        return p->lens[0].name != p->lens[1].name ||
               memcmp(p->labels[0].name, p->labels[1].name, p->lens[0].name) != 0;
    return find_duplicate(p, 0) == NULL;
}

/* The common sample line in one pass (see the file comment). 1 when e
 * holds the whole line; 0 to let the general scanner parse it. */
static int fast_sample(vg_expfmt_parser_t *p, line_t *l, vg_expfmt_entry *e)
{
    const unsigned char *s = (const unsigned char *)l->s;
    size_t n = l->n, col = l->i, nlen = scan_metric_name(p, l), i = l->i;
    if (!nlen) return 0;
    if (i < n && s[i] == '{' && !fast_labels(p, s, n, &i)) return 0;
    if (i == n || !is_ws((char)s[i])) return 0;
    while (i < n && is_ws((char)s[i])) i++;
    size_t vcol = i;
    while (i < n && !is_ws((char)s[i])) i++;
    double v;
    if (i == vcol || vg_expfmt_parse_float(l->s + vcol, i - vcol, &v)) return 0;
    while (i < n && is_ws((char)s[i])) i++;
    int64_t ts = 0;
    if (i < n) {
        size_t tcol = i;
        if (IS_OM(p) && s[i] == '#') return 0;
        while (i < n && !is_ws((char)s[i])) i++;
        if (IS_OM(p) ? parse_om_ts(l->s + tcol, i - tcol, &ts)
                     : parse_int64(l->s + tcol, i - tcol, &ts))
            return 0;
        while (i < n && is_ws((char)s[i])) i++;
        if (i < n) return 0;
        e->has_ts = 1;
    }
    e->name = fast_str(p, s + col, nlen);
    if (!e->name) return 0;
    l->i = i;
    e->kind = VG_EXPFMT_SAMPLE;
    e->name_len = nlen;
    e->value = v;
    e->ts_ms = ts;
    e->labels = p->labels;
    e->label_lens = p->lens;
    e->nlabels = p->nlabels;
    e->created = om_is_created(p, e->name, nlen);
    return 1;
}

static vg_err_t parse_sample(vg_expfmt_parser_t *p, line_t *l, vg_expfmt_entry *e, vg_error *err)
{
    size_t start = l->i;
    if (!p->nofast && fast_sample(p, l, e)) return VG_OK;
    l->i = start; /* from the start, with the general scanner */
    p->nlabels = 0;
    p->sused = 0;
    e->has_ts = 0;
    e->ts_ms = 0;
    size_t col = l->i, nlen = scan_metric_name(p, l);
    if (!nlen) return fail(p, err, VG_EPARSE, col, "invalid metric name");
    e->kind = VG_EXPFMT_SAMPLE;
    e->name = scratch_copy(p, l->s + col, nlen);
    e->name_len = nlen;
    if (!e->name) return fail(p, err, VG_EINTERNAL, col, "scratch overflow");
    skip_ws(l);
    if (!at_end(l) && l->s[l->i] == '{') {
        vg_err_t rc = scan_labels(p, l, err);
        if (rc) return rc;
    } else if (!at_end(l) && l->i == col + nlen) {
        return fail(p, err, VG_EPARSE, l->i, "invalid character in metric name");
    }
    if (l->i > col + nlen && is_ws(l->s[l->i - 1])) {
        /* whitespace already skipped after a bare name */
    } else if (at_end(l) || !is_ws(l->s[l->i])) {
        return fail(p, err, VG_EPARSE, l->i, "expected whitespace and a value after metric");
    }
    skip_ws(l);
    size_t vcol = l->i, vlen = scan_token(l);
    if (vlen == 0) return fail(p, err, VG_EPARSE, vcol, "expected value after metric");
    if (vg_expfmt_parse_float(l->s + vcol, vlen, &e->value))
        return fail(p, err, VG_EPARSE, vcol, "invalid value \"%.*s\"", (int)(vlen > 40 ? 40 : vlen),
                    l->s + vcol);
    vg_err_t rc = scan_sample_tail(p, l, e, err);
    e->labels = p->labels; /* after the tail: an exemplar may have grown the array */
    e->label_lens = p->lens;
    e->nlabels = p->nlabels;
    e->created = om_is_created(p, e->name, nlen);
    return rc;
}

/* ---------------------------------------------------------------- metadata */

static const char *const mtype_names[] = {
    [VG_EXPFMT_UNTYPED] = "untyped",   [VG_EXPFMT_COUNTER] = "counter",
    [VG_EXPFMT_GAUGE] = "gauge",       [VG_EXPFMT_HISTOGRAM] = "histogram",
    [VG_EXPFMT_SUMMARY] = "summary",   [VG_EXPFMT_GAUGEHISTOGRAM] = "gaugehistogram",
    [VG_EXPFMT_STATESET] = "stateset", [VG_EXPFMT_INFO] = "info",
};

const char *vg_expfmt_mtype_name(vg_expfmt_mtype t)
{
    if ((unsigned)t >= sizeof mtype_names / sizeof *mtype_names) return "unknown";
    return t == VG_EXPFMT_UNTYPED ? "unknown" : mtype_names[t];
}

static int parse_mtype(const vg_expfmt_parser_t *p, const char *s, size_t n, vg_expfmt_mtype *t)
{
    size_t last = IS_OM(p) ? VG_EXPFMT_INFO : VG_EXPFMT_SUMMARY;
    for (size_t i = 0; i <= last; i++) {
        if (i == VG_EXPFMT_UNTYPED) continue;
        if (strlen(mtype_names[i]) == n && memcmp(s, mtype_names[i], n) == 0) {
            *t = (vg_expfmt_mtype)i;
            return 1;
        }
    }
    *t = VG_EXPFMT_UNTYPED;
    return n == 7 && memcmp(s, IS_OM(p) ? "unknown" : "untyped", 7) == 0;
}

static vg_err_t remember_family(vg_expfmt_parser_t *p, const char *name, size_t n,
                                vg_expfmt_mtype t)
{
    if (n + 1 > p->fam_cap) {
        char *f = vg_realloc(p->fam, n + 1);
        if (!f) return VG_ENOMEM;
        p->fam = f;
        p->fam_cap = n + 1;
    }
    memcpy(p->fam, name, n);
    p->fam[n] = '\0';
    p->fam_len = n;
    p->fam_type = t;
    return VG_OK;
}

/* The family name of a HELP/TYPE/UNIT line: usually the one the line
 * before named (HELP then TYPE), checked the same way as sample names. */
static size_t scan_meta_name(vg_expfmt_parser_t *p, line_t *l)
{
    const char *at = l->s + l->i;
    size_t k = p->meta_len;
    if (k && l->n - l->i > k && memcmp(at, p->meta, k) == 0 &&
        !(cclass[(unsigned char)at[k]] & (C_START | C_DIGIT | C_COLON))) {
        l->i += k;
        return k;
    }
    size_t n = scan_name(l, 1);
    p->meta = at;
    p->meta_len = n;
    return n;
}

/* The part of HELP/TYPE/UNIT after the keyword: name, whitespace, rest. */
static vg_err_t parse_meta(vg_expfmt_parser_t *p, line_t *l, vg_expfmt_entry *e, vg_error *err)
{
    size_t col = l->i, nlen = scan_meta_name(p, l);
    if (!nlen)
        return fail(p, err, VG_EPARSE, col, "invalid metric name in %s line",
                    e->kind == VG_EXPFMT_HELP   ? "HELP"
                    : e->kind == VG_EXPFMT_TYPE ? "TYPE"
                                                : "UNIT");
    e->name = scratch_copy(p, l->s + col, nlen);
    e->name_len = nlen;
    if (!e->name) return fail(p, err, VG_EINTERNAL, col, "scratch overflow");
    if (!at_end(l) && !is_ws(l->s[l->i]))
        return fail(p, err, VG_EPARSE, l->i, "invalid character in metric name");
    skip_ws(l);
    const char *rest = l->s + l->i;
    size_t rlen = l->n - l->i;
    if (e->kind == VG_EXPFMT_TYPE) {
        while (rlen && is_ws(rest[rlen - 1])) rlen--;
        if (!parse_mtype(p, rest, rlen, &e->type))
            return fail(p, err, VG_EPARSE, l->i, "invalid metric type \"%.*s\"",
                        (int)(rlen > 40 ? 40 : rlen), rest);
        if (IS_OM(p) && remember_family(p, e->name, nlen, e->type))
            return fail(p, err, VG_ENOMEM, col, "out of memory");
        return VG_OK;
    }
    if (e->kind == VG_EXPFMT_HELP && p->skip_text) { /* raw bytes, not decoded */
        e->text = rest, e->text_len = rlen;
        return VG_OK;
    }
    if (e->kind == VG_EXPFMT_HELP)
        e->text = unescape(p, rest, rlen, IS_OM(p), &e->text_len);
    else
        e->text = scratch_copy(p, rest, e->text_len = rlen);
    return e->text ? VG_OK : fail(p, err, VG_EINTERNAL, l->i, "scratch overflow");
}

static int keyword(line_t *l, const char *kw)
{
    size_t k = strlen(kw);
    if (l->n - l->i < k || memcmp(l->s + l->i, kw, k) != 0) return 0;
    if (l->i + k < l->n && !is_ws(l->s[l->i + k])) return 0;
    if (l->i + k == l->n && strcmp(kw, "EOF") != 0) return 0;
    l->i += k;
    skip_ws(l);
    return 1;
}

/* A line starting with '#' (cursor on it). */
static vg_err_t parse_hash_line(vg_expfmt_parser_t *p, line_t *l, vg_expfmt_entry *e, vg_error *err)
{
    size_t hash = l->i++;
    int spaced = !at_end(l) && is_ws(l->s[l->i]);
    skip_ws(l);
    if (spaced && keyword(l, "HELP"))
        e->kind = VG_EXPFMT_HELP;
    else if (spaced && keyword(l, "TYPE"))
        e->kind = VG_EXPFMT_TYPE;
    else if (spaced && IS_OM(p) && keyword(l, "UNIT"))
        e->kind = VG_EXPFMT_UNIT;
    else if (spaced && IS_OM(p) && l->n - l->i == 3 && memcmp(l->s + l->i, "EOF", 3) == 0) {
        e->kind = VG_EXPFMT_EOF;
        return VG_OK;
    } else if (IS_OM(p)) {
        return fail(p, err, VG_EPARSE, hash, "comments are not allowed in OpenMetrics");
    } else {
        e->kind = VG_EXPFMT_COMMENT;
        if (p->skip_text) return VG_OK;
        e->text = scratch_copy(p, l->s + l->i, e->text_len = l->n - l->i);
        return e->text ? VG_OK : fail(p, err, VG_EINTERNAL, l->i, "scratch overflow");
    }
    return parse_meta(p, l, e, err);
}

/* ---------------------------------------------------------------- lines */

/* Cut the next line out of the input; sets *l and advances p->pos. */
static vg_err_t next_line(vg_expfmt_parser_t *p, line_t *l, int *terminated, vg_error *err)
{
    const char *s = p->buf + p->pos;
    size_t rest = p->len - p->pos;
    const char *nl = memchr(s, '\n', rest);
    size_t n = nl ? (size_t)(nl - s) : rest;
    p->lineno++;
    if (n > p->max_line)
        return fail(p, err, VG_ETOOLARGE, p->max_line, "line longer than %zu bytes", p->max_line);
    p->pos += n + (nl ? 1 : 0);
    *terminated = nl != NULL;
    if (n && s[n - 1] == '\r') {
        if (IS_OM(p)) return fail(p, err, VG_EPARSE, n - 1, "CR line ending in OpenMetrics");
        n--;
    }
    l->s = s;
    l->n = n;
    l->i = 0;
    vg_err_t rc = scratch_reserve(p, n);
    return rc ? fail(p, err, rc, 0, "out of memory") : VG_OK;
}

static void entry_reset(vg_expfmt_entry *e, unsigned lineno)
{
    memset(e, 0, sizeof *e);
    e->line = lineno;
    e->name = e->text = "";
    e->labels = NULL;
}

/* Parse one non-blank line. */
static vg_err_t parse_line(vg_expfmt_parser_t *p, line_t *l, int terminated, vg_expfmt_entry *e,
                           vg_error *err)
{
    vg_err_t rc = l->s[l->i] == '#' ? parse_hash_line(p, l, e, err) : parse_sample(p, l, e, err);
    if (rc) return rc;
    if (e->kind == VG_EXPFMT_EOF) {
        p->done = 1;
        if (p->pos < p->len) return fail(p, err, VG_EPARSE, 0, "unexpected data after # EOF");
        return VG_OK;
    }
    if (!terminated) return fail(p, err, VG_EPARSE, l->n, "data does not end with \\n");
    return VG_OK;
}

vg_err_t vg_expfmt_next(vg_expfmt_parser_t *p, vg_expfmt_entry *e, vg_error *err)
{
    if (!p || !e) return vg_error_set(err, VG_EINVAL, "expfmt: NULL argument");
    if (p->sticky) return vg_error_set(err, p->sticky, "%s", p->sticky_msg);
    for (;;) {
        entry_reset(e, p->lineno);
        if (p->done) {
            e->kind = VG_EXPFMT_EOF;
            return VG_OK;
        }
        if (p->pos >= p->len) {
            if (IS_OM(p)) {
                p->lineno++; /* point at where "# EOF" was expected */
                return fail(p, err, VG_EPARSE, 0, "missing # EOF at end of input");
            }
            p->done = 1;
            continue;
        }
        line_t l;
        int terminated = 0;
        vg_err_t rc = next_line(p, &l, &terminated, err);
        if (rc) return rc;
        e->line = p->lineno;
        if (!IS_OM(p)) skip_ws(&l);
        if (at_end(&l)) {
            if (IS_OM(p)) return fail(p, err, VG_EPARSE, 0, "empty line in OpenMetrics");
            continue; /* blank lines are allowed in the text format */
        }
        return parse_line(p, &l, terminated, e, err);
    }
}

/* ---------------------------------------------------------------- content type */

vg_expfmt_format vg_expfmt_format_from_content_type(const char *ct)
{
    static const char om[] = "application/openmetrics-text";
    if (!ct) return VG_EXPFMT_TEXT;
    while (*ct == ' ' || *ct == '\t') ct++;
    if (strncasecmp(ct, om, sizeof om - 1) == 0) {
        char c = ct[sizeof om - 1];
        if (c == '\0' || c == ';' || c == ' ' || c == '\t') return VG_EXPFMT_OPENMETRICS;
    }
    return VG_EXPFMT_TEXT;
}
