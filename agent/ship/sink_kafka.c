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
 * The waiting itself is vg_kafka_produce_wait (common/kafka.c). A fatal
 * producer error (the idempotence state is broken) would fail every later
 * message, so the producer is rebuilt from a saved copy of its conf and the
 * batch is retried rather than dropped.
 *
 * When librdkafka's local queue is full (RD_KAFKA_RESP_ERR__QUEUE_FULL),
 * send() polls (serving delivery reports, which is what frees room) and
 * tries again, a bounded number of times, then returns VG_ERETRY so the
 * batcher backs off or spools: the ship thread pauses, it never spins and
 * never drops. The queue depth (rd_kafka_outq_len) is a gauge.
 *
 * The value is already a zstd frame, so Kafka-level compression is off.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "vigil/alloc.h"
#include "vigil/envelope.h"
#include "vigil/kafka.h"
#include "vigil/log.h"

#define DEFAULT_MSG_TIMEOUT_MS 30000
#define WAIT_MARGIN_MS         2000
#define QUEUE_FULL_TRIES       20 /* each one polls for 100 ms: about 2 s in all */
#define QUEUE_FULL_POLL_MS     100

struct kafka_sink {
    pthread_mutex_t mu;
    rd_kafka_t *rk;
    rd_kafka_conf_t *tmpl; /* copy of the final conf, to rebuild after a fatal error */
    char *topic[2];        /* by vg_sink_kind */
    int64_t wait_ms;
    vg_sink_counters cnt;
    vg_metric_t *queue_full, *outq;
};

static void kafka_free(void *self)
{
    struct kafka_sink *k = self;
    if (!k) return;
    vg_kafka_producer_close(k->rk, 10000);
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
    vg_kafka_producer_close(k->rk, 0);
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

static vg_err_t finish(struct kafka_sink *k, const vg_sink_msg *msg, rd_kafka_resp_err_t e,
                       vg_error *err)
{
    vg_err_t rc = vg_kafka_err_map(e);
    if (e == RD_KAFKA_RESP_ERR__FATAL) rc = VG_ERETRY; /* the producer, not the batch */
    if (rc == VG_OK) {
        vg_metric_inc(k->cnt.ok);
        return VG_OK;
    }
    vg_metric_inc(rc == VG_ERETRY ? k->cnt.retry : k->cnt.rejected);
    vg_error_set(err, rc, "kafka sink: topic %s seq %" PRIu64 ": %s",
                 k->topic[msg->kind == VG_SINK_AUDIT], msg->seq, rd_kafka_err2str(e));
    if (rc != VG_ERETRY)
        vg_log_warn("ship", "kafka refused batch", "sink=kafka seq=%" PRIu64 " err=%s", msg->seq,
                    rd_kafka_err2name(e));
    return rc;
}

/* Produce and wait for the report; on a full local queue poll and retry, bounded. */
static rd_kafka_resp_err_t produce(struct kafka_sink *k, const vg_sink_msg *msg)
{
    const char *tenant = msg->tenant && *msg->tenant ? msg->tenant : "default";
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; i < QUEUE_FULL_TRIES; i++) {
        e = vg_kafka_produce_wait(k->rk, k->topic[msg->kind == VG_SINK_AUDIT], tenant,
                                  strlen(tenant), msg->data, msg->len, make_headers(msg),
                                  k->wait_ms);
        vg_metric_set(k->outq, (double)rd_kafka_outq_len(k->rk));
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
        vg_metric_inc(k->queue_full); /* vg_kafka_produce_wait polled 100 ms before returning */
    }
    return e;
}

static vg_err_t kafka_send_locked(struct kafka_sink *k, const vg_sink_msg *msg, vg_error *err)
{
    if (!k->rk && producer_open(k, err)) return VG_ERETRY;
    vg_err_t rc = finish(k, msg, produce(k, msg), err);
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
    rd_kafka_conf_set_dr_msg_cb(conf, vg_kafka_dr_msg_cb);
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
    vg_sink_counters_init(&k->cnt, m, "kafka");
    if (!m) return;
    k->queue_full =
        vg_metrics_counter(m, "vigil_agent_kafka_queue_full_total",
                           "Produce attempts that found librdkafka's queue full.", NULL);
    k->outq =
        vg_metrics_gauge(m, "vigil_agent_kafka_queue_depth",
                         "Messages and requests waiting in librdkafka (rd_kafka_outq_len).", NULL);
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
