/*
 * test_head.c - head and tenant store: appends, dedup, conflicts, out of
 * order, chunk cutting, postings selection for every matcher kind, label
 * listings, remote-write TimeSeries, self-metrics, the sorted refs and
 * snapshots a block cut uses, and concurrent
 * append + select (checked for consistency, never for timing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/tsdb.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"

#define L(n, v) ((vg_label_t){(n), (v)})

static double stale_nan(void)
{
    uint64_t b = 0x7ff0000000000002ull;
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

/* A store without the out-of-order window, for the strict-order cases. */
static vg_tsdb_t *strict_db(vg_metrics_t *m)
{
    vg_tsdb_opts o = {.ooo_window_ms = -1};
    vg_tsdb_t *db = NULL;
    assert_int_equal(vg_tsdb_open(&o, m, &db, NULL), VG_OK);
    return db;
}

static vg_err_t app(vg_tsdb_t *db, const char *tenant, const vg_label_t *l, size_t n, int64_t ts,
                    double v, vg_append_stats *st)
{
    vg_error err = {0};
    return vg_tsdb_append(db, tenant, l, n, ts, v, st, &err);
}

/* Collect "labels|ts:v,ts:v" lines of a select into buf, one series per line. */
static void dump_select(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                        int64_t mint, int64_t maxt, char *buf, size_t cap)
{
    vg_seriesset_t *ss;
    vg_error err = {0};
    assert_int_equal(vg_tsdb_select(db, tenant, m, nm, mint, maxt, &ss, &err), VG_OK);
    size_t off = 0;
    buf[0] = 0;
    while (vg_seriesset_next(ss)) {
        size_t n;
        const vg_label_t *l = vg_seriesset_labels(ss, &n);
        for (size_t i = 0; i < n; i++)
            off += (size_t)snprintf(buf + off, cap - off, "%s%s=%s", i ? "," : "", l[i].name,
                                    l[i].value);
        off += (size_t)snprintf(buf + off, cap - off, "|");
        int64_t t;
        double v;
        int first = 1;
        while (vg_seriesset_sample_next(ss, &t, &v)) {
            off += (size_t)snprintf(buf + off, cap - off, "%s%lld:%g", first ? "" : ",",
                                    (long long)t, v);
            first = 0;
        }
        off += (size_t)snprintf(buf + off, cap - off, "\n");
    }
    assert_int_equal(vg_seriesset_err(ss), VG_OK);
    vg_seriesset_free(ss);
}

static void test_append_and_select(void **state)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_append_stats st = {0};
    vg_label_t a[] = {L("__name__", "up"), L("job", "b")};
    vg_label_t b[] = {L("__name__", "up"), L("job", "a")};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(app(db, "default", a, 2, 1000 * i, i, &st), VG_OK);
        assert_int_equal(app(db, "default", b, 2, 1000 * i, 10 + i, &st), VG_OK);
    }
    assert_int_equal(st.samples_appended, 6);
    assert_int_equal(st.series_created, 2);
    assert_int_equal(vg_tsdb_num_series(db), 2);
    char buf[1024];
    dump_select(db, "default", NULL, 0, 0, 5000, buf, sizeof buf);
    assert_string_equal(buf, "__name__=up,job=a|0:10,1000:11,2000:12\n"
                             "__name__=up,job=b|0:0,1000:1,2000:2\n");
    dump_select(db, "default", NULL, 0, 1000, 1000, buf, sizeof buf);
    assert_string_equal(buf, "__name__=up,job=a|1000:11\n__name__=up,job=b|1000:1\n");
    dump_select(db, "default", NULL, 0, 3000, 9000, buf, sizeof buf);
    assert_string_equal(buf, "");
    dump_select(db, "other", NULL, 0, 0, 9000, buf, sizeof buf); /* tenants are isolated */
    assert_string_equal(buf, "");
    vg_tsdb_free(db);
}

