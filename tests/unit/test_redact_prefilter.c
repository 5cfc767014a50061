/*
 * test_redact_prefilter.c - the presets' prefilters and the field-name cache
 * (agent/audit/redact.c) never change an answer: a preset must redact
 * exactly what the same pattern given as a user rule (which has no
 * prefilter) redacts, on generated strings built to come close to matching;
 * every Luhn-valid card number with separators is caught; and a cached
 * field-name verdict equals a fresh one, also after cache collisions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "audit/redact.h"

static const char *const email_re =
    "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}";
static const char *const bearer_re = "(?i)\\bbearer\\s+[A-Za-z0-9._~+/-]+=*";
static const char *const aws_re = "\\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\\b";

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void gen(char *s, size_t cap)
{
    static const char *const pieces[] = {
        "bearer",     "BeArEr ", "Bearer\t", "bearer  x",   "bear",
        "AKIA",       "ASIA",    "AROA",     "AIPA",        "ABCDEFGHIJKLMNOP",
        "0123456789", "@",       "ops",      "example.com", ".",
        "-",          " ",       "x",        "Z9",          "\xc3\xa9",
        "=",          "+/",      "A",
    };
    size_t n = 0;
    s[0] = '\0';
    for (unsigned k = rnd(12); k > 0; k--) {
        const char *p = pieces[rnd(sizeof pieces / sizeof pieces[0])];
        size_t l = strlen(p);
        if (n + l + 1 >= cap) break;
        memcpy(s + n, p, l + 1);
        n += l;
    }
}

static void redact(vg_redactor_t *r, const char *s, char *out, size_t cap)
{
    vg_buf b;
    int changed = 0;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_redact_value(r, s, strlen(s), &b, &changed), VG_OK);
    snprintf(out, cap, "%s", changed ? (b.data ? b.data : "") : s);
    vg_buf_free(&b);
}

static void test_presets_equal_patterns(void **state)
{
    (void)state;
    const vg_redact_rule pre[] = {
        {.name = "email"}, {.name = "bearer_token"}, {.name = "aws_access_key"}};
    const vg_redact_rule user[] = {
        {.name = "e", .pattern = email_re},
        {.name = "b", .pattern = bearer_re, .replacement = "Bearer [REDACTED]"},
        {.name = "a", .pattern = aws_re}};
    vg_redactor_t *p = NULL, *u = NULL;
    char s[256], a[512], b[512];
    assert_int_equal(vg_redactor_new(pre, 3, &p, NULL), VG_OK);
    assert_int_equal(vg_redactor_new(user, 3, &u, NULL), VG_OK);
    int changed = 0;
    for (int i = 0; i < 200000; i++) {
        gen(s, sizeof s);
        redact(p, s, a, sizeof a);
        redact(u, s, b, sizeof b);
        if (strcmp(a, b)) fail_msg("\"%s\": preset \"%s\", pattern \"%s\"", s, a, b);
        changed += strcmp(a, s) != 0;
    }
    assert_true(changed > 1000); /* the generator does produce matches */
    vg_redactor_free(p);
    vg_redactor_free(u);
}

static void test_cards(void **state)
{
    (void)state;
    const vg_redact_rule pre[] = {{.name = "credit_card"}};
    vg_redactor_t *r = NULL;
    char s[128], out[256], num[24];
    assert_int_equal(vg_redactor_new(pre, 1, &r, NULL), VG_OK);
    for (int i = 0; i < 20000; i++) {
        int nd = 13 + (int)rnd(7), sum = 0;
        for (int k = 0; k < nd - 1; k++) num[k] = (char)('0' + rnd(10));
        for (int k = nd - 2, pos = 1; k >= 0; k--, pos++) { /* Luhn check digit */
            int d = num[k] - '0';
            if (pos % 2 == 1 && (d *= 2) > 9) d -= 9;
            sum += d;
        }
        num[nd - 1] = (char)('0' + (10 - sum % 10) % 10);
        size_t n = 0;
        for (unsigned pad = rnd(20); n < pad; n++)
            s[n] = (char)(rnd(2) ? 'x' : ' '); /* any offset */
        for (int k = 0; k < nd; k++) {
            s[n++] = num[k];
            if (k + 1 < nd && rnd(4) == 0) s[n++] = rnd(2) ? ' ' : '-';
        }
        snprintf(s + n, sizeof s - n, "%s", rnd(2) ? " ok" : "");
        redact(r, s, out, sizeof out);
        if (!strstr(out, "[REDACTED]")) fail_msg("card not caught: \"%s\"", s);
    }
    for (int i = 0; i < 20000; i++) { /* 12-digit chains at any offset: never a card */
        size_t n = 0;
        for (unsigned pad = rnd(20); n < pad; n++) s[n] = (char)(rnd(2) ? 'y' : '-');
        for (int k = 0; k < 12; k++) {
            s[n++] = (char)('0' + rnd(10));
            if (k < 11 && rnd(3) == 0) s[n++] = rnd(2) ? ' ' : '-';
        }
        for (unsigned pad = rnd(20); pad > 0; pad--) s[n++] = 'z';
        s[n] = '\0';
        redact(r, s, out, sizeof out);
        assert_string_equal(out, s);
    }
    redact(r, "order 123456789012 of 1-2-3-4-5-6-7-8-9-0-1-2", out, sizeof out);
    assert_string_equal(out, "order 123456789012 of 1-2-3-4-5-6-7-8-9-0-1-2");
    vg_redactor_free(r);
}

static void test_key_cache(void **state)
{
    (void)state;
    const vg_redact_rule pre[] = {{.name = "password_field"}};
    static const char *const keys[] = {"password",   "user_id",    "db_secret", "api-key",
                                       "tokens",     "x_token_y",  "passwd",    "note",
                                       "credential", "Private_Key"};
    vg_redactor_t *r = NULL, *fresh = NULL;
    char k[80];
    assert_int_equal(vg_redactor_new(pre, 1, &r, NULL), VG_OK);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "%s%s%u", keys[rnd(10)], rnd(2) ? "_" : "", rnd(300));
        if (rnd(3) == 0) k[rnd((unsigned)strlen(k))] = '\0';
        assert_int_equal(vg_redactor_new(pre, 1, &fresh, NULL), VG_OK);
        int want = vg_redact_key(fresh, k);
        vg_redactor_free(fresh);
        assert_int_equal(vg_redact_key(r, k), want);
        assert_int_equal(vg_redact_keyn(r, k, strlen(k)), want);
    }
    assert_true(vg_redact_key(r, "password"));
    assert_false(vg_redact_key(r, "user_id"));
    vg_redactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets_equal_patterns),
        cmocka_unit_test(test_cards),
        cmocka_unit_test(test_key_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
