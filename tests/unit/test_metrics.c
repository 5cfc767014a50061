/*
 * test_metrics.c - self-metrics registry, text rendering and float format.
 *
 * The float tables hold what Go's strconv.FormatFloat prints ('g' and 'f'
 * with precision -1), since Prometheus and Grafana compare against that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/metrics.h"

static void test_render_grouped(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_metric_t *a = vg_metrics_counter(
        m, "vigil_dropped_total", "Dropped records.\nBy reason \\ kind.", "reason=\"bad_json\"");
    vg_metric_t *g = vg_metrics_gauge(m, "vigil_queue_depth", "Queue depth.", NULL);
    vg_metric_t *b =
        vg_metrics_counter(m, "vigil_dropped_total", "ignored help", "reason=\"too_large\"");
    vg_metric_t *u = vg_metrics_counter(m, "vigil_untyped_help_total", "", "");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal(a, vg_metrics_counter(m, "vigil_dropped_total", NULL, "reason=\"bad_json\""));
    assert_ptr_not_equal(a, b);
    vg_metric_inc(a);
    vg_metric_add(a, 2.5);
    vg_metric_add(a, -10); /* counters never go down */
    vg_metric_add(b, 1e6);
    vg_metric_set(g, -0.25);
    vg_metric_inc(u);
    vg_metric_inc(NULL);
    vg_metric_set(NULL, 1);
    assert_true(vg_metric_value(a) == 3.5);
    assert_true(vg_metric_value(NULL) == 0);

    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_metrics_render(m, &out), VG_OK);
    assert_string_equal(out.data,
                        "# HELP vigil_dropped_total Dropped records.\\nBy reason \\\\ kind.\n"
                        "# TYPE vigil_dropped_total counter\n"
                        "vigil_dropped_total{reason=\"bad_json\"} 3.5\n"
                        "vigil_dropped_total{reason=\"too_large\"} 1e+06\n"
                        "# HELP vigil_queue_depth Queue depth.\n"
                        "# TYPE vigil_queue_depth gauge\n"
                        "vigil_queue_depth -0.25\n"
                        "# TYPE vigil_untyped_help_total counter\n"
                        "vigil_untyped_help_total 1\n");
    vg_buf_free(&out);
    vg_metrics_free(m);
    vg_metrics_free(NULL);
}

static double answer(void *ud)
{
    return *(double *)ud;
}

static void test_gauge_fn(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    double v = 42;
    vg_metric_t *g =
        vg_metrics_gauge_fn(m, "vigil_series", "Series in the head.", "tenant=\"a\"", answer, &v);
    vg_metric_set(g, 7); /* ignored: the callback owns the value */
    v = 43;
    assert_true(vg_metric_value(g) == 43);
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_metrics_render(m, &out), VG_OK);
    assert_string_equal(out.data, "# HELP vigil_series Series in the head.\n"
                                  "# TYPE vigil_series gauge\n"
                                  "vigil_series{tenant=\"a\"} 43\n");
    /* a capped output buffer fails cleanly */
    vg_buf small;
    vg_buf_init(&small, 10);
    assert_int_equal(vg_metrics_render(m, &small), VG_ETOOLARGE);
    vg_buf_free(&small);
    vg_buf_free(&out);
    vg_metrics_free(m);
}

#define ADDS 200000

static void *adder(void *arg)
{
    vg_metric_t **ms = arg;
    for (int i = 0; i < ADDS; i++) {
        vg_metric_inc(ms[0]);
        vg_metric_add(ms[1], 0.5);
    }
    return NULL;
}

static void test_atomic_adds(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_metric_t *ms[2] = {vg_metrics_counter(m, "c_total", "c", NULL),
                          vg_metrics_gauge(m, "g", "g", NULL)};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, adder, ms), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_true(vg_metric_value(ms[0]) == 2.0 * ADDS);
    assert_true(vg_metric_value(ms[1]) == 0.5 * 2 * ADDS);
    vg_metrics_free(m);
}

static void test_ready_flag(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    assert_int_equal(vg_metrics_ready(m), 0);
    vg_metrics_set_ready(m, 5);
    assert_int_equal(vg_metrics_ready(m), 1);
    vg_metrics_set_ready(m, 0);
    assert_int_equal(vg_metrics_ready(m), 0);
    vg_metrics_free(m);
}

struct fcase {
    double v;
    const char *g; /* FormatFloat(v, 'g', -1, 64), -0 as Prometheus's text writer */
    const char *f; /* FormatFloat(v, 'f', -1, 64) */
};

