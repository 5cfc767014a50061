/*
 * test_audit_fast.c - the single-pass audit parser (agent/audit/fastpath.c)
 * must answer exactly like the jansson reference path: same reason, same
 * detail, same timestamp, same fields, byte for byte the same JSON. Checked
 * on a table of edge cases (escapes, numbers jansson rewrites, secrets,
 * duplicates, nesting) and on generated lines, valid and mutated, under
 * three schemas; plus that the plain lines really take the fast path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "audit/fastpath.h"
#include "vigil/buf.h"

#define NOW 1700000000000LL

#define BASE                                                                                       \
    "\"user_id\":\"u1\",\"session_id\":\"s1\",\"action\":\"read\",\"resource\":\"/r\","            \
    "\"result\":\"allow\",\"ip_address\":\"10.0.0.1\""

static vg_redactor_t *presets(void)
{
    static const vg_redact_rule rules[] = {{.name = "email"},
                                           {.name = "credit_card"},
                                           {.name = "bearer_token"},
                                           {.name = "aws_access_key"},
                                           {.name = "password_field"}};
    vg_redactor_t *r = NULL;
    assert_int_equal(vg_redactor_new(rules, 5, &r, NULL), VG_OK);
    return r;
}

/* Both paths on line; they must agree on everything. Returns the reason. */
static vg_audit_reason same(const vg_audit_schema *s, const char *line, size_t len)
{
    vg_audit_rec a, b;
    vg_audit_reason ra, rb;
    char da[256], db[256];
    vg_err_t ea = vg_audit_parse(s, line, len, NOW, &a, &ra, da, sizeof da);
    vg_err_t eb = vg_audit_parse_ref(s, line, len, NOW, &b, &rb, db, sizeof db);
    if (ea != eb || ra != rb || strcmp(da, db) || a.ts_ms != b.ts_ms || a.json_len != b.json_len ||
        (a.json && memcmp(a.json, b.json, a.json_len)))
        fail_msg("paths differ on %.*s\n fast: %d %s %s\n  ref: %d %s %s", (int)len, line, ra, da,
                 a.json ? a.json : "-", rb, db, b.json ? b.json : "-");
    for (int i = 0; i < VG_AF__COUNT; i++)
        if ((a.field[i] || b.field[i]) &&
            (!a.field[i] || !b.field[i] || strcmp(a.field[i], b.field[i])))
            fail_msg("field %d differs on %.*s: %s / %s", i, (int)len, line,
                     a.field[i] ? a.field[i] : "-", b.field[i] ? b.field[i] : "-");
    vg_audit_rec_clear(&a);
    vg_audit_rec_clear(&b);
    return ra;
}

static int fast_decides(const vg_audit_schema *s, const char *line)
{
    vg_audit_rec r;
    int done = 0;
    assert_int_equal(vg_audit_fast_parse(s, line, strlen(line), NOW, &r, &done), VG_OK);
    vg_audit_rec_clear(&r);
    return done;
}

