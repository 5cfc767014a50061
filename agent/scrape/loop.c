/*
 * loop.c - the scraper: targets, one libcurl multi handle, one thread.
 *
 * Why one thread and one multi handle: a node agent scrapes tens of local
 * endpoints, and libcurl's multi interface runs all their requests
 * concurrently from a single poll loop, so no thread per target, no locks
 * on target state, and the callbacks always run on the same thread. Each
 * target keeps its own easy handle for its lifetime, so its options are set
 * once and the multi handle's connection cache keeps the connection warm
 * between scrapes.
 *
 * Scheduling: target i first fires at the next wall-clock instant that is
 * congruent to its offset modulo its interval (see target.c), then every
 * interval on the monotonic clock. A scrape still running when the next is
 * due skips that slot, as Prometheus does. The loop sleeps in
 * curl_multi_poll until the earliest due time (curl shortens the wait for
 * its own timers) and vg_scraper_free wakes it with curl_multi_wakeup.
 * curl is driven after every poll, and before it only when a scrape was just
 * started: each curl_multi_perform visits every running transfer, and the
 * loop wakes many times per body.
 *
 * Discovery shares the thread: the inotify fd of file_sd is polled beside
 * curl's sockets, and when it fires (or a job's refresh_interval passes)
 * the job's files are re-checked and its targets re-synced (sync.c), so
 * targets only ever change on the thread that scrapes them.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "scrape/file_sd.h"
#include "scrape/scrape_int.h"
#include "vigil/clock.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define MAX_POLL_MS 1000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- per-target easy handle ---- */

size_t vg_scrape_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    vg_scrape_target_t *t = ud;
    size_t n = size * nmemb;
    vg_err_t rc = vg_buf_append(&t->body, data, n);
    if (rc == VG_ETOOLARGE)
        t->too_large = 1;
    else if (rc)
        t->nomem = 1;
    return rc ? 0 : n; /* a short count makes curl abort the transfer */
}

/* ---- construction ---- */

static void register_metrics(vg_scraper_t *s, vg_metrics_t *m)
{
    if (!m) return;
    s->m_scrapes = vg_metrics_counter(m, "vigil_scrapes_total", "Scrapes attempted.", NULL);
    s->m_samples = vg_metrics_counter(m, "vigil_scrape_samples_total",
                                      "Samples read from scrape bodies.", NULL);
    s->m_emit_errors = vg_metrics_counter(m, "vigil_scrape_emit_errors_total",
                                          "Samples the pipeline refused to take.", NULL);
    s->m_dups = vg_metrics_counter(m, "vigil_scrape_samples_dropped_total",
                                   "Scraped samples dropped.", "reason=\"duplicate\"");
    for (int r = 1; r < VG_SCRAPE_REASON__COUNT; r++) {
        char lab[64];
        snprintf(lab, sizeof lab, "reason=\"%s\"", vg_scrape_reason_name((vg_scrape_reason)r));
        s->m_failures[r] =
            vg_metrics_counter(m, "vigil_scrape_failures_total", "Failed scrapes by reason.", lab);
    }
    s->m_relabel_dropped = vg_metrics_counter(m, "vigil_scrape_samples_dropped_total",
                                              "Scraped samples dropped.", "reason=\"relabel\"");
    s->m_sd_errors = vg_metrics_counter(m, "vigil_file_sd_read_errors_total",
                                        "file_sd files that could not be read or parsed.", NULL);
    s->m_target_errors = vg_metrics_counter(
        m, "vigil_scrape_target_errors_total",
        "Discovered targets skipped because they cannot be scraped (after relabeling).", NULL);
    s->m_targets = vg_metrics_gauge(m, "vigil_scrape_targets", "Targets being scraped.", NULL);
}

