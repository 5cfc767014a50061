/*
 * test_inhibit.c - inhibition, case by case as Alertmanager's own tests
 * describe it: equal labels (present, different, absent on both, absent on
 * one side), only unresolved sources inhibit (resolved by a put or by the
 * clock), sources and targets under several rules, and the two-sided rule:
 * an alert matching both sides is not inhibited by itself or by another
 * two-sided alert, but is by a source-only alert. vg_inhibitor_mutes_by
 * names the source by its fingerprint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alerting/inhibit.h"
#include "notify/notify.h"
#include "vigil/clock.h"

static const char *const RULES = "inhibit_rules:\n"
                                 "  - source_matchers: ['s=\"1\"']\n"
                                 "    target_matchers: ['t=\"1\"']\n"
                                 "    equal: [e]\n"
                                 "  - source_match: {s2: '1'}\n"
                                 "    target_match_re: {t2: '1|2'}\n";

/* A day ahead of the wall clock: the inhibitor drops sources resolved by the
 * wall clock when they are put, and the checks below run at this time. */
static int64_t NOW;
#define L(...)                                                                                     \
    ((vg_label_t[]){__VA_ARGS__}), (sizeof((vg_label_t[]){__VA_ARGS__}) / sizeof(vg_label_t))

static vg_arena_t *arena;
static vg_amconfig_t cfg;

static int setup(void **state)
{
    NOW = vg_clock_wall_ms() + 86400000;
    arena = vg_arena_new(0);
    return vg_amconfig_parse_text("i.yml", RULES, strlen(RULES), arena, &cfg, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
    vg_amconfig_release(&cfg);
    vg_arena_free(arena);
    return 0;
}

static void put(vg_inhibitor_t *in, const vg_label_t *l, size_t n, int64_t ends_at)
{
    vg_alert_t a = {.labels = l, .nlabels = n, .starts_at = NOW - 1000, .ends_at = ends_at};
    assert_int_equal(vg_inhibitor_put(in, &a), VG_OK);
}

static void test_no_sources(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    assert_false(vg_inhibitor_mutes(in, L({"e", "x"}, {"t", "1"}), NOW));
    vg_inhibitor_free(in);
}

static void test_equal_labels(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    put(in, L({"e", "x"}, {"s", "1"}), 0);
    assert_true(vg_inhibitor_mutes(in, L({"e", "x"}, {"t", "1"}), NOW));  /* equal */
    assert_false(vg_inhibitor_mutes(in, L({"e", "y"}, {"t", "1"}), NOW)); /* different */
    assert_false(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));             /* missing on target */
    assert_false(vg_inhibitor_mutes(in, L({"e", "x"}, {"t", "2"}), NOW)); /* not a target */
    uint64_t by = 0; /* inhibitedBy: the source's Alertmanager fingerprint */
    assert_true(vg_inhibitor_mutes_by(in, L({"e", "x"}, {"t", "1"}), NOW, &by));
    assert_true(by == vg_notify_fingerprint(L({"e", "x"}, {"s", "1"})));
    vg_inhibitor_free(in);
}

static void test_missing_on_both_sides_is_equal(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    put(in, L({"s", "1"}), 0);
    assert_true(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    assert_false(vg_inhibitor_mutes(in, L({"e", "x"}, {"t", "1"}), NOW)); /* missing on source */
    vg_inhibitor_free(in);
}

static void test_resolved_sources_do_not_inhibit(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    put(in, L({"s", "1"}), NOW + 60000); /* firing until a minute from now */
    assert_true(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    assert_false(vg_inhibitor_mutes(in, L({"t", "1"}), NOW + 60000)); /* resolved by the clock */
    put(in, L({"s", "1"}), 1);                                        /* resolved by an update */
    assert_false(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    put(in, L({"s", "1"}), 0); /* fires again */
    assert_true(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    vg_inhibitor_free(in);
}

static void test_two_sided(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    /* an alert matching both sides does not inhibit itself */
    put(in, L({"s", "1"}, {"t", "1"}), 0);
    assert_false(vg_inhibitor_mutes(in, L({"s", "1"}, {"t", "1"}), NOW));
    /* ... nor another two-sided alert, but it does inhibit a target-only alert */
    assert_false(vg_inhibitor_mutes(in, L({"a", "2"}, {"s", "1"}, {"t", "1"}), NOW));
    assert_true(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    /* a source-only alert inhibits the two-sided ones */
    put(in, L({"s", "1"}, {"x", "y"}), 0);
    assert_true(vg_inhibitor_mutes(in, L({"s", "1"}, {"t", "1"}), NOW));
    vg_inhibitor_free(in);
}

static void test_several_rules(void **state)
{
    vg_inhibitor_t *in = vg_inhibitor_new(&cfg);
    put(in, L({"s2", "1"}), 0);
    assert_true(vg_inhibitor_mutes(in, L({"t2", "2"}), NOW)); /* rule 2, no equal */
    assert_false(vg_inhibitor_mutes(in, L({"t2", "3"}), NOW));
    assert_false(vg_inhibitor_mutes(in, L({"t", "1"}), NOW)); /* rule 1 has no source */
    put(in, L({"s", "1"}), 0);
    assert_true(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    vg_inhibitor_free(in);
}

static void test_no_rules(void **state)
{
    vg_amconfig_t empty = {0};
    vg_inhibitor_t *in = vg_inhibitor_new(&empty);
    put(in, L({"s", "1"}), 0);
    assert_false(vg_inhibitor_mutes(in, L({"t", "1"}), NOW));
    vg_inhibitor_free(in);
    vg_inhibitor_free(NULL);
    assert_false(vg_inhibitor_mutes(NULL, NULL, 0, NOW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_sources),
        cmocka_unit_test(test_equal_labels),
        cmocka_unit_test(test_missing_on_both_sides_is_equal),
        cmocka_unit_test(test_resolved_sources_do_not_inhibit),
        cmocka_unit_test(test_two_sided),
        cmocka_unit_test(test_several_rules),
        cmocka_unit_test(test_no_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
