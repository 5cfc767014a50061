/*
 * test_api.c - Prometheus API handlers: exact JSON bytes and status codes,
 * parameter parsing (times, durations, limits, U__ names), the JSON
 * encodings of every result type, parse_query's AST JSON, federation text,
 * remote read (SAMPLES and framed XOR chunks) and the HTTP glue.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <snappy-c.h>

#include "api/api.h"
#include "api/json.h"
#include "prometheus/remote.pb-c.h"

#define L(n, v) ((vg_label_t){(n), (v)})
#define T0      INT64_C(1700000000000)

static vg_tsdb_t *fixture(void)
{
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_label_t a[] = {L("__name__", "up"), L("instance", "b:9100"), L("job", "node")};
    vg_label_t b[] = {L("__name__", "up"), L("instance", "a:9100"), L("job", "node")};
    vg_label_t c[] = {L("__name__", "http_requests_total"), L("code", "200"), L("job", "api")};
    vg_label_t d[] = {L("__name__", "up"), L("instance", "c:9100"), L("job", "node")};
    uint64_t sb = 0x7ff0000000000002ull;
    double stale;
    memcpy(&stale, &sb, sizeof stale);
    assert_int_equal(vg_tsdb_append(db, "default", a, 3, T0, 1, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "default", a, 3, T0 + 15000, 0, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "default", b, 3, T0, 1, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "default", c, 3, T0 + 1000, 1234.5, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "default", d, 3, T0, 1, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "default", d, 3, T0 + 10000, stale, NULL, NULL), VG_OK);
    assert_int_equal(vg_tsdb_append(db, "team-b", c, 3, T0, 7, NULL, NULL), VG_OK);
    return db;
}

typedef int (*handler)(vg_api_t *, const vg_api_params *, vg_buf *);

/* One API context per store, kept beside it for the test. */
static vg_api_t *api_of(vg_tsdb_t *db)
{
    static vg_api_t *api;
    static vg_tsdb_t *owner;
    if (owner != db) {
        vg_api_free(api);
        api = db ? vg_api_new(db, NULL) : NULL;
        owner = db;
    }
    return api;
}

/* Free the store and the API context made over it. */
static void free_db(vg_tsdb_t *db)
{
    api_of(NULL);
    vg_tsdb_free(db);
}

static void expect(vg_tsdb_t *db, handler fn, const vg_api_params *p, int status, const char *json)
{
    vg_buf out;
    vg_buf_init(&out, 0);
    int got = fn(api_of(db), p, &out);
    if (got != status || strcmp(out.data ? out.data : "", json) != 0)
        fail_msg("status %d (want %d)\n got: %s\nwant: %s", got, status, out.data, json);
    vg_buf_free(&out);
}

static void test_series(void **state)
{
    vg_tsdb_t *db = fixture();
    const char *m1[] = {"up{instance=~\"[ab]:.*\"}"};
    vg_api_params p = {.match = m1, .nmatch = 1};
    expect(db, vg_api_series, &p, 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"up\",\"instance\":\"a:9100\",\"job\":\"node\"},"
           "{\"__name__\":\"up\",\"instance\":\"b:9100\",\"job\":\"node\"}]}");
    /* Two selectors overlapping: union, sorted, no duplicates. */
    const char *m2[] = {"up{instance=\"a:9100\"}", "{job=~\"node|api\"}"};
    p = (vg_api_params){.match = m2, .nmatch = 2, .start = "1700000000", .end = "1700000060"};
    expect(db, vg_api_series, &p, 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"api\"},"
           "{\"__name__\":\"up\",\"instance\":\"a:9100\",\"job\":\"node\"},"
           "{\"__name__\":\"up\",\"instance\":\"b:9100\",\"job\":\"node\"},"
           "{\"__name__\":\"up\",\"instance\":\"c:9100\",\"job\":\"node\"}]}");
    /* Time range before any sample; another tenant. */
    p = (vg_api_params){.match = m1, .nmatch = 1, .end = "2023-11-14T22:13:19Z"};
    expect(db, vg_api_series, &p, 200, "{\"status\":\"success\",\"data\":[]}");
    const char *m3[] = {"http_requests_total"};
    p = (vg_api_params){.match = m3, .nmatch = 1, .tenant = "team-b"};
    expect(db, vg_api_series, &p, 200,
           "{\"status\":\"success\",\"data\":["
           "{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"api\"}]}");
    free_db(db);
}

