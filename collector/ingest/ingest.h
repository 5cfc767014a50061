/*
 * ingest.h - the collector's single entry point for agent batches.
 *
 * HTTP (POST /ingest/v1/batch) and the Kafka consumer both hand raw envelope
 * bytes to vg_ingest_batch, so decoding limits, tenant resolution, counting
 * and storage are the same whichever way a batch arrived. vg_ingest_batch
 * does not wait for the WAL: HTTP syncs per request, Kafka once per commit.
 */
#ifndef VIGIL_INGEST_H
#define VIGIL_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"
#include "tsdb/tsdb.h"

typedef struct vg_ingest vg_ingest_t;

typedef struct vg_ingest_result {
    uint64_t samples;    /* samples in the batch */
    uint64_t appended;   /* samples newly stored */
    uint64_t duplicates; /* samples that were already stored (no-op) */
    uint64_t rejected;   /* samples or series refused (conflict, out of order, bad labels) */
    uint64_t wal_pos;    /* vg_tsdb_sync this before acknowledging (0 = nothing to wait for) */
} vg_ingest_result;

/* New ingest stage storing into db (borrowed) and counting into m (borrowed, may be NULL). */
vg_ingest_t *vg_ingest_new(vg_tsdb_t *db, vg_metrics_t *m);
void vg_ingest_free(vg_ingest_t *in);

struct vg_auditstore;
/* Store audit batches into a (borrowed; NULL = refuse them). Audit records are
 * fsynced before vg_ingest_batch returns, so wal_pos stays 0 for them, and
 * samples/appended/duplicates of the result count records. */
void vg_ingest_set_audit(vg_ingest_t *in, struct vg_auditstore *a);

struct vg_mdstore;
/* Keep MetricBatch.metadata in md (borrowed; NULL = ignored). */
void vg_ingest_set_metadata(vg_ingest_t *in, struct vg_mdstore *md);

/* Decode and store one envelope. tenant overrides the batch's tenant when
 * non-NULL (HTTP X-Scope-OrgID). VG_EPARSE/VG_ETOOLARGE for a batch that can
 * never be stored (dead-letter it), VG_EUNSUPPORTED for a payload this build
 * cannot store, VG_OK otherwise (individual rejected samples are counted). */
vg_err_t vg_ingest_batch(vg_ingest_t *in, const char *tenant, const uint8_t *data, size_t len,
                         vg_ingest_result *res, vg_error *err);

/* Wait until the WAL holds everything up to wal_pos (vg_tsdb_sync). */
vg_err_t vg_ingest_sync(vg_ingest_t *in, uint64_t wal_pos, vg_error *err);

/* Register POST /ingest/v1/batch on h; it answers after the WAL fsync. */
vg_err_t vg_ingest_register_http(vg_ingest_t *in, vg_httpd_t *h);

#endif
