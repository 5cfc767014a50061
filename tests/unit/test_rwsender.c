/*
 * test_rwsender.c - the remote_write sender's pure parts: the WriteRequest it
 * encodes, decoded back with the receiver's decoder (vg_rw_decode); the
 * backoff; and the WAL reader (walwatch) over a WAL written by tsdb/wal.c:
 * series resolution, write_relabel_configs (rewrite and drop), resuming from a
 * cursor mid-record, and moving on to the next segment; series declared in
 * an earlier segment of the epoch (its series file), also for a reader that
 * starts at a later segment, and a series declared after the reader last
 * looked at the series file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remotewrite/receiver.h"
#include "remotewrite/sender.h"
#include "remotewrite/walwatch.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"

static char dir[64];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vigil-rwsend-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- encoding ---- */

static void test_encode_roundtrip(void **state)
{
    (void)state;
    vg_label_t a[] = {{"__name__", "up"}, {"job", "a"}}, b[] = {{"__name__", "x"}, {"i", "1"}};
    vg_rws_sample s[] = {{a, 2, 1000, 1.0}, {a, 2, 2000, 2.0}, {b, 2, 1500, -3.5}};
    vg_buf out;
    vg_error err = {0};
    vg_buf_init(&out, 0);
    assert_int_equal(vg_rws_encode(s, 3, &out, &err), VG_OK);
    vg_arena_t *ar = vg_arena_new(0);
    Prometheus__WriteRequest *wr = NULL;
    assert_int_equal(vg_rw_decode((const uint8_t *)out.data, out.len, 1u << 20, ar, &wr, &err),
                     VG_OK);
    assert_int_equal(wr->n_timeseries, 2);
    assert_int_equal(wr->timeseries[0]->n_labels, 2);
    assert_string_equal(wr->timeseries[0]->labels[0]->name, "__name__");
    assert_string_equal(wr->timeseries[0]->labels[1]->value, "a");
    assert_int_equal(wr->timeseries[0]->n_samples, 2);
    assert_int_equal(wr->timeseries[0]->samples[1]->timestamp, 2000);
    assert_true(wr->timeseries[0]->samples[1]->value == 2.0);
    assert_string_equal(wr->timeseries[1]->labels[0]->value, "x");
    assert_int_equal(wr->timeseries[1]->n_samples, 1);
    assert_true(wr->timeseries[1]->samples[0]->value == -3.5);
    vg_arena_free(ar);
    vg_buf_free(&out);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(vg_rws_backoff_ms(30, 5000, 0), 30);
    assert_int_equal(vg_rws_backoff_ms(30, 5000, 1), 60);
    assert_int_equal(vg_rws_backoff_ms(30, 5000, 3), 240);
    assert_int_equal(vg_rws_backoff_ms(30, 5000, 8), 5000);
    assert_int_equal(vg_rws_backoff_ms(30, 5000, 1000), 5000);
}

static void test_sni_url(void **state)
{
    (void)state;
    char *u, *ct, *h;
    assert_int_equal(
        vg_rws_sni_url("https://10.0.0.1:8443/api/v1/write", "mimir.example", &u, &ct, &h), VG_OK);
    assert_string_equal(u, "https://mimir.example:8443/api/v1/write");
    assert_string_equal(ct, "mimir.example:8443:10.0.0.1:8443");
    assert_string_equal(h, "10.0.0.1:8443");
    vg_free(u), vg_free(ct), vg_free(h);
    assert_int_equal(vg_rws_sni_url("https://[::1]/w", "sn", &u, &ct, &h), VG_OK);
    assert_string_equal(u, "https://sn:443/w");
    assert_string_equal(ct, "sn:443:[::1]:443");
    assert_string_equal(h, "[::1]");
    vg_free(u), vg_free(ct), vg_free(h);
    assert_int_equal(vg_rws_sni_url("nourl", "sn", &u, &ct, &h), VG_EINVAL);
}

/* ---- the WAL reader ---- */

