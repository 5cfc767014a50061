/*
 * template.c - first cut of Prometheus alert templates: plain text,
 * {{ $labels.x }}, {{ $externalLabels.x }}, {{ $value }}, {{ $externalURL }}.
 *
 * This stub exists so the rules engine can link while the full Go
 * text/template subset (lexer, parser, executor, functions) is written.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/template.h"

/* Go's %v for a float64: shortest round-trip digits, %e form when the
 * exponent is < -4 or >= 21 (strconv 'g' with shortest precision). */
static vg_err_t put_float(vg_buf *out, double v)
{
    if (isnan(v)) return vg_buf_puts(out, "NaN");
    if (isinf(v)) return vg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*g", p, v);
        if (strtod(tmp, NULL) == v) break;
    }
    return vg_buf_puts(out, tmp);
}

static const char *lookup(const vg_label_t *l, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(l[i].name) == len && memcmp(l[i].name, name, len) == 0) return l[i].value;
    return NULL;
}

static vg_err_t action(const char *s, size_t n, const vg_tmpl_data *d, vg_buf *out)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n == 6 && memcmp(s, "$value", 6) == 0) return put_float(out, d->value);
    if (n == 12 && memcmp(s, "$externalURL", 12) == 0)
        return vg_buf_puts(out, d->external_url ? d->external_url : "");
    const char *v = NULL;
    if (n > 8 && memcmp(s, "$labels.", 8) == 0) v = lookup(d->labels, d->nlabels, s + 8, n - 8);
    else if (n > 16 && memcmp(s, "$externalLabels.", 16) == 0)
        v = lookup(d->external_labels, d->nexternal_labels, s + 16, n - 16);
    return vg_buf_puts(out, v ? v : "<no value>");
}

vg_err_t vg_tmpl_check(const char *name, const char *src, vg_error *err)
{
    (void)name, (void)src, (void)err;
    return VG_OK;
}

vg_err_t vg_tmpl_expand(const char *name, const char *src, const vg_tmpl_data *d, vg_buf *out)
{
    (void)name;
    vg_err_t rc = VG_OK;
    const char *p = src;
    while (*p && !rc) {
        const char *o = strstr(p, "{{");
        if (!o) return vg_buf_puts(out, p);
        rc = vg_buf_append(out, p, (size_t)(o - p));
        const char *c = strstr(o + 2, "}}");
        if (!c) break;
        if (!rc) rc = action(o + 2, (size_t)(c - o - 2), d, out);
        p = c + 2;
    }
    return rc;
}
