/*
 * test_remotewrite.c - the remote-write 1.0 receiver: header checks (415
 * before decoding), snappy and protobuf errors, label sorting, series
 * refusals (no __name__, repeated names), NaN/±Inf/stale NaN kept bit for
 * bit, duplicates and out-of-order samples, tenants, self-metrics, and the
 * HTTP glue (status and X-Prometheus-Remote-Write-Samples-Written).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remotewrite/receiver.h"
#include "vigil/alloc.h"
#include "vigil/httpc.h"

#define T0   INT64_C(1700000000000)
#define CT   "application/x-protobuf"
#define SNAP "snappy"

/* ---- building requests ---- */

typedef struct series_spec {
    const char *labels[12]; /* name, value, name, value, ..., NULL */
    double values[4];
    int64_t ts[4];
    size_t n;
} series_spec;

/* Pack and snappy-compress a WriteRequest of the given series; *len gets the size. */
static uint8_t *build(const series_spec *s, size_t ns, size_t *len)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries ts[8], *tsp[8];
    Prometheus__Label lb[8][6], *lbp[8][6];
    Prometheus__Sample sm[8][4], *smp[8][4];
    assert_true(ns <= 8);
    for (size_t i = 0; i < ns; i++) {
        prometheus__time_series__init(&ts[i]);
        size_t nl = 0;
        while (s[i].labels[2 * nl]) {
            prometheus__label__init(&lb[i][nl]);
            lb[i][nl].name = (char *)s[i].labels[2 * nl];
            lb[i][nl].value = (char *)s[i].labels[2 * nl + 1];
            lbp[i][nl] = &lb[i][nl];
            nl++;
        }
        for (size_t k = 0; k < s[i].n; k++) {
            prometheus__sample__init(&sm[i][k]);
            sm[i][k].value = s[i].values[k];
            sm[i][k].timestamp = s[i].ts[k];
            smp[i][k] = &sm[i][k];
        }
        ts[i].labels = lbp[i];
        ts[i].n_labels = nl;
        ts[i].samples = smp[i];
        ts[i].n_samples = s[i].n;
        tsp[i] = &ts[i];
    }
    wr.timeseries = tsp;
    wr.n_timeseries = ns;
    size_t raw_len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *raw = malloc(raw_len + 1);
    prometheus__write_request__pack(&wr, raw);
    size_t zlen = snappy_max_compressed_length(raw_len);
    uint8_t *z = malloc(zlen);
    assert_int_equal(snappy_compress((char *)raw, raw_len, (char *)z, &zlen), SNAPPY_OK);
    free(raw);
    *len = zlen;
    return z;
}

typedef struct fx {
    vg_metrics_t *m;
    vg_tsdb_t *db;
    vg_rw_receiver_t *r;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->m = vg_metrics_new();
    f->db = vg_tsdb_new(f->m);
    f->r = vg_rw_receiver_new(f->db, f->m, NULL);
    *state = f;
    return f->r ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    vg_rw_receiver_free(f->r);
    vg_tsdb_free(f->db);
    vg_metrics_free(f->m);
    free(f);
    return 0;
}

static vg_rw_result send(fx *f, const char *tenant, const series_spec *s, size_t ns)
{
    size_t len;
    uint8_t *z = build(s, ns, &len);
    vg_rw_result res;
    vg_rw_handle(f->r, CT, SNAP, tenant, z, len, &res);
    free(z);
    return res;
}

/* Samples of the one series named name in tenant; returns the count. */
static size_t read_series(fx *f, const char *tenant, const char *name, char *labels, size_t cap,
                          double *vals, int64_t *ts, size_t max)
{
    vg_matcher_t *m;
    vg_seriesset_t *ss;
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, "__name__", name, &m, NULL), VG_OK);
    assert_int_equal(vg_tsdb_select(f->db, tenant, &m, 1, 0, INT64_MAX, &ss, NULL), VG_OK);
    vg_matcher_free(m);
    size_t n = 0;
    if (vg_seriesset_next(ss)) {
        size_t nl;
        const vg_label_t *l = vg_seriesset_labels(ss, &nl);
        vg_buf b;
        vg_buf_init(&b, 1024);
        vg_labels_format(l, nl, &b);
        snprintf(labels, cap, "%s", b.data ? b.data : "");
        vg_buf_free(&b);
        while (n < max && vg_seriesset_sample_next(ss, &ts[n], &vals[n])) n++;
        assert_int_equal(vg_seriesset_next(ss), 0);
    }
    vg_seriesset_free(ss);
    return n;
}

static int metrics_have(fx *f, const char *line)
{
    vg_buf b;
    vg_buf_init(&b, 1 << 20);
    assert_int_equal(vg_metrics_render(f->m, &b), VG_OK);
    int found = b.data && strstr(b.data, line) != NULL;
    if (!found) fprintf(stderr, "missing metric line: %s\n", line);
    vg_buf_free(&b);
    return found;
}

