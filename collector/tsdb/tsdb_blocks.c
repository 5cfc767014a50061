/*
 * tsdb_blocks.c - per-tenant block lists, loading, cutting and the thread.
 *
 * The lists are small (a tenant has tens of blocks), so each is a plain
 * array sorted by mint behind one mutex; queries copy the overlapping
 * entries with a reference each and iterate without the lock. Cutting and
 * compaction run on one background thread (or from tests, one pass at a
 * time), so at most one writer changes a list; the mutex only orders it
 * against readers. Compaction itself is in compact.c.
 *
 * The cut watermark: a tenant's "persisted" time is the end of its newest
 * raw block. The head may keep samples before it (a chunk that straddles a
 * cut boundary is kept whole), so a cut starts at max(aligned head start,
 * persisted) and never persists the same range twice; queries deduplicate
 * the straddling samples.
 */
#include "tsdb/tsdb_blocks.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tsdb/blocks_int.h"
#include "tsdb/chunk.h"
#include "tsdb/tiers.h"
#include "tsdb/tsdb_int.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define LOGC "tsdb.blocks"

/* ---- lists ---- */

static tblocks *tenant_find(vg_tsdb_blocks_t *bs, const char *name)
{
    for (size_t i = 0; i < bs->nt; i++)
        if (strcmp(bs->t[i].name, name) == 0) return &bs->t[i];
    return NULL;
}

static tblocks *tenant_get(vg_tsdb_blocks_t *bs, const char *name)
{
    tblocks *t = tenant_find(bs, name);
    if (t) return t;
    if (bs->nt == bs->cap) {
        size_t nc = bs->cap ? bs->cap * 2 : 4;
        tblocks *nt = vg_realloc(bs->t, nc * sizeof(*nt));
        if (!nt) return NULL;
        bs->t = nt;
        bs->cap = nc;
    }
    t = &bs->t[bs->nt++];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->persisted = INT64_MIN;
    return t;
}

/* Insert b (owning its reference) keeping mint order. Lock held. */
vg_err_t vg_blocks_insert_locked(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t *b)
{
    tblocks *t = tenant_get(bs, tenant);
    if (!t) return VG_ENOMEM;
    if (t->n == t->bcap) {
        size_t nc = t->bcap ? t->bcap * 2 : 8;
        vg_block_t **nb = vg_realloc(t->b, nc * sizeof(*nb));
        if (!nb) return VG_ENOMEM;
        t->b = nb;
        t->bcap = nc;
    }
    const vg_block_meta *m = vg_block_get_meta(b);
    size_t i = t->n;
    while (i > 0 && vg_block_get_meta(t->b[i - 1])->mint > m->mint) i--;
    memmove(t->b + i + 1, t->b + i, (t->n - i) * sizeof(*t->b));
    t->b[i] = b;
    t->n++;
    if (m->resolution_ms == 0 && m->maxt > t->persisted) t->persisted = m->maxt;
    return VG_OK;
}

/* Take b off tenant's list and retire it. Lock held. */
void vg_blocks_retire_locked(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t *b)
{
    tblocks *t = tenant_find(bs, tenant);
    for (size_t i = 0; t && i < t->n; i++) {
        if (t->b[i] != b) continue;
        memmove(t->b + i, t->b + i + 1, (t->n - i - 1) * sizeof(*t->b));
        t->n--;
        vg_block_mark_deleted(b);
        vg_block_unref(b);
        return;
    }
}

void vg_tsdb_blocks_dir(const vg_tsdb_blocks_t *bs, const char *tenant, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", bs->root, tenant);
}

vg_err_t vg_tsdb_blocks_add(vg_tsdb_blocks_t *bs, const char *tenant, const char *ulid,
                            vg_error *err)
{
    char dir[4096];
    int w = snprintf(dir, sizeof(dir), "%s/%s/%s", bs->root, tenant, ulid);
    if (w < 0 || (size_t)w >= sizeof(dir)) return vg_error_set(err, VG_EINVAL, "path too long");
    vg_block_t *b = NULL;
    vg_err_t rc = vg_block_open(dir, &b, err);
    if (rc) return rc;
    pthread_mutex_lock(&bs->mu);
    rc = vg_blocks_insert_locked(bs, tenant, b);
    pthread_mutex_unlock(&bs->mu);
    if (rc) {
        vg_block_unref(b);
        return vg_error_set(err, rc, "out of memory");
    }
    return VG_OK;
}

