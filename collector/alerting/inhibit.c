/*
 * inhibit.c - Alertmanager inhibition.
 *
 * Per rule, a small cache of the alerts that match its source side, keyed
 * by label fingerprint and holding a private copy of the labels and the
 * end time. A check walks the rules whose target side matches and looks
 * for one unresolved cached source whose `equal` labels agree (absent on
 * both sides counts as equal). When the checked alert also matches the
 * source side, sources that match the target side are skipped, so an alert
 * never inhibits itself or its two-sided twins - Alertmanager's rule.
 * One mutex guards all caches; the sets are small and checks are short.
 */
#include <pthread.h>
#include <string.h>

#include "alerting/inhibit.h"
#include "notify/notify.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"

typedef struct src_alert {
    uint64_t fp;
    vg_label_t *labels; /* one allocation: array then strings */
    size_t nlabels;
    int64_t ends_at;
} src_alert;

typedef struct rule_cache {
    const vg_am_inhibit_rule_t *rule;
    src_alert *items;
    size_t n, cap;
} rule_cache;

struct vg_inhibitor {
    pthread_mutex_t mu;
    rule_cache *rules;
    size_t nrules;
};

static int matches_all(vg_matcher_t *const *ms, size_t nm, const vg_label_t *l, size_t n)
{
    for (size_t i = 0; i < nm; i++)
        if (!vg_matcher_matches(ms[i], vg_labels_get(l, n, vg_matcher_name(ms[i])))) return 0;
    return 1;
}

vg_inhibitor_t *vg_inhibitor_new(const vg_amconfig_t *cfg)
{
    vg_inhibitor_t *in = vg_calloc(1, sizeof *in);
    if (!in) return NULL;
    pthread_mutex_init(&in->mu, NULL);
    size_t n = cfg ? cfg->ninhibit_rules : 0;
    if (n && !(in->rules = vg_calloc(n, sizeof *in->rules))) {
        vg_inhibitor_free(in);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) in->rules[i].rule = &cfg->inhibit_rules[i];
    in->nrules = n;
    return in;
}

void vg_inhibitor_free(vg_inhibitor_t *in)
{
    if (!in) return;
    for (size_t i = 0; i < in->nrules; i++) {
        for (size_t k = 0; k < in->rules[i].n; k++) vg_free(in->rules[i].items[k].labels);
        vg_free(in->rules[i].items);
    }
    vg_free(in->rules);
    pthread_mutex_destroy(&in->mu);
    vg_free(in);
}

vg_err_t vg_inhibitor_reload(vg_inhibitor_t *in, const vg_amconfig_t *cfg, const vg_alert_t *alerts,
                             size_t n)
{
    vg_inhibitor_t *fresh = vg_inhibitor_new(cfg);
    vg_err_t rc = fresh ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) rc = vg_inhibitor_put(fresh, &alerts[i]);
    if (!rc) { /* swap the caches: fresh leaves with the old ones */
        pthread_mutex_lock(&in->mu);
        rule_cache *r = in->rules;
        size_t nr = in->nrules;
        in->rules = fresh->rules, in->nrules = fresh->nrules;
        fresh->rules = r, fresh->nrules = nr;
        pthread_mutex_unlock(&in->mu);
    }
    vg_inhibitor_free(fresh);
    return rc;
}

static vg_label_t *copy_labels(const vg_label_t *l, size_t n)
{
    size_t bytes = n * sizeof(vg_label_t);
    for (size_t i = 0; i < n; i++) bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    vg_label_t *out = vg_malloc(bytes ? bytes : 1);
    if (!out) return NULL;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        out[i].name = memcpy(p, l[i].name, a);
        out[i].value = memcpy(p + a, l[i].value, b);
        p += a + b;
    }
    return out;
}

static vg_err_t cache_put(rule_cache *rc, uint64_t fp, const vg_alert_t *a, int64_t now)
{
    size_t i = 0;
    while (i < rc->n && rc->items[i].fp != fp) i++;
    if (vg_alert_resolved(a, now)) { /* a resolved source stops inhibiting: drop it */
        if (i < rc->n) {
            vg_free(rc->items[i].labels);
            rc->items[i] = rc->items[--rc->n];
        }
        return VG_OK;
    }
    if (i < rc->n) {
        rc->items[i].ends_at = a->ends_at;
        return VG_OK;
    }
    if (rc->n == rc->cap) {
        size_t nc = rc->cap ? rc->cap * 2 : 8;
        src_alert *ni = vg_realloc(rc->items, nc * sizeof *ni);
        if (!ni) return VG_ENOMEM;
        rc->items = ni;
        rc->cap = nc;
    }
    vg_label_t *l = copy_labels(a->labels, a->nlabels);
    if (!l) return VG_ENOMEM;
    rc->items[rc->n++] =
        (src_alert){.fp = fp, .labels = l, .nlabels = a->nlabels, .ends_at = a->ends_at};
    return VG_OK;
}

vg_err_t vg_inhibitor_put(vg_inhibitor_t *in, const vg_alert_t *a)
{
    if (!in || !a) return VG_EINVAL;
    uint64_t fp = vg_labels_hash(a->labels, a->nlabels);
    int64_t now = vg_clock_wall_ms();
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->nrules && !rc; i++) {
        const vg_am_inhibit_rule_t *r = in->rules[i].rule;
        if (matches_all(r->source, r->nsource, a->labels, a->nlabels))
            rc = cache_put(&in->rules[i], fp, a, now);
    }
    pthread_mutex_unlock(&in->mu);
    return rc;
}

static int str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Alertmanager's hasEqual: an unresolved source agreeing on every equal label. */
static const src_alert *has_equal(const rule_cache *rc, const vg_label_t *l, size_t n,
                                  int exclude_two_sided, int64_t now)
{
    const vg_am_inhibit_rule_t *r = rc->rule;
    for (size_t k = 0; k < rc->n; k++) {
        const src_alert *s = &rc->items[k];
        if (s->ends_at != 0 && s->ends_at <= now) continue;
        size_t e = 0;
        while (e < r->nequal && str_eq(vg_labels_get(s->labels, s->nlabels, r->equal[e]),
                                       vg_labels_get(l, n, r->equal[e])))
            e++;
        if (e < r->nequal) continue;
        if (exclude_two_sided && matches_all(r->target, r->ntarget, s->labels, s->nlabels))
            continue;
        return s;
    }
    return NULL;
}

int vg_inhibitor_mutes(vg_inhibitor_t *in, const vg_label_t *l, size_t n, int64_t now_ms)
{
    return vg_inhibitor_mutes_by(in, l, n, now_ms, NULL);
}

int vg_inhibitor_mutes_by(vg_inhibitor_t *in, const vg_label_t *l, size_t n, int64_t now_ms,
                          uint64_t *by)
{
    if (!in) return 0;
    const src_alert *src = NULL;
    pthread_mutex_lock(&in->mu);
    for (size_t i = 0; i < in->nrules && !src; i++) {
        const vg_am_inhibit_rule_t *r = in->rules[i].rule;
        if (!matches_all(r->target, r->ntarget, l, n)) continue;
        int two_sided = matches_all(r->source, r->nsource, l, n);
        src = has_equal(&in->rules[i], l, n, two_sided, now_ms);
    }
    /* The source's labels are in the dispatcher's order, so this is its fingerprint. */
    if (src && by) *by = vg_notify_fingerprint(src->labels, src->nlabels);
    pthread_mutex_unlock(&in->mu);
    return src != NULL;
}
