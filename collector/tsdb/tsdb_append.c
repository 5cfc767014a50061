/*
 * tsdb_append.c - validated appends into a tenant's head, with counting.
 *
 * Each append call accumulates its outcome in a local vg_append_stats and
 * publishes it once (to the caller and to self-metrics) at the end, so a
 * 10k-sample batch costs a handful of atomic adds, not 10k.
 */
#include "tsdb/tsdb_int.h"

#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/limits.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"

static void stats_publish(vg_tsdb_t *db, const vg_append_stats *l, vg_append_stats *st)
{
    if (st) {
        st->samples_appended += l->samples_appended;
        st->samples_deduplicated += l->samples_deduplicated;
        st->samples_out_of_order += l->samples_out_of_order;
        st->samples_conflicting += l->samples_conflicting;
        st->series_created += l->series_created;
        st->series_rejected += l->series_rejected;
        if (l->wal_pos > st->wal_pos) st->wal_pos = l->wal_pos;
    }
    if (l->samples_appended) vg_metric_add(db->m_appended, (double)l->samples_appended);
    if (l->samples_deduplicated) vg_metric_add(db->m_dedup, (double)l->samples_deduplicated);
    if (l->samples_out_of_order) vg_metric_add(db->m_ooo, (double)l->samples_out_of_order);
    if (l->samples_conflicting) vg_metric_add(db->m_conflict, (double)l->samples_conflicting);
    if (l->series_created) vg_metric_add(db->m_created, (double)l->series_created);
}

/* Describe a rejected sample into err (only the first problem is kept). */
static void sample_error(vg_error *err, int *have, vg_append_res res, const vg_label_t *l, size_t n,
                         int64_t ts)
{
    if (!err || *have) return;
    vg_buf b;
    vg_buf_init(&b, 400);
    vg_labels_format(l, n, &b);
    vg_error_set(err, VG_EINVAL, "%s: series %s timestamp %lld",
                 res == VG_APPEND_OUT_OF_ORDER ? "out of order sample"
                                               : "duplicate sample for timestamp",
                 b.data ? b.data : "{}", (long long)ts);
    vg_buf_free(&b);
    *have = 1;
}

static vg_err_t count_result(vg_append_res res, vg_append_stats *l)
{
    switch (res) {
    case VG_APPEND_ADDED: l->samples_appended++; return VG_OK;
    case VG_APPEND_DUPLICATE: l->samples_deduplicated++; return VG_OK;
    case VG_APPEND_OUT_OF_ORDER: l->samples_out_of_order++; return VG_EINVAL;
    case VG_APPEND_CONFLICT: l->samples_conflicting++; return VG_EINVAL;
    }
    return VG_EINTERNAL;
}

static vg_err_t check_labels(const vg_label_t *l, size_t n, vg_error *err)
{
    if (n > MAX_LABELS)
        return vg_error_set(err, VG_EINVAL, "series has %zu labels, over the limit of %d", n,
                            MAX_LABELS);
    vg_err_t rc = vg_labels_validate(l, n, err);
    if (rc) return rc;
    if (!vg_labels_get(l, n, VG_METRIC_NAME)) {
        vg_buf b;
        vg_buf_init(&b, 400);
        vg_labels_format(l, n, &b);
        vg_error_set(err, VG_EINVAL, "series %s has no metric name (__name__)",
                     b.data ? b.data : "{}");
        vg_buf_free(&b);
        return VG_EINVAL;
    }
    return VG_OK;
}

/* ---- the WAL side of an append: log what the head added ---- */

typedef struct wal_ctx {
    vg_wal_batch b;
    uint64_t hi; /* tenant index << 32 */
    const char *tenant;
    int on;
} wal_ctx;

static void wal_ctx_init(vg_tsdb_t *db, vg_head_t *h, const char *tenant, wal_ctx *w)
{
    w->on = db->wal != NULL;
    if (!w->on) return;
    vg_wal_batch_init(&w->b);
    w->hi = (uint64_t)vg_tsdb_tenant_index(db, h) << 32;
    w->tenant = tenant;
}

