/*
 * test_file_sd.c - file-based discovery: the JSON and YAML target-group
 * parser (table of good and bad inputs), and reloads through a scraper:
 * an unchanged target keeps running, a new one starts, a removed one gets
 * staleness markers for its series and for up, a broken file keeps the last
 * good targets and is counted. Targets point at closed ports, so every
 * scrape fails fast (up 0) without a server; nothing depends on timing:
 * the test drives vg_scraper_refresh and vg_scraper_run_once itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scrape/file_sd.h"
#include "scrape/scrape.h"
#include "scrape/scrape_int.h"
#include "vigil/metrics.h"

/* ------------------------------------------------------------ parser */

static char *render(const vg_static_group_t *g, size_t n)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
        vg_buf_puts(&b, "[");
        for (size_t j = 0; j < g[i].ntargets; j++)
            vg_buf_printf(&b, "%s%s", j ? " " : "", g[i].targets[j]);
        vg_buf_puts(&b, "]");
        vg_labels_format(g[i].labels, g[i].nlabels, &b);
        vg_buf_puts(&b, "\n");
    }
    return vg_buf_steal(&b, NULL);
}

static void test_parse(void **state)
{
    static const struct {
        const char *text;
        int yaml;
        const char *want; /* rendered groups, or "ERR:<substring>" */
    } cases[] = {
        {"[{\"targets\": [\"a:1\", \"b:2\"], \"labels\": {\"env\": \"prod\", \"z\": \"\"}},"
         " {\"targets\": [\"c:3\"]}]",
         0, "[a:1 b:2]{__meta_filepath=\"F\",env=\"prod\",z=\"\"}\n[c:3]{__meta_filepath=\"F\"}\n"},
        {"[]", 0, ""},
        {"[{\"labels\": null, \"targets\": null}]", 0, "[]{__meta_filepath=\"F\"}\n"},
        {"- targets: ['a:1']\n  labels: {team: x, __meta_filepath: spoof}\n- targets: []\n", 1,
         "[a:1]{__meta_filepath=\"F\",team=\"x\"}\n[]{__meta_filepath=\"F\"}\n"},
        {"", 1, ""},
        {"{\"targets\": []}", 0, "ERR:expected a list of target groups"},
        {"[{\"targets\": [\"a:1\"],", 0, "ERR:F:1:"},
        {"[{\"targets\": [1]}]", 0, "ERR:group 0: target 0 is not a string"},
        {"[{\"targets\": \"a:1\"}]", 0, "ERR:targets must be a list"},
        {"[{\"target\": [\"a:1\"]}]", 0, "ERR:group 0: unknown field \"target\""},
        {"[{\"labels\": {\"a-b\": \"x\"}}]", 0, "ERR:\"a-b\" is not a valid label name"},
        {"[{\"labels\": {\"a\": 1}}]", 0, "ERR:label \"a\" is not a string"},
        {"[7]", 0, "ERR:group 0: expected an object"},
        {"- targets: [a:1]\n  lables: {}\n", 1, "ERR:F:2:3: unknown field in a target group"},
        {"- targets: [[a]]\n", 1, "ERR:F:1:13: a target must be a string"},
        {"- labels: {0x: y}\n", 1, "ERR:F:1:12: is not a valid label name"},
        {"targets: [a]\n", 1, "ERR:F:1:1: expected a list of target groups"},
        {"- [a]\n", 1, "ERR:F:1:3: expected a target group"},
        {"- targets: [a\n", 1, "ERR:F:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        vg_arena_t *a = vg_arena_new(0);
        vg_static_group_t *g = NULL;
        size_t n = 0;
        vg_error err = {0};
        vg_err_t rc = vg_file_sd_parse("F", cases[i].text, strlen(cases[i].text), cases[i].yaml, a,
                                       &g, &n, &err);
        const char *want = cases[i].want;
        if (!strncmp(want, "ERR:", 4)) {
            if (rc == VG_OK) fail_msg("case %zu accepted", i);
            if (!strstr(err.msg, want + 4))
                fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, want + 4);
        } else {
            if (rc) fail_msg("case %zu: %s", i, err.msg);
            char *got = render(g, n);
            if (strcmp(got ? got : "", want)) fail_msg("case %zu: got\n%s\nwant\n%s", i, got, want);
            free(got);
        }
        vg_arena_free(a);
    }
}

static void test_too_large(void **state)
{
    vg_arena_t *a = vg_arena_new(0);
    vg_static_group_t *g;
    size_t n;
    assert_int_equal(vg_file_sd_parse("F", "[]", VG_FILE_SD_MAX_BYTES + 1u, 0, a, &g, &n, NULL),
                     VG_ETOOLARGE);
    vg_arena_free(a);
}

/* ------------------------------------------------------------ reloads */

typedef struct capture {
    vg_buf out;
} capture;

static vg_err_t on_emit(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    capture *c = ud;
    vg_labels_format(l, n, &c->out);
    vg_buf_puts(&c->out, vg_is_stale_nan(v) ? " STALE\n" : " value\n");
    return VG_OK;
}

static char dir[64], file[96];

