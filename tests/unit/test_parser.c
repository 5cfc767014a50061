/*
 * test_parser.c - the PromQL parser and printer as tables: valid queries
 * with the canonical text Prometheus's String() prints for them, invalid
 * ones with the exact "line:col: parse error: ..." promtool reports, the
 * function table, step-invariant marking, and every expression of the
 * upstream promqltest corpus (parsed, printed, parsed again, printed again:
 * the two prints must agree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "promql/engine.h"
#include "promql/functions_table.h"
#include "promql/parser_int.h"

typedef struct vcase {
    const char *in, *out; /* out NULL: prints as the input */
} vcase;

static const vcase valid[] = {
    /* literals */
    {"1", NULL},
    {"+Inf", NULL},
    {"-Inf", NULL},
    {"inF", "+Inf"},
    {"inf ^ 7", "(+Inf) ^ 7"},   /* "+Inf ^ 7" would read back as +(Inf ^ 7) */
    {"-inf ^ 2", "-(+Inf) ^ 2"}, /* -(Inf ^ 2) */
    {"(+Inf) ^ 7", NULL},
    {"2 ^ -Inf", NULL},
    {"+Inf * 2", NULL},
    {"NaN", NULL},
    {".5", "0.5"},
    {"5.", "5"},
    {"5e-3", "0.005"},
    {"5e3", "5000"},
    {"12.34e6", "1.234e+07"},
    {"1e6", "1e+06"},
    {"123456", NULL},
    {"0.0001", "0.0001"},
    {"0.00001", "1e-05"},
    {"0xc", "12"},
    {"0755", "493"},
    {"-0755", "-493"},
    {"+5.5e-3", "0.0055"},
    {"1_000", "1000"},
    {"1h", "3600"},
    {"1m30s", "90"},
    {"\"str\"", NULL},
    {"'single \\' quote'", "\"single ' quote\""},
    {"`raw\\n`", "\"raw\\\\n\""},
    {"\"\\u00e9\\x41\"", "\"\xc3\xa9"
                         "A\""},
    /* arithmetic, precedence and associativity */
    {"1 + 1", NULL},
    {"1+2*3", "1 + 2 * 3"},
    {"(1+2)*3", "(1 + 2) * 3"},
    {"2 ^ 3 ^ 4", NULL},
    {"-1^2", "-1 ^ 2"},
    {"-1*2", "-1 * 2"},
    {"-1^-2", "-1 ^ -2"},
    {"+1 + -2 * 1", "1 + -2 * 1"},
    {"1 < bool 2 - 1 * 2", NULL},
    {"1 == bool 1", NULL},
    {"-some_metric", NULL},
    {" +some_metric", "+some_metric"},
    {"foo + bar or bla and blub", NULL},
    {"foo and bar unless baz or qux", NULL},
    {"a atan2 b", NULL},
    {"a % b", NULL},
    /* vector matching */
    {"a - on(b) c", "a - on (b) c"},
    {"a - on() c", "a - on () c"},
    {"a - on(b) group_left(x) c", "a - on (b) group_left (x) c"},
    {"a - on(b) group_left(x, y) c", "a - on (b) group_left (x, y) c"},
    {"a - on(b) group_left c", "a - on (b) group_left () c"},
    {"a - on(b) group_left() (c)", "a - on (b) group_left () (c)"},
    {"a - ignoring(b) c", "a - ignoring (b) c"},
    {"a - ignoring() c", "a - c"},
    {"bar + on(foo) bla / on(baz, buz) group_right(test) blub",
     "bar + on (foo) bla / on (baz, buz) group_right (test) blub"},
    {"foo and on() bar", "foo and on () bar"},
    {"foo > bool on(a) bar", "foo > bool on (a) bar"},
    {"up > bool 0", NULL},
    {"foo * sum", NULL},
    {"a + sum", NULL},
    /* selectors */
    {"foo", NULL},
    {"foo:bar:rate5m", NULL},
    {"{__name__=\"a\"}", NULL},
    {"{\"foo\"}", "{__name__=\"foo\"}"},
    {"foo{c=\"d\", a=\"b\",}", "foo{a=\"b\",c=\"d\"}"},
    {"foo{a!=\"b\", c=~\"d\", e!~\"f\"}", "foo{a!=\"b\",c=~\"d\",e!~\"f\"}"},
    {"foo{\"a.b\"=\"c\"}", NULL},
    {"offset{step=\"1s\"}[5m]", NULL},
    {"step{offset=\"1s\"}[5m]", NULL},
    {"anchored{job=\"test\"}", NULL},
    {"a offset 1m", NULL},
    {"a offset -7m", NULL},
    {"a OFFSET 90s", "a offset 1m30s"},
    {"a offset 50", "a offset 50s"},
    {"a{c=\"d\"}[5m] offset 1m", NULL},
    {"a[12m] offset -3m", NULL},
    {"a[100]", "a[1m40s]"},
    {"a[1.5]", "a[1s500ms]"},
    {"a[5d]", NULL},
    {"a[14d]", "a[2w]"},
    {"a[365d]", "a[1y]"},
    {"a[3600000ms]", "a[1h]"},
    {"a @ 10", "a @ 10.000"},
    {"a @ -10.5", "a @ -10.500"},
    {"a[1m] @ 10", "a[1m] @ 10.000"},
    {"a @ start()", NULL},
    {"a[1m] @ end()", NULL},
    {"a @ 10 offset 5m", "a @ 10.000 offset 5m"},
    {"a offset 5m @ 10", "a @ 10.000 offset 5m"},
    {"metric @ 0 offset -50", "metric @ 0.000 offset -50s"},
    /* subqueries */
    {"a[1h:5m] offset 1m", NULL},
    {"foo[10m:]", NULL},
    {"foo{bar=\"baz\"}[10m5s:1h6ms]", NULL},
    {"min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]", NULL},
    {"some_metric OFFSET 1m [10m:5s]", "some_metric offset 1m[10m:5s]"},
    {"some_metric[10m:5s] offset 1m @ 123", "some_metric[10m:5s] @ 123.000 offset 1m"},
    {"(foo + bar{nm=\"val\"})[5m:] @ end()", NULL},
    {"sum_over_time(metric1_total[30:10] offset 3)",
     "sum_over_time(metric1_total[30s:10s] offset 3s)"},
    /* aggregations */
    {"sum by (job) (rate(x[5m]))", NULL},
    {"sum(rate(x[5m])) by (job)", "sum by (job) (rate(x[5m]))"},
    {"sum by() (x)", "sum(x)"},
    {"sum without() (x)", "sum without () (x)"},
    {"sum without(instance) (x)", "sum without (instance) (x)"},
    {"SUM BY (a) (x)", "sum by (a) (x)"},
    {"sum without(and, by, avg, count, alert, annotations)(some_metric)",
     "sum without (and, by, avg, count, alert, annotations) (some_metric)"},
    {"sum by (\"a.b\") (x)", NULL},
    {"topk(5, x)", NULL},
    {"bottomk(3, x)", NULL},
    {"quantile(0.9, x)", NULL},
    {"count_values(\"value\", x)", NULL},
    {"limitk(2, x)", NULL},
    {"limit_ratio(-0.5, x)", NULL},
    {"stddev(x) + stdvar(x) + group(x) + min(x) + max(x) + avg(x) + count(x)", NULL},
    {"sum(sum)", NULL},
    {"avg(avg) by (by)", "avg by (by) (avg)"},
    /* functions */
    {"time()", NULL},
    {"rate(some_metric[5m])", NULL},
    {"round(x, 5)", NULL},
    {"label_join(x, \"a\", \",\", \"b\", \"c\")", NULL},
    {"label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")", NULL},
    {"histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", NULL},
    {"histogram_quantiles(x, \"q\", 0.1, 0.2)", NULL},
    {"sort_by_label(x, \"a\", \"b\")", NULL},
    {"days_in_month()", NULL},
    {"vector(1)", NULL},
    {"scalar(x) * 2", NULL},
    {"start() + step() + range() - end()", NULL},
    {"min_of(3, 5)", NULL},
    {"absent_over_time(nonexistent{job=\"a\"}[1m])", NULL},
    {"double_exponential_smoothing(x[5m], 0.1, 0.5)", NULL},
    {"start", NULL},
    {"end{start=\"foo\"}", NULL},
    {"foo unless on(start) bar", "foo unless on (start) bar"},
    {"info(x{namespace=\"zzz\"}, {foo=\"bar\", bar=\"baz\"})",
     "info(x{namespace=\"zzz\"}, {bar=\"baz\",foo=\"bar\"})"},
    /* comments and whitespace */
    {"foo # comment\n + bar", "foo + bar"},
    {"\n\tsum(\n  x\n)\n", "sum(x)"},
};

