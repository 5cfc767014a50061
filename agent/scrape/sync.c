/*
 * sync.c - the scraper's target set, rebuilt when discovery changes it.
 *
 * Why this shape: targets come from static_configs (fixed) and file_sd
 * (changing at run time), and Prometheus semantics need three things when
 * a file changes: a target that is still there must keep scraping on its
 * phase with its series cache (or staleness would be wrong), a new target
 * starts, and a target that is gone gets staleness markers for everything
 * it last reported, up included, so queries stop returning it at once. So
 * a sync builds every candidate target from the groups (through
 * relabel_configs, see target.c), matches candidates to running targets by
 * identity key, and only then swaps the array and retires what was left
 * unmatched. All of it runs on the scrape thread, which is the only writer;
 * the mutex only keeps introspection from other threads consistent.
 */
#include <stdio.h>
#include <string.h>

#include "scrape/file_sd.h"
#include "scrape/scrape_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

typedef struct tlist {
    vg_scrape_target_t **v;
    size_t n, cap;
} tlist;

static int tlist_push(tlist *l, vg_scrape_target_t *t)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        vg_scrape_target_t **nv = vg_realloc(l->v, nc * sizeof *nv);
        if (!nv) return 0;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = t;
    return 1;
}

void vg_scrape_target_release(vg_scraper_t *s, vg_scrape_target_t *t)
{
    if (!t) return;
    if (t->easy && t->busy) curl_multi_remove_handle(s->multi, t->easy);
    vg_scrape_http_cleanup(t);
    vg_scrape_target_destroy(t);
    vg_free(t);
}

/* A running target of job j with the same identity, not yet matched. */
static vg_scrape_target_t *find_running(vg_scraper_t *s, size_t j, uint64_t key)
{
    for (size_t i = 0; i < s->ntargets; i++) {
        vg_scrape_target_t *t = s->targets[i];
        if (t->job == j && !t->claimed && t->key == key) return t;
    }
    return NULL;
}

static int in_list(const tlist *l, uint64_t key)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i]->key == key) return 1;
    return 0;
}

static void log_bad_target(vg_scraper_t *s, const vg_error *e, vg_err_t rc)
{
    char q[600];
    vg_log_warn("scrape", "target skipped", "err=%s", vg_logq(q, sizeof q, vg_error_msg(e, rc)));
    vg_metric_inc(s->m_target_errors);
}

/* Build one candidate; keep a running twin, or start it as new. */
static vg_err_t add_one(vg_scraper_t *s, size_t j, const vg_static_group_t *g, const char *addr,
                        int strict, tlist *fresh, vg_error *err)
{
    vg_error e = {0};
    vg_scrape_target_t *c = vg_calloc(1, sizeof *c), *old;
    if (!c) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = vg_scrape_target_init(c, s->cfg, s->jobs[j].sc, g, addr, &e);
    c->job = j;
    if (!rc && !c->dropped && (old = find_running(s, j, c->key))) {
        old->claimed = 1;
        c->dropped = 1; /* same target already running */
    } else if (!rc && !c->dropped && in_list(fresh, c->key)) {
        c->dropped = 1; /* duplicate within the groups */
    } else if (!rc && !c->dropped) {
        rc = vg_scrape_http_setup(c, vg_scrape_on_body);
        if (rc) vg_error_set(&e, rc, "cannot set up the request for %s", c->url);
        if (!rc && !tlist_push(fresh, c)) rc = vg_error_set(&e, VG_ENOMEM, "out of memory");
        if (!rc) return VG_OK;
    }
    vg_scrape_target_release(s, c);
    if (!rc) return VG_OK;
    if (strict || rc == VG_ENOMEM) {
        if (err) *err = e;
        return rc;
    }
    log_bad_target(s, &e, rc);
    return VG_OK;
}

