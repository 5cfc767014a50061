/*
 * fuzz_alerts_post.c - POST /api/v2/alerts bodies from any client
 * (collector/alerting/alerts_api.c) into the dispatcher.
 *
 * The body is Alertmanager's postableAlerts JSON. vg_alerts_api_post must
 * store the valid alerts and answer 200, or 400 with a message, never
 * crash or leak. The stored alerts are then listed, grouped and flushed
 * through a recording deliverer, so the labels, annotations and times a
 * client sent also reach the routing, the group keys and the webhook JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alerting/alerts_api.h"
#include "alerting/dispatch.h"
#include "alerting/nflog.h"
#include "vigil/arena.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t NOW = 1700000000000LL;

static const char CFG[] = "route:\n"
                          "  receiver: hook\n"
                          "  group_by: [alertname]\n"
                          "  group_wait: 10s\n"
                          "  routes:\n"
                          "    - matchers: ['team=~\"db|web\"']\n"
                          "      receiver: all\n"
                          "      group_by: ['...']\n"
                          "receivers:\n"
                          "  - name: hook\n"
                          "    webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]\n"
                          "  - name: all\n"
                          "    webhook_configs: [{url: 'http://127.0.0.1:1/all'}]\n";

static vg_err_t deliver(void *ud, const vg_notifier_t *n, const char *url, const vg_notify_msg_t *m,
                        const char *body, size_t len)
{
    (void)ud, (void)n, (void)url, (void)m;
    if (strlen(body) != len) abort();
    return VG_OK;
}

/* Everything the API and the flushes read from the stored alerts. */
static void read_back(vg_dispatch_t *d)
{
    vg_dispatch_alert_t *a = NULL;
    vg_dispatch_group_t *g = NULL;
    size_t n = 0;
    if (vg_dispatch_alerts(d, NOW, &a, &n) == VG_OK) vg_dispatch_alerts_free(d, a, n);
    if (vg_dispatch_groups(d, NOW, &g, &n) == VG_OK) vg_dispatch_groups_free(d, g, n);
    vg_dispatch_tick(d, NOW + 10000);
    vg_dispatch_tick(d, NOW + 86400000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vg_arena_t *arena;
    static vg_amconfig_t cfg;
    static vg_nflog_t *log;
    vg_log_threshold = -1; /* silent: bad bodies are expected here */
    if (!arena) {          /* parsed once: the config is not what is fuzzed */
        arena = vg_arena_new(0);
        if (vg_amconfig_parse_text("fuzz.yml", CFG, strlen(CFG), arena, &cfg, NULL) ||
            vg_nflog_open(NULL, 0, &log, NULL))
            abort();
    }
    vg_dispatch_opts o = {.cfg = &cfg, .nflog = log, .deliver = deliver};
    vg_dispatch_t *d = NULL;
    if (vg_dispatch_new(&o, &d, NULL)) abort();
    int status = 0;
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_alerts_api_post(d, (const char *)data, size, NOW, &status, &out);
    if (status != 200 && status != 400) abort();
    if (status == 400 && !out.len) abort();
    read_back(d);
    vg_buf_free(&out);
    vg_dispatch_free(d);
    return 0;
}
