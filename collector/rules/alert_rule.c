/*
 * alert_rule.c - alerting rules: Prometheus's alert state machine.
 *
 * Each evaluation turns the query result into alerts (labels = sample labels
 * without __name__, plus the rule's templated labels and alertname;
 * annotations templated), then merges them into the rule's state:
 * inactive -> pending -> firing after `for` (at once with `for: 0`), firing
 * held for keep_firing_for after the condition clears, resolved alerts kept
 * for the resolved retention (15m) so they are re-sent as resolved. The
 * merge mirrors Prometheus's AlertingRule.Eval step by step, including which
 * errors (duplicate label sets, `limit`) leave or clear the state.
 *
 * Restart tolerance: after the first evaluation of a freshly started group,
 * each active alert of a rule whose `for` is at least the grace period looks
 * up its ALERTS_FOR_STATE series (value = activeAt in seconds) within the
 * outage tolerance and moves activeAt as Prometheus's RestoreForState does.
 * Simplified: Prometheus waits for a second evaluation before restoring.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/template.h"
#include "vigil/alloc.h"
#include "vigil/expfmt.h"

typedef struct qctx {
    vg_rules_t *m;
    int64_t t;
} qctx;

static void tmpl_free(void *ud, vg_tmpl_sample *s, size_t n)
{
    (void)ud;
    for (size_t i = 0; i < n; i++) vg_free((void *)s[i].labels);
    vg_free(s);
}

static vg_err_t tmpl_query(void *ud, const char *q, vg_tmpl_sample **out, size_t *n, vg_error *err)
{
    qctx *c = ud;
    vg_promql_result *res = NULL;
    *out = NULL;
    *n = 0;
    vg_err_t rc = vg_rules__query_vector(c->m, q, c->t, &res, err);
    if (rc) return rc;
    size_t k = res->type == VG_PROMQL_RES_SCALAR ? 1 : res->nseries;
    vg_tmpl_sample *s = vg_calloc(k ? k : 1, sizeof *s);
    for (size_t i = 0; s && i < k; i++) {
        lset l = {0};
        int scalar = res->type == VG_PROMQL_RES_SCALAR;
        if (vg_rules__lset_make(&l, scalar ? NULL : res->series[i].labels,
                                scalar ? 0 : res->series[i].nlabels)) {
            tmpl_free(NULL, s, i);
            s = NULL;
            break;
        }
        s[i] = (vg_tmpl_sample){l.l, l.n, scalar ? res->scalar : res->series[i].v[0]};
    }
    vg_promql_result_free(res);
    if (!s) return vg_error_set(err, VG_ENOMEM, "out of memory");
    *out = s;
    *n = k;
    return VG_OK;
}

/* Expand each of src's values into sets (name, expanded value), strings in a. */
static vg_err_t expand(const char *tname, const vg_label_t *src, size_t n, const vg_tmpl_data *d,
                       vg_arena_t *a, vg_label_t *sets)
{
    vg_buf b;
    vg_buf_init(&b, 1u << 20);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        vg_buf_reset(&b);
        rc = vg_tmpl_expand(tname, src[i].value, d, &b);
        sets[i].name = src[i].name;
        sets[i].value = rc ? NULL : vg_arena_strdup(a, b.data ? b.data : "");
        if (!rc && !sets[i].value) rc = VG_ENOMEM;
    }
    vg_buf_free(&b);
    return rc;
}

typedef struct newalert {
    lset labels, annotations;
    double value;
} newalert;

static vg_err_t build_one(vg_rules_t *m, rule *r, const vg_label_t *sl, size_t nsl, double v,
                          int64_t t, vg_arena_t *a, newalert *out)
{
    char tname[300];
    snprintf(tname, sizeof tname, "__alert_%s", r->def->name);
    qctx qc = {m, t};
    vg_tmpl_data d = {
        sl,         nsl,       v,  m->external_labels.l, m->external_labels.n, m->external_url, t,
        tmpl_query, tmpl_free, &qc};
    vg_label_t *ls = vg_arena_calloc(a, (r->nlabels + 1) * sizeof *ls);
    vg_label_t *as = vg_arena_calloc(a, (r->def->nannotations + 1) * sizeof *as);
    if (!ls || !as) return VG_ENOMEM;
    vg_err_t rc = expand(tname, r->labels, r->nlabels, &d, a, ls);
    if (!rc) rc = expand(tname, r->def->annotations, r->def->nannotations, &d, a, as);
    if (!rc)
        rc = vg_rules__relabel(sl, nsl, ls, r->nlabels, "alertname", r->def->name, 1, &out->labels);
    if (!rc) {
        /* An annotation expanding to "" is kept (Prometheus keeps it). */
        rc = vg_rules__lset_make(&out->annotations, as, r->def->nannotations);
    }
    out->value = v;
    return rc;
}

