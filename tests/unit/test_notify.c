/*
 * test_notify.c - notifier payloads against golden JSON (webhook v4,
 * PagerDuty Events v2 trigger and resolve, Slack), retry classification,
 * backoff bounds and the fingerprint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "notify/notify.h"
#include "vigil/clock.h"
#include "vigil/httpd.h"

static const vg_label_t L1[] = {{"alertname", "Down"}, {"instance", "a"}, {"severity", "critical"}};
static const vg_label_t L2[] = {{"alertname", "Down"}, {"instance", "b"}, {"severity", "critical"}};
static const vg_label_t A1[] = {{"summary", "a is down"}};
static const vg_label_t GL[] = {{"alertname", "Down"}};

static vg_notify_msg_t msg(vg_notify_alert_t *al)
{
    al[0] = (vg_notify_alert_t){L1, 3, A1, 1, 1700000000123LL, 0, "http://p/g", 0, 0};
    al[1] = (vg_notify_alert_t){L2, 3, NULL, 0, 1700000000000LL, 1700000060500LL, NULL, 0, 1};
    al[0].fp = vg_notify_fingerprint(L1, 3);
    al[1].fp = vg_notify_fingerprint(L2, 3);
    return (vg_notify_msg_t){"team", "{}:{alertname=\"Down\"}", GL, 1, al, 2, "http://vigil"};
}

static void golden(const vg_notifier_t *n, const void *conf, const vg_notify_msg_t *m,
                   const char *want)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(n->encode(conf, m, &b), VG_OK);
    assert_string_equal(b.data, want);
    vg_buf_free(&b);
}

static void test_webhook(void **state)
{
    (void)state;
    vg_notify_alert_t al[2];
    vg_notify_msg_t m = msg(al);
    vg_am_webhook_t w = {.send_resolved = 1, .url = "http://x"};
    golden(&vg_notifier_webhook, &w, &m,
           "{\"receiver\":\"team\",\"status\":\"firing\",\"alerts\":["
           "{\"status\":\"firing\",\"labels\":{\"alertname\":\"Down\",\"instance\":\"a\","
           "\"severity\":\"critical\"},\"annotations\":{\"summary\":\"a is down\"},"
           "\"startsAt\":\"2023-11-14T22:13:20.123Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
           "\"generatorURL\":\"http://p/g\",\"fingerprint\":\"55dbe9f10d24a0f6\"},"
           "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"Down\",\"instance\":\"b\","
           "\"severity\":\"critical\"},\"annotations\":{},\"startsAt\":\"2023-11-14T22:13:20Z\","
           "\"endsAt\":\"2023-11-14T22:14:20.5Z\",\"generatorURL\":\"\","
           "\"fingerprint\":\"e0dcfd82e8249379\"}],"
           "\"groupLabels\":{\"alertname\":\"Down\"},\"commonLabels\":{\"alertname\":\"Down\","
           "\"severity\":\"critical\"},\"commonAnnotations\":{},\"externalURL\":\"http://vigil\","
           "\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"Down\\\"}\",\"truncatedAlerts\":0}");
    w.max_alerts = 1;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_notifier_webhook.encode(&w, &m, &b), VG_OK);
    assert_non_null(strstr(b.data, "\"truncatedAlerts\":1}"));
    vg_buf_free(&b);
}

static void test_pagerduty(void **state)
{
    (void)state;
    vg_notify_alert_t al[2];
    vg_notify_msg_t m = msg(al);
    vg_am_pagerduty_t p = {.send_resolved = 1, .routing_key = "rk"};
    golden(&vg_notifier_pagerduty, &p, &m,
           "{\"routing_key\":\"rk\",\"event_action\":\"trigger\",\"dedup_key\":"
           "\"af94c9e8f6a3043625e36c6f472fe6be85ac23a9117184ee4cb7b4ad7401a47e\","
           "\"client\":\"Vigil\",\"client_url\":\"http://vigil\",\"payload\":{\"summary\":"
           "\"[FIRING:1] Down (critical)\",\"source\":\"Vigil\",\"severity\":\"error\","
           "\"custom_details\":{\"firing\":\"Labels:\\n - alertname = Down\\n - instance = a\\n"
           " - severity = critical\\nAnnotations:\\n - summary = a is down\\nSource: "
           "http://p/g\\n\",\"num_firing\":\"1\",\"num_resolved\":\"1\",\"resolved\":\"Labels:\\n"
           " - alertname = Down\\n - instance = b\\n - severity = critical\\nAnnotations:\\n"
           "Source: \\n\"}}}");
    al[0].resolved = 1;
    golden(&vg_notifier_pagerduty, &p, &m,
           "{\"routing_key\":\"rk\",\"event_action\":\"resolve\",\"dedup_key\":"
           "\"af94c9e8f6a3043625e36c6f472fe6be85ac23a9117184ee4cb7b4ad7401a47e\","
           "\"client\":\"Vigil\",\"client_url\":\"http://vigil\"}");
    vg_buf s;
    vg_buf_init(&s, 0);
    vg_amconfig_t cfg = {.pagerduty_url = "http://127.0.0.1:5/v2/enqueue"};
    assert_string_equal(vg_notifier_pagerduty.url(&p, &cfg, &s), "http://127.0.0.1:5/v2/enqueue");
    p.url = "http://127.0.0.1:6/x";
    assert_string_equal(vg_notifier_pagerduty.url(&p, &cfg, &s), "http://127.0.0.1:6/x");
    vg_buf_free(&s);
}

static void test_slack(void **state)
{
    (void)state;
    vg_notify_alert_t al[2];
    vg_notify_msg_t m = msg(al);
    vg_am_slack_t s = {.channel = "#ops"};
    golden(&vg_notifier_slack, &s, &m,
           "{\"channel\":\"#ops\",\"attachments\":[{\"title\":\"[FIRING:1] Down (critical)\","
           "\"title_link\":\"http://vigil/#/alerts?receiver=team\",\"text\":\"\","
           "\"fallback\":\"[FIRING:1] Down (critical) | http://vigil/#/alerts?receiver=team\","
           "\"color\":\"danger\",\"mrkdwn_in\":[\"fallback\",\"pretext\",\"text\"]}]}");
    al[0].resolved = 1;
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_notifier_slack.encode(&s, &m, &b), VG_OK);
    assert_non_null(strstr(b.data, "\"color\":\"good\""));
    assert_non_null(strstr(b.data, "[RESOLVED] Down"));
    vg_buf_free(&b);
}

static void test_classify_and_backoff(void **state)
{
    (void)state;
    assert_int_equal(vg_notify_classify(VG_OK, 200), VG_NOTIFY_OK);
    assert_int_equal(vg_notify_classify(VG_OK, 202), VG_NOTIFY_OK);
    assert_int_equal(vg_notify_classify(VG_ERETRY, 0), VG_NOTIFY_RETRY);
    assert_int_equal(vg_notify_classify(VG_OK, 500), VG_NOTIFY_RETRY);
    assert_int_equal(vg_notify_classify(VG_OK, 503), VG_NOTIFY_RETRY);
    assert_int_equal(vg_notify_classify(VG_OK, 429), VG_NOTIFY_RETRY);
    assert_int_equal(vg_notify_classify(VG_OK, 400), VG_NOTIFY_FAIL);
    assert_int_equal(vg_notify_classify(VG_OK, 404), VG_NOTIFY_FAIL);
    assert_int_equal(vg_notify_classify(VG_OK, 301), VG_NOTIFY_FAIL);
    for (unsigned a = 0; a < 20; a++)
        for (uint64_t r = 0; r < 2000000; r += 333333) {
            int64_t b = vg_notify_backoff_ms(a, r);
            int64_t base = a >= 5 ? 10000 : 500LL << a;
            if (base > 10000) base = 10000;
            assert_true(b >= base / 2 && b < base * 3 / 2);
        }
}

static void test_fingerprint_and_time(void **state)
{
    (void)state;
    /* model.LabelSet{}.Fingerprint() is the FNV-64a offset basis */
    assert_int_equal(vg_notify_fingerprint(NULL, 0), 14695981039346656037ULL);
    vg_buf b;
    vg_buf_init(&b, 0);
    vg_notify_time(&b, 1700000000100LL);
    assert_string_equal(b.data, "2023-11-14T22:13:20.1Z");
    vg_buf_free(&b);
}

