/*
 * test_config.c - YAML documents with positions and schema decoding.
 *
 * A small test schema exercises every field type; error cases are a table
 * of (YAML, expected message substring) so adding a case is one line.
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

#include "vigil/alloc.h"
#include "vigil/config.h"

struct item {
    const char *name;
    int64_t every_ms;
};

struct test_cfg {
    const char *name;
    const char *mode;
    int flag;
    int64_t count;
    uint64_t limit;
    double ratio;
    int64_t interval_ms;
    uint64_t max_bytes;
    vg_label_t *labels;
    size_t nlabels;
    const char **paths;
    size_t npaths;
    vg_kv_t *props;
    size_t nprops;
    struct item *items;
    size_t nitems;
    int64_t inner_ms;
    const char *custom;
};

static vg_err_t parse_upper(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *n, void *field, void *obj)
{
    const char *s = "DEFAULT";
    if (n && vg_cfg_get_string(ctx, n, &s)) return ctx->err ? ctx->err->code : VG_ECONFIG;
    char *u = vg_arena_strdup(ctx->arena, s);
    if (!u) return VG_ENOMEM;
    for (char *p = u; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p -= 32;
    *(const char **)field = u;
    return VG_OK;
}

#define T(f) offsetof(struct test_cfg, f)
static const vg_cfg_field_t item_schema[] = {
    {.key = "name",
     .type = VG_CFG_T_STRING,
     .offset = offsetof(struct item, name),
     .flags = VG_CFG_REQUIRED,
     .doc = "item name"},
    {.key = "every",
     .type = VG_CFG_T_DURATION,
     .offset = offsetof(struct item, every_ms),
     .def = "1m",
     .doc = "item period"},
    {0},
};

static const vg_cfg_field_t inner_schema[] = {
    {.key = "wait",
     .type = VG_CFG_T_DURATION,
     .offset = T(inner_ms),
     .def = "5s",
     .max = "1h",
     .doc = "nested duration"},
    {0},
};

static const vg_cfg_field_t test_schema[] = {
    {.key = "name", .type = VG_CFG_T_STRING, .offset = T(name), .def = "anon", .doc = "a name"},
    {.key = "mode",
     .type = VG_CFG_T_STRING,
     .offset = T(mode),
     .def = "fast",
     .choices = "fast|slow",
     .doc = "a choice"},
    {.key = "flag", .type = VG_CFG_T_BOOL, .offset = T(flag), .def = "true", .doc = "a bool"},
    {.key = "count",
     .type = VG_CFG_T_INT,
     .offset = T(count),
     .def = "-3",
     .min = "-10",
     .max = "10",
     .doc = "an int"},
    {.key = "limit", .type = VG_CFG_T_UINT, .offset = T(limit), .def = "100", .doc = "a uint"},
    {.key = "ratio",
     .type = VG_CFG_T_DOUBLE,
     .offset = T(ratio),
     .def = "0.5",
     .min = "0",
     .max = "1",
     .doc = "a double"},
    {.key = "interval",
     .type = VG_CFG_T_DURATION,
     .offset = T(interval_ms),
     .def = "30s",
     .min = "1s",
     .doc = "a duration"},
    {.key = "max_bytes",
     .type = VG_CFG_T_SIZE,
     .offset = T(max_bytes),
     .def = "1GiB",
     .doc = "a size"},
    {.key = "labels",
     .type = VG_CFG_T_LABELS,
     .offset = T(labels),
     .count_offset = T(nlabels),
     .doc = "labels"},
    {.key = "paths",
     .type = VG_CFG_T_STRINGS,
     .offset = T(paths),
     .count_offset = T(npaths),
     .doc = "strings"},
    {.key = "props",
     .type = VG_CFG_T_KVMAP,
     .offset = T(props),
     .count_offset = T(nprops),
     .doc = "kv"},
    {.key = "items",
     .type = VG_CFG_T_LIST,
     .offset = T(items),
     .count_offset = T(nitems),
     .sub = item_schema,
     .elem_size = sizeof(struct item),
     .doc = "list"},
    {.key = "inner", .type = VG_CFG_T_SECTION, .sub = inner_schema, .doc = "section"},
    {.key = "custom",
     .type = VG_CFG_T_CUSTOM,
     .offset = T(custom),
     .parse = parse_upper,
     .type_doc = "shouted string",
     .doc = "custom"},
    {.key = "later", .type = VG_CFG_T_CUSTOM, .parse = vg_cfg_unsupported, .doc = "unsupported"},
    {0},
};

/* Parse and decode yaml into *c; the arena is returned for freeing. */
static vg_err_t load(const char *yaml, struct test_cfg *c, vg_arena_t **arena, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    memset(c, 0, sizeof *c);
    *arena = vg_arena_new(0);
    vg_err_t rc = vg_cfg_doc_parse("t.yml", yaml, strlen(yaml), &doc, err);
    if (!rc) {
        vg_cfg_ctx_t ctx;
        vg_cfg_ctx_init(&ctx, doc, *arena, err);
        rc = vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), test_schema, c);
    }
    vg_cfg_doc_free(doc);
    return rc;
}

