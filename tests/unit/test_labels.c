/*
 * test_labels.c - label sets, series ids, the intern table and matchers.
 *
 * Expected values come from Prometheus semantics (labels.Compare, exposition
 * escaping, fully anchored regexes with '.' matching newline) so a change
 * that drifts from what Prometheus users see fails here.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <xxhash.h>

#include "vigil/alloc.h"
#include "vigil/labels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- label sets ---- */

static void test_sort(void **state)
{
    (void)state;
    vg_label_t l[] = {
        {"job", "node"}, {"__name__", "up"}, {"instance", "a:1"}, {"a", "2"}, {"a", "1"}};
    vg_labels_sort(l, N(l));
    assert_string_equal(l[0].name, "__name__");
    assert_string_equal(l[1].name, "a");
    assert_string_equal(l[1].value, "1");
    assert_string_equal(l[2].value, "2");
    assert_string_equal(l[3].name, "instance");
    assert_string_equal(l[4].name, "job");
    vg_labels_sort(NULL, 0); /* no-op */
}

static void test_name_validity(void **state)
{
    (void)state;
    assert_true(vg_label_name_valid("job", 3));
    assert_true(vg_label_name_valid("_x9", 3));
    assert_true(vg_label_name_valid("__name__", 8));
    assert_false(vg_label_name_valid("9job", 4));
    assert_false(vg_label_name_valid("a-b", 3));
    assert_false(vg_label_name_valid("a:b", 3));
    assert_false(vg_label_name_valid("", 0));
    assert_true(vg_label_name_valid("ab!", 2)); /* only n bytes count */
    assert_true(vg_metric_name_valid("node:cpu_seconds:rate5m", 23));
    assert_true(vg_metric_name_valid(":x", 2));
    assert_false(vg_metric_name_valid("1x", 2));
    assert_false(vg_metric_name_valid("a.b", 3));
}

