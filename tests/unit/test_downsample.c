/*
 * test_downsample.c - window aggregates (count, sum, min, max at each
 * window's last sample), the reset-aware counter with its first sample and
 * end marker, stitching across blocks (a reset between blocks is exact),
 * 5m -> 1h re-aggregation, and the store: raw blocks get 5m and then 1h
 * copies, and selects read the finest tier with the aggregate asked for.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsdb/block.h"
#include "tsdb/downsample.h"
#include "tsdb/tiers.h"
#include "tsdb/tsdb.h"
#include "tsdb/tsdb_blocks.h"
#include "tsdb/tsdb_int.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define M5 (300 * 1000LL)
#define H  (3600 * 1000LL)

static void clear5(vg_ds_samples *o)
{
    for (int k = 0; k < VG_AGGR_NKINDS; k++) vg_ds_clear(&o[k]);
}

static void test_windows(void **state)
{
    (void)state;
    /* 15 s samples from 7 s for 12 minutes: windows [0,5m) [5m,10m) [10m,15m) */
    int64_t ts[48];
    double v[48];
    for (int i = 0; i < 48; i++) ts[i] = 7000 + i * 15000, v[i] = i % 7;
    vg_ds_samples o[VG_AGGR_NKINDS] = {{0}};
    assert_int_equal(vg_downsample_raw(ts, v, 48, M5, o), VG_OK);
    assert_int_equal(o[VG_AGGR_COUNT].n, 3);
    assert_int_equal(o[VG_AGGR_COUNT].v[0], 20);
    assert_int_equal(o[VG_AGGR_COUNT].v[1], 20);
    assert_int_equal(o[VG_AGGR_COUNT].v[2], 8);
    assert_int_equal(o[VG_AGGR_COUNT].ts[0], 7000 + 19 * 15000); /* the window's last sample */
    assert_int_equal(o[VG_AGGR_COUNT].ts[2], 7000 + 47 * 15000);
    double s0 = 0;
    for (int i = 0; i < 20; i++) s0 += v[i];
    assert_true(o[VG_AGGR_SUM].v[0] == s0);
    assert_true(o[VG_AGGR_MIN].v[1] == 0 && o[VG_AGGR_MAX].v[1] == 6);
    assert_int_equal(o[VG_AGGR_SUM].ts[1], o[VG_AGGR_COUNT].ts[1]);
    clear5(o);
}

static void test_window_edges(void **state)
{
    (void)state;
    /* a sample exactly on a boundary opens the next window; negative times floor */
    int64_t ts[] = {-1, 0, M5 - 1, M5};
    double v[] = {1, 2, 3, 4};
    vg_ds_samples o[VG_AGGR_NKINDS] = {{0}};
    assert_int_equal(vg_downsample_raw(ts, v, 4, M5, o), VG_OK);
    assert_int_equal(o[VG_AGGR_COUNT].n, 3);
    assert_true(o[VG_AGGR_SUM].v[0] == 1 && o[VG_AGGR_SUM].v[1] == 5 && o[VG_AGGR_SUM].v[2] == 4);
    assert_int_equal(o[VG_AGGR_SUM].ts[1], M5 - 1);
    clear5(o);
    /* stale markers are not samples */
    double st;
    uint64_t bits = 0x7ff0000000000002ULL;
    memcpy(&st, &bits, sizeof(st));
    double v2[] = {1, st, 3, 4};
    assert_int_equal(vg_downsample_raw(ts, v2, 4, M5, o), VG_OK);
    assert_true(o[VG_AGGR_COUNT].v[1] == 1 && o[VG_AGGR_SUM].v[1] == 3);
    clear5(o);
}

