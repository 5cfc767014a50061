/*
 * stage.c - one scrape's samples, staged compactly until they can be emitted.
 *
 * Prometheus scrapes are all or nothing (a body that breaks sample_limit on
 * its last line drops every sample), and the emit callback cannot be rolled
 * back, so a scrape is staged completely first. The stage is one byte buffer
 * shared by all targets (one scrape is processed at a time on the scrape
 * thread): each sample is a fixed header and its series key, the sorted
 * labels written as the protobuf Label fields of a prometheus.TimeSeries
 * (see scrape_int.h). The key is the input of the series hash (XXH3 with a
 * per-process seed, one call over contiguous bytes; the framing keeps it
 * unambiguous) and is already the bytes the encoded emission sends, so a
 * record goes out with one copy instead of being re-framed label by label.
 * Nothing here grows per target: the buffer keeps the size of the largest
 * scrape and is reused.
 *
 * Duplicates and set comparisons work on (hash, offset) refs sorted by
 * hash. Hashes are uniform, so a counting pass on the top bits puts nearly
 * every ref in its final place and an insertion sort finishes each bucket;
 * the seed keeps a hostile body from aiming many series at one bucket, and
 * a crowded bucket falls back to qsort anyway. A repeated series is
 * confirmed by comparing key bytes, so a hash collision never drops a sample.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

#define BIG_STAGE     ((size_t)64 << 20) /* release a stage buffer larger than this */
#define MAX_SORT_BITS 16
#define CROWDED       64 /* bucket size past which qsort takes over */

vg_err_t vg_scrape_stage_init(vg_scrape_stage *st)
{
    memset(st, 0, sizeof *st);
    vg_buf_init(&st->buf, 0);
    if (getrandom(&st->seed, sizeof st->seed, GRND_NONBLOCK) != (ssize_t)sizeof st->seed)
        st->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)st;
    return VG_OK;
}

void vg_scrape_stage_destroy(vg_scrape_stage *st)
{
    if (!st) return;
    vg_buf_free(&st->buf);
    vg_free(st->ref);
    vg_free(st->tmp);
    vg_free(st->count);
    memset(st, 0, sizeof *st);
}

void vg_scrape_stage_reset(vg_scrape_stage *st)
{
    if (st->buf.cap > BIG_STAGE) vg_buf_free(&st->buf);
    vg_buf_reset(&st->buf);
    st->n = 0;
}

static int refs_reserve(vg_scrape_stage *st)
{
    if (st->n < st->cap) return 1;
    size_t cap = st->cap ? st->cap * 2 : 1024;
    vg_stage_ref *r = vg_realloc(st->ref, cap * sizeof *r);
    if (!r) return 0;
    st->ref = r;
    vg_stage_ref *t = vg_realloc(st->tmp, cap * sizeof *t);
    if (!t) return 0;
    st->tmp = t;
    st->cap = cap;
    return 1;
}

/* One pass: room for the longest key these labels can make, then the key
 * written and measured (a sizing pass first cost as much as the writing). */
uint32_t vg_scrape_stage_add(vg_scrape_stage *st, const vg_scrape_label *l, size_t n, int64_t ts_ms,
                             double v, uint32_t flags)
{
    size_t most = sizeof(vg_stage_rec) + 7;
    for (size_t i = 0; i < n; i++) most += vg_scrape_key_label_max(l[i].nlen, l[i].vlen);
    size_t off = st->buf.len;
    if (n > UINT32_MAX / 4 || !refs_reserve(st) ||
        (st->buf.cap - st->buf.len <= most && vg_buf_reserve(&st->buf, most)))
        return UINT32_MAX;
    char *base = st->buf.data + off;
    char *k = base + sizeof(vg_stage_rec), *p = k;
    for (size_t i = 0; i < n; i++) p = vg_scrape_key_put_label(p, &l[i]);
    size_t key = (size_t)(p - k);
    size_t size = (sizeof(vg_stage_rec) + key + 7) & ~(size_t)7;
    if (off + size > UINT32_MAX) return UINT32_MAX;
    vg_stage_rec *r = (vg_stage_rec *)(void *)base;
    *r = (vg_stage_rec){.hash = XXH3_64bits_withSeed(k, key, st->seed),
                        .ts_ms = ts_ms,
                        .v = v,
                        .size = (uint32_t)size,
                        .n = (uint32_t)n,
                        .keylen = (uint32_t)key,
                        .flags = flags};
    st->buf.len += size;
    st->ref[st->n++] = (vg_stage_ref){r->hash, (uint32_t)off, flags};
    return (uint32_t)off;
}

