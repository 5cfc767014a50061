/*
 * amconfig.c - the `alerting:` section in Alertmanager's own format.
 *
 * Decoded with the shared schema tables (so unknown keys are errors with
 * file:line:col, as `amtool check-config` rejects them) plus a few custom
 * parsers where Alertmanager's schema is not a plain struct: matcher lists
 * in three spellings that end up in one array, and the route tree, whose
 * children inherit receiver, group_by and timers from their parent. The
 * tree is decoded parent first, its inherited values applied, then its
 * children, so each child can copy finished values. Compiled matchers are
 * heap objects (PCRE2); they are chained on the config and released by
 * vg_amconfig_release, everything else lives in the config's arena.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/amconfig.h"
#include "vigil/alloc.h"

struct vg_am_owned {
    vg_matcher_t *m;
    struct vg_am_owned *next;
};

typedef struct am_state {
    vg_amconfig_t *cfg;
    void *saved_user;
} am_state;

#define AM(f) offsetof(vg_amconfig_t, f)
#define RT(f) offsetof(vg_am_route_t, f)
#define PD(f) offsetof(vg_am_pagerduty_t, f)
#define SL(f) offsetof(vg_am_slack_t, f)
#define WH(f) offsetof(vg_am_webhook_t, f)
#define RC(f) offsetof(vg_am_receiver_t, f)
#define IR(f) offsetof(vg_am_inhibit_rule_t, f)
#define EX(f) offsetof(vg_am_external_t, f)

static vg_amconfig_t *state_cfg(vg_cfg_ctx_t *ctx)
{
    return ((am_state *)ctx->user)->cfg;
}

/* ---- matchers: `matchers:` list, `match:` and `match_re:` maps ---- */

static vg_err_t own(vg_cfg_ctx_t *ctx, vg_matcher_t *m)
{
    vg_amconfig_t *c = state_cfg(ctx);
    struct vg_am_owned *o = vg_arena_alloc(ctx->arena, sizeof *o);
    if (!o) {
        vg_matcher_free(m);
        return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    }
    o->m = m;
    o->next = c->owned_;
    c->owned_ = o;
    return VG_OK;
}

/* Append m to the array at field (vg_matcher_t **) with its count right after it. */
static vg_err_t append_matcher(vg_cfg_ctx_t *ctx, void *field, vg_matcher_t *m)
{
    vg_matcher_t ***arr = field;
    size_t *n = (size_t *)((char *)field + sizeof(vg_matcher_t **));
    vg_err_t rc = own(ctx, m);
    if (rc) return rc;
    vg_matcher_t **na = vg_arena_alloc(ctx->arena, (*n + 1) * sizeof *na);
    if (!na) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    if (*n) memcpy(na, *arr, *n * sizeof *na);
    na[(*n)++] = m;
    *arr = na;
    return VG_OK;
}

static vg_err_t parse_matchers(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    if (vg_cfg_node_empty(node)) return VG_OK;
    if (vg_cfg_node_kind(node) != VG_CFG_SEQ)
        return vg_cfg_errorf(ctx, node, "%s: want a list of matcher strings", ctx->path);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < vg_cfg_node_len(node) && !rc; i++) {
        const vg_cfg_node_t *it = vg_cfg_seq_item(node, i);
        const char *text = vg_cfg_node_text(it);
        vg_matcher_t **ms = NULL;
        size_t n = 0;
        vg_error merr = {0};
        if (!text) return vg_cfg_errorf(ctx, it, "%s: a matcher must be a string", ctx->path);
        if ((rc = vg_am_matchers_parse(text, &ms, &n, &merr)))
            return vg_cfg_errorf(ctx, it, "%s: bad matcher \"%.100s\": %s", ctx->path, text,
                                 merr.msg);
        size_t k = 0;
        for (; k < n && !rc; k++) rc = append_matcher(ctx, field, ms[k]);
        for (; k < n; k++) vg_matcher_free(ms[k]);
        vg_free(ms);
    }
    return rc;
}

