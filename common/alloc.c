/*
 * alloc.c - libc allocation with an optional failure injector.
 *
 * The injector is a single atomic countdown: cheap enough to leave in
 * production builds, so the code that is tested is the code that ships.
 */
#include "vigil/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown;
static atomic_long fail_count;

static int should_fail(void)
{
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c <= 0) return 0;
    if (atomic_fetch_sub(&fail_countdown, 1) == 1) {
        atomic_fetch_add(&fail_count, 1);
        return 1;
    }
    return 0;
}

void *vg_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *vg_calloc(size_t nmemb, size_t size)
{
    return should_fail() ? NULL : calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *vg_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void vg_free(void *p)
{
    free(p);
}

char *vg_strndup(const char *s, size_t n)
{
    char *d = vg_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *vg_strdup(const char *s)
{
    return s ? vg_strndup(s, strlen(s)) : NULL;
}

void vg_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

long vg_alloc_failures(void)
{
    return atomic_load(&fail_count);
}
