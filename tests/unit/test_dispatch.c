/*
 * test_dispatch.c - the dispatcher on an injected clock: group_wait,
 * group_interval, repeat_interval, resolution, muting, failed deliveries
 * and group keys. Flushes run inline (workers = 0) and deliveries are
 * recorded instead of posted, so nothing sleeps. Reloads: alerts are
 * re-routed under the new routes and receivers, new inhibit rules apply to
 * alerts already stored, a failing reconfigure changes nothing, and
 * allocation failures during a reload leave a working dispatcher.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alerting/alerts_api.h"
#include "alerting/dispatch.h"
#include "alerting/inhibit.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/clock.h"

static const char *CFG =
    "route:\n"
    "  receiver: hook\n"
    "  group_by: [alertname]\n"
    "  group_wait: 10s\n"
    "  group_interval: 1m\n"
    "  repeat_interval: 1h\n"
    "  routes:\n"
    "    - matchers: ['team=\"db\"']\n"
    "      receiver: quiet\n"
    "      group_by: ['...']\n"
    "receivers:\n"
    "  - name: hook\n"
    "    webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]\n"
    "  - name: quiet\n"
    "    webhook_configs: [{url: 'http://127.0.0.1:1/q', send_resolved: false}]\n";

typedef struct sent {
    char receiver[32];
    char key[256];
    int nfiring, nresolved;
    char body[4096];
} sent;

typedef struct fx {
    vg_arena_t *arena;
    vg_amconfig_t cfg;
    vg_nflog_t *log;
    vg_dispatch_t *d;
    sent out[32];
    int n;
    int fail;         /* deliveries fail while set */
    const char *mute; /* alertname muted by the mute callback */
} fx;

static vg_err_t deliver(void *ud, const vg_notifier_t *n, const char *url, const vg_notify_msg_t *m,
                        const char *body, size_t len)
{
    fx *f = ud;
    (void)n;
    (void)url;
    (void)len;
    if (f->fail) return VG_ERETRY;
    sent *s = &f->out[f->n++ % 32];
    snprintf(s->receiver, sizeof(s->receiver), "%s", m->receiver);
    snprintf(s->key, sizeof(s->key), "%s", m->group_key);
    snprintf(s->body, sizeof(s->body), "%s", body);
    s->nfiring = (int)vg_notify_nfiring(m);
    s->nresolved = (int)(m->nalerts - (size_t)s->nfiring);
    return VG_OK;
}

static int mute_cb(void *ud, const vg_label_t *l, size_t n, int64_t now)
{
    fx *f = ud;
    (void)now;
    const char *an = vg_labels_get(l, n, "alertname");
    return f->mute && an && strcmp(an, f->mute) == 0;
}

static int setup(void **state)
{
    fx *f = vg_calloc(1, sizeof(*f));
    f->arena = vg_arena_new(0);
    vg_error err = {0};
    assert_int_equal(vg_amconfig_parse_text("t.yml", CFG, strlen(CFG), f->arena, &f->cfg, &err),
                     VG_OK);
    assert_int_equal(vg_nflog_open(NULL, 0, &f->log, NULL), VG_OK);
    vg_dispatch_opts o = {.cfg = &f->cfg,
                          .nflog = f->log,
                          .deliver = deliver,
                          .deliver_ud = f,
                          .muted = mute_cb,
                          .mute_ud = f};
    assert_int_equal(vg_dispatch_new(&o, &f->d, NULL), VG_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    vg_dispatch_free(f->d);
    vg_nflog_free(f->log);
    vg_amconfig_release(&f->cfg);
    vg_arena_free(f->arena);
    vg_free(f);
    return 0;
}

/* Put one alert with labels alertname=name (+ instance, + team when set). */
static void put(fx *f, const char *name, const char *inst, const char *team, int64_t starts,
                int64_t ends, int64_t now)
{
    vg_label_t l[3];
    size_t n = 0;
    l[n++] = (vg_label_t){"alertname", name};
    l[n++] = (vg_label_t){"instance", inst};
    if (team) l[n++] = (vg_label_t){"team", team};
    vg_alert_t a = {.labels = l, .nlabels = n, .starts_at = starts, .ends_at = ends};
    assert_int_equal(vg_dispatch_put_at(f->d, &a, 1, now), VG_OK);
}

static const int64_t T0 = 1700000000000LL;

static void test_group_wait_then_interval(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0, 0, T0);
    assert_int_equal(vg_dispatch_tick(f->d, T0), T0 + 10000);
    assert_int_equal(f->n, 0);
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->out[0].key, "{}:{alertname=\"Down\"}");
    assert_string_equal(f->out[0].receiver, "hook");
    assert_int_equal(f->out[0].nfiring, 1);
    /* a second alert joins; it waits for group_interval, not group_wait */
    put(f, "Down", "b", NULL, T0 + 20000, 0, T0 + 20000);
    vg_dispatch_tick(f->d, T0 + 30000);
    assert_int_equal(f->n, 1);
    vg_dispatch_tick(f->d, T0 + 70000);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->out[1].nfiring, 2);
    /* nothing new: the log suppresses the next flushes until repeat_interval */
    put(f, "Down", "a", NULL, T0, 0, T0 + 100000);
    put(f, "Down", "b", NULL, T0 + 20000, 0, T0 + 100000);
    vg_dispatch_tick(f->d, T0 + 130000);
    assert_int_equal(f->n, 2);
    for (int64_t t = T0 + 190000; t < T0 + 3600000 + 190000; t += 60000) {
        put(f, "Down", "a", NULL, T0, 0, t);
        put(f, "Down", "b", NULL, T0 + 20000, 0, t);
        vg_dispatch_tick(f->d, t);
    }
    assert_int_equal(f->n, 3);
    assert_int_equal(f->out[2].nfiring, 2);
}

