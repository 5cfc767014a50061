/*
 * test_relabel.c - relabeling, table-driven.
 *
 * Each case is rules + an input label set + the expected output (or DROP),
 * written as "name=value,..." strings. Expected values follow Prometheus's
 * model/relabel tests and documentation (e.g. hashmod of "baz" mod 1000 is
 * 976: MD5 bytes 8..15 big-endian; checked independently with Python's
 * hashlib). A second table checks validation messages against Prometheus's
 * wording; the rest checks the allocation contract (no malloc per apply,
 * clean failure when compiling runs out of memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "vigil/alloc.h"
#include "vigil/relabel.h"

#define SRC(...)                                                                                   \
    .source_labels = (const char *[]){__VA_ARGS__},                                                \
    .nsource_labels = sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)

typedef struct rcase {
    const char *name;
    vg_relabel_rule_t rules[3];
    size_t nrules;
    const char *in;  /* "a=1,b=2" (sorted) */
    const char *out; /* expected, or "DROP" */
} rcase;

static const rcase cases[] = {
    {"replace defaults copy a to b", {{SRC("a"), .target_label = "b"}}, 1, "a=foo", "a=foo,b=foo"},
    {"replace with groups",
     {{SRC("a"), .regex = "f(.*)", .target_label = "d", .replacement = "ch${1}-ch${1}"}},
     1,
     "a=foo,b=bar",
     "a=foo,b=bar,d=choo-choo"},
    {"replace joins sources with the separator",
     {{SRC("a", "b"), .regex = "f(.*);(.*)r", .target_label = "a", .replacement = "b${1}${2}m"}},
     1,
     "a=foo,b=bar,c=baz",
     "a=boobam,b=bar,c=baz"},
    {"custom separator",
     {{SRC("a", "b"), .separator = "--", .target_label = "c"}},
     1,
     "a=x,b=y",
     "a=x,b=y,c=x--y"},
    {"replace without a match changes nothing",
     {{SRC("a"), .regex = "o", .target_label = "b", .replacement = "hit"}},
     1,
     "a=foo",
     "a=foo"},
    {"replace to empty deletes the target",
     {{SRC("a"), .target_label = "b", .replacement = ""}},
     1,
     "a=foo,b=bar",
     "a=foo"},
    {"replace fast path from a missing label",
     {{SRC("missing"), .target_label = "env", .replacement = "prod"}},
     1,
     "a=1",
     "a=1,env=prod"},
    {"named groups",
     {{SRC("a"), .regex = "(?P<first>f)(?P<rest>.*)", .target_label = "b",
       .replacement = "${rest}-$first"}},
     1,
     "a=foo",
     "a=foo,b=oo-f"},
    {"Go Expand: $1x is the group named 1x",
     {{SRC("a"), .regex = "(f)oo", .target_label = "b",
       .replacement = "[$1x][${1}x][$$1][$][${1]"}},
     1,
     "a=foo",
     "a=foo,b=[][fx][$1][$][${1]"},
    {"unknown group number expands to empty",
     {{SRC("a"), .regex = "(f)oo", .target_label = "b", .replacement = "<$5>"}},
     1,
     "a=foo",
     "a=foo,b=<>"},
    {"target label from a group",
     {{SRC("a"), .target_label = "lbl_$1", .replacement = "x"}},
     1,
     "a=foo",
     "a=foo,lbl_foo=x"},
    {"target label expanding to an invalid name is skipped",
     {{SRC("a"), .target_label = "${1}", .replacement = "x"}},
     1,
     "a=1bad",
     "a=1bad"},
    {"regex is anchored at both ends",
     {{SRC("a"), .regex = "f", .action = "keep"}},
     1,
     "a=foo",
     "DROP"},
    {"keep on match", {{SRC("a"), .regex = "f.*", .action = "keep"}}, 1, "a=foo", "a=foo"},
    {"keep drops a non-match", {{SRC("a"), .regex = "f.*", .action = "keep"}}, 1, "a=boo", "DROP"},
    {"drop on match", {{SRC("a"), .regex = "f.*", .action = "drop"}}, 1, "a=foo", "DROP"},
    {"drop keeps a non-match", {{SRC("a"), .regex = "f.*", .action = "drop"}}, 1, "a=boo", "a=boo"},
    {"drop with the default regex drops everything",
     {{SRC("x"), .action = "drop"}},
     1,
     "a=1",
     "DROP"},
    {"drop .+ keeps a missing label",
     {{SRC("x"), .regex = ".+", .action = "drop"}},
     1,
     "a=1",
     "a=1"},
    {"action is case-insensitive",
     {{SRC("a"), .regex = "b", .action = "Keep"}},
     1,
     "a=foo",
     "DROP"},
    {"dot matches newline", {{SRC("a"), .regex = "a.b", .action = "keep"}}, 1, "a=a\nb", "a=a\nb"},
    {"$ does not match before a final newline",
     {{SRC("a"), .regex = "abc$", .action = "keep"}},
     1,
     "a=abc\n",
     "DROP"},
    {"alternation stays inside the anchors",
     {{SRC("a"), .regex = "a|b", .action = "keep"}},
     1,
     "a=ab",
     "DROP"},
    {"keepequal keeps equal",
     {{SRC("a"), .target_label = "b", .action = "keepequal"}},
     1,
     "a=x,b=x",
     "a=x,b=x"},
    {"keepequal drops different",
     {{SRC("a"), .target_label = "b", .action = "keepequal"}},
     1,
     "a=x,b=y",
     "DROP"},
    {"dropequal drops equal",
     {{SRC("a"), .target_label = "b", .action = "dropequal"}},
     1,
     "a=x,b=x",
     "DROP"},
    {"dropequal keeps different",
     {{SRC("a"), .target_label = "b", .action = "dropequal"}},
     1,
     "a=x,b=y",
     "a=x,b=y"},
    {"hashmod md5 bytes 8..15",
     {{SRC("c"), .modulus = 1000, .target_label = "d", .action = "hashmod"}},
     1,
     "a=foo,b=bar,c=baz",
     "a=foo,b=bar,c=baz,d=976"},
    {"hashmod over joined sources",
     {{SRC("a", "b"), .modulus = 10, .target_label = "shard", .action = "hashmod"}},
     1,
     "a=foo,b=bar",
     "a=foo,b=bar,shard=0"},
    {"labelmap copies matching names",
     {{.regex = "__meta_(my.*)", .replacement = "${1}", .action = "labelmap"}},
     1,
     "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc",
     "__meta_my_bar=aaa,__meta_my_baz=bbb,__meta_other=ccc,my_bar=aaa,my_baz=bbb"},
    {"labelmap default replacement",
     {{.regex = "__meta_kubernetes_pod_label_(.+)", .action = "labelmap"}},
     1,
     "__meta_kubernetes_pod_label_app=web,x=1",
     "__meta_kubernetes_pod_label_app=web,app=web,x=1"},
    {"labeldrop", {{.regex = "b.*", .action = "labeldrop"}}, 1, "a=1,b1=2,b2=3", "a=1"},
    {"labeldrop is anchored",
     {{.regex = "b", .action = "labeldrop"}},
     1,
     "a=1,b=2,bb=3",
     "a=1,bb=3"},
    {"labelkeep",
     {{.regex = "b.*|__name__", .action = "labelkeep"}},
     1,
     "__name__=m,a=1,b1=2",
     "__name__=m,b1=2"},
    {"lowercase",
     {{SRC("a"), .target_label = "a_lower", .action = "lowercase"}},
     1,
     "a=BaR",
     "a=BaR,a_lower=bar"},
    {"uppercase", {{SRC("a"), .target_label = "a", .action = "uppercase"}}, 1, "a=bAr", "a=BAR"},
    {"lowercase of non-ASCII",
     {{SRC("a"), .target_label = "b", .action = "lowercase"}},
     1,
     "a=ÄÖÜ",
     "a=ÄÖÜ,b=äöü"},
    {"lowercase of a missing label deletes the target",
     {{SRC("x"), .target_label = "a", .action = "lowercase"}},
     1,
     "a=1,b=2",
     "b=2"},
    {"rename a metric",
     {{SRC("__name__"), .regex = "old_(.*)", .target_label = "__name__", .replacement = "new_$1"}},
     1,
     "__name__=old_total,job=j",
     "__name__=new_total,job=j"},
    {"rules run in order",
     {{SRC("a"), .target_label = "tmp", .replacement = "t-$1"},
      {SRC("tmp"), .regex = "t-foo", .action = "drop"}},
     2,
     "a=foo",
     "DROP"},
    {"regex with a literal fast path",
     {{SRC("a"), .regex = "foo", .action = "keep"}},
     1,
     "a=foo",
     "a=foo"},
};

