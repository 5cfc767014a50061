/*
 * test_eval.c - the PromQL evaluator against a store filled by hand.
 *
 * Values are checked exactly (or to 1e-9 where Prometheus's own result is
 * a float computation): look-back and staleness, left-open ranges, rate
 * extrapolation, aggregation and matching rules, the many-to-many error,
 * step-invariant '@' results, subqueries, classic histogram_quantile,
 * annotations with positions, delayed __name__ removal, and both limits
 * (samples and time). The upstream promqltest corpus is the broad check
 * (vigilctl promql-test); these cases pin behaviour in the unit suite.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "collector/promql/engine.h"
#include "collector/promql/eval.h"
#include "collector/tsdb/tsdb.h"
#include "vigil/clock.h"
#include "vigil/expfmt.h"

#define S(x) ((int64_t)(x)*1000)
#define M(x) ((int64_t)(x)*60000)

typedef struct fx {
    vg_tsdb_t *db;
    vg_tsdb_queryable tq;
    vg_queryable q;
    vg_promql_engine_t *e;
} fx;

static void add(fx *f, const char *name, const char *k1, const char *v1, int64_t t, double v)
{
    vg_label_t l[2] = {{VG_METRIC_NAME, name}, {k1, v1}};
    size_t n = k1 ? 2 : 1;
    if (k1 && strcmp(k1, VG_METRIC_NAME) < 0) {
        l[0] = (vg_label_t){k1, v1};
        l[1] = (vg_label_t){VG_METRIC_NAME, name};
    }
    vg_error err = {0};
    assert_int_equal(vg_tsdb_append(f->db, "default", l, n, t, v, NULL, &err), VG_OK);
}

/* name{k=v} with value start + i*step every 'every' ms for i in [0, n). */
static void series(fx *f, const char *name, const char *k, const char *v, int64_t every, int n,
                   double start, double step)
{
    for (int i = 0; i < n; i++) add(f, name, k, v, i * every, start + i * step);
}

static int setup(void **state)
{
    static fx f;
    memset(&f, 0, sizeof(f));
    f.db = vg_tsdb_new(NULL);
    f.tq.db = f.db;
    f.tq.tenant = "default";
    f.q = vg_queryable_tsdb(&f.tq);
    f.e = vg_promql_engine_new(NULL);
    /* counters scraped every 15s for 20 minutes */
    series(&f, "http_requests_total", "job", "api", S(15), 81, 0, 10);
    series(&f, "http_requests_total", "job", "web", S(15), 81, 0, 30);
    /* a gauge every minute */
    series(&f, "temp", "room", "a", M(1), 21, 20, 0.5);
    series(&f, "temp", "room", "b", M(1), 21, 10, 0);
    /* staleness: 1 at 0s, 2 at 10s, stale at 20s, 3 at 30s */
    add(&f, "flappy", NULL, NULL, 0, 1);
    add(&f, "flappy", NULL, NULL, S(10), 2);
    add(&f, "flappy", NULL, NULL, S(20), vg_stale_nan());
    add(&f, "flappy", NULL, NULL, S(30), 3);
    /* classic histogram at 10m */
    add(&f, "lat_bucket", "le", "0.1", M(10), 10);
    add(&f, "lat_bucket", "le", "0.5", M(10), 30);
    add(&f, "lat_bucket", "le", "1", M(10), 40);
    add(&f, "lat_bucket", "le", "+Inf", M(10), 40);
    /* a histogram whose counts go down: monotonicity gets forced */
    add(&f, "bad_bucket", "le", "1", M(10), 5);
    add(&f, "bad_bucket", "le", "2", M(10), 4);
    add(&f, "bad_bucket", "le", "+Inf", M(10), 10);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vg_promql_engine_free(f->e);
    vg_tsdb_free(f->db);
    return 0;
}

static vg_promql_result *instant(fx *f, const char *q, int64_t t)
{
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_instant(f->e, f->q, q, t, &r, &err);
    if (rc) fail_msg("%s: %s", q, err.msg);
    return r;
}