static void test_resolve_sent_and_group_dropped(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0, 0, T0);
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 1);
    put(f, "Down", "a", NULL, T0, T0 + 15000, T0 + 15000);
    vg_dispatch_tick(f->d, T0 + 70000);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->out[1].nfiring, 0);
    assert_int_equal(f->out[1].nresolved, 1);
    assert_non_null(strstr(f->out[1].body, "\"status\":\"resolved\""));
    assert_int_equal(vg_dispatch_ngroups(f->d), 0);
    /* re-fire: a new group, group_wait again, notified again */
    put(f, "Down", "a", NULL, T0 + 80000, 0, T0 + 80000);
    vg_dispatch_tick(f->d, T0 + 90000);
    assert_int_equal(f->n, 3);
    assert_int_equal(f->out[2].nfiring, 1);
}

static void test_old_alert_flushes_at_once(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0 - 3600000, 0, T0);
    vg_dispatch_tick(f->d, T0);
    assert_int_equal(f->n, 1);
}

static void test_resolve_timeout(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0, 0, T0); /* ends = T0 + 5m resolve_timeout */
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 1);
    for (int64_t t = T0 + 70000; t <= T0 + 370000; t += 60000) vg_dispatch_tick(f->d, t);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->out[1].nresolved, 1);
}

static void test_group_by_all_and_send_resolved_false(void **state)
{
    fx *f = *state;
    put(f, "Slow", "a", "db", T0, 0, T0);
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->out[0].receiver, "quiet");
    assert_string_equal(f->out[0].key,
                        "{}/{team=\"db\"}:{alertname=\"Slow\", instance=\"a\", team=\"db\"}");
    put(f, "Slow", "a", "db", T0, T0 + 20000, T0 + 20000);
    vg_dispatch_tick(f->d, T0 + 70000);
    assert_int_equal(f->n, 1); /* resolved only: logged, not sent */
    assert_int_equal(vg_dispatch_ngroups(f->d), 0);
}

static void test_muted_alerts_are_not_sent(void **state)
{
    fx *f = *state;
    f->mute = "Down";
    put(f, "Down", "a", NULL, T0, 0, T0);
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 0);
    f->mute = NULL; /* the silence expires: the next flush notifies */
    vg_dispatch_tick(f->d, T0 + 70000);
    assert_int_equal(f->n, 1);
}

static void test_failed_delivery_keeps_resolved(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0, 0, T0);
    vg_dispatch_tick(f->d, T0 + 10000);
    put(f, "Down", "a", NULL, T0, T0 + 15000, T0 + 15000);
    f->fail = 1;
    vg_dispatch_tick(f->d, T0 + 70000);
    assert_int_equal(vg_dispatch_ngroups(f->d), 1);
    f->fail = 0;
    vg_dispatch_tick(f->d, T0 + 130000);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->out[1].nresolved, 1);
    assert_int_equal(vg_dispatch_ngroups(f->d), 0);
}

