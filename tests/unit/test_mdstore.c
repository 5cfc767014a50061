/*
 * test_mdstore.c - the metric metadata table (collector/metadata) and
 * GET /api/v1/metadata over it: distinct entries per name, the per-metric
 * and per-tenant caps, the ttl, tenants kept apart, the file surviving a
 * reopen (and a corrupt one refused without failing), and the API's
 * parameters with Prometheus's messages and limit semantics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "metadata/mdstore.h"
#include "prometheus/remote.pb-c.h"
#include "vigil/clock.h"

#define T0 INT64_C(1700000000000)
#define C  PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER
#define G  PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE
#define H  PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM

static Prometheus__MetricMetadata mk(int type, const char *name, const char *help, const char *unit)
{
    Prometheus__MetricMetadata m;
    prometheus__metric_metadata__init(&m);
    m.type = (Prometheus__MetricMetadata__MetricType)type;
    m.metric_family_name = (char *)name;
    m.help = (char *)help;
    m.unit = (char *)unit;
    return m;
}

static size_t add(vg_mdstore_t *md, const char *tenant, Prometheus__MetricMetadata *m, size_t n,
                  int64_t now)
{
    const Prometheus__MetricMetadata *p[16];
    for (size_t i = 0; i < n; i++) p[i] = &m[i];
    return vg_mdstore_add(md, tenant, p, n, now);
}

static void expect_json(vg_mdstore_t *md, const char *tenant, const char *metric, long long limit,
                        long long per, int64_t now, const char *want)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_mdstore_json(md, tenant, metric, limit, per, now, &b), VG_OK);
    if (strcmp(b.data, want) != 0) fail_msg(" got: %s\nwant: %s", b.data, want);
    vg_buf_free(&b);
}

static void test_distinct_and_sorted(void **state)
{
    (void)state;
    vg_mdstore_t *md;
    assert_int_equal(vg_mdstore_open(NULL, NULL, &md, NULL), VG_OK);
    Prometheus__MetricMetadata m[] = {
        mk(G, "up", "Whether the target is up.", ""),
        mk(C, "http_requests_total", "Requests \"served\".\nBy code.", ""),
        mk(G, "up", "Whether the target is up.", ""), /* repeat: not new */
        mk(H, "req_duration", "Latency.", "seconds"),
    };
    assert_int_equal(add(md, NULL, m, 4, T0), 3);
    assert_int_equal(add(md, "default", m, 4, T0 + 1), 0);
    expect_json(
        md, "default", NULL, -1, -1, T0 + 2,
        "{\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"Requests "
        "\\\"served\\\".\\nBy code.\",\"unit\":\"\"}],"
        "\"req_duration\":[{\"type\":\"histogram\",\"help\":\"Latency.\",\"unit\":"
        "\"seconds\"}],"
        "\"up\":[{\"type\":\"gauge\",\"help\":\"Whether the target is up.\",\"unit\":\"\"}]}");
    /* A second HELP for the same name is a second entry. */
    Prometheus__MetricMetadata up2 = mk(G, "up", "Up, from another exporter.", "");
    assert_int_equal(add(md, NULL, &up2, 1, T0 + 3), 1);
    expect_json(
        md, "default", "up", -1, -1, T0 + 4,
        "{\"up\":[{\"type\":\"gauge\",\"help\":\"Whether the target is up.\",\"unit\":\"\"},"
        "{\"type\":\"gauge\",\"help\":\"Up, from another exporter.\",\"unit\":\"\"}]}");
    expect_json(
        md, "default", "up", -1, 1, T0 + 4,
        "{\"up\":[{\"type\":\"gauge\",\"help\":\"Whether the target is up.\",\"unit\":\"\"}]}");
    expect_json(md, "default", NULL, 1, -1, T0 + 4,
                "{\"http_requests_total\":[{\"type\":\"counter\",\"help\":\"Requests "
                "\\\"served\\\".\\nBy code.\",\"unit\":\"\"}]}");
    expect_json(md, "default", NULL, 0, -1, T0 + 4, "{}");
    expect_json(md, "default", "nope", -1, -1, T0 + 4, "{}");
    expect_json(md, "team-b", NULL, -1, -1, T0 + 4, "{}");
    vg_mdstore_free(md);
}

