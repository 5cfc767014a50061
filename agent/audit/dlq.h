/*
 * dlq.h - the dead-letter path for audit lines that failed validation.
 *
 * Each bad line goes out as one JSON object {tenant, reason, detail, line,
 * file_id, offset}: to the collector's POST /ingest/v1/dlq in HTTP mode, or
 * to the Kafka topic output.kafka.audit_dlq_topic (key = tenant, header
 * vigil-dlq-reason). The line is redacted first (as JSON when it parses,
 * else its text) and made valid UTF-8, so a malformed line cannot carry an
 * e-mail address or card number off the node either. send() returns VG_OK
 * only on HTTP 2xx or the Kafka delivery report; the caller keeps the entry
 * and retries otherwise, so a dead letter is never silently dropped.
 */
#ifndef VIGIL_AGENT_DLQ_H
#define VIGIL_AGENT_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "redact.h"
#include "vigil/buf.h"
#include "vigil/config.h"
#include "vigil/error.h"

typedef struct vg_dlq vg_dlq_t;

typedef struct vg_dlq_opts {
    const char *http_url;      /* collector base URL (HTTP mode) */
    const char *kafka_brokers; /* set = Kafka mode */
    const char *kafka_topic;   /* NULL = vigil.audit.dlq */
    const vg_kv_t *props;      /* librdkafka properties */
    size_t nprops;
} vg_dlq_opts;

/* Render one dead letter as JSON into out (appended). line is redacted with r
 * (may be NULL) and invalid UTF-8 bytes become U+FFFD. */
vg_err_t vg_dlq_render(vg_redactor_t *r, const char *tenant, const char *reason, const char *detail,
                       const char *line, size_t len, const char *file_id, uint64_t offset,
                       vg_buf *out);
/* New sender for o (Kafka when kafka_brokers is set, else HTTP). */
vg_err_t vg_dlq_new(const vg_dlq_opts *o, vg_dlq_t **out, vg_error *err);
/* NULL is a no-op. */
void vg_dlq_free(vg_dlq_t *d);
/* Deliver one rendered dead letter; VG_OK only when acknowledged. */
vg_err_t vg_dlq_send(vg_dlq_t *d, const char *tenant, const char *reason, const char *json,
                     size_t len, vg_error *err);

#endif
