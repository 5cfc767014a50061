/*
 * test_chunk_int.c - scaled-integer chunks: bit-exact round trips (edge
 * values, random data), the choice against XOR, and the hardened decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "tsdb/chunk.h"
#include "tsdb/chunk_int.h"
#include "vigil/alloc.h"

#define N 120

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double unif(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static double bits_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* Decode data through the shared iterator, next() and read() in batches of
 * `batch`, and compare with ts/v bit for bit. */
static void check_decode(const uint8_t *data, size_t len, const int64_t *ts, const double *v,
                         size_t n, size_t batch)
{
    vg_chunk_iter a, b;
    int64_t t, tb[N * 4];
    double x, vb[N * 4];
    size_t i = 0, got = 0, k;
    assert_true(n <= N * 4);
    assert_int_equal(vg_chunk_data_samples(data, len), n);
    vg_chunk_iter_init(&a, data, len);
    for (; vg_chunk_iter_next(&a, &t, &x); i++) {
        assert_true(i < n);
        assert_true(t == ts[i]);
        assert_true(dbits(x) == dbits(v[i]));
    }
    assert_int_equal(i, n);
    assert_int_equal(vg_chunk_iter_err(&a), VG_OK);
    vg_chunk_iter_init(&b, data, len);
    while ((k = vg_chunk_iter_read(&b, tb + got, vb + got, batch)) > 0) got += k;
    assert_int_equal(got, n);
    assert_int_equal(vg_chunk_iter_err(&b), VG_OK);
    for (i = 0; i < n; i++) {
        assert_true(tb[i] == ts[i]);
        assert_true(dbits(vb[i]) == dbits(v[i]));
    }
}

/* Encode compact, expect success, decode back; the encoded size. */
static size_t roundtrip(const int64_t *ts, const double *v, size_t n)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_chunk_int_encode(ts, v, n, &b), VG_OK);
    assert_true(vg_chunk_is_compact((const uint8_t *)b.data, b.len));
    check_decode((const uint8_t *)b.data, b.len, ts, v, n, 1);
    check_decode((const uint8_t *)b.data, b.len, ts, v, n, 7);
    check_decode((const uint8_t *)b.data, b.len, ts, v, n, 1000);
    size_t len = b.len;
    vg_buf_free(&b);
    return len;
}

static size_t xor_size(const int64_t *ts, const double *v, size_t n)
{
    vg_chunk_t *c = vg_chunk_new();
    for (size_t i = 0; i < n; i++) assert_int_equal(vg_chunk_append(c, ts[i], v[i]), VG_OK);
    size_t len;
    vg_chunk_bytes(c, &len);
    vg_chunk_free(c);
    return len;
}

static void regular_ts(int64_t *ts, size_t n, int64_t t0, int64_t step)
{
    for (size_t i = 0; i < n; i++) ts[i] = t0 + (int64_t)i * step;
}

static void test_two_decimal_counter(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N], x = 123456.78;
    regular_ts(ts, N, 1700000000000, 30000);
    for (size_t i = 0; i < N; i++) {
        x += 21.0 * (0.8 + 0.4 * unif());
        x = round(x * 100) / 100;
        v[i] = x;
    }
    size_t c = roundtrip(ts, v, N), z = xor_size(ts, v, N);
    /* ~11 bits of value, 0 of timestamp a sample, against ~50 in XOR */
    assert_true(c * 3 < z);
    assert_true(c < N * 2);
}

static void test_integer_counter_with_reset(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N], x = 9e12;
    regular_ts(ts, N, 1700000000000, 15000);
    for (size_t i = 0; i < N; i++) {
        x += floor(3e6 * unif());
        v[i] = x;
    }
    assert_true(roundtrip(ts, v, N) < xor_size(ts, v, N));
    v[70] = 0; /* a restart: exact, though the width grows (the writer keeps the smaller) */
    for (size_t i = 71; i < N; i++) v[i] = v[i - 1] + floor(3e6 * unif());
    roundtrip(ts, v, N);
}

