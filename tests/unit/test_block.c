/*
 * test_block.c - on-disk blocks: writer/reader round trip, postings and
 * matchers against brute force, a store that cuts its head into blocks and
 * answers the same after a restart, a cut of more series than one slice,
 * and corruption of every byte of every
 * file (flips and truncations) giving clean errors, never a crash; chunks
 * written compact where that is smaller, XOR otherwise, samples exact.
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
#include <math.h>

#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "tsdb/chunk_int.h"
#include "tsdb/tsdb.h"
#include "tsdb/tsdb_blocks.h"
#include "tsdb/tsdb_int.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/log.h"

#define NSERIES 40
#define NSAMP   300

static char dir[256];
static int64_t BASE; /* recent and aligned: retention and downsampling leave the store alone */

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
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
    vg_log_set_level(VG_LOG_ERROR + 0);
    vg_log_threshold = -1; /* corruption tests log a lot */
    BASE = (vg_clock_wall_ms() - 12 * 3600000LL) / (27 * 3600000LL) * (27 * 3600000LL);
    snprintf(dir, sizeof(dir), "/tmp/vigil-block-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_tree(dir);
    return 0;
}

/* Series i: __name__=m<i%2>, instance=i<i>, job=j<i%3> (sorted order by name). */
static char names[NSERIES][3][16];
static vg_label_t labels[NSERIES][3];

static void make_labels(void)
{
    for (int i = 0; i < NSERIES; i++) {
        snprintf(names[i][0], 16, "m%d", i % 2);
        snprintf(names[i][1], 16, "i%02d", i);
        snprintf(names[i][2], 16, "j%d", i % 3);
        labels[i][0] = (vg_label_t){"__name__", names[i][0]};
        labels[i][1] = (vg_label_t){"instance", names[i][1]};
        labels[i][2] = (vg_label_t){"job", names[i][2]};
    }
}

static int idx_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return vg_labels_cmp(labels[x], 3, labels[y], 3);
}

static double val(int s, int k)
{
    return k % 7 == 0 ? (double)(s * 1000 + k) : (double)k * 0.5 + s;
}

/* Write all series into a block under parent; ulid out. */
static void write_block(const char *parent, char *ulid)
{
    int order[NSERIES];
    int64_t ts[NSAMP];
    double v[NSAMP];
    make_labels();
    for (int i = 0; i < NSERIES; i++) order[i] = i;
    qsort(order, NSERIES, sizeof(int), idx_cmp);
    vg_block_writer_t *w = NULL;
    vg_error e = {0};
    assert_int_equal(vg_block_writer_new(parent, 0, NSAMP * 15000, 0, &w, &e), VG_OK);
    for (int i = 0; i < NSERIES; i++) {
        int s = order[i];
        for (int k = 0; k < NSAMP; k++) {
            ts[k] = (int64_t)k * 15000;
            v[k] = val(s, k);
        }
        assert_int_equal(vg_block_writer_add_samples(w, labels[s], 3, ts, v, NSAMP, &e), VG_OK);
    }
    /* out of order is refused */
    assert_int_equal(vg_block_writer_add_samples(w, labels[order[0]], 3, ts, v, 1, &e), VG_EINVAL);
    assert_int_equal(vg_block_writer_commit(w, ulid, &e), VG_OK);
    vg_block_writer_free(w);
}

static int find_series(const vg_label_t *l, size_t n)
{
    for (int i = 0; i < NSERIES; i++)
        if (vg_labels_cmp(labels[i], 3, l, n) == 0) return i;
    return -1;
}

static void check_series(const vg_block_series *s, int64_t mint, int64_t maxt)
{
    int id = find_series(s->labels, s->nlabels);
    assert_true(id >= 0);
    size_t k = 0;
    for (size_t c = 0; c < s->nchunks; c++) {
        vg_chunk_iter it;
        int64_t t;
        double v;
        vg_chunk_iter_init(&it, s->chunks[c].data, s->chunks[c].len);
        while (vg_chunk_iter_next(&it, &t, &v)) {
            if (t < mint || t > maxt) continue;
            assert_int_equal(t % 15000, 0);
            assert_true(v == val(id, (int)(t / 15000)));
            k++;
        }
        assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
    }
    assert_true(k > 0);
}

