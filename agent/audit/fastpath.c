/*
 * fastpath.c - check, redact and re-serialise a plain audit line in one pass
 * (fastpath.h), giving exactly what the jansson path in audit.c gives.
 *
 * The scanner accepts strict RFC 8259 JSON and produces jansson's compact
 * dump while it reads: whitespace dropped, strings without escapes copied
 * as they are (jansson would write the same bytes back), strings with
 * escapes decoded and re-escaped the way jansson's dump does, integers as
 * their digits, reals through jansson's "%.17g" rules. Redaction is the same
 * redactor, called on the same decoded values and the same integer texts,
 * with field-name rules replacing a member's value after it was checked.
 * Whatever this path is not sure to answer exactly like jansson is handed
 * back undecided: any syntax error, "-0", integers over 18 digits, real
 * overflow, \u0000, surrogate escapes, nesting over 16, objects over 64
 * members, field names a value rule matches (the reference path refuses
 * those), and every line that fails a check (the reference path writes the
 * dead-letter detail). Changing what audit.c does to a line means changing
 * this file too: tests/unit/test_audit_fast.c and fuzz_audit_fast compare
 * the two paths.
 */
#include "fastpath.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/timefmt.h"

#define MAX_DEPTH 16
#define MAX_KEYS  64 /* members per object: the duplicate check is quadratic */
#define MAX_NUM   48 /* characters of a number token */

enum { ST_OK, ST_BAIL, ST_NOMEM };
enum { T_STR, T_INT, T_REAL, T_OTHER, T_NULL };

typedef struct span {
    size_t off, len;
    int dec; /* 1: in scan.dec (decoded), 0: in the line */
} span_t;

/* A member of the top-level object: the required fields are read from these. */
typedef struct top {
    span_t key, val; /* val: T_STR decoded text, T_INT digits */
    int type;
    int64_t ival;
    double dval;
    int red;     /* redacted: the value is now the string rval */
    span_t rval; /* in scan.dec */
} top_t;

typedef struct scan {
    const char *line, *p, *e;
    const char *done; /* line[done..p) is still to be copied to out as it is */
    vg_redactor_t *r;
    vg_buf out, dec, tmp;
    top_t top[MAX_KEYS];
    size_t ntop;
    const top_t *f[VG_AF__COUNT]; /* the canonical fields among top (NULL: absent or null) */
} scan_t;

static int scan_value(scan_t *sc, int depth, top_t *t, int redact);

static const char *str_of(const scan_t *sc, span_t sp)
{
    return sp.dec ? sc->dec.data + sp.off : sc->line + sp.off;
}

static int put(vg_buf *b, const char *s, size_t n)
{
    return vg_buf_append(b, s, n) ? ST_NOMEM : ST_OK;
}

/* Copy the pending input up to upto into out. */
static int flush(scan_t *sc, const char *upto)
{
    int st = put(&sc->out, sc->done, (size_t)(upto - sc->done));
    sc->done = upto;
    return st;
}

/* Before a token at start is written differently from the input: the
 * pending input up to it goes out first; the token itself (start..p) is
 * then skipped by replaced(). */
static void replaced(scan_t *sc)
{
    sc->done = sc->p;
}

/* Whitespace is dropped from the output (jansson's compact dump has none). */
static int skip_ws(scan_t *sc)
{
    const char *w = sc->p;
    while (sc->p < sc->e && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
    if (sc->p == w) return ST_OK;
    int st = flush(sc, w);
    replaced(sc);
    return st;
}

/* jansson's string dump: \" \\ \b \f \n \r \t, other controls as \u00XX. */
static int dump_str(vg_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    if (vg_buf_putc(b, '"')) return ST_NOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
        const char *esc = u;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (put(b, s + run, i - run) || put(b, esc, strlen(esc))) return ST_NOMEM;
        run = i + 1;
    }
    if (put(b, s + run, n - run) || vg_buf_putc(b, '"')) return ST_NOMEM;
    return ST_OK;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One escape at p (just past the backslash) decoded into dec; p moves past it. */
static int decode_escape(scan_t *sc)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char c = sc->p < sc->e ? *sc->p : '\0', u[3];
    const char *k = c ? strchr(from, c) : NULL;
    if (k) {
        sc->p++;
        return vg_buf_putc(&sc->dec, to[k - from]) ? ST_NOMEM : ST_OK;
    }
    int cp = (c == 'u' && sc->e - sc->p >= 5) ? hex4(sc->p + 1) : -1;
    if (cp <= 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return ST_BAIL; /* bad, NUL, or surrogates */
    sc->p += 5;
    if (cp < 0x80) return vg_buf_putc(&sc->dec, (char)cp) ? ST_NOMEM : ST_OK;
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        return put(&sc->dec, u, 2);
    }
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    return put(&sc->dec, u, 3);
}

