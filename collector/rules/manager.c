/*
 * manager.c - the rule manager's lifecycle: load and swap rule sets, carry
 * alert state across reloads, and the one evaluation thread.
 *
 * A reload builds a complete new ruleset (every file parsed and validated)
 * before taking the lock, then moves surviving state into it and swaps, so a
 * broken file never interrupts the running rules. The thread sleeps on a
 * condition variable until the earliest group's next slot, which also lets a
 * reload or shutdown wake it at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rules/rules_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

/* ---- label sets ---- */

vg_err_t vg_rules__lset_make(lset *s, const vg_label_t *l, size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(vg_label_t);
    for (size_t i = 0; i < n; i++) bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    vg_label_t *o = vg_malloc(bytes);
    if (!o) return VG_ENOMEM;
    char *p = (char *)(o + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        o[i].name = memcpy(p, l[i].name, a);
        o[i].value = memcpy(p + a, l[i].value, b);
        p += a + b;
    }
    s->l = o;
    s->n = n;
    s->hash = vg_labels_hash(o, n);
    return VG_OK;
}

void vg_rules__lset_free(lset *s)
{
    vg_free(s->l);
    s->l = NULL;
    s->n = 0;
}

void vg_rules__memo_free(series_memo *m)
{
    for (size_t i = 0; i < m->n; i++) vg_rules__lset_free(&m->s[i]);
    vg_free(m->s);
    m->s = NULL;
    m->n = 0;
}

static int set_has(const vg_label_t *sets, size_t ns, const char *name)
{
    for (size_t i = 0; i < ns; i++)
        if (!strcmp(sets[i].name, name)) return 1;
    return 0;
}

vg_err_t vg_rules__relabel(const vg_label_t *base, size_t nb, const vg_label_t *sets, size_t ns,
                           const char *name_label, const char *name_value, int drop_name, lset *out)
{
    size_t cap = nb + ns + 1, n = 0;
    vg_label_t *tmp = vg_malloc(cap * sizeof *tmp);
    if (!tmp) return VG_ENOMEM;
    for (size_t i = 0; i < nb; i++) {
        const char *k = base[i].name;
        if ((drop_name && !strcmp(k, VG_METRIC_NAME)) || set_has(sets, ns, k) ||
            (name_label && !strcmp(k, name_label)))
            continue;
        tmp[n++] = base[i];
    }
    for (size_t i = 0; i < ns; i++)
        if (sets[i].value[0] && !(name_label && !strcmp(sets[i].name, name_label)))
            tmp[n++] = sets[i];
    if (name_label) tmp[n++] = (vg_label_t){name_label, name_value};
    vg_labels_sort(tmp, n);
    vg_err_t rc = vg_rules__lset_make(out, tmp, n);
    vg_free(tmp);
    return rc;
}

/* ---- rulesets ---- */

static void group_clear(group *g)
{
    for (size_t i = 0; i < g->nrules; i++) {
        rule *r = &g->rules[i];
        for (size_t j = 0; j < r->nalerts; j++) {
            vg_rules__lset_free(&r->alerts[j].labels);
            vg_rules__lset_free(&r->alerts[j].annotations);
        }
        vg_free(r->alerts);
        vg_free(r->labels);
        vg_rules__memo_free(&r->prev);
    }
    vg_free(g->rules);
}

static void ruleset_free(ruleset *rs)
{
    if (!rs) return;
    for (size_t i = 0; i < rs->ngroups; i++) group_clear(&rs->groups[i]);
    vg_free(rs->groups);
    for (size_t i = 0; i < rs->nfiles; i++) vg_rulefile_free(rs->files[i]);
    vg_free(rs->files);
    vg_free(rs);
}

/* As Prometheus: the hash of the label set {file, name} modulo the interval
 * (in nanoseconds). Our label hash is XXH3, not Prometheus's xxhash64, so
 * the phase is as stable but not the same number as Prometheus's. */
int64_t vg_rules_group_offset(const char *file, const char *name, int64_t interval_ms)
{
    vg_label_t l[2] = {{"file", file}, {"name", name}};
    uint64_t h = vg_labels_hash(l, 2);
    if (interval_ms <= 0) return 0;
    uint64_t ns = (uint64_t)interval_ms * 1000000ull;
    return (int64_t)((h % ns) / 1000000ull);
}

