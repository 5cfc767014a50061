/*
 * test_kafka.c - the Kafka helpers, and the sink -> broker -> consumer path.
 *
 * The helper tests (redaction, conf errors, error mapping) always run. The
 * broker tests need a real broker and are skipped, saying why, unless
 * VIGIL_KAFKA_BOOTSTRAP is set (scripts/kafka.sh start prints the address):
 *
 *   export VIGIL_KAFKA_BOOTSTRAP=$(scripts/kafka.sh start)
 *
 * They use fresh topic and group names per run, created through the admin
 * API, so runs never see each other's data. Waits are bounded by deadlines
 * on a condition variable, never by sleeping and hoping.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ingest/kafka_consumer.h"
#include "ship/sink.h"
#include "vigil/alloc.h"
#include "vigil/envelope.h"
#include "vigil/kafka.h"

/* ---- helpers that need no broker ---- */

static void test_redact(void **state)
{
    char out[256];
    assert_string_equal(vg_kafka_redact("sasl.password=hunter2 x=1", out, sizeof(out)),
                        "sasl.password=[REDACTED] x=1");
    assert_string_equal(
        vg_kafka_redact("conf: ssl.key.password = abc, sasl.username = bob", out, sizeof(out)),
        "conf: ssl.key.password = [REDACTED], sasl.username = bob");
    assert_string_equal(vg_kafka_redact("no secrets here", out, sizeof(out)), "no secrets here");
    vg_kafka_redact("sasl.oauthbearer.client.secret=zzz", out, 20); /* truncates safely */
    assert_null(strstr(out, "zzz"));
    assert_true(vg_kafka_prop_is_secret("sasl.password"));
    assert_true(vg_kafka_prop_is_secret("ssl.key.pem"));
    assert_false(vg_kafka_prop_is_secret("bootstrap.servers"));
}

static void test_log_cb_masks_secrets(void **state)
{
    char path[] = "/tmp/vigil-test-kafka-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    vg_kafka_log_cb(NULL, 3, "CONF", "Client config: sasl.password=hunter2 acks=all");
    dup2(saved, 2);
    close(saved);
    char buf[2048] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "[REDACTED]"));
    assert_non_null(strstr(buf, "component=kafka"));
}

static void test_conf_errors(void **state)
{
    rd_kafka_conf_t *conf = NULL;
    vg_error e = {0};
    assert_int_equal(vg_kafka_conf_new("", "t", &conf, &e), VG_ECONFIG);
    assert_null(conf);
    assert_int_equal(vg_kafka_conf_new("127.0.0.1:1", "t", &conf, &e), VG_OK);
    assert_int_equal(vg_kafka_conf_set(conf, "acks", "banana", &e), VG_ECONFIG);
    assert_non_null(strstr(e.msg, "acks"));
    vg_kafka_prop props[] = {{"linger.ms", "3"}, {"bogus.key", "1"}};
    assert_int_equal(vg_kafka_conf_apply(conf, props, 1, &e), VG_OK);
    assert_int_equal(vg_kafka_conf_apply(conf, props, 2, &e), VG_ECONFIG);
    assert_non_null(strstr(e.msg, "bogus.key"));
    rd_kafka_conf_destroy(conf);
}

static void test_err_map(void **state)
{
    assert_int_equal(vg_kafka_err_map(RD_KAFKA_RESP_ERR_NO_ERROR), VG_OK);
    assert_int_equal(vg_kafka_err_map(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), VG_ERETRY);
    assert_int_equal(vg_kafka_err_map(RD_KAFKA_RESP_ERR__TRANSPORT), VG_ERETRY);
    assert_int_equal(vg_kafka_err_map(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS), VG_ERETRY);
    assert_int_equal(vg_kafka_err_map(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), VG_EPROTO);
}

static vg_err_t never_called(void *ud, const char *topic, const char *key, const uint8_t *data,
                             size_t len, vg_error *err)
{
    return VG_OK;
}

static void test_consumer_bad_config(void **state)
{
    vg_kafka_consumer_t *c = NULL;
    vg_error e = {0};
    vg_kafka_prop bad[] = {{"session.timeout.ms", "soon"}};
    vg_kafka_consumer_opts o = {.brokers = "127.0.0.1:1", .props = bad, .nprops = 1};
    assert_int_equal(vg_kafka_consumer_new(&o, never_called, NULL, NULL, &c, &e), VG_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(e.msg, "session.timeout.ms"));
    vg_kafka_consumer_opts none = {
        .brokers = "127.0.0.1:1", .metrics_topic = "", .audit_topic = "", .audit_dlq_topic = ""};
    assert_int_equal(vg_kafka_consumer_new(&none, never_called, NULL, NULL, &c, &e), VG_ECONFIG);
    vg_kafka_consumer_opts dlq_only = {
        .brokers = "127.0.0.1:1", .metrics_topic = "", .audit_topic = ""};
    assert_int_equal(vg_kafka_consumer_new(&dlq_only, never_called, NULL, NULL, &c, &e), VG_OK);
    vg_kafka_consumer_free(c);
    c = NULL;
    vg_kafka_consumer_opts ok = {.brokers = "127.0.0.1:1"};
    assert_int_equal(vg_kafka_consumer_new(&ok, never_called, NULL, NULL, &c, &e), VG_OK);
    vg_kafka_consumer_free(c); /* never started: must not hang */
    vg_kafka_consumer_free(NULL);
}

