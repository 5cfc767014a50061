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
    vg_tsdb_free(db);
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
    vg_tsdb_free(db);
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
    vg_tsdb_free(db);
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
    vg_tsdb_free(db);
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
    vg_tsdb_free(db);
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
    http_get(vg_httpd_port(h),
             "GET /api/v1/query?query=sum(up)&time=1700000001 HTTP/1.0\r\n\r\n", resp,
             sizeof resp);
    assert_non_null(strstr(resp, " 200 "));
    assert_non_null(strstr(resp, "\"result\":[{\"metric\":{},\"value\":[1700000001,\"3\"]}]"));
    http_get(vg_httpd_port(h), "GET /api/v1/query?query=up%7B HTTP/1.0\r\n\r\n", resp,
             sizeof resp);
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
    vg_tsdb_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series),       cmocka_unit_test(test_series_errors),
        cmocka_unit_test(test_query),        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_labels),       cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_json_numbers), cmocka_unit_test(test_http_glue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
