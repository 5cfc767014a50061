/*
 * test_scrape_encode.c - the scrape's hand-written TimeSeries bytes.
 *
 * encode.c writes protobuf by hand, so these tests decode its output with
 * protobuf-c (as a MetricBatch, which is what the bytes are the body of)
 * and compare field by field with what went in: label order, the external
 * labels merged at the lowest priority, the exact bits of a staleness NaN,
 * a zero and a negative timestamp, an empty label value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"
#include "vigil/v1/envelope.pb-c.h"

struct got {
    Vigil__V1__MetricBatch *mb;
    size_t calls, nsamples;
};

static vg_err_t on_encoded(void *ud, const void *ts, size_t len, size_t nsamples)
{
    struct got *g = ud;
    g->calls++;
    g->nsamples = nsamples;
    g->mb = vigil__v1__metric_batch__unpack(NULL, len, ts);
    return VG_OK;
}

static void assert_labels(const Prometheus__TimeSeries *ts, const char *const *want, size_t n)
{
    assert_int_equal(ts->n_labels, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(ts->labels[i]->name, want[2 * i]);
        assert_string_equal(ts->labels[i]->value, want[2 * i + 1]);
    }
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    struct got g = {0};
    vg_scrape_sink k = {.emit_enc = on_encoded, .ud = &g};
    vg_label_t ext[] = {{"region", "eu"}, {"cluster", "c1"}, {"job", "from-ext"}};
    assert_int_equal(vg_scrape_encode_set_external(&k, ext, 3), VG_OK);
    vg_label_t a[] = {{"__name__", "up"}, {"instance", "h:1"}, {"job", "node"}};
    vg_label_t b[] = {{"__name__", "x"}, {"le", ""}, {"zone", "z"}};
    double stale;
    uint64_t bits = 0x7ff0000000000002ULL;
    memcpy(&stale, &bits, sizeof stale);
    assert_int_equal(vg_scrape_encode(&k, a, 3, 1700000000123, 1), VG_OK);
    assert_int_equal(vg_scrape_encode(&k, b, 3, 0, stale), VG_OK);
    assert_int_equal(vg_scrape_encode(&k, a, 3, -7, -0.25), VG_OK);
    vg_scrape_encode_flush(&k);
    vg_scrape_encode_flush(&k); /* empty: no call */
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.nsamples, 3);
    assert_int_equal(k.emitted, 3);
    assert_non_null(g.mb);
    assert_int_equal(g.mb->n_timeseries, 3);
    static const char *const wa[] = {"__name__", "up",  "cluster", "c1",     "instance",
                                     "h:1",      "job", "node",    "region", "eu"};
    static const char *const wb[] = {"__name__", "x", "cluster", "c1", "job",  "from-ext",
                                     "le",       "",  "region",  "eu", "zone", "z"};
    assert_labels(g.mb->timeseries[0], wa, 5);
    assert_labels(g.mb->timeseries[1], wb, 6);
    assert_labels(g.mb->timeseries[2], wa, 5);
    Prometheus__Sample *s0 = g.mb->timeseries[0]->samples[0];
    Prometheus__Sample *s1 = g.mb->timeseries[1]->samples[0];
    Prometheus__Sample *s2 = g.mb->timeseries[2]->samples[0];
    assert_int_equal(s0->timestamp, 1700000000123);
    assert_true(s0->value == 1);
    assert_int_equal(s1->timestamp, 0);
    uint64_t got;
    memcpy(&got, &s1->value, sizeof got);
    assert_int_equal(got, bits);
    assert_int_equal(s2->timestamp, -7);
    assert_true(s2->value == -0.25);
    vigil__v1__metric_batch__free_unpacked(g.mb, NULL);
    vg_scrape_encode_destroy(&k);
}

