/*
 * test_eval_bulk.c - the evaluator's paths for queries over many series:
 * range selectors decoded one series ahead on a helper thread (used from 32
 * series up) and plain aggregations folded series by series. Each must give
 * exactly what the simple paths give: a selector over all series is
 * compared point by point with the same function over one series at a time
 * (which stays on the inline path), and sum/avg/min/max/count/stddev by
 * group are compared with values computed here. Also: the sample limit and
 * a stale marker through the prefetching path.
 *
 * With two or more CPUs, range functions over 32+ series run on several
 * threads (eval_parallel.c), and an aggregation of such a call folds the
 * series as they come (no matrix in between): both are compared bit for
 * bit with the unfused evaluation (the argument times 1, a binary operator
 * that keeps every value), including the fallback when the groups' state
 * would be too large.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "promql/engine.h"
#include "tsdb/tsdb.h"
#include "vigil/expfmt.h"

#define NSER  120
#define NPTS  400
#define EVERY 15000
#define STEP  60000

typedef struct fx {
    vg_tsdb_t *db;
    vg_tsdb_queryable tq;
    vg_queryable q;
    vg_promql_engine_t *e;
} fx;

static double value(int s, int i)
{
    /* counters with different rates, a reset in some series, and a stale
     * marker in series 7 */
    if (s == 7 && i == 200) return vg_stale_nan();
    double v = (double)i * (1 + s % 5) + (s % 3) * 0.125;
    if (s % 11 == 0 && i >= 250) v -= 250.0 * (1 + s % 5);
    return v;
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
    char inst[16], grp[8];
    for (int s = 0; s < NSER; s++) {
        snprintf(inst, sizeof inst, "i%03d", s);
        snprintf(grp, sizeof grp, "g%d", s % 4);
        vg_label_t l[] = {{VG_METRIC_NAME, "c_total"}, {"g", grp}, {"inst", inst}};
        for (int i = 0; i < NPTS; i++)
            assert_int_equal(
                vg_tsdb_append(f.db, "default", l, 3, (int64_t)i * EVERY, value(s, i), NULL, NULL),
                VG_OK);
    }
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

static vg_promql_result *range(fx *f, const char *q)
{
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(f->e, f->q, q, 0, (int64_t)(NPTS - 1) * EVERY, STEP, &r, &err);
    if (rc) fail_msg("%s: %s", q, err.msg);
    return r;
}

static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

/* The helper-thread path equals the inline path, series by series. */
static void test_prefetch_matches_inline(void **state)
{
    fx *f = *state;
    static const char *fns[] = {"rate", "increase", "max_over_time", "count_over_time", "resets"};
    for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
        char q[128];
        snprintf(q, sizeof q, "%s(c_total[5m])", fns[k]);
        vg_promql_result *all = range(f, q);
        assert_int_equal(all->nseries, NSER);
        for (size_t s = 0; s < all->nseries; s++) {
            const char *inst = NULL;
            for (size_t j = 0; j < all->series[s].nlabels; j++)
                if (!strcmp(all->series[s].labels[j].name, "inst"))
                    inst = all->series[s].labels[j].value;
            assert_non_null(inst);
            snprintf(q, sizeof q, "%s(c_total{inst=\"%s\"}[5m])", fns[k], inst);
            vg_promql_result *one = range(f, q);
            assert_int_equal(one->nseries, 1);
            assert_int_equal(one->series[0].n, all->series[s].n);
            for (size_t i = 0; i < one->series[0].n; i++) {
                assert_true(one->series[0].ts[i] == all->series[s].ts[i]);
                assert_true(same(one->series[0].v[i], all->series[s].v[i]));
            }
            vg_promql_result_free(one);
        }
        vg_promql_result_free(all);
    }
}

/* Grouped plain aggregations against values folded here in input order. */
static void test_series_major_aggregations(void **state)
{
    fx *f = *state;
    vg_promql_result *r = range(f, "sum by (g) (c_total)");
    vg_promql_result *mx = range(f, "max by (g) (c_total)");
    vg_promql_result *cnt = range(f, "count by (g) (c_total)");
    vg_promql_result *avg = range(f, "avg by (g) (c_total)");
    assert_int_equal(r->nseries, 4);
    for (size_t gi = 0; gi < 4; gi++) {
        size_t npts = r->series[gi].n;
        assert_int_equal(npts, (size_t)((NPTS - 1) * EVERY / STEP + 1));
        for (size_t p = 0; p < npts; p++) {
            int idx = (int)(r->series[gi].ts[p] / EVERY);
            double sum = 0, m = -INFINITY, n = 0;
            for (int s = (int)gi; s < NSER; s += 4) {
                double v = value(s, idx);
                if (vg_is_stale_nan(v)) continue; /* a stale marker hides the series */
                sum += v;
                m = v > m ? v : m;
                n++;
            }
            assert_true(fabs(r->series[gi].v[p] - sum) <= 1e-9 * fabs(sum));
            assert_true(mx->series[gi].v[p] == m);
            assert_true(cnt->series[gi].v[p] == n);
            assert_true(fabs(avg->series[gi].v[p] - sum / n) <= 1e-9 * fabs(sum / n));
        }
    }
    vg_promql_result_free(r);
    vg_promql_result_free(mx);
    vg_promql_result_free(cnt);
    vg_promql_result_free(avg);
}