static vg_err_t parse_match_map(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field,
                                vg_match_op op)
{
    if (vg_cfg_node_empty(node)) return VG_OK;
    if (vg_cfg_node_kind(node) != VG_CFG_MAP)
        return vg_cfg_errorf(ctx, node, "%s: want a map of label: value", ctx->path);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < vg_cfg_node_len(node) && !rc; i++) {
        const char *k = vg_cfg_node_text(vg_cfg_map_key(node, i));
        const vg_cfg_node_t *v = vg_cfg_map_value(node, i);
        const char *val = vg_cfg_node_text(v);
        vg_matcher_t *m = NULL;
        vg_error merr = {0};
        if (!val) return vg_cfg_errorf(ctx, v, "%s.%s: want a string", ctx->path, k);
        if (!vg_label_name_valid(k, strlen(k)))
            return vg_cfg_errorf(ctx, vg_cfg_map_key(node, i),
                                 "\"%.100s\" is not a valid label name", k);
        if (vg_matcher_new(op, k, val, &m, &merr))
            return vg_cfg_errorf(ctx, v, "%s.%s: %s", ctx->path, k, merr.msg);
        rc = append_matcher(ctx, field, m);
    }
    return rc;
}

static vg_err_t parse_match(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    return parse_match_map(ctx, node, field, VG_MATCH_EQ);
}

static vg_err_t parse_match_re(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    return parse_match_map(ctx, node, field, VG_MATCH_RE);
}

static vg_err_t parse_ignore(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    return VG_OK; /* decoded by the caller afterwards (child routes) */
}

/* ---- receivers ---- */

static vg_err_t check_pagerduty(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_am_pagerduty_t *p = obj;
    if (!p->routing_key || !p->routing_key[0])
        return vg_cfg_errorf(ctx, node, "missing service or routing key in PagerDuty config");
    if (!p->url) p->url = state_cfg(ctx)->pagerduty_url;
    return VG_OK;
}

static vg_err_t check_slack(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_am_slack_t *s = obj;
    if (!s->api_url) s->api_url = state_cfg(ctx)->slack_api_url;
    if (!s->api_url) return vg_cfg_errorf(ctx, node, "no global Slack API URL set");
    return VG_OK;
}

static vg_err_t check_webhook(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_am_webhook_t *w = obj;
    if (!w->url || !w->url[0])
        return vg_cfg_errorf(ctx, node, "one of url or url_file must be configured");
    return VG_OK;
}

static const vg_cfg_field_t pagerduty_schema[] = {
    {.key = "send_resolved",
     .type = VG_CFG_T_BOOL,
     .offset = PD(send_resolved),
     .def = "true",
     .doc = "notify when the alerts of a group resolve"},
    {.key = "routing_key",
     .type = VG_CFG_T_STRING,
     .offset = PD(routing_key),
     .doc = "Events API v2 integration key (required)"},
    {.key = "url",
     .type = VG_CFG_T_STRING,
     .offset = PD(url),
     .def_doc = "global.pagerduty_url",
     .doc = "Events API v2 endpoint"},
    {.key = "client", .type = VG_CFG_T_STRING, .offset = PD(client), .doc = "client name"},
    {.key = "client_url", .type = VG_CFG_T_STRING, .offset = PD(client_url), .doc = "client link"},
    {.key = "description",
     .type = VG_CFG_T_STRING,
     .offset = PD(description),
     .doc = "summary of the incident"},
    {.key = "severity",
     .type = VG_CFG_T_STRING,
     .offset = PD(severity),
     .def = "error",
     .doc = "PagerDuty severity"},
    {.key = "component", .type = VG_CFG_T_STRING, .offset = PD(component), .doc = "component"},
    {.key = "group", .type = VG_CFG_T_STRING, .offset = PD(group), .doc = "logical group"},
    {.key = "class", .type = VG_CFG_T_STRING, .offset = PD(class_), .doc = "class of event"},
    {.key = "details",
     .type = VG_CFG_T_KVMAP,
     .offset = PD(details),
     .count_offset = PD(ndetails),
     .doc = "custom_details key/value pairs"},
    {0},
};

