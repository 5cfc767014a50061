/*
 * main.c (collector) - wire the collector's parts together and run.
 *
 * Start-up order matters: storage first, then the HTTP server (so /metrics
 * and /-/healthy answer while the rest comes up), then the inputs. Ready is
 * reported only once every input runs. Shutdown goes the other way: inputs
 * stop first so nothing is accepted that cannot be stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>

#include "alerting/alerts_api.h"
#include "alerting/dispatch.h"
#include "alerting/silence.h"
#include "notify/amsender.h"
#include "api/api.h"
#include "auditstore/auditstore.h"
#include "config.h"
#include "ingest/ingest.h"
#include "ingest/kafka_consumer.h"
#include "metadata/mdstore.h"
#include "remotewrite/receiver.h"
#include "remotewrite/sender.h"
#include "rules/manager.h"
#include "siem/siem.h"
#include "rules/rules_api.h"
#include "tsdb/tsdb.h"
#include "tsdb/wal.h"
#include "vigil/alloc.h"
#include "vigil/cli.h"
#include "vigil/clock.h"
#include "vigil/duration.h"
#include "vigil/httpd.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

typedef struct collector {
    vg_collector_config_t *cfg;
    vg_metrics_t *metrics;
    vg_tsdb_t *db;
    vg_httpd_t *httpd;
    vg_ingest_t *ingest;
    vg_kafka_consumer_t *kafka;
    vg_auditstore_t *audit; /* <data_dir>/audit */
    vg_rw_receiver_t *rw; /* POST /api/v1/write */
    vg_mdstore_t *md;     /* /api/v1/metadata, <data_dir>/metadata */
    vg_rw_sender_t *rwsend; /* remote_write: tails <data_dir>/wal; NULL when none */
    vg_siem_t *siem;        /* siem: outputs on the audit feed; NULL when none */
    vg_api_t *api;
    vg_silences_t *silences; /* /api/v2/silences, <data_dir>/silences */
    vg_inhibitor_t *inhibitor;
    vg_nflog_t *nflog;        /* <data_dir>/nflog */
    vg_alerting_mute_t mute;  /* inhibitor + silences for the dispatcher */
    vg_dispatch_t *dispatch;  /* alerting: routing, grouping, notifications */
    vg_amsender_t *amsender;  /* alerting.alertmanagers; NULL when none */
    vg_promql_opts query; /* --query.max-samples, --query.timeout */
    vg_rules_t *rules;       /* rule groups; /api/v1/rules, /api/v1/alerts */
    const char *config_path; /* re-read on SIGHUP and POST /-/reload */
    pthread_mutex_t reload_mu;
    /* configs loaded by reloads: the dispatcher borrows their alerting
     * section (a flush in flight may still use an older one); freed at exit */
    vg_collector_config_t **reloaded;
    size_t nreloaded;
    vg_metric_t *m_reload_ok, *m_reload_ts; /* vigil_config_last_reload_* */
} collector;

/* Keep a reloaded config alive for the dispatcher (lock held). */
static vg_err_t keep_reloaded(collector *c, vg_collector_config_t *cfg)
{
    vg_collector_config_t **n = vg_realloc(c->reloaded, (c->nreloaded + 1) * sizeof(*n));
    if (!n) return VG_ENOMEM;
    c->reloaded = n;
    n[c->nreloaded++] = cfg;
    return VG_OK;
}

/* Reload what can change at run time from the config file: the rules, and
 * the alerting section (routes, receivers, inhibit rules). The new file is
 * parsed and checked whole first, so a broken config or rule file changes
 * nothing: the running ones stay, the error is logged and
 * vigil_config_last_reload_successful drops to 0. alerting.alertmanagers
 * and everything else are read at start only. */
static vg_err_t collector_reload(collector *c, vg_error *err)
{
    vg_collector_config_t *cfg = NULL;
    pthread_mutex_lock(&c->reload_mu);
    vg_err_t rc = vg_collector_config_load(c->config_path, &cfg, err);
    if (!rc) rc = vg_rules_load_config(c->rules, cfg, err);
    if (!rc && (rc = keep_reloaded(c, cfg))) vg_error_set(err, rc, "reload: out of memory");
    if (!rc) rc = vg_dispatch_reload(c->dispatch, &cfg->alerting, err);
    if (!rc || (c->nreloaded && c->reloaded[c->nreloaded - 1] == cfg)) cfg = NULL; /* kept */
    pthread_mutex_unlock(&c->reload_mu);
    vg_collector_config_free(cfg);
    vg_metric_set(c->m_reload_ok, rc ? 0 : 1);
    if (!rc) vg_metric_set(c->m_reload_ts, (double)vg_clock_wall_ms() / 1000.0);
    char q[600];
    if (rc)
        vg_log_error("collector", "reload failed; keeping the previous rules and alerting",
                     "err=%s", vg_logq(q, sizeof(q), vg_error_msg(err, rc)));
    else
        vg_log_info("collector", "reloaded", "config=%s", c->config_path ? c->config_path : "-");
    return rc;
}

