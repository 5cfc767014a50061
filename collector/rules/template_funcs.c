/*
 * template_funcs.c - the function table of alert templates: Prometheus's
 * (humanize*, query, first, label, value, reReplaceAll, ...) and Go's
 * builtins (printf, len, index, eq, and, ...), plus Go's value printing.
 *
 * Formatting follows Go, not C, where they differ: %v of a float64 is the
 * shortest round-trip form with an exponent from 1e+06 on, infinities print
 * as +Inf, printf reports bad verbs inline (%!d(string=x)) instead of
 * failing. Each function is a small C function over tagged values; a
 * failure fills x->msg with Go's message and returns VG_EINVAL.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rules/template_int.h"
#include "vigil/duration.h"
#include "vigil/metrics.h"

#define FAIL(...) fail(x, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static vg_err_t fail(texec *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, TMPL_MSG, fmt, ap);
    va_end(ap);
    return VG_EINVAL;
}

/* ---- printing ---- */

vg_err_t tmpl_go_float(vg_buf *b, double v, int prec)
{
    if (isnan(v)) return vg_buf_puts(b, "NaN");
    if (isinf(v)) return vg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (prec >= 0) return vg_buf_printf(b, "%.*g", prec, v);
    if (v == 0 && signbit(v)) return vg_buf_puts(b, "-0"); /* Go's %v keeps the sign */
    char tmp[32];
    return vg_buf_puts(b, vg_fmt_float(v, tmp)); /* Go's %v: shortest, 1e+06 from 10^6 */
}

const char *tmpl_type_name(const tval *v)
{
    static const char *names[] = {
        [V_NIL] = "<nil>",
        [V_BOOL] = "bool",
        [V_INT] = "int",
        [V_FLOAT] = "float64",
        [V_STR] = "string",
        [V_MAP] = "map[string]string",
        [V_SAMPLE] = "*template.sample",
        [V_VEC] = "template.queryResult",
        [V_DATA] = ("struct { Labels map[string]string; ExternalLabels map[string]string; "
                    "ExternalURL string; Value float64 }"), /* () quiets clang */
        [V_ARGS] = "map[string]interface {}"};
    return names[v->k];
}

int tmpl_truth(const tval *v)
{
    switch (v->k) {
    case V_NIL: return 0;
    case V_BOOL: return v->b;
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0;
    case V_STR: return v->slen != 0;
    case V_MAP:
    case V_VEC:
    case V_ARGS: return v->n != 0;
    default: return 1;
    }
}

static vg_err_t print_map(vg_buf *b, const vg_label_t *l, size_t n)
{
    vg_err_t rc = vg_buf_puts(b, "map[");
    for (size_t i = 0; i < n && !rc; i++)
        rc = vg_buf_printf(b, "%s%s:%s", i ? " " : "", l[i].name, l[i].value);
    return rc ? rc : vg_buf_putc(b, ']');
}

static vg_err_t print_sample(vg_buf *b, const tsample *s, int amp)
{
    vg_err_t rc = vg_buf_puts(b, amp ? "&{" : "{");
    if (!rc) rc = print_map(b, s->labels, s->n);
    if (!rc) rc = vg_buf_putc(b, ' ');
    if (!rc) rc = tmpl_go_float(b, s->value, -1);
    return rc ? rc : vg_buf_putc(b, '}');
}

vg_err_t tmpl_print(texec *x, vg_buf *b, const tval *v)
{
    vg_err_t rc = VG_OK;
    switch (v->k) {
    case V_NIL: return vg_buf_puts(b, "<no value>");
    case V_BOOL: return vg_buf_puts(b, v->b ? "true" : "false");
    case V_INT: return vg_buf_printf(b, "%lld", v->i);
    case V_FLOAT: return tmpl_go_float(b, v->f, -1);
    case V_STR: return vg_buf_append(b, v->s, v->slen);
    case V_MAP: return print_map(b, v->map, v->n);
    case V_SAMPLE: return print_sample(b, v->vec, 1);
    case V_VEC:
        rc = vg_buf_putc(b, '[');
        for (size_t i = 0; i < v->n && !rc; i++) {
            if (i) rc = vg_buf_putc(b, ' ');
            if (!rc) rc = print_sample(b, &v->vec[i], 1);
        }
        return rc ? rc : vg_buf_putc(b, ']');
    case V_ARGS:
        rc = vg_buf_puts(b, "map[");
        for (size_t i = 0; i < v->n && !rc; i++) {
            rc = vg_buf_printf(b, "%sarg%zu:", i ? " " : "", i);
            if (!rc) rc = tmpl_print(x, b, &v->args[i]);
        }
        return rc ? rc : vg_buf_putc(b, ']');
    case V_DATA: return vg_buf_puts(b, "&{...}");
    }
    return rc;
}

/* ---- argument conversion ---- */

static vg_err_t want_str(texec *x, const tval *v, const char **s)
{
    *s = "";
    if (v->k != V_STR) {
        x->raw = 1;
        return FAIL("wrong type for value; expected string; got %s", tmpl_type_name(v));
    }
    *s = v->s;
    return VG_OK;
}

static vg_err_t want(texec *x, const tval *v, vkind k)
{
    if (v->k == k) return VG_OK;
    tval t = {.k = k};
    x->raw = 1;
    return FAIL("wrong type for value; expected %s; got %s", tmpl_type_name(&t), tmpl_type_name(v));
}

static vg_err_t to_float(texec *x, const tval *v, double *f)
{
    char *end;
    switch (v->k) {
    case V_FLOAT: *f = v->f; return VG_OK;
    case V_INT: *f = (double)v->i; return VG_OK;
    case V_STR:
        *f = strtod(v->s, &end);
        if (v->slen && !*end && !isspace((unsigned char)v->s[0])) return VG_OK;
        return FAIL("strconv.ParseFloat: parsing \"%.100s\": invalid syntax", v->s);
    default: return FAIL("can't convert %s to float", tmpl_type_name(v));
    }
}

