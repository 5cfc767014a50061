/*
 * downsample.c - window aggregates and the pass that writes 5m/1h blocks.
 *
 * The aggregate functions are pure (arrays in, arrays out) so the unit tests
 * can check windows, edges and counter resets without a store. The pass
 * reads one source block at a time through its map, aggregates each series,
 * and writes the output through the ordinary block writer; the output series
 * carry an extra label, which changes their sort order (all "count" series
 * sort before all "counter" series...), so a block's outputs are collected
 * and sorted before they are written. See downsample.h for the format.
 */
#include "tsdb/downsample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/blocks_int.h"
#include "tsdb/chunk.h"
#include "tsdb/tiers.h"
#include "vigil/alloc.h"
#include "vigil/expfmt.h"
#include "vigil/log.h"

#define LOGC "tsdb.downsample"

static const char *const kind_names[VG_AGGR_NKINDS] = {"count", "sum", "min", "max", "counter"};

const char *vg_aggr_name(vg_aggr_kind k)
{
    return k < VG_AGGR_NKINDS ? kind_names[k] : NULL;
}

int vg_aggr_parse(const char *v)
{
    for (int i = 0; v && i < VG_AGGR_NKINDS; i++)
        if (strcmp(v, kind_names[i]) == 0) return i;
    return -1;
}

vg_err_t vg_ds_push(vg_ds_samples *s, int64_t t, double v)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        int64_t *nt = vg_realloc(s->ts, nc * sizeof(*nt));
        if (!nt) return VG_ENOMEM;
        s->ts = nt;
        double *nv = vg_realloc(s->v, nc * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        s->v = nv;
        s->cap = nc;
    }
    s->ts[s->n] = t;
    s->v[s->n++] = v;
    return VG_OK;
}

void vg_ds_clear(vg_ds_samples *s)
{
    vg_free(s->ts);
    vg_free(s->v);
    memset(s, 0, sizeof(*s));
}

static int64_t window_of(int64_t t, int64_t res)
{
    return t - ((t % res) + res) % res;
}

/* ---- aggregates ---- */

vg_err_t vg_counter_stitch(const int64_t *ts, const double *v, size_t n, vg_ds_samples *out,
                           double *raw_last)
{
    double total = 0, cmp = 0;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i > 0 && ts[i] == ts[i - 1]) { /* marker: the raw value at that time */
            cmp = v[i];
            continue;
        }
        total += v[i] >= cmp ? v[i] - cmp : v[i];
        cmp = v[i];
        rc = vg_ds_push(out, ts[i], total);
    }
    if (raw_last) *raw_last = cmp;
    return rc;
}

/* First sample, each window's last, then the marker holding raw_last. */
static vg_err_t counter_windows(const vg_ds_samples *adj, double raw_last, int64_t res,
                                vg_ds_samples *out)
{
    size_t n = adj->n;
    if (n == 0) return VG_OK;
    vg_err_t rc = vg_ds_push(out, adj->ts[0], adj->v[0]);
    for (size_t i = 0; i < n && !rc; i++) {
        int last = i + 1 == n || window_of(adj->ts[i + 1], res) != window_of(adj->ts[i], res);
        if (last && i > 0) rc = vg_ds_push(out, adj->ts[i], adj->v[i]);
    }
    if (!rc) rc = vg_ds_push(out, adj->ts[n - 1], raw_last);
    return rc;
}

typedef struct win {
    int64_t w, last;
    double count, sum, min, max;
    int open;
} win;

static vg_err_t win_flush(win *x, vg_ds_samples *out)
{
    if (!x->open) return VG_OK;
    x->open = 0;
    vg_err_t rc = vg_ds_push(&out[VG_AGGR_COUNT], x->last, x->count);
    if (!rc) rc = vg_ds_push(&out[VG_AGGR_SUM], x->last, x->sum);
    if (!rc) rc = vg_ds_push(&out[VG_AGGR_MIN], x->last, x->min);
    if (!rc) rc = vg_ds_push(&out[VG_AGGR_MAX], x->last, x->max);
    return rc;
}

/* Add (count, sum, min, max) at time t to the open window, flushing first
 * when t is in a later one. */
static vg_err_t win_add(win *x, int64_t t, int64_t res, double c, double s, double lo, double hi,
                        vg_ds_samples *out)
{
    int64_t w = window_of(t, res);
    if (x->open && w != x->w) {
        vg_err_t rc = win_flush(x, out);
        if (rc) return rc;
    }
    if (!x->open) *x = (win){w, t, 0, 0, lo, hi, 1};
    x->last = t;
    x->count += c;
    x->sum += s;
    if (lo < x->min || isnan(x->min)) x->min = lo;
    if (hi > x->max || isnan(x->max)) x->max = hi;
    return VG_OK;
}