/* POST /-/reload (Prometheus's lifecycle endpoint). */
static void on_reload(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_error err = {0};
    (void)req;
    vg_err_t rc = collector_reload(ud, &err);
    if (rc) vg_http_resp_text(resp, 500, "failed to reload config: %s\n", vg_error_msg(&err, rc));
}

static vg_err_t start_rules(collector *c, vg_error *err)
{
    vg_rules_opts o = {.db = c->db, .engine = &c->query, .metrics = c->metrics, .restore = 1};
    c->rules = vg_rules_new(&o);
    if (!c->rules) return vg_error_set(err, VG_ENOMEM, "cannot allocate the rule manager");
    return vg_rules_load_config(c->rules, c->cfg, err);
}

static vg_err_t on_kafka_batch(void *ud, const char *topic, const char *tenant_key,
                               const uint8_t *data, size_t len, vg_error *err)
{
    collector *c = ud;
    const char *dlq = c->cfg->kafka_audit_dlq_topic;
    if (dlq && *dlq && !strcmp(topic, dlq)) /* durable on return, as over HTTP */
        return vg_auditstore_dlq_ingest(c->audit, tenant_key, data, len, err);
    return vg_ingest_batch(c->ingest, tenant_key, data, len, NULL, err);
}

/* Before Kafka offsets are stored: one WAL fsync for every batch consumed so far. */
static vg_err_t on_kafka_sync(void *ud, vg_error *err)
{
    collector *c = ud;
    vg_err_t rc = vg_tsdb_sync(c->db, VG_TSDB_SYNC_ALL, err);
    if (!rc) rc = vg_auditstore_sync(c->audit, err); /* audit appends already fsynced: cheap */
    return rc;
}

static vg_err_t start_kafka(collector *c, vg_error *err)
{
    const vg_collector_config_t *cfg = c->cfg;
    if (!cfg->kafka_brokers) return VG_OK;
    vg_kafka_consumer_opts o = {
        .brokers = cfg->kafka_brokers,
        .group_id = cfg->kafka_group_id,
        .metrics_topic = cfg->kafka_metrics_topic,
        .audit_topic = cfg->kafka_audit_topic,
        .audit_dlq_topic = cfg->kafka_audit_dlq_topic,
        .props = cfg->kafka_properties,
        .nprops = cfg->nkafka_properties,
        .sync = on_kafka_sync,
    };
    vg_err_t rc = vg_kafka_consumer_new(&o, on_kafka_batch, c, c->metrics, &c->kafka, err);
    if (!rc) rc = vg_kafka_consumer_start(c->kafka, err);
    if (!rc)
        vg_log_info("collector", "consuming from Kafka", "brokers=%s group=%s", cfg->kafka_brokers,
                    cfg->kafka_group_id);
    return rc;
}

static vg_err_t start_http(collector *c, vg_error *err)
{
    vg_httpd_opts o = {.listen = c->cfg->listen, .threads = 4, .max_body = 64u << 20};
    c->httpd = vg_httpd_new(&o);
    if (!c->httpd) return vg_error_set(err, VG_ENOMEM, "cannot allocate the HTTP server");
    vg_err_t rc = vg_metrics_serve(c->metrics, c->httpd);
    if (!rc) rc = vg_ingest_register_http(c->ingest, c->httpd);
    if (!rc) rc = vg_rw_receiver_register(c->rw, c->httpd);
    c->api = rc ? NULL : vg_api_new(c->db, &c->query);
    if (c->api) vg_api_set_metadata(c->api, c->md);
    if (!rc && !c->api) rc = vg_error_set(err, VG_ENOMEM, "cannot allocate the query engine");
    if (!rc) rc = vg_api_register(c->httpd, c->api, c->metrics);
    if (!rc) rc = vg_silences_register(c->silences, c->httpd);
    if (!rc) rc = vg_rules_register_http(c->httpd, c->rules);
    if (!rc) rc = vg_httpd_route(c->httpd, "POST", "/-/reload", on_reload, c);
    if (!rc) rc = vg_alerts_api_register(c->dispatch, &c->mute, c->httpd);
    if (!rc) rc = vg_auditstore_register_http(c->audit, c->httpd);
    if (!rc) rc = vg_httpd_start(c->httpd, err);
    if (!rc) vg_log_info("collector", "listening", "addr=%s", c->cfg->listen);
    return rc;
}