static void test_caps_and_ttl(void **state)
{
    (void)state;
    vg_mdstore_t *md;
    vg_mdstore_opts o = {.max_entries = 3, .max_per_metric = 2, .ttl_ms = 600000};
    assert_int_equal(vg_mdstore_open(&o, NULL, &md, NULL), VG_OK);
    Prometheus__MetricMetadata a[] = {mk(C, "a", "one", ""), mk(C, "a", "two", "")};
    assert_int_equal(add(md, NULL, a, 2, T0), 2);
    /* A third distinct entry for "a" evicts the least recently seen ("one"). */
    Prometheus__MetricMetadata a3 = mk(C, "a", "three", "");
    assert_int_equal(add(md, NULL, &a[1], 1, T0 + 10), 0); /* "two" seen again */
    assert_int_equal(add(md, NULL, &a3, 1, T0 + 20), 1);
    expect_json(md, "default", NULL, -1, -1, T0 + 30,
                "{\"a\":[{\"type\":\"counter\",\"help\":\"three\",\"unit\":\"\"},"
                "{\"type\":\"counter\",\"help\":\"two\",\"unit\":\"\"}]}");
    /* The tenant cap: one more fits, the next is dropped. */
    Prometheus__MetricMetadata bc[] = {mk(G, "b", "", ""), mk(G, "c", "", "")};
    assert_int_equal(add(md, NULL, bc, 2, T0 + 40), 1);
    assert_int_equal(vg_mdstore_count(md, "default"), 3);
    /* Bad entries are skipped. */
    Prometheus__MetricMetadata bad[] = {mk(G, "", "x", ""), mk(G, NULL, "x", ""),
                                        mk(G, "x", "bad \xc3(", ""), mk(G, "x", "\xed\xa0\x80", ""),
                                        mk(G, "x", "", "\xf4\x90\x80\x80")};
    assert_int_equal(add(md, "t2", bad, 5, T0 + 50), 0);
    Prometheus__MetricMetadata good = mk(G, "x", "caf\xc3\xa9 \xf0\x9f\x98\x80", "");
    assert_int_equal(add(md, "t3", &good, 1, T0 + 50), 1);
    assert_int_equal(vg_mdstore_count(md, "t2"), 0);
    /* Past the ttl entries are not listed, and pruned on a later add. */
    expect_json(md, "default", NULL, -1, -1, T0 + 40 + 600001, "{}");
    Prometheus__MetricMetadata d = mk(G, "d", "", "");
    assert_int_equal(add(md, NULL, &d, 1, T0 + 700000), 1);
    assert_int_equal(vg_mdstore_count(md, "default"), 1);
    vg_mdstore_free(md);
}

static void test_file_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_mdstore.XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/metadata", dir);
    vg_mdstore_opts o = {.path = path};
    vg_mdstore_t *md;
    assert_int_equal(vg_mdstore_open(&o, NULL, &md, NULL), VG_OK);
    Prometheus__MetricMetadata m[] = {mk(C, "x_total", "X.", ""), mk(G, "y", "Y.", "bytes")};
    add(md, "team-a", m, 2, vg_clock_wall_ms());
    add(md, "team-b", m + 1, 1, vg_clock_wall_ms());
    vg_mdstore_free(md);
    assert_int_equal(vg_mdstore_open(&o, NULL, &md, NULL), VG_OK);
    assert_int_equal(vg_mdstore_count(md, "team-a"), 2);
    assert_int_equal(vg_mdstore_count(md, "team-b"), 1);
    expect_json(md, "team-b", NULL, -1, -1, vg_clock_wall_ms(),
                "{\"y\":[{\"type\":\"gauge\",\"help\":\"Y.\",\"unit\":\"bytes\"}]}");
    vg_mdstore_free(md);
    /* A corrupt file: opened empty, and replaced on the next change. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 20, SEEK_SET);
    fputc('!', f);
    fclose(f);
    assert_int_equal(vg_mdstore_open(&o, NULL, &md, NULL), VG_OK);
    assert_int_equal(vg_mdstore_count(md, "team-a") + vg_mdstore_count(md, "team-b"), 0);
    add(md, "team-a", m, 1, vg_clock_wall_ms());
    vg_mdstore_free(md);
    assert_int_equal(vg_mdstore_open(&o, NULL, &md, NULL), VG_OK);
    assert_int_equal(vg_mdstore_count(md, "team-a"), 1);
    vg_mdstore_free(md);
    unlink(path);
    rmdir(dir);
}

/* What remote_write sends: every live entry, per tenant, at most per a request. */
static void test_write_requests(void **state)
{
    (void)state;
    vg_mdstore_t *md;
    assert_int_equal(vg_mdstore_open(NULL, NULL, &md, NULL), VG_OK);
    Prometheus__MetricMetadata m[] = {mk(C, "a", "A.", ""), mk(G, "b", "B.", "bytes"),
                                      mk(G, "b", "B2.", ""), mk(H, "c", "", "seconds"),
                                      mk(G, "d", "", "")};
    add(md, NULL, m, 5, T0);
    add(md, "team-b", m, 1, T0);
    vg_mdstore_wr *w;
    size_t n;
    assert_int_equal(vg_mdstore_write_requests(md, T0 + 1, 2, &w, &n), VG_OK);
    size_t per_tenant[2] = {0}, reqs[2] = {0};
    for (size_t i = 0; i < n; i++) {
        Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, w[i].len, w[i].data);
        assert_non_null(wr);
        assert_int_equal(wr->n_timeseries, 0);
        assert_true(wr->n_metadata >= 1 && wr->n_metadata <= 2);
        assert_int_equal(wr->n_metadata, w[i].entries);
        int b = strcmp(w[i].tenant, "team-b") == 0;
        per_tenant[b] += wr->n_metadata, reqs[b]++;
        for (size_t j = 0; j < wr->n_metadata; j++)
            if (strcmp(wr->metadata[j]->metric_family_name, "c") == 0) {
                assert_int_equal(wr->metadata[j]->type, H);
                assert_string_equal(wr->metadata[j]->unit, "seconds");
            }
        prometheus__write_request__free_unpacked(wr, NULL);
    }
    assert_int_equal(per_tenant[0], 5);
    assert_int_equal(reqs[0], 3);
    assert_int_equal(per_tenant[1], 1);
    vg_mdstore_wr_free(w, n);
    /* Past the ttl nothing is sent. */
    assert_int_equal(vg_mdstore_write_requests(md, T0 + VG_MDSTORE_DEFAULT_TTL_MS + 1, 0, &w, &n),
                     VG_OK);
    assert_int_equal(n, 0);
    vg_mdstore_wr_free(w, n);
    vg_mdstore_free(md);
}

