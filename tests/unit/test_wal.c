/*
 * test_wal.c - the TSDB write-ahead log: framing and replay, a series too
 * long to log (the rest of its batch still is), a torn tail, a
 * corrupt record in the middle, a garbage length, segment rollover and
 * truncation, many appenders sharing group fsyncs, and the store-level
 * round trip (vg_tsdb_open, append, vg_tsdb_sync, reopen). The tests damage
 * the segment files themselves, byte by byte.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
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

#include "tsdb/tsdb.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

static char dir[256];
static char waldir[300];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[700];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    if (d) closedir(d);
    rmdir(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-wal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(waldir, sizeof(waldir), "%s/wal", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(dir);
    return 0;
}

/* ---- a replay recorder ---- */

typedef struct rec {
    int nseries;
    char tenants[64][16];
    char names[64][64];
    uint64_t sum_handles;
    int nsamples;
    int64_t ts[20000];
    double v[20000];
} rec;

static vg_err_t on_series(void *ud, const char *tenant, const vg_label_t *l, size_t n,
                          uint64_t *handle)
{
    rec *r = ud;
    assert_true(n >= 1);
    if (r->nseries < 64) {
        snprintf(r->tenants[r->nseries], 16, "%s", tenant);
        snprintf(r->names[r->nseries], 64, "%s=%s", l[0].name, l[0].value);
    }
    *handle = (uint64_t)r->nseries++;
    return VG_OK;
}

static void on_sample(void *ud, uint64_t handle, int64_t ts, double v)
{
    rec *r = ud;
    (void)handle;
    if (r->nsamples < 20000) {
        r->ts[r->nsamples] = ts;
        r->v[r->nsamples] = v;
    }
    r->nsamples++;
}

static vg_wal_t *open_rec(rec *r, uint64_t segbytes, vg_wal_stats *st)
{
    vg_wal_replay_cb cb = {.on_series = on_series, .on_sample = on_sample, .ud = r};
    vg_wal_t *w = NULL;
    vg_error err = {0};
    memset(r, 0, sizeof(*r));
    assert_int_equal(vg_wal_open(waldir, segbytes, 1, &cb, NULL, st, &w, &err), VG_OK);
    return w;
}