static void test_merge_keeps_earliest_start(void **state)
{
    fx *f = *state;
    put(f, "Down", "a", NULL, T0, T0 + 600000, T0);
    put(f, "Down", "a", NULL, T0 + 5000, T0 + 900000, T0 + 5000);
    vg_dispatch_alert_t *a;
    size_t n;
    assert_int_equal(vg_dispatch_alerts(f->d, T0 + 6000, &a, &n), VG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].a.starts_at, T0);
    assert_int_equal(a[0].a.ends_at, T0 + 900000);
    assert_int_equal(a[0].updated_at, T0 + 5000);
    vg_dispatch_alerts_free(f->d, a, n);
}

static void test_api_post_validation(void **state)
{
    fx *f = *state;
    vg_buf out;
    vg_buf_init(&out, 0);
    int st;
    const char *ok = "[{\"labels\":{\"alertname\":\"X\",\"empty\":\"\"},"
                     "\"startsAt\":\"2023-11-14T22:13:20.5+01:00\"}]";
    vg_alerts_api_post(f->d, ok, strlen(ok), T0, &st, &out);
    assert_int_equal(st, 200);
    vg_dispatch_alert_t *a;
    size_t n;
    assert_int_equal(vg_dispatch_alerts(f->d, T0, &a, &n), VG_OK);
    assert_int_equal(n, 1);
    assert_int_equal(a[0].a.nlabels, 1); /* empty values are dropped */
    assert_int_equal(a[0].a.starts_at, 1700000000500LL - 3600000);
    assert_int_equal(a[0].a.ends_at, T0 + 300000); /* resolve_timeout */
    vg_dispatch_alerts_free(f->d, a, n);
    /* invalid ones are refused with 400, the valid one in the batch is kept */
    const char *mixed = "[{\"labels\":{}},{\"labels\":{\"0bad\":\"x\"}},"
                        "{\"labels\":{\"alertname\":\"Y\"},\"startsAt\":\"2023-11-14T22:13:20Z\","
                        "\"endsAt\":\"2023-11-14T22:13:19Z\"},{\"labels\":{\"alertname\":\"Z\"}}]";
    vg_alerts_api_post(f->d, mixed, strlen(mixed), T0, &st, &out);
    assert_int_equal(st, 400);
    assert_non_null(strstr(out.data, "at least one label pair required"));
    assert_non_null(strstr(out.data, "invalid name \"0bad\""));
    assert_non_null(strstr(out.data, "start time must be before end time"));
    assert_int_equal(vg_dispatch_alerts(f->d, T0, &a, &n), VG_OK);
    assert_int_equal(n, 2);
    vg_dispatch_alerts_free(f->d, a, n);
    vg_buf_reset(&out);
    vg_alerts_api_post(f->d, "{", 1, T0, &st, &out);
    assert_int_equal(st, 400);
    vg_buf_free(&out);
    int64_t ms;
    assert_int_equal(vg_alerts_api_parse_time("2023-11-14T22:13:20Z", &ms), VG_OK);
    assert_int_equal(ms, 1700000000000LL);
    assert_int_equal(vg_alerts_api_parse_time("2023-11-14 22:13:20Z", &ms), VG_EPARSE);
    assert_int_equal(vg_alerts_api_parse_time("2023-11-14T22:13:20", &ms), VG_EPARSE);
}

/* The second config: everything to "pager", and a critical alert inhibits
 * a warning of the same alertname and instance. */
static const char *CFG2 = "route:\n"
                          "  receiver: pager\n"
                          "  group_by: [alertname]\n"
                          "  group_wait: 10s\n"
                          "  group_interval: 1m\n"
                          "  repeat_interval: 1h\n"
                          "receivers:\n"
                          "  - name: pager\n"
                          "    webhook_configs: [{url: 'http://127.0.0.1:1/pager'}]\n"
                          "inhibit_rules:\n"
                          "  - source_matchers: ['severity=\"critical\"']\n"
                          "    target_matchers: ['severity=\"warning\"']\n"
                          "    equal: [instance]\n";

static void parse2(fx *f, vg_amconfig_t *c2)
{
    vg_error err = {0};
    assert_int_equal(vg_amconfig_parse_text("t2.yml", CFG2, strlen(CFG2), f->arena, c2, &err),
                     VG_OK);
}