/* The rest of a string with escapes, decoded into dec from start. */
static int scan_escaped(scan_t *sc, const char *start, span_t *sp)
{
    int st;
    sp->off = sc->dec.len;
    sp->dec = 1;
    if ((st = put(&sc->dec, start, (size_t)(sc->p - start)))) return st;
    while (sc->p < sc->e) {
        unsigned char c = (unsigned char)*sc->p;
        if (c == '"') {
            sc->p++;
            sp->len = sc->dec.len - sp->off;
            return ST_OK;
        }
        if (c < 0x20) return ST_BAIL;
        sc->p++;
        st = c == '\\' ? decode_escape(sc) : (vg_buf_putc(&sc->dec, (char)c) ? ST_NOMEM : ST_OK);
        if (st) return st;
    }
    return ST_BAIL;
}

/* Nonzero when one of the 8 bytes in w is '"', '\\' or below 0x20 (exact as a
 * yes/no: the classic "has a zero byte" and "has a byte less than n" tests). */
static uint64_t special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) &
           0x8080808080808080ULL;
}

/* A string at p (on its opening quote): its text, raw when it has no escapes. */
static int scan_string(scan_t *sc, span_t *sp)
{
    const char *start = ++sc->p;
    uint64_t w;
    for (;;) {
        while (sc->e - sc->p >= 8 && (memcpy(&w, sc->p, 8), !special8(w))) sc->p += 8;
        if (sc->p >= sc->e) return ST_BAIL;
        unsigned char c = (unsigned char)*sc->p;
        if (c == '"') {
            *sp = (span_t){(size_t)(start - sc->line), (size_t)(sc->p - start), 0};
            sc->p++;
            return ST_OK;
        }
        if (c == '\\') return scan_escaped(sc, start, sp);
        if (c < 0x20) return ST_BAIL;
        sc->p++;
    }
}

/* The token start..p written as the JSON string s (n bytes) instead of as it is. */
static int rewrite_str(scan_t *sc, const char *start, const char *s, size_t n)
{
    int st = flush(sc, start);
    replaced(sc);
    return st ? st : dump_str(&sc->out, s, n);
}

/* A string token from start, as jansson dumps it: as it is when no escape was decoded. */
static int emit_str(scan_t *sc, const char *start, span_t sp)
{
    return sp.dec ? rewrite_str(sc, start, str_of(sc, sp), sp.len) : ST_OK;
}

/* Value redaction of s: 1 in *hit and the token from start rewritten as the
 * replacement when a rule hit. */
static int redact_text(scan_t *sc, const char *start, const char *s, size_t n, top_t *t, int *hit)
{
    int changed = 0, st;
    *hit = 0;
    if (!sc->r) return ST_OK;
    if (vg_redact_value(sc->r, s, n, &sc->tmp, &changed)) return ST_NOMEM;
    if (!changed) return ST_OK;
    *hit = 1;
    if ((st = rewrite_str(sc, start, sc->tmp.data ? sc->tmp.data : "", sc->tmp.len))) return st;
    if (!t) return ST_OK;
    t->red = 1;
    t->rval = (span_t){sc->dec.len, sc->tmp.len, 1};
    return put(&sc->dec, sc->tmp.data ? sc->tmp.data : "", sc->tmp.len);
}

