/*
 * sink.h - where encoded batches go: Kafka, HTTP, and (next) the disk spool.
 *
 * A sink is a table of callbacks plus its state, like fluent-bit's output
 * plugins: adding a transport means one file and one constructor. The
 * contract that makes at-least-once delivery work is on send(): it returns
 * VG_OK only once the other side has durably accepted the bytes (HTTP 2xx,
 * or the Kafka delivery report for that very message), VG_ERETRY when the
 * same bytes may succeed later (the caller keeps them and backs off), and
 * any other code when they never will (the caller drops or dead-letters
 * them). The bytes are always a complete envelope (vg_envelope_encode), so a
 * sink never looks inside them and the spool can store them as they are.
 *
 * Sinks are driven by one ship thread; send() serialises callers anyway.
 */
#ifndef VIGIL_AGENT_SINK_H
#define VIGIL_AGENT_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/kafka.h"
#include "vigil/metrics.h"

struct vg_agent_config; /* agent/config.h */

typedef enum vg_sink_kind {
    VG_SINK_METRICS = 0,
    VG_SINK_AUDIT = 1,
} vg_sink_kind;

/* One encoded batch. Everything is borrowed for the duration of send(). */
typedef struct vg_sink_msg {
    vg_sink_kind kind;
    const char *tenant; /* NULL = "default" */
    const uint8_t *data;
    size_t len;
    uint64_t seq; /* the Batch's seq, for logs */
} vg_sink_msg;

struct vg_sink_ops {
    const char *name; /* "http", "kafka", ... */
    /* Deliver msg; VG_OK only when durably accepted, VG_ERETRY on transient failure. */
    vg_err_t (*send)(void *self, const vg_sink_msg *msg, vg_error *err);
    /* Release self (flushing whatever the transport still holds, bounded). */
    void (*free)(void *self);
};

typedef struct vg_sink {
    const struct vg_sink_ops *ops;
    void *self;
} vg_sink_t;

/* "metrics" or "audit". */
const char *vg_sink_kind_name(vg_sink_kind k);

/* Heap wrapper around ops+self; takes ownership of self (freed with ops->free,
 * also when this fails). NULL on ENOMEM. */
struct vg_sink *vg_sink_wrap(const struct vg_sink_ops *ops, void *self);
/* s->ops->send(s->self, ...). */
vg_err_t vg_sink_send(struct vg_sink *s, const vg_sink_msg *msg, vg_error *err);
/* ops->free(self) then the wrapper. NULL is a no-op. Only for sinks from the constructors here. */
void vg_sink_free(struct vg_sink *s);

/* vigil_agent_sink_requests_total{sink,result} for one sink; every sink counts
 * its sends the same way, so the triple is registered in one place. */
typedef struct vg_sink_counters {
    vg_metric_t *ok, *retry, *rejected;
} vg_sink_counters;
/* Register the three counters for sink (e.g. "http"); m may be NULL (no-op). */
void vg_sink_counters_init(vg_sink_counters *c, vg_metrics_t *m, const char *sink);

/* ---- HTTP: POST <url>/ingest/v1/batch ---- */
typedef struct vg_sink_http_opts {
    const char *url; /* collector base URL, e.g. http://127.0.0.1:9400 */
    long timeout_ms; /* per request; 0 = 10 s */
} vg_sink_http_opts;

/* 2xx -> OK; 429, 5xx, transport errors -> VG_ERETRY; other statuses -> VG_EPROTO
 * (logged with the response body). m may be NULL. */
vg_err_t vg_sink_http_new(const vg_sink_http_opts *o, vg_metrics_t *m, struct vg_sink **out,
                          vg_error *err);

/* ---- Kafka: idempotent producer, key = tenant ---- */
typedef struct vg_sink_kafka_opts {
    const char *brokers;
    const char *metrics_topic;  /* NULL = vigil.metrics */
    const char *audit_topic;    /* NULL = vigil.audit */
    const vg_kafka_prop *props; /* applied after our defaults, so they may override them */
    size_t nprops;
} vg_sink_kafka_opts;

/* Producer with enable.idempotence=true, acks=all, compression.type=none,
 * linger.ms=5, message.timeout.ms=30000. send() waits for the delivery report.
 * VG_ECONFIG with librdkafka's text for a bad property. m may be NULL. */
vg_err_t vg_sink_kafka_new(const vg_sink_kafka_opts *o, vg_metrics_t *m, struct vg_sink **out,
                           vg_error *err);

/* Kafka when cfg->kafka_brokers is set, else HTTP to cfg->http_url. */
vg_err_t vg_sink_from_config(const struct vg_agent_config *cfg, vg_metrics_t *m,
                             struct vg_sink **out, vg_error *err);

#endif
