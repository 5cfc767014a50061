/*
 * test_sink.c - the HTTP sink against an in-test vg_httpd server, and sink
 * construction from the agent config.
 *
 * The server records what it received and answers with the status the test
 * chose, so the status mapping (2xx OK, 429/5xx retry, other 4xx final) and
 * the headers the collector relies on are checked end to end over loopback.
 * Kafka-backed behaviour needs a broker and lives in test_kafka.c.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../agent/config.h"
#include "ship/sink.h"
#include "vigil/alloc.h"
#include "vigil/httpd.h"

struct seen {
    pthread_mutex_t mu;
    int status; /* what to answer */
    int requests;
    char method[16], path[64], ctype[64], cenc[32], schema[8], tenant[64], kind[16];
    uint8_t body[256];
    size_t body_len;
};

static void copy_hdr(char *dst, size_t n, const vg_http_req *r, const char *name)
{
    const char *v = vg_http_req_header(r, name);
    snprintf(dst, n, "%s", v ? v : "");
}

static void ingest(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    struct seen *s = ud;
    size_t len = 0;
    const uint8_t *body = vg_http_req_body(r, &len);
    pthread_mutex_lock(&s->mu);
    s->requests++;
    snprintf(s->method, sizeof(s->method), "%s", vg_http_req_method(r));
    snprintf(s->path, sizeof(s->path), "%s", vg_http_req_path(r));
    copy_hdr(s->ctype, sizeof(s->ctype), r, "Content-Type");
    copy_hdr(s->cenc, sizeof(s->cenc), r, "content-encoding");
    copy_hdr(s->schema, sizeof(s->schema), r, "X-Vigil-Schema");
    copy_hdr(s->tenant, sizeof(s->tenant), r, "X-Scope-OrgID");
    copy_hdr(s->kind, sizeof(s->kind), r, "X-Vigil-Kind");
    s->body_len = len < sizeof(s->body) ? len : sizeof(s->body);
    if (body) memcpy(s->body, body, s->body_len);
    int status = s->status;
    pthread_mutex_unlock(&s->mu);
    vg_http_resp_text(resp, status, "answer %d from test", status);
}

struct fx {
    struct seen seen;
    vg_httpd_t *srv;
    vg_metrics_t *m;
    struct vg_sink *sink;
    char url[64];
};

