/*
 * webhook.c - webhook_configs: Alertmanager's webhook payload, version "4".
 *
 * Receivers written for Alertmanager parse this document, so the keys,
 * their order and the time format follow Alertmanager's encoder: firing
 * alerts carry Go's zero time as endsAt, fingerprints are 16 hex digits,
 * and max_alerts truncates the list and reports the rest in truncatedAlerts.
 */
#include <string.h>

#include "notify/notify.h"
#include "vigil/alloc.h"

static int wh_send_resolved(const void *conf)
{
    return ((const vg_am_webhook_t *)conf)->send_resolved;
}

static const char *wh_url(const void *conf, const vg_amconfig_t *cfg, vg_buf *scratch)
{
    (void)cfg;
    (void)scratch;
    return ((const vg_am_webhook_t *)conf)->url;
}

static vg_err_t wh_alert(vg_buf *b, const vg_notify_alert_t *a)
{
    vg_err_t rc =
        vg_buf_printf(b, "{\"status\":\"%s\",\"labels\":", a->resolved ? "resolved" : "firing");
    if (!rc) rc = vg_notify_json_labels(b, a->labels, a->nlabels);
    if (!rc) rc = vg_buf_puts(b, ",\"annotations\":");
    if (!rc) rc = vg_notify_json_labels(b, a->annotations, a->nannotations);
    if (!rc) rc = vg_buf_puts(b, ",\"startsAt\":\"");
    if (!rc) rc = vg_notify_time(b, a->starts_at);
    if (!rc) rc = vg_buf_puts(b, "\",\"endsAt\":\"");
    if (!rc) rc = vg_notify_time(b, a->resolved ? a->ends_at : 0);
    if (!rc) rc = vg_buf_puts(b, "\",\"generatorURL\":");
    const char *g = a->generator_url ? a->generator_url : "";
    if (!rc) rc = vg_buf_json_str(b, g, strlen(g));
    if (!rc) rc = vg_buf_printf(b, ",\"fingerprint\":\"%016llx\"}", (unsigned long long)a->fp);
    return rc;
}

static vg_err_t wh_common(vg_buf *b, const vg_notify_msg_t *m)
{
    vg_label_t *cl = NULL, *ca = NULL;
    size_t ncl = 0, nca = 0;
    vg_err_t rc = vg_notify_common(m, 0, &cl, &ncl);
    if (!rc) rc = vg_notify_common(m, 1, &ca, &nca);
    if (!rc) rc = vg_buf_puts(b, ",\"groupLabels\":");
    if (!rc) rc = vg_notify_json_labels(b, m->group_labels, m->ngroup_labels);
    if (!rc) rc = vg_buf_puts(b, ",\"commonLabels\":");
    if (!rc) rc = vg_notify_json_labels(b, cl, ncl);
    if (!rc) rc = vg_buf_puts(b, ",\"commonAnnotations\":");
    if (!rc) rc = vg_notify_json_labels(b, ca, nca);
    vg_free(cl);
    vg_free(ca);
    return rc;
}

static vg_err_t wh_encode(const void *conf, const vg_notify_msg_t *m, vg_buf *b)
{
    const vg_am_webhook_t *w = conf;
    size_t n = m->nalerts, trunc = 0;
    if (w->max_alerts && n > w->max_alerts) {
        trunc = n - (size_t)w->max_alerts;
        n = (size_t)w->max_alerts;
    }
    vg_err_t rc = vg_buf_puts(b, "{\"receiver\":");
    if (!rc) rc = vg_buf_json_str(b, m->receiver, strlen(m->receiver));
    if (!rc)
        rc = vg_buf_printf(b, ",\"status\":\"%s\",\"alerts\":[",
                           vg_notify_nfiring(m) ? "firing" : "resolved");
    for (size_t i = 0; !rc && i < n; i++) {
        if (i) rc = vg_buf_putc(b, ',');
        if (!rc) rc = wh_alert(b, &m->alerts[i]);
    }
    if (!rc) rc = vg_buf_putc(b, ']');
    if (!rc) rc = wh_common(b, m);
    const char *ext = m->external_url ? m->external_url : "";
    if (!rc) rc = vg_buf_puts(b, ",\"externalURL\":");
    if (!rc) rc = vg_buf_json_str(b, ext, strlen(ext));
    if (!rc) rc = vg_buf_puts(b, ",\"version\":\"4\",\"groupKey\":");
    if (!rc) rc = vg_buf_json_str(b, m->group_key, strlen(m->group_key));
    if (!rc) rc = vg_buf_printf(b, ",\"truncatedAlerts\":%zu}", trunc);
    return rc;
}

const vg_notifier_t vg_notifier_webhook = {"webhook", wh_send_resolved, wh_url, wh_encode};