static const vg_cfg_field_t slack_schema[] = {
    {.key = "send_resolved",
     .type = VG_CFG_T_BOOL,
     .offset = SL(send_resolved),
     .def = "false",
     .doc = "notify when the alerts of a group resolve"},
    {.key = "api_url",
     .type = VG_CFG_T_STRING,
     .offset = SL(api_url),
     .def_doc = "global.slack_api_url",
     .doc = "incoming-webhook URL"},
    {.key = "channel", .type = VG_CFG_T_STRING, .offset = SL(channel), .doc = "channel or user"},
    {.key = "username", .type = VG_CFG_T_STRING, .offset = SL(username), .doc = "sender name"},
    {.key = "title", .type = VG_CFG_T_STRING, .offset = SL(title), .doc = "attachment title"},
    {.key = "title_link", .type = VG_CFG_T_STRING, .offset = SL(title_link), .doc = "title link"},
    {.key = "text", .type = VG_CFG_T_STRING, .offset = SL(text), .doc = "attachment text"},
    {.key = "color", .type = VG_CFG_T_STRING, .offset = SL(color), .doc = "attachment colour"},
    {.key = "icon_emoji", .type = VG_CFG_T_STRING, .offset = SL(icon_emoji), .doc = "icon"},
    {0},
};

static const vg_cfg_field_t webhook_schema[] = {
    {.key = "send_resolved",
     .type = VG_CFG_T_BOOL,
     .offset = WH(send_resolved),
     .def = "true",
     .doc = "notify when the alerts of a group resolve"},
    {.key = "url", .type = VG_CFG_T_STRING, .offset = WH(url), .doc = "endpoint (required)"},
    {.key = "max_alerts",
     .type = VG_CFG_T_UINT,
     .offset = WH(max_alerts),
     .def = "0",
     .doc = "most alerts per message; 0 = all"},
    {0},
};

static const vg_cfg_field_t receiver_schema[] = {
    {.key = "name",
     .type = VG_CFG_T_STRING,
     .offset = RC(name),
     .flags = VG_CFG_REQUIRED,
     .doc = "unique receiver name"},
    {.key = "pagerduty_configs",
     .type = VG_CFG_T_LIST,
     .offset = RC(pagerduty),
     .count_offset = RC(npagerduty),
     .sub = pagerduty_schema,
     .elem_size = sizeof(vg_am_pagerduty_t),
     .check = check_pagerduty,
     .doc = "PagerDuty Events API v2"},
    {.key = "slack_configs",
     .type = VG_CFG_T_LIST,
     .offset = RC(slack),
     .count_offset = RC(nslack),
     .sub = slack_schema,
     .elem_size = sizeof(vg_am_slack_t),
     .check = check_slack,
     .doc = "Slack incoming webhooks"},
    {.key = "webhook_configs",
     .type = VG_CFG_T_LIST,
     .offset = RC(webhook),
     .count_offset = RC(nwebhook),
     .sub = webhook_schema,
     .elem_size = sizeof(vg_am_webhook_t),
     .check = check_webhook,
     .doc = "Alertmanager webhook payload, version 4"},
    {0},
};

/* ---- inhibit rules ---- */

static vg_err_t check_inhibit(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_am_inhibit_rule_t *r = obj;
    for (size_t i = 0; i < r->nequal; i++)
        if (!vg_label_name_valid(r->equal[i], strlen(r->equal[i])))
            return vg_cfg_errorf(ctx, node, "invalid label name \"%s\" in equal", r->equal[i]);
    return VG_OK;
}