/* "a=1,b=2" into labels (strings point into buf). */
static size_t parse_set(const char *s, char *buf, size_t bufn, vg_label_t *l)
{
    size_t n = 0;
    snprintf(buf, bufn, "%s", s);
    for (char *p = buf; p && *p;) {
        char *comma = strchr(p, ','), *eq = strchr(p, '=');
        if (comma) *comma = '\0';
        *eq = '\0';
        l[n++] = (vg_label_t){p, eq + 1};
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

static void format_set(const vg_label_t *l, size_t n, char *out, size_t outn)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, outn - o, "%s%s=%s", i ? "," : "", l[i].name, l[i].value);
}

static void test_actions(void **state)
{
    vg_arena_t *a = vg_arena_new(0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const rcase *tc = &cases[c];
        vg_relabel_t *r = NULL;
        vg_error err = {0};
        if (vg_relabel_new(tc->rules, tc->nrules, &r, NULL, &err))
            fail_msg("%s: %s", tc->name, err.msg);
        char buf[512], got[512];
        vg_label_t l[32];
        size_t n = parse_set(tc->in, buf, sizeof buf, l);
        assert_true(vg_relabel_cap(r, n) <= 32);
        vg_relabel_result res = vg_relabel_apply(r, l, &n, vg_relabel_cap(r, n), a);
        if (res == VG_RELABEL_DROP)
            snprintf(got, sizeof got, "DROP");
        else if (res == VG_RELABEL_KEEP)
            format_set(l, n, got, sizeof got);
        else
            snprintf(got, sizeof got, "ERROR");
        if (strcmp(got, tc->out)) fail_msg("%s: got \"%s\", want \"%s\"", tc->name, got, tc->out);
        vg_relabel_free(r);
        vg_arena_reset(a);
    }
    vg_arena_free(a);
}