static void test_constant_and_single(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    regular_ts(ts, N, 0, 60000);
    for (size_t i = 0; i < N; i++) v[i] = 1e11;
    assert_true(roundtrip(ts, v, N) < 24); /* header only: both widths are 0 */
    roundtrip(ts, v, 1);
    v[0] = -0.5;
    roundtrip(ts, v, 1);
    /* multiples of 4096: the common factor goes to the header */
    for (size_t i = 0; i < N; i++) v[i] = 4096.0 * (double)(rnd() % 100000);
    roundtrip(ts, v, N);
}

static void test_jitter_and_negative_time(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    for (size_t i = 0; i < N; i++) {
        ts[i] = -5000000 + (int64_t)i * 10000 + (int64_t)(rnd() % 7);
        v[i] = ((double)(rnd() % 2001) - 1000.0) / 1000.0; /* three decimals, +- */
    }
    roundtrip(ts, v, N);
}

/* NaN, the stale marker, +-Inf, -0, extremes, denormals as exceptions among
 * integers, first and last place included. */
static void test_special_values(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    regular_ts(ts, N, 1700000000000, 30000);
    for (size_t i = 0; i < N; i++) v[i] = (double)(i * 3);
    v[0] = bits_double(0x7ff0000000000002ull); /* stale */
    v[5] = NAN;
    v[6] = INFINITY;
    v[40] = -INFINITY;
    v[41] = -0.0;
    v[42] = DBL_MAX;
    v[43] = 4.9e-324;
    v[N - 1] = bits_double(0x7ff0000000000002ull);
    roundtrip(ts, v, N);
    /* one past the limit of exceptions: 1 + 120/16 = 8 */
    for (size_t i = 0; i < 9; i++) v[60 + i] = NAN;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_chunk_int_encode(ts, v, N, &b), VG_EAGAIN);
    vg_buf_free(&b);
}

static void test_extreme_ints(void **state)
{
    (void)state;
    int64_t ts[4] = {INT64_MIN, -1, 0, INT64_MAX};
    double v[4] = {-9007199254740991.0, 9007199254740991.0, 0, 1};
    roundtrip(ts, v, 4);
    int64_t tr[3] = {INT64_MAX, 0, INT64_MIN}; /* the format takes any order */
    roundtrip(tr, v, 3);
}

static void test_random_floats_fall_back(void **state)
{
    (void)state;
    int64_t ts[N];
    double v[N];
    vg_buf b;
    vg_buf_init(&b, 0);
    regular_ts(ts, N, 0, 30000);
    for (size_t i = 0; i < N; i++) v[i] = 4e9 + 1e8 * unif();
    assert_int_equal(vg_chunk_int_encode(ts, v, N, &b), VG_EAGAIN);
    assert_int_equal(vg_chunk_int_encode(ts, v, 0, &b), VG_EAGAIN);
    assert_int_equal(vg_chunk_int_encode(ts, v, VG_CHUNK_INT_MAX_ENCODE + 1, &b), VG_EAGAIN);
    vg_buf_free(&b);
}

static double random_value(void)
{
    switch (rnd() % 8) {
    case 0: return bits_double(rnd()); /* anything, NaNs included */
    case 1: return (double)(int64_t)(rnd() >> (rnd() % 64));
    case 2: return (double)(int64_t)(rnd() % 100000) / 100.0;
    case 3: return -(double)(rnd() % 1000);
    case 4: return 1e15 + (double)(rnd() % 100);
    default: return (double)(rnd() % 50);
    }
}

/* Whatever the encoder accepts decodes back exactly (it verifies itself,
 * and check_decode checks again through the shared iterator). */
