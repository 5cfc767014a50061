/*
 * main.c (agent) - wire the agent's parts together and run.
 *
 * Data flows scrape → batcher → sink. The scrape thread never touches the
 * network on the sending side: vg_batcher_add only queues, and the batcher's
 * ship thread owns the sink. The scraper hands over each scrape encoded, with
 * the external labels already merged (vg_scraper_set_emit_encoded); host
 * metrics come sample by sample and get the external labels merged here.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host/host.h"
#include "scrape/scrape.h"
#include "ship/audit_ship.h"
#include "ship/batcher.h"
#include "ship/ship.h"
#include "vigil/alloc.h"
#include "vigil/cli.h"
#include "vigil/httpd.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

typedef struct agent {
    vg_agent_config_t *cfg;
    vg_metrics_t *metrics;
    vg_httpd_t *httpd;
    vg_ship_t *ship;       /* sink, spool and batcher */
    vg_batcher_t *batcher; /* owned by ship */
    vg_scraper_t *scraper;
    vg_label_t *scratch; /* merged labels, used by the scrape thread only */
    size_t scratch_cap;
    vg_host_t *host;
    vg_label_t *host_scratch; /* the same, for the host metrics thread */
    size_t host_scratch_cap;
    vg_audit_ship_t *audit; /* audit_logs tailing and shipping; NULL without audit_logs */
} agent;

/* Merge sorted a and sorted external labels; a sample's own label wins. */
static size_t merge_external(agent *a, vg_label_t *out, const vg_label_t *l, size_t n)
{
    const vg_label_t *e = a->cfg->external_labels;
    size_t ne = a->cfg->nexternal_labels, i = 0, j = 0, o = 0;
    while (i < n || j < ne) {
        int c = i == n ? 1 : j == ne ? -1 : strcmp(l[i].name, e[j].name);
        if (c <= 0) {
            out[o++] = l[i++];
            if (c == 0) j++;
        } else {
            out[o++] = e[j++];
        }
    }
    return o;
}

/* Each producing thread passes its own scratch array. */
static vg_err_t add_sample(agent *a, vg_label_t **scratch, size_t *cap, const vg_label_t *labels,
                           size_t n, int64_t ts_ms, double v)
{
    size_t ne = a->cfg->nexternal_labels;
    if (ne == 0) return vg_batcher_add(a->batcher, labels, n, ts_ms, v);
    if (n + ne > *cap) {
        vg_label_t *p = vg_realloc(*scratch, (n + ne) * sizeof(*p));
        if (!p) return VG_ENOMEM;
        *scratch = p;
        *cap = n + ne;
    }
    return vg_batcher_add(a->batcher, *scratch, merge_external(a, *scratch, labels, n), ts_ms, v);
}

static vg_err_t on_sample(void *ud, const vg_label_t *labels, size_t n, int64_t ts_ms, double v)
{
    agent *a = ud;
    return add_sample(a, &a->scratch, &a->scratch_cap, labels, n, ts_ms, v);
}

static vg_err_t on_host_sample(void *ud, const vg_label_t *labels, size_t n, int64_t ts_ms,
                               double v)
{
    agent *a = ud;
    return add_sample(a, &a->host_scratch, &a->host_scratch_cap, labels, n, ts_ms, v);
}

/* The scrape path: one whole scrape, encoded, external labels merged by the scraper. */
static vg_err_t on_scrape_encoded(void *ud, const void *ts, size_t len, size_t nsamples)
{
    agent *a = ud;
    return vg_batcher_add_encoded(a->batcher, ts, len, nsamples);
}

/* The same, written straight into the batcher's buffer (no copy of the scrape). */
static vg_buf *on_scrape_begin(void *ud)
{
    agent *a = ud;
    return vg_batcher_encode_begin(a->batcher);
}

static void on_scrape_end(void *ud, size_t len, size_t nsamples)
{
    agent *a = ud;
    vg_batcher_encode_end(a->batcher, len, nsamples);
}

static void on_scrape_done(void *ud)
{
    agent *a = ud;
    vg_batcher_commit(a->batcher);
}

