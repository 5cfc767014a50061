/*
 * arena.c - bump allocator over a list of blocks.
 *
 * Oversized requests get a block of their own so one big string does not
 * waste the rest of a normal block. Reset keeps only the first block.
 */
#include "vigil/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vigil/alloc.h"

struct block {
    struct block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct vg_arena {
    struct block *head;
    size_t block_size;
    size_t used;
};

vg_arena_t *vg_arena_new(size_t block_size)
{
    vg_arena_t *a = vg_calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->block_size = block_size ? block_size : 16384;
    return a;
}

void vg_arena_free(vg_arena_t *a)
{
    if (!a) return;
    struct block *b = a->head;
    while (b) {
        struct block *n = b->next;
        vg_free(b);
        b = n;
    }
    vg_free(a);
}

void vg_arena_reset(vg_arena_t *a)
{
    if (!a || !a->head) return;
    struct block *b = a->head;
    while (b->next) {
        struct block *n = b->next;
        b->next = n->next;
        vg_free(n);
    }
    b->used = 0;
    a->used = 0;
}

void *vg_arena_alloc(vg_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    struct block *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        a->used += n;
        return p;
    }
    size_t sz = n > a->block_size ? n : a->block_size;
    if (sz > SIZE_MAX - sizeof(struct block)) return NULL;
    struct block *nb = vg_malloc(sizeof(struct block) + sz);
    if (!nb) return NULL;
    nb->size = sz;
    nb->used = n;
    if (b && n > a->block_size) {
        /* keep the current block on top: it still has room for small things */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        a->head = nb;
    }
    a->used += n;
    return nb->data;
}

void *vg_arena_calloc(vg_arena_t *a, size_t n)
{
    void *p = vg_arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *vg_arena_strndup(vg_arena_t *a, const char *s, size_t n)
{
    char *d = vg_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *vg_arena_strdup(vg_arena_t *a, const char *s)
{
    return vg_arena_strndup(a, s, strlen(s));
}

char *vg_arena_sprintf(vg_arena_t *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = n < 0 ? NULL : vg_arena_alloc(a, (size_t)n + 1);
    if (d) vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}

size_t vg_arena_used(const vg_arena_t *a)
{
    return a->used;
}
