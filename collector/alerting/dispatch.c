/*
 * dispatch.c - alert store, aggregation groups, timers and the flush
 * pipeline, following Alertmanager's dispatch.go, provider/mem and the
 * notify pipeline (inhibit, silence, dedup, retry, log).
 *
 * Shape: one mutex guards the store and the groups, and is never held
 * across HTTP. Stored alerts are immutable, reference-counted objects: an
 * update replaces the object, so a flush can take a snapshot (references)
 * under the lock, notify without it, and afterwards delete exactly the
 * resolved alerts that were not replaced meanwhile (Alertmanager's
 * DeleteIfNotModified) by comparing pointers. A group is "busy" while a
 * worker flushes it, so the timer never flushes one group twice at once.
 *
 * A reload swaps the config under the lock and re-routes the stored alerts
 * into fresh groups, as Alertmanager rebuilds its dispatcher: new groups
 * wait group_wait, and the notification log keeps alerts already sent from
 * being sent again. A group a worker is flushing at that moment is
 * orphaned: its job finishes with the config it started with (jobs carry
 * their config) and frees it.
 */
#include "alerting/dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/httpc.h"
#include "vigil/log.h"

#define MAX_ROUTES 64

typedef struct am_alert {
    int refs; /* under d->mu */
    uint64_t fp;
    vg_label_t *labels, *ann;
    size_t nlabels, nann;
    int64_t starts, ends, updated;
    int timeout;
    char *gen_url;
} am_alert;

typedef struct am_group {
    char *key;
    const vg_am_route_t *route;
    vg_label_t *gl;
    size_t ngl;
    am_alert **alerts;
    size_t n, cap;
    int64_t next;
    int flushed, busy;
    int orphan; /* dropped by a reload while busy: flush_done frees it */
    struct am_group *next_group;
} am_group;

typedef struct am_job {
    am_group *g;
    am_alert **snap;
    size_t n;
    int64_t now;              /* the tick that found the group due */
    const vg_amconfig_t *cfg; /* the config of that tick */
    struct am_job *next;
} am_job;

struct vg_dispatch {
    vg_dispatch_opts o;
    char *external_url;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* timer thread: new work or stop */
    pthread_cond_t work_cv; /* workers: queued jobs or stop */
    am_alert **store;       /* sorted by fp */
    size_t nstore, capstore;
    am_group *groups;
    size_t ngroups;
    am_job *queue, *queue_tail;
    int stop, started;
    pthread_t timer;
    pthread_t *workers;
    size_t nworkers;
    int64_t last_gc;
    vg_metric_t *m_received_firing, *m_received_resolved, *m_groups_flushed, *m_notify_skipped;
    vg_notify_counters_t counters[3]; /* pagerduty, slack, webhook */
};

/* ---- alert objects ---- */

static void alert_unref(am_alert *a)
{
    if (!a || --a->refs > 0) return;
    for (size_t i = 0; i < a->nlabels; i++) {
        vg_free((char *)a->labels[i].name);
        vg_free((char *)a->labels[i].value);
    }
    for (size_t i = 0; i < a->nann; i++) {
        vg_free((char *)a->ann[i].name);
        vg_free((char *)a->ann[i].value);
    }
    vg_free(a->labels);
    vg_free(a->ann);
    vg_free(a->gen_url);
    vg_free(a);
}

static vg_label_t *copy_labels(const vg_label_t *l, size_t n)
{
    vg_label_t *c = vg_calloc(n ? n : 1, sizeof(*c));
    for (size_t i = 0; c && i < n; i++) {
        c[i].name = vg_strdup(l[i].name);
        c[i].value = vg_strdup(l[i].value);
        if (!c[i].name || !c[i].value) {
            for (size_t j = 0; j <= i; j++) {
                vg_free((char *)c[j].name);
                vg_free((char *)c[j].value);
            }
            vg_free(c);
            return NULL;
        }
    }
    return c;
}

static am_alert *alert_copy(const vg_alert_t *in)
{
    am_alert *a = vg_calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->refs = 1;
    a->labels = copy_labels(in->labels, in->nlabels);
    a->nlabels = a->labels ? in->nlabels : 0;
    a->ann = copy_labels(in->annotations, in->nannotations);
    a->nann = a->ann ? in->nannotations : 0;
    a->gen_url = in->generator_url ? vg_strdup(in->generator_url) : NULL;
    if (!a->labels || !a->ann || (in->generator_url && !a->gen_url)) {
        alert_unref(a);
        return NULL;
    }
    a->starts = in->starts_at;
    a->ends = in->ends_at;
    a->fp = vg_notify_fingerprint(a->labels, a->nlabels);
    return a;
}