static void test_defaults(void **state)
{
    static const char *const empties[] = {"", "# only a comment\n", "---\n", "~\n", "{}\n"};
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        struct test_cfg c;
        vg_arena_t *a;
        vg_error err = {0};
        if (load(empties[i], &c, &a, &err)) fail_msg("%s: %s", empties[i], err.msg);
        assert_string_equal(c.name, "anon");
        assert_string_equal(c.mode, "fast");
        assert_int_equal(c.flag, 1);
        assert_int_equal(c.count, -3);
        assert_int_equal(c.limit, 100);
        assert_true(c.ratio == 0.5);
        assert_int_equal(c.interval_ms, 30000);
        assert_int_equal(c.max_bytes, UINT64_C(1) << 30);
        assert_null(c.labels);
        assert_int_equal(c.nlabels, 0);
        assert_int_equal(c.npaths, 0);
        assert_int_equal(c.nprops, 0);
        assert_int_equal(c.nitems, 0);
        assert_int_equal(c.inner_ms, 5000);
        assert_string_equal(c.custom, "DEFAULT");
        vg_arena_free(a);
    }
}

static void test_full(void **state)
{
    const char *yaml = "name: \"svc\"\n"
                       "mode: slow\n"
                       "flag: no\n"
                       "count: 7\n"
                       "limit: 18446744073709551615\n"
                       "ratio: 1e-1\n"
                       "interval: 1h30m\n"
                       "max_bytes: 512 MiB\n"
                       "labels: {zone: b, app: web, empty: '', gone: }\n"
                       "paths:\n  - /a\n  - '/b c'\n"
                       "props: {z.first: '1', a.second: two}\n"
                       "items:\n  - name: one\n  - {name: two, every: 5s}\n"
                       "inner:\n  wait: 1h\n"
                       "custom: hello\n"
                       "later: []\n";
    struct test_cfg c;
    vg_arena_t *a;
    vg_error err = {0};
    if (load(yaml, &c, &a, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c.name, "svc");
    assert_string_equal(c.mode, "slow");
    assert_int_equal(c.flag, 0);
    assert_int_equal(c.count, 7);
    assert_true(c.limit == UINT64_MAX);
    assert_true(c.ratio == 0.1);
    assert_int_equal(c.interval_ms, 5400000);
    assert_int_equal(c.max_bytes, UINT64_C(512) << 20);
    /* sorted, empty values dropped */
    assert_int_equal(c.nlabels, 2);
    assert_string_equal(c.labels[0].name, "app");
    assert_string_equal(c.labels[0].value, "web");
    assert_string_equal(c.labels[1].name, "zone");
    assert_int_equal(c.npaths, 2);
    assert_string_equal(c.paths[1], "/b c");
    /* document order */
    assert_int_equal(c.nprops, 2);
    assert_string_equal(c.props[0].key, "z.first");
    assert_string_equal(c.props[0].value, "1");
    assert_string_equal(c.props[1].value, "two");
    assert_int_equal(c.nitems, 2);
    assert_string_equal(c.items[0].name, "one");
    assert_int_equal(c.items[0].every_ms, 60000);
    assert_int_equal(c.items[1].every_ms, 5000);
    assert_int_equal(c.inner_ms, 3600000);
    assert_string_equal(c.custom, "HELLO");
    vg_arena_free(a);
}

static void test_null_means_default(void **state)
{
    struct test_cfg c;
    vg_arena_t *a;
    vg_error err = {0};
    if (load("name:\ncount: ~\ninner:\ninterval: null\nitems:\n", &c, &a, &err))
        fail_msg("%s", err.msg);
    assert_string_equal(c.name, "anon");
    assert_int_equal(c.count, -3);
    assert_int_equal(c.inner_ms, 5000);
    assert_int_equal(c.interval_ms, 30000);
    vg_arena_free(a);
    /* but a quoted empty string is a value */
    if (load("name: ''\n", &c, &a, &err)) fail_msg("%s", err.msg);
    assert_string_equal(c.name, "");
    vg_arena_free(a);
}

static void test_errors(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } cases[] = {
        /* unknown keys name file:line:col and the section */
        {"name: x\nnmae: y\n", "t.yml:2:1: unknown key \"nmae\" at the top level"},
        {"inner:\n  wait: 1s\n  wiat: 2s\n", "t.yml:3:3: unknown key \"wiat\" in inner"},
        {"items:\n  - name: a\n    evry: 1s\n", "t.yml:3:5: unknown key \"evry\" in items[0]"},
        /* duplicate keys, nested or not */
        {"name: a\nname: b\n", "t.yml:2:1: duplicate key \"name\" (first at 1:1)"},
        {"inner:\n  wait: 1s\n  wait: 2s\n", "t.yml:3:3: duplicate key \"wait\""},
        {"labels: {a: 1, a: 2}\n", "duplicate key \"a\""},
        /* type errors */
        {"interval: abc\n", "t.yml:1:11: interval: expected a duration like 30s, got \"abc\""},
        {"interval: 1m1h\n", "largest first"},
        {"flag: maybe\n", "t.yml:1:7: flag: expected true or false, got \"maybe\""},
        {"count: 1.5\n", "count: expected an integer, got \"1.5\""},
        {"limit: -1\n", "limit: expected a non-negative integer"},
        {"limit: 18446744073709551616\n", "limit: expected a non-negative integer"},
        {"ratio: nan\n", "ratio: expected a number"},
        {"ratio: 0x1p-2\n", "ratio: expected a number"},
        {"max_bytes: 12 parsecs\n", "max_bytes: expected a size like 512MiB, got \"12 parsecs\""},
        {"name: [a]\n", "name: expected a string, got a list"},
        {"name: {a: b}\n", "name: expected a string, got a map"},
        {"inner: 5\n", "t.yml:1:8: inner: expected a map of key: value pairs, got \"5\""},
        {"paths: /a\n", "paths: expected a list of strings, got \"/a\""},
        {"paths: [a, [b]]\n", "t.yml:1:12: paths[1]: expected a string, got a list"},
        {"paths: [a, ~]\n", "paths[1]: expected a string, got null"},
        {"labels: [a]\n", "labels: expected a map of label names to values"},
        {"labels: {1bad: x}\n", "t.yml:1:10: labels: invalid label name \"1bad\""},
        {"labels: {a-b: x}\n", "invalid label name \"a-b\""},
        {"labels: {a: [x]}\n", "labels.a: expected a label value, got a list"},
        {"props: {a: {b: c}}\n", "props.a: expected a string, got a map"},
        {"items: {name: a}\n", "items: expected a list, got a map"},
        {"items: [x]\n", "items[0]: expected a map of key: value pairs, got \"x\""},
        {"[1, 2]\n", "t.yml:1:1: the top level: expected a map"},
        /* ranges and choices */
        {"count: 11\n", "t.yml:1:8: count: must be at most 10, got \"11\""},
        {"count: -11\n", "count: must be at least -10"},
        {"ratio: 1.5\n", "ratio: must be at most 1"},
        {"interval: 500ms\n", "interval: must be at least 1s"},
        {"inner: {wait: 2h}\n", "inner.wait: must be at most 1h"},
        {"mode: medium\n", "mode: must be one of fast|slow, got \"medium\""},
        /* required */
        {"items:\n  - every: 1s\n", "t.yml:2:5: missing required key \"name\" in items[0]"},
        {"items:\n  - name:\n", "missing required key \"name\" in items[0]"},
        /* custom callbacks and unsupported keys */
        {"custom: [x]\n", "custom: expected a string, got a list"},
        {"later: [x]\n", "t.yml:1:8: later is not supported by this build yet"},
        {"later: x\n", "t.yml:1:8: later is not supported by this build yet"},
        {"later: ''\n", "t.yml:1:8: later is not supported by this build yet"},
        /* YAML syntax and structure */
        {"a: b: c\n", "t.yml:1:5: mapping values are not allowed"},
        {"name: 'open\n", "t.yml:"},
        {"name: x\n---\nname: y\n", "t.yml:2:1: only one YAML document"},
        {"? [a]\n: b\n", "mapping key must be a non-empty string"},
        {"name: *nope\n", "unknown anchor *nope"},
        {"name: \"a\\0b\"\n", "t.yml:1:7: strings must not contain NUL"},
        {"\xff\xfe\xfd", "t.yml: byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct test_cfg c;
        vg_arena_t *a;
        vg_error err = {0};
        vg_err_t rc = load(cases[i].yaml, &c, &a, &err);
        vg_arena_free(a);
        if (rc == VG_OK) fail_msg("case %zu accepted: %s", i, cases[i].yaml);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, err.msg, cases[i].msg);
    }
}

