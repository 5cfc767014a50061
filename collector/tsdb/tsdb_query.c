/*
 * tsdb_query.c - the snapshot querier and label name/value look-ups.
 *
 * A select gathers one source per block overlapping the range (oldest
 * first; labels and chunk bytes point into the block's map, which the set
 * keeps referenced) plus the head, whose chunks are copied under its locks
 * (see head.h). Series with the same labels are grouped and their samples
 * merged in time order with duplicate timestamps dropped (merge.h), so
 * iterating never holds a lock and is safe against concurrent appends,
 * cuts and compactions. A slice of a set shares its series and has its own
 * decode state, so a query can read a selection on several threads.
 */
#include "tsdb/tsdb_int.h"

#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/head.h"
#include "tsdb/merge.h"
#include "tsdb/tiers.h"
#include "tsdb/tsdb_blocks.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/expfmt.h"

/* ---- querier ---- */

struct vg_seriesset {
    vg_arena_t *arena;
    vg_mseries *s;
    size_t n, cur; /* cur = index + 1 of the current series; 0 before the first */
    vg_mcur *curs; /* merge scratch: one per source */
    size_t ncurs;
    int slice; /* vg_seriesset_slice: curs is its own, the rest is borrowed */
    vg_merge_iter it;
    int done;
    vg_block_t **blocks; /* referenced while the set lives */
    size_t nblocks;
    int64_t mint, maxt;
    vg_err_t err;
    vg_aggr_kind kind; /* what downsampled data was read as (tiers.h) */
    int64_t raw_start; /* raw samples from here on */
};

/* The head's snapshot as one more source (chunk ranges unknown: unused). */
static vg_err_t head_source(vg_head_t *h, vg_matcher_t *const *m, size_t nm, int64_t mint,
                            int64_t maxt, vg_arena_t *a, vg_block_series **out, size_t *n)
{
    vg_snap_series *s = NULL;
    vg_err_t rc = vg_head_snapshot(h, m, nm, mint, maxt, a, &s, n);
    if (rc) return rc;
    vg_block_series *bs = vg_arena_alloc(a, (*n ? *n : 1) * sizeof(*bs));
    if (!bs) return VG_ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        vg_block_chunk *c = vg_arena_alloc(a, (s[i].nchunks ? s[i].nchunks : 1) * sizeof(*c));
        if (!c) return VG_ENOMEM;
        for (size_t j = 0; j < s[i].nchunks; j++)
            c[j] = (vg_block_chunk){INT64_MIN, INT64_MAX, s[i].chunks[j].data, s[i].chunks[j].len};
        bs[i] = (vg_block_series){s[i].labels, s[i].nlabels, c, s[i].nchunks};
    }
    *out = bs;
    return VG_OK;
}

/* Gather every source (downsampled data, raw blocks oldest first, then the
 * head: tiers.h) and group. */
static vg_err_t select_sources(vg_tsdb_t *db, vg_seriesset_t *ss, const char *tenant,
                               vg_matcher_t *const *m, size_t nm, const vg_tier_sel *ts,
                               vg_aggr_kind kind, vg_error *err)
{
    size_t k = ts->nraw + 2;
    vg_block_series **src = vg_arena_calloc(ss->arena, k * sizeof(*src));
    size_t *nsrc = vg_arena_calloc(ss->arena, k * sizeof(*nsrc));
    ss->curs = vg_arena_alloc(ss->arena, k * sizeof(*ss->curs));
    ss->ncurs = k;
    if (!src || !nsrc || !ss->curs) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc =
        vg_tiers_source(ts, m, nm, ss->mint, ss->maxt, kind, ss->arena, &src[0], &nsrc[0], err);
    for (size_t i = 0; i < ts->nraw && !rc; i++)
        rc = vg_block_select(ts->b[i], m, nm, ss->mint, ss->maxt, ss->arena, &src[i + 1],
                             &nsrc[i + 1], err);
    if (rc) return rc;
    vg_head_t *h = vg_tsdb_tenant_find(db, tenant);
    if (h) rc = head_source(h, m, nm, ss->mint, ss->maxt, ss->arena, &src[k - 1], &nsrc[k - 1]);
    if (!rc) rc = vg_merge_group(src, nsrc, k, ss->arena, &ss->s, &ss->n);
    return rc ? vg_error_set(err, rc, "selecting series: %s", vg_strerror(rc)) : VG_OK;
}

