/*
 * test_tail.c - the tailer driven pass by pass with an injected clock and no
 * sleeps: partial lines, rename rotation (the old file read to its end while
 * its writer still appends), copytruncate (new identity, offset 0), deletion,
 * refused lines, over-long lines, rate limits, and checkpoints across a
 * restart; plus file identity, the token bucket and the checkpoint file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "tail/tail.h"

#define MAXL 64

typedef struct got {
    char data[MAXL][64];
    char id[MAXL][64];
    uint64_t off[MAXL], full[MAXL];
    int too_long[MAXL];
    int n;
    int refuse; /* refuse this many calls first */
} got_t;

static vg_err_t on_line(void *ud, const vg_tail_line *l)
{
    got_t *g = ud;
    if (g->refuse > 0) {
        g->refuse--;
        return VG_ERETRY;
    }
    if (g->n >= MAXL) return VG_ELIMIT;
    snprintf(g->data[g->n], 64, "%.*s", (int)l->len, l->data);
    snprintf(g->id[g->n], 64, "%s", l->file_id);
    g->off[g->n] = l->offset;
    g->full[g->n] = l->full_len;
    g->too_long[g->n] = l->too_long;
    g->n++;
    return VG_OK;
}

typedef struct fx {
    char dir[64], log[96], log1[96], ckpt[96];
    const char *glob[1];
    vg_tail_input in;
    vg_tail_opts o;
    got_t g;
} fx_t;