static void test_series_errors(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {0};
    expect(db, vg_api_series, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\","
           "\"error\":\"no match[] parameter provided\"}");
    const char *bad[] = {"up{"};
    p = (vg_api_params){.match = bad, .nmatch = 1};
    expect(db, vg_api_series, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
           "\\\"match[]\\\": 1:4: parse error: unexpected end of input inside braces\"}");
    const char *ok[] = {"up"};
    p = (vg_api_params){.match = ok, .nmatch = 1, .start = "yesterday"};
    expect(db, vg_api_series, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
           "\\\"start\\\": invalid time value for 'start': cannot parse \\\"yesterday\\\" to a "
           "valid timestamp\"}");
    p = (vg_api_params){.match = ok, .nmatch = 1, .tenant = "a/b"};
    expect(db, vg_api_series, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid tenant in "
           "X-Scope-OrgID: want 1-64 characters of [A-Za-z0-9_.-]\"}");
    free_db(db);
}

static void test_query(void **state)
{
    vg_tsdb_t *db = fixture();
    /* up{instance="c"} ends with a stale marker: no value. b's latest is 0. */
    vg_api_params p = {.query = "up", .time = "1700000020.5"};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{\"__name__\":\"up\",\"instance\":\"a:9100\",\"job\":\"node\"},"
           "\"value\":[1700000020.500,\"1\"]},"
           "{\"metric\":{\"__name__\":\"up\",\"instance\":\"b:9100\",\"job\":\"node\"},"
           "\"value\":[1700000020.500,\"0\"]}]}}");
    /* Default time is now; 5 minutes of lookback: at T0+300s a is gone, b (T0+15s) stays. */
    p = (vg_api_params){.query = "up", .now_ms = T0 + 300000};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{\"__name__\":\"up\",\"instance\":\"b:9100\",\"job\":\"node\"},"
           "\"value\":[1700000300,\"0\"]}]}}");
    p = (vg_api_params){.query = "up", .now_ms = T0 + 315000};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    /* Before the first sample: nothing. */
    p = (vg_api_params){.query = "up", .time = "1699999999.999"};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    p = (vg_api_params){.query = "http_requests_total{code=\"200\"}",
                        .time = "2023-11-14T22:13:21.781Z"};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{\"__name__\":\"http_requests_total\",\"code\":\"200\",\"job\":\"api\"},"
           "\"value\":[1700000001.781,\"1234.5\"]}]}}");
    free_db(db);
}

static void test_query_errors(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {.query = "foo{gibberish}"};
    expect(db, vg_api_query, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
           "\\\"query\\\": 1:14: parse error: unexpected \\\"}\\\" in label matching, expected "
           "label matching operator\"}");
    p = (vg_api_params){0};
    expect(db, vg_api_query, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
           "\\\"query\\\": 1:1: parse error: no expression found in input\"}");
    p = (vg_api_params){.query = "up", .time = "x"};
    expect(db, vg_api_query, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
           "\\\"time\\\": invalid time value for 'time': cannot parse \\\"x\\\" to a valid "
           "timestamp\"}");
    free_db(db);
}

static void test_labels(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {0};
    expect(db, vg_api_labels, &p, 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\",\"instance\",\"job\"]}");
    const char *m[] = {"up", "{code=\"200\"}"};
    p = (vg_api_params){.match = m, .nmatch = 1};
    expect(db, vg_api_labels, &p, 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"instance\",\"job\"]}");
    p = (vg_api_params){.label = "job"};
    expect(db, vg_api_label_values, &p, 200,
           "{\"status\":\"success\",\"data\":[\"api\",\"node\"]}");
    p = (vg_api_params){.label = "instance", .match = &m[1], .nmatch = 1};
    expect(db, vg_api_label_values, &p, 200, "{\"status\":\"success\",\"data\":[]}");
    p = (vg_api_params){.label = "__name__", .match = m, .nmatch = 2};
    expect(db, vg_api_label_values, &p, 200,
           "{\"status\":\"success\",\"data\":[\"http_requests_total\",\"up\"]}");
    p = (vg_api_params){.label = "job", .tenant = "nobody"};
    expect(db, vg_api_label_values, &p, 200, "{\"status\":\"success\",\"data\":[]}");
    /* Prometheus 3 takes any UTF-8 name; U__ names are decoded first. */
    p = (vg_api_params){.label = "a-b"};
    expect(db, vg_api_label_values, &p, 200, "{\"status\":\"success\",\"data\":[]}");
    p = (vg_api_params){.label = "U__jo_62_"};
    expect(db, vg_api_label_values, &p, 200,
           "{\"status\":\"success\",\"data\":[\"api\",\"node\"]}");
    p = (vg_api_params){.label = "\xff"};
    expect(db, vg_api_label_values, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\","
           "\"error\":\"invalid label name: \\\"\\\\xff\\\"\"}");
    const char *bad[] = {"{x=\"\"}"};
    p = (vg_api_params){.match = bad, .nmatch = 1};
    expect(db, vg_api_labels, &p, 400,
           "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:1: parse error: "
           "vector selector must contain at least one non-empty matcher\"}");
    free_db(db);
}