static vg_promql_result *range(fx *f, const char *q, int64_t s, int64_t e, int64_t step)
{
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(f->e, f->q, q, s, e, step, &r, &err);
    if (rc) fail_msg("%s: %s", q, err.msg);
    return r;
}

static const char *lbl(const vg_promql_series *s, const char *name)
{
    const char *v = vg_labels_get(s->labels, s->nlabels, name);
    return v ? v : "";
}

static void assert_close(double got, double want)
{
    if (fabs(got - want) > 1e-9 * fmax(1, fabs(want))) fail_msg("got %.17g, want %.17g", got, want);
}

static void test_lookback_and_staleness(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "flappy", S(15));
    assert_int_equal(r->type, VG_PROMQL_RES_VECTOR);
    assert_int_equal(r->nseries, 1);
    assert_int_equal(r->series[0].ts[0], S(15)); /* the evaluation time */
    assert_close(r->series[0].v[0], 2);
    vg_promql_result_free(r);
    r = instant(f, "flappy", S(25)); /* the stale marker ends the series */
    assert_int_equal(r->nseries, 0);
    vg_promql_result_free(r);
    r = instant(f, "flappy", S(30) + M(5)); /* exactly 5m later: out of the look-back */
    assert_int_equal(r->nseries, 0);
    vg_promql_result_free(r);
    r = instant(f, "flappy", S(29) + M(5));
    assert_int_equal(r->nseries, 1);
    vg_promql_result_free(r);
    /* range windows are (t-range, t] and skip stale markers */
    r = instant(f, "count_over_time(flappy[20s])", S(30)); /* 10s is out, 20s is stale */
    assert_close(r->series[0].v[0], 1);
    vg_promql_result_free(r);
    r = instant(f, "count_over_time(flappy[21s])", S(30));
    assert_close(r->series[0].v[0], 2);
    vg_promql_result_free(r);
}

static void test_rate_and_aggregation(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "sum by (job) (rate(http_requests_total[5m]))", M(10));
    assert_int_equal(r->nseries, 2);
    assert_string_equal(lbl(&r->series[0], "job"), "api");
    assert_close(r->series[0].v[0], 10.0 / 15);
    assert_close(r->series[1].v[0], 30.0 / 15);
    assert_int_equal(r->ninfos, 0);
    vg_promql_result_free(r);
    /* the window starts after the first sample: extrapolated to the start */
    r = instant(f, "increase(http_requests_total{job=\"api\"}[1m])", S(50));
    /* samples at 0..45s: +30 over 45s, extrapolated back to the zero at t=0
     * and forward 5s to the end of the window */
    assert_close(r->series[0].v[0], 30.0 * 50 / 45);
    vg_promql_result_free(r);
    r = instant(f, "avg(temp)", M(4));
    assert_close(r->series[0].v[0], (22.0 + 10) / 2);
    vg_promql_result_free(r);
    r = instant(f, "count_values(\"v\", temp)", M(0));
    assert_int_equal(r->nseries, 2);
    vg_promql_result_free(r);
}

static void test_range_query(void **state)
{
    fx *f = *state;
    vg_promql_result *r = range(f, "temp{room=\"a\"} * 2", M(0), M(10), M(2));
    assert_int_equal(r->type, VG_PROMQL_RES_MATRIX);
    assert_int_equal(r->nseries, 1);
    assert_int_equal(r->series[0].n, 6);
    assert_null(lbl(&r->series[0], VG_METRIC_NAME)[0] ? "name" : NULL);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(r->series[0].ts[i], M(2 * (int64_t)i));
        assert_close(r->series[0].v[i], 2 * (20 + 0.5 * 2 * (double)i));
    }
    vg_promql_result_free(r);
    /* a scalar becomes one unlabelled series */
    r = range(f, "time()", 0, M(1), S(30));
    assert_int_equal(r->nseries, 1);
    assert_int_equal(r->series[0].nlabels, 0);
    assert_close(r->series[0].v[2], 60);
    vg_promql_result_free(r);
}