static int setup(void **state)
{
    struct fx *f = vg_calloc(1, sizeof(*f));
    pthread_mutex_init(&f->seen.mu, NULL);
    f->seen.status = 204;
    vg_httpd_opts o = {.listen = "127.0.0.1:0"};
    f->srv = vg_httpd_new(&o);
    assert_non_null(f->srv);
    assert_int_equal(vg_httpd_route(f->srv, "POST", "/ingest/v1/batch", ingest, &f->seen), VG_OK);
    vg_error e = {0};
    assert_int_equal(vg_httpd_start(f->srv, &e), VG_OK);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/", (unsigned)vg_httpd_port(f->srv));
    f->m = vg_metrics_new();
    vg_sink_http_opts so = {.url = f->url, .timeout_ms = 5000};
    assert_int_equal(vg_sink_http_new(&so, f->m, &f->sink, &e), VG_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vg_sink_free(f->sink);
    vg_httpd_free(f->srv);
    vg_metrics_free(f->m);
    pthread_mutex_destroy(&f->seen.mu);
    vg_free(f);
    return 0;
}

static vg_err_t send_with(struct fx *f, int status, vg_sink_kind kind, vg_error *e)
{
    static const uint8_t payload[] = {0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3};
    pthread_mutex_lock(&f->seen.mu);
    f->seen.status = status;
    pthread_mutex_unlock(&f->seen.mu);
    vg_sink_msg msg = {
        .kind = kind, .tenant = "team-a", .data = payload, .len = sizeof(payload), .seq = 7};
    return vg_sink_send(f->sink, &msg, e);
}

static double result_count(struct fx *f, const char *result)
{
    char labels[64];
    snprintf(labels, sizeof(labels), "sink=\"http\",result=\"%s\"", result);
    return vg_metric_value(vg_metrics_counter(f->m, "vigil_agent_sink_requests_total", "", labels));
}

static void test_headers_and_body(void **state)
{
    struct fx *f = *state;
    vg_error e = {0};
    assert_int_equal(send_with(f, 200, VG_SINK_METRICS, &e), VG_OK);
    assert_int_equal(f->seen.requests, 1);
    assert_string_equal(f->seen.method, "POST");
    assert_string_equal(f->seen.path, "/ingest/v1/batch");
    assert_string_equal(f->seen.ctype, "application/x-protobuf");
    assert_string_equal(f->seen.cenc, "zstd");
    assert_string_equal(f->seen.schema, "1");
    assert_string_equal(f->seen.tenant, "team-a");
    assert_string_equal(f->seen.kind, "metrics");
    assert_int_equal(f->seen.body_len, 7);
    assert_int_equal(f->seen.body[0], 0x28);
    assert_int_equal(f->seen.body[6], 3);
    assert_int_equal(send_with(f, 204, VG_SINK_AUDIT, &e), VG_OK);
    assert_string_equal(f->seen.kind, "audit");
    assert_true(result_count(f, "ok") == 2);
}

static void test_status_mapping(void **state)
{
    struct fx *f = *state;
    vg_error e = {0};
    assert_int_equal(send_with(f, 202, VG_SINK_METRICS, &e), VG_OK);
    assert_int_equal(send_with(f, 429, VG_SINK_METRICS, &e), VG_ERETRY);
    assert_int_equal(send_with(f, 500, VG_SINK_METRICS, &e), VG_ERETRY);
    assert_int_equal(send_with(f, 503, VG_SINK_METRICS, &e), VG_ERETRY);
    assert_int_equal(send_with(f, 400, VG_SINK_METRICS, &e), VG_EPROTO);
    assert_non_null(strstr(e.msg, "400"));
    assert_non_null(strstr(e.msg, "answer 400 from test"));
    assert_int_equal(send_with(f, 413, VG_SINK_METRICS, &e), VG_EPROTO);
    assert_int_equal(send_with(f, 404, VG_SINK_METRICS, &e), VG_EPROTO);
    assert_true(result_count(f, "retry") == 3);
    assert_true(result_count(f, "rejected") == 3);
}

static void test_transport_error_retries(void **state)
{
    struct fx *f = *state;
    vg_httpd_free(f->srv); /* nothing listens on the port any more */
    f->srv = NULL;
    vg_error e = {0};
    assert_int_equal(send_with(f, 200, VG_SINK_METRICS, &e), VG_ERETRY);
    assert_true(strlen(e.msg) > 0);
}

static void test_bad_urls(void **state)
{
    struct vg_sink *s = NULL;
    vg_error e = {0};
    vg_sink_http_opts o = {.url = "ftp://x"};
    assert_int_equal(vg_sink_http_new(&o, NULL, &s, &e), VG_ECONFIG);
    assert_null(s);
    o.url = "";
    assert_int_equal(vg_sink_http_new(&o, NULL, &s, &e), VG_ECONFIG);
    vg_sink_free(NULL);
}

static void test_from_config(void **state)
{
    vg_agent_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_url = "http://127.0.0.1:9";
    struct vg_sink *s = NULL;
    vg_error e = {0};
    assert_int_equal(vg_sink_from_config(&cfg, NULL, &s, &e), VG_OK);
    assert_string_equal(s->ops->name, "http");
    vg_sink_free(s);

    vg_kv_t props[] = {{"linger.ms", "1"}, {"no.such.property", "x"}};
    cfg.kafka_brokers = "127.0.0.1:1";
    cfg.kafka_properties = props;
    cfg.nkafka_properties = 1;
    assert_int_equal(vg_sink_from_config(&cfg, NULL, &s, &e), VG_OK);
    assert_string_equal(s->ops->name, "kafka");
    vg_sink_free(s);

    cfg.nkafka_properties = 2;
    s = NULL;
    assert_int_equal(vg_sink_from_config(&cfg, NULL, &s, &e), VG_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(e.msg, "no.such.property"));
}

/* A message bigger than librdkafka's whole local queue always finds it full:
 * send() must poll and retry a bounded number of times, then say "retry". */
static void test_kafka_queue_full_is_bounded(void **state)
{
    vg_kafka_prop props[] = {{"queue.buffering.max.kbytes", "1"}, {"message.timeout.ms", "1000"}};
    vg_sink_kafka_opts o = {.brokers = "127.0.0.1:1", .props = props, .nprops = 2};
    vg_metrics_t *m = vg_metrics_new();
    struct vg_sink *s = NULL;
    vg_error e = {0};
    assert_int_equal(vg_sink_kafka_new(&o, m, &s, &e), VG_OK);
    static uint8_t big[8192];
    vg_sink_msg msg = {.kind = VG_SINK_METRICS, .tenant = "t", .data = big, .len = sizeof(big)};
    assert_int_equal(vg_sink_send(s, &msg, &e), VG_ERETRY);
    assert_non_null(strstr(e.msg, "ueue"));
    assert_true(vg_metric_value(
                    vg_metrics_counter(m, "vigil_agent_kafka_queue_full_total", "", NULL)) == 20);
    assert_true(vg_metric_value(vg_metrics_counter(m, "vigil_agent_sink_requests_total", "",
                                                   "sink=\"kafka\",result=\"retry\"")) == 1);
    assert_true(vg_metric_value(vg_metrics_gauge(m, "vigil_agent_kafka_queue_depth", "", NULL)) ==
                0);
    vg_sink_free(s);
    vg_metrics_free(m);
}

static vg_err_t fail_send(void *self, const vg_sink_msg *msg, vg_error *err)
{
    (*(int *)self)++;
    return vg_error_set(err, VG_ERETRY, "nope");
}

static void count_free(void *self)
{
    (*(int *)self) += 100;
}

static void test_wrap(void **state)
{
    static const struct vg_sink_ops ops = {.name = "t", .send = fail_send, .free = count_free};
    int calls = 0;
    struct vg_sink *s = vg_sink_wrap(&ops, &calls);
    assert_non_null(s);
    vg_sink_msg msg = {.kind = VG_SINK_METRICS};
    vg_error e = {0};
    assert_int_equal(vg_sink_send(s, &msg, &e), VG_ERETRY);
    assert_string_equal(e.msg, "nope");
    vg_sink_free(s);
    assert_int_equal(calls, 101);
    assert_int_equal(vg_sink_send(NULL, &msg, &e), VG_EINVAL);
    assert_string_equal(vg_sink_kind_name(VG_SINK_AUDIT), "audit");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_headers_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_error_retries, setup, teardown),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_from_config),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_kafka_queue_full_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