/* The store under collector.data_dir: replays its WAL before anything is served. */
static vg_err_t open_store(collector *c, vg_error *err)
{
    const vg_collector_config_t *cfg = c->cfg;
    vg_tsdb_opts o = {
        .dir = cfg->data_dir,
        .retention_raw_ms = cfg->retention_raw_ms,
        .retention_5m_ms = cfg->retention_5m_ms,
        .retention_1h_ms = cfg->retention_1h_ms,
        .max_bytes = cfg->storage_max_bytes,
        .downsample_5m_after_ms = cfg->downsample_5m_after_ms ? cfg->downsample_5m_after_ms : -1,
        .downsample_1h_after_ms = cfg->downsample_1h_after_ms ? cfg->downsample_1h_after_ms : -1,
        .ooo_window_ms = cfg->ooo_window_ms ? cfg->ooo_window_ms : -1, /* 0 in config = none */
        .block_range_ms = cfg->block_range_ms,
        .wal_sync_ms = cfg->wal_sync_ms,
        .wal_segment_bytes = cfg->wal_segment_bytes,
        .default_limits = &cfg->default_limits,
        .tenant_limits = cfg->tenant_limits,
        .ntenant_limits = cfg->ntenant_limits,
    };
    vg_err_t rc = vg_tsdb_open(&o, c->metrics, &c->db, err);
    if (!rc) vg_log_info("collector", "store open", "data_dir=%s", cfg->data_dir);
    return rc;
}

/* The metadata table, <data_dir>/metadata, fed by ingest and remote-write. */
static vg_err_t open_metadata(collector *c, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/metadata", c->cfg->data_dir);
    vg_mdstore_opts o = {.path = path, .max_entries = c->cfg->metadata_max_entries,
                         .max_per_metric = c->cfg->metadata_max_per_metric,
                         .ttl_ms = c->cfg->metadata_ttl_ms};
    vg_err_t rc = vg_mdstore_open(&o, c->metrics, &c->md, err);
    if (!rc) vg_ingest_set_metadata(c->ingest, c->md);
    if (!rc) vg_rw_receiver_set_metadata(c->rw, c->md);
    return rc;
}

/* remote_write queues tail the store's WAL, cursors in <data_dir>/remote_write,
 * each holding the WAL from its cursor (storage.wal_max_hold_bytes); holds of
 * remotes no longer configured are dropped. They keep the config loaded at
 * start (a reload does not change them). */
static vg_err_t start_remote_write(collector *c, vg_error *err)
{
    char wal[4096], state[4096];
    struct vg_wal *w = vg_tsdb_wal(c->db);
    vg_err_t rc = VG_OK;
    vg_wal_set_max_hold(w, c->cfg->wal_max_hold_bytes);
    snprintf(wal, sizeof(wal), "%s/wal", c->cfg->data_dir);
    snprintf(state, sizeof(state), "%s/remote_write", c->cfg->data_dir);
    if (c->cfg->nremote_write)
        rc = vg_rw_sender_new(c->cfg->remote_write, c->cfg->nremote_write, wal, w, state,
                              c->metrics, &c->rwsend, err);
    if (!rc) vg_rw_sender_set_metadata(c->rwsend, c->md); /* NULL sender: no-op */
    if (!rc) vg_wal_hold_forget_dormant(w);
    return rc;
}

/* SIEM forwarders read the audit store's feed (<data_dir>/audit/.feed); like
 * remote_write they keep the config loaded at start. */
static vg_err_t start_siem(collector *c, vg_error *err)
{
    if (!c->cfg->nsiem) return VG_OK;
    return vg_siem_new(c->cfg->siem, c->cfg->nsiem, vg_auditstore_feed(c->audit), c->metrics,
                       &c->siem, err);
}

