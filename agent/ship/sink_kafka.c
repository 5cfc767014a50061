/*
 * sink_kafka.c - ship encoded batches to Kafka through librdkafka.
 *
 * send() produces one message and then polls until librdkafka's delivery
 * report for that message has fired: only then do we know the broker has
 * it (acks=all on an idempotent producer, so no duplicates from librdkafka's
 * own retries and no reordering within a partition). That turns an
 * asynchronous producer into the synchronous "durably accepted" contract of
 * sink.h, which is what lets the batcher, and later the tail checkpoints
 * and the spool, advance only after delivery. One message in flight per
 * batch costs a round trip, which is negligible next to a batch of
 * thousands of samples.
 *
 * The per-message wait state lives on the heap: if our deadline passes
 * before the report (it should not, librdkafka reports within
 * message.timeout.ms), the state is marked abandoned and the report, when it
 * comes, frees it. A fatal producer error (the idempotence state is broken)
 * would fail every later message, so the producer is rebuilt from a saved
 * copy of its conf and the batch is retried rather than dropped.
 *
 * The value is already a zstd frame, so Kafka-level compression is off.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink.h"
#include "vigil/alloc.h"
#include "vigil/envelope.h"
#include "vigil/kafka.h"
#include "vigil/log.h"

#define DEFAULT_MSG_TIMEOUT_MS 30000
#define WAIT_MARGIN_MS         2000

struct dr_wait {
    int done;
    int abandoned;
    rd_kafka_resp_err_t err;
};

struct kafka_sink {
    pthread_mutex_t mu;
    rd_kafka_t *rk;
    rd_kafka_conf_t *tmpl; /* copy of the final conf, to rebuild after a fatal error */
    char *topic[2];        /* by vg_sink_kind */
    int64_t wait_ms;
    vg_metric_t *ok, *retry, *rejected;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct dr_wait *w = m->_private;
    if (!w) return;
    if (w->abandoned) {
        vg_free(w);
        return;
    }
    w->err = m->err;
    w->done = 1;
}

/* Deliver what is still queued (bounded), purge the rest, destroy. */
static void producer_close(rd_kafka_t *rk, int flush_ms)
{
    if (!rk) return;
    if (rd_kafka_flush(rk, flush_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        vg_log_warn("ship", "kafka producer closing with undelivered messages", "sink=kafka n=%d",
                    rd_kafka_outq_len(rk));
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(rk, 1000); /* serves the purge reports, freeing abandoned waits */
    }
    rd_kafka_destroy(rk);
}

static void kafka_free(void *self)
{
    struct kafka_sink *k = self;
    if (!k) return;
    producer_close(k->rk, 10000);
    if (k->tmpl) rd_kafka_conf_destroy(k->tmpl);
    vg_free(k->topic[0]);
    vg_free(k->topic[1]);
    pthread_mutex_destroy(&k->mu);
    vg_free(k);
}

/* rd_kafka_new from a copy of the template (rd_kafka_new takes the copy). */
static vg_err_t producer_open(struct kafka_sink *k, vg_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_dup(k->tmpl);
    if (!conf) return vg_error_set(err, VG_ENOMEM, "kafka sink: out of memory");
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        return vg_error_set(err, VG_ECONFIG, "kafka sink: cannot create producer: %s", errstr);
    }
    return VG_OK;
}

