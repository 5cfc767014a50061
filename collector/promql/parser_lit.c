/*
 * parser_lit.c - PromQL literal conversion and Go-compatible formatting.
 *
 * Prometheus converts numbers with Go's strconv (ParseInt base 0, then
 * ParseFloat) and prints them with fmt's %v, and durations with
 * model.ParseDuration / model.Duration.String. format_query output and error
 * text are compared byte for byte with promtool's, so these follow Go's
 * rules exactly rather than C's printf defaults: shortest round-trip digits,
 * exponent form from 1e+06 up, "0s" for a zero duration, "1h30m" rather
 * than "90m".
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promql/lex.h"
#include "promql/parser_int.h"
#include "vigil/labels.h"

static void syntax_msg(char *msg, size_t msglen, const char *s, size_t n, const char *what)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_lex_goquote(&b, s, n, 0);
    snprintf(msg, msglen, "strconv.ParseFloat: parsing %s: %s", b.data ? b.data : "\"\"", what);
    vg_buf_free(&b);
}

/* Go's ParseInt(s, 0, 64) for the forms the lexer lets through. */
static int parse_go_int(const char *t, double *out)
{
    int base = 10;
    const char *d = t;
    if (t[0] == '0' && (t[1] == 'x' || t[1] == 'X'))
        base = 16, d = t + 2;
    else if (t[0] == '0' && t[1])
        base = 8, d = t + 1;
    if (!*d) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(d, &end, base);
    if (*end || errno) return -1;
    *out = (double)v;
    return 0;
}

int vg_pq_parse_number(const char *s, size_t n, double *out, char *msg, size_t msglen)
{
    char t[128];
    size_t k = 0;
    if (n == 3 && !strncasecmp(s, "inf", 3)) return *out = INFINITY, 0;
    if (n == 3 && !strncasecmp(s, "nan", 3)) return *out = NAN, 0;
    for (size_t i = 0; i < n && k < sizeof t - 1; i++)
        if (s[i] != '_') t[k++] = s[i];
    t[k] = 0;
    if (n >= sizeof t || k == 0) return syntax_msg(msg, msglen, s, n, "invalid syntax"), -1;
    if (parse_go_int(t, out) == 0) return 0;
    int hex = t[0] == '0' && (t[1] == 'x' || t[1] == 'X');
    errno = 0;
    char *end;
    double v = hex ? 0 : strtod(t, &end);
    if (hex || *end || end == t) return syntax_msg(msg, msglen, s, n, "invalid syntax"), -1;
    if (errno == ERANGE && fabs(v) > 1)
        return syntax_msg(msg, msglen, s, n, "value out of range"), -1;
    *out = v;
    return 0;
}

static const struct unit {
    const char *name;
    int64_t ms;
} units[] = {
    {"y", 365LL * 24 * 3600 * 1000},
    {"w", 7LL * 24 * 3600 * 1000},
    {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},
    {"m", 60LL * 1000},
    {"s", 1000},
    {"ms", 1},
};

static int dur_fail(char *msg, size_t msglen, const char *s, size_t n, const char *fmt,
                    const char *unit)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_lex_goquote(&b, s, n, 0);
    if (unit)
        snprintf(msg, msglen, fmt, unit, b.data ? b.data : "\"\"");
    else
        snprintf(msg, msglen, fmt, b.data ? b.data : "\"\"");
    vg_buf_free(&b);
    return -1;
}

/* One "<digits><unit>" group at s[*i]; adds to *ms. */
static int dur_group(const char *s, size_t n, size_t *i, int *last, int64_t *ms, char *msg,
                     size_t msglen)
{
    const char *bad = "not a valid duration string: %s";
    uint64_t v = 0;
    size_t j = *i;
    if (j >= n || s[j] < '0' || s[j] > '9') return dur_fail(msg, msglen, s, n, bad, NULL);
    for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
        if (v > (UINT64_MAX - 9) / 10) return dur_fail(msg, msglen, s, n, bad, NULL);
        v = v * 10 + (uint64_t)(s[j] - '0');
    }
    size_t u0 = j;
    while (j < n && (s[j] < '0' || s[j] > '9')) j++;
    if (j == u0) return dur_fail(msg, msglen, s, n, bad, NULL);
    char unit[8] = {0};
    memcpy(unit, s + u0, j - u0 < 7 ? j - u0 : 7);
    int k = 0, nu = (int)(sizeof units / sizeof units[0]);
    while (k < nu && (strlen(units[k].name) != j - u0 || strcmp(units[k].name, unit) != 0)) k++;
    if (k == nu) return dur_fail(msg, msglen, s, n, "unknown unit \"%s\" in duration %s", unit);
    if (k <= *last) return dur_fail(msg, msglen, s, n, bad, NULL);
    *last = k;
    if (v > (uint64_t)(VG_PQ_MAX_DURATION_MS / units[k].ms) ||
        *ms + (int64_t)v * units[k].ms > VG_PQ_MAX_DURATION_MS)
        return snprintf(msg, msglen, "duration out of range"), -1;
    *ms += (int64_t)v * units[k].ms;
    *i = j;
    return 0;
}

int vg_pq_parse_duration(const char *s, size_t n, int64_t *ms, char *msg, size_t msglen)
{
    *ms = 0;
    if (n == 1 && s[0] == '0') return 0;
    if (n == 0) return snprintf(msg, msglen, "empty duration string"), -1;
    int last = -1;
    for (size_t i = 0; i < n;)
        if (dur_group(s, n, &i, &last, ms, msg, msglen)) return -1;
    return 0;
}

void vg_pq_fmt_float(vg_buf *b, double v)
{
    if (isnan(v)) return (void)vg_buf_puts(b, "NaN");
    if (isinf(v)) return (void)vg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    char e[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    int exp = atoi(strchr(e, 'e') + 1);
    if (exp < -4 || exp >= 6) return (void)vg_buf_puts(b, e); /* Go's %v switches at 1e+06 */
    int decimals = p - 1 - exp;
    vg_buf_printf(b, "%.*f", decimals > 0 ? decimals : 0, v);
}

void vg_pq_fmt_duration(vg_buf *b, int64_t ms)
{
    if (ms == 0) return (void)vg_buf_puts(b, "0s");
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        int64_t m = units[k].ms;
        if (k < 2 && ms % m != 0) continue; /* years and weeks only when exact */
        if (ms / m > 0) {
            vg_buf_printf(b, "%lld%s", (long long)(ms / m), units[k].name);
            ms -= ms / m * m;
        }
    }
}

void vg_pq_fmt_label(vg_buf *b, const char *name)
{
    if (vg_label_name_valid(name, strlen(name)))
        vg_buf_puts(b, name);
    else
        vg_lex_goquote(b, name, strlen(name), 0);
}