static int resolved_at(const am_alert *a, int64_t now)
{
    return a->ends != 0 && a->ends <= now;
}

/* Alertmanager's Alert.Merge: o is the newer one (by updatedAt). Edits o. */
static void alert_merge(const am_alert *a, am_alert *o, int64_t now)
{
    if (a->starts < o->starts) o->starts = a->starts;
    if (resolved_at(o, now)) {
        if (resolved_at(a, now) && a->ends > o->ends) o->ends = a->ends;
    } else if (a->ends > o->ends && !a->timeout) {
        o->ends = a->ends;
        o->timeout = 0;
    }
}

/* ---- the store: sorted array of fingerprints ---- */

static size_t store_find(const vg_dispatch_t *d, uint64_t fp, int *found)
{
    size_t lo = 0, hi = d->nstore;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (d->store[mid]->fp < fp)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < d->nstore && d->store[lo]->fp == fp;
    return lo;
}

/* Insert or replace (takes the caller's reference). */
static vg_err_t store_set(vg_dispatch_t *d, am_alert *a)
{
    int found;
    size_t i = store_find(d, a->fp, &found);
    if (found) {
        alert_unref(d->store[i]);
        d->store[i] = a;
        return VG_OK;
    }
    if (d->nstore == d->capstore) {
        size_t nc = d->capstore ? d->capstore * 2 : 64;
        am_alert **ns = vg_realloc(d->store, nc * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        d->store = ns;
        d->capstore = nc;
    }
    memmove(&d->store[i + 1], &d->store[i], (d->nstore - i) * sizeof(*d->store));
    d->store[i] = a;
    d->nstore++;
    return VG_OK;
}

/* Drop resolved alerts from the store (provider/mem's GC). Groups keep their refs. */
static void store_gc(vg_dispatch_t *d, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < d->nstore; i++) {
        if (resolved_at(d->store[i], now))
            alert_unref(d->store[i]);
        else
            d->store[k++] = d->store[i];
    }
    d->nstore = k;
}

/* ---- groups ---- */

static int lbl_cmp(const void *a, const void *b)
{
    return strcmp(((const vg_label_t *)a)->name, ((const vg_label_t *)b)->name);
}

/* Group labels of a under route r (pointers into a's labels), sorted. */
static size_t group_labels(const vg_am_route_t *r, const am_alert *a, vg_label_t *out)
{
    if (r->group_by_all) {
        memcpy(out, a->labels, a->nlabels * sizeof(*out));
        return a->nlabels;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->ngroup_by; i++) {
        const char *v = vg_labels_get(a->labels, a->nlabels, r->group_by[i]);
        if (v && *v) out[n++] = (vg_label_t){r->group_by[i], v};
    }
    qsort(out, n, sizeof(*out), lbl_cmp);
    return n;
}

/* Go's %q for the plain strings label values are. */
static vg_err_t go_quote(vg_buf *b, const char *s)
{
    vg_err_t rc = vg_buf_putc(b, '"');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rc = vg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = vg_buf_puts(b, "\\n");
        else if (c == '\t')
            rc = vg_buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc = vg_buf_printf(b, "\\x%02x", c);
        else
            rc = vg_buf_putc(b, (char)c);
    }
    return rc ? rc : vg_buf_putc(b, '"');
}

vg_err_t vg_dispatch_group_key(vg_buf *b, const vg_am_route_t *r, const vg_label_t *gl, size_t n)
{
    vg_err_t rc = vg_buf_printf(b, "%s:{", r->id ? r->id : "{}");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = vg_buf_printf(b, "%s%s=", i ? ", " : "", gl[i].name);
        if (!rc) rc = go_quote(b, gl[i].value);
    }
    return rc ? rc : vg_buf_putc(b, '}');
}

static void group_free(am_group *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) alert_unref(g->alerts[i]);
    for (size_t i = 0; i < g->ngl; i++) {
        vg_free((char *)g->gl[i].name);
        vg_free((char *)g->gl[i].value);
    }
    vg_free(g->gl);
    vg_free(g->alerts);
    vg_free(g->key);
    vg_free(g);
}

