/*
 * slack.c - slack_configs: a Slack incoming-webhook message.
 *
 * One attachment per notification, as Alertmanager sends: title (the
 * subject line unless configured), title_link back to the alert list,
 * text, fallback "title | link", and colour "danger" while anything fires,
 * "good" once all is resolved. Configured strings are used literally
 * (Alertmanager would expand them as templates).
 */
#include <string.h>

#include "notify/notify.h"

static int sl_send_resolved(const void *conf)
{
    return ((const vg_am_slack_t *)conf)->send_resolved;
}

static const char *sl_url(const void *conf, const vg_amconfig_t *cfg, vg_buf *scratch)
{
    (void)scratch;
    const vg_am_slack_t *s = conf;
    return s->api_url ? s->api_url : (cfg ? cfg->slack_api_url : NULL);
}

static vg_err_t sl_field(vg_buf *b, const char *key, const char *v, size_t n)
{
    vg_err_t rc = vg_buf_printf(b, ",\"%s\":", key);
    return rc ? rc : vg_buf_json_str(b, v, n);
}

static vg_err_t sl_link(vg_buf *b, const vg_am_slack_t *s, const vg_notify_msg_t *m)
{
    if (s->title_link) return vg_buf_puts(b, s->title_link);
    vg_err_t rc = vg_buf_printf(b, "%s/#/alerts?receiver=", m->external_url ? m->external_url : "");
    for (const char *p = m->receiver; !rc && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-_.~", c))
            rc = vg_buf_putc(b, (char)c);
        else
            rc = vg_buf_printf(b, "%%%02X", c);
    }
    return rc;
}

static vg_err_t sl_encode(const void *conf, const vg_notify_msg_t *m, vg_buf *b)
{
    const vg_am_slack_t *s = conf;
    vg_buf title, link;
    vg_buf_init(&title, 0);
    vg_buf_init(&link, 0);
    vg_err_t rc = s->title ? vg_buf_puts(&title, s->title) : vg_notify_subject(&title, m);
    if (!rc) rc = sl_link(&link, s, m);
    if (!rc) rc = vg_buf_putc(b, '{');
    const char *sep = "";
    if (!rc && s->channel) rc = vg_buf_printf(b, "\"channel\":"), sep = ",";
    if (!rc && s->channel) rc = vg_buf_json_str(b, s->channel, strlen(s->channel));
    if (!rc && s->username) rc = vg_buf_printf(b, "%s\"username\":", sep), sep = ",";
    if (!rc && s->username) rc = vg_buf_json_str(b, s->username, strlen(s->username));
    if (!rc && s->icon_emoji) rc = vg_buf_printf(b, "%s\"icon_emoji\":", sep), sep = ",";
    if (!rc && s->icon_emoji) rc = vg_buf_json_str(b, s->icon_emoji, strlen(s->icon_emoji));
    if (!rc) rc = vg_buf_printf(b, "%s\"attachments\":[{\"title\":", sep);
    if (!rc) rc = vg_buf_json_str(b, title.data, title.len);
    if (!rc) rc = sl_field(b, "title_link", link.data, link.len);
    const char *text = s->text ? s->text : "";
    if (!rc) rc = sl_field(b, "text", text, strlen(text));
    if (!rc) rc = vg_buf_puts(&title, " | ");
    if (!rc) rc = vg_buf_append(&title, link.data, link.len);
    if (!rc) rc = sl_field(b, "fallback", title.data, title.len);
    const char *color = s->color ? s->color : (vg_notify_nfiring(m) ? "danger" : "good");
    if (!rc) rc = sl_field(b, "color", color, strlen(color));
    if (!rc) rc = vg_buf_puts(b, ",\"mrkdwn_in\":[\"fallback\",\"pretext\",\"text\"]}]}");
    vg_buf_free(&title);
    vg_buf_free(&link);
    return rc;
}

const vg_notifier_t vg_notifier_slack = {"slack", sl_send_resolved, sl_url, sl_encode};