/* Jobs, file_sd trackers (read once now), then every job's targets. */
static vg_err_t build_jobs(vg_scraper_t *s, const vg_agent_config_t *cfg, vg_error *err)
{
    s->njobs = cfg->nscrape_configs;
    if (s->njobs && !(s->jobs = vg_calloc(s->njobs, sizeof *s->jobs)))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t j = 0; j < s->njobs; j++) {
        vg_scrape_job *job = &s->jobs[j];
        job->sc = &cfg->scrape_configs[j];
        if (!job->sc->nfile_sd) continue;
        if (s->inotify_fd < 0) s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        vg_err_t rc = vg_file_sd_new(job->sc, s->inotify_fd, s->m_sd_errors, &job->sd, err);
        if (rc) return rc;
        vg_file_sd_refresh(job->sd);
    }
    for (size_t j = 0; j < s->njobs; j++) {
        vg_err_t rc = vg_scrape_sync_job(s, j, 1, err);
        if (rc) return rc;
    }
    return VG_OK;
}

vg_err_t vg_scraper_new(const vg_agent_config_t *cfg, vg_scrape_emit_fn emit,
                        vg_scrape_commit_fn commit, void *ud, vg_metrics_t *metrics,
                        vg_scraper_t **out, vg_error *err)
{
    *out = NULL;
    if (!cfg || !emit) return vg_error_set(err, VG_EINVAL, "scrape: config and emit are required");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) return vg_error_set(err, VG_EINTERNAL, "curl_global_init failed");
    vg_scraper_t *s = vg_calloc(1, sizeof *s);
    if (!s) return vg_error_set(err, VG_ENOMEM, "out of memory");
    s->inotify_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->cfg = cfg;
    s->sink = (vg_scrape_sink){.emit = emit, .commit = commit, .ud = ud};
    vg_err_t rc = vg_scrape_sink_init(&s->sink);
    s->multi = curl_multi_init();
    register_metrics(s, metrics);
    rc = !rc && s->multi ? build_jobs(s, cfg, err) : vg_error_set(err, VG_ENOMEM, "out of memory");
    if (rc) {
        vg_scraper_free(s);
        return rc;
    }
    *out = s;
    return VG_OK;
}

vg_err_t vg_scraper_set_emit_encoded(vg_scraper_t *s, vg_scrape_emit_encoded_fn fn)
{
    if (!s || s->started) return VG_EINVAL;
    s->sink.emit_enc = fn;
    return vg_scrape_encode_set_external(&s->sink, fn ? s->cfg->external_labels : NULL,
                                         fn ? s->cfg->nexternal_labels : 0);
}

vg_err_t vg_scraper_set_emit_into(vg_scraper_t *s, vg_scrape_into_begin_fn begin,
                                  vg_scrape_into_end_fn end)
{
    if (!s || s->started || !s->sink.emit_enc || !begin != !end) return VG_EINVAL;
    s->sink.into_begin = begin;
    s->sink.into_end = end;
    return VG_OK;
}

/* ---- one scrape ---- */

/* Body buffers are lent to targets only while a request is in flight:
 * a few concurrent scrapes need a few buffers, not one per target. */
static void body_take(vg_scraper_t *s, vg_scrape_target_t *t)
{
    if (!t->body.data && s->npool) {
        t->body = s->pool[--s->npool];
        t->body.max = t->body_cap;
    }
    vg_buf_reset(&t->body);
    if (t->body_hint && t->body_hint <= t->body_cap) /* grow once, not by doubling */
        (void)vg_buf_reserve(&t->body, t->body_hint);
}

static void body_give(vg_scraper_t *s, vg_scrape_target_t *t)
{
    t->body_hint = t->body.len ? t->body.len + t->body.len / 8 + 1024 : t->body_hint;
    if (t->body.data && t->body.cap <= VG_SCRAPE_POOL_BUF_MAX && s->npool < VG_SCRAPE_POOL)
        s->pool[s->npool++] = t->body;
    else
        vg_buf_free(&t->body);
    vg_buf_init(&t->body, t->body_cap);
}

static vg_err_t start_scrape(vg_scraper_t *s, vg_scrape_target_t *t, char *msg, size_t msgn)
{
    body_take(s, t);
    t->too_large = t->nomem = 0;
    t->errbuf[0] = '\0';
    t->start_ms = vg_clock_wall_ms();
    t->start_mono_us = vg_clock_mono_us();
    vg_err_t rc = vg_scrape_http_refresh(t, msg, msgn);
    if (rc) return rc;
    if (curl_multi_add_handle(s->multi, t->easy) != CURLM_OK) {
        snprintf(msg, msgn, "could not start the request");
        return VG_EINTERNAL;
    }
    t->busy = 1;
    vg_metric_inc(s->m_scrapes);
    return VG_OK;
}