static tval str_val(const char *s)
{
    return (tval){.k = V_STR, .s = s, .slen = strlen(s)};
}

static vg_err_t ret_buf(texec *x, vg_buf *b, tval *res)
{
    if (b->len == 0 && !b->data) vg_buf_puts(b, "");
    char *s = b->data ? vg_arena_strndup(x->a, b->data, b->len) : NULL;
    size_t n = b->len;
    vg_buf_free(b);
    if (!s) return VG_ENOMEM;
    *res = (tval){.k = V_STR, .s = s, .slen = n};
    return VG_OK;
}

/* ---- humanize family ---- */

static vg_err_t scaled(texec *x, double v, const char *const *pre, double step, int up,
                       const char *suffix, tval *res)
{
    const char *p = "";
    for (size_t i = 0; i < 8; i++) {
        if (up ? fabs(v) < step : fabs(v) >= 1) break;
        p = pre[i];
        v = up ? v / step : v * step;
    }
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_err_t rc = tmpl_go_float(&b, v, 4);
    if (!rc) rc = vg_buf_printf(&b, "%s%s", p, suffix);
    return rc ? (vg_buf_free(&b), rc) : ret_buf(x, &b, res);
}

static const char *const BIG[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
static const char *const SMALL[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
static const char *const BIN[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};

static vg_err_t fn_humanize(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    if (v == 0 || isnan(v) || isinf(v)) return scaled(x, v, BIG, 1000, 1, "", res);
    return fabs(v) >= 1 ? scaled(x, v, BIG, 1000, 1, "", res)
                        : scaled(x, v, SMALL, 1000, 0, "", res);
}

static vg_err_t fn_humanize1024(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) return scaled(x, v, BIN, 1024, 1, "", res);
    return scaled(x, v, BIN, 1024, 1, "", res);
}

static vg_err_t fn_humanizeDuration(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    if (isnan(v) || isinf(v)) return scaled(x, v, BIG, 1e300, 1, "", res);
    if (v == 0) return scaled(x, v, BIG, 1e300, 1, "s", res);
    if (fabs(v) < 1) return scaled(x, v, SMALL, 1000, 0, "s", res);
    const char *sign = v < 0 ? "-" : "";
    v = fabs(v);
    long long d = (long long)v, s = d % 60, m = d / 60 % 60, h = d / 3600 % 24, days = d / 86400;
    char *o;
    if (days)
        o = vg_arena_sprintf(x->a, "%s%lldd %lldh %lldm %llds", sign, days, h, m, s);
    else if (h)
        o = vg_arena_sprintf(x->a, "%s%lldh %lldm %llds", sign, h, m, s);
    else if (m)
        o = vg_arena_sprintf(x->a, "%s%lldm %llds", sign, m, s);
    else
        return scaled(x, v, BIG, 1e300, 1, "s", res) ? VG_ENOMEM
               : (res->s = vg_arena_sprintf(x->a, "%s%s", sign, res->s))
                   ? (res->slen = strlen(res->s), VG_OK)
                   : VG_ENOMEM;
    if (!o) return VG_ENOMEM;
    *res = str_val(o);
    return VG_OK;
}

static vg_err_t fn_humanizePercentage(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    return scaled(x, v * 100, BIG, 1e300, 1, "%", res);
}

/* Go's time.Time String() in UTC at Prometheus's millisecond precision. */
static vg_err_t fmt_time(texec *x, double v, tval *res)
{
    if (v * 1e9 >= 9.2e18 || v * 1e9 <= -9.2e18)
        return FAIL("%g cannot be represented as a nanoseconds timestamp since it overflows int64",
                    v);
    long long ms = (long long)(v * 1e9) / 1000000, sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) frac += 1000, sec--;
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return FAIL("timestamp out of range");
    char f[8] = "";
    if (frac) {
        snprintf(f, sizeof f, ".%03lld", frac);
        for (size_t n = strlen(f); f[n - 1] == '0'; n--) f[n - 1] = '\0';
    }
    char *o = vg_arena_sprintf(x->a, "%04d-%02d-%02d %02d:%02d:%02d%s +0000 UTC", tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
    if (!o) return VG_ENOMEM;
    *res = str_val(o);
    return VG_OK;
}

static vg_err_t fn_humanizeTimestamp(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    if (isnan(v) || isinf(v)) return scaled(x, v, BIG, 1e300, 1, "", res);
    return fmt_time(x, v, res);
}

static vg_err_t fn_toTime(texec *x, tval *av, size_t ac, tval *res)
{
    double v;
    if (to_float(x, &av[0], &v)) return VG_EINVAL;
    if (isnan(v) || isinf(v)) return FAIL("value is NaN or Inf");
    return fmt_time(x, v, res);
}

static vg_err_t fn_parseDuration(texec *x, tval *av, size_t ac, tval *res)
{
    const char *s;
    int64_t ms;
    if (want_str(x, &av[0], &s)) return VG_EINVAL;
    if (vg_duration_parse(s, &ms, NULL)) return FAIL("not a valid duration string: \"%.100s\"", s);
    *res = (tval){.k = V_FLOAT, .f = (double)ms / 1000.0};
    return VG_OK;
}

/* ---- strings ---- */

/* Case of a two-byte UTF-8 letter (Latin-1, Latin Extended-A, Greek,
 * Cyrillic): enough for the names people put in labels; the encoded
 * length never changes. Returns r unchanged for anything else. */
static unsigned case2(unsigned r, int upper)
{
    if (upper) {
        if ((r >= 0xE0 && r <= 0xFE && r != 0xF7) || (r >= 0x3B1 && r <= 0x3C9 && r != 0x3C2) ||
            (r >= 0x430 && r <= 0x44F))
            return r - 0x20;
        if (r >= 0x450 && r <= 0x45F) return r - 0x50;
        if (r >= 0x100 && r <= 0x137 && (r & 1)) return r - 1;
    } else {
        if ((r >= 0xC0 && r <= 0xDE && r != 0xD7) || (r >= 0x391 && r <= 0x3A9 && r != 0x3A2) ||
            (r >= 0x410 && r <= 0x42F))
            return r + 0x20;
        if (r >= 0x400 && r <= 0x40F) return r + 0x50;
        if (r >= 0x100 && r <= 0x137 && !(r & 1)) return r + 1;
    }
    return r;
}

/* Upper- or lower-case the rune at o[i]; returns its length in bytes. */
static size_t case_at(char *o, size_t i, size_t n, int upper)
{
    unsigned char c = (unsigned char)o[i];
    if (c < 0x80) {
        o[i] = (char)(upper ? toupper(c) : tolower(c));
        return 1;
    }
    if ((c & 0xE0) == 0xC0 && i + 1 < n && ((unsigned char)o[i + 1] & 0xC0) == 0x80) {
        unsigned r = case2(((c & 0x1Fu) << 6) | ((unsigned char)o[i + 1] & 0x3Fu), upper);
        if (r >= 0x80 && r < 0x800)
            o[i] = (char)(0xC0 | (r >> 6)), o[i + 1] = (char)(0x80 | (r & 0x3F));
        return 2;
    }
    return 1;
}

/* mode 0 toUpper, 1 toLower, 2 title (Go's strings.Title word starts). */
static vg_err_t map_chars(texec *x, tval *av, tval *res, int mode)
{
    const char *s;
    if (want_str(x, &av[0], &s)) return VG_EINVAL;
    size_t n = av[0].slen;
    char *o = vg_arena_strndup(x->a, s, n);
    if (!o) return VG_ENOMEM;
    int sep = 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)o[i];
        if (mode < 2) {
            i += case_at(o, i, n, mode == 0);
            continue;
        }
        size_t w = sep ? case_at(o, i, n, 1) : 1;
        sep = c < 0x80 && !isalnum(c) && c != '_';
        i += w;
    }
    *res = (tval){.k = V_STR, .s = o, .slen = n};
    return VG_OK;
}

