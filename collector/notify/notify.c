/*
 * notify.c - what every notifier shares: JSON pieces, the default title,
 * common labels, and delivery with Alertmanager's retry policy.
 *
 * Retry policy (Alertmanager's RetryStage): network errors, 5xx and 429 are
 * retried with exponential backoff and jitter until the flush's deadline
 * (the end of the group interval); any other status is final, because
 * sending the same bad request again cannot succeed. The wait between
 * attempts goes through a callback so shutdown interrupts it and unit tests
 * run without sleeping.
 */
#include "notify/notify.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

uint64_t vg_notify_fingerprint(const vg_label_t *l, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = l[i].name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = l[i].value; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

vg_err_t vg_notify_time(vg_buf *b, int64_t ms)
{
    if (ms == 0) return vg_buf_puts(b, "0001-01-01T00:00:00Z");
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char t[64];
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    vg_err_t rc = vg_buf_puts(b, t);
    if (!rc && frac) {
        char f[8];
        snprintf(f, sizeof(f), ".%03d", frac);
        size_t len = strlen(f);
        while (len > 1 && f[len - 1] == '0') f[--len] = 0;
        rc = vg_buf_puts(b, f);
    }
    return rc ? rc : vg_buf_putc(b, 'Z');
}

vg_err_t vg_notify_json_labels(vg_buf *b, const vg_label_t *l, size_t n)
{
    vg_err_t rc = vg_buf_putc(b, '{');
    for (size_t i = 0; !rc && i < n; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = vg_buf_json_str(b, l[i].name, strlen(l[i].name));
        if (!rc) rc = vg_buf_putc(b, ':');
        if (!rc) rc = vg_buf_json_str(b, l[i].value, strlen(l[i].value));
    }
    return rc ? rc : vg_buf_putc(b, '}');
}

size_t vg_notify_nfiring(const vg_notify_msg_t *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nalerts; i++) n += !m->alerts[i].resolved;
    return n;
}

vg_err_t vg_notify_common(const vg_notify_msg_t *m, int annotations, vg_label_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!m->nalerts) return VG_OK;
    const vg_notify_alert_t *a0 = &m->alerts[0];
    const vg_label_t *l = annotations ? a0->annotations : a0->labels;
    size_t nl = annotations ? a0->nannotations : a0->nlabels;
    vg_label_t *res = vg_calloc(nl ? nl : 1, sizeof(*res));
    if (!res) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nl; i++) {
        int all = 1;
        for (size_t j = 1; all && j < m->nalerts; j++) {
            const vg_notify_alert_t *a = &m->alerts[j];
            const char *v = annotations ? vg_labels_get(a->annotations, a->nannotations, l[i].name)
                                        : vg_labels_get(a->labels, a->nlabels, l[i].name);
            all = v && strcmp(v, l[i].value) == 0;
        }
        if (all) res[k++] = l[i];
    }
    *out = res;
    *n = k;
    return VG_OK;
}

/* "[FIRING:n] <group label values> (<other common label values>)" */
vg_err_t vg_notify_subject(vg_buf *b, const vg_notify_msg_t *m)
{
    size_t nf = vg_notify_nfiring(m);
    vg_err_t rc = nf ? vg_buf_printf(b, "[FIRING:%zu] ", nf) : vg_buf_puts(b, "[RESOLVED] ");
    for (size_t i = 0; !rc && i < m->ngroup_labels; i++)
        rc = vg_buf_printf(b, "%s%s", i ? " " : "", m->group_labels[i].value);
    vg_label_t *cl = NULL;
    size_t ncl = 0;
    if (!rc) rc = vg_notify_common(m, 0, &cl, &ncl);
    if (!rc && ncl > m->ngroup_labels) {
        rc = vg_buf_puts(b, " (");
        int first = 1;
        for (size_t i = 0; !rc && i < ncl; i++) {
            if (vg_labels_get(m->group_labels, m->ngroup_labels, cl[i].name)) continue;
            rc = vg_buf_printf(b, "%s%s", first ? "" : " ", cl[i].value);
            first = 0;
        }
        if (!rc) rc = vg_buf_putc(b, ')');
    }
    vg_free(cl);
    return rc;
}

vg_notify_verdict vg_notify_classify(vg_err_t transport, int status)
{
    if (transport) return VG_NOTIFY_RETRY;
    if (status >= 200 && status < 300) return VG_NOTIFY_OK;
    if (status >= 500 || status == 429) return VG_NOTIFY_RETRY;
    return VG_NOTIFY_FAIL;
}