/* Classify the transfer; VG_SCRAPE_OK means a 200 with a body to parse. */
static vg_scrape_reason transfer_result(vg_scrape_target_t *t, CURLcode cc, vg_scrape_result *r)
{
    long status = 0;
    if (cc == CURLE_OK) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status == 200) return VG_SCRAPE_OK;
    if (cc == CURLE_OK)
        snprintf(r->msg, sizeof r->msg, "server returned HTTP status %ld", status);
    else if (t->too_large)
        snprintf(r->msg, sizeof r->msg, "body size limit exceeded (%zu bytes)", t->body_cap);
    else
        snprintf(r->msg, sizeof r->msg, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
    if (cc == CURLE_OK) return VG_SCRAPE_ERR_STATUS;
    if (t->too_large) return VG_SCRAPE_ERR_BODY_SIZE;
    if (t->nomem) return VG_SCRAPE_ERR_NOMEM;
    return cc == CURLE_OPERATION_TIMEDOUT ? VG_SCRAPE_ERR_TIMEOUT : VG_SCRAPE_ERR_HTTP;
}

/* Log once per change of health, with the reason on the way down. */
static void log_health(vg_scrape_target_t *t, const vg_scrape_result *r)
{
    int up = r->reason == VG_SCRAPE_OK, was = atomic_exchange(&t->health, up);
    if (up == was || (up && was < 0)) return;
    char job[128], inst[256], msg[400];
    vg_logq(job, sizeof job, t->sc->job_name ? t->sc->job_name : "");
    vg_logq(inst, sizeof inst, t->instance);
    if (up) {
        vg_log_info("scrape", "scrape recovered", "job=%s target=%s", job, inst);
        return;
    }
    vg_logq(msg, sizeof msg, r->msg);
    vg_log_warn("scrape", "scrape failed", "job=%s target=%s reason=%s err=%s", job, inst,
                vg_scrape_reason_name(r->reason), msg);
}

static void finish_scrape(vg_scraper_t *s, vg_scrape_target_t *t, CURLcode cc)
{
    vg_scrape_result r;
    memset(&r, 0, sizeof r);
    curl_multi_remove_handle(s->multi, t->easy);
    t->busy = 0;
    r.reason = transfer_result(t, cc, &r);
    if (r.reason == VG_SCRAPE_OK) {
        const char *ctype = NULL;
        curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
        vg_scrape_parse(t, &s->sink, t->body.data ? t->body.data : "", t->body.len, ctype, &r);
    }
    double dur = (double)(vg_clock_mono_us() - t->start_mono_us) / 1e6;
    size_t emit_err = s->sink.emit_errors;
    vg_scrape_report(t, &s->sink, &r, dur);
    vg_metric_add(s->m_samples, (double)r.scraped);
    vg_metric_add(s->m_dups, (double)r.dropped_dup);
    vg_metric_add(s->m_relabel_dropped, (double)r.dropped_relabel);
    vg_metric_add(s->m_emit_errors, (double)(s->sink.emit_errors - emit_err));
    if (r.reason != VG_SCRAPE_OK) vg_metric_inc(s->m_failures[r.reason]);
    log_health(t, &r);
    body_give(s, t);
}

/* Run curl and hand every finished transfer to finish_scrape. */
static void drive(vg_scraper_t *s)
{
    int running = 0, left = 0;
    curl_multi_perform(s->multi, &running);
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        vg_scrape_target_t *t = (vg_scrape_target_t *)priv;
        CURLcode cc = m->data.result; /* read before remove_handle invalidates m */
        if (t) finish_scrape(s, t, cc);
    }
}

/* Keep one idle connection per target. libcurl's default cache holds four
 * per handle in flight, and with scrapes spread over the interval only a
 * few are, so every scrape would reconnect (and the target see a new TCP
 * connection each time, unlike with Prometheus). */
static void size_conn_cache(vg_scraper_t *s)
{
    if (s->maxconn == s->ntargets + 4) return;
    s->maxconn = s->ntargets + 4;
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->maxconn);
}

