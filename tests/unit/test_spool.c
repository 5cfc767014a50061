/*
 * test_spool.c - the disk spool: FIFO order, restart, segment rolling, the
 * full policies, and recovery from files that a crash or a bad disk left
 * torn or corrupt (the tests damage the files themselves, byte by byte).
 */
#include <dirent.h>
#include <fcntl.h>
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

#include "vigil/alloc.h"
#include "vigil/log.h"
#include "vigil/spool.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/vigil-spool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    return 0;
}

static vg_spool_opts opts(uint64_t max, uint64_t seg)
{
    vg_spool_opts o = {.dir = dir, .kind = "metrics", .max_bytes = max, .segment_bytes = seg};
    o.sync_interval_ms = 0;
    return o;
}

static vg_spool_t *open_ok(const vg_spool_opts *o, vg_metrics_t *m)
{
    vg_spool_t *s = NULL;
    vg_error e = {0};
    vg_err_t rc = vg_spool_open(o, m, &s, &e);
    if (rc) fprintf(stderr, "open: %s\n", e.msg);
    assert_int_equal(rc, VG_OK);
    return s;
}

/* Append a record whose data is n bytes of (seq & 0xff), tenant "t<seq>". */
static void put(vg_spool_t *s, uint64_t seq, size_t n)
{
    uint8_t *d = vg_malloc(n ? n : 1);
    char tenant[32];
    memset(d, (int)(seq & 0xff), n);
    snprintf(tenant, sizeof(tenant), "t%llu", (unsigned long long)seq);
    vg_spool_rec r = {.kind = 1, .seq = seq, .tenant = tenant, .data = d, .len = n};
    vg_error e = {0};
    vg_err_t rc = vg_spool_append(s, &r, &e);
    if (rc) fprintf(stderr, "append: %s\n", e.msg);
    assert_int_equal(rc, VG_OK);
    vg_free(d);
}

/* Peek, check the record is seq with n bytes, ack it. */
static uint64_t take(vg_spool_t *s, uint64_t seq, size_t n)
{
    vg_spool_rec r;
    char tenant[32];
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_OK);
    assert_int_equal(r.seq, seq);
    assert_int_equal(r.kind, 1);
    assert_int_equal(r.len, n);
    snprintf(tenant, sizeof(tenant), "t%llu", (unsigned long long)seq);
    assert_string_equal(r.tenant, tenant);
    for (size_t i = 0; i < n; i++) assert_int_equal(r.data[i], seq & 0xff);
    assert_int_equal(vg_spool_ack(s, r.id, NULL), VG_OK);
    return r.id;
}

static void seg_file(int idx, char *out, size_t n)
{
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort), seen = 0;
    out[0] = '\0';
    for (int i = 0; i < k; i++) {
        if (strstr(list[i]->d_name, ".seg") && seen++ == idx)
            snprintf(out, n, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
    }
    free(list);
    assert_true(out[0]);
}

static int count_segs(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += strstr(e->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static off_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

static void patch(const char *p, off_t off, const void *bytes, size_t n)
{
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

/* Size of a frame holding n data bytes and tenant "t<seq>" (seq < 10). */
#define FRAME(n) (12 + 20 + 2 + (n))

/* A closed spool holding records 1..n of size bytes each; *path = its segment. */
static void written(int n, size_t size, char *path, size_t plen)
{
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    for (int i = 1; i <= n; i++) put(s, (uint64_t)i, size);
    vg_spool_free(s);
    seg_file(0, path, plen);
}

static vg_spool_stats stats_of(const vg_spool_t *s)
{
    vg_spool_stats st;
    vg_spool_get_stats(s, &st);
    return st;
}

static void test_fifo_roundtrip(void **state)
{
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    vg_spool_rec r;
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_EAGAIN);
    for (int i = 1; i <= 5; i++) put(s, (uint64_t)i, (size_t)i * 100);
    assert_int_equal(vg_spool_records(s), 5);
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_OK);
    uint64_t first = r.id;
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_OK); /* same record again */
    assert_int_equal(r.id, first);
    assert_int_equal(vg_spool_ack(s, first + 1, NULL), VG_EINVAL); /* not peeked */
    for (int i = 1; i <= 5; i++) take(s, (uint64_t)i, (size_t)i * 100);
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_EAGAIN);
    assert_int_equal(vg_spool_records(s), 0);
    assert_int_equal(vg_spool_ack(s, first, NULL), VG_OK); /* behind the cursor: no-op */
    vg_spool_free(s);
}