static void write_series(vg_wal_t *w, uint64_t ref, const char *tenant, const char *job,
                         int64_t ts0, int n)
{
    vg_wal_batch b;
    vg_label_t l[2] = {{"__name__", "up"}, {"job", job}};
    uint64_t pos = 0;
    vg_wal_batch_init(&b);
    assert_int_equal(vg_wal_batch_series(&b, ref, tenant, l, 2), VG_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(vg_wal_batch_sample(&b, ref, ts0 + i, (double)i), VG_OK);
    assert_int_equal(vg_wal_write(w, &b, &pos, NULL), VG_OK);
    vg_wal_batch_free(&b);
}

static vg_relabel_t *rules(void)
{
    vg_relabel_rule_t r[2] = {{0}};
    const char *src[] = {"job"};
    r[0].source_labels = src;
    r[0].nsource_labels = 1;
    r[0].regex = "drop-me";
    r[0].action = "drop";
    r[1].target_label = "via";
    r[1].replacement = "vigil";
    vg_relabel_t *rl = NULL;
    assert_int_equal(vg_relabel_new(r, 2, &rl, NULL, NULL), VG_OK);
    return rl;
}

static void test_walwatch(void **state)
{
    (void)state;
    char wd[128];
    vg_wal_t *w = NULL;
    snprintf(wd, sizeof wd, "%s/wal", dir);
    assert_int_equal(vg_wal_open(wd, 0, 1, NULL, NULL, NULL, &w, NULL), VG_OK);
    write_series(w, 1, "default", "a", 1000, 10);
    write_series(w, 2, "acme", "drop-me", 1000, 5);
    write_series(w, 3, "acme", "b", 2000, 4);
    assert_int_equal(vg_wal_sync(w, VG_WAL_SYNC_ALL, NULL), VG_OK);

    vg_relabel_t *rl = rules();
    vg_walwatch_t *ww = NULL;
    vg_ww_sample out[32];
    vg_ww_cursor pos, mid;
    int end = 0;
    uint64_t lost = 0;
    assert_int_equal(vg_walwatch_new(wd, NULL, rl, &ww, NULL), VG_OK);
    /* 4 of series 1, then stop: the cursor points inside its record. */
    assert_int_equal(vg_walwatch_read(ww, out, 4, &mid, &end, &lost), 4);
    assert_int_equal(mid.idx, 4);
    assert_int_equal(vg_walwatch_read(ww, out, 32, &pos, &end, &lost), 6 + 4);
    assert_int_equal(lost, 5); /* series 2 dropped by relabeling */
    assert_int_equal(out[0].ts, 1004);
    assert_string_equal(out[0].series->tenant, "default");
    assert_string_equal(out[6].series->tenant, "acme");
    assert_int_equal(out[6].series->n, 3);
    assert_string_equal(out[6].series->labels[2].name, "via");
    assert_int_equal(vg_walwatch_read(ww, out, 32, &pos, &end, &lost), 0);
    assert_int_equal(end, 0); /* no newer segment: keep tailing */
    vg_walwatch_free(ww);

    /* Resume from mid: the same 6 + 4 samples again, series resolved. */
    lost = 0;
    assert_int_equal(vg_walwatch_new(wd, &mid, rl, &ww, NULL), VG_OK);
    assert_int_equal(vg_walwatch_read(ww, out, 32, &pos, &end, &lost), 10);
    assert_int_equal(out[0].ts, 1004);
    assert_string_equal(out[0].series->labels[1].value, "a");

    /* A new segment after a reopen: the reader finishes the old one, then moves on. */
    vg_wal_close(w);
    assert_int_equal(vg_wal_open(wd, 0, 1, NULL, NULL, NULL, &w, NULL), VG_OK);
    write_series(w, 7, "default", "c", 5000, 3);
    assert_int_equal(vg_wal_sync(w, VG_WAL_SYNC_ALL, NULL), VG_OK);
    assert_int_equal(vg_walwatch_read(ww, out, 32, &pos, &end, &lost), 0);
    assert_int_equal(end, 1);
    assert_int_equal(vg_walwatch_read(ww, out, 32, &pos, &end, &lost), 3);
    assert_int_equal(out[2].ts, 5002);
    assert_string_equal(out[2].series->labels[1].value, "c");
    assert_true(pos.seg > mid.seg);
    vg_walwatch_free(ww);
    vg_relabel_free(rl);
    vg_wal_close(w);
}

/* 1 MiB segments filled by one series, so a later segment's samples use a
 * series only the epoch's series file declares. */
static void test_walwatch_epoch(void **state)
{
    (void)state;
    char wd[128];
    vg_wal_t *w = NULL;
    snprintf(wd, sizeof wd, "%s/wal", dir);
    assert_int_equal(vg_wal_open(wd, 1 << 20, 1, NULL, NULL, NULL, &w, NULL), VG_OK);
    for (int i = 0; i < 12; i++) write_series(w, 1, "default", "a", 1000 + i * 8000, 8000);
    assert_true(vg_wal_num_segments(w) >= 3);
    assert_int_equal(vg_wal_sync(w, VG_WAL_SYNC_ALL, NULL), VG_OK);

    vg_walwatch_t *ww = NULL;
    static vg_ww_sample out[100000];
    vg_ww_cursor pos, start = {3, 0, 0};
    int end = 0;
    uint64_t lost = 0;
    size_t got = 0;
    assert_int_equal(vg_walwatch_new(wd, &start, NULL, &ww, NULL), VG_OK);
    got = vg_walwatch_read(ww, out, 100000, &pos, &end, &lost);
    assert_true(got > 0);
    assert_int_equal(lost, 0);
    assert_string_equal(out[0].series->labels[1].value, "a");
    /* Read to the end, then a new series arrives: found in the series file's tail. */
    while (vg_walwatch_read(ww, out, 100000, &pos, &end, &lost) || end)
        ;
    write_series(w, 9, "default", "late", 500000, 2);
    assert_int_equal(vg_wal_sync(w, VG_WAL_SYNC_ALL, NULL), VG_OK);
    assert_int_equal(vg_walwatch_read(ww, out, 100000, &pos, &end, &lost), 2);
    assert_string_equal(out[1].series->labels[1].value, "late");
    assert_int_equal(lost, 0);
    vg_walwatch_free(ww);
    vg_wal_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_sni_url),
        cmocka_unit_test_setup_teardown(test_walwatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_walwatch_epoch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
