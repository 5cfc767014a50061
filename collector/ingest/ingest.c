/*
 * ingest.c - decode agent batches and store them.
 *
 * The tenant is taken, in order, from the transport (X-Scope-OrgID or the
 * Kafka key, passed by the caller), the batch, or "default". A batch that
 * cannot be decoded is refused as a whole with the reason; samples inside a
 * good batch that the store refuses are counted, not fatal, so one bad
 * series never blocks the rest. Each stored batch's (agent id, seq) goes to
 * the seq tracker (seqtrack.c), which turns lost and duplicated batches
 * into self-metrics.
 */
#include "ingest/ingest.h"

#include <string.h>

#include "auditstore/auditstore.h"
#include "ingest/seqtrack.h"
#include "metadata/mdstore.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/envelope.h"
#include "vigil/log.h"

struct vg_ingest {
    vg_tsdb_t *db;
    vg_envelope_limits limits;
    vg_metric_t *batches_ok, *batches_bad, *batches_unsupported;
    vg_metric_t *samples_in, *samples_appended, *samples_dup, *samples_rejected;
    vg_seqtrack_t *seq;     /* per-agent batch seqs: gaps and duplicates */
    vg_auditstore_t *audit; /* NULL: audit batches are refused (VG_EUNSUPPORTED) */
    struct vg_mdstore *md;  /* MetricBatch.metadata; NULL = ignored */
};

void vg_ingest_set_metadata(vg_ingest_t *in, struct vg_mdstore *md)
{
    in->md = md;
}

void vg_ingest_set_audit(vg_ingest_t *in, vg_auditstore_t *a)
{
    in->audit = a;
}

vg_ingest_t *vg_ingest_new(vg_tsdb_t *db, vg_metrics_t *m)
{
    vg_ingest_t *in = vg_calloc(1, sizeof(*in));
    if (!in) return NULL;
    in->db = db;
    in->limits = vg_envelope_default_limits();
    const char *bn = "vigil_ingest_batches_total", *bh = "Agent batches received, by outcome.";
    in->batches_ok = vg_metrics_counter(m, bn, bh, "outcome=\"stored\"");
    in->batches_bad = vg_metrics_counter(m, bn, bh, "outcome=\"invalid\"");
    in->batches_unsupported = vg_metrics_counter(m, bn, bh, "outcome=\"unsupported\"");
    const char *sn = "vigil_ingest_samples_total", *sh = "Samples received in batches, by outcome.";
    in->samples_in = vg_metrics_counter(m, sn, sh, "outcome=\"received\"");
    in->samples_appended = vg_metrics_counter(m, sn, sh, "outcome=\"appended\"");
    in->samples_dup = vg_metrics_counter(m, sn, sh, "outcome=\"duplicate\"");
    in->samples_rejected = vg_metrics_counter(m, sn, sh, "outcome=\"rejected\"");
    if (!(in->seq = vg_seqtrack_new(NULL, m))) {
        vg_free(in);
        return NULL;
    }
    return in;
}

void vg_ingest_free(vg_ingest_t *in)
{
    if (in) vg_seqtrack_free(in->seq);
    vg_free(in);
}

static const char *pick_tenant(const char *hint, const vg_batch_t *b)
{
    if (hint && *hint) return hint;
    if (b->tenant && *b->tenant) return b->tenant;
    return "default";
}

static vg_err_t store_metrics(vg_ingest_t *in, const char *tenant, const vg_batch_t *b,
                              vg_ingest_result *res, vg_error *err)
{
    const Vigil__V1__MetricBatch *mb = b->metrics;
    for (size_t i = 0; i < mb->n_timeseries; i++) res->samples += mb->timeseries[i]->n_samples;
    vg_append_stats st = {0};
    vg_error aerr = {0};
    vg_err_t rc =
        vg_tsdb_append_timeseries(in->db, tenant, mb->timeseries, mb->n_timeseries, &st, &aerr);
    res->appended = st.samples_appended;
    res->duplicates = st.samples_deduplicated;
    res->rejected = st.samples_out_of_order + st.samples_conflicting + st.series_rejected;
    res->wal_pos = st.wal_pos;
    vg_metric_add(in->samples_in, (double)res->samples);
    vg_metric_add(in->samples_appended, (double)res->appended);
    vg_metric_add(in->samples_dup, (double)res->duplicates);
    vg_metric_add(in->samples_rejected, (double)res->rejected);
    if (rc == VG_EINVAL) {
        /* Some series were refused; the good ones are stored. Not a batch failure. */
        char q[256];
        vg_log_warn("ingest", "series rejected", "tenant=%s err=%s", tenant,
                    vg_logq(q, sizeof(q), aerr.msg));
        return VG_OK;
    }
    if (rc) vg_error_set(err, rc, "%s", vg_error_msg(&aerr, rc));
    return rc;
}

vg_err_t vg_ingest_sync(vg_ingest_t *in, uint64_t wal_pos, vg_error *err)
{
    return vg_tsdb_sync(in->db, wal_pos, err);
}

vg_err_t vg_ingest_batch(vg_ingest_t *in, const char *tenant, const uint8_t *data, size_t len,
                         vg_ingest_result *res, vg_error *err)
{
    vg_ingest_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof(*res));
    vg_batch_t *b = NULL;
    vg_err_t rc = vg_envelope_decode(data, len, &in->limits, &b, err);
    if (rc) {
        vg_metric_inc(rc == VG_ENOMEM ? NULL : in->batches_bad);
        return rc;
    }
    const char *t = pick_tenant(tenant, b);
    if (b->payload_case == VIGIL__V1__BATCH__PAYLOAD_METRICS) {
        rc = store_metrics(in, t, b, res, err);
        if (!rc && in->md && b->metrics->n_metadata)
            vg_mdstore_add(in->md, t,
                           (const Prometheus__MetricMetadata *const *)b->metrics->metadata,
                           b->metrics->n_metadata, vg_clock_wall_ms());
        if (!rc) vg_metric_inc(in->batches_ok);
        if (!rc) vg_seqtrack_observe(in->seq, b->agent_id, b->seq); /* after it is stored */
    } else if (in->audit) {
        /* Durable on return: the audit store fsyncs before it answers. */
        const Vigil__V1__AuditBatch *ab = b->audit;
        vg_audit_append_stats st = {0};
        rc = vg_auditstore_append(in->audit, t, ab->records, ab->n_records, &st, err);
        res->samples = st.records, res->appended = st.stored, res->duplicates = st.duplicates;
        if (!rc) vg_metric_inc(in->batches_ok);
        if (!rc) vg_seqtrack_observe(in->seq, b->agent_id, b->seq);
        if (rc == VG_EINVAL) vg_metric_inc(in->batches_bad);
    } else {
        rc = vg_error_set(err, VG_EUNSUPPORTED,
                          "audit batches are not stored by this build of the collector");
        vg_metric_inc(in->batches_unsupported);
    }
    vg_envelope_batch_free(b);
    return rc;
}