int64_t vg_notify_backoff_ms(unsigned attempt, uint64_t rnd)
{
    int64_t base = 500;
    for (unsigned i = 0; i < attempt && base < 10000; i++) base *= 2;
    if (base > 10000) base = 10000;
    /* jitter factor in [0.5, 1.5) */
    double f = 0.5 + (double)(rnd % 1000000) / 1000000.0;
    return (int64_t)((double)base * f);
}

void vg_notify_counters_init(vg_metrics_t *m, const char *integ, vg_notify_counters_t *c)
{
    char l[160];
    memset(c, 0, sizeof(*c));
    snprintf(l, sizeof(l), "integration=\"%s\"", integ);
    c->sent = vg_metrics_counter(m, "vigil_notifications_total",
                                 "Notifications attempted, by integration.", l);
    c->requests = vg_metrics_counter(m, "vigil_notification_requests_total",
                                     "HTTP requests made by notifiers, retries included.", l);
    c->requests_failed =
        vg_metrics_counter(m, "vigil_notification_requests_failed_total",
                           "HTTP requests by notifiers that failed (network or non-2xx).", l);
    c->latency_sum = vg_metrics_counter(m, "vigil_notification_latency_seconds_sum",
                                        "Time spent delivering notifications.", l);
    c->latency_count = vg_metrics_counter(m, "vigil_notification_latency_seconds_count",
                                          "Notifications whose delivery time was measured.", l);
    static const char *reasons[] = {"clientError", "retriesExhausted", "encode"};
    vg_metric_t **slots[] = {&c->failed_status, &c->failed_network, &c->failed_encode};
    for (int i = 0; i < 3; i++) {
        snprintf(l, sizeof(l), "integration=\"%s\",reason=\"%s\"", integ, reasons[i]);
        *slots[i] = vg_metrics_counter(m, "vigil_notifications_failed_total",
                                       "Notifications that failed for good, by reason.", l);
    }
}

static int default_wait(void *ud, int64_t ms)
{
    (void)ud;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return 0;
}

static uint64_t jitter_seed(void)
{
    static _Atomic uint64_t s = 0x9e3779b97f4a7c15ULL;
    uint64_t x = (s += 0x9e3779b97f4a7c15ULL) ^ (uint64_t)vg_clock_mono_us();
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 29);
}

vg_err_t vg_notify_post(const vg_notify_target_t *t, const char *body, size_t len, vg_error *err)
{
    vg_notify_counters_t none = {0}, *c = t->counters ? t->counters : &none;
    vg_notify_wait_fn wait = t->wait ? t->wait : default_wait;
    int64_t t0 = vg_clock_mono_us();
    vg_httpc_req req = {.method = "POST",
                        .url = t->url,
                        .headers = t->headers,
                        .body = body,
                        .body_len = len,
                        .max_response = 64 << 10};
    vg_err_t rc = VG_ERETRY;
    vg_metric_inc(c->sent);
    for (unsigned attempt = 0;; attempt++) {
        int64_t left = t->deadline_mono_ms - vg_clock_mono_ms();
        req.timeout_ms = left < 1000 ? 1000 : (left > 30000 ? 30000 : left);
        int status = 0;
        vg_error e = {0};
        vg_err_t trc = vg_httpc_do(t->http, &req, &status, NULL, &e);
        vg_metric_inc(c->requests);
        vg_notify_verdict v = vg_notify_classify(trc, status);
        if (v == VG_NOTIFY_OK) {
            rc = VG_OK;
            break;
        }
        vg_metric_inc(c->requests_failed);
        if (v == VG_NOTIFY_FAIL) {
            vg_metric_inc(c->failed_status);
            rc = vg_error_set(err, VG_EPROTO, "%s answered %d (not retried)", t->url, status);
            break;
        }
        int64_t pause = vg_notify_backoff_ms(attempt, jitter_seed());
        if (vg_clock_mono_ms() + pause >= t->deadline_mono_ms || wait(t->wait_ud, pause)) {
            vg_metric_inc(c->failed_network);
            rc = trc ? vg_error_set(err, VG_ERETRY, "%s after %u attempts", vg_error_msg(&e, trc),
                                    attempt + 1)
                     : vg_error_set(err, VG_ERETRY, "%s answered %d after %u attempts", t->url,
                                    status, attempt + 1);
            break;
        }
    }
    vg_metric_add(c->latency_sum, (double)(vg_clock_mono_us() - t0) / 1e6);
    vg_metric_inc(c->latency_count);
    return rc;
}