static int value_string(scan_t *sc, top_t *t, int redact)
{
    const char *start = sc->p;
    span_t sp;
    int st, hit = 0;
    if ((st = scan_string(sc, &sp))) return st;
    if (t) {
        t->type = T_STR;
        t->val = sp;
    }
    if (redact && (st = redact_text(sc, start, str_of(sc, sp), sp.len, t, &hit))) return st;
    return hit ? ST_OK : emit_str(sc, start, sp);
}

/* jansson's real dump: "%.17g", ".0" when it would read back as an integer,
 * no '+' and no leading zeros in the exponent. */
static int put_real(vg_buf *b, double v)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    if (n < 0 || (size_t)n + 3 >= sizeof buf) return ST_BAIL;
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    char *start = strchr(buf, 'e');
    if (start) {
        char *end = ++start + 1;
        if (*start == '-') start++;
        while (*end == '0') end++;
        if (end != start) {
            memmove(start, end, (size_t)n - (size_t)(end - buf) + 1);
            n -= (int)(end - start);
        }
    }
    return put(b, buf, (size_t)n);
}

static int digit(const scan_t *sc)
{
    return sc->p < sc->e && *sc->p >= '0' && *sc->p <= '9';
}

/* Past one number token; *real when it has a fraction or an exponent. */
static int number_token(scan_t *sc, int *real)
{
    *real = 0;
    if (*sc->p == '-') sc->p++;
    if (sc->p < sc->e && *sc->p == '0') {
        sc->p++;
    } else {
        if (!digit(sc)) return ST_BAIL;
        while (digit(sc)) sc->p++;
    }
    if (sc->p < sc->e && *sc->p == '.') {
        sc->p++;
        *real = 1;
        if (!digit(sc)) return ST_BAIL;
        while (digit(sc)) sc->p++;
    }
    if (sc->p < sc->e && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        *real = 1;
        if (sc->p < sc->e && (*sc->p == '+' || *sc->p == '-')) sc->p++;
        if (!digit(sc)) return ST_BAIL;
        while (digit(sc)) sc->p++;
    }
    return ST_OK;
}

static int value_number(scan_t *sc, top_t *t, int redact)
{
    const char *start = sc->p;
    char num[MAX_NUM];
    int real, st, hit = 0;
    if ((st = number_token(sc, &real))) return st;
    size_t n = (size_t)(sc->p - start);
    if (n >= MAX_NUM) return ST_BAIL;
    memcpy(num, start, n);
    num[n] = '\0';
    if (real) {
        double v = strtod(num, NULL);
        if (isinf(v)) return ST_BAIL; /* jansson: "real number overflow" */
        if (t) t->type = T_REAL, t->dval = v;
        if ((st = flush(sc, start))) return st;
        replaced(sc);
        return put_real(&sc->out, v);
    }
    if (n - (num[0] == '-') > 18 || !strcmp(num, "-0")) return ST_BAIL;
    if (t) {
        t->type = T_INT;
        t->ival = strtoll(num, NULL, 10);
        t->val = (span_t){(size_t)(start - sc->line), n, 0};
    }
    /* integers of 13+ characters are redacted as text, like redact.c's redact_scalar */
    return redact && n >= 13 ? redact_text(sc, start, num, n, t, &hit) : ST_OK;
}

static int value_literal(scan_t *sc, top_t *t)
{
    static const char *const lit[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lit[i]);
        if ((size_t)(sc->e - sc->p) >= n && !memcmp(sc->p, lit[i], n)) {
            sc->p += n;
            if (t) t->type = i == 2 ? T_NULL : T_OTHER;
            return ST_OK;
        }
    }
    return ST_BAIL;
}

static int same_key(const scan_t *sc, span_t a, span_t b)
{
    return a.len == b.len && !memcmp(str_of(sc, a), str_of(sc, b), a.len);
}

/* One member's value; a secret-named member's value is checked, then replaced. */
static int member_value(scan_t *sc, int depth, span_t key, top_t *t)
{
    size_t repl_len = 0, mark;
    int secret = sc->r && vg_redact_keyn(sc->r, str_of(sc, key), key.len);
    if (!secret) return scan_value(sc, depth, t, 1);
    int st = flush(sc, sc->p);
    mark = sc->out.len;
    if (st || (st = scan_value(sc, depth, t, 0))) return st;
    const char *repl = vg_redact_field_repl(sc->r, &repl_len);
    sc->out.len = mark; /* whatever of the value went out already */
    replaced(sc);
    if ((st = dump_str(&sc->out, repl, repl_len))) return st;
    if (!t) return ST_OK;
    t->red = 1;
    t->rval = (span_t){sc->dec.len, repl_len, 1};
    return put(&sc->dec, repl, repl_len);
}

