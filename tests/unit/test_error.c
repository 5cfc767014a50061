/* test_error.c - error codes, messages, prefixes and logfmt lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vigil/error.h"
#include "vigil/log.h"

static void test_strerror(void **state)
{
    (void)state;
    for (int c = 0; c < VG_ERR__COUNT; c++) {
        assert_non_null(vg_strerror((vg_err_t)c));
        assert_true(strlen(vg_strerror((vg_err_t)c)) > 0);
    }
    assert_string_equal(vg_strerror((vg_err_t)999), "unknown error");
    assert_true(vg_err_retryable(VG_ERETRY));
    assert_false(vg_err_retryable(VG_EPARSE));
}

static void test_error_set_prefix(void **state)
{
    (void)state;
    vg_error e = {0};
    assert_int_equal(vg_error_set(&e, VG_EPARSE, "bad %s at %d", "token", 3), VG_EPARSE);
    assert_string_equal(e.msg, "bad token at 3");
    vg_error_prefix(&e, "file %s", "a.yml");
    assert_string_equal(e.msg, "file a.yml: bad token at 3");
    assert_int_equal(vg_error_set(NULL, VG_EIO, "ignored"), VG_EIO);
    assert_string_equal(vg_error_msg(NULL, VG_EIO), "I/O error");
    vg_error empty = {0};
    assert_string_equal(vg_error_msg(&empty, VG_ENOMEM), "out of memory");
}

static void test_log_lines(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    vg_log_set_level(VG_LOG_INFO);
    char q[64];
    vg_log_info("scrape", "scrape failed", "job=%s err=%s", "node",
                vg_logq(q, sizeof(q), "a \"b\"\nc"));
    vg_log_debug("scrape", "hidden", NULL);
    vg_log_warn("spool", "disk full", NULL);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(fds[1]);
    char out[2048] = {0};
    ssize_t n = read(fds[0], out, sizeof(out) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_non_null(strstr(out, " level=info component=scrape msg=\"scrape failed\" job=node "
                                "err=\"a \\\"b\\\"\\nc\"\n"));
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "level=warn component=spool msg=\"disk full\" src=test_error.c:"));
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_int_equal(vg_log_set_level_name("debug"), VG_OK);
    assert_int_equal(vg_log_threshold, VG_LOG_DEBUG);
    assert_int_equal(vg_log_set_level_name("loud"), VG_EINVAL);
    vg_log_set_level(VG_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_error_set_prefix),
        cmocka_unit_test(test_log_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
