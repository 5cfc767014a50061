/*
 * test_head_ooo.c - the head's out-of-order window (insertion in the middle
 * of chunks, at chunk boundaries, splits, duplicates and conflicts inside
 * the window, out of bounds) and vg_head_truncate (old chunks dropped, idle
 * empty series removed, postings and refs consistent, time range updated).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "vigil/arena.h"

#define L(n, v) ((vg_label_t){(n), (v)})

static uint32_t series(vg_head_t *h, const char *name)
{
    vg_label_t l[] = {L("__name__", name)};
    uint32_t ref;
    int created;
    assert_int_equal(vg_head_series(h, l, 1, &ref, &created), VG_OK);
    return ref;
}

static vg_append_res put(vg_head_t *h, uint32_t ref, int64_t ts, double v)
{
    vg_append_res res;
    assert_int_equal(vg_head_append(h, ref, ts, v, &res), VG_OK);
    return res;
}

/* Decode every sample of series name; check chunk order and sizes. */
static size_t dump(vg_head_t *h, const char *name, int64_t *ts, double *vs, size_t cap,
                   size_t *nchunks)
{
    vg_arena_t *a = vg_arena_new(0);
    vg_matcher_t *m = NULL;
    vg_error err = {0};
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, "__name__", name, &m, &err), VG_OK);
    vg_snap_series *s;
    size_t n, k = 0;
    assert_int_equal(vg_head_snapshot(h, &m, 1, INT64_MIN, INT64_MAX, a, &s, &n), VG_OK);
    *nchunks = n ? s[0].nchunks : 0;
    int64_t prev = INT64_MIN;
    for (size_t c = 0; n && c < s[0].nchunks; c++) {
        vg_chunk_iter it;
        int64_t t;
        double v;
        size_t inchunk = 0;
        vg_chunk_iter_init(&it, s[0].chunks[c].data, s[0].chunks[c].len);
        while (vg_chunk_iter_next(&it, &t, &v)) {
            assert_true(t > prev); /* ordered, disjoint chunks */
            prev = t;
            if (k < cap) ts[k] = t, vs[k] = v;
            k++, inchunk++;
        }
        assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
        assert_true(inchunk >= 1 && inchunk <= VG_CHUNK_MAX_SAMPLES);
    }
    vg_matcher_free(m);
    vg_arena_free(a);
    return k;
}

static void test_ooo_insert_in_order(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    uint32_t r = series(h, "x");
    for (int i = 0; i < 240; i++) /* two full chunks: [0..119] [120..239] at 10ms */
        assert_int_equal(put(h, r, (i + 1) * 10, i), VG_APPEND_ADDED);
    /* Into the middle of the first chunk, at the boundary gap, before everything. */
    assert_int_equal(put(h, r, 15, -1), VG_APPEND_ADDED);
    assert_int_equal(put(h, r, 1205, -2), VG_APPEND_ADDED); /* between chunk 1 and 2 */
    assert_int_equal(put(h, r, 5, -3), VG_APPEND_ADDED);
    assert_int_equal(put(h, r, 2395, -4), VG_APPEND_ADDED); /* inside the open chunk */
    int64_t ts[300];
    double vs[300];
    size_t nc, n = dump(h, "x", ts, vs, 300, &nc);
    assert_int_equal(n, 244);
    assert_true(nc >= 3); /* full chunks split instead of growing past 120 */
    assert_int_equal(ts[0], 5);
    assert_true(vs[0] == -3);
    assert_int_equal(ts[2], 15);
    /* In-order appends carry on after OOO inserts into the open chunk. */
    assert_int_equal(put(h, r, 2410, 7), VG_APPEND_ADDED);
    int64_t mint, maxt;
    assert_true(vg_head_time_range(h, &mint, &maxt));
    assert_int_equal(mint, 5);
    assert_int_equal(maxt, 2410);
    vg_head_free(h);
}

