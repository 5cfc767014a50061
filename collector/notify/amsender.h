/*
 * amsender.h - send alerts to external Alertmanagers (alerting.alertmanagers).
 *
 * For teams that keep their own Alertmanager: a vg_alert_sink_fn that
 * queues alerts and POSTs them to every configured target's
 * /api/v2/alerts in batches of up to 64, as Prometheus's notifier does.
 * The queue is bounded; when it is full the oldest alerts are dropped and
 * counted, because the rule evaluator re-sends every firing alert on each
 * evaluation anyway (Prometheus's resend semantics), so fresh state matters
 * more than old.
 */
#ifndef VIGIL_NOTIFY_AMSENDER_H
#define VIGIL_NOTIFY_AMSENDER_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/alert.h"
#include "alerting/amconfig.h"
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_amsender vg_amsender_t;

#define VG_AMSENDER_BATCH 64

/* New sender for cfg's alertmanagers (borrowed; must outlive it); capacity 0
 * = 10000 queued alerts. Not started: vg_amsender_put only queues. */
vg_err_t vg_amsender_new(const vg_amconfig_t *cfg, vg_metrics_t *m, size_t capacity,
                         vg_amsender_t **out, vg_error *err);
/* Start the sending thread. */
vg_err_t vg_amsender_start(vg_amsender_t *s, vg_error *err);
/* Stop (what is still queued is dropped) and free. NULL is a no-op. */
void vg_amsender_free(vg_amsender_t *s);

/* vg_alert_sink_fn: ud is the sender. Copies what it keeps. */
void vg_amsender_put(void *ud, const vg_alert_t *alerts, size_t n);

/* Take up to VG_AMSENDER_BATCH queued alerts as one JSON array body into
 * out; returns how many (0 = queue empty). For the thread and tests. */
size_t vg_amsender_take(vg_amsender_t *s, vg_buf *out);
/* Alerts queued now. */
size_t vg_amsender_queued(vg_amsender_t *s);
/* Alerts dropped so far because the queue was full. */
uint64_t vg_amsender_dropped(vg_amsender_t *s);

/* One alert as Alertmanager's postableAlert JSON object. */
vg_err_t vg_amsender_encode(const vg_alert_t *a, vg_buf *out);

#endif
