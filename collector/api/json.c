/*
 * json.c - Prometheus API JSON encoding on top of vg_buf (see json.h).
 *
 * Errors from vg_buf (ETOOLARGE past the response cap, ENOMEM) are kept
 * sticky by checking the return of each append, so a handler checks once.
 */
#include "api/json.h"

#include <math.h>
#include <string.h>

#include "api/json_float.h"
#include "vigil/metrics.h"

/* Same digits as jsonutil.MarshalTimestamp: sign, seconds, '.', 3-digit ms,
 * written backwards to end (at least 24 bytes before it); the start.
 * By hand: a matrix answer prints one per point, printf is slow. */
static char *fmt_time(int64_t ms, char *end)
{
    char *o = end;
    uint64_t u = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(u % 1000);
    if (frac) {
        for (int i = 0; i < 3; i++, frac /= 10) *--o = (char)('0' + frac % 10);
        *--o = '.';
    }
    u /= 1000;
    do *--o = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (ms < 0) *--o = '-';
    return o;
}

vg_err_t vg_api_json_time(vg_buf *b, int64_t ms)
{
    char tmp[32], *o = fmt_time(ms, tmp + sizeof(tmp));
    return vg_buf_append(b, o, (size_t)(tmp + sizeof(tmp) - o));
}

vg_err_t vg_api_json_value(vg_buf *b, double v)
{
    char buf[VG_FMT_FLOAT_JSON_SIZE + 2];
    size_t n = vg_api_float_json(v, buf + 1);
    buf[0] = '"';
    buf[n + 1] = '"';
    return vg_buf_append(b, buf, n + 2);
}

vg_err_t vg_api_json_point(vg_buf *b, int64_t ms, double v)
{
    /* [<time>,"<value>"] assembled in one buffer, appended once. */
    char tmp[32], *t = fmt_time(ms, tmp + sizeof(tmp));
    size_t tn = (size_t)(tmp + sizeof(tmp) - t);
    char buf[VG_FMT_FLOAT_JSON_SIZE + 40], *o = buf;
    *o++ = '[';
    memcpy(o, t, tn);
    o += tn;
    *o++ = ',';
    *o++ = '"';
    o += vg_api_float_json(v, o);
    *o++ = '"';
    *o++ = ']';
    return vg_buf_append(b, buf, (size_t)(o - buf));
}

vg_err_t vg_api_json_labels(vg_buf *b, const vg_label_t *l, size_t n)
{
    vg_err_t rc = vg_buf_putc(b, '{');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = vg_buf_json_str(b, l[i].name, strlen(l[i].name));
        if (!rc) rc = vg_buf_putc(b, ':');
        if (!rc) rc = vg_buf_json_str(b, l[i].value, strlen(l[i].value));
    }
    return rc ? rc : vg_buf_putc(b, '}');
}

vg_err_t vg_api_json_strings(vg_buf *b, char *const *v, size_t n)
{
    vg_err_t rc = vg_buf_putc(b, '[');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = vg_buf_json_str(b, v[i], strlen(v[i]));
    }
    return rc ? rc : vg_buf_putc(b, ']');
}

vg_err_t vg_api_json_error(vg_buf *b, const char *type, const char *msg)
{
    vg_buf_reset(b);
    vg_err_t rc = vg_buf_puts(b, "{\"status\":\"error\",\"errorType\":");
    if (!rc) rc = vg_buf_json_str(b, type, strlen(type));
    if (!rc) rc = vg_buf_puts(b, ",\"error\":");
    if (!rc) rc = vg_buf_json_str(b, msg, strlen(msg));
    return rc ? rc : vg_buf_putc(b, '}');
}
