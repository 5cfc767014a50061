/*
 * amsender.c - the external Alertmanager sender.
 *
 * Alerts are encoded to JSON when queued, so the queue owns plain strings
 * and the caller's arrays can go away at once. A ring of strings with a
 * fixed capacity gives drop-oldest for free. One thread drains up to 64 at
 * a time and POSTs the batch to every target; as in Prometheus, a batch
 * counts as sent when at least one Alertmanager took it, and a failed batch
 * is not retried (the evaluator's next resend carries the current state).
 */
#include "notify/amsender.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "notify/notify.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/httpc.h"
#include "vigil/log.h"

struct vg_amsender {
    const vg_amconfig_t *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char **ring;
    size_t cap, head, n;
    uint64_t dropped;
    int stop, started;
    pthread_t thread;
    vg_metric_t *m_sent, *m_errors, *m_dropped, *m_batches;
};

vg_err_t vg_amsender_encode(const vg_alert_t *a, vg_buf *b)
{
    vg_err_t rc = vg_buf_puts(b, "{\"labels\":");
    if (!rc) rc = vg_notify_json_labels(b, a->labels, a->nlabels);
    if (!rc) rc = vg_buf_puts(b, ",\"annotations\":");
    if (!rc) rc = vg_notify_json_labels(b, a->annotations, a->nannotations);
    if (!rc && a->starts_at) rc = vg_buf_puts(b, ",\"startsAt\":\"");
    if (!rc && a->starts_at) rc = vg_notify_time(b, a->starts_at);
    if (!rc && a->starts_at) rc = vg_buf_putc(b, '"');
    if (!rc && a->ends_at) rc = vg_buf_puts(b, ",\"endsAt\":\"");
    if (!rc && a->ends_at) rc = vg_notify_time(b, a->ends_at);
    if (!rc && a->ends_at) rc = vg_buf_putc(b, '"');
    if (!rc && a->generator_url) rc = vg_buf_puts(b, ",\"generatorURL\":");
    if (!rc && a->generator_url)
        rc = vg_buf_json_str(b, a->generator_url, strlen(a->generator_url));
    return rc ? rc : vg_buf_putc(b, '}');
}

