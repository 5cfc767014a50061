/*
 * alerts_api.c - GET and POST /api/v2/alerts in Alertmanager's format.
 *
 * POST takes Alertmanager's postableAlerts (a JSON array of {labels,
 * annotations, startsAt, endsAt, generatorURL}) and feeds the dispatcher
 * exactly as the rule evaluator does, so amtool, Prometheus and tests can
 * drive Vigil's routing as they drive Alertmanager. As in Alertmanager,
 * empty label values are dropped, valid alerts are stored even when others
 * in the same request are invalid, and any invalid one makes the answer a
 * 400 naming it. GET lists the unresolved alerts with their state
 * (active/suppressed), inhibitedBy, silencedBy, receivers and fingerprint,
 * with the filter/silenced/inhibited/active/receiver parameters; GET
 * /api/v2/alerts/groups lists the aggregation groups the same way. The mute adapters
 * live here because this file is where the inhibitor and silences meet the
 * dispatcher anyway.
 */
#include "alerting/alerts_api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "notify/notify.h"
#include "vigil/alloc.h"
#include "vigil/timefmt.h"

#define MAX_ALERTS_PER_POST 100000
#define MAX_FILTERS         32

int vg_alerting_mutes(void *ud, const vg_label_t *l, size_t n, int64_t now)
{
    vg_alerting_mute_t *m = ud;
    if (m->inhibitor && vg_inhibitor_mutes(m->inhibitor, l, n, now)) return 1;
    return m->silences && vg_silences_mutes(m->silences, l, n, now, NULL, 0) > 0;
}

vg_err_t vg_alerting_observe(void *ud, const vg_alert_t *a)
{
    vg_alerting_mute_t *m = ud;
    return m->inhibitor ? vg_inhibitor_put(m->inhibitor, a) : VG_OK;
}

vg_err_t vg_alerting_reconfigure(void *ud, const vg_amconfig_t *cfg, const vg_alert_t *alerts,
                                 size_t n)
{
    vg_alerting_mute_t *m = ud;
    return m->inhibitor ? vg_inhibitor_reload(m->inhibitor, cfg, alerts, n) : VG_OK;
}

vg_err_t vg_alerts_api_parse_time(const char *s, int64_t *ms)
{
    return vg_timefmt_parse_rfc3339(s, strlen(s),
                                    VG_TIMEFMT_ANYCASE | VG_TIMEFMT_LEAP | VG_TIMEFMT_LONGFRAC, ms);
}

/* A JSON object of strings into sorted labels (arena-like: strings point into j).
 * Empty values are dropped when drop_empty. Returns an error text or NULL. */
static const char *json_labels(json_t *j, int drop_empty, vg_label_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!j || json_is_null(j)) return NULL;
    if (!json_is_object(j)) return "must be an object of strings";
    vg_label_t *l = vg_calloc(json_object_size(j) + 1, sizeof(*l));
    if (!l) return "out of memory";
    const char *k;
    json_t *v;
    size_t c = 0;
    json_object_foreach(j, k, v)
    {
        if (!json_is_string(v)) {
            vg_free(l);
            return "must be an object of strings";
        }
        if (drop_empty && !*json_string_value(v)) continue;
        l[c++] = (vg_label_t){k, json_string_value(v)};
    }
    vg_labels_sort(l, c);
    *out = l;
    *n = c;
    return NULL;
}

static const char *json_time(json_t *o, const char *key, int64_t *ms)
{
    json_t *t = json_object_get(o, key);
    *ms = 0;
    if (!t || json_is_null(t)) return NULL;
    if (!json_is_string(t) || vg_alerts_api_parse_time(json_string_value(t), ms))
        return strcmp(key, "startsAt") == 0 ? "startsAt is not an RFC 3339 time"
                                            : "endsAt is not an RFC 3339 time";
    if (*ms == -62135596800000LL) *ms = 0; /* Go's zero time = unset */
    return NULL;
}

/* Alertmanager's Alert.Validate after defaults; returns an error text or NULL. */
static const char *validate(vg_alert_t *a, vg_error *err)
{
    if (a->nlabels == 0) return "at least one label pair required";
    for (size_t i = 0; i < a->nlabels; i++)
        if (!vg_label_name_valid(a->labels[i].name, strlen(a->labels[i].name))) {
            vg_error_set(err, VG_EINVAL, "invalid label set: invalid name \"%s\"",
                         a->labels[i].name);
            return err->msg;
        }
    for (size_t i = 0; i < a->nannotations; i++)
        if (!vg_label_name_valid(a->annotations[i].name, strlen(a->annotations[i].name))) {
            vg_error_set(err, VG_EINVAL, "invalid annotations: invalid name \"%s\"",
                         a->annotations[i].name);
            return err->msg;
        }
    if (a->ends_at && a->starts_at && a->ends_at < a->starts_at)
        return "start time must be before end time";
    return NULL;
}