/* ---- broker tests ---- */

#define NMSG       24
#define DEADLINE_S 90

static const char *bootstrap(void)
{
    const char *b = getenv("VIGIL_KAFKA_BOOTSTRAP");
    return b && *b ? b : NULL;
}

#define NEED_BROKER()                                                                              \
    do {                                                                                           \
        if (!bootstrap()) {                                                                        \
            print_message("VIGIL_KAFKA_BOOTSTRAP is not set: skipping (run scripts/kafka.sh "      \
                          "start and export its output)\n");                                       \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

struct got {
    char topic[160];
    char key[32];
    uint8_t *data;
    size_t len;
};

struct rx {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct got got[NMSG * 2];
    int n;
    int failed_once; /* the first delivery of seq 3 is refused with VG_ERETRY */
    int bad_seen;
};

static vg_err_t on_batch(void *ud, const char *topic, const char *key, const uint8_t *data,
                         size_t len, vg_error *err)
{
    struct rx *r = ud;
    vg_batch_t *b = NULL;
    vg_err_t rc = vg_envelope_decode(data, len, NULL, &b, err);
    pthread_mutex_lock(&r->mu);
    if (rc) {
        r->bad_seen++;
    } else if (b->seq == 3 && !r->failed_once) {
        r->failed_once = 1;
        rc = vg_error_set(err, VG_ERETRY, "test: not now");
    } else if (r->n < NMSG * 2) {
        struct got *g = &r->got[r->n++];
        snprintf(g->topic, sizeof(g->topic), "%s", topic);
        snprintf(g->key, sizeof(g->key), "%s", key ? key : "");
        g->data = vg_malloc(len);
        memcpy(g->data, data, len);
        g->len = len;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    vg_envelope_batch_free(b);
    return rc;
}

static void create_topics(const char *brokers, char **names, int n)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_log_cb(conf, vg_kafka_log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_NewTopic_t *nt[8];
    for (int i = 0; i < n; i++)
        nt[i] = rd_kafka_NewTopic_new(names[i], 2, 1, errstr, sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    assert_non_null(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    assert_non_null(res);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
        if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            fail_msg("create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                     rd_kafka_topic_result_error_string(tr[i]));
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void encode_batch(uint64_t seq, const char *tenant, uint8_t **out, size_t *len)
{
    Prometheus__Label l0 = PROMETHEUS__LABEL__INIT, l1 = PROMETHEUS__LABEL__INIT;
    l0.name = "__name__";
    l0.value = "up";
    l1.name = "job";
    l1.value = "kafka-test";
    Prometheus__Label *lp[] = {&l0, &l1};
    Prometheus__Sample s = PROMETHEUS__SAMPLE__INIT;
    s.timestamp = 1000 + (int64_t)seq;
    s.value = (double)seq;
    Prometheus__Sample *sp[] = {&s};
    Prometheus__TimeSeries ts = PROMETHEUS__TIME_SERIES__INIT;
    ts.labels = lp;
    ts.n_labels = 2;
    ts.samples = sp;
    ts.n_samples = 1;
    Prometheus__TimeSeries *tsp[] = {&ts};
    Vigil__V1__MetricBatch mb = VIGIL__V1__METRIC_BATCH__INIT;
    mb.timeseries = tsp;
    mb.n_timeseries = 1;
    vg_batch_t b = VIGIL__V1__BATCH__INIT;
    b.agent_id = "test-agent";
    b.node = "n1";
    b.tenant = (char *)tenant;
    b.seq = seq;
    b.created_ms = 1;
    b.payload_case = VIGIL__V1__BATCH__PAYLOAD_METRICS;
    b.metrics = &mb;
    vg_error e = {0};
    assert_int_equal(vg_envelope_encode(&b, 0, out, len, &e), VG_OK);
}

struct sent {
    uint8_t *data;
    size_t len;
    const char *tenant;
    vg_sink_kind kind;
};

static int find_got(struct rx *r, const struct sent *s, const char *topic)
{
    int hits = 0;
    for (int i = 0; i < r->n; i++)
        if (r->got[i].len == s->len && memcmp(r->got[i].data, s->data, s->len) == 0 &&
            strcmp(r->got[i].key, s->tenant) == 0 && strcmp(r->got[i].topic, topic) == 0)
            hits++;
    return hits;
}

static double counter(vg_metrics_t *m, const char *name)
{
    return vg_metric_value(vg_metrics_counter(m, name, "", NULL));
}

static int all_in(struct rx *r, vg_metrics_t *m)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n >= NMSG && counter(m, "vigil_kafka_messages_dlq_total") >= 1;
}

/* Wait (bounded) until every batch and the dead letter were handled. The DLQ
 * counter moves after the callback returns, so wake up now and then to look. */
static void wait_all(struct rx *r, vg_metrics_t *m)
{
    time_t end = time(NULL) + DEADLINE_S;
    while (!all_in(r, m) && time(NULL) < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&r->mu);
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        pthread_mutex_unlock(&r->mu);
    }
}

/* A message copied out of librdkafka (its messages must not outlive the handle). */
struct msg_copy {
    uint8_t *payload;
    size_t len;
    char key[64];
    size_t key_len;
    rd_kafka_headers_t *hdrs;
};

static void msg_copy_free(struct msg_copy *c)
{
    vg_free(c->payload);
    if (c->hdrs) rd_kafka_headers_destroy(c->hdrs);
}

static void copy_msg(const rd_kafka_message_t *m, struct msg_copy *out)
{
    rd_kafka_headers_t *h = NULL;
    out->len = m->len;
    out->payload = vg_malloc(m->len + 1);
    memcpy(out->payload, m->payload, m->len);
    out->key_len = m->key_len < sizeof(out->key) ? m->key_len : sizeof(out->key) - 1;
    memcpy(out->key, m->key, out->key_len);
    out->hdrs = rd_kafka_message_headers(m, &h) == 0 ? rd_kafka_headers_copy(h) : NULL;
}

/* Read the first message of a topic with a plain consumer in its own group. */
static int read_first(const char *brokers, const char *topic, const char *group,
                      struct msg_copy *out)
{
    char errstr[256];
    int found = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr));
    rd_kafka_conf_set_log_cb(conf, vg_kafka_log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    for (int i = 0; i < DEADLINE_S * 2 && !found; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m && !m->err) {
            copy_msg(m, out);
            found = 1;
        }
        if (m) rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

static const char *header(const struct msg_copy *m, const char *name, char *buf, size_t n)
{
    const void *v = NULL;
    size_t len = 0;
    if (!m->hdrs || rd_kafka_header_get_last(m->hdrs, name, &v, &len)) return NULL;
    snprintf(buf, n, "%.*s", (int)len, (const char *)v);
    return buf;
}

/* Every partition's committed offset for group equals its end: all was committed. */
static void check_committed(const char *brokers, const char *group, const char *topic)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    rd_kafka_topic_partition_list_add(l, topic, 1);
    assert_int_equal(rd_kafka_committed(rk, l, 30000), 0);
    for (int i = 0; i < l->cnt; i++) {
        int64_t lo = 0, hi = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 30000), 0);
        if (hi > 0) assert_int_equal(l->elems[i].offset, hi);
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

static void test_roundtrip_and_dlq(void **state)
{
    NEED_BROKER();
    const char *brokers = bootstrap();
    char prefix[64], mt[96], at[96], mdlq[112], adlq[112], group[96], dgroup[96];
    snprintf(prefix, sizeof(prefix), "vigil-test-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(mt, sizeof(mt), "%s.metrics", prefix);
    snprintf(at, sizeof(at), "%s.audit", prefix);
    snprintf(mdlq, sizeof(mdlq), "%s.dlq", mt);
    snprintf(adlq, sizeof(adlq), "%s.dlq", at);
    snprintf(group, sizeof(group), "%s-group", prefix);
    snprintf(dgroup, sizeof(dgroup), "%s-dlq-reader", prefix);
    char *topics[] = {mt, at, mdlq, adlq};
    create_topics(brokers, topics, 4);

    vg_metrics_t *m = vg_metrics_new();
    struct vg_sink *sink = NULL;
    vg_error e = {0};
    vg_sink_kafka_opts so = {.brokers = brokers, .metrics_topic = mt, .audit_topic = at};
    assert_int_equal(vg_sink_kafka_new(&so, m, &sink, &e), VG_OK);
    struct sent sent[NMSG];
    for (int i = 0; i < NMSG; i++) {
        sent[i].tenant = i % 3 ? "team-a" : "team-b";
        sent[i].kind = i % 4 == 3 ? VG_SINK_AUDIT : VG_SINK_METRICS;
        encode_batch((uint64_t)i + 1, sent[i].tenant, &sent[i].data, &sent[i].len);
        vg_sink_msg msg = {.kind = sent[i].kind,
                           .tenant = sent[i].tenant,
                           .data = sent[i].data,
                           .len = sent[i].len,
                           .seq = (uint64_t)i + 1};
        assert_int_equal(vg_sink_send(sink, &msg, &e), VG_OK);
    }
    static const uint8_t garbage[] = "this is not a zstd frame";
    vg_sink_msg bad = {.kind = VG_SINK_METRICS,
                       .tenant = "team-a",
                       .data = garbage,
                       .len = sizeof(garbage) - 1,
                       .seq = 99};
    assert_int_equal(vg_sink_send(sink, &bad, &e), VG_OK);
    vg_sink_free(sink);

    struct rx r = {0};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    vg_kafka_consumer_t *c = NULL;
    vg_kafka_consumer_opts co = {
        .brokers = brokers, .group_id = group, .metrics_topic = mt, .audit_topic = at};
    assert_int_equal(vg_kafka_consumer_new(&co, on_batch, &r, m, &c, &e), VG_OK);
    assert_int_equal(vg_kafka_consumer_start(c, &e), VG_OK);
    wait_all(&r, m);
    vg_kafka_consumer_free(c); /* commits and leaves the group */

    assert_int_equal(r.n, NMSG);
    assert_int_equal(r.failed_once, 1);
    assert_true(r.bad_seen >= 1);
    assert_true(counter(m, "vigil_kafka_messages_dlq_total") == 1);
    assert_true(counter(m, "vigil_kafka_messages_consumed_total") == NMSG);
    assert_true(counter(m, "vigil_kafka_consume_retries_total") >= 1);
    for (int i = 0; i < NMSG; i++)
        assert_int_equal(find_got(&r, &sent[i], sent[i].kind == VG_SINK_AUDIT ? at : mt), 1);
    check_committed(brokers, group, mt);

    struct msg_copy dm = {0};
    assert_true(read_first(brokers, mdlq, dgroup, &dm));
    assert_int_equal(dm.len, sizeof(garbage) - 1);
    assert_memory_equal(dm.payload, garbage, dm.len);
    assert_int_equal(dm.key_len, 6);
    assert_memory_equal(dm.key, "team-a", 6);
    char hv[600];
    assert_non_null(header(&dm, "vigil-dlq-reason", hv, sizeof(hv)));
    assert_true(strlen(hv) > 0);
    print_message("dlq reason: %s\n", hv);
    assert_non_null(header(&dm, "vigil-schema", hv, sizeof(hv)));
    assert_string_equal(hv, "1");
    msg_copy_free(&dm);

    for (int i = 0; i < NMSG; i++) vg_free(sent[i].data);
    for (int i = 0; i < r.n; i++) vg_free(r.got[i].data);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    vg_metrics_free(m);
}

static void test_sink_headers_on_broker(void **state)
{
    NEED_BROKER();
    const char *brokers = bootstrap();
    char mt[96], group[112];
    snprintf(mt, sizeof(mt), "vigil-test-h-%d-%ld.metrics", (int)getpid(), (long)time(NULL));
    snprintf(group, sizeof(group), "%s-reader", mt);
    char *topics[] = {mt};
    create_topics(brokers, topics, 1);
    struct vg_sink *sink = NULL;
    vg_error e = {0};
    vg_kafka_prop props[] = {{"linger.ms", "1"}};
    vg_sink_kafka_opts so = {.brokers = brokers, .metrics_topic = mt, .props = props, .nprops = 1};
    assert_int_equal(vg_sink_kafka_new(&so, NULL, &sink, &e), VG_OK);
    static const uint8_t v[] = {1, 2, 3};
    vg_sink_msg msg = {.kind = VG_SINK_METRICS, .tenant = NULL, .data = v, .len = 3, .seq = 1};
    assert_int_equal(vg_sink_send(sink, &msg, &e), VG_OK);
    vg_sink_free(sink);
    struct msg_copy m = {0};
    assert_true(read_first(brokers, mt, group, &m));
    char hv[64];
    assert_string_equal(header(&m, "vigil-schema", hv, sizeof(hv)), "1");
    assert_string_equal(header(&m, "content-encoding", hv, sizeof(hv)), "zstd");
    assert_string_equal(header(&m, "vigil-kind", hv, sizeof(hv)), "metrics");
    assert_string_equal(m.key, "default");
    assert_int_equal(m.len, 3);
    msg_copy_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_log_cb_masks_secrets),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_err_map),
        cmocka_unit_test(test_consumer_bad_config),
        cmocka_unit_test(test_sink_headers_on_broker),
        cmocka_unit_test(test_roundtrip_and_dlq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
