/*
 * tsdb.c - the store's lifecycle, self-metrics and tenants.
 *
 * The tenant list is short (tens, not millions), so it is a plain array
 * behind a rwlock: the common case is a shared lock and a few strcmp.
 * Appends live in tsdb_append.c and queries in tsdb_query.c.
 */
#include "tsdb/tsdb_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/limits.h"
#include "tsdb/tiers.h"
#include "tsdb/tsdb_blocks.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"

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

/* ---- the WAL: replay into the heads, then log every append ---- */

/* Replayed series: handle = tenant index << 32 | head ref. */
static vg_err_t replay_series(void *ud, const char *tenant, const vg_label_t *l, size_t n,
                              uint64_t *handle)
{
    vg_tsdb_t *db = ud;
    vg_head_t *h;
    uint32_t ref;
    int created;
    vg_err_t rc = vg_tsdb_tenant_get(db, tenant, &h, NULL);
    if (!rc) rc = vg_labels_validate(l, n, NULL);
    if (!rc) rc = vg_head_series(h, l, n, &ref, &created);
    if (!rc) *handle = (uint64_t)vg_tsdb_tenant_index(db, h) << 32 | ref;
    return rc;
}

static void replay_sample(void *ud, uint64_t handle, int64_t ts, double v)
{
    vg_tsdb_t *db = ud;
    vg_append_res res;
    size_t i = (size_t)(handle >> 32);
    if (i >= db->ntenants) return;
    (void)vg_head_append(db->tenants[i].head, (uint32_t)handle, ts, v, &res);
}

static vg_err_t open_wal(vg_tsdb_t *db, const vg_tsdb_opts *o, vg_metrics_t *m, vg_error *err)
{
    char path[4096];
    if (mkdir(o->dir, 0755) && errno != EEXIST)
        return vg_error_set(err, VG_EIO, "cannot create data directory %s: %s", o->dir,
                            strerror(errno));
    if ((size_t)snprintf(path, sizeof(path), "%s/wal", o->dir) >= sizeof(path))
        return vg_error_set(err, VG_EINVAL, "data directory path too long");
    vg_wal_replay_cb cb = {.on_series = replay_series, .on_sample = replay_sample, .ud = db};
    return vg_wal_open(path, o->wal_segment_bytes, o->wal_sync_ms, &cb, m, NULL, &db->wal, err);
}

/* Free space of the filesystem holding the WAL and blocks, read at scrape
 * time (one statvfs), so "disk nearly full" alerts need no node_exporter. */
static double fs_bytes(const vg_tsdb_t *db, int avail)
{
    struct statvfs st;
    if (!db->dir || statvfs(db->dir, &st)) return 0;
    return (double)(avail ? st.f_bavail : st.f_blocks) * (double)st.f_frsize;
}

static double fs_avail(void *ud)
{
    return fs_bytes(ud, 1);
}

static double fs_size(void *ud)
{
    return fs_bytes(ud, 0);
}

static vg_err_t watch_disk(vg_tsdb_t *db, const char *dir, vg_metrics_t *m, vg_error *err)
{
    if (!(db->dir = vg_strdup(dir))) return vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!m) return VG_OK;
    vg_metrics_gauge_fn(m, "vigil_tsdb_wal_fs_avail_bytes",
                        "Bytes available to the collector on the filesystem holding its data.",
                        NULL, fs_avail, db);
    vg_metrics_gauge_fn(m, "vigil_tsdb_wal_fs_size_bytes",
                        "Size in bytes of the filesystem holding the collector's data.", NULL,
                        fs_size, db);
    return VG_OK;
}

vg_err_t vg_tsdb_open(const vg_tsdb_opts *o, vg_metrics_t *metrics, vg_tsdb_t **out, vg_error *err)
{
    vg_tsdb_t *db = vg_tsdb_new(metrics);
    *out = NULL;
    if (!db) return vg_error_set(err, VG_ENOMEM, "out of memory opening the store");
    db->ooo_window_ms =
        INT64_MAX; /* the replay re-inserts what was accepted, whatever the window */
    vg_err_t rc = o && o->dir ? open_wal(db, o, metrics, err) : VG_OK;
    if (!rc && o && o->dir) rc = watch_disk(db, o->dir, metrics, err);
    if (!rc && o && o->dir) rc = vg_tsdb_blocks_attach(db, o->dir, o->block_range_ms, metrics, err);
    if (!rc && db->blocks) rc = vg_tiers_attach_tsdb(db->blocks, o, metrics, err);
    if (!rc) rc = vg_tsdb_limits_init(db, o, metrics, err); /* after replay: never refuse it */
    if (rc) {
        vg_tsdb_free(db);
        return rc;
    }
    *out = db;
    return VG_OK;
}

vg_err_t vg_tsdb_sync(vg_tsdb_t *db, uint64_t pos, vg_error *err)
{
    if (!db->wal || pos == 0) return VG_OK;
    return vg_wal_sync(db->wal, pos == VG_TSDB_SYNC_ALL ? VG_WAL_SYNC_ALL : pos, err);
}

struct vg_wal *vg_tsdb_wal(vg_tsdb_t *db)
{
    return db->wal;
}

void vg_tsdb_free(vg_tsdb_t *db)
{
    if (!db) return;
    vg_tsdb_blocks_free(db->blocks); /* stops the cut thread before the heads go */
    vg_wal_close(db->wal);
    vg_limits_free(db->limits);
    for (size_t i = 0; i < db->ntenants; i++) vg_head_free(db->tenants[i].head);
    vg_free(db->tenants);
    vg_free(db->dir);
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

vg_head_t *vg_tsdb_tenant_find(vg_tsdb_t *db, const char *name)
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
    if (db->ooo_window_ms) vg_head_set_ooo_window(h, db->ooo_window_ms);
    if (db->limits) vg_head_set_max_series(h, vg_limits_max_series(db->limits, name));
    tenant *t = &db->tenants[db->ntenants++];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, strlen(name));
    t->head = h;
    *out = h;
    return VG_OK;
}

vg_err_t vg_tsdb_tenant_get(vg_tsdb_t *db, const char *name, vg_head_t **out, vg_error *err)
{
    if (!vg_tsdb_tenant_valid(name))
        return vg_error_set(err, VG_EINVAL,
                            "invalid tenant %.80s: want 1-64 characters of [A-Za-z0-9_.-]",
                            name ? name : "(null)");
    *out = vg_tsdb_tenant_find(db, name);
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

uint32_t vg_tsdb_tenant_index(vg_tsdb_t *db, const vg_head_t *h)
{
    uint32_t idx = 0;
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->ntenants; i++)
        if (db->tenants[i].head == h) idx = (uint32_t)i;
    pthread_rwlock_unlock(&db->lock);
    return idx;
}

size_t vg_tsdb_num_series(vg_tsdb_t *db)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->ntenants; i++) n += vg_head_num_series(db->tenants[i].head);
    pthread_rwlock_unlock(&db->lock);
    return n;
}