/* One batch: series ref with one label, samples ts0..ts0+n-1 of value ts. */
static uint64_t write_batch(vg_wal_t *w, uint64_t ref, const char *tenant, int64_t ts0, int n)
{
    vg_wal_batch b;
    char val[32];
    snprintf(val, sizeof(val), "s%llu", (unsigned long long)ref);
    vg_label_t l[2] = {{"__name__", "up"}, {"job", val}};
    vg_wal_batch_init(&b);
    assert_int_equal(vg_wal_batch_series(&b, ref, tenant, l, 2), VG_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(vg_wal_batch_sample(&b, ref, ts0 + i, (double)(ts0 + i)), VG_OK);
    uint64_t pos = 0;
    assert_int_equal(vg_wal_write(w, &b, &pos, NULL), VG_OK);
    vg_wal_batch_free(&b);
    assert_true(pos > 0);
    return pos;
}

static void seg_file(uint32_t no, char *out, size_t n)
{
    snprintf(out, n, "%s/%08u", waldir, no);
}

static off_t file_size(const char *p)
{
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return sb.st_size;
}

/* ---- tests ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    vg_wal_t *w = open_rec(&r, 0, &st);
    assert_int_equal(st.segments, 0);
    uint64_t p1 = write_batch(w, 1, "acme", 1000, 3);
    uint64_t p2 = write_batch(w, (1ull << 32) | 1, "beta", 2000, 2);
    assert_true(p2 > p1);
    write_batch(w, 1, "acme", 1003, 1); /* already declared in this segment */
    assert_int_equal(vg_wal_sync(w, p2, NULL), VG_OK);
    assert_int_equal(vg_wal_sync(w, VG_WAL_SYNC_ALL, NULL), VG_OK);
    vg_wal_close(w);

    w = open_rec(&r, 0, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(r.nseries, 2); /* the third batch did not re-declare */
    assert_string_equal(r.tenants[0], "acme");
    assert_string_equal(r.tenants[1], "beta");
    assert_string_equal(r.names[0], "__name__=up");
    assert_int_equal(r.nsamples, 6);
    assert_int_equal(r.ts[0], 1000);
    assert_true(r.v[4] == 2001.0);
    assert_int_equal(r.ts[5], 1003);
    assert_int_equal(vg_wal_num_segments(w), 2); /* replayed + the new current one */
    vg_wal_close(w);
}

/* A series whose labels the record format cannot hold (a name over 65535
 * bytes): the batch's other series are still logged and replay; its
 * samples replay as undeclared. */
static void test_label_too_long(void **state)
{
    (void)state;
    static rec r;
    static char name[70000];
    vg_wal_stats st;
    vg_wal_t *w = open_rec(&r, 0, &st);
    memset(name, 'a', sizeof(name) - 1);
    vg_label_t ok[1] = {{"__name__", "up"}}, bad[1] = {{name, "x"}};
    vg_wal_batch b;
    vg_wal_batch_init(&b);
    assert_int_equal(vg_wal_batch_series(&b, 1, "t", ok, 1), VG_OK);
    assert_int_equal(vg_wal_batch_sample(&b, 1, 1000, 1.0), VG_OK);
    assert_int_equal(vg_wal_batch_series(&b, 2, "t", bad, 1), VG_OK);
    assert_int_equal(vg_wal_batch_sample(&b, 2, 1000, 2.0), VG_OK);
    uint64_t pos = 0;
    vg_error e = {0};
    assert_int_equal(vg_wal_write(w, &b, &pos, &e), VG_ETOOLARGE);
    assert_non_null(strstr(e.msg, "series 2"));
    assert_true(pos > 0);
    vg_wal_batch_free(&b);
    assert_int_equal(vg_wal_sync(w, pos, NULL), VG_OK);
    vg_wal_close(w);

    w = open_rec(&r, 0, &st);
    assert_int_equal(r.nseries, 1);
    assert_int_equal(r.nsamples, 1);
    assert_true(r.v[0] == 1.0);
    assert_int_equal(st.unknown_refs, 1);
    assert_int_equal(st.corrupt_records, 0);
    vg_wal_close(w);
}

static void test_torn_tail(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    char p[400];
    vg_wal_t *w = open_rec(&r, 0, &st);
    write_batch(w, 1, "t", 100, 10);
    write_batch(w, 1, "t", 110, 10);
    vg_wal_close(w);
    seg_file(1, p, sizeof(p));
    off_t full = file_size(p);
    assert_int_equal(truncate(p, full - 5), 0); /* the last record is cut short */

    w = open_rec(&r, 0, &st);
    assert_int_equal(st.corrupt_records, 0);
    assert_true(st.torn_bytes > 0);
    assert_int_equal(r.nsamples, 10); /* the first batch only */
    assert_int_equal(r.ts[9], 109);
    assert_true(file_size(p) < full - 5); /* the torn record is gone from the file */
    vg_wal_close(w);
}

static void flip_byte(const char *p, off_t at)
{
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void test_corrupt_middle(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    char p[400];
    vg_wal_t *w = open_rec(&r, 0, &st);
    write_batch(w, 1, "t", 100, 10); /* series + samples */
    seg_file(1, p, sizeof(p));
    off_t mid_start = file_size(p);
    write_batch(w, 1, "t", 110, 10); /* samples only: one record */
    off_t mid_end = file_size(p);
    write_batch(w, 1, "t", 120, 10);
    vg_wal_close(w);
    flip_byte(p, (mid_start + mid_end) / 2); /* inside the second samples payload */

    w = open_rec(&r, 0, &st);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(r.nsamples, 20);
    assert_int_equal(r.ts[9], 109);
    assert_int_equal(r.ts[10], 120);
    vg_wal_close(w);
}

static void test_garbage_length(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    char p[400];
    vg_wal_t *w = open_rec(&r, 0, &st);
    write_batch(w, 1, "t", 100, 10);
    seg_file(1, p, sizeof(p));
    off_t second = file_size(p);
    write_batch(w, 1, "t", 110, 10);
    write_batch(w, 1, "t", 120, 10);
    vg_wal_close(w);
    int fd = open(p, O_RDWR);
    unsigned char ff[4] = {0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(pwrite(fd, ff, 4, second), 4);
    close(fd);

    w = open_rec(&r, 0, &st);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(r.nsamples, 10); /* the rest of the segment is skipped */
    vg_wal_close(w);
}

static void test_rollover_truncate(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    vg_wal_t *w = open_rec(&r, 4096, &st);
    for (int i = 0; i < 100; i++) write_batch(w, (uint64_t)(i % 3), "t", i * 10, 10);
    size_t nseg = vg_wal_num_segments(w);
    assert_true(nseg > 3);
    vg_wal_close(w);

    w = open_rec(&r, 4096, &st);
    assert_int_equal(st.segments, nseg);
    assert_int_equal(st.unknown_refs, 0); /* the series file declares them for every segment */
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(r.nsamples, 1000);
    assert_int_equal(r.nseries, 3); /* declared once in the epoch, not per segment */
    /* Nothing is older than 0: nothing goes. Everything is older than 2000: all closed go. */
    assert_int_equal(vg_wal_truncate(w, 0), 0);
    size_t gone = vg_wal_truncate(w, 500); /* a prefix of segments */
    assert_true(gone > 0 && gone < nseg);
    assert_int_equal(vg_wal_num_segments(w), nseg + 1 - gone);
    vg_wal_close(w);

    w = open_rec(&r, 4096, &st);
    assert_int_equal(st.unknown_refs, 0);
    assert_true(r.nsamples < 1000 && r.nsamples > 0);
    for (int i = 0; i < r.nsamples && i < 20000; i++) assert_true(r.ts[i] >= 400);
    assert_int_equal(vg_wal_truncate(w, 1000000), st.segments);
    assert_int_equal(vg_wal_num_segments(w), 1);
    vg_wal_close(w);
}

/* Series files: one per epoch, declared once there; a truncate that reaches
 * the current epoch starts a new one (live series declared again), and an
 * epoch's file goes with its last segment. */
static void test_epochs(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    char p[400];
    vg_wal_t *w = open_rec(&r, 4096, &st);
    for (int i = 0; i < 100; i++) write_batch(w, (uint64_t)(i % 3), "t", i * 10, 10);
    size_t nseg = vg_wal_num_segments(w);
    snprintf(p, sizeof(p), "%s/series.00000001", waldir);
    assert_true(file_size(p) < 400); /* three series records, whatever the segment count */
    assert_true(nseg > 3);
    assert_true(vg_wal_truncate(w, 500) > 0); /* a prefix goes, and epoch nseg + 1 starts */
    write_batch(w, 7, "t", 2000, 5);          /* the new epoch declares what it uses */
    snprintf(p, sizeof(p), "%s/series.%08zu", waldir, nseg + 1);
    assert_true(file_size(p) > 8);
    vg_wal_close(w);

    w = open_rec(&r, 4096, &st);
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(st.corrupt_records, 0);
    assert_true(r.nsamples > 5 && r.nsamples < 1005);
    assert_int_equal(r.ts[r.nsamples - 1], 2004);
    assert_int_equal(vg_wal_truncate(w, 1000000), st.segments);
    snprintf(p, sizeof(p), "%s/series.00000001", waldir);
    assert_int_equal(access(p, F_OK), -1); /* no segment of epoch 1 is left */
    vg_wal_close(w);
}

/* ---- concurrent appenders ---- */

#define THREADS 6
#define BATCHES 150

typedef struct worker {
    vg_wal_t *w;
    int id, failures;
} worker;

static void *worker_main(void *arg)
{
    worker *k = arg;
    for (int i = 0; i < BATCHES; i++) {
        vg_wal_batch b;
        char job[16];
        snprintf(job, sizeof(job), "w%d", k->id);
        vg_label_t l[2] = {{"__name__", "x"}, {"job", job}};
        vg_wal_batch_init(&b);
        uint64_t ref = (uint64_t)k->id, pos = 0;
        if (vg_wal_batch_series(&b, ref, "t", l, 2) || vg_wal_batch_sample(&b, ref, i, 1.0) ||
            vg_wal_batch_sample(&b, ref, i, 2.0) || vg_wal_write(k->w, &b, &pos, NULL) ||
            vg_wal_sync(k->w, pos, NULL))
            k->failures++;
        vg_wal_batch_free(&b);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    (void)state;
    static rec r;
    vg_wal_stats st;
    vg_metrics_t *m = vg_metrics_new();
    vg_wal_replay_cb cb = {.on_series = on_series, .on_sample = on_sample, .ud = &r};
    vg_wal_t *w = NULL;
    assert_int_equal(vg_wal_open(waldir, 64 << 10, 2, &cb, m, &st, &w, NULL), VG_OK);
    pthread_t t[THREADS];
    worker k[THREADS];
    for (int i = 0; i < THREADS; i++) {
        k[i] = (worker){.w = w, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &k[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(k[i].failures, 0);
    }
    vg_metric_t *fs = vg_metrics_counter(m, "vigil_tsdb_wal_fsyncs_total", "", NULL);
    assert_true(vg_metric_value(fs) >= 1);
    assert_true(vg_metric_value(fs) <= THREADS * BATCHES + 64); /* never more than one per sync */
    vg_wal_close(w);

    memset(&r, 0, sizeof(r));
    assert_int_equal(vg_wal_open(waldir, 64 << 10, 2, &cb, NULL, &st, &w, NULL), VG_OK);
    assert_int_equal(r.nsamples, THREADS * BATCHES * 2);
    assert_int_equal(st.unknown_refs, 0);
    assert_int_equal(st.corrupt_records, 0);
    vg_wal_close(w);
    vg_metrics_free(m);
}

/* ---- the store on top ---- */

static size_t count_samples(vg_tsdb_t *db, const char *tenant)
{
    vg_seriesset_t *ss = NULL;
    size_t n = 0;
    int64_t ts;
    double v;
    assert_int_equal(vg_tsdb_select(db, tenant, NULL, 0, INT64_MIN, INT64_MAX, &ss, NULL), VG_OK);
    while (vg_seriesset_next(ss))
        while (vg_seriesset_sample_next(ss, &ts, &v)) n++;
    vg_seriesset_free(ss);
    return n;
}

static void test_tsdb_reopen(void **state)
{
    (void)state;
    vg_tsdb_opts o = {.dir = dir, .wal_sync_ms = 1};
    vg_tsdb_t *db = NULL;
    vg_error err = {0};
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &err), VG_OK);
    vg_label_t l[2] = {{"__name__", "up"}, {"job", "a"}};
    vg_append_stats st = {0};
    for (int i = 0; i < 50; i++)
        assert_int_equal(vg_tsdb_append(db, "acme", l, 2, 1000 + i, i, &st, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "acme", l, 2, 1000, 0, &st, NULL), VG_OK); /* dup */
    assert_int_equal(vg_tsdb_append(db, "other", l, 2, 5, 1, &st, NULL), VG_OK);
    assert_true(st.wal_pos > 0);
    assert_int_equal(vg_tsdb_sync(db, st.wal_pos, &err), VG_OK);
    assert_non_null(vg_tsdb_wal(db));
    vg_tsdb_free(db); /* a clean close; test_wal_crash.py covers kill -9 */

    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &err), VG_OK);
    assert_int_equal(count_samples(db, "acme"), 50);
    assert_int_equal(count_samples(db, "other"), 1);
    vg_tsdb_free(db);

    /* Memory only: no WAL, sync is immediate. */
    vg_tsdb_opts mem = {0};
    assert_int_equal(vg_tsdb_open(&mem, NULL, &db, &err), VG_OK);
    assert_null(vg_tsdb_wal(db));
    st.wal_pos = 0;
    assert_int_equal(vg_tsdb_append(db, "acme", l, 2, 1, 1, &st, NULL), VG_OK);
    assert_int_equal(st.wal_pos, 0);
    assert_int_equal(vg_tsdb_sync(db, VG_TSDB_SYNC_ALL, NULL), VG_OK);
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollover_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsdb_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