static const vg_cfg_field_t inhibit_schema[] = {
    {.key = "source_matchers",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(source),
     .parse = parse_matchers,
     .type_doc = "list of matchers",
     .doc = "alerts that inhibit"},
    {.key = "source_match",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(source),
     .parse = parse_match,
     .type_doc = "map",
     .doc = "deprecated: equality matchers for the source"},
    {.key = "source_match_re",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(source),
     .parse = parse_match_re,
     .type_doc = "map",
     .doc = "deprecated: regex matchers for the source"},
    {.key = "target_matchers",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(target),
     .parse = parse_matchers,
     .type_doc = "list of matchers",
     .doc = "alerts that are inhibited"},
    {.key = "target_match",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(target),
     .parse = parse_match,
     .type_doc = "map",
     .doc = "deprecated: equality matchers for the target"},
    {.key = "target_match_re",
     .type = VG_CFG_T_CUSTOM,
     .offset = IR(target),
     .parse = parse_match_re,
     .type_doc = "map",
     .doc = "deprecated: regex matchers for the target"},
    {.key = "equal",
     .type = VG_CFG_T_STRINGS,
     .offset = IR(equal),
     .count_offset = IR(nequal),
     .doc = "labels whose values must be equal on source and target"},
    {0},
};

/* ---- alertmanagers (Prometheus) ---- */

static vg_err_t parse_static(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    vg_am_external_t *e = obj;
    if (vg_cfg_node_empty(node)) return VG_OK;
    if (vg_cfg_node_kind(node) != VG_CFG_SEQ)
        return vg_cfg_errorf(ctx, node, "static_configs: want a list");
    for (size_t i = 0; i < vg_cfg_node_len(node); i++) {
        const vg_cfg_node_t *sc = vg_cfg_seq_item(node, i), *t = vg_cfg_map_get(sc, "targets");
        if (vg_cfg_node_kind(sc) != VG_CFG_MAP)
            return vg_cfg_errorf(ctx, sc, "static_configs: want a map with targets");
        for (size_t k = 0; k < vg_cfg_node_len(sc); k++) {
            const char *key = vg_cfg_node_text(vg_cfg_map_key(sc, k));
            if (strcmp(key, "targets") && strcmp(key, "labels"))
                return vg_cfg_errorf(ctx, vg_cfg_map_key(sc, k),
                                     "unknown key \"%s\" in static_configs", key);
        }
        size_t n = vg_cfg_node_len(t);
        const char **na = vg_arena_alloc(ctx->arena, (e->ntargets + n + 1) * sizeof *na);
        if (!na) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
        if (e->ntargets) memcpy(na, e->targets, e->ntargets * sizeof *na);
        for (size_t k = 0; k < n; k++) {
            vg_err_t rc = vg_cfg_get_string(ctx, vg_cfg_seq_item(t, k), &na[e->ntargets + k]);
            if (rc) return rc;
        }
        e->targets = na;
        e->ntargets += n;
    }
    return VG_OK;
}

static vg_err_t parse_api_version(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field,
                                  void *obj)
{
    const char *v = vg_cfg_node_text(node);
    if (!node || vg_cfg_node_kind(node) == VG_CFG_NULL || (v && !strcmp(v, "v2"))) return VG_OK;
    return vg_cfg_errorf(ctx, node, "api_version: only v2 is supported");
}

static const vg_cfg_field_t external_schema[] = {
    {.key = "static_configs",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_static,
     .type_doc = "list of {targets: [host:port]}",
     .def_doc = "`[]`",
     .doc = "Alertmanagers to send to"},
    {.key = "scheme",
     .type = VG_CFG_T_STRING,
     .offset = EX(scheme),
     .def = "http",
     .choices = "http|https",
     .doc = "URL scheme"},
    {.key = "path_prefix",
     .type = VG_CFG_T_STRING,
     .offset = EX(path_prefix),
     .def = "",
     .doc = "prefix of /api/v2/alerts"},
    {.key = "timeout",
     .type = VG_CFG_T_DURATION,
     .offset = EX(timeout_ms),
     .def = "10s",
     .min = "1ms",
     .doc = "per-request timeout"},
    {.key = "api_version",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_api_version,
     .type_doc = "string",
     .def_doc = "v2",
     .doc = "Alertmanager API version (v2 only)"},
    {0},
};

