/*
 * arena.h - region allocator for per-request, per-scrape and per-config data.
 *
 * Like nginx pools: many small allocations, one reset or free at the end, so
 * parsers never have to free field by field and cannot leak on error paths.
 */
#ifndef VIGIL_ARENA_H
#define VIGIL_ARENA_H

#include <stddef.h>

typedef struct vg_arena vg_arena_t;

/* New arena whose blocks are at least block_size bytes (0 = 16 KiB). NULL on ENOMEM. */
vg_arena_t *vg_arena_new(size_t block_size);
/* Free every block. NULL is a no-op. */
void vg_arena_free(vg_arena_t *a);
/* Forget all allocations but keep the first block for reuse. */
void vg_arena_reset(vg_arena_t *a);
/* n bytes aligned to 16; NULL on ENOMEM. Lives until reset/free. */
void *vg_arena_alloc(vg_arena_t *a, size_t n);
void *vg_arena_calloc(vg_arena_t *a, size_t n);
char *vg_arena_strndup(vg_arena_t *a, const char *s, size_t n);
char *vg_arena_strdup(vg_arena_t *a, const char *s);
char *vg_arena_sprintf(vg_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes handed out since the last reset (for caps and self-metrics). */
size_t vg_arena_used(const vg_arena_t *a);

#endif
