/*
 * compact.c - merge a tenant's blocks into fewer, larger ones.
 *
 * Planning (per resolution, blocks sorted by mint):
 *   1. blocks whose ranges overlap (out-of-order data) are merged first;
 *   2. otherwise the oldest aligned window of 3, 9, 27... block ranges (at
 *      most 31 days) that holds two or more blocks and is complete (a later
 *      block exists, or the blocks cover the window) is merged.
 * One merge per step, repeated until nothing is planned. A merge reads the
 * inputs through their maps, groups series by labels, and for each series
 * either copies the chunks as they are (runs disjoint in time: the usual
 * case) or re-encodes the k-way merge with duplicate timestamps dropped.
 * The output is renamed in and inserted before the inputs are retired, so a
 * query sees the data at least once at every instant (it deduplicates).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/blocks_int.h"
#include "tsdb/merge.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define LOGC     "tsdb.compact"
#define MAX_SPAN (31LL * 24 * 3600 * 1000)

static const vg_block_meta *M(vg_block_t *b)
{
    return vg_block_get_meta(b);
}

/* Overlapping group [*lo, *hi) in b[0..n) (one resolution, mint order). */
static int plan_overlap(vg_block_t **b, size_t n, size_t *lo, size_t *hi)
{
    for (size_t i = 0; i + 1 < n; i++) {
        int64_t end = M(b[i])->maxt;
        size_t j = i + 1;
        while (j < n && M(b[j])->mint < end) {
            if (M(b[j])->maxt > end) end = M(b[j])->maxt;
            j++;
        }
        if (j - i >= 2) {
            *lo = i, *hi = j;
            return 1;
        }
    }
    return 0;
}

static int64_t floor_div(int64_t a, int64_t r)
{
    return a - ((a % r) + r) % r;
}

static int plan_window(int64_t range, vg_block_t **b, size_t n, size_t *lo, size_t *hi)
{
    for (int64_t r = 3 * range; r > 0 && r <= MAX_SPAN; r *= 3) {
        for (size_t i = 0; i < n;) {
            int64_t s = floor_div(M(b[i])->mint, r);
            size_t j = i;
            while (j < n && M(b[j])->mint >= s && M(b[j])->maxt <= s + r) j++;
            if (j == i) {
                i++;
                continue;
            }
            int complete =
                M(b[n - 1])->mint >= s + r || (M(b[i])->mint == s && M(b[j - 1])->maxt == s + r);
            if (j - i >= 2 && complete) {
                *lo = i, *hi = j;
                return 1;
            }
            i = j;
        }
    }
    return 0;
}

/* ---- merging ---- */

typedef struct samples {
    int64_t *ts;
    double *v;
    size_t n, cap;
} samples;

static vg_err_t samples_push(samples *s, int64_t t, double v)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        int64_t *nt = vg_realloc(s->ts, nc * sizeof(*nt));
        if (nt) s->ts = nt;
        double *nv = nt ? vg_realloc(s->v, nc * sizeof(*nv)) : NULL;
        if (!nv) return VG_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->ts[s->n] = t;
    s->v[s->n++] = v;
    return VG_OK;
}

/* True when the runs follow each other in time without overlap. */
static int runs_disjoint(const vg_mseries *s)
{
    for (size_t i = 1; i < s->nruns; i++) {
        const vg_mrun *a = &s->runs[i - 1], *b = &s->runs[i];
        if (!a->n || !b->n || a->c[a->n - 1].maxt >= b->c[0].mint) return 0;
    }
    return 1;
}

static vg_err_t write_series(vg_block_writer_t *w, const vg_mseries *s, vg_mcur *cur, samples *sm,
                             vg_arena_t *a, vg_error *err)
{
    if (runs_disjoint(s)) {
        size_t total = 0, k = 0;
        for (size_t i = 0; i < s->nruns; i++) total += s->runs[i].n;
        vg_block_chunk *c = vg_arena_alloc(a, (total ? total : 1) * sizeof(*c));
        if (!c) return vg_error_set(err, VG_ENOMEM, "out of memory");
        for (size_t i = 0; i < s->nruns; i++)
            for (size_t j = 0; j < s->runs[i].n; j++) c[k++] = s->runs[i].c[j];
        return vg_block_writer_add(w, s->labels, s->nlabels, c, k, err);
    }
    vg_merge_iter it;
    int64_t t;
    double v;
    sm->n = 0;
    vg_merge_iter_init(&it, cur, s);
    while (vg_merge_iter_next(&it, &t, &v))
        if (samples_push(sm, t, v)) return vg_error_set(err, VG_ENOMEM, "out of memory");
    if (it.err) return vg_error_set(err, it.err, "a chunk failed to decode");
    return vg_block_writer_add_samples(w, s->labels, s->nlabels, sm->ts, sm->v, sm->n, err);
}

static vg_err_t set_sources(vg_block_writer_t *w, vg_block_t **b, size_t n, vg_arena_t *a)
{
    size_t total = 0, k = 0;
    int level = 0;
    for (size_t i = 0; i < n; i++) {
        total += M(b[i])->nsources;
        if (M(b[i])->level > level) level = M(b[i])->level;
    }
    const char **src = vg_arena_alloc(a, (total ? total : 1) * sizeof(*src));
    if (!src) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < M(b[i])->nsources; j++) src[k++] = M(b[i])->sources[j];
    return vg_block_writer_set_sources(w, level + 1, src, k);
}

