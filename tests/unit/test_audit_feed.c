/*
 * test_audit_feed.c - the audit feed: append and read back in order, rolling,
 * a torn tail truncated at open, a corrupt record skipped and counted,
 * durable cursors, files below every cursor deleted, the size cap dropping
 * the oldest file (seen by the reader as dropped records), unknown cursors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auditstore/feed.h"

static char tmpl[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpl, sizeof(tmpl), "/tmp/vg-feed-XXXXXX");
    return mkdtemp(tmpl) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
    return system(cmd);
}

static vg_feed_t *open_feed(uint64_t roll, uint64_t cap)
{
    vg_feed_opts o = {.dir = tmpl, .roll_bytes = roll, .cap_bytes = cap};
    vg_feed_t *f = NULL;
    vg_error err = {0};
    assert_int_equal(vg_feed_open(&o, &f, &err), VG_OK);
    return f;
}

static void add(vg_feed_t *f, int i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "{\"n\":%d}", i);
    vg_error err = {0};
    assert_int_equal(vg_feed_append(f, i % 2 ? "acme" : "globex", 1000 + i, line, (size_t)n, &err),
                     VG_OK);
}

static int count_logs(void)
{
    DIR *d = opendir(tmpl);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) n += strstr(e->d_name, ".log") != NULL;
    closedir(d);
    return n;
}

/* Read everything from c, checking records are first..first+n-1 in order. */
static size_t read_all(vg_feed_t *f, vg_feed_cursor *c, int first, vg_feed_batch *b)
{
    vg_error err = {0};
    size_t got = 0;
    for (;;) {
        assert_int_equal(vg_feed_read(f, c, 7, b, &err), VG_OK);
        if (!b->n) break;
        for (size_t i = 0; i < b->n; i++) {
            char want[64];
            int k = first + (int)(got + i);
            snprintf(want, sizeof(want), "{\"n\":%d}", k);
            assert_string_equal(b->recs[i].line, want);
            assert_int_equal(b->recs[i].len, strlen(want));
            assert_string_equal(b->recs[i].tenant, k % 2 ? "acme" : "globex");
            assert_int_equal(b->recs[i].ts_ms, 1000 + k);
        }
        got += b->n;
        *c = b->next;
    }
    return got;
}

static void test_append_read_roll(void **state)
{
    (void)state;
    vg_feed_t *f = open_feed(200, 0);
    for (int i = 0; i < 50; i++) add(f, i);
    assert_true(count_logs() > 3);
    vg_feed_cursor c;
    vg_error err = {0};
    vg_feed_batch b = {0};
    assert_int_equal(vg_feed_cursor_load(f, "hec", &c, &err), VG_OK);
    assert_int_equal(read_all(f, &c, 0, &b), 50);
    assert_int_equal(c.seq, 50);
    assert_int_equal(vg_feed_next_seq(f), 50);
    assert_int_equal(vg_feed_wait(f, &c, 10), 0);
    add(f, 50);
    assert_int_equal(vg_feed_wait(f, &c, 10), 1);
    assert_int_equal(read_all(f, &c, 50, &b), 1);
    vg_feed_batch_free(&b);
    vg_feed_free(f);
}

