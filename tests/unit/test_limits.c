/*
 * test_limits.c - the per-tenant token bucket (with an injected clock, no
 * sleeps), its retry-after hint, overrides and defaults, the series cap and
 * the rejection counters, both on vg_limits directly and through the store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "tsdb/limits.h"
#include "tsdb/tsdb.h"
#include "vigil/buf.h"

static int64_t now_us;

static int64_t fake_clock(void *ud)
{
    (void)ud;
    return now_us;
}

static void test_bucket(void **state)
{
    (void)state;
    vg_tenant_limits_t def = {.ingestion_rate = 100, .ingestion_burst = 200, .max_series = 5};
    vg_tenant_limits_t per[] = {{.tenant = "slow", .ingestion_rate = 10, .ingestion_burst = 10}};
    vg_metrics_t *m = vg_metrics_new();
    vg_limits_t *l = vg_limits_new(&def, per, 1, m);
    assert_non_null(l);
    now_us = 1000000;
    vg_limits_set_clock(l, fake_clock, NULL);
    vg_error err = {0};
    int ra = -1;
    assert_int_equal(vg_limits_take(l, "a", 150, &ra, &err), VG_OK); /* burst: 200 */
    assert_int_equal(ra, 0);
    assert_int_equal(vg_limits_take(l, "a", 60, &ra, &err), VG_ELIMIT); /* 50 left */
    assert_int_equal(ra, 1);                                            /* 10 more at 100/s */
    assert_int_equal(vg_tsdb_retry_after_s(&err), 1);
    assert_non_null(strstr(err.msg, "tenant a"));
    assert_non_null(strstr(err.msg, "retry_after_ms=100)")); /* exact, for the Kafka consumer */
    assert_int_equal(vg_limits_take(l, "a", 50, &ra, &err), VG_OK); /* refused one took nothing */
    now_us += 500000;                                               /* +50 tokens */
    assert_int_equal(vg_limits_take(l, "a", 50, &ra, &err), VG_OK);
    assert_int_equal(vg_limits_take(l, "a", 1, &ra, &err), VG_ELIMIT);
    now_us += 100 * 1000000LL; /* refill caps at the burst */
    assert_int_equal(vg_limits_take(l, "a", 200, &ra, &err), VG_OK);
    assert_int_equal(vg_limits_take(l, "a", 1, &ra, &err), VG_ELIMIT);
    /* The override: 10/s; a long wait is hinted as such. */
    assert_int_equal(vg_limits_take(l, "slow", 10, &ra, &err), VG_OK);
    assert_int_equal(vg_limits_take(l, "slow", 10, &ra, &err), VG_ELIMIT);
    assert_int_equal(ra, 1);
    assert_int_equal(vg_limits_take(l, "slow", 5, &ra, &err), VG_ELIMIT);
    now_us += 300000; /* 3 tokens */
    assert_int_equal(vg_limits_take(l, "slow", 10, &ra, &err), VG_ELIMIT);
    assert_int_equal(ra, 1); /* 7 more at 10/s: ceil(0.7) */
    /* Bigger than the burst: passes on a full bucket, then the debt is paid. */
    now_us += 10 * 1000000LL;
    assert_int_equal(vg_limits_take(l, "slow", 50, &ra, &err), VG_OK);
    assert_int_equal(vg_limits_take(l, "slow", 1, &ra, &err), VG_ELIMIT);
    assert_int_equal(ra, 5); /* from -40 to 1 token: 4.1 s */
    assert_non_null(strstr(err.msg, "retry_after_ms=4100)"));
    assert_int_equal(vg_limits_max_series(l, "a"), 5);
    assert_int_equal(vg_limits_max_series(l, "slow"), 0);
    assert_int_equal(vg_limits_series_refused(l, "a", &err), VG_ELIMIT);
    assert_int_equal(vg_tsdb_retry_after_s(&err), VG_LIMITS_SERIES_RETRY_S);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_metrics_render(m, &b), VG_OK);
    assert_non_null(
        strstr(b.data, "vigil_tsdb_limit_rejections_total{reason=\"rate\",tenant=\"a\"} 3"));
    assert_non_null(
        strstr(b.data, "vigil_tsdb_limit_rejections_total{reason=\"rate\",tenant=\"slow\"} 4"));
    assert_non_null(
        strstr(b.data, "vigil_tsdb_limit_rejections_total{reason=\"max_series\",tenant=\"a\"} 1"));
    vg_buf_free(&b);
    vg_limits_free(l);
    vg_metrics_free(m);
}