/* ---- global ---- */

static const vg_cfg_field_t global_schema[] = {
    {.key = "resolve_timeout",
     .type = VG_CFG_T_DURATION,
     .offset = AM(resolve_timeout_ms),
     .def = "5m",
     .min = "1ms",
     .doc = "alerts without endsAt resolve after this"},
    {.key = "pagerduty_url",
     .type = VG_CFG_T_STRING,
     .offset = AM(pagerduty_url),
     .def = "https://events.pagerduty.com/v2/enqueue",
     .doc = "default PagerDuty endpoint"},
    {.key = "slack_api_url",
     .type = VG_CFG_T_STRING,
     .offset = AM(slack_api_url),
     .doc = "default Slack webhook URL"},
    {0},
};

/* ---- the route tree ---- */

static const vg_cfg_field_t route_schema[] = {
    {.key = "receiver",
     .type = VG_CFG_T_STRING,
     .offset = RT(receiver),
     .def_doc = "the parent's",
     .doc = "receiver of the alerts this route takes"},
    {.key = "group_by",
     .type = VG_CFG_T_STRINGS,
     .offset = RT(group_by),
     .count_offset = RT(ngroup_by),
     .def_doc = "the parent's",
     .doc = "labels that form a group; ['...'] groups by every label"},
    {.key = "matchers",
     .type = VG_CFG_T_CUSTOM,
     .offset = RT(matchers),
     .parse = parse_matchers,
     .type_doc = "list of matchers",
     .def_doc = "`[]`",
     .doc = "Alertmanager matchers an alert must meet"},
    {.key = "match",
     .type = VG_CFG_T_CUSTOM,
     .offset = RT(matchers),
     .parse = parse_match,
     .type_doc = "map",
     .def_doc = "`{}`",
     .doc = "deprecated: label equality"},
    {.key = "match_re",
     .type = VG_CFG_T_CUSTOM,
     .offset = RT(matchers),
     .parse = parse_match_re,
     .type_doc = "map",
     .def_doc = "`{}`",
     .doc = "deprecated: label regexes"},
    {.key = "continue",
     .type = VG_CFG_T_BOOL,
     .offset = RT(continue_matching),
     .def = "false",
     .doc = "keep matching siblings after this route matched"},
    {.key = "group_wait",
     .type = VG_CFG_T_DURATION,
     .offset = RT(group_wait_ms),
     .def_doc = "30s or the parent's",
     .doc = "wait before the first notification of a group"},
    {.key = "group_interval",
     .type = VG_CFG_T_DURATION,
     .offset = RT(group_interval_ms),
     .def_doc = "5m or the parent's",
     .doc = "wait before notifying about changes in a group"},
    {.key = "repeat_interval",
     .type = VG_CFG_T_DURATION,
     .offset = RT(repeat_interval_ms),
     .def_doc = "4h or the parent's",
     .doc = "wait before repeating an unchanged notification"},
    {.key = "routes",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_ignore,
     .type_doc = "list of routes",
     .def_doc = "`[]`",
     .doc = "child routes, same keys"},
    {0},
};

