/*
 * postings.c - sorted ref lists, a string hash map, and matcher selection.
 *
 * See postings.h for the shape. Unions over many values (a regex matcher on
 * a high-cardinality label) are done by concatenating, sorting and
 * de-duplicating once instead of merging pairwise, which would be quadratic.
 */
#include "tsdb/postings.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "vigil/alloc.h"

/* ---- postings lists ---- */

void vg_postings_free(vg_postings *p)
{
    if (!p) return;
    vg_free(p->v);
    memset(p, 0, sizeof(*p));
}

static vg_err_t postings_grow(vg_postings *p, size_t need)
{
    if (need <= p->cap) return VG_OK;
    size_t ncap = p->cap ? p->cap * 2 : 4;
    while (ncap < need) ncap *= 2;
    uint32_t *nv = vg_realloc(p->v, ncap * sizeof(*nv));
    if (!nv) return VG_ENOMEM;
    p->v = nv;
    p->cap = ncap;
    return VG_OK;
}

static size_t lower_bound(const uint32_t *v, size_t n, uint32_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

vg_err_t vg_postings_add(vg_postings *p, uint32_t ref)
{
    size_t at = (p->n == 0 || p->v[p->n - 1] < ref) ? p->n : lower_bound(p->v, p->n, ref);
    if (at < p->n && p->v[at] == ref) return VG_OK;
    vg_err_t rc = postings_grow(p, p->n + 1);
    if (rc) return rc;
    memmove(p->v + at + 1, p->v + at, (p->n - at) * sizeof(*p->v));
    p->v[at] = ref;
    p->n++;
    return VG_OK;
}

vg_err_t vg_postings_intersect(const vg_postings *a, const vg_postings *b, vg_postings *out)
{
    size_t i = 0, j = 0;
    vg_err_t rc = postings_grow(out, a->n < b->n ? a->n : b->n);
    if (rc) return rc;
    while (i < a->n && j < b->n) {
        if (a->v[i] < b->v[j])
            i++;
        else if (a->v[i] > b->v[j])
            j++;
        else
            out->v[out->n++] = a->v[i], i++, j++;
    }
    return VG_OK;
}

vg_err_t vg_postings_subtract(const vg_postings *a, const vg_postings *b, vg_postings *out)
{
    size_t j = 0;
    vg_err_t rc = postings_grow(out, a->n);
    if (rc) return rc;
    for (size_t i = 0; i < a->n; i++) {
        while (j < b->n && b->v[j] < a->v[i]) j++;
        if (j < b->n && b->v[j] == a->v[i]) continue;
        out->v[out->n++] = a->v[i];
    }
    return VG_OK;
}

static vg_err_t postings_concat(vg_postings *p, const vg_postings *q)
{
    vg_err_t rc = postings_grow(p, p->n + q->n);
    if (rc) return rc;
    if (q->n) memcpy(p->v + p->n, q->v, q->n * sizeof(*q->v));
    p->n += q->n;
    return VG_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void postings_sort_unique(vg_postings *p)
{
    if (p->n < 2) return;
    qsort(p->v, p->n, sizeof(*p->v), cmp_u32);
    size_t w = 1;
    for (size_t i = 1; i < p->n; i++)
        if (p->v[i] != p->v[w - 1]) p->v[w++] = p->v[i];
    p->n = w;
}

/* ---- string map ---- */

static uint64_t str_hash(const char *s)
{
    return XXH3_64bits(s, strlen(s));
}

static vg_smap_ent *smap_slot(const vg_smap_ent *e, size_t cap, const char *key, uint64_t h)
{
    size_t mask = cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const vg_smap_ent *s = &e[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0)) return (vg_smap_ent *)s;
    }
}

void *vg_smap_get(const vg_smap *m, const char *key)
{
    if (!m || m->n == 0) return NULL;
    vg_smap_ent *s = smap_slot(m->e, m->cap, key, str_hash(key));
    return s->key ? s->val : NULL;
}

static vg_err_t smap_grow(vg_smap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    vg_smap_ent *ne = vg_calloc(ncap, sizeof(*ne));
    if (!ne) return VG_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key) *smap_slot(ne, ncap, m->e[i].key, m->e[i].hash) = m->e[i];
    vg_free(m->e);
    m->e = ne;
    m->cap = ncap;
    return VG_OK;
}

vg_err_t vg_smap_put(vg_smap *m, const char *key, void *val)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        vg_err_t rc = smap_grow(m);
        if (rc) return rc;
    }
    uint64_t h = str_hash(key);
    vg_smap_ent *s = smap_slot(m->e, m->cap, key, h);
    if (!s->key) m->n++;
    s->key = key;
    s->hash = h;
    s->val = val;
    return VG_OK;
}

