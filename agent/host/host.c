/*
 * host.c - the host metrics collector: a table of collectors, one thread.
 *
 * Each collection runs every collector of the table in turn on one
 * vg_host_ctx (one read buffer, one set of compiled filters), stamps all
 * samples with the same wall-clock time, and ends like a scrape does: with
 * node_exporter's own node_scrape_collector_{success,duration_seconds}
 * {collector}, up{job,instance} = 1 and one commit. A collector whose source
 * is missing (no PSI, no IPv6) reports success 0 and emits nothing else,
 * which is how node_exporter reports it too.
 *
 * The thread sleeps on a condition variable against the monotonic clock,
 * so vg_host_free wakes it at once and a wall-clock step never stretches
 * the interval. Host metrics get their own thread rather than a slot in the
 * scrape loop because statvfs on a dead network mount can block.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "host_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

static const struct {
    const char *name;
    vg_host_collect_fn fn;
} collectors[] = {
    {"cpu", vg_host_collect_cpu},
    {"diskstats", vg_host_collect_diskstats},
    {"entropy", vg_host_collect_entropy},
    {"filefd", vg_host_collect_filefd},
    {"filesystem", vg_host_collect_filesystem},
    {"loadavg", vg_host_collect_loadavg},
    {"meminfo", vg_host_collect_meminfo},
    {"netclass", vg_host_collect_netclass},
    {"netdev", vg_host_collect_netdev},
    {"netstat", vg_host_collect_netstat},
    {"pressure", vg_host_collect_pressure},
    {"sockstat", vg_host_collect_sockstat},
    {"stat", vg_host_collect_stat},
    {"time", vg_host_collect_time},
    {"uname", vg_host_collect_uname},
    {"vmstat", vg_host_collect_vmstat},
};
#define NCOLLECTORS (sizeof collectors / sizeof *collectors)

struct vg_host {
    vg_scrape_commit_fn commit;
    vg_host_ctx ctx;
    int ctx_ok;
    int64_t interval_ms;
    vg_host_hooks hooks;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_ok, running, stop;
    pthread_t thread;
    vg_metric_t *errors[NCOLLECTORS], *duration, *collections, *samples;
};

static void register_metrics(vg_host_t *h, vg_metrics_t *m)
{
    char l[64];
    for (size_t i = 0; i < NCOLLECTORS; i++) {
        snprintf(l, sizeof l, "collector=\"%s\"", collectors[i].name);
        h->errors[i] = vg_metrics_counter(
            m, "vigil_host_metrics_errors_total",
            "Malformed lines, oversized files and rejected samples, by host collector.", l);
    }
    h->duration = vg_metrics_gauge(m, "vigil_host_metrics_collection_duration_seconds",
                                   "Duration of the last host metrics collection.", NULL);
    h->collections = vg_metrics_counter(m, "vigil_host_metrics_collections_total",
                                        "Host metrics collections run.", NULL);
    h->samples = vg_metrics_counter(m, "vigil_host_metrics_samples_total",
                                    "Samples emitted by host metrics collections.", NULL);
}

vg_err_t vg_host_new(const vg_agent_config_t *cfg, vg_scrape_emit_fn emit,
                     vg_scrape_commit_fn commit, void *ud, vg_metrics_t *metrics, vg_host_t **out,
                     vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    vg_host_t *h = vg_calloc(1, sizeof *h);
    if (!h) return vg_error_set(err, VG_ENOMEM, "out of memory");
    if ((rc = vg_host_ctx_init(&h->ctx, err))) goto fail;
    h->ctx_ok = 1;
    h->ctx.emit = emit;
    h->ctx.ud = ud;
    h->ctx.job = cfg->host_metrics_job ? cfg->host_metrics_job : "node";
    h->ctx.instance = cfg->host_metrics_instance ? cfg->host_metrics_instance : cfg->node;
    if (cfg->host_proc_path) h->ctx.proc = cfg->host_proc_path;
    if (cfg->host_sys_path) h->ctx.sys = cfg->host_sys_path;
    h->commit = commit;
    h->interval_ms =
        cfg->host_metrics_interval_ms > 0 ? cfg->host_metrics_interval_ms : cfg->scrape_interval_ms;
    if (h->interval_ms <= 0) h->interval_ms = 30000;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&h->mu, NULL) || pthread_cond_init(&h->cv, &ca)) {
        pthread_condattr_destroy(&ca);
        rc = vg_error_set(err, VG_ENOMEM, "host: cannot create the thread's lock");
        goto fail;
    }
    pthread_condattr_destroy(&ca);
    h->sync_ok = 1;
    if (metrics) register_metrics(h, metrics);
    *out = h;
    return VG_OK;
fail:
    vg_host_free(h);
    return rc;
}

void vg_host_set_hooks(vg_host_t *h, const vg_host_hooks *hooks)
{
    h->hooks = *hooks;
    h->ctx.statvfs = hooks->statvfs;
    h->ctx.hook_ud = hooks->ud;
    if (hooks->page_size > 0) h->ctx.page_size = hooks->page_size;
    if (hooks->clk_tck > 0) h->ctx.clk_tck = hooks->clk_tck;
}

static void run_collector(vg_host_t *h, size_t i)
{
    vg_host_ctx *c = &h->ctx;
    c->errors = 0;
    int64_t t0 = vg_clock_mono_us();
    vg_err_t rc = collectors[i].fn(c);
    double dt = (double)(vg_clock_mono_us() - t0) / 1e6;
    vg_host_emit1(c, "node_scrape_collector_duration_seconds", dt, "collector", collectors[i].name);
    vg_host_emit1(c, "node_scrape_collector_success", rc == VG_OK, "collector", collectors[i].name);
    if (c->errors) vg_metric_add(h->errors[i], (double)c->errors);
}

static void collect(vg_host_t *h)
{
    int64_t t0 = vg_clock_mono_us();
    vg_host_ctx *c = &h->ctx;
    c->ts_ms = h->hooks.now_ms ? h->hooks.now_ms(h->hooks.ud) : vg_clock_wall_ms();
    c->samples = 0;
    for (size_t i = 0; i < NCOLLECTORS; i++) run_collector(h, i);
    vg_host_emit(c, "up", 1, NULL, 0);
    if (h->commit) h->commit(c->ud);
    vg_metric_add(h->samples, (double)c->samples);
    vg_metric_inc(h->collections);
    vg_metric_set(h->duration, (double)(vg_clock_mono_us() - t0) / 1e6);
}

vg_err_t vg_host_collect_once(vg_host_t *h, vg_error *err)
{
    pthread_mutex_lock(&h->mu);
    int running = h->running;
    pthread_mutex_unlock(&h->mu);
    if (running) return vg_error_set(err, VG_EINVAL, "host: the collection thread is running");
    collect(h);
    return VG_OK;
}

static void *host_main(void *arg)
{
    vg_host_t *h = arg;
    int64_t next = vg_clock_mono_ms();
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->mu);
        collect(h);
        int64_t now = vg_clock_mono_ms();
        next += h->interval_ms;
        if (next <= now) next = now + h->interval_ms; /* overran: skip, do not burst */
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
        pthread_mutex_lock(&h->mu);
        while (!h->stop && vg_clock_mono_ms() < next) pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

vg_err_t vg_host_start(vg_host_t *h, vg_error *err)
{
    pthread_mutex_lock(&h->mu);
    if (h->running) {
        pthread_mutex_unlock(&h->mu);
        return vg_error_set(err, VG_EINVAL, "host: already started");
    }
    int e = pthread_create(&h->thread, NULL, host_main, h);
    if (!e) h->running = 1;
    pthread_mutex_unlock(&h->mu);
    if (e) return vg_error_set(err, VG_ENOMEM, "host: cannot start the collection thread");
    vg_log_info("host", "collecting host metrics", "job=%s instance=%s interval_ms=%lld proc=%s",
                h->ctx.job, h->ctx.instance, (long long)h->interval_ms, h->ctx.proc);
    return VG_OK;
}

void vg_host_free(vg_host_t *h)
{
    if (!h) return;
    if (h->sync_ok) {
        pthread_mutex_lock(&h->mu);
        int running = h->running;
        h->stop = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        if (running) pthread_join(h->thread, NULL);
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
    }
    if (h->ctx_ok) vg_host_ctx_fini(&h->ctx);
    vg_free(h);
}