static vg_promql_result *range_step(fx *f, const char *q, int64_t step)
{
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(f->e, f->q, q, 0, (int64_t)(NPTS - 1) * EVERY, step, &r, &err);
    if (rc) fail_msg("%s: %s", q, err.msg);
    return r;
}

/* Same series (labels, order), same points, same bits. */
static void assert_same_result(const vg_promql_result *a, const vg_promql_result *b)
{
    assert_int_equal(a->nseries, b->nseries);
    for (size_t s = 0; s < a->nseries; s++) {
        assert_int_equal(a->series[s].nlabels, b->series[s].nlabels);
        for (size_t j = 0; j < a->series[s].nlabels; j++) {
            assert_string_equal(a->series[s].labels[j].name, b->series[s].labels[j].name);
            assert_string_equal(a->series[s].labels[j].value, b->series[s].labels[j].value);
        }
        assert_int_equal(a->series[s].n, b->series[s].n);
        for (size_t i = 0; i < a->series[s].n; i++) {
            assert_true(a->series[s].ts[i] == b->series[s].ts[i]);
            assert_memory_equal(&a->series[s].v[i], &b->series[s].v[i], sizeof(double));
        }
    }
}

/* sum by (g) (rate(...)) and friends, fused, equal the matrix path. */
static void test_fused_aggregations(void **state)
{
    fx *f = *state;
    static const char *aggs[] = {
        "sum by (g)",    "avg by (g)", "max by (g)",         "min by (g)",   "count by (g)",
        "stddev by (g)", "sum",        "sum without (inst)", "group by (g)", "stdvar by (g)"};
    static const char *fns[] = {"rate", "increase", "avg_over_time", "last_over_time"};
    /* 60 s steps: fused; 1 s steps by inst: 120 groups x 6,000 steps is over
     * the state cap, so the argument is evaluated into a matrix instead. */
    static const struct {
        const char *by;
        int64_t step;
    } shapes[] = {{NULL, STEP}, {"sum by (inst)", 1000}};
    char q1[160], q2[160];
    for (size_t h = 0; h < 2; h++)
        for (size_t a = 0; a < sizeof(aggs) / sizeof(aggs[0]); a++)
            for (size_t k = 0; k < sizeof(fns) / sizeof(fns[0]); k++) {
                const char *ag = shapes[h].by ? shapes[h].by : aggs[a];
                if (shapes[h].by && a > 0) continue;
                snprintf(q1, sizeof q1, "%s (%s(c_total[5m]))", ag, fns[k]);
                snprintf(q2, sizeof q2, "%s (%s(c_total[5m]) * 1)", ag, fns[k]);
                vg_promql_result *r1 = range_step(f, q1, shapes[h].step);
                vg_promql_result *r2 = range_step(f, q2, shapes[h].step);
                assert_true(r1->nseries > 0);
                assert_same_result(r1, r2);
                vg_promql_result_free(r1);
                vg_promql_result_free(r2);
            }
}

/* The sample limit stops a range function on the parallel path too. */
static void test_parallel_sample_limit(void **state)
{
    fx *f = *state;
    vg_promql_opts o = {.max_samples = 20000};
    vg_promql_engine_t *e = vg_promql_engine_new(&o);
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(e, f->q, "rate(c_total[5m])", 0, (int64_t)(NPTS - 1) * EVERY,
                                  STEP, &r, &err);
    assert_int_equal(rc, VG_ELIMIT);
    assert_null(r);
    vg_promql_engine_free(e);
}

/* The sample limit still stops a query whose series are decoded ahead. */
static void test_prefetch_sample_limit(void **state)
{
    fx *f = *state;
    vg_promql_opts o = {.max_samples = 5000};
    vg_promql_engine_t *e = vg_promql_engine_new(&o);
    vg_promql_result *r = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_range(e, f->q, "sum(rate(c_total[5m]))", 0, (int64_t)(NPTS - 1) * EVERY,
                                  STEP, &r, &err);
    assert_int_equal(rc, VG_ELIMIT);
    assert_null(r);
    vg_promql_engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefetch_matches_inline),
        cmocka_unit_test(test_series_major_aggregations),
        cmocka_unit_test(test_prefetch_sample_limit),
        cmocka_unit_test(test_fused_aggregations),
        cmocka_unit_test(test_parallel_sample_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