static void test_nodes(void **state)
{
    const char *yaml = "a: &x\n  k: v\n  l: [1, 2, 3]\nb: *x\nc: ~\nd: 'null'\n";
    vg_cfg_doc_t *doc = NULL;
    vg_error err = {0};
    if (vg_cfg_doc_parse("n.yml", yaml, strlen(yaml), &doc, &err)) fail_msg("%s", err.msg);
    const vg_cfg_node_t *root = vg_cfg_doc_root(doc);
    assert_string_equal(vg_cfg_doc_name(doc), "n.yml");
    assert_int_equal(vg_cfg_node_kind(root), VG_CFG_MAP);
    assert_int_equal(vg_cfg_node_len(root), 4);
    assert_string_equal(vg_cfg_node_text(vg_cfg_map_key(root, 1)), "b");
    const vg_cfg_node_t *a = vg_cfg_map_get(root, "a");
    /* an anchored map starts at its anchor */
    assert_int_equal(vg_cfg_node_line(a), 1);
    assert_int_equal(vg_cfg_node_col(a), 4);
    assert_int_equal(vg_cfg_node_line(vg_cfg_map_get(a, "k")), 2);
    assert_int_equal(vg_cfg_node_col(vg_cfg_map_get(a, "k")), 6);
    assert_ptr_equal(vg_cfg_map_get(root, "b"), a); /* aliases share their node */
    const vg_cfg_node_t *l = vg_cfg_map_get(a, "l");
    assert_int_equal(vg_cfg_node_kind(l), VG_CFG_SEQ);
    assert_int_equal(vg_cfg_node_len(l), 3);
    assert_string_equal(vg_cfg_node_text(vg_cfg_seq_item(l, 2)), "3");
    assert_int_equal(vg_cfg_node_col(vg_cfg_seq_item(l, 2)), 13);
    assert_null(vg_cfg_seq_item(l, 3));
    assert_null(vg_cfg_map_key(l, 0));
    assert_int_equal(vg_cfg_node_kind(vg_cfg_map_get(root, "c")), VG_CFG_NULL);
    assert_string_equal(vg_cfg_node_text(vg_cfg_map_get(root, "d")), "null");
    assert_null(vg_cfg_map_get(root, "zz"));
    assert_null(vg_cfg_node_text(a));
    assert_true(vg_cfg_node_empty(NULL));
    assert_int_equal(vg_cfg_node_kind(NULL), VG_CFG_NULL);
    vg_cfg_doc_free(doc);
    vg_cfg_doc_free(NULL);
}

