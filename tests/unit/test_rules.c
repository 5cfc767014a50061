/*
 * test_rules.c - rule files (validation messages, as data) and the rule
 * manager's evaluation over synthetic data: recording rules, the alert state
 * machine (for, keep_firing_for, resolved retention, duplicate label sets,
 * limit), ALERTS series, resend semantics and restore from ALERTS_FOR_STATE.
 * Times are driven by vg_rules_eval_group, never by the clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rules/rules_int.h"
#include "vigil/alloc.h"

#define MIN 60000
#define T0  1700000000000LL

static char tmpdir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_rules.XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ---- rule files: good and bad, with the message promtool gives ---- */

typedef struct fcase {
    const char *yaml;
    const char *want; /* NULL = valid; else a substring of some error */
} fcase;

static const fcase file_cases[] = {
    {"groups:\n- name: a\n  interval: 10s\n  limit: 3\n  query_offset: 1m\n  labels: {team: x}\n"
     "  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels: {a: b}\n"
     "  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n"
     "    labels: {severity: page}\n    annotations: {summary: '{{ $labels.job }} down'}\n",
     NULL},
    {"", NULL},
    {"groups: []\n", NULL},
    {"foo: 1\n", "1:1: field foo not found in type rulefmt.RuleGroups"},
    {"groups:\n- name: a\n  bogus: 1\n", "3:3: field bogus not found in type rulefmt.RuleGroup"},
    {"groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    fo: 1m\n",
     "6:5: field fo not found in type rulefmt.RuleNode"},
    {"groups:\n- name: ''\n", "2:9: Groupname must not be empty"},
    {"groups:\n- name: a\n- name: a\n", "3:9: groupname: \"a\" is repeated in the same file"},
    {"groups:\n- name: a\n  rules:\n  - record: 'a b'\n    expr: up\n",
     "4:13: group \"a\", rule 1, \"a b\": invalid recording rule name: a b"},
    {"groups:\n- name: a\n  rules:\n  - record: r\n    expr: sum(\n",
     "5:11: group \"a\", rule 1, \"r\": could not parse expression: 1:5: parse error: unclosed "
     "left parenthesis"},
    {"groups:\n- name: a\n  rules:\n  - record: r\n    alert: r\n    expr: up\n",
     "only one of 'record' and 'alert' must be set"},
    {"groups:\n- name: a\n  rules:\n  - expr: up\n",
     "group \"a\", rule 1, \"\": one of 'record' or 'alert' must be set"},
    {"groups:\n- name: a\n  rules:\n  - alert: x\n",
     "group \"a\", rule 1, \"x\": field 'expr' must be set in rule"},
    {"groups:\n- name: a\n  rules:\n  - record:\n", /* null: once a crash (fuzz_rulefile) */
     "group \"a\", rule 1, \"\": one of 'record' or 'alert' must be set"},
    {"groups:\n- name: a\n  rules:\n  - record: [r]\n    expr: up\n", "record: expected a string"},
    {"groups:\n- name: a\n  rules:\n  - alert: {a: b}\n    expr: up\n", "alert: expected a string"},
    {"groups:\n- name: a\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n",
     "invalid field 'for' in recording rule"},
    {"groups:\n- name: a\n  rules:\n  - record: r\n    expr: up\n    annotations: {a: b}\n",
     "invalid field 'annotations' in recording rule"},
    {"groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    for: 1x\n",
     "6:10: not a valid duration string: \"1x\""},
    {"groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    labels: {0bad: x}\n",
     "invalid label name: 0bad"},
    {"groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n    labels: {__name__: y}\n",
     "invalid label name: __name__"},
    {"groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    annotations: {s: '{{ .A '}\n",
     "annotation \"s\": template: __alert_x:1: unclosed action"},
    {"groups: [\n", "did not find expected node content"},
};