static void test_dedup_conflict_ooo(void **state)
{
    vg_tsdb_t *db = strict_db(NULL);
    vg_append_stats st = {0};
    vg_error err = {0};
    vg_label_t a[] = {L("__name__", "x")};
    assert_int_equal(app(db, "t", a, 1, 100, 1.5, &st), VG_OK);
    assert_int_equal(app(db, "t", a, 1, 100, 1.5, &st), VG_OK); /* duplicate: no-op */
    assert_int_equal(vg_tsdb_append(db, "t", a, 1, 100, 2.5, &st, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate sample for timestamp"));
    assert_int_equal(vg_tsdb_append(db, "t", a, 1, 50, 2.5, &st, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "out of order"));
    /* An older sample that is stored exactly (a redelivered batch) is a duplicate. */
    assert_int_equal(app(db, "t", a, 1, 150, 7.0, &st), VG_OK);
    assert_int_equal(app(db, "t", a, 1, 100, 1.5, &st), VG_OK);
    assert_int_equal(app(db, "t", a, 1, 100, 9.0, &st), VG_EINVAL); /* conflict */
    assert_int_equal(app(db, "t", a, 1, 120, 1.5, &st), VG_EINVAL); /* never stored */
    /* NaN payloads: stale marker then a plain NaN at the same time is a duplicate. */
    assert_int_equal(app(db, "t", a, 1, 200, stale_nan(), &st), VG_OK);
    assert_int_equal(app(db, "t", a, 1, 200, NAN, &st), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "t", a, 1, 200, 0.0, &st, &err), VG_EINVAL);
    /* -0 and +0 differ in bits: a conflict, not a duplicate. */
    assert_int_equal(app(db, "t", a, 1, 300, 0.0, &st), VG_OK);
    assert_int_equal(app(db, "t", a, 1, 300, -0.0, &st), VG_EINVAL);
    assert_int_equal(st.samples_appended, 4);
    assert_int_equal(st.samples_deduplicated, 3);
    assert_int_equal(st.samples_conflicting, 4);
    assert_int_equal(st.samples_out_of_order, 2);
    assert_int_equal(st.series_created, 1);
    /* The stored stale marker keeps its exact bits. */
    vg_seriesset_t *ss;
    assert_int_equal(vg_tsdb_select(db, "t", NULL, 0, 200, 200, &ss, &err), VG_OK);
    assert_true(vg_seriesset_next(ss));
    int64_t t;
    double v;
    assert_true(vg_seriesset_sample_next(ss, &t, &v));
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    assert_true(bits == 0x7ff0000000000002ull);
    assert_false(vg_seriesset_sample_next(ss, &t, &v));
    assert_false(vg_seriesset_next(ss));
    vg_seriesset_free(ss);
    vg_tsdb_free(db);
}

static void test_validation(void **state)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_append_stats st = {0};
    vg_error err = {0};
    vg_label_t noname[] = {L("job", "x")};
    vg_label_t badname[] = {L("0bad", "x"), L("__name__", "m")};
    vg_label_t ok[] = {L("__name__", "m")};
    assert_int_equal(vg_tsdb_append(db, "t", noname, 1, 1, 1, &st, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "__name__"));
    assert_int_equal(vg_tsdb_append(db, "t", badname, 2, 1, 1, &st, &err), VG_EINVAL);
    assert_int_equal(st.series_rejected, 2);
    assert_int_equal(vg_tsdb_append(db, "bad tenant", ok, 1, 1, 1, &st, &err), VG_EINVAL);
    assert_int_equal(vg_tsdb_append(db, "", ok, 1, 1, 1, &st, &err), VG_EINVAL);
    char t65[66];
    memset(t65, 'a', 65);
    t65[65] = 0;
    assert_int_equal(vg_tsdb_append(db, t65, ok, 1, 1, 1, &st, &err), VG_EINVAL);
    assert_int_equal(vg_tsdb_append(db, t65 + 1, ok, 1, 1, 1, &st, &err), VG_OK);
    assert_true(vg_tsdb_tenant_valid("team-a.prod_1"));
    assert_int_equal(vg_tsdb_num_series(db), 1);
    vg_tsdb_free(db);
}

