/*
 * test_amconfig.c - the `alerting:` section: a full Alertmanager config,
 * defaults and inheritance, the errors amtool check-config gives, matcher
 * syntax, and the section inside the collector config.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alerting/amconfig.h"
#include "collector/config.h"
#include "vigil/alloc.h"

static const char *const FULL =
    "global:\n"
    "  resolve_timeout: 2m\n"
    "  slack_api_url: http://slack.local/hook\n"
    "route:\n"
    "  receiver: default\n"
    "  group_by: [alertname, cluster]\n"
    "  group_wait: 10s\n"
    "  routes:\n"
    "    - matchers: ['severity=\"critical\"']\n"
    "      receiver: pager\n"
    "      repeat_interval: 1h\n"
    "    - match: {severity: warning}\n"
    "      match_re: {service: 'api|web'}\n"
    "      receiver: chat\n"
    "      group_by: ['...']\n"
    "      continue: true\n"
    "receivers:\n"
    "  - name: default\n"
    "    webhook_configs: [{url: 'http://127.0.0.1:1/x', max_alerts: 5}]\n"
    "  - name: pager\n"
    "    pagerduty_configs:\n"
    "      - routing_key: abc\n"
    "        details: {team: core, env: prod}\n"
    "  - name: chat\n"
    "    slack_configs: [{channel: '#ops', title: T, color: danger}]\n"
    "inhibit_rules:\n"
    "  - source_matchers: [severity=critical]\n"
    "    target_match: {severity: warning}\n"
    "    equal: [alertname, cluster, service]\n"
    "alertmanagers:\n"
    "  - static_configs: [{targets: ['127.0.0.1:9093', 'am2:9093']}]\n"
    "    path_prefix: /am\n";

typedef struct fixture {
    vg_arena_t *arena;
    vg_amconfig_t cfg;
} fixture;

static vg_err_t parse(fixture *f, const char *yaml, vg_error *err)
{
    f->arena = vg_arena_new(0);
    return vg_amconfig_parse_text("am.yml", yaml, strlen(yaml), f->arena, &f->cfg, err);
}

static void done(fixture *f)
{
    vg_amconfig_release(&f->cfg);
    vg_arena_free(f->arena);
}

static void test_full(void **state)
{
    fixture f;
    vg_error err = {0};
    if (parse(&f, FULL, &err)) fail_msg("%s", err.msg);
    const vg_amconfig_t *c = &f.cfg;
    assert_true(c->configured);
    assert_int_equal(c->resolve_timeout_ms, 120000);
    assert_int_equal(c->nreceivers, 3);
    const vg_am_receiver_t *pager = vg_amconfig_receiver(c, "pager");
    assert_non_null(pager);
    assert_int_equal(pager->npagerduty, 1);
    assert_string_equal(pager->pagerduty[0].url, "https://events.pagerduty.com/v2/enqueue");
    assert_true(pager->pagerduty[0].send_resolved);
    assert_string_equal(pager->pagerduty[0].severity, "error");
    assert_int_equal(pager->pagerduty[0].ndetails, 2);
    assert_string_equal(pager->pagerduty[0].details[0].key, "team");
    const vg_am_receiver_t *chat = vg_amconfig_receiver(c, "chat");
    assert_string_equal(chat->slack[0].api_url, "http://slack.local/hook");
    assert_false(chat->slack[0].send_resolved);
    const vg_am_receiver_t *def = vg_amconfig_receiver(c, "default");
    assert_true(def->webhook[0].send_resolved);
    assert_int_equal(def->webhook[0].max_alerts, 5);
    assert_null(vg_amconfig_receiver(c, "nope"));
    assert_int_equal(c->ninhibit_rules, 1);
    assert_int_equal(c->inhibit_rules[0].nsource, 1);
    assert_int_equal(c->inhibit_rules[0].ntarget, 1);
    assert_int_equal(c->inhibit_rules[0].nequal, 3);
    assert_int_equal(c->nalertmanagers, 1);
    assert_int_equal(c->alertmanagers[0].ntargets, 2);
    assert_string_equal(c->alertmanagers[0].targets[1], "am2:9093");
    assert_string_equal(c->alertmanagers[0].scheme, "http");
    assert_string_equal(c->alertmanagers[0].path_prefix, "/am");
    assert_int_equal(c->alertmanagers[0].timeout_ms, 10000);
    done(&f);
}

static void test_route_inheritance(void **state)
{
    fixture f;
    vg_error err = {0};
    if (parse(&f, FULL, &err)) fail_msg("%s", err.msg);
    const vg_am_route_t *root = &f.cfg.route, *crit = &root->routes[0], *warn = &root->routes[1];
    assert_string_equal(root->id, "{}");
    assert_int_equal(root->group_wait_ms, 10000);
    assert_int_equal(root->group_interval_ms, 300000);
    assert_int_equal(root->repeat_interval_ms, 4 * 3600000);
    assert_int_equal(root->ngroup_by, 2);
    assert_string_equal(crit->id, "{}/{severity=\"critical\"}");
    assert_string_equal(crit->receiver, "pager");
    assert_int_equal(crit->group_wait_ms, 10000);        /* inherited */
    assert_int_equal(crit->repeat_interval_ms, 3600000); /* own */
    assert_int_equal(crit->ngroup_by, 2);                /* inherited */
    assert_ptr_equal(crit->parent, root);
    /* match and match_re are combined and sorted by name as Alertmanager does */
    assert_string_equal(warn->id, "{}/{service=~\"api|web\",severity=\"warning\"}");
    assert_true(warn->group_by_all);
    assert_true(warn->continue_matching);
    assert_false(crit->continue_matching);
    done(&f);
}