static vg_err_t fn_toUpper(texec *x, tval *av, size_t ac, tval *res)
{
    return map_chars(x, av, res, 0);
}
static vg_err_t fn_toLower(texec *x, tval *av, size_t ac, tval *res)
{
    return map_chars(x, av, res, 1);
}
static vg_err_t fn_title(texec *x, tval *av, size_t ac, tval *res)
{
    return map_chars(x, av, res, 2);
}

static vg_err_t fn_safeHtml(texec *x, tval *av, size_t ac, tval *res)
{
    const char *s;
    if (want_str(x, &av[0], &s)) return VG_EINVAL;
    *res = av[0];
    return VG_OK;
}

static vg_err_t fn_stripPort(texec *x, tval *av, size_t ac, tval *res)
{
    const char *s, *c;
    if (want_str(x, &av[0], &s)) return VG_EINVAL;
    *res = av[0];
    if (s[0] == '[') {
        c = strchr(s, ']');
        if (!c || c[1] != ':' || strchr(c + 2, ':')) return VG_OK;
        char *h = vg_arena_strndup(x->a, s + 1, (size_t)(c - s - 1));
        return h ? (*res = str_val(h), VG_OK) : VG_ENOMEM;
    }
    c = strrchr(s, ':');
    if (!c || memchr(s, ':', (size_t)(c - s)) || strpbrk(s, "[]")) return VG_OK;
    char *h = vg_arena_strndup(x->a, s, (size_t)(c - s));
    return h ? (*res = str_val(h), VG_OK) : VG_ENOMEM;
}

/* ---- regular expressions (PCRE2 standing in for Go's RE2) ---- */

static vg_err_t re_compile(texec *x, const char *pat, pcre2_code **re, const char *prefix)
{
    int ec;
    PCRE2_SIZE off;
    *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (*re) return VG_OK;
    PCRE2_UCHAR m[160];
    pcre2_get_error_message(ec, m, sizeof m);
    return FAIL("%serror parsing regexp: %s: `%.100s`", prefix, (char *)m, pat);
}

static vg_err_t fn_match(texec *x, tval *av, size_t ac, tval *res)
{
    const char *pat, *s;
    pcre2_code *re;
    if (want_str(x, &av[0], &pat) || want_str(x, &av[1], &s) || re_compile(x, pat, &re, ""))
        return VG_EINVAL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int r = md ? pcre2_match(re, (PCRE2_SPTR)s, av[1].slen, 0, 0, md, NULL) : -1;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    *res = (tval){.k = V_BOOL, .b = r >= 0};
    return md ? VG_OK : VG_ENOMEM;
}

/* Go's Regexp.Expand: $1 ${1} $name ${name} $$; unknown groups are empty. */
static vg_err_t expand(vg_buf *b, const char *t, const char *s, pcre2_code *re, PCRE2_SIZE *ov,
                       int nm)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; t[i] && !rc; i++) {
        if (t[i] != '$') {
            rc = vg_buf_putc(b, t[i]);
            continue;
        }
        size_t st = i + 1, en;
        int brace = t[st] == '{';
        if (t[st] == '$') {
            rc = vg_buf_putc(b, '$'), i++;
            continue;
        }
        st += brace;
        for (en = st; isalnum((unsigned char)t[en]) || t[en] == '_'; en++) {
        }
        if (en == st || (brace && t[en] != '}')) {
            rc = vg_buf_putc(b, '$');
            continue;
        }
        char name[64] = "";
        snprintf(name, sizeof name, "%.*s", (int)(en - st), t + st);
        int g = -1;
        if (strspn(name, "0123456789") == strlen(name))
            g = strlen(name) < 6 ? atoi(name) : -1;
        else
            g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
        if (g >= 0 && g < nm && ov[2 * g] != PCRE2_UNSET)
            rc = vg_buf_append(b, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        i = en - 1 + (size_t)brace;
    }
    return rc;
}

