/*
 * notify.h - notifiers: one group's alerts turned into an HTTP request.
 *
 * A notifier is a table entry (STYLE.md: interfaces as tables of callbacks):
 * it knows whether its config sends resolved alerts, which URL it posts to,
 * and how to encode a message. Encoders are pure (message in, JSON out) so
 * unit tests compare golden bytes; all network behaviour (the POST, the
 * retry policy, the counters) is shared in notify.c, so adding a receiver
 * type means one file and one table entry. The message mirrors the data
 * Alertmanager hands its templates: receiver, group key and labels, and the
 * alerts with firing ones' endsAt cleared, as its flush does.
 */
#ifndef VIGIL_NOTIFY_H
#define VIGIL_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/amconfig.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/httpc.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_notify_alert {
    const vg_label_t *labels; /* sorted */
    size_t nlabels;
    const vg_label_t *annotations; /* sorted */
    size_t nannotations;
    int64_t starts_at;         /* ms */
    int64_t ends_at;           /* ms; 0 while firing (sent as Go's zero time) */
    const char *generator_url; /* may be NULL */
    uint64_t fp;               /* Alertmanager fingerprint (FNV-64a of the labels) */
    int resolved;
} vg_notify_alert_t;

typedef struct vg_notify_msg {
    const char *receiver;
    const char *group_key;
    const vg_label_t *group_labels; /* sorted */
    size_t ngroup_labels;
    const vg_notify_alert_t *alerts;
    size_t nalerts;
    const char *external_url; /* may be NULL: "" */
} vg_notify_msg_t;

typedef struct vg_notifier {
    const char *name; /* "pagerduty", "slack", "webhook": the integration label */
    /* Does this config want resolved alerts sent? */
    int (*send_resolved)(const void *conf);
    /* The URL to POST to (may depend on global settings); NULL = not configured. */
    const char *(*url)(const void *conf, const vg_amconfig_t *cfg, vg_buf *scratch);
    /* Append the request body for m to out. */
    vg_err_t (*encode)(const void *conf, const vg_notify_msg_t *m, vg_buf *out);
} vg_notifier_t;

extern const vg_notifier_t vg_notifier_pagerduty; /* conf: vg_am_pagerduty_t */
extern const vg_notifier_t vg_notifier_slack;     /* conf: vg_am_slack_t */
extern const vg_notifier_t vg_notifier_webhook;   /* conf: vg_am_webhook_t */

/* ---- shared encoding helpers (notify.c) ---- */
/* Alertmanager fingerprint of a sorted label set (model.LabelSet.Fingerprint). */
uint64_t vg_notify_fingerprint(const vg_label_t *l, size_t n);
/* Append t (ms) as Go's RFC 3339 JSON time, UTC, trailing fraction zeros
 * trimmed; 0 is "0001-01-01T00:00:00Z". Quotes not included. */
vg_err_t vg_notify_time(vg_buf *b, int64_t ms);
/* Append {"name":"value",...}. */
vg_err_t vg_notify_json_labels(vg_buf *b, const vg_label_t *l, size_t n);
/* Number of firing alerts in m. */
size_t vg_notify_nfiring(const vg_notify_msg_t *m);
/* Alertmanager's default title "[FIRING:2] group values (common extra values)". */
vg_err_t vg_notify_subject(vg_buf *b, const vg_notify_msg_t *m);
/* Labels (or annotations when annotations != 0) with the same value in every
 * alert, into out (caller frees with vg_free); *n gets the count. */
vg_err_t vg_notify_common(const vg_notify_msg_t *m, int annotations, vg_label_t **out, size_t *n);

/* ---- delivery and retry ---- */
typedef enum vg_notify_verdict {
    VG_NOTIFY_OK,    /* 2xx */
    VG_NOTIFY_RETRY, /* network error, 5xx, 429 */
    VG_NOTIFY_FAIL,  /* any other status: never retried */
} vg_notify_verdict;

/* Classify one attempt: transport result and HTTP status. */
vg_notify_verdict vg_notify_classify(vg_err_t transport, int status);
/* Backoff before retry number attempt (0-based): 500 ms doubling up to 10 s,
 * scaled by a jitter in [0.5, 1.5) drawn from rnd. */
int64_t vg_notify_backoff_ms(unsigned attempt, uint64_t rnd);

/* Per-integration self-metrics. */
typedef struct vg_notify_counters {
    vg_metric_t *sent, *failed_status, *failed_network, *failed_encode, *requests, *requests_failed,
        *latency_sum, *latency_count;
} vg_notify_counters_t;

/* Register vigil_notifications_total{integration} and friends. */
void vg_notify_counters_init(vg_metrics_t *m, const char *integration, vg_notify_counters_t *c);

/* Sleep ms unless asked to stop; returns non-zero to abandon the retries. */
typedef int (*vg_notify_wait_fn)(void *ud, int64_t ms);

typedef struct vg_notify_target {
    vg_httpc_t *http;
    const char *url;
    const char *const *headers; /* NULL-terminated, may be NULL */
    int64_t deadline_mono_ms;   /* retries stop here (the group interval's end) */
    vg_notify_wait_fn wait;     /* NULL = nanosleep */
    void *wait_ud;
    vg_notify_counters_t *counters; /* may be NULL */
} vg_notify_target_t;

/* POST body to t->url, retrying retryable failures with backoff until the
 * deadline. VG_OK on a 2xx; VG_EPROTO for a status never retried; VG_ERETRY
 * when the deadline passed. Counts every request and the final outcome. */
vg_err_t vg_notify_post(const vg_notify_target_t *t, const char *body, size_t len, vg_error *err);

#endif