static void test_ooo_dup_conflict_bounds(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    vg_head_set_ooo_window(h, 1000);
    uint32_t r = series(h, "x");
    assert_int_equal(put(h, r, 10000, 1), VG_APPEND_ADDED);
    assert_int_equal(put(h, r, 9500, 2), VG_APPEND_ADDED);
    assert_int_equal(put(h, r, 9500, 2), VG_APPEND_DUPLICATE);
    assert_int_equal(put(h, r, 9500, 3), VG_APPEND_CONFLICT);
    assert_int_equal(put(h, r, 9000, 4), VG_APPEND_ADDED); /* exactly newest - window */
    assert_int_equal(put(h, r, 8999, 5), VG_APPEND_OUT_OF_ORDER);
    assert_int_equal(put(h, r, 9000, 4), VG_APPEND_DUPLICATE); /* stored: dup even at the edge */
    vg_head_set_ooo_window(h, -1);
    assert_int_equal(put(h, r, 9999, 6), VG_APPEND_OUT_OF_ORDER);
    int64_t ts[8];
    double vs[8];
    size_t nc;
    assert_int_equal(dump(h, "x", ts, vs, 8, &nc), 3);
    vg_head_free(h);
}

/* Random-ish order within the window gives the same data as sorted input. */
static void test_ooo_shuffled(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    uint32_t r = series(h, "x");
    enum { N = 1000 };
    for (uint32_t i = 0; i < N; i++) {
        uint32_t k = (i * 7919u) % N; /* a permutation of 0..N-1 */
        assert_int_equal(put(h, r, 100000 + k * 15, k), VG_APPEND_ADDED);
    }
    static int64_t ts[N];
    static double vs[N];
    size_t nc;
    assert_int_equal(dump(h, "x", ts, vs, N, &nc), N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ts[i], 100000 + i * 15);
        assert_true(vs[i] == i);
    }
    vg_head_free(h);
}

static void test_truncate(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    uint32_t a = series(h, "a"), b = series(h, "b");
    for (int i = 0; i < 300; i++) put(h, a, i * 10, i); /* chunks [0,1190] [1200,2390] [2400..] */
    for (int i = 0; i < 50; i++) put(h, b, i * 10, i);  /* one chunk [0, 490] */
    vg_head_set_min_valid(h, 1500); /* what a block cut does before its snapshot */
    assert_int_equal(put(h, a, 1499, 1), VG_APPEND_OUT_OF_ORDER); /* in the window, yet refused */
    assert_int_equal(put(h, a, 1500, 150), VG_APPEND_DUPLICATE);
    assert_int_equal(vg_head_truncate(h, 1500), VG_OK);
    int64_t ts[400], mint, maxt;
    double vs[400];
    size_t nc;
    assert_int_equal(dump(h, "a", ts, vs, 400, &nc), 180); /* chunk holding 1500 is kept */
    assert_int_equal(ts[0], 1200);
    assert_int_equal(dump(h, "b", ts, vs, 400, &nc), 0);
    assert_true(vg_head_time_range(h, &mint, &maxt));
    assert_int_equal(mint, 1200);
    assert_int_equal(maxt, 2990);
    /* b is empty but was used since the last truncate: it stays, same ref. */
    assert_int_equal(vg_head_num_series(h), 2);
    assert_int_equal(series(h, "b"), b);
    /* Older than the truncation point: out of bounds. */
    assert_int_equal(put(h, b, 1400, 1), VG_APPEND_OUT_OF_ORDER);
    /* Two truncates with no use: b goes, a stays with its ref. */
    assert_int_equal(vg_head_truncate(h, 1500), VG_OK);
    put(h, a, 3000, 1);
    assert_int_equal(vg_head_truncate(h, 1500), VG_OK);
    assert_int_equal(vg_head_num_series(h), 1);
    vg_append_res res;
    assert_int_equal(vg_head_append(h, b, 3000, 1, &res), VG_ENOTFOUND);
    assert_int_equal(put(h, a, 3010, 1), VG_APPEND_ADDED);
    /* Postings: only a is listed; b comes back with a new ref. */
    vg_arena_t *ar = vg_arena_new(0);
    const char **vals;
    size_t nv;
    assert_int_equal(vg_head_label_strings(h, "__name__", NULL, 0, 0, 5000, ar, &vals, &nv), VG_OK);
    assert_int_equal(nv, 1);
    assert_string_equal(vals[0], "a");
    vg_snap_series *ss;
    size_t n;
    assert_int_equal(vg_head_snapshot(h, NULL, 0, 0, 5000, ar, &ss, &n), VG_OK);
    assert_int_equal(n, 1);
    vg_arena_free(ar);
    uint32_t b2 = series(h, "b");
    assert_true(b2 != b);
    assert_int_equal(put(h, b2, 4000, 1), VG_APPEND_ADDED);
    /* Everything gone: the range is empty. */
    assert_int_equal(vg_head_truncate(h, 100000), VG_OK);
    assert_false(vg_head_time_range(h, &mint, &maxt));
    vg_head_free(h);
}

