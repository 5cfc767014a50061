/*
 * duration.c - Prometheus durations and byte sizes.
 *
 * Hand-written scanners rather than a regex: the grammar is tiny, and a
 * scanner can say exactly what is wrong ("unit h repeated", "missing unit")
 * instead of "does not match". All arithmetic is checked against overflow
 * because config values come from users.
 */
#include "vigil/duration.h"

#include <strings.h>
#include <stdio.h>
#include <string.h>

#define DUR_HINT "use a number and a unit: ms, s, m, h, d, w or y, e.g. 30s or 1h30m"

static const struct {
    const char *name;
    int64_t mult;
} dur_units[] = {
    {"y", VG_MS_PER_YEAR},
    {"w", VG_MS_PER_WEEK},
    {"d", VG_MS_PER_DAY},
    {"h", VG_MS_PER_HOUR},
    {"m", VG_MS_PER_MINUTE},
    {"s", VG_MS_PER_SECOND},
    {"ms", 1},
};
#define NDUR_UNITS (sizeof(dur_units) / sizeof(dur_units[0]))

/* Copy s into q as a short, printable quoted form for messages. */
static const char *quote(const char *s, char *q, size_t n)
{
    size_t j = 0, max = n > 48 ? 40 : n / 2;
    q[j++] = '"';
    for (size_t i = 0; s[i] && j + 5 < n; i++) {
        if (i >= max) {
            memcpy(q + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        /* no '"' inside, so callers can find the end of the quoted value */
        q[j++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    q[j++] = '"';
    q[j] = '\0';
    return q;
}

/* Index into dur_units of the unit at *p (longest match), or -1. */
static int dur_unit_at(const char *p, size_t *len)
{
    if (p[0] == 'm' && p[1] == 's') {
        *len = 2;
        return 6;
    }
    for (int i = 0; i < 6; i++) {
        if (p[0] == dur_units[i].name[0]) {
            *len = 1;
            return i;
        }
    }
    return -1;
}

static vg_err_t dur_fail(vg_error *err, const char *s, const char *why)
{
    char q[64];
    return vg_error_set(err, VG_EINVAL, "invalid duration %s: %s", quote(s, q, sizeof q), why);
}

/* Read decimal digits at *pp into *v; 0 digits -> -1, overflow -> -2. */
static int read_uint(const char **pp, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x = 0;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return -2;
        x = x * 10 + d;
    }
    if (nd == 0) return -1;
    *pp = p;
    *v = x;
    return nd;
}

vg_err_t vg_duration_parse(const char *s, int64_t *ms, vg_error *err)
{
    if (!s || !*s) return vg_error_set(err, VG_EINVAL, "empty duration (%s)", DUR_HINT);
    if (s[0] == '-') return dur_fail(err, s, "negative durations are not allowed");
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return VG_OK;
    }
    const char *p = s;
    int64_t total = 0;
    int last = -1;
    while (*p) {
        uint64_t v;
        int nd = read_uint(&p, &v);
        if (nd == -2) return dur_fail(err, s, "number too large");
        if (nd == -1 && p == s) return dur_fail(err, s, "expected a number (" DUR_HINT ")");
        if (nd == -1) return dur_fail(err, s, "unexpected text after a unit (" DUR_HINT ")");
        if (*p == '.')
            return dur_fail(err, s, "fractions are not allowed, use a smaller unit (1m30s)");
        size_t ulen = 0;
        int u = *p ? dur_unit_at(p, &ulen) : -1;
        if (u < 0 && !*p) return dur_fail(err, s, "missing unit after the number (" DUR_HINT ")");
        if (u < 0) return dur_fail(err, s, "unknown unit (" DUR_HINT ")");
        if (u <= last)
            return dur_fail(err, s,
                            "units must appear once each, largest first (y, w, d, h, m, s, ms)");
        last = u;
        p += ulen;
        if (v > (uint64_t)(INT64_MAX / dur_units[u].mult)) return dur_fail(err, s, "too large");
        int64_t add = (int64_t)v * dur_units[u].mult;
        if (add > INT64_MAX - total) return dur_fail(err, s, "too large");
        total += add;
    }
    *ms = total;
    return VG_OK;
}

/* Append "<v><unit>" at buf+*off, bounded by n. */
static void put_part(char *buf, size_t n, size_t *off, uint64_t v, const char *unit)
{
    if (*off >= n) return;
    int w = snprintf(buf + *off, n - *off, "%llu%s", (unsigned long long)v, unit);
    if (w > 0) *off += (size_t)w;
    if (*off >= n) *off = n - 1;
}

char *vg_duration_format(int64_t ms, char *buf, size_t n)
{
    if (!buf || n == 0) return buf;
    buf[0] = '\0';
    size_t off = 0;
    /* Work in uint64 so INT64_MIN negates safely. */
    uint64_t rem = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0 && n > 1) {
        buf[off++] = '-';
        buf[off] = '\0';
    }
    if (rem == 0) {
        put_part(buf, n, &off, 0, "s");
        return buf;
    }
    for (size_t i = 0; i < NDUR_UNITS; i++) {
        uint64_t mult = (uint64_t)dur_units[i].mult;
        /* Prometheus prints years and weeks only when exact: 90d reads better than 12w6d. */
        if (i < 2 && rem % mult != 0) continue;
        uint64_t v = rem / mult;
        if (v == 0) continue;
        put_part(buf, n, &off, v, dur_units[i].name);
        rem -= v * mult;
    }
    return buf;
}

static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"tib", UINT64_C(1) << 40}, {"gib", UINT64_C(1) << 30},      {"mib", UINT64_C(1) << 20},
    {"kib", UINT64_C(1) << 10}, {"tb", UINT64_C(1000000000000)}, {"gb", UINT64_C(1000000000)},
    {"mb", UINT64_C(1000000)},  {"kb", UINT64_C(1000)},          {"b", 1},
};
#define NSIZE_UNITS   (sizeof(size_units) / sizeof(size_units[0]))
#define SIZE_HINT     "use a number and a unit: B, KB, MB, GB, TB, KiB, MiB, GiB or TiB, e.g. 512MiB"
#define SIZE_MAX_FRAC 6

