/*
 * rules_api.c - /api/v1/rules and /api/v1/alerts in Prometheus's JSON.
 *
 * Grafana's alerting UI and promtool read these, so the shape (keys, types,
 * omitted-when-empty fields, time and value formatting) follows Prometheus's
 * Go structs exactly: times are Go's RFC 3339 with trimmed nanoseconds,
 * values Go's %e-style shortest form, durations float seconds. Alerts come
 * out sorted by labels (Prometheus's map order is random).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules/rules_api.h"
#include "rules/rules_int.h"
#include "vigil/alloc.h"
#include "vigil/metrics.h"

char *vg_rules_fmt_value(double v, char *buf, size_t n)
{
    if (isnan(v)) return snprintf(buf, n, "NaN"), buf;
    if (isinf(v)) return snprintf(buf, n, v > 0 ? "+Inf" : "-Inf"), buf;
    for (int p = 0; p <= 17; p++) {
        snprintf(buf, n, "%.*e", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

char *vg_rules_fmt_time(int64_t ms, char *buf, size_t n)
{
    if (ms == INT64_MIN) { /* Go's zero time */
        snprintf(buf, n, "0001-01-01T00:00:00Z");
        return buf;
    }
    time_t s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)s * 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, ".%03d", frac);
        for (size_t i = strlen(f); i > 1 && f[i - 1] == '0'; i--) f[i - 1] = 0;
        snprintf(buf + k, n - k, "%sZ", f);
    } else {
        snprintf(buf + k, n - k, "Z");
    }
    return buf;
}

static void put_time(vg_buf *b, int64_t ms)
{
    char t[64];
    vg_buf_printf(b, "\"%s\"", vg_rules_fmt_time(ms ? ms : INT64_MIN, t, sizeof t));
}

static void put_labels(vg_buf *b, const vg_label_t *l, size_t n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) vg_buf_putc(b, ',');
        vg_buf_json_str(b, l[i].name, strlen(l[i].name));
        vg_buf_putc(b, ':');
        vg_buf_json_str(b, l[i].value, strlen(l[i].value));
    }
    vg_buf_putc(b, '}');
}

static void put_seconds(vg_buf *b, double s)
{
    char f[40];
    vg_buf_puts(b, vg_fmt_float_json(s, f));
}

static void put_alert(vg_buf *b, const alert_inst *a, int64_t keep_for)
{
    char v[64];
    vg_buf_puts(b, "{\"labels\":");
    put_labels(b, a->labels.l, a->labels.n);
    vg_buf_puts(b, ",\"annotations\":");
    put_labels(b, a->annotations.l, a->annotations.n);
    vg_buf_printf(
        b, ",\"state\":\"%s\",\"activeAt\":", a->state == ALERT_FIRING ? "firing" : "pending");
    put_time(b, a->active_at);
    if (keep_for && a->keep_firing_since) {
        vg_buf_puts(b, ",\"keepFiringSince\":");
        put_time(b, a->keep_firing_since);
    }
    vg_buf_printf(b, ",\"value\":\"%s\"}", vg_rules_fmt_value(a->value, v, sizeof v));
}

static int cmp_alert(const void *x, const void *y)
{
    const alert_inst *a = *(alert_inst *const *)x, *b = *(alert_inst *const *)y;
    return vg_labels_cmp(a->labels.l, a->labels.n, b->labels.l, b->labels.n);
}

/* Active (pending or firing) alerts of r, sorted; caller frees. */
static alert_inst **active_alerts(const rule *r, size_t *n)
{
    alert_inst **v = vg_calloc(r->nalerts + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < r->nalerts; i++)
        if (r->alerts[i].state != ALERT_INACTIVE) v[(*n)++] = &r->alerts[i];
    if (v) qsort(v, *n, sizeof *v, cmp_alert);
    return v;
}

static const char *health_name(int h)
{
    return h == HEALTH_OK ? "ok" : h == HEALTH_ERR ? "err" : "unknown";
}

static void put_rule_tail(vg_buf *b, const rule *r)
{
    vg_buf_printf(b, ",\"health\":\"%s\"", health_name(r->health));
    if (r->last_error[0]) {
        vg_buf_puts(b, ",\"lastError\":");
        vg_buf_json_str(b, r->last_error, strlen(r->last_error));
    }
    vg_buf_puts(b, ",\"evaluationTime\":");
    put_seconds(b, r->eval_seconds);
    vg_buf_puts(b, ",\"lastEvaluation\":");
    put_time(b, r->last_eval_ms);
}