static void test_parse_time(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"1435781451.781", INT64_C(1435781451781)},
        {"1435781451", INT64_C(1435781451000)},
        {"1435781451.7815", INT64_C(1435781451782)},
        {"-1.5", -1500},
        {"0", 0},
        {"1e3", 1000000},
        {"2015-07-01T20:10:51.781Z", INT64_C(1435781451781)},
        {"2015-07-01T20:10:51Z", INT64_C(1435781451000)},
        {"2015-07-01T22:10:51.781123456+02:00", INT64_C(1435781451781)},
        {"1970-01-01T00:00:00-00:30", 1800000},
        {"2016-02-29T00:00:00Z", INT64_C(1456704000000)},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = 0;
        vg_error err = {0};
        if (vg_api_parse_time(ok[i].in, &ms, &err) != VG_OK || ms != ok[i].ms)
            fail_msg("%s: got %lld (%s)", ok[i].in, (long long)ms, err.msg);
    }
    static const char *bad[] = {"",
                                " 1",
                                "NaN",
                                "Inf",
                                "2015-07-01 20:10:51Z",
                                "2015-02-29T00:00:00Z",
                                "2015-07-01T20:10:51",
                                "2015-13-01T00:00:00Z",
                                "2015-07-01T20:10:51.Z",
                                "1e300"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        if (vg_api_parse_time(bad[i], &ms, NULL) == VG_OK) fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_json_numbers(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } times[] = {
        {INT64_C(1435781451781), "1435781451.781"},
        {INT64_C(1435781451780), "1435781451.780"},
        {INT64_C(1435781451000), "1435781451"},
        {INT64_C(1435781451001), "1435781451.001"},
        {-1500, "-1.500"},
        {0, "0"},
    };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_api_json_time(&b, times[i].ms);
        assert_string_equal(b.data, times[i].want);
        vg_buf_free(&b);
    }
    static const struct {
        double v;
        const char *want;
    } vals[] = {
        {1, "\"1\""},
        {1234.5, "\"1234.5\""},
        {0.1, "\"0.1\""},
        {-0.0, "\"-0\""},
        {1e20, "\"100000000000000000000\""},
        {1e21, "\"1e+21\""},
        {1e-6, "\"0.000001\""},
        {1.5e-7, "\"1.5e-07\""},
        {NAN, "\"NaN\""},
        {INFINITY, "\"+Inf\""},
        {-INFINITY, "\"-Inf\""},
        {123456789012.25, "\"123456789012.25\""},
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_api_json_value(&b, vals[i].v);
        if (strcmp(b.data, vals[i].want) != 0)
            fail_msg("%.17g: got %s want %s", vals[i].v, b.data, vals[i].want);
        vg_buf_free(&b);
    }
}

#define OK_VEC(body) "{\"status\":\"success\",\"data\":{\"resultType\":" body "}"
#define BAD(msg)     "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"" msg "\"}"

