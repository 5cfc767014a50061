/*
 * test_am_route.c - walking the routing tree as Alertmanager does: depth
 * first, first matching child wins, `continue`, a route without a matching
 * child matches itself, and route keys for group keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alerting/amconfig.h"

static const char *const TREE =
    "route:\n"
    "  receiver: default\n"
    "  routes:\n"
    "    - matchers: ['team=\"a\"']\n"
    "      receiver: a\n"
    "      group_wait: 1s\n"
    "      routes:\n"
    "        - {matchers: ['severity=\"critical\"'], receiver: a-pager}\n"
    "        - {matchers: ['severity=~\"warn.*\"'], receiver: a-chat}\n"
    "    - {matchers: ['team=\"b\"'], receiver: b, continue: true}\n"
    "    - {match: {env: prod}, receiver: prod}\n"
    "    - {matchers: ['team=\"b\"'], receiver: b2}\n"
    "    - {matchers: ['team!=\"\"', 'team!~\"a|b\"'], receiver: other}\n"
    "receivers: [{name: default}, {name: a}, {name: a-pager}, {name: a-chat}, {name: b},\n"
    "            {name: prod}, {name: b2}, {name: other}]\n";

static vg_arena_t *arena;
static vg_amconfig_t cfg;

static int setup(void **state)
{
    vg_error err = {0};
    arena = vg_arena_new(0);
    if (vg_amconfig_parse_text("t.yml", TREE, strlen(TREE), arena, &cfg, &err)) {
        print_error("%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    vg_amconfig_release(&cfg);
    vg_arena_free(arena);
    return 0;
}

/* Route labels (sorted) and the receivers expected, comma-joined. */
static void expect(const vg_label_t *l, size_t n, const char *want)
{
    const vg_am_route_t *out[8];
    size_t got = vg_am_route_match(&cfg.route, l, n, out, 8);
    char buf[256] = "";
    for (size_t i = 0; i < got && i < 8; i++) {
        if (i) strcat(buf, ",");
        strcat(buf, out[i]->receiver);
    }
    assert_string_equal(buf, want);
}

static void test_first_match_wins_depth_first(void **state)
{
    vg_label_t crit[] = {{"severity", "critical"}, {"team", "a"}};
    expect(crit, 2, "a-pager");
    vg_label_t warn[] = {{"severity", "warning"}, {"team", "a"}};
    expect(warn, 2, "a-chat");
}

static void test_no_child_matches_self(void **state)
{
    vg_label_t info[] = {{"severity", "info"}, {"team", "a"}};
    expect(info, 2, "a");
    vg_label_t none[] = {{"alertname", "X"}};
    expect(none, 1, "default");
    expect(NULL, 0, "default");
}

static void test_continue(void **state)
{
    vg_label_t b_prod[] = {{"env", "prod"}, {"team", "b"}};
    expect(b_prod, 2, "b,prod"); /* prod has no continue: b2 is not reached */
    vg_label_t b[] = {{"team", "b"}};
    expect(b, 1, "b,b2");
    vg_label_t c[] = {{"team", "c"}};
    expect(c, 1, "other");
}

static void test_max(void **state)
{
    const vg_am_route_t *out[1];
    vg_label_t b[] = {{"team", "b"}};
    assert_int_equal(vg_am_route_match(&cfg.route, b, 1, out, 1), 2);
    assert_string_equal(out[0]->receiver, "b");
}

static void test_inheritance_and_ids(void **state)
{
    const vg_am_route_t *a = &cfg.route.routes[0], *pager = &a->routes[0];
    assert_string_equal(cfg.route.id, "{}");
    assert_string_equal(a->id, "{}/{team=\"a\"}");
    assert_string_equal(pager->id, "{}/{team=\"a\"}/{severity=\"critical\"}");
    assert_string_equal(a->routes[1].id, "{}/{team=\"a\"}/{severity=~\"warn.*\"}");
    assert_string_equal(cfg.route.routes[2].id, "{}/{env=\"prod\"}");
    /* sorted by name, then value, then operator */
    assert_string_equal(cfg.route.routes[4].id, "{}/{team!=\"\",team!~\"a|b\"}");
    assert_int_equal(a->group_wait_ms, 1000);
    assert_int_equal(pager->group_wait_ms, 1000); /* from its parent, not the default */
    assert_int_equal(pager->group_interval_ms, 300000);
    assert_int_equal(cfg.route.routes[1].group_wait_ms, 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_wins_depth_first),
        cmocka_unit_test(test_no_child_matches_self),
        cmocka_unit_test(test_continue),
        cmocka_unit_test(test_max),
        cmocka_unit_test(test_inheritance_and_ids),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
