/*
 * kafka_consumer.c - consumer-group input with manual offset storage and a DLQ.
 *
 * Why this shape:
 *  - enable.auto.offset.store=false and enable.auto.commit=false: librdkafka
 *    would otherwise commit what it handed us, not what we stored. Once the
 *    callback said VG_OK (or the message is safely in the dead-letter topic)
 *    offset+1 is pending; before a commit one sync call (the WAL fsync)
 *    makes every pending batch durable, then the offsets are stored and we
 *    commit synchronously ourselves: after a
 *    burst of messages (poll came back empty), at least once a second while
 *    busy, on a rebalance revoke (before the partitions go to another
 *    member, so it does not redo our work), and on close.
 *  - One thread polls and calls the callback, so per-partition order is the
 *    order of the callback calls; the rebalance callback runs on that same
 *    thread inside rd_kafka_consumer_poll, so the pause table needs no lock.
 *  - A transient failure rewinds (seek) and pauses only the affected
 *    partition, with its own backoff, so other tenants keep flowing.
 *  - A bad batch is copied to "<topic>.dlq" with the reason in a header by a
 *    separate idempotent producer, and waited for: only a delivered DLQ copy
 *    lets us commit past the original.
 *  - The agents' audit dead-letter topic (JSON lines they could not parse) is
 *    a third subscription handed to the same callback; its entries are
 *    durable when the callback returns (the DLQ log is fdatasynced), so the
 *    same pending/commit rule holds. Copies of bad batches that land there
 *    (the default audit topic's "<topic>.dlq" is that topic) are skipped.
 */
#include "kafka_consumer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tsdb/tsdb.h"
#include "vigil/clock.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define COMP              "ingest"
#define POLL_MS           100
#define COMMIT_EVERY_MS   1000
#define COMMIT_EVERY_MSGS 1000
#define LAG_EVERY_MS      1000
#define BACKOFF_MIN_MS    500
#define BACKOFF_MAX_MS    30000
#define DLQ_WAIT_MS       30000
#define SEEK_TIMEOUT_MS   5000
#define MAX_KEY           256
#define DLQ_SUFFIX        ".dlq"

/* A partition that failed transiently: paused until resume_ms (0 = running). */
struct backoff {
    char *topic;
    int32_t partition;
    int64_t resume_ms;
    int64_t backoff_ms;
};

/* The next offset of a partition whose batches are stored but maybe not durable. */
struct pending {
    char *topic;
    int32_t partition;
    int64_t offset;
};

struct vg_kafka_consumer {
    rd_kafka_t *rk;
    rd_kafka_t *dlq;
    char *topics[3]; /* metrics, audit, the agents' audit dead letters */
    vg_consume_fn fn;
    vg_consume_sync_fn sync;
    void *ud;
    struct pending *pend;
    size_t npend, cappend;
    pthread_t thread;
    int started;
    atomic_int stop;
    int dirty; /* offsets stored since the last commit */
    int since_commit;
    int64_t last_commit_ms;
    struct backoff *bo;
    size_t nbo, capbo;
    vg_metric_t *consumed, *dlq_count, *commit_failures, *retries, *sync_failures;
    vg_metric_t *lag[3]; /* per subscribed topic; set by the consumer thread */
    int64_t last_lag_ms;
};

/* ---- pending offsets: stored only once the data is durable ---- */

static void pend_drop(vg_kafka_consumer_t *c, size_t i)
{
    vg_free(c->pend[i].topic);
    c->pend[i] = c->pend[--c->npend];
}

static void pend_set(vg_kafka_consumer_t *c, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    for (size_t i = 0; i < c->npend; i++)
        if (c->pend[i].partition == m->partition && strcmp(c->pend[i].topic, topic) == 0) {
            c->pend[i].offset = m->offset + 1;
            return;
        }
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? c->cappend * 2 : 8;
        struct pending *np = vg_realloc(c->pend, cap * sizeof(*np));
        if (!np) return; /* not committed: redelivered later, deduplicated */
        c->pend = np;
        c->cappend = cap;
    }
    char *t = vg_strdup(topic);
    if (!t) return;
    c->pend[c->npend++] = (struct pending){t, m->partition, m->offset + 1};
}

