/*
 * limits.c - per-tenant token buckets and series caps (see limits.h).
 *
 * Tenants are few, so their buckets are a plain array behind one mutex; a
 * take is a lookup, a refill and a subtraction, once per request (not per
 * sample), so the mutex is not a hot spot. Tokens are doubles in samples;
 * time is integer microseconds from the injectable clock.
 */
#include "tsdb/limits.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/head.h"
#include "tsdb/tsdb_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"

typedef struct bucket {
    char tenant[VG_TENANT_MAX + 1];
    double rate, burst, tokens;
    uint64_t max_series;
    int64_t last_us;
    vg_metric_t *m_rate, *m_series;
} bucket;

struct vg_limits {
    pthread_mutex_t mu;
    vg_tenant_limits_t def;
    int has_def;
    vg_tenant_limits_t *per;
    char (*per_names)[VG_TENANT_MAX + 1];
    size_t nper;
    bucket *b;
    size_t nb, cap;
    vg_metrics_t *metrics;
    vg_limits_clock_fn clock;
    void *clock_ud;
};

static int64_t mono_us(void *ud)
{
    (void)ud;
    return vg_clock_mono_us();
}

vg_limits_t *vg_limits_new(const vg_tenant_limits_t *def, const vg_tenant_limits_t *per, size_t n,
                           vg_metrics_t *metrics)
{
    vg_limits_t *l = vg_calloc(1, sizeof(*l));
    if (!l) return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->clock = mono_us;
    l->metrics = metrics;
    if (def) l->def = *def, l->has_def = 1;
    l->def.tenant = NULL;
    if (n) {
        l->per = vg_calloc(n, sizeof(*l->per));
        l->per_names = vg_calloc(n, sizeof(*l->per_names));
        if (!l->per || !l->per_names) {
            vg_limits_free(l);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!per[i].tenant || strlen(per[i].tenant) > VG_TENANT_MAX) continue;
        l->per[l->nper] = per[i];
        memcpy(l->per_names[l->nper], per[i].tenant, strlen(per[i].tenant));
        l->per[l->nper].tenant = l->per_names[l->nper];
        l->nper++;
    }
    return l;
}

void vg_limits_free(vg_limits_t *l)
{
    if (!l) return;
    pthread_mutex_destroy(&l->mu);
    vg_free(l->per);
    vg_free(l->per_names);
    vg_free(l->b);
    vg_free(l);
}

void vg_limits_set_clock(vg_limits_t *l, vg_limits_clock_fn fn, void *ud)
{
    l->clock = fn ? fn : mono_us;
    l->clock_ud = ud;
}

/* The configured limits of tenant, or NULL when unlimited. */
static const vg_tenant_limits_t *limits_of(const vg_limits_t *l, const char *tenant)
{
    for (size_t i = 0; i < l->nper; i++)
        if (strcmp(l->per[i].tenant, tenant) == 0) return &l->per[i];
    return l->has_def ? &l->def : NULL;
}

uint64_t vg_limits_max_series(const vg_limits_t *l, const char *tenant)
{
    const vg_tenant_limits_t *t = l ? limits_of(l, tenant) : NULL;
    return t ? t->max_series : 0;
}

static vg_metric_t *reject_counter(vg_limits_t *l, const char *tenant, const char *reason)
{
    char lab[160];
    snprintf(lab, sizeof(lab), "reason=\"%s\",tenant=\"%s\"", reason, tenant);
    return vg_metrics_counter(l->metrics, "vigil_tsdb_limit_rejections_total",
                              "Requests refused by a tenant limit, by reason.", lab);
}

/* The bucket of tenant, created full on first use. Mutex held. */
static bucket *bucket_get(vg_limits_t *l, const char *tenant, int64_t now)
{
    for (size_t i = 0; i < l->nb; i++)
        if (strcmp(l->b[i].tenant, tenant) == 0) return &l->b[i];
    if (strlen(tenant) > VG_TENANT_MAX) return NULL;
    if (l->nb == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        bucket *nb = vg_realloc(l->b, ncap * sizeof(*nb));
        if (!nb) return NULL;
        l->b = nb;
        l->cap = ncap;
    }
    bucket *b = &l->b[l->nb++];
    memset(b, 0, sizeof(*b));
    memcpy(b->tenant, tenant, strlen(tenant));
    const vg_tenant_limits_t *t = limits_of(l, tenant);
    b->rate = t ? t->ingestion_rate : 0;
    b->burst = t && t->ingestion_burst > 0 ? t->ingestion_burst : b->rate;
    b->tokens = b->burst;
    b->last_us = now;
    if (l->metrics) {
        b->m_rate = reject_counter(l, tenant, "rate");
        b->m_series = reject_counter(l, tenant, "max_series");
    }
    return b;
}

