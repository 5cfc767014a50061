/*
 * kafka_consumer.h - the collector's Kafka input: a consumer-group member that
 * hands each batch to a callback and commits only what the callback stored.
 *
 * At-least-once: an offset is kept pending once the callback returned VG_OK
 * (the data is in the store) and stored only after the sync callback made
 * everything stored so far durable (the WAL fsync: one for many batches).
 * Stored offsets are committed synchronously after each burst of messages,
 * at least once a second, and before partitions are given up in a
 * rebalance (revoked partitions are synced and committed first). A batch the
 * callback calls bad (VG_EPARSE, VG_EINVAL and other final codes) is copied
 * unchanged to "<topic>.dlq" with a `vigil-dlq-reason` header and then
 * committed past, so one bad message never blocks its partition. Any other
 * error is transient: the partition is rewound to that message and paused
 * for a backoff (0.5 s doubling to 30 s), and the same message is offered again;
 * VG_ELIMIT (a tenant over its limit) pauses for the store's hint
 * (vg_tsdb_retry_after_s: "retry after N s" in the message), else the backoff.
 */
#ifndef VIGIL_COLLECTOR_KAFKA_CONSUMER_H
#define VIGIL_COLLECTOR_KAFKA_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/kafka.h"
#include "vigil/metrics.h"

typedef struct vg_kafka_consumer vg_kafka_consumer_t;

/* Called on the consumer thread for each message. tenant_key is the message
 * key as a string (NULL when the message has none); data is the value (never
 * NULL, may be empty). Return VG_OK once the batch is stored, VG_EPARSE or
 * VG_EINVAL (also VG_ETOOLARGE, VG_ECORRUPT, VG_EPROTO, VG_EUNSUPPORTED) for a
 * bad batch that goes to the dead-letter topic, anything else to retry later. */
typedef vg_err_t (*vg_consume_fn)(void *ud, const char *topic, const char *tenant_key,
                                  const uint8_t *data, size_t len, vg_error *err);

/* Called on the consumer thread before pending offsets are stored: make
 * everything the consume callback stored so far durable. VG_OK, or any error
 * to keep the offsets pending (retried at the next commit). */
typedef vg_err_t (*vg_consume_sync_fn)(void *ud, vg_error *err);

typedef struct vg_kafka_consumer_opts {
    const char *brokers;
    const char *group_id;        /* NULL = "vigil-collector" */
    const char *metrics_topic;   /* NULL = "vigil.metrics"; "" = do not subscribe */
    const char *audit_topic;     /* NULL = "vigil.audit"; "" = do not subscribe */
    const char *audit_dlq_topic; /* agents' audit dead letters; NULL = "vigil.audit.dlq"; "" = no */
    const vg_kafka_prop *props;  /* applied after our defaults, to consumer and DLQ producer */
    size_t nprops;
    vg_consume_sync_fn sync; /* NULL: data is durable when the consume callback returns */
} vg_kafka_consumer_opts;

/* Build the consumer and the DLQ producer (nothing is consumed before start).
 * VG_ECONFIG with librdkafka's text for a bad property. fn/ud/m are borrowed
 * (m may be NULL). On success the caller frees *out with vg_kafka_consumer_free. */
vg_err_t vg_kafka_consumer_new(const vg_kafka_consumer_opts *o, vg_consume_fn fn, void *ud,
                               vg_metrics_t *m, vg_kafka_consumer_t **out, vg_error *err);

/* Subscribe to the topics and start the consumer thread. */
vg_err_t vg_kafka_consumer_start(vg_kafka_consumer_t *c, vg_error *err);

/* Stop the thread, commit what was stored, leave the group, free. NULL is a no-op. */
void vg_kafka_consumer_free(vg_kafka_consumer_t *c);

#endif
