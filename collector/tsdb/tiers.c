/*
 * tiers.c - the tier passes on the block thread, and tier-aware reads.
 *
 * The read side materialises downsampled series rather than teaching the
 * merge iterator about aggregates: a query over downsampled data touches
 * 1/20 (5m) or 1/240 (1h) of the raw samples, so copying them into a few
 * arena chunks is cheap, and the merge, the seriesset and every caller stay
 * unchanged. For the counter kind the blocks' running totals are stitched
 * into one non-decreasing series (markers make resets between blocks exact)
 * and shifted so that it ends at the last raw value, which lets raw samples
 * that follow continue it as PromQL's own reset handling expects.
 */
#include "tsdb/tiers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/blocks_int.h"
#include "tsdb/chunk.h"
#include "tsdb/retention.h"
#include "tsdb/tsdb_int.h"
#include "vigil/alloc.h"
#include "vigil/log.h"

#define LOGC "tsdb.tiers"

struct vg_tiers {
    vg_tiers_opts o;
    vg_metric_t *deleted[6]; /* [tier * 2 + reason - 1] */
};

static const int64_t keep_default[3] = {90 * 86400000LL, 365 * 86400000LL, 7 * 365 * 86400000LL};

static void register_metrics(vg_tiers_t *t, vg_metrics_t *m)
{
    static const char *const reasons[2] = {"retention", "max_bytes"};
    for (int i = 0; i < 6; i++) {
        char l[64];
        snprintf(l, sizeof(l), "reason=\"%s\",tier=\"%s\"", reasons[i % 2],
                 vg_ret_tier_name(i / 2));
        t->deleted[i] = vg_metrics_counter(m, "vigil_tsdb_blocks_deleted_total",
                                           "Blocks deleted by retention or the byte cap.", l);
    }
}

vg_err_t vg_tiers_attach(vg_tsdb_blocks_t *bs, const vg_tiers_opts *o, vg_metrics_t *m,
                         vg_error *err)
{
    vg_tiers_t *t = vg_calloc(1, sizeof(*t));
    if (!t) return vg_error_set(err, VG_ENOMEM, "out of memory");
    if (o) t->o = *o;
    if (t->o.downsample_5m_after_ms == 0)
        t->o.downsample_5m_after_ms = VG_DOWNSAMPLE_5M_AFTER_DEFAULT;
    if (t->o.downsample_1h_after_ms == 0)
        t->o.downsample_1h_after_ms = VG_DOWNSAMPLE_1H_AFTER_DEFAULT;
    for (int i = 0; i < 3; i++)
        if (t->o.keep_ms[i] <= 0) t->o.keep_ms[i] = keep_default[i];
    if (m) register_metrics(t, m);
    pthread_mutex_lock(&bs->mu);
    vg_tiers_t *old = bs->tiers;
    bs->tiers = t;
    pthread_mutex_unlock(&bs->mu);
    vg_tiers_free(old);
    return VG_OK;
}

vg_err_t vg_tiers_attach_tsdb(vg_tsdb_blocks_t *bs, const vg_tsdb_opts *o, vg_metrics_t *m,
                              vg_error *err)
{
    vg_tiers_opts t = {
        .downsample_5m_after_ms = o->downsample_5m_after_ms,
        .downsample_1h_after_ms = o->downsample_1h_after_ms,
        .keep_ms = {o->retention_raw_ms, o->retention_5m_ms, o->retention_1h_ms},
        .max_bytes = o->max_bytes,
    };
    return vg_tiers_attach(bs, &t, m, err);
}

void vg_tiers_free(vg_tiers_t *t)
{
    vg_free(t);
}

vg_err_t vg_tiers_pass(vg_tsdb_blocks_t *bs, int64_t now_ms, size_t *nds, size_t *ndel,
                       vg_error *err)
{
    if (nds) *nds = 0;
    if (ndel) *ndel = 0;
    pthread_mutex_lock(&bs->mu);
    vg_tiers_t *t = bs->tiers; /* set once before the passes run; freed after the thread */
    pthread_mutex_unlock(&bs->mu);
    if (!t) return VG_OK;
    const vg_tiers_opts *o = &t->o;
    int64_t never = INT64_MAX / 4;
    int64_t a5 = o->downsample_5m_after_ms < 0 ? never : o->downsample_5m_after_ms;
    int64_t a1 = o->downsample_1h_after_ms < 0 ? never : o->downsample_1h_after_ms;
    vg_err_t rc = vg_downsample_pass(bs, now_ms, a5, a1, nds, err);
    if (rc) return rc;
    vg_ret_opts ro = {{o->keep_ms[0], o->keep_ms[1], o->keep_ms[2]}, o->max_bytes};
    return vg_retention_pass(bs, now_ms, &ro, t->deleted, ndel, err);
}