static void test_chunk_cut(void **state)
{
    vg_head_t *h = vg_head_new();
    vg_label_t l[] = {L("__name__", "m")};
    uint32_t ref;
    int created;
    assert_int_equal(vg_head_series(h, l, 1, &ref, &created), VG_OK);
    assert_int_equal(created, 1);
    for (int i = 0; i < 300; i++) {
        vg_append_res res;
        assert_int_equal(vg_head_append(h, ref, i * 10, i, &res), VG_OK);
        assert_int_equal(res, VG_APPEND_ADDED);
    }
    vg_arena_t *a = vg_arena_new(0);
    vg_snap_series *s;
    size_t n;
    assert_int_equal(vg_head_snapshot(h, NULL, 0, 0, 10000, a, &s, &n), VG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].nchunks, 3); /* 120 + 120 + 60 */
    /* Full chunks are held compact once the next starts; the open one is XOR;
     * every sample reads back. */
    assert_true(vg_chunk_is_compact(s[0].chunks[0].data, s[0].chunks[0].len));
    assert_true(vg_chunk_is_compact(s[0].chunks[1].data, s[0].chunks[1].len));
    assert_false(vg_chunk_is_compact(s[0].chunks[2].data, s[0].chunks[2].len));
    int want = 0;
    for (size_t c = 0; c < s[0].nchunks; c++) {
        vg_chunk_iter it;
        int64_t t;
        double v;
        vg_chunk_iter_init(&it, s[0].chunks[c].data, s[0].chunks[c].len);
        while (vg_chunk_iter_next(&it, &t, &v)) {
            assert_int_equal(t, want * 10);
            assert_true(v == want);
            want++;
        }
        assert_int_equal(vg_chunk_iter_err(&it), VG_OK);
    }
    assert_int_equal(want, 300);
    /* Only the chunks overlapping the range are copied. */
    assert_int_equal(vg_head_snapshot(h, NULL, 0, 1200, 1300, a, &s, &n), VG_OK);
    assert_int_equal(s[0].nchunks, 1);
    assert_int_equal(vg_head_snapshot(h, NULL, 0, 1190, 1200, a, &s, &n), VG_OK);
    assert_int_equal(s[0].nchunks, 2);
    int64_t mint, maxt;
    assert_true(vg_head_time_range(h, &mint, &maxt));
    assert_true(mint == 0 && maxt == 2990);
    vg_arena_free(a);
    vg_head_free(h);
}

/* Series used by the matcher table. */
static vg_tsdb_t *matcher_db(void)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_label_t a[] = {L("__name__", "up"), L("env", "prod"), L("job", "api")};
    vg_label_t b[] = {L("__name__", "up"), L("job", "db")};
    vg_label_t c[] = {L("__name__", "down"), L("env", "dev"), L("job", "api")};
    assert_int_equal(app(db, "default", a, 3, 1, 1, NULL), VG_OK);
    assert_int_equal(app(db, "default", b, 2, 1, 2, NULL), VG_OK);
    assert_int_equal(app(db, "default", c, 3, 1, 3, NULL), VG_OK);
    return db;
}

/* Select with up to two matchers and return the sample values, e.g. "1,3". */
static void select_values(vg_tsdb_t *db, const char *spec, char *out)
{
    vg_matcher_t *m[2];
    size_t nm = 0;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(tmp, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save)) {
        static const char *ops[] = {"!~", "=~", "!=", "="};
        static const vg_match_op codes[] = {VG_MATCH_NRE, VG_MATCH_RE, VG_MATCH_NEQ, VG_MATCH_EQ};
        for (int k = 0; k < 4; k++) {
            char *p = strstr(tok, ops[k]);
            if (!p) continue;
            *p = 0;
            assert_int_equal(vg_matcher_new(codes[k], tok, p + strlen(ops[k]), &m[nm++], NULL),
                             VG_OK);
            break;
        }
    }
    vg_seriesset_t *ss;
    assert_int_equal(vg_tsdb_select(db, "default", m, nm, 0, 10, &ss, NULL), VG_OK);
    out[0] = 0;
    while (vg_seriesset_next(ss)) {
        int64_t t;
        double v;
        assert_true(vg_seriesset_sample_next(ss, &t, &v));
        sprintf(out + strlen(out), "%s%g", out[0] ? "," : "", v);
    }
    vg_seriesset_free(ss);
    for (size_t i = 0; i < nm; i++) vg_matcher_free(m[i]);
}