static vg_err_t merge_into(vg_block_writer_t *w, vg_block_t **b, size_t n, vg_arena_t *a,
                           vg_error *err)
{
    vg_block_series **src = vg_arena_calloc(a, n * sizeof(*src));
    size_t *nsrc = vg_arena_calloc(a, n * sizeof(*nsrc));
    vg_mcur *cur = vg_arena_alloc(a, n * sizeof(*cur));
    vg_mseries *ms = NULL;
    size_t nms = 0;
    if (!src || !nsrc || !cur) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        vg_err_t rc =
            vg_block_select(b[i], NULL, 0, INT64_MIN, INT64_MAX, a, &src[i], &nsrc[i], err);
        if (rc) return rc;
    }
    if (vg_merge_group(src, nsrc, n, a, &ms, &nms))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    samples sm = {0};
    vg_err_t rc = set_sources(w, b, n, a);
    for (size_t i = 0; i < nms && !rc; i++) rc = write_series(w, &ms[i], cur, &sm, a, err);
    vg_free(sm.ts);
    vg_free(sm.v);
    return rc;
}

/* Merge b[0..n) of tenant into one block and swap it in. */
static vg_err_t compact_group(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t **b, size_t n,
                              vg_error *err)
{
    char dir[4096], ulid[VG_ULID_LEN + 1];
    int64_t mint = M(b[0])->mint, maxt = M(b[0])->maxt;
    for (size_t i = 1; i < n; i++) {
        if (M(b[i])->mint < mint) mint = M(b[i])->mint;
        if (M(b[i])->maxt > maxt) maxt = M(b[i])->maxt;
    }
    vg_tsdb_blocks_dir(bs, tenant, dir, sizeof(dir));
    vg_block_writer_t *w = NULL;
    vg_arena_t *a = vg_arena_new(0);
    vg_err_t rc = a ? vg_block_writer_new(dir, mint, maxt, M(b[0])->resolution_ms, &w, err)
                    : vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc) rc = merge_into(w, b, n, a, err);
    if (!rc) rc = vg_block_writer_commit(w, ulid, err);
    vg_block_writer_free(w);
    vg_arena_free(a);
    vg_block_t *out = NULL;
    if (rc == VG_EAGAIN)
        rc = VG_OK; /* all inputs empty: just retire them */
    else if (!rc) {
        snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/%s", ulid);
        rc = vg_block_open(dir, &out, err);
    }
    if (rc) return rc;
    pthread_mutex_lock(&bs->mu);
    if (out) rc = vg_blocks_insert_locked(bs, tenant, out);
    for (size_t i = 0; i < n && !rc; i++) vg_blocks_retire_locked(bs, tenant, b[i]);
    pthread_mutex_unlock(&bs->mu);
    if (rc) vg_block_unref(out);
    if (!rc)
        vg_log_info(LOGC, "compacted blocks", "tenant=%s inputs=%zu block=%s mint=%lld maxt=%lld",
                    tenant, n, out ? ulid : "-", (long long)mint, (long long)maxt);
    return rc ? vg_error_set(err, rc, "out of memory") : VG_OK;
}

/* Referenced copy of tenant i's blocks of resolution res. mu held. */
static size_t snapshot_list(tblocks *t, int64_t res, vg_block_t **out)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (M(t->b[i])->resolution_ms == res) {
            vg_block_ref(t->b[i]);
            out[k++] = t->b[i];
        }
    return k;
}

/* Plan and run one merge of tenant ti at resolution res: 1 if one ran. */
static int compact_step(vg_tsdb_blocks_t *bs, size_t ti, int64_t res, vg_err_t *rc, vg_error *err)
{
    char tenant[VG_TENANT_MAX + 1];
    pthread_mutex_lock(&bs->mu);
    tblocks *t = &bs->t[ti];
    memcpy(tenant, t->name, sizeof(tenant));
    vg_block_t **b = vg_malloc((t->n ? t->n : 1) * sizeof(*b));
    size_t n = b ? snapshot_list(t, res, b) : 0;
    pthread_mutex_unlock(&bs->mu);
    if (!b) {
        *rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        return 0;
    }
    size_t lo, hi;
    int ran = plan_overlap(b, n, &lo, &hi) || plan_window(bs->range, b, n, &lo, &hi);
    if (ran) *rc = compact_group(bs, tenant, b + lo, hi - lo, err);
    vg_tsdb_blocks_release(b, n);
    return ran && !*rc;
}

/* Resolutions present in tenant ti (at most 8 distinct). */
static size_t resolutions(vg_tsdb_blocks_t *bs, size_t ti, int64_t *res)
{
    size_t k = 0;
    pthread_mutex_lock(&bs->mu);
    for (size_t i = 0; i < bs->t[ti].n && k < 8; i++) {
        int64_t r = M(bs->t[ti].b[i])->resolution_ms;
        size_t j = 0;
        while (j < k && res[j] != r) j++;
        if (j == k) res[k++] = r;
    }
    pthread_mutex_unlock(&bs->mu);
    return k;
}

vg_err_t vg_tsdb_blocks_compact(vg_tsdb_blocks_t *bs, size_t *nout, vg_error *err)
{
    size_t dummy = 0;
    if (!nout) nout = &dummy;
    *nout = 0;
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&bs->pass_mu);
    pthread_mutex_lock(&bs->mu);
    size_t nt = bs->nt; /* tenants are only ever added, never removed */
    pthread_mutex_unlock(&bs->mu);
    for (size_t ti = 0; ti < nt && !rc; ti++) {
        int64_t res[8];
        size_t nr = resolutions(bs, ti, res);
        for (size_t r = 0; r < nr && !rc; r++)
            while (compact_step(bs, ti, res[r], &rc, err)) {
                (*nout)++;
                if (bs->m_compacted) vg_metric_inc(bs->m_compacted);
            }
    }
    pthread_mutex_unlock(&bs->pass_mu);
    return rc;
}