/* One element of the array; on success *a holds label arrays the caller frees. */
static const char *parse_alert(json_t *o, vg_alert_t *a, vg_error *err)
{
    memset(a, 0, sizeof(*a));
    if (!json_is_object(o)) return "alert must be an object";
    json_t *l = json_object_get(o, "labels");
    if (!l) return "labels in body is required";
    vg_label_t *ls, *as;
    const char *e = json_labels(l, 1, &ls, &a->nlabels);
    if (e) return e;
    a->labels = ls;
    if ((e = json_labels(json_object_get(o, "annotations"), 0, &as, &a->nannotations))) return e;
    a->annotations = as;
    if ((e = json_time(o, "startsAt", &a->starts_at))) return e;
    if ((e = json_time(o, "endsAt", &a->ends_at))) return e;
    json_t *g = json_object_get(o, "generatorURL");
    if (g && json_is_string(g)) a->generator_url = json_string_value(g);
    return validate(a, err);
}

void vg_alerts_api_post(vg_dispatch_t *d, const char *body, size_t len, int64_t now, int *status,
                        vg_buf *out)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    *status = 400;
    if (!root || !json_is_array(root) || json_array_size(root) > MAX_ALERTS_PER_POST) {
        vg_buf_printf(out, "%s",
                      root ? "body must be a JSON array of at most 100000 alerts" : je.text);
        json_decref(root);
        return;
    }
    size_t n = json_array_size(root), k = 0, bad = 0;
    vg_alert_t *as = vg_calloc(n + 1, sizeof(*as));
    for (size_t i = 0; as && i < n; i++) {
        vg_error err = {0};
        const char *e = parse_alert(json_array_get(root, i), &as[k], &err);
        if (e) {
            vg_buf_printf(out, "%s%s", bad++ ? "; " : "", e);
            vg_free((void *)as[k].labels);
            vg_free((void *)as[k].annotations);
        } else {
            k++;
        }
    }
    if (as && k) vg_dispatch_put_at(d, as, k, now);
    for (size_t i = 0; as && i < k; i++) {
        vg_free((void *)as[i].labels);
        vg_free((void *)as[i].annotations);
    }
    if (!as) vg_buf_puts(out, "out of memory");
    *status = as && !bad ? 200 : (as ? 400 : 500);
    vg_free(as);
    json_decref(root);
}

typedef struct api_ctx {
    vg_dispatch_t *d;
    vg_alerting_mute_t *mute;
} api_ctx;

typedef struct get_opts {
    vg_matcher_t *filters[MAX_FILTERS];
    size_t nfilters;
    vg_matcher_t *receiver;
    int active, silenced, inhibited;
} get_opts;

static int flag(const vg_http_req *r, const char *name)
{
    const char *v = vg_http_req_arg(r, name);
    return !v || strcmp(v, "false") != 0;
}

static const char *get_opts_parse(const vg_http_req *r, get_opts *o, vg_error *err)
{
    const char *vals[MAX_FILTERS];
    size_t n = vg_http_req_args(r, "filter", vals, MAX_FILTERS);
    if (n > MAX_FILTERS) return "too many filter arguments";
    for (size_t i = 0; i < n; i++) {
        if (vg_am_matcher_parse(vals[i], &o->filters[i], err)) return err->msg;
        o->nfilters++;
    }
    const char *rv = vg_http_req_arg(r, "receiver");
    if (rv && vg_matcher_new(VG_MATCH_RE, "receiver", rv, &o->receiver, err)) return err->msg;
    o->active = flag(r, "active");
    o->silenced = flag(r, "silenced");
    o->inhibited = flag(r, "inhibited");
    return NULL;
}

static void get_opts_free(get_opts *o)
{
    for (size_t i = 0; i < o->nfilters; i++) vg_matcher_free(o->filters[i]);
    vg_matcher_free(o->receiver);
}

