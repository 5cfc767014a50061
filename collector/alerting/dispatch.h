/*
 * dispatch.h - the Alertmanager-compatible dispatcher.
 *
 * Alerts come in through vg_dispatch_put (a vg_alert_sink_fn, used by the
 * rule evaluator and POST /api/v2/alerts). The dispatcher keeps the alert
 * store, routes each alert into aggregation groups, and flushes each group
 * on Alertmanager's timers (group_wait, group_interval; repeat_interval via
 * the notification log), filtering inhibited and silenced alerts and
 * calling the receiver's notifiers. One timer thread decides what is due;
 * a few worker threads do the HTTP, so a slow receiver delays only its own
 * group. With workers = 0 and an injected clock, vg_dispatch_tick runs the
 * flushes inline, which is how unit tests drive it without sleeping.
 */
#ifndef VIGIL_ALERTING_DISPATCH_H
#define VIGIL_ALERTING_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/alert.h"
#include "alerting/amconfig.h"
#include "alerting/nflog.h"
#include "notify/notify.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

typedef struct vg_dispatch vg_dispatch_t;

/* Test hook: deliver one encoded notification instead of posting it.
 * Return VG_OK when delivered. */
typedef vg_err_t (*vg_dispatch_deliver_fn)(void *ud, const vg_notifier_t *n, const char *url,
                                           const vg_notify_msg_t *m, const char *body, size_t len);

typedef struct vg_dispatch_opts {
    const vg_amconfig_t *cfg; /* borrowed; must outlive the dispatcher (so must reloaded ones) */
    /* Inhibition and silences, behind callbacks so the dispatcher depends on
     * neither module (vg_alerting_mutes/vg_alerting_observe in alerts_api.c
     * adapt them). muted: is the alert muted at now? observe: every alert
     * as stored (feeds the inhibitor's sources). Either may be NULL. */
    int (*muted)(void *ud, const vg_label_t *l, size_t n, int64_t now_ms);
    vg_err_t (*observe)(void *ud, const vg_alert_t *a);
    /* reconfigure: on vg_dispatch_reload, before anything changes, with
     * every stored alert (rebuilds the inhibitor); an error aborts the
     * reload. May be NULL. */
    vg_err_t (*reconfigure)(void *ud, const vg_amconfig_t *cfg, const vg_alert_t *alerts, size_t n);
    void *mute_ud;
    vg_nflog_t *nflog;           /* required; borrowed */
    vg_metrics_t *metrics;       /* may be NULL */
    const char *external_url;    /* copied; NULL = "" */
    unsigned workers;            /* notify threads started by vg_dispatch_start; 0 = inline */
    int64_t (*now_ms)(void *ud); /* NULL = wall clock */
    void *clock_ud;
    vg_dispatch_deliver_fn deliver; /* NULL = HTTP POST with retries */
    void *deliver_ud;
} vg_dispatch_opts;

/* New dispatcher (not started). Copies opts. */
vg_err_t vg_dispatch_new(const vg_dispatch_opts *o, vg_dispatch_t **out, vg_error *err);
/* Start the timer thread and the workers. */
vg_err_t vg_dispatch_start(vg_dispatch_t *d, vg_error *err);
/* Stop threads (abandoning retries in flight) and free. NULL is a no-op. */
void vg_dispatch_free(vg_dispatch_t *d);

/* vg_alert_sink_fn: ud is the dispatcher; stamps alerts with the clock's now. */
void vg_dispatch_put(void *ud, const vg_alert_t *alerts, size_t n);
/* Put alerts as received at now (updatedAt = now; ends_at 0 gets
 * now + resolve_timeout; starts_at 0 gets ends_at or now). */
vg_err_t vg_dispatch_put_at(vg_dispatch_t *d, const vg_alert_t *alerts, size_t n, int64_t now_ms);
/* Run every flush due at now (inline when workers = 0, else queued);
 * returns when the next group is due (INT64_MAX when none). */
int64_t vg_dispatch_tick(vg_dispatch_t *d, int64_t now_ms);

/* A stored alert as the API lists it. */
typedef struct vg_dispatch_alert {
    vg_alert_t a;
    uint64_t fp;
    int64_t updated_at;
    void *ref; /* keeps the strings alive until vg_dispatch_alerts_free */
} vg_dispatch_alert_t;

/* Snapshot of the unresolved alerts at now, sorted by fingerprint; free
 * with vg_dispatch_alerts_free. */
vg_err_t vg_dispatch_alerts(vg_dispatch_t *d, int64_t now_ms, vg_dispatch_alert_t **out, size_t *n);
/* Release a vg_dispatch_alerts snapshot. NULL is a no-op. */
void vg_dispatch_alerts_free(vg_dispatch_t *d, vg_dispatch_alert_t *a, size_t n);

/* An aggregation group as GET /api/v2/alerts/groups lists it. */
typedef struct vg_dispatch_group {
    const char *key;
    const char *receiver;
    const vg_label_t *labels; /* group labels, sorted */
    size_t nlabels;
    vg_dispatch_alert_t *alerts; /* unresolved at now */
    size_t nalerts;
} vg_dispatch_group_t;

/* Snapshot of the groups (strings copied); free with vg_dispatch_groups_free. */
vg_err_t vg_dispatch_groups(vg_dispatch_t *d, int64_t now_ms, vg_dispatch_group_t **out, size_t *n);
/* Release a vg_dispatch_groups snapshot. NULL is a no-op. */
void vg_dispatch_groups_free(vg_dispatch_t *d, vg_dispatch_group_t *g, size_t n);

/* The clock the dispatcher uses. */
int64_t vg_dispatch_now(const vg_dispatch_t *d);
/* The alerting config the dispatcher routes with (borrowed). */
const vg_amconfig_t *vg_dispatch_config(vg_dispatch_t *d);

/* Route with cfg from now on (borrowed; must outlive the dispatcher, since
 * a flush in flight may still use the previous one): calls reconfigure,
 * then, atomically for puts and flushes, swaps the config, drops the
 * aggregation groups and re-routes every stored alert into new ones
 * (group_wait starts again; the notification log suppresses repeats). On
 * a reconfigure error nothing changed. */
vg_err_t vg_dispatch_reload(vg_dispatch_t *d, const vg_amconfig_t *cfg, vg_error *err);
/* vg_dispatch_reload with the groups' timers started from now (tests). */
vg_err_t vg_dispatch_reload_at(vg_dispatch_t *d, const vg_amconfig_t *cfg, int64_t now_ms,
                               vg_error *err);
/* Number of aggregation groups (tests, self-metrics). */
size_t vg_dispatch_ngroups(vg_dispatch_t *d);

/* Alertmanager's group key: route id + ":" + {name="value", ...}. Appends to b. */
vg_err_t vg_dispatch_group_key(vg_buf *b, const vg_am_route_t *r, const vg_label_t *gl, size_t n);

#endif
