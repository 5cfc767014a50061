/*
 * tsdb.c - tenants, validated appends, counters and the snapshot querier.
 *
 * The tenant list is short (tens, not millions), so it is a plain array
 * behind a rwlock: the common case is a shared lock and a few strcmp. Each
 * append call accumulates its outcome in a local vg_append_stats and
 * publishes it once (to the caller and to self-metrics) at the end, so a
 * 10k-sample batch costs a handful of atomic adds, not 10k.
 */
#include "tsdb/tsdb.h"

#include <pthread.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"

#define MAX_LABELS 1024

typedef struct tenant {
    char name[VG_TENANT_MAX + 1];
    vg_head_t *head;
} tenant;

struct vg_tsdb {
    pthread_rwlock_t lock;
    int lock_ok;
    tenant *tenants;
    size_t ntenants, cap;
    vg_metric_t *m_appended, *m_dedup, *m_ooo, *m_conflict, *m_invalid, *m_created;
};

/* ---- lifecycle and self-metrics ---- */

static double series_gauge(void *ud)
{
    return (double)vg_tsdb_num_series(ud);
}

static void register_metrics(vg_tsdb_t *db, vg_metrics_t *m)
{
    static const char rej[] = "vigil_tsdb_samples_rejected_total";
    static const char rej_help[] = "Samples the head refused, by reason.";
    vg_metrics_gauge_fn(m, "vigil_tsdb_head_series", "Series held in the in-memory heads.", NULL,
                        series_gauge, db);
    db->m_appended = vg_metrics_counter(m, "vigil_tsdb_samples_appended_total",
                                        "Samples appended to the head.", NULL);
    db->m_dedup = vg_metrics_counter(m, "vigil_tsdb_samples_deduplicated_total",
                                     "Samples identical to a stored one, dropped as no-ops.", NULL);
    db->m_ooo = vg_metrics_counter(m, rej, rej_help, "reason=\"out_of_order\"");
    db->m_conflict = vg_metrics_counter(m, rej, rej_help, "reason=\"duplicate_timestamp\"");
    db->m_invalid = vg_metrics_counter(m, rej, rej_help, "reason=\"invalid_series\"");
    db->m_created = vg_metrics_counter(m, "vigil_tsdb_head_series_created_total",
                                       "Series created in the heads.", NULL);
}

vg_tsdb_t *vg_tsdb_new(vg_metrics_t *metrics)
{
    vg_tsdb_t *db = vg_calloc(1, sizeof(*db));
    if (!db) return NULL;
    db->lock_ok = pthread_rwlock_init(&db->lock, NULL) == 0;
    if (!db->lock_ok) {
        vg_tsdb_free(db);
        return NULL;
    }
    if (metrics) register_metrics(db, metrics);
    return db;
}

void vg_tsdb_free(vg_tsdb_t *db)
{
    if (!db) return;
    for (size_t i = 0; i < db->ntenants; i++) vg_head_free(db->tenants[i].head);
    vg_free(db->tenants);
    if (db->lock_ok) pthread_rwlock_destroy(&db->lock);
    vg_free(db);
}

int vg_tsdb_tenant_valid(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n > VG_TENANT_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* ---- tenants ---- */

static vg_head_t *tenant_find(vg_tsdb_t *db, const char *name)
{
    vg_head_t *h = NULL;
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->ntenants && !h; i++)
        if (strcmp(db->tenants[i].name, name) == 0) h = db->tenants[i].head;
    pthread_rwlock_unlock(&db->lock);
    return h;
}

static vg_err_t tenant_add_locked(vg_tsdb_t *db, const char *name, vg_head_t **out)
{
    if (db->ntenants == db->cap) {
        size_t ncap = db->cap ? db->cap * 2 : 4;
        tenant *nt = vg_realloc(db->tenants, ncap * sizeof(*nt));
        if (!nt) return VG_ENOMEM;
        db->tenants = nt;
        db->cap = ncap;
    }
    vg_head_t *h = vg_head_new();
    if (!h) return VG_ENOMEM;
    tenant *t = &db->tenants[db->ntenants++];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, strlen(name));
    t->head = h;
    *out = h;
    return VG_OK;
}