static am_group *group_get(vg_dispatch_t *d, const vg_am_route_t *r, const am_alert *a, int64_t now)
{
    vg_label_t *gl = vg_calloc(a->nlabels + r->ngroup_by + 1, sizeof(*gl));
    vg_buf key;
    vg_buf_init(&key, 0);
    am_group *g = NULL;
    size_t ngl = gl ? group_labels(r, a, gl) : 0;
    if (!gl || vg_dispatch_group_key(&key, r, gl, ngl)) goto out;
    for (g = d->groups; g; g = g->next_group)
        if (g->route == r && strcmp(g->key, key.data) == 0) goto out;
    if (!(g = vg_calloc(1, sizeof(*g)))) goto out;
    g->route = r;
    g->key = vg_buf_steal(&key, NULL);
    g->gl = copy_labels(gl, ngl);
    g->ngl = g->gl ? ngl : 0;
    if (!g->gl) {
        group_free(g);
        g = NULL;
        goto out;
    }
    g->next = now + r->group_wait_ms;
    g->next_group = d->groups;
    d->groups = g;
    d->ngroups++;
out:
    vg_free(gl);
    vg_buf_free(&key);
    return g;
}

static vg_err_t group_insert(am_group *g, am_alert *a, int64_t now)
{
    size_t i = 0;
    while (i < g->n && g->alerts[i]->fp != a->fp) i++;
    if (i == g->n) {
        if (g->n == g->cap) {
            size_t nc = g->cap ? g->cap * 2 : 8;
            am_alert **na = vg_realloc(g->alerts, nc * sizeof(*na));
            if (!na) return VG_ENOMEM;
            g->alerts = na;
            g->cap = nc;
        }
        g->n++;
    } else {
        alert_unref(g->alerts[i]);
    }
    a->refs++;
    g->alerts[i] = a;
    /* An alert older than group_wait is flushed at once (dispatch.go insert). */
    if (!g->flushed && a->starts + g->route->group_wait_ms < now) g->next = now;
    return VG_OK;
}

static void group_unlink(vg_dispatch_t *d, am_group *g)
{
    for (am_group **p = &d->groups; *p; p = &(*p)->next_group)
        if (*p == g) {
            *p = g->next_group;
            d->ngroups--;
            group_free(g);
            return;
        }
}

/* ---- receiving alerts ---- */

static void stamp(const vg_dispatch_t *d, am_alert *a, int64_t now)
{
    a->updated = now;
    if (a->starts == 0) a->starts = a->ends ? a->ends : now;
    if (a->ends == 0) {
        a->timeout = 1;
        a->ends = now + d->o.cfg->resolve_timeout_ms;
    }
}

/* Merge with the stored alert when their activity ranges overlap (provider/mem Put). */
static void merge_stored(vg_dispatch_t *d, am_alert *a, int64_t now)
{
    int found;
    size_t i = store_find(d, a->fp, &found);
    if (!found) return;
    const am_alert *old = d->store[i];
    if ((a->ends > old->starts && a->ends < old->ends) ||
        (a->starts > old->starts && a->starts < old->ends))
        alert_merge(old, a, now);
}

static vg_err_t route_alert(vg_dispatch_t *d, am_alert *a, int64_t now)
{
    const vg_am_route_t *routes[MAX_ROUTES];
    size_t nr = vg_am_route_match(&d->o.cfg->route, a->labels, a->nlabels, routes, MAX_ROUTES);
    for (size_t i = 0; i < nr; i++) {
        am_group *g = group_get(d, routes[i], a, now);
        if (!g || group_insert(g, a, now)) return VG_ENOMEM;
    }
    return VG_OK;
}

/* Store and route one stamped alert (lock held); takes the caller's reference. */
static vg_err_t put_locked(vg_dispatch_t *d, am_alert *a, int64_t now)
{
    merge_stored(d, a, now);
    vg_err_t rc = VG_OK;
    if (d->o.observe) {
        vg_alert_t v = {a->labels, a->nlabels, a->ann, a->nann, a->starts, a->ends, a->gen_url};
        rc = d->o.observe(d->o.mute_ud, &v);
    }
    if (!rc) rc = route_alert(d, a, now);
    if (!rc) rc = store_set(d, a);
    if (rc) alert_unref(a);
    return rc;
}

/* The whole batch goes in under one lock hold, so a flush never sees half
 * of one POST (Alertmanager hands a batch to the dispatcher at once too). */
vg_err_t vg_dispatch_put_at(vg_dispatch_t *d, const vg_alert_t *alerts, size_t n, int64_t now)
{
    if (n == 0) return VG_OK;
    am_alert **cp = vg_calloc(n, sizeof(*cp));
    vg_err_t rc = cp ? VG_OK : VG_ENOMEM;
    for (size_t i = 0; cp && i < n; i++)
        if (!(cp[i] = alert_copy(&alerts[i]))) rc = VG_ENOMEM;
    pthread_mutex_lock(&d->mu); /* the config may be swapped by a reload */
    for (size_t i = 0; cp && i < n; i++) {
        if (!cp[i]) continue;
        if (!d->o.cfg->configured) {
            alert_unref(cp[i]);
            continue;
        }
        stamp(d, cp[i], now);
        vg_metric_inc(resolved_at(cp[i], now) ? d->m_received_resolved : d->m_received_firing);
        vg_err_t r = put_locked(d, cp[i], now);
        if (r && !rc) rc = r;
    }
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    vg_free(cp);
    if (rc) vg_log_warn("dispatch", "alerts dropped", "err=%s", vg_strerror(rc));
    return rc;
}

