/*
 * test_chunk.c - Gorilla chunk round trips and the hardened decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "tsdb/chunk.h"
#include "vigil/alloc.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: fixed seed, so the test is deterministic. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static double bits_to_double(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t double_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* Decode c and compare with ts/v bit for bit. */
static void expect_samples(const vg_chunk_t *c, const int64_t *ts, const double *v, size_t n)
{
    size_t len;
    const uint8_t *b = vg_chunk_bytes(c, &len);
    vg_chunk_iter it;
    vg_chunk_iter_init(&it, b, len);
    int64_t t;
    double x;
    size_t i = 0;
    while (vg_chunk_iter_next(&it, &t, &x)) {
        assert_true(i < n);
        assert_true(t == ts[i]);
        assert_true(double_bits(x) == double_bits(v[i]));
        i++;
    }
    assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
    assert_int_equal(i, n);
}

/* Encode n samples, decode them, compare bit for bit. */
static void roundtrip(const int64_t *ts, const double *v, size_t n)
{
    vg_chunk_t *c = vg_chunk_new();
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) assert_int_equal(vg_chunk_append(c, ts[i], v[i]), VG_OK);
    assert_int_equal(vg_chunk_num_samples(c), n);
    if (n) {
        assert_true(vg_chunk_min_time(c) == ts[0]);
        assert_true(vg_chunk_max_time(c) == ts[n - 1]);
    }
    expect_samples(c, ts, v, n);
    /* The head compacts chunks that stopped growing: same samples, never
     * more bytes, same times and count. */
    size_t before, after;
    vg_chunk_bytes(c, &before);
    assert_int_equal(vg_chunk_compact(c), VG_OK);
    vg_chunk_bytes(c, &after);
    assert_true(after <= before);
    assert_int_equal(vg_chunk_num_samples(c), n);
    if (n) assert_true(vg_chunk_max_time(c) == ts[n - 1]);
    expect_samples(c, ts, v, n);
    vg_chunk_free(c);
}

static void test_regular_scrape(void **state)
{
    int64_t ts[120];
    double v[120];
    for (int i = 0; i < 120; i++) {
        ts[i] = 1700000000000 + i * 15000 + (i % 7 == 0 ? 3 : 0); /* jitter */
        v[i] = i < 60 ? 42.0 : 1000.5 + i;
    }
    roundtrip(ts, v, 120);
    /* A regular series compresses well below 16 bytes/sample. */
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 120; i++) vg_chunk_append(c, 1700000000000 + i * 15000, 1.0);
    size_t len;
    vg_chunk_bytes(c, &len);
    assert_true(len < 64); /* 120 x 16 raw bytes */
    vg_chunk_free(c);
}

static void test_random(void **state)
{
    for (int round = 0; round < 200; round++) {
        int64_t ts[120];
        double v[120];
        int64_t t = (int64_t)(rnd() % 2000000000000ull) - 1000000000000;
        size_t n = 1 + rnd() % 120;
        for (size_t i = 0; i < n; i++) {
            switch (rnd() % 4) {
            case 0: t += 1; break;
            case 1: t += (int64_t)(rnd() % 100000); break;
            case 2: t += (int64_t)(rnd() % 10000000000ull); break;
            default: t += 15000;
            }
            ts[i] = t;
            switch (rnd() % 3) {
            case 0: v[i] = bits_to_double(rnd()); break; /* any bits, NaNs included */
            case 1: v[i] = (double)(rnd() % 1000); break;
            default: v[i] = i ? v[i - 1] : 0.5;
            }
        }
        roundtrip(ts, v, n);
    }
}

static void test_special_floats(void **state)
{
    double v[] = {
        bits_to_double(0x7ff0000000000002ull), /* Prometheus stale marker */
        NAN,
        -NAN,
        bits_to_double(0x7ff8dead0000beefull),
        INFINITY,
        -INFINITY,
        -0.0,
        0.0,
        5e-324,
        1.7976931348623157e308,
        bits_to_double(0x7ff0000000000002ull),
        1.0,
    };
    size_t n = sizeof(v) / sizeof(v[0]);
    int64_t ts[16];
    for (size_t i = 0; i < n; i++) ts[i] = (int64_t)i * 1000;
    roundtrip(ts, v, n);
}

static void test_extreme_timestamps(void **state)
{
    int64_t ts[] = {INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX};
    double v[] = {1, 2, 3, 4, 5, 6, 7};
    roundtrip(ts, v, 7);
    int64_t ts2[] = {0, 8192, 16384, 16384 + 8191 + 8192, 100000000, 100000001};
    roundtrip(ts2, v, 6); /* every delta-of-delta bucket edge */
}

