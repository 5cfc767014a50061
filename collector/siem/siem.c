/*
 * siem.c - the SIEM forwarder (siem.h): one thread per output between the
 * audit feed and the output's send().
 *
 * Each thread waits on the feed's condvar (no polling when idle), reads up
 * to batch_records from its cursor, sends, and only on VG_OK writes the new
 * cursor (atomically; the feed deletes files every cursor has passed). A
 * failed send is retried from the same cursor after an exponential backoff
 * with jitter (100 ms doubling to 30 s), behind a circuit breaker (5 failures
 * open it for 30 s, then 3 half-open probes, 2 successes close it). A send
 * the receiver refused for good (VG_EPROTO, e.g. HEC 400) is logged, its
 * records counted in vigil_siem_records_dropped_total and skipped, so one
 * bad record cannot wedge the queue; records lost to audit.siem_buffer_bytes
 * are counted there too.
 */
#include "siem/siem.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auditstore/feed.h"
#include "vigil/alloc.h"
#include "vigil/breaker.h"
#include "vigil/clock.h"
#include "vigil/log.h"

#define COMP           "siem"
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000


static const vg_breaker_names breaker_names = {
    .gauge = "vigil_siem_breaker_state",
    .opens = "vigil_siem_breaker_opens_total",
    .label = "output",
    .log = COMP,
};

typedef struct fwd {
    struct vg_siem *s;
    vg_siem_output_conf conf;
    char namebuf[64];
    const vg_siem_output_ops *ops;
    void *state;
    pthread_t thr;
    int started;
    vg_feed_cursor cur;
    vg_breaker_t br;
    int64_t backoff_ms;
    unsigned seed;
    vg_metric_t *m_sent, *m_fail, *m_drop, *m_queue;
} fwd;