static void test_random(void **state)
{
    (void)state;
    int64_t ts[N * 4];
    double v[N * 4];
    vg_buf b;
    vg_buf_init(&b, 0);
    size_t ok = 0;
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + rnd() % (N * 4);
        int64_t t = (int64_t)rnd(), step = (int64_t)(rnd() % 100000);
        for (size_t i = 0; i < n; i++) {
            t = (int64_t)((uint64_t)t + (round % 3 ? (uint64_t)step : rnd() >> (rnd() % 64)));
            ts[i] = t;
            v[i] = round % 5 ? (double)(int64_t)(rnd() % 1000) + (i % 7 ? 0 : random_value())
                             : random_value();
        }
        vg_err_t rc = vg_chunk_int_encode(ts, v, n, &b);
        assert_true(rc == VG_OK || rc == VG_EAGAIN);
        if (rc) continue;
        ok++;
        check_decode((const uint8_t *)b.data, b.len, ts, v, n, 1 + rnd() % 200);
    }
    assert_true(ok > 1000);
    vg_buf_free(&b);
}

/* Truncated, extended and bit-flipped chunks: never out of bounds (ASan),
 * and a truncated or extended one is always corrupt. */
static void test_corrupt(void **state)
{
    (void)state;
    int64_t ts[N], t;
    double v[N], x;
    regular_ts(ts, N, 1700000000000, 30000);
    for (size_t i = 0; i < N; i++) v[i] = i == 9 ? NAN : (double)(rnd() % 100000) / 100.0;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_chunk_int_encode(ts, v, N, &b), VG_OK);
    size_t len = b.len;
    for (size_t cut = 3; cut <= len + 1; cut++) {
        if (cut == len) continue;
        uint8_t *copy = vg_malloc(cut);
        memcpy(copy, b.data, cut < len ? cut : len);
        if (cut > len) copy[len] = 0;
        vg_chunk_iter it;
        vg_chunk_iter_init(&it, copy, cut);
        size_t n = 0;
        while (vg_chunk_iter_next(&it, &t, &x)) n++;
        assert_int_equal(n, 0);
        assert_int_equal(vg_chunk_iter_err(&it), VG_ECORRUPT);
        assert_int_equal(vg_chunk_data_samples(copy, cut), 0);
        vg_free(copy);
    }
    for (size_t bit = 16; bit < len * 8; bit++) {
        uint8_t *copy = vg_malloc(len);
        memcpy(copy, b.data, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        vg_chunk_iter it;
        int64_t tb[N];
        double vb[N];
        vg_chunk_iter_init(&it, copy, len);
        while (vg_chunk_iter_read(&it, tb, vb, 13) > 0) {
        }
        vg_free(copy);
    }
    static const uint8_t bad[][8] = {
        {0, 0, 2, 1, 0, 0, 0, 0},             /* unknown encoding */
        {0, 0, 1, 0, 0, 0, 0, 0},             /* zero samples */
        {0, 0, 1, 1, 0x80, 0, 0, 0},          /* reserved flag */
        {0, 0, 1, 2, 0, 0, 0, 65},            /* width > 64 */
        {0, 0, 1, 1, 0x10, 0, 0, 0},          /* exceptions announced, none */
        {0, 0, 1, 0xff, 0xff, 0xff, 0x7f, 0}, /* too many samples */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vg_chunk_iter it;
        vg_chunk_iter_init(&it, bad[i], sizeof(bad[i]));
        assert_int_equal(vg_chunk_iter_next(&it, &t, &x), 0);
        assert_int_equal(vg_chunk_iter_err(&it), VG_ECORRUPT);
    }
    vg_buf_free(&b);
}

static void test_xor_still_counts(void **state)
{
    (void)state;
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 5; i++) vg_chunk_append(c, i, 1.5);
    size_t len;
    const uint8_t *d = vg_chunk_bytes(c, &len);
    assert_false(vg_chunk_is_compact(d, len));
    assert_int_equal(vg_chunk_data_samples(d, len), 5);
    vg_chunk_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_decimal_counter),
        cmocka_unit_test(test_integer_counter_with_reset),
        cmocka_unit_test(test_constant_and_single),
        cmocka_unit_test(test_jitter_and_negative_time),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_extreme_ints),
        cmocka_unit_test(test_random_floats_fall_back),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_xor_still_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