/* A scrape that could not even start counts as a transport failure.
 * Returns 1 when a request was started. */
static int start_or_fail(vg_scraper_t *s, vg_scrape_target_t *t)
{
    vg_scrape_result r;
    memset(&r, 0, sizeof r);
    if (start_scrape(s, t, r.msg, sizeof r.msg) == VG_OK) return 1;
    body_give(s, t);
    r.reason = VG_SCRAPE_ERR_HTTP;
    vg_scrape_report(t, &s->sink, &r, 0);
    vg_metric_inc(s->m_failures[r.reason]);
    log_health(t, &r);
    return 0;
}

vg_err_t vg_scraper_run_once(vg_scraper_t *s, vg_error *err)
{
    if (!s) return vg_error_set(err, VG_EINVAL, "scrape: NULL scraper");
    if (s->started) return vg_error_set(err, VG_EINVAL, "scrape: the scrape thread is running");
    size_conn_cache(s);
    for (size_t i = 0; i < s->ntargets; i++) start_or_fail(s, s->targets[i]);
    for (;;) {
        drive(s);
        int busy = 0;
        for (size_t i = 0; i < s->ntargets; i++) busy |= s->targets[i]->busy;
        if (!busy) break;
        curl_multi_poll(s->multi, NULL, 0, 100, NULL);
    }
    return VG_OK;
}

/* ---- the thread ---- */

/* The targets' next_ms copied into one array, rebuilt whenever next_due was
 * reset (start, and every target sync): the walk below reads 8 bytes per
 * target instead of a cache miss on each target's struct (that walk, 20 a
 * second over 200 targets, was ~1.3% of the agent). 0 on ENOMEM. */
static int due_mirror(vg_scraper_t *s)
{
    if (s->next_due && s->due_n == s->ntargets) return 1;
    if (s->ntargets > s->due_cap) {
        int64_t *d = vg_realloc(s->due, s->ntargets * sizeof *d);
        if (!d) {
            s->due_n = 0; /* rebuilt on the next walk */
            return 0;
        }
        s->due = d;
        s->due_cap = s->ntargets;
    }
    for (size_t i = 0; i < s->ntargets; i++) s->due[i] = s->targets[i]->next_ms;
    s->due_n = s->ntargets;
    return 1;
}

/* Fire target i if it is due; returns its next due time. */
static int64_t fire(vg_scraper_t *s, size_t i, int64_t now, int *started)
{
    vg_scrape_target_t *t = s->targets[i];
    if (!t->busy) *started += start_or_fail(s, t);
    int64_t late = now - t->next_ms;
    t->next_ms += (late / t->interval_ms + 1) * t->interval_ms; /* skip missed slots */
    return t->next_ms;
}

/* Start what is due (*started counts the requests started); return ms until
 * the next due scrape (capped). The loop wakes for every chunk of every body,
 * so the earliest due time is kept and the targets are only walked when it
 * has come. */
static int64_t start_due(vg_scraper_t *s, int *started)
{
    int64_t now = vg_clock_mono_ms(), wait = MAX_POLL_MS;
    if (s->next_due && now < s->next_due)
        return s->next_due - now < wait ? s->next_due - now : wait;
    size_conn_cache(s);
    int mirror = due_mirror(s);
    int64_t due = INT64_MAX;
    for (size_t i = 0; i < s->ntargets; i++) {
        int64_t next = mirror ? s->due[i] : s->targets[i]->next_ms;
        if (now >= next) {
            next = fire(s, i, now, started);
            if (mirror) s->due[i] = next;
        }
        if (next - now < wait) wait = next - now;
        if (next < due) due = next;
    }
    s->next_due = s->ntargets ? due : 0;
    return wait < 0 ? 0 : wait;
}

/* Drain inotify events; we only need to know that something happened. */
static void drain_inotify(int fd)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* Re-check the files of jobs that are due (or all, after an inotify event);
 * returns ms until the next refresh is due. */