static vg_err_t add_groups(vg_scraper_t *s, size_t j, const vg_static_group_t *g, size_t ng,
                           int strict, tlist *fresh, vg_error *err)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ng && !rc; i++)
        for (size_t k = 0; k < g[i].ntargets && !rc; k++)
            rc = add_one(s, j, &g[i], g[i].targets[k], strict, fresh, err);
    return rc;
}

/* New array: every matched running target, then the new ones. */
static vg_err_t swap_in(vg_scraper_t *s, tlist *fresh, tlist *gone)
{
    tlist next = {0};
    for (size_t i = 0; i < s->ntargets; i++)
        if (!tlist_push(s->targets[i]->claimed ? &next : gone, s->targets[i])) goto nomem;
    for (size_t i = 0; i < fresh->n; i++)
        if (!tlist_push(&next, fresh->v[i])) goto nomem;
    pthread_mutex_lock(&s->mu);
    vg_free(s->targets);
    s->targets = next.v;
    s->ntargets = next.n;
    pthread_mutex_unlock(&s->mu);
    return VG_OK;
nomem:
    vg_free(next.v);
    gone->n = 0;
    return VG_ENOMEM;
}

static void schedule(vg_scraper_t *s, tlist *fresh)
{
    int64_t mono = vg_clock_mono_ms(), wall = vg_clock_wall_ms();
    for (size_t i = 0; i < fresh->n; i++)
        fresh->v[i]->next_ms = mono + vg_scrape_target_first_delay(fresh->v[i], wall);
    s->next_due = 0; /* start_due looks at every target again */
}

vg_err_t vg_scrape_sync_job(vg_scraper_t *s, size_t j, int strict, vg_error *err)
{
    const vg_scrape_config_t *sc = s->jobs[j].sc;
    tlist fresh = {0}, gone = {0};
    size_t nsd = 0;
    const vg_static_group_t *sd = vg_file_sd_groups(s->jobs[j].sd, &nsd);
    for (size_t i = 0; i < s->ntargets; i++) s->targets[i]->claimed = s->targets[i]->job != j;
    vg_err_t rc = add_groups(s, j, sc->static_configs, sc->nstatic, strict, &fresh, err);
    if (!rc) rc = add_groups(s, j, sd, nsd, 0, &fresh, err);
    if (!rc && (rc = swap_in(s, &fresh, &gone))) vg_error_set(err, rc, "out of memory");
    if (rc) { /* leave the running set as it was */
        for (size_t i = 0; i < fresh.n; i++) vg_scrape_target_release(s, fresh.v[i]);
        vg_free(fresh.v);
        return rc;
    }
    if (s->started) schedule(s, &fresh);
    int64_t now = vg_clock_wall_ms();
    for (size_t i = 0; i < gone.n; i++) {
        vg_scrape_target_t *t = gone.v[i];
        if (t->easy && t->busy) curl_multi_remove_handle(s->multi, t->easy);
        t->busy = 0;
        vg_scrape_retire(t, &s->sink, now);
        vg_scrape_target_release(s, t);
    }
    if (fresh.n || gone.n) {
        char q[256];
        VG_LOG_AT(s->started ? VG_LOG_INFO : VG_LOG_DEBUG, "scrape", "targets updated",
                  "job=%s added=%zu removed=%zu total=%zu", vg_logq(q, sizeof q, sc->job_name),
                  fresh.n, gone.n, s->ntargets);
    }
    vg_metric_set(s->m_targets, (double)s->ntargets);
    vg_free(fresh.v);
    vg_free(gone.v);
    return VG_OK;
}

vg_err_t vg_scraper_refresh(vg_scraper_t *s, vg_error *err)
{
    if (!s || s->started)
        return vg_error_set(err, VG_EINVAL, "scrape: the scrape thread is running");
    for (size_t j = 0; j < s->njobs; j++) {
        if (!s->jobs[j].sd || !vg_file_sd_refresh(s->jobs[j].sd)) continue;
        vg_err_t rc = vg_scrape_sync_job(s, j, 0, err);
        if (rc) return rc;
    }
    return VG_OK;
}