static void expect_invalid(vg_label_t *l, size_t n, const char *needle)
{
    vg_error err = {0};
    assert_int_equal(vg_labels_validate(l, n, &err), VG_EINVAL);
    if (!strstr(err.msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_validate(void **state)
{
    (void)state;
    vg_label_t ok[] = {{"__name__", "up"}, {"instance", "a:1"}, {"job", "node"}};
    assert_int_equal(vg_labels_validate(ok, N(ok), NULL), VG_OK);
    assert_int_equal(vg_labels_validate(NULL, 0, NULL), VG_OK);

    vg_label_t first[] = {{"0job", "x"}};
    expect_invalid(first, 1, "invalid label name \"0job\"");
    vg_label_t dash[] = {{"a-b", "x"}};
    expect_invalid(dash, 1, "invalid label name");
    vg_label_t dup[] = {{"job", "a"}, {"job", "b"}};
    expect_invalid(dup, 2, "duplicate label name \"job\"");
    vg_label_t empty[] = {{"job", ""}};
    expect_invalid(empty, 1, "empty value");
    vg_label_t unsorted[] = {{"job", "a"}, {"a", "b"}};
    expect_invalid(unsorted, 2, "not sorted");
    vg_label_t badname[] = {{"__name__", "a-b"}};
    expect_invalid(badname, 1, "invalid metric name");
    vg_label_t badutf[] = {{"job", "a\xff"}};
    expect_invalid(badutf, 1, "UTF-8");
    vg_label_t utf[] = {{"city", "Z\xc3\xbcrich"}};
    assert_int_equal(vg_labels_validate(utf, 1, NULL), VG_OK);
}

static void test_hash(void **state)
{
    (void)state;
    vg_label_t a[] = {{"job", "node"}, {"__name__", "up"}, {"instance", "a:1"}};
    vg_label_t b[] = {{"instance", "a:1"}, {"job", "node"}, {"__name__", "up"}};
    vg_labels_sort(a, N(a));
    vg_labels_sort(b, N(b));
    assert_int_equal(vg_labels_hash(a, N(a)), vg_labels_hash(b, N(b)));
    /* Stable across runs and builds: XXH3-64 of "a\xffb\xff", no seed. */
    vg_label_t one[] = {{"a", "b"}};
    assert_int_equal(vg_labels_hash(one, 1), XXH3_64bits("a\xff"
                                                         "b\xff",
                                                         4));
    /* The separator keeps ("ab","c") apart from ("a","bc"). */
    vg_label_t x[] = {{"ab", "c"}}, y[] = {{"a", "bc"}};
    assert_int_not_equal(vg_labels_hash(x, 1), vg_labels_hash(y, 1));
    vg_label_t c[] = {{"__name__", "up"}, {"instance", "a:2"}, {"job", "node"}};
    assert_int_not_equal(vg_labels_hash(a, 3), vg_labels_hash(c, 3));
}

/* Sets too long for the stack buffer are hashed in streaming mode and must
 * give the digest of the same concatenated bytes. */
static void test_hash_long(void **state)
{
    (void)state;
    static char big[3000], mid[600], cat[8192];
    memset(big, 'v', sizeof(big) - 1);
    memset(mid, 'm', sizeof(mid) - 1);
    vg_label_t sets[][2] = {
        {{"a", big}, {"b", "x"}}, {{"k", mid}, {"z", mid}}, {{"k", mid}, {"z", "q"}}};
    for (size_t i = 0; i < N(sets); i++) {
        size_t n = 0;
        for (int j = 0; j < 2; j++) {
            n += (size_t)sprintf(cat + n, "%s\xff%s\xff", sets[i][j].name, sets[i][j].value);
        }
        assert_int_equal(vg_labels_hash(sets[i], 2), XXH3_64bits(cat, n));
    }
    assert_int_not_equal(vg_labels_hash(sets[1], 2), vg_labels_hash(sets[2], 2));
}

static void test_cmp(void **state)
{
    (void)state;
    vg_label_t a[] = {{"a", "1"}, {"b", "2"}};
    vg_label_t b[] = {{"a", "1"}, {"b", "3"}};
    vg_label_t c[] = {{"a", "1"}};
    vg_label_t d[] = {{"a", "1"}, {"c", "0"}};
    assert_int_equal(vg_labels_cmp(a, 2, a, 2), 0);
    assert_true(vg_labels_cmp(a, 2, b, 2) < 0);
    assert_true(vg_labels_cmp(b, 2, a, 2) > 0);
    assert_true(vg_labels_cmp(c, 1, a, 2) < 0); /* prefix sorts first */
    assert_true(vg_labels_cmp(a, 2, c, 1) > 0);
    assert_true(vg_labels_cmp(a, 2, d, 2) < 0); /* names before values */
    assert_int_equal(vg_labels_cmp(NULL, 0, NULL, 0), 0);
}

static void test_get(void **state)
{
    (void)state;
    vg_label_t l[] = {{"__name__", "up"}, {"job", "node"}};
    assert_string_equal(vg_labels_get(l, 2, "job"), "node");
    assert_string_equal(vg_labels_get(l, 2, VG_METRIC_NAME), "up");
    assert_null(vg_labels_get(l, 2, "instance"));
    assert_null(vg_labels_get(l, 0, "job"));
}

static void expect_format(vg_label_t *l, size_t n, const char *want)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_labels_format(l, n, &b), VG_OK);
    assert_string_equal(b.data ? b.data : "", want);
    vg_buf_free(&b);
}

static void test_format(void **state)
{
    (void)state;
    vg_label_t full[] = {{"__name__", "up"}, {"instance", "a:1"}, {"job", "node"}};
    expect_format(full, 3, "up{instance=\"a:1\",job=\"node\"}");
    vg_label_t only[] = {{"__name__", "up"}};
    expect_format(only, 1, "up");
    vg_label_t noname[] = {{"a", "b"}};
    expect_format(noname, 1, "{a=\"b\"}");
    expect_format(NULL, 0, "{}");
    vg_label_t esc[] = {{"__name__", "m"}, {"v", "a\\b\"c\nd\te"}};
    expect_format(esc, 2, "m{v=\"a\\\\b\\\"c\\nd\te\"}");
    /* __name__ sorted after a name starting with an upper-case letter. */
    vg_label_t mid[] = {{"A", "1"}, {"__name__", "x"}, {"b", "2"}};
    expect_format(mid, 3, "x{A=\"1\",b=\"2\"}");
    /* A capped buffer reports VG_ETOOLARGE. */
    vg_buf b;
    vg_buf_init(&b, 5);
    assert_int_equal(vg_labels_format(full, 3, &b), VG_ETOOLARGE);
    vg_buf_free(&b);
}

/* ---- intern table ---- */

static void test_strtab(void **state)
{
    (void)state;
    vg_strtab_t *t = vg_strtab_new();
    assert_non_null(t);
    char a[] = "node", b[] = "node";
    const char *pa = vg_strtab_intern(t, a, 4);
    const char *pb = vg_strtab_intern(t, b, 4);
    assert_non_null(pa);
    assert_ptr_equal(pa, pb);
    assert_ptr_not_equal(pa, a);
    assert_string_equal(pa, "node");
    const char *pc = vg_strtab_intern(t, "nodes", 4); /* only len bytes count */
    assert_ptr_equal(pa, pc);
    const char *e1 = vg_strtab_intern(t, "", 0);
    assert_non_null(e1);
    assert_ptr_equal(e1, vg_strtab_intern(t, NULL, 0));
    assert_int_equal(vg_strtab_count(t), 2);
    assert_int_equal(vg_strtab_bytes(t), 5 + 1);

    /* Many strings: growth of table and slabs keeps earlier pointers valid. */
    char buf[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(buf, sizeof(buf), "value-%d", i);
        assert_non_null(vg_strtab_intern(t, buf, (size_t)n));
    }
    assert_ptr_equal(vg_strtab_intern(t, "node", 4), pa);
    assert_string_equal(vg_strtab_intern(t, "value-12345", 11), "value-12345");
    assert_int_equal(vg_strtab_count(t), 20002);
    /* A string larger than a slab. */
    static char big[200000];
    memset(big, 'x', sizeof(big) - 1);
    const char *pbig = vg_strtab_intern(t, big, sizeof(big) - 1);
    assert_non_null(pbig);
    assert_ptr_equal(pbig, vg_strtab_intern(t, big, sizeof(big) - 1));
    assert_ptr_equal(vg_strtab_intern(t, "node", 4), pa);
    vg_strtab_free(t);
    vg_strtab_free(NULL);
}

typedef struct intern_job {
    vg_strtab_t *t;
    const char *ptrs[2000];
} intern_job;

static void *intern_worker(void *arg)
{
    intern_job *j = arg;
    char buf[32];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(buf, sizeof(buf), "s%d", i);
        j->ptrs[i] = vg_strtab_intern(j->t, buf, (size_t)n);
    }
    return NULL;
}

