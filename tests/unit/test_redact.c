/*
 * test_redact.c - redaction presets and user rules, table-driven: each row is
 * a value, the rules in force and the exact expected output, so a preset that
 * over- or under-matches fails by name. Also the Luhn check, JSON walking
 * (nested values, secret-named fields, numbers), field names a value rule
 * matches (refused) and bad rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audit/redact.h"
#include "vigil/alloc.h"

typedef struct row {
    const char *preset; /* the one rule in force */
    const char *in;
    const char *want; /* NULL = unchanged */
} row_t;

static const row_t rows[] = {
    {"email", "contact jane.doe@example.com now", "contact [REDACTED] now"},
    {"email", "a@b.co and x.y+z@sub.example.org", "[REDACTED] and [REDACTED]"},
    {"email", "not an email: foo@bar", NULL},
    {"credit_card", "card 4111 1111 1111 1111 ok", "card [REDACTED] ok"},
    {"credit_card", "4111-1111-1111-1111", "[REDACTED]"},
    {"credit_card", "5500005555555559", "[REDACTED]"},
    {"credit_card", "order 4111111111111112", NULL}, /* fails Luhn */
    {"credit_card", "ts 1732768571123 id", NULL},    /* 13 digits, fails Luhn */
    {"credit_card", "short 411111111111", NULL},     /* 12 digits */
    {"bearer_token", "Authorization: Bearer eyJhbGciOi.J9x-y_z",
     "Authorization: Bearer [REDACTED]"},
    {"bearer_token", "bearer abc123==", "Bearer [REDACTED]"},
    {"bearer_token", "the bearer of news", "the Bearer [REDACTED] news"},
    {"aws_access_key", "key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED] used"},
    {"aws_access_key", "AKIAIOSFODNN7EXAMPL", NULL}, /* 15 after the prefix */
    {"email", "", NULL},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        vg_redact_rule rule = {.name = rows[i].preset};
        vg_redactor_t *r = NULL;
        vg_buf out;
        int changed = -1;
        vg_buf_init(&out, 0);
        assert_int_equal(vg_redactor_new(&rule, 1, &r, NULL), VG_OK);
        assert_int_equal(vg_redact_value(r, rows[i].in, strlen(rows[i].in), &out, &changed), VG_OK);
        if (!rows[i].want) {
            if (changed) fail_msg("row %zu (%s): changed %s", i, rows[i].preset, out.data);
        } else {
            if (!changed || strcmp(out.data, rows[i].want))
                fail_msg("row %zu (%s): got \"%s\" want \"%s\"", i, rows[i].preset,
                         changed ? out.data : rows[i].in, rows[i].want);
        }
        vg_buf_free(&out);
        vg_redactor_free(r);
    }
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(vg_redact_luhn("4111111111111111", 16));
    assert_true(vg_redact_luhn("4111 1111 1111 1111", 19));
    assert_false(vg_redact_luhn("4111111111111112", 16));
    assert_false(vg_redact_luhn("0000000000", 10)); /* too short though sum is 0 */
    assert_true(vg_redact_luhn("0000000000000", 13));
}

static void test_user_rule_and_order(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {
        {.name = "ssn", .pattern = "\\b\\d{3}-\\d{2}-\\d{4}\\b", .replacement = "XXX-XX-XXXX"},
        {.name = "email"},
    };
    vg_redactor_t *r = NULL;
    vg_buf out;
    int changed = 0;
    vg_buf_init(&out, 0);
    assert_int_equal(vg_redactor_new(rules, 2, &r, NULL), VG_OK);
    const char *in = "ssn 123-45-6789 of a@b.io";
    assert_int_equal(vg_redact_value(r, in, strlen(in), &out, &changed), VG_OK);
    assert_true(changed);
    assert_string_equal(out.data, "ssn XXX-XX-XXXX of [REDACTED]");
    vg_buf_free(&out);
    vg_redactor_free(r);
}

static void test_bad_rules(void **state)
{
    (void)state;
    vg_error err = {0};
    vg_redactor_t *r = (vg_redactor_t *)1;
    vg_redact_rule unknown = {.name = "phone"};
    assert_int_equal(vg_redactor_new(&unknown, 1, &r, &err), VG_ECONFIG);
    assert_null(r);
    assert_non_null(strstr(err.msg, "phone"));
    vg_redact_rule bad = {.name = "x", .pattern = "a(b"};
    assert_int_equal(vg_redactor_new(&bad, 1, &r, &err), VG_ECONFIG);
    assert_non_null(strstr(err.msg, "offset"));
    assert_true(vg_redact_is_preset("password_field"));
    assert_false(vg_redact_is_preset("nope"));
    vg_redactor_free(NULL);
}

static void test_json_walk(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {
        {.name = "email"}, {.name = "credit_card"}, {.name = "password_field"}};
    vg_redactor_t *r = NULL;
    size_t n = 0;
    assert_int_equal(vg_redactor_new(rules, 3, &r, NULL), VG_OK);
    json_t *j =
        json_loads("{\"u\":\"a@b.io\",\"n\":{\"list\":[\"x\",\"c@d.org\",4111111111111111]},"
                   "\"password\":12,\"db_password\":\"hunter2\",\"apiKey\":\"k\","
                   "\"passage\":\"keep\",\"k\":1732768571123}",
                   0, NULL);
    assert_non_null(j);
    assert_int_equal(vg_redact_json(r, j, &n), VG_OK);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_string_equal(
        s, "{\"u\":\"[REDACTED]\",\"n\":{\"list\":[\"x\",\"[REDACTED]\",\"[REDACTED]\"]},"
           "\"password\":\"[REDACTED]\",\"db_password\":\"[REDACTED]\","
           "\"apiKey\":\"[REDACTED]\",\"passage\":\"keep\",\"k\":1732768571123}");
    assert_int_equal(n, 6);
    free(s);
    json_decref(j);
    vg_redactor_free(r);
}

/* A name a value rule matches is refused, not rewritten; field-name rules
 * and clean names are unaffected, and the verdicts are the same when cached. */
static void test_names(void **state)
{
    (void)state;
    vg_redact_rule rules[] = {
        {.name = "email"}, {.name = "credit_card"}, {.name = "password_field"}};
    vg_redactor_t *r = NULL;
    assert_int_equal(vg_redactor_new(rules, 3, &r, NULL), VG_OK);
    for (int round = 0; round < 2; round++) {
        assert_true(vg_redact_name_leaks(r, "a@b.io", 6));
        assert_true(vg_redact_name_leaks(r, "card 4111111111111111", 21));
        assert_false(vg_redact_name_leaks(r, "card 4111111111111112", 21)); /* not Luhn */
        assert_false(vg_redact_name_leaks(r, "password", 8));
        assert_true(vg_redact_keyn(r, "password", 8));
        assert_false(vg_redact_keyn(r, "a@b.io", 6));
    }
    json_t *j = json_loads("{\"u\":\"x\",\"n\":[{\"a@b.io\":1}]}", 0, NULL);
    assert_int_equal(vg_redact_json(r, j, NULL), VG_EINVAL);
    json_decref(j);
    vg_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_user_rule_and_order),
        cmocka_unit_test(test_bad_rules),
        cmocka_unit_test(test_json_walk),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
