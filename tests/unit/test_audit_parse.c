/*
 * test_audit_parse.c - audit line parsing as tables: timestamps (RFC 3339 with
 * fractions and offsets, epoch seconds and milliseconds), each dead-letter
 * reason, field mapping, custom required fields, redaction reaching both
 * the normalised fields and the re-serialised line, and a field name that a
 * redaction rule matches dead-lettering its line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audit/audit.h"

#define NOW 1700000000000LL

#define BASE                                                                                       \
    "\"user_id\":\"u1\",\"session_id\":\"s1\",\"action\":\"read\",\"resource\":\"/r\","            \
    "\"result\":\"allow\",\"ip_address\":\"10.0.0.1\""

typedef struct line_row {
    const char *line;
    vg_audit_reason want;
    int64_t ms;
} line_row;

static const line_row line_rows[] = {
    {"{\"timestamp\":\"2026-11-28T04:36:11Z\"," BASE "}", VG_AUDIT_OK, 1795840571000LL},
    {"{\"timestamp\":1795840571," BASE "}", VG_AUDIT_OK, 1795840571000LL},
    {"{\"timestamp\":1795840571123," BASE "}", VG_AUDIT_OK, 1795840571123LL},
    {"{\"timestamp\":1795840571.25," BASE "}", VG_AUDIT_OK, 1795840571250LL},
    {"{\"timestamp\":\"soon\"," BASE "}", VG_AUDIT_BAD_TIMESTAMP, 0},
    {"{\"timestamp\":true," BASE "}", VG_AUDIT_BAD_TYPE, 0},
    {"{\"timestamp\":1," BASE ",\"x\":}", VG_AUDIT_BAD_JSON, 0},
    {"[1,2]", VG_AUDIT_BAD_JSON, 0},
    {"", VG_AUDIT_BAD_JSON, 0},
    {"{\"timestamp\":1,\"timestamp\":2," BASE "}", VG_AUDIT_BAD_JSON, 0},
    {"{\"timestamp\":1," BASE ",\"n\":\"\xff\"}", VG_AUDIT_BAD_UTF8, 0},
    {"{\"timestamp\":1," BASE ",\"n\":\"\xed\xa0\x80\"}", VG_AUDIT_BAD_UTF8, 0}, /* surrogate */
    {"{\"timestamp\":1," BASE ",\"n\":\"\xc0\xaf\"}", VG_AUDIT_BAD_UTF8, 0},     /* overlong */
    {"{\"timestamp\":1,\"n\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"," BASE "}", VG_AUDIT_OK, 1000},
    {"{\"timestamp\":1,\"user_id\":\"u\"}", VG_AUDIT_MISSING_FIELD, 0},
    {"{\"timestamp\":1," BASE ",\"action\":null}", VG_AUDIT_BAD_JSON, 0}, /* duplicate key */
    {"{\"timestamp\":1,\"user_id\":{\"a\":1},\"session_id\":\"s1\",\"action\":\"read\","
     "\"resource\":\"/r\",\"result\":\"allow\",\"ip_address\":\"10.0.0.1\"}",
     VG_AUDIT_BAD_TYPE, 0},
    {"{\"timestamp\":1,\"user_id\":42,\"session_id\":\"s1\",\"action\":\"read\","
     "\"resource\":\"/r\",\"result\":\"allow\",\"ip_address\":null}",
     VG_AUDIT_MISSING_FIELD, 0},
};

static void test_lines(void **state)
{
    (void)state;
    vg_audit_schema s = {.max_line_bytes = 4096};
    for (size_t i = 0; i < sizeof line_rows / sizeof line_rows[0]; i++) {
        vg_audit_rec rec;
        vg_audit_reason why = VG_AUDIT_REASON__COUNT;
        char d[200];
        const char *l = line_rows[i].line;
        assert_int_equal(vg_audit_parse(&s, l, strlen(l), NOW, &rec, &why, d, sizeof d), VG_OK);
        if (why != line_rows[i].want)
            fail_msg("row %zu: reason %s (%s), want %s", i, vg_audit_reason_name(why), d,
                     vg_audit_reason_name(line_rows[i].want));
        if (why == VG_AUDIT_OK) {
            assert_int_equal(rec.ts_ms, line_rows[i].ms);
            assert_string_equal(rec.field[VG_AF_USER_ID], "u1");
            assert_string_equal(rec.field[VG_AF_IP_ADDRESS], "10.0.0.1");
        } else {
            assert_true(d[0] != '\0');
            assert_null(rec.json);
        }
        vg_audit_rec_clear(&rec);
    }
}

static void test_too_long(void **state)
{
    (void)state;
    vg_audit_schema s = {.max_line_bytes = 16};
    vg_audit_rec rec;
    vg_audit_reason why;
    const char *l = "{\"timestamp\":1," BASE "}";
    assert_int_equal(vg_audit_parse(&s, l, strlen(l), NOW, &rec, &why, NULL, 0), VG_OK);
    assert_int_equal(why, VG_AUDIT_TOO_LONG);
    assert_string_equal(vg_audit_reason_name(why), "too_long");
}