void vg_scrape_stage_undo(vg_scrape_stage *st, uint32_t rec)
{
    st->buf.len = rec;
    st->n--;
}

vg_err_t vg_scrape_stage_labels(const vg_stage_rec *r, vg_label_t *out, vg_buf *strs)
{
    vg_buf_reset(strs);
    vg_err_t rc = vg_buf_reserve(strs, r->keylen + 2 * (size_t)r->n + 1);
    if (rc) return rc;
    const char *p = vg_scrape_rec_key(r), *end = p + r->keylen;
    char *o = strs->data;
    for (uint32_t i = 0; i < r->n && p < end; i++) {
        vg_scrape_label x;
        p = vg_scrape_key_label(p, &x);
        out[i].name = o;
        memcpy(o, x.name, x.nlen);
        o[x.nlen] = '\0';
        o += x.nlen + 1;
        out[i].value = o;
        memcpy(o, x.value, x.vlen);
        o[x.vlen] = '\0';
        o += x.vlen + 1;
    }
    return VG_OK;
}

static int ref_cmp(const void *a, const void *b)
{
    const vg_stage_ref *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return x->rec < y->rec ? -1 : x->rec > y->rec; /* stable: refs are in body order */
}

static void insertion_sort(vg_stage_ref *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        vg_stage_ref x = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1].hash > x.hash; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

vg_err_t vg_scrape_sort_refs(vg_scrape_stage *st, vg_stage_ref *v, size_t n)
{
    if (n < 2) return VG_OK;
    unsigned bits = 1;
    while (bits < MAX_SORT_BITS && ((size_t)1 << bits) < n) bits++;
    size_t nb = (size_t)1 << bits;
    if (nb + 1 > st->ncount) {
        uint32_t *c = vg_realloc(st->count, (nb + 1) * sizeof *c);
        if (!c) return VG_ENOMEM;
        st->count = c;
        st->ncount = nb + 1;
    }
    vg_stage_ref *tmp = st->tmp;
    if (!tmp || n > st->cap) return VG_EINVAL;
    uint32_t *c = st->count;
    memset(c, 0, (nb + 1) * sizeof *c);
    for (size_t i = 0; i < n; i++) c[(v[i].hash >> (64 - bits)) + 1]++;
    for (size_t b = 0; b < nb; b++) c[b + 1] += c[b];
    for (size_t i = 0; i < n; i++) tmp[c[v[i].hash >> (64 - bits)]++] = v[i];
    /* c[b] is now the end of bucket b */
    for (size_t b = 0, from = 0; b < nb; from = c[b++]) {
        size_t len = c[b] - from;
        if (len > CROWDED)
            qsort(tmp + from, len, sizeof *tmp, ref_cmp);
        else if (len > 1)
            insertion_sort(tmp + from, len);
    }
    memcpy(v, tmp, n * sizeof *v);
    return VG_OK;
}

static int same_key(const vg_scrape_stage *st, uint32_t a, uint32_t b)
{
    const vg_stage_rec *x = vg_scrape_stage_rec(st, a), *y = vg_scrape_stage_rec(st, b);
    if (x->n != y->n || x->keylen != y->keylen) return 0;
    return memcmp(vg_scrape_rec_key(x), vg_scrape_rec_key(y), x->keylen) == 0;
}

size_t vg_scrape_stage_dedup(vg_scrape_stage *st, vg_err_t *rc)
{
    *rc = vg_scrape_sort_refs(st, st->ref, st->n);
    if (*rc) return 0;
    size_t dups = 0;
    for (size_t i = 1, run = 0; i < st->n; i++) {
        if (st->ref[i].hash != st->ref[run].hash) {
            run = i;
            continue;
        }
        for (size_t j = run; j < i; j++) { /* equal hashes: confirm on the key */
            if ((st->ref[j].flags & VG_STAGE_DUP) || !same_key(st, st->ref[j].rec, st->ref[i].rec))
                continue;
            st->ref[i].flags |= VG_STAGE_DUP;
            vg_scrape_stage_rec(st, st->ref[i].rec)->flags |= VG_STAGE_DUP;
            dups++;
            break;
        }
    }
    return dups;
}
