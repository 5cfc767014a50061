/*
 * merge.c - series grouping and the k-way sample merge (see merge.h).
 */
#include "tsdb/merge.h"

#include <stdlib.h>
#include <string.h>

typedef struct ref {
    const vg_block_series *s;
    size_t src;
} ref;

static int ref_cmp(const void *a, const void *b)
{
    const ref *x = a, *y = b;
    int c = vg_labels_cmp(x->s->labels, x->s->nlabels, y->s->labels, y->s->nlabels);
    if (c) return c;
    return x->src < y->src ? -1 : x->src > y->src;
}

vg_err_t vg_merge_group(vg_block_series *const *src, const size_t *nsrc, size_t k, vg_arena_t *a,
                        vg_mseries **out, size_t *n)
{
    size_t total = 0, g = 0;
    for (size_t i = 0; i < k; i++) total += nsrc[i];
    ref *r = vg_arena_alloc(a, (total ? total : 1) * sizeof(*r));
    vg_mseries *m = vg_arena_alloc(a, (total ? total : 1) * sizeof(*m));
    vg_mrun *runs = vg_arena_alloc(a, (total ? total : 1) * sizeof(*runs));
    if (!r || !m || !runs) return VG_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t s = 0; s < nsrc[i]; s++) r[j++] = (ref){&src[i][s], i};
    if (k > 1) qsort(r, total, sizeof(*r), ref_cmp);
    for (size_t i = 0; i < total; i++) {
        const vg_block_series *s = r[i].s;
        if (g == 0 || vg_labels_cmp(m[g - 1].labels, m[g - 1].nlabels, s->labels, s->nlabels)) {
            m[g++] = (vg_mseries){s->labels, s->nlabels, &runs[i], 0};
        }
        runs[i] = (vg_mrun){s->chunks, s->nchunks};
        m[g - 1].nruns++;
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