vg_err_t vg_downsample_raw(const int64_t *ts, const double *v, size_t n, int64_t res,
                           vg_ds_samples *out)
{
    vg_ds_samples raw = {0}, adj = {0};
    win x = {0};
    double raw_last = 0;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (vg_is_stale_nan(v[i])) continue;
        rc = win_add(&x, ts[i], res, 1, v[i], v[i], v[i], out);
        if (!rc) rc = vg_ds_push(&raw, ts[i], v[i]);
    }
    if (!rc) rc = win_flush(&x, out);
    if (!rc) rc = vg_counter_stitch(raw.ts, raw.v, raw.n, &adj, &raw_last);
    if (!rc) rc = counter_windows(&adj, raw_last, res, &out[VG_AGGR_COUNTER]);
    vg_ds_clear(&raw);
    vg_ds_clear(&adj);
    return rc;
}

vg_err_t vg_downsample_aggr(const vg_ds_samples *in, int64_t res, vg_ds_samples *out)
{
    const vg_ds_samples *c = &in[VG_AGGR_COUNT];
    vg_ds_samples adj = {0};
    win x = {0};
    double raw_last = 0;
    vg_err_t rc = VG_OK;
    /* the four gauges share timestamps; walk count and look the rest up by index */
    for (size_t i = 0; i < c->n && !rc; i++) {
        int ok = in[VG_AGGR_SUM].n > i && in[VG_AGGR_MIN].n > i && in[VG_AGGR_MAX].n > i;
        if (!ok) break;
        rc = win_add(&x, c->ts[i], res, c->v[i], in[VG_AGGR_SUM].v[i], in[VG_AGGR_MIN].v[i],
                     in[VG_AGGR_MAX].v[i], out);
    }
    if (!rc) rc = win_flush(&x, out);
    const vg_ds_samples *k = &in[VG_AGGR_COUNTER];
    if (!rc) rc = vg_counter_stitch(k->ts, k->v, k->n, &adj, &raw_last);
    if (!rc) rc = counter_windows(&adj, raw_last, res, &out[VG_AGGR_COUNTER]);
    vg_ds_clear(&adj);
    return rc;
}

/* ---- the pass ---- */

typedef struct outser {
    vg_label_t *l;
    size_t nl;
    vg_ds_samples s;
} outser;

typedef struct outset {
    outser *v;
    size_t n, cap;
    vg_arena_t *a;
} outset;

vg_err_t vg_ds_decode(const vg_block_series *s, int64_t mint, int64_t maxt, int keep_dups,
                      vg_ds_samples *out)
{
    out->n = 0;
    for (size_t c = 0; c < s->nchunks; c++) {
        vg_chunk_iter it;
        int64_t t;
        double x;
        vg_chunk_iter_init(&it, s->chunks[c].data, s->chunks[c].len);
        while (vg_chunk_iter_next(&it, &t, &x)) {
            if (t < mint || t >= maxt) continue;
            if (out->n && (t < out->ts[out->n - 1] || (!keep_dups && t == out->ts[out->n - 1])))
                continue;
            if (vg_ds_push(out, t, x)) return VG_ENOMEM;
        }
        if (vg_chunk_iter_err(&it)) return VG_ECORRUPT;
    }
    return VG_OK;
}

vg_label_t *vg_ds_base_labels(const vg_label_t *l, size_t n, vg_arena_t *a, size_t *nb, int *kind)
{
    vg_label_t *b = vg_arena_alloc(a, (n ? n : 1) * sizeof(*b));
    *nb = 0;
    *kind = -1;
    for (size_t i = 0; b && i < n; i++) {
        if (strcmp(l[i].name, VG_AGGR_LABEL) == 0)
            *kind = vg_aggr_parse(l[i].value);
        else
            b[(*nb)++] = l[i];
    }
    return b;
}