static int scan_member(scan_t *sc, int depth, span_t *keys, size_t *nk, int is_top)
{
    const char *start = sc->p;
    span_t k;
    top_t *t = NULL;
    int st;
    if (sc->p >= sc->e || *sc->p != '"' || *nk == MAX_KEYS) return ST_BAIL;
    if ((st = scan_string(sc, &k))) return st;
    for (size_t i = 0; i < *nk; i++)
        if (same_key(sc, keys[i], k)) return ST_BAIL; /* duplicate key */
    if (sc->r && vg_redact_name_leaks(sc->r, str_of(sc, k), k.len))
        return ST_BAIL; /* a name a value rule matches: the reference dead-letters it */
    keys[(*nk)++] = k;
    if ((st = emit_str(sc, start, k)) || (st = skip_ws(sc))) return st;
    if (sc->p >= sc->e || *sc->p++ != ':') return ST_BAIL;
    if ((st = skip_ws(sc))) return st;
    if (is_top) {
        t = &sc->top[sc->ntop++];
        memset(t, 0, sizeof *t);
        t->key = k;
    }
    return member_value(sc, depth, k, t);
}

/* A container at p; close is '}' or ']'. */
static int scan_container(scan_t *sc, int depth, int redact)
{
    span_t keys[MAX_KEYS];
    size_t nk = 0;
    char close = *sc->p == '{' ? '}' : ']';
    int st;
    if (depth >= MAX_DEPTH) return ST_BAIL;
    sc->p++;
    if ((st = skip_ws(sc))) return st;
    if (sc->p < sc->e && *sc->p == close) {
        sc->p++;
        return ST_OK;
    }
    for (;;) {
        st = close == '}' ? scan_member(sc, depth + 1, keys, &nk, depth == 0)
                          : scan_value(sc, depth + 1, NULL, redact);
        if (st || (st = skip_ws(sc))) return st;
        if (sc->p >= sc->e) return ST_BAIL;
        char c = *sc->p++;
        if (c == close) return ST_OK;
        if (c != ',') return ST_BAIL;
        if ((st = skip_ws(sc))) return st;
    }
}

static int scan_value(scan_t *sc, int depth, top_t *t, int redact)
{
    if (sc->p >= sc->e) return ST_BAIL;
    char c = *sc->p;
    if (c == '"') return value_string(sc, t, redact);
    if (c == '-' || (c >= '0' && c <= '9')) return value_number(sc, t, redact);
    if (c == '{' || c == '[') {
        if (t) t->type = T_OTHER;
        return scan_container(sc, depth, redact);
    }
    return value_literal(sc, t);
}

static const char *source_name(const vg_audit_schema *s, const char *canon)
{
    for (size_t i = 0; i < s->nmapping; i++)
        if (!strcmp(s->mapping[i].key, canon)) return s->mapping[i].value;
    return canon;
}

/* A top-level member by canonical name; NULL when absent or null (as audit.c's get_field). */
static const top_t *field(const scan_t *sc, const vg_audit_schema *s, const char *canon)
{
    const char *name = source_name(s, canon);
    size_t n = strlen(name);
    for (size_t i = 0; i < sc->ntop; i++)
        if (sc->top[i].key.len == n && !memcmp(str_of(sc, sc->top[i].key), name, n))
            return sc->top[i].type == T_NULL ? NULL : &sc->top[i];
    return NULL;
}

/* A required field is present (the canonical ones were looked up already). */
static int has_required(const scan_t *sc, const vg_audit_schema *s, const char *name)
{
    for (int i = 0; i < VG_AF__COUNT; i++)
        if (!strcmp(name, vg_audit_field_name(i))) return sc->f[i] != NULL;
    return field(sc, s, name) != NULL;
}