static void test_defaults_and_empty(void **state)
{
    fixture f;
    vg_error err = {0};
    assert_int_equal(parse(&f, "route: {receiver: r}\nreceivers: [{name: r}]\n", &err), VG_OK);
    assert_int_equal(f.cfg.resolve_timeout_ms, 300000);
    assert_string_equal(f.cfg.pagerduty_url, "https://events.pagerduty.com/v2/enqueue");
    assert_null(f.cfg.slack_api_url);
    assert_int_equal(f.cfg.route.group_wait_ms, 30000);
    assert_false(f.cfg.route.group_by_all);
    done(&f);
    assert_int_equal(parse(&f, "", &err), VG_OK);
    assert_false(f.cfg.configured);
    done(&f);
    assert_int_equal(parse(&f, "route: {}\nreceivers: []\ninhibit_rules: []\n", &err), VG_OK);
    assert_false(f.cfg.configured);
    done(&f);
}

static void test_errors(void **state)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"route: {receiver: r}\nreceivers: [{name: r}]\nroutez: {}\n",
         "am.yml:3:1: unknown key \"routez\""},
        {"route: {receiver: x}\nreceivers: [{name: r}]\n",
         "am.yml:1:19: undefined receiver \"x\" used in route"},
        {"route:\n  receiver: r\n  routes:\n    - receiver: y\nreceivers: [{name: r}]\n",
         "am.yml:4:17: undefined receiver \"y\" used in route"},
        {"route: {group_by: [a]}\nreceivers: [{name: r}]\n",
         "am.yml:1:8: root route must specify a default receiver"},
        {"route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n",
         "root route must not have any matchers"},
        {"route: {receiver: r, match: {a: b}}\nreceivers: [{name: r}]\n",
         "root route must not have any matchers"},
        {"route: {receiver: r, continue: true}\nreceivers: [{name: r}]\n",
         "cannot have continue in root route"},
        {"route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n",
         "am.yml:2:24: notification config name \"r\" is not unique"},
        {"receivers: [{name: r}]\n", "root route must specify a default receiver"},
        {"route: {receiver: r}\nreceivers: [{name: r, email_configs: []}]\n",
         "unknown key \"email_configs\""},
        {"route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{urll: x}]}]\n",
         "unknown key \"urll\""},
        {"route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{max_alerts: 1}]}]\n",
         "one of url or url_file must be configured"},
        {"route: {receiver: r}\nreceivers: [{name: r, pagerduty_configs: [{severity: x}]}]\n",
         "missing service or routing key in PagerDuty config"},
        {"route: {receiver: r}\nreceivers: [{name: r, slack_configs: [{channel: x}]}]\n",
         "no global Slack API URL set"},
        {"route: {receiver: r, routes: [{matchers: ['a=~\"(\"']}]}\nreceivers: [{name: r}]\n",
         "bad matcher"},
        {"route: {receiver: r, routes: [{matchers: ['a b']}]}\nreceivers: [{name: r}]\n",
         "bad matcher"},
        {"route: {receiver: r, group_by: ['...', a]}\nreceivers: [{name: r}]\n",
         "cannot have wildcard group_by"},
        {"route: {receiver: r, group_by: [a-b]}\nreceivers: [{name: r}]\n",
         "invalid label name \"a-b\" in group_by list"},
        {"route: {receiver: r, group_by: [a, a]}\nreceivers: [{name: r}]\n",
         "duplicated label \"a\" in group_by"},
        {"route: {receiver: r, group_interval: 0s}\nreceivers: [{name: r}]\n",
         "group_interval cannot be zero"},
        {"route: {receiver: r, group_wait: soon}\nreceivers: [{name: r}]\n", "expected a duration"},
        {"inhibit_rules: [{source_match: {'1x': a}}]\n", "not a valid label name"},
        {"inhibit_rules: [{equal: ['a-b']}]\n", "invalid label name \"a-b\" in equal"},
        {"inhibit_rules: [{source_matchers: 'a=b'}]\n", "want a list of matcher strings"},
        {"alertmanagers: [{static_configs: [{targetz: [x]}]}]\n", "unknown key \"targetz\""},
        {"alertmanagers: [{scheme: ftp}]\n", "alertmanagers[0].scheme"},
        {"alertmanagers: [{api_version: v1}]\n", "only v2 is supported"},
        {"global: {resolve_timeout: 0s}\n", "resolve_timeout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fixture f;
        vg_error err = {0};
        vg_err_t rc = parse(&f, cases[i].yaml, &err);
        done(&f);
        if (!rc) fail_msg("case %zu accepted:\n%s", i, cases[i].yaml);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
    }
}