/* Write the batch (if it holds samples) and note the position in l. */
static vg_err_t wal_ctx_flush(vg_tsdb_t *db, wal_ctx *w, vg_append_stats *l, vg_error *err)
{
    vg_err_t rc = VG_OK;
    if (!w->on) return VG_OK;
    if (vg_wal_batch_has_samples(&w->b)) rc = vg_wal_write(db->wal, &w->b, &l->wal_pos, err);
    vg_wal_batch_free(&w->b);
    return rc;
}

static vg_err_t wal_log_one(vg_tsdb_t *db, vg_head_t *h, uint32_t ref, const char *tenant,
                            const vg_label_t *labels, size_t n, int64_t ts, double v,
                            vg_append_stats *l, vg_error *err)
{
    wal_ctx w;
    wal_ctx_init(db, h, tenant, &w);
    vg_err_t rc = vg_wal_batch_series(&w.b, w.hi | ref, tenant, labels, n);
    if (!rc) rc = vg_wal_batch_sample(&w.b, w.hi | ref, ts, v);
    if (rc) {
        vg_wal_batch_free(&w.b);
        return vg_error_set(err, rc, "logging sample: %s", vg_strerror(rc));
    }
    return wal_ctx_flush(db, &w, l, err);
}

vg_err_t vg_tsdb_append(vg_tsdb_t *db, const char *tenant, const vg_label_t *labels, size_t nlabels,
                        int64_t ts_ms, double v, vg_append_stats *st, vg_error *err)
{
    vg_append_stats l = {0};
    vg_head_t *h;
    uint32_t ref;
    int created, have = 0;
    vg_append_res res;
    vg_err_t rc = vg_tsdb_tenant_get(db, tenant, &h, err);
    if (!rc && db->limits) rc = vg_limits_take(db->limits, tenant, 1, NULL, err); /* limits.h */
    if (rc) return rc;
    rc = check_labels(labels, nlabels, err);
    if (rc) {
        l.series_rejected++;
        vg_metric_inc(db->m_invalid);
        goto out;
    }
    rc = vg_head_series(h, labels, nlabels, &ref, &created);
    if (rc) {
        vg_error_set(err, rc, "creating series: %s", vg_strerror(rc));
        goto out;
    }
    l.series_created += (uint64_t)created;
    rc = vg_head_append(h, ref, ts_ms, v, &res);
    if (!rc) rc = count_result(res, &l);
    if (!rc && res == VG_APPEND_ADDED && db->wal)
        rc = wal_log_one(db, h, ref, tenant, labels, nlabels, ts_ms, v, &l, err);
    if (rc == VG_EINVAL)
        sample_error(err, &have, res, labels, nlabels, ts_ms);
    else if (rc)
        vg_error_set(err, rc, "appending sample: %s", vg_strerror(rc));
out:
    if (rc == VG_ELIMIT) vg_limits_series_refused(db->limits, tenant, err); /* max_series */
    stats_publish(db, &l, st);
    return rc;
}

/* Senders sort their labels (remote-write wants it): check before sorting. */
static int names_ascending(const vg_label_t *l, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(l[i - 1].name, l[i].name) >= 0) return 0;
    return 1;
}

/* Copy, drop empty values, sort. *n = number kept. */
static vg_err_t scratch_labels(const Prometheus__TimeSeries *ts, vg_label_t *scratch, size_t *n)
{
    *n = 0;
    if (ts->n_labels > MAX_LABELS) return VG_ETOOLARGE;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const Prometheus__Label *lb = ts->labels[i];
        if (!lb || !lb->value || !lb->value[0]) continue;
        scratch[*n].name = lb->name ? lb->name : "";
        scratch[*n].value = lb->value;
        (*n)++;
    }
    if (!names_ascending(scratch, *n)) vg_labels_sort(scratch, *n);
    return VG_OK;
}