/* ---- tests ---- */

static void test_headers(void **state)
{
    (void)state;
    assert_true(vg_rw_headers_ok(CT, SNAP));
    assert_true(vg_rw_headers_ok("Application/X-Protobuf", "Snappy"));
    assert_true(vg_rw_headers_ok("application/x-protobuf;proto=prometheus.WriteRequest", "snappy"));
    assert_true(vg_rw_headers_ok("application/x-protobuf; charset=binary", " snappy "));
    assert_false(vg_rw_headers_ok(NULL, SNAP));
    assert_false(vg_rw_headers_ok(CT, NULL));
    assert_false(vg_rw_headers_ok("application/json", SNAP));
    assert_false(vg_rw_headers_ok("application/x-protobuffer", SNAP));
    assert_false(vg_rw_headers_ok(CT, "gzip"));
    assert_false(vg_rw_headers_ok(CT, "zstd"));
    assert_false(
        vg_rw_headers_ok("application/x-protobuf;proto=io.prometheus.write.v2.Request", SNAP));
}

/* A wrong header is refused before the body is looked at: garbage gets 415. */
static void test_415_before_decoding(void **state)
{
    fx *f = *state;
    vg_rw_result res;
    static const uint8_t junk[] = "not snappy at all";
    vg_rw_handle(f->r, "application/json", SNAP, NULL, junk, sizeof(junk), &res);
    assert_int_equal(res.status, 415);
    vg_rw_handle(f->r, CT, "gzip", NULL, junk, sizeof(junk), &res);
    assert_int_equal(res.status, 415);
    vg_rw_handle(f->r, NULL, NULL, NULL, junk, sizeof(junk), &res);
    assert_int_equal(res.status, 415);
    vg_rw_handle(f->r, CT, SNAP, NULL, junk, sizeof(junk), &res);
    assert_int_equal(res.status, 400);
    assert_true(metrics_have(
        f, "vigil_remote_write_requests_rejected_total{reason=\"unsupported_media_type\"} 3"));
    assert_true(
        metrics_have(f, "vigil_remote_write_requests_rejected_total{reason=\"bad_snappy\"} 1"));
}

static void test_success_sorts_labels(void **state)
{
    fx *f = *state;
    series_spec s[] = {
        {{"job", "node", "instance", "a:9100", "__name__", "up", NULL},
         {1, 0},
         {T0, T0 + 15000},
         2},
        {{"__name__", "load1", "zone", "b", "host", "h1", NULL}, {0.5}, {T0}, 1},
    };
    vg_rw_result res = send(f, NULL, s, 2);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.samples_written, 3);
    assert_int_equal(res.samples_received, 3);
    char labels[256];
    double v[4];
    int64_t ts[4];
    assert_int_equal(read_series(f, "default", "up", labels, sizeof labels, v, ts, 4), 2);
    assert_string_equal(labels, "up{instance=\"a:9100\",job=\"node\"}");
    assert_true(v[0] == 1 && v[1] == 0 && ts[1] == T0 + 15000);
    assert_int_equal(read_series(f, "default", "load1", labels, sizeof labels, v, ts, 4), 1);
    assert_string_equal(labels, "load1{host=\"h1\",zone=\"b\"}");
    assert_true(metrics_have(f, "vigil_remote_write_samples_appended_total 3"));
    assert_true(metrics_have(f, "vigil_remote_write_samples_received_total 3"));
}

static void test_bad_snappy_and_protobuf(void **state)
{
    fx *f = *state;
    vg_rw_result res;
    /* a valid snappy block around bytes that are not a WriteRequest */
    const char bad_pb[] = "\x0a\xff\xff\xff\xff\x0f";
    char z[64];
    size_t zl = sizeof(z);
    assert_int_equal(snappy_compress(bad_pb, sizeof(bad_pb) - 1, z, &zl), SNAPPY_OK);
    vg_rw_handle(f->r, CT, SNAP, NULL, (const uint8_t *)z, zl, &res);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.msg, "protobuf"));
    /* a snappy header announcing more than the block holds */
    static const uint8_t trunc[] = {0x40, 0x00, 'a', 'b'};
    vg_rw_handle(f->r, CT, SNAP, NULL, trunc, sizeof trunc, &res);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.msg, "snappy"));
    /* an empty body is a snappy error too */
    vg_rw_handle(f->r, CT, SNAP, NULL, NULL, 0, &res);
    assert_int_equal(res.status, 400);
    assert_true(
        metrics_have(f, "vigil_remote_write_requests_rejected_total{reason=\"bad_protobuf\"} 1"));
}