typedef struct vcase {
    vg_relabel_rule_t rule;
    const char *msg; /* exact message, "" = valid */
    const char *field;
} vcase;

static const vcase vcases[] = {
    {{.target_label = "x", .action = "hashmod"},
     "relabel configuration for hashmod requires non-zero modulus",
     "modulus"},
    {{SRC("a")},
     "relabel configuration for replace action requires 'target_label' value",
     "target_label"},
    {{SRC("a"), .action = "lowercase"},
     "relabel configuration for lowercase action requires 'target_label' value",
     "target_label"},
    {{SRC("a"), .target_label = "0bad"},
     "\"0bad\" is invalid 'target_label' for replace action",
     "target_label"},
    {{SRC("a"), .target_label = "a-b"},
     "\"a-b\" is invalid 'target_label' for replace action",
     "target_label"},
    {{SRC("a"), .target_label = "x_${1"},
     "\"x_${1\" is invalid 'target_label' for replace action",
     "target_label"},
    {{SRC("a"), .target_label = "${1}_ok"}, "", NULL},
    {{SRC("a"), .target_label = "$1"}, "", NULL},
    {{SRC("a"), .target_label = "x", .modulus = 0, .action = "hashmod"},
     "relabel configuration for hashmod requires non-zero modulus",
     "modulus"},
    {{SRC("a"), .target_label = "$1", .modulus = 2, .action = "hashmod"},
     "\"$1\" is invalid 'target_label' for hashmod action",
     "target_label"},
    {{SRC("a"), .target_label = "x", .replacement = "y", .action = "lowercase"},
     "'replacement' can not be set for lowercase action",
     "replacement"},
    {{SRC("a"), .target_label = "x", .replacement = "y", .action = "keepequal"},
     "'replacement' can not be set for keepequal action",
     "replacement"},
    {{.regex = "(.*)", .replacement = "0x", .action = "labelmap"},
     "\"0x\" is invalid 'replacement' for labelmap action",
     "replacement"},
    {{SRC("a"), .target_label = "x", .regex = "a", .action = "keepequal"},
     "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
     "action"},
    {{SRC("a"), .target_label = "x", .separator = ",", .action = "dropequal"},
     "dropequal action requires only 'source_labels' and `target_label`, and no other fields",
     "action"},
    {{SRC("a"), .regex = "a", .action = "labeldrop"},
     "labeldrop action requires only 'regex', and no other fields",
     "action"},
    {{.regex = "a", .target_label = "x", .action = "labelkeep"},
     "labelkeep action requires only 'regex', and no other fields",
     "action"},
    {{.action = "bogus"}, "unknown relabel action \"bogus\"", "action"},
    {{.action = ""}, "unknown relabel action \"\"", "action"},
    {{SRC("a"), .regex = "a)(b", .action = "keep"}, "error parsing regexp \"a)(b\"", "regex"},
    {{SRC("a"), .regex = "a)|(b", .action = "keep"}, "error parsing regexp \"a)|(b\"", "regex"},
    {{SRC("a"), .regex = "(", .action = "drop"}, "error parsing regexp \"(\"", "regex"},
    {{SRC("a"), .regex = "", .action = "drop"}, "", NULL},
};

