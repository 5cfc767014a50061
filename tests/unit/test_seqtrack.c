/*
 * test_seqtrack.c - per-agent batch seq tracking: contiguous delivery, gaps,
 * out-of-order and duplicate batches, the window slide, the agent cap, and
 * the self-metrics the Kafka outage test reads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/seqtrack.h"
#include "vigil/buf.h"

static vg_seqtrack_agent get(vg_seqtrack_t *t, const char *id)
{
    vg_seqtrack_agent a;
    assert_true(vg_seqtrack_get(t, id, &a));
    return a;
}

static void test_in_order(void **state)
{
    vg_seqtrack_t *t = vg_seqtrack_new(NULL, NULL);
    for (uint64_t s = 1; s <= 100; s++)
        assert_int_equal(vg_seqtrack_observe(t, "a", s), VG_SEQ_NEW);
    vg_seqtrack_agent a = get(t, "a");
    assert_int_equal(a.highest, 100);
    assert_int_equal(a.contiguous, 100);
    assert_int_equal(a.missing, 0);
    assert_int_equal(a.duplicates, 0);
    assert_int_equal(a.batches, 100);
    vg_seqtrack_free(t);
}

static void test_gaps_and_reordering(void **state)
{
    vg_seqtrack_t *t = vg_seqtrack_new(NULL, NULL);
    vg_seqtrack_observe(t, "a", 1);
    vg_seqtrack_observe(t, "a", 3);
    vg_seqtrack_observe(t, "a", 6);
    vg_seqtrack_agent a = get(t, "a");
    assert_int_equal(a.missing, 3); /* 2, 4, 5 */
    assert_int_equal(a.contiguous, 1);
    vg_seqtrack_observe(t, "a", 2);
    vg_seqtrack_observe(t, "a", 5);
    a = get(t, "a");
    assert_int_equal(a.missing, 1);
    assert_int_equal(a.contiguous, 3);
    vg_seqtrack_observe(t, "a", 4);
    a = get(t, "a");
    assert_int_equal(a.missing, 0);
    assert_int_equal(a.contiguous, 6);
    assert_int_equal(a.highest, 6);
    vg_seqtrack_free(t);
}

static void test_duplicates(void **state)
{
    vg_seqtrack_t *t = vg_seqtrack_new(NULL, NULL);
    assert_int_equal(vg_seqtrack_observe(t, "a", 1), VG_SEQ_NEW);
    assert_int_equal(vg_seqtrack_observe(t, "a", 3), VG_SEQ_NEW);
    assert_int_equal(vg_seqtrack_observe(t, "a", 1), VG_SEQ_DUPLICATE); /* below base */
    assert_int_equal(vg_seqtrack_observe(t, "a", 3), VG_SEQ_DUPLICATE); /* in the bitmap */
    assert_int_equal(vg_seqtrack_observe(t, "a", 2), VG_SEQ_NEW);
    vg_seqtrack_agent a = get(t, "a");
    assert_int_equal(a.duplicates, 2);
    assert_int_equal(a.batches, 5);
    assert_int_equal(a.missing, 0);
    vg_seqtrack_free(t);
}

static void test_window_slide(void **state)
{
    vg_seqtrack_opts o = {.window = 64};
    vg_seqtrack_t *t = vg_seqtrack_new(&o, NULL);
    vg_seqtrack_observe(t, "a", 1);
    vg_seqtrack_observe(t, "a", 100); /* inside: 2..99 missing, tracked */
    vg_seqtrack_observe(t, "a", 50);
    vg_seqtrack_observe(t, "a", 200); /* slides: base -> 136 */
    vg_seqtrack_agent a = get(t, "a");
    assert_int_equal(a.highest, 200);
    assert_int_equal(a.contiguous, 136);
    assert_int_equal(a.missing, 200 - 4); /* everything but 1, 50, 100, 200 */
    assert_int_equal(vg_seqtrack_observe(t, "a", 60), VG_SEQ_DUPLICATE); /* fell off */
    for (uint64_t s = 137; s < 200; s++) vg_seqtrack_observe(t, "a", s);
    a = get(t, "a");
    assert_int_equal(a.contiguous, 200);
    assert_int_equal(a.missing, 200 - 4 - 63);
    vg_seqtrack_free(t);
}

