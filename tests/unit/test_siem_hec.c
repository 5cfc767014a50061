/*
 * test_siem_hec.c - the HEC body: one event object per record, time in
 * seconds with milliseconds, metadata omitted when unset, the stored record
 * as the event object; and the siem config schema's per-type checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "siem/siem.h"

static void test_body(void **state)
{
    (void)state;
    vg_siem_output_conf c = {.name = "hec", .sourcetype = "vigil:audit", .index = "audit"};
    const char *l1 = "{\"ts_ms\":1700000000123,\"tenant\":\"acme\"}";
    const char *l2 = "{\"ts_ms\":5,\"tenant\":\"b\\\"x\"}";
    vg_siem_rec r[2] = {{"acme", 1700000000123, l1, strlen(l1)}, {"b\"x", 5, l2, strlen(l2)}};
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_siem_hec_body(&c, "h1", r, 2, &b), VG_OK);
    assert_string_equal(b.data,
                        "{\"time\":1700000000.123,\"host\":\"h1\",\"sourcetype\":\"vigil:audit\","
                        "\"index\":\"audit\",\"event\":{\"ts_ms\":1700000000123,\"tenant\":"
                        "\"acme\"}}"
                        "{\"time\":0.005,\"host\":\"h1\",\"sourcetype\":\"vigil:audit\","
                        "\"index\":\"audit\",\"event\":{\"ts_ms\":5,\"tenant\":\"b\\\"x\"}}");
    vg_buf_reset(&b);
    vg_siem_output_conf bare = {.name = "x", .source = "s\"q"};
    assert_int_equal(vg_siem_hec_body(&bare, NULL, r, 1, &b), VG_OK);
    assert_string_equal(b.data, "{\"time\":1700000000.123,\"source\":\"s\\\"q\",\"event\":"
                                "{\"ts_ms\":1700000000123,\"tenant\":\"acme\"}}");
    vg_buf_free(&b);
}

static void test_conf_names(void **state)
{
    (void)state;
    vg_siem_cfg c = {.type = "splunk_hec",
                     .url = "http://x",
                     .token = "t",
                     .batch_records = 9,
                     .timeout_ms = 100,
                     .tls_on = 1};
    vg_siem_output_conf o;
    char nb[32];
    vg_siem_conf_from_cfg(&c, 2, nb, sizeof(nb), &o);
    assert_string_equal(o.name, "splunk_hec-2");
    assert_int_equal(o.batch_records, 9);
    assert_int_equal(o.tls, 1);
    c.name = "main";
    vg_siem_conf_from_cfg(&c, 2, nb, sizeof(nb), &o);
    assert_string_equal(o.name, "main");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_conf_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
