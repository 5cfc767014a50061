/*
 * head.c - series table, append path and snapshot queries of one head.
 *
 * See head.h for the locking scheme. The series table stores ref+1 in an
 * open-addressing array keyed by the series id; the series objects live in a
 * ref-indexed array that only grows under the write lock.
 */
#include "tsdb/head.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/postings.h"
#include "vigil/alloc.h"

#define NSTRIPES 64

typedef struct series {
    uint64_t id;
    uint32_t ref;
    vg_label_t *labels; /* interned strings */
    size_t nlabels;
    vg_chunk_t **chunks;
    size_t nchunks, cap;
    int64_t last_ts;
    uint64_t last_bits;
    int has_last;
} series;

struct vg_head {
    pthread_rwlock_t lock;
    pthread_mutex_t stripes[NSTRIPES];
    int lock_ok, nstripes_ok;
    vg_strtab_t *strtab;
    series **series;
    uint32_t nseries;
    size_t scap;
    uint32_t *slots; /* ref + 1; 0 = free */
    size_t nslots;
    vg_index index;
    int64_t mint, maxt; /* updated with atomics */
    int has_samples;
};

static void series_free(series *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nchunks; i++) vg_chunk_free(s->chunks[i]);
    vg_free(s->chunks);
    vg_free(s->labels);
    vg_free(s);
}

vg_head_t *vg_head_new(void)
{
    vg_head_t *h = vg_calloc(1, sizeof(*h));
    if (!h) return NULL;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* Appends hold the lock shared all the time; a series creation must not starve. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    h->lock_ok = pthread_rwlock_init(&h->lock, &attr) == 0;
    pthread_rwlockattr_destroy(&attr);
    if (!h->lock_ok) goto fail;
    for (; h->nstripes_ok < NSTRIPES; h->nstripes_ok++)
        if (pthread_mutex_init(&h->stripes[h->nstripes_ok], NULL) != 0) goto fail;
    h->strtab = vg_strtab_new();
    if (!h->strtab) goto fail;
    return h;
fail:
    vg_head_free(h);
    return NULL;
}

void vg_head_free(vg_head_t *h)
{
    if (!h) return;
    for (uint32_t i = 0; i < h->nseries; i++) series_free(h->series[i]);
    vg_free(h->series);
    vg_free(h->slots);
    vg_index_free(&h->index);
    vg_strtab_free(h->strtab);
    for (int i = 0; i < h->nstripes_ok; i++) pthread_mutex_destroy(&h->stripes[i]);
    if (h->lock_ok) pthread_rwlock_destroy(&h->lock);
    vg_free(h);
}

/* ---- series table ---- */

static int find_series(const vg_head_t *h, const vg_label_t *l, size_t n, uint64_t id,
                       uint32_t *ref)
{
    if (h->nslots == 0) return 0;
    size_t mask = h->nslots - 1;
    for (size_t i = id & mask; h->slots[i]; i = (i + 1) & mask) {
        const series *s = h->series[h->slots[i] - 1];
        if (s->id == id && vg_labels_cmp(s->labels, s->nlabels, l, n) == 0) {
            *ref = s->ref;
            return 1;
        }
    }
    return 0;
}

static void slot_insert(uint32_t *slots, size_t nslots, uint64_t id, uint32_t ref)
{
    size_t mask = nslots - 1, i = id & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = ref + 1;
}

/* Make room for one more series in both the ref array and the table. */
static vg_err_t table_reserve(vg_head_t *h)
{
    if (h->nseries + 1 > h->scap) {
        size_t ncap = h->scap ? h->scap * 2 : 64;
        series **ns = vg_realloc(h->series, ncap * sizeof(*ns));
        if (!ns) return VG_ENOMEM;
        h->series = ns;
        h->scap = ncap;
    }
    if ((h->nseries + 1) * 2 <= h->nslots) return VG_OK;
    size_t nn = h->nslots ? h->nslots * 2 : 128;
    uint32_t *slots = vg_calloc(nn, sizeof(*slots));
    if (!slots) return VG_ENOMEM;
    for (uint32_t r = 0; r < h->nseries; r++) slot_insert(slots, nn, h->series[r]->id, r);
    vg_free(h->slots);
    h->slots = slots;
    h->nslots = nn;
    return VG_OK;
}