static void test_cursor_durable_and_gc(void **state)
{
    (void)state;
    vg_feed_t *f = open_feed(200, 0);
    for (int i = 0; i < 40; i++) add(f, i);
    int before = count_logs();
    vg_feed_cursor c, c2;
    vg_error err = {0};
    vg_feed_batch b = {0};
    assert_int_equal(vg_feed_cursor_load(f, "a", &c, &err), VG_OK);
    assert_int_equal(vg_feed_cursor_load(f, "b", &c2, &err), VG_OK);
    assert_int_equal(vg_feed_read(f, &c, 25, &b, &err), VG_OK);
    assert_int_equal(b.n, 25);
    assert_int_equal(vg_feed_cursor_save(f, "a", &b.next, &err), VG_OK);
    assert_int_equal(count_logs(), before); /* "b" still holds the oldest */
    assert_int_equal(vg_feed_cursor_save(f, "b", &b.next, &err), VG_OK);
    assert_true(count_logs() < before);
    vg_feed_free(f);
    /* reopen: the cursor resumes at record 25, the seq continues */
    f = open_feed(200, 0);
    assert_int_equal(vg_feed_next_seq(f), 40);
    assert_int_equal(vg_feed_cursor_load(f, "a", &c, &err), VG_OK);
    assert_int_equal(c.seq, 25);
    assert_int_equal(read_all(f, &c, 25, &b), 15);
    /* "b" is no longer configured: its cursor goes and stops pinning files */
    assert_int_equal(vg_feed_forget_unknown(f, &err), VG_OK);
    char p[128];
    snprintf(p, sizeof(p), "%s/cursor-b", tmpl);
    assert_int_equal(access(p, F_OK), -1);
    vg_feed_batch_free(&b);
    vg_feed_free(f);
}

static void last_file(char *out, size_t cap)
{
    DIR *d = opendir(tmpl);
    struct dirent *e;
    char best[256] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".log") && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", e->d_name);
    closedir(d);
    snprintf(out, cap, "%s/%s", tmpl, best);
}

static void test_torn_tail_and_corrupt(void **state)
{
    (void)state;
    vg_feed_t *f = open_feed(0, 0);
    for (int i = 0; i < 5; i++) add(f, i);
    vg_feed_free(f);
    char path[256];
    last_file(path, sizeof(path));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* torn tail: half a frame */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\x40\0\0\0\1\2\3", 7), 7);
    /* corrupt record 2: flip a byte of its payload (frames are 8+10+6+7|8 bytes) */
    uint8_t x;
    off_t at = 0;
    int fd2 = open(path, O_RDWR);
    for (int i = 0; i < 2; i++) {
        uint8_t h[4];
        assert_int_equal(pread(fd2, h, 4, at), 4);
        at += 8 + (h[0] | h[1] << 8);
    }
    assert_int_equal(pread(fd2, &x, 1, at + 20), 1);
    x ^= 0xff;
    assert_int_equal(pwrite(fd2, &x, 1, at + 20), 1);
    close(fd2), close(fd);
    f = open_feed(0, 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(vg_feed_next_seq(f), 5);
    add(f, 5);
    vg_feed_cursor c;
    vg_error err = {0};
    vg_feed_batch b = {0};
    assert_int_equal(vg_feed_cursor_load(f, "x", &c, &err), VG_OK);
    assert_int_equal(vg_feed_read(f, &c, 100, &b, &err), VG_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.corrupt, 1);
    assert_int_equal(b.next.seq, 6);
    assert_string_equal(b.recs[1].line, "{\"n\":1}");
    assert_string_equal(b.recs[2].line, "{\"n\":3}");
    assert_string_equal(b.recs[4].line, "{\"n\":5}");
    vg_feed_batch_free(&b);
    vg_feed_free(f);
}

static void test_cap_drops_oldest(void **state)
{
    (void)state;
    vg_feed_t *f = open_feed(200, 700);
    vg_feed_cursor c;
    vg_error err = {0};
    vg_feed_batch b = {0};
    assert_int_equal(vg_feed_cursor_load(f, "slow", &c, &err), VG_OK);
    for (int i = 0; i < 60; i++) add(f, i);
    assert_true(count_logs() <= 5);
    assert_int_equal(vg_feed_read(f, &c, 1000, &b, &err), VG_OK);
    assert_true(b.dropped > 0);
    assert_int_equal(b.dropped + b.n, 60);
    assert_string_equal(b.recs[b.n - 1].line, "{\"n\":59}");
    vg_feed_batch_free(&b);
    vg_feed_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_read_roll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_durable_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_and_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_drops_oldest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
