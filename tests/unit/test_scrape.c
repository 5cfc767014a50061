/*
 * test_scrape.c - the scrape loop against an in-process HTTP server.
 *
 * A vg_httpd on 127.0.0.1:0 serves fixtures by path (/m/<name>); each test
 * builds a vg_agent_config_t by hand, runs vg_scraper_run_once and compares
 * the emitted samples, rendered one per line as `name{labels} value @ts`
 * (ts shown as "now" when it is the scrape time, "STALE" for staleness
 * markers), with the expected text. Nothing here depends on timing except
 * the thread test, which waits on a condition variable with a long deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scrape/scrape.h"
#include "scrape/scrape_int.h"
#include "vigil/expfmt.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"

/* ------------------------------------------------------------ server */

typedef struct fixture {
    const char *path;
    const char *body;
    size_t len; /* 0 = strlen(body) */
    const char *ctype;
    int status;
    const char *encoding;
    int delay_ms; /* answer this late (for timeouts) */
} fixture;

static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static fixture srv_fx[8];
static char srv_accept[512], srv_ua[128], srv_tmo[32], srv_acc_enc[64], srv_auth[256],
    srv_module[64];
static int srv_hits;

static void set_fixture(int i, fixture f)
{
    pthread_mutex_lock(&srv_mu);
    srv_fx[i] = f;
    pthread_mutex_unlock(&srv_mu);
}

static void copy_hdr(char *dst, size_t n, const vg_http_req *req, const char *name)
{
    const char *v = vg_http_req_header(req, name);
    snprintf(dst, n, "%s", v ? v : "");
}

static void serve(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    pthread_mutex_lock(&srv_mu);
    srv_hits++;
    copy_hdr(srv_accept, sizeof srv_accept, req, "Accept");
    copy_hdr(srv_ua, sizeof srv_ua, req, "User-Agent");
    copy_hdr(srv_tmo, sizeof srv_tmo, req, "X-Prometheus-Scrape-Timeout-Seconds");
    copy_hdr(srv_acc_enc, sizeof srv_acc_enc, req, "Accept-Encoding");
    copy_hdr(srv_auth, sizeof srv_auth, req, "Authorization");
    const char *mod = vg_http_req_arg(req, "module");
    snprintf(srv_module, sizeof srv_module, "%s", mod ? mod : "");
    const fixture *f = NULL;
    for (size_t i = 0; i < 8; i++)
        if (srv_fx[i].path && strcmp(srv_fx[i].path, vg_http_req_path(req)) == 0) f = &srv_fx[i];
    if (!f) {
        resp->status = 404;
    } else {
        resp->status = f->status ? f->status : 200;
        if (f->ctype) resp->content_type = f->ctype;
        if (f->encoding) vg_http_resp_header(resp, "Content-Encoding", f->encoding);
        vg_buf_append(&resp->body, f->body, f->len ? f->len : strlen(f->body));
    }
    int delay = f ? f->delay_ms : 0;
    pthread_mutex_unlock(&srv_mu);
    if (delay) nanosleep(&(struct timespec){delay / 1000, (delay % 1000) * 1000000L}, NULL);
}

static vg_httpd_t *httpd;
static char addr[64];

static int setup_server(void **state)
{
    vg_httpd_opts o = {.listen = "127.0.0.1:0", .threads = 2};
    httpd = vg_httpd_new(&o);
    if (!httpd) return -1;
    vg_httpd_route(httpd, "GET", "/m/*", serve, NULL);
    vg_error err = {0};
    if (vg_httpd_start(httpd, &err)) {
        fprintf(stderr, "httpd: %s\n", err.msg);
        return -1;
    }
    snprintf(addr, sizeof addr, "127.0.0.1:%u", vg_httpd_port(httpd));
    return 0;
}

static int teardown_server(void **state)
{
    vg_httpd_free(httpd);
    return 0;
}

static int reset_fixtures(void **state)
{
    pthread_mutex_lock(&srv_mu);
    memset(srv_fx, 0, sizeof srv_fx);
    pthread_mutex_unlock(&srv_mu);
    return 0;
}

/* ------------------------------------------------------------ capture */

typedef struct capture {
    vg_buf out;
    int64_t now_lo, now_hi; /* wall clock around the scrape */
    int commits;
    int unsorted; /* a set arrived unsorted or without __name__ */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} capture;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static vg_err_t on_emit(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    capture *c = ud;
    pthread_mutex_lock(&c->mu);
    int has_name = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(l[i - 1].name, l[i].name) >= 0) c->unsorted = 1;
        has_name |= strcmp(l[i].name, VG_METRIC_NAME) == 0;
    }
    c->unsorted |= !has_name;
    if (!has_name) {
        pthread_mutex_unlock(&c->mu);
        return VG_EINVAL;
    }
    vg_labels_format(l, n, &c->out);
    if (vg_is_stale_nan(v))
        vg_buf_puts(&c->out, " STALE");
    else if (isnan(v))
        vg_buf_puts(&c->out, " NaN");
    else if (strcmp(vg_labels_get(l, n, VG_METRIC_NAME), "scrape_duration_seconds") == 0)
        vg_buf_puts(&c->out, v >= 0 && v < 60 ? " <dur>" : " BAD-DURATION");
    else
        vg_buf_printf(&c->out, " %g", v);
    if (ts >= c->now_lo && ts <= c->now_hi)
        vg_buf_puts(&c->out, " @now\n");
    else
        vg_buf_printf(&c->out, " @%lld\n", (long long)ts);
    pthread_mutex_unlock(&c->mu);
    return VG_OK;
}