static void test_roundtrip(void **state)
{
    (void)state;
    char ulid[VG_ULID_LEN + 1], path[512];
    snprintf(path, sizeof(path), "%s/rt", dir);
    write_block(path, ulid);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", ulid);
    vg_block_t *b = NULL;
    vg_error e = {0};
    assert_int_equal(vg_block_open(path, &b, &e), VG_OK);
    const vg_block_meta *m = vg_block_get_meta(b);
    assert_string_equal(m->ulid, ulid);
    assert_int_equal(m->num_series, NSERIES);
    assert_int_equal(m->num_samples, NSERIES * NSAMP);
    assert_int_equal(m->level, 1);
    assert_int_equal(m->nsources, 1);
    vg_arena_t *a = vg_arena_new(0);
    vg_block_series *s;
    size_t n;
    assert_int_equal(vg_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &s, &n, &e), VG_OK);
    assert_int_equal(n, NSERIES);
    for (size_t i = 0; i < n; i++) {
        if (i) assert_true(vg_labels_cmp(s[i - 1].labels, 3, s[i].labels, 3) < 0);
        check_series(&s[i], INT64_MIN, INT64_MAX);
    }
    /* a time range picks only overlapping chunks */
    assert_int_equal(vg_block_select(b, NULL, 0, 200 * 15000, 210 * 15000, a, &s, &n, &e), VG_OK);
    assert_int_equal(n, NSERIES);
    assert_int_equal(s[0].nchunks, 1);
    assert_int_equal(vg_block_select(b, NULL, 0, NSAMP * 15000, INT64_MAX, a, &s, &n, &e), VG_OK);
    assert_int_equal(n, 0);
    const char **v;
    assert_int_equal(vg_block_label_strings(b, NULL, NULL, 0, a, &v, &n, &e), VG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "__name__");
    assert_int_equal(vg_block_label_strings(b, "job", NULL, 0, a, &v, &n, &e), VG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[2], "j2");
    vg_arena_free(a);
    vg_block_unref(b);
}

/* Brute force: does series i satisfy every matcher? */
static int brute(int i, vg_matcher_t **m, size_t nm)
{
    for (size_t k = 0; k < nm; k++) {
        const char *v = vg_labels_get(labels[i], 3, vg_matcher_name(m[k]));
        if (!vg_matcher_matches(m[k], v ? v : "")) return 0;
    }
    return 1;
}

static void test_postings(void **state)
{
    (void)state;
    static const struct {
        vg_match_op op;
        const char *n, *v;
    } cases[][2] = {
        {{VG_MATCH_EQ, "job", "j1"}, {VG_MATCH_EQ, "__name__", "m0"}},
        {{VG_MATCH_NEQ, "job", "j1"}, {VG_MATCH_RE, "instance", "i0.|i1[0-3]"}},
        {{VG_MATCH_NRE, "job", "j[01]"}, {VG_MATCH_EQ, "__name__", "m1"}},
        {{VG_MATCH_EQ, "nope", ""}, {VG_MATCH_RE, "job", ".*"}},
        {{VG_MATCH_EQ, "job", "absent"}, {VG_MATCH_RE, "job", ".+"}},
        {{VG_MATCH_RE, "nope", ".+"}, {VG_MATCH_EQ, "job", "j0"}},
        {{VG_MATCH_NEQ, "instance", "i05"}, {VG_MATCH_NRE, "__name__", "m0"}},
    };
    char ulid[VG_ULID_LEN + 1], path[512];
    snprintf(path, sizeof(path), "%s/post", dir);
    write_block(path, ulid);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", ulid);
    vg_block_t *b = NULL;
    vg_error e = {0};
    assert_int_equal(vg_block_open(path, &b, &e), VG_OK);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        vg_matcher_t *m[2];
        for (int k = 0; k < 2; k++)
            assert_int_equal(
                vg_matcher_new(cases[c][k].op, cases[c][k].n, cases[c][k].v, &m[k], &e), VG_OK);
        vg_arena_t *a = vg_arena_new(0);
        vg_block_series *s;
        size_t n, want = 0;
        assert_int_equal(vg_block_select(b, m, 2, INT64_MIN, INT64_MAX, a, &s, &n, &e), VG_OK);
        for (int i = 0; i < NSERIES; i++) want += (size_t)brute(i, m, 2);
        assert_int_equal(n, want);
        for (size_t i = 0; i < n; i++) assert_true(brute(find_series(s[i].labels, 3), m, 2));
        vg_arena_free(a);
        vg_matcher_free(m[0]);
        vg_matcher_free(m[1]);
    }
    vg_block_unref(b);
}