static void check_matcher(const char *text, vg_match_op op, const char *name, const char *value)
{
    vg_matcher_t *m = NULL;
    vg_error err = {0};
    if (vg_am_matcher_parse(text, &m, &err)) fail_msg("%s: %s", text, err.msg);
    assert_int_equal(vg_matcher_op(m), op);
    assert_string_equal(vg_matcher_name(m), name);
    assert_string_equal(vg_matcher_value(m), value);
    vg_matcher_free(m);
}

static void test_matchers(void **state)
{
    check_matcher("a=\"b\"", VG_MATCH_EQ, "a", "b");
    check_matcher("  a = b  ", VG_MATCH_EQ, "a", "b");
    check_matcher("a=~\"b.*\"", VG_MATCH_RE, "a", "b.*");
    check_matcher("a!~x|y", VG_MATCH_NRE, "a", "x|y");
    check_matcher("a!=\"\"", VG_MATCH_NEQ, "a", "");
    check_matcher("{a=\"b\"}", VG_MATCH_EQ, "a", "b");
    check_matcher("a=\"q\\\"uo\\\\te\\n\"", VG_MATCH_EQ, "a", "q\"uo\\te\n");
    check_matcher("a=\"x, y\"", VG_MATCH_EQ, "a", "x, y");
    check_matcher("\"odd name\"=v", VG_MATCH_EQ, "odd name", "v");
    check_matcher("a=", VG_MATCH_EQ, "a", "");
    check_matcher("a=hello world", VG_MATCH_EQ, "a", "hello world");

    vg_matcher_t **ms = NULL;
    size_t n = 0;
    vg_error err = {0};
    assert_int_equal(vg_am_matchers_parse("{a=\"1\", b=~\"x\",}", &ms, &n, &err), VG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(vg_matcher_op(ms[1]), VG_MATCH_RE);
    for (size_t i = 0; i < n; i++) vg_matcher_free(ms[i]);
    vg_free(ms);
    assert_int_equal(vg_am_matchers_parse("", &ms, &n, &err), VG_OK);
    assert_int_equal(n, 0);
    vg_free(ms);

    static const char *const bad[] = {"a",      "=b",      "a=\"b",     "a=~\"(\"",
                                      "{a=b",   "a=b}",    "a=\"b\" c", "a=\"\\q\"",
                                      "a==b\"", "a=b,c=d", "a<b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vg_matcher_t *m = NULL;
        if (vg_am_matcher_parse(bad[i], &m, &err) == VG_OK) fail_msg("accepted %s", bad[i]);
        assert_null(m);
    }
}

static void test_format(void **state)
{
    vg_matcher_t *m = NULL;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_am_matcher_parse("a=~\"x\\\"y\\n\"", &m, NULL), VG_OK);
    assert_int_equal(vg_am_matcher_format(m, &b), VG_OK);
    assert_string_equal(b.data, "a=~\"x\\\"y\\n\"");
    vg_matcher_free(m);
    vg_buf_reset(&b); /* a name that is not a label name is quoted, as Alertmanager 0.27 does */
    assert_int_equal(vg_am_matcher_parse("\"odd name\"!=\"\\x41\"", &m, NULL), VG_OK);
    assert_string_equal(vg_matcher_value(m), "A");
    assert_int_equal(vg_am_matcher_format(m, &b), VG_OK);
    assert_string_equal(b.data, "\"odd name\"!=\"A\"");
    vg_matcher_free(m);
    vg_buf_free(&b);
}