static vg_err_t rule_build(vg_rulefile *f, const vg_rule_group_def *gd, const vg_rule_def *d,
                           rule *r)
{
    lset l = {0};
    r->def = d;
    vg_err_t rc =
        vg_rules__relabel(gd->labels, gd->nlabels, d->labels, d->nlabels, NULL, NULL, 0, &l);
    if (rc) return rc;
    r->labels = l.l;
    r->nlabels = l.n;
    r->query = d->expr;
    vg_promql_expr_t *e = NULL;
    vg_buf b;
    vg_buf_init(&b, 1u << 20);
    if (!vg_promql_parse(d->expr, strlen(d->expr), &e, NULL) && !vg_promql_format(e, &b) && b.data)
        r->query = vg_arena_strdup(f->arena, b.data);
    vg_buf_free(&b);
    vg_promql_expr_free(e);
    return r->query ? VG_OK : VG_ENOMEM;
}

static void group_metrics(vg_rules_t *m, group *g)
{
    char lbl[600];
    vg_metrics_t *mt = m->o.metrics;
    if (!mt) return;
    snprintf(lbl, sizeof lbl, "rule_group=\"%.250s;%.250s\"", g->def->file, g->def->name);
    g->m_evals =
        vg_metrics_counter(mt, "vigil_rule_evaluations_total", "Rule evaluations, by group.", lbl);
    g->m_fails = vg_metrics_counter(mt, "vigil_rule_evaluation_failures_total",
                                    "Rule evaluations that failed, by group.", lbl);
    g->m_duration = vg_metrics_gauge(mt, "vigil_rule_group_last_duration_seconds",
                                     "Duration of the last evaluation of the group.", lbl);
    g->m_missed = vg_metrics_counter(mt, "vigil_rule_group_iterations_missed_total",
                                     "Group evaluations skipped because one ran late.", lbl);
    vg_metric_set(vg_metrics_gauge(mt, "vigil_rule_group_interval_seconds",
                                   "Evaluation interval of the group.", lbl),
                  (double)g->interval_ms / 1000.0);
    vg_metric_set(vg_metrics_gauge(mt, "vigil_rule_group_rules", "Rules in the group.", lbl),
                  (double)g->nrules);
}

static vg_err_t ruleset_build(vg_rules_t *m, ruleset *rs, int64_t def_interval)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->nfiles; i++) n += rs->files[i]->ngroups;
    rs->groups = vg_calloc(n ? n : 1, sizeof *rs->groups);
    if (!rs->groups) return VG_ENOMEM;
    for (size_t i = 0; i < rs->nfiles; i++) {
        vg_rulefile *f = rs->files[i];
        for (size_t j = 0; j < f->ngroups; j++) {
            group *g = &rs->groups[rs->ngroups++];
            g->def = &f->groups[j];
            g->interval_ms = g->def->interval_ms ? g->def->interval_ms : def_interval;
            g->rules = vg_calloc(g->def->nrules ? g->def->nrules : 1, sizeof *g->rules);
            if (!g->rules) return VG_ENOMEM;
            for (size_t k = 0; k < g->def->nrules; k++, g->nrules++)
                if (rule_build(f, g->def, &g->def->rules[k], &g->rules[k])) return VG_ENOMEM;
            group_metrics(m, g);
        }
    }
    return VG_OK;
}

static vg_err_t load_files(const char *const *files, size_t n, ruleset *rs, vg_error *err)
{
    rs->files = vg_calloc(n ? n : 1, sizeof *rs->files);
    if (!rs->files) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t first = VG_OK;
    for (size_t i = 0; i < n; i++) {
        vg_error e = {0};
        vg_err_t rc = vg_rulefile_load(files[i], &rs->files[rs->nfiles], &e);
        vg_rulefile *f = rs->files[rs->nfiles];
        if (f) rs->nfiles++;
        for (size_t k = 0; f && k < f->nerrors; k++) {
            char q[1100];
            vg_log_error("rules", "bad rule file", "err=%s", vg_logq(q, sizeof q, f->errors[k]));
        }
        if (rc && !first) {
            first = rc;
            if (err) *err = e;
        }
    }
    return first;
}

