/*
 * test_template.c - alert template expansion against what Prometheus renders.
 *
 * The cases are data: template text and the exact string a real Prometheus
 * (v2/v3, annotations read back from /api/v1/alerts) produced for the same
 * text with $value = 1234567 and no alert labels, plus cases with labels,
 * queries and the caps on hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "rules/template.h"
#include "vigil/alloc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const vg_label_t LABELS[] = {
    {"__name__", "up"}, {"instance", "host-1:9100"}, {"job", "node"}};
static const vg_label_t EXT[] = {{"cluster", "eu1"}};

static vg_err_t fake_query(void *ud, const char *q, vg_tmpl_sample **out, size_t *n, vg_error *err)
{
    (void)ud;
    static const vg_label_t a[] = {{"instance", "b"}, {"job", "x"}},
                            b[] = {{"instance", "a"}, {"job", "x"}};
    if (!strcmp(q, "fail")) return vg_error_set(err, VG_EINVAL, "parse error: bad query");
    *n = 0;
    *out = vg_calloc(2, sizeof **out);
    if (!*out) return VG_ENOMEM;
    if (strcmp(q, "up")) return VG_OK; /* only "up" has data */
    (*out)[0] = (vg_tmpl_sample){a, 2, 1.5};
    (*out)[1] = (vg_tmpl_sample){b, 2, 2048};
    *n = 2;
    return VG_OK;
}

static void fake_free(void *ud, vg_tmpl_sample *s, size_t n)
{
    (void)ud, (void)n;
    vg_free(s);
}

static char *expand_with(const char *src, const vg_tmpl_data *d)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_tmpl_expand("__alert_X", src, d, &b), VG_OK);
    if (!b.data) vg_buf_puts(&b, "");
    return b.data;
}

static void check(const char *src, const char *want, int with_labels)
{
    vg_tmpl_data d = {.value = 1234567,
                      .external_url = "http://prom:9090",
                      .query = fake_query,
                      .query_free = fake_free,
                      .external_labels = EXT,
                      .nexternal_labels = 1};
    if (with_labels) d.labels = LABELS, d.nlabels = N(LABELS);
    char *got = expand_with(src, &d);
    if (strcmp(got, want))
        fprintf(stderr, "template: %s\n  want: %s\n  got:  %s\n", src, want, got);
    assert_string_equal(got, want);
    vg_free(got);
}

/* Rendered by real Prometheus, $value = 1234567, no alert labels. */
static const struct {
    const char *src, *want;
} PROM[] = {
    {"{{ $value | humanize }} {{ humanize1024 1048576 }} {{ humanizeDuration 90 }} {{ "
     "humanizePercentage 0.1234 }} "
     "{{ humanizeTimestamp 1257894000 }}",
     "1.235M 1Mi 1m 30s 12.34% 2009-11-10 23:00:00 +0000 UTC"},
    {"{{ query \"nope_metric\" | first | value }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:1:137: "
     "executing "
     "\"__alert_X\" at <first>: error calling first: first() called on vector with no elements>"},
    {"{{ $labels.missing }}|{{ $value }}|{{ printf \"%.2f %d %q %x %v %s\" 1.5 3 \"a\" 255 2.5 "
     "\"s\" }}",
     "|1.234567e+06|1.50 3 \"a\" ff 2.5 s"},
    {"{{ index $labels \"severity\" }} {{ title \"hello world-foo\" }} {{ reReplaceAll \"(a+)b\" "
     "\"${1}X$1y\" \"aab\" }}",
     " Hello World-Foo aaX"},
    {"{{ 1 | printf \"%d\" | len }} {{ humanizeDuration 0.0015 }} {{ humanize 0.00123 }} {{ "
     "humanizeTimestamp 1257894000.5 }}",
     "1 1.5ms 1.23m 2009-11-10 23:00:00.5 +0000 UTC"},
    {"{{ $x := 5 }}{{ if gt $x 3 }}big{{ else }}small{{ end }} {{ eq 1 2 }} {{ stripPort \"a:80\" "
     "}} {{ humanize \"1234\" }}",
     "big false a 1.234k"},
    {"{{ index $labels 3 }}", "<error expanding template: error executing template __alert_X: "
                              "template: __alert_X:1:115: executing "
                              "\"__alert_X\" at <index $labels 3>: error calling index: value has "
                              "type int; should be string>"},
    {"{{ template \"nope\" }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:1:124: "
     "executing "
     "\"__alert_X\" at <{{template \"nope\"}}>: template \"nope\" not defined>"},
    {"{{ $labels.severity.x }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:1:122: "
     "executing "
     "\"__alert_X\" at <$labels.severity.x>: can't evaluate field x in type string>"},
    {"{{ humanize \"abc\" }}", "<error expanding template: error executing template __alert_X: "
                               "template: __alert_X:1:115: executing "
                               "\"__alert_X\" at <humanize \"abc\">: error calling humanize: "
                               "strconv.ParseFloat: parsing \"abc\": invalid syntax>"},
    {"{{ printf \"%d\" \"x\" }} {{ printf \"%s\" }} {{ printf \"%d %d\" 1 }} {{ 1e6 }} {{ 3.0 }} "
     "{{ $value }} {{ 0x10 }}",
     "%!d(string=x) %!s(MISSING) 1 %!d(MISSING) 1e+06 3 1.234567e+06 16"},
};