/* Receivers of the routes an alert matches, as [{"name":...}], deduplicated. */
static vg_err_t receivers_json(const vg_amconfig_t *cfg, const vg_alert_t *a, vg_buf *b,
                               const vg_matcher_t *want, int *matched)
{
    const vg_am_route_t *r[64];
    size_t n = vg_am_route_match(&cfg->route, a->labels, a->nlabels, r, 64);
    vg_err_t rc = vg_buf_putc(b, '[');
    *matched = !want;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t j = 0;
        while (j < i && strcmp(r[j]->receiver, r[i]->receiver)) j++;
        if (j < i) continue;
        if (want && vg_matcher_matches(want, r[i]->receiver)) *matched = 1;
        rc = vg_buf_printf(b, "%s{\"name\":", b->data[b->len - 1] == '[' ? "" : ",");
        if (!rc) rc = vg_buf_json_str(b, r[i]->receiver, strlen(r[i]->receiver));
        if (!rc) rc = vg_buf_putc(b, '}');
    }
    return rc ? rc : vg_buf_putc(b, ']');
}

static vg_err_t time_field(vg_buf *b, const char *key, int64_t ms)
{
    vg_err_t rc = vg_buf_printf(b, ",\"%s\":\"", key);
    if (!rc) rc = vg_notify_time(b, ms);
    return rc ? rc : vg_buf_putc(b, '"');
}

static vg_err_t status_json(api_ctx *c, const vg_alert_t *a, int64_t now, vg_buf *b, int *sil,
                            int *inh)
{
    char ids[16][37];
    size_t ns = c->mute->silences
                    ? vg_silences_mutes(c->mute->silences, a->labels, a->nlabels, now, ids, 16)
                    : 0;
    uint64_t by = 0;
    *inh = c->mute->inhibitor &&
           vg_inhibitor_mutes_by(c->mute->inhibitor, a->labels, a->nlabels, now, &by);
    *sil = ns > 0;
    vg_err_t rc = vg_buf_puts(b, ",\"status\":{\"inhibitedBy\":[");
    if (!rc && *inh) rc = vg_buf_printf(b, "\"%016llx\"", (unsigned long long)by);
    if (!rc) rc = vg_buf_puts(b, "],\"silencedBy\":[");
    for (size_t i = 0; !rc && i < ns && i < 16; i++)
        rc = vg_buf_printf(b, "%s\"%s\"", i ? "," : "", ids[i]);
    if (!rc) rc = vg_buf_printf(b, "],\"state\":\"%s\"}", *sil || *inh ? "suppressed" : "active");
    return rc;
}

static int filters_match(const get_opts *o, const vg_alert_t *a)
{
    for (size_t i = 0; i < o->nfilters; i++) {
        const char *v = vg_labels_get(a->labels, a->nlabels, vg_matcher_name(o->filters[i]));
        if (!vg_matcher_matches(o->filters[i], v ? v : "")) return 0;
    }
    return 1;
}

/* One gettableAlert; appends nothing when the filters reject it. */
static vg_err_t alert_json(api_ctx *c, const get_opts *o, const vg_dispatch_alert_t *da,
                           int64_t now, vg_buf *b, int *first)
{
    const vg_alert_t *a = &da->a;
    if (!filters_match(o, a)) return VG_OK;
    size_t mark = b->len;
    int sil = 0, inh = 0, rmatch = 0;
    vg_err_t rc = vg_buf_puts(b, *first ? "{\"annotations\":" : ",{\"annotations\":");
    if (!rc) rc = vg_notify_json_labels(b, a->annotations, a->nannotations);
    if (!rc) rc = time_field(b, "endsAt", a->ends_at);
    if (!rc)
        rc = vg_buf_printf(
            b, ",\"fingerprint\":\"%016llx\",\"receivers\":", (unsigned long long)da->fp);
    if (!rc) rc = receivers_json(vg_dispatch_config(c->d), a, b, o->receiver, &rmatch);
    if (!rc) rc = time_field(b, "startsAt", a->starts_at);
    if (!rc) rc = status_json(c, a, now, b, &sil, &inh);
    if (!rc) rc = time_field(b, "updatedAt", da->updated_at);
    const char *g = a->generator_url ? a->generator_url : "";
    if (!rc) rc = vg_buf_puts(b, ",\"generatorURL\":");
    if (!rc) rc = vg_buf_json_str(b, g, strlen(g));
    if (!rc) rc = vg_buf_puts(b, ",\"labels\":");
    if (!rc) rc = vg_notify_json_labels(b, a->labels, a->nlabels);
    if (!rc) rc = vg_buf_putc(b, '}');
    int keep =
        rmatch && (sil || inh || o->active) && (!sil || o->silenced) && (!inh || o->inhibited);
    if (rc || !keep) {
        b->len = mark;
        b->data[mark] = 0;
    } else {
        *first = 0;
    }
    return rc;
}

