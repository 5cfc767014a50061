/*
 * alert.h - the alert as it travels from rule evaluation to notification.
 *
 * One plain struct shared by the rule evaluator (which produces alerts), the
 * dispatcher (which groups, inhibits, silences and notifies), the external
 * Alertmanager sender and the /api/v2/alerts handler, so the seams between
 * them are a function pointer and an array, not a conversion layer. Times
 * are Unix milliseconds, the same unit as samples.
 */
#ifndef VIGIL_ALERTING_ALERT_H
#define VIGIL_ALERTING_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/labels.h"

typedef struct vg_alert {
    const vg_label_t *labels; /* sorted by name; includes alertname */
    size_t nlabels;
    const vg_label_t *annotations; /* sorted by name */
    size_t nannotations;
    int64_t starts_at;         /* ms */
    int64_t ends_at;           /* ms; 0 = not set (the receiver applies resolve_timeout) */
    const char *generator_url; /* may be NULL */
} vg_alert_t;

/* A consumer of alerts (the dispatcher, an external Alertmanager sender).
 * Called with firing alerts (ends_at in the future or 0) and resolved ones
 * (ends_at in the past). The callee copies what it keeps; the array is only
 * valid during the call. Must be thread-safe. */
typedef void (*vg_alert_sink_fn)(void *ud, const vg_alert_t *alerts, size_t n);

/* An alert is resolved at now when ends_at is set and not after now. */
static inline int vg_alert_resolved(const vg_alert_t *a, int64_t now_ms)
{
    return a->ends_at != 0 && a->ends_at <= now_ms;
}

#endif