static void test_query_types(void **state)
{
    vg_tsdb_t *db = fixture();
    /* Grafana's health check. */
    vg_api_params p = {.query = "1+1", .time = "4"};
    expect(db, vg_api_query, &p, 200, OK_VEC("\"scalar\",\"result\":[4,\"2\"]}"));
    p = (vg_api_params){.query = "\"a\\\"b\"", .time = "4.5"};
    expect(db, vg_api_query, &p, 200, OK_VEC("\"string\",\"result\":[4.500,\"a\\\"b\"]}"));
    p = (vg_api_params){.query = "sum by (job) (up)", .time = "1700000001"};
    expect(db, vg_api_query, &p, 200,
           OK_VEC("\"vector\",\"result\":[{\"metric\":{\"job\":\"node\"},"
                  "\"value\":[1700000001,\"3\"]}]}"));
    p = (vg_api_params){.query = "up{instance=\"b:9100\"}[20s]", .time = "1700000015"};
    expect(db, vg_api_query, &p, 200,
           OK_VEC("\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":"
                  "\"b:9100\",\"job\":\"node\"},\"values\":[[1700000000,\"1\"],"
                  "[1700000015,\"0\"]]}]}"));
    /* limit truncates and says so. */
    p = (vg_api_params){.query = "up", .time = "1700000001", .limit = "1"};
    expect(db, vg_api_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":"
           "{\"__name__\":\"up\",\"instance\":\"a:9100\",\"job\":\"node\"},\"value\":"
           "[1700000001,\"1\"]}]},\"warnings\":[\"results truncated due to limit\"]}");
    p = (vg_api_params){.query = "up", .limit = "x"};
    expect(db, vg_api_query, &p, 400,
           BAD("invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": invalid syntax"));
    p = (vg_api_params){.query = "up", .limit = "-1"};
    expect(db, vg_api_query, &p, 400,
           BAD("invalid parameter \\\"limit\\\": limit must be non-negative"));
    p = (vg_api_params){.query = "up", .timeout = "soon"};
    expect(db, vg_api_query, &p, 400,
           BAD("invalid parameter \\\"timeout\\\": cannot parse \\\"soon\\\" to a valid duration"));
    free_db(db);
}

static void test_query_limits(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_promql_opts o = {.max_samples = 1};
    vg_api_t *api = vg_api_new(db, &o);
    vg_api_params p = {.query = "up[1h]", .time = "1700000020"};
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_api_query(api, &p, &out), 422);
    assert_non_null(strstr(out.data, "\"errorType\":\"execution\""));
    vg_buf_free(&out);
    vg_api_free(api);
    free_db(db);
}

static void test_query_range(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {.query = "up{instance=\"b:9100\"}",
                       .start = "1700000000",
                       .end = "2023-11-14T22:14:05Z",
                       .step = "15s"};
    expect(db, vg_api_query_range, &p, 200,
           OK_VEC("\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\",\"instance\":"
                  "\"b:9100\",\"job\":\"node\"},\"values\":[[1700000000,\"1\"],"
                  "[1700000015,\"0\"],[1700000030,\"0\"],[1700000045,\"0\"]]}]}"));
    p = (vg_api_params){.query = "2", .start = "0", .end = "1", .step = "0.5"};
    expect(db, vg_api_query_range, &p, 200,
           OK_VEC("\"matrix\",\"result\":[{\"metric\":{},\"values\":[[0,\"2\"],[0.500,\"2\"],"
                  "[1,\"2\"]]}]}"));
    p = (vg_api_params){.query = "up", .end = "1", .step = "1"};
    expect(db, vg_api_query_range, &p, 400,
           BAD("invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid timestamp"));
    p = (vg_api_params){.query = "up", .start = "10", .end = "1", .step = "1"};
    expect(db, vg_api_query_range, &p, 400, BAD("end timestamp must not be before start time"));
    p = (vg_api_params){.query = "up", .start = "1", .end = "10", .step = "x"};
    expect(db, vg_api_query_range, &p, 400,
           BAD("invalid parameter \\\"step\\\": cannot parse \\\"x\\\" to a valid duration"));
    p = (vg_api_params){.query = "up", .start = "1", .end = "10", .step = "-1"};
    expect(db, vg_api_query_range, &p, 400,
           BAD("zero or negative query resolution step widths are not accepted. Try a positive "
               "integer"));
    p = (vg_api_params){.query = "up", .start = "0", .end = "11001", .step = "1"};
    expect(db, vg_api_query_range, &p, 400,
           BAD("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
               "query resolution (?step=XX)"));
    p = (vg_api_params){.query = "up", .start = "0", .end = "11000", .step = "1"};
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_api_query_range(api_of(db), &p, &out), 200);
    vg_buf_free(&out);
    free_db(db);
}

