/*
 * test_promqltest.c - the promqltest runner behind `vigilctl promql-test`:
 * the series-description expansion, the number syntax, and whole scripts
 * whose evals must pass, fail or be skipped (so the runner can fail).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "../../vigilctl/file.c"
#include "../../vigilctl/promqltest.c"

static void expand(const char *item, const double *want, const int *omitted, size_t n)
{
    vvec vv = {0};
    vg_error err = {0};
    assert_int_equal(parse_item(item, strlen(item), &vv, &err), VG_OK);
    if (vv.n != n) fail_msg("%s: %zu values, want %zu", item, vv.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(vv.v[i].omitted, omitted ? omitted[i] : 0);
        if (!vv.v[i].omitted && !almost_equal(vv.v[i].v, want[i]))
            fail_msg("%s[%zu] = %g, want %g", item, i, vv.v[i].v, want[i]);
    }
    vg_free(vv.v);
}

static void test_series_values(void **state)
{
    expand("1+2x3", (double[]){1, 3, 5, 7}, NULL, 4);
    expand("-1-1x2", (double[]){-1, -2, -3}, NULL, 3);
    expand("5x2", (double[]){5, 5, 5}, NULL, 3);
    expand("_x3", (double[]){0, 0, 0}, (int[]){1, 1, 1}, 3);
    expand("_", (double[]){0}, (int[]){1}, 1);
    expand("1e3", (double[]){1000}, NULL, 1);
    expand("0.5+.25x2", (double[]){0.5, 0.75, 1}, NULL, 3);
    expand("1e-3+1e-3x1", (double[]){0.001, 0.002}, NULL, 2);
    expand("0x10", (double[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, NULL, 11);
    expand("Inf", (double[]){INFINITY}, NULL, 1);
    expand("-Inf", (double[]){-INFINITY}, NULL, 1);
    vvec vv = {0};
    assert_int_equal(parse_item("stale", 5, &vv, NULL), VG_OK);
    uint64_t bits;
    memcpy(&bits, &vv.v[0].v, sizeof bits);
    assert_true(bits == PQT_STALE_BITS);
    vg_free(vv.v);
    vv = (vvec){0};
    assert_int_equal(parse_item("abc", 3, &vv, NULL), VG_EPARSE);
    assert_int_equal(parse_item("1+1", 3, &vv, NULL), VG_EPARSE); /* a step needs a count */
    vg_free(vv.v);
}

static void test_series_metric(void **state)
{
    vg_arena_t *a = vg_arena_new(0);
    vg_label_t *l;
    size_t nl;
    vvec vv = {0};
    int hist;
    const char *line = "http_requests{job=\"api\", instance='0', empty=\"\"} 0+10x2 _ stale";
    assert_int_equal(parse_series(a, line, &l, &nl, &vv, &hist, NULL), VG_OK);
    assert_int_equal(nl, 3);
    assert_string_equal(l[0].name, "__name__");
    assert_string_equal(l[1].value, "0");
    assert_string_equal(l[2].value, "api");
    assert_int_equal(vv.n, 5);
    assert_true(vv.v[3].omitted);
    vg_free(vv.v);
    vv = (vvec){0};
    assert_int_equal(parse_series(a, "{\"utf8.name\", a=\"x\\n\"} 1", &l, &nl, &vv, &hist, NULL),
                     VG_OK);
    assert_string_equal(l[0].value, "utf8.name");
    assert_string_equal(l[1].value, "x\n");
    vg_free(vv.v);
    vv = (vvec){0};
    assert_int_equal(parse_series(a, "h {{schema:0 sum:1 count:1}}x3", &l, &nl, &vv, &hist, NULL),
                     VG_OK);
    assert_true(hist);
    assert_int_equal(parse_series(a, "m{a=b} 1", &l, &nl, &vv, &hist, NULL), VG_EPARSE);
    vg_free(vv.v);
    vg_arena_free(a);
}

static void test_numbers(void **state)
{
    double v;
    assert_true(parse_number("0x1F", 4, &v) && v == 31);
    assert_true(parse_number("-2.5e3", 6, &v) && v == -2500);
    assert_true(parse_number("NaN", 3, &v) && isnan(v));
    assert_true(parse_number("99999999999999999999", 20, &v) && v == 1e20);
    assert_false(parse_number("{} 1", 4, &v));
    assert_false(parse_number("", 0, &v));
    assert_true(almost_equal(NAN, NAN));
    assert_true(almost_equal(1, 1 + 1e-9));
    assert_false(almost_equal(1, 1.0001));
    assert_false(almost_equal(0, 1e-300));
}

static const char script[] = "# comment\n"
                             "load 1m\n"
                             "  m{a=\"x\"} 1+1x10\n"
                             "  m{a=\"y\"} 10 _ 30\n"
                             "  m{a=\"y\"} 5x10\n" /* redefines the line above */
                             "  h{a=\"z\"} {{schema:0 sum:1 count:1}}x10\n"
                             "\n"
                             "eval instant at 5m m\n"
                             "  m{a=\"x\"} 6\n"
                             "  m{a=\"y\"} 5\n"
                             "\n"
                             "eval instant at 5m sum(m)\n"
                             "  expect ordered\n"
                             "  {} 999\n"
                             "\n"
                             "eval range from 0 to 2m step 1m m{a=\"x\"}\n"
                             "  m{a=\"x\"} 1 2 3\n"
                             "\n"
                             "eval instant at 1m h\n"
                             "  h{a=\"z\"} {{schema:0 sum:1 count:1}}\n"
                             "\n"
                             "eval instant at 1m sum(m) by (nosuch)\n"
                             "  {} 7\n"
                             "\n"
                             "eval instant at 1m count({__name__=~\".+\"})\n"
                             "  {} 2\n"
                             "\n"
                             "eval instant at 1m 1 + \n"
                             "  expect fail msg: wrong message\n"
                             "\n"
                             "eval instant at 1m 1 +\n"
                             "  expect fail\n"
                             "\n"
                             "eval instant at 0 2 * 3\n"
                             "  6\n"
                             "\n"
                             "eval instant at 0 \"s\"\n"
                             "  expect string \"s\"\n"
                             "\n"
                             "clear\n"
                             "eval instant at 5m m\n"
                             "\n"
                             "bogus command\n";

static void test_script(void **state)
{
    vg_pqt_counts c = {0};
    assert_int_equal(vg_promqltest_run("inline", script, sizeof script - 1, 1, &c), 0);
    /* passed: m, range, sum by (nosuch), 2*3, string, cleared m;
     * failed: sum 999, wrong fail message, bogus command;
     * skipped: h (histogram), count over all names (selects h). */
    assert_int_equal(c.passed, 7);
    assert_int_equal(c.failed, 3);
    assert_int_equal(c.skipped, 2);
}

static void test_threshold_file(void **state)
{
    char path[] = "/tmp/pqt-thrXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "# floors\nfoo.test 97.5\nbar.test 50\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    assert_true(threshold_for(path, "/x/y/foo.test") == 97.5);
    assert_true(threshold_for(path, "bar.test") == 50);
    assert_true(threshold_for(path, "baz.test") == 100);
    unlink(path);
    vg_pqt_counts c = {.passed = 3, .failed = 1};
    assert_true(pass_rate(&c) == 75);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_values),  cmocka_unit_test(test_series_metric),
        cmocka_unit_test(test_numbers),        cmocka_unit_test(test_script),
        cmocka_unit_test(test_threshold_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