static void write_targets(const char *json)
{
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/.tmp", dir);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(json, f);
    fclose(f);
    assert_int_equal(rename(tmp, file), 0); /* atomic, as Prometheus recommends */
}

/* The target of job 0 whose instance is inst, or NULL. */
static vg_scrape_target_t *target(vg_scraper_t *s, const char *inst)
{
    for (size_t i = 0; i < s->ntargets; i++)
        if (!strcmp(s->targets[i]->instance, inst)) return s->targets[i];
    return NULL;
}

static const char *run(vg_scraper_t *s, capture *c)
{
    vg_error err = {0};
    vg_buf_reset(&c->out);
    assert_int_equal(vg_scraper_run_once(s, &err), VG_OK);
    return c->out.data ? c->out.data : "";
}

static void test_reload(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/vigil-file-sd-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/targets.json", dir);
    write_targets(
        "[{\"targets\": [\"127.0.0.1:1\", \"127.0.0.1:2\"], \"labels\": {\"env\": \"a\"}}]");

    const char *files[] = {file};
    vg_file_sd_config_t fsd = {.files = files, .nfiles = 1, .refresh_interval_ms = 300000};
    vg_scrape_config_t sc = {.job_name = "sd",
                             .interval_ms = 15000,
                             .timeout_ms = 1000,
                             .metrics_path = "/metrics",
                             .scheme = "http",
                             .file_sd = &fsd,
                             .nfile_sd = 1};
    vg_agent_config_t cfg = {.scrape_configs = &sc, .nscrape_configs = 1};
    capture c;
    vg_buf_init(&c.out, 0);
    vg_metrics_t *m = vg_metrics_new();
    vg_scraper_t *s = NULL;
    vg_error err = {0};
    if (vg_scraper_new(&cfg, on_emit, NULL, &c, m, &s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(vg_scraper_ntargets(s), 2);
    vg_scrape_target_t *kept = target(s, "127.0.0.1:1");
    assert_non_null(kept);
    const char *got = run(s, &c);
    char want[256];
    snprintf(want, sizeof want, "up{__meta_filepath=\"%s\"",
             file); /* meta labels never reach series */
    assert_null(strstr(got, want));
    assert_non_null(strstr(got, "up{env=\"a\",instance=\"127.0.0.1:2\",job=\"sd\"} value"));

    /* nothing changed: nothing happens */
    assert_int_equal(vg_scraper_refresh(s, &err), VG_OK);
    assert_ptr_equal(target(s, "127.0.0.1:1"), kept);

    /* :2 removed, :3 added, :1 unchanged */
    vg_buf_reset(&c.out);
    write_targets(
        "[{\"targets\": [\"127.0.0.1:1\", \"127.0.0.1:3\"], \"labels\": {\"env\": \"a\"}}]");
    assert_int_equal(vg_scraper_refresh(s, &err), VG_OK);
    assert_int_equal(vg_scraper_ntargets(s), 2);
    assert_ptr_equal(target(s, "127.0.0.1:1"), kept);
    assert_null(target(s, "127.0.0.1:2"));
    assert_non_null(target(s, "127.0.0.1:3"));
    got = c.out.data ? c.out.data : "";
    assert_non_null(strstr(got, "up{env=\"a\",instance=\"127.0.0.1:2\",job=\"sd\"} STALE\n"));
    assert_non_null(
        strstr(got, "scrape_series_added{env=\"a\",instance=\"127.0.0.1:2\",job=\"sd\"} STALE\n"));
    assert_null(strstr(got, "instance=\"127.0.0.1:1\""));

    /* a broken file keeps the last good targets and is counted */
    write_targets("[{\"targets\": [\"127.0.0.1:9\"");
    assert_int_equal(vg_scraper_refresh(s, &err), VG_OK);
    assert_int_equal(vg_scraper_ntargets(s), 2);
    assert_ptr_equal(target(s, "127.0.0.1:1"), kept);
    vg_buf metrics;
    vg_buf_init(&metrics, 0);
    assert_int_equal(vg_metrics_render(m, &metrics), VG_OK);
    assert_non_null(strstr(metrics.data, "vigil_file_sd_read_errors_total 1"));
    vg_buf_free(&metrics);

    /* a label change is a different target: the old one goes stale */
    run(s, &c);
    vg_buf_reset(&c.out);
    write_targets(
        "[{\"targets\": [\"127.0.0.1:1\", \"127.0.0.1:3\"], \"labels\": {\"env\": \"b\"}}]");
    assert_int_equal(vg_scraper_refresh(s, &err), VG_OK);
    assert_true(target(s, "127.0.0.1:1") != kept);
    assert_non_null(
        strstr(c.out.data, "up{env=\"a\",instance=\"127.0.0.1:1\",job=\"sd\"} STALE\n"));

    /* the file goes away: every target goes */
    unlink(file);
    assert_int_equal(vg_scraper_refresh(s, &err), VG_OK);
    assert_int_equal(vg_scraper_ntargets(s), 0);
    vg_scraper_free(s);
    vg_metrics_free(m);
    vg_buf_free(&c.out);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