/* ---- the store: cut, query, restart ---- */

static vg_tsdb_t *open_store(void)
{
    char d[512];
    snprintf(d, sizeof(d), "%s/store", dir);
    vg_tsdb_opts o = {.dir = d, .block_range_ms = 3600 * 1000};
    vg_tsdb_t *db = NULL;
    vg_error e = {0};
    assert_int_equal(vg_tsdb_open(&o, NULL, &db, &e), VG_OK);
    return db;
}

/* Every series returns every sample 0..nsamp-1 at 15 s exactly once. */
static void check_store(vg_tsdb_t *db, int nsamp)
{
    vg_seriesset_t *ss = NULL;
    vg_error e = {0};
    assert_int_equal(vg_tsdb_select(db, "default", NULL, 0, INT64_MIN, INT64_MAX, &ss, &e), VG_OK);
    assert_int_equal(vg_seriesset_len(ss), 5);
    while (vg_seriesset_next(ss)) {
        size_t nl;
        const vg_label_t *l = vg_seriesset_labels(ss, &nl);
        int s = atoi(l[1].value + 1);
        int64_t t;
        double v;
        int k = 0;
        while (vg_seriesset_sample_next(ss, &t, &v)) {
            assert_int_equal(t, BASE + (int64_t)k * 15000);
            assert_true(v == val(s, k));
            k++;
        }
        assert_int_equal(k, nsamp);
    }
    assert_int_equal(vg_seriesset_err(ss), VG_OK);
    vg_seriesset_free(ss);
    char **v;
    size_t n;
    assert_int_equal(
        vg_tsdb_label_values(db, "default", "instance", NULL, 0, BASE, BASE + 1000, &v, &n, &e),
        VG_OK);
    assert_int_equal(n, 5);
    vg_free(v);
}

static void test_store_cut_restart(void **state)
{
    (void)state;
    make_labels();
    vg_tsdb_t *db = open_store();
    const int nsamp = 5 * 240; /* 5 hours at 15 s */
    vg_error e = {0};
    for (int k = 0; k < nsamp; k++)
        for (int s = 0; s < 5; s++)
            assert_int_equal(vg_tsdb_append(db, "default", labels[s], 3, BASE + (int64_t)k * 15000,
                                            val(s, k), NULL, &e),
                             VG_OK);
    size_t ncut = 0;
    assert_int_equal(vg_tsdb_blocks_cut(db->blocks, &ncut, &e), VG_OK);
    uint64_t bytes = 0;
    /* [0,1h) [1h,2h) [2h,3h), or fewer when the store's own thread (one
     * pass a second) cut and compacted them first */
    assert_true(vg_tsdb_blocks_count(db->blocks, &bytes) >= 1);
    assert_true(bytes > 0);
    check_store(db, nsamp);
    assert_int_equal(vg_tsdb_sync(db, VG_TSDB_SYNC_ALL, &e), VG_OK);
    vg_tsdb_free(db);
    db = open_store();
    assert_true(vg_tsdb_blocks_count(db->blocks, NULL) >= 1);
    check_store(db, nsamp);
    vg_tsdb_free(db);
}

/* More series than a cut snapshots at a time (CUT_SLICE), created out of
 * label order: the block holds every series once, in order, every sample. */
#define SLICED_SERIES 9000
#define SLICED_SAMP   180 /* 3 h at 60 s */

