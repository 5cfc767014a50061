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

#define NSTRIPES  64
#define PAGE_BITS 12 /* series pointers live in pages of 4096 refs */
#define PAGE_SIZE (1u << PAGE_BITS)

typedef struct series {
    uint64_t id;
    vg_label_t *labels; /* interned strings */
    vg_chunk_t **chunks;
    int64_t last_ts;
    uint64_t last_bits;
    uint32_t ref;
    uint32_t gen; /* head generation of the last lookup or append */
    uint16_t nlabels;
    uint16_t nchunks, cap;
    uint8_t has_last;
    vg_label_t label_mem[]; /* labels points here: one allocation, one cache miss less */
} series;

/* A cache line's worth per stripe (padding, not alignment: the head comes
 * from vg_calloc): packed mutexes made appends on two cores bounce each
 * other's lines. */
typedef struct stripe {
    pthread_mutex_t mu;
    char pad[64 - sizeof(pthread_mutex_t) % 64];
} stripe;

struct vg_head {
    pthread_rwlock_t lock;
    stripe stripes[NSTRIPES];
    int lock_ok, nstripes_ok;
    vg_strtab_t *strtab;
    vg_strtab_t **retired; /* strtabs still referenced after a failed rebuild */
    size_t nretired;
    series ***pages; /* ref >> PAGE_BITS -> page of PAGE_SIZE pointers, NULL when all dead */
    size_t npages;
    uint32_t next_ref; /* refs are handed out in order and never reused */
    size_t nlive;
    uint64_t *slots; /* id's high 32 bits << 32 | ref + 1; 0 = free */
    size_t nslots;
    vg_index index;
    uint32_t gen;        /* bumped by every truncate */
    int64_t min_valid;   /* samples older than this are out of bounds (last truncate) */
    int64_t ooo_window;  /* < 0: no out-of-order window */
    uint64_t max_series; /* 0: no cap on live series */
    int64_t mint, maxt;  /* updated with atomics */
    int has_samples;
};

static void series_free(series *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nchunks; i++) vg_chunk_free(s->chunks[i]);
    vg_free(s->chunks);
    vg_free(s);
}

static series *get_series(const vg_head_t *h, uint32_t ref)
{
    if (ref >= h->next_ref) return NULL;
    series **pg = h->pages[ref >> PAGE_BITS];
    return pg ? pg[ref & (PAGE_SIZE - 1)] : NULL;
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
        if (pthread_mutex_init(&h->stripes[h->nstripes_ok].mu, NULL) != 0) goto fail;
    h->strtab = vg_strtab_new();
    if (!h->strtab) goto fail;
    h->ooo_window = VG_HEAD_OOO_DEFAULT_MS;
    h->min_valid = INT64_MIN;
    return h;
fail:
    vg_head_free(h);
    return NULL;
}

void vg_head_set_ooo_window(vg_head_t *h, int64_t window_ms)
{
    pthread_rwlock_wrlock(&h->lock);
    h->ooo_window = window_ms;
    pthread_rwlock_unlock(&h->lock);
}

void vg_head_set_max_series(vg_head_t *h, uint64_t max)
{
    pthread_rwlock_wrlock(&h->lock);
    h->max_series = max;
    pthread_rwlock_unlock(&h->lock);
}

static void free_page(series **pg)
{
    if (!pg) return;
    for (size_t i = 0; i < PAGE_SIZE; i++) series_free(pg[i]);
    vg_free(pg);
}

void vg_head_free(vg_head_t *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->npages; i++) free_page(h->pages[i]);
    vg_free(h->pages);
    vg_free(h->slots);
    vg_index_free(&h->index);
    vg_strtab_free(h->strtab);
    for (size_t i = 0; i < h->nretired; i++) vg_strtab_free(h->retired[i]);
    vg_free(h->retired);
    for (int i = 0; i < h->nstripes_ok; i++) pthread_mutex_destroy(&h->stripes[i].mu);
    if (h->lock_ok) pthread_rwlock_destroy(&h->lock);
    vg_free(h);
}