/* Aliases are counted at their expanded size, so "billion laughs" fails fast. */
static void test_alias_bomb(void **state)
{
    char yaml[2048];
    size_t off = (size_t)snprintf(yaml, sizeof yaml, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++)
        off += (size_t)snprintf(yaml + off, sizeof yaml - off,
                                "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                                "*a%d]\n",
                                i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1,
                                i - 1);
    vg_cfg_doc_t *doc = NULL;
    vg_error err = {0};
    assert_int_equal(vg_cfg_doc_parse("b.yml", yaml, off, &doc, &err), VG_ETOOLARGE);
    assert_non_null(strstr(err.msg, "document too large"));
    assert_null(doc);
    /* a recursive alias is refused rather than looping */
    const char *rec = "a: &r [*r]\n";
    assert_int_not_equal(vg_cfg_doc_parse("r.yml", rec, strlen(rec), &doc, &err), VG_OK);
}

static void test_depth_and_size_caps(void **state)
{
    char yaml[VG_CFG_MAX_DEPTH * 2 + 8];
    size_t n = 0;
    for (int i = 0; i < VG_CFG_MAX_DEPTH + 1; i++) yaml[n++] = '[';
    for (int i = 0; i < VG_CFG_MAX_DEPTH + 1; i++) yaml[n++] = ']';
    vg_cfg_doc_t *doc = NULL;
    vg_error err = {0};
    assert_int_equal(vg_cfg_doc_parse("d.yml", yaml, n, &doc, &err), VG_ETOOLARGE);
    assert_non_null(strstr(err.msg, "nested deeper"));
    /* exactly at the limit is fine */
    assert_int_equal(vg_cfg_doc_parse("d.yml", yaml + 1, n - 2, &doc, &err), VG_OK);
    vg_cfg_doc_free(doc);
    assert_int_equal(vg_cfg_doc_parse("big.yml", "", (size_t)VG_CFG_MAX_BYTES + 1, &doc, &err),
                     VG_ETOOLARGE);
}