/* ---- carrying state over a reload ---- */

static int same_rule(const rule *a, const rule *b)
{
    return a->def->alerting == b->def->alerting && !strcmp(a->def->name, b->def->name) &&
           !vg_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

static void move_rule_state(rule *to, rule *from)
{
    to->health = from->health;
    memcpy(to->last_error, from->last_error, sizeof to->last_error);
    to->last_eval_ms = from->last_eval_ms;
    to->eval_seconds = from->eval_seconds;
    to->alerts = from->alerts;
    to->nalerts = from->nalerts;
    to->restored = from->restored;
    to->prev = from->prev;
    from->alerts = NULL;
    from->nalerts = 0;
    from->prev = (series_memo){0};
}

static void copy_group_state(group *g, group *old)
{
    g->last_eval_ms = old->last_eval_ms;
    g->eval_seconds = old->eval_seconds;
    if (old->interval_ms == g->interval_ms) g->next_ms = old->next_ms;
    g->restore = old->restore;
    for (size_t i = 0; i < g->nrules; i++)
        for (size_t j = 0; j < old->nrules; j++)
            if (old->rules[j].def && same_rule(&g->rules[i], &old->rules[j])) {
                move_rule_state(&g->rules[i], &old->rules[j]);
                old->rules[j].def = NULL; /* used */
                break;
            }
}

static void carry_state(vg_rules_t *m, ruleset *rs)
{
    for (size_t i = 0; i < rs->ngroups; i++) {
        group *g = &rs->groups[i];
        g->restore = m->o.restore && !m->loaded_once;
        for (size_t j = 0; m->rs && j < m->rs->ngroups; j++) {
            group *old = &m->rs->groups[j];
            if (!strcmp(old->def->file, g->def->file) && !strcmp(old->def->name, g->def->name)) {
                copy_group_state(g, old);
                break;
            }
        }
    }
}

static vg_err_t set_settings(vg_rules_t *m, const vg_rules_settings *s)
{
    lset el = {0};
    char *url = s && s->external_url ? vg_strdup(s->external_url) : NULL;
    if ((s && s->external_url && !url) ||
        vg_rules__lset_make(&el, s ? s->external_labels : NULL, s ? s->nexternal_labels : 0)) {
        vg_free(url);
        return VG_ENOMEM;
    }
    vg_rules__lset_free(&m->external_labels);
    vg_free(m->external_url);
    m->external_labels = el;
    m->external_url = url;
    m->default_interval_ms = s && s->default_interval_ms > 0 ? s->default_interval_ms : 60000;
    return VG_OK;
}

vg_err_t vg_rules_load(vg_rules_t *m, const char *const *files, size_t nfiles,
                       const vg_rules_settings *s, vg_error *err)
{
    ruleset *rs = vg_calloc(1, sizeof *rs);
    if (!rs) return vg_error_set(err, VG_ENOMEM, "out of memory");
    int64_t def = s && s->default_interval_ms > 0 ? s->default_interval_ms : 60000;
    vg_err_t rc = load_files(files, nfiles, rs, err);
    if (!rc && ruleset_build(m, rs, def)) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    if (rc) {
        vg_metric_inc(m->m_load_fails);
        ruleset_free(rs);
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    rc = set_settings(m, s);
    if (!rc) {
        carry_state(m, rs);
        ruleset *old = m->rs;
        m->rs = rs;
        rs = old;
        m->loaded_once = 1;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    ruleset_free(rs);
    if (rc) return vg_error_set(err, rc, "out of memory");
    vg_metric_inc(m->m_loads);
    vg_log_info("rules", "rules loaded", "files=%zu", nfiles);
    return VG_OK;
}

/* ---- lifecycle ---- */

vg_rules_t *vg_rules_new(const vg_rules_opts *opts)
{
    if (!opts || !opts->db) return NULL;
    vg_rules_t *m = vg_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->o = *opts;
    m->tenant = opts->tenant ? opts->tenant : VG_TENANT_DEFAULT;
    if (!m->o.resend_delay_ms) m->o.resend_delay_ms = 60000;
    if (!m->o.outage_tolerance_ms) m->o.outage_tolerance_ms = 3600000;
    if (!m->o.for_grace_period_ms) m->o.for_grace_period_ms = 600000;
    if (!m->o.resolved_retention_ms) m->o.resolved_retention_ms = 900000;
    m->default_interval_ms = 60000;
    m->tq = (vg_tsdb_queryable){opts->db, m->tenant};
    m->engine = vg_promql_engine_new(opts->engine);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_REALTIME);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    vg_metrics_t *mt = opts->metrics;
    if (mt) {
        m->m_loads = vg_metrics_counter(mt, "vigil_rule_loads_total", "Rule file (re)loads.", "");
        m->m_load_fails = vg_metrics_counter(mt, "vigil_rule_load_failures_total",
                                             "Rule file (re)loads refused for errors.", "");
    }
    if (!m->engine) {
        vg_rules_free(m);
        return NULL;
    }
    return m;
}

void vg_rules_free(vg_rules_t *m)
{
    if (!m) return;
    if (m->running) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    ruleset_free(m->rs);
    vg_promql_engine_free(m->engine);
    vg_rules__lset_free(&m->external_labels);
    vg_free(m->external_url);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    vg_free(m);
}

void vg_rules_set_sink(vg_rules_t *m, vg_alert_sink_fn fn, void *ud)
{
    pthread_mutex_lock(&m->mu);
    m->sink = fn;
    m->sink_ud = ud;
    pthread_mutex_unlock(&m->mu);
}

size_t vg_rules_ngroups(vg_rules_t *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->rs ? m->rs->ngroups : 0;
    pthread_mutex_unlock(&m->mu);
    return n;
}

vg_err_t vg_rules_eval_group(vg_rules_t *m, size_t i, int64_t t_ms)
{
    pthread_mutex_lock(&m->mu);
    vg_err_t rc = VG_ENOTFOUND;
    if (m->rs && i < m->rs->ngroups) {
        rc = vg_rules__eval_group(m, &m->rs->groups[i], t_ms);
        vg_rules__send(m, &m->rs->groups[i], t_ms); /* unlocks and relocks */
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ---- the thread ---- */

/* First slot after now for g (Prometheus: the aligned slot, plus one interval). */
static int64_t first_slot(const group *g, int64_t now)
{
    int64_t iv = g->interval_ms, off = vg_rules_group_offset(g->def->file, g->def->name, iv);
    int64_t base = now - off;
    base -= ((base % iv) + iv) % iv;
    return base + off + iv;
}

static group *next_group(vg_rules_t *m, int64_t now)
{
    group *best = NULL;
    for (size_t i = 0; m->rs && i < m->rs->ngroups; i++) {
        group *g = &m->rs->groups[i];
        if (!g->next_ms) g->next_ms = first_slot(g, now);
        if (!best || g->next_ms < best->next_ms) best = g;
    }
    return best;
}

static void wait_until(vg_rules_t *m, int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000L};
    if (until_ms <= 0) {
        pthread_cond_wait(&m->cv, &m->mu);
        return;
    }
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
}

static void *run(void *arg)
{
    vg_rules_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        int64_t now = vg_clock_wall_ms();
        group *g = next_group(m, now);
        if (!g || g->next_ms > now) {
            wait_until(m, g ? g->next_ms : 0);
            continue;
        }
        int64_t slot = g->next_ms, missed = (now - slot) / g->interval_ms;
        if (missed > 0) {
            vg_metric_add(g->m_missed, (double)missed);
            slot += missed * g->interval_ms;
        }
        g->next_ms = slot + g->interval_ms;
        vg_rules__eval_group(m, g, slot);
        vg_rules__send(m, g, slot);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

vg_err_t vg_rules_start(vg_rules_t *m, vg_error *err)
{
    if (m->running) return VG_OK;
    if (pthread_create(&m->thread, NULL, run, m))
        return vg_error_set(err, VG_EIO, "cannot start the rule evaluation thread");
    m->running = 1;
    return VG_OK;
}