static const char *const edge_lines[] = {
    "{\"timestamp\":\"2026-11-28T04:36:11.5+02:00\"," BASE "}",
    " \t{ \"timestamp\" : 1795840571 , " BASE " } \r\n",
    "{\"timestamp\":1795840571123," BASE ",\"n\":-0}",
    "{\"timestamp\":1795840571.25," BASE
    ",\"r\":[1E2,1.50,0.1,1e-7,-2.5e+30,123456789012345678901234567890.0]}",
    "{\"timestamp\":1e400," BASE "}",
    "{\"timestamp\":2e16," BASE "}",
    "{\"timestamp\":9223372036854775807," BASE "}",
    "{\"timestamp\":99999999999999999999," BASE "}",
    "{\"timestamp\":1," BASE
    ",\"e\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f\\u00e9\\u2028\\u0041\"}",
    "{\"timestamp\":1," BASE ",\"e\":\"\\u0000\"}",
    "{\"timestamp\":1," BASE ",\"e\":\"\\ud83d\\ude00\"}",
    "{\"timestamp\":1," BASE ",\"e\":\"\\ud83d\"}",
    "{\"timestamp\":1," BASE ",\"e\":\"\\x\"}",
    "{\"timestamp\":1," BASE ",\"e\":\"\\u12G4\"}",
    "{\"timestamp\":1," BASE ",\"k\\u0065y\":1,\"key\":2}",
    "{\"timestamp\":1," BASE ",\"o\":{\"a\":1,\"a\":2}}",
    "{\"timestamp\":1," BASE
    ",\"o\":{\"a\":{},\"b\":[],\"c\":[{}],\"d\":true,\"e\":false,\"f\":null}}",
    "{\"timestamp\":1," BASE ",\"d\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
    "{\"timestamp\":1," BASE
    ",\"m\":\"mail jane.doe@example.com now\",\"c\":\"4111 1111 1111 1111\"}",
    "{\"timestamp\":1," BASE
    ",\"c\":4111111111111111,\"o\":1234567890123,\"neg\":-4111111111111111}",
    "{\"timestamp\":1," BASE
    ",\"h\":\"Authorization: BeArEr abc.def-ghi==\",\"a\":\"AKIAABCDEFGHIJKLMNOP\"}",
    "{\"timestamp\":1," BASE ",\"password\":{\"x\":[1,2]},\"api_key\":12,\"db_secret\":\"s\"}",
    "{\"timestamp\":1," BASE ",\"password\":{\"x\":1,\"x\":2}}",
    "{\"timestamp\":1,\"user_id\":\"jane@example.com\",\"session_id\":\"token x\",\"action\":\"r\","
    "\"resource\":\"card 4111111111111111\",\"result\":\"ok\",\"ip_address\":\"1.2.3.4\"}",
    "{\"timestamp\":1,\"user_id\":4111111111111111,\"session_id\":\"s\",\"action\":\"r\","
    "\"resource\":\"r\",\"result\":\"ok\",\"ip_address\":\"1.2.3.4\",\"token\":\"t\"}",
    "{\"timestamp\":1,\"user_id\":\"u\",\"session_id\":\"s\",\"action\":\"r\",\"resource\":\"r\","
    "\"result\":\"ok\",\"ip_address\":1.5}",
    "{\"timestamp\":1,\"user_id\":\"u\",\"session_id\":\"s\",\"action\":\"r\",\"resource\":\"r\","
    "\"result\":\"ok\",\"ip_address\":null}",
    "{\"timestamp\":null," BASE "}",
    "{\"timestamp\":\"yesterday\"," BASE "}",
    "{\"timestamp\":1," BASE "} x",
    "{\"timestamp\":1," BASE ",}",
    "{\"timestamp\":01," BASE "}",
    "{\"timestamp\":1.," BASE "}",
    "{\"timestamp\":1," BASE ",\"t\":tru}",
    "{\"timestamp\":1," BASE ",\"t\":truex}",
    "{\"timestamp\":1," BASE ",\"raw\":\"tab\there\"}",
    "{\"timestamp\":1," BASE ",\"del\":\"\x7f\",\"u\":\"caf\xc3\xa9\"}",
    "[1]",
    "{}",
    "",
    "   ",
};

static void test_edges(void **state)
{
    (void)state;
    static const char *req[] = {"user_id"};
    static const vg_kv_t map[] = {{.key = "user_id", .value = "uid"},
                                  {.key = "timestamp", .value = "ts"}};
    vg_redactor_t *r = presets();
    vg_audit_schema schemas[] = {
        {.redact = r},
        {.redact = NULL},
        {.required = req, .nrequired = 1, .mapping = map, .nmapping = 2, .redact = r},
        {.max_line_bytes = 80, .redact = r},
    };
    for (size_t k = 0; k < sizeof schemas / sizeof schemas[0]; k++)
        for (size_t i = 0; i < sizeof edge_lines / sizeof edge_lines[0]; i++)
            same(&schemas[k], edge_lines[i], strlen(edge_lines[i]));
    assert_true(fast_decides(&schemas[0], edge_lines[0]));
    assert_true(fast_decides(&schemas[0], edge_lines[8]));  /* escapes */
    assert_true(fast_decides(&schemas[0], edge_lines[18])); /* redacted values */
    assert_true(fast_decides(&schemas[0], edge_lines[21])); /* secret-named fields */
    assert_false(fast_decides(&schemas[0], edge_lines[2])); /* -0: the reference decides */
    vg_redactor_free(r);
}