static void test_counter_resets(void **state)
{
    (void)state;
    /* 0 10 20 | reset 5 15 | 25 ; one minute apart, windows of 5 minutes */
    int64_t ts[] = {0, 60000, 120000, 360000, 420000, 660000};
    double v[] = {0, 10, 20, 5, 15, 25};
    vg_ds_samples o[VG_AGGR_NKINDS] = {{0}};
    assert_int_equal(vg_downsample_raw(ts, v, 6, M5, o), VG_OK);
    const vg_ds_samples *c = &o[VG_AGGR_COUNTER];
    /* first sample, window ends (120000, 420000, 660000), marker */
    assert_int_equal(c->n, 5);
    assert_int_equal(c->ts[0], 0);
    assert_true(c->v[0] == 0);
    assert_int_equal(c->ts[1], 120000);
    assert_true(c->v[1] == 20);
    assert_true(c->v[2] == 35); /* 20 + 5 (reset counts the new value) + 10 */
    assert_true(c->v[3] == 45);
    assert_int_equal(c->ts[4], c->ts[3]); /* the marker: the raw last value */
    assert_true(c->v[4] == 25);
    clear5(o);
}

static void test_stitch_blocks(void **state)
{
    (void)state;
    /* block 1 ends at total 45 (raw 25); block 2 starts at raw 30 (no reset
     * between) then resets; block 3 starts at raw 2 (a reset between) */
    int64_t ts[] = {0, 100, 100, 200, 300, 300, 400, 400, 500};
    double v[] = {10, 45, 25, 30, 38, 8, 50, 2, 5};
    vg_ds_samples out = {0};
    double last;
    assert_int_equal(vg_counter_stitch(ts, v, 9, &out, &last), VG_OK);
    assert_int_equal(out.n, 6);
    assert_true(out.v[0] == 10);
    assert_true(out.v[1] == 45);
    assert_true(out.v[2] == 50); /* +5: 30 - 25 */
    assert_true(out.v[3] == 58);
    assert_true(out.v[4] == 100); /* +42: 50 - 8 */
    assert_true(out.v[5] == 103); /* 5 vs raw 2: +3 */
    assert_true(last == 5);
    vg_ds_clear(&out);
}

static void test_aggr_to_1h(void **state)
{
    (void)state;
    /* 3 hours of a counter at 30 s with a reset in the middle of hour 2 */
    enum { N = 360 };
    int64_t ts[N];
    double v[N], raw_sum = 0, hour1_max = -1;
    for (int i = 0; i < N; i++) {
        ts[i] = 11000 + i * 30000LL;
        v[i] = i < 180 ? i * 2.0 : (i - 180) * 3.0;
        raw_sum += v[i];
        if (ts[i] >= H && ts[i] < 2 * H && v[i] > hour1_max) hour1_max = v[i];
    }
    vg_ds_samples m5[VG_AGGR_NKINDS] = {{0}}, h1[VG_AGGR_NKINDS] = {{0}};
    assert_int_equal(vg_downsample_raw(ts, v, N, M5, m5), VG_OK);
    assert_int_equal(vg_downsample_aggr(m5, H, h1), VG_OK);
    assert_int_equal(h1[VG_AGGR_COUNT].n, 3);
    double s = 0, c = 0;
    for (size_t i = 0; i < 3; i++) s += h1[VG_AGGR_SUM].v[i], c += h1[VG_AGGR_COUNT].v[i];
    assert_true(s == raw_sum && c == N);
    assert_true(h1[VG_AGGR_MAX].v[1] == hour1_max);
    /* the counter's total increase survives both steps: 179*2 before the reset, then 179*3 */
    vg_ds_samples st = {0};
    double last;
    const vg_ds_samples *k = &h1[VG_AGGR_COUNTER];
    assert_int_equal(vg_counter_stitch(k->ts, k->v, k->n, &st, &last), VG_OK);
    assert_true(st.v[st.n - 1] - st.v[0] == 179 * 2 + 179 * 3);
    assert_true(last == 179 * 3);
    assert_int_equal(st.ts[st.n - 1], ts[N - 1]);
    vg_ds_clear(&st);
    clear5(m5);
    clear5(h1);
}