static void test_params(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } durs[] = {{"15", 15000}, {"0.5", 500}, {"1m30s", 90000},
                {"1e-4", 1},   {"0", 0},     {"2h", 7200000}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(*durs); i++) {
        int64_t ms = -1;
        if (vg_api_parse_duration(durs[i].in, &ms, NULL) != VG_OK || ms != durs[i].ms)
            fail_msg("%s: got %lld", durs[i].in, (long long)ms);
    }
    vg_error err = {0};
    int64_t ms;
    assert_int_equal(vg_api_parse_duration("1e300", &ms, &err), VG_EINVAL);
    assert_string_equal(err.msg, "cannot parse \"1e300\" to a valid duration. It overflows int64");
    assert_int_equal(vg_api_parse_duration("", &ms, NULL), VG_EINVAL);
    static const char *names[][2] = {
        {"U__my_2e_metric", "my.metric"},
        {"U__a__b", "a_b"},
        {"plain", "plain"},
        {"U__bad_zz_", "U__bad_zz_"},
        {"U__x_1f600_", "x\xf0\x9f\x98\x80"},
        {"U__open_2e", "U__open_2e"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
        char out[64];
        vg_api_unescape_name(names[i][0], out, sizeof out);
        assert_string_equal(out, names[i][1]);
    }
}

static void test_series_limit(void **state)
{
    vg_tsdb_t *db = fixture();
    const char *m[] = {"up"};
    vg_api_params p = {.match = m, .nmatch = 1, .limit = "1"};
    expect(db, vg_api_series, &p, 200,
           "{\"status\":\"success\",\"data\":[{\"__name__\":\"up\",\"instance\":\"a:9100\","
           "\"job\":\"node\"}],\"warnings\":[\"results truncated due to limit\"]}");
    p = (vg_api_params){.limit = "2"};
    expect(db, vg_api_labels, &p, 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"code\"],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    p = (vg_api_params){.label = "instance", .limit = "3"};
    expect(db, vg_api_label_values, &p, 200,
           "{\"status\":\"success\",\"data\":[\"a:9100\",\"b:9100\",\"c:9100\"]}");
    free_db(db);
}

static void test_status_endpoints(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {0};
    expect(db, vg_api_metadata, &p, 200, "{\"status\":\"success\",\"data\":{}}");
    p.limit = "ten";
    expect(db, vg_api_metadata, &p, 400, BAD("limit must be a number"));
    p = (vg_api_params){0};
    expect(db, vg_api_buildinfo, &p, 200,
           "{\"status\":\"success\",\"data\":{\"version\":\"" VIGIL_VERSION "\",\"revision\":\"\","
           "\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\","
           "\"features\":{}}}");
    expect(db, vg_api_rules, &p, 200, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");
    expect(db, vg_api_alerts, &p, 200, "{\"status\":\"success\",\"data\":{\"alerts\":[]}}");
    /* Grafana sends milliseconds to query_exemplars. */
    p = (vg_api_params){.query = "up", .start = "1700000000000", .end = "1700000600000"};
    expect(db, vg_api_query_exemplars, &p, 200, "{\"status\":\"success\",\"data\":[]}");
    p = (vg_api_params){.query = "up", .start = "10", .end = "5"};
    expect(db, vg_api_query_exemplars, &p, 400,
           BAD("end timestamp must not be before start timestamp"));
    p = (vg_api_params){.query = "1"};
    expect(db, vg_api_query_exemplars, &p, 200, "{\"status\":\"success\"}");
    free_db(db);
}

static void test_format_parse_query(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_api_params p = {.query = "sum(rate(x[5m]))by(job)"};
    expect(db, vg_api_format_query, &p, 200,
           "{\"status\":\"success\",\"data\":\"sum by (job) (rate(x[5m]))\"}");
    p = (vg_api_params){.query = "x{"};
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_api_format_query(api_of(db), &p, &out), 400);
    assert_non_null(strstr(out.data, "invalid parameter \\\"query\\\": 1:"));
    vg_buf_free(&out);
    p = (vg_api_params){.query = "sum by (job) (rate(x{a=\"b\"}[5m] offset 1m)) > bool 2"};
    expect(db, vg_api_parse_query, &p, 200,
           "{\"status\":\"success\",\"data\":{\"bool\":true,\"lhs\":{\"expr\":{\"args\":["
           "{\"matchers\":[{\"name\":\"a\",\"type\":\"=\",\"value\":\"b\"},"
           "{\"name\":\"__name__\",\"type\":\"=\",\"value\":\"x\"}],\"name\":\"x\","
           "\"offset\":60000,\"range\":300000,\"startOrEnd\":null,\"timestamp\":null,"
           "\"type\":\"matrixSelector\"}],\"func\":{\"argTypes\":[\"matrix\"],\"name\":\"rate\","
           "\"returnType\":\"vector\",\"variadic\":0},\"type\":\"call\"},\"grouping\":[\"job\"],"
           "\"op\":\"sum\",\"param\":null,\"type\":\"aggregation\",\"without\":false},"
           "\"matching\":null,\"op\":\">\",\"rhs\":{\"type\":\"numberLiteral\",\"val\":\"2\"},"
           "\"type\":\"binaryExpr\"}}");
    p = (vg_api_params){.query = "(a @ start()) - on(x) group_left(y) sum_over_time(b[1m:10s])"};
    vg_buf_init(&out, 0);
    assert_int_equal(vg_api_parse_query(api_of(db), &p, &out), 200);
    assert_non_null(strstr(out.data, "\"startOrEnd\":\"start\",\"timestamp\":null"));
    assert_non_null(strstr(out.data, "\"matching\":{\"card\":\"many-to-one\",\"include\":[\"y\"],"
                                     "\"labels\":[\"x\"],\"on\":true}"));
    assert_non_null(strstr(out.data, "\"step\":10000,\"type\":\"subquery\""));
    assert_non_null(strstr(out.data, "\"type\":\"parenExpr\""));
    vg_buf_free(&out);
    free_db(db);
}

static void test_federate(void **state)
{
    vg_tsdb_t *db = fixture();
    const char *m[] = {"up", "{__name__=~\"http.*\"}"};
    vg_api_params p = {.match = m, .nmatch = 2, .now_ms = T0 + 20000};
    vg_buf out;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_api_federate(api_of(db), &p, &out), 200);
    /* c is stale: left out. */
    assert_string_equal(out.data, "# TYPE http_requests_total untyped\n"
                                  "http_requests_total{code=\"200\",job=\"api\",instance=\"\"} "
                                  "1234.5 1700000001000\n"
                                  "# TYPE up untyped\n"
                                  "up{instance=\"a:9100\",job=\"node\"} 1 1700000000000\n"
                                  "up{instance=\"b:9100\",job=\"node\"} 0 1700000015000\n");
    const char *bad[] = {"up{"};
    p = (vg_api_params){.match = bad, .nmatch = 1, .now_ms = T0};
    assert_int_equal(vg_api_federate(api_of(db), &p, &out), 400);
    assert_string_equal(out.data, "1:4: parse error: unexpected end of input inside braces\n");
    vg_buf_free(&out);
    free_db(db);
}