vg_err_t vg_tsdb_select(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                        int64_t mint, int64_t maxt, vg_seriesset_t **out, vg_error *err)
{
    return vg_tsdb_select_aggr(db, tenant, m, nm, mint, maxt, VG_AGGR_AVG, out, err);
}

vg_err_t vg_tsdb_select_aggr(vg_tsdb_t *db, const char *tenant, vg_matcher_t *const *m, size_t nm,
                             int64_t mint, int64_t maxt, vg_aggr_kind kind, vg_seriesset_t **out,
                             vg_error *err)
{
    vg_err_t rc = VG_OK;
    vg_tier_sel ts = {0};
    *out = NULL;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    vg_seriesset_t *ss = vg_calloc(1, sizeof(*ss));
    if (!ss || !(ss->arena = vg_arena_new(0))) {
        vg_seriesset_free(ss);
        return vg_error_set(err, VG_ENOMEM, "selecting series: out of memory");
    }
    ss->mint = mint;
    ss->maxt = maxt;
    rc = vg_tiers_acquire(db, tenant, mint, maxt, &ts);
    ss->blocks = ts.b;
    ss->nblocks = ts.n;
    ss->kind = kind;
    ss->raw_start = ts.raw_start;
    if (rc) vg_error_set(err, rc, "selecting series: out of memory");
    if (!rc) rc = select_sources(db, ss, tenant, m, nm, &ts, kind, err);
    if (rc) {
        vg_seriesset_free(ss);
        return rc;
    }
    *out = ss;
    return VG_OK;
}

int vg_seriesset_next(vg_seriesset_t *ss)
{
    if (ss->cur >= ss->n) return 0;
    vg_merge_iter_init(&ss->it, ss->curs, &ss->s[ss->cur++]);
    ss->done = 0;
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
    if (ss->cur == 0 || ss->done) return 0;
    while (vg_merge_iter_next(&ss->it, ts, v)) {
        if (*ts < ss->mint) continue;
        if (*ts > ss->maxt) break;
        if (ss->kind == VG_AGGR_COUNT && *ts >= ss->raw_start && !vg_is_stale_nan(*v))
            *v = 1; /* a raw sample counts once, like a window's count */
        return 1;
    }
    if (ss->it.err) ss->err = ss->it.err;
    ss->done = 1;
    return 0;
}

size_t vg_seriesset_read(vg_seriesset_t *ss, int64_t *ts, double *v, size_t max)
{
    size_t w = 0;
    while (w == 0 && max && ss->cur && !ss->done) {
        size_t k = vg_merge_iter_read(&ss->it, ts, v, max);
        /* The merge's output increases strictly: a batch inside
         * [mint, maxt] end to end is kept as it is. */
        if (k && ss->kind != VG_AGGR_COUNT && ts[0] >= ss->mint && ts[k - 1] <= ss->maxt) {
            w = k;
            break;
        }
        for (size_t q = 0; q < k; q++) {
            if (ts[q] < ss->mint) continue;
            if (ts[q] > ss->maxt) {
                ss->done = 1;
                break;
            }
            ts[w] = ts[q];
            v[w] = v[q];
            if (ss->kind == VG_AGGR_COUNT && ts[w] >= ss->raw_start && !vg_is_stale_nan(v[w]))
                v[w] = 1; /* as in sample_next */
            w++;
        }
        if (k == 0) ss->done = 1;
    }
    if (ss->done && ss->it.err) ss->err = ss->it.err;
    return w;
}

size_t vg_seriesset_len(const vg_seriesset_t *ss)
{
    return ss->n;
}

const vg_label_t *vg_seriesset_labels_at(const vg_seriesset_t *ss, size_t i, size_t *n)
{
    if (i >= ss->n) {
        *n = 0;
        return NULL;
    }
    *n = ss->s[i].nlabels;
    return ss->s[i].labels;
}