static void test_at_is_step_invariant(void **state)
{
    fx *f = *state;
    vg_promql_result *r = range(f, "temp{room=\"a\"} @ 300", M(0), M(20), M(5));
    assert_int_equal(r->nseries, 1);
    assert_int_equal(r->series[0].n, 5);
    for (size_t i = 0; i < 5; i++) assert_close(r->series[0].v[i], 22.5);
    vg_promql_result_free(r);
}

static void test_subquery(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "max_over_time(temp{room=\"a\"}[5m:1m])", M(10));
    assert_close(r->series[0].v[0], 25);
    vg_promql_result_free(r);
    r = instant(f, "temp{room=\"b\"}[3m:1m]", M(10)); /* a matrix at the top */
    assert_int_equal(r->type, VG_PROMQL_RES_MATRIX);
    assert_int_equal(r->series[0].n, 3);
    assert_int_equal(r->series[0].ts[0], M(8));
    vg_promql_result_free(r);
}

static void test_matching(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "temp / on(room) group_left temp", M(1));
    assert_int_equal(r->nseries, 2);
    assert_close(r->series[0].v[0], 1);
    vg_promql_result_free(r);
    r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_instant(f->e, f->q, "vector(1) + on() temp", M(1), &r, &err);
    assert_int_equal(rc, VG_EINVAL);
    assert_non_null(strstr(err.msg, "many-to-many matching not allowed"));
    assert_non_null(
        strstr(err.msg, "[{__name__=\"temp\", room=\"a\"}, {__name__=\"temp\", room=\"b\"}]"));
    rc = vg_promql_instant(f->e, f->q, "temp + on() group_left vector(1)", M(1), &r, &err);
    assert_int_equal(rc, VG_OK);
    vg_promql_result_free(r);
    /* comparisons keep the name, arithmetic drops it */
    r = instant(f, "temp > 15", M(1));
    assert_int_equal(r->nseries, 1);
    assert_string_equal(lbl(&r->series[0], VG_METRIC_NAME), "temp");
    vg_promql_result_free(r);
}

static void test_topk_order(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "topk(2, http_requests_total)", M(5));
    assert_int_equal(r->nseries, 2);
    assert_string_equal(lbl(&r->series[0], "job"), "web");
    assert_string_equal(lbl(&r->series[1], "job"), "api");
    vg_promql_result_free(r);
    r = instant(f, "sort(temp)", M(5));
    assert_string_equal(lbl(&r->series[0], "room"), "b");
    vg_promql_result_free(r);
}

static void test_histogram_quantile(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "histogram_quantile(0.5, lat_bucket)", M(10));
    assert_int_equal(r->nseries, 1);
    assert_int_equal(r->series[0].nlabels, 0);
    assert_close(r->series[0].v[0], 0.1 + (0.5 - 0.1) * (10.0 / 20));
    assert_int_equal(r->ninfos, 0);
    vg_promql_result_free(r);
    r = instant(f, "histogram_quantile(0.9, bad_bucket)", M(10));
    assert_int_equal(r->ninfos, 1);
    assert_non_null(strstr(r->infos[0], "needed to be fixed for monotonicity"));
    assert_non_null(strstr(r->infos[0], "(1:25)"));
    vg_promql_result_free(r);
}