static void test_load_file(void **state)
{
    char path[] = "/tmp/vigil-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "name: file\n\ncount: 99\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    vg_cfg_doc_t *doc = NULL;
    vg_error err = {0};
    assert_int_equal(vg_cfg_doc_load(path, &doc, &err), VG_OK);
    vg_arena_t *a = vg_arena_new(0);
    vg_cfg_ctx_t ctx;
    struct test_cfg c = {0};
    vg_cfg_ctx_init(&ctx, doc, a, &err);
    assert_int_equal(vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), test_schema, &c), VG_ECONFIG);
    char want[128];
    snprintf(want, sizeof want, "%s:3:8: count: must be at most 10", path);
    assert_non_null(strstr(err.msg, want));
    vg_arena_free(a);
    vg_cfg_doc_free(doc);
    unlink(path);
    assert_int_equal(vg_cfg_doc_load(path, &doc, &err), VG_EIO);
    assert_non_null(strstr(err.msg, path));
}

static void test_overlay(void **state)
{
    const char *yaml = "count: 4\n";
    vg_cfg_doc_t *doc = NULL;
    assert_int_equal(vg_cfg_doc_parse("o.yml", yaml, strlen(yaml), &doc, NULL), VG_OK);
    vg_arena_t *a = vg_arena_new(0);
    vg_cfg_ctx_t ctx;
    vg_cfg_ctx_init(&ctx, doc, a, NULL);
    struct test_cfg c = {.limit = 12345, .name = "keep"};
    ctx.overlay = 1;
    assert_int_equal(vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), test_schema, &c), VG_OK);
    assert_int_equal(c.count, 4);
    assert_int_equal(c.limit, 12345);
    assert_string_equal(c.name, "keep");
    vg_arena_free(a);
    vg_cfg_doc_free(doc);
}

static void test_schema_doc(void **state)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_cfg_schema_doc(test_schema, NULL, &b), VG_OK);
    assert_non_null(strstr(b.data, "### `(top level)`"));
    assert_non_null(strstr(b.data, "| `interval` | duration | `30s` | a duration; at least 1s |"));
    assert_non_null(
        strstr(b.data, "| `mode` | string | `fast` | a choice; one of `fast`, `slow` |"));
    assert_non_null(strstr(b.data, "### `items[]`"));
    assert_non_null(strstr(b.data, "| `name` | string | required | item name |"));
    assert_non_null(strstr(b.data, "### `inner`"));
    assert_non_null(strstr(b.data, "| `custom` | shouted string |"));
    assert_non_null(strstr(b.data, "| `count` | integer | `-3` | an int; from -10 to 10 |"));
    vg_buf_free(&b);
}

/* Every allocation failure is reported, never crashes or leaks (ASan checks). */
static void test_alloc_failures(void **state)
{
    const char *yaml = "name: x\nlabels: {a: b, c: d}\npaths: &p [a, b]\nitems: [{name: i}]\n"
                       "props: {k: v}\ninner: {wait: 1s}\n";
    for (long n = 1; n < 400; n++) {
        vg_cfg_doc_t *doc = NULL;
        vg_arena_t *a = NULL;
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_cfg_doc_parse("f.yml", yaml, strlen(yaml), &doc, NULL);
        if (!rc && (a = vg_arena_new(64))) {
            vg_cfg_ctx_t ctx;
            struct test_cfg c = {0};
            vg_cfg_ctx_init(&ctx, doc, a, NULL);
            rc = vg_cfg_decode(&ctx, vg_cfg_doc_root(doc), test_schema, &c);
        }
        vg_alloc_fail_after(0);
        vg_arena_free(a);
        vg_cfg_doc_free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_null_means_default),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_depth_and_size_caps),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_overlay),
        cmocka_unit_test(test_schema_doc),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