/* Add sample i of the series to the WAL batch, declaring the series first. */
static vg_err_t wal_add(wal_ctx *w, uint32_t ref, const vg_label_t *l, size_t n, int *declared,
                        const Prometheus__Sample *s)
{
    vg_err_t rc = VG_OK;
    if (!w->on) return VG_OK;
    if (!*declared) rc = vg_wal_batch_series(&w->b, w->hi | ref, w->tenant, l, n);
    *declared = 1;
    if (!rc) rc = vg_wal_batch_sample(&w->b, w->hi | ref, s->timestamp, s->value);
    return rc;
}

/* Samples of one series whose ref is known (k->found) or created here. */
static vg_err_t append_one_series(vg_head_t *h, const Prometheus__TimeSeries *ts,
                                  const vg_head_key *k, vg_append_stats *st, vg_error *err,
                                  int *have, wal_ctx *w)
{
    uint32_t ref = k->ref;
    int created = 0, declared = 0;
    const vg_label_t *l = k->l;
    size_t n = k->n;
    vg_err_t rc = k->found ? VG_OK : vg_head_series(h, l, n, &ref, &created);
    if (rc) return vg_error_set(err, rc, "creating series: %s", vg_strerror(rc));
    st->series_created += (uint64_t)created;
    /* Runs of up to RUN samples go to the head under one lock round (the
     * per-sample locking was a tenth of the ingest profile). */
    enum { RUN = 64 };
    const Prometheus__Sample *run[RUN];
    int64_t t[RUN];
    double v[RUN];
    vg_append_res res[RUN];
    for (size_t i = 0; i < ts->n_samples;) {
        size_t nr = 0;
        for (; i < ts->n_samples && nr < RUN; i++) {
            if (!ts->samples[i]) continue;
            run[nr] = ts->samples[i];
            t[nr] = run[nr]->timestamp;
            v[nr] = run[nr]->value;
            nr++;
        }
        size_t done = 0;
        rc = nr ? vg_head_append_n(h, ref, t, v, nr, res, &done) : VG_OK;
        /* the samples before a failing one were added: log and count them */
        for (size_t j = 0; j < done; j++) {
            vg_err_t wrc = res[j] == VG_APPEND_ADDED ? wal_add(w, ref, l, n, &declared, run[j]) : 0;
            if (wrc) return vg_error_set(err, wrc, "appending sample: %s", vg_strerror(wrc));
            if (count_result(res[j], st)) sample_error(err, have, res[j], l, n, t[j]);
        }
        if (rc) return vg_error_set(err, rc, "appending sample: %s", vg_strerror(rc));
    }
    return VG_OK;
}

/* The whole request against the tenant's rate, before anything is appended. */
static vg_err_t limits_take_batch(vg_tsdb_t *db, const char *tenant,
                                  Prometheus__TimeSeries *const *ts, size_t n, vg_error *err)
{
    uint64_t samples = 0;
    for (size_t i = 0; i < n; i++) samples += ts[i] ? ts[i]->n_samples : 0;
    return samples ? vg_limits_take(db->limits, tenant, samples, NULL, err) : VG_OK;
}

/* Series are looked up LOOKUP_BATCH at a time (vg_head_lookup_n overlaps
 * their cache misses: lookups were the top of the ingest profile), then
 * appended in request order. */
#define LOOKUP_BATCH 128

typedef struct batch {
    vg_head_key key[LOOKUP_BATCH];
    int valid[LOOKUP_BATCH];
    vg_label_t *lab; /* sorted labels of the batch's series, back to back */
    size_t lab_cap;
} batch;

/* Sorted label copies and keys for ts[0..*m); series that fail check_labels
 * are marked invalid (reported in order later). When a series has too many
 * labels, *m is cut to it and its error is returned (and reported once the
 * series before it are appended, as a one-at-a-time loop would). */