static void test_store_cut_slices(void **state)
{
    (void)state;
    vg_tsdb_t *db = open_store();
    vg_error e = {0};
    char id[16];
    for (int k = 0; k < SLICED_SAMP; k++)
        for (int i = 0; i < SLICED_SERIES; i++) {
            snprintf(id, sizeof(id), "%05d", (i * 7919) % SLICED_SERIES);
            vg_label_t l[2] = {{"__name__", "sliced"}, {"id", id}};
            assert_int_equal(
                vg_tsdb_append(db, "default", l, 2, BASE + (int64_t)k * 60000, k, NULL, &e), VG_OK);
        }
    /* the block thread may have cut already; this waits for its pass */
    assert_int_equal(vg_tsdb_blocks_cut(db->blocks, NULL, &e), VG_OK);
    vg_block_t **bl = NULL;
    size_t nb = 0;
    assert_int_equal(vg_tsdb_blocks_acquire(db->blocks, "default", BASE, BASE + 1, &bl, &nb),
                     VG_OK);
    assert_int_equal(nb, 1);
    vg_arena_t *a = vg_arena_new(0);
    vg_block_series *s = NULL;
    size_t n = 0;
    assert_int_equal(vg_block_select(bl[0], NULL, 0, INT64_MIN, INT64_MAX, a, &s, &n, &e), VG_OK);
    assert_int_equal(n, SLICED_SERIES);
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%05d", (int)i);
        assert_string_equal(s[i].labels[1].value, id);
        size_t k = 0;
        for (size_t c = 0; c < s[i].nchunks; c++) {
            vg_chunk_iter it;
            int64_t t;
            double v;
            vg_chunk_iter_init(&it, s[i].chunks[c].data, s[i].chunks[c].len);
            while (vg_chunk_iter_next(&it, &t, &v)) assert_true(v == (double)k++);
        }
        assert_int_equal(k, 60); /* the first hour */
    }
    vg_arena_free(a);
    vg_tsdb_blocks_release(bl, nb);
    vg_tsdb_free(db);
}

/* ---- corruption ---- */

static uint8_t *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(*n ? *n : 1);
    assert_int_equal(fread(d, 1, *n, f), *n);
    fclose(f);
    return d;
}

static void spit(const char *p, const uint8_t *d, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* Open and read everything; returns the first error (never crashes). */
static vg_err_t exercise(const char *bdir, vg_error *e)
{
    vg_block_t *b = NULL;
    vg_err_t rc = vg_block_open(bdir, &b, e);
    if (rc) return rc;
    vg_arena_t *a = vg_arena_new(0);
    vg_block_series *s;
    size_t n;
    rc = vg_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &s, &n, e);
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t c = 0; c < s[i].nchunks; c++) {
            vg_chunk_iter it;
            int64_t t;
            double v;
            vg_chunk_iter_init(&it, s[i].chunks[c].data, s[i].chunks[c].len);
            while (vg_chunk_iter_next(&it, &t, &v)) {
            }
        }
    const char **sv;
    if (!rc) rc = vg_block_label_strings(b, "job", NULL, 0, a, &sv, &n, e);
    vg_arena_free(a);
    vg_block_unref(b);
    return rc;
}

/* Flip every byte (step) and truncate at every length (step) of file. */
static void damage(const char *bdir, const char *file, size_t step, int must_fail)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", bdir, file);
    size_t n;
    uint8_t *orig = slurp(p, &n), *d = malloc(n);
    for (size_t i = 0; i < n; i += step) {
        memcpy(d, orig, n);
        d[i] ^= 0x5a;
        spit(p, d, n);
        vg_error e = {0};
        vg_err_t rc = exercise(bdir, &e);
        if (must_fail) {
            if (rc != VG_ECORRUPT) fprintf(stderr, "%s: byte %zu: rc %d\n", file, i, rc);
            assert_int_equal(rc, VG_ECORRUPT);
            assert_non_null(strstr(e.msg, file));
        }
    }
    for (size_t len = 0; len < n; len += step) {
        spit(p, orig, len);
        vg_error e = {0};
        vg_err_t rc = exercise(bdir, &e);
        if (must_fail) assert_true(rc == VG_ECORRUPT || rc == VG_EIO);
        if (!must_fail) assert_true(rc == VG_OK || rc == VG_ECORRUPT || rc == VG_EIO);
    }
    spit(p, orig, n);
    vg_error e = {0};
    assert_int_equal(exercise(bdir, &e), VG_OK);
    free(orig);
    free(d);
}

static void test_corruption(void **state)
{
    (void)state;
    char ulid[VG_ULID_LEN + 1], path[512];
    snprintf(path, sizeof(path), "%s/bad", dir);
    write_block(path, ulid);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", ulid);
    damage(path, "index", 1, 1);
    damage(path, "meta.json", 1, 0);
    damage(path, "chunks/000001", 7, 0);
    /* every chunk byte flipped is caught by a checksum (header: at open) */
    char p[600];
    snprintf(p, sizeof(p), "%s/chunks/000001", path);
    size_t n;
    uint8_t *orig = slurp(p, &n);
    for (size_t i = 0; i < n; i += 3) {
        orig[i] ^= 1;
        spit(p, orig, n);
        vg_error e = {0};
        assert_int_equal(exercise(path, &e), VG_ECORRUPT);
        assert_non_null(strstr(e.msg, "chunks/000001"));
        orig[i] ^= 1;
    }
    spit(p, orig, n);
    free(orig);
}