static size_t rune_width(const char *s, size_t i, size_t n)
{
    unsigned char c = (unsigned char)s[i];
    size_t w = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return i + w > n ? 1 : w;
}

static vg_err_t replace_all(texec *x, pcre2_code *re, const char *repl, const char *s, size_t n,
                            vg_buf *b)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return VG_ENOMEM;
    size_t search = 0, last = 0;
    vg_err_t rc = VG_OK;
    while (search <= n && !rc) {
        int r = pcre2_match(re, (PCRE2_SPTR)s, n, search, 0, md, NULL);
        if (r < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        rc = vg_buf_append(b, s + last, ov[0] - last);
        if (!rc && (ov[1] > last || ov[0] == 0)) rc = expand(b, repl, s, re, ov, r);
        last = ov[1];
        size_t w = search < n ? rune_width(s, search, n) : 1;
        search = search + w > ov[1] ? search + w : ov[1];
        if (b->len > TMPL_MAX_OUT) rc = VG_ETOOLARGE;
    }
    if (!rc && last < n) rc = vg_buf_append(b, s + last, n - last);
    pcre2_match_data_free(md);
    return rc;
}

static vg_err_t fn_reReplaceAll(texec *x, tval *av, size_t ac, tval *res)
{
    const char *pat, *repl, *s;
    pcre2_code *re;
    if (want_str(x, &av[0], &pat) || want_str(x, &av[1], &repl) || want_str(x, &av[2], &s))
        return VG_EINVAL;
    char pfx[160];
    snprintf(pfx, sizeof pfx, "regexp: Compile(`%.100s`): ", pat);
    if (re_compile(x, pat, &re, pfx)) return VG_EINVAL;
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_err_t rc = replace_all(x, re, repl, s, av[2].slen, &b);
    pcre2_code_free(re);
    if (rc == VG_ETOOLARGE) return vg_buf_free(&b), FAIL("output too large");
    return rc ? (vg_buf_free(&b), rc) : ret_buf(x, &b, res);
}

/* ---- links and escaping (Prometheus's pathPrefix, externalURL, graphLink,
 * tableLink; Go's html, urlquery, js) ---- */

static const char *ext_url(texec *x)
{
    return x->d->external_url ? x->d->external_url : "";
}

static vg_err_t fn_externalURL(texec *x, tval *av, size_t ac, tval *res)
{
    *res = str_val(ext_url(x));
    return VG_OK;
}

static vg_err_t fn_pathPrefix(texec *x, tval *av, size_t ac, tval *res)
{
    const char *u = ext_url(x), *p = strstr(u, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    const char *e = p ? p + strcspn(p, "?#") : NULL;
    char *o = p ? vg_arena_strndup(x->a, p, (size_t)(e - p)) : vg_arena_strdup(x->a, "");
    if (!o) return VG_ENOMEM;
    *res = str_val(o);
    return VG_OK;
}

/* Go's url.QueryEscape. */
static vg_err_t query_escape(vg_buf *b, const char *s, size_t n)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || strchr("-_.~", c))
            rc = vg_buf_putc(b, (char)c);
        else if (c == ' ')
            rc = vg_buf_putc(b, '+');
        else
            rc = vg_buf_printf(b, "%%%02X", c);
    }
    return rc;
}

static vg_err_t link(texec *x, tval *av, tval *res, int tab)
{
    const char *e;
    if (want_str(x, &av[0], &e)) return VG_EINVAL;
    vg_buf b;
    vg_buf_init(&b, TMPL_MAX_OUT);
    vg_err_t rc = vg_buf_puts(&b, "/graph?g0.expr=");
    if (!rc) rc = query_escape(&b, e, av[0].slen);
    if (!rc) rc = vg_buf_printf(&b, "&g0.tab=%d", tab);
    return rc ? (vg_buf_free(&b), rc == VG_ETOOLARGE ? FAIL("output too large") : rc)
              : ret_buf(x, &b, res);
}

static vg_err_t fn_graphLink(texec *x, tval *av, size_t ac, tval *res)
{
    return link(x, av, res, 0);
}
static vg_err_t fn_tableLink(texec *x, tval *av, size_t ac, tval *res)
{
    return link(x, av, res, 1);
}

/* One byte escaped as Go's html (kind 0) or js (kind 2) builtin does it. */
static vg_err_t escape1(vg_buf *b, unsigned char c, int kind)
{
    if (kind == 0 && c && strchr("<>&'\"", c))
        return vg_buf_puts(b, c == '<'    ? "&lt;"
                              : c == '>'  ? "&gt;"
                              : c == '&'  ? "&amp;"
                              : c == '\'' ? "&#39;"
                                          : "&#34;");
    if (kind == 2 && c && strchr("\\'\"", c)) return vg_buf_printf(b, "\\%c", c);
    if (kind == 2 && (c < ' ' || (c && strchr("<>&=", c)))) return vg_buf_printf(b, "\\u%04X", c);
    return vg_buf_putc(b, (char)c);
}

/* Go's html, urlquery and js builtins: Sprint of the arguments, escaped. */
static vg_err_t escaper(texec *x, tval *av, size_t ac, tval *res, int kind)
{
    vg_buf in, b;
    vg_buf_init(&in, TMPL_MAX_OUT);
    vg_buf_init(&b, TMPL_MAX_OUT);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ac && !rc; i++) {
        if (i && av[i].k != V_STR && av[i - 1].k != V_STR) rc = vg_buf_putc(&in, ' ');
        if (!rc) rc = tmpl_print(x, &in, &av[i]);
    }
    const char *s = in.data ? in.data : "";
    if (!rc && kind == 1) rc = query_escape(&b, s, in.len);
    for (size_t i = 0; i < in.len && !rc && kind != 1; i++)
        rc = escape1(&b, (unsigned char)s[i], kind);
    vg_buf_free(&in);
    if (rc == VG_ETOOLARGE) return vg_buf_free(&b), FAIL("output too large");
    return rc ? (vg_buf_free(&b), rc) : ret_buf(x, &b, res);
}