struct vg_siem {
    struct vg_feed *feed;
    fwd *f;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

static int stopping(vg_siem_t *s)
{
    pthread_mutex_lock(&s->mu);
    int st = s->stop;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Sleep ms unless stopped first. */
static void nap(vg_siem_t *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_mutex_lock(&s->mu);
    while (!s->stop)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&s->mu);
}

static void advance(fwd *f, const vg_feed_cursor *next)
{
    vg_error err = {0};
    f->cur = *next;
    if (vg_feed_cursor_save(f->s->feed, f->conf.name, &f->cur, &err))
        vg_log_warn(COMP, "cursor not saved; records may be sent again after a restart",
                    "output=%s err=\"%s\"", f->conf.name, err.msg);
}

static void failed(fwd *f, const vg_error *err)
{
    int64_t now = vg_clock_mono_ms();
    vg_metric_inc(f->m_fail);
    vg_breaker_failure(&f->br, now);
    if (f->backoff_ms == BACKOFF_MIN_MS || f->backoff_ms == BACKOFF_MAX_MS)
        vg_log_warn(COMP, "send failed; retrying with backoff",
                    "output=%s backoff_ms=%" PRId64 " err=\"%s\"", f->conf.name, f->backoff_ms,
                    err->msg);
    int64_t d = f->backoff_ms / 2 + (int64_t)(rand_r(&f->seed) % (unsigned)(f->backoff_ms / 2 + 1));
    nap(f->s, d);
    f->backoff_ms = f->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : f->backoff_ms * 2;
}

/* Send one batch read from the cursor; the cursor moves only on success. */
static void send_batch(fwd *f, vg_feed_batch *b)
{
    vg_error err = {0};
    if (vg_feed_read(f->s->feed, &f->cur, f->conf.batch_records, b, &err)) {
        vg_log_warn(COMP, "audit feed read failed", "output=%s err=\"%s\"", f->conf.name, err.msg);
        nap(f->s, 1000);
        return;
    }
    if (b->dropped) vg_metric_add(f->m_drop, (double)b->dropped);
    if (!b->n) {
        if (b->next.seq != f->cur.seq || b->next.file != f->cur.file)
            advance(f, &b->next);
        else
            nap(f->s, 100); /* nothing readable yet */
        return;
    }
    vg_err_t rc = f->ops->send(f->state, b->recs, b->n, &err);
    if (rc && rc != VG_EPROTO) return failed(f, &err);
    vg_breaker_success(&f->br, vg_clock_mono_ms());
    f->backoff_ms = BACKOFF_MIN_MS;
    if (rc == VG_EPROTO) {
        vg_log_warn(COMP, "receiver refused records for good: dropped",
                    "output=%s records=%zu "
                    "err=\"%s\"",
                    f->conf.name, b->n, err.msg);
        vg_metric_add(f->m_drop, (double)b->n);
    } else
        vg_metric_add(f->m_sent, (double)b->n);
    advance(f, &b->next);
}

static void *fwd_main(void *arg)
{
    fwd *f = arg;
    vg_feed_batch b = {0};
    while (!stopping(f->s)) {
        vg_metric_set(f->m_queue, (double)(vg_feed_next_seq(f->s->feed) - f->cur.seq));
        if (!vg_feed_wait(f->s->feed, &f->cur, 5000)) continue;
        int64_t now = vg_clock_mono_ms();
        if (!vg_breaker_allow(&f->br, now)) {
            int64_t wait = vg_breaker_reopen_at(&f->br) - now;
            nap(f->s, wait > 0 ? wait : 100);
            continue;
        }
        send_batch(f, &b);
    }
    vg_feed_batch_free(&b);
    return NULL;
}

static vg_err_t fwd_init(vg_siem_t *s, fwd *f, const vg_siem_cfg *c, size_t i, vg_metrics_t *m,
                         vg_error *err)
{
    f->s = s;
    vg_siem_conf_from_cfg(c, i, f->namebuf, sizeof(f->namebuf), &f->conf);
    f->ops = !strcmp(c->type, "splunk_hec") ? &vg_siem_out_hec : &vg_siem_out_syslog;
    if (!f->ops)
        return vg_error_set(err, VG_EUNSUPPORTED, "siem %s: the %s output is not in this build",
                            f->conf.name, c->type);
    for (size_t j = 0; j < i; j++)
        if (!strcmp(s->f[j].conf.name, f->conf.name))
            return vg_error_set(err, VG_ECONFIG,
                                "siem[%zu]: name %s is used twice: names must "
                                "be unique",
                                i, f->conf.name);
    char lab[128];
    snprintf(lab, sizeof(lab), "output=\"%s\"", f->conf.name);
    f->m_sent = vg_metrics_counter(m, "vigil_siem_records_sent_total",
                                   "Audit records the SIEM output delivered.", lab);
    f->m_fail = vg_metrics_counter(m, "vigil_siem_send_failures_total",
                                   "Failed sends to the SIEM output (each retried).", lab);
    f->m_drop = vg_metrics_counter(m, "vigil_siem_records_dropped_total",
                                   "Audit records never delivered to the SIEM output (buffer cap "
                                   "or refused by the receiver).",
                                   lab);
    f->m_queue = vg_metrics_gauge(m, "vigil_siem_queue_length",
                                  "Audit records waiting for the SIEM output.", lab);
    vg_breaker_init(&f->br, NULL, &breaker_names, f->conf.name, m);
    f->backoff_ms = BACKOFF_MIN_MS;
    f->seed = (unsigned)(vg_clock_mono_us() ^ (uint64_t)i);
    vg_err_t rc = f->ops->open(&f->conf, &f->state, err);
    if (!rc) rc = vg_feed_cursor_load(s->feed, f->conf.name, &f->cur, err);
    return rc;
}

vg_err_t vg_siem_new(const vg_siem_cfg *outs, size_t n, struct vg_feed *feed, vg_metrics_t *m,
                     vg_siem_t **out, vg_error *err)
{
    vg_siem_t *s = vg_calloc(1, sizeof(*s));
    if (!s || !(s->f = vg_calloc(n ? n : 1, sizeof(*s->f)))) {
        vg_free(s);
        return vg_error_set(err, VG_ENOMEM, "siem: out of memory");
    }
    s->feed = feed, s->n = n;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) rc = fwd_init(s, &s->f[i], &outs[i], i, m, err);
    if (!rc) rc = vg_feed_forget_unknown(feed, err);
    for (size_t i = 0; i < n && !rc; i++) {
        if (pthread_create(&s->f[i].thr, NULL, fwd_main, &s->f[i]) != 0)
            rc = vg_error_set(err, VG_EINTERNAL, "siem: cannot start a forwarder thread");
        else
            s->f[i].started = 1;
        vg_log_info(COMP, "forwarder started", "output=%s type=%s from_seq=%" PRIu64,
                    s->f[i].conf.name, s->f[i].conf.type, s->f[i].cur.seq);
    }
    if (rc) {
        vg_siem_free(s);
        return rc;
    }
    *out = s;
    return VG_OK;
}

void vg_siem_free(vg_siem_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    vg_feed_wake(s->feed);
    for (size_t i = 0; i < s->n; i++) {
        if (s->f[i].started) pthread_join(s->f[i].thr, NULL);
        if (s->f[i].state) s->f[i].ops->close(s->f[i].state);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    vg_free(s->f);
    vg_free(s);
}
