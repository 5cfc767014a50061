/* test_buf.c - growable capped buffer: appends, caps, JSON escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "vigil/alloc.h"
#include "vigil/buf.h"

static void test_append_and_printf(void **state)
{
    (void)state;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_buf_puts(&b, "abc"), VG_OK);
    assert_int_equal(vg_buf_printf(&b, "-%d-%s", 42, "x"), VG_OK);
    assert_string_equal(b.data, "abc-42-x");
    assert_int_equal(b.len, 8);
    vg_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 10000; i++) assert_int_equal(vg_buf_putc(&b, 'z'), VG_OK);
    assert_int_equal(b.len, 10000);
    vg_buf_free(&b);
}

static void test_cap(void **state)
{
    (void)state;
    vg_buf b;
    vg_buf_init(&b, 10);
    assert_int_equal(vg_buf_puts(&b, "0123456789"), VG_OK);
    assert_int_equal(vg_buf_putc(&b, 'x'), VG_ETOOLARGE);
    assert_int_equal(vg_buf_printf(&b, "%s", "y"), VG_ETOOLARGE);
    assert_int_equal(b.len, 10);
    assert_true(b.cap <= 11);
    vg_buf_free(&b);
}

static void test_json_str(void **state)
{
    (void)state;
    vg_buf b;
    vg_buf_init(&b, 0);
    const char in[] = "a\"b\\c\nd\te\x01\x1f/é";
    assert_int_equal(vg_buf_json_str(&b, in, sizeof(in) - 1), VG_OK);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\te\\u0001\\u001f/é\"");
    vg_buf_free(&b);
}

static void test_steal_and_enomem(void **state)
{
    (void)state;
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_buf_puts(&b, "hello");
    size_t n = 0;
    char *p = vg_buf_steal(&b, &n);
    assert_int_equal(n, 5);
    assert_string_equal(p, "hello");
    assert_null(b.data);
    vg_free(p);
    vg_alloc_fail_after(1);
    assert_int_equal(vg_buf_puts(&b, "x"), VG_ENOMEM);
    vg_alloc_fail_after(0);
    vg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_printf),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_json_str),
        cmocka_unit_test(test_steal_and_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