static void test_unlimited(void **state)
{
    (void)state;
    vg_limits_t *l = vg_limits_new(NULL, NULL, 0, NULL);
    assert_int_equal(vg_limits_take(l, "x", 1u << 30, NULL, NULL), VG_OK);
    assert_int_equal(vg_limits_max_series(l, "x"), 0);
    vg_limits_free(l);
    vg_error err = {0};
    assert_int_equal(vg_tsdb_retry_after_s(&err), 0);
    assert_int_equal(vg_tsdb_retry_after_s(NULL), 0);
}

/* Through the store: a request over the rate is refused whole; the series cap. */
static void test_store(void **state)
{
    (void)state;
    vg_tenant_limits_t def = {.ingestion_rate = 1e9, .ingestion_burst = 1e9, .max_series = 2};
    vg_tenant_limits_t per[] = {{.tenant = "tiny", .ingestion_rate = 1, .ingestion_burst = 3}};
    vg_tsdb_opts o = {.default_limits = &def, .tenant_limits = per, .ntenant_limits = 1};
    vg_tsdb_t *db;
    vg_error err = {0};
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &err), VG_OK);
    Prometheus__Label ln = PROMETHEUS__LABEL__INIT;
    ln.name = "__name__";
    ln.value = "m";
    Prometheus__Label *lp = &ln;
    Prometheus__Sample smp[4];
    Prometheus__Sample *sp[4];
    for (int i = 0; i < 4; i++) {
        prometheus__sample__init(&smp[i]);
        smp[i].timestamp = 1000 + i;
        smp[i].value = i;
        sp[i] = &smp[i];
    }
    Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
    ts.labels = &lp;
    ts.n_labels = 1;
    ts.samples = sp;
    ts.n_samples = 4;
    Prometheus__TimeSeries *tsp = &ts;
    vg_append_stats st = {0};
    ts.n_samples = 2; /* burst 3: fits */
    assert_int_equal(vg_tsdb_append_timeseries(db, "tiny", &tsp, 1, &st, &err), VG_OK);
    ts.n_samples = 4; /* 1 token left: refused whole */
    assert_int_equal(vg_tsdb_append_timeseries(db, "tiny", &tsp, 1, &st, &err), VG_ELIMIT);
    assert_int_equal(st.samples_appended, 2);
    assert_int_equal(st.samples_deduplicated, 0); /* nothing was even looked at */
    assert_int_equal(vg_tsdb_retry_after_s(&err), 2); /* until the bucket is full */
    assert_int_equal(vg_tsdb_append_timeseries(db, "other", &tsp, 1, &st, &err), VG_OK);
    assert_int_equal(st.samples_appended, 6);
    vg_label_t a[] = {{"__name__", "a"}}, b[] = {{"__name__", "b"}}, c[] = {{"__name__", "c"}};
    assert_int_equal(vg_tsdb_append(db, "other", a, 1, 5, 1, NULL, &err), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "other", b, 1, 5, 1, NULL, &err), VG_ELIMIT);
    assert_non_null(strstr(err.msg, "active series"));
    assert_int_equal(vg_tsdb_append(db, "other", c, 1, 5, 1, NULL, &err), VG_ELIMIT);
    assert_int_equal(vg_tsdb_append(db, "other", a, 1, 6, 1, NULL, &err), VG_OK);
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