static void on_commit(void *ud)
{
    capture *c = ud;
    pthread_mutex_lock(&c->mu);
    c->commits++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void capture_init(capture *c)
{
    memset(c, 0, sizeof *c);
    vg_buf_init(&c->out, 0);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void capture_free(capture *c)
{
    vg_buf_free(&c->out);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

/* One synchronous scrape of every target; returns what was emitted. */
static const char *scrape(vg_scraper_t *s, capture *c)
{
    vg_buf_reset(&c->out);
    c->now_lo = wall_ms();
    c->now_hi = c->now_lo + 60000; /* fixture timestamps are years away from now */
    vg_error err = {0};
    assert_int_equal(vg_scraper_run_once(s, &err), VG_OK);
    assert_true(wall_ms() < c->now_hi);
    assert_false(c->unsorted);
    return c->out.data ? c->out.data : "";
}

/* ------------------------------------------------------------ config */

typedef struct test_cfg {
    vg_agent_config_t cfg;
    vg_scrape_config_t sc[2];
    vg_static_group_t grp[2];
    const char *targets[2][2];
} test_cfg;

static void cfg_init(test_cfg *t, const char *path)
{
    memset(t, 0, sizeof *t);
    t->targets[0][0] = addr;
    t->grp[0] = (vg_static_group_t){.targets = t->targets[0], .ntargets = 1};
    t->sc[0] = (vg_scrape_config_t){
        .job_name = "node",
        .interval_ms = 15000,
        .timeout_ms = 5000,
        .metrics_path = path,
        .scheme = "http",
        .honor_timestamps = 1,
        .static_configs = t->grp,
        .nstatic = 1,
    };
    t->cfg = (vg_agent_config_t){.scrape_interval_ms = 30000,
                                 .scrape_timeout_ms = 10000,
                                 .scrape_configs = t->sc,
                                 .nscrape_configs = 1};
}

static vg_scraper_t *new_scraper(test_cfg *t, capture *c, vg_metrics_t *m)
{
    vg_scraper_t *s = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_scraper_new(&t->cfg, on_emit, on_commit, c, m, &s, &err);
    if (rc) fail_msg("vg_scraper_new: %s", err.msg);
    return s;
}

#define REPORT(up, scraped, post, added, extra)                                                    \
    "up{" extra "instance=\"ADDR\",job=\"node\"} " #up " @now\n"                                   \
    "scrape_duration_seconds{" extra "instance=\"ADDR\",job=\"node\"} <dur> @now\n"                \
    "scrape_samples_scraped{" extra "instance=\"ADDR\",job=\"node\"} " #scraped " @now\n"          \
    "scrape_samples_post_metric_relabeling{" extra "instance=\"ADDR\",job=\"node\"} " #post        \
    " @now\n"                                                                                      \
    "scrape_series_added{" extra "instance=\"ADDR\",job=\"node\"} " #added " @now\n"

/* Replace every "ADDR" in want with the server address, then compare. */
static void expect(const char *got, const char *want)
{
    vg_buf w;
    vg_buf_init(&w, 0);
    for (const char *p = want; *p;) {
        const char *a = strstr(p, "ADDR");
        if (!a) {
            vg_buf_puts(&w, p);
            break;
        }
        vg_buf_append(&w, p, (size_t)(a - p));
        vg_buf_puts(&w, addr);
        p = a + 4;
    }
    if (strcmp(got, w.data ? w.data : "") != 0)
        fail_msg("emitted samples differ\n--- want\n%s--- got\n%s", w.data, got);
    vg_buf_free(&w);
}

/* ------------------------------------------------------------ tests */

static const char basic_body[] = "# HELP http_requests_total Requests.\n"
                                 "# TYPE http_requests_total counter\n"
                                 "http_requests_total{method=\"get\",code=\"200\"} 10\n"
                                 "http_requests_total{code=\"500\",method=\"get\",} 2\n"
                                 "\n"
                                 "temperature 21.5 1700000000000\n"
                                 "empty_label{a=\"\",z=\"1\"} 3\n";

static void test_basic(void **state)
{
    set_fixture(0, (fixture){.path = "/m/basic", .body = basic_body});
    test_cfg t;
    cfg_init(&t, "/m/basic");
    vg_label_t env[] = {{"env", "prod"}};
    t.grp[0].labels = env;
    t.grp[0].nlabels = 1;
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    assert_int_equal(vg_scraper_ntargets(s), 1);
    char url[128];
    snprintf(url, sizeof url, "http://%s/m/basic", addr);
    assert_string_equal(vg_scraper_target_url(s, 0), url);
    assert_int_equal(vg_scraper_target_health(s, 0), -1);
    expect(scrape(s, &c),
           "http_requests_total{code=\"200\",env=\"prod\",instance=\"ADDR\",job=\"node\","
           "method=\"get\"} 10 @now\n"
           "http_requests_total{code=\"500\",env=\"prod\",instance=\"ADDR\",job=\"node\","
           "method=\"get\"} 2 @now\n"
           "temperature{env=\"prod\",instance=\"ADDR\",job=\"node\"} 21.5 @1700000000000\n"
           "empty_label{env=\"prod\",instance=\"ADDR\",job=\"node\",z=\"1\"} 3 @now\n"
           "up{env=\"prod\",instance=\"ADDR\",job=\"node\"} 1 @now\n"
           "scrape_duration_seconds{env=\"prod\",instance=\"ADDR\",job=\"node\"} <dur> @now\n"
           "scrape_samples_scraped{env=\"prod\",instance=\"ADDR\",job=\"node\"} 4 @now\n"
           "scrape_samples_post_metric_relabeling{env=\"prod\",instance=\"ADDR\","
           "job=\"node\"} 4 @now\n"
           "scrape_series_added{env=\"prod\",instance=\"ADDR\",job=\"node\"} 4 @now\n");
    assert_int_equal(c.commits, 1);
    assert_int_equal(vg_scraper_target_health(s, 0), 1);
    /* the request carried Prometheus's headers */
    assert_string_equal(srv_accept, VG_SCRAPE_ACCEPT);
    assert_string_equal(srv_ua, "vigil-agent/" VIGIL_VERSION);
    assert_string_equal(srv_tmo, "5");
    assert_non_null(strstr(srv_acc_enc, "gzip"));
    /* second scrape: same series, none added */
    const char *got = scrape(s, &c);
    assert_non_null(strstr(got, "scrape_series_added{env=\"prod\",instance=\""));
    assert_non_null(strstr(got, "job=\"node\"} 0 @now\n"));
    assert_null(strstr(got, "STALE"));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_honor_labels(void **state)
{
    set_fixture(0, (fixture){.path = "/m/clash",
                             .body = "m{job=\"app\",instance=\"pod-1\",exported_job=\"old\"} 1\n"
                                     "n{job=\"\"} 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/clash");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c),
           "m{exported_exported_job=\"app\",exported_instance=\"pod-1\",exported_job=\"old\","
           "instance=\"ADDR\",job=\"node\"} 1 @now\n"
           "n{instance=\"ADDR\",job=\"node\"} 2 @now\n" REPORT(1, 2, 2, 2, ""));
    vg_scraper_free(s);
    t.sc[0].honor_labels = 1;
    t.sc[0].honor_timestamps = 0;
    s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), "m{exported_job=\"old\",instance=\"pod-1\",job=\"app\"} 1 @now\n"
                          "n{instance=\"ADDR\",job=\"node\"} 2 @now\n" REPORT(1, 2, 2, 2, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_honor_timestamps_off(void **state)
{
    set_fixture(0, (fixture){.path = "/m/ts", .body = "a 1 1000\n"});
    test_cfg t;
    cfg_init(&t, "/m/ts");
    t.sc[0].honor_timestamps = 0;
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 1, 1, 1, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_staleness(void **state)
{
    set_fixture(0, (fixture){.path = "/m/st", .body = "a 1\nb 2\nc 3 1000\n"});
    test_cfg t;
    cfg_init(&t, "/m/st");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    /* b disappears: one marker at the scrape time; c has its own timestamp
     * and so is not tracked for staleness, as in Prometheus */
    set_fixture(0, (fixture){.path = "/m/st", .body = "a 1\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(1, 1, 1, 0, ""));
    /* no second marker */
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 1, 1, 0, ""));
    /* b comes back: added again */
    set_fixture(0, (fixture){.path = "/m/st", .body = "b 5\na 1\n"});
    expect(scrape(s, &c), "b{instance=\"ADDR\",job=\"node\"} 5 @now\n"
                          "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 2, 2, 1, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_failed_target(void **state)
{
    set_fixture(0, (fixture){.path = "/m/f", .body = "a 1\nb 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/f");
    vg_metrics_t *m = vg_metrics_new();
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, m);
    scrape(s, &c);
    set_fixture(0, (fixture){.path = "/m/f", .body = "oops", .status = 500});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(0, 0, 0, 0, ""));
    assert_int_equal(vg_scraper_target_health(s, 0), 0);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    assert_int_equal(c.commits, 3);
    vg_metric_t *f = vg_metrics_counter(m, "vigil_scrape_failures_total",
                                        "Failed scrapes by reason.", "reason=\"http_status\"");
    assert_true(vg_metric_value(f) == 2);
    vg_metric_t *n = vg_metrics_counter(m, "vigil_scrapes_total", "Scrapes attempted.", NULL);
    assert_true(vg_metric_value(n) == 3);
    vg_metric_t *smp = vg_metrics_counter(m, "vigil_scrape_samples_total",
                                          "Samples read from scrape bodies.", NULL);
    assert_true(vg_metric_value(smp) == 2);
    /* recovery */
    set_fixture(0, (fixture){.path = "/m/f", .body = "a 1\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 1, 1, 1, ""));
    assert_int_equal(vg_scraper_target_health(s, 0), 1);
    vg_scraper_free(s);
    vg_metrics_free(m);
    capture_free(&c);
}

static void test_unreachable(void **state)
{
    test_cfg t;
    cfg_init(&t, "/metrics");
    t.targets[0][0] = "127.0.0.1:1"; /* nothing listens on port 1 */
    capture c;
    capture_init(&c);
    vg_metrics_t *m = vg_metrics_new();
    vg_scraper_t *s = new_scraper(&t, &c, m);
    const char *got = scrape(s, &c);
    assert_non_null(strstr(got, "up{instance=\"127.0.0.1:1\",job=\"node\"} 0 @now\n"));
    vg_metric_t *f = vg_metrics_counter(m, "vigil_scrape_failures_total",
                                        "Failed scrapes by reason.", "reason=\"http\"");
    assert_true(vg_metric_value(f) == 1);
    vg_scraper_free(s);
    vg_metrics_free(m);
    capture_free(&c);
}

static void test_body_size_limit(void **state)
{
    static char big[4096];
    for (size_t i = 0; i + 4 <= sizeof big; i += 4) memcpy(big + i, "a 1\n", 4);
    set_fixture(0, (fixture){.path = "/m/big", .body = big, .len = sizeof big});
    test_cfg t;
    cfg_init(&t, "/m/big");
    t.sc[0].body_size_limit = 1000;
    vg_metrics_t *m = vg_metrics_new();
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, m);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    vg_metric_t *f = vg_metrics_counter(m, "vigil_scrape_failures_total",
                                        "Failed scrapes by reason.", "reason=\"body_size_limit\"");
    assert_true(vg_metric_value(f) == 1);
    /* exactly at the limit is fine */
    t.sc[0].body_size_limit = sizeof big;
    vg_scraper_free(s);
    s = new_scraper(&t, &c, m);
    const char *got = scrape(s, &c);
    assert_non_null(strstr(got, "up{instance=\""));
    assert_non_null(strstr(got, "job=\"node\"} 1 @now\n"));
    vg_scraper_free(s);
    vg_metrics_free(m);
    capture_free(&c);
}

/* gzip of "gz_metric{a=\"b\"} 42\n" */
static const unsigned char gz_small[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4b, 0xaf, 0x8a, 0xcf,
    0x4d, 0x2d, 0x29, 0xca, 0x4c, 0xae, 0x4e, 0xb4, 0x55, 0x4a, 0x52, 0xaa, 0x55, 0x30,
    0x31, 0xe2, 0x02, 0x00, 0x70, 0x87, 0x26, 0x8b, 0x14, 0x00, 0x00, 0x00};
/* gzip of "a 1\n" x 10000: 81 bytes on the wire, 40000 decoded */
static const unsigned char gz_bomb[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xed, 0xc3, 0x41, 0x09, 0x00, 0x00,
    0x08, 0x04, 0xb0, 0xbf, 0x29, 0xac, 0x60, 0xa4, 0xeb, 0x5f, 0xe2, 0xc0, 0x1c, 0x1b, 0x2c, 0x7b,
    0x13, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
    0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xf5, 0x17, 0xdf, 0x18, 0xf8, 0x0f, 0x40, 0x9c, 0x00, 0x00};

static void test_gzip(void **state)
{
    set_fixture(0, (fixture){.path = "/m/gz",
                             .body = (const char *)gz_small,
                             .len = sizeof gz_small,
                             .encoding = "gzip"});
    set_fixture(1, (fixture){.path = "/m/bomb",
                             .body = (const char *)gz_bomb,
                             .len = sizeof gz_bomb,
                             .encoding = "gzip"});
    test_cfg t;
    cfg_init(&t, "/m/gz");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c),
           "gz_metric{a=\"b\",instance=\"ADDR\",job=\"node\"} 42 @now\n" REPORT(1, 1, 1, 1, ""));
    vg_scraper_free(s);
    /* the limit applies to the decoded body */
    t.sc[0].metrics_path = "/m/bomb";
    t.sc[0].body_size_limit = 1000;
    s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_timeout(void **state)
{
    set_fixture(0, (fixture){.path = "/m/slow", .body = "a 1\n", .delay_ms = 1500});
    test_cfg t;
    cfg_init(&t, "/m/slow");
    t.sc[0].timeout_ms = 300;
    vg_metrics_t *m = vg_metrics_new();
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, m);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    assert_string_equal(srv_tmo, "0.3");
    vg_metric_t *f = vg_metrics_counter(m, "vigil_scrape_failures_total",
                                        "Failed scrapes by reason.", "reason=\"timeout\"");
    assert_true(vg_metric_value(f) == 1);
    vg_scraper_free(s);
    vg_metrics_free(m);
    capture_free(&c);
}

static void test_sample_limit(void **state)
{
    set_fixture(0, (fixture){.path = "/m/sl", .body = "a 1\nb 2\nc 3\n"});
    test_cfg t;
    cfg_init(&t, "/m/sl");
    t.sc[0].sample_limit = 3;
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c); /* at the limit: fine */
    set_fixture(0, (fixture){.path = "/m/sl", .body = "a 1\nb 2\nc 3\nd 4\ne 5\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "c{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(0, 5, 4, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_label_limit(void **state)
{
    set_fixture(0, (fixture){.path = "/m/ll", .body = "a{x=\"1\"} 1\nb{x=\"1\",y=\"2\"} 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/ll");
    t.sc[0].label_limit = 4; /* __name__, instance, job, x */
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 2, 1, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_parse_error(void **state)
{
    set_fixture(0, (fixture){.path = "/m/bad", .body = "a 1\nb{x=\"1\" 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/bad");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 1, 1, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_duplicates(void **state)
{
    vg_metrics_t *m = vg_metrics_new();
    set_fixture(0, (fixture){.path = "/m/dup", .body = "a{x=\"1\"} 1\na{x=\"1\"} 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/dup");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, m);
    expect(scrape(s, &c),
           "a{instance=\"ADDR\",job=\"node\",x=\"1\"} 1 @now\n" REPORT(1, 2, 2, 1, ""));
    vg_metric_t *d = vg_metrics_counter(m, "vigil_scrape_samples_dropped_total",
                                        "Scraped samples dropped.", "reason=\"duplicate\"");
    assert_true(vg_metric_value(d) == 1);
    vg_scraper_free(s);
    vg_metrics_free(m);
    capture_free(&c);
}

static const char om_body[] = "# TYPE req counter\n"
                              "# HELP req Requests.\n"
                              "req_total{path=\"/\"} 7 # {trace_id=\"abc\"} 1 1.5\n"
                              "req_created{path=\"/\"} 1700000000.5\n"
                              "# TYPE temp gauge\n"
                              "# UNIT temp celsius\n"
                              "temp 20 1700000000.25\n"
                              "# EOF\n";

static void test_openmetrics(void **state)
{
    set_fixture(0,
                (fixture){.path = "/m/om",
                          .body = om_body,
                          .ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8"});
    test_cfg t;
    cfg_init(&t, "/m/om");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c),
           "req_total{instance=\"ADDR\",job=\"node\",path=\"/\"} 7 @now\n"
           "temp{instance=\"ADDR\",job=\"node\"} 20 @1700000000250\n" REPORT(1, 2, 2, 2, ""));
    vg_scraper_free(s);
    /* the same body served as text/plain fails to parse (exemplar) */
    set_fixture(0, (fixture){.path = "/m/om", .body = om_body});
    s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

/* Two jobs, three targets, each with its own body; one multi handle. */
static void test_many_targets(void **state)
{
    set_fixture(0, (fixture){.path = "/m/j1", .body = "one 1\n"});
    set_fixture(1, (fixture){.path = "/m/j2", .body = "two 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/j1");
    static char addr2[80];
    snprintf(addr2, sizeof addr2, "localhost:%u", vg_httpd_port(httpd));
    t.targets[0][1] = addr2;
    t.grp[0].ntargets = 2;
    t.targets[1][0] = addr;
    vg_label_t job[] = {{"job", "custom"}, {"__metrics_path__", "/m/j2"}};
    t.grp[1] = (vg_static_group_t){.targets = t.targets[1], .ntargets = 1};
    t.sc[1] = t.sc[0];
    t.sc[1].job_name = "second";
    t.sc[1].static_configs = &t.grp[1];
    t.grp[1].labels = job;
    t.grp[1].nlabels = 2;
    t.cfg.nscrape_configs = 2;
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    assert_int_equal(vg_scraper_ntargets(s), 3);
    const char *got = scrape(s, &c);
    char line[256];
    snprintf(line, sizeof line, "one{instance=\"%s\",job=\"node\"} 1 @now\n", addr);
    assert_non_null(strstr(got, line));
    snprintf(line, sizeof line, "one{instance=\"%s\",job=\"node\"} 1 @now\n", addr2);
    assert_non_null(strstr(got, line));
    snprintf(line, sizeof line, "two{instance=\"%s\",job=\"custom\"} 2 @now\n", addr);
    assert_non_null(strstr(got, line));
    assert_int_equal(c.commits, 3);
    vg_scraper_free(s);
    capture_free(&c);
}

static void test_bad_target(void **state)
{
    test_cfg t;
    cfg_init(&t, "/metrics");
    t.targets[0][0] = "http://host:1/metrics";
    vg_scraper_t *s = (vg_scraper_t *)1;
    vg_error err = {0};
    assert_int_equal(vg_scraper_new(&t.cfg, on_emit, on_commit, NULL, NULL, &s, &err), VG_ECONFIG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "not a valid host:port"));
}

/* The real thread: wait (bounded) for one scrape, then stop promptly. */
static void test_thread(void **state)
{
    set_fixture(0, (fixture){.path = "/m/thr", .body = "a 1\n"});
    test_cfg t;
    cfg_init(&t, "/m/thr");
    t.sc[0].interval_ms = 500;
    t.sc[0].timeout_ms = 400;
    capture c;
    capture_init(&c);
    c.now_hi = INT64_MAX;
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    vg_error err = {0};
    assert_int_equal(vg_scraper_start(s, &err), VG_OK);
    assert_int_equal(vg_scraper_run_once(s, &err), VG_EINVAL);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&c.mu);
    while (c.commits < 2)
        if (pthread_cond_timedwait(&c.cv, &c.mu, &dl) != 0) break;
    int commits = c.commits;
    pthread_mutex_unlock(&c.mu);
    assert_true(commits >= 2);
    vg_scraper_free(s);
    capture_free(&c);
}

/* ------------------------------------------------------------ relabeling */

static vg_relabel_t *compile(const vg_relabel_rule_t *rules, size_t n)
{
    vg_relabel_t *r = NULL;
    vg_error err = {0};
    if (vg_relabel_new(rules, n, &r, NULL, &err)) fail_msg("relabel: %s", err.msg);
    return r;
}

#define SRC(...)                                                                                   \
    .source_labels = (const char *[]){__VA_ARGS__},                                                \
    .nsource_labels = sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)

/* Target relabeling: keep by a group label, drop another, set a label from
 * __address__, route through __param_module and __metrics_path__. */
static void test_target_relabel(void **state)
{
    set_fixture(0, (fixture){.path = "/m/probe", .body = "probe_success 1\n"});
    test_cfg t;
    cfg_init(&t, "/m/ignored");
    static const char *extra[] = {"keep.example:1", "drop.example:2"};
    t.targets[0][0] = addr;
    vg_label_t keep_l[] = {{"__meta_role", "web"}, {"team", "a"}};
    vg_label_t drop_l[] = {{"__meta_role", "db"}};
    t.grp[0].labels = keep_l;
    t.grp[0].nlabels = 2;
    t.grp[1] = (vg_static_group_t){.targets = extra, .ntargets = 2, .labels = drop_l, .nlabels = 1};
    t.sc[0].nstatic = 2;
    vg_relabel_rule_t rules[] = {
        {SRC("__meta_role"), .regex = "web", .action = "keep"},
        {SRC("__address__"), .regex = "([^:]+):(\\d+)", .target_label = "port",
         .replacement = "p$2"},
        {.target_label = "__param_module", .replacement = "http_2xx"},
        {.target_label = "__metrics_path__", .replacement = "/m/probe"},
        {.regex = "__meta_(.*)", .replacement = "meta_$1", .action = "labelmap"},
    };
    t.sc[0].relabel = compile(rules, 5);
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    assert_int_equal(vg_scraper_ntargets(s), 1);
    char url[160];
    snprintf(url, sizeof url, "http://%s/m/probe?module=http_2xx", addr);
    assert_string_equal(vg_scraper_target_url(s, 0), url);
    const char *got = scrape(s, &c);
    const char *port = strrchr(addr, ':') + 1;
    char line[256];
    snprintf(line, sizeof line,
             "probe_success{instance=\"%s\",job=\"node\",meta_role=\"web\",port=\"p%s\","
             "team=\"a\"} 1 @now\n",
             addr, port);
    if (!strstr(got, line)) fail_msg("missing %s in\n%s", line, got);
    assert_string_equal(srv_module, "http_2xx");
    assert_null(strstr(got, "__"));
    vg_scraper_free(s);
    vg_relabel_free(t.sc[0].relabel);
    capture_free(&c);
}

/* metric_relabel_configs: drop by name, rename, drop a label; the limits
 * and scrape_samples_post_metric_relabeling see what is left. */
static void test_metric_relabel(void **state)
{
    set_fixture(0, (fixture){.path = "/m/mr",
                             .body = "go_goroutines 5\n"
                                     "go_threads 7\n"
                                     "old_requests_total{path=\"/a\",secret=\"x\"} 3\n"
                                     "keep_me 1\n"});
    test_cfg t;
    cfg_init(&t, "/m/mr");
    vg_relabel_rule_t rules[] = {
        {SRC("__name__"), .regex = "go_.*", .action = "drop"},
        {SRC("__name__"), .regex = "old_(.*)", .target_label = "__name__", .replacement = "new_$1"},
        {.regex = "secret", .action = "labeldrop"},
    };
    t.sc[0].metric_relabel = compile(rules, 3);
    t.sc[0].sample_limit = 2; /* 4 scraped, 2 left: within the limit */
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c),
           "new_requests_total{instance=\"ADDR\",job=\"node\",path=\"/a\"} 3 @now\n"
           "keep_me{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 4, 2, 2, ""));
    vg_scraper_free(s);
    vg_relabel_free(t.sc[0].metric_relabel);
    capture_free(&c);
}

/* Relabeling that removes __name__ fails the scrape, as in Prometheus. */
static void test_metric_relabel_no_name(void **state)
{
    set_fixture(0, (fixture){.path = "/m/nn", .body = "a 1\n"});
    test_cfg t;
    cfg_init(&t, "/m/nn");
    vg_relabel_rule_t rules[] = {{.regex = "__name__", .action = "labeldrop"}};
    t.sc[0].metric_relabel = compile(rules, 1);
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 1, 0, 0, ""));
    vg_scraper_free(s);
    vg_relabel_free(t.sc[0].metric_relabel);
    capture_free(&c);
}

/* A dropped target is simply absent; a rewritten __address__ that is not a
 * host:port is an error at start-up for a static target. */
static void test_target_relabel_drop_all(void **state)
{
    test_cfg t;
    cfg_init(&t, "/m/x");
    vg_relabel_rule_t drop[] = {{SRC("job"), .regex = "node", .action = "drop"}};
    t.sc[0].relabel = compile(drop, 1);
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    assert_int_equal(vg_scraper_ntargets(s), 0);
    vg_scraper_free(s);
    vg_relabel_free(t.sc[0].relabel);
    vg_relabel_rule_t bad[] = {{.target_label = "__address__", .replacement = "a/b"}};
    t.sc[0].relabel = compile(bad, 1);
    vg_error err = {0};
    assert_int_equal(vg_scraper_new(&t.cfg, on_emit, on_commit, &c, NULL, &s, &err), VG_ECONFIG);
    assert_non_null(strstr(err.msg, "\"a/b:80\" is not a valid host:port"));
    vg_relabel_free(t.sc[0].relabel);
    capture_free(&c);
}

/* basic_auth and authorization reach the server; credentials_file is re-read. */
static void test_auth(void **state)
{
    set_fixture(0, (fixture){.path = "/m/auth", .body = "a 1\n"});
    test_cfg t;
    cfg_init(&t, "/m/auth");
    t.sc[0].auth = (vg_scrape_auth_t){.basic = 1, .username = "user", .password = "pa:ss"};
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    assert_string_equal(srv_auth, "Basic dXNlcjpwYTpzcw=="); /* base64("user:pa:ss") */
    vg_scraper_free(s);

    t.sc[0].auth = (vg_scrape_auth_t){.auth_type = "Bearer", .credentials = "tok"};
    s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    assert_string_equal(srv_auth, "Bearer tok");
    vg_scraper_free(s);

    char path[] = "/tmp/vigil-cred-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "  first\n", 8), 8);
    close(fd);
    t.sc[0].auth = (vg_scrape_auth_t){.auth_type = "Custom", .credentials_file = path};
    s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    assert_string_equal(srv_auth, "Custom first");
    FILE *f = fopen(path, "w");
    fputs("second", f);
    fclose(f);
    scrape(s, &c);
    assert_string_equal(srv_auth, "Custom second");
    unlink(path);
    const char *got = scrape(s, &c); /* unreadable: the scrape fails, the secret is not logged */
    assert_non_null(strstr(got, "up{instance=\""));
    assert_non_null(strstr(got, "job=\"node\"} 0 @now"));
    vg_scraper_free(s);
    capture_free(&c);
}

/* ------------------------------------------------------------ staleness by hash + reparse */

static const vg_scrape_series *series_of(vg_scraper_t *s)
{
    return &s->targets[0]->series;
}

/* The kept body is replaced only when a scrape brings a series it does not
 * cover; vanished series are recovered from whichever body is kept. */
static void test_stale_reparse(void **state)
{
    set_fixture(0, (fixture){.path = "/m/rp", .body = "a 1\nb{x=\"q\\\"uote\"} 2\nc 3\n"});
    test_cfg t;
    cfg_init(&t, "/m/rp");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    const void *kept = series_of(s)->body;
    assert_non_null(kept);
    assert_int_equal(series_of(s)->n, 3);
    /* b and c vanish: both recovered from the first body, escapes intact */
    set_fixture(0, (fixture){.path = "/m/rp", .body = "a 1\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n"
                          "b{instance=\"ADDR\",job=\"node\",x=\"q\\\"uote\"} STALE @now\n"
                          "c{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(1, 1, 1, 0, ""));
    assert_ptr_equal(series_of(s)->body, kept); /* covered: not stored again */
    /* b comes back: added, still covered, nothing stale */
    set_fixture(0, (fixture){.path = "/m/rp", .body = "b{x=\"q\\\"uote\"} 5\na 1\n"});
    expect(scrape(s, &c), "b{instance=\"ADDR\",job=\"node\",x=\"q\\\"uote\"} 5 @now\n"
                          "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 2, 2, 1, ""));
    assert_ptr_equal(series_of(s)->body, kept);
    /* d is new: the body is stored again; b goes stale from the old one */
    set_fixture(0, (fixture){.path = "/m/rp", .body = "a 1\nd 4\n"});
    expect(scrape(s, &c),
           "a{instance=\"ADDR\",job=\"node\"} 1 @now\n"
           "d{instance=\"ADDR\",job=\"node\"} 4 @now\n"
           "b{instance=\"ADDR\",job=\"node\",x=\"q\\\"uote\"} STALE @now\n" REPORT(1, 2, 2, 1, ""));
    assert_int_equal(series_of(s)->n, 2);
    /* everything goes: a and d come from the new body */
    set_fixture(0, (fixture){.path = "/m/rp", .body = "e 5\n"});
    expect(scrape(s, &c), "e{instance=\"ADDR\",job=\"node\"} 5 @now\n"
                          "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "d{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(1, 1, 1, 1, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

/* A previous scrape that failed to parse leaves nothing to mark stale, and
 * the series it had are added again. */
static void test_stale_after_parse_error(void **state)
{
    set_fixture(0, (fixture){.path = "/m/pe", .body = "a 1\nb 2\n"});
    test_cfg t;
    cfg_init(&t, "/m/pe");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    set_fixture(0, (fixture){.path = "/m/pe", .body = "a 1\nb{ 2\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(0, 1, 1, 0, ""));
    assert_null(series_of(s)->body);
    assert_int_equal(series_of(s)->n, 0);
    set_fixture(0, (fixture){.path = "/m/pe", .body = "a 1\n"});
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n" REPORT(1, 1, 1, 1, ""));
    /* a first scrape that fails has nothing to mark either */
    vg_scraper_free(s);
    set_fixture(0, (fixture){.path = "/m/pe", .body = "a{\n"});
    s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), REPORT(0, 0, 0, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

/* Recovered series go through the same merge and metric relabeling: the
 * markers carry exported_ names and relabeled labels; a series that
 * relabeling drops is never tracked. OpenMetrics bodies re-parse as such. */
static void test_stale_relabeled(void **state)
{
    set_fixture(0, (fixture){.path = "/m/sr",
                             .body = "# TYPE m counter\n"
                                     "m_total{job=\"app\",k=\"1\"} 1\n"
                                     "m_total{job=\"app\",k=\"2\"} 2\n"
                                     "drop_me 3\n"
                                     "# EOF\n",
                             .ctype = "application/openmetrics-text; version=1.0.0"});
    test_cfg t;
    cfg_init(&t, "/m/sr");
    vg_relabel_rule_t rules[] = {
        {SRC("__name__"), .regex = "drop_me", .action = "drop"},
        {SRC("k"), .target_label = "kk", .replacement = "v$1"},
    };
    t.sc[0].metric_relabel = compile(rules, 2);
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    assert_int_equal(series_of(s)->n, 2);
    set_fixture(0, (fixture){.path = "/m/sr",
                             .body = "# TYPE m counter\nm_total{job=\"app\",k=\"1\"} 1\n# EOF\n",
                             .ctype = "application/openmetrics-text; version=1.0.0"});
    expect(scrape(s, &c),
           "m_total{exported_job=\"app\",instance=\"ADDR\",job=\"node\",k=\"1\",kk=\"v1\"} 1 @now\n"
           "m_total{exported_job=\"app\",instance=\"ADDR\",job=\"node\",k=\"2\",kk=\"v2\"} STALE "
           "@now\n" REPORT(1, 1, 1, 0, ""));
    vg_scraper_free(s);
    vg_relabel_free(t.sc[0].metric_relabel);
    capture_free(&c);
}

/* Retiring a target marks every tracked series of its last scrape (not the
 * ones with their own timestamps) and its report series. */
static void test_retire(void **state)
{
    set_fixture(0, (fixture){.path = "/m/rt", .body = "a 1\nb 2 1000\n"});
    test_cfg t;
    cfg_init(&t, "/m/rt");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    scrape(s, &c);
    vg_buf_reset(&c.out);
    c.now_lo = wall_ms();
    c.now_hi = c.now_lo + 60000;
    vg_scrape_retire(s->targets[0], &s->sink, wall_ms());
    expect(c.out.data, "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                       "up{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                       "scrape_duration_seconds{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                       "scrape_samples_scraped{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                       "scrape_samples_post_metric_relabeling{instance=\"ADDR\",job=\"node\"} "
                       "STALE @now\n"
                       "scrape_series_added{instance=\"ADDR\",job=\"node\"} STALE @now\n");
    assert_int_equal(series_of(s)->n, 0);
    vg_scraper_free(s);
    capture_free(&c);
}

/* A series repeated in one body is emitted once, and the repeat does not
 * count as added or make the kept set ambiguous. */
static void test_duplicates_staleness(void **state)
{
    set_fixture(0, (fixture){.path = "/m/dd", .body = "a 1\nb 2\na 3\nb 4\nc 5\n"});
    test_cfg t;
    cfg_init(&t, "/m/dd");
    capture c;
    capture_init(&c);
    vg_scraper_t *s = new_scraper(&t, &c, NULL);
    expect(scrape(s, &c), "a{instance=\"ADDR\",job=\"node\"} 1 @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} 2 @now\n"
                          "c{instance=\"ADDR\",job=\"node\"} 5 @now\n" REPORT(1, 5, 5, 3, ""));
    set_fixture(0, (fixture){.path = "/m/dd", .body = "c 1\n"});
    expect(scrape(s, &c), "c{instance=\"ADDR\",job=\"node\"} 1 @now\n"
                          "a{instance=\"ADDR\",job=\"node\"} STALE @now\n"
                          "b{instance=\"ADDR\",job=\"node\"} STALE @now\n" REPORT(1, 1, 1, 0, ""));
    vg_scraper_free(s);
    capture_free(&c);
}

/* ------------------------------------------------------------ internals */

static void test_merge_labels(void **state)
{
    vg_scrape_target_t t;
    memset(&t, 0, sizeof t);
    vg_label_t tl[] = {{"instance", "h:1"}, {"job", "j"}};
    t.labels = tl;
    t.nlabels = 2;
    vg_arena_t *a = vg_arena_new(0);
    vg_label_t sl[] = {{"job", "x"}, {"exported_job", "y"}, {"b", ""}, {"instance", "i"}};
    vg_label_t out[16];
    size_t n = vg_scrape_merge_labels(&t, 0, "m", sl, 4, a, out);
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_labels_format(out, n, &b);
    /* conflicts resolve shortest name first: job takes exported_exported_job */
    assert_string_equal(b.data, "m{exported_exported_job=\"x\",exported_instance=\"i\","
                                "exported_job=\"y\",instance=\"h:1\",job=\"j\"}");
    vg_buf_reset(&b);
    n = vg_scrape_merge_labels(&t, 1, "m", sl, 4, a, out);
    vg_labels_format(out, n, &b);
    assert_string_equal(b.data, "m{exported_job=\"y\",instance=\"i\",job=\"x\"}");
    vg_buf_free(&b);
    vg_arena_free(a);
}

static void test_phase(void **state)
{
    test_cfg t;
    cfg_init(&t, "/metrics");
    vg_scrape_target_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    vg_error err = {0};
    assert_int_equal(vg_scrape_target_init(&a, &t.cfg, &t.sc[0], &t.grp[0], "h1:9100", &err), 0);
    assert_int_equal(vg_scrape_target_init(&b, &t.cfg, &t.sc[0], &t.grp[0], "h2:9100", &err), 0);
    assert_true(a.offset_ms < 15000 && b.offset_ms < 15000);
    assert_true(a.offset_ms != b.offset_ms);
    /* the first scrape lands on the target's phase */
    int64_t now = 1700000001234;
    int64_t d = vg_scrape_target_first_delay(&a, now);
    assert_true(d >= 0 && d < 15000);
    assert_int_equal((now + d) % 15000, (int64_t)a.offset_ms);
    assert_int_equal(vg_scrape_target_first_delay(&a, now + d), 0);
    vg_scrape_target_destroy(&a);
    vg_scrape_target_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_basic, reset_fixtures),
        cmocka_unit_test_setup(test_honor_labels, reset_fixtures),
        cmocka_unit_test_setup(test_honor_timestamps_off, reset_fixtures),
        cmocka_unit_test_setup(test_staleness, reset_fixtures),
        cmocka_unit_test_setup(test_failed_target, reset_fixtures),
        cmocka_unit_test_setup(test_unreachable, reset_fixtures),
        cmocka_unit_test_setup(test_body_size_limit, reset_fixtures),
        cmocka_unit_test_setup(test_gzip, reset_fixtures),
        cmocka_unit_test_setup(test_timeout, reset_fixtures),
        cmocka_unit_test_setup(test_sample_limit, reset_fixtures),
        cmocka_unit_test_setup(test_label_limit, reset_fixtures),
        cmocka_unit_test_setup(test_parse_error, reset_fixtures),
        cmocka_unit_test_setup(test_duplicates, reset_fixtures),
        cmocka_unit_test_setup(test_openmetrics, reset_fixtures),
        cmocka_unit_test_setup(test_many_targets, reset_fixtures),
        cmocka_unit_test_setup(test_bad_target, reset_fixtures),
        cmocka_unit_test_setup(test_thread, reset_fixtures),
        cmocka_unit_test_setup(test_target_relabel, reset_fixtures),
        cmocka_unit_test_setup(test_metric_relabel, reset_fixtures),
        cmocka_unit_test_setup(test_metric_relabel_no_name, reset_fixtures),
        cmocka_unit_test_setup(test_target_relabel_drop_all, reset_fixtures),
        cmocka_unit_test_setup(test_auth, reset_fixtures),
        cmocka_unit_test_setup(test_stale_reparse, reset_fixtures),
        cmocka_unit_test_setup(test_stale_after_parse_error, reset_fixtures),
        cmocka_unit_test_setup(test_stale_relabeled, reset_fixtures),
        cmocka_unit_test_setup(test_retire, reset_fixtures),
        cmocka_unit_test_setup(test_duplicates_staleness, reset_fixtures),
        cmocka_unit_test(test_merge_labels),
        cmocka_unit_test(test_phase),
    };
    return cmocka_run_group_tests(tests, setup_server, teardown_server);
}
