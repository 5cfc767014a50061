/*
 * test_wal_hold.c - holds on WAL segments (wal.h, wal_hold.c): a released
 * segment stays while a hold needs it and goes once the hold moves past it;
 * over max_hold the oldest held ones go and each hold is charged exactly the
 * samples of the segments it had not opened; holds and the released list
 * survive a reopen, replay skips released segments, and dormant holds keep
 * their segments until forgotten.
 *
 * Every open of the WAL starts a new segment, so the tests lay out segments
 * with known sample counts by opening, writing one batch and closing.
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

#include "tsdb/wal.h"

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
    snprintf(dir, sizeof(dir), "/tmp/vigil-walhold-XXXXXX");
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

typedef struct rec {
    int nsamples;
} rec;

static vg_err_t on_series(void *ud, const char *tenant, const vg_label_t *l, size_t n,
                          uint64_t *handle)
{
    (void)ud, (void)tenant, (void)l, (void)n;
    *handle = 0;
    return VG_OK;
}

static void on_sample(void *ud, uint64_t handle, int64_t ts, double v)
{
    (void)handle, (void)ts, (void)v;
    ((rec *)ud)->nsamples++;
}

static vg_wal_t *open_wal(rec *r, vg_wal_stats *st)
{
    vg_wal_replay_cb cb = {.on_series = on_series, .on_sample = on_sample, .ud = r};
    vg_wal_t *w = NULL;
    vg_error err = {0};
    if (r) memset(r, 0, sizeof(*r));
    assert_int_equal(vg_wal_open(waldir, 1 << 20, 1, r ? &cb : NULL, NULL, st, &w, &err), VG_OK);
    return w;
}

static void write_batch(vg_wal_t *w, int64_t ts0, int n)
{
    vg_wal_batch b;
    vg_label_t l[2] = {{"__name__", "up"}, {"job", "x"}};
    uint64_t pos = 0;
    vg_wal_batch_init(&b);
    assert_int_equal(vg_wal_batch_series(&b, 7, "t", l, 2), VG_OK);
    for (int i = 0; i < n; i++) assert_int_equal(vg_wal_batch_sample(&b, 7, ts0 + i, 1.0), VG_OK);
    assert_int_equal(vg_wal_write(w, &b, &pos, NULL), VG_OK);
    vg_wal_batch_free(&b);
}

static int seg_exists(uint32_t no)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/%08u", waldir, no);
    return access(p, F_OK) == 0;
}

/* series.<epoch> files in the WAL directory. */
static int series_files(void)
{
    DIR *d = opendir(waldir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) n += strncmp(e->d_name, "series.", 7) == 0;
    if (d) closedir(d);
    return n;
}

static uint64_t seg_size(uint32_t no)
{
    char p[400];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%08u", waldir, no);
    assert_int_equal(stat(p, &sb), 0);
    return (uint64_t)sb.st_size;
}

/* Segments 1..5 holding 10, 20, 30, 40, 50 samples (segment k at ts k*1000),
 * and the WAL open again on the empty current segment 6. */
static vg_wal_t *five_segments(void)
{
    for (int k = 1; k <= 5; k++) {
        vg_wal_t *w = open_wal(NULL, NULL);
        write_batch(w, k * 1000, k * 10);
        vg_wal_close(w);
    }
    vg_wal_t *w = open_wal(NULL, NULL);
    assert_int_equal(vg_wal_num_segments(w), 6);
    return w;
}

static vg_wal_hold_t *hold(vg_wal_t *w, const char *name, uint32_t from)
{
    vg_wal_hold_t *h = NULL;
    assert_int_equal(vg_wal_hold_new(w, name, from, &h, NULL), VG_OK);
    assert_non_null(h);
    return h;
}

static void test_hold_keeps_until_moved(void **state)
{
    (void)state;
    vg_wal_t *w = five_segments();
    vg_wal_hold_t *a = hold(w, "a", 2), *b = hold(w, "b", 4);
    assert_int_equal(series_files(), 6);              /* each open started an epoch */
    assert_int_equal(vg_wal_truncate(w, 1000000), 1); /* segment 1: nobody holds it */
    assert_false(seg_exists(1));
    assert_int_equal(series_files(), 5);
    for (uint32_t no = 2; no <= 5; no++) assert_true(seg_exists(no));
    assert_int_equal(vg_wal_held_bytes(w), seg_size(2) + seg_size(3) + seg_size(4) + seg_size(5));
    vg_wal_hold_move(a, 5); /* 2, 3 go; 4 is b's */
    assert_false(seg_exists(2) || seg_exists(3));
    assert_true(seg_exists(4) && seg_exists(5));
    vg_wal_hold_move(a, 3); /* never backwards */
    vg_wal_hold_move(b, 6);
    assert_false(seg_exists(4));
    assert_true(seg_exists(5));
    vg_wal_hold_move(a, 6);
    assert_false(seg_exists(5));
    assert_int_equal(vg_wal_held_bytes(w), 0);
    assert_int_equal(series_files(), 1); /* a series file goes with its epoch's last segment */
    assert_int_equal(vg_wal_hold_take_missed(a) + vg_wal_hold_take_missed(b), 0);
    /* The store's own needs are untouched: nothing newer than mint goes. */
    assert_int_equal(vg_wal_num_segments(w), 1);
    vg_wal_close(w);
}