static const struct fcase cases[] = {
    {0, "0", "0"},
    {-0.0, "0", "-0"},
    {1, "1", "1"},
    {-1, "-1", "-1"},
    {0.1, "0.1", "0.1"},
    {-0.25, "-0.25", "-0.25"},
    {1.5, "1.5", "1.5"},
    {100, "100", "100"},
    {100000, "100000", "100000"},
    {123456, "123456", "123456"},
    {999999, "999999", "999999"},
    {1e6, "1e+06", "1000000"},
    {1234567, "1.234567e+06", "1234567"},
    {123456789012, "1.23456789012e+11", "123456789012"},
    {9007199254740992.0, "9.007199254740992e+15", "9007199254740992"},
    {1e20, "1e+20", "100000000000000000000"},
    {1e21, "1e+21", "1e+21"},
    {1e100, "1e+100", "1e+100"},
    {1.5e300, "1.5e+300", NULL},
    {0.0001, "0.0001", "0.0001"},
    {0.000123, "0.000123", "0.000123"},
    {0.00001, "1e-05", "0.00001"},
    {1e-7, "1e-07", "1e-07"},
    {-2.5e-10, "-2.5e-10", "-2.5e-10"},
    {0.30000000000000004, "0.30000000000000004", "0.30000000000000004"},
    {1.0000000000000002, "1.0000000000000002", "1.0000000000000002"},
    {12345.678, "12345.678", "12345.678"},
    {3.14159, "3.14159", "3.14159"},
    {1.7976931348623157e308, "1.7976931348623157e+308", NULL},
    {2.2250738585072014e-308, "2.2250738585072014e-308", NULL},
    {5e-324, "5e-324", "5e-324"},
    {-5e-324, "-5e-324", NULL},
    {1710000000.123, "1.710000000123e+09", "1710000000.123"},
};

static void test_fmt_float_table(void **state)
{
    char buf[32], jbuf[VG_FMT_FLOAT_JSON_SIZE];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct fcase *c = &cases[i];
        assert_ptr_equal(vg_fmt_float(c->v, buf), buf);
        if (strcmp(buf, c->g) != 0) fail_msg("case %zu: g got %s want %s", i, buf, c->g);
        if (!c->f) continue;
        assert_ptr_equal(vg_fmt_float_json(c->v, jbuf), jbuf);
        if (strcmp(jbuf, c->f) != 0) fail_msg("case %zu: f got %s want %s", i, jbuf, c->f);
    }
    assert_string_equal(vg_fmt_float(NAN, buf), "NaN");
    assert_string_equal(vg_fmt_float(INFINITY, buf), "+Inf");
    assert_string_equal(vg_fmt_float(-INFINITY, buf), "-Inf");
    assert_string_equal(vg_fmt_float_json(NAN, jbuf), "NaN");
    assert_string_equal(vg_fmt_float_json(INFINITY, jbuf), "+Inf");
    assert_string_equal(vg_fmt_float_json(-INFINITY, jbuf), "-Inf");
}

static void test_fmt_float_json_extremes(void **state)
{
    char jbuf[VG_FMT_FLOAT_JSON_SIZE];
    /* Prometheus's jsonutil.MarshalFloat: 'f' inside [1e-6, 1e21), 'e' outside. */
    assert_string_equal(vg_fmt_float_json(1.7976931348623157e308, jbuf), "1.7976931348623157e+308");
    assert_string_equal(vg_fmt_float_json(-5e-324, jbuf), "-5e-324");
    assert_string_equal(vg_fmt_float_json(0.000001, jbuf), "0.000001");
    assert_string_equal(vg_fmt_float_json(9.99e-7, jbuf), "9.99e-07");
    assert_string_equal(vg_fmt_float_json(999999999999999999999.0, jbuf), "1e+21");
    assert_string_equal(vg_fmt_float_json(1e20, jbuf), "100000000000000000000");
}

/* Every formatted value reads back exactly, over many bit patterns. */
static void test_fmt_float_roundtrip(void **state)
{
    char buf[32], jbuf[VG_FMT_FLOAT_JSON_SIZE];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof(v));
        if (!isfinite(v)) continue;
        vg_fmt_float(v, buf);
        vg_fmt_float_json(v, jbuf);
        if (strtod(buf, NULL) != v) fail_msg("g %s does not read back", buf);
        if (strtod(jbuf, NULL) != v) fail_msg("f %s does not read back", jbuf);
        assert_true(strlen(buf) < 32);
    }
}

/* Every allocation in registration can fail; nothing leaks (ASan checks) and
 * a later registration still works. */
static void test_alloc_failures(void **state)
{
    for (long n = 1; n < 12; n++) {
        vg_alloc_fail_after(n);
        vg_metrics_t *m = vg_metrics_new();
        vg_metric_t *a = m ? vg_metrics_counter(m, "x_total", "X.", "k=\"v\"") : NULL;
        vg_metric_t *b = m ? vg_metrics_gauge(m, "y", "Y.", NULL) : NULL;
        vg_alloc_fail_after(0);
        vg_metric_inc(a); /* NULL-safe */
        if (m) {
            assert_non_null(vg_metrics_counter(m, "x_total", "X.", "k=\"v\""));
            vg_buf out;
            vg_buf_init(&out, 0);
            assert_int_equal(vg_metrics_render(m, &out), VG_OK);
            assert_non_null(strstr(out.data, "x_total{k=\"v\"}"));
            vg_buf_free(&out);
        }
        (void)b;
        vg_metrics_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_grouped),      cmocka_unit_test(test_gauge_fn),
        cmocka_unit_test(test_atomic_adds),         cmocka_unit_test(test_ready_flag),
        cmocka_unit_test(test_fmt_float_table),     cmocka_unit_test(test_fmt_float_json_extremes),
        cmocka_unit_test(test_fmt_float_roundtrip), cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