vg_err_t vg_tsdb_blocks_delete(vg_tsdb_blocks_t *bs, const char *tenant, const char *ulid)
{
    vg_err_t rc = VG_ENOTFOUND;
    pthread_mutex_lock(&bs->mu);
    tblocks *t = tenant_find(bs, tenant);
    for (size_t i = 0; t && i < t->n && rc; i++)
        if (strcmp(vg_block_get_meta(t->b[i])->ulid, ulid) == 0) {
            vg_blocks_retire_locked(bs, tenant, t->b[i]);
            rc = VG_OK;
        }
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

vg_err_t vg_tsdb_blocks_acquire(vg_tsdb_blocks_t *bs, const char *tenant, int64_t mint,
                                int64_t maxt, vg_block_t ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!bs) return VG_OK;
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&bs->mu);
    tblocks *t = tenant_find(bs, tenant);
    if (t && t->n) {
        vg_block_t **v = vg_malloc(t->n * sizeof(*v));
        size_t k = 0;
        for (size_t i = 0; v && i < t->n; i++) {
            const vg_block_meta *m = vg_block_get_meta(t->b[i]);
            if (m->maxt <= mint || m->mint > maxt) continue;
            vg_block_ref(t->b[i]);
            v[k++] = t->b[i];
        }
        if (!v) rc = VG_ENOMEM;
        *out = v;
        *n = k;
    }
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

void vg_tsdb_blocks_release(vg_block_t **b, size_t n)
{
    for (size_t i = 0; i < n; i++) vg_block_unref(b[i]);
    vg_free(b);
}

vg_err_t vg_tsdb_blocks_tenants(vg_tsdb_blocks_t *bs, char (**out)[VG_TENANT_MAX + 1], size_t *n)
{
    pthread_mutex_lock(&bs->mu);
    *n = bs->nt;
    *out = vg_malloc((*n ? *n : 1) * sizeof(**out));
    for (size_t i = 0; *out && i < *n; i++) memcpy((*out)[i], bs->t[i].name, sizeof(**out));
    pthread_mutex_unlock(&bs->mu);
    return *out ? VG_OK : VG_ENOMEM;
}

size_t vg_tsdb_blocks_count(vg_tsdb_blocks_t *bs, uint64_t *bytes)
{
    size_t n = 0;
    uint64_t by = 0;
    pthread_mutex_lock(&bs->mu);
    for (size_t i = 0; i < bs->nt; i++) {
        n += bs->t[i].n;
        for (size_t j = 0; j < bs->t[i].n; j++) by += vg_block_size(bs->t[i].b[j]);
    }
    pthread_mutex_unlock(&bs->mu);
    if (bytes) *bytes = by;
    return n;
}

/* ---- loading ---- */

static void load_tenant(vg_tsdb_blocks_t *bs, const char *tenant)
{
    char dir[4096];
    char **ulids = NULL;
    size_t n = 0;
    vg_error e = {0};
    snprintf(dir, sizeof(dir), "%s/%s", bs->root, tenant);
    if (vg_block_list(dir, &ulids, &n, &e)) {
        vg_log_error(LOGC, "listing blocks failed", "dir=%s err=\"%s\"", dir, e.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        e = (vg_error){0};
        if (vg_tsdb_blocks_add(bs, tenant, ulids[i], &e) == VG_OK) continue;
        vg_log_error(LOGC, "skipping unreadable block", "tenant=%s block=%s err=\"%s\"", tenant,
                     ulids[i], e.msg);
        if (bs->m_corrupt) vg_metric_inc(bs->m_corrupt);
        bs->ncorrupt++;
    }
    vg_free(ulids);
}

static vg_err_t load_all(vg_tsdb_blocks_t *bs, vg_error *err)
{
    DIR *d = opendir(bs->root);
    if (!d) return vg_error_set(err, VG_EIO, "%s: %s", bs->root, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)))
        if (vg_tsdb_tenant_valid(e->d_name) && e->d_name[0] != '.') load_tenant(bs, e->d_name);
    closedir(d);
    return VG_OK;
}