static void test_validation(void **state)
{
    for (size_t c = 0; c < sizeof vcases / sizeof vcases[0]; c++) {
        const vcase *tc = &vcases[c];
        vg_relabel_t *r = NULL;
        vg_relabel_where_t w;
        vg_error err = {0};
        vg_relabel_rule_t rules[2] = {{SRC("a"), .action = "keep"}, tc->rule};
        vg_err_t rc = vg_relabel_new(rules, 2, &r, &w, &err);
        if (!tc->msg[0]) {
            if (rc) fail_msg("case %zu: unexpected error %s", c, err.msg);
            vg_relabel_free(r);
            continue;
        }
        assert_int_equal(rc, VG_ECONFIG);
        assert_null(r);
        if (strncmp(err.msg, tc->msg, strlen(tc->msg)))
            fail_msg("case %zu: got \"%s\", want \"%s\"", c, err.msg, tc->msg);
        assert_int_equal(w.index, 1);
        assert_string_equal(w.field, tc->field);
    }
}

/* An empty regex matches only the empty value. */
static void test_empty_regex(void **state)
{
    vg_relabel_rule_t rule = {SRC("x"), .regex = "", .action = "keep"};
    vg_relabel_t *r = NULL;
    assert_int_equal(vg_relabel_new(&rule, 1, &r, NULL, NULL), VG_OK);
    vg_arena_t *a = vg_arena_new(0);
    vg_label_t l[2] = {{"a", "1"}, {"x", "v"}};
    size_t n = 1;
    assert_int_equal(vg_relabel_apply(r, l, &n, 2, a), VG_RELABEL_KEEP);
    n = 2;
    assert_int_equal(vg_relabel_apply(r, l, &n, 2, a), VG_RELABEL_DROP);
    vg_relabel_free(r);
    vg_arena_free(a);
}

