/*
 * alloc.h - the project's allocator entry points.
 *
 * All heap allocation goes through these so a test build can make the Nth
 * allocation fail (SQLite's test_malloc, curl's torture mode) and prove that
 * every failure path cleans up. In normal builds they are thin libc wrappers.
 */
#ifndef VIGIL_ALLOC_H
#define VIGIL_ALLOC_H

#include <stddef.h>

void *vg_malloc(size_t n);
void *vg_calloc(size_t nmemb, size_t size);
void *vg_realloc(void *p, size_t n);
void vg_free(void *p);
/* Copy of s (or of its first n bytes, NUL-terminated); caller frees with vg_free. */
char *vg_strdup(const char *s);
char *vg_strndup(const char *s, size_t n);

/* Test hook: make the nth allocation from now on fail (1 = next); 0 disables. */
void vg_alloc_fail_after(long n);
/* Test hook: number of allocations that were made to fail so far. */
long vg_alloc_failures(void);

#endif