static series *series_build(vg_head_t *h, const vg_label_t *l, size_t n, uint64_t id)
{
    series *s = vg_calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->labels = vg_calloc(n ? n : 1, sizeof(*s->labels));
    if (!s->labels) goto fail;
    for (size_t i = 0; i < n; i++) {
        s->labels[i].name = vg_strtab_intern(h->strtab, l[i].name, strlen(l[i].name));
        s->labels[i].value = vg_strtab_intern(h->strtab, l[i].value, strlen(l[i].value));
        if (!s->labels[i].name || !s->labels[i].value) goto fail;
    }
    s->nlabels = n;
    s->id = id;
    return s;
fail:
    series_free(s);
    return NULL;
}

/* Undo a partial vg_index_add: the new ref is the last entry of each list. */
static void index_rollback(vg_head_t *h, const series *s)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        vg_postings *p =
            (vg_postings *)vg_index_get(&h->index, s->labels[i].name, s->labels[i].value);
        if (p && p->n && p->v[p->n - 1] == s->ref) p->n--;
    }
}

/* Called with the write lock held. */
static vg_err_t series_create(vg_head_t *h, const vg_label_t *l, size_t n, uint64_t id,
                              uint32_t *ref)
{
    if (h->nseries == UINT32_MAX - 1) return VG_ELIMIT;
    vg_err_t rc = table_reserve(h);
    if (rc) return rc;
    series *s = series_build(h, l, n, id);
    if (!s) return VG_ENOMEM;
    s->ref = h->nseries;
    rc = vg_index_add(&h->index, s->labels, s->nlabels, s->ref);
    if (rc) {
        index_rollback(h, s);
        series_free(s);
        return rc;
    }
    h->series[s->ref] = s;
    h->nseries++;
    slot_insert(h->slots, h->nslots, id, s->ref);
    *ref = s->ref;
    return VG_OK;
}