int64_t vg_dispatch_now(const vg_dispatch_t *d)
{
    return d->o.now_ms ? d->o.now_ms(d->o.clock_ud) : vg_clock_wall_ms();
}

void vg_dispatch_put(void *ud, const vg_alert_t *alerts, size_t n)
{
    vg_dispatch_t *d = ud;
    vg_dispatch_put_at(d, alerts, n, vg_dispatch_now(d));
}

/* ---- flushing ---- */

static int wait_stop(void *ud, int64_t ms)
{
    vg_dispatch_t *d = ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&d->mu);
    while (!d->stop && pthread_cond_timedwait(&d->work_cv, &d->mu, &ts) == 0) {
    }
    int stop = d->stop;
    pthread_mutex_unlock(&d->mu);
    return stop;
}

/* Alertmanager's AlertSlice order: job, then instance, then the label sets. */
static int alert_order(const void *x, const void *y)
{
    const vg_notify_alert_t *a = x, *b = y;
    static const char *keys[] = {"job", "instance"};
    for (int i = 0; i < 2; i++) {
        const char *va = vg_labels_get(a->labels, a->nlabels, keys[i]);
        const char *vb = vg_labels_get(b->labels, b->nlabels, keys[i]);
        if (!va && !vb) continue;
        if (!va) return 1;
        if (!vb) return -1;
        int c = strcmp(va, vb);
        if (c) return c;
    }
    return vg_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

typedef struct flush_ctx {
    vg_dispatch_t *d;
    const vg_amconfig_t *cfg;
    am_group *g;
    const vg_am_receiver_t *recv;
    vg_notify_msg_t msg; /* the alerts left after inhibition and silences */
    int64_t now, deadline_mono;
    vg_httpc_t *http;
} flush_ctx;

static vg_err_t send_one(flush_ctx *f, const vg_notifier_t *nt, const void *conf,
                         const vg_notify_msg_t *m, vg_notify_counters_t *c)
{
    vg_buf url, body;
    vg_buf_init(&url, 0);
    vg_buf_init(&body, 0);
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    const char *u = nt->url(conf, f->cfg, &url);
    if (!u) {
        rc = vg_error_set(&err, VG_ECONFIG, "%s: no URL configured", nt->name);
        goto out;
    }
    if ((rc = nt->encode(conf, m, &body))) {
        vg_metric_inc(c->failed_encode);
        goto out;
    }
    if (f->d->o.deliver) {
        rc = f->d->o.deliver(f->d->o.deliver_ud, nt, u, m, body.data, body.len);
    } else {
        const char *hdrs[] = {"Content-Type: application/json", "User-Agent: Vigil", NULL};
        vg_notify_target_t t = {f->http, u, hdrs, f->deadline_mono, wait_stop, f->d, c};
        rc = vg_notify_post(&t, body.data, body.len, &err);
    }
out:
    if (rc) {
        char q[600];
        vg_log_warn("dispatch", "notify failed", "receiver=%s integration=%s err=%s", f->recv->name,
                    nt->name, vg_logq(q, sizeof(q), vg_error_msg(&err, rc)));
    }
    vg_buf_free(&url);
    vg_buf_free(&body);
    return rc;
}

/* One integration: dedup against the log, send, log. */
static vg_err_t integration(flush_ctx *f, const vg_notifier_t *nt, int kind, const void *conf,
                            size_t idx, uint64_t *hf, uint64_t *hr)
{
    const vg_notify_msg_t *m = &f->msg;
    size_t nf = 0, nr = 0;
    for (size_t i = 0; i < m->nalerts; i++) {
        if (m->alerts[i].resolved)
            hr[nr++] = m->alerts[i].fp;
        else
            hf[nf++] = m->alerts[i].fp;
    }
    vg_buf key;
    vg_buf_init(&key, 0);
    vg_err_t rc = vg_buf_printf(&key, "%s\x1f%s/%s/%zu", f->g->key, f->recv->name, nt->name, idx);
    int sr = nt->send_resolved(conf);
    if (rc || !vg_nflog_needs_update(f->d->o.nflog, key.data, hf, nf, hr, nr, sr,
                                     f->g->route->repeat_interval_ms, f->now)) {
        vg_metric_inc(f->d->m_notify_skipped);
        goto out;
    }
    vg_notify_msg_t sm = *m;
    vg_notify_alert_t *firing = NULL;
    if (!sr && nf) { /* resolved alerts are not sent, only logged */
        firing = vg_calloc(nf, sizeof(*firing));
        if (!firing) {
            rc = VG_ENOMEM;
            goto out;
        }
        size_t k = 0;
        for (size_t i = 0; i < m->nalerts; i++)
            if (!m->alerts[i].resolved) firing[k++] = m->alerts[i];
        sm.alerts = firing;
        sm.nalerts = k;
    }
    if (sr || nf) rc = send_one(f, nt, conf, &sm, &f->d->counters[kind]);
    vg_free(firing);
    if (!rc) rc = vg_nflog_log(f->d->o.nflog, key.data, hf, nf, hr, nr, f->now, NULL);
out:
    vg_buf_free(&key);
    return rc;
}

static vg_err_t notify_receiver(flush_ctx *f)
{
    const vg_am_receiver_t *r = f->recv;
    size_t n = f->msg.nalerts;
    uint64_t *hf = vg_malloc((n + 1) * sizeof(*hf)), *hr = vg_malloc((n + 1) * sizeof(*hr));
    vg_err_t rc = hf && hr ? VG_OK : VG_ENOMEM, r1;
    for (size_t i = 0; hf && hr && i < r->npagerduty; i++)
        if ((r1 = integration(f, &vg_notifier_pagerduty, 0, &r->pagerduty[i], i, hf, hr))) rc = r1;
    for (size_t i = 0; hf && hr && i < r->nslack; i++)
        if ((r1 = integration(f, &vg_notifier_slack, 1, &r->slack[i], i, hf, hr))) rc = r1;
    for (size_t i = 0; hf && hr && i < r->nwebhook; i++)
        if ((r1 = integration(f, &vg_notifier_webhook, 2, &r->webhook[i], i, hf, hr))) rc = r1;
    vg_free(hf);
    vg_free(hr);
    return rc;
}

static int muted(vg_dispatch_t *d, const am_alert *a, int64_t now)
{
    return d->o.muted && d->o.muted(d->o.mute_ud, a->labels, a->nlabels, now);
}

/* Notify for one snapshot; VG_OK when every integration succeeded. */
static vg_err_t flush_notify(vg_dispatch_t *d, am_job *j, vg_httpc_t *http, int64_t now)
{
    flush_ctx f = {.d = d, .cfg = j->cfg, .g = j->g, .now = now, .http = http};
    f.recv = vg_amconfig_receiver(j->cfg, j->g->route->receiver);
    f.deadline_mono = vg_clock_mono_ms() + j->g->route->group_interval_ms;
    vg_notify_alert_t *na = vg_calloc(j->n + 1, sizeof(*na));
    if (!na) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < j->n; i++) {
        const am_alert *a = j->snap[i];
        if (muted(d, a, now)) continue;
        int res = resolved_at(a, now);
        na[k++] = (vg_notify_alert_t){a->labels,         a->nlabels, a->ann, a->nann, a->starts,
                                      res ? a->ends : 0, a->gen_url, a->fp,  res};
    }
    qsort(na, k, sizeof(*na), alert_order);
    f.msg = (vg_notify_msg_t){
        f.recv ? f.recv->name : "", j->g->key, j->g->gl, j->g->ngl, na, k, d->external_url};
    vg_err_t rc = k && f.recv ? notify_receiver(&f) : VG_OK;
    vg_free(na);
    return rc;
}

