/*
 * federate.c - /federate?match[]=...: the latest sample of every matching
 * series, in the text exposition format 0.0.4, so a Prometheus server can
 * scrape Vigil as it scrapes another Prometheus.
 *
 * It follows Prometheus's federation handler: the union of the match[]
 * selectors over the last 5 minutes, the newest sample of each series
 * (a series whose newest sample is a staleness marker is left out, since
 * the text format cannot carry one), sorted by labels, one untyped family
 * per run of equal metric names, each sample with its timestamp in
 * milliseconds, and `instance=""` added where a series has no instance
 * label (Prometheus adds its external labels, of which instance is always
 * one). Errors are plain text, as http.Error writes them.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "promql/selector.h"
#include "vigil/alloc.h"

typedef struct fed_sample {
    const vg_label_t *l;
    size_t nl;
    int64_t t;
    double v;
} fed_sample;

static int cmp_sample(const void *x, const void *y)
{
    const fed_sample *a = x, *b = y;
    return vg_labels_cmp(a->l, a->nl, b->l, b->nl);
}

/* The newest sample of the current series; 0 when none or stale. */
static int newest(vg_seriesset_t *ss, int64_t *t, double *v)
{
    int64_t ts;
    double x;
    int have = 0;
    while (vg_seriesset_sample_next(ss, &ts, &x)) *t = ts, *v = x, have = 1;
    uint64_t bits;
    memcpy(&bits, v, sizeof bits);
    return have && bits != VG_API_STALE_BITS;
}

/* One sample line: the series' labels without empty values, instance=""
 * appended when missing (Prometheus's external-label rule), the value and
 * the timestamp. */
static vg_err_t write_sample(vg_buf *b, const fed_sample *s)
{
    vg_label_t l[VG_API_MAX_LABELS + 1];
    size_t n = 0;
    int instance = 0;
    char num[32];
    for (size_t i = 0; i < s->nl && n < VG_API_MAX_LABELS; i++) {
        if (!s->l[i].value[0]) continue;
        instance |= !strcmp(s->l[i].name, "instance");
        l[n++] = s->l[i];
    }
    if (!instance) l[n++] = (vg_label_t){"instance", ""};
    vg_err_t rc = vg_labels_format(l, n, b);
    if (!rc) rc = vg_buf_printf(b, " %s %lld\n", vg_fmt_float(s->v, num), (long long)s->t);
    return rc;
}

static vg_err_t write_families(vg_buf *b, const fed_sample *s, size_t n)
{
    const char *last = NULL;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const char *name = vg_labels_get(s[i].l, s[i].nl, VG_METRIC_NAME);
        if (!name || !name[0]) continue; /* nameless series are ignored */
        if (!last || strcmp(last, name) != 0) rc = vg_buf_printf(b, "# TYPE %s untyped\n", name);
        last = name;
        if (!rc) rc = write_sample(b, &s[i]);
    }
    return rc;
}

/* Collect the newest sample of each series of every set, sorted, unique. */
static vg_err_t collect(vg_seriesset_t **ss, size_t nss, fed_sample **out, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < nss; i++) total += vg_seriesset_len(ss[i]);
    *n = 0;
    *out = vg_malloc((total ? total : 1) * sizeof(**out));
    if (!*out) return VG_ENOMEM;
    for (size_t i = 0; i < nss; i++)
        while (vg_seriesset_next(ss[i])) {
            fed_sample *f = &(*out)[*n];
            if (!newest(ss[i], &f->t, &f->v)) continue;
            f->l = vg_seriesset_labels(ss[i], &f->nl);
            (*n)++;
        }
    qsort(*out, *n, sizeof(**out), cmp_sample);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++)
        if (w == 0 || cmp_sample(&(*out)[w - 1], &(*out)[i]) != 0) (*out)[w++] = (*out)[i];
    *n = w;
    return VG_OK;
}

static int text_error(vg_buf *out, int status, const char *msg)
{
    vg_buf_reset(out);
    vg_buf_printf(out, "%s\n", msg);
    return status;
}

int vg_api_federate(vg_api_t *api, const vg_api_params *p, vg_buf *out)
{
    vg_selector sels[VG_API_MAX_MATCH] = {0};
    vg_seriesset_t *ss[VG_API_MAX_MATCH] = {0};
    vg_error err = {0};
    fed_sample *all = NULL;
    size_t nsel = 0, nss = 0, n = 0;
    vg_err_t rc = VG_OK;
    vg_buf_reset(out);
    if (!vg_tsdb_tenant_valid(vg_api__tenant(p))) return text_error(out, 400, "invalid tenant");
    if (p->nmatch > VG_API_MAX_MATCH) return text_error(out, 400, "too many match[] parameters");
    for (; nsel < p->nmatch; nsel++) {
        const char *m = p->match[nsel] ? p->match[nsel] : "";
        if ((rc = vg_selector_parse(m, strlen(m), &sels[nsel], &err)) != VG_OK) {
            for (size_t i = 0; i < nsel; i++) vg_selector_free(&sels[i]);
            return text_error(out, rc == VG_ENOMEM ? 500 : 400, vg_error_msg(&err, rc));
        }
    }
    int64_t maxt = p->now_ms, mint = maxt - VG_API_LOOKBACK_MS;
    for (; !rc && nss < nsel; nss++)
        rc = vg_tsdb_select(api->db, vg_api__tenant(p), sels[nss].m, sels[nss].n, mint, maxt,
                            &ss[nss], &err);
    if (!rc) rc = collect(ss, nss, &all, &n);
    if (!rc) rc = write_families(out, all, n);
    vg_free(all);
    for (size_t i = 0; i < nss; i++) vg_seriesset_free(ss[i]);
    for (size_t i = 0; i < nsel; i++) vg_selector_free(&sels[i]);
    if (rc) return text_error(out, 500, vg_error_msg(&err, rc));
    return 200;
}