static void test_aggr_names(void **state)
{
    (void)state;
    assert_string_equal(vg_aggr_name(VG_AGGR_COUNTER), "counter");
    assert_null(vg_aggr_name(VG_AGGR_AVG));
    assert_int_equal(vg_aggr_parse("max"), VG_AGGR_MAX);
    assert_int_equal(vg_aggr_parse("avg"), -1);
    assert_int_equal(vg_aggr_for_function("rate"), VG_AGGR_COUNTER);
    assert_int_equal(vg_aggr_for_function("increase"), VG_AGGR_COUNTER);
    assert_int_equal(vg_aggr_for_function("sum_over_time"), VG_AGGR_SUM);
    assert_int_equal(vg_aggr_for_function("count_over_time"), VG_AGGR_COUNT);
    assert_int_equal(vg_aggr_for_function("avg_over_time"), VG_AGGR_AVG);
    assert_int_equal(vg_aggr_for_function(NULL), VG_AGGR_AVG);
}

/* ---- the store ---- */

#include "blockdir.h"

static const vg_label_t lc[] = {{"__name__", "reqs_total"}, {"job", "a"}};

/* Counter value at sample i: +2 per sample, reset to 0 at sample 500. */
static double cval(int64_t i)
{
    return i < 500 ? 2.0 * (double)i : 2.0 * (double)(i - 500);
}

/* A raw block [mint, maxt) of lc every 15 s from mint + 7 s. */
static void raw_block(int64_t mint, int64_t maxt)
{
    vg_block_writer_t *w = NULL;
    vg_error e = {0};
    size_t n = 0;
    int64_t ts[2000];
    double v[2000];
    for (int64_t t = mint + 7000; t < maxt; t += 15000, n++) {
        ts[n] = t;
        v[n] = cval((t - 7000) / 15000);
    }
    char ulid[VG_ULID_LEN + 1];
    assert_int_equal(vg_block_writer_new(bdir, mint, maxt, 0, &w, &e), VG_OK);
    assert_int_equal(vg_block_writer_add_samples(w, lc, 2, ts, v, n, &e), VG_OK);
    assert_int_equal(vg_block_writer_commit(w, ulid, &e), VG_OK);
    vg_block_writer_free(w);
}

/* Resolutions present: bit 0 raw, 1 5m, 2 1h. */
static int tiers_present(vg_tsdb_t *db)
{
    vg_block_t **b;
    size_t n;
    int bits = 0;
    assert_int_equal(vg_tsdb_blocks_acquire(db->blocks, "default", INT64_MIN, INT64_MAX, &b, &n),
                     VG_OK);
    for (size_t i = 0; i < n; i++) {
        int64_t r = vg_block_get_meta(b[i])->resolution_ms;
        bits |= r == 0 ? 1 : r == M5 ? 2 : 4;
    }
    vg_tsdb_blocks_release(b, n);
    return bits;
}

/* Sum of the kind's samples of lc over [mint, maxt]; *n gets their number. */
static double sel_sum(vg_tsdb_t *db, vg_aggr_kind k, int64_t mint, int64_t maxt, size_t *n)
{
    vg_seriesset_t *ss = NULL;
    vg_error e = {0};
    int64_t t;
    double v, s = 0;
    *n = 0;
    assert_int_equal(vg_tsdb_select_aggr(db, "default", NULL, 0, mint, maxt, k, &ss, &e), VG_OK);
    assert_int_equal(vg_seriesset_len(ss), 1);
    assert_int_equal(vg_seriesset_next(ss), 1);
    size_t nl;
    const vg_label_t *l = vg_seriesset_labels(ss, &nl);
    assert_int_equal(nl, 2); /* no internal label */
    assert_string_equal(l[1].value, "a");
    while (vg_seriesset_sample_next(ss, &t, &v)) s += v, (*n)++;
    vg_seriesset_free(ss);
    return s;
}

/* Last value minus first of the counter kind over [mint, maxt]. */
static double counter_increase(vg_tsdb_t *db, int64_t mint, int64_t maxt)
{
    vg_seriesset_t *ss = NULL;
    vg_error e = {0};
    int64_t t;
    double v, prev = 0, inc = 0;
    int have = 0;
    assert_int_equal(
        vg_tsdb_select_aggr(db, "default", NULL, 0, mint, maxt, VG_AGGR_COUNTER, &ss, &e), VG_OK);
    assert_int_equal(vg_seriesset_next(ss), 1);
    while (vg_seriesset_sample_next(ss, &t, &v)) {
        if (have) inc += v >= prev ? v - prev : v; /* the stitched part may start below 0 */
        prev = v;
        have = 1;
    }
    vg_seriesset_free(ss);
    return inc;
}