static void test_matchers(void **state)
{
    /* Output order is label order: down{...}=3, up{env=prod}=1, up{job=db}=2. */
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"job=api", "3,1"},
        {"job!=api", "2"},
        {"env=", "2"},        /* matches empty: selects series without env */
        {"env!=", "3,1"},     /* has env */
        {"env=~pr.*", "1"},   /* anchored regex */
        {"env=~r", ""},       /* anchored: "r" matches no whole value */
        {"env=~.*", "3,1,2"}, /* matches empty: everything */
        {"env!~prod", "3,2"}, /* series without env are kept */
        {"env=~|dev", "3,2"}, /* alternation with the empty string */
        {"env!~.+", "2"},     /* only series without env */
        {"nope=x", ""},       /* unknown label, value required */
        {"nope!=x", "3,1,2"}, /* unknown label, everything */
        {"nope=", "3,1,2"},   /* missing label equals "" */
        {"__name__=up;env!~prod", "2"},
        {"__name__=~up|down;job=api", "3,1"},
        {"job=api;job=db", ""},
        {"__name__!=up;env!=dev", ""},
    };
    vg_tsdb_t *db = matcher_db();
    char got[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        select_values(db, cases[i].spec, got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", cases[i].spec, got, cases[i].want);
    }
    vg_tsdb_free(db);
}

static void test_label_names_values(void **state)
{
    vg_tsdb_t *db = matcher_db();
    char **v;
    size_t n;
    assert_int_equal(vg_tsdb_label_names(db, "default", NULL, 0, 0, 10, &v, &n, NULL), VG_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "__name__");
    assert_string_equal(v[1], "env");
    assert_string_equal(v[2], "job");
    vg_free(v);
    assert_int_equal(vg_tsdb_label_values(db, "default", "job", NULL, 0, 0, 10, &v, &n, NULL),
                     VG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "api");
    assert_string_equal(v[1], "db");
    vg_free(v);
    vg_matcher_t *m;
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, "job", "db", &m, NULL), VG_OK);
    assert_int_equal(vg_tsdb_label_names(db, "default", &m, 1, 0, 10, &v, &n, NULL), VG_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[1], "job");
    vg_free(v);
    assert_int_equal(vg_tsdb_label_values(db, "default", "__name__", &m, 1, 0, 10, &v, &n, NULL),
                     VG_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0], "up");
    vg_free(v);
    vg_matcher_free(m);
    /* Out of the head's time range, and unknown tenants: empty. */
    assert_int_equal(vg_tsdb_label_names(db, "default", NULL, 0, 100, 200, &v, &n, NULL), VG_OK);
    assert_int_equal(n, 0);
    vg_free(v);
    assert_int_equal(vg_tsdb_label_values(db, "nobody", "job", NULL, 0, 0, 10, &v, &n, NULL),
                     VG_OK);
    assert_int_equal(n, 0);
    vg_free(v);
    vg_tsdb_free(db);
}

/* ---- remote-write TimeSeries ---- */

typedef struct pbseries {
    Prometheus__TimeSeries ts;
    Prometheus__Label lab[4], *labp[4];
    Prometheus__Sample smp[3], *smpp[3];
} pbseries;

static void pb_init(pbseries *p, const char *const *kv, size_t nl, int64_t t0)
{
    prometheus__time_series__init(&p->ts);
    for (size_t i = 0; i < nl; i++) {
        prometheus__label__init(&p->lab[i]);
        p->lab[i].name = (char *)kv[2 * i];
        p->lab[i].value = (char *)kv[2 * i + 1];
        p->labp[i] = &p->lab[i];
    }
    for (size_t i = 0; i < 3; i++) {
        prometheus__sample__init(&p->smp[i]);
        p->smp[i].timestamp = t0 + (int64_t)i * 1000;
        p->smp[i].value = (double)i;
        p->smpp[i] = &p->smp[i];
    }
    p->ts.n_labels = nl;
    p->ts.labels = p->labp;
    p->ts.n_samples = 3;
    p->ts.samples = p->smpp;
}