/* Churn: series come and go; memory of dead ones (pages, strings) is freed. */
static void test_truncate_churn(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    char name[32];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(name, sizeof name, "s%d_%d", round, i);
            put(h, series(h, name), round * 1000 + 1, 1);
        }
        assert_int_equal(vg_head_truncate(h, round * 1000), VG_OK);
    }
    assert_int_equal(vg_head_truncate(h, 1 << 30), VG_OK);
    assert_int_equal(vg_head_truncate(h, 1 << 30), VG_OK);
    assert_int_equal(vg_head_num_series(h), 0);
    vg_head_free(h);
}

static void test_max_series(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    vg_head_set_max_series(h, 2);
    series(h, "a");
    series(h, "b");
    series(h, "a"); /* existing: fine */
    vg_label_t l[] = {L("__name__", "c")};
    uint32_t ref;
    int created;
    assert_int_equal(vg_head_series(h, l, 1, &ref, &created), VG_ELIMIT);
    vg_head_free(h);
}

/* Appends (in and out of order, new series) racing truncates and snapshots:
 * nothing crashes, every decoded series stays ordered (run under ASan/TSan). */
typedef struct race {
    vg_head_t *h;
    int id;
} race;

static void *race_append(void *arg)
{
    race *r = arg;
    char name[32];
    for (int k = 0; k < 300; k++)
        for (int i = 0; i < 50; i++) {
            snprintf(name, sizeof name, "r%d_%d", r->id, i);
            vg_label_t l[] = {L("__name__", name)};
            uint32_t ref;
            int c;
            vg_append_res res;
            if (vg_head_series(r->h, l, 1, &ref, &c) != VG_OK) continue;
            int64_t ts = k * 100 - (k % 5 == 4 ? 250 : 0); /* every 5th sample is late */
            vg_err_t rc = vg_head_append(r->h, ref, ts, k, &res);
            assert_true(rc == VG_OK || rc == VG_ENOTFOUND);
        }
    return NULL;
}

static void test_race_truncate(void **state)
{
    (void)state;
    vg_head_t *h = vg_head_new();
    race rs[2] = {{h, 0}, {h, 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, race_append, &rs[i]);
    for (int k = 0; k < 40; k++) {
        vg_arena_t *a = vg_arena_new(0);
        vg_snap_series *ss;
        size_t n;
        assert_int_equal(vg_head_snapshot(h, NULL, 0, INT64_MIN, INT64_MAX, a, &ss, &n), VG_OK);
        vg_arena_free(a);
        assert_int_equal(vg_head_truncate(h, k * 500), VG_OK);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    int64_t ts[400];
    double vs[400];
    size_t nc;
    dump(h, "r0_7", ts, vs, 400, &nc); /* asserts order and chunk sizes */
    vg_head_free(h);
}

/* A shrunk chunk still appends and decodes bit for bit. */
static void test_chunk_shrink(void **state)
{
    (void)state;
    vg_chunk_t *c = vg_chunk_new();
    for (int i = 0; i < 200; i++) {
        assert_int_equal(vg_chunk_append(c, i * 1000 + (i % 3), i * 0.5), VG_OK);
        if (i % 37 == 0) vg_chunk_shrink(c);
    }
    size_t len;
    const uint8_t *b = vg_chunk_bytes(c, &len);
    vg_chunk_iter it;
    int64_t t;
    double v;
    int n = 0;
    vg_chunk_iter_init(&it, b, len);
    for (; vg_chunk_iter_next(&it, &t, &v); n++) {
        assert_int_equal(t, n * 1000 + (n % 3));
        assert_true(v == n * 0.5);
    }
    assert_int_equal(n, 200);
    assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
    vg_chunk_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ooo_insert_in_order), cmocka_unit_test(test_ooo_dup_conflict_bounds),
        cmocka_unit_test(test_ooo_shuffled),        cmocka_unit_test(test_truncate),
        cmocka_unit_test(test_truncate_churn),      cmocka_unit_test(test_max_series),
        cmocka_unit_test(test_chunk_shrink),        cmocka_unit_test(test_race_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