/* A snappy ReadRequest for up{job="node"} over [T0, T0+20s]. */
static uint8_t *read_request(int stream, size_t *len)
{
    Prometheus__LabelMatcher lm = PROMETHEUS__LABEL_MATCHER__INIT, *lmp = &lm;
    lm.name = "job";
    lm.value = "node";
    Prometheus__Query q = PROMETHEUS__QUERY__INIT, *qp = &q;
    q.start_timestamp_ms = T0;
    q.end_timestamp_ms = T0 + 20000;
    q.matchers = &lmp;
    q.n_matchers = 1;
    Prometheus__ReadRequest__ResponseType types[] = {
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS,
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES};
    Prometheus__ReadRequest r = PROMETHEUS__READ_REQUEST__INIT;
    r.queries = &qp;
    r.n_queries = 1;
    r.accepted_response_types = stream ? types : types + 1;
    r.n_accepted_response_types = 1;
    size_t n = prometheus__read_request__get_packed_size(&r);
    uint8_t raw[512];
    assert_true(n < sizeof raw);
    prometheus__read_request__pack(&r, raw);
    *len = snappy_max_compressed_length(n);
    uint8_t *z = malloc(*len);
    assert_int_equal(snappy_compress((char *)raw, n, (char *)z, len), SNAPPY_OK);
    return z;
}

