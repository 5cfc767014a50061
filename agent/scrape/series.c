/*
 * series.c - per-target series cache: staging and staleness.
 *
 * Two generations of (labels, hash) per target: the last good scrape and
 * the one being parsed. A scrape is staged completely before anything is
 * emitted, because Prometheus semantics are all-or-nothing (a body that
 * breaks sample_limit on its last line drops every sample), and the emit
 * callback cannot be rolled back. The staged generation is then exactly
 * the "series seen in this scrape" set that staleness needs, so the two
 * jobs share one structure. Each generation owns an arena holding copies
 * of its label sets; swapping generations is a pointer flip, and the older
 * arena is reset (not freed) for the next scrape. Lookups are by XXH3 series
 * id (vg_labels_hash) in an open-addressing table, confirmed with a full
 * label comparison so a hash collision can never merge two series.
 */
#include <string.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

static vg_err_t gen_init(vg_scrape_gen *g)
{
    memset(g, 0, sizeof *g);
    g->arena = vg_arena_new(64 * 1024);
    return g->arena ? VG_OK : VG_ENOMEM;
}

static void gen_destroy(vg_scrape_gen *g)
{
    vg_arena_free(g->arena);
    vg_free(g->items);
    vg_free(g->slots);
    memset(g, 0, sizeof *g);
}

static void gen_reset(vg_scrape_gen *g)
{
    if (g->arena) vg_arena_reset(g->arena);
    g->n = 0;
    if (g->slots) memset(g->slots, 0, g->nslots * sizeof *g->slots);
}

vg_err_t vg_scrape_cache_init(vg_scrape_cache *c)
{
    memset(c, 0, sizeof *c);
    if (gen_init(&c->gen[0]) || gen_init(&c->gen[1])) {
        vg_scrape_cache_destroy(c);
        return VG_ENOMEM;
    }
    return VG_OK;
}

void vg_scrape_cache_destroy(vg_scrape_cache *c)
{
    if (!c) return;
    gen_destroy(&c->gen[0]);
    gen_destroy(&c->gen[1]);
}

/* Index of the item equal to l in g, or -1. */
static long gen_find(const vg_scrape_gen *g, const vg_label_t *l, size_t n, uint64_t h)
{
    if (!g->nslots) return -1;
    size_t mask = g->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t s = g->slots[i];
        if (!s) return -1;
        const vg_scrape_item *it = &g->items[s - 1];
        if (it->hash == h && vg_labels_cmp(it->labels, it->n, l, n) == 0) return (long)(s - 1);
    }
}

static void slot_put(vg_scrape_gen *g, size_t idx)
{
    size_t mask = g->nslots - 1, i = (size_t)g->items[idx].hash & mask;
    while (g->slots[i]) i = (i + 1) & mask;
    g->slots[i] = (uint32_t)(idx + 1);
}

/* Keep the table at most half full and the item array roomy. */
static vg_err_t gen_grow(vg_scrape_gen *g)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        vg_scrape_item *it = vg_realloc(g->items, cap * sizeof *it);
        if (!it) return VG_ENOMEM;
        g->items = it;
        g->cap = cap;
    }
    if (2 * (g->n + 1) <= g->nslots) return VG_OK;
    if (g->n >= UINT32_MAX / 4) return VG_ETOOLARGE;
    size_t ns = g->nslots ? g->nslots * 2 : 512;
    uint32_t *s = vg_calloc(ns, sizeof *s);
    if (!s) return VG_ENOMEM;
    vg_free(g->slots);
    g->slots = s;
    g->nslots = ns;
    for (size_t i = 0; i < g->n; i++) slot_put(g, i);
    return VG_OK;
}

/* Deep copy of a label set into the arena. */
static vg_label_t *copy_labels(vg_arena_t *a, const vg_label_t *l, size_t n)
{
    vg_label_t *d = vg_arena_alloc(a, (n ? n : 1) * sizeof *d);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        d[i].name = vg_arena_strdup(a, l[i].name);
        d[i].value = vg_arena_strdup(a, l[i].value);
        if (!d[i].name || !d[i].value) return NULL;
    }
    return d;
}

void vg_scrape_cache_begin(vg_scrape_cache *c)
{
    gen_reset(&c->gen[c->cur]);
}

vg_err_t vg_scrape_cache_add(vg_scrape_cache *c, const vg_label_t *l, size_t n, int64_t ts_ms,
                             double v, int track, int *dup, int *added)
{
    vg_scrape_gen *g = &c->gen[c->cur];
    uint64_t h = vg_labels_hash(l, n);
    *dup = gen_find(g, l, n, h) >= 0;
    *added = 0;
    if (*dup) return VG_OK;
    vg_err_t rc = gen_grow(g);
    if (rc) return rc;
    vg_label_t *copy = copy_labels(g->arena, l, n);
    if (!copy) return VG_ENOMEM;
    g->items[g->n] = (vg_scrape_item){copy, n, h, ts_ms, v, track};
    slot_put(g, g->n);
    g->n++;
    *added = gen_find(&c->gen[!c->cur], l, n, h) < 0;
    return VG_OK;
}

const vg_scrape_item *vg_scrape_cache_staged(const vg_scrape_cache *c, size_t *n)
{
    *n = c->gen[c->cur].n;
    return c->gen[c->cur].items;
}

void vg_scrape_cache_commit(vg_scrape_cache *c, vg_scrape_stale_fn stale, void *ud)
{
    const vg_scrape_gen *prev = &c->gen[!c->cur], *cur = &c->gen[c->cur];
    for (size_t i = 0; i < prev->n; i++) {
        const vg_scrape_item *it = &prev->items[i];
        if (it->track && gen_find(cur, it->labels, it->n, it->hash) < 0) stale(ud, it);
    }
    c->cur = !c->cur; /* the staged generation becomes the last good one */
}

void vg_scrape_cache_abort(vg_scrape_cache *c, vg_scrape_stale_fn stale, void *ud)
{
    const vg_scrape_gen *prev = &c->gen[!c->cur];
    for (size_t i = 0; i < prev->n; i++)
        if (prev->items[i].track) stale(ud, &prev->items[i]);
    gen_reset(&c->gen[0]);
    gen_reset(&c->gen[1]);
}
