/*
 * audit_ship.h - the agent's audit path: tail -> parse/validate/redact ->
 * AuditBatch -> sink, with dead letters and checkpoints after acknowledgement.
 *
 * Its own thread and its own sink instance (same transport as metrics: Kafka
 * topic output.kafka.audit_topic keyed by tenant, or HTTP POST
 * /ingest/v1/batch), sending synchronously: a checkpoint moves only once the
 * sink said OK for every batch and dead letter holding the lines before it.
 * Audit data does not use the disk spool: the tailed files are the spool.
 * While the sink fails, the line callback refuses lines, tailing stops
 * (backpressure) and the files keep the data, so nothing is ever dropped for
 * space. Batches carry the agent id "<metrics agent id>/audit" with their
 * own persisted seq (<data_dir>/audit/batch_seq), so the collector's
 * per-agent seq tracking stays exact for both streams.
 */
#ifndef VIGIL_AGENT_AUDIT_SHIP_H
#define VIGIL_AGENT_AUDIT_SHIP_H

#include "vigil/error.h"
#include "vigil/metrics.h"

struct vg_agent_config;
typedef struct vg_audit_ship vg_audit_ship_t;

/* Start the audit path for cfg->audit_logs (cfg is borrowed and must outlive
 * it). *out is NULL (and VG_OK) when there are no audit_logs. State lives in
 * <data_dir>/audit/. m may be NULL. */
vg_err_t vg_audit_ship_new(const struct vg_agent_config *cfg, vg_metrics_t *m,
                           vg_audit_ship_t **out, vg_error *err);
/* Stop the thread, make one bounded last attempt to ship and commit what is
 * pending, free. NULL is a no-op. */
void vg_audit_ship_free(vg_audit_ship_t *a);

#endif