void vg_amsender_put(void *ud, const vg_alert_t *alerts, size_t n)
{
    vg_amsender_t *s = ud;
    for (size_t i = 0; i < n; i++) {
        vg_buf b;
        vg_buf_init(&b, 1u << 20);
        if (vg_amsender_encode(&alerts[i], &b)) {
            vg_buf_free(&b);
            vg_metric_inc(s->m_dropped);
            continue;
        }
        char *js = vg_buf_steal(&b, NULL);
        pthread_mutex_lock(&s->mu);
        if (s->n == s->cap) { /* full: drop the oldest */
            vg_free(s->ring[s->head]);
            s->head = (s->head + 1) % s->cap;
            s->n--;
            s->dropped++;
            vg_metric_inc(s->m_dropped);
        }
        s->ring[(s->head + s->n) % s->cap] = js;
        s->n++;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

size_t vg_amsender_take(vg_amsender_t *s, vg_buf *out)
{
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    vg_err_t rc = s->n ? vg_buf_putc(out, '[') : VG_OK;
    while (!rc && s->n && k < VG_AMSENDER_BATCH) {
        if (k) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_buf_puts(out, s->ring[s->head]);
        vg_free(s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->n--;
        k++;
    }
    pthread_mutex_unlock(&s->mu);
    if (k && !rc) rc = vg_buf_putc(out, ']');
    return rc ? 0 : k;
}

size_t vg_amsender_queued(vg_amsender_t *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

uint64_t vg_amsender_dropped(vg_amsender_t *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->dropped;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* POST body to one Alertmanager; 1 on a 2xx. */
static int send_to(vg_httpc_t *h, const vg_am_external_t *e, const char *target, const vg_buf *body)
{
    vg_buf url;
    vg_buf_init(&url, 4096);
    const char *hdrs[] = {"Content-Type: application/json", "User-Agent: Vigil", NULL};
    int ok = 0, status = 0;
    vg_error err = {0};
    if (!vg_buf_printf(&url, "%s://%s%s/api/v2/alerts", e->scheme ? e->scheme : "http", target,
                       e->path_prefix ? e->path_prefix : "")) {
        vg_httpc_req req = {.method = "POST",
                            .url = url.data,
                            .headers = hdrs,
                            .body = body->data,
                            .body_len = body->len,
                            .timeout_ms = e->timeout_ms ? e->timeout_ms : 10000};
        vg_err_t rc = vg_httpc_do(h, &req, &status, NULL, &err);
        ok = !rc && status / 100 == 2;
        if (!ok) {
            char q[600];
            vg_log_warn("amsender", "sending alerts failed", "url=%s status=%d err=%s", url.data,
                        status, vg_logq(q, sizeof(q), vg_error_msg(&err, rc)));
        }
    }
    vg_buf_free(&url);
    return ok;
}

static void send_batch(vg_amsender_t *s, vg_httpc_t *h, const vg_buf *body, size_t n)
{
    int any = 0;
    for (size_t i = 0; i < s->cfg->nalertmanagers; i++) {
        const vg_am_external_t *e = &s->cfg->alertmanagers[i];
        for (size_t t = 0; t < e->ntargets; t++) {
            int ok = send_to(h, e, e->targets[t], body);
            any |= ok;
            if (!ok) vg_metric_inc(s->m_errors);
        }
    }
    vg_metric_inc(s->m_batches);
    if (any)
        vg_metric_add(s->m_sent, (double)n);
    else
        vg_metric_add(s->m_dropped, (double)n);
}

static void *sender_main(void *arg)
{
    vg_amsender_t *s = arg;
    vg_httpc_t *h = vg_httpc_new();
    vg_buf body;
    vg_buf_init(&body, 0);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && s->n == 0) pthread_cond_wait(&s->cv, &s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop || !h) break;
        vg_buf_reset(&body);
        size_t n = vg_amsender_take(s, &body);
        if (n) send_batch(s, h, &body, n);
    }
    vg_buf_free(&body);
    vg_httpc_free(h);
    return NULL;
}

vg_err_t vg_amsender_new(const vg_amconfig_t *cfg, vg_metrics_t *m, size_t capacity,
                         vg_amsender_t **out, vg_error *err)
{
    *out = NULL;
    vg_amsender_t *s = vg_calloc(1, sizeof(*s));
    if (s) s->cap = capacity ? capacity : 10000;
    if (s) s->ring = vg_calloc(s->cap, sizeof(*s->ring));
    if (!s || !s->ring) {
        vg_free(s);
        return vg_error_set(err, VG_ENOMEM, "amsender: out of memory");
    }
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->m_sent = vg_metrics_counter(m, "vigil_alertmanager_alerts_sent_total",
                                   "Alerts taken by at least one external Alertmanager.", NULL);
    s->m_errors = vg_metrics_counter(m, "vigil_alertmanager_errors_total",
                                     "Failed POSTs to external Alertmanagers.", NULL);
    s->m_dropped =
        vg_metrics_counter(m, "vigil_alertmanager_alerts_dropped_total",
                           "Alerts dropped: queue full, or no Alertmanager took them.", NULL);
    s->m_batches = vg_metrics_counter(m, "vigil_alertmanager_batches_total",
                                      "Batches sent to external Alertmanagers.", NULL);
    *out = s;
    return VG_OK;
}

vg_err_t vg_amsender_start(vg_amsender_t *s, vg_error *err)
{
    if (pthread_create(&s->thread, NULL, sender_main, s))
        return vg_error_set(err, VG_EINTERNAL, "amsender: cannot start its thread");
    s->started = 1;
    return VG_OK;
}

void vg_amsender_free(vg_amsender_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->n; i++) vg_free(s->ring[(s->head + i) % s->cap]);
    vg_free(s->ring);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
}