/* Add the five outputs of one base series to os (labels + the aggr label). */
static vg_err_t outset_add(outset *os, const vg_label_t *l, size_t n, vg_ds_samples *res)
{
    for (int k = 0; k < VG_AGGR_NKINDS; k++) {
        if (res[k].n == 0) continue;
        if (os->n == os->cap) {
            size_t nc = os->cap ? os->cap * 2 : 64;
            outser *nv = vg_realloc(os->v, nc * sizeof(*nv));
            if (!nv) return VG_ENOMEM;
            os->v = nv;
            os->cap = nc;
        }
        vg_label_t *ol = vg_arena_alloc(os->a, (n + 1) * sizeof(*ol));
        if (!ol) return VG_ENOMEM;
        memcpy(ol, l, n * sizeof(*ol));
        ol[n] = (vg_label_t){VG_AGGR_LABEL, kind_names[k]};
        vg_labels_sort(ol, n + 1);
        os->v[os->n++] = (outser){ol, n + 1, res[k]};
        memset(&res[k], 0, sizeof(res[k]));
    }
    return VG_OK;
}

static int outser_cmp(const void *a, const void *b)
{
    const outser *x = a, *y = b;
    return vg_labels_cmp(x->l, x->nl, y->l, y->nl);
}

static void outset_clear(outset *os)
{
    for (size_t i = 0; i < os->n; i++) vg_ds_clear(&os->v[i].s);
    vg_free(os->v);
}

/* Raw series -> 5m outputs. */
static vg_err_t from_raw(const vg_block_series *s, size_t ns, int64_t mint, int64_t maxt,
                         int64_t res, outset *os)
{
    vg_ds_samples in = {0}, out[VG_AGGR_NKINDS] = {{0}};
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < ns && !rc; i++) {
        rc = vg_ds_decode(&s[i], mint, maxt, 0, &in);
        if (!rc) rc = vg_downsample_raw(in.ts, in.v, in.n, res, out);
        if (!rc) rc = outset_add(os, s[i].labels, s[i].nlabels, out);
    }
    for (int k = 0; k < VG_AGGR_NKINDS; k++) vg_ds_clear(&out[k]);
    vg_ds_clear(&in);
    return rc;
}

typedef struct aggref {
    const vg_label_t *base;
    size_t nbase;
    int kind;
    const vg_block_series *s;
} aggref;

static int aggref_cmp(const void *a, const void *b)
{
    const aggref *x = a, *y = b;
    int c = vg_labels_cmp(x->base, x->nbase, y->base, y->nbase);
    return c ? c : x->kind - y->kind;
}

static int same_base(const aggref *x, const aggref *y)
{
    return vg_labels_cmp(x->base, x->nbase, y->base, y->nbase) == 0;
}

/* Aggregate series (grouped by base labels) -> coarser outputs. */
static vg_err_t from_aggr(const vg_block_series *s, size_t ns, int64_t mint, int64_t maxt,
                          int64_t res, outset *os)
{
    aggref *r = vg_arena_alloc(os->a, (ns ? ns : 1) * sizeof(*r));
    size_t nr = 0;
    if (!r) return VG_ENOMEM;
    for (size_t i = 0; i < ns; i++) {
        r[nr].base = vg_ds_base_labels(s[i].labels, s[i].nlabels, os->a, &r[nr].nbase, &r[nr].kind);
        if (!r[nr].base) return VG_ENOMEM;
        r[nr].s = &s[i];
        if (r[nr].kind >= 0) nr++;
    }
    qsort(r, nr, sizeof(*r), aggref_cmp);
    vg_ds_samples in[VG_AGGR_NKINDS] = {{0}}, out[VG_AGGR_NKINDS] = {{0}};
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < nr && !rc;) {
        size_t j = i;
        for (int k = 0; k < VG_AGGR_NKINDS; k++) in[k].n = 0;
        for (; j < nr && same_base(&r[i], &r[j]) && !rc; j++)
            rc = vg_ds_decode(r[j].s, mint, maxt, r[j].kind == VG_AGGR_COUNTER, &in[r[j].kind]);
        if (!rc) rc = vg_downsample_aggr(in, res, out);
        if (!rc) rc = outset_add(os, r[i].base, r[i].nbase, out);
        i = j;
    }
    for (int k = 0; k < VG_AGGR_NKINDS; k++) {
        vg_ds_clear(&in[k]);
        vg_ds_clear(&out[k]);
    }
    return rc;
}

static vg_err_t write_outset(vg_block_writer_t *w, outset *os, vg_error *err)
{
    qsort(os->v, os->n, sizeof(*os->v), outser_cmp);
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < os->n && !rc; i++)
        rc = vg_block_writer_add_samples(w, os->v[i].l, os->v[i].nl, os->v[i].s.ts, os->v[i].s.v,
                                         os->v[i].s.n, err);
    return rc;
}