static vg_err_t route_group_by(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_am_route_t *r)
{
    for (size_t i = 0; i < r->ngroup_by; i++) {
        if (!strcmp(r->group_by[i], "...")) {
            if (r->ngroup_by != 1)
                return vg_cfg_errorf(ctx, node,
                                     "cannot have wildcard group_by (`...`) and other labels at "
                                     "the same time");
            r->group_by_all = 1;
            r->ngroup_by = 0;
            return VG_OK;
        }
        if (!vg_label_name_valid(r->group_by[i], strlen(r->group_by[i])))
            return vg_cfg_errorf(ctx, node, "invalid label name \"%s\" in group_by list",
                                 r->group_by[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(r->group_by[i], r->group_by[j]))
                return vg_cfg_errorf(ctx, node, "duplicated label \"%s\" in group_by",
                                     r->group_by[i]);
    }
    return VG_OK;
}

/* Fill what the route did not set from its parent (or the defaults at the root). */
static vg_err_t route_inherit(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_am_route_t *r)
{
    const vg_am_route_t *p = r->parent;
    const vg_cfg_node_t *gb = vg_cfg_map_get(node, "group_by");
    if (!r->receiver && p) r->receiver = p->receiver;
    if (vg_cfg_node_kind(gb) == VG_CFG_NULL && p) {
        r->group_by = p->group_by;
        r->ngroup_by = p->ngroup_by;
        r->group_by_all = p->group_by_all;
    } else {
        vg_err_t rc = route_group_by(ctx, gb ? gb : node, r);
        if (rc) return rc;
    }
    if (!vg_cfg_map_get(node, "group_wait")) r->group_wait_ms = p ? p->group_wait_ms : 30000;
    if (!vg_cfg_map_get(node, "group_interval"))
        r->group_interval_ms = p ? p->group_interval_ms : 300000;
    if (!vg_cfg_map_get(node, "repeat_interval"))
        r->repeat_interval_ms = p ? p->repeat_interval_ms : 4 * 3600000;
    if (r->group_interval_ms <= 0) return vg_cfg_errorf(ctx, node, "group_interval cannot be zero");
    if (r->repeat_interval_ms <= 0)
        return vg_cfg_errorf(ctx, node, "repeat_interval cannot be zero");
    return VG_OK;
}

static vg_err_t decode_route(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_am_route_t *r,
                             const vg_am_route_t *parent)
{
    r->parent = parent;
    vg_err_t rc = vg_cfg_decode(ctx, node, route_schema, r);
    if (!rc) rc = route_inherit(ctx, node, r);
    if (!rc && vg_am_route_finish(ctx->arena, r))
        rc = vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    if (rc) return rc;
    const vg_cfg_node_t *kids = vg_cfg_map_get(node, "routes");
    if (vg_cfg_node_empty(kids)) return VG_OK;
    if (vg_cfg_node_kind(kids) != VG_CFG_SEQ)
        return vg_cfg_errorf(ctx, kids, "routes: want a list of routes");
    r->nroutes = vg_cfg_node_len(kids);
    r->routes = vg_arena_calloc(ctx->arena, r->nroutes * sizeof *r->routes);
    if (!r->routes) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->nroutes && !rc; i++)
        rc = decode_route(ctx, vg_cfg_seq_item(kids, i), &r->routes[i], r);
    return rc;
}

static vg_err_t parse_route(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    vg_amconfig_t *c = obj;
    if (vg_cfg_node_empty(node)) return VG_OK; /* checked once receivers are known */
    vg_err_t rc = decode_route(ctx, node, &c->route, NULL);
    if (rc) return rc;
    if (!c->route.receiver)
        return vg_cfg_errorf(ctx, node, "root route must specify a default receiver");
    if (c->route.nmatchers)
        return vg_cfg_errorf(ctx, node, "root route must not have any matchers");
    if (c->route.continue_matching)
        return vg_cfg_errorf(ctx, node, "cannot have continue in root route");
    c->configured = 1;
    return VG_OK;
}

/* ---- the section ---- */

static const vg_cfg_field_t alerting_schema[] = {
    {.key = "global",
     .type = VG_CFG_T_SECTION,
     .sub = global_schema,
     .doc = "defaults for the rest of the section"},
    {.key = "receivers",
     .type = VG_CFG_T_LIST,
     .offset = AM(receivers),
     .count_offset = AM(nreceivers),
     .sub = receiver_schema,
     .elem_size = sizeof(vg_am_receiver_t),
     .doc = "named notification targets"},
    {.key = "route",
     .type = VG_CFG_T_CUSTOM,
     .parse = parse_route,
     .type_doc = "route",
     .def_doc = "`{}` (nothing routed)",
     .doc = "the routing tree; its root needs a receiver"},
    {.key = "inhibit_rules",
     .type = VG_CFG_T_LIST,
     .offset = AM(inhibit_rules),
     .count_offset = AM(ninhibit_rules),
     .sub = inhibit_schema,
     .elem_size = sizeof(vg_am_inhibit_rule_t),
     .check = check_inhibit,
     .doc = "mute targets while a matching source fires"},
    {.key = "alertmanagers",
     .type = VG_CFG_T_LIST,
     .offset = AM(alertmanagers),
     .count_offset = AM(nalertmanagers),
     .sub = external_schema,
     .elem_size = sizeof(vg_am_external_t),
     .doc = "external Alertmanagers (Prometheus format)"},
    {0},
};