/* After a fatal error the producer refuses everything: start a new one. */
static void producer_rebuild_if_fatal(struct kafka_sink *k)
{
    char why[512];
    vg_error e = {0};
    if (!k->rk) return;
    if (rd_kafka_fatal_error(k->rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    vg_log_error("ship", "kafka producer hit a fatal error; rebuilding it", "sink=kafka reason=%s",
                 why);
    producer_close(k->rk, 0);
    k->rk = NULL;
    if (producer_open(k, &e))
        vg_log_error("ship", "kafka producer rebuild failed", "sink=kafka err=%s", e.msg);
}

static rd_kafka_headers_t *make_headers(const vg_sink_msg *msg)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    const char *kind = vg_sink_kind_name(msg->kind);
    rd_kafka_header_add(h, "vigil-schema", -1, VG_ENVELOPE_SCHEMA, -1);
    rd_kafka_header_add(h, "content-encoding", -1, "zstd", -1);
    rd_kafka_header_add(h, "vigil-kind", -1, kind, -1);
    return h;
}

static rd_kafka_resp_err_t produce(struct kafka_sink *k, const vg_sink_msg *msg, struct dr_wait *w)
{
    const char *tenant = msg->tenant && *msg->tenant ? msg->tenant : "default";
    rd_kafka_headers_t *h = make_headers(msg);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k->rk, RD_KAFKA_V_TOPIC(k->topic[msg->kind == VG_SINK_AUDIT]),
        RD_KAFKA_V_KEY(tenant, strlen(tenant)), RD_KAFKA_V_VALUE((void *)msg->data, msg->len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(w),
        RD_KAFKA_V_END);
    if (e) rd_kafka_headers_destroy(h); /* on success librdkafka owns them */
    return e;
}

/* Poll until w's report fired or the deadline passed; returns 1 when it fired. */
static int wait_report(struct kafka_sink *k, struct dr_wait *w)
{
    int64_t deadline = now_ms() + k->wait_ms;
    while (!w->done && now_ms() < deadline) rd_kafka_poll(k->rk, 50);
    return w->done;
}

static vg_err_t finish(struct kafka_sink *k, const vg_sink_msg *msg, rd_kafka_resp_err_t e,
                       vg_error *err)
{
    vg_err_t rc = vg_kafka_err_map(e);
    if (e == RD_KAFKA_RESP_ERR__FATAL) rc = VG_ERETRY; /* the producer, not the batch */
    if (rc == VG_OK) {
        vg_metric_inc(k->ok);
        return VG_OK;
    }
    vg_metric_inc(rc == VG_ERETRY ? k->retry : k->rejected);
    vg_error_set(err, rc, "kafka sink: topic %s seq %" PRIu64 ": %s",
                 k->topic[msg->kind == VG_SINK_AUDIT], msg->seq, rd_kafka_err2str(e));
    if (rc != VG_ERETRY)
        vg_log_warn("ship", "kafka refused batch", "sink=kafka seq=%" PRIu64 " err=%s", msg->seq,
                    rd_kafka_err2name(e));
    return rc;
}

static vg_err_t kafka_send_locked(struct kafka_sink *k, const vg_sink_msg *msg, vg_error *err)
{
    if (!k->rk && producer_open(k, err)) return VG_ERETRY;
    struct dr_wait *w = vg_calloc(1, sizeof(*w));
    if (!w) return vg_error_set(err, VG_ERETRY, "kafka sink: out of memory");
    rd_kafka_resp_err_t e = produce(k, msg, w);
    if (e) {
        vg_free(w);
        rd_kafka_poll(k->rk, e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? 100 : 0);
    } else if (!wait_report(k, w)) {
        w->abandoned = 1; /* the report frees it */
        e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    } else {
        e = w->err;
        vg_free(w);
    }
    vg_err_t rc = finish(k, msg, e, err);
    producer_rebuild_if_fatal(k);
    return rc;
}

static vg_err_t kafka_send(void *self, const vg_sink_msg *msg, vg_error *err)
{
    struct kafka_sink *k = self;
    pthread_mutex_lock(&k->mu);
    vg_err_t rc = kafka_send_locked(k, msg, err);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static const struct vg_sink_ops kafka_ops = {
    .name = "kafka",
    .send = kafka_send,
    .free = kafka_free,
};

static vg_err_t build_conf(const vg_sink_kafka_opts *o, rd_kafka_conf_t **out, vg_error *err)
{
    static const vg_kafka_prop defaults[] = {
        {"enable.idempotence", "true"},  {"acks", "all"},
        {"compression.type", "none"},    {"linger.ms", "5"},
        {"message.timeout.ms", "30000"},
    };
    rd_kafka_conf_t *conf = NULL;
    vg_err_t rc = vg_kafka_conf_new(o->brokers, "agent", &conf, err);
    if (rc) return rc;
    rc = vg_kafka_conf_apply(conf, defaults, sizeof(defaults) / sizeof(defaults[0]), err);
    if (!rc) rc = vg_kafka_conf_apply(conf, o->props, o->nprops, err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        vg_error_prefix(err, "kafka sink");
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    *out = conf;
    return VG_OK;
}

static int64_t conf_timeout_ms(rd_kafka_conf_t *conf)
{
    char v[32];
    size_t n = sizeof(v);
    if (rd_kafka_conf_get(conf, "message.timeout.ms", v, &n) != RD_KAFKA_CONF_OK)
        return DEFAULT_MSG_TIMEOUT_MS;
    long long t = strtoll(v, NULL, 10);
    return t > 0 ? t : DEFAULT_MSG_TIMEOUT_MS;
}

static void kafka_metrics(struct kafka_sink *k, vg_metrics_t *m)
{
    static const char help[] = "Batches sent by the agent's sink, by result.";
    if (!m) return;
    k->ok = vg_metrics_counter(m, "vigil_agent_sink_requests_total", help,
                               "sink=\"kafka\",result=\"ok\"");
    k->retry = vg_metrics_counter(m, "vigil_agent_sink_requests_total", help,
                                  "sink=\"kafka\",result=\"retry\"");
    k->rejected = vg_metrics_counter(m, "vigil_agent_sink_requests_total", help,
                                     "sink=\"kafka\",result=\"rejected\"");
}

vg_err_t vg_sink_kafka_new(const vg_sink_kafka_opts *o, vg_metrics_t *m, struct vg_sink **out,
                           vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!o) return vg_error_set(err, VG_EINVAL, "kafka sink: no options");
    struct kafka_sink *k = vg_calloc(1, sizeof(*k));
    if (!k) return vg_error_set(err, VG_ENOMEM, "kafka sink: out of memory");
    pthread_mutex_init(&k->mu, NULL);
    k->topic[0] = vg_strdup(o->metrics_topic ? o->metrics_topic : "vigil.metrics");
    k->topic[1] = vg_strdup(o->audit_topic ? o->audit_topic : "vigil.audit");
    if (!k->topic[0] || !k->topic[1]) {
        rc = vg_error_set(err, VG_ENOMEM, "kafka sink: out of memory");
        goto fail;
    }
    if ((rc = build_conf(o, &k->tmpl, err))) goto fail;
    k->wait_ms = conf_timeout_ms(k->tmpl) + WAIT_MARGIN_MS;
    if ((rc = producer_open(k, err))) goto fail;
    kafka_metrics(k, m);
    *out = vg_sink_wrap(&kafka_ops, k);
    if (!*out) return vg_error_set(err, VG_ENOMEM, "kafka sink: out of memory");
    return VG_OK;
fail:
    kafka_free(k);
    return rc;
}