static void test_restart_resumes_at_cursor(void **state)
{
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    for (int i = 1; i <= 5; i++) put(s, (uint64_t)i, 10);
    take(s, 1, 10);
    take(s, 2, 10);
    vg_spool_free(s);
    vg_metrics_t *m = vg_metrics_new();
    s = open_ok(&o, m);
    assert_int_equal(vg_spool_records(s), 3);
    assert_true(vg_metric_value(
                    vg_metrics_gauge(m, "vigil_agent_spool_records", "", "kind=\"metrics\"")) == 3);
    take(s, 3, 10);
    put(s, 6, 10); /* ids keep increasing after a restart */
    take(s, 4, 10);
    take(s, 5, 10);
    take(s, 6, 10);
    vg_spool_free(s);
    s = open_ok(&o, NULL);
    assert_int_equal(vg_spool_records(s), 0);
    vg_spool_free(s);
    vg_metrics_free(m);
}

static void test_segments_roll_and_are_deleted(void **state)
{
    vg_spool_opts o = opts(1 << 20, 4096);
    vg_spool_t *s = open_ok(&o, NULL);
    for (int i = 1; i <= 20; i++) put(s, (uint64_t)i, 1000);
    assert_true(count_segs() >= 5);
    vg_spool_stats st;
    vg_spool_get_stats(s, &st);
    assert_int_equal(st.segments, (uint64_t)count_segs());
    assert_int_equal(st.bytes, 20 * FRAME(1000) + 11); /* tenants t10..t20 are 3 bytes */
    for (int i = 1; i <= 20; i++) take(s, (uint64_t)i, 1000);
    assert_int_equal(count_segs(), 1); /* consumed segments are gone; the tail stays */
    vg_spool_free(s);
}

static void test_full_drops_oldest(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_spool_opts o = opts(16384, 4096);
    vg_spool_t *s = open_ok(&o, m);
    for (int i = 1; i <= 60; i++) put(s, (uint64_t)i, 1000);
    vg_spool_stats st;
    vg_spool_get_stats(s, &st);
    assert_true(st.bytes <= 16384);
    assert_true(st.dropped > 0);
    assert_int_equal(st.records + st.dropped, 60);
    assert_true(vg_metric_value(vg_metrics_counter(m, "vigil_agent_spool_dropped_total", "",
                                                   "kind=\"metrics\",reason=\"full\"")) ==
                (double)st.dropped);
    /* what is left is the newest records, still in order */
    for (uint64_t q = st.dropped + 1; q <= 60; q++) take(s, q, 1000);
    vg_spool_free(s);
    vg_metrics_free(m);
}

static void test_full_blocks(void **state)
{
    vg_spool_opts o = opts(16384, 4096);
    o.full = VG_SPOOL_BLOCK;
    vg_spool_t *s = open_ok(&o, NULL);
    uint8_t d[1000] = {0};
    vg_spool_rec r = {.seq = 1, .data = d, .len = sizeof(d)};
    int n = 0;
    vg_err_t rc;
    while ((rc = vg_spool_append(s, &r, NULL)) == VG_OK) n++;
    assert_int_equal(rc, VG_ELIMIT);
    assert_true(n >= 10);
    vg_spool_stats st;
    vg_spool_get_stats(s, &st);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.records, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(vg_spool_peek(s, &r, NULL), VG_OK);
        assert_int_equal(vg_spool_ack(s, r.id, NULL), VG_OK);
    }
    r.data = d;
    r.len = sizeof(d);
    assert_int_equal(vg_spool_append(s, &r, NULL), VG_OK); /* room again */
    vg_spool_free(s);
}

static void test_torn_tail_truncated(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_spool_opts o = opts(0, 0);
    char p[600];
    written(3, 500, p, sizeof(p));
    assert_int_equal(file_size(p), 3 * FRAME(500));
    assert_int_equal(truncate(p, 2 * FRAME(500) + 100), 0); /* the 3rd record cut short */
    vg_spool_t *s = open_ok(&o, m);
    vg_spool_stats st = stats_of(s);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.torn, 1);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(file_size(p), 2 * FRAME(500));
    assert_true(vg_metric_value(vg_metrics_counter(m, "vigil_agent_spool_torn_tails_total", "",
                                                   "kind=\"metrics\"")) == 1);
    put(s, 4, 500); /* appends land right after the last good record */
    vg_spool_free(s);
    s = open_ok(&o, NULL);
    take(s, 1, 500);
    take(s, 2, 500);
    take(s, 4, 500);
    vg_spool_free(s);
    vg_metrics_free(m);
}