/* Forget pending offsets of partitions we lost (the next owner redoes them). */
static void pend_forget(vg_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *l)
{
    for (int j = 0; j < l->cnt; j++)
        for (size_t i = 0; i < c->npend; i++)
            if (c->pend[i].partition == l->elems[j].partition &&
                strcmp(c->pend[i].topic, l->elems[j].topic) == 0) {
                pend_drop(c, i);
                break;
            }
}

/* Make the pending batches durable, then store their offsets. 0 when done. */
static int pend_flush(vg_kafka_consumer_t *c, const char *why)
{
    vg_error e = {0};
    vg_err_t rc = c->sync ? c->sync(c->ud, &e) : VG_OK;
    if (rc) {
        char q[600];
        vg_metric_inc(c->sync_failures);
        vg_log_warn(COMP, "store not durable; offsets not committed", "when=%s err=%s", why,
                    vg_logq(q, sizeof(q), vg_error_msg(&e, rc)));
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)c->npend);
    for (size_t i = 0; i < c->npend; i++)
        rd_kafka_topic_partition_list_add(l, c->pend[i].topic, c->pend[i].partition)->offset =
            c->pend[i].offset;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, l);
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].err) /* typically revoked meanwhile: the new owner redoes it */
            vg_log_warn(COMP, "cannot store kafka offset", "topic=%s partition=%" PRId32 " err=%s",
                        l->elems[i].topic, l->elems[i].partition,
                        rd_kafka_err2str(l->elems[i].err));
    rd_kafka_topic_partition_list_destroy(l);
    while (c->npend) pend_drop(c, c->npend - 1);
    (void)err; /* per-partition errors were logged; commit whatever was stored */
    c->dirty = 1;
    return 0;
}

/* ---- commits ---- */

static void commit_sync(vg_kafka_consumer_t *c, const char *why)
{
    if (c->npend && pend_flush(c, why)) return;
    if (!c->dirty) return;
    rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
    c->last_commit_ms = vg_clock_mono_ms();
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        vg_metric_inc(c->commit_failures);
        vg_log_warn(COMP, "kafka offset commit failed", "when=%s err=%s", why, rd_kafka_err2str(e));
        return; /* stay dirty: the next commit retries */
    }
    c->dirty = 0;
    c->since_commit = 0;
}

static void maybe_commit(vg_kafka_consumer_t *c, int idle)
{
    if (!c->dirty && !c->npend) return;
    if (idle || c->since_commit >= COMMIT_EVERY_MSGS ||
        vg_clock_mono_ms() - c->last_commit_ms >= COMMIT_EVERY_MS)
        commit_sync(c, idle ? "idle" : "periodic");
}

static void store_next(vg_kafka_consumer_t *c, const rd_kafka_message_t *m)
{
    pend_set(c, m);
    c->since_commit++;
}

/* ---- per-partition backoff ---- */

static struct backoff *bo_find(vg_kafka_consumer_t *c, const char *topic, int32_t part)
{
    for (size_t i = 0; i < c->nbo; i++)
        if (c->bo[i].partition == part && strcmp(c->bo[i].topic, topic) == 0) return &c->bo[i];
    return NULL;
}

static struct backoff *bo_get(vg_kafka_consumer_t *c, const char *topic, int32_t part)
{
    struct backoff *b = bo_find(c, topic, part);
    if (b) return b;
    if (c->nbo == c->capbo) {
        size_t cap = c->capbo ? c->capbo * 2 : 8;
        struct backoff *nb = vg_realloc(c->bo, cap * sizeof(*nb));
        if (!nb) return NULL;
        c->bo = nb;
        c->capbo = cap;
    }
    b = &c->bo[c->nbo];
    memset(b, 0, sizeof(*b));
    b->topic = vg_strdup(topic);
    b->partition = part;
    if (!b->topic) return NULL;
    c->nbo++;
    return b;
}

static void bo_remove(vg_kafka_consumer_t *c, struct backoff *b)
{
    vg_free(b->topic);
    *b = c->bo[--c->nbo];
}