static void test_strtab_threads(void **state)
{
    (void)state;
    vg_strtab_t *t = vg_strtab_new();
    intern_job a = {.t = t}, b = {.t = t};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, intern_worker, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, intern_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < 2000; i++) {
        assert_non_null(a.ptrs[i]);
        assert_ptr_equal(a.ptrs[i], b.ptrs[i]);
    }
    assert_int_equal(vg_strtab_count(t), 2000);
    vg_strtab_free(t);
}

static void test_strtab_nomem(void **state)
{
    (void)state;
    /* Fail each allocation in turn: never crash, never hand out bad pointers. */
    for (long n = 1; n < 8; n++) {
        vg_alloc_fail_after(n);
        vg_strtab_t *t = vg_strtab_new();
        if (t) {
            const char *p = vg_strtab_intern(t, "abc", 3);
            if (p) assert_string_equal(p, "abc");
        }
        vg_alloc_fail_after(0);
        vg_strtab_free(t);
    }
}

/* ---- matchers ---- */

static vg_matcher_t *mk(vg_match_op op, const char *name, const char *value)
{
    vg_matcher_t *m = NULL;
    vg_error err = {0};
    if (vg_matcher_new(op, name, value, &m, &err) != VG_OK) fail_msg("matcher: %s", err.msg);
    return m;
}