static void test_torn_header_truncated(void **state)
{
    vg_spool_opts o = opts(0, 0);
    char p[600];
    written(1, 50, p, sizeof(p));
    int fd = open(p, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "VSPL\x01", 5), 5); /* 5 bytes of a next header */
    close(fd);
    vg_spool_t *s = open_ok(&o, NULL);
    assert_int_equal(file_size(p), FRAME(50));
    take(s, 1, 50);
    vg_spool_free(s);
}

static void test_zero_tail_truncated(void **state)
{
    vg_spool_opts o = opts(0, 0);
    char p[600];
    written(1, 50, p, sizeof(p));
    uint8_t zeros[4096] = {0};
    patch(p, FRAME(50), zeros, sizeof(zeros)); /* a power cut left zeroed blocks */
    vg_spool_t *s = open_ok(&o, NULL);
    vg_spool_stats st = stats_of(s);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(file_size(p), FRAME(50));
    take(s, 1, 50);
    vg_spool_free(s);
}

static void test_corrupt_payload_skipped(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_spool_opts o = opts(0, 0);
    char p[600];
    written(3, 300, p, sizeof(p));
    patch(p, FRAME(300) + 200, "\xff", 1); /* one flipped byte in record 2 */
    vg_spool_t *s = open_ok(&o, m);
    vg_spool_stats st = stats_of(s);
    assert_int_equal(st.corrupt, 1);
    assert_int_equal(st.records, 2);
    assert_true(vg_metric_value(vg_metrics_counter(m, "vigil_agent_spool_corrupt_records_total", "",
                                                   "kind=\"metrics\"")) == 1);
    take(s, 1, 300);
    take(s, 3, 300); /* record 2 is skipped, the queue is not stuck */
    vg_spool_rec r;
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_EAGAIN);
    vg_spool_get_stats(s, &st);
    assert_int_equal(st.corrupt, 1); /* the reader does not count it twice */
    vg_spool_free(s);
    vg_metrics_free(m);
}

static void test_corrupt_length_resyncs(void **state)
{
    vg_spool_opts o = opts(0, 0);
    char p[600];
    written(3, 300, p, sizeof(p));
    patch(p, FRAME(300) + 4, "\xff\xff\xff\x00", 4); /* record 2 claims 16 MiB */
    vg_spool_t *s = open_ok(&o, NULL);
    take(s, 1, 300);
    take(s, 3, 300);
    vg_spool_free(s);
}

static void test_corruption_found_while_reading(void **state)
{
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    for (int i = 1; i <= 3; i++) put(s, (uint64_t)i, 300);
    char p[600];
    seg_file(0, p, sizeof(p));
    patch(p, 40, "\x00\x01", 2); /* damaged under a running spool */
    take(s, 2, 300);
    take(s, 3, 300);
    vg_spool_stats st;
    vg_spool_get_stats(s, &st);
    assert_int_equal(st.corrupt, 1);
    vg_spool_free(s);
}

static void test_garbage_segment(void **state)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%020d.seg", dir, 7);
    int fd = open(p, O_WRONLY | O_CREAT, 0640);
    uint8_t junk[10000];
    for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 2654435761u >> 13);
    memcpy(junk + 100, "VSPL", 4); /* a false magic does not fool it */
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    snprintf(p, sizeof(p), "%s/not-a-segment.seg", dir);
    close(open(p, O_WRONLY | O_CREAT, 0640)); /* ignored */
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    vg_spool_rec r;
    assert_int_equal(vg_spool_records(s), 0);
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_EAGAIN);
    put(s, 1, 10);
    take(s, 1, 10);
    vg_spool_free(s);
    unlink(p);
}