static void pause_resume(vg_kafka_consumer_t *c, const struct backoff *b, int pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, b->topic, b->partition);
    if (pause)
        rd_kafka_pause_partitions(c->rk, l);
    else
        rd_kafka_resume_partitions(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void resume_due(vg_kafka_consumer_t *c)
{
    int64_t now = vg_clock_mono_ms();
    for (size_t i = 0; i < c->nbo; i++) {
        if (!c->bo[i].resume_ms || now < c->bo[i].resume_ms) continue;
        pause_resume(c, &c->bo[i], 0);
        c->bo[i].resume_ms = 0;
    }
}

/* The store's own hint for a tenant over its limit ("retry after N s"), in ms, or 0. */
static int64_t retry_hint(vg_err_t rc, const vg_error *e)
{
    if (rc != VG_ELIMIT || !e || !strstr(e->msg, "retry after ")) return 0;
    int64_t ms = (int64_t)vg_tsdb_retry_after_s(e) * 1000;
    return ms > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms;
}

/* Rewind the partition to m and pause it for its backoff. */
static void retry_later(vg_kafka_consumer_t *c, const rd_kafka_message_t *m, vg_err_t rc,
                        const vg_error *e)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    struct backoff *b = bo_get(c, topic, m->partition);
    int64_t delay = BACKOFF_MIN_MS, hint = retry_hint(rc, e);
    if (b) {
        b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (b->backoff_ms > BACKOFF_MAX_MS) b->backoff_ms = BACKOFF_MAX_MS;
        delay = hint > 0 ? hint : b->backoff_ms;
        b->resume_ms = vg_clock_mono_ms() + delay;
        pause_resume(c, b, 1);
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, m->partition)->offset = m->offset;
    rd_kafka_error_t *se = rd_kafka_seek_partitions(c->rk, l, SEEK_TIMEOUT_MS);
    if (se) rd_kafka_error_destroy(se);
    rd_kafka_topic_partition_list_destroy(l);
    vg_metric_inc(c->retries);
    vg_log_warn(COMP, "batch not stored; will retry",
                "topic=%s partition=%" PRId32 " offset=%" PRId64 " retry_in_ms=%" PRId64 " err=%s",
                topic, m->partition, m->offset, delay, vg_error_msg(e, rc));
}

static void succeeded(vg_kafka_consumer_t *c, const rd_kafka_message_t *m)
{
    if (!c->nbo) return;
    struct backoff *b = bo_find(c, rd_kafka_topic_name(m->rkt), m->partition);
    if (b) bo_remove(c, b);
}

/* ---- dead letters ---- */

static vg_err_t dlq_send(vg_kafka_consumer_t *c, const rd_kafka_message_t *m, const char *reason)
{
    char topic[512];
    rd_kafka_headers_t *orig = NULL, *h;
    snprintf(topic, sizeof(topic), "%s" DLQ_SUFFIX, rd_kafka_topic_name(m->rkt));
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "vigil-dlq-reason", -1, reason, -1);
    rd_kafka_resp_err_t e = vg_kafka_produce_wait(c->dlq, topic, m->key, m->key_len, m->payload,
                                                  m->len, h, DLQ_WAIT_MS);
    if (e) {
        vg_log_warn(COMP, "cannot write dead letter", "topic=%s err=%s", topic,
                    rd_kafka_err2str(e));
        return VG_ERETRY;
    }
    return VG_OK;
}

/* Codes that mean "this batch is bad", as opposed to "not now". */
static int is_bad_batch(vg_err_t rc)
{
    return rc == VG_EPARSE || rc == VG_EINVAL || rc == VG_ETOOLARGE || rc == VG_ECORRUPT ||
           rc == VG_EPROTO || rc == VG_EUNSUPPORTED;
}

