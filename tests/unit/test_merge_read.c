/*
 * test_merge_read.c - the batch readers (vg_chunk_iter_read,
 * vg_merge_iter_read) give exactly the samples, in the same order, as the
 * sample-at-a-time iterators they speed up.
 *
 * Why this shape: the batch merge decodes a whole chunk at a time only
 * when no other run can interleave, so the cases that matter are
 * overlapping runs, equal timestamps in several runs (the earliest run must
 * win), chunks with and without a recorded range, tiny and odd batch sizes,
 * and corrupt chunks. A
 * seeded generator builds many such series and both readers are compared
 * bit for bit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/chunk.h"
#include "tsdb/merge.h"
#include "vigil/alloc.h"

#define MAXRUNS   4
#define MAXCHUNKS 6

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct built {
    vg_chunk_t *ch[MAXRUNS][MAXCHUNKS];
    uint8_t *copy[MAXRUNS][MAXCHUNKS]; /* bytes, maybe corrupted */
    vg_block_chunk bc[MAXRUNS][MAXCHUNKS];
    vg_mrun runs[MAXRUNS];
    vg_mseries s;
} built;

static double rnd_value(uint64_t i)
{
    switch (rnd() % 4) {
    case 0: return (double)i;
    case 1: return (double)(rnd() % 1000) / 8.0;
    case 2: return 42.0;
    default: {
        uint64_t b = rnd();
        double d;
        memcpy(&d, &b, sizeof(d));
        return d;
    }
    }
}

/* One run: chunks of increasing timestamps starting near t0. */
static void build_run(built *b, size_t r, size_t nchunks, int64_t t0, int corrupt)
{
    int64_t t = t0;
    for (size_t c = 0; c < nchunks; c++) {
        vg_chunk_t *ch = vg_chunk_new();
        assert_non_null(ch);
        size_t ns = 1 + rnd() % VG_CHUNK_MAX_SAMPLES;
        for (size_t i = 0; i < ns; i++) {
            t += 1 + (int64_t)(rnd() % 3 == 0 ? rnd() % 100000 : 15000);
            assert_int_equal(vg_chunk_append(ch, t, rnd_value(i)), VG_OK);
        }
        size_t len;
        const uint8_t *p = vg_chunk_bytes(ch, &len);
        uint8_t *cp = vg_malloc(len);
        assert_non_null(cp);
        memcpy(cp, p, len);
        if (corrupt && rnd() % 4 == 0) {
            size_t cut = 2 + rnd() % len;
            if (rnd() % 2 && len > 3)
                cp[2 + rnd() % (len - 2)] ^= (uint8_t)(1 + rnd() % 255);
            else
                len = cut < len ? cut : len;
        }
        b->ch[r][c] = ch;
        b->copy[r][c] = cp;
        /* Block chunks record their range; head chunks do not. */
        int known = rnd() % 2 && !corrupt;
        b->bc[r][c] = (vg_block_chunk){known ? vg_chunk_min_time(ch) : INT64_MIN,
                                       known ? vg_chunk_max_time(ch) : INT64_MAX, cp, len};
    }
    b->runs[r] = (vg_mrun){b->bc[r], nchunks};
}

static void build(built *b, int corrupt)
{
    memset(b, 0, sizeof(*b));
    size_t nruns = 1 + rnd() % MAXRUNS;
    for (size_t r = 0; r < nruns; r++) {
        /* Overlapping starts, and sometimes the very same start (ties). */
        int64_t t0 = rnd() % 3 == 0 ? 1000 : (int64_t)(rnd() % 4000000);
        build_run(b, r, rnd() % (MAXCHUNKS + 1), t0, corrupt);
    }
    b->s = (vg_mseries){NULL, 0, b->runs, nruns};
}

static void unbuild(built *b)
{
    for (size_t r = 0; r < MAXRUNS; r++)
        for (size_t c = 0; c < MAXCHUNKS; c++) {
            vg_chunk_free(b->ch[r][c]);
            vg_free(b->copy[r][c]);
        }
}

#define CAP (MAXRUNS * MAXCHUNKS * VG_CHUNK_MAX_SAMPLES + 8)

static void compare_one(int corrupt)
{
    static int64_t t1[CAP], t2[CAP];
    static double v1[CAP], v2[CAP];
    built b;
    build(&b, corrupt);
    vg_mcur c1[MAXRUNS], c2[MAXRUNS];
    vg_merge_iter a, z;
    size_t n1 = 0, n2 = 0;
    vg_merge_iter_init(&a, c1, &b.s);
    while (vg_merge_iter_next(&a, &t1[n1], &v1[n1])) n1++;
    vg_merge_iter_init(&z, c2, &b.s);
    size_t batch = 1 + rnd() % 300, k;
    while ((k = vg_merge_iter_read(&z, &t2[n2], &v2[n2], batch)) > 0) {
        assert_true(k <= batch);
        n2 += k;
        batch = 1 + rnd() % 300;
    }
    assert_int_equal(n1, n2);
    assert_memory_equal(t1, t2, n1 * sizeof(*t1));
    assert_memory_equal(v1, v2, n1 * sizeof(*v1));
    assert_int_equal(a.err, z.err);
    unbuild(&b);
}