static void test_shuffled_delivery(void **state)
{
    enum { N = 5000 };
    static uint64_t seqs[N];
    for (int i = 0; i < N; i++) seqs[i] = (uint64_t)i + 1;
    unsigned r = 7;
    for (int i = 0; i < N; i++) { /* local shuffles: every seq moves less than 100 places */
        int j = i + (int)(rand_r(&r) % 100);
        if (j >= N) j = N - 1;
        uint64_t x = seqs[i];
        seqs[i] = seqs[j];
        seqs[j] = x;
    }
    vg_seqtrack_t *t = vg_seqtrack_new(NULL, NULL);
    for (int i = 0; i < N; i++) assert_int_equal(vg_seqtrack_observe(t, "a", seqs[i]), VG_SEQ_NEW);
    vg_seqtrack_agent a = get(t, "a");
    assert_int_equal(a.contiguous, N);
    assert_int_equal(a.missing, 0);
    vg_seqtrack_free(t);
}

static void test_agents_and_cap(void **state)
{
    vg_seqtrack_opts o = {.max_agents = 100};
    vg_metrics_t *m = vg_metrics_new();
    vg_seqtrack_t *t = vg_seqtrack_new(&o, m);
    char id[32];
    for (int i = 0; i < 150; i++) {
        snprintf(id, sizeof(id), "node-%d/abc", i);
        vg_seq_result r = vg_seqtrack_observe(t, id, 1);
        assert_int_equal(r, i < 100 ? VG_SEQ_NEW : VG_SEQ_UNTRACKED);
    }
    assert_int_equal(vg_seqtrack_observe(t, "", 1), VG_SEQ_UNTRACKED);
    assert_int_equal(vg_seqtrack_observe(t, "node-1/abc", 0), VG_SEQ_UNTRACKED);
    vg_seqtrack_agent a;
    assert_false(vg_seqtrack_get(t, "node-120/abc", &a));
    assert_true(vg_seqtrack_get(t, "node-99/abc", &a));
    assert_true(vg_metric_value(vg_metrics_gauge(m, "vigil_ingest_agents_tracked", "", NULL)) ==
                100);
    assert_true(vg_metric_value(
                    vg_metrics_counter(m, "vigil_ingest_batches_untracked_total", "", NULL)) == 52);
    vg_seqtrack_free(t);
    vg_metrics_free(m);
}

static void test_metrics(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_seqtrack_t *t = vg_seqtrack_new(NULL, m);
    vg_seqtrack_observe(t, "n\"1/x", 1);
    vg_seqtrack_observe(t, "n\"1/x", 3);
    vg_seqtrack_observe(t, "n\"1/x", 3);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_metrics_render(m, &b), VG_OK);
    assert_non_null(strstr(b.data, "vigil_ingest_agent_seq_highest{agent_id=\"n\\\"1/x\"} 3\n"));
    assert_non_null(strstr(b.data, "vigil_ingest_agent_seq_gaps{agent_id=\"n\\\"1/x\"} 1\n"));
    assert_non_null(
        strstr(b.data, "vigil_ingest_agent_batches_duplicate_total{agent_id=\"n\\\"1/x\"} 1\n"));
    assert_non_null(strstr(b.data, "vigil_ingest_batches_duplicate_total 1\n"));
    vg_buf_free(&b);
    vg_seqtrack_free(t);
    vg_metrics_free(m);
    vg_seqtrack_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),          cmocka_unit_test(test_gaps_and_reordering),
        cmocka_unit_test(test_duplicates),        cmocka_unit_test(test_window_slide),
        cmocka_unit_test(test_shuffled_delivery), cmocka_unit_test(test_agents_and_cap),
        cmocka_unit_test(test_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