static void test_in_collector_config(void **state)
{
    vg_collector_config_t *c = NULL;
    vg_error err = {0};
    const char *skel =
        "alerting:  {route: {}, receivers: [], inhibit_rules: [], alertmanagers: []}\n";
    assert_int_equal(vg_collector_config_parse("c.yml", skel, strlen(skel), &c, &err), VG_OK);
    assert_false(c->alerting.configured);
    vg_collector_config_free(c);
    const char *y = "alerting:\n  route: {receiver: r, routes: [{matchers: [a=b], receiver: r}]}\n"
                    "  receivers: [{name: r}]\n";
    if (vg_collector_config_parse("c.yml", y, strlen(y), &c, &err)) fail_msg("%s", err.msg);
    assert_true(c->alerting.configured);
    assert_string_equal(c->alerting.route.routes[0].id, "{}/{a=\"b\"}");
    vg_collector_config_free(c);
    const char *bad = "alerting:\n  route: {receiver: nope}\n";
    assert_int_equal(vg_collector_config_parse("c.yml", bad, strlen(bad), &c, &err), VG_ECONFIG);
    assert_non_null(strstr(err.msg, "c.yml:2:21: undefined receiver \"nope\""));
}

/* Every allocation failure while parsing is an error, never a crash or a leak. */
static void test_alloc_failures(void **state)
{
    int ok = 0;
    for (long n = 1; n < 5000 && !ok; n++) {
        fixture f = {.arena = vg_arena_new(0)};
        long before = vg_alloc_failures();
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_amconfig_parse_text("am.yml", FULL, strlen(FULL), f.arena, &f.cfg, NULL);
        vg_alloc_fail_after(0);
        ok = rc == VG_OK && vg_alloc_failures() == before;
        done(&f);
        vg_matcher_t **ms = NULL;
        size_t cnt = 0;
        vg_alloc_fail_after(n);
        if (vg_am_matchers_parse("{a=\"1\", b=~\"x.*\"}", &ms, &cnt, NULL) == VG_OK) {
            for (size_t i = 0; i < cnt; i++) vg_matcher_free(ms[i]);
            vg_free(ms);
        }
        vg_alloc_fail_after(0);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_route_inheritance),
        cmocka_unit_test(test_defaults_and_empty),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_in_collector_config),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