static vg_err_t size_fail(vg_error *err, const char *s, const char *why)
{
    char q[64];
    return vg_error_set(err, VG_EINVAL, "invalid size %s: %s", quote(s, q, sizeof q), why);
}

/* Multiplier of the unit spelled u (whole rest of the string), 0 if unknown. */
static uint64_t size_unit(const char *u)
{
    if (!*u) return 1;
    for (size_t i = 0; i < NSIZE_UNITS; i++)
        if (strcasecmp(u, size_units[i].name) == 0) return size_units[i].mult;
    return 0;
}

/* Read up to SIZE_MAX_FRAC fraction digits after '.', as num / den. */
static int read_frac(const char **pp, uint64_t *num, uint64_t *den)
{
    const char *p = *pp;
    *num = 0;
    *den = 1;
    int nd = 0;
    for (; *p >= '0' && *p <= '9'; p++, nd++) {
        if (nd == SIZE_MAX_FRAC) return -2;
        *num = *num * 10 + (uint64_t)(*p - '0');
        *den *= 10;
    }
    if (nd == 0) return -1;
    *pp = p;
    return nd;
}

vg_err_t vg_size_parse(const char *s, uint64_t *bytes, vg_error *err)
{
    if (!s || !*s) return vg_error_set(err, VG_EINVAL, "empty size (%s)", SIZE_HINT);
    const char *p = s;
    uint64_t whole, fnum = 0, fden = 1;
    if (*p == '-') return size_fail(err, s, "negative sizes are not allowed");
    int nd = read_uint(&p, &whole);
    if (nd == -2) return size_fail(err, s, "number too large");
    if (nd == -1) return size_fail(err, s, "expected a number (" SIZE_HINT ")");
    if (*p == '.') {
        p++;
        int fd = read_frac(&p, &fnum, &fden);
        if (fd == -1) return size_fail(err, s, "expected digits after the decimal point");
        if (fd == -2) return size_fail(err, s, "at most 6 digits after the decimal point");
    }
    while (*p == ' ') p++;
    uint64_t mult = size_unit(p);
    if (mult == 0) return size_fail(err, s, "unknown unit (" SIZE_HINT ")");
    if (whole > UINT64_MAX / mult) return size_fail(err, s, "too large");
    uint64_t total = whole * mult;
    /* fnum < 10^6 and mult <= 2^40, so the product fits in 64 bits. */
    uint64_t frac = fnum * mult / fden;
    if (frac > UINT64_MAX - total) return size_fail(err, s, "too large");
    *bytes = total + frac;
    return VG_OK;
}

char *vg_size_format(uint64_t bytes, char *buf, size_t n)
{
    if (!buf || n == 0) return buf;
    static const char *const pretty[NSIZE_UNITS] = {"TiB", "GiB", "MiB", "KiB", "TB",
                                                    "GB",  "MB",  "KB",  "B"};
    for (size_t i = 0; i < NSIZE_UNITS; i++) {
        if (bytes != 0 && bytes % size_units[i].mult != 0) continue;
        if (bytes == 0 && size_units[i].mult != 1) continue;
        snprintf(buf, n, "%llu%s", (unsigned long long)(bytes / size_units[i].mult), pretty[i]);
        break;
    }
    return buf;
}
