/*
 * test_breaker.c - the circuit breaker's state machine, driven by an explicit
 * clock so no test sleeps: 5 failures open it, 30 s later it half-opens with
 * 3 probes, 2 successes close it, a half-open failure re-opens it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ship/batcher.h"
#include "vigil/breaker.h"

static double gauge(vg_metrics_t *m)
{
    return vg_metric_value(
        vg_metrics_gauge(m, "vigil_agent_sink_breaker_state", "", "sink=\"kafka\""));
}

static void test_opens_after_five_failures(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_breaker_t b;
    vg_breaker_init(&b, NULL, &vg_batcher_breaker_names, "kafka", m);
    int64_t t = 1000;
    for (int i = 0; i < 4; i++) {
        assert_true(vg_breaker_allow(&b, t));
        vg_breaker_failure(&b, t);
    }
    assert_int_equal(vg_breaker_state_at(&b, t), VG_BREAKER_CLOSED);
    vg_breaker_success(&b, t); /* a success resets the count */
    for (int i = 0; i < 4; i++) vg_breaker_failure(&b, t);
    assert_int_equal(vg_breaker_state_at(&b, t), VG_BREAKER_CLOSED);
    vg_breaker_failure(&b, t);
    assert_int_equal(vg_breaker_state_at(&b, t), VG_BREAKER_OPEN);
    assert_true(gauge(m) == 1);
    assert_false(vg_breaker_allow(&b, t + 29999));
    assert_false(vg_breaker_ready(&b, t + 29999));
    assert_int_equal(vg_breaker_reopen_at(&b), t + 30000);
    assert_true(vg_metric_value(vg_metrics_counter(m, "vigil_agent_sink_breaker_opens_total", "",
                                                   "sink=\"kafka\"")) == 1);
    vg_metrics_free(m);
}

static void open_it(vg_breaker_t *b, int64_t t)
{
    for (int i = 0; i < 5; i++) vg_breaker_failure(b, t);
    assert_int_equal(vg_breaker_state_at(b, t), VG_BREAKER_OPEN);
}

static void test_half_open_probes_then_closes(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_breaker_t b;
    vg_breaker_init(&b, NULL, &vg_batcher_breaker_names, "kafka", m);
    open_it(&b, 0);
    assert_int_equal(vg_breaker_state_at(&b, 30000), VG_BREAKER_HALF_OPEN);
    assert_true(gauge(m) == 2);
    /* up to 3 probes in flight, no more */
    assert_true(vg_breaker_allow(&b, 30000));
    assert_true(vg_breaker_allow(&b, 30000));
    assert_true(vg_breaker_allow(&b, 30000));
    assert_false(vg_breaker_ready(&b, 30000));
    assert_false(vg_breaker_allow(&b, 30000));
    vg_breaker_success(&b, 30001);
    assert_int_equal(vg_breaker_state_at(&b, 30001), VG_BREAKER_HALF_OPEN);
    assert_true(vg_breaker_ready(&b, 30001)); /* an answered probe frees its slot */
    vg_breaker_success(&b, 30002);
    assert_int_equal(vg_breaker_state_at(&b, 30002), VG_BREAKER_CLOSED);
    assert_true(gauge(m) == 0);
    assert_true(vg_breaker_allow(&b, 30002));
    vg_metrics_free(m);
}

static void test_half_open_failure_reopens(void **state)
{
    vg_breaker_t b;
    vg_breaker_init(&b, NULL, &vg_batcher_breaker_names, "http", NULL);
    open_it(&b, 0);
    assert_true(vg_breaker_allow(&b, 30000));
    vg_breaker_success(&b, 30000);
    assert_true(vg_breaker_allow(&b, 30500));
    vg_breaker_failure(&b, 30500); /* one failure is enough in half-open */
    assert_int_equal(vg_breaker_state_at(&b, 30500), VG_BREAKER_OPEN);
    assert_false(vg_breaker_allow(&b, 60499)); /* a fresh 30 s from the re-open */
    assert_int_equal(vg_breaker_state_at(&b, 60500), VG_BREAKER_HALF_OPEN);
    /* the success count starts over in the new half-open period */
    assert_true(vg_breaker_allow(&b, 60500));
    vg_breaker_success(&b, 60500);
    assert_int_equal(vg_breaker_state_at(&b, 60500), VG_BREAKER_HALF_OPEN);
}

static void test_custom_options(void **state)
{
    vg_breaker_opts o = {.failures = 1, .open_ms = 10, .probes = 1, .successes = 5};
    vg_breaker_t b;
    vg_breaker_init(&b, &o, &vg_batcher_breaker_names, "x", NULL);
    assert_int_equal(b.o.successes, 1); /* cannot need more successes than probes */
    vg_breaker_failure(&b, 0);
    assert_int_equal(vg_breaker_state_at(&b, 9), VG_BREAKER_OPEN);
    assert_true(vg_breaker_allow(&b, 10));
    assert_false(vg_breaker_allow(&b, 10));
    vg_breaker_success(&b, 11);
    assert_int_equal(vg_breaker_state_at(&b, 11), VG_BREAKER_CLOSED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_after_five_failures),
        cmocka_unit_test(test_half_open_probes_then_closes),
        cmocka_unit_test(test_half_open_failure_reopens),
        cmocka_unit_test(test_custom_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