/* After a successful flush: drop the resolved alerts not replaced since. */
static void flush_done(vg_dispatch_t *d, am_job *j, int ok, int64_t now)
{
    am_group *g = j->g;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; ok && i < j->n; i++) {
        if (!resolved_at(j->snap[i], now)) continue;
        for (size_t k = 0; k < g->n; k++)
            if (g->alerts[k] == j->snap[i]) {
                alert_unref(g->alerts[k]);
                g->alerts[k] = g->alerts[--g->n];
                break;
            }
    }
    for (size_t i = 0; i < j->n; i++) alert_unref(j->snap[i]);
    g->busy = 0;
    if (g->orphan)
        group_free(g);
    else if (g->n == 0)
        group_unlink(d, g);
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    vg_free(j->snap);
    vg_free(j);
}

static void run_job(vg_dispatch_t *d, am_job *j, vg_httpc_t *http)
{
    int64_t now = j->now;
    vg_httpc_t *own = !http && !d->o.deliver ? vg_httpc_new() : NULL;
    vg_metric_inc(d->m_groups_flushed);
    vg_err_t rc =
        http || own || d->o.deliver ? flush_notify(d, j, http ? http : own, now) : VG_ENOMEM;
    vg_httpc_free(own);
    flush_done(d, j, rc == VG_OK, now);
}