static void test_empty_and_one(void **state)
{
    vg_chunk_t *c = vg_chunk_new();
    size_t len;
    const uint8_t *b = vg_chunk_bytes(c, &len);
    assert_int_equal(len, 2);
    vg_chunk_iter it;
    int64_t t;
    double x;
    vg_chunk_iter_init(&it, b, len);
    assert_int_equal(vg_chunk_iter_next(&it, &t, &x), 0);
    assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
    vg_chunk_free(c);
    int64_t ts[] = {-5};
    double v[] = {-0.0};
    roundtrip(ts, v, 1);
}

static void test_truncated_is_corrupt(void **state)
{
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 50; i++) vg_chunk_append(c, i * 1000 + (i * i) % 17, (double)rnd());
    size_t len;
    const uint8_t *b = vg_chunk_bytes(c, &len);
    for (size_t cut = 0; cut < len; cut++) {
        vg_chunk_iter it;
        int64_t t;
        double x;
        vg_chunk_iter_init(&it, b, cut);
        size_t got = 0;
        while (vg_chunk_iter_next(&it, &t, &x)) got++;
        assert_true(got < 50);
        assert_int_equal(vg_chunk_iter_err(&it), VG_ECORRUPT);
    }
    vg_chunk_free(c);
}

static void test_garbage_never_overreads(void **state)
{
    /* ASan catches any over-read; the header claims 65535 samples. */
    for (int round = 0; round < 2000; round++) {
        uint8_t buf[64];
        size_t n = rnd() % sizeof(buf);
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd();
        if (n >= 2) buf[0] = buf[1] = 0xff;
        uint8_t *heap = vg_malloc(n ? n : 1);
        memcpy(heap, buf, n);
        vg_chunk_iter it;
        int64_t t;
        double x;
        vg_chunk_iter_init(&it, heap, n);
        int guard = 0;
        while (vg_chunk_iter_next(&it, &t, &x) && guard < 70000) guard++;
        assert_true(guard < 70000);
        vg_free(heap);
    }
}

static void test_chunk_full(void **state)
{
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 65535; i++) assert_int_equal(vg_chunk_append(c, i, 1.0), VG_OK);
    assert_int_equal(vg_chunk_append(c, 70000, 1.0), VG_ETOOLARGE);
    assert_int_equal(vg_chunk_num_samples(c), 65535);
    vg_chunk_free(c);
}

/* A two-decimal counter (node_cpu_seconds_total) compacts to a fraction of
 * its XOR bytes and refuses appends afterwards; random gauges stay XOR. */
static void test_compact(void **state)
{
    (void)state;
    int64_t ts[120];
    double v[120];
    double k = 123456.78;
    for (int i = 0; i < 120; i++) {
        ts[i] = 1700000000000 + i * 30000;
        k += (double)(2000 + (int)(rnd() % 400)) / 100;
        v[i] = (double)llround(k * 100) / 100;
    }
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 120; i++) assert_int_equal(vg_chunk_append(c, ts[i], v[i]), VG_OK);
    size_t xor_len, len;
    vg_chunk_bytes(c, &xor_len);
    assert_int_equal(vg_chunk_compact(c), VG_OK);
    const uint8_t *b = vg_chunk_bytes(c, &len);
    assert_true(vg_chunk_is_compact(b, len));
    assert_true(len * 3 < xor_len);
    expect_samples(c, ts, v, 120);
    assert_int_equal(vg_chunk_append(c, ts[119] + 30000, 1.0), VG_EINVAL);
    assert_int_equal(vg_chunk_compact(c), VG_OK); /* twice is a no-op */
    expect_samples(c, ts, v, 120);
    vg_chunk_free(c);

    for (int i = 0; i < 120; i++) v[i] = bits_to_double((rnd() >> 12) | 0x4000000000000000ull);
    c = vg_chunk_new();
    for (int i = 0; i < 120; i++) assert_int_equal(vg_chunk_append(c, ts[i], v[i]), VG_OK);
    vg_chunk_bytes(c, &xor_len);
    assert_int_equal(vg_chunk_compact(c), VG_OK);
    b = vg_chunk_bytes(c, &len);
    assert_false(vg_chunk_is_compact(b, len));
    assert_int_equal(len, xor_len);
    assert_int_equal(vg_chunk_append(c, ts[119] + 30000, 1.0), VG_OK); /* still XOR */
    vg_chunk_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_scrape),          cmocka_unit_test(test_random),
        cmocka_unit_test(test_special_floats),          cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_empty_and_one),           cmocka_unit_test(test_truncated_is_corrupt),
        cmocka_unit_test(test_garbage_never_overreads), cmocka_unit_test(test_chunk_full),
        cmocka_unit_test(test_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