static void dead_letter(vg_kafka_consumer_t *c, const rd_kafka_message_t *m, vg_err_t rc,
                        const vg_error *e)
{
    char q[600];
    const char *reason = vg_error_msg(e, rc);
    vg_error de = {0};
    if (dlq_send(c, m, reason)) {
        vg_error_set(&de, VG_ERETRY, "dead-letter topic not available");
        retry_later(c, m, VG_ERETRY, &de);
        return;
    }
    vg_metric_inc(c->dlq_count);
    vg_log_warn(COMP, "bad batch sent to dead-letter topic",
                "topic=%s partition=%" PRId32 " offset=%" PRId64 " reason=%s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                vg_logq(q, sizeof(q), reason));
    store_next(c, m);
    succeeded(c, m);
}

/* ---- the consumer thread ---- */

/* A collector's own copy of a bad batch (it keeps the batch's vigil-schema
 * header) on the agents' dead-letter topic: with the default names the audit
 * topic's "<topic>.dlq" is that topic. It is not an agent dead letter. */
static int is_batch_copy(vg_kafka_consumer_t *c, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t n;
    if (!c->topics[2] || strcmp(rd_kafka_topic_name(m->rkt), c->topics[2]) != 0) return 0;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h) return 0;
    return rd_kafka_header_get_last(h, "vigil-schema", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void handle(vg_kafka_consumer_t *c, const rd_kafka_message_t *m)
{
    char key[MAX_KEY];
    const char *tenant = NULL;
    vg_error e = {0};
    vg_err_t rc = VG_OK;
    if (is_batch_copy(c, m)) {
        vg_log_info(COMP, "skipped a copied bad batch on the audit dead-letter topic",
                    "topic=%s partition=%" PRId32 " offset=%" PRId64, rd_kafka_topic_name(m->rkt),
                    m->partition, m->offset);
        store_next(c, m);
        return;
    }
    if (m->key && m->key_len >= sizeof(key)) {
        rc = vg_error_set(&e, VG_EINVAL, "tenant key longer than %d bytes", MAX_KEY - 1);
    } else if (m->key) {
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        tenant = key;
    }
    if (!rc)
        rc = c->fn(c->ud, rd_kafka_topic_name(m->rkt), tenant,
                   m->payload ? m->payload : (const void *)"", m->len, &e);
    if (rc == VG_OK) {
        vg_metric_inc(c->consumed);
        store_next(c, m);
        succeeded(c, m);
    } else if (is_bad_batch(rc)) {
        dead_letter(c, m, rc, &e);
    } else {
        retry_later(c, m, rc, &e);
    }
}

static void consumer_error(const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    vg_log_warn(COMP, "kafka consumer error", "topic=%s err=%s",
                m->rkt ? rd_kafka_topic_name(m->rkt) : "-", rd_kafka_message_errstr(m));
}

/* ---- consumer lag ---- */

/* Messages behind the high watermark, summed over the partitions of topic
 * this member owns. Uses librdkafka's cached watermarks (refreshed by
 * fetches), so it costs no broker round trip. Runs on the consumer thread,
 * which owns rk, so a /metrics scrape never touches a freed handle. */
static double topic_lag(vg_kafka_consumer_t *c, const char *topic,
                        const rd_kafka_topic_partition_list_t *parts)
{
    double lag = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, hi;
        if (strcmp(p->topic, topic)) continue;
        if (rd_kafka_get_watermark_offsets(c->rk, p->topic, p->partition, &lo, &hi) || hi < 0)
            continue;
        int64_t pos = p->offset >= 0 ? p->offset : lo;
        if (hi > pos) lag += (double)(hi - pos);
    }
    return lag;
}

static void update_lag(vg_kafka_consumer_t *c)
{
    int64_t now = vg_clock_mono_ms();
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (now - c->last_lag_ms < LAG_EVERY_MS) return;
    c->last_lag_ms = now;
    if (rd_kafka_assignment(c->rk, &parts) || !parts) return;
    rd_kafka_position(c->rk, parts);
    for (int t = 0; t < 3; t++)
        if (c->lag[t] && c->topics[t]) vg_metric_set(c->lag[t], topic_lag(c, c->topics[t], parts));
    rd_kafka_topic_partition_list_destroy(parts);
}

static void *consumer_main(void *arg)
{
    vg_kafka_consumer_t *c = arg;
    while (!atomic_load(&c->stop)) {
        resume_due(c);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, POLL_MS);
        if (m) {
            if (m->err)
                consumer_error(m);
            else
                handle(c, m);
            rd_kafka_message_destroy(m);
        }
        maybe_commit(c, m == NULL);
        update_lag(c);
    }
    return NULL;
}