/* Snapshot a due group (caller holds the lock). */
static am_job *job_new(am_group *g)
{
    am_job *j = vg_calloc(1, sizeof(*j));
    if (j) j->snap = vg_calloc(g->n + 1, sizeof(*j->snap));
    if (!j || !j->snap) {
        vg_free(j);
        return NULL;
    }
    for (size_t i = 0; i < g->n; i++) {
        g->alerts[i]->refs++;
        j->snap[j->n++] = g->alerts[i];
    }
    j->g = g;
    g->busy = 1;
    return j;
}

/* Collect due groups (lock held); returns the next due time. */
static int64_t collect_due(vg_dispatch_t *d, int64_t now, am_job **jobs)
{
    int64_t next = INT64_MAX;
    for (am_group *g = d->groups; g; g = g->next_group) {
        if (g->busy) continue;
        if (g->next <= now) {
            am_job *j = job_new(g);
            if (!j) continue;
            j->now = now;
            j->cfg = d->o.cfg;
            g->next = now + g->route->group_interval_ms;
            g->flushed = 1;
            j->next = *jobs;
            *jobs = j;
        }
        if (g->next < next) next = g->next;
    }
    return next;
}

int64_t vg_dispatch_tick(vg_dispatch_t *d, int64_t now)
{
    am_job *jobs = NULL;
    pthread_mutex_lock(&d->mu);
    if (now - d->last_gc >= 30000) {
        store_gc(d, now);
        d->last_gc = now;
    }
    int64_t next = collect_due(d, now, &jobs);
    if (d->nworkers && jobs) {
        am_job *tail = jobs;
        while (tail->next) tail = tail->next;
        if (d->queue_tail)
            d->queue_tail->next = jobs;
        else
            d->queue = jobs;
        d->queue_tail = tail;
        pthread_cond_broadcast(&d->work_cv);
        jobs = NULL;
    }
    pthread_mutex_unlock(&d->mu);
    while (jobs) {
        am_job *j = jobs;
        jobs = j->next;
        run_job(d, j, NULL);
    }
    if (next == INT64_MAX) return next;
    pthread_mutex_lock(&d->mu);
    for (am_group *g = d->groups; g; g = g->next_group)
        if (!g->busy && g->next < next) next = g->next;
    pthread_mutex_unlock(&d->mu);
    return next;
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
    vg_dispatch_t *d = arg;
    vg_httpc_t *http = vg_httpc_new();
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        am_job *j = d->queue;
        if (!j) {
            pthread_cond_wait(&d->work_cv, &d->mu);
            continue;
        }
        d->queue = j->next;
        if (!d->queue) d->queue_tail = NULL;
        pthread_mutex_unlock(&d->mu);
        run_job(d, j, http);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    vg_httpc_free(http);
    return NULL;
}

static void *timer_main(void *arg)
{
    vg_dispatch_t *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop) break;
        int64_t now = vg_dispatch_now(d);
        int64_t next = vg_dispatch_tick(d, now);
        int64_t wait = next == INT64_MAX ? 1000 : next - vg_dispatch_now(d);
        if (wait > 1000) wait = 1000; /* re-check the clock at least every second */
        if (wait <= 0) continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (wait % 1000) * 1000000L;
        ts.tv_sec += wait / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&d->mu);
        if (!d->stop) pthread_cond_timedwait(&d->cv, &d->mu, &ts);
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

vg_err_t vg_dispatch_start(vg_dispatch_t *d, vg_error *err)
{
    size_t nw = d->o.workers ? d->o.workers : 1;
    d->workers = vg_calloc(nw, sizeof(*d->workers));
    if (!d->workers) return vg_error_set(err, VG_ENOMEM, "dispatch: out of memory");
    for (; d->nworkers < nw; d->nworkers++)
        if (pthread_create(&d->workers[d->nworkers], NULL, worker_main, d))
            return vg_error_set(err, VG_EINTERNAL, "dispatch: cannot start a worker thread");
    if (pthread_create(&d->timer, NULL, timer_main, d))
        return vg_error_set(err, VG_EINTERNAL, "dispatch: cannot start the timer thread");
    d->started = 1;
    return VG_OK;
}

static double gauge_groups(void *ud)
{
    return (double)vg_dispatch_ngroups(ud);
}