static void put(const char *path, const char *s, const char *mode)
{
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    snprintf(x->dir, sizeof x->dir, "/tmp/vg_tail_XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->log, sizeof x->log, "%s/app.log", x->dir);
    snprintf(x->log1, sizeof x->log1, "%s/app.log.1", x->dir);
    snprintf(x->ckpt, sizeof x->ckpt, "%s/ckpt", x->dir);
    x->glob[0] = x->log;
    x->in = (vg_tail_input){.paths = x->glob, .npaths = 1, .read_from_head = 1};
    x->o = (vg_tail_opts){.inputs = &x->in,
                          .ninputs = 1,
                          .checkpoint_path = x->ckpt,
                          .on_line = on_line,
                          .ud = &x->g,
                          .rotate_linger_ms = 1000,
                          .rescan_ms = 1, /* re-glob on every pass that moves the clock */
                          .no_inotify = 1};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", x->dir);
    assert_int_equal(system(cmd), 0);
    free(x);
    return 0;
}

static vg_tail_t *open_tail(fx_t *x)
{
    vg_tail_t *t = NULL;
    assert_int_equal(vg_tail_new(&x->o, &t, NULL), VG_OK);
    return t;
}

static void test_partial_and_rename(void **state)
{
    fx_t *x = *state;
    put(x->log, "a\nb\npart", "w");
    vg_tail_t *t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_string_equal(x->g.data[1], "b");
    assert_int_equal(x->g.off[1], 2);
    put(x->log, "ial\n", "a");
    assert_int_equal(vg_tail_poll(t, 1, NULL), VG_OK);
    assert_int_equal(x->g.n, 3);
    assert_string_equal(x->g.data[2], "partial");
    assert_int_equal(x->g.off[2], 4);
    /* rename rotation; the writer appends to the old file after the rename */
    FILE *old = fopen(x->log, "a");
    assert_int_equal(rename(x->log, x->log1), 0);
    put(x->log, "new1\n", "w");
    fputs("late\nlast-no-newline", old);
    fclose(old);
    assert_int_equal(vg_tail_poll(t, 10, NULL), VG_OK);
    assert_int_equal(x->g.n, 5);
    assert_int_equal(vg_tail_nfiles(t), 2);
    int late = !strcmp(x->g.data[3], "late") ? 3 : 4;
    assert_string_equal(x->g.data[late], "late");
    assert_int_equal(x->g.off[late], 12);
    assert_string_equal(x->g.data[7 - late], "new1");
    assert_string_not_equal(x->g.id[late], x->g.id[7 - late]);
    /* within the linger the old file stays; after it, its last line goes out */
    assert_int_equal(vg_tail_poll(t, 500, NULL), VG_OK);
    assert_int_equal(vg_tail_nfiles(t), 2);
    assert_int_equal(x->g.n, 5);
    assert_int_equal(vg_tail_poll(t, 1200, NULL), VG_OK);
    assert_int_equal(vg_tail_nfiles(t), 1);
    assert_int_equal(x->g.n, 6);
    assert_string_equal(x->g.data[5], "last-no-newline");
    vg_tail_free(t);
}

static void test_copytruncate_and_delete(void **state)
{
    fx_t *x = *state;
    put(x->log, "x1\nx2\n", "w");
    vg_tail_t *t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    assert_int_equal(x->g.n, 2);
    put(x->log, "y\n", "w"); /* truncate and write: smaller than what was read */
    assert_int_equal(vg_tail_poll(t, 1, NULL), VG_OK);
    assert_int_equal(x->g.n, 3);
    assert_string_equal(x->g.data[2], "y");
    assert_int_equal(x->g.off[2], 0);
    assert_string_not_equal(x->g.id[2], x->g.id[0]);
    /* truncated and rewritten past the old size: the head hash tells */
    put(x->log, "zzzzzzzzzzzz\n", "w");
    assert_int_equal(vg_tail_poll(t, 2, NULL), VG_OK);
    assert_int_equal(x->g.n, 4);
    assert_int_equal(x->g.off[3], 0);
    assert_string_not_equal(x->g.id[3], x->g.id[2]);
    /* deleted with an unread line: read, then let go after the linger */
    put(x->log, "d\n", "a");
    assert_int_equal(unlink(x->log), 0);
    assert_int_equal(vg_tail_poll(t, 3, NULL), VG_OK);
    assert_int_equal(x->g.n, 5);
    assert_string_equal(x->g.data[4], "d");
    assert_int_equal(vg_tail_poll(t, 5000, NULL), VG_OK);
    assert_int_equal(vg_tail_nfiles(t), 0);
    vg_tail_free(t);
}

static void test_refused_and_too_long(void **state)
{
    fx_t *x = *state;
    x->in.max_line_bytes = 8;
    put(x->log, "0123456789abcdef\nok\r\n", "w");
    vg_tail_t *t = open_tail(x);
    x->g.refuse = 1;
    int64_t w = -1;
    assert_int_equal(vg_tail_poll(t, 0, &w), VG_ERETRY);
    assert_int_equal(w, 0);
    assert_int_equal(x->g.n, 0);
    assert_int_equal(vg_tail_poll(t, 1, NULL), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_true(x->g.too_long[0]);
    assert_int_equal(x->g.full[0], 16);
    assert_string_equal(x->g.data[0], "01234567");
    assert_string_equal(x->g.data[1], "ok"); /* CR of CRLF dropped */
    assert_int_equal(x->g.off[1], 17);
    vg_tail_free(t);
    /* a long line arriving in pieces across passes */
    x->g.n = 0;
    put(x->log, "", "w");
    t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    put(x->log, "{\"a\":\"123456789", "a");
    assert_int_equal(vg_tail_poll(t, 1, NULL), VG_OK);
    put(x->log, "0123456789\"}\nnext\n", "a");
    assert_int_equal(vg_tail_poll(t, 2, NULL), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_int_equal(x->g.full[0], 27);
    assert_string_equal(x->g.data[1], "next");
    assert_int_equal(x->g.off[1], 28);
    vg_tail_free(t);
}

static void test_rate_limit(void **state)
{
    fx_t *x = *state;
    x->in.rate = 1;
    x->in.burst = 2;
    put(x->log, "1\n2\n3\n4\n5\n", "w");
    vg_tail_t *t = open_tail(x);
    int64_t w = -1;
    assert_int_equal(vg_tail_poll(t, 0, &w), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_int_equal(w, 1000);
    assert_int_equal(vg_tail_poll(t, 999, &w), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_int_equal(vg_tail_poll(t, 1000, &w), VG_OK);
    assert_int_equal(x->g.n, 3);
    assert_int_equal(vg_tail_poll(t, 10000, &w), VG_OK); /* refilled to the burst only */
    assert_int_equal(x->g.n, 5);
    assert_int_equal(w, -1);
    vg_tail_free(t);
}

static void test_checkpoint_restart(void **state)
{
    fx_t *x = *state;
    x->in.read_from_head = 0;
    put(x->log, "old\n", "w");
    vg_tail_t *t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    assert_int_equal(x->g.n, 0); /* first start, not from the head: starts at the end */
    put(x->log, "a\nb\n", "a");
    assert_int_equal(vg_tail_poll(t, 1, NULL), VG_OK);
    assert_int_equal(x->g.n, 2);
    assert_int_equal(vg_tail_commit(t, NULL), VG_OK);
    put(x->log, "c\n", "a");
    assert_int_equal(vg_tail_poll(t, 2, NULL), VG_OK);
    assert_int_equal(x->g.n, 3);
    vg_tail_free(t); /* "crash": c was handed out but never committed */
    x->g.n = 0;
    t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    assert_int_equal(x->g.n, 1);
    assert_string_equal(x->g.data[0], "c");
    assert_int_equal(x->g.off[0], 8);
    vg_tail_free(t);
    /* a file that appeared while the agent was down is read from its head */
    put(x->log1, "n\n", "w");
    x->glob[0] = x->log1;
    x->g.n = 0;
    t = open_tail(x);
    assert_int_equal(vg_tail_poll(t, 0, NULL), VG_OK);
    assert_int_equal(x->g.n, 1);
    vg_tail_free(t);
}

static void test_ident(void **state)
{
    fx_t *x = *state;
    vg_file_ident a, b;
    char s[64];
    put(x->log, "", "w");
    int fd = open(x->log, O_RDONLY);
    assert_int_equal(vg_file_ident_read(fd, 0, &a), VG_OK);
    assert_int_equal(a.head_len, 0);
    put(x->log, "hello\n", "w");
    assert_int_equal(vg_file_ident_read(fd, 0, &a), VG_OK);
    assert_int_equal(a.head_len, 6);
    assert_true(vg_file_ident_match(fd, &a));
    put(x->log, "more\n", "a"); /* growth keeps the identity */
    assert_true(vg_file_ident_match(fd, &a));
    put(x->log, "HELLO\nmore\n", "w"); /* same inode, other head: inode reuse */
    assert_false(vg_file_ident_match(fd, &a));
    assert_int_equal(vg_file_ident_read(fd, a.hash, &b), VG_OK);
    assert_int_not_equal(a.hash, b.hash);
    vg_file_ident_str(&a, s, sizeof s);
    assert_non_null(strchr(s, '-'));
    close(fd);
}

static void test_tokbucket(void **state)
{
    (void)state;
    vg_tokbucket b;
    vg_tokbucket_init(&b, 10, 3, 1000);
    for (int i = 0; i < 3; i++) assert_true(vg_tokbucket_take(&b, 1000));
    assert_false(vg_tokbucket_take(&b, 1000));
    assert_int_equal(vg_tokbucket_wait_ms(&b, 1000), 100);
    assert_int_equal(vg_tokbucket_wait_ms(&b, 1050), 50);
    assert_true(vg_tokbucket_take(&b, 1100));
    assert_false(vg_tokbucket_take(&b, 1100));
    vg_tokbucket_init(&b, 0, 0, 0); /* unlimited */
    for (int i = 0; i < 1000; i++) assert_true(vg_tokbucket_take(&b, 0));
}

static void test_ckpt_file(void **state)
{
    fx_t *x = *state;
    vg_tail_ckpt in[2] = {{.id = {1, 2, 3, 4, 5}, .pos = 77, .path = "/a b/c"},
                          {.id = {9, 8, 7, 0, 1024}, .pos = 0, .path = "/x"}};
    vg_tail_ckpt *out = NULL;
    size_t n = 0;
    assert_int_equal(vg_tail_ckpt_save(x->ckpt, in, 2, NULL), VG_OK);
    assert_int_equal(vg_tail_ckpt_load(x->ckpt, &out, &n, NULL), VG_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(&out[0].id, &in[0].id, sizeof in[0].id);
    assert_int_equal(out[0].pos, 77);
    assert_string_equal(out[0].path, "/a b/c");
    assert_int_equal(out[1].id.head_len, 1024);
    free(out);
    put(x->ckpt, "vigil-tail 1\n1 2 zz\n", "w");
    assert_int_equal(vg_tail_ckpt_load(x->ckpt, &out, &n, NULL), VG_ECORRUPT);
    assert_int_equal(n, 0);
    unlink(x->ckpt);
    assert_int_equal(vg_tail_ckpt_load(x->ckpt, &out, &n, NULL), VG_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_partial_and_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copytruncate_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_and_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ident, setup, teardown),
        cmocka_unit_test(test_tokbucket),
        cmocka_unit_test_setup_teardown(test_ckpt_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