/* No external labels: the labels go out exactly as given. */
static void test_encode_no_external(void **state)
{
    (void)state;
    struct got g = {0};
    vg_scrape_sink k = {.emit_enc = on_encoded, .ud = &g};
    assert_int_equal(vg_scrape_encode_set_external(&k, NULL, 0), VG_OK);
    char longv[300];
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    vg_label_t a[] = {{"__name__", "m"}, {"big", longv}};
    assert_int_equal(vg_scrape_encode(&k, a, 2, 5, 0), VG_OK);
    vg_scrape_encode_flush(&k);
    assert_non_null(g.mb);
    static const char *const wa[] = {"__name__", "m", "big", NULL};
    assert_int_equal(g.mb->timeseries[0]->n_labels, 2);
    assert_string_equal(g.mb->timeseries[0]->labels[0]->value, wa[1]);
    assert_string_equal(g.mb->timeseries[0]->labels[1]->value, longv);
    assert_true(g.mb->timeseries[0]->samples[0]->value == 0);
    vigil__v1__metric_batch__free_unpacked(g.mb, NULL);
    vg_scrape_encode_destroy(&k);
}

struct raw {
    char *data;
    size_t len, calls;
};

static vg_err_t on_raw(void *ud, const void *ts, size_t len, size_t nsamples)
{
    struct raw *r = ud;
    (void)nsamples;
    r->data = vg_malloc(len ? len : 1);
    if (r->data) memcpy(r->data, ts, len);
    r->len = len;
    r->calls++;
    return VG_OK;
}

static vg_scrape_label sl(const char *n, const char *v)
{
    return (vg_scrape_label){n, v, strlen(n), strlen(v)};
}

/* A staged record encodes to the same bytes as its labels given one by one,
 * with external labels whose names are prefixes of the sample's, equal to
 * them, before, between and after them, and empty values (last one too). */
static void test_encode_rec_same_bytes(void **state)
{
    (void)state;
    vg_label_t ext[] = {{"a", "1"}, {"job", "from-ext"}, {"jo", "p"}, {"zz", "9"}, {"jobx", "q"}};
    vg_scrape_label sets[][4] = {
        {sl("__name__", "up"), sl("instance", "h:1"), sl("job", "node"), sl("le", "")},
        {sl("__name__", "x"), sl("ab", ""), sl("jobxy", "v"), sl("zzz", "")},
        {sl("__name__", "m"), sl("a", "own"), sl("b", "c"), sl("zz", "mine")},
    };
    for (size_t next = 0; next <= 5; next += 5) {
        struct raw want = {0}, got = {0};
        vg_scrape_sink kw = {.emit_enc = on_raw, .ud = &want};
        vg_scrape_sink kg = {.emit_enc = on_raw, .ud = &got};
        assert_int_equal(vg_scrape_encode_set_external(&kw, ext, next), VG_OK);
        assert_int_equal(vg_scrape_encode_set_external(&kg, ext, next), VG_OK);
        vg_scrape_stage st;
        assert_int_equal(vg_scrape_stage_init(&st), VG_OK);
        for (size_t i = 0; i < 3; i++) {
            vg_label_t l[4];
            for (size_t j = 0; j < 4; j++) l[j] = (vg_label_t){sets[i][j].name, sets[i][j].value};
            int64_t ts = i == 1 ? 0 : 1700000000000 + (int64_t)i;
            assert_int_equal(vg_scrape_encode(&kw, l, 4, ts, 0.5 * (double)i), VG_OK);
            uint32_t rec = vg_scrape_stage_add(&st, sets[i], 4, ts, 0.5 * (double)i, 0);
            assert_int_not_equal(rec, UINT32_MAX);
            assert_int_equal(vg_scrape_encode_rec(&kg, vg_scrape_stage_rec(&st, rec)), VG_OK);
        }
        vg_scrape_encode_flush(&kw);
        vg_scrape_encode_flush(&kg);
        assert_int_equal(got.calls, 1);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.data, want.data, want.len);
        vg_free(want.data);
        vg_free(got.data);
        vg_scrape_stage_destroy(&st);
        vg_scrape_encode_destroy(&kw);
        vg_scrape_encode_destroy(&kg);
    }
}

/* The consumer's buffer, for the into pair; refuse makes begin say no. */
struct into {
    vg_buf buf;
    int refuse, held;
    size_t len, nsamples, ends;
    struct raw fell; /* what emit_encoded got after a refusal */
};