/* Every receiver a route names must exist. */
static vg_err_t check_receivers(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node,
                                const vg_amconfig_t *c, const vg_am_route_t *r)
{
    const vg_cfg_node_t *rn = vg_cfg_map_get(node, "receiver");
    if (r->receiver && !vg_amconfig_receiver(c, r->receiver))
        return vg_cfg_errorf(ctx, rn ? rn : node, "undefined receiver \"%s\" used in route",
                             r->receiver);
    const vg_cfg_node_t *kids = vg_cfg_map_get(node, "routes");
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < r->nroutes && !rc; i++)
        rc = check_receivers(ctx, vg_cfg_seq_item(kids, i), c, &r->routes[i]);
    return rc;
}

static vg_err_t check_section(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_amconfig_t *c)
{
    const vg_cfg_node_t *recv = vg_cfg_map_get(node, "receivers");
    for (size_t i = 0; i < c->nreceivers; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->receivers[i].name, c->receivers[j].name))
                return vg_cfg_errorf(ctx, vg_cfg_seq_item(recv, i),
                                     "notification config name \"%s\" is not unique",
                                     c->receivers[i].name);
    if (!c->configured) {
        if (c->nreceivers)
            return vg_cfg_errorf(ctx, node,
                                 "no routes provided: the root route must specify a "
                                 "default receiver");
        return VG_OK;
    }
    return check_receivers(ctx, vg_cfg_map_get(node, "route"), c, &c->route);
}

vg_err_t vg_amconfig_parse(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    vg_amconfig_t *c = field;
    am_state st = {.cfg = c, .saved_user = ctx->user};
    ctx->user = &st;
    vg_err_t rc =
        vg_cfg_decode(ctx, vg_cfg_node_kind(node) == VG_CFG_NULL ? NULL : node, alerting_schema, c);
    if (!rc && node) rc = check_section(ctx, node, c);
    ctx->user = st.saved_user;
    return rc;
}

void vg_amconfig_release(vg_amconfig_t *c)
{
    if (!c) return;
    for (struct vg_am_owned *o = c->owned_; o; o = o->next) vg_matcher_free(o->m);
    c->owned_ = NULL;
}

/* A standalone alertmanager.yml: the same section at the top level, minus alertmanagers. */
vg_err_t vg_amconfig_parse_text(const char *name, const char *yaml, size_t len, vg_arena_t *arena,
                                vg_amconfig_t *out, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    memset(out, 0, sizeof *out);
    vg_err_t rc = vg_cfg_doc_parse(name, yaml, len, &doc, err);
    if (rc) return rc;
    vg_cfg_ctx_t ctx;
    vg_cfg_ctx_init(&ctx, doc, arena, err);
    const vg_cfg_node_t *root = vg_cfg_doc_root(doc);
    rc = vg_amconfig_parse(&ctx, vg_cfg_node_kind(root) == VG_CFG_NULL ? NULL : root, out, NULL);
    vg_cfg_doc_free(doc);
    return rc;
}

const vg_am_receiver_t *vg_amconfig_receiver(const vg_amconfig_t *c, const char *name)
{
    if (!c || !name) return NULL;
    for (size_t i = 0; i < c->nreceivers; i++)
        if (!strcmp(c->receivers[i].name, name)) return &c->receivers[i];
    return NULL;
}