static vg_err_t batch_prepare(batch *b, Prometheus__TimeSeries *const *ts, size_t *m)
{
    size_t need = 0, used = 0;
    for (size_t i = 0; i < *m; i++)
        need += ts[i] && ts[i]->n_labels <= MAX_LABELS ? ts[i]->n_labels : 0;
    if (need > b->lab_cap) {
        vg_label_t *nl = vg_realloc(b->lab, need * sizeof(*nl));
        if (!nl) return VG_ENOMEM;
        b->lab = nl;
        b->lab_cap = need;
    }
    for (size_t i = 0; i < *m; i++) {
        size_t nl = 0;
        b->valid[i] = 0;
        if (!ts[i]) continue;
        vg_err_t rc = scratch_labels(ts[i], b->lab + used, &nl);
        if (rc) {
            *m = i;
            return rc;
        }
        b->key[i] = (vg_head_key){.l = b->lab + used, .n = nl};
        used += nl;
        b->valid[i] = check_labels(b->key[i].l, nl, NULL) == VG_OK;
    }
    return VG_OK;
}

/* Look up the valid series of the batch's first m in one vg_head_lookup_n. */
static void batch_lookup(vg_head_t *h, batch *b, size_t m)
{
    vg_head_key keys[LOOKUP_BATCH], *valid[LOOKUP_BATCH];
    size_t nk = 0;
    for (size_t i = 0; i < m; i++)
        if (b->valid[i]) keys[nk] = b->key[i], valid[nk++] = &b->key[i];
    vg_head_lookup_n(h, keys, nk);
    for (size_t i = 0; i < nk; i++) *valid[i] = keys[i];
}

/* Count a series that failed check_labels; its problem is err's if first. */
static void reject_series(vg_tsdb_t *db, const Prometheus__TimeSeries *ts, const vg_head_key *k,
                          vg_append_stats *l, vg_error *err, int *have)
{
    vg_error e1;
    check_labels(k->l, k->n, &e1);
    l->series_rejected++;
    vg_metric_add(db->m_invalid, (double)ts->n_samples);
    if (!*have && err) *err = e1;
    *have = 1;
}

vg_err_t vg_tsdb_append_timeseries(vg_tsdb_t *db, const char *tenant,
                                   Prometheus__TimeSeries *const *ts, size_t n, vg_append_stats *st,
                                   vg_error *err)
{
    vg_append_stats l = {0};
    batch *b = NULL;
    vg_head_t *h;
    int have = 0; /* err already holds the first problem */
    wal_ctx w;
    vg_err_t rc = vg_tsdb_tenant_get(db, tenant, &h, err);
    if (!rc && db->limits) rc = limits_take_batch(db, tenant, ts, n, err);
    if (rc) return rc;
    if (!(b = vg_calloc(1, sizeof(*b)))) return vg_error_set(err, VG_ENOMEM, "out of memory");
    wal_ctx_init(db, h, tenant, &w);
    for (size_t off = 0; off < n && !rc; off += LOOKUP_BATCH) {
        size_t m = n - off < LOOKUP_BATCH ? n - off : LOOKUP_BATCH, cut = m;
        vg_err_t prc = batch_prepare(b, ts + off, &cut);
        if (prc == VG_ENOMEM) {
            rc = vg_error_set(err, prc, "out of memory");
            break;
        }
        batch_lookup(h, b, cut);
        for (size_t i = 0; i < m && !rc; i++) {
            if (i == cut) { /* where scratch_labels failed */
                rc = vg_error_set(err, prc, "series has %zu labels, over the limit of %d",
                                  ts[off + i]->n_labels, MAX_LABELS);
                break;
            }
            if (!ts[off + i]) continue;
            if (!b->valid[i])
                reject_series(db, ts[off + i], &b->key[i], &l, err, &have);
            else
                rc = append_one_series(h, ts[off + i], &b->key[i], &l, err, &have, &w);
        }
    }
    vg_free(b->lab);
    vg_free(b);
    vg_err_t wrc = wal_ctx_flush(db, &w, &l, err); /* also what was appended before an error */
    if (rc == VG_ELIMIT) vg_limits_series_refused(db->limits, tenant, err); /* max_series */
    if (!rc) rc = wrc;
    stats_publish(db, &l, st);
    if (rc) return rc;
    return have ? VG_EINVAL : VG_OK;
}
