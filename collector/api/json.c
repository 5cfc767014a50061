/*
 * json.c - Prometheus API JSON encoding on top of vg_buf (see json.h).
 *
 * Errors from vg_buf (ETOOLARGE past the response cap, ENOMEM) are kept
 * sticky by checking the return of each append, so a handler checks once.
 */
#include "api/json.h"

#include <math.h>
#include <string.h>

#include "vigil/metrics.h"

vg_err_t vg_api_json_time(vg_buf *b, int64_t ms)
{
    /* Same digits as jsonutil.MarshalTimestamp: sign, seconds, '.', 3-digit ms. */
    uint64_t u = ms < 0 ? 0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(u % 1000);
    if (frac == 0)
        return vg_buf_printf(b, "%s%llu", ms < 0 ? "-" : "", (unsigned long long)(u / 1000));
    return vg_buf_printf(b, "%s%llu.%03u", ms < 0 ? "-" : "", (unsigned long long)(u / 1000), frac);
}

vg_err_t vg_api_json_value(vg_buf *b, double v)
{
    char buf[VG_FMT_FLOAT_JSON_SIZE];
    double a = fabs(v);
    /* In the 'e' range Go's 'g' shortest form equals its 'e' form. */
    if (a != 0 && (a < 1e-6 || a >= 1e21) && !isinf(a))
        vg_fmt_float(v, buf);
    else
        vg_fmt_float_json(v, buf);
    vg_err_t rc = vg_buf_putc(b, '"');
    if (!rc) rc = vg_buf_puts(b, buf);
    return rc ? rc : vg_buf_putc(b, '"');
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