static void test_append_timeseries(void **state)
{
    static const char *good[] = {"job", "x", "__name__", "up", "empty", ""};
    static const char *noname[] = {"job", "x"};
    static const char *dup[] = {"__name__", "up", "job", "x", "job", "y"};
    static const char *badname[] = {"__name__", "up", "a-b", "x"};
    pbseries s[4];
    pb_init(&s[0], good, 3, 1000);
    pb_init(&s[1], noname, 1, 1000);
    pb_init(&s[2], dup, 3, 1000);
    pb_init(&s[3], badname, 2, 1000);
    Prometheus__TimeSeries *v[] = {&s[1].ts, &s[0].ts, &s[2].ts, &s[3].ts};
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_append_stats st = {0};
    vg_error err = {0};
    assert_int_equal(vg_tsdb_append_timeseries(db, "default", v, 4, &st, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "__name__")); /* the first problem */
    assert_int_equal(st.series_rejected, 3);
    assert_int_equal(st.samples_appended, 3);
    assert_int_equal(st.series_created, 1);
    char buf[256];
    dump_select(db, "default", NULL, 0, 0, 1e6, buf, sizeof buf);
    assert_string_equal(buf, "__name__=up,job=x|1000:0,2000:1,3000:2\n");
    /* Redelivery of the good series is deduplicated and fully OK. */
    memset(&st, 0, sizeof st);
    vg_err_t rc = vg_tsdb_append_timeseries(db, "default", &v[1], 1, &st, &err);
    if (rc) fail_msg("redelivery: %s", err.msg);
    assert_int_equal(st.samples_deduplicated, 3);
    assert_int_equal(st.samples_appended, 0);
    vg_tsdb_free(db);
}

static void test_self_metrics(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    vg_tsdb_t *db = strict_db(m);
    vg_label_t a[] = {L("__name__", "x")};
    app(db, "t", a, 1, 10, 1, NULL);
    app(db, "t", a, 1, 10, 1, NULL);
    app(db, "t", a, 1, 5, 1, NULL);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_metrics_render(m, &b), VG_OK);
    assert_non_null(strstr(b.data, "vigil_tsdb_head_series 1\n"));
    assert_non_null(strstr(b.data, "vigil_tsdb_samples_appended_total 1\n"));
    assert_non_null(strstr(b.data, "vigil_tsdb_samples_deduplicated_total 1\n"));
    assert_non_null(
        strstr(b.data, "vigil_tsdb_samples_rejected_total{reason=\"out_of_order\"} 1\n"));
    vg_buf_free(&b);
    vg_tsdb_free(db);
    vg_metrics_free(m);
}

/* ---- concurrency ---- */

#define CONC_SAMPLES 3000
#define CONC_SERIES  20

typedef struct conc {
    vg_tsdb_t *db;
    int id;
    int done;
    int bad;
} conc;

static void *appender(void *arg)
{
    conc *c = arg;
    char name[16], inst[16];
    for (int t = 0; t < CONC_SAMPLES; t++) {
        for (int s = 0; s < CONC_SERIES; s++) {
            snprintf(name, sizeof name, "m%d", c->id);
            snprintf(inst, sizeof inst, "i%d", s);
            vg_label_t l[] = {L("__name__", name), L("instance", inst)};
            if (app(c->db, "default", l, 2, t, t, NULL) != VG_OK) c->bad++;
        }
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Every snapshot must be internally consistent: per series, timestamps
 * 0..k-1 in order with value == timestamp, and series sorted. */
static int check_snapshot(vg_tsdb_t *db)
{
    vg_seriesset_t *ss;
    if (vg_tsdb_select(db, "default", NULL, 0, 0, CONC_SAMPLES, &ss, NULL)) return 1;
    int bad = 0;
    while (vg_seriesset_next(ss)) {
        int64_t t, want = 0;
        double v;
        while (vg_seriesset_sample_next(ss, &t, &v)) {
            if (t != want || v != (double)t) bad = 1;
            want++;
        }
    }
    bad |= vg_seriesset_err(ss) != VG_OK;
    vg_seriesset_free(ss);
    return bad;
}

/* vg_head_refs_sorted lists live series in label order whatever their
 * creation order; vg_head_snapshot_refs keeps that order and skips series
 * without a chunk in range and refs removed since (what a block cut needs). */
static void expect_ids(const vg_snap_series *s, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s[i].nlabels, 2);
        assert_int_equal(s[i].labels[1].value[0], want[i]);
    }
}