static void test_remote_read_samples(void **state)
{
    vg_tsdb_t *db = fixture();
    size_t len, n;
    uint8_t *req = read_request(0, &len);
    vg_buf out;
    vg_buf_init(&out, 0);
    const char *ct, *enc;
    assert_int_equal(vg_api_remote_read(api_of(db), NULL, req, len, &out, &ct, &enc), 200);
    assert_string_equal(ct, "application/x-protobuf");
    assert_string_equal(enc, "snappy");
    assert_int_equal(snappy_uncompressed_length(out.data, out.len, &n), SNAPPY_OK);
    char *raw = malloc(n);
    assert_int_equal(snappy_uncompress(out.data, out.len, raw, &n), SNAPPY_OK);
    Prometheus__ReadResponse *r = prometheus__read_response__unpack(NULL, n, (uint8_t *)raw);
    assert_non_null(r);
    assert_int_equal(r->n_results, 1);
    assert_int_equal(r->results[0]->n_timeseries, 3); /* a, b, c */
    Prometheus__TimeSeries *a = r->results[0]->timeseries[1];
    assert_string_equal(a->labels[1]->value, "b:9100");
    assert_int_equal(a->n_samples, 2);
    assert_int_equal(a->samples[1]->timestamp, T0 + 15000);
    assert_true(a->samples[1]->value == 0);
    assert_int_equal(r->results[0]->timeseries[2]->n_samples, 2); /* c keeps its stale marker */
    prometheus__read_response__free_unpacked(r, NULL);
    free(raw);
    /* Garbage is a 400 with a text message. */
    assert_int_equal(
        vg_api_remote_read(api_of(db), NULL, (const uint8_t *)"xx", 2, &out, &ct, &enc), 400);
    assert_string_equal(ct, "text/plain; charset=utf-8");
    vg_buf_free(&out);
    free(req);
    free_db(db);
}

static uint32_t crc32c_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

static void test_remote_read_stream(void **state)
{
    /* Bytes of Prometheus's XOR chunk for these samples, made with an
     * independent encoder written from the chunkenc format description. */
    static const uint8_t want[] = {0x00, 0x05, 0xd0, 0x0f, 0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0xe8, 0x07, 0xc2, 0x5f, 0xff, 0x20, 0x7d, 0x30,
                                   0x17, 0xff, 0xf8, 0x5b, 0xcc, 0x30, 0x33, 0xfd, 0x9d, 0x09};
    static const int64_t ts[] = {1000, 2000, 3000, 4500, 100000};
    static const double vs[] = {1.0, 2.0, 2.0, -0.5, 1e6};
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_label_t l[] = {L("__name__", "x"), L("job", "node")};
    for (int i = 0; i < 5; i++)
        assert_int_equal(vg_tsdb_append(db, "default", l, 2, ts[i], vs[i], NULL, NULL), VG_OK);
    Prometheus__LabelMatcher lm = PROMETHEUS__LABEL_MATCHER__INIT, *lmp = &lm;
    lm.name = "job";
    lm.value = "node";
    size_t len;
    uint8_t *req = read_request(1, &len);
    free(req);
    /* Same request, over [0, 1e6]. */
    Prometheus__Query q = PROMETHEUS__QUERY__INIT, *qp = &q;
    q.end_timestamp_ms = 1000000;
    q.matchers = &lmp;
    q.n_matchers = 1;
    Prometheus__ReadRequest__ResponseType t =
        PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS;
    Prometheus__ReadRequest r = PROMETHEUS__READ_REQUEST__INIT;
    r.queries = &qp, r.n_queries = 1, r.accepted_response_types = &t,
    r.n_accepted_response_types = 1;
    uint8_t raw[256], z[512];
    size_t n = prometheus__read_request__pack(&r, raw), zn = sizeof z;
    assert_int_equal(snappy_compress((char *)raw, n, (char *)z, &zn), SNAPPY_OK);
    vg_buf out;
    vg_buf_init(&out, 0);
    const char *ct, *enc;
    assert_int_equal(vg_api_remote_read(api_of(db), NULL, z, zn, &out, &ct, &enc), 200);
    assert_string_equal(ct,
                        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse");
    assert_null(enc);
    /* One frame: uvarint size, big-endian CRC32-C, message. */
    const uint8_t *f = (const uint8_t *)out.data;
    size_t size = f[0], hdr = 1;
    if (f[0] & 0x80) size = (f[0] & 0x7f) | (size_t)f[1] << 7, hdr = 2;
    assert_int_equal(hdr + 4 + size, out.len);
    uint32_t crc = (uint32_t)f[hdr] << 24 | (uint32_t)f[hdr + 1] << 16 | (uint32_t)f[hdr + 2] << 8 |
                   f[hdr + 3];
    assert_int_equal(crc, crc32c_ref(f + hdr + 4, size));
    Prometheus__ChunkedReadResponse *cr =
        prometheus__chunked_read_response__unpack(NULL, size, f + hdr + 4);
    assert_non_null(cr);
    assert_int_equal(cr->n_chunked_series, 1);
    assert_int_equal(cr->query_index, 0);
    Prometheus__ChunkedSeries *cs = cr->chunked_series[0];
    assert_int_equal(cs->n_labels, 2);
    assert_int_equal(cs->n_chunks, 1);
    assert_int_equal(cs->chunks[0]->type, PROMETHEUS__CHUNK__ENCODING__XOR);
    assert_int_equal(cs->chunks[0]->min_time_ms, 1000);
    assert_int_equal(cs->chunks[0]->max_time_ms, 100000);
    assert_int_equal(cs->chunks[0]->data.len, sizeof want);
    assert_memory_equal(cs->chunks[0]->data.data, want, sizeof want);
    prometheus__chunked_read_response__free_unpacked(cr, NULL);
    vg_buf_free(&out);
    free_db(db);
}

/* One HTTP/1.0 exchange over loopback; returns the whole response. */
static void http_get(uint16_t port, const char *req, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, resp + n, cap - 1 - n)) > 0) n += (size_t)r;
    resp[n] = 0;
    close(fd);
}