static void handle_get(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    api_ctx *c = ud;
    get_opts o = {0};
    vg_error err = {0};
    const char *e = get_opts_parse(r, &o, &err);
    if (e) {
        vg_http_resp_text(resp, 400, "%s", e);
        get_opts_free(&o);
        return;
    }
    int64_t now = vg_dispatch_now(c->d);
    vg_dispatch_alert_t *as = NULL;
    size_t n = 0;
    vg_err_t rc = vg_dispatch_alerts(c->d, now, &as, &n);
    int first = 1;
    if (!rc) rc = vg_buf_putc(&resp->body, '[');
    for (size_t i = 0; !rc && i < n; i++) rc = alert_json(c, &o, &as[i], now, &resp->body, &first);
    if (!rc) rc = vg_buf_putc(&resp->body, ']');
    vg_dispatch_alerts_free(c->d, as, n);
    get_opts_free(&o);
    if (rc) {
        vg_buf_reset(&resp->body);
        vg_http_resp_text(resp, 500, "%s", vg_strerror(rc));
        return;
    }
    resp->content_type = "application/json";
}

/* GET /api/v2/alerts/groups: [{labels, receiver: {name}, alerts: [...]}]. */
static vg_err_t groups_json(api_ctx *c, const get_opts *o, int64_t now, vg_buf *b)
{
    vg_dispatch_group_t *gs = NULL;
    size_t n = 0;
    vg_err_t rc = vg_dispatch_groups(c->d, now, &gs, &n);
    if (!rc) rc = vg_buf_putc(b, '[');
    int gfirst = 1;
    for (size_t i = 0; !rc && i < n; i++) {
        if (o->receiver && !vg_matcher_matches(o->receiver, gs[i].receiver)) continue;
        size_t mark = b->len;
        int first = 1;
        rc = vg_buf_puts(b, gfirst ? "{\"alerts\":[" : ",{\"alerts\":[");
        for (size_t j = 0; !rc && j < gs[i].nalerts; j++)
            rc = alert_json(c, o, &gs[i].alerts[j], now, b, &first);
        if (!rc) rc = vg_buf_puts(b, "],\"labels\":");
        if (!rc) rc = vg_notify_json_labels(b, gs[i].labels, gs[i].nlabels);
        if (!rc) rc = vg_buf_puts(b, ",\"receiver\":{\"name\":");
        if (!rc) rc = vg_buf_json_str(b, gs[i].receiver, strlen(gs[i].receiver));
        if (!rc) rc = vg_buf_puts(b, "}}");
        if (!rc && first) { /* no alert passed the filters: leave the group out */
            b->len = mark;
            b->data[mark] = 0;
        } else if (!rc) {
            gfirst = 0;
        }
    }
    if (!rc) rc = vg_buf_putc(b, ']');
    vg_dispatch_groups_free(c->d, gs, n);
    return rc;
}

static void handle_groups(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    api_ctx *c = ud;
    get_opts o = {0};
    vg_error err = {0};
    const char *e = get_opts_parse(r, &o, &err);
    vg_err_t rc = e ? VG_EINVAL : groups_json(c, &o, vg_dispatch_now(c->d), &resp->body);
    get_opts_free(&o);
    if (rc) {
        vg_buf_reset(&resp->body);
        vg_http_resp_text(resp, e ? 400 : 500, "%s", e ? e : vg_strerror(rc));
        return;
    }
    resp->content_type = "application/json";
}

static void handle_post(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    api_ctx *c = ud;
    size_t len;
    const uint8_t *body = vg_http_req_body(r, &len);
    int status;
    vg_alerts_api_post(c->d, (const char *)body, len, vg_dispatch_now(c->d), &status, &resp->body);
    resp->status = status;
    if (status == 200) {
        vg_buf_reset(&resp->body);
        resp->content_type = "application/json";
    }
}

vg_err_t vg_alerts_api_register(vg_dispatch_t *d, vg_alerting_mute_t *mute, vg_httpd_t *h)
{
    static api_ctx ctx; /* one collector per process */
    ctx.d = d;
    ctx.mute = mute;
    vg_err_t rc = vg_httpd_route(h, "GET", "/api/v2/alerts", handle_get, &ctx);
    if (!rc) rc = vg_httpd_route(h, "POST", "/api/v2/alerts", handle_post, &ctx);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v2/alerts/groups", handle_groups, &ctx);
    return rc;
}