static void put_alerting(vg_buf *b, const rule *r)
{
    size_t n;
    alert_inst **al = active_alerts(r, &n);
    int state = ALERT_INACTIVE;
    for (size_t i = 0; i < n; i++) state = al[i]->state > state ? al[i]->state : state;
    static const char *const sn[] = {"inactive", "pending", "firing"};
    vg_buf_printf(b, "{\"state\":\"%s\",\"name\":", sn[state]);
    vg_buf_json_str(b, r->def->name, strlen(r->def->name));
    vg_buf_puts(b, ",\"query\":");
    vg_buf_json_str(b, r->query, strlen(r->query));
    vg_buf_puts(b, ",\"duration\":");
    put_seconds(b, (double)r->def->for_ms / 1000.0);
    vg_buf_puts(b, ",\"keepFiringFor\":");
    put_seconds(b, (double)r->def->keep_firing_for_ms / 1000.0);
    vg_buf_puts(b, ",\"labels\":");
    put_labels(b, r->labels, r->nlabels);
    vg_buf_puts(b, ",\"annotations\":");
    put_labels(b, r->def->annotations, r->def->nannotations);
    vg_buf_puts(b, ",\"alerts\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) vg_buf_putc(b, ',');
        put_alert(b, al[i], r->def->keep_firing_for_ms);
    }
    vg_buf_putc(b, ']');
    vg_free(al);
    put_rule_tail(b, r);
    vg_buf_puts(b, ",\"type\":\"alerting\"}");
}

static void put_recording(vg_buf *b, const rule *r)
{
    vg_buf_puts(b, "{\"name\":");
    vg_buf_json_str(b, r->def->name, strlen(r->def->name));
    vg_buf_puts(b, ",\"query\":");
    vg_buf_json_str(b, r->query, strlen(r->query));
    if (r->nlabels) {
        vg_buf_puts(b, ",\"labels\":");
        put_labels(b, r->labels, r->nlabels);
    }
    put_rule_tail(b, r);
    vg_buf_puts(b, ",\"type\":\"recording\"}");
}

static void put_group(vg_buf *b, const group *g, int want_alert, int want_record)
{
    vg_buf_puts(b, "{\"name\":");
    vg_buf_json_str(b, g->def->name, strlen(g->def->name));
    vg_buf_puts(b, ",\"file\":");
    vg_buf_json_str(b, g->def->file, strlen(g->def->file));
    vg_buf_puts(b, ",\"rules\":[");
    int first = 1;
    for (size_t i = 0; i < g->nrules; i++) {
        const rule *r = &g->rules[i];
        if (r->def->alerting ? !want_alert : !want_record) continue;
        if (!first) vg_buf_putc(b, ',');
        first = 0;
        if (r->def->alerting)
            put_alerting(b, r);
        else
            put_recording(b, r);
    }
    vg_buf_puts(b, "],\"interval\":");
    put_seconds(b, (double)g->interval_ms / 1000.0);
    vg_buf_printf(b, ",\"limit\":%llu,\"evaluationTime\":", (unsigned long long)g->def->limit);
    put_seconds(b, g->eval_seconds);
    vg_buf_puts(b, ",\"lastEvaluation\":");
    put_time(b, g->last_eval_ms);
    vg_buf_putc(b, '}');
}

static int group_has(const group *g, int want_alert, int want_record)
{
    for (size_t i = 0; i < g->nrules; i++)
        if (g->rules[i].def->alerting ? want_alert : want_record) return 1;
    return 0;
}

/* Prometheus lists groups by file, then name. */
static int cmp_group(const void *x, const void *y)
{
    const group *a = *(group *const *)x, *b = *(group *const *)y;
    int c = strcmp(a->def->file, b->def->file);
    return c ? c : strcmp(a->def->name, b->def->name);
}