/* Downsample [mint, maxt) of block b into a block of resolution res. */
static vg_err_t write_ds(vg_tsdb_blocks_t *bs, const char *tenant, vg_block_t *b, int64_t mint,
                         int64_t maxt, int64_t res, char *ulid, vg_error *err)
{
    char dir[4096];
    vg_block_series *s = NULL;
    size_t ns = 0;
    outset os = {0};
    vg_block_writer_t *w = NULL;
    const vg_block_meta *m = vg_block_get_meta(b);
    const char *src = m->ulid;
    vg_tsdb_blocks_dir(bs, tenant, dir, sizeof(dir));
    os.a = vg_arena_new(0);
    vg_err_t rc = os.a ? vg_block_select(b, NULL, 0, mint, maxt - 1, os.a, &s, &ns, err)
                       : vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc) {
        rc = m->resolution_ms == 0 ? from_raw(s, ns, mint, maxt, res, &os)
                                   : from_aggr(s, ns, mint, maxt, res, &os);
        if (rc) vg_error_set(err, rc, "downsampling block %s: %s", src, vg_strerror(rc));
    }
    if (!rc) rc = vg_block_writer_new(dir, mint, maxt, res, &w, err);
    if (!rc && vg_block_writer_set_sources(w, 1, &src, 1))
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc) rc = write_outset(w, &os, err);
    if (!rc) rc = vg_block_writer_commit(w, ulid, err);
    vg_block_writer_free(w);
    outset_clear(&os);
    vg_arena_free(os.a);
    return rc;
}

/* Referenced blocks of resolution res of tenant ti and the newest maxt of
 * resolution to (the watermark). mu held. */
static size_t pick(tblocks *t, int64_t res, int64_t to, vg_block_t **out, int64_t *wm)
{
    size_t k = 0;
    *wm = INT64_MIN;
    for (size_t i = 0; i < t->n; i++) {
        const vg_block_meta *m = vg_block_get_meta(t->b[i]);
        if (m->resolution_ms == to && m->maxt > *wm) *wm = m->maxt;
        if (m->resolution_ms != res) continue;
        vg_block_ref(t->b[i]);
        out[k++] = t->b[i];
    }
    return k;
}

/* Downsample tenant ti's blocks of resolution from (maxt <= cutoff) to res. */
static vg_err_t tier_step(vg_tsdb_blocks_t *bs, size_t ti, int64_t from, int64_t res,
                          int64_t cutoff, size_t *nout, vg_error *err)
{
    char tenant[VG_TENANT_MAX + 1];
    int64_t wm;
    pthread_mutex_lock(&bs->mu);
    tblocks *t = &bs->t[ti];
    memcpy(tenant, t->name, sizeof(tenant));
    vg_block_t **b = vg_malloc((t->n ? t->n : 1) * sizeof(*b));
    size_t n = b ? pick(t, from, res, b, &wm) : 0;
    pthread_mutex_unlock(&bs->mu);
    if (!b) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const vg_block_meta *m = vg_block_get_meta(b[i]);
        int64_t start = m->mint > wm ? m->mint : wm;
        if (m->maxt > cutoff || start >= m->maxt) continue;
        char ulid[VG_ULID_LEN + 1];
        rc = write_ds(bs, tenant, b[i], start, m->maxt, res, ulid, err);
        if (rc == VG_EAGAIN)
            rc = VG_OK; /* nothing in range */
        else if (!rc && !(rc = vg_tsdb_blocks_add(bs, tenant, ulid, err))) {
            vg_log_info(LOGC, "downsampled block", "tenant=%s from=%s block=%s res=%lld", tenant,
                        m->ulid, ulid, (long long)res);
            (*nout)++;
        }
        if (!rc) wm = m->maxt;
    }
    vg_tsdb_blocks_release(b, n);
    return rc;
}

vg_err_t vg_downsample_pass(vg_tsdb_blocks_t *bs, int64_t now_ms, int64_t after_5m,
                            int64_t after_1h, size_t *nout, vg_error *err)
{
    size_t dummy = 0;
    if (!nout) nout = &dummy;
    *nout = 0;
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&bs->pass_mu);
    pthread_mutex_lock(&bs->mu);
    size_t nt = bs->nt; /* tenants are only added */
    pthread_mutex_unlock(&bs->mu);
    for (size_t ti = 0; ti < nt && !rc; ti++) {
        int64_t now = vg_tiers_tenant_now(bs, ti, now_ms);
        if (now == INT64_MIN) continue;
        rc = tier_step(bs, ti, 0, VG_RES_5M, now - after_5m, nout, err);
        if (!rc) rc = tier_step(bs, ti, VG_RES_5M, VG_RES_1H, now - after_1h, nout, err);
    }
    pthread_mutex_unlock(&bs->pass_mu);
    return rc;
}