static void test_cap_charges_exactly(void **state)
{
    (void)state;
    vg_wal_t *w = five_segments();
    vg_wal_hold_t *a = hold(w, "a", 2), *b = hold(w, "b", 4), *c = hold(w, "c", 1);
    uint32_t no = 0;
    int sfd = -1;
    int64_t ep = -1;
    int fd = vg_wal_hold_open(a, 2, &no, &sfd, &ep); /* a's reader is inside segment 2 */
    assert_true(fd >= 0 && sfd >= 0);
    assert_int_equal(no, 2);
    assert_int_equal(ep, 2); /* each open of the WAL starts an epoch */
    close(fd);
    close(sfd);
    assert_int_equal(vg_wal_truncate(w, 1000000), 0); /* c holds all */
    /* Keep room for 4 and 5 only: 1, 2, 3 go, oldest first. */
    vg_wal_set_max_hold(w, seg_size(4) + seg_size(5));
    assert_false(seg_exists(1) || seg_exists(2) || seg_exists(3));
    assert_true(seg_exists(4) && seg_exists(5));
    assert_int_equal(vg_wal_hold_take_missed(a), 30);           /* it had opened 2 */
    assert_int_equal(vg_wal_hold_take_missed(b), 0);            /* it starts at 4 */
    assert_int_equal(vg_wal_hold_take_missed(c), 10 + 20 + 30); /* never opened any */
    assert_int_equal(vg_wal_hold_take_missed(c), 0);            /* taken once */
    /* A reader that asks for a deleted segment gets the next one still there. */
    fd = vg_wal_hold_open(c, 1, &no, &sfd, &ep);
    assert_true(fd >= 0 && sfd >= 0);
    assert_int_equal(no, 4);
    close(fd);
    close(sfd);
    /* Segments the store still needs are not held bytes and never go for the cap. */
    write_batch(w, 9000, 5);
    vg_wal_set_max_hold(w, 0);
    assert_false(seg_exists(4) || seg_exists(5));
    assert_int_equal(vg_wal_hold_take_missed(c), 50);      /* it had opened 4, not 5 */
    assert_int_equal(vg_wal_hold_take_missed(b), 40 + 50); /* never opened any */
    assert_int_equal(vg_wal_hold_take_missed(a), 40 + 50);
    vg_wal_close(w);
}

static void test_reopen_keeps_holds(void **state)
{
    (void)state;
    vg_wal_t *w = five_segments();
    vg_wal_hold_t *a = hold(w, "a", 3);
    write_batch(w, 100000, 7);                     /* segment 6 is current: not released */
    assert_int_equal(vg_wal_truncate(w, 6000), 2); /* 1, 2 */
    vg_wal_hold_free(a);
    vg_wal_close(w);

    rec r;
    vg_wal_stats st;
    w = open_wal(&r, &st);
    assert_int_equal(st.released, 3); /* 3, 4, 5: in blocks, not replayed */
    assert_int_equal(r.nsamples, 7);  /* segment 6 only */
    assert_int_equal(vg_wal_num_segments(w), 5);
    assert_int_equal(vg_wal_truncate(w, 0), 0); /* the dormant hold "a" keeps them */
    assert_true(seg_exists(3));
    vg_wal_hold_t *b = hold(w, "b", 7);
    vg_wal_hold_forget_dormant(w); /* "a" is gone from the config */
    assert_false(seg_exists(3) || seg_exists(4) || seg_exists(5));
    assert_true(seg_exists(6));
    vg_wal_hold_move(b, 8);
    vg_wal_close(w);

    w = open_wal(&r, &st);
    assert_int_equal(st.released, 0);
    assert_int_equal(r.nsamples, 7);
    a = hold(w, "b", 7); /* takes over the dormant "b" */
    vg_wal_hold_forget_dormant(w);
    assert_int_equal(vg_wal_hold_take_missed(a), 0);
    vg_wal_close(w);
}

/* A holds file naming one hold twice (damaged or edited) loads as one hold
 * at the older segment; once its reader takes it over, nothing dormant is
 * left to keep segments (fuzz_wal_holds review). */
static void test_duplicate_hold_lines(void **state)
{
    (void)state;
    vg_wal_t *w = five_segments();
    vg_wal_close(w);
    char p[400];
    snprintf(p, sizeof(p), "%s/holds", waldir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("vigil-wal-holds 1\nhold 3 a\nhold 2 a\n", f);
    fclose(f);
    w = open_wal(NULL, NULL);
    assert_int_equal(vg_wal_truncate(w, 1000000), 1); /* "a" holds from 2 */
    assert_true(seg_exists(2));
    vg_wal_hold_t *a = hold(w, "a", 5);
    vg_wal_hold_move(a, 5); /* releases what no hold needs: 2, 3, 4 */
    assert_false(seg_exists(2) || seg_exists(3) || seg_exists(4));
    assert_true(seg_exists(5));
    vg_wal_hold_free(a);
    vg_wal_close(w);
}

static void test_bad_name(void **state)
{
    (void)state;
    vg_wal_t *w = open_wal(NULL, NULL);
    vg_wal_hold_t *h = NULL;
    vg_error err = {0};
    assert_int_equal(vg_wal_hold_new(w, "", 1, &h, &err), VG_EINVAL);
    assert_int_equal(vg_wal_hold_new(w, "a b", 1, &h, &err), VG_EINVAL);
    assert_null(h);
    vg_wal_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hold_keeps_until_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_charges_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_hold_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