/* A header that announces a huge body is refused before anything is allocated. */
static void test_decoded_size_cap(void **state)
{
    fx *f = *state;
    vg_rw_result res;
    /* varint 0xffffffff: 4 GiB announced in 5 bytes */
    static const uint8_t bomb[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    vg_rw_handle(f->r, CT, SNAP, NULL, bomb, sizeof bomb, &res);
    assert_int_equal(res.status, 413);
    vg_rw_opts o = {.max_decoded = 16};
    vg_rw_receiver_t *small = vg_rw_receiver_new(f->db, NULL, &o);
    series_spec s[] = {{{"__name__", "a_long_metric_name_here", NULL}, {1}, {T0}, 1}};
    size_t len;
    uint8_t *z = build(s, 1, &len);
    vg_rw_handle(small, CT, SNAP, NULL, z, len, &res);
    assert_int_equal(res.status, 413);
    free(z);
    vg_rw_receiver_free(small);
}

static void test_no_name_and_repeated_labels(void **state)
{
    fx *f = *state;
    series_spec s[] = {
        {{"job", "x", NULL}, {1}, {T0}, 1},
        {{"__name__", "", "job", "x", NULL}, {1}, {T0}, 1},
        {{"__name__", "dup", "job", "a", "job", "b", NULL}, {1, 2}, {T0, T0 + 1}, 2},
        {{"__name__", "good", "job", "x", NULL}, {5}, {T0}, 1},
    };
    vg_rw_result res = send(f, NULL, s, 4);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.msg, "__name__"));
    assert_int_equal(res.samples_written, 1); /* the valid series is still stored */
    char labels[128];
    double v[2];
    int64_t ts[2];
    assert_int_equal(read_series(f, "default", "good", labels, sizeof labels, v, ts, 2), 1);
    assert_int_equal(read_series(f, "default", "dup", labels, sizeof labels, v, ts, 2), 0);
    assert_true(
        metrics_have(f, "vigil_remote_write_samples_rejected_total{reason=\"no_metric_name\"} 2"));
    assert_true(metrics_have(
        f, "vigil_remote_write_samples_rejected_total{reason=\"duplicate_label_name\"} 2"));
    vg_error e = {0};
    Prometheus__TimeSeries t = PROMETHEUS__TIME_SERIES__INIT;
    Prometheus__Label a = PROMETHEUS__LABEL__INIT, b = PROMETHEUS__LABEL__INIT;
    Prometheus__Label *lp[] = {&a, &b};
    a.name = "__name__", a.value = "m", b.name = "__name__", b.value = "m";
    t.labels = lp, t.n_labels = 2;
    assert_int_equal(vg_rw_check_series(&t, &e), VG_RW_SERIES_DUPLICATE_NAME);
    assert_non_null(strstr(e.msg, "more than once"));
}

/* An invalid label name is refused by the store; counted as invalid_labels. */
static void test_invalid_label_name(void **state)
{
    fx *f = *state;
    series_spec s[] = {{{"__name__", "m", "bad-name", "x", NULL}, {1}, {T0}, 1}};
    vg_rw_result res = send(f, NULL, s, 1);
    assert_int_equal(res.status, 400);
    assert_true(
        metrics_have(f, "vigil_remote_write_samples_rejected_total{reason=\"invalid_labels\"} 1"));
}

static void test_nan_inf_stale(void **state)
{
    fx *f = *state;
    uint64_t sb = 0x7ff0000000000002ull;
    double stale;
    memcpy(&stale, &sb, sizeof stale);
    series_spec s[] = {{{"__name__", "odd", NULL},
                        {NAN, INFINITY, -INFINITY, stale},
                        {T0, T0 + 1000, T0 + 2000, T0 + 3000},
                        4}};
    vg_rw_result res = send(f, NULL, s, 1);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.samples_written, 4);
    char labels[64];
    double v[4];
    int64_t ts[4];
    assert_int_equal(read_series(f, "default", "odd", labels, sizeof labels, v, ts, 4), 4);
    assert_true(isnan(v[0]));
    assert_true(isinf(v[1]) && v[1] > 0);
    assert_true(isinf(v[2]) && v[2] < 0);
    uint64_t got;
    memcpy(&got, &v[3], sizeof got);
    assert_true(got == sb);
    /* resending the same NaN/stale samples is a no-op, not a conflict */
    res = send(f, NULL, s, 1);
    assert_int_equal(res.status, 204);
    assert_int_equal(res.samples_written, 4);
}