static void test_prometheus_rendered(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(PROM); i++) check(PROM[i].src, PROM[i].want, 0);
}

/* Run fn on every {"src", "want"} line of tests/data/template/NAME; returns the count. */
static int each_case(const char *name, void (*fn)(const char *src, const char *want))
{
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/tests/data/template/%s", VIGIL_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        fn(json_string_value(json_object_get(j, "src")),
           json_string_value(json_object_get(j, "want")));
        json_decref(j);
        n++;
    }
    fclose(f);
    return n;
}

static void rendered_case(const char *src, const char *want)
{
    vg_tmpl_data d = {.value = 1234567, .external_url = "http://prom:9090"};
    char *got = expand_with(src, &d);
    if (strcmp(got, want)) fprintf(stderr, "%s\n  want: %s\n  got:  %s\n", src, want, got);
    assert_string_equal(got, want);
    vg_free(got);
}

/* prometheus_rendered.jsonl: "want" read back from a real Prometheus's
 * /api/v1/alerts for an alert on vector(1234567) with no labels and external
 * URL http://prom:9090. */
static void test_prometheus_rendered_file(void **state)
{
    (void)state;
    assert_true(each_case("prometheus_rendered.jsonl", rendered_case) >= 30);
}

static void check_case(const char *src, const char *want)
{
    vg_error e = {0};
    vg_err_t rc = vg_tmpl_check("__alert_X", src, &e);
    const char *got = rc ? e.msg : "";
    if (strcmp(got, want)) fprintf(stderr, "%s\n  want: %s\n  got:  %s\n", src, want, got);
    assert_string_equal(got, want);
    assert_int_equal(rc, *want ? VG_EPARSE : VG_OK);
}

/* promtool_check.jsonl: broken (and a few odd but valid) templates with the
 * message `promtool check rules` printed for them ("" = accepted). */
static void test_promtool_check_file(void **state)
{
    (void)state;
    assert_true(each_case("promtool_check.jsonl", check_case) >= 30);
}