static void test_refs_sorted(void **state)
{
    (void)state;
    static const char *ids[] = {"c", "a", "d", "b"};
    vg_head_t *h = vg_head_new();
    uint32_t ref[4], *refs = NULL;
    size_t n = 0, ns = 0;
    for (int i = 0; i < 4; i++) {
        vg_label_t l[2] = {L("__name__", "m"), L("id", ids[i])};
        int created = 0;
        vg_append_res res;
        assert_int_equal(vg_head_series(h, l, 2, &ref[i], &created), VG_OK);
        assert_int_equal(vg_head_append(h, ref[i], i == 2 ? 100 : 5000, 1.0, &res), VG_OK);
    }
    assert_int_equal(vg_head_refs_sorted(h, &refs, &n), VG_OK);
    static const int order[] = {1, 3, 0, 2}; /* a b c d */
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) assert_int_equal(refs[i], ref[order[i]]);
    vg_arena_t *a = vg_arena_new(0);
    vg_snap_series *s = NULL;
    assert_int_equal(vg_head_snapshot_refs(h, refs, n, 1000, 10000, a, &s, &ns), VG_OK);
    expect_ids(s, ns, "abc"); /* d has nothing in range */
    assert_int_equal(vg_head_truncate(h, 1000), VG_OK);
    assert_int_equal(vg_head_truncate(h, 1000), VG_OK); /* d, idle and empty, goes */
    vg_arena_reset(a);
    assert_int_equal(vg_head_snapshot_refs(h, refs, n, INT64_MIN, INT64_MAX, a, &s, &ns), VG_OK);
    expect_ids(s, ns, "abc");
    vg_free(refs);
    assert_int_equal(vg_head_refs_sorted(h, &refs, &n), VG_OK);
    assert_int_equal(n, 3);
    vg_free(refs);
    vg_arena_free(a);
    vg_head_free(h);
}

static void test_concurrent_append_select(void **state)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    conc c[2] = {{db, 0, 0, 0}, {db, 1, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, appender, &c[i]);
    int bad = 0, rounds = 0;
    while (!__atomic_load_n(&c[0].done, __ATOMIC_ACQUIRE) ||
           !__atomic_load_n(&c[1].done, __ATOMIC_ACQUIRE)) {
        bad |= check_snapshot(db);
        rounds++;
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_int_equal(bad, 0);
    assert_int_equal(c[0].bad + c[1].bad, 0);
    assert_int_equal(vg_tsdb_num_series(db), 2 * CONC_SERIES);
    assert_int_equal(check_snapshot(db), 0);
    vg_seriesset_t *ss;
    assert_int_equal(vg_tsdb_select(db, "default", NULL, 0, 0, CONC_SAMPLES, &ss, NULL), VG_OK);
    size_t total = 0;
    while (vg_seriesset_next(ss)) {
        int64_t t;
        double v;
        while (vg_seriesset_sample_next(ss, &t, &v)) total++;
    }
    vg_seriesset_free(ss);
    assert_int_equal(total, 2 * CONC_SERIES * CONC_SAMPLES);
    (void)rounds;
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_select), cmocka_unit_test(test_dedup_conflict_ooo),
        cmocka_unit_test(test_validation),        cmocka_unit_test(test_chunk_cut),
        cmocka_unit_test(test_matchers),          cmocka_unit_test(test_label_names_values),
        cmocka_unit_test(test_append_timeseries), cmocka_unit_test(test_self_metrics),
        cmocka_unit_test(test_refs_sorted),       cmocka_unit_test(test_concurrent_append_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