int64_t vg_tiers_tenant_now(vg_tsdb_blocks_t *bs, size_t ti, int64_t now_ms)
{
    char name[VG_TENANT_MAX + 1];
    int64_t now = INT64_MIN, hmin, hmax;
    if (now_ms != INT64_MIN) return now_ms;
    pthread_mutex_lock(&bs->mu);
    tblocks *t = &bs->t[ti];
    memcpy(name, t->name, sizeof(name));
    for (size_t i = 0; i < t->n; i++) {
        const vg_block_meta *m = vg_block_get_meta(t->b[i]);
        if (m->maxt - 1 > now) now = m->maxt - 1;
    }
    pthread_mutex_unlock(&bs->mu);
    vg_head_t *h = vg_tsdb_tenant_find(bs->db, name);
    if (h && vg_head_time_range(h, &hmin, &hmax) && hmax > now) now = hmax;
    return now;
}

void vg_tiers_run(vg_tsdb_blocks_t *bs)
{
    vg_error e = {0};
    if (vg_tiers_pass(bs, INT64_MIN, NULL, NULL, &e)) {
        vg_log_error(LOGC, "downsampling or retention failed", "err=\"%s\"", e.msg);
        if (bs->m_failed) vg_metric_inc(bs->m_failed);
    }
}

vg_aggr_kind vg_aggr_for_function(const char *fn)
{
    static const struct {
        const char *name;
        vg_aggr_kind k;
    } map[] = {
        {"rate", VG_AGGR_COUNTER},          {"increase", VG_AGGR_COUNTER},
        {"irate", VG_AGGR_COUNTER},         {"resets", VG_AGGR_COUNTER},
        {"count_over_time", VG_AGGR_COUNT}, {"sum_over_time", VG_AGGR_SUM},
        {"min_over_time", VG_AGGR_MIN},     {"max_over_time", VG_AGGR_MAX},
    };
    for (size_t i = 0; fn && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(fn, map[i].name) == 0) return map[i].k;
    return VG_AGGR_AVG;
}

/* ---- choosing blocks ---- */

static int tier_rank(const vg_block_meta *m)
{
    return m->resolution_ms == 0 ? 0 : m->resolution_ms <= VG_RES_5M ? 2 : 1;
}

/* raw first, then 1h, then 5m; mint order within a tier */
static int sel_cmp(const void *a, const void *b)
{
    const vg_block_meta *x = vg_block_get_meta(*(vg_block_t *const *)a);
    const vg_block_meta *y = vg_block_get_meta(*(vg_block_t *const *)b);
    int c = tier_rank(x) - tier_rank(y);
    return c ? c : (x->mint > y->mint) - (x->mint < y->mint);
}

/* Where raw data starts and where 5m data starts (the tiers' oldest data). */
static void tier_starts(vg_tsdb_t *db, const char *tenant, vg_block_t **b, size_t n, vg_tier_sel *s)
{
    int64_t hmin, hmax;
    vg_head_t *h = vg_tsdb_tenant_find(db, tenant);
    s->raw_start = h && vg_head_time_range(h, &hmin, &hmax) ? hmin : INT64_MAX;
    s->start_5m = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const vg_block_meta *m = vg_block_get_meta(b[i]);
        int r = tier_rank(m);
        if (r == 0 && m->mint < s->raw_start) s->raw_start = m->mint;
        if (r == 2 && m->mint < s->start_5m) s->start_5m = m->mint;
    }
    if (s->start_5m > s->raw_start) s->start_5m = s->raw_start;
}

/* Does block m hold samples a select over [mint, maxt] reads? */
static int wanted(const vg_block_meta *m, const vg_tier_sel *s, int64_t mint, int64_t maxt)
{
    int r = tier_rank(m);
    int64_t hi = r == 0 ? maxt : r == 2 ? s->raw_start - 1 : s->start_5m - 1;
    int64_t lo = r == 2 ? s->start_5m : INT64_MIN;
    if (hi > maxt) hi = maxt;
    if (lo < mint) lo = mint;
    return lo <= hi && m->maxt > lo && m->mint <= hi;
}

vg_err_t vg_tiers_acquire(vg_tsdb_t *db, const char *tenant, int64_t mint, int64_t maxt,
                          vg_tier_sel *s)
{
    memset(s, 0, sizeof(*s));
    s->raw_start = s->start_5m = INT64_MIN;
    vg_block_t **b = NULL;
    size_t n = 0, k = 0;
    vg_err_t rc = vg_tsdb_blocks_acquire(db->blocks, tenant, INT64_MIN, INT64_MAX, &b, &n);
    if (rc || !b) return rc;
    tier_starts(db, tenant, b, n, s);
    for (size_t i = 0; i < n; i++) {
        if (wanted(vg_block_get_meta(b[i]), s, mint, maxt))
            b[k++] = b[i];
        else
            vg_block_unref(b[i]);
    }
    qsort(b, k, sizeof(*b), sel_cmp);
    while (s->nraw < k && tier_rank(vg_block_get_meta(b[s->nraw])) == 0) s->nraw++;
    s->b = b;
    s->n = k;
    return VG_OK;
}