/* ---- series table ---- */

/* The slot's tag (the id's high half) rules out most other series without
 * loading them: lookups are cache-miss bound (profiled). */
#define SLOT_TAG(id) ((id) & ~(uint64_t)UINT32_MAX)

static series *find_series(const vg_head_t *h, const vg_label_t *l, size_t n, uint64_t id)
{
    if (h->nslots == 0) return NULL;
    size_t mask = h->nslots - 1;
    for (size_t i = id & mask; h->slots[i]; i = (i + 1) & mask) {
        if (SLOT_TAG(h->slots[i]) != SLOT_TAG(id)) continue;
        series *s = get_series(h, (uint32_t)h->slots[i] - 1);
        if (s && s->id == id && vg_labels_cmp(s->labels, s->nlabels, l, n) == 0) return s;
    }
    return NULL;
}

static void slot_insert(uint64_t *slots, size_t nslots, uint64_t id, uint32_t ref)
{
    size_t mask = nslots - 1, i = id & mask;
    while (slots[i]) i = (i + 1) & mask;
    slots[i] = SLOT_TAG(id) | ((uint64_t)ref + 1);
}

/* A slot table for the live series, sized for nlive + 1. */
static vg_err_t slots_rebuild(vg_head_t *h, size_t want)
{
    size_t nn = 128;
    while (nn < want * 2) nn *= 2;
    uint64_t *slots = vg_calloc(nn, sizeof(*slots));
    if (!slots) return VG_ENOMEM;
    for (uint32_t r = 0; r < h->next_ref; r++) {
        const series *s = get_series(h, r);
        if (s) slot_insert(slots, nn, s->id, r);
    }
    vg_free(h->slots);
    h->slots = slots;
    h->nslots = nn;
    return VG_OK;
}

/* Make room for one more series in both the page directory and the table. */
static vg_err_t table_reserve(vg_head_t *h)
{
    size_t pi = h->next_ref >> PAGE_BITS;
    if (pi >= h->npages) {
        size_t ncap = h->npages ? h->npages * 2 : 4;
        series ***np = vg_realloc(h->pages, ncap * sizeof(*np));
        if (!np) return VG_ENOMEM;
        memset(np + h->npages, 0, (ncap - h->npages) * sizeof(*np));
        h->pages = np;
        h->npages = ncap;
    }
    if (!h->pages[pi] && !(h->pages[pi] = vg_calloc(PAGE_SIZE, sizeof(series *)))) return VG_ENOMEM;
    if ((h->nlive + 1) * 2 <= h->nslots) return VG_OK;
    return slots_rebuild(h, h->nlive + 1);
}

static vg_err_t intern_labels(vg_strtab_t *t, vg_label_t *dst, const vg_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i].name = vg_strtab_intern(t, l[i].name, strlen(l[i].name));
        dst[i].value = vg_strtab_intern(t, l[i].value, strlen(l[i].value));
        if (!dst[i].name || !dst[i].value) return VG_ENOMEM;
    }
    return VG_OK;
}