static void test_reload_reroutes(void **state)
{
    fx *f = *state;
    vg_amconfig_t c2 = {0};
    parse2(f, &c2);
    put(f, "Down", "a", NULL, T0, 0, T0);
    vg_dispatch_tick(f->d, T0 + 10000);
    assert_int_equal(f->n, 1);
    assert_string_equal(f->out[0].receiver, "hook");
    vg_error err = {0};
    assert_int_equal(vg_dispatch_reload_at(f->d, &c2, T0 + 10000, &err), VG_OK);
    assert_ptr_equal(vg_dispatch_config(f->d), &c2);
    assert_int_equal(vg_dispatch_ngroups(f->d), 1); /* the stored alert, re-routed */
    vg_dispatch_tick(f->d, T0 + 15000);             /* a new group waits group_wait again */
    assert_int_equal(f->n, 1);
    vg_dispatch_tick(f->d, T0 + 20000);
    assert_int_equal(f->n, 2);
    assert_string_equal(f->out[1].receiver, "pager");
    /* reloading the same routes again: the log keeps it from being sent twice */
    assert_int_equal(vg_dispatch_reload_at(f->d, &c2, T0 + 30000, &err), VG_OK);
    vg_dispatch_tick(f->d, T0 + 40000);
    assert_int_equal(f->n, 2);
    vg_amconfig_release(&c2);
}

static vg_err_t failing_reconfigure(void *ud, const vg_amconfig_t *cfg, const vg_alert_t *a,
                                    size_t n)
{
    (void)ud, (void)cfg, (void)a, (void)n;
    return VG_ENOMEM;
}

static void test_reload_refused_keeps_config(void **state)
{
    fx *f = *state;
    vg_amconfig_t c2 = {0};
    parse2(f, &c2);
    vg_dispatch_free(f->d);
    vg_dispatch_opts o = {.cfg = &f->cfg,
                          .nflog = f->log,
                          .deliver = deliver,
                          .deliver_ud = f,
                          .reconfigure = failing_reconfigure};
    assert_int_equal(vg_dispatch_new(&o, &f->d, NULL), VG_OK);
    put(f, "Down", "a", NULL, T0, 0, T0);
    vg_error err = {0};
    assert_int_equal(vg_dispatch_reload(f->d, &c2, &err), VG_ENOMEM);
    assert_non_null(strstr(err.msg, "alerting reload"));
    assert_ptr_equal(vg_dispatch_config(f->d), &f->cfg);
    vg_dispatch_tick(f->d, T0 + 10000); /* the group kept its timer */
    assert_int_equal(f->n, 1);
    assert_string_equal(f->out[0].receiver, "hook");
    vg_amconfig_release(&c2);
}

/* New inhibit rules mute alerts that were stored before the reload. */
static void test_reload_inhibit_rules(void **state)
{
    fx *f = *state;
    vg_amconfig_t c2 = {0};
    parse2(f, &c2);
    vg_dispatch_free(f->d);
    vg_alerting_mute_t mute = {vg_inhibitor_new(&f->cfg), NULL};
    vg_dispatch_opts o = {.cfg = &f->cfg,
                          .nflog = f->log,
                          .deliver = deliver,
                          .deliver_ud = f,
                          .muted = vg_alerting_mutes,
                          .observe = vg_alerting_observe,
                          .reconfigure = vg_alerting_reconfigure,
                          .mute_ud = &mute};
    assert_int_equal(vg_dispatch_new(&o, &f->d, NULL), VG_OK);
    vg_label_t crit[] = {{"alertname", "Crit"}, {"instance", "a"}, {"severity", "critical"}};
    vg_label_t warn[] = {{"alertname", "Warn"}, {"instance", "a"}, {"severity", "warning"}};
    int64_t now = vg_clock_wall_ms(); /* the inhibitor ages sources on the wall clock */
    vg_alert_t as[] = {{.labels = crit, .nlabels = 3, .starts_at = now},
                       {.labels = warn, .nlabels = 3, .starts_at = now}};
    assert_int_equal(vg_dispatch_put_at(f->d, as, 2, now), VG_OK);
    assert_int_equal(vg_inhibitor_mutes(mute.inhibitor, warn, 3, now), 0); /* no rules yet */
    vg_error err = {0};
    assert_int_equal(vg_dispatch_reload_at(f->d, &c2, now + 1, &err), VG_OK);
    assert_int_equal(vg_inhibitor_mutes(mute.inhibitor, warn, 3, now + 1), 1);
    vg_dispatch_tick(f->d, now + 10001);
    assert_int_equal(f->n, 1); /* only Crit's group: Warn's is all muted */
    assert_non_null(strstr(f->out[0].key, "Crit"));
    vg_dispatch_free(f->d);
    f->d = NULL;
    vg_inhibitor_free(mute.inhibitor);
    vg_amconfig_release(&c2);
}

/* Allocation failing at every step of a reload: an error or a reload, never
 * a crash or a leak, and the dispatcher routes under the config it reports. */