static void test_rulefile_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof file_cases / sizeof *file_cases; i++) {
        const fcase *c = &file_cases[i];
        vg_rulefile *f = NULL;
        vg_error err = {0};
        vg_err_t rc = vg_rulefile_parse("r.yml", c->yaml, strlen(c->yaml), &f, &err);
        int found = 0;
        for (size_t k = 0; f && c->want && k < f->nerrors; k++)
            found |= strstr(f->errors[k], c->want) != NULL;
        if (c->want ? (!rc || !found) : rc != VG_OK) {
            print_error("case %zu: rc=%d first=%s\n", i, rc, err.msg);
            fail();
        }
        if (c->want) assert_non_null(strstr(f->errors[0], "r.yml:") == f->errors[0] ? "" : NULL);
        vg_rulefile_free(f);
    }
}

static void test_rulefile_fields(void **state)
{
    (void)state;
    vg_rulefile *f = NULL;
    const char *y = file_cases[0].yaml;
    assert_int_equal(vg_rulefile_parse("r.yml", y, strlen(y), &f, NULL), VG_OK);
    assert_int_equal(f->ngroups, 1);
    const vg_rule_group_def *g = &f->groups[0];
    assert_int_equal(g->interval_ms, 10000);
    assert_int_equal(g->query_offset_ms, MIN);
    assert_int_equal(g->limit, 3);
    assert_int_equal(g->nrules, 2);
    assert_false(g->rules[0].alerting);
    assert_true(g->rules[1].alerting);
    assert_int_equal(g->rules[1].for_ms, 5 * MIN);
    assert_int_equal(g->rules[1].keep_firing_for_ms, MIN);
    assert_int_equal(vg_rulefile_nrules(f), 2);
    vg_rulefile_free(f);
}

/* ---- evaluation ---- */

typedef struct sent {
    int n;
    char last[8][256];
    int64_t ends_at[8], starts_at[8];
    int nlast;
} sent;

static void sink(void *ud, const vg_alert_t *a, size_t n)
{
    sent *s = ud;
    s->n++;
    s->nlast = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        vg_buf b;
        vg_buf_init(&b, 0);
        vg_labels_format(a[i].labels, a[i].nlabels, &b);
        snprintf(s->last[i], sizeof s->last[i], "%s", b.data ? b.data : "");
        vg_buf_free(&b);
        s->ends_at[i] = a[i].ends_at;
        s->starts_at[i] = a[i].starts_at;
        s->nlast++;
    }
}

static void put(vg_tsdb_t *db, const char *name, const char *job, int64_t t, double v)
{
    vg_label_t l[2] = {{"__name__", name}, {"job", job}};
    assert_int_equal(vg_tsdb_append(db, "default", l, 2, t, v, NULL, NULL), VG_OK);
}

static vg_rules_t *manager(vg_tsdb_t *db, const char *yaml, int restore, int64_t grace)
{
    vg_rules_opts o = {.db = db, .restore = restore, .for_grace_period_ms = grace};
    vg_rules_t *m = vg_rules_new(&o);
    assert_non_null(m);
    const char *path = write_file("rules.yml", yaml);
    vg_label_t ext[1] = {{"cluster", "c1"}};
    vg_rules_settings s = {
        .default_interval_ms = MIN, .external_labels = ext, .nexternal_labels = 1};
    vg_error err = {0};
    if (vg_rules_load(m, &path, 1, &s, &err)) fail_msg("%s", err.msg);
    return m;
}

static rule *rule_at(vg_rules_t *m, size_t g, size_t r)
{
    return &m->rs->groups[g].rules[r];
}

