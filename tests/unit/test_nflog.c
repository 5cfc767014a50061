/*
 * test_nflog.c - the notification log's decisions (Alertmanager's
 * DedupStage cases) and its persistence across a reopen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerting/nflog.h"
#include "vigil/alloc.h"

#define H 3600000LL

static void test_decisions(void **state)
{
    (void)state;
    vg_nflog_t *l;
    assert_int_equal(vg_nflog_open(NULL, 0, &l, NULL), VG_OK);
    uint64_t f12[] = {1, 2}, f1[] = {1}, f3[] = {3}, r2[] = {2};
    /* no entry: only firing alerts notify */
    assert_false(vg_nflog_needs_update(l, "k", NULL, 0, r2, 1, 1, H, 0));
    assert_true(vg_nflog_needs_update(l, "k", f1, 1, NULL, 0, 1, H, 0));
    assert_int_equal(vg_nflog_log(l, "k", f12, 2, NULL, 0, 1000, NULL), VG_OK);
    /* same or fewer firing, nothing resolved: wait for repeat */
    assert_false(vg_nflog_needs_update(l, "k", f12, 2, NULL, 0, 1, H, 2000));
    assert_false(vg_nflog_needs_update(l, "k", f1, 1, NULL, 0, 0, H, 2000));
    assert_false(vg_nflog_needs_update(l, "k", f12, 2, NULL, 0, 1, H, 1000 + H));
    assert_true(vg_nflog_needs_update(l, "k", f12, 2, NULL, 0, 1, H, 1001 + H));
    /* a new firing alert */
    assert_true(vg_nflog_needs_update(l, "k", f3, 1, NULL, 0, 0, H, 2000));
    /* newly resolved: only with send_resolved */
    assert_true(vg_nflog_needs_update(l, "k", f1, 1, r2, 1, 1, H, 2000));
    assert_false(vg_nflog_needs_update(l, "k", f1, 1, r2, 1, 0, H, 2000));
    /* all resolved: notify (clears the firing set) whatever send_resolved says */
    assert_true(vg_nflog_needs_update(l, "k", NULL, 0, f12, 2, 0, H, 2000));
    assert_int_equal(vg_nflog_log(l, "k", NULL, 0, f12, 2, 3000, NULL), VG_OK);
    /* fired and resolved within one interval, receiver never knew */
    assert_false(vg_nflog_needs_update(l, "k", NULL, 0, f3, 1, 1, H, 4000));
    vg_nflog_free(l);
}

static void test_persist_and_expire(void **state)
{
    (void)state;
    char dir[] = "/tmp/vg-nflog-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_nflog_t *l;
    uint64_t f[] = {0xdeadbeefcafeULL, 7};
    assert_int_equal(vg_nflog_open(dir, 10 * H, &l, NULL), VG_OK);
    assert_int_equal(vg_nflog_log(l, "{}:{a=\"b c\"}\x1fhook/webhook/0", f, 2, f, 1, 1000, NULL),
                     VG_OK);
    assert_int_equal(vg_nflog_log(l, "", NULL, 0, NULL, 0, 1000, NULL), VG_OK);
    vg_nflog_free(l);
    assert_int_equal(vg_nflog_open(dir, 10 * H, &l, NULL), VG_OK);
    assert_int_equal(vg_nflog_count(l), 2);
    assert_false(
        vg_nflog_needs_update(l, "{}:{a=\"b c\"}\x1fhook/webhook/0", f, 2, f, 1, 1, H, 2000));
    /* entries past retention are gone: an expired entry behaves as none */
    assert_true(vg_nflog_needs_update(l, "{}:{a=\"b c\"}\x1fhook/webhook/0", f, 1, NULL, 0, 1,
                                      100 * H, 1000 + 10 * H));
    vg_nflog_free(l);
    /* a corrupt file is refused, not half-loaded */
    char p[128];
    snprintf(p, sizeof(p), "%s/nflog", dir);
    FILE *fp = fopen(p, "w");
    fputs("vigil-nflog 1\nzz 1 2 x\n", fp);
    fclose(fp);
    vg_error err = {0};
    assert_int_equal(vg_nflog_open(dir, 0, &l, &err), VG_ECORRUPT);
    assert_non_null(strstr(err.msg, "line 2"));
    unlink(p);
    rmdir(dir);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    char dir[] = "/tmp/vg-nflog-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uint64_t f[] = {1, 2, 3};
    for (long n = 1; n < 40; n++) {
        vg_nflog_t *l = NULL;
        vg_alloc_fail_after(n);
        if (vg_nflog_open(dir, 0, &l, NULL) == VG_OK) {
            (void)vg_nflog_log(l, "a", f, 3, f, 1, 1000, NULL);
            (void)vg_nflog_log(l, "b", f, 1, NULL, 0, 1000, NULL);
        }
        vg_alloc_fail_after(0);
        vg_nflog_free(l);
    }
    char p[128];
    snprintf(p, sizeof(p), "%s/nflog", dir);
    unlink(p);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_persist_and_expire),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