static void newalerts_free(newalert *na, size_t n)
{
    for (size_t i = 0; na && i < n; i++) {
        vg_rules__lset_free(&na[i].labels);
        vg_rules__lset_free(&na[i].annotations);
    }
    vg_free(na);
}

static vg_err_t build_alerts(vg_rules_t *m, rule *r, const vg_promql_result *res, int64_t t,
                             newalert *na, vg_error *err)
{
    size_t n = res->type == VG_PROMQL_RES_SCALAR ? 1 : res->nseries;
    vg_arena_t *a = vg_arena_new(0);
    vg_err_t rc = a ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        int sc = res->type == VG_PROMQL_RES_SCALAR;
        rc = build_one(m, r, sc ? NULL : res->series[i].labels, sc ? 0 : res->series[i].nlabels,
                       sc ? res->scalar : res->series[i].v[0], t, a, &na[i]);
        for (size_t j = 0; j < i && !rc; j++)
            if (na[j].labels.hash == na[i].labels.hash &&
                !vg_labels_cmp(na[j].labels.l, na[j].labels.n, na[i].labels.l, na[i].labels.n))
                rc = vg_error_set(err, VG_EINVAL,
                                  "vector contains metrics with the same labelset after applying "
                                  "alert labels");
        vg_arena_reset(a);
    }
    vg_arena_free(a);
    if (rc == VG_ENOMEM) vg_error_set(err, rc, "out of memory");
    return rc;
}

static alert_inst *find_alert(rule *r, const lset *l)
{
    for (size_t i = 0; i < r->nalerts; i++)
        if (r->alerts[i].labels.hash == l->hash &&
            !vg_labels_cmp(r->alerts[i].labels.l, r->alerts[i].labels.n, l->l, l->n))
            return &r->alerts[i];
    return NULL;
}

static void alert_clear(alert_inst *a)
{
    vg_rules__lset_free(&a->labels);
    vg_rules__lset_free(&a->annotations);
}

/* Merge new alerts into the state; seen[i] marks state entries in the result. */
static vg_err_t merge(rule *r, newalert *na, size_t n, int64_t t, unsigned char **seen)
{
    alert_inst *v = vg_realloc(r->alerts, (r->nalerts + n + 1) * sizeof *v);
    if (!v) return VG_ENOMEM;
    r->alerts = v;
    unsigned char *s = vg_calloc(r->nalerts + n + 1, 1);
    if (!s) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        alert_inst *a = find_alert(r, &na[i].labels);
        if (a && a->state != ALERT_INACTIVE) {
            a->value = na[i].value;
            vg_rules__lset_free(&a->annotations);
            a->annotations = na[i].annotations;
            vg_rules__lset_free(&na[i].labels);
        } else {
            if (!a)
                a = &r->alerts[r->nalerts++];
            else
                alert_clear(a);
            *a = (alert_inst){.labels = na[i].labels,
                              .annotations = na[i].annotations,
                              .state = ALERT_PENDING,
                              .value = na[i].value,
                              .active_at = t};
        }
        na[i].labels = na[i].annotations = (lset){0};
        s[a - r->alerts] = 1;
    }
    *seen = s;
    return VG_OK;
}

/* Prometheus's second loop: resolve, drop, keep firing, promote; counts active ones. */
static size_t advance(vg_rules_t *m, rule *r, const unsigned char *seen, int64_t t)
{
    size_t active = 0, k = 0;
    for (size_t i = 0; i < r->nalerts; i++) {
        alert_inst *a = &r->alerts[i];
        int keep = 1, kf = 0;
        if (!seen[i]) {
            if (a->state == ALERT_FIRING && r->def->keep_firing_for_ms > 0) {
                if (!a->keep_firing_since) a->keep_firing_since = t;
                kf = t - a->keep_firing_since < r->def->keep_firing_for_ms;
            }
            if (a->state == ALERT_PENDING ||
                (a->resolved_at && t - a->resolved_at > m->o.resolved_retention_ms))
                keep = 0;
            if (a->state != ALERT_INACTIVE && !kf) {
                a->state = ALERT_INACTIVE;
                a->resolved_at = t;
            }
        } else {
            a->keep_firing_since = 0;
        }
        if (!keep) {
            alert_clear(a);
            continue;
        }
        if (seen[i] || kf) {
            active++;
            if (a->state == ALERT_PENDING && t - a->active_at >= r->def->for_ms) {
                a->state = ALERT_FIRING;
                a->fired_at = t;
            }
        }
        r->alerts[k++] = *a;
    }
    r->nalerts = k;
    return active;
}

static void drop_all(rule *r)
{
    for (size_t i = 0; i < r->nalerts; i++) alert_clear(&r->alerts[i]);
    r->nalerts = 0;
}