/* Milliseconds until n tokens (at most a full bucket) are available; >= 1. */
static int64_t wait_ms(const bucket *b, double n)
{
    double want = (n < b->burst ? n : b->burst) - b->tokens;
    double ms = ceil(want * 1000.0 / b->rate);
    return ms < 1 ? 1 : ms > 86400000.0 ? 86400000 : (int64_t)ms;
}

vg_err_t vg_limits_take(vg_limits_t *l, const char *tenant, uint64_t n, int *retry_after_s,
                        vg_error *err)
{
    int64_t now = l->clock(l->clock_ud), ms = 0;
    pthread_mutex_lock(&l->mu);
    bucket *b = bucket_get(l, tenant, now);
    if (b && b->rate > 0) {
        if (now > b->last_us) b->tokens += b->rate * (double)(now - b->last_us) / 1e6;
        if (now > b->last_us) b->last_us = now;
        if (b->tokens > b->burst) b->tokens = b->burst;
        /* A request over the burst passes on a full bucket and leaves a debt. */
        if ((double)n <= b->tokens || b->tokens >= b->burst)
            b->tokens -= (double)n;
        else
            ms = wait_ms(b, (double)n);
        if (ms) vg_metric_inc(b->m_rate);
    }
    double rate = b ? b->rate : 0;
    pthread_mutex_unlock(&l->mu);
    if (!b) return vg_error_set(err, VG_ENOMEM, "tenant %s: out of memory for its limits", tenant);
    int ra = (int)((ms + 999) / 1000); /* whole seconds for Retry-After, rounded up */
    if (retry_after_s) *retry_after_s = ra;
    if (!ms) return VG_OK;
    return vg_error_set(err, VG_ELIMIT,
                        "tenant %s is over its ingestion rate of %g samples/s: %llu samples "
                        "refused, retry after %d s (retry_after_ms=%lld)",
                        tenant, rate, (unsigned long long)n, ra, (long long)ms);
}

vg_err_t vg_limits_series_refused(vg_limits_t *l, const char *tenant, vg_error *err)
{
    uint64_t max = vg_limits_max_series(l, tenant);
    if (l) {
        pthread_mutex_lock(&l->mu);
        bucket *b = bucket_get(l, tenant, l->clock(l->clock_ud));
        if (b) vg_metric_inc(b->m_series);
        pthread_mutex_unlock(&l->mu);
    }
    return vg_error_set(err, VG_ELIMIT,
                        "tenant %s is at its limit of %llu active series: new series refused, "
                        "retry after %d s (retry_after_ms=%d)",
                        tenant, (unsigned long long)max, VG_LIMITS_SERIES_RETRY_S,
                        VG_LIMITS_SERIES_RETRY_S * 1000);
}

int vg_tsdb_retry_after_s(const vg_error *err)
{
    const char *p = err ? strstr(err->msg, "retry after ") : NULL;
    if (!p) return 0;
    long s = strtol(p + strlen("retry after "), NULL, 10);
    return s < 1 ? 1 : s > 86400 ? 86400 : (int)s;
}

vg_err_t vg_tsdb_limits_init(vg_tsdb_t *db, const vg_tsdb_opts *o, vg_metrics_t *metrics,
                             vg_error *err)
{
    int64_t w = o && o->ooo_window_ms ? o->ooo_window_ms : VG_HEAD_OOO_DEFAULT_MS;
    int any = o && (o->default_limits || o->ntenant_limits);
    if (any)
        db->limits = vg_limits_new(o->default_limits, o->tenant_limits, o->ntenant_limits, metrics);
    if (any && !db->limits)
        return vg_error_set(err, VG_ENOMEM, "out of memory for the tenant limits");
    pthread_rwlock_wrlock(&db->lock);
    db->ooo_window_ms = w;
    for (size_t i = 0; i < db->ntenants; i++) {
        vg_head_set_ooo_window(db->tenants[i].head, w);
        vg_head_set_max_series(db->tenants[i].head,
                               vg_limits_max_series(db->limits, db->tenants[i].name));
    }
    pthread_rwlock_unlock(&db->lock);
    return VG_OK;
}