static void test_for_and_resolve(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m = manager(db,
                            "groups:\n- name: g\n  rules:\n  - alert: High\n    expr: x > 1\n"
                            "    for: 2m\n    labels: {sev: '{{ $labels.job }}-{{ "
                            "$externalLabels.cluster }}'}\n    annotations: {v: '{{ $value }}'}\n",
                            0, 0);
    sent s = {0};
    vg_rules_set_sink(m, sink, &s);
    put(db, "x", "a", T0, 5);
    assert_int_equal(vg_rules_eval_group(m, 0, T0), VG_OK);
    rule *r = rule_at(m, 0, 0);
    assert_int_equal(r->health, HEALTH_OK);
    assert_int_equal(r->nalerts, 1);
    assert_int_equal(r->alerts[0].state, ALERT_PENDING);
    assert_string_equal(vg_labels_get(r->alerts[0].labels.l, r->alerts[0].labels.n, "sev"), "a-c1");
    assert_string_equal(vg_labels_get(r->alerts[0].annotations.l, r->alerts[0].annotations.n, "v"),
                        "5");
    assert_int_equal(s.n, 0); /* pending alerts are not sent */
    put(db, "x", "a", T0 + MIN, 5);
    vg_rules_eval_group(m, 0, T0 + MIN);
    assert_int_equal(r->alerts[0].state, ALERT_PENDING);
    put(db, "x", "a", T0 + 2 * MIN, 6);
    vg_rules_eval_group(m, 0, T0 + 2 * MIN);
    assert_int_equal(r->alerts[0].state, ALERT_FIRING);
    assert_int_equal(r->alerts[0].active_at, T0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.last[0], "{alertname=\"High\",job=\"a\",sev=\"a-c1\"}");
    assert_int_equal(s.ends_at[0], T0 + 2 * MIN + 4 * MIN);
    /* the same minute again: not resent before resend_delay */
    vg_rules_eval_group(m, 0, T0 + 2 * MIN + 30000);
    assert_int_equal(s.n, 1);
    /* the condition clears: resolved and sent with ends_at = resolved time */
    put(db, "x", "a", T0 + 3 * MIN, 0);
    vg_rules_eval_group(m, 0, T0 + 3 * MIN);
    assert_int_equal(r->alerts[0].state, ALERT_INACTIVE);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ends_at[0], T0 + 3 * MIN);
    /* resolved alerts are kept (and re-sent) for 15 minutes, then dropped */
    put(db, "x", "a", T0 + 10 * MIN, 0);
    vg_rules_eval_group(m, 0, T0 + 10 * MIN);
    assert_int_equal(r->nalerts, 1);
    put(db, "x", "a", T0 + 19 * MIN, 0);
    vg_rules_eval_group(m, 0, T0 + 19 * MIN);
    assert_int_equal(r->nalerts, 0);
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static void test_for_zero_and_keep_firing(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m = manager(db,
                            "groups:\n- name: g\n  rules:\n  - alert: Now\n    expr: x > 1\n"
                            "    keep_firing_for: 2m\n",
                            0, 0);
    put(db, "x", "a", T0, 5);
    vg_rules_eval_group(m, 0, T0);
    rule *r = rule_at(m, 0, 0);
    assert_int_equal(r->alerts[0].state, ALERT_FIRING);
    put(db, "x", "a", T0 + MIN, 0);
    vg_rules_eval_group(m, 0, T0 + MIN);
    assert_int_equal(r->alerts[0].state, ALERT_FIRING); /* kept firing */
    assert_int_equal(r->alerts[0].keep_firing_since, T0 + MIN);
    put(db, "x", "a", T0 + 2 * MIN, 0);
    vg_rules_eval_group(m, 0, T0 + 2 * MIN);
    assert_int_equal(r->alerts[0].state, ALERT_FIRING);
    put(db, "x", "a", T0 + 3 * MIN, 0);
    vg_rules_eval_group(m, 0, T0 + 3 * MIN);
    assert_int_equal(r->alerts[0].state, ALERT_INACTIVE);
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static void test_duplicate_and_limit(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m = manager(db,
                            "groups:\n- name: dup\n  rules:\n  - alert: D\n"
                            "    expr: '{__name__=~\"p|q\"}'\n"
                            "- name: lim\n  limit: 1\n  rules:\n  - alert: L\n    expr: p\n"
                            "  - record: r\n    expr: p\n",
                            0, 0);
    put(db, "p", "a", T0, 1);
    put(db, "q", "a", T0, 1);
    put(db, "p", "b", T0, 1);
    vg_rules_eval_group(m, 0, T0);
    rule *r = rule_at(m, 0, 0);
    assert_int_equal(r->health, HEALTH_ERR);
    assert_string_equal(r->last_error, "vector contains metrics with the same labelset after "
                                       "applying alert labels");
    vg_rules_eval_group(m, 1, T0);
    assert_int_equal(rule_at(m, 1, 0)->health, HEALTH_ERR);
    assert_string_equal(rule_at(m, 1, 0)->last_error, "exceeded limit of 1 with 2 alerts");
    assert_int_equal(rule_at(m, 1, 0)->nalerts, 0);
    assert_string_equal(rule_at(m, 1, 1)->last_error, "exceeded limit of 1 with 2 series");
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static size_t count_series(vg_tsdb_t *db, const char *name, const char *l, const char *v,
                           double *last)
{
    vg_matcher_t *ms[2];
    size_t nm = 0;
    assert_int_equal(vg_matcher_new(VG_MATCH_EQ, "__name__", name, &ms[nm++], NULL), VG_OK);
    if (l) assert_int_equal(vg_matcher_new(VG_MATCH_EQ, l, v, &ms[nm++], NULL), VG_OK);
    vg_seriesset_t *ss = NULL;
    assert_int_equal(vg_tsdb_select(db, "default", ms, nm, 0, INT64_MAX, &ss, NULL), VG_OK);
    size_t n = vg_seriesset_len(ss);
    int64_t t;
    double x;
    while (vg_seriesset_next(ss))
        while (vg_seriesset_sample_next(ss, &t, &x)) *last = x;
    vg_seriesset_free(ss);
    for (size_t i = 0; i < nm; i++) vg_matcher_free(ms[i]);
    return n;
}

static void test_recording_and_alerts_series(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m =
        manager(db,
                "groups:\n- name: g\n  query_offset: 1m\n  rules:\n"
                "  - record: job:x:sum\n    expr: sum by (job) (x)\n    labels: {k: v}\n"
                "  - alert: FromRecord\n    expr: job:x:sum > 5\n",
                0, 0);
    put(db, "x", "a", T0, 3);
    put(db, "x", "a", T0 + 1, 7);
    put(db, "x", "b", T0, 4);
    vg_rules_eval_group(m, 0, T0 + MIN + 10);
    double last = 0;
    assert_int_equal(count_series(db, "job:x:sum", "k", "v", &last), 2);
    /* the alert saw the recording made just before it in the same group */
    rule *r = rule_at(m, 0, 1);
    assert_int_equal(r->health, HEALTH_OK);
    assert_int_equal(r->nalerts, 1);
    assert_int_equal(r->alerts[0].active_at, T0 + 10); /* slot - query_offset */
    assert_int_equal(count_series(db, "ALERTS", "alertstate", "firing", &last), 1);
    assert_true(last == 1);
    assert_int_equal(count_series(db, "ALERTS_FOR_STATE", NULL, NULL, &last), 1);
    assert_true(last == (double)((T0 + 10) / 1000));
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_rules_json_alerts(m, &b), VG_OK);
    assert_non_null(strstr(b.data, "\"state\":\"firing\""));
    assert_non_null(strstr(b.data, "\"value\":\"7e+00\""));
    vg_buf_reset(&b);
    assert_int_equal(vg_rules_json_rules(m, "record", &b), VG_OK);
    assert_null(strstr(b.data, "FromRecord"));
    assert_non_null(strstr(b.data, "\"query\":\"sum by (job) (x)\""));
    vg_buf_free(&b);
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static void test_restore(void **state)
{
    (void)state;
    const char *y = "groups:\n- name: g\n  rules:\n  - alert: Slow\n    expr: x > 1\n"
                    "    for: 20m\n";
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m = manager(db, y, 0, 0);
    for (int i = 0; i <= 5; i++) {
        put(db, "x", "a", T0 + i * MIN, 5);
        vg_rules_eval_group(m, 0, T0 + i * MIN);
    }
    assert_int_equal(rule_at(m, 0, 0)->alerts[0].state, ALERT_PENDING);
    vg_rules_free(m);
    /* restart 5 minutes later: 5m pending before, 15m left (>= 10m grace) */
    m = manager(db, y, 1, 0);
    put(db, "x", "a", T0 + 10 * MIN, 5);
    vg_rules_eval_group(m, 0, T0 + 10 * MIN);
    rule *r = rule_at(m, 0, 0);
    assert_true(r->restored);
    assert_int_equal(r->alerts[0].active_at, T0 + 5 * MIN);
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static void test_reload_keeps_state_and_rejects_bad(void **state)
{
    (void)state;
    vg_tsdb_t *db = vg_tsdb_new(NULL);
    vg_rules_t *m = manager(db,
                            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 1\n"
                            "    for: 5m\n",
                            0, 0);
    put(db, "x", "a", T0, 5);
    vg_rules_eval_group(m, 0, T0);
    const char *bad = write_file("bad.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n"
                                            "    expr: sum(\n");
    vg_error err = {0};
    assert_int_equal(vg_rules_load(m, &bad, 1, NULL, &err), VG_ECONFIG);
    assert_non_null(strstr(err.msg, "could not parse expression"));
    assert_int_equal(rule_at(m, 0, 0)->nalerts, 1);
    const char *good = write_file("rules.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n"
                                               "    expr: x > 1\n    for: 5m\n  - record: r\n"
                                               "    expr: x\n");
    assert_int_equal(vg_rules_load(m, &good, 1, NULL, &err), VG_OK);
    assert_int_equal(rule_at(m, 0, 0)->nalerts, 1); /* state carried over */
    assert_int_equal(rule_at(m, 0, 0)->alerts[0].active_at, T0);
    assert_int_equal(m->rs->groups[0].nrules, 2);
    vg_rules_free(m);
    vg_tsdb_free(db);
}

static void test_formats(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(vg_rules_fmt_value(1, b, sizeof b), "1e+00");
    assert_string_equal(vg_rules_fmt_value(0.25, b, sizeof b), "2.5e-01");
    assert_string_equal(vg_rules_fmt_value(123456789, b, sizeof b), "1.23456789e+08");
    assert_string_equal(vg_rules_fmt_value(NAN, b, sizeof b), "NaN");
    assert_string_equal(vg_rules_fmt_value(-INFINITY, b, sizeof b), "-Inf");
    assert_string_equal(vg_rules_fmt_time(0, b, sizeof b), "1970-01-01T00:00:00Z");
    assert_string_equal(vg_rules_fmt_time(INT64_MIN, b, sizeof b), "0001-01-01T00:00:00Z");
    assert_string_equal(vg_rules_fmt_time(1700000000120, b, sizeof b), "2023-11-14T22:13:20.12Z");
    int64_t off = vg_rules_group_offset("f.yml", "g", MIN);
    assert_true(off >= 0 && off < MIN);
    assert_int_equal(off, vg_rules_group_offset("f.yml", "g", MIN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rulefile_cases),
        cmocka_unit_test(test_rulefile_fields),
        cmocka_unit_test(test_for_and_resolve),
        cmocka_unit_test(test_for_zero_and_keep_firing),
        cmocka_unit_test(test_duplicate_and_limit),
        cmocka_unit_test(test_recording_and_alerts_series),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_reload_keeps_state_and_rejects_bad),
        cmocka_unit_test(test_formats),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd)) rc |= 0;
    }
    return rc;
}