static void expect_api(vg_api_t *api, const vg_api_params *p, int status, const char *json)
{
    vg_buf out;
    vg_buf_init(&out, 0);
    int got = vg_api_metadata(api, p, &out);
    if (got != status || strcmp(out.data, json) != 0)
        fail_msg("status %d (want %d)\n got: %s\nwant: %s", got, status, out.data, json);
    vg_buf_free(&out);
}

#define BAD(msg) "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

static void test_api_params(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_api_t *api = vg_api_new(db, NULL);
    vg_mdstore_t *md;
    assert_int_equal(vg_mdstore_open(NULL, NULL, &md, NULL), VG_OK);
    vg_api_params p = {.now_ms = T0};
    expect_api(api, &p, 200, "{\"status\":\"success\",\"data\":{}}"); /* no table: empty */
    vg_api_set_metadata(api, md);
    Prometheus__MetricMetadata m[] = {mk(C, "a_total", "A.", ""), mk(G, "b", "B.", ""),
                                      mk(G, "b", "B again.", "")};
    add(md, NULL, m, 3, T0);
    add(md, "team-b", m + 1, 1, T0);
    const char *a = "\"a_total\":[{\"type\":\"counter\",\"help\":\"A.\",\"unit\":\"\"}]";
    const char *b1 = "{\"type\":\"gauge\",\"help\":\"B.\",\"unit\":\"\"}";
    const char *b2 = "{\"type\":\"gauge\",\"help\":\"B again.\",\"unit\":\"\"}";
    char want[1024];
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":{%s,\"b\":[%s,%s]}}", a, b1, b2);
    expect_api(api, &p, 200, want);
    p.limit = "-1"; /* negative: all */
    expect_api(api, &p, 200, want);
    p.limit = "+1";
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":{%s}}", a);
    expect_api(api, &p, 200, want);
    p.limit = "0";
    expect_api(api, &p, 200, "{\"status\":\"success\",\"data\":{}}");
    p = (vg_api_params){.now_ms = T0, .limit_per_metric = "1", .metric = "b"};
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":{\"b\":[%s]}}", b1);
    expect_api(api, &p, 200, want);
    p.limit_per_metric = "0"; /* zero: all */
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":{\"b\":[%s,%s]}}", b1, b2);
    expect_api(api, &p, 200, want);
    p = (vg_api_params){.now_ms = T0, .tenant = "team-b"};
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":{\"b\":[%s]}}", b1);
    expect_api(api, &p, 200, want);
    /* Errors, limit checked before limit_per_metric, Atoi's syntax. */
    const char *bad_limits[] = {"ten", " 1", "1.5", "+", "99999999999999999999", "0x10"};
    for (size_t i = 0; i < sizeof bad_limits / sizeof *bad_limits; i++) {
        p = (vg_api_params){.now_ms = T0, .limit = bad_limits[i], .limit_per_metric = "x"};
        expect_api(api, &p, 400, BAD("limit must be a number"));
    }
    p = (vg_api_params){.now_ms = T0, .limit = "2", .limit_per_metric = "x"};
    expect_api(api, &p, 400, BAD("limit_per_metric must be a number"));
    p = (vg_api_params){.now_ms = T0, .tenant = "bad tenant"};
    expect_api(api, &p, 400,
               BAD("invalid tenant in X-Scope-OrgID: want 1-64 characters of [A-Za-z0-9_.-]"));
    vg_api_free(api);
    vg_mdstore_free(md);
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_and_sorted), cmocka_unit_test(test_caps_and_ttl),
        cmocka_unit_test(test_file_roundtrip),      cmocka_unit_test(test_write_requests),
        cmocka_unit_test(test_api_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