/* The audit store under <data_dir>/audit: replays its WALs before anything is served. */
static vg_err_t open_audit(collector *c, vg_error *err)
{
    const vg_collector_config_t *cfg = c->cfg;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/audit", cfg->data_dir);
    vg_auditstore_opts o = {.dir = dir, .hot_ms = cfg->audit_hot_ms, .warm_ms = cfg->audit_warm_ms,
                            .cold_ms = cfg->audit_cold_ms, .seal_grace_ms = cfg->audit_seal_after_ms,
                            .interval_ms = cfg->audit_check_interval_ms, .metrics = c->metrics,
                            .signing_key_file = cfg->audit_signing_key_file,
                            .siem_feed = cfg->nsiem > 0,
                            .siem_buffer_bytes = cfg->audit_siem_buffer_bytes};
    vg_err_t rc = vg_auditstore_open(&o, &c->audit, err);
    if (!rc) vg_ingest_set_audit(c->ingest, c->audit);
    return rc;
}

/* The dispatcher behind /api/v2/alerts (and the rule evaluator's alerts). */
static vg_err_t start_dispatch(collector *c, vg_error *err)
{
    const vg_collector_config_t *cfg = c->cfg;
    c->inhibitor = vg_inhibitor_new(&cfg->alerting);
    if (!c->inhibitor) return vg_error_set(err, VG_ENOMEM, "out of memory at start-up");
    c->mute = (vg_alerting_mute_t){c->inhibitor, c->silences};
    vg_err_t rc = vg_nflog_open(cfg->data_dir, 0, &c->nflog, err);
    vg_dispatch_opts o = {.cfg = &cfg->alerting, .nflog = c->nflog, .metrics = c->metrics,
                          .external_url = cfg->external_url, .workers = 4,
                          .muted = vg_alerting_mutes, .observe = vg_alerting_observe,
                          .reconfigure = vg_alerting_reconfigure, .mute_ud = &c->mute};
    if (!rc) rc = vg_dispatch_new(&o, &c->dispatch, err);
    if (!rc) rc = vg_dispatch_start(c->dispatch, err);
    if (!rc && cfg->alerting.nalertmanagers)
        rc = vg_amsender_new(&cfg->alerting, c->metrics, 0, &c->amsender, err);
    if (!rc && c->amsender) rc = vg_amsender_start(c->amsender, err);
    return rc;
}

/* The rule evaluator's alerts go to the dispatcher and to external Alertmanagers. */
static void on_alerts(void *ud, const vg_alert_t *alerts, size_t n)
{
    collector *c = ud;
    vg_dispatch_put(c->dispatch, alerts, n);
    if (c->amsender) vg_amsender_put(c->amsender, alerts, n);
}

static vg_err_t collector_start(collector *c, vg_error *err)
{
    c->metrics = vg_metrics_new();
    if (!c->metrics) return vg_error_set(err, VG_ENOMEM, "out of memory at start-up");
    vg_err_t rc = open_store(c, err);
    if (rc) return rc;
    c->ingest = vg_ingest_new(c->db, c->metrics);
    c->rw = c->ingest ? vg_rw_receiver_new(c->db, c->metrics, NULL) : NULL;
    if (!c->rw) return vg_error_set(err, VG_ENOMEM, "out of memory at start-up");
    if ((rc = open_metadata(c, err))) return rc;
    vg_metric_set(vg_metrics_gauge(c->metrics, "vigil_build_info", "Build information.",
                                   "version=\"" VIGIL_VERSION "\",program=\"vigil-collector\""),
                  1);
    c->m_reload_ok = vg_metrics_gauge(c->metrics, "vigil_config_last_reload_successful",
                                      "Whether the last configuration reload succeeded.", NULL);
    c->m_reload_ts =
        vg_metrics_gauge(c->metrics, "vigil_config_last_reload_success_timestamp_seconds",
                         "Time of the last successful configuration load.", NULL);
    vg_metric_set(c->m_reload_ok, 1);
    vg_metric_set(c->m_reload_ts, (double)vg_clock_wall_ms() / 1000.0);
    rc = open_audit(c, err);
    if (!rc) rc = vg_silences_open(c->cfg->data_dir, c->metrics, &c->silences, err);
    if (!rc) rc = start_dispatch(c, err);
    if (!rc) rc = start_rules(c, err);
    if (!rc) vg_rules_set_sink(c->rules, on_alerts, c);
    if (!rc) rc = start_http(c, err);
    if (!rc) rc = vg_rules_start(c->rules, err);
    if (!rc) rc = start_kafka(c, err);
    if (!rc) rc = start_remote_write(c, err);
    if (!rc) rc = start_siem(c, err);
    if (!rc) vg_metrics_set_ready(c->metrics, 1);
    return rc;
}