/* Required fields present, typed fields strings or integers, a usable timestamp. */
static int checks_pass(scan_t *sc, const vg_audit_schema *s, int64_t now_ms, int64_t *ms)
{
    size_t n = s->required ? s->nrequired : VG_AF__COUNT;
    for (int i = 0; i < VG_AF__COUNT; i++) sc->f[i] = field(sc, s, vg_audit_field_name(i));
    for (size_t i = 0; i < n; i++)
        if (!has_required(sc, s, s->required ? s->required[i] : vg_audit_field_name((int)i)))
            return 0;
    for (int i = VG_AF_USER_ID; i < VG_AF__COUNT; i++) {
        const top_t *t = sc->f[i];
        if (t && t->type != T_STR && t->type != T_INT) return 0;
    }
    const top_t *t = sc->f[VG_AF_TIMESTAMP];
    *ms = now_ms;
    if (!t) return 1;
    if (t->type == T_STR)
        return vg_timefmt_parse_rfc3339(str_of(sc, t->val), t->val.len, VG_TIMEFMT_LAX, ms) ==
               VG_OK;
    if (t->type == T_INT) {
        *ms = t->ival > -100000000000LL && t->ival < 100000000000LL ? t->ival * 1000 : t->ival;
        return 1;
    }
    if (t->type == T_REAL && fabs(t->dval) < 9e15) {
        *ms = vg_audit_epoch_ms(t->dval);
        return 1;
    }
    return 0;
}

/* Field i's text after redaction, like every field of the reference path. */
static char *field_text(const scan_t *sc, int i)
{
    const top_t *t = sc->f[i];
    if (t && t->red) return vg_strndup(str_of(sc, t->rval), t->rval.len);
    if (t && (t->type == T_STR || t->type == T_INT))
        return vg_strndup(str_of(sc, t->val), t->val.len);
    return vg_strdup("");
}

static int fill(scan_t *sc, vg_audit_rec *out)
{
    for (int i = VG_AF_USER_ID; i < VG_AF__COUNT; i++)
        if (!(out->field[i] = field_text(sc, i))) return ST_NOMEM;
    out->json_len = sc->out.len;
    out->json = vg_buf_steal(&sc->out, NULL);
    return out->json ? ST_OK : ST_NOMEM;
}

static int scan_line(scan_t *sc, const char *line, size_t len)
{
    int st;
    sc->line = sc->p = sc->done = line;
    sc->e = line + len;
    if (vg_buf_reserve(&sc->out, len + 1)) return ST_NOMEM;
    if ((st = skip_ws(sc))) return st;
    if (sc->p >= sc->e || *sc->p != '{') return ST_BAIL;
    if ((st = scan_container(sc, 0, 1)) || (st = flush(sc, sc->p)) || (st = skip_ws(sc))) return st;
    return sc->p == sc->e ? ST_OK : ST_BAIL;
}

vg_err_t vg_audit_fast_parse(const vg_audit_schema *s, const char *line, size_t len, int64_t now_ms,
                             vg_audit_rec *out, int *done)
{
    size_t max = s->max_line_bytes ? s->max_line_bytes : VG_AUDIT_DEFAULT_MAX_LINE;
    scan_t scan, *sc = &scan; /* about 6 KiB: on the stack, not one more allocation per line */
    int st = ST_BAIL;
    *done = 0;
    memset(out, 0, sizeof *out);
    if (len > max || !vg_audit_utf8_valid(line, len)) return VG_OK;
    sc->r = s->redact;
    sc->ntop = 0;
    vg_buf_init(&sc->out, 0);
    vg_buf_init(&sc->dec, 0);
    vg_buf_init(&sc->tmp, 0);
    if ((st = scan_line(sc, line, len)) == ST_OK)
        st = checks_pass(sc, s, now_ms, &out->ts_ms) ? fill(sc, out) : ST_BAIL;
    if (st != ST_OK) vg_audit_rec_clear(out);
    *done = st == ST_OK;
    vg_buf_free(&sc->out);
    vg_buf_free(&sc->dec);
    vg_buf_free(&sc->tmp);
    return st == ST_NOMEM ? VG_ENOMEM : VG_OK;
}