/* ---- rebalances ---- */

static void forget_partitions(vg_kafka_consumer_t *c, const rd_kafka_topic_partition_list_t *l)
{
    for (int i = 0; i < l->cnt; i++) {
        struct backoff *b = bo_find(c, l->elems[i].topic, l->elems[i].partition);
        if (!b) continue;
        if (b->resume_ms) pause_resume(c, b, 0);
        bo_remove(c, b);
    }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    vg_kafka_consumer_t *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *err = NULL;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        vg_log_info(COMP, "kafka partitions assigned", "n=%d protocol=%s", parts->cnt,
                    rd_kafka_rebalance_protocol(rk));
        if (coop)
            err = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
    } else {
        vg_log_info(COMP, "kafka partitions revoked", "n=%d lost=%d reason=%s", parts->cnt,
                    rd_kafka_assignment_lost(rk), rd_kafka_err2name(e));
        /* Commit what we processed so the next owner does not redo it; a lost
         * assignment cannot commit any more, the next owner redoes it instead. */
        if (rd_kafka_assignment_lost(rk))
            pend_forget(c, parts);
        else
            commit_sync(c, "revoke"); /* sync the WAL, store, commit */
        pend_forget(c, parts);        /* not durable (sync failed): the next owner redoes them */
        c->dirty = 0;
        forget_partitions(c, parts);
        if (coop)
            err = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (err) {
        vg_log_error(COMP, "kafka assignment failed", "err=%s", rd_kafka_error_string(err));
        rd_kafka_error_destroy(err);
    }
}

/* ---- construction ---- */