static const struct {
    const char *src, *want;
} CASES[] = {
    {"{{ range $i, $v := args 1 2 3 }}{{ if eq $i \"arg1\" }}{{ continue }}{{ end }}{{ $v }}{{ end "
     "}}|"
     "{{ range $i, $v := args 1 2 3 }}{{ if eq $i \"arg1\" }}{{ break }}{{ end }}{{ $v }}{{ end }}",
     "13|1"},
    {"{{ $x = 1 }}", "<error expanding template: error executing template __alert_X: template: "
                     "__alert_X:1:120: executing "
                     "\"__alert_X\" at <1>: undefined variable: $x>"},
    {"{{ pathPrefix }}|{{ externalURL }}", "|http://prom:9090"},
    /* recorded from Prometheus */
    {"{{ block \"q\" 5 }}<{{ . }}>{{ end }}|{{ template \"q\" 6 }}", "<5>|<6>"},
    {"{{ call 1 }}", "<error expanding template: error executing template __alert_X: template: "
                     "__alert_X:1:115: executing \"__alert_X\" at <call 1>: error calling call: "
                     "non-function of type int>"},
    {"plain text", "plain text"},
    {"", ""},
    {"{{ $labels.instance }} of {{ $labels.job }} is down", "host-1:9100 of node is down"},
    {"{{ .Labels.job }} {{ $.Labels.job }} {{ $.Value }} {{ .ExternalURL }}",
     "node node 1.234567e+06 http://prom:9090"},
    {"{{ $externalLabels.cluster }} {{ $externalURL }}", "eu1 http://prom:9090"},
    {"a  {{- \"b\" -}}  \n c", "abc"},
    {"a {{/* a comment */}} b {{- /* trimmed */ -}} c", "a  bc"},
    {"{{ if eq $labels.job \"x\" }}x{{ else if eq $labels.job \"node\" }}n{{ else }}o{{ end }}",
     "n"},
    {"{{ with $labels.job }}job={{ . }}{{ end }}{{ with $labels.nope }}no{{ else }}none{{ end }}",
     "job=nodenone"},
    {"{{ range $i, $v := query \"up\" }}{{ $i }}:{{ $v.Labels.instance }}={{ .Value }};{{ end }}",
     "0:b=1.5;1:a=2048;"},
    {"{{ range query \"empty\" }}x{{ else }}nothing{{ end }}", "nothing"},
    {"{{ range sortByLabel \"instance\" (query \"up\") }}{{ label \"instance\" . }}{{ end }}",
     "ab"},
    {"{{ with query \"up\" }}{{ . | first | value | humanize1024 }}B{{ end }}", "1.5B"},
    {"{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
     "__name__=up,instance=host-1:9100,job=node,"},
    {"{{ toUpper \"abc\" }} {{ toLower \"ABC\" }} {{ \"x\\ty\\u00e9\" }} {{ `raw\\n` }}",
     "ABC abc x\ty\xc3\xa9 raw\\n"},
    {"{{ match \"^ho.t\" $labels.instance }} {{ match \"^x\" \"y\" }}", "true false"},
    {"{{ reReplaceAll \"a*\" \"-\" \"baaac\" }} {{ reReplaceAll \"(?P<n>o+)\" \"[$n]\" \"foo\" }}",
     "-b-c- f[oo]"},
    {"{{ define \"t\" }}<{{ . }}>{{ end }}{{ template \"t\" $labels.job }}", "<node>"},
    {"{{ and 1 0 }} {{ or 0 \"\" \"z\" }} {{ not true }} {{ lt 1 2 }} {{ ge \"b\" \"a\" }} {{ ne "
     "1.5 2.5 }}",
     "0 z false true true true"},
    {"{{ len $labels }} {{ len \"abc\" }} {{ index (query \"up\") 1 | value }}", "3 3 2048"},
    {"{{ humanizeDuration 86400 }} {{ humanizeDuration -90 }} {{ humanizeDuration 0 }} {{ "
     "humanizeDuration 1.5 }}",
     "1d 0h 0m 0s -1m 30s 0s 1.5s"},
    {"{{ humanize 0 }} {{ humanize -1500 }} {{ humanize1024 0.5 }} {{ humanizePercentage 1 }}",
     "0 -1.5k 0.5 100%"},
    {"{{ stripPort \"[::1]:80\" }} {{ stripPort \"host\" }} {{ stripPort \"a:b:c\" }}",
     "::1 host a:b:c"},
    {"{{ $a := args 1 \"x\" }}{{ $a.arg1 }}{{ $a.arg0 }} {{ safeHtml \"<b>\" }}", "x1 <b>"},
    {"{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"},
    {"{{ printf \"%5s|%-4d|%05.1f|%X|%t|%v\" \"ab\" 7 3.14159 \"hi\" true $labels.job }}",
     "   ab|7   |003.1|6869|true|node"},
    {"{{ printf \"%d\" 1 2 }}", "1%!(EXTRA int=2)"},
    {"{{ query \"fail\" }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:1:115: "
     "executing "
     "\"__alert_X\" at <query \"fail\">: error calling query: parse error: bad query>"},
    {"{{ nosuch }}", "<error expanding template: error parsing template __alert_X: template: "
                     "__alert_X:1: function \"nosuch\" not defined>"},
    {"x\n{{ if }}", "<error expanding template: error parsing template __alert_X: template: "
                    "__alert_X:2: missing value for if>"},
    {"{{ $nope }}", "<error expanding template: error parsing template __alert_X: template: "
                    "__alert_X:1: undefined variable \"$nope\">"},
    {"{{ .Labels.job", "<error expanding template: error parsing template __alert_X: template: "
                       "__alert_X:1: unclosed action>"},
    {"{{ if 1 }}x", "<error expanding template: error parsing template __alert_X: template: "
                    "__alert_X:1: unexpected EOF>"},
    {"{{ end }}", "<error expanding template: error parsing template __alert_X: template: "
                  "__alert_X:1: unexpected {{end}}>"},
    {"{{ humanize 1 2 }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:1:115: "
     "executing "
     "\"__alert_X\" at <humanize>: wrong number of args for humanize: want 1 got 2>"},
    {"a\n {{ $value | toUpper }}",
     "<error expanding template: error executing template __alert_X: template: __alert_X:2:13: "
     "executing "
     "\"__alert_X\" at <toUpper>: wrong type for value; expected string; got float64>"},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(CASES); i++) check(CASES[i].src, CASES[i].want, 1);
}

