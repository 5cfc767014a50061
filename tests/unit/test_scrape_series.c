/*
 * test_scrape_series.c - the scrape stage (stage.c) and per-target series
 * state (series.c) on crafted data.
 *
 * Hashes are set by hand here so the cases the seeded hash makes rare can
 * be forced: many hashes in one sort bucket (same top bits), equal hashes
 * for different series (a collision must not drop a sample), and set
 * differences whose members differ only in the low bits. End-to-end
 * staleness through a real scrape is in test_scrape.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "scrape/scrape_int.h"

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Stage one sample whose only label is __name__=name. */
static uint32_t add_named(vg_scrape_stage *st, const char *name, uint32_t flags)
{
    vg_scrape_label l = {VG_METRIC_NAME, name, strlen(VG_METRIC_NAME), strlen(name)};
    uint32_t rec = vg_scrape_stage_add(st, &l, 1, 0, 1.0, flags);
    assert_int_not_equal(rec, UINT32_MAX);
    return rec;
}

/* Force the hash of the last staged record (record and ref). */
static void set_hash(vg_scrape_stage *st, uint32_t rec, uint64_t h)
{
    vg_scrape_stage_rec(st, rec)->hash = h;
    st->ref[st->n - 1].hash = h;
}

static void test_stage_record(void **state)
{
    vg_scrape_stage st;
    vg_scrape_stage_init(&st);
    vg_scrape_label l[] = {{"__name__", "m", 8, 1}, {"a", "x\ny", 1, 3}, {"zz", "", 2, 0}};
    uint32_t r1 = vg_scrape_stage_add(&st, l, 3, 42, 2.5, VG_STAGE_TRACK);
    uint32_t r2 = vg_scrape_stage_add(&st, l, 2, 43, 3.5, 0);
    assert_int_equal(r1, 0);
    const vg_stage_rec *a = vg_scrape_stage_rec(&st, r1), *b = vg_scrape_stage_rec(&st, r2);
    assert_int_equal(a->size % 8, 0);
    assert_int_equal(r2, a->size);
    assert_int_equal(a->n, 3);
    assert_true(a->ts_ms == 42 && a->v == 2.5 && a->flags == VG_STAGE_TRACK);
    vg_label_t out[3];
    vg_buf strs;
    vg_buf_init(&strs, 0);
    assert_int_equal(vg_scrape_stage_labels(a, out, &strs), VG_OK);
    assert_string_equal(out[0].name, "__name__");
    assert_string_equal(out[1].value, "x\ny");
    assert_string_equal(out[2].name, "zz");
    assert_string_equal(out[2].value, "");
    assert_true(a->hash != b->hash); /* the key covers every label */
    /* the same labels hash the same; undo drops the record */
    uint32_t r3 = vg_scrape_stage_add(&st, l, 3, 0, 0, 0);
    assert_true(vg_scrape_stage_rec(&st, r3)->hash == vg_scrape_stage_rec(&st, r1)->hash);
    vg_scrape_stage_undo(&st, r3);
    assert_int_equal(st.n, 2);
    assert_int_equal(st.buf.len, r3);
    vg_scrape_stage_reset(&st);
    assert_int_equal(st.n, 0);
    assert_int_equal(st.buf.len, 0);
    vg_scrape_stage_destroy(&st);
    vg_buf_free(&strs);
}

static void check_sorted_stable(const vg_stage_ref *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        assert_true(v[i - 1].hash <= v[i].hash);
        if (v[i - 1].hash == v[i].hash) assert_true(v[i - 1].rec < v[i].rec);
    }
}

/* Random hashes, hashes sharing their top 16 or 40 bits (one bucket), a
 * crowded bucket (qsort path), and all equal: sorted and stable. */