static void test_merge_read_matches_next(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) compare_one(0);
}

static void test_merge_read_matches_next_corrupt(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) compare_one(1);
}

/* The chunk batch reader alone, resumed at random points. */
static void test_chunk_read_matches_next(void **state)
{
    (void)state;
    for (int i = 0; i < 2000; i++) {
        built b;
        memset(&b, 0, sizeof(b));
        build_run(&b, 0, 1, (int64_t)(rnd() % 1000) - 500, 1);
        vg_chunk_iter x, y;
        vg_chunk_iter_init(&x, b.bc[0][0].data, b.bc[0][0].len);
        vg_chunk_iter_init(&y, b.bc[0][0].data, b.bc[0][0].len);
        int64_t ta, tb[VG_CHUNK_MAX_SAMPLES];
        double va, vb[VG_CHUNK_MAX_SAMPLES];
        size_t k;
        while ((k = vg_chunk_iter_read(&y, tb, vb, 1 + rnd() % 50)) > 0)
            for (size_t j = 0; j < k; j++) {
                assert_true(vg_chunk_iter_next(&x, &ta, &va));
                assert_true(ta == tb[j]);
                assert_memory_equal(&va, &vb[j], sizeof(va));
            }
        assert_false(vg_chunk_iter_next(&x, &ta, &va));
        assert_int_equal(vg_chunk_iter_err(&x), vg_chunk_iter_err(&y));
        assert_int_equal(vg_chunk_iter_read(&y, tb, vb, 0), 0);
        unbuild(&b);
    }
}

/* A timestamp step whose delta-of-delta lands in each bucket ('0', 14,
 * 17, 20 and 64 bits), so the unchecked decoder sees every prefix. */
static int64_t rnd_step(void)
{
    switch (rnd() % 6) {
    case 0: return 30000 + (int64_t)(rnd() % 16000) - 8000;
    case 1: return 30000 + (int64_t)(rnd() % 200000) - 100000;
    case 2: return 30000 + (int64_t)(rnd() % 1000000);
    case 3: return (int64_t)(rnd() >> 20);
    default: return 30000;
    }
}

/* The unchecked middle of vg_chunk_iter_read (read_fast) against next()
 * on chunks of every length, some with flipped bits, batches of any size. */
static void test_chunk_read_fast_path(void **state)
{
    (void)state;
    static int64_t tb[400];
    static double vb[400];
    int64_t ta;
    double va;
    for (int i = 0; i < 4000; i++) {
        vg_chunk_t *c = vg_chunk_new();
        assert_non_null(c);
        size_t n = 1 + rnd() % (i % 3 ? 300 : 20);
        int64_t t = (int64_t)(rnd() % 2000000000000ull);
        for (size_t j = 0; j < n; j++, t += rnd_step())
            assert_int_equal(vg_chunk_append(c, t, rnd_value(j)), VG_OK);
        size_t len;
        const uint8_t *bytes = vg_chunk_bytes(c, &len);
        uint8_t *d = vg_malloc(len);
        assert_non_null(d);
        memcpy(d, bytes, len);
        if (i % 4 == 0)
            for (int f = 0; f < 3; f++) d[2 + rnd() % (len - 2 ? len - 2 : 1)] ^= 1u << (rnd() % 8);
        vg_chunk_iter x, y;
        vg_chunk_iter_init(&x, d, len);
        vg_chunk_iter_init(&y, d, len);
        size_t k, got = 0;
        while ((k = vg_chunk_iter_read(&y, tb, vb, 1 + rnd() % (i % 2 ? 7 : 400))) >
               0) /* tb: 400 */
            for (size_t j = 0; j < k; j++, got++) {
                assert_true(vg_chunk_iter_next(&x, &ta, &va));
                assert_true(ta == tb[j]);
                assert_memory_equal(&va, &vb[j], sizeof(va));
            }
        assert_false(vg_chunk_iter_next(&x, &ta, &va));
        assert_int_equal(vg_chunk_iter_err(&x), vg_chunk_iter_err(&y));
        if (i % 4) assert_int_equal(got, n);
        vg_free(d);
        vg_chunk_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_read_matches_next),
        cmocka_unit_test(test_merge_read_matches_next_corrupt),
        cmocka_unit_test(test_chunk_read_matches_next),
        cmocka_unit_test(test_chunk_read_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
