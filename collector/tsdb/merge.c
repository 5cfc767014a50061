/*
 * merge.c - series grouping and the k-way sample merge (see merge.h).
 */
#include "tsdb/merge.h"

#include <string.h>

static int cmp_series(const vg_block_series *a, const vg_block_series *b)
{
    return vg_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

/* The smallest head among the k sorted sources, or NULL when all are done. */
static const vg_block_series *min_head(vg_block_series *const *src, const size_t *nsrc,
                                       const size_t *pos, size_t k)
{
    const vg_block_series *min = NULL;
    for (size_t i = 0; i < k; i++)
        if (pos[i] < nsrc[i] && (!min || cmp_series(&src[i][pos[i]], min) < 0))
            min = &src[i][pos[i]];
    return min;
}

vg_err_t vg_merge_group(vg_block_series *const *src, const size_t *nsrc, size_t k, vg_arena_t *a,
                        vg_mseries **out, size_t *n)
{
    size_t total = 0, g = 0, r = 0;
    for (size_t i = 0; i < k; i++) total += nsrc[i];
    vg_mseries *m = vg_arena_alloc(a, (total ? total : 1) * sizeof(*m));
    vg_mrun *runs = vg_arena_alloc(a, (total ? total : 1) * sizeof(*runs));
    size_t *pos = vg_arena_calloc(a, (k ? k : 1) * sizeof(*pos));
    if (!m || !runs || !pos) return VG_ENOMEM;
    const vg_block_series *min;
    while ((min = min_head(src, nsrc, pos, k))) {
        m[g] = (vg_mseries){min->labels, min->nlabels, &runs[r], 0};
        for (size_t i = 0; i < k; i++) {
            if (pos[i] >= nsrc[i] || cmp_series(&src[i][pos[i]], min) != 0) continue;
            runs[r++] = (vg_mrun){src[i][pos[i]].chunks, src[i][pos[i]].nchunks};
            m[g].nruns++;
            pos[i]++;
        }
        g++;
    }
    *out = m;
    *n = g;
    return VG_OK;
}

/* Load the next sample of one run into c->ts/v; c->has = 0 at its end. */
static void cur_advance(vg_mcur *c, vg_err_t *err)
{
    for (;;) {
        if (!c->live) {
            if (c->next >= c->run->n) {
                c->has = 0;
                return;
            }
            const vg_block_chunk *ch = &c->run->c[c->next++];
            vg_chunk_iter_init(&c->it, ch->data, ch->len);
            c->live = 1;
        }
        if (vg_chunk_iter_next(&c->it, &c->ts, &c->v)) {
            c->has = 1;
            return;
        }
        if (vg_chunk_iter_err(&c->it)) *err = vg_chunk_iter_err(&c->it);
        c->live = 0;
    }
}

void vg_merge_iter_init(vg_merge_iter *it, vg_mcur *cur, const vg_mseries *s)
{
    memset(it, 0, sizeof(*it));
    it->cur = cur;
    it->n = s->nruns;
    for (size_t i = 0; i < s->nruns; i++) {
        memset(&cur[i], 0, sizeof(cur[i]));
        cur[i].run = &s->runs[i];
        cur_advance(&cur[i], &it->err);
    }
}

int vg_merge_iter_next(vg_merge_iter *it, int64_t *ts, double *v)
{
    for (;;) {
        vg_mcur *best = NULL;
        for (size_t i = 0; i < it->n; i++)
            if (it->cur[i].has && (!best || it->cur[i].ts < best->ts)) best = &it->cur[i];
        if (!best) return 0;
        *ts = best->ts;
        *v = best->v;
        cur_advance(best, &it->err);
        if (it->started && *ts <= it->last) continue; /* duplicate (or a run out of order) */
        it->started = 1;
        it->last = *ts;
        return 1;
    }
}

/* Copy the samples of ts/v[0..k) that are newer than the last one emitted
 * down to the front; how many were kept. */
static size_t keep_newer(vg_merge_iter *it, int64_t *ts, double *v, size_t k)
{
    /* The usual batch is strictly increasing and newer than the last
     * sample: all kept, nothing to move. */
    if (k && (!it->started || ts[0] > it->last)) {
        size_t q = 1;
        while (q < k && ts[q] > ts[q - 1]) q++;
        if (q == k) {
            it->started = 1;
            it->last = ts[k - 1];
            return k;
        }
    }
    size_t w = 0;
    for (size_t q = 0; q < k; q++) {
        if (it->started && ts[q] <= it->last) continue;
        ts[w] = ts[q];
        v[w++] = v[q];
        it->started = 1;
        it->last = ts[q];
    }
    return w;
}

/* The rest of best's open chunk, decoded in one batch, when all of it sorts
 * before limit (the next sample of any other run; strictly, as on a tie the
 * older run wins): always for the only run left, and for a chunk whose
 * recorded end is before limit (block chunks; head chunks record none).
 * Overlapping runs fall back to one sample at a time. */
static size_t drain_chunk(vg_merge_iter *it, vg_mcur *best, int64_t limit, int64_t *ts, double *v,
                          size_t max)
{
    if (!best->live || max == 0) return 0;
    if (limit != INT64_MAX && best->run->c[best->next - 1].maxt >= limit) return 0;
    return keep_newer(it, ts, v, vg_chunk_iter_read(&best->it, ts, v, max));
}

size_t vg_merge_iter_read(vg_merge_iter *it, int64_t *ts, double *v, size_t max)
{
    size_t n = 0;
    while (n < max) {
        vg_mcur *best = NULL;
        int64_t limit = INT64_MAX;
        for (size_t i = 0; i < it->n; i++) {
            vg_mcur *c = &it->cur[i];
            if (!c->has) continue;
            if (!best || c->ts < best->ts) {
                if (best && best->ts < limit) limit = best->ts;
                best = c;
            } else if (c->ts < limit) {
                limit = c->ts;
            }
        }
        if (!best) break;
        ts[n] = best->ts;
        v[n] = best->v;
        n += keep_newer(it, ts + n, v + n, 1);
        n += drain_chunk(it, best, limit, ts + n, v + n, max - n);
        cur_advance(best, &it->err);
    }
    return n;
}