vg_err_t vg_rules_json_rules(vg_rules_t *m, const char *type, vg_buf *out)
{
    int wa = !type || !*type || !strcmp(type, "alert");
    int wr = !type || !*type || !strcmp(type, "record");
    vg_buf_puts(out, "{\"groups\":[");
    int first = 1;
    if (m) pthread_mutex_lock(&m->mu);
    size_t ng = m && m->rs ? m->rs->ngroups : 0;
    group **order = vg_calloc(ng + 1, sizeof *order);
    for (size_t i = 0; order && i < ng; i++) order[i] = &m->rs->groups[i];
    if (order) qsort(order, ng, sizeof *order, cmp_group);
    for (size_t i = 0; order && i < ng; i++) {
        const group *g = order[i];
        if (!(wa && wr) && !group_has(g, wa, wr)) continue;
        if (!first) vg_buf_putc(out, ',');
        first = 0;
        put_group(out, g, wa, wr);
    }
    if (m) pthread_mutex_unlock(&m->mu);
    if (ng && !order) return VG_ENOMEM;
    vg_free(order);
    return vg_buf_puts(out, "]}");
}

vg_err_t vg_rules_json_alerts(vg_rules_t *m, vg_buf *out)
{
    vg_buf_puts(out, "{\"alerts\":[");
    int first = 1;
    if (m) pthread_mutex_lock(&m->mu);
    for (size_t i = 0; m && m->rs && i < m->rs->ngroups; i++) {
        const group *g = &m->rs->groups[i];
        for (size_t j = 0; j < g->nrules; j++) {
            size_t n;
            alert_inst **al = active_alerts(&g->rules[j], &n);
            for (size_t k = 0; al && k < n; k++) {
                if (!first) vg_buf_putc(out, ',');
                first = 0;
                put_alert(out, al[k], g->rules[j].def->keep_firing_for_ms);
            }
            vg_free(al);
        }
    }
    if (m) pthread_mutex_unlock(&m->mu);
    return vg_buf_puts(out, "]}");
}

/* ---- HTTP ---- */

static void reply(vg_http_resp *resp, vg_err_t rc, vg_buf *data)
{
    resp->content_type = "application/json";
    if (rc || !data->data) {
        resp->status = rc == VG_ETOOLARGE ? 422 : 500;
        vg_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":\"internal\","
                                 "\"error\":\"cannot render the answer\"}");
        return;
    }
    vg_buf_puts(&resp->body, "{\"status\":\"success\",\"data\":");
    vg_buf_append(&resp->body, data->data, data->len);
    vg_buf_putc(&resp->body, '}');
}

static void rules_handler(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_rules_t *m = ud;
    const char *type = vg_http_req_arg(req, "type");
    char low[16] = {0};
    for (size_t i = 0; type && type[i] && i < sizeof low - 1; i++)
        low[i] = (char)((type[i] >= 'A' && type[i] <= 'Z') ? type[i] + 32 : type[i]);
    if (type && *type && ((strcmp(low, "alert") && strcmp(low, "record")) || strlen(type) > 8)) {
        resp->status = 400;
        resp->content_type = "application/json";
        vg_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":");
        vg_buf b;
        vg_buf_init(&b, 4096);
        vg_buf_puts(&b, "invalid parameter \"type\": not supported value \"");
        vg_buf_append(&b, type, strnlen(type, 512));
        vg_buf_puts(&b, "\"");
        vg_buf_json_str(&resp->body, b.data, b.len);
        vg_buf_free(&b);
        vg_buf_putc(&resp->body, '}');
        return;
    }
    vg_buf out;
    vg_buf_init(&out, 256u << 20);
    vg_err_t rc = vg_rules_json_rules(m, type && *type ? low : NULL, &out);
    reply(resp, rc, &out);
    vg_buf_free(&out);
}

static void alerts_handler(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_rules_t *m = ud;
    (void)req;
    vg_buf out;
    vg_buf_init(&out, 256u << 20);
    vg_err_t rc = vg_rules_json_alerts(m, &out);
    reply(resp, rc, &out);
    vg_buf_free(&out);
}

vg_err_t vg_rules_register_http(vg_httpd_t *h, vg_rules_t *m)
{
    static const char *const methods[] = {"GET", "POST"};
    vg_err_t rc = VG_OK;
    for (int i = 0; i < 2 && !rc; i++) {
        rc = vg_httpd_route(h, methods[i], "/api/v1/rules", rules_handler, m);
        if (!rc) rc = vg_httpd_route(h, methods[i], "/api/v1/alerts", alerts_handler, m);
    }
    return rc;
}