vg_err_t vg_head_series(vg_head_t *h, const vg_label_t *l, size_t n, uint32_t *ref, int *created)
{
    uint64_t id = vg_labels_hash(l, n);
    vg_err_t rc = VG_OK;
    *created = 0;
    pthread_rwlock_rdlock(&h->lock);
    int found = find_series(h, l, n, id, ref);
    pthread_rwlock_unlock(&h->lock);
    if (found) return VG_OK;
    pthread_rwlock_wrlock(&h->lock);
    if (!find_series(h, l, n, id, ref)) {
        rc = series_create(h, l, n, id, ref);
        *created = rc == VG_OK;
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

/* ---- appends ---- */

static int same_value(uint64_t a, uint64_t b)
{
    double x, y;
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    return a == b || (isnan(x) && isnan(y));
}

/* Find the stored value at ts, decoding the one chunk whose range holds it. */
static int stored_value(const series *s, int64_t ts, uint64_t *bits)
{
    for (size_t i = s->nchunks; i-- > 0;) {
        const vg_chunk_t *c = s->chunks[i];
        if (ts > vg_chunk_max_time(c)) return 0;
        if (ts < vg_chunk_min_time(c)) continue;
        size_t len;
        const uint8_t *b = vg_chunk_bytes(c, &len);
        vg_chunk_iter it;
        int64_t t;
        double v;
        vg_chunk_iter_init(&it, b, len);
        while (vg_chunk_iter_next(&it, &t, &v) && t <= ts) {
            if (t < ts) continue;
            memcpy(bits, &v, sizeof(*bits));
            return 1;
        }
        return 0;
    }
    return 0;
}

/* A sample not after the newest one. A redelivered batch (at-least-once
 * transport) repeats old samples: those are duplicates, not out of order. */
static vg_append_res classify_old(const series *s, int64_t ts, uint64_t bits)
{
    uint64_t have;
    if (ts == s->last_ts)
        have = s->last_bits;
    else if (!stored_value(s, ts, &have))
        return VG_APPEND_OUT_OF_ORDER;
    return same_value(bits, have) ? VG_APPEND_DUPLICATE : VG_APPEND_CONFLICT;
}

/* Called with the series' stripe held. */
static vg_err_t series_append(series *s, int64_t ts, double v, vg_append_res *res)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    if (s->has_last && ts <= s->last_ts) {
        *res = classify_old(s, ts, bits);
        return VG_OK;
    }
    if (s->nchunks == 0 ||
        vg_chunk_num_samples(s->chunks[s->nchunks - 1]) >= VG_CHUNK_MAX_SAMPLES) {
        if (s->nchunks == s->cap) {
            size_t ncap = s->cap ? s->cap * 2 : 4;
            vg_chunk_t **nc = vg_realloc(s->chunks, ncap * sizeof(*nc));
            if (!nc) return VG_ENOMEM;
            s->chunks = nc;
            s->cap = ncap;
        }
        s->chunks[s->nchunks] = vg_chunk_new();
        if (!s->chunks[s->nchunks]) return VG_ENOMEM;
        s->nchunks++;
    }
    vg_err_t rc = vg_chunk_append(s->chunks[s->nchunks - 1], ts, v);
    if (rc) return rc;
    s->last_ts = ts;
    s->last_bits = bits;
    s->has_last = 1;
    *res = VG_APPEND_ADDED;
    return VG_OK;
}

static void widen_range(vg_head_t *h, int64_t ts)
{
    int64_t cur = __atomic_load_n(&h->mint, __ATOMIC_RELAXED);
    int had = __atomic_load_n(&h->has_samples, __ATOMIC_ACQUIRE);
    while ((!had || ts < cur) &&
           !__atomic_compare_exchange_n(&h->mint, &cur, ts, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    cur = __atomic_load_n(&h->maxt, __ATOMIC_RELAXED);
    while ((!had || ts > cur) &&
           !__atomic_compare_exchange_n(&h->maxt, &cur, ts, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    if (!had) __atomic_store_n(&h->has_samples, 1, __ATOMIC_RELEASE);
}

vg_err_t vg_head_append(vg_head_t *h, uint32_t ref, int64_t ts, double v, vg_append_res *res)
{
    vg_err_t rc = VG_ENOTFOUND;
    pthread_rwlock_rdlock(&h->lock);
    if (ref < h->nseries) {
        pthread_mutex_t *mu = &h->stripes[ref % NSTRIPES];
        pthread_mutex_lock(mu);
        rc = series_append(h->series[ref], ts, v, res);
        pthread_mutex_unlock(mu);
    }
    pthread_rwlock_unlock(&h->lock);
    if (rc == VG_OK && *res == VG_APPEND_ADDED) widen_range(h, ts);
    return rc;
}

size_t vg_head_num_series(vg_head_t *h)
{
    pthread_rwlock_rdlock(&h->lock);
    size_t n = h->nseries;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

int vg_head_time_range(vg_head_t *h, int64_t *mint, int64_t *maxt)
{
    /* Two racing first appends may leave a slightly narrow range for an instant. */
    if (!__atomic_load_n(&h->has_samples, __ATOMIC_ACQUIRE)) return 0;
    *mint = __atomic_load_n(&h->mint, __ATOMIC_RELAXED);
    *maxt = __atomic_load_n(&h->maxt, __ATOMIC_RELAXED);
    return 1;
}

/* ---- snapshots ---- */

static vg_err_t copy_labels(const series *s, vg_arena_t *a, vg_snap_series *out)
{
    out->labels = vg_arena_alloc(a, (s->nlabels ? s->nlabels : 1) * sizeof(vg_label_t));
    if (!out->labels) return VG_ENOMEM;
    for (size_t i = 0; i < s->nlabels; i++) {
        out->labels[i].name = vg_arena_strdup(a, s->labels[i].name);
        out->labels[i].value = vg_arena_strdup(a, s->labels[i].value);
        if (!out->labels[i].name || !out->labels[i].value) return VG_ENOMEM;
    }
    out->nlabels = s->nlabels;
    return VG_OK;
}

/* Copy the chunks of s overlapping [mint, maxt]; out->nchunks = 0 if none. */
static vg_err_t copy_chunks(const series *s, int64_t mint, int64_t maxt, vg_arena_t *a,
                            vg_snap_series *out)
{
    out->nchunks = 0;
    out->chunks = NULL;
    for (size_t i = 0; i < s->nchunks; i++) {
        const vg_chunk_t *c = s->chunks[i];
        if (vg_chunk_max_time(c) < mint || vg_chunk_min_time(c) > maxt) continue;
        if (!out->chunks) {
            out->chunks = vg_arena_alloc(a, (s->nchunks - i) * sizeof(*out->chunks));
            if (!out->chunks) return VG_ENOMEM;
        }
        size_t len;
        const uint8_t *b = vg_chunk_bytes(c, &len);
        uint8_t *copy = vg_arena_alloc(a, len);
        if (!copy) return VG_ENOMEM;
        memcpy(copy, b, len);
        out->chunks[out->nchunks++] = (vg_snap_chunk){copy, len};
    }
    return VG_OK;
}

static vg_err_t snapshot_locked(vg_head_t *h, const vg_postings *refs, int64_t mint, int64_t maxt,
                                vg_arena_t *a, vg_snap_series *out, size_t *n)
{
    vg_err_t rc = VG_OK;
    *n = 0;
    for (size_t i = 0; i < refs->n && !rc; i++) {
        const series *s = h->series[refs->v[i]];
        pthread_mutex_t *mu = &h->stripes[s->ref % NSTRIPES];
        pthread_mutex_lock(mu);
        rc = copy_chunks(s, mint, maxt, a, &out[*n]);
        pthread_mutex_unlock(mu);
        if (!rc && out[*n].nchunks > 0) {
            rc = copy_labels(s, a, &out[*n]);
            (*n)++;
        }
    }
    return rc;
}

static int cmp_snap(const void *x, const void *y)
{
    const vg_snap_series *a = x, *b = y;
    return vg_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

vg_err_t vg_head_snapshot(vg_head_t *h, vg_matcher_t *const *m, size_t nm, int64_t mint,
                          int64_t maxt, vg_arena_t *a, vg_snap_series **out, size_t *n)
{
    vg_postings refs = {0};
    *out = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&h->lock);
    vg_err_t rc = vg_index_select(&h->index, h->nseries, m, nm, &refs);
    if (!rc && refs.n) {
        *out = vg_arena_alloc(a, refs.n * sizeof(**out));
        rc = *out ? snapshot_locked(h, &refs, mint, maxt, a, *out, n) : VG_ENOMEM;
    }
    pthread_rwlock_unlock(&h->lock);
    vg_postings_free(&refs);
    if (!rc && *n > 1) qsort(*out, *n, sizeof(**out), cmp_snap);
    return rc;
}

/* ---- label names and values ---- */

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

typedef struct strvec {
    const char **v;
    size_t n, cap;
} strvec;

static vg_err_t strvec_push(strvec *sv, const char *s)
{
    if (sv->n == sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 16;
        const char **nv = vg_realloc(sv->v, ncap * sizeof(*nv));
        if (!nv) return VG_ENOMEM;
        sv->v = nv;
        sv->cap = ncap;
    }
    sv->v[sv->n++] = s;
    return VG_OK;
}

/* Collect candidates (interned pointers) under the read lock. */
static vg_err_t collect_strings(vg_head_t *h, const char *name, vg_matcher_t *const *m, size_t nm,
                                strvec *sv)
{
    if (nm == 0) {
        const vg_smap *map = name ? vg_index_values(&h->index, name) : &h->index.names;
        vg_err_t rc = VG_OK;
        for (size_t i = 0; map && i < map->cap && !rc; i++)
            if (map->e[i].key) rc = strvec_push(sv, map->e[i].key);
        return rc;
    }
    vg_postings refs = {0};
    vg_err_t rc = vg_index_select(&h->index, h->nseries, m, nm, &refs);
    for (size_t i = 0; i < refs.n && !rc; i++) {
        const series *s = h->series[refs.v[i]];
        for (size_t j = 0; j < s->nlabels && !rc; j++) {
            if (!name)
                rc = strvec_push(sv, s->labels[j].name);
            else if (strcmp(s->labels[j].name, name) == 0)
                rc = strvec_push(sv, s->labels[j].value);
        }
    }
    vg_postings_free(&refs);
    return rc;
}

/* Sort, de-duplicate and copy into the arena. */
static vg_err_t strings_finish(strvec *sv, vg_arena_t *a, const char ***out, size_t *n)
{
    if (sv->n > 1) qsort(sv->v, sv->n, sizeof(*sv->v), cmp_str);
    *out = vg_arena_alloc(a, (sv->n ? sv->n : 1) * sizeof(**out));
    if (!*out) return VG_ENOMEM;
    for (size_t i = 0; i < sv->n; i++) {
        if (*n && strcmp((*out)[*n - 1], sv->v[i]) == 0) continue;
        (*out)[*n] = vg_arena_strdup(a, sv->v[i]);
        if (!(*out)[*n]) return VG_ENOMEM;
        (*n)++;
    }
    return VG_OK;
}

vg_err_t vg_head_label_strings(vg_head_t *h, const char *name, vg_matcher_t *const *m, size_t nm,
                               int64_t mint, int64_t maxt, vg_arena_t *a, const char ***out,
                               size_t *n)
{
    strvec sv = {0};
    int64_t hmin, hmax;
    vg_err_t rc = VG_OK;
    *out = NULL;
    *n = 0;
    /* Like a Prometheus block: the head contributes everything when it overlaps. */
    int overlaps = vg_head_time_range(h, &hmin, &hmax) && hmax >= mint && hmin <= maxt;
    pthread_rwlock_rdlock(&h->lock);
    if (overlaps) rc = collect_strings(h, name, m, nm, &sv);
    if (!rc) rc = strings_finish(&sv, a, out, n);
    pthread_rwlock_unlock(&h->lock);
    vg_free(sv.v);
    return rc;
}
