/* test_arena.c - region allocator: alignment, big blocks, reset, failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vigil/alloc.h"
#include "vigil/arena.h"

static void test_alloc_align_reset(void **state)
{
    (void)state;
    vg_arena_t *a = vg_arena_new(256);
    assert_non_null(a);
    for (int i = 1; i < 200; i++) {
        unsigned char *p = vg_arena_alloc(a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, (size_t)i);
    }
    char *big = vg_arena_alloc(a, 10000); /* own block */
    assert_non_null(big);
    memset(big, 1, 10000);
    char *s = vg_arena_sprintf(a, "%s-%d", "x", 7);
    assert_string_equal(s, "x-7");
    assert_string_equal(vg_arena_strndup(a, "abcdef", 3), "abc");
    assert_true(vg_arena_used(a) > 10000);
    vg_arena_reset(a);
    assert_int_equal(vg_arena_used(a), 0);
    char *z = vg_arena_calloc(a, 64);
    for (int i = 0; i < 64; i++) assert_int_equal(z[i], 0);
    vg_arena_free(a);
    vg_arena_free(NULL);
}

static void test_enomem(void **state)
{
    (void)state;
    vg_arena_t *a = vg_arena_new(64);
    vg_alloc_fail_after(1);
    assert_null(vg_arena_alloc(a, 10));
    vg_alloc_fail_after(0);
    assert_non_null(vg_arena_alloc(a, 10));
    vg_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_align_reset),
        cmocka_unit_test(test_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
