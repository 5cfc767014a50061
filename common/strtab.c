/*
 * strtab.c - thread-safe string intern table.
 *
 * The TSDB head holds millions of series whose label names and values repeat
 * heavily, so each distinct string is stored once and compared by pointer.
 * Shape: an open-addressing (linear probing) table of {hash, len, ptr} keyed
 * by XXH3-64 of the bytes, and the bytes themselves packed into big slabs so
 * there is one malloc per slab, not per string. Strings are never removed:
 * pointers stay valid until vg_strtab_free, which is what lets callers keep
 * them without reference counts. One mutex guards everything; lookups are a
 * hash plus a probe or two, so the critical section is short and no I/O or
 * allocation other than slab/table growth ever happens under it.
 */
#include "vigil/labels.h"

#include <pthread.h>
#include <string.h>
#include <xxhash.h>

#include "vigil/alloc.h"

#define SLAB_SIZE   (64 * 1024)
#define TABLE_START 1024 /* slots; a power of two */

typedef struct slab {
    struct slab *next;
    size_t used, cap;
    char data[];
} slab_t;

typedef struct slot {
    uint64_t hash;
    size_t len;
    const char *s; /* NULL = empty slot */
} slot_t;

struct vg_strtab {
    pthread_mutex_t mu;
    slot_t *slots;
    size_t mask; /* capacity - 1 */
    size_t count;
    size_t bytes;  /* string bytes held, NUL terminators included */
    slab_t *slabs; /* newest first; the head is the one being filled */
};

vg_strtab_t *vg_strtab_new(void)
{
    vg_strtab_t *t = vg_calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->slots = vg_calloc(TABLE_START, sizeof(slot_t));
    if (!t->slots || pthread_mutex_init(&t->mu, NULL) != 0) {
        vg_free(t->slots);
        vg_free(t);
        return NULL;
    }
    t->mask = TABLE_START - 1;
    return t;
}

void vg_strtab_free(vg_strtab_t *t)
{
    if (!t) return;
    for (slab_t *s = t->slabs, *next; s; s = next) {
        next = s->next;
        vg_free(s);
    }
    vg_free(t->slots);
    pthread_mutex_destroy(&t->mu);
    vg_free(t);
}

/* Copy s into slab space; a string larger than a quarter slab gets a slab of
 * its own, linked behind the head so the head keeps filling. */
static const char *slab_copy(vg_strtab_t *t, const char *s, size_t len)
{
    size_t need = len + 1;
    slab_t *h = t->slabs;
    if (!h || h->cap - h->used < need) {
        int own = need > SLAB_SIZE / 4;
        slab_t *n = vg_malloc(sizeof(*n) + (own ? need : SLAB_SIZE));
        if (!n) return NULL;
        n->used = 0;
        n->cap = own ? need : SLAB_SIZE;
        if (own && h) {
            n->next = h->next;
            h->next = n;
        } else {
            n->next = h;
            t->slabs = n;
        }
        h = n;
    }
    char *p = h->data + h->used;
    memcpy(p, s, len);
    p[len] = '\0';
    h->used += need;
    return p;
}

static slot_t *probe(slot_t *slots, size_t mask, uint64_t hash, const char *s, size_t len)
{
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        slot_t *e = &slots[i];
        if (!e->s) return e;
        if (e->hash == hash && e->len == len && memcmp(e->s, s, len) == 0) return e;
    }
}

/* Double the table when it is over 70% full; VG_ENOMEM leaves it intact. */
static vg_err_t maybe_grow(vg_strtab_t *t)
{
    size_t cap = t->mask + 1;
    if ((t->count + 1) * 10 < cap * 7) return VG_OK;
    slot_t *ns = vg_calloc(cap * 2, sizeof(slot_t));
    if (!ns) return VG_ENOMEM;
    size_t nmask = cap * 2 - 1;
    for (size_t i = 0; i < cap; i++) {
        slot_t *e = &t->slots[i];
        if (e->s) *probe(ns, nmask, e->hash, e->s, e->len) = *e;
    }
    vg_free(t->slots);
    t->slots = ns;
    t->mask = nmask;
    return VG_OK;
}

const char *vg_strtab_intern(vg_strtab_t *t, const char *s, size_t len)
{
    if (!t || (!s && len)) return NULL;
    if (!s) s = "";
    uint64_t hash = XXH3_64bits(s, len);
    const char *res = NULL;
    pthread_mutex_lock(&t->mu);
    slot_t *e = probe(t->slots, t->mask, hash, s, len);
    if (e->s) {
        res = e->s;
        goto out;
    }
    if (maybe_grow(t) != VG_OK) goto out;
    const char *copy = slab_copy(t, s, len);
    if (!copy) goto out;
    e = probe(t->slots, t->mask, hash, s, len); /* the table may have moved */
    *e = (slot_t){.hash = hash, .len = len, .s = copy};
    t->count++;
    t->bytes += len + 1;
    res = copy;
out:
    pthread_mutex_unlock(&t->mu);
    return res;
}

size_t vg_strtab_count(const vg_strtab_t *t)
{
    if (!t) return 0;
    vg_strtab_t *m = (vg_strtab_t *)t; /* locking does not change the contents */
    pthread_mutex_lock(&m->mu);
    size_t n = m->count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t vg_strtab_bytes(const vg_strtab_t *t)
{
    if (!t) return 0;
    vg_strtab_t *m = (vg_strtab_t *)t;
    pthread_mutex_lock(&m->mu);
    size_t n = m->bytes;
    pthread_mutex_unlock(&m->mu);
    return n;
}