static void test_check(void **state)
{
    (void)state;
    vg_error e = {0};
    assert_int_equal(vg_tmpl_check("__alert_X", "{{ $labels.x | humanize }}", &e), VG_OK);
    assert_int_equal(vg_tmpl_check("__alert_X", "{{ nosuch }}", &e), VG_EPARSE);
    assert_string_equal(e.msg, "template: __alert_X:1: function \"nosuch\" not defined");
    assert_int_equal(vg_tmpl_check("__alert_X", "{{ if }}", &e), VG_EPARSE);
    assert_string_equal(e.msg, "template: __alert_X:1: missing value for if");
}

static void test_limits(void **state)
{
    (void)state;
    /* deep nesting, self-recursive define and huge output end in errors */
    char deep[4096] = "";
    for (int i = 0; i < 500; i++) strcat(deep, "{{if 1}}");
    char *got = expand_with(deep, NULL);
    assert_non_null(strstr(got, "<error expanding template: error parsing template __alert_X: "));
    vg_free(got);
    got = expand_with("{{define \"r\"}}x{{template \"r\" .}}{{end}}{{template \"r\" 1}}", NULL);
    assert_non_null(strstr(got, "exceeded maximum template depth"));
    vg_free(got);
    got = expand_with(
        "{{range args 1 2 3 4 5 6 7 8}}{{range args 1 2 3 4 5 6 7 8}}{{range args 1 2 3 4 5 6 7 "
        "8}}{{range args 1 2 3 4 5 6 7 8}}{{range args 1 2 3 4 5 6 7 8}}{{range args 1 2 3 4 5 6 7 "
        "8}}{{range args 1 2 3 4 5 6 7 8}}xx{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}{{end}}",
        NULL);
    assert_non_null(strstr(got, "<error expanding template: error executing template __alert_X: "));
    vg_free(got);
    vg_buf small; /* the caller's own cap */
    vg_buf_init(&small, 64);
    assert_int_equal(vg_tmpl_expand("__alert_X", "{{ printf \"%100s\" \"x\" }}", NULL, &small),
                     VG_OK);
    assert_string_equal(small.data, "<error expanding template: __alert_X: output too large>");
    vg_buf_free(&small);
    got = expand_with("{{ $value }}", NULL);
    assert_string_equal(got, "0");
    vg_free(got);
}

static void test_nomem(void **state)
{
    (void)state;
    for (long n = 0; n < 200; n++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_alloc_fail_after(n);
        vg_err_t rc = vg_tmpl_expand(
            "__alert_X", "{{ range query \"up\" }}{{ .Labels.instance | toUpper }}{{ end }}",
            &(vg_tmpl_data){.query = fake_query, .query_free = fake_free}, &b);
        vg_alloc_fail_after(-1);
        assert_true(rc == VG_OK || rc == VG_ENOMEM);
        vg_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prometheus_rendered),
        cmocka_unit_test(test_prometheus_rendered_file),
        cmocka_unit_test(test_promtool_check_file),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