static void test_duplicates_and_out_of_order(void **state)
{
    fx *f = *state;
    series_spec s[] = {{{"__name__", "c", NULL}, {1, 2}, {T0, T0 + 1000}, 2}};
    assert_int_equal(send(f, NULL, s, 1).status, 204);
    vg_rw_result res = send(f, NULL, s, 1); /* a retry of the same data */
    assert_int_equal(res.status, 204);
    assert_int_equal(res.samples_written, 2);
    series_spec conflict[] = {{{"__name__", "c", NULL}, {3}, {T0 + 1000}, 1}};
    res = send(f, NULL, conflict, 1);
    assert_int_equal(res.status, 400);
    assert_non_null(strstr(res.msg, "duplicate sample"));
    /* Older than the newest sample minus the out-of-order window (10m): out of bounds. */
    series_spec ooo[] = {{{"__name__", "c", NULL}, {0.5}, {T0 - 3600000}, 1}};
    res = send(f, NULL, ooo, 1);
    assert_int_equal(res.status, 400);
    assert_true(metrics_have(
        f, "vigil_remote_write_samples_rejected_total{reason=\"duplicate_timestamp\"} 1"));
    assert_true(
        metrics_have(f, "vigil_remote_write_samples_rejected_total{reason=\"out_of_order\"} 1"));
    assert_true(metrics_have(f, "vigil_remote_write_samples_deduplicated_total 2"));
}

static void test_tenants(void **state)
{
    fx *f = *state;
    series_spec s[] = {{{"__name__", "t", NULL}, {7}, {T0}, 1}};
    assert_int_equal(send(f, "team-a", s, 1).status, 204);
    char labels[64];
    double v[1];
    int64_t ts[1];
    assert_int_equal(read_series(f, "team-a", "t", labels, sizeof labels, v, ts, 1), 1);
    assert_int_equal(read_series(f, "default", "t", labels, sizeof labels, v, ts, 1), 0);
    assert_int_equal(send(f, "", s, 1).status, 204);
    assert_int_equal(read_series(f, "default", "t", labels, sizeof labels, v, ts, 1), 1);
    assert_int_equal(send(f, "bad tenant!", s, 1).status, 400);
}

/* Through a real HTTP server: status, headers and the route. */
static void test_http(void **state)
{
    fx *f = *state;
    vg_httpd_opts o = {.listen = "127.0.0.1:0"};
    vg_httpd_t *h = vg_httpd_new(&o);
    assert_int_equal(vg_rw_receiver_register(f->r, h), VG_OK);
    assert_int_equal(vg_httpd_start(h, NULL), VG_OK);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api/v1/write", vg_httpd_port(h));
    series_spec s[] = {{{"__name__", "h", "a", "1", NULL}, {1, 2, 3}, {T0, T0 + 1, T0 + 2}, 3}};
    size_t len;
    uint8_t *z = build(s, 1, &len);
    const char *hdr[] = {"Content-Type: application/x-protobuf", "Content-Encoding: snappy",
                         "X-Prometheus-Remote-Write-Version: 0.1.0", NULL};
    const char *bad[] = {"Content-Type: application/x-protobuf", "Content-Encoding: zstd", NULL};
    vg_httpc_t *c = vg_httpc_new();
    vg_buf rh, body;
    vg_buf_init(&rh, 1 << 16);
    vg_buf_init(&body, 1 << 16);
    int status = 0;
    vg_httpc_req req = {
        .url = url, .headers = hdr, .body = z, .body_len = len, .resp_headers = &rh};
    assert_int_equal(vg_httpc_do(c, &req, &status, &body, NULL), VG_OK);
    assert_int_equal(status, 204);
    char val[32];
    assert_true(vg_httpc_header(&rh, "X-Prometheus-Remote-Write-Samples-Written", val, sizeof val));
    assert_string_equal(val, "3");
    req.headers = bad;
    vg_buf_reset(&rh);
    assert_int_equal(vg_httpc_do(c, &req, &status, &body, NULL), VG_OK);
    assert_int_equal(status, 415);
    vg_buf_free(&rh);
    vg_buf_free(&body);
    vg_httpc_free(c);
    vg_httpd_free(h);
    free(z);
}

/* Every allocation failure ends in a clean 500 (or an earlier refusal), never a leak. */
static void test_alloc_failures(void **state)
{
    fx *f = *state;
    series_spec s[] = {{{"__name__", "af", "x", "y", NULL}, {1}, {T0}, 1}};
    size_t len;
    uint8_t *z = build(s, 1, &len);
    for (int n = 1; n < 40; n++) {
        vg_rw_result res;
        vg_alloc_fail_after(n);
        vg_rw_handle(f->r, CT, SNAP, NULL, z, len, &res);
        vg_alloc_fail_after(0);
        assert_true(res.status == 204 || res.status == 500);
    }
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test_setup_teardown(test_415_before_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_sorts_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_snappy_and_protobuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoded_size_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_name_and_repeated_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_label_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nan_inf_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