static void test_bad_cursor_replays_all(void **state)
{
    vg_spool_opts o = opts(0, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    for (int i = 1; i <= 3; i++) put(s, (uint64_t)i, 10);
    take(s, 1, 10);
    vg_spool_free(s);
    char p[600];
    snprintf(p, sizeof(p), "%s/cursor", dir);
    patch(p, 9, "\x55", 1);
    s = open_ok(&o, NULL); /* at least once: a bad cursor means duplicates, not loss */
    take(s, 1, 10);
    take(s, 2, 10);
    vg_spool_free(s);
}

static void test_sync_policies(void **state)
{
    vg_spool_opts o = opts(0, 0);
    o.sync_interval_ms = 50;
    vg_spool_t *s = open_ok(&o, NULL);
    put(s, 1, 10);
    assert_int_equal(vg_spool_tick(s, 0, NULL), VG_OK); /* not due */
    take(s, 1, 10);
    assert_int_equal(vg_spool_tick(s, INT64_MAX / 2, NULL), VG_OK);
    assert_int_equal(vg_spool_sync(s, NULL), VG_OK);
    put(s, 2, 10);
    vg_spool_free(s); /* flushes the cursor */
    o.sync_interval_ms = -1;
    s = open_ok(&o, NULL);
    assert_int_equal(vg_spool_records(s), 1);
    take(s, 2, 10);
    vg_spool_free(s);
    o.sync_interval_ms = 0;
    s = open_ok(&o, NULL);
    assert_int_equal(vg_spool_records(s), 0);
    vg_spool_free(s);
}

static void test_limits_and_args(void **state)
{
    vg_spool_opts o = opts(1 << 20, 0);
    vg_spool_t *s = open_ok(&o, NULL);
    static uint8_t big[600 * 1024];
    vg_spool_rec r = {.data = big, .len = sizeof(big)};
    assert_int_equal(vg_spool_append(s, &r, NULL), VG_ETOOLARGE);
    char tenant[300];
    memset(tenant, 'a', sizeof(tenant) - 1);
    tenant[sizeof(tenant) - 1] = '\0';
    r.len = 1;
    r.tenant = tenant;
    assert_int_equal(vg_spool_append(s, &r, NULL), VG_EINVAL);
    r.tenant = NULL;
    r.data = NULL;
    r.len = 0;
    assert_int_equal(vg_spool_append(s, &r, NULL), VG_OK); /* empty record */
    assert_int_equal(vg_spool_peek(s, &r, NULL), VG_OK);
    assert_int_equal(r.len, 0);
    assert_string_equal(r.tenant, "");
    vg_spool_free(s);
    vg_spool_free(NULL);
    vg_spool_opts none = {0};
    assert_int_equal(vg_spool_open(&none, NULL, &s, NULL), VG_EINVAL);
    vg_spool_opts bad = opts(0, 0);
    bad.dir = "/proc/vigil-no-such/spool";
    vg_error e = {0};
    assert_int_equal(vg_spool_open(&bad, NULL, &s, &e), VG_EIO);
    assert_non_null(strstr(e.msg, "/proc/vigil-no-such"));
    assert_null(s);
}

static void test_small_files(void **state)
{
    char p[600], buf[16];
    size_t n;
    snprintf(p, sizeof(p), "%s/state", dir);
    assert_int_equal(vg_spool_read_file(p, buf, sizeof(buf), &n, NULL), VG_ENOTFOUND);
    assert_int_equal(vg_spool_write_file(p, "seq=42\n", 7, 1, NULL), VG_OK);
    assert_int_equal(vg_spool_read_file(p, buf, sizeof(buf), &n, NULL), VG_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "seq=42\n", 7);
    assert_int_equal(vg_spool_read_file(p, buf, 3, &n, NULL), VG_ETOOLARGE);
    unlink(p);
}

/* Every allocation in open/append/peek/ack/free may fail: no crash, no leak
 * (ASan), and the files stay usable. */
static void test_alloc_failures(void **state)
{
    for (long n = 1; n < 200; n++) {
        teardown(state);
        setup(state);
        vg_spool_opts o = opts(16384, 4096);
        vg_metrics_t *m = vg_metrics_new();
        long before = vg_alloc_failures();
        vg_alloc_fail_after(n);
        vg_spool_t *s = NULL;
        vg_err_t rc = vg_spool_open(&o, m, &s, NULL);
        uint8_t d[900] = {1};
        vg_spool_rec r = {.seq = 1, .tenant = "x", .data = d, .len = sizeof(d)};
        for (int i = 0; !rc && i < 30; i++) rc = vg_spool_append(s, &r, NULL);
        for (int i = 0; !rc && i < 3; i++) {
            rc = vg_spool_peek(s, &r, NULL);
            if (!rc) rc = vg_spool_ack(s, r.id, NULL);
        }
        vg_spool_free(s);
        long failed = vg_alloc_failures() - before;
        vg_alloc_fail_after(0);
        vg_metrics_free(m);
        s = open_ok(&o, NULL); /* whatever happened, the spool opens */
        vg_spool_free(s);
        if (rc == VG_OK && failed == 0) return;
    }
    fail_msg("allocation sweep did not finish");
}

int main(void)
{
    vg_log_set_level(VG_LOG_ERROR); /* the damage tests warn on purpose */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resumes_at_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_roll_and_are_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_drops_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_header_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_payload_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_length_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_found_while_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cursor_replays_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