vg_err_t vg_seriesset_slice(vg_seriesset_t *ss, size_t from, size_t to, vg_seriesset_t **out)
{
    *out = NULL;
    if (to > ss->n) to = ss->n;
    if (from > to) from = to;
    vg_seriesset_t *sl = vg_calloc(1, sizeof(*sl));
    if (!sl) return VG_ENOMEM;
    sl->curs = vg_calloc(ss->ncurs ? ss->ncurs : 1, sizeof(*sl->curs));
    if (!sl->curs) {
        vg_free(sl);
        return VG_ENOMEM;
    }
    sl->slice = 1;
    sl->ncurs = ss->ncurs;
    sl->s = ss->s + from;
    sl->n = to - from;
    sl->mint = ss->mint;
    sl->maxt = ss->maxt;
    sl->kind = ss->kind;
    sl->raw_start = ss->raw_start;
    *out = sl;
    return VG_OK;
}

vg_err_t vg_seriesset_err(const vg_seriesset_t *ss)
{
    return ss->err;
}

void vg_seriesset_free(vg_seriesset_t *ss)
{
    if (!ss) return;
    if (ss->slice) vg_free(ss->curs);
    vg_tsdb_blocks_release(ss->blocks, ss->nblocks);
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

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Concatenate the sorted lists, sort and drop duplicates, into a. */
static vg_err_t merge_strings(const char ***lists, const size_t *nl, size_t k, vg_arena_t *a,
                              const char ***out, size_t *n)
{
    size_t total = 0, w = 0;
    for (size_t i = 0; i < k; i++) total += nl[i];
    const char **v = vg_arena_alloc(a, (total ? total : 1) * sizeof(*v));
    if (!v) return VG_ENOMEM;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < nl[i]; j++) v[w++] = lists[i][j];
    if (k > 1) qsort(v, total, sizeof(*v), str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < total; i++)
        if (u == 0 || strcmp(v[u - 1], v[i]) != 0) v[u++] = v[i];
    *out = v;
    *n = u;
    return VG_OK;
}

/* Strings from every block overlapping [mint, maxt] and the head. */
static vg_err_t collect_strings(vg_tsdb_t *db, const char *tenant, const char *name,
                                vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                                vg_block_t **b, size_t nb, vg_arena_t *a, const char ***v,
                                size_t *n, vg_error *err)
{
    const char ***lists = vg_arena_calloc(a, (nb + 1) * sizeof(*lists));
    size_t *nl = vg_arena_calloc(a, (nb + 1) * sizeof(*nl));
    if (!lists || !nl) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < nb; i++) {
        vg_err_t rc = vg_block_label_strings(b[i], name, m, nm, a, &lists[i], &nl[i], err);
        if (rc) return rc;
    }
    vg_head_t *h = vg_tsdb_tenant_find(db, tenant);
    vg_err_t rc = VG_OK;
    if (h) rc = vg_head_label_strings(h, name, m, nm, mint, maxt, a, &lists[nb], &nl[nb]);
    if (!rc) rc = merge_strings(lists, nl, nb + 1, a, v, n);
    for (size_t i = 0; !rc && !name && i < *n; i++) /* downsampled blocks' internal label */
        if (strcmp((*v)[i], VG_AGGR_LABEL) == 0)
            memmove(&(*v)[i], &(*v)[i + 1], (--*n - i) * sizeof(**v));
    return rc ? vg_error_set(err, rc, "listing labels: %s", vg_strerror(rc)) : VG_OK;
}

static vg_err_t label_strings(vg_tsdb_t *db, const char *tenant, const char *name,
                              vg_matcher_t *const *m, size_t nm, int64_t mint, int64_t maxt,
                              char ***out, size_t *n, vg_error *err)
{
    const char **v = NULL;
    vg_block_t **b = NULL;
    size_t nb = 0;
    *out = NULL;
    *n = 0;
    if (!vg_tsdb_tenant_valid(tenant))
        return vg_error_set(err, VG_EINVAL, "invalid tenant %.80s", tenant ? tenant : "(null)");
    if (name && strcmp(name, VG_AGGR_LABEL) == 0) name = "\x01"; /* internal: no values */
    vg_arena_t *a = vg_arena_new(0);
    vg_err_t rc = a ? vg_tsdb_blocks_acquire(db->blocks, tenant, mint, maxt, &b, &nb) : VG_ENOMEM;
    if (rc) vg_error_set(err, rc, "listing labels: out of memory");
    if (!rc) rc = collect_strings(db, tenant, name, m, nm, mint, maxt, b, nb, a, &v, n, err);
    if (!rc && pack_strings(v, *n, out)) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_tsdb_blocks_release(b, nb);
    vg_arena_free(a);
    if (rc) *n = 0;
    return rc;
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