static double gauge_alerts(void *ud)
{
    vg_dispatch_t *d = ud;
    pthread_mutex_lock(&d->mu);
    size_t n = d->nstore;
    pthread_mutex_unlock(&d->mu);
    return (double)n;
}

static void init_metrics(vg_dispatch_t *d)
{
    vg_metrics_t *m = d->o.metrics;
    d->m_received_firing =
        vg_metrics_counter(m, "vigil_alerts_received_total", "Alerts received by the dispatcher.",
                           "status=\"firing\"");
    d->m_received_resolved =
        vg_metrics_counter(m, "vigil_alerts_received_total", "Alerts received by the dispatcher.",
                           "status=\"resolved\"");
    d->m_groups_flushed = vg_metrics_counter(m, "vigil_alert_group_flushes_total",
                                             "Aggregation group flushes.", NULL);
    d->m_notify_skipped =
        vg_metrics_counter(m, "vigil_notifications_deduplicated_total",
                           "Flushes of an integration that the notification log found "
                           "nothing new in.",
                           NULL);
    vg_metrics_gauge_fn(m, "vigil_alert_groups", "Aggregation groups held by the dispatcher.", NULL,
                        gauge_groups, d);
    vg_metrics_gauge_fn(m, "vigil_alerts", "Alerts in the dispatcher's store.", NULL, gauge_alerts,
                        d);
    static const char *names[] = {"pagerduty", "slack", "webhook"};
    for (int i = 0; i < 3; i++) vg_notify_counters_init(m, names[i], &d->counters[i]);
}

vg_err_t vg_dispatch_new(const vg_dispatch_opts *o, vg_dispatch_t **out, vg_error *err)
{
    *out = NULL;
    if (!o->cfg || !o->nflog)
        return vg_error_set(err, VG_EINVAL, "dispatch: config and nflog required");
    vg_dispatch_t *d = vg_calloc(1, sizeof(*d));
    if (!d) return vg_error_set(err, VG_ENOMEM, "dispatch: out of memory");
    d->o = *o;
    d->external_url = vg_strdup(o->external_url ? o->external_url : "");
    if (!d->external_url) {
        vg_free(d);
        return vg_error_set(err, VG_ENOMEM, "dispatch: out of memory");
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_cond_init(&d->work_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (o->metrics) init_metrics(d);
    *out = d;
    return VG_OK;
}

void vg_dispatch_free(vg_dispatch_t *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started) pthread_join(d->timer, NULL);
    for (size_t i = 0; i < d->nworkers; i++) pthread_join(d->workers[i], NULL);
    while (d->queue) {
        am_job *j = d->queue;
        d->queue = j->next;
        if (j->g->orphan) group_free(j->g);
        for (size_t i = 0; i < j->n; i++) alert_unref(j->snap[i]);
        vg_free(j->snap);
        vg_free(j);
    }
    while (d->groups) {
        am_group *g = d->groups;
        d->groups = g->next_group;
        group_free(g);
    }
    for (size_t i = 0; i < d->nstore; i++) alert_unref(d->store[i]);
    vg_free(d->store);
    vg_free(d->workers);
    vg_free(d->external_url);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->work_cv);
    pthread_mutex_destroy(&d->mu);
    vg_free(d);
}

/* ---- listing ---- */

vg_err_t vg_dispatch_alerts(vg_dispatch_t *d, int64_t now, vg_dispatch_alert_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&d->mu);
    vg_dispatch_alert_t *r = vg_calloc(d->nstore + 1, sizeof(*r));
    size_t k = 0;
    for (size_t i = 0; r && i < d->nstore; i++) {
        am_alert *a = d->store[i];
        if (resolved_at(a, now)) continue;
        a->refs++;
        r[k++] = (vg_dispatch_alert_t){
            {a->labels, a->nlabels, a->ann, a->nann, a->starts, a->ends, a->gen_url},
            a->fp,
            a->updated,
            a};
    }
    pthread_mutex_unlock(&d->mu);
    if (!r) return VG_ENOMEM;
    *out = r;
    *n = k;
    return VG_OK;
}

void vg_dispatch_alerts_free(vg_dispatch_t *d, vg_dispatch_alert_t *a, size_t n)
{
    if (!a) return;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++) alert_unref(a[i].ref);
    pthread_mutex_unlock(&d->mu);
    vg_free(a);
}

