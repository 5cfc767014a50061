/*
 * test_audit_dlq.c - dead-letter rendering: the JSON shape the collector's
 * POST /ingest/v1/dlq takes, redaction of lines that parse and of lines that
 * do not, and invalid UTF-8 turned into U+FFFD so the letter itself is valid
 * JSON. (Delivery is covered by the audit_tail integration test.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "audit/dlq.h"

static json_t *render(vg_redactor_t *r, const char *line, size_t len)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(
        vg_dlq_render(r, "team-a", "invalid_json", "detail", line, len, "1-2-3", 42, &b), VG_OK);
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, 0, &e);
    if (!j) fail_msg("not JSON: %s (%s)", b.data, e.text);
    vg_buf_free(&b);
    return j;
}

static void test_shape_and_redaction(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {{.name = "email"}, {.name = "password_field"}};
    vg_redactor_t *r = NULL;
    assert_int_equal(vg_redactor_new(rules, 2, &r, NULL), VG_OK);
    const char *bad = "{\"user\": \"a@b.io\", oops";
    json_t *j = render(r, bad, strlen(bad));
    assert_string_equal(json_string_value(json_object_get(j, "tenant")), "team-a");
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "invalid_json");
    assert_string_equal(json_string_value(json_object_get(j, "file_id")), "1-2-3");
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "line")),
                        "{\"user\": \"[REDACTED]\", oops");
    json_decref(j);
    const char *ok = "{\"user\":\"a@b.io\",\"password\":\"hunter2\"}";
    j = render(r, ok, strlen(ok));
    const char *line = json_string_value(json_object_get(j, "line"));
    assert_null(strstr(line, "a@b.io"));
    assert_null(strstr(line, "hunter2"));
    json_decref(j);
    const char *key = "{\"user\":\"u\",\"a@b.io\":1}"; /* dead-lettered for its field name */
    j = render(r, key, strlen(key));
    assert_string_equal(json_string_value(json_object_get(j, "line")),
                        "{\"user\":\"u\",\"[REDACTED]\":1}");
    json_decref(j);
    vg_redactor_free(r);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char bad[] = "x\xff\xc3\xa9y\xe2\x82";
    json_t *j = render(NULL, bad, sizeof bad - 1);
    assert_string_equal(json_string_value(json_object_get(j, "line")),
                        "x\xef\xbf\xbd\xc3\xa9y\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_redaction),
        cmocka_unit_test(test_invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
