/* test_cli.c - shared daemon flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <cmocka.h>

#include "vigil/cli.h"
#include "vigil/log.h"

static void test_flags(void **state)
{
    (void)state;
    char *argv[] = {"prog",       "--config", "a.yml",       "--listen", "127.0.0.1:1",
                    "--data-dir", "/d",       "--log-level", "warn",     NULL};
    vg_cli c;
    assert_int_equal(vg_cli_parse(9, argv, "prog", "x", &c), 0);
    assert_string_equal(c.config, "a.yml");
    assert_string_equal(c.listen, "127.0.0.1:1");
    assert_string_equal(c.data_dir, "/d");
    assert_int_equal(vg_log_threshold, VG_LOG_WARN);
    vg_log_set_level(VG_LOG_INFO);
}

static void test_bad_flags(void **state)
{
    (void)state;
    vg_cli c;
    char *a1[] = {"prog", "--nope", NULL};
    assert_int_equal(vg_cli_parse(2, a1, "prog", "x", &c), 2);
    char *a2[] = {"prog", "--log-level", "loud", NULL};
    assert_int_equal(vg_cli_parse(3, a2, "prog", "x", &c), 2);
    char *a3[] = {"prog", "stray", NULL};
    assert_int_equal(vg_cli_parse(2, a3, "prog", "x", &c), 2);
    char *a4[] = {"prog", "--version", NULL};
    assert_int_equal(vg_cli_parse(2, a4, "prog", "x", &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