static vg_err_t fn_html(texec *x, tval *av, size_t ac, tval *res)
{
    return escaper(x, av, ac, res, 0);
}
static vg_err_t fn_urlquery(texec *x, tval *av, size_t ac, tval *res)
{
    return escaper(x, av, ac, res, 1);
}
static vg_err_t fn_js(texec *x, tval *av, size_t ac, tval *res)
{
    return escaper(x, av, ac, res, 2);
}

/* ---- query results ---- */

static vg_err_t copy_samples(texec *x, const vg_tmpl_sample *in, size_t n, tval *res)
{
    tsample *v = vg_arena_calloc(x->a, (n ? n : 1) * sizeof *v);
    if (!v) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i].value = in[i].value, v[i].n = in[i].nlabels;
        v[i].labels = vg_arena_alloc(x->a, (in[i].nlabels + 1) * sizeof(vg_label_t));
        if (!v[i].labels) return VG_ENOMEM;
        for (size_t j = 0; j < in[i].nlabels; j++) {
            v[i].labels[j].name = vg_arena_strdup(x->a, in[i].labels[j].name);
            v[i].labels[j].value = vg_arena_strdup(x->a, in[i].labels[j].value);
            if (!v[i].labels[j].name || !v[i].labels[j].value) return VG_ENOMEM;
        }
    }
    *res = (tval){.k = V_VEC, .vec = v, .n = n};
    return VG_OK;
}

static vg_err_t fn_query(texec *x, tval *av, size_t ac, tval *res)
{
    const char *q;
    if (want_str(x, &av[0], &q)) return VG_EINVAL;
    if (!x->d->query) return FAIL("query is not available here");
    vg_tmpl_sample *s = NULL;
    size_t n = 0;
    vg_error e = {0};
    vg_err_t rc = x->d->query(x->d->query_ud, q, &s, &n, &e);
    if (rc) return FAIL("%s", vg_error_msg(&e, rc));
    rc = copy_samples(x, s, n, res);
    if (x->d->query_free) x->d->query_free(x->d->query_ud, s, n);
    return rc;
}

static vg_err_t fn_first(texec *x, tval *av, size_t ac, tval *res)
{
    if (want(x, &av[0], V_VEC)) return VG_EINVAL;
    if (!av[0].n) return FAIL("first() called on vector with no elements");
    *res = (tval){.k = V_SAMPLE, .vec = av[0].vec};
    return VG_OK;
}

static vg_err_t fn_label(texec *x, tval *av, size_t ac, tval *res)
{
    const char *name, *v;
    if (want_str(x, &av[0], &name) || want(x, &av[1], V_SAMPLE)) return VG_EINVAL;
    v = vg_labels_get(av[1].vec->labels, av[1].vec->n, name);
    *res = str_val(v ? v : "");
    return VG_OK;
}

static vg_err_t fn_value(texec *x, tval *av, size_t ac, tval *res)
{
    if (want(x, &av[0], V_SAMPLE)) return VG_EINVAL;
    *res = (tval){.k = V_FLOAT, .f = av[0].vec->value};
    return VG_OK;
}

static vg_err_t fn_strvalue(texec *x, tval *av, size_t ac, tval *res)
{
    if (want(x, &av[0], V_SAMPLE)) return VG_EINVAL;
    const char *v = vg_labels_get(av[0].vec->labels, av[0].vec->n, "__value__");
    *res = str_val(v ? v : "");
    return VG_OK;
}

static const char *sort_label;
static int by_label(const void *a, const void *b)
{
    const tsample *x = a, *y = b;
    const char *u = vg_labels_get(x->labels, x->n, sort_label),
               *v = vg_labels_get(y->labels, y->n, sort_label);
    int c = strcmp(u ? u : "", v ? v : "");
    return c ? c : (x < y ? -1 : x > y);
}

static vg_err_t fn_sortByLabel(texec *x, tval *av, size_t ac, tval *res)
{
    const char *name;
    if (want_str(x, &av[0], &name) || want(x, &av[1], V_VEC)) return VG_EINVAL;
    /* stable: sort (sample, original index) via a copy ordered by address */
    tsample *v = vg_arena_alloc(x->a, (av[1].n ? av[1].n : 1) * sizeof *v);
    if (!v) return VG_ENOMEM;
    memcpy(v, av[1].vec, av[1].n * sizeof *v);
    for (size_t i = 1; i < av[1].n; i++) { /* insertion sort keeps it stable */
        tsample t = v[i];
        const char *tv = vg_labels_get(t.labels, t.n, name);
        size_t j = i;
        for (; j > 0; j--) {
            const char *pv = vg_labels_get(v[j - 1].labels, v[j - 1].n, name);
            if (strcmp(pv ? pv : "", tv ? tv : "") <= 0) break;
            v[j] = v[j - 1];
        }
        v[j] = t;
    }
    (void)by_label, (void)sort_label;
    *res = (tval){.k = V_VEC, .vec = v, .n = av[1].n};
    return VG_OK;
}

static vg_err_t fn_args(texec *x, tval *av, size_t ac, tval *res)
{
    tval *c = vg_arena_alloc(x->a, (ac ? ac : 1) * sizeof *c);
    if (!c) return VG_ENOMEM;
    memcpy(c, av, ac * sizeof *c);
    *res = (tval){.k = V_ARGS, .args = c, .n = ac};
    return VG_OK;
}

/* ---- Go builtins ---- */

static vg_err_t fn_len(texec *x, tval *av, size_t ac, tval *res)
{
    switch (av[0].k) {
    case V_STR: *res = (tval){.k = V_INT, .i = (long long)av[0].slen}; return VG_OK;
    case V_MAP:
    case V_VEC:
    case V_ARGS: *res = (tval){.k = V_INT, .i = (long long)av[0].n}; return VG_OK;
    default: return FAIL("len of type %s", tmpl_type_name(&av[0]));
    }
}