/* Copy one group for a snapshot (lock held); VG_ENOMEM leaves *out partly filled. */
static vg_err_t group_copy(const am_group *g, int64_t now, vg_dispatch_group_t *out)
{
    out->key = vg_strdup(g->key);
    out->receiver = vg_strdup(g->route->receiver ? g->route->receiver : "");
    out->labels = copy_labels(g->gl, g->ngl);
    out->nlabels = out->labels ? g->ngl : 0;
    out->alerts = vg_calloc(g->n + 1, sizeof(*out->alerts));
    if (!out->key || !out->receiver || !out->labels || !out->alerts) return VG_ENOMEM;
    for (size_t i = 0; i < g->n; i++) {
        am_alert *a = g->alerts[i];
        if (resolved_at(a, now)) continue;
        a->refs++;
        out->alerts[out->nalerts++] = (vg_dispatch_alert_t){
            {a->labels, a->nlabels, a->ann, a->nann, a->starts, a->ends, a->gen_url},
            a->fp,
            a->updated,
            a};
    }
    return VG_OK;
}

vg_err_t vg_dispatch_groups(vg_dispatch_t *d, int64_t now, vg_dispatch_group_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&d->mu);
    vg_dispatch_group_t *r = vg_calloc(d->ngroups + 1, sizeof(*r));
    vg_err_t rc = r ? VG_OK : VG_ENOMEM;
    size_t k = 0;
    for (am_group *g = d->groups; !rc && g; g = g->next_group) rc = group_copy(g, now, &r[k++]);
    pthread_mutex_unlock(&d->mu);
    if (rc) {
        vg_dispatch_groups_free(d, r, k);
        return rc;
    }
    *out = r;
    *n = k;
    return VG_OK;
}

void vg_dispatch_groups_free(vg_dispatch_t *d, vg_dispatch_group_t *g, size_t n)
{
    if (!g) return;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < g[i].nalerts; j++) alert_unref(g[i].alerts[j].ref);
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < g[i].nlabels; j++) {
            vg_free((char *)g[i].labels[j].name);
            vg_free((char *)g[i].labels[j].value);
        }
        vg_free((void *)g[i].labels);
        vg_free((char *)g[i].key);
        vg_free((char *)g[i].receiver);
        vg_free(g[i].alerts);
    }
    vg_free(g);
}

const vg_amconfig_t *vg_dispatch_config(vg_dispatch_t *d)
{
    pthread_mutex_lock(&d->mu);
    const vg_amconfig_t *c = d->o.cfg;
    pthread_mutex_unlock(&d->mu);
    return c;
}

/* ---- reload ---- */

/* Hand the stored alerts to the reconfigure hook (lock held). */
static vg_err_t reconfigure_locked(vg_dispatch_t *d, const vg_amconfig_t *cfg)
{
    if (!d->o.reconfigure) return VG_OK;
    vg_alert_t *v = vg_calloc(d->nstore + 1, sizeof(*v));
    if (!v) return VG_ENOMEM;
    for (size_t i = 0; i < d->nstore; i++) {
        const am_alert *a = d->store[i];
        v[i] = (vg_alert_t){a->labels, a->nlabels, a->ann, a->nann, a->starts, a->ends, a->gen_url};
    }
    vg_err_t rc = d->o.reconfigure(d->o.mute_ud, cfg, v, d->nstore);
    vg_free(v);
    return rc;
}

/* Drop every group (lock held); busy ones are left to their job. */
static void drop_groups(vg_dispatch_t *d)
{
    while (d->groups) {
        am_group *g = d->groups;
        d->groups = g->next_group;
        if (g->busy)
            g->orphan = 1;
        else
            group_free(g);
    }
    d->ngroups = 0;
}

vg_err_t vg_dispatch_reload(vg_dispatch_t *d, const vg_amconfig_t *cfg, vg_error *err)
{
    return vg_dispatch_reload_at(d, cfg, vg_dispatch_now(d), err);
}

vg_err_t vg_dispatch_reload_at(vg_dispatch_t *d, const vg_amconfig_t *cfg, int64_t now,
                               vg_error *err)
{
    pthread_mutex_lock(&d->mu);
    vg_err_t rc = reconfigure_locked(d, cfg);
    if (rc) {
        pthread_mutex_unlock(&d->mu);
        return vg_error_set(err, rc, "alerting reload: inhibit rules: %s", vg_strerror(rc));
    }
    drop_groups(d);
    d->o.cfg = cfg;
    for (size_t i = 0; i < d->nstore && cfg->configured && !rc; i++)
        rc = route_alert(d, d->store[i], now);
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (rc) /* the new config is in place; alerts not re-routed come back with their next update */
        return vg_error_set(err, rc, "alerting reload: re-routing alerts: %s", vg_strerror(rc));
    return VG_OK;
}

size_t vg_dispatch_ngroups(vg_dispatch_t *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->ngroups;
    pthread_mutex_unlock(&d->mu);
    return n;
}