static void test_annotations_and_names(void **state)
{
    fx *f = *state;
    vg_promql_result *r = instant(f, "rate(temp[5m])", M(10));
    assert_int_equal(r->ninfos, 1);
    assert_string_equal(r->infos[0],
                        "PromQL info: metric might not be a counter, name does not end "
                        "in _total/_sum/_count/_bucket: \"temp\" (1:6)");
    vg_promql_result_free(r);
    r = instant(f, "label_replace(abs(temp), \"__name__\", \"x_$1\", \"room\", \"(.*)\")", M(1));
    assert_int_equal(r->nseries, 2);
    assert_string_equal(lbl(&r->series[0], VG_METRIC_NAME), "x_a");
    vg_promql_result_free(r);
    r = instant(f, "abs(temp)", M(1));
    assert_string_equal(lbl(&r->series[0], VG_METRIC_NAME), "");
    vg_promql_result_free(r);
    vg_error err = {0};
    r = NULL;
    vg_err_t rc = vg_promql_instant(f->e, f->q, "label_replace(temp, \"room\", \"x\", \"\", \"\")",
                                    M(1), &r, &err);
    assert_int_equal(rc, VG_EINVAL);
    assert_string_equal(err.msg, "vector cannot contain metrics with the same labelset");
}

static void test_sample_limit(void **state)
{
    fx *f = *state;
    vg_promql_opts o = {.max_samples = 100};
    vg_promql_engine_t *e = vg_promql_engine_new(&o);
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(e, f->q, "http_requests_total", 0, M(20), S(15), &r, &err);
    assert_int_equal(rc, VG_ELIMIT);
    assert_string_equal(err.msg, "query processing would load too many samples into memory in "
                                 "query execution");
    assert_null(r);
    rc = vg_promql_instant(e, f->q, "sum(temp)", M(1), &r, &err);
    assert_int_equal(rc, VG_OK);
    vg_promql_result_free(r);
    vg_promql_engine_free(e);
}

/* A storage that takes longer than the query may: it waits until the
 * deadline has passed (no sleeping, no timing guess). */
static vg_err_t slow_select(void *ud, vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                            vg_seriesset_t **out, vg_error *err)
{
    fx *f = ud;
    int64_t until = vg_clock_mono_ms() + 20;
    while (vg_clock_mono_ms() <= until) {
    }
    return vg_tsdb_select(f->db, "default", m, nm, mint, maxt, out, err);
}

static void test_timeout(void **state)
{
    fx *f = *state;
    vg_promql_opts o = {.timeout_ms = 5};
    vg_promql_engine_t *e = vg_promql_engine_new(&o);
    vg_queryable slow = {slow_select, f};
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_instant(e, slow, "sum(temp)", M(1), &r, &err);
    assert_int_equal(rc, VG_ERETRY);
    assert_string_equal(err.msg, "query timed out in expression evaluation");
    assert_null(r);
    vg_promql_engine_free(e);
}

static void test_hand_built_ast(void **state)
{
    fx *f = *state;
    vg_arena_t *a = vg_arena_new(0);
    vg_pq_node *l = vg_arena_calloc(a, sizeof(*l)), *rr = vg_arena_calloc(a, sizeof(*rr));
    vg_pq_node *b = vg_arena_calloc(a, sizeof(*b));
    l->kind = rr->kind = VG_PQ_NUMBER;
    l->u.num = 2;
    rr->u.num = 10;
    b->kind = VG_PQ_BINARY;
    b->u.bin.op = VG_PQ_OP_POW;
    b->u.bin.lhs = l;
    b->u.bin.rhs = rr;
    vg_promql_expr_t expr = {b, a, NULL};
    vg_promql_result *r = NULL;
    assert_int_equal(pq_exec(f->e, f->q, &expr, M(1), M(1), 0, 0, &r, NULL), VG_OK);
    assert_int_equal(r->type, VG_PROMQL_RES_SCALAR);
    assert_close(r->scalar, 1024);
    vg_promql_result_free(r);
    vg_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookback_and_staleness),
        cmocka_unit_test(test_rate_and_aggregation),
        cmocka_unit_test(test_range_query),
        cmocka_unit_test(test_at_is_step_invariant),
        cmocka_unit_test(test_subquery),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_topk_order),
        cmocka_unit_test(test_histogram_quantile),
        cmocka_unit_test(test_annotations_and_names),
        cmocka_unit_test(test_sample_limit),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_hand_built_ast),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
