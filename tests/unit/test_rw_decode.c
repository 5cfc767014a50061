/*
 * test_rw_decode.c - the hand-written WriteRequest decoder: the same structs
 * as protobuf-c's unpack for requests protobuf-c packs (special floats,
 * negative and large timestamps, empty strings, metadata, exemplars), unknown
 * fields skipped at every level, malformed input refused, the budget kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "remotewrite/rw_decode.h"
#include "vigil/alloc.h"

static uint8_t buf[1 << 16];

/* Two series (one with an exemplar), one metadata entry, packed by protobuf-c. */
static size_t pack_request(void)
{
    Prometheus__Label l[5];
    Prometheus__Label *lp[5];
    static const char *kv[5][2] = {
        {"__name__", "up"}, {"job", "node"}, {"instance", ""}, {"__name__", "x"}, {"a", "b"}};
    for (int i = 0; i < 5; i++) {
        prometheus__label__init(&l[i]);
        l[i].name = (char *)kv[i][0];
        l[i].value = (char *)kv[i][1];
        lp[i] = &l[i];
    }
    Prometheus__Sample s[5];
    Prometheus__Sample *sp[5];
    uint64_t stale = 0x7ff0000000000002ull;
    double vals[5] = {1.5, NAN, INFINITY, -0.0, 0};
    memcpy(&vals[4], &stale, sizeof(double));
    int64_t ts[5] = {1700000000000, -5, INT64_MAX, INT64_MIN, 0};
    for (int i = 0; i < 5; i++) {
        prometheus__sample__init(&s[i]);
        s[i].value = vals[i];
        s[i].timestamp = ts[i];
        sp[i] = &s[i];
    }
    Prometheus__Exemplar ex = PROMETHEUS__EXEMPLAR__INIT;
    Prometheus__Exemplar *exp_ = &ex;
    ex.n_labels = 1, ex.labels = &lp[4], ex.value = 2, ex.timestamp = 3;
    Prometheus__TimeSeries t[2], *tp[2] = {&t[0], &t[1]};
    prometheus__time_series__init(&t[0]);
    prometheus__time_series__init(&t[1]);
    t[0].n_labels = 3, t[0].labels = lp, t[0].n_samples = 5, t[0].samples = sp;
    t[1].n_labels = 2, t[1].labels = lp + 3, t[1].n_samples = 1, t[1].samples = sp;
    t[1].n_exemplars = 1, t[1].exemplars = &exp_;
    Prometheus__MetricMetadata md = PROMETHEUS__METRIC_METADATA__INIT, *mdp = &md;
    md.metric_family_name = "up", md.help = "1 if up", md.unit = "";
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_timeseries = 2, wr.timeseries = tp, wr.n_metadata = 1, wr.metadata = &mdp;
    size_t n = prometheus__write_request__get_packed_size(&wr);
    assert_true(n < sizeof(buf));
    return prometheus__write_request__pack(&wr, buf);
}

static void same_as_protobuf_c(const uint8_t *p, size_t n)
{
    vg_arena_t *a = vg_arena_new(0);
    Prometheus__WriteRequest *mine, *ref = prometheus__write_request__unpack(NULL, n, p);
    assert_non_null(ref);
    assert_int_equal(vg_rw_unpack(p, n, a, 1 << 20, &mine), VG_OK);
    assert_int_equal(mine->n_timeseries, ref->n_timeseries);
    assert_int_equal(mine->n_metadata, ref->n_metadata);
    for (size_t i = 0; i < ref->n_metadata; i++)
        assert_string_equal(mine->metadata[i]->help, ref->metadata[i]->help);
    for (size_t i = 0; i < ref->n_timeseries; i++) {
        const Prometheus__TimeSeries *x = mine->timeseries[i], *y = ref->timeseries[i];
        assert_int_equal(x->n_labels, y->n_labels);
        assert_int_equal(x->n_samples, y->n_samples);
        for (size_t j = 0; j < y->n_labels; j++) {
            assert_string_equal(x->labels[j]->name, y->labels[j]->name);
            assert_string_equal(x->labels[j]->value, y->labels[j]->value);
        }
        for (size_t j = 0; j < y->n_samples; j++) {
            assert_memory_equal(&x->samples[j]->value, &y->samples[j]->value, sizeof(double));
            assert_true(x->samples[j]->timestamp == y->samples[j]->timestamp);
        }
    }
    prometheus__write_request__free_unpacked(ref, NULL);
    vg_arena_free(a);
}