static vg_err_t start_pipeline(agent *a, vg_error *err)
{
    vg_err_t rc = vg_ship_new(a->cfg, a->metrics, &a->ship, err);
    if (rc) return rc;
    a->batcher = vg_ship_batcher(a->ship);
    if (!rc)
        rc = vg_scraper_new(a->cfg, on_sample, on_scrape_done, a, a->metrics, &a->scraper, err);
    if (!rc && (vg_scraper_set_emit_encoded(a->scraper, on_scrape_encoded) ||
                vg_scraper_set_emit_into(a->scraper, on_scrape_begin, on_scrape_end)))
        rc = vg_error_set(err, VG_ENOMEM, "out of memory at start-up");
    if (!rc) rc = vg_scraper_start(a->scraper, err);
    if (!rc && a->cfg->host_metrics_enabled)
        rc = vg_host_new(a->cfg, on_host_sample, on_scrape_done, a, a->metrics, &a->host, err);
    if (!rc && a->host) rc = vg_host_start(a->host, err);
    if (!rc) rc = vg_audit_ship_new(a->cfg, a->metrics, &a->audit, err);
    return rc;
}

static vg_err_t agent_start(agent *a, vg_error *err)
{
    a->metrics = vg_metrics_new();
    if (!a->metrics) return vg_error_set(err, VG_ENOMEM, "out of memory at start-up");
    vg_metric_set(vg_metrics_gauge(a->metrics, "vigil_build_info", "Build information.",
                                   "version=\"" VIGIL_VERSION "\",program=\"vigil-agent\""),
                  1);
    vg_httpd_opts o = {.listen = a->cfg->listen, .threads = 1, .max_body = 1u << 20};
    a->httpd = vg_httpd_new(&o);
    if (!a->httpd) return vg_error_set(err, VG_ENOMEM, "cannot allocate the HTTP server");
    vg_err_t rc = vg_metrics_serve(a->metrics, a->httpd);
    if (!rc) rc = vg_httpd_start(a->httpd, err);
    if (!rc) rc = start_pipeline(a, err);
    if (!rc) vg_metrics_set_ready(a->metrics, 1);
    return rc;
}

static void agent_stop(agent *a)
{
    vg_scraper_free(a->scraper); /* no new samples */
    vg_host_free(a->host);
    vg_audit_ship_free(a->audit); /* ships and commits what it holds, bounded */
    vg_ship_free(a->ship); /* flushes what is pending through the sink, spools the rest */
    vg_httpd_free(a->httpd);
    vg_metrics_free(a->metrics);
    vg_free(a->scratch);
    vg_free(a->host_scratch);
    vg_agent_config_free(a->cfg);
}

static int load_config(const vg_cli *cli, agent *a)
{
    vg_error err = {0};
    const char *path = cli->check_config ? cli->check_config : cli->config;
    vg_err_t rc = vg_agent_config_load(path, &a->cfg, &err);
    if (rc) {
        fprintf(stderr, "vigil-agent: %s\n", vg_error_msg(&err, rc));
        return 1;
    }
    if (cli->listen) a->cfg->listen = cli->listen;
    /* The embedded default scrapes the agent itself: follow a --listen override. */
    vg_agent_config_t *c = a->cfg;
    if (cli->listen && !path && c->nscrape_configs == 1 && c->scrape_configs[0].nstatic == 1 &&
        c->scrape_configs[0].static_configs[0].ntargets == 1)
        c->scrape_configs[0].static_configs[0].targets[0] = cli->listen;
    if (cli->data_dir) a->cfg->data_dir = cli->data_dir;
    return 0;
}

int main(int argc, char **argv)
{
    vg_cli cli;
    int st = vg_cli_parse(argc, argv, "vigil-agent",
                          "Scrapes Prometheus endpoints on this node and ships the samples to a "
                          "Vigil collector over HTTP or Kafka.",
                          &cli);
    if (st) return st < 0 ? 0 : st;
    agent a = {0};
    if (load_config(&cli, &a)) return 1;
    if (cli.check_config) {
        printf("%s: OK\n", cli.check_config);
        vg_agent_config_free(a.cfg);
        return 0;
    }
    vg_cli_block_signals();
    vg_error err = {0};
    vg_err_t rc = agent_start(&a, &err);
    if (rc) {
        char q[600];
        vg_log_error("agent", "start-up failed", "err=%s",
                     vg_logq(q, sizeof(q), vg_error_msg(&err, rc)));
        agent_stop(&a);
        return 1;
    }
    vg_log_info("agent", "started", "version=%s config=%s listen=%s sink=%s", VIGIL_VERSION,
                a.cfg->source, a.cfg->listen, a.cfg->kafka_brokers ? "kafka" : "http");
    int sig;
    while ((sig = vg_cli_wait_signal()) == SIGHUP)
        vg_log_info("agent", "SIGHUP: nothing to reload in this build", NULL);
    vg_log_info("agent", "shutting down", "signal=%d", sig);
    agent_stop(&a);
    return 0;
}