/* A small deterministic generator (xorshift), so failures reproduce. */
static uint64_t rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const atoms[] = {
    "\"plain\"",
    "\"a\\\"q\"",
    "\"\\u00e9t\\u00E9\"",
    "\"ops@example.com\"",
    "\"4111-1111-1111-1111\"",
    "\"Bearer eyJhbGciOi.x\"",
    "\"AKIAIOSFODNN7EXAMPLE\"",
    "\"\\ud800\"",
    "\"t\\tb\\n\"",
    "\"\"",
    "0",
    "-0",
    "42",
    "-17",
    "1234567890123",
    "4111111111111111",
    "1.5",
    "1e3",
    "-2.5E-3",
    "true",
    "false",
    "null",
    "\"\xe2\x82\xac\"",
    "99999999999999999999",
};
static const char *const keys[] = {"note", "token",   "password", "details",
                                   "n",    "api-key", "x\\u0041"};

static void gen_value(vg_buf *b, int depth)
{
    unsigned k = depth < 4 ? rnd(10) : 9;
    if (k == 0) {
        vg_buf_putc(b, '[');
        for (unsigned i = 0, n = rnd(4); i < n; i++) {
            if (i) vg_buf_putc(b, ',');
            gen_value(b, depth + 1);
        }
        vg_buf_putc(b, ']');
    } else if (k == 1) {
        vg_buf_putc(b, '{');
        for (unsigned i = 0, n = rnd(4); i < n; i++)
            vg_buf_printf(b, "%s\"%s%u\":", i ? "," : "", keys[rnd(7)], rnd(3)),
                gen_value(b, depth + 1);
        vg_buf_putc(b, '}');
    } else {
        vg_buf_puts(b, atoms[rnd(sizeof atoms / sizeof atoms[0])]);
    }
}

static void gen_line(vg_buf *b)
{
    static const char *ts[] = {
        "\"2026-11-28T04:36:11Z\"", "1795840571", "1795840571123", "17.5", "\"x\"", "null"};
    vg_buf_reset(b);
    vg_buf_printf(b, "{\"timestamp\":%s,%s", ts[rnd(6)], BASE);
    for (unsigned i = 0, n = rnd(6); i < n; i++) {
        vg_buf_printf(b, ",%s\"%s\"%s:", rnd(8) ? "" : " ", keys[rnd(7)], rnd(8) ? "" : " ");
        gen_value(b, 1);
    }
    vg_buf_putc(b, '}');
    for (unsigned m = rnd(3) ? 0 : 1 + rnd(2); m > 0 && b->len > 2; m--) { /* mutate */
        size_t at = rnd((unsigned)b->len);
        static const char junk[] = "{}[]\",:\\ 0-eE.u\x01";
        b->data[at] = junk[rnd(sizeof junk - 1)];
    }
}

static void test_generated(void **state)
{
    (void)state;
    static const char *req[] = {"action", "timestamp"};
    vg_redactor_t *r = presets();
    vg_audit_schema schemas[] = {
        {.redact = r}, {.redact = NULL}, {.required = req, .nrequired = 2, .redact = r}};
    vg_buf b;
    int ok = 0;
    vg_buf_init(&b, 0);
    for (int i = 0; i < 30000; i++) {
        gen_line(&b);
        ok += same(&schemas[i % 3], b.data, b.len) == VG_AUDIT_OK;
    }
    assert_true(ok > 3000); /* the generator does make valid lines */
    vg_buf_free(&b);
    vg_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
