/*
 * test_selector.c - the vector-selector parser as a table of inputs and
 * expected matchers or errors (messages and positions as Prometheus
 * reports them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "promql/lex.h"
#include "promql/selector.h"

typedef struct tcase {
    const char *in;
    vg_err_t rc;
    const char *want; /* rendered matchers, or the error message */
} tcase;

static const tcase cases[] = {
    /* good */
    {"up", VG_OK, "__name__=\"up\""},
    {"  up  ", VG_OK, "__name__=\"up\""},
    {"foo:bar:total", VG_OK, "__name__=\"foo:bar:total\""},
    {"up{job=\"api\"}", VG_OK, "job=\"api\" __name__=\"up\""},
    {"foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\",}", VG_OK,
     "a=\"b\" c!=\"d\" e=~\"f.*\" g!~\"h\" __name__=\"foo\""},
    {"{__name__=\"x\"}", VG_OK, "__name__=\"x\""},
    {"{__name__=~\"bar\", __name__!~\"baz\"}", VG_OK, "__name__=~\"bar\" __name__!~\"baz\""},
    {"{\"foo\"}", VG_OK, "__name__=\"foo\""},
    {"{'foo\\'bar', 'a\\\\dos'='boo\\\\urns'}", VG_OK, "__name__=\"foo'bar\" a\\dos=\"boo\\urns\""},
    {"{\"foo\", a=`b\\n`}", VG_OK, "__name__=\"foo\" a=\"b\\n\""},
    {"foo{NaN='bc'}", VG_OK, "NaN=\"bc\" __name__=\"foo\""},
    {"foo{bar='}'}", VG_OK, "bar=\"}\" __name__=\"foo\""},
    {"x{a=\"\\x41\\101\\u00e9\\U0001F600\\t\"}", VG_OK,
     "a=\"AA\xc3\xa9\xf0\x9f\x98\x80\t\" __name__=\"x\""},
    {"sum_x{by=\"1\"}", VG_OK, "by=\"1\" __name__=\"sum_x\""},
    {"foo{x=\"\"}", VG_OK, "x=\"\" __name__=\"foo\""},
    {"up # a comment\n", VG_OK, "__name__=\"up\""},
    {"fill", VG_OK, "__name__=\"fill\""},
    /* syntax errors, Prometheus's messages and positions */
    {"", VG_EPARSE, "1:1: parse error: no expression found in input"},
    {"{", VG_EPARSE, "1:2: parse error: unexpected end of input inside braces"},
    {"}", VG_EPARSE, "1:1: parse error: unexpected character: '}'"},
    {"some{", VG_EPARSE, "1:6: parse error: unexpected end of input inside braces"},
    {"some}", VG_EPARSE, "1:5: parse error: unexpected character: '}'"},
    {"some_metric{a=b}", VG_EPARSE,
     "1:15: parse error: unexpected identifier \"b\" in label matching, expected string"},
    {"some_metric{a:b=\"b\"}", VG_EPARSE,
     "1:14: parse error: unexpected character inside braces: ':'"},
    {"foo{a*\"b\"}", VG_EPARSE, "1:6: parse error: unexpected character inside braces: '*'"},
    {"foo{a>=\"b\"}", VG_EPARSE, "1:6: parse error: unexpected character inside braces: '>'"},
    {"some_metric{a=\"\xff\"}", VG_EPARSE, "1:15: parse error: invalid UTF-8 rune"},
    {"foo{gibberish}", VG_EPARSE,
     "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{1}", VG_EPARSE, "1:5: parse error: unexpected character inside braces: '1'"},
    {"{}", VG_EPARSE,
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x=\"\"}", VG_EPARSE,
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x=~\".*\"}", VG_EPARSE,
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{x!~\".+\"}", VG_EPARSE,
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {" {x!=\"a\"}", VG_EPARSE,
     "1:2: parse error: vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}", VG_EPARSE,
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{__name__= =}", VG_EPARSE,
     "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{,}", VG_EPARSE,
     "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\""},
    {"foo{__name__ == \"bar\"}", VG_EPARSE,
     "1:15: parse error: unexpected \"=\" in label matching, expected string"},
    {"foo{__name__=\"bar\" lol}", VG_EPARSE,
     "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
    {"foo{\"a\"=}", VG_EPARSE,
     "1:9: parse error: unexpected \"}\" in label matching, expected string"},
    {"foo{a=~\"x\" =~}", VG_EPARSE,
     "1:12: parse error: unexpected <op:=~> in label matching, expected \",\" or \"}\""},
    {"foo{a=\"x\" \"a very long string\"}", VG_EPARSE,
     "1:11: parse error: unexpected string \"\\\"a very lo\"... in label matching, expected \",\" "
     "or \"}\""},
    {"foo{a=\"b}", VG_EPARSE, "1:7: parse error: unterminated quoted string"},
    {"foo{a=`b}", VG_EPARSE, "1:7: parse error: unterminated raw string"},
    {"foo{a=\"\\q\"}", VG_EPARSE, "1:7: parse error: unknown escape sequence U+0071 'q'"},
    {"foo{a=\"\\xZZ\"}", VG_EPARSE,
     "1:7: parse error: illegal character U+005A 'Z' in escape sequence"},
    {"foo{a=\"\\uD800\"}", VG_EPARSE,
     "1:7: parse error: escape sequence is an invalid Unicode code point"},
    {"foo{a='\\\"'}", VG_EPARSE, "1:7: parse error: unknown escape sequence U+0022 '\"'"},
    {"foo{a!b}", VG_EPARSE, "1:6: parse error: unexpected character after '!' inside braces: 'b'"},
    {"foo{a={}", VG_EPARSE, "1:7: parse error: unexpected left brace '{'"},
    {"x\n  {a=b}", VG_EPARSE,
     "2:6: parse error: unexpected identifier \"b\" in label matching, expected string"},
    {"foo{a=~\"(\"}", VG_EPARSE, NULL}, /* bad regex: message from the matcher */
    /* valid PromQL, but not a plain vector selector */
    {"foo[5m]", VG_EUNSUPPORTED, "1:4: only vector selectors are supported in this build"},
    {"rate(foo[5m])", VG_EUNSUPPORTED, "1:5: only vector selectors are supported in this build"},
    {"sum(up)", VG_EUNSUPPORTED, "1:1: only vector selectors are supported in this build"},
    {"up + 1", VG_EUNSUPPORTED, "1:4: only vector selectors are supported in this build"},
    {"1", VG_EUNSUPPORTED, "1:1: only vector selectors are supported in this build"},
    {"up offset 5m", VG_EUNSUPPORTED, "1:4: only vector selectors are supported in this build"},
};

static const char *op_str(vg_match_op op)
{
    switch (op) {
    case VG_MATCH_EQ: return "=";
    case VG_MATCH_NEQ: return "!=";
    case VG_MATCH_RE: return "=~";
    case VG_MATCH_NRE: return "!~";
    }
    return "?";
}

static void render(const vg_selector *s, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < s->n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s%s\"%s\"", i ? " " : "",
                                vg_matcher_name(s->m[i]), op_str(vg_matcher_op(s->m[i])),
                                vg_matcher_value(s->m[i]));
}

static void test_table(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tcase *c = &cases[i];
        vg_selector sel;
        vg_error err = {0};
        char got[512];
        vg_err_t rc = vg_selector_parse(c->in, strlen(c->in), &sel, &err);
        if (rc == VG_OK)
            render(&sel, got, sizeof got);
        else
            snprintf(got, sizeof got, "%s", err.msg);
        if (rc != c->rc || (c->want && strcmp(got, c->want) != 0)) {
            print_error("case %zu %s\n  rc %d want %d\n  got  %s\n  want %s\n", i, c->in, rc, c->rc,
                        got, c->want ? c->want : "(any)");
            failures++;
        }
        if (rc) assert_int_equal(sel.n, 0);
        vg_selector_free(&sel);
    }
    assert_int_equal(failures, 0);
}

static void test_too_large(void **state)
{
    static char big[VG_SELECTOR_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    vg_selector sel;
    assert_int_equal(vg_selector_parse(big, sizeof big - 1, &sel, NULL), VG_ETOOLARGE);
    assert_int_equal(vg_selector_parse(big, VG_SELECTOR_MAX, &sel, NULL), VG_OK);
    vg_selector_free(&sel);
}

static void test_lexer_tokens(void **state)
{
    static const char in[] = "sum by (job) (rate(a:b{x=~\"y\"}[5m] offset 1h)) >= 0.5 and on() up";
    static const vg_tok_type want[] = {
        VG_TOK_AGGR,     VG_TOK_KEYWORD,   VG_TOK_LPAREN,  VG_TOK_IDENT,        VG_TOK_RPAREN,
        VG_TOK_LPAREN,   VG_TOK_IDENT,     VG_TOK_LPAREN,  VG_TOK_METRIC_IDENT, VG_TOK_LBRACE,
        VG_TOK_IDENT,    VG_TOK_EQL_REGEX, VG_TOK_STRING,  VG_TOK_RBRACE,       VG_TOK_LBRACKET,
        VG_TOK_DURATION, VG_TOK_RBRACKET,  VG_TOK_KEYWORD, VG_TOK_DURATION,     VG_TOK_RPAREN,
        VG_TOK_RPAREN,   VG_TOK_GTE,       VG_TOK_NUMBER,  VG_TOK_OP_WORD,      VG_TOK_KEYWORD,
        VG_TOK_LPAREN,   VG_TOK_RPAREN,    VG_TOK_IDENT,   VG_TOK_EOF,
    };
    vg_lexer l;
    vg_tok t;
    vg_lex_init(&l, in, strlen(in));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        vg_lex_next(&l, &t);
        if (t.type != want[i])
            fail_msg("token %zu at %zu: got %d want %d", i, t.pos, t.type, want[i]);
    }
    char out[16];
    size_t n;
    assert_int_equal(vg_lex_unquote("`a\r\\b`", 6, out, &n), VG_OK);
    assert_string_equal(out, "a\\b"); /* raw: no escapes, \r dropped */
    assert_int_equal(vg_lex_unquote("\"\\z\"", 4, out, &n), VG_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_lexer_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
