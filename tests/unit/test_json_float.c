/*
 * test_json_float.c - vg_api_float_json prints what Go's strconv (and so
 * Prometheus) prints for a sample value.
 *
 * Why this shape: the fast path (Grisu3) must give the shortest round-trip
 * digits and, among those, the closest, in Prometheus's 'f'/'e' layout; the
 * table holds strings printed by Go 1.x strconv.FormatFloat(v, 'f' or 'e',
 * -1, 64) (powers of two, where the closest shortest is not the rounded one,
 * the 1e-6 and 1e21 layout switches, extremes), and a seeded sweep checks
 * the round trip and that the digits are never longer than the exact
 * formatter's.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/json_float.h"
#include "vigil/metrics.h"

static const struct {
    double v;
    const char *go;
} CASES[] = {
    {1, "1"},
    {-2.5, "-2.5"},
    {0.1, "0.1"},
    {0.3, "0.3"},
    {0.3333333333333333, "0.3333333333333333"},
    {100, "100"},
    {1e+20, "100000000000000000000"},
    {1e+21, "1e+21"},
    {1.23456789e+21, "1.23456789e+21"},
    {1e-06, "0.000001"},
    {1.5e-07, "1.5e-07"},
    {5e-324, "5e-324"},
    {1.7976931348623157e+308, "1.7976931348623157e+308"},
    {5.960464477539063e-08, "5.960464477539063e-08"}, /* 2^-24 */
    {5.684341886080802e-14, "5.684341886080802e-14"}, /* 2^-44 */
    {6.237000967296e+290, "6.237000967296e+290"},
    {1795874.7, "1795874.7"},
    {0.000123, "0.000123"},
    {4.35, "4.35"},
    {2.675, "2.675"},
    {1e+23, "1e+23"},
    {1234567.891, "1234567.891"},
    {-1e-05, "-0.00001"},
    {0, "0"},
    {NAN, "NaN"},
    {INFINITY, "+Inf"},
    {-INFINITY, "-Inf"},
};

static void test_go_strings(void **state)
{
    (void)state;
    char buf[VG_FMT_FLOAT_JSON_SIZE];
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        size_t n = vg_api_float_json(CASES[i].v, buf);
        assert_string_equal(buf, CASES[i].go);
        assert_int_equal(n, strlen(CASES[i].go));
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Significant digits of a formatted value (sign, point, exponent and
 * leading zeros not counted). */
static size_t sig_digits(const char *s)
{
    size_t n = 0, lead = 1;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (lead && *s == '0') continue;
        lead = 0;
        n++;
    }
    return n;
}

static void test_round_trip_and_length(void **state)
{
    (void)state;
    char a[VG_FMT_FLOAT_JSON_SIZE], b[VG_FMT_FLOAT_JSON_SIZE];
    for (int i = 0; i < 300000; i++) {
        uint64_t bits = rnd();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (i % 3 == 1) v = (double)(rnd() % 100000000) / 7.0;
        if (i % 3 == 2) v = ldexp(1, (int)(rnd() % 2098) - 1074);
        if (!isfinite(v)) continue;
        vg_api_float_json(v, a);
        vg_fmt_float_json(v, b);
        assert_true(strtod(a, NULL) == v);
        assert_true(sig_digits(a) <= sig_digits(b));
        assert_true(strchr(a, 'e') == NULL || fabs(v) < 1e-6 || fabs(v) >= 1e21);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_strings),
        cmocka_unit_test(test_round_trip_and_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