static vg_err_t tenant_get(vg_tsdb_t *db, const char *name, vg_head_t **out, vg_error *err)
{
    if (!vg_tsdb_tenant_valid(name))
        return vg_error_set(err, VG_EINVAL,
                            "invalid tenant %.80s: want 1-64 characters of [A-Za-z0-9_.-]",
                            name ? name : "(null)");
    *out = tenant_find(db, name);
    if (*out) return VG_OK;
    vg_err_t rc = VG_OK;
    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < db->ntenants && !*out; i++)
        if (strcmp(db->tenants[i].name, name) == 0) *out = db->tenants[i].head;
    if (!*out) rc = tenant_add_locked(db, name, out);
    pthread_rwlock_unlock(&db->lock);
    if (rc) vg_error_set(err, rc, "tenant %s: out of memory creating its head", name);
    return rc;
}

size_t vg_tsdb_num_series(vg_tsdb_t *db)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->ntenants; i++) n += vg_head_num_series(db->tenants[i].head);
    pthread_rwlock_unlock(&db->lock);
    return n;
}

/* ---- appends ---- */

static void stats_publish(vg_tsdb_t *db, const vg_append_stats *l, vg_append_stats *st)
{
    if (st) {
        st->samples_appended += l->samples_appended;
        st->samples_deduplicated += l->samples_deduplicated;
        st->samples_out_of_order += l->samples_out_of_order;
        st->samples_conflicting += l->samples_conflicting;
        st->series_created += l->series_created;
        st->series_rejected += l->series_rejected;
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

vg_err_t vg_tsdb_append(vg_tsdb_t *db, const char *tenant, const vg_label_t *labels, size_t nlabels,
                        int64_t ts_ms, double v, vg_append_stats *st, vg_error *err)
{
    vg_append_stats l = {0};
    vg_head_t *h;
    uint32_t ref;
    int created, have = 0;
    vg_append_res res;
    vg_err_t rc = tenant_get(db, tenant, &h, err);
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
    if (rc == VG_EINVAL)
        sample_error(err, &have, res, labels, nlabels, ts_ms);
    else if (rc)
        vg_error_set(err, rc, "appending sample: %s", vg_strerror(rc));
out:
    stats_publish(db, &l, st);
    return rc;
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
    vg_labels_sort(scratch, *n);
    return VG_OK;
}

static vg_err_t append_one_series(vg_head_t *h, const Prometheus__TimeSeries *ts,
                                  const vg_label_t *l, size_t n, vg_append_stats *st, vg_error *err,
                                  int *have)
{
    uint32_t ref;
    int created;
    vg_err_t rc = vg_head_series(h, l, n, &ref, &created);
    if (rc) return vg_error_set(err, rc, "creating series: %s", vg_strerror(rc));
    st->series_created += (uint64_t)created;
    for (size_t i = 0; i < ts->n_samples; i++) {
        const Prometheus__Sample *s = ts->samples[i];
        if (!s) continue;
        vg_append_res res;
        rc = vg_head_append(h, ref, s->timestamp, s->value, &res);
        if (rc) return vg_error_set(err, rc, "appending sample: %s", vg_strerror(rc));
        if (count_result(res, st)) sample_error(err, have, res, l, n, s->timestamp);
    }
    return VG_OK;
}

vg_err_t vg_tsdb_append_timeseries(vg_tsdb_t *db, const char *tenant,
                                   Prometheus__TimeSeries *const *ts, size_t n, vg_append_stats *st,
                                   vg_error *err)
{
    vg_append_stats l = {0};
    vg_label_t scratch[MAX_LABELS];
    vg_head_t *h;
    int have = 0; /* err already holds the first problem */
    vg_error e1;
    vg_err_t rc = tenant_get(db, tenant, &h, err);
    if (rc) return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl;
        if (!ts[i]) continue;
        rc = scratch_labels(ts[i], scratch, &nl);
        if (rc) {
            vg_error_set(err, rc, "series has %zu labels, over the limit of %d", ts[i]->n_labels,
                         MAX_LABELS);
            break;
        }
        if (check_labels(scratch, nl, &e1) != VG_OK) {
            l.series_rejected++;
            vg_metric_add(db->m_invalid, (double)ts[i]->n_samples);
            if (!have && err) *err = e1;
            have = 1;
            continue;
        }
        rc = append_one_series(h, ts[i], scratch, nl, &l, err, &have);
    }
    stats_publish(db, &l, st);
    if (rc) return rc;
    return have ? VG_EINVAL : VG_OK;
}

/* ---- querier ---- */

struct vg_seriesset {
    vg_arena_t *arena;
    vg_snap_series *s;
    size_t n, cur; /* cur = index + 1 of the current series; 0 before the first */
    size_t chunk;  /* next chunk of the current series to open */
    vg_chunk_iter it;
    int it_live;
    int64_t mint, maxt;
    vg_err_t err;
};

vg_err_t vg_tsdb_select(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                        int64_t mint, int64_t maxt, vg_seriesset_t **out, vg_error *err)
{
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    vg_seriesset_t *ss = vg_calloc(1, sizeof(*ss));
    if (!ss || !(ss->arena = vg_arena_new(0))) {
        rc = VG_ENOMEM;
        goto fail;
    }
    ss->mint = mint;
    ss->maxt = maxt;
    vg_head_t *h = tenant_find(db, tenant);
    if (h) rc = vg_head_snapshot(h, m, nm, mint, maxt, ss->arena, &ss->s, &ss->n);
    if (rc) goto fail;
    *out = ss;
    return VG_OK;
fail:
    vg_seriesset_free(ss);
    return vg_error_set(err, rc, "selecting series: %s", vg_strerror(rc));
}

int vg_seriesset_next(vg_seriesset_t *ss)
{
    if (ss->cur >= ss->n) return 0;
    ss->cur++;
    ss->chunk = 0;
    ss->it_live = 0;
    return 1;
}

const vg_label_t *vg_seriesset_labels(vg_seriesset_t *ss, size_t *n)
{
    if (ss->cur == 0) {
        *n = 0;
        return NULL;
    }
    *n = ss->s[ss->cur - 1].nlabels;
    return ss->s[ss->cur - 1].labels;
}

int vg_seriesset_sample_next(vg_seriesset_t *ss, int64_t *ts, double *v)
{
    if (ss->cur == 0) return 0;
    const vg_snap_series *s = &ss->s[ss->cur - 1];
    for (;;) {
        if (!ss->it_live) {
            if (ss->chunk >= s->nchunks) return 0;
            vg_chunk_iter_init(&ss->it, s->chunks[ss->chunk].data, s->chunks[ss->chunk].len);
            ss->chunk++;
            ss->it_live = 1;
        }
        if (!vg_chunk_iter_next(&ss->it, ts, v)) {
            if (vg_chunk_iter_err(&ss->it)) ss->err = vg_chunk_iter_err(&ss->it);
            ss->it_live = 0;
            continue;
        }
        if (*ts < ss->mint) continue;
        if (*ts > ss->maxt) {
            ss->chunk = s->nchunks; /* chunks are in time order: nothing later fits */
            ss->it_live = 0;
            return 0;
        }
        return 1;
    }
}

size_t vg_seriesset_len(const vg_seriesset_t *ss)
{
    return ss->n;
}

vg_err_t vg_seriesset_err(const vg_seriesset_t *ss)
{
    return ss->err;
}

void vg_seriesset_free(vg_seriesset_t *ss)
{
    if (!ss) return;
    vg_arena_free(ss->arena);
    vg_free(ss);
}

/* ---- label names and values ---- */

/* Pack strings into one allocation: the pointer array, then the bytes. */
static vg_err_t pack_strings(const char *const *v, size_t n, char ***out)
{
    size_t bytes = (n ? n : 1) * sizeof(char *);
    for (size_t i = 0; i < n; i++) bytes += strlen(v[i]) + 1;
    char **p = vg_malloc(bytes);
    if (!p) return VG_ENOMEM;
    char *w = (char *)(p + (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(w, v[i], len);
        p[i] = w;
        w += len;
    }
    *out = p;
    return VG_OK;
}

static vg_err_t label_strings(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err)
{
    const char **v = NULL;
    vg_err_t rc = VG_OK;
    *out = NULL;
    *n = 0;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    vg_arena_t *a = vg_arena_new(0);
    if (!a) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_head_t *h = tenant_find(db, tenant);
    if (h) rc = vg_head_label_strings(h, name, m, nm, mint, maxt, a, &v, n);
    if (!rc) rc = pack_strings(v, *n, out);
    vg_arena_free(a);
    if (rc) {
        *n = 0;
        return vg_error_set(err, rc, "listing labels: %s", vg_strerror(rc));
    }
    return VG_OK;
}

vg_err_t vg_tsdb_label_names(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                             int64_t mint, int64_t maxt, char ***out, size_t *n, vg_error *err)
{
    return label_strings(db, tenant, NULL, m, nm, mint, maxt, out, n, err);
}

vg_err_t vg_tsdb_label_values(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err)
{
    return label_strings(db, tenant, name, m, nm, mint, maxt, out, n, err);
}