static void test_mapping_and_required(void **state)
{
    (void)state;
    const char *req[] = {"timestamp", "user_id", "tenant_ref"};
    vg_kv_t map[] = {{"timestamp", "ts"}, {"user_id", "uid"}};
    vg_audit_schema s = {.required = req, .nrequired = 3, .mapping = map, .nmapping = 2};
    vg_audit_rec rec;
    vg_audit_reason why;
    const char *ok = "{\"ts\":\"2026-11-28T04:36:11Z\",\"uid\":7,\"tenant_ref\":\"t\"}";
    assert_int_equal(vg_audit_parse(&s, ok, strlen(ok), NOW, &rec, &why, NULL, 0), VG_OK);
    assert_int_equal(why, VG_AUDIT_OK);
    assert_string_equal(rec.field[VG_AF_USER_ID], "7");
    assert_string_equal(rec.field[VG_AF_ACTION], ""); /* not required, absent */
    assert_int_equal(rec.ts_ms, 1795840571000LL);
    vg_audit_rec_clear(&rec);
    const char *miss = "{\"ts\":1,\"uid\":7}";
    char d[100];
    assert_int_equal(vg_audit_parse(&s, miss, strlen(miss), NOW, &rec, &why, d, sizeof d), VG_OK);
    assert_int_equal(why, VG_AUDIT_MISSING_FIELD);
    assert_non_null(strstr(d, "tenant_ref"));
    /* timestamp not required and absent: the agent's clock */
    const char *req2[] = {"user_id"};
    vg_audit_schema s2 = {.required = req2, .nrequired = 1};
    const char *nots = "{\"user_id\":\"u\"}";
    assert_int_equal(vg_audit_parse(&s2, nots, strlen(nots), NOW, &rec, &why, NULL, 0), VG_OK);
    assert_int_equal(why, VG_AUDIT_OK);
    assert_int_equal(rec.ts_ms, NOW);
    vg_audit_rec_clear(&rec);
}

static void test_redacted_record(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {{.name = "email"}, {.name = "credit_card"}};
    vg_redactor_t *r = NULL;
    assert_int_equal(vg_redactor_new(rules, 2, &r, NULL), VG_OK);
    vg_audit_schema s = {.redact = r};
    vg_audit_rec rec;
    vg_audit_reason why;
    const char *l = "{\"timestamp\":1,\"user_id\":\"jane@example.com\",\"session_id\":\"s\","
                    "\"action\":\"pay\",\"resource\":\"card 4111111111111111\",\"result\":\"ok\","
                    "\"ip_address\":\"::1\",\"note\":\"caf\\u00e9 jane@example.com\"}";
    assert_int_equal(vg_audit_parse(&s, l, strlen(l), NOW, &rec, &why, NULL, 0), VG_OK);
    assert_int_equal(why, VG_AUDIT_OK);
    assert_string_equal(rec.field[VG_AF_USER_ID], "[REDACTED]");
    assert_string_equal(rec.field[VG_AF_RESOURCE], "card [REDACTED]");
    assert_null(strstr(rec.json, "jane"));
    assert_null(strstr(rec.json, "4111"));
    assert_non_null(strstr(rec.json, "\"note\":\"caf\xc3\xa9 [REDACTED]\""));
    assert_int_equal(rec.json_len, strlen(rec.json));
    vg_audit_rec_clear(&rec);
    vg_redactor_free(r);
}

/* Field names are not rewritten: a name a value rule matches dead-letters the
 * line (fast path and reference alike), whatever its nesting. */
static void test_name_matching_a_rule(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {{.name = "email"}, {.name = "password_field"}};
    vg_redactor_t *r = NULL;
    assert_int_equal(vg_redactor_new(rules, 2, &r, NULL), VG_OK);
    vg_audit_schema s = {.required = (const char *[]){"user_id"}, .nrequired = 1, .redact = r};
    vg_audit_rec rec;
    vg_audit_reason why;
    char d[128];
    const char *bad[] = {"{\"user_id\":\"u\",\"jane@example.com\":1}",
                         "{\"user_id\":\"u\",\"n\":{\"to\":{\"x jane@example.com\":\"v\"}}}"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(vg_audit_parse(&s, bad[i], strlen(bad[i]), NOW, &rec, &why, d, sizeof d),
                         VG_OK);
        assert_int_equal(why, VG_AUDIT_BAD_JSON);
        assert_non_null(strstr(d, "field name"));
        assert_null(rec.json);
    }
    const char *ok = "{\"user_id\":\"u\",\"mail\":\"jane@example.com\",\"password\":\"p\"}";
    assert_int_equal(vg_audit_parse(&s, ok, strlen(ok), NOW, &rec, &why, d, sizeof d), VG_OK);
    assert_int_equal(why, VG_AUDIT_OK);
    assert_null(strstr(rec.json, "jane"));
    vg_audit_rec_clear(&rec);
    vg_redactor_free(r);
}

static void test_epoch(void **state)
{
    (void)state;
    assert_int_equal(vg_audit_epoch_ms(1.5), 1500);
    assert_int_equal(vg_audit_epoch_ms(1795840571123.0), 1795840571123LL);
    assert_int_equal(vg_audit_epoch_ms(1e300), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_mapping_and_required),
        cmocka_unit_test(test_redacted_record),
        cmocka_unit_test(test_name_matching_a_rule),
        cmocka_unit_test(test_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