static void register_metrics(vg_tsdb_blocks_t *bs, vg_metrics_t *m)
{
    bs->m_corrupt = vg_metrics_counter(m, "vigil_tsdb_blocks_corrupt_total",
                                       "Blocks found corrupt at open and skipped.", NULL);
    bs->m_cut = vg_metrics_counter(m, "vigil_tsdb_blocks_cut_total",
                                   "Blocks written from the heads.", NULL);
    bs->m_compacted = vg_metrics_counter(m, "vigil_tsdb_compactions_total",
                                         "Blocks written by compaction.", NULL);
    bs->m_failed = vg_metrics_counter(m, "vigil_tsdb_block_failures_total",
                                      "Cuts and compactions that failed.", NULL);
}

vg_err_t vg_tsdb_blocks_open(vg_tsdb_t *db, const char *data_dir, int64_t range_ms,
                             vg_metrics_t *metrics, vg_tsdb_blocks_t **out, vg_error *err)
{
    *out = NULL;
    vg_tsdb_blocks_t *bs = vg_calloc(1, sizeof(*bs));
    if (!bs) return vg_error_set(err, VG_ENOMEM, "out of memory");
    bs->db = db;
    bs->range = range_ms > 0 ? range_ms : VG_BLOCK_RANGE_DEFAULT;
    pthread_mutex_init(&bs->mu, NULL);
    pthread_mutex_init(&bs->run_mu, NULL);
    pthread_mutex_init(&bs->pass_mu, NULL);
    pthread_cond_init(&bs->cv, NULL);
    size_t n = strlen(data_dir) + 16;
    bs->root = vg_malloc(n);
    if (!bs->root) {
        vg_tsdb_blocks_free(bs);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    snprintf(bs->root, n, "%s/blocks", data_dir);
    if (metrics) register_metrics(bs, metrics);
    vg_err_t rc = VG_OK;
    if (mkdir(bs->root, 0755) && errno != EEXIST)
        rc = vg_error_set(err, VG_EIO, "creating %s: %s", bs->root, strerror(errno));
    if (!rc) rc = load_all(bs, err);
    if (rc) {
        vg_tsdb_blocks_free(bs);
        return rc;
    }
    *out = bs;
    return VG_OK;
}

void vg_tsdb_blocks_set_wal(vg_tsdb_blocks_t *bs, struct vg_wal *wal)
{
    bs->wal = wal;
}

/* ---- the thread ---- */

static void one_round(vg_tsdb_blocks_t *bs)
{
    vg_error e = {0};
    if (vg_tsdb_blocks_cut(bs, NULL, &e)) {
        vg_log_error(LOGC, "cutting a block failed", "err=\"%s\"", e.msg);
        if (bs->m_failed) vg_metric_inc(bs->m_failed);
    }
    e = (vg_error){0};
    if (vg_tsdb_blocks_compact(bs, NULL, &e)) {
        vg_log_error(LOGC, "compaction failed", "err=\"%s\"", e.msg);
        if (bs->m_failed) vg_metric_inc(bs->m_failed);
    }
    vg_tiers_run(bs); /* downsampling, then retention */
}

static void *run(void *arg)
{
    vg_tsdb_blocks_t *bs = arg;
    pthread_mutex_lock(&bs->run_mu);
    while (!bs->stop) {
        pthread_mutex_unlock(&bs->run_mu);
        one_round(bs);
        pthread_mutex_lock(&bs->run_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += bs->interval_ms / 1000;
        ts.tv_nsec += (bs->interval_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        if (!bs->stop) pthread_cond_timedwait(&bs->cv, &bs->run_mu, &ts);
    }
    pthread_mutex_unlock(&bs->run_mu);
    return NULL;
}

vg_err_t vg_tsdb_blocks_start(vg_tsdb_blocks_t *bs, int64_t interval_ms, vg_error *err)
{
    bs->interval_ms = interval_ms > 0 ? interval_ms : 5000;
    if (pthread_create(&bs->thr, NULL, run, bs))
        return vg_error_set(err, VG_EIO, "starting the block thread failed");
    bs->running = 1;
    return VG_OK;
}

void vg_tsdb_blocks_free(vg_tsdb_blocks_t *bs)
{
    if (!bs) return;
    if (bs->running) {
        pthread_mutex_lock(&bs->run_mu);
        bs->stop = 1;
        pthread_cond_signal(&bs->cv);
        pthread_mutex_unlock(&bs->run_mu);
        pthread_join(bs->thr, NULL);
    }
    for (size_t i = 0; i < bs->nt; i++) {
        for (size_t j = 0; j < bs->t[i].n; j++) vg_block_unref(bs->t[i].b[j]);
        vg_free(bs->t[i].b);
    }
    vg_free(bs->t);
    vg_tiers_free(bs->tiers);
    vg_free(bs->root);
    pthread_mutex_destroy(&bs->mu);
    pthread_mutex_destroy(&bs->run_mu);
    pthread_mutex_destroy(&bs->pass_mu);
    pthread_cond_destroy(&bs->cv);
    vg_free(bs);
}

/* ---- cutting ---- */

/* Decode the snapshot's samples in [mint, maxt) into growing arrays. */
static vg_err_t gather(const vg_snap_series *s, int64_t mint, int64_t maxt, int64_t **ts,
                       double **v, size_t *n, size_t *cap)
{
    *n = 0;
    for (size_t c = 0; c < s->nchunks; c++) {
        vg_chunk_iter it;
        int64_t t;
        double x;
        vg_chunk_iter_init(&it, s->chunks[c].data, s->chunks[c].len);
        while (vg_chunk_iter_next(&it, &t, &x)) {
            if (t < mint || t >= maxt || (*n && t <= (*ts)[*n - 1])) continue;
            if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 256;
                int64_t *nt = vg_realloc(*ts, nc * sizeof(*nt));
                if (nt) *ts = nt;
                double *nv = nt ? vg_realloc(*v, nc * sizeof(*nv)) : NULL;
                if (!nv) return VG_ENOMEM;
                *v = nv;
                *cap = nc;
            }
            (*ts)[*n] = t;
            (*v)[(*n)++] = x;
        }
        if (vg_chunk_iter_err(&it)) return VG_ECORRUPT;
    }
    return VG_OK;
}

/* Series snapshotted at a time by a cut: the copy of their chunks is all a
 * cut holds beyond the writer's labels and chunk metas, instead of the whole
 * range of every series at once (which doubled the peak RSS). */
#define CUT_SLICE 4096
/* Chunks of one series a cut passes to the writer as they are (a 2 h range
 * at 30 s is 2 chunks; at 1 s, 60); more goes through the sample path. */
#define CUT_MAX_CHUNKS 64

typedef struct cut_buf {
    int64_t *ts;
    double *v;
    size_t cap;
} cut_buf;

/* Add s to w chunk by chunk when every chunk lies inside [mint, maxt): the
 * writer keeps compact ones as they are (most full head chunks) and tries
 * the compact form on XOR ones. 0 when s straddles the range and its
 * samples must be filtered instead. */
static int add_whole(vg_block_writer_t *w, const vg_snap_series *s, int64_t mint, int64_t maxt,
                     vg_block_chunk *bc, vg_err_t *rc, vg_error *err)
{
    if (s->nchunks == 0 || s->nchunks > CUT_MAX_CHUNKS) return 0;
    for (size_t c = 0; c < s->nchunks; c++) {
        const vg_snap_chunk *k = &s->chunks[c];
        if (k->mint < mint || k->maxt >= maxt) return 0;
        if (c && k->mint <= s->chunks[c - 1].maxt) return 0;
        bc[c] = (vg_block_chunk){k->mint, k->maxt, k->data, k->len};
    }
    *rc = vg_block_writer_add(w, s->labels, s->nlabels, bc, s->nchunks, err);
    return 1;
}

/* Add the series of refs[0..n) with samples in [mint, maxt) to w. */
static vg_err_t cut_slice(vg_head_t *h, const uint32_t *refs, size_t n, int64_t mint, int64_t maxt,
                          vg_arena_t *a, cut_buf *b, vg_block_writer_t *w, vg_error *err)
{
    vg_snap_series *s = NULL;
    size_t ns = 0, k = 0;
    vg_arena_reset(a);
    vg_err_t rc = vg_head_snapshot_refs(h, refs, n, mint, maxt - 1, a, &s, &ns);
    if (rc) return vg_error_set(err, rc, "snapshot of the head: %s", vg_strerror(rc));
    for (size_t i = 0; i < ns && !rc; i++) {
        vg_block_chunk bc[CUT_MAX_CHUNKS];
        if (add_whole(w, &s[i], mint, maxt, bc, &rc, err)) continue;
        rc = gather(&s[i], mint, maxt, &b->ts, &b->v, &k, &b->cap);
        if (rc) vg_error_set(err, rc, "decoding the head");
        if (!rc)
            rc = vg_block_writer_add_samples(w, s[i].labels, s[i].nlabels, b->ts, b->v, k, err);
    }
    return rc;
}

/* Write tenant's head samples in [mint, maxt) as a block; VG_EAGAIN if none.
 * Series go in label order, CUT_SLICE at a time. */
static vg_err_t write_cut(vg_tsdb_blocks_t *bs, const char *tenant, vg_head_t *h, int64_t mint,
                          int64_t maxt, char *ulid, vg_error *err)
{
    char dir[4096];
    uint32_t *refs = NULL;
    size_t nrefs = 0;
    cut_buf b = {0};
    vg_block_writer_t *w = NULL;
    vg_arena_t *a = vg_arena_new(0);
    vg_tsdb_blocks_dir(bs, tenant, dir, sizeof(dir));
    vg_err_t rc = a ? vg_head_refs_sorted(h, &refs, &nrefs) : VG_ENOMEM;
    if (rc) vg_error_set(err, rc, "listing the series of tenant %s: %s", tenant, vg_strerror(rc));
    if (!rc) rc = vg_block_writer_new(dir, mint, maxt, 0, &w, err);
    for (size_t i = 0; i < nrefs && !rc; i += CUT_SLICE) {
        size_t n = nrefs - i < CUT_SLICE ? nrefs - i : CUT_SLICE;
        rc = cut_slice(h, refs + i, n, mint, maxt, a, &b, w, err);
        if (rc) vg_error_prefix(err, "cutting tenant %s", tenant);
    }
    if (!rc) rc = vg_block_writer_commit(w, ulid, err);
    vg_block_writer_free(w);
    vg_free(b.ts);
    vg_free(b.v);
    vg_free(refs);
    vg_arena_free(a);
    return rc;
}

/* Start of the next range to cut for a tenant, or 0 when none is due. */
static int cut_due(vg_tsdb_blocks_t *bs, vg_head_t *h, int64_t persisted, int64_t *start)
{
    int64_t hmin, hmax;
    if (!vg_head_time_range(h, &hmin, &hmax)) return 0;
    int64_t lo = hmin > persisted ? hmin : persisted;
    if (hmax - lo <= bs->range + bs->range / 2) return 0;
    int64_t t = lo - ((lo % bs->range) + bs->range) % bs->range;
    *start = t > persisted ? t : persisted;
    return 1;
}

static int64_t tenant_persisted(vg_tsdb_blocks_t *bs, const char *tenant)
{
    pthread_mutex_lock(&bs->mu);
    tblocks *t = tenant_find(bs, tenant);
    int64_t p = t ? t->persisted : INT64_MIN;
    pthread_mutex_unlock(&bs->mu);
    return p;
}

static vg_err_t cut_tenant(vg_tsdb_blocks_t *bs, const char *tenant, vg_head_t *h, size_t *ncut,
                           vg_error *err)
{
    int64_t start;
    while (cut_due(bs, h, tenant_persisted(bs, tenant), &start)) {
        char ulid[VG_ULID_LEN + 1];
        int64_t end = start + bs->range;
        /* Refuse late samples below end first, so none lands between the
         * snapshot and the truncate and is dropped unpersisted. */
        vg_head_set_min_valid(h, end);
        vg_err_t rc = write_cut(bs, tenant, h, start, end, ulid, err);
        if (rc == VG_EAGAIN) { /* nothing in that range: just move the watermark */
            pthread_mutex_lock(&bs->mu);
            tblocks *t = tenant_get(bs, tenant);
            if (t) t->persisted = end;
            pthread_mutex_unlock(&bs->mu);
            if (!t) return VG_ENOMEM;
        } else if (rc || (rc = vg_tsdb_blocks_add(bs, tenant, ulid, err))) {
            return rc;
        } else {
            vg_log_info(LOGC, "cut block", "tenant=%s block=%s mint=%lld maxt=%lld", tenant, ulid,
                        (long long)start, (long long)end);
            if (bs->m_cut) vg_metric_inc(bs->m_cut);
            (*ncut)++;
        }
        rc = vg_head_truncate(h, end);
        if (rc) return vg_error_set(err, rc, "truncating the head of tenant %s", tenant);
    }
    return VG_OK;
}

/* Oldest sample any head still holds: the WAL may drop what is older. */
static void truncate_wal(vg_tsdb_blocks_t *bs, char (*names)[VG_TENANT_MAX + 1], size_t n)
{
    int64_t low = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        vg_head_t *h = vg_tsdb_tenant_find(bs->db, names[i]);
        int64_t hmin, hmax;
        if (h && vg_head_time_range(h, &hmin, &hmax) && hmin < low) low = hmin;
    }
    if (bs->wal && low != INT64_MAX) vg_wal_truncate(bs->wal, low);
}

/* Copy of the names of the tenants with a head. */
static vg_err_t tenant_names(vg_tsdb_t *db, char (**out)[VG_TENANT_MAX + 1], size_t *n)
{
    pthread_rwlock_rdlock(&db->lock);
    *n = db->ntenants;
    *out = vg_malloc((*n ? *n : 1) * sizeof(**out));
    for (size_t i = 0; *out && i < *n; i++) memcpy((*out)[i], db->tenants[i].name, sizeof(**out));
    pthread_rwlock_unlock(&db->lock);
    return *out ? VG_OK : VG_ENOMEM;
}

vg_err_t vg_tsdb_blocks_cut(vg_tsdb_blocks_t *bs, size_t *ncut, vg_error *err)
{
    size_t dummy = 0, n = 0;
    char(*names)[VG_TENANT_MAX + 1] = NULL;
    if (!ncut) ncut = &dummy;
    *ncut = 0;
    vg_err_t rc = tenant_names(bs->db, &names, &n);
    if (rc) return vg_error_set(err, rc, "out of memory");
    pthread_mutex_lock(&bs->pass_mu);
    for (size_t i = 0; i < n && !rc; i++) {
        vg_head_t *h = vg_tsdb_tenant_find(bs->db, names[i]);
        if (h) rc = cut_tenant(bs, names[i], h, ncut, err);
    }
    if (*ncut) truncate_wal(bs, names, n);
    pthread_mutex_unlock(&bs->pass_mu);
    vg_free(names);
    return rc;
}

/* ---- wiring into vg_tsdb_open ---- */

vg_err_t vg_tsdb_blocks_attach(vg_tsdb_t *db, const char *data_dir, int64_t range_ms,
                               vg_metrics_t *metrics, vg_error *err)
{
    vg_tsdb_blocks_t *bs = NULL;
    vg_err_t rc = vg_tsdb_blocks_open(db, data_dir, range_ms, metrics, &bs, err);
    if (rc) return rc;
    vg_tsdb_blocks_set_wal(bs, db->wal);
    for (size_t i = 0; i < bs->nt && !rc; i++) { /* the WAL replayed what blocks hold */
        vg_head_t *h = vg_tsdb_tenant_find(db, bs->t[i].name);
        if (h && bs->t[i].persisted != INT64_MIN) rc = vg_head_truncate(h, bs->t[i].persisted);
    }
    if (!rc)
        rc = vg_tsdb_blocks_start(bs, 1000, err);
    else
        vg_error_set(err, rc, "truncating a replayed head: %s", vg_strerror(rc));
    if (rc) {
        vg_tsdb_blocks_free(bs);
        return rc;
    }
    db->blocks = bs;
    return VG_OK;
}