static vg_err_t build_conf(const vg_kafka_consumer_opts *o, int consumer, rd_kafka_conf_t **out,
                           vg_error *err)
{
    const vg_kafka_prop cdefaults[] = {
        {"group.id", o->group_id && *o->group_id ? o->group_id : "vigil-collector"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* A subscribed topic that does not exist yet (the audit dead-letter
         * topic appears with the first bad line) is noticed at the next
         * metadata refresh: 10 s instead of librdkafka's 5 min. */
        {"topic.metadata.refresh.interval.ms", "10000"},
    };
    static const vg_kafka_prop pdefaults[] = {
        {"enable.idempotence", "true"},  {"acks", "all"},
        {"compression.type", "none"},    {"linger.ms", "0"},
        {"message.timeout.ms", "30000"},
    };
    rd_kafka_conf_t *conf = NULL;
    vg_err_t rc =
        vg_kafka_conf_new(o->brokers, consumer ? "collector" : "collector-dlq", &conf, err);
    if (rc) return rc;
    if (consumer)
        rc = vg_kafka_conf_apply(conf, cdefaults, sizeof(cdefaults) / sizeof(cdefaults[0]), err);
    else
        rc = vg_kafka_conf_apply(conf, pdefaults, sizeof(pdefaults) / sizeof(pdefaults[0]), err);
    if (!rc) rc = vg_kafka_conf_apply(conf, o->props, o->nprops, err);
    if (rc) {
        rd_kafka_conf_destroy(conf);
        vg_error_prefix(err, "kafka consumer");
        return rc;
    }
    *out = conf;
    return VG_OK;
}

static vg_err_t make_client(vg_kafka_consumer_t *c, const vg_kafka_consumer_opts *o, int consumer,
                            vg_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    vg_err_t rc = build_conf(o, consumer, &conf, err);
    if (rc) return rc;
    if (consumer) {
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    } else {
        rd_kafka_conf_set_dr_msg_cb(conf, vg_kafka_dr_msg_cb);
    }
    rd_kafka_t *rk = rd_kafka_new(consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf, errstr,
                                  sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return vg_error_set(err, VG_ECONFIG, "kafka consumer: %s", errstr);
    }
    if (consumer) {
        c->rk = rk;
        rd_kafka_poll_set_consumer(rk);
    } else {
        c->dlq = rk;
    }
    return VG_OK;
}

static void register_metrics(vg_kafka_consumer_t *c, vg_metrics_t *m)
{
    if (!m) return;
    c->consumed = vg_metrics_counter(m, "vigil_kafka_messages_consumed_total",
                                     "Kafka messages stored by the collector.", NULL);
    c->dlq_count = vg_metrics_counter(m, "vigil_kafka_messages_dlq_total",
                                      "Bad Kafka messages copied to a dead-letter topic.", NULL);
    c->commit_failures = vg_metrics_counter(m, "vigil_kafka_commit_failures_total",
                                            "Kafka offset commits that failed.", NULL);
    c->retries = vg_metrics_counter(m, "vigil_kafka_consume_retries_total",
                                    "Kafka messages rewound for a later retry.", NULL);
    c->sync_failures =
        vg_metrics_counter(m, "vigil_kafka_sync_failures_total",
                           "Commits held back because the store was not durable.", NULL);
    for (int t = 0; t < 3; t++) {
        char lab[300];
        if (!c->topics[t]) continue;
        snprintf(lab, sizeof(lab), "topic=\"%.250s\"", c->topics[t]);
        c->lag[t] = vg_metrics_gauge(m, "vigil_kafka_consumer_lag",
                                     "Messages behind the high watermark on the partitions this "
                                     "collector owns, per topic.",
                                     lab);
    }
}

static char *topic_or(const char *t, const char *def)
{
    if (t && !*t) return NULL; /* "" = not subscribed */
    return vg_strdup(t ? t : def);
}

vg_err_t vg_kafka_consumer_new(const vg_kafka_consumer_opts *o, vg_consume_fn fn, void *ud,
                               vg_metrics_t *m, vg_kafka_consumer_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!o || !fn)
        return vg_error_set(err, VG_EINVAL, "kafka consumer: options and callback required");
    vg_kafka_consumer_t *c = vg_calloc(1, sizeof(*c));
    if (!c) return vg_error_set(err, VG_ENOMEM, "kafka consumer: out of memory");
    c->fn = fn;
    c->sync = o->sync;
    c->ud = ud;
    c->topics[0] = topic_or(o->metrics_topic, "vigil.metrics");
    c->topics[1] = topic_or(o->audit_topic, "vigil.audit");
    c->topics[2] = topic_or(o->audit_dlq_topic, "vigil.audit.dlq");
    if (!c->topics[0] && !c->topics[1] && !c->topics[2]) {
        rc = vg_error_set(err, VG_ECONFIG, "kafka consumer: no topic to consume");
        goto fail;
    }
    if ((rc = make_client(c, o, 1, err)) || (rc = make_client(c, o, 0, err))) goto fail;
    register_metrics(c, m);
    c->last_commit_ms = vg_clock_mono_ms();
    *out = c;
    return VG_OK;
fail:
    vg_kafka_consumer_free(c);
    return rc;
}

vg_err_t vg_kafka_consumer_start(vg_kafka_consumer_t *c, vg_error *err)
{
    if (!c || c->started) return vg_error_set(err, VG_EINVAL, "kafka consumer: already started");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    for (int i = 0; i < 3; i++)
        if (c->topics[i]) rd_kafka_topic_partition_list_add(l, c->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return vg_error_set(err, VG_ECONFIG, "kafka consumer: subscribe: %s", rd_kafka_err2str(e));
    if (pthread_create(&c->thread, NULL, consumer_main, c))
        return vg_error_set(err, VG_EINTERNAL, "kafka consumer: cannot start thread");
    c->started = 1;
    return VG_OK;
}

void vg_kafka_consumer_free(vg_kafka_consumer_t *c)
{
    if (!c) return;
    atomic_store(&c->stop, 1);
    if (c->started) pthread_join(c->thread, NULL);
    if (c->rk) {
        commit_sync(c, "close");
        rd_kafka_consumer_close(c->rk); /* revokes through rebalance_cb, leaves the group */
        rd_kafka_destroy(c->rk);
    }
    vg_kafka_producer_close(c->dlq, 10000);
    while (c->nbo) bo_remove(c, &c->bo[c->nbo - 1]);
    while (c->npend) pend_drop(c, c->npend - 1);
    vg_free(c->pend);
    vg_free(c->bo);
    for (int i = 0; i < 3; i++) vg_free(c->topics[i]);
    vg_free(c);
}
