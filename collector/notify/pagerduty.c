/*
 * pagerduty.c - pagerduty_configs: PagerDuty Events API v2.
 *
 * The dedup_key is the hex SHA-256 of the group key, as Alertmanager
 * computes it, so the trigger and the later resolve of one group address
 * the same PagerDuty incident even across restarts. A resolve carries no
 * payload (Alertmanager sends one only with a trigger). Summary, source,
 * severity and custom_details follow Alertmanager's defaults: the subject
 * line, "Alertmanager"-style client as source, "error", and the
 * firing/resolved lists with their counts.
 */
#include <openssl/sha.h>
#include <string.h>

#include "notify/notify.h"

static int pd_send_resolved(const void *conf)
{
    return ((const vg_am_pagerduty_t *)conf)->send_resolved;
}

/* Alertmanager's url defaults to global.pagerduty_url, itself the full
 * Events API v2 address (https://events.pagerduty.com/v2/enqueue). */
static const char *pd_url(const void *conf, const vg_amconfig_t *cfg, vg_buf *scratch)
{
    (void)scratch;
    const vg_am_pagerduty_t *p = conf;
    if (p->url) return p->url;
    return cfg && cfg->pagerduty_url ? cfg->pagerduty_url
                                     : "https://events.pagerduty.com/v2/enqueue";
}

static vg_err_t pd_str(vg_buf *b, const char *key, const char *v)
{
    vg_err_t rc = vg_buf_printf(b, ",\"%s\":", key);
    return rc ? rc : vg_buf_json_str(b, v, strlen(v));
}

/* One line per alert: "Labels: k = v ... Annotations: ..." in Alertmanager's spirit. */
static vg_err_t pd_list(vg_buf *out, const vg_notify_msg_t *m, int resolved)
{
    vg_buf t;
    vg_buf_init(&t, 0);
    vg_err_t rc = vg_buf_puts(&t, "");
    for (size_t i = 0; !rc && i < m->nalerts; i++) {
        const vg_notify_alert_t *a = &m->alerts[i];
        if (a->resolved != resolved) continue;
        rc = vg_buf_puts(&t, "Labels:\n");
        for (size_t j = 0; !rc && j < a->nlabels; j++)
            rc = vg_buf_printf(&t, " - %s = %s\n", a->labels[j].name, a->labels[j].value);
        if (!rc) rc = vg_buf_puts(&t, "Annotations:\n");
        for (size_t j = 0; !rc && j < a->nannotations; j++)
            rc = vg_buf_printf(&t, " - %s = %s\n", a->annotations[j].name, a->annotations[j].value);
        if (!rc) rc = vg_buf_printf(&t, "Source: %s\n", a->generator_url ? a->generator_url : "");
    }
    if (!rc) rc = vg_buf_json_str(out, t.data, t.len);
    vg_buf_free(&t);
    return rc;
}

static vg_err_t pd_payload(const vg_am_pagerduty_t *p, const vg_notify_msg_t *m, vg_buf *b)
{
    vg_buf s;
    vg_buf_init(&s, 0);
    vg_err_t rc = p->description ? vg_buf_puts(&s, p->description) : vg_notify_subject(&s, m);
    if (!rc && s.len > 1024) s.data[s.len = 1024] = 0; /* PagerDuty's summary limit */
    if (!rc) rc = vg_buf_puts(b, ",\"payload\":{\"summary\":");
    if (!rc) rc = vg_buf_json_str(b, s.data, s.len);
    vg_buf_free(&s);
    const char *client = p->client ? p->client : "Vigil";
    if (!rc) rc = pd_str(b, "source", client);
    if (!rc) rc = pd_str(b, "severity", p->severity ? p->severity : "error");
    if (!rc && p->component) rc = pd_str(b, "component", p->component);
    if (!rc && p->group) rc = pd_str(b, "group", p->group);
    if (!rc && p->class_) rc = pd_str(b, "class", p->class_);
    size_t nf = vg_notify_nfiring(m);
    if (!rc) rc = vg_buf_puts(b, ",\"custom_details\":{\"firing\":");
    if (!rc) rc = pd_list(b, m, 0);
    if (!rc)
        rc = vg_buf_printf(b, ",\"num_firing\":\"%zu\",\"num_resolved\":\"%zu\",\"resolved\":", nf,
                           m->nalerts - nf);
    if (!rc) rc = pd_list(b, m, 1);
    for (size_t i = 0; !rc && i < p->ndetails; i++)
        rc = pd_str(b, p->details[i].key, p->details[i].value);
    return rc ? rc : vg_buf_puts(b, "}}");
}

/* dedup_key: hex SHA-256 of the group key. */
static void pd_dedup(const char *key, char hex[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = "0123456789abcdef"[d[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
    }
    hex[64] = 0;
}

static vg_err_t pd_encode(const void *conf, const vg_notify_msg_t *m, vg_buf *b)
{
    const vg_am_pagerduty_t *p = conf;
    int trigger = vg_notify_nfiring(m) > 0;
    char dedup[65];
    pd_dedup(m->group_key, dedup);
    const char *ext = m->external_url ? m->external_url : "";
    vg_err_t rc = vg_buf_puts(b, "{\"routing_key\":");
    const char *rk = p->routing_key ? p->routing_key : "";
    if (!rc) rc = vg_buf_json_str(b, rk, strlen(rk));
    if (!rc) rc = pd_str(b, "event_action", trigger ? "trigger" : "resolve");
    if (!rc) rc = pd_str(b, "dedup_key", dedup);
    if (!rc) rc = pd_str(b, "client", p->client ? p->client : "Vigil");
    if (!rc) rc = pd_str(b, "client_url", p->client_url ? p->client_url : ext);
    if (!rc && trigger) rc = pd_payload(p, m, b);
    return rc ? rc : vg_buf_putc(b, '}');
}

const vg_notifier_t vg_notifier_pagerduty = {"pagerduty", pd_send_resolved, pd_url, pd_encode};