static vg_err_t index1(texec *x, const tval *c, const tval *k, tval *res)
{
    if (c->k == V_MAP || c->k == V_ARGS) {
        if (k->k != V_STR) return FAIL("value has type %s; should be string", tmpl_type_name(k));
        if (c->k == V_ARGS) {
            size_t i = 0;
            int ok = sscanf(k->s, "arg%zu", &i) == 1 && i < c->n;
            *res = ok ? c->args[i] : (tval){.k = V_NIL};
            return VG_OK;
        }
        const char *v = vg_labels_get(c->map, c->n, k->s);
        *res = str_val(v ? v : "");
        return VG_OK;
    }
    if (c->k == V_VEC || c->k == V_STR) {
        if (k->k != V_INT) return FAIL("cannot index slice/array with type %s", tmpl_type_name(k));
        size_t n = c->k == V_VEC ? c->n : c->slen;
        if (k->i < 0 || (size_t)k->i >= n) return FAIL("index out of range: %lld", k->i);
        if (c->k == V_STR)
            *res = (tval){.k = V_INT, .i = (unsigned char)c->s[k->i]};
        else
            *res = (tval){.k = V_SAMPLE, .vec = &c->vec[k->i]};
        return VG_OK;
    }
    if (c->k == V_NIL) return FAIL("index of untyped nil");
    return FAIL("can't index item of type %s", tmpl_type_name(c));
}

/* Go's slice builtin on strings and query results: slice x [i [j]]. */
static vg_err_t fn_slice(texec *x, tval *av, size_t ac, tval *res)
{
    const tval *v = &av[0];
    if (v->k != V_STR && v->k != V_VEC)
        return FAIL("can't slice item of type %s", tmpl_type_name(v));
    long long n = v->k == V_STR ? (long long)v->slen : (long long)v->n, idx[2] = {0, n};
    if (ac > 3) return FAIL("too many slice indexes: %zu", ac - 1);
    for (size_t i = 1; i < ac; i++) {
        if (av[i].k != V_INT)
            return FAIL("cannot index slice/array with type %s", tmpl_type_name(&av[i]));
        if (av[i].i < 0 || av[i].i > n) return FAIL("index out of range: %lld", av[i].i);
        idx[i - 1] = av[i].i;
    }
    if (idx[0] > idx[1]) return FAIL("invalid slice index: %lld > %lld", idx[0], idx[1]);
    *res = *v;
    if (v->k == V_STR)
        res->s = v->s + idx[0], res->slen = (size_t)(idx[1] - idx[0]);
    else
        res->vec = v->vec + idx[0], res->n = (size_t)(idx[1] - idx[0]);
    if (v->k == V_STR && !(res->s = vg_arena_strndup(x->a, res->s, res->slen))) return VG_ENOMEM;
    return VG_OK;
}

static vg_err_t fn_index(texec *x, tval *av, size_t ac, tval *res)
{
    tval cur = av[0];
    for (size_t i = 1; i < ac; i++)
        if (index1(x, &cur, &av[i], &cur)) return VG_EINVAL;
    *res = cur;
    return VG_OK;
}

static int basic(const tval *v)
{
    return v->k == V_BOOL || v->k == V_INT || v->k == V_FLOAT || v->k == V_STR;
}

/* -1 less, 0 equal, 1 greater; 2 on error (x->msg set). */
static int compare(texec *x, const tval *a, const tval *b, int ordered)
{
    if (!basic(a) || !basic(b)) {
        if (!ordered && a->k == V_NIL && b->k == V_NIL) return 0;
        FAIL(ordered ? "invalid type for comparison" : "incompatible types for comparison");
        return 2;
    }
    if (a->k != b->k) return FAIL("incompatible types for comparison"), 2;
    switch (a->k) {
    case V_BOOL:
        if (ordered) return FAIL("invalid type for comparison"), 2;
        return a->b != b->b;
    case V_INT: return a->i < b->i ? -1 : a->i > b->i;
    case V_FLOAT: return a->f < b->f ? -1 : a->f > b->f ? 1 : a->f == b->f ? 0 : 3;
    default: {
        int c = strcmp(a->s, b->s);
        return c < 0 ? -1 : c > 0;
    }
    }
}

static vg_err_t fn_eq(texec *x, tval *av, size_t ac, tval *res)
{
    if (ac < 2) return FAIL("missing argument for comparison");
    int eq = 0;
    for (size_t i = 1; i < ac && !eq; i++) {
        int c = compare(x, &av[0], &av[i], 0);
        if (c == 2) return VG_EINVAL;
        eq = c == 0;
    }
    *res = (tval){.k = V_BOOL, .b = eq};
    return VG_OK;
}

static vg_err_t cmp_op(texec *x, tval *av, tval *res, int op)
{
    int c = compare(x, &av[0], &av[1], op != 0);
    if (c == 2) return VG_EINVAL;
    int r = 0;
    switch (op) {
    case 0: r = c != 0; break;
    case 1: r = c == -1; break;
    case 2: r = c == -1 || c == 0; break;
    case 3: r = c == 1; break;
    default: r = c == 1 || c == 0; break;
    }
    *res = (tval){.k = V_BOOL, .b = r};
    return VG_OK;
}

static vg_err_t fn_ne(texec *x, tval *av, size_t ac, tval *res)
{
    return cmp_op(x, av, res, 0);
}
static vg_err_t fn_lt(texec *x, tval *av, size_t ac, tval *res)
{
    return cmp_op(x, av, res, 1);
}
static vg_err_t fn_le(texec *x, tval *av, size_t ac, tval *res)
{
    return cmp_op(x, av, res, 2);
}
static vg_err_t fn_gt(texec *x, tval *av, size_t ac, tval *res)
{
    return cmp_op(x, av, res, 3);
}
static vg_err_t fn_ge(texec *x, tval *av, size_t ac, tval *res)
{
    return cmp_op(x, av, res, 4);
}

