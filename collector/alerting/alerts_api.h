/*
 * alerts_api.h - Alertmanager's /api/v2/alerts on the collector, and the
 * adapters that put the inhibitor and the silences behind the dispatcher's
 * mute callbacks.
 */
#ifndef VIGIL_ALERTING_ALERTS_API_H
#define VIGIL_ALERTING_ALERTS_API_H

#include <stddef.h>
#include <stdint.h>

#include "alerting/dispatch.h"
#include "alerting/inhibit.h"
#include "alerting/silence.h"
#include "vigil/httpd.h"

typedef struct vg_alerting_mute {
    vg_inhibitor_t *inhibitor; /* may be NULL */
    vg_silences_t *silences;   /* may be NULL */
} vg_alerting_mute_t;

/* Dispatcher `muted` callback (ud: vg_alerting_mute_t): inhibited or silenced at now. */
int vg_alerting_mutes(void *ud, const vg_label_t *l, size_t n, int64_t now_ms);
/* Dispatcher `observe` callback (ud: vg_alerting_mute_t): feeds the inhibitor. */
vg_err_t vg_alerting_observe(void *ud, const vg_alert_t *a);
/* Dispatcher `reconfigure` callback (ud: vg_alerting_mute_t): the inhibitor
 * switches to cfg's inhibit_rules, rebuilt from the stored alerts. */
vg_err_t vg_alerting_reconfigure(void *ud, const vg_amconfig_t *cfg, const vg_alert_t *alerts,
                                 size_t n);

/* Register GET/POST /api/v2/alerts and GET /api/v2/alerts/groups on h
 * (before it starts). d and mute must outlive h; one registration per process. */
vg_err_t vg_alerts_api_register(vg_dispatch_t *d, vg_alerting_mute_t *mute, vg_httpd_t *h);

/* POST body handling, pure for tests: parse an Alertmanager postableAlerts
 * array, put the valid alerts into d at now; *status gets 200 or 400 and
 * out the error text (Alertmanager answers 400 when any alert is invalid,
 * after storing the valid ones). */
void vg_alerts_api_post(vg_dispatch_t *d, const char *body, size_t len, int64_t now_ms, int *status,
                        vg_buf *out);

/* An Alertmanager API time (alerts' startsAt/endsAt, silences): RFC 3339,
 * 't'/'z' and any fraction length accepted, no space separator, to Unix
 * ms; VG_EPARSE when bad. */
vg_err_t vg_alerts_api_parse_time(const char *s, int64_t *ms);

#endif