/* Series 0 a two-decimal counter (samples), 1 random floats with a stale
 * marker (samples), 2 integers given as XOR chunks: 0 and 2 go to disk
 * compact, 1 stays XOR, every sample comes back bit for bit. */
#define CSAMP 300
static void compact_series(int s, int64_t *ts, double *v)
{
    double x = 1000.25;
    uint64_t r = 0x9e3779b97f4a7c15ull + (uint64_t)s;
    for (int k = 0; k < CSAMP; k++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        ts[k] = BASE + (int64_t)k * 30000;
        x = round((x + 20 + (double)(r >> 60)) * 100) / 100;
        v[k] = s == 0 ? x : s == 1 ? (double)(r >> 11) / 9007199254740992.0 : (double)(k * 7);
    }
    if (s == 1) {
        uint64_t stale = 0x7ff0000000000002ull;
        memcpy(&v[CSAMP - 1], &stale, sizeof(stale));
    }
}

static void write_compact_block(char *ulid)
{
    char names3[3][8];
    int64_t ts[CSAMP];
    double v[CSAMP];
    vg_block_writer_t *w = NULL;
    vg_error e = {0};
    assert_int_equal(vg_block_writer_new(dir, BASE, BASE + CSAMP * 30000, 0, &w, &e), VG_OK);
    for (int s = 0; s < 3; s++) {
        snprintf(names3[s], sizeof(names3[s]), "c%d", s);
        vg_label_t l = {"__name__", names3[s]};
        compact_series(s, ts, v);
        if (s < 2) {
            assert_int_equal(vg_block_writer_add_samples(w, &l, 1, ts, v, CSAMP, &e), VG_OK);
            continue;
        }
        vg_chunk_t *c[3];
        vg_block_chunk bc[3];
        for (int i = 0; i < 3; i++) {
            c[i] = vg_chunk_new();
            for (int k = i * 100; k < i * 100 + 100; k++) vg_chunk_append(c[i], ts[k], v[k]);
            bc[i] = (vg_block_chunk){ts[i * 100], ts[i * 100 + 99], NULL, 0};
            bc[i].data = vg_chunk_bytes(c[i], &bc[i].len);
        }
        assert_int_equal(vg_block_writer_add(w, &l, 1, bc, 3, &e), VG_OK);
        for (int i = 0; i < 3; i++) vg_chunk_free(c[i]);
    }
    assert_int_equal(vg_block_writer_commit(w, ulid, &e), VG_OK);
    vg_block_writer_free(w);
}

static void test_compact_chunks(void **state)
{
    (void)state;
    char ulid[VG_ULID_LEN + 1], path[512];
    write_compact_block(ulid);
    snprintf(path, sizeof(path), "%s/%s", dir, ulid);
    vg_block_t *b = NULL;
    vg_error e = {0};
    assert_int_equal(vg_block_open(path, &b, &e), VG_OK);
    assert_int_equal(vg_block_get_meta(b)->num_samples, 3 * CSAMP);
    vg_arena_t *a = vg_arena_new(0);
    vg_block_series *s = NULL;
    size_t n = 0;
    assert_int_equal(vg_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &s, &n, &e), VG_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        int64_t ts[CSAMP], t;
        double v[CSAMP], x;
        int k = 0;
        compact_series(i, ts, v);
        for (size_t c = 0; c < s[i].nchunks; c++) {
            const vg_block_chunk *ch = &s[i].chunks[c];
            assert_int_equal(vg_chunk_is_compact(ch->data, ch->len), i != 1);
            vg_chunk_iter it;
            vg_chunk_iter_init(&it, ch->data, ch->len);
            while (vg_chunk_iter_next(&it, &t, &x)) {
                assert_true(k < CSAMP && t == ts[k] && memcmp(&x, &v[k], sizeof(x)) == 0);
                k++;
            }
            assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
        }
        assert_int_equal(k, CSAMP);
    }
    vg_arena_free(a);
    vg_block_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_cut_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_cut_slices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_chunks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
