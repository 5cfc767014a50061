/*
 * group.c - evaluate one rule group, write its series, send its alerts.
 *
 * Rules run in file order at (slot - query_offset), each one's output
 * appended before the next starts, so later rules see earlier recordings.
 * A series written at the previous evaluation and missing from this one gets
 * Prometheus's staleness marker, so queries stop seeing it at once instead
 * of after the 5-minute lookback. Sending follows Prometheus's resend rules:
 * a firing alert goes out again every resend_delay with ends_at four
 * intervals ahead; a resolved one goes out with ends_at = resolved time until
 * it is dropped.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rules/rules_int.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/clock.h"
#include "vigil/expfmt.h"
#include "vigil/log.h"

static int memo_has(const lset *out, size_t n, const lset *s)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].hash == s->hash && !vg_labels_cmp(out[i].l, out[i].n, s->l, s->n)) return 1;
    return 0;
}

void vg_rules__write(vg_rules_t *m, series_memo *memo, lset *out, const double *v, size_t n,
                     int64_t t_ms)
{
    vg_error err = {0};
    for (size_t i = 0; i < n; i++)
        if (vg_tsdb_append(m->o.db, m->tenant, out[i].l, out[i].n, t_ms, v[i], NULL, &err)) {
            char q[600];
            vg_log_debug("rules", "append failed", "err=%s",
                         vg_logq(q, sizeof q, vg_error_msg(&err, VG_EINVAL)));
        }
    for (size_t i = 0; i < memo->n; i++)
        if (!memo_has(out, n, &memo->s[i]))
            vg_tsdb_append(m->o.db, m->tenant, memo->s[i].l, memo->s[i].n, t_ms, vg_stale_nan(),
                           NULL, NULL);
    vg_rules__memo_free(memo);
    memo->s = out;
    memo->n = n;
}

static void eval_rule(vg_rules_t *m, group *g, rule *r, int64_t t)
{
    vg_error err = {0};
    int64_t t0 = vg_clock_mono_us();
    vg_err_t rc = r->def->alerting ? vg_rules__eval_alert(m, g, r, t, &err)
                                   : vg_rules__eval_record(m, g, r, t, &err);
    r->eval_seconds = (double)(vg_clock_mono_us() - t0) / 1e6;
    r->last_eval_ms = vg_clock_wall_ms();
    vg_metric_inc(g->m_evals);
    if (!rc) {
        r->health = HEALTH_OK;
        r->last_error[0] = 0;
        return;
    }
    r->health = HEALTH_ERR;
    snprintf(r->last_error, sizeof r->last_error, "%s", vg_error_msg(&err, rc));
    vg_metric_inc(g->m_fails);
    char q[600];
    vg_log_warn("rules", "rule evaluation failed", "group=%s rule=%s err=%s", g->def->name,
                r->def->name, vg_logq(q, sizeof q, r->last_error));
}

vg_err_t vg_rules__eval_group(vg_rules_t *m, group *g, int64_t slot_ms)
{
    int64_t t0 = vg_clock_mono_us(), t = slot_ms - g->def->query_offset_ms;
    for (size_t i = 0; i < g->nrules; i++) eval_rule(m, g, &g->rules[i], t);
    if (g->restore) {
        /* Simplification: Prometheus waits for a second evaluation before
         * restoring; we restore right after the first one. */
        for (size_t i = 0; i < g->nrules; i++) vg_rules__restore(m, g, &g->rules[i], t);
        g->restore = 0;
    }
    g->eval_seconds = (double)(vg_clock_mono_us() - t0) / 1e6;
    g->last_eval_ms = vg_clock_wall_ms();
    vg_metric_set(g->m_duration, g->eval_seconds);
    return VG_OK;
}

/* ---- sending ---- */

static int needs_sending(const alert_inst *a, int64_t now, int64_t resend)
{
    if (a->state == ALERT_PENDING) return 0;
    if (a->resolved_at && a->resolved_at > a->last_sent_at) return 1;
    return a->last_sent_at + resend <= now;
}

static const char *generator_url(vg_rules_t *m, vg_arena_t *a, const rule *r)
{
    if (!m->external_url) return NULL;
    vg_buf b;
    vg_buf_init(&b, 1u << 20);
    vg_buf_printf(&b, "%s/graph?g0.expr=", m->external_url);
    for (const unsigned char *p = (const unsigned char *)r->query; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            vg_buf_putc(&b, (char)*p);
        else
            vg_buf_printf(&b, "%%%02X", *p);
    }
    vg_buf_puts(&b, "&g0.tab=1");
    const char *s = b.data ? vg_arena_strdup(a, b.data) : NULL;
    vg_buf_free(&b);
    return s;
}

static vg_err_t collect(vg_rules_t *m, group *g, int64_t now, vg_arena_t *a, vg_alert_t **out,
                        size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < g->nrules; i++) cap += g->rules[i].nalerts;
    vg_alert_t *v = vg_arena_calloc(a, (cap ? cap : 1) * sizeof *v);
    if (!v) return VG_ENOMEM;
    int64_t delta = m->o.resend_delay_ms > g->interval_ms ? m->o.resend_delay_ms : g->interval_ms;
    for (size_t i = 0; i < g->nrules; i++) {
        rule *r = &g->rules[i];
        const char *gen = r->nalerts ? generator_url(m, a, r) : NULL;
        for (size_t j = 0; j < r->nalerts; j++) {
            alert_inst *al = &r->alerts[j];
            if (!needs_sending(al, now, m->o.resend_delay_ms)) continue;
            al->last_sent_at = now;
            al->valid_until = now + 4 * delta;
            vg_alert_t *x = &v[(*n)++];
            *x = (vg_alert_t){al->labels.l,
                              al->labels.n,
                              al->annotations.l,
                              al->annotations.n,
                              al->fired_at,
                              al->resolved_at ? al->resolved_at : al->valid_until,
                              gen};
            /* The sink may run after the next evaluation changed the alert:
             * hand it copies. */
            lset *cl = vg_arena_alloc(a, 2 * sizeof(lset));
            if (!cl || vg_rules__lset_make(&cl[0], x->labels, x->nlabels)) return VG_ENOMEM;
            if (vg_rules__lset_make(&cl[1], x->annotations, x->nannotations)) {
                vg_free(cl[0].l);
                return VG_ENOMEM;
            }
            x->labels = cl[0].l;
            x->annotations = cl[1].l;
        }
    }
    *out = v;
    return VG_OK;
}

/* Called with m->mu held; releases it around the sink call. */
void vg_rules__send(vg_rules_t *m, group *g, int64_t now_ms)
{
    if (!m->sink) return;
    vg_arena_t *a = vg_arena_new(0);
    vg_alert_t *v = NULL;
    size_t n = 0;
    if (!a || collect(m, g, now_ms, a, &v, &n)) {
        vg_log_error("rules", "out of memory sending alerts", NULL);
        n = 0;
    }
    vg_alert_sink_fn fn = m->sink;
    void *ud = m->sink_ud;
    pthread_mutex_unlock(&m->mu);
    if (n) fn(ud, v, n);
    for (size_t i = 0; i < n; i++) {
        vg_free((void *)v[i].labels);
        vg_free((void *)v[i].annotations);
    }
    vg_arena_free(a);
    pthread_mutex_lock(&m->mu);
}
