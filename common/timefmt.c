/*
 * timefmt.c - date arithmetic and RFC 3339 (see timefmt.h).
 *
 * The day-count conversions are Howard Hinnant's civil calendar algorithms
 * (eras of 400 years, so they hold for any int64 year without tables). The
 * parser walks a bounded string with a cursor, so a timestamp inside a JSON
 * value needs no NUL-terminated copy.
 */
#include "vigil/timefmt.h"

#include <inttypes.h>
#include <stdio.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t vg_timefmt_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void vg_timefmt_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int vg_timefmt_days_in_month(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : d[m - 1];
}

struct cur {
    const char *p, *e;
};

static int digits(struct cur *c, int n, int *v)
{
    *v = 0;
    if (c->e - c->p < n) return 0;
    for (int i = 0; i < n; i++, c->p++) {
        if (*c->p < '0' || *c->p > '9') return 0;
        *v = *v * 10 + (*c->p - '0');
    }
    return 1;
}

static int lit(struct cur *c, const char *any)
{
    if (c->p >= c->e) return 0;
    for (; *any; any++)
        if (*c->p == *any) return c->p++, 1;
    return 0;
}

/* ".ddd..." (optional) into milliseconds, truncated. */
static int fraction(struct cur *c, unsigned flags, int *ms)
{
    int n = 0;
    *ms = 0;
    if (!lit(c, ".")) return 1;
    for (; c->p < c->e && *c->p >= '0' && *c->p <= '9'; c->p++, n++)
        if (n < 3) *ms = *ms * 10 + (*c->p - '0');
    for (int i = n; i < 3; i++) *ms *= 10;
    return n > 0 && (n <= 9 || (flags & VG_TIMEFMT_LONGFRAC));
}

/* Z or +hh:mm / -hh:mm into seconds east of UTC. */
static int offset(struct cur *c, unsigned flags, int *secs)
{
    int oh, om;
    *secs = 0;
    if (lit(c, (flags & VG_TIMEFMT_ANYCASE) ? "Zz" : "Z")) return 1;
    if (c->p >= c->e || (*c->p != '+' && *c->p != '-')) return 0;
    int sign = *c->p++ == '-' ? -1 : 1;
    if (!digits(c, 2, &oh) || !lit(c, ":") || !digits(c, 2, &om) || oh > 23 || om > 59) return 0;
    *secs = sign * (oh * 3600 + om * 60);
    return 1;
}

vg_err_t vg_timefmt_parse_rfc3339(const char *s, size_t len, unsigned flags, int64_t *ms)
{
    struct cur c = {s, s + len};
    int Y, M, D, h, m, sec, frac, off;
    const char *sep = (flags & VG_TIMEFMT_ANYCASE) ? ((flags & VG_TIMEFMT_SPACE) ? "Tt " : "Tt")
                      : (flags & VG_TIMEFMT_SPACE) ? "T "
                                                   : "T";
    if (!digits(&c, 4, &Y) || !lit(&c, "-") || !digits(&c, 2, &M) || !lit(&c, "-") ||
        !digits(&c, 2, &D) || !lit(&c, sep) || !digits(&c, 2, &h) || !lit(&c, ":") ||
        !digits(&c, 2, &m) || !lit(&c, ":") || !digits(&c, 2, &sec))
        return VG_EPARSE;
    if (M < 1 || M > 12 || D < 1 || D > vg_timefmt_days_in_month(Y, M) || h > 23 || m > 59 ||
        sec > ((flags & VG_TIMEFMT_LEAP) ? 60 : 59))
        return VG_EPARSE;
    if (!fraction(&c, flags, &frac) || !offset(&c, flags, &off) || c.p != c.e) return VG_EPARSE;
    int64_t t = vg_timefmt_days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
    *ms = t * 1000 + frac;
    return VG_OK;
}

char *vg_timefmt_format_rfc3339(int64_t ms, char out[VG_TIMEFMT_RFC3339_MAX])
{
    int64_t secs = floor_div(ms, 1000), days = floor_div(secs, 86400), y;
    int64_t sod = secs - days * 86400;
    int m, d;
    vg_timefmt_civil_from_days(days, &y, &m, &d);
    snprintf(out, VG_TIMEFMT_RFC3339_MAX, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
             (int)(sod / 3600), (int)(sod % 3600 / 60), (int)(sod % 60),
             (int)((ms % 1000 + 1000) % 1000));
    return out;
}