static void test_sort_prefix(void **state)
{
    vg_scrape_stage st;
    vg_scrape_stage_init(&st);
    enum { N = 3000 };
    uint64_t masks[] = {0, 0xffff000000000000ULL, 0xffffffffff000000ULL, ~0ULL};
    for (size_t m = 0; m < sizeof masks / sizeof *masks; m++) {
        vg_scrape_stage_reset(&st);
        for (size_t i = 0; i < N; i++) add_named(&st, "x", 0);
        uint64_t prefix = 0xabcd123456789abcULL & masks[m];
        for (size_t i = 0; i < N; i++) /* low bits from few values: many equal hashes */
            st.ref[i].hash = prefix | ((next_rand() % 97) * 0x0101010101ULL & ~masks[m]);
        if (masks[m] == 0)
            for (size_t i = 0; i < N; i++) st.ref[i].hash = next_rand();
        assert_int_equal(vg_scrape_sort_refs(&st, st.ref, N), VG_OK);
        check_sorted_stable(st.ref, N);
        vg_scrape_stage_reset(&st);
    }
    /* small sizes */
    for (size_t n = 0; n < 5; n++) {
        vg_scrape_stage_reset(&st);
        for (size_t i = 0; i < n; i++) add_named(&st, "y", 0);
        for (size_t i = 0; i < n; i++) st.ref[i].hash = (uint64_t)(n - i) << 60;
        assert_int_equal(vg_scrape_sort_refs(&st, st.ref, n), VG_OK);
        check_sorted_stable(st.ref, n);
    }
    vg_scrape_stage_destroy(&st);
}

/* Two different series with one hash are both kept; a true repeat is flagged. */
static void test_dedup_collision(void **state)
{
    vg_scrape_stage st;
    vg_scrape_stage_init(&st);
    uint32_t a = add_named(&st, "a", VG_STAGE_TRACK);
    set_hash(&st, a, 7);
    uint32_t b = add_named(&st, "b", VG_STAGE_TRACK); /* collides with a */
    set_hash(&st, b, 7);
    uint32_t a2 = add_named(&st, "a", VG_STAGE_TRACK); /* repeat of a */
    set_hash(&st, a2, 7);
    uint32_t c = add_named(&st, "c", VG_STAGE_TRACK);
    set_hash(&st, c, 7 | 1ULL << 63);
    vg_err_t rc = VG_EINTERNAL;
    assert_int_equal(vg_scrape_stage_dedup(&st, &rc), 1);
    assert_int_equal(rc, VG_OK);
    assert_int_equal(vg_scrape_stage_rec(&st, a)->flags & VG_STAGE_DUP, 0);
    assert_int_equal(vg_scrape_stage_rec(&st, b)->flags & VG_STAGE_DUP, 0);
    assert_int_equal(vg_scrape_stage_rec(&st, a2)->flags & VG_STAGE_DUP, VG_STAGE_DUP);
    assert_int_equal(vg_scrape_stage_rec(&st, c)->flags & VG_STAGE_DUP, 0);
    vg_scrape_stage_destroy(&st);
}

/* refs for hashes h[0..n) (sorted by the caller), tracked unless untracked[i]. */
static size_t make_refs(vg_stage_ref *v, const uint64_t *h, const int *untracked, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (vg_stage_ref){h[i], (uint32_t)i, untracked && untracked[i] ? 0 : VG_STAGE_TRACK};
    return n;
}

static uint8_t flags_of(const vg_scrape_series *s, uint64_t h)
{
    long i = vg_scrape_series_find(s, h);
    assert_true(i >= 0);
    return s->flags[i];
}

/* Members that differ only in their low bits; untracked series never go
 * stale; coverage decides whether the body is stored again. */
