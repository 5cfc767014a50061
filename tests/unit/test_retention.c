/*
 * test_retention.c - the retention decision table (per-tier ages, a raw
 * block waits for its 5m copy unless that would have expired too, coverage
 * by several blocks, tenants kept apart, the byte cap deleting the oldest
 * data first) and the pass on a store: blocks leave the list and the disk,
 * and vigil_tsdb_blocks_deleted_total{tier,reason} counts them.
 */
#include <dirent.h>
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
#include "tsdb/retention.h"
#include "tsdb/tiers.h"
#include "tsdb/tsdb.h"
#include "tsdb/tsdb_blocks.h"
#include "tsdb/tsdb_int.h"
#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#define H  (3600 * 1000LL)
#define D  (24 * H)
#define M5 (300 * 1000LL)

typedef struct row {
    const char *what;
    vg_ret_block b[6];
    size_t n;
    int64_t keep[3];
    uint64_t max_bytes;
    vg_ret_reason want[6];
} row;

#define RAW(t, lo, hi, by)                                                                         \
    {                                                                                              \
        t, lo, hi, 0, by, 100 * D                                                                  \
    }
#define R5(t, lo, hi, by)                                                                          \
    {                                                                                              \
        t, lo, hi, M5, by, 100 * D                                                                 \
    }
#define R1(t, lo, hi, by)                                                                          \
    {                                                                                              \
        t, lo, hi, H, by, 100 * D                                                                  \
    }
#define K VG_RET_KEEP
#define A VG_RET_AGE
#define B VG_RET_BYTES

static const row table[] = {
    {"young raw kept", {RAW(0, 99 * D, 100 * D, 1)}, 1, {D, 2 * D, 3 * D}, 0, {K}},
    {"expired raw waits for its 5m copy", {RAW(0, 0, D, 1)}, 1, {D, 200 * D, 300 * D}, 0, {K}},
    {"expired raw with a 5m copy goes",
     {RAW(0, 0, D, 1), R5(0, 0, D, 1)},
     2,
     {D, 200 * D, 300 * D},
     0,
     {A, K}},
    {"5m copy made of two blocks covers",
     {RAW(0, 0, 2 * D, 1), R5(0, 0, D, 1), R5(0, D, 2 * D, 1)},
     3,
     {D, 200 * D, 300 * D},
     0,
     {A, K, K}},
    {"a gap in the 5m copy keeps raw",
     {RAW(0, 0, 2 * D, 1), R5(0, 0, D, 1), R5(0, D + H, 2 * D, 1)},
     3,
     {D, 200 * D, 300 * D},
     0,
     {K, K, K}},
    {"another tenant's 5m copy does not count",
     {RAW(0, 0, D, 1), R5(1, 0, D, 1)},
     2,
     {D, 200 * D, 300 * D},
     0,
     {K, K}},
    {"raw past the 5m retention too goes without a copy",
     {RAW(0, 0, D, 1)},
     1,
     {D, 2 * D, 300 * D},
     0,
     {A}},
    {"each tier its own retention",
     {RAW(0, 0, D, 1), R5(0, 0, D, 1), R1(0, 0, D, 1), R1(0, 50 * D, 51 * D, 1)},
     4,
     {10 * D, 20 * D, 60 * D},
     0,
     {A, A, A, K}},
    {"5m waits for its 1h copy",
     {R5(0, 0, D, 1), R1(0, D, 2 * D, 1)},
     2,
     {10 * D, 20 * D, 200 * D},
     0,
     {K, K}},
    {"max_bytes: oldest first, raw before coarser at the same end",
     {RAW(0, 98 * D, 99 * D, 10), R5(0, 98 * D, 99 * D, 3), RAW(0, 99 * D, 100 * D, 10),
      R1(0, 90 * D, 95 * D, 2)},
     4,
     {0, 0, 0},
     14,
     {B, K, K, B}},
    {"max_bytes after ages, across tenants",
     {RAW(0, 0, D, 100), R5(0, 0, D, 5), RAW(1, 99 * D, 100 * D, 10), R5(1, 97 * D, 98 * D, 5)},
     4,
     {D, 0, 0},
     12,
     {A, B, K, B}},
    {"no cap: 0 keeps everything young", {RAW(0, 99 * D, 100 * D, 1 << 30)}, 1, {0}, 0, {K}},
};