/* ---- materialising the downsampled part ---- */

typedef struct dsref {
    const vg_label_t *base;
    size_t nbase;
    int kind;
    size_t blk; /* index among the downsampled blocks (read order) */
    const vg_block_series *s;
} dsref;

static int dsref_cmp(const void *a, const void *b)
{
    const dsref *x = a, *y = b;
    int c = vg_labels_cmp(x->base, x->nbase, y->base, y->nbase);
    if (c) return c;
    if (x->blk != y->blk) return x->blk < y->blk ? -1 : 1;
    return x->kind - y->kind;
}

/* [*lo, *hi) of block m that this select reads. */
static void clip(const vg_block_meta *m, const vg_tier_sel *s, int64_t mint, int64_t maxt,
                 int64_t *lo, int64_t *hi)
{
    int r = tier_rank(m);
    *lo = r == 2 ? s->start_5m : INT64_MIN;
    *hi = r == 2 ? s->raw_start : s->start_5m;
    if (*lo < mint) *lo = mint;
    if (maxt<INT64_MAX && * hi> maxt + 1) *hi = maxt + 1;
}

static int needed(vg_aggr_kind want, int kind)
{
    if (want == VG_AGGR_AVG) return kind == VG_AGGR_SUM || kind == VG_AGGR_COUNT;
    return kind == (int)want;
}

/* Select every downsampled block and list the series of the kinds needed. */
static vg_err_t gather_refs(const vg_tier_sel *s, vg_matcher_t *const *m, size_t nm, int64_t mint,
                            int64_t maxt, vg_aggr_kind want, vg_arena_t *a, dsref **out,
                            size_t *nout, vg_error *err)
{
    size_t nds = s->n - s->nraw, total = 0;
    vg_block_series **ser = vg_arena_calloc(a, nds * sizeof(*ser));
    size_t *ns = vg_arena_calloc(a, nds * sizeof(*ns));
    if (!ser || !ns) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t j = 0; j < nds; j++) {
        int64_t lo, hi;
        clip(vg_block_get_meta(s->b[s->nraw + j]), s, mint, maxt, &lo, &hi);
        vg_err_t rc =
            vg_block_select(s->b[s->nraw + j], m, nm, lo, hi - 1, a, &ser[j], &ns[j], err);
        if (rc) return rc;
        total += ns[j];
    }
    dsref *r = vg_arena_alloc(a, (total ? total : 1) * sizeof(*r));
    if (!r) return vg_error_set(err, VG_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t j = 0; j < nds; j++)
        for (size_t i = 0; i < ns[j]; i++) {
            dsref *x = &r[k];
            x->base =
                vg_ds_base_labels(ser[j][i].labels, ser[j][i].nlabels, a, &x->nbase, &x->kind);
            if (!x->base) return vg_error_set(err, VG_ENOMEM, "out of memory");
            x->blk = j;
            x->s = &ser[j][i];
            if (needed(want, x->kind)) k++;
        }
    qsort(r, k, sizeof(*r), dsref_cmp);
    *out = r;
    *nout = k;
    return VG_OK;
}

/* Append one block's samples of the wanted kind (refs r[0..n): one block). */
static vg_err_t block_samples(const dsref *r, size_t n, int64_t lo, int64_t hi, vg_aggr_kind want,
                              vg_ds_samples *tmp, vg_ds_samples *acc)
{
    vg_err_t rc = VG_OK;
    if (want != VG_AGGR_AVG) {
        rc = vg_ds_decode(r[0].s, lo, hi, want == VG_AGGR_COUNTER, &tmp[0]);
        for (size_t i = 0; !rc && i < tmp[0].n; i++)
            rc = vg_ds_push(acc, tmp[0].ts[i], tmp[0].v[i]);
        return rc;
    }
    if (n != 2) return VG_OK; /* count and sum sort first and second */
    rc = vg_ds_decode(r[0].s, lo, hi, 0, &tmp[0]);
    if (!rc) rc = vg_ds_decode(r[1].s, lo, hi, 0, &tmp[1]);
    for (size_t i = 0; !rc && i < tmp[0].n && i < tmp[1].n; i++)
        if (tmp[0].ts[i] == tmp[1].ts[i] && tmp[0].v[i] > 0)
            rc = vg_ds_push(acc, tmp[0].ts[i], tmp[1].v[i] / tmp[0].v[i]);
    return rc;
}