static series *series_build(vg_head_t *h, const vg_label_t *l, size_t n, uint64_t id)
{
    series *s = vg_calloc(1, sizeof(*s) + n * sizeof(vg_label_t));
    if (!s) return NULL;
    s->labels = s->label_mem;
    if (intern_labels(h->strtab, s->labels, l, n)) goto fail;
    s->nlabels = (uint16_t)n;
    s->id = id;
    s->gen = h->gen;
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
    if (h->next_ref == UINT32_MAX - 1) return VG_ELIMIT;
    if (h->max_series && h->nlive >= h->max_series) return VG_ELIMIT;
    if (n > UINT16_MAX) return VG_ETOOLARGE;
    vg_err_t rc = table_reserve(h);
    if (rc) return rc;
    series *s = series_build(h, l, n, id);
    if (!s) return VG_ENOMEM;
    s->ref = h->next_ref;
    rc = vg_index_add(&h->index, s->labels, s->nlabels, s->ref);
    if (rc) {
        index_rollback(h, s);
        series_free(s);
        return rc;
    }
    h->pages[s->ref >> PAGE_BITS][s->ref & (PAGE_SIZE - 1)] = s;
    h->next_ref++;
    h->nlive++;
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
    series *s = find_series(h, l, n, id);
    if (s) {
        *ref = s->ref;
        __atomic_store_n(&s->gen, h->gen, __ATOMIC_RELAXED); /* protects it from truncate */
    }
    pthread_rwlock_unlock(&h->lock);
    if (s) return VG_OK;
    pthread_rwlock_wrlock(&h->lock);
    if ((s = find_series(h, l, n, id)) != NULL) {
        *ref = s->ref;
        s->gen = h->gen;
    } else {
        rc = series_create(h, l, n, id, ref);
        *created = rc == VG_OK;
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

/* Each pass touches what the previous one prefetched, for every key, so
 * the misses of one level overlap across the batch instead of adding up. */
static void lookup_prefetch(const vg_head_t *h, const uint64_t *id, size_t count)
{
    size_t mask = h->nslots - 1;
    for (size_t i = 0; i < count; i++) __builtin_prefetch(&h->slots[id[i] & mask]);
    for (size_t i = 0; i < count; i++) {
        uint64_t sl = h->slots[id[i] & mask];
        const series *s =
            sl && SLOT_TAG(sl) == SLOT_TAG(id[i]) ? get_series(h, (uint32_t)sl - 1) : NULL;
        if (!s) continue;
        __builtin_prefetch(s);
        __builtin_prefetch((const char *)s + 64);
        __builtin_prefetch((const char *)s + 128);
    }
}

void vg_head_lookup_n(vg_head_t *h, vg_head_key *k, size_t count)
{
    enum { MAXB = 256 };
    uint64_t id[MAXB];
    for (size_t off = 0; off < count; off += MAXB) {
        size_t m = count - off < MAXB ? count - off : MAXB;
        vg_head_key *kk = k + off;
        for (size_t i = 0; i < m; i++) id[i] = vg_labels_hash(kk[i].l, kk[i].n);
        pthread_rwlock_rdlock(&h->lock);
        if (h->nslots) lookup_prefetch(h, id, m);
        for (size_t i = 0; i < m; i++) {
            series *s = find_series(h, kk[i].l, kk[i].n, id[i]);
            kk[i].found = s != NULL;
            if (!s) continue;
            kk[i].ref = s->ref;
            __atomic_store_n(&s->gen, h->gen, __ATOMIC_RELAXED); /* as vg_head_series */
            if (s->nchunks) __builtin_prefetch(&s->chunks[s->nchunks - 1]);
        }
        for (size_t i = 0; i < m; i++) {
            const series *s = kk[i].found ? get_series(h, kk[i].ref) : NULL;
            if (s && s->nchunks) __builtin_prefetch(s->chunks[s->nchunks - 1]);
        }
        for (size_t i = 0; i < m; i++) {
            const series *s = kk[i].found ? get_series(h, kk[i].ref) : NULL;
            if (s && s->nchunks) vg_chunk_prefetch_tail(s->chunks[s->nchunks - 1]);
        }
        pthread_rwlock_unlock(&h->lock);
    }
}

/* ---- appends ---- */

static int same_value(uint64_t a, uint64_t b)
{
    double x, y;
    memcpy(&x, &a, sizeof(x));
    memcpy(&y, &b, sizeof(y));
    return a == b || (isnan(x) && isnan(y));
}

/* Index of the first chunk whose newest sample is at or after ts; nchunks if none. */
static size_t chunk_for(const series *s, int64_t ts)
{
    size_t i = s->nchunks;
    while (i > 0 && vg_chunk_max_time(s->chunks[i - 1]) >= ts) i--;
    return i;
}

/* Find the stored value at ts, decoding the one chunk whose range holds it. */
static int stored_value(const series *s, int64_t ts, uint64_t *bits)
{
    size_t i = chunk_for(s, ts);
    if (i == s->nchunks || ts < vg_chunk_min_time(s->chunks[i])) return 0;
    size_t len;
    const uint8_t *b = vg_chunk_bytes(s->chunks[i], &len);
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

static vg_err_t chunks_insert(series *s, size_t at, vg_chunk_t *c)
{
    if (s->nchunks == s->cap) {
        if (s->cap >= UINT16_MAX / 2) return VG_ELIMIT;
        size_t ncap = s->cap ? s->cap * 2u : 2u;
        vg_chunk_t **nc = vg_realloc(s->chunks, ncap * sizeof(*nc));
        if (!nc) return VG_ENOMEM;
        s->chunks = nc;
        s->cap = (uint16_t)ncap;
    }
    memmove(&s->chunks[at + 1], &s->chunks[at], (s->nchunks - at) * sizeof(*s->chunks));
    s->chunks[at] = c;
    s->nchunks++;
    return VG_OK;
}

/* Append after every stored sample, cutting a new chunk when the last is full. */
static vg_err_t append_tail(series *s, int64_t ts, double v)
{
    if (s->nchunks == 0 ||
        vg_chunk_num_samples(s->chunks[s->nchunks - 1]) >= VG_CHUNK_MAX_SAMPLES) {
        size_t prev = 0;
        if (s->nchunks) vg_chunk_bytes(s->chunks[s->nchunks - 1], &prev);
        vg_chunk_t *c = vg_chunk_new_sized(prev / 2);
        if (!c) return VG_ENOMEM;
        vg_err_t rc = chunks_insert(s, s->nchunks, c);
        if (rc) {
            vg_chunk_free(c);
            return rc;
        }
        /* The full chunk before it is done growing: keep it in the smaller
         * of its XOR and compact forms (about half of a head's memory is
         * full chunks; an out-of-order insert re-encodes it as XOR). */
        if (s->nchunks > 1) (void)vg_chunk_compact(s->chunks[s->nchunks - 2]);
    }
    vg_chunk_t *last = s->chunks[s->nchunks - 1];
    vg_err_t rc = vg_chunk_append(last, ts, v);
    if (!rc && vg_chunk_num_samples(last) == VG_CHUNK_MAX_SAMPLES) vg_chunk_shrink(last);
    return rc;
}

/* Encode samples [from, to) as a new chunk. */
static vg_chunk_t *encode(const int64_t *t, const double *v, size_t from, size_t to)
{
    vg_chunk_t *c = vg_chunk_new();
    for (size_t i = from; c && i < to; i++) {
        if (vg_chunk_append(c, t[i], v[i]) != VG_OK) {
            vg_chunk_free(c);
            c = NULL;
        }
    }
    if (c) vg_chunk_shrink(c);
    return c;
}

/* Rebuild chunk i with (ts, v) inserted in order; split it in two when it
 * would exceed VG_CHUNK_MAX_SAMPLES. Chunks stay ordered and disjoint. */
static vg_err_t reencode_insert(series *s, size_t i, int64_t ts, double v)
{
    int64_t t[VG_CHUNK_MAX_SAMPLES + 2], tt;
    double x[VG_CHUNK_MAX_SAMPLES + 2], vv;
    size_t n = 0, len;
    const uint8_t *b = vg_chunk_bytes(s->chunks[i], &len);
    vg_chunk_iter it;
    vg_chunk_iter_init(&it, b, len);
    int done = 0;
    while (vg_chunk_iter_next(&it, &tt, &vv)) {
        if (n > VG_CHUNK_MAX_SAMPLES) return VG_ECORRUPT; /* never more than 120 stored */
        if (!done && tt > ts) t[n] = ts, x[n] = v, n++, done = 1;
        t[n] = tt, x[n] = vv, n++;
    }
    if (vg_chunk_iter_err(&it) || !done) return VG_ECORRUPT;
    size_t split = n > VG_CHUNK_MAX_SAMPLES ? n / 2 : n;
    vg_chunk_t *a = encode(t, x, 0, split), *c = split < n ? encode(t, x, split, n) : NULL;
    vg_err_t rc = !a || (split < n && !c) ? VG_ENOMEM : VG_OK;
    if (!rc && c) rc = chunks_insert(s, i + 1, c);
    if (rc) {
        vg_chunk_free(a);
        vg_chunk_free(c);
        return rc;
    }
    vg_chunk_free(s->chunks[i]);
    s->chunks[i] = a;
    return VG_OK;
}

/* A sample not after the newest one and not stored: insert it in order when
 * it is inside the window and not before the last truncation. */
static vg_err_t insert_old(const vg_head_t *h, series *s, int64_t ts, double v, vg_append_res *res)
{
    *res = VG_APPEND_OUT_OF_ORDER;
    /* last_ts >= ts, so the unsigned difference is exact even across the int64 range. */
    if (h->ooo_window < 0 || ts < h->min_valid ||
        (uint64_t)s->last_ts - (uint64_t)ts > (uint64_t)h->ooo_window)
        return VG_OK;
    size_t i = chunk_for(s, ts);
    vg_err_t rc = i == s->nchunks ? append_tail(s, ts, v) : reencode_insert(s, i, ts, v);
    if (!rc) *res = VG_APPEND_ADDED;
    return rc;
}

/* Called with the series' stripe held. A redelivered batch (at-least-once
 * transport) repeats old samples: those are duplicates, not out of order. */
static vg_err_t series_append(const vg_head_t *h, series *s, int64_t ts, double v,
                              vg_append_res *res)
{
    uint64_t bits, have;
    memcpy(&bits, &v, sizeof(bits));
    __atomic_store_n(&s->gen, h->gen, __ATOMIC_RELAXED); /* vg_head_series stores it too */
    if (s->has_last && ts <= s->last_ts) {
        if (ts == s->last_ts)
            have = s->last_bits;
        else if (!stored_value(s, ts, &have))
            return insert_old(h, s, ts, v, res);
        *res = same_value(bits, have) ? VG_APPEND_DUPLICATE : VG_APPEND_CONFLICT;
        return VG_OK;
    }
    if (ts < h->min_valid) {
        *res = VG_APPEND_OUT_OF_ORDER;
        return VG_OK;
    }
    vg_err_t rc = append_tail(s, ts, v);
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
    series *s = get_series(h, ref);
    if (s) {
        pthread_mutex_t *mu = &h->stripes[ref % NSTRIPES].mu;
        pthread_mutex_lock(mu);
        rc = series_append(h, s, ts, v, res);
        pthread_mutex_unlock(mu);
        /* Inside the read lock, so a truncate's range recomputation never races it. */
        if (rc == VG_OK && *res == VG_APPEND_ADDED) widen_range(h, ts);
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

vg_err_t vg_head_append_n(vg_head_t *h, uint32_t ref, const int64_t *ts, const double *v, size_t n,
                          vg_append_res *res, size_t *done)
{
    *done = 0;
    vg_err_t rc = VG_ENOTFOUND;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    pthread_rwlock_rdlock(&h->lock);
    series *s = get_series(h, ref);
    if (s) {
        pthread_mutex_t *mu = &h->stripes[ref % NSTRIPES].mu;
        pthread_mutex_lock(mu);
        rc = VG_OK;
        for (size_t i = 0; i < n && !rc; i++) {
            rc = series_append(h, s, ts[i], v[i], &res[i]);
            if (rc) break;
            (*done)++;
            if (res[i] != VG_APPEND_ADDED) continue;
            if (ts[i] < lo) lo = ts[i];
            if (ts[i] > hi) hi = ts[i];
        }
        pthread_mutex_unlock(mu);
        /* One range update for the run: the same result as one per sample. */
        if (lo <= hi) widen_range(h, lo);
        if (lo < hi) widen_range(h, hi);
    }
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

size_t vg_head_num_series(vg_head_t *h)
{
    pthread_rwlock_rdlock(&h->lock);
    size_t n = h->nlive;
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

/* ---- truncation ---- */

/* Free the leading chunks whose samples are all older than mint. */
static void drop_chunks(series *s, int64_t mint)
{
    size_t k = 0;
    while (k < s->nchunks && vg_chunk_max_time(s->chunks[k]) < mint) vg_chunk_free(s->chunks[k++]);
    if (k == 0) return;
    s->nchunks = (uint16_t)(s->nchunks - k);
    memmove(s->chunks, s->chunks + k, s->nchunks * sizeof(*s->chunks));
    if (s->nchunks == 0) {
        vg_free(s->chunks);
        s->chunks = NULL;
        s->cap = 0;
    }
}

/* Re-intern the live labels into a fresh strtab and rebuild the postings, so
 * the strings and lists of removed series are freed. Write lock held. On
 * ENOMEM every strtab still referenced is kept (retired) and the old index
 * stays: it may list removed refs, which readers skip. */
static vg_err_t rebuild_index(vg_head_t *h)
{
    vg_strtab_t *t = vg_strtab_new(), **keep;
    vg_index ix = {0};
    vg_err_t rc = t ? VG_OK : VG_ENOMEM;
    for (uint32_t r = 0; r < h->next_ref && !rc; r++) {
        series *s = get_series(h, r);
        if (s) rc = intern_labels(t, s->labels, s->labels, s->nlabels);
        if (s && !rc) rc = vg_index_add(&ix, s->labels, s->nlabels, r);
    }
    if (rc) {
        vg_index_free(&ix);
        if (!t || !(keep = vg_realloc(h->retired, (h->nretired + 1) * sizeof(*keep)))) return rc;
        h->retired = keep; /* labels may point into both tables now */
        h->retired[h->nretired++] = h->strtab;
        h->strtab = t;
        return rc;
    }
    vg_index_free(&h->index);
    h->index = ix;
    vg_strtab_free(h->strtab);
    for (size_t i = 0; i < h->nretired; i++) vg_strtab_free(h->retired[i]);
    h->nretired = 0;
    h->strtab = t;
    return VG_OK;
}

/* Drop old chunks of every series, remove the dead ones; returns how many. */
static size_t truncate_series(vg_head_t *h, int64_t mint)
{
    size_t removed = 0;
    for (size_t p = 0; p < h->npages; p++) {
        series **pg = h->pages[p];
        size_t live = 0;
        for (size_t i = 0; pg && i < PAGE_SIZE; i++) {
            series *s = pg[i];
            if (!s) continue;
            drop_chunks(s, mint);
            if (s->nchunks == 0 && s->gen + 1 < h->gen) { /* idle for a whole truncate cycle */
                series_free(s);
                pg[i] = NULL;
                removed++;
                continue;
            }
            live++;
        }
        /* A page no new ref will land in again, and empty: free it. */
        if (pg && live == 0 && ((p + 1) << PAGE_BITS) <= h->next_ref) {
            vg_free(pg);
            h->pages[p] = NULL;
        }
    }
    h->nlive -= removed;
    return removed;
}

static void recompute_range(vg_head_t *h)
{
    int any = 0;
    int64_t lo = 0, hi = 0;
    for (uint32_t r = 0; r < h->next_ref; r++) {
        const series *s = get_series(h, r);
        if (!s || s->nchunks == 0) continue;
        int64_t a = vg_chunk_min_time(s->chunks[0]),
                b = vg_chunk_max_time(s->chunks[s->nchunks - 1]);
        lo = any && lo < a ? lo : a;
        hi = any && hi > b ? hi : b;
        any = 1;
    }
    __atomic_store_n(&h->mint, lo, __ATOMIC_RELAXED);
    __atomic_store_n(&h->maxt, hi, __ATOMIC_RELAXED);
    __atomic_store_n(&h->has_samples, any, __ATOMIC_RELEASE);
}

void vg_head_set_min_valid(vg_head_t *h, int64_t mint)
{
    pthread_rwlock_wrlock(&h->lock);
    if (mint > h->min_valid) h->min_valid = mint;
    pthread_rwlock_unlock(&h->lock);
}

vg_err_t vg_head_truncate(vg_head_t *h, int64_t mint)
{
    vg_err_t rc = VG_OK;
    pthread_rwlock_wrlock(&h->lock);
    h->gen++;
    if (mint > h->min_valid) h->min_valid = mint;
    if (truncate_series(h, mint) > 0) {
        rc = slots_rebuild(h, h->nlive);
        vg_err_t rc2 = rebuild_index(h);
        if (!rc) rc = rc2;
    }
    recompute_range(h);
    pthread_rwlock_unlock(&h->lock);
    return rc;
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
        out->chunks[out->nchunks++] =
            (vg_snap_chunk){copy, len, vg_chunk_min_time(c), vg_chunk_max_time(c)};
    }
    return VG_OK;
}

static vg_err_t snapshot_locked(vg_head_t *h, const uint32_t *refs, size_t nrefs, int64_t mint,
                                int64_t maxt, vg_arena_t *a, vg_snap_series *out, size_t *n)
{
    vg_err_t rc = VG_OK;
    *n = 0;
    for (size_t i = 0; i < nrefs && !rc; i++) {
        const series *s = get_series(h, refs[i]);
        if (!s) continue; /* removed by a truncate, still in an old index */
        pthread_mutex_t *mu = &h->stripes[s->ref % NSTRIPES].mu;
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
    vg_err_t rc = vg_index_select(&h->index, h->next_ref, m, nm, &refs);
    if (!rc && refs.n) {
        *out = vg_arena_alloc(a, refs.n * sizeof(**out));
        rc = *out ? snapshot_locked(h, refs.v, refs.n, mint, maxt, a, *out, n) : VG_ENOMEM;
    }
    pthread_rwlock_unlock(&h->lock);
    vg_postings_free(&refs);
    if (!rc && *n > 1) qsort(*out, *n, sizeof(**out), cmp_snap);
    return rc;
}

vg_err_t vg_head_snapshot_refs(vg_head_t *h, const uint32_t *refs, size_t nrefs, int64_t mint,
                               int64_t maxt, vg_arena_t *a, vg_snap_series **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (nrefs == 0) return VG_OK;
    *out = vg_arena_alloc(a, nrefs * sizeof(**out));
    if (!*out) return VG_ENOMEM;
    pthread_rwlock_rdlock(&h->lock);
    vg_err_t rc = snapshot_locked(h, refs, nrefs, mint, maxt, a, *out, n);
    pthread_rwlock_unlock(&h->lock);
    return rc;
}

static int cmp_series(const void *x, const void *y)
{
    const series *a = *(const series *const *)x, *b = *(const series *const *)y;
    return vg_labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

/* Sorting happens under the shared lock: the series (and their interned
 * labels) cannot be freed meanwhile, and appends go on. */
vg_err_t vg_head_refs_sorted(vg_head_t *h, uint32_t **refs, size_t *n)
{
    *refs = NULL;
    *n = 0;
    pthread_rwlock_rdlock(&h->lock);
    size_t cap = h->nlive ? h->nlive : 1, k = 0;
    const series **keys = vg_malloc(cap * sizeof(*keys));
    uint32_t *v = vg_malloc(cap * sizeof(*v));
    for (uint32_t r = 0; keys && v && r < h->next_ref && k < cap; r++) {
        const series *s = get_series(h, r);
        if (s) keys[k++] = s;
    }
    if (keys && v) {
        qsort(keys, k, sizeof(*keys), cmp_series);
        for (size_t i = 0; i < k; i++) v[i] = keys[i]->ref;
    }
    pthread_rwlock_unlock(&h->lock);
    vg_err_t rc = keys && v ? VG_OK : VG_ENOMEM;
    vg_free(keys);
    if (rc) {
        vg_free(v);
        return rc;
    }
    *refs = v;
    *n = k;
    return VG_OK;
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
    vg_err_t rc = vg_index_select(&h->index, h->next_ref, m, nm, &refs);
    for (size_t i = 0; i < refs.n && !rc; i++) {
        const series *s = get_series(h, refs.v[i]);
        if (!s) continue;
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