static void test_plan_table(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(table) / sizeof(table[0]); r++) {
        const row *x = &table[r];
        vg_ret_opts o = {{x->keep[0], x->keep[1], x->keep[2]}, x->max_bytes};
        vg_ret_reason out[6];
        vg_retention_plan(x->b, x->n, &o, out);
        for (size_t i = 0; i < x->n; i++) {
            if (out[i] != x->want[i])
                fprintf(stderr, "row \"%s\" block %zu: got %d want %d\n", x->what, i, out[i],
                        x->want[i]);
            assert_int_equal(out[i], x->want[i]);
        }
    }
}

static void test_tier_names(void **state)
{
    (void)state;
    assert_int_equal(vg_ret_tier(0), 0);
    assert_int_equal(vg_ret_tier(M5), 1);
    assert_int_equal(vg_ret_tier(H), 2);
    assert_string_equal(vg_ret_tier_name(1), "5m");
}

/* ---- the store ---- */

#include "blockdir.h"

static const vg_label_t la[] = {{"__name__", "up"}, {"job", "a"}};

static void block(int64_t mint, int64_t maxt, char *ulid)
{
    vg_block_writer_t *w = NULL;
    vg_error e = {0};
    int64_t ts[2] = {mint, maxt - 1};
    double v[2] = {1, 2};
    assert_int_equal(vg_block_writer_new(bdir, mint, maxt, 0, &w, &e), VG_OK);
    assert_int_equal(vg_block_writer_add_samples(w, la, 2, ts, v, 2, &e), VG_OK);
    assert_int_equal(vg_block_writer_commit(w, ulid, &e), VG_OK);
    vg_block_writer_free(w);
}

static int exists(const char *ulid)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", bdir, ulid);
    return access(p, F_OK) == 0;
}

static int has(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

static void test_store_pass(void **state)
{
    (void)state;
    char u[3][VG_ULID_LEN + 1];
    /* three 1-day raw blocks, days 0..3 (not aligned to 3 ranges of 2h: no compaction) */
    for (int i = 0; i < 3; i++) block(i * D, (i + 1) * D, u[i]);
    vg_metrics_t *m = vg_metrics_new();
    assert_non_null(m);
    /* raw kept 1 day, 5m kept 1 day too (so raw goes without a copy); no downsampling */
    vg_tsdb_opts o = {.dir = dir,
                      .retention_raw_ms = D,
                      .retention_5m_ms = D,
                      .downsample_5m_after_ms = -1,
                      .downsample_1h_after_ms = -1};
    vg_tsdb_t *db = NULL;
    vg_error e = {0};
    assert_int_equal(vg_tsdb_open(&o, m, &db, &e), VG_OK);
    size_t nds, ndel;
    /* at day 3 (the newest sample): day 0 and day 1 have ended a day ago or more */
    assert_int_equal(vg_tiers_pass(db->blocks, 3 * D, &nds, &ndel, &e), VG_OK);
    assert_int_equal(nds, 0);
    assert_false(exists(u[0]));
    assert_false(exists(u[1]));
    assert_true(exists(u[2]));
    assert_int_equal(vg_tsdb_blocks_count(db->blocks, NULL), 1);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_metrics_render(m, &b), VG_OK);
    assert_non_null(b.data);
    assert_true(
        has(b.data, "vigil_tsdb_blocks_deleted_total{reason=\"retention\",tier=\"raw\"} 2"));
    vg_buf_free(&b);
    vg_tsdb_free(db);
    vg_metrics_free(m);
}

static void test_store_max_bytes(void **state)
{
    (void)state;
    char u[3][VG_ULID_LEN + 1];
    for (int i = 0; i < 3; i++) block(i * D, (i + 1) * D, u[i]);
    vg_tsdb_opts o = {.dir = dir, .downsample_5m_after_ms = -1};
    vg_tsdb_t *db = NULL;
    vg_error e = {0};
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &e), VG_OK);
    uint64_t bytes = 0;
    vg_block_t **b;
    size_t nb;
    assert_int_equal(vg_tsdb_blocks_acquire(db->blocks, "default", D, 3 * D, &b, &nb), VG_OK);
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < nb; i++) bytes += vg_block_size(b[i]);
    vg_tsdb_blocks_release(b, nb);
    vg_tsdb_free(db);
    /* a cap of the two newest blocks' bytes: the oldest goes */
    o.max_bytes = bytes;
    size_t nds, ndel;
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &e), VG_OK);
    assert_int_equal(vg_tiers_pass(db->blocks, 3 * D, &nds, &ndel, &e), VG_OK);
    assert_int_equal(vg_tsdb_blocks_count(db->blocks, NULL), 2);
    assert_false(exists(u[0]));
    assert_true(exists(u[1]) && exists(u[2]));
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_table),
        cmocka_unit_test(test_tier_names),
        cmocka_unit_test_setup_teardown(test_store_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_max_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