static void test_http_glue(void **state)
{
    vg_tsdb_t *db = fixture();
    vg_metrics_t *m = vg_metrics_new();
    vg_httpd_opts o = {.listen = "127.0.0.1:0", .threads = 2};
    vg_httpd_t *h = vg_httpd_new(&o);
    assert_int_equal(vg_api_register(h, api_of(db), m), VG_OK);
    assert_int_equal(vg_httpd_start(h, NULL), VG_OK);
    char resp[4096];
    http_get(vg_httpd_port(h),
             "GET /api/v1/label/job/values HTTP/1.0\r\nX-Scope-OrgID: team-b\r\n\r\n", resp,
             sizeof resp);
    assert_non_null(strstr(resp, " 200 "));
    assert_non_null(strstr(resp, "application/json"));
    assert_non_null(strstr(resp, "\r\n\r\n{\"status\":\"success\",\"data\":[\"api\"]}"));
    const char *body = "match[]=up%7Binstance%3D%22a%3A9100%22%7D&start=1700000000";
    char req[512];
    snprintf(req, sizeof req,
             "POST /api/v1/series HTTP/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    http_get(vg_httpd_port(h), req, resp, sizeof resp);
    assert_non_null(strstr(resp, "{\"status\":\"success\",\"data\":[{\"__name__\":\"up\","
                                 "\"instance\":\"a:9100\",\"job\":\"node\"}]}"));
    http_get(vg_httpd_port(h), "GET /api/v1/query?query=sum(up)&time=1700000001 HTTP/1.0\r\n\r\n",
             resp, sizeof resp);
    assert_non_null(strstr(resp, " 200 "));
    assert_non_null(strstr(resp, "\"result\":[{\"metric\":{},\"value\":[1700000001,\"3\"]}]"));
    http_get(vg_httpd_port(h), "GET /api/v1/query?query=up%7B HTTP/1.0\r\n\r\n", resp, sizeof resp);
    assert_non_null(strstr(resp, " 400 "));
    http_get(vg_httpd_port(h), "GET /api/v1/label/job HTTP/1.0\r\n\r\n", resp, sizeof resp);
    assert_non_null(strstr(resp, " 404 "));
    vg_httpd_free(h);
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "vigil_api_requests_total{handler=\"query\"} 2"));
    assert_non_null(strstr(b.data, "vigil_api_request_errors_total{handler=\"query\"} 1"));
    vg_buf_free(&b);
    vg_metrics_free(m);
    free_db(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_series_errors),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_json_numbers),
        cmocka_unit_test(test_http_glue),
        cmocka_unit_test(test_query_types),
        cmocka_unit_test(test_query_limits),
        cmocka_unit_test(test_query_range),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_series_limit),
        cmocka_unit_test(test_status_endpoints),
        cmocka_unit_test(test_format_parse_query),
        cmocka_unit_test(test_federate),
        cmocka_unit_test(test_remote_read_samples),
        cmocka_unit_test(test_remote_read_stream),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    api_of(NULL);
    return rc;
}