/* Growing past cap reports an error instead of writing out of bounds. */
static void test_cap(void **state)
{
    vg_relabel_rule_t rules[] = {{SRC("a"), .target_label = "b"}, {SRC("a"), .target_label = "c"}};
    vg_relabel_t *r = NULL;
    assert_int_equal(vg_relabel_new(rules, 2, &r, NULL, NULL), VG_OK);
    assert_int_equal(vg_relabel_cap(r, 1), 3);
    assert_int_equal(vg_relabel_count(r), 2);
    vg_arena_t *a = vg_arena_new(0);
    vg_label_t l[3] = {{"a", "1"}};
    size_t n = 1;
    assert_int_equal(vg_relabel_apply(r, l, &n, 2, a), VG_RELABEL_ERROR);
    n = 1;
    l[0] = (vg_label_t){"a", "1"};
    assert_int_equal(vg_relabel_apply(r, l, &n, 3, a), VG_RELABEL_KEEP);
    assert_int_equal(n, 3);
    /* a NULL list and an empty list keep everything */
    assert_int_equal(vg_relabel_apply(NULL, l, &n, 3, a), VG_RELABEL_KEEP);
    vg_relabel_t *empty = NULL;
    assert_int_equal(vg_relabel_new(NULL, 0, &empty, NULL, NULL), VG_OK);
    assert_int_equal(vg_relabel_apply(empty, l, &n, 3, a), VG_RELABEL_KEEP);
    assert_int_equal(n, 3);
    vg_relabel_free(empty);
    vg_relabel_free(r);
    vg_arena_free(a);
}

/* Once the scratch arena has a block, applying never calls the allocator. */
static void test_no_malloc_per_apply(void **state)
{
    vg_relabel_rule_t rules[] = {
        {SRC("__name__"), .regex = "go_.*", .action = "drop"},
        {SRC("a", "b"), .regex = "(.*);(.*)", .target_label = "c", .replacement = "$2-$1"},
        {SRC("c"), .modulus = 7, .target_label = "shard", .action = "hashmod"},
        {SRC("a"), .target_label = "up", .action = "uppercase"},
        {.regex = "(a|b)", .replacement = "x_$1", .action = "labelmap"},
    };
    vg_relabel_t *r = NULL;
    assert_int_equal(vg_relabel_new(rules, 5, &r, NULL, NULL), VG_OK);
    vg_arena_t *a = vg_arena_new(64 * 1024);
    vg_label_t l[16];
    for (int round = 0; round < 2; round++) {
        if (round) vg_alloc_fail_after(1);
        for (int i = 0; i < 100; i++) {
            vg_arena_reset(a);
            size_t n = 3;
            l[0] = (vg_label_t){"__name__", "http_requests_total"};
            l[1] = (vg_label_t){"a", "foo"};
            l[2] = (vg_label_t){"b", "bar"};
            assert_int_equal(vg_relabel_apply(r, l, &n, 16, a), VG_RELABEL_KEEP);
            assert_int_equal(n, 8);
        }
        vg_alloc_fail_after(0);
    }
    assert_int_equal(vg_alloc_failures(), 0);
    char got[256];
    size_t n = 8;
    format_set(l, n, got, sizeof got);
    assert_string_equal(got, "__name__=http_requests_total,a=foo,b=bar,c=bar-foo,shard=1,up=FOO,"
                             "x_a=foo,x_b=bar");
    vg_relabel_free(r);
    vg_arena_free(a);
}

static void test_alloc_failures(void **state)
{
    vg_relabel_rule_t rules[] = {
        {SRC("a", "b"), .regex = "(?P<x>.*);(.*)", .target_label = "t_${x}", .replacement = "$2"},
        {SRC("c"), .modulus = 7, .target_label = "shard", .action = "hashmod"},
    };
    int ok = 0;
    for (long k = 1; k < 200 && !ok; k++) {
        vg_relabel_t *r = NULL;
        vg_alloc_fail_after(k);
        vg_err_t rc = vg_relabel_new(rules, 2, &r, NULL, NULL);
        vg_alloc_fail_after(0);
        if (rc == VG_OK) {
            ok = 1;
            vg_relabel_free(r);
        } else {
            assert_int_equal(rc, VG_ENOMEM);
            assert_null(r);
        }
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_empty_regex),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_no_malloc_per_apply),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