/* ALERTS and ALERTS_FOR_STATE for every alert still pending or firing. */
static vg_err_t write_alert_series(vg_rules_t *m, rule *r, int64_t t)
{
    size_t n = 0;
    lset *out = vg_calloc(2 * r->nalerts + 1, sizeof *out);
    double *v = vg_calloc(2 * r->nalerts + 1, sizeof *v);
    vg_err_t rc = out && v ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; i < r->nalerts && !rc; i++) {
        alert_inst *a = &r->alerts[i];
        if (a->state == ALERT_INACTIVE) continue;
        vg_label_t st = {"alertstate", a->state == ALERT_FIRING ? "firing" : "pending"};
        rc = vg_rules__relabel(a->labels.l, a->labels.n, &st, 1, VG_METRIC_NAME, "ALERTS", 0,
                               &out[n]);
        if (rc) break;
        v[n++] = 1;
        rc = vg_rules__relabel(a->labels.l, a->labels.n, NULL, 0, VG_METRIC_NAME,
                               "ALERTS_FOR_STATE", 0, &out[n]);
        if (!rc) v[n++] = (double)(a->active_at / 1000);
    }
    if (!rc) {
        vg_rules__write(m, &r->prev, out, v, n, t);
        out = NULL;
    }
    for (size_t i = 0; out && i < n; i++) vg_rules__lset_free(&out[i]);
    vg_free(out);
    vg_free(v);
    return rc;
}

vg_err_t vg_rules__eval_alert(vg_rules_t *m, group *g, rule *r, int64_t t_ms, vg_error *err)
{
    vg_promql_result *res = NULL;
    newalert *na = NULL;
    unsigned char *seen = NULL;
    vg_err_t rc = vg_rules__query_vector(m, r->def->expr, t_ms, &res, err);
    if (rc) return rc;
    size_t n = res->type == VG_PROMQL_RES_SCALAR ? 1 : res->nseries;
    na = vg_calloc(n + 1, sizeof *na);
    if (!na) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc) rc = build_alerts(m, r, res, t_ms, na, err);
    if (!rc && merge(r, na, n, t_ms, &seen)) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    if (rc) goto out;
    size_t active = advance(m, r, seen, t_ms);
    if (g->def->limit && active > g->def->limit) {
        drop_all(r);
        rc = vg_error_set(err, VG_ELIMIT, "exceeded limit of %llu with %zu alerts",
                          (unsigned long long)g->def->limit, active);
        goto out;
    }
    if ((r->restored || !g->restore) && write_alert_series(m, r, t_ms))
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
out:
    vg_free(seen);
    newalerts_free(na, n);
    vg_promql_result_free(res);
    return rc;
}

/* ---- restore ---- */

static int last_for_state(vg_rules_t *m, const alert_inst *a, int64_t now, int64_t *t, double *v)
{
    vg_matcher_t *ms[VG_RULES_MAX_RESTORE_LABELS + 1] = {0};
    size_t nm = 0;
    int found = 0;
    if (a->labels.n > VG_RULES_MAX_RESTORE_LABELS) return 0;
    vg_err_t rc = vg_matcher_new(VG_MATCH_EQ, VG_METRIC_NAME, "ALERTS_FOR_STATE", &ms[nm++], NULL);
    for (size_t i = 0; i < a->labels.n && !rc; i++)
        rc =
            vg_matcher_new(VG_MATCH_EQ, a->labels.l[i].name, a->labels.l[i].value, &ms[nm++], NULL);
    vg_seriesset_t *ss = NULL;
    if (!rc && !vg_tsdb_select(m->o.db, m->tenant, ms, nm, now - m->o.outage_tolerance_ms, now, &ss,
                               NULL)) {
        while (vg_seriesset_next(ss))
            while (vg_seriesset_sample_next(ss, t, v)) found = 1;
    }
    vg_seriesset_free(ss);
    for (size_t i = 0; i < nm; i++) vg_matcher_free(ms[i]);
    return found && !vg_is_stale_nan(*v) && isfinite(*v);
}

void vg_rules__restore(vg_rules_t *m, group *g, rule *r, int64_t now_ms)
{
    (void)g;
    r->restored = 1;
    int64_t hold = r->def->for_ms;
    if (!r->def->alerting || hold < m->o.for_grace_period_ms) return;
    for (size_t i = 0; i < r->nalerts; i++) {
        alert_inst *a = &r->alerts[i];
        int64_t t;
        double v;
        if (a->state == ALERT_INACTIVE || !last_for_state(m, a, now_ms, &t, &v)) continue;
        int64_t down = t / 1000 * 1000, active = (int64_t)v * 1000;
        int64_t remaining = hold - (down - active);
        if (remaining <= 0) {
            /* It was firing when we went down: the next evaluation fires it again. */
        } else if (remaining < m->o.for_grace_period_ms) {
            active = now_ms + m->o.for_grace_period_ms - hold;
        } else {
            active += now_ms - down;
        }
        a->active_at = active;
    }
}