void vg_smap_free(vg_smap *m)
{
    if (!m) return;
    vg_free(m->e);
    memset(m, 0, sizeof(*m));
}

/* ---- the index ---- */

void vg_index_free(vg_index *ix)
{
    if (!ix) return;
    for (size_t i = 0; i < ix->names.cap; i++) {
        vg_smap *vals = ix->names.e[i].val;
        if (!ix->names.e[i].key || !vals) continue;
        for (size_t j = 0; j < vals->cap; j++) {
            if (!vals->e[j].key) continue;
            vg_postings_free(vals->e[j].val);
            vg_free(vals->e[j].val);
        }
        vg_smap_free(vals);
        vg_free(vals);
    }
    vg_smap_free(&ix->names);
}

static vg_postings *index_list(vg_index *ix, const char *name, const char *value)
{
    vg_smap *vals = vg_smap_get(&ix->names, name);
    if (!vals) {
        vals = vg_calloc(1, sizeof(*vals));
        if (!vals) return NULL;
        if (vg_smap_put(&ix->names, name, vals)) {
            vg_free(vals);
            return NULL;
        }
    }
    vg_postings *p = vg_smap_get(vals, value);
    if (!p) {
        p = vg_calloc(1, sizeof(*p));
        if (!p) return NULL;
        if (vg_smap_put(vals, value, p)) {
            vg_free(p);
            return NULL;
        }
    }
    return p;
}

vg_err_t vg_index_add(vg_index *ix, const vg_label_t *l, size_t n, uint32_t ref)
{
    for (size_t i = 0; i < n; i++) {
        vg_postings *p = index_list(ix, l[i].name, l[i].value);
        if (!p) return VG_ENOMEM;
        vg_err_t rc = vg_postings_add(p, ref);
        if (rc) return rc;
    }
    return VG_OK;
}

const vg_postings *vg_index_get(const vg_index *ix, const char *name, const char *value)
{
    return vg_smap_get(vg_index_values(ix, name), value);
}

const vg_smap *vg_index_values(const vg_index *ix, const char *name)
{
    return vg_smap_get(&ix->names, name);
}

/* Union of the lists of the values of m's label for which matches() == want. */
static vg_err_t union_values(const vg_index *ix, const vg_matcher_t *m, int want, vg_postings *out)
{
    const char *name = vg_matcher_name(m);
    vg_match_op op = vg_matcher_op(m);
    if ((op == VG_MATCH_EQ && want) || (op == VG_MATCH_NEQ && !want)) {
        const vg_postings *p = vg_index_get(ix, name, vg_matcher_value(m));
        return p ? postings_concat(out, p) : VG_OK;
    }
    const vg_smap *vals = vg_index_values(ix, name);
    for (size_t i = 0; vals && i < vals->cap; i++) {
        if (!vals->e[i].key || !vg_matcher_matches(m, vals->e[i].key) != !want) continue;
        vg_err_t rc = postings_concat(out, vals->e[i].val);
        if (rc) return rc;
    }
    postings_sort_unique(out);
    return VG_OK;
}

static vg_err_t select_all(uint32_t nseries, vg_postings *out)
{
    vg_err_t rc = postings_grow(out, nseries);
    if (rc) return rc;
    for (uint32_t i = 0; i < nseries; i++) out->v[i] = i;
    out->n = nseries;
    return VG_OK;
}

/* Replace *acc by (*acc op set); swap buffers to avoid a copy. */
static vg_err_t combine(vg_postings *acc, vg_postings *set, int subtract)
{
    vg_postings tmp = {0};
    vg_err_t rc =
        subtract ? vg_postings_subtract(acc, set, &tmp) : vg_postings_intersect(acc, set, &tmp);
    vg_postings_free(acc);
    *acc = tmp;
    return rc;
}

vg_err_t vg_index_select(const vg_index *ix, uint32_t nseries, vg_matcher_t *const *m, size_t nm,
                         vg_postings *out)
{
    vg_postings acc = {0}, exclude = {0};
    int have_acc = 0;
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < nm && !rc; i++) {
        int empty_ok = vg_matcher_matches_empty(m[i]);
        vg_postings set = {0};
        rc = union_values(ix, m[i], !empty_ok, empty_ok ? &exclude : &set);
        if (!rc && !empty_ok) {
            if (have_acc)
                rc = combine(&acc, &set, 0);
            else
                acc = set, set = (vg_postings){0};
            have_acc = 1;
        }
        vg_postings_free(&set);
        if (have_acc && acc.n == 0) break;
    }
    postings_sort_unique(&exclude);
    if (!rc && !have_acc) rc = select_all(nseries, &acc);
    if (!rc) rc = combine(&acc, &exclude, 1);
    vg_postings_free(&exclude);
    if (rc) {
        vg_postings_free(&acc);
        return rc;
    }
    *out = acc;
    return VG_OK;
}