/* Stitch the counter totals and end them at the last raw value. */
static vg_err_t counter_finish(vg_ds_samples *acc, vg_ds_samples *tmp)
{
    double raw_last = 0;
    tmp->n = 0;
    vg_err_t rc = vg_counter_stitch(acc->ts, acc->v, acc->n, tmp, &raw_last);
    if (rc || tmp->n == 0) return rc;
    double shift = raw_last - tmp->v[tmp->n - 1];
    acc->n = 0;
    for (size_t i = 0; !rc && i < tmp->n; i++) rc = vg_ds_push(acc, tmp->ts[i], tmp->v[i] + shift);
    return rc;
}

static vg_err_t encode(const vg_ds_samples *x, vg_arena_t *a, vg_block_chunk **out, size_t *nc)
{
    size_t k = (x->n + VG_CHUNK_MAX_SAMPLES - 1) / VG_CHUNK_MAX_SAMPLES;
    vg_block_chunk *c = vg_arena_alloc(a, (k ? k : 1) * sizeof(*c));
    if (!c) return VG_ENOMEM;
    for (size_t j = 0, i = 0; j < k; j++) {
        vg_chunk_t *ch = vg_chunk_new();
        size_t end = i + VG_CHUNK_MAX_SAMPLES < x->n ? i + VG_CHUNK_MAX_SAMPLES : x->n, len;
        c[j].mint = x->ts[i];
        c[j].maxt = x->ts[end - 1];
        vg_err_t rc = ch ? VG_OK : VG_ENOMEM;
        for (; !rc && i < end; i++) rc = vg_chunk_append(ch, x->ts[i], x->v[i]);
        const uint8_t *b = rc ? NULL : vg_chunk_bytes(ch, &len);
        uint8_t *d = b ? vg_arena_alloc(a, len) : NULL;
        if (d) memcpy(d, b, len);
        vg_chunk_free(ch);
        if (!d) return rc ? rc : VG_ENOMEM;
        c[j].data = d;
        c[j].len = len;
    }
    *out = c;
    *nc = k;
    return VG_OK;
}

typedef struct mat {
    const vg_tier_sel *s;
    int64_t mint, maxt;
    vg_aggr_kind want;
    vg_ds_samples tmp[2], acc;
} mat;

/* Materialise the group r[0..n) (one base series) into *out. */
static vg_err_t one_series(mat *x, const dsref *r, size_t n, vg_arena_t *a, vg_block_series *out)
{
    vg_err_t rc = VG_OK;
    x->acc.n = 0;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i;
        while (j < n && r[j].blk == r[i].blk) j++;
        int64_t lo, hi;
        clip(vg_block_get_meta(x->s->b[x->s->nraw + r[i].blk]), x->s, x->mint, x->maxt, &lo, &hi);
        rc = block_samples(r + i, j - i, lo, hi, x->want, x->tmp, &x->acc);
        i = j;
    }
    if (!rc && x->want == VG_AGGR_COUNTER) rc = counter_finish(&x->acc, &x->tmp[0]);
    *out = (vg_block_series){r[0].base, r[0].nbase, NULL, 0};
    if (!rc && x->acc.n) rc = encode(&x->acc, a, &out->chunks, &out->nchunks);
    return rc;
}

vg_err_t vg_tiers_source(const vg_tier_sel *s, vg_matcher_t *const *m, size_t nm, int64_t mint,
                         int64_t maxt, vg_aggr_kind kind, vg_arena_t *a, vg_block_series **out,
                         size_t *n, vg_error *err)
{
    dsref *r = NULL;
    size_t nr = 0, k = 0;
    *out = NULL;
    *n = 0;
    if (s->n == s->nraw) return VG_OK;
    vg_err_t rc = gather_refs(s, m, nm, mint, maxt, kind, a, &r, &nr, err);
    if (rc) return rc;
    vg_block_series *bs = vg_arena_alloc(a, (nr ? nr : 1) * sizeof(*bs));
    if (!bs) return vg_error_set(err, VG_ENOMEM, "out of memory");
    mat x = {s, mint, maxt, kind, {{0}}, {0}};
    for (size_t i = 0; i < nr && !rc;) {
        size_t j = i;
        while (j < nr && vg_labels_cmp(r[i].base, r[i].nbase, r[j].base, r[j].nbase) == 0) j++;
        rc = one_series(&x, r + i, j - i, a, &bs[k]);
        if (!rc && bs[k].nchunks) k++;
        i = j;
    }
    vg_ds_clear(&x.tmp[0]);
    vg_ds_clear(&x.tmp[1]);
    vg_ds_clear(&x.acc);
    if (rc) return vg_error_set(err, rc, "reading downsampled blocks: %s", vg_strerror(rc));
    *out = bs;
    *n = k;
    return VG_OK;
}