static void test_same_structs(void **state)
{
    (void)state;
    size_t n = pack_request();
    same_as_protobuf_c(buf, n);
    vg_arena_t *a = vg_arena_new(0);
    Prometheus__WriteRequest *wr;
    assert_int_equal(vg_rw_unpack(buf, n, a, 1 << 20, &wr), VG_OK);
    assert_int_equal(wr->n_timeseries, 2);
    assert_string_equal(wr->timeseries[0]->labels[2]->value, "");
    assert_int_equal(wr->timeseries[0]->n_exemplars, 0); /* skipped, not decoded */
    assert_true(isnan(wr->timeseries[0]->samples[1]->value));
    vg_arena_free(a);
    /* empty request: no series */
    assert_int_equal(vg_rw_unpack(buf, 0, (a = vg_arena_new(0)), 1 << 20, &wr), VG_OK);
    assert_int_equal(wr->n_timeseries, 0);
    vg_arena_free(a);
}

/* Unknown fields of every wire type, at the top, in a series, a label and a
 * sample, are skipped. */
static void test_unknown_fields(void **state)
{
    (void)state;
    static const uint8_t req[] = {
        0x10, 0x96, 0x01,                    /* field 2 varint */
        0x0a, 0x25,                          /* timeseries, 37 bytes */
        0x0a, 0x12,                          /* label, 18 bytes */
        0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_', /* name */
        0x12, 0x01, 'm',                     /* value */
        0x1d, 1, 2, 3, 4,                    /* field 3, 32-bit: unknown in Label */
        0x12, 0x0d,                          /* sample, 13 bytes */
        0x10, 0x07,                          /* timestamp 7 */
        0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,  /* value 1.0 */
        0x28, 0x00,                          /* field 5 varint: unknown in Sample */
        0x2a, 0x00,                          /* field 5, empty bytes: unknown in TimeSeries */
        0x79, 1, 2, 3, 4, 5, 6, 7, 8,        /* field 15, 64-bit at the top */
    };
    same_as_protobuf_c(req, sizeof(req));
    vg_arena_t *a = vg_arena_new(0);
    Prometheus__WriteRequest *wr;
    assert_int_equal(vg_rw_unpack(req, sizeof(req), a, 1 << 20, &wr), VG_OK);
    assert_int_equal(wr->timeseries[0]->samples[0]->timestamp, 7);
    assert_true(wr->timeseries[0]->samples[0]->value == 1.0);
    assert_string_equal(wr->timeseries[0]->labels[0]->value, "m");
    vg_arena_free(a);
}

static void expect(const uint8_t *p, size_t n, size_t budget, vg_err_t want)
{
    vg_arena_t *a = vg_arena_new(0);
    Prometheus__WriteRequest *wr = (void *)1;
    assert_int_equal(vg_rw_unpack(p, n, a, budget, &wr), want);
    if (want) assert_null(wr);
    vg_arena_free(a);
}

static void test_malformed(void **state)
{
    (void)state;
    static const uint8_t past_end[] = {0x0a, 0x05, 0x0a, 0x00};          /* length past the end */
    static const uint8_t wrong_wt[] = {0x0a, 0x04, 0x12, 0x02, 0x08, 0x01}; /* sample value as varint */
    static const uint8_t group[] = {0x0b, 0x0c};                         /* a group */
    static const uint8_t long_varint[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t field0[] = {0x02, 0x00};
    static const uint8_t label_wt[] = {0x0a, 0x02, 0x08, 0x01};          /* labels as varint */
    expect(past_end, sizeof(past_end), 1 << 20, VG_EPARSE);
    expect(wrong_wt, sizeof(wrong_wt), 1 << 20, VG_EPARSE);
    expect(group, sizeof(group), 1 << 20, VG_EPARSE);
    expect(long_varint, sizeof(long_varint), 1 << 20, VG_EPARSE);
    expect(field0, sizeof(field0), 1 << 20, VG_EPARSE);
    expect(label_wt, sizeof(label_wt), 1 << 20, VG_EPARSE);
    /* Tags as protobuf-c reads them: a longer encoding of field 0 and a field
     * number past 2^29 are unknown fields, skipped (fuzz_rw_decode found the
     * second one accepted by protobuf-c and refused here). */
    static const uint8_t long_tag0[] = {0x82, 0x00, 0x00};
    static const uint8_t huge_field[] = {0x0a, 0x00, 0xfd, 0xff, 0xff, 0xff, 0x3e, 1, 2, 3, 4};
    expect(long_tag0, sizeof(long_tag0), 1 << 20, VG_OK);
    expect(huge_field, sizeof(huge_field), 1 << 20, VG_OK);
    same_as_protobuf_c(huge_field, sizeof(huge_field));
    for (size_t cut = 1; cut < 12; cut++) { /* every truncation of a valid request */
        size_t n = pack_request();
        vg_arena_t *a = vg_arena_new(0);
        Prometheus__WriteRequest *wr;
        vg_err_t rc = vg_rw_unpack(buf, n - cut, a, 1 << 20, &wr);
        assert_true(rc == VG_EPARSE || rc == VG_OK);
        vg_arena_free(a);
    }
}

static void test_budget(void **state)
{
    (void)state;
    size_t n = pack_request();
    expect(buf, n, 64, VG_ETOOLARGE);
    expect(buf, n, 1 << 20, VG_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_structs),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
