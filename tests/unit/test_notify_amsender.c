/*
 * test_notify_amsender.c - the external Alertmanager sender: postableAlert
 * encoding, drop-oldest when the queue is full, batches of at most 64, and
 * one real POST to an embedded HTTP server standing in for Alertmanager.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "notify/amsender.h"
#include "vigil/httpd.h"

static vg_alert_t alert(vg_label_t *l, char *val, int i)
{
    snprintf(val, 16, "i%d", i);
    l[0] = (vg_label_t){"alertname", "Down"};
    l[1] = (vg_label_t){"instance", val};
    return (vg_alert_t){.labels = l, .nlabels = 2, .starts_at = 1700000000000LL};
}

static void test_encode(void **state)
{
    (void)state;
    vg_label_t l[2], an[] = {{"summary", "x \"y\""}};
    char v[16];
    vg_alert_t a = alert(l, v, 1);
    a.annotations = an;
    a.nannotations = 1;
    a.ends_at = 1700000060000LL;
    a.generator_url = "http://g/";
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_amsender_encode(&a, &b), VG_OK);
    assert_string_equal(b.data,
                        "{\"labels\":{\"alertname\":\"Down\",\"instance\":\"i1\"},"
                        "\"annotations\":{\"summary\":\"x \\\"y\\\"\"},"
                        "\"startsAt\":\"2023-11-14T22:13:20Z\","
                        "\"endsAt\":\"2023-11-14T22:14:20Z\",\"generatorURL\":\"http://g/\"}");
    vg_buf_free(&b);
}

static void test_drop_oldest_and_batches(void **state)
{
    (void)state;
    vg_amconfig_t cfg = {0};
    vg_amsender_t *s;
    assert_int_equal(vg_amsender_new(&cfg, NULL, 100, &s, NULL), VG_OK);
    for (int i = 0; i < 130; i++) {
        vg_label_t l[2];
        char v[16];
        vg_alert_t a = alert(l, v, i);
        vg_amsender_put(s, &a, 1);
    }
    assert_int_equal(vg_amsender_queued(s), 100);
    assert_int_equal(vg_amsender_dropped(s), 30);
    vg_buf b;
    vg_buf_init(&b, 0);
    assert_int_equal(vg_amsender_take(s, &b), 64);
    assert_non_null(strstr(b.data, "\"i30\"")); /* the oldest kept */
    assert_null(strstr(b.data, "\"i29\""));
    assert_true(b.data[0] == '[' && b.data[b.len - 1] == ']');
    vg_buf_reset(&b);
    assert_int_equal(vg_amsender_take(s, &b), 36);
    assert_non_null(strstr(b.data, "\"i129\""));
    vg_buf_reset(&b);
    assert_int_equal(vg_amsender_take(s, &b), 0);
    vg_buf_free(&b);
    vg_amsender_free(s);
}

static char got[8192];
static volatile int ngot;

static void on_post(void *ud, const vg_http_req *r, vg_http_resp *resp)
{
    (void)ud;
    size_t len;
    const uint8_t *body = vg_http_req_body(r, &len);
    if (len < sizeof(got)) {
        memcpy(got, body, len);
        got[len] = 0;
    }
    __atomic_add_fetch(&ngot, 1, __ATOMIC_SEQ_CST);
    resp->status = 200;
}

static void test_posts_to_alertmanager(void **state)
{
    (void)state;
    vg_httpd_t *h = vg_httpd_new(NULL);
    assert_int_equal(vg_httpd_route(h, "POST", "/am/api/v2/alerts", on_post, NULL), VG_OK);
    assert_int_equal(vg_httpd_start(h, NULL), VG_OK);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned)vg_httpd_port(h));
    const char *targets[] = {target};
    vg_am_external_t ext = {.targets = targets, .ntargets = 1, .path_prefix = "/am"};
    vg_amconfig_t cfg = {.alertmanagers = &ext, .nalertmanagers = 1};
    vg_amsender_t *s;
    assert_int_equal(vg_amsender_new(&cfg, NULL, 0, &s, NULL), VG_OK);
    assert_int_equal(vg_amsender_start(s, NULL), VG_OK);
    vg_label_t l[2];
    char v[16];
    vg_alert_t a = alert(l, v, 7);
    vg_amsender_put(s, &a, 1);
    for (int i = 0; i < 1000 && !__atomic_load_n(&ngot, __ATOMIC_SEQ_CST); i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL); /* bounded wait for the sender thread, not a timing assert */
    }
    assert_int_equal(__atomic_load_n(&ngot, __ATOMIC_SEQ_CST), 1);
    assert_non_null(strstr(got, "\"instance\":\"i7\""));
    vg_amsender_free(s);
    vg_httpd_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_drop_oldest_and_batches),
        cmocka_unit_test(test_posts_to_alertmanager),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