typedef struct icase {
    const char *in, *err;
} icase;

static const icase invalid[] = {
    {"", "1:1: parse error: no expression found in input"},
    {"# just a comment\n\n", "1:1: parse error: no expression found in input"},
    {"1+", "1:3: parse error: unexpected end of input"},
    {".", "1:1: parse error: unexpected character: '.'"},
    {"2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\""},
    {"100..4", "1:1: parse error: bad number or duration syntax: \"100..\""},
    {"0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\""},
    {"1 /", "1:4: parse error: unexpected end of input"},
    {"*1", "1:1: parse error: unexpected <op:*>"},
    {"(1))", "1:5: parse error: unexpected right parenthesis ')'"},
    {"((1)", "1:5: parse error: unclosed left parenthesis"},
    {"(", "1:2: parse error: unclosed left parenthesis"},
    {"1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
    {"1 or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression"},
    {"1 !~ 1", "1:3: parse error: unexpected character after '!': '~'"},
    {"1 =~ 1", "1:3: parse error: unexpected character after '=': '~'"},
    {"-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type scalar "
                    "or instant vector, got \"string\""},
    {"-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type scalar "
                  "or instant vector, got \"range vector\""},
    {"@@", "1:1: parse error: unexpected <op:@>"},
    {"1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector "
                    "selector or range vector selector or a subquery"},
    {"foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times"},
    {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
    {"foo + 1 > bool 1 and bar", NULL}, /* valid: checked below for no crash */
    {"1 + bool 2", "1:3: parse error: bool modifier can only be used on comparison operators"},
    {"foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression"},
    {"foo and on(a) group_left bar", "1:1: parse error: no grouping allowed for \"and\" operation"},
    {"foo * on(a) group_left(a) bar",
     "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once"},
    {"1 + on(a) foo", "1:1: parse error: vector matching only allowed between instant vectors"},
    {"foo[5m] + 1", "1:1: parse error: binary expression must contain only scalar and instant "
                    "vector types"},
    {"1 + foo[5m]", "1:5: parse error: binary expression must contain only scalar and instant "
                    "vector types"},
    {"{}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{a=\"\"}", "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"{a=~\".*\"}",
     "1:1: parse error: vector selector must contain at least one non-empty matcher"},
    {"foo{__name__=\"bar\"}",
     "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\""},
    {"foo{a=\"b\"", "1:10: parse error: unexpected end of input inside braces"},
    {"foo{a}",
     "1:6: parse error: unexpected \"}\" in label matching, expected label matching operator"},
    {"foo{a=b}",
     "1:7: parse error: unexpected identifier \"b\" in label matching, expected string"},
    {"foo{a=\"b\" c=\"d\"}",
     "1:11: parse error: unexpected identifier \"c\" in label matching, expected \",\" or \"}\""},
    {"foo{=\"b\"}",
     "1:5: parse error: unexpected \"=\" in label matching, expected identifier or \"}\""},
    {"sum without(==)(some_metric)",
     "1:13: parse error: unexpected <op:==> in grouping opts, expected label"},
    {"sum without(,)(some_metric)",
     "1:13: parse error: unexpected \",\" in grouping opts, expected label"},
    {"sum without(foo,,)(some_metric)",
     "1:17: parse error: unexpected \",\" in grouping opts, expected label"},
    {"sum some_metric by (test)", "1:5: parse error: unexpected identifier \"some_metric\""},
    {"sum (some_metric) by test",
     "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\""},
    {"sum by (a b) (y)",
     "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\""},
    {"sum by (foo:bar) (y)",
     "1:9: parse error: unexpected metric identifier \"foo:bar\" in grouping opts, expected label"},
    {"sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided"},
    {"MIN keep_common (some_metric)", "1:5: parse error: unexpected identifier \"keep_common\""},
    {"MIN (some_metric) keep_common", "1:19: parse error: unexpected identifier \"keep_common\""},
    {"sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>"},
    {"sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>"},
    {"topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate expression "
                          "provided, expected 2, got 1"},
    {"topk(some_metric,)", "1:17: parse error: trailing commas not allowed in function call args"},
    {"topk(some_metric, other_metric)",
     "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"},
    {"count_values(5, other_metric)",
     "1:14: parse error: expected type string in aggregation parameter, got scalar"},
    {"sum(1)",
     "1:5: parse error: expected type instant vector in aggregation expression, got scalar"},
    {"sum(x y)", "1:7: parse error: unexpected identifier \"y\" in aggregation"},
    {"sum(x", "1:6: parse error: unclosed left parenthesis"},
    {"rate(some_metric[5m]) @ 1234", "1:1: parse error: @ modifier must be preceded by an instant "
                                     "vector selector or range vector selector or a subquery"},
    {"floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0"},
    {"floor(some_metric, other_metric)",
     "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2"},
    {"floor(1)",
     "1:7: parse error: expected type instant vector in call to function \"floor\", got scalar"},
    {"hour(some_metric, some_metric, some_metric)",
     "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3"},
    {"time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1"},
    {"label_join(x, \"a\")",
     "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2"},
    {"label_join(x, \"a\", \"b\", 1)",
     "1:25: parse error: expected type string in call to function \"label_join\", got scalar"},
    {"non_existent_function_far_bar()",
     "1:1: parse error: unknown function with name \"non_existent_function_far_bar\""},
    {"rate(some_metric)", "1:6: parse error: expected type range vector in call to function "
                          "\"rate\", got instant vector"},
    {"rate(x[5m],)", "1:11: parse error: trailing commas not allowed in function call args"},
    {"-=", "1:2: parse error: unexpected \"=\""},
    {"++-++-+-+-<", "1:11: parse error: unexpected <op:<>"},
    {"e-+=/(0)", "1:4: parse error: unexpected \"=\""},
    {"a>b()", "1:3: parse error: unknown function with name \"b\""},
    {"rate(avg)", "1:6: parse error: expected type range vector in call to function \"rate\", got "
                  "instant vector"},
    {"foo bar", "1:5: parse error: unexpected identifier \"bar\""},
    {"`\\``", "1:4: parse error: unterminated raw string"},
    {"\"\\", "1:1: parse error: escape sequence not terminated"},
    {"\"\\c\"", "1:1: parse error: unknown escape sequence U+0063 'c'"},
    {"\"\\x.\"", "1:1: parse error: illegal character U+002E '.' in escape sequence"},
    {"test[5d] OFFSET 10s [10m:5s]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"(foo + bar{nm=\"val\"})[5m:][10m:5s]",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
    {"rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector selectors"},
    {"(foo)[5m]", "1:6: parse error: ranges only allowed for vector selectors"},
    {"foo offset 5m[5m]", "1:14: parse error: no offset modifiers allowed before range"},
    {"foo @ 1[5m]", "1:8: parse error: no @ modifiers allowed before range"},
    {"foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"foo @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times"},
    {"foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf"},
    {"foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp"},
    {"foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp"},
    {"foo offset bar",
     "1:12: parse error: unexpected identifier \"bar\" in offset, expected number or duration"},
    {"foo[bar]", "1:5: parse error: unexpected identifier \"bar\" in subquery selector, expected "
                 "number or duration"},
    {"foo[5m 1]",
     "1:8: parse error: unexpected number \"1\" in subquery or range, expected \":\" or \"]\""},
    {"foo[5m:1m 1]",
     "1:11: parse error: unexpected number \"1\" in subquery selector, expected \"]\""},
    {"foo[5m:x]", "1:8: parse error: unexpected identifier \"x\" in subquery selector, expected "
                  "number or duration or \"]\""},
    {"foo[5x]", "1:5: parse error: bad number or duration syntax: \"5\""},
    {"foo[1.5m]", "1:5: parse error: unknown unit \".\" in duration \"1.5m\""},
    {"foo[5m5h]", "1:5: parse error: not a valid duration string: \"5m5h\""},
    {"foo[5ms5s]", "1:5: parse error: not a valid duration string: \"5ms5s\""},
    {"foo[1000000y]", "1:5: parse error: duration out of range"},
    {"1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": "
              "value out of range"},
    {"info(rate(x[5m]), target_info{foo=\"bar\"})",
     "1:19: parse error: expected label selectors only, got vector selector instead"},
    {"info(x, {foo=\"bar\"} == 1)", "1:9: parse error: expected label selectors only"},
    {"sum by", "1:7: parse error: unexpected end of input in grouping opts, expected \"(\""},
    {"sum by (a)", "1:11: parse error: unexpected end of input in aggregation"},
    {"x[5m:1m][5m:1m] + 1",
     "1:1: parse error: subquery is only allowed on instant vector, got matrix instead"},
};

static char *format(const char *in, vg_err_t *rc, vg_error *err)
{
    vg_promql_expr_t *e = NULL;
    *rc = vg_promql_parse(in, strlen(in), &e, err);
    if (*rc) return NULL;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_promql_format(e, &b), VG_OK);
    vg_promql_expr_free(e);
    return vg_buf_steal(&b, NULL);
}

static void test_valid(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        vg_error err = {0};
        vg_err_t rc;
        const char *want = valid[i].out ? valid[i].out : valid[i].in;
        char *got = format(valid[i].in, &rc, &err);
        if (rc || strcmp(got, want) != 0) {
            printf("FAIL %s\n  want %s\n  got  %s\n", valid[i].in, want, rc ? err.msg : got);
            bad++;
        }
        free(got);
    }
    assert_int_equal(bad, 0);
}

static void test_invalid(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        vg_error err = {0};
        vg_err_t rc;
        char *got = format(invalid[i].in, &rc, &err);
        if (!invalid[i].err) {
            free(got);
            continue;
        }
        if (rc != VG_EPARSE || strcmp(err.msg, invalid[i].err) != 0) {
            printf("FAIL %s\n  want %s\n  got  %s\n", invalid[i].in, invalid[i].err,
                   rc ? err.msg : got);
            bad++;
        }
        free(got);
    }
    assert_int_equal(bad, 0);
}

static void test_too_large(void **state)
{
    (void)state;
    size_t n = VG_PQ_MAX_QUERY + 1;
    char *q = malloc(n);
    assert_non_null(q);
    memset(q, 'a', n);
    vg_promql_expr_t *e = NULL;
    vg_error err = {0};
    assert_int_equal(vg_promql_parse(q, n, &e, &err), VG_ETOOLARGE);
    assert_null(e);
    free(q);
    /* deep nesting is an error, not a stack overflow */
    char deep[4200];
    memset(deep, '(', 2100);
    deep[2100] = '1';
    memset(deep + 2101, ')', 2099);
    deep[4200 - 1] = ')';
    assert_int_equal(vg_promql_parse(deep, sizeof deep, &e, &err), VG_EPARSE);
    assert_non_null(strstr(err.msg, "nested too deeply"));
}

static void test_function_table(void **state)
{
    (void)state;
    size_t n;
    const vg_pq_func *all = vg_pq_func_all(&n);
    assert_int_equal(n, VG_PQ_FN__COUNT);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(all[i].id, (int)i);
        if (i) assert_true(strcmp(all[i - 1].name, all[i].name) < 0);
        assert_ptr_equal(vg_pq_func_lookup(all[i].name), &all[i]);
        assert_true(all[i].min_args <= all[i].nargs);
    }
    const vg_pq_func *f = vg_pq_func_lookup("label_join");
    assert_int_equal(f->min_args, 3);
    assert_int_equal(f->max_args, -1);
    f = vg_pq_func_lookup("round");
    assert_int_equal(f->min_args, 1);
    assert_int_equal(f->max_args, 2);
    assert_int_equal(vg_pq_func_lookup("rate")->arg_types[0], VG_PQ_TYPE_MATRIX);
    assert_null(vg_pq_func_lookup("Rate"));
    assert_null(vg_pq_func_lookup("holt_winters"));
    assert_ptr_equal(vg_pq_func_by_id(VG_PQ_FN_TIME), vg_pq_func_lookup("time"));
    assert_null(vg_pq_func_by_id(VG_PQ_FN__COUNT));
    assert_string_equal(vg_pq_aggop_name(VG_PQ_AGG_COUNT_VALUES), "count_values");
    assert_string_equal(vg_pq_op_name(VG_PQ_OP_UNLESS), "unless");
    assert_string_equal(vg_pq_type_name(VG_PQ_TYPE_MATRIX), "range vector");
}

static void test_tree_fields(void **state)
{
    (void)state;
    const char *q = "sum by (a) (rate(x{b=~\"c\"}[5m] offset -1m)) / on(a) group_left(d) y @ 2";
    vg_promql_expr_t *e = NULL;
    vg_error err = {0};
    assert_int_equal(vg_promql_parse(q, strlen(q), &e, &err), VG_OK);
    vg_pq_node *r = e->root;
    assert_int_equal(r->kind, VG_PQ_BINARY);
    assert_int_equal(r->type, VG_PQ_TYPE_VECTOR);
    assert_int_equal(r->u.bin.matching->card, VG_PQ_CARD_MANY_TO_ONE);
    assert_string_equal(r->u.bin.matching->include[0], "d");
    vg_pq_node *agg = r->u.bin.lhs;
    assert_int_equal(agg->kind, VG_PQ_AGGREGATE);
    assert_string_equal(agg->u.agg.grouping[0], "a");
    vg_pq_node *call = agg->u.agg.expr;
    assert_int_equal(call->u.call.func->id, VG_PQ_FN_RATE);
    vg_pq_node *ms = call->u.call.args[0];
    assert_int_equal(ms->kind, VG_PQ_MATRIX_SEL);
    assert_int_equal(ms->u.sel.range_ms, 300000);
    assert_int_equal(ms->u.sel.offset_ms, -60000);
    assert_int_equal(ms->u.sel.nmatchers, 2); /* b=~"c", then __name__="x" */
    assert_string_equal(vg_matcher_name(ms->u.sel.matchers[1]), "__name__");
    assert_int_equal(ms->pos, 17);
    vg_pq_node *y = r->u.bin.rhs;
    assert_int_equal(y->kind, VG_PQ_VECTOR_SEL); /* step invariance is the evaluator's */
    assert_int_equal(y->u.sel.at_ms, 2000);
    vg_promql_expr_free(e);
    vg_promql_expr_free(NULL);
    /* set operators become many-to-many; scalar sides drop the matching */
    q = "a or b + 1";
    assert_int_equal(vg_promql_parse(q, strlen(q), &e, &err), VG_OK);
    assert_int_equal(e->root->u.bin.matching->card, VG_PQ_CARD_MANY_TO_MANY);
    assert_null(e->root->u.bin.rhs->u.bin.matching);
    vg_promql_expr_free(e);
}

static void test_literals(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *s;
    } f[] = {{0, "0"},
             {-0.0, "-0"},
             {1, "1"},
             {0.1, "0.1"},
             {1e21, "1e+21"},
             {123456, "123456"},
             {1234567, "1.234567e+06"},
             {1e-5, "1e-05"},
             {0.000123, "0.000123"},
             {2.5e-7, "2.5e-07"},
             {1.0 / 3, "0.3333333333333333"}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_pq_fmt_float(&b, f[i].v);
        assert_string_equal(b.data, f[i].s);
        vg_buf_free(&b);
    }
    static const struct {
        int64_t ms;
        const char *s;
    } d[] = {{0, "0s"},         {1, "1ms"},        {90000, "1m30s"},    {86400000, "1d"},
             {604800000, "1w"}, {691200000, "8d"}, {31536000000, "1y"}, {31536000001, "365d1ms"}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_pq_fmt_duration(&b, d[i].ms);
        assert_string_equal(b.data, d[i].s);
        vg_buf_free(&b);
    }
}

/* Every eval expression in one .test file: parse, print, parse, print. */
static void corpus_file(const char *path, int *total, int *parsed, int *bad)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t"), *q = NULL;
        s[strcspn(s, "\r\n")] = 0;
        if (strncmp(s, "eval", 4) != 0) continue;
        if ((q = strstr(s, " at "))) /* eval instant at <t> <expr> */
            q = strchr(q + 4, ' ');
        else if ((q = strstr(s, " step "))) /* eval range from a to b step s <expr> */
            q = strchr(q + 6, ' ');
        if (!q) continue;
        q++;
        (*total)++;
        vg_error err = {0};
        vg_err_t rc;
        char *once = format(q, &rc, &err);
        if (rc) continue;
        (*parsed)++;
        char *twice = format(once, &rc, &err);
        if (rc || strcmp(once, twice) != 0) {
            printf("ROUNDTRIP %s\n  1: %s\n  2: %s\n", q, once, rc ? err.msg : twice);
            (*bad)++;
        }
        free(once);
        free(twice);
    }
    fclose(f);
}

static void test_corpus(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/testdata/promql", VIGIL_SHARED_DIR);
    DIR *d = opendir(dir);
    if (!d) skip();
    struct dirent *de;
    int total = 0, parsed = 0, bad = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".test") != 0) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        corpus_file(path, &total, &parsed, &bad);
    }
    closedir(d);
    printf("promqltest corpus: %d of %d eval expressions parse\n", parsed, total);
    assert_true(total > 1000);
    assert_int_equal(parsed, total); /* the corpus's "expect fail" cases fail at evaluation */
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),       cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_too_large),   cmocka_unit_test(test_function_table),
        cmocka_unit_test(test_tree_fields), cmocka_unit_test(test_literals),
        cmocka_unit_test(test_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