static void test_matcher_eq_neq(void **state)
{
    (void)state;
    vg_matcher_t *eq = mk(VG_MATCH_EQ, "job", "node");
    assert_true(vg_matcher_matches(eq, "node"));
    assert_false(vg_matcher_matches(eq, "nodes"));
    assert_false(vg_matcher_matches(eq, NULL));
    assert_false(vg_matcher_matches_empty(eq));
    assert_string_equal(vg_matcher_name(eq), "job");
    assert_string_equal(vg_matcher_value(eq), "node");
    assert_int_equal(vg_matcher_op(eq), VG_MATCH_EQ);
    vg_matcher_t *neq = mk(VG_MATCH_NEQ, "job", "node");
    assert_false(vg_matcher_matches(neq, "node"));
    assert_true(vg_matcher_matches(neq, "other"));
    assert_true(vg_matcher_matches(neq, NULL)); /* absent label is "" */
    assert_true(vg_matcher_matches_empty(neq));
    vg_matcher_free(eq);
    vg_matcher_free(neq);
    vg_matcher_free(NULL);
}

static void test_matcher_empty_value(void **state)
{
    (void)state;
    /* job="" selects series without the label; job!="" those with it. */
    vg_matcher_t *eq = mk(VG_MATCH_EQ, "job", "");
    assert_true(vg_matcher_matches(eq, NULL));
    assert_true(vg_matcher_matches(eq, ""));
    assert_false(vg_matcher_matches(eq, "x"));
    assert_true(vg_matcher_matches_empty(eq));
    vg_matcher_t *neq = mk(VG_MATCH_NEQ, "job", "");
    assert_false(vg_matcher_matches(neq, NULL));
    assert_true(vg_matcher_matches(neq, "x"));
    vg_matcher_t *re = mk(VG_MATCH_RE, "job", "a|");
    assert_true(vg_matcher_matches_empty(re));
    assert_true(vg_matcher_matches(re, NULL));
    assert_true(vg_matcher_matches(re, "a"));
    vg_matcher_t *nre = mk(VG_MATCH_NRE, "job", ".+");
    assert_true(vg_matcher_matches(nre, NULL));
    assert_false(vg_matcher_matches(nre, "x"));
    vg_matcher_free(eq);
    vg_matcher_free(neq);
    vg_matcher_free(re);
    vg_matcher_free(nre);
}

static void test_matcher_regex_anchored(void **state)
{
    (void)state;
    vg_matcher_t *m = mk(VG_MATCH_RE, "job", "fo+");
    assert_true(vg_matcher_matches(m, "foo"));
    assert_false(vg_matcher_matches(m, "foobar"));
    assert_false(vg_matcher_matches(m, "xfoo"));
    assert_false(vg_matcher_matches(m, "foo\n")); /* $-style newline slack is not allowed */
    vg_matcher_free(m);
    /* Alternation binds inside the anchors: "a|b" is ^(?:a|b)$, not ^a|b$. */
    m = mk(VG_MATCH_RE, "x", "foo|foobar");
    assert_true(vg_matcher_matches(m, "foobar"));
    assert_true(vg_matcher_matches(m, "foo"));
    assert_false(vg_matcher_matches(m, "foobarbaz"));
    assert_false(vg_matcher_matches(m, "xfoobar"));
    vg_matcher_free(m);
    m = mk(VG_MATCH_NRE, "job", "api-.*");
    assert_false(vg_matcher_matches(m, "api-1"));
    assert_true(vg_matcher_matches(m, "web-api-1"));
    vg_matcher_free(m);
}

static void test_matcher_dotall_utf(void **state)
{
    (void)state;
    vg_matcher_t *m = mk(VG_MATCH_RE, "msg", "a.b");
    assert_true(vg_matcher_matches(m, "a\nb"));
    assert_true(vg_matcher_matches(m, "a\xc3\xa9"
                                      "b")); /* one code point */
    assert_false(vg_matcher_matches(m, "a\xffz"
                                       "b")); /* invalid UTF-8 never crashes */
    vg_matcher_free(m);
    m = mk(VG_MATCH_RE, "msg", "x.*y");
    assert_true(vg_matcher_matches(m, "x\n\ny"));
    vg_matcher_free(m);
}