static int64_t discover(vg_scraper_t *s, int fired)
{
    int64_t now = vg_clock_mono_ms(), wait = MAX_POLL_MS;
    for (size_t j = 0; j < s->njobs; j++) {
        vg_scrape_job *job = &s->jobs[j];
        if (!job->sd) continue;
        if (fired || now >= job->next_refresh_ms) {
            job->next_refresh_ms = now + vg_file_sd_interval(job->sd);
            vg_error err = {0};
            if (vg_file_sd_refresh(job->sd) && vg_scrape_sync_job(s, j, 0, &err)) {
                char q[600];
                vg_log_warn("scrape", "target update failed; keeping the running targets", "err=%s",
                            vg_logq(q, sizeof q, err.msg));
            }
        }
        if (job->next_refresh_ms - now < wait) wait = job->next_refresh_ms - now;
    }
    return wait < 0 ? 0 : wait;
}

static void *scrape_main(void *arg)
{
    vg_scraper_t *s = arg;
    int64_t mono = vg_clock_mono_ms(), wall = vg_clock_wall_ms();
    for (size_t i = 0; i < s->ntargets; i++)
        s->targets[i]->next_ms = mono + vg_scrape_target_first_delay(s->targets[i], wall);
    s->next_due = 0;
    for (size_t j = 0; j < s->njobs; j++)
        if (s->jobs[j].sd) s->jobs[j].next_refresh_ms = mono + vg_file_sd_interval(s->jobs[j].sd);
    vg_log_info("scrape", "scrape loop started", "targets=%zu", s->ntargets);
    int fired = 0;
    while (!atomic_load(&s->stop)) {
        int started = 0;
        int64_t sd_wait = discover(s, fired), wait = start_due(s, &started);
        if (sd_wait < wait) wait = sd_wait;
        if (started) drive(s); /* the rest was driven right after the poll */
        if (atomic_load(&s->stop)) break;
        struct curl_waitfd wfd = {.fd = s->inotify_fd, .events = CURL_WAIT_POLLIN};
        curl_multi_poll(s->multi, s->inotify_fd >= 0 ? &wfd : NULL, s->inotify_fd >= 0, (int)wait,
                        NULL);
        fired = s->inotify_fd >= 0 && (wfd.revents & CURL_WAIT_POLLIN);
        if (fired) drain_inotify(s->inotify_fd);
        drive(s);
    }
    return NULL;
}

vg_err_t vg_scraper_start(vg_scraper_t *s, vg_error *err)
{
    if (!s) return vg_error_set(err, VG_EINVAL, "scrape: NULL scraper");
    if (s->started) return VG_OK;
    if (pthread_create(&s->thread, NULL, scrape_main, s) != 0)
        return vg_error_set(err, VG_EINTERNAL, "scrape: cannot start the scrape thread");
    s->started = 1;
    return VG_OK;
}

void vg_scraper_free(vg_scraper_t *s)
{
    if (!s) return;
    if (s->started) {
        atomic_store(&s->stop, 1);
        curl_multi_wakeup(s->multi);
        pthread_join(s->thread, NULL);
    }
    for (size_t i = 0; s->targets && i < s->ntargets; i++)
        vg_scrape_target_release(s, s->targets[i]);
    vg_free(s->targets);
    for (size_t j = 0; j < s->njobs; j++) vg_file_sd_free(s->jobs[j].sd);
    vg_free(s->jobs);
    if (s->inotify_fd >= 0) close(s->inotify_fd);
    pthread_mutex_destroy(&s->mu);
    if (s->multi) curl_multi_cleanup(s->multi);
    vg_scrape_sink_destroy(&s->sink);
    for (size_t i = 0; i < s->npool; i++) vg_buf_free(&s->pool[i]);
    vg_free(s->due);
    vg_free(s);
}

/* ---- introspection ---- */

/* The introspection calls take the mutex: the scrape thread may be
 * swapping the target array under them. */
size_t vg_scraper_ntargets(const vg_scraper_t *s)
{
    if (!s) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    size_t n = s->ntargets;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return n;
}

const char *vg_scraper_target_url(const vg_scraper_t *s, size_t i)
{
    if (!s) return NULL;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    const char *u = i < s->ntargets ? s->targets[i]->url : NULL;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return u;
}

int vg_scraper_target_health(const vg_scraper_t *s, size_t i)
{
    if (!s) return -1;
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    int h = i < s->ntargets ? atomic_load(&s->targets[i]->health) : -1;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    return h;
}