static void collector_stop(collector *c)
{
    vg_kafka_consumer_free(c->kafka);
    vg_httpd_free(c->httpd);
    vg_rw_sender_free(c->rwsend);
    vg_siem_free(c->siem); /* before the audit store that owns the feed */
    vg_rules_free(c->rules);
    vg_api_free(c->api);
    vg_dispatch_free(c->dispatch);
    vg_amsender_free(c->amsender);
    vg_nflog_free(c->nflog);
    vg_inhibitor_free(c->inhibitor);
    vg_silences_free(c->silences);
    vg_rw_receiver_free(c->rw);
    vg_ingest_free(c->ingest);
    vg_mdstore_free(c->md);
    vg_auditstore_free(c->audit);
    vg_tsdb_free(c->db);
    vg_metrics_free(c->metrics);
    vg_collector_config_free(c->cfg);
    for (size_t i = 0; i < c->nreloaded; i++) vg_collector_config_free(c->reloaded[i]);
    vg_free(c->reloaded);
}

static int load_config(const vg_cli *cli, collector *c)
{
    vg_error err = {0};
    const char *path = cli->check_config ? cli->check_config : cli->config;
    vg_err_t rc = vg_collector_config_load(path, &c->cfg, &err);
    if (rc) {
        fprintf(stderr, "vigil-collector: %s\n", vg_error_msg(&err, rc));
        return 1;
    }
    if (cli->listen) c->cfg->listen = cli->listen;
    if (cli->data_dir) c->cfg->data_dir = cli->data_dir;
    return 0;
}

/* --query.max-samples N and --query.timeout DURATION (Prometheus's flags). */
static int query_flags(const char *max_samples, const char *timeout, vg_promql_opts *q)
{
    char *end;
    if (max_samples) {
        unsigned long long n = strtoull(max_samples, &end, 10);
        if (!*max_samples || *end || *max_samples == '-' || n == 0) {
            fprintf(stderr, "vigil-collector: --query.max-samples wants a positive integer\n");
            return 2;
        }
        q->max_samples = n;
    }
    if (timeout && (vg_duration_parse(timeout, &q->timeout_ms, NULL) || q->timeout_ms <= 0)) {
        fprintf(stderr, "vigil-collector: --query.timeout wants a duration such as 2m\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    vg_cli cli;
    const char *max_samples = NULL, *timeout = NULL;
    const vg_cli_extra extra[] = {
        {"query.max-samples", "N", "most samples one query may load (default 50000000)",
         &max_samples},
        {"query.timeout", "DURATION", "longest one query may run (default 2m)", &timeout},
    };
    int st = vg_cli_parse_extra(argc, argv, "vigil-collector",
                                "Stores metrics from Vigil agents, Kafka and remote-write, and "
                                "serves the Prometheus HTTP API.",
                                extra, 2, &cli);
    if (st) return st < 0 ? 0 : st;
    collector c = {0};
    c.config_path = cli.config;
    pthread_mutex_init(&c.reload_mu, NULL);
    if ((st = query_flags(max_samples, timeout, &c.query))) return st;
    if (load_config(&cli, &c)) return 1;
    if (cli.check_config) {
        printf("%s: OK\n", cli.check_config);
        vg_collector_config_free(c.cfg);
        return 0;
    }
    vg_cli_block_signals();
    vg_error err = {0};
    vg_err_t rc = collector_start(&c, &err);
    if (rc) {
        char q[600];
        vg_log_error("collector", "start-up failed", "err=%s",
                     vg_logq(q, sizeof(q), vg_error_msg(&err, rc)));
        collector_stop(&c);
        return 1;
    }
    vg_log_info("collector", "started", "version=%s config=%s", VIGIL_VERSION, c.cfg->source);
    int sig;
    while ((sig = vg_cli_wait_signal()) == SIGHUP) {
        vg_error rerr = {0};
        collector_reload(&c, &rerr);
    }
    vg_log_info("collector", "shutting down", "signal=%d", sig);
    collector_stop(&c);
    return 0;
}