static vg_buf *into_begin(void *ud)
{
    struct into *in = ud;
    if (in->refuse) return NULL;
    in->held = 1;
    return &in->buf;
}

static void into_end(void *ud, size_t len, size_t nsamples)
{
    struct into *in = ud;
    in->held = 0;
    in->len = len;
    in->nsamples = nsamples;
    in->ends++;
}

static vg_err_t into_raw(void *ud, const void *ts, size_t len, size_t nsamples)
{
    return on_raw(&((struct into *)ud)->fell, ts, len, nsamples);
}

/* Encoding into the consumer's buffer appends exactly the bytes the
 * emit_encoded callback would get, after what the buffer held; refused,
 * the scrape goes through emit_encoded. */
static void test_encode_into_same_bytes(void **state)
{
    (void)state;
    vg_label_t ext[] = {{"a", "1"}, {"zz", "9"}};
    vg_scrape_label set[] = {sl("__name__", "m"), sl("b", "c"), sl("zz", "mine")};
    vg_label_t rep[] = {{"__name__", "up"}, {"instance", "h:1"}};
    for (int refuse = 0; refuse <= 1; refuse++) {
        struct into in[1];
        struct raw want = {0}, *fell = &in[0].fell;
        memset(in, 0, sizeof in);
        in[0].refuse = refuse;
        vg_buf_init(&in[0].buf, 0);
        assert_int_equal(vg_buf_append(&in[0].buf, "prefix", 6), VG_OK);
        vg_scrape_sink kw = {.emit_enc = on_raw, .ud = &want};
        vg_scrape_sink ki = {.emit_enc = into_raw, .ud = in};
        ki.into_begin = into_begin;
        ki.into_end = into_end;
        assert_int_equal(vg_scrape_encode_set_external(&kw, ext, 2), VG_OK);
        assert_int_equal(vg_scrape_encode_set_external(&ki, ext, 2), VG_OK);
        vg_scrape_stage st;
        assert_int_equal(vg_scrape_stage_init(&st), VG_OK);
        uint32_t rec = vg_scrape_stage_add(&st, set, 3, 1700000000000, 2.5, 0);
        assert_int_not_equal(rec, UINT32_MAX);
        vg_scrape_encode_begin(&ki);
        assert_int_equal(in[0].held, !refuse);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(vg_scrape_encode_rec(&kw, vg_scrape_stage_rec(&st, rec)), VG_OK);
            assert_int_equal(vg_scrape_encode_rec(&ki, vg_scrape_stage_rec(&st, rec)), VG_OK);
        }
        assert_int_equal(vg_scrape_encode(&kw, rep, 2, 1700000000000, 1), VG_OK);
        assert_int_equal(vg_scrape_encode(&ki, rep, 2, 1700000000000, 1), VG_OK);
        vg_scrape_encode_flush(&kw);
        vg_scrape_encode_flush(&ki);
        assert_int_equal(in[0].held, 0);
        assert_int_equal(ki.emitted, 3);
        if (refuse) {
            assert_int_equal(in[0].ends, 0);
            assert_int_equal(fell->len, want.len);
            assert_memory_equal(fell->data, want.data, want.len);
            vg_free(fell->data);
        } else {
            assert_int_equal(in[0].ends, 1);
            assert_int_equal(in[0].nsamples, 3);
            assert_int_equal(in[0].len, want.len);
            assert_int_equal(in[0].buf.len, 6 + want.len);
            assert_memory_equal(in[0].buf.data, "prefix", 6);
            assert_memory_equal(in[0].buf.data + 6, want.data, want.len);
            assert_int_equal(ki.enc.len, 0); /* our own buffer is back, empty */
        }
        vg_free(want.data);
        vg_buf_free(&in[0].buf);
        vg_scrape_stage_destroy(&st);
        vg_scrape_encode_destroy(&kw);
        vg_scrape_encode_destroy(&ki);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_roundtrip),
        cmocka_unit_test(test_encode_no_external),
        cmocka_unit_test(test_encode_rec_same_bytes),
        cmocka_unit_test(test_encode_into_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