static vg_err_t fn_and(texec *x, tval *av, size_t ac, tval *res)
{
    size_t i = 0;
    while (i + 1 < ac && tmpl_truth(&av[i])) i++;
    *res = av[i];
    return VG_OK;
}

static vg_err_t fn_or(texec *x, tval *av, size_t ac, tval *res)
{
    size_t i = 0;
    while (i + 1 < ac && !tmpl_truth(&av[i])) i++;
    *res = av[i];
    return VG_OK;
}

static vg_err_t fn_not(texec *x, tval *av, size_t ac, tval *res)
{
    *res = (tval){.k = V_BOOL, .b = !tmpl_truth(&av[0])};
    return VG_OK;
}

/* ---- printf ---- */

static vg_err_t bad_verb(texec *x, vg_buf *b, char verb, const tval *v)
{
    if (!v) return vg_buf_printf(b, "%%!%c(MISSING)", verb);
    if (v->k == V_NIL) return vg_buf_printf(b, "%%!%c(<nil>)", verb);
    vg_err_t rc = vg_buf_printf(b, "%%!%c(%s=", verb, tmpl_type_name(v));
    if (!rc) rc = tmpl_print(x, b, v);
    return rc ? rc : vg_buf_putc(b, ')');
}

static vg_err_t go_quote(vg_buf *b, const char *s, size_t n)
{
    vg_err_t rc = vg_buf_putc(b, '"');
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = strchr("\a\b\f\n\r\t\v\\\"", c);
        if (c && e)
            rc = vg_buf_printf(b, "\\%c", "abfnrtv\\\""[e - "\a\b\f\n\r\t\v\\\""]);
        else if (c < 0x20 || c == 0x7f)
            rc = vg_buf_printf(b, "\\x%02x", c);
        else
            rc = vg_buf_putc(b, (char)c);
    }
    return rc ? rc : vg_buf_putc(b, '"');
}

static vg_err_t pad(vg_buf *b, const char *s, size_t n, int width, int left)
{
    vg_err_t rc = VG_OK;
    for (int i = (int)n; !left && i < width && !rc; i++) rc = vg_buf_putc(b, ' ');
    if (!rc) rc = vg_buf_append(b, s, n);
    for (int i = (int)n; left && i < width && !rc; i++) rc = vg_buf_putc(b, ' ');
    return rc;
}

/* One verb with its C-style spec (flags, width, precision) and argument. */
static vg_err_t verb1(texec *x, vg_buf *b, const char *spec, char verb, int width, int left,
                      int prec, const tval *v)
{
    char f[48];
    if (verb == 'v' || verb == 's' || verb == 'T') {
        if (verb == 's' && (v->k == V_INT || v->k == V_FLOAT || v->k == V_BOOL))
            return bad_verb(x, b, verb, v);
        vg_buf t;
        vg_buf_init(&t, TMPL_MAX_OUT);
        vg_err_t rc = verb == 'T' ? vg_buf_puts(&t, tmpl_type_name(v)) : tmpl_print(x, &t, v);
        size_t n = t.len;
        if (verb == 's' && prec >= 0 && (size_t)prec < n) n = (size_t)prec;
        if (!rc) rc = pad(b, t.data ? t.data : "", n, width, left);
        vg_buf_free(&t);
        return rc;
    }
    if (strchr("dxXoc", verb) && v->k == V_INT) {
        if (verb == 'c') return vg_buf_putc(b, (char)v->i);
        snprintf(f, sizeof f, "%sll%c", spec, verb == 'd' ? 'd' : verb);
        if (v->i < 0 && verb != 'd')
            return vg_buf_putc(b, '-') ? VG_ENOMEM : vg_buf_printf(b, f, -v->i);
        return vg_buf_printf(b, f, v->i);
    }
    if (strchr("xX", verb) && v->k == V_STR) {
        vg_err_t rc = VG_OK;
        for (size_t i = 0; i < v->slen && !rc; i++)
            rc = vg_buf_printf(b, verb == 'x' ? "%02x" : "%02X", (unsigned char)v->s[i]);
        return rc;
    }
    if (strchr("eEfFgG", verb) && v->k == V_FLOAT) {
        if (isnan(v->f) || isinf(v->f)) return tmpl_go_float(b, v->f, -1);
        if ((verb == 'g' || verb == 'G') && prec < 0 && width == 0) {
            size_t at = b->len;
            vg_err_t rc = tmpl_go_float(b, v->f, -1);
            for (size_t i = at; !rc && verb == 'G' && i < b->len; i++)
                b->data[i] = (char)toupper((unsigned char)b->data[i]);
            return rc;
        }
        snprintf(f, sizeof f, "%s%c", spec, verb);
        return vg_buf_printf(b, f, v->f);
    }
    if (verb == 'q' && v->k == V_STR) return go_quote(b, v->s, v->slen);
    if (verb == 'q' && v->k == V_INT) return vg_buf_printf(b, "'%c'", (char)v->i);
    if (verb == 't' && v->k == V_BOOL) return vg_buf_puts(b, v->b ? "true" : "false");
    return bad_verb(x, b, verb, v);
}

/* Go's "%!(EXTRA int=1, string=x)" for arguments no verb used. */
static vg_err_t extra_args(texec *x, vg_buf *b, const tval *av, size_t n)
{
    vg_err_t rc = vg_buf_puts(b, "%!(EXTRA ");
    for (size_t i = 0; i < n && !rc; i++) {
        rc = vg_buf_printf(b, "%s%s=", i ? ", " : "", tmpl_type_name(&av[i]));
        if (!rc) rc = tmpl_print(x, b, &av[i]);
    }
    return rc ? rc : vg_buf_putc(b, ')');
}