/* Retire every block of resolution res ending by maxt. */
static void drop(vg_tsdb_t *db, int64_t res, int64_t maxt)
{
    vg_block_t **b;
    size_t nb;
    assert_int_equal(vg_tsdb_blocks_acquire(db->blocks, "default", INT64_MIN, INT64_MAX, &b, &nb),
                     VG_OK);
    for (size_t i = 0; i < nb; i++) {
        const vg_block_meta *m = vg_block_get_meta(b[i]);
        if (m->resolution_ms == res && m->maxt <= maxt)
            assert_int_equal(vg_tsdb_blocks_delete(db->blocks, "default", m->ulid), VG_OK);
    }
    vg_tsdb_blocks_release(b, nb);
}

/* Over [0, 6h) (the downsampled part): window counts and sums add up to the
 * raw ones, and the counter's increase over 12 h is the raw one. */
static void check_answers(vg_tsdb_t *db, double raw_inc)
{
    size_t n;
    double want = 0;
    for (int64_t i = 0; i < 6 * 240; i++) want += cval(i);
    assert_true(sel_sum(db, VG_AGGR_COUNT, 0, 6 * H - 1, &n) == 6 * 240);
    assert_true(n < 6 * 240);
    assert_true(sel_sum(db, VG_AGGR_SUM, 0, 6 * H - 1, &n) == want);
    assert_true(fabs(counter_increase(db, 0, 12 * H) - raw_inc) < 1e-9);
    sel_sum(db, VG_AGGR_AVG, 0, 6 * H - 1, &n); /* one value per window */
    assert_true(n > 0 && n <= 6 * 12);
}

static void test_store_tiers(void **state)
{
    (void)state;
    for (int i = 0; i < 6; i++) raw_block(i * 2 * H, (i + 1) * 2 * H); /* 12 h, 2880 samples */
    vg_tsdb_opts o = {.dir = dir, .downsample_5m_after_ms = 4 * H, .downsample_1h_after_ms = 8 * H};
    vg_tsdb_t *db = NULL;
    vg_error e = {0};
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &e), VG_OK);
    /* compaction first (the thread may have): raw [0,6h) and [6h,12h) */
    assert_int_equal(vg_tsdb_blocks_compact(db->blocks, NULL, &e), VG_OK);
    size_t n, nds, ndel;
    sel_sum(db, VG_AGGR_COUNT, 0, 12 * H, &n);
    assert_int_equal(n, 2880);
    double raw_inc = counter_increase(db, 0, 12 * H);
    assert_true(raw_inc == 2 * 499 + 2 * (2879 - 500));
    /* at 14h: [0,6h) gets a 5m copy (ends by 10h) and a 1h one (by 6h); the
     * block thread, at the newest sample (12h), may have made the 5m one */
    assert_int_equal(vg_tiers_pass(db->blocks, 14 * H, &nds, &ndel, &e), VG_OK);
    assert_true(nds == 1 || nds == 2);
    assert_int_equal(ndel, 0);
    assert_int_equal(tiers_present(db), 7);
    /* raw still covers everything: raw answers */
    sel_sum(db, VG_AGGR_COUNT, 0, 12 * H, &n);
    assert_int_equal(n, 2880);
    drop(db, 0, 6 * H); /* 5m data serves [0, 6h) */
    check_answers(db, raw_inc);
    drop(db, M5, 6 * H); /* then 1h data */
    check_answers(db, raw_inc);
    /* label listings do not show the internal label */
    char **names = NULL;
    assert_int_equal(vg_tsdb_label_names(db, "default", NULL, 0, 0, 12 * H, &names, &n, &e), VG_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) assert_string_not_equal(names[i], VG_AGGR_LABEL);
    vg_free(names);
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_window_edges),
        cmocka_unit_test(test_counter_resets),
        cmocka_unit_test(test_stitch_blocks),
        cmocka_unit_test(test_aggr_to_1h),
        cmocka_unit_test(test_aggr_names),
        cmocka_unit_test_setup_teardown(test_store_tiers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
