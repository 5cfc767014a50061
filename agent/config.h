/*
 * config.h (agent) - the agent's configuration, as loaded from YAML.
 *
 * The schema is DESIGN.md's: an `agent:` section of our own plus the
 * Prometheus `global` and `scrape_configs` sections unchanged, so users can
 * bring their scrape configs across. Everything hangs off one arena that
 * the config owns; a reload builds a new config and swaps it in whole.
 */
#ifndef VIGIL_AGENT_CONFIG_H
#define VIGIL_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/config.h" /* vg_kv_t */
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/relabel.h"

typedef struct vg_static_group {
    const char **targets; /* "host:port" */
    size_t ntargets;
    vg_label_t *labels; /* sorted */
    size_t nlabels;
} vg_static_group_t;

/* One file_sd_configs entry. Relative paths are resolved against the
 * directory of the config file at load time. */
typedef struct vg_file_sd_config {
    const char **files; /* globs ending in .json, .yml or .yaml */
    size_t nfiles;
    int64_t refresh_interval_ms; /* default 5m */
} vg_file_sd_config_t;

/* HTTP client settings of a job (Prometheus's HTTPClientConfig subset).
 * Secrets are never logged; *_file values are read at each scrape. */
typedef struct vg_scrape_auth {
    int basic;            /* basic_auth present */
    const char *username; /* basic_auth */
    const char *password; /* at most one of password, password_file */
    const char *password_file;
    const char *auth_type;   /* authorization.type, default "Bearer" */
    const char *credentials; /* at most one of credentials, credentials_file */
    const char *credentials_file;
    const char *bearer_token; /* legacy scrape-level keys, folded into credentials */
    const char *bearer_token_file;
    const char *ca_file; /* tls_config */
    const char *cert_file;
    const char *key_file;
    const char *server_name;
    int insecure_skip_verify;
} vg_scrape_auth_t;

typedef struct vg_scrape_config {
    const char *job_name;
    int64_t interval_ms;      /* default: global.scrape_interval */
    int64_t timeout_ms;       /* default: global.scrape_timeout, capped at interval */
    const char *metrics_path; /* default "/metrics" */
    const char *scheme;       /* "http" or "https" */
    vg_kv_t *params;          /* URL query parameters */
    size_t nparams;
    int honor_labels;
    int honor_timestamps;  /* default 1 */
    uint64_t sample_limit; /* 0 = none */
    uint64_t label_limit;
    uint64_t body_size_limit; /* bytes, 0 = none */
    vg_static_group_t *static_configs;
    size_t nstatic;

    /* relabel_configs / metric_relabel_configs as written, and compiled once at
     * load (NULL when empty); the compiled lists are owned by the config. */
    vg_relabel_rule_t *relabel_rules;
    size_t nrelabel_rules;
    vg_relabel_rule_t *metric_relabel_rules;
    size_t nmetric_relabel_rules;
    vg_relabel_t *relabel;
    vg_relabel_t *metric_relabel;

    vg_file_sd_config_t *file_sd; /* file_sd_configs */
    size_t nfile_sd;
    vg_scrape_auth_t auth; /* basic_auth, authorization (or bearer_token*), tls_config */
} vg_scrape_config_t;

/* One audit_logs entry (agent/config_audit.c). */
typedef struct vg_audit_redact_config {
    const char *name;        /* a preset (email, credit_card, ...) or a label */
    const char *pattern;     /* NULL = the preset called name */
    const char *replacement; /* NULL = "[REDACTED]" */
} vg_audit_redact_config_t;

typedef struct vg_audit_log_config {
    const char **paths; /* globs */
    size_t npaths;
    const char **exclude;
    size_t nexclude;
    const char *tenant; /* NULL = agent.tenant */
    const char **required_fields;
    size_t nrequired_fields;
    vg_kv_t *mapping; /* canonical name -> the source's field name */
    size_t nmapping;
    vg_audit_redact_config_t *redact;
    size_t nredact;
    uint64_t max_line_bytes; /* default 64 KiB */
    int read_from_head;
    double rate_limit;   /* lines/s, 0 = none */
    uint64_t rate_burst; /* lines, 0 = rate_limit */
} vg_audit_log_config_t;

typedef struct vg_agent_config {
    vg_arena_t *arena;  /* owns every string and array below */
    const char *source; /* file name, or "<embedded default>" */

    /* agent: */
    const char *listen;   /* default 127.0.0.1:9401 */
    const char *node;     /* default: hostname */
    const char *tenant;   /* default "default" */
    const char *data_dir; /* default /var/lib/vigil-agent */

    /* global: */
    int64_t scrape_interval_ms; /* default 30s */
    int64_t scrape_timeout_ms;  /* default 10s */
    vg_label_t *external_labels;
    size_t nexternal_labels;
    uint64_t global_sample_limit; /* defaults of the same job keys; 0 = none */
    uint64_t global_label_limit;
    uint64_t global_body_size_limit;

    vg_scrape_config_t *scrape_configs;
    size_t nscrape_configs;
    vg_relabel_t **compiled; /* every compiled relabel list, freed with the config */
    size_t ncompiled;

    int host_metrics_enabled;          /* host_metrics.enabled, default 1 */
    int64_t host_metrics_interval_ms;  /* host_metrics.interval; 0 = global.scrape_interval */
    const char *host_metrics_job;      /* host_metrics.job, default "node" */
    const char *host_metrics_instance; /* host_metrics.instance; NULL = agent.node */
    const char *host_proc_path;        /* host_metrics.proc_path, default /proc */
    const char *host_sys_path;         /* host_metrics.sys_path, default /sys */

    /* output: exactly one sink is active; Kafka wins when brokers is set. */
    const char *http_url;            /* output.http.url, default http://127.0.0.1:9400 */
    const char *kafka_brokers;       /* output.kafka.brokers; NULL = HTTP transport */
    const char *kafka_metrics_topic; /* default vigil.metrics */
    const char *kafka_audit_topic;   /* default vigil.audit */
    const char *kafka_audit_dlq_topic; /* default vigil.audit.dlq */
    vg_kv_t *kafka_properties;       /* passed to rd_kafka_conf_set as is */
    size_t nkafka_properties;

    uint64_t batch_max_bytes;   /* output.batch_max_bytes: cut a batch at this (uncompressed) */
    int64_t batch_max_delay_ms; /* output.batch_max_delay: or when its first sample is this old */
    int64_t zstd_level;         /* output.zstd_level, 1..19 */

    uint64_t spool_max_bytes; /* spool.max_bytes, default 1 GiB */
    const char *spool_sync;   /* spool.sync: "always" or a duration */
    int64_t spool_sync_ms;    /* from spool_sync: 0 = fdatasync every batch, else grouped */
    const char *spool_replay; /* spool.replay: "ordered" (default) or "interleave" */

    vg_audit_log_config_t *audit_logs; /* audit_logs: */
    size_t naudit_logs;
} vg_agent_config_t;

/* Load path, or the embedded default when path is NULL. Errors name file:line:col.
 * On success the caller frees *out with vg_agent_config_free. */
vg_err_t vg_agent_config_load(const char *path, vg_agent_config_t **out, vg_error *err);
/* Same, from a YAML string (tests); name is used in error messages. */
vg_err_t vg_agent_config_parse(const char *name, const char *yaml, size_t len,
                               vg_agent_config_t **out, vg_error *err);
void vg_agent_config_free(vg_agent_config_t *c);
/* Append the Markdown reference of every agent config key (from the schema
 * that parses them) to out. */
vg_err_t vg_agent_config_doc(vg_buf *out);

#endif