static void test_reload_allocation_failures(void **state)
{
    fx *f = *state;
    vg_amconfig_t c2 = {0};
    parse2(f, &c2);
    for (int i = 0; i < 20; i++) put(f, i % 2 ? "Down" : "Up", i % 3 ? "a" : "b", NULL, T0, 0, T0);
    for (long n = 1; n < 60; n++) {
        vg_alloc_fail_after(n);
        (void)vg_dispatch_reload_at(f->d, n % 2 ? &c2 : &f->cfg, T0 + n, NULL);
        vg_alloc_fail_after(0);
    }
    vg_error err = {0};
    assert_int_equal(vg_dispatch_reload_at(f->d, &c2, T0 + 100, &err), VG_OK);
    vg_dispatch_tick(f->d, T0 + 10100);
    assert_true(f->n >= 1);
    assert_string_equal(f->out[f->n - 1].receiver, "pager");
    vg_amconfig_release(&c2);
}

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static int slow_n;

/* A receiver slow enough that reloads land while flushes are in flight. */
static vg_err_t slow_deliver(void *ud, const vg_notifier_t *n, const char *url,
                             const vg_notify_msg_t *m, const char *body, size_t len)
{
    (void)ud, (void)n, (void)url, (void)m, (void)body, (void)len;
    usleep(2000);
    pthread_mutex_lock(&slow_mu);
    slow_n++;
    pthread_mutex_unlock(&slow_mu);
    return VG_OK;
}

/* Reloads racing real worker threads: groups being flushed are orphaned and
 * freed by their job (ASan checks there is no use after free or leak). */
static void test_reload_during_flushes(void **state)
{
    fx *f = *state;
    vg_amconfig_t c2 = {0};
    parse2(f, &c2);
    vg_dispatch_free(f->d);
    vg_dispatch_opts o = {.cfg = &f->cfg, .nflog = f->log, .deliver = slow_deliver, .workers = 2};
    assert_int_equal(vg_dispatch_new(&o, &f->d, NULL), VG_OK);
    assert_int_equal(vg_dispatch_start(f->d, NULL), VG_OK);
    char name[16];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "A%d", i % 17);
        vg_label_t l[] = {{"alertname", name}, {"instance", "x"}};
        vg_alert_t a = {.labels = l, .nlabels = 2, .starts_at = vg_clock_wall_ms() - 3600000};
        vg_dispatch_put(f->d, &a, 1); /* old: its group flushes at once */
        if (i % 5 == 0) assert_int_equal(vg_dispatch_reload(f->d, i % 2 ? &c2 : &f->cfg, NULL), 0);
        if (i % 20 == 0) usleep(3000);
    }
    vg_dispatch_free(f->d); /* joins the workers; queued orphans are freed too */
    f->d = NULL;
    pthread_mutex_lock(&slow_mu);
    assert_true(slow_n > 0);
    pthread_mutex_unlock(&slow_mu);
    vg_amconfig_release(&c2);
}

/* Every allocation on the put/flush/nflog path failing in turn: no crash, no
 * leak (ASan), and the dispatcher still works once allocation succeeds. */
static void test_allocation_failures(void **state)
{
    fx *f = *state;
    for (long n = 1; n < 120; n++) {
        vg_label_t l[] = {{"alertname", "Down"}, {"instance", "a"}};
        vg_alert_t a = {.labels = l, .nlabels = 2, .starts_at = T0 - 3600000};
        vg_alloc_fail_after(n);
        (void)vg_dispatch_put_at(f->d, &a, 1, T0 + n * 1000);
        vg_dispatch_tick(f->d, T0 + n * 1000);
        a.ends_at = T0 + n * 1000;
        (void)vg_dispatch_put_at(f->d, &a, 1, T0 + n * 1000);
        vg_dispatch_tick(f->d, T0 + n * 1000 + 60000);
        vg_alloc_fail_after(0);
    }
    int before = f->n;
    put(f, "Up", "b", NULL, T0 - 3600000, 0, T0 + 200000);
    vg_dispatch_tick(f->d, T0 + 200000);
    assert_int_equal(f->n, before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_wait_then_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_sent_and_group_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_alert_flushes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_by_all_and_send_resolved_false, setup, teardown),
        cmocka_unit_test_setup_teardown(test_muted_alerts_are_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_delivery_keeps_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_keeps_earliest_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_post_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_reroutes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_refused_keeps_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_inhibit_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_allocation_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_during_flushes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
