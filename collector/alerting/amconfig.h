/*
 * amconfig.h - the `alerting:` section: Alertmanager's configuration format.
 *
 * Users bring their alertmanager.yml across unchanged, so the structs mirror
 * Alertmanager's schema (global, route, receivers, inhibit_rules) plus
 * Prometheus's `alertmanagers` list for teams that keep an external
 * Alertmanager. Everything lives in the collector config's arena; the tree
 * is immutable once loaded, so the dispatcher can read it from any thread
 * and a reload swaps the whole config. Matchers reuse vg_matcher_t (the four
 * operators, PCRE2, fully anchored), which is exactly Alertmanager's
 * semantics.
 */
#ifndef VIGIL_ALERTING_AMCONFIG_H
#define VIGIL_ALERTING_AMCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/config.h"
#include "vigil/error.h"
#include "vigil/labels.h"

typedef struct vg_am_route {
    const char *receiver; /* inherited from the parent when absent */
    const char **group_by;
    size_t ngroup_by;
    int group_by_all; /* group_by: ['...'] */
    vg_matcher_t **matchers; /* matchers:, match:, match_re: combined */
    size_t nmatchers;
    int continue_matching; /* `continue: true` */
    int64_t group_wait_ms;      /* 30s default, inherited */
    int64_t group_interval_ms;  /* 5m default, inherited */
    int64_t repeat_interval_ms; /* 4h default, inherited */
    struct vg_am_route *routes;
    size_t nroutes;
    const struct vg_am_route *parent; /* NULL for the root */
    const char *id; /* Alertmanager's route key: "{}/{matchers}/..." path, for group keys */
} vg_am_route_t;

typedef struct vg_am_pagerduty {
    int send_resolved;       /* default true */
    const char *routing_key; /* Events API v2 */
    const char *url;         /* default global.pagerduty_url */
    const char *client, *client_url, *description, *severity, *component, *group, *class_;
    vg_kv_t *details; /* custom_details (values are templates in Alertmanager; literals here) */
    size_t ndetails;
} vg_am_pagerduty_t;

typedef struct vg_am_slack {
    int send_resolved; /* default false */
    const char *api_url; /* default global.slack_api_url */
    const char *channel, *username, *title, *title_link, *text, *color, *icon_emoji;
} vg_am_slack_t;

typedef struct vg_am_webhook {
    int send_resolved; /* default true */
    const char *url;
    uint64_t max_alerts; /* 0 = all */
} vg_am_webhook_t;

typedef struct vg_am_receiver {
    const char *name;
    vg_am_pagerduty_t *pagerduty;
    size_t npagerduty;
    vg_am_slack_t *slack;
    size_t nslack;
    vg_am_webhook_t *webhook;
    size_t nwebhook;
} vg_am_receiver_t;

typedef struct vg_am_inhibit_rule {
    vg_matcher_t **source; /* source_matchers + source_match + source_match_re */
    size_t nsource;
    vg_matcher_t **target;
    size_t ntarget;
    const char **equal;
    size_t nequal;
} vg_am_inhibit_rule_t;

/* alertmanagers: (Prometheus's alerting.alertmanagers, static_configs only) */
typedef struct vg_am_external {
    const char **targets; /* host:port */
    size_t ntargets;
    const char *scheme;      /* http */
    const char *path_prefix; /* "" */
    int64_t timeout_ms;      /* 10s */
} vg_am_external_t;

typedef struct vg_amconfig {
    int64_t resolve_timeout_ms; /* global.resolve_timeout, 5m */
    const char *pagerduty_url;  /* global.pagerduty_url, https://events.pagerduty.com/v2/enqueue */
    const char *slack_api_url;  /* global.slack_api_url, NULL */
    vg_am_route_t route;
    vg_am_receiver_t *receivers;
    size_t nreceivers;
    vg_am_inhibit_rule_t *inhibit_rules;
    size_t ninhibit_rules;
    vg_am_external_t *alertmanagers;
    size_t nalertmanagers;
    int configured; /* 0 when the section was absent or its route and receivers empty:
                       nothing is routed (alertmanagers may still be set) */
    struct vg_am_owned *owned_; /* matchers to free (vg_amconfig_release) */
} vg_amconfig_t;

/* Free the compiled matchers a parse made (the rest lives in the arena).
 * Safe on a zeroed or half-parsed config; called by vg_collector_config_free. */
void vg_amconfig_release(vg_amconfig_t *c);

/* Parse a standalone alertmanager.yml text (top level global, route,
 * receivers, inhibit_rules) into *out, strings in arena; the same file can
 * be given to a real Alertmanager. Caller calls vg_amconfig_release. */
vg_err_t vg_amconfig_parse_text(const char *name, const char *yaml, size_t len, vg_arena_t *arena,
                                vg_amconfig_t *out, vg_error *err);

/* Parse a matcher list `a="1", b=~"x"` or `{a="1"}` (Alertmanager's
 * ParseMatchers) into a vg_malloc'd array of *n matchers; the caller frees
 * each with vg_matcher_free and the array with vg_free. */
vg_err_t vg_am_matchers_parse(const char *text, vg_matcher_t ***out, size_t *n, vg_error *err);

/* Append a matcher as Alertmanager prints it: name="value" with Go quoting. */
vg_err_t vg_am_matcher_format(const vg_matcher_t *m, vg_buf *out);

/* vg_cfg_parse_fn for the collector's `alerting:` key: field points at a
 * vg_amconfig_t. Cross-checks (unknown receiver names, a root route with
 * matchers or no receiver) fail with file:line:col. */
vg_err_t vg_amconfig_parse(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj);

/* Parse Alertmanager matcher syntax: `name="value"`, `name=~"re"`, `a!=b`,
 * `{a="1", b=~"x"}` (one item); quotes optional, escapes as Alertmanager.
 * VG_EINVAL with a message. */
vg_err_t vg_am_matcher_parse(const char *text, vg_matcher_t **out, vg_error *err);

/* Routes matching labels, depth first as Alertmanager walks them: the first
 * matching child wins unless it has `continue`; a route with no matching
 * child matches itself. Fills up to max entries of out; returns how many
 * matched. */
size_t vg_am_route_match(const vg_am_route_t *root, const vg_label_t *l, size_t n,
                         const vg_am_route_t **out, size_t max);

/* Sort r's matchers as Alertmanager does (name, value, operator) and set
 * r->id from r->parent's id (used while loading; the parent is finished
 * first). VG_ENOMEM only. */
vg_err_t vg_am_route_finish(vg_arena_t *arena, vg_am_route_t *r);

/* The receiver called name, or NULL. */
const vg_am_receiver_t *vg_amconfig_receiver(const vg_amconfig_t *c, const char *name);

#endif