/* A receiver answering scripted statuses, counting requests. */
static int script[8], nscript, nreq;

static void on_req(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    (void)ud;
    (void)r;
    int i = __atomic_fetch_add(&nreq, 1, __ATOMIC_SEQ_CST);
    resp->status = i < nscript ? script[i] : 200;
}

static int no_wait(void *ud, int64_t ms)
{
    (void)ud;
    (void)ms;
    return 0;
}

static vg_err_t post_with(vg_httpd_t *h, vg_httpc_t *c, const int *st, int n,
                          vg_notify_counters_t *cnt)
{
    memcpy(script, st, (size_t)n * sizeof(*st));
    nscript = n;
    nreq = 0;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)vg_httpd_port(h));
    vg_notify_target_t t = {c, url, NULL, vg_clock_mono_ms() + 3600000, no_wait, NULL, cnt};
    return vg_notify_post(&t, "{}", 2, NULL);
}

static void test_retry_policy(void **state)
{
    (void)state;
    vg_metrics_t *m = vg_metrics_new();
    vg_notify_counters_t cnt;
    vg_notify_counters_init(m, "webhook", &cnt);
    vg_httpd_t *h = vg_httpd_new(NULL);
    assert_int_equal(vg_httpd_route(h, "POST", "/hook", on_req, NULL), VG_OK);
    assert_int_equal(vg_httpd_start(h, NULL), VG_OK);
    vg_httpc_t *c = vg_httpc_new();
    int retry_then_ok[] = {503, 429, 500, 200};
    assert_int_equal(post_with(h, c, retry_then_ok, 4, &cnt), VG_OK);
    assert_int_equal(nreq, 4);
    int client_error[] = {400, 200};
    assert_int_equal(post_with(h, c, client_error, 2, &cnt), VG_EPROTO);
    assert_int_equal(nreq, 1); /* a 4xx other than 429 is never retried */
    assert_true(vg_metric_value(cnt.sent) == 2);
    assert_true(vg_metric_value(cnt.requests) == 5);
    assert_true(vg_metric_value(cnt.requests_failed) == 4);
    assert_true(vg_metric_value(cnt.failed_status) == 1);
    /* past the deadline the retries stop */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/hook", (unsigned)vg_httpd_port(h));
    int always[] = {503, 503, 503, 503, 503, 503, 503, 503};
    memcpy(script, always, sizeof(always));
    nscript = 8;
    nreq = 0;
    vg_notify_target_t t = {c, url, NULL, vg_clock_mono_ms() + 1, no_wait, NULL, &cnt};
    assert_int_equal(vg_notify_post(&t, "{}", 2, NULL), VG_ERETRY);
    assert_true(vg_metric_value(cnt.failed_network) == 1);
    vg_httpc_free(c);
    vg_httpd_free(h);
    vg_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook),
        cmocka_unit_test(test_pagerduty),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_classify_and_backoff),
        cmocka_unit_test(test_fingerprint_and_time),
        cmocka_unit_test(test_retry_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