static void test_series_diff(void **state)
{
    const uint64_t P = 0x5a5a5a5a5a5a0000ULL;
    vg_scrape_series s = {0};
    vg_stage_ref cur[8];
    ZSTD_CCtx *zc = ZSTD_createCCtx();
    const char body[] = "whatever the body was\n";
    uint64_t h1[] = {P | 1, P | 2, P | 3, P | 4};
    int un1[] = {0, 0, 1, 0};
    int covered = -1;
    size_t nstale = 99;
    size_t n = make_refs(cur, h1, un1, 4);
    assert_int_equal(vg_scrape_series_diff(&s, cur, n, &covered, &nstale), 4);
    assert_int_equal(covered, 0);
    assert_int_equal(nstale, 0);
    assert_int_equal(vg_scrape_series_store(&s, cur, n, body, sizeof body - 1, 0, zc), VG_OK);
    assert_non_null(s.body);
    assert_int_equal(s.raw_len, sizeof body - 1);
    assert_int_equal(flags_of(&s, P | 3), VG_SERIES_LAST);
    assert_int_equal(flags_of(&s, P | 4), VG_SERIES_LAST | VG_SERIES_TRACK);
    assert_int_equal(vg_scrape_series_find(&s, P | 5), -1);
    assert_int_equal(vg_scrape_series_find(&s, P), -1);
    /* 2 (tracked) and 3 (untracked) vanish: only 2 is stale */
    uint64_t h2[] = {P | 1, P | 4};
    n = make_refs(cur, h2, NULL, 2);
    assert_int_equal(vg_scrape_series_diff(&s, cur, n, &covered, &nstale), 0);
    assert_int_equal(covered, 1);
    assert_int_equal(nstale, 1);
    assert_true(flags_of(&s, P | 2) & VG_SERIES_STALE);
    assert_false(flags_of(&s, P | 3) & VG_SERIES_STALE);
    vg_scrape_series_apply(&s);
    assert_int_equal(flags_of(&s, P | 2), 0);
    assert_int_equal(flags_of(&s, P | 1), VG_SERIES_LAST | VG_SERIES_TRACK);
    /* 2 returns (added, covered); 2 is not stale again afterwards */
    uint64_t h3[] = {P | 1, P | 2, P | 4};
    n = make_refs(cur, h3, NULL, 3);
    assert_int_equal(vg_scrape_series_diff(&s, cur, n, &covered, &nstale), 1);
    assert_int_equal(covered, 1);
    assert_int_equal(nstale, 0);
    vg_scrape_series_apply(&s);
    /* a hash with the same prefix but new low bits is not covered */
    uint64_t h4[] = {P | 1, P | 6};
    n = make_refs(cur, h4, NULL, 2);
    assert_int_equal(vg_scrape_series_diff(&s, cur, n, &covered, &nstale), 1);
    assert_int_equal(covered, 0);
    assert_int_equal(nstale, 2); /* 2 and 4 */
    /* a failed scrape: every tracked series of the last good one */
    vg_scrape_series_apply(&s);
    assert_int_equal(vg_scrape_series_stale_all(&s), 1); /* only 1 is left in the last scrape */
    vg_scrape_series_reset(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.body);
    /* only untracked series: nothing to recover, so no body is kept */
    int un5[] = {1, 1};
    n = make_refs(cur, h2, un5, 2);
    assert_int_equal(vg_scrape_series_store(&s, cur, n, body, sizeof body - 1, 0, zc), VG_OK);
    assert_null(s.body);
    assert_int_equal(s.n, 2);
    vg_scrape_series_reset(&s);
    ZSTD_freeCCtx(zc);
}

/* Repeats (DUP) and same-hash neighbours count once in the kept set. */
static void test_series_repeats(void **state)
{
    vg_scrape_series s = {0};
    vg_stage_ref cur[] = {
        {10, 0, VG_STAGE_TRACK},
        {10, 1, VG_STAGE_TRACK | VG_STAGE_DUP},
        {10, 2, VG_STAGE_TRACK}, /* a collision: same hash, other series */
        {11, 3, 0},
    };
    int covered;
    size_t nstale;
    assert_int_equal(vg_scrape_series_diff(&s, cur, 4, &covered, &nstale), 2);
    assert_int_equal(vg_scrape_series_store(&s, cur, 4, "x", 1, 0, NULL), VG_OK);
    assert_int_equal(s.n, 2);
    assert_null(s.body); /* no compressor given */
    vg_scrape_series_reset(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_record),    cmocka_unit_test(test_sort_prefix),
        cmocka_unit_test(test_dedup_collision), cmocka_unit_test(test_series_diff),
        cmocka_unit_test(test_series_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