static void test_matcher_fast_paths(void **state)
{
    (void)state;
    vg_matcher_t *lit = mk(VG_MATCH_RE, "job", "foo");
    assert_true(vg_matcher_matches(lit, "foo"));
    assert_false(vg_matcher_matches(lit, "foobar"));
    assert_false(vg_matcher_matches(lit, "fo"));
    assert_false(vg_matcher_matches_empty(lit));
    vg_matcher_t *any = mk(VG_MATCH_RE, "job", ".*");
    assert_true(vg_matcher_matches(any, ""));
    assert_true(vg_matcher_matches(any, NULL));
    assert_true(vg_matcher_matches(any, "a\nb"));
    assert_true(vg_matcher_matches_empty(any));
    vg_matcher_t *plus = mk(VG_MATCH_RE, "job", ".+");
    assert_false(vg_matcher_matches(plus, ""));
    assert_true(vg_matcher_matches(plus, "\n"));
    assert_false(vg_matcher_matches_empty(plus));
    vg_matcher_t *nany = mk(VG_MATCH_NRE, "job", ".*");
    assert_false(vg_matcher_matches(nany, "x"));
    vg_matcher_t *elit = mk(VG_MATCH_RE, "job", "");
    assert_true(vg_matcher_matches(elit, NULL));
    assert_false(vg_matcher_matches(elit, "x"));
    /* A dot makes it a real regex again. */
    vg_matcher_t *dot = mk(VG_MATCH_RE, "job", "a.c");
    assert_true(vg_matcher_matches(dot, "abc"));
    vg_matcher_free(lit);
    vg_matcher_free(any);
    vg_matcher_free(plus);
    vg_matcher_free(nany);
    vg_matcher_free(elit);
    vg_matcher_free(dot);
}

static void test_matcher_bad_regex(void **state)
{
    (void)state;
    static const char *const bad[] = {"a(b", "a)(b", "*x", "[z-a]", "a\\", "\xff"};
    for (size_t i = 0; i < N(bad); i++) {
        vg_matcher_t *m = (vg_matcher_t *)1;
        vg_error err = {0};
        assert_int_equal(vg_matcher_new(VG_MATCH_RE, "job", bad[i], &m, &err), VG_EINVAL);
        assert_null(m);
        if (!strstr(err.msg, "invalid regex") || !strstr(err.msg, "label \"job\""))
            fail_msg("bad message for %zu: %s", i, err.msg);
    }
    vg_error err = {0};
    vg_matcher_t *m = NULL;
    assert_int_equal(vg_matcher_new(VG_MATCH_NRE, "job", "a(b", &m, &err), VG_EINVAL);
    assert_non_null(strstr(err.msg, "at offset 3"));
    /* '=' never compiles its value: "a(b" is an ordinary string. */
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, "job", "a(b", &m, NULL), VG_OK);
    assert_true(vg_matcher_matches(m, "a(b"));
    vg_matcher_free(m);
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, NULL, "x", &m, NULL), VG_EINVAL);
}

static void test_matcher_nomem(void **state)
{
    (void)state;
    for (long n = 1; n < 6; n++) {
        vg_matcher_t *m = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_matcher_new(VG_MATCH_RE, "job", "a+b", &m, NULL);
        vg_alloc_fail_after(0);
        if (rc == VG_OK)
            assert_true(vg_matcher_matches(m, "aab"));
        else
            assert_int_equal(rc, VG_ENOMEM);
        vg_matcher_free(m);
    }
}

typedef struct match_job {
    const vg_matcher_t *m;
    int hits;
} match_job;

static void *match_worker(void *arg)
{
    match_job *j = arg;
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(buf, sizeof(buf), "host-%d.example", i);
        j->hits += vg_matcher_matches(j->m, buf);
    }
    return NULL;
}

static void test_matcher_threads(void **state)
{
    (void)state;
    vg_matcher_t *m = mk(VG_MATCH_RE, "instance", "host-[0-9]*7\\.example");
    match_job a = {.m = m}, b = {.m = m};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, match_worker, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, match_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.hits, 500);
    assert_int_equal(b.hits, 500);
    vg_matcher_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_name_validity),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_hash_long),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_strtab_threads),
        cmocka_unit_test(test_strtab_nomem),
        cmocka_unit_test(test_matcher_eq_neq),
        cmocka_unit_test(test_matcher_empty_value),
        cmocka_unit_test(test_matcher_regex_anchored),
        cmocka_unit_test(test_matcher_dotall_utf),
        cmocka_unit_test(test_matcher_fast_paths),
        cmocka_unit_test(test_matcher_bad_regex),
        cmocka_unit_test(test_matcher_nomem),
        cmocka_unit_test(test_matcher_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