static vg_err_t sprintf_go(texec *x, vg_buf *b, const char *fmt, tval *av, size_t ac)
{
    size_t used = 0;
    vg_err_t rc = VG_OK;
    for (const char *p = fmt; *p && !rc; p++) {
        if (*p != '%') {
            rc = vg_buf_putc(b, *p);
            continue;
        }
        const char *st = ++p;
        while (*p && strchr("+- #0", *p)) p++;
        int nflags = (int)(p - st) < 8 ? (int)(p - st) : 8;
        int width = 0, prec = -1, left = memchr(st, '-', (size_t)(p - st)) != NULL;
        while (isdigit((unsigned char)*p) && width < 10000) width = width * 10 + (*p++ - '0');
        while (isdigit((unsigned char)*p)) p++;
        if (*p == '.')
            for (prec = 0, p++; isdigit((unsigned char)*p); p++)
                prec = prec < 10000 ? prec * 10 + (*p - '0') : prec;
        if (!*p) {
            rc = vg_buf_puts(b, "%!(NOVERB)");
            break;
        }
        if (*p == '%') {
            rc = vg_buf_putc(b, '%');
            continue;
        }
        char spec[40]; /* rebuilt with the capped width and precision */
        int k = snprintf(spec, sizeof spec, "%%%.*s", nflags, st);
        if (width) k += snprintf(spec + k, sizeof spec - (size_t)k, "%d", width);
        if (prec >= 0) snprintf(spec + k, sizeof spec - (size_t)k, ".%d", prec);
        if (used >= ac)
            rc = bad_verb(x, b, *p, NULL);
        else
            rc = verb1(x, b, spec, *p, width, left, prec, &av[used++]);
    }
    return rc || used >= ac ? rc : extra_args(x, b, av + used, ac - used);
}

static vg_err_t fn_printf(texec *x, tval *av, size_t ac, tval *res)
{
    const char *fmt;
    if (want_str(x, &av[0], &fmt)) return VG_EINVAL;
    vg_buf b;
    vg_buf_init(&b, TMPL_MAX_OUT);
    vg_err_t rc = sprintf_go(x, &b, fmt, av + 1, ac - 1);
    if (rc == VG_ETOOLARGE) return vg_buf_free(&b), FAIL("output too large");
    return rc ? (vg_buf_free(&b), rc) : ret_buf(x, &b, res);
}

/* print: spaces between operands when neither is a string; println: always, plus \n. */
static vg_err_t print_args(texec *x, tval *av, size_t ac, tval *res, int ln)
{
    vg_buf b;
    vg_buf_init(&b, TMPL_MAX_OUT);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ac && !rc; i++) {
        if (i && (ln || (av[i].k != V_STR && av[i - 1].k != V_STR))) rc = vg_buf_putc(&b, ' ');
        if (!rc) rc = tmpl_print(x, &b, &av[i]);
    }
    if (!rc && ln) rc = vg_buf_putc(&b, '\n');
    if (rc == VG_ETOOLARGE) return vg_buf_free(&b), FAIL("output too large");
    return rc ? (vg_buf_free(&b), rc) : ret_buf(x, &b, res);
}

static vg_err_t fn_print(texec *x, tval *av, size_t ac, tval *res)
{
    return print_args(x, av, ac, res, 0);
}
static vg_err_t fn_println(texec *x, tval *av, size_t ac, tval *res)
{
    return print_args(x, av, ac, res, 1);
}

/* Go's call builtin: no value here is a function, so it always fails as Go's does. */
static vg_err_t fn_call(texec *x, tval *av, size_t ac, tval *res)
{
    if (av[0].k == V_NIL) return FAIL("call of nil");
    return FAIL("non-function of type %s", tmpl_type_name(&av[0]));
}

/* ---- the table ---- */

static const struct {
    const char *name;
    tfunc fn;
    int nargs; /* -1: variadic, at least one */
} FUNCS[] = {
    {"query", fn_query, 1},
    {"first", fn_first, 1},
    {"label", fn_label, 2},
    {"value", fn_value, 1},
    {"strvalue", fn_strvalue, 1},
    {"sortByLabel", fn_sortByLabel, 2},
    {"args", fn_args, -2},
    {"humanize", fn_humanize, 1},
    {"humanize1024", fn_humanize1024, 1},
    {"humanizeDuration", fn_humanizeDuration, 1},
    {"humanizePercentage", fn_humanizePercentage, 1},
    {"humanizeTimestamp", fn_humanizeTimestamp, 1},
    {"title", fn_title, 1},
    {"toUpper", fn_toUpper, 1},
    {"toLower", fn_toLower, 1},
    {"match", fn_match, 2},
    {"reReplaceAll", fn_reReplaceAll, 3},
    {"safeHtml", fn_safeHtml, 1},
    {"stripPort", fn_stripPort, 1},
    {"printf", fn_printf, -1},
    {"print", fn_print, -2},
    {"println", fn_println, -2},
    {"len", fn_len, 1},
    {"index", fn_index, -1},
    {"eq", fn_eq, -1},
    {"ne", fn_ne, 2},
    {"lt", fn_lt, 2},
    {"le", fn_le, 2},
    {"gt", fn_gt, 2},
    {"ge", fn_ge, 2},
    {"and", fn_and, -1},
    {"or", fn_or, -1},
    {"toTime", fn_toTime, 1},
    {"parseDuration", fn_parseDuration, 1},
    {"externalURL", fn_externalURL, 0},
    {"pathPrefix", fn_pathPrefix, 0},
    {"graphLink", fn_graphLink, 1},
    {"tableLink", fn_tableLink, 1},
    {"html", fn_html, -2},
    {"urlquery", fn_urlquery, -2},
    {"js", fn_js, -2},
    {"slice", fn_slice, -1},
    {"call", fn_call, -1},
    {"not", fn_not, 1},
};

tfunc tmpl_func(const char *name, size_t len, int *nargs)
{
    for (size_t i = 0; i < sizeof FUNCS / sizeof FUNCS[0]; i++)
        if (strlen(FUNCS[i].name) == len && memcmp(FUNCS[i].name, name, len) == 0) {
            if (nargs) *nargs = FUNCS[i].nargs;
            return FUNCS[i].fn;
        }
    return NULL;
}
